/*
 * t/unit/imapseq.c - unit tests for lib/imapseq.c, IMAP sequence sets.
 *
 * Parsing: numbers, ranges either way round, "*", "$", the largest number,
 * and refusals (0, leading zeros, signs, 4294967296, empty parts, spaces,
 * trailing commas); resolving against "*": sorting, merging of overlapping
 * and adjacent ranges, "n:*" above "*" naming the last one, ranges beyond
 * "*" dropped, an empty mailbox naming nothing, "1:*,*:4294967295" as one
 * range; membership.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "imapseq.h"
#include "../lib/tap.h"

/* The resolved ranges as "a-b,c-d", or "ERR why". */
static char *resolved(const char *text, uint32_t star)
{
    struct imapseq set;
    struct imapseq_range *r = NULL;
    const char *why = NULL;
    buf_t *b = buf_new(0);
    char *out;
    size_t n;

    if (imapseq_parse(text, &set, &why) < 0) {
        buf_printf(b, "ERR %s", why);
    } else {
        n = imapseq_resolve(&set, star, &r);
        for (size_t i = 0; i < n; i++)
            buf_printf(b, "%s%u-%u", i ? "," : "", r[i].lo, r[i].hi);
        free(r);
        imapseq_free(&set);
    }
    out = buf_steal(b, NULL);
    buf_free(&b);
    return out;
}

#define R(text, star, want, name) do { \
        char *got_ = resolved(text, star); \
        is_str(got_, want, name); \
        free(got_); \
    } while (0)

int main(void)
{
    struct imapseq set;
    const char *why;

    R("1", 10, "1-1", "one number");
    R("2,4:7,9", 10, "2-2,4-7,9-9", "numbers and a range");
    R("7:4", 10, "4-7", "a range backwards");
    R("1:*", 10, "1-10", "1:*");
    R("*", 10, "10-10", "*");
    R("15:*", 10, "10-10", "n:* with n above *: the last one (RFC 9051 6.4.8)");
    R("15", 10, "", "a number above *: nothing");
    R("12:15", 10, "", "a range above *: nothing");
    R("8:15", 10, "8-10", "a range that goes beyond *: cut at *");
    R("1:*,*:4294967295", 10, "1-10", "1:*,*:4294967295 is one range");
    R("4294967295", 4294967295u, "4294967295-4294967295", "the largest number");
    R("5,1:3,2:4,7,6", 10, "1-7", "overlapping and adjacent ranges merged, sorted");
    R("1:*", 0, "", "an empty mailbox: nothing");
    R("0", 10, "ERR bad number in a sequence set", "0 is no number");
    R("01", 10, "ERR bad number in a sequence set", "nor a leading zero");
    R("+1", 10, "ERR bad number in a sequence set", "nor a sign");
    R("4294967296", 10, "ERR bad number in a sequence set", "2^32");
    R("1,", 10, "ERR bad number in a sequence set", "a trailing comma");
    R(",1", 10, "ERR bad number in a sequence set", "a leading comma");
    R("1:", 10, "ERR bad range in a sequence set", "a range without an end");
    R("1 2", 10, "ERR bad character in a sequence set", "a space");
    R("1::2", 10, "ERR bad range in a sequence set", "a double colon");
    R("", 10, "ERR bad number in a sequence set", "nothing");
    R("$x", 10, "ERR bad number in a sequence set", "$ with more");

    ok(imapseq_parse("$", &set, &why) == 0 && set.saved && set.n == 0, "$: the saved result");
    imapseq_free(&set);
    ok(imapseq_parse("2,5:*", &set, &why) == 0, "parse 2,5:*");
    ok(imapseq_contains(&set, 2, 8) && imapseq_contains(&set, 6, 8)
       && imapseq_contains(&set, 8, 8), "  contains 2, 6 and 8 with * = 8");
    ok(!imapseq_contains(&set, 3, 8) && !imapseq_contains(&set, 9, 8),
       "  not 3, nor 9 beyond *");
    imapseq_free(&set);
    return done_testing();
}
