/*
 * t/unit/sasl.c - unit tests for lib/sasl.c and lib/scram.c's exchange
 * (the SASL server and client halves), and lib/tls.c's channel binding.
 *
 * The server runs against a small in-memory user table through its two
 * callbacks.  SCRAM is driven by a client written here from RFC 5802 with
 * OpenSSL (PBKDF2, HMAC, SHA-256), independent of lib/scram, which can
 * break each message on purpose:
 *   - RFC 7677 section 3's example as an exact vector (nonces injected);
 *   - every error path: GS2 header, channel binding flag against the
 *     mechanism and the connection (the "y" downgrade), c= mismatch,
 *     nonce, proof, extensions (m=), encodings, limits, an unknown user
 *     (a plausible, stable server-first, then failure at the proof), weak
 *     stored credentials, the lookup's TEMPFAIL;
 *   - SASLprep of user names, =2C/=3D escaping, the authzid.
 * PLAIN and LOGIN good and bad cases, the mechanism list and which
 * mechanisms a configuration allows, the client half on its own and
 * against the server, a step after the end (a panic).  (The channel
 * binding data of real TLS connections: t/unit/tls.c.)
 *
 * Long for a test file, because it is mostly a table of cases: every
 * error path of four mechanisms, each with what the log and the client
 * are told.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "base64.h"
#include "buf.h"
#include "msg.h"
#include "sasl.h"
#include "scram.h"
#include "xalloc.h"
#include "../lib/tap.h"
#include "../lib/testlib.h"

/* ------------------------------------------------------- the user table */

static const char rfc_salt_b64[] = "W22ZaJ0SNY7soEsUEjb6gQ==";
static const char rfc_cnonce[] = "rOprNGfwEbeRWgbNEkqO";
static const char rfc_snonce[] = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";

static const struct tuser {
    const char *name;
    const char *password;
    unsigned    iterations;
} users[] = {
    { "user", "pencil", 4096 },         /* RFC 7677's, with its salt */
    { "a,b=c", "pw", 4096 },
    { "IX", "roman", 4096 },
    { "lowiter", "pw", 1000 },
    { "long", "pw", 5000 },
};

static char last_lookup[512], last_verify_user[512], last_verify_pass[512];
static int lookups, verifies;

static const struct tuser *find_user(const char *name)
{
    for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++)
        if (strcmp(users[i].name, name) == 0)
            return &users[i];
    return NULL;
}

static int lookup(void *ctx, const char *authcid, struct scram_credentials *out)
{
    const struct tuser *u = find_user(authcid);

    lookups++;
    snprintf(last_lookup, sizeof(last_lookup), "%s", authcid);
    if (ctx != (void *)lookup)
        return SCRAM_LOOKUP_TEMPFAIL;       /* the wrong ctx came through */
    if (strcmp(authcid, "tempfail") == 0)
        return SCRAM_LOOKUP_TEMPFAIL;
    if (u == NULL)
        return SCRAM_LOOKUP_NOTFOUND;
    if (strcmp(u->name, "user") == 0) {
        buf_t *b = buf_new(0);

        base64_decode(b, rfc_salt_b64, strlen(rfc_salt_b64));
        memcpy(out->salt, b->data, b->len);
        out->saltlen = b->len;
        buf_free(&b);
    } else {
        memcpy(out->salt, "NaCl-NaCl-NaCl-!", 16);
        out->saltlen = 16;
    }
    out->iterations = u->iterations;
    if (scram_sha256_keys(u->password, out->salt, out->saltlen, u->iterations,
                          out->stored_key, out->server_key) < 0)
        return SCRAM_LOOKUP_TEMPFAIL;
    return SCRAM_LOOKUP_OK;
}

static int verify_plain(void *ctx, const char *authcid, const char *password)
{
    const struct tuser *u = find_user(authcid);

    verifies++;
    snprintf(last_verify_user, sizeof(last_verify_user), "%s", authcid);
    snprintf(last_verify_pass, sizeof(last_verify_pass), "%s", password);
    if (ctx != (void *)lookup)
        return SASL_TEMPFAIL;
    if (strcmp(authcid, "tempfail") == 0)
        return SASL_TEMPFAIL;
    return u && strcmp(u->password, password) == 0 ? SASL_OK : SASL_FAIL;
}

/* A configuration: plaintext allowed or not, channel binding or none. */
static struct sasl_server_config config(int plaintext, const char *cb_type,
                                        const unsigned char *cb, size_t cblen)
{
    struct sasl_server_config c = {
        .verify_plain = verify_plain, .scram_lookup = lookup, .ctx = (void *)lookup,
        .plaintext_ok = plaintext, .cb_type = cb_type, .cb_data = cb, .cb_len = cblen,
    };

    return c;
}

static const unsigned char cbdata[32] = "0123456789abcdef0123456789ABCDEF";

/* ------------------------------------------------- a SCRAM test client */

static void b64(buf_t *out, const void *p, size_t n)
{
    char *t = xmalloc(4 * ((n + 2) / 3) + 1);

    EVP_EncodeBlock((unsigned char *)t, p, (int)n);
    buf_append_str(out, t);
    free(t);
}

static void hmac(const unsigned char *key, size_t klen, const void *d, size_t n, unsigned char *o)
{
    unsigned len = 0;

    HMAC(EVP_sha256(), key, (int)klen, d, n, o, &len);
}

/* One exchange, with knobs to break it. */
struct xc {
    const char                       *mech;         /* default SCRAM-SHA-256 */
    const struct sasl_server_config  *cfg;
    const char                       *gs2;          /* default "n,," */
    const char                       *user;         /* n= as sent; default "user" */
    const char                       *password;     /* default "pencil" */
    const char                       *cnonce;       /* default RFC 7677's */
    const char                       *snonce;       /* injected; NULL: random */
    const unsigned char              *cb;           /* bound by the client */
    size_t                            cblen;
    const char                       *first;        /* the whole client-first */
    const char                       *first_extra;  /* appended to it */
    const char                       *final_extra;  /* between r= and p= */
    const char                       *c;            /* c= as sent */
    const char                       *nonce_extra;  /* appended to r= */
    const char                       *proof;        /* p= as sent */
    const char                       *final;        /* the whole client-final */
    int                               initial;      /* client-first as initial response */
    /* results */
    int                               rc1;          /* the client-first step's */
    int                               rc;           /* the last step's */
    char                              server_first[1024];
    char                              out[1024];    /* the last output */
    char                              reason[256];
    char                              authcid[512];
    char                              authzid[512];
    int                               v_ok;         /* out is the v= the client expects */
};

static void xc_keep(struct xc *x, sasl_server_t *s, const buf_t *out)
{
    snprintf(x->out, sizeof(x->out), "%s", buf_cstr(out));
    snprintf(x->reason, sizeof(x->reason), "%s",
             sasl_server_reason(s) ? sasl_server_reason(s) : "");
    snprintf(x->authcid, sizeof(x->authcid), "%s",
             sasl_server_authcid(s) ? sasl_server_authcid(s) : "(none)");
    snprintf(x->authzid, sizeof(x->authzid), "%s",
             sasl_server_authzid(s) ? sasl_server_authzid(s) : "(none)");
}

/* Run x; returns x->rc (-1: the server refused the mechanism). */
static int xc_run(struct xc *x)
{
    struct sasl_server_config def = config(0, NULL, NULL, 0);
    const char *gs2 = x->gs2 ? x->gs2 : "n,,";
    const char *cnonce = x->cnonce ? x->cnonce : rfc_cnonce;
    const char *pw = x->password ? x->password : "pencil";
    sasl_server_t *s = sasl_server_new(x->mech ? x->mech : "SCRAM-SHA-256", x->cfg ? x->cfg : &def);
    buf_t *first = buf_new(0), *out = buf_new(0), *fin = buf_new(0), *am = buf_new(0),
          *salt = buf_new(0), *cbind = buf_new(0);
    unsigned char sp[32], ck[32], sk[32], svk[32], sig[32], proof[32], v[32];
    const char *r, *sv, *iv, *bare;
    char *nonce = NULL;
    int iter;

    x->rc1 = x->rc = -1;
    x->v_ok = 0;
    x->server_first[0] = x->out[0] = '\0';
    if (s == NULL)
        goto done;
    if (x->snonce)
        sasl_server_test_nonce(s, x->snonce);
    if (x->first)
        buf_append_str(first, x->first);
    else
        buf_printf(first, "%sn=%s,r=%s%s", gs2, x->user ? x->user : "user", cnonce,
                   x->first_extra ? x->first_extra : "");
    if (!x->initial && sasl_server_step(s, NULL, 0, 0, out) != SASL_CONTINUE) {
        xc_keep(x, s, out);
        goto done;
    }
    x->rc1 = x->rc = sasl_server_step(s, first->data, first->len, 1, out);
    xc_keep(x, s, out);
    if (x->rc != SASL_CONTINUE)
        goto done;
    snprintf(x->server_first, sizeof(x->server_first), "%s", buf_cstr(out));
    /* r=NONCE,s=SALT,i=N */
    r = strstr(x->server_first, "r=");
    sv = strstr(x->server_first, ",s=");
    iv = strstr(x->server_first, ",i=");
    if (r != x->server_first || sv == NULL || iv == NULL) {
        diag("server-first '%s' is malformed", x->server_first);
        goto done;
    }
    nonce = xstrndup(r + 2, (size_t)(sv - r - 2));
    base64_decode(salt, sv + 3, (size_t)(iv - sv - 3));
    iter = atoi(iv + 3);
    bare = first->data + (x->first ? 0 : strlen(gs2));
    if (x->final)
        buf_append_str(fin, x->final);
    else {
        buf_append_str(cbind, gs2);
        buf_append(cbind, x->cb, x->cblen);
        buf_append_str(fin, "c=");
        if (x->c)
            buf_append_str(fin, x->c);
        else
            b64(fin, cbind->data, cbind->len);
        buf_printf(fin, ",r=%s%s%s", nonce, x->nonce_extra ? x->nonce_extra : "",
                   x->final_extra ? x->final_extra : "");
        buf_printf(am, "%s,%s,%s", bare, x->server_first, buf_cstr(fin));
        PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), (unsigned char *)salt->data, (int)salt->len, iter,
                          EVP_sha256(), 32, sp);
        hmac(sp, 32, "Client Key", 10, ck);
        SHA256(ck, 32, sk);
        hmac(sk, 32, am->data, am->len, sig);
        for (int i = 0; i < 32; i++)
            proof[i] = ck[i] ^ sig[i];
        hmac(sp, 32, "Server Key", 10, svk);
        hmac(svk, 32, am->data, am->len, v);
        buf_append_str(fin, ",p=");
        if (x->proof)
            buf_append_str(fin, x->proof);
        else
            b64(fin, proof, 32);
    }
    x->rc = sasl_server_step(s, fin->data, fin->len, 1, out);
    xc_keep(x, s, out);
    if (x->rc == SASL_OK && !x->final) {
        buf_t *want = buf_new(0);

        buf_append_str(want, "v=");
        b64(want, v, 32);
        x->v_ok = strcmp(buf_cstr(want), x->out) == 0;
        buf_free(&want);
    }
done:
    free(nonce);
    sasl_server_free(&s);
    buf_free(&first);
    buf_free(&out);
    buf_free(&fin);
    buf_free(&am);
    buf_free(&salt);
    buf_free(&cbind);
    return x->rc;
}

/* ------------------------------------------------------------- SCRAM */

static void test_rfc7677(void)
{
    struct sasl_server_config cfg = config(0, NULL, NULL, 0);
    sasl_server_t *s = sasl_server_new("SCRAM-SHA-256", &cfg);
    buf_t *out = buf_new(0);
    static const char first[] = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    static const char final[] = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                                "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";

    sasl_server_test_nonce(s, rfc_snonce);
    is_int(sasl_server_step(s, NULL, 0, 0, out), SASL_CONTINUE, "RFC 7677: no initial response");
    is_int(out->len, 0, "  an empty challenge");
    ok(sasl_server_authcid(s) == NULL, "  no user yet");
    is_int(sasl_server_step(s, first, strlen(first), 1, out), SASL_CONTINUE, "  client-first");
    is_str(buf_cstr(out), "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                          "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "  the RFC's server-first");
    is_str(last_lookup, "user", "  the lookup was for 'user'");
    is_int(sasl_server_step(s, final, strlen(final), 1, out), SASL_OK, "  the RFC's proof checks");
    is_str(buf_cstr(out), "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
           "  the RFC's server-final");
    is_str(sasl_server_authcid(s), "user", "  authenticated as user");
    ok(sasl_server_authzid(s) == NULL, "  no authzid");
    ok(sasl_server_reason(s) == NULL, "  no failure reason");
    is_str(sasl_server_mech(s), "SCRAM-SHA-256", "  mechanism name");
    sasl_server_free(&s);
    ok(s == NULL, "free NULLs the pointer");
    sasl_server_free(&s);

    /* The same as an initial response, and the same bytes with the proof
     * of another password. */
    s = sasl_server_new("scram-sha-256", &cfg);
    sasl_server_test_nonce(s, rfc_snonce);
    is_int(sasl_server_step(s, first, strlen(first), 1, out), SASL_CONTINUE,
           "RFC 7677 as an initial response (lower-case mechanism name)");
    is_int(sasl_server_step(s, final, strlen(final), 1, out), SASL_OK, "  OK");
    sasl_server_free(&s);
    {
        struct xc x = { .snonce = rfc_snonce, .password = "pencil!" };

        is_int(xc_run(&x), SASL_FAIL, "RFC 7677 exchange with a wrong password fails");
        is_str(x.out, "e=invalid-proof", "  e=invalid-proof");
        is_str(x.reason, "wrong password (proof)", "  reason");
        is_str(x.authcid, "user", "  the user is known for the log");
    }
    buf_free(&out);
}

static void test_scram_good(void)
{
    struct sasl_server_config cb = config(0, "tls-exporter", cbdata, sizeof(cbdata));
    struct xc x;

    x = (struct xc){ 0 };
    is_int(xc_run(&x), SASL_OK, "SCRAM with a random server nonce");
    ok(x.v_ok, "  the server-final is the client's v=");
    ok(strncmp(x.server_first, "r=rOprNGfwEbeRWgbNEkqO", 22) == 0
       && strlen(x.server_first) - strlen(strstr(x.server_first, ",s=")) == 2 + 20 + 32,
       "  the server's nonce is 32 characters after the client's");
    {
        struct xc y = { 0 };

        xc_run(&y);
        ok(strcmp(x.server_first, y.server_first) != 0, "  and differs each time");
    }

    x = (struct xc){ .cfg = &cb };
    is_int(xc_run(&x), SASL_OK, "SCRAM-SHA-256 with 'n' where -PLUS is offered");
    x = (struct xc){ .gs2 = "y,," };
    is_int(xc_run(&x), SASL_OK, "'y' where no channel binding is offered");
    ok(x.v_ok, "  v= right");
    x = (struct xc){ .mech = "SCRAM-SHA-256-PLUS", .cfg = &cb, .gs2 = "p=tls-exporter,,",
                     .cb = cbdata, .cblen = sizeof(cbdata) };
    is_int(xc_run(&x), SASL_OK, "SCRAM-SHA-256-PLUS with matching channel binding data");
    ok(x.v_ok, "  v= right");

    x = (struct xc){ .gs2 = "n,a=admin,", .initial = 1 };
    is_int(xc_run(&x), SASL_OK, "an authzid in the GS2 header");
    is_str(x.authzid, "admin", "  authzid");
    is_str(x.authcid, "user", "  authcid");
    x = (struct xc){ .gs2 = "n,a=x=2Cy=3Dz,", .initial = 1 };
    is_int(xc_run(&x), SASL_OK, "an authzid with =2C and =3D");
    is_str(x.authzid, "x,y=z", "  decoded");

    x = (struct xc){ .user = "a=2Cb=3Dc", .password = "pw" };
    is_int(xc_run(&x), SASL_OK, "user name with =2C and =3D");
    is_str(x.authcid, "a,b=c", "  decoded");
    x = (struct xc){ .user = "I\xc2\xadX", .password = "roman" };
    is_int(xc_run(&x), SASL_OK, "user name SASLprep'd: I<soft hyphen>X");
    is_str(last_lookup, "IX", "  looked up as IX");
    is_str(x.authcid, "IX", "  authenticated as IX");
    x = (struct xc){ .user = "\xe2\x85\xa8", .password = "roman" };
    is_int(xc_run(&x), SASL_OK, "user name SASLprep'd: U+2168");
    is_str(x.authcid, "IX", "  is IX");

    x = (struct xc){ .first_extra = ",x=ext" };
    is_int(xc_run(&x), SASL_OK, "an unknown optional extension in client-first is ignored");
    x = (struct xc){ .final_extra = ",x=ext" };
    is_int(xc_run(&x), SASL_OK, "one in client-final too");
    x = (struct xc){ .user = "long", .password = "pw" };
    is_int(xc_run(&x), SASL_OK, "more iterations than 4096 (5000)");
    like(x.server_first, ",i=5000", "  i=5000 sent");
}

static void test_scram_gs2(void)
{
    static const char *const bad_first[] = {
        "x,,n=user,r=abc", "n", "n,", "nn,,n=user,r=abc", ",,n=user,r=abc",
        "p,,n=user,r=abc", "p=,,n=user,r=abc", "n,x=foo,n=user,r=abc", "n,a=,n=user,r=abc",
        "n,a=b=2Xc,n=user,r=abc", "n,a=b=2c,n=user,r=abc", "n,a=b=,n=user,r=abc",
        "F,n,,n=user,r=abc", "n,,", "n,,r=abc", "n,,n=user", "n,,n=user,", "n,,n=user,r=",
        "n,,n=user,x=abc", "n,,n=,r=abc", "n,,n=us=er,r=abc", "n,,n=user,r=a,b",
        "n,,n=user,r=a,=b", "n,,n=user,r=a,1=b", "n,,n=user,r=a,xy=b", "n,,n=user,r=a,",
        "n,,N=user,r=abc", "n,,n=user,R=abc", "n,,n=\x07,r=abc", "n,,n=\xd8\xa7" "1,r=abc",
        "n,,n=u\xc3,r=abc", "n,,n=user,r=a\xc3\xa9",
        "n,,n=user,r=a b", "n,a=\xff,n=user,r=abc",
    };
    struct sasl_server_config cfg = config(0, NULL, NULL, 0);
    buf_t *out = buf_new(0);
    int n = lookups;

    for (size_t i = 0; i < sizeof(bad_first) / sizeof(bad_first[0]); i++) {
        sasl_server_t *s = sasl_server_new("SCRAM-SHA-256", &cfg);

        is_int(sasl_server_step(s, bad_first[i], strlen(bad_first[i]), 1, out), SASL_FAIL,
               "bad client-first %zu refused", i);
        ok(sasl_server_reason(s) != NULL && out->len == 0, "  with a reason, nothing to send");
        sasl_server_free(&s);
    }
    is_int(lookups, n, "none of them reached the lookup");
    {
        sasl_server_t *s = sasl_server_new("SCRAM-SHA-256", &cfg);

        is_int(sasl_server_step(s, "n,,n=us\0er,r=abc", 16, 1, out), SASL_FAIL,
               "a NUL in client-first refused");
        sasl_server_free(&s);
        s = sasl_server_new("SCRAM-SHA-256", &cfg);
        is_int(sasl_server_step(s, NULL, 0, 0, out), SASL_CONTINUE, "no initial response");
        is_int(sasl_server_step(s, NULL, 0, 0, out), SASL_FAIL, "  then none again: refused");
        like(sasl_server_reason(s), "empty", "  reason");
        sasl_server_free(&s);
        s = sasl_server_new("SCRAM-SHA-256", &cfg);
        is_int(sasl_server_step(s, "", 0, 1, out), SASL_FAIL, "an empty initial response refused");
        sasl_server_free(&s);
    }
    buf_free(&out);
}

static void test_scram_channel_binding(void)
{
    struct sasl_server_config cb = config(0, "tls-exporter", cbdata, sizeof(cbdata));
    struct sasl_server_config none = config(0, NULL, NULL, 0);
    unsigned char other[32];
    struct xc x;

    memcpy(other, cbdata, 32);
    other[31] ^= 1;
    x = (struct xc){ .cfg = &cb, .gs2 = "y,," };
    is_int(xc_run(&x), SASL_FAIL, "downgrade: 'y' where -PLUS is offered");
    like(x.reason, "downgrade", "  reason");
    is_int(x.rc1, SASL_FAIL, "  refused at client-first");
    x = (struct xc){ .cfg = &cb, .gs2 = "p=tls-exporter,,", .cb = cbdata, .cblen = 32 };
    is_int(xc_run(&x), SASL_FAIL, "'p' under SCRAM-SHA-256 (not -PLUS)");
    like(x.reason, "not -PLUS", "  reason");
    x = (struct xc){ .mech = "SCRAM-SHA-256-PLUS", .cfg = &cb, .gs2 = "n,," };
    is_int(xc_run(&x), SASL_FAIL, "-PLUS with 'n'");
    x = (struct xc){ .mech = "SCRAM-SHA-256-PLUS", .cfg = &cb, .gs2 = "y,," };
    is_int(xc_run(&x), SASL_FAIL, "-PLUS with 'y'");
    like(x.reason, "without channel binding", "  reason");
    x = (struct xc){ .mech = "SCRAM-SHA-256-PLUS", .cfg = &cb, .gs2 = "p=tls-unique,,",
                     .cb = cbdata, .cblen = 32 };
    is_int(xc_run(&x), SASL_FAIL, "-PLUS with a channel binding type not offered");
    like(x.reason, "unsupported channel binding type", "  reason");
    x = (struct xc){ .mech = "SCRAM-SHA-256-PLUS", .cfg = &cb, .gs2 = "p=tls-exporter,,",
                     .cb = other, .cblen = 32 };
    is_int(xc_run(&x), SASL_FAIL, "-PLUS with other channel binding data");
    is_int(x.rc1, SASL_CONTINUE, "  (client-first was fine)");
    is_str(x.out, "e=channel-bindings-dont-match", "  e=channel-bindings-dont-match");
    x = (struct xc){ .mech = "SCRAM-SHA-256-PLUS", .cfg = &cb, .gs2 = "p=tls-exporter,,",
                     .cb = cbdata, .cblen = 31 };
    is_int(xc_run(&x), SASL_FAIL, "-PLUS with channel binding data cut short");
    is_str(x.out, "e=channel-bindings-dont-match", "  e=channel-bindings-dont-match");
    x = (struct xc){ .mech = "SCRAM-SHA-256-PLUS", .cfg = &cb, .gs2 = "p=tls-exporter,,",
                     .c = "cD10bHMtZXhwb3J0ZXIsLA==" };
    is_int(xc_run(&x), SASL_FAIL, "-PLUS with c= of the header only");
    is_str(x.out, "e=channel-bindings-dont-match", "  e=channel-bindings-dont-match");
    x = (struct xc){ .cfg = &none, .gs2 = "p=tls-exporter,," };
    is_int(xc_run(&x), SASL_FAIL, "'p' where no channel binding is offered");
    like(x.reason, "none is offered", "  reason");
    x = (struct xc){ .mech = "SCRAM-SHA-256-PLUS", .cfg = &none };
    is_int(xc_run(&x), -1, "-PLUS is not even started without channel binding data");
    x = (struct xc){ .c = "eSws" };         /* "y,," where "n,," was sent */
    is_int(xc_run(&x), SASL_FAIL, "c= with another GS2 header than client-first's");
    is_str(x.out, "e=channel-bindings-dont-match", "  e=channel-bindings-dont-match");
    x = (struct xc){ .gs2 = "n,a=admin,", .c = "biws" };
    is_int(xc_run(&x), SASL_FAIL, "c= without client-first's authzid");
    is_str(x.out, "e=channel-bindings-dont-match", "  e=channel-bindings-dont-match");
    x = (struct xc){ .cfg = &cb, .c = "biwsMDEy" };    /* "n,," + cb bytes under 'n' */
    is_int(xc_run(&x), SASL_FAIL, "c= with data under 'n'");
    is_str(x.out, "e=channel-bindings-dont-match", "  e=channel-bindings-dont-match");
}

static void test_scram_final(void)
{
    struct xc x;
    char big[SCRAM_MESSAGE_MAX + 10];

    x = (struct xc){ .nonce_extra = "x" };
    is_int(xc_run(&x), SASL_FAIL, "wrong nonce (one character more)");
    is_str(x.out, "e=other-error", "  e=other-error");
    is_str(x.reason, "wrong nonce", "  reason");
    x = (struct xc){ .final = "c=biws,r=rOprNGfwEbeRWgbNEkqO,"
                              "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=" };
    is_int(xc_run(&x), SASL_FAIL, "the client's nonce alone");
    is_str(x.out, "e=other-error", "  e=other-error");
    x = (struct xc){ .proof = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=" };
    is_int(xc_run(&x), SASL_FAIL, "a proof for another exchange");
    is_str(x.out, "e=invalid-proof", "  e=invalid-proof");
    x = (struct xc){ .proof = "AAAA" };
    is_int(xc_run(&x), SASL_FAIL, "a proof of 3 bytes");
    is_str(x.out, "e=invalid-proof", "  e=invalid-proof");
    x = (struct xc){ .proof = "" };
    is_int(xc_run(&x), SASL_FAIL, "an empty proof");
    is_str(x.out, "e=invalid-proof", "  e=invalid-proof");
    x = (struct xc){ .proof = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ" };
    is_int(xc_run(&x), SASL_FAIL, "a proof without its padding");
    is_str(x.out, "e=invalid-encoding", "  e=invalid-encoding");
    x = (struct xc){ .c = "biws=" };
    is_int(xc_run(&x), SASL_FAIL, "c= that is not base64");
    is_str(x.out, "e=invalid-encoding", "  e=invalid-encoding");
    x = (struct xc){ .c = " biws" };
    is_int(xc_run(&x), SASL_FAIL, "c= with a blank");
    is_str(x.out, "e=invalid-encoding", "  e=invalid-encoding");
    x = (struct xc){ .final_extra = ",m=must" };
    is_int(xc_run(&x), SASL_FAIL, "m= in client-final");
    is_str(x.out, "e=extensions-not-supported", "  e=extensions-not-supported");
    x = (struct xc){ .final_extra = ",=x" };
    is_int(xc_run(&x), SASL_FAIL, "a malformed extension in client-final");
    is_str(x.out, "e=invalid-encoding", "  e=invalid-encoding");
    x = (struct xc){ .first_extra = ",m=must" };
    is_int(xc_run(&x), SASL_FAIL, "m= after the nonce in client-first");
    like(x.reason, "m=", "  reason");
    x = (struct xc){ .first = "n,,m=must,n=user,r=abc" };
    is_int(xc_run(&x), SASL_FAIL, "m= before the user name (reserved-mext)");
    like(x.reason, "m=", "  reason");

    static const char *const bad_final[] = {
        "", "r=x,c=biws,p=AAAA", "c=biws", "c=biws,r=x", "c=biws,p=AAAA",
        "c=biws,r=x,p=AAAA,x=y", "c=biws,r=x,p=AAAA,", "c=biws,,r=x,p=AAAA", "c=b\xffws,r=x,p=A",
    };
    for (size_t i = 0; i < sizeof(bad_final) / sizeof(bad_final[0]); i++) {
        x = (struct xc){ .final = bad_final[i] };
        is_int(xc_run(&x), SASL_FAIL, "malformed client-final %zu", i);
        ok(strncmp(x.out, "e=", 2) == 0, "  with an e= (%s)", x.out);
    }
    x = (struct xc){ .final = "c=biws,r=x,p=AAAA" };
    xc_run(&x);
    is_str(x.out, "e=other-error", "  a well-formed one with a wrong nonce: e=other-error");

    memset(big, 'a', sizeof(big));
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "c=biws,r=", 9);
    x = (struct xc){ .final = big };
    is_int(xc_run(&x), SASL_FAIL, "client-final over SCRAM_MESSAGE_MAX");
    is_str(x.out, "e=invalid-encoding", "  e=invalid-encoding");
    memcpy(big, "n,,n=user,r=", 12);
    x = (struct xc){ .first = big };
    is_int(xc_run(&x), SASL_FAIL, "client-first over SCRAM_MESSAGE_MAX");
    like(x.reason, "too long", "  reason");
    {
        char nonce[SCRAM_NONCE_MAX + 2];

        memset(nonce, 'n', sizeof(nonce));
        nonce[SCRAM_NONCE_MAX + 1] = '\0';
        x = (struct xc){ .cnonce = nonce };
        is_int(xc_run(&x), SASL_FAIL, "a client nonce over SCRAM_NONCE_MAX");
        nonce[SCRAM_NONCE_MAX] = '\0';
        x = (struct xc){ .cnonce = nonce };
        is_int(xc_run(&x), SASL_OK, "  one of SCRAM_NONCE_MAX is fine");
    }
    {
        char name[3 * 256 + 1];

        memset(name, 'u', 256);
        name[256] = '\0';
        x = (struct xc){ .user = name };
        is_int(xc_run(&x), SASL_FAIL, "a user name over 255 octets");
        name[255] = '\0';
        x = (struct xc){ .user = name };
        is_int(xc_run(&x), SASL_FAIL, "one of 255 octets goes to the lookup (unknown there)");
        is_str(x.reason, "unknown user", "  reason");
        for (int i = 0; i < 255; i++)
            memcpy(name + 3 * i, "=2C", 3);
        name[3 * 255] = '\0';
        x = (struct xc){ .user = name };
        is_int(xc_run(&x), SASL_FAIL, "255 escaped commas: within the limit");
        is_str(x.reason, "unknown user", "  reason");
    }
}

static void test_scram_unknown(void)
{
    struct xc x, y, z;
    const char *s1, *s2;
    buf_t *salt = buf_new(0);

    x = (struct xc){ .user = "nobody", .password = "whatever" };
    is_int(xc_run(&x), SASL_FAIL, "an unknown user fails");
    is_int(x.rc1, SASL_CONTINUE, "  but only at the proof");
    is_str(x.out, "e=invalid-proof", "  e=invalid-proof, as a wrong password");
    is_str(x.reason, "unknown user", "  the log knows why");
    is_str(x.authcid, "nobody", "  and who");
    like(x.server_first, ",i=4096", "  server-first with the default iterations");
    s1 = strstr(x.server_first, ",s=");
    base64_decode(salt, s1 + 3, (size_t)(strstr(s1, ",i=") - s1 - 3));
    is_int(salt->len, SCRAM_SALT_LEN, "  and a salt of the usual length");
    y = (struct xc){ .user = "nobody", .password = "other" };
    xc_run(&y);
    s1 = strstr(x.server_first, ",s=");
    s2 = strstr(y.server_first, ",s=");
    is_str(s2, s1, "  the same salt for the same name, every time");
    z = (struct xc){ .user = "somebody" };
    xc_run(&z);
    ok(strcmp(strstr(z.server_first, ",s="), s1) != 0, "  another for another name");

    x = (struct xc){ .user = "lowiter", .password = "pw" };
    is_int(xc_run(&x), SASL_FAIL, "stored credentials with 1000 iterations refused");
    is_int(x.rc1, SASL_CONTINUE, "  at the proof");
    like(x.server_first, ",i=4096", "  after a server-first like an unknown user's");
    like(x.reason, "too few iterations", "  reason");

    x = (struct xc){ .user = "tempfail" };
    is_int(xc_run(&x), SASL_TEMPFAIL, "the lookup's TEMPFAIL");
    like(x.reason, "temporarily", "  reason");
    buf_free(&salt);
}

/* ------------------------------------------------------- PLAIN, LOGIN */

static int plain(const char *msg, size_t len, int plaintext, char *reason, size_t rlen)
{
    struct sasl_server_config cfg = config(plaintext, NULL, NULL, 0);
    sasl_server_t *s = sasl_server_new("PLAIN", &cfg);
    buf_t *out = buf_new(0);
    int rc;

    if (s == NULL) {
        buf_free(&out);
        return -1;
    }
    rc = sasl_server_step(s, msg, len, 1, out);
    if (rc == SASL_OK)
        snprintf(reason, rlen, "%s|%s", sasl_server_authcid(s),
                 sasl_server_authzid(s) ? sasl_server_authzid(s) : "(none)");
    else
        snprintf(reason, rlen, "%s", sasl_server_reason(s) ? sasl_server_reason(s) : "(null)");
    if (out->len != 0)
        rc = 99;                            /* PLAIN never answers with data */
    sasl_server_free(&s);
    buf_free(&out);
    return rc;
}

#define PLAIN_(lit) (lit), sizeof(lit) - 1

static void test_plain(void)
{
    char why[600], msg[1024];
    struct sasl_server_config cfg = config(1, NULL, NULL, 0);
    sasl_server_t *s;
    buf_t *out = buf_new(0);
    size_t n;

    is_int(plain(PLAIN_("\0user\0pencil"), 1, why, sizeof(why)), SASL_OK, "PLAIN good");
    is_str(why, "user|(none)", "  authcid, no authzid");
    is_str(last_verify_pass, "pencil", "  the callback saw the password");
    is_int(plain(PLAIN_("admin\0user\0pencil"), 1, why, sizeof(why)), SASL_OK,
           "PLAIN with an authzid");
    is_str(why, "user|admin", "  authzid");
    is_int(plain(PLAIN_("\0\xe2\x85\xa8\0roman"), 1, why, sizeof(why)), SASL_OK,
           "PLAIN user name SASLprep'd (U+2168)");
    is_str(last_verify_user, "IX", "  the callback saw IX");
    is_int(plain(PLAIN_("\0user\0pencil"), 0, why, sizeof(why)), -1,
           "PLAIN not offered without plaintext_ok");
    is_int(plain(PLAIN_("\0user\0wrong"), 1, why, sizeof(why)), SASL_FAIL, "wrong password");
    is_str(why, "wrong user name or password", "  reason");
    ok(strstr(why, "wrong") && !strstr(why, "pencil"), "  no password in it");
    is_int(plain(PLAIN_("\0nobody\0pencil"), 1, why, sizeof(why)), SASL_FAIL, "unknown user");
    is_int(plain(PLAIN_("\0tempfail\0x"), 1, why, sizeof(why)), SASL_TEMPFAIL, "TEMPFAIL");
    like(why, "temporarily", "  reason");

    static const struct { const char *m; size_t len; const char *why; } bad[] = {
        { PLAIN_(""), "NULs" }, { PLAIN_("userpencil"), "NULs" },
        { PLAIN_("user\0pencil"), "NULs" },
        { PLAIN_("\0\0pencil"), "empty user" }, { PLAIN_("\0user\0"), "empty password" },
        { PLAIN_("\0user\0pen\0cil"), "more than two" }, { PLAIN_("\0\0"), "empty user" },
        { PLAIN_("\xff\0user\0pencil"), "authorization identity is not UTF-8" },
        { PLAIN_("\0us\xc3\0pencil"), "user name is not UTF-8" },
        { PLAIN_("\0user\0pen\xc0\xafil"), "password is not UTF-8" },
        { PLAIN_("\0us\x07" "er\0pencil"), "SASLprep" },
        { PLAIN_("\0\xc2\xad\0pencil"), "SASLprep" },
    };
    n = verifies;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        is_int(plain(bad[i].m, bad[i].len, 1, why, sizeof(why)), SASL_FAIL, "bad PLAIN %zu", i);
        like(why, bad[i].why, "  reason");
    }
    is_int(verifies, n, "none reached the callback");

    /* The 255-octet limits, each field. */
    for (int field = 0; field < 3; field++) {
        for (size_t len = 255; len <= 256; len++) {
            size_t pos = 0;

            for (int f = 0; f < 3; f++) {
                size_t l = f == field ? len : (f == 0 ? 0 : 1);

                memset(msg + pos, 'a', l);
                pos += l;
                if (f < 2)
                    msg[pos++] = '\0';
            }
            n = verifies;
            is_int(plain(msg, pos, 1, why, sizeof(why)), SASL_FAIL,
                   "PLAIN field %d of %zu octets fails", field, len);
            if (len == 255)
                is_int(verifies, n + 1, "  at the password check");
            else
                like(why, "longer than 255", "  as too long");
        }
    }

    /* Without an initial response: an empty challenge first. */
    s = sasl_server_new("plain", &cfg);
    is_int(sasl_server_step(s, NULL, 0, 0, out), SASL_CONTINUE, "PLAIN without initial response");
    is_int(out->len, 0, "  an empty challenge");
    is_int(sasl_server_step(s, "\0user\0pencil", 12, 1, out), SASL_OK, "  then the credentials");
    is_str(sasl_server_mech(s), "PLAIN", "  mechanism name");
    sasl_server_free(&s);
    s = sasl_server_new("PLAIN", &cfg);
    is_int(sasl_server_step(s, "", 0, 1, out), SASL_FAIL, "PLAIN with an empty initial response");
    sasl_server_free(&s);
    buf_free(&out);
}

static void test_login(void)
{
    struct sasl_server_config cfg = config(1, NULL, NULL, 0);
    sasl_server_t *s;
    buf_t *out = buf_new(0);
    char longname[300];

    s = sasl_server_new("LOGIN", &cfg);
    is_int(sasl_server_step(s, NULL, 0, 0, out), SASL_CONTINUE, "LOGIN starts");
    is_str(buf_cstr(out), "Username:", "  Username:");
    is_int(sasl_server_step(s, "user", 4, 1, out), SASL_CONTINUE, "  user name");
    is_str(buf_cstr(out), "Password:", "  Password:");
    is_int(sasl_server_step(s, "pencil", 6, 1, out), SASL_OK, "  password: OK");
    is_int(out->len, 0, "  nothing more to send");
    is_str(sasl_server_authcid(s), "user", "  authcid");
    ok(sasl_server_authzid(s) == NULL, "  no authzid");
    sasl_server_free(&s);

    s = sasl_server_new("login", &cfg);
    is_int(sasl_server_step(s, "\xe2\x85\xa8", 3, 1, out), SASL_CONTINUE,
           "LOGIN with the user name as initial response");
    is_str(buf_cstr(out), "Password:", "  Password:");
    is_int(sasl_server_step(s, "roman", 5, 1, out), SASL_OK, "  OK");
    is_str(sasl_server_authcid(s), "IX", "  SASLprep'd");
    sasl_server_free(&s);

    s = sasl_server_new("LOGIN", &cfg);
    sasl_server_step(s, NULL, 0, 0, out);
    sasl_server_step(s, "user", 4, 1, out);
    is_int(sasl_server_step(s, "pencil2", 7, 1, out), SASL_FAIL, "LOGIN wrong password");
    is_str(sasl_server_reason(s), "wrong user name or password", "  reason");
    sasl_server_free(&s);

    memset(longname, 'x', sizeof(longname));
    {
        static const struct {
            const char *u;
            size_t      ulen;
            const char *p;
            size_t      plen;
            const char *why;
        } bad[] = {
            { "", 0, NULL, 0, "empty user" },
            { "us\xc3", 3, NULL, 0, "not UTF-8" },
            { "us\0er", 5, NULL, 0, "not UTF-8" },
            { "us\x01", 3, NULL, 0, "SASLprep" },
            { "user", 4, "", 0, "empty password" },
            { "user", 4, "pen\0cil", 7, "NUL in the password" },
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            int rc;

            s = sasl_server_new("LOGIN", &cfg);
            sasl_server_step(s, NULL, 0, 0, out);
            rc = sasl_server_step(s, bad[i].u, bad[i].ulen, 1, out);
            if (bad[i].p)
                rc = sasl_server_step(s, bad[i].p, bad[i].plen, 1, out);
            is_int(rc, SASL_FAIL, "bad LOGIN %zu", i);
            like(sasl_server_reason(s), bad[i].why, "  reason");
            sasl_server_free(&s);
        }
    }
    s = sasl_server_new("LOGIN", &cfg);
    is_int(sasl_server_step(s, longname, 256, 1, out), SASL_FAIL, "LOGIN user name of 256 octets");
    sasl_server_free(&s);
    s = sasl_server_new("LOGIN", &cfg);
    sasl_server_step(s, "user", 4, 1, out);
    is_int(sasl_server_step(s, longname, 256, 1, out), SASL_FAIL, "LOGIN password of 256 octets");
    like(sasl_server_reason(s), "longer than 255", "  reason");
    sasl_server_free(&s);
    s = sasl_server_new("LOGIN", &cfg);
    sasl_server_step(s, "tempfail", 8, 1, out);
    is_int(sasl_server_step(s, "x", 1, 1, out), SASL_TEMPFAIL, "LOGIN TEMPFAIL");
    sasl_server_free(&s);
    buf_free(&out);
}

/* --------------------------------------------- mechanisms, misuse */

static void test_mechs(void)
{
    struct sasl_server_config c;
    buf_t *b = buf_new(0), *small = buf_new(10);

    c = config(1, "tls-exporter", cbdata, 32);
    is_int(sasl_server_mechs(&c, b), 4, "TLS with channel binding: four mechanisms");
    is_str(buf_cstr(b), "SCRAM-SHA-256-PLUS SCRAM-SHA-256 PLAIN LOGIN", "  strongest first");
    buf_reset(b);
    c = config(0, NULL, NULL, 0);
    is_int(sasl_server_mechs(&c, b), 1, "no TLS: one");
    is_str(buf_cstr(b), "SCRAM-SHA-256", "  SCRAM-SHA-256 only");
    buf_reset(b);
    c = config(1, NULL, NULL, 0);
    is_int(sasl_server_mechs(&c, b), 3, "plaintext allowed, no channel binding");
    is_str(buf_cstr(b), "SCRAM-SHA-256 PLAIN LOGIN", "  no -PLUS");
    buf_reset(b);
    c = config(1, "tls-unique", cbdata, 0);
    sasl_server_mechs(&c, b);
    is_str(buf_cstr(b), "SCRAM-SHA-256 PLAIN LOGIN", "empty channel binding data: no -PLUS");
    buf_reset(b);
    c = config(1, "tls-exporter", cbdata, 32);
    c.scram_lookup = NULL;
    sasl_server_mechs(&c, b);
    is_str(buf_cstr(b), "PLAIN LOGIN", "no SCRAM lookup: no SCRAM");
    ok(sasl_server_new("SCRAM-SHA-256", &c) == NULL, "  and it is not started");
    buf_reset(b);
    c = config(1, NULL, NULL, 0);
    c.verify_plain = NULL;
    sasl_server_mechs(&c, b);
    is_str(buf_cstr(b), "SCRAM-SHA-256", "no verify_plain: no PLAIN nor LOGIN");
    ok(sasl_server_new("LOGIN", &c) == NULL, "  and LOGIN is not started");
    buf_reset(b);
    c.scram_lookup = NULL;
    is_int(sasl_server_mechs(&c, b), 0, "no callbacks: none");
    is_int(b->len, 0, "  nothing appended");
    c = config(1, "tls-exporter", cbdata, 32);
    buf_append_str(small, "x");
    is_int(sasl_server_mechs(&c, small), -1, "a list past the buffer's limit");
    is_str(buf_cstr(small), "x", "  buffer unchanged");
    buf_reset(b);
    is_int(sasl_server_mechs_relayed(1, 1, b), 4, "relayed to authd, TLS with channel binding");
    is_str(buf_cstr(b), "SCRAM-SHA-256-PLUS SCRAM-SHA-256 PLAIN LOGIN", "  all four");
    buf_reset(b);
    sasl_server_mechs_relayed(0, 0, b);
    is_str(buf_cstr(b), "SCRAM-SHA-256", "  no plaintext, no channel binding: SCRAM only");
    buf_reset(b);
    sasl_server_mechs_relayed(1, 0, b);
    is_str(buf_cstr(b), "SCRAM-SHA-256 PLAIN LOGIN", "  plaintext, no channel binding");
    buf_reset(b);
    ok(sasl_server_offers_relayed(1, 0, "plain") && !sasl_server_offers_relayed(0, 0, "PLAIN"),
       "  PLAIN is one of them only where plaintext is allowed");
    ok(!sasl_server_offers_relayed(1, 0, "SCRAM-SHA-256-PLUS")
       && sasl_server_offers_relayed(1, 1, "SCRAM-SHA-256-PLUS"), "  -PLUS only with binding");
    ok(!sasl_server_offers_relayed(1, 1, "CRAM-MD5"), "  an unknown one never");

    ok(sasl_server_new("CRAM-MD5", &c) == NULL, "unknown mechanism: NULL");
    ok(sasl_server_new("PLAINX", &c) == NULL, "  PLAINX too");
    ok(sasl_server_new("", &c) == NULL, "  and the empty name");
    c = config(0, "tls-exporter", cbdata, 32);
    ok(sasl_server_new("PLAIN", &c) == NULL, "PLAIN without plaintext_ok: NULL");
    {
        sasl_server_t *s = sasl_server_new("scram-sha-256-plus", &c);

        ok(s != NULL, "  starts (any case)");
        if (s)
            is_str(sasl_server_mech(s), "SCRAM-SHA-256-PLUS", "  its name");
        sasl_server_free(&s);
    }
    buf_free(&b);
    buf_free(&small);
}

static void step_after_end(void *arg)
{
    sasl_server_t *s = arg;
    buf_t *out = buf_new(0);

    sasl_server_step(s, "x", 1, 1, out);
}

static void test_misuse(void)
{
    struct sasl_server_config cfg = config(1, NULL, NULL, 0);
    sasl_server_t *s = sasl_server_new("PLAIN", &cfg);
    buf_t *out = buf_new(0);

    sasl_server_step(s, "\0user\0pencil", 12, 1, out);
    ok(dies_with_abort_arg(step_after_end, s), "a step after OK panics");
    sasl_server_free(&s);
    s = sasl_server_new("SCRAM-SHA-256", &cfg);
    sasl_server_step(s, "x", 1, 1, out);
    ok(dies_with_abort_arg(step_after_end, s), "a step after FAIL panics (SCRAM)");
    sasl_server_free(&s);
    buf_free(&out);
}

/* ------------------------------------------------------------- client */

static void test_client(void)
{
    sasl_client_t *c;
    buf_t *out = buf_new(0), *small = buf_new(5);
    struct sasl_server_config cfg = config(1, NULL, NULL, 0);

    ok(sasl_client_new("CRAM-MD5", "u", "p", NULL) == NULL, "client: unknown mechanism");
    ok(sasl_client_new("SCRAM-SHA-256", "u", "p", NULL) == NULL, "client: no SCRAM client");

    c = sasl_client_new("PLAIN", "user", "pencil", NULL);
    is_str(sasl_client_mech(c), "PLAIN", "client PLAIN");
    is_int(sasl_client_start(c, out), 1, "  has an initial response");
    ok(out->len == 12 && memcmp(out->data, "\0user\0pencil", 12) == 0, "  NUL user NUL pass");
    is_int(sasl_client_step(c, "", 0, out), SASL_FAIL, "  a challenge after it: no answer");
    like(sasl_client_reason(c), "after the PLAIN credentials", "  reason");
    sasl_client_free(&c);
    ok(c == NULL, "  free NULLs the pointer");

    c = sasl_client_new("plain", "user", "pencil", "admin");
    sasl_client_start(c, out);
    ok(out->len == 17 && memcmp(out->data, "admin\0user\0pencil", 17) == 0, "PLAIN with authzid");
    sasl_client_free(&c);

    c = sasl_client_new("PLAIN", "user", "pencil", "");
    is_int(sasl_client_step(c, "", 0, out), SASL_CONTINUE, "PLAIN without initial response:"
           " the empty challenge gets the credentials");
    ok(out->len == 12 && memcmp(out->data, "\0user\0pencil", 12) == 0, "  the same message");
    is_int(sasl_client_start(c, out), 0, "  start after that has nothing");
    sasl_client_free(&c);
    c = sasl_client_new("PLAIN", "user", "pencil", NULL);
    is_int(sasl_client_step(c, "x", 1, out), SASL_FAIL, "PLAIN: a challenge with data refused");
    sasl_client_free(&c);
    c = sasl_client_new("PLAIN", "user", "pencil", NULL);
    is_int(sasl_client_start(c, small), 0, "PLAIN: no initial response past the buffer limit");
    is_int(small->len, 0, "  nothing in the buffer");
    is_int(sasl_client_step(c, "", 0, small), SASL_FAIL, "  and then a failure");
    like(sasl_client_reason(c), "do not fit", "  reason");
    sasl_client_free(&c);

    c = sasl_client_new("LOGIN", "user", "pencil", NULL);
    is_int(sasl_client_start(c, out), 0, "client LOGIN has no initial response");
    is_int(sasl_client_step(c, "Username:", 9, out), SASL_CONTINUE, "  first challenge");
    is_str(buf_cstr(out), "user", "  the user name");
    is_int(sasl_client_step(c, "Password:", 9, out), SASL_CONTINUE, "  second");
    is_str(buf_cstr(out), "pencil", "  the password");
    is_int(sasl_client_step(c, "More:", 5, out), SASL_FAIL, "  a third: no answer");
    like(sasl_client_reason(c), "third", "  reason");
    sasl_client_free(&c);

    /* Each client against the server. */
    for (int k = 0; k < 2; k++) {
        const char *mech = k ? "LOGIN" : "PLAIN";
        sasl_server_t *s = sasl_server_new(mech, &cfg);
        buf_t *resp = buf_new(0), *chal = buf_new(0);
        int rc, rounds = 0;

        c = sasl_client_new(mech, "user", "pencil", NULL);
        if (sasl_client_start(c, resp))
            rc = sasl_server_step(s, resp->data, resp->len, 1, chal);
        else
            rc = sasl_server_step(s, NULL, 0, 0, chal);
        while (rc == SASL_CONTINUE && rounds++ < 5) {
            if (sasl_client_step(c, chal->data, chal->len, resp) != SASL_CONTINUE)
                break;
            rc = sasl_server_step(s, resp->data, resp->len, 1, chal);
        }
        is_int(rc, SASL_OK, "client %s against the server: OK", mech);
        is_str(sasl_server_authcid(s), "user", "  as user");
        sasl_client_free(&c);
        sasl_server_free(&s);
        buf_free(&resp);
        buf_free(&chal);
    }
    buf_free(&out);
    buf_free(&small);
}

int main(void)
{
    alarm(60);
    msg_init("sasl-test", MSG_STDERR);
    test_rfc7677();
    test_scram_good();
    test_scram_gs2();
    test_scram_channel_binding();
    test_scram_final();
    test_scram_unknown();
    test_plain();
    test_login();
    test_mechs();
    test_misuse();
    test_client();
    return done_testing();
}
