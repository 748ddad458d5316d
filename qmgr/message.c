/*
 * message.c - qmgr's active set: messages come in from incoming/ (new
 * mail, released mail, mail recovered at start-up) and deferred/ (when
 * due), have their recipients handed to the transports, and leave when
 * their round is over:
 *   - every recipient final (delivered or bounced): the file is removed;
 *   - some recipients deferred: their status records are rewritten
 *     (attempts + 1, next attempt after an exponential backoff from
 *     minimal_backoff_time up to maximal_backoff_time), the file is
 *     fdatasync'ed, its mtime set to the earliest next attempt (so the
 *     deferred scan reads only files that are due) and it moves to
 *     deferred/.
 * Permanent failures, and deferrals past maximal_queue_lifetime
 * (bounce_queue_lifetime for mail from <>), become a DSN to the sender
 * (bounce.c); those recipients are marked bounced only after cleanup has
 * committed the DSN.  If the DSN cannot be submitted they are deferred
 * and tried again.  Deliveries to recipients with NOTIFY=SUCCESS are
 * reported ("delivered", or "relayed" to a server without DSN); one that
 * went to a server that announced DSN is not: that server got the NOTIFY
 * and reports itself (Postfix).  A round that leaves recipients deferred
 * after delay_warning_time may send the one "delayed" warning (bounce.c);
 * once it is committed every recipient that stays gets the
 * QUEUE_RCPT_F_DELAY_WARNED flag with its status, so it is never sent
 * twice.
 *
 * The directories are the truth: a status written here is only a hint
 * that spares a repeated delivery (local drops a repeated delivery of the
 * same message to the same recipient anyway), so a delivered recipient's
 * status is written without a sync and a file whose recipients are all
 * final is simply removed.  What must not be lost is written before the
 * file leaves active/: the fdatasync covers the deferred and bounced
 * statuses.
 *
 * Parameters: minimal_backoff_time, maximal_backoff_time,
 * maximal_queue_lifetime, bounce_queue_lifetime, qmgr_message_active_limit,
 * delay_warning_time (bounce.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "defer_log.h"
#include "deliver_proto.h"
#include "msg.h"
#include "qmgr.h"
#include "qmgr_proto.h"
#include "queue_spare.h"
#include "xalloc.h"

struct qmgr_msg_tree qmgr_active = RB_INITIALIZER(&qmgr_active);
size_t qmgr_nactive;
static int qmgr_incoming_backlog;       /* incoming/ may hold files we skipped */

static int qmgr_msg_cmp(struct qmgr_msg *a, struct qmgr_msg *b)
{
    return strcmp(a->id, b->id);
}

RB_GENERATE(qmgr_msg_tree, qmgr_msg, tree, qmgr_msg_cmp)

static struct qmgr_msg *qmgr_find(const char *id)
{
    struct qmgr_msg key;

    strlcpy(key.id, id, sizeof(key.id));
    return RB_FIND(qmgr_msg_tree, &qmgr_active, &key);
}

static size_t qmgr_active_limit(void)
{
    return (size_t)conf_int("qmgr_message_active_limit");
}

static void qmgr_msg_free(struct qmgr_msg **mp)
{
    struct qmgr_msg *m = *mp;

    if (m == NULL)
        return;
    if (m->q)
        for (size_t i = 0; i < m->q->nrcpt; i++) {
            free(m->rs[i].dsn);
            free(m->rs[i].text);
            free(m->rs[i].relay);
            free(m->rs[i].diag_type);
            free(m->rs[i].diag_text);
        }
    free(m->rs);
    queue_file_free(&m->q);
    if (m->fd >= 0)
        close(m->fd);
    free(m);
    *mp = NULL;
}

/* Take m out of the active set and free it; there may be room for more. */
static void qmgr_msg_retire(struct qmgr_msg *m)
{
    RB_REMOVE(qmgr_msg_tree, &qmgr_active, m);
    qmgr_nactive--;
    qmgr_msg_free(&m);
    if (qmgr_incoming_backlog && qmgr_nactive < qmgr_active_limit())
        qmgr_scan_incoming();
}

static int qmgr_id_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The list of valid queue IDs in dir, sorted (oldest first). */
static char **qmgr_list_dir(const char *dir, size_t *n)
{
    int dfd = openat(qmgr_qdir, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    struct dirent *de;
    char **v = NULL;
    size_t cap = 0;

    *n = 0;
    if (d == NULL) {
        msg_warn("cannot read the %s queue: %s", dir, strerror(errno));
        if (dfd >= 0)
            close(dfd);
        return NULL;
    }
    while ((de = readdir(d)) != NULL) {
        if (!queue_id_valid(de->d_name))
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 256;
            v = xreallocarray(v, cap, sizeof(*v));
        }
        v[(*n)++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (*n > 1)
        qsort(v, *n, sizeof(*v), qmgr_id_cmp);
    return v;
}

static void qmgr_list_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void qmgr_recover_active(void)
{
    size_t n, i, moved = 0;
    char **v = qmgr_list_dir(QUEUE_DIR_ACTIVE, &n);

    for (i = 0; i < n; i++) {
        if (queue_move(qmgr_qdir, QUEUE_DIR_ACTIVE, QUEUE_DIR_INCOMING, v[i], 0) == 0)
            moved++;
        else
            msg_warn("%s: cannot move it from active/ back to incoming/: %s", v[i],
                     strerror(errno));
    }
    if (moved)
        msg_info("%zu message%s from an earlier run back in the incoming queue", moved,
                 moved == 1 ? "" : "s");
    qmgr_list_free(v, n);
}

void qmgr_scan_incoming(void)
{
    size_t n, i;
    char **v = qmgr_list_dir(QUEUE_DIR_INCOMING, &n);

    qmgr_incoming_backlog = 0;
    for (i = 0; i < n; i++) {
        if (qmgr_nactive >= qmgr_active_limit()) {
            qmgr_incoming_backlog = 1;
            break;
        }
        qmgr_activate(QUEUE_DIR_INCOMING, v[i], 1);
    }
    qmgr_list_free(v, n);
}

void qmgr_scan_deferred(int force)
{
    size_t n, i;
    char **v = qmgr_list_dir(QUEUE_DIR_DEFERRED, &n);
    time_t now = time(NULL);
    int dfd = openat(qmgr_qdir, QUEUE_DIR_DEFERRED, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    for (i = 0; i < n && dfd >= 0; i++) {
        struct stat st;

        if (qmgr_nactive >= qmgr_active_limit())
            break;
        if (!force && (fstatat(dfd, v[i], &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_mtime > now))
            continue;
        qmgr_activate(QUEUE_DIR_DEFERRED, v[i], force);
    }
    if (dfd >= 0)
        close(dfd);
    qmgr_list_free(v, n);
}

static int qmgr_rcpt_final(const queue_rcpt_t *r)
{
    return r->st.status == QUEUE_RCPT_DELIVERED || r->st.status == QUEUE_RCPT_BOUNCED;
}

/* Does deferred/id have a recipient not yet final in domain? */
static int qmgr_mail_for(const char *id, const char *domain)
{
    const char *refusal;
    queue_file_t *q = NULL;
    char *why = NULL;
    int fd = queue_open(qmgr_qdir, QUEUE_DIR_DEFERRED, id, O_RDONLY, &refusal), hit = 0;

    if (fd < 0)
        return 0;
    if (queue_read(fd, &q, &why) == 0) {
        for (size_t i = 0; i < q->nrcpt && !hit; i++) {
            const char *at = strrchr(q->rcpts[i].address, '@');

            hit = !qmgr_rcpt_final(&q->rcpts[i]) && at && strcasecmp(at + 1, domain) == 0;
        }
        queue_file_free(&q);
    }
    free(why);
    close(fd);
    return hit;
}

size_t qmgr_scan_deferred_domain(const char *domain)
{
    size_t n, count = 0;
    char **v = qmgr_list_dir(QUEUE_DIR_DEFERRED, &n);

    for (size_t i = 0; i < n; i++)
        if (qmgr_mail_for(v[i], domain)) {
            count++;
            if (qmgr_nactive < qmgr_active_limit())
                qmgr_activate(QUEUE_DIR_DEFERRED, v[i], 1);
            else if (queue_move(qmgr_qdir, QUEUE_DIR_DEFERRED, QUEUE_DIR_INCOMING, v[i], 0) == 0)
                qmgr_incoming_backlog = 1;  /* due at once, when there is room */
        }
    qmgr_list_free(v, n);
    return count;
}

static void qmgr_finish(struct qmgr_msg *m);

/* A file in active/ that is no usable queue file goes to corrupt/. */
static void qmgr_to_corrupt(const char *id, const char *what, const char *why)
{
    msg_warn("%s: %s (%s); moved to corrupt/", id, what, why);
    if (queue_move(qmgr_qdir, QUEUE_DIR_ACTIVE, QUEUE_DIR_CORRUPT, id, QUEUE_SYNC) < 0)
        msg_warn("%s: cannot move it to corrupt/: %s", id, strerror(errno));
}

/* Bring dir/id into active/ and start its deliveries.  force: every
 * recipient not final is due now (new, released, flushed, recovered mail);
 * otherwise only those whose next attempt has come.  0, or -1 if the file
 * is gone (someone else took it) or could not be used (logged). */
int qmgr_activate(const char *dir, const char *id, int force)
{
    struct qmgr_msg *m;
    char *why = NULL;
    const char *refusal = NULL;
    time_t now = time(NULL);
    size_t i, due = 0;

    if (qmgr_find(id))
        return -1;
    if (queue_move(qmgr_qdir, dir, QUEUE_DIR_ACTIVE, id, 0) < 0) {
        if (errno != ENOENT)
            msg_warn("%s: cannot move it from %s/ to active/: %s", id, dir, strerror(errno));
        return -1;
    }
    m = xcalloc(1, sizeof(*m));
    strlcpy(m->id, id, sizeof(m->id));
    m->fd = queue_open(qmgr_qdir, QUEUE_DIR_ACTIVE, id, O_RDONLY, &refusal);
    if (m->fd < 0) {
        if (queue_open_refused(errno)) {
            /* A FIFO, a symbolic link, a second link, another account's
             * file: nobody we trust put it there.  Never again. */
            qmgr_to_corrupt(id, "not a queue file", refusal);
        } else {
            msg_warn("%s: cannot open it: %s", id, strerror(errno));
            queue_move(qmgr_qdir, QUEUE_DIR_ACTIVE, dir, id, 0);
        }
        qmgr_msg_free(&m);
        return -1;
    }
    if (queue_read(m->fd, &m->q, &why) < 0) {
        if (errno == EBADMSG) {
            qmgr_to_corrupt(id, "corrupt queue file", why);
        } else {
            msg_warn("%s: cannot read it: %s; leaving it in incoming/", id, strerror(errno));
            queue_move(qmgr_qdir, QUEUE_DIR_ACTIVE, QUEUE_DIR_INCOMING, id, 0);
            qmgr_incoming_backlog = 1;
        }
        free(why);
        qmgr_msg_free(&m);
        return -1;
    }
    m->rs = xcalloc(m->q->nrcpt ? m->q->nrcpt : 1, sizeof(*m->rs));
    RB_INSERT(qmgr_msg_tree, &qmgr_active, m);
    qmgr_nactive++;
    if (strcmp(dir, QUEUE_DIR_INCOMING) == 0)
        msg_info("%s: from=<%s>, size=%llu, nrcpt=%zu (queue active)", id, m->q->sender,
                 (unsigned long long)m->q->content_len, m->q->nrcpt);
    for (i = 0; i < m->q->nrcpt; i++) {
        const queue_rcpt_t *r = &m->q->rcpts[i];

        if (qmgr_rcpt_final(r))
            continue;
        if (!force && r->st.status == QUEUE_RCPT_DEFERRED && r->st.next_attempt > now)
            continue;
        m->rs[i].outcome = QMGR_OUT_WAITING;
        due++;
    }
    if (due == 0) {
        qmgr_finish(m);
        return 0;
    }
    qmgr_route_message(m);
    return 0;
}

static long long qmgr_backoff(uint32_t attempts)
{
    long long delay = conf_time("minimal_backoff_time"), max = conf_time("maximal_backoff_time");

    while (attempts-- > 1 && delay < max)
        delay *= 2;
    return delay < max ? delay : max;
}

static void qmgr_log(const struct qmgr_msg *m, size_t i, const char *status)
{
    const queue_rcpt_t *r = &m->q->rcpts[i];
    const struct qmgr_rcpt_state *s = &m->rs[i];
    struct timespec now;
    double delay;

    clock_gettime(CLOCK_REALTIME, &now);
    delay = (double)(now.tv_sec - m->q->arrival_sec)
            + ((double)now.tv_nsec / 1e9 - (double)m->q->arrival_usec / 1e6);
    if (delay < 0)
        delay = 0;
    msg_info("%s: to=<%s>%s%s%s, relay=%s, delay=%.2g, dsn=%s, status=%s (%s)", m->id,
             r->address, r->orig ? ", orig_to=<" : "", r->orig ? r->orig : "",
             r->orig ? ">" : "", s->relay ? s->relay : qmgr_transport_name(r->address), delay,
             s->dsn, status, s->text);
}

void qmgr_msg_outcome(struct qmgr_msg *m, size_t i, int dsn_class, const char *dsn,
                      const char *text, const char *relay, const char *diag_type,
                      const char *diag_text, int relayed)
{
    struct qmgr_rcpt_state *s = &m->rs[i];

    free(s->dsn);
    free(s->text);
    free(s->relay);
    free(s->diag_type);
    free(s->diag_text);
    s->dsn = xstrdup(dsn);
    s->text = xstrdup(text);
    s->relay = xstrdup(relay);
    s->diag_type = diag_type && *diag_type ? xstrdup(diag_type) : NULL;
    s->diag_text = diag_type && *diag_type ? xstrdup(diag_text ? diag_text : "") : NULL;
    s->relayed = dsn_class == 2 ? relayed : DELIVER_FINAL;
    if (dsn_class == 2) {
        s->outcome = QMGR_OUT_SENT;
        qmgr_log(m, i, "sent");
    } else if (dsn_class == 5) {
        s->outcome = QMGR_OUT_FAIL;
    } else {
        long long life = *m->q->sender ? conf_time("maximal_queue_lifetime")
                                       : conf_time("bounce_queue_lifetime");

        s->outcome = QMGR_OUT_DEFER;
        if ((long long)time(NULL) >= m->q->arrival_sec + life) {
            char *expired = xasprintf("message expired in the queue; last error: %s", text);

            free(s->dsn);
            free(s->text);
            s->dsn = xstrdup("5.4.7");
            s->text = expired;
            s->outcome = QMGR_OUT_FAIL;
        }
    }
    if (--m->jobs == 0)
        qmgr_finish(m);
}

/* Write one recipient's status, keeping its flags and adding add_flags
 * (QUEUE_RCPT_F_*).  -1 logged. */
static int qmgr_set_status(int wfd, struct qmgr_msg *m, size_t i, int status, const char *dsn,
                           uint32_t attempts, int64_t next, unsigned add_flags)
{
    queue_status_t st = {.status = status, .attempts = attempts, .next_attempt = next,
                         .flags = m->q->rcpts[i].st.flags | add_flags};

    strlcpy(st.dsn, dsn ? dsn : "", sizeof(st.dsn));
    if (queue_set_rcpt_status(wfd, m->q->rcpts[i].status_offset, &st, 0) < 0) {
        msg_warn("%s: cannot record the status of <%s>: %s", m->id, m->q->rcpts[i].address,
                 strerror(errno));
        return -1;
    }
    m->q->rcpts[i].st = st;
    return 0;
}

/* Does the sender want a DSN of this kind (RFC 3461 NOTIFY)? */
static int qmgr_notify_wanted(unsigned notify, int failure)
{
    if (notify & QUEUE_NOTIFY_NEVER)
        return 0;
    if (notify == 0)
        return failure;                     /* the default: failures only */
    return (notify & (failure ? QUEUE_NOTIFY_FAILURE : QUEUE_NOTIFY_SUCCESS)) != 0;
}

static void qmgr_defer_log_remove(const char *id)
{
    if (defer_log_remove(qmgr_qdir, id) < 0)
        msg_warn("%s: cannot remove %s/%s: %s", id, DEFER_LOG_DIR, id, strerror(errno));
}

/* Why the recipients that stay are deferred: this round's reasons, and
 * the earlier ones of recipients not tried this round (defer_log.h). */
static void qmgr_defer_log_write(struct qmgr_msg *m)
{
    struct defer_log_entry *old, *e = xcalloc(m->q->nrcpt ? m->q->nrcpt : 1, sizeof(*e));
    size_t nold, n = 0;

    defer_log_read(qmgr_qdir, m->id, geteuid(), &old, &nold);
    for (size_t i = 0; i < m->q->nrcpt; i++) {
        const queue_rcpt_t *r = &m->q->rcpts[i];
        const struct qmgr_rcpt_state *s = &m->rs[i];
        const struct defer_log_entry *was;

        if (s->outcome == QMGR_OUT_DEFER) {
            e[n].address = r->address;
            e[n].dsn = s->dsn;
            e[n++].text = s->text;
        } else if (s->outcome == QMGR_OUT_NONE && r->st.status == QUEUE_RCPT_DEFERRED
                   && (was = defer_log_find(old, nold, r->address)) != NULL) {
            e[n++] = *was;
        }
    }
    if (defer_log_write(qmgr_qdir, m->id, e, n) < 0)
        msg_warn("%s: cannot write %s/%s: %s", m->id, DEFER_LOG_DIR, m->id, strerror(errno));
    free(e);
    defer_log_free(&old, nold);
}

/* The round is over (no jobs left): settle every recipient. */
static void qmgr_finish(struct qmgr_msg *m)
{
    size_t n = m->q->nrcpt, i, nfail = 0, nsucc = 0, live = 0;
    size_t *fail = xcalloc(n ? n : 1, sizeof(*fail)), *succ = xcalloc(n ? n : 1, sizeof(*succ));
    unsigned char *stays = xcalloc(n ? n : 1, 1);
    unsigned warned = 0;                /* QUEUE_RCPT_F_DELAY_WARNED for who stays */
    time_t now = time(NULL);
    int64_t earliest = 0;
    int wfd = -1, bounce_ok = 1;

    if (m->action == QMGR_ACT_DELETE || m->action == QMGR_ACT_HOLD) {
        int hold = m->action == QMGR_ACT_HOLD;

        if (hold ? queue_move(qmgr_qdir, QUEUE_DIR_ACTIVE, QUEUE_DIR_HOLD, m->id, QUEUE_SYNC)
                 : queue_remove(qmgr_qdir, QUEUE_DIR_ACTIVE, m->id))
            msg_warn("%s: cannot %s it: %s", m->id, hold ? "hold" : "delete", strerror(errno));
        else
            msg_info(hold ? "%s: on hold by the administrator" : "%s: removed (deleted by the "
                     "administrator)", m->id);
        if (!hold)
            qmgr_defer_log_remove(m->id);
        goto out;
    }
    for (i = 0; i < n; i++) {
        struct qmgr_rcpt_state *s = &m->rs[i];

        if (s->outcome == QMGR_OUT_FAIL && qmgr_notify_wanted(m->q->rcpts[i].notify, 1))
            fail[nfail++] = i;
        /* A server that announced DSN got the NOTIFY: it reports. */
        if (s->outcome == QMGR_OUT_SENT && m->q->rcpts[i].notify & QUEUE_NOTIFY_SUCCESS
            && s->relayed != DELIVER_RELAYED_DSN)
            succ[nsucc++] = i;
    }
    if (nfail)
        bounce_ok = qmgr_bounce(m, fail, nfail, DSN_FAILED) == 0;
    if (nsucc && qmgr_bounce(m, succ, nsucc, DSN_SUCCESS) < 0)
        msg_warn("%s: the success notification was not sent", m->id);

    /* Which recipients stay in the queue? */
    for (i = 0; i < n; i++) {
        const queue_rcpt_t *r = &m->q->rcpts[i];
        enum qmgr_outcome o = m->rs[i].outcome;

        if (o == QMGR_OUT_FAIL && !bounce_ok)
            o = m->rs[i].outcome = QMGR_OUT_DEFER;
        if (o == QMGR_OUT_NONE ? !qmgr_rcpt_final(r) : o == QMGR_OUT_DEFER) {
            stays[i] = 1;
            live++;
        }
    }
    if (live == 0) {
        for (i = 0; i < n; i++)
            if (m->rs[i].outcome == QMGR_OUT_FAIL)
                qmgr_log(m, i, "bounced");
        if (queue_spare_retire(qmgr_qdir, QUEUE_DIR_ACTIVE, m->id, m->q->size) < 0)
            msg_warn("%s: cannot remove it: %s", m->id, strerror(errno));
        else
            msg_info("%s: removed", m->id);
        qmgr_defer_log_remove(m->id);
        goto out;
    }
    qmgr_defer_log_write(m);
    if (qmgr_delay_warning(m, stays) == 1)
        warned = QUEUE_RCPT_F_DELAY_WARNED;

    /* Some stay: record every outcome of this round, then deferred/. */
    wfd = queue_open(qmgr_qdir, QUEUE_DIR_ACTIVE, m->id, O_RDWR, NULL);
    if (wfd < 0) {
        msg_warn("%s: cannot open it to record the outcome: %s", m->id, strerror(errno));
        goto out;           /* it stays in active/: the next start retries it */
    }
    for (i = 0; i < n; i++) {
        const queue_rcpt_t *r = &m->q->rcpts[i];
        struct qmgr_rcpt_state *s = &m->rs[i];

        switch (s->outcome) {
        case QMGR_OUT_SENT:
            qmgr_set_status(wfd, m, i, QUEUE_RCPT_DELIVERED, s->dsn, r->st.attempts + 1, 0, 0);
            break;
        case QMGR_OUT_FAIL:
            qmgr_log(m, i, "bounced");
            qmgr_set_status(wfd, m, i, QUEUE_RCPT_BOUNCED, s->dsn, r->st.attempts + 1, 0, 0);
            break;
        case QMGR_OUT_DEFER: {
            uint32_t attempts = r->st.attempts + 1;
            int64_t next = (int64_t)now + qmgr_backoff(attempts);

            qmgr_log(m, i, "deferred");
            qmgr_set_status(wfd, m, i, QUEUE_RCPT_DEFERRED, s->dsn, attempts, next, warned);
            if (earliest == 0 || next < earliest)
                earliest = next;
            break;
        }
        default:
            /* Not tried this round: only the warning's flag is new. */
            if (stays[i] && warned && !(r->st.flags & warned))
                qmgr_set_status(wfd, m, i, r->st.status, r->st.dsn, r->st.attempts,
                                r->st.next_attempt, warned);
            if (!qmgr_rcpt_final(r) && r->st.next_attempt
                && (earliest == 0 || r->st.next_attempt < earliest))
                earliest = r->st.next_attempt;
            break;
        }
    }
    if (earliest == 0)
        earliest = (int64_t)now + conf_time("minimal_backoff_time");
    if (fdatasync(wfd) < 0) {
        msg_warn("%s: cannot sync the outcome: %s; it stays active", m->id, strerror(errno));
        goto out;
    }
    {
        struct timespec ts[2] = {{.tv_sec = (time_t)earliest}, {.tv_sec = (time_t)earliest}};

        if (futimens(wfd, ts) < 0)
            msg_warn("%s: cannot set its retry time: %s", m->id, strerror(errno));
    }
    if (queue_move(qmgr_qdir, QUEUE_DIR_ACTIVE, QUEUE_DIR_DEFERRED, m->id, 0) < 0)
        msg_warn("%s: cannot move it to deferred/: %s", m->id, strerror(errno));

out:
    if (wfd >= 0)
        close(wfd);
    free(fail);
    free(succ);
    free(stays);
    qmgr_msg_retire(m);
}

/* ---- control ---- */

/* Act on the active message m: now if nothing is in flight, else later. */
static void qmgr_ctl_active(struct qmgr_msg *m, int action)
{
    m->action = action;
    qmgr_route_cancel(m);
    qmgr_jobs_cancel(m);
    if (m->jobs == 0)
        qmgr_finish(m);
}

/* Apply fn to id (or every message if id is QMGR_ALL) in the given
 * directories; the active set is handled by the caller. */
static size_t qmgr_ctl_dirs(const char *id, const char *const *dirs,
                            int (*fn)(const char *dir, const char *id))
{
    size_t count = 0;

    for (; *dirs; dirs++) {
        size_t n, i;
        char **v;

        if (strcmp(id, QMGR_ALL) != 0) {
            if (fn(*dirs, id) == 0)
                count++;
            continue;
        }
        v = qmgr_list_dir(*dirs, &n);
        for (i = 0; i < n; i++)
            if (fn(*dirs, v[i]) == 0)
                count++;
        qmgr_list_free(v, n);
    }
    return count;
}

static int qmgr_ctl_remove(const char *dir, const char *id)
{
    if (queue_remove(qmgr_qdir, dir, id) < 0)
        return -1;
    msg_info("%s: removed (deleted by the administrator)", id);
    qmgr_defer_log_remove(id);
    return 0;
}

static int qmgr_ctl_to_hold(const char *dir, const char *id)
{
    if (queue_move(qmgr_qdir, dir, QUEUE_DIR_HOLD, id, QUEUE_SYNC) < 0)
        return -1;
    msg_info("%s: on hold by the administrator", id);
    return 0;
}

static int qmgr_ctl_from_hold(const char *dir, const char *id)
{
    if (queue_move(qmgr_qdir, dir, QUEUE_DIR_INCOMING, id, QUEUE_SYNC) < 0)
        return -1;
    msg_info("%s: released from hold", id);
    if (qmgr_nactive < qmgr_active_limit())
        qmgr_activate(QUEUE_DIR_INCOMING, id, 1);
    else
        qmgr_incoming_backlog = 1;
    return 0;
}

static size_t qmgr_ctl_active_set(const char *id, int action)
{
    struct qmgr_msg *m, *next;
    size_t count = 0;

    if (strcmp(id, QMGR_ALL) != 0) {
        if ((m = qmgr_find(id)) == NULL)
            return 0;
        qmgr_ctl_active(m, action);
        return 1;
    }
    for (m = RB_MIN(qmgr_msg_tree, &qmgr_active); m; m = next) {
        next = RB_NEXT(qmgr_msg_tree, &qmgr_active, m);
        count++;
        qmgr_ctl_active(m, action);
    }
    return count;
}

size_t qmgr_ctl_delete(const char *id)
{
    static const char *const dirs[] = {QUEUE_DIR_INCOMING, QUEUE_DIR_DEFERRED, QUEUE_DIR_HOLD,
                                       NULL};
    size_t count = qmgr_ctl_active_set(id, QMGR_ACT_DELETE);

    return count + qmgr_ctl_dirs(id, dirs, qmgr_ctl_remove);
}

size_t qmgr_ctl_hold(const char *id)
{
    static const char *const dirs[] = {QUEUE_DIR_INCOMING, QUEUE_DIR_DEFERRED, NULL};
    size_t count = qmgr_ctl_active_set(id, QMGR_ACT_HOLD);

    return count + qmgr_ctl_dirs(id, dirs, qmgr_ctl_to_hold);
}

size_t qmgr_ctl_release(const char *id)
{
    static const char *const dirs[] = {QUEUE_DIR_HOLD, NULL};

    return qmgr_ctl_dirs(id, dirs, qmgr_ctl_from_hold);
}
