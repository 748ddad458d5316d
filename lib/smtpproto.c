/*
 * smtpproto - the SMTP server's command parsing (see smtpproto.h for the
 * interface).
 *
 * Grammar: RFC 5321 4.1 (commands, Path, Mailbox, Dot-string,
 * Quoted-string, Domain, address literals), 4.5.3.1 (size limits, here
 * parameters); RFC 1870 SIZE, RFC 6152 BODY=8BITMIME, RFC 3030
 * BODY=BINARYMIME and BDAT, RFC 3461 RET ENVID NOTIFY ORCPT, RFC 4954
 * AUTH=, RFC 6531 SMTPUTF8 (UTF-8 in atext, qtext and U-labels, only when
 * allowed).
 *
 * Deliberate choices:
 *  - Command lines must end in CRLF; any other CR or LF in the line (or a
 *    NUL) is SMTPP_E_BAD_EOL (500 5.5.2), never parsed further.
 *  - Lenient like Postfix only where it is harmless: spaces after
 *    "FROM:"/"TO:", several spaces between parameters, trailing SP/HTAB on
 *    a command line.  Addresses must be in angle brackets.
 *  - General (non-IPv4, non-IPv6) address literals are refused: there is
 *    nothing we could route them to.
 *  - Address syntax errors are 501 5.1.7 (sender) / 501 5.1.3
 *    (recipient), RFC 3463; command syntax 501 5.5.4; parameters 555 5.5.4.
 *  - SIZE saturates at UINT64_MAX (still compares as too big); a BDAT size
 *    that overflows is a syntax error.
 *  - Decoded ENVID, ORCPT and AUTH values must be printable ASCII: they are
 *    logged and written into queue files as C strings.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "msg.h"
#include "smtpproto.h"
#include "xalloc.h"
#include "xtext.h"

static int fail(struct smtpreply_err *err, int status, int code,
                const char *dsn, const char *text)
{
    err->code = code;
    err->dsn = dsn;
    err->text = text;
    return status;
}

/* ---- command lines ---- */

enum argpol { ARG_NONE, ARG_OPT, ARG_REQ };

static const struct verbinfo {
    const char     *name;
    enum smtpproto_verb  verb;
    enum argpol     arg;
    const char     *usage;
} verbs[] = {
    { "EHLO", SMTPP_VERB_EHLO, ARG_REQ, "Syntax: EHLO hostname" },
    { "HELO", SMTPP_VERB_HELO, ARG_REQ, "Syntax: HELO hostname" },
    { "MAIL", SMTPP_VERB_MAIL, ARG_REQ, "Syntax: MAIL FROM:<address>" },
    { "RCPT", SMTPP_VERB_RCPT, ARG_REQ, "Syntax: RCPT TO:<address>" },
    { "DATA", SMTPP_VERB_DATA, ARG_NONE, "Syntax: DATA" },
    { "BDAT", SMTPP_VERB_BDAT, ARG_REQ, "Syntax: BDAT size [LAST]" },
    { "RSET", SMTPP_VERB_RSET, ARG_NONE, "Syntax: RSET" },
    { "NOOP", SMTPP_VERB_NOOP, ARG_OPT, "Syntax: NOOP" },
    { "QUIT", SMTPP_VERB_QUIT, ARG_NONE, "Syntax: QUIT" },
    { "VRFY", SMTPP_VERB_VRFY, ARG_REQ, "Syntax: VRFY address" },
    { "HELP", SMTPP_VERB_HELP, ARG_OPT, "Syntax: HELP [topic]" },
    { "STARTTLS", SMTPP_VERB_STARTTLS, ARG_NONE, "Syntax: STARTTLS" },
    { "AUTH", SMTPP_VERB_AUTH, ARG_REQ, "Syntax: AUTH mechanism [initial-response]" },
};

int smtpproto_parse_cmd(const char *line, size_t len, struct smtpproto_cmd *cmd,
                        struct smtpreply_err *err)
{
    size_t body, vlen, i;

    cmd->verb = SMTPP_VERB_NONE;
    cmd->name = "";
    cmd->arg = NULL;
    cmd->arg_len = 0;
    if (len < 2 || line[len - 2] != '\r' || line[len - 1] != '\n') {
        if (len > 0 && (line[len - 1] == '\n' || memchr(line, '\r', len)))
            return fail(err, SMTPP_E_BAD_EOL, 500, "5.5.2", "bare <CR> or <LF> received");
        return fail(err, SMTPP_E_BAD_EOL, 500, "5.5.2", "command line not terminated by <CR><LF>");
    }
    body = len - 2;
    if (memchr(line, '\r', body) || memchr(line, '\n', body))
        return fail(err, SMTPP_E_BAD_EOL, 500, "5.5.2", "bare <CR> or <LF> received");
    if (memchr(line, '\0', body))
        return fail(err, SMTPP_E_BAD_EOL, 500, "5.5.2", "NUL character received");
    while (body > 0 && (line[body - 1] == ' ' || line[body - 1] == '\t'))
        body--;
    if (body == 0)
        return fail(err, SMTPP_E_UNKNOWN, 500, "5.5.2", "empty command");
    for (vlen = 0; vlen < body && line[vlen] != ' '; vlen++)
        ;
    for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (strlen(verbs[i].name) == vlen && strncasecmp(line, verbs[i].name, vlen) == 0)
            break;
    if (i == sizeof(verbs) / sizeof(verbs[0]))
        return fail(err, SMTPP_E_UNKNOWN, 500, "5.5.1", "command not recognized");
    if (vlen < body) {
        cmd->arg = line + vlen + 1;
        cmd->arg_len = body - vlen - 1;
    }
    if ((verbs[i].arg == ARG_NONE && cmd->arg_len > 0)
        || (verbs[i].arg == ARG_REQ && cmd->arg_len == 0)) {
        cmd->arg = NULL;
        cmd->arg_len = 0;
        return fail(err, SMTPP_E_SYNTAX, 501, "5.5.4", verbs[i].usage);
    }
    if (cmd->arg_len == 0)
        cmd->arg = NULL;
    cmd->verb = verbs[i].verb;
    cmd->name = verbs[i].name;
    return SMTPP_OK;
}

/* ---- character classes ---- */

static int is_alpha(int c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_letdig(int c) { return is_alpha(c) || is_digit(c); }

static int is_atext(int c)
{
    return is_letdig(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Length of the valid UTF-8 sequence (2..4 bytes, no overlongs, no
 * surrogates, <= U+10FFFF) at p, or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    size_t n, i;
    unsigned lo = 0x80, hi = 0xbf;

    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        n = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3;
        if (p[0] == 0xe0)
            lo = 0xa0;
        else if (p[0] == 0xed)
            hi = 0x9f;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4;
        if (p[0] == 0xf0)
            lo = 0x90;
        else if (p[0] == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if ((size_t)(end - p) < n)
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return n;
}

/* ---- paths ---- */

struct cur {
    const unsigned char *p, *end;
    bool utf8;                  /* non-ASCII seen */
};

static int peek(const struct cur *c)
{
    return c->p < c->end ? *c->p : -1;
}

/* Consume one non-ASCII UTF-8 character if there is one. */
static int take_utf8(struct cur *c, buf_t *to)
{
    size_t n;

    if (c->p >= c->end || *c->p < 0x80 || (n = utf8_seq(c->p, c->end)) == 0)
        return 0;
    if (to)
        buf_append(to, c->p, n);
    c->p += n;
    c->utf8 = true;
    return 1;
}

/* Domain = sub-domain *("." sub-domain); U-labels allowed (checked later). */
static int parse_domain(struct cur *c)
{
    for (;;) {
        int last = 0, any = 0;

        for (;;) {
            int ch = peek(c);

            if (ch >= 0 && is_letdig(ch)) {
                c->p++;
                last = 1;
            } else if (ch == '-' && any) {
                c->p++;
                last = 0;
            } else if (ch >= 0x80 && take_utf8(c, NULL)) {
                last = 1;
            } else
                break;
            any = 1;
        }
        if (!any || !last)
            return -1;
        if (peek(c) != '.')
            return 0;
        c->p++;
    }
}

/* "[" ( IPv4 / "IPv6:" IPv6 ) "]"; general literals refused. */
static int parse_literal(struct cur *c)
{
    const unsigned char *start = ++c->p, *close;
    size_t n;

    for (close = start; close < c->end && *close != ']'; close++)
        if (*close < 33 || *close > 126 || *close == '[' || *close == '\\')
            return -1;
    if (close == c->end)
        return -1;
    n = (size_t)(close - start);
    if (n > 5 && strncasecmp((const char *)start, "IPv6:", 5) == 0) {
        struct in6_addr a6;
        char *s = xstrndup((const char *)start + 5, n - 5);
        int ok = inet_pton(AF_INET6, s, &a6) == 1;

        free(s);
        if (!ok)
            return -1;
    } else {
        const unsigned char *q = start;
        int part;

        for (part = 0; part < 4; part++) {
            unsigned v = 0, d = 0;

            while (q < close && is_digit(*q) && d < 3) {
                v = v * 10 + (unsigned)(*q++ - '0');
                d++;
            }
            if (d == 0 || v > 255)
                return -1;
            if (part < 3) {
                if (q >= close || *q != '.')
                    return -1;
                q++;
            }
        }
        if (q != close)
            return -1;
    }
    c->p = close + 1;
    return 0;
}

/* Local-part into the decoded buf; returns -1 on bad syntax. */
static int parse_local(struct cur *c, buf_t *local)
{
    if (peek(c) == '"') {
        c->p++;
        for (;;) {
            int ch = peek(c);

            if (ch == '"') {
                c->p++;
                return 0;
            }
            if (ch == '\\') {
                c->p++;
                ch = peek(c);
                if (ch < 32 || ch > 126)
                    return -1;
                buf_putc(local, ch);
                c->p++;
            } else if ((ch >= 32 && ch <= 126)) {
                buf_putc(local, ch);
                c->p++;
            } else if (!take_utf8(c, local))
                return -1;
        }
    }
    for (;;) {
        int any = 0;

        for (;;) {
            int ch = peek(c);

            if (ch >= 0 && ch < 0x80 && is_atext(ch)) {
                buf_putc(local, ch);
                c->p++;
            } else if (!take_utf8(c, local))
                break;
            any = 1;
        }
        if (!any)
            return -1;
        if (peek(c) != '.')
            return 0;
        buf_putc(local, '.');
        c->p++;
    }
}

/* Parse "<...>" at c->p (which is '<').  Fills out->path. */
static int parse_path(struct cur *c, bool is_mail, const struct smtpproto_limits *lim,
                      struct smtpproto_path *path, struct smtpreply_err *err)
{
    const char *dsn = is_mail ? "5.1.7" : "5.1.3";
    const char *why = is_mail ? "Bad sender address syntax" : "Bad recipient address syntax";
    const unsigned char *start = c->p, *mbox, *lstart, *lend, *dstart = NULL, *dend = NULL;
    buf_t *local = buf_new(0);
    int r = SMTPP_E_SYNTAX;

    c->p++;
    if (peek(c) == '>') {
        if (!is_mail)
            goto out;
        c->p++;
        path->null = true;
        path->local = xstrdup("");
        path->domain = xstrdup("");
        path->addr = xstrdup("");
        buf_free(&local);
        return SMTPP_OK;
    }
    if (peek(c) == '@') {                       /* source route, ignored */
        for (;;) {
            c->p++;
            if (parse_domain(c) < 0)
                goto out;
            if (peek(c) == ':')
                break;
            if (peek(c) != ',')
                goto out;
            c->p++;
            if (peek(c) != '@')
                goto out;
        }
        c->p++;
    }
    mbox = lstart = c->p;
    if (parse_local(c, local) < 0)
        goto out;
    lend = c->p;
    if (peek(c) == '@') {
        c->p++;
        dstart = c->p;
        if (peek(c) == '[' ? parse_literal(c) < 0 : parse_domain(c) < 0)
            goto out;
        dend = c->p;
    } else if (is_mail || lstart != start + 1 || lend - lstart != 10
               || strncasecmp((const char *)lstart, "postmaster", 10) != 0)
        goto out;
    if (peek(c) != '>')
        goto out;
    c->p++;
    if ((size_t)(lend - lstart) > lim->local_max)
        why = "local part too long";
    else if (dstart && (size_t)(dend - dstart) > lim->domain_max)
        why = "domain too long";
    else if ((size_t)(c->p - start) > lim->path_max)
        why = "path too long";
    else
        why = NULL;
    if (why)
        goto out;
    path->utf8 = c->utf8;
    path->local = buf_steal(local, NULL);
    path->domain = dstart ? xstrndup((const char *)dstart, (size_t)(dend - dstart)) : xstrdup("");
    path->addr = xstrndup((const char *)mbox, (size_t)(c->p - 1 - mbox));
    r = SMTPP_OK;
out:
    buf_free(&local);
    if (r != SMTPP_OK)
        fail(err, r, 501, dsn, why);
    return r;
}

/* ---- parameters ---- */

/* Decode xtext that must yield non-empty printable ASCII. */
static char *smtpproto_xtext_printable(const char *s, size_t len)
{
    char *out;
    size_t n, i;

    if (xtext_decode(s, len, &out, &n) < 0)
        return NULL;
    for (i = 0; i < n; i++)
        if ((unsigned char)out[i] < 32 || (unsigned char)out[i] > 126)
            break;
    if (n == 0 || i < n)
        xfree(&out);
    return out;
}

static int eqword(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

static const struct paraminfo {
    const char *name;
    unsigned    bit;        /* SMTPP_P_* */
    unsigned    ext;        /* any of these must be offered */
    bool        mail;       /* MAIL (else RCPT) */
} params[] = {
    { "SIZE", SMTPP_P_SIZE, SMTPEXT_SIZE, true },
    { "BODY", SMTPP_P_BODY, SMTPEXT_8BITMIME | SMTPEXT_BINARYMIME, true },
    { "SMTPUTF8", SMTPP_P_SMTPUTF8, SMTPEXT_SMTPUTF8, true },
    { "RET", SMTPP_P_RET, SMTPEXT_DSN, true },
    { "ENVID", SMTPP_P_ENVID, SMTPEXT_DSN, true },
    { "AUTH", SMTPP_P_AUTH, SMTPEXT_AUTH, true },
    { "NOTIFY", SMTPP_P_NOTIFY, SMTPEXT_DSN, false },
    { "ORCPT", SMTPP_P_ORCPT, SMTPEXT_DSN, false },
};

#define PFAIL(text) fail(err, SMTPP_E_PARAM, 555, "5.5.4", (text))

static int parse_notify(const char *v, size_t vlen, unsigned *out, struct smtpreply_err *err)
{
    size_t i = 0;

    *out = 0;
    while (i <= vlen) {
        size_t j = i;
        unsigned bit;

        while (j < vlen && v[j] != ',')
            j++;
        if (eqword(v + i, j - i, "NEVER"))
            bit = SMTPP_NOTIFY_NEVER;
        else if (eqword(v + i, j - i, "SUCCESS"))
            bit = SMTPP_NOTIFY_SUCCESS;
        else if (eqword(v + i, j - i, "FAILURE"))
            bit = SMTPP_NOTIFY_FAILURE;
        else if (eqword(v + i, j - i, "DELAY"))
            bit = SMTPP_NOTIFY_DELAY;
        else
            return PFAIL("Bad NOTIFY parameter value");
        if (*out & bit)
            return PFAIL("Bad NOTIFY parameter value");
        *out |= bit;
        i = j + 1;
    }
    if ((*out & SMTPP_NOTIFY_NEVER) && *out != SMTPP_NOTIFY_NEVER)
        return PFAIL("NOTIFY=NEVER cannot be combined");
    return SMTPP_OK;
}

static int parse_one_param(const struct paraminfo *pi, const char *v, size_t vlen, bool has_v,
                           unsigned flags, const struct smtpproto_limits *lim,
                           struct smtpproto_params *sp, struct smtpreply_err *err)
{
    size_t i;

    if (pi->bit == SMTPP_P_SMTPUTF8) {
        if (has_v)
            return PFAIL("SMTPUTF8 takes no value");
        sp->smtputf8 = true;
        return SMTPP_OK;
    }
    if (!has_v)
        return PFAIL("parameter requires a value");
    switch (pi->bit) {
    case SMTPP_P_SIZE:
        if (vlen > 20)
            return PFAIL("Bad SIZE parameter value");
        sp->size = 0;
        for (i = 0; i < vlen; i++) {
            unsigned d;

            if (!is_digit(v[i]))
                return PFAIL("Bad SIZE parameter value");
            d = (unsigned)(v[i] - '0');
            sp->size = sp->size > (UINT64_MAX - d) / 10 ? UINT64_MAX : sp->size * 10 + d;
        }
        return SMTPP_OK;
    case SMTPP_P_BODY:
        if (eqword(v, vlen, "7BIT"))
            sp->body = SMTPP_BODY_7BIT;
        else if (eqword(v, vlen, "8BITMIME") && (flags & SMTPEXT_8BITMIME))
            sp->body = SMTPP_BODY_8BITMIME;
        else if (eqword(v, vlen, "BINARYMIME") && (flags & SMTPEXT_BINARYMIME))
            sp->body = SMTPP_BODY_BINARYMIME;
        else
            return PFAIL("Bad BODY parameter value");
        return SMTPP_OK;
    case SMTPP_P_RET:
        if (eqword(v, vlen, "FULL"))
            sp->ret = SMTPP_RET_FULL;
        else if (eqword(v, vlen, "HDRS"))
            sp->ret = SMTPP_RET_HDRS;
        else
            return PFAIL("Bad RET parameter value");
        return SMTPP_OK;
    case SMTPP_P_ENVID:
        if (vlen > lim->envid_max || (sp->envid = smtpproto_xtext_printable(v, vlen)) == NULL)
            return PFAIL("Bad ENVID parameter value");
        return SMTPP_OK;
    case SMTPP_P_AUTH:
        if (eqword(v, vlen, "<>")) {
            sp->auth_null = true;
            return SMTPP_OK;
        }
        if ((sp->auth = smtpproto_xtext_printable(v, vlen)) == NULL)
            return PFAIL("Bad AUTH parameter value");
        return SMTPP_OK;
    case SMTPP_P_NOTIFY:
        return parse_notify(v, vlen, &sp->notify, err);
    case SMTPP_P_ORCPT:
        for (i = 0; i < vlen && v[i] != ';'; i++)
            if (!is_atext((unsigned char)v[i]))
                break;
        if (vlen > lim->orcpt_max || i == 0 || i == vlen || v[i] != ';'
            || (sp->orcpt_addr = smtpproto_xtext_printable(v + i + 1, vlen - i - 1)) == NULL)
            return PFAIL("Bad ORCPT parameter value");
        sp->orcpt_type = xstrndup(v, i);
        return SMTPP_OK;
    }
    msg_panic("smtpproto: parameter table out of sync");
}

/* esmtp-param *(SP esmtp-param), several SP tolerated. */
static int parse_params(const char *s, size_t len, bool is_mail, unsigned flags,
                        const struct smtpproto_limits *lim, struct smtpproto_params *sp,
                        struct smtpreply_err *err)
{
    size_t i = 0;

    while (i < len) {
        size_t k, klen, vstart = 0, vlen = 0, p;
        bool has_v = false;
        int r;

        if (s[i] == ' ') {
            i++;
            continue;
        }
        for (k = i; k < len && (is_letdig((unsigned char)s[k]) || (k > i && s[k] == '-')); k++)
            ;
        klen = k - i;
        if (klen == 0 || (k < len && s[k] != ' ' && s[k] != '='))
            return PFAIL("Bad parameter syntax");
        if (k < len && s[k] == '=') {
            has_v = true;
            vstart = ++k;
            while (k < len && s[k] != ' ') {
                unsigned char ch = (unsigned char)s[k];

                if (ch < 33 || ch > 126 || ch == '=')
                    return PFAIL("Bad parameter syntax");
                k++;
            }
            vlen = k - vstart;
            if (vlen == 0)
                return PFAIL("Bad parameter syntax");
        }
        for (p = 0; p < sizeof(params) / sizeof(params[0]); p++)
            if (eqword(s + i, klen, params[p].name))
                break;
        if (p == sizeof(params) / sizeof(params[0]) || !(params[p].ext & flags))
            return PFAIL("Unsupported parameter");
        if (params[p].mail != is_mail)
            return PFAIL(is_mail ? "Parameter not allowed with MAIL" : "Parameter not allowed with RCPT");
        if (sp->seen & params[p].bit)
            return PFAIL("Duplicate parameter");
        sp->seen |= params[p].bit;
        if ((r = parse_one_param(&params[p], s + vstart, vlen, has_v, flags, lim, sp, err)) != SMTPP_OK)
            return r;
        i = k;
    }
    return SMTPP_OK;
}

void smtpproto_addrcmd_clear(struct smtp_addrcmd *ac)
{
    xfree(&ac->path.local);
    xfree(&ac->path.domain);
    xfree(&ac->path.addr);
    xfree(&ac->params.envid);
    xfree(&ac->params.auth);
    xfree(&ac->params.orcpt_type);
    xfree(&ac->params.orcpt_addr);
    memset(ac, 0, sizeof(*ac));
}

static int parse_addrcmd(bool is_mail, const char *arg, size_t len, unsigned flags,
                         const struct smtpproto_limits *lim,
                         struct smtp_addrcmd *out, struct smtpreply_err *err)
{
    const char *kw = is_mail ? "FROM:" : "TO:";
    size_t kwlen = strlen(kw);
    struct cur c;
    int r;

    memset(out, 0, sizeof(*out));
    if (arg == NULL || len < kwlen || strncasecmp(arg, kw, kwlen) != 0)
        return fail(err, SMTPP_E_SYNTAX, 501, "5.5.4",
                    is_mail ? "Syntax: MAIL FROM:<address>" : "Syntax: RCPT TO:<address>");
    c.p = (const unsigned char *)arg + kwlen;
    c.end = (const unsigned char *)arg + len;
    c.utf8 = false;
    while (peek(&c) == ' ')
        c.p++;
    if (peek(&c) != '<')
        return fail(err, SMTPP_E_SYNTAX, 501, "5.5.4",
                    is_mail ? "Syntax: MAIL FROM:<address>" : "Syntax: RCPT TO:<address>");
    if ((r = parse_path(&c, is_mail, lim, &out->path, err)) != SMTPP_OK)
        goto bad;
    if (c.p < c.end && *c.p != ' ') {
        r = fail(err, SMTPP_E_SYNTAX, 501, is_mail ? "5.1.7" : "5.1.3",
                 is_mail ? "Bad sender address syntax" : "Bad recipient address syntax");
        goto bad;
    }
    if ((r = parse_params((const char *)c.p, (size_t)(c.end - c.p), is_mail,
                          flags, lim, &out->params, err)) != SMTPP_OK)
        goto bad;
    if (out->path.utf8 && !(is_mail ? out->params.smtputf8 : (flags & SMTPP_F_UTF8) != 0)) {
        r = fail(err, SMTPP_E_UTF8, 553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
        goto bad;
    }
    return SMTPP_OK;
bad:
    smtpproto_addrcmd_clear(out);
    return r;
}

int smtpproto_parse_mail(const char *arg, size_t len, unsigned flags,
                         const struct smtpproto_limits *lim,
                         struct smtp_addrcmd *out, struct smtpreply_err *err)
{
    return parse_addrcmd(true, arg, len, flags, lim, out, err);
}

int smtpproto_parse_rcpt(const char *arg, size_t len, unsigned flags,
                         const struct smtpproto_limits *lim,
                         struct smtp_addrcmd *out, struct smtpreply_err *err)
{
    return parse_addrcmd(false, arg, len, flags, lim, out, err);
}

/* ---- BDAT ---- */

int smtpproto_parse_bdat(const char *arg, size_t len, uint64_t *size, bool *last,
                         struct smtpreply_err *err)
{
    size_t i = 0;
    uint64_t v = 0;

    *size = 0;
    *last = false;
    if (arg == NULL)
        len = 0;
    while (i < len && is_digit(arg[i])) {
        unsigned d = (unsigned)(arg[i] - '0');

        if (v > (UINT64_MAX - d) / 10)
            return fail(err, SMTPP_E_SYNTAX, 501, "5.5.4", "BDAT chunk size too large");
        v = v * 10 + d;
        i++;
    }
    if (i == 0)
        return fail(err, SMTPP_E_SYNTAX, 501, "5.5.4", "Syntax: BDAT size [LAST]");
    if (i < len) {
        if (arg[i] != ' ' || !eqword(arg + i + 1, len - i - 1, "LAST"))
            return fail(err, SMTPP_E_SYNTAX, 501, "5.5.4", "Syntax: BDAT size [LAST]");
        *last = true;
    }
    *size = v;
    return SMTPP_OK;
}
