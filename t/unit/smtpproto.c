/*
 * t/unit/smtpproto.c - unit tests for lib/smtpproto.c (SMTP command lines,
 * MAIL/RCPT paths and ESMTP parameters, xtext, BDAT, replies, the DATA
 * reader).
 *
 * Covers every verb and its argument rule, every line-ending error, the
 * RFC 5321 path grammar edge cases (source routes, quoted local parts,
 * address literals, length limits as parameters, UTF-8 only with
 * SMTPUTF8), every parameter and every error code, reply sanitising, and
 * for DATA the smuggling matrix (no bare-CR / bare-LF variant of "." can
 * end the data), dot-unstuffing, size and line caps, the sink, and one run
 * over a real stream.  alarm() guards against hangs.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "msg.h"
#include "smtpproto.h"
#include "stream.h"
#include "xalloc.h"
#include "../lib/tap.h"
#include "../lib/testlib.h"

static const struct smtpproto_limits rfc = SMTPPROTO_LIMITS_RFC;

/* ---- command lines ---- */

static int cmd(const char *line, struct smtp_cmd *c, struct smtpproto_err *e)
{
    return smtpproto_parse_cmd(line, strlen(line), c, e);
}

static void check_verb(const char *line, enum smtp_verb v, const char *arg)
{
    struct smtp_cmd c;
    struct smtpproto_err e;
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
    struct smtp_cmd c;
    struct smtpproto_err e = { 0, NULL, NULL };
    int r = smtpproto_parse_cmd(line, len, &c, &e);

    is_int(r, status, "%s: status", desc);
    is_int(e.code, code, "%s: code", desc);
    is_str(e.dsn, dsn, "%s: dsn", desc);
    ok(c.verb == SMTP_VERB_NONE && c.arg == NULL, "%s: no verb", desc);
}

static void test_commands(void)
{
    struct smtp_cmd c;
    struct smtpproto_err e;

    check_verb("EHLO mx.example.org\r\n", SMTP_VERB_EHLO, "mx.example.org");
    check_verb("helo mx\r\n", SMTP_VERB_HELO, "mx");
    check_verb("MAIL FROM:<a@b>\r\n", SMTP_VERB_MAIL, "FROM:<a@b>");
    check_verb("rCpT TO:<a@b> NOTIFY=NEVER\r\n", SMTP_VERB_RCPT, "TO:<a@b> NOTIFY=NEVER");
    check_verb("DATA\r\n", SMTP_VERB_DATA, NULL);
    check_verb("BDAT 10 LAST\r\n", SMTP_VERB_BDAT, "10 LAST");
    check_verb("RSET\r\n", SMTP_VERB_RSET, NULL);
    check_verb("NOOP\r\n", SMTP_VERB_NOOP, NULL);
    check_verb("noop anything goes\r\n", SMTP_VERB_NOOP, "anything goes");
    check_verb("QUIT\r\n", SMTP_VERB_QUIT, NULL);
    check_verb("VRFY root\r\n", SMTP_VERB_VRFY, "root");
    check_verb("HELP\r\n", SMTP_VERB_HELP, NULL);
    check_verb("HELP MAIL\r\n", SMTP_VERB_HELP, "MAIL");
    check_verb("StartTLS\r\n", SMTP_VERB_STARTTLS, NULL);
    check_verb("AUTH PLAIN AGZvbwBiYXI=\r\n", SMTP_VERB_AUTH, "PLAIN AGZvbwBiYXI=");
    check_verb("QUIT \t \r\n", SMTP_VERB_QUIT, NULL);
    check_verb("EHLO x \t\r\n", SMTP_VERB_EHLO, "x");
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

static int mail(const char *arg, unsigned flags, struct smtp_addrcmd *ac, struct smtpproto_err *e)
{
    return smtpproto_parse_mail(arg, strlen(arg), flags, &rfc, ac, e);
}

static int rcpt(const char *arg, unsigned flags, struct smtp_addrcmd *ac, struct smtpproto_err *e)
{
    return smtpproto_parse_rcpt(arg, strlen(arg), flags, &rfc, ac, e);
}

/* Expect success; check the decoded local part and domain. */
static void good(bool is_mail, const char *arg, unsigned flags, const char *local,
                 const char *domain)
{
    struct smtp_addrcmd ac;
    struct smtpproto_err e = { 0, NULL, NULL };
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
    struct smtpproto_err e = { 0, NULL, NULL };
    int r = is_mail ? mail(arg, flags, &ac, &e) : rcpt(arg, flags, &ac, &e);

    is_int(r, status, "%s %s refused", is_mail ? "MAIL" : "RCPT", arg);
    is_int(e.code, code, "  code");
    is_str(e.dsn, dsn, "  dsn");
    ok(ac.path.local == NULL && ac.params.seen == 0 && ac.params.envid == NULL,
       "  nothing left in the result");
    smtpproto_addrcmd_clear(&ac);
}

#define GOODM(a, l, d)  good(true, a, SMTPP_EXT_ALL, l, d)
#define GOODR(a, l, d)  good(false, a, SMTPP_EXT_ALL, l, d)
#define BADM(a)         bad(true, a, SMTPP_EXT_ALL, SMTPP_E_SYNTAX, 501, "5.1.7")
#define BADR(a)         bad(false, a, SMTPP_EXT_ALL, SMTPP_E_SYNTAX, 501, "5.1.3")
#define SYNM(a)         bad(true, a, SMTPP_EXT_ALL, SMTPP_E_SYNTAX, 501, "5.5.4")
#define SYNR(a)         bad(false, a, SMTPP_EXT_ALL, SMTPP_E_SYNTAX, 501, "5.5.4")
#define PARM(a)         bad(true, a, SMTPP_EXT_ALL, SMTPP_E_PARAM, 555, "5.5.4")
#define PARR(a)         bad(false, a, SMTPP_EXT_ALL, SMTPP_E_PARAM, 555, "5.5.4")

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
    struct smtpproto_err e;
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
    mail("FROM:<>", SMTPP_EXT_ALL, &ac, &e);
    ok(ac.path.null && strcmp(ac.path.addr, "") == 0 && strcmp(ac.path.domain, "") == 0,
       "MAIL FROM:<> is the null path");
    smtpproto_addrcmd_clear(&ac);
    mail("FROM:<a@b>", SMTPP_EXT_ALL, &ac, &e);
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
    rcpt("TO:<@a.b,@c.d:u@e.f>", SMTPP_EXT_ALL, &ac, &e);
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
    is_int(smtpproto_parse_mail(NULL, 0, SMTPP_EXT_ALL, &rfc, &ac, &e), SMTPP_E_SYNTAX,
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
    rcpt("TO:<\"a b\"@x>", SMTPP_EXT_ALL, &ac, &e);
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
    rcpt(arg, SMTPP_EXT_ALL, &ac, &e);
    is_str(e.text, "path too long", "257-byte path: reason");
    free(arg);
    free(dom);
    free(lp);
    lp = repeat('l', 65);
    arg = xasprintf("FROM:<%s@x>", lp);
    BADM(arg);
    mail(arg, SMTPP_EXT_ALL, &ac, &e);
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
        is_int(smtpproto_parse_rcpt(arg, strlen(arg), SMTPP_EXT_ALL, &big, &ac, &e), SMTPP_OK,
               "255-byte domain with a larger path limit");
        smtpproto_addrcmd_clear(&ac);
        free(arg);
        free(dom);
        dom = domain_of(256);
        arg = xasprintf("TO:<a@%s>", dom);
        is_int(smtpproto_parse_rcpt(arg, strlen(arg), SMTPP_EXT_ALL, &big, &ac, &e),
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
    struct smtpproto_err e;

    bad(true, "FROM:<pel\xc3\xa9@x>", SMTPP_EXT_ALL, SMTPP_E_UTF8, 553, "5.6.7");
    good(true, "FROM:<pel\xc3\xa9@x> SMTPUTF8", SMTPP_EXT_ALL, "pel\xc3\xa9", "x");
    mail("FROM:<pel\xc3\xa9@x> SMTPUTF8", SMTPP_EXT_ALL, &ac, &e);
    ok(ac.path.utf8 && ac.params.smtputf8 && (ac.params.seen & SMTPP_P_SMTPUTF8),
       "utf8 flag and SMTPUTF8 parameter reported");
    smtpproto_addrcmd_clear(&ac);
    good(true, "FROM:<a@x> SMTPUTF8", SMTPP_EXT_ALL, "a", "x");
    bad(true, "FROM:<pel\xc3\xa9@x> SMTPUTF8", SMTPP_EXT_ALL & ~SMTPP_EXT_SMTPUTF8,
        SMTPP_E_PARAM, 555, "5.5.4");
    good(true, "FROM:<a@b\xc3\xbc" "cher.de> SMTPUTF8", SMTPP_EXT_ALL, "a", "b\xc3\xbc" "cher.de");
    bad(true, "FROM:<a@b\xc3\xbc" "cher.de>", SMTPP_EXT_ALL, SMTPP_E_UTF8, 553, "5.6.7");
    good(true, "FROM:<\"p \xe2\x82\xac\"@x> SMTPUTF8", SMTPP_EXT_ALL, "p \xe2\x82\xac", "x");
    good(true, "FROM:<\xf0\x9f\x93\xa7@x> SMTPUTF8", SMTPP_EXT_ALL, "\xf0\x9f\x93\xa7", "x");
    good(false, "TO:<\xd0\xb8@x>", SMTPP_EXT_ALL | SMTPP_F_UTF8, "\xd0\xb8", "x");
    bad(false, "TO:<\xd0\xb8@x>", SMTPP_EXT_ALL, SMTPP_E_UTF8, 553, "5.6.7");
    /* malformed UTF-8 is a syntax error even with SMTPUTF8 */
    bad(true, "FROM:<a\xc3(@x> SMTPUTF8", SMTPP_EXT_ALL, SMTPP_E_SYNTAX, 501, "5.1.7");
    bad(true, "FROM:<a\xc0\xaf@x> SMTPUTF8", SMTPP_EXT_ALL, SMTPP_E_SYNTAX, 501, "5.1.7");
    bad(true, "FROM:<a\xed\xa0\x80@x> SMTPUTF8", SMTPP_EXT_ALL, SMTPP_E_SYNTAX, 501, "5.1.7");
    bad(true, "FROM:<a\xf4\x90\x80\x80@x> SMTPUTF8", SMTPP_EXT_ALL, SMTPP_E_SYNTAX, 501, "5.1.7");
    bad(true, "FROM:<a\xe2\x82@x> SMTPUTF8", SMTPP_EXT_ALL, SMTPP_E_SYNTAX, 501, "5.1.7");
    bad(true, "FROM:<a\x80@x> SMTPUTF8", SMTPP_EXT_ALL, SMTPP_E_SYNTAX, 501, "5.1.7");
    bad(true, "FROM:<a@x\xff> SMTPUTF8", SMTPP_EXT_ALL, SMTPP_E_SYNTAX, 501, "5.1.7");
    bad(false, "TO:<\"\xc3\"@x>", SMTPP_EXT_ALL | SMTPP_F_UTF8, SMTPP_E_SYNTAX, 501, "5.1.3");
    bad(false, "TO:<a@[1.2.3.\xc3\xa9]>", SMTPP_EXT_ALL | SMTPP_F_UTF8, SMTPP_E_SYNTAX, 501, "5.1.3");
}

static void test_params(void)
{
    struct smtp_addrcmd ac;
    struct smtpproto_err e;

    /* SIZE */
    is_int(mail("FROM:<a@b> SIZE=1000", SMTPP_EXT_ALL, &ac, &e), SMTPP_OK, "SIZE=1000");
    ok(ac.params.seen == SMTPP_P_SIZE && ac.params.size == 1000, "  size 1000");
    smtpproto_addrcmd_clear(&ac);
    is_int(mail("FROM:<> size=0", SMTPP_EXT_ALL, &ac, &e), SMTPP_OK, "size=0 lower case");
    ok(ac.params.size == 0 && (ac.params.seen & SMTPP_P_SIZE), "  size 0 seen");
    smtpproto_addrcmd_clear(&ac);
    mail("FROM:<> SIZE=18446744073709551615", SMTPP_EXT_ALL, &ac, &e);
    ok(ac.params.size == UINT64_MAX, "SIZE=2^64-1 exact");
    smtpproto_addrcmd_clear(&ac);
    is_int(mail("FROM:<> SIZE=18446744073709551616", SMTPP_EXT_ALL, &ac, &e), SMTPP_OK,
           "SIZE=2^64 accepted");
    ok(ac.params.size == UINT64_MAX, "  saturates");
    smtpproto_addrcmd_clear(&ac);
    mail("FROM:<> SIZE=99999999999999999999", SMTPP_EXT_ALL, &ac, &e);
    ok(ac.params.size == UINT64_MAX, "20 nines saturate");
    smtpproto_addrcmd_clear(&ac);
    PARM("FROM:<> SIZE=999999999999999999999");
    PARM("FROM:<> SIZE=12a");
    PARM("FROM:<> SIZE=-1");
    PARM("FROM:<> SIZE=");
    PARM("FROM:<> SIZE");
    PARM("FROM:<> SIZE=1 SIZE=2");
    PARM("FROM:<> SIZE=1 size=1");
    bad(true, "FROM:<> SIZE=1", SMTPP_EXT_ALL & ~SMTPP_EXT_SIZE, SMTPP_E_PARAM, 555, "5.5.4");
    PARR("TO:<a@b> SIZE=1");
    rcpt("TO:<a@b> SIZE=1", SMTPP_EXT_ALL, &ac, &e);
    is_str(e.text, "Parameter not allowed with RCPT", "  reason");

    /* BODY */
    mail("FROM:<> BODY=7BIT", SMTPP_EXT_ALL, &ac, &e);
    ok(ac.params.body == SMTP_BODY_7BIT, "BODY=7BIT");
    smtpproto_addrcmd_clear(&ac);
    mail("FROM:<> body=8bitmime", SMTPP_EXT_ALL, &ac, &e);
    ok(ac.params.body == SMTP_BODY_8BITMIME, "body=8bitmime");
    smtpproto_addrcmd_clear(&ac);
    mail("FROM:<> BODY=BINARYMIME", SMTPP_EXT_ALL, &ac, &e);
    ok(ac.params.body == SMTP_BODY_BINARYMIME, "BODY=BINARYMIME");
    smtpproto_addrcmd_clear(&ac);
    is_int(mail("FROM:<> BODY=7BIT", SMTPP_EXT_8BITMIME, &ac, &e), SMTPP_OK,
           "BODY with only 8BITMIME offered");
    smtpproto_addrcmd_clear(&ac);
    bad(true, "FROM:<> BODY=8BITMIME", SMTPP_EXT_BINARYMIME, SMTPP_E_PARAM, 555, "5.5.4");
    bad(true, "FROM:<> BODY=BINARYMIME", SMTPP_EXT_8BITMIME, SMTPP_E_PARAM, 555, "5.5.4");
    bad(true, "FROM:<> BODY=7BIT", SMTPP_EXT_SIZE, SMTPP_E_PARAM, 555, "5.5.4");
    PARM("FROM:<> BODY=8BIT");
    PARM("FROM:<> BODY");
    PARM("FROM:<> BODY=7BIT BODY=7BIT");

    /* SMTPUTF8 */
    PARM("FROM:<> SMTPUTF8=yes");
    PARM("FROM:<> SMTPUTF8 SMTPUTF8");
    PARR("TO:<a@b> SMTPUTF8");

    /* RET, ENVID */
    mail("FROM:<> RET=FULL ENVID=abc+2Bdef", SMTPP_EXT_ALL, &ac, &e);
    ok(ac.params.ret == SMTP_RET_FULL, "RET=FULL");
    is_str(ac.params.envid, "abc+def", "ENVID xtext decoded");
    smtpproto_addrcmd_clear(&ac);
    mail("FROM:<> ret=hdrs", SMTPP_EXT_ALL, &ac, &e);
    ok(ac.params.ret == SMTP_RET_HDRS, "ret=hdrs");
    smtpproto_addrcmd_clear(&ac);
    PARM("FROM:<> RET=BOTH");
    PARM("FROM:<> RET");
    PARM("FROM:<> RET=FULL RET=HDRS");
    bad(true, "FROM:<> RET=FULL", SMTPP_EXT_ALL & ~SMTPP_EXT_DSN, SMTPP_E_PARAM, 555, "5.5.4");
    PARM("FROM:<> ENVID=+2b");
    PARM("FROM:<> ENVID=+00");
    PARM("FROM:<> ENVID=a+0Ab");
    PARM("FROM:<> ENVID=a+");
    PARM("FROM:<> ENVID=+C3+A9");
    PARM("FROM:<> ENVID");
    PARR("TO:<a@b> ENVID=x");
    {
        char *id = repeat('i', 100), *arg = xasprintf("FROM:<> ENVID=%s", id);

        is_int(mail(arg, SMTPP_EXT_ALL, &ac, &e), SMTPP_OK, "100-char ENVID");
        is_str(ac.params.envid, id, "  kept");
        smtpproto_addrcmd_clear(&ac);
        free(arg);
        arg = xasprintf("FROM:<> ENVID=%si", id);
        PARM(arg);
        free(arg);
        free(id);
    }

    /* AUTH */
    mail("FROM:<a@b> AUTH=<>", SMTPP_EXT_ALL, &ac, &e);
    ok(ac.params.auth_null && ac.params.auth == NULL && (ac.params.seen & SMTPP_P_AUTH), "AUTH=<>");
    smtpproto_addrcmd_clear(&ac);
    mail("FROM:<a@b> AUTH=user+2Btag@example.org", SMTPP_EXT_ALL, &ac, &e);
    is_str(ac.params.auth, "user+tag@example.org", "AUTH=xtext decoded");
    smtpproto_addrcmd_clear(&ac);
    PARM("FROM:<a@b> AUTH=+");
    PARM("FROM:<a@b> AUTH=<> AUTH=<>");
    bad(true, "FROM:<a@b> AUTH=<>", SMTPP_EXT_ALL & ~SMTPP_EXT_AUTH, SMTPP_E_PARAM, 555, "5.5.4");

    /* NOTIFY */
    rcpt("TO:<a@b> NOTIFY=NEVER", SMTPP_EXT_ALL, &ac, &e);
    ok(ac.params.notify == SMTP_NOTIFY_NEVER, "NOTIFY=NEVER");
    smtpproto_addrcmd_clear(&ac);
    rcpt("TO:<a@b> NOTIFY=success,FAILURE,Delay", SMTPP_EXT_ALL, &ac, &e);
    ok(ac.params.notify == (SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY),
       "NOTIFY=success,FAILURE,Delay");
    smtpproto_addrcmd_clear(&ac);
    rcpt("TO:<a@b> NOTIFY=DELAY", SMTPP_EXT_ALL, &ac, &e);
    ok(ac.params.notify == SMTP_NOTIFY_DELAY, "NOTIFY=DELAY");
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
    mail("FROM:<a@b> NOTIFY=NEVER", SMTPP_EXT_ALL, &ac, &e);
    is_str(e.text, "Parameter not allowed with MAIL", "  reason");

    /* ORCPT */
    rcpt("TO:<a@b> ORCPT=rfc822;u+40example.org", SMTPP_EXT_ALL, &ac, &e);
    is_str(ac.params.orcpt_type, "rfc822", "ORCPT addr-type");
    is_str(ac.params.orcpt_addr, "u@example.org", "ORCPT xtext decoded");
    smtpproto_addrcmd_clear(&ac);
    rcpt("TO:<a@b> NOTIFY=FAILURE ORCPT=RFC822;x", SMTPP_EXT_ALL, &ac, &e);
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

        is_int(rcpt(arg, SMTPP_EXT_ALL, &ac, &e), SMTPP_OK, "500-char ORCPT value");
        smtpproto_addrcmd_clear(&ac);
        free(arg);
        arg = xasprintf("TO:<a@b> ORCPT=rfc822;%so", v);
        PARR(arg);
        free(arg);
        free(v);
    }

    /* generic syntax, unknown, combinations */
    PARM("FROM:<> FOO=bar");
    mail("FROM:<> FOO=bar", SMTPP_EXT_ALL, &ac, &e);
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
                SMTPP_EXT_ALL, &ac, &e), SMTPP_OK, "all MAIL parameters, extra spaces");
    ok(ac.params.seen == (SMTPP_P_SIZE | SMTPP_P_BODY | SMTPP_P_RET | SMTPP_P_ENVID
                          | SMTPP_P_AUTH | SMTPP_P_SMTPUTF8), "  all seen");
    smtpproto_addrcmd_clear(&ac);
    /* a parameter error after a good path leaves nothing behind */
    bad(true, "FROM:<a@b> SIZE=1 FOO", SMTPP_EXT_ALL, SMTPP_E_PARAM, 555, "5.5.4");
    /* path errors win over parameter errors */
    bad(true, "FROM:<a@@b> FOO", SMTPP_EXT_ALL, SMTPP_E_SYNTAX, 501, "5.1.7");
}

static void test_xtext(void)
{
    static const struct { const char *in; const char *out; } cases[] = {
        { "", "" }, { "abc", "abc" }, { "+41", "A" }, { "a+2Bb", "a+b" },
        { "+7E+21", "~!" }, { "+C3+A9", "\xc3\xa9" }, { "+20", " " },
        { "+4", NULL }, { "+", NULL }, { "+4g", NULL }, { "+zz", NULL },
        { "+2b", NULL }, { "a b", NULL }, { "a=b", NULL }, { "+00", NULL },
        { "\x7f", NULL }, { "\xc3\xa9", NULL }, { "\t", NULL },
    };
    size_t i, n;
    char *out;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int r = smtpproto_xtext_decode(cases[i].in, strlen(cases[i].in), &out, &n);

        if (cases[i].out) {
            is_int(r, 0, "xtext '%s' decodes", cases[i].in);
            is_str(out, cases[i].out, "  to '%s'", cases[i].out);
            is_int(n, strlen(cases[i].out), "  length");
        } else {
            is_int(r, -1, "xtext '%s' refused", cases[i].in);
            ok(out == NULL, "  no output");
        }
        free(out);
    }
    is_int(smtpproto_xtext_decode("ab+41", 2, &out, NULL), 0, "length is honoured");
    is_str(out, "ab", "  decoded only that much");
    free(out);
    is_int(smtpproto_xtext_decode("a+4", 3, &out, NULL), -1, "truncated hexchar at length end");
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
        struct smtpproto_err e = { 0, NULL, NULL };
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
        struct smtpproto_err e;
        uint64_t size;
        bool last;

        smtpproto_parse_bdat("18446744073709551616", 20, &size, &last, &e);
        like(e.text, "too large", "overflow reason");
        is_int(smtpproto_parse_bdat(NULL, 0, &size, &last, &e), SMTPP_E_SYNTAX, "NULL argument");
    }
}

/* ---- replies ---- */

static void bad_reply_code(void)
{
    buf_t *b = buf_new(0);

    smtpproto_reply(b, 99, NULL, NULL, 0);
}

static void test_replies(void)
{
    buf_t *b = buf_new(0), *small;
    const char *lines[] = { "mx.example.org", "PIPELINING", "SIZE 10240000" };
    const char *evil[] = { "a\r\nb", "c\rd\ne\x7f\x01" };
    struct smtpproto_err e = { 501, "5.1.7", "Bad sender address syntax" };
    char *longtext;

    is_int(smtpproto_reply(b, 250, "2.0.0", (const char *const[]){ "Ok" }, 1), 0, "one-line reply");
    is_str(buf_cstr(b), "250 2.0.0 Ok\r\n", "  text");
    buf_reset(b);
    smtpproto_reply(b, 250, NULL, lines, 3);
    is_str(buf_cstr(b), "250-mx.example.org\r\n250-PIPELINING\r\n250 SIZE 10240000\r\n",
           "multi-line reply without dsn");
    buf_reset(b);
    smtpproto_reply(b, 550, "5.1.1", lines, 2);
    is_str(buf_cstr(b), "550-5.1.1 mx.example.org\r\n550 5.1.1 PIPELINING\r\n",
           "multi-line reply with dsn on every line");
    buf_reset(b);
    smtpproto_reply(b, 221, "2.0.0", NULL, 0);
    is_str(buf_cstr(b), "221 2.0.0\r\n", "no text lines");
    buf_reset(b);
    smtpproto_reply(b, 354, NULL, NULL, 0);
    is_str(buf_cstr(b), "354\r\n", "bare code");
    buf_reset(b);
    smtpproto_reply(b, 250, NULL, (const char *const[]){ "" }, 1);
    is_str(buf_cstr(b), "250\r\n", "empty text, no trailing space");
    buf_reset(b);
    smtpproto_reply(b, 500, "5.5.2", evil, 2);
    is_str(buf_cstr(b), "500-5.5.2 a??b\r\n500 5.5.2 c?d?e??\r\n", "CR, LF and controls sanitised");
    buf_reset(b);
    smtpproto_replyf(b, 250, "2.1.0", "Ok <%s>", "x\r\nRCPT TO:<evil>");
    is_str(buf_cstr(b), "250 2.1.0 Ok <x??RCPT TO:<evil>>\r\n", "replyf sanitises arguments");
    buf_reset(b);
    smtpproto_replyf(b, 452, "4.5.3", "Too many recipients (%d)", 100);
    is_str(buf_cstr(b), "452 4.5.3 Too many recipients (100)\r\n", "replyf formats");
    buf_reset(b);
    smtpproto_reply(b, 250, "2.0.0\r\n", (const char *const[]){ "x" }, 1);
    is_str(buf_cstr(b), "250 2.0.0?? x\r\n", "dsn sanitised too");
    buf_reset(b);
    smtpproto_reply_err(b, &e);
    is_str(buf_cstr(b), "501 5.1.7 Bad sender address syntax\r\n", "reply_err");
    buf_reset(b);
    longtext = repeat('x', 2000);
    smtpproto_reply(b, 250, "2.0.0", (const char *const *)&longtext, 1);
    is_int(b->len, SMTPPROTO_REPLY_LINE_MAX, "long line cut to 512 bytes");
    ok(memcmp(b->data + b->len - 2, "\r\n", 2) == 0 && memchr(b->data, '\r', b->len - 2) == NULL,
       "  still one CRLF-terminated line");
    buf_reset(b);
    smtpproto_reply(b, 250, NULL, (const char *const[]){ longtext, "b" }, 2);
    is_int(b->len, SMTPPROTO_REPLY_LINE_MAX + 7, "  every line cut");
    free(longtext);

    small = buf_new(10);
    buf_append_str(small, "abc");
    is_int(smtpproto_reply(small, 250, "2.0.0", (const char *const[]){ "Ok" }, 1), -1,
           "reply over the buf limit fails");
    is_str(buf_cstr(small), "abc", "  buffer unchanged");
    buf_free(&small);
    buf_free(&b);
    ok(dies_with_abort(bad_reply_code), "reply code outside 200..599 panics");
}

/* ---- the DATA reader ---- */

/* Split wire at LF like stream_getline() and feed until the end; returns
 * the bytes consumed through the end-of-data line, or -1 if it never came. */
static ssize_t feed_wire(struct smtp_data *d, const char *wire, size_t len)
{
    size_t pos = 0;

    while (pos < len) {
        const char *nl = memchr(wire + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (wire + pos)) + 1 : len - pos;

        if (smtp_data_feed(d, wire + pos, n))
            return (ssize_t)(pos + n);
        pos += n;
    }
    return -1;
}

/* Run wire through a fresh reader; content in *content (caller frees). */
static ssize_t run(const char *wire, size_t len, uint64_t size_limit, size_t line_max,
                   struct smtp_data *d, buf_t **content)
{
    *content = buf_new(0);
    smtp_data_init(d, *content, size_limit, line_max);
    return feed_wire(d, wire, len);
}

static void check_data(const char *desc, const char *wire, const char *content, int code)
{
    struct smtp_data d;
    struct smtpproto_err e = { 0, NULL, NULL };
    buf_t *b;
    ssize_t n = run(wire, strlen(wire), 0, 1000, &d, &b);

    is_int(n, (ssize_t)strlen(wire), "%s: ends at the real end", desc);
    if (n > 0) {
        int r = smtp_data_result(&d, &e);

        is_int(r == 0 ? 250 : e.code, code, "%s: result", desc);
        if (content)
            is_str(buf_cstr(b), content, "%s: content", desc);
    }
    buf_free(&b);
}

static void test_data_basic(void)
{
    struct smtp_data d;
    struct smtpproto_err e;
    buf_t *b;

    check_data("empty message", ".\r\n", "", 250);
    check_data("one line", "Subject: x\r\n\r\nhi\r\n.\r\n", "Subject: x\r\n\r\nhi\r\n", 250);
    check_data("dot-stuffed", "..x\r\n..\r\n...\r\n.y\r\n .\r\nz.\r\n.\r\n",
               ".x\r\n.\r\n..\r\ny\r\n .\r\nz.\r\n", 250);
    check_data("blank lines", "\r\n\r\n.\r\n", "\r\n\r\n", 250);

    /* a last line without CRLF cannot be followed by "." on the same line */
    b = buf_new(0);
    smtp_data_init(&d, b, 0, 1000);
    is_int(smtp_data_feed(&d, "abc.\r\n", 6), 0, "\"abc.\\r\\n\" is not the end");
    is_int(smtp_data_feed(&d, ".\r\n", 3), 1, "\".\\r\\n\" after it is");
    is_str(buf_cstr(b), "abc.\r\n", "  content");
    is_int(smtp_data_result(&d, &e), 0, "  accepted");
    ok(d.done && d.lines == 1 && d.size == 6, "  counters");
    buf_free(&b);
    b = buf_new(0);
    smtp_data_init(&d, b, 0, 1000);
    is_int(smtp_data_feed(&d, "", 0), 0, "empty feed is ignored");
    is_int(smtp_data_feed(&d, ".\r\n", 3), 1, "  and does not hide the end");
    is_int(smtp_data_result(&d, &e), 0, "  accepted");
    buf_free(&b);

    /* content is binary-safe */
    b = buf_new(0);
    smtp_data_init(&d, b, 0, 1000);
    smtp_data_feed(&d, "a\0b\r\n", 5);
    smtp_data_feed(&d, ".\r\n", 3);
    ok(b->len == 5 && memcmp(b->data, "a\0b\r\n", 5) == 0, "NUL kept in content");
    buf_free(&b);
}

static void test_data_smuggling(void)
{
    static const char *const variants[] = {
        "\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", "\r\n.\r", "\r\n.\r\r\n", "\r.\r\n",
        "\n.\r\r\n", "\n\r\n.\n", "\r\n\n.\r\n", "\r\n.\n\r\n", "\r\n \r\n.\r\r\n",
        "\r\n..\n", "\r\n\r.\r\n", "\n\n.\n\n", "\r\n.\r\r",
        "\r\r\n.\r\n" /* last: see below */,
    };
    static const char smuggled[] =
        "MAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n"
        "From: ceo@example.org\r\n\r\nsmuggled\r\n";
    size_t i;

    for (i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        const char *v = variants[i];
        size_t vlen = strlen(v);
        buf_t *wire = buf_new(0), *b;
        struct smtp_data d;
        struct smtpproto_err e = { 0, NULL, NULL };
        ssize_t n;
        char *shown = xmalloc(vlen * 2 + 1), *q = shown;
        size_t k;

        for (k = 0; k < vlen; k++) {
            if (v[k] == '\r') { *q++ = '\\'; *q++ = 'r'; }
            else if (v[k] == '\n') { *q++ = '\\'; *q++ = 'n'; }
            else *q++ = v[k];
        }
        *q = '\0';
        buf_append_str(wire, "Subject: test\r\n\r\nhello");
        buf_append(wire, v, vlen);
        buf_append_str(wire, smuggled);
        buf_append_str(wire, ".\r\n");
        n = run(wire->data, wire->len, 0, 1000, &d, &b);
        if (i + 1 == sizeof(variants) / sizeof(variants[0])) {
            /* these contain a genuine CRLF "." CRLF; the data ends there
             * (so the rest are real commands, as with any client), but the
             * message itself had a bare CR or LF and is refused */
            ok(n > 0 && (size_t)n < wire->len, "'%s': ends at its own CRLF.CRLF", shown);
        } else
            is_int(n, (ssize_t)wire->len, "'%s' does not end the data", shown);
        ok(n > 0 && smtp_data_result(&d, &e) == -1 && e.code == 550
           && strcmp(e.dsn, "5.6.0") == 0, "'%s': message refused 550 5.6.0", shown);
        ok(strstr(buf_cstr(b), "MAIL FROM") == NULL, "'%s': nothing after it stored", shown);
        ok(d.flags == SMTP_DATA_BAD_EOL, "'%s': only the bare-EOL flag", shown);
        free(shown);
        buf_free(&b);
        buf_free(&wire);
    }

    /* ".\n" and "\r.\r\n" right at the start */
    check_data("\".\\n\" at start", ".\nMAIL FROM:<e@x>\r\n.\r\n", NULL, 550);
    check_data("\".\\r\" at start", ".\r.\r\nQUIT\r\n.\r\n", NULL, 550);
    check_data("\".\\r\\r\\n\" at start", ".\r\r\n.\r\n", NULL, 550);
    check_data("bare LF line then CRLF dot", "a\n.\r\nb\r\n.\r\n", NULL, 550);
    check_data("CR LF LF", "a\r\n\n.\r\nx\r\n.\r\n", NULL, 550);

    /* a genuine end followed by more data: the reader stops at the end */
    {
        struct smtp_data d;
        buf_t *b;
        const char *w = "a\r\n.\r\nMAIL FROM:<x@y>\r\n";
        ssize_t n = run(w, strlen(w), 0, 1000, &d, &b);

        is_int(n, 6, "legitimate CRLF.CRLF ends the data exactly there");
        buf_free(&b);
    }
}

static void test_data_caps(void)
{
    struct smtp_data d;
    struct smtpproto_err e;
    buf_t *b;
    char *line, *wire;
    ssize_t n;

    /* size: content bytes after unstuffing */
    n = run("12345678\r\n.\r\n", 13, 10, 1000, &d, &b);
    ok(n == 13 && smtp_data_result(&d, &e) == 0, "exactly at the size limit: ok");
    buf_free(&b);
    n = run("..2345678\r\n.\r\n", 14, 10, 1000, &d, &b);
    ok(n == 14 && smtp_data_result(&d, &e) == 0, "stuffing dot not counted");
    buf_free(&b);
    wire = "123456789\r\nmore\r\nand more\r\n.\r\n";
    n = run(wire, strlen(wire), 10, 1000, &d, &b);
    is_int(n, (ssize_t)strlen(wire), "over the size limit: still reads to the end");
    is_int(smtp_data_result(&d, &e), -1, "  refused");
    ok(e.code == 552 && strcmp(e.dsn, "5.3.4") == 0, "  552 5.3.4");
    is_int(b->len, 0, "  nothing stored past the limit");
    ok(d.size == 11 + 6 + 10, "  but every byte counted");
    buf_free(&b);
    /* stores up to the limit then stops */
    wire = "12345\r\n12345\r\n.\r\n";
    n = run(wire, strlen(wire), 8, 1000, &d, &b);
    is_str(buf_cstr(b), "12345\r\n", "  first line under the limit was stored");
    buf_free(&b);
    /* the output buffer's own limit counts as too big */
    b = buf_new(4);
    smtp_data_init(&d, b, 0, 1000);
    n = feed_wire(&d, "12345\r\n.\r\n", 10);
    ok(n == 10 && smtp_data_result(&d, &e) == -1 && e.code == 552, "buf limit -> 552");
    buf_free(&b);

    /* line length: the wire line, CRLF and stuffing dot included */
    line = repeat('x', 998);
    wire = xasprintf("%s\r\n.\r\n", line);
    n = run(wire, strlen(wire), 0, 1000, &d, &b);
    ok(n > 0 && smtp_data_result(&d, &e) == 0, "998 + CRLF = 1000: ok");
    buf_free(&b);
    free(wire);
    wire = xasprintf("%sx\r\nafter\r\n.\r\n", line);
    n = run(wire, strlen(wire), 0, 1000, &d, &b);
    is_int(n, (ssize_t)strlen(wire), "1001-byte line: reads to the end");
    ok(smtp_data_result(&d, &e) == -1 && e.code == 550 && strcmp(e.dsn, "5.6.0") == 0,
       "  550 5.6.0");
    like(e.text, "too long", "  reason");
    buf_free(&b);
    free(wire);
    wire = xasprintf(".%s\r\n.\r\n", line);
    n = run(wire, strlen(wire), 0, 1000, &d, &b);
    ok(n > 0 && (d.flags & SMTP_DATA_LONGLINE), "stuffing dot counts for the line length");
    buf_free(&b);
    free(wire);
    free(line);
    n = run("123456789\r\n.\r\n", 14, 0, 10, &d, &b);
    ok(n == 14 && (d.flags & SMTP_DATA_LONGLINE), "custom line_max 10");
    buf_free(&b);
    n = run("123456789\r\n.\r\n", 14, 0, 0, &d, &b);
    ok(n == 14 && d.flags == 0, "line_max 0: no limit");
    buf_free(&b);

    /* STREAM_TOOLONG from the stream: ending unknown -> never an end */
    b = buf_new(0);
    smtp_data_init(&d, b, 0, 1000);
    smtp_data_feed_toolong(&d);
    is_int(smtp_data_feed(&d, ".\r\n", 3), 0, "after a discarded line \".\\r\\n\" is not the end");
    is_int(smtp_data_feed(&d, ".\r\n", 3), 1, "  the next one is");
    ok(smtp_data_result(&d, &e) == -1 && e.code == 550, "  refused as too long");
    buf_free(&b);

    /* precedence: bare LF wins over too big and too long */
    n = run("aaaaaaaaaaaaaaaaaaaa\n\r\n.\r\n", 26, 5, 10, &d, &b);
    ok(n == 26 && d.flags == (SMTP_DATA_BAD_EOL | SMTP_DATA_TOOBIG | SMTP_DATA_LONGLINE),
       "all three flags set");
    ok(smtp_data_result(&d, &e) == -1 && e.code == 550 && strstr(e.text, "bare"),
       "  bare CR/LF reported first");
    buf_free(&b);
    n = run("aaaaaaaaaaaaaaaaaaaa\r\n.\r\n", 25, 5, 10, &d, &b);
    ok(smtp_data_result(&d, &e) == -1 && e.code == 552, "too big before too long");
    buf_free(&b);
}

struct sinkstate {
    buf_t *got;
    int calls, fail_at;
};

static int sink(void *ctx, const char *data, size_t len)
{
    struct sinkstate *s = ctx;

    if (++s->calls == s->fail_at)
        return -1;
    return buf_append(s->got, data, len);
}

static void feed_after_end(void)
{
    struct smtp_data d;

    smtp_data_init(&d, NULL, 0, 0);
    smtp_data_feed(&d, ".\r\n", 3);
    smtp_data_feed(&d, "x\r\n", 3);
}

static void result_too_early(void)
{
    struct smtp_data d;
    struct smtpproto_err e;

    smtp_data_init(&d, NULL, 0, 0);
    smtp_data_result(&d, &e);
}

static void test_data_sink(void)
{
    struct smtp_data d;
    struct smtpproto_err e;
    struct sinkstate s = { buf_new(0), 0, 0 };
    const char *w = "a\r\n..b\r\n\r\nc\r\n.\r\n";

    smtp_data_init(&d, NULL, 0, 1000);
    smtp_data_set_sink(&d, sink, &s);
    is_int(feed_wire(&d, w, strlen(w)), (ssize_t)strlen(w), "sink: ends");
    is_str(buf_cstr(s.got), "a\r\n.b\r\n\r\nc\r\n", "  streamed content, unstuffed");
    is_int(s.calls, 4, "  one call per line");
    is_int(smtp_data_result(&d, &e), 0, "  accepted");
    buf_reset(s.got);
    s.calls = 0;
    s.fail_at = 2;
    smtp_data_init(&d, NULL, 0, 1000);
    smtp_data_set_sink(&d, sink, &s);
    is_int(feed_wire(&d, w, strlen(w)), (ssize_t)strlen(w), "failing sink: still ends");
    is_int(s.calls, 2, "  not called again after failing");
    ok(smtp_data_result(&d, &e) == -1 && e.code == 451 && strcmp(e.dsn, "4.3.0") == 0,
       "  451 4.3.0");
    buf_free(&s.got);
    ok(dies_with_abort(feed_after_end), "feeding after the end panics");
    ok(dies_with_abort(result_too_early), "result before the end panics");
}

/* The reader driven by real stream_getline() over a pipe. */
static void test_data_stream(void)
{
    static const char wire[] =
        "Subject: a\r\n\r\nx\n.\nMAIL FROM:<e@x>\r\n..dot\r\n.\r\nQUIT\r\n";
    int fds[2];
    stream_t *s;
    buf_t *line = buf_new(0), *b = buf_new(0);
    struct smtp_data d;
    struct smtpproto_err e;
    ssize_t n;
    int ended = 0;

    if (pipe(fds) < 0 || write(fds[1], wire, sizeof(wire) - 1) != (ssize_t)sizeof(wire) - 1) {
        ok(0, "pipe");
        return;
    }
    close(fds[1]);
    s = stream_open(fds[0]);
    smtp_data_init(&d, b, 0, 1000);
    while (!ended && (n = stream_getline(s, line, 4096)) > 0)
        ended = smtp_data_feed(&d, line->data, line->len);
    ok(ended, "stream: end of data found");
    ok(smtp_data_result(&d, &e) == -1 && e.code == 550, "stream: bare-LF message refused");
    n = stream_getline(s, line, 4096);
    is_str(n > 0 ? buf_cstr(line) : "", "QUIT\r\n", "stream: next line is the next command");
    stream_close(&s);
    buf_free(&line);
    buf_free(&b);
}

int main(void)
{
    alarm(60);
    msg_init("smtpproto-test", MSG_STDERR);
    test_commands();
    test_paths();
    test_utf8();
    test_params();
    test_xtext();
    test_bdat();
    test_replies();
    test_data_basic();
    test_data_smuggling();
    test_data_caps();
    test_data_sink();
    test_data_stream();
    return done_testing();
}
