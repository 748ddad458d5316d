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
 * Subaddressing: "user+tag" that is no account itself goes to "user"
 * (recipient_delimiter); Delivered-To: keeps the full address.
 *
 * Parameters: home_mailbox, first_valid_uid, mail_owner, recipient_delimiter,
 * alias_maps, default_privs, local_concurrency_limit,
 * local_destination_concurrency_limit, local_delivery_batch_limit, command_time_limit,
 * forward_target_limit, and those of the server skeleton
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
#include <sys/resource.h>
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

/* One delivery process and the jobs it does, in order: one job, or up to
 * local_delivery_batch_limit mailbox jobs of one (account, recipient) that
 * it writes and commits together.  The first job holds the fairq slot. */
struct local_run {
    struct local_job **jobs;
    size_t             njobs;
    pid_t              pid;
    int                pipe_fd;
    buf_t             *out;         /* the child's result records */
    int                overflow;
    int                timed_out;
    event_timer_t     *timer;
};

static event_loop_t *local_loop;
static uid_t local_owner_uid;
static struct local_conn *local_conns;  /* open connections */
/* Jobs by (account, recipient), at most local_destination_concurrency_limit
 * of one running (lib/fairq); the running ones are "out". */
static fairq_t *local_jobs;
static int local_nreqs;                 /* requests in progress */
static int local_paused;
static int local_stopping;

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

/* Job j of a run that ended with status: report its record, or that the
 * process died. */
static void local_job_done(struct local_run *run, struct local_job *j, struct local_record *r,
                           int status)
{
    char *detail;

    if (r->dsn == NULL) {
        detail = WIFSIGNALED(status) ? xasprintf("killed by signal %d", WTERMSIG(status))
                 : xasprintf("exit status %d", WEXITSTATUS(status));
        msg_warn("%s: to=<%s>: delivery process %ld %s without a result (%s)", j->queue_id,
                 j->recipient, (long)run->pid,
                 run->timed_out ? "was killed after command_time_limit" : "ended", detail);
        free(detail);
        local_job_finish(j, 4, "4.3.0", run->timed_out ? "delivery timed out"
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

/* The child is reaped: its records, one a job in order, are parsed; a bad
 * one spoils it and the rest.  The first job holds the run's fairq slot
 * and finishes last, so nothing sees the slot free (or local idle, when
 * stopping) while the run still has results to give. */
static void local_run_done(struct local_run *run, int status)
{
    struct local_record *r = xcalloc(run->njobs, sizeof(*r));
    const char *p = run->out->data, *end = p + run->out->len;
    size_t i, used;

    for (i = 0; i < run->njobs && !run->overflow; i++) {
        if (deliver_result_parse(p, (size_t)(end - p), &used, &r[i].dsn_class, &r[i].dsn,
                                 &r[i].text, &r[i].detail) < 0)
            break;
        if (r[i].dsn_class != DELIVER_FORWARD && !dsn_code_valid(r[i].dsn, r[i].dsn_class)) {
            xfree(&r[i].dsn);
            break;
        }
        p += used;
    }
    for (i = 1; i <= run->njobs; i++)     /* 1, ..., n-1, then 0 */
        local_job_done(run, run->jobs[i % run->njobs], &r[i % run->njobs], status);
    for (i = 0; i < run->njobs; i++) {
        free(r[i].dsn);
        free(r[i].text);
        free(r[i].detail);
    }
    free(r);
    buf_free(&run->out);
    free(run->jobs);
    free(run);
}

static void local_run_read(event_loop_t *loop, int fd, int events, void *arg)
{
    struct local_run *run = arg;
    char chunk[4096];
    ssize_t n;
    int status;

    (void)events;
    n = read(fd, chunk, sizeof(chunk));
    if (n > 0) {
        if (run->out->len + (size_t)n > LOCAL_RESULT_MAX * run->njobs)
            run->overflow = 1;
        else
            buf_append(run->out, chunk, (size_t)n);
        return;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    /* EOF: the child has exited (it never closes the pipe otherwise). */
    event_del_fd(loop, fd);
    close(fd);
    run->pipe_fd = -1;
    event_cancel_timer(loop, &run->timer);
    while (waitpid(run->pid, &status, 0) < 0) {
        if (errno != EINTR) {
            msg_warn("waitpid %ld: %s", (long)run->pid, strerror(errno));
            status = 0;
            break;
        }
    }
    local_run_done(run, status);
}

static void local_run_timeout(event_loop_t *loop, void *arg)
{
    struct local_run *run = arg;

    (void)loop;
    run->timer = NULL;
    run->timed_out = 1;
    kill(-run->pid, SIGKILL);   /* its process group: a command too */
    kill(run->pid, SIGKILL);    /* EOF on the pipe follows */
}

/* May job b ride along in the run of a?  Mailbox deliveries of one account
 * with the same ~/.forward rule are written and committed together. */
static int local_job_batchable(const struct local_job *a, const struct local_job *b)
{
    return a->t.target == NULL && b->t.target == NULL && a->t.uid == b->t.uid
           && a->t.no_forward == b->t.no_forward && strcmp(a->t.home, b->t.home) == 0;
}

/* Fork the delivery child of a job that got its turn, taking along the
 * jobs waiting behind it that it can do too.  0, or -1 when it could not
 * be started (the jobs are finished with a 4.3.0 result). */
static int local_job_spawn(struct local_job *j)
{
    size_t limit = (size_t)conf_int("local_delivery_batch_limit"), i;
    struct local_run *run = xcalloc(1, sizeof(*run));
    struct local_target *targets;
    struct fairq_item *next;
    int p[2], err;
    pid_t pid;
    char *text;

    run->jobs = xcalloc(limit, sizeof(*run->jobs));
    run->jobs[run->njobs++] = j;
    while (run->njobs < limit && (next = fairq_next_waiting(&j->fq)) != NULL
           && local_job_batchable(j, fairq_entry(next, struct local_job, fq))) {
        fairq_remove(local_jobs, next);
        run->jobs[run->njobs++] = fairq_entry(next, struct local_job, fq);
    }
    if (pipe2(p, O_CLOEXEC) < 0) {
        err = errno;
        goto fail;
    }
    if ((pid = fork()) < 0) {
        err = errno;
        close(p[0]);
        close(p[1]);
        goto fail;
    }
    if (pid == 0) {
        close(p[0]);
        targets = xcalloc(run->njobs, sizeof(*targets));
        for (i = 0; i < run->njobs; i++)
            targets[i] = run->jobs[i]->t;
        deliver_child(targets, run->njobs, p[1]);
    }
    close(p[1]);
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    run->pid = pid;
    run->pipe_fd = p[0];
    run->out = buf_new(0);
    event_add_fd(local_loop, p[0], EVENT_READ, local_run_read, run);
    run->timer = event_add_timer(local_loop, conf_time("command_time_limit") * 1000LL,
                                 local_run_timeout, run);
    msg_debug("%s: to=<%s>: delivery process %ld for user %s (%zu message%s)", j->queue_id,
              j->recipient, (long)pid, j->user, run->njobs, run->njobs == 1 ? "" : "s");
    return 0;
fail:
    msg_warn("%s: to=<%s>: cannot start a delivery process: %s", j->queue_id, j->recipient,
             strerror(err));
    text = xasprintf("cannot start a delivery process: %s", strerror(err));
    /* The first job holds the slot: it goes last. */
    for (i = run->njobs; i-- > 0;)
        local_job_finish(run->jobs[i], 4, "4.3.0", text);
    free(text);
    free(run->jobs);
    free(run);
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
        .post_init = local_post_init,
        .accept = local_accept,
    };

    server_main(argc, argv, &opts);
}
