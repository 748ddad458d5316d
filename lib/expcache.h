/*
 * expcache - a bounded cache of values under string keys, each kept until
 * a deadline: lookupd's client names (kept for their DNS TTL), local's
 * accounts (kept for a few seconds).
 *
 * expcache_new(max, free_value): at most max entries; free_value(value) is
 * called whenever an entry goes (replaced, expired, evicted, or at
 * expcache_free), NULL if the values need no freeing.
 * expcache_get(c, key, now): the value stored under key if its deadline is
 * after now (an expired entry goes at once), else NULL.
 * expcache_del(c, key): remove the entry under key (its value freed);
 * 1 if there was one, else 0.
 * expcache_put(c, key, value, expires, now): store value under key until
 * expires (replacing an entry of the same key); when the cache is full,
 * the expired entries go first, and if none has expired, all of them: a
 * cache that is full of live entries is being flooded, and starting afresh
 * costs less than choosing.
 * Times are the caller's (milliseconds of a monotonic clock, say); the
 * cache only compares them.
 *
 * Failure modes: none but out of memory (fatal, xalloc).
 */
#ifndef POSTHORN_EXPCACHE_H
#define POSTHORN_EXPCACHE_H

#include <stddef.h>

typedef struct expcache expcache_t;

expcache_t *expcache_new(size_t max, void (*free_value)(void *));
void        expcache_free(expcache_t **cp);
void       *expcache_get(expcache_t *c, const char *key, long long now);
void        expcache_put(expcache_t *c, const char *key, void *value, long long expires,
                         long long now);
int         expcache_del(expcache_t *c, const char *key);
size_t      expcache_count(const expcache_t *c);

#endif
