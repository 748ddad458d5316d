/*
 * bounce.c - qmgr's delivery status notifications (lib/dsn builds and
 * sends them): the non-delivery report for recipients that failed for
 * good, the success report for recipients that asked for one
 * (NOTIFY=SUCCESS: "delivered", or "relayed" for those handed to a server
 * that did not announce DSN), and the one "delayed" warning per message
 * (delay_warning_time).
 *
 * The report is committed by cleanup before the failed recipients are
 * marked bounced, and before the recipients are marked warned.  Mail from
 * the null sender is never answered (logged and dropped).
 *
 * The delay warning follows Postfix: at the end of a round (its
 * qmgr_active_done) that leaves recipients deferred, once the message has
 * been in the queue delay_warning_time, for the recipients whose NOTIFY
 * asks for it (NOTIFY=DELAY, or no NOTIFY at all; not NEVER, not a list
 * without DELAY), with each one's last reason: this round's (and the
 * remote reply as Diagnostic-Code), or for one not tried this round the
 * reason in the defer log.
 *
 * Failure modes: cleanup unreachable or refusing is a -1 return (logged):
 * the caller defers the recipients and tries the whole thing again later.
 * Parameters: delay_warning_time.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "defer_log.h"
#include "deliver_proto.h"
#include "dsn.h"
#include "msg.h"
#include "qmgr.h"
#include "xalloc.h"

static void qmgr_dsn_rcpt(struct dsn_rcpt *d, struct qmgr_msg *m, size_t i)
{
    const struct qmgr_rcpt_state *s = &m->rs[i];

    d->rcpt = &m->q->rcpts[i];
    d->dsn = s->dsn;
    d->text = s->text;
    d->relay = s->relay;
    d->diag_type = s->diag_type;
    d->diag_text = s->diag_text;
    d->relayed = s->relayed == DELIVER_RELAYED;
}

int qmgr_bounce(struct qmgr_msg *m, const size_t *rcpts, size_t n, enum dsn_kind kind)
{
    static const char *const what[] = {
        [DSN_SUCCESS] = "delivery status", [DSN_FAILED] = "non-delivery",
        [DSN_DELAYED] = "delay",
    };
    struct dsn_rcpt *r;
    char *queued_as;
    int rc;

    if (*m->q->sender == '\0') {
        if (kind == DSN_FAILED)
            msg_info("%s: undeliverable mail from <> for %zu recipient%s: no report sent", m->id,
                     n, n == 1 ? "" : "s");
        return 0;
    }
    r = xcalloc(n ? n : 1, sizeof(*r));
    for (size_t i = 0; i < n; i++)
        qmgr_dsn_rcpt(&r[i], m, rcpts[i]);
    rc = dsn_send(m->id, m->q, r, n, kind, &queued_as);
    if (rc == 0)
        msg_info("%s: sender %s notification: %s", m->id, what[kind], queued_as);
    free(queued_as);
    free(r);
    return rc;
}

/* Does the recipient want a delay warning (RFC 3461 NOTIFY)?  Postfix: the
 * default (no NOTIFY) does, when delay_warning_time is set. */
static int qmgr_delay_wanted(unsigned notify)
{
    if (notify & QUEUE_NOTIFY_NEVER)
        return 0;
    return notify == 0 || (notify & QUEUE_NOTIFY_DELAY) != 0;
}

int qmgr_delay_warning(struct qmgr_msg *m, const unsigned char *stays)
{
    long long after = conf_time("delay_warning_time");
    struct defer_log_entry *old = NULL;
    size_t nold = 0, n = 0;
    struct dsn_rcpt *r;
    struct timespec now;
    char *queued_as = NULL;
    int rc, log_read = 0;

    clock_gettime(CLOCK_REALTIME, &now);
    if (after == 0 || *m->q->sender == '\0'
        || (now.tv_sec - m->q->arrival_sec) * 1000000LL
           + now.tv_nsec / 1000 - (long long)m->q->arrival_usec < after * 1000000LL)
        return 0;
    r = xcalloc(m->q->nrcpt ? m->q->nrcpt : 1, sizeof(*r));
    for (size_t i = 0; i < m->q->nrcpt; i++) {
        const queue_rcpt_t *rcpt = &m->q->rcpts[i];
        const struct defer_log_entry *was;

        if (!stays[i] || (rcpt->st.flags & QUEUE_RCPT_F_DELAY_WARNED)
            || !qmgr_delay_wanted(rcpt->notify))
            continue;
        if (m->rs[i].outcome == QMGR_OUT_DEFER) {
            qmgr_dsn_rcpt(&r[n++], m, i);
            continue;
        }
        /* Not tried this round: its reason is in the defer log. */
        if (!log_read) {
            defer_log_read(qmgr_qdir, m->id, geteuid(), &old, &nold);
            log_read = 1;
        }
        was = defer_log_find(old, nold, rcpt->address);
        r[n].rcpt = rcpt;
        r[n].dsn = was ? was->dsn : rcpt->st.dsn;
        r[n++].text = was ? was->text : "delivery deferred";
    }
    if (n == 0) {
        rc = 0;
    } else if ((rc = dsn_send(m->id, m->q, r, n, DSN_DELAYED, &queued_as)) == 0) {
        msg_info("%s: sender delay notification: %s", m->id, queued_as);
        rc = 1;
    } else {
        msg_warn("%s: the delay notification was not sent; trying again next round", m->id);
    }
    free(queued_as);
    defer_log_free(&old, nold);
    free(r);
    return rc;
}
