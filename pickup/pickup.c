/*
 * pickup - moves locally submitted mail from maildrop/ into the queue
 * (DESIGN.md §1): sendmail(1) leaves one file per message there
 * (lib/maildrop), pickup hands each to cleanup as a CLEANUP_SUBMIT and
 * removes the file once cleanup has committed the queue file.
 *
 * Runs as mail_owner (the owner of maildrop/), chrooted into the spool,
 * one process for good (SERVER_MULTI, no idle exit).  It scans maildrop/
 * at start, on master's wakeup (master.conf wakeup column, 60 s) and when
 * anybody connects to public/pickup, which sendmail does after each file;
 * it reads nothing from that connection.  Files are taken oldest first.
 *
 * What a maildrop file must be: a regular file with one link (opened
 * with O_NONBLOCK and checked with fstat, lib/safe_open, so a FIFO cannot
 * hang pickup), whose name is a queue ID, that parses as a queue file,
 * and whose submit_uid attribute is its owner's uid (the file is the
 * submitter's own, so pickup believes the owner, not the content), and
 * that cleanup would take from a local user (cleanup_request_check with
 * CLEANUP_PEER_LOCAL: no bounce flag, no maildrop_id, no client
 * attributes; a request cleanup would drop the connection over would
 * otherwise stop every file behind it; pickup is a trusted peer of
 * cleanup, so nothing a user wrote may pass unchecked).  Anything else
 * goes to corrupt/ with a warning; nothing is deleted unread.  Names starting with ".tmp"
 * are files sendmail is still writing; one older than a day is the
 * leftover of a sendmail that died and is removed.
 *
 * cleanup's answer decides: 250 means the file is queued, and cleanup has
 * removed it already (told by the maildrop_id attribute; it locks the file
 * while it works and removes it right after its commit, so that a pickup
 * killed or timed out while it waits does not queue the message again;
 * pickup removes it too in case); a 4xx leaves it for the next wakeup and
 * goes on with the next file; no cleanup at all ends the scan; a 5xx
 * (the message is too big, has too many hops, or a virtual alias loop)
 * comes too late for sendmail, which has exited 0: the sender gets a
 * non-delivery report (lib/dsn, as from qmgr) and the file is removed;
 * mail from <> goes to corrupt/ instead.
 *
 * Logging: "ID: uid=N from=<sender>: queued as NEWID".
 *
 * Parameters: mail_owner (and the server skeleton's).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "cleanup_proto.h"
#include "dsn.h"
#include "ipc.h"
#include "maildrop.h"
#include "msg.h"
#include "queue.h"
#include "safe_open.h"
#include "server.h"
#include "xalloc.h"

#define PICKUP_STALE_TMP_SECONDS (24 * 3600)

static int pickup_qdir = -1;
static int pickup_cleanup_fd = -1;
static event_timer_t *pickup_timer;

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void pickup_to_corrupt(const char *name, const char *reason)
{
    char *to = queue_id_valid(name) ? xasprintf(QUEUE_DIR_CORRUPT "/%s", name)
                                    : xasprintf(QUEUE_DIR_CORRUPT "/maildrop.%s", name);
    char *from = xasprintf(QUEUE_DIR_MAILDROP "/%s", name);

    if (renameat(pickup_qdir, from, pickup_qdir, to) < 0)
        msg_warn("maildrop %s: %s; cannot move it to corrupt/: %s", name, reason,
                 strerror(errno));
    else
        msg_warn("maildrop %s: %s; moved to %s", name, reason, to);
    free(from);
    free(to);
}


/* cleanup refused the message for good, after sendmail had said it was
 * sent: tell the sender with a non-delivery report, as qmgr would, and
 * then drop the file.  Mail from <> (nobody to tell) or a report that
 * cannot be sent leaves the file where the admin finds it: corrupt/, or
 * maildrop/ for the next try. */
static void pickup_bounce(int mdfd, const char *id, const struct stat *was,
                          const struct cleanup_result *res)
{
    char *text = xasprintf("refused by cleanup: %d %s %s", res->code, res->dsn, res->text);
    char *why = NULL, *queued_as = NULL;
    const char *reason;
    queue_file_t *q = NULL;
    struct dsn_rcpt *r;
    struct stat st;
    int fd;

    /* The same file as the one cleanup refused, or nothing. */
    if ((fd = safe_open(mdfd, id, O_RDONLY, &was->st_uid, 1, &st, &reason)) < 0
        || st.st_dev != was->st_dev || st.st_ino != was->st_ino
        || queue_read(fd, &q, &why) < 0) {
        if (fd >= 0)
            close(fd);
        free(why);
        free(text);
        return;                 /* gone meanwhile, or changed: the next scan sees */
    }
    if (*q->sender == '\0') {
        pickup_to_corrupt(id, text);
    } else {
        char *diag = xasprintf("%d %s", res->code, res->text);

        /* The report goes to cleanup with the bounce mark, which skips
         * the size limit: a message refused for its size (sendmail checks
         * the limit too, but as its configuration said then) comes back
         * as its header only, or the mark would carry it past the limit
         * after all. */
        if (res->code == 552)
            q->ret = QUEUE_RET_HDRS;
        r = xcalloc(q->nrcpt, sizeof(*r));
        for (size_t i = 0; i < q->nrcpt; i++) {
            r[i].rcpt = &q->rcpts[i];
            r[i].dsn = res->dsn;
            r[i].text = diag;
        }
        if (dsn_send(id, q, r, q->nrcpt, DSN_FAILED, &queued_as) == 0) {
            msg_info("%s: %s; sender non-delivery notification: %s", id, text, queued_as);
            if (unlinkat(mdfd, id, 0) < 0)
                msg_warn("maildrop %s: cannot remove it: %s", id, strerror(errno));
        }
        free(queued_as);
        free(r);
        free(diag);
    }
    queue_file_free(&q);
    close(fd);
    free(text);
}

/* Hand one file to cleanup.  0 to go on with the next file, -1 to end the
 * scan (cleanup cannot be reached). */
static int pickup_file(int mdfd, const char *id)
{
    struct cleanup_request r;
    struct cleanup_result res;
    struct stat st;
    const char *why = NULL, *uid;
    char *reason = NULL, owner[16];
    int fd;

    /* Any owner (the submitter's file); O_NONBLOCK, then a regular file
     * with one link: nothing in maildrop/ can block or redirect us. */
    memset(&st, 0, sizeof(st));
    if ((fd = safe_open(mdfd, id, O_RDONLY, NULL, 0, &st, &why)) < 0) {
        if (errno == EMLINK && S_ISREG(st.st_mode) && st.st_nlink == 2
            && time(NULL) - st.st_ctime < 10) {
            /* A file system without RENAME_NOREPLACE: sendmail's commit
             * links the new name before it unlinks the old one. */
            return 0;
        }
        if (errno == ELOOP || errno == EINVAL || errno == EMLINK)
            pickup_to_corrupt(id, why);     /* "a symbolic link", ... */
        else if (errno != ENOENT)
            msg_warn("maildrop %s: cannot open: %s", id, strerror(errno));
        return 0;
    }
    if (maildrop_read(fd, &r, &reason) < 0) {
        if (errno == EBADMSG) {
            char *text = xasprintf("malformed (%s)", reason ? reason : "?");

            pickup_to_corrupt(id, text);
            free(text);
        } else {
            msg_warn("maildrop %s: cannot read: %s", id, strerror(errno));
        }
        free(reason);
        close(fd);
        return 0;
    }
    close(fd);
    snprintf(owner, sizeof(owner), "%u", (unsigned)st.st_uid);
    uid = cleanup_request_get_attr(&r, QUEUE_ATTR_SUBMIT_UID);
    if (uid == NULL || strcmp(uid, owner) != 0) {
        char *text = xasprintf("claims uid %s but is owned by uid %s", uid ? uid : "(none)",
                               owner);

        pickup_to_corrupt(id, text);
        free(text);
        cleanup_request_free(&r);
        return 0;
    }
    /* sendmail let only root choose the sender; check again with our own
     * configuration, in case a user's sendmail read another. */
    if (st.st_uid != 0) {
        const char *login = cleanup_request_get_attr(&r, QUEUE_ATTR_SUBMIT_USER);
        int via_extension;

        if (login == NULL || !addr_sender_owned(r.sender, login, &via_extension)) {
            char *text = xasprintf("uid %s may not send as <%s>", owner, r.sender);

            pickup_to_corrupt(id, text);
            free(text);
            cleanup_request_free(&r);
            return 0;
        }
    }
    /* A maildrop file is any local user's word: it may carry nothing a
     * local user may not say (no maildrop_id, which is pickup's own word
     * to cleanup, no client attributes, no bounce flag), and cleanup
     * would drop the connection over a request that breaks its rules:
     * such a file must not stop the files behind it.  What we send is
     * then ours (a trusted peer's): the checked file plus maildrop_id. */
    if (cleanup_request_check(&r, CLEANUP_PEER_LOCAL, &why) == 0) {
        /* cleanup removes the file as soon as the queue file is committed. */
        cleanup_request_attr(&r, QUEUE_ATTR_MAILDROP_ID, id);
        if (cleanup_request_check(&r, CLEANUP_PEER_TRUSTED, &why) == 0)
            why = NULL;
    }
    if (why != NULL) {
        char *text = xasprintf("not a valid request (%s)", why);

        pickup_to_corrupt(id, text);
        free(text);
        cleanup_request_free(&r);
        return 0;
    }
    if (cleanup_submit_kept(&pickup_cleanup_fd, &r, &res, CLEANUP_TIMEOUT_MS, &why) < 0) {
        msg_warn("cannot hand %s to cleanup (%s): %s; maildrop/ waits", id, CLEANUP_SOCKET, why);
        cleanup_request_free(&r);
        return -1;
    }
    if (res.code == 250) {
        msg_info("%s: uid=%s from=<%s>: queued as %s", id, owner, r.sender, res.text);
        if (unlinkat(mdfd, id, 0) < 0 && errno != ENOENT)
            msg_warn("maildrop %s: queued as %s but cannot remove it: %s", id, res.text,
                     strerror(errno));
    } else if (res.code >= 500 && res.code <= 599) {
        pickup_bounce(mdfd, id, &st, &res);
    } else {
        /* This message only (a lookup that failed, a file another cleanup
         * is queueing): the files behind it go on. */
        msg_warn("maildrop %s: cleanup defers it: %d %s %s; will try again", id, res.code,
                 res.dsn, res.text);
    }
    cleanup_result_free(&res);
    cleanup_request_free(&r);
    return 0;
}

static void pickup_scan(event_loop_t *loop, void *arg)
{
    char **names = NULL;
    size_t n = 0, i;
    struct dirent *de;
    DIR *dir;
    int mdfd, dfd;

    (void)loop;
    (void)arg;
    pickup_timer = NULL;
    if ((mdfd = openat(pickup_qdir, QUEUE_DIR_MAILDROP, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0
        || (dfd = dup(mdfd)) < 0 || (dir = fdopendir(dfd)) == NULL) {
        msg_warn("cannot read maildrop/: %s", strerror(errno));
        if (mdfd >= 0)
            close(mdfd);
        return;
    }
    while ((de = readdir(dir)) != NULL) {
        struct stat st;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (strncmp(de->d_name, QUEUE_MAILDROP_TMP_PREFIX,
                    strlen(QUEUE_MAILDROP_TMP_PREFIX)) == 0) {
            if (fstatat(mdfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0
                && time(NULL) - st.st_mtime > PICKUP_STALE_TMP_SECONDS
                && unlinkat(mdfd, de->d_name, 0) == 0)
                msg_info("maildrop: removed %s, left over by a sendmail that died", de->d_name);
            continue;
        }
        if (!queue_id_valid(de->d_name)) {
            pickup_to_corrupt(de->d_name, "not a queue ID");
            continue;
        }
        names = xreallocarray(names, n + 1, sizeof(*names));
        names[n++] = xstrdup(de->d_name);
    }
    closedir(dir);
    if (n > 1)
        qsort(names, n, sizeof(*names), name_cmp);
    for (i = 0; i < n; i++)
        if (pickup_file(mdfd, names[i]) < 0)
            break;
    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
    close(mdfd);
}

/* Scan soon, once for any number of wakeups that come together. */
static void pickup_schedule(event_loop_t *loop)
{
    if (pickup_timer == NULL)
        pickup_timer = event_add_timer(loop, 0, pickup_scan, NULL);
}

static void pickup_post_init(event_loop_t *loop)
{
    cleanup_proto_init();
    if ((pickup_qdir = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        msg_fatal("cannot open the queue directory: %s", strerror(errno));
    pickup_schedule(loop);
}

static void pickup_accept(event_loop_t *loop, int fd)
{
    close(fd);              /* the connection is the whole message */
    pickup_schedule(loop);
}

static void pickup_wakeup(event_loop_t *loop)
{
    pickup_schedule(loop);
}

int main(int argc, char **argv)
{
    static const struct server_opts opts = {
        .mode = SERVER_MULTI,
        .user_param = "mail_owner",
        .chroot = SERVER_CHROOT_SPOOL,
        .no_idle_exit = 1,
        .post_init = pickup_post_init,
        .accept = pickup_accept,
        .wakeup = pickup_wakeup,
    };

    server_main(argc, argv, &opts);
}
