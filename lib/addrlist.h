/*
 * addrlist - the addresses in an RFC 5322 address list, as in To:, Cc: and
 * Bcc: header fields or on sendmail's command line.
 *
 * Understands display names ("John Doe <john@example.org>"), comments
 * (nested, with quoted-pairs: "john@example.org (John)"), quoted strings
 * (kept as written in the local part: "\"j d\"@example.org"), groups
 * ("friends: a@x, b@y;", and "undisclosed-recipients:;" which has none),
 * domain literals, source routes in angle addresses (<@relay:u@x>: the
 * route is dropped, RFC 5321 C), the obsolete forms of RFC 5322 4.4 (empty
 * list members, white space and comments between the dots of an address).
 * Each address is returned as an addr-spec with folding white space and
 * comments taken out ("local@domain", or a bare "local" for the caller to
 * qualify).
 *
 * Interface:
 *   addrlist_parse(text, len, &list, &why)  0, or -1 with a static reason
 *   addrlist_free(&list)
 *
 * Failure modes: malformed input (an unclosed quote, comment, angle
 * bracket or domain literal, a NUL or other control character, an empty
 * angle address other than <> ) is -1 with *why; nothing is returned then.
 * The parser never reads past len.
 */
#ifndef POSTHORN_ADDRLIST_H
#define POSTHORN_ADDRLIST_H

#include <stddef.h>

struct addrlist {
    char  **addrs;
    size_t  n;
};

int  addrlist_parse(const char *text, size_t len, struct addrlist *list, const char **why);
void addrlist_free(struct addrlist *list);

#endif
