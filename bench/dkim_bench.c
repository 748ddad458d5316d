/*
 * dkim_bench - what DKIM signing adds to a message in cleanup.
 *
 * Signs a message of 4 KiB and one of 256 KiB (a typical mail and one
 * with an attachment) with lib/dkimsign: the body hash alone, an RSA 2048
 * key, an Ed25519 key, and both (cleanup's default with the keys of
 * "mailctl dkim keygen").  For comparison, the same two signatures made
 * with libopendkim, which parses each key again for every message.
 * Prints microseconds per message; figures only, nothing passes or fails.
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

#include "buf.h"
#include "dkimsign.h"
#include "xalloc.h"

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

static void ours(dkimsign_key_t **keys, size_t nkeys, const char *body, size_t len)
{
    dkimsign_t *s = dkimsign_new();
    buf_t *out = buf_new(0);
    const char *why;

    for (size_t i = 0; i < NHEADER; i++)
        dkimsign_header(s, header[i], strlen(header[i]));
    for (size_t off = 0; off < len; off += 65536)
        dkimsign_body(s, body + off, len - off < 65536 ? len - off : 65536);
    if (dkimsign_finish(s, keys, nkeys, time(NULL), out, &why) < 0)
        abort();
    dkimsign_free(&s);
    buf_free(&out);
}

static DKIM_LIB *lib;

static void theirs(char **pems, const int *algs, size_t nkeys, const char *body, size_t len)
{
    for (size_t k = 0; k < nkeys; k++) {
        DKIM_STAT st;
        DKIM *d = dkim_sign(lib, (const unsigned char *)"b", NULL, (unsigned char *)pems[k],
                            (const unsigned char *)"s", (const unsigned char *)"example.test",
                            DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, algs[k], -1, &st);
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
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    char *pems[2] = {pem_of(rsa), pem_of(ed)};
    int algs[2] = {DKIM_SIGN_RSASHA256, DKIM_SIGN_ED25519SHA256};
    const char *why;
    dkimsign_key_t *keys[2] = {
        dkimsign_key_parse(pems[0], strlen(pems[0]), "example.test", "rsa", &why),
        dkimsign_key_parse(pems[1], strlen(pems[1]), "example.test", "ed", &why),
    };
    static const size_t sizes[] = {4096, 262144};

    lib = dkim_init(NULL, NULL);
    for (size_t z = 0; z < 2; z++) {
        size_t len = sizes[z];
        char *body = xmalloc(len);

        for (size_t i = 0; i < len; i++)    /* lines of 76 characters */
            body[i] = i % 78 == 76 ? '\r' : i % 78 == 77 ? '\n' : (char)('a' + i % 26);
        memcpy(body + len - 2, "\r\n", 2);
        for (int c = 0; c < 5; c++) {
            static const char *names[] = {"body hash only", "rsa-sha256", "ed25519-sha256",
                                          "rsa + ed25519", "rsa + ed25519, libopendkim"};
            double t0 = now(), t;
            long n = 0;

            do {
                if (c == 0)
                    ours(keys, 0, body, len);
                else if (c == 1)
                    ours(keys, 1, body, len);
                else if (c == 2)
                    ours(keys + 1, 1, body, len);
                else if (c == 3)
                    ours(keys, 2, body, len);
                else
                    theirs(pems, algs, 2, body, len);
                n++;
            } while ((t = now() - t0) < secs);
            printf("%4zu KiB  %-28s %8.1f us/message\n", len / 1024, names[c], t / n * 1e6);
        }
        free(body);
    }
    dkimsign_key_free(&keys[0]);
    dkimsign_key_free(&keys[1]);
    free(pems[0]);
    free(pems[1]);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ed);
    dkim_close(lib);
    return 0;
}
