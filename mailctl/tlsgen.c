/*
 * tlsgen.c - make a self-signed certificate for a new instance (mailctl
 * init): an ECDSA P-256 key, valid for ten years, with CN and
 * subjectAltName set to the host name.  The key file is written 0600.
 * Failure modes: returns -1 with a sentence appended to errs.
 */
#include <errno.h>
#include <fcntl.h>
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

static int write_pem(const char *path, int mode, EVP_PKEY *key, X509 *cert, buf_t *errs)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    FILE *fp;
    int ok;

    if (fd < 0 || (fp = fdopen(fd, "w")) == NULL) {
        buf_printf(errs, "cannot write %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    ok = key ? PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(fp, cert);
    if (fclose(fp) != 0 || !ok) {
        buf_printf(errs, "cannot write %s\n", path);
        return -1;
    }
    return 0;
}

int tlsgen_self_signed(const char *hostname, const char *cert_path, const char *key_path,
                       buf_t *errs)
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
    if (write_pem(key_path, 0600, key, NULL, errs) < 0 || write_pem(cert_path, 0644, NULL, x, errs) < 0)
        goto out;
    rc = 0;
out:
    free(san);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}
