/*
 * login.c - pop3d's login half: the AUTHORIZATION state (RFC 1939 4) up
 * to a successful login, as login_user in the jail, then the hand-over.
 *
 *  - greeting "+OK"; on 995 the TLS handshake comes first; a client
 *    address that holds more than pop3d_client_connection_count_limit
 *    connections here (anvil counts them) gets "-ERR [SYS/TEMP] Too many
 *    connections" instead;
 *  - CAPA: the common list, plus STLS while TLS is possible and not on,
 *    USER and SASL with the mechanisms authd would run on this connection;
 *  - STLS (RFC 2595 4): "+OK", whatever the client pipelined after it is
 *    thrown away unread, the handshake; any USER given before is forgotten;
 *  - passwords (USER/PASS, PLAIN, LOGIN) only on a secured connection
 *    (lib/login: TLS, or the client is the host itself) unless
 *    pop3_plaintext_auth = yes: otherwise "-ERR [AUTH] Plaintext
 *    authentication disallowed on non-secure (SSL/TLS) connections." and
 *    CAPA offers neither USER nor those mechanisms;
 *  - USER name: "+OK" whoever it names (nothing is learnt of accounts);
 *    PASS: PLAIN through authd with that name; AUTH mech [initial
 *    response] (RFC 5034; "=" is an empty one) relayed to authd one
 *    challenge at a time ("+ base64"; "*" cancels); bare AUTH lists the
 *    mechanisms (for older clients);
 *  - a wrong password is "-ERR [AUTH] Authentication failed." after authd's
 *    delay, logged as fail2ban reads it ("warning: NAME[ADDR]: SASL PLAIN
 *    authentication failed: ..."); authd unreachable or refusing the
 *    address for now is "-ERR [SYS/TEMP] ...";
 *  - a login that worked goes to the mail half with authd's cookie
 *    (lib/login); the mail half answers the login command.  If it cannot
 *    take it, "-ERR [SYS/TEMP]" (or [SYS/PERM]) and the session stays here;
 *  - APOP name digest (RFC 1939 7) only with pop3_apop = yes: the greeting
 *    then carries a timestamp "<PID.TIME.RANDOM@myhostname>", and authd
 *    checks the digest against the user's APOP secret (mailctl user apop);
 *    APOP sends no password, so it needs no secured connection;
 *  - the TRANSACTION commands before a login are "-ERR [AUTH] Log in
 *    first."; unknown commands, bad syntax and over-long lines are counted
 *    errors (pop3d_error_limit ends the session).
 */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "anvil_proto.h"
#include "auth_proto.h"
#include "authrelay.h"
#include "base64.h"
#include "conf.h"
#include "handover_proto.h"
#include "login.h"
#include "msg.h"
#include "pop3d.h"
#include "sasl.h"
#include "svcconn.h"
#include "tls.h"
#include "xalloc.h"

static tls_server_t *pop3_tls;
static struct svcconn pop3_anvil = SVCCONN_INIT("/anvil", ANVIL_PROTO_NAME, ANVIL_PROTO_VERSION);
static struct svcconn pop3_authd = SVCCONN_INIT(HANDOVER_JAIL_AUTH, AUTH_PROTO_NAME,
                                                AUTH_PROTO_VERSION);

struct pop3_login {
    session_t sess;
    char     *user;             /* from USER */
    buf_t    *line;
    char      apop_stamp[128];  /* the greeting's APOP timestamp; "": none */
    char      where[8];         /* the last command, for sess.where */
};

void pop3_login_pre_init(void)
{
    const char *cert = conf_str("pop3d_tls_cert_file"), *key = conf_str("pop3d_tls_key_file");
    buf_t *err;

    if (*cert == '\0') {
        if (conf_bool("tls_wrappermode"))
            msg_fatal("tls_wrappermode = yes needs pop3d_tls_cert_file");
        return;
    }
    err = buf_new(0);
    if ((pop3_tls = tls_server_new(cert, *key ? key : cert, err)) == NULL)
        msg_fatal("pop3d: cannot load the TLS certificate: %s", buf_cstr(err));
    buf_free(&err);
}

void pop3_login_post_init(event_loop_t *loop)
{
    (void)loop;
    auth_proto_init();
    anvil_proto_init();
    signal(SIGTERM, session_on_sigterm);
}

static bool pop3_plaintext_ok(const struct pop3_login *l)
{
    return conf_bool("pop3_plaintext_auth") || login_secured(&l->sess);
}

static void pop3_login_capa(struct pop3_login *l)
{
    struct login_auth_terms ac;
    const char *extra[4];
    char *sasl = NULL;
    buf_t *mechs = buf_new(0);
    size_t n = 0;

    login_auth_terms(&l->sess, pop3_plaintext_ok(l), &ac);
    if (pop3_tls && l->sess.tls == NULL)
        extra[n++] = "STLS";
    if (pop3_plaintext_ok(l))
        extra[n++] = "USER";
    if (sasl_server_mechs_relayed((ac.flags & AUTH_F_PLAINTEXT_OK) != 0, ac.cb_type != NULL,
                                  mechs) > 0)
        extra[n++] = sasl = xasprintf("SASL %s", buf_cstr(mechs));
    extra[n] = NULL;
    pop3_capa(&l->sess, extra);
    free(sasl);
    buf_free(&mechs);
    login_auth_terms_clear(&ac);
}

/* ------------------------------------------------------------ the login */

/* authrelay's challenge hook: "+ base64", one line back. */
static int pop3_challenge(void *ctx, const void *data, size_t len, buf_t *out)
{
    struct pop3_login *l = ctx;
    int rc = login_challenge(&l->sess, l->line, POP3_AUTH_LINE_MAX, data, len, out);

    if (rc == LOGIN_CHALLENGE_TOOLONG) {
        pop3_err(&l->sess, "Authentication response too long.");
        return -1;
    }
    if (rc == LOGIN_CHALLENGE_IO)
        return -1;
    return rc == LOGIN_CHALLENGE_BASE64 ? -2 : rc;
}

/* Relay a login to authd and, when it worked, hand the session over. */
static void pop3_login(struct pop3_login *l, const char *mech, const char *user,
                       int has_initial, const void *initial, size_t initial_len)
{
    struct login_auth_terms ac;
    struct authrelay_result res;
    struct authrelay relay;
    const char *why;
    int rc;

    login_auth_terms(&l->sess, pop3_plaintext_ok(l), &ac);
    relay = (struct authrelay){
        .authd = &pop3_authd, .service = AUTH_SERVICE_POP3,
        .client_addr = l->sess.peer.addr_text, .flags = ac.flags, .cb_type = ac.cb_type,
        .cb_data = ac.cb->data, .cb_len = ac.cb->len, .challenge = pop3_challenge, .ctx = l,
    };
    authrelay_run(&relay, mech, has_initial, initial, initial_len, &res);
    login_auth_terms_clear(&ac);
    switch (res.outcome) {
    case AUTHRELAY_OK:
        if (!res.has_cookie) {
            msg_warn("authd gave no hand-over cookie for a login from " SESSION_PEER_FMT,
                     SESSION_PEER_ARGS(&l->sess));
            pop3_err(&l->sess, "[SYS/TEMP] Temporary login failure, try again later.");
            break;
        }
        rc = login_handover(&l->sess, POP3_MAIL_SOCKET, AUTH_SERVICE_POP3, res.cookie, mech, "",
                            &why);
        if (rc == HANDOVER_OK) {
            l->sess.done = true;
            break;
        }
        msg_warn("cannot hand the login of %s from " SESSION_PEER_FMT " over: %s", res.user,
                 SESSION_PEER_ARGS(&l->sess), why ? why : "unknown reason");
        if (rc == HANDOVER_FAIL)
            pop3_err(&l->sess, "[SYS/PERM] Your mailbox cannot be opened here.");
        else
            pop3_err(&l->sess, "[SYS/TEMP] Temporary login failure, try again later.");
        break;
    case AUTHRELAY_FAIL:
        login_log_failure(&l->sess, mech, user, "authentication failure");
        pop3_fail(&l->sess, "[AUTH] Authentication failed.");
        break;
    case AUTHRELAY_TEMPFAIL:
        msg_warn(SESSION_PEER_FMT ": SASL %s authentication not checked: %s",
                 SESSION_PEER_ARGS(&l->sess), mech, res.reason);
        pop3_err(&l->sess, "[SYS/TEMP] Temporary authentication failure, try again later.");
        break;
    case AUTHRELAY_CANCELLED:
        pop3_fail(&l->sess, "Authentication aborted.");
        login_log_failure(&l->sess, mech, NULL, "authentication aborted");
        break;
    case AUTHRELAY_MALFORMED:
        pop3_fail(&l->sess, "Invalid base64 data in the authentication response.");
        break;
    case AUTHRELAY_IOERR:
        break;
    }
    authrelay_result_clear(&res);
}

static void pop3_plaintext_refused(struct pop3_login *l)
{
    pop3_fail(&l->sess, "[AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) "
              "connections.");
}

static void pop3_user(struct pop3_login *l, const char *arg)
{
    if (!pop3_plaintext_ok(l)) {
        pop3_plaintext_refused(l);
        return;
    }
    if (arg == NULL || *arg == '\0' || strlen(arg) > AUTH_USER_MAX) {
        pop3_fail(&l->sess, "Syntax: USER name");
        return;
    }
    free(l->user);
    l->user = xstrdup(arg);
    pop3_ok(&l->sess, "Send your password.");
}

static void pop3_pass(struct pop3_login *l, const char *arg)
{
    buf_t *plain;

    if (!pop3_plaintext_ok(l)) {
        pop3_plaintext_refused(l);
        return;
    }
    if (l->user == NULL) {
        pop3_fail(&l->sess, "Send USER first.");
        return;
    }
    if (arg == NULL) {
        pop3_fail(&l->sess, "Syntax: PASS password");
        return;
    }
    /* PLAIN's message (RFC 4616): no authorization identity. */
    plain = buf_new(0);
    buf_append(plain, "", 1);
    buf_append(plain, l->user, strlen(l->user));
    buf_append(plain, "", 1);
    buf_append(plain, arg, strlen(arg));
    pop3_login(l, "PLAIN", l->user, 1, plain->data, plain->len);
    explicit_bzero(plain->data, plain->len);
    buf_free(&plain);
}

static void pop3_auth(struct pop3_login *l, const char *arg)
{
    struct login_auth_terms ac;
    char *args, *mech, *initial;
    buf_t *data;
    bool offered;

    login_auth_terms(&l->sess, pop3_plaintext_ok(l), &ac);
    if (arg == NULL) {
        buf_t *mechs = buf_new(0);

        sasl_server_mechs_relayed((ac.flags & AUTH_F_PLAINTEXT_OK) != 0, ac.cb_type != NULL,
                                  mechs);
        stream_puts(l->sess.stream, "+OK\r\n");
        buf_cstr(mechs);
        for (char *p = mechs->data, *tok; (tok = strsep(&p, " ")) != NULL;)
            if (*tok)
                stream_printf(l->sess.stream, "%s\r\n", tok);
        stream_puts(l->sess.stream, ".\r\n");
        buf_free(&mechs);
        login_auth_terms_clear(&ac);
        return;
    }
    args = xstrdup(arg);
    mech = args;
    if ((initial = strchr(args, ' ')) != NULL)
        *initial++ = '\0';
    offered = sasl_server_offers_relayed((ac.flags & AUTH_F_PLAINTEXT_OK) != 0,
                                         ac.cb_type != NULL, mech);
    login_auth_terms_clear(&ac);
    if (!offered) {
        if (!pop3_plaintext_ok(l)
            && sasl_server_offers_relayed(1, ac.cb_type != NULL, mech))
            pop3_plaintext_refused(l);
        else
            pop3_fail(&l->sess, "Unsupported authentication mechanism.");
        free(args);
        return;
    }
    for (char *p = mech; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    data = buf_new(AUTH_DATA_MAX);
    if (initial && strcmp(initial, "=") != 0
        && base64_decode(data, initial, strlen(initial)) < 0) {
        pop3_fail(&l->sess, "Invalid base64 data in the initial response.");
    } else {
        pop3_login(l, mech, NULL, initial != NULL, data->data, data->len);
    }
    explicit_bzero(data->data, data->len);
    buf_free(&data);
    free(args);
}

/* APOP name digest (RFC 1939 7), with pop3_apop = yes: checked by
 * authd against the user's APOP secret and the greeting's timestamp.  No
 * password crosses the wire, so a connection that is not secured may use
 * it. */
static void pop3_apop(struct pop3_login *l, const char *arg)
{
    const char *sp = arg ? strrchr(arg, ' ') : NULL;
    buf_t *data;

    if (l->apop_stamp[0] == '\0') {
        pop3_fail(&l->sess, "APOP is not enabled here.");
        return;
    }
    if (sp == NULL || sp == arg || strlen(sp + 1) != 32
        || strspn(sp + 1, "0123456789abcdefABCDEF") != 32
        || (size_t)(sp - arg) > AUTH_USER_MAX || memchr(arg, ' ', (size_t)(sp - arg))) {
        pop3_fail(&l->sess, "Syntax: APOP name digest");
        return;
    }
    free(l->user);
    l->user = xstrndup(arg, (size_t)(sp - arg));
    data = buf_new(0);
    buf_append(data, l->user, strlen(l->user) + 1);
    buf_append(data, l->apop_stamp, strlen(l->apop_stamp) + 1);
    buf_append(data, sp + 1, 32);
    pop3_login(l, "APOP", l->user, 1, data->data, data->len);
    buf_free(&data);
}

static void pop3_stls(struct pop3_login *l)
{
    if (pop3_tls == NULL) {
        pop3_fail(&l->sess, "TLS is not available here.");
        return;
    }
    if (l->sess.tls) {
        pop3_fail(&l->sess, "TLS is already active.");
        return;
    }
    pop3_ok(&l->sess, "Begin TLS negotiation now.");
    if (stream_flush(l->sess.stream) < 0) {
        session_io_failed(&l->sess, STREAM_ERROR);
        return;
    }
    session_starttls_discard(&l->sess, "STLS");
    if (!session_tls_start(&l->sess, l->sess.lim.timeout_ms)) {
        l->sess.done = true;
        return;
    }
    free(l->user);              /* RFC 2595 4: start over */
    l->user = NULL;
}

static void pop3_login_command(struct pop3_login *l, char *line)
{
    struct pop3_cmd cmd;
    static const char *const later[] = {
        "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL", NULL
    };

    if (pop3_parse(line, &cmd) < 0) {
        pop3_fail(&l->sess, "Unknown command.");
        return;
    }
    memcpy(l->where, cmd.name, sizeof(l->where));
    l->sess.where = l->where;
    if (strcmp(cmd.name, "CAPA") == 0) {
        pop3_login_capa(l);
    } else if (strcmp(cmd.name, "QUIT") == 0) {
        pop3_ok(&l->sess, "Logging out.");
        l->sess.done = true;
    } else if (strcmp(cmd.name, "STLS") == 0) {
        pop3_stls(l);
    } else if (strcmp(cmd.name, "USER") == 0) {
        pop3_user(l, cmd.arg);
    } else if (strcmp(cmd.name, "PASS") == 0) {
        pop3_pass(l, cmd.arg);
    } else if (strcmp(cmd.name, "AUTH") == 0) {
        pop3_auth(l, cmd.arg);
    } else if (strcmp(cmd.name, "APOP") == 0) {
        pop3_apop(l, cmd.arg);
    } else {
        for (const char *const *p = later; *p; p++)
            if (strcmp(cmd.name, *p) == 0) {
                pop3_fail(&l->sess, "[AUTH] Log in first.");
                return;
            }
        pop3_fail(&l->sess, "Unknown command.");
    }
}

void pop3_login_serve(int fd)
{
    struct pop3_login l = {0};
    struct session_limits lim;
    int counted = 0;
    ssize_t n;

    pop3_limits(&lim);
    session_open(&l.sess, fd, fd, pop3_tls, &lim);
    session_set_goodbye(&l.sess, "-ERR [SYS/TEMP] Server shutting down.\r\n");
    l.line = buf_new(0);
    if (conf_bool("tls_wrappermode") && !session_tls_start(&l.sess, lim.timeout_ms))
        goto out;
    counted = login_count_connection(&l.sess, &pop3_anvil, "pop3d",
                                     conf_int("pop3d_client_connection_count_limit"),
                                     "pop3d_client_connection_count_limit");
    if (counted < 0) {
        pop3_err(&l.sess, "[SYS/TEMP] Too many connections from %s.", l.sess.peer.addr_text);
        goto out;
    }
    if (conf_bool("pop3_apop")) {
        unsigned char rnd[8];

        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
            msg_fatal("no random bytes for the APOP timestamp");
        snprintf(l.apop_stamp, sizeof(l.apop_stamp), "<%ld.%lld.%02x%02x%02x%02x%02x%02x%02x%02x@%.64s>",
                 (long)getpid(), (long long)time(NULL), rnd[0], rnd[1], rnd[2], rnd[3], rnd[4],
                 rnd[5], rnd[6], rnd[7], conf_str("myhostname"));
        pop3_ok(&l.sess, POP3_IMPLEMENTATION " ready. %s", l.apop_stamp);
    } else {
        pop3_ok(&l.sess, POP3_IMPLEMENTATION " ready.");
    }
    while (!l.sess.done) {
        n = pop3_read_command(&l.sess, l.line);
        if (n == STREAM_TOOLONG)
            continue;
        if (n < 0)
            break;
        pop3_login_command(&l, l.line->data);
        explicit_bzero(l.line->data, l.line->len);
    }
out:
    session_close(&l.sess);
    if (counted != 0)
        login_uncount_connection(&l.sess, &pop3_anvil, "pop3d");
    free(l.user);
    buf_free(&l.line);
}
