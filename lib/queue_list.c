/*
 * queue_list - reading the queue for people: every message in the live
 * queue directories in creation order, and the listing in Postfix's mailq
 * layout that "mailctl queue list", mailq and showq(8) print.
 *
 * Listing: one entry per message, oldest first; the ID is followed by '*'
 * for a message in active/ and '!' for one on hold; maildrop/ files
 * (submitted with sendmail, not yet picked up) are listed too.  Each
 * recipient not yet final is shown, a deferred one with the reason qmgr
 * gave (lib/defer_log), its status code, attempts and next attempt.  A file that cannot be parsed is listed as
 * "(corrupt: reason)".
 *
 * Files are opened with queue_open, so a name that is no queue file (a
 * FIFO, a device, a symbolic link, a second link to a file, another
 * account's file: someone with mail_owner's rights planted it) neither
 * hangs nor misleads the listing: it is listed as "(corrupt: not a regular
 * file, not a queue file)" and the listing goes on.
 *
 * Failure modes: directories that cannot be opened are skipped, a file
 * that vanished while being read (delivered meanwhile) is left out, as is
 * a maildrop file that sendmail is committing (two links for a moment).
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

#include "defer_log.h"
#include "queue_list.h"
#include "xalloc.h"

/* The directories a message can be in, in the order list shows them. */
static const char *const queue_live_dirs[] = {
    QUEUE_DIR_MAILDROP, QUEUE_DIR_INCOMING, QUEUE_DIR_ACTIVE, QUEUE_DIR_DEFERRED, QUEUE_DIR_HOLD, NULL
};

static int queue_entry_cmp(const void *a, const void *b)
{
    const struct queue_entry *x = a, *y = b;

    return strcmp(x->id, y->id);    /* IDs sort in creation order */
}

struct queue_entry *queue_list_collect(int qfd, int with_maildrop, size_t *n)
{
    struct queue_entry *v = NULL;
    size_t cap = 0;

    *n = 0;
    for (const char *const *d = queue_live_dirs + (with_maildrop ? 0 : 1); *d; d++) {
        int dfd = openat(qfd, *d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
        struct dirent *de;

        if (dir == NULL) {
            if (dfd >= 0)
                close(dfd);
            continue;
        }
        while ((de = readdir(dir)) != NULL) {
            if (!queue_id_valid(de->d_name))
                continue;
            if (*n == cap) {
                cap = cap ? cap * 2 : 64;
                v = xreallocarray(v, cap, sizeof(*v));
            }
            strlcpy(v[*n].id, de->d_name, QUEUE_ID_SIZE);
            v[*n].dir = *d;
            (*n)++;
        }
        closedir(dir);
    }
    if (*n > 1)
        qsort(v, *n, sizeof(*v), queue_entry_cmp);
    return v;
}

queue_file_t *queue_list_load(int qfd, const char *dir, const char *id, int *fdp, char **why)
{
    queue_file_t *q = NULL;
    const char *reason = NULL;
    int fd = queue_open(qfd, dir, id, O_RDONLY, &reason);

    *why = NULL;
    *fdp = -1;
    if (fd < 0) {
        if (errno == ENOENT)
            return NULL;            /* delivered meanwhile */
        if (errno == EMLINK && strcmp(dir, QUEUE_DIR_MAILDROP) == 0)
            return NULL;            /* sendmail's commit, caught between link and unlink */
        if (queue_open_refused(errno))
            *why = xasprintf("%s, not a queue file", reason);
        else
            *why = xasprintf("cannot open: %s", strerror(errno));
        return NULL;
    }
    if (queue_read(fd, &q, why) < 0) {
        if (*why == NULL)
            *why = xasprintf("cannot read: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    *fdp = fd;
    return q;
}

void queue_list_format_time(char *out, size_t len, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (localtime_r(&tt, &tm) == NULL || strftime(out, len, "%a %b %e %H:%M:%S", &tm) == 0)
        snprintf(out, len, "%lld", (long long)t);
}

const char *queue_list_status_name(int status)
{
    switch (status) {
    case QUEUE_RCPT_PENDING:   return "pending";
    case QUEUE_RCPT_DELIVERED: return "delivered";
    case QUEUE_RCPT_BOUNCED:   return "bounced";
    case QUEUE_RCPT_DEFERRED:  return "deferred";
    }
    return "unknown";
}

void queue_list_print(int qfd, FILE *out)
{
    struct queue_entry *v;
    size_t n, i, shown = 0;
    unsigned long long bytes = 0;
    v = queue_list_collect(qfd, 1, &n);
    for (i = 0; i < n; i++) {
        char when[64], *why;
        int fd;
        queue_file_t *q = queue_list_load(qfd, v[i].dir, v[i].id, &fd, &why);
        char mark = strcmp(v[i].dir, QUEUE_DIR_ACTIVE) == 0 ? '*'
                    : strcmp(v[i].dir, QUEUE_DIR_HOLD) == 0 ? '!' : ' ';

        if (q == NULL && why == NULL)
            continue;               /* delivered and removed meanwhile */
        if (shown++ == 0)
            fprintf(out, "%-24s %8s %-20s %s\n", "-Queue ID-", "--Size--", "----Arrival Time----",
                   "-Sender/Recipient-------");
        if (q == NULL) {
            fprintf(out, "%s%c (corrupt: %s)\n\n", v[i].id, mark, why);
            free(why);
            continue;
        }
        queue_list_format_time(when, sizeof(when), q->arrival_sec);
        fprintf(out, "%s%c%*s %8llu %-20s %s\n", v[i].id, mark, (int)(23 - strlen(v[i].id)), "",
               (unsigned long long)q->content_len, when, *q->sender ? q->sender : "MAILER-DAEMON");
        bytes += q->content_len;
        {
            struct defer_log_entry *reasons;
            size_t nreasons;
            struct stat sb;

            defer_log_read(qfd, v[i].id, fstat(fd, &sb) == 0 ? sb.st_uid : 0, &reasons,
                           &nreasons);
            for (size_t r = 0; r < q->nrcpt; r++) {
                const queue_status_t *st = &q->rcpts[r].st;
                const struct defer_log_entry *why_deferred;

                if (st->status == QUEUE_RCPT_DELIVERED || st->status == QUEUE_RCPT_BOUNCED)
                    continue;
                if (st->status == QUEUE_RCPT_DEFERRED) {
                    char next[64];

                    queue_list_format_time(next, sizeof(next), st->next_attempt);
                    why_deferred = defer_log_find(reasons, nreasons, q->rcpts[r].address);
                    if (why_deferred && *why_deferred->text)
                        fprintf(out, "%55s(%s)\n", "", why_deferred->text);
                    fprintf(out, "%55s(deferred: %s, %u attempt%s, next %s)\n", "",
                            *st->dsn ? st->dsn : "4.0.0", st->attempts,
                            st->attempts == 1 ? "" : "s", next);
                }
                fprintf(out, "%55s%s\n", "", q->rcpts[r].address);
            }
            defer_log_free(&reasons, nreasons);
        }
        fputc('\n', out);
        queue_file_free(&q);
        close(fd);
    }
    if (shown == 0)
        fprintf(out, "Mail queue is empty\n");
    else
        fprintf(out, "-- %llu Kbytes in %zu Request%s.\n", (bytes + 1023) / 1024, shown,
               shown == 1 ? "" : "s");
    free(v);
}

