/*
 * t/unit/ipc.c - unit tests for lib/ipc.c: field encoding, framing over
 * socketpairs (short reads, oversize, truncation, malformed fields), fd
 * passing and its failure modes (never leaking a received fd), deadlines,
 * the non-blocking reader (pieces, fds, EOF, bad headers), the hello
 * handshake and ipc_hello_check, SO_PEERCRED checks (as root, with a child that became
 * nobody), the name registry and ipc_connect/ipc_listen.
 *
 * Every child is reaped; alarm() guards against hangs.  The credential tests
 * are skipped when not running as root.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "ipc.h"
#include "msg.h"
#include "xalloc.h"
#include "../lib/tap.h"
#include "../lib/testlib.h"

#define NOBODY 65534

static void skip(const char *why)
{
    tap_count++;
    printf("ok %d # skip %s\n", tap_count, why);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;   /* the DIR's own fd */
}

static void pair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        diag("socketpair: %s", strerror(errno));
        exit(2);
    }
}

static long elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Put a raw 16-byte header into out. */
static void raw_header(unsigned char *out, uint32_t type, uint32_t len,
                       uint32_t reqid, uint32_t flags)
{
    uint32_t f[4] = {type, len, reqid, flags};
    int i;

    for (i = 0; i < 4; i++) {
        out[4 * i] = (unsigned char)(f[i] >> 24);
        out[4 * i + 1] = (unsigned char)(f[i] >> 16);
        out[4 * i + 2] = (unsigned char)(f[i] >> 8);
        out[4 * i + 3] = (unsigned char)f[i];
    }
}

/* Send bytes with nfds descriptors attached to the first byte. */
static ssize_t raw_send(int sock, const void *p, size_t len, const int *fds, int nfds)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * 4)];
    } ctl;
    struct iovec iov = {(void *)p, len};
    struct msghdr mh;

    memset(&mh, 0, sizeof(mh));
    memset(&ctl, 0, sizeof(ctl));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (nfds > 0) {
        struct cmsghdr *c;

        mh.msg_control = ctl.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    }
    return sendmsg(sock, &mh, MSG_NOSIGNAL);
}

/* Send a frame with a raw header and payload (fds on the first byte). */
static void raw_frame(int sock, uint32_t type, uint32_t len, uint32_t flags,
                      const void *payload, size_t plen, const int *fds, int nfds)
{
    unsigned char *b = xmalloc(IPC_HEADER_SIZE + plen);

    raw_header(b, type, len, 0, flags);
    if (plen)
        memcpy(b + IPC_HEADER_SIZE, payload, plen);
    if (raw_send(sock, b, IPC_HEADER_SIZE + plen, fds, nfds) != (ssize_t)(IPC_HEADER_SIZE + plen))
        diag("raw_frame: short send: %s", strerror(errno));
    free(b);
}

/* Receive one frame whose payload is given raw (no fd). */
static ipc_msg_t *recv_raw_payload(const void *payload, size_t plen)
{
    ipc_msg_t *m = NULL;
    int sv[2];

    pair(sv);
    raw_frame(sv[0], 42, (uint32_t)plen, 0, payload, plen, NULL, 0);
    if (ipc_recv(sv[1], &m, IPC_MAX_PAYLOAD, 2000) != 1)
        diag("recv_raw_payload: %s", strerror(errno));
    close(sv[0]);
    close(sv[1]);
    return m;
}

/* ------------------------------------------------------------------ tests */

static void test_roundtrip(void)
{
    static const unsigned char bin[] = {0, 1, 2, 0xff, 0, 's', 'i'};
    ipc_msg_t *m = ipc_msg_new(1234, 0xdeadbeef), *r = NULL;
    int64_t v;
    char *s;
    const void *p;
    size_t len;
    int sv[2];

    pair(sv);
    ipc_put_int(m, 0);
    ipc_put_int(m, -1);
    ipc_put_int(m, INT64_MIN);
    ipc_put_int(m, INT64_MAX);
    ipc_put_int(m, 0x0102030405060708LL);
    ipc_put_str(m, "hello, world");
    ipc_put_str(m, "");
    ipc_put_bytes(m, bin, sizeof(bin));
    ipc_put_bytes(m, NULL, 0);
    ipc_put_bytes(m, "x", 0);
    is_int(m->payload->len, 5 * 9 + 2 * 5 + 12 + 3 * 5 + sizeof(bin), "payload length of encoded fields");

    is_int(ipc_send(sv[0], m, 2000), 0, "send a frame with every field type");
    is_int(ipc_recv(sv[1], &r, IPC_MAX_PAYLOAD, 2000), 1, "receive it");
    if (r == NULL) {
        ipc_msg_free(&m);
        close(sv[0]);
        close(sv[1]);
        return;
    }
    is_int(r->type, 1234, "type preserved");
    is_int(r->reqid, 0xdeadbeef, "request id preserved");
    is_int(r->flags, 0, "no flags");
    is_int(r->fd, -1, "no fd");
    ok(ipc_get_int(r, &v) == 0 && v == 0, "int 0");
    ok(ipc_get_int(r, &v) == 0 && v == -1, "int -1");
    ok(ipc_get_int(r, &v) == 0 && v == INT64_MIN, "int INT64_MIN");
    ok(ipc_get_int(r, &v) == 0 && v == INT64_MAX, "int INT64_MAX");
    ok(ipc_get_int(r, &v) == 0 && v == 0x0102030405060708LL, "int byte order");
    is_int(ipc_get_end(r), -1, "get_end -1 while fields remain");
    is_int(ipc_get_str(r, &s), 0, "get string");
    is_str(s, "hello, world", "string value");
    free(s);
    is_int(ipc_get_str(r, &s), 0, "get empty string");
    is_str(s, "", "empty string is a fresh empty C string");
    free(s);
    ok(ipc_get_bytes(r, &p, &len) == 0 && len == sizeof(bin) && memcmp(p, bin, len) == 0,
       "bytes with embedded NULs");
    ok(ipc_get_bytes(r, &p, &len) == 0 && len == 0 && p != NULL, "zero-length bytes (NULL put)");
    ok(ipc_get_bytes(r, &p, &len) == 0 && len == 0, "zero-length bytes");
    is_int(ipc_get_end(r), 0, "payload consumed exactly");
    errno = 0;
    ok(ipc_get_int(r, &v) < 0 && errno == EPROTO && v == 0, "int past the end fails (EPROTO)");
    ok(ipc_get_str(r, &s) < 0 && s == NULL, "string past the end fails, *s NULL");
    ok(ipc_get_bytes(r, &p, &len) < 0 && p == NULL && len == 0, "bytes past the end fails");
    is_int(ipc_get_end(r), 0, "failed gets do not move the read position");
    is_int(ipc_take_fd(r), -1, "take_fd without an fd gives -1");
    ipc_msg_free(&r);
    ok(r == NULL, "msg_free NULLs the pointer");
    ipc_msg_free(&r);
    ipc_msg_free(&m);
    close(sv[0]);
    close(sv[1]);
}

static void test_local_fields(void)
{
    ipc_msg_t *m = ipc_msg_new(7, 1);
    int64_t v;
    char *s = (char *)"junk";
    const void *p;
    size_t len;

    ipc_put_str(m, "abc");
    ipc_put_int(m, 5);
    ok(ipc_get_int(m, &v) < 0, "wrong tag: int where a string is");
    ok(ipc_get_bytes(m, &p, &len) < 0, "wrong tag: bytes where a string is");
    is_int(m->rpos, 0, "wrong tag leaves the read position");
    ok(ipc_get_str(m, &s) == 0 && strcmp(s, "abc") == 0, "then the right getter works");
    free(s);
    ok(ipc_get_str(m, &s) < 0 && s == NULL, "wrong tag: string where an int is");
    ok(ipc_get_int(m, &v) == 0 && v == 5, "int after it");
    is_int(ipc_get_end(m), 0, "end");
    ipc_msg_free(&m);

    m = ipc_msg_new(8, 0);
    is_int(ipc_get_end(m), 0, "empty payload is consumed exactly");
    ok(ipc_get_int(m, &v) < 0, "int from empty payload fails");
    ok(ipc_get_str(m, &s) < 0, "string from empty payload fails");
    ipc_msg_free(&m);
}

static void test_bad_wire_fields(void)
{
    ipc_msg_t *m;
    int64_t v;
    char *s;
    const void *p;
    size_t len;

    /* unknown tag */
    m = recv_raw_payload("x\0\0\0\0", 5);
    ok(m != NULL, "frame with a bad tag is still a frame");
    if (m) {
        ok(ipc_get_int(m, &v) < 0 && ipc_get_str(m, &s) < 0 && ipc_get_bytes(m, &p, &len) < 0,
           "bad tag 'x' rejected by every getter");
        is_int(ipc_get_end(m), -1, "bad-tag payload is not consumed");
        ipc_msg_free(&m);
    }

    /* truncated int */
    m = recv_raw_payload("i\0\0\0", 4);
    if (m) {
        ok(ipc_get_int(m, &v) < 0, "int field shorter than 8 bytes rejected");
        ipc_msg_free(&m);
    } else {
        ok(0, "int field shorter than 8 bytes rejected");
    }

    /* string longer than the payload */
    m = recv_raw_payload("s\0\0\0\x10" "abc", 8);
    if (m) {
        ok(ipc_get_str(m, &s) < 0 && s == NULL, "string length beyond the payload rejected");
        ipc_msg_free(&m);
    } else {
        ok(0, "string length beyond the payload rejected");
    }

    /* string length 0xffffffff (overflow bait) */
    m = recv_raw_payload("b\xff\xff\xff\xff" "abc", 8);
    if (m) {
        ok(ipc_get_bytes(m, &p, &len) < 0, "bytes length 0xffffffff rejected");
        ipc_msg_free(&m);
    } else {
        ok(0, "bytes length 0xffffffff rejected");
    }

    /* tag alone, no length */
    m = recv_raw_payload("s\0\0", 3);
    if (m) {
        ok(ipc_get_str(m, &s) < 0, "string with a truncated length rejected");
        ipc_msg_free(&m);
    } else {
        ok(0, "string with a truncated length rejected");
    }

    /* string containing NUL on the wire */
    m = recv_raw_payload("s\0\0\0\x03" "a\0b", 8);
    if (m) {
        errno = 0;
        ok(ipc_get_str(m, &s) < 0 && errno == EPROTO && s == NULL,
           "string with a NUL inside rejected by ipc_get_str (EPROTO)");
        is_int(m->rpos, 0, "read position unchanged");
        ipc_msg_free(&m);
    } else {
        ok(0, "string with a NUL inside rejected");
        ok(0, "read position unchanged");
    }

    /* a payload with trailing junk */
    m = recv_raw_payload("i\0\0\0\0\0\0\0\x09" "Z", 10);
    if (m) {
        ok(ipc_get_int(m, &v) == 0 && v == 9, "leading int parses");
        errno = 0;
        ok(ipc_get_end(m) < 0 && errno == EPROTO, "trailing byte: ipc_get_end -1 (EPROTO)");
        ipc_msg_free(&m);
    } else {
        ok(0, "leading int parses");
        ok(0, "trailing byte");
    }
}

static void test_pipelined(void)
{
    ipc_msg_t *m, *r = NULL;
    int sv[2], p[2], i, good = 1;
    int64_t v;

    pair(sv);
    if (pipe2(p, O_CLOEXEC) < 0)
        exit(2);
    for (i = 0; i < 3; i++) {
        m = ipc_msg_new(100 + (uint32_t)i, (uint32_t)i);
        ipc_put_int(m, i);
        if (i == 1)
            ipc_set_fd(m, dup(p[1]));
        if (ipc_send(sv[0], m, 2000) < 0)
            good = 0;
        ipc_msg_free(&m);
    }
    ok(good, "three frames sent back to back (the middle one with an fd)");
    for (i = 0; i < 3; i++) {
        int rc = ipc_recv(sv[1], &r, IPC_MAX_PAYLOAD, 2000);

        ok(rc == 1 && r->type == 100u + (uint32_t)i && r->reqid == (uint32_t)i
           && ipc_get_int(r, &v) == 0 && v == i && ipc_get_end(r) == 0
           && (r->fd >= 0) == (i == 1), "frame %d intact, fd only on frame 1", i);
        ipc_msg_free(&r);
    }
    close(p[0]);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
}

/* A writer child delivers a frame one byte at a time, the fd with the first. */
static void test_short_reads(void)
{
    ipc_msg_t *m = ipc_msg_new(9, 77), *r = NULL;
    buf_t *frame = buf_new(0);
    int sv[2], wire[2], p[2];
    char tmp[4096], c = 0;
    ssize_t n;
    pid_t pid;
    int64_t v;
    char *s;
    const void *bp;
    size_t len;

    /* Serialise with ipc_send itself, then replay byte by byte. */
    pair(wire);
    ipc_put_str(m, "slowly");
    ipc_put_int(m, -42);
    ipc_put_bytes(m, "\0\1\2", 3);
    ipc_send(wire[0], m, 2000);
    close(wire[0]);
    while ((n = read(wire[1], tmp, sizeof(tmp))) > 0)
        buf_append(frame, tmp, (size_t)n);
    close(wire[1]);
    is_int(frame->len, IPC_HEADER_SIZE + m->payload->len, "serialised frame length");
    /* Mark it as carrying an fd. */
    frame->data[15] |= IPC_FLAG_FD;

    pair(sv);
    if (pipe2(p, O_CLOEXEC) < 0)
        exit(2);
    pid = fork();
    if (pid == 0) {
        size_t i;

        close(sv[1]);
        for (i = 0; i < frame->len; i++) {
            if (raw_send(sv[0], frame->data + i, 1, &p[1], i == 0) != 1)
                _exit(1);
            usleep(1000);
        }
        _exit(0);
    }
    close(sv[0]);
    close(p[1]);
    is_int(ipc_recv(sv[1], &r, IPC_MAX_PAYLOAD, 10000), 1, "frame received one byte at a time");
    if (r) {
        int fd = ipc_take_fd(r);

        ok(r->type == 9 && r->reqid == 77, "header intact");
        ok(ipc_get_str(r, &s) == 0 && strcmp(s, "slowly") == 0, "string intact");
        free(s);
        ok(ipc_get_int(r, &v) == 0 && v == -42, "int intact");
        ok(ipc_get_bytes(r, &bp, &len) == 0 && len == 3 && memcmp(bp, "\0\1\2", 3) == 0,
           "bytes intact");
        is_int(ipc_get_end(r), 0, "consumed exactly");
        ok(fd >= 0 && write(fd, "Z", 1) == 1, "fd sent with the first byte arrived");
        ok(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC), "received fd is close-on-exec");
        if (fd >= 0)
            close(fd);
        ok(read(p[0], &c, 1) == 1 && c == 'Z', "written through it");
        ipc_msg_free(&r);
    }
    ok(WIFEXITED(reap(pid)), "writer child reaped");
    close(sv[1]);
    close(p[0]);
    buf_free(&frame);
    ipc_msg_free(&m);
}

/* A large frame needs a concurrent reader: child sends, parent receives. */
static void test_large(void)
{
    size_t n = IPC_MAX_PAYLOAD - 5, i;
    unsigned char *big = xmalloc(n);
    ipc_msg_t *r = NULL;
    const void *p;
    size_t len;
    int sv[2];
    pid_t pid;

    for (i = 0; i < n; i++)
        big[i] = (unsigned char)(i * 31 + 7);
    pair(sv);
    pid = fork();
    if (pid == 0) {
        ipc_msg_t *m = ipc_msg_new(3, 3);

        close(sv[1]);
        ipc_put_bytes(m, big, n);
        _exit(ipc_send(sv[0], m, 10000) == 0 ? 0 : 1);
    }
    close(sv[0]);
    is_int(ipc_recv(sv[1], &r, IPC_MAX_PAYLOAD, 10000), 1,
           "payload of exactly max_payload bytes is accepted");
    ok(r && ipc_get_bytes(r, &p, &len) == 0 && len == n && memcmp(p, big, n) == 0
       && ipc_get_end(r) == 0, "1 MiB payload intact");
    {
        int st = reap(pid);

        ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sender child succeeded");
    }
    ipc_msg_free(&r);
    close(sv[1]);
    free(big);
}

static void test_oversize(void)
{
    ipc_msg_t *m = ipc_msg_new(5, 0), *r = (ipc_msg_t *)1;
    int sv[2], p[2], before;
    char junk[200];

    memset(junk, 'j', sizeof(junk));
    ipc_put_bytes(m, junk, sizeof(junk));
    pair(sv);
    ipc_send(sv[0], m, 2000);
    errno = 0;
    is_int(ipc_recv(sv[1], &r, 100, 2000), -1, "frame over max_payload fails");
    is_int(errno, EMSGSIZE, "errno EMSGSIZE");
    ok(r == NULL, "*mp NULL on failure");
    close(sv[0]);
    close(sv[1]);
    ipc_msg_free(&m);

    /* A header claiming 4 GiB - 1: refused before any allocation. */
    pair(sv);
    raw_frame(sv[0], 1, 0xffffffffu, 0, NULL, 0, NULL, 0);
    errno = 0;
    ok(ipc_recv(sv[1], &r, IPC_MAX_PAYLOAD, 2000) == -1 && errno == EMSGSIZE,
       "header with length 0xffffffff: EMSGSIZE");
    close(sv[0]);
    close(sv[1]);

    /* An oversize frame carrying an fd: the fd is closed. */
    pair(sv);
    if (pipe2(p, O_CLOEXEC) < 0)
        exit(2);
    before = count_fds();
    raw_frame(sv[0], 1, 5000, IPC_FLAG_FD, NULL, 0, &p[1], 1);
    errno = 0;
    ok(ipc_recv(sv[1], &r, 1000, 2000) == -1 && errno == EMSGSIZE,
       "oversize frame with an fd: EMSGSIZE");
    is_int(count_fds(), before, "the fd that came with it was closed");
    close(p[0]);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
}

static void test_truncated(void)
{
    ipc_msg_t *r = NULL;
    int sv[2];
    unsigned char hdr[IPC_HEADER_SIZE];

    pair(sv);
    close(sv[0]);
    is_int(ipc_recv(sv[1], &r, IPC_MAX_PAYLOAD, 2000), 0, "clean EOF before a frame: 0");
    close(sv[1]);

    pair(sv);
    raw_frame(sv[0], 1, 100, 0, "i\0\0\0\0\0\0\0\1", 9, NULL, 0);
    close(sv[0]);
    errno = 0;
    ok(ipc_recv(sv[1], &r, IPC_MAX_PAYLOAD, 2000) == -1 && errno == EPROTO && r == NULL,
       "payload cut short then EOF: EPROTO");
    close(sv[1]);

    pair(sv);
    raw_header(hdr, 1, 0, 0, 0);
    (void)!write(sv[0], hdr, 7);
    close(sv[0]);
    errno = 0;
    ok(ipc_recv(sv[1], &r, IPC_MAX_PAYLOAD, 2000) == -1 && errno == EPROTO,
       "header cut short then EOF: EPROTO");
    close(sv[1]);
}

static void test_fd_passing(void)
{
    ipc_msg_t *m = ipc_msg_new(11, 5), *r = NULL;
    int sv[2], p[2], fd, before;
    char got[8] = "";
    int64_t v;

    pair(sv);
    if (pipe2(p, O_CLOEXEC) < 0)
        exit(2);
    ipc_put_int(m, 1);
    ipc_set_fd(m, p[1]);             /* m owns the write end now */
    is_int(m->flags & IPC_FLAG_FD, IPC_FLAG_FD, "set_fd sets IPC_FLAG_FD");
    is_int(ipc_send(sv[0], m, 2000), 0, "send a frame with a pipe's write end");
    ipc_msg_free(&m);                 /* closes our copy of the write end */
    is_int(ipc_recv(sv[1], &r, IPC_MAX_PAYLOAD, 2000), 1, "receive it");
    if (r == NULL) {
        close(p[0]);
        close(sv[0]);
        close(sv[1]);
        return;
    }
    ok(r->flags & IPC_FLAG_FD, "flag set on the received frame");
    ok(ipc_get_int(r, &v) == 0 && v == 1 && ipc_get_end(r) == 0, "payload intact");
    fd = ipc_take_fd(r);
    ok(fd >= 0, "take_fd gives the fd");
    is_int(ipc_take_fd(r), -1, "a second take_fd gives -1");
    ok(fcntl(fd, F_GETFD) & FD_CLOEXEC, "received fd is close-on-exec (MSG_CMSG_CLOEXEC)");
    ok(write(fd, "ping", 4) == 4, "write through the received fd");
    close(fd);
    ok(read(p[0], got, sizeof(got) - 1) == 4 && strcmp(got, "ping") == 0,
       "read it at the pipe's other end");
    ok(read(p[0], got, 1) == 0, "pipe at EOF: no copy of the write end leaked");
    ipc_msg_free(&r);
    close(p[0]);

    /* A received message that keeps its fd closes it on free. */
    if (pipe2(p, O_CLOEXEC) < 0)
        exit(2);
    m = ipc_msg_new(12, 0);
    ipc_set_fd(m, p[1]);
    ipc_send(sv[0], m, 2000);
    ipc_msg_free(&m);
    before = count_fds();
    ipc_recv(sv[1], &r, IPC_MAX_PAYLOAD, 2000);
    is_int(count_fds(), before + 1, "one fd received");
    ipc_msg_free(&r);
    is_int(count_fds(), before, "msg_free closes the received fd");
    ok(read(p[0], got, 1) == 0, "so the pipe sees EOF");
    close(p[0]);
    close(sv[0]);
    close(sv[1]);
}

/* The non-blocking reader: a frame in pieces, an fd on its header, frames
 * back to back, EOF between frames and inside one, a bad header. */
static void test_reader(void)
{
    ipc_reader_t *r = ipc_reader_new(IPC_MAX_PAYLOAD);
    ipc_msg_t *m = ipc_msg_new(21, 9), *got = NULL;
    buf_t *wire = buf_new(0);
    unsigned char hdr[IPC_HEADER_SIZE];
    int sv[2], p[2], rc = 0, pieces_ok = 1;
    char *str = NULL;

    pair(sv);
    /* Build the wire form by sending it over a second pair. */
    {
        int w[2];
        char chunk[256];
        ssize_t n;

        pair(w);
        ipc_put_str(m, "reader");
        ipc_put_int(m, 77);
        ipc_send(w[0], m, 2000);
        close(w[0]);
        while ((n = read(w[1], chunk, sizeof(chunk))) > 0)
            buf_append(wire, chunk, (size_t)n);
        close(w[1]);
    }
    for (size_t i = 0; i < wire->len; i++) {
        if (write(sv[0], wire->data + i, 1) != 1)
            exit(2);
        rc = ipc_reader_recv(r, sv[1], &got);
        if (i + 1 < wire->len && !(rc == -1 && errno == EAGAIN && got == NULL))
            pieces_ok = 0;
    }
    ok(pieces_ok, "a frame sent byte by byte: EAGAIN until its last byte");
    ok(rc == 1 && got != NULL && got->type == 21 && got->reqid == 9, "then the whole frame");
    ok(got && ipc_get_str(got, &str) == 0 && strcmp(str, "reader") == 0, "with its payload");
    free(str);
    ipc_msg_free(&got);
    rc = ipc_reader_recv(r, sv[1], &got);
    ok(rc == -1 && errno == EAGAIN, "nothing more: EAGAIN");

    /* Two frames in one write come out one at a time. */
    buf_t *two = buf_new(0);
    buf_append(two, wire->data, wire->len);
    buf_append(two, wire->data, wire->len);
    if (write(sv[0], two->data, two->len) != (ssize_t)two->len)
        exit(2);
    buf_free(&two);
    ok(ipc_reader_recv(r, sv[1], &got) == 1, "two frames in one write: the first");
    ipc_msg_free(&got);
    ok(ipc_reader_recv(r, sv[1], &got) == 1, "and the second");
    ipc_msg_free(&got);

    /* An fd on the header, the payload after a pause. */
    if (pipe2(p, O_CLOEXEC) < 0)
        exit(2);
    raw_header(hdr, 22, 0, 1, IPC_FLAG_FD);
    raw_send(sv[0], hdr, 5, &p[1], 1);
    close(p[1]);
    ok(ipc_reader_recv(r, sv[1], &got) == -1 && errno == EAGAIN, "fd with a partial header");
    if (write(sv[0], hdr + 5, sizeof(hdr) - 5) != (ssize_t)(sizeof(hdr) - 5))
        exit(2);
    ok(ipc_reader_recv(r, sv[1], &got) == 1 && got && got->fd >= 0,
       "the rest of the header: the frame, with its fd");
    ipc_msg_free(&got);
    ok(read(p[0], hdr, 1) == 0, "no copy of the fd left behind");
    close(p[0]);

    /* A bad header fails at once; EOF inside a frame is EPROTO. */
    raw_header(hdr, 23, 100, 1, 0x80);
    if (write(sv[0], hdr, sizeof(hdr)) != sizeof(hdr))
        exit(2);
    ok(ipc_reader_recv(r, sv[1], &got) == -1 && errno == EPROTO, "unknown flag bits: EPROTO");
    raw_header(hdr, 24, 100, 1, 0);
    if (write(sv[0], hdr, sizeof(hdr)) != sizeof(hdr) || write(sv[0], "abc", 3) != 3)
        exit(2);
    close(sv[0]);
    ok(ipc_reader_recv(r, sv[1], &got) == -1 && errno == EPROTO, "EOF inside a frame: EPROTO");
    close(sv[1]);

    /* A clean EOF between frames is 0; an oversize header EMSGSIZE. */
    pair(sv);
    close(sv[0]);
    is_int(ipc_reader_recv(r, sv[1], &got), 0, "EOF between frames: 0");
    close(sv[1]);
    ipc_reader_free(&r);
    r = ipc_reader_new(10);
    pair(sv);
    raw_header(hdr, 25, 11, 1, 0);
    if (write(sv[0], hdr, sizeof(hdr)) != sizeof(hdr))
        exit(2);
    ok(ipc_reader_recv(r, sv[1], &got) == -1 && errno == EMSGSIZE, "over max_payload: EMSGSIZE");
    close(sv[0]);
    close(sv[1]);
    ipc_reader_free(&r);
    ok(r == NULL, "reader_free clears the pointer");
    ipc_msg_free(&m);
    buf_free(&wire);
}

static void test_fd_errors(void)
{
    ipc_msg_t *r = NULL;
    int sv[2], p[2], before, two[2];
    unsigned char hdr[IPC_HEADER_SIZE];

    if (pipe2(p, O_CLOEXEC) < 0)
        exit(2);
    before = count_fds();

    pair(sv);
    raw_frame(sv[0], 1, 0, IPC_FLAG_FD, NULL, 0, NULL, 0);
    errno = 0;
    ok(ipc_recv(sv[1], &r, IPC_MAX_PAYLOAD, 2000) == -1 && errno == EPROTO,
       "IPC_FLAG_FD without an fd: EPROTO");
    close(sv[0]);
    close(sv[1]);

    pair(sv);
    raw_frame(sv[0], 1, 0, 0, NULL, 0, &p[1], 1);
    errno = 0;
    ok(ipc_recv(sv[1], &r, IPC_MAX_PAYLOAD, 2000) == -1 && errno == EPROTO,
       "an fd without IPC_FLAG_FD: EPROTO");
    close(sv[0]);
    close(sv[1]);
    is_int(count_fds(), before, "and the stray fd was closed");

    pair(sv);
    two[0] = p[0];
    two[1] = p[1];
    raw_frame(sv[0], 1, 0, IPC_FLAG_FD, NULL, 0, two, 2);
    errno = 0;
    ok(ipc_recv(sv[1], &r, IPC_MAX_PAYLOAD, 2000) == -1 && errno == EPROTO,
       "two fds on one frame: EPROTO");
    close(sv[0]);
    close(sv[1]);
    is_int(count_fds(), before, "both fds closed");

    /* An fd attached to a payload byte rather than the header. */
    pair(sv);
    raw_header(hdr, 1, 9, 0, 0);
    (void)!write(sv[0], hdr, sizeof(hdr));
    raw_send(sv[0], "i\0\0\0\0\0\0\0\1", 9, &p[1], 1);
    errno = 0;
    ok(ipc_recv(sv[1], &r, IPC_MAX_PAYLOAD, 2000) == -1 && errno == EPROTO,
       "an fd inside the payload: EPROTO");
    close(sv[0]);
    close(sv[1]);
    is_int(count_fds(), before, "and it was closed");

    /* Unknown flag bits. */
    pair(sv);
    raw_frame(sv[0], 1, 0, 0x80, NULL, 0, NULL, 0);
    errno = 0;
    ok(ipc_recv(sv[1], &r, IPC_MAX_PAYLOAD, 2000) == -1 && errno == EPROTO,
       "unknown flag bits: EPROTO");
    close(sv[0]);
    close(sv[1]);

    /* Unknown flag bits with an fd: fd closed too. */
    pair(sv);
    raw_frame(sv[0], 1, 0, 0x80 | IPC_FLAG_FD, NULL, 0, &p[1], 1);
    ok(ipc_recv(sv[1], &r, IPC_MAX_PAYLOAD, 2000) == -1, "unknown flags with an fd fail");
    close(sv[0]);
    close(sv[1]);
    is_int(count_fds(), before, "and the fd was closed");
    close(p[0]);
    close(p[1]);
}

static void test_timeouts(void)
{
    ipc_msg_t *r = NULL, *m;
    struct timespec t0;
    int sv[2], bufsz = 4096;
    long ms;
    pid_t pid;
    unsigned char hdr[IPC_HEADER_SIZE];
    char *big;

    pair(sv);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    errno = 0;
    ok(ipc_recv(sv[1], &r, IPC_MAX_PAYLOAD, 150) == -1 && errno == ETIMEDOUT,
       "silent peer: ETIMEDOUT");
    ms = elapsed_ms(&t0);
    ok(ms >= 140 && ms < 3000, "after about the timeout (%ld ms)", ms);

    /* half a header, then silence */
    raw_header(hdr, 1, 0, 0, 0);
    (void)!write(sv[0], hdr, 5);
    errno = 0;
    ok(ipc_recv(sv[1], &r, IPC_MAX_PAYLOAD, 100) == -1 && errno == ETIMEDOUT,
       "partial header then silence: ETIMEDOUT");
    close(sv[0]);
    close(sv[1]);

    /* A peer trickling bytes cannot stretch the deadline: it is per frame. */
    pair(sv);
    pid = fork();
    if (pid == 0) {
        unsigned char b[IPC_HEADER_SIZE + 100];
        size_t i;

        close(sv[1]);
        memset(b, 'b', sizeof(b));
        raw_header(b, 1, 100, 0, 0);
        for (i = 0; i < sizeof(b); i++) {
            if (send(sv[0], b + i, 1, MSG_NOSIGNAL) != 1)
                _exit(0);
            usleep(30000);
        }
        _exit(0);
    }
    close(sv[0]);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    errno = 0;
    ok(ipc_recv(sv[1], &r, IPC_MAX_PAYLOAD, 300) == -1 && errno == ETIMEDOUT,
       "trickling peer: ETIMEDOUT");
    ms = elapsed_ms(&t0);
    ok(ms >= 290 && ms < 3000, "one deadline for the whole frame (%ld ms)", ms);
    close(sv[1]);
    reap(pid);

    /* Send side: a peer that never reads. */
    pair(sv);
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
    big = xcalloc(1, 1 << 20);
    m = ipc_msg_new(2, 0);
    ipc_put_bytes(m, big, 1 << 20);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    errno = 0;
    ok(ipc_send(sv[0], m, 150) == -1 && errno == ETIMEDOUT, "peer not reading: send ETIMEDOUT");
    ms = elapsed_ms(&t0);
    ok(ms >= 140 && ms < 3000, "after about the timeout (%ld ms)", ms);
    close(sv[0]);
    close(sv[1]);

    /* Peer gone: EPIPE, and no SIGPIPE kills us. */
    pair(sv);
    close(sv[1]);
    errno = 0;
    ok(ipc_send(sv[0], m, 1000) == -1 && (errno == EPIPE || errno == ECONNRESET),
       "send to a closed peer: EPIPE without SIGPIPE");
    close(sv[0]);
    ipc_msg_free(&m);
    free(big);
}

static void test_hello(void)
{
    const char *why = NULL;
    ipc_msg_t *m;
    int sv[2];

    pair(sv);
    is_int(ipc_hello_send(sv[0], "cleanup", 2, 1000), 0, "hello sent");
    is_int(ipc_hello_recv(sv[1], "cleanup", 2, 1000, &why), 0, "hello accepted");

    ipc_hello_send(sv[0], "qmgr", 2, 1000);
    errno = 0;
    ok(ipc_hello_recv(sv[1], "cleanup", 2, 1000, &why) == -1 && errno == EPROTO,
       "wrong protocol rejected (EPROTO)");
    is_str(why, "wrong protocol", "why: wrong protocol");

    ipc_hello_send(sv[0], "cleanup", 3, 1000);
    errno = 0;
    ok(ipc_hello_recv(sv[1], "cleanup", 2, 1000, &why) == -1 && errno == EPROTO,
       "wrong version rejected (EPROTO)");
    is_str(why, "wrong version", "why: wrong version");

    m = ipc_msg_new(7, 0);
    ipc_put_str(m, "cleanup");
    ipc_put_int(m, 2);
    ipc_send(sv[0], m, 1000);
    ipc_msg_free(&m);
    ok(ipc_hello_recv(sv[1], "cleanup", 2, 1000, &why) == -1, "another type first: rejected");
    is_str(why, "not a hello", "why: not a hello");

    m = ipc_msg_new(IPC_HELLO, 0);
    ipc_put_str(m, "cleanup");
    ipc_put_int(m, 2);
    ipc_put_int(m, 0);
    ipc_send(sv[0], m, 1000);
    ipc_msg_free(&m);
    ok(ipc_hello_recv(sv[1], "cleanup", 2, 1000, &why) == -1, "hello with trailing field rejected");
    is_str(why, "malformed hello", "why: malformed hello");

    m = ipc_msg_new(IPC_HELLO, 0);
    ipc_put_int(m, 2);
    ipc_put_str(m, "cleanup");
    ipc_send(sv[0], m, 1000);
    ipc_msg_free(&m);
    ok(ipc_hello_recv(sv[1], "cleanup", 2, 1000, &why) == -1, "hello with fields swapped rejected");
    is_str(why, "malformed hello", "why: malformed hello");

    errno = 0;
    ok(ipc_hello_recv(sv[1], "cleanup", 2, 100, &why) == -1 && errno == ETIMEDOUT,
       "no hello: ETIMEDOUT");
    like(why, "timed out", "why mentions the timeout");

    close(sv[0]);
    ok(ipc_hello_recv(sv[1], "cleanup", 2, 1000, &why) == -1, "EOF instead of hello rejected");
    like(why, "closed", "why: connection closed");
    close(sv[1]);
}

static void test_names(void)
{
    static const struct ipc_name names[] = {
        {17, "test-seventeen"}, {18, "test-eighteen"},
    };
    static const struct ipc_name again[] = {{17, "test-seventeen"}};

    is_str(ipc_type_name(IPC_HELLO), "hello", "type 0 is hello");
    is_str(ipc_type_name(17), "type-17", "unknown type: type-17");
    is_str(ipc_type_name(UINT32_MAX), "type-4294967295", "largest type number");
    ipc_register_names(names, 2);
    is_str(ipc_type_name(17), "test-seventeen", "registered name");
    is_str(ipc_type_name(18), "test-eighteen", "second registered name");
    ipc_register_names(again, 1);
    is_str(ipc_type_name(17), "test-seventeen", "registering the same table again is harmless");
    is_str(ipc_type_name(19), "type-19", "neighbour still unknown");
}

static void panic_null_str(void)
{
    ipc_msg_t *m = ipc_msg_new(1, 0);
    const char *volatile s = NULL;

    ipc_put_str(m, s);
}

static void panic_two_fds(void)
{
    ipc_msg_t *m = ipc_msg_new(1, 0);

    ipc_set_fd(m, dup(0));
    ipc_set_fd(m, dup(0));
}

static void panic_hello_name(void)
{
    static const struct ipc_name n[] = {{IPC_HELLO, "mine"}};

    ipc_register_names(n, 1);
}

static void test_panics(void)
{
    ok(dies_with_abort(panic_null_str), "putting a NULL string panics (our bug)");
    ok(dies_with_abort(panic_two_fds), "setting a second fd panics (our bug)");
    ok(dies_with_abort(panic_hello_name), "registering a name for type 0 panics");
}

static void test_sockets(const char *dir)
{
    char *path = xasprintf("%s/sock", dir), *file = xasprintf("%s/file", dir);
    char longpath[200];
    struct stat st;
    int l, c, a, fd, rc;
    mode_t old;
    const char *why = NULL;

    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    errno = 0;
    ok(ipc_listen(longpath, 0600, 5) == -1 && errno == ENAMETOOLONG, "listen: long path ENAMETOOLONG");
    errno = 0;
    ok(ipc_connect(longpath) == -1 && errno == ENAMETOOLONG, "connect: long path ENAMETOOLONG");

    old = umask(077);
    l = ipc_listen(path, 0640, 5);
    umask(old);
    ok(l >= 0, "listen on %s", path);
    memset(&st, 0, sizeof(st));
    rc = stat(path, &st);
    ok(rc == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0640,
       "socket file has mode 0640 despite umask 077 (%o)", (unsigned)(st.st_mode & 07777));
    ok(fcntl(l, F_GETFD) & FD_CLOEXEC, "listening socket is close-on-exec");
    c = ipc_connect(path);
    ok(c >= 0, "connect");
    a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    ok(a >= 0, "accept");
    ok(fcntl(c, F_GETFD) & FD_CLOEXEC, "connected socket is close-on-exec");
    ipc_hello_send(c, "test", 1, 1000);
    is_int(ipc_hello_recv(a, "test", 1, 1000, &why), 0, "hello over a listen/connect pair");
    close(a);
    close(c);
    close(l);

    /* The socket file is still there (stale): listen again replaces it. */
    l = ipc_listen(path, 0600, 5);
    ok(l >= 0, "listen removes a stale socket");
    c = ipc_connect(path);
    ok(c >= 0, "and the new one accepts connections");
    if (c >= 0)
        close(c);
    close(l);

    fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    close(fd);
    errno = 0;
    rc = ipc_listen(file, 0600, 5);
    ok(rc == -1 && errno == EADDRINUSE, "listen refuses to replace a regular file (%s)",
       strerror(errno));
    ok(stat(file, &st) == 0 && S_ISREG(st.st_mode), "and the file is untouched");
    unlink(file);

    unlink(path);
    errno = 0;
    ok(ipc_connect(path) == -1 && errno == ENOENT, "connect to a missing socket: ENOENT");
    errno = 0;
    ok(ipc_connect("") == -1 && errno == EINVAL, "connect to an empty path: EINVAL");
    free(path);
    free(file);
}

/* SO_PEERCRED: a child that became nobody connects to us. */
static void test_peercred(const char *dir)
{
    char *path = xasprintf("%s/cred", dir), *closed = xasprintf("%s/closed", dir);
    int l, a, sv[2], i, st;
    uid_t uid = 1234;
    pid_t pid, peerpid = 0;
    const char *why = NULL;
    char c;

    if (geteuid() != 0) {
        for (i = 0; i < 12; i++)
            skip("SO_PEERCRED tests need root");
        free(path);
        free(closed);
        return;
    }
    pair(sv);
    ok(ipc_peer_uid(sv[0], &uid, &peerpid) == 0 && uid == 0 && peerpid == getpid(),
       "socketpair peer is root, our own pid");
    is_int(ipc_peer_check(sv[0], 1), 0, "a root peer passes any check");
    close(sv[0]);
    close(sv[1]);

    chmod(dir, 0711);
    l = ipc_listen(path, 0666, 5);
    ok(l >= 0, "listen with mode 0666");
    pid = fork();
    if (pid == 0) {
        int fd;

        close(l);
        if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
            _exit(10);
        fd = ipc_connect(path);
        free(path);
        free(closed);
        if (fd < 0)
            _exit(11);
        if (ipc_hello_send(fd, "cred-test", 1, 2000) < 0)
            _exit(12);
        /* Wait until the parent is done (it closes the connection). */
        (void)!read(fd, &c, 1);
        _exit(0);
    }
    a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    ok(a >= 0, "accepted the nobody child");
    is_int(ipc_hello_recv(a, "cred-test", 1, 5000, &why), 0, "hello from the child");
    uid = 0;
    peerpid = 0;
    ok(ipc_peer_uid(a, &uid, &peerpid) == 0, "ipc_peer_uid");
    is_int(uid, NOBODY, "peer uid is 65534");
    is_int(peerpid, pid, "peer pid is the child's");
    errno = 0;
    ok(ipc_peer_check(a, 1) == -1 && errno == EPERM, "check against uid 1: EPERM");
    is_int(ipc_peer_check(a, NOBODY), 0, "check against 65534 passes");
    close(a);
    close(l);
    st = reap(pid);
    ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "nobody child exited cleanly (status %d)",
       WIFEXITED(st) ? WEXITSTATUS(st) : -1);

    /* The mode is enforced: nobody cannot connect to a 0600 socket. */
    l = ipc_listen(closed, 0600, 5);
    pid = fork();
    if (pid == 0) {
        if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
            _exit(10);
        int refused = ipc_connect(closed) < 0 && errno == EACCES;

        free(path);
        free(closed);
        _exit(refused ? 0 : 1);
    }
    st = reap(pid);
    ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "nobody cannot connect to a 0600 socket (EACCES)");
    close(l);
    unlink(closed);
    unlink(path);
    free(path);
    free(closed);
}

int main(void)
{
    char dir[] = "/tmp/ipc-test.XXXXXX";
    int fds_at_start;

    alarm(120);
    signal(SIGPIPE, SIG_DFL);   /* prove MSG_NOSIGNAL, not an ignored signal */
    msg_init("ipc-test", MSG_STDERR);
    fds_at_start = count_fds();
    if (mkdtemp(dir) == NULL) {
        diag("mkdtemp: %s", strerror(errno));
        return 2;
    }

    test_roundtrip();
    test_local_fields();
    test_bad_wire_fields();
    test_pipelined();
    test_short_reads();
    test_large();
    test_oversize();
    test_truncated();
    test_fd_passing();
    test_reader();
    test_fd_errors();
    test_timeouts();
    test_hello();
    test_names();
    test_panics();
    test_sockets(dir);
    test_peercred(dir);

    is_int(count_fds(), fds_at_start, "no descriptor leaked over the whole run");
    rmdir(dir);
    return done_testing();
}
