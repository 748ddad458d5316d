/*
 * t/unit/scram.c - unit tests for lib/scram.c (SCRAM-SHA-256 key
 * derivation) and lib/saslprep.c (SASLprep, UTF-8) that it stands on.
 *
 * The key derivation against RFC 7677 section 3: user "user", password
 * "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations.  The RFC gives
 * no keys, only the exchange, so the test checks what the keys must do in
 * it: the client's proof p= recovers a ClientKey whose SHA-256 is
 * StoredKey, and HMAC(ServerKey, AuthMessage) is the server's v=.  Then
 * SASLprep as the derivation applies it (RFC 4013 section 3's examples),
 * the refusals, and the bounds.  The tests do their own HMAC and base64
 * with OpenSSL so that nothing here leans on the module under test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "msg.h"
#include "saslprep.h"
#include "scram.h"
#include "../lib/tap.h"

static const char rfc_salt_b64[] = "W22ZaJ0SNY7soEsUEjb6gQ==";
static const char rfc_auth_message[] =
    "n=user,r=rOprNGfwEbeRWgbNEkqO,"
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
static const char rfc_proof_b64[] = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
static const char rfc_verifier_b64[] = "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

/* Decode base64 with OpenSSL (test inputs are canonical); the length. */
static size_t unb64(const char *in, unsigned char *out)
{
    size_t len = strlen(in);
    int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);

    if (n < 0)
        return 0;
    while (len > 0 && in[len - 1] == '=') {
        len--;
        n--;
    }
    return (size_t)n;
}

static void b64(const unsigned char *in, size_t len, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

static void hmac256(const unsigned char *key, const void *data, size_t len, unsigned char *out)
{
    unsigned n = 0;

    HMAC(EVP_sha256(), key, SCRAM_KEY_LEN, data, len, out, &n);
}

static void hex(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
}

static void test_rfc7677(void)
{
    unsigned char salt[64], stored[32], server[32], proof[64], sig[32], client_key[32],
        h[32], v[32];
    char text[128];
    size_t saltlen = unb64(rfc_salt_b64, salt), i;

    is_int(saltlen, 16, "RFC 7677 salt is 16 bytes");
    is_int(scram_sha256_keys("pencil", salt, saltlen, 4096, stored, server), 0,
           "keys for 'pencil'");
    /* ClientKey = proof XOR HMAC(StoredKey, AuthMessage); H(ClientKey) == StoredKey. */
    is_int(unb64(rfc_proof_b64, proof), 32, "RFC proof is 32 bytes");
    hmac256(stored, rfc_auth_message, strlen(rfc_auth_message), sig);
    for (i = 0; i < 32; i++)
        client_key[i] = proof[i] ^ sig[i];
    SHA256(client_key, 32, h);
    ok(CRYPTO_memcmp(h, stored, 32) == 0, "the RFC's client proof checks against StoredKey");
    hmac256(server, rfc_auth_message, strlen(rfc_auth_message), v);
    b64(v, 32, text);
    is_str(text, rfc_verifier_b64, "HMAC(ServerKey, AuthMessage) is the RFC's v=");
    /* The same keys written out, so that a later change shows at once. */
    hex(stored, 32, text);
    is_str(text, "586e5df283e6dceb5c3e791d8b8528ec191e664045ce971792e2e6b5bb13e2a6",
           "StoredKey");
    hex(server, 32, text);
    is_str(text, "c1f3cbc1c13a9d35a14c0990eed97629ea225863e566a4314ab99f3f00e5d9d5",
           "ServerKey");
    /* A wrong password gives keys the proof does not check against. */
    scram_sha256_keys("pencil2", salt, saltlen, 4096, stored, server);
    hmac256(stored, rfc_auth_message, strlen(rfc_auth_message), sig);
    for (i = 0; i < 32; i++)
        client_key[i] = proof[i] ^ sig[i];
    SHA256(client_key, 32, h);
    ok(CRYPTO_memcmp(h, stored, 32) != 0, "another password: the proof fails");
}

static int keys_equal(const char *a, const char *b)
{
    static const unsigned char salt[] = "0123456789abcdef";
    unsigned char s1[32], k1[32], s2[32], k2[32];

    if (scram_sha256_keys(a, salt, 16, 4096, s1, k1) < 0
        || scram_sha256_keys(b, salt, 16, 4096, s2, k2) < 0)
        return -1;
    return memcmp(s1, s2, 32) == 0 && memcmp(k1, k2, 32) == 0;
}

static void test_prepared_password(void)
{
    static const unsigned char salt[] = "0123456789abcdef";
    unsigned char stored[32], server[32], before[32];
    char big[SCRAM_PASSWORD_MAX + 2];

    is_int(keys_equal("I\xc2\xadX", "IX"), 1, "soft hyphen maps to nothing (RFC 4013 #1)");
    is_int(keys_equal("\xe2\x85\xa8", "IX"), 1, "U+2168 normalizes to IX (RFC 4013 #4)");
    is_int(keys_equal("\xc2\xaa", "a"), 1, "U+00AA normalizes to a (RFC 4013 #3)");
    is_int(keys_equal("a\xc2\xa0" "b", "a b"), 1, "no-break space maps to SPACE");
    is_int(keys_equal("user", "USER"), 0, "case is kept (RFC 4013 #2)");
    is_int(keys_equal("pencil", "pencil "), 0, "a trailing space counts");

    memset(stored, 0xaa, 32);
    memcpy(before, stored, 32);
    is_int(scram_sha256_keys("\x07", salt, 16, 4096, stored, server), -1,
           "a control character is prohibited (RFC 4013 #5)");
    ok(memcmp(stored, before, 32) == 0, "  keys unchanged");
    is_int(scram_sha256_keys("\xd8\xa7" "1", salt, 16, 4096, stored, server), -1,
           "bad bidirectional text refused (RFC 4013 #6)");
    is_int(scram_sha256_keys("\xff\xfe", salt, 16, 4096, stored, server), -1,
           "invalid UTF-8 refused");
    is_int(scram_sha256_keys("\xc2\xad", salt, 16, 4096, stored, server), -1,
           "a password that prepares to nothing refused");
    is_int(scram_sha256_keys("", salt, 16, 4096, stored, server), -1, "empty password refused");

    memset(big, 'p', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    is_int(scram_sha256_keys(big, salt, 16, 1, stored, server), -1,
           "a password over SCRAM_PASSWORD_MAX refused");
    big[SCRAM_PASSWORD_MAX] = '\0';
    is_int(scram_sha256_keys(big, salt, 16, 1, stored, server), 0, "  one at the limit is fine");
}

static void test_bounds(void)
{
    unsigned char salt[SCRAM_SALT_MAX + 1], s1[32], k1[32], s2[32], k2[32];

    memset(salt, 7, sizeof(salt));
    is_int(scram_sha256_keys("pw", salt, 0, 4096, s1, k1), -1, "empty salt refused");
    is_int(scram_sha256_keys("pw", salt, SCRAM_SALT_MAX + 1, 4096, s1, k1), -1,
           "salt over SCRAM_SALT_MAX refused");
    is_int(scram_sha256_keys("pw", salt, SCRAM_SALT_MAX, 4096, s1, k1), 0,
           "salt of SCRAM_SALT_MAX bytes fine");
    is_int(scram_sha256_keys("pw", salt, 16, 0, s1, k1), -1, "zero iterations refused");
    is_int(scram_sha256_keys("pw", salt, 16, SCRAM_ITERATIONS_MAX + 1, s1, k1), -1,
           "iterations over SCRAM_ITERATIONS_MAX refused");
    scram_sha256_keys("pw", salt, 16, 4096, s1, k1);
    scram_sha256_keys("pw", salt, 16, 4097, s2, k2);
    ok(memcmp(s1, s2, 32) != 0 && memcmp(k1, k2, 32) != 0, "iterations change the keys");
    salt[0] = 8;
    scram_sha256_keys("pw", salt, 16, 4096, s2, k2);
    ok(memcmp(s1, s2, 32) != 0 && memcmp(k1, k2, 32) != 0, "the salt changes the keys");
    ok(memcmp(s2, k2, 32) != 0, "StoredKey and ServerKey differ");
}

static void test_saslprep(void)
{
    static const struct { const char *in; const char *out; } cases[] = {
        { "user", "user" }, { "USER", "USER" }, { "I\xc2\xadX", "IX" }, { "\xc2\xaa", "a" },
        { "\xe2\x85\xa8", "IX" }, { "\x07", NULL }, { "\xd8\xa7" "1", NULL },
        { "a\xe2\x80\x80" "b", "a b" },             /* U+2000 EN QUAD: a space */
        { "\xc2\xad", NULL }, { "", NULL }, { "\xc0\x80", NULL }, { "\xed\xa0\x80", NULL },
        { "a\tb", NULL }, { "\xef\xbf\xbf", NULL }, /* U+FFFF: a non-character */
        { "\xe0\xa2\xa0", "\xe0\xa2\xa0" },         /* unassigned in 3.2: a query allows it */
    };
    char *out;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int r = saslprep(cases[i].in, strlen(cases[i].in), &out);

        if (cases[i].out) {
            is_int(r, 0, "saslprep case %zu prepares", i);
            is_str(out, cases[i].out, "  to '%s'", cases[i].out);
        } else {
            is_int(r, -1, "saslprep case %zu refused", i);
            ok(out == NULL, "  no output");
        }
        free(out);
    }
    is_int(saslprep("ab\0c", 4, &out), -1, "an embedded NUL refused");
    is_int(saslprep("abcd", 2, &out), 0, "the length is honoured");
    is_str(out, "ab", "  only that much");
    free(out);
}

static void test_utf8(void)
{
    static const struct { const char *s; int ok; } cases[] = {
        { "", 1 }, { "abc", 1 }, { "\xc2\x80", 1 }, { "\xdf\xbf", 1 }, { "\xe0\xa0\x80", 1 },
        { "\xef\xbf\xbd", 1 }, { "\xf0\x90\x80\x80", 1 }, { "\xf4\x8f\xbf\xbf", 1 },
        { "\x80", 0 }, { "\xbf", 0 }, { "\xc0\xaf", 0 }, { "\xc1\xbf", 0 },
        { "\xe0\x80\xaf", 0 }, { "\xe0\x9f\xbf", 0 }, { "\xed\xa0\x80", 0 },
        { "\xed\xbf\xbf", 0 }, { "\xf0\x80\x80\xaf", 0 }, { "\xf0\x8f\xbf\xbf", 0 },
        { "\xf4\x90\x80\x80", 0 }, { "\xf5\x80\x80\x80", 0 }, { "\xff", 0 }, { "\xc2", 0 },
        { "\xe2\x82", 0 }, { "\xc2\x41", 0 }, { "a\xc3", 0 }, { "\xf0\x90\x80", 0 },
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        is_int(saslprep_utf8_valid(cases[i].s, strlen(cases[i].s)), cases[i].ok,
               "UTF-8 case %zu %s", i, cases[i].ok ? "valid" : "invalid");
    is_int(saslprep_utf8_valid("a\0b", 3), 0, "NUL is refused");
    is_int(saslprep_utf8_valid("\xc3\xa9xyz", 1), 0, "a sequence cut by the length");
}

int main(void)
{
    alarm(60);
    msg_init("scram-test", MSG_STDERR);
    test_rfc7677();
    test_prepared_password();
    test_bounds();
    test_saslprep();
    test_utf8();
    return done_testing();
}
