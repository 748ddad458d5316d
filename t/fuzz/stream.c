/*
 * fuzz/stream - libFuzzer harness for lib/stream.c: stream_getline (with
 * stream_read and stream_read_exact mixed in).
 *
 * Input layout: byte 0 is a control byte, byte 1 a seed; the rest is what
 * the peer sends before it hangs up.
 *   bit 0   read through a stream_set_io() hook that hands out the bytes in
 *           pieces of 1..N (N from the seed) and sometimes says EAGAIN or
 *           EINPROGRESS; otherwise the raw end of a socketpair
 *   bit 1   the line buffer has a limit of its own (smaller than max_len)
 *   bit 2   now and then call stream_read / stream_read_exact instead
 * Each stream_getline() call takes its max_len from a table that covers
 * 1, small values and the 8 KiB buffer size, rotated by the seed.  Every
 * result is compared with a model of the documented behaviour: a line is
 * returned with its LF, a line longer than the limit is STREAM_TOOLONG and
 * skipped through its LF (also across calls and at EOF), a last line
 * without LF is returned as it is, then STREAM_EOF.  The stream has a short
 * timeout and the writer is closed, so a hang is a bug; a difference from
 * the model aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "fuzzlib.h"
#include "stream.h"

static const size_t max_lens[] = {1, 2, 3, 5, 16, 100, 1000, 8190, 8191, 8192, 8193, 20000};
#define NLENS (sizeof(max_lens) / sizeof(max_lens[0]))

/* The hook: serve wire[] in pieces; a few EAGAIN/EINPROGRESS replies. */
struct feed {
    const uint8_t *p;
    size_t len, pos;
    unsigned piece, tick, stalls;
};

static ssize_t feed_read(void *ctx, void *data, size_t len)
{
    struct feed *f = ctx;
    size_t n;

    f->tick++;
    if (f->stalls < 50 && f->tick % 7 == 3) {
        f->stalls++;
        errno = f->tick % 2 ? EAGAIN : EINPROGRESS;
        return -1;
    }
    if (f->pos == f->len)
        return 0;
    n = 1 + (f->tick * 31 + f->piece) % f->piece;
    if (n > len)
        n = len;
    if (n > f->len - f->pos)
        n = f->len - f->pos;
    memcpy(data, f->p + f->pos, n);
    f->pos += n;
    return (ssize_t)n;
}

static ssize_t feed_write(void *ctx, const void *data, size_t len)
{
    (void)ctx;
    (void)data;
    return (ssize_t)len;
}

static const struct stream_io feed_io = {feed_read, feed_write};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *wire;
    size_t wlen, sent = 0, pos = 0, k;
    int sv[2], mark, bufsize = 1 << 20, calls = 0;
    unsigned seed;
    struct feed feed;
    stream_t *s;
    buf_t *line;

    if (size < 2)
        return 0;
    seed = data[1];
    wire = data + 2;
    wlen = size - 2;
    mark = fuzz_fd_mark();
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return 0;
    if (data[0] & 1) {
        /* The socket only serves poll(): hung up, so always "ready". */
        memset(&feed, 0, sizeof(feed));
        feed.p = wire;
        feed.len = sent = wlen;
        feed.piece = 1 + seed % 64;
    } else {
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
        while (sent < wlen) {
            ssize_t w = send(sv[0], wire + sent, wlen - sent, MSG_DONTWAIT | MSG_NOSIGNAL);

            if (w <= 0)
                break;                  /* full: the model sees what went */
            sent += (size_t)w;
        }
    }
    close(sv[0]);

    s = stream_open(sv[1]);
    stream_set_timeout(s, 2000);
    if (data[0] & 1)
        stream_set_io(s, &feed_io, &feed);
    line = buf_new((data[0] & 2) ? 1 + seed * 13 : 0);

    for (k = seed % NLENS;; k = (k + 1) % NLENS) {
        size_t max_len = max_lens[k], limit = max_len, n, end;
        ssize_t r;

        if (++calls > 100000)
            fuzz_fail("more than 100000 calls for %zu bytes", sent);
        if (line->limit && line->limit < limit)
            limit = line->limit;
        /* The model: the next line, LF included (or what is left at EOF). */
        for (end = pos; end < sent && wire[end] != '\n'; end++)
            ;
        n = (end < sent ? end + 1 : sent) - pos;

        if ((data[0] & 4) && calls % 5 == 0 && n <= limit) {
            /* Raw reads are only defined between lines: take part of this
             * line (not while a too-long line is being skipped). */
            char tmp[64];
            size_t want = n < 1 + (size_t)(seed % 50) ? n : 1 + (size_t)(seed % 50);

            if (want == 0)
                continue;
            if (calls % 2) {
                r = stream_read(s, tmp, want);
                if (r <= 0 || (size_t)r > want || memcmp(tmp, wire + pos, (size_t)r) != 0)
                    fuzz_fail("stream_read(%zu) at %zu returned %zd", want, pos, r);
                pos += (size_t)r;
            } else {
                buf_t *b = buf_new(0);

                r = stream_read_exact(s, b, want);
                if (r != (ssize_t)want || b->len != want
                    || memcmp(b->data, wire + pos, want) != 0)
                    fuzz_fail("stream_read_exact(%zu) at %zu returned %zd", want, pos, r);
                buf_free(&b);
                pos += want;
            }
            continue;
        }

        r = stream_getline(s, line, max_len);
        if (r == STREAM_TIMEOUT || r == STREAM_ERROR)
            fuzz_fail("stream_getline at %zu: %s", pos,
                      r == STREAM_TIMEOUT ? "timeout" : strerror(errno));
        if (pos == sent) {
            if (r != STREAM_EOF)
                fuzz_fail("at the end (%zu bytes): %zd instead of STREAM_EOF", sent, r);
            break;
        }
        if (n > limit) {
            if (r != STREAM_TOOLONG)
                fuzz_fail("line at %zu of %zu bytes, limit %zu: %zd instead of STREAM_TOOLONG",
                          pos, n, limit, r);
        } else {
            if (r != (ssize_t)n || line->len != n || memcmp(line->data, wire + pos, n) != 0)
                fuzz_fail("line at %zu of %zu bytes, limit %zu: got %zd (%zu bytes)",
                          pos, n, limit, r, line->len);
        }
        if (r == STREAM_TOOLONG && line->len != 0)
            fuzz_fail("STREAM_TOOLONG left %zu bytes in the line", line->len);
        pos += n;
    }
    if (stream_pending(s) != 0)
        fuzz_fail("%zu bytes pending after EOF", stream_pending(s));
    buf_free(&line);
    stream_close(&s);
    fuzz_fd_check(mark);
    return 0;
}
