/*
 * fuzz/ipc - libFuzzer harness for lib/ipc.c: ipc_recv, the field getters
 * (ipc_get_int/str/bytes/end) and ipc_hello_recv.
 *
 * Input layout: byte 0 is a control byte, byte 1 a parameter, the rest is
 * what the peer writes into one end of a socketpair (then it closes it):
 *   bits 0-1  descriptors sent along: 0 none, 1 one on the first byte,
 *             2 two on the first byte, 3 one on the byte at offset byte 1
 *   bit 2     start with ipc_hello_recv("fuzz", 1)
 *   bits 3-4  max_payload: IPC_MAX_PAYLOAD, 0, 16 or 4096
 * Frames are received until EOF or an error; the fields of each are walked
 * with whichever getter fits, then ipc_get_end().  Without descriptors the
 * results are compared with a model of the framing in ipc.h (header fields,
 * payload bytes, EPROTO / EMSGSIZE); the getters' promises (no movement
 * and cleared outputs on failure) are checked; a descriptor left open
 * after the input is a leak.  A broken promise aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzzlib.h"
#include "ipc.h"

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Send p[0, n) with nfds copies of /dev/null attached. */
static int send_part(int sock, const uint8_t *p, size_t n, int nfds, int devnull)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } ctl;
    struct iovec iov = {(void *)p, n};
    struct msghdr mh;
    int fds[2] = {devnull, devnull};
    size_t done = 0;

    while (done < n) {
        ssize_t w;

        memset(&mh, 0, sizeof(mh));
        iov.iov_base = (void *)(p + done);
        iov.iov_len = n - done;
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        if (nfds && done == 0) {
            struct cmsghdr *c;

            memset(&ctl, 0, sizeof(ctl));
            mh.msg_control = ctl.buf;
            mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
            c = CMSG_FIRSTHDR(&mh);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
            memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
        }
        w = sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w <= 0)
            return -1;      /* the socket buffer is full: stop here */
        done += (size_t)w;
    }
    return 0;
}

/* Walk every field of m; check the getters' promises. */
static void walk_fields(ipc_msg_t *m)
{
    for (;;) {
        size_t before = m->rpos;
        int64_t v = 1;
        char *s = (char *)1;
        const void *p = (const void *)1;
        size_t len = 1;

        if (ipc_get_int(m, &v) == 0) {
            if (m->rpos != before + 9)
                fuzz_fail("ipc_get_int moved %zu bytes", m->rpos - before);
            continue;
        }
        if (m->rpos != before || v != 0 || errno != EPROTO)
            fuzz_fail("failed ipc_get_int: rpos %zu->%zu, v %lld, errno %d",
                      before, m->rpos, (long long)v, errno);
        if (ipc_get_str(m, &s) == 0) {
            size_t n = be32((const uint8_t *)m->payload->data + before + 1);

            if (s == NULL || strlen(s) != n || m->rpos != before + 5 + n)
                fuzz_fail("ipc_get_str: %zu-byte field gave a %zu-byte string",
                          n, s ? strlen(s) : 0);
            free(s);
            continue;
        }
        if (m->rpos != before || s != NULL || errno != EPROTO)
            fuzz_fail("failed ipc_get_str: rpos %zu->%zu, s %p", before, m->rpos, (void *)s);
        if (ipc_get_bytes(m, &p, &len) == 0) {
            if (p == NULL || m->rpos != before + 5 + len
                || (const char *)p != m->payload->data + before + 5)
                fuzz_fail("ipc_get_bytes: bad result for %zu bytes", len);
            continue;
        }
        if (m->rpos != before || p != NULL || len != 0 || errno != EPROTO)
            fuzz_fail("failed ipc_get_bytes: rpos %zu->%zu", before, m->rpos);
        break;
    }
    if ((ipc_get_end(m) == 0) != (m->rpos == m->payload->len))
        fuzz_fail("ipc_get_end disagrees: rpos %zu len %zu", m->rpos, m->payload->len);
    (void)ipc_type_name(m->type);
}

static const uint8_t hello_payload[] = {
    's', 0, 0, 0, 4, 'f', 'u', 'z', 'z',
    'i', 0, 0, 0, 0, 0, 0, 0, 1,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t maxes[] = {IPC_MAX_PAYLOAD, 0, 16, 4096};
    const uint8_t *wire;
    size_t wlen, sent, pos = 0, max_payload;
    int sv[2], devnull, mark, fdmode, model, rc;
    int bufsize = 1 << 20;
    ipc_msg_t *m;

    if (size < 2)
        return 0;
    fdmode = data[0] & 3;
    max_payload = maxes[(data[0] >> 3) & 3];
    wire = data + 2;
    wlen = size - 2;
    mark = fuzz_fd_mark();
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return 0;                       /* the environment, not the input */
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
    devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);

    /* The peer: write everything that fits, then hang up. */
    sent = wlen;
    if (fdmode == 0 || devnull < 0 || wlen == 0) {
        if (send_part(sv[0], wire, wlen, 0, -1) < 0)
            sent = 0;
    } else if (fdmode == 1 || fdmode == 2) {
        if (send_part(sv[0], wire, wlen, fdmode, devnull) < 0)
            sent = 0;
    } else {
        size_t at = data[1] % wlen;

        if (send_part(sv[0], wire, at, 0, -1) < 0
            || send_part(sv[0], wire + at, wlen - at, 1, devnull) < 0)
            sent = 0;
    }
    close(sv[0]);
    if (devnull >= 0)
        close(devnull);
    /* The model knows nothing of descriptors, nor of a short write. */
    model = (fdmode == 0 || wlen == 0) && sent == wlen;

    if (data[0] & 4) {
        const char *why = NULL;

        rc = ipc_hello_recv(sv[1], "fuzz", 1, 1000, &why);
        if (why == NULL)
            fuzz_fail("ipc_hello_recv left why unset");
        if (model) {
            int good = wlen >= IPC_HEADER_SIZE + sizeof(hello_payload)
                && be32(wire) == IPC_HELLO
                && be32(wire + 4) == sizeof(hello_payload)
                && be32(wire + 12) == 0
                && memcmp(wire + IPC_HEADER_SIZE, hello_payload, sizeof(hello_payload)) == 0;

            if (good != (rc == 0))
                fuzz_fail("ipc_hello_recv returned %d (%s), model says %s",
                          rc, why, good ? "good" : "bad");
        }
        if (rc < 0) {
            if (errno != EPROTO && errno != EMSGSIZE)
                fuzz_fail("ipc_hello_recv: errno %d (%s)", errno, why);
            goto out;
        }
        pos = IPC_HEADER_SIZE + sizeof(hello_payload);
    }

    for (;;) {
        m = (ipc_msg_t *)1;
        errno = 0;
        rc = ipc_recv(sv[1], &m, max_payload, 1000);
        if (rc != 1 && m != NULL)
            fuzz_fail("ipc_recv returned %d with a message", rc);
        if (rc < 0 && errno != EPROTO && errno != EMSGSIZE)
            fuzz_fail("ipc_recv: unexpected errno %d (%s)", errno, strerror(errno));
        if (model) {
            size_t left = wlen - pos;
            uint32_t len = left >= IPC_HEADER_SIZE ? be32(wire + pos + 4) : 0;
            int want;

            if (left == 0)
                want = 0;
            else if (left < IPC_HEADER_SIZE || (be32(wire + pos + 12) != 0))
                want = -EPROTO;
            else if (len > max_payload)
                want = -EMSGSIZE;
            else if (left - IPC_HEADER_SIZE < len)
                want = -EPROTO;
            else
                want = 1;
            if ((want < 0 ? -1 : want) != rc || (want < 0 && -want != errno))
                fuzz_fail("frame at %zu: ipc_recv returned %d errno %d, model %d",
                          pos, rc, errno, want);
            if (rc == 1) {
                if (m->type != be32(wire + pos) || m->reqid != be32(wire + pos + 8)
                    || m->flags != 0 || m->fd != -1 || m->payload->len != len
                    || memcmp(m->payload->data, wire + pos + IPC_HEADER_SIZE, len) != 0)
                    fuzz_fail("frame at %zu: fields differ from the wire", pos);
                pos += IPC_HEADER_SIZE + len;
            }
        }
        if (rc != 1)
            break;
        if ((m->fd >= 0) != ((m->flags & IPC_FLAG_FD) != 0) || (m->flags & ~IPC_FLAG_FD))
            fuzz_fail("message with flags 0x%x and fd %d", (unsigned)m->flags, m->fd);
        if (m->fd >= 0 && fcntl(m->fd, F_GETFD) != FD_CLOEXEC)
            fuzz_fail("received fd %d is not close-on-exec", m->fd);
        walk_fields(m);
        ipc_msg_free(&m);
        if (m != NULL)
            fuzz_fail("ipc_msg_free did not NULL the pointer");
    }
out:
    close(sv[1]);
    fuzz_fd_check(mark);
    return 0;
}
