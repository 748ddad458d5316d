/*
 * smtpreply - SMTP replies (RFC 5321 4.2), both directions: the server
 * formats them, the client parses them.
 *
 * Formatting (the server's side):
 *   smtpreply_format, smtpreply_formatf, smtpreply_format_err
 *       append a (multi-line) reply to a buf_t: "CODE-DSN text" lines and a
 *       last "CODE DSN text" line.  Text is sanitised (CR, LF and other
 *       controls become '?') and each line cut to SMTPREPLY_LINE_MAX, so no
 *       peer data we echo can break the reply framing.
 *   struct smtpreply_err
 *       a refusal made of fixed texts (no peer data), as the command
 *       parser (lib/smtpproto) and the DATA reader (lib/smtpdata) report.
 *
 * Parsing (the client's side):
 *   smtpreply_parser_new / smtpreply_parser_free
 *   smtpreply_parse   feed the bytes as they arrive, in any chunks; it
 *       assembles one complete reply at a time and says how many bytes
 *       that took (the rest is the next reply's: pipelining).
 *   Grammar (RFC 5321 4.2):  *( CODE "-" [text] CRLF ) CODE [ SP [text] ] CRLF
 *   with the same CODE (200..599) on every line.  A line may also end in
 *   a bare LF (tolerated, like Postfix's client).  The enhanced status
 *   code of RFC 2034 / RFC 3463 ("class.subject.detail", class equal to
 *   the reply's first digit, subject and detail 1-3 digits, then SP or the
 *   end of the text) is taken from the first line when it is there; one
 *   that is malformed or of the wrong class counts as absent (many servers
 *   get it wrong; the reply itself is still good).  Text is kept as
 *   received, enhanced code included, with controls (HTAB too) made '?',
 *   so a line is always safe to log.
 *
 * Failure modes: formatting panics on a reply code outside 200..599 (our
 * bug) and fails with -1 only at the output buffer's limit.  The parser
 * never aborts and never grows past its limits on peer input: a line
 * longer than line_max, more than lines_max lines or size_max bytes in one
 * reply, a code that is not three digits in 200..599, a code that differs
 * from the first line's, or anything but "-", SP or the end after the
 * code is a protocol error: SMTPREPLY_ERROR with a fixed reason text, and
 * the parser stays in error (the client must drop the connection, as the
 * stream is out of sync).  Out-of-memory is fatal (xalloc); nonsensical
 * limits panic.
 */
#ifndef POSTHORN_SMTPREPLY_H
#define POSTHORN_SMTPREPLY_H

#include <stddef.h>

#include "buf.h"

/* ---- formatting ---- */

/* Longest reply line we emit, CRLF included (RFC 5321 4.5.3.1.5). */
#define SMTPREPLY_LINE_MAX 512

/* A reply made of fixed texts: never a copy of peer data, so always safe
 * to send and to log. */
struct smtpreply_err {
    int         code;   /* 451, 500, 501, 550, 552, 553, 555, ... */
    const char *dsn;    /* "5.5.4" */
    const char *text;   /* fixed reason */
};

/* Append "CODE-DSN text\r\n" ... "CODE DSN text\r\n" for n lines (n == 0:
 * one line with no text).  dsn may be NULL.  Control characters (CR and LF
 * included) in dsn and text become '?', and a line is cut to
 * SMTPREPLY_LINE_MAX.  code must be 200..599 (panic otherwise).
 * Returns 0, or -1 if out's limit was hit (out is then unchanged). */
int smtpreply_format(buf_t *out, int code, const char *dsn,
                     const char *const *lines, size_t n);
int smtpreply_formatf(buf_t *out, int code, const char *dsn, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int smtpreply_format_err(buf_t *out, const struct smtpreply_err *err);

/* ---- parsing ---- */

/* Every limit a parameter; SMTPREPLY_LIMITS_DEFAULT counts RFC 5321's 512
 * bytes a line generously (real servers exceed it) and leaves room for
 * long EHLO replies. */
struct smtpreply_limits {
    size_t line_max;    /* bytes a line, CRLF included (>= 5) */
    size_t lines_max;   /* lines a reply (>= 1) */
    size_t size_max;    /* bytes a reply, every line's CRLF included (>= line_max) */
};
#define SMTPREPLY_LIMITS_DEFAULT { 4096, 200, 65536 }

/* Longest enhanced status code: "5.999.999". */
#define SMTPREPLY_DSN_MAX 9

/* One complete reply, owned by the parser: valid until the next
 * smtpreply_parse() or smtpreply_parser_free(). */
struct smtpreply {
    int           code;     /* 200..599 */
    char          dsn[SMTPREPLY_DSN_MAX + 1]; /* the first line's enhanced code, "" if none */
    size_t        nlines;   /* >= 1 */
    const char  **lines;    /* each line's text after "CODE-" / "CODE ", sanitised; "" if none */
};

enum smtpreply_status {
    SMTPREPLY_ERROR = -1,   /* protocol error, *why set; the parser stays in error */
    SMTPREPLY_MORE = 0,     /* every byte consumed, no complete reply yet */
    SMTPREPLY_DONE = 1,     /* *reply is complete; *used bytes were consumed */
};

typedef struct smtpreply_parser smtpreply_parser_t;

/* lim NULL: SMTPREPLY_LIMITS_DEFAULT. */
smtpreply_parser_t *smtpreply_parser_new(const struct smtpreply_limits *lim);
void                smtpreply_parser_free(smtpreply_parser_t **pp);

/* Consume data[0, len).  Returns SMTPREPLY_MORE (all len bytes taken),
 * SMTPREPLY_DONE with *reply (the bytes after *used belong to the next
 * reply: call again with data + *used), or SMTPREPLY_ERROR with *why (a
 * fixed text).  *used is always set to the bytes consumed: len for MORE,
 * for ERROR those before the point of the error (0 once in error).
 * reply and why may be NULL. */
int smtpreply_parse(smtpreply_parser_t *p, const char *data, size_t len, size_t *used,
                    const struct smtpreply **reply, const char **why);

#endif
