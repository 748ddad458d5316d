/*
 * t/unit/dkimkeys.c - unit tests for lib/dkimkeys.c (run as root: the
 * files are chowned).
 *
 * Covers: a missing directory is no keys and no error; keys load from
 * DOMAIN/SELECTOR.key, sorted by domain and selector, an upper-case
 * domain directory lower-cased; a parent domain's keys sign a subdomain
 * (and the nearest parent wins), other domains find none; refused, each
 * with its path and the rest still loading: a key readable by others
 * (0644), group-writable (0660), a symbolic link, a second hard link,
 * another owner, a bad selector, a file that is no key, a domain
 * directory writable by others, a domain directory that is a symbolic
 * link, a name that is no domain; 0640 loads; files not ending in .key
 * and dot files are ignored; an RSA key of 1024 bits loads with a
 * warning; a key directory writable by others loads nothing.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "buf.h"
#include "dkimkeys.h"
#include "xalloc.h"
#include "../lib/lsan_opendkim.h"
#include "../lib/tap.h"

static char *top;
static char *ed_pem, *rsa1024_pem;
static const uid_t root[1] = {0};

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

static void put(const char *rel, const char *text, mode_t mode)
{
    char *p = xasprintf("%s/%s", top, rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        diag("cannot write %s", p);
    fchmod(fd, mode);
    close(fd);
    free(p);
}

static void dir(const char *rel, mode_t mode)
{
    char *p = xasprintf("%s/%s", top, rel);

    mkdir(p, 0700);
    chmod(p, mode);
    free(p);
}

static dkimkeys_t *load(buf_t *errs, buf_t *warns)
{
    char *d = xasprintf("%s/dkim", top);
    dkimkeys_t *k;

    buf_reset(errs);
    buf_reset(warns);
    k = dkimkeys_load(d, root, 1, errs, warns);
    free(d);
    return k;
}

int main(void)
{
    char tmpl[] = "/tmp/dkimkeys-XXXXXX";
    buf_t *errs = buf_new(0), *warns = buf_new(0);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    const struct dkimkeys_domain *d;
    dkimkeys_t *k;
    char *p, *q;

    if (geteuid() != 0) {
        printf("1..0 # SKIP needs root\n");
        return 0;
    }
    if ((top = mkdtemp(tmpl)) == NULL)
        return 1;
    chmod(top, 0755);
    ed_pem = pem_of(ed);
    rsa1024_pem = pem_of(rsa);

    k = load(errs, warns);
    ok(k != NULL && k->n == 0 && errs->len == 0, "a missing directory: no keys, no error");
    dkimkeys_free(&k);

    dir("dkim", 0755);
    dir("dkim/example.test", 0755);
    dir("dkim/Sub.Example.Test", 0755);
    dir("dkim/other.test", 0755);
    put("dkim/example.test/b.key", ed_pem, 0600);
    put("dkim/example.test/a.key", rsa1024_pem, 0640);
    put("dkim/example.test/notes.txt", "not a key", 0644);
    put("dkim/example.test/.hidden.key", "not a key", 0644);
    put("dkim/Sub.Example.Test/s.key", ed_pem, 0600);
    put("dkim/other.test/open.key", ed_pem, 0644);
    put("dkim/other.test/gw.key", ed_pem, 0660);
    put("dkim/other.test/bad_sel.key", ed_pem, 0600);
    put("dkim/other.test/junk.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n", 0600);
    put("dkim/other.test/mine.key", ed_pem, 0600);
    p = xasprintf("%s/dkim/other.test/mine.key", top);
    if (chown(p, 1, 1) < 0)
        diag("chown failed");
    free(p);
    put("dkim/other.test/real.key", ed_pem, 0600);
    p = xasprintf("%s/dkim/other.test/real.key", top);
    q = xasprintf("%s/dkim/other.test/link.key", top);
    if (symlink(p, q) < 0)
        diag("symlink failed");
    free(q);
    q = xasprintf("%s/dkim/other.test/hard.key", top);
    if (link(p, q) < 0)
        diag("link failed");
    free(p);
    free(q);
    dir("dkim/open.test", 0777);
    put("dkim/open.test/x.key", ed_pem, 0600);
    dir("dkim/not_a_domain", 0755);
    p = xasprintf("%s/dkim/example.test", top);
    q = xasprintf("%s/dkim/linked.test", top);
    if (symlink(p, q) < 0)
        diag("symlink failed");
    free(p);
    free(q);

    k = load(errs, warns);
    is_int(k->n, 2, "two domains load: example.test and sub.example.test");
    is_str(k->n > 0 ? k->domains[0].domain : NULL, "example.test", "  sorted");
    is_str(k->n > 1 ? k->domains[1].domain : NULL, "sub.example.test", "  lower-cased");
    d = dkimkeys_find(k, "example.test");
    ok(d && d->n == 2, "example.test has two keys (0600 and 0640)");
    is_str(d && d->n == 2 ? dkimsign_key_selector(d->keys[0]) : NULL, "a", "  sorted by selector");
    like(d && d->n == 2 ? d->paths[1] : NULL, "/dkim/example.test/b.key", "  with their paths");
    like(buf_cstr(warns), "example.test/a.key: an RSA key of 1024 bits", "RSA 1024: a warning");
    ok(dkimkeys_find(k, "deep.a.example.test") == d, "a subdomain finds its parent's keys");
    ok(dkimkeys_find(k, "x.sub.example.test") == &k->domains[1], "  the nearest parent's");
    ok(dkimkeys_find(k, "SUB.example.TEST") == &k->domains[1], "  case does not matter");
    ok(dkimkeys_find(k, "example.org") == NULL && dkimkeys_find(k, "test") == NULL
       && dkimkeys_find(k, "other.test") == NULL, "other domains find none");
    like(buf_cstr(errs), "other.test/open.key: mode 0644", "0644 refused, with the path");
    like(buf_cstr(errs), "other.test/gw.key: mode 0660", "0660 refused");
    like(buf_cstr(errs), "other.test/bad_sel.key: 'bad_sel' is not a selector", "a bad selector");
    like(buf_cstr(errs), "other.test/junk.key: not a PEM private key", "a file that is no key");
    like(buf_cstr(errs), "other.test/mine.key: owned by uid 1", "another owner");
    like(buf_cstr(errs), "other.test/link.key: a symbolic link", "a symbolic link refused");
    like(buf_cstr(errs), "other.test/hard.key: a file with more than one link",
         "a second hard link refused");
    like(buf_cstr(errs), "other.test/real.key: a file with more than one link",
         "  (and so its first name)");
    like(buf_cstr(errs), "open.test: owned by uid 0, mode 0777", "a domain directory open to all");
    like(buf_cstr(errs), "not_a_domain: 'not_a_domain' is not a domain name", "a bad domain");
    like(buf_cstr(errs), "linked.test: not a directory", "a domain directory that is a link");
    ok(strstr(buf_cstr(errs), "notes.txt") == NULL && strstr(buf_cstr(errs), "hidden") == NULL,
       "other files and dot files are ignored");
    dkimkeys_free(&k);
    ok(k == NULL, "dkimkeys_free NULLs the pointer");

    p = xasprintf("%s/dkim", top);
    chmod(p, 0777);
    k = load(errs, warns);
    ok(k->n == 0 && strstr(buf_cstr(errs), "/dkim") != NULL,
       "a key directory open to all: nothing loads, and it says why");
    dkimkeys_free(&k);
    chmod(p, 0755);
    free(p);

    ok(dkimkeys_domain_valid("a-b.example.test") && !dkimkeys_domain_valid("..")
       && !dkimkeys_domain_valid("a/b") && !dkimkeys_domain_valid("-a.test")
       && !dkimkeys_domain_valid("a-.test") && !dkimkeys_domain_valid("a..b")
       && !dkimkeys_domain_valid(""), "dkimkeys_domain_valid");

    p = xasprintf("rm -rf '%s'", top);
    if (system(p) != 0)
        diag("cannot remove %s", top);
    free(p);
    free(ed_pem);
    free(rsa1024_pem);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(rsa);
    buf_free(&errs);
    buf_free(&warns);
    return done_testing();
}
