/*
 * route.c - where each recipient goes: the transport and next hop qmgr
 * hands it to, or an outcome reached without any delivery.
 *
 * The built-in rule.  A recipient in mydestination goes to local; any
 * other to smtp, whose next hop is relayhost when that is set, else the
 * recipient's domain (lower-cased).
 *
 * transport_maps (transport(5)).  When it is set, every recipient due for
 * delivery is looked up when its message is brought in, through lookupd
 * (LOOKUP_TRANSPORT: qmgr is chrooted in the spool and cannot open the
 * tables; lookupd tries the keys in Postfix's order, see
 * lookupd/transport.c).  The message's jobs are queued once the answers
 * for all its recipients are in, each recipient with its own route; a
 * deferred message is looked up again at its next attempt, so a changed
 * table applies to mail already queued.  No answer is cached.  An entry
 * "transport:nexthop" means:
 *   smtp:nexthop   smtp to nexthop ("[host]:port", "[host]", "host",
 *                  "host:port": the smtp client's syntax); "smtp:" keeps
 *                  the next hop the built-in rule gives (relayhost or the
 *                  domain; the domain for a mydestination recipient);
 *   local:         local delivery of the local part, whatever the domain
 *                  (local delivers by local part, as Postfix's does);
 *   :nexthop       the built-in transport with another next hop (local
 *                  ignores it); ":" alone changes nothing;
 *   error:text     bounced at once: "5.x.y text" gives the status code,
 *                  else 5.0.0 (Postfix's error(8): a code of another
 *                  class is ignored with a warning);
 *   retry:text     deferred: "4.x.y text" or 4.0.0, likewise;
 *   discard:text   delivered without a delivery (status=sent, relay=none,
 *                  Postfix's discard(8)): "2.x.y text" or 2.0.0, the
 *                  text or "discarded";
 *   anything else  an unknown transport: a configuration error, logged
 *                  with the entry that names it, and the recipient is
 *                  deferred (4.3.5 "mail transport unavailable"), never
 *                  bounced.
 * Not found: the built-in rule.  A lookup that fails (a table that cannot
 * be read, a malformed entry, lookupd unreachable or silent) defers the
 * recipient with 4.3.0 "transport_maps lookup failure: REASON".
 * Recipients without a delivery are settled at the next dispatch with
 * relay=none (transport.c).
 *
 * The connection to lookupd (private/lookupd) is driven by the event
 * loop and never waited on: connect and hello are immediate on a local
 * socket that master holds open, requests are written as there is room
 * (at most ROUTE_WINDOW in flight, so neither side's socket buffer can
 * fill: lookupd drops a client that does not read), answers are read as
 * they arrive.  No answer for LOOKUP_TIMEOUT_MS, a broken connection or a
 * malformed answer (a peer error) closes it and sends the lookups in
 * flight again on a new one; a lookup sent ROUTE_MAX_SENDS times, or one
 * for which lookupd cannot be reached at all, fails.  The connection is
 * closed after ROUTE_IDLE_MS without lookups.
 *
 * Parameters: transport_maps, mydestination, relayhost.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "deliver_proto.h"
#include "ipc.h"
#include "lookup_proto.h"
#include "msg.h"
#include "qmgr.h"
#include "xalloc.h"

#define ROUTE_WINDOW        32          /* lookups in flight at once */
#define ROUTE_IPC_MS        5000        /* writing the hello or one request */
#define ROUTE_IDLE_MS       10000       /* an unused connection is closed */
#define ROUTE_MAX_SENDS     2           /* connections one lookup may try */
#define ROUTE_MAX_REPLY     (16 * 1024)

/* One recipient's lookup. */
struct route_req {
    struct qmgr_msg        *msg;        /* NULL: cancelled while in flight */
    size_t                  rcpt;
    uint32_t                reqid;      /* 0 while waiting */
    int                     sends;
    TAILQ_ENTRY(route_req)  link;       /* route_waiting or route_flight */
};
TAILQ_HEAD(route_req_list, route_req);

static struct route_req_list route_waiting = TAILQ_HEAD_INITIALIZER(route_waiting);
static struct route_req_list route_flight = TAILQ_HEAD_INITIALIZER(route_flight);
static size_t route_nflight;
static uint32_t route_next_reqid;

static int route_fd = -1;
static ipc_reader_t *route_reader;
static int route_hello_seen;
static event_timer_t *route_timer;      /* an answer is due, or the idle close */
static int route_timer_idle;
static event_timer_t *route_kick_timer;

/* ------------------------------------------------------------- routes */

void qmgr_route_clear(struct qmgr_route *r)
{
    free(r->nexthop);
    free(r->dsn);
    free(r->text);
    memset(r, 0, sizeof(*r));
}

/* The built-in next hop of address: relayhost (if relay) or the domain. */
static char *route_default_nexthop(const char *address, int relay)
{
    char *domain, *lower;

    if (relay && *conf_str("relayhost"))
        return addr_lowercase(conf_str("relayhost"));
    addr_split(address, NULL, &domain);
    lower = addr_lowercase(domain);
    free(domain);
    return lower;
}

static void route_default(const char *address, struct qmgr_route *r)
{
    memset(r, 0, sizeof(*r));
    if (addr_is_local(address)) {
        r->kind = QMGR_ROUTE_LOCAL;
        return;
    }
    r->kind = QMGR_ROUTE_SMTP;
    r->nexthop = route_default_nexthop(address, 1);
}

static void route_settle(struct qmgr_route *r, const char *dsn, const char *text)
{
    qmgr_route_clear(r);
    r->kind = QMGR_ROUTE_SETTLE;
    r->dsn = xstrdup(dsn);
    r->text = xstrdup(text);
}

void qmgr_route_of(const struct qmgr_msg *m, size_t i, struct qmgr_route *r)
{
    const struct qmgr_route *have = m->routes ? &m->routes[i] : NULL;

    if (have == NULL || have->kind == 0) {
        route_default(m->q->rcpts[i].address, r);
        return;
    }
    r->kind = have->kind;
    r->nexthop = have->nexthop ? xstrdup(have->nexthop) : NULL;
    r->dsn = have->dsn ? xstrdup(have->dsn) : NULL;
    r->text = have->text ? xstrdup(have->text) : NULL;
}

/* Postfix's dsn_split(): "C.S.D text" gives the code and the rest; a code
 * of another class than cls is ignored (logged, as Postfix's
 * bounce_append and defer_append do), and so is none: def.  text (fresh)
 * is what follows, or fallback when that is empty. */
static void route_status(const char *id, const char *address, const char *what,
                         const char *nexthop, int cls, const char *def, const char *fallback,
                         char **dsn, char **text)
{
    size_t n = strcspn(nexthop, " ");
    const char *rest = nexthop;
    char *code = xstrndup(nexthop, n);

    *dsn = NULL;
    if (dsn_code_valid(code, 0)) {
        rest = nexthop + n;
        if (code[0] - '0' == cls)
            *dsn = code;
        else
            msg_warn("%s: to=<%s>: transport_maps: %s: ignoring status code %s of another "
                     "class; using %s", id, address, what, code, def);
    }
    if (*dsn == NULL) {
        free(code);
        *dsn = xstrdup(def);
    }
    rest += strspn(rest, " ");
    *text = xstrdup(*rest ? rest : fallback);
}

/* The route of recipient i of m from its transport_maps entry. */
static void route_entry(const struct qmgr_msg *m, size_t i,
                        const struct lookup_transport_reply *e, struct qmgr_route *r)
{
    const char *address = m->q->rcpts[i].address, *t = e->transport, *nh = e->nexthop;
    char *dsn, *text, *fallback;

    route_default(address, r);
    if (*t == '\0' || strcmp(t, "smtp") == 0 || strcmp(t, "local") == 0) {
        if (strcmp(t, "smtp") == 0 && r->kind == QMGR_ROUTE_LOCAL) {
            r->kind = QMGR_ROUTE_SMTP;
            r->nexthop = route_default_nexthop(address, 0);
        } else if (strcmp(t, "local") == 0 && r->kind == QMGR_ROUTE_SMTP) {
            r->kind = QMGR_ROUTE_LOCAL;
            free(r->nexthop);
            r->nexthop = NULL;
        }
        if (r->kind == QMGR_ROUTE_SMTP && *nh) {
            free(r->nexthop);
            r->nexthop = addr_lowercase(nh);
        }
        if (r->kind == QMGR_ROUTE_SMTP && *r->nexthop == '\0')
            route_settle(r, "4.3.5", "no next hop: the address has no domain");
        return;
    }
    if (strcmp(t, "error") == 0) {
        fallback = xasprintf("mail for <%s> is not deliverable", address);
        route_status(m->id, address, "error", nh, 5, "5.0.0", fallback, &dsn, &text);
    } else if (strcmp(t, "retry") == 0) {
        fallback = xasprintf("mail for <%s> is deferred", address);
        route_status(m->id, address, "retry", nh, 4, "4.0.0", fallback, &dsn, &text);
    } else if (strcmp(t, "discard") == 0) {
        fallback = xstrdup("discarded");
        route_status(m->id, address, "discard", nh, 2, "2.0.0", fallback, &dsn, &text);
    } else {
        msg_warn("%s: to=<%s>: transport_maps entry %s names the unknown mail transport "
                 "\"%s\" (known: smtp, local, error, retry, discard); deferring the mail",
                 m->id, address, e->text, t);
        route_settle(r, "4.3.5", "mail transport unavailable");
        return;
    }
    route_settle(r, dsn, text);
    free(fallback);
    free(dsn);
    free(text);
}

/* ------------------------------------------------- the lookups of a message */

static void route_kick(void);

/* q has its answer r (taken): stored with its message, whose jobs are
 * queued with the last one.  Frees q. */
static void route_done(struct route_req *q, struct qmgr_route *r)
{
    struct qmgr_msg *m = q->msg;
    size_t i = q->rcpt;

    free(q);
    if (m == NULL) {            /* cancelled meanwhile */
        qmgr_route_clear(r);
        return;
    }
    m->routes[i] = *r;
    if (--m->routing > 0)
        return;
    qmgr_jobs_add(m);
    for (i = 0; i < m->q->nrcpt; i++)
        qmgr_route_clear(&m->routes[i]);
    free(m->routes);
    m->routes = NULL;
}

/* q's lookup failed: the recipient is deferred with why. */
static void route_failed(struct route_req *q, const char *why)
{
    struct qmgr_route r = {0};
    char *text = xasprintf("transport_maps lookup failure: %s", why);

    route_settle(&r, "4.3.0", text);
    free(text);
    route_done(q, &r);
}

void qmgr_route_message(struct qmgr_msg *m)
{
    if (*conf_str("transport_maps") == '\0') {
        qmgr_jobs_add(m);
        return;
    }
    m->routes = xcalloc(m->q->nrcpt ? m->q->nrcpt : 1, sizeof(*m->routes));
    for (size_t i = 0; i < m->q->nrcpt; i++) {
        struct route_req *q;

        if (m->rs[i].outcome != QMGR_OUT_WAITING)
            continue;
        q = xcalloc(1, sizeof(*q));
        q->msg = m;
        q->rcpt = i;
        TAILQ_INSERT_TAIL(&route_waiting, q, link);
        m->routing++;
    }
    if (m->routing == 0) {      /* nobody to route after all */
        free(m->routes);
        m->routes = NULL;
        qmgr_jobs_add(m);
        return;
    }
    route_kick();
}

void qmgr_route_cancel(struct qmgr_msg *m)
{
    struct route_req *q, *next;

    if (m->routes == NULL)
        return;
    TAILQ_FOREACH_SAFE(q, &route_waiting, link, next)
        if (q->msg == m) {
            TAILQ_REMOVE(&route_waiting, q, link);
            free(q);
        }
    TAILQ_FOREACH(q, &route_flight, link)
        if (q->msg == m)
            q->msg = NULL;      /* its answer is dropped */
    for (size_t i = 0; i < m->q->nrcpt; i++) {
        if (m->rs[i].outcome == QMGR_OUT_WAITING)
            m->rs[i].outcome = QMGR_OUT_NONE;
        qmgr_route_clear(&m->routes[i]);
    }
    free(m->routes);
    m->routes = NULL;
    m->routing = 0;
}

/* ------------------------------------------------ the lookupd connection */

static void route_read(event_loop_t *loop, int fd, int events, void *arg);

static void route_close(void)
{
    event_cancel_timer(qmgr_loop, &route_timer);
    if (route_fd >= 0) {
        event_del_fd(qmgr_loop, route_fd);
        close(route_fd);
        route_fd = -1;
    }
    ipc_reader_free(&route_reader);
}

static void route_timer_fired(event_loop_t *loop, void *arg);

/* Arm the timer: an answer is due within LOOKUP_TIMEOUT_MS while lookups
 * are in flight, else the idle close. */
static void route_timer_set(void)
{
    event_cancel_timer(qmgr_loop, &route_timer);
    route_timer_idle = route_nflight == 0;
    route_timer = event_add_timer(qmgr_loop, route_timer_idle ? ROUTE_IDLE_MS
                                  : LOOKUP_TIMEOUT_MS, route_timer_fired, NULL);
}

/* The connection is broken (why): its lookups in flight wait again, at
 * the head, for a new one, unless they were sent ROUTE_MAX_SENDS times. */
static void route_lost(const char *why)
{
    struct route_req *q;
    char *text;

    if (route_nflight)
        msg_warn("lookupd connection lost (%s) with %zu transport_maps lookups in flight",
                 why, route_nflight);
    route_close();
    text = xasprintf("lookupd: %s", why);
    while ((q = TAILQ_LAST(&route_flight, route_req_list)) != NULL) {
        TAILQ_REMOVE(&route_flight, q, link);
        route_nflight--;
        q->reqid = 0;
        if (q->msg == NULL)
            free(q);
        else if (q->sends >= ROUTE_MAX_SENDS)
            route_failed(q, text);
        else
            TAILQ_INSERT_HEAD(&route_waiting, q, link);
    }
    free(text);
    route_kick();
}

static void route_timer_fired(event_loop_t *loop, void *arg)
{
    char why[64];

    (void)loop;
    (void)arg;
    route_timer = NULL;
    if (route_timer_idle) {
        if (route_nflight == 0 && TAILQ_EMPTY(&route_waiting))
            route_close();
        return;
    }
    snprintf(why, sizeof(why), "no answer within %ds", LOOKUP_TIMEOUT_MS / 1000);
    route_lost(why);
}

/* Open the connection; 0, or -1 with *why (static). */
static int route_connect(const char **why)
{
    static int names;
    int fd;

    if (!names) {
        lookup_proto_init();
        names = 1;
    }
    if ((fd = ipc_connect(LOOKUP_SOCKET)) < 0) {
        *why = strerror(errno);
        return -1;
    }
    /* The hello goes first; lookupd's comes back with the first answers. */
    if (ipc_hello_send(fd, LOOKUP_PROTO_NAME, LOOKUP_PROTO_VERSION, ROUTE_IPC_MS) < 0) {
        *why = strerror(errno);
        close(fd);
        return -1;
    }
    route_fd = fd;
    route_reader = ipc_reader_new(ROUTE_MAX_REPLY);
    route_hello_seen = 0;
    event_add_fd(qmgr_loop, fd, EVENT_READ, route_read, NULL);
    return 0;
}

/* Send what the window allows.  Runs from its own zero-delay timer, never
 * inside a caller (a failure here settles recipients and queues jobs). */
static void route_send(event_loop_t *loop, void *arg)
{
    const char *why = NULL;
    struct route_req *q;

    (void)loop;
    (void)arg;
    route_kick_timer = NULL;
    if (TAILQ_EMPTY(&route_waiting))
        return;
    if (route_fd < 0 && route_connect(&why) < 0) {
        char *text = xasprintf("cannot connect to lookupd (%s): %s", LOOKUP_SOCKET, why);

        msg_warn("%s; deferring the recipients to look up in transport_maps", text);
        while ((q = TAILQ_FIRST(&route_waiting)) != NULL) {
            TAILQ_REMOVE(&route_waiting, q, link);
            route_failed(q, text);
        }
        free(text);
        return;
    }
    while (route_nflight < ROUTE_WINDOW && (q = TAILQ_FIRST(&route_waiting)) != NULL) {
        ipc_msg_t *m;
        int rc;

        TAILQ_REMOVE(&route_waiting, q, link);
        if (++route_next_reqid == 0)
            route_next_reqid = 1;
        q->reqid = route_next_reqid;
        q->sends++;
        TAILQ_INSERT_TAIL(&route_flight, q, link);
        route_nflight++;
        m = lookup_request_encode(LOOKUP_TRANSPORT, q->reqid, q->msg->q->rcpts[q->rcpt].address);
        rc = ipc_send(route_fd, m, ROUTE_IPC_MS);
        ipc_msg_free(&m);
        if (rc < 0) {
            route_lost(strerror(errno));
            return;
        }
        if (route_timer == NULL || route_timer_idle)
            route_timer_set();
    }
}

static void route_kick(void)
{
    if (route_kick_timer == NULL && !TAILQ_EMPTY(&route_waiting))
        route_kick_timer = event_add_timer(qmgr_loop, 0, route_send, NULL);
}

/* One frame from lookupd; 0, or -1 with *why (a peer error). */
static int route_answer(ipc_msg_t *m, const char **why)
{
    struct lookup_transport_reply e;
    struct qmgr_route r;
    struct route_req *q;

    if (!route_hello_seen) {
        if (ipc_hello_check(m, LOOKUP_PROTO_NAME, LOOKUP_PROTO_VERSION, why) < 0)
            return -1;
        route_hello_seen = 1;
        return 0;
    }
    TAILQ_FOREACH(q, &route_flight, link)
        if (q->reqid == m->reqid)
            break;
    if (q == NULL) {
        *why = "an answer to no question";
        return -1;
    }
    if (lookup_transport_reply_decode(m, &e, why) < 0)
        return -1;
    TAILQ_REMOVE(&route_flight, q, link);
    route_nflight--;
    if (q->msg == NULL) {
        free(q);
    } else if (e.result == LOOKUP_OK) {
        route_entry(q->msg, q->rcpt, &e, &r);
        route_done(q, &r);
    } else if (e.result == LOOKUP_NOTFOUND) {
        route_default(q->msg->q->rcpts[q->rcpt].address, &r);
        route_done(q, &r);
    } else {
        route_failed(q, e.text);
    }
    lookup_transport_reply_clear(&e);
    return 0;
}

static void route_read(event_loop_t *loop, int fd, int events, void *arg)
{
    const char *why = NULL;
    ipc_msg_t *m;
    int rc;

    (void)loop;
    (void)events;
    (void)arg;
    for (;;) {
        rc = ipc_reader_recv(route_reader, fd, &m);
        if (rc < 0 && errno == EAGAIN)
            break;
        if (rc <= 0) {
            if (rc == 0 && route_nflight == 0) {
                route_close();  /* lookupd went away between questions */
                route_kick();
            } else {
                route_lost(rc == 0 ? "it closed the connection" : strerror(errno));
            }
            return;
        }
        rc = route_answer(m, &why);
        if (rc < 0)
            msg_warn("malformed %s from lookupd (%s); dropping the connection",
                     ipc_type_name(m->type), why);
        ipc_msg_free(&m);
        if (rc < 0) {
            route_lost("malformed answer");
            return;
        }
    }
    route_timer_set();
    route_kick();
}
