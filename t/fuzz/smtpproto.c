/*
 * t/fuzz/smtpproto.c - libFuzzer harness for lib/smtpproto.c, the SMTP
 * server's command parsers: command lines, MAIL/RCPT paths and ESMTP
 * parameters, BDAT arguments.  (The BDAT content is t/fuzz/smtpcontent.c.)
 *
 * Input layout: byte 0 picks the offered extensions (its low six bits are
 * SMTPEXT_SIZE .. SMTPEXT_AUTH) and bit 6 SMTPP_F_UTF8; byte 1 picks the
 * path limits (0: RFC 5321's, else small ones); the rest is one command
 * line as stream_getline() would return it.  It is parsed as a command,
 * and its argument (if MAIL, RCPT or BDAT) as such; the rest without a
 * trailing CRLF is also given straight to the MAIL, RCPT and BDAT parsers.
 *
 * Promises checked (a broken one aborts):
 *  - a command is accepted only if it ends in CRLF with no other CR, LF or
 *    NUL; its argument lies inside the line, without trailing SP/HTAB;
 *  - every error is a 5xx with a dsn and a fixed printable text, and the
 *    reply smtpreply_format_err() makes of it parses back (lib/smtpreply)
 *    to the same code and enhanced code;
 *  - a refused MAIL/RCPT leaves nothing behind; an accepted one has a path
 *    within the limits, no CR/LF, UTF-8 only where allowed, parameters
 *    only of offered extensions and of the right command, printable
 *    decoded values, and reads back the same when its address is put in
 *    a fresh "FROM:<...>" / "TO:<...>"; ENVID, AUTH and ORCPT values
 *    survive an xtext encode and decode;
 *  - BDAT agrees with a model: digits, optionally SP "LAST" (any case),
 *    the number fitting in 64 bits.
 * Leaks are found by ASan.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "fuzzlib.h"
#include "smtpproto.h"
#include "smtpreply.h"
#include "xalloc.h"
#include "xtext.h"

static void check_err(const struct smtpreply_err *e, const char *what)
{
    smtpreply_parser_t *p;
    const struct smtpreply *r = NULL;
    buf_t *b;
    size_t used;

    if (e->code < 500 || e->code > 555 || e->dsn == NULL || e->text == NULL
        || e->dsn[0] != '5' || e->text[0] == '\0')
        fuzz_fail("%s: bad error %d", what, e->code);
    for (const char *t = e->text; *t; t++)
        if ((unsigned char)*t < 32 || (unsigned char)*t > 126)
            fuzz_fail("%s: unprintable error text", what);
    b = buf_new(0);
    if (smtpreply_format_err(b, e) < 0)
        fuzz_fail("%s: cannot format the error", what);
    p = smtpreply_parser_new(NULL);
    if (smtpreply_parse(p, b->data, b->len, &used, &r, NULL) != SMTPREPLY_DONE
        || used != b->len || r->code != e->code || strcmp(r->dsn, e->dsn) != 0)
        fuzz_fail("%s: error reply '%s' does not parse back", what, buf_cstr(b));
    smtpreply_parser_free(&p);
    buf_free(&b);
}

static void check_printable(const char *s, const char *what)
{
    if (s == NULL)
        return;
    if (*s == '\0')
        fuzz_fail("%s: empty", what);
    for (; *s; s++)
        if ((unsigned char)*s < 32 || (unsigned char)*s > 126)
            fuzz_fail("%s: not printable ASCII", what);
}

/* An xtext value survives encode + decode. */
static void check_xtext(const char *s)
{
    buf_t *b;
    char *back = NULL;

    if (s == NULL)
        return;
    b = buf_new(0);
    if (xtext_encode(b, s, strlen(s)) < 0 || xtext_decode(b->data, b->len, &back, NULL) < 0
        || strcmp(back, s) != 0)
        fuzz_fail("xtext round trip of '%s'", s);
    free(back);
    buf_free(&b);
}

static void check_addrcmd(bool is_mail, const char *arg, size_t len, unsigned flags,
                          const struct smtpproto_limits *lim, bool reparse);

/* The accepted address, put in a fresh command, parses to the same path.
 * (utf8 may differ one way: it also covers UTF-8 in a source route, which
 * the address no longer has.) */
static void reparse(bool is_mail, const struct smtp_addrcmd *ac, unsigned flags,
                    const struct smtpproto_limits *lim)
{
    struct smtp_addrcmd again;
    struct smtpreply_err e;
    char *arg;
    int r;

    if (is_mail) {
        flags |= SMTPEXT_SMTPUTF8;
        arg = xasprintf("FROM:<%s>%s", ac->path.addr, ac->path.utf8 ? " SMTPUTF8" : "");
        r = smtpproto_parse_mail(arg, strlen(arg), flags, lim, &again, &e);
    } else {
        arg = xasprintf("TO:<%s>", ac->path.addr);
        r = smtpproto_parse_rcpt(arg, strlen(arg), flags | SMTPP_F_UTF8, lim, &again, &e);
    }
    if (r != SMTPP_OK)
        fuzz_fail("'%s' does not parse again: %d %s", arg, e.code, e.text);
    if (strcmp(again.path.local, ac->path.local) != 0
        || strcmp(again.path.domain, ac->path.domain) != 0
        || strcmp(again.path.addr, ac->path.addr) != 0 || again.path.null != ac->path.null
        || (again.path.utf8 && !ac->path.utf8))
        fuzz_fail("'%s' parses to another path", arg);
    smtpproto_addrcmd_clear(&again);
    free(arg);
}

static void check_addrcmd(bool is_mail, const char *arg, size_t len, unsigned flags,
                          const struct smtpproto_limits *lim, bool again)
{
    struct smtp_addrcmd ac;
    struct smtpreply_err e = { 0, NULL, NULL };
    const struct smtpproto_params *sp = &ac.params;
    unsigned ext_of[8] = { SMTPEXT_SIZE, SMTPEXT_8BITMIME | SMTPEXT_BINARYMIME,
                           SMTPEXT_SMTPUTF8, SMTPEXT_DSN, SMTPEXT_DSN, SMTPEXT_AUTH,
                           SMTPEXT_DSN, SMTPEXT_DSN };
    int r = is_mail ? smtpproto_parse_mail(arg, len, flags, lim, &ac, &e)
                    : smtpproto_parse_rcpt(arg, len, flags, lim, &ac, &e);

    if (r != SMTPP_OK) {
        if (ac.path.local || ac.path.domain || ac.path.addr || sp->seen || sp->envid
            || sp->auth || sp->orcpt_type || sp->orcpt_addr)
            fuzz_fail("refused MAIL/RCPT left something behind");
        if (r != SMTPP_E_SYNTAX && r != SMTPP_E_PARAM && r != SMTPP_E_UTF8)
            fuzz_fail("MAIL/RCPT status %d", r);
        check_err(&e, is_mail ? "MAIL" : "RCPT");
        return;
    }
    if (!ac.path.local || !ac.path.domain || !ac.path.addr)
        fuzz_fail("accepted path with a NULL part");
    if (ac.path.null && (!is_mail || *ac.path.addr || *ac.path.local || *ac.path.domain))
        fuzz_fail("bad null path");
    if (strlen(ac.path.addr) + 2 > lim->path_max || strlen(ac.path.domain) > lim->domain_max
        || strlen(ac.path.addr) > len)
        fuzz_fail("accepted path over its limits");
    if (strpbrk(ac.path.addr, "\r\n") || strpbrk(ac.path.local, "\r\n")
        || strpbrk(ac.path.domain, "\r\n <>"))
        fuzz_fail("accepted path with CR, LF or a bad domain character");
    for (const char *q = ac.path.addr; *q; q++)
        if ((unsigned char)*q >= 0x80 && !ac.path.utf8)
            fuzz_fail("non-ASCII address without the utf8 mark");
    if (ac.path.utf8 && !(is_mail ? sp->smtputf8 && (flags & SMTPEXT_SMTPUTF8)
                                  : (flags & SMTPP_F_UTF8) != 0))
        fuzz_fail("UTF-8 address accepted without SMTPUTF8");
    if (!is_mail && *ac.path.domain == '\0' && strcasecmp(ac.path.addr, "postmaster") != 0)
        fuzz_fail("RCPT without a domain that is not <postmaster>");
    for (unsigned i = 0; i < 8; i++)
        if ((sp->seen & (1u << i)) && !(flags & ext_of[i]))
            fuzz_fail("parameter %u of an extension not offered", i);
    if (sp->seen & (is_mail ? (SMTPP_P_NOTIFY | SMTPP_P_ORCPT)
                            : (SMTPP_P_SIZE | SMTPP_P_BODY | SMTPP_P_SMTPUTF8 | SMTPP_P_RET
                               | SMTPP_P_ENVID | SMTPP_P_AUTH)))
        fuzz_fail("parameter of the other command");
    if ((sp->notify & SMTPP_NOTIFY_NEVER) && sp->notify != SMTPP_NOTIFY_NEVER)
        fuzz_fail("NOTIFY=NEVER combined");
    if (sp->envid && strlen(sp->envid) > lim->envid_max)
        fuzz_fail("ENVID over its limit");
    if ((sp->orcpt_type == NULL) != (sp->orcpt_addr == NULL))
        fuzz_fail("half an ORCPT");
    check_printable(sp->envid, "ENVID");
    check_printable(sp->auth, "AUTH");
    check_printable(sp->orcpt_addr, "ORCPT");
    check_xtext(sp->envid);
    check_xtext(sp->auth);
    check_xtext(sp->orcpt_addr);
    if (again)
        reparse(is_mail, &ac, flags, lim);
    smtpproto_addrcmd_clear(&ac);
}

static void check_bdat(const char *arg, size_t len)
{
    struct smtpreply_err e = { 0, NULL, NULL };
    uint64_t size = 7, want = 0;
    bool last = true, want_last = false, good = true;
    size_t i = 0;
    int r = smtpproto_parse_bdat(arg, len, &size, &last, &e);

    while (i < len && arg[i] >= '0' && arg[i] <= '9') {
        unsigned d = (unsigned)(arg[i] - '0');

        if (want > (UINT64_MAX - d) / 10)
            good = false;
        want = want * 10 + d;
        i++;
    }
    if (i == 0)
        good = false;
    else if (i < len) {
        want_last = len - i == 5 && strncasecmp(arg + i, " LAST", 5) == 0;
        good = good && want_last;
    }
    if (good != (r == SMTPP_OK))
        fuzz_fail("BDAT verdict %d, model %d", r, good);
    if (r == SMTPP_OK && (size != want || last != want_last))
        fuzz_fail("BDAT %llu %d, model %llu %d", (unsigned long long)size, last,
                  (unsigned long long)want, want_last);
    if (r != SMTPP_OK) {
        if (size != 0 || last || r != SMTPP_E_SYNTAX || e.code != 501)
            fuzz_fail("refused BDAT: outputs not cleared");
        check_err(&e, "BDAT");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtpproto_limits rfc = SMTPPROTO_LIMITS_RFC, lim;
    struct smtpproto_cmd cmd;
    struct smtpreply_err e = { 0, NULL, NULL };
    const char *line;
    size_t len, alen;
    unsigned flags;
    int r;

    if (size < 2)
        return 0;
    flags = (data[0] & 0x3fu) | ((data[0] & 0x40u) ? SMTPP_F_UTF8 : 0);
    if (data[1] == 0)
        lim = rfc;
    else
        lim = (struct smtpproto_limits){ 1 + data[1] % 16, 3 + data[1] % 32, 5 + data[1] % 64,
                                         data[1] % 8, data[1] % 24 };
    line = (const char *)data + 2;
    len = size - 2;

    r = smtpproto_parse_cmd(line, len, &cmd, &e);
    if (r == SMTPP_OK) {
        if (len < 2 || line[len - 2] != '\r' || line[len - 1] != '\n'
            || memchr(line, '\r', len - 2) || memchr(line, '\n', len - 2)
            || memchr(line, '\0', len - 2))
            fuzz_fail("command accepted with bad line ends or NUL");
        if (cmd.verb == SMTPP_VERB_NONE || cmd.name == NULL || cmd.name[0] == '\0')
            fuzz_fail("accepted command without a verb");
        if ((cmd.arg == NULL) != (cmd.arg_len == 0))
            fuzz_fail("argument pointer and length disagree");
        if (cmd.arg && (cmd.arg < line || cmd.arg + cmd.arg_len > line + len - 2
                        || cmd.arg[cmd.arg_len - 1] == ' ' || cmd.arg[cmd.arg_len - 1] == '\t'))
            fuzz_fail("argument outside the line or with trailing blanks");
        if (strncasecmp(line, cmd.name, strlen(cmd.name)) != 0)
            fuzz_fail("verb name does not match the line");
        if (cmd.verb == SMTPP_VERB_MAIL || cmd.verb == SMTPP_VERB_RCPT)
            check_addrcmd(cmd.verb == SMTPP_VERB_MAIL, cmd.arg, cmd.arg_len, flags, &lim, true);
        else if (cmd.verb == SMTPP_VERB_BDAT)
            check_bdat(cmd.arg, cmd.arg_len);
    } else {
        if (cmd.verb != SMTPP_VERB_NONE || cmd.arg != NULL || cmd.arg_len != 0)
            fuzz_fail("refused command with a verb or argument");
        if (r != SMTPP_E_BAD_EOL && r != SMTPP_E_UNKNOWN && r != SMTPP_E_SYNTAX)
            fuzz_fail("command status %d", r);
        check_err(&e, "command");
    }

    /* The argument parsers on the bytes themselves. */
    alen = len >= 2 && line[len - 2] == '\r' && line[len - 1] == '\n' ? len - 2 : len;
    check_addrcmd(true, line, alen, flags, &lim, true);
    check_addrcmd(false, line, alen, flags, &lim, true);
    check_bdat(line, alen);
    return 0;
}
