/*
 * t/fuzz/dkimsign.c - libFuzzer harness for lib/dkimsign.c's relaxed
 * canonicalization.  Any bytes are a message: the first byte says where
 * the body is cut into two pieces, the rest is split into header fields
 * (up to the first empty line) and body.  Invariants: each canonical
 * header field is "name:value" CRLF with a lower-case name and a value
 * without CR, LF or tab, two spaces in a row or a space at either end; the signature (Ed25519, deterministic, fixed time) is the same
 * whether the body comes in one piece or two; finishing never fails.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "buf.h"
#include "dkimsign.h"
#include "fuzzlib.h"

static dkimsign_key_t *key;

static void setup(void)
{
    static const unsigned char raw[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    EVP_PKEY *p = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw, sizeof(raw));
    BIO *b = BIO_new(BIO_s_mem());
    const char *why;
    char *pem;
    long n;

    fuzz_init();
    PEM_write_bio_PrivateKey(b, p, NULL, NULL, 0, NULL, NULL);
    n = BIO_get_mem_data(b, &pem);
    if ((key = dkimsign_key_parse(pem, (size_t)n, "example.test", "f", &why)) == NULL)
        fuzz_fail("the fixed key does not parse: %s", why);
    BIO_free(b);
    EVP_PKEY_free(p);
}

static void check_canon(const char *f, size_t len)
{
    buf_t *c = buf_new(0);
    const char *colon;

    dkimsign_canon_header(c, f, len);
    for (size_t i = 0; i < c->len && c->data[i] != ':'; i++)
        if (c->data[i] >= 'A' && c->data[i] <= 'Z')
            fuzz_fail("upper case in a canonical name");
    if (c->len < 3 || memcmp(c->data + c->len - 2, "\r\n", 2) != 0)
        fuzz_fail("canonical field without its CRLF");
    /* The name is taken as it stands (the caller, lib/msgheader, gives
     * only printable names); the value is what canonicalization shapes. */
    colon = memchr(c->data, ':', c->len);
    for (size_t i = (size_t)(colon - c->data); i < c->len - 2; i++) {
        char ch = c->data[i];

        if (ch == '\r' || ch == '\n' || ch == '\t')
            fuzz_fail("CR, LF or tab at %zu of a canonical field", i);
        if (ch == ' ' && (c->data[i + 1] == ' ' || i + 3 == c->len
                          || c->data + i == colon + 1))
            fuzz_fail("a space too many at %zu of a canonical field", i);
    }
    buf_free(&c);
}

static char *sign(const char *msg, size_t hlen, const char *body, size_t blen, size_t cut)
{
    dkimsign_t *s = dkimsign_new();
    buf_t *out = buf_new(0);
    const char *why;
    char *r;

    for (size_t i = 0; i < hlen;) {
        size_t j = i;

        do {
            const char *nl = memchr(msg + j, '\n', hlen - j);

            j = nl ? (size_t)(nl - msg) + 1 : hlen;
        } while (j < hlen && (msg[j] == ' ' || msg[j] == '\t'));
        check_canon(msg + i, j - i);
        dkimsign_header(s, msg + i, j - i);
        i = j;
    }
    dkimsign_body(s, body, cut);
    dkimsign_body(s, body + cut, blen - cut);
    if (dkimsign_finish(s, &key, 1, 1700000000, out, &why) < 0)
        fuzz_fail("dkimsign_finish failed: %s", why);
    dkimsign_free(&s);
    r = buf_steal(out, NULL);
    buf_free(&out);
    return r;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    const char *msg, *end;
    size_t hlen, blen, cut;
    char *a, *b;

    if (key == NULL)
        setup();
    if (size < 1)
        return 0;
    msg = (const char *)data + 1;
    size--;
    end = memmem(msg, size, "\r\n\r\n", 4);
    hlen = end ? (size_t)(end - msg) + 2 : size;
    blen = end ? size - hlen - 2 : 0;
    cut = blen ? data[0] % (blen + 1) : 0;
    a = sign(msg, hlen, msg + hlen + (end ? 2 : 0), blen, 0);
    b = sign(msg, hlen, msg + hlen + (end ? 2 : 0), blen, cut);
    if (strcmp(a, b) != 0)
        fuzz_fail("the signature depends on where the body was cut (%zu)", cut);
    free(a);
    free(b);
    return 0;
}
