/*
 * scram - SCRAM-SHA-256 key derivation and the server's side of the
 * exchange (see scram.h).
 *
 * OpenSSL does the cryptography: PKCS5_PBKDF2_HMAC for SaltedPassword,
 * HMAC() and SHA256() for the keys and signatures, CRYPTO_memcmp for the
 * proof check, RAND_bytes for the server's nonce and the per-process
 * secret behind unknown users' salts.  Every intermediate secret is wiped
 * before it is freed or goes out of scope.
 *
 * Messages are parsed as RFC 5802 7's grammar, attribute by attribute
 * (split at ","), on the raw bytes: the whole message must be UTF-8 without
 * NUL first, so that each value needs only its own extra rules.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "base64.h"
#include "buf.h"
#include "msg.h"
#include "saslprep.h"
#include "scram.h"
#include "xalloc.h"

/* HMAC-SHA-256 of data under key into out[SCRAM_KEY_LEN]; fatal if
 * OpenSSL fails (it cannot, short of a broken library). */
static void scram_hmac(const unsigned char *key, size_t keylen, const void *data, size_t len,
                       unsigned char out[SCRAM_KEY_LEN])
{
    unsigned outlen = 0;

    if (HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &outlen) == NULL
        || outlen != SCRAM_KEY_LEN)
        msg_fatal("scram: HMAC-SHA-256 failed");
}

int scram_sha256_keys(const char *password, const unsigned char *salt, size_t saltlen,
                      unsigned iterations, unsigned char stored_key[32],
                      unsigned char server_key[32])
{
    unsigned char salted[SCRAM_KEY_LEN], client_key[SCRAM_KEY_LEN];
    char *prepared;
    size_t plen;
    int ok;

    if (saltlen < 1 || saltlen > SCRAM_SALT_MAX || iterations < 1
        || iterations > SCRAM_ITERATIONS_MAX || strlen(password) > SCRAM_PASSWORD_MAX)
        return -1;
    if (saslprep(password, strlen(password), &prepared) < 0)
        return -1;
    plen = strlen(prepared);
    ok = PKCS5_PBKDF2_HMAC(prepared, (int)plen, salt, (int)saltlen, (int)iterations,
                           EVP_sha256(), SCRAM_KEY_LEN, salted);
    explicit_bzero(prepared, plen);
    free(prepared);
    if (ok != 1)
        msg_fatal("scram: PBKDF2-HMAC-SHA-256 failed");
    scram_hmac(salted, sizeof(salted), "Client Key", 10, client_key);
    if (SHA256(client_key, sizeof(client_key), stored_key) == NULL)
        msg_fatal("scram: SHA-256 failed");
    scram_hmac(salted, sizeof(salted), "Server Key", 10, server_key);
    explicit_bzero(salted, sizeof(salted));
    explicit_bzero(client_key, sizeof(client_key));
    return 0;
}

/* ------------------------------------------------------------- server */

enum scram_state { SCRAM_ST_FIRST, SCRAM_ST_FINAL, SCRAM_ST_DONE };

struct scram_server {
    enum scram_state          state;
    int                       prompted;     /* the empty first challenge went out */
    int                       plus;
    scram_lookup_fn          *lookup;
    void                     *ctx;
    char                     *cb_type;      /* NULL: no channel binding here */
    unsigned char            *cb_data;
    size_t                    cb_len;
    char                     *test_nonce;
    char                      cbflag;       /* the client's: 'n', 'y' or 'p' */
    char                     *authcid;
    char                     *authzid;
    buf_t                    *gs2_header;   /* exactly as the client sent it */
    buf_t                    *auth_message; /* client-first-bare "," server-first "," ... */
    char                     *nonce;        /* the client's and ours */
    struct scram_credentials  cred;
    const char               *unusable;     /* why cred is a stand-in, else NULL */
};

/* The per-process secret behind the stand-in credentials of unknown users. */
static unsigned char scram_secret[32];
static int scram_secret_made;

scram_server_t *scram_server_new(const struct scram_server_params *p)
{
    scram_server_t *s;

    if (p->lookup == NULL)
        msg_panic("scram_server_new: no lookup function");
    if (p->plus && (p->cb_type == NULL || p->cb_data == NULL || p->cb_len == 0))
        msg_panic("scram_server_new: -PLUS without channel binding data");
    s = xcalloc(1, sizeof(*s));
    s->plus = p->plus;
    s->lookup = p->lookup;
    s->ctx = p->ctx;
    if (p->cb_type && p->cb_data && p->cb_len > 0) {
        s->cb_type = xstrdup(p->cb_type);
        s->cb_data = xmemdup(p->cb_data, p->cb_len);
        s->cb_len = p->cb_len;
    }
    s->gs2_header = buf_new(0);
    s->auth_message = buf_new(0);
    return s;
}

void scram_server_free(scram_server_t **sp)
{
    scram_server_t *s = *sp;

    if (s == NULL)
        return;
    free(s->cb_type);
    free(s->cb_data);
    free(s->test_nonce);
    free(s->authcid);
    free(s->authzid);
    buf_free(&s->gs2_header);
    buf_free(&s->auth_message);
    free(s->nonce);
    explicit_bzero(&s->cred, sizeof(s->cred));
    free(s);
    *sp = NULL;
}

void scram_server_test_nonce(scram_server_t *s, const char *nonce)
{
    const char *c;

    if (s->state != SCRAM_ST_FIRST || *nonce == '\0')
        msg_panic("scram_server_test_nonce: too late, or an empty nonce");
    for (c = nonce; *c; c++)
        if (*c < 0x21 || *c > 0x7e || *c == ',')
            msg_panic("scram_server_test_nonce: not printable without ','");
    free(s->test_nonce);
    s->test_nonce = xstrdup(nonce);
}

const char *scram_server_authcid(const scram_server_t *s)
{
    return s->authcid;
}

const char *scram_server_authzid(const scram_server_t *s)
{
    return s->authzid;
}

/* The end of the attribute that starts at pos: the next "," or len. */
static size_t scram_attr_end(const char *m, size_t len, size_t pos)
{
    const char *comma = memchr(m + pos, ',', len - pos);

    return comma ? (size_t)(comma - m) : len;
}

/* Is m[pos, end) "X=..." for the attribute letter x? */
static int scram_attr_is(const char *m, size_t pos, size_t end, char x)
{
    return end - pos >= 2 && m[pos] == x && m[pos + 1] == '=';
}

/* An extension attribute (RFC 5802 7: attr-val, ALPHA "=" 1*value-char;
 * the message was checked to be UTF-8 without NUL): 1 if well-formed, 0
 * if not, -1 if it is "m=" (mandatory, which we do not know). */
static int scram_extension(const char *m, size_t pos, size_t end)
{
    char c;

    if (end - pos < 3 || m[pos + 1] != '=')
        return 0;
    c = m[pos];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
        return 0;
    return c == 'm' ? -1 : 1;
}

/* Decode a saslname (RFC 5802 5.1: "," and "=" sent as =2C and =3D; any
 * other "=" is an error): 0 with a fresh string of 1..SCRAM_NAME_MAX
 * octets, or -1. */
static int scram_saslname(const char *p, size_t len, char **outp)
{
    buf_t *b = buf_new(SCRAM_NAME_MAX);
    size_t i;

    *outp = NULL;
    for (i = 0; i < len; i++) {
        int c = (unsigned char)p[i];

        if (c == '=') {
            if (len - i >= 3 && p[i + 1] == '2' && p[i + 2] == 'C')
                c = ',';
            else if (len - i >= 3 && p[i + 1] == '3' && p[i + 2] == 'D')
                c = '=';
            else
                goto bad;
            i += 2;
        }
        if (buf_putc(b, c) < 0)
            goto bad;
    }
    if (b->len == 0)
        goto bad;
    *outp = buf_steal(b, NULL);
    buf_free(&b);
    return 0;
bad:
    buf_free(&b);
    return -1;
}

static void scram_hmac_str(const unsigned char *key, size_t keylen, const char *a, const char *b,
                           unsigned char out[SCRAM_KEY_LEN])
{
    buf_t *d = buf_new(0);

    buf_append_str(d, a);
    buf_append_str(d, b);
    scram_hmac(key, keylen, d->data, d->len, out);
    buf_free(&d);
}

static unsigned scram_standin_count = SCRAM_ITERATIONS_DEFAULT;

void scram_standin_iterations(unsigned iterations)
{
    scram_standin_count = iterations;
}

/* Stand-in credentials for a user we cannot check: the same for the same
 * name in this process, and looking like anyone's. */
static void scram_standin(scram_server_t *s, const char *why)
{
    unsigned char h[SCRAM_KEY_LEN];

    if (!scram_secret_made) {
        if (RAND_bytes(scram_secret, sizeof(scram_secret)) != 1)
            msg_fatal("scram: no random bytes for the stand-in secret");
        scram_secret_made = 1;
    }
    memset(&s->cred, 0, sizeof(s->cred));
    s->cred.iterations = scram_standin_count;
    scram_hmac_str(scram_secret, sizeof(scram_secret), "salt:", s->authcid, h);
    memcpy(s->cred.salt, h, SCRAM_SALT_LEN);
    s->cred.saltlen = SCRAM_SALT_LEN;
    scram_hmac_str(scram_secret, sizeof(scram_secret), "stored:", s->authcid, s->cred.stored_key);
    scram_hmac_str(scram_secret, sizeof(scram_secret), "server:", s->authcid, s->cred.server_key);
    explicit_bzero(h, sizeof(h));
    s->unusable = why;
}

/* The GS2 header and what the mechanism and the connection allow of its
 * channel binding flag.  *posp: where the client-first-bare starts. */
static int scram_gs2_header(scram_server_t *s, const char *m, size_t len, size_t *posp,
                            const char **why)
{
    size_t end = scram_attr_end(m, len, 0), pos;

    if (end == len) {
        *why = "no GS2 header";
        return -1;
    }
    if (end == 1 && (m[0] == 'n' || m[0] == 'y'))
        s->cbflag = m[0];
    else if (end > 2 && m[0] == 'p' && m[1] == '=') {
        size_t i;

        for (i = 2; i < end; i++)
            if (!((m[i] >= 'a' && m[i] <= 'z') || (m[i] >= 'A' && m[i] <= 'Z')
                  || (m[i] >= '0' && m[i] <= '9') || m[i] == '.' || m[i] == '-')) {
                *why = "bad channel binding name in the GS2 header";
                return -1;
            }
        s->cbflag = 'p';
        if (s->cb_type == NULL || strlen(s->cb_type) != end - 2
            || memcmp(s->cb_type, m + 2, end - 2) != 0) {
            *why = s->cb_type ? "unsupported channel binding type"
                              : "channel binding asked for, but none is offered";
            return -1;
        }
    } else {
        *why = "bad channel binding flag in the GS2 header";
        return -1;
    }
    pos = end + 1;
    end = scram_attr_end(m, len, pos);
    if (end == len) {
        *why = "GS2 header without its end";
        return -1;
    }
    if (end > pos) {
        if (!scram_attr_is(m, pos, end, 'a') || scram_saslname(m + pos + 2, end - pos - 2,
                                                                &s->authzid) < 0) {
            *why = "bad authorization identity in the GS2 header";
            return -1;
        }
    }
    *posp = end + 1;
    buf_append(s->gs2_header, m, *posp);
    /* RFC 5802 6: -PLUS is channel binding or nothing; "y" says the client
     * could bind but thinks we cannot, and we offered -PLUS: a downgrade;
     * "p" under plain SCRAM-SHA-256 is not how a client asks for it. */
    if (s->plus && s->cbflag != 'p') {
        *why = "SCRAM-SHA-256-PLUS without channel binding";
        return -1;
    }
    if (!s->plus && s->cbflag == 'p') {
        *why = "channel binding asked for under SCRAM-SHA-256 (not -PLUS)";
        return -1;
    }
    if (s->cbflag == 'y' && s->cb_type != NULL) {
        *why = "client says it supports channel binding, but did not use -PLUS (downgrade?)";
        return -1;
    }
    return 0;
}

static int scram_first(scram_server_t *s, const char *m, size_t len, buf_t *out,
                       const char **why)
{
    size_t pos, end, bare, i;
    char *user = NULL, *snonce;
    const char *cnonce;
    size_t cnonce_len;
    int rc;

    if (len == 0) {
        *why = "empty client-first message";
        return SCRAM_FAIL;
    }
    if (len > SCRAM_MESSAGE_MAX) {
        *why = "client-first message too long";
        return SCRAM_FAIL;
    }
    if (!saslprep_utf8_valid(m, len)) {
        *why = "client-first message is not UTF-8 text";
        return SCRAM_FAIL;
    }
    if (scram_gs2_header(s, m, len, &pos, why) < 0)
        return SCRAM_FAIL;
    bare = pos;
    end = scram_attr_end(m, len, pos);
    if (scram_attr_is(m, pos, end, 'm')) {
        *why = "mandatory extension (m=) not supported";
        return SCRAM_FAIL;
    }
    if (!scram_attr_is(m, pos, end, 'n') || scram_saslname(m + pos + 2, end - pos - 2, &user) < 0) {
        *why = "bad or missing user name (n=)";
        return SCRAM_FAIL;
    }
    rc = saslprep(user, strlen(user), &s->authcid);
    free(user);
    if (rc < 0) {
        *why = "user name refused by SASLprep";
        return SCRAM_FAIL;
    }
    pos = end + 1;
    end = pos <= len ? scram_attr_end(m, len, pos) : len;
    if (pos > len || !scram_attr_is(m, pos, end, 'r') || end - pos - 2 < 1
        || end - pos - 2 > SCRAM_NONCE_MAX) {
        *why = "bad or missing nonce (r=)";
        return SCRAM_FAIL;
    }
    cnonce = m + pos + 2;
    cnonce_len = end - pos - 2;
    for (i = 0; i < cnonce_len; i++)
        if (cnonce[i] < 0x21 || cnonce[i] > 0x7e) {
            *why = "nonce (r=) is not printable";
            return SCRAM_FAIL;
        }
    while (end < len) {
        pos = end + 1;
        end = scram_attr_end(m, len, pos);
        if ((rc = scram_extension(m, pos, end)) <= 0) {
            *why = rc < 0 ? "mandatory extension (m=) not supported"
                          : "bad extension in the client-first message";
            return SCRAM_FAIL;
        }
    }

    memset(&s->cred, 0, sizeof(s->cred));
    switch (s->lookup(s->ctx, s->authcid, &s->cred)) {
    case SCRAM_LOOKUP_OK:
        if (s->cred.iterations < SCRAM_ITERATIONS_MIN)
            scram_standin(s, "stored SCRAM credentials have too few iterations");
        else if (s->cred.iterations > SCRAM_ITERATIONS_MAX || s->cred.saltlen < 1
                 || s->cred.saltlen > SCRAM_SALT_MAX)
            scram_standin(s, "stored SCRAM credentials are unusable");
        break;
    case SCRAM_LOOKUP_NOTFOUND:
        scram_standin(s, "unknown user");
        break;
    case SCRAM_LOOKUP_TEMPFAIL:
        *why = "credentials lookup failed temporarily";
        return SCRAM_TEMPFAIL;
    default:
        msg_panic("scram: the lookup function gave an unknown result");
    }

    if (s->test_nonce)
        snonce = xstrdup(s->test_nonce);
    else {
        unsigned char r[SCRAM_SNONCE_BYTES];
        buf_t *b = buf_new(0);

        if (RAND_bytes(r, sizeof(r)) != 1)
            msg_fatal("scram: no random bytes for a nonce");
        base64_encode(b, r, sizeof(r));
        snonce = buf_steal(b, NULL);
        buf_free(&b);
    }
    s->nonce = xasprintf("%.*s%s", (int)cnonce_len, cnonce, snonce);
    free(snonce);
    buf_printf(out, "r=%s,s=", s->nonce);
    base64_encode(out, s->cred.salt, s->cred.saltlen);
    buf_printf(out, ",i=%u", s->cred.iterations);
    buf_append(s->auth_message, m + bare, len - bare);
    buf_putc(s->auth_message, ',');
    buf_append(s->auth_message, out->data, out->len);
    buf_putc(s->auth_message, ',');
    s->state = SCRAM_ST_FINAL;
    return SCRAM_CONTINUE;
}

/* Fail the client-final message with server-error e=err. */
static int scram_final_error(buf_t *out, const char *err, const char *reason, const char **why)
{
    buf_reset(out);
    buf_printf(out, "e=%s", err);
    *why = reason;
    return SCRAM_FAIL;
}

static int scram_final(scram_server_t *s, const char *m, size_t len, buf_t *out,
                       const char **why)
{
    size_t pos, end, proof_at = 0, unproven = 0;
    unsigned char sig[SCRAM_KEY_LEN], key[SCRAM_KEY_LEN], h[SCRAM_KEY_LEN];
    buf_t *cb, *proof;
    int cb_ok, nonce_ok, rc, good;

    if (len > SCRAM_MESSAGE_MAX)
        return scram_final_error(out, "invalid-encoding", "client-final message too long", why);
    if (len == 0 || !saslprep_utf8_valid(m, len))
        return scram_final_error(out, "invalid-encoding",
                                 "client-final message is empty or not UTF-8 text", why);
    end = scram_attr_end(m, len, 0);
    if (!scram_attr_is(m, 0, end, 'c'))
        return scram_final_error(out, "invalid-encoding", "no channel binding (c=) first", why);
    cb = buf_new(SCRAM_MESSAGE_MAX);
    rc = base64_decode(cb, m + 2, end - 2);
    cb_ok = rc == 0 && cb->len == s->gs2_header->len + (s->cbflag == 'p' ? s->cb_len : 0)
            && memcmp(cb->data, s->gs2_header->data, s->gs2_header->len) == 0
            && (s->cbflag != 'p'
                || memcmp(cb->data + s->gs2_header->len, s->cb_data, s->cb_len) == 0);
    buf_free(&cb);
    if (rc < 0)
        return scram_final_error(out, "invalid-encoding", "channel binding (c=) is not base64",
                                 why);
    pos = end + 1;
    end = pos <= len ? scram_attr_end(m, len, pos) : len;
    if (pos > len || !scram_attr_is(m, pos, end, 'r'))
        return scram_final_error(out, "invalid-encoding", "no nonce (r=) second", why);
    nonce_ok = end - pos - 2 == strlen(s->nonce)
               && memcmp(m + pos + 2, s->nonce, end - pos - 2) == 0;
    while (end < len) {
        pos = end + 1;
        end = scram_attr_end(m, len, pos);
        if (scram_attr_is(m, pos, end, 'p')) {
            if (end != len)
                return scram_final_error(out, "invalid-encoding", "attributes after the proof",
                                         why);
            proof_at = pos + 2;
            unproven = pos - 1;
            break;
        }
        if ((rc = scram_extension(m, pos, end)) <= 0)
            return rc < 0 ? scram_final_error(out, "extensions-not-supported",
                                              "mandatory extension (m=) not supported", why)
                          : scram_final_error(out, "invalid-encoding",
                                              "bad extension in the client-final message", why);
    }
    if (proof_at == 0)
        return scram_final_error(out, "invalid-encoding", "no proof (p=)", why);
    if (!nonce_ok)
        return scram_final_error(out, "other-error", "wrong nonce", why);
    if (!cb_ok)
        return scram_final_error(out, "channel-bindings-dont-match",
                                 "channel binding (c=) does not match", why);
    proof = buf_new(SCRAM_MESSAGE_MAX);
    if (base64_decode(proof, m + proof_at, len - proof_at) < 0) {
        buf_free(&proof);
        return scram_final_error(out, "invalid-encoding", "proof (p=) is not base64", why);
    }
    if (proof->len != SCRAM_KEY_LEN) {
        buf_free(&proof);
        return scram_final_error(out, "invalid-proof", "proof (p=) of the wrong length", why);
    }

    /* ClientKey = proof XOR HMAC(StoredKey, AuthMessage); H(ClientKey) == StoredKey. */
    buf_append(s->auth_message, m, unproven);
    scram_hmac(s->cred.stored_key, SCRAM_KEY_LEN, s->auth_message->data, s->auth_message->len, sig);
    for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
        key[i] = (unsigned char)proof->data[i] ^ sig[i];
    if (SHA256(key, sizeof(key), h) == NULL)
        msg_fatal("scram: SHA-256 failed");
    good = CRYPTO_memcmp(h, s->cred.stored_key, SCRAM_KEY_LEN) == 0 && s->unusable == NULL;
    explicit_bzero(key, sizeof(key));
    explicit_bzero(sig, sizeof(sig));
    explicit_bzero(proof->data, proof->len);
    buf_free(&proof);
    if (!good)
        return scram_final_error(out, "invalid-proof",
                                 s->unusable ? s->unusable : "wrong password (proof)", why);
    scram_hmac(s->cred.server_key, SCRAM_KEY_LEN, s->auth_message->data, s->auth_message->len, sig);
    buf_append_str(out, "v=");
    base64_encode(out, sig, sizeof(sig));
    explicit_bzero(sig, sizeof(sig));
    return SCRAM_OK;
}

int scram_server_step(scram_server_t *s, const void *in, size_t inlen, int have_input,
                      buf_t *out, const char **why)
{
    int rc;

    if (out->limit && out->limit < SCRAM_MESSAGE_MAX)
        msg_panic("scram_server_step: the output buffer is too small");
    buf_reset(out);
    *why = NULL;
    if (!have_input)
        inlen = 0;
    switch (s->state) {
    case SCRAM_ST_FIRST:
        if (!have_input && !s->prompted) {
            s->prompted = 1;
            return SCRAM_CONTINUE;      /* an empty challenge: the client starts */
        }
        rc = scram_first(s, in, inlen, out, why);
        break;
    case SCRAM_ST_FINAL:
        rc = scram_final(s, in, inlen, out, why);
        break;
    default:
        msg_panic("scram_server_step: the exchange is over");
    }
    if (rc != SCRAM_CONTINUE)
        s->state = SCRAM_ST_DONE;
    if (rc == SCRAM_FAIL && *why == NULL)
        msg_panic("scram_server_step: a failure without a reason");
    return rc;
}
