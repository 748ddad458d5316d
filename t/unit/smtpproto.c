/*
 * t/unit/smtpproto.c - unit tests for lib/smtpproto.c (SMTP command lines,
 * MAIL/RCPT paths and ESMTP parameters, BDAT).
 *
 * Covers every verb and its argument rule, every line-ending error, the
 * RFC 5321 path grammar edge cases (source routes, quoted local parts,
 * address literals, length limits as parameters, UTF-8 only with
 * SMTPUTF8), every parameter and every error code, and the BDAT argument.
 * Replies are t/unit/smtpreply.c, the DATA reader t/unit/smtpdata.c, xtext
 * t/unit/xtext.c.  alarm() guards against hangs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "msg.h"
#include "smtpproto.h"
#include "xalloc.h"
#include "../lib/tap.h"

static const struct smtpproto_limits rfc = SMTPPROTO_LIMITS_RFC;

/* ---- command lines ---- */

static int cmd(const char *line, struct smtpproto_cmd *c, struct smtpreply_err *e)
{
    return smtpproto_parse_cmd(line, strlen(line), c, e);
}

static void check_verb(const char *line, enum smtpproto_verb v, const char *arg)
{
    struct smtpproto_cmd c;
    struct smtpreply_err e;
    int r = cmd(line, &c, &e);
    char *got = c.arg ? xstrndup(c.arg, c.arg_len) : NULL;

    is_int(r, SMTPP_OK, "parse %.*s", (int)strcspn(line, "\r\n"), line);
    is_int(c.verb, v, "  verb");
    is_str(got, arg, "  argument");
    free(got);
}

static void check_cmd_err(const char *desc, const char *line, size_t len, int status,
                          int code, const char *dsn)
{
    struct smtpproto_cmd c;
    struct smtpreply_err e = { 0, NULL, NULL };
    int r = smtpproto_parse_cmd(line, len, &c, &e);

    is_int(r, status, "%s: status", desc);
    is_int(e.code, code, "%s: code", desc);
    is_str(e.dsn, dsn, "%s: dsn", desc);
    ok(c.verb == SMTPP_VERB_NONE && c.arg == NULL, "%s: no verb", desc);
}

static void test_commands(void)
{
    struct smtpproto_cmd c;
    struct smtpreply_err e;

    check_verb("EHLO mx.example.org\r\n", SMTPP_VERB_EHLO, "mx.example.org");
    check_verb("helo mx\r\n", SMTPP_VERB_HELO, "mx");
    check_verb("MAIL FROM:<a@b>\r\n", SMTPP_VERB_MAIL, "FROM:<a@b>");
    check_verb("rCpT TO:<a@b> NOTIFY=NEVER\r\n", SMTPP_VERB_RCPT, "TO:<a@b> NOTIFY=NEVER");
    check_verb("DATA\r\n", SMTPP_VERB_DATA, NULL);
    check_verb("BDAT 10 LAST\r\n", SMTPP_VERB_BDAT, "10 LAST");
    check_verb("RSET\r\n", SMTPP_VERB_RSET, NULL);
    check_verb("NOOP\r\n", SMTPP_VERB_NOOP, NULL);
    check_verb("noop anything goes\r\n", SMTPP_VERB_NOOP, "anything goes");
    check_verb("QUIT\r\n", SMTPP_VERB_QUIT, NULL);
    check_verb("VRFY root\r\n", SMTPP_VERB_VRFY, "root");
    check_verb("HELP\r\n", SMTPP_VERB_HELP, NULL);
    check_verb("HELP MAIL\r\n", SMTPP_VERB_HELP, "MAIL");
    check_verb("StartTLS\r\n", SMTPP_VERB_STARTTLS, NULL);
    check_verb("AUTH PLAIN AGZvbwBiYXI=\r\n", SMTPP_VERB_AUTH, "PLAIN AGZvbwBiYXI=");
    check_verb("QUIT \t \r\n", SMTPP_VERB_QUIT, NULL);
    check_verb("EHLO x \t\r\n", SMTPP_VERB_EHLO, "x");
    cmd("data\r\n", &c, &e);
    is_str(c.name, "DATA", "canonical verb name");

    /* line endings */
    check_cmd_err("bare LF", "NOOP\n", 5, SMTPP_E_BAD_EOL, 500, "5.5.2");
    check_cmd_err("bare CR at end", "NOOP\r", 5, SMTPP_E_BAD_EOL, 500, "5.5.2");
    check_cmd_err("bare CR inside", "NO\rOP\r\n", 7, SMTPP_E_BAD_EOL, 500, "5.5.2");
    check_cmd_err("bare LF inside", "NOOP\nQUIT\r\n", 11, SMTPP_E_BAD_EOL, 500, "5.5.2");
    check_cmd_err("CR CR LF", "NOOP\r\r\n", 7, SMTPP_E_BAD_EOL, 500, "5.5.2");
    check_cmd_err("no terminator", "NOOP", 4, SMTPP_E_BAD_EOL, 500, "5.5.2");
    check_cmd_err("zero length", "", 0, SMTPP_E_BAD_EOL, 500, "5.5.2");
    check_cmd_err("NUL in line", "NOOP\0x\r\n", 8, SMTPP_E_BAD_EOL, 500, "5.5.2");
    smtpproto_parse_cmd("NOOP\n", 5, &c, &e);
    like(e.text, "bare <CR> or <LF>", "bare LF reason");
    smtpproto_parse_cmd("NOOP", 4, &c, &e);
    like(e.text, "not terminated", "no CRLF reason");

    /* unknown and empty */
    check_cmd_err("unknown verb", "FOO bar\r\n", 9, SMTPP_E_UNKNOWN, 500, "5.5.1");
    check_cmd_err("verb glued to arg", "MAILFROM:<a@b>\r\n", 16, SMTPP_E_UNKNOWN, 500, "5.5.1");
    check_cmd_err("verb prefix", "EHL x\r\n", 7, SMTPP_E_UNKNOWN, 500, "5.5.1");
    check_cmd_err("verb longer", "QUITT\r\n", 7, SMTPP_E_UNKNOWN, 500, "5.5.1");
    check_cmd_err("leading space", " QUIT\r\n", 7, SMTPP_E_UNKNOWN, 500, "5.5.1");
    check_cmd_err("tab separator", "EHLO\tx\r\n", 8, SMTPP_E_UNKNOWN, 500, "5.5.1");
    check_cmd_err("empty line", "\r\n", 2, SMTPP_E_UNKNOWN, 500, "5.5.2");
    check_cmd_err("blank line", "  \r\n", 4, SMTPP_E_UNKNOWN, 500, "5.5.2");
    check_cmd_err("high bytes", "\xc3\xa9HLO x\r\n", 9, SMTPP_E_UNKNOWN, 500, "5.5.1");

    /* argument rules */
    check_cmd_err("DATA with arg", "DATA x\r\n", 8, SMTPP_E_SYNTAX, 501, "5.5.4");
    check_cmd_err("RSET with arg", "RSET x\r\n", 8, SMTPP_E_SYNTAX, 501, "5.5.4");
    check_cmd_err("QUIT with arg", "QUIT now\r\n", 10, SMTPP_E_SYNTAX, 501, "5.5.4");
    check_cmd_err("STARTTLS with arg", "STARTTLS x\r\n", 12, SMTPP_E_SYNTAX, 501, "5.5.4");
    check_cmd_err("EHLO without arg", "EHLO\r\n", 6, SMTPP_E_SYNTAX, 501, "5.5.4");
    check_cmd_err("EHLO with only SP", "EHLO \r\n", 7, SMTPP_E_SYNTAX, 501, "5.5.4");
    check_cmd_err("HELO without arg", "HELO\r\n", 6, SMTPP_E_SYNTAX, 501, "5.5.4");
    check_cmd_err("MAIL without arg", "MAIL\r\n", 6, SMTPP_E_SYNTAX, 501, "5.5.4");
    check_cmd_err("RCPT without arg", "RCPT\r\n", 6, SMTPP_E_SYNTAX, 501, "5.5.4");
    check_cmd_err("BDAT without arg", "BDAT\r\n", 6, SMTPP_E_SYNTAX, 501, "5.5.4");
    check_cmd_err("VRFY without arg", "VRFY\r\n", 6, SMTPP_E_SYNTAX, 501, "5.5.4");
    check_cmd_err("AUTH without arg", "AUTH\r\n", 6, SMTPP_E_SYNTAX, 501, "5.5.4");
    cmd("EHLO\r\n", &c, &e);
    is_str(e.text, "Syntax: EHLO hostname", "usage text in reason");
}

/* ---- MAIL / RCPT ---- */

static int mail(const char *arg, unsigned flags, struct smtp_addrcmd *ac, struct smtpreply_err *e)
{
    return smtpproto_parse_mail(arg, strlen(arg), flags, &rfc, ac, e);
}

static int rcpt(const char *arg, unsigned flags, struct smtp_addrcmd *ac, struct smtpreply_err *e)
{
    return smtpproto_parse_rcpt(arg, strlen(arg), flags, &rfc, ac, e);
}

/* Expect success; check the decoded local part and domain. */
static void good(bool is_mail, const char *arg, unsigned flags, const char *local,
                 const char *domain)
{
    struct smtp_addrcmd ac;
    struct smtpreply_err e = { 0, NULL, NULL };
    int r = is_mail ? mail(arg, flags, &ac, &e) : rcpt(arg, flags, &ac, &e);

    if (!ok(r == SMTPP_OK, "%s %s accepted", is_mail ? "MAIL" : "RCPT", arg))
        diag("  %d %s %s", e.code, e.dsn, e.text);
    is_str(ac.path.local, local, "  local part");
    is_str(ac.path.domain, domain, "  domain");
    smtpproto_addrcmd_clear(&ac);
}

/* Expect an error with this status, code and dsn; out must be cleared. */
static void bad(bool is_mail, const char *arg, unsigned flags, int status, int code,
                const char *dsn)
{
    struct smtp_addrcmd ac;
    struct smtpreply_err e = { 0, NULL, NULL };
    int r = is_mail ? mail(arg, flags, &ac, &e) : rcpt(arg, flags, &ac, &e);

    is_int(r, status, "%s %s refused", is_mail ? "MAIL" : "RCPT", arg);
    is_int(e.code, code, "  code");
    is_str(e.dsn, dsn, "  dsn");
    ok(ac.path.local == NULL && ac.params.seen == 0 && ac.params.envid == NULL,
       "  nothing left in the result");
    smtpproto_addrcmd_clear(&ac);
}

#define GOODM(a, l, d)  good(true, a, SMTPEXT_ALL, l, d)
#define GOODR(a, l, d)  good(false, a, SMTPEXT_ALL, l, d)
#define BADM(a)         bad(true, a, SMTPEXT_ALL, SMTPP_E_SYNTAX, 501, "5.1.7")
#define BADR(a)         bad(false, a, SMTPEXT_ALL, SMTPP_E_SYNTAX, 501, "5.1.3")
#define SYNM(a)         bad(true, a, SMTPEXT_ALL, SMTPP_E_SYNTAX, 501, "5.5.4")
#define SYNR(a)         bad(false, a, SMTPEXT_ALL, SMTPP_E_SYNTAX, 501, "5.5.4")
#define PARM(a)         bad(true, a, SMTPEXT_ALL, SMTPP_E_PARAM, 555, "5.5.4")
#define PARR(a)         bad(false, a, SMTPEXT_ALL, SMTPP_E_PARAM, 555, "5.5.4")

static char *repeat(int ch, size_t n)
{
    char *s = xmalloc(n + 1);

    memset(s, ch, n);
    s[n] = '\0';
    return s;
}

/* A domain of exactly n bytes (labels of <= 63, n >= 3). */
static char *domain_of(size_t n)
{
    char *s = repeat('a', n);
    size_t i;

    for (i = 60; i + 2 < n; i += 61)
        s[i] = '.';
    return s;
}

static void test_paths(void)
{
    struct smtp_addrcmd ac;
    struct smtpreply_err e;
    char *lp, *dom, *arg;

    GOODM("FROM:<a@b.c>", "a", "b.c");
    GOODM("from:<a@b.c>", "a", "b.c");
    GOODM("FROM: <a@b.c>", "a", "b.c");
    GOODM("FROM:   <a@b.c>", "a", "b.c");
    GOODR("TO:<User.Name+tag@Example.ORG>", "User.Name+tag", "Example.ORG");
    GOODR("to: <x@y>", "x", "y");
    GOODR("TO:<!#$%&'*+-/=?^_`{|}~@x>", "!#$%&'*+-/=?^_`{|}~", "x");
    GOODR("TO:<a@b-c.d9>", "a", "b-c.d9");
    GOODR("TO:<a@123.45>", "a", "123.45");

    /* null path, postmaster */
    mail("FROM:<>", SMTPEXT_ALL, &ac, &e);
    ok(ac.path.null && strcmp(ac.path.addr, "") == 0 && strcmp(ac.path.domain, "") == 0,
       "MAIL FROM:<> is the null path");
    smtpproto_addrcmd_clear(&ac);
    mail("FROM:<a@b>", SMTPEXT_ALL, &ac, &e);
    ok(!ac.path.null && !ac.path.utf8, "ordinary path is not null, not utf8");
    is_str(ac.path.addr, "a@b", "addr is the mailbox");
    smtpproto_addrcmd_clear(&ac);
    BADR("TO:<>");
    GOODR("TO:<Postmaster>", "Postmaster", "");
    GOODR("TO:<postmaster>", "postmaster", "");
    GOODR("TO:<POSTMASTER>", "POSTMASTER", "");
    GOODR("TO:<postmaster@example.org>", "postmaster", "example.org");
    BADM("FROM:<postmaster>");
    BADR("TO:<admin>");
    BADR("TO:<postmasterx>");
    BADR("TO:<\"postmaster\">");
    BADR("TO:<@a.b:postmaster>");

    /* source routes are checked and dropped */
    GOODR("TO:<@a.b,@c.d:u@e.f>", "u", "e.f");
    rcpt("TO:<@a.b,@c.d:u@e.f>", SMTPEXT_ALL, &ac, &e);
    is_str(ac.path.addr, "u@e.f", "source route not in addr");
    smtpproto_addrcmd_clear(&ac);
    GOODM("FROM:<@a:u@e>", "u", "e");
    BADR("TO:<@:u@e>");
    BADR("TO:<@a,b:u@e>");
    BADR("TO:<@a,:u@e>");
    BADR("TO:<@a u@e>");
    BADR("TO:<@a.b>");
    BADR("TO:<@[1.2.3.4]:u@e>");

    /* command syntax */
    SYNM("FROM :<a@b>");
    SYNM("FROM:a@b");
    SYNM("FROM:");
    SYNM("FRO");
    SYNM("TO:<a@b>");
    SYNR("FROM:<a@b>");
    SYNR("TO:\t<a@b>");
    SYNR("TO:");
    is_int(smtpproto_parse_mail(NULL, 0, SMTPEXT_ALL, &rfc, &ac, &e), SMTPP_E_SYNTAX,
           "MAIL with a NULL argument");

    /* dot-string */
    BADR("TO:<.a@b>");
    BADR("TO:<a.@b>");
    BADR("TO:<a..b@b>");
    BADR("TO:<@b>");
    BADR("TO:<a b@b>");
    BADR("TO:<a(b)@b>");
    BADR("TO:<a,b@b>");
    BADR("TO:<a\\b@b>");
    GOODR("TO:<a.b.c@d>", "a.b.c", "d");

    /* quoted-string */
    GOODR("TO:<\"a b\"@x>", "a b", "x");
    rcpt("TO:<\"a b\"@x>", SMTPEXT_ALL, &ac, &e);
    is_str(ac.path.addr, "\"a b\"@x", "addr keeps the quotes");
    smtpproto_addrcmd_clear(&ac);
    GOODR("TO:<\"a\\\"b\"@x>", "a\"b", "x");
    GOODR("TO:<\"a\\\\b\"@x>", "a\\b", "x");
    GOODR("TO:<\"a>b\"@x>", "a>b", "x");
    GOODR("TO:<\"a@b\"@x>", "a@b", "x");
    GOODR("TO:<\"\"@x>", "", "x");
    BADR("TO:<\"ab@x>");
    BADR("TO:<\"a\"b@x>");
    BADR("TO:<\"a\tb\"@x>");
    BADR("TO:<\"a\x01\"@x>");
    BADR("TO:<\"a\\\x01\"@x>");
    BADR("TO:<\"a\x7f\"@x>");

    /* domains */
    BADR("TO:<a@-b.c>");
    BADR("TO:<a@b-.c>");
    BADR("TO:<a@b..c>");
    BADR("TO:<a@.b>");
    BADR("TO:<a@b.>");
    BADR("TO:<a@>");
    BADR("TO:<a>");
    BADM("FROM:<a>");
    BADR("TO:<a@b_c>");
    BADR("TO:<a@b c>");
    BADR("TO:<a@b@c>");
    BADR("TO:<a@b");
    BADR("TO:<a@b>x");
    BADR("TO:<a@b>>");
    BADR("TO:<<a@b>>");
    BADM("FROM:<a@b>,");
    BADM("FROM:<a@b");

    /* address literals */
    GOODR("TO:<a@[1.2.3.4]>", "a", "[1.2.3.4]");
    GOODR("TO:<a@[255.255.255.255]>", "a", "[255.255.255.255]");
    GOODR("TO:<a@[001.2.3.4]>", "a", "[001.2.3.4]");
    GOODR("TO:<a@[IPv6:::1]>", "a", "[IPv6:::1]");
    GOODR("TO:<a@[ipv6:2001:db8::1]>", "a", "[ipv6:2001:db8::1]");
    GOODR("TO:<a@[IPv6:::ffff:1.2.3.4]>", "a", "[IPv6:::ffff:1.2.3.4]");
    BADR("TO:<a@[256.1.1.1]>");
    BADR("TO:<a@[1.2.3]>");
    BADR("TO:<a@[1.2.3.4.5]>");
    BADR("TO:<a@[1.2.3.]>");
    BADR("TO:<a@[1..3.4]>");
    BADR("TO:<a@[1234.1.1.1]>");
    BADR("TO:<a@[IPv6:zz]>");
    BADR("TO:<a@[IPv6:1.2.3.4]>");
    BADR("TO:<a@[IPv6:]>");
    BADR("TO:<a@[foo:bar]>");
    BADR("TO:<a@[]>");
    BADR("TO:<a@[1.2.3.4>");
    BADR("TO:<a@[1.2.3.4]x>");
    BADR("TO:<a@[1.2 .3.4]>");
    BADR("TO:<a@x.[1.2.3.4]>");

    /* lengths (RFC limits and custom ones) */
    lp = repeat('l', 64);
    dom = domain_of(189);
    arg = xasprintf("TO:<%s@%s>", lp, dom);
    ok(strlen(arg) - 3 == 256, "test path is 256 bytes");
    GOODR(arg, lp, dom);
    free(arg);
    free(dom);
    dom = domain_of(190);
    arg = xasprintf("TO:<%s@%s>", lp, dom);
    BADR(arg);
    rcpt(arg, SMTPEXT_ALL, &ac, &e);
    is_str(e.text, "path too long", "257-byte path: reason");
    free(arg);
    free(dom);
    free(lp);
    lp = repeat('l', 65);
    arg = xasprintf("FROM:<%s@x>", lp);
    BADM(arg);
    mail(arg, SMTPEXT_ALL, &ac, &e);
    is_str(e.text, "local part too long", "65-byte local part: reason");
    free(arg);
    free(lp);
    lp = repeat('q', 62);
    arg = xasprintf("FROM:<\"%s\"@x>", lp);
    GOODM(arg, lp, "x");                /* 62 + 2 quotes = 64 on the wire */
    free(arg);
    free(lp);
    lp = repeat('q', 63);
    arg = xasprintf("FROM:<\"%s\"@x>", lp);
    BADM(arg);                          /* 65 on the wire */
    free(arg);
    free(lp);
    dom = domain_of(255);
    arg = xasprintf("TO:<a@%s>", dom);
    {
        struct smtpproto_limits big = rfc;

        big.path_max = 1000;
        is_int(smtpproto_parse_rcpt(arg, strlen(arg), SMTPEXT_ALL, &big, &ac, &e), SMTPP_OK,
               "255-byte domain with a larger path limit");
        smtpproto_addrcmd_clear(&ac);
        free(arg);
        free(dom);
        dom = domain_of(256);
        arg = xasprintf("TO:<a@%s>", dom);
        is_int(smtpproto_parse_rcpt(arg, strlen(arg), SMTPEXT_ALL, &big, &ac, &e),
               SMTPP_E_SYNTAX, "256-byte domain refused");
        is_str(e.text, "domain too long", "  reason");
        free(arg);
        free(dom);

        big = rfc;
        big.local_max = 3;
        is_int(smtpproto_parse_rcpt("TO:<abc@x>", 10, 0, &big, &ac, &e), SMTPP_OK,
               "custom local_max 3: abc ok");
        smtpproto_addrcmd_clear(&ac);
        is_int(smtpproto_parse_rcpt("TO:<abcd@x>", 11, 0, &big, &ac, &e), SMTPP_E_SYNTAX,
               "custom local_max 3: abcd refused");
        big = rfc;
        big.domain_max = 3;
        is_int(smtpproto_parse_rcpt("TO:<a@b.cd>", 11, 0, &big, &ac, &e), SMTPP_E_SYNTAX,
               "custom domain_max 3: b.cd refused");
        big = rfc;
        big.path_max = 7;
        is_int(smtpproto_parse_rcpt("TO:<a@b.c>", 10, 0, &big, &ac, &e), SMTPP_OK,
               "custom path_max 7: <a@b.c> ok");
        smtpproto_addrcmd_clear(&ac);
        is_int(smtpproto_parse_rcpt("TO:<@x:a@b.c>", 13, 0, &big, &ac, &e), SMTPP_E_SYNTAX,
               "custom path_max 7: source route counts");
    }
}

static void test_utf8(void)
{
    struct smtp_addrcmd ac;
    struct smtpreply_err e;

    bad(true, "FROM:<pel\xc3\xa9@x>", SMTPEXT_ALL, SMTPP_E_UTF8, 553, "5.6.7");
    good(true, "FROM:<pel\xc3\xa9@x> SMTPUTF8", SMTPEXT_ALL, "pel\xc3\xa9", "x");
    mail("FROM:<pel\xc3\xa9@x> SMTPUTF8", SMTPEXT_ALL, &ac, &e);
    ok(ac.path.utf8 && ac.params.smtputf8 && (ac.params.seen & SMTPP_P_SMTPUTF8),
       "utf8 flag and SMTPUTF8 parameter reported");
    smtpproto_addrcmd_clear(&ac);
    good(true, "FROM:<a@x> SMTPUTF8", SMTPEXT_ALL, "a", "x");
    bad(true, "FROM:<pel\xc3\xa9@x> SMTPUTF8", SMTPEXT_ALL & ~SMTPEXT_SMTPUTF8,
        SMTPP_E_PARAM, 555, "5.5.4");
    good(true, "FROM:<a@b\xc3\xbc" "cher.de> SMTPUTF8", SMTPEXT_ALL, "a", "b\xc3\xbc" "cher.de");
    bad(true, "FROM:<a@b\xc3\xbc" "cher.de>", SMTPEXT_ALL, SMTPP_E_UTF8, 553, "5.6.7");
    good(true, "FROM:<\"p \xe2\x82\xac\"@x> SMTPUTF8", SMTPEXT_ALL, "p \xe2\x82\xac", "x");
    good(true, "FROM:<\xf0\x9f\x93\xa7@x> SMTPUTF8", SMTPEXT_ALL, "\xf0\x9f\x93\xa7", "x");
    good(false, "TO:<\xd0\xb8@x>", SMTPEXT_ALL | SMTPP_F_UTF8, "\xd0\xb8", "x");
    bad(false, "TO:<\xd0\xb8@x>", SMTPEXT_ALL, SMTPP_E_UTF8, 553, "5.6.7");
    /* malformed UTF-8 is a syntax error even with SMTPUTF8 */
    bad(true, "FROM:<a\xc3(@x> SMTPUTF8", SMTPEXT_ALL, SMTPP_E_SYNTAX, 501, "5.1.7");
    bad(true, "FROM:<a\xc0\xaf@x> SMTPUTF8", SMTPEXT_ALL, SMTPP_E_SYNTAX, 501, "5.1.7");
    bad(true, "FROM:<a\xed\xa0\x80@x> SMTPUTF8", SMTPEXT_ALL, SMTPP_E_SYNTAX, 501, "5.1.7");
    bad(true, "FROM:<a\xf4\x90\x80\x80@x> SMTPUTF8", SMTPEXT_ALL, SMTPP_E_SYNTAX, 501, "5.1.7");
    bad(true, "FROM:<a\xe2\x82@x> SMTPUTF8", SMTPEXT_ALL, SMTPP_E_SYNTAX, 501, "5.1.7");
    bad(true, "FROM:<a\x80@x> SMTPUTF8", SMTPEXT_ALL, SMTPP_E_SYNTAX, 501, "5.1.7");
    bad(true, "FROM:<a@x\xff> SMTPUTF8", SMTPEXT_ALL, SMTPP_E_SYNTAX, 501, "5.1.7");
    bad(false, "TO:<\"\xc3\"@x>", SMTPEXT_ALL | SMTPP_F_UTF8, SMTPP_E_SYNTAX, 501, "5.1.3");
    bad(false, "TO:<a@[1.2.3.\xc3\xa9]>", SMTPEXT_ALL | SMTPP_F_UTF8, SMTPP_E_SYNTAX, 501, "5.1.3");
}

static void test_params(void)
{
    struct smtp_addrcmd ac;
    struct smtpreply_err e;

    /* SIZE */
    is_int(mail("FROM:<a@b> SIZE=1000", SMTPEXT_ALL, &ac, &e), SMTPP_OK, "SIZE=1000");
    ok(ac.params.seen == SMTPP_P_SIZE && ac.params.size == 1000, "  size 1000");
    smtpproto_addrcmd_clear(&ac);
    is_int(mail("FROM:<> size=0", SMTPEXT_ALL, &ac, &e), SMTPP_OK, "size=0 lower case");
    ok(ac.params.size == 0 && (ac.params.seen & SMTPP_P_SIZE), "  size 0 seen");
    smtpproto_addrcmd_clear(&ac);
    mail("FROM:<> SIZE=18446744073709551615", SMTPEXT_ALL, &ac, &e);
    ok(ac.params.size == UINT64_MAX, "SIZE=2^64-1 exact");
    smtpproto_addrcmd_clear(&ac);
    is_int(mail("FROM:<> SIZE=18446744073709551616", SMTPEXT_ALL, &ac, &e), SMTPP_OK,
           "SIZE=2^64 accepted");
    ok(ac.params.size == UINT64_MAX, "  saturates");
    smtpproto_addrcmd_clear(&ac);
    mail("FROM:<> SIZE=99999999999999999999", SMTPEXT_ALL, &ac, &e);
    ok(ac.params.size == UINT64_MAX, "20 nines saturate");
    smtpproto_addrcmd_clear(&ac);
    PARM("FROM:<> SIZE=999999999999999999999");
    PARM("FROM:<> SIZE=12a");
    PARM("FROM:<> SIZE=-1");
    PARM("FROM:<> SIZE=");
    PARM("FROM:<> SIZE");
    PARM("FROM:<> SIZE=1 SIZE=2");
    PARM("FROM:<> SIZE=1 size=1");
    bad(true, "FROM:<> SIZE=1", SMTPEXT_ALL & ~SMTPEXT_SIZE, SMTPP_E_PARAM, 555, "5.5.4");
    PARR("TO:<a@b> SIZE=1");
    rcpt("TO:<a@b> SIZE=1", SMTPEXT_ALL, &ac, &e);
    is_str(e.text, "Parameter not allowed with RCPT", "  reason");

    /* BODY */
    mail("FROM:<> BODY=7BIT", SMTPEXT_ALL, &ac, &e);
    ok(ac.params.body == SMTPP_BODY_7BIT, "BODY=7BIT");
    smtpproto_addrcmd_clear(&ac);
    mail("FROM:<> body=8bitmime", SMTPEXT_ALL, &ac, &e);
    ok(ac.params.body == SMTPP_BODY_8BITMIME, "body=8bitmime");
    smtpproto_addrcmd_clear(&ac);
    mail("FROM:<> BODY=BINARYMIME", SMTPEXT_ALL, &ac, &e);
    ok(ac.params.body == SMTPP_BODY_BINARYMIME, "BODY=BINARYMIME");
    smtpproto_addrcmd_clear(&ac);
    is_int(mail("FROM:<> BODY=7BIT", SMTPEXT_8BITMIME, &ac, &e), SMTPP_OK,
           "BODY with only 8BITMIME offered");
    smtpproto_addrcmd_clear(&ac);
    bad(true, "FROM:<> BODY=8BITMIME", SMTPEXT_BINARYMIME, SMTPP_E_PARAM, 555, "5.5.4");
    bad(true, "FROM:<> BODY=BINARYMIME", SMTPEXT_8BITMIME, SMTPP_E_PARAM, 555, "5.5.4");
    bad(true, "FROM:<> BODY=7BIT", SMTPEXT_SIZE, SMTPP_E_PARAM, 555, "5.5.4");
    PARM("FROM:<> BODY=8BIT");
    PARM("FROM:<> BODY");
    PARM("FROM:<> BODY=7BIT BODY=7BIT");

    /* SMTPUTF8 */
    PARM("FROM:<> SMTPUTF8=yes");
    PARM("FROM:<> SMTPUTF8 SMTPUTF8");
    PARR("TO:<a@b> SMTPUTF8");

    /* RET, ENVID */
    mail("FROM:<> RET=FULL ENVID=abc+2Bdef", SMTPEXT_ALL, &ac, &e);
    ok(ac.params.ret == SMTPP_RET_FULL, "RET=FULL");
    is_str(ac.params.envid, "abc+def", "ENVID xtext decoded");
    smtpproto_addrcmd_clear(&ac);
    mail("FROM:<> ret=hdrs", SMTPEXT_ALL, &ac, &e);
    ok(ac.params.ret == SMTPP_RET_HDRS, "ret=hdrs");
    smtpproto_addrcmd_clear(&ac);
    PARM("FROM:<> RET=BOTH");
    PARM("FROM:<> RET");
    PARM("FROM:<> RET=FULL RET=HDRS");
    bad(true, "FROM:<> RET=FULL", SMTPEXT_ALL & ~SMTPEXT_DSN, SMTPP_E_PARAM, 555, "5.5.4");
    PARM("FROM:<> ENVID=+2b");
    PARM("FROM:<> ENVID=+00");
    PARM("FROM:<> ENVID=a+0Ab");
    PARM("FROM:<> ENVID=a+");
    PARM("FROM:<> ENVID=+C3+A9");
    PARM("FROM:<> ENVID");
    PARR("TO:<a@b> ENVID=x");
    {
        char *id = repeat('i', 100), *arg = xasprintf("FROM:<> ENVID=%s", id);

        is_int(mail(arg, SMTPEXT_ALL, &ac, &e), SMTPP_OK, "100-char ENVID");
        is_str(ac.params.envid, id, "  kept");
        smtpproto_addrcmd_clear(&ac);
        free(arg);
        arg = xasprintf("FROM:<> ENVID=%si", id);
        PARM(arg);
        free(arg);
        free(id);
    }

    /* AUTH */
    mail("FROM:<a@b> AUTH=<>", SMTPEXT_ALL, &ac, &e);
    ok(ac.params.auth_null && ac.params.auth == NULL && (ac.params.seen & SMTPP_P_AUTH), "AUTH=<>");
    smtpproto_addrcmd_clear(&ac);
    mail("FROM:<a@b> AUTH=user+2Btag@example.org", SMTPEXT_ALL, &ac, &e);
    is_str(ac.params.auth, "user+tag@example.org", "AUTH=xtext decoded");
    smtpproto_addrcmd_clear(&ac);
    PARM("FROM:<a@b> AUTH=+");
    PARM("FROM:<a@b> AUTH=<> AUTH=<>");
    bad(true, "FROM:<a@b> AUTH=<>", SMTPEXT_ALL & ~SMTPEXT_AUTH, SMTPP_E_PARAM, 555, "5.5.4");

    /* NOTIFY */
    rcpt("TO:<a@b> NOTIFY=NEVER", SMTPEXT_ALL, &ac, &e);
    ok(ac.params.notify == SMTPP_NOTIFY_NEVER, "NOTIFY=NEVER");
    smtpproto_addrcmd_clear(&ac);
    rcpt("TO:<a@b> NOTIFY=success,FAILURE,Delay", SMTPEXT_ALL, &ac, &e);
    ok(ac.params.notify == (SMTPP_NOTIFY_SUCCESS | SMTPP_NOTIFY_FAILURE | SMTPP_NOTIFY_DELAY),
       "NOTIFY=success,FAILURE,Delay");
    smtpproto_addrcmd_clear(&ac);
    rcpt("TO:<a@b> NOTIFY=DELAY", SMTPEXT_ALL, &ac, &e);
    ok(ac.params.notify == SMTPP_NOTIFY_DELAY, "NOTIFY=DELAY");
    smtpproto_addrcmd_clear(&ac);
    PARR("TO:<a@b> NOTIFY=NEVER,SUCCESS");
    PARR("TO:<a@b> NOTIFY=FAILURE,NEVER");
    PARR("TO:<a@b> NOTIFY=SUCCESS,SUCCESS");
    PARR("TO:<a@b> NOTIFY=SUCCESS,");
    PARR("TO:<a@b> NOTIFY=,SUCCESS");
    PARR("TO:<a@b> NOTIFY=SOMETIMES");
    PARR("TO:<a@b> NOTIFY");
    PARR("TO:<a@b> NOTIFY=NEVER NOTIFY=NEVER");
    PARM("FROM:<a@b> NOTIFY=NEVER");
    mail("FROM:<a@b> NOTIFY=NEVER", SMTPEXT_ALL, &ac, &e);
    is_str(e.text, "Parameter not allowed with MAIL", "  reason");

    /* ORCPT */
    rcpt("TO:<a@b> ORCPT=rfc822;u+40example.org", SMTPEXT_ALL, &ac, &e);
    is_str(ac.params.orcpt_type, "rfc822", "ORCPT addr-type");
    is_str(ac.params.orcpt_addr, "u@example.org", "ORCPT xtext decoded");
    smtpproto_addrcmd_clear(&ac);
    rcpt("TO:<a@b> NOTIFY=FAILURE ORCPT=RFC822;x", SMTPEXT_ALL, &ac, &e);
    ok(ac.params.seen == (SMTPP_P_NOTIFY | SMTPP_P_ORCPT), "NOTIFY and ORCPT together");
    smtpproto_addrcmd_clear(&ac);
    PARR("TO:<a@b> ORCPT=rfc822");
    PARR("TO:<a@b> ORCPT=;a");
    PARR("TO:<a@b> ORCPT=rfc822;");
    PARR("TO:<a@b> ORCPT=rfc(822);a");
    PARR("TO:<a@b> ORCPT=rfc822;a+4");
    PARR("TO:<a@b> ORCPT=rfc822;a+0D+0A");
    PARR("TO:<a@b> ORCPT=rfc822;a ORCPT=rfc822;b");
    PARM("FROM:<a@b> ORCPT=rfc822;a");
    {
        char *v = repeat('o', 493), *arg = xasprintf("TO:<a@b> ORCPT=rfc822;%s", v);

        is_int(rcpt(arg, SMTPEXT_ALL, &ac, &e), SMTPP_OK, "500-char ORCPT value");
        smtpproto_addrcmd_clear(&ac);
        free(arg);
        arg = xasprintf("TO:<a@b> ORCPT=rfc822;%so", v);
        PARR(arg);
        free(arg);
        free(v);
    }

    /* generic syntax, unknown, combinations */
    PARM("FROM:<> FOO=bar");
    mail("FROM:<> FOO=bar", SMTPEXT_ALL, &ac, &e);
    is_str(e.text, "Unsupported parameter", "  reason");
    PARR("TO:<a@b> X-FOO");
    PARM("FROM:<> =x");
    PARM("FROM:<> -A=1");
    PARM("FROM:<> SIZE=1=2");
    PARM("FROM:<> SIZE==1");
    PARM("FROM:<> A_B=1");
    PARM("FROM:<> ENVID=\xc3\xa9");
    PARM("FROM:<> SIZE=1\tBODY=7BIT");
    is_int(mail("FROM:<a@b>  SIZE=5   BODY=8BITMIME RET=HDRS ENVID=q AUTH=<> SMTPUTF8",
                SMTPEXT_ALL, &ac, &e), SMTPP_OK, "all MAIL parameters, extra spaces");
    ok(ac.params.seen == (SMTPP_P_SIZE | SMTPP_P_BODY | SMTPP_P_RET | SMTPP_P_ENVID
                          | SMTPP_P_AUTH | SMTPP_P_SMTPUTF8), "  all seen");
    smtpproto_addrcmd_clear(&ac);
    /* a parameter error after a good path leaves nothing behind */
    bad(true, "FROM:<a@b> SIZE=1 FOO", SMTPEXT_ALL, SMTPP_E_PARAM, 555, "5.5.4");
    /* path errors win over parameter errors */
    bad(true, "FROM:<a@@b> FOO", SMTPEXT_ALL, SMTPP_E_SYNTAX, 501, "5.1.7");
}

static void test_bdat(void)
{
    static const struct { const char *in; int status; uint64_t size; bool last; } cases[] = {
        { "100", SMTPP_OK, 100, false },
        { "100 LAST", SMTPP_OK, 100, true },
        { "100 last", SMTPP_OK, 100, true },
        { "0 LAST", SMTPP_OK, 0, true },
        { "0", SMTPP_OK, 0, false },
        { "007", SMTPP_OK, 7, false },
        { "18446744073709551615", SMTPP_OK, UINT64_MAX, false },
        { "18446744073709551616", SMTPP_E_SYNTAX, 0, false },
        { "99999999999999999999999 LAST", SMTPP_E_SYNTAX, 0, false },
        { "", SMTPP_E_SYNTAX, 0, false },
        { "x", SMTPP_E_SYNTAX, 0, false },
        { "-1", SMTPP_E_SYNTAX, 0, false },
        { "+1", SMTPP_E_SYNTAX, 0, false },
        { "1x", SMTPP_E_SYNTAX, 0, false },
        { "100 LASTX", SMTPP_E_SYNTAX, 0, false },
        { "100  LAST", SMTPP_E_SYNTAX, 0, false },
        { "100 LAST x", SMTPP_E_SYNTAX, 0, false },
        { "100 FIRST", SMTPP_E_SYNTAX, 0, false },
        { " 100", SMTPP_E_SYNTAX, 0, false },
        { "LAST", SMTPP_E_SYNTAX, 0, false },
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct smtpreply_err e = { 0, NULL, NULL };
        uint64_t size = 42;
        bool last = true;
        int r = smtpproto_parse_bdat(cases[i].in, strlen(cases[i].in), &size, &last, &e);

        is_int(r, cases[i].status, "BDAT '%s'", cases[i].in);
        if (r == SMTPP_OK)
            ok(size == cases[i].size && last == cases[i].last, "  size and LAST");
        else
            ok(e.code == 501 && strcmp(e.dsn, "5.5.4") == 0 && size == 0 && !last,
               "  501 5.5.4, outputs zeroed");
    }
    {
        struct smtpreply_err e;
        uint64_t size;
        bool last;

        smtpproto_parse_bdat("18446744073709551616", 20, &size, &last, &e);
        like(e.text, "too large", "overflow reason");
        is_int(smtpproto_parse_bdat(NULL, 0, &size, &last, &e), SMTPP_E_SYNTAX, "NULL argument");
    }
}

int main(void)
{
    alarm(60);
    msg_init("smtpproto-test", MSG_STDERR);
    test_commands();
    test_paths();
    test_utf8();
    test_params();
    test_bdat();
    return done_testing();
}
