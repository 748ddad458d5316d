/*
 * saslprep - SASLprep (RFC 4013), the stringprep profile for user names
 * and passwords in SASL, and the strict UTF-8 check the SASL mechanisms
 * need for the strings they carry.
 *
 * The profile itself is libidn's (stringprep_profile(..., "SASLprep")),
 * not a table of our own: it maps non-ASCII spaces to SPACE and "commonly
 * mapped to nothing" characters (soft hyphen, ...) to nothing, normalizes
 * to NFKC, and refuses prohibited output (controls, private use,
 * surrogates, non-characters, ...) and bad bidirectional text.  Strings
 * are prepared as "query" strings (unassigned code points allowed), as
 * RFC 5802 2.2 says for SCRAM and as every mechanism here uses them.
 *
 * Interface:
 *   saslprep             prepare len bytes; a fresh string.
 *   saslprep_utf8_valid  is it well-formed UTF-8 (RFC 3629: no overlong
 *                        forms, no surrogates, nothing above U+10FFFF)?
 *
 * Failure modes: input that is not UTF-8, contains a NUL, is refused by
 * the profile or prepares to the empty string is a -1 return (a peer
 * error for the caller); running out of memory is fatal.
 */
#ifndef POSTHORN_SASLPREP_H
#define POSTHORN_SASLPREP_H

#include <stddef.h>

/* Prepare s[0, len).  Returns 0 with a fresh, non-empty, NUL-terminated
 * string in *outp (caller frees), or -1 with *outp NULL. */
int saslprep(const char *s, size_t len, char **outp);

/* 1 if s[0, len) is well-formed UTF-8 without a NUL octet, else 0. */
int saslprep_utf8_valid(const char *s, size_t len);

#endif
