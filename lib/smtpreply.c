/*
 * smtpreply - SMTP replies, formatted for the server and parsed for the
 * client (see smtpreply.h for the interface and the grammar).
 *
 * The parser keeps the line being received in a buf_t capped at line_max,
 * so a peer that never sends LF is refused as soon as it passes the cap,
 * whatever the chunking.  A finished line is checked (code, separator,
 * same code as the first line, the line and size caps) and its sanitised
 * text appended, NUL-terminated, to one text buffer; the lines[] pointers
 * into it are made only when the reply is complete, since the buffer may
 * move while it grows.  The next call starts a new reply.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "msg.h"
#include "smtpreply.h"
#include "xalloc.h"

/* ---- formatting ---- */

static void smtpreply_line(buf_t *b, int code, int sep, const char *dsn, const char *text)
{
    size_t start = b->len, max = SMTPREPLY_LINE_MAX - 2;
    const char *parts[2] = { dsn, text };
    int i;

    buf_printf(b, "%03d%c", code, sep);
    for (i = 0; i < 2; i++) {
        const unsigned char *s = (const unsigned char *)parts[i];

        if (s == NULL || *s == '\0')
            continue;
        if (i == 1 && dsn && *dsn)
            buf_putc(b, ' ');
        for (; *s && b->len - start < max; s++)
            buf_putc(b, (*s < 32 || *s == 127) ? '?' : *s);
    }
    if (b->len - start > max)
        buf_truncate(b, start + max);
    /* "250 " alone: drop the SP; but RFC 4954's empty challenge is
     * "334" SP (continue-req), and clients wait for the SP. */
    if (sep == ' ' && b->len - start == 4 && code != 334)
        buf_truncate(b, start + 3);
    buf_append(b, "\r\n", 2);
}

int smtpreply_format(buf_t *out, int code, const char *dsn,
                     const char *const *lines, size_t n)
{
    buf_t *tmp;
    size_t i;
    int r;

    if (code < 200 || code > 599)
        msg_panic("smtpreply_format: bad reply code %d", code);
    tmp = buf_new(0);
    if (n == 0)
        smtpreply_line(tmp, code, ' ', dsn, NULL);
    for (i = 0; i < n; i++)
        smtpreply_line(tmp, code, i + 1 < n ? '-' : ' ', dsn, lines[i]);
    r = buf_append(out, tmp->data, tmp->len);
    buf_free(&tmp);
    return r < 0 ? -1 : 0;
}

int smtpreply_formatf(buf_t *out, int code, const char *dsn, const char *fmt, ...)
{
    va_list ap;
    char *text;
    int r;

    va_start(ap, fmt);
    if (vasprintf(&text, fmt, ap) < 0)
        msg_fatal("smtpreply_formatf: out of memory");
    va_end(ap);
    r = smtpreply_format(out, code, dsn, (const char *const *)&text, 1);
    free(text);
    return r;
}

int smtpreply_format_err(buf_t *out, const struct smtpreply_err *err)
{
    const char *text = err->text;

    return smtpreply_format(out, err->code, err->dsn, &text, 1);
}

/* ---- parsing ---- */

struct smtpreply_parser {
    struct smtpreply_limits lim;
    buf_t       *line;      /* the line being received (capped at line_max) */
    buf_t       *text;      /* this reply's line texts, each NUL-terminated */
    size_t      *offs;      /* where each line's text starts in text */
    const char **ptrs;      /* reply.lines, made at the end */
    size_t       cap;       /* entries of offs and ptrs */
    size_t       nlines;
    size_t       size;      /* wire bytes of this reply so far */
    int          code;
    bool         complete;  /* reply is finished: the next call starts anew */
    const char  *why;       /* a protocol error happened (sticky) */
    struct smtpreply reply;
};

smtpreply_parser_t *smtpreply_parser_new(const struct smtpreply_limits *lim)
{
    static const struct smtpreply_limits def = SMTPREPLY_LIMITS_DEFAULT;
    smtpreply_parser_t *p;

    if (lim == NULL)
        lim = &def;
    if (lim->line_max < 5 || lim->lines_max < 1 || lim->size_max < lim->line_max)
        msg_panic("smtpreply_parser_new: bad limits %zu/%zu/%zu", lim->line_max,
                  lim->lines_max, lim->size_max);
    p = xcalloc(1, sizeof(*p));
    p->lim = *lim;
    p->line = buf_new(lim->line_max);
    p->text = buf_new(0);
    return p;
}

void smtpreply_parser_free(smtpreply_parser_t **pp)
{
    smtpreply_parser_t *p = *pp;

    if (p == NULL)
        return;
    buf_free(&p->line);
    buf_free(&p->text);
    free(p->offs);
    free(p->ptrs);
    free(p);
    *pp = NULL;
}

static int smtpreply_fail(smtpreply_parser_t *p, const char *why)
{
    p->why = why;
    return SMTPREPLY_ERROR;
}

static bool smtpreply_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* The first line's enhanced status code (RFC 3463 2, RFC 2034 3), if it
 * has a well-formed one of the reply's class. */
static void smtpreply_find_dsn(struct smtpreply *r)
{
    const char *t = r->lines[0];
    size_t i = 2, part, n;

    r->dsn[0] = '\0';
    if (t[0] != '0' + r->code / 100 || t[1] != '.')
        return;
    for (part = 0; part < 2; part++) {
        for (n = 0; n < 3 && smtpreply_digit(t[i]); n++)
            i++;
        if (n == 0 || smtpreply_digit(t[i]))
            return;
        if (part == 0) {
            if (t[i] != '.')
                return;
            i++;
        }
    }
    if (t[i] != ' ' && t[i] != '\0')
        return;
    memcpy(r->dsn, t, i);
    r->dsn[i] = '\0';
}

/* One complete line (LF included) in p->line: 1 if it was the last of the
 * reply, 0 if more follow, SMTPREPLY_ERROR. */
static int smtpreply_take_line(smtpreply_parser_t *p)
{
    const unsigned char *s = (const unsigned char *)p->line->data;
    size_t n = p->line->len - 1, i;
    int code;

    if (n > 0 && s[n - 1] == '\r')
        n--;
    if (n < 3 || !smtpreply_digit(s[0]) || !smtpreply_digit(s[1]) || !smtpreply_digit(s[2]))
        return smtpreply_fail(p, "reply code is not three digits");
    code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    if (code < 200 || code > 599)
        return smtpreply_fail(p, "reply code out of range");
    if (n > 3 && s[3] != '-' && s[3] != ' ')
        return smtpreply_fail(p, "no SP or \"-\" after the reply code");
    if (p->nlines > 0 && code != p->code)
        return smtpreply_fail(p, "reply lines with different codes");
    if (p->nlines >= p->lim.lines_max)
        return smtpreply_fail(p, "too many lines in one reply");
    if (p->line->len > p->lim.size_max - p->size)
        return smtpreply_fail(p, "reply too long");
    p->size += p->line->len;
    p->code = code;
    if (p->nlines == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 8;
        if (p->cap > p->lim.lines_max)
            p->cap = p->lim.lines_max;
        p->offs = xreallocarray(p->offs, p->cap, sizeof(*p->offs));
        p->ptrs = xreallocarray(p->ptrs, p->cap, sizeof(*p->ptrs));
    }
    p->offs[p->nlines++] = p->text->len;
    for (i = 4; i < n; i++)
        buf_putc(p->text, (s[i] < 32 || s[i] == 127) ? '?' : s[i]);
    buf_putc(p->text, '\0');
    return n == 3 || s[3] == ' ';
}

/* The reply is complete: point lines[] into the text. */
static void smtpreply_finish(smtpreply_parser_t *p)
{
    size_t i;

    for (i = 0; i < p->nlines; i++)
        p->ptrs[i] = p->text->data + p->offs[i];
    p->reply.code = p->code;
    p->reply.nlines = p->nlines;
    p->reply.lines = p->ptrs;
    smtpreply_find_dsn(&p->reply);
    p->complete = true;
}

int smtpreply_parse(smtpreply_parser_t *p, const char *data, size_t len, size_t *used,
                    const struct smtpreply **reply, const char **why)
{
    size_t pos = 0;
    int r = SMTPREPLY_MORE;

    if (p->complete) {
        buf_reset(p->text);
        p->nlines = 0;
        p->size = 0;
        p->code = 0;
        memset(&p->reply, 0, sizeof(p->reply));
        p->complete = false;
    }
    while (p->why == NULL && pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (data + pos)) + 1 : len - pos;

        if (buf_append(p->line, data + pos, n) < 0) {
            smtpreply_fail(p, "reply line too long");
            break;
        }
        pos += n;
        if (nl == NULL)
            break;
        r = smtpreply_take_line(p);
        buf_reset(p->line);
        if (r == 1) {
            smtpreply_finish(p);
            r = SMTPREPLY_DONE;
            break;
        }
    }
    *used = pos;
    if (p->why) {
        if (why)
            *why = p->why;
        return SMTPREPLY_ERROR;
    }
    if (reply)
        *reply = r == SMTPREPLY_DONE ? &p->reply : NULL;
    return r == SMTPREPLY_DONE ? SMTPREPLY_DONE : SMTPREPLY_MORE;
}
