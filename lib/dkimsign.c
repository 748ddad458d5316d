/*
 * dkimsign - DKIM keys, and DKIM-Signature fields made by libopendkim
 * (see dkimsign.h).
 *
 * libopendkim does the DKIM work: the canonicalization, the body and
 * header hashes, the tag list and the signature.  This module keeps the
 * keys, chooses the fields to sign and the oversigned ones, and turns the
 * message into the form it has on the wire before libopendkim sees it.
 *
 * Cost (bench/dkim_bench): dkim_sign() takes the key as text and parses
 * it again for every message; on OpenSSL 3.0 that parse costs about 0.5
 * ms a key whatever the form (PEM, or the base64 DER dkim_sign also
 * takes, which only works for RSA: it is recognised by its "MII" prefix),
 * so the key is kept as PEM, the one form for both algorithms.  Each
 * handle canonicalizes and hashes the body for itself (libopendkim's
 * dkim_resign, which would share it, is not compiled into Debian's
 * library).
 *
 * libopendkim 2.11 (Debian's 2.11.0~beta2) leaks with Ed25519: dkim_free()
 * frees the key a handle loaded (its EVP_PKEY, BIO and output buffer)
 * only for RSA, so each Ed25519 signature leaves about 470 bytes behind
 * (t/lib/lsan_opendkim.h).  There is no call to free them through, so
 * dkimsign_leaky_handles() counts them, and cleanup ends its process
 * before they add up.
 *
 * Header fields are handed to dkim_header() without their final line end
 * (libopendkim's convention).  Only the fields to be signed are handed
 * over, so an odd field elsewhere (a name with a ';', 8-bit bytes in a
 * name) cannot make dkim_header() fail.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include <opendkim/dkim.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "base64.h"
#include "dkimsign.h"
#include "msg.h"
#include "xalloc.h"

#define DKIMSIGN_ID       ((const unsigned char *)"posthorn")
#define DKIMSIGN_SIGHDR   "DKIM-Signature: "

struct dkimsign_key {
    char             *pem;      /* unencrypted PKCS#8 PEM: what dkim_sign() takes */
    EVP_PKEY         *pkey;     /* for the public key of the TXT record */
    enum dkimsign_alg alg;
    int               bits;
    char             *domain;
    char             *selector;
};

/* The fields signed; once: oversigned when present. */
static const struct {
    const char *name;
    int         once;
} dkimsign_fields[] = {
    {"From", 1}, {"Sender", 1}, {"Reply-To", 1}, {"To", 1}, {"Cc", 1}, {"Subject", 1},
    {"Date", 1}, {"Message-ID", 1}, {"In-Reply-To", 1}, {"References", 1},
    {"Resent-Date", 0}, {"Resent-From", 0}, {"Resent-Sender", 0}, {"Resent-To", 0},
    {"Resent-Cc", 0}, {"Resent-Message-ID", 0},
    {"List-Id", 0}, {"List-Help", 0}, {"List-Unsubscribe", 0}, {"List-Unsubscribe-Post", 0},
    {"List-Subscribe", 0}, {"List-Post", 0}, {"List-Owner", 0}, {"List-Archive", 0},
    {"MIME-Version", 1}, {"Content-Type", 1}, {"Content-Transfer-Encoding", 1},
    {"Content-ID", 0}, {"Content-Description", 0},
};
#define DKIMSIGN_NFIELDS (sizeof(dkimsign_fields) / sizeof(dkimsign_fields[0]))
#define DKIMSIGN_FROM    0      /* dkimsign_fields[0] */

struct dkimsign {
    DKIM          **d;          /* one signing handle per key */
    size_t          n;
    uint64_t        now;
    bool            eoh;        /* dkim_eoh done: the body has begun */
    bool            body;       /* body bytes seen */
    unsigned char   last;       /* the last body byte */
    bool            present[DKIMSIGN_NFIELDS];
    const char     *nosign;     /* why the message cannot be signed */
    buf_t          *err;        /* libopendkim's first failure, or empty */
};

/* Ed25519 signing handles made by this process (see the header). */
static unsigned long dkimsign_leaky;

/* --------------------------------------------------------- the library */

static DKIM_LIB *dkimsign_lib(void)
{
    static DKIM_LIB *lib;
    static const char *names[DKIMSIGN_NFIELDS + 1];

    if (lib != NULL)
        return lib;
    if ((lib = dkim_init(NULL, NULL)) == NULL)
        msg_fatal("libopendkim: dkim_init failed");
    for (size_t i = 0; i < DKIMSIGN_NFIELDS; i++)
        names[i] = dkimsign_fields[i].name;
    names[DKIMSIGN_NFIELDS] = NULL;
    if (dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS, names, sizeof(char **))
        != DKIM_STAT_OK)
        msg_panic("libopendkim refuses the list of fields to sign");
    return lib;
}

/* A libopendkim signing handle for key k (relaxed/relaxed, k's
 * algorithm), or NULL with *st. */
static DKIM *dkimsign_handle(const dkimsign_key_t *k, DKIM_STAT *st)
{
    return dkim_sign(dkimsign_lib(), DKIMSIGN_ID, NULL, (unsigned char *)k->pem,
                     (const unsigned char *)k->selector, (const unsigned char *)k->domain,
                     DKIM_CANON_RELAXED, DKIM_CANON_RELAXED,
                     k->alg == DKIMSIGN_RSA_SHA256 ? DKIM_SIGN_RSASHA256 : DKIM_SIGN_ED25519SHA256,
                     -1, st);
}

/* ---------------------------------------------------------------- keys */

static int dkimsign_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

/* Can libopendkim sign with k?  A whole signature of a small message, not
 * dkim_privkey_load() alone, made in a child process: libopendkim 2.11
 * keeps what an Ed25519 signature loaded (see above), and a key that is
 * only being checked (cleanup's start, mailctl dkim list, dns) should
 * leave nothing behind.  NULL, or a static reason. */
static const char *dkimsign_key_try(const dkimsign_key_t *k)
{
    static const char from[] = "From: <postmaster@example.org>";
    int status;
    pid_t pid = fork();

    if (pid < 0)
        return "cannot fork to try it";
    if (pid == 0) {
        DKIM_STAT st;
        DKIM *d = dkimsign_handle(k, &st);

        if (d == NULL)
            _exit(2);
        _exit(dkim_header(d, (unsigned char *)from, sizeof(from) - 1) != DKIM_STAT_OK
              || dkim_eoh(d) != DKIM_STAT_OK || dkim_eom(d, NULL) != DKIM_STAT_OK);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return "cannot wait for the trial signature";
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return NULL;
    return WIFEXITED(status) && WEXITSTATUS(status) == 2
           ? "libopendkim refuses it (or its domain or selector)"
           : "libopendkim cannot sign with it";
}

dkimsign_key_t *dkimsign_key_parse(const char *pem, size_t len, const char *domain,
                                   const char *selector, const char **why)
{
    BIO *bio, *out;
    EVP_PKEY *pkey = NULL;
    dkimsign_key_t *k;
    char *data;
    long n;
    int type;

    if (len > INT32_MAX || (bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
        msg_fatal("out of memory");
    pkey = PEM_read_bio_PrivateKey(bio, NULL, dkimsign_no_passphrase, NULL);
    BIO_free(bio);
    if (pkey == NULL) {
        *why = "not a PEM private key (or an encrypted one)";
        return NULL;
    }
    type = EVP_PKEY_get_base_id(pkey);
    if (type != EVP_PKEY_RSA && type != EVP_PKEY_ED25519) {
        EVP_PKEY_free(pkey);
        *why = "neither an RSA nor an Ed25519 key";
        return NULL;
    }
    if (type == EVP_PKEY_RSA && EVP_PKEY_get_bits(pkey) < DKIMSIGN_RSA_MIN_BITS) {
        EVP_PKEY_free(pkey);
        *why = "an RSA key shorter than 1024 bits (RFC 8301)";
        return NULL;
    }
    if (type == EVP_PKEY_ED25519 && !dkim_libfeature(dkimsign_lib(), DKIM_FEATURE_ED25519)) {
        EVP_PKEY_free(pkey);
        *why = "an Ed25519 key, and this libopendkim cannot sign with Ed25519";
        return NULL;
    }
    if ((out = BIO_new(BIO_s_mem())) == NULL
        || PEM_write_bio_PrivateKey(out, pkey, NULL, NULL, 0, NULL, NULL) != 1
        || (n = BIO_get_mem_data(out, &data)) <= 0)
        msg_fatal("cannot write a private key as PEM");
    k = xcalloc(1, sizeof(*k));
    k->pem = xstrndup(data, (size_t)n);
    BIO_free(out);
    k->pkey = pkey;
    k->alg = type == EVP_PKEY_RSA ? DKIMSIGN_RSA_SHA256 : DKIMSIGN_ED25519_SHA256;
    k->bits = EVP_PKEY_get_bits(pkey);
    k->domain = xstrdup(domain);
    for (char *p = k->domain; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    k->selector = xstrdup(selector);
    if ((*why = dkimsign_key_try(k)) != NULL) {
        dkimsign_key_free(&k);
        return NULL;
    }
    return k;
}

enum dkimsign_alg dkimsign_key_alg(const dkimsign_key_t *k)
{
    return k->alg;
}

int dkimsign_key_bits(const dkimsign_key_t *k)
{
    return k->bits;
}

const char *dkimsign_key_domain(const dkimsign_key_t *k)
{
    return k->domain;
}

const char *dkimsign_key_selector(const dkimsign_key_t *k)
{
    return k->selector;
}

const char *dkimsign_alg_name(enum dkimsign_alg alg)
{
    return alg == DKIMSIGN_RSA_SHA256 ? "rsa-sha256" : "ed25519-sha256";
}

char *dkimsign_key_txt(const dkimsign_key_t *k)
{
    buf_t *out = buf_new(0);
    unsigned char *der = NULL, raw[32];
    size_t rawlen = sizeof(raw);
    char *txt;
    int n;

    if (k->alg == DKIMSIGN_RSA_SHA256) {
        buf_append_str(out, "v=DKIM1; k=rsa; p=");
        if ((n = i2d_PUBKEY(k->pkey, &der)) <= 0)
            msg_fatal("cannot encode an RSA public key");
        base64_encode(out, der, (size_t)n);
        OPENSSL_free(der);
    } else {
        buf_append_str(out, "v=DKIM1; k=ed25519; p=");
        if (EVP_PKEY_get_raw_public_key(k->pkey, raw, &rawlen) != 1)
            msg_fatal("cannot encode an Ed25519 public key");
        base64_encode(out, raw, rawlen);
    }
    txt = buf_steal(out, NULL);
    buf_free(&out);
    return txt;
}

void dkimsign_key_free(dkimsign_key_t **kp)
{
    dkimsign_key_t *k = *kp;

    if (k == NULL)
        return;
    explicit_bzero(k->pem, strlen(k->pem));
    free(k->pem);
    EVP_PKEY_free(k->pkey);
    free(k->domain);
    free(k->selector);
    free(k);
    *kp = NULL;
}

/* ------------------------------------------------------------ messages */

/* Record libopendkim's first failure on d (or on a handle not made). */
static void dkimsign_failed(dkimsign_t *s, DKIM *d, DKIM_STAT st, const char *call)
{
    const char *detail = d != NULL ? dkim_geterror(d) : NULL;

    if (s->err->len > 0)
        return;
    buf_printf(s->err, "libopendkim: %s: %s", call,
               detail != NULL && *detail ? detail : dkim_getresultstr(st));
}

static bool dkimsign_going(const dkimsign_t *s)
{
    return s->nosign == NULL && s->err->len == 0;
}

dkimsign_t *dkimsign_new(dkimsign_key_t *const *keys, size_t n, time_t now)
{
    dkimsign_t *s = xcalloc(1, sizeof(*s));

    s->err = buf_new(0);
    s->now = now > 0 ? (uint64_t)now : 0;
    s->d = xreallocarray(NULL, n ? n : 1, sizeof(DKIM *));
    for (size_t i = 0; i < n; i++) {
        const dkimsign_key_t *k = keys[i];
        DKIM_STAT st = DKIM_STAT_OK;

        s->d[i] = dkimsign_handle(k, &st);
        if (s->d[i] == NULL) {
            dkimsign_failed(s, NULL, st, "dkim_sign");
            break;
        }
        s->n++;
        if (k->alg == DKIMSIGN_ED25519_SHA256)
            dkimsign_leaky++;
    }
    return s;
}

unsigned long dkimsign_leaky_handles(void)
{
    return dkimsign_leaky;
}

void dkimsign_header(dkimsign_t *s, const char *field, size_t len)
{
    const char *colon = memchr(field, ':', len);
    size_t name_len, i;

    if (s->eoh)
        msg_panic("dkimsign_header after the body");
    if (colon == NULL || !dkimsign_going(s))
        return;
    name_len = (size_t)(colon - field);
    while (name_len > 0 && (field[name_len - 1] == ' ' || field[name_len - 1] == '\t'))
        name_len--;
    for (i = 0; i < DKIMSIGN_NFIELDS; i++)
        if (strlen(dkimsign_fields[i].name) == name_len
            && strncasecmp(dkimsign_fields[i].name, field, name_len) == 0)
            break;
    if (i == DKIMSIGN_NFIELDS)
        return;                         /* not signed */
    if (len >= 2 && field[len - 2] == '\r' && field[len - 1] == '\n')
        len -= 2;
    else if (len >= 1 && field[len - 1] == '\n')
        len--;
    for (size_t j = 0; j < len; j++) {
        if (field[j] == '\0') {
            s->nosign = "a NUL in a header field to be signed";
            return;
        }
        if (field[j] == '\r' && (j + 1 == len || field[j + 1] != '\n')) {
            s->nosign = "a bare CR in a header field to be signed";
            return;
        }
    }
    s->present[i] = true;
    for (size_t k = 0; k < s->n; k++) {
        DKIM_STAT st = dkim_header(s->d[k], (unsigned char *)field, len);

        if (st == DKIM_STAT_SYNTAX) {   /* e.g. "To\t:", RFC 5322's obsolete syntax */
            s->nosign = "a header field to be signed that libopendkim cannot parse";
            return;
        }
        if (st != DKIM_STAT_OK) {
            dkimsign_failed(s, s->d[k], st, "dkim_header");
            return;
        }
    }
}

/* The end of the header: the signing time is read here. */
static void dkimsign_eoh(dkimsign_t *s)
{
    s->eoh = true;
    if (!dkimsign_going(s))
        return;
    if (!s->present[DKIMSIGN_FROM]) {
        s->nosign = "no From: field";
        return;
    }
    if (dkim_options(dkimsign_lib(), DKIM_OP_SETOPT, DKIM_OPTS_FIXEDTIME, &s->now,
                     sizeof(s->now)) != DKIM_STAT_OK)
        msg_panic("libopendkim refuses a fixed signing time");
    for (size_t k = 0; k < s->n; k++) {
        DKIM_STAT st = dkim_eoh(s->d[k]);

        if (st != DKIM_STAT_OK) {
            dkimsign_failed(s, s->d[k], st, "dkim_eoh");
            return;
        }
    }
}

static void dkimsign_feed(dkimsign_t *s, const char *data, size_t len)
{
    if (len == 0)
        return;
    for (size_t k = 0; k < s->n; k++) {
        DKIM_STAT st = dkim_body(s->d[k], (unsigned char *)data, len);

        if (st != DKIM_STAT_OK) {
            dkimsign_failed(s, s->d[k], st, "dkim_body");
            return;
        }
    }
}

/* The body as the SMTP client sends it: a bare LF gets its CR.  The
 * pieces between bare LFs go to libopendkim as they are. */
void dkimsign_body(dkimsign_t *s, const char *data, size_t len)
{
    unsigned char last = s->last;
    size_t start = 0;

    if (!s->eoh)
        dkimsign_eoh(s);
    if (len == 0 || !dkimsign_going(s))
        return;
    s->body = true;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)data[i];

        if (last == '\r' && c != '\n') {
            s->nosign = "a bare CR in the body";
            return;
        }
        if (c == '\n' && last != '\r') {
            dkimsign_feed(s, data + start, i - start);
            dkimsign_feed(s, "\r\n", 2);
            start = i + 1;
        }
        last = c;
    }
    dkimsign_feed(s, data + start, len - start);
    s->last = last;
}

/* The once-only fields present, listed once more in h=. */
static void dkimsign_oversign(const dkimsign_t *s)
{
    const char *names[DKIMSIGN_NFIELDS + 1];
    size_t n = 0;

    for (size_t i = 0; i < DKIMSIGN_NFIELDS; i++)
        if (dkimsign_fields[i].once && s->present[i])
            names[n++] = dkimsign_fields[i].name;
    names[n] = NULL;
    if (dkim_options(dkimsign_lib(), DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS,
                     n > 0 ? names : NULL, sizeof(char **)) != DKIM_STAT_OK)
        msg_fatal("libopendkim: cannot set the oversigned fields");
}

int dkimsign_finish(dkimsign_t *s, buf_t *out, const char **why)
{
    size_t mark = out->len;

    if (!s->eoh)
        dkimsign_eoh(s);                /* a header without a body */
    if (dkimsign_going(s) && s->body && s->last == '\r')
        s->nosign = "a bare CR at the end of the body";
    if (dkimsign_going(s) && s->body && s->last != '\n')
        dkimsign_feed(s, "\r\n", 2);    /* the content ends with a line end */
    if (s->nosign != NULL) {
        *why = s->nosign;
        return 1;
    }
    if (s->err->len > 0) {
        *why = buf_cstr(s->err);
        return -1;
    }
    dkimsign_oversign(s);
    for (size_t k = 0; k < s->n; k++) {
        unsigned char *sig;
        size_t siglen;
        DKIM_STAT st;

        if ((st = dkim_eom(s->d[k], NULL)) != DKIM_STAT_OK
            || (st = dkim_getsighdr_d(s->d[k], strlen(DKIMSIGN_SIGHDR), &sig, &siglen))
                   != DKIM_STAT_OK) {
            dkimsign_failed(s, s->d[k], st, "dkim_eom");
            buf_truncate(out, mark);
            *why = buf_cstr(s->err);
            return -1;
        }
        /* libopendkim folds with LF or CR LF: CR LF it is. */
        buf_append_str(out, DKIMSIGN_SIGHDR);
        for (size_t i = 0; i < siglen; i++) {
            if (sig[i] == '\n' && (i == 0 || sig[i - 1] != '\r'))
                buf_putc(out, '\r');
            buf_putc(out, sig[i]);
        }
        buf_append(out, "\r\n", 2);
    }
    return 0;
}

void dkimsign_free(dkimsign_t **sp)
{
    dkimsign_t *s = *sp;

    if (s == NULL)
        return;
    for (size_t k = 0; k < s->n; k++)
        dkim_free(s->d[k]);
    free(s->d);
    buf_free(&s->err);
    free(s);
    *sp = NULL;
}
