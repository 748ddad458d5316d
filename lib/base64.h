/*
 * base64 - strict base64 (RFC 4648 section 4: the standard alphabet, with
 * padding) for SASL and the protocols that carry it (SMTP AUTH, IMAP
 * AUTHENTICATE, POP3 AUTH, SCRAM's attributes).
 *
 * Only canonical base64 decodes: a length that is a multiple of 4, only
 * "A".."Z" "a".."z" "0".."9" "+" "/", "=" only as the one or two last
 * characters, and the bits padding leaves over zero (RFC 4648 3.5).  No
 * whitespace, no line breaks, no missing padding.  So every text has at
 * most one meaning, and encode(decode(t)) is t for every t that decodes.
 * The empty text is the empty string (SASL's "=" for an empty response is
 * the protocol's business).
 *
 * Interface: base64_encode, base64_decode (both append to a buf),
 * base64_encoded_len.
 *
 * Failure modes: text that is not canonical base64 is a -1 return; so is
 * output that would pass the buffer's limit; the buffer is then unchanged.
 * Out-of-memory is fatal (xalloc).  Nothing here panics.
 */
#ifndef POSTHORN_BASE64_H
#define POSTHORN_BASE64_H

#include <stddef.h>

#include "buf.h"

/* The length of the encoding of n bytes: 4 * ceil(n / 3). */
size_t base64_encoded_len(size_t n);

/* Append the base64 form of data[0, len) to out.  0, or -1 if out's limit
 * was hit (out unchanged). */
int base64_encode(buf_t *out, const void *data, size_t len);

/* Append the bytes text[0, len) stands for to out (they may hold NULs;
 * out's NUL terminator still follows).  0, or -1 if text is not
 * canonical base64 or out's limit was hit (out unchanged). */
int base64_decode(buf_t *out, const char *text, size_t len);

#endif
