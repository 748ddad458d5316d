/*
 * authd - checks mail passwords: the one process that reads
 * auth_password_file (lib/passdb) or any other password data.
 * submission and the POP3 (later IMAP) login halves relay their
 * clients' SASL exchanges to it over private/authd (lib/auth_proto) and
 * learn who logged in; they never see a hash.
 *
 * One process (master.conf maxproc 1), auth_user, SERVER_MULTI with no idle
 * exit, not chrooted (the password file is re-opened when mailctl replaces
 * it).  Peers: network_user, login_user and root (SO_PEERCRED, lib/ipcconn).
 * Each client connection holds up to AUTHD_MAX_CONVERSATIONS exchanges by
 * request id; each exchange is a lib/sasl server (PLAIN, LOGIN,
 * SCRAM-SHA-256, SCRAM-SHA-256-PLUS: plaintext mechanisms only when the
 * client says the connection allows them, -PLUS only with its channel
 * binding data) whose callbacks read the password store.
 *
 * Throttling (all in this process, which sees every attempt):
 *  - a failure counts against the client address and against the account
 *    named for auth_failure_window from the latest one;
 *  - a failure is answered only after auth_failure_delay times the larger
 *    of the two counts (at most AUTHD_DELAY_FACTOR_MAX times): a guesser
 *    slows down, a user who logs in right is never delayed;
 *  - an address with auth_failure_limit failures is refused at once
 *    (AUTH_TEMPFAIL, "too many authentication failures") until its window
 *    has passed.  Accounts are never locked: that would let anyone lock a
 *    user out.
 * auth_system_passwords = yes: PLAIN and LOGIN also take the account's
 * login password from the shadow database (getspnam; authd keeps group
 * shadow for it), never for root nor a locked or expired account; SCRAM
 * has no keys for it, so it stays the mail password's.
 *
 * A right PLAIN or LOGIN password is remembered for AUTHD_CACHE_SECONDS as
 * an HMAC (a per-process secret) of the account's record and the password,
 * so that a client logging in again and again pays yescrypt once; a changed
 * record (a new password) never matches.
 *
 * APOP (pop3d with pop3_apop = yes): mechanism "APOP", whose initial
 * response carries the name, the greeting's timestamp and the digest;
 * checked against the APOP secret the user's record keeps in clear.
 *
 * Hand-over cookies (lib/auth_proto): a login half (login_user) that asks
 * with AUTH_F_HANDOVER gets a cookie with its OK; the mail half (root)
 * redeems it once, within AUTH_COOKIE_SECONDS, for the same service and
 * login process (SO_PEERCRED pid at accept), and learns the user.
 *
 * Logging: one line per exchange: "authd: MECH authentication of NAME from
 * ADDR (SERVICE): ok", or "failed: REASON"; the fail2ban-style line with the
 * client's name is the service's to write.  No password or SASL data is
 * ever logged.
 *
 * Failure modes: a malformed request, a request id in use, too many
 * exchanges or a wrong peer drop that client (peer error).  An unreadable
 * or untrusted password file is TEMPFAIL for the exchange, logged.  Memory
 * is bounded by the clients' process limits, AUTHD_MAX_CONVERSATIONS and
 * the caches' sizes.
 *
 * Parameters: auth_password_file, auth_system_passwords, auth_failure_delay, auth_failure_limit,
 * auth_failure_window, network_user, login_user, auth_user, and the server
 * skeleton's.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <shadow.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "auth_proto.h"
#include "buf.h"
#include "conf.h"
#include "event.h"
#include "expcache.h"
#include "ipc.h"
#include "ipcconn.h"
#include "msg.h"
#include "netaddr.h"
#include "passdb.h"
#include "privs.h"
#include "sasl.h"
#include "scram.h"
#include "server.h"
#include "xalloc.h"

#define AUTHD_MAX_CONVERSATIONS 64      /* open exchanges per client connection */
#define AUTHD_DELAY_FACTOR_MAX  8       /* failure delay: at most 8 x auth_failure_delay */
#define AUTHD_DELAY_MAX_MS      20000   /* ... and at most this: below AUTH_TIMEOUT_MS */
#define AUTHD_LOG_NAME_MAX      64      /* bytes of a user name in a log line */
#define AUTHD_CACHE_SECONDS     60      /* a verified plaintext password is remembered */
#define AUTHD_TRACKED_MAX       65536   /* addresses and accounts with recent failures */
#define AUTHD_CACHED_MAX        4096    /* remembered passwords */
#define AUTHD_COOKIES_MAX       4096    /* hand-overs in progress */

struct authd_client;

/* One SASL exchange. */
struct authd_conv {
    struct authd_client *cl;
    struct authd_conv   *next;
    uint32_t             reqid;
    char                *mech;          /* as the client named it */
    char                *service;
    char                *client_addr;
    sasl_server_t       *sasl;
    char                *user;          /* APOP's (no SASL server to say it) */
    int                  handover;      /* AUTH_F_HANDOVER: a cookie on success */
    event_timer_t       *delay;         /* a failure reply waiting for its delay */
    ipc_msg_t           *reply;         /* ... that reply */
};

struct authd_client {
    ipcconn_t         *conn;
    pid_t              pid;             /* SO_PEERCRED at accept */
    struct authd_conv *convs;
    size_t             nconvs;
};

static event_loop_t *authd_loop;
static uid_t authd_peer_uids[3];
static passdb_t *authd_passdb;
static expcache_t *authd_failures;      /* "a ADDR" / "u NAME" -> struct authd_count */
static expcache_t *authd_verified;      /* NAME -> HMAC of record and password */
static unsigned char authd_secret[32];
static expcache_t *authd_cookies;       /* hex cookie -> struct authd_cookie */
static uid_t authd_login_uid;           /* login_user: the one peer that gets cookies */

/* A hand-over cookie (auth_proto.h): who logged in, where, through whom. */
struct authd_cookie {
    char *user;
    char *service;
    pid_t login_pid;
};

struct authd_count {
    long      n;                /* failures in the window */
    long long penalty_until;    /* no password check before this (ms) */
};

static char *authd_dummy_record;        /* checked for names without a record */
static const char *authd_gate_reason;   /* why the last check was held back */

static int  authd_gate(const char *client_addr, const char *user);
static void authd_dummy_check(const char *password);

/* ------------------------------------------------------------ the store */

/* The account's record: 1 (*text fresh), 0 none, -1 the store failed. */
static int authd_record(const char *user, char **text)
{
    char *err = NULL;

    if (authd_passdb == NULL) {
        authd_passdb = passdb_open(conf_str("auth_password_file"), &err);
        if (authd_passdb == NULL && errno == ENOENT) {
            /* No mail password has been set yet: nobody has one. */
            free(err);
            return 0;
        }
        if (authd_passdb == NULL) {
            msg_warn("authd: %s", err ? err : strerror(errno));
            free(err);
            return -1;
        }
    }
    return passdb_lookup(authd_passdb, user, text);
}

/* HMAC(secret, record NUL password): what a verified password is
 * remembered as. */
static void authd_digest(const char *record, const char *password, unsigned char out[32])
{
    size_t rl = strlen(record), pl = strlen(password);
    unsigned char *data = xmalloc(rl + 1 + pl);
    unsigned int len = 32;

    memcpy(data, record, rl + 1);
    memcpy(data + rl + 1, password, pl);
    if (HMAC(EVP_sha256(), authd_secret, sizeof(authd_secret), data, rl + 1 + pl, out, &len)
        == NULL)
        msg_fatal("authd: HMAC-SHA-256 failed");
    OPENSSL_cleanse(data, rl + 1 + pl);
    free(data);
}

/* Is password right for the stored hash?  record is what the hash came
 * from (the passdb record, or "system:" and the shadow hash), so that a
 * changed one never matches what was remembered of the old.  1, 0, or -1
 * when the hash cannot be used. */
static int authd_check(const char *user, const char *record, const char *password,
                       int (*verify)(const char *, const char *), const char *arg)
{
    unsigned char digest[32], *known;
    int ok;

    authd_digest(record, password, digest);
    known = expcache_get(authd_verified, user, event_now_ms());
    if (known && CRYPTO_memcmp(known, digest, sizeof(digest)) == 0)
        return 1;
    if ((ok = verify(arg, password)) == 1) {
        known = xmalloc(sizeof(digest));
        memcpy(known, digest, sizeof(digest));
        expcache_put(authd_verified, user, known, event_now_ms() + AUTHD_CACHE_SECONDS * 1000LL,
                     event_now_ms());
    }
    return ok;
}

/* auth_system_passwords: the account's login password from the shadow
 * database (authd holds group shadow then).  Not for root, nor for an
 * account that is locked ('!' or '*' hash), has no password, or has
 * expired.  checked: a mail password was checked already (else a refusal
 * pays for a dummy check).  SASL_OK, SASL_FAIL or SASL_TEMPFAIL. */
static int authd_system_password(const char *user, const char *password, int checked)
{
    struct passwd *pw;
    struct spwd *sp;
    char *record;
    int ok;

    errno = 0;
    if ((pw = getpwnam(user)) == NULL || pw->pw_uid == 0) {
        if (errno != 0 && errno != ENOENT && errno != ESRCH)
            return SASL_TEMPFAIL;
        if (!checked)
            authd_dummy_check(password);
        return SASL_FAIL;
    }
    errno = 0;
    if ((sp = getspnam(user)) == NULL) {
        if (errno == 0 || errno == ENOENT || errno == ESRCH) {
            if (!checked)
                authd_dummy_check(password);
            return SASL_FAIL;
        }
        msg_warn("authd: cannot read the shadow entry of %s (auth_system_passwords): %s", user,
                 strerror(errno));
        return SASL_TEMPFAIL;
    }
    if (sp->sp_pwdp == NULL || sp->sp_pwdp[0] == '\0' || sp->sp_pwdp[0] == '!'
        || sp->sp_pwdp[0] == '*' || (sp->sp_expire >= 0 && sp->sp_expire <= time(NULL) / 86400)) {
        if (!checked)
            authd_dummy_check(password);
        return SASL_FAIL;
    }
    record = xasprintf("system:%s", sp->sp_pwdp);
    ok = authd_check(user, record, password, passdb_verify_hash, sp->sp_pwdp);
    free(record);
    return ok == 1 ? SASL_OK : SASL_FAIL;
}

/* The exchange being stepped (for the gate in the callbacks). */
static struct authd_conv *authd_current;

/* A name without a record costs what a wrong password costs, so that the
 * time of a failure does not tell which accounts exist. */
static void authd_dummy_check(const char *password)
{
    (void)passdb_verify_plain(authd_dummy_record, password);
}

/* PLAIN and LOGIN: the mail password, and with auth_system_passwords the
 * login password too. */
static int authd_verify_plain(void *ctx, const char *user, const char *password)
{
    char *record = NULL;
    int r, ok;

    (void)ctx;
    if (authd_current && !authd_gate(authd_current->client_addr, user))
        return SASL_TEMPFAIL;
    if ((r = authd_record(user, &record)) < 0)
        return SASL_TEMPFAIL;
    if (r > 0) {
        ok = authd_check(user, record, password, passdb_verify_plain, record);
        free(record);
        if (ok == 1)
            return SASL_OK;
        if (ok < 0) {
            msg_warn("authd: the password record of %s cannot be used", user);
            return SASL_TEMPFAIL;
        }
    }
    if (conf_bool("auth_system_passwords"))
        return authd_system_password(user, password, r > 0);
    if (r == 0)
        authd_dummy_check(password);
    return SASL_FAIL;
}

static int authd_scram_lookup(void *ctx, const char *user, struct scram_credentials *out)
{
    char *record = NULL;
    int r;

    (void)ctx;
    if ((r = authd_record(user, &record)) < 0)
        return SCRAM_LOOKUP_TEMPFAIL;
    if (r == 0)
        return SCRAM_LOOKUP_NOTFOUND;
    r = passdb_scram(record, out);
    free(record);
    if (r < 0) {
        msg_warn("authd: the password record of %s cannot be used", user);
        return SCRAM_LOOKUP_TEMPFAIL;
    }
    return SCRAM_LOOKUP_OK;
}

/* ------------------------------------------------------------ throttling */

/* The throttling key of a client address: the address, or for IPv6 its
 * /64 (one host holds a whole /64: counting each address apart would give
 * it 2^64 budgets). */
static char *authd_addr_key(const char *addr)
{
    struct netaddr na;
    char text[NETADDR_TEXT_MAX];

    if (netaddr_parse(addr, &na) == 0 && na.family == AF_INET6) {
        memset(na.bytes + 8, 0, 8);
        if (inet_ntop(AF_INET6, na.bytes, text, sizeof(text)))
            return xasprintf("a %s/64", text);
    }
    return xasprintf("a %s", addr);
}

static struct authd_count *authd_count_of(const char *key)
{
    return expcache_get(authd_failures, key, event_now_ms());
}

/* Store the failure count n under key (the window runs from now), with a
 * penalty of delay_ms. */
static void authd_count_store(const char *key, long n, long delay_ms)
{
    long long now = event_now_ms();
    struct authd_count *fresh = xmalloc(sizeof(*fresh));

    fresh->n = n;
    fresh->penalty_until = now + delay_ms;
    expcache_put(authd_failures, key, fresh, now + conf_time("auth_failure_window") * 1000LL,
                 now);
}

/* The delay of a failure answered after count failures, capped so that the
 * answer still comes before the service gives up on authd. */
static long authd_delay_ms(long count)
{
    long long ms;

    if (count > AUTHD_DELAY_FACTOR_MAX)
        count = AUTHD_DELAY_FACTOR_MAX;
    ms = count * conf_time("auth_failure_delay") * 1000LL;
    return ms > AUTHD_DELAY_MAX_MS ? AUTHD_DELAY_MAX_MS : (long)ms;
}

/* May a password be checked now for this client address and account (NULL
 * while the client has not named one)?  Checked when an exchange starts
 * and again right before each check, since a client may start many
 * exchanges at once and answer them together.  An address with
 * auth_failure_limit failures waits for its window to pass; an account
 * whose latest failure is still in its delay takes no other check until
 * then, so that guesses at one account, from any number of exchanges or
 * addresses, come one per delay.  1, or 0 with authd_gate_reason. */
static int authd_gate(const char *client_addr, const char *user)
{
    char *key = authd_addr_key(client_addr);
    struct authd_count *c = authd_count_of(key);

    free(key);
    if (c && c->n >= conf_int("auth_failure_limit")) {
        authd_gate_reason = "too many authentication failures";
        return 0;
    }
    if (user) {
        key = xasprintf("u %s", user);
        c = authd_count_of(key);
        free(key);
        if (c && c->penalty_until > event_now_ms()) {
            authd_gate_reason = "the account's last failure is too recent";
            return 0;
        }
    }
    return 1;
}

/* ------------------------------------------------------------ exchanges */

static void authd_drop(struct authd_client *cl);

static void authd_conv_free(struct authd_conv *cv)
{
    struct authd_conv **pp;

    for (pp = &cv->cl->convs; *pp && *pp != cv; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = cv->next;
    cv->cl->nconvs--;
    if (cv->delay)
        event_cancel_timer(authd_loop, &cv->delay);
    ipc_msg_free(&cv->reply);
    sasl_server_free(&cv->sasl);
    free(cv->mech);
    free(cv->service);
    free(cv->client_addr);
    free(cv->user);
    free(cv);
}

static struct authd_conv *authd_conv_find(struct authd_client *cl, uint32_t reqid)
{
    for (struct authd_conv *cv = cl->convs; cv; cv = cv->next)
        if (cv->reqid == reqid)
            return cv;
    return NULL;
}

/* Send a reply; a client that cannot take it is dropped (-1). */
static int authd_send(struct authd_client *cl, ipc_msg_t *m)
{
    int rc = ipcconn_send(cl->conn, m);

    ipc_msg_free(&m);
    if (rc < 0) {
        msg_warn("authd: cannot answer a client (uid %ld): %s", (long)cl->conn->uid,
                 strerror(errno));
        authd_drop(cl);
    }
    return rc;
}

static void authd_delayed(event_loop_t *loop, void *arg)
{
    struct authd_conv *cv = arg;
    struct authd_client *cl = cv->cl;
    ipc_msg_t *m = cv->reply;

    (void)loop;
    cv->delay = NULL;
    cv->reply = NULL;
    authd_conv_free(cv);
    authd_send(cl, m);
}

/* A user name as the log shows it: letters, digits and ".-_@+" as they
 * are, anything else (a blank, a parenthesis, a byte of UTF-8) as \xHH,
 * at most AUTHD_LOG_NAME_MAX bytes of it, so that a client's name cannot
 * pose as the rest of a log line; "(unknown)" for none.  Fresh. */
static char *authd_name_for_log(const char *user)
{
    buf_t *b;
    size_t i;

    if (user == NULL)
        return xstrdup("(unknown)");
    b = buf_new(0);
    for (i = 0; user[i] && i < AUTHD_LOG_NAME_MAX; i++) {
        unsigned char c = (unsigned char)user[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
            || strchr(".-_@+", c))
            buf_putc(b, c);
        else
            buf_printf(b, "\\x%02x", c);
    }
    if (user[i])
        buf_append_str(b, "...");
    return buf_steal(b, NULL) ?: xstrdup("");
}

/* ------------------------------------------------------------ hand-over */

static void authd_cookie_free(void *v)
{
    struct authd_cookie *k = v;

    free(k->user);
    free(k->service);
    free(k);
}

/* n octets as 2n lower-case hex digits and a NUL in hex. */
static void authd_hex(const unsigned char *p, size_t n, char *hex)
{
    for (size_t i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", p[i]);
}

/* A new cookie for user, logged in through cv's login process. */
static void authd_cookie_issue(struct authd_conv *cv, const char *user,
                               unsigned char cookie[AUTH_COOKIE_LEN])
{
    struct authd_cookie *k = xcalloc(1, sizeof(*k));
    char hex[2 * AUTH_COOKIE_LEN + 1];
    long long now = event_now_ms();

    if (RAND_bytes(cookie, AUTH_COOKIE_LEN) != 1)
        msg_fatal("authd: no random bytes for a hand-over cookie");
    k->user = xstrdup(user);
    k->service = xstrdup(cv->service);
    k->login_pid = cv->cl->pid;
    authd_hex(cookie, AUTH_COOKIE_LEN, hex);
    expcache_put(authd_cookies, hex, k, now + AUTH_COOKIE_SECONDS * 1000LL, now);
    explicit_bzero(hex, sizeof(hex));
}

/* The mail half (root) redeems a cookie: once, for the service and login
 * process it was issued to. */
static void authd_redeem(struct authd_client *cl, const struct auth_request *rq)
{
    char hex[2 * AUTH_COOKIE_LEN + 1];
    struct authd_cookie *k;
    const char *why = NULL;
    char *logname;

    authd_hex(rq->data, AUTH_COOKIE_LEN, hex);
    k = expcache_get(authd_cookies, hex, event_now_ms());
    if (k == NULL)
        why = "unknown or expired cookie";
    else if (strcmp(k->service, rq->service) != 0)
        why = "a cookie of another service";
    else if ((long)k->login_pid != rq->login_pid)
        why = "a cookie of another login process";
    if (why) {
        msg_warn("authd: hand-over for %s from login process %ld refused: %s", rq->service,
                 rq->login_pid, why);
        expcache_del(authd_cookies, hex);
        explicit_bzero(hex, sizeof(hex));
        authd_send(cl, auth_redeemed_encode(rq->reqid, AUTH_FAIL, NULL));
        return;
    }
    logname = authd_name_for_log(k->user);
    msg_info("authd: hand-over of %s (%s) from login process %ld", logname, k->service,
             rq->login_pid);
    free(logname);
    authd_send(cl, auth_redeemed_encode(rq->reqid, AUTH_OK, k->user));
    expcache_del(authd_cookies, hex);
    explicit_bzero(hex, sizeof(hex));
}

/* The exchange ended: log, count, reply (a failure after its delay). */
static void authd_finish(struct authd_conv *cv, int result, const char *reason, const buf_t *final)
{
    struct authd_client *cl = cv->cl;
    const char *mech = cv->sasl ? sasl_server_mech(cv->sasl) : cv->mech;
    const char *user = cv->sasl ? sasl_server_authcid(cv->sasl) : cv->user;
    const char *authzid = cv->sasl ? sasl_server_authzid(cv->sasl) : NULL;
    char *logname = authd_name_for_log(user);
    long delay_ms = 0;
    ipc_msg_t *m;

    /* RFC 4616 and 5802 leave the authorization identity to the server:
     * a login may act only as itself. */
    if (result == AUTH_OK && authzid && *authzid && strcmp(authzid, user) != 0) {
        result = AUTH_FAIL;
        reason = "authorization identity not allowed";
        final = NULL;
    }
    if (result == AUTH_OK) {
        unsigned char cookie[AUTH_COOKIE_LEN];

        msg_info("authd: %s authentication of %s from %s (%s): ok", mech, logname,
                 cv->client_addr, cv->service);
        free(logname);
        if (cv->handover)
            authd_cookie_issue(cv, user, cookie);
        m = auth_done_encode(cv->reqid, AUTH_OK, user, final ? final->data : NULL,
                             final ? final->len : 0, "", cv->handover ? cookie : NULL);
        explicit_bzero(cookie, sizeof(cookie));
        authd_conv_free(cv);
        authd_send(cl, m);
        return;
    }
    msg_info("authd: %s authentication of %s from %s (%s) failed: %s", mech, logname,
             cv->client_addr, cv->service, reason);
    if (result == AUTH_FAIL) {
        char *akey = authd_addr_key(cv->client_addr), *ukey = NULL;
        struct authd_count *c = authd_count_of(akey);
        long na = (c ? c->n : 0) + 1, nu = 0;

        /* The delay grows with the larger count; both keys get it. */
        if (user) {
            ukey = xasprintf("u %s", user);
            c = authd_count_of(ukey);
            nu = (c ? c->n : 0) + 1;
        }
        delay_ms = authd_delay_ms(na > nu ? na : nu);
        authd_count_store(akey, na, delay_ms);
        if (ukey)
            authd_count_store(ukey, nu, delay_ms);
        free(akey);
        free(ukey);
    }
    free(logname);
    m = auth_done_encode(cv->reqid, result, NULL, final ? final->data : NULL,
                         final ? final->len : 0, reason, NULL);
    if (delay_ms > 0) {
        sasl_server_free(&cv->sasl);
        cv->reply = m;
        cv->delay = event_add_timer(authd_loop, delay_ms, authd_delayed, cv);
        return;
    }
    authd_conv_free(cv);
    authd_send(cl, m);
}

/* Feed the client's response (or none) to the exchange and answer. */
static void authd_step(struct authd_conv *cv, const void *data, size_t len, int have)
{
    const char *user = sasl_server_authcid(cv->sasl), *reason;
    buf_t *out;
    int r;

    /* A SCRAM proof (or LOGIN's password) comes with the client's last
     * step: the gate again, now that the account is known. */
    if (user && !authd_gate(cv->client_addr, user)) {
        authd_finish(cv, AUTH_TEMPFAIL, authd_gate_reason, NULL);
        return;
    }
    out = buf_new(AUTH_DATA_MAX);
    authd_gate_reason = NULL;
    authd_current = cv;
    r = sasl_server_step(cv->sasl, data, len, have, out);
    authd_current = NULL;
    reason = authd_gate_reason ? authd_gate_reason : sasl_server_reason(cv->sasl);

    switch (r) {
    case SASL_CONTINUE:
        authd_send(cv->cl, auth_continue_encode(cv->reqid, out->data, out->len));
        break;
    case SASL_OK:
        authd_finish(cv, AUTH_OK, "", out);
        break;
    case SASL_TEMPFAIL:
        authd_finish(cv, AUTH_TEMPFAIL, reason ? reason : "temporary failure", NULL);
        break;
    default:
        authd_finish(cv, AUTH_FAIL, reason ? reason : "authentication failed", out);
        break;
    }
    buf_free(&out);
}

/* APOP (RFC 1939 7), for pop3d with pop3_apop = yes only: the initial
 * response is "NAME\0TIMESTAMP\0DIGEST", DIGEST the hex MD5 of the
 * greeting's TIMESTAMP followed by the user's APOP secret, which the
 * record keeps in clear for this (mailctl user apop).  Failures count and
 * are delayed as any other. */
static void authd_apop(struct authd_conv *cv, const struct auth_request *rq)
{
    const char *p = rq->data, *end = p + rq->data_len, *ts, *digest;
    char secret[PASSDB_PASSWORD_MAX + 1], hex[2 * EVP_MAX_MD_SIZE + 1], want[33];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char *record = NULL, *name;
    EVP_MD_CTX *ctx;
    int r, have = 0;

    if (strcmp(rq->service, AUTH_SERVICE_POP3) != 0 || !conf_bool("pop3_apop")
        || !rq->has_data) {
        authd_finish(cv, AUTH_FAIL, "APOP is not enabled", NULL);
        return;
    }
    if ((ts = memchr(p, '\0', rq->data_len)) == NULL
        || (digest = memchr(ts + 1, '\0', (size_t)(end - ts - 1))) == NULL
        || ts == p || (size_t)(ts - p) > AUTH_USER_MAX || end - digest - 1 != 32
        || digest - ts - 1 < 3 || ts[1] != '<' || digest[-1] != '>') {
        authd_finish(cv, AUTH_FAIL, "malformed APOP request", NULL);
        return;
    }
    ts++;
    digest++;
    for (int i = 0; i < 32; i++)
        want[i] = (char)tolower((unsigned char)digest[i]);
    want[32] = '\0';
    name = xstrndup(p, (size_t)(ts - 1 - p));
    cv->user = name;
    if (!authd_gate(cv->client_addr, name)) {
        authd_finish(cv, AUTH_TEMPFAIL, authd_gate_reason, NULL);
        return;
    }
    if ((r = authd_record(name, &record)) < 0) {
        authd_finish(cv, AUTH_TEMPFAIL, "cannot read the password file", NULL);
        return;
    }
    if (r > 0)
        have = passdb_apop(record, secret) > 0;
    free(record);
    if (!have)
        strcpy(secret, "\x01no secret");   /* the same work either way */
    if ((ctx = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(ctx, EVP_md5(), NULL) != 1
        || EVP_DigestUpdate(ctx, ts, (size_t)(digest - 1 - ts)) != 1
        || EVP_DigestUpdate(ctx, secret, strlen(secret)) != 1
        || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 16)
        msg_fatal("authd: MD5 failed");
    EVP_MD_CTX_free(ctx);
    OPENSSL_cleanse(secret, sizeof(secret));
    authd_hex(md, 16, hex);
    if (have && CRYPTO_memcmp(hex, want, 32) == 0)
        authd_finish(cv, AUTH_OK, "", NULL);
    else
        authd_finish(cv, AUTH_FAIL, have ? "wrong APOP digest" : "no APOP secret", NULL);
}

static void authd_start(struct authd_client *cl, const struct auth_request *rq)
{
    struct sasl_server_config cfg = {
        .verify_plain = authd_verify_plain,
        .scram_lookup = authd_scram_lookup,
        .plaintext_ok = (rq->flags & AUTH_F_PLAINTEXT_OK) != 0,
        .cb_type = *rq->cb_type ? rq->cb_type : NULL,
        .cb_data = rq->cb_data,
        .cb_len = rq->cb_len,
    };
    struct authd_conv *cv = xcalloc(1, sizeof(*cv));

    cv->cl = cl;
    cv->reqid = rq->reqid;
    cv->mech = xstrdup(rq->mech);
    cv->service = xstrdup(rq->service);
    cv->client_addr = xstrdup(rq->client_addr);
    cv->handover = (rq->flags & AUTH_F_HANDOVER) != 0;
    cv->next = cl->convs;
    cl->convs = cv;
    cl->nconvs++;
    if (!authd_gate(rq->client_addr, NULL)) {
        authd_finish(cv, AUTH_TEMPFAIL, authd_gate_reason, NULL);
        return;
    }
    if (strcmp(rq->mech, "APOP") == 0) {
        authd_apop(cv, rq);
        return;
    }
    if ((cv->sasl = sasl_server_new(rq->mech, &cfg)) == NULL) {
        msg_info("authd: %s authentication from %s (%s) refused: mechanism not available",
                 rq->mech, rq->client_addr, rq->service);
        authd_conv_free(cv);
        authd_send(cl, auth_done_encode(rq->reqid, AUTH_FAIL, NULL, NULL, 0,
                                        "mechanism not available", NULL));
        return;
    }
    authd_step(cv, rq->data, rq->data_len, rq->has_data);
}

/* ------------------------------------------------------------ clients */

static void authd_drop(struct authd_client *cl)
{
    while (cl->convs)
        authd_conv_free(cl->convs);
    event_del_fd(authd_loop, cl->conn->fd);
    ipcconn_free(&cl->conn);
    free(cl);
    server_conn_end();
}

static void authd_on_request(event_loop_t *loop, int fd, int events, void *arg)
{
    struct authd_client *cl = arg;
    struct auth_request rq;
    struct authd_conv *cv;
    ipc_msg_t *m = NULL;
    const char *why = NULL;
    int rc;

    (void)loop;
    (void)fd;
    (void)events;
    rc = server_ipc_recv(cl->conn, &m);
    if (rc == 0)
        return;
    if (rc < 0) {
        authd_drop(cl);
        return;
    }
    if (auth_request_decode(m, &rq, &why) < 0) {
        msg_warn("authd: malformed %s from a client (uid %ld): %s; dropping it",
                 ipc_type_name(m->type), (long)cl->conn->uid, why);
        ipc_msg_free(&m);
        authd_drop(cl);
        return;
    }
    cv = authd_conv_find(cl, rq.reqid);
    why = NULL;
    if (rq.type == AUTH_REDEEM) {
        if (cl->conn->uid != 0)
            why = "a hand-over to redeem, but it is not root";
        else
            authd_redeem(cl, &rq);
    } else if (rq.type == AUTH_START) {
        if (cv)
            why = "a request id already in use";
        else if ((rq.flags & AUTH_F_HANDOVER) && cl->conn->uid != authd_login_uid)
            why = "a hand-over request, but it is not login_user";
        else if (cl->nconvs >= AUTHD_MAX_CONVERSATIONS)
            why = "too many exchanges at once";
        else
            authd_start(cl, &rq);
    } else if (cv == NULL || cv->sasl == NULL) {
        /* None, or one whose failure waits for its delay: a client that
         * cancels or answers then is ahead of us, not wrong. */
        if (cv == NULL && rq.type == AUTH_STEP)
            why = "a response to no exchange";
    } else if (rq.type == AUTH_CANCEL) {
        char *logname = authd_name_for_log(sasl_server_authcid(cv->sasl));

        msg_info("authd: %s authentication of %s from %s (%s) cancelled by the client",
                 sasl_server_mech(cv->sasl), logname, cv->client_addr, cv->service);
        free(logname);
        authd_conv_free(cv);
    } else {
        authd_step(cv, rq.data, rq.data_len, 1);
    }
    auth_request_clear(&rq);
    ipc_msg_free(&m);
    if (why) {
        msg_warn("authd: a client (uid %ld) sent %s; dropping it", (long)cl->conn->uid, why);
        authd_drop(cl);
    }
}

static void authd_accept(event_loop_t *loop, int fd)
{
    struct authd_client *cl;
    ipcconn_t *c = server_ipc_accept(fd, AUTH_PROTO_NAME, AUTH_PROTO_VERSION, authd_peer_uids, 3,
                                     AUTH_FRAME_MAX);

    if (c == NULL)
        return;
    cl = xcalloc(1, sizeof(*cl));
    cl->conn = c;
    {
        uid_t uid;

        if (ipc_peer_uid(c->fd, &uid, &cl->pid) < 0)
            cl->pid = 0;            /* no cookie then matches a redemption */
    }
    event_add_fd(loop, c->fd, EVENT_READ, authd_on_request, cl);
}

static void authd_pre_init(void)
{
    static const char *const params[] = {"network_user", "login_user"};

    server_peer_uids(params, 2, authd_peer_uids);
    authd_peer_uids[2] = 0;
    authd_login_uid = authd_peer_uids[1];
}

/* auth_system_passwords needs group shadow (Debian's /etc/shadow is
 * root:shadow 0640). */
static size_t authd_extra_groups(gid_t *groups, size_t max)
{
    if (!conf_bool("auth_system_passwords") || max < 1)
        return 0;
    if (privs_group_lookup("shadow", &groups[0]) < 0) {
        msg_warn("auth_system_passwords = yes, but there is no group shadow: login passwords "
                 "cannot be read");
        return 0;
    }
    return 1;
}

static void authd_post_init(event_loop_t *loop)
{
    authd_loop = loop;
    auth_proto_init();
    if (RAND_bytes(authd_secret, sizeof(authd_secret)) != 1)
        msg_fatal("authd: no random bytes for the password cache");
    authd_failures = expcache_new(AUTHD_TRACKED_MAX, free);
    authd_verified = expcache_new(AUTHD_CACHED_MAX, free);
    authd_cookies = expcache_new(AUTHD_COOKIES_MAX, authd_cookie_free);
    {
        unsigned char pw[16];
        char hex[33];
        const char *why;

        if (RAND_bytes(pw, sizeof(pw)) != 1)
            msg_fatal("authd: no random bytes for the dummy password");
        authd_hex(pw, sizeof(pw), hex);
        if (passdb_make(hex, (unsigned)conf_int("auth_scram_iterations"), &authd_dummy_record,
                        &why) < 0)
            msg_fatal("authd: cannot make the dummy password record: %s", why);
    }
    scram_standin_iterations((unsigned)conf_int("auth_scram_iterations"));
}

int main(int argc, char **argv)
{
    static const struct server_opts opts = {
        .mode = SERVER_MULTI,
        .user_param = "auth_user",
        .chroot = SERVER_CHROOT_NONE,
        .no_idle_exit = 1,
        .pre_init = authd_pre_init,
        .extra_groups = authd_extra_groups,
        .post_init = authd_post_init,
        .accept = authd_accept,
    };

    server_main(argc, argv, &opts);
}
