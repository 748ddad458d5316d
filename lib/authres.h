/*
 * authres - the Authentication-Results header field (RFC 8601): building
 * the one checkd writes, and reading the authserv-id of one that arrived,
 * so that cleanup can remove those that claim to be ours.
 *
 * Building: authres_begin() puts the authserv-id (myhostname) into an
 * empty buffer; authres_add() appends one method result as
 *   "; METHOD=RESULT (COMMENT) PTYPE.PROP=VALUE ..."
 * (the comment is optional, cut at AUTHRES_COMMENT_MAX bytes; properties
 * are name/value pairs ending with NULL); authres_end() appends "; none"
 * when no method was added.  The value is one line without control
 * characters (it travels as a queue file attribute); authres_fold()
 * writes it for the header, a line per method (CRLF TAB before each).
 * Comments have '(', ')' and '\' quoted and control characters dropped;
 * a value that is neither a token nor local-part@domain of atoms is given
 * as a quoted-string, so nothing a sender chose can break the field.
 *
 * Reading: authres_authserv_id() skips comments and white space (folding
 * included) and returns the authserv-id token or quoted-string of a field
 * value; -1 when there is none (an empty or malformed value).
 *
 * Failure modes: none; the buffer's cap applies (buf.h).
 */
#ifndef POSTHORN_AUTHRES_H
#define POSTHORN_AUTHRES_H

#include <stddef.h>

#include "buf.h"

void authres_begin(buf_t *b, const char *authserv_id);
void authres_add(buf_t *b, const char *method, const char *result, const char *comment, ...)
    __attribute__((sentinel));
void authres_end(buf_t *b);
/* Append value folded before each "METHOD=" that follows "; ". */
void authres_fold(buf_t *out, const char *value);

#define AUTHRES_COMMENT_MAX 200
/* Append s as an RFC 8601 value (a token as it is, else quoted). */
void authres_value(buf_t *b, const char *s);

/* The authserv-id of a field value (value[0..len)): 0 with a fresh,
 * unquoted string in *id, or -1. */
int authres_authserv_id(const char *value, size_t len, char **id);

#endif
