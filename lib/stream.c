/*
 * stream - buffered I/O on a file descriptor, with deadlines and a TLS hook.
 *
 * Blocking-style reads and writes for the one-connection-per-process
 * servers and for clients (interface and result codes in stream.h).  The
 * descriptor is switched to O_NONBLOCK; every wait is a poll() bounded by
 * the stream's timeout, so a silent or slow peer can never hang us.
 *
 * Deadlines: stream_getline() and stream_read() must complete within one
 * timeout from the moment they are called.  Bulk transfers
 * (stream_read_exact(), stream_write() of large data, stream_flush()) restart
 * the clock whenever bytes move, so a large transfer over a slow but live
 * link is not cut off, while a stalled peer still times out.  The default
 * timeout is STREAM_DEFAULT_TIMEOUT_MS (300 s); a negative one waits forever.
 *
 * Input: one heap buffer that only grows while stream_getline() needs to
 * see a whole line (bounded by about twice the line limit).  A partial line
 * stays buffered across STREAM_TIMEOUT, so a later call resumes it; an
 * over-long line is skipped up to its LF, also across calls.  After a
 * flush that left no input buffered, the next read waits for input first
 * instead of trying a read that a lockstep peer (one command, one reply)
 * would only answer with EAGAIN.
 *
 * Output: one heap buffer flushed when a write does not fit or on
 * stream_flush(); large writes go straight to the descriptor.  Raw writes
 * use send(MSG_NOSIGNAL) so a vanished socket peer gives EPIPE instead of
 * SIGPIPE; on a non-socket (pipe, file) we fall back to write(2), where the
 * process's SIGPIPE disposition applies.  A hard write error is sticky: later
 * writes fail at once with the same errno, and stream_close() skips the
 * flush after an error or timeout.
 *
 * Failure modes: peer trouble (EOF, timeout, reset) is always a return code,
 * never an abort.  Misuse is a panic: a negative fd, max_len 0, switching
 * the I/O hook while output is still buffered.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "msg.h"
#include "stream.h"
#include "xalloc.h"

#define STREAM_DEFAULT_TIMEOUT_MS  300000
#define STREAM_IBUF_SIZE           8192
#define STREAM_OBUF_SIZE           8192

struct stream {
    int     fd;
    int     wfd;                /* raw writes: fd unless stream_set_write_fd() */
    int     timeout_ms;         /* < 0: no deadline */
    const struct stream_io *io; /* NULL: raw fd */
    void   *ctx;
    int     notsock;            /* raw writes use write(2), not send(2) */
    int     eof;                /* the peer's EOF was seen */
    int     skipping;           /* getline is discarding an over-long line */
    int     wfailed;            /* the last output attempt failed or timed out */
    int     werrno;             /* sticky hard write error, 0 = none */
    int     poll_first;         /* output just went and no input is buffered: the
                                 * peer answers it, so wait before reading */

    char   *ibuf;               /* unconsumed input is ibuf[ihead, itail) */
    size_t  isize, ihead, itail;
    size_t  iscan;              /* bytes after ihead known to hold no LF */

    char   *obuf;               /* pending output is obuf[0, olen); +1 byte for printf's NUL */
    size_t  osize, olen;
};

/* ---- clock and waiting ---- */

static long long stream_now_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
        msg_panic("stream: clock_gettime(CLOCK_MONOTONIC): %s", strerror(errno));
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long stream_deadline(const stream_t *s)
{
    return s->timeout_ms < 0 ? 0 : stream_now_ms() + s->timeout_ms;
}

/* Wait until fd is ready for events or the deadline passes. 0 = ready (or
 * in an error state that the next I/O call will report). */
static int stream_wait(stream_t *s, short events, long long deadline)
{
    struct pollfd pfd;
    int ms, n;

    for (;;) {
        ms = -1;
        if (s->timeout_ms >= 0) {
            long long left = deadline - stream_now_ms();

            if (left <= 0)
                return STREAM_TIMEOUT;
            ms = left > INT_MAX ? INT_MAX : (int)left;
        }
        pfd.fd = events == POLLOUT ? s->wfd : s->fd;
        pfd.events = events;
        pfd.revents = 0;
        n = poll(&pfd, 1, ms);
        if (n > 0) {
            if (pfd.revents & POLLNVAL) {
                errno = EBADF;
                return STREAM_ERROR;
            }
            return 0;
        }
        if (n < 0 && errno != EINTR)
            return STREAM_ERROR;
        /* Timeout or EINTR: the deadline check above decides. */
    }
}

/* ---- the I/O layer: raw fd or the hook ---- */

static ssize_t stream_io_read(stream_t *s, void *data, size_t len)
{
    if (s->io)
        return s->io->read(s->ctx, data, len);
    return read(s->fd, data, len);
}

static ssize_t stream_io_write(stream_t *s, const void *data, size_t len)
{
    ssize_t n;

    if (s->io)
        return s->io->write(s->ctx, data, len);
    if (!s->notsock) {
        n = send(s->wfd, data, len, MSG_NOSIGNAL);
        if (n >= 0 || errno != ENOTSOCK)
            return n;
        s->notsock = 1;
    }
    return write(s->wfd, data, len);
}

/* After an I/O call failed with errno: the poll events to wait for, or 0
 * if it was a real error.  EAGAIN means "wait in my own direction",
 * EINPROGRESS "wait in the other one" (a TLS read that must write first). */
static short stream_want(int err, short own, short other)
{
    if (err == EAGAIN || err == EWOULDBLOCK)
        return own;
    if (err == EINPROGRESS)
        return other;
    return 0;
}

/* ---- input ---- */

/* Read once more into the input buffer, waiting as needed.  Returns the
 * number of bytes added or a STREAM_* code (STREAM_EOF also sets s->eof). */
static ssize_t stream_fill(stream_t *s, long long deadline)
{
    ssize_t n;
    short want;
    int r;

    if (s->ihead == s->itail) {
        s->ihead = s->itail = 0;
    } else if (s->ihead > 0 && s->isize - s->itail < s->isize / 2) {
        memmove(s->ibuf, s->ibuf + s->ihead, s->itail - s->ihead);
        s->itail -= s->ihead;
        s->ihead = 0;
    }
    if (s->itail == s->isize) {
        if (s->isize > SIZE_MAX / 2)
            msg_panic("stream_fill: input buffer size overflow");
        s->isize *= 2;
        s->ibuf = xrealloc(s->ibuf, s->isize);
    }
    /* A request-reply peer has had no time to answer what was just sent:
     * a read now would only say EAGAIN.  (Under TLS the library may hold
     * input already: a hook that cannot say it holds none is asked first.) */
    if (s->poll_first) {
        s->poll_first = 0;
        if ((s->io == NULL || (s->io->holds_input && !s->io->holds_input(s->ctx)))
            && (r = stream_wait(s, POLLIN, deadline)) < 0)
            return r;
    }
    for (;;) {
        n = stream_io_read(s, s->ibuf + s->itail, s->isize - s->itail);
        if (n > 0) {
            if ((size_t)n > s->isize - s->itail)
                msg_panic("stream_fill: read returned %zd for %zu bytes", n,
                          s->isize - s->itail);
            s->itail += (size_t)n;
            return n;
        }
        if (n == 0) {
            s->eof = 1;
            return STREAM_EOF;
        }
        if (errno == EINTR)
            continue;
        if ((want = stream_want(errno, POLLIN, POLLOUT)) == 0)
            return STREAM_ERROR;
        if ((r = stream_wait(s, want, deadline)) < 0)
            return r;
    }
}

static void stream_consume(stream_t *s, size_t n)
{
    s->ihead += n;
    s->iscan = 0;
    if (s->ihead == s->itail)
        s->ihead = s->itail = 0;
}

ssize_t stream_getline(stream_t *s, buf_t *line, size_t max_len)
{
    long long deadline = stream_deadline(s);
    size_t limit = max_len, avail, n;
    const char *lf;
    ssize_t r;

    if (max_len == 0)
        msg_panic("stream_getline: max_len 0");
    if (line->limit && line->limit < limit)
        limit = line->limit;
    buf_reset(line);
    for (;;) {
        avail = s->itail - s->ihead;
        if (s->skipping) {
            lf = memchr(s->ibuf + s->ihead, '\n', avail);
            if (lf) {
                stream_consume(s, (size_t)(lf - (s->ibuf + s->ihead)) + 1);
                s->skipping = 0;
                return STREAM_TOOLONG;
            }
            stream_consume(s, avail);
            if (s->eof) {
                s->skipping = 0;
                return STREAM_TOOLONG;
            }
        } else {
            lf = memchr(s->ibuf + s->ihead + s->iscan, '\n', avail - s->iscan);
            if (lf) {
                n = (size_t)(lf - (s->ibuf + s->ihead)) + 1;
                if (n > limit) {
                    stream_consume(s, n);
                    return STREAM_TOOLONG;
                }
                if (buf_append(line, s->ibuf + s->ihead, n) < 0)
                    msg_panic("stream_getline: line buffer refused %zu bytes", n);
                stream_consume(s, n);
                return (ssize_t)n;
            }
            s->iscan = avail;
            if (avail > limit) {
                /* No LF within the limit: throw it away, skip to the LF. */
                stream_consume(s, avail);
                s->skipping = 1;
                continue;
            }
            if (s->eof) {
                if (avail == 0)
                    return STREAM_EOF;
                if (buf_append(line, s->ibuf + s->ihead, avail) < 0)
                    msg_panic("stream_getline: line buffer refused %zu bytes", avail);
                stream_consume(s, avail);
                return (ssize_t)avail;
            }
        }
        r = stream_fill(s, deadline);
        if (r < 0 && r != STREAM_EOF)
            return r;
    }
}

ssize_t stream_read(stream_t *s, void *data, size_t len)
{
    size_t avail;
    ssize_t r;

    if (len == 0)
        return 0;
    if (s->ihead == s->itail) {
        if (s->eof)
            return STREAM_EOF;
        r = stream_fill(s, stream_deadline(s));
        if (r < 0)
            return r;
    }
    avail = s->itail - s->ihead;
    if (avail > len)
        avail = len;
    memcpy(data, s->ibuf + s->ihead, avail);
    stream_consume(s, avail);
    return (ssize_t)avail;
}

ssize_t stream_read_exact(stream_t *s, buf_t *b, size_t len)
{
    long long deadline = stream_deadline(s);
    size_t done = 0, take;
    ssize_t r;

    if (len > SSIZE_MAX || (b->limit && (b->len > b->limit || len > b->limit - b->len))) {
        errno = ENOBUFS;
        return STREAM_ERROR;
    }
    while (done < len) {
        if (s->ihead == s->itail) {
            if (s->eof)
                return STREAM_EOF;
            r = stream_fill(s, deadline);
            if (r < 0)
                return r;
            deadline = stream_deadline(s);
        }
        take = s->itail - s->ihead;
        if (take > len - done)
            take = len - done;
        if (buf_append(b, s->ibuf + s->ihead, take) < 0)
            msg_panic("stream_read_exact: buffer refused %zu bytes", take);
        stream_consume(s, take);
        done += take;
    }
    return (ssize_t)len;
}

size_t stream_pending(const stream_t *s)
{
    return s->itail - s->ihead;
}

int stream_has_input(const stream_t *s)
{
    return s->itail > s->ihead || (s->io && s->io->holds_input && s->io->holds_input(s->ctx));
}

void stream_unread(stream_t *s, const void *data, size_t len)
{
    size_t have = s->itail - s->ihead;

    if (len == 0)
        return;
    if (have + len > s->isize) {
        while (have + len > s->isize) {
            if (s->isize > SIZE_MAX / 2)
                msg_panic("stream_unread: input buffer size overflow");
            s->isize *= 2;
        }
        s->ibuf = xrealloc(s->ibuf, s->isize);
    }
    memmove(s->ibuf + len, s->ibuf + s->ihead, have);
    memcpy(s->ibuf, data, len);
    s->ihead = 0;
    s->itail = have + len;
    s->iscan = 0;
}

void stream_discard_input(stream_t *s)
{
    s->ihead = s->itail = s->iscan = 0;
    s->skipping = 0;
}

/* ---- output ---- */

/* Write all of data[0, len), waiting as needed; *done counts what went out. */
static int stream_send(stream_t *s, const char *data, size_t len, size_t *done)
{
    long long deadline = stream_deadline(s);
    ssize_t n;
    short want;
    int r;

    *done = 0;
    if (s->werrno) {
        errno = s->werrno;
        return STREAM_ERROR;
    }
    while (*done < len) {
        n = stream_io_write(s, data + *done, len - *done);
        if (n > 0) {
            if ((size_t)n > len - *done)
                msg_panic("stream_send: write returned %zd for %zu bytes", n, len - *done);
            *done += (size_t)n;
            deadline = stream_deadline(s);
            continue;
        }
        if (n == 0) {
            errno = EPIPE;      /* a hook that moves nothing: treat as gone */
        } else if (errno == EINTR) {
            continue;
        } else if ((want = stream_want(errno, POLLOUT, POLLIN)) != 0) {
            if ((r = stream_wait(s, want, deadline)) == 0)
                continue;
            s->wfailed = 1;
            if (r == STREAM_ERROR)
                s->werrno = errno;
            return r;
        }
        s->wfailed = 1;
        s->werrno = errno;
        return STREAM_ERROR;
    }
    s->wfailed = 0;
    return 0;
}

int stream_flush(stream_t *s)
{
    size_t done;
    int r;

    if (s->olen == 0) {
        if (s->werrno) {
            errno = s->werrno;
            return STREAM_ERROR;
        }
        return 0;
    }
    r = stream_send(s, s->obuf, s->olen, &done);
    if (done > 0) {
        memmove(s->obuf, s->obuf + done, s->olen - done);
        s->olen -= done;
    }
    if (r == 0 && s->ihead == s->itail && !s->eof)
        s->poll_first = 1;
    return r;
}

int stream_write(stream_t *s, const void *data, size_t len)
{
    size_t done;
    int r;

    if (s->werrno) {
        errno = s->werrno;
        return STREAM_ERROR;
    }
    if (len <= s->osize - s->olen) {
        if (len)
            memcpy(s->obuf + s->olen, data, len);
        s->olen += len;
        return 0;
    }
    if ((r = stream_flush(s)) < 0)
        return r;
    if (len < s->osize) {
        memcpy(s->obuf, data, len);
        s->olen = len;
        return 0;
    }
    return stream_send(s, data, len, &done);
}

int stream_puts(stream_t *s, const char *str)
{
    return stream_write(s, str, strlen(str));
}

int stream_printf(stream_t *s, const char *fmt, ...)
{
    va_list ap;
    char *tmp;
    int n, r;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        msg_panic("stream_printf: bad format '%s'", fmt);
    if ((size_t)n <= s->osize - s->olen && !s->werrno) {
        /* obuf has one spare byte past osize for the NUL. */
        va_start(ap, fmt);
        vsnprintf(s->obuf + s->olen, (size_t)n + 1, fmt, ap);
        va_end(ap);
        s->olen += (size_t)n;
        return 0;
    }
    tmp = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(tmp, (size_t)n + 1, fmt, ap);
    va_end(ap);
    r = stream_write(s, tmp, (size_t)n);
    free(tmp);
    return r;
}

/* ---- life cycle ---- */

stream_t *stream_open(int fd)
{
    stream_t *s;
    int flags;

    if (fd < 0)
        msg_panic("stream_open: bad fd %d", fd);
    if ((flags = fcntl(fd, F_GETFL)) < 0)
        msg_panic("stream_open: fcntl(%d, F_GETFL): %s", fd, strerror(errno));
    if (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        msg_panic("stream_open: fcntl(%d, F_SETFL): %s", fd, strerror(errno));
    s = xcalloc(1, sizeof(*s));
    s->fd = fd;
    s->wfd = fd;
    s->timeout_ms = STREAM_DEFAULT_TIMEOUT_MS;
    s->isize = STREAM_IBUF_SIZE;
    s->ibuf = xmalloc(s->isize);
    s->osize = STREAM_OBUF_SIZE;
    s->obuf = xmalloc(s->osize + 1);
    return s;
}

void stream_free(stream_t **sp)
{
    stream_t *s = *sp;

    if (s == NULL)
        return;
    free(s->ibuf);
    free(s->obuf);
    free(s);
    *sp = NULL;
}

void stream_close(stream_t **sp)
{
    stream_t *s = *sp;
    int saved;

    if (s == NULL)
        return;
    if (!s->wfailed && !s->werrno)
        (void)stream_flush(s);
    saved = errno;
    close(s->fd);
    errno = saved;
    stream_free(sp);
}

int stream_fd(const stream_t *s)
{
    return s->fd;
}

void stream_set_timeout(stream_t *s, int timeout_ms)
{
    s->timeout_ms = timeout_ms < 0 ? -1 : timeout_ms;
}

void stream_set_write_fd(stream_t *s, int wfd)
{
    int flags;

    if (wfd < 0 || s->io)
        msg_panic("stream_set_write_fd: bad fd %d or an I/O hook is set", wfd);
    if ((flags = fcntl(wfd, F_GETFL)) < 0)
        msg_panic("stream_set_write_fd: fcntl(%d, F_GETFL): %s", wfd, strerror(errno));
    if (!(flags & O_NONBLOCK) && fcntl(wfd, F_SETFL, flags | O_NONBLOCK) < 0)
        msg_panic("stream_set_write_fd: fcntl(%d, F_SETFL): %s", wfd, strerror(errno));
    s->wfd = wfd;
    s->notsock = 0;
}

void stream_set_io(stream_t *s, const struct stream_io *io, void *ctx)
{
    if (s->olen > 0)
        msg_panic("stream_set_io: %zu bytes of output still buffered; flush first", s->olen);
    if (io && (io->read == NULL || io->write == NULL))
        msg_panic("stream_set_io: incomplete io functions");
    s->io = io;
    s->ctx = io ? ctx : NULL;
}
