/*
 * smtpcontent - one received message's content in a memfd (see
 * smtpcontent.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "buf.h"
#include "smtpcontent.h"
#include "xalloc.h"

#define SMTPCONTENT_BATCH 65536

#define SMTPCONTENT_BAD_EOL   (1u << 0)
#define SMTPCONTENT_TOOBIG    (1u << 1)
#define SMTPCONTENT_LONGLINE  (1u << 2)
#define SMTPCONTENT_IOERR     (1u << 3)

struct smtpcontent {
    int       fd;             /* the memfd, -1 until the first write */
    buf_t    *batch;
    uint64_t  size;           /* bytes accepted */
    uint64_t  seen;           /* BDAT: bytes received, stored or not */
    uint64_t  size_limit;
    size_t    line_max;
    size_t    line_len;       /* BDAT: bytes of the current line so far */
    unsigned  flags;
    int       last;           /* last byte stored (-1: none) */
    int       prev;           /* the byte before it */
    int       scan_prev;      /* BDAT: last byte seen, stored or not */
};

smtpcontent_t *smtpcontent_new(uint64_t size_limit, size_t line_max)
{
    smtpcontent_t *c = xcalloc(1, sizeof(*c));

    c->fd = -1;
    c->batch = buf_new(0);
    c->size_limit = size_limit;
    c->line_max = line_max;
    c->last = c->prev = c->scan_prev = -1;
    return c;
}

void smtpcontent_free(smtpcontent_t **cp)
{
    smtpcontent_t *c = *cp;

    if (c == NULL)
        return;
    if (c->fd >= 0)
        close(c->fd);
    buf_free(&c->batch);
    free(c);
    *cp = NULL;
}

#define SMTPCONTENT_MEMFD (MFD_CLOEXEC | MFD_ALLOW_SEALING)

static void smtpcontent_flush(smtpcontent_t *c)
{
    const char *p = c->batch->data;
    size_t left = c->batch->len;

    if (left == 0 || (c->flags & SMTPCONTENT_IOERR))
        goto out;
    if (c->fd < 0 && (c->fd = memfd_create("posthorn-message", SMTPCONTENT_MEMFD)) < 0) {
        c->flags |= SMTPCONTENT_IOERR;
        goto out;
    }
    while (left > 0) {
        ssize_t n = write(c->fd, p, left);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            c->flags |= SMTPCONTENT_IOERR;
            break;
        }
        p += n;
        left -= (size_t)n;
    }
out:
    buf_reset(c->batch);
}

/* Store len bytes (already checked). */
static void smtpcontent_store(smtpcontent_t *c, const char *data, size_t len)
{
    if (len == 0 || (c->flags & (SMTPCONTENT_IOERR | SMTPCONTENT_TOOBIG)))
        return;
    buf_append(c->batch, data, len);
    c->size += len;
    c->prev = len >= 2 ? (unsigned char)data[len - 2] : c->last;
    c->last = (unsigned char)data[len - 1];
    if (c->batch->len >= SMTPCONTENT_BATCH)
        smtpcontent_flush(c);
}

int smtpcontent_sink(void *ctx, const char *data, size_t len)
{
    smtpcontent_t *c = ctx;

    smtpcontent_store(c, data, len);
    return (c->flags & SMTPCONTENT_IOERR) ? -1 : 0;
}

void smtpcontent_bdat(smtpcontent_t *c, const char *data, size_t len)
{
    int prev = c->scan_prev;

    for (size_t i = 0; i < len; i++) {
        int ch = (unsigned char)data[i];

        if (prev == '\r' && ch != '\n')
            c->flags |= SMTPCONTENT_BAD_EOL;      /* CR not followed by LF */
        if (ch == '\n') {
            if (prev != '\r')
                c->flags |= SMTPCONTENT_BAD_EOL;  /* LF without CR */
            if (c->line_max && c->line_len + 1 > c->line_max)
                c->flags |= SMTPCONTENT_LONGLINE;
            c->line_len = 0;
        } else {
            c->line_len++;
        }
        prev = ch;
    }
    c->scan_prev = prev;
    if (c->line_max && c->line_len > c->line_max)
        c->flags |= SMTPCONTENT_LONGLINE;
    c->seen += len;
    if (c->size_limit && c->seen > c->size_limit)
        c->flags |= SMTPCONTENT_TOOBIG;
    if (!(c->flags & (SMTPCONTENT_BAD_EOL | SMTPCONTENT_LONGLINE | SMTPCONTENT_TOOBIG)))
        smtpcontent_store(c, data, len);
}

uint64_t smtpcontent_size(const smtpcontent_t *c)
{
    return c->size;
}

int smtpcontent_failed(const smtpcontent_t *c)
{
    return c->flags != 0;
}

int smtpcontent_finish(smtpcontent_t *c, int *fd, uint64_t *len, struct smtpreply_err *err)
{
    if (c->scan_prev == '\r')
        c->flags |= SMTPCONTENT_BAD_EOL;          /* a BDAT CR at the very end */
    if (!(c->flags & ~SMTPCONTENT_IOERR) && c->size > 0 && !(c->prev == '\r' && c->last == '\n'))
        smtpcontent_store(c, "\r\n", 2);          /* BDAT content need not end in CRLF */
    smtpcontent_flush(c);
    if (c->flags & SMTPCONTENT_IOERR) {
        *err = (struct smtpreply_err){ 451, "4.3.0", "Error: cannot store the message" };
    } else if (c->flags & SMTPCONTENT_BAD_EOL) {
        *err = (struct smtpreply_err){ 550, "5.6.0",
                                       "Message contains bare <CR> or <LF>" };
    } else if (c->flags & SMTPCONTENT_TOOBIG) {
        *err = (struct smtpreply_err){ 552, "5.3.4", "Message size exceeds fixed limit" };
    } else if (c->flags & SMTPCONTENT_LONGLINE) {
        *err = (struct smtpreply_err){ 550, "5.6.0", "Message contains a line that is too long" };
    } else {
        if (c->fd < 0 && (c->fd = memfd_create("posthorn-message", SMTPCONTENT_MEMFD)) < 0) {
            *err = (struct smtpreply_err){ 451, "4.3.0", "Error: cannot store the message" };
            return -1;
        }
        /* Final: no one it is handed to (checkd, cleanup) can change it. */
        if (fcntl(c->fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL)
            < 0) {
            *err = (struct smtpreply_err){ 451, "4.3.0", "Error: cannot store the message" };
            return -1;
        }
        *fd = c->fd;
        *len = c->size;
        c->fd = -1;
        return 0;
    }
    return -1;
}
