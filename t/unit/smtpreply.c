/*
 * t/unit/smtpreply.c - unit tests for lib/smtpreply.c, SMTP replies in
 * both directions.
 *
 * Formatting: one and several lines, with and without an enhanced code,
 * sanitising, the line cut, the buffer limit, the panic on a bad code.
 * Parsing: single- and multi-line replies, pipelined replies in one
 * chunk, the same result for every chunking (every split point, every
 * chunk size), each kind of bad line, the sticky error, the line, line
 * count and size limits (and that a line without LF never grows past its
 * cap), enhanced status codes present, absent and malformed, sanitised
 * text, and formatted replies parsed back.  alarm() guards against hangs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "msg.h"
#include "smtpreply.h"
#include "xalloc.h"
#include "../lib/tap.h"
#include "../lib/testlib.h"

static char *repeat(int ch, size_t n)
{
    char *s = xmalloc(n + 1);

    memset(s, ch, n);
    s[n] = '\0';
    return s;
}

static void bad_reply_code(void)
{
    buf_t *b = buf_new(0);

    smtpreply_format(b, 99, NULL, NULL, 0);
}

static void test_format(void)
{
    buf_t *b = buf_new(0), *small;
    const char *lines[] = { "mx.example.org", "PIPELINING", "SIZE 10240000" };
    const char *evil[] = { "a\r\nb", "c\rd\ne\x7f\x01" };
    struct smtpreply_err e = { 501, "5.1.7", "Bad sender address syntax" };
    char *longtext;

    is_int(smtpreply_format(b, 250, "2.0.0", (const char *const[]){ "Ok" }, 1), 0, "one-line reply");
    is_str(buf_cstr(b), "250 2.0.0 Ok\r\n", "  text");
    buf_reset(b);
    smtpreply_format(b, 250, NULL, lines, 3);
    is_str(buf_cstr(b), "250-mx.example.org\r\n250-PIPELINING\r\n250 SIZE 10240000\r\n",
           "multi-line reply without dsn");
    buf_reset(b);
    smtpreply_format(b, 550, "5.1.1", lines, 2);
    is_str(buf_cstr(b), "550-5.1.1 mx.example.org\r\n550 5.1.1 PIPELINING\r\n",
           "multi-line reply with dsn on every line");
    buf_reset(b);
    smtpreply_format(b, 221, "2.0.0", NULL, 0);
    is_str(buf_cstr(b), "221 2.0.0\r\n", "no text lines");
    buf_reset(b);
    smtpreply_format(b, 354, NULL, NULL, 0);
    is_str(buf_cstr(b), "354\r\n", "bare code");
    buf_reset(b);
    smtpreply_format(b, 250, NULL, (const char *const[]){ "" }, 1);
    is_str(buf_cstr(b), "250\r\n", "empty text, no trailing space");
    buf_reset(b);
    smtpreply_format(b, 334, NULL, (const char *const[]){ "" }, 1);
    is_str(buf_cstr(b), "334 \r\n", "an empty AUTH challenge keeps its space (RFC 4954)");
    buf_reset(b);
    smtpreply_format(b, 500, "5.5.2", evil, 2);
    is_str(buf_cstr(b), "500-5.5.2 a??b\r\n500 5.5.2 c?d?e??\r\n", "CR, LF and controls sanitised");
    buf_reset(b);
    smtpreply_formatf(b, 250, "2.1.0", "Ok <%s>", "x\r\nRCPT TO:<evil>");
    is_str(buf_cstr(b), "250 2.1.0 Ok <x??RCPT TO:<evil>>\r\n", "replyf sanitises arguments");
    buf_reset(b);
    smtpreply_formatf(b, 452, "4.5.3", "Too many recipients (%d)", 100);
    is_str(buf_cstr(b), "452 4.5.3 Too many recipients (100)\r\n", "replyf formats");
    buf_reset(b);
    smtpreply_format(b, 250, "2.0.0\r\n", (const char *const[]){ "x" }, 1);
    is_str(buf_cstr(b), "250 2.0.0?? x\r\n", "dsn sanitised too");
    buf_reset(b);
    smtpreply_format_err(b, &e);
    is_str(buf_cstr(b), "501 5.1.7 Bad sender address syntax\r\n", "reply_err");
    buf_reset(b);
    longtext = repeat('x', 2000);
    smtpreply_format(b, 250, "2.0.0", (const char *const *)&longtext, 1);
    is_int(b->len, SMTPREPLY_LINE_MAX, "long line cut to 512 bytes");
    ok(memcmp(b->data + b->len - 2, "\r\n", 2) == 0 && memchr(b->data, '\r', b->len - 2) == NULL,
       "  still one CRLF-terminated line");
    buf_reset(b);
    smtpreply_format(b, 250, NULL, (const char *const[]){ longtext, "b" }, 2);
    is_int(b->len, SMTPREPLY_LINE_MAX + 7, "  every line cut");
    free(longtext);

    small = buf_new(10);
    buf_append_str(small, "abc");
    is_int(smtpreply_format(small, 250, "2.0.0", (const char *const[]){ "Ok" }, 1), -1,
           "reply over the buf limit fails");
    is_str(buf_cstr(small), "abc", "  buffer unchanged");
    buf_free(&small);
    buf_free(&b);
    ok(dies_with_abort(bad_reply_code), "reply code outside 200..599 panics");
}

/* ---- parsing ---- */

/* Describe a reply: "code dsn|line|line|...". */
static void describe(buf_t *out, const struct smtpreply *r)
{
    size_t i;

    buf_printf(out, "%d %s", r->code, r->dsn);
    for (i = 0; i < r->nlines; i++)
        buf_printf(out, "|%s", r->lines[i]);
    buf_putc(out, ';');
}

/* Feed wire in chunks of chunk bytes (0: all at once) through a fresh
 * parser; the replies and the error, described. */
static char *run(const char *wire, size_t len, size_t chunk, const struct smtpreply_limits *lim)
{
    smtpreply_parser_t *p = smtpreply_parser_new(lim);
    buf_t *out = buf_new(0);
    size_t pos = 0;
    char *desc;

    if (chunk == 0)
        chunk = len ? len : 1;
    while (pos < len) {
        size_t n = len - pos < chunk ? len - pos : chunk, off = 0;

        while (off < n) {
            const struct smtpreply *r = NULL;
            const char *why = NULL;
            size_t used = 12345;
            int rc = smtpreply_parse(p, wire + pos + off, n - off, &used, &r, &why);

            if (rc == SMTPREPLY_ERROR) {
                buf_printf(out, "ERR %s", why);
                goto out;
            }
            if (used > n - off || (rc == SMTPREPLY_MORE && used != n - off)
                || (rc == SMTPREPLY_DONE) != (r != NULL) || (rc == SMTPREPLY_DONE && used == 0)) {
                buf_printf(out, "BAD used=%zu rc=%d", used, rc);
                goto out;
            }
            if (rc == SMTPREPLY_DONE)
                describe(out, r);
            off += used;
        }
        pos += n;
    }
out:
    smtpreply_parser_free(&p);
    desc = buf_steal(out, NULL);
    buf_free(&out);
    return desc;
}

static void check(const char *desc, const char *wire, const char *want)
{
    char *got = run(wire, strlen(wire), 0, NULL);

    is_str(got, want, "%s", desc);
    free(got);
}

static void check_bad(const char *desc, const char *wire, const char *why)
{
    char *got = run(wire, strlen(wire), 0, NULL);

    like(got, why, "%s: refused", desc);
    free(got);
}

static void test_parse_basic(void)
{
    smtpreply_parser_t *p = smtpreply_parser_new(NULL);
    const struct smtpreply *r = NULL;
    const char *why = NULL;
    size_t used;
    static const char pipelined[] = "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go on\r\n";

    is_int(smtpreply_parse(p, "250 2.0.0 Ok\r\n", 14, &used, &r, &why), SMTPREPLY_DONE,
           "single line: done");
    is_int(used, 14, "  all bytes used");
    ok(r && r->code == 250 && r->nlines == 1, "  code 250, one line");
    is_str(r ? r->dsn : NULL, "2.0.0", "  enhanced code");
    is_str(r ? r->lines[0] : NULL, "2.0.0 Ok", "  text as received");

    is_int(smtpreply_parse(p, "250-mx.example.org\r\n250-PIPE", 28, &used, &r, &why),
           SMTPREPLY_MORE, "partial multi-line: more");
    is_int(used, 28, "  all bytes taken");
    ok(r == NULL, "  no reply yet");
    is_int(smtpreply_parse(p, "LINING\r\n250 SIZE 1000\r\n", 23, &used, &r, &why),
           SMTPREPLY_DONE, "  rest: done");
    ok(r && r->code == 250 && r->nlines == 3, "  three lines");
    if (r && r->nlines == 3) {
        is_str(r->lines[0], "mx.example.org", "  line 1");
        is_str(r->lines[1], "PIPELINING", "  line 2 joined across chunks");
        is_str(r->lines[2], "SIZE 1000", "  line 3");
        is_str(r->dsn, "", "  no enhanced code");
    }

    /* pipelined replies in one chunk: one at a time */
    is_int(smtpreply_parse(p, pipelined, sizeof(pipelined) - 1, &used, &r, &why),
           SMTPREPLY_DONE, "pipelined: first reply");
    is_int(used, 14, "  used up to its end");
    is_str(r ? r->dsn : NULL, "2.1.0", "  its dsn");
    is_int(smtpreply_parse(p, pipelined + 14, sizeof(pipelined) - 15, &used, &r, &why),
           SMTPREPLY_DONE, "  second");
    is_str(r ? r->dsn : NULL, "2.1.5", "  its dsn");
    is_int(smtpreply_parse(p, pipelined + 28, sizeof(pipelined) - 29, &used, &r, &why),
           SMTPREPLY_DONE, "  third");
    ok(r && r->code == 354 && strcmp(r->lines[0], "go on") == 0, "  354 go on");
    is_int(smtpreply_parse(p, "", 0, &used, &r, &why), SMTPREPLY_MORE, "empty feed: more");
    is_int(used, 0, "  nothing used");
    /* NULL reply and why pointers are allowed */
    is_int(smtpreply_parse(p, "221 Bye\r\n", 9, &used, NULL, NULL), SMTPREPLY_DONE,
           "NULL reply and why");
    smtpreply_parser_free(&p);
    smtpreply_parser_free(&p);
    ok(p == NULL, "free twice is harmless");

    check("bare code", "250\r\n", "250 |;");
    check("code and SP", "250 \r\n", "250 |;");
    check("empty continuation", "250-\r\n250 x\r\n", "250 ||x;");
    check("bare LF line ends tolerated", "250-a\n250 b\n", "250 |a|b;");
    check("mixed line ends", "250-a\r\n250-b\n250 c\r\n", "250 |a|b|c;");
    check("greeting", "220 mx.example.org ESMTP Posthorn\r\n",
          "220 |mx.example.org ESMTP Posthorn;");
    check("599 is in range", "599 x\r\n", "599 |x;");
    check("200 is in range", "200 x\r\n", "200 |x;");
    check("text with UTF-8 kept", "250 caf\xc3\xa9\r\n", "250 |caf\xc3\xa9;");
    check("controls sanitised", "250 a\tb\x01" "c\x7f\r\n", "250 |a?b?c?;");
    check("bare CR and NUL in text", "250 a\rb\r\r\n", "250 |a?b?;");
    {
        char *got = run("250 a\0b\r\n", 9, 0, NULL);

        is_str(got, "250 |a?b;", "NUL in text sanitised");
        free(got);
    }
    check("nothing yet", "250-a\r\n", "");
    check("line without its end", "250 a", "");
    check("two replies", "250-a\r\n250 b\r\n550 5.1.1 no\r\n", "250 |a|b;550 5.1.1|5.1.1 no;");
}

static void test_parse_bad(void)
{
    smtpreply_parser_t *p;
    size_t used;
    const char *why = NULL, *why2 = NULL;

    check_bad("short line", "25\r\n", "not three digits");
    check_bad("empty line", "\r\n", "not three digits");
    check_bad("bare LF", "\n", "not three digits");
    check_bad("letters", "abc def\r\n", "not three digits");
    check_bad("non-digit in code", "2x0 Ok\r\n", "not three digits");
    check_bad("leading space", " 250 Ok\r\n", "not three digits");
    check_bad("code 199", "199 x\r\n", "out of range");
    check_bad("code 600", "600 x\r\n", "out of range");
    check_bad("code 099", "099 x\r\n", "out of range");
    check_bad("code 000", "000\r\n", "out of range");
    check_bad("four digits", "2500 Ok\r\n", "no SP or");
    check_bad("letter after code", "250x Ok\r\n", "no SP or");
    check_bad("tab after code", "250\tOk\r\n", "no SP or");
    check_bad("CR after code", "250\r\r\n", "no SP or");
    check_bad("different codes", "250-a\r\n251 b\r\n", "different codes");
    check_bad("different class", "250-a\r\n550 b\r\n", "different codes");
    check_bad("bad later line", "250-a\r\n250-b\r\nxyz\r\n", "not three digits");
    check_bad("good reply then garbage", "250 a\r\nhello\r\n", "250 |a;ERR reply code is not");

    /* the error is sticky */
    p = smtpreply_parser_new(NULL);
    is_int(smtpreply_parse(p, "xyz\r\n250 Ok\r\n", 13, &used, NULL, &why), SMTPREPLY_ERROR,
           "error");
    ok(used <= 5, "  used no more than the bad line (%zu)", used);
    is_int(smtpreply_parse(p, "250 Ok\r\n", 8, &used, NULL, &why2), SMTPREPLY_ERROR,
           "  and stays an error");
    ok(why && why2 && strcmp(why, why2) == 0, "  with the same reason");
    is_int(used, 0, "  nothing used after it");
    smtpreply_parser_free(&p);
}

static void test_parse_limits(void)
{
    struct smtpreply_limits small = { 64, 3, 1000 }, tiny = { 20, 100, 30 };
    smtpreply_parser_t *p;
    char *text, *wire, *got;
    size_t used, pos, i;
    int rc = SMTPREPLY_MORE;
    const char *why = NULL;

    /* the default line limit: 4096 bytes, CRLF included */
    text = repeat('x', 4096 - 6);
    wire = xasprintf("250 %s\r\n", text);
    got = run(wire, strlen(wire), 0, NULL);
    ok(strncmp(got, "250 |xxx", 8) == 0, "4096-byte line accepted");
    free(got);
    free(wire);
    wire = xasprintf("250 %sx\r\n", text);
    got = run(wire, strlen(wire), 0, NULL);
    like(got, "ERR reply line too long", "4097-byte line refused");
    free(got);
    got = run(wire, strlen(wire), 7, NULL);
    like(got, "ERR reply line too long", "  also in 7-byte chunks");
    free(got);
    free(wire);
    wire = xasprintf("250 %s\n", text);
    got = run(wire, strlen(wire), 0, NULL);
    ok(strncmp(got, "250 |xxx", 8) == 0, "4095 bytes with a bare LF accepted");
    free(got);
    free(wire);
    free(text);

    /* a line that never ends: refused as soon as it passes the cap */
    p = smtpreply_parser_new(NULL);
    text = repeat('9', 1000);
    memcpy(text, "250-", 4);
    for (pos = 0, i = 0; i < 1000 && rc == SMTPREPLY_MORE; i++) {
        rc = smtpreply_parse(p, text, 1000, &used, NULL, &why);
        pos += used;
    }
    is_int(rc, SMTPREPLY_ERROR, "endless line: error");
    ok(pos <= 4096, "  after at most the line limit (%zu bytes)", pos);
    is_int(i, 5, "  on the fifth 1000-byte chunk");
    free(text);
    smtpreply_parser_free(&p);

    /* lines a reply */
    got = run("250-a\r\n250-b\r\n250 c\r\n", 21, 0, &small);
    is_str(got, "250 |a|b|c;", "3 lines with lines_max 3");
    free(got);
    got = run("250-a\r\n250-b\r\n250-c\r\n250 d\r\n", 28, 0, &small);
    like(got, "ERR too many lines", "4 lines refused");
    free(got);
    got = run("250-a\r\n250-b\r\n250-c\r\n250-d\r\n", 28, 1, &small);
    like(got, "ERR too many lines", "  also fed byte by byte");
    free(got);
    got = run("250 a\r\n250 b\r\n250 c\r\n250 d\r\n", 28, 0, &small);
    is_str(got, "250 |a;250 |b;250 |c;250 |d;", "  counted per reply");
    free(got);
    /* custom line limit */
    wire = xasprintf("250 %s\r\n", "1234567890123456789012345678901234567890123456789012345678");
    got = run(wire, strlen(wire), 0, &small);
    ok(strncmp(got, "250 |1234", 9) == 0, "64-byte line with line_max 64");
    free(got);
    free(wire);
    got = run("250 12345678901234567890123456789012345678901234567890123456789\r\n", 65, 3,
              &small);
    like(got, "ERR reply line too long", "65 bytes refused");
    free(got);

    /* bytes a reply */
    got = run("250-123456789\r\n250 123456789\r\n", 30, 0, &tiny);
    is_str(got, "250 |123456789|123456789;", "30 bytes with size_max 30");
    free(got);
    got = run("250-123456789\r\n250 1234567890\r\n", 31, 0, &tiny);
    like(got, "ERR reply too long", "31 bytes refused");
    free(got);
    got = run("250-12345678\r\n250-12345678\r\n250 1\r\n", 35, 0, &tiny);
    like(got, "ERR reply too long", "  also over three lines");
    free(got);
    got = run("250 12345678901234\r\n250 12345678901234\r\n", 40, 0, &tiny);
    is_str(got, "250 |12345678901234;250 |12345678901234;", "  counted per reply");
    free(got);
}

static void bad_limits(void)
{
    struct smtpreply_limits l = { 4, 1, 100 };

    smtpreply_parser_new(&l);
}

static void bad_limits2(void)
{
    struct smtpreply_limits l = { 100, 1, 99 };

    smtpreply_parser_new(&l);
}

static void bad_limits3(void)
{
    struct smtpreply_limits l = { 100, 0, 1000 };

    smtpreply_parser_new(&l);
}

/* Every split point, every chunk size: the same replies. */
static void test_chunking(void)
{
    static const char *const wires[] = {
        "220 mx.example.org ESMTP\r\n250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
        "250-ENHANCEDSTATUSCODES\r\n250 CHUNKING\r\n250 2.1.0 Ok\r\n550-5.1.1 no such user\r\n"
        "550 5.1.1 really\r\n354 End data\r\n250 2.0.0 Ok: queued as 123\r\n221 2.0.0 Bye\r\n",
        "250-a\n250-b\r\n250 c\n421 4.4.2 bye\r\n",
        "250-a\r\n250 b\r\n250-c\r\n251 d\r\n250 e\r\n",
        "250 ok\r\n25x bad\r\n",
    };
    size_t w;

    for (w = 0; w < sizeof(wires) / sizeof(wires[0]); w++) {
        const char *wire = wires[w];
        size_t len = strlen(wire), i;
        char *want = run(wire, len, 0, NULL);
        int bad_split = 0, bad_size = 0;

        for (i = 1; i < len; i++) {
            /* two chunks split at i: fed as [0,i) then [i,len) */
            smtpreply_parser_t *p = smtpreply_parser_new(NULL);
            buf_t *out = buf_new(0);
            const char *parts[2] = { wire, wire + i };
            size_t lens[2] = { i, len - i };

            for (int k = 0; k < 2; k++) {
                size_t off = 0, used;
                const struct smtpreply *r;
                const char *why;

                while (off < lens[k]) {
                    int rc = smtpreply_parse(p, parts[k] + off, lens[k] - off, &used, &r, &why);

                    if (rc == SMTPREPLY_ERROR) {
                        buf_printf(out, "ERR %s", why);
                        k = 2;
                        break;
                    }
                    if (rc == SMTPREPLY_DONE)
                        describe(out, r);
                    off += used;
                }
            }
            if (strcmp(buf_cstr(out), want) != 0) {
                if (bad_split++ == 0)
                    diag("split at %zu: got '%s', want '%s'", i, buf_cstr(out), want);
            }
            buf_free(&out);
            smtpreply_parser_free(&p);
        }
        for (i = 1; i <= len; i++) {
            char *got = run(wire, len, i, NULL);

            if (strcmp(got, want) != 0 && bad_size++ == 0)
                diag("chunk size %zu: got '%s', want '%s'", i, got, want);
            free(got);
        }
        is_int(bad_split, 0, "wire %zu: every split point gives the same replies", w);
        is_int(bad_size, 0, "wire %zu: every chunk size gives the same replies", w);
        if (w == 0)
            like(want, "221 2.0.0|2.0.0 Bye;", "  wire 0 parsed to the end");
        if (w == 2)
            like(want, "250 |a|b;ERR reply lines with different codes", "  wire 2 refused");
        free(want);
    }
}

static void test_dsn(void)
{
    static const struct { const char *wire; const char *dsn; } cases[] = {
        { "250 2.1.5 Ok\r\n", "2.1.5" },
        { "550 5.7.1\r\n", "5.7.1" },
        { "451 4.999.999 x\r\n", "4.999.999" },
        { "250 2.0.10 x\r\n", "2.0.10" },
        { "250-2.0.0 a\r\n250 2.0.1 b\r\n", "2.0.0" },
        { "250 Ok\r\n", "" },
        { "250\r\n", "" },
        { "250-a\r\n250 2.0.0 b\r\n", "" },
        { "250 2.1 Ok\r\n", "" },
        { "250 2..5 x\r\n", "" },
        { "250 2.1.5x\r\n", "" },
        { "250 2.1.5.6 x\r\n", "" },
        { "250 2.1000.1 x\r\n", "" },
        { "250 2.1.1000 x\r\n", "" },
        { "550 2.1.5 x\r\n", "" },
        { "250 5.1.1 x\r\n", "" },
        { "250 x2.1.5\r\n", "" },
        { "250  2.1.5 x\r\n", "" },
        { "250 2.1.5\tx\r\n", "" },
        { "250 .1.5 x\r\n", "" },
        { "250 2.1. x\r\n", "" },
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        smtpreply_parser_t *p = smtpreply_parser_new(NULL);
        const struct smtpreply *r = NULL;
        size_t used;
        int rc = smtpreply_parse(p, cases[i].wire, strlen(cases[i].wire), &used, &r, NULL);

        ok(rc == SMTPREPLY_DONE, "'%.*s' parsed", (int)strcspn(cases[i].wire, "\r"),
           cases[i].wire);
        is_str(r ? r->dsn : NULL, cases[i].dsn, "  enhanced code '%s'", cases[i].dsn);
        smtpreply_parser_free(&p);
    }
}

/* What smtpreply_format writes, the parser reads back. */
static void test_format_parse(void)
{
    const char *lines[] = { "mx.example.org", "", "SIZE 10240000", "a\r\nb" };
    buf_t *b = buf_new(0);
    char *got;

    smtpreply_format(b, 250, NULL, lines, 4);
    got = run(b->data, b->len, 0, NULL);
    is_str(got, "250 |mx.example.org||SIZE 10240000|a??b;", "formatted multi-line parses back");
    free(got);
    buf_reset(b);
    smtpreply_format(b, 550, "5.1.1", lines, 2);
    got = run(b->data, b->len, 0, NULL);
    is_str(got, "550 5.1.1|5.1.1 mx.example.org|5.1.1;", "  with an enhanced code");
    free(got);
    buf_reset(b);
    smtpreply_formatf(b, 221, "2.0.0", "Bye");
    got = run(b->data, b->len, 0, NULL);
    is_str(got, "221 2.0.0|2.0.0 Bye;", "  formatf");
    free(got);
    buf_free(&b);
}

int main(void)
{
    alarm(120);
    msg_init("smtpreply-test", MSG_STDERR);
    test_format();
    test_parse_basic();
    test_parse_bad();
    test_parse_limits();
    ok(dies_with_abort(bad_limits), "line_max under 5 panics");
    ok(dies_with_abort(bad_limits2), "size_max under line_max panics");
    ok(dies_with_abort(bad_limits3), "lines_max 0 panics");
    test_chunking();
    test_dsn();
    test_format_parse();
    return done_testing();
}
