/*
 * xtext - RFC 3461 section 4 "xtext", the encoding of the DSN values ENVID
 * and ORCPT and of AUTH= (RFC 4954 5) in ESMTP parameters: an octet that
 * is printable ASCII other than "+" and "=" stands for itself, every other
 * one is "+" and two upper-case hex digits.
 *
 * Interface:
 *   xtext_decode  what a peer sent (the server's MAIL/RCPT parameters);
 *                 strict: anything that is not xtext is refused.
 *   xtext_encode  what we send (the client's ENVID= and ORCPT=).
 * For any input without a NUL octet, decode(encode(x)) is x.
 *
 * Failure modes: input that is not xtext is a -1 return; the encoder fails
 * only at the output buffer's limit (-1, the buffer unchanged);
 * out-of-memory is fatal (xalloc).  Nothing here panics.
 */
#ifndef POSTHORN_XTEXT_H
#define POSTHORN_XTEXT_H

#include <stddef.h>

#include "buf.h"

/* Decode len bytes into a fresh NUL-terminated string (*outp, caller
 * frees; its length in *out_len if not NULL).  Returns 0, or -1 with *outp
 * NULL if the input is not xtext (a character outside "!".."~", "=", a "+"
 * without two upper-case hex digits) or decodes to a NUL byte. */
int xtext_decode(const char *s, size_t len, char **outp, size_t *out_len);

/* Append the xtext form of len bytes to out.  Returns 0, or -1 if out's
 * limit was hit (out is then unchanged).  A NUL becomes "+00", which
 * xtext_decode() refuses: values meant for a peer are C strings. */
int xtext_encode(buf_t *out, const char *s, size_t len);

#endif
