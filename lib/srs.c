/*
 * srs - the Sender Rewriting Scheme; see srs.h.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "addr.h"
#include "base64.h"
#include "buf.h"
#include "conf.h"
#include "map.h"
#include "msg.h"
#include "safe_open.h"
#include "srs.h"
#include "xalloc.h"

#define SRS_DAY   86400
static const char srs_base32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
static const char srs_separators[] = "=+-";

struct srs_secret {
    unsigned char *key;
    size_t         len;
};

struct srs {
    char              *domain;
    int                max_age;     /* days */
    struct srs_secret *secrets;
    size_t             nsecrets;
};

srs_t *srs_new(const char *domain, int max_age_days)
{
    srs_t *s = xcalloc(1, sizeof(*s));

    s->domain = xstrdup(domain);
    s->max_age = max_age_days < 0 ? 0 : max_age_days;
    return s;
}

void srs_add_secret(srs_t *s, const void *key, size_t len)
{
    s->secrets = xreallocarray(s->secrets, s->nsecrets + 1, sizeof(*s->secrets));
    s->secrets[s->nsecrets].key = xmemdup(key, len ? len : 1);
    s->secrets[s->nsecrets].len = len;
    s->nsecrets++;
}

size_t srs_nsecrets(const srs_t *s)
{
    return s->nsecrets;
}

const char *srs_domain(const srs_t *s)
{
    return s->domain;
}

void srs_free(srs_t **sp)
{
    srs_t *s = *sp;

    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nsecrets; i++) {
        explicit_bzero(s->secrets[i].key, s->secrets[i].len);
        free(s->secrets[i].key);
    }
    free(s->secrets);
    free(s->domain);
    free(s);
    *sp = NULL;
}

/* ---- syntax ---- */

static int srs_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* A character of a dot-atom local part (RFC 5322 atext, '.', or a byte
 * of UTF-8 for SMTPUTF8). */
static int srs_local_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
           || c >= 0x80 || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL);
}

static int srs_local_ok(const char *p, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!srs_local_char((unsigned char)p[i]))
            return 0;
    return 1;
}

/* A domain name that can sit between two '=' of a local part: letters,
 * digits, '-', '_', '.' and UTF-8; no address literal. */
static int srs_domain_ok(const char *p, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c >= 0x80 || c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

static int srs_tagged(const char *local, const char *tag)
{
    return strncasecmp(local, tag, 4) == 0 && local[4] != '\0'
           && strchr(srs_separators, local[4]) != NULL;
}

int srs_is_srs_local(const char *local)
{
    return srs_tagged(local, "SRS0") || srs_tagged(local, "SRS1");
}

/* ---- hash and time stamp ---- */

struct srs_part {
    const char *p;
    size_t      len;
};

/* The first SRS_HASH_LEN base64 characters of the HMAC-SHA1 of parts
 * (lower-cased, one after the other) under secret i, into out. */
static void srs_hash(const srs_t *s, size_t i, const struct srs_part *parts, size_t nparts,
                     char out[SRS_HASH_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    buf_t *data = buf_new(0), *b64 = buf_new(0);

    for (size_t k = 0; k < nparts; k++)
        for (size_t j = 0; j < parts[k].len; j++)
            buf_putc(data, srs_lower((unsigned char)parts[k].p[j]));
    if (HMAC(EVP_sha1(), s->secrets[i].key, (int)s->secrets[i].len,
             (const unsigned char *)data->data, data->len, md, &mdlen) == NULL || mdlen < 3)
        msg_fatal("SRS: OpenSSL cannot compute HMAC-SHA1");
    base64_encode(b64, md, 3);  /* 3 bytes: exactly 4 characters */
    memcpy(out, b64->data, SRS_HASH_LEN);
    out[SRS_HASH_LEN] = '\0';
    explicit_bzero(md, sizeof(md));
    buf_free(&data);
    buf_free(&b64);
}

/* Does hash (len characters) match under any secret, ignoring case? */
static int srs_hash_ok(const srs_t *s, const char *hash, size_t len,
                       const struct srs_part *parts, size_t nparts)
{
    char want[SRS_HASH_LEN + 1];
    int found = 0;

    if (len != SRS_HASH_LEN)
        return 0;
    for (size_t i = 0; i < s->nsecrets; i++) {
        unsigned diff = 0;

        srs_hash(s, i, parts, nparts, want);
        for (size_t k = 0; k < SRS_HASH_LEN; k++)
            diff |= (unsigned)(srs_lower((unsigned char)hash[k])
                               ^ srs_lower((unsigned char)want[k]));
        found |= diff == 0;
    }
    return found;
}

static void srs_stamp(time_t now, char out[3])
{
    long long day = (long long)(now < 0 ? 0 : now) / SRS_DAY;

    out[0] = srs_base32[(day >> 5) & 31];
    out[1] = srs_base32[day & 31];
    out[2] = '\0';
}

/* 0 if the two characters at p are a stamp of the last max_age days (or
 * of tomorrow: a clock a little ahead of ours), else -1 with *why. */
static int srs_stamp_ok(const srs_t *s, const char *p, time_t now, const char **why)
{
    long long then = 0, today = (long long)(now < 0 ? 0 : now) / SRS_DAY % SRS_TIME_SLOTS, age;

    for (int i = 0; i < 2; i++) {
        const char *c = strchr(srs_base32, p[i] >= 'a' && p[i] <= 'z' ? p[i] - 'a' + 'A' : p[i]);

        if (p[i] == '\0' || c == NULL) {
            *why = "bad time stamp in SRS address";
            return -1;
        }
        then = then << 5 | (long long)(c - srs_base32);
    }
    age = (today - then + SRS_TIME_SLOTS) % SRS_TIME_SLOTS;
    if (age <= s->max_age || age == SRS_TIME_SLOTS - 1)
        return 0;
    *why = age > SRS_TIME_SLOTS / 2 ? "SRS address time stamp is in the future"
                                    : "SRS address has expired";
    return -1;
}

/* ---- forward ---- */

int srs_forward(const srs_t *s, const char *sender, time_t now, char **out, const char **why)
{
    const char *at = strrchr(sender, '@'), *host, *rest, *h2;
    char hash[SRS_HASH_LEN + 1], stamp[3];
    size_t llen;

    *out = NULL;
    if (s->nsecrets == 0) {
        *why = "no SRS secret";
        return -1;
    }
    if (at == NULL || at == sender || at[1] == '\0') {
        *why = "the sender has no local part or no domain";
        return -1;
    }
    host = at + 1;
    llen = (size_t)(at - sender);
    if (!srs_domain_ok(host, strlen(host))) {
        *why = "the sender's domain cannot be put into an SRS address";
        return -1;
    }
    if (!srs_local_ok(sender, llen)) {
        *why = "the sender's local part cannot be put into an SRS address";
        return -1;
    }
    if (srs_tagged(sender, "SRS1")) {
        /* SRS1=HHHH=first-domain=<sep>rest: keep the first forwarder and
         * its part, hashed with our secret. */
        rest = sender + 5;
        if ((h2 = memchr(rest, '=', llen - 5)) != NULL && h2 > rest) {
            const char *first = h2 + 1, *end = memchr(first, '=', (size_t)(at - first));

            if (end != NULL && end > first && srs_domain_ok(first, (size_t)(end - first))
                && end + 1 < at && strchr(srs_separators, end[1]) != NULL) {
                struct srs_part parts[2] = {
                    { first, (size_t)(end - first) }, { end + 1, (size_t)(at - end - 1) } };

                srs_hash(s, 0, parts, 2, hash);
                *out = xasprintf("SRS1=%s=%.*s=%.*s@%s", hash, (int)parts[0].len, parts[0].p,
                                 (int)parts[1].len, parts[1].p, s->domain);
            }
        }
        /* else: not of the form; an ordinary local part (SRS0 below). */
    } else if (srs_tagged(sender, "SRS0")) {
        /* An SRS0 address of another forwarder: SRS1 naming it. */
        struct srs_part parts[2] = { { host, strlen(host) }, { sender + 4, llen - 4 } };

        srs_hash(s, 0, parts, 2, hash);
        *out = xasprintf("SRS1=%s=%s=%.*s@%s", hash, host, (int)(llen - 4), sender + 4,
                         s->domain);
    }
    if (*out == NULL) {
        struct srs_part parts[3] = { { stamp, 2 }, { host, strlen(host) }, { sender, llen } };

        srs_stamp(now, stamp);
        srs_hash(s, 0, parts, 3, hash);
        *out = xasprintf("SRS0=%s=%s=%s=%.*s@%s", hash, stamp, host, (int)llen, sender,
                         s->domain);
    }
    if (strlen(*out) > SRS_ADDRESS_MAX) {
        xfree(out);
        *why = "the SRS address would be too long";
        return -1;
    }
    return 0;
}

/* ---- reverse ---- */

/* The next field of [*p, end) up to '=' (not included): its length, *p
 * moved past the '='; or -1 if there is no '='. */
static long srs_field(const char **p, const char *end, const char **field)
{
    const char *eq = memchr(*p, '=', (size_t)(end - *p));

    if (eq == NULL)
        return -1;
    *field = *p;
    *p = eq + 1;
    return (long)(eq - *field);
}

int srs_reverse(const srs_t *s, const char *address, time_t now, char **out, const char **why)
{
    const char *at = strrchr(address, '@'), *p, *end, *hash, *stamp, *host;
    long hlen, slen, dlen;

    *out = NULL;
    *why = "not an SRS address";
    if (at == NULL || at == address || !addr_domain_eq(at + 1, s->domain))
        return SRS_NOT_SRS;
    if ((size_t)(at - address) < 5 || !srs_is_srs_local(address))
        return SRS_NOT_SRS;
    if (s->nsecrets == 0) {
        *why = "no SRS secret";
        return SRS_INVALID;
    }
    p = address + 5;
    end = at;
    *why = "malformed SRS address";
    if (srs_tagged(address, "SRS0")) {
        const char *user;
        size_t ulen;

        if ((hlen = srs_field(&p, end, &hash)) < 0 || (slen = srs_field(&p, end, &stamp)) < 0
            || (dlen = srs_field(&p, end, &host)) < 0)
            return SRS_INVALID;
        user = p;
        ulen = (size_t)(end - p);
        if (slen != 2 || !srs_domain_ok(host, (size_t)dlen) || !srs_local_ok(user, ulen))
            return SRS_INVALID;
        {
            struct srs_part parts[3] = { { stamp, 2 }, { host, (size_t)dlen }, { user, ulen } };

            if (!srs_hash_ok(s, hash, (size_t)hlen, parts, 3)) {
                *why = "SRS address hash does not match";
                return SRS_INVALID;
            }
        }
        if (srs_stamp_ok(s, stamp, now, why) < 0)
            return SRS_INVALID;
        *out = xasprintf("%.*s@%.*s", (int)ulen, user, (int)dlen, host);
        return SRS_OK;
    }
    /* SRS1=HHHH=first-domain=<sep>rest */
    if ((hlen = srs_field(&p, end, &hash)) < 0 || (dlen = srs_field(&p, end, &host)) < 0)
        return SRS_INVALID;
    if (!srs_domain_ok(host, (size_t)dlen) || p >= end || strchr(srs_separators, *p) == NULL
        || !srs_local_ok(p, (size_t)(end - p)))
        return SRS_INVALID;
    {
        struct srs_part parts[2] = { { host, (size_t)dlen }, { p, (size_t)(end - p) } };

        if (!srs_hash_ok(s, hash, (size_t)hlen, parts, 2)) {
            *why = "SRS address hash does not match";
            return SRS_INVALID;
        }
    }
    *out = xasprintf("SRS0%.*s@%.*s", (int)(end - p), p, (int)dlen, host);
    return SRS_OK;
}

/* ---- secrets ---- */

int srs_secrets_parse(srs_t *s, const char *text, size_t len, const char **why)
{
    const char *p = text, *end = text + len;
    size_t n = 0;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *e = nl ? nl : end, *b = p;

        p = nl ? nl + 1 : end;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
            e--;
        if (b == e || *b == '#')
            continue;
        for (const char *c = b; c < e; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f) {
                *why = "a secret holds a control character";
                return -1;
            }
        if ((size_t)(e - b) < SRS_SECRET_MIN) {
            *why = "a secret is shorter than 16 characters";
            return -1;
        }
        if (++n > SRS_SECRETS_MAX) {
            *why = "more than 16 secrets";
            return -1;
        }
        srs_add_secret(s, b, (size_t)(e - b));
    }
    if (n == 0) {
        *why = "no secret in the file";
        return -1;
    }
    return 0;
}

/* ---- configuration ---- */

int srs_domain_is_ours(const char *domain)
{
    char *why = NULL;
    int ours = addr_domain_is_local(domain) || addr_domain_eq(domain, conf_str("srs_domain"))
               || addr_domain_is_virtual(domain, &why) > 0;

    free(why);          /* a table that cannot be read: not known to be ours */
    return ours;
}

int srs_load(srs_t **sp, char **why)
{
    const char *domain = conf_str("srs_domain"), *path = conf_str("srs_secret_file"), *w;
    const uid_t root = 0;
    struct stat st;
    buf_t *text = NULL;
    char *vwhy = NULL;
    srs_t *s;

    *sp = NULL;
    *why = NULL;
    if (!conf_bool("srs_enable"))
        return 0;
    if (!srs_domain_ok(domain, strlen(domain))) {
        *why = xasprintf("srs_domain \"%s\" is not a domain name: SRS is off", domain);
        return 0;
    }
    if (!addr_domain_is_local(domain) && addr_domain_is_virtual(domain, &vwhy) <= 0) {
        free(vwhy);
        *why = xasprintf("srs_domain %s is in neither mydestination nor virtual_alias_domains, "
                         "so bounces to it would not come back: SRS is off", domain);
        return 0;
    }
    if (*path != '/') {
        *why = xasprintf("srs_secret_file %s is not an absolute path", path);
        return -1;
    }
    if (safe_read_file(AT_FDCWD, path, &root, 1, SRS_SECRET_FILE_MAX, &text, &st, &w) < 0) {
        *why = xasprintf("srs_secret_file %s: %s", path, w);
        return -1;
    }
    if (st.st_mode & 077) {
        explicit_bzero(text->data, text->len);
        buf_free(&text);
        *why = xasprintf("srs_secret_file %s: open to group or others (mode %04o; must be "
                         "root's alone, 0600)", path, (unsigned)(st.st_mode & 07777));
        return -1;
    }
    s = srs_new(domain, (int)(conf_time("srs_max_age") / SRS_DAY));
    if (srs_secrets_parse(s, text->data, text->len, &w) < 0) {
        *why = xasprintf("srs_secret_file %s: %s", path, w);
        srs_free(&s);
    }
    explicit_bzero(text->data, text->len);
    buf_free(&text);
    if (s == NULL)
        return -1;
    *sp = s;
    return 1;
}

int srs_forward_sender(const srs_t *s, const char *sender, const char *recipient, time_t now,
                       char **out, const char **why)
{
    const char *sat = strrchr(sender, '@'), *rat = strrchr(recipient, '@');

    *out = NULL;
    *why = NULL;
    if (*sender == '\0' || srs_domain_is_ours(sat ? sat + 1 : "")
        || srs_domain_is_ours(rat ? rat + 1 : ""))
        return 0;
    return srs_forward(s, sender, now, out, why) == 0 ? 1 : -1;
}
