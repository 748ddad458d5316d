/*
 * content.c - the message content on the wire.
 *
 * The content comes from the queue file (queue_content_copy, pread only:
 * the descriptor is qmgr's too) in pieces of any size.  On the way out:
 *  - every line ends in CR LF, whatever the stored line ends (a bare LF
 *    gets its CR; a CR LF stays; a CR inside a line is left alone), and
 *    the content ends with a line end;
 *  - DATA: a line that starts with "." gets another (RFC 5321 4.5.2), and
 *    ".\r\n" ends the data; the caller reads the final reply;
 *  - BDAT (CHUNKING, RFC 3030): chunks of CONTENT_CHUNK bytes, the last
 *    one "BDAT n LAST"; without PIPELINING each chunk's reply is read
 *    before the next is sent, with it all are sent and the replies read at
 *    the end (the first that is not 2xx is the verdict);
 *  - downgrade (a server without 8BITMIME): two passes through lib/mime8
 *    over the content split into lines (a line over CONTENT_LINE_MAX
 *    bytes is cut into several), the second writing the converted lines.
 *
 * Failure modes: a queue file that cannot be read (or changed under us)
 * is CONTENT_QUEUE_ERR: the session is left unusable, so the server never
 * sees the end of a message cut short.  The server going away or
 * stalling is a session error.  Out of memory is fatal.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mime8.h"
#include "msg.h"
#include "smtp.h"
#include "xalloc.h"

#define CONTENT_CHUNK     65536
#define CONTENT_LINE_MAX  65536

struct content_out {
    session_t        *s;
    enum content_mode mode;
    bool              pipelining;
    buf_t            *chunk;        /* BDAT: the chunk being filled */
    size_t            nbdat;        /* BDAT commands whose replies are due */
    int               err;          /* first session error */
    const char       *why;
    bool              at_bol;       /* the next byte starts a line */
    char              last;         /* the last byte written */
    struct smtp_reply fail;         /* BDAT: the first reply that was not 2xx */
};

/* ---------------------------------------------------------- 8-bit check */

static int content_find_8bit(void *ctx, const void *data, size_t len)
{
    (void)ctx;
    return mime8_has_8bit(data, len) ? 1 : 0;
}

int content_is_8bit(const queue_file_t *q)
{
    int rc = queue_content_copy(q, content_find_8bit, NULL);

    return rc < 0 ? -1 : rc > 0;
}

/* ------------------------------------------------------------- output */

/* Read one reply of a pipelined or synchronous BDAT; keep the first
 * failure. */
static void content_bdat_reply(struct content_out *o, int timeout_ms)
{
    int rc;

    if (o->err)
        return;
    rc = session_read(o->s, timeout_ms, &o->why);
    if (rc != SESS_OK) {
        o->err = rc;
        return;
    }
    if (o->s->reply.code / 100 != 2 && o->fail.code == 0) {
        o->fail.code = o->s->reply.code;
        memcpy(o->fail.dsn, o->s->reply.dsn, sizeof(o->fail.dsn));
        o->fail.text = xstrdup(o->s->reply.text);
    }
}

static void content_bdat_flush(struct content_out *o, bool last)
{
    int rc;

    if (o->err || o->fail.code)
        return;
    stream_set_timeout(o->s->st, smtp_param.data_xfer_ms);
    rc = session_send(o->s, "BDAT %zu%s", o->chunk->len, last ? " LAST" : "");
    if (rc == SESS_OK && o->chunk->len > 0
        && stream_write(o->s->st, o->chunk->data, o->chunk->len) < 0) {
        o->s->usable = false;
        rc = SESS_LOST;
    }
    buf_reset(o->chunk);
    if (rc != SESS_OK) {
        o->err = rc;
        return;
    }
    o->nbdat++;
    if (!o->pipelining || last) {
        if ((rc = session_flush(o->s, smtp_param.data_xfer_ms)) != SESS_OK) {
            o->err = rc;
            return;
        }
        while (o->nbdat > 0 && !o->err) {
            o->nbdat--;
            content_bdat_reply(o, o->nbdat == 0 && last ? smtp_param.data_done_ms
                                                        : smtp_param.data_xfer_ms);
        }
    }
}

static void content_write(struct content_out *o, const char *data, size_t len)
{
    if (o->err || o->fail.code || len == 0)
        return;
    if (o->mode == CONTENT_DATA) {
        int rc = stream_write(o->s->st, data, len);

        if (rc < 0) {
            o->s->usable = false;
            o->err = rc == STREAM_TIMEOUT ? SESS_TIMEOUT : SESS_LOST;
        }
        return;
    }
    while (len > 0 && !o->err && !o->fail.code) {
        size_t room = CONTENT_CHUNK - o->chunk->len, n = len < room ? len : room;

        (void)buf_append(o->chunk, data, n);
        data += n;
        len -= n;
        if (o->chunk->len == CONTENT_CHUNK)
            content_bdat_flush(o, false);
    }
}

/* Raw pieces: CR LF line ends and dot-stuffing, across piece boundaries. */
static int content_piece(void *ctx, const void *data, size_t len)
{
    struct content_out *o = ctx;
    const char *p = data;

    while (len > 0 && !o->err && !o->fail.code) {
        const char *nl;
        size_t seg;

        if (o->at_bol && o->mode == CONTENT_DATA && p[0] == '.')
            content_write(o, ".", 1);
        nl = memchr(p, '\n', len);
        seg = nl ? (size_t)(nl - p) : len;
        if (seg > 0) {
            content_write(o, p, seg);
            o->last = p[seg - 1];
            o->at_bol = false;
        }
        if (nl == NULL)
            break;
        if (o->last == '\r' && !o->at_bol)
            content_write(o, "\n", 1);
        else
            content_write(o, "\r\n", 2);
        o->at_bol = true;
        o->last = '\n';
        p += seg + 1;
        len -= seg + 1;
    }
    return o->err || o->fail.code ? 1 : 0;
}

/* One converted line from lib/mime8. */
static int content_line(void *ctx, const char *line, size_t len)
{
    struct content_out *o = ctx;

    if (o->mode == CONTENT_DATA && len > 0 && line[0] == '.')
        content_write(o, ".", 1);
    content_write(o, line, len);
    content_write(o, "\r\n", 2);
    return o->err || o->fail.code ? 1 : 0;
}

/* ------------------------------------------------------ the downgrade */

struct content_split {
    buf_t               *line;
    mime8_t             *m;
    struct content_out  *o;         /* NULL: the scan */
    int                  stop;
};

static void content_split_line(struct content_split *sp)
{
    const char *l = sp->line->data;
    size_t n = sp->line->len;

    if (n > 0 && l[n - 1] == '\r')
        n--;
    if (sp->o == NULL)
        mime8_scan(sp->m, l, n);
    else if (mime8_convert(sp->m, l, n, content_line, sp->o) != 0)
        sp->stop = 1;
    buf_reset(sp->line);
}

static int content_split_piece(void *ctx, const void *data, size_t len)
{
    struct content_split *sp = ctx;
    const char *p = data;

    while (len > 0 && !sp->stop) {
        const char *nl = memchr(p, '\n', len);
        size_t seg = nl ? (size_t)(nl - p) : len;

        while (seg > 0 && !sp->stop) {
            size_t room = CONTENT_LINE_MAX - sp->line->len, n = seg < room ? seg : room;

            (void)buf_append(sp->line, p, n);
            p += n;
            seg -= n;
            len -= n;
            if (sp->line->len == CONTENT_LINE_MAX)
                content_split_line(sp);     /* cut */
        }
        if (nl && !sp->stop) {
            content_split_line(sp);
            p++;
            len--;
        }
    }
    return sp->stop;
}

static int content_downgrade(const queue_file_t *q, struct content_out *o)
{
    struct content_split sp = {0};
    int rc;

    sp.line = buf_new(0);
    sp.m = mime8_new(&smtp_param.mime);
    rc = queue_content_copy(q, content_split_piece, &sp);
    if (rc == 0 && sp.line->len > 0)
        content_split_line(&sp);
    if (rc == 0) {
        sp.o = o;
        rc = queue_content_copy(q, content_split_piece, &sp);
        if (rc == 0 && sp.line->len > 0)
            content_split_line(&sp);
        if (rc == 0 && !sp.stop)
            (void)mime8_convert_end(sp.m, content_line, o);
    }
    mime8_free(&sp.m);
    buf_free(&sp.line);
    /* The lines ended with CR LF: the content ends with a line end. */
    o->at_bol = true;
    return rc < 0 ? -1 : 0;
}

/* ---------------------------------------------------------- the whole */

int content_send(session_t *s, const queue_file_t *q, enum content_mode mode, bool downgrade,
                 bool pipelining, const char **doing, const char **why)
{
    struct content_out o = {0};
    int rc;

    o.s = s;
    o.mode = mode;
    o.pipelining = pipelining;
    o.at_bol = true;
    o.last = '\n';
    if (mode == CONTENT_BDAT)
        o.chunk = buf_new(0);
    *doing = "sending message body";
    *why = NULL;
    stream_set_timeout(s->st, smtp_param.data_xfer_ms);
    if (downgrade)
        rc = content_downgrade(q, &o);
    else
        rc = queue_content_copy(q, content_piece, &o) < 0 ? -1 : 0;
    if (rc < 0 && !o.err && !o.fail.code) {
        *why = errno == EBADMSG ? "the file changed shape" : strerror(errno);
        s->usable = false;
        buf_free(&o.chunk);
        return CONTENT_QUEUE_ERR;
    }
    if (!o.at_bol)
        content_write(&o, "\r\n", 2);
    if (mode == CONTENT_DATA) {
        content_write(&o, ".\r\n", 3);
        if (!o.err && (rc = session_flush(s, smtp_param.data_xfer_ms)) != SESS_OK)
            o.err = rc;
    } else {
        content_bdat_flush(&o, true);
        /* Replies still due after a failure stop the sending: read them. */
        while (o.nbdat > 0 && !o.err) {
            o.nbdat--;
            content_bdat_reply(&o, smtp_param.data_done_ms);
        }
        if (o.fail.code && !o.err) {
            /* The verdict is the first failure. */
            free(s->reply.text);
            s->reply.text = o.fail.text;
            o.fail.text = NULL;
            s->reply.code = o.fail.code;
            memcpy(s->reply.dsn, o.fail.dsn, sizeof(s->reply.dsn));
            /* A refused chunk leaves the server in a state only RSET fixes. */
        }
        free(o.fail.text);
        buf_free(&o.chunk);
    }
    *why = o.why;
    return o.err ? o.err : SESS_OK;
}
