/*
 * msgheader - the header of a message (RFC 5322 2.2): its fields as they
 * stand, for the programs that look at a message's header fields rather
 * than stream past them: sendmail (-t recipients, the fields it adds) and
 * submission (whose From: a login may use).  cleanup reads where the
 * header ends to put the fields it adds there.
 *
 * The header is the run of lines from the start of the content up to the
 * first empty line, or up to the first line that is neither a header
 * field ("name:", the name printable ASCII without ':') nor the
 * continuation of one (starting with a blank): that line starts the body,
 * as Postfix's cleanup reads it.  Each field keeps its text as written,
 * continuation lines included, each line with its CRLF.
 *
 * Interface:
 *   msgheader_read(fd, len, &h)     the header of the content in fd (read
 *                                   with pread from offset 0, len bytes)
 *   msgheader_add_line(&h, line, n) one line (without its line end) of a
 *                                   header being read line by line (sendmail
 *                                   -t); 1 if it belongs to the header, 0 if
 *                                   it ends it
 *   msgheader_find(&h, name)        the first field of that name, or NULL
 *   msgheader_field_is(f, name)     case-insensitive name match
 *   msgheader_field_value(f, &len)  the value unfolded (fresh, NUL-terminated;
 *                                   len, if not NULL, counts any NULs in it)
 *   msgheader_free(&h)
 *   msgheader_put_date(out, now)    "Date: ..." (RFC 5322 3.3, local time)
 *   msgheader_put_message_id(out, now, host)
 *                                   "Message-ID: <YYYYMMDDhhmmss.RANDOM@host>"
 *                                   (both with CRLF, for a header being
 *                                   completed)
 *
 * Failure modes: msgheader_read returns -1 with errno when fd cannot be
 * read (EBADMSG: shorter than len).  Anything in the content is data: no
 * header, a header without an end, NULs and 8-bit bytes all parse.
 */
#ifndef POSTHORN_MSGHEADER_H
#define POSTHORN_MSGHEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"

struct msgheader_field {
    char  *text;        /* the whole field, each line with CRLF */
    size_t len;         /* its length (the text may hold NULs) */
    size_t name_len;    /* the name's length (before ':') */
};

struct msgheader {
    struct msgheader_field *fields;
    size_t   n;
    size_t   cap;
    bool     done;       /* the header has ended */
    uint64_t end;        /* msgheader_read: the offset where the header
                            ends (of the empty line or the first body line,
                            or len) */
    bool     separated;  /* an empty line follows the header */
    bool     unterminated;  /* msgheader_read: the header's last field ends
                               the content without a line end */
};

int  msgheader_read(int fd, uint64_t len, struct msgheader *h);
int  msgheader_add_line(struct msgheader *h, const char *line, size_t len);
const struct msgheader_field *msgheader_find(const struct msgheader *h, const char *name);
bool msgheader_field_is(const struct msgheader_field *f, const char *name);
char *msgheader_field_value(const struct msgheader_field *f, size_t *lenp);
void msgheader_free(struct msgheader *h);
void msgheader_put_date(buf_t *out, time_t now);
void msgheader_put_message_id(buf_t *out, time_t now, const char *host);

#endif
