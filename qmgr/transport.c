/*
 * transport.c - delivery jobs: one per (message, recipient) of a round,
 * queued in arrival order and handed to the recipient's transport as the
 * concurrency limit allows.
 *
 * Transports.  A recipient in mydestination goes to local, over ONE
 * connection to private/local that carries up to local_concurrency_limit
 * LOCAL_DELIVER requests at once (each with a read-only descriptor of the
 * queue file; results come back by request id in any order).  Any other
 * recipient would go to the outbound smtp transport, which this release
 * does not have: it is deferred with 4.3.0 "mail transport unavailable",
 * as Postfix does for a transport that is not there, so it is delivered
 * once the transport exists and the mail is retried.  qmgr_transport_name()
 * is the one place that chooses.
 *
 * Destinations.  As in Postfix, local mail goes one recipient at a time,
 * and at most local_destination_concurrency_limit deliveries to the same
 * recipient (its local part without the address extension, lower-cased)
 * run at once: mail for a user whose ~/.forward runs slow commands cannot
 * take every one of local's slots.  Each destination keeps its waiting
 * jobs in arrival order, and the destinations that may send are served in
 * turn (lib/fairq), so a dispatch never walks jobs it cannot send.
 *
 * local going away.  When the connection breaks (local was restarted or
 * killed), its jobs in flight go back to the head of the queue and are
 * sent again on a new connection: local drops a repeated delivery of the
 * same message to the same recipient, so a delivery that had happened is
 * not made twice.  A job sent QMGR_MAX_RESENDS times without a result is
 * deferred ("delivery service died").  While local cannot be reached the
 * queue waits, retrying every QMGR_LOCAL_RETRY_MS; after
 * QMGR_LOCAL_DOWN_MS without a connection the waiting jobs are deferred.
 *
 * Failure modes: a malformed result is a peer error (connection dropped,
 * its jobs resent).  Parameters: local_concurrency_limit,
 * local_destination_concurrency_limit, mydestination.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "fairq.h"
#include "ipc.h"
#include "local_proto.h"
#include "msg.h"
#include "qmgr.h"
#include "xalloc.h"

#define QMGR_LOCAL_IPC_MS    10000
#define QMGR_LOCAL_RETRY_MS  500
#define QMGR_LOCAL_DOWN_MS   10000
#define QMGR_MAX_RESENDS     3

struct qmgr_job {
    struct qmgr_msg      *msg;
    size_t                rcpt;
    struct fairq_item     fq;           /* local jobs: waiting or in flight */
    uint32_t              reqid;        /* 0 while queued */
    int                   sends;
    TAILQ_ENTRY(qmgr_job) link;         /* qmgr_flight or qmgr_unrouted */
};
TAILQ_HEAD(qmgr_job_list, qmgr_job);

/* Local jobs by destination (lib/fairq). */
static fairq_t *qmgr_dests;
/* Jobs for which no transport exists: settled by the next dispatch. */
static struct qmgr_job_list qmgr_unrouted = TAILQ_HEAD_INITIALIZER(qmgr_unrouted);
static struct qmgr_job_list qmgr_flight = TAILQ_HEAD_INITIALIZER(qmgr_flight);
static size_t qmgr_nflight;
static uint32_t qmgr_next_reqid;
static int qmgr_local_fd = -1;
static long long qmgr_local_down_since;     /* 0: not down */
static event_timer_t *qmgr_retry_timer;

void qmgr_transport_init(void)
{
    local_proto_init();
    qmgr_dests = fairq_new((int)conf_int("local_destination_concurrency_limit"));
}

const char *qmgr_transport_name(const char *address)
{
    return addr_is_local(address) ? "local" : "none";
}

/* A local recipient's jobs queue under addr_local_recipient_key: one user
 * gets local_destination_concurrency_limit slots, whatever domain of ours
 * or address extension the mail names. */
void qmgr_job_add(struct qmgr_msg *m, size_t rcpt)
{
    struct qmgr_job *j = xcalloc(1, sizeof(*j));

    j->msg = m;
    j->rcpt = rcpt;
    m->jobs++;
    if (strcmp(qmgr_transport_name(m->q->rcpts[rcpt].address), "local") == 0) {
        char *dest = addr_local_recipient_key(m->q->rcpts[rcpt].address);
        fairq_add(qmgr_dests, dest, &j->fq);
        free(dest);
    } else {
        TAILQ_INSERT_TAIL(&qmgr_unrouted, j, link);
        qmgr_transport_kick();
    }
}

static void qmgr_job_cancel(struct qmgr_job *j)
{
    j->msg->rs[j->rcpt].outcome = QMGR_OUT_NONE;
    j->msg->jobs--;
    free(j);
}

static int qmgr_job_of(struct fairq_item *item, void *m)
{
    return fairq_entry(item, struct qmgr_job, fq)->msg == m;
}

static void qmgr_job_dropped(struct fairq_item *item, void *m)
{
    (void)m;
    qmgr_job_cancel(fairq_entry(item, struct qmgr_job, fq));
}

size_t qmgr_jobs_cancel(struct qmgr_msg *m)
{
    struct qmgr_job *j, *next;
    size_t n = 0;

    TAILQ_FOREACH_SAFE(j, &qmgr_unrouted, link, next) {
        if (j->msg == m) {
            TAILQ_REMOVE(&qmgr_unrouted, j, link);
            qmgr_job_cancel(j);
            n++;
        }
    }
    n += fairq_drop(qmgr_dests, qmgr_job_of, qmgr_job_dropped, m);
    return n;
}

/* Report an outcome for j (which is on no list) and free it.  This may
 * finish and free its message. */
static void qmgr_job_done(struct qmgr_job *j, int dsn_class, const char *dsn, const char *text)
{
    struct qmgr_msg *m = j->msg;
    size_t rcpt = j->rcpt;

    free(j);
    qmgr_msg_outcome(m, rcpt, dsn_class, dsn, text);
}

static void qmgr_local_read(event_loop_t *loop, int fd, int events, void *arg);

/* The connection broke: jobs in flight go back to the head of the queue. */
static void qmgr_local_lost(const char *why)
{
    struct qmgr_job *j;

    if (qmgr_local_fd >= 0) {
        event_del_fd(qmgr_loop, qmgr_local_fd);
        close(qmgr_local_fd);
        qmgr_local_fd = -1;
    }
    if (qmgr_nflight)
        msg_warn("connection to local lost (%s); %zu deliveries in progress will be retried",
                 why, qmgr_nflight);
    while ((j = TAILQ_LAST(&qmgr_flight, qmgr_job_list)) != NULL) {
        TAILQ_REMOVE(&qmgr_flight, j, link);
        qmgr_nflight--;
        j->reqid = 0;
        if (j->sends >= QMGR_MAX_RESENDS) {
            fairq_done(qmgr_dests, &j->fq);
            qmgr_job_done(j, 4, "4.3.0", "local delivery service died during the delivery");
            continue;
        }
        fairq_requeue(qmgr_dests, &j->fq);
    }
}

static void qmgr_retry(event_loop_t *loop, void *arg)
{
    (void)loop;
    (void)arg;
    qmgr_retry_timer = NULL;
    qmgr_transport_kick();
}

/* Connect to local if needed; 0 or -1 (retry scheduled or jobs deferred). */
static int qmgr_local_connect(void)
{
    const char *why = NULL;

    if (qmgr_local_fd >= 0)
        return 0;
    qmgr_local_fd = ipc_client_open(LOCAL_SOCKET, LOCAL_PROTO_NAME, LOCAL_PROTO_VERSION,
                                    QMGR_LOCAL_IPC_MS, &why);
    if (qmgr_local_fd >= 0) {
        if (qmgr_local_down_since)
            msg_info("connected to local again");
        qmgr_local_down_since = 0;
        event_add_fd(qmgr_loop, qmgr_local_fd, EVENT_READ, qmgr_local_read, NULL);
        return 0;
    }
    if (qmgr_local_down_since == 0) {
        qmgr_local_down_since = event_now_ms();
        msg_warn("cannot connect to local: %s; retrying", why ? why : strerror(errno));
    }
    if (event_now_ms() - qmgr_local_down_since >= QMGR_LOCAL_DOWN_MS) {
        /* Give up on this round: defer what waits for local. */
        struct fairq_item *item;

        while ((item = fairq_any_waiting(qmgr_dests)) != NULL) {
            fairq_remove(qmgr_dests, item);
            qmgr_job_done(fairq_entry(item, struct qmgr_job, fq), 4, "4.3.0",
                          "local delivery service unavailable");
        }
        qmgr_local_down_since = event_now_ms();
    }
    if (qmgr_retry_timer == NULL && fairq_nwaiting(qmgr_dests) > 0)
        qmgr_retry_timer = event_add_timer(qmgr_loop, QMGR_LOCAL_RETRY_MS, qmgr_retry, NULL);
    return -1;
}

/* Send j to local; 0, or -1 if the connection broke (j back in the queue). */
static int qmgr_local_send(struct qmgr_job *j)
{
    const queue_rcpt_t *r = &j->msg->q->rcpts[j->rcpt];
    ipc_msg_t *m;
    int rc;

    if (++qmgr_next_reqid == 0)
        qmgr_next_reqid = 1;
    j->reqid = qmgr_next_reqid;
    j->sends++;
    TAILQ_INSERT_TAIL(&qmgr_flight, j, link);
    qmgr_nflight++;
    m = local_request_encode(j->reqid, j->msg->id, j->msg->q->sender, r->address,
                             r->orig ? r->orig : "", 0, j->msg->fd);
    rc = ipc_send(qmgr_local_fd, m, QMGR_LOCAL_IPC_MS);
    m->fd = -1;                 /* lent, not given */
    ipc_msg_free(&m);
    if (rc < 0) {
        qmgr_local_lost(strerror(errno));
        return -1;
    }
    return 0;
}

/* Hand out what the limits allow.  Runs from its own zero-delay timer so
 * that it never runs inside itself or inside a caller's list walk. */
static void qmgr_dispatch(event_loop_t *loop, void *arg);
static event_timer_t *qmgr_dispatch_timer;

void qmgr_transport_kick(void)
{
    if (qmgr_dispatch_timer == NULL)
        qmgr_dispatch_timer = event_add_timer(qmgr_loop, 0, qmgr_dispatch, NULL);
}

static void qmgr_dispatch(event_loop_t *loop, void *arg)
{
    size_t limit = (size_t)conf_int("local_concurrency_limit");
    struct qmgr_job *j, *next;

    (void)loop;
    (void)arg;
    qmgr_dispatch_timer = NULL;
    /* qmgr_job_done() may finish a message and bring new ones in: that
     * only appends to the lists, so the saved next pointer stays valid. */
    TAILQ_FOREACH_SAFE(j, &qmgr_unrouted, link, next) {
        TAILQ_REMOVE(&qmgr_unrouted, j, link);
        qmgr_job_done(j, 4, "4.3.0", "mail transport unavailable");
    }
    while (fairq_nwaiting(qmgr_dests) > 0 && qmgr_nflight < limit) {
        struct fairq_item *item;

        if (qmgr_local_connect() < 0)
            return;
        if ((item = fairq_take(qmgr_dests)) == NULL)
            break;              /* every destination with mail is at its limit */
        j = fairq_entry(item, struct qmgr_job, fq);
        if (qmgr_local_send(j) < 0) {
            /* j and the rest are back at the head; start over later. */
            if (qmgr_retry_timer == NULL)
                qmgr_retry_timer = event_add_timer(qmgr_loop, QMGR_LOCAL_RETRY_MS, qmgr_retry,
                                                   NULL);
            return;
        }
    }
}

static void qmgr_local_read(event_loop_t *loop, int fd, int events, void *arg)
{
    struct local_result res;
    struct qmgr_job *j;
    ipc_msg_t *m = NULL;
    int rc;

    (void)loop;
    (void)events;
    (void)arg;
    rc = ipc_recv(fd, &m, IPC_MAX_PAYLOAD, QMGR_LOCAL_IPC_MS);
    if (rc <= 0) {
        qmgr_local_lost(rc == 0 ? "local closed it" : strerror(errno));
        qmgr_transport_kick();
        return;
    }
    if (m->type != LOCAL_RESULT || local_result_decode(m, &res) < 0) {
        msg_warn("malformed %s from local; dropping the connection", ipc_type_name(m->type));
        ipc_msg_free(&m);
        qmgr_local_lost("malformed result");
        qmgr_transport_kick();
        return;
    }
    TAILQ_FOREACH(j, &qmgr_flight, link)
        if (j->reqid == m->reqid)
            break;
    if (j == NULL) {
        msg_warn("local reported on unknown request %u; ignored", m->reqid);
    } else {
        TAILQ_REMOVE(&qmgr_flight, j, link);
        qmgr_nflight--;
        fairq_done(qmgr_dests, &j->fq);

        qmgr_job_done(j, res.dsn_class, res.dsn, res.text);
    }
    local_result_free(&res);
    ipc_msg_free(&m);
    qmgr_transport_kick();
}
