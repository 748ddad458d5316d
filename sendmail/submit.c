/*
 * submit.c - sendmail hands a composed message over: a maildrop file
 * (lib/maildrop) and a wakeup for pickup.
 *
 * sendmail is setgid setgid_group (posthorn-drop) and nothing else; it
 * runs with its real group and takes the setgid group only around the
 * writes into $queue_directory/maildrop/ (1730: it can add files there but
 * not list or read them) and the connect to public/pickup.  The file is
 * the caller's, which is how pickup knows who submitted it.
 *
 * Failure modes: -1 with errno when the file cannot be written (nothing is
 * left behind), EINVAL with *why for a request cleanup would refuse (a
 * control character in the envelope, too many recipients); a pickup that cannot be woken (Posthorn stopped) is no
 * failure: the message waits in maildrop/ until pickup starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf.h"
#include "maildrop.h"
#include "msg.h"
#include "sendmail.h"
#include "xalloc.h"

#define PICKUP_SOCKET "public/pickup"

static gid_t sm_setgid_gid;
static bool sm_privs_known;

static void sm_privs_init(void)
{
    if (!sm_privs_known) {
        sm_setgid_gid = getegid();
        sm_privs_known = true;
    }
}

void sm_privs_gain(void)
{
    sm_privs_init();
    if (setegid(sm_setgid_gid) < 0)
        sm_fatal(EX_OSERR, "setegid(%u): %s", (unsigned)sm_setgid_gid, strerror(errno));
}

void sm_privs_shed(void)
{
    sm_privs_init();
    if (setegid(getgid()) < 0)
        sm_fatal(EX_OSERR, "setegid(%u): %s", (unsigned)getgid(), strerror(errno));
}

/* At exit: give the setgid group up for good.  In the sanitizer builds
 * only, the process is then made dumpable again, which is what lets
 * LeakSanitizer inspect it; a production build stays undumpable. */
static void sm_privs_end(void)
{
    gid_t g = getgid();

    if (setresgid(g, g, g) == 0) {
#if defined(__SANITIZE_ADDRESS__)
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
#endif
    }
}

void sm_privs_init_exit(void)
{
    sm_privs_init();
    atexit(sm_privs_end);
}

/* connect() without waiting: a UNIX socket whose backlog is full says
 * EAGAIN at once instead of blocking. */
static int sm_poke(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd;

    if (strlen(path) >= sizeof(sun.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 && errno != EINPROGRESS) {
        int saved = errno;

        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int sm_submit(struct cleanup_request *r, char id[QUEUE_ID_SIZE], const char **why)
{
    const char *qdir = conf_str("queue_directory");
    char uid[16], *sock;
    int qfd, fd, rc, saved;

    snprintf(uid, sizeof(uid), "%u", (unsigned)sm_user.uid);
    cleanup_request_attr(r, QUEUE_ATTR_SUBMIT_UID, uid);
    cleanup_request_attr(r, QUEUE_ATTR_SUBMIT_USER, sm_user.login);
    /* What cleanup would refuse, or pickup would not take from a maildrop
     * file, must not wait in maildrop/. */
    if (cleanup_request_check(r, CLEANUP_PEER_LOCAL, why) < 0) {
        errno = EINVAL;
        return -1;
    }
    sm_privs_gain();
    if ((qfd = open(qdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        saved = errno;
        sm_privs_shed();
        errno = saved;
        return -1;
    }
    rc = maildrop_write(qfd, r, id);
    saved = errno;
    close(qfd);
    if (rc == 0) {
        /* Any connection wakes pickup; it reads nothing from us.  Never
         * wait for it: a busy pickup with a full backlog will scan anyway. */
        sock = xasprintf("%s/%s", qdir, PICKUP_SOCKET);
        if ((fd = sm_poke(sock)) >= 0)
            close(fd);
        else if (sm_opts.verbose)
            fprintf(stderr, "sendmail: pickup is not running (%s); the message waits in "
                    "maildrop/\n", strerror(errno));
        free(sock);
        msg_info("%s: uid=%u from=<%s>", id, (unsigned)sm_user.uid, r->sender);
    }
    sm_privs_shed();
    errno = saved;
    return rc;
}
