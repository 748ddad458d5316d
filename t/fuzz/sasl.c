/*
 * t/fuzz/sasl.c - libFuzzer harness for lib/sasl.c's server and client
 * halves and lib/scram.c's exchange (the decoders of PLAIN, LOGIN and the
 * SCRAM messages: GS2 header, saslnames, attributes, base64 inside).
 *
 * Input layout: byte 0 chooses (bits 0-1) the mechanism: SCRAM-SHA-256,
 * SCRAM-SHA-256-PLUS, PLAIN, LOGIN; bit 2: the connection has channel
 * binding data; bit 3: its type is tls-unique (else tls-exporter); bit 4:
 * no initial response (the first step has no input); bit 5: run the
 * client half instead (PLAIN or LOGIN; bit 6: with an authzid), against
 * the messages as challenges.  The rest is
 * the client's messages, separated by 0xff (never in UTF-8, so no real
 * message loses anything).  So that a fuzzer can get past SCRAM's proof,
 * the messages after server-first are templates: byte 0x01 stands for
 * the combined nonce, 0x02 for the right c= value (base64 of the GS2
 * header client-first sent plus the channel binding data), and 0x03 at
 * the very end for ",p=" and the right proof for password "pencil" over
 * what precedes it.
 *
 * Checked: every step gives one of the four results; a failure always
 * has a reason, never holding the password, nor does PLAIN's or LOGIN's
 * output; SCRAM's first challenge
 * echoes the client's nonce; OK only when the password was right: for
 * PLAIN and LOGIN the callback said so, for SCRAM the harness's proof was
 * used, the v= is the one the harness computes, and the user is the one
 * with credentials.  The client half answers any challenges without
 * breaking.  Leaks are found by ASan.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "base64.h"
#include "buf.h"
#define FUZZ_OWN_INIT
#include "fuzzlib.h"
#include "sasl.h"
#include "scram.h"

static const unsigned char salt[16] = "fuzz-salt-16-byt";
static unsigned char stored_key[32], server_key[32], salted[32];
static bool plain_ok;              /* verify_plain said OK in this run */
static const unsigned char cb[32] = "channel-binding-data-32-bytes...";

static int verify_plain(void *ctx, const char *authcid, const char *password)
{
    (void)ctx;
    if (strcmp(authcid, "tempfail") == 0)
        return SASL_TEMPFAIL;
    if (strcmp(authcid, "user") == 0 && strcmp(password, "pencil") == 0) {
        plain_ok = true;
        return SASL_OK;
    }
    return SASL_FAIL;
}

static int lookup(void *ctx, const char *authcid, struct scram_credentials *out)
{
    (void)ctx;
    if (strcmp(authcid, "tempfail") == 0)
        return SCRAM_LOOKUP_TEMPFAIL;
    if (strcmp(authcid, "weak") == 0) {
        out->iterations = 1;
        out->saltlen = 4;
        return SCRAM_LOOKUP_OK;
    }
    if (strcmp(authcid, "user") != 0)
        return SCRAM_LOOKUP_NOTFOUND;
    out->iterations = 4096;
    memcpy(out->salt, salt, sizeof(salt));
    out->saltlen = sizeof(salt);
    memcpy(out->stored_key, stored_key, 32);
    memcpy(out->server_key, server_key, 32);
    return SCRAM_LOOKUP_OK;
}

static void hmac(const unsigned char *key, const void *d, size_t n, unsigned char *o)
{
    unsigned len = 0;

    HMAC(EVP_sha256(), key, 32, d, n, o, &len);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    if (scram_sha256_keys("pencil", salt, sizeof(salt), 4096, stored_key, server_key) < 0)
        abort();
    PKCS5_PBKDF2_HMAC("pencil", 6, salt, sizeof(salt), 4096, EVP_sha256(), 32, salted);
    return 0;
}

/* Expand a client-final template (see the top); *proved: the proof token
 * was used; auth_message gets its last part. */
static void expand(const uint8_t *m, size_t n, const char *nonce, const buf_t *gs2,
                   bool plus, const buf_t *am_head, buf_t *out, buf_t *am, bool *proved)
{
    *proved = false;
    for (size_t i = 0; i < n; i++) {
        if (m[i] == 0x01)
            buf_append_str(out, nonce);
        else if (m[i] == 0x02) {
            buf_t *raw = buf_new(0);

            buf_append(raw, gs2->data, gs2->len);
            if (plus)
                buf_append(raw, cb, sizeof(cb));
            base64_encode(out, raw->data, raw->len);
            buf_free(&raw);
        } else if (m[i] == 0x03 && i == n - 1) {
            unsigned char ck[32], sk[32], sig[32], proof[32];

            buf_append(am, am_head->data, am_head->len);
            buf_append(am, out->data, out->len);
            hmac(salted, "Client Key", 10, ck);
            SHA256(ck, 32, sk);
            hmac(sk, am->data, am->len, sig);
            for (int k = 0; k < 32; k++)
                proof[k] = ck[k] ^ sig[k];
            buf_append_str(out, ",p=");
            base64_encode(out, proof, 32);
            *proved = true;
        } else
            buf_putc(out, m[i]);
    }
}

static void run_client(int kind, bool authzid, const uint8_t *p, size_t n)
{
    sasl_client_t *c = sasl_client_new(kind == 2 ? "PLAIN" : "LOGIN", "user", "pencil",
                                       authzid ? "admin" : NULL);
    buf_t *out = buf_new(0);
    size_t pos = 0;
    int answers = 0;

    if (sasl_client_start(c, out))
        answers++;
    while (pos <= n) {
        const uint8_t *sep = memchr(p + pos, 0xff, n - pos);
        size_t len = sep ? (size_t)(sep - (p + pos)) : n - pos;

        if (sasl_client_step(c, p + pos, len, out) != SASL_CONTINUE) {
            if (sasl_client_reason(c) == NULL)
                fuzz_fail("client failure without a reason");
            break;
        }
        if (++answers > 2)
            fuzz_fail("client answered %d times", answers);
        pos += len + 1;
    }
    sasl_client_free(&c);
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const mechs[] = { "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "PLAIN", "LOGIN" };
    struct sasl_server_config cfg = {
        .verify_plain = verify_plain, .scram_lookup = lookup, .plaintext_ok = 1,
    };
    const uint8_t *p;
    size_t n, pos = 0;
    int kind, step = 0, rc = SASL_CONTINUE;
    bool scram, plus, proved = false;
    sasl_server_t *s;
    buf_t *out, *gs2, *am, *msg, *want;
    char *nonce = NULL;

    if (size < 1)
        return 0;
    kind = data[0] & 3;
    p = data + 1;
    n = size - 1;
    if (data[0] & 0x20) {
        if (kind >= 2)
            run_client(kind, (data[0] & 0x40) != 0, p, n);
        return 0;
    }
    if (data[0] & 4) {
        cfg.cb_type = (data[0] & 8) ? "tls-unique" : "tls-exporter";
        cfg.cb_data = cb;
        cfg.cb_len = sizeof(cb);
    }
    scram = kind < 2;
    plus = (data[0] & 4) != 0;
    s = sasl_server_new(mechs[kind], &cfg);
    if (s == NULL) {
        if (kind != 1 || (data[0] & 4))
            fuzz_fail("%s not started", mechs[kind]);
        return 0;
    }
    plain_ok = false;
    out = buf_new(0);
    gs2 = buf_new(0);
    am = buf_new(0);
    msg = buf_new(0);
    want = buf_new(0);
    if (data[0] & 0x10) {
        rc = sasl_server_step(s, NULL, 0, 0, out);
        if (rc != SASL_CONTINUE)
            fuzz_fail("no initial response: %d", rc);
        if (kind == 3 ? strcmp(buf_cstr(out), "Username:") != 0 : out->len != 0)
            fuzz_fail("first challenge '%s'", buf_cstr(out));
    }
    while (rc == SASL_CONTINUE && pos <= n) {
        const uint8_t *sep = memchr(p + pos, 0xff, n - pos);
        size_t len = sep ? (size_t)(sep - (p + pos)) : n - pos;

        buf_reset(msg);
        if (scram && step == 1) {
            buf_reset(am);
            expand(p + pos, len, nonce, gs2, plus, want, msg, am, &proved);
        } else
            buf_append(msg, p + pos, len);
        rc = sasl_server_step(s, msg->data, msg->len, 1, out);
        if (rc != SASL_CONTINUE && rc != SASL_OK && rc != SASL_FAIL && rc != SASL_TEMPFAIL)
            fuzz_fail("step result %d", rc);
        /* SCRAM's server never has the password (only keys), and echoes
         * the client's nonce, which may hold anything. */
        if (!scram && memmem(out->data, out->len, "pencil", 6))
            fuzz_fail("the password in the output");
        if (rc == SASL_FAIL || rc == SASL_TEMPFAIL) {
            const char *why = sasl_server_reason(s);

            if (why == NULL || *why == '\0' || strstr(why, "pencil"))
                fuzz_fail("failure reason '%s'", why ? why : "(null)");
            if (out->len && (!scram || strncmp(out->data, "e=", 2) != 0))
                fuzz_fail("failure with output '%s'", buf_cstr(out));
        }
        if (scram && step == 0 && rc == SASL_CONTINUE) {
            /* The client-first and server-first parts of the AuthMessage,
             * and the GS2 header, for the template. */
            const char *c1 = memchr(msg->data, ',', msg->len), *c2 = NULL;
            const char *r = strstr(msg->data, ",r=");
            size_t rlen;

            if (c1)
                c2 = memchr(c1 + 1, ',', msg->len - (size_t)(c1 + 1 - msg->data));
            if (c2 == NULL)
                fuzz_fail("client-first without a GS2 header accepted");
            buf_append(gs2, msg->data, (size_t)(c2 + 1 - msg->data));
            if (r == NULL || strncmp(out->data, "r=", 2) != 0)
                fuzz_fail("server-first '%s'", buf_cstr(out));
            rlen = strcspn(r + 3, ",");
            if (strncmp(out->data + 2, r + 3, rlen) != 0)
                fuzz_fail("server-first '%s' does not echo the client's nonce", buf_cstr(out));
            nonce = strndup(out->data + 2, strcspn(out->data + 2, ","));
            buf_reset(want);
            buf_append(want, c2 + 1, msg->len - (size_t)(c2 + 1 - msg->data));
            buf_putc(want, ',');
            buf_append(want, out->data, out->len);
            buf_putc(want, ',');
        }
        if (rc == SASL_OK) {
            const char *who = sasl_server_authcid(s);

            if (who == NULL || strcmp(who, "user") != 0)
                fuzz_fail("authenticated as '%s'", who ? who : "(null)");
            if (!scram && !plain_ok)
                fuzz_fail("%s OK without the right password", mechs[kind]);
            if (scram) {
                unsigned char v[32];
                buf_t *vb = buf_new(0);

                if (!proved)
                    fuzz_fail("SCRAM OK without the harness's proof");
                hmac(server_key, am->data, am->len, v);
                buf_append_str(vb, "v=");
                base64_encode(vb, v, 32);
                if (strcmp(buf_cstr(vb), buf_cstr(out)) != 0)
                    fuzz_fail("v= '%s', want '%s'", buf_cstr(out), buf_cstr(vb));
                buf_free(&vb);
            }
        }
        step++;
        pos += len + 1;
    }
    free(nonce);
    sasl_server_free(&s);
    buf_free(&out);
    buf_free(&gs2);
    buf_free(&am);
    buf_free(&msg);
    buf_free(&want);
    return 0;
}
