/*
 * smtpserver - the SMTP server engine shared by smtpd and submission (see
 * smtpserver.h).
 *
 * One session per process at a time (SERVER_SINGLE), so the session state
 * is one static struct.  The connection itself (the client's address and
 * name, the command reader, TLS, the error limits, timeouts and the 421
 * on SIGTERM) is lib/session's, which POP3 and IMAP share; this file is
 * SMTP: the commands, dispatched by verb from smtpserver_commands[], the
 * transaction, and the hand-over to cleanup.
 *
 * The connection to cleanup is made at a session's first message and, once
 * smtpserver_init() has given an event loop, outlives the session:
 * a process that serves sessions back to back (a client that connects for
 * every message, a busy MX) hands each message over on the same
 * connection, as it does within one session, instead of paying a connect,
 * a hello round trip, and cleanup's accept and two status reports to
 * master per session.  It is closed SMTPSERVER_CLEANUP_KEEP_MS after a
 * session ends unless another one starts, so an idle smtpd holds no
 * cleanup process.  A kept connection that cleanup has closed meanwhile
 * (max_idle, a reload) is noticed when the next session starts (readable
 * with nothing to read) and replaced at its first message, so no message
 * meets it.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base64.h"
#include "buf.h"
#include "cleanup_proto.h"
#include "conf.h"
#include "event.h"
#include "ipc.h"
#include "msg.h"
#include "queue.h"
#include "smtpcontent.h"
#include "smtpdata.h"
#include "smtpserver.h"
#include "xalloc.h"

#define SMTPSERVER_BDAT_PIECE   65536
#define SMTPSERVER_AUTH_LINE_MAX 12290  /* RFC 4954 4: 12288 octets and CRLF */
#define SMTPSERVER_CLEANUP_KEEP_MS 1000
#define SMTPSERVER_TLS_MS       (60 * 1000)
#define SMTPSERVER_NVERBS       (SMTPP_VERB_AUTH + 1)

enum smtpserver_tls_level { TLS_LEVEL_NONE, TLS_LEVEL_MAY, TLS_LEVEL_ENCRYPT };

struct smtpserver {
    session_t                        sess;  /* the connection (lib/session) */
    struct smtp_session              ss;
    const struct smtpserver_policy  *policy;
    buf_t                           *line;
    buf_t                           *reply;

    /* Limits, read at the start of the session. */
    struct session_limits lim;
    size_t   data_line_limit;
    uint64_t size_limit;
    size_t   rcpt_limit;
    int      data_timeout_ms;
    enum smtpserver_tls_level tls_level;
    unsigned ext;                   /* SMTPEXT_* offered after EHLO */

    int         last_code;
    smtpcontent_t *bdat;            /* a BDAT transfer is under way */
    unsigned    verb_total[SMTPSERVER_NVERBS], verb_ok[SMTPSERVER_NVERBS];
    unsigned    unknown_total;
};

static struct smtpserver S;

/* The connection to cleanup (see the top). */
static int smtpserver_cleanup_fd = -1;
static event_loop_t *smtpserver_cleanup_loop;
static event_timer_t *smtpserver_cleanup_timer;

static void smtpserver_cleanup_close(void)
{
    if (smtpserver_cleanup_fd >= 0)
        close(smtpserver_cleanup_fd);
    smtpserver_cleanup_fd = -1;
}

static void smtpserver_cleanup_expire(event_loop_t *loop, void *arg)
{
    (void)loop;
    (void)arg;
    smtpserver_cleanup_timer = NULL;
    smtpserver_cleanup_close();
}

void smtpserver_init(event_loop_t *loop)
{
    struct sigaction sa;

    cleanup_proto_init();
    smtpserver_cleanup_loop = loop;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = session_on_sigterm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
}

/* A session starts: take over the connection kept from the last one,
 * unless cleanup has closed it (it never speaks unasked, so readable
 * means closed). */
static void smtpserver_cleanup_resume(void)
{
    if (smtpserver_cleanup_timer)
        event_cancel_timer(smtpserver_cleanup_loop, &smtpserver_cleanup_timer);
    if (smtpserver_cleanup_fd >= 0 && ipc_idle_closed(smtpserver_cleanup_fd))
        smtpserver_cleanup_close();
}

static const char *smtpserver_verb_log[SMTPSERVER_NVERBS] = {
    [SMTPP_VERB_EHLO] = "ehlo", [SMTPP_VERB_HELO] = "helo", [SMTPP_VERB_MAIL] = "mail",
    [SMTPP_VERB_RCPT] = "rcpt", [SMTPP_VERB_DATA] = "data", [SMTPP_VERB_BDAT] = "bdat",
    [SMTPP_VERB_RSET] = "rset", [SMTPP_VERB_NOOP] = "noop", [SMTPP_VERB_QUIT] = "quit",
    [SMTPP_VERB_VRFY] = "vrfy", [SMTPP_VERB_HELP] = "help", [SMTPP_VERB_STARTTLS] = "starttls",
    [SMTPP_VERB_AUTH] = "auth",
};

int smtpserver_reply_set(struct smtpserver_reply *r, int code, const char *dsn,
                         const char *fmt, ...)
{
    va_list ap;

    free(r->dsn);
    free(r->text);
    r->code = code;
    r->dsn = dsn ? xstrdup(dsn) : NULL;
    va_start(ap, fmt);
    if (vasprintf(&r->text, fmt, ap) < 0)
        msg_fatal("out of memory");
    va_end(ap);
    return code;
}

static void smtpserver_reply_clear(struct smtpserver_reply *r)
{
    free(r->dsn);
    free(r->text);
    memset(r, 0, sizeof(*r));
}

/* ---- replies ---- */

/* Queue reply lines; errors count towards the limits. */
static void smtpserver_send_lines(int code, const char *dsn, const char *const *lines, size_t n)
{
    S.last_code = code;
    if (code >= 400)
        session_error(&S.sess, code == 421);
    buf_reset(S.reply);
    if (smtpreply_format(S.reply, code, dsn, lines, n) < 0)
        msg_panic("smtpserver: reply does not fit");
    stream_write(S.sess.stream, S.reply->data, S.reply->len);
}

static void smtpserver_vsend(int code, const char *dsn, const char *fmt, va_list ap)
{
    char *text;

    if (vasprintf(&text, fmt, ap) < 0)
        msg_fatal("out of memory");
    smtpserver_send_lines(code, dsn, (const char *const *)&text, 1);
    free(text);
}

static void smtpserver_send(int code, const char *dsn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void smtpserver_send(int code, const char *dsn, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    smtpserver_vsend(code, dsn, fmt, ap);
    va_end(ap);
}

void smtpserver_reply(struct smtp_session *ss, int code, const char *dsn, const char *fmt, ...)
{
    va_list ap;

    (void)ss;
    va_start(ap, fmt);
    smtpserver_vsend(code, dsn, fmt, ap);
    va_end(ap);
}

static void smtpserver_send_err(const struct smtpreply_err *err)
{
    smtpserver_send(err->code, err->dsn, "%s", err->text);
}

/* The client, Postfix style: "unknown[127.0.0.1]", "mx.example.org[192.0.2.1]". */
#define CLIENT_FMT SESSION_PEER_FMT
#define CLIENT_ARGS SESSION_PEER_ARGS(&S.sess)

/* The WITH protocol of Received: (RFC 3848, RFC 6531): S for TLS, A for
 * an authenticated session (AUTH needs EHLO). */
static const char *smtpserver_protocol(void)
{
    static const char *const names[2][2][2] = {     /* [utf8][tls][auth] */
        {{"ESMTP", "ESMTPA"}, {"ESMTPS", "ESMTPSA"}},
        {{"UTF8SMTP", "UTF8SMTPA"}, {"UTF8SMTPS", "UTF8SMTPSA"}},
    };
    bool utf8 = S.ss.have_mail && S.ss.mail.params.smtputf8;

    if (!S.ss.esmtp)
        return S.sess.tls ? "SMTPS" : "SMTP";
    return names[utf8][S.sess.tls != NULL][S.ss.auth_user != NULL];
}

/* "NOQUEUE: reject: RCPT from unknown[1.2.3.4]: 550 5.1.1 <x>: text;
 * from=<a> to=<x> proto=ESMTP helo=<h>" */
static void smtpserver_log_reject(const char *stage, int code, const char *dsn, const char *text,
                                  const char *from, const char *to)
{
    if (from == NULL)
        from = S.ss.have_mail ? S.ss.mail.path.addr : "";
    msg_info("NOQUEUE: reject: %s from " CLIENT_FMT
             ": %d %s %s; from=<%s>%s%s%s proto=%s helo=<%s>", stage, CLIENT_ARGS, code, dsn ? dsn : "", text,
             from, to ? " to=<" : "", to ? to : "",
             to ? ">" : "", smtpserver_protocol(), S.ss.helo_name ? S.ss.helo_name : "");
}

/* A policy's answer: send it, log it, free it. */
static void smtpserver_send_policy(const char *stage, struct smtpserver_reply *r,
                                   const char *from, const char *to)
{
    if (r->code < 200 || r->code > 599 || r->text == NULL)
        msg_panic("smtpserver: policy gave reply code %d", r->code);
    smtpserver_send(r->code, r->dsn, "%s", r->text);
    if (r->code >= 400)
        smtpserver_log_reject(stage, r->code, r->dsn, r->text, from, to);
    smtpserver_reply_clear(r);
}

/* ---- the transaction ---- */

static void smtpserver_reset(void)
{
    if (S.ss.have_mail)
        smtpproto_addrcmd_clear(&S.ss.mail);
    S.ss.have_mail = false;
    for (size_t i = 0; i < S.ss.nrcpt; i++) {
        free(S.ss.rcpts[i].address);
        free(S.ss.rcpts[i].orcpt);
    }
    free(S.ss.rcpts);
    S.ss.rcpts = NULL;
    S.ss.nrcpt = 0;
    smtpcontent_free(&S.bdat);
}

static void smtpserver_auth_forget(void)
{
    free(S.ss.auth_user);
    free(S.ss.auth_method);
    S.ss.auth_user = S.ss.auth_method = NULL;
}

/* Hand the content to cleanup and answer the end of the message. */
static void smtpserver_submit(int content_fd, uint64_t len)
{
    struct cleanup_request r;
    struct cleanup_result res;
    const char *why = NULL;
    char bits[16];

    cleanup_request_init(&r);
    r.content_fd = content_fd;
    r.content_len = len;
    r.sender = xstrdup(S.ss.mail.path.null ? "" : S.ss.mail.path.addr);
    r.envid = xstrdup(S.ss.mail.params.envid ? S.ss.mail.params.envid : "");
    r.ret = S.ss.mail.params.ret == SMTPP_RET_FULL   ? QUEUE_RET_FULL
            : S.ss.mail.params.ret == SMTPP_RET_HDRS ? QUEUE_RET_HDRS
                                                     : QUEUE_RET_NONE;
    cleanup_request_attr(&r, QUEUE_ATTR_CLIENT_NAME, S.sess.peer.name);
    cleanup_request_attr(&r, QUEUE_ATTR_CLIENT_ADDR, S.sess.peer.addr_text);
    cleanup_request_attr(&r, CLEANUP_ATTR_CLIENT_PORT, S.sess.peer.port);
    if (S.ss.helo_name)
        cleanup_request_attr(&r, QUEUE_ATTR_HELO, S.ss.helo_name);
    cleanup_request_attr(&r, QUEUE_ATTR_PROTOCOL, smtpserver_protocol());
    if (S.sess.tls) {
        snprintf(bits, sizeof(bits), "%d", tls_conn_bits(S.sess.tls));
        cleanup_request_attr(&r, CLEANUP_ATTR_TLS_PROTOCOL, tls_conn_protocol(S.sess.tls));
        cleanup_request_attr(&r, CLEANUP_ATTR_TLS_CIPHER, tls_conn_cipher(S.sess.tls));
        cleanup_request_attr(&r, CLEANUP_ATTR_TLS_BITS, bits);
    }
    if (S.ss.auth_user)
        cleanup_request_attr(&r, QUEUE_ATTR_SASL_USER, S.ss.auth_user);
    for (size_t i = 0; i < S.ss.nrcpt; i++)
        cleanup_request_rcpt(&r, S.ss.rcpts[i].address, S.ss.rcpts[i].address,
                             S.ss.rcpts[i].orcpt, S.ss.rcpts[i].notify);

    if (S.policy->message) {
        struct smtpserver_reply rep = { 0 };

        if (S.policy->message(&S.ss, &r, &rep) != 0) {
            smtpserver_send_policy("END-OF-MESSAGE", &rep, NULL, NULL);
            goto out;
        }
    }
    if (S.policy->submit) {
        if (S.policy->submit(&S.ss, &r, &res) < 0) {
            smtpserver_send(451, "4.3.0", "Error: queue file write error");
            goto out;
        }
    } else if (cleanup_submit_kept(&smtpserver_cleanup_fd, &r, &res, CLEANUP_TIMEOUT_MS,
                                   &why) < 0) {
        msg_warn("cannot hand the message to cleanup (%s): %s", CLEANUP_SOCKET, why);
        smtpserver_send(451, "4.3.0", "Error: queue file write error");
        goto out;
    }
    if (res.code == 250) {
        buf_t *extra = buf_new(0);

        if (S.ss.auth_user)     /* Postfix's words: log tools grep for them */
            buf_printf(extra, ", sasl_method=%s, sasl_username=%s", S.ss.auth_method,
                       S.ss.auth_user);
        if (S.sess.tls)
            buf_printf(extra, ", tls=%s", tls_conn_protocol(S.sess.tls));
        msg_info("%s: client=" CLIENT_FMT "%s", res.text, CLIENT_ARGS, buf_cstr(extra));
        buf_free(&extra);
        smtpserver_send(250, "2.0.0", "Ok: queued as %s", res.text);
    } else if (res.code >= 400 && res.code <= 599) {
        smtpserver_send(res.code, res.dsn, "%s", res.text);
        smtpserver_log_reject("END-OF-MESSAGE", res.code, res.dsn, res.text, NULL, NULL);
    } else {
        msg_warn("cleanup answered with reply code %d", res.code);
        smtpserver_send(451, "4.3.0", "Error: queue file write error");
    }
    cleanup_result_free(&res);
out:
    cleanup_request_free(&r);
}

/* ---- commands ---- */

static void smtpserver_ehlo(const struct smtpproto_cmd *cmd)
{
    const char *lines[16];
    char size[40];
    size_t n = 0;

    smtpserver_reset();
    free(S.ss.helo_name);
    S.ss.helo_name = xstrndup(cmd->arg, cmd->arg_len);
    /* It goes into logs and the Received: header: no control characters. */
    for (char *p = S.ss.helo_name; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    S.ss.esmtp = cmd->verb == SMTPP_VERB_EHLO;
    if (!S.ss.esmtp) {
        smtpserver_send(250, NULL, "%s", conf_str("myhostname"));
        return;
    }
    lines[n++] = conf_str("myhostname");
    lines[n++] = "PIPELINING";
    if (S.size_limit > 0) {
        snprintf(size, sizeof(size), "SIZE %llu", (unsigned long long)S.size_limit);
        lines[n++] = size;
    } else {
        lines[n++] = "SIZE";
    }
    if (!conf_bool("disable_vrfy_command"))
        lines[n++] = "VRFY";
    if (S.sess.tls_server && !S.sess.tls && S.tls_level != TLS_LEVEL_NONE)
        lines[n++] = "STARTTLS";
    lines[n++] = "ENHANCEDSTATUSCODES";
    lines[n++] = "8BITMIME";
    lines[n++] = "DSN";
    lines[n++] = "SMTPUTF8";
    lines[n++] = "CHUNKING";
    if (S.policy->ehlo_keywords)
        S.policy->ehlo_keywords(&S.ss, lines, &n, sizeof(lines) / sizeof(lines[0]));
    smtpserver_send_lines(250, NULL, lines, n);
}

static void smtpserver_mail(const struct smtpproto_cmd *cmd)
{
    struct smtpproto_limits lim = SMTPPROTO_LIMITS_SERVER;
    struct smtpreply_err err;
    struct smtpserver_reply r = { 0 };
    struct smtp_addrcmd ac;

    if (S.tls_level == TLS_LEVEL_ENCRYPT && !S.sess.tls) {
        smtpserver_send(530, "5.7.0", "Must issue a STARTTLS command first");
        return;
    }
    if (S.ss.have_mail) {
        smtpserver_send(503, "5.5.1", "Error: nested MAIL command");
        return;
    }
    if (smtpproto_parse_mail(cmd->arg, cmd->arg_len, S.ss.esmtp ? S.ext : 0, &lim, &ac, &err)
        != SMTPP_OK) {
        smtpserver_send_err(&err);
        return;
    }
    if (S.size_limit > 0 && (ac.params.seen & SMTPP_P_SIZE) && ac.params.size > S.size_limit) {
        smtpserver_send(552, "5.3.4", "Message size exceeds fixed limit");
        smtpserver_log_reject("MAIL", 552, "5.3.4", "Message size exceeds fixed limit",
                              ac.path.addr, NULL);
        smtpproto_addrcmd_clear(&ac);
        return;
    }
    if (S.policy->mail && S.policy->mail(&S.ss, &ac, &r) != 0) {
        smtpserver_send_policy("MAIL", &r, ac.path.addr, NULL);
        smtpproto_addrcmd_clear(&ac);
        return;
    }
    S.ss.mail = ac;
    S.ss.have_mail = true;
    smtpserver_send(250, "2.1.0", "Ok");
}

/* RCPT and DATA need a MAIL and no BDAT transfer under way; otherwise
 * the 503 is sent and false returned. */
static bool smtpserver_may_add(const char *verb)
{
    if (!S.ss.have_mail) {
        smtpserver_send(503, "5.5.1", "Error: need MAIL command");
        return false;
    }
    if (S.bdat) {
        smtpserver_send(503, "5.5.1", "Error: %s after BDAT", verb);
        return false;
    }
    return true;
}

static unsigned smtpserver_notify(unsigned n)
{
    return ((n & SMTPP_NOTIFY_NEVER) ? QUEUE_NOTIFY_NEVER : 0)
           | ((n & SMTPP_NOTIFY_SUCCESS) ? QUEUE_NOTIFY_SUCCESS : 0)
           | ((n & SMTPP_NOTIFY_FAILURE) ? QUEUE_NOTIFY_FAILURE : 0)
           | ((n & SMTPP_NOTIFY_DELAY) ? QUEUE_NOTIFY_DELAY : 0);
}

/* The recipient as it is queued: a bare local part (<postmaster>) gets
 * @myorigin. */
static char *smtpserver_queue_address(const struct smtpproto_path *p)
{
    if (*p->domain == '\0')
        return xasprintf("%s@%s", p->addr, conf_str("myorigin"));
    return xstrdup(p->addr);
}

static void smtpserver_rcpt(const struct smtpproto_cmd *cmd)
{
    struct smtpproto_limits lim = SMTPPROTO_LIMITS_SERVER;
    struct smtpreply_err err;
    struct smtpserver_reply r = { 0 };
    struct smtp_addrcmd ac;
    struct smtpserver_rcpt *rc;
    unsigned flags;
    char *address;

    if (!smtpserver_may_add("RCPT"))
        return;
    flags = (S.ss.esmtp ? S.ext : 0) | (S.ss.mail.params.smtputf8 ? SMTPP_F_UTF8 : 0);
    if (smtpproto_parse_rcpt(cmd->arg, cmd->arg_len, flags, &lim, &ac, &err) != SMTPP_OK) {
        smtpserver_send_err(&err);
        return;
    }
    address = smtpserver_queue_address(&ac.path);
    if (S.ss.nrcpt >= S.rcpt_limit) {
        smtpserver_send(452, "4.5.3", "Error: too many recipients");
        smtpserver_log_reject("RCPT", 452, "4.5.3", "Error: too many recipients", NULL, address);
    } else if (S.policy->rcpt && S.policy->rcpt(&S.ss, &ac, address, &r) != 0) {
        smtpserver_send_policy("RCPT", &r, NULL, address);
    } else {
        S.ss.rcpts = xreallocarray(S.ss.rcpts, S.ss.nrcpt + 1, sizeof(*S.ss.rcpts));
        rc = &S.ss.rcpts[S.ss.nrcpt++];
        rc->address = address;
        address = NULL;
        rc->orcpt = ac.params.orcpt_type
                        ? xasprintf("%s;%s", ac.params.orcpt_type, ac.params.orcpt_addr)
                        : xstrdup("");
        rc->notify = smtpserver_notify(ac.params.notify);
        smtpserver_send(250, "2.1.5", "Ok");
    }
    free(address);
    smtpproto_addrcmd_clear(&ac);
}

/* Read the rest of a session that cannot go on. */
static void smtpserver_io_failed(ssize_t n)
{
    session_io_failed(&S.sess, n);
    if (n == STREAM_TIMEOUT) {
        smtpserver_send(421, "4.4.2", "%s Error: timeout exceeded", conf_str("myhostname"));
        stream_flush(S.sess.stream);
    }
}

static void smtpserver_data(void)
{
    struct smtpdata d;
    struct smtpreply_err err;
    smtpcontent_t *c;
    uint64_t len;
    ssize_t n;
    int fd;

    if (!smtpserver_may_add("DATA"))
        return;
    if (S.ss.nrcpt == 0) {
        smtpserver_send(554, "5.5.1", "Error: no valid recipients");
        return;
    }
    smtpserver_send(354, NULL, "End data with <CR><LF>.<CR><LF>");
    if (stream_flush(S.sess.stream) < 0) {
        smtpserver_io_failed(STREAM_ERROR);
        return;
    }
    c = smtpcontent_new(0, 0);
    smtpdata_init(&d, NULL, S.size_limit, S.data_line_limit);
    smtpdata_set_sink(&d, smtpcontent_sink, c);
    stream_set_timeout(S.sess.stream, S.data_timeout_ms);
    for (;;) {
        n = stream_getline(S.sess.stream, S.line, S.data_line_limit * 2);
        if (n == STREAM_TOOLONG) {
            smtpdata_feed_toolong(&d);
            continue;
        }
        if (n <= 0) {
            smtpserver_io_failed(n == 0 ? STREAM_EOF : n);
            break;
        }
        if (smtpdata_feed(&d, S.line->data, S.line->len) == 1)
            break;
    }
    stream_set_timeout(S.sess.stream, S.lim.timeout_ms);
    if (!S.sess.done) {
        S.sess.where = "END-OF-MESSAGE";
        if (smtpdata_result(&d, &err) < 0 || smtpcontent_finish(c, &fd, &len, &err) < 0) {
            smtpserver_send_err(&err);
            smtpserver_log_reject("END-OF-MESSAGE", err.code, err.dsn, err.text, NULL, NULL);
        } else {
            smtpserver_submit(fd, len);
        }
    }
    smtpcontent_free(&c);
    smtpserver_reset();
}

static void smtpserver_bdat(const struct smtpproto_cmd *cmd)
{
    struct smtpreply_err err;
    uint64_t size, left;
    bool last;
    char *piece;
    uint64_t len;
    int fd;

    if (smtpproto_parse_bdat(cmd->arg, cmd->arg_len, &size, &last, &err) != SMTPP_OK) {
        /* How many octets follow is unknown: the session cannot go on. */
        smtpserver_send_err(&err);
        msg_info("bad BDAT command from " CLIENT_FMT ": ending the session", CLIENT_ARGS);
        S.sess.done = true;
        return;
    }
    if (S.ss.have_mail && S.ss.nrcpt > 0 && S.bdat == NULL)
        S.bdat = smtpcontent_new(S.size_limit, S.data_line_limit);
    /* The chunk is read in any case, so that its octets are never taken
     * for commands. */
    piece = xmalloc(SMTPSERVER_BDAT_PIECE);
    stream_set_timeout(S.sess.stream, S.data_timeout_ms);
    for (left = size; left > 0;) {
        size_t want = left < SMTPSERVER_BDAT_PIECE ? (size_t)left : SMTPSERVER_BDAT_PIECE;
        ssize_t n = stream_read(S.sess.stream, piece, want);

        if (n <= 0) {
            smtpserver_io_failed(n == 0 ? STREAM_EOF : n);
            break;
        }
        if (S.bdat && !smtpcontent_failed(S.bdat))
            smtpcontent_bdat(S.bdat, piece, (size_t)n);
        left -= (uint64_t)n;
    }
    free(piece);
    stream_set_timeout(S.sess.stream, S.lim.timeout_ms);
    if (S.sess.done)
        return;
    if (!S.ss.have_mail) {
        smtpserver_send(503, "5.5.1", "Error: need MAIL command");
        return;
    }
    if (S.ss.nrcpt == 0) {
        smtpserver_send(554, "5.5.1", "Error: no valid recipients");
        return;
    }
    if (!last && !smtpcontent_failed(S.bdat)) {
        smtpserver_send(250, "2.0.0", "Ok: %llu bytes", (unsigned long long)size);
        return;
    }
    /* The last chunk, or one that broke a rule: the transaction ends here
     * (later chunks of a refused message meet "need MAIL command"). */
    S.sess.where = "END-OF-MESSAGE";
    if (smtpcontent_finish(S.bdat, &fd, &len, &err) < 0) {
        smtpserver_send_err(&err);
        smtpserver_log_reject("END-OF-MESSAGE", err.code, err.dsn, err.text, NULL, NULL);
    } else {
        smtpserver_submit(fd, len);
    }
    smtpserver_reset();
}

static void smtpserver_starttls(void)
{
    if (S.sess.tls) {
        smtpserver_send(554, "5.5.1", "Error: TLS already active");
        return;
    }
    if (S.sess.tls_server == NULL || S.tls_level == TLS_LEVEL_NONE) {
        smtpserver_send(502, "5.5.1", "Error: command not implemented");
        return;
    }
    smtpserver_send(220, "2.0.0", "Ready to start TLS");
    if (stream_flush(S.sess.stream) < 0) {
        smtpserver_io_failed(STREAM_ERROR);
        return;
    }
    /* RFC 3207 5: nothing the client sent before the handshake counts. */
    session_starttls_discard(&S.sess, "STARTTLS");
    if (!session_tls_start(&S.sess, SMTPSERVER_TLS_MS)) {
        S.sess.done = true;
        return;
    }
    /* RFC 3207 4.2: forget everything learnt from the client. */
    smtpserver_reset();
    smtpserver_auth_forget();
    free(S.ss.helo_name);
    S.ss.helo_name = NULL;
    S.ss.esmtp = false;
}

/* A VRFY argument we are willing to look up and log: no white space,
 * quotes, backslashes or control characters. */
static bool smtpserver_vrfy_arg_ok(const char *addr)
{
    if (*addr == '\0')
        return false;
    for (; *addr; addr++)
        if ((unsigned char)*addr <= 0x20 || *addr == 0x7f || *addr == '"' || *addr == '\\')
            return false;
    return true;
}

static void smtpserver_vrfy(const struct smtpproto_cmd *cmd)
{
    struct smtpserver_reply r = { 0 };
    char *arg, *addr, *lt;

    if (conf_bool("disable_vrfy_command") || S.policy->vrfy == NULL) {
        smtpserver_send(252, "2.0.0", "Cannot VRFY user, but will accept message and attempt "
                                      "delivery");
        return;
    }
    /* "user", "<user@domain>" or "Name <user@domain>". */
    arg = xstrndup(cmd->arg, cmd->arg_len);
    addr = arg;
    if ((lt = strchr(arg, '<')) != NULL) {
        addr = lt + 1;
        addr[strcspn(addr, ">")] = '\0';
    }
    if (!smtpserver_vrfy_arg_ok(addr)) {
        smtpserver_send(501, "5.1.3", "Bad recipient address syntax");
    } else {
        char *full = strchr(addr, '@') ? xstrdup(addr) : xasprintf("%s@%s", addr,
                                                                   conf_str("myorigin"));

        if (S.policy->vrfy(&S.ss, full, &r) != 0)
            smtpserver_send_policy("VRFY", &r, NULL, full);
        else
            smtpserver_send(250, "2.0.0", "<%s>", full);
        free(full);
    }
    free(arg);
}

static void smtpserver_rset(const struct smtpproto_cmd *cmd)
{
    (void)cmd;
    smtpserver_reset();
    smtpserver_send(250, "2.0.0", "Ok");
}

static void smtpserver_noop(const struct smtpproto_cmd *cmd)
{
    (void)cmd;
    smtpserver_send(250, "2.0.0", "Ok");
}

static void smtpserver_quit(const struct smtpproto_cmd *cmd)
{
    (void)cmd;
    smtpserver_send(221, "2.0.0", "Bye");
    S.sess.done = true;
}

static void smtpserver_help(const struct smtpproto_cmd *cmd)
{
    (void)cmd;
    smtpserver_send(214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT "
                                  "VRFY HELP STARTTLS");
}

/* AUTH (RFC 4954 4): the engine's rules, then the policy's exchange. */
static void smtpserver_auth(const struct smtpproto_cmd *cmd)
{
    if (S.policy->auth == NULL)
        smtpserver_send(503, "5.5.1", "Error: authentication not enabled");
    else if (!S.ss.esmtp)
        smtpserver_send(503, "5.5.1", "Error: send EHLO first");
    else if (S.ss.auth_user)
        smtpserver_send(503, "5.5.1", "Error: already authenticated");
    else if (S.ss.have_mail)
        smtpserver_send(503, "5.5.1", "Error: MAIL transaction in progress");
    else
        S.policy->auth(&S.ss, cmd->arg, cmd->arg_len);
}

int smtpserver_auth_read(struct smtp_session *ss, const void *challenge, size_t len, buf_t *out)
{
    buf_t *b64 = buf_new(0);
    ssize_t n;
    size_t l;

    (void)ss;
    base64_encode(b64, challenge, len);
    smtpserver_send(334, NULL, "%s", buf_cstr(b64));
    buf_free(&b64);
    if (stream_flush(S.sess.stream) < 0) {
        smtpserver_io_failed(STREAM_ERROR);
        return -1;
    }
    n = stream_getline(S.sess.stream, S.line, SMTPSERVER_AUTH_LINE_MAX);
    if (n == STREAM_TOOLONG) {
        smtpserver_send(500, "5.5.6", "Error: authentication exchange line is too long");
        return -1;
    }
    if (n <= 0) {
        smtpserver_io_failed(n == 0 ? STREAM_EOF : n);
        return -1;
    }
    for (l = S.line->len; l > 0 && (S.line->data[l - 1] == '\n' || S.line->data[l - 1] == '\r');)
        l--;
    if (l == 1 && S.line->data[0] == '*')
        return 0;
    buf_reset(out);
    return base64_decode(out, S.line->data, l) < 0 ? -2 : 1;
}

static void smtpserver_data_cmd(const struct smtpproto_cmd *cmd)
{
    (void)cmd;
    smtpserver_data();
}

static void smtpserver_starttls_cmd(const struct smtpproto_cmd *cmd)
{
    (void)cmd;
    smtpserver_starttls();
}

/* The commands, by verb (lib/smtpproto parses them). */
static void (*const smtpserver_commands[SMTPSERVER_NVERBS])(const struct smtpproto_cmd *) = {
    [SMTPP_VERB_EHLO] = smtpserver_ehlo,         [SMTPP_VERB_HELO] = smtpserver_ehlo,
    [SMTPP_VERB_MAIL] = smtpserver_mail,         [SMTPP_VERB_RCPT] = smtpserver_rcpt,
    [SMTPP_VERB_DATA] = smtpserver_data_cmd,     [SMTPP_VERB_BDAT] = smtpserver_bdat,
    [SMTPP_VERB_RSET] = smtpserver_rset,         [SMTPP_VERB_NOOP] = smtpserver_noop,
    [SMTPP_VERB_QUIT] = smtpserver_quit,         [SMTPP_VERB_VRFY] = smtpserver_vrfy,
    [SMTPP_VERB_HELP] = smtpserver_help,         [SMTPP_VERB_STARTTLS] = smtpserver_starttls_cmd,
    [SMTPP_VERB_AUTH] = smtpserver_auth,
};

static void smtpserver_command(const struct smtpproto_cmd *cmd)
{
    if (cmd->verb <= SMTPP_VERB_NONE || cmd->verb >= SMTPSERVER_NVERBS
        || smtpserver_commands[cmd->verb] == NULL)
        msg_panic("smtpserver: no handler for verb %d", (int)cmd->verb);
    smtpserver_commands[cmd->verb](cmd);
}

/* ---- the session ---- */

static void smtpserver_limits(void)
{
    const char *level = conf_str("smtpd_tls_security_level");
    long long size = conf_size("message_size_limit");

    S.lim.line_limit = (size_t)conf_int("line_length_limit");
    S.lim.timeout_ms = (int)(conf_time("smtpd_timeout") * 1000);
    S.lim.soft_errors = conf_int("smtpd_soft_error_limit");
    S.lim.hard_errors = conf_int("smtpd_hard_error_limit");
    S.lim.error_sleep = conf_time("smtpd_error_sleep_time");
    S.data_line_limit = (size_t)conf_int("smtpd_data_line_limit");
    S.size_limit = size > 0 ? (uint64_t)size : 0;
    S.rcpt_limit = (size_t)conf_int("smtpd_recipient_limit");
    S.data_timeout_ms = (int)(conf_time("smtpd_data_timeout") * 1000);
    if (strcasecmp(level, "none") == 0)
        S.tls_level = TLS_LEVEL_NONE;
    else if (strcasecmp(level, "encrypt") == 0)
        S.tls_level = TLS_LEVEL_ENCRYPT;
    else
        S.tls_level = TLS_LEVEL_MAY;
    S.ext = SMTPEXT_SIZE | SMTPEXT_8BITMIME | SMTPEXT_SMTPUTF8 | SMTPEXT_DSN;
}

static void smtpserver_log_disconnect(void)
{
    buf_t *b = buf_new(0);
    unsigned total = S.unknown_total, ok = 0;

    /* Postfix's order, so that log parsers see the same line. */
    static const enum smtpproto_verb order[] = {
        SMTPP_VERB_HELO, SMTPP_VERB_EHLO, SMTPP_VERB_STARTTLS, SMTPP_VERB_AUTH, SMTPP_VERB_MAIL,
        SMTPP_VERB_RCPT, SMTPP_VERB_DATA, SMTPP_VERB_BDAT, SMTPP_VERB_RSET, SMTPP_VERB_NOOP,
        SMTPP_VERB_VRFY, SMTPP_VERB_HELP, SMTPP_VERB_QUIT,
    };

    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        enum smtpproto_verb v = order[i];

        if (S.verb_total[v] == 0)
            continue;
        total += S.verb_total[v];
        ok += S.verb_ok[v];
        if (S.verb_ok[v] == S.verb_total[v])
            buf_printf(b, " %s=%u", smtpserver_verb_log[v], S.verb_total[v]);
        else
            buf_printf(b, " %s=%u/%u", smtpserver_verb_log[v], S.verb_ok[v], S.verb_total[v]);
    }
    if (S.unknown_total)
        buf_printf(b, " unknown=0/%u", S.unknown_total);
    if (ok == total)
        buf_printf(b, " commands=%u", total);
    else
        buf_printf(b, " commands=%u/%u", ok, total);
    msg_info("disconnect from " CLIENT_FMT "%s", CLIENT_ARGS, buf_cstr(b));
    buf_free(&b);
}

static void smtpserver_loop(void)
{
    struct smtpproto_cmd cmd;
    struct smtpreply_err err;
    ssize_t n;

    while (!S.sess.done) {
        if (session_too_many_errors(&S.sess)) {
            msg_info("too many errors after %s from " CLIENT_FMT, S.sess.where, CLIENT_ARGS);
            smtpserver_send(421, "4.7.0", "%s Error: too many errors", conf_str("myhostname"));
            stream_flush(S.sess.stream);
            break;
        }
        n = session_read_command(&S.sess, S.line);
        if (n == STREAM_TOOLONG) {
            smtpserver_send(500, "5.5.0", "Error: line too long");
            S.unknown_total++;
            continue;
        }
        if (n <= 0) {
            smtpserver_io_failed(n == 0 ? STREAM_EOF : n);
            break;
        }
        if (smtpproto_parse_cmd(S.line->data, S.line->len, &cmd, &err) != SMTPP_OK) {
            if (cmd.verb != SMTPP_VERB_NONE) {
                S.verb_total[cmd.verb]++;
                S.sess.where = cmd.name;
            } else {
                S.unknown_total++;
                S.sess.where = "UNKNOWN";
            }
            smtpserver_send_err(&err);
            continue;
        }
        S.sess.where = cmd.name;
        S.last_code = 0;
        smtpserver_command(&cmd);
        S.verb_total[cmd.verb]++;
        if (S.last_code > 0 && S.last_code < 400)
            S.verb_ok[cmd.verb]++;
    }
}

static void smtpserver_session(int fd, int out_fd, const struct smtpserver_policy *policy,
                               tls_server_t *tls, void *policy_ctx)
{
    struct smtpserver_reply r = { 0 };
    char *goodbye;

    memset(&S, 0, sizeof(S));
    S.policy = policy;
    S.ss.policy_ctx = policy_ctx;
    smtpserver_cleanup_resume();
    smtpserver_limits();
    S.line = buf_new(0);
    S.reply = buf_new(0);
    session_open(&S.sess, fd, out_fd, tls, &S.lim);
    S.ss.sess = &S.sess;
    if (S.sess.peer.ip && policy->client_name)
        session_set_name(&S.sess, policy->client_name(&S.ss));
    msg_info("connect from " CLIENT_FMT, CLIENT_ARGS);
    goodbye = xasprintf("421 4.3.2 %s Service shutting down\r\n", conf_str("myhostname"));
    session_set_goodbye(&S.sess, goodbye);
    free(goodbye);

    if (conf_bool("smtpd_tls_wrappermode")) {
        if (tls == NULL) {
            msg_warn("smtpd_tls_wrappermode = yes but no TLS certificate is usable: "
                     "dropping " CLIENT_FMT, CLIENT_ARGS);
            goto out;
        }
        if (!session_tls_start(&S.sess, SMTPSERVER_TLS_MS))
            goto out;
    }
    if (policy->connect && policy->connect(&S.ss, &r) != 0) {
        smtpserver_send(r.code, r.dsn, "%s", r.text);
        msg_info("NOQUEUE: reject: CONNECT from " CLIENT_FMT ": %d %s %s", CLIENT_ARGS, r.code,
                 r.dsn ? r.dsn : "", r.text);
        smtpserver_reply_clear(&r);
        stream_flush(S.sess.stream);
        goto out;
    }
    smtpserver_send(220, NULL, "%s", conf_str("smtpd_banner"));
    smtpserver_loop();
out:
    smtpserver_log_disconnect();
    if (policy->disconnect)
        policy->disconnect(&S.ss);
    smtpserver_reset();
    if (smtpserver_cleanup_fd >= 0 && smtpserver_cleanup_loop) {
        smtpserver_cleanup_timer = event_add_timer(smtpserver_cleanup_loop,
                                                   SMTPSERVER_CLEANUP_KEEP_MS,
                                                   smtpserver_cleanup_expire, NULL);
    } else {
        smtpserver_cleanup_close();
    }
    free(S.ss.helo_name);
    smtpserver_auth_forget();
    session_close(&S.sess);
    buf_free(&S.line);
    buf_free(&S.reply);
}

void smtpserver_run(int fd, const struct smtpserver_policy *policy, tls_server_t *tls,
                    void *policy_ctx)
{
    smtpserver_session(fd, fd, policy, tls, policy_ctx);
}

void smtpserver_run_pipe(int in_fd, int out_fd, const struct smtpserver_policy *policy,
                         void *policy_ctx)
{
    smtpserver_session(in_fd, out_fd, policy, NULL, policy_ctx);
}
