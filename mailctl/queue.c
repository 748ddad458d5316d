/*
 * queue.c - "mailctl queue list | show ID | flush | delete ID|all |
 * hold ID|all | release ID|all": the admin's view of the mail queue
 * (Postfix's mailq/postqueue -p, postcat -q and postsuper in one place).
 *
 * list and show read the queue directories directly (as root or
 * mail_owner; they never change anything), so they work whether or not
 * Posthorn runs.  The others change the queue, and qmgr is the only
 * mover of queue files while it runs: they are requests to qmgr over
 * private/qmgr (lib/qmgr_proto.h), which acts on a message in delivery as
 * soon as its deliveries have reported.  When qmgr is not running (its
 * socket refuses us), delete, hold and release act on the directories
 * themselves, as postsuper does; flush then has nothing to do and says so.
 *
 * list: lib/queue_list (shared with mailq and showq(8)): Postfix's mailq layout;
 * the ID is followed by '*' for a message in active/ and '!' for one on
 * hold; each recipient not yet final is listed, a deferred one with its
 * status code, attempts and next attempt.  A file that cannot be parsed is
 * listed as "(corrupt: reason)".
 *
 * Exit codes: 0 success, 1 failure (unknown ID, qmgr refused), 2 usage.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "defer_log.h"
#include "ipc.h"
#include "mailctl.h"
#include "msg.h"
#include "qmgr_proto.h"
#include "queue.h"
#include "queue_list.h"
#include "xalloc.h"

#define QUEUE_CTL_TIMEOUT_MS 30000

static int queue_dir_open(void)
{
    int fd = open(conf_str("queue_directory"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        fprintf(stderr, "mailctl: cannot open queue_directory %s: %s\n",
                conf_str("queue_directory"), strerror(errno));
    return fd;
}

static int cmd_queue_list(void)
{
    int qfd = queue_dir_open();

    if (qfd < 0)
        return 1;
    queue_list_print(qfd, stdout);
    close(qfd);
    return 0;
}

/* Write content to stdout with CRLF turned into LF (what an admin reads). */
static int queue_show_piece(void *ctx, const void *data, size_t len)
{
    int *last_cr = ctx;
    const char *p = data;

    for (size_t i = 0; i < len; i++) {
        if (*last_cr && p[i] != '\n')
            putchar('\r');
        *last_cr = p[i] == '\r';
        if (!*last_cr)
            putchar(p[i]);
    }
    return ferror(stdout) ? -1 : 0;
}

static int cmd_queue_show(const char *id)
{
    struct queue_entry *v;
    size_t n, i;
    int qfd, rc = 1;

    if (!queue_id_valid(id)) {
        fprintf(stderr, "mailctl: %s is not a queue ID\n", id);
        return 1;
    }
    if ((qfd = queue_dir_open()) < 0)
        return 1;
    v = queue_list_collect(qfd, 1, &n);
    for (i = 0; i < n && strcmp(v[i].id, id) != 0; i++)
        ;
    if (i == n) {
        fprintf(stderr, "mailctl: %s: no such message in the queue\n", id);
    } else {
        char when[64], *why;
        int fd, last_cr = 0;
        queue_file_t *q = queue_list_load(qfd, v[i].dir, id, &fd, &why);

        if (q == NULL) {
            fprintf(stderr, "mailctl: %s/%s: %s\n", v[i].dir, id, why ? why : "gone meanwhile");
            free(why);
        } else {
            queue_list_format_time(when, sizeof(when), q->arrival_sec);
            printf("*** ENVELOPE RECORDS %s/%s ***\n", v[i].dir, id);
            printf("arrival_time: %s\n", when);
            printf("message_size: %llu\n", (unsigned long long)q->content_len);
            printf("sender: %s\n", q->sender);
            if (q->envid)
                printf("envid: %s\n", q->envid);
            if (q->ret)
                printf("ret: %s\n", q->ret == QUEUE_RET_HDRS ? "HDRS" : "FULL");
            for (size_t a = 0; a < q->nattr; a++)
                printf("%s: %s\n", q->attrs[a].name, q->attrs[a].value);
            for (size_t r = 0; r < q->nrcpt; r++) {
                const queue_rcpt_t *rc_ = &q->rcpts[r];

                printf("recipient: %s (%s", rc_->address, queue_list_status_name(rc_->st.status));
                if (*rc_->st.dsn)
                    printf(", dsn=%s", rc_->st.dsn);
                if (rc_->st.attempts)
                    printf(", attempts=%u", rc_->st.attempts);
                if (rc_->st.next_attempt) {
                    queue_list_format_time(when, sizeof(when), rc_->st.next_attempt);
                    printf(", next=%s", when);
                }
                if (rc_->st.flags & QUEUE_RCPT_F_DELAY_WARNED)
                    printf(", delay warning sent");
                printf(")\n");
                if (rc_->orig)
                    printf("original_recipient: %s\n", rc_->orig);
                if (rc_->orcpt)
                    printf("orcpt: %s\n", rc_->orcpt);
            }
            printf("*** MESSAGE CONTENTS %s ***\n", id);
            fflush(stdout);
            if (queue_content_copy(q, queue_show_piece, &last_cr) != 0)
                fprintf(stderr, "mailctl: %s: cannot read the content: %s\n", id,
                        strerror(errno));
            else
                rc = 0;
            if (last_cr)
                putchar('\r');
            printf("*** END OF MESSAGE ***\n");
            queue_file_free(&q);
            close(fd);
        }
    }
    free(v);
    close(qfd);
    return rc;
}

/* Ask qmgr; 0 done (reply printed), 1 qmgr said no, -1 qmgr not reachable
 * (errno ENOENT/ECONNREFUSED) or the exchange failed (message printed). */
static int queue_ask_qmgr(uint32_t type, const char *arg)
{
    char *path = xasprintf("%s/%s", conf_str("queue_directory"), QMGR_SOCKET);
    const char *why = NULL;
    int sock = ipc_client_open(path, QMGR_PROTO_NAME, QMGR_PROTO_VERSION, QUEUE_CTL_TIMEOUT_MS,
                               &why);
    ipc_msg_t *m, *reply = NULL;
    size_t count = 0;
    char *text = NULL;
    int rc = -1, ok = 0;

    free(path);
    if (sock < 0) {
        if (errno != ENOENT && errno != ECONNREFUSED)
            fprintf(stderr, "mailctl: cannot talk to qmgr: %s\n", why ? why : strerror(errno));
        return -1;
    }
    m = qmgr_control_encode(type, 1, arg);
    if (ipc_send(sock, m, QUEUE_CTL_TIMEOUT_MS) < 0
        || ipc_recv(sock, &reply, IPC_MAX_PAYLOAD, QUEUE_CTL_TIMEOUT_MS) != 1) {
        fprintf(stderr, "mailctl: no answer from qmgr: %s\n", strerror(errno));
        errno = EPROTO;
    } else if (qmgr_reply_decode(reply, &ok, &count, &text) < 0) {
        fprintf(stderr, "mailctl: malformed %s from qmgr\n", ipc_type_name(reply->type));
        errno = EPROTO;
    } else {
        fprintf(ok ? stdout : stderr, "%s%s\n", ok ? "" : "mailctl: ", text);
        rc = ok ? 0 : 1;
    }
    free(text);
    ipc_msg_free(&m);
    ipc_msg_free(&reply);
    close(sock);
    return rc;
}

/* qmgr is not running: delete, hold or release on the directories. */
static int queue_act_offline(uint32_t type, const char *arg)
{
    struct queue_entry *v;
    size_t n, i, count = 0;
    int all = strcmp(arg, QMGR_ALL) == 0, qfd = queue_dir_open(), failed = 0;

    if (qfd < 0)
        return 1;
    v = queue_list_collect(qfd, 0, &n);
    for (i = 0; i < n; i++) {
        const char *dir = v[i].dir;
        int r = 0;

        if (!all && strcmp(v[i].id, arg) != 0)
            continue;
        if (type == QMGR_DELETE && (r = queue_remove(qfd, dir, v[i].id)) == 0)
            defer_log_remove(qfd, v[i].id);
        else if (type == QMGR_HOLD && strcmp(dir, QUEUE_DIR_HOLD) != 0)
            r = queue_move(qfd, dir, QUEUE_DIR_HOLD, v[i].id, QUEUE_SYNC);
        else if (type == QMGR_RELEASE && strcmp(dir, QUEUE_DIR_HOLD) == 0)
            r = queue_move(qfd, dir, QUEUE_DIR_INCOMING, v[i].id, QUEUE_SYNC);
        else
            continue;
        if (r < 0 && errno != ENOENT) {
            fprintf(stderr, "mailctl: %s/%s: %s\n", dir, v[i].id, strerror(errno));
            failed = 1;
        } else if (r == 0) {
            count++;
        }
    }
    free(v);
    close(qfd);
    if (!all && count == 0 && !failed) {
        fprintf(stderr, "mailctl: %s: no such message in the queue\n", arg);
        return 1;
    }
    printf("%s %zu message%s (qmgr is not running)\n",
           type == QMGR_DELETE ? "deleted" : type == QMGR_HOLD ? "held" : "released",
           count, count == 1 ? "" : "s");
    return failed;
}

static int queue_change(uint32_t type, const char *arg)
{
    int rc;

    if (type == QMGR_FLUSH) {
        if (arg && (!*arg || !qmgr_flush_domain_valid(arg))) {
            fprintf(stderr, "mailctl: %s is not a domain name\n", arg);
            return 1;
        }
    } else if (arg) {
        if (strcasecmp(arg, "all") == 0)
            arg = QMGR_ALL;
        else if (!queue_id_valid(arg)) {
            fprintf(stderr, "mailctl: %s is not a queue ID (or \"all\")\n", arg);
            return 1;
        }
    }
    rc = queue_ask_qmgr(type, arg);
    if (rc >= 0)
        return rc;
    if (errno != ENOENT && errno != ECONNREFUSED)
        return 1;
    if (type == QMGR_FLUSH) {
        fprintf(stderr, "mailctl: qmgr is not running; the queue is delivered when Posthorn "
                "starts\n");
        return 1;
    }
    return queue_act_offline(type, arg);
}

static int queue_usage(void)
{
    fprintf(stderr, "usage: mailctl queue list | show ID | flush [DOMAIN] | delete ID|all | "
            "hold ID|all | release ID|all\n");
    return 2;
}

int cmd_queue(int argc, char **argv)
{
    static const struct {
        const char *name;
        uint32_t    type;
        int         nargs;
    } verbs[] = {
        {"list", 0, 0}, {"show", 0, 1}, {"flush", QMGR_FLUSH, 0},
        {"delete", QMGR_DELETE, 1}, {"hold", QMGR_HOLD, 1}, {"release", QMGR_RELEASE, 1},
    };
    size_t i;

    if (argc < 2)
        return queue_usage();
    for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (strcmp(argv[1], verbs[i].name) == 0)
            break;
    if (i == sizeof(verbs) / sizeof(verbs[0])
        || (argc != 2 + verbs[i].nargs
            && !(verbs[i].type == QMGR_FLUSH && argc == 3)))    /* flush [DOMAIN] */
        return queue_usage();
    if (mailctl_load_config(0) < 0)
        return 1;
    qmgr_proto_init();
    if (strcmp(argv[1], "list") == 0)
        return cmd_queue_list();
    if (strcmp(argv[1], "show") == 0)
        return cmd_queue_show(argv[2]);
    return queue_change(verbs[i].type, argc == 3 ? argv[2] : NULL);
}
