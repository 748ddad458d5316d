/*
 * ipc - framed, typed messages over AF_UNIX stream sockets (see ipc.h).
 *
 * This is the one wire format every internal Posthorn protocol uses
 * (DESIGN.md §3): a 16-byte header (type, payload length, request id,
 * flags, all uint32 in network order), then a payload of tagged fields.
 * At most one descriptor travels with a frame, attached (SCM_RIGHTS) to the
 * frame's first byte and announced by IPC_FLAG_FD in the header.
 *
 * Interface: message building (ipc_msg_new, ipc_put_*, ipc_set_fd), field
 * parsing (ipc_get_*, ipc_get_end), transport (ipc_send, ipc_recv with a
 * deadline), the hello handshake, peer credentials (SO_PEERCRED), a name
 * registry for the logs, and socket set-up (ipc_connect, ipc_listen).
 *
 * Failure modes.  Peer input never aborts: a malformed frame is a -1 return
 * with errno EPROTO (bad header, unknown flag bits, fd/flag mismatch, more
 * than one fd, truncated frame), EMSGSIZE (payload over the receiver's
 * limit) or ETIMEDOUT (deadline passed); any fd that arrived with a bad frame
 * is closed.  After any receive error the stream is out of sync (the rest of
 * an oversize frame is not discarded) and the caller must drop the peer.
 * Our own misuse (NULL string, a second fd, a payload over 4 GiB, unknown
 * flag bits on send) is a bug and panics.
 *
 * Both directions use non-blocking I/O (MSG_DONTWAIT) plus poll() against
 * one deadline for the whole frame, so the socket may be blocking or not and
 * a peer that trickles bytes cannot hold us past timeout_ms.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "ipc.h"
#include "msg.h"
#include "xalloc.h"

#define IPC_FLAGS_KNOWN     IPC_FLAG_FD
#define IPC_TAG_INT         'i'
#define IPC_TAG_STR         's'
#define IPC_TAG_BYTES       'b'
#define IPC_HELLO_MAX       4096        /* a hello is a few dozen bytes */
#define IPC_CMSG_FDS        8           /* room to notice (and close) extra fds */
#define IPC_CHUNK           32768       /* payload read size */

/* ---------------------------------------------------------------- messages */

ipc_msg_t *ipc_msg_new(uint32_t type, uint32_t reqid)
{
    ipc_msg_t *m = xcalloc(1, sizeof(*m));

    m->type = type;
    m->reqid = reqid;
    m->flags = 0;
    /* The length field is 32 bits: cap the payload there. */
    m->payload = buf_new((size_t)UINT32_MAX);
    m->rpos = 0;
    m->fd = -1;
    return m;
}

void ipc_msg_free(ipc_msg_t **mp)
{
    ipc_msg_t *m = *mp;

    if (m == NULL)
        return;
    if (m->fd >= 0)
        close(m->fd);
    buf_free(&m->payload);
    free(m);
    *mp = NULL;
}

static void ipc_append(ipc_msg_t *m, const void *p, size_t len)
{
    if (buf_append(m->payload, p, len) < 0)
        msg_panic("ipc: payload of message %s would exceed 4 GiB",
                  ipc_type_name(m->type));
}

static void ipc_put_u32(ipc_msg_t *m, uint32_t v)
{
    unsigned char b[4] = {
        (unsigned char)(v >> 24), (unsigned char)(v >> 16),
        (unsigned char)(v >> 8), (unsigned char)v,
    };

    ipc_append(m, b, sizeof(b));
}

void ipc_put_int(ipc_msg_t *m, int64_t v)
{
    uint64_t u = (uint64_t)v;
    unsigned char b[9];
    int i;

    b[0] = IPC_TAG_INT;
    for (i = 0; i < 8; i++)
        b[1 + i] = (unsigned char)(u >> (56 - 8 * i));
    ipc_append(m, b, sizeof(b));
}

static void ipc_put_blob(ipc_msg_t *m, int tag, const void *p, size_t len)
{
    unsigned char t = (unsigned char)tag;

    if (len > UINT32_MAX)
        msg_panic("ipc: field of %zu bytes in message %s", len,
                  ipc_type_name(m->type));
    ipc_append(m, &t, 1);
    ipc_put_u32(m, (uint32_t)len);
    if (len)
        ipc_append(m, p, len);
}

void ipc_put_str(ipc_msg_t *m, const char *s)
{
    if (s == NULL)
        msg_panic("ipc_put_str: NULL string in message %s", ipc_type_name(m->type));
    ipc_put_blob(m, IPC_TAG_STR, s, strlen(s));
}

void ipc_put_bytes(ipc_msg_t *m, const void *p, size_t len)
{
    if (p == NULL && len > 0)
        msg_panic("ipc_put_bytes: NULL pointer in message %s", ipc_type_name(m->type));
    ipc_put_blob(m, IPC_TAG_BYTES, p, len);
}

void ipc_set_fd(ipc_msg_t *m, int fd)
{
    if (fd < 0)
        msg_panic("ipc_set_fd: bad fd %d for message %s", fd, ipc_type_name(m->type));
    if (m->fd >= 0)
        msg_panic("ipc_set_fd: message %s already carries fd %d",
                  ipc_type_name(m->type), m->fd);
    m->fd = fd;
    m->flags |= IPC_FLAG_FD;
}

int ipc_take_fd(ipc_msg_t *m)
{
    int fd = m->fd;

    m->fd = -1;
    m->flags &= ~IPC_FLAG_FD;
    return fd;
}

/* ------------------------------------------------------------------ fields */

static uint32_t ipc_get_u32_at(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int ipc_bad_field(void)
{
    errno = EPROTO;
    return -1;
}

/* Parse a tag + uint32 length + bytes field at rpos without moving it. */
static int ipc_get_blob(const ipc_msg_t *m, int tag, const unsigned char **p,
                        size_t *len, size_t *next)
{
    const unsigned char *d = (const unsigned char *)m->payload->data;
    size_t have = m->rpos <= m->payload->len ? m->payload->len - m->rpos : 0;
    uint32_t n;

    if (have < 5 || d[m->rpos] != (unsigned char)tag)
        return ipc_bad_field();
    n = ipc_get_u32_at(d + m->rpos + 1);
    if (n > have - 5)
        return ipc_bad_field();
    *p = d + m->rpos + 5;
    *len = n;
    *next = m->rpos + 5 + n;
    return 0;
}

int ipc_get_int(ipc_msg_t *m, int64_t *v)
{
    const unsigned char *d = (const unsigned char *)m->payload->data + m->rpos;
    uint64_t u = 0;
    int i;

    *v = 0;
    if (m->rpos > m->payload->len || m->payload->len - m->rpos < 9 || d[0] != IPC_TAG_INT)
        return ipc_bad_field();
    for (i = 0; i < 8; i++)
        u = u << 8 | d[1 + i];
    *v = (int64_t)u;    /* two's complement, as gcc defines the conversion */
    m->rpos += 9;
    return 0;
}

int ipc_get_str(ipc_msg_t *m, char **s)
{
    const unsigned char *p;
    size_t len, next;

    *s = NULL;
    if (ipc_get_blob(m, IPC_TAG_STR, &p, &len, &next) < 0)
        return -1;
    if (len && memchr(p, '\0', len) != NULL)
        return ipc_bad_field();
    *s = xstrndup((const char *)p, len);
    m->rpos = next;
    return 0;
}

int ipc_get_bytes(ipc_msg_t *m, const void **p, size_t *len)
{
    const unsigned char *q;
    size_t n, next;

    *p = NULL;
    *len = 0;
    if (ipc_get_blob(m, IPC_TAG_BYTES, &q, &n, &next) < 0)
        return -1;
    *p = q;
    *len = n;
    m->rpos = next;
    return 0;
}

int ipc_get_end(const ipc_msg_t *m)
{
    if (m->rpos != m->payload->len)
        return ipc_bad_field();
    return 0;
}

/* --------------------------------------------------------------- deadlines */

static int64_t ipc_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t ipc_deadline(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : ipc_now_ms() + timeout_ms;
}

/* Wait until sock is ready for events or the deadline passes: 0 or -1/errno. */
static int ipc_wait(int sock, short events, int64_t deadline)
{
    struct pollfd pfd;
    int64_t left;
    int n;

    for (;;) {
        if (deadline < 0) {
            left = -1;
        } else {
            left = deadline - ipc_now_ms();
            if (left <= 0) {
                errno = ETIMEDOUT;
                return -1;
            }
            if (left > INT32_MAX)
                left = INT32_MAX;
        }
        pfd.fd = sock;
        pfd.events = events;
        pfd.revents = 0;
        n = poll(&pfd, 1, (int)left);
        if (n > 0) {
            if (pfd.revents & POLLNVAL) {
                errno = EBADF;
                return -1;
            }
            return 0;   /* ready, or an error/hangup the next call reports */
        }
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* -------------------------------------------------------------------- send */

int ipc_send(int sock, const ipc_msg_t *m, int timeout_ms)
{
    unsigned char hdr[IPC_HEADER_SIZE];
    uint32_t flags, fields[4];
    int64_t deadline = ipc_deadline(timeout_ms);
    size_t total, done = 0;
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    int i;

    if (m->flags & ~IPC_FLAGS_KNOWN)
        msg_panic("ipc_send: unknown flags 0x%x on message %s",
                  (unsigned)m->flags, ipc_type_name(m->type));
    if (m->payload->len > UINT32_MAX)
        msg_panic("ipc_send: payload too large on message %s", ipc_type_name(m->type));
    flags = m->flags & ~IPC_FLAG_FD;
    if (m->fd >= 0)
        flags |= IPC_FLAG_FD;
    fields[0] = m->type;
    fields[1] = (uint32_t)m->payload->len;
    fields[2] = m->reqid;
    fields[3] = flags;
    for (i = 0; i < 4; i++) {
        hdr[4 * i] = (unsigned char)(fields[i] >> 24);
        hdr[4 * i + 1] = (unsigned char)(fields[i] >> 16);
        hdr[4 * i + 2] = (unsigned char)(fields[i] >> 8);
        hdr[4 * i + 3] = (unsigned char)fields[i];
    }
    total = IPC_HEADER_SIZE + m->payload->len;

    while (done < total) {
        struct iovec iov[2];
        struct msghdr mh;
        int niov = 0;
        ssize_t n;

        if (done < IPC_HEADER_SIZE) {
            iov[niov].iov_base = hdr + done;
            iov[niov].iov_len = IPC_HEADER_SIZE - done;
            niov++;
            if (m->payload->len) {
                iov[niov].iov_base = m->payload->data;
                iov[niov].iov_len = m->payload->len;
                niov++;
            }
        } else {
            iov[niov].iov_base = m->payload->data + (done - IPC_HEADER_SIZE);
            iov[niov].iov_len = total - done;
            niov++;
        }
        memset(&mh, 0, sizeof(mh));
        mh.msg_iov = iov;
        mh.msg_iovlen = (size_t)niov;
        /* The fd rides on the first byte of the frame. */
        if (done == 0 && m->fd >= 0) {
            struct cmsghdr *c;

            memset(&ctl, 0, sizeof(ctl));
            mh.msg_control = ctl.buf;
            mh.msg_controllen = sizeof(ctl.buf);
            c = CMSG_FIRSTHDR(&mh);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(c), &m->fd, sizeof(int));
        }
        n = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n == 0 || errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (ipc_wait(sock, POLLOUT, deadline) < 0)
            return -1;
    }
    return 0;
}

/* -------------------------------------------------------------------- recv */

/* State of one frame's descriptor reception. */
struct ipc_rfd {
    int fd;         /* the one fd received, or -1 */
    int bad;        /* more than one, truncated control data, or misplaced */
};

/* Take every fd out of the control data: keep the first if allowed. */
static void ipc_collect_fds(struct msghdr *mh, struct ipc_rfd *r, int allowed)
{
    struct cmsghdr *c;

    if (mh->msg_flags & MSG_CTRUNC)
        r->bad = 1;
    if (mh->msg_controllen == 0)
        return;
    for (c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
        size_t n, i;

        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS
            || c->cmsg_len < CMSG_LEN(0))
            continue;
        n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (i = 0; i < n; i++) {
            int fd;

            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (fd < 0)
                continue;
            if (allowed && r->fd < 0) {
                r->fd = fd;
            } else {
                close(fd);
                r->bad = 1;
            }
        }
    }
}

/* The state of one frame being received, so that it can arrive in any
 * number of pieces (see ipc_reader_recv in ipc.h). */
struct ipc_reader {
    size_t max_payload;
    unsigned char hdr[IPC_HEADER_SIZE];
    size_t hdr_got;
    ipc_msg_t *m;           /* after the header: the frame being filled */
    size_t need;            /* its payload length */
    struct ipc_rfd rfd;
};

ipc_reader_t *ipc_reader_new(size_t max_payload)
{
    ipc_reader_t *r = xcalloc(1, sizeof(*r));

    r->max_payload = max_payload;
    r->rfd.fd = -1;
    return r;
}

/* Forget a partial frame (closing any fd that came with it). */
static void ipc_reader_reset(ipc_reader_t *r)
{
    ipc_msg_free(&r->m);
    if (r->rfd.fd >= 0)
        close(r->rfd.fd);
    r->rfd.fd = -1;
    r->rfd.bad = 0;
    r->hdr_got = 0;
    r->need = 0;
}

void ipc_reader_free(ipc_reader_t **rp)
{
    if (*rp == NULL)
        return;
    ipc_reader_reset(*rp);
    free(*rp);
    *rp = NULL;
}

/* The header is complete: check it and start the frame.  0 or -1/errno. */
static int ipc_reader_header(ipc_reader_t *r)
{
    uint32_t type = ipc_get_u32_at(r->hdr), len = ipc_get_u32_at(r->hdr + 4);
    uint32_t reqid = ipc_get_u32_at(r->hdr + 8), flags = ipc_get_u32_at(r->hdr + 12);

    if (r->rfd.bad || (flags & ~IPC_FLAGS_KNOWN)
        || ((flags & IPC_FLAG_FD) != 0) != (r->rfd.fd >= 0)) {
        errno = EPROTO;
        return -1;
    }
    if (len > r->max_payload) {
        errno = EMSGSIZE;
        return -1;
    }
    r->m = ipc_msg_new(type, reqid);
    r->m->flags = flags;
    r->need = len;
    return 0;
}

int ipc_reader_recv(ipc_reader_t *r, int sock, ipc_msg_t **mp)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * IPC_CMSG_FDS)];
    } ctl;
    char chunk[IPC_CHUNK];
    int err;

    *mp = NULL;
    for (;;) {
        struct iovec iov;
        struct msghdr mh;
        ssize_t n;

        if (r->m != NULL && r->m->payload->len == r->need) {
            if (r->rfd.bad) {
                errno = EPROTO;
                goto fail;
            }
            r->m->fd = r->rfd.fd;
            r->rfd.fd = -1;
            *mp = r->m;
            r->m = NULL;
            ipc_reader_reset(r);
            return 1;
        }
        if (r->m == NULL) {
            iov.iov_base = r->hdr + r->hdr_got;
            iov.iov_len = IPC_HEADER_SIZE - r->hdr_got;
        } else {
            size_t left = r->need - r->m->payload->len;

            iov.iov_base = chunk;
            iov.iov_len = left < sizeof(chunk) ? left : sizeof(chunk);
        }
        memset(&mh, 0, sizeof(mh));
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof(ctl.buf);
        n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n >= 0)     /* an fd may ride on the header only */
            ipc_collect_fds(&mh, &r->rfd, r->m == NULL);
        if (n == 0) {
            if (r->m == NULL && r->hdr_got == 0 && !r->rfd.bad && r->rfd.fd < 0)
                return 0;
            errno = EPROTO;     /* truncated frame */
            goto fail;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                errno = EAGAIN;
                return -1;      /* the frame so far is kept */
            }
            goto fail;
        }
        if (r->m == NULL) {
            r->hdr_got += (size_t)n;
            if (r->hdr_got == IPC_HEADER_SIZE && ipc_reader_header(r) < 0)
                goto fail;
        } else if (buf_append(r->m->payload, chunk, (size_t)n) < 0) {
            goto fail;          /* cannot happen: the length was checked */
        }
    }

fail:
    err = errno;
    ipc_reader_reset(r);
    errno = err;
    return -1;
}

int ipc_recv(int sock, ipc_msg_t **mp, size_t max_payload, int timeout_ms)
{
    struct ipc_reader r = { .max_payload = max_payload, .rfd = { -1, 0 } };
    int64_t deadline = ipc_deadline(timeout_ms);
    int rc, err;

    /* Callers wait for the answer to what they have just sent, which
     * cannot be there yet: wait first rather than try a recvmsg that
     * would say EAGAIN.  A zero timeout takes only what is there. */
    if (timeout_ms != 0 && ipc_wait(sock, POLLIN, deadline) < 0)
        return -1;
    while ((rc = ipc_reader_recv(&r, sock, mp)) < 0 && errno == EAGAIN)
        if (ipc_wait(sock, POLLIN, deadline) < 0)
            break;
    err = errno;
    ipc_reader_reset(&r);
    errno = err;
    return rc < 0 ? -1 : rc;
}

/* ------------------------------------------------------------------- hello */

int ipc_hello_send(int sock, const char *proto, int version, int timeout_ms)
{
    ipc_msg_t *m = ipc_msg_new(IPC_HELLO, 0);
    int rc, saved;

    ipc_put_str(m, proto);
    ipc_put_int(m, version);
    rc = ipc_send(sock, m, timeout_ms);
    saved = errno;
    ipc_msg_free(&m);
    errno = saved;
    return rc;
}

int ipc_hello_check(const ipc_msg_t *hello, const char *proto, int version, const char **why)
{
    ipc_msg_t m = *hello;       /* reading moves rpos: keep the caller's */
    const char *reason = NULL;
    char *name = NULL;
    int64_t v;

    m.rpos = 0;
    if (m.type != IPC_HELLO)
        reason = "not a hello";
    else if (m.fd >= 0)
        reason = "unexpected fd with hello";
    else if (ipc_get_str(&m, &name) < 0 || ipc_get_int(&m, &v) < 0 || ipc_get_end(&m) < 0)
        reason = "malformed hello";
    else if (strcmp(name, proto) != 0)
        reason = "wrong protocol";
    else if (v != version)
        reason = "wrong version";
    free(name);
    if (why)
        *why = reason ? reason : "ok";
    if (reason) {
        errno = EPROTO;
        return -1;
    }
    return 0;
}

int ipc_hello_recv(int sock, const char *proto, int version, int timeout_ms,
                   const char **why)
{
    ipc_msg_t *m = NULL;
    const char *reason = NULL;
    int rc;

    rc = ipc_recv(sock, &m, IPC_HELLO_MAX, timeout_ms);
    if (rc < 0) {
        int err = errno;

        reason = err == ETIMEDOUT ? "timed out waiting for hello"
            : err == EMSGSIZE ? "hello too large"
            : err == EPROTO ? "malformed frame instead of hello"
            : "receive error before hello";
        if (why)
            *why = reason;
        errno = err;
        return -1;
    }
    if (rc == 0) {
        if (why)
            *why = "connection closed before hello";
        errno = EPROTO;
        return -1;
    }
    rc = ipc_hello_check(m, proto, version, why);
    ipc_msg_free(&m);
    return rc;
}

int ipc_client_open(const char *path, const char *proto, int version, int timeout_ms,
                    const char **why)
{
    const char *reason = "ok";
    int fd, saved;

    if ((fd = ipc_connect(path)) < 0) {
        if (why)
            *why = "cannot connect";
        return -1;
    }
    if (ipc_hello_send(fd, proto, version, timeout_ms) < 0) {
        reason = "cannot send hello";
    } else if (ipc_hello_recv(fd, proto, version, timeout_ms, &reason) == 0) {
        if (why)
            *why = "ok";
        return fd;
    }
    saved = errno;
    close(fd);
    errno = saved;
    if (why)
        *why = reason;
    return -1;
}

int ipc_server_hello(int sock, const char *proto, int version, const uid_t *uids,
                     size_t nuids, int timeout_ms, const char **why)
{
    if (ipc_peer_allowed(sock, uids, nuids, NULL) < 0) {
        *why = errno == EPERM ? "peer uid not allowed" : "cannot read peer credentials";
        return -1;
    }
    if (ipc_hello_recv(sock, proto, version, timeout_ms, why) < 0)
        return -1;
    if (ipc_hello_send(sock, proto, version, timeout_ms) < 0) {
        *why = "cannot send hello";
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------- credentials */

int ipc_peer_uid(int sock, uid_t *uid, pid_t *pid)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return -1;
    if (len != sizeof(cred)) {
        errno = EPROTO;
        return -1;
    }
    if (uid)
        *uid = cred.uid;
    if (pid)
        *pid = cred.pid;
    return 0;
}

int ipc_peer_allowed(int sock, const uid_t *uids, size_t nuids, uid_t *peer)
{
    uid_t uid;
    size_t i;

    if (ipc_peer_uid(sock, &uid, NULL) < 0)
        return -1;
    if (peer)
        *peer = uid;
    for (i = 0; i < nuids && uids[i] != uid; i++)
        ;
    if (uid != 0 && i == nuids) {
        errno = EPERM;
        return -1;
    }
    return 0;
}

int ipc_peer_check(int sock, uid_t uid)
{
    return ipc_peer_allowed(sock, &uid, 1, NULL);
}

int ipc_idle_closed(int sock)
{
    struct pollfd p = {.fd = sock, .events = POLLIN};

    return poll(&p, 1, 0) != 0;
}

/* ------------------------------------------------------------------- names */

/* Process-wide registry; not thread-safe (Posthorn daemons are single
 * threaded).  Names are copied.  A type registered again with a different
 * name takes the new name, with a warning: protocols that share a process
 * should use disjoint type numbers. */
static struct ipc_name *ipc_names;
static size_t ipc_nnames, ipc_names_cap;

void ipc_register_names(const struct ipc_name *names, size_t n)
{
    size_t i, j;

    for (i = 0; i < n; i++) {
        if (names[i].name == NULL)
            msg_panic("ipc_register_names: NULL name for type %u",
                      (unsigned)names[i].type);
        if (names[i].type == IPC_HELLO)
            msg_panic("ipc_register_names: type 0 is reserved for hello");
        for (j = 0; j < ipc_nnames; j++)
            if (ipc_names[j].type == names[i].type)
                break;
        if (j < ipc_nnames) {
            if (strcmp(ipc_names[j].name, names[i].name) != 0) {
                msg_warn("ipc: message type %u renamed from %s to %s",
                         (unsigned)names[i].type, ipc_names[j].name, names[i].name);
                free((char *)ipc_names[j].name);
                ipc_names[j].name = xstrdup(names[i].name);
            }
            continue;
        }
        if (ipc_nnames == ipc_names_cap) {
            ipc_names_cap = ipc_names_cap ? 2 * ipc_names_cap : 16;
            ipc_names = xreallocarray(ipc_names, ipc_names_cap, sizeof(*ipc_names));
        }
        ipc_names[ipc_nnames].type = names[i].type;
        ipc_names[ipc_nnames].name = xstrdup(names[i].name);
        ipc_nnames++;
    }
}

/* The "type-N" fallback lives in a static buffer, overwritten by the next
 * call for an unknown type (not thread-safe). */
const char *ipc_type_name(uint32_t type)
{
    static char unknown[sizeof("type-4294967295")];
    size_t i;

    if (type == IPC_HELLO)
        return "hello";
    for (i = 0; i < ipc_nnames; i++)
        if (ipc_names[i].type == type)
            return ipc_names[i].name;
    snprintf(unknown, sizeof(unknown), "type-%u", (unsigned)type);
    return unknown;
}

/* ----------------------------------------------------------------- sockets */

static int ipc_sockaddr(const char *path, struct sockaddr_un *sun)
{
    size_t len = strlen(path);

    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    if (len == 0) {
        errno = EINVAL;
        return -1;
    }
    if (len >= sizeof(sun->sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sun->sun_path, path, len + 1);
    return 0;
}

static void ipc_close_keep_errno(int fd)
{
    int saved = errno;

    close(fd);
    errno = saved;
}

int ipc_connect(const char *path)
{
    struct sockaddr_un sun;
    int fd;

    if (ipc_sockaddr(path, &sun) < 0)
        return -1;
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        int err = 0;
        socklen_t elen = sizeof(err);

        if (errno != EINTR) {
            ipc_close_keep_errno(fd);
            return -1;
        }
        /* Interrupted: the connection completes in the background. */
        if (ipc_wait(fd, POLLOUT, -1) < 0
            || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0) {
            ipc_close_keep_errno(fd);
            return -1;
        }
        if (err) {
            close(fd);
            errno = err;
            return -1;
        }
    }
    return fd;
}

int ipc_listen(const char *path, mode_t mode, int backlog)
{
    struct sockaddr_un sun;
    struct stat st;
    mode_t old_umask;
    int fd, rc;

    if (ipc_sockaddr(path, &sun) < 0)
        return -1;
    /* Remove a stale socket, never anything else. */
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && unlink(path) < 0
        && errno != ENOENT)
        return -1;
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -1;
    /* Create the file with its final mode right away (single threaded).
     * Never chmod() the path afterwards: whoever can write the directory
     * could have swapped in a symlink by then, and we may be root. */
    old_umask = umask((mode_t)~mode & 0777);
    rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old_umask);
    if (rc < 0) {
        ipc_close_keep_errno(fd);
        return -1;
    }
    if (listen(fd, backlog) < 0) {
        int saved = errno;

        unlink(path);
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}
