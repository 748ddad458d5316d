/*
 * sasl - SASL mechanisms, server and client halves (see sasl.h).
 *
 * The server is a small state machine per mechanism: PLAIN and LOGIN are
 * here, SCRAM-SHA-256 and its -PLUS variant are lib/scram's exchange
 * behind the same step.  The client knows PLAIN and LOGIN.  Copies of
 * passwords are wiped before they are freed.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "msg.h"
#include "sasl.h"
#include "saslprep.h"
#include "scram.h"
#include "xalloc.h"

enum sasl_kind { SASL_SCRAM_PLUS, SASL_SCRAM, SASL_PLAIN, SASL_LOGIN, SASL_NKINDS };

/* Strongest first: the order of sasl_server_mechs(). */
static const char *const sasl_names[SASL_NKINDS] = {
    "SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "PLAIN", "LOGIN",
};

enum sasl_state {
    SASL_ST_START,      /* nothing received yet */
    SASL_ST_PLAIN,      /* PLAIN: the empty challenge went out */
    SASL_ST_USER,       /* LOGIN: "Username:" went out */
    SASL_ST_PASS,       /* LOGIN: "Password:" went out */
    SASL_ST_DONE,
};

struct sasl_server {
    enum sasl_kind         kind;
    enum sasl_state        state;
    sasl_verify_plain_fn  *verify_plain;
    void                  *ctx;
    scram_server_t        *scram;
    char                  *authcid;     /* PLAIN, LOGIN: SASLprep'd */
    char                  *authzid;     /* PLAIN */
    const char            *reason;
};

struct sasl_client {
    enum sasl_kind  kind;
    char           *authcid;
    char           *password;
    char           *authzid;
    int             answered;   /* challenges answered (and PLAIN's initial response) */
    const char     *reason;
};

static int sasl_kind(const char *mech)
{
    for (int k = 0; k < SASL_NKINDS; k++)
        if (strcasecmp(mech, sasl_names[k]) == 0)
            return k;
    return -1;
}

/* The offering rule: what the callbacks there are (plain, scram), the
 * connection (plaintext_ok, channel binding) allow. */
static int sasl_offer_rule(int plain, int scram, int plaintext_ok, int cb, enum sasl_kind kind)
{
    switch (kind) {
    case SASL_SCRAM_PLUS:
        return scram && cb;
    case SASL_SCRAM:
        return scram;
    case SASL_PLAIN:
    case SASL_LOGIN:
        return plain && plaintext_ok;
    default:
        return 0;
    }
}

static int sasl_has_cb(const struct sasl_server_config *c)
{
    return c->cb_type && *c->cb_type && c->cb_data && c->cb_len > 0;
}

static int sasl_offered(const struct sasl_server_config *c, enum sasl_kind kind)
{
    return sasl_offer_rule(c->verify_plain != NULL, c->scram_lookup != NULL, c->plaintext_ok,
                           sasl_has_cb(c), kind);
}

static int sasl_list(int plain, int scram, int plaintext_ok, int cb, buf_t *out)
{
    size_t start = out->len;
    int n = 0;

    for (int k = 0; k < SASL_NKINDS; k++) {
        if (!sasl_offer_rule(plain, scram, plaintext_ok, cb, k))
            continue;
        if ((n > 0 && buf_putc(out, ' ') < 0) || buf_append_str(out, sasl_names[k]) < 0) {
            buf_truncate(out, start);
            return -1;
        }
        n++;
    }
    return n;
}

int sasl_server_mechs(const struct sasl_server_config *config, buf_t *out)
{
    return sasl_list(config->verify_plain != NULL, config->scram_lookup != NULL,
                     config->plaintext_ok, sasl_has_cb(config), out);
}

int sasl_server_mechs_relayed(int plaintext_ok, int channel_binding, buf_t *out)
{
    return sasl_list(1, 1, plaintext_ok, channel_binding, out);
}

int sasl_server_offers_relayed(int plaintext_ok, int channel_binding, const char *mech)
{
    int kind = sasl_kind(mech);

    return kind >= 0 && sasl_offer_rule(1, 1, plaintext_ok, channel_binding, kind);
}

sasl_server_t *sasl_server_new(const char *mech, const struct sasl_server_config *config)
{
    int kind = sasl_kind(mech);
    sasl_server_t *s;

    if (kind < 0 || !sasl_offered(config, kind))
        return NULL;
    s = xcalloc(1, sizeof(*s));
    s->kind = kind;
    s->state = SASL_ST_START;
    s->verify_plain = config->verify_plain;
    s->ctx = config->ctx;
    if (kind == SASL_SCRAM || kind == SASL_SCRAM_PLUS) {
        struct scram_server_params p = {
            .lookup = config->scram_lookup,
            .ctx = config->ctx,
            .plus = kind == SASL_SCRAM_PLUS,
            .cb_type = sasl_offered(config, SASL_SCRAM_PLUS) ? config->cb_type : NULL,
            .cb_data = config->cb_data,
            .cb_len = config->cb_len,
        };

        s->scram = scram_server_new(&p);
    }
    return s;
}

void sasl_server_free(sasl_server_t **sp)
{
    sasl_server_t *s = *sp;

    if (s == NULL)
        return;
    scram_server_free(&s->scram);
    free(s->authcid);
    free(s->authzid);
    free(s);
    *sp = NULL;
}

void sasl_server_test_nonce(sasl_server_t *s, const char *nonce)
{
    if (s->scram)
        scram_server_test_nonce(s->scram, nonce);
}

const char *sasl_server_mech(const sasl_server_t *s)
{
    return sasl_names[s->kind];
}

const char *sasl_server_reason(const sasl_server_t *s)
{
    return s->reason;
}

const char *sasl_server_authcid(const sasl_server_t *s)
{
    return s->scram ? scram_server_authcid(s->scram) : s->authcid;
}

const char *sasl_server_authzid(const sasl_server_t *s)
{
    return s->scram ? scram_server_authzid(s->scram) : s->authzid;
}

static int sasl_fail(sasl_server_t *s, const char *reason)
{
    s->reason = reason;
    return SASL_FAIL;
}

/* PLAIN and LOGIN: the user name, SASLprep'd into s->authcid. */
static int sasl_user(sasl_server_t *s, const char *user, size_t len)
{
    if (len == 0)
        return sasl_fail(s, "empty user name");
    if (len > SASL_FIELD_MAX)
        return sasl_fail(s, "user name longer than 255 octets");
    if (!saslprep_utf8_valid(user, len))
        return sasl_fail(s, "user name is not UTF-8 text");
    if (saslprep(user, len, &s->authcid) < 0)
        return sasl_fail(s, "user name refused by SASLprep");
    return SASL_CONTINUE;
}

/* PLAIN and LOGIN: the password for s->authcid, through the callback. */
static int sasl_password(sasl_server_t *s, const char *pass, size_t len)
{
    char *pw;
    int rc;

    if (len == 0)
        return sasl_fail(s, "empty password");
    if (len > SASL_FIELD_MAX)
        return sasl_fail(s, "password longer than 255 octets");
    if (memchr(pass, '\0', len))
        return sasl_fail(s, "NUL in the password");
    pw = xstrndup(pass, len);
    rc = s->verify_plain(s->ctx, s->authcid, pw);
    explicit_bzero(pw, len);
    free(pw);
    switch (rc) {
    case SASL_OK:
        return SASL_OK;
    case SASL_FAIL:
        return sasl_fail(s, "wrong user name or password");
    case SASL_TEMPFAIL:
        s->reason = "password check failed temporarily";
        return SASL_TEMPFAIL;
    default:
        msg_panic("sasl: verify_plain gave an unknown result %d", rc);
    }
}

/* PLAIN (RFC 4616): [authzid] NUL authcid NUL passwd. */
static int sasl_plain(sasl_server_t *s, const char *m, size_t len)
{
    const char *nul1, *nul2, *user, *pass;
    size_t zlen, ulen, plen;
    int rc;

    if (len > 3 * SASL_FIELD_MAX + 2)
        return sasl_fail(s, "PLAIN message too long");
    if ((nul1 = memchr(m, '\0', len)) == NULL
        || (nul2 = memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - m))) == NULL)
        return sasl_fail(s, "PLAIN message without its two NULs");
    user = nul1 + 1;
    pass = nul2 + 1;
    zlen = (size_t)(nul1 - m);
    ulen = (size_t)(nul2 - user);
    plen = len - (size_t)(pass - m);
    if (memchr(pass, '\0', plen))
        return sasl_fail(s, "PLAIN message with more than two NULs");
    if (zlen > SASL_FIELD_MAX)
        return sasl_fail(s, "authorization identity longer than 255 octets");
    if (!saslprep_utf8_valid(m, zlen))
        return sasl_fail(s, "authorization identity is not UTF-8 text");
    if (plen > 0 && plen <= SASL_FIELD_MAX && !saslprep_utf8_valid(pass, plen))
        return sasl_fail(s, "password is not UTF-8 text");
    if ((rc = sasl_user(s, user, ulen)) != SASL_CONTINUE)
        return rc;
    if (zlen > 0)
        s->authzid = xstrndup(m, zlen);
    return sasl_password(s, pass, plen);
}

static int sasl_scram(sasl_server_t *s, const void *in, size_t inlen, int have_input, buf_t *out)
{
    const char *why = NULL;

    switch (scram_server_step(s->scram, in, inlen, have_input, out, &why)) {
    case SCRAM_CONTINUE:
        return SASL_CONTINUE;
    case SCRAM_OK:
        return SASL_OK;
    case SCRAM_TEMPFAIL:
        s->reason = why;
        return SASL_TEMPFAIL;
    default:
        return sasl_fail(s, why);
    }
}

int sasl_server_step(sasl_server_t *s, const void *in, size_t inlen, int have_input, buf_t *out)
{
    int rc;

    if (s->state == SASL_ST_DONE)
        msg_panic("sasl_server_step: the %s exchange is over", sasl_names[s->kind]);
    if (out->limit && out->limit < SCRAM_MESSAGE_MAX)
        msg_panic("sasl_server_step: the output buffer is too small");
    buf_reset(out);
    if (!have_input) {
        in = "";
        inlen = 0;
    }
    switch (s->kind) {
    case SASL_SCRAM_PLUS:
    case SASL_SCRAM:
        rc = sasl_scram(s, in, inlen, have_input, out);
        break;
    case SASL_PLAIN:
        if (s->state == SASL_ST_START && !have_input) {
            s->state = SASL_ST_PLAIN;
            rc = SASL_CONTINUE;         /* an empty challenge: "send them" */
        } else
            rc = sasl_plain(s, in, inlen);
        break;
    case SASL_LOGIN:
        if (s->state == SASL_ST_START && !have_input) {
            s->state = SASL_ST_USER;
            buf_append_str(out, "Username:");
            rc = SASL_CONTINUE;
        } else if (s->state != SASL_ST_PASS) {
            if ((rc = sasl_user(s, in, inlen)) == SASL_CONTINUE) {
                s->state = SASL_ST_PASS;
                buf_append_str(out, "Password:");
            }
        } else
            rc = sasl_password(s, in, inlen);
        break;
    default:
        msg_panic("sasl_server_step: mechanism %d", s->kind);
    }
    if (rc != SASL_CONTINUE)
        s->state = SASL_ST_DONE;
    return rc;
}

/* ------------------------------------------------------------- client */

sasl_client_t *sasl_client_new(const char *mech, const char *authcid, const char *password,
                               const char *authzid)
{
    int kind = sasl_kind(mech);
    sasl_client_t *c;

    if (kind != SASL_PLAIN && kind != SASL_LOGIN)
        return NULL;
    c = xcalloc(1, sizeof(*c));
    c->kind = kind;
    c->authcid = xstrdup(authcid);
    c->password = xstrdup(password);
    c->authzid = xstrdup(authzid ? authzid : "");
    return c;
}

void sasl_client_free(sasl_client_t **cp)
{
    sasl_client_t *c = *cp;

    if (c == NULL)
        return;
    explicit_bzero(c->password, strlen(c->password));
    free(c->password);
    free(c->authcid);
    free(c->authzid);
    free(c);
    *cp = NULL;
}

const char *sasl_client_mech(const sasl_client_t *c)
{
    return sasl_names[c->kind];
}

const char *sasl_client_reason(const sasl_client_t *c)
{
    return c->reason;
}

/* PLAIN's one message: authzid NUL authcid NUL passwd.  0, or -1 at
 * out's limit (out then empty). */
static int sasl_client_plain(sasl_client_t *c, buf_t *out)
{
    if (buf_append_str(out, c->authzid) < 0 || buf_putc(out, '\0') < 0
        || buf_append_str(out, c->authcid) < 0 || buf_putc(out, '\0') < 0
        || buf_append_str(out, c->password) < 0) {
        explicit_bzero(out->data, out->len);
        buf_reset(out);
        c->reason = "the credentials do not fit the output buffer";
        return -1;
    }
    return 0;
}

int sasl_client_start(sasl_client_t *c, buf_t *out)
{
    buf_reset(out);
    if (c->kind != SASL_PLAIN || c->answered)
        return 0;
    c->answered = 1;
    /* A response that cannot be made is no response: the protocol sends
     * none, and the step that follows fails with the reason. */
    return sasl_client_plain(c, out) == 0;
}

int sasl_client_step(sasl_client_t *c, const void *in, size_t inlen, buf_t *out)
{
    (void)in;
    buf_reset(out);
    if (c->kind == SASL_PLAIN) {
        /* The server asks for the credentials with an empty challenge. */
        if (c->answered || inlen != 0) {
            if (c->reason == NULL)
                c->reason = c->answered ? "a challenge after the PLAIN credentials"
                                        : "a PLAIN challenge that is not empty";
            return SASL_FAIL;
        }
        if (sasl_client_plain(c, out) < 0)
            return SASL_FAIL;
    } else {
        /* LOGIN's prompts are not read: servers word them differently
         * ("Username:", "User Name"); the first is the name's, the second
         * the password's. */
        if (c->answered >= 2) {
            c->reason = "a third LOGIN challenge";
            return SASL_FAIL;
        }
        if (buf_append_str(out, c->answered == 0 ? c->authcid : c->password) < 0) {
            c->reason = "the credentials do not fit the output buffer";
            return SASL_FAIL;
        }
    }
    c->answered++;
    return SASL_CONTINUE;
}
