/*
 * smtpdata - the DATA reader (see smtpdata.h for the interface and the
 * bare CR / LF rule).
 *
 * How the rule is applied: a line (as split at LF by stream_getline) is
 * bad if it ends in a bare LF or holds a CR anywhere but in its final
 * CRLF.  The end of data is ONLY the line ".\r\n" right after a line that
 * ended in CRLF (the DATA command counts as one).  A bad line marks the
 * message invalid; the reader stores nothing more, keeps reading to the
 * real CRLF "." CRLF and then reports 550 5.6.0: the message is never
 * delivered, and a bare-LF or bare-CR "." never ends it, so a second
 * message cannot be smuggled after it.  Dot-unstuffing removes the first
 * "." of every line that starts with one (RFC 5321 4.5.2).  Over-size and
 * over-long lines are counted the same way: flags, reported at the end.
 */
#include <string.h>

#include "buf.h"
#include "msg.h"
#include "smtpdata.h"

void smtpdata_init(struct smtpdata *d, buf_t *out, uint64_t size_limit, size_t line_max)
{
    memset(d, 0, sizeof(*d));
    d->out = out;
    d->size_limit = size_limit;
    d->line_max = line_max;
    d->prev_crlf = true;            /* the DATA command ended in CRLF */
}

void smtpdata_set_sink(struct smtpdata *d, smtpdata_sink_fn fn, void *ctx)
{
    d->sink = fn;
    d->sink_ctx = ctx;
}

int smtpdata_feed(struct smtpdata *d, const char *line, size_t len)
{
    bool crlf = len >= 2 && line[len - 2] == '\r' && line[len - 1] == '\n';
    bool lf = len > 0 && line[len - 1] == '\n';
    size_t content;

    if (d->done)
        msg_panic("smtpdata_feed: called after the end of data");
    if (len == 0)                               /* nothing arrived: no state change */
        return 0;
    if (d->prev_crlf && len == 3 && memcmp(line, ".\r\n", 3) == 0) {
        d->done = true;
        return 1;
    }
    d->lines++;
    content = crlf ? len - 2 : lf ? len - 1 : len;   /* without the terminator */
    if ((lf && !crlf) || memchr(line, '\r', content) || memchr(line, '\n', content))
        d->flags |= SMTPDATA_BAD_EOL;
    if (d->line_max > 0 && len > d->line_max)
        d->flags |= SMTPDATA_LONGLINE;
    d->prev_crlf = crlf;
    if (len > 0 && line[0] == '.') {            /* RFC 5321 4.5.2 */
        line++;
        len--;
    }
    d->size += len;
    if (d->size_limit > 0 && d->size > d->size_limit)
        d->flags |= SMTPDATA_TOOBIG;
    if (d->flags != 0 || len == 0)
        return 0;                               /* invalid: store nothing more */
    if (d->sink) {
        if (d->sink(d->sink_ctx, line, len) < 0)
            d->flags |= SMTPDATA_SINKERR;
    } else if (d->out && buf_append(d->out, line, len) < 0)
        d->flags |= SMTPDATA_TOOBIG;
    return 0;
}

void smtpdata_feed_toolong(struct smtpdata *d)
{
    if (d->done)
        msg_panic("smtpdata_feed_toolong: called after the end of data");
    d->lines++;
    d->flags |= SMTPDATA_LONGLINE;
    d->prev_crlf = false;
}

static int smtpdata_fail(struct smtpreply_err *err, int code, const char *dsn, const char *text)
{
    err->code = code;
    err->dsn = dsn;
    err->text = text;
    return -1;
}

int smtpdata_result(const struct smtpdata *d, struct smtpreply_err *err)
{
    if (!d->done)
        msg_panic("smtpdata_result: data not finished");
    if (d->flags & SMTPDATA_SINKERR)
        return smtpdata_fail(err, 451, "4.3.0", "Error: queue file write error");
    if (d->flags & SMTPDATA_BAD_EOL)
        return smtpdata_fail(err, 550, "5.6.0", "Message contains bare <CR> or <LF>");
    if (d->flags & SMTPDATA_TOOBIG)
        return smtpdata_fail(err, 552, "5.3.4", "Message size exceeds fixed limit");
    if (d->flags & SMTPDATA_LONGLINE)
        return smtpdata_fail(err, 550, "5.6.0", "Message contains a line that is too long");
    return 0;
}
