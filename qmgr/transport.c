/*
 * transport.c - delivery jobs: one per (message, recipient) of a round,
 * queued per destination in arrival order and handed to the recipient's
 * transport as the concurrency limits allow.
 *
 * Transports.  Every transport is driven the same way, through the one
 * delivery protocol (lib/deliver_proto): ONE connection to the
 * transport's socket carries up to its concurrency limit of
 * DELIVER_REQUEST messages at once (each with a read-only descriptor of
 * the queue file); results come back by request id in any order, one
 * status per recipient, and a failure of the destination as a whole apart
 * from them.  The table qmgr_transports says which exist: local (for
 * mydestination) today.  A recipient no transport takes (another domain,
 * until the smtp transport exists) is deferred with 4.3.0 "mail transport
 * unavailable", as Postfix does for a transport that is not there, so it is
 * delivered once the transport exists and the mail is retried.
 * qmgr_transport_of() is the one place that chooses.
 *
 * Destinations.  As in Postfix, local mail goes one recipient at a time,
 * and at most local_destination_concurrency_limit deliveries to the same
 * recipient (its local part without the address extension, lower-cased)
 * run at once: mail for a user whose ~/.forward runs slow commands cannot
 * take every one of local's slots.  Each destination keeps its waiting
 * jobs in arrival order, and the destinations that may send are served in
 * turn (lib/fairq), so a dispatch never walks jobs it cannot send.
 *
 * A transport going away.  When its connection breaks (the transport was
 * restarted or killed), its jobs in flight go back to the head of their
 * queues and are sent again on a new connection: local drops a repeated
 * delivery of the same message to the same recipient, so a delivery that
 * had happened is not made twice.  A job sent QMGR_MAX_RESENDS times
 * without a result is deferred ("delivery service died").  While a
 * transport cannot be reached its queue waits, retrying every
 * QMGR_TRANSPORT_RETRY_MS; after QMGR_TRANSPORT_DOWN_MS without a
 * connection its waiting jobs are deferred.
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
#include "deliver_proto.h"
#include "msg.h"
#include "qmgr.h"
#include "xalloc.h"

#define QMGR_TRANSPORT_IPC_MS    10000
#define QMGR_TRANSPORT_RETRY_MS  500
#define QMGR_TRANSPORT_DOWN_MS   10000
#define QMGR_MAX_RESENDS         3

struct qmgr_transport;

struct qmgr_job {
    struct qmgr_transport *tr;
    struct qmgr_msg       *msg;
    size_t                 rcpt;
    struct fairq_item      fq;          /* waiting or in flight, by destination */
    uint32_t               reqid;       /* 0 while queued */
    int                    sends;
    TAILQ_ENTRY(qmgr_job)  link;        /* tr->flight or qmgr_unrouted */
};
TAILQ_HEAD(qmgr_job_list, qmgr_job);

/* One delivery transport and its connection. */
struct qmgr_transport {
    const char           *name;             /* "local": also in the log (relay=) */
    const char           *socket;           /* private/NAME */
    const char           *concurrency;      /* its *_concurrency_limit parameter */
    const char           *dest_concurrency; /* its *_destination_concurrency_limit */
    fairq_t              *dests;            /* waiting and in-flight jobs */
    struct qmgr_job_list  flight;
    size_t                nflight;
    int                   fd;
    long long             down_since;       /* 0: not down */
    event_timer_t        *retry_timer;
};

static struct qmgr_transport qmgr_transports[] = {
    {.name = "local", .socket = "private/local", .concurrency = "local_concurrency_limit",
     .dest_concurrency = "local_destination_concurrency_limit"},
};
#define QMGR_NTRANSPORTS (sizeof(qmgr_transports) / sizeof(qmgr_transports[0]))

/* Jobs for which no transport exists: settled by the next dispatch. */
static struct qmgr_job_list qmgr_unrouted = TAILQ_HEAD_INITIALIZER(qmgr_unrouted);
static uint32_t qmgr_next_reqid;

void qmgr_transport_init(void)
{
    deliver_proto_init();
    for (size_t i = 0; i < QMGR_NTRANSPORTS; i++) {
        struct qmgr_transport *tr = &qmgr_transports[i];

        tr->dests = fairq_new((int)conf_int(tr->dest_concurrency));
        TAILQ_INIT(&tr->flight);
        tr->fd = -1;
    }
}

/* The transport for an address, or NULL when none takes it. */
static struct qmgr_transport *qmgr_transport_of(const char *address)
{
    return addr_is_local(address) ? &qmgr_transports[0] : NULL;
}

const char *qmgr_transport_name(const char *address)
{
    struct qmgr_transport *tr = qmgr_transport_of(address);

    return tr ? tr->name : "none";
}

/* A local recipient's jobs queue under addr_local_recipient_key: one user
 * gets local_destination_concurrency_limit slots, whatever domain of ours
 * or address extension the mail names. */
void qmgr_job_add(struct qmgr_msg *m, size_t rcpt)
{
    struct qmgr_job *j = xcalloc(1, sizeof(*j));

    j->msg = m;
    j->rcpt = rcpt;
    j->tr = qmgr_transport_of(m->q->rcpts[rcpt].address);
    m->jobs++;
    if (j->tr != NULL) {
        char *dest = addr_local_recipient_key(m->q->rcpts[rcpt].address);

        fairq_add(j->tr->dests, dest, &j->fq);
        free(dest);
    } else {
        TAILQ_INSERT_TAIL(&qmgr_unrouted, j, link);
    }
    qmgr_transport_kick();
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
    for (size_t i = 0; i < QMGR_NTRANSPORTS; i++)
        n += fairq_drop(qmgr_transports[i].dests, qmgr_job_of, qmgr_job_dropped, m);
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

static void qmgr_transport_read(event_loop_t *loop, int fd, int events, void *arg);

/* The connection broke: jobs in flight go back to the head of the queue. */
static void qmgr_transport_lost(struct qmgr_transport *tr, const char *why)
{
    struct qmgr_job *j;

    if (tr->fd >= 0) {
        event_del_fd(qmgr_loop, tr->fd);
        close(tr->fd);
        tr->fd = -1;
    }
    if (tr->nflight)
        msg_warn("connection to %s lost (%s); %zu deliveries in progress will be retried",
                 tr->name, why, tr->nflight);
    while ((j = TAILQ_LAST(&tr->flight, qmgr_job_list)) != NULL) {
        TAILQ_REMOVE(&tr->flight, j, link);
        tr->nflight--;
        j->reqid = 0;
        if (j->sends >= QMGR_MAX_RESENDS) {
            char *text = xasprintf("%s delivery service died during the delivery", tr->name);

            fairq_done(tr->dests, &j->fq);
            qmgr_job_done(j, 4, "4.3.0", text);
            free(text);
            continue;
        }
        fairq_requeue(tr->dests, &j->fq);
    }
}

static void qmgr_retry(event_loop_t *loop, void *arg)
{
    struct qmgr_transport *tr = arg;

    (void)loop;
    tr->retry_timer = NULL;
    qmgr_transport_kick();
}

static void qmgr_retry_later(struct qmgr_transport *tr)
{
    if (tr->retry_timer == NULL)
        tr->retry_timer = event_add_timer(qmgr_loop, QMGR_TRANSPORT_RETRY_MS, qmgr_retry, tr);
}

/* Connect to the transport if needed; 0 or -1 (retry scheduled or jobs
 * deferred). */
static int qmgr_transport_connect(struct qmgr_transport *tr)
{
    const char *why = NULL;

    if (tr->fd >= 0)
        return 0;
    tr->fd = ipc_client_open(tr->socket, DELIVER_PROTO_NAME, DELIVER_PROTO_VERSION,
                             QMGR_TRANSPORT_IPC_MS, &why);
    if (tr->fd >= 0) {
        if (tr->down_since)
            msg_info("connected to %s again", tr->name);
        tr->down_since = 0;
        event_add_fd(qmgr_loop, tr->fd, EVENT_READ, qmgr_transport_read, tr);
        return 0;
    }
    if (tr->down_since == 0) {
        tr->down_since = event_now_ms();
        msg_warn("cannot connect to %s: %s; retrying", tr->name, why ? why : strerror(errno));
    }
    if (event_now_ms() - tr->down_since >= QMGR_TRANSPORT_DOWN_MS) {
        /* Give up on this round: defer what waits for the transport. */
        char *text = xasprintf("%s delivery service unavailable", tr->name);
        struct fairq_item *item;

        while ((item = fairq_any_waiting(tr->dests)) != NULL) {
            fairq_remove(tr->dests, item);
            qmgr_job_done(fairq_entry(item, struct qmgr_job, fq), 4, "4.3.0", text);
        }
        free(text);
        tr->down_since = event_now_ms();
    }
    if (fairq_nwaiting(tr->dests) > 0)
        qmgr_retry_later(tr);
    return -1;
}

/* Send j; 0, or -1 if the connection broke (j back in the queue). */
static int qmgr_transport_send(struct qmgr_job *j)
{
    struct qmgr_transport *tr = j->tr;
    const queue_rcpt_t *r = &j->msg->q->rcpts[j->rcpt];
    struct deliver_rcpt rcpt = {
        .index = (int)j->rcpt, .address = r->address, .orig_recipient = r->orig,
    };
    struct deliver_request req = {
        .queue_id = j->msg->id, .sender = j->msg->q->sender, .nexthop = "",
        .nrcpt = 1, .rcpts = &rcpt, .queue_fd = j->msg->fd,
    };
    ipc_msg_t *m;
    int rc;

    if (++qmgr_next_reqid == 0)
        qmgr_next_reqid = 1;
    j->reqid = qmgr_next_reqid;
    j->sends++;
    TAILQ_INSERT_TAIL(&tr->flight, j, link);
    tr->nflight++;
    m = deliver_request_encode(j->reqid, &req);
    rc = ipc_send(tr->fd, m, QMGR_TRANSPORT_IPC_MS);
    m->fd = -1;                 /* lent, not given */
    ipc_msg_free(&m);
    if (rc < 0) {
        qmgr_transport_lost(tr, strerror(errno));
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

static void qmgr_dispatch_transport(struct qmgr_transport *tr)
{
    size_t limit = (size_t)conf_int(tr->concurrency);

    while (fairq_nwaiting(tr->dests) > 0 && tr->nflight < limit) {
        struct fairq_item *item;

        if (qmgr_transport_connect(tr) < 0)
            return;
        if ((item = fairq_take(tr->dests)) == NULL)
            return;             /* every destination with mail is at its limit */
        if (qmgr_transport_send(fairq_entry(item, struct qmgr_job, fq)) < 0) {
            /* That job and the rest are back at the head; start over later. */
            qmgr_retry_later(tr);
            return;
        }
    }
}

static void qmgr_dispatch(event_loop_t *loop, void *arg)
{
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
    for (size_t i = 0; i < QMGR_NTRANSPORTS; i++)
        qmgr_dispatch_transport(&qmgr_transports[i]);
}

static void qmgr_transport_read(event_loop_t *loop, int fd, int events, void *arg)
{
    struct qmgr_transport *tr = arg;
    struct deliver_result res;
    struct qmgr_job *j;
    ipc_msg_t *m = NULL;
    int rc;

    (void)loop;
    (void)events;
    rc = ipc_recv(fd, &m, IPC_MAX_PAYLOAD, QMGR_TRANSPORT_IPC_MS);
    if (rc <= 0) {
        qmgr_transport_lost(tr, rc == 0 ? "it closed the connection" : strerror(errno));
        qmgr_transport_kick();
        return;
    }
    if (m->type != DELIVER_RESULT || deliver_result_decode(m, &res) < 0) {
        msg_warn("malformed %s from %s; dropping the connection", ipc_type_name(m->type),
                 tr->name);
        ipc_msg_free(&m);
        qmgr_transport_lost(tr, "malformed result");
        qmgr_transport_kick();
        return;
    }
    TAILQ_FOREACH(j, &tr->flight, link)
        if (j->reqid == m->reqid)
            break;
    if (j == NULL) {
        msg_warn("%s reported on unknown request %u; ignored", tr->name, m->reqid);
    } else if (res.n != 1) {
        msg_warn("%s answered request %u with %zu statuses for 1 recipient; dropping the "
                 "connection", tr->name, m->reqid, res.n);
        deliver_result_free(&res);
        ipc_msg_free(&m);
        qmgr_transport_lost(tr, "malformed result");
        qmgr_transport_kick();
        return;
    } else {
        TAILQ_REMOVE(&tr->flight, j, link);
        tr->nflight--;
        fairq_done(tr->dests, &j->fq);
        qmgr_job_done(j, res.status[0].dsn_class, res.status[0].dsn, res.status[0].text);
    }
    deliver_result_free(&res);
    ipc_msg_free(&m);
    qmgr_transport_kick();
}
