/*
 * smtpcontent - the content of one message as an SMTP server receives it,
 * collected in a memfd for the hand-off to cleanup (which takes the
 * descriptor, not a copy: lib/cleanup_proto.h).
 *
 * Two ways in:
 *  - DATA: lib/smtpdata's reader undoes dot-stuffing, enforces the limits
 *    and the bare CR/LF rule, and calls smtpcontent_sink() with the content;
 *  - BDAT: chunks are raw octets; smtpcontent_bdat() applies the same rule
 *    as the DATA reader (every line ends in CRLF; a bare CR or LF anywhere,
 *    also split across chunks, makes the message invalid), the line limit
 *    and the size limit, and keeps consuming so the session stays in sync.
 * Writes to the memfd are batched (64 KiB).
 *
 * smtpcontent_finish() flushes, makes sure the content ends in CRLF (a
 * BDAT message need not), seals the memfd against writes, growth and
 * shrinking (what it is handed to, checkd and cleanup, cannot change it),
 * and gives the result: the descriptor (the caller owns it) and its length, or the reply for a refused message (451 4.3.0
 * for a memfd error, 550 5.6.0 bare CR/LF, 552 5.3.4 too big, 550 5.6.0
 * line too long: the DATA reader's order).
 *
 * Failure modes: a memfd that cannot be made or written is reported at
 * finish as 451 (the message is refused, the session goes on).
 */
#ifndef POSTHORN_SMTPCONTENT_H
#define POSTHORN_SMTPCONTENT_H

#include <stddef.h>
#include <stdint.h>

#include "smtpreply.h"

typedef struct smtpcontent smtpcontent_t;

/* size_limit: content bytes (0 = none); line_max: bytes a line, CRLF
 * included (0 = none), for BDAT. */
smtpcontent_t *smtpcontent_new(uint64_t size_limit, size_t line_max);
void           smtpcontent_free(smtpcontent_t **cp);

/* lib/smtpdata's smtpdata_sink_fn (ctx is the smtpcontent_t). */
int  smtpcontent_sink(void *ctx, const char *data, size_t len);
/* One BDAT chunk's octets. */
void smtpcontent_bdat(smtpcontent_t *c, const char *data, size_t len);
/* Bytes stored so far (for BDAT replies and logs). */
uint64_t smtpcontent_size(const smtpcontent_t *c);
/* The BDAT content broke a rule already: later chunks need not be kept. */
int  smtpcontent_failed(const smtpcontent_t *c);

/* After the last byte.  0 with *fd (owned by the caller now; positioned
 * anywhere) and *len; or -1 with err filled.  The BDAT checks' verdict is
 * included; for DATA the caller asks smtpdata_result() first. */
int  smtpcontent_finish(smtpcontent_t *c, int *fd, uint64_t *len, struct smtpreply_err *err);

#endif
