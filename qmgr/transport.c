/*
 * transport.c - delivery jobs: the recipients of a message that go to one
 * destination through one transport, queued per destination in arrival
 * order and handed to the transport as the concurrency limits allow.
 *
 * Routing is route.c's (qmgr_route_of): a recipient routed to local is
 * one job, its destination the recipient itself
 * (addr_local_recipient_key: local part without extension, lower-cased);
 * the recipients of one message routed to smtp with one next hop travel
 * together, up to smtp_destination_recipient_limit per job, the next hop
 * being their destination.  A recipient that needs no delivery (error:,
 * retry:, discard: in transport_maps, an unknown transport, a failed
 * lookup) is settled with route.c's outcome at the next dispatch, with
 * relay=none.
 *
 * Transports.  Every transport is driven through the one delivery
 * protocol (lib/deliver_proto): requests with a read-only descriptor of
 * the queue file, results by request id in any order with one status per
 * recipient and a failure of the destination as a whole apart from them.
 * local takes many requests at once on ONE connection (up to
 * local_concurrency_limit); smtp takes one at a time per connection, and
 * qmgr opens up to default_process_limit connections to it (master starts
 * an smtp process for each).  An smtp connection that has just delivered
 * to a next hop is preferred for the next job to the same next hop: its
 * process may still hold that SMTP session open (the connection cache).
 * Idle smtp connections are closed after QMGR_CONN_IDLE_MS.
 *
 * Destinations.  local: at most local_destination_concurrency_limit x
 * local_delivery_batch_limit jobs per recipient, and local_concurrency_limit
 * x local_delivery_batch_limit in all: local runs at most
 * local_destination_concurrency_limit processes per recipient (a user's
 * slow ~/.forward commands cannot take every slot), each writing up to a
 * batch of that recipient's messages and committing them together.
 * smtp, as Postfix: each destination starts with a window of
 * initial_destination_concurrency jobs at once, which grows by one with
 * every delivery that reached the site and shrinks by one (never below 1)
 * with every one that did not, up to smtp_destination_concurrency_limit.
 * A failure of the site as a whole adds 1/window to its failed cohorts; at
 * default_destination_concurrency_failed_cohort_limit the site is dead:
 * its waiting jobs are deferred with "delivery temporarily suspended:
 * REASON", and so is any new mail for it, until minimal_backoff_time has
 * passed.  A delivery that reaches the site clears the count.  The
 * destinations that may send are served in turn (lib/fairq).
 *
 * A transport going away.  When a connection breaks (the transport was
 * restarted or killed), its jobs in flight go back to the head of their
 * queues and are sent again: local drops a repeated delivery of the same
 * message to the same recipient.  A job sent QMGR_MAX_RESENDS times
 * without a result is deferred ("delivery service died").  While a
 * transport cannot be reached its queue waits, retrying every
 * QMGR_TRANSPORT_RETRY_MS; after QMGR_TRANSPORT_DOWN_MS without a
 * connection its waiting jobs are deferred.
 *
 * Failure modes: a malformed result is a peer error (connection dropped,
 * its jobs resent).  Parameters: local_concurrency_limit,
 * local_destination_concurrency_limit, default_process_limit,
 * initial_destination_concurrency,
 * smtp_destination_concurrency_limit, smtp_destination_recipient_limit,
 * default_destination_concurrency_failed_cohort_limit,
 * minimal_backoff_time.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "deliver_proto.h"
#include "fairq.h"
#include "ipc.h"
#include "msg.h"
#include "qmgr.h"
#include "xalloc.h"

#define QMGR_TRANSPORT_IPC_MS    10000
#define QMGR_TRANSPORT_RETRY_MS  500
#define QMGR_TRANSPORT_DOWN_MS   10000
#define QMGR_CONN_IDLE_MS        10000
#define QMGR_MAX_RESENDS         3

struct qmgr_transport;

/* Scheduling state of one destination of a windowed transport (smtp). */
struct qmgr_dest {
    char               *key;
    int                 window;         /* jobs at once, now */
    double              fail_cohorts;
    long long           suspended_until;    /* ms; 0: not suspended */
    char               *suspended_dsn;
    char               *suspended_why;
    RB_ENTRY(qmgr_dest) tree;
};
RB_HEAD(qmgr_dest_tree, qmgr_dest);

static int qmgr_dest_cmp(struct qmgr_dest *a, struct qmgr_dest *b)
{
    return strcmp(a->key, b->key);
}
RB_PROTOTYPE(qmgr_dest_tree, qmgr_dest, tree, qmgr_dest_cmp)
RB_GENERATE(qmgr_dest_tree, qmgr_dest, tree, qmgr_dest_cmp)

struct qmgr_job {
    struct qmgr_transport *tr;
    struct qmgr_msg       *msg;
    char                  *key;         /* its destination */
    char                  *nexthop;
    size_t                 nrcpt;
    size_t                *rcpts;       /* indexes in the queue file */
    struct fairq_item      fq;          /* waiting or in flight, by destination */
    uint32_t               reqid;       /* 0 while queued */
    int                    sends;
    char                  *dsn, *why;   /* settle: the outcome for every recipient */
    TAILQ_ENTRY(qmgr_job)  link;        /* conn->flight or qmgr_settle */
};
TAILQ_HEAD(qmgr_job_list, qmgr_job);

/* A connection to a transport. */
struct qmgr_conn {
    struct qmgr_transport  *tr;
    int                     fd;
    struct qmgr_job_list    flight;
    size_t                  nflight;
    char                   *last_nexthop;   /* smtp: where its session may be open */
    event_timer_t          *idle_timer;
    TAILQ_ENTRY(qmgr_conn)  link;
};
TAILQ_HEAD(qmgr_conn_list, qmgr_conn);

struct qmgr_transport {
    const char            *name;            /* "local", "smtp": also relay= in the log */
    const char            *socket;          /* private/NAME */
    const char            *concurrency;     /* parameter: requests in flight, all told */
    const char            *dest_concurrency;    /* parameter: per destination */
    const char            *recipient_limit;     /* parameter, or NULL: 1 */
    const char            *batch_limit;     /* parameter, or NULL: 1; jobs one
                                               delivery process may take together */
    int                    one_per_conn;    /* one request at a time per connection */
    int                    windowed;        /* Postfix's concurrency feedback */
    fairq_t               *dests;           /* waiting and in-flight jobs */
    struct qmgr_dest_tree  dest_state;      /* windowed: per destination */
    struct qmgr_conn_list  conns;
    size_t                 nflight;
    long long              down_since;      /* 0: not down */
    event_timer_t         *retry_timer;
};

static struct qmgr_transport qmgr_transports[] = {
    {.name = "local", .socket = "private/local", .concurrency = "local_concurrency_limit",
     .dest_concurrency = "local_destination_concurrency_limit",
     .batch_limit = "local_delivery_batch_limit"},
    {.name = "smtp", .socket = "private/smtp", .concurrency = "default_process_limit",
     .dest_concurrency = "smtp_destination_concurrency_limit",
     .recipient_limit = "smtp_destination_recipient_limit", .one_per_conn = 1, .windowed = 1},
};
#define QMGR_NTRANSPORTS (sizeof(qmgr_transports) / sizeof(qmgr_transports[0]))
#define QMGR_LOCAL (&qmgr_transports[0])
#define QMGR_SMTP  (&qmgr_transports[1])

/* Jobs settled without a delivery (no transport, a suspended site): their
 * outcome is reported by the next dispatch, never inside the caller. */
static struct qmgr_job_list qmgr_settle = TAILQ_HEAD_INITIALIZER(qmgr_settle);
static uint32_t qmgr_next_reqid;

/* A concurrency parameter's value in requests: a transport that batches
 * gets room for every process to take a full batch. */
static size_t qmgr_requests(const struct qmgr_transport *tr, const char *param)
{
    return (size_t)(conf_int(param) * (tr->batch_limit ? conf_int(tr->batch_limit) : 1));
}

void qmgr_transport_init(void)
{
    deliver_proto_init();
    for (size_t i = 0; i < QMGR_NTRANSPORTS; i++) {
        struct qmgr_transport *tr = &qmgr_transports[i];

        tr->dests = fairq_new((int)qmgr_requests(tr, tr->dest_concurrency));
        RB_INIT(&tr->dest_state);
        TAILQ_INIT(&tr->conns);
    }
}

/* ------------------------------------------------------------- routing */

/* The transport, destination key and next hop (fresh strings) of a
 * recipient that route.c sends to a transport. */
static struct qmgr_transport *qmgr_route(const struct qmgr_route *r, const char *address,
                                         char **key, char **nexthop)
{
    if (r->kind == QMGR_ROUTE_LOCAL) {
        *key = addr_local_recipient_key(address);
        *nexthop = xstrdup("");
        return QMGR_LOCAL;
    }
    *nexthop = xstrdup(r->nexthop);
    *key = xstrdup(r->nexthop);
    return QMGR_SMTP;
}

const char *qmgr_transport_name(const char *address)
{
    return addr_is_local(address) ? QMGR_LOCAL->name : QMGR_SMTP->name;
}

/* ---------------------------------------------------- destination state */

static struct qmgr_dest *qmgr_dest_get(struct qmgr_transport *tr, const char *key)
{
    struct qmgr_dest find = {.key = (char *)key}, *d;

    if ((d = RB_FIND(qmgr_dest_tree, &tr->dest_state, &find)) != NULL)
        return d;
    d = xcalloc(1, sizeof(*d));
    d->key = xstrdup(key);
    d->window = (int)conf_int("initial_destination_concurrency");
    RB_INSERT(qmgr_dest_tree, &tr->dest_state, d);
    return d;
}

/* Is the destination suspended now?  Lifts a suspension that is over. */
static int qmgr_dest_suspended(struct qmgr_dest *d)
{
    if (d->suspended_until == 0)
        return 0;
    if (event_now_ms() < d->suspended_until)
        return 1;
    msg_info("%s: delivery resumed", d->key);
    d->suspended_until = 0;
    d->fail_cohorts = 0;
    free(d->suspended_dsn);
    free(d->suspended_why);
    d->suspended_dsn = d->suspended_why = NULL;
    return 0;
}

void qmgr_transport_resume(const char *domain)
{
    struct qmgr_dest *d;

    for (size_t i = 0; i < QMGR_NTRANSPORTS; i++)
        RB_FOREACH(d, qmgr_dest_tree, &qmgr_transports[i].dest_state)
            if (d->suspended_until && (domain == NULL || strcasecmp(d->key, domain) == 0)) {
                d->suspended_until = event_now_ms();    /* over: lifted at the next look */
                qmgr_dest_suspended(d);
            }
}

/* ----------------------------------------------------------------- jobs */

static void qmgr_job_free(struct qmgr_job *j)
{
    free(j->key);
    free(j->nexthop);
    free(j->rcpts);
    free(j->dsn);
    free(j->why);
    free(j);
}

/* Settle j at the next dispatch with dsn/why for every recipient. */
static void qmgr_job_settle_later(struct qmgr_job *j, const char *dsn, const char *why)
{
    j->dsn = xstrdup(dsn);
    j->why = xstrdup(why);
    TAILQ_INSERT_TAIL(&qmgr_settle, j, link);
    qmgr_transport_kick();
}

/* A job for recipient i of m alone, settled at the next dispatch without
 * a delivery. */
static void qmgr_job_settle_rcpt(struct qmgr_msg *m, size_t i, const char *dsn, const char *why)
{
    struct qmgr_job *j = xcalloc(1, sizeof(*j));

    j->msg = m;
    j->rcpts = xcalloc(1, sizeof(*j->rcpts));
    j->rcpts[j->nrcpt++] = i;
    m->jobs++;
    qmgr_job_settle_later(j, dsn, why);
}

/* Queue a new job, or settle it at once for a suspended destination. */
static void qmgr_job_queue(struct qmgr_job *j)
{
    if (j->tr->windowed) {
        struct qmgr_dest *d = qmgr_dest_get(j->tr, j->key);

        if (qmgr_dest_suspended(d)) {
            char *why = xasprintf("delivery temporarily suspended: %s", d->suspended_why);

            qmgr_job_settle_later(j, d->suspended_dsn, why);
            free(why);
            return;
        }
        fairq_add(j->tr->dests, j->key, &j->fq);
        fairq_set_limit(j->tr->dests, j->key, d->window);
        return;
    }
    fairq_add(j->tr->dests, j->key, &j->fq);
}

void qmgr_jobs_add(struct qmgr_msg *m)
{
    struct qmgr_job **open = NULL;      /* this message's jobs with room */
    size_t nopen = 0;

    for (size_t i = 0; i < m->q->nrcpt; i++) {
        struct qmgr_transport *tr;
        struct qmgr_job *j = NULL;
        struct qmgr_route route;
        char *key, *nexthop;
        size_t limit;

        if (m->rs[i].outcome != QMGR_OUT_WAITING)
            continue;
        qmgr_route_of(m, i, &route);
        if (route.kind == QMGR_ROUTE_SETTLE) {
            qmgr_job_settle_rcpt(m, i, route.dsn, route.text);
            qmgr_route_clear(&route);
            continue;
        }
        tr = qmgr_route(&route, m->q->rcpts[i].address, &key, &nexthop);
        qmgr_route_clear(&route);
        limit = tr->recipient_limit ? (size_t)conf_int(tr->recipient_limit) : 1;
        for (size_t k = 0; k < nopen && j == NULL; k++)
            if (open[k]->tr == tr && open[k]->nrcpt < limit && strcmp(open[k]->key, key) == 0)
                j = open[k];
        if (j == NULL) {
            j = xcalloc(1, sizeof(*j));
            j->tr = tr;
            j->msg = m;
            j->key = key;
            j->nexthop = nexthop;
            j->rcpts = xcalloc(limit, sizeof(*j->rcpts));
            open = xreallocarray(open, nopen + 1, sizeof(*open));
            open[nopen++] = j;
        } else {
            free(key);
            free(nexthop);
        }
        j->rcpts[j->nrcpt++] = i;
        m->jobs++;
    }
    for (size_t k = 0; k < nopen; k++)
        qmgr_job_queue(open[k]);
    free(open);
    qmgr_transport_kick();
}

/* Report one outcome for every recipient of j (which is on no list) and
 * free it.  This may finish and free its message. */
static void qmgr_job_done(struct qmgr_job *j, int dsn_class, const char *dsn, const char *text,
                          const char *relay)
{
    struct qmgr_msg *m = j->msg;
    size_t n = j->nrcpt, *rcpts = j->rcpts;

    j->rcpts = NULL;
    qmgr_job_free(j);
    /* The last outcome may free m: nothing of m after it. */
    for (size_t i = 0; i < n; i++)
        qmgr_msg_outcome(m, rcpts[i], dsn_class, dsn, text, relay, NULL, NULL, DELIVER_FINAL);
    free(rcpts);
}

static void qmgr_job_cancel(struct qmgr_job *j)
{
    for (size_t i = 0; i < j->nrcpt; i++)
        j->msg->rs[j->rcpts[i]].outcome = QMGR_OUT_NONE;
    j->msg->jobs -= (int)j->nrcpt;
    qmgr_job_free(j);
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

    TAILQ_FOREACH_SAFE(j, &qmgr_settle, link, next) {
        if (j->msg == m) {
            TAILQ_REMOVE(&qmgr_settle, j, link);
            qmgr_job_cancel(j);
            n++;
        }
    }
    for (size_t i = 0; i < QMGR_NTRANSPORTS; i++)
        n += fairq_drop(qmgr_transports[i].dests, qmgr_job_of, qmgr_job_dropped, m);
    return n;
}

/* ---------------------------------------------------------- connections */

static void qmgr_conn_read(event_loop_t *loop, int fd, int events, void *arg);

static void qmgr_conn_close(struct qmgr_conn *c)
{
    struct qmgr_transport *tr = c->tr;

    event_cancel_timer(qmgr_loop, &c->idle_timer);
    event_del_fd(qmgr_loop, c->fd);
    close(c->fd);
    TAILQ_REMOVE(&tr->conns, c, link);
    free(c->last_nexthop);
    free(c);
}

/* The connection broke: its jobs in flight go back to the head of their
 * queues (or are deferred after QMGR_MAX_RESENDS sends). */
static void qmgr_conn_lost(struct qmgr_conn *c, const char *why)
{
    struct qmgr_transport *tr = c->tr;
    struct qmgr_job *j;

    if (c->nflight)
        msg_warn("connection to %s lost (%s); %zu deliveries in progress will be retried",
                 tr->name, why, c->nflight);
    while ((j = TAILQ_LAST(&c->flight, qmgr_job_list)) != NULL) {
        TAILQ_REMOVE(&c->flight, j, link);
        c->nflight--;
        tr->nflight--;
        j->reqid = 0;
        if (j->sends >= QMGR_MAX_RESENDS) {
            char *text = xasprintf("%s delivery service died during the delivery", tr->name);

            fairq_done(tr->dests, &j->fq);
            qmgr_job_done(j, 4, "4.3.0", text, tr->name);
            free(text);
            continue;
        }
        fairq_requeue(tr->dests, &j->fq);
    }
    qmgr_conn_close(c);
}

static void qmgr_conn_idle_expired(event_loop_t *loop, void *arg)
{
    struct qmgr_conn *c = arg;

    (void)loop;
    c->idle_timer = NULL;
    if (c->nflight == 0)
        qmgr_conn_close(c);
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

/* A new connection to the transport, or NULL (retry scheduled, or after
 * QMGR_TRANSPORT_DOWN_MS the waiting jobs deferred). */
static struct qmgr_conn *qmgr_conn_open(struct qmgr_transport *tr)
{
    const char *why = NULL;
    struct qmgr_conn *c;
    int fd;

    fd = ipc_client_open(tr->socket, DELIVER_PROTO_NAME, DELIVER_PROTO_VERSION,
                         QMGR_TRANSPORT_IPC_MS, &why);
    if (fd >= 0) {
        if (tr->down_since)
            msg_info("connected to %s again", tr->name);
        tr->down_since = 0;
        c = xcalloc(1, sizeof(*c));
        c->tr = tr;
        c->fd = fd;
        TAILQ_INIT(&c->flight);
        TAILQ_INSERT_TAIL(&tr->conns, c, link);
        event_add_fd(qmgr_loop, fd, EVENT_READ, qmgr_conn_read, c);
        if (tr->one_per_conn)       /* closed if it is not used after all */
            c->idle_timer = event_add_timer(qmgr_loop, QMGR_CONN_IDLE_MS, qmgr_conn_idle_expired,
                                            c);
        return c;
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
            qmgr_job_done(fairq_entry(item, struct qmgr_job, fq), 4, "4.3.0", text, tr->name);
        }
        free(text);
        tr->down_since = event_now_ms();
    }
    if (fairq_nwaiting(tr->dests) > 0)
        qmgr_retry_later(tr);
    return NULL;
}

/* Is there a connection that can take a request now? */
static int qmgr_conn_ready(struct qmgr_transport *tr)
{
    struct qmgr_conn *c;

    TAILQ_FOREACH(c, &tr->conns, link)
        if (!tr->one_per_conn || c->nflight == 0)
            return 1;
    return 0;
}

/* The connection to send j on (qmgr_conn_ready said there is one):
 * local's one; for smtp an idle one that last went to j's next hop, else
 * any idle one. */
static struct qmgr_conn *qmgr_conn_for(struct qmgr_job *j)
{
    struct qmgr_transport *tr = j->tr;
    struct qmgr_conn *c, *idle = NULL;

    TAILQ_FOREACH(c, &tr->conns, link) {
        if (!tr->one_per_conn)
            return c;
        if (c->nflight > 0)
            continue;
        if (c->last_nexthop && strcmp(c->last_nexthop, j->nexthop) == 0)
            return c;
        if (idle == NULL)
            idle = c;
    }
    if (idle == NULL)
        msg_panic("qmgr_conn_for: no connection of %s can take a request", tr->name);
    return idle;
}

/* Send j on c; 0, or -1 if the connection broke (j back in its queue). */
static int qmgr_conn_send(struct qmgr_conn *c, struct qmgr_job *j)
{
    struct qmgr_transport *tr = c->tr;
    struct deliver_rcpt *rcpts = xcalloc(j->nrcpt, sizeof(*rcpts));
    struct deliver_request req = {
        .queue_id = j->msg->id, .sender = j->msg->q->sender, .nexthop = j->nexthop,
        .nrcpt = j->nrcpt, .rcpts = rcpts, .queue_fd = j->msg->fd,
    };
    ipc_msg_t *m;
    int rc;

    for (size_t i = 0; i < j->nrcpt; i++) {
        const queue_rcpt_t *r = &j->msg->q->rcpts[j->rcpts[i]];

        rcpts[i].index = (int)j->rcpts[i];
        rcpts[i].address = r->address;
        rcpts[i].orig_recipient = r->orig;
    }
    if (++qmgr_next_reqid == 0)
        qmgr_next_reqid = 1;
    j->reqid = qmgr_next_reqid;
    j->sends++;
    TAILQ_INSERT_TAIL(&c->flight, j, link);
    c->nflight++;
    tr->nflight++;
    event_cancel_timer(qmgr_loop, &c->idle_timer);
    free(c->last_nexthop);
    c->last_nexthop = xstrdup(j->nexthop);
    m = deliver_request_encode(j->reqid, &req);
    rc = ipc_send(c->fd, m, QMGR_TRANSPORT_IPC_MS);
    m->fd = -1;                 /* lent, not given */
    ipc_msg_free(&m);
    free(rcpts);
    if (rc < 0) {
        qmgr_conn_lost(c, strerror(errno));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------- dispatch */

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
    size_t limit = qmgr_requests(tr, tr->concurrency);

    while (fairq_nwaiting(tr->dests) > 0 && tr->nflight < limit) {
        struct fairq_item *item;
        struct qmgr_conn *c;
        struct qmgr_job *j;

        /* A connection first: while the transport cannot be reached,
         * every job stays waiting, so all of them are deferred together
         * once it has been down long enough. */
        if (!qmgr_conn_ready(tr) && qmgr_conn_open(tr) == NULL)
            return;
        if ((item = fairq_take(tr->dests)) == NULL)
            return;             /* every destination with mail is at its limit */
        j = fairq_entry(item, struct qmgr_job, fq);
        c = qmgr_conn_for(j);
        if (qmgr_conn_send(c, j) < 0) {
            /* That job and the rest are back at the head; start over later. */
            qmgr_retry_later(tr);
            return;
        }
    }
}

static void qmgr_dispatch(event_loop_t *loop, void *arg)
{
    struct qmgr_job *j;

    (void)loop;
    (void)arg;
    qmgr_dispatch_timer = NULL;
    /* qmgr_job_done() may finish a message and bring new ones in, which
     * only appends: take from the head until the list is empty. */
    while ((j = TAILQ_FIRST(&qmgr_settle)) != NULL) {
        char *dsn = j->dsn, *why = j->why;

        TAILQ_REMOVE(&qmgr_settle, j, link);
        j->dsn = j->why = NULL;
        qmgr_job_done(j, dsn[0] - '0', dsn, why, j->tr ? j->tr->name : "none");
        free(dsn);
        free(why);
    }
    for (size_t i = 0; i < QMGR_NTRANSPORTS; i++)
        qmgr_dispatch_transport(&qmgr_transports[i]);
}

/* ------------------------------------------------------------- results */

static int qmgr_job_for_dest(struct fairq_item *item, void *d)
{
    return strcmp(fairq_entry(item, struct qmgr_job, fq)->key, ((struct qmgr_dest *)d)->key)
           == 0;
}

static void qmgr_job_suspended(struct fairq_item *item, void *arg)
{
    struct qmgr_dest *d = arg;
    char *why = xasprintf("delivery temporarily suspended: %s", d->suspended_why);

    qmgr_job_settle_later(fairq_entry(item, struct qmgr_job, fq), d->suspended_dsn, why);
    free(why);
}

/* Postfix's concurrency feedback for the destination of j. */
static void qmgr_dest_feedback(struct qmgr_job *j, const struct deliver_result *res)
{
    struct qmgr_transport *tr = j->tr;
    struct qmgr_dest *d = qmgr_dest_get(tr, j->key);
    int limit = (int)conf_int(tr->dest_concurrency);

    if (res->site_class == 0) {
        d->fail_cohorts = 0;
        if (d->window < limit)
            d->window++;
    } else {
        if (d->window > 1)
            d->window--;
        d->fail_cohorts += 1.0 / (d->window > 0 ? d->window : 1);
        if (d->fail_cohorts >= (double)conf_int("default_destination_concurrency_failed_cohort_limit")
            && d->suspended_until == 0) {
            d->suspended_until = event_now_ms() + conf_time("minimal_backoff_time") * 1000LL;
            free(d->suspended_dsn);
            free(d->suspended_why);
            d->suspended_dsn = xstrdup(res->status[0].dsn_class == 4 ? res->status[0].dsn
                                                                     : "4.4.1");
            d->suspended_why = xstrdup(*res->site_text ? res->site_text : res->status[0].text);
            msg_warn("%s: delivery temporarily suspended: %s", d->key, d->suspended_why);
            /* Its waiting jobs: settled as suspended at the next dispatch. */
            fairq_drop(tr->dests, qmgr_job_for_dest, qmgr_job_suspended, d);
        }
    }
    fairq_set_limit(tr->dests, d->key, d->window);
}

/* Forget a destination that has nothing queued and nothing to remember
 * (Postfix drops an empty queue the same way, unless it is throttled). */
static void qmgr_dest_forget(struct qmgr_transport *tr, const char *key)
{
    struct qmgr_dest find = {.key = (char *)key}, *d;

    if ((d = RB_FIND(qmgr_dest_tree, &tr->dest_state, &find)) == NULL
        || fairq_has_key(tr->dests, key) || d->suspended_until != 0 || d->fail_cohorts > 0)
        return;
    RB_REMOVE(qmgr_dest_tree, &tr->dest_state, d);
    free(d->key);
    free(d);
}

static void qmgr_conn_read(event_loop_t *loop, int fd, int events, void *arg)
{
    struct qmgr_conn *c = arg;
    struct qmgr_transport *tr = c->tr;
    struct deliver_result res;
    struct qmgr_job *j;
    ipc_msg_t *m = NULL;
    int rc;

    (void)loop;
    (void)events;
    rc = ipc_recv(fd, &m, IPC_MAX_PAYLOAD, QMGR_TRANSPORT_IPC_MS);
    if (rc <= 0) {
        qmgr_conn_lost(c, rc == 0 ? "it closed the connection" : strerror(errno));
        qmgr_transport_kick();
        return;
    }
    if (m->type != DELIVER_RESULT || deliver_result_decode(m, &res) < 0) {
        msg_warn("malformed %s from %s; dropping the connection", ipc_type_name(m->type),
                 tr->name);
        ipc_msg_free(&m);
        qmgr_conn_lost(c, "malformed result");
        qmgr_transport_kick();
        return;
    }
    TAILQ_FOREACH(j, &c->flight, link)
        if (j->reqid == m->reqid)
            break;
    if (j == NULL || res.n != j->nrcpt) {
        if (j == NULL)
            msg_warn("%s reported on unknown request %u; dropping the connection", tr->name,
                     m->reqid);
        else
            msg_warn("%s answered request %u with %zu statuses for %zu recipients; dropping "
                     "the connection", tr->name, m->reqid, res.n, j->nrcpt);
        deliver_result_free(&res);
        ipc_msg_free(&m);
        qmgr_conn_lost(c, "malformed result");
        qmgr_transport_kick();
        return;
    }
    TAILQ_REMOVE(&c->flight, j, link);
    c->nflight--;
    tr->nflight--;
    if (tr->windowed)
        qmgr_dest_feedback(j, &res);
    fairq_done(tr->dests, &j->fq);
    if (tr->windowed)
        qmgr_dest_forget(tr, j->key);
    {
        struct qmgr_msg *msg = j->msg;
        size_t n = j->nrcpt, *rcpts = j->rcpts;

        j->rcpts = NULL;
        qmgr_job_free(j);
        for (size_t i = 0; i < n; i++)
            qmgr_msg_outcome(msg, rcpts[i], res.status[i].dsn_class, res.status[i].dsn,
                             res.status[i].text, res.relay, res.status[i].diag_type,
                             res.status[i].diag_text, res.status[i].relayed);
        free(rcpts);
    }
    if (tr->one_per_conn && c->nflight == 0)
        c->idle_timer = event_add_timer(qmgr_loop, QMGR_CONN_IDLE_MS, qmgr_conn_idle_expired, c);
    deliver_result_free(&res);
    ipc_msg_free(&m);
    qmgr_transport_kick();
}
