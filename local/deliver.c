/*
 * deliver - local's delivery child: becomes the recipient for good, then
 * writes one message into the recipient's Maildir, or (an alias's
 * |command target) pipes it into the command run by /bin/sh with a clean
 * environment, and maps the command's exit status (sysexits) to the result.
 *
 * Interface: deliver_child(targets, n, result_fd, job_fd),
 * deliver_result_parse().
 *
 * Kept processes: a child for the mailbox of an account other than root
 * gets job_fd; after a run it reports, closes the run's queue files, and
 * waits there for the parent's next run for the same account (local.h),
 * which it does with the privileges it already has (it never had any
 * others since the drop): reading ~/.forward again, entering the home
 * directory again.  EOF on job_fd (the parent's idle timer, its exit) ends
 * it.  Anything but a clean run ends it as before, with the run's results.
 *
 * Order (DESIGN.md §1): restore signals, close every descriptor except
 * stdio, the log file, the result pipe and the queue file; set umask 077;
 * take the recipient's groups (getgrouplist), gid and uid for real, saved
 * and effective ids (privs_drop_ids, which verifies the drop), check once
 * more that setuid(0) fails, and make the process non-dumpable (the user
 * must not ptrace it: it holds the queue file).  Root's own mailbox is
 * the one delivery that stays root (no |command or /file target ever runs
 * as root): its home directory and Maildir must then be root's alone, all
 * the way up (lib/trustpath), or the delivery defers.  Only then chdir() to the home directory,
 * validate the queue file (queue_read), create the Maildir if it is missing
 * and deliver into it (maildir_deliver, content streamed from the queue
 * file with queue_content_copy, never whole in memory).
 *
 * A forwarded copy (a ">address" target, run as mail_owner) gets an SRS
 * envelope sender when srs_forward_sender() says so; every other child
 * wipes the SRS secrets it inherited before it becomes anybody.
 *
 * Failure modes: every outcome is one result record on the pipe and
 * _exit(0).  A failed privilege drop is fatal in privs (our msg_fatal hook
 * still reports class 4); root that can be regained is a panic after a
 * class 4 record.  Corrupt queue file: 4.3.0; a full disk or quota: 4.2.2;
 * other I/O errors: 4.3.0; a Delivered-To loop: 5.4.6.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cleanup_proto.h"
#include "conf.h"
#include "ipc.h"
#include "event.h"
#include "local.h"
#include "maildir.h"
#include "msg.h"
#include "privs.h"
#include "queue.h"
#include "trustpath.h"
#include "xalloc.h"


static int deliver_fd = -1;         /* the result pipe */

/* One result a target, written in target order when the process ends. */
struct deliver_outcome {
    int   set;
    int   dsn_class;
    char *dsn, *text, *detail;
};
static struct deliver_outcome *deliver_outcomes;
static size_t deliver_ntargets;
static int deliver_reported;

/* Append one record to b. */
static void deliver_add_record(buf_t *b, int dsn_class, const char *dsn, const char *text,
                               const char *detail)
{
    buf_putc(b, dsn_class == DELIVER_FORWARD ? 'F' : '0' + dsn_class);
    buf_putc(b, '\0');
    buf_append(b, dsn, strlen(dsn) + 1);
    /* Keep the record within the limit: cut the text and the detail (a
     * forward list is never longer: forward_read() checks). */
    buf_append(b, text, strnlen(text, dsn_class == DELIVER_FORWARD ? DELIVER_FORWARD_LIST_MAX
                                                                   : DELIVER_TEXT_MAX));
    buf_putc(b, '\0');
    buf_append(b, detail, strnlen(detail, DELIVER_TEXT_MAX));
    buf_putc(b, '\0');
}

/* Target i's own result (kept until the end: records go out in order). */
static void deliver_set(size_t i, int dsn_class, const char *dsn, const char *text,
                        const char *detail)
{
    struct deliver_outcome *o = &deliver_outcomes[i];

    o->set = 1;
    o->dsn_class = dsn_class;
    o->dsn = xstrdup(dsn);
    o->text = xstrdup(text);
    o->detail = xstrdup(detail ? detail : "");
}

/* Every record, once, in one write: the targets' own results, this one
 * for the rest; then, from a kept process that waits for its next run,
 * LOCAL_PROC_WAITS.  -1 if the parent could not be told. */
static int deliver_report_run(int dsn_class, const char *dsn, const char *text,
                              const char *detail, int waits)
{
    buf_t *b;
    int r;

    if (deliver_reported)
        return 0;
    deliver_reported = 1;
    b = buf_new(0);
    for (size_t i = 0; i < deliver_ntargets; i++) {
        const struct deliver_outcome *o = &deliver_outcomes[i];

        if (o->set)
            deliver_add_record(b, o->dsn_class, o->dsn, o->text, o->detail);
        else
            deliver_add_record(b, dsn_class, dsn, text, detail);
    }
    if (waits)
        buf_putc(b, LOCAL_PROC_WAITS);
    r = deliver_write_all(deliver_fd, b->data, b->len);
    buf_free(&b);
    return r;
}

static void deliver_report(int dsn_class, const char *dsn, const char *text, const char *detail)
{
    deliver_report_run(dsn_class, dsn, text, detail, 0);
}

_Noreturn void deliver_exit(int dsn_class, const char *dsn, const char *text, const char *detail)
{
    deliver_report(dsn_class, dsn, text, detail ? detail : "");
    _exit(0);
}

/* msg_fatal() in this process (a failed privilege drop, out of memory). */
static void deliver_fatal_hook(void)
{
    deliver_report(4, "4.3.0", "local delivery process failed", "fatal error, see above");
}

/* Become the recipient: its groups, gid and uid, for good. */
static void deliver_become(const struct local_target *t)
{
    if (t->uid == 0) {
        /* Root's own mailbox (local.c allows nothing else as root): stay
         * root, but never dumpable, and only where nobody else can steer
         * the write. */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
            msg_fatal("%s: prctl(PR_SET_DUMPABLE): %s", t->queue_id, strerror(errno));
        if (t->target != NULL)
            msg_panic("%s: a %s target for root", t->queue_id, t->target);
        return;
    }
    privs_drop_ids(t->uid, t->gid, t->groups, t->ngroups, NULL);
    /* The kernel makes us non-dumpable on the uid change unless
     * fs.suid_dumpable says otherwise; the user must never ptrace a process
     * that holds the queue file (other recipients, Bcc): say so ourselves. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        msg_fatal("%s: prctl(PR_SET_DUMPABLE): %s", t->queue_id, strerror(errno));
    if (setuid(0) == 0 || privs_verify_dropped() < 0) {
        deliver_report(4, "4.3.0", "local delivery process could regain root", "");
        msg_panic("%s: delivery process for %s could regain root after the drop",
                  t->queue_id, t->user);
    }
}

struct deliver_source {
    const queue_file_t *q;
};

static int deliver_source(void *ctx, int (*fn)(void *, const void *, size_t), void *fnctx)
{
    return queue_content_copy(((struct deliver_source *)ctx)->q, fn, fnctx);
}

/* The Maildir name of this message for this recipient: the same on every
 * attempt, so a delivery repeated after a crash (local or qmgr killed
 * between the rename into new/ and qmgr recording the result) finds the
 * first copy instead of making a second.  "SECONDS.Q<queue id>R<hash of
 * the recipient>.<host>": unique because queue IDs are unique in the spool
 * and one message lists a recipient once. */
static char *deliver_name(const queue_file_t *q, const struct local_target *t)
{
    char *unique = maildir_unique(), *host = strchr(unique, '.');
    uint64_t h = 14695981039346656037ULL;       /* FNV-1a 64 */
    const char *p;
    char *name;

    for (p = t->recipient; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    host = host ? strchr(host + 1, '.') : NULL; /* after "SECONDS.UNIQUE" */
    name = xasprintf("%lld.Q%sR%016llx%s", (long long)q->arrival_sec, t->queue_id,
                     (unsigned long long)h, host ? host : ".localhost");
    free(unique);
    return name;
}

static int deliver_discard(void *ctx, const void *data, size_t len)
{
    (void)ctx;
    (void)data;
    (void)len;
    return 0;
}

int deliver_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int deliver_write_fd(void *ctx, const void *data, size_t len)
{
    return deliver_write_all(*(int *)ctx, data, len);
}

/* sysexits(3) codes of a command, as Postfix maps them. */
static _Noreturn void deliver_command_status(int status, const char *command)
{
    static const struct { int code; int cls; const char *dsn; const char *what; } map[] = {
        { 64, 5, "5.3.0", "command line usage error" }, { 65, 5, "5.6.0", "data format error" },
        { 66, 5, "5.3.0", "cannot open input" }, { 67, 5, "5.1.1", "user unknown" },
        { 68, 5, "5.1.2", "host name unknown" }, { 69, 5, "5.3.0", "service unavailable" },
        { 70, 5, "5.3.0", "internal software error" }, { 71, 4, "4.3.0", "system resource problem" },
        { 72, 5, "5.3.0", "critical OS file missing" }, { 73, 5, "5.2.0", "cannot create output file" },
        { 74, 5, "5.3.0", "input/output error" }, { 75, 4, "4.3.0", "temporary failure" },
        { 76, 5, "5.5.0", "remote error in protocol" }, { 77, 5, "5.7.0", "permission denied" },
        { 78, 5, "5.3.5", "configuration error" },
    };
    char *text;
    int code;

    if (WIFSIGNALED(status)) {
        text = xasprintf("command \"%s\" was killed by signal %d", command, WTERMSIG(status));
        deliver_exit(4, "4.3.0", text, NULL);
    }
    code = WEXITSTATUS(status);
    if (code == 0)
        deliver_exit(2, "2.0.0", "delivered to command", command);
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (map[i].code == code) {
            text = xasprintf("command \"%s\" exited with status %d (%s)", command, code,
                             map[i].what);
            deliver_exit(map[i].cls, map[i].dsn, text, NULL);
        }
    }
    text = xasprintf("command \"%s\" exited with status %d", command, code);
    deliver_exit(5, "5.3.0", text, NULL);
}

/* Pipe the message into the command run by /bin/sh, with a clean
 * environment, in the account's home directory (or /). */
static _Noreturn void deliver_command(const struct local_target *t, const char *command,
                                      struct maildir_delivery *d)
{
    int p[2], status, r;
    pid_t pid;
    char *env[9], *text;

    if (maildir_convert(d, deliver_discard, NULL) == MAILDIR_LOOP) {
        text = xasprintf("mail forwarding loop for %s", t->recipient);
        deliver_exit(5, "5.4.6", text, NULL);
    }
    if (pipe(p) < 0)
        deliver_exit(4, "4.3.0", "cannot make a pipe for the command", NULL);
    env[0] = "PATH=/usr/local/bin:/usr/bin:/bin";
    env[1] = "SHELL=/bin/sh";
    env[2] = xasprintf("HOME=%s", t->home);
    env[3] = xasprintf("LOGNAME=%s", t->user);
    env[4] = xasprintf("USER=%s", t->user);
    env[5] = xasprintf("SENDER=%s", t->sender);
    env[6] = xasprintf("RECIPIENT=%s", t->recipient);
    env[7] = xasprintf("QUEUE_ID=%s", t->queue_id);
    env[8] = NULL;
    signal(SIGPIPE, SIG_IGN);
    if ((pid = fork()) < 0)
        deliver_exit(4, "4.3.0", "cannot fork the command", NULL);
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);

        signal(SIGPIPE, SIG_DFL);
        dup2(p[0], 0);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        execle("/bin/sh", "sh", "-c", command, (char *)NULL, env);
        _exit(127);
    }
    close(p[0]);
    r = maildir_convert(d, deliver_write_fd, &p[1]);
    /* A command that stops reading early (EPIPE) is its own business:
     * its exit status decides. */
    (void)r;
    close(p[1]);
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            deliver_exit(4, "4.3.0", "lost the command process", NULL);
    deliver_command_status(status, command);
}

static int deliver_memfd_out(void *ctx, const void *data, size_t len)
{
    return deliver_write_fd(ctx, data, len);
}

/* The envelope sender of the copy forwarded to address: t's, or its SRS
 * form (fresh in *fresh) when the sender and address are both of other
 * domains (srs_forward_sender).  With SRS on but its secret file not
 * usable, such a forward defers. */
static const char *deliver_forward_sender(const struct local_target *t, const char *address,
                                          char **fresh)
{
    const char *why = NULL, *sat = strrchr(t->sender, '@'), *rat = strrchr(address, '@');
    char *text;
    int r;

    *fresh = NULL;
    if (local_srs == NULL) {
        if (local_srs_error != NULL && *t->sender && !srs_domain_is_ours(sat ? sat + 1 : "")
            && !srs_domain_is_ours(rat ? rat + 1 : "")) {
            text = xasprintf("cannot rewrite the sender for forwarding to %s (SRS): %s",
                             address, local_srs_error);
            deliver_exit(4, "4.3.0", text, NULL);
        }
        return t->sender;
    }
    r = srs_forward_sender(local_srs, t->sender, address, time(NULL), fresh, &why);
    if (r < 0)
        msg_warn("%s: from=<%s>: sender not rewritten for forwarding to %s (SRS): %s",
                 t->queue_id, t->sender, address, why);
    return r > 0 ? *fresh : t->sender;
}

/* Forward the message to a remote address: a new message through cleanup
 * (we run as mail_owner), with our Delivered-To: on top so that a loop
 * back to us is seen, the same envelope sender or its SRS form
 * (deliver_forward_sender), and the alias as the original recipient. */
static _Noreturn void deliver_forward(const struct local_target *t, const char *address,
                                      const queue_file_t *q)
{
    struct cleanup_request r;
    struct cleanup_result res;
    struct maildir_delivery dry = { .sender = t->sender, .recipient = t->recipient };
    struct deliver_source src = { q };
    const char *why = NULL, *sender;
    char *sock, *text, *hdr, *srs_sender;
    int fd, cls;

    dry.source = deliver_source;
    dry.source_ctx = &src;
    if (maildir_convert(&dry, deliver_discard, NULL) == MAILDIR_LOOP) {
        text = xasprintf("mail forwarding loop for %s", t->recipient);
        deliver_exit(5, "5.4.6", text, NULL);
    }
    fd = memfd_create("posthorn-forward", MFD_CLOEXEC);
    hdr = xasprintf("Delivered-To: %s\r\n", t->recipient);
    if (fd < 0 || deliver_write_fd(&fd, hdr, strlen(hdr)) < 0
        || queue_content_copy(q, deliver_memfd_out, &fd) != 0)
        deliver_exit(4, "4.3.0", "cannot copy the message for forwarding", NULL);
    sender = deliver_forward_sender(t, address, &srs_sender);
    cleanup_proto_init();
    cleanup_request_init(&r);
    r.sender = xstrdup(sender);
    r.envid = xstrdup("");
    r.ret = QUEUE_RET_NONE;
    cleanup_request_attr(&r, QUEUE_ATTR_PROTOCOL, "local");
    cleanup_request_rcpt(&r, address, t->recipient, "", 0);
    r.content_len = (uint64_t)lseek(fd, 0, SEEK_CUR);
    r.content_fd = fd;
    sock = xasprintf("%s/%s", conf_str("queue_directory"), CLEANUP_SOCKET);
    fd = ipc_client_open(sock, CLEANUP_PROTO_NAME, CLEANUP_PROTO_VERSION, CLEANUP_TIMEOUT_MS, &why);
    if (fd < 0) {
        text = xasprintf("cannot reach cleanup to forward to %s: %s", address,
                         why ? why : strerror(errno));
        deliver_exit(4, "4.3.0", text, NULL);
    }
    if (cleanup_submit(fd, &r, &res, CLEANUP_TIMEOUT_MS) < 0) {
        text = xasprintf("lost cleanup while forwarding to %s: %s", address, strerror(errno));
        deliver_exit(4, "4.3.0", text, NULL);
    }
    if (res.code == 250) {
        text = srs_sender ? xasprintf("forwarded to %s as %s, sender rewritten to %s", address,
                                      res.text, srs_sender)
                          : xasprintf("forwarded to %s as %s", address, res.text);
        deliver_exit(2, "2.0.0", text, NULL);
    }
    cls = res.code >= 500 ? 5 : 4;
    text = xasprintf("forwarding to %s refused: %d %s %s", address, res.code, res.dsn, res.text);
    deliver_exit(cls, cls == 5 ? "5.3.0" : "4.3.0", text, NULL);
}

/* mbox output: whole lines, "From " at a line start (after any '>')
 * quoted with one more '>' (mboxrd), so readers split messages right. */
struct deliver_mbox {
    int    fd;
    buf_t *line;
};

static int deliver_mbox_line(struct deliver_mbox *m)
{
    const char *p = m->line->data;
    size_t n = m->line->len, i = 0;

    while (i < n && p[i] == '>')
        i++;
    if (n - i >= 5 && memcmp(p + i, "From ", 5) == 0 && deliver_write_fd(&m->fd, ">", 1) < 0)
        return -1;
    if (deliver_write_fd(&m->fd, p, n) < 0)
        return -1;
    buf_reset(m->line);
    return 0;
}

static int deliver_mbox_out(void *ctx, const void *data, size_t len)
{
    struct deliver_mbox *m = ctx;
    const char *p = data, *end = p + len, *nl;

    while (p < end) {
        nl = memchr(p, '\n', (size_t)(end - p));
        buf_append(m->line, p, nl ? (size_t)(nl + 1 - p) : (size_t)(end - p));
        if (nl == NULL)
            break;
        if (deliver_mbox_line(m) < 0)
            return -1;
        p = nl + 1;
    }
    return 0;
}

/* Append the message to a file in mbox format, under an fcntl lock; on any
 * error the file is cut back to its old size, so a retry appends once. */
static _Noreturn void deliver_file(const struct local_target *t, const char *path,
                                   struct maildir_delivery *d)
{
    struct deliver_mbox m;
    struct flock lk = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    struct stat st;
    char date[64], *text;
    time_t now = time(NULL);
    int r, err;

    if (maildir_convert(d, deliver_discard, NULL) == MAILDIR_LOOP) {
        text = xasprintf("mail forwarding loop for %s", t->recipient);
        deliver_exit(5, "5.4.6", text, NULL);
    }
    /* O_NONBLOCK: a FIFO (without a reader: ENXIO) or a device cannot
     * hold the delivery; either is refused below. */
    m.fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC
                | O_NOCTTY, 0600);
    if (m.fd < 0) {
        err = errno;
        text = xasprintf("cannot open file %s: %s", path, strerror(err));
        deliver_exit(err == ELOOP || err == ENXIO ? 5 : 4,
                     err == ELOOP || err == ENXIO ? "5.2.0" : "4.2.0", text, NULL);
    }
    if (fstat(m.fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
        text = xasprintf("refusing to append to %s: not a regular file with one link", path);
        deliver_exit(5, "5.2.0", text, NULL);
    }
    fcntl(m.fd, F_SETFL, O_APPEND);
    /* Whoever holds the lock (the user's mail reader, or a slow other
     * delivery) gets deliver_lock_attempts tries, deliver_lock_delay
     * apart; then the delivery defers instead of holding this process,
     * and with it the rest of its request, for command_time_limit. */
    for (int attempt = 1; fcntl(m.fd, F_SETLK, &lk) < 0; attempt++) {
        err = errno;
        if ((err != EAGAIN && err != EACCES && err != EINTR)
            || attempt >= conf_int("deliver_lock_attempts")) {
            text = err == EAGAIN || err == EACCES
                       ? xasprintf("cannot lock file %s: still locked by another process after "
                                   "%d attempts", path, attempt)
                       : xasprintf("cannot lock file %s: %s", path, strerror(err));
            deliver_exit(4, "4.2.0", text, NULL);
        }
        sleep((unsigned)conf_time("deliver_lock_delay"));
    }
    if (fstat(m.fd, &st) < 0) {
        text = xasprintf("cannot lock file %s: %s", path, strerror(errno));
        deliver_exit(4, "4.2.0", text, NULL);
    }
    m.line = buf_new(0);
    strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", localtime(&now));
    text = xasprintf("From %s %s\n", *t->sender ? t->sender : "MAILER-DAEMON", date);
    r = deliver_write_fd(&m.fd, text, strlen(text));
    free(text);
    if (r == 0)
        r = maildir_convert(d, deliver_mbox_out, &m);
    if (r == 0 && m.line->len > 0)
        r = buf_append(m.line, "\n", 1) < 0 ? -1 : deliver_mbox_line(&m);
    if (r == 0)
        r = deliver_write_fd(&m.fd, "\n", 1);      /* the empty line between messages */
    if (r == 0)
        r = fsync(m.fd);
    err = errno;
    if (r != 0) {
        if (ftruncate(m.fd, st.st_size) < 0)
            msg_warn("%s: cannot cut %s back after a failed delivery", t->queue_id, path);
        text = xasprintf("cannot append to file %s: %s", path, strerror(err));
        deliver_exit(4, err == ENOSPC || err == EDQUOT ? "4.2.2" : "4.3.0", text, NULL);
    }
    deliver_exit(2, "2.0.0", "delivered to file", path);
}

/* Root writes its own Maildir only below directories that no other
 * account can change (and through symbolic links of root's only): else
 * the delivery defers. */
static void deliver_root_trusted(const struct local_target *t, const char *path,
                                 const char *detail)
{
    const uid_t root = 0;
    buf_t *errs = buf_new(0);
    char *text;

    if (trustpath_check(path, TRUSTPATH_DIR, &root, 1, errs) == 0) {
        buf_free(&errs);
        return;
    }
    buf_truncate(errs, errs->len - (errs->len && errs->data[errs->len - 1] == '\n'));
    msg_warn("%s: to=<%s>: not delivering root's mail: %s", t->queue_id, t->recipient,
             buf_cstr(errs));
    text = xasprintf("root's mailbox is not root's alone: %s", buf_cstr(errs));
    buf_free(&errs);
    deliver_exit(4, "4.3.0", text, detail);
}

/* Read target t's queue file: 0, or -1 with *text (fresh) the reason. */
static int deliver_queue_read(const struct local_target *t, queue_file_t **q, char **text)
{
    char *why = NULL;
    int err;

    if (queue_read(t->queue_fd, q, &why) == 0)
        return 0;
    err = errno;
    if (err == EBADMSG)
        *text = xasprintf("corrupt queue file: %s", why ? why : "?");
    else
        *text = xasprintf("cannot read queue file: %s", why ? why : strerror(err));
    free(why);
    return -1;
}

/* Target i's result from maildir_deliver_write or the commit: r, errno
 * err, path (success) or why (failure). */
static void deliver_mailbox_outcome(size_t i, const struct local_target *t, int r, int err,
                                    const char *path, const char *why, const char *detail)
{
    char *text, *where;

    if (r == 0 || r == MAILDIR_DUPLICATE) {
        where = xasprintf("%s/%s", t->home, path);
        deliver_set(i, 2, "2.0.0", r == 0 ? "delivered to maildir"
                    : "delivered to maildir (already there: a repeated delivery)", where);
        free(where);
        return;
    }
    if (r == MAILDIR_LOOP) {
        text = xasprintf("mail forwarding loop for %s", t->recipient);
        deliver_set(i, 5, "5.4.6", text, detail);
    } else if (err == ENOSPC || err == EDQUOT) {
        text = xasprintf("mailbox full: %s", why ? why : strerror(err));
        deliver_set(i, 4, "4.2.2", text, detail);
    } else {
        text = xasprintf(err == EBADMSG ? "corrupt queue file: %s" : "maildir delivery failed: %s",
                         why ? why : strerror(err));
        deliver_set(i, 4, "4.3.0", text, detail);
    }
    free(text);
}

/* The Junk folder (Maildir++ ".Junk") of a mailbox ("Maildir/"), made if
 * missing with Maildir++'s folder mark, as imapd makes its folders; NULL
 * with *why if it cannot be. */
static char *deliver_junk_folder(const char *mailbox, char **why)
{
    size_t n = strlen(mailbox);
    char *dir, *marker;
    int fd;

    while (n > 1 && mailbox[n - 1] == '/')
        n--;
    dir = xasprintf("%.*s/.Junk/", (int)n, mailbox);
    if (maildir_create(dir, why) < 0) {
        free(dir);
        return NULL;
    }
    marker = xasprintf("%smaildirfolder", dir);
    if ((fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600)) >= 0)
        close(fd);
    free(marker);
    return dir;
}

/* The mailbox deliveries of targets[0..n) (one account): each message is
 * written into tmp/ of the mailbox, or of its Junk folder when smtpd's
 * checks quarantined it (dmarc_quarantine); then one syncfs() makes them
 * durable, each is moved into new/, one fsync of each folder's new/ makes
 * the names durable, and only then are the results reported. */
static void deliver_mailboxes(const struct local_target *targets, size_t n)
{
    const struct local_target *t = &targets[0];
    struct maildir_commit *commits[2];
    size_t *which[2], k[2] = { 0, 0 }, i;
    struct deliver_source src;
    struct maildir_delivery d;
    queue_file_t *q;
    char *why = NULL, *text, *detail, *junk = NULL;
    maildir_writer_t *w;
    int r, err, g;

    if (!t->no_forward && forward_read(t, &text) > 0)
        deliver_exit(DELIVER_FORWARD, "2.0.0", text, NULL);
    detail = xasprintf("%s/%s", t->home, t->mailbox);
    if (t->uid == 0)
        deliver_root_trusted(t, t->home, detail);
    if (maildir_create(t->mailbox, &why) < 0) {
        err = errno;
        text = xasprintf("cannot create maildir: %s", why ? why : strerror(err));
        deliver_exit(4, err == ENOSPC || err == EDQUOT ? "4.2.2" : "4.3.0", text, detail);
    }
    if (t->uid == 0)
        deliver_root_trusted(t, detail, detail);

    for (g = 0; g < 2; g++) {
        commits[g] = xcalloc(n, sizeof(*commits[g]));
        which[g] = xcalloc(n, sizeof(*which[g]));
    }
    for (i = 0; i < n; i++) {
        const char *dir = t->mailbox;

        if (deliver_queue_read(&targets[i], &q, &text) < 0) {
            deliver_set(i, 4, "4.3.0", text, NULL);
            free(text);
            continue;
        }
        g = 0;
        if (queue_attr(q, QUEUE_ATTR_QUARANTINE) != NULL) {
            if (junk == NULL && (junk = deliver_junk_folder(t->mailbox, &why)) == NULL) {
                msg_warn("cannot make the Junk folder of %s: %s; quarantined mail goes to the "
                         "inbox", detail, why ? why : strerror(errno));
                xfree(&why);
            }
            if (junk) {
                dir = junk;
                g = 1;
            }
        }
        src.q = q;
        d.sender = targets[i].sender;
        d.recipient = targets[i].recipient;
        d.name = deliver_name(q, &targets[i]);
        d.source = deliver_source;
        d.source_ctx = &src;
        r = maildir_deliver_write(dir, &d, &w, &why);
        err = errno;
        if (r == 0) {
            commits[g][k[g]].w = w;
            which[g][k[g]++] = i;
        } else {
            deliver_mailbox_outcome(i, &targets[i], r, err, NULL, why, detail);
        }
        free((char *)d.name);
        xfree(&why);
        queue_file_free(&q);
    }
    for (g = 0; g < 2; g++) {
        maildir_commit_many(commits[g], k[g]);
        for (i = 0; i < k[g]; i++)
            deliver_mailbox_outcome(which[g][i], &targets[which[g][i]], commits[g][i].result,
                                    commits[g][i].err, commits[g][i].path, commits[g][i].why,
                                    detail);
    }
    /* Every target has its own result by now. */
    for (g = 0; g < 2; g++) {
        for (i = 0; i < k[g]; i++) {
            free(commits[g][i].path);
            free(commits[g][i].why);
        }
        free(commits[g]);
        free(which[g]);
    }
    free(junk);
    free(detail);
}

/* A run of n targets begins: none has a result yet. */
static void deliver_run_begin(size_t n)
{
    deliver_ntargets = n;
    deliver_outcomes = xcalloc(n, sizeof(*deliver_outcomes));
    deliver_reported = 0;
}

/* The results of the run are out: forget them. */
static void deliver_run_reset(void)
{
    for (size_t i = 0; i < deliver_ntargets; i++) {
        free(deliver_outcomes[i].dsn);
        free(deliver_outcomes[i].text);
        free(deliver_outcomes[i].detail);
    }
    free(deliver_outcomes);
    deliver_outcomes = NULL;
    deliver_ntargets = 0;
}

/* Into t's home directory (a command or file target: "/" if there is
 * none), or end the run with 4.3.0. */
static void deliver_enter_home(const struct local_target *t)
{
    char *text;
    int err;

    if (chdir(t->home) < 0 && (t->target == NULL || chdir("/") < 0)) {
        err = errno;
        text = xasprintf("cannot enter home directory %s: %s", t->home, strerror(err));
        deliver_exit(4, "4.3.0", text, NULL);
    }
}

/* A kept process waits for its next run on job_fd (local.h): the targets
 * of account's account, fresh in *targets (their strings too), or _exit()
 * at EOF (the parent has no more runs for us) or on a bad frame. */
static size_t deliver_next_run(int job_fd, const struct local_target *account,
                               struct local_target **targets)
{
    struct local_target *t = NULL;
    int64_t count = 0, frame_count = 0, no_forward;
    size_t n = 0;
    ipc_msg_t *m;
    int r;

    do {
        if ((r = ipc_recv(job_fd, &m, LOCAL_JOB_MAX_PAYLOAD, -1)) != 1) {
            if (r < 0)
                msg_warn("cannot read the next job from the parent: %s", strerror(errno));
            _exit(0);
        }
        if (ipc_get_int(m, &frame_count) == 0 && n == 0 && frame_count >= 1
            && frame_count <= LOCAL_JOB_RUN_MAX) {
            count = frame_count;
            t = xcalloc((size_t)count, sizeof(*t));
        }
        if (t != NULL)
            t[n] = *account;
        if (t == NULL || frame_count != count || m->type != LOCAL_JOB_FRAME || m->reqid != n
            || ipc_get_str(m, (char **)&t[n].queue_id) < 0
            || ipc_get_str(m, (char **)&t[n].sender) < 0
            || ipc_get_str(m, (char **)&t[n].recipient) < 0
            || ipc_get_int(m, &no_forward) < 0 || ipc_get_end(m) < 0
            || (n > 0 && (no_forward != 0) != t[0].no_forward)
            || (t[n].queue_fd = ipc_take_fd(m)) < 0) {
            msg_warn("bad job frame from the parent");
            _exit(0);
        }
        t[n].no_forward = no_forward != 0;
        ipc_msg_free(&m);
        n++;
    } while (n < (size_t)count);
    *targets = t;
    return n;
}

/* Free what deliver_next_run() made. */
static void deliver_targets_free(struct local_target *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)t[i].queue_id);
        free((char *)t[i].sender);
        free((char *)t[i].recipient);
    }
    free(t);
}

_Noreturn void deliver_child(const struct local_target *targets, size_t n, int result_fd,
                             int job_fd)
{
    int *keep = xcalloc(n + 6, sizeof(*keep));
    struct local_target *next = NULL;
    struct local_target mine = targets[0];
    const struct local_target *t = &mine;
    struct deliver_source src;
    struct maildir_delivery d;
    queue_file_t *q = NULL;
    size_t nkeep = 0, i;
    char *text;

    event_reset_signals();
    deliver_fd = result_fd;
    deliver_run_begin(n);
    msg_fatal_hook(deliver_fatal_hook);
    keep[nkeep++] = 0;
    keep[nkeep++] = 1;
    keep[nkeep++] = 2;
    keep[nkeep++] = result_fd;
    keep[nkeep++] = job_fd;
    keep[nkeep++] = msg_detach_fds();
    for (i = 0; i < n; i++)
        keep[nkeep++] = targets[i].queue_fd;
    privs_close_fds(keep, nkeep);
    umask(077);
    /* Only a forwarding child needs the SRS secrets. */
    if (t->target == NULL || *t->target != '>')
        srs_free(&local_srs);

    /* Our own process group, so that a time-out kills a command too. */
    setpgid(0, 0);
    deliver_become(t);

    deliver_enter_home(t);
    if (t->target == NULL) {
        if (job_fd >= 0 && t->uid == 0)
            msg_panic("%s: a kept delivery process for root", t->queue_id);
        for (;;) {
            deliver_mailboxes(targets, n);
            if (job_fd < 0)
                deliver_exit(4, "4.3.0", "no result", NULL);
            for (size_t i = 0; i < n; i++)      /* nothing of this run while we wait */
                close(targets[i].queue_fd);
            if (deliver_report_run(4, "4.3.0", "no result", "", 1) < 0)
                _exit(0);
            deliver_run_reset();
            if (next != NULL)
                deliver_targets_free(next, n);
            n = deliver_next_run(job_fd, &mine, &next);
            targets = next;
            deliver_run_begin(n);
            deliver_enter_home(t);
        }
    }
    if (n != 1)
        msg_panic("%s: %zu targets in one delivery of %s", t->queue_id, n, t->target);
    if (deliver_queue_read(t, &q, &text) < 0)
        deliver_exit(4, "4.3.0", text, NULL);
    src.q = q;
    d.sender = t->sender;
    d.recipient = t->recipient;
    d.name = NULL;
    d.source = deliver_source;
    d.source_ctx = &src;
    if (*t->target == '|')
        deliver_command(t, t->target + 1, &d);
    if (*t->target == '>')
        deliver_forward(t, t->target + 1, q);
    deliver_file(t, t->target, &d);
}

int deliver_result_parse(const char *data, size_t len, size_t *used, int *dsn_class, char **dsn,
                         char **text, char **detail)
{
    const char *field[4], *p = data, *end = data + len, *nul;

    *dsn = *text = *detail = NULL;
    for (int i = 0; i < 4; i++) {
        if ((nul = memchr(p, '\0', (size_t)(end - p))) == NULL)
            return i > 0 && strlen(field[0]) != 1 ? -1 : 1;
        field[i] = p;
        p = nul + 1;
    }
    if (strlen(field[0]) != 1
        || (field[0][0] != '2' && field[0][0] != '4' && field[0][0] != '5'
            && field[0][0] != 'F'))
        return -1;
    *used = (size_t)(p - data);
    *dsn_class = field[0][0] == 'F' ? DELIVER_FORWARD : field[0][0] - '0';
    *dsn = xstrdup(field[1]);
    *text = xstrdup(field[2]);
    *detail = xstrdup(field[3]);
    return 0;
}
