/*
 * local - the root delivery spawner (DESIGN.md §1).
 *
 * qmgr connects to private/local (only mail_owner or root may) and sends
 * DELIVER_REQUEST messages (lib/deliver_proto, the protocol of every
 * transport), many at a time on one connection; each carries a read-only
 * descriptor of the queue file and one or more recipients.  For each
 * recipient, this process:
 *   1. validates it and expands the recipient's local part through the
 *      aliases into one or more accounts (alias.c);
 *   2. resolves each account with getpwnam(): unknown is 5.1.1, uids
 *      below first_valid_uid other than root are 4.3.5 (they must be
 *      aliased; root's mail goes to root's Maildir, as Postfix does), a
 *      home_mailbox that is not a Maildir ("x/") is 4.3.5 (mbox delivery
 *      is not implemented), and forks a child per account that becomes it
 *      and delivers (deliver.c);
 *   3. watches the children's result pipes from the event loop; at EOF it
 *      reaps each; once the last child of a recipient has reported, that
 *      recipient's status is settled (a temporary failure of any copy wins,
 *      then a permanent one, then success), and once every recipient of a
 *      request is settled, one DELIVER_RESULT with the request id carries
 *      their statuses in request order (relay "local"; local never
 *      reports a failure of the destination as a whole).  A child that
 *      ends without a result is 4.3.0 "delivery process died"; one that
 *      runs longer than command_time_limit is killed with its process
 *      group ("delivery timed out").
 *
 * Privileged paths (DESIGN.md §1).  This process stays root (no privilege
 * drop, no chroot: it must be able to become any user), reads no network
 * input and never reads message content.  It never opens a path a user
 * can influence: ~/.forward and every :include: file it names are read by
 * the delivery child after it has become the user (forward.c); an alias
 * table's :include: files are read with the privileges of the table's (or
 * the including file's) owner (include.c), as root only for root's own;
 * every such open refuses symbolic links, FIFOs, devices and files with
 * more than one link.  Nothing an alias table or a ~/.forward names runs
 * as root: |command and /file targets of root's tables and of root's own
 * ~/.forward run as default_privs.  Root's own mailbox is written by a
 * child that stays root, and only below a home directory and a Maildir
 * path that no other account can change (lib/trustpath), so nobody can
 * steer that write with a symbolic link.
 *
 * Scheduling: each account a request expands to is one delivery job,
 * started when there is room: at most local_concurrency_limit delivery
 * processes run at once, and at most local_destination_concurrency_limit
 * for one (recipient, account) pair, so the commands of one user's
 * ~/.forward cannot take every slot.  Jobs that must wait are kept per
 * pair and served in turn (lib/fairq).  Batches: the process started for
 * a mailbox job also takes the mailbox jobs of the same pair waiting
 * behind it, up to local_delivery_batch_limit in all (struct local_run),
 * writes them and commits them with one syncfs and one fsync of new/
 * (maildir_commit_many), and reports one record per job in order; so a
 * burst for one user costs a process and a directory sync per batch.
 * qmgr in turn keeps at most local_concurrency_limit x
 * local_delivery_batch_limit requests here, at most
 * local_destination_concurrency_limit x local_delivery_batch_limit per
 * recipient; more than local_concurrency_limit x local_delivery_batch_limit
 * requests in progress stop the reading of requests until one is
 * answered.  On SIGTERM no new requests are read,
 * jobs not started are answered 4.3.0, and the process exits once the
 * running deliveries have reported (so no result is lost needlessly).
 *
 * Logging: qmgr logs the status= line of each delivery.  local logs
 * warnings for deliveries that failed for a local reason (class 4), and at
 * debug level the file each delivery wrote.
 *
 * ~/.forward: the delivery child, as the account, reads it with the files
 * it includes (forward.c) and reports the flattened target list (class
 * DELIVER_FORWARD) instead of delivering; the parent expands it
 * (alias_expand_forward) and starts the jobs it names within the same
 * request, at most LOCAL_MAX_FORWARDS times.
 *
 * SRS: a copy forwarded to another domain (an alias's or a ~/.forward's
 * remote target) leaves with an SRS address of srs_domain as its
 * envelope sender, unless the sender is null or of one of our domains,
 * or the target is ours (lib/srs.h, deliver.c); the secrets are read
 * here as root at start-up and wiped in every delivery child but the
 * forwarding ones.
 *
 * Subaddressing: "user+tag" that is no account itself goes to "user"
 * (recipient_delimiter); Delivered-To: keeps the full address.
 *
 * Parameters: home_mailbox, first_valid_uid, mail_owner, recipient_delimiter,
 * alias_maps, default_privs, local_concurrency_limit,
 * local_destination_concurrency_limit, local_delivery_batch_limit, command_time_limit,
 * forward_target_limit, srs_enable, srs_domain, srs_secret_file,
 * srs_max_age, and those of the server skeleton
 * (config_directory, queue_directory, maillog_file, max_use, max_idle).
 *
 * Failure modes: a peer that is not mail_owner/root, a bad frame, an
 * unexpected message type or a malformed request is a peer error: logged,
 * that connection dropped.  Sockets are read and written with the blocking
 * ipc calls and a deadline (LOCAL_IPC_TIMEOUT_MS): a peer that stalls in
 * the middle of a frame or does not read its results holds this process
 * that long at most, and only mail_owner can connect at all.  A result that cannot be sent (qmgr gone) is
 * logged; qmgr retries such a delivery later.  Fork or pipe failures are
 * class 4 results.  mail_owner missing at start-up is fatal.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "addr.h"
#include "buf.h"
#include "conf.h"
#include "event.h"
#include "fairq.h"
#include "ipc.h"
#include "ipcconn.h"
#include "local.h"
#include "deliver_proto.h"
#include "msg.h"
#include "privs.h"
#include "server.h"
#include "xalloc.h"

#define LOCAL_IPC_TIMEOUT_MS       10000    /* a hello, the rest of a frame, a result */
#define LOCAL_MAX_REQUEST          65536    /* payload of one request */
#define LOCAL_MAX_FORWARDS         20       /* ~/.forward files per recipient */
#define LOCAL_HEAP_TRIM_THRESHOLD  (4 * 1024 * 1024) /* free heap kept, bytes */
#define LOCAL_KEPT_MAX_RUNS        1000     /* runs of one kept process: bounds any slow
                                               growth in it, as max_use does for us */

struct local_conn {
    ipcconn_t         *conn;        /* NULL once closed */
    int                busy;        /* deliveries running for it */
    struct local_conn *prev, *next;
};

/* One DELIVER_REQUEST: its recipients' statuses, sent to qmgr together
 * when the last one is settled. */
struct local_batch {
    struct local_conn     *conn;
    uint32_t               reqid;
    char                  *queue_id;
    size_t                 n;
    size_t                 pending;     /* recipients not settled yet */
    struct deliver_status *status;
};

/* One recipient of a request: one delivery child per account it expands
 * to; its status is settled when the last one has reported. */
struct local_req {
    struct local_conn  *conn;
    struct local_batch *batch;
    size_t              index;          /* in the batch */
    char              *queue_id;
    char              *recipient;
    int                pending;     /* children running, +1 while starting */
    int                several;     /* an alias: name the account in failure texts */
    int                forwards;    /* ~/.forward files expanded so far */
    char              *sender;
    int                queue_fd;    /* our own copy: .forward files start more children */
    int                dsn_class;   /* the result so far: 0 none, 2, 5, 4 (worst) */
    char              *dsn;
    char              *text;
};

/* One delivery: an account of a request, waiting for a slot or running. */
struct local_job {
    struct local_req  *req;
    struct fairq_item  fq;          /* in local_jobs: waiting, or out (running) */
    struct local_target t;          /* its strings and groups are ours */
    char              *queue_id;
    char              *recipient;
    char              *user;        /* the account delivered to, as named */
};

/* One delivery process.  It does one run at a time: one job, or up to
 * local_delivery_batch_limit mailbox jobs of one (account, recipient) that
 * it writes and commits together, in order; the first job of a run holds
 * its fairq slot.  A kept process (job_fd >= 0: mailbox runs of one
 * account other than root) waits after a run for the next run of the same
 * account, handed to it over job_fd (local_delivery_idle_time); any other
 * exits after its run. */
struct local_proc {
    pid_t              pid;
    int                pipe_fd;     /* its result records; EOF when it has exited */
    int                job_fd;      /* kept: its next runs go here; else -1 */
    buf_t             *out;         /* records of the current run so far */
    struct local_job **jobs;        /* the current run; njobs 0: none */
    size_t             njobs;
    int                timed_out;
    int                broken;      /* killed for a bad record: no run may follow */
    int                idle;        /* in local_idle, waiting for a run */
    unsigned           runs;        /* runs done so far */
    event_timer_t     *timer;       /* command_time_limit of a run, or the idle time */
    /* A kept process: the account it became, as account_lookup() gave it. */
    char              *user;
    char              *home;
    uid_t              uid;
    gid_t              gid;
    gid_t             *groups;
    size_t             ngroups;
    TAILQ_ENTRY(local_proc) link;   /* in local_idle, while it waits */
};

static event_loop_t *local_loop;
srs_t *local_srs;
char *local_srs_error;
static uid_t local_owner_uid;
static struct local_conn *local_conns;  /* open connections */
/* Jobs by (account, recipient), at most local_destination_concurrency_limit
 * of one running (lib/fairq); the running ones are "out". */
static fairq_t *local_jobs;
static int local_nreqs;                 /* requests in progress */
static int local_paused;
static int local_stopping;
/* Kept delivery processes waiting for a run, the most recent first. */
static TAILQ_HEAD(local_proc_list, local_proc) local_idle = TAILQ_HEAD_INITIALIZER(local_idle);
static size_t local_nidle;

/* ------------------------------------------------------------ connections */

static void local_conn_read(event_loop_t *loop, int fd, int events, void *arg);

/* Requests in progress before reading stops: room for every delivery
 * process to take a full batch (qmgr keeps no more here either). */
static long long local_request_limit(void)
{
    return conf_int("local_concurrency_limit") * conf_int("local_delivery_batch_limit");
}

static void local_update_reading(void)
{
    int pause = local_stopping || local_nreqs >= local_request_limit();

    if (pause == local_paused)
        return;
    local_paused = pause;
    for (struct local_conn *c = local_conns; c; c = c->next)
        event_mod_fd(local_loop, c->conn->fd, pause ? 0 : EVENT_READ);
}

/* Free the connection once it is closed and nothing runs for it. */
static void local_conn_release(struct local_conn *c)
{
    if (c->conn == NULL && c->busy == 0) {
        free(c);
        server_conn_end();
    }
}

static void local_conn_close(struct local_conn *c)
{
    if (c->conn != NULL) {
        event_del_fd(local_loop, c->conn->fd);
        ipcconn_free(&c->conn);
        if (c->prev)
            c->prev->next = c->next;
        else
            local_conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
        c->prev = c->next = NULL;
    }
    local_conn_release(c);
}

/* Send a request's result; log and drop the connection if that fails. */
static void local_batch_reply(struct local_batch *b)
{
    struct local_conn *c = b->conn;
    struct deliver_result res = { .site_class = 0, .site_text = "", .relay = "local",
                                  .n = b->n, .status = b->status };
    ipc_msg_t *m;

    if (c->conn == NULL) {
        msg_warn("%s: qmgr connection gone; the result of request %u is not reported "
                 "(qmgr tries again)", b->queue_id, b->reqid);
        return;
    }
    m = deliver_result_encode(b->reqid, &res);
    /* qmgr may have many results coming: wait a little for room. */
    if (ipc_send(c->conn->fd, m, LOCAL_IPC_TIMEOUT_MS) < 0) {
        msg_warn("%s: cannot send the result to qmgr: %s; dropping the connection",
                 b->queue_id, strerror(errno));
        local_conn_close(c);
    }
    ipc_msg_free(&m);
}

/* Recipient index of b is settled; the last one answers qmgr. */
static void local_batch_settle(struct local_batch *b, size_t index, int dsn_class,
                               const char *dsn, const char *text)
{
    struct deliver_status *st = &b->status[index];

    st->dsn_class = dsn_class;
    st->dsn = xstrdup(dsn);
    st->text = xstrdup(text);
    if (--b->pending > 0)
        return;
    local_batch_reply(b);
    for (size_t i = 0; i < b->n; i++) {
        free(b->status[i].dsn);
        free(b->status[i].text);
    }
    free(b->status);
    free(b->queue_id);
    free(b);
}

/* ------------------------------------------------------------ deliveries */

static void local_job_free(struct local_job **jp)
{
    struct local_job *j = *jp;

    free(j->queue_id);
    free(j->recipient);
    free(j->user);
    free((char *)j->t.user);
    free((char *)j->t.home);
    free((char *)j->t.target);
    free((gid_t *)j->t.groups);
    free(j);
    *jp = NULL;
}

/* Merge one account's outcome into the request's.  A temporary failure
 * wins (the recipient is retried, and the fixed Maildir names make the
 * accounts that got it already skip it), then a permanent one, then
 * success; for a list the text names the account. */
static void local_req_add(struct local_req *q, int dsn_class, const char *dsn, const char *text,
                          const char *user)
{
    static const int rank[6] = { 0, 0, 1, 0, 3, 2 };

    if (rank[dsn_class] > rank[q->dsn_class] || q->dsn_class == 0) {
        q->dsn_class = dsn_class;
        free(q->dsn);
        free(q->text);
        q->dsn = xstrdup(dsn);
        q->text = q->several && dsn_class != 2 ? xasprintf("%s: %s", user, text) : xstrdup(text);
    }
}

static void local_start(struct local_req *q, const char *account, const char *command,
                        int no_forward);
static void local_start_all(struct local_req *q, const struct alias_result *ar);

/* user's delivery child found ~/.forward with this target list: expand it
 * and start the deliveries it names (as children of the same request). */
static void local_forward(struct local_req *q, const char *user, const char *list)
{
    struct alias_result ar;
    struct passwd *pw = getpwnam(user);

    msg_debug("%s: to=<%s>: %s has a .forward", q->queue_id, q->recipient, user);
    if (++q->forwards > LOCAL_MAX_FORWARDS) {
        local_req_add(q, 5, "5.4.6", "mail forwarding loop (.forward files name each other)",
                      user);
        return;
    }
    if (pw == NULL) {
        local_req_add(q, 4, "4.3.0", "the account went away while its .forward was read", user);
        return;
    }
    q->several = 1;
    if (alias_expand_forward(user, pw->pw_uid, list, &ar) < 0)
        local_req_add(q, ar.dsn_class, ar.dsn, ar.text, user);
    else
        local_start_all(q, &ar);
    alias_result_free(&ar);
}

/* One part of a recipient's delivery is over; the last one settles it. */
static void local_req_step(struct local_req *q)
{
    struct local_conn *c = q->conn;

    if (--q->pending > 0)
        return;
    local_batch_settle(q->batch, q->index, q->dsn_class, q->dsn, q->text);
    if (q->queue_fd >= 0)
        close(q->queue_fd);
    free(q->sender);
    free(q->queue_id);
    free(q->recipient);
    free(q->dsn);
    free(q->text);
    free(q);
    c->busy--;
    local_nreqs--;
    local_conn_release(c);
    local_update_reading();
}

/* ------------------------------------------------------------ running jobs */

static void local_schedule(void);

/* The job is over with this outcome (it ran, or could not be started). */
static void local_job_finish(struct local_job *j, int dsn_class, const char *dsn,
                             const char *text)
{
    if (j->fq.out)
        fairq_done(local_jobs, &j->fq);
    if (dsn_class == DELIVER_FORWARD)
        local_forward(j->req, j->user, text);
    else
        local_req_add(j->req, dsn_class, dsn, text, j->user);
    local_req_step(j->req);
    local_job_free(&j);
    if (local_stopping && fairq_nout(local_jobs) == 0 && fairq_nwaiting(local_jobs) == 0) {
        msg_info("stopping: every delivery has reported");
        exit(0);
    }
    local_schedule();
}

/* What a delivery process said for one job (NULL strings: nothing valid). */
struct local_record {
    int   dsn_class;
    char *dsn, *text, *detail;
};

/* Job j of p's run: report its record, or, without one (r->dsn NULL),
 * that the process ended or broke (why). */
static void local_job_done(struct local_proc *p, struct local_job *j, struct local_record *r,
                           const char *why)
{
    if (r->dsn == NULL) {
        msg_warn("%s: to=<%s>: delivery process %ld %s without a result (%s)", j->queue_id,
                 j->recipient, (long)p->pid,
                 p->timed_out ? "was killed after command_time_limit" : "ended", why);
        local_job_finish(j, 4, "4.3.0", p->timed_out ? "delivery timed out"
                                                    : "delivery process died");
        return;
    }
    if (r->dsn_class == 2)
        msg_debug("%s: to=<%s>: %s %s", j->queue_id, j->recipient, r->text, r->detail);
    else if (r->dsn_class == 4)
        msg_warn("%s: to=<%s>: dsn=%s, %s%s%s", j->queue_id, j->recipient, r->dsn, r->text,
                 *r->detail ? "; mailbox " : "", r->detail);
    else
        msg_debug("%s: to=<%s>: dsn=%s, %s", j->queue_id, j->recipient, r->dsn, r->text);
    local_job_finish(j, r->dsn_class, r->dsn, r->text);
}

static void local_proc_idle(struct local_proc *p);
static void local_proc_retire(struct local_proc *p);

static void local_records_free(struct local_record *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].dsn);
        free(r[i].text);
        free(r[i].detail);
    }
    free(r);
}

/* p's run is over: records r[0..njobs) (NULL strings where there is
 * none: the others get why), freed here.  The first job holds the run's fairq slot
 * and finishes last, so nothing sees the slot free (or local idle, when
 * stopping) while the run still has results to give.  Finishing jobs
 * starts others, which may hand p its next run: p is idle first. */
static void local_run_finish(struct local_proc *p, struct local_record *r, const char *why,
                             int waits)
{
    struct local_job **jobs = p->jobs;
    size_t n = p->njobs, i;

    p->jobs = NULL;
    p->njobs = 0;
    p->runs++;
    buf_reset(p->out);
    event_cancel_timer(local_loop, &p->timer);
    if (waits)
        local_proc_idle(p);
    for (i = 1; i <= n; i++)     /* 1, ..., n-1, then 0 */
        local_job_done(p, jobs[i % n], &r[i % n], why);
    local_records_free(r, n);
    free(jobs);
}

/* Parse what p has sent of its run's records: once there is one a job,
 * the run is over.  A kept process then says that it waits for the next
 * run with one byte, LOCAL_PROC_WAITS (one that ends instead just exits):
 * it may come with the records or later.  A malformed record spoils
 * itself and the rest: the process is killed and those jobs get a "died"
 * result. */
static void local_proc_records(struct local_proc *p)
{
    struct local_record *r = xcalloc(p->njobs, sizeof(*r));
    const char *d = p->out->data, *end = d + p->out->len;
    size_t i, used;
    int ret = 0;

    for (i = 0; i < p->njobs; i++) {
        ret = deliver_result_parse(d, (size_t)(end - d), &used, &r[i].dsn_class, &r[i].dsn,
                                   &r[i].text, &r[i].detail);
        if (ret == 0 && r[i].dsn_class != DELIVER_FORWARD
            && !dsn_code_valid(r[i].dsn, r[i].dsn_class)) {
            xfree(&r[i].dsn);
            xfree(&r[i].text);
            xfree(&r[i].detail);
            ret = -1;
        }
        if (ret != 0)
            break;
        d += used;
    }
    if (ret == 0 && d != end && !(p->job_fd >= 0 && end - d == 1 && *d == LOCAL_PROC_WAITS))
        ret = -1;                       /* more than the run's records */
    if (ret > 0) {                      /* not all there yet */
        local_records_free(r, i);
        return;
    }
    if (ret < 0) {
        msg_warn("delivery process %ld sent a malformed result; killing it", (long)p->pid);
        p->broken = 1;
        kill(p->pid, SIGKILL);
    }
    local_run_finish(p, r, "malformed result", ret == 0 && d != end);
}

static void local_proc_free(struct local_proc *p)
{
    buf_free(&p->out);
    free(p->user);
    free(p->home);
    free(p->groups);
    free(p);
}

static void local_proc_read(event_loop_t *loop, int fd, int events, void *arg)
{
    struct local_proc *p = arg;
    struct local_record *r;
    char chunk[4096], *why;
    ssize_t n;
    int status;

    (void)events;
    n = read(fd, chunk, sizeof(chunk));
    if (n > 0) {
        if (p->njobs == 0 && n == 1 && chunk[0] == LOCAL_PROC_WAITS && p->job_fd >= 0
            && !p->idle && !p->broken) {
            local_proc_idle(p);         /* after its last run's records */
            return;
        }
        if (p->njobs == 0 || p->out->len + (size_t)n > LOCAL_RESULT_MAX * p->njobs) {
            /* Output without a run, or more than a run's records. */
            if (!p->broken)
                msg_warn("delivery process %ld sent more than its results; killing it",
                         (long)p->pid);
            if (p->njobs == 0)
                local_proc_retire(p);
            p->broken = 1;
            kill(p->pid, SIGKILL);
            return;
        }
        buf_append(p->out, chunk, (size_t)n);
        local_proc_records(p);
        return;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    /* EOF: the process has exited (it never closes the pipe otherwise). */
    event_del_fd(loop, fd);
    close(fd);
    p->pipe_fd = -1;
    local_proc_retire(p);
    while (waitpid(p->pid, &status, 0) < 0) {
        if (errno != EINTR) {
            msg_warn("waitpid %ld: %s", (long)p->pid, strerror(errno));
            status = 0;
            break;
        }
    }
    if (p->njobs > 0) {
        why = WIFSIGNALED(status) ? xasprintf("killed by signal %d", WTERMSIG(status))
              : xasprintf("exit status %d", WEXITSTATUS(status));
        r = xcalloc(p->njobs, sizeof(*r));
        local_run_finish(p, r, why, 0);
        free(why);
    }
    event_cancel_timer(loop, &p->timer);
    local_proc_free(p);
}

static void local_run_timeout(event_loop_t *loop, void *arg)
{
    struct local_proc *p = arg;

    (void)loop;
    p->timer = NULL;
    p->timed_out = 1;
    kill(-p->pid, SIGKILL);     /* its process group: a command too */
    kill(p->pid, SIGKILL);      /* EOF on the pipe follows */
}

/* ------------------------------------------------------------ kept processes */

static void local_idle_unlink(struct local_proc *p)
{
    TAILQ_REMOVE(&local_idle, p, link);
    p->idle = 0;
    local_nidle--;
}

/* No more runs for p: closing job_fd makes it exit (EOF on the pipe then
 * reaps it). */
static void local_proc_retire(struct local_proc *p)
{
    if (p->job_fd < 0)
        return;
    if (p->idle) {
        event_cancel_timer(local_loop, &p->timer);
        local_idle_unlink(p);
    }
    close(p->job_fd);
    p->job_fd = -1;
}

static void local_idle_timeout(event_loop_t *loop, void *arg)
{
    struct local_proc *p = arg;

    (void)loop;
    p->timer = NULL;
    local_proc_retire(p);
}

/* p's run is over and it can take another: wait local_delivery_idle_time
 * for one.  At most local_concurrency_limit processes wait; the one that
 * waited longest makes room. */
static void local_proc_idle(struct local_proc *p)
{
    if (local_stopping || p->runs >= LOCAL_KEPT_MAX_RUNS) {
        local_proc_retire(p);
        return;
    }
    if (local_nidle >= (size_t)conf_int("local_concurrency_limit"))
        local_proc_retire(TAILQ_LAST(&local_idle, local_proc_list));
    TAILQ_INSERT_HEAD(&local_idle, p, link);
    p->idle = 1;
    local_nidle++;
    p->timer = event_add_timer(local_loop, conf_time("local_delivery_idle_time") * 1000LL,
                               local_idle_timeout, p);
}

/* May the jobs of run go to a kept process (or start one)?  Mailbox
 * deliveries of an account other than root. */
static int local_run_keepable(struct local_job *const *jobs)
{
    return jobs[0]->t.target == NULL && jobs[0]->t.uid != 0
           && conf_time("local_delivery_idle_time") > 0;
}

/* A waiting process that became exactly the account of job j. */
static struct local_proc *local_idle_find(const struct local_job *j)
{
    struct local_proc *p;

    TAILQ_FOREACH(p, &local_idle, link) {
        if (p->uid == j->t.uid && p->gid == j->t.gid && p->ngroups == j->t.ngroups
            && strcmp(p->user, j->t.user) == 0 && strcmp(p->home, j->t.home) == 0
            && memcmp(p->groups, j->t.groups, p->ngroups * sizeof(*p->groups)) == 0)
            return p;
    }
    return NULL;
}

/* Hand p (waiting) a run: one frame a job with its queue file (local.h).
 * 0, or -1 when p cannot take it (then it is retired). */
static int local_proc_send(struct local_proc *p, struct local_job **jobs, size_t n)
{
    ipc_msg_t *m;
    int fd, r = 0;

    event_cancel_timer(local_loop, &p->timer);
    local_idle_unlink(p);
    for (size_t i = 0; i < n && r == 0; i++) {
        if ((fd = fcntl(jobs[i]->t.queue_fd, F_DUPFD_CLOEXEC, 3)) < 0) {
            r = -1;
            break;
        }
        m = ipc_msg_new(LOCAL_JOB_FRAME, (uint32_t)i);
        ipc_put_int(m, (int64_t)n);
        ipc_put_str(m, jobs[i]->t.queue_id);
        ipc_put_str(m, jobs[i]->t.sender);
        ipc_put_str(m, jobs[i]->t.recipient);
        ipc_put_int(m, jobs[i]->t.no_forward);
        ipc_set_fd(m, fd);
        r = ipc_send(p->job_fd, m, LOCAL_IPC_TIMEOUT_MS);
        ipc_msg_free(&m);
    }
    if (r < 0) {
        msg_warn("delivery process %ld for %s cannot take more mail: %s; starting another",
                 (long)p->pid, p->user, strerror(errno));
        local_proc_retire(p);
        return -1;
    }
    return 0;
}

/* Fork a delivery process for a run; a keepable one gets a socket for
 * its next runs.  0, or -1 with errno. */
static int local_proc_fork(struct local_proc *p)
{
    struct local_target *targets;
    int pfd[2], sv[2] = { -1, -1 };
    int keep = local_run_keepable(p->jobs);

    if (pipe2(pfd, O_CLOEXEC) < 0)
        return -1;
    if (keep && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        keep = 0;               /* one run only, then */
    if ((p->pid = fork()) < 0) {
        int err = errno;

        close(pfd[0]);
        close(pfd[1]);
        if (keep) {
            close(sv[0]);
            close(sv[1]);
        }
        errno = err;
        return -1;
    }
    if (p->pid == 0) {
        close(pfd[0]);
        targets = xcalloc(p->njobs, sizeof(*targets));
        for (size_t i = 0; i < p->njobs; i++)
            targets[i] = p->jobs[i]->t;
        deliver_child(targets, p->njobs, pfd[1], keep ? sv[1] : -1);
    }
    close(pfd[1]);
    fcntl(pfd[0], F_SETFL, fcntl(pfd[0], F_GETFL) | O_NONBLOCK);
    p->pipe_fd = pfd[0];
    p->job_fd = -1;
    if (keep) {
        const struct local_target *t = &p->jobs[0]->t;

        close(sv[1]);
        p->job_fd = sv[0];
        p->user = xstrdup(t->user);
        p->home = xstrdup(t->home);
        p->uid = t->uid;
        p->gid = t->gid;
        p->groups = xmemdup(t->groups, t->ngroups * sizeof(*t->groups));
        p->ngroups = t->ngroups;
    }
    event_add_fd(local_loop, pfd[0], EVENT_READ, local_proc_read, p);
    return 0;
}

/* May job b ride along in the run of a?  Mailbox deliveries of one account
 * with the same ~/.forward rule are written and committed together. */
static int local_job_batchable(const struct local_job *a, const struct local_job *b)
{
    return a->t.target == NULL && b->t.target == NULL && a->t.uid == b->t.uid
           && a->t.no_forward == b->t.no_forward && strcmp(a->t.home, b->t.home) == 0;
}

/* Start the run of a job that got its turn, taking along the jobs waiting
 * behind it that the same process can do too: in a kept process of its
 * account that waits, or a new one.  0, or -1 when it could not be started
 * (the jobs are finished with a 4.3.0 result). */
static int local_job_spawn(struct local_job *j)
{
    size_t limit = (size_t)conf_int("local_delivery_batch_limit"), i;
    struct local_job **jobs = xcalloc(limit, sizeof(*jobs));
    struct local_proc *p = NULL;
    struct fairq_item *next;
    size_t n = 0;
    int err, kept = 0;
    char *text;

    jobs[n++] = j;
    while (n < limit && (next = fairq_next_waiting(&j->fq)) != NULL
           && local_job_batchable(j, fairq_entry(next, struct local_job, fq))) {
        fairq_remove(local_jobs, next);
        jobs[n++] = fairq_entry(next, struct local_job, fq);
    }
    if (local_run_keepable(jobs) && (p = local_idle_find(j)) != NULL
        && local_proc_send(p, jobs, n) == 0) {
        kept = 1;
    } else {
        p = xcalloc(1, sizeof(*p));
        p->out = buf_new(0);
    }
    p->jobs = jobs;
    p->njobs = n;
    if (!kept && local_proc_fork(p) < 0) {
        err = errno;
        local_proc_free(p);
        goto fail;
    }
    p->timed_out = 0;
    p->timer = event_add_timer(local_loop, conf_time("command_time_limit") * 1000LL,
                               local_run_timeout, p);
    msg_debug("%s: to=<%s>: %s delivery process %ld for user %s (%zu message%s)", j->queue_id,
              j->recipient, kept ? "kept" : "new", (long)p->pid, j->user, n, n == 1 ? "" : "s");
    return 0;
fail:
    msg_warn("%s: to=<%s>: cannot start a delivery process: %s", j->queue_id, j->recipient,
             strerror(err));
    text = xasprintf("cannot start a delivery process: %s", strerror(err));
    /* The first job holds the slot: it goes last. */
    for (i = n; i-- > 0;)
        local_job_finish(jobs[i], 4, "4.3.0", text);
    free(text);
    free(jobs);
    return -1;
}

/* Start waiting jobs while there is room, one (account, recipient) after
 * another. */
static void local_schedule(void)
{
    static int running;
    struct fairq_item *item;

    if (running)
        return;             /* a job finished inside a spawn: the loop below goes on */
    running = 1;
    while (!local_stopping && fairq_nout(local_jobs) < (size_t)conf_int("local_concurrency_limit")
           && (item = fairq_take(local_jobs)) != NULL)
        local_job_spawn(fairq_entry(item, struct local_job, fq));
    running = 0;
}

/* The queue file must be a read-only descriptor of a regular file. */
static int local_fd_ok(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    struct stat st;

    return fl >= 0 && (fl & O_ACCMODE) == O_RDONLY && !(fl & O_PATH)
           && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

/* Resolve one account of request q into a job waiting for its slot (or
 * record why it cannot be delivered). */
static void local_start(struct local_req *q, const char *account, const char *command,
                        int no_forward)
{
    const char *mailbox = conf_str("home_mailbox");
    const struct local_account *a;
    struct local_job *j;
    char *user = xstrdup(account), *text = NULL, *base, *key;
    int r;

#define ANSWER(cls, dsn, ...) do { \
        text = xasprintf(__VA_ARGS__); \
        local_req_add(q, cls, dsn, text, user); \
        goto done; \
    } while (0)

    r = *user ? account_lookup(user, &a) : 0;
    if (r == 0 && *user && (base = addr_unextended(user)) != NULL) {
        /* user+tag: delivered to user (recipient_delimiter). */
        r = account_lookup(base, &a);
        if (r == 1) {
            free(user);
            user = base;
        } else {
            free(base);
        }
    }
    if (r < 0) {
        msg_warn("%s: to=<%s>: cannot look up user \"%s\": %s", q->queue_id, q->recipient,
                 user, strerror(errno));
        ANSWER(4, "4.3.0", "cannot look up user \"%s\": %s", user, strerror(errno));
    }
    if (r == 0)
        ANSWER(5, "5.1.1", "unknown user: \"%s\"", user);
    /* Nothing a table or a .forward names runs as root (alias.c hands
     * those to default_privs); root's own mail goes to root's Maildir. */
    if (a->uid == 0 && command != NULL)
        ANSWER(4, "4.3.5", "refusing to run \"%s\" as root", command);
    if (command == NULL && a->uid != 0 && (long long)a->uid < conf_int("first_valid_uid"))
        ANSWER(4, "4.3.5", "mail for system account \"%s\" (uid %ld, below first_valid_uid) "
               "must be aliased to a user", user, (long)a->uid);
    if (a->home == NULL || a->home[0] != '/') {
        msg_warn("%s: to=<%s>: home directory of %s is not an absolute path", q->queue_id,
                 q->recipient, user);
        ANSWER(4, "4.3.0", "home directory of \"%s\" is not an absolute path", user);
    }
    if (command == NULL && (*mailbox == '\0' || mailbox[strlen(mailbox) - 1] != '/')) {
        msg_warn("%s: to=<%s>: home_mailbox = %s is an mbox file: mbox delivery is not "
                 "supported, use a Maildir (a path ending in /)", q->queue_id, q->recipient,
                 mailbox);
        ANSWER(4, "4.3.5", "mbox delivery not supported");
    }
    if (a->too_many_groups) {
        msg_warn("%s: to=<%s>: user %s is in too many groups", q->queue_id, q->recipient,
                 a->name);
        ANSWER(4, "4.3.0", "user \"%s\" is in too many groups", user);
    }

    j = xcalloc(1, sizeof(*j));
    j->t.user = xstrdup(a->name);
    j->t.home = xstrdup(a->home);
    j->t.uid = a->uid;
    j->t.gid = a->gid;
    j->t.groups = xmemdup(a->groups, a->ngroups * sizeof(*a->groups));
    j->t.ngroups = a->ngroups;
    j->t.queue_id = q->queue_id;
    j->t.sender = q->sender;
    j->t.recipient = q->recipient;
    j->t.mailbox = mailbox;
    j->t.target = command ? xstrdup(command) : NULL;
    j->t.no_forward = no_forward;
    j->t.queue_fd = q->queue_fd;
    j->req = q;
    j->user = xstrdup(user);
    j->queue_id = xstrdup(q->queue_id);
    j->recipient = xstrdup(q->recipient);
    base = addr_local_recipient_key(q->recipient);
    key = xasprintf("%ld:%s", (long)j->t.uid, base);
    fairq_add(local_jobs, key, &j->fq);
    free(base);
    free(key);
    q->pending++;
#undef ANSWER
done:
    free(user);
    free(text);
}

/* One recipient of a request: expand it through the aliases and start a
 * delivery job per account; its status is settled when all are done. */
static void local_recipient(struct local_conn *c, struct local_batch *b, size_t index,
                            const struct deliver_request *r)
{
    struct local_req *q = xcalloc(1, sizeof(*q));
    const char *recipient = r->rcpts[index].address;
    struct alias_result ar;
    char *local;

    q->conn = c;
    q->batch = b;
    q->index = index;
    q->queue_id = xstrdup(r->queue_id);
    q->recipient = xstrdup(recipient);
    q->sender = xstrdup(r->sender);
    q->pending = 1;             /* until every job is queued */
    c->busy++;
    local_nreqs++;
    if (!local_fd_ok(r->queue_fd)) {
        q->queue_fd = -1;
        msg_warn("%s: to=<%s>: the queue file descriptor from qmgr is not a read-only "
                 "regular file", r->queue_id, recipient);
        local_req_add(q, 4, "4.3.0", "bad queue file descriptor", "");
    } else if ((q->queue_fd = fcntl(r->queue_fd, F_DUPFD_CLOEXEC, 3)) < 0) {
        msg_warn("%s: to=<%s>: dup: %s", r->queue_id, recipient, strerror(errno));
        local_req_add(q, 4, "4.3.0", "cannot keep the queue file descriptor", "");
    } else {
        addr_split(recipient, &local, NULL);
        if (alias_expand(local, &ar) < 0) {
            if (ar.dsn_class == 4)
                msg_warn("%s: to=<%s>: dsn=%s, %s", r->queue_id, recipient, ar.dsn, ar.text);
            local_req_add(q, ar.dsn_class, ar.dsn, ar.text, local);
        } else {
            q->several = ar.nusers + ar.ntargets > 1 || ar.ntargets > 0
                         || strcasecmp(ar.users[0], local) != 0;
            local_start_all(q, &ar);
        }
        alias_result_free(&ar);
        free(local);
    }
    local_req_step(q);
}

/* One DELIVER_REQUEST: each recipient on its own; one result for all. */
static void local_request(struct local_conn *c, uint32_t reqid, struct deliver_request *r)
{
    struct local_batch *b = xcalloc(1, sizeof(*b));

    b->conn = c;
    b->reqid = reqid;
    b->queue_id = xstrdup(r->queue_id);
    b->n = b->pending = r->nrcpt;
    b->status = xcalloc(r->nrcpt, sizeof(*b->status));
    c->busy++;                  /* b itself holds the connection struct */
    for (size_t i = 0; i < r->nrcpt; i++)
        local_recipient(c, b, i, r);
    c->busy--;
    local_conn_release(c);
    local_update_reading();
    local_schedule();
}

static void local_start_all(struct local_req *q, const struct alias_result *ar)
{
    /* Every target becomes a job; they run as their slots allow.  On a
     * retry (a temporary failure of any of them) the mailboxes that have
     * it skip it (fixed names), but commands and files run again:
     * aliases(5) says so. */
    for (size_t i = 0; i < ar->nusers; i++)
        local_start(q, ar->users[i], NULL, ar->no_forward[i]);
    for (size_t i = 0; i < ar->ntargets; i++)
        local_start(q, ar->target_users[i], ar->targets[i], 1);
}

static void local_conn_read(event_loop_t *loop, int fd, int events, void *arg)
{
    struct local_conn *c = arg;
    struct deliver_request req;
    const char *why;
    ipc_msg_t *m = NULL;
    int r;

    (void)loop;
    (void)fd;
    (void)events;
    r = ipcconn_recv(c->conn, &m, &why);
    if (r == 0)
        return;
    if (r < 0) {
        if (why)
            msg_warn("bad frame from qmgr: %s; dropping the connection", why);
        local_conn_close(c);
        return;
    }
    if (m->type != DELIVER_REQUEST) {
        msg_warn("unexpected %s message from qmgr; dropping the connection",
                 ipc_type_name(m->type));
        ipc_msg_free(&m);
        local_conn_close(c);
        return;
    }
    if (deliver_request_decode(m, &req, &why) < 0) {
        msg_warn("malformed %s request from qmgr: %s; dropping the connection",
                 ipc_type_name(m->type), why);
        ipc_msg_free(&m);
        local_conn_close(c);
        return;
    }
    local_request(c, m->reqid, &req);
    ipc_msg_free(&m);
    deliver_request_free(&req);     /* the children have their own copies of the fd */
}

/* ------------------------------------------------------------ server */

static void local_accept(event_loop_t *loop, int fd)
{
    struct local_conn *c;
    const char *why;
    ipcconn_t *conn = ipcconn_accept(fd, DELIVER_PROTO_NAME, DELIVER_PROTO_VERSION, &local_owner_uid,
                                     1, LOCAL_MAX_REQUEST, &why);

    if (conn == NULL) {
        msg_warn("refusing a connection from %s", why);
        server_conn_end();
        return;
    }
    c = xcalloc(1, sizeof(*c));
    c->conn = conn;
    c->next = local_conns;
    if (local_conns)
        local_conns->prev = c;
    local_conns = c;
    event_add_fd(loop, conn->fd, local_paused ? 0 : EVENT_READ, local_conn_read, c);
}

static void local_on_term(event_loop_t *loop, int signo, void *arg)
{
    struct fairq_item *item;

    (void)loop;
    (void)signo;
    (void)arg;
    local_stopping = 1;
    local_update_reading();
    /* Jobs that never started are answered now: qmgr retries them later. */
    while ((item = fairq_any_waiting(local_jobs)) != NULL) {
        fairq_remove(local_jobs, item);
        local_job_finish(fairq_entry(item, struct local_job, fq), 4, "4.3.0",
                         "local delivery is stopping");
    }
    if (fairq_nout(local_jobs) == 0)
        exit(0);
    msg_info("stopping after %zu running deliveries", fairq_nout(local_jobs));
}

/* As root: the SRS secrets, before anything can be forked. */
static void local_pre_init(void)
{
    char *why = NULL;
    int r = srs_load(&local_srs, &why);

    if (r < 0) {
        msg_warn("SRS: %s; mail forwarded to other domains defers until it is fixed", why);
        local_srs_error = why;
    } else {
        if (r == 0 && why)
            msg_warn("%s", why);
        free(why);
    }
}

static void local_post_init(event_loop_t *loop)
{
    struct rlimit rl;
    gid_t gid;

    local_loop = loop;
    /* A delivery process frees its 64 KB queue-file window just before it
     * exits; glibc would give that back to the kernel (a brk() that
     * flushes the TLB on every CPU, measured at up to 0.1 s under load).
     * Never trim below a few MB: the children inherit the setting. */
    mallopt(M_TRIM_THRESHOLD, LOCAL_HEAP_TRIM_THRESHOLD);
    /* Every request in progress holds a descriptor of its queue file. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
        && (rlim_t)local_request_limit() + 64 > rl.rlim_cur) {
        long long batch = ((long long)rl.rlim_cur - 64) / conf_int("local_concurrency_limit");
        char value[32];

        snprintf(value, sizeof(value), "%lld", batch < 1 ? 1 : batch);
        msg_warn("local_delivery_batch_limit lowered to %s: the descriptor limit is %lld",
                 value, (long long)rl.rlim_cur);
        conf_set("local_delivery_batch_limit", value, "the descriptor limit", NULL);
    }
    deliver_proto_init();
    local_jobs = fairq_new((int)conf_int("local_destination_concurrency_limit"));
    if (privs_lookup(conf_str("mail_owner"), &local_owner_uid, &gid) < 0)
        msg_fatal("mail_owner account %s does not exist (mailctl start creates it)",
                  conf_str("mail_owner"));
    event_add_signal(loop, SIGTERM, local_on_term, NULL);
}

int main(int argc, char **argv)
{
    static const struct server_opts opts = {
        .mode = SERVER_MULTI,
        .user_param = NULL,             /* stays root: it becomes each recipient */
        .chroot = SERVER_CHROOT_NONE,
        .pre_init = local_pre_init,
        .post_init = local_post_init,
        .accept = local_accept,
    };

    server_main(argc, argv, &opts);
}
