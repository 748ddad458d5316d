/*
 * buf - growable, binary-safe byte buffers with a size cap (see buf.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "msg.h"
#include "xalloc.h"

buf_t *buf_new(size_t limit)
{
    buf_t *b = xcalloc(1, sizeof(*b));

    b->cap = 64;
    b->data = xmalloc(b->cap);
    b->data[0] = '\0';
    b->limit = limit;
    return b;
}

void buf_free(buf_t **bp)
{
    if (*bp == NULL)
        return;
    free((*bp)->data);
    free(*bp);
    *bp = NULL;
}

void buf_reset(buf_t *b)
{
    b->len = 0;
    b->data[0] = '\0';
}

/* Make room for len more bytes plus the NUL; -1/ENOBUFS over the limit. */
static int buf_reserve(buf_t *b, size_t more)
{
    size_t need;

    if (more > (size_t)-1 - b->len - 1 || (b->limit && b->len + more > b->limit)) {
        errno = ENOBUFS;
        return -1;
    }
    need = b->len + more + 1;
    if (need > b->cap) {
        size_t cap = b->cap;

        while (cap < need)
            cap = cap > (size_t)-1 / 2 ? need : cap * 2;
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
    return 0;
}

int buf_append(buf_t *b, const void *data, size_t len)
{
    if (buf_reserve(b, len) < 0)
        return -1;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int buf_append_str(buf_t *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_putc(buf_t *b, int c)
{
    char ch = (char)c;

    return buf_append(b, &ch, 1);
}

/*
 * Format into a scratch area first and append from there: an argument may
 * point into b itself (buf_printf(b, "%s", buf_cstr(b))), and formatting
 * straight into b->data would read storage that the growth just freed or
 * that the output is overwriting.
 */
int buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    char small[512], *tmp;
    int n, ret;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        msg_panic("buf_printf: bad format '%s'", fmt);
    if ((size_t)n < sizeof(small))
        return buf_append(b, small, (size_t)n);
    /* Do not allocate a scratch copy of something that cannot fit. */
    if (b->limit && (size_t)n > b->limit) {
        errno = ENOBUFS;
        return -1;
    }
    tmp = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(tmp, (size_t)n + 1, fmt, ap);
    va_end(ap);
    ret = buf_append(b, tmp, (size_t)n);
    free(tmp);
    return ret;
}

void buf_consume(buf_t *b, size_t n)
{
    if (n >= b->len) {
        buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

void buf_truncate(buf_t *b, size_t len)
{
    if (len < b->len) {
        b->len = len;
        b->data[len] = '\0';
    }
}

const char *buf_cstr(const buf_t *b)
{
    return b->data;
}

char *buf_steal(buf_t *b, size_t *lenp)
{
    char *p = b->data;

    if (lenp)
        *lenp = b->len;
    b->cap = 64;
    b->data = xmalloc(b->cap);
    buf_reset(b);
    return p;
}

int buf_read_all(buf_t *b, int fd)
{
    char chunk[8192];
    ssize_t n;

    for (;;) {
        n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -1 : 0;
        if (buf_append(b, chunk, (size_t)n) < 0) {
            errno = EFBIG;
            return -1;
        }
    }
}
