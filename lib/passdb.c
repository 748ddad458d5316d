/*
 * passdb - the mail password store (see passdb.h for the record format,
 * the file's rules and the interface).
 *
 * Records: passdb_make() hashes with libxcrypt (crypt_gensalt_ra("$y$")
 * then crypt_ra(), whose struct crypt_data, 32 KiB, lives on the heap and
 * is wiped before it is freed) and derives the SCRAM keys with
 * scram_sha256_keys() over a RAND_bytes salt.  passdb_verify_plain()
 * re-crypts with the stored hash as the setting and compares with
 * CRYPTO_memcmp.  The parser is strict: one encoding per record, so that
 * passdb_format(passdb_parse(x)) == x for every x it accepts.
 *
 * The file is a lib/map table (DB_HASH, user -> record) opened by its own
 * name with map_open_file(), passdb_check() running at every (re)open on
 * the descriptor Berkeley DB reads; writers hold an flock on PATH.lock
 * while they read the table and replace it with map_write().
 *
 * Failure modes: see passdb.h; nothing here exits except on running out
 * of memory or RAND_bytes failing.
 */
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "buf.h"
#include "map.h"
#include "msg.h"
#include "passdb.h"
#include "saslprep.h"
#include "scram.h"
#include "trustpath.h"
#include "xalloc.h"

#if PASSDB_PASSWORD_MAX >= CRYPT_MAX_PASSPHRASE_SIZE || PASSDB_PASSWORD_MAX > SCRAM_PASSWORD_MAX
#error "PASSDB_PASSWORD_MAX is more than libxcrypt or lib/scram take"
#endif

#define PASSDB_YESCRYPT_HASHLEN 43      /* 256 bits in crypt's base64 */

struct passdb {
    map_t  *map;
};

/* ------------------------------------------------------------------ */
/* Names */

int passdb_name_ok(const char *name, const char **why)
{
    size_t len = strlen(name);

    if (len == 0) {
        *why = "empty user name";
        return 0;
    }
    if (len > PASSDB_NAME_MAX) {
        *why = "user name longer than 32 characters";
        return 0;
    }
    if (name[0] == '-' || name[0] == '.') {
        *why = "user name starts with '-' or '.'";
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        char c = name[i];

        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.'
            || c == '-' || (c == '$' && i == len - 1 && i > 0))
            continue;
        *why = c >= 'A' && c <= 'Z'
                   ? "user name has upper-case letters (the store keeps names lower-case)"
                   : "user name has characters other than a-z 0-9 _ . - (and a final $)";
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Canonical base64 (RFC 4648 section 4, padded) */

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void b64_encode(const unsigned char *in, size_t len, buf_t *out)
{
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16;

        if (i + 1 < len)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        buf_putc(out, b64chars[(v >> 18) & 63]);
        buf_putc(out, b64chars[(v >> 12) & 63]);
        buf_putc(out, i + 1 < len ? b64chars[(v >> 6) & 63] : '=');
        buf_putc(out, i + 2 < len ? b64chars[v & 63] : '=');
    }
}

static int b64_value(char c)
{
    const char *p = c ? strchr(b64chars, c) : NULL;

    return p ? (int)(p - b64chars) : -1;
}

/* Decode in[0..len) into out (room for max octets); the octet count, or
 * -1 unless the text is canonical, padded base64 of 1..max octets. */
static long b64_decode(const char *in, size_t len, unsigned char *out, size_t max)
{
    size_t n = 0;

    if (len == 0 || len % 4 != 0)
        return -1;
    for (size_t i = 0; i < len; i += 4) {
        int v[4], pad = 0;
        unsigned bits;

        for (int j = 0; j < 4; j++) {
            if (in[i + j] == '=' && i + 4 == len && j >= 2) {
                v[j] = 0;
                pad++;
                continue;
            }
            if (pad || (v[j] = b64_value(in[i + j])) < 0)
                return -1;
        }
        if (pad == 2 && in[i + 2] != '=')
            return -1;
        bits = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
        /* Canonical: the bits the padding leaves unused must be zero. */
        if ((pad == 1 && (bits & 0xff)) || (pad == 2 && (bits & 0xffff)))
            return -1;
        if (n + 3 - (size_t)pad > max)
            return -1;
        out[n++] = (unsigned char)(bits >> 16);
        if (pad < 2)
            out[n++] = (unsigned char)(bits >> 8);
        if (pad < 1)
            out[n++] = (unsigned char)bits;
    }
    return (long)n;
}

/* ------------------------------------------------------------------ */
/* Records */

/* Is hash[0..len) a well-formed yescrypt hash?  NULL, or the reason. */
static const char *passdb_hash_bad(const char *hash, size_t len)
{
    size_t dollars = 0, field = 0;

    if (len < 3 || memcmp(hash, "$y$", 3) != 0)
        return "the hash is not a yescrypt hash ($y$)";
    if (len > PASSDB_HASH_MAX)
        return "the hash is too long";
    for (size_t i = 0; i < len; i++) {
        char c = hash[i];

        if (c == '$') {
            if (i > 0 && field == 0)
                return "the hash has an empty field";
            dollars++;
            field = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                   || c == '.' || c == '/') {
            field++;
        } else {
            return "the hash has a character outside crypt's alphabet";
        }
    }
    if (dollars != 4 || field != PASSDB_YESCRYPT_HASHLEN)
        return "the hash is not $y$PARAMS$SALT$HASH";
    return NULL;
}

/* Decimal iterations without leading zeros, in bounds; -1 otherwise. */
static long passdb_parse_iter(const char *s, size_t len)
{
    unsigned long v = 0;

    if (len == 0 || len > 8 || s[0] == '0')
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v < SCRAM_ITERATIONS_MIN || v > PASSDB_ITERATIONS_MAX)
        return -1;
    return (long)v;
}

int passdb_parse(const char *text, struct passdb_record *rec, const char **why)
{
    const char *p, *sp, *c1, *c2, *c3, *end;
    size_t len;
    long iter, n;

    memset(rec, 0, sizeof(*rec));
    errno = EINVAL;
    if (text == NULL) {
        *why = "no record";
        return -1;
    }
    len = strnlen(text, PASSDB_RECORD_MAX + 1);
    if (len > PASSDB_RECORD_MAX) {
        *why = "record too long";
        return -1;
    }
    end = text + len;
    if (len < 2 || text[0] != '1' || text[1] != ' ') {
        *why = len >= 1 && text[0] >= '0' && text[0] <= '9' && (len == 1 || text[1] == ' ')
                   ? "unknown record version" : "record does not start with its version";
        return -1;
    }
    p = text + 2;
    if ((sp = memchr(p, ' ', (size_t)(end - p))) == NULL) {
        *why = "record has no SCRAM field";
        return -1;
    }
    if ((*why = passdb_hash_bad(p, (size_t)(sp - p))) != NULL)
        return -1;
    memcpy(rec->hash, p, (size_t)(sp - p));
    rec->hash[sp - p] = '\0';
    if (crypt_checksalt(rec->hash) != CRYPT_SALT_OK) {
        *why = "libxcrypt does not accept the hash's parameters";
        return -1;
    }

    p = sp + 1;
    if ((c1 = memchr(p, ',', (size_t)(end - p))) == NULL
        || (c2 = memchr(c1 + 1, ',', (size_t)(end - c1 - 1))) == NULL
        || (c3 = memchr(c2 + 1, ',', (size_t)(end - c2 - 1))) == NULL
        || memchr(c3 + 1, ',', (size_t)(end - c3 - 1)) != NULL) {
        *why = "the SCRAM field is not ITER,SALT,STOREDKEY,SERVERKEY";
        return -1;
    }
    if ((iter = passdb_parse_iter(p, (size_t)(c1 - p))) < 0) {
        *why = "bad SCRAM iteration count";
        return -1;
    }
    rec->scram.iterations = (unsigned)iter;
    if ((n = b64_decode(c1 + 1, (size_t)(c2 - c1 - 1), rec->scram.salt, SCRAM_SALT_MAX)) < 0) {
        *why = "bad SCRAM salt";
        return -1;
    }
    rec->scram.saltlen = (size_t)n;
    if (b64_decode(c2 + 1, (size_t)(c3 - c2 - 1), rec->scram.stored_key, SCRAM_KEY_LEN)
        != SCRAM_KEY_LEN) {
        *why = "bad SCRAM StoredKey";
        return -1;
    }
    /* An APOP secret may follow (" A" and its base64). */
    if ((sp = memchr(c3 + 1, ' ', (size_t)(end - c3 - 1))) == NULL)
        sp = end;
    if (b64_decode(c3 + 1, (size_t)(sp - c3 - 1), rec->scram.server_key, SCRAM_KEY_LEN)
        != SCRAM_KEY_LEN) {
        *why = "bad SCRAM ServerKey";
        return -1;
    }
    if (sp < end) {
        p = sp + 1;
        if (*p != 'A' || memchr(p, ' ', (size_t)(end - p)) != NULL
            || (n = b64_decode(p + 1, (size_t)(end - p - 1), (unsigned char *)rec->apop,
                               PASSDB_PASSWORD_MAX)) < 1) {
            *why = "bad APOP field";
            return -1;
        }
        rec->apop[n] = '\0';
        for (long i = 0; i < n; i++)
            if ((unsigned char)rec->apop[i] < 0x20 || rec->apop[i] == 0x7f) {
                explicit_bzero(rec->apop, sizeof(rec->apop));
                *why = "bad APOP secret";
                return -1;
            }
    }
    errno = 0;
    return 0;
}

char *passdb_format(const struct passdb_record *rec)
{
    buf_t *b = buf_new(0);
    char *s;

    if (rec->scram.saltlen < 1 || rec->scram.saltlen > SCRAM_SALT_MAX)
        msg_panic("passdb_format: salt length %zu", rec->scram.saltlen);
    buf_printf(b, "%d %s %u,", PASSDB_VERSION, rec->hash, rec->scram.iterations);
    b64_encode(rec->scram.salt, rec->scram.saltlen, b);
    buf_putc(b, ',');
    b64_encode(rec->scram.stored_key, SCRAM_KEY_LEN, b);
    buf_putc(b, ',');
    b64_encode(rec->scram.server_key, SCRAM_KEY_LEN, b);
    if (rec->apop[0]) {
        buf_append_str(b, " A");
        b64_encode((const unsigned char *)rec->apop, strlen(rec->apop), b);
    }
    s = xstrdup(buf_cstr(b));
    explicit_bzero(b->data, b->len);
    buf_free(&b);
    return s;
}

int passdb_apop(const char *text, char *secret)
{
    struct passdb_record rec;
    const char *why;

    secret[0] = '\0';
    if (passdb_parse(text, &rec, &why) < 0)
        return -1;
    strcpy(secret, rec.apop);
    explicit_bzero(&rec, sizeof(rec));
    return secret[0] != '\0';
}

int passdb_set_apop(const char *text, const char *secret, char **out, const char **why)
{
    struct passdb_record rec;

    *out = NULL;
    if (passdb_parse(text, &rec, why) < 0)
        return -1;
    if (secret && (*secret == '\0' || strlen(secret) > PASSDB_PASSWORD_MAX)) {
        *why = "an APOP secret must have 1 to 511 octets";
        return -1;
    }
    for (const char *p = secret; p && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *why = "an APOP secret must not hold control characters";
            return -1;
        }
    memset(rec.apop, 0, sizeof(rec.apop));
    if (secret)
        strcpy(rec.apop, secret);
    *out = passdb_format(&rec);
    explicit_bzero(&rec, sizeof(rec));
    return 0;
}

/* crypt_ra(password, setting) into out (PASSDB_HASH_MAX + 1); 0 or -1. */
static int passdb_crypt(const char *password, const char *setting, char *out)
{
    void *data = NULL;
    int size = 0, rc = -1;
    const char *h = crypt_ra(password, setting, &data, &size);

    if (h != NULL && h[0] != '*' && strlen(h) <= PASSDB_HASH_MAX) {
        strcpy(out, h);
        rc = 0;
    }
    if (data) {
        explicit_bzero(data, (size_t)size);
        free(data);
    }
    return rc;
}

int passdb_make(const char *password, unsigned iterations, char **text, const char **why)
{
    struct passdb_record rec, check;
    size_t len = strlen(password);
    char *setting, *prepared = NULL;

    *text = NULL;
    if (len == 0) {
        *why = "empty password";
        return -1;
    }
    if (len > PASSDB_PASSWORD_MAX) {
        *why = "password longer than 511 bytes";
        return -1;
    }
    if (iterations < SCRAM_ITERATIONS_MIN || iterations > PASSDB_ITERATIONS_MAX) {
        *why = "SCRAM iteration count out of bounds (4096..10000000)";
        return -1;
    }
    memset(&rec, 0, sizeof(rec));
    rec.scram.iterations = iterations;
    rec.scram.saltlen = SCRAM_SALT_LEN;
    if (RAND_bytes(rec.scram.salt, SCRAM_SALT_LEN) != 1)
        msg_fatal("passdb: RAND_bytes failed: cannot make a SCRAM salt");
    if (scram_sha256_keys(password, rec.scram.salt, rec.scram.saltlen, iterations,
                          rec.scram.stored_key, rec.scram.server_key) < 0) {
        *why = "SCRAM-SHA-256 cannot use this password (SASLprep: not UTF-8, "
               "or control or other prohibited characters)";
        return -1;
    }
    if ((setting = crypt_gensalt_ra("$y$", 0, NULL, 0)) == NULL) {
        *why = "libxcrypt cannot make a yescrypt salt";
        return -1;
    }
    /* The hash is of the password as SASLprep prepares it (RFC 4616 2:
     * both the stored and the presented password are prepared), as the
     * SCRAM keys are: the same password works over PLAIN and SCRAM however
     * a client writes its spaces. */
    if (saslprep(password, len, &prepared) < 0 || passdb_crypt(prepared, setting, rec.hash) < 0) {
        free(setting);
        if (prepared)
            explicit_bzero(prepared, strlen(prepared));
        free(prepared);
        *why = "libxcrypt cannot hash the password";
        return -1;
    }
    explicit_bzero(prepared, strlen(prepared));
    free(prepared);
    free(setting);
    *text = passdb_format(&rec);
    if (passdb_parse(*text, &check, why) < 0)
        msg_panic("passdb_make: made a record it cannot parse: %s", *why);
    explicit_bzero(&check, sizeof(check));
    explicit_bzero(&rec, sizeof(rec));
    return 0;
}

int passdb_verify_hash(const char *hash, const char *password)
{
    char *got = xcalloc(1, PASSDB_HASH_MAX + 1);
    size_t len = strlen(hash);
    int rc = -1;

    if (passdb_crypt(password, hash, got) == 0)
        rc = strlen(got) == len && CRYPTO_memcmp(got, hash, len) == 0;
    explicit_bzero(got, PASSDB_HASH_MAX + 1);
    free(got);
    return rc;
}

int passdb_verify_plain(const char *text, const char *password)
{
    struct passdb_record rec;
    const char *why;
    char *prepared = NULL;
    int rc;

    if (passdb_parse(text, &rec, &why) < 0)
        return -1;
    /* The presented password prepared as the stored one was; a record
     * made before passwords were prepared holds the hash of the password
     * as typed, so that is tried too when the two differ. */
    if (saslprep(password, strlen(password), &prepared) < 0) {
        rc = passdb_verify_hash(rec.hash, password);
    } else {
        rc = passdb_verify_hash(rec.hash, prepared);
        if (rc == 0 && strcmp(prepared, password) != 0)
            rc = passdb_verify_hash(rec.hash, password);
        explicit_bzero(prepared, strlen(prepared));
        free(prepared);
    }
    explicit_bzero(&rec, sizeof(rec));
    return rc;
}

int passdb_scram(const char *text, struct scram_credentials *creds)
{
    struct passdb_record rec;
    const char *why;

    if (passdb_parse(text, &rec, &why) < 0)
        return -1;
    *creds = rec.scram;
    return 0;
}

/* ------------------------------------------------------------------ */
/* The file */

/* The directory part of path ("." for a bare name). */
static char *passdb_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL)
        return xstrdup(".");
    if (slash == path)
        return xstrdup("/");
    return xstrndup(path, (size_t)(slash - path));
}

/* The directory of path and those above it: trustpath. */
static int passdb_check_dir(const char *path, char **err)
{
    uid_t owners[2];
    size_t n = trustpath_owners(owners);
    char *dir = passdb_dirname(path);
    buf_t *errs = buf_new(0);
    int rc = trustpath_check(dir, TRUSTPATH_DIR, owners, n, errs), e = errno;

    if (rc < 0) {
        size_t l = errs->len;

        while (l > 0 && buf_cstr(errs)[l - 1] == '\n')
            l--;
        *err = xasprintf("%.*s", (int)l, buf_cstr(errs));
    }
    buf_free(&errs);
    free(dir);
    errno = e;
    return rc;
}

/* lib/map's check: the file Berkeley DB opened (st) is path itself, not a
 * symbolic link, a regular file with one link, ours, with no write bit
 * for group or others and nothing for others. */
static int passdb_check(const char *path, const struct stat *st, void *ctx, char **err)
{
    uid_t owners[2];
    size_t n = trustpath_owners(owners);
    struct stat lst;
    int owned = 0;

    (void)ctx;
    if (passdb_check_dir(path, err) < 0)
        return -1;
    if (lstat(path, &lst) < 0) {
        int e = errno;

        *err = xasprintf("%s: %s", path, strerror(e));
        errno = e;
        return -1;
    }
    if (S_ISLNK(lst.st_mode)) {
        *err = xasprintf("%s: is a symbolic link (the password file must be the file itself)",
                         path);
        errno = ELOOP;
        return -1;
    }
    if (lst.st_dev != st->st_dev || lst.st_ino != st->st_ino) {
        *err = xasprintf("%s: changed while it was opened", path);
        errno = EAGAIN;
        return -1;
    }
    if (!S_ISREG(st->st_mode)) {
        *err = xasprintf("%s: not a regular file", path);
        errno = EINVAL;
        return -1;
    }
    if (st->st_nlink != 1) {
        *err = xasprintf("%s: has %lu links (must have one)", path, (unsigned long)st->st_nlink);
        errno = EMLINK;
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (st->st_uid == owners[i])
            owned = 1;
    if (!owned) {
        *err = xasprintf("%s: owned by uid %lu, not by root", path, (unsigned long)st->st_uid);
        errno = EPERM;
        return -1;
    }
    if (st->st_mode & (S_IWGRP | S_IWOTH)) {
        *err = xasprintf("%s: writable by group or others (mode %04o; must be 0640)",
                         path, (unsigned)(st->st_mode & 07777));
        errno = EPERM;
        return -1;
    }
    if (st->st_mode & S_IRWXO) {
        *err = xasprintf("%s: others have access to password hashes (mode %04o; must be 0640)",
                         path, (unsigned)(st->st_mode & 07777));
        errno = EPERM;
        return -1;
    }
    return 0;
}

passdb_t *passdb_open(const char *path, char **err)
{
    passdb_t *p;
    map_t *m;

    *err = NULL;
    if ((m = map_open_file(path, MAP_TYPE_HASH, passdb_check, NULL, err)) == NULL)
        return NULL;
    p = xcalloc(1, sizeof(*p));
    p->map = m;
    return p;
}

void passdb_close(passdb_t **pp)
{
    if (*pp == NULL)
        return;
    map_close(&(*pp)->map);
    free(*pp);
    *pp = NULL;
}

int passdb_lookup(passdb_t *p, const char *name, char **text)
{
    const char *why;

    *text = NULL;
    if (!passdb_name_ok(name, &why))
        return 0;
    return map_lookup(p->map, name, text);
}

/* The whole table in memory: names (sorted) and records. */
struct passdb_table {
    char  **names;
    char  **texts;
    size_t  n;
};

static int passdb_collect(void *ctx, const char *key, const char *value)
{
    struct passdb_table *t = ctx;

    t->names = xreallocarray(t->names, t->n + 1, sizeof(*t->names));
    t->texts = xreallocarray(t->texts, t->n + 1, sizeof(*t->texts));
    t->names[t->n] = xstrdup(key);
    t->texts[t->n] = xstrdup(value);
    t->n++;
    return 0;
}

static void passdb_table_free(struct passdb_table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->names[i]);
        if (t->texts) {
            explicit_bzero(t->texts[i], strlen(t->texts[i]));
            free(t->texts[i]);
        }
    }
    free(t->names);
    free(t->texts);
    memset(t, 0, sizeof(*t));
}

/* Read the table at path (a missing file: empty), checked.  0 or -1. */
static int passdb_read_all(const char *path, struct passdb_table *t, char **err)
{
    struct stat st;
    map_t *m;
    int rc;

    memset(t, 0, sizeof(*t));
    if (passdb_check_dir(path, err) < 0)
        return -1;
    if (lstat(path, &st) < 0 && errno == ENOENT)
        return 0;
    if ((m = map_open_file(path, MAP_TYPE_HASH, passdb_check, NULL, err)) == NULL)
        return -1;
    rc = map_foreach(m, passdb_collect, t);
    map_close(&m);
    if (rc != 0) {
        int e = errno;

        *err = xasprintf("%s: cannot read the table", path);
        passdb_table_free(t);
        errno = e;
        return -1;
    }
    return 0;
}

static int passdb_strcmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int passdb_list(const char *path, char ***names, size_t *n, char **err)
{
    struct passdb_table t;

    *err = NULL;
    *names = NULL;
    *n = 0;
    if (passdb_read_all(path, &t, err) < 0)
        return -1;
    for (size_t i = 0; i < t.n; i++) {
        explicit_bzero(t.texts[i], strlen(t.texts[i]));
        free(t.texts[i]);
    }
    free(t.texts);
    if (t.n > 1)
        qsort(t.names, t.n, sizeof(*t.names), passdb_strcmp);
    *names = t.names;
    *n = t.n;
    return 0;
}

void passdb_list_free(char ***names, size_t n)
{
    if (*names == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free((*names)[i]);
    free(*names);
    *names = NULL;
}

/* Take the writers' lock: PATH.lock, ours, a regular file.  The
 * descriptor (closing it releases the lock), or -1. */
static int passdb_lock(const char *path, char **err)
{
    char *lock = xasprintf("%s.lock", path);
    uid_t owners[2];
    size_t n = trustpath_owners(owners);
    struct stat st;
    int fd, e, owned = 0;

    fd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0600);
    if (fd < 0) {
        e = errno;
        *err = xasprintf("%s: cannot open the lock file: %s", lock, strerror(e));
        goto fail;
    }
    if (fstat(fd, &st) < 0) {
        e = errno;
        *err = xasprintf("%s: %s", lock, strerror(e));
        goto fail;
    }
    for (size_t i = 0; i < n; i++)
        if (st.st_uid == owners[i])
            owned = 1;
    if (!S_ISREG(st.st_mode) || !owned || (st.st_mode & (S_IWGRP | S_IWOTH))) {
        e = EPERM;
        *err = xasprintf("%s: the lock file is not a regular file of root's, "
                         "writable by root alone", lock);
        goto fail;
    }
    if (flock(fd, LOCK_EX) < 0) {
        e = errno;
        *err = xasprintf("%s: cannot lock: %s", lock, strerror(e));
        goto fail;
    }
    free(lock);
    return fd;

fail:
    if (fd >= 0)
        close(fd);
    free(lock);
    errno = e;
    return -1;
}

/* Change the table under the lock: text NULL deletes name. */
static int passdb_modify(const char *path, const char *name, const char *text, int how,
                         gid_t gid, char **err)
{
    struct passdb_table t;
    const char *why;
    size_t i;
    int lock, rc = -1, e = 0;

    *err = NULL;
    if (!passdb_name_ok(name, &why)) {
        *err = xasprintf("'%s': %s", name, why);
        errno = EINVAL;
        return -1;
    }
    if (text && how != PASSDB_APOP) {
        struct passdb_record rec;

        if (passdb_parse(text, &rec, &why) < 0) {
            *err = xasprintf("refusing to store a malformed record: %s", why);
            errno = EINVAL;
            return -1;
        }
    }
    if (passdb_check_dir(path, err) < 0 || (lock = passdb_lock(path, err)) < 0)
        return -1;
    if (passdb_read_all(path, &t, err) < 0) {
        e = errno;
        close(lock);
        errno = e;
        return -1;
    }
    for (i = 0; i < t.n && strcmp(t.names[i], name) != 0; i++)
        ;
    if (i == t.n && how == PASSDB_APOP) {
        e = ENOENT;
        *err = xasprintf("%s has no mail password (an APOP secret goes with one)", name);
        goto out;
    }
    if (i < t.n && text && how == PASSDB_PUT_NEW) {
        e = EEXIST;
        *err = xasprintf("%s already has a mail password", name);
        goto out;
    }
    if (i == t.n && (text == NULL || how == PASSDB_PUT_REPLACE)) {
        e = ENOENT;
        *err = xasprintf("%s has no mail password", name);
        goto out;
    }
    if (text == NULL) {
        explicit_bzero(t.texts[i], strlen(t.texts[i]));
        free(t.names[i]);
        free(t.texts[i]);
        t.names[i] = t.names[t.n - 1];
        t.texts[i] = t.texts[t.n - 1];
        t.n--;
    } else if (i < t.n) {
        /* A new password keeps the APOP secret; APOP changes only it. */
        char secret[PASSDB_PASSWORD_MAX + 1], *updated = NULL;
        int had = passdb_apop(t.texts[i], secret);

        if (how == PASSDB_APOP)
            rc = passdb_set_apop(t.texts[i], *text ? text : NULL, &updated, &why);
        else
            rc = passdb_set_apop(text, had > 0 ? secret : NULL, &updated, &why);
        explicit_bzero(secret, sizeof(secret));
        if (rc < 0) {
            e = EINVAL;
            *err = xasprintf("%s: %s", name, why);
            goto out;
        }
        rc = -1;
        explicit_bzero(t.texts[i], strlen(t.texts[i]));
        free(t.texts[i]);
        t.texts[i] = updated;
    } else {
        passdb_collect(&t, name, text);
    }
    if (map_write(path, MAP_TYPE_HASH, (const char *const *)t.names,
                  (const char *const *)t.texts, t.n, 0640,
                  geteuid() == 0 ? 0 : (uid_t)-1, gid, err) < 0) {
        e = errno;
        goto out;
    }
    rc = 0;

out:
    passdb_table_free(&t);
    close(lock);
    errno = e;
    return rc;
}

int passdb_put(const char *path, const char *name, const char *text, int how, gid_t gid,
               char **err)
{
    if (text == NULL || (how != PASSDB_PUT_NEW && how != PASSDB_PUT_REPLACE))
        msg_panic("passdb_put: bad arguments");
    return passdb_modify(path, name, text, how, gid, err);
}

int passdb_delete(const char *path, const char *name, gid_t gid, char **err)
{
    return passdb_modify(path, name, NULL, 0, gid, err);
}

int passdb_put_apop(const char *path, const char *name, const char *secret, gid_t gid,
                    char **err)
{
    return passdb_modify(path, name, secret ? secret : "", PASSDB_APOP, gid, err);
}
