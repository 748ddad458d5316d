/*
 * dsn - delivery status notifications built from a queue file and sent
 * through cleanup; see dsn.c.
 */
#ifndef POSTHORN_DSN_H
#define POSTHORN_DSN_H

#include "queue.h"

struct dsn_rcpt {
    const queue_rcpt_t *rcpt;       /* one of q's recipients */
    const char         *dsn;        /* "5.1.1", ...; NULL: 5.0.0 / 2.0.0 */
    const char         *text;       /* the diagnostic */
    const char         *relay;      /* "host[addr]:port" of a remote MTA, or NULL/"local" */
    const char         *diag_type;  /* "smtp": diag_text is the remote reply; or NULL */
    const char         *diag_text;
};

/* Report on n recipients of message id (q) to its sender (not the null
 * sender: the caller checks): a non-delivery report if failed, else a
 * success report.  0 with *queued_as (fresh) the report's queue ID, or -1
 * (logged). */
int dsn_send(const char *id, const queue_file_t *q, const struct dsn_rcpt *rcpts, size_t n,
             int failed, char **queued_as);

#endif
