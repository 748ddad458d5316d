/*
 * smtpdata - the server's DATA reader (RFC 5321 4.1.1.4, 4.5.2): takes
 * the lines after the "354" as stream_getline() returns them, finds the
 * end of data, undoes dot-stuffing, and hands the content to a buf_t or a
 * sink, enforcing the size and line limits and the bare CR / LF rule.
 * Pure: no I/O of its own.
 *
 * The bare CR / bare LF rule (ONE rule, the one the BDAT side of
 * lib/smtpcontent applies too): the end of data is only a line that is
 * exactly ".\r\n" and follows a line that ended in CRLF (the DATA command
 * itself counts as one).  Any line that ends in a bare LF, or contains a
 * CR that is not part of its final CRLF, makes the message invalid: the
 * reader stops storing, keeps consuming until the real CRLF.CRLF, and
 * smtpdata_result() then reports 550 5.6.0.  So "\n.\n", "\n.\r\n",
 * "\r\n.\n", "\r.\r" and friends never end the data, and a second message
 * cannot be smuggled after a first one (RFC 5321 2.3.8).
 *
 * Interface:
 *   smtpdata_init / smtpdata_set_sink   start one message's data;
 *   smtpdata_feed                       one line; 1 at the end of data;
 *   smtpdata_feed_toolong               a line the stream threw away;
 *   smtpdata_result                     the verdict, as a reply.
 *
 * Failure modes: nothing a peer sends is an error at once: problems are
 * remembered in flags and reported at the end (451 4.3.0 sink failure,
 * 550 5.6.0 bare CR/LF, 552 5.3.4 too big, 550 5.6.0 line too long, in
 * that order of precedence).  Feeding a finished reader or asking for the
 * result too early is our bug and panics.
 */
#ifndef POSTHORN_SMTPDATA_H
#define POSTHORN_SMTPDATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "smtpreply.h"

#define SMTPDATA_BAD_EOL    (1u << 0)   /* bare CR or LF seen */
#define SMTPDATA_TOOBIG     (1u << 1)   /* content exceeded size_limit (or out's limit) */
#define SMTPDATA_LONGLINE   (1u << 2)   /* a line exceeded line_max */
#define SMTPDATA_SINKERR    (1u << 3)   /* the sink callback failed */

/* Sink for streaming content: returns 0, or -1 to stop (reported 451). */
typedef int (*smtpdata_sink_fn)(void *ctx, const char *data, size_t len);

struct smtpdata {
    buf_t           *out;           /* content goes here (if no sink) */
    smtpdata_sink_fn sink;
    void            *sink_ctx;
    uint64_t         size_limit;    /* content bytes; 0 = no limit */
    size_t           line_max;      /* wire line incl. CRLF; 0 = no limit */
    uint64_t         size;          /* content bytes seen (after unstuffing) */
    uint64_t         lines;         /* lines fed */
    unsigned         flags;         /* SMTPDATA_* */
    bool             prev_crlf;     /* previous line ended in CRLF */
    bool             done;          /* end of data seen */
};

/* Start reading one message's data after the "354".  out may be NULL if a
 * sink is set.  Content is stored as received (CRLF line ends kept), with
 * dot-stuffing undone; the final ".\r\n" is not content. */
void smtpdata_init(struct smtpdata *d, buf_t *out, uint64_t size_limit, size_t line_max);
void smtpdata_set_sink(struct smtpdata *d, smtpdata_sink_fn fn, void *ctx);
/* Feed one line exactly as stream_getline() returned it.  Returns 1 at the
 * end of data (the line was ".\r\n"), 0 for more.  Never fails: problems
 * are remembered in d->flags (visible at once, so an engine may choose to
 * drop an abusive peer early) and reported by smtpdata_result(). */
int  smtpdata_feed(struct smtpdata *d, const char *line, size_t len);
/* stream_getline() said STREAM_TOOLONG: the line was thrown away, its
 * ending unknown.  It is treated as over-long and as not CRLF-terminated
 * (safe: a following ".\r\n" does not end the data).  The engine should
 * read with a max_len above line_max so this is only hit by abuse. */
void smtpdata_feed_toolong(struct smtpdata *d);
/* After the end: 0 if the message may be accepted, otherwise -1 with err
 * filled (see the failure modes above for the replies and their order). */
int  smtpdata_result(const struct smtpdata *d, struct smtpreply_err *err);

#endif
