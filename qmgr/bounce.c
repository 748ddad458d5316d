/*
 * bounce.c - qmgr's delivery status notifications (lib/dsn builds and
 * sends them): the non-delivery report for recipients that failed for
 * good, and the success report for recipients that asked for one
 * (NOTIFY=SUCCESS).
 *
 * The report is committed by cleanup before the failed recipients are
 * marked bounced.  Mail from the null sender is never answered (logged
 * and dropped).
 *
 * Failure modes: cleanup unreachable or refusing is a -1 return (logged):
 * the caller defers the recipients and tries the whole thing again later.
 */
#include <stdlib.h>
#include <string.h>

#include "dsn.h"
#include "msg.h"
#include "qmgr.h"
#include "xalloc.h"

int qmgr_bounce(struct qmgr_msg *m, const size_t *rcpts, size_t n, const char *action)
{
    int failed = strcmp(action, "failed") == 0;
    struct dsn_rcpt *r;
    char *queued_as;
    int rc;

    if (*m->q->sender == '\0') {
        if (failed)
            msg_info("%s: undeliverable mail from <> for %zu recipient%s: no report sent", m->id,
                     n, n == 1 ? "" : "s");
        return 0;
    }
    r = xcalloc(n ? n : 1, sizeof(*r));
    for (size_t i = 0; i < n; i++) {
        r[i].rcpt = &m->q->rcpts[rcpts[i]];
        r[i].dsn = m->rs[rcpts[i]].dsn;
        r[i].text = m->rs[rcpts[i]].text;
        r[i].relay = m->rs[rcpts[i]].relay;
        r[i].diag_type = m->rs[rcpts[i]].diag_type;
        r[i].diag_text = m->rs[rcpts[i]].diag_text;
    }
    rc = dsn_send(m->id, m->q, r, n, failed, &queued_as);
    if (rc == 0)
        msg_info("%s: sender %s notification: %s", m->id,
                 failed ? "non-delivery" : "delivery status", queued_as);
    free(queued_as);
    free(r);
    return rc;
}
