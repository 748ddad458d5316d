/*
 * dkimsign - DKIM keys, relaxed canonicalization and DKIM-Signature fields
 * (see dkimsign.h).
 *
 * Why not libopendkim for signing: its signing handle takes the key as PEM
 * text and parses it again for every message, and OpenSSL 3's decoder
 * makes that parse cost about as much as the RSA signature itself (0.75
 * ms a key on the development machine); it also hashes the body once per
 * key.  Here a key is parsed once per process and the body is hashed
 * once for all keys.  libopendkim's verifier checks the result in the
 * unit test, python3-dkim in the integration test.
 *
 * The signature is computed as RFC 6376 3.7 and RFC 8463 3 say: H =
 * SHA-256 over the canonicalized signed fields (in h= order, each name
 * taking the bottom-most instance not taken yet) followed by the
 * canonicalized DKIM-Signature field with an empty b= and no final CRLF;
 * RSA signs H with PKCS#1 v1.5 (RSASSA-PKCS1-v1_5 with SHA-256), Ed25519
 * signs the 32 bytes of H with PureEdDSA.  The hashed DKIM-Signature text
 * is the very text emitted, b= last, so a verifier that deletes b='s value
 * (with the folding inside it) sees what was hashed.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "base64.h"
#include "dkimsign.h"
#include "msg.h"
#include "xalloc.h"

#define DKIMSIGN_FOLD   78      /* fold before a line would pass this column */
#define DKIMSIGN_OUTBUF 8192    /* canonical body bytes gathered per hash update */

struct dkimsign_key {
    EVP_PKEY         *pkey;
    enum dkimsign_alg alg;
    int               bits;
    char             *domain;
    char             *selector;
};

/* The fields signed; once: listed one extra time (oversigned). */
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

struct dkimsign {
    EVP_MD_CTX   *body;         /* SHA-256 of the canonical body */
    unsigned char out[DKIMSIGN_OUTBUF];
    size_t        nout;
    int           wsp;          /* white space seen in the line, not yet written */
    int           cr;           /* a CR seen, waiting to see whether LF follows */
    uint64_t      eols;         /* line ends seen, not yet written */
    int           any;          /* canonical bytes written */
    struct {
        buf_t  **canon;         /* each instance, canonicalized, in header order */
        size_t   n;
    } f[DKIMSIGN_NFIELDS];
};

/* ---------------------------------------------------------------- keys */

static int dkimsign_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

dkimsign_key_t *dkimsign_key_parse(const char *pem, size_t len, const char *domain,
                                   const char *selector, const char **why)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *pkey = NULL;
    dkimsign_key_t *k;
    int type;

    if (bio == NULL || len > INT32_MAX)
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
    k = xcalloc(1, sizeof(*k));
    k->pkey = pkey;
    k->alg = type == EVP_PKEY_RSA ? DKIMSIGN_RSA_SHA256 : DKIMSIGN_ED25519_SHA256;
    k->bits = EVP_PKEY_get_bits(pkey);
    k->domain = xstrdup(domain);
    for (char *p = k->domain; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    k->selector = xstrdup(selector);
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
    {
        char *txt = buf_steal(out, NULL);

        buf_free(&out);
        return txt;
    }
}

void dkimsign_key_free(dkimsign_key_t **kp)
{
    dkimsign_key_t *k = *kp;

    if (k == NULL)
        return;
    EVP_PKEY_free(k->pkey);
    free(k->domain);
    free(k->selector);
    free(k);
    *kp = NULL;
}

/* ---------------------------------------------------------- the header */

void dkimsign_canon_header(buf_t *out, const char *field, size_t len)
{
    const char *colon = memchr(field, ':', len);
    size_t name_len = colon ? (size_t)(colon - field) : len, i;
    int wsp = 0, started = 0;

    while (name_len > 0 && (field[name_len - 1] == ' ' || field[name_len - 1] == '\t'))
        name_len--;
    for (i = 0; i < name_len; i++)
        buf_putc(out, tolower((unsigned char)field[i]));
    buf_putc(out, ':');
    for (i = colon ? (size_t)(colon - field) + 1 : len; i < len; i++) {
        unsigned char c = (unsigned char)field[i];

        if (c == '\r' || c == '\n')     /* unfolding */
            continue;
        if (c == ' ' || c == '\t') {
            wsp = 1;
            continue;
        }
        if (wsp && started)
            buf_putc(out, ' ');
        wsp = 0;
        started = 1;
        buf_putc(out, c);
    }
    buf_append(out, "\r\n", 2);
}

dkimsign_t *dkimsign_new(void)
{
    dkimsign_t *s = xcalloc(1, sizeof(*s));

    if ((s->body = EVP_MD_CTX_new()) == NULL
        || EVP_DigestInit_ex(s->body, EVP_sha256(), NULL) != 1)
        msg_fatal("cannot set up SHA-256");
    return s;
}

void dkimsign_header(dkimsign_t *s, const char *field, size_t len)
{
    const char *colon = memchr(field, ':', len);
    size_t name_len;

    if (colon == NULL)
        return;
    name_len = (size_t)(colon - field);
    while (name_len > 0 && (field[name_len - 1] == ' ' || field[name_len - 1] == '\t'))
        name_len--;
    for (size_t i = 0; i < DKIMSIGN_NFIELDS; i++) {
        if (strlen(dkimsign_fields[i].name) == name_len
            && strncasecmp(dkimsign_fields[i].name, field, name_len) == 0) {
            buf_t *c = buf_new(0);

            dkimsign_canon_header(c, field, len);
            s->f[i].canon = xreallocarray(s->f[i].canon, s->f[i].n + 1, sizeof(buf_t *));
            s->f[i].canon[s->f[i].n++] = c;
            return;
        }
    }
}

/* ---------------------------------------------------------- the body */

static void dkimsign_flush(dkimsign_t *s)
{
    if (s->nout > 0 && EVP_DigestUpdate(s->body, s->out, s->nout) != 1)
        msg_fatal("SHA-256 update failed");
    s->nout = 0;
}

static inline void dkimsign_put(dkimsign_t *s, unsigned char c)
{
    if (s->nout == sizeof(s->out))
        dkimsign_flush(s);
    s->out[s->nout++] = c;
}

/* A byte that is neither white space nor part of a line end: what was
 * pending before it goes out first (the line ends of empty lines that
 * turn out not to end the body, one SP for a run of white space). */
static inline void dkimsign_byte(dkimsign_t *s, unsigned char c)
{
    for (; s->eols > 0; s->eols--) {
        dkimsign_put(s, '\r');
        dkimsign_put(s, '\n');
    }
    if (s->wsp)
        dkimsign_put(s, ' ');
    s->wsp = 0;
    dkimsign_put(s, c);
    s->any = 1;
}

/* More ordinary bytes, right after one (nothing is pending then). */
static void dkimsign_bytes(dkimsign_t *s, const char *data, size_t len)
{
    if (len >= sizeof(s->out) - s->nout) {
        dkimsign_flush(s);
        if (EVP_DigestUpdate(s->body, data, len) != 1)
            msg_fatal("SHA-256 update failed");
        return;
    }
    memcpy(s->out + s->nout, data, len);
    s->nout += len;
}

/* The bytes the body canonicalization looks at: SP, HTAB, CR, LF. */
static const unsigned char dkimsign_special[256] = {
    [' '] = 1, ['\t'] = 1, ['\r'] = 1, ['\n'] = 1,
};

void dkimsign_body(dkimsign_t *s, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)data[i];

        if (s->cr && c != '\n') {       /* a bare CR: an ordinary byte */
            s->cr = 0;
            dkimsign_byte(s, '\r');
        }
        switch (c) {
        case '\r':
            s->cr = 1;
            break;
        case '\n':                      /* CR LF or a bare LF: the line ends */
            s->cr = 0;
            s->wsp = 0;                 /* white space at the end of a line goes */
            s->eols++;
            break;
        case ' ':
        case '\t':
            s->wsp = 1;
            break;
        default: {
            /* A run of ordinary bytes goes out in one piece. */
            size_t run = 1;

            while (i + run < len && !dkimsign_special[(unsigned char)data[i + run]])
                run++;
            dkimsign_byte(s, c);
            dkimsign_bytes(s, data + i + 1, run - 1);
            i += run - 1;
        }
        }
    }
}

/* The body hash: a non-empty body ends with exactly one CRLF, whether or
 * not it had one, and without the empty lines that ended it. */
static void dkimsign_body_end(dkimsign_t *s, unsigned char bh[32])
{
    unsigned int n = 32;

    if (s->cr) {
        s->cr = 0;
        dkimsign_byte(s, '\r');
    }
    if (s->any) {
        dkimsign_put(s, '\r');
        dkimsign_put(s, '\n');
    }
    s->eols = 0;
    s->wsp = 0;
    dkimsign_flush(s);
    if (EVP_DigestFinal_ex(s->body, bh, &n) != 1 || n != 32)
        msg_fatal("SHA-256 final failed");
}

/* --------------------------------------------------------- the signature */

/* Append token to the field being built, after a space (sp) or not,
 * folding first if the line would get too long. */
static void dkimsign_fold(buf_t *out, size_t *col, const char *token, int sp)
{
    size_t n = strlen(token);

    if (*col + (sp ? 1 : 0) + n > DKIMSIGN_FOLD && *col > 8) {
        buf_append(out, "\r\n\t", 3);
        *col = 8;
    } else if (sp) {
        buf_putc(out, ' ');
        (*col)++;
    }
    buf_append(out, token, n);
    *col += n;
}

/* Sign the 32-byte hash h with k into sig (base64 appended to b64). */
static int dkimsign_crypto(const dkimsign_key_t *k, const unsigned char h[32], buf_t *b64)
{
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    int ok = 0;

    if (k->alg == DKIMSIGN_RSA_SHA256) {
        EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(k->pkey, NULL);

        if (k->bits > 8 * (int)sizeof(sig)) {
            EVP_PKEY_CTX_free(pc);
            return -1;
        }
        ok = pc != NULL && EVP_PKEY_sign_init(pc) == 1
             && EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1
             && EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) == 1
             && EVP_PKEY_sign(pc, sig, &siglen, h, 32) == 1;
        EVP_PKEY_CTX_free(pc);
    } else {
        EVP_MD_CTX *mc = EVP_MD_CTX_new();

        ok = mc != NULL && EVP_DigestSignInit(mc, NULL, NULL, NULL, k->pkey) == 1
             && EVP_DigestSign(mc, sig, &siglen, h, 32) == 1;
        EVP_MD_CTX_free(mc);
    }
    if (!ok)
        return -1;
    base64_encode(b64, sig, siglen);
    return 0;
}

/* One DKIM-Signature for k, appended to out. */
static int dkimsign_one(dkimsign_t *s, const dkimsign_key_t *k, const char *bh, time_t now,
                        buf_t *out, const char **why)
{
    buf_t *f = buf_new(0), *canon = buf_new(0), *b64 = buf_new(0);
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    unsigned char h[32];
    unsigned int hlen = sizeof(h);
    size_t col, i, j, total = 0, nth = 0;
    char *tok;
    int rc = -1;

    if (mc == NULL || EVP_DigestInit_ex(mc, EVP_sha256(), NULL) != 1)
        msg_fatal("cannot set up SHA-256");
    buf_printf(f, "DKIM-Signature: v=1; a=%s;", dkimsign_alg_name(k->alg));
    col = f->len;
    dkimsign_fold(f, &col, "c=relaxed/relaxed;", 1);
    tok = xasprintf("d=%s;", k->domain);
    dkimsign_fold(f, &col, tok, 1);
    free(tok);
    tok = xasprintf("s=%s;", k->selector);
    dkimsign_fold(f, &col, tok, 1);
    free(tok);
    tok = xasprintf("t=%lld;", (long long)now);
    dkimsign_fold(f, &col, tok, 1);
    free(tok);
    /* h=: each instance of each name, bottom-up, and the oversigned extra;
     * the fields go into the hash in the same order. */
    for (i = 0; i < DKIMSIGN_NFIELDS; i++)
        if (s->f[i].n > 0)
            total += s->f[i].n + (size_t)dkimsign_fields[i].once;
    for (i = 0; i < DKIMSIGN_NFIELDS; i++) {
        size_t n = s->f[i].n;

        if (n == 0)
            continue;
        for (j = 0; j < n + (size_t)dkimsign_fields[i].once; j++) {
            nth++;
            tok = xasprintf("%s%s%s", nth == 1 ? "h=" : "", dkimsign_fields[i].name,
                            nth == total ? ";" : ":");
            dkimsign_fold(f, &col, tok, nth == 1);
            free(tok);
            if (j < n && EVP_DigestUpdate(mc, s->f[i].canon[n - 1 - j]->data,
                                          s->f[i].canon[n - 1 - j]->len) != 1)
                msg_fatal("SHA-256 update failed");
        }
    }
    tok = xasprintf("bh=%s;", bh);
    dkimsign_fold(f, &col, tok, 1);
    free(tok);
    dkimsign_fold(f, &col, "b=", 1);
    dkimsign_canon_header(canon, f->data, f->len);
    if (EVP_DigestUpdate(mc, canon->data, canon->len - 2) != 1     /* no final CRLF */
        || EVP_DigestFinal_ex(mc, h, &hlen) != 1)
        msg_fatal("SHA-256 failed");
    if (dkimsign_crypto(k, h, b64) < 0) {
        *why = "the signature could not be made";
        goto out;
    }
    /* b='s value, folded: what fits on this line, then lines of 72. */
    for (i = 0; i < b64->len;) {
        size_t room = col < DKIMSIGN_FOLD ? DKIMSIGN_FOLD - col : 0, n;

        if (room < 8) {
            buf_append(f, "\r\n\t ", 4);
            col = 9;
            continue;
        }
        n = b64->len - i < room ? b64->len - i : room;
        buf_append(f, b64->data + i, n);
        col += n;
        i += n;
    }
    buf_append(f, "\r\n", 2);
    buf_append(out, f->data, f->len);
    rc = 0;
out:
    EVP_MD_CTX_free(mc);
    buf_free(&b64);
    buf_free(&canon);
    buf_free(&f);
    return rc;
}

int dkimsign_finish(dkimsign_t *s, dkimsign_key_t *const *keys, size_t n, time_t now,
                    buf_t *out, const char **why)
{
    unsigned char bh[32];
    buf_t *bh64 = buf_new(0);
    size_t mark = out->len;

    dkimsign_body_end(s, bh);
    base64_encode(bh64, bh, sizeof(bh));
    for (size_t i = 0; i < n; i++) {
        if (dkimsign_one(s, keys[i], buf_cstr(bh64), now, out, why) < 0) {
            buf_truncate(out, mark);
            buf_free(&bh64);
            return -1;
        }
    }
    buf_free(&bh64);
    return 0;
}

void dkimsign_free(dkimsign_t **sp)
{
    dkimsign_t *s = *sp;

    if (s == NULL)
        return;
    EVP_MD_CTX_free(s->body);
    for (size_t i = 0; i < DKIMSIGN_NFIELDS; i++) {
        for (size_t j = 0; j < s->f[i].n; j++)
            buf_free(&s->f[i].canon[j]);
        free(s->f[i].canon);
    }
    free(s);
    *sp = NULL;
}
