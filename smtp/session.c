/*
 * session.c - one SMTP session with one server: the TCP connection
 * (smtp_connect_timeout, smtp_bind_address), the greeting and EHLO with
 * the fallback to HELO (smtp_helo_timeout), STARTTLS by
 * smtp_tls_security_level (smtp_starttls_timeout), SASL when configured,
 * RSET before a cached session is used again (smtp_rset_timeout), QUIT;
 * and the reply reader every step uses.
 *
 * Replies are read through lib/smtpreply's parser, which keeps whatever
 * follows a complete reply for the next one (pipelining); each reply must
 * be complete within the step's timeout, however slowly it trickles in.
 * A reply that breaks the grammar or the parser's limits leaves the
 * session out of sync: it is marked unusable and closed by the caller.
 *
 * TLS levels: none (never STARTTLS), may (STARTTLS when offered; a server
 * that refuses it gets plaintext, one whose handshake fails is connected
 * to again without STARTTLS), encrypt (STARTTLS required, no certificate
 * check), verify (and the certificate must name the MX host), secure
 * (and it must name the next-hop domain or a subdomain of it).  Each TLS
 * session is logged: "Trusted TLS connection established to
 * host[addr]:port: TLSv1.3 with cipher ... (256/256 bits)".
 *
 * Failure modes: everything a server does is a status for the caller
 * (all of them failures of the server as a whole here), never an error of
 * ours.  Out of memory is fatal.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "msg.h"
#include "smtp.h"
#include "xalloc.h"

#define SESSION_REPLY_TEXT_MAX 2000

/* ---------------------------------------------------------------- I/O */

int session_send(session_t *s, const char *fmt, ...)
{
    va_list ap;
    char *line;
    int rc;

    va_start(ap, fmt);
    if (vasprintf(&line, fmt, ap) < 0)
        msg_fatal("out of memory");
    va_end(ap);
    msg_debug("> %s: %s", s->namaddr, line);
    rc = stream_write(s->st, line, strlen(line));
    if (rc == 0)
        rc = stream_write(s->st, "\r\n", 2);
    free(line);
    if (rc < 0) {
        s->usable = false;
        return rc == STREAM_TIMEOUT ? SESS_TIMEOUT : SESS_LOST;
    }
    return SESS_OK;
}

int session_flush(session_t *s, int timeout_ms)
{
    int rc;

    stream_set_timeout(s->st, timeout_ms);
    if ((rc = stream_flush(s->st)) < 0) {
        s->usable = false;
        return rc == STREAM_TIMEOUT ? SESS_TIMEOUT : SESS_LOST;
    }
    return SESS_OK;
}

static void session_keep_reply(session_t *s, const struct smtpreply *r)
{
    buf_t *b = buf_new(0);

    for (size_t i = 0; i < r->nlines; i++) {
        if (i)
            buf_putc(b, ' ');
        buf_printf(b, "%d%c%s", r->code, i + 1 < r->nlines ? '-' : ' ', r->lines[i]);
        if (b->len > SESSION_REPLY_TEXT_MAX) {
            buf_truncate(b, SESSION_REPLY_TEXT_MAX);
            buf_append_str(b, "...");
            break;
        }
    }
    /* "250 " of a reply with no text at all: keep it without the blank. */
    while (b->len > 0 && b->data[b->len - 1] == ' ')
        buf_truncate(b, b->len - 1);
    free(s->reply.text);
    s->reply.text = buf_steal(b, NULL);
    buf_free(&b);
    s->reply.code = r->code;
    strcpy(s->reply.dsn, r->dsn);
    s->parsed = r;
}

int session_read(session_t *s, int timeout_ms, const char **why)
{
    long long deadline = event_now_ms() + timeout_ms;
    int rc;

    *why = NULL;
    if ((rc = session_flush(s, timeout_ms)) != SESS_OK)
        return rc;
    for (;;) {
        char chunk[4096];
        long long left;
        ssize_t n;

        if (s->in->len > 0) {
            const struct smtpreply *r = NULL;
            size_t used = 0;
            int st = smtpreply_parse(s->rp, s->in->data, s->in->len, &used, &r, why);

            if (st == SMTPREPLY_ERROR) {
                s->usable = false;
                return SESS_PROTO;
            }
            buf_consume(s->in, used);
            if (st == SMTPREPLY_DONE) {
                session_keep_reply(s, r);
                msg_debug("< %s: %s", s->namaddr, s->reply.text);
                return SESS_OK;
            }
        }
        left = deadline - event_now_ms();
        if (left <= 0) {
            s->usable = false;
            return SESS_TIMEOUT;
        }
        stream_set_timeout(s->st, (int)left);
        n = stream_read(s->st, chunk, sizeof(chunk));
        if (n == STREAM_TIMEOUT) {
            s->usable = false;
            return SESS_TIMEOUT;
        }
        if (n < 0) {
            s->usable = false;
            return SESS_LOST;
        }
        if (buf_append(s->in, chunk, (size_t)n) < 0)
            msg_panic("session_read: input buffer refused %zd bytes", n);
    }
}

void session_error(session_t *s, int err, const char *why, const char *doing,
                   const char *command, struct smtp_status *st)
{
    switch (err) {
    case SESS_OK: {
        int cls = s->reply.code >= 500 ? 5 : 4;
        char dsn[12];

        if (s->reply.dsn[0] && s->reply.dsn[0] - '0' == cls)
            snprintf(dsn, sizeof(dsn), "%s", s->reply.dsn);
        else
            snprintf(dsn, sizeof(dsn), "%d.0.0", cls);
        smtp_status_set(st, cls, dsn, s->reply.text, "host %s said: %s (in reply to %s command)",
                        s->namaddr, s->reply.text, command);
        break;
    }
    case SESS_TIMEOUT:
        smtp_status_set(st, 4, "4.4.2", NULL, "conversation with %s timed out while %s",
                        s->namaddr, doing);
        break;
    case SESS_PROTO:
        smtp_status_set(st, 4, "4.5.0", NULL, "host %s sent a malformed reply (%s) while %s",
                        s->namaddr, why ? why : "protocol error", doing);
        break;
    default:
        smtp_status_set(st, 4, "4.4.2", NULL, "lost connection with %s while %s", s->namaddr,
                        doing);
        break;
    }
}

/* ----------------------------------------------------------- connecting */

static long long session_now(void)
{
    return event_now_ms();
}

/* A connected, non-blocking socket to a, or -1 with *why. */
static int session_connect(const struct nexthop_addr *a, const char **why)
{
    int fd, err = 0;
    socklen_t len = sizeof(err);
    struct pollfd pfd;
    long long deadline = session_now() + smtp_param.connect_ms;

    fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *why = strerror(errno);
        return -1;
    }
    /* Commands go out a batch per write (lib/stream): Nagle would only hold
     * a batch's last segment for the server's delayed ACK. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    if ((a->sa.ss_family == AF_INET && smtp_param.have_bind4)
        || (a->sa.ss_family == AF_INET6 && smtp_param.have_bind6)) {
        struct sockaddr_storage ss;
        socklen_t sl;

        memset(&ss, 0, sizeof(ss));
        if (a->sa.ss_family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

            sin->sin_family = AF_INET;
            memcpy(&sin->sin_addr, smtp_param.bind4.bytes, 4);
            sl = sizeof(*sin);
        } else {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

            sin6->sin6_family = AF_INET6;
            memcpy(&sin6->sin6_addr, smtp_param.bind6.bytes, 16);
            sl = sizeof(*sin6);
        }
        if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
            msg_warn("cannot bind to the smtp_bind_address: %m");
            *why = strerror(errno);
            close(fd);
            return -1;
        }
    }
    if (connect(fd, (const struct sockaddr *)&a->sa, a->salen) == 0)
        return fd;
    if (errno != EINPROGRESS) {
        *why = strerror(errno);
        close(fd);
        return -1;
    }
    for (;;) {
        long long left = deadline - session_now();
        int n;

        if (left <= 0) {
            *why = strerror(ETIMEDOUT);
            close(fd);
            return -1;
        }
        pfd.fd = fd;
        pfd.events = POLLOUT;
        n = poll(&pfd, 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *why = strerror(errno);
            close(fd);
            return -1;
        }
        if (n > 0)
            break;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err) {
        *why = strerror(err);
        close(fd);
        return -1;
    }
    return fd;
}

static session_t *session_new(int fd, const struct nexthop_addr *a, unsigned port,
                              const char *nexthop)
{
    session_t *s = xcalloc(1, sizeof(*s));

    s->st = stream_open(fd);
    s->rp = smtpreply_parser_new(NULL);
    s->in = buf_new(0);
    s->host = xstrdup(a->host);
    snprintf(s->addr, sizeof(s->addr), "%s", a->addr);
    s->port = port;
    s->namaddr = xasprintf("%s[%s]", a->host, a->addr);
    s->relay = xasprintf("%s[%s]:%u", a->host, a->addr, port);
    s->nexthop = xstrdup(nexthop);
    s->started_ms = session_now();
    return s;
}

/* Close without another byte of SMTP: whatever is still buffered for
 * the server is dropped (a message cut short must never be completed). */
static void session_free(session_t **sp)
{
    session_t *s = *sp;
    int fd;

    if (s == NULL)
        return;
    fd = stream_fd(s->st);
    if (s->tls)
        tls_conn_free(&s->tls, NULL);       /* close_notify, best effort */
    stream_free(&s->st);
    close(fd);
    smtpreply_parser_free(&s->rp);
    buf_free(&s->in);
    smtpext_caps_clear(&s->caps);
    free(s->host);
    free(s->namaddr);
    free(s->relay);
    free(s->nexthop);
    free(s->reply.text);
    free(s);
    *sp = NULL;
}

void session_close(session_t **sp)
{
    session_t *s = *sp;

    if (s == NULL)
        return;
    if (s->usable) {
        /* As Postfix (smtp_skip_quit_response): QUIT, without waiting. */
        if (session_send(s, "QUIT") == SESS_OK)
            (void)session_flush(s, smtp_param.quit_ms);
    }
    session_free(sp);
}

/* ------------------------------------------------------------ handshake */

/* EHLO, or HELO when EHLO is refused with 5xx.  0, or -1 with st. */
static int session_helo(session_t *s, struct smtp_status *st, bool ehlo_only)
{
    const char *why;
    int rc;

    smtpext_caps_clear(&s->caps);
    s->esmtp = false;
    if ((rc = session_send(s, "EHLO %s", smtp_param.helo_name)) == SESS_OK)
        rc = session_read(s, smtp_param.helo_ms, &why);
    if (rc != SESS_OK) {
        session_error(s, rc, why, "performing the EHLO handshake", "EHLO", st);
        return -1;
    }
    if (s->reply.code / 100 == 2) {
        if (smtpext_parse_ehlo(s->parsed, &s->caps) < 0)
            memset(&s->caps, 0, sizeof(s->caps));
        s->esmtp = true;
        return 0;
    }
    if (s->reply.code / 100 != 5 || ehlo_only) {
        session_error(s, SESS_OK, NULL, "performing the EHLO handshake", "EHLO", st);
        smtp_status_set(st, st->dsn_class, st->dsn, s->reply.text,
                        "host %s refused to talk to me: %s (in reply to EHLO command)",
                        s->namaddr, s->reply.text);
        return -1;
    }
    if ((rc = session_send(s, "HELO %s", smtp_param.helo_name)) == SESS_OK)
        rc = session_read(s, smtp_param.helo_ms, &why);
    if (rc != SESS_OK) {
        session_error(s, rc, why, "performing the HELO handshake", "HELO", st);
        return -1;
    }
    if (s->reply.code / 100 != 2) {
        session_error(s, SESS_OK, NULL, "performing the HELO handshake", "HELO", st);
        smtp_status_set(st, st->dsn_class, st->dsn, s->reply.text,
                        "host %s refused to talk to me: %s (in reply to HELO command)",
                        s->namaddr, s->reply.text);
        return -1;
    }
    return 0;
}

/* STARTTLS as the TLS level asks.  0: go on (with TLS or, where allowed,
 * without); 1: the handshake failed at level may: connect again without
 * STARTTLS; -1: failure in st. */
static int session_starttls(session_t *s, const struct nexthop *nh, bool notls,
                            struct smtp_status *st)
{
    enum smtp_tls_level lv = smtp_param.tls_level;
    struct tls_client_params p = {0};
    const char *names[2], *why;
    char *dotdomain = NULL, *key;
    struct netaddr lit;
    int rc;

    if (lv == SMTP_TLS_NONE || (lv == SMTP_TLS_MAY && (notls || smtp_tls == NULL)))
        return 0;
    if (smtp_tls == NULL) {
        smtp_status_set(st, 4, "4.7.5", NULL, "TLS is required, but this client has no "
                        "usable TLS context (see the log)");
        return -1;
    }
    if (!(s->caps.ext & SMTPEXT_STARTTLS)) {
        if (lv == SMTP_TLS_MAY)
            return 0;
        smtp_status_set(st, 4, "4.7.4", NULL, "TLS is required, but was not offered by host %s",
                        s->namaddr);
        return -1;
    }
    if ((rc = session_send(s, "STARTTLS")) == SESS_OK)
        rc = session_read(s, smtp_param.starttls_ms, &why);
    if (rc != SESS_OK) {
        session_error(s, rc, why, "sending STARTTLS", "STARTTLS", st);
        return lv == SMTP_TLS_MAY ? 1 : -1;
    }
    if (s->reply.code != 220) {
        if (lv == SMTP_TLS_MAY) {
            msg_info("host %s refused to start TLS: %s; going on without", s->namaddr,
                     s->reply.text);
            return 0;
        }
        smtp_status_set(st, 4, "4.7.4", s->reply.text, "TLS is required, but host %s refused "
                        "to start TLS: %s", s->namaddr, s->reply.text);
        return -1;
    }
    /* Anything the server sent after its 220 is plaintext injected before
     * the handshake (RFC 3207 5): never read it. */
    buf_reset(s->in);
    stream_discard_input(s->st);

    if (netaddr_parse(s->host, &lit) < 0)
        p.servername = s->host;
    if (lv == SMTP_TLS_VERIFY && p.servername) {
        names[0] = s->host;
        p.names = names;
        p.nnames = 1;
    } else if (lv == SMTP_TLS_SECURE) {
        dotdomain = xasprintf(".%s", nh->domain);
        names[0] = nh->domain;
        names[1] = dotdomain;
        p.names = names;
        p.nnames = 2;
    }
    p.verify = lv >= SMTP_TLS_VERIFY;
    key = xasprintf("%s|%s|%d|%s|%s", s->relay, p.servername ? p.servername : "", (int)lv,
                    p.nnames ? names[0] : "", p.nnames > 1 ? names[1] : "");
    p.cache_key = key;
    s->tls = tls_client_start(smtp_tls, s->st, &p, smtp_param.starttls_ms, &why);
    free(key);
    free(dotdomain);
    if (s->tls == NULL) {
        msg_info("TLS handshake with %s failed: %s%s", s->relay, why,
                 lv == SMTP_TLS_MAY ? "; trying again without TLS" : "");
        if (lv == SMTP_TLS_MAY)
            return 1;
        if (p.verify && strncmp(why, "server certificate not verified", 31) == 0)
            smtp_status_set(st, 4, "4.7.5", NULL, "Server certificate not verified: host %s: %s",
                            s->namaddr, why + 33);
        else
            smtp_status_set(st, 4, "4.7.5", NULL, "Cannot start TLS: handshake failure with "
                            "host %s: %s", s->namaddr, why);
        return -1;
    }
    msg_info("%s TLS connection established to %s: %s with cipher %s (%d/%d bits)%s",
             tls_trust_str(tls_conn_trust(s->tls)), s->relay, tls_conn_protocol(s->tls),
             tls_conn_cipher(s->tls), tls_conn_bits(s->tls), tls_conn_alg_bits(s->tls),
             tls_conn_resumed(s->tls) ? ", session resumed" : "");
    return session_helo(s, st, true) < 0 ? -1 : 0;
}

/* One attempt: 0 with *sp, 1 to try again without TLS, -1 with st. */
static int session_try(const struct nexthop *nh, const struct nexthop_addr *a,
                       const char *nexthop, bool notls, session_t **sp, struct smtp_status *st,
                       char **answered)
{
    const char *why;
    session_t *s;
    int fd, rc;

    *sp = NULL;
    if ((fd = session_connect(a, &why)) < 0) {
        smtp_status_set(st, 4, "4.4.1", NULL, "connect to %s[%s]:%u: %s", a->host, a->addr,
                        nh->port, why);
        msg_info("%s", st->text);
        return -1;
    }
    s = session_new(fd, a, nh->port, nexthop);
    rc = session_read(s, smtp_param.helo_ms, &why);
    if (rc != SESS_OK) {
        session_error(s, rc, why, "receiving the initial server greeting", "", st);
        goto fail;
    }
    free(*answered);
    *answered = xstrdup(s->relay);
    if (s->reply.code / 100 != 2) {
        session_error(s, SESS_OK, NULL, "", "", st);
        smtp_status_set(st, st->dsn_class, st->dsn, s->reply.text,
                        "host %s refused to talk to me: %s", s->namaddr, s->reply.text);
        /* Say goodbye politely: the server is in sync. */
        s->usable = true;
        goto fail;
    }
    if (session_helo(s, st, false) < 0) {
        s->usable = s->reply.code != 421;
        goto fail;
    }
    s->usable = true;
    if ((rc = session_starttls(s, nh, notls, st)) != 0) {
        if (rc < 0)
            msg_info("%s", st->text);
        if (s->tls == NULL && rc > 0)
            s->usable = false;
        session_close(&s);
        return rc;
    }
    if (smtp_param.sasl && sasl_authenticate(s, nexthop, st) < 0)
        goto fail;
    *sp = s;
    return 0;
fail:
    msg_info("%s", st->text);
    session_close(&s);
    return -1;
}

session_t *session_open(const struct nexthop *nh, const struct nexthop_addr *a,
                        const char *nexthop, struct smtp_status *st, char **answered)
{
    session_t *s;
    int rc = session_try(nh, a, nexthop, false, &s, st, answered);

    if (rc > 0)
        rc = session_try(nh, a, nexthop, true, &s, st, answered);
    return rc == 0 ? s : NULL;
}

int session_rset(session_t *s)
{
    const char *why;
    int rc;

    if (!s->usable)
        return -1;
    if ((rc = session_send(s, "RSET")) == SESS_OK)
        rc = session_read(s, smtp_param.rset_ms, &why);
    if (rc == SESS_OK && s->reply.code / 100 == 2)
        return 0;
    s->usable = false;
    return -1;
}
