/*
 * t/unit/dmarchist.c - unit tests for lib/dmarchist.c (the DMARC history
 * lines).
 *
 * Round trip: rows appended with dmarchist_append() into the file of
 * their UTC day read back field for field, odd characters (xtext) and
 * empty values included.  Limits: fields at their longest still fit one
 * line under PIPE_BUF; more than 8 DKIM results are cut to 8, and long
 * ones dropped from the end until the line fits; rows that break a rule
 * are refused.  Hostile files: every malformed line is reported as
 * PATH:LINE: reason and skipped while the good lines around it are read
 * (a line too long, no LF at the end, NUL bytes, an unknown version,
 * unknown, repeated or missing fields, bad values, too many DKIM
 * results); random bytes never crash the reader.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "dmarchist.h"
#include "xalloc.h"
#include "../lib/tap.h"

static char tmpdir[] = "/tmp/dmarchist-XXXXXX";
static int dirfd_;

struct seen {
    struct dmarchist_row rows[64];
    size_t nrows;
    char *warns[64];
    size_t nwarns;
};

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static int keep_row(void *ctx, const struct dmarchist_row *r)
{
    struct seen *s = ctx;
    struct dmarchist_row *c;

    if (s->nrows >= 64)
        return 0;
    c = &s->rows[s->nrows++];
    *c = *r;
    c->source_ip = dup_or_null(r->source_ip);
    c->header_from = dup_or_null(r->header_from);
    c->envelope_from = dup_or_null(r->envelope_from);
    c->envelope_to = dup_or_null(r->envelope_to);
    c->policy_domain = dup_or_null(r->policy_domain);
    c->p = dup_or_null(r->p);
    c->sp = dup_or_null(r->sp);
    c->fo = dup_or_null(r->fo);
    c->rua = dup_or_null(r->rua);
    c->disposition = dup_or_null(r->disposition);
    c->reason = dup_or_null(r->reason);
    c->spf_domain = dup_or_null(r->spf_domain);
    c->spf_scope = dup_or_null(r->spf_scope);
    c->spf_result = dup_or_null(r->spf_result);
    c->dkim = r->ndkim ? xcalloc(r->ndkim, sizeof(*c->dkim)) : NULL;
    for (size_t i = 0; i < r->ndkim; i++) {
        c->dkim[i].domain = xstrdup(r->dkim[i].domain);
        c->dkim[i].selector = xstrdup(r->dkim[i].selector);
        c->dkim[i].result = xstrdup(r->dkim[i].result);
    }
    return 0;
}

static void keep_warn(void *ctx, const char *msg)
{
    struct seen *s = ctx;

    if (s->nwarns < 64)
        s->warns[s->nwarns++] = xstrdup(msg);
}

static void seen_clear(struct seen *s)
{
    for (size_t i = 0; i < s->nrows; i++)
        dmarchist_row_clear(&s->rows[i]);
    for (size_t i = 0; i < s->nwarns; i++)
        free(s->warns[i]);
    memset(s, 0, sizeof(*s));
}

/* Read dir's file name into s; the reader's return. */
static int read_file(const char *name, struct seen *s)
{
    char *path = xasprintf("%s/%s", tmpdir, name);
    int fd = open(path, O_RDONLY), rc;

    if (fd < 0) {
        diag("open %s: %s", path, strerror(errno));
        free(path);
        return -2;
    }
    rc = dmarchist_read(fd, name, keep_row, keep_warn, s);
    close(fd);
    free(path);
    return rc;
}

static void write_raw(const char *name, const char *data, size_t len)
{
    char *path = xasprintf("%s/%s", tmpdir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    if (fd < 0 || write(fd, data, len) != (ssize_t)len)
        diag("write %s: %s", path, strerror(errno));
    close(fd);
    free(path);
}

static struct dmarchist_dkim two_sigs[] = {
    {"sender.test", "sel1", "pass"},
    {"esp.example", "", "fail"},
};

static struct dmarchist_row sample(void)
{
    struct dmarchist_row r = {
        .when = 1700000000, .source_ip = "192.0.2.1", .header_from = "sender.test",
        .envelope_from = "bounce.sender.test", .envelope_to = "example.test",
        .policy_domain = "sender.test", .p = "reject", .sp = "quarantine", .pct = 50,
        .adkim = 'r', .aspf = 's', .fo = "0:1:d", .rua = "mailto:a+b@x.test!10k, mailto:c=d@y.test",
        .disposition = "reject", .dkim_aligned = 1, .spf_aligned = 0, .reason = "",
        .spf_domain = "bounce.sender.test", .spf_scope = "mfrom", .spf_result = "softfail",
        .ndkim = 2, .dkim = two_sigs,
    };
    return r;
}

static int rows_equal(const struct dmarchist_row *a, const struct dmarchist_row *b)
{
#define S(f) (strcmp(a->f, b->f) == 0)
    if (!(a->when == b->when && S(source_ip) && S(header_from) && S(envelope_from)
          && S(envelope_to) && S(policy_domain) && S(p) && S(sp) && a->pct == b->pct
          && a->adkim == b->adkim && a->aspf == b->aspf && S(fo) && S(rua) && S(disposition)
          && a->dkim_aligned == b->dkim_aligned && a->spf_aligned == b->spf_aligned
          && S(reason) && S(spf_domain) && S(spf_scope) && S(spf_result)
          && a->ndkim == b->ndkim))
        return 0;
#undef S
    for (size_t i = 0; i < a->ndkim; i++)
        if (strcmp(a->dkim[i].domain, b->dkim[i].domain) || strcmp(a->dkim[i].selector,
            b->dkim[i].selector) || strcmp(a->dkim[i].result, b->dkim[i].result))
            return 0;
    return 1;
}

static void test_round_trip(void)
{
    struct dmarchist_row r = sample(), r2 = sample();
    struct seen s = {0};
    const char *why = NULL;
    struct stat st;
    char name[48];

    is_int(dmarchist_file_name(1700000000, name), 0, "file name of a time");
    is_str(name, "history-20231114", "  is its UTC day");
    is_int(dmarchist_append(dirfd_, &r, &why), 0, "a row is appended");
    r2.when = 1700006400 - 1;           /* 23:59:59 the same day */
    r2.source_ip = "2001:db8::1";
    r2.envelope_from = "";
    r2.envelope_to = "";
    r2.fo = "";
    r2.rua = "";
    r2.reason = "mailing_list";
    r2.spf_scope = "helo";
    r2.ndkim = 0;
    r2.dkim = NULL;
    is_int(dmarchist_append(dirfd_, &r2, &why), 0, "a second row, with empty values and no DKIM");
    r.when = 1700006400;                /* the next day */
    is_int(dmarchist_append(dirfd_, &r, &why), 0, "a row of the next day");
    ok(fstatat(dirfd_, "history-20231114", &st, 0) == 0 && (st.st_mode & 0777) == 0600,
       "the day's file is mode 0600");
    is_int(read_file("history-20231114", &s), 0, "the file reads");
    is_int(s.nrows, 2, "  two rows");
    is_int(s.nwarns, 0, "  no warnings");
    r.when = 1700000000;
    ok(s.nrows == 2 && rows_equal(&s.rows[0], &r), "  the first row comes back as written");
    ok(s.nrows == 2 && rows_equal(&s.rows[1], &r2), "  so does the second");
    seen_clear(&s);
    is_int(read_file("history-20231115", &s), 0, "the next day's file reads");
    is_int(s.nrows, 1, "  one row");
    seen_clear(&s);
    /* The day's file is kept open between rows; removed, it is made anew. */
    ok(unlinkat(dirfd_, "history-20231115", 0) == 0, "the kept day's file is removed");
    r.when = 1700006400;
    is_int(dmarchist_append(dirfd_, &r, &why), 0, "a row after that");
    is_int(read_file("history-20231115", &s), 0, "  is in a new file of that day");
    is_int(s.nrows, 1, "  alone");
    seen_clear(&s);
    dmarchist_append_close();
}

static void test_refused(void)
{
    static const struct {
        const char *field, *value, *why;
    } bad[] = {
        {"source_ip", "192.0.2", "source_ip"}, {"source_ip", "", "source_ip"},
        {"header_from", "", "header_from"}, {"header_from", "a b.test", "header_from"},
        {"header_from", "x<y>.test", "header_from"}, {"envelope_from", "a/b", "envelope_from"},
        {"policy_domain", "", "policy_domain"}, {"p", "block", "p:"}, {"sp", "", "sp:"},
        {"disposition", "None", "disposition"}, {"reason", "because", "reason"},
        {"spf_scope", "pra", "spf_scope"}, {"spf_result", "unknown", "spf_result"},
        {"fo", "a b", "fo"}, {"rua", "mailto:\x01@x", "rua"},
    };
    const char *why;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct dmarchist_row r = sample();
        const char **f =
            strcmp(bad[i].field, "source_ip") == 0 ? (const char **)&r.source_ip
            : strcmp(bad[i].field, "header_from") == 0 ? (const char **)&r.header_from
            : strcmp(bad[i].field, "envelope_from") == 0 ? (const char **)&r.envelope_from
            : strcmp(bad[i].field, "policy_domain") == 0 ? (const char **)&r.policy_domain
            : strcmp(bad[i].field, "p") == 0 ? (const char **)&r.p
            : strcmp(bad[i].field, "sp") == 0 ? (const char **)&r.sp
            : strcmp(bad[i].field, "disposition") == 0 ? (const char **)&r.disposition
            : strcmp(bad[i].field, "reason") == 0 ? (const char **)&r.reason
            : strcmp(bad[i].field, "spf_scope") == 0 ? (const char **)&r.spf_scope
            : strcmp(bad[i].field, "spf_result") == 0 ? (const char **)&r.spf_result
            : strcmp(bad[i].field, "fo") == 0 ? (const char **)&r.fo : (const char **)&r.rua;

        *f = bad[i].value;
        why = NULL;
        is_int(dmarchist_append(dirfd_, &r, &why), -1, "%s '%s' is refused", bad[i].field,
               bad[i].value);
        like(why, bad[i].why, "  the reason names it");
    }
    {
        struct dmarchist_row r = sample();

        r.pct = 101;
        is_int(dmarchist_append(dirfd_, &r, &why), -1, "pct 101 is refused");
        r = sample();
        r.adkim = 'x';
        is_int(dmarchist_append(dirfd_, &r, &why), -1, "adkim x is refused");
        r = sample();
        r.when = -1;
        is_int(dmarchist_append(dirfd_, &r, &why), -1, "a negative time is refused");
        r = sample();
        r.source_ip = NULL;
        is_int(dmarchist_append(dirfd_, &r, &why), -1, "a missing value is refused");
    }
}

static void test_long(void)
{
    char dom[254], rua[513], fo[33];
    struct dmarchist_dkim sigs[12];
    struct dmarchist_row r = sample();
    struct seen s = {0};
    const char *why = NULL;
    char *path;
    buf_t *b = buf_new(0);
    int fd;

    /* A 253-byte name of labels. */
    for (size_t i = 0; i < 253; i++)
        dom[i] = i % 10 == 9 ? '.' : 'a' + (char)(i % 26);
    dom[253] = '\0';
    memset(rua, '+', 512);              /* each one becomes "+2B": the worst case */
    rua[512] = '\0';
    memset(fo, '=', 32);
    fo[32] = '\0';
    for (size_t i = 0; i < 12; i++)
        sigs[i] = (struct dmarchist_dkim){dom, dom, "temperror"};
    r.when = 1600000000;
    r.header_from = r.envelope_from = r.envelope_to = r.policy_domain = r.spf_domain = dom;
    r.source_ip = "2001:db8:1234:5678:9abc:def0:1234:5678";
    r.rua = rua;
    r.fo = fo;
    r.ndkim = 12;
    r.dkim = sigs;
    is_int(dmarchist_append(dirfd_, &r, &why), 0, "a row with every field at its longest is written");
    r.ndkim = 0;
    is_int(dmarchist_append(dirfd_, &r, &why), 0, "  and without DKIM results");
    dom[253] = 'x';
    {
        char longer[255];

        memcpy(longer, dom, 254);
        longer[254] = '\0';
        r.header_from = longer;
        is_int(dmarchist_append(dirfd_, &r, &why), -1, "a 254-byte domain is refused");
        dom[253] = '\0';
    }
    r.header_from = dom;
    {
        char longrua[514];

        memset(longrua, 'm', 513);
        longrua[513] = '\0';
        r.rua = longrua;
        is_int(dmarchist_append(dirfd_, &r, &why), -1, "a 513-character rua is refused");
        r.rua = rua;
    }
    path = xasprintf("%s/history-20200913", tmpdir);
    fd = open(path, O_RDONLY);
    buf_read_all(b, fd);
    close(fd);
    {
        const char *nl = memchr(b->data, '\n', b->len);
        size_t first = nl ? (size_t)(nl - b->data) + 1 : 0;

        ok(first > 3000 && first <= DMARCHIST_LINE_MAX, "the long line is %zu bytes, at most %d",
           first, DMARCHIST_LINE_MAX);
        ok(b->len - first <= DMARCHIST_LINE_MAX, "so is the line without DKIM (%zu)", b->len - first);
    }
    fd = open(path, O_RDONLY);
    is_int(dmarchist_read(fd, "h", keep_row, keep_warn, &s), 0, "the long lines read back");
    close(fd);
    is_int(s.nrows, 2, "  both");
    is_int(s.nwarns, 0, "  without warnings");
    ok(s.nrows >= 1 && s.rows[0].ndkim >= 1 && s.rows[0].ndkim < 8,
       "  DKIM results were dropped from the end to fit (%zu kept)", s.nrows ? s.rows[0].ndkim : 0);
    ok(s.nrows >= 1 && strcmp(s.rows[0].rua, rua) == 0 && strcmp(s.rows[0].fo, fo) == 0
       && strcmp(s.rows[0].header_from, dom) == 0, "  the long values are whole");
    seen_clear(&s);
    free(path);
    buf_free(&b);

    /* Short DKIM results: 12 become 8. */
    r = sample();
    r.when = 1500000000;
    for (size_t i = 0; i < 12; i++)
        sigs[i] = (struct dmarchist_dkim){"d.test", "s", "pass"};
    r.ndkim = 12;
    r.dkim = sigs;
    is_int(dmarchist_append(dirfd_, &r, &why), 0, "a row with 12 DKIM results is written");
    is_int(read_file("history-20170714", &s), 0, "  and read");
    ok(s.nrows == 1 && s.rows[0].ndkim == DMARCHIST_MAX_DKIM, "  with the first 8 of them");
    seen_clear(&s);
}

static void test_hostile(void)
{
    static const char *const good =
        "v1 t=1700000000 ip=192.0.2.9 hf=a.test ef=a.test et= pd=a.test p=none sp=none pct=100"
        " adkim=r aspf=r fo= rua=mailto:r@a.test disp=none dkima=0 spfa=1 reason= spfd=a.test"
        " spfs=mfrom spfr=pass";
    static const struct {
        const char *line, *why;
    } bad[] = {
        {"", "not a history line"},
        {"hello", "not a history line"},
        {"v2 t=1", "unsupported version"},
        {"v10", "unsupported version"},
        {"v1", "no fields"},
        {"v1 t=1700000000", "missing field ip"},
        {"%s x=1", "unknown field"},
        {"%s t=1", "field repeated"},
        {"%s  ", "empty field"},
        {"%s dkim=a.test", "dkim: expected"},
        {"%s dkim=a.test=s=great", "dkim result"},
        {"%s dkim=a+2.test=s=pass", "not xtext"},
        {"%s hf=x", "field repeated"},
        {"v1 t=-5 ip=x", "t: not a number"},
        {"v1 t=1234567890123 ip=x", "t: not a number"},
        {"v1 pct=1000", "pct: not a number"},
        {"v1 dkima=2", "dkima"},
        {"v1 adkim=rr", "adkim"},
        {"v1 hf=a+20b", NULL},          /* decodes, but the row is incomplete */
        {"v1 t", "without '='"},
        {"v1 ip=+00", "not xtext"},
    };
    buf_t *f = buf_new(0);
    struct seen s = {0};
    char *line;
    size_t expect_warn = 0;

    buf_printf(f, "%s\n", good);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (strncmp(bad[i].line, "%s", 2) == 0)
            buf_printf(f, "%s%s\n", good, bad[i].line + 2);
        else
            buf_printf(f, "%s\n", bad[i].line);
        expect_warn++;
    }
    /* Swap a value for a bad one. */
    line = xstrdup(good);
    memcpy(strstr(line, "p=none"), "p=nope", 6);
    buf_printf(f, "%s\n", line);
    expect_warn++;
    free(line);
    buf_printf(f, "%s\n", good);
    buf_append(f, "v1 t=1\0 x\n", 10);        /* a NUL byte */
    expect_warn++;
    /* Nine DKIM results. */
    buf_append_str(f, good);
    for (int i = 0; i < 9; i++)
        buf_append_str(f, " dkim=a.test=s=pass");
    buf_putc(f, '\n');
    expect_warn++;
    /* A line of 10000 bytes, and one of exactly the limit. */
    buf_append_str(f, good);
    for (int i = 0; i < 10000; i++)
        buf_putc(f, 'x');
    buf_putc(f, '\n');
    expect_warn++;
    buf_append_str(f, good);
    buf_append_str(f, " ");
    {
        /* 4095 bytes and the LF: refused for its content (a field
         * without '='), not for its length. */
        size_t start = f->len - strlen(good) - 1;
        size_t want = DMARCHIST_LINE_MAX - 1;        /* without the LF */

        while (f->len - start < want)
            buf_putc(f, 'y');
        buf_putc(f, '\n');
        expect_warn++;                  /* "y...": a field without '=' */
    }
    buf_printf(f, "%s\n", good);
    buf_append_str(f, good);            /* no LF at the end */
    expect_warn++;
    write_raw("hostile", f->data, f->len);
    is_int(read_file("hostile", &s), 0, "a hostile file is read to its end");
    is_int(s.nrows, 3, "  its three good lines are taken");
    is_int(s.nwarns, expect_warn, "  every bad line is reported");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]) && i + 1 < s.nwarns; i++) {
        char *prefix = xasprintf("hostile:%zu: ", i + 2);

        ok(strncmp(s.warns[i], prefix, strlen(prefix)) == 0, "  '%s' says PATH:LINE", s.warns[i]);
        if (bad[i].why)
            like(s.warns[i], bad[i].why, "    and why");
        free(prefix);
    }
    if (s.nwarns == expect_warn) {
        like(s.warns[s.nwarns - 5], "NUL", "a NUL byte is reported");
        like(s.warns[s.nwarns - 4], "more than 8 dkim", "nine DKIM results are reported");
        like(s.warns[s.nwarns - 3], "line too long", "a 10000-byte line is reported as too long");
        like(s.warns[s.nwarns - 2], "without '='", "a line of the limit is parsed, not cut");
        like(s.warns[s.nwarns - 1], "no LF", "a last line without LF is reported");
    }
    seen_clear(&s);
    buf_free(&f);
}

static int stop_at_first(void *ctx, const struct dmarchist_row *r)
{
    (void)r;
    (*(int *)ctx)++;
    return 7;
}

static void test_random(void)
{
    unsigned seed = 12345;
    buf_t *f = buf_new(0);
    struct seen s = {0};
    int calls = 0, fd;
    char *path;

    for (int round = 0; round < 200; round++) {
        size_t n = (size_t)(rand_r(&seed) % 6000);

        buf_reset(f);
        for (size_t i = 0; i < n; i++) {
            int c = rand_r(&seed) % 10;

            buf_putc(f, c == 0 ? '\n' : c == 1 ? ' ' : c == 2 ? '=' : c == 3 ? '+'
                     : (char)(rand_r(&seed) & 0xff));
        }
        write_raw("random", f->data, f->len);
        if (read_file("random", &s) != 0)
            break;
        seen_clear(&s);
    }
    ok(1, "200 files of random bytes read without a crash");
    buf_reset(f);
    buf_printf(f, "v1 t=1700000000 ip=192.0.2.9 hf=a.test ef=a.test et= pd=a.test p=none sp=none"
               " pct=100 adkim=r aspf=r fo= rua= disp=none dkima=0 spfa=1 reason= spfd=a.test"
               " spfs=mfrom spfr=pass\n");
    buf_append(f, f->data, f->len);
    write_raw("two", f->data, f->len);
    path = xasprintf("%s/two", tmpdir);
    fd = open(path, O_RDONLY);
    is_int(dmarchist_read(fd, "two", stop_at_first, NULL, &calls), 7,
           "a callback's non-zero return stops the reading and is returned");
    is_int(calls, 1, "  after one row");
    close(fd);
    free(path);
    is_int(dmarchist_read(-1, "bad", stop_at_first, NULL, &calls), -1, "a read error is -1");
    buf_free(&f);
}

int main(void)
{
    if (mkdtemp(tmpdir) == NULL || (dirfd_ = open(tmpdir, O_RDONLY | O_DIRECTORY)) < 0) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trip();
    test_refused();
    test_long();
    test_hostile();
    test_random();
    {
        char *cmd = xasprintf("rm -rf %s", tmpdir);

        if (system(cmd) != 0)
            diag("could not remove %s", tmpdir);
        free(cmd);
    }
    return done_testing();
}
