/*
 * t/unit/dkimsign.c - unit tests for lib/dkimsign.c.
 *
 * Keys are made here (RSA 2048 and Ed25519, with OpenSSL) and their
 * records written into a key file that libopendkim's verifier reads
 * (DKIM_QUERY_FILE); the verifier is fed the whole message through
 * dkim_chunk (its own header parser), as it would arrive.  (The
 * signatures are libopendkim's too; t/68-dkim-sign.t checks them with
 * python3-dkim.)  Covers: both algorithms on one message; the tags (no
 * x=, no l=, t= the time given); relaxed canonicalization through the
 * wire form (folded fields, white space around the colon and at line
 * ends, runs of tabs and spaces, trailing empty lines, lines of white
 * space only, an empty body, no body at all, a body without its final
 * CRLF, bare LF line ends, 8-bit bytes in header and body); a field that
 * occurs twice; feeding the body a byte at a time gives the same
 * signature; h= lists each once-only field present twice (oversigned),
 * the absent ones not at all, and never Received; the empty body hash;
 * what breaks a signature (a changed body, a second From or Subject added
 * above or below) and what does not (a Received: added on top); what is
 * not signed (a bare CR in the body, at its end or in a signed field, a
 * NUL in a signed field, no From:) and what still is (a bare CR in an
 * unsigned field); key errors (garbage, an EC key, RSA 512, an encrypted
 * key: no pass phrase prompt); the TXT records.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <opendkim/dkim.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "buf.h"
#include "dkimsign.h"
#include "xalloc.h"
#include "../lib/lsan_opendkim.h"
#include "../lib/tap.h"

static time_t NOW;            /* a minute ago: the verifier refuses t= in the future */

static DKIM_LIB *lib;
static int quiet;               /* the failures are expected: no diagnostics */
static dkimsign_key_t *keys[2];

static char *pem_of(EVP_PKEY *p, const char *pass)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out;
    long n;

    if (pass)
        PEM_write_bio_PrivateKey(b, p, EVP_aes_128_cbc(), (unsigned char *)pass,
                                 (int)strlen(pass), NULL, NULL);
    else
        PEM_write_bio_PrivateKey(b, p, NULL, NULL, 0, NULL, NULL);
    n = BIO_get_mem_data(b, &data);
    out = xstrndup(data, (size_t)n);
    BIO_free(b);
    return out;
}

/* Sign msg: header fields to dkimsign_header, the body after the empty
 * line in pieces of chunk bytes.  Returns the signature fields followed
 * by msg (fresh), or NULL with *rcp and *whyp when it was not signed. */
static char *sign_rc(const char *msg, size_t nkeys, size_t chunk, int *rcp, const char **whyp)
{
    dkimsign_t *s = dkimsign_new(keys, nkeys, NOW);
    buf_t *out = buf_new(0);
    const char *p = msg, *why = "";
    char *text = NULL;
    int rc;

    while (*p && !(p[0] == '\r' && p[1] == '\n') && p[0] != '\n') {
        const char *end = p;

        do {
            end = strchr(end, '\n');
            end = end ? end + 1 : p + strlen(p);
        } while (*end == ' ' || *end == '\t');
        dkimsign_header(s, p, (size_t)(end - p));
        p = end;
    }
    if (*p)
        p += p[0] == '\r' ? 2 : 1;
    for (size_t n = strlen(p); n > 0;) {
        size_t k = n < chunk ? n : chunk;

        dkimsign_body(s, p, k);
        p += k;
        n -= k;
    }
    rc = dkimsign_finish(s, out, &why);
    if (rcp)
        *rcp = rc;
    if (whyp)
        *whyp = rc ? xstrdup(why) : NULL;
    if (rc == 0) {
        buf_append_str(out, msg);
        text = buf_steal(out, NULL);
    } else if (rcp == NULL) {
        diag("dkimsign_finish: %d %s", rc, why);
    }
    dkimsign_free(&s);
    buf_free(&out);
    return text;
}

static char *sign(const char *msg, size_t nkeys, size_t chunk)
{
    char *m = sign_rc(msg, nkeys, chunk, NULL, NULL);

    return m ? m : xstrdup("");
}

/* msg as the SMTP client sends it: bare LFs get their CR. */
static char *wire(const char *msg)
{
    buf_t *b = buf_new(0);
    char *text;

    for (const char *p = msg; *p; p++) {
        if (*p == '\n' && (p == msg || p[-1] != '\r'))
            buf_putc(b, '\r');
        buf_putc(b, *p);
    }
    text = buf_steal(b, NULL);
    buf_free(&b);
    return text;
}

/* How many signatures of msg libopendkim finds and how many pass. */
static int verify(const char *msg, int *nsigs)
{
    DKIM_STAT st;
    DKIM *d = dkim_verify(lib, (const unsigned char *)"t", NULL, &st);
    DKIM_SIGINFO **sigs;
    int n = 0, pass = 0;

    *nsigs = 0;
    if (d == NULL)
        return -1;
    dkim_chunk(d, (unsigned char *)msg, strlen(msg));
    dkim_chunk(d, NULL, 0);
    dkim_eom(d, NULL);
    if (dkim_getsiglist(d, &sigs, &n) == DKIM_STAT_OK) {
        for (int i = 0; i < n; i++) {
            if (DKIM_SIG_CHECK(sigs[i]))
                pass++;
            else if (!quiet)
                diag("  signature %d (s=%s) fails: %s", i, dkim_sig_getselector(sigs[i]),
                     dkim_sig_geterrorstr(dkim_sig_geterror(sigs[i])));
        }
    }
    *nsigs = n;
    dkim_free(d);
    return pass;
}

static void both_pass(const char *msg, const char *name)
{
    char *signed_msg = sign(msg, 2, 65536);
    int n, pass = verify(signed_msg, &n);

    ok(n == 2 && pass == 2, "%s: both signatures verify (%d of %d)", name, pass, n);
    free(signed_msg);
}

static void keys_and_records(char *path)
{
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)512);
    char *pem, *txt;
    const char *why = NULL;
    FILE *f;

    pem = pem_of(rsa, NULL);
    keys[0] = dkimsign_key_parse(pem, strlen(pem), "Example.TEST", "rsa1", &why);
    ok(keys[0] != NULL, "an RSA key parses");
    is_int(dkimsign_key_alg(keys[0]), DKIMSIGN_RSA_SHA256, "  as rsa-sha256");
    is_int(dkimsign_key_bits(keys[0]), 2048, "  of 2048 bits");
    is_str(dkimsign_key_domain(keys[0]), "example.test", "  the domain lower-cased");
    free(pem);
    pem = pem_of(ed, NULL);
    keys[1] = dkimsign_key_parse(pem, strlen(pem), "example.test", "ed1", &why);
    ok(keys[1] != NULL, "an Ed25519 key parses");
    is_int(dkimsign_key_alg(keys[1]), DKIMSIGN_ED25519_SHA256, "  as ed25519-sha256");
    is_str(dkimsign_alg_name(DKIMSIGN_ED25519_SHA256), "ed25519-sha256", "  its name");
    free(pem);
    pem = pem_of(ed, "secret");
    ok(dkimsign_key_parse(pem, strlen(pem), "example.test", "x", &why) == NULL,
       "an encrypted key is refused (no prompt)");
    like(why, "encrypted", "  with a reason");
    free(pem);
    pem = pem_of(ec, NULL);
    ok(dkimsign_key_parse(pem, strlen(pem), "example.test", "x", &why) == NULL,
       "an EC key is refused");
    like(why, "neither an RSA nor an Ed25519", "  with a reason");
    free(pem);
    pem = pem_of(small, NULL);
    ok(dkimsign_key_parse(pem, strlen(pem), "example.test", "x", &why) == NULL,
       "RSA 512 is refused");
    like(why, "1024", "  with a reason");
    free(pem);
    ok(dkimsign_key_parse("garbage", 7, "example.test", "x", &why) == NULL, "garbage is refused");

    f = fopen(path, "w");
    txt = dkimsign_key_txt(keys[0]);
    like(txt, "v=DKIM1; k=rsa; p=MII", "RSA record: v=DKIM1; k=rsa; p=<SubjectPublicKeyInfo>");
    fprintf(f, "rsa1._domainkey.example.test %s\n", txt);
    free(txt);
    txt = dkimsign_key_txt(keys[1]);
    like(txt, "v=DKIM1; k=ed25519; p=", "Ed25519 record: v=DKIM1; k=ed25519; p=<raw key>");
    is_int(strlen(txt), strlen("v=DKIM1; k=ed25519; p=") + 44, "  32 bytes of key in base64");
    fprintf(f, "ed1._domainkey.example.test %s\n", txt);
    free(txt);
    fclose(f);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(small);
}

static const char *plain =
    "From: Alice <alice@example.test>\r\n"
    "To: bob@example.org\r\n"
    "Subject: hello\r\n"
    "Date: Fri, 15 Jan 2027 08:00:00 +0000\r\n"
    "Message-ID: <1@example.test>\r\n"
    "Received: from somewhere\r\n"
    "\r\n"
    "Hello Bob.\r\n";

static void messages(void)
{
    char *m, *t;
    int n;

    m = sign(plain, 2, 65536);
    like(m, "a=rsa-sha256;", "an rsa-sha256 signature");
    like(m, "a=ed25519-sha256;", "an ed25519-sha256 signature");
    like(m, "c=relaxed/relaxed;", "relaxed/relaxed");
    {
        char *t_tag = xasprintf("t=%lld;", (long long)NOW);

        like(m, t_tag, "t= is the signing time");
        free(t_tag);
    }
    ok(strstr(m, "x=") == NULL && strstr(m, " l=") == NULL, "no x=, no l=");
    {
        buf_t *u = buf_new(0);

        for (const char *p = m; *p; p++)        /* unfolded */
            if (*p != '\r' && *p != '\n' && *p != '\t')
                buf_putc(u, *p);
        like(buf_cstr(u), "h=From:To:Subject:Date:Message-ID:From:To:Subject:Date:Message-ID;",
             "h= lists each once-only field present, then each once more (oversigned)");
        ok(strstr(buf_cstr(u), "Sender") == NULL && strstr(buf_cstr(u), "Reply-To") == NULL
           && strstr(buf_cstr(u), ":Cc") == NULL, "  and the absent ones not at all");
        buf_free(&u);
    }
    ok(strstr(m, "Received;") == NULL && strstr(m, "Received:") == strstr(m, "Received: from"),
       "Received is not signed");
    for (const char *p = m; (p = strstr(p, "\n")) != NULL; p++)
        if (p[-1] != '\r') {
            ok(0, "every line of the signature ends in CRLF");
            break;
        }
    {
        const char *end = strstr(m, "From: Alice");
        size_t longest = 0, cur = 0;

        for (const char *p = m; p < end; p++, cur++) {
            if (*p == '\n')
                cur = 0;
            if (cur > longest)
                longest = cur;
        }
        ok(longest <= 80, "the signature lines are folded (longest %zu)", longest);
    }
    is_int(verify(m, &n), 2, "libopendkim verifies both");
    is_int(n, 2, "  and finds two signatures");

    t = xasprintf("Received: from relay\r\n%s", m);
    is_int(verify(t, &n), 2, "a Received: added on top breaks neither");
    free(t);
    quiet = 1;
    t = xstrdup(m);
    *strstr(t, "Hello Bob") = 'J';
    is_int(verify(t, &n), 0, "a changed body breaks both");
    free(t);
    t = xasprintf("From: Mallory <m@evil.test>\r\n%s", m);
    is_int(verify(t, &n), 0, "a second From: above breaks both (oversigned)");
    free(t);
    t = xstrdup(m);
    {
        char *at = strstr(t, "\r\n\r\nHello");
        char *u = xasprintf("%.*s\r\nSubject: other%s", (int)(at - t), t, at);

        is_int(verify(u, &n), 0, "a second Subject: below breaks both (oversigned)");
        free(u);
    }
    free(t);
    free(m);
    quiet = 0;

    m = sign(plain, 1, 65536);
    is_int(verify(m, &n), 1, "one key: one signature");
    free(m);
    {
        char *a = sign(plain, 2, 65536), *b = sign(plain, 2, 1);

        is_str(a, b, "the body fed a byte at a time signs the same");
        free(a);
        free(b);
    }
}

static void edge_cases(void)
{
    char *m;

    both_pass("From: a@example.test\r\n"
              "Subject:   folded \t subject \r\n"
              "\t  across   lines\t \r\n"
              "To:\r\n  bob@example.org,\r\n  carol@example.org\r\n"
              "\r\n"
              "line with trailing blanks \t \r\n"
              "runs  \t of   white\t\tspace\r\n"
              "  \t \r\n"
              "\r\n"
              "\r\n", "folded fields, white space, trailing empty lines");
    both_pass("From: a@example.test\r\nSubject: empty\r\n\r\n", "an empty body");
    both_pass("From: a@example.test\r\nSubject: only blank lines\r\n\r\n\r\n  \r\n\r\n",
              "a body of blank lines");
    both_pass("From: a@example.test\r\nSubject: no body\r\n", "a header without a body");
    both_pass("From: =?UTF-8?B?w6lsw6hu?= <a@example.test>\r\n"
              "Subject: caf\xc3\xa9 \xe2\x98\x95\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n"
              "Content-Transfer-Encoding: 8bit\r\n"
              "\r\n"
              "\xc3\xa9t\xc3\xa9 \xff\xfe bytes\r\n", "8-bit bytes in header and body");
    both_pass("From: a@example.test\r\nTo: b@example.org\r\nTo: c@example.org\r\n"
              "Subject: two To fields\r\n\r\nx\r\n", "a field that occurs twice");
    /* A body without its final CRLF: the SMTP client adds it on the wire,
     * and relaxed canonicalization adds it too, so the signature made
     * over "text" verifies over "text\r\n". */
    {
        char *a = sign("From: a@example.test\r\n\r\nno line end", 2, 65536);
        char *b = sign("From: a@example.test\r\n\r\nno line end\r\n", 2, 65536);
        char *wire = xasprintf("%s\r\n", a);
        int n;

        like(a, "a=ed25519-sha256", "a body without its final CRLF signs");
        ok(strncmp(a, b, strlen(b) - strlen("From: a@example.test\r\n\r\nno line end\r\n")) == 0,
           "  the same signature as with the CRLF");
        is_int(verify(wire, &n), 2, "  and verifies as sent (with the CRLF)");
        free(a);
        free(b);
        free(wire);
    }
    /* Bare LF line ends: signed as the SMTP client sends them (CR LF). */
    {
        const char *lf = "From: a@example.test\nSubject: lf\n\tfolded\n\nline 1\nline 2 \n\n";
        char *a = sign(lf, 2, 3), *w = wire(a);
        char *b = sign_rc(strstr(w, "From: a@"), 2, 65536, NULL, NULL);
        int n;

        is_int(verify(w, &n), 2, "bare LF line ends: verifies as sent (with CR LF)");
        ok(b && strncmp(a, b, (size_t)(strstr(a, "From: a@") - a)) == 0,
           "  the same signatures as with CR LF");
        free(a);
        free(b);
        free(w);
    }
    /* What libopendkim would canonicalize otherwise than RFC 6376. */
    {
        static const struct {
            const char *msg, *why, *name;
        } nos[] = {
            {"From: a@example.test\r\n\r\na\rb\r\n", "bare CR in the body", "a bare CR in the body"},
            {"From: a@example.test\r\n\r\nab\r", "bare CR at the end", "a bare CR ending the body"},
            {"From: a@example.test\r\nSubject: a\rb\r\n\r\nx\r\n", "bare CR in a header field",
             "a bare CR in Subject:"},
            {"To: b@example.org\r\n\r\nx\r\n", "no From", "no From: field"},
        };
        for (size_t i = 0; i < sizeof(nos) / sizeof(nos[0]); i++) {
            const char *why = NULL;
            int rc = 0;

            m = sign_rc(nos[i].msg, 2, 1, &rc, &why);
            ok(m == NULL && rc == 1, "not signed: %s (%d)", nos[i].name, rc);
            like(why ? why : "", nos[i].why, "  with the reason");
            free((char *)why);
            free(m);
        }
    }
    {
        static const char nul[] = "From: a@example.test\r\nSubject: a\0b\r\n";
        dkimsign_t *s = dkimsign_new(keys, 2, NOW);
        buf_t *out = buf_new(0);
        const char *why = NULL;

        dkimsign_header(s, nul, 22);
        dkimsign_header(s, nul + 22, sizeof(nul) - 1 - 22);
        is_int(dkimsign_finish(s, out, &why), 1, "not signed: a NUL in Subject:");
        like(why ? why : "", "NUL in a header field", "  with the reason");
        is_int(out->len, 0, "  nothing appended");
        dkimsign_free(&s);
        buf_free(&out);
    }
    {
        char *a = sign("From: a@example.test\r\nReceived: a\rb\r\n\r\nx\r\n", 2, 65536);
        int n;

        is_int(verify(a, &n), 2, "a bare CR in an unsigned field: signed, and verifies");
        free(a);
    }
    /* The relaxed hash of an empty body is SHA-256 of nothing. */
    m = sign("From: a@example.test\r\n\r\n\r\n\r\n", 1, 65536);
    like(m, "bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;",
         "empty lines only: the body hash of the empty body");
    free(m);
}

int main(void)
{
    char dir[] = "/tmp/dkimsign-XXXXXX", *path;
    int qm = DKIM_QUERY_FILE;

    if (mkdtemp(dir) == NULL)
        return 1;
    NOW = time(NULL) - 60;
    path = xasprintf("%s/keys", dir);
    lib = dkim_init(NULL, NULL);
    keys_and_records(path);
    dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYMETHOD, &qm, sizeof(qm));
    dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYINFO, path, strlen(path));
    if (keys[0] && keys[1]) {
        messages();
        edge_cases();
    }
    dkimsign_key_free(&keys[0]);
    dkimsign_key_free(&keys[1]);
    ok(keys[0] == NULL, "dkimsign_key_free NULLs the pointer");
    dkim_close(lib);
    unlink(path);
    rmdir(dir);
    free(path);
    return done_testing();
}
