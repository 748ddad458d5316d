/*
 * imapmime - the MIME structure of a message for IMAP (see imapmime.h).
 *
 * One file for what imapd asks of a message, in this order: helpers;
 * header fields; the RFC 822 lexer and MIME field parsers (Content-Type
 * parameters with RFC 2231); the structure parser; IMAP strings, the
 * address parser, ENVELOPE and BODYSTRUCTURE; sections; transfer
 * decoding and BINARY; charsets, RFC 2047 and the SEARCH text.  It is
 * over the usual size because these share the header and lexer code and
 * the tree's rules (which part a number names, what is text), and imapd
 * sees them as one interface.
 *
 * The parser reads the message once, line by line, forward only, with a
 * stack of the live boundaries, recursing once per nesting level (at most
 * MIME_DEPTH_MAX).  It counts the LFs it passes, so a part's line count
 * is a subtraction, and it skips to the end with one count when no
 * boundary is live.
 */
#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "imapmime.h"
#include "xalloc.h"

/* ------------------------------------------------------------------ */
/* Helpers */

static bool is_wsp(int c)
{
    return c == ' ' || c == '\t';
}

static bool eq_ci(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static size_t count_lf(const char *s, size_t n)
{
    size_t c = 0;
    const char *end = s + n, *nl;

    while (s < end && (nl = memchr(s, '\n', (size_t)(end - s))) != NULL) {
        c++;
        s = nl + 1;
    }
    return c;
}

/* Just past the LF that ends the line at pos, or len. */
static size_t line_next(const char *msg, size_t len, size_t pos)
{
    const char *nl = memchr(msg + pos, '\n', len - pos);

    return nl ? (size_t)(nl - msg) + 1 : len;
}

/* Octets of the empty line at msg[pos, next): 1 (LF), 2 (CRLF), else 0. */
static size_t blank_line(const char *msg, size_t pos, size_t next)
{
    if (next - pos == 1 && msg[pos] == '\n')
        return 1;
    if (next - pos == 2 && msg[pos] == '\r' && msg[pos + 1] == '\n')
        return 2;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Header fields */

struct hfield {
    const char *name;       /* trailing blanks dropped */
    size_t name_len;
    const char *value;      /* after the colon, folding included, the last line end not */
    size_t value_len;
    const char *raw;        /* the whole field, line ends included */
    size_t raw_len;
    bool colon;
};

/* The fields of a part's header: [off, end) without the empty line. */
struct hiter {
    const char *msg;
    size_t pos, end;
};

static void hiter_init(struct hiter *it, const mime_part_t *part, const char *msg)
{
    it->msg = msg;
    it->pos = part->hdr_off;
    it->end = part->hdr_off + part->hdr_len - part->hdr_blank;
}

static bool hiter_next(struct hiter *it, struct hfield *f)
{
    const char *m = it->msg;
    size_t start = it->pos, q = start, vend, i;

    if (start >= it->end)
        return false;
    do {
        q = line_next(m, it->end, q);
    } while (q < it->end && is_wsp(m[q]));
    f->raw = m + start;
    f->raw_len = q - start;
    vend = q;
    if (vend > start && m[vend - 1] == '\n') {
        vend--;
        if (vend > start && m[vend - 1] == '\r')
            vend--;
    }
    for (i = start; i < vend && m[i] != ':' && m[i] != '\n'; i++)
        ;
    f->colon = i < vend && m[i] == ':';
    f->name = m + start;
    f->name_len = i - start;
    while (f->name_len > 0 && is_wsp(f->name[f->name_len - 1]))
        f->name_len--;
    f->value = f->colon ? m + i + 1 : m + vend;
    f->value_len = f->colon ? vend - i - 1 : 0;
    it->pos = q;
    return true;
}

static bool hfield_is(const struct hfield *f, const char *name)
{
    return f->colon && eq_ci(f->name, f->name_len, name);
}

/* A field value unfolded: each LF and the CR before it dropped (a bare CR
 * stays), a NUL made U+FFFD (so the result is a C string), leading blanks
 * skipped.  Fresh; *lenp its length. */
static char *unfold(const char *v, size_t n, size_t *lenp)
{
    size_t k = 0, i = 0, nul = 0;
    char *s;

    for (const char *z = v; (z = memchr(z, '\0', n - (size_t)(z - v))) != NULL; z++)
        nul++;
    s = xmalloc(n + 2 * nul + 1);
    while (i < n && (is_wsp(v[i]) || v[i] == '\r' || v[i] == '\n'))
        i++;
    for (; i < n; i++) {
        if (v[i] == '\n' || (v[i] == '\r' && i + 1 < n && v[i + 1] == '\n'))
            continue;
        if (v[i] == '\0') {
            memcpy(s + k, "\xef\xbf\xbd", 3);
            k += 3;
        } else {
            s[k++] = v[i];
        }
    }
    s[k] = '\0';
    if (lenp)
        *lenp = k;
    return s;
}

/* ------------------------------------------------------------------ */
/* RFC 822 lexing for the structured fields (on unfolded values) */

struct lex {
    const char *s;
    size_t n, i;
};

/* Skip a comment at l->i ('('), nested, quoted pairs; text into com if not NULL. */
static void lex_comment(struct lex *l, buf_t *com)
{
    size_t depth = 0;

    if (com)
        buf_reset(com);
    for (; l->i < l->n; l->i++) {
        char c = l->s[l->i];

        if (c == '\\' && l->i + 1 < l->n) {
            l->i++;
            if (com)
                buf_putc(com, l->s[l->i]);
            continue;
        }
        if (c == '(') {
            if (depth++ == 0)
                continue;
        } else if (c == ')') {
            if (--depth == 0) {
                l->i++;
                return;
            }
        }
        if (com)
            buf_putc(com, c);
    }
}

/* Skip blanks and comments; the last comment's text goes to com (if not
 * NULL) and *had is set. */
static void lex_cfws(struct lex *l, buf_t *com, bool *had)
{
    while (l->i < l->n) {
        char c = l->s[l->i];

        if (is_wsp(c) || c == '\r' || c == '\n') {
            l->i++;
        } else if (c == '(') {
            lex_comment(l, com);
            if (had)
                *had = true;
        } else {
            break;
        }
    }
}

/* A quoted string at l->i ('"'), unescaped into out (may be NULL). */
static void lex_quoted(struct lex *l, buf_t *out)
{
    for (l->i++; l->i < l->n; l->i++) {
        char c = l->s[l->i];

        if (c == '"') {
            l->i++;
            return;
        }
        if (c == '\\' && l->i + 1 < l->n)
            c = l->s[++l->i];
        if (out)
            buf_putc(out, c);
    }
}

/* MIME token (RFC 2045 5.1), 8-bit octets allowed. */
static bool mime_token_char(unsigned char c)
{
    return c > 0x20 && c != 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

static size_t lex_token(struct lex *l)
{
    size_t start = l->i;

    while (l->i < l->n && mime_token_char((unsigned char)l->s[l->i]))
        l->i++;
    return l->i - start;
}

/* ------------------------------------------------------------------ */
/* MIME fields: parameters (RFC 2045 5.1, RFC 2231) */

struct plist {
    struct mime_param *v;
    size_t n, cap;
};

static void plist_add(struct plist *pl, char *name, char *value)
{
    if (pl->n == pl->cap) {
        pl->cap = pl->cap ? pl->cap * 2 : 4;
        pl->v = xreallocarray(pl->v, pl->cap, sizeof(*pl->v));
    }
    pl->v[pl->n].name = name;
    pl->v[pl->n].value = value;
    pl->n++;
}

static void params_free(struct mime_param *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].value);
    }
    free(v);
}

/* A parameter named name*N, name*N* or name* (RFC 2231 3 and 4). */
struct p2231 {
    size_t base_len;        /* of name */
    unsigned long idx;
    bool extended;
    size_t order;           /* in the field, for a stable sort */
    struct mime_param *p;
};

static int p2231_cmp(const void *a, const void *b)
{
    const struct p2231 *x = a, *y = b;
    size_t n = x->base_len < y->base_len ? x->base_len : y->base_len;
    int c = memcmp(x->p->name, y->p->name, n);

    if (c == 0 && x->base_len != y->base_len)
        c = x->base_len < y->base_len ? -1 : 1;
    if (c == 0 && x->idx != y->idx)
        c = x->idx < y->idx ? -1 : 1;
    if (c == 0 && x->order != y->order)
        c = x->order < y->order ? -1 : 1;
    return c;
}

/* Is name an RFC 2231 section name?  Fills r. */
static bool p2231_name(const char *name, struct p2231 *r)
{
    const char *star = strchr(name, '*'), *q;

    if (star == NULL || star == name)
        return false;
    r->base_len = (size_t)(star - name);
    r->idx = 0;
    r->extended = false;
    q = star + 1;
    if (*q == '\0') {
        r->extended = true;
        return true;
    }
    for (; *q >= '0' && *q <= '9'; q++)
        r->idx = r->idx > 100000000UL ? r->idx : r->idx * 10 + (unsigned long)(*q - '0');
    if (*q == '*') {
        r->extended = true;
        q++;
    }
    return *q == '\0';
}

/* Join RFC 2231 continuations the way Dovecot does (imapmime.h). */
static void params_2231(struct plist *pl)
{
    struct p2231 *s = NULL;
    struct plist out = { 0 };
    size_t ns = 0, i, j;

    for (i = 0; i < pl->n; i++) {
        struct p2231 r;

        if (p2231_name(pl->v[i].name, &r))
            ns++;
    }
    if (ns == 0)
        return;
    s = xreallocarray(NULL, ns, sizeof(*s));
    ns = 0;
    for (i = 0; i < pl->n; i++) {
        struct p2231 r;

        if (p2231_name(pl->v[i].name, &r)) {
            r.order = i;
            r.p = &pl->v[i];
            s[ns++] = r;
        } else {
            plist_add(&out, pl->v[i].name, pl->v[i].value);
        }
    }
    qsort(s, ns, sizeof(*s), p2231_cmp);
    for (i = 0; i < ns; i = j) {
        bool ok = true, ext = false;
        unsigned long want = 0;

        for (j = i; j < ns && s[j].base_len == s[i].base_len
                    && strncasecmp(s[j].p->name, s[i].p->name, s[i].base_len) == 0; j++) {
            if (s[j].idx != want++)
                ok = false;
            if (s[j].extended)
                ext = true;
        }
        if (!ok) {
            for (size_t k = i; k < j; k++) {
                char *nm = xasprintf(s[k].extended ? "%.*s*%lu*" : "%.*s*%lu",
                                     (int)s[k].base_len, s[k].p->name, s[k].idx);

                plist_add(&out, nm, s[k].p->value);
                free(s[k].p->name);
            }
            continue;
        }
        buf_t *v = buf_new(0);

        if (ext && !s[i].extended)
            buf_append_str(v, "''");
        for (size_t k = i; k < j; k++) {
            const char *t = s[k].p->value;

            if (ext && !s[k].extended) {
                for (; *t; t++) {
                    if (*t == '%')
                        buf_append_str(v, "%25");
                    else
                        buf_putc(v, *t);
                }
            } else {
                buf_append_str(v, t);
            }
        }
        plist_add(&out, xasprintf("%.*s%s", (int)s[i].base_len, s[i].p->name, ext ? "*" : ""),
                  buf_steal(v, NULL));
        buf_free(&v);
        for (size_t k = i; k < j; k++) {
            free(s[k].p->name);
            free(s[k].p->value);
        }
    }
    free(s);
    free(pl->v);
    *pl = out;
}

/* *(";" attribute "=" value) from l->i, tolerantly: what does not parse
 * is skipped up to the next ';'. */
static void parse_params(struct lex *l, struct mime_param **vp, size_t *np)
{
    struct plist pl = { 0 };
    buf_t *val = buf_new(0);

    for (;;) {
        size_t name_at, name_len;

        lex_cfws(l, NULL, NULL);
        if (l->i >= l->n)
            break;
        if (l->s[l->i] != ';') {
            while (l->i < l->n && l->s[l->i] != ';')
                l->i++;
            continue;
        }
        l->i++;
        lex_cfws(l, NULL, NULL);
        name_at = l->i;
        name_len = lex_token(l);
        if (name_len == 0)
            continue;
        lex_cfws(l, NULL, NULL);
        if (l->i >= l->n || l->s[l->i] != '=')
            continue;
        l->i++;
        lex_cfws(l, NULL, NULL);
        buf_reset(val);
        if (l->i < l->n && l->s[l->i] == '"') {
            lex_quoted(l, val);
        } else {
            size_t st = l->i;

            while (l->i < l->n && l->s[l->i] != ';' && l->s[l->i] != '(' && l->s[l->i] != '"'
                   && (unsigned char)l->s[l->i] > 0x20)
                l->i++;
            buf_append(val, l->s + st, l->i - st);
        }
        plist_add(&pl, xstrndup(l->s + name_at, name_len), xstrdup(buf_cstr(val)));
    }
    buf_free(&val);
    params_2231(&pl);
    *vp = pl.v;
    *np = pl.n;
}

static void parse_content_type(mime_part_t *part, const char *v, size_t n)
{
    struct lex l = { v, n, 0 };
    size_t t_at, t_len, s_at, s_len;

    lex_cfws(&l, NULL, NULL);
    t_at = l.i;
    t_len = lex_token(&l);
    lex_cfws(&l, NULL, NULL);
    if (t_len == 0 || l.i >= n || v[l.i] != '/')
        return;
    l.i++;
    lex_cfws(&l, NULL, NULL);
    s_at = l.i;
    s_len = lex_token(&l);
    if (s_len == 0)
        return;
    part->type = xstrndup(v + t_at, t_len);
    part->subtype = xstrndup(v + s_at, s_len);
    parse_params(&l, &part->params, &part->nparams);
}

static void parse_disposition(mime_part_t *part, const char *v, size_t n)
{
    struct lex l = { v, n, 0 };
    size_t at, len;

    lex_cfws(&l, NULL, NULL);
    at = l.i;
    len = lex_token(&l);
    if (len == 0)
        return;
    part->disposition = xstrndup(v + at, len);
    parse_params(&l, &part->disp_params, &part->ndisp_params);
}

/* 1#Language-tag (RFC 3282), as atoms separated by commas. */
static void parse_language(mime_part_t *part, const char *v, size_t n)
{
    struct lex l = { v, n, 0 };
    size_t cap = 0;

    for (;;) {
        size_t at, len;

        lex_cfws(&l, NULL, NULL);
        at = l.i;
        len = lex_token(&l);
        if (len == 0)
            break;
        if (part->nlanguage == cap) {
            cap = cap ? cap * 2 : 2;
            part->language = xreallocarray(part->language, cap, sizeof(char *));
        }
        part->language[part->nlanguage++] = xstrndup(v + at, len);
        lex_cfws(&l, NULL, NULL);
        if (l.i >= n || v[l.i] != ',')
            break;
        l.i++;
    }
}

static char *parse_token_field(const char *v, size_t n)
{
    struct lex l = { v, n, 0 };
    size_t at, len;

    lex_cfws(&l, NULL, NULL);
    at = l.i;
    len = lex_token(&l);
    return len ? xstrndup(v + at, len) : NULL;
}

/* The Content-* fields of part's header (the first of each counts). */
static void part_read_fields(mime_part_t *part, const char *msg, bool digest_child)
{
    struct hiter it;
    struct hfield f;
    bool ct = false, cte = false, cd = false, cl = false;

    hiter_init(&it, part, msg);
    while (hiter_next(&it, &f)) {
        char *v, **slot = NULL;
        size_t n;

        if (!f.colon || f.name_len < 8 || strncasecmp(f.name, "Content-", 8) != 0)
            continue;
        if (hfield_is(&f, "Content-ID"))
            slot = &part->id;
        else if (hfield_is(&f, "Content-Description"))
            slot = &part->description;
        else if (hfield_is(&f, "Content-MD5"))
            slot = &part->md5;
        else if (hfield_is(&f, "Content-Location"))
            slot = &part->location;
        if (slot) {
            if (*slot == NULL)
                *slot = unfold(f.value, f.value_len, NULL);
            continue;
        }
        v = unfold(f.value, f.value_len, &n);
        if (!ct && hfield_is(&f, "Content-Type")) {
            ct = true;
            parse_content_type(part, v, n);
        } else if (!cte && hfield_is(&f, "Content-Transfer-Encoding")) {
            cte = true;
            part->encoding = parse_token_field(v, n);
        } else if (!cd && hfield_is(&f, "Content-Disposition")) {
            cd = true;
            parse_disposition(part, v, n);
        } else if (!cl && hfield_is(&f, "Content-Language")) {
            cl = true;
            parse_language(part, v, n);
        }
        free(v);
    }
    if (part->type == NULL) {
        part->type = xstrdup(digest_child ? "message" : "text");
        part->subtype = xstrdup(digest_child ? "rfc822" : "plain");
    }
    part->is_text = strcasecmp(part->type, "text") == 0;
}

/* ------------------------------------------------------------------ */
/* The structure parser */

struct bound {
    const char *s;
    size_t len;
};

struct parser {
    const char *msg;
    size_t len;
    size_t pos;             /* start of the next line */
    size_t lf;              /* LFs in msg[0, pos) */
    struct bound *b;        /* live boundaries, innermost last */
    size_t nb, capb;
    size_t nparts;
    bool frozen;            /* MIME_PARTS_MAX reached: no more boundaries */
};

/* What ended a part: a boundary line, or the end of the message (idx -1). */
struct ending {
    long idx;
    bool close;
    size_t at;              /* where the boundary line starts */
    size_t lf;              /* LFs before it */
};

static long bound_match(const struct parser *p, size_t pos, size_t next, bool *close)
{
    const char *l = p->msg + pos;
    size_t n = next - pos, best_len = 0;
    long best = -1;

    if (p->frozen || p->nb == 0 || n < 3 || l[0] != '-' || l[1] != '-')
        return -1;
    for (size_t i = p->nb; i-- > 0;) {
        const struct bound *b = &p->b[i];

        if (b->len > best_len && b->len + 2 <= n && l[2] == b->s[0]
            && memcmp(l + 2, b->s, b->len) == 0) {
            best = (long)i;
            best_len = b->len;
        }
    }
    if (best >= 0)
        *close = best_len + 4 <= n && l[best_len + 2] == '-' && l[best_len + 3] == '-';
    return best;
}

static void advance(struct parser *p, size_t next)
{
    if (next > p->pos && p->msg[next - 1] == '\n')
        p->lf++;
    p->pos = next;
}

static struct ending ending_eof(const struct parser *p)
{
    struct ending e = { -1, false, p->len, p->lf };

    return e;
}

/* Body lines up to the next boundary line (consumed) or the end. */
static struct ending scan_body(struct parser *p)
{
    if (p->frozen || p->nb == 0) {
        p->lf += count_lf(p->msg + p->pos, p->len - p->pos);
        p->pos = p->len;
        return ending_eof(p);
    }
    while (p->pos < p->len) {
        size_t next = line_next(p->msg, p->len, p->pos);
        bool close = false;
        long i = bound_match(p, p->pos, next, &close);

        if (i >= 0) {
            struct ending e = { i, close, p->pos, p->lf };

            advance(p, next);
            return e;
        }
        advance(p, next);
    }
    return ending_eof(p);
}

/* Where content before a boundary line at `at` ends: before the line end
 * that precedes it (RFC 2046 5.1.1: it belongs to the delimiter), not
 * before floor.  *lf: LFs before `at`, made LFs before the result. */
static size_t cut_before(const struct parser *p, size_t at, size_t floor, size_t *lf)
{
    size_t e = at;

    if (e > floor && p->msg[e - 1] == '\n') {
        e--;
        (*lf)--;
        if (e > floor && p->msg[e - 1] == '\r')
            e--;
    }
    return e;
}

/* Read part's header from p->pos.  True when an empty line ended it; false
 * when a boundary line or the end did (*e says which; the body is empty). */
static bool read_header(struct parser *p, mime_part_t *part, struct ending *e)
{
    part->hdr_off = p->pos;
    while (p->pos < p->len) {
        size_t next = line_next(p->msg, p->len, p->pos), blank;
        bool close = false;
        long i = bound_match(p, p->pos, next, &close);

        if (i >= 0) {
            size_t lf = p->lf, end;

            e->idx = i;
            e->close = close;
            e->at = p->pos;
            e->lf = p->lf;
            end = cut_before(p, p->pos, part->hdr_off, &lf);
            part->hdr_len = end - part->hdr_off;
            part->body_off = end;
            part->lf_body = lf;
            advance(p, next);
            return false;
        }
        blank = blank_line(p->msg, p->pos, next);
        advance(p, next);
        if (blank) {
            part->hdr_len = p->pos - part->hdr_off;
            part->hdr_blank = blank;
            part->body_off = p->pos;
            part->lf_body = p->lf;
            return true;
        }
    }
    part->hdr_len = p->len - part->hdr_off;
    part->body_off = p->len;
    part->lf_body = p->lf;
    *e = ending_eof(p);
    return false;
}

/* part ends at e: its body's size and lines.  The line end before the
 * boundary line is not the body's, down to floor (where what the part
 * must keep ends).  A body that the boundary follows at once gives up
 * the header's empty line to it (Dovecot). */
static void set_end_floor(const struct parser *p, mime_part_t *part, const struct ending *e,
                          size_t floor)
{
    size_t lf = e->lf, end;

    if (e->idx < 0) {
        end = p->len;
    } else {
        end = cut_before(p, e->at, floor, &lf);
        if (end < part->body_off) {
            part->hdr_len = end - part->hdr_off;
            part->hdr_blank = 0;
            part->body_off = end;
            part->lf_body = lf;
            if (part->message) {
                part->message->hdr_off = part->message->body_off = end;
                part->message->lf_body = lf;
            }
        }
    }
    part->body_len = end - part->body_off;
    part->body_lines = lf - part->lf_body;
}

static void set_end(const struct parser *p, mime_part_t *part, const struct ending *e)
{
    set_end_floor(p, part, e, part->hdr_off + part->hdr_len - part->hdr_blank);
}

/* A multipart or message not followed: a text/plain leaf. */
static void make_opaque(mime_part_t *part)
{
    free(part->type);
    free(part->subtype);
    part->type = xstrdup("text");
    part->subtype = xstrdup("plain");
    params_free(part->params, part->nparams);
    part->params = NULL;
    part->nparams = 0;
    part->is_text = true;
    part->opaque = true;
}

static mime_part_t *part_new(struct parser *p, mime_part_t *parent)
{
    mime_part_t *part = xcalloc(1, sizeof(*part));

    p->nparts++;
    part->parent = parent;
    part->depth = parent ? parent->depth + 1 : 0;
    part->hdr_off = part->body_off = p->pos;
    part->lf_body = p->lf;
    return part;
}

/* The rest of the message goes to the last leaf under part: every part on
 * the way down runs to the end (p is at the end already). */
static void extend_to_end(const struct parser *p, mime_part_t *part)
{
    while (part) {
        part->body_len = p->len - part->body_off;
        part->body_lines = p->lf - part->lf_body;
        part = part->message ? part->message
             : part->nchildren ? part->children[part->nchildren - 1] : NULL;
    }
}

static void freeze(struct parser *p)
{
    p->frozen = true;
    p->lf += count_lf(p->msg + p->pos, p->len - p->pos);
    p->pos = p->len;
}

static struct ending parse_part(struct parser *p, mime_part_t *part, bool digest_child);

/* The parameter called name, or failing that its RFC 2231 extended form
 * name*="charset'lang'%XX..." percent-decoded (the charset dropped: for
 * boundary and charset, which are ASCII).  Fresh, or NULL. */
static char *param_value(const mime_part_t *part, const char *name)
{
    const char *v = mime_param(part, name), *q;
    size_t n = strlen(name);
    buf_t *b;

    if (v)
        return xstrdup(v);
    for (size_t i = 0; i < part->nparams && v == NULL; i++)
        if (strncasecmp(part->params[i].name, name, n) == 0
            && strcmp(part->params[i].name + n, "*") == 0)
            v = part->params[i].value;
    if (v == NULL || (q = strchr(v, '\'')) == NULL || (q = strchr(q + 1, '\'')) == NULL)
        return NULL;
    b = buf_new(0);
    for (q++; *q; q++) {
        int h, l;

        if (*q == '%' && (h = hexval((unsigned char)q[1])) >= 0
            && (l = hexval((unsigned char)q[2])) >= 0) {
            buf_putc(b, h << 4 | l);
            q += 2;
        } else {
            buf_putc(b, *q);
        }
    }
    v = buf_steal(b, NULL);
    buf_free(&b);
    return (char *)v;
}

static struct ending parse_multipart(struct parser *p, mime_part_t *part, const char *boundary)
{
    size_t mine = p->nb, cap = 0, floor = part->hdr_off + part->hdr_len - part->hdr_blank;
    bool digest = strcasecmp(part->subtype, "digest") == 0;
    struct ending e;

    if (p->nb == p->capb) {
        p->capb = p->capb ? p->capb * 2 : 8;
        p->b = xreallocarray(p->b, p->capb, sizeof(*p->b));
    }
    p->b[p->nb].s = boundary;
    p->b[p->nb].len = strlen(boundary);
    p->nb++;
    e = scan_body(p);                       /* the preamble */
    while (e.idx == (long)mine && !e.close) {
        mime_part_t *child;

        if (p->nparts >= MIME_PARTS_MAX) {
            freeze(p);
            e = ending_eof(p);
            if (part->nchildren)
                extend_to_end(p, part->children[part->nchildren - 1]);
            break;
        }
        child = part_new(p, part);
        if (part->nchildren == cap) {
            cap = cap ? cap * 2 : 4;
            part->children = xreallocarray(part->children, cap, sizeof(*part->children));
        }
        part->children[part->nchildren++] = child;
        e = parse_part(p, child, digest);
    }
    p->nb = mine;
    if (part->nchildren) {
        /* not below the end of the last part, which may keep its line end */
        const mime_part_t *last = part->children[part->nchildren - 1];

        floor = last->body_off + last->body_len;
    }
    if (e.idx == (long)mine) {
        /* closed: the epilogue.  The closing line keeps its line end when
         * a boundary follows at once (Dovecot). */
        floor = p->pos;
        e = scan_body(p);
    }
    set_end_floor(p, part, &e, floor);
    if (part->nchildren == 0)
        make_opaque(part);
    return e;
}

static struct ending parse_part(struct parser *p, mime_part_t *part, bool digest_child)
{
    struct ending e;
    bool body = read_header(p, part, &e);
    char *boundary = NULL;
    bool multipart, message;

    part_read_fields(part, p->msg, digest_child);
    multipart = strcasecmp(part->type, "multipart") == 0;
    message = mime_type_is(part, "message", "rfc822") || mime_type_is(part, "message", "global");
    if (multipart) {
        boundary = param_value(part, "boundary");
        if (boundary && (boundary[0] == '\0' || strlen(boundary) > MIME_BOUNDARY_MAX))
            xfree(&boundary);
    }
    if ((multipart || message) && part->depth >= MIME_DEPTH_MAX)
        multipart = message = false, make_opaque(part);
    if (multipart && (boundary == NULL || !body))
        multipart = false, make_opaque(part);
    if (message && p->nparts >= MIME_PARTS_MAX) {
        message = false;
        make_opaque(part);
        freeze(p);
        e = ending_eof(p);
        body = false;
    }
    if (multipart) {
        e = parse_multipart(p, part, boundary);
        free(boundary);
        return e;
    }
    free(boundary);
    if (message) {
        part->message = part_new(p, part);
        if (body) {
            const mime_part_t *m;

            e = parse_part(p, part->message, false);
            m = part->message;
            if (m->body_off + m->body_len == m->hdr_off)
                set_end(p, part, &e);           /* an empty message, like an empty body */
            else
                set_end_floor(p, part, &e, m->body_off + m->body_len);
        } else {
            /* no body: an empty message where it would start */
            part->message->hdr_off = part->message->body_off = part->body_off;
            part->message->lf_body = part->lf_body;
            part_read_fields(part->message, p->msg, false);
            set_end(p, part, &e);
        }
        return e;
    }
    if (body)
        e = scan_body(p);
    set_end(p, part, &e);
    return e;
}

mime_part_t *mime_parse(const char *msg, size_t len)
{
    struct parser p = { 0 };
    mime_part_t *root;

    p.msg = msg ? msg : "";
    p.len = msg ? len : 0;
    root = part_new(&p, NULL);
    parse_part(&p, root, false);
    free(p.b);
    return root;
}

void mime_free(mime_part_t **pp)
{
    mime_part_t *part = *pp;

    if (part == NULL)
        return;
    for (size_t i = 0; i < part->nchildren; i++)
        mime_free(&part->children[i]);
    free(part->children);
    mime_free(&part->message);
    free(part->type);
    free(part->subtype);
    params_free(part->params, part->nparams);
    params_free(part->disp_params, part->ndisp_params);
    free(part->encoding);
    free(part->id);
    free(part->description);
    free(part->md5);
    free(part->location);
    free(part->disposition);
    for (size_t i = 0; i < part->nlanguage; i++)
        free(part->language[i]);
    free(part->language);
    free(part);
    *pp = NULL;
}

bool mime_type_is(const mime_part_t *part, const char *type, const char *subtype)
{
    return strcasecmp(part->type, type) == 0
           && (subtype == NULL || strcasecmp(part->subtype, subtype) == 0);
}

const char *mime_param(const mime_part_t *part, const char *name)
{
    for (size_t i = 0; i < part->nparams; i++)
        if (strcasecmp(part->params[i].name, name) == 0)
            return part->params[i].value;
    return NULL;
}

/* ------------------------------------------------------------------ */
/* IMAP strings */

/* The length of the valid UTF-8 sequence at s[0, n), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len;
    unsigned long cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        cp = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        cp = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
        || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

static bool utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;

    for (size_t i = 0, k; i < n; i += k)
        if ((k = utf8_seq(u + i, n - i)) == 0)
            return false;
    return true;
}

/* s[0, n) as an IMAP string: quoted when it can be, else a literal. */
static void put_string(buf_t *out, const char *s, size_t n, bool utf8)
{
    bool lit = n > MIME_QUOTED_MAX, high = false;

    for (size_t i = 0; i < n && !lit; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '\r' || c == '\n' || c == '\0')
            lit = true;
        else if (c >= 0x80)
            high = true;
    }
    if (!lit && high)
        lit = !utf8 || !utf8_valid(s, n);
    if (lit) {
        buf_printf(out, "{%zu}\r\n", n);
        for (size_t i = 0; i < n; i++)
            buf_putc(out, s[i] ? s[i] : (char)0x80);
        return;
    }
    buf_putc(out, '"');
    for (size_t i = 0, run = 0; i <= n; i++) {
        if (i == n || s[i] == '"' || s[i] == '\\') {
            buf_append(out, s + run, i - run);
            if (i < n)
                buf_putc(out, '\\');
            run = i;
        }
    }
    buf_putc(out, '"');
}

static void put_nstring(buf_t *out, const char *s, bool utf8)
{
    if (s == NULL)
        buf_append_str(out, "NIL");
    else
        put_string(out, s, strlen(s), utf8);
}

/* Text for people (subject, names): blanks and line ends collapsed to one
 * space, none at the ends; RFC 2047 decoded first in UTF-8 mode. */
static void put_human(buf_t *out, const char *s, size_t n, bool utf8)
{
    buf_t *t = buf_new(0), *d = NULL;
    bool sp = false;

    if (utf8) {
        d = buf_new(0);
        rfc2047_decode(d, s, n);
        s = d->data;
        n = d->len;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (is_wsp(c) || c == '\r' || c == '\n') {
            sp = t->len > 0;
            continue;
        }
        if (sp)
            buf_putc(t, ' ');
        sp = false;
        buf_putc(t, c);
    }
    put_string(out, t->data, t->len, utf8);
    buf_free(&t);
    buf_free(&d);
}

/* ------------------------------------------------------------------ */
/* Addresses (RFC 5322 3.4, 4.4) */

struct addr {
    char *name, *adl, *mailbox, *host;      /* NULL: NIL */
};

struct alist {
    struct addr *v;
    size_t n, cap;
};

static void alist_add(struct alist *al, char *name, char *adl, char *mailbox, char *host)
{
    if (al->n == al->cap) {
        al->cap = al->cap ? al->cap * 2 : 4;
        al->v = xreallocarray(al->v, al->cap, sizeof(*al->v));
    }
    al->v[al->n].name = name;
    al->v[al->n].adl = adl;
    al->v[al->n].mailbox = mailbox;
    al->v[al->n].host = host;
    al->n++;
}

static void alist_free(struct alist *al)
{
    for (size_t i = 0; i < al->n; i++) {
        free(al->v[i].name);
        free(al->v[i].adl);
        free(al->v[i].mailbox);
        free(al->v[i].host);
    }
    free(al->v);
    al->v = NULL;
    al->n = al->cap = 0;
}

/* An atom character of a phrase or a dot-atom ('.' included). */
static bool atom_char(unsigned char c)
{
    return c > 0x20 && c != 0x7f && strchr("()<>[]:;@\\,\"", c) == NULL;
}

struct aparse {
    struct lex l;
    buf_t *comment;         /* the last comment's text */
    bool had_comment;
    buf_t *phrase;          /* words joined by spaces */
    buf_t *joined;          /* words joined by nothing */
    size_t nwords;
};

static void ap_cfws(struct aparse *a)
{
    lex_cfws(&a->l, a->comment, &a->had_comment);
}

/* Words (atoms with dots, quoted strings) from here. */
static void ap_words(struct aparse *a)
{
    buf_reset(a->phrase);
    buf_reset(a->joined);
    a->nwords = 0;
    for (;;) {
        size_t st;

        ap_cfws(a);
        if (a->l.i >= a->l.n)
            return;
        st = a->phrase->len;
        if (a->nwords)
            buf_putc(a->phrase, ' ');
        if (a->l.s[a->l.i] == '"') {
            size_t q = a->phrase->len;

            lex_quoted(&a->l, a->phrase);
            buf_append(a->joined, a->phrase->data + q, a->phrase->len - q);
        } else if (atom_char((unsigned char)a->l.s[a->l.i])) {
            size_t at = a->l.i;

            while (a->l.i < a->l.n && atom_char((unsigned char)a->l.s[a->l.i]))
                a->l.i++;
            buf_append(a->phrase, a->l.s + at, a->l.i - at);
            buf_append(a->joined, a->l.s + at, a->l.i - at);
        } else {
            buf_truncate(a->phrase, st);
            return;
        }
        a->nwords++;
    }
}

static char *ap_take(buf_t *b, const char *missing)
{
    return b->len ? xstrndup(b->data, b->len) : xstrdup(missing);
}

/* domain: a dot-atom (obsolete forms with CFWS around the dots) or a literal. */
static char *ap_domain(struct aparse *a)
{
    buf_t *d;
    char *r;

    ap_cfws(a);
    if (a->l.i < a->l.n && a->l.s[a->l.i] == '[') {
        size_t at = a->l.i;

        while (a->l.i < a->l.n && a->l.s[a->l.i] != ']')
            a->l.i += a->l.s[a->l.i] == '\\' && a->l.i + 1 < a->l.n ? 2 : 1;
        if (a->l.i < a->l.n)
            a->l.i++;
        return xstrndup(a->l.s + at, a->l.i - at);
    }
    d = buf_new(0);
    for (;;) {
        size_t at = a->l.i, back;

        while (a->l.i < a->l.n && atom_char((unsigned char)a->l.s[a->l.i]))
            a->l.i++;
        buf_append(d, a->l.s + at, a->l.i - at);
        back = a->l.i;
        ap_cfws(a);
        if (a->l.i < a->l.n && d->len && (d->data[d->len - 1] == '.' || a->l.s[a->l.i] == '.')
            && atom_char((unsigned char)a->l.s[a->l.i]))
            continue;
        a->l.i = back;
        break;
    }
    ap_cfws(a);
    r = ap_take(d, "MISSING_DOMAIN");
    buf_free(&d);
    return r;
}

/* Skip what is left of an address: up to ',' (or ';' in a group). */
static void ap_skip_rest(struct aparse *a, bool in_group)
{
    while (a->l.i < a->l.n) {
        char c = a->l.s[a->l.i];

        if (c == '"')
            lex_quoted(&a->l, NULL);
        else if (c == '(')
            lex_comment(&a->l, NULL);
        else if (c == ',' || (c == ';' && in_group))
            return;
        else
            a->l.i++;
    }
}

/* <[route:]addr-spec> at '<'. */
static void ap_angle(struct aparse *a, struct alist *out, char *name)
{
    char *adl = NULL, *mailbox, *host;

    a->l.i++;
    ap_cfws(a);
    if (a->l.i < a->l.n && a->l.s[a->l.i] == '@') {
        buf_t *r = buf_new(0);

        while (a->l.i < a->l.n && a->l.s[a->l.i] != ':' && a->l.s[a->l.i] != '>') {
            char c = a->l.s[a->l.i];

            if (c == '(') {
                lex_comment(&a->l, NULL);
                continue;
            }
            if (!is_wsp(c))
                buf_putc(r, c);
            a->l.i++;
        }
        if (a->l.i < a->l.n && a->l.s[a->l.i] == ':')
            a->l.i++;
        adl = buf_steal(r, NULL);
        buf_free(&r);
    }
    ap_words(a);
    mailbox = ap_take(a->joined, "MISSING_MAILBOX");
    ap_cfws(a);
    if (a->l.i < a->l.n && a->l.s[a->l.i] == '@') {
        a->l.i++;
        host = ap_domain(a);
    } else {
        host = xstrdup("MISSING_DOMAIN");
    }
    ap_cfws(a);
    if (a->l.i < a->l.n && a->l.s[a->l.i] == '>')
        a->l.i++;
    alist_add(out, name, adl, mailbox, host);
}

/* One address (a mailbox, or outside a group a group) from here. */
static void ap_address(struct aparse *a, struct alist *out, bool in_group)
{
    char c;

    a->had_comment = false;
    ap_words(a);
    ap_cfws(a);
    c = a->l.i < a->l.n ? a->l.s[a->l.i] : '\0';
    if (c == '<') {
        ap_angle(a, out, a->nwords && a->phrase->len ? ap_take(a->phrase, "") : NULL);
    } else if (c == ':' && !in_group) {
        alist_add(out, NULL, NULL, ap_take(a->phrase, ""), NULL);
        a->l.i++;
        for (;;) {
            ap_cfws(a);
            while (a->l.i < a->l.n && a->l.s[a->l.i] == ',') {
                a->l.i++;
                ap_cfws(a);
            }
            if (a->l.i >= a->l.n)
                break;
            if (a->l.s[a->l.i] == ';') {
                a->l.i++;
                break;
            }
            ap_address(a, out, true);
        }
        alist_add(out, NULL, NULL, NULL, NULL);
    } else if (c == '@') {
        char *mailbox = ap_take(a->joined, "MISSING_MAILBOX"), *host;

        a->l.i++;
        host = ap_domain(a);
        ap_cfws(a);
        alist_add(out, a->had_comment && a->comment->len ? ap_take(a->comment, "") : NULL,
                  NULL, mailbox, host);
    } else if (a->nwords > 1) {
        alist_add(out, ap_take(a->phrase, ""), NULL, xstrdup("MISSING_MAILBOX"),
                  xstrdup("MISSING_DOMAIN"));
    } else if (a->nwords == 1) {
        alist_add(out, a->had_comment && a->comment->len ? ap_take(a->comment, "") : NULL,
                  NULL, ap_take(a->joined, "MISSING_MAILBOX"), xstrdup("MISSING_DOMAIN"));
    } else if (a->l.i < a->l.n) {
        a->l.i++;       /* a stray special: skip it */
    }
    ap_skip_rest(a, in_group);
}

static void parse_addresses(const char *v, size_t n, struct alist *out)
{
    struct aparse a = { { v, n, 0 }, buf_new(0), false, buf_new(0), buf_new(0), 0 };

    for (;;) {
        while (a.l.i < a.l.n && (a.l.s[a.l.i] == ',' || is_wsp(a.l.s[a.l.i])))
            a.l.i++;
        ap_cfws(&a);
        if (a.l.i >= a.l.n)
            break;
        if (a.l.s[a.l.i] == ',')
            continue;
        ap_address(&a, out, false);
    }
    buf_free(&a.comment);
    buf_free(&a.phrase);
    buf_free(&a.joined);
}

static void put_addresses(buf_t *out, const struct alist *al, bool utf8)
{
    if (al->n == 0) {
        buf_append_str(out, "NIL");
        return;
    }
    buf_putc(out, '(');
    for (size_t i = 0; i < al->n; i++) {
        const struct addr *ad = &al->v[i];

        buf_putc(out, '(');
        if (ad->name)
            put_human(out, ad->name, strlen(ad->name), utf8);
        else
            buf_append_str(out, "NIL");
        buf_putc(out, ' ');
        put_nstring(out, ad->adl, utf8);
        buf_putc(out, ' ');
        if (ad->mailbox && ad->host == NULL && ad->name == NULL && ad->adl == NULL)
            put_human(out, ad->mailbox, strlen(ad->mailbox), utf8);     /* a group's name */
        else
            put_nstring(out, ad->mailbox, utf8);
        buf_putc(out, ' ');
        put_nstring(out, ad->host, utf8);
        buf_putc(out, ')');
    }
    buf_putc(out, ')');
}

/* ------------------------------------------------------------------ */
/* ENVELOPE and BODYSTRUCTURE */

enum { ENV_DATE, ENV_SUBJECT, ENV_FROM, ENV_SENDER, ENV_REPLY_TO, ENV_TO, ENV_CC, ENV_BCC,
       ENV_IN_REPLY_TO, ENV_MESSAGE_ID, ENV_N };

static const char *const env_names[ENV_N] = {
    "Date", "Subject", "From", "Sender", "Reply-To", "To", "Cc", "Bcc", "In-Reply-To", "Message-ID",
};

void mime_envelope(buf_t *out, const mime_part_t *root, const char *msg, bool utf8)
{
    struct hiter it;
    struct hfield f;
    struct hfield env[ENV_N];
    bool have[ENV_N] = { false };
    struct alist al[ENV_N];

    memset(al, 0, sizeof(al));
    hiter_init(&it, root, msg);
    while (hiter_next(&it, &f)) {
        for (int i = 0; i < ENV_N; i++) {
            if (!hfield_is(&f, env_names[i]))
                continue;
            if (i >= ENV_FROM && i <= ENV_BCC) {
                /* every To: (Cc: ...) counts, as in Dovecot */
                size_t n;
                char *v = unfold(f.value, f.value_len, &n);

                parse_addresses(v, n, &al[i]);
                free(v);
            } else if (!have[i]) {
                env[i] = f;
            }
            have[i] = true;
            break;
        }
    }
    buf_putc(out, '(');
    for (int i = 0; i < ENV_N; i++) {
        if (i)
            buf_putc(out, ' ');
        if (i >= ENV_FROM && i <= ENV_BCC) {
            int k = (i == ENV_SENDER || i == ENV_REPLY_TO) && al[i].n == 0 ? ENV_FROM : i;

            put_addresses(out, &al[k], utf8);
        } else if (!have[i]) {
            buf_append_str(out, "NIL");
        } else {
            size_t n;
            char *v = unfold(env[i].value, env[i].value_len, &n);

            if (i == ENV_SUBJECT)
                put_human(out, v, n, utf8);
            else
                put_string(out, v, n, utf8);
            free(v);
        }
    }
    buf_putc(out, ')');
    for (int i = 0; i < ENV_N; i++)
        alist_free(&al[i]);
}

static void put_params(buf_t *out, const struct mime_param *v, size_t n, bool add_charset)
{
    bool charset = false;

    if (n == 0 && !add_charset) {
        buf_append_str(out, "NIL");
        return;
    }
    buf_putc(out, '(');
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_putc(out, ' ');
        put_nstring(out, v[i].name, false);
        buf_putc(out, ' ');
        put_nstring(out, v[i].value, false);
        if (strcasecmp(v[i].name, "charset") == 0)
            charset = true;
    }
    if (add_charset && !charset)
        buf_append_str(out, n ? " \"charset\" \"us-ascii\"" : "\"charset\" \"us-ascii\"");
    buf_putc(out, ')');
}

/* disposition, language, location: the extension data both forms end with */
static void put_ext_tail(buf_t *out, const mime_part_t *part)
{
    buf_putc(out, ' ');
    if (part->disposition == NULL) {
        buf_append_str(out, "NIL");
    } else {
        buf_putc(out, '(');
        put_nstring(out, part->disposition, false);
        buf_putc(out, ' ');
        put_params(out, part->disp_params, part->ndisp_params, false);
        buf_putc(out, ')');
    }
    buf_putc(out, ' ');
    if (part->nlanguage == 0) {
        buf_append_str(out, "NIL");
    } else {
        buf_putc(out, '(');
        for (size_t i = 0; i < part->nlanguage; i++) {
            if (i)
                buf_putc(out, ' ');
            put_nstring(out, part->language[i], false);
        }
        buf_putc(out, ')');
    }
    buf_putc(out, ' ');
    put_nstring(out, part->location, false);
}

static void put_body(buf_t *out, const mime_part_t *part, const char *msg, bool ext)
{
    buf_putc(out, '(');
    if (part->nchildren) {
        for (size_t i = 0; i < part->nchildren; i++)
            put_body(out, part->children[i], msg, ext);
        buf_putc(out, ' ');
        put_nstring(out, part->subtype, false);
        if (ext) {
            buf_putc(out, ' ');
            put_params(out, part->params, part->nparams, false);
            put_ext_tail(out, part);
        }
        buf_putc(out, ')');
        return;
    }
    bool rfc822 = part->message && mime_type_is(part, "message", "rfc822");

    if (rfc822) {
        buf_append_str(out, "\"message\" \"rfc822\"");
    } else {
        put_nstring(out, part->type, false);
        buf_putc(out, ' ');
        put_nstring(out, part->subtype, false);
    }
    buf_putc(out, ' ');
    put_params(out, part->params, part->nparams, part->is_text);
    buf_putc(out, ' ');
    put_nstring(out, part->id, false);
    buf_putc(out, ' ');
    put_nstring(out, part->description, false);
    buf_putc(out, ' ');
    put_nstring(out, part->encoding ? part->encoding : "7bit", false);
    buf_printf(out, " %zu", part->body_len);
    if (rfc822) {
        buf_putc(out, ' ');
        mime_envelope(out, part->message, msg, false);
        buf_putc(out, ' ');
        put_body(out, part->message, msg, ext);
        buf_printf(out, " %zu", part->body_lines);
    } else if (part->is_text) {
        buf_printf(out, " %zu", part->body_lines);
    }
    if (ext) {
        buf_putc(out, ' ');
        put_nstring(out, part->md5, false);
        put_ext_tail(out, part);
    }
    buf_putc(out, ')');
}

void mime_bodystructure(buf_t *out, const mime_part_t *root, const char *msg, bool extensible)
{
    put_body(out, root, msg, extensible);
}

/* ------------------------------------------------------------------ */
/* Sections (RFC 3501 6.4.5, RFC 9051 6.4.5) */

enum sec_what { SEC_ALL, SEC_HEADER, SEC_FIELDS, SEC_FIELDS_NOT, SEC_TEXT, SEC_MIME };

struct section {
    const mime_part_t *part;    /* NULL: no such part */
    bool numbered;
    enum sec_what what;
    char **names;               /* HEADER.FIELDS[.NOT], sorted, lower case */
    size_t nnames;
};

static void section_free(struct section *s)
{
    for (size_t i = 0; i < s->nnames; i++)
        free(s->names[i]);
    free(s->names);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* An astring's character (RFC 9051 ASTRING-CHAR). */
static bool astring_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && strchr("(){%*\"\\", c) == NULL;
}

/* " (name name ...)" at s, to the end. */
static int parse_names(struct section *sec, const char *s, const char **why)
{
    size_t cap = 0;

    if (s[0] != ' ' || s[1] != '(') {
        *why = "HEADER.FIELDS needs a list of field names";
        return -1;
    }
    s += 2;
    for (;;) {
        buf_t *b;

        while (*s == ' ')
            s++;
        if (*s == ')')
            break;
        b = buf_new(0);
        if (*s == '"') {
            for (s++; *s && *s != '"'; s++) {
                if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
                    s++;
                buf_putc(b, *s);
            }
            if (*s != '"') {
                buf_free(&b);
                *why = "Unterminated quoted string in the field list";
                return -1;
            }
            s++;
        } else {
            while (astring_char((unsigned char)*s))
                buf_putc(b, *s++);
        }
        if (b->len == 0 || (*s != ' ' && *s != ')')) {
            buf_free(&b);
            *why = "Invalid field name in the list";
            return -1;
        }
        for (size_t i = 0; i < b->len; i++)
            if (b->data[i] >= 'A' && b->data[i] <= 'Z')
                b->data[i] = (char)(b->data[i] - 'A' + 'a');
        if (sec->nnames == cap) {
            cap = cap ? cap * 2 : 4;
            sec->names = xreallocarray(sec->names, cap, sizeof(char *));
        }
        sec->names[sec->nnames++] = buf_steal(b, NULL);
        buf_free(&b);
    }
    if (sec->nnames == 0 || s[1] != '\0') {
        *why = sec->nnames ? "Junk after the field list" : "Empty field list";
        return -1;
    }
    qsort(sec->names, sec->nnames, sizeof(char *), name_cmp);
    return 0;
}

/* Parse spec and find its part.  binary: only part numbers (BINARY). */
static int section_parse(struct section *sec, const mime_part_t *root, const char *spec,
                         bool binary, const char **why)
{
    const char *s = spec;
    static const struct { const char *kw; enum sec_what what; } kws[] = {
        { "HEADER.FIELDS.NOT", SEC_FIELDS_NOT }, { "HEADER.FIELDS", SEC_FIELDS },
        { "HEADER", SEC_HEADER }, { "TEXT", SEC_TEXT }, { "MIME", SEC_MIME },
    };

    memset(sec, 0, sizeof(*sec));
    sec->part = root;
    *why = "Invalid section";
    while (*s >= '0' && *s <= '9') {
        unsigned long num = 0;
        const mime_part_t *p = sec->part;

        if (*s == '0') {
            *why = "Part numbers start at 1";
            return -1;
        }
        for (; *s >= '0' && *s <= '9'; s++)
            num = num > 1000000UL ? num : num * 10 + (unsigned long)(*s - '0');
        sec->numbered = true;
        if (p && p->nchildren)
            p = num <= p->nchildren ? p->children[num - 1] : NULL;
        else if (p && (num != 1 || (s[0] == '.' && s[1] >= '0' && s[1] <= '9' && !p->message)))
            p = NULL;       /* a leaf is its own part 1, and has no part 1.N */
        sec->part = p;
        if (*s == '\0')
            return 0;
        if (*s != '.')
            return -1;
        s++;
        if (*s >= '0' && *s <= '9') {
            if (p && p->message)
                sec->part = p->message;
            continue;
        }
        if (binary)
            return -1;
        break;
    }
    if (*s == '\0' && !sec->numbered)
        return 0;
    if (binary)
        return -1;
    for (size_t i = 0; i < sizeof(kws) / sizeof(kws[0]); i++) {
        size_t n = strlen(kws[i].kw);

        if (strncasecmp(s, kws[i].kw, n) != 0)
            continue;
        if (kws[i].what == SEC_MIME && !sec->numbered)
            return -1;
        sec->what = kws[i].what;
        s += n;
        if (sec->what == SEC_FIELDS || sec->what == SEC_FIELDS_NOT)
            return parse_names(sec, s, why);
        return *s == '\0' ? 0 : -1;
    }
    return -1;
}

static bool names_have(const struct section *sec, const struct hfield *f)
{
    size_t lo = 0, hi = sec->nnames;

    if (!f->colon)
        return false;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const char *n = sec->names[mid];
        size_t k = strlen(n);
        int c = strncasecmp(f->name, n, f->name_len < k ? f->name_len : k);

        if (c == 0 && f->name_len != k)
            c = f->name_len < k ? -1 : 1;
        if (c == 0)
            return true;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return false;
}

static void put_fields(buf_t *out, const mime_part_t *part, const char *msg,
                       const struct section *sec)
{
    struct hiter it;
    struct hfield f;

    hiter_init(&it, part, msg);
    while (hiter_next(&it, &f)) {
        if (names_have(sec, &f) != (sec->what == SEC_FIELDS))
            continue;
        buf_append(out, f.raw, f.raw_len);
        if (f.raw[f.raw_len - 1] != '\n')
            buf_append_str(out, "\r\n");    /* the header's last line had no end */
    }
    buf_append(out, msg + part->hdr_off + part->hdr_len - part->hdr_blank, part->hdr_blank);
}

int mime_section(buf_t *out, const mime_part_t *root, const char *msg, const char *spec,
                 const char **why)
{
    struct section sec;
    const mime_part_t *p;
    size_t before = out->len;
    int ret = 0;

    if (section_parse(&sec, root, spec, false, why) < 0) {
        section_free(&sec);
        return -1;
    }
    p = sec.part;
    if (p && sec.numbered && sec.what != SEC_ALL && sec.what != SEC_MIME)
        p = p->message;
    if (p == NULL) {
        ret = 1;
    } else if (sec.what == SEC_ALL && !sec.numbered) {
        buf_append(out, msg, root->body_off + root->body_len);
    } else if (sec.what == SEC_ALL || sec.what == SEC_TEXT) {
        buf_append(out, msg + p->body_off, p->body_len);
    } else if (sec.what == SEC_HEADER || sec.what == SEC_MIME) {
        buf_append(out, msg + p->hdr_off, p->hdr_len);
    } else {
        put_fields(out, p, msg, &sec);
    }
    /* a literal holds no NUL: 0x80 instead, as Dovecot sends it */
    for (char *z = out->data + before; (z = memchr(z, '\0', out->len - (size_t)(z - out->data)));)
        *z++ = (char)0x80;
    section_free(&sec);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Transfer encodings and BINARY (RFC 3516) */

/* Output staged in a small array, so a decoder need not append by the octet. */
struct stage {
    buf_t *out;
    size_t n;
    char b[4096];
};

static void stage_put(struct stage *st, char c)
{
    if (st->n == sizeof(st->b)) {
        buf_append(st->out, st->b, st->n);
        st->n = 0;
    }
    st->b[st->n++] = c;
}

static void stage_flush(struct stage *st)
{
    buf_append(st->out, st->b, st->n);
    st->n = 0;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Tolerant base64: octets outside the alphabet skipped, '=' ends a group. */
static void decode_base64(struct stage *st, const char *s, size_t n)
{
    uint32_t acc = 0;
    int k = 0;

    for (size_t i = 0; i <= n; i++) {
        int v = i < n ? b64_value((unsigned char)s[i]) : -1;

        if (v >= 0) {
            acc = acc << 6 | (uint32_t)v;
            if (++k == 4) {
                stage_put(st, (char)(acc >> 16));
                stage_put(st, (char)(acc >> 8));
                stage_put(st, (char)acc);
                acc = 0;
                k = 0;
            }
        } else if (i == n || s[i] == '=') {
            if (k == 2) {
                stage_put(st, (char)(acc >> 4));
            } else if (k == 3) {
                stage_put(st, (char)(acc >> 10));
                stage_put(st, (char)(acc >> 2));
            }
            acc = 0;
            k = 0;
        }
    }
}

/* quoted-printable (RFC 2045 6.7) */
static void decode_qp(struct stage *st, const char *s, size_t n)
{
    size_t pos = 0;

    while (pos < n) {
        const char *nl = memchr(s + pos, '\n', n - pos);
        size_t next = nl ? (size_t)(nl - s) + 1 : n;
        size_t eol = nl ? (size_t)(nl - s) : n, ce;
        bool soft;

        if (nl && eol > pos && s[eol - 1] == '\r')
            eol--;
        for (ce = eol; ce > pos && is_wsp(s[ce - 1]); ce--)
            ;
        soft = ce > pos && s[ce - 1] == '=';
        if (soft)
            ce--;
        for (size_t i = pos; i < ce; i++) {
            int h, l;

            if (s[i] == '=' && i + 2 < ce
                && (h = hexval((unsigned char)s[i + 1])) >= 0
                && (l = hexval((unsigned char)s[i + 2])) >= 0) {
                stage_put(st, (char)(h << 4 | l));
                i += 2;
            } else {
                stage_put(st, s[i]);
            }
        }
        if (!soft)
            for (size_t i = eol; i < next; i++)
                stage_put(st, s[i]);
        pos = next;
    }
}

int mime_transfer_decode(buf_t *out, const char *cte, const char *data, size_t len)
{
    struct stage *st;
    bool b64;

    if (cte == NULL || strcasecmp(cte, "7bit") == 0 || strcasecmp(cte, "8bit") == 0
        || strcasecmp(cte, "binary") == 0) {
        buf_append(out, data, len);
        return 0;
    }
    b64 = strcasecmp(cte, "base64") == 0;
    if (!b64 && strcasecmp(cte, "quoted-printable") != 0)
        return -1;
    st = xmalloc(sizeof(*st));
    st->out = out;
    st->n = 0;
    if (b64)
        decode_base64(st, data, len);
    else
        decode_qp(st, data, len);
    stage_flush(st);
    free(st);
    return 0;
}

int mime_binary(buf_t *out, const mime_part_t *root, const char *msg, const char *spec,
                const char **why)
{
    struct section sec;
    const mime_part_t *p;

    if (section_parse(&sec, root, spec, true, why) < 0) {
        section_free(&sec);
        return -2;
    }
    p = sec.part;
    if (p == NULL)
        return 1;
    if (!sec.numbered) {
        buf_append(out, msg, root->body_off + root->body_len);
        return 0;
    }
    if (p->nchildren || p->message) {
        buf_append(out, msg + p->body_off, p->body_len);
        return 0;
    }
    return mime_transfer_decode(out, p->encoding, msg + p->body_off, p->body_len);
}

/* ------------------------------------------------------------------ */
/* Charsets (iconv) and RFC 2047 */

#define CHARSET_NAME_MAX    64
#define CHARSET_CACHE       4

static struct {
    char   *name;           /* lower case, after aliases */
    iconv_t cd;
} cs_cache[CHARSET_CACHE];

/* Names iconv spells otherwise, or that mail means more by. */
static const char *const cs_aliases[][2] = {
    { "ks_c_5601-1987", "cp949" }, { "iso-8859-8-i", "iso-8859-8" },
    { "x-sjis", "shift_jis" }, { "gb2312", "gbk" }, { "x-gbk", "gbk" },
    { "iso-8859-1", "windows-1252" }, { "us-ascii", "utf-8" }, { "ascii", "utf-8" },
    { "utf8", "utf-8" }, { "x-unknown", "" }, { "unknown-8bit", "" },
};

static void utf8_sanitize(buf_t *out, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0;

    while (i < n) {
        size_t k = u[i] ? utf8_seq(u + i, n - i) : 1;

        if (k) {
            i += k;
            continue;
        }
        buf_append(out, s + run, i - run);
        buf_append(out, "\xef\xbf\xbd", 3);
        run = ++i;
    }
    buf_append(out, s + run, n - run);
}

static iconv_t cs_open(const char *name)
{
    iconv_t cd;
    size_t i;

    for (i = 0; i < CHARSET_CACHE && cs_cache[i].name; i++) {
        if (strcmp(cs_cache[i].name, name) == 0) {
            cd = cs_cache[i].cd;
            iconv(cd, NULL, NULL, NULL, NULL);
            return cd;
        }
    }
    cd = iconv_open("UTF-8", name);
    if (cd == (iconv_t)-1)
        return cd;
    if (cs_cache[CHARSET_CACHE - 1].name) {
        free(cs_cache[CHARSET_CACHE - 1].name);
        iconv_close(cs_cache[CHARSET_CACHE - 1].cd);
    }
    memmove(&cs_cache[1], &cs_cache[0], (CHARSET_CACHE - 1) * sizeof(cs_cache[0]));
    cs_cache[0].name = xstrdup(name);
    cs_cache[0].cd = cd;
    return cd;
}

int charset_to_utf8(buf_t *out, const char *charset, const char *data, size_t len)
{
    char name[CHARSET_NAME_MAX + 1], obuf[4096];
    size_t n = 0;
    iconv_t cd;
    char *in = (char *)data;
    size_t inleft = len;

    if (charset == NULL)
        charset = "us-ascii";
    for (const char *c = charset; *c; c++) {
        char ch = *c >= 'A' && *c <= 'Z' ? (char)(*c - 'A' + 'a') : *c;

        if (n == CHARSET_NAME_MAX || !((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')
                                      || strchr("-_.:+()", ch)))
            return -1;
        name[n++] = ch;
    }
    name[n] = '\0';
    for (size_t i = 0; i < sizeof(cs_aliases) / sizeof(cs_aliases[0]); i++)
        if (strcmp(name, cs_aliases[i][0]) == 0)
            snprintf(name, sizeof(name), "%s", cs_aliases[i][1]);
    if (name[0] == '\0')
        return -1;
    if (strcmp(name, "utf-8") == 0) {
        utf8_sanitize(out, data, len);
        return 0;
    }
    cd = cs_open(name);
    if (cd == (iconv_t)-1)
        return -1;
    while (inleft > 0) {
        char *op = obuf;
        size_t oleft = sizeof(obuf);
        size_t r = iconv(cd, &in, &inleft, &op, &oleft);

        if (buf_append(out, obuf, (size_t)(op - obuf)) < 0)
            return 0;
        if (r != (size_t)-1 || errno == E2BIG)
            continue;
        buf_append(out, "\xef\xbf\xbd", 3);
        if (errno != EILSEQ)
            break;
        in++;
        inleft--;
    }
    {
        char *op = obuf;
        size_t oleft = sizeof(obuf);

        iconv(cd, NULL, NULL, &op, &oleft);
        buf_append(out, obuf, (size_t)(op - obuf));
    }
    return 0;
}

/* The encoded word at s[0, n) ("=?" there): its charset, encoding and
 * text, and its length; 0 if it is not one. */
static size_t ew_parse(const char *s, size_t n, size_t *cs_len, char *enc,
                       const char **text, size_t *text_len)
{
    size_t i = 2, c;

    while (i < n && s[i] != '?' && (unsigned char)s[i] > 0x20 && s[i] != 0x7f
           && i - 2 <= CHARSET_NAME_MAX)
        i++;
    if (i == 2 || i + 2 >= n || s[i] != '?' || s[i + 2] != '?')
        return 0;
    *cs_len = i - 2;
    *enc = s[i + 1];
    if (*enc != 'B' && *enc != 'b' && *enc != 'Q' && *enc != 'q')
        return 0;
    i += 3;
    for (c = i; c + 1 < n; c++) {
        if (s[c] == '\r' || s[c] == '\n')
            return 0;
        if (s[c] == '?' && s[c + 1] == '=')
            break;
    }
    if (c + 1 >= n)
        return 0;
    *text = s + i;
    *text_len = c - i;
    return c + 2;
}

static void ew_flush(buf_t *out, const char *cs, size_t cs_len, buf_t *pend)
{
    char *name;

    if (pend->len == 0)
        return;
    name = xstrndup(cs, cs_len);
    if (strchr(name, '*'))
        *strchr(name, '*') = '\0';      /* RFC 2231 5: charset*language */
    if (charset_to_utf8(out, name, pend->data, pend->len) < 0)
        buf_append(out, pend->data, pend->len);
    free(name);
    buf_reset(pend);
}

/* rfc2047_decode's work, into a buffer without a limit. */
static void rfc2047_into(buf_t *out, const char *text, size_t len)
{
    buf_t *pend = buf_new(0);
    const char *cs = NULL;
    size_t cs_len = 0, lit = 0, i = 0;
    bool prev_word = false;

    while (i < len) {
        size_t wl, wcs_len, tl, gap;
        char enc;
        const char *t;

        if (text[i] != '=' || i + 1 >= len || text[i + 1] != '?'
            || (wl = ew_parse(text + i, len - i, &wcs_len, &enc, &t, &tl)) == 0) {
            i++;
            continue;
        }
        gap = lit;
        while (gap < i && (is_wsp(text[gap]) || text[gap] == '\r' || text[gap] == '\n'))
            gap++;
        if (!(prev_word && gap == i) || cs == NULL || wcs_len != cs_len
            || strncasecmp(cs, text + i + 2, cs_len) != 0) {
            ew_flush(out, cs, cs_len, pend);
            if (!(prev_word && gap == i))
                buf_append(out, text + lit, i - lit);
        }
        cs = text + i + 2;
        cs_len = wcs_len;
        if (enc == 'B' || enc == 'b') {
            struct stage *st = xmalloc(sizeof(*st));

            st->out = pend;
            st->n = 0;
            decode_base64(st, t, tl);
            stage_flush(st);
            free(st);
        } else {
            for (size_t k = 0; k < tl; k++) {
                int h, l;

                if (t[k] == '_') {
                    buf_putc(pend, ' ');
                } else if (t[k] == '=' && k + 2 < tl && (h = hexval((unsigned char)t[k + 1])) >= 0
                           && (l = hexval((unsigned char)t[k + 2])) >= 0) {
                    buf_putc(pend, (char)(h << 4 | l));
                    k += 2;
                } else {
                    buf_putc(pend, t[k]);
                }
            }
        }
        i += wl;
        lit = i;
        prev_word = true;
    }
    ew_flush(out, cs, cs_len, pend);
    buf_append(out, text + lit, len - lit);
    buf_free(&pend);
}

int rfc2047_decode(buf_t *out, const char *text, size_t len)
{
    buf_t *t = buf_new(0);
    int r;

    rfc2047_into(t, text, len);
    r = buf_append(out, t->data, t->len);
    buf_free(&t);
    return r < 0 ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* SEARCH text */

static void header_text(buf_t *out, const mime_part_t *part, const char *msg, const char *name)
{
    struct hiter it;
    struct hfield f;
    bool first = true;
    buf_t *t = buf_new(0);

    hiter_init(&it, part, msg);
    while (hiter_next(&it, &f)) {
        const char *v = f.value;
        size_t n = f.value_len;

        if (name ? !hfield_is(&f, name) : !f.colon)
            continue;
        buf_reset(t);
        while (n > 0 && (is_wsp(*v) || *v == '\r' || *v == '\n'))
            v++, n--;
        for (size_t i = 0; i < n; i++)
            if (v[i] != '\r' && v[i] != '\n')
                buf_putc(t, v[i]);
        if (!first)
            buf_putc(out, '\n');
        first = false;
        if (name == NULL) {
            buf_append(out, f.name, f.name_len);
            buf_append_str(out, ": ");
        }
        rfc2047_decode(out, t->data, t->len);
    }
    buf_free(&t);
}

void mime_header_text(buf_t *out, const mime_part_t *root, const char *msg, const char *name)
{
    header_text(out, root, msg, name);
}

static void body_text(buf_t *out, const mime_part_t *part, const char *msg, bool *first)
{
    if (part->nchildren) {
        for (size_t i = 0; i < part->nchildren; i++)
            body_text(out, part->children[i], msg, first);
    } else if (part->message) {
        if (!*first)
            buf_putc(out, '\n');
        *first = false;
        header_text(out, part->message, msg, NULL);
        body_text(out, part->message, msg, first);
    } else if (part->is_text) {
        buf_t *d = buf_new(0);
        const char *data = msg + part->body_off;
        size_t n = part->body_len;

        if (mime_transfer_decode(d, part->encoding, data, n) == 0) {
            data = d->data;
            n = d->len;
        }
        if (!*first)
            buf_putc(out, '\n');
        *first = false;
        char *cs = param_value(part, "charset");

        if (charset_to_utf8(out, cs, data, n) < 0)
            buf_append(out, data, n);
        free(cs);
        buf_free(&d);
    }
}

void mime_body_text(buf_t *out, const mime_part_t *root, const char *msg)
{
    bool first = true;

    body_text(out, root, msg, &first);
}
