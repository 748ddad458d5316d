/*
 * xalloc - allocation that never returns NULL.
 *
 * Interface: xmalloc, xcalloc, xrealloc, xreallocarray, xstrdup, xstrndup,
 * xasprintf, xmemdup.  Failure mode: running out of memory is an environment
 * failure, so every function calls msg_fatal() instead of returning NULL;
 * an overflowing size (n * size) is our bug and panics.
 */
#ifndef POSTHORN_XALLOC_H
#define POSTHORN_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *ptr, size_t size);
void *xreallocarray(void *ptr, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* free(*pp) and set *pp to NULL. */
#define xfree(pp) do { free(*(pp)); *(pp) = NULL; } while (0)

#endif
