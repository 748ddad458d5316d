/*
 * mime8 - the 8-bit to 7-bit MIME downgrade (see mime8.h).
 *
 * One parser, run twice: a state machine over lines that knows where it
 * is (a header block or a body), the multipart boundaries it is inside
 * (a stack, at most depth_max deep) and the number of the part it is in.
 * The scan records per part whether its body held 8-bit octets; the
 * conversion holds each header block (up to header_max bytes) until its
 * end, then writes it with the Content-Transfer-Encoding the part needs
 * and encodes the body lines as they come.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "mime8.h"
#include "msg.h"
#include "xalloc.h"

#define MIME8_BOUNDARY_MAX 200      /* RFC 2046 says 70; be lenient */

enum mime8_cte { CTE_NONE, CTE_7BIT, CTE_8BIT, CTE_BINARY, CTE_QP, CTE_BASE64, CTE_OTHER };
enum mime8_ctype { CT_NONE, CT_MULTIPART, CT_RFC822, CT_OTHER };
enum mime8_body { BODY_LEAF, BODY_VERBATIM };

struct mime8_bound {
    char   *text;
    size_t  len;
    size_t  depth;          /* of the multipart itself */
    bool    digest;         /* multipart/digest: parts default to message/rfc822 */
};

struct mime8 {
    struct mime8_limits lim;
    bool            converting;
    mime8_emit_fn   emit;           /* NULL while scanning */
    void           *ctx;
    int             err;            /* emit's first non-zero result */

    /* Where the parser is. */
    bool            in_header;
    size_t          depth;          /* of the current part */
    bool            default_rfc822; /* the current part's default type */
    size_t          part;           /* number of the current part */
    size_t          nparts;         /* parts started */
    enum mime8_body body;
    bool            encode;         /* second pass: quoted-printable body */
    struct mime8_bound *stack;
    size_t          nstack;

    /* The current header block. */
    buf_t          *field;          /* the current field, unfolded */
    bool            field_open;
    bool            field_is_cte;
    enum mime8_ctype ctype;
    bool            ctype_seen, digest;
    char           *boundary;
    enum mime8_cte  cte;
    bool            cte_seen, mimever_seen;
    buf_t          *hdr;            /* second pass: the block's lines */
    size_t         *line_off, *line_len;
    bool           *line_cte;       /* the line belongs to a C-T-E field */
    size_t          nlines, alines;
    bool            overflow;       /* the block went out as it was */

    unsigned char  *bits;           /* the scan's verdict per part */
};

int mime8_has_8bit(const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)data[i] >= 0x80 || data[i] == '\0')
            return 1;
    return 0;
}

/* ------------------------------------------------------------ life cycle */

mime8_t *mime8_new(const struct mime8_limits *lim)
{
    static const struct mime8_limits def = MIME8_LIMITS_DEFAULT;
    mime8_t *m = xcalloc(1, sizeof(*m));

    m->lim = lim ? *lim : def;
    if (m->lim.depth_max < 1 || m->lim.header_max < 1000 || m->lim.parts_max < 1)
        msg_panic("mime8_new: bad limits");
    m->field = buf_new(0);
    m->hdr = buf_new(0);
    m->stack = xcalloc(m->lim.depth_max, sizeof(*m->stack));
    m->bits = xcalloc((m->lim.parts_max + 7) / 8, 1);
    m->in_header = true;
    m->nparts = 1;
    return m;
}

static void mime8_header_reset(mime8_t *m)
{
    buf_reset(m->field);
    buf_reset(m->hdr);
    m->field_open = m->field_is_cte = false;
    m->ctype = CT_NONE;
    m->ctype_seen = m->digest = false;
    xfree(&m->boundary);
    m->cte = CTE_NONE;
    m->cte_seen = m->mimever_seen = false;
    m->nlines = 0;
    m->overflow = false;
}

static void mime8_pop(mime8_t *m, size_t keep)
{
    while (m->nstack > keep) {
        m->nstack--;
        xfree(&m->stack[m->nstack].text);
    }
}

void mime8_free(mime8_t **mp)
{
    mime8_t *m = *mp;

    if (m == NULL)
        return;
    mime8_header_reset(m);
    mime8_pop(m, 0);
    buf_free(&m->field);
    buf_free(&m->hdr);
    free(m->line_off);
    free(m->line_len);
    free(m->line_cte);
    free(m->stack);
    free(m->bits);
    free(m);
    *mp = NULL;
}

/* --------------------------------------------------------------- output */

static void mime8_out(mime8_t *m, const char *line, size_t len)
{
    if (m->emit && m->err == 0)
        m->err = m->emit(m->ctx, line, len);
}

static void mime8_out_str(mime8_t *m, const char *s)
{
    mime8_out(m, s, strlen(s));
}

/* One body line as quoted-printable: soft line breaks keep each output
 * line within MIME8_QP_LINE_MAX; the line's own end is a hard break. */
static void mime8_qp_line(mime8_t *m, const char *line, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    char out[MIME8_QP_LINE_MAX + 1];
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        char enc[3];
        size_t elen;
        bool last = i + 1 == len;

        if (((c == ' ' || c == '\t') && !last) || (c >= 33 && c <= 126 && c != '='
                                                    && !(c == '-' && n == 0))) {
            enc[0] = (char)c;
            elen = 1;
        } else {
            enc[0] = '=';
            enc[1] = hex[c >> 4];
            enc[2] = hex[c & 15];
            elen = 3;
        }
        /* Room for the soft break "=" unless this ends the line. */
        if (n + elen > MIME8_QP_LINE_MAX - (last ? 0 : 1)) {
            out[n++] = '=';
            mime8_out(m, out, n);
            n = 0;
            if (c == '-') {         /* now it starts a line */
                enc[0] = '=';
                enc[1] = hex[c >> 4];
                enc[2] = hex[c & 15];
                elen = 3;
            }
        }
        memcpy(out + n, enc, elen);
        n += elen;
    }
    mime8_out(m, out, n);
}

/* ------------------------------------------------------- header parsing */

static bool mime8_tspecial(unsigned char c)
{
    return strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

static bool mime8_token_char(unsigned char c)
{
    return c > 32 && c < 127 && !mime8_tspecial(c);
}

/* Skip white space and (nested) comments. */
static size_t mime8_cfws(const char *s, size_t len, size_t i)
{
    int level = 0;

    while (i < len) {
        char c = s[i];

        if (level > 0) {
            if (c == '\\' && i + 1 < len)
                i++;
            else if (c == '(')
                level++;
            else if (c == ')')
                level--;
        } else if (c == '(') {
            level++;
        } else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            break;
        }
        i++;
    }
    return i;
}

static size_t mime8_token(const char *s, size_t len, size_t i)
{
    while (i < len && mime8_token_char((unsigned char)s[i]))
        i++;
    return i;
}

static bool mime8_is(const char *s, size_t len, const char *word)
{
    return len == strlen(word) && strncasecmp(s, word, len) == 0;
}

static void mime8_parse_ctype(mime8_t *m, const char *v, size_t len)
{
    size_t i = mime8_cfws(v, len, 0), t0 = i, t1, s0, s1;

    t1 = i = mime8_token(v, len, i);
    i = mime8_cfws(v, len, i);
    if (t1 == t0 || i >= len || v[i] != '/')
        return;                 /* not a type: the default stays */
    i = mime8_cfws(v, len, i + 1);
    s0 = i;
    s1 = i = mime8_token(v, len, i);
    if (s1 == s0)
        return;
    m->ctype_seen = true;
    if (mime8_is(v + t0, t1 - t0, "multipart")) {
        m->ctype = CT_MULTIPART;
        m->digest = mime8_is(v + s0, s1 - s0, "digest");
    } else if (mime8_is(v + t0, t1 - t0, "message") && mime8_is(v + s0, s1 - s0, "rfc822")) {
        m->ctype = CT_RFC822;
    } else {
        m->ctype = CT_OTHER;
    }
    /* Parameters: only boundary matters. */
    for (;;) {
        size_t n0, n1;
        buf_t *val;

        i = mime8_cfws(v, len, i);
        if (i >= len || v[i] != ';')
            return;
        i = mime8_cfws(v, len, i + 1);
        n0 = i;
        n1 = i = mime8_token(v, len, i);
        i = mime8_cfws(v, len, i);
        if (n1 == n0 || i >= len || v[i] != '=')
            return;
        i = mime8_cfws(v, len, i + 1);
        val = buf_new(MIME8_BOUNDARY_MAX);
        if (i < len && v[i] == '"') {
            bool closed = false;

            for (i++; i < len; i++) {
                if (v[i] == '\\' && i + 1 < len)
                    i++;
                else if (v[i] == '"') {
                    closed = true;
                    i++;
                    break;
                }
                if (buf_putc(val, v[i]) < 0)
                    break;
            }
            if (!closed)
                val->len = 0;
        } else {
            size_t v0 = i;

            i = mime8_token(v, len, i);
            if (buf_append(val, v + v0, i - v0) < 0)
                val->len = 0;
        }
        if (mime8_is(v + n0, n1 - n0, "boundary") && m->boundary == NULL && val->len > 0)
            m->boundary = buf_steal(val, NULL);
        buf_free(&val);
    }
}

static enum mime8_cte mime8_parse_cte(const char *v, size_t len)
{
    size_t i = mime8_cfws(v, len, 0), t0 = i, t1 = mime8_token(v, len, i);
    const char *t = v + t0;

    if (t1 == t0)
        return CTE_OTHER;
    len = t1 - t0;
    if (mime8_is(t, len, "7bit"))
        return CTE_7BIT;
    if (mime8_is(t, len, "8bit"))
        return CTE_8BIT;
    if (mime8_is(t, len, "binary"))
        return CTE_BINARY;
    if (mime8_is(t, len, "quoted-printable"))
        return CTE_QP;
    if (mime8_is(t, len, "base64"))
        return CTE_BASE64;
    return CTE_OTHER;
}

/* Length of the field name if line starts a header field ("Name:"), else 0. */
static size_t mime8_field_name(const char *line, size_t len)
{
    size_t i = 0;

    while (i < len && (unsigned char)line[i] > 32 && (unsigned char)line[i] < 127
           && line[i] != ':')
        i++;
    /* "Name :" (white space before the colon) is obsolete syntax; take it. */
    {
        size_t j = i;

        while (j < len && (line[j] == ' ' || line[j] == '\t'))
            j++;
        if (i == 0 || j >= len || line[j] != ':')
            return 0;
    }
    return i;
}

/* The unfolded field in m->field is complete: note what it says. */
static void mime8_field_done(mime8_t *m)
{
    const char *f = m->field->data;
    size_t len = m->field->len, name = mime8_field_name(f, len), colon;

    if (!m->field_open)
        return;
    m->field_open = false;
    if (name == 0)
        return;
    colon = name;
    while (f[colon] != ':')
        colon++;
    colon++;
    if (mime8_is(f, name, "content-type")) {
        if (!m->ctype_seen)
            mime8_parse_ctype(m, f + colon, len - colon);
    } else if (mime8_is(f, name, "content-transfer-encoding")) {
        if (!m->cte_seen) {
            m->cte_seen = true;
            m->cte = mime8_parse_cte(f + colon, len - colon);
        }
    } else if (mime8_is(f, name, "mime-version")) {
        m->mimever_seen = true;
    }
}

/* Keep (second pass) one line of the header block, in the C-T-E field or
 * not; past header_max the block goes out as it is. */
static void mime8_hdr_line(mime8_t *m, const char *line, size_t len, bool cte)
{
    if (!m->converting)
        return;
    if (m->overflow) {
        mime8_out(m, line, len);
        return;
    }
    if (m->hdr->len + len > m->lim.header_max) {
        for (size_t i = 0; i < m->nlines; i++)
            mime8_out(m, m->hdr->data + m->line_off[i], m->line_len[i]);
        mime8_out(m, line, len);
        m->overflow = true;
        return;
    }
    if (m->nlines == m->alines) {
        m->alines = m->alines ? 2 * m->alines : 16;
        m->line_off = xreallocarray(m->line_off, m->alines, sizeof(*m->line_off));
        m->line_len = xreallocarray(m->line_len, m->alines, sizeof(*m->line_len));
        m->line_cte = xreallocarray(m->line_cte, m->alines, sizeof(*m->line_cte));
    }
    m->line_off[m->nlines] = m->hdr->len;
    m->line_len[m->nlines] = len;
    m->line_cte[m->nlines] = cte;
    m->nlines++;
    if (buf_append(m->hdr, line, len) < 0)
        msg_panic("mime8: header buffer refused %zu bytes", len);
}

/* ------------------------------------------------------------- the parser */

static bool mime8_bit(const mime8_t *m, size_t part)
{
    if (part >= m->lim.parts_max)
        return true;
    return (m->bits[part / 8] >> (part % 8)) & 1;
}

static void mime8_new_part(mime8_t *m, size_t depth, bool default_rfc822)
{
    m->part = m->nparts < (size_t)-1 ? m->nparts++ : m->nparts;
    m->depth = depth;
    m->default_rfc822 = default_rfc822;
    m->in_header = true;
    m->encode = false;
    m->body = BODY_LEAF;
    mime8_header_reset(m);
}

/* The header block of the current part ended (blank: with an empty line,
 * which goes out too).  Decide what its body is; for message/rfc822 that
 * is the header block of the message inside, so in_header stays set. */
static void mime8_header_end(mime8_t *m, bool blank)
{
    enum { LEAF, MULTIPART, MESSAGE } kind = LEAF;
    const char *newcte = NULL;
    bool mimever = false, encode = false;

    mime8_field_done(m);
    if (m->ctype == CT_MULTIPART && m->boundary && m->nstack < m->lim.depth_max
        && m->depth < m->lim.depth_max)
        kind = MULTIPART;
    else if ((m->ctype == CT_RFC822 || (m->ctype == CT_NONE && m->default_rfc822))
             && (m->cte == CTE_NONE || m->cte == CTE_7BIT || m->cte == CTE_8BIT
                 || m->cte == CTE_BINARY)
             && m->depth < m->lim.depth_max)
        kind = MESSAGE;

    if (m->converting) {
        if (kind == LEAF) {
            bool eight = mime8_bit(m, m->part);

            switch (m->cte) {
            case CTE_BINARY:
                encode = true;
                break;
            case CTE_8BIT:
                encode = eight;
                if (!eight)
                    newcte = "7bit";
                break;
            case CTE_NONE:
            case CTE_7BIT:
                encode = eight;
                break;
            default:
                break;
            }
            if (encode) {
                newcte = "quoted-printable";
                mimever = m->part == 0 && !m->mimever_seen;
            }
        } else if (m->cte == CTE_8BIT || m->cte == CTE_BINARY) {
            newcte = "7bit";
        }
        if (m->overflow) {
            /* Out already: nothing can be rewritten, so nothing is. */
            encode = false;
        } else {
            for (size_t i = 0; i < m->nlines; i++)
                if (!(newcte && m->line_cte[i]))
                    mime8_out(m, m->hdr->data + m->line_off[i], m->line_len[i]);
            if (mimever)
                mime8_out_str(m, "MIME-Version: 1.0");
            if (newcte) {
                char line[64];

                snprintf(line, sizeof(line), "Content-Transfer-Encoding: %s", newcte);
                mime8_out_str(m, line);
            }
        }
        if (blank)
            mime8_out(m, "", 0);
    }

    switch (kind) {
    case MULTIPART: {
        struct mime8_bound *b = &m->stack[m->nstack++];

        b->len = strlen(m->boundary);
        b->text = m->boundary;
        m->boundary = NULL;
        b->depth = m->depth;
        b->digest = m->digest;
        m->in_header = false;
        m->body = BODY_VERBATIM;        /* the preamble */
        mime8_header_reset(m);
        break;
    }
    case MESSAGE:
        mime8_new_part(m, m->depth + 1, false);
        break;
    default:
        m->in_header = false;
        m->body = m->overflow ? BODY_VERBATIM : BODY_LEAF;
        m->encode = encode;
        mime8_header_reset(m);
        break;
    }
}

/* Is line a boundary of an enclosing multipart?  The innermost level that
 * matches in *level, and whether it is the closing one. */
static bool mime8_boundary(const mime8_t *m, const char *line, size_t len, size_t *level,
                           bool *close)
{
    if (len < 3 || line[0] != '-' || line[1] != '-')
        return false;
    for (size_t k = m->nstack; k-- > 0;) {
        const struct mime8_bound *b = &m->stack[k];
        size_t i = 2 + b->len;

        if (len < i || memcmp(line + 2, b->text, b->len) != 0)
            continue;
        *close = len >= i + 2 && line[i] == '-' && line[i + 1] == '-';
        if (*close)
            i += 2;
        /* Transport padding (RFC 2046 5.1.1) may follow. */
        while (i < len && (line[i] == ' ' || line[i] == '\t'))
            i++;
        if (i == len) {
            *level = k;
            return true;
        }
    }
    return false;
}

static void mime8_line(mime8_t *m, const char *line, size_t len)
{
    size_t level, name;
    bool close;

    if (m->err)
        return;
    if (m->nstack > 0 && mime8_boundary(m, line, len, &level, &close)) {
        size_t depth = m->stack[level].depth;
        bool digest = m->stack[level].digest;

        /* A part that ends inside its header block has an empty body. */
        while (m->in_header)
            mime8_header_end(m, false);
        mime8_pop(m, level + 1);
        if (m->converting)
            mime8_out(m, line, len);
        if (close) {
            mime8_pop(m, level);
            m->depth = depth;
            m->in_header = false;
            m->body = BODY_VERBATIM;    /* the epilogue */
            m->encode = false;
        } else {
            mime8_new_part(m, depth + 1, digest);
        }
        return;
    }
    while (m->in_header) {
        if (len == 0) {
            mime8_header_end(m, true);
            return;
        }
        if ((line[0] == ' ' || line[0] == '\t') && m->field_open) {
            (void)buf_append(m->field, line, len);   /* past header_max: cut */
            if (m->field->len > m->lim.header_max)
                buf_truncate(m->field, m->lim.header_max);
            mime8_hdr_line(m, line, len, m->field_is_cte);
            return;
        }
        if ((name = mime8_field_name(line, len)) > 0) {
            mime8_field_done(m);
            buf_reset(m->field);
            (void)buf_append(m->field, line, len < m->lim.header_max ? len : m->lim.header_max);
            m->field_open = true;
            m->field_is_cte = mime8_is(line, name, "content-transfer-encoding");
            mime8_hdr_line(m, line, len, m->field_is_cte);
            return;
        }
        /* Not a header line: the body starts here, without a blank line. */
        mime8_header_end(m, false);
    }
    if (m->body == BODY_LEAF) {
        if (!m->converting) {
            if (m->part < m->lim.parts_max && mime8_has_8bit(line, len))
                m->bits[m->part / 8] |= (unsigned char)(1u << (m->part % 8));
        } else if (m->encode) {
            mime8_qp_line(m, line, len);
            return;
        }
    }
    if (m->converting)
        mime8_out(m, line, len);
}

void mime8_scan(mime8_t *m, const char *line, size_t len)
{
    if (m->converting)
        msg_panic("mime8_scan after mime8_convert");
    mime8_line(m, line, len);
}

/* The second pass starts over with what the scan found. */
static void mime8_start_convert(mime8_t *m)
{
    if (m->converting)
        return;
    mime8_header_reset(m);
    mime8_pop(m, 0);
    m->converting = true;
    m->nparts = 0;
    mime8_new_part(m, 0, false);
}

int mime8_convert(mime8_t *m, const char *line, size_t len, mime8_emit_fn emit, void *ctx)
{
    mime8_start_convert(m);
    m->emit = emit;
    m->ctx = ctx;
    mime8_line(m, line, len);
    return m->err;
}

int mime8_convert_end(mime8_t *m, mime8_emit_fn emit, void *ctx)
{
    mime8_start_convert(m);
    m->emit = emit;
    m->ctx = ctx;
    while (m->in_header && m->err == 0)
        mime8_header_end(m, false);
    return m->err;
}
