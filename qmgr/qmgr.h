/*
 * qmgr.h - the parts of the queue manager and what they share.
 *
 *   qmgr.c      main, start-up recovery, timers, the control socket
 *               (QMGR_NOTIFY from cleanup, queue control from mailctl)
 *   message.c   the active set: bringing messages in from incoming/ and
 *               deferred/, recording outcomes, finishing a round (remove,
 *               defer with backoff, bounce), delete/hold/release
 *   route.c     choosing each recipient's transport and next hop: the
 *               built-in rule, or transport_maps through lookupd
 *   transport.c delivery jobs and the connections to the transports
 *   bounce.c    RFC 3464 delivery status notifications (failed, delayed,
 *               delivered or relayed), submitted to cleanup
 *
 * One process, one event loop; nothing here blocks for long except the
 * bounded IPC calls (local, cleanup, lookupd) whose peers are our own
 * services.
 */
#ifndef POSTHORN_QMGR_H
#define POSTHORN_QMGR_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/tree.h>

#include "dsn.h"
#include "event.h"
#include "queue.h"

/* What happened to one recipient in this round. */
enum qmgr_outcome {
    QMGR_OUT_NONE = 0,      /* not tried this round (final already, or not due) */
    QMGR_OUT_WAITING,       /* a job is queued or in flight */
    QMGR_OUT_SENT,
    QMGR_OUT_DEFER,
    QMGR_OUT_FAIL,
};

struct qmgr_rcpt_state {
    enum qmgr_outcome outcome;
    char             *dsn;          /* of the outcome */
    char             *text;
    char             *relay;        /* where it went, for the log */
    char             *diag_type;    /* "smtp" with the remote reply, or NULL */
    char             *diag_text;
    int               relayed;      /* SENT: DELIVER_RELAYED(_DSN), or DELIVER_FINAL */
};

/* Where one recipient goes (route.c). */
enum qmgr_route_kind {
    QMGR_ROUTE_LOCAL = 1,       /* the local transport */
    QMGR_ROUTE_SMTP,            /* the smtp transport, to nexthop */
    QMGR_ROUTE_SETTLE,          /* no delivery: the outcome is dsn/text (error:,
                                   retry:, discard:, an unknown transport, a
                                   failed lookup) */
};

struct qmgr_route {
    enum qmgr_route_kind kind;
    char                *nexthop;   /* SMTP: "domain", "[host]:port", ...; else NULL */
    char                *dsn;       /* SETTLE: "2.0.0" sent, "4.x.y" deferred, "5.x.y" bounced */
    char                *text;
};

/* Actions deferred until a message's deliveries in flight have reported. */
#define QMGR_ACT_DELETE  1
#define QMGR_ACT_HOLD    2

struct qmgr_msg {
    char                    id[QUEUE_ID_SIZE];
    int                     fd;         /* active/ID, read-only: lent to local */
    queue_file_t           *q;
    struct qmgr_rcpt_state *rs;         /* q->nrcpt entries */
    int                     jobs;       /* recipients in jobs: queued + in flight */
    int                     action;     /* QMGR_ACT_* pending */
    struct qmgr_route      *routes;     /* transport_maps answers, q->nrcpt entries,
                                           while they come in; else NULL */
    int                     routing;    /* recipients whose route is still asked for */
    RB_ENTRY(qmgr_msg)      tree;
};
RB_HEAD(qmgr_msg_tree, qmgr_msg);
RB_PROTOTYPE(qmgr_msg_tree, qmgr_msg, tree, qmgr_msg_cmp)

/* qmgr.c */
extern event_loop_t *qmgr_loop;
extern int qmgr_qdir;                   /* the queue directory (we are chrooted in it) */

/* message.c */
extern struct qmgr_msg_tree qmgr_active;
extern size_t qmgr_nactive;
void   qmgr_recover_active(void);       /* start-up: active/ -> incoming/ */
void   qmgr_scan_incoming(void);
void   qmgr_scan_deferred(int force);   /* force: everything is due (flush) */
/* Flush: every deferred message with a recipient in domain (not yet final)
 * is due now; how many. */
size_t qmgr_scan_deferred_domain(const char *domain);
int    qmgr_activate(const char *dir, const char *id, int force);
/* The outcome of one recipient's delivery, through relay ("local",
 * "host[addr]:port", "none"), with the remote diagnostic if there was one
 * (diag_type "smtp" and the reply; NULL or "" otherwise) and, for a
 * delivery, whether it was relayed (lib/deliver_proto DELIVER_*): logged,
 * and the message's round ends with its last one (m may be freed). */
void   qmgr_msg_outcome(struct qmgr_msg *m, size_t rcpt, int dsn_class, const char *dsn,
                        const char *text, const char *relay, const char *diag_type,
                        const char *diag_text, int relayed);
/* Control; each returns the number of messages affected. */
size_t qmgr_ctl_delete(const char *id);     /* id or QMGR_ALL */
size_t qmgr_ctl_hold(const char *id);
size_t qmgr_ctl_release(const char *id);

/* route.c */
/* Route m's recipients whose outcome is QMGR_OUT_WAITING and queue their
 * jobs (qmgr_jobs_add): at once when transport_maps is empty, else once
 * lookupd has answered for every one of them (m->routing counts them;
 * m->jobs stays 0 meanwhile). */
void   qmgr_route_message(struct qmgr_msg *m);
/* Stop routing m (delete, hold): its lookups are forgotten and the
 * recipients being routed go back to QMGR_OUT_NONE. */
void   qmgr_route_cancel(struct qmgr_msg *m);
/* The route of recipient i of m (fresh strings; qmgr_route_clear). */
void   qmgr_route_of(const struct qmgr_msg *m, size_t i, struct qmgr_route *r);
void   qmgr_route_clear(struct qmgr_route *r);

/* transport.c */
void   qmgr_transport_init(void);
/* Queue jobs for every recipient of m whose outcome is QMGR_OUT_WAITING
 * (qmgr_route_of says where; grouped by transport and destination; one
 * that needs no delivery settled at the next dispatch); m->jobs counts
 * them. */
void   qmgr_jobs_add(struct qmgr_msg *m);
size_t qmgr_jobs_cancel(struct qmgr_msg *m);  /* drop m's queued (not in-flight) jobs */
void   qmgr_transport_kick(void);       /* dispatch what the limits allow */
/* Lift the suspension of the destinations of domain (NULL: of all). */
void   qmgr_transport_resume(const char *domain);
const char *qmgr_transport_name(const char *address);   /* "local", ... for the log */

/* bounce.c: build and submit a DSN of the given kind for the recipients
 * of m whose index is in rcpts (n of them), with this round's outcomes
 * (DSN_SUCCESS: "relayed" for those handed to a server without DSN).
 * Returns 0 when cleanup committed it (or nothing had to be sent: null
 * sender), -1 when it must be tried again later (logged). */
int    qmgr_bounce(struct qmgr_msg *m, const size_t *rcpts, size_t n, enum dsn_kind kind);
/* delay_warning_time: at the end of a round that leaves recipients of m
 * deferred (stays[i] set), if m is that old, its sender is not <> and
 * some of them want it (NOTIFY) and have not been warned yet
 * (QUEUE_RCPT_F_DELAY_WARNED), send the sender one "delayed" DSN for
 * those.  1: it was committed (the caller marks every recipient that
 * stays); 0: none due; -1: it must be tried again (logged). */
int    qmgr_delay_warning(struct qmgr_msg *m, const unsigned char *stays);

#endif
