/*
 * session - one client connection of a line-protocol server (see
 * session.h).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "msg.h"
#include "session.h"
#include "xalloc.h"

/* For the SIGTERM handler: the session waits for a command with every
 * reply sent, on a plaintext connection; its descriptor and goodbye. */
static volatile sig_atomic_t session_idle;
static int session_sig_fd = -1;
static char *session_goodbye;

/* Fill in who the peer is; "local" for a descriptor that is not IP. */
static void session_peer(session_t *s)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof(sa);
    unsigned port = 0;

    s->peer.name = "unknown";
    if (getpeername(s->fd, (struct sockaddr *)&sa, &len) < 0
        || netaddr_from_sockaddr((struct sockaddr *)&sa, len, &s->peer.addr, s->peer.addr_text,
                                 &port) < 0) {
        s->peer.ip = false;
        snprintf(s->peer.addr_text, sizeof(s->peer.addr_text), "local");
        snprintf(s->peer.port, sizeof(s->peer.port), "0");
        return;
    }
    s->peer.ip = true;
    snprintf(s->peer.port, sizeof(s->peer.port), "%u", port);
}

void session_open(session_t *s, int in_fd, int out_fd, tls_server_t *tls,
                  const struct session_limits *lim)
{
    memset(s, 0, sizeof(*s));
    s->fd = in_fd;
    s->tls_server = tls;
    s->lim = *lim;
    s->where = "CONNECT";
    s->stream = stream_open(in_fd);
    if (out_fd != in_fd)
        stream_set_write_fd(s->stream, out_fd);
    stream_set_timeout(s->stream, lim->timeout_ms);
    session_peer(s);
    session_sig_fd = out_fd;
}

void session_set_name(session_t *s, char *name)
{
    if (name == NULL)
        return;
    free(s->name);
    s->name = name;
    s->peer.name = name;
}

void session_set_goodbye(session_t *s, const char *text)
{
    (void)s;
    session_idle = 0;
    free(session_goodbye);
    session_goodbye = xstrdup(text);
}

void session_close(session_t *s)
{
    session_idle = 0;
    session_sig_fd = -1;
    if (s->stream == NULL)
        return;
    stream_flush(s->stream);            /* the last reply (221, 421, ...) */
    if (s->tls)
        tls_conn_free(&s->tls, s->stream);
    stream_free(&s->stream);
    s->peer.name = "unknown";
    free(s->name);
    s->name = NULL;
}

bool session_tls_start(session_t *s, int timeout_ms)
{
    const char *why = NULL;

    s->tls = tls_server_start(s->tls_server, s->stream, timeout_ms, &why);
    if (s->tls == NULL) {
        msg_info("TLS handshake failed with " SESSION_PEER_FMT ": %s", SESSION_PEER_ARGS(s), why);
        return false;
    }
    msg_info("Anonymous TLS connection established from " SESSION_PEER_FMT ": %s with cipher %s "
             "(%d/%d bits)", SESSION_PEER_ARGS(s), tls_conn_protocol(s->tls),
             tls_conn_cipher(s->tls), tls_conn_bits(s->tls), tls_conn_bits(s->tls));
    return true;
}

size_t session_starttls_discard(session_t *s, const char *command)
{
    size_t junk = stream_pending(s->stream);

    if (junk > 0) {
        msg_warn("discarding %zu bytes of plaintext pipelined after %s from " SESSION_PEER_FMT,
                 junk, command, SESSION_PEER_ARGS(s));
        stream_discard_input(s->stream);
    }
    return junk;
}

ssize_t session_read_command(session_t *s, buf_t *line)
{
    ssize_t n;

    /* Pipelining: replies wait until the client's input is used up. */
    if (stream_pending(s->stream) == 0) {
        if (stream_flush(s->stream) < 0)
            return STREAM_ERROR;
        session_idle = s->tls == NULL && session_goodbye != NULL;
    }
    n = stream_getline(s->stream, line, s->lim.line_limit);
    session_idle = 0;
    return n;
}

void session_error(session_t *s, bool urgent)
{
    s->errors++;
    if (!urgent && s->errors > s->lim.soft_errors && s->lim.error_sleep > 0) {
        stream_flush(s->stream);
        sleep((unsigned)s->lim.error_sleep);
    }
}

bool session_too_many_errors(const session_t *s)
{
    return s->errors >= s->lim.hard_errors;
}

void session_io_failed(session_t *s, ssize_t n)
{
    if (n == STREAM_TIMEOUT)
        msg_info("timeout after %s from " SESSION_PEER_FMT, s->where, SESSION_PEER_ARGS(s));
    else
        msg_info("lost connection after %s from " SESSION_PEER_FMT, s->where,
                 SESSION_PEER_ARGS(s));
    s->done = true;
}

void session_on_sigterm(int signo)
{
    (void)signo;
    if (session_idle && session_sig_fd >= 0 && session_goodbye)
        (void)!send(session_sig_fd, session_goodbye, strlen(session_goodbye),
                    MSG_NOSIGNAL | MSG_DONTWAIT);
    _exit(0);
}
