/*
 * tlsgen.c - make a self-signed certificate for a new instance (mailctl
 * init): an ECDSA P-256 key, valid for ten years, with CN and
 * subjectAltName set to the host name, written as key.pem (mode 0600) and
 * cert.pem (0644) into a directory init has opened and checked.  Both are
 * created through that descriptor with O_CREAT | O_EXCL | O_NOFOLLOW and
 * get their mode with fchmod() (init_create_at), so neither a symbolic
 * link planted there nor the umask can send the key anywhere else.
 * Failure modes: returns -1 with a "FILE: reason" line appended to errs
 * (an existing key.pem or cert.pem is one).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mailctl.h"
#include "xalloc.h"

static int write_pem(int dirfd, const char *dir, const char *name, mode_t mode, EVP_PKEY *key,
                     X509 *cert, buf_t *errs)
{
    int fd = init_create_at(dirfd, dir, name, mode, errs);
    FILE *fp;
    int ok;

    if (fd < 0)
        return -1;
    if ((fp = fdopen(fd, "w")) == NULL) {
        buf_printf(errs, "%s/%s: cannot write: %s\n", dir, name, strerror(errno));
        close(fd);
        return -1;
    }
    ok = key ? PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(fp, cert);
    if (fclose(fp) != 0 || !ok) {
        buf_printf(errs, "%s/%s: cannot write\n", dir, name);
        return -1;
    }
    return 0;
}

int tlsgen_self_signed(const char *hostname, int dirfd, const char *dir, buf_t *errs)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    X509_NAME *name;
    X509_EXTENSION *ext;
    X509V3_CTX ctx;
    char *san = xasprintf("DNS:%s", hostname);
    int rc = -1;

    if (key == NULL || x == NULL) {
        buf_printf(errs, "cannot create a TLS key\n");
        goto out;
    }
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL));
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3650L * 24 * 3600);
    X509_set_pubkey(x, key);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)hostname, -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
    if (ext == NULL || !X509_add_ext(x, ext, -1)) {
        buf_printf(errs, "cannot use '%s' as a certificate name\n", hostname);
        X509_EXTENSION_free(ext);
        goto out;
    }
    X509_EXTENSION_free(ext);
    if (!X509_sign(x, key, EVP_sha256())) {
        buf_printf(errs, "cannot sign the certificate\n");
        goto out;
    }
    if (write_pem(dirfd, dir, "key.pem", 0600, key, NULL, errs) < 0
        || write_pem(dirfd, dir, "cert.pem", 0644, NULL, x, errs) < 0)
        goto out;
    rc = 0;
out:
    free(san);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}
