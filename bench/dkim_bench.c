/*
 * dkim_bench - what DKIM signing adds to a message in cleanup.
 *
 * Signs a message of 4 KiB and one of 256 KiB (a typical mail and one
 * with an attachment) through lib/dkimsign, that is through libopendkim:
 * an RSA 2048 key, an Ed25519 key, and both (cleanup's default with the
 * keys of "mailctl dkim keygen").  Then the two key forms dkim_sign()
 * takes, PEM and base64 DER (RSA only), on the same RSA signature made
 * with libopendkim directly: libopendkim parses the key again for every
 * message, and the form was chosen by this figure.  Each case runs in
 * rounds and the fastest round counts (the machine is shared).  Prints
 * microseconds per message; figures only, nothing passes or fails.
 *
 * Figures (OpenSSL 3.0.19, libopendkim 2.11.0~beta2, the 2-core
 * development machine, shared; microseconds per message, best of two
 * runs of "dkim_bench 3"):
 *
 *                              4 KiB   256 KiB
 *   rsa-sha256                  1632      3342
 *   ed25519-sha256               568      2274
 *   rsa + ed25519               2207      5395
 *   rsa, key as PEM (direct)    1626
 *   rsa, key as DER (direct)    1599    (the other run: PEM 1700, DER 1783)
 *
 * Before, measured alongside (lib/dkimsign's own canonicalization and
 * hashes over OpenSSL, keys parsed once, the body hashed once for all
 * keys): 4 KiB rsa 739, ed25519 71, both 819; 256 KiB rsa 1099, ed25519
 * 426, both 1177.  The difference is libopendkim's: the key parsed again
 * for each message (about 0.5 ms a key on OpenSSL 3.0, PEM or DER alike),
 * RSA_sign on a fresh legacy RSA object, and a body canonicalization of
 * about 1.7 ms per 256 KiB, done once per key.
 *
 * Usage: dkim_bench [SECONDS_PER_CASE]   (default 1)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <opendkim/dkim.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "base64.h"
#include "buf.h"
#include "dkimsign.h"
#include "xalloc.h"

#define ROUNDS 5

static const char *header[] = {
    "From: Alice <alice@example.test>\r\n", "To: bob@example.org\r\n",
    "Subject: a benchmark\r\n", "Date: Fri, 15 Jan 2027 08:00:00 +0000\r\n",
    "Message-ID: <1@example.test>\r\n", "MIME-Version: 1.0\r\n",
    "Content-Type: text/plain; charset=us-ascii\r\n",
};
#define NHEADER (sizeof(header) / sizeof(header[0]))

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *pem_of(EVP_PKEY *p)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out;
    long n;

    PEM_write_bio_PrivateKey(b, p, NULL, NULL, 0, NULL, NULL);
    n = BIO_get_mem_data(b, &data);
    out = xstrndup(data, (size_t)n);
    BIO_free(b);
    return out;
}

/* The base64 of the key's DER (i2d_PrivateKey: PKCS#1 for RSA), "MII...". */
static char *der64_of(EVP_PKEY *p)
{
    unsigned char *der = NULL;
    int n = i2d_PrivateKey(p, &der);
    buf_t *b = buf_new(0);
    char *out;

    base64_encode(b, der, (size_t)n);
    OPENSSL_free(der);
    out = buf_steal(b, NULL);
    buf_free(&b);
    return out;
}

static dkimsign_key_t *keys[2];
static char *pem, *der64;
static DKIM_LIB *lib;

/* One message through lib/dkimsign with keys[first..first+n). */
static void ours(size_t first, size_t n, const char *body, size_t len)
{
    dkimsign_t *s = dkimsign_new(keys + first, n, time(NULL));
    buf_t *out = buf_new(0);
    const char *why;

    for (size_t i = 0; i < NHEADER; i++)
        dkimsign_header(s, header[i], strlen(header[i]));
    for (size_t off = 0; off < len; off += 65536)
        dkimsign_body(s, body + off, len - off < 65536 ? len - off : 65536);
    if (dkimsign_finish(s, out, &why) != 0) {
        fprintf(stderr, "dkimsign_finish: %s\n", why);
        abort();
    }
    dkimsign_free(&s);
    buf_free(&out);
}

/* One RSA signature with libopendkim directly, the key given as key. */
static void direct(const char *key, const char *body, size_t len)
{
    DKIM_STAT st;
    DKIM *d = dkim_sign(lib, (const unsigned char *)"b", NULL, (unsigned char *)key,
                        (const unsigned char *)"s", (const unsigned char *)"example.test",
                        DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, DKIM_SIGN_RSASHA256, -1, &st);
    unsigned char *sig;
    size_t siglen;

    if (d == NULL)
        abort();
    for (size_t i = 0; i < NHEADER; i++)
        dkim_header(d, (unsigned char *)header[i], strlen(header[i]) - 2);
    dkim_eoh(d);
    dkim_body(d, (unsigned char *)body, len);
    if (dkim_eom(d, NULL) != DKIM_STAT_OK || dkim_getsighdr_d(d, 16, &sig, &siglen) != 0)
        abort();
    dkim_free(d);
}

static void one(int c, const char *body, size_t len)
{
    switch (c) {
    case 0: ours(0, 1, body, len); break;
    case 1: ours(1, 1, body, len); break;
    case 2: ours(0, 2, body, len); break;
    case 3: direct(pem, body, len); break;
    default: direct(der64, body, len); break;
    }
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    char *edpem = pem_of(ed);
    static const size_t sizes[] = {4096, 262144};
    static const char *names[] = {"rsa-sha256", "ed25519-sha256", "rsa + ed25519",
                                  "rsa, key as PEM (direct)", "rsa, key as DER (direct)"};
    const char *why;

    pem = pem_of(rsa);
    der64 = der64_of(rsa);
    if ((keys[0] = dkimsign_key_parse(pem, strlen(pem), "example.test", "rsa", &why)) == NULL
        || (keys[1] = dkimsign_key_parse(edpem, strlen(edpem), "example.test", "ed", &why))
               == NULL) {
        fprintf(stderr, "dkimsign_key_parse: %s\n", why);
        return 1;
    }
    if (strncmp(der64, "MII", 3) != 0 || (lib = dkim_init(NULL, NULL)) == NULL)
        abort();
    for (size_t z = 0; z < 2; z++) {
        size_t len = sizes[z];
        char *body = xmalloc(len);

        for (size_t i = 0; i < len; i++)    /* lines of 76 characters */
            body[i] = i % 78 == 76 ? '\r' : i % 78 == 77 ? '\n' : (char)('a' + i % 26);
        memcpy(body + len - 2, "\r\n", 2);
        for (int c = 0; c < (z == 0 ? 5 : 3); c++) {
            double best = 0;

            for (int r = 0; r < ROUNDS; r++) {
                double t0 = now(), t;
                long n = 0;

                do {
                    one(c, body, len);
                    n++;
                } while ((t = now() - t0) < secs / ROUNDS);
                if (r == 0 || t / n < best)
                    best = t / n;
            }
            printf("%4zu KiB  %-26s %8.1f us/message\n", len / 1024, names[c], best * 1e6);
        }
        free(body);
    }
    dkimsign_key_free(&keys[0]);
    dkimsign_key_free(&keys[1]);
    free(pem);
    free(der64);
    free(edpem);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ed);
    dkim_close(lib);
    return 0;
}
