/*
 * t/fuzz/smtpreply.c - libFuzzer harness for lib/smtpreply.c's reply
 * parser (the client's side) and lib/smtpext.c's EHLO capabilities.
 *
 * Input layout: byte 0 seeds the chunk sizes; byte 1 picks the limits (0:
 * SMTPREPLY_LIMITS_DEFAULT, else small ones); the rest is what a server
 * sent.  It is parsed twice: all at once, and in pseudo-random chunks of
 * 1..97 bytes (each DONE handing the unused bytes back).  Both runs must
 * give exactly what a model computed over the whole input gives: the same
 * replies (code, enhanced code, line texts) and the same error at the same
 * place.
 *
 * Also checked for every reply: code 200..599, 1..lines_max lines, no
 * control characters in the text, an enhanced code that is well-formed and
 * of the reply's class, or none; smtpreply_format() of the reply parses
 * back to the same reply (when its lines fit the formatter's 512 bytes);
 * and smtpext_parse_ehlo() gives -1 for anything but 250, else only known
 * bits, SIZE's limit only with SIZE, and an AUTH list of distinct,
 * well-formed, upper-case names that smtpext_has_auth() finds.  Leaks are
 * found by ASan.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzzlib.h"
#include "smtpext.h"
#include "smtpreply.h"
#include "xalloc.h"

static bool digit(int c)
{
    return c >= '0' && c <= '9';
}

static void describe(buf_t *out, const struct smtpreply *r)
{
    buf_printf(out, "%d %s", r->code, r->dsn);
    for (size_t i = 0; i < r->nlines; i++)
        buf_printf(out, "|%s", r->lines[i]);
    buf_putc(out, ';');
}

/* The model's enhanced code of first line text t. */
static void model_dsn(const char *t, int code, char *dsn)
{
    size_t k = 2, d2 = 0, d3 = 0;

    dsn[0] = '\0';
    if (t[0] != '0' + code / 100 || t[1] != '.')
        return;
    for (; digit(t[k]); k++)
        d2++;
    if (d2 < 1 || d2 > 3 || t[k] != '.')
        return;
    for (k++; digit(t[k]); k++)
        d3++;
    if (d3 < 1 || d3 > 3 || (t[k] != ' ' && t[k] != '\0'))
        return;
    memcpy(dsn, t, k);
    dsn[k] = '\0';
}

/* The model: the same grammar, written plainly over the whole input. */
static void model(const char *w, size_t n, const struct smtpreply_limits *lim, buf_t *out)
{
    size_t pos = 0, nlines = 0, size = 0;
    int code = 0;
    buf_t *texts = buf_new(0), *first = buf_new(0);

    while (pos < n) {
        const char *nl = memchr(w + pos, '\n', n - pos), *s = w + pos;
        size_t wire, len, i;
        int c;

        if (nl == NULL) {                       /* an unfinished line */
            if (n - pos > lim->line_max)
                buf_append_str(out, "ERR reply line too long");
            break;
        }
        wire = (size_t)(nl - s) + 1;
        if (wire > lim->line_max) {
            buf_append_str(out, "ERR reply line too long");
            break;
        }
        len = wire - 1;
        if (len > 0 && s[len - 1] == '\r')
            len--;
        if (len < 3 || !digit(s[0]) || !digit(s[1]) || !digit(s[2])) {
            buf_append_str(out, "ERR reply code is not three digits");
            break;
        }
        c = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
        if (c < 200 || c > 599) {
            buf_append_str(out, "ERR reply code out of range");
            break;
        }
        if (len > 3 && s[3] != ' ' && s[3] != '-') {
            buf_append_str(out, "ERR no SP or \"-\" after the reply code");
            break;
        }
        if (nlines > 0 && c != code) {
            buf_append_str(out, "ERR reply lines with different codes");
            break;
        }
        if (nlines + 1 > lim->lines_max) {
            buf_append_str(out, "ERR too many lines in one reply");
            break;
        }
        if (size + wire > lim->size_max) {
            buf_append_str(out, "ERR reply too long");
            break;
        }
        code = c;
        size += wire;
        buf_putc(texts, '|');
        for (i = 4; i < len; i++) {
            unsigned char ch = (unsigned char)s[i];

            buf_putc(texts, ch < 32 || ch == 127 ? '?' : ch);
            if (nlines == 0)
                buf_putc(first, ch < 32 || ch == 127 ? '?' : ch);
        }
        nlines++;
        pos += wire;
        if (len == 3 || s[3] == ' ') {
            char dsn[16];

            model_dsn(buf_cstr(first), code, dsn);
            buf_printf(out, "%d %s%s;", code, dsn, buf_cstr(texts));
            buf_reset(texts);
            buf_reset(first);
            nlines = size = 0;
        }
    }
    buf_free(&texts);
    buf_free(&first);
}

static void check_ehlo(const struct smtpreply *r)
{
    struct smtpext_caps caps;

    caps.auth = NULL;
    if (smtpext_parse_ehlo(r, &caps) < 0) {
        if (r->code == 250 || caps.ext || caps.auth || caps.size_max)
            fuzz_fail("EHLO refused wrongly or left something");
        return;
    }
    if (r->code != 250)
        fuzz_fail("EHLO reply %d accepted", r->code);
    if (caps.ext & ~SMTPEXT_ALL)
        fuzz_fail("unknown extension bits %#x", caps.ext);
    if (caps.size_max && !(caps.ext & SMTPEXT_SIZE))
        fuzz_fail("SIZE limit without SIZE");
    if ((caps.auth != NULL) != ((caps.ext & SMTPEXT_AUTH) != 0))
        fuzz_fail("AUTH bit and list disagree");
    if (caps.auth) {
        const char *p = caps.auth;

        while (*p) {
            size_t n = strcspn(p, " ");
            char *mech = xstrndup(p, n);

            if (n == 0 || n > 20 || strspn(mech, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != n)
                fuzz_fail("bad mechanism '%s' in '%s'", mech, caps.auth);
            if (!smtpext_has_auth(&caps, mech))
                fuzz_fail("has_auth misses '%s'", mech);
            for (const char *q = p + n; *q; q += strcspn(q, " ")) {
                q++;
                if (strncmp(q, mech, n) == 0 && (q[n] == ' ' || q[n] == '\0'))
                    fuzz_fail("mechanism '%s' twice", mech);
            }
            free(mech);
            p += n;
            if (*p == ' ' && *++p == '\0')
                fuzz_fail("trailing space in the AUTH list");
        }
    }
    smtpext_caps_clear(&caps);
    if (caps.auth || caps.ext)
        fuzz_fail("clear left something");
}

static void check_reply(const struct smtpreply *r, const struct smtpreply_limits *lim)
{
    static const struct smtpreply_limits def = SMTPREPLY_LIMITS_DEFAULT;
    bool fits = r->nlines <= def.lines_max;
    size_t i;

    if (r->code < 200 || r->code > 599 || r->nlines < 1 || r->nlines > lim->lines_max)
        fuzz_fail("reply %d with %zu lines", r->code, r->nlines);
    if (r->dsn[0] && (r->dsn[0] != '0' + r->code / 100 || r->dsn[1] != '.'
                      || strncmp(r->lines[0], r->dsn, strlen(r->dsn)) != 0))
        fuzz_fail("enhanced code '%s' for %d", r->dsn, r->code);
    for (i = 0; i < r->nlines; i++) {
        for (const unsigned char *t = (const unsigned char *)r->lines[i]; *t; t++)
            if (*t < 32 || *t == 127)
                fuzz_fail("control character in a reply line");
        if (strlen(r->lines[i]) > SMTPREPLY_LINE_MAX - 6)
            fits = false;
    }
    if (fits) {
        buf_t *b = buf_new(0), *d1 = buf_new(0), *d2 = buf_new(0);
        smtpreply_parser_t *p = smtpreply_parser_new(NULL);
        const struct smtpreply *again = NULL;
        size_t used;

        smtpreply_format(b, r->code, NULL, r->lines, r->nlines);
        describe(d1, r);
        if (smtpreply_parse(p, b->data, b->len, &used, &again, NULL) != SMTPREPLY_DONE
            || used != b->len)
            fuzz_fail("formatted reply does not parse back");
        describe(d2, again);
        if (strcmp(buf_cstr(d1), buf_cstr(d2)) != 0)
            fuzz_fail("formatted reply parses to '%s', not '%s'", buf_cstr(d2), buf_cstr(d1));
        smtpreply_parser_free(&p);
        buf_free(&b);
        buf_free(&d1);
        buf_free(&d2);
    }
    check_ehlo(r);
}

/* Parse w in chunks (0: all at once), describing what comes out. */
static void parse(const char *w, size_t n, unsigned seed, bool chunked,
                  const struct smtpreply_limits *lim, buf_t *out, bool checks)
{
    smtpreply_parser_t *p = smtpreply_parser_new(lim);
    size_t pos = 0;

    while (pos < n) {
        size_t piece = n - pos, off = 0;

        if (chunked) {
            seed = seed * 1103515245u + 12345u;
            piece = 1 + (seed >> 8) % 97;
            if (piece > n - pos)
                piece = n - pos;
        }
        while (off < piece) {
            const struct smtpreply *r = NULL;
            const char *why = NULL;
            size_t used = (size_t)-1;
            int rc = smtpreply_parse(p, w + pos + off, piece - off, &used, &r, &why);

            if (used > piece - off || (rc == SMTPREPLY_MORE && used != piece - off))
                fuzz_fail("used %zu of %zu (rc %d)", used, piece - off, rc);
            if (rc == SMTPREPLY_ERROR) {
                if (why == NULL)
                    fuzz_fail("error without a reason");
                buf_printf(out, "ERR %s", why);
                if (smtpreply_parse(p, "250 x\r\n", 7, &used, NULL, NULL) != SMTPREPLY_ERROR)
                    fuzz_fail("error not sticky");
                smtpreply_parser_free(&p);
                return;
            }
            if (rc == SMTPREPLY_DONE) {
                if (r == NULL || used == 0)
                    fuzz_fail("DONE without a reply");
                if (checks)
                    check_reply(r, lim);
                describe(out, r);
            } else if (r != NULL)
                fuzz_fail("a reply with MORE");
            off += used;
        }
        pos += piece;
    }
    smtpreply_parser_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtpreply_limits lim = SMTPREPLY_LIMITS_DEFAULT;
    buf_t *whole, *chunks, *want;
    const char *w;
    size_t n;

    if (size < 2)
        return 0;
    if (data[1] != 0) {
        lim.line_max = 5 + (data[1] & 0x1fu) * 9;
        lim.lines_max = 1 + ((data[1] >> 5) & 3u) * 3;
        lim.size_max = lim.line_max * (1 + (data[1] >> 7) * 4);
    }
    w = (const char *)data + 2;
    n = size - 2;
    whole = buf_new(0);
    chunks = buf_new(0);
    want = buf_new(0);
    model(w, n, &lim, want);
    parse(w, n, data[0], false, &lim, whole, true);
    parse(w, n, data[0], true, &lim, chunks, false);
    if (strcmp(buf_cstr(whole), buf_cstr(want)) != 0)
        fuzz_fail("parser '%s', model '%s'", buf_cstr(whole), buf_cstr(want));
    if (strcmp(buf_cstr(chunks), buf_cstr(whole)) != 0)
        fuzz_fail("chunked '%s', whole '%s'", buf_cstr(chunks), buf_cstr(whole));
    buf_free(&whole);
    buf_free(&chunks);
    buf_free(&want);
    return 0;
}
