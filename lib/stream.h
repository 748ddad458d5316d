/*
 * stream - buffered I/O on a file descriptor, with deadlines and a TLS hook.
 *
 * For the one-connection-per-process protocol servers (smtpd, pop3d, ...)
 * and for clients: blocking style, but every read and write waits with
 * poll() for at most the stream's timeout, so a silent peer can never hang
 * us.  The descriptor is put in non-blocking mode.
 *
 * Lines: stream_getline() returns one line *including* its terminator so
 * that protocol code can see exactly how it ended (CRLF, bare LF, or none
 * at EOF): the smuggling-safe SMTP data reader depends on this.  A line
 * longer than the limit is reported as STREAM_TOOLONG after the rest of it
 * was read and thrown away up to the next LF, so the protocol stays in sync.
 *
 * TLS hook: stream_set_io() replaces the raw read/write with functions that
 * go through e.g. OpenSSL.  They return bytes moved, 0 at EOF, or -1 with
 * errno EAGAIN (EWOULDBLOCK is the same): wait in the call's own direction
 * (a read polls for POLLIN, a write for POLLOUT); errno EINPROGRESS: wait
 * in the other direction (a read that must write first, as in TLS
 * renegotiation, polls for POLLOUT; a write that must read first polls for
 * POLLIN).  Any other errno is an error.  The hook is always tried before
 * polling, so data the TLS layer has buffered is never missed (unless its
 * holds_input says it has none).  Output must
 * be flushed before the hook is changed (a panic otherwise: plaintext would
 * go out encrypted or the other way round).  stream_pending() tells how many
 * bytes are buffered but not yet consumed: a STARTTLS implementation must
 * discard them (stream_discard_input) before the handshake.
 *
 * Deadlines: the timeout (default 300000 ms) bounds each stream_getline()
 * and stream_read() call as a whole; stream_read_exact() and writes restart
 * it whenever bytes move, so big transfers over a slow live link succeed
 * but a stalled peer still times out.  A partial line survives
 * STREAM_TIMEOUT (the next stream_getline() resumes it).  After stream_open()
 * the fd is in O_NONBLOCK mode (that is a property of the open file
 * description, shared with dup()s and across fork()), and stays so.
 *
 * Raw writes go through send(MSG_NOSIGNAL) on sockets (EPIPE, no SIGPIPE)
 * and write(2) on anything else.  A hard write error is sticky; after a
 * write error or timeout, stream_close() does not try to flush again.
 *
 * Results: >= 0 success; STREAM_EOF, STREAM_TIMEOUT, STREAM_ERROR (errno
 * set), STREAM_TOOLONG.  The stream never closes the fd unless
 * stream_close() is asked to.
 */
#ifndef POSTHORN_STREAM_H
#define POSTHORN_STREAM_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

#define STREAM_EOF      (-1)
#define STREAM_TIMEOUT  (-2)
#define STREAM_ERROR    (-3)
#define STREAM_TOOLONG  (-4)

typedef struct stream stream_t;

struct stream_io {
    ssize_t (*read)(void *ctx, void *data, size_t len);
    ssize_t (*write)(void *ctx, const void *data, size_t len);
    /* Optional: nonzero when the layer holds input that read would return
     * or work on without waiting (TLS records read ahead).  With it, a read
     * right after a flush waits for the peer first when nothing is held,
     * as on a raw fd; without it, the hook is always tried first. */
    int     (*holds_input)(void *ctx);
};

stream_t *stream_open(int fd);
void      stream_free(stream_t **sp);          /* does not close the fd */
void      stream_close(stream_t **sp);         /* flushes (best effort), closes the fd */
int       stream_fd(const stream_t *s);

void      stream_set_timeout(stream_t *s, int timeout_ms);   /* <0: no deadline */
void      stream_set_io(stream_t *s, const struct stream_io *io, void *ctx); /* NULL: raw fd */
/* Raw writes go to wfd instead (a stream over stdin and stdout); put in
 * O_NONBLOCK mode too.  Not together with an I/O hook. */
void      stream_set_write_fd(stream_t *s, int wfd);

/* Read one line (terminator included) into line (reset first); at most
 * max_len bytes (> 0), terminator included, and at most line->limit if that
 * is set.  Returns the length, or a STREAM_* code.  At EOF with a partial
 * line, returns the partial line; the next call returns STREAM_EOF.  An
 * over-long line cut short by EOF is still STREAM_TOOLONG. */
ssize_t   stream_getline(stream_t *s, buf_t *line, size_t max_len);
/* Read up to len bytes (whatever is available after at most one wait). */
ssize_t   stream_read(stream_t *s, void *data, size_t len);
/* Read exactly len bytes into b (appended); returns len, or STREAM_EOF if
 * the peer stops early (what did arrive stays appended), or STREAM_ERROR
 * with errno ENOBUFS at once if b's limit cannot take len more bytes. */
ssize_t   stream_read_exact(stream_t *s, buf_t *b, size_t len);

/* Output is buffered until stream_flush() or the buffer fills.  Each
 * returns 0 or a STREAM_* code (STREAM_TIMEOUT, STREAM_ERROR). */
int       stream_write(stream_t *s, const void *data, size_t len);
int       stream_puts(stream_t *s, const char *str);
int       stream_printf(stream_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int       stream_flush(stream_t *s);

size_t    stream_pending(const stream_t *s);   /* buffered input bytes */
/* Input that a read returns without the descriptor becoming readable:
 * buffered here, or held by the I/O hook (TLS records read ahead).  For a
 * caller that polls the descriptor itself (a proxy). */
int       stream_has_input(const stream_t *s);
void      stream_discard_input(stream_t *s);
/* Put data in front of the buffered input, to be read before anything
 * else: input another process read before the connection came here (a
 * login hand-over's pipelined commands). */
void      stream_unread(stream_t *s, const void *data, size_t len);

#endif
