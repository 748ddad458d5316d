/*
 * t/unit/mutf7.c - unit tests for lib/mutf7.c, modified UTF-7.
 *
 * RFC 3501 5.1.3's own example and others both ways (ASCII, '&', German,
 * Japanese, an emoji beyond the BMP as a surrogate pair, control
 * characters, shifts at the start, middle and end); decoding refuses
 * every non-canonical or broken form: shifted ASCII, an empty shift, two
 * shifts back to back, leftover bits, an unterminated shift, a lone or
 * reversed surrogate, '/' instead of ',', 8-bit octets; encoding refuses
 * invalid UTF-8 (overlong, a surrogate, beyond U+10FFFF, a cut sequence).
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mutf7.h"
#include "../lib/tap.h"

static void both(const char *utf8, const char *mutf7, const char *name)
{
    buf_t *e = buf_new(0), *d = buf_new(0);

    ok(mutf7_encode(utf8, e) == 0 && strcmp(buf_cstr(e), mutf7) == 0,
       "%s: encodes to %s (got %s)", name, mutf7, buf_cstr(e));
    ok(mutf7_decode(mutf7, d) == 0 && strcmp(buf_cstr(d), utf8) == 0,
       "%s: decodes back", name);
    buf_free(&e);
    buf_free(&d);
}

static void bad_decode(const char *mutf7, const char *name)
{
    buf_t *d = buf_new(0);

    ok(mutf7_decode(mutf7, d) < 0 && d->len == 0, "decode refuses %s", name);
    buf_free(&d);
}

static void bad_encode(const char *utf8, const char *name)
{
    buf_t *e = buf_new(0);

    ok(mutf7_encode(utf8, e) < 0 && e->len == 0, "encode refuses %s", name);
    buf_free(&e);
}

int main(void)
{
    both("INBOX", "INBOX", "ASCII");
    both("Tom & Jerry", "Tom &- Jerry", "'&'");
    both("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
         "~peter/mail/&U,BTFw-/&ZeVnLIqe-", "RFC 3501's example");
    both("Entw\xc3\xbcrfe", "Entw&APw-rfe", "German");
    both("\xc3\xa4\xc3\xb6\xc3\xbc", "&AOQA9gD8-", "a shift at the start and the end");
    both("a\xf0\x9f\x98\x80z", "a&2D3eAA-z", "an emoji: a surrogate pair");
    both("tab\there", "tab&AAk-here", "a control character");
    both("", "", "the empty name");
    both("&\xc3\xa4", "&-&AOQ-", "'&' then a shift");

    bad_decode("&AGE-", "shifted printable ASCII");
    bad_decode("&AOQ-&APY-", "two shifts back to back");
    bad_decode("&AOR-", "leftover bits that are not zero");
    bad_decode("&AOQ", "an unterminated shift");
    bad_decode("&2D3-", "a lone high surrogate");
    bad_decode("&3gA-", "a lone low surrogate");
    bad_decode("&U/BTFw-", "'/' instead of ','");
    bad_decode("caf\xc3\xa9", "8-bit octets");
    bad_decode("a\tb", "a raw control character");
    bad_decode("&AAA-", "a shifted NUL");

    bad_encode("\xc0\xaf", "an overlong form");
    bad_encode("\xed\xa0\x80", "a surrogate in UTF-8");
    bad_encode("\xf4\x90\x80\x80", "beyond U+10FFFF");
    bad_encode("ab\xe5\x8f", "a cut sequence");
    return done_testing();
}
