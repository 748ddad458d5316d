/*
 * t/fuzz/dkimsign.c - libFuzzer harness for lib/dkimsign.c, the layer
 * that feeds libopendkim.  Any bytes are a message: the first byte says
 * where the body is cut into two pieces, the rest is split into header
 * fields (up to the first CR LF CR LF; a field is a line and the lines
 * after it that begin with SP or HTAB) and body.  Each message is signed
 * with an RSA 1024 key (made at start; RSA because libopendkim leaks an
 * Ed25519 handle's key, see t/lib/lsan_opendkim.h, and the layer under
 * test is the same for both) at a fixed time, once with the body in one
 * piece and once cut in two.  Invariants:
 *   - dkimsign_finish never fails (-1): no content makes libopendkim fail;
 *   - the answer and the signature do not depend on where the body is cut;
 *   - not signed (1) exactly when it must be: a body with a CR not
 *     followed by LF, or no From: field, is never signed; any other
 *     refusal names a header field and some field has a bare CR, a NUL
 *     or a tab (libopendkim refuses "Name\t:");
 *   - a signature made verifies: libopendkim's verifier (a library handle
 *     of its own, the key from a file) is given the message as the SMTP
 *     client sends it (bare LF as CR LF, a final line end), and when it
 *     evaluates the signature, the signature passes.  Only header sections
 *     a verifier reads as we do are checked (every line a field with a
 *     printable ASCII name and a colon, or a continuation; no CR other
 *     than in CR LF, no NUL).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <opendkim/dkim.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "buf.h"
#include "dkimsign.h"
#include "fuzzlib.h"
#include "xalloc.h"

static dkimsign_key_t *key;
static DKIM_LIB *vlib;          /* the verifier's */

static void setup(void)
{
    EVP_PKEY *p = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    BIO *b = BIO_new(BIO_s_mem());
    const char *why, *path;
    char *pem, *txt, *rec;
    int qm = DKIM_QUERY_FILE;
    long n;

    fuzz_init();
    PEM_write_bio_PrivateKey(b, p, NULL, NULL, 0, NULL, NULL);
    n = BIO_get_mem_data(b, &pem);
    if ((key = dkimsign_key_parse(pem, (size_t)n, "example.test", "f", &why)) == NULL)
        fuzz_fail("the fixed key does not parse: %s", why);
    BIO_free(b);
    EVP_PKEY_free(p);
    txt = dkimsign_key_txt(key);
    rec = xasprintf("f._domainkey.example.test %s\n", txt);
    path = fuzz_path("keys");
    fuzz_write(path, rec, strlen(rec));
    free(rec);
    free(txt);
    if ((vlib = dkim_init(NULL, NULL)) == NULL)
        fuzz_fail("dkim_init");
    dkim_options(vlib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYMETHOD, &qm, sizeof(qm));
    dkim_options(vlib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYINFO, (void *)path, strlen(path));
}

/* The end of the field that starts at msg[i]. */
static size_t field_end(const char *msg, size_t hlen, size_t i)
{
    size_t j = i;

    do {
        const char *nl = memchr(msg + j, '\n', hlen - j);

        j = nl ? (size_t)(nl - msg) + 1 : hlen;
    } while (j < hlen && (msg[j] == ' ' || msg[j] == '\t'));
    return j;
}

static char *sign(const char *msg, size_t hlen, const char *body, size_t blen, size_t cut,
                  int *rc, const char **why)
{
    dkimsign_t *s = dkimsign_new(&key, 1, 1700000000);
    buf_t *out = buf_new(0);
    char *r;

    for (size_t i = 0; i < hlen;) {
        size_t j = field_end(msg, hlen, i);

        dkimsign_header(s, msg + i, j - i);
        i = j;
    }
    dkimsign_body(s, body, cut);
    dkimsign_body(s, body + cut, blen - cut);
    *rc = dkimsign_finish(s, out, why);
    if (*rc < 0)
        fuzz_fail("dkimsign_finish failed: %s", *why);
    if (*rc == 1)
        *why = xstrdup(*why);
    dkimsign_free(&s);
    r = buf_steal(out, NULL);
    buf_free(&out);
    return r;
}

static bool has_bare_cr(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] == '\r' && (i + 1 == len || p[i + 1] != '\n'))
            return true;
    return false;
}

/* Does the header section have a From: field, and is it one a verifier
 * reads field by field as dkimsign_header was given it? */
static bool header_scan(const char *msg, size_t hlen, bool *from)
{
    bool plain = !has_bare_cr(msg, hlen) && memchr(msg, '\0', hlen) == NULL;

    *from = false;
    if (hlen > 0 && (msg[0] == ' ' || msg[0] == '\t'))
        plain = false;
    for (size_t i = 0; i < hlen;) {
        size_t j = field_end(msg, hlen, i), k;

        for (k = i; k < j && msg[k] != ':'; k++)
            if ((unsigned char)msg[k] < 32 || (unsigned char)msg[k] > 126 || msg[k] == ';')
                plain = false;
        if (k == j || k == i)       /* no colon (an empty line among them), no name */
            plain = false;
        else if (k - i >= 4 && strncasecmp(msg + i, "From", 4) == 0) {
            size_t n = k - i;

            while (n > 4 && (msg[i + n - 1] == ' ' || msg[i + n - 1] == '\t'))
                n--;
            if (n == 4)
                *from = true;
        }
        i = j;
    }
    return plain;
}

/* The message as the SMTP client sends it. */
static buf_t *wire(const char *sig, const char *msg, size_t hlen, const char *body, size_t blen)
{
    buf_t *w = buf_new(0);
    const char *parts[2] = {msg, body};
    size_t lens[2] = {hlen, blen};

    buf_append_str(w, sig);
    for (int p = 0; p < 2; p++) {
        for (size_t i = 0; i < lens[p]; i++) {
            if (parts[p][i] == '\n' && (i == 0 || parts[p][i - 1] != '\r'))
                buf_putc(w, '\r');
            buf_putc(w, parts[p][i]);
        }
        if (p == 0 && (hlen == 0 || msg[hlen - 1] != '\n'))
            buf_append(w, "\r\n", 2);
        if (p == 0)
            buf_append(w, "\r\n", 2);
    }
    if (blen > 0 && body[blen - 1] != '\n')
        buf_append(w, "\r\n", 2);
    return w;
}

static void check_verifies(const buf_t *w)
{
    DKIM_STAT st;
    DKIM *d = dkim_verify(vlib, (const unsigned char *)"fuzz", NULL, &st);
    DKIM_SIGINFO **sigs;
    int n = 0;

    if (d == NULL)
        fuzz_fail("dkim_verify");
    if (dkim_chunk(d, (unsigned char *)w->data, w->len) == DKIM_STAT_OK
        && dkim_chunk(d, NULL, 0) == DKIM_STAT_OK) {
        (void)dkim_eom(d, NULL);
        if (dkim_getsiglist(d, &sigs, &n) == DKIM_STAT_OK)
            for (int i = 0; i < n; i++) {
                unsigned int flags = dkim_sig_getflags(sigs[i]);

                if ((flags & DKIM_SIGFLAG_PROCESSED)
                    && (!(flags & DKIM_SIGFLAG_PASSED)
                        || dkim_sig_getbh(sigs[i]) != DKIM_SIGBH_MATCH))
                    fuzz_fail("libopendkim's verifier fails our signature: %s",
                              dkim_sig_geterrorstr(dkim_sig_geterror(sigs[i])));
            }
    }
    dkim_free(d);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    const char *msg, *end, *body, *wa = NULL, *wb = NULL;
    size_t hlen, blen, cut;
    bool from, plain;
    int ra, rb;
    char *a, *b;

    if (key == NULL)
        setup();
    if (size < 1)
        return 0;
    msg = (const char *)data + 1;
    size--;
    end = memmem(msg, size, "\r\n\r\n", 4);
    hlen = end ? (size_t)(end - msg) + 2 : size;
    body = msg + hlen + (end ? 2 : 0);
    blen = end ? size - hlen - 2 : 0;
    cut = blen ? data[0] % (blen + 1) : 0;
    a = sign(msg, hlen, body, blen, 0, &ra, &wa);
    b = sign(msg, hlen, body, blen, cut, &rb, &wb);
    if (ra != rb || strcmp(a, b) != 0 || (ra == 1 && strcmp(wa, wb) != 0))
        fuzz_fail("the result depends on where the body was cut (%zu)", cut);
    plain = header_scan(msg, hlen, &from);
    if ((has_bare_cr(body, blen) || !from) && ra != 1)
        fuzz_fail("signed with a bare CR in the body or without From:");
    if (ra == 1 && !has_bare_cr(body, blen) && from
        && (strstr(wa, "header field") == NULL
            || (!has_bare_cr(msg, hlen) && memchr(msg, '\0', hlen) == NULL
                && memchr(msg, '\t', hlen) == NULL)))
        fuzz_fail("not signed for no reason: %s", wa);
    if (ra == 0 && plain) {
        buf_t *w = wire(a, msg, hlen, body, blen);

        check_verifies(w);
        buf_free(&w);
    }
    free((char *)wa);
    free((char *)wb);
    free(a);
    free(b);
    return 0;
}
