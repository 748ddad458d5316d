/*
 * login.c - imapd's login half: the not-authenticated state (RFC 9051
 * 3.1, 6.1-6.2) up to a successful login, as login_user in the jail,
 * then the hand-over to the user's process (lib/login).
 *
 *  - greeting "* OK [CAPABILITY ...]"; on 993 the TLS handshake comes
 *    first; a client address holding more than
 *    imapd_client_connection_count_limit connections here (counted by
 *    anvil) gets "* BYE [UNAVAILABLE] Too many connections" instead;
 *  - CAPABILITY: IMAP4rev1, the extensions that work before a login,
 *    STARTTLS while TLS is possible and not on, AUTH= for each mechanism
 *    authd would run on this connection, LOGINDISABLED when passwords may
 *    not be sent on it;
 *  - STARTTLS (RFC 9051 6.2.1): tagged OK, pipelined plaintext thrown
 *    away unread, the handshake;
 *  - passwords (LOGIN, PLAIN, LOGIN mechanism) only on a secured
 *    connection (lib/login: TLS, or the client is the host itself) unless
 *    imap_plaintext_auth = yes: otherwise "NO [PRIVACYREQUIRED]";
 *  - AUTHENTICATE mech [initial response] (RFC 9051 6.2.2, SASL-IR RFC
 *    4959; "=" is an empty one), relayed to authd one challenge at a time
 *    ("+ base64"; "*" cancels: BAD);
 *  - LOGIN user password: PLAIN through authd;
 *  - a wrong password is "NO [AUTHENTICATIONFAILED]" after authd's delay,
 *    logged for fail2ban as smtpd and pop3d log it ("warning:
 *    NAME[ADDR]: SASL PLAIN authentication failed: ..., user=<...>";
 *    the LOGIN command is checked as PLAIN);
 *    authd unreachable is "NO [UNAVAILABLE]";
 *  - a login that worked goes to the mail half with authd's cookie, the
 *    command's tag and what the client pipelined after it; the user's
 *    process answers the command ("OK [CAPABILITY ...] Logged in");
 *  - ID (RFC 2971) answers with the implementation's name; NOOP, LOGOUT;
 *    commands of the later states are "BAD Log in first.", unknown ones
 *    "BAD Unknown command."; BAD replies count toward imapd_error_limit.
 *
 * Commands are read with lib/imapparse, literals included (a
 * synchronizing literal gets "+ Ready for literal data"); a literal
 * larger than a login needs is refused without reading it.
 */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anvil_proto.h"
#include "auth_proto.h"
#include "authrelay.h"
#include "base64.h"
#include "conf.h"
#include "handover_proto.h"
#include "imapd.h"
#include "login.h"
#include "msg.h"
#include "sasl.h"
#include "session.h"
#include "svcconn.h"
#include "tls.h"
#include "xalloc.h"

/* The longest literal (a user name or a password) a login takes. */
#define IMAP_LOGIN_LITERAL_MAX  8192
/* A SASL answer: base64 of auth_proto's largest datum, and CRLF. */
#define IMAP_AUTH_LINE_MAX      16400

static tls_server_t *imap_tls;
static struct svcconn imap_anvil = SVCCONN_INIT("/anvil", ANVIL_PROTO_NAME, ANVIL_PROTO_VERSION);
static struct svcconn imap_authd = SVCCONN_INIT(HANDOVER_JAIL_AUTH, AUTH_PROTO_NAME,
                                                AUTH_PROTO_VERSION);

struct imap_login {
    session_t    sess;
    imapparse_t *parser;
    buf_t       *line;
    buf_t       *literal;
    const char  *tag;           /* of the command being run */
    char         where[IMAPPARSE_NAME_MAX + 1];  /* the last command, for sess.where */
};

void imap_login_pre_init(void)
{
    const char *cert = conf_str("imapd_tls_cert_file"), *key = conf_str("imapd_tls_key_file");
    buf_t *err;

    if (*cert == '\0') {
        if (conf_bool("tls_wrappermode"))
            msg_fatal("tls_wrappermode = yes needs imapd_tls_cert_file");
        return;
    }
    err = buf_new(0);
    if ((imap_tls = tls_server_new(cert, *key ? key : cert, err)) == NULL)
        msg_fatal("imapd: cannot load the TLS certificate: %s", buf_cstr(err));
    buf_free(&err);
}

void imap_login_post_init(event_loop_t *loop)
{
    (void)loop;
    auth_proto_init();
    anvil_proto_init();
    signal(SIGTERM, session_on_sigterm);
}

static bool imap_plaintext_ok(const struct imap_login *l)
{
    return conf_bool("imap_plaintext_auth") || login_secured(&l->sess);
}

/* ------------------------------------------------------------ replies */

static void imap_reply(struct imap_login *l, const char *tag, const char *status,
                       const char *text)
{
    stream_printf(l->sess.stream, "%s %s %s\r\n", tag ? tag : "*", status, text);
}

/* A BAD reply: counted, the session ended at imapd_error_limit. */
static void imap_bad(struct imap_login *l, const char *tag, const char *text)
{
    imap_reply(l, tag, "BAD", text);
    session_error(&l->sess, false);
    if (session_too_many_errors(&l->sess)) {
        stream_puts(l->sess.stream, "* BYE Too many invalid commands.\r\n");
        msg_info("too many errors after %s from " SESSION_PEER_FMT, l->sess.where,
                 SESSION_PEER_ARGS(&l->sess));
        l->sess.done = true;
    }
}

/* The capabilities before a login. */
static void imap_capability_login(struct imap_login *l, buf_t *out)
{
    struct login_auth_terms ac;
    buf_t *mechs = buf_new(0);

    login_auth_terms(&l->sess, imap_plaintext_ok(l), &ac);
    buf_append_str(out, "IMAP4rev1 IMAP4rev2 SASL-IR ID ENABLE IDLE LITERAL+");
    if (imap_tls && l->sess.tls == NULL)
        buf_append_str(out, " STARTTLS");
    if (!imap_plaintext_ok(l))
        buf_append_str(out, " LOGINDISABLED");
    sasl_server_mechs_relayed((ac.flags & AUTH_F_PLAINTEXT_OK) != 0, ac.cb_type != NULL, mechs);
    buf_cstr(mechs);
    for (char *p = mechs->data, *tok; (tok = strsep(&p, " ")) != NULL;)
        if (*tok)
            buf_printf(out, " AUTH=%s", tok);
    buf_free(&mechs);
    login_auth_terms_clear(&ac);
}

/* ------------------------------------------------------------ the login */

/* authrelay's challenge hook: "+ base64", one line back. */
static int imap_challenge(void *ctx, const void *data, size_t len, buf_t *out)
{
    struct imap_login *l = ctx;
    int rc = login_challenge(&l->sess, l->line, IMAP_AUTH_LINE_MAX, data, len, out);

    if (rc == LOGIN_CHALLENGE_TOOLONG) {
        imap_bad(l, l->tag, "Authentication response too long.");
        return -1;
    }
    if (rc == LOGIN_CHALLENGE_IO)
        return -1;
    return rc == LOGIN_CHALLENGE_BASE64 ? -2 : rc;
}

/* Relay a login to authd and, when it worked, hand the session over. */
static void imap_login(struct imap_login *l, const char *mech, const char *user,
                       int has_initial, const void *initial, size_t initial_len)
{
    struct login_auth_terms ac;
    struct authrelay_result res;
    struct authrelay relay;
    const char *why;
    int rc;

    login_auth_terms(&l->sess, imap_plaintext_ok(l), &ac);
    relay = (struct authrelay){
        .authd = &imap_authd, .service = AUTH_SERVICE_IMAP,
        .client_addr = l->sess.peer.addr_text, .flags = ac.flags, .cb_type = ac.cb_type,
        .cb_data = ac.cb->data, .cb_len = ac.cb->len, .challenge = imap_challenge, .ctx = l,
    };
    authrelay_run(&relay, mech, has_initial, initial, initial_len, &res);
    login_auth_terms_clear(&ac);
    switch (res.outcome) {
    case AUTHRELAY_OK:
        if (!res.has_cookie) {
            msg_warn("authd gave no hand-over cookie for a login from " SESSION_PEER_FMT,
                     SESSION_PEER_ARGS(&l->sess));
            imap_reply(l, l->tag, "NO", "[UNAVAILABLE] Temporary login failure, try again later.");
            break;
        }
        rc = login_handover(&l->sess, IMAP_MAIL_SOCKET, AUTH_SERVICE_IMAP, res.cookie, mech,
                            l->tag, &why);
        if (rc == HANDOVER_OK) {
            l->sess.done = true;
            break;
        }
        msg_warn("cannot hand the login of %s from " SESSION_PEER_FMT " over: %s", res.user,
                 SESSION_PEER_ARGS(&l->sess), why ? why : "unknown reason");
        if (rc == HANDOVER_FAIL)
            imap_reply(l, l->tag, "NO", "[UNAVAILABLE] Your mailbox cannot be opened here.");
        else
            imap_reply(l, l->tag, "NO", "[UNAVAILABLE] Temporary login failure, try again later.");
        break;
    case AUTHRELAY_FAIL:
        login_log_failure(&l->sess, mech, user, "authentication failure");
        imap_reply(l, l->tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed.");
        break;
    case AUTHRELAY_TEMPFAIL:
        msg_warn(SESSION_PEER_FMT ": SASL %s authentication not checked: %s",
                 SESSION_PEER_ARGS(&l->sess), mech, res.reason);
        imap_reply(l, l->tag, "NO", "[UNAVAILABLE] Temporary authentication failure, "
                   "try again later.");
        break;
    case AUTHRELAY_CANCELLED:
        login_log_failure(&l->sess, mech, NULL, "authentication aborted");
        imap_bad(l, l->tag, "Authentication aborted.");
        break;
    case AUTHRELAY_MALFORMED:
        imap_bad(l, l->tag, "Invalid base64 data in the authentication response.");
        break;
    case AUTHRELAY_IOERR:
        break;
    }
    authrelay_result_clear(&res);
}

static void imap_plaintext_refused(struct imap_login *l)
{
    imap_reply(l, l->tag, "NO", "[PRIVACYREQUIRED] Plaintext authentication disallowed on "
               "non-secure (SSL/TLS) connections.");
}

static bool imap_is_astring(const struct imap_arg *a)
{
    return a->type == IMAP_ARG_ATOM || a->type == IMAP_ARG_STRING
           || a->type == IMAP_ARG_LITERAL;
}

static void imap_cmd_login(struct imap_login *l, const struct imap_command *c)
{
    buf_t *plain;

    if (c->nargs != 2 || !imap_is_astring(&c->args[0]) || !imap_is_astring(&c->args[1])) {
        imap_bad(l, l->tag, "Syntax: LOGIN user password");
        return;
    }
    if (!imap_plaintext_ok(l)) {
        imap_plaintext_refused(l);
        return;
    }
    if (c->args[0].len == 0 || c->args[0].len > AUTH_USER_MAX
        || memchr(c->args[0].str, '\0', c->args[0].len)
        || memchr(c->args[1].str, '\0', c->args[1].len)) {
        login_log_failure(&l->sess, "LOGIN", NULL, "bad user name or password syntax");
        imap_reply(l, l->tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed.");
        return;
    }
    /* PLAIN's message (RFC 4616): no authorization identity. */
    plain = buf_new(0);
    buf_append(plain, "", 1);
    buf_append(plain, c->args[0].str, c->args[0].len);
    buf_append(plain, "", 1);
    buf_append(plain, c->args[1].str, c->args[1].len);
    imap_login(l, "PLAIN", c->args[0].str, 1, plain->data, plain->len);
    explicit_bzero(plain->data, plain->len);
    buf_free(&plain);
}

static void imap_cmd_authenticate(struct imap_login *l, const struct imap_command *c)
{
    struct login_auth_terms ac;
    const char *initial = NULL;
    char mech[AUTH_MECH_MAX + 1];
    buf_t *data;
    bool offered;

    if (c->nargs < 1 || c->nargs > 2 || c->args[0].type != IMAP_ARG_ATOM
        || (c->nargs == 2 && c->args[1].type != IMAP_ARG_ATOM)) {
        imap_bad(l, l->tag, "Syntax: AUTHENTICATE mechanism [initial-response]");
        return;
    }
    if (c->nargs == 2)
        initial = c->args[1].str;
    if (strlen(c->args[0].str) > AUTH_MECH_MAX) {
        imap_reply(l, l->tag, "NO", "Unsupported authentication mechanism.");
        return;
    }
    for (size_t i = 0; i <= strlen(c->args[0].str); i++)
        mech[i] = (char)toupper((unsigned char)c->args[0].str[i]);
    login_auth_terms(&l->sess, imap_plaintext_ok(l), &ac);
    offered = sasl_server_offers_relayed((ac.flags & AUTH_F_PLAINTEXT_OK) != 0,
                                         ac.cb_type != NULL, mech);
    if (!offered) {
        if (!imap_plaintext_ok(l) && sasl_server_offers_relayed(1, ac.cb_type != NULL, mech))
            imap_plaintext_refused(l);
        else
            imap_reply(l, l->tag, "NO", "Unsupported authentication mechanism.");
        login_auth_terms_clear(&ac);
        return;
    }
    login_auth_terms_clear(&ac);
    data = buf_new(AUTH_DATA_MAX);
    if (initial && strcmp(initial, "=") != 0
        && base64_decode(data, initial, strlen(initial)) < 0)
        imap_bad(l, l->tag, "Invalid base64 data in the initial response.");
    else
        imap_login(l, mech, NULL, initial != NULL, data->data, data->len);
    explicit_bzero(data->data, data->len);
    buf_free(&data);
}

static void imap_cmd_starttls(struct imap_login *l, const struct imap_command *c)
{
    if (c->nargs != 0) {
        imap_bad(l, l->tag, "STARTTLS takes no arguments.");
        return;
    }
    if (imap_tls == NULL || l->sess.tls) {
        imap_bad(l, l->tag, l->sess.tls ? "TLS is already active." : "TLS is not available.");
        return;
    }
    imap_reply(l, l->tag, "OK", "Begin TLS negotiation now.");
    if (stream_flush(l->sess.stream) < 0) {
        session_io_failed(&l->sess, STREAM_ERROR);
        return;
    }
    session_starttls_discard(&l->sess, "STARTTLS");
    if (!session_tls_start(&l->sess, l->sess.lim.timeout_ms))
        l->sess.done = true;
}

static void imap_cmd_id(struct imap_login *l, const struct imap_command *c)
{
    if (c->nargs != 1 || (c->args[0].type != IMAP_ARG_NIL && c->args[0].type != IMAP_ARG_LIST)) {
        imap_bad(l, l->tag, "Syntax: ID (field value ...) or ID NIL");
        return;
    }
    stream_puts(l->sess.stream, "* ID (\"name\" \"" IMAP_IMPLEMENTATION "\")\r\n");
    imap_reply(l, l->tag, "OK", "ID completed.");
}

static void imap_login_command(struct imap_login *l, const struct imap_command *c)
{
    static const char *const later[] = {
        "SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE", "LIST",
        "LSUB", "STATUS", "APPEND", "CHECK", "CLOSE", "EXPUNGE", "SEARCH", "FETCH", "STORE",
        "COPY", "MOVE", "UID FETCH", "UID STORE", "UID COPY", "UID MOVE", "UID SEARCH",
        "UID EXPUNGE", "IDLE", "NAMESPACE", "ENABLE", "UNSELECT", NULL
    };

    snprintf(l->where, sizeof(l->where), "%s", c->name);
    l->sess.where = l->where;
    l->tag = c->tag;
    if (strcmp(c->name, "CAPABILITY") == 0) {
        buf_t *caps = buf_new(0);

        imap_capability_login(l, caps);
        stream_printf(l->sess.stream, "* CAPABILITY %s\r\n", buf_cstr(caps));
        buf_free(&caps);
        imap_reply(l, c->tag, "OK", "Capability completed.");
    } else if (strcmp(c->name, "NOOP") == 0) {
        imap_reply(l, c->tag, "OK", "NOOP completed.");
    } else if (strcmp(c->name, "LOGOUT") == 0) {
        stream_puts(l->sess.stream, "* BYE Logging out.\r\n");
        imap_reply(l, c->tag, "OK", "Logout completed.");
        l->sess.done = true;
    } else if (strcmp(c->name, "STARTTLS") == 0) {
        imap_cmd_starttls(l, c);
    } else if (strcmp(c->name, "LOGIN") == 0) {
        imap_cmd_login(l, c);
    } else if (strcmp(c->name, "AUTHENTICATE") == 0) {
        imap_cmd_authenticate(l, c);
    } else if (strcmp(c->name, "ID") == 0) {
        imap_cmd_id(l, c);
    } else {
        for (const char *const *p = later; *p; p++)
            if (strcmp(c->name, *p) == 0) {
                imap_bad(l, c->tag, "Log in first.");
                return;
            }
        imap_bad(l, c->tag, "Unknown command.");
    }
}

/* Read one whole command, literals included: 1 with *c, 0 when it was
 * refused (answered), -1 at the end of the session. */
static int imap_login_read(struct imap_login *l, const struct imap_command **c)
{
    struct imapparse_state st;
    ssize_t n;
    int rc;

    imapparse_reset(l->parser);
    for (;;) {
        n = session_read_command(&l->sess, l->line);
        if (n == STREAM_TOOLONG) {
            imap_bad(l, NULL, "Line too long.");
            return 0;
        }
        if (n <= 0) {
            session_io_failed(&l->sess, n == 0 ? STREAM_EOF : n);
            return -1;
        }
        while (l->line->len > 0 && (l->line->data[l->line->len - 1] == '\n'
                                    || l->line->data[l->line->len - 1] == '\r'))
            l->line->len--;
        buf_truncate(l->line, l->line->len);
        rc = imapparse_line(l->parser, l->line->data, l->line->len, &st);
        if (rc == IMAPPARSE_DONE) {
            *c = imapparse_command(l->parser);
            return 1;
        }
        if (rc == IMAPPARSE_ERROR) {
            if (st.too_big && !st.sync) {
                /* It is on its way and cannot be skipped in reason. */
                stream_puts(l->sess.stream, "* BYE [TOOBIG] Literal too large.\r\n");
                l->sess.done = true;
                return -1;
            }
            imap_bad(l, st.tag, st.too_big ? "[TOOBIG] Literal too large." : st.why);
            return 0;
        }
        if (st.sync) {
            stream_puts(l->sess.stream, "+ Ready for literal data\r\n");
            if (stream_flush(l->sess.stream) < 0) {
                session_io_failed(&l->sess, STREAM_ERROR);
                return -1;
            }
        }
        buf_reset(l->literal);
        n = stream_read_exact(l->sess.stream, l->literal, st.literal_len);
        if (n < 0 || (size_t)n != st.literal_len) {
            session_io_failed(&l->sess, n < 0 ? n : STREAM_EOF);
            return -1;
        }
        imapparse_literal(l->parser, l->literal->data, l->literal->len);
        explicit_bzero(l->literal->data, l->literal->len);
    }
}

void imap_login_serve(int fd)
{
    static const struct imapparse_limits lim_parse = {
        .max_args = 256, .max_depth = 4, .max_literal = IMAP_LOGIN_LITERAL_MAX,
        .max_total = 4 * IMAP_LOGIN_LITERAL_MAX, .allow_8bit = true,
    };
    struct imap_login l = {0};
    struct session_limits lim;
    const struct imap_command *c;
    buf_t *caps;
    int counted = 0, rc;

    lim.line_limit = (size_t)conf_size("imapd_max_line_length");
    lim.timeout_ms = (int)conf_time("imapd_login_timeout") * 1000;
    lim.hard_errors = conf_int("imapd_error_limit");
    lim.soft_errors = lim.hard_errors / 2;
    lim.error_sleep = 1;
    session_open(&l.sess, fd, fd, imap_tls, &lim);
    session_set_goodbye(&l.sess, "* BYE Server shutting down.\r\n");
    l.line = buf_new(0);
    l.literal = buf_new(0);
    l.parser = imapparse_new(&lim_parse);
    if (conf_bool("tls_wrappermode") && !session_tls_start(&l.sess, lim.timeout_ms))
        goto out;
    counted = login_count_connection(&l.sess, &imap_anvil, "imapd",
                                     conf_int("imapd_client_connection_count_limit"),
                                     "imapd_client_connection_count_limit");
    if (counted < 0) {
        stream_printf(l.sess.stream, "* BYE [UNAVAILABLE] Too many connections from %s.\r\n",
                      l.sess.peer.addr_text);
        goto out;
    }
    caps = buf_new(0);
    imap_capability_login(&l, caps);
    stream_printf(l.sess.stream, "* OK [CAPABILITY %s] " IMAP_IMPLEMENTATION " ready.\r\n",
                  buf_cstr(caps));
    buf_free(&caps);
    while (!l.sess.done) {
        if ((rc = imap_login_read(&l, &c)) < 0)
            break;
        if (rc > 0)
            imap_login_command(&l, c);
        explicit_bzero(l.line->data, l.line->len);
        l.tag = NULL;
    }
out:
    session_close(&l.sess);
    if (counted != 0)
        login_uncount_connection(&l.sess, &imap_anvil, "imapd");
    imapparse_free(&l.parser);
    buf_free(&l.line);
    buf_free(&l.literal);
}
