/*
 * t/unit/xtext.c - unit tests for lib/xtext.c (RFC 3461 xtext).
 *
 * Decoding: good and bad xtext, the length honoured.  Encoding: known
 * forms, appending, the buffer limit, and round trips (encode then decode
 * gives the input back) over every octet and over pseudo-random strings.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "msg.h"
#include "xtext.h"
#include "../lib/tap.h"

static void test_decode(void)
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
        int r = xtext_decode(cases[i].in, strlen(cases[i].in), &out, &n);

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
    is_int(xtext_decode("ab+41", 2, &out, NULL), 0, "length is honoured");
    is_str(out, "ab", "  decoded only that much");
    free(out);
    is_int(xtext_decode("a+4", 3, &out, NULL), -1, "truncated hexchar at length end");
}

static void test_encode(void)
{
    static const struct { const char *in; const char *out; } cases[] = {
        { "", "" }, { "abc", "abc" }, { "a+b", "a+2Bb" }, { "a=b", "a+3Db" },
        { " ", "+20" }, { "~!", "~!" }, { "\xc3\xa9", "+C3+A9" }, { "\t\r\n", "+09+0D+0A" },
        { "\x7f", "+7F" }, { "<a@b>;c", "<a@b>;c" }, { "\"q\\\"", "\"q\\\"" },
    };
    buf_t *b = buf_new(0), *small;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_reset(b);
        is_int(xtext_encode(b, cases[i].in, strlen(cases[i].in)), 0, "encode '%s'",
               cases[i].in);
        is_str(buf_cstr(b), cases[i].out, "  gives '%s'", cases[i].out);
    }
    buf_reset(b);
    buf_append_str(b, "ENVID=");
    xtext_encode(b, "x y", 3);
    is_str(buf_cstr(b), "ENVID=x+20y", "encode appends");
    buf_reset(b);
    is_int(xtext_encode(b, "a\0b", 3), 0, "NUL encodes");
    is_str(buf_cstr(b), "a+00b", "  as +00");
    {
        char *out = (char *)"x";

        is_int(xtext_decode(b->data, b->len, &out, NULL), -1, "  which decode refuses");
        ok(out == NULL, "  no output");
    }
    small = buf_new(8);
    buf_append_str(small, "ab");
    is_int(xtext_encode(small, "cd ef", 5), -1, "over the buf limit fails");
    is_str(buf_cstr(small), "ab", "  buffer unchanged");
    is_int(xtext_encode(small, "cd+", 3), 0, "exactly at the limit fits");
    is_str(buf_cstr(small), "abcd+2B", "  appended");
    buf_free(&small);
    buf_free(&b);
}

/* Encode then decode: the input again, and the encoding is pure xtext. */
static int round_trip(const char *in, size_t len)
{
    buf_t *b = buf_new(0);
    char *out = NULL;
    size_t n = 0, i;
    int good = xtext_encode(b, in, len) == 0;

    for (i = 0; good && i < b->len; i++) {
        unsigned char ch = (unsigned char)b->data[i];

        if (ch == '+')
            good = i + 2 < b->len && strchr("0123456789ABCDEF", b->data[i + 1])
                   && strchr("0123456789ABCDEF", b->data[i + 2]);
        else
            good = ch >= 33 && ch <= 126 && ch != '=';
    }
    good = good && xtext_decode(b->data, b->len, &out, &n) == 0 && n == len
           && memcmp(out, in, len) == 0;
    free(out);
    buf_free(&b);
    return good;
}

static void test_round_trips(void)
{
    char all[255], one;
    unsigned seed = 12345;
    int bad = 0, c, k;

    for (c = 1; c < 256; c++) {
        one = (char)c;
        if (!round_trip(&one, 1))
            bad++;
        all[c - 1] = (char)c;
    }
    is_int(bad, 0, "every octet but NUL round-trips alone");
    ok(round_trip(all, sizeof(all)), "all 255 octets in one string");
    bad = 0;
    for (k = 0; k < 2000; k++) {
        char s[64];
        size_t len, i;

        seed = seed * 1103515245u + 12345u;
        len = (seed >> 16) % sizeof(s);
        for (i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            s[i] = (char)(1 + (seed >> 16) % 255);
        }
        if (!round_trip(s, len))
            bad++;
    }
    is_int(bad, 0, "2000 pseudo-random strings round-trip");
}

int main(void)
{
    alarm(60);
    msg_init("xtext-test", MSG_STDERR);
    test_decode();
    test_encode();
    test_round_trips();
    return done_testing();
}
