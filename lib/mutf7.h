/*
 * mutf7 - IMAP's modified UTF-7 for mailbox names (RFC 3501 5.1.3), to and
 * from UTF-8: what IMAP4rev1 clients send and see, and what imapd's
 * Maildir++ folder names are on disk (as Dovecot's are), while UTF8=ACCEPT
 * clients (RFC 9051, RFC 6855) use UTF-8.
 *
 * Printable ASCII but '&' stands for itself, '&' is "&-", anything else is
 * UTF-16 in a modified base64 ("," for "/", no padding) between '&' and
 * '-'.  Decoding is strict, as the RFC asks ("MUST NOT" clauses): no
 * shifted printable ASCII, no empty "&-" shift other than '&', no two
 * shifts back to back, no leftover bits that are not zero, no unpaired
 * surrogates, no NUL, no octet above 0x7e or below 0x20 outside a shift; so every
 * name has one spelling.  Encoding refuses UTF-8 that is not valid
 * (overlong forms, surrogates, beyond U+10FFFF).
 *
 * Failure modes: -1 for input that is not valid (out untouched); out of
 * memory is fatal.
 */
#ifndef POSTHORN_MUTF7_H
#define POSTHORN_MUTF7_H

#include "buf.h"

int mutf7_encode(const char *utf8, buf_t *out);
int mutf7_decode(const char *mutf7, buf_t *out);

#endif
