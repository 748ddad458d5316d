/*
 * header - cleanup's view of a message header: the scanner that counts
 * Received: lines and picks out the Message-ID while the content streams
 * by, and the Received: header cleanup prepends.
 *
 * Interface:
 *   header_scan_init / header_scan_feed / header_scan_free: feed content
 *     in pieces of any size; the scan stops at the first empty line.
 *   header_received(): the Received: header text (CRLF lines) built from
 *     the client attributes of a request.
 *
 * Failure modes: none (pure; out-of-memory is fatal).
 */
#ifndef POSTHORN_CLEANUP_HEADER_H
#define POSTHORN_CLEANUP_HEADER_H

#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "cleanup_proto.h"

#define HEADER_MSGID_MAX 998

struct header_scan {
    int      done;          /* the empty line was seen */
    int      bol;           /* at the start of a line */
    char     start[12];     /* first bytes of the current line, lower-cased */
    size_t   nstart;
    int      in_msgid;      /* inside the Message-ID header (continuations too) */
    unsigned received;      /* Received: headers seen */
    buf_t   *msgid;         /* raw Message-ID value, NULL until seen */
};

void header_scan_init(struct header_scan *h);
void header_scan_feed(struct header_scan *h, const char *data, size_t len);
/* The Message-ID value with surrounding white space removed ("" if none). */
const char *header_scan_msgid(struct header_scan *h);
void header_scan_free(struct header_scan *h);

/* Append the Received: header for request r, queued as id at time now. */
void header_received(buf_t *out, const struct cleanup_request *r, const char *id, time_t now);

#endif
