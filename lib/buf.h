/*
 * buf - growable, binary-safe byte buffers with a size cap.
 *
 * A buf_t holds len bytes at data, always followed by a NUL byte that is not
 * counted (so text can be used as a C string).  Every buffer has a limit:
 * an append that would make it longer fails with -1 / errno ENOBUFS and
 * leaves the buffer unchanged, so a peer can never make us grow without
 * bound.  Limit 0 means "no cap" and is only for data we produce ourselves.
 *
 * Interface: buf_new, buf_free, buf_reset, buf_append, buf_append_str,
 * buf_putc, buf_printf, buf_consume (drop bytes from the front), buf_cstr,
 * buf_steal (hand the storage to the caller), buf_read_all (append what a
 * descriptor has until its end: 0, or -1 with errno, EFBIG when that
 * would pass the limit; the buffer then holds what was read).
 */
#ifndef POSTHORN_BUF_H
#define POSTHORN_BUF_H

#include <stddef.h>

typedef struct buf {
    char   *data;
    size_t  len;
    size_t  cap;    /* allocated bytes, including room for the NUL */
    size_t  limit;  /* largest allowed len; 0 = unlimited */
} buf_t;

buf_t *buf_new(size_t limit);
void   buf_free(buf_t **bp);
void   buf_reset(buf_t *b);
int    buf_append(buf_t *b, const void *data, size_t len);
int    buf_append_str(buf_t *b, const char *s);
int    buf_putc(buf_t *b, int c);
int    buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void   buf_consume(buf_t *b, size_t n);
void   buf_truncate(buf_t *b, size_t len);
const char *buf_cstr(const buf_t *b);
char  *buf_steal(buf_t *b, size_t *lenp);   /* buffer becomes empty */
int    buf_read_all(buf_t *b, int fd);

#endif
