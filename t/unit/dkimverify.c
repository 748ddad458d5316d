/*
 * t/unit/dkimverify.c - unit tests for lib/dkimverify.c.  Messages are
 * signed here with libopendkim's signer and keys made for the run (RSA
 * 2048 and Ed25519), and verified with key records from a table:
 * rsa-sha256 and ed25519-sha256 pass, both on one message; a changed
 * body or header fails; a missing key is permerror, a failed lookup
 * temperror, a key record of garbage permerror; l= that leaves content
 * unsigned is policy, l= covering the body passes; 100 signatures give
 * 100 results of which only the first max are evaluated (the key lookups
 * are counted); an unsigned message, a 64 KB header field, a message that
 * ends inside its header and a broken DKIM-Signature all get results.
 * A key decoded once comes from lib/pkeycache the next time, and a new
 * key under the same name is decoded anew.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <dkim.h>

#include "base64.h"
#include "buf.h"
#include "dkimverify.h"
#include "msg.h"
#include "pkeycache.h"
#include "xalloc.h"
#include "../lib/tap.h"

struct key { char *pem; char *record; };
static struct key rsa_key, ed_key;
static const char *table_name, *table_record;
static const char *table_name2, *table_record2;
static int lookups, tempfail;

static enum dkimverify_key lookup(void *ctx, const char *name, char *buf, size_t size)
{
    (void)ctx;
    lookups++;
    if (tempfail == 1 || (tempfail == 2 && table_name2 && strcmp(name, table_name2) == 0))
        return DKIMVERIFY_KEY_TEMPFAIL;
    if (table_name && strcmp(name, table_name) == 0) {
        strlcpy(buf, table_record, size);
        return DKIMVERIFY_KEY_OK;
    }
    if (table_name2 && strcmp(name, table_name2) == 0) {
        strlcpy(buf, table_record2, size);
        return DKIMVERIFY_KEY_OK;
    }
    return DKIMVERIFY_KEY_NOTFOUND;
}

static char *b64(const unsigned char *p, size_t n)
{
    buf_t *b = buf_new(0);
    char *s;

    base64_encode(b, p, n);
    s = buf_steal(b, NULL);
    buf_free(&b);
    return s;
}

static void make_key(int type, struct key *k)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(type, NULL);
    EVP_PKEY *pkey = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    unsigned char *der = NULL, raw[32];
    size_t rawlen = sizeof(raw);
    char *data, *p;
    long n;
    int len;

    EVP_PKEY_keygen_init(ctx);
    if (type == EVP_PKEY_RSA)
        EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048);
    EVP_PKEY_keygen(ctx, &pkey);
    PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL);
    n = BIO_get_mem_data(bio, &data);
    k->pem = xstrndup(data, (size_t)n);
    if (type == EVP_PKEY_RSA) {
        len = i2d_PUBKEY(pkey, &der);
        p = b64(der, (size_t)len);
        k->record = xasprintf("v=DKIM1; k=rsa; p=%s", p);
        OPENSSL_free(der);
    } else {
        EVP_PKEY_get_raw_public_key(pkey, raw, &rawlen);
        p = b64(raw, rawlen);
        k->record = xasprintf("v=DKIM1; k=ed25519; p=%s", p);
    }
    free(p);
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
}

/* The DKIM-Signature field (with CRLF) for header + body, made in a child
 * process: libopendkim 2.11 leaks the key of every ed25519 signature it
 * makes (dkim_privkey_load), and the child's _exit() keeps that leak out
 * of this test's leak check. */
static char *sign(DKIM_LIB *lib, const struct key *k, int alg, const char *sel,
                  const char *domain, const char *header, const char *body, ssize_t length)
{
    buf_t *out = buf_new(0);
    int fds[2], status;
    pid_t pid;
    char *r;

    if (pipe(fds) < 0 || (pid = fork()) < 0)
        abort();
    if (pid == 0) {
        DKIM_STAT st;
        DKIM *d = dkim_sign(lib, (u_char *)"t", NULL, (u_char *)k->pem, (u_char *)sel,
                            (u_char *)domain, DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, alg,
                            length, &st);
        const char *p = header, *e;
        unsigned char *sig = NULL;
        size_t siglen = 0;

        close(fds[0]);
        if (d == NULL)
            _exit(1);
        while (*p) {
            e = strstr(p, "\r\n");
            while (e && (e[2] == ' ' || e[2] == '\t'))
                e = strstr(e + 2, "\r\n");
            dkim_header(d, (u_char *)p, (size_t)(e - p));
            p = e + 2;
        }
        dkim_eoh(d);
        dkim_body(d, (u_char *)body, strlen(body));
        dkim_eom(d, NULL);
        dkim_getsighdr_d(d, strlen("DKIM-Signature: "), &sig, &siglen);
        buf_append_str(out, "DKIM-Signature: ");
        for (size_t i = 0; i < siglen; i++) {
            if (sig[i] == '\n')
                buf_putc(out, '\r');
            buf_putc(out, sig[i]);
        }
        buf_append_str(out, "\r\n");
        _exit(write(fds[1], out->data, out->len) == (ssize_t)out->len ? 0 : 1);
    }
    close(fds[1]);
    if (buf_read_all(out, fds[0]) < 0)
        abort();
    close(fds[0]);
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || out->len == 0) {
        buf_free(&out);
        return NULL;
    }
    r = buf_steal(out, NULL);
    buf_free(&out);
    return r;
}

static int memfd_of(const char *s)
{
    int fd = memfd_create("m", 0);

    if (write(fd, s, strlen(s)) != (ssize_t)strlen(s))
        abort();
    return fd;
}

static int verify(dkimverify_t *v, const char *msg, size_t max, struct dkimverify_outcome *o)
{
    int fd = memfd_of(msg), rc;

    rc = dkimverify_message(v, fd, strlen(msg), max, o);
    close(fd);
    return rc;
}

static const char *HDR = "From: Alice <alice@sender.test>\r\nTo: bob@example.test\r\n"
                         "Subject: hello\r\n  folded\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\n"
                         "Message-ID: <1@sender.test>\r\n";
static const char *BODY = "Hello Bob,\r\n\r\nsee you.\r\n";

int main(void)
{
    DKIM_LIB *lib = dkim_init(NULL, NULL);
    struct dkimverify_outcome o;
    dkimverify_t *v;
    const char *why = NULL;
    char *s1, *s2, *msg;
    buf_t *b;

    msg_init("dkimverify-test", MSG_STDERR);
    make_key(EVP_PKEY_RSA, &rsa_key);
    make_key(EVP_PKEY_ED25519, &ed_key);
    v = dkimverify_new(lookup, NULL, &why);
    ok(v != NULL, "verifier made");
    table_name = "rsa._domainkey.sender.test";
    table_record = rsa_key.record;
    table_name2 = "ed._domainkey.sender.test";
    table_record2 = ed_key.record;

    s1 = sign(lib, &rsa_key, DKIM_SIGN_RSASHA256, "rsa", "sender.test", HDR, BODY, -1);
    s2 = sign(lib, &ed_key, DKIM_SIGN_ED25519SHA256, "ed", "sender.test", HDR, BODY, -1);
    ok(s1 && s2, "signed with both keys");
    msg = xasprintf("%s%s%s\r\n%s", s2, s1, HDR, BODY);
    ok(verify(v, msg, 10, &o) == 0 && o.nsig == 2, "two signatures found");
    if (o.nsig == 2) {
        is_str(o.sigs[0].result, "pass", "ed25519-sha256 passes");
        is_str(o.sigs[0].algorithm, "ed25519-sha256", "its algorithm");
        is_str(o.sigs[1].result, "pass", "rsa-sha256 passes");
        is_str(o.sigs[1].domain, "sender.test", "d=");
        is_str(o.sigs[1].selector, "rsa", "s=");
        ok(strlen(o.sigs[1].b) >= 8, "header.b has at least 8 characters (%s)", o.sigs[1].b);
    }
    dkimverify_outcome_clear(&o);
    {
        /* lib/pkeycache: the second decode of the same key record is
         * answered from the cache, with the same result; a new key under
         * the same name is decoded, and the old one is not used for it. */
        struct pkeycache_stats before, after;
        struct key rsa2;
        char *s3, *msg3;

        pkeycache_get_stats(&before);
        ok(verify(v, msg, 10, &o) == 0 && o.nsig == 2 && strcmp(o.sigs[1].result, "pass") == 0,
           "verified again: rsa-sha256 passes");
        dkimverify_outcome_clear(&o);
        pkeycache_get_stats(&after);
        ok(after.hits == before.hits + 1 && after.misses == before.misses,
           "the RSA key came from pkeycache (hits %llu->%llu, misses %llu->%llu)",
           (unsigned long long)before.hits, (unsigned long long)after.hits,
           (unsigned long long)before.misses, (unsigned long long)after.misses);
        make_key(EVP_PKEY_RSA, &rsa2);
        table_record = rsa2.record;
        ok(verify(v, msg, 10, &o) == 0 && o.nsig == 2 && strcmp(o.sigs[1].result, "fail") == 0,
           "the record changed to another key: the old signature fails (%s)",
           o.nsig == 2 ? o.sigs[1].comment : "");
        dkimverify_outcome_clear(&o);
        pkeycache_get_stats(&before);
        ok(before.misses == after.misses + 1, "the new key was decoded, not taken from the cache");
        s3 = sign(lib, &rsa2, DKIM_SIGN_RSASHA256, "rsa", "sender.test", HDR, BODY, -1);
        msg3 = xasprintf("%s%s\r\n%s", s3, HDR, BODY);
        ok(verify(v, msg3, 10, &o) == 0 && o.nsig == 1 && strcmp(o.sigs[0].result, "pass") == 0,
           "a signature by the new key passes");
        dkimverify_outcome_clear(&o);
        pkeycache_get_stats(&after);
        ok(after.hits == before.hits + 1, "with the new key from the cache");
        table_record = rsa_key.record;
        free(s3);
        free(msg3);
        free(rsa2.pem);
        free(rsa2.record);
    }
    tempfail = 2;
    ok(verify(v, msg, 10, &o) == 0 && o.nsig == 2 && strcmp(o.sigs[0].result, "temperror") == 0
       && strcmp(o.sigs[1].result, "pass") == 0,
       "one key lookup fails for now: that signature temperror, the other passes");
    tempfail = 0;
    dkimverify_outcome_clear(&o);
    free(msg);

    msg = xasprintf("%s%s\r\n%s", s1, HDR, "Hello Bob,\r\n\r\nsee you later.\r\n");
    ok(verify(v, msg, 10, &o) == 0 && o.nsig == 1 && strcmp(o.sigs[0].result, "fail") == 0,
       "changed body: fail (%s)", o.nsig ? o.sigs[0].comment : "");
    dkimverify_outcome_clear(&o);
    free(msg);
    msg = xasprintf("%s%s\r\n%s", s1, "From: Mallory <alice@sender.test>\r\nTo: bob@example.test\r\n"
                    "Subject: hello\r\n  folded\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\n"
                    "Message-ID: <1@sender.test>\r\n", BODY);
    ok(verify(v, msg, 10, &o) == 0 && o.nsig == 1 && strcmp(o.sigs[0].result, "fail") == 0,
       "changed From: fail");
    dkimverify_outcome_clear(&o);
    free(msg);

    msg = xasprintf("%s%s\r\n%s", s1, HDR, BODY);
    table_name = "other._domainkey.sender.test";
    ok(verify(v, msg, 10, &o) == 0 && o.nsig == 1 && strcmp(o.sigs[0].result, "permerror") == 0,
       "no key: permerror (%s)", o.nsig ? o.sigs[0].comment : "");
    dkimverify_outcome_clear(&o);
    tempfail = 1;
    ok(verify(v, msg, 10, &o) == 0 && o.nsig == 1 && strcmp(o.sigs[0].result, "temperror") == 0,
       "failed lookup: temperror");
    dkimverify_outcome_clear(&o);
    tempfail = 0;
    table_name = "rsa._domainkey.sender.test";
    table_record = "v=DKIM1; k=rsa; p=!!!garbage\x01\x02;;;=";
    ok(verify(v, msg, 10, &o) == 0 && o.nsig == 1 && strcmp(o.sigs[0].result, "permerror") == 0,
       "key record of garbage: permerror (%s)", o.nsig ? o.sigs[0].comment : "");
    dkimverify_outcome_clear(&o);
    table_record = rsa_key.record;
    free(msg);
    free(s1);
    free(s2);

    s1 = sign(lib, &rsa_key, DKIM_SIGN_RSASHA256, "rsa", "sender.test", HDR, BODY,
              (ssize_t)strlen(BODY));
    msg = xasprintf("%s%s\r\n%s", s1, HDR, BODY);
    ok(verify(v, msg, 10, &o) == 0 && o.nsig == 1 && strcmp(o.sigs[0].result, "pass") == 0,
       "l= covering the whole body: pass");
    dkimverify_outcome_clear(&o);
    free(msg);
    msg = xasprintf("%s%s\r\n%sBUY NOW\r\n", s1, HDR, BODY);
    ok(verify(v, msg, 10, &o) == 0 && o.nsig == 1 && strcmp(o.sigs[0].result, "policy") == 0,
       "l= with content after it: policy (%s)", o.nsig ? o.sigs[0].comment : "");
    dkimverify_outcome_clear(&o);
    free(msg);

    b = buf_new(0);
    for (int i = 0; i < 100; i++)
        buf_append_str(b, s1);
    buf_append_str(b, HDR);
    buf_append_str(b, "\r\n");
    buf_append_str(b, BODY);
    lookups = 0;
    ok(verify(v, buf_cstr(b), 10, &o) == 0 && o.nsig == 100, "100 signatures: 100 results");
    {
        size_t pass = 0, policy = 0;

        for (size_t i = 0; i < o.nsig; i++) {
            pass += strcmp(o.sigs[i].result, "pass") == 0;
            policy += strcmp(o.sigs[i].result, "policy") == 0;
        }
        ok(pass == 10 && policy == 90, "10 evaluated and passed, 90 not evaluated (%zu/%zu)",
           pass, policy);
        ok(lookups <= 10, "at most 10 key lookups (%d)", lookups);
    }
    dkimverify_outcome_clear(&o);
    buf_free(&b);
    free(s1);

    ok(verify(v, "From: a@b.test\r\n\r\nbody\r\n", 10, &o) == 0 && o.nsig == 0, "unsigned: none");
    dkimverify_outcome_clear(&o);
    b = buf_new(0);
    buf_append_str(b, "DKIM-Signature: v=1; a=rsa-sha256; d=sender.test; s=rsa; h=from; bh=x; b=");
    for (int i = 0; i < 65536; i++)
        buf_putc(b, 'A');
    buf_append_str(b, "\r\nX-Long: ");
    for (int i = 0; i < 65536; i++)
        buf_putc(b, i % 70 == 69 ? ' ' : 'x');
    buf_append_str(b, "\r\nFrom: a@b.test\r\n\r\nbody\r\n");
    ok(verify(v, buf_cstr(b), 10, &o) == 0 && o.nsig >= 1 && strcmp(o.sigs[0].result, "pass") != 0,
       "64 KB fields and a broken signature: a result (%s)", o.nsig ? o.sigs[0].result : "none");
    dkimverify_outcome_clear(&o);
    buf_free(&b);
    ok(verify(v, "DKIM-Signature: v=1; a=rsa-sha256; d=x.test; s=y; bh=; b=\r\nFrom: a@b", 10, &o)
       == 0, "a message that ends inside its header: a result (%zu)", o.nsig);
    dkimverify_outcome_clear(&o);
    ok(verify(v, "DKIM-Signature: garbage\r\nno colon here\r\n\r\n", 10, &o) == 0,
       "garbage signature: a result (%s)", o.nsig ? o.sigs[0].result : "none");
    dkimverify_outcome_clear(&o);
    {
        int fd = memfd_of("short");

        ok(dkimverify_message(v, fd, 1000, 10, &o) < 0, "a descriptor shorter than its length: -1");
        close(fd);
    }
    dkimverify_free(&v);
    ok(v == NULL, "freed");
    dkim_close(lib);
    free(rsa_key.pem);
    free(rsa_key.record);
    free(ed_key.pem);
    free(ed_key.record);
    return done_testing();
}
