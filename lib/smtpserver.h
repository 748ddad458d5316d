/*
 * smtpserver - the SMTP server engine shared by smtpd (inbound MX) and
 * submission (mail clients): one session on one connection, from the
 * greeting to QUIT, RFC 5321 with the ESMTP extensions PIPELINING, SIZE,
 * 8BITMIME, ENHANCEDSTATUSCODES, SMTPUTF8, CHUNKING, DSN and STARTTLS.
 * The programs differ only in policy, which they give as callbacks.
 *
 * What the engine does (the protocol pieces are lib/smtpproto for commands,
 * lib/smtpreply for replies, lib/smtpdata and lib/smtpcontent for message
 * content):
 *  - reads commands with line_length_limit; replies are buffered and sent
 *    when no more pipelined input is waiting, or before waiting on anything
 *    (354, BDAT data, a slow policy answer never delays what came before);
 *  - enforces command order (503 5.5.1), smtpd_recipient_limit (452 4.5.3),
 *    message_size_limit (SIZE= at MAIL and the data itself: 552 5.3.4), the
 *    error limits (soft: replies slow down; hard: 421 4.7.0 and close), and
 *    the timeouts (smtpd_timeout for commands, smtpd_data_timeout for data:
 *    421 4.4.2 and close);
 *  - STARTTLS (RFC 3207): plaintext pipelined after the command is thrown
 *    away unread before the handshake, and the session starts over (no
 *    HELO, no transaction); smtpd_tls_wrappermode does TLS from the first
 *    byte; smtpd_tls_security_level = encrypt refuses MAIL before TLS;
 *  - DATA through the smuggling-safe reader of lib/smtpdata, BDAT chunks
 *    with the same rule: the content must use CRLF line ends only; a bare
 *    CR or LF anywhere makes the message 550 5.6.0 (RFC 5321 2.3.8);
 *  - collects the content in a memfd and submits it with the envelope and
 *    the client attributes over one cleanup connection per session; the
 *    client gets "250 2.0.0 Ok: queued as ID" only after cleanup has
 *    committed the queue file;
 *  - logs each session the way Postfix does: connect, NOQUEUE: reject:
 *    lines, "ID: client=...", lost connection / timeout after CMD, and a
 *    disconnect line with per-command counts; the client is "name[addr]",
 *    the name being what the policy's client_name hook found (smtpd:
 *    FCrDNS through lookupd), else "unknown".
 *
 * Policy callbacks return 0 to accept (the engine sends its usual reply)
 * or a reply code after filling the reply with smtpserver_reply_set().
 *
 * Failure modes: every peer problem is a reply code and, where the session
 * cannot go on, a logged disconnect; a lost cleanup connection is 451
 * 4.3.0 for that message.  Nothing a peer sends can crash or hang the
 * process.  Out-of-memory is fatal.
 *
 * Parameters: myhostname, smtpd_banner, line_length_limit,
 * smtpd_data_line_limit, message_size_limit, smtpd_recipient_limit,
 * smtpd_soft_error_limit, smtpd_hard_error_limit, smtpd_error_sleep_time,
 * smtpd_timeout, smtpd_data_timeout, smtpd_tls_security_level,
 * smtpd_tls_wrappermode, myorigin (bare recipients such as <postmaster>).
 */
#ifndef POSTHORN_SMTPSERVER_H
#define POSTHORN_SMTPSERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "cleanup_proto.h"
#include "event.h"
#include "netaddr.h"
#include "session.h"
#include "smtpproto.h"
#include "stream.h"
#include "tls.h"

struct smtpserver_reply {
    int   code;
    char *dsn;
    char *text;
};

/* One accepted recipient of the current transaction. */
struct smtpserver_rcpt {
    char    *address;      /* as the queue gets it: local@domain */
    char    *orcpt;        /* "rfc822;addr" or "" */
    unsigned notify;       /* QUEUE_NOTIFY_* */
};

struct smtp_session {
    /* The connection (lib/session): the stream, TLS, and the client in
     * peer: its address (addr, addr_text, port) and name ("unknown", or
     * what the policy's client_name hook gave). */
    session_t      *sess;
    char           *helo_name;      /* NULL before HELO/EHLO */
    bool            esmtp;
    char           *auth_user;      /* the account AUTH logged in, or NULL */
    char           *auth_method;    /* its SASL mechanism */
    void           *policy_ctx;     /* the program's */

    /* The transaction. */
    bool                    have_mail;
    struct smtp_addrcmd     mail;
    struct smtpserver_rcpt *rcpts;
    size_t                  nrcpt;
};

struct smtpserver_policy {
    const char *service;            /* "smtpd": log and anvil name */
    /* Once the client's IP address is known, before anything is logged or
     * sent: its name (fresh; a valid host name, for the logs and the
     * Received: header), or NULL for "unknown".  Not called for a client
     * that is not on IP (sendmail -bs). */
    char *(*client_name)(struct smtp_session *ss);
    /* After the connection is known, before the greeting: refuse with 421
     * or 554 (the engine then closes). */
    int (*connect)(struct smtp_session *ss, struct smtpserver_reply *r);
    /* MAIL (the path is parsed and the parameters are sane). */
    int (*mail)(struct smtp_session *ss, const struct smtp_addrcmd *ac,
                struct smtpserver_reply *r);
    /* RCPT; address is the recipient as it would be queued. */
    int (*rcpt)(struct smtp_session *ss, const struct smtp_addrcmd *ac, const char *address,
                struct smtpserver_reply *r);
    /* VRFY with disable_vrfy_command = no; address as for rcpt. */
    int (*vrfy)(struct smtp_session *ss, const char *address, struct smtpserver_reply *r);
    /* EHLO: keywords to offer after the engine's (such as "AUTH PLAIN
     * LOGIN"), appended to lines[*n] and counted in *n, at most max - *n;
     * the strings must live until the next call. */
    void (*ehlo_keywords)(struct smtp_session *ss, const char **lines, size_t *n, size_t max);
    /* AUTH (RFC 4954) with the command's argument ("MECH [initial
     * response]"), outside a transaction and before a success: run the
     * exchange with smtpserver_auth_read(), answer with smtpserver_reply(),
     * and on success set auth_user and auth_method (fresh strings).  NULL:
     * "503 5.5.1 Error: authentication not enabled". */
    void (*auth)(struct smtp_session *ss, const char *arg, size_t arg_len);
    /* The message is complete, before it is queued: r holds the envelope,
     * the client attributes and the content (r->content_fd, r->content_len:
     * CRLF lines); the policy may check the content and add flags or
     * attributes, or refuse the message (a reply code, logged at
     * END-OF-MESSAGE). */
    int (*message)(struct smtp_session *ss, struct cleanup_request *r,
                   struct smtpserver_reply *rep);
    /* The session ends (any way). */
    void (*disconnect)(struct smtp_session *ss);
    /* Queue a message instead of handing it to cleanup (sendmail -bs):
     * fill *res as cleanup would (code 250 and the ID as text, or a
     * refusal); 0, or -1 for "cannot queue" (451 4.3.0). */
    int (*submit)(struct smtp_session *ss, struct cleanup_request *r,
                  struct cleanup_result *res);
};

/* Run one session on fd (the accepted connection; not closed here).  tls
 * may be NULL: no STARTTLS then, and wrappermode is refused. */
void smtpserver_run(int fd, const struct smtpserver_policy *policy, tls_server_t *tls,
                    void *policy_ctx);
/* The same on a pair of descriptors, such as stdin and stdout (sendmail
 * -bs): no TLS, the client is "local". */
void smtpserver_run_pipe(int in_fd, int out_fd, const struct smtpserver_policy *policy,
                         void *policy_ctx);

/* Once, in the post_init of a SERVER_SINGLE program that serves SMTP
 * sessions (smtpd, submission): the cleanup protocol's names; the
 * connection to cleanup outlives a session for a moment on loop's timer
 * (smtpserver.c says why; without this each session closes its own);
 * and SIGTERM ends the process, with the 421 goodbye to an idle session
 * (session_on_sigterm). */
void smtpserver_init(event_loop_t *loop);

/* For the auth hook: queue a reply (sent before the next read). */
void smtpserver_reply(struct smtp_session *ss, int code, const char *dsn, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* For the auth hook: send "334 " and the challenge in base64, read the
 * client's answer: 1 with it decoded into out (reset first), 0 when the
 * client cancelled ("*"), -2 when the line is not base64 (answer 501
 * 5.5.2), -1 when the session cannot go on (logged, and it ends). */
int smtpserver_auth_read(struct smtp_session *ss, const void *challenge, size_t len, buf_t *out);

/* Fill a reply for a policy callback; returns code. */
int smtpserver_reply_set(struct smtpserver_reply *r, int code, const char *dsn,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
