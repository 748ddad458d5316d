/*
 * t/unit/stream.c - unit tests for lib/stream.c (buffered fd I/O with
 * deadlines and a TLS hook).
 *
 * Everything runs over real socketpairs and pipes: lines arriving in
 * pieces, CRLF / bare LF / bare CR, over-long lines and resynchronisation,
 * timeouts (only "it returned STREAM_TIMEOUT" is asserted, never elapsed
 * time), EOF with a partial line, pending input and discarding it, a fake
 * XOR "TLS" hook, writes much larger than the socket buffer to a child that
 * reads slowly, EPIPE without SIGPIPE, and the panics for misuse.  alarm()
 * guards against hangs.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "msg.h"
#include "stream.h"
#include "xalloc.h"
#include "../lib/tap.h"
#include "../lib/testlib.h"

static void pair(int fds[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0) {
        perror("socketpair");
        exit(2);
    }
}

static void put(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("write");
            exit(2);
        }
        p += n;
        len -= (size_t)n;
    }
}

static void puts_fd(int fd, const char *s)
{
    put(fd, s, strlen(s));
}

/* Read everything from fd until EOF into a fresh buf. */
static buf_t *slurp_fd(int fd)
{
    buf_t *b = buf_new(0);
    char tmp[4096];
    ssize_t n;

    while ((n = read(fd, tmp, sizeof(tmp))) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        buf_append(b, tmp, (size_t)n);
    }
    return b;
}

static void msleep(int ms)
{
    usleep((useconds_t)ms * 1000);
}

/* ---- lines ---- */

static void test_terminators(void)
{
    int fds[2];
    stream_t *s;
    buf_t *line = buf_new(0);
    static const char nul_line[] = "a\0b\n";

    pair(fds);
    s = stream_open(fds[0]);
    ok(fcntl(fds[0], F_GETFL) & O_NONBLOCK, "stream_open makes the fd non-blocking");
    is_int(stream_fd(s), fds[0], "stream_fd");
    stream_set_timeout(s, 2000);
    puts_fd(fds[1], "crlf\r\nbare lf\nbare\rcr inside\r\n\r\n\n");
    put(fds[1], nul_line, sizeof(nul_line) - 1);
    is_int(stream_getline(s, line, 100), 6, "CRLF line length");
    is_str(buf_cstr(line), "crlf\r\n", "CRLF line kept with its terminator");
    is_int(stream_getline(s, line, 100), 8, "bare LF line length");
    is_str(buf_cstr(line), "bare lf\n", "bare LF ends a line");
    is_int(stream_getline(s, line, 100), 16, "bare CR does not end a line");
    is_str(buf_cstr(line), "bare\rcr inside\r\n", "bare CR stays in the data");
    is_int(stream_getline(s, line, 100), 2, "empty CRLF line");
    is_int(stream_getline(s, line, 100), 1, "empty LF line");
    is_int(stream_getline(s, line, 100), 4, "line with a NUL byte");
    ok(line->len == 4 && memcmp(line->data, nul_line, 4) == 0, "NUL byte kept (binary safe)");
    is_int(stream_pending(s), 0, "nothing pending after the last line");
    stream_free(&s);
    ok(s == NULL, "stream_free NULLs the pointer");
    ok(fcntl(fds[0], F_GETFD) >= 0, "stream_free does not close the fd");
    stream_free(&s);
    close(fds[0]);
    close(fds[1]);
    buf_free(&line);
}

static void test_pieces(void)
{
    int fds[2];
    stream_t *s;
    buf_t *line = buf_new(0);
    pid_t pid;
    int status;

    pair(fds);
    s = stream_open(fds[0]);
    stream_set_timeout(s, 30);
    puts_fd(fds[1], "hel");
    is_int(stream_getline(s, line, 100), STREAM_TIMEOUT, "partial line: timeout");
    is_int(stream_pending(s), 3, "partial line stays buffered after the timeout");
    puts_fd(fds[1], "lo\r");
    is_int(stream_getline(s, line, 100), STREAM_TIMEOUT, "CR without LF: still a timeout");
    puts_fd(fds[1], "\nnext\n");
    is_int(stream_getline(s, line, 100), 7, "line completed after two timeouts");
    is_str(buf_cstr(line), "hello\r\n", "the resumed line is whole");
    is_int(stream_getline(s, line, 100), 5, "following line");
    is_str(buf_cstr(line), "next\n", "following line text");

    /* A child trickles bytes with pauses between them. */
    pid = fork();
    if (pid == 0) {
        static const char *const piece[] = { "par", "tial li", "ne\r", "\nsec", "ond\n", "tail" };

        close(fds[0]);
        for (size_t i = 0; i < sizeof(piece) / sizeof(piece[0]); i++) {
            puts_fd(fds[1], piece[i]);
            msleep(15);
        }
        _exit(0);
    }
    close(fds[1]);
    stream_set_timeout(s, 5000);
    is_int(stream_getline(s, line, 100), 14, "line assembled from trickled pieces");
    is_str(buf_cstr(line), "partial line\r\n", "trickled line text");
    is_int(stream_getline(s, line, 100), 7, "second trickled line");
    is_str(buf_cstr(line), "second\n", "second trickled line text");
    is_int(stream_getline(s, line, 100), 4, "EOF: the partial line is returned");
    is_str(buf_cstr(line), "tail", "partial line without terminator");
    is_int(stream_getline(s, line, 100), STREAM_EOF, "then STREAM_EOF");
    is_int(stream_getline(s, line, 100), STREAM_EOF, "and STREAM_EOF again");
    is_int(line->len, 0, "line is reset on EOF");
    waitpid(pid, &status, 0);
    stream_free(&s);
    close(fds[0]);
    buf_free(&line);
}

static void test_eof(void)
{
    int fds[2];
    stream_t *s;
    buf_t *line = buf_new(0);

    pair(fds);
    s = stream_open(fds[0]);
    stream_set_timeout(s, 2000);
    puts_fd(fds[1], "one\nx\r");
    shutdown(fds[1], SHUT_WR);
    is_int(stream_getline(s, line, 100), 4, "line before EOF");
    is_int(stream_getline(s, line, 100), 2, "partial line ending in bare CR at EOF");
    is_str(buf_cstr(line), "x\r", "bare CR kept at EOF");
    is_int(stream_getline(s, line, 100), STREAM_EOF, "EOF after the partial line");
    stream_free(&s);
    close(fds[0]);
    close(fds[1]);

    pair(fds);
    s = stream_open(fds[0]);
    close(fds[1]);
    is_int(stream_getline(s, line, 100), STREAM_EOF, "EOF on an empty stream");
    {
        char c;
        is_int(stream_read(s, &c, 1), STREAM_EOF, "stream_read at EOF");
    }
    stream_free(&s);
    close(fds[0]);
    buf_free(&line);
}

static void test_toolong(void)
{
    int fds[2], status;
    stream_t *s;
    buf_t *line = buf_new(0), *small = buf_new(5);
    pid_t pid;

    pair(fds);
    s = stream_open(fds[0]);
    stream_set_timeout(s, 2000);
    puts_fd(fds[1], "123456789\n1234567890\nok\r\n");
    is_int(stream_getline(s, line, 10), 10, "line of exactly max_len (terminator included)");
    is_int(stream_getline(s, line, 10), STREAM_TOOLONG, "one byte more is STREAM_TOOLONG");
    is_int(line->len, 0, "nothing returned for a too-long line");
    is_int(stream_getline(s, line, 10), 4, "resynchronised on the next line");
    is_str(buf_cstr(line), "ok\r\n", "next line after the long one");

    /* Long line without LF in the buffer; the rest arrives later. */
    stream_set_timeout(s, 30);
    for (int i = 0; i < 5; i++)
        puts_fd(fds[1], "yyyyyyyyyy");
    is_int(stream_getline(s, line, 10), STREAM_TIMEOUT, "timeout while skipping a long line");
    puts_fd(fds[1], "yyy\nnext\n");
    is_int(stream_getline(s, line, 10), STREAM_TOOLONG, "skipping resumes after the timeout");
    is_int(stream_getline(s, line, 10), 5, "then in sync");
    is_str(buf_cstr(line), "next\n", "line after the resumed skip");

    /* line's own limit caps the line too. */
    puts_fd(fds[1], "abcd\nabcdef\nab\n");
    is_int(stream_getline(s, small, 1000), 5, "line fits line->limit");
    is_int(stream_getline(s, small, 1000), STREAM_TOOLONG, "line over line->limit is too long");
    is_int(stream_getline(s, small, 1000), 3, "in sync after line->limit overflow");

    /* Exactly max_len without terminator at EOF fits; one more does not. */
    puts_fd(fds[1], "0123456789");
    shutdown(fds[1], SHUT_WR);
    stream_set_timeout(s, 2000);
    is_int(stream_getline(s, line, 10), 10, "max_len bytes at EOF are a partial line");
    is_int(stream_getline(s, line, 10), STREAM_EOF, "then EOF");
    stream_free(&s);
    close(fds[0]);
    close(fds[1]);

    pair(fds);
    s = stream_open(fds[0]);
    puts_fd(fds[1], "01234567890");
    shutdown(fds[1], SHUT_WR);
    is_int(stream_getline(s, line, 10), STREAM_TOOLONG, "over-long partial line at EOF");
    is_int(stream_getline(s, line, 10), STREAM_EOF, "then EOF");
    stream_free(&s);
    close(fds[0]);
    close(fds[1]);

    /* A huge line from a child, far beyond every buffer, then a good one. */
    pair(fds);
    pid = fork();
    if (pid == 0) {
        char *junk = xmalloc(65536);

        close(fds[0]);
        memset(junk, 'x', 65536);
        for (int i = 0; i < 16; i++)
            put(fds[1], junk, 65536);
        puts_fd(fds[1], "\nafter\n");
        memset(junk, 'z', 65536);
        put(fds[1], junk, 65536);
        puts_fd(fds[1], "\n");
        _exit(0);
    }
    close(fds[1]);
    s = stream_open(fds[0]);
    stream_set_timeout(s, 10000);
    is_int(stream_getline(s, line, 1000), STREAM_TOOLONG, "1 MB line is STREAM_TOOLONG");
    is_int(stream_getline(s, line, 1000), 6, "resynchronised after the 1 MB line");
    is_str(buf_cstr(line), "after\n", "line after the 1 MB one");
    is_int(stream_getline(s, line, 100000), 65537, "64 KB line within a large max_len");
    ok(line->data[0] == 'z' && line->data[65535] == 'z' && line->data[65536] == '\n',
       "64 KB line content");
    is_int(stream_getline(s, line, 100000), STREAM_EOF, "EOF after the big lines");
    waitpid(pid, &status, 0);
    stream_free(&s);
    close(fds[0]);
    buf_free(&line);
    buf_free(&small);
}

/* ---- raw reads ---- */

static void test_read(void)
{
    int fds[2], status;
    stream_t *s;
    buf_t *line = buf_new(0), *b = buf_new(0), *lim = buf_new(10);
    char tmp[16];
    pid_t pid;

    pair(fds);
    s = stream_open(fds[0]);
    stream_set_timeout(s, 30);
    is_int(stream_read(s, tmp, sizeof(tmp)), STREAM_TIMEOUT, "stream_read: timeout");
    is_int(stream_read(s, tmp, 0), 0, "stream_read of 0 bytes");
    puts_fd(fds[1], "line\nabcdef");
    is_int(stream_getline(s, line, 100), 5, "getline before raw reads");
    is_int(stream_pending(s), 6, "the rest is pending");
    is_int(stream_read(s, tmp, 4), 4, "stream_read takes buffered bytes first");
    ok(memcmp(tmp, "abcd", 4) == 0, "stream_read data");
    is_int(stream_read(s, tmp, sizeof(tmp)), 2, "stream_read returns what is there");
    ok(memcmp(tmp, "ef", 2) == 0, "stream_read rest");

    puts_fd(fds[1], "12345");
    is_int(stream_read_exact(s, b, 3), 3, "read_exact of buffered+fresh data");
    is_str(buf_cstr(b), "123", "read_exact data");
    is_int(stream_read_exact(s, b, 5), STREAM_TIMEOUT, "read_exact: timeout when short");
    is_str(buf_cstr(b), "12345", "what arrived is appended");
    is_int(stream_read_exact(s, lim, 11), STREAM_ERROR, "read_exact over b's limit");
    is_int(errno, ENOBUFS, "... errno ENOBUFS");
    puts_fd(fds[1], "ab");
    shutdown(fds[1], SHUT_WR);
    buf_reset(b);
    is_int(stream_read_exact(s, b, 5), STREAM_EOF, "read_exact: EOF when the peer stops early");
    is_str(buf_cstr(b), "ab", "partial data appended before EOF");
    stream_free(&s);
    close(fds[0]);
    close(fds[1]);

    /* A bigger body trickled by a child. */
    pair(fds);
    pid = fork();
    if (pid == 0) {
        char chunk[997];

        close(fds[0]);
        for (int i = 0; i < 100; i++) {
            for (size_t j = 0; j < sizeof(chunk); j++)
                chunk[j] = (char)('a' + (i * sizeof(chunk) + j) % 26);
            put(fds[1], chunk, sizeof(chunk));
            if (i % 10 == 0)
                msleep(5);
        }
        _exit(0);
    }
    close(fds[1]);
    s = stream_open(fds[0]);
    stream_set_timeout(s, 5000);
    buf_reset(b);
    is_int(stream_read_exact(s, b, 99700), 99700, "read_exact of a trickled 97 KB body");
    {
        int good = 1;

        for (size_t j = 0; j < b->len; j++)
            if (b->data[j] != (char)('a' + j % 26))
                good = 0;
        ok(good, "read_exact body content");
    }
    is_int(stream_read(s, tmp, 1), STREAM_EOF, "EOF after the body");
    waitpid(pid, &status, 0);
    stream_free(&s);
    close(fds[0]);
    buf_free(&line);
    buf_free(&b);
    buf_free(&lim);
}

static void test_timeouts(void)
{
    int fds[2], status;
    stream_t *s;
    buf_t *line = buf_new(0);
    pid_t pid;

    pair(fds);
    s = stream_open(fds[0]);
    stream_set_timeout(s, 0);
    is_int(stream_getline(s, line, 100), STREAM_TIMEOUT, "timeout 0: nothing there");
    puts_fd(fds[1], "ready\n");
    is_int(stream_getline(s, line, 100), 6, "timeout 0: data that is there is read");

    /* No deadline: wait for a child that writes late. */
    pid = fork();
    if (pid == 0) {
        msleep(50);
        puts_fd(fds[1], "late\n");
        _exit(0);
    }
    stream_set_timeout(s, -1);
    is_int(stream_getline(s, line, 100), 5, "negative timeout waits as long as needed");
    waitpid(pid, &status, 0);
    stream_free(&s);
    close(fds[0]);
    close(fds[1]);
    buf_free(&line);
}

/* A child that sends count pieces with gap_ms pauses between them. */
static pid_t trickle(int fd, int other, const char *piece, int count, int gap_ms)
{
    pid_t pid = fork();

    if (pid == 0) {
        close(other);
        for (int i = 0; i < count; i++) {
            msleep(gap_ms);
            puts_fd(fd, piece);
        }
        _exit(0);
    }
    return pid;
}

/* getline's deadline covers the whole call; read_exact's restarts on
 * progress.  Only the outcome is asserted: a 30 x 50 ms trickle is always
 * longer than a 1000 ms deadline, and each 50 ms gap far below it. */
static void test_deadline_kinds(void)
{
    int fds[2], status;
    stream_t *s;
    buf_t *b = buf_new(0);
    pid_t pid;

    pair(fds);
    s = stream_open(fds[0]);
    stream_set_timeout(s, 1000);
    pid = trickle(fds[1], fds[0], "x", 30, 50);
    is_int(stream_getline(s, b, 100), STREAM_TIMEOUT,
           "getline: a line trickled slower than the deadline times out");
    waitpid(pid, &status, 0);
    stream_discard_input(s);
    pid = trickle(fds[1], fds[0], "0123456789", 30, 50);
    buf_reset(b);
    is_int(stream_read_exact(s, b, 300), 300,
           "read_exact: a body trickled over several timeouts still arrives");
    waitpid(pid, &status, 0);
    stream_free(&s);
    close(fds[0]);
    close(fds[1]);
    buf_free(&b);
}

static void test_pending(void)
{
    int fds[2];
    stream_t *s;
    buf_t *line = buf_new(0);

    pair(fds);
    s = stream_open(fds[0]);
    stream_set_timeout(s, 2000);
    is_int(stream_pending(s), 0, "nothing pending at first");
    puts_fd(fds[1], "a\nb\nc\n");
    is_int(stream_getline(s, line, 100), 2, "first line");
    is_int(stream_pending(s), 4, "two pipelined lines pending");
    stream_discard_input(s);
    is_int(stream_pending(s), 0, "discarded");
    puts_fd(fds[1], "d\n");
    is_int(stream_getline(s, line, 100), 2, "next line after discard");
    is_str(buf_cstr(line), "d\n", "the discarded lines are gone");
    stream_free(&s);
    close(fds[0]);
    close(fds[1]);
    buf_free(&line);
}

/* ---- the I/O hook ---- */

struct xor_ctx {
    int         fd;
    int         nread, nwrite;
    int         inprogress_once;    /* first read fails with EINPROGRESS */
    const char *stash;              /* bytes "buffered inside TLS", served first */
};

static void xor_bytes(void *data, size_t len)
{
    unsigned char *p = data;

    for (size_t i = 0; i < len; i++)
        p[i] ^= 0x5a;
}

static ssize_t xor_read(void *vctx, void *data, size_t len)
{
    struct xor_ctx *c = vctx;
    ssize_t n;

    c->nread++;
    if (c->inprogress_once) {
        c->inprogress_once = 0;
        errno = EINPROGRESS;
        return -1;
    }
    if (c->stash && *c->stash) {
        n = (ssize_t)strlen(c->stash);
        if ((size_t)n > len)
            n = (ssize_t)len;
        memcpy(data, c->stash, (size_t)n);
        c->stash += n;
        return n;
    }
    n = read(c->fd, data, len);
    if (n > 0)
        xor_bytes(data, (size_t)n);
    return n;
}

static ssize_t xor_write(void *vctx, const void *data, size_t len)
{
    struct xor_ctx *c = vctx;
    char *tmp = xmemdup(data, len);
    ssize_t n;

    c->nwrite++;
    xor_bytes(tmp, len);
    n = write(c->fd, tmp, len);
    free(tmp);
    return n;
}

static int xor_holds(void *vctx)
{
    struct xor_ctx *c = vctx;

    return c->stash && *c->stash;
}

static const struct stream_io xor_io = { xor_read, xor_write, NULL };
static const struct stream_io xor_io_holding = { xor_read, xor_write, xor_holds };

static void test_io_hook(void)
{
    int fds[2];
    stream_t *s;
    buf_t *line = buf_new(0), *raw;
    struct xor_ctx ctx = { 0 };
    char enc[] = "secret line\r\n";

    pair(fds);
    ctx.fd = fds[0];
    s = stream_open(fds[0]);
    stream_set_timeout(s, 2000);
    stream_set_io(s, &xor_io, &ctx);
    xor_bytes(enc, sizeof(enc) - 1);
    put(fds[1], enc, sizeof(enc) - 1);
    is_int(stream_getline(s, line, 100), 13, "line through the hook");
    is_str(buf_cstr(line), "secret line\r\n", "the hook decoded the bytes");
    ok(ctx.nread > 0, "the read hook was called");
    is_int(stream_puts(s, "reply\n"), 0, "write through the hook");
    is_int(stream_flush(s), 0, "flush through the hook");
    ok(ctx.nwrite > 0, "the write hook was called");
    {
        char got[7] = { 0 };

        is_int(read(fds[1], got, 6), 6, "peer got the encoded reply");
        ok(strcmp(got, "reply\n") != 0, "the wire bytes are not the plaintext");
        xor_bytes(got, 6);
        is_str(got, "reply\n", "decoded reply");
    }

    /* EINPROGRESS ("want write") on a read: the stream waits for POLLOUT
     * and tries again; the data arrives only then. */
    ctx.inprogress_once = 1;
    ctx.nread = 0;
    put(fds[1], enc, sizeof(enc) - 1);
    is_int(stream_getline(s, line, 100), 13, "read after EINPROGRESS from the hook");
    ok(ctx.nread >= 2, "the hook was retried after EINPROGRESS");

    /* Data buffered inside the hook, nothing on the fd: must not poll first. */
    ctx.stash = "from tls buffer\n";
    stream_set_timeout(s, 0);
    is_int(stream_getline(s, line, 100), 16, "hook-buffered data read without polling");
    is_str(buf_cstr(line), "from tls buffer\n", "hook-buffered line");

    /* A hook that says what it holds: right after a flush, with nothing
     * held, the stream waits on the fd before reading (here: times out
     * without calling the hook); with input held, it reads at once. */
    stream_set_io(s, &xor_io_holding, &ctx);
    ctx.nread = 0;
    ctx.stash = NULL;
    is_int(stream_puts(s, "question\n"), 0, "write before the held-input check");
    is_int(stream_flush(s), 0, "flush before the held-input check");
    is_int(stream_getline(s, line, 100), STREAM_TIMEOUT, "nothing held, nothing on the fd: a wait");
    is_int(ctx.nread, 0, "the hook was not asked to read before the fd was readable");
    ctx.stash = "held by tls\n";
    is_int(stream_puts(s, "question\n"), 0, "write before the second check");
    is_int(stream_flush(s), 0, "flush before the second check");
    is_int(stream_getline(s, line, 100), 12, "input held by the hook: read without waiting");
    is_str(buf_cstr(line), "held by tls\n", "the held line");
    {
        char got[32];

        is_int(read(fds[1], got, sizeof(got)), 18, "the peer got both questions");
    }

    /* Back to raw. */
    stream_set_io(s, NULL, NULL);
    stream_set_timeout(s, 2000);
    puts_fd(fds[1], "plain\n");
    is_int(stream_getline(s, line, 100), 6, "raw again after stream_set_io(NULL)");
    is_str(buf_cstr(line), "plain\n", "raw line");
    stream_puts(s, "out\n");
    stream_flush(s);
    shutdown(fds[0], SHUT_WR);
    raw = slurp_fd(fds[1]);
    is_str(buf_cstr(raw), "out\n", "raw write after the hook was removed");
    buf_free(&raw);
    stream_free(&s);
    close(fds[0]);
    close(fds[1]);
    buf_free(&line);
}

/* Misuse that must panic (*arg is an int): 0 set_io with output buffered,
 * 1 max_len 0, 2 a negative fd. */
static void misuse(void *arg)
{
    int what = *(const int *)arg;
    int fds[2];
    stream_t *s;
    struct xor_ctx ctx = { 0 };

    if (what == 2)
        stream_open(-1);
    pair(fds);
    s = stream_open(fds[0]);
    stream_puts(s, "unflushed");
    if (what == 0)
        stream_set_io(s, &xor_io, &ctx);
    else
        stream_getline(s, buf_new(0), 0);
}

/* ---- writes ---- */

static void test_big_write(void)
{
    int fds[2], status, small = 4096;
    size_t big = 4u << 20, total;
    unsigned long sum = 0;
    char *data;
    stream_t *s;
    buf_t *line = buf_new(0);
    pid_t pid;

    pair(fds);
    setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    pid = fork();
    if (pid == 0) {
        char tmp[1000];
        unsigned long csum = 0;
        size_t count = 0;
        ssize_t n;
        char *reply;

        close(fds[0]);
        msleep(50);     /* let the writer fill the socket buffer first */
        while ((n = read(fds[1], tmp, sizeof(tmp))) != 0) {
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                _exit(3);
            }
            for (ssize_t i = 0; i < n; i++)
                csum = csum * 31 + (unsigned char)tmp[i];
            count += (size_t)n;
        }
        reply = xasprintf("%zu %lu\n", count, csum);
        puts_fd(fds[1], reply);
        free(reply);
        _exit(0);
    }
    close(fds[1]);
    s = stream_open(fds[0]);
    stream_set_timeout(s, 20000);
    data = xmalloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (char)(i * 7 + i / 4096);
    is_int(stream_puts(s, "head"), 0, "small buffered write");
    is_int(stream_write(s, data, big), 0, "4 MB write to a slow reader");
    for (int i = 0; i < 20000; i++)
        if (stream_printf(s, "line %05d of many\r\n", i) < 0)
            break;
    is_int(stream_flush(s), 0, "flush after 20000 small writes");
    shutdown(fds[0], SHUT_WR);
    total = 4 + big;
    for (size_t i = 0; i < 4; i++)
        sum = sum * 31 + (unsigned char)"head"[i];
    for (size_t i = 0; i < big; i++)
        sum = sum * 31 + (unsigned char)data[i];
    for (int i = 0; i < 20000; i++) {
        char l[64];
        int n = snprintf(l, sizeof(l), "line %05d of many\r\n", i);

        for (int j = 0; j < n; j++)
            sum = sum * 31 + (unsigned char)l[j];
        total += (size_t)n;
    }
    {
        char *want = xasprintf("%zu %lu\n", total, sum);

        ok(stream_getline(s, line, 100) > 0, "reader replied");
        is_str(buf_cstr(line), want, "reader got every byte in order");
        free(want);
    }
    waitpid(pid, &status, 0);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "reader exited cleanly");
    free(data);
    stream_free(&s);
    close(fds[0]);
    buf_free(&line);
}

static void test_printf(void)
{
    int fds[2];
    stream_t *s;
    buf_t *got, *want = buf_new(0);
    char *longstr = xmalloc(20001);

    memset(longstr, 'L', 20000);
    longstr[20000] = '\0';
    pair(fds);
    s = stream_open(fds[0]);
    stream_set_timeout(s, 5000);
    is_int(stream_printf(s, "%d-%s|", 42, "x"), 0, "small printf");
    is_int(stream_printf(s, "[%s]", longstr), 0, "printf larger than the buffer");
    for (int i = 0; i < 1000; i++)
        stream_printf(s, "%04d,", i);
    is_int(stream_puts(s, "end"), 0, "puts");
    buf_printf(want, "%d-%s|[%s]", 42, "x", longstr);
    for (int i = 0; i < 1000; i++)
        buf_printf(want, "%04d,", i);
    buf_append_str(want, "end");
    stream_close(&s);
    ok(s == NULL, "stream_close NULLs the pointer");
    got = slurp_fd(fds[1]);
    is_int(got->len, want->len, "stream_close flushed everything");
    ok(got->len == want->len && memcmp(got->data, want->data, got->len) == 0,
       "printf output in order");
    close(fds[1]);
    buf_free(&got);
    buf_free(&want);
    free(longstr);
}

static void test_write_errors(void)
{
    int fds[2], small = 4096;
    stream_t *s;
    char *data;
    size_t big = 8u << 20;

    /* A peer that never reads: the write times out, and close does not hang. */
    pair(fds);
    setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    s = stream_open(fds[0]);
    stream_set_timeout(s, 30);
    data = xcalloc(1, big);
    is_int(stream_write(s, data, big), STREAM_TIMEOUT, "write to a stalled peer times out");
    stream_puts(s, "more");
    is_int(stream_flush(s), STREAM_TIMEOUT, "flush to a stalled peer times out");
    stream_set_timeout(s, -1);
    stream_close(&s);               /* must not block: skips the flush */
    ok(1, "stream_close after a write timeout returns");
    close(fds[1]);
    free(data);

    /* A peer that is gone: EPIPE, and no SIGPIPE kills us. */
    pair(fds);
    s = stream_open(fds[0]);
    close(fds[1]);
    stream_puts(s, "hello?\n");
    is_int(stream_flush(s), STREAM_ERROR, "flush to a closed peer fails");
    ok(errno == EPIPE || errno == ECONNRESET, "... with EPIPE (no SIGPIPE)");
    errno = 0;
    is_int(stream_puts(s, "again"), STREAM_ERROR, "write errors are sticky");
    ok(errno == EPIPE || errno == ECONNRESET, "... with the same errno");
    is_int(stream_flush(s), STREAM_ERROR, "flush after the error fails too");
    stream_close(&s);
}

static void test_pipe(void)
{
    int p[2];
    stream_t *w, *r;
    buf_t *line = buf_new(0);

    if (pipe(p) < 0)
        exit(2);
    w = stream_open(p[1]);
    r = stream_open(p[0]);
    stream_set_timeout(w, 2000);
    stream_set_timeout(r, 2000);
    is_int(stream_printf(w, "via pipe %d\n", 7), 0, "printf to a pipe");
    is_int(stream_flush(w), 0, "flush to a pipe (write(2) fallback)");
    is_int(stream_getline(r, line, 100), 11, "getline from a pipe");
    is_str(buf_cstr(line), "via pipe 7\n", "pipe line");
    stream_close(&w);
    is_int(stream_getline(r, line, 100), STREAM_EOF, "EOF when the writer closes");
    stream_close(&r);
    buf_free(&line);
}

int main(void)
{
    alarm(60);
    msg_init("stream-test", MSG_STDERR);
    test_terminators();
    test_pieces();
    test_eof();
    test_toolong();
    test_read();
    test_timeouts();
    test_deadline_kinds();
    test_pending();
    test_io_hook();
    ok(dies_with_abort_arg(misuse, &(int){0}), "set_io with buffered output panics");
    ok(dies_with_abort_arg(misuse, &(int){1}), "getline with max_len 0 panics");
    ok(dies_with_abort_arg(misuse, &(int){2}), "stream_open(-1) panics");
    test_big_write();
    test_printf();
    test_write_errors();
    test_pipe();
    return done_testing();
}
