/*
 * t/unit/addrlist.c - unit tests for lib/addrlist.c (the addresses of an
 * RFC 5322 address list, as sendmail -t reads To:, Cc: and Bcc:).
 *
 * Covers: plain lists, display names (atoms, quoted, with commas and '<'
 * inside quotes), comments (nested, with quoted-pairs, between the parts
 * of an address), groups (named, empty, undisclosed-recipients:;),
 * angle addresses with source routes, quoted local parts and domain
 * literals kept as written, folding white space, empty members, <>,
 * UTF-8; and each malformed input with its reason, nothing returned.
 */
#include <stdlib.h>
#include <string.h>

#include "addrlist.h"
#include "buf.h"
#include "../lib/tap.h"

/* The addresses joined with " | ", or "ERROR: why". */
static char *parse(const char *text)
{
    struct addrlist al;
    const char *why = NULL;
    buf_t *b = buf_new(0);
    char *s;

    if (addrlist_parse(text, strlen(text), &al, &why) < 0) {
        buf_printf(b, "ERROR: %s", why);
        if (al.n != 0 || al.addrs != NULL)
            buf_append_str(b, " (and a list)");
    } else {
        for (size_t i = 0; i < al.n; i++)
            buf_printf(b, "%s%s", i ? " | " : "", al.addrs[i]);
        addrlist_free(&al);
    }
    s = buf_steal(b, NULL);
    buf_free(&b);
    return s;
}

static void check(const char *text, const char *want, const char *name)
{
    char *got = parse(text);

    is_str(got, want, "%s", name);
    free(got);
}

int main(void)
{
    check("root", "root", "a bare local part");
    check("a@x.example, b@y.example", "a@x.example | b@y.example", "two addresses");
    check("a@x.example,b@y.example,,c@z", "a@x.example | b@y.example | c@z",
          "empty members are skipped (obs-addr-list)");
    check("John Doe <john@example.org>", "john@example.org", "display name");
    check("\"Doe, John\" <john@example.org>, jane@example.org",
          "john@example.org | jane@example.org", "a comma inside a quoted display name");
    check("\"a <b@c>\" <real@example.org>", "real@example.org", "'<' inside quotes");
    check("john@example.org (John (the) Doe)", "john@example.org", "nested comment");
    check("john@example.org (a \\) b)", "john@example.org", "quoted-pair in a comment");
    check("john (x) . doe @ (y) example . org", "john.doe@example.org",
          "comments and white space between the parts (obs-local-part)");
    check("\"john doe\"@example.org", "\"john doe\"@example.org", "quoted local part kept");
    check("\"a\\\"b\"@example.org", "\"a\\\"b\"@example.org", "quoted-pair kept in a quoted string");
    check("user@[192.0.2.1]", "user@[192.0.2.1]", "domain literal");
    check("user@[IPv6:2001:db8::1]", "user@[IPv6:2001:db8::1]", "IPv6 literal: its colons are not a group");
    check("friends: a@x, b@y;, c@z", "a@x | b@y | c@z", "a group and a member after it");
    check("undisclosed-recipients:;", "", "an empty group has no addresses");
    check("<@relay.example,@r2.example:user@example.org>", "user@example.org",
          "source route dropped");
    check("Someone <>", "", "<> gives nothing");
    check("a@x.example,\r\n\tb@y.example", "a@x.example | b@y.example", "folding white space");
    check("Jörg <jörg@bücher.example>", "jörg@bücher.example", "UTF-8");
    check("", "", "empty text");
    check("  (only a comment)  ", "", "only a comment");

    check("a@x, \"unclosed@y", "ERROR: unclosed quoted string", "unclosed quote");
    check("a@x (unclosed", "ERROR: unclosed comment", "unclosed comment");
    check("Name <a@x", "ERROR: unclosed '<'", "unclosed angle address");
    check("a@x>", "ERROR: unbalanced '>'", "stray '>'");
    check("a@[1.2.3.4", "ERROR: unclosed domain literal", "unclosed domain literal");
    check("a <b> <c>", "ERROR: unexpected '<'", "two angle addresses");
    check("g1: g2: a@x;;", "ERROR: unexpected ':'", "nested group");
    check("a@x;", "ERROR: ';' outside a group", "';' outside a group");
    check("a\001b@x", "ERROR: control character in an address", "control character");
    check("a@x)", "ERROR: unbalanced ')'", "stray ')'");
    check("\"a\\\nb\"@x", "ERROR: control character in an address", "a quoted-pair of LF");
    check("\"a\\\001\"@x", "ERROR: control character in an address", "a quoted-pair of ^A");
    check("a@x (c\\\001)", "ERROR: control character in a comment", "a quoted-pair of ^A in a comment");
    check("<a@x, b@y>", "ERROR: ',' inside <...> outside a source route", "a comma inside <...>");
    {
        /* Not NUL-terminated: the parser stops at len. */
        struct addrlist al;
        const char *why;

        ok(addrlist_parse("a@x, b@y", 3, &al, &why) == 0 && al.n == 1
           && strcmp(al.addrs[0], "a@x") == 0, "parsing stops at len");
        addrlist_free(&al);
    }
    return done_testing();
}
