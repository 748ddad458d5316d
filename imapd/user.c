/*
 * user.c - the user's process (imapd's mail half, lib/postlogin's
 * per-user mode): it has become the user, serves every IMAP connection
 * of that user from one event loop (client.c), takes further connections
 * from the root process over the user's channel, and follows the
 * Maildir's changes through one inotify descriptor (mailbox.c).
 *
 * Start: the INBOX (home_mailbox, ~/Maildir/) is created if missing (a user may log in before any
 * mail came), and on the first login ever (no UIDVALIDITY file yet) the
 * special-use folders are created (folders.c).
 * End: with no connection left it tells root, which closes the channel
 * when nothing is in flight; at the channel's end it exits.  SIGTERM
 * (mailctl stop) says "* BYE" to every client first.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "conf.h"
#include "folders.h"
#include "imapd.h"
#include "maildir.h"
#include "msg.h"
#include "user.h"
#include "xalloc.h"

static const struct postlogin_session *user_ps;
static char *user_inbox;
static uint64_t user_received;
static bool user_channel_open;
static event_loop_t *user_loop;

const char *user_name(void)
{
    return user_ps->user;
}

const char *user_maildir(void)
{
    return user_inbox;
}

static void user_maybe_exit(void)
{
    if (client_count() == 0 && !user_channel_open)
        event_loop_stop(user_loop);
}

void user_client_gone(void)
{
    if (client_count() > 0)
        return;
    if (user_channel_open && postlogin_channel_idle(user_ps->channel, user_received) < 0)
        user_channel_open = false;
    user_maybe_exit();
}

static void user_add(const struct postlogin_session *ps)
{
    int fl = fcntl(ps->fd, F_GETFL);

    if (fl < 0 || fcntl(ps->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        msg_warn("%s: fcntl: %s", user_name(), strerror(errno));
        close(ps->fd);
        return;
    }
    client_start(user_loop, ps);
}

static void user_on_channel(event_loop_t *loop, int fd, int events, void *arg)
{
    struct postlogin_session *ps;
    int rc;

    (void)arg;
    (void)events;
    while ((rc = postlogin_channel_recv(user_ps, &ps)) == 1) {
        user_received++;
        user_add(ps);
        /* client_start has the descriptor; the rest is copied. */
        postlogin_session_free(&ps);
    }
    if (rc == 0 || errno != EAGAIN) {
        event_del_fd(loop, fd);
        user_channel_open = false;
        user_maybe_exit();
    }
}

static void user_on_inotify(event_loop_t *loop, int fd, int events, void *arg)
{
    (void)loop;
    (void)fd;
    (void)events;
    (void)arg;
    mbox_inotify_read();
}

static void user_on_term(event_loop_t *loop, int signo, void *arg)
{
    (void)signo;
    (void)arg;
    client_shutdown_all("Server shutting down.");
    event_loop_stop(loop);
}

void imap_user_serve(const struct postlogin_session *ps, int home_ok)
{
    char *why = NULL;
    const char *path;
    size_t plen;
    int fl;

    user_ps = ps;
    user_loop = event_loop_new();
    /* INBOX is where local delivers: home_mailbox, a Maildir ("dir/")
     * below the home directory. */
    path = conf_str("home_mailbox");
    plen = strlen(path);
    if (home_ok && (plen < 2 || path[plen - 1] != '/' || path[0] == '/')) {
        msg_warn("home_mailbox = %s is not a Maildir in the home directory: imapd serves "
                 "only Maildir/", path);
        home_ok = 0;
    }
    user_inbox = xasprintf("%s/%.*s", ps->home, (int)(plen ? plen - 1 : 0), path);
    if (!home_ok || maildir_create(user_inbox, &why) < 0) {
        msg_warn("%s: cannot use %s: %s", ps->user, user_inbox, why ? why : "no home directory");
        (void)!write(ps->fd, "* BYE [SERVERBUG] Your mailbox cannot be opened.\r\n", 50);
        free(why);
        return;
    }
    folders_first_login();
    user_received = 1;
    user_channel_open = ps->channel >= 0;
    if (user_channel_open) {
        fl = fcntl(ps->channel, F_GETFL);
        if (fl >= 0)
            fcntl(ps->channel, F_SETFL, fl | O_NONBLOCK);
        event_add_fd(user_loop, ps->channel, EVENT_READ, user_on_channel, NULL);
    }
    event_add_fd(user_loop, mbox_inotify_fd(), EVENT_READ, user_on_inotify, NULL);
    event_add_signal(user_loop, SIGTERM, user_on_term, NULL);
    user_add(ps);
    if (client_count() > 0 || user_channel_open)
        event_loop_run(user_loop);
}
