/*
 * dmarchist - the DMARC history lines, written by checkd and read by the
 * report job (see dmarchist.h for the format and the rules).
 *
 * One table (dh_fields) names every field once, with its key, kind and
 * place in struct dmarchist_row: the writer walks it to format a line,
 * the reader to find a key.  dmarchist_row_check() holds the value rules
 * both sides apply, so a line the writer produced always reads back.
 *
 * Failure modes: see dmarchist.h; nothing here panics on any input.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "dmarchist.h"
#include "xalloc.h"
#include "xtext.h"

#define DH_WHEN_MAX     253402300799LL      /* 9999-12-31T23:59:59Z */
#define DH_DOMAIN_MAX   253
#define DH_FO_MAX       32
#define DH_RUA_MAX      512
#define DH_MAX_FIELDS   (32 + DMARCHIST_MAX_DKIM)

enum dh_kind { DH_LL, DH_INT, DH_BOOL, DH_CHAR, DH_STR };

static const struct dh_field {
    const char  *key;
    enum dh_kind kind;
    size_t       off;
    const char  *missing;       /* the reader's reason when it is absent */
} dh_fields[] = {
#define F(k, kind, member) {k, kind, offsetof(struct dmarchist_row, member), "missing field " k}
    F("t", DH_LL, when),
    F("ip", DH_STR, source_ip),
    F("hf", DH_STR, header_from),
    F("ef", DH_STR, envelope_from),
    F("et", DH_STR, envelope_to),
    F("pd", DH_STR, policy_domain),
    F("p", DH_STR, p),
    F("sp", DH_STR, sp),
    F("pct", DH_INT, pct),
    F("adkim", DH_CHAR, adkim),
    F("aspf", DH_CHAR, aspf),
    F("fo", DH_STR, fo),
    F("rua", DH_STR, rua),
    F("disp", DH_STR, disposition),
    F("dkima", DH_BOOL, dkim_aligned),
    F("spfa", DH_BOOL, spf_aligned),
    F("reason", DH_STR, reason),
    F("spfd", DH_STR, spf_domain),
    F("spfs", DH_STR, spf_scope),
    F("spfr", DH_STR, spf_result),
#undef F
};
#define DH_NFIELDS (sizeof(dh_fields) / sizeof(dh_fields[0]))

#define DH_STRP(row, f) ((char **)((char *)(row) + (f)->off))

static int dh_word_in(const char *s, const char *const *words)
{
    for (; *words; words++)
        if (strcmp(s, *words) == 0)
            return 1;
    return 0;
}

static const char *const dh_policies[] = {"none", "quarantine", "reject", NULL};
static const char *const dh_dkim_results[] = {"none", "pass", "fail", "policy", "neutral",
                                              "temperror", "permerror", NULL};
static const char *const dh_spf_results[] = {"none", "neutral", "pass", "fail", "softfail",
                                             "temperror", "permerror", NULL};
static const char *const dh_reasons[] = {"", "forwarded", "sampled_out", "trusted_forwarder",
                                         "mailing_list", "local_policy", "other", NULL};
static const char *const dh_scopes[] = {"mfrom", "helo", NULL};

/* [A-Za-z0-9._-]{1,253}, or also "" when may_be_empty. */
static int dh_domain_ok(const char *s, int may_be_empty)
{
    size_t n;

    if (s == NULL)
        return 0;
    n = strlen(s);
    if (n == 0)
        return may_be_empty;
    if (n > DH_DOMAIN_MAX)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')
              || *s == '.' || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

/* Characters lo..'~' only, at most max of them. */
static int dh_text_ok(const char *s, size_t max, char lo)
{
    if (s == NULL || strlen(s) > max)
        return 0;
    for (; *s; s++)
        if (*s < lo || *s > '~')
            return 0;
    return 1;
}

int dmarchist_row_check(const struct dmarchist_row *row, const char **error_r)
{
    unsigned char addr[16];

#define BAD(why) do { *error_r = (why); return -1; } while (0)
    if (row->when < 0 || row->when > DH_WHEN_MAX)
        BAD("when: out of range");
    if (row->source_ip == NULL || strlen(row->source_ip) > 45
        || (inet_pton(AF_INET, row->source_ip, addr) != 1
            && inet_pton(AF_INET6, row->source_ip, addr) != 1))
        BAD("source_ip: not an IP address");
    if (!dh_domain_ok(row->header_from, 0))
        BAD("header_from: not a domain name");
    if (!dh_domain_ok(row->envelope_from, 1))
        BAD("envelope_from: not a domain name");
    if (!dh_domain_ok(row->envelope_to, 1))
        BAD("envelope_to: not a domain name");
    if (!dh_domain_ok(row->policy_domain, 0))
        BAD("policy_domain: not a domain name");
    if (row->p == NULL || !dh_word_in(row->p, dh_policies))
        BAD("p: not none, quarantine or reject");
    if (row->sp == NULL || !dh_word_in(row->sp, dh_policies))
        BAD("sp: not none, quarantine or reject");
    if (row->pct < 0 || row->pct > 100)
        BAD("pct: not 0..100");
    if (row->adkim != 'r' && row->adkim != 's')
        BAD("adkim: not r or s");
    if (row->aspf != 'r' && row->aspf != 's')
        BAD("aspf: not r or s");
    if (!dh_text_ok(row->fo, DH_FO_MAX, '!'))
        BAD("fo: longer than 32 characters or not printable ASCII");
    if (!dh_text_ok(row->rua, DH_RUA_MAX, ' '))
        BAD("rua: longer than 512 characters or not printable ASCII");
    if (row->disposition == NULL || !dh_word_in(row->disposition, dh_policies))
        BAD("disposition: not none, quarantine or reject");
    if ((row->dkim_aligned != 0 && row->dkim_aligned != 1)
        || (row->spf_aligned != 0 && row->spf_aligned != 1))
        BAD("dkim_aligned, spf_aligned: not 0 or 1");
    if (row->reason == NULL || !dh_word_in(row->reason, dh_reasons))
        BAD("reason: not a PolicyOverrideType");
    if (!dh_domain_ok(row->spf_domain, 1))
        BAD("spf_domain: not a domain name");
    if (row->spf_scope == NULL || !dh_word_in(row->spf_scope, dh_scopes))
        BAD("spf_scope: not mfrom or helo");
    if (row->spf_result == NULL || !dh_word_in(row->spf_result, dh_spf_results))
        BAD("spf_result: not an SPF result");
    if (row->ndkim > 0 && row->dkim == NULL)
        BAD("dkim: missing");
    for (size_t i = 0; i < row->ndkim; i++) {
        const struct dmarchist_dkim *d = &row->dkim[i];

        if (!dh_domain_ok(d->domain, 0))
            BAD("dkim domain: not a domain name");
        if (!dh_domain_ok(d->selector, 1))
            BAD("dkim selector: not a domain name");
        if (d->result == NULL || !dh_word_in(d->result, dh_dkim_results))
            BAD("dkim result: not a DKIM result");
    }
    return 0;
#undef BAD
}

void dmarchist_row_clear(struct dmarchist_row *row)
{
    for (size_t i = 0; i < DH_NFIELDS; i++)
        if (dh_fields[i].kind == DH_STR)
            free(*DH_STRP(row, &dh_fields[i]));
    for (size_t i = 0; i < row->ndkim && row->dkim; i++) {
        free(row->dkim[i].domain);
        free(row->dkim[i].selector);
        free(row->dkim[i].result);
    }
    free(row->dkim);
    memset(row, 0, sizeof(*row));
}

int dmarchist_file_name(long long when, char name[48])
{
    struct tm tm;
    time_t t = (time_t)when;

    if (when < 0 || when > DH_WHEN_MAX || gmtime_r(&t, &tm) == NULL)
        return -1;
    snprintf(name, 48, DMARCHIST_FILE_PREFIX "%04d%02d%02d", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday);
    return 0;
}

/* ------------------------------------------------------------ writing */

static void dh_format(buf_t *line, const struct dmarchist_row *row, size_t ndkim)
{
    buf_reset(line);
    buf_append_str(line, "v1");
    for (size_t i = 0; i < DH_NFIELDS; i++) {
        const struct dh_field *f = &dh_fields[i];
        const char *base = (const char *)row + f->off;

        buf_printf(line, " %s=", f->key);
        switch (f->kind) {
        case DH_LL:   buf_printf(line, "%lld", *(const long long *)base); break;
        case DH_INT:
        case DH_BOOL: buf_printf(line, "%d", *(const int *)base); break;
        case DH_CHAR: buf_putc(line, *base); break;
        case DH_STR: {
            const char *s = *(char *const *)base;

            xtext_encode(line, s, strlen(s));
            break;
        }
        }
    }
    for (size_t i = 0; i < ndkim; i++) {
        buf_append_str(line, " dkim=");
        xtext_encode(line, row->dkim[i].domain, strlen(row->dkim[i].domain));
        buf_putc(line, '=');
        xtext_encode(line, row->dkim[i].selector, strlen(row->dkim[i].selector));
        buf_putc(line, '=');
        buf_append_str(line, row->dkim[i].result);
    }
    buf_putc(line, '\n');
}

/* The day's file dmarchist_append() keeps open between rows: a message
 * is a row, and opening the file for each would cost more than the row.
 * It is the file of dirfd and name while it still has its one link (the
 * report job renames a day's file only once the day is over, and then
 * the name of new rows differs anyway). */
static struct {
    int  dirfd;
    int  fd;
    char name[48];
} dh_kept = { -1, -1, "" };

/* The descriptor to append rows of name in dirfd to: the kept one, or the
 * file opened (made) now; -1 with *error_r and errno. */
static int dh_day_file(int dirfd, const char *name, const char **error_r)
{
    struct stat st;
    int fd, saved;

    if (dh_kept.fd >= 0) {
        if (dh_kept.dirfd == dirfd && strcmp(dh_kept.name, name) == 0
            && fstat(dh_kept.fd, &st) == 0 && st.st_nlink == 1)
            return dh_kept.fd;
        close(dh_kept.fd);
        dh_kept.fd = -1;
    }
    fd = openat(dirfd, name, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC
                | O_NONBLOCK | O_NOCTTY, 0600);
    if (fd < 0) {
        saved = errno;
        *error_r = "cannot open the history file";
        errno = saved;
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
        close(fd);
        *error_r = "the history file is not a regular file with one link";
        errno = EINVAL;
        return -1;
    }
    dh_kept.dirfd = dirfd;
    dh_kept.fd = fd;
    strlcpy(dh_kept.name, name, sizeof(dh_kept.name));
    return fd;
}

int dmarchist_append(int dirfd, const struct dmarchist_row *row, const char **error_r)
{
    size_t ndkim = row->ndkim < DMARCHIST_MAX_DKIM ? row->ndkim : DMARCHIST_MAX_DKIM;
    char name[48];
    buf_t *line;
    ssize_t n;
    int fd, saved;

    if (dmarchist_row_check(row, error_r) < 0) {
        errno = EINVAL;
        return -1;
    }
    if (dmarchist_file_name(row->when, name) < 0) {
        *error_r = "when: out of range";
        errno = EINVAL;
        return -1;
    }
    if ((fd = dh_day_file(dirfd, name, error_r)) < 0)
        return -1;
    line = buf_new(0);
    for (;;) {
        dh_format(line, row, ndkim);
        if (line->len <= DMARCHIST_LINE_MAX || ndkim == 0)
            break;
        ndkim--;
    }
    n = write(fd, line->data, line->len);
    saved = errno;
    if (n >= 0 && (size_t)n != line->len)
        saved = ENOSPC;
    buf_free(&line);
    if (n < 0 || saved == ENOSPC) {
        /* Opened anew for the next row. */
        close(dh_kept.fd);
        dh_kept.fd = -1;
        *error_r = "cannot write the history file";
        errno = saved;
        return -1;
    }
    return 0;
}

void dmarchist_append_close(void)
{
    if (dh_kept.fd >= 0)
        close(dh_kept.fd);
    dh_kept.fd = -1;
}

/* ------------------------------------------------------------ reading */

static const struct dh_field *dh_field_find(const char *key, size_t len)
{
    for (size_t i = 0; i < DH_NFIELDS; i++)
        if (strlen(dh_fields[i].key) == len && memcmp(dh_fields[i].key, key, len) == 0)
            return &dh_fields[i];
    return NULL;
}

/* Decimal digits only, at most maxdigits of them; -1 otherwise. */
static long long dh_number(const char *s, size_t len, size_t maxdigits)
{
    long long n = 0;

    if (len == 0 || len > maxdigits)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        n = n * 10 + (s[i] - '0');
    }
    return n;
}

static char *dh_xtext(const char *s, size_t len)
{
    char *out;

    return xtext_decode(s, len, &out, NULL) < 0 ? NULL : out;
}

/* One dkim value "D=S=W" into row's next entry; NULL or a reason. */
static const char *dh_parse_dkim(struct dmarchist_row *row, const char *v, size_t len)
{
    const char *eq1 = memchr(v, '=', len), *eq2;
    struct dmarchist_dkim *d;

    if (eq1 == NULL || (eq2 = memchr(eq1 + 1, '=', len - (size_t)(eq1 + 1 - v))) == NULL)
        return "dkim: expected domain=selector=result";
    if (row->ndkim >= DMARCHIST_MAX_DKIM)
        return "more than 8 dkim results";
    row->dkim = xreallocarray(row->dkim, row->ndkim + 1, sizeof(*row->dkim));
    d = &row->dkim[row->ndkim++];
    d->domain = dh_xtext(v, (size_t)(eq1 - v));
    d->selector = dh_xtext(eq1 + 1, (size_t)(eq2 - eq1 - 1));
    d->result = dh_xtext(eq2 + 1, len - (size_t)(eq2 + 1 - v));
    if (d->domain == NULL || d->selector == NULL || d->result == NULL)
        return "dkim: not xtext";
    return NULL;
}

/* One field "key=value"; NULL or a reason. */
static const char *dh_parse_field(struct dmarchist_row *row, const char *tok, size_t len,
                                  unsigned *seen)
{
    const char *eq = memchr(tok, '=', len), *v;
    const struct dh_field *f;
    size_t vlen, idx;
    char *base;
    long long n;

    if (len == 0)
        return "empty field (two spaces in a row)";
    if (eq == NULL)
        return "field without '='";
    v = eq + 1;
    vlen = len - (size_t)(v - tok);
    if ((size_t)(eq - tok) == 4 && memcmp(tok, "dkim", 4) == 0)
        return dh_parse_dkim(row, v, vlen);
    if ((f = dh_field_find(tok, (size_t)(eq - tok))) == NULL)
        return "unknown field";
    idx = (size_t)(f - dh_fields);
    if (*seen & (1u << idx))
        return "field repeated";
    *seen |= 1u << idx;
    base = (char *)row + f->off;
    switch (f->kind) {
    case DH_LL:
        if ((n = dh_number(v, vlen, 12)) < 0)
            return "t: not a number";
        *(long long *)base = n;
        break;
    case DH_INT:
        if ((n = dh_number(v, vlen, 3)) < 0)
            return "pct: not a number";
        *(int *)base = (int)n;
        break;
    case DH_BOOL:
        if (vlen != 1 || (v[0] != '0' && v[0] != '1'))
            return "dkima, spfa: not 0 or 1";
        *(int *)base = v[0] - '0';
        break;
    case DH_CHAR:
        if (vlen != 1)
            return "adkim, aspf: not one character";
        *base = v[0];
        break;
    case DH_STR:
        if ((*(char **)base = dh_xtext(v, vlen)) == NULL)
            return "value is not xtext";
        break;
    }
    return NULL;
}

/* One line without its LF into row; NULL or a reason. */
static const char *dh_parse_line(struct dmarchist_row *row, const char *s, size_t len)
{
    unsigned seen = 0;
    const char *why;
    size_t ntok = 0;

    if (memchr(s, '\0', len))
        return "NUL byte in the line";
    if (len == 2 && memcmp(s, "v1", 2) == 0)
        return "no fields after v1";
    if (len < 3 || memcmp(s, "v1 ", 3) != 0) {
        size_t digits = 0;

        while (1 + digits < len && s[1 + digits] >= '0' && s[1 + digits] <= '9')
            digits++;
        return len > 0 && s[0] == 'v' && digits > 0 && (1 + digits == len || s[1 + digits] == ' ')
            ? "unsupported version (this reader knows v1)"
            : "not a history line (expected v1 first)";
    }
    s += 3;
    len -= 3;
    for (;;) {
        const char *sp = memchr(s, ' ', len);
        size_t tl = sp ? (size_t)(sp - s) : len;

        if (++ntok > DH_MAX_FIELDS)
            return "too many fields";
        if ((why = dh_parse_field(row, s, tl, &seen)) != NULL)
            return why;
        if (sp == NULL)
            break;
        s = sp + 1;
        len -= tl + 1;
    }
    for (size_t i = 0; i < DH_NFIELDS; i++)
        if (!(seen & (1u << i)))
            return dh_fields[i].missing;
    return dmarchist_row_check(row, &why) < 0 ? why : NULL;
}

static void dh_warn(void (*warn)(void *, const char *), void *ctx, const char *path,
                    unsigned long lineno, const char *why)
{
    char *msg;

    if (warn == NULL)
        return;
    msg = xasprintf("%s:%lu: %s", path, lineno, why);
    warn(ctx, msg);
    free(msg);
}

int dmarchist_read(int fd, const char *path, int (*fn)(void *ctx, const struct dmarchist_row *row),
                   void (*warn)(void *ctx, const char *msg), void *ctx)
{
    size_t cap = 65536, have = 0;
    char *bufp = xmalloc(cap);
    unsigned long lineno = 0;
    int skipping = 0, rc = 0, eof = 0;

    while (!eof && rc == 0) {
        ssize_t n = read(fd, bufp + have, cap - have);
        size_t start = 0;

        if (n < 0) {
            if (errno == EINTR)
                continue;
            int saved = errno;

            free(bufp);
            errno = saved;
            return -1;
        }
        if (n == 0)
            eof = 1;
        have += (size_t)n;
        while (rc == 0) {
            char *nl = memchr(bufp + start, '\n', have - start);
            size_t len;

            if (nl == NULL) {
                if (have - start >= DMARCHIST_LINE_MAX && !skipping) {
                    /* No LF within the limit: a line too long, whose
                     * rest is skipped up to its LF. */
                    dh_warn(warn, ctx, path, ++lineno, "line too long");
                    skipping = 1;
                }
                if (skipping)
                    start = have;
                break;
            }
            len = (size_t)(nl - (bufp + start));
            if (skipping) {
                skipping = 0;
            } else {
                struct dmarchist_row row = {0};
                const char *why;

                lineno++;
                if (len + 1 > DMARCHIST_LINE_MAX)
                    why = "line too long";
                else
                    why = dh_parse_line(&row, bufp + start, len);
                if (why)
                    dh_warn(warn, ctx, path, lineno, why);
                else
                    rc = fn(ctx, &row);
                dmarchist_row_clear(&row);
            }
            start += len + 1;
        }
        memmove(bufp, bufp + start, have - start);
        have -= start;
        if (eof && have > 0 && rc == 0 && !skipping)
            dh_warn(warn, ctx, path, ++lineno, "incomplete last line (no LF): skipped");
    }
    free(bufp);
    return rc;
}
