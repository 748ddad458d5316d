/*
 * login - the login halves' hand-over and TLS proxy (see login.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "anvil_proto.h"
#include "base64.h"
#include "conf.h"
#include "handover_proto.h"
#include "ipc.h"
#include "login.h"
#include "msg.h"
#include "netaddr.h"
#include "xalloc.h"

#define LOGIN_PROXY_CHUNK  16384

bool login_secured(const session_t *s)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof(sa);
    struct netaddr local;
    char text[NETADDR_TEXT_MAX];

    if (s->tls != NULL)
        return true;
    if (!s->peer.ip)
        return true;            /* a UNIX socket: this host */
    if (getsockname(s->fd, (struct sockaddr *)&sa, &len) < 0
        || netaddr_from_sockaddr((struct sockaddr *)&sa, len, &local, text, NULL) < 0)
        return false;
    return strcmp(text, s->peer.addr_text) == 0;
}

/*
 * The TLS end of a handed-over session: the client's (decrypted) bytes go
 * to pair, the mail half's to the client, until either side is done.  The
 * mail half's socket is written without blocking while it is also read,
 * so a client that pipelines a lot while a long reply comes back cannot
 * wedge the two processes against each other.  The mail half owns the
 * session's time limits: the proxy waits as long as it lives.
 */
static void login_proxy(session_t *s, int pair)
{
    char *up = xmalloc(LOGIN_PROXY_CHUNK), *down = xmalloc(LOGIN_PROXY_CHUNK);
    size_t up_len = 0, up_off = 0;
    bool client_done = false;
    bool starved = false;       /* TLS holds input that gave nothing: wait for more */
    ssize_t n;

    int fl = fcntl(pair, F_GETFL);

    if (fl >= 0)
        (void)fcntl(pair, F_SETFL, fl | O_NONBLOCK);
    for (;;) {
        struct pollfd p[2] = {
            { .fd = s->fd, .events = 0 },
            { .fd = pair, .events = POLLIN },
        };
        int timeout = -1;

        if (!client_done && up_len == 0) {
            if (stream_has_input(s->stream) && !starved)
                timeout = 0;
            else
                p[0].events = POLLIN;
        }
        if (up_len > 0)
            p[1].events |= POLLOUT;
        if (poll(p, 2, timeout) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        /* The mail half's output first: it is what the client waits for. */
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            n = recv(pair, down, LOGIN_PROXY_CHUNK, 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                break;          /* the session is over */
            if (n > 0 && (stream_write(s->stream, down, (size_t)n) < 0
                          || stream_flush(s->stream) < 0))
                break;          /* the client is gone */
        }
        if (up_len > 0 && (p[1].revents & POLLOUT)) {
            n = send(pair, up + up_off, up_len, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                break;
            if (n > 0) {
                up_off += (size_t)n;
                up_len -= (size_t)n;
                if (up_len == 0)
                    up_off = 0;
            }
            if (up_len == 0 && client_done)
                shutdown(pair, SHUT_WR);
        }
        if (!client_done && up_len == 0
            && (timeout == 0 || (p[0].revents & (POLLIN | POLLHUP | POLLERR)))) {
            /* Whatever is there now, never a wait: TLS may hold part of a
             * record, or a record with no data in it (a KeyUpdate), and the
             * mail half's output must not wait behind it. */
            stream_set_timeout(s->stream, 0);
            n = stream_read(s->stream, up, LOGIN_PROXY_CHUNK);
            stream_set_timeout(s->stream, s->lim.timeout_ms);
            starved = n == STREAM_TIMEOUT;
            if (n > 0) {
                up_len = (size_t)n;
            } else if (n != STREAM_TIMEOUT) {
                /* The client left: the mail half sees the end of its
                 * input and ends the session (a POP3 session without QUIT
                 * deletes nothing). */
                client_done = true;
                shutdown(pair, SHUT_WR);
            }
        }
    }
    free(up);
    free(down);
}

int login_handover(session_t *s, const char *socket_path, const char *service,
                   const unsigned char cookie[AUTH_COOKIE_LEN], const char *mech,
                   const char *tag, const char **why)
{
    static char *reason;
    int sock, give, pair[2] = { -1, -1 }, result, rc;
    unsigned flags = (s->tls ? HANDOVER_F_TLS : 0) | (login_secured(s) ? HANDOVER_F_SECURED : 0);
    buf_t *input = buf_new(0);
    ipc_msg_t *m = NULL;
    const char *w = NULL;

    free(reason);
    reason = NULL;
    *why = NULL;
    handover_proto_init();
    if (stream_flush(s->stream) < 0) {
        *why = "the client is gone";
        buf_free(&input);
        return HANDOVER_FAIL;
    }
    if ((sock = ipc_client_open(socket_path, HANDOVER_PROTO_NAME, HANDOVER_PROTO_VERSION,
                                HANDOVER_TIMEOUT_MS, &w)) < 0) {
        if (errno == ENOENT || errno == ECONNREFUSED)
            *why = "the mail half is not running (master.conf needs its unix service, "
                   "pop3d(8))";
        else
            *why = w ? w : strerror(errno);
        buf_free(&input);
        return HANDOVER_TEMPFAIL;
    }
    if (s->tls) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
            *why = "socketpair failed";
            close(sock);
            buf_free(&input);
            return HANDOVER_TEMPFAIL;
        }
        give = pair[1];
    } else if ((give = fcntl(s->fd, F_DUPFD_CLOEXEC, 0)) < 0) {
        *why = "cannot duplicate the client's descriptor";
        close(sock);
        buf_free(&input);
        return HANDOVER_TEMPFAIL;
    }
    /* What the client pipelined after its login command, read already. */
    if (stream_pending(s->stream) > HANDOVER_INPUT_MAX) {
        *why = "too much pipelined input";
        rc = HANDOVER_FAIL;
        close(give);
        goto out;
    }
    while (stream_pending(s->stream) > 0) {
        char chunk[4096];
        ssize_t n = stream_read(s->stream, chunk, sizeof(chunk));

        if (n <= 0)
            break;
        buf_append(input, chunk, (size_t)n);
    }
    m = handover_request_encode(service, cookie, s->peer.addr_text, s->peer.port, flags, mech,
                                tag, input->data, input->len, give);
    rc = ipc_send(sock, m, HANDOVER_TIMEOUT_MS);
    ipc_msg_free(&m);           /* closes our copy of give */
    if (rc < 0) {
        *why = "the mail half does not take the connection";
        rc = HANDOVER_TEMPFAIL;
        goto out;
    }
    if (ipc_recv(sock, &m, HANDOVER_FRAME_MAX, HANDOVER_TIMEOUT_MS) <= 0) {
        *why = "the mail half did not answer";
        rc = HANDOVER_TEMPFAIL;
        goto out;
    }
    if (handover_reply_decode(m, &result, &reason, &w) < 0) {
        *why = w;
        rc = HANDOVER_TEMPFAIL;
        goto out;
    }
    rc = result;
    *why = reason;
    if (rc == HANDOVER_OK && s->tls)
        login_proxy(s, pair[0]);
out:
    /* On failure the input read for the hand-over stays the client's: put
     * it back for the next command. */
    if (rc != HANDOVER_OK)
        stream_unread(s->stream, input->data, input->len);
    ipc_msg_free(&m);
    if (pair[0] >= 0)
        close(pair[0]);
    close(sock);
    buf_free(&input);
    return rc;
}

/* ------------------------------------------------- around the login */

void login_auth_terms(const session_t *s, bool plaintext_ok, struct login_auth_terms *t)
{
    t->flags = AUTH_F_HANDOVER | (s->tls ? AUTH_F_TLS : 0) | (plaintext_ok ? AUTH_F_PLAINTEXT_OK : 0);
    t->cb_type = NULL;
    t->cb = buf_new(AUTH_CB_MAX);
    if (s->tls && conf_bool("auth_channel_binding")
        && tls_conn_channel_binding(s->tls, t->cb, &t->cb_type) < 0)
        t->cb_type = NULL;
    if (t->cb_type == NULL)
        buf_reset(t->cb);
}

void login_auth_terms_clear(struct login_auth_terms *t)
{
    buf_free(&t->cb);
}

int login_challenge(session_t *s, buf_t *line, size_t max, const void *data, size_t len,
                    buf_t *out)
{
    buf_t *b64 = buf_new(0);
    ssize_t n;

    base64_encode(b64, data, len);
    stream_printf(s->stream, "+ %s\r\n", buf_cstr(b64));
    buf_free(&b64);
    if (stream_flush(s->stream) < 0) {
        session_io_failed(s, STREAM_ERROR);
        return LOGIN_CHALLENGE_IO;
    }
    n = stream_getline(s->stream, line, max);
    if (n == STREAM_TOOLONG)
        return LOGIN_CHALLENGE_TOOLONG;
    if (n <= 0) {
        session_io_failed(s, n == 0 ? STREAM_EOF : n);
        return LOGIN_CHALLENGE_IO;
    }
    while (line->len > 0 && (line->data[line->len - 1] == '\n'
                             || line->data[line->len - 1] == '\r'))
        line->len--;
    buf_truncate(line, line->len);
    if (line->len == 1 && line->data[0] == '*')
        return 0;
    buf_reset(out);
    return base64_decode(out, line->data, line->len) < 0 ? LOGIN_CHALLENGE_BASE64 : 1;
}

int login_count_connection(session_t *s, struct svcconn *anvil, const char *service,
                           long long limit, const char *param)
{
    int count;

    if (limit == 0 || !s->peer.ip)
        return 0;
    do {
        if (svcconn_fd(anvil, ANVIL_TIMEOUT_MS) < 0)
            return 0;
        count = anvil_connect(anvil->fd, service, s->peer.addr_text);
    } while (count < 0 && svcconn_retry(anvil));
    if (count < 0)
        return 0;
    if (count > limit) {
        msg_warn("too many connections from %s: %d (%s = %lld)", s->peer.addr_text, count,
                 param, limit);
        return -1;
    }
    return 1;
}

void login_uncount_connection(session_t *s, struct svcconn *anvil, const char *service)
{
    if (anvil->fd >= 0 && anvil_disconnect(anvil->fd, service, s->peer.addr_text) < 0)
        svcconn_lost(anvil);
}

void login_log_failure(const session_t *s, const char *mech, const char *user, const char *what)
{
    msg_warn(SESSION_PEER_FMT ": SASL %s authentication failed: %s%s%s%s",
             SESSION_PEER_ARGS(s), mech, what, user ? ", user=<" : "", user ? user : "",
             user ? ">" : "");
}
