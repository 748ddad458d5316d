/*
 * mime8 - 8-bit message content made 7-bit for an SMTP server that does
 * not offer 8BITMIME (RFC 6152 3: a client must then convert the message
 * or return it), the way Postfix's smtp downgrades MIME.
 *
 * What changes (RFC 2045, RFC 2046):
 *  - a leaf part whose body holds an octet over 127 (or a NUL), or that
 *    is labelled "binary", gets a quoted-printable body (RFC 2045 6.7:
 *    lines of at most 76 characters with soft line breaks, "=XX" for
 *    8-bit octets, "=", trailing white space and a "-" that starts an
 *    output line, so no encoded line can pass for a boundary) and
 *    "Content-Transfer-Encoding: quoted-printable" in place of its old
 *    one; a top-level message without MIME-Version gets "MIME-Version:
 *    1.0" as well;
 *  - a leaf labelled "8bit" whose body turns out to be 7-bit is only
 *    relabelled "7bit";
 *  - a composite part (multipart/ *, message/rfc822) labelled 8bit or
 *    binary is relabelled "7bit", and its parts are treated in turn;
 *  - everything else is passed on as it was: parts in base64 or
 *    quoted-printable already, parts in an encoding we do not know, the
 *    preamble and epilogue of a multipart, and header fields (8-bit
 *    octets in a header cannot be fixed without knowing its syntax; a
 *    message that needs them is SMTPUTF8's business).
 *
 * Two passes over the same lines: the first (mime8_scan) finds which
 * leaf parts hold 8-bit octets, the second (mime8_convert) writes the
 * result, so a header block can be rewritten before its body is seen
 * without keeping any body in memory.  Both passes run the same parser,
 * so they number the parts the same way.  Lines are given without their
 * line end (CR LF or LF), and leave the same way through emit().
 *
 * Interface:
 *   mime8_new(limits) / mime8_free
 *   mime8_scan(m, line, len)            first pass, every line in order
 *   mime8_convert(m, line, len, emit, ctx)   second pass (the first call
 *                                       ends the first pass)
 *   mime8_convert_end(m, emit, ctx)     after the last line
 *   mime8_has_8bit(data, len)           any octet over 127 or a NUL
 *
 * Limits (struct mime8_limits): depth_max nested parts (deeper ones are
 * leaves), header_max bytes of one header block held for rewriting (a
 * longer block goes out as it is and its part is left alone), parts_max
 * parts whose scan result is kept (later parts are treated as 8-bit:
 * converting a 7-bit part to quoted-printable loses nothing).  Memory is
 * bounded by those limits whatever the input.
 *
 * Failure modes: no input is an error; emit's first non-zero return
 * stops the conversion and is returned.  Out-of-memory is fatal; calling
 * mime8_scan after mime8_convert panics (our bug).
 */
#ifndef POSTHORN_MIME8_H
#define POSTHORN_MIME8_H

#include <stddef.h>

struct mime8_limits {
    size_t depth_max;       /* nesting levels followed (>= 1) */
    size_t header_max;      /* bytes of one header block (>= 1000) */
    size_t parts_max;       /* parts remembered by the scan (>= 1) */
};
#define MIME8_LIMITS_DEFAULT { 100, 102400, 100000 }

/* Quoted-printable output lines are at most this long (RFC 2045 6.7). */
#define MIME8_QP_LINE_MAX 76

typedef struct mime8 mime8_t;
/* One output line, without a line end; 0 to go on. */
typedef int (*mime8_emit_fn)(void *ctx, const char *line, size_t len);

/* lim NULL: MIME8_LIMITS_DEFAULT. */
mime8_t *mime8_new(const struct mime8_limits *lim);
void     mime8_free(mime8_t **mp);

void mime8_scan(mime8_t *m, const char *line, size_t len);
int  mime8_convert(mime8_t *m, const char *line, size_t len, mime8_emit_fn emit, void *ctx);
int  mime8_convert_end(mime8_t *m, mime8_emit_fn emit, void *ctx);

int  mime8_has_8bit(const char *data, size_t len);

#endif
