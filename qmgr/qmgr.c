/*
 * qmgr - the queue manager (DESIGN.md §1, §2): the one process that moves
 * queue files and writes recipient status, schedules deliveries and sends
 * bounces.
 *
 * Runs as mail_owner, chrooted into the spool, one process for good
 * (SERVER_MULTI, no idle exit).  At start every file left in active/ by an
 * earlier run goes back to incoming/ (the directories are the truth), then
 * incoming/ and the due part of deferred/ are scanned.  After that:
 *   - QMGR_NOTIFY from cleanup brings a new message in at once;
 *   - master's wakeup (master.conf wakeup column) and a timer of
 *     queue_run_delay rescan incoming/ (a lost notice only delays mail)
 *     and deferred/ (only files whose mtime, the earliest next attempt,
 *     has come);
 *   - mailctl's QMGR_FLUSH, QMGR_DELETE, QMGR_HOLD, QMGR_RELEASE (root
 *     only) are answered with QMGR_REPLY.
 * The rest is in message.c (the active set), route.c (where each
 * recipient goes), transport.c (deliveries) and bounce.c (DSNs).
 *
 * Peers: mail_owner (cleanup) and root (mailctl), checked at the hello;
 * control requests only from root.  A malformed or unexpected message is a
 * peer error: logged, that connection dropped.
 *
 * Logging (Postfix's shape): "ID: from=<s>, size=N, nrcpt=M (queue
 * active)", "ID: to=<r>, relay=local, delay=D, dsn=X, status=sent|
 * deferred|bounced (text)", "ID: sender non-delivery notification: ID2",
 * "ID: removed".
 *
 * Parameters: queue_run_delay, mail_owner, and those of message.c,
 * route.c, transport.c and bounce.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "conf.h"
#include "ipc.h"
#include "ipcconn.h"
#include "msg.h"
#include "privs.h"
#include "qmgr.h"
#include "qmgr_proto.h"
#include "server.h"
#include "xalloc.h"

#define QMGR_PEER_MS      5000
#define QMGR_MAX_REQUEST  4096

event_loop_t *qmgr_loop;
int qmgr_qdir = -1;
static uid_t qmgr_owner_uid;
static event_timer_t *qmgr_run_timer;

struct qmgr_peer {
    ipcconn_t *conn;
};

static void qmgr_pre_init(void)
{
    gid_t gid;

    if (privs_lookup(conf_str("mail_owner"), &qmgr_owner_uid, &gid) < 0)
        msg_fatal("mail_owner account %s does not exist", conf_str("mail_owner"));
}

static void qmgr_queue_run(event_loop_t *loop, void *arg)
{
    (void)arg;
    qmgr_scan_incoming();
    qmgr_scan_deferred(0);
    qmgr_transport_kick();
    event_cancel_timer(loop, &qmgr_run_timer);
    qmgr_run_timer = event_add_timer(loop, conf_time("queue_run_delay") * 1000, qmgr_queue_run,
                                     NULL);
}

static void qmgr_post_init(event_loop_t *loop)
{
    struct rlimit rl;

    qmgr_loop = loop;
    qmgr_proto_init();
    qmgr_transport_init();
    /* Every active message holds a descriptor of its file. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
        && (rlim_t)conf_int("qmgr_message_active_limit") + 64 > rl.rlim_cur) {
        char limit[32];

        snprintf(limit, sizeof(limit), "%lld", (long long)rl.rlim_cur - 64);
        msg_warn("qmgr_message_active_limit lowered to %s: the descriptor limit is %lld",
                 limit, (long long)rl.rlim_cur);
        conf_set("qmgr_message_active_limit", limit, "the descriptor limit", NULL);
    }
    if ((qmgr_qdir = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        msg_fatal("cannot open the queue directory: %s", strerror(errno));
    qmgr_recover_active();
    qmgr_queue_run(loop, NULL);
}

static void qmgr_wakeup(event_loop_t *loop)
{
    qmgr_queue_run(loop, NULL);
}

static void qmgr_peer_close(struct qmgr_peer **pp)
{
    struct qmgr_peer *p = *pp;

    event_del_fd(qmgr_loop, p->conn->fd);
    ipcconn_free(&p->conn);
    free(p);
    *pp = NULL;
    server_conn_end();
}

static int qmgr_reply(struct qmgr_peer *p, uint32_t reqid, int ok, size_t count,
                      const char *text)
{
    ipc_msg_t *m = qmgr_reply_encode(reqid, ok, count, text);
    int rc;

    rc = ipc_send(p->conn->fd, m, QMGR_PEER_MS);
    ipc_msg_free(&m);
    return rc;
}

/* One control request from root; 0 or -1 (drop the peer). */
static int qmgr_control(struct qmgr_peer *p, ipc_msg_t *m)
{
    char *id = NULL, text[128];
    size_t count = 0;
    const char *verb;
    int rc;

    if (qmgr_control_decode(m, &id) < 0) {
        msg_warn("malformed %s from a control client; dropping it", ipc_type_name(m->type));
        return -1;
    }
    switch (m->type) {
    case QMGR_FLUSH:
        if (*id) {
            msg_info("flush of %s requested by the administrator", id);
            qmgr_transport_resume(id);
            count = qmgr_scan_deferred_domain(id);
            snprintf(text, sizeof(text), "flushing %zu message%s with mail for %s", count,
                     count == 1 ? "" : "s", id);
        } else {
            msg_info("flush requested by the administrator");
            qmgr_transport_resume(NULL);
            qmgr_scan_incoming();
            qmgr_scan_deferred(1);
            snprintf(text, sizeof(text), "flushing the queue");
        }
        qmgr_transport_kick();
        free(id);
        return qmgr_reply(p, m->reqid, 1, count, text);
    case QMGR_DELETE:
        count = qmgr_ctl_delete(id);
        verb = "deleted";
        break;
    case QMGR_HOLD:
        count = qmgr_ctl_hold(id);
        verb = "held";
        break;
    default:
        count = qmgr_ctl_release(id);
        qmgr_transport_kick();
        verb = "released";
        break;
    }
    if (count == 0 && strcmp(id, QMGR_ALL) != 0)
        snprintf(text, sizeof(text), "%s: no such message in the queue%s", id,
                 m->type == QMGR_RELEASE ? " on hold" : "");
    else
        snprintf(text, sizeof(text), "%s %zu message%s", verb, count, count == 1 ? "" : "s");
    rc = qmgr_reply(p, m->reqid, count > 0 || strcmp(id, QMGR_ALL) == 0, count, text);
    free(id);
    return rc;
}

static int qmgr_request(struct qmgr_peer *p, ipc_msg_t *m)
{
    char *id = NULL;

    switch (m->type) {
    case QMGR_NOTIFY:
        if (qmgr_notify_decode(m, &id) < 0) {
            msg_warn("malformed %s; dropping the client", ipc_type_name(m->type));
            return -1;
        }
        if (qmgr_nactive < (size_t)conf_int("qmgr_message_active_limit"))
            qmgr_activate(QUEUE_DIR_INCOMING, id, 1);
        free(id);
        return 0;
    case QMGR_FLUSH:
    case QMGR_DELETE:
    case QMGR_HOLD:
    case QMGR_RELEASE:
        if (p->conn->uid != 0) {
            msg_warn("%s from uid %ld refused: only root may change the queue",
                     ipc_type_name(m->type), (long)p->conn->uid);
            qmgr_reply(p, m->reqid, 0, 0, "permission denied (run as root)");
            return -1;
        }
        return qmgr_control(p, m);
    default:
        msg_warn("unexpected %s from a client; dropping it", ipc_type_name(m->type));
        return -1;
    }
}

static void qmgr_peer_read(event_loop_t *loop, int fd, int events, void *arg)
{
    struct qmgr_peer *p = arg;
    ipc_msg_t *m = NULL;
    const char *why;
    int rc;

    (void)loop;
    (void)events;
    (void)fd;
    rc = ipcconn_recv(p->conn, &m, &why);
    if (rc == 0)
        return;
    if (rc < 0) {
        if (why)
            msg_warn("dropping a client (uid %ld): %s", (long)p->conn->uid, why);
        qmgr_peer_close(&p);
        return;
    }
    rc = qmgr_request(p, m);
    ipc_msg_free(&m);
    if (rc < 0)
        qmgr_peer_close(&p);
}

static void qmgr_accept(event_loop_t *loop, int fd)
{
    struct qmgr_peer *p;
    const char *why;
    ipcconn_t *c = ipcconn_accept(fd, QMGR_PROTO_NAME, QMGR_PROTO_VERSION, &qmgr_owner_uid, 1,
                                  QMGR_MAX_REQUEST, &why);

    if (c == NULL) {
        msg_warn("refusing a client: %s", why);
        server_conn_end();
        return;
    }
    p = xcalloc(1, sizeof(*p));
    p->conn = c;
    event_add_fd(loop, c->fd, EVENT_READ, qmgr_peer_read, p);
}

int main(int argc, char **argv)
{
    static const struct server_opts opts = {
        .mode = SERVER_MULTI,
        .user_param = "mail_owner",
        .chroot = SERVER_CHROOT_SPOOL,
        .no_idle_exit = 1,
        .pre_init = qmgr_pre_init,
        .post_init = qmgr_post_init,
        .accept = qmgr_accept,
        .wakeup = qmgr_wakeup,
    };

    server_main(argc, argv, &opts);
}
