/*
 * dkim.c - "mailctl dkim": the DKIM signing keys of dkim_key_directory
 * (lib/dkimkeys), which cleanup loads when it starts.
 *
 *   mailctl dkim keygen [-f] DOMAIN [SELECTOR]
 *       as root: an RSA 2048 key and an Ed25519 key, made with OpenSSL's
 *       EVP API, written as DIR/DOMAIN/SELECTOR-rsa.key and
 *       DIR/DOMAIN/SELECTOR-ed25519.key (PKCS#8 PEM, root's, mode 0600;
 *       DIR and DIR/DOMAIN made root's, mode 0755, where missing), then
 *       the DNS records to publish for them; "mailctl reload" (or start)
 *       makes cleanup sign DOMAIN's mail with both.  SELECTOR defaults to
 *       the year and month (202612).  An existing key file is kept and
 *       the command fails, unless -f, which replaces both.
 *   mailctl dkim list
 *       the keys cleanup would load: domain, selector, algorithm, the DNS
 *       name of the record, the file; each key cleanup would skip, with
 *       its reason, on standard error (exit status 1).
 *
 * Safety: DIR's parent must be trusted as configuration is (root's,
 * writable by nobody else, every directory above it too: lib/trustpath);
 * the directories are made with mkdirat() relative to it and opened with
 * O_NOFOLLOW, then checked (root's, not writable by group or others).
 * The keys are written to a temporary name created with O_CREAT | O_EXCL
 * | O_NOFOLLOW and mode 0600 whatever the umask (init_create_at), made
 * durable, and renamed into place with RENAME_NOREPLACE (without -f), so
 * a key file is complete or absent and an existing one is never cut.
 * DOMAIN must be a domain name, SELECTOR a selector (letters, digits,
 * '-' and '.'; no '/', no "..").
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "conf.h"
#include "dkimkeys.h"
#include "mailctl.h"
#include "trustpath.h"
#include "xalloc.h"

static int dkim_usage(void)
{
    fprintf(stderr, "usage: mailctl dkim keygen [-f] DOMAIN [SELECTOR] | list\n");
    return 2;
}

/* dirfd/name as a root-owned directory not writable by others, made
 * (mode 0755) if missing; an O_RDONLY descriptor, or -1 (reason printed). */
static int dkim_dir_at(int dirfd, const char *path, const char *name)
{
    struct stat st;
    int fd, made = 0;

    if (mkdirat(dirfd, name, 0755) == 0)
        made = 1;
    else if (errno != EEXIST) {
        fprintf(stderr, "mailctl: %s: cannot create: %s\n", path, strerror(errno));
        return -1;
    }
    fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "mailctl: %s: %s\n", path,
                errno == ENOTDIR || errno == ELOOP ? "not a directory" : strerror(errno));
        return -1;
    }
    if (made && fchmod(fd, 0755) < 0) {
        fprintf(stderr, "mailctl: %s: cannot set its mode: %s\n", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (fstat(fd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 022)) {
        fprintf(stderr, "mailctl: %s: must be root's and writable by nobody else\n", path);
        close(fd);
        return -1;
    }
    if (made)
        printf("created %s\n", path);
    return fd;
}

/* Write key as dirfd/name through a temporary file; 0 or -1. */
static int dkim_write_key(int dirfd, const char *dirpath, const char *name, EVP_PKEY *key,
                          int force)
{
    char *tmp = xasprintf(".%s.tmp", name);
    buf_t *errs = buf_new(0);
    FILE *fp = NULL;
    int fd, rc = -1;

    (void)unlinkat(dirfd, tmp, 0);      /* a leftover of an interrupted run */
    if ((fd = init_create_at(dirfd, dirpath, tmp, 0600, errs)) < 0) {
        fprintf(stderr, "mailctl: %s", buf_cstr(errs));
        goto out;
    }
    if ((fp = fdopen(fd, "w")) == NULL) {
        close(fd);
        goto fail;
    }
    if (!PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL) || fflush(fp) != 0
        || fsync(fileno(fp)) < 0)
        goto fail;
    if (fclose(fp) != 0) {
        fp = NULL;
        goto fail;
    }
    fp = NULL;
    if (renameat2(dirfd, tmp, dirfd, name, force ? 0 : RENAME_NOREPLACE) < 0) {
        fprintf(stderr, "mailctl: %s/%s: %s\n", dirpath, name,
                errno == EEXIST ? "exists (use -f to replace it)" : strerror(errno));
        (void)unlinkat(dirfd, tmp, 0);
        goto out;
    }
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "mailctl: %s/%s: cannot write the key: %s\n", dirpath, tmp, strerror(errno));
    if (fp)
        fclose(fp);
    (void)unlinkat(dirfd, tmp, 0);
out:
    free(tmp);
    buf_free(&errs);
    return rc;
}

static int dkim_keygen(int argc, char **argv)
{
    static const char *const algs[2] = {"rsa", "ed25519"};
    const char *dir, *slash;
    char selector[64], *domain, *parent, *names[2] = {NULL, NULL}, *domdir = NULL;
    uid_t root = 0;
    buf_t *errs;
    EVP_PKEY *keys[2] = {NULL, NULL};
    int ch, force = 0, rc = 1, pfd = -1, dfd = -1, kfd = -1;
    struct stat st;

    optind = 0;
    while ((ch = getopt(argc, argv, "+f")) != -1) {
        if (ch != 'f')
            return dkim_usage();
        force = 1;
    }
    if (argc - optind < 1 || argc - optind > 2)
        return dkim_usage();
    domain = xstrdup(argv[optind]);
    for (char *p = domain; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    if (argc - optind == 2) {
        snprintf(selector, sizeof(selector), "%s", argv[optind + 1]);
    } else {
        time_t now = time(NULL);
        struct tm tm;

        strftime(selector, sizeof(selector), "%Y%m", localtime_r(&now, &tm));
    }
    if (!dkimkeys_domain_valid(domain)) {
        fprintf(stderr, "mailctl: '%s' is not a domain name\n", argv[optind]);
        free(domain);
        return 2;
    }
    /* The selector and its suffix must make a selector (at most 63). */
    {
        char *probe = xasprintf("%s-ed25519", selector);
        size_t given = argc - optind == 2 ? strlen(argv[optind + 1]) : 0;
        int good = given < sizeof(selector) && dkimkeys_domain_valid(probe)
                   && strlen(probe) <= 63;

        free(probe);
        if (!good) {
            fprintf(stderr, "mailctl: '%s' is not a selector (letters, digits, '-' and '.', "
                    "at most 55)\n", selector);
            free(domain);
            return 2;
        }
    }
    if (geteuid() != 0) {
        fprintf(stderr, "mailctl: dkim keygen must run as root (the keys are root's)\n");
        free(domain);
        return 1;
    }
    errs = buf_new(0);
    if (mailctl_load_config(0) < 0)
        goto out;
    dir = conf_str("dkim_key_directory");
    if (*dir != '/' || (slash = strrchr(dir, '/'))[1] == '\0') {
        fprintf(stderr, "mailctl: dkim_key_directory '%s' must be an absolute path\n", dir);
        goto out;
    }
    parent = slash == dir ? xstrdup("/") : xstrndup(dir, (size_t)(slash - dir));
    pfd = trustpath_open(parent, TRUSTPATH_DIR, &root, 1, errs);
    free(parent);
    if (pfd < 0) {
        fprintf(stderr, "mailctl: %s", buf_cstr(errs));
        goto out;
    }
    if ((dfd = dkim_dir_at(pfd, dir, slash + 1)) < 0)
        goto out;
    domdir = xasprintf("%s/%s", dir, domain);
    if ((kfd = dkim_dir_at(dfd, domdir, domain)) < 0)
        goto out;
    for (int i = 0; i < 2; i++) {
        names[i] = xasprintf("%s-%s.key", selector, algs[i]);
        if (!force && fstatat(kfd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0) {
            fprintf(stderr, "mailctl: %s/%s: exists (use -f to replace it)\n", domdir,
                    names[i]);
            goto out;
        }
    }
    keys[0] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    keys[1] = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (keys[0] == NULL || keys[1] == NULL) {
        fprintf(stderr, "mailctl: cannot make the keys (OpenSSL)\n");
        goto out;
    }
    for (int i = 0; i < 2; i++)
        if (dkim_write_key(kfd, domdir, names[i], keys[i], force) < 0)
            goto out;
    if (fsync(kfd) < 0)
        fprintf(stderr, "mailctl: warning: %s: fsync: %s\n", domdir, strerror(errno));
    printf("wrote %s/%s (rsa-sha256, 2048 bits) and %s/%s (ed25519-sha256)\n", domdir, names[0],
           domdir, names[1]);
    printf("; publish these records in DNS (mailctl dns %s prints all the domain needs):\n",
           domain);
    for (int i = 0; i < 2; i++) {
        char *path = xasprintf("%s/%s", domdir, names[i]), *sel = xasprintf("%s-%s", selector,
                                                                            algs[i]);
        BIO *b = BIO_new(BIO_s_mem());
        char *pem;
        long n;
        const char *why;
        dkimsign_key_t *k;

        PEM_write_bio_PrivateKey(b, keys[i], NULL, NULL, 0, NULL, NULL);
        n = BIO_get_mem_data(b, &pem);
        if ((k = dkimsign_key_parse(pem, (size_t)n, domain, sel, &why)) != NULL)
            mailctl_dns_dkim(stdout, k, path);
        dkimsign_key_free(&k);
        BIO_free(b);
        free(path);
        free(sel);
    }
    printf("; then \"mailctl reload\" (or start): mail from %s is signed with both keys\n", domain);
    rc = 0;
out:
    for (int i = 0; i < 2; i++) {
        EVP_PKEY_free(keys[i]);
        free(names[i]);
    }
    if (kfd >= 0)
        close(kfd);
    if (dfd >= 0)
        close(dfd);
    if (pfd >= 0)
        close(pfd);
    free(domdir);
    free(domain);
    buf_free(&errs);
    return rc;
}

static int dkim_list(void)
{
    buf_t *errs = buf_new(0), *warns = buf_new(0);
    uid_t owners[2];
    size_t nowners = trustpath_owners(owners);
    dkimkeys_t *keys;
    int rc = 0;

    if (mailctl_load_config(0) < 0) {
        buf_free(&errs);
        buf_free(&warns);
        return 1;
    }
    keys = dkimkeys_load(conf_str("dkim_key_directory"), owners, nowners, errs, warns);
    for (size_t i = 0; i < keys->n; i++) {
        const struct dkimkeys_domain *d = &keys->domains[i];

        for (size_t j = 0; j < d->n; j++) {
            const dkimsign_key_t *k = d->keys[j];
            char *bits = xasprintf("%d", dkimsign_key_bits(k));

            printf("%s\t%s\t%s\t%s\t%s._domainkey.%s\t%s\n", d->domain,
                   dkimsign_key_selector(k), dkimsign_alg_name(dkimsign_key_alg(k)),
                   dkimsign_key_alg(k) == DKIMSIGN_RSA_SHA256 ? bits : "-",
                   dkimsign_key_selector(k), d->domain, d->paths[j]);
            free(bits);
        }
    }
    if (keys->n == 0)
        fprintf(stderr, "mailctl: no DKIM keys in %s\n", conf_str("dkim_key_directory"));
    for (buf_t *b = errs; b; b = b == errs ? warns : NULL) {
        for (char *line = b->data, *next; line && *line; line = next) {
            if ((next = strchr(line, '\n')) != NULL)
                *next++ = '\0';
            fprintf(stderr, "mailctl: %s%s\n", b == errs ? "skipped: " : "warning: ", line);
        }
    }
    if (errs->len > 0)
        rc = 1;
    dkimkeys_free(&keys);
    buf_free(&errs);
    buf_free(&warns);
    return rc;
}

int cmd_dkim(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "keygen") == 0)
        return dkim_keygen(argc - 1, argv + 1);
    if (argc == 2 && strcmp(argv[1], "list") == 0)
        return dkim_list();
    return dkim_usage();
}
