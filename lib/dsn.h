/*
 * dsn - delivery status notifications built from a queue file and sent
 * through cleanup; see dsn.c.
 */
#ifndef POSTHORN_DSN_H
#define POSTHORN_DSN_H

#include <time.h>

#include "buf.h"
#include "queue.h"

/* Which report: the kind decides the subject, the explanation, the
 * default Action and Status, and how much of the original comes back. */
enum dsn_kind {
    DSN_SUCCESS = 0,        /* NOTIFY=SUCCESS: "delivered" or "relayed" */
    DSN_FAILED,             /* non-delivery report */
    DSN_DELAYED,            /* delay_warning_time: "delayed", still being retried */
};

struct dsn_rcpt {
    const queue_rcpt_t *rcpt;       /* one of q's recipients */
    const char         *dsn;        /* "5.1.1", ...; NULL: 5.0.0 / 4.0.0 / 2.0.0 */
    const char         *text;       /* the diagnostic */
    const char         *relay;      /* "host[addr]:port" of a remote MTA, or NULL/"local" */
    const char         *diag_type;  /* "smtp": diag_text is the remote reply; or NULL */
    const char         *diag_text;
    int                 relayed;    /* DSN_SUCCESS: handed to an MTA without DSN
                                     * (Action: relayed); else "delivered" */
};

/* Report on n recipients of message id (q) to its sender (not the null
 * sender: the caller checks).  0 with *queued_as (fresh) the report's
 * queue ID, or -1 (logged). */
int dsn_send(const char *id, const queue_file_t *q, const struct dsn_rcpt *rcpts, size_t n,
             enum dsn_kind kind, char **queued_as);

/* The report dsn_send() submits, appended to b, as of time now (for the
 * unit tests; dsn_send uses the current time).  Reads myhostname,
 * delay_warning_time, maximal_queue_lifetime and bounce_queue_lifetime. */
void dsn_build(buf_t *b, const char *id, const queue_file_t *q, const struct dsn_rcpt *rcpts,
               size_t n, enum dsn_kind kind, time_t now);

#endif
