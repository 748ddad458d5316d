/*
 * t/unit/smtpdata.c - unit tests for lib/smtpdata.c, the DATA reader.
 *
 * The smuggling matrix (no bare-CR / bare-LF variant of "." can end the
 * data), dot-unstuffing, size and line caps, the order of the verdicts,
 * the sink, the panics for caller bugs, and one run over a real stream.
 * alarm() guards against hangs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "msg.h"
#include "smtpdata.h"
#include "stream.h"
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

/* Split wire at LF like stream_getline() and feed until the end; returns
 * the bytes consumed through the end-of-data line, or -1 if it never came. */
static ssize_t feed_wire(struct smtpdata *d, const char *wire, size_t len)
{
    size_t pos = 0;

    while (pos < len) {
        const char *nl = memchr(wire + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (wire + pos)) + 1 : len - pos;

        if (smtpdata_feed(d, wire + pos, n))
            return (ssize_t)(pos + n);
        pos += n;
    }
    return -1;
}

/* Run wire through a fresh reader; content in *content (caller frees). */
static ssize_t run(const char *wire, size_t len, uint64_t size_limit, size_t line_max,
                   struct smtpdata *d, buf_t **content)
{
    *content = buf_new(0);
    smtpdata_init(d, *content, size_limit, line_max);
    return feed_wire(d, wire, len);
}

static void check_data(const char *desc, const char *wire, const char *content, int code)
{
    struct smtpdata d;
    struct smtpreply_err e = { 0, NULL, NULL };
    buf_t *b;
    ssize_t n = run(wire, strlen(wire), 0, 1000, &d, &b);

    is_int(n, (ssize_t)strlen(wire), "%s: ends at the real end", desc);
    if (n > 0) {
        int r = smtpdata_result(&d, &e);

        is_int(r == 0 ? 250 : e.code, code, "%s: result", desc);
        if (content)
            is_str(buf_cstr(b), content, "%s: content", desc);
    }
    buf_free(&b);
}

static void test_data_basic(void)
{
    struct smtpdata d;
    struct smtpreply_err e;
    buf_t *b;

    check_data("empty message", ".\r\n", "", 250);
    check_data("one line", "Subject: x\r\n\r\nhi\r\n.\r\n", "Subject: x\r\n\r\nhi\r\n", 250);
    check_data("dot-stuffed", "..x\r\n..\r\n...\r\n.y\r\n .\r\nz.\r\n.\r\n",
               ".x\r\n.\r\n..\r\ny\r\n .\r\nz.\r\n", 250);
    check_data("blank lines", "\r\n\r\n.\r\n", "\r\n\r\n", 250);

    /* a last line without CRLF cannot be followed by "." on the same line */
    b = buf_new(0);
    smtpdata_init(&d, b, 0, 1000);
    is_int(smtpdata_feed(&d, "abc.\r\n", 6), 0, "\"abc.\\r\\n\" is not the end");
    is_int(smtpdata_feed(&d, ".\r\n", 3), 1, "\".\\r\\n\" after it is");
    is_str(buf_cstr(b), "abc.\r\n", "  content");
    is_int(smtpdata_result(&d, &e), 0, "  accepted");
    ok(d.done && d.lines == 1 && d.size == 6, "  counters");
    buf_free(&b);
    b = buf_new(0);
    smtpdata_init(&d, b, 0, 1000);
    is_int(smtpdata_feed(&d, "", 0), 0, "empty feed is ignored");
    is_int(smtpdata_feed(&d, ".\r\n", 3), 1, "  and does not hide the end");
    is_int(smtpdata_result(&d, &e), 0, "  accepted");
    buf_free(&b);

    /* content is binary-safe */
    b = buf_new(0);
    smtpdata_init(&d, b, 0, 1000);
    smtpdata_feed(&d, "a\0b\r\n", 5);
    smtpdata_feed(&d, ".\r\n", 3);
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
        struct smtpdata d;
        struct smtpreply_err e = { 0, NULL, NULL };
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
        ok(n > 0 && smtpdata_result(&d, &e) == -1 && e.code == 550
           && strcmp(e.dsn, "5.6.0") == 0, "'%s': message refused 550 5.6.0", shown);
        ok(strstr(buf_cstr(b), "MAIL FROM") == NULL, "'%s': nothing after it stored", shown);
        ok(d.flags == SMTPDATA_BAD_EOL, "'%s': only the bare-EOL flag", shown);
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
        struct smtpdata d;
        buf_t *b;
        const char *w = "a\r\n.\r\nMAIL FROM:<x@y>\r\n";
        ssize_t n = run(w, strlen(w), 0, 1000, &d, &b);

        is_int(n, 6, "legitimate CRLF.CRLF ends the data exactly there");
        buf_free(&b);
    }
}

static void test_data_caps(void)
{
    struct smtpdata d;
    struct smtpreply_err e;
    buf_t *b;
    char *line, *wire;
    ssize_t n;

    /* size: content bytes after unstuffing */
    n = run("12345678\r\n.\r\n", 13, 10, 1000, &d, &b);
    ok(n == 13 && smtpdata_result(&d, &e) == 0, "exactly at the size limit: ok");
    buf_free(&b);
    n = run("..2345678\r\n.\r\n", 14, 10, 1000, &d, &b);
    ok(n == 14 && smtpdata_result(&d, &e) == 0, "stuffing dot not counted");
    buf_free(&b);
    wire = "123456789\r\nmore\r\nand more\r\n.\r\n";
    n = run(wire, strlen(wire), 10, 1000, &d, &b);
    is_int(n, (ssize_t)strlen(wire), "over the size limit: still reads to the end");
    is_int(smtpdata_result(&d, &e), -1, "  refused");
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
    smtpdata_init(&d, b, 0, 1000);
    n = feed_wire(&d, "12345\r\n.\r\n", 10);
    ok(n == 10 && smtpdata_result(&d, &e) == -1 && e.code == 552, "buf limit -> 552");
    buf_free(&b);

    /* line length: the wire line, CRLF and stuffing dot included */
    line = repeat('x', 998);
    wire = xasprintf("%s\r\n.\r\n", line);
    n = run(wire, strlen(wire), 0, 1000, &d, &b);
    ok(n > 0 && smtpdata_result(&d, &e) == 0, "998 + CRLF = 1000: ok");
    buf_free(&b);
    free(wire);
    wire = xasprintf("%sx\r\nafter\r\n.\r\n", line);
    n = run(wire, strlen(wire), 0, 1000, &d, &b);
    is_int(n, (ssize_t)strlen(wire), "1001-byte line: reads to the end");
    ok(smtpdata_result(&d, &e) == -1 && e.code == 550 && strcmp(e.dsn, "5.6.0") == 0,
       "  550 5.6.0");
    like(e.text, "too long", "  reason");
    buf_free(&b);
    free(wire);
    wire = xasprintf(".%s\r\n.\r\n", line);
    n = run(wire, strlen(wire), 0, 1000, &d, &b);
    ok(n > 0 && (d.flags & SMTPDATA_LONGLINE), "stuffing dot counts for the line length");
    buf_free(&b);
    free(wire);
    free(line);
    n = run("123456789\r\n.\r\n", 14, 0, 10, &d, &b);
    ok(n == 14 && (d.flags & SMTPDATA_LONGLINE), "custom line_max 10");
    buf_free(&b);
    n = run("123456789\r\n.\r\n", 14, 0, 0, &d, &b);
    ok(n == 14 && d.flags == 0, "line_max 0: no limit");
    buf_free(&b);

    /* STREAM_TOOLONG from the stream: ending unknown -> never an end */
    b = buf_new(0);
    smtpdata_init(&d, b, 0, 1000);
    smtpdata_feed_toolong(&d);
    is_int(smtpdata_feed(&d, ".\r\n", 3), 0, "after a discarded line \".\\r\\n\" is not the end");
    is_int(smtpdata_feed(&d, ".\r\n", 3), 1, "  the next one is");
    ok(smtpdata_result(&d, &e) == -1 && e.code == 550, "  refused as too long");
    buf_free(&b);

    /* precedence: bare LF wins over too big and too long */
    n = run("aaaaaaaaaaaaaaaaaaaa\n\r\n.\r\n", 26, 5, 10, &d, &b);
    ok(n == 26 && d.flags == (SMTPDATA_BAD_EOL | SMTPDATA_TOOBIG | SMTPDATA_LONGLINE),
       "all three flags set");
    ok(smtpdata_result(&d, &e) == -1 && e.code == 550 && strstr(e.text, "bare"),
       "  bare CR/LF reported first");
    buf_free(&b);
    n = run("aaaaaaaaaaaaaaaaaaaa\r\n.\r\n", 25, 5, 10, &d, &b);
    ok(smtpdata_result(&d, &e) == -1 && e.code == 552, "too big before too long");
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
    struct smtpdata d;

    smtpdata_init(&d, NULL, 0, 0);
    smtpdata_feed(&d, ".\r\n", 3);
    smtpdata_feed(&d, "x\r\n", 3);
}

static void result_too_early(void)
{
    struct smtpdata d;
    struct smtpreply_err e;

    smtpdata_init(&d, NULL, 0, 0);
    smtpdata_result(&d, &e);
}

static void test_data_sink(void)
{
    struct smtpdata d;
    struct smtpreply_err e;
    struct sinkstate s = { buf_new(0), 0, 0 };
    const char *w = "a\r\n..b\r\n\r\nc\r\n.\r\n";

    smtpdata_init(&d, NULL, 0, 1000);
    smtpdata_set_sink(&d, sink, &s);
    is_int(feed_wire(&d, w, strlen(w)), (ssize_t)strlen(w), "sink: ends");
    is_str(buf_cstr(s.got), "a\r\n.b\r\n\r\nc\r\n", "  streamed content, unstuffed");
    is_int(s.calls, 4, "  one call per line");
    is_int(smtpdata_result(&d, &e), 0, "  accepted");
    buf_reset(s.got);
    s.calls = 0;
    s.fail_at = 2;
    smtpdata_init(&d, NULL, 0, 1000);
    smtpdata_set_sink(&d, sink, &s);
    is_int(feed_wire(&d, w, strlen(w)), (ssize_t)strlen(w), "failing sink: still ends");
    is_int(s.calls, 2, "  not called again after failing");
    ok(smtpdata_result(&d, &e) == -1 && e.code == 451 && strcmp(e.dsn, "4.3.0") == 0,
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
    struct smtpdata d;
    struct smtpreply_err e;
    ssize_t n;
    int ended = 0;

    if (pipe(fds) < 0 || write(fds[1], wire, sizeof(wire) - 1) != (ssize_t)sizeof(wire) - 1) {
        ok(0, "pipe");
        return;
    }
    close(fds[1]);
    s = stream_open(fds[0]);
    smtpdata_init(&d, b, 0, 1000);
    while (!ended && (n = stream_getline(s, line, 4096)) > 0)
        ended = smtpdata_feed(&d, line->data, line->len);
    ok(ended, "stream: end of data found");
    ok(smtpdata_result(&d, &e) == -1 && e.code == 550, "stream: bare-LF message refused");
    n = stream_getline(s, line, 4096);
    is_str(n > 0 ? buf_cstr(line) : "", "QUIT\r\n", "stream: next line is the next command");
    stream_close(&s);
    buf_free(&line);
    buf_free(&b);
}

int main(void)
{
    alarm(60);
    msg_init("smtpdata-test", MSG_STDERR);
    test_data_basic();
    test_data_smuggling();
    test_data_caps();
    test_data_sink();
    test_data_stream();
    return done_testing();
}
