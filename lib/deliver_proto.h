/*
 * deliver_proto - the one protocol between qmgr and every delivery
 * transport (local today, smtp next), after Postfix's deliver_request.
 *
 * Socket: the transport's (private/local, ...).  Protocol "deliver"
 * version 2 (2 added the per-recipient relayed field); qmgr sends its
 * hello first and the transport accepts only mail_owner (and root).  qmgr may have many requests outstanding on one
 * connection; each result carries the request id of its request, and
 * results come in any order.
 *
 *   DELIVER_REQUEST (reqid = qmgr's delivery number)
 *     str queue_id, str sender ("" = <>), str nexthop (the destination the
 *     transport is to reach: "" for local, a domain or "[host]:port" for
 *     smtp), int flags (0), int nrcpt (1..DELIVER_MAX_RCPTS), then per
 *     recipient: int index (its place in the queue file, so the transport
 *     finds its DSN ORCPT and NOTIFY there), str address, str
 *     orig_recipient ("" = same);
 *     fd: the queue file, read-only (the transport validates it with
 *     queue_read and copies the content from it).
 *   DELIVER_RESULT (same reqid)
 *     int site_class (0: the destination itself was fine; 4: it failed as
 *     a whole, e.g. no connection, a bad greeting, a TLS failure: qmgr may
 *     hold its other mail back), str site_text, str relay (where the mail
 *     went, for the log: "local", "mx.example.org[192.0.2.1]:25"),
 *     int n (= the request's nrcpt), then per recipient, in request order:
 *     int class (2 delivered, 4 try again later, 5 failed for good), str
 *     dsn ("2.0.0", "4.3.0", "5.1.1", ...), str text (for the log and the
 *     DSN: "delivered to maildir", "unknown user: \"bob\"", "host X said:
 *     ..."), str diag_type and str diag_text (RFC 3464's Diagnostic-Code:
 *     "smtp" and the remote server's reply as it came, or both "" when
 *     the text is our own), int relayed (how a delivery of class 2 left
 *     us, for the sender's success notice: DELIVER_FINAL into a mailbox,
 *     the only value a class 4 or 5 may carry; DELIVER_RELAYED to a server
 *     that did not announce DSN, so we report "relayed" (RFC 3464 2.3.3)
 *     when the recipient asked for NOTIFY=SUCCESS; DELIVER_RELAYED_DSN to
 *     one that did and got the NOTIFY, which then reports itself: Postfix
 *     sends nothing of its own in that case).
 *
 * Each side uses both halves of this module: the encoders build exactly
 * what the decoders accept.  Decoding checks every field (counts within
 * bounds, queue ID syntax, no control characters in texts, status codes
 * of the right class); a malformed message is a peer error (-1, nothing
 * kept), never an abort.
 */
#ifndef POSTHORN_DELIVER_PROTO_H
#define POSTHORN_DELIVER_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "ipc.h"

#define DELIVER_PROTO_NAME     "deliver"
#define DELIVER_PROTO_VERSION  2
#define DELIVER_MAX_RCPTS      1000
#define DELIVER_TEXT_LIMIT     1000     /* encoders cut texts to this */

enum {
    DELIVER_REQUEST = 0x400,
    DELIVER_RESULT,
};

struct deliver_rcpt {
    int   index;            /* in the queue file */
    char *address;
    char *orig_recipient;   /* "" = same */
};

struct deliver_request {
    char                *queue_id;
    char                *sender;
    char                *nexthop;
    int                  flags;
    size_t               nrcpt;
    struct deliver_rcpt *rcpts;
    int                  queue_fd;  /* owned; -1 if none */
};

/* struct deliver_status.relayed */
#define DELIVER_FINAL        0  /* delivered into a mailbox (or not delivered) */
#define DELIVER_RELAYED      1  /* handed to a server without DSN */
#define DELIVER_RELAYED_DSN  2  /* handed to a server with DSN, NOTIFY passed on */

struct deliver_status {
    int   dsn_class;        /* 2, 4 or 5 */
    char *dsn;
    char *text;
    char *diag_type;        /* "smtp", or NULL/"" (encoded as "") */
    char *diag_text;        /* the remote reply, or NULL/"" */
    int   relayed;          /* DELIVER_FINAL, ...; not FINAL only for class 2 */
};

struct deliver_result {
    int                    site_class;  /* 0 or 4 */
    char                  *site_text;
    char                  *relay;
    size_t                 n;
    struct deliver_status *status;
};

void deliver_proto_init(void);

/* The message borrows r->queue_fd for the send: the caller sets m->fd to
 * -1 before freeing the message. */
ipc_msg_t *deliver_request_encode(uint32_t reqid, const struct deliver_request *r);
/* 0, or -1 with *why (r is cleared); takes the fd out of m. */
int  deliver_request_decode(ipc_msg_t *m, struct deliver_request *r, const char **why);
void deliver_request_free(struct deliver_request *r);  /* closes queue_fd */

/* Texts are cut to DELIVER_TEXT_LIMIT bytes and control characters
 * replaced, so whatever a transport collected can be sent. */
ipc_msg_t *deliver_result_encode(uint32_t reqid, const struct deliver_result *r);
/* 0, or -1 (malformed). */
int  deliver_result_decode(ipc_msg_t *m, struct deliver_result *r);
void deliver_result_free(struct deliver_result *r);

/* 1 if s is an enhanced status code "C.SSS.DDD" (RFC 3463) of class
 * dsn_class (0: any of 2, 4, 5). */
int  dsn_code_valid(const char *s, int dsn_class);

#endif
