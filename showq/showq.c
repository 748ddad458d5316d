/*
 * showq - the queue listing for mailq (DESIGN.md §1): users other than
 * root cannot read the queue directories, so "mailq" (sendmail -bp) asks
 * this service over public/showq (lib/showq_proto.h) and prints what it
 * gets, as Postfix's showq does for postqueue -p.
 *
 * Runs as mail_owner, chrooted into the spool, one client per process
 * (SERVER_SINGLE).  It only reads: the listing is lib/queue_list's, the
 * same that "mailctl queue list" prints, written into a memfd that goes
 * back to the client.
 *
 * Failure modes: a client that does not speak the protocol is a peer
 * error (logged, dropped).  A listing that cannot be made is logged and
 * the client gets no answer (mailq then says the report is unavailable).
 *
 * Parameters: mail_owner (and the server skeleton's).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ipc.h"
#include "msg.h"
#include "queue_list.h"
#include "server.h"
#include "showq_proto.h"

static int showq_qdir = -1;

static void showq_post_init(event_loop_t *loop)
{
    (void)loop;
    showq_proto_init();
    if ((showq_qdir = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        msg_fatal("cannot open the queue directory: %s", strerror(errno));
}

static void showq_serve(int fd)
{
    const char *why;
    ipc_msg_t *m = NULL, *reply;
    FILE *out;
    int mfd, rc;

    if (ipc_hello_recv(fd, SHOWQ_PROTO_NAME, SHOWQ_PROTO_VERSION, SHOWQ_TIMEOUT_MS, &why) < 0
        || ipc_hello_send(fd, SHOWQ_PROTO_NAME, SHOWQ_PROTO_VERSION, SHOWQ_TIMEOUT_MS) < 0) {
        msg_warn("showq: refusing a client: %s", why ? why : strerror(errno));
        return;
    }
    rc = ipc_recv(fd, &m, 1024, SHOWQ_TIMEOUT_MS);
    if (rc <= 0 || m->type != SHOWQ_LIST || ipc_get_end(m) < 0 || m->fd >= 0) {
        if (rc != 0)
            msg_warn("showq: bad request from a client; dropping it");
        ipc_msg_free(&m);
        return;
    }
    ipc_msg_free(&m);
    if ((mfd = memfd_create("posthorn-showq", MFD_CLOEXEC)) < 0
        || (out = fdopen(dup(mfd), "w")) == NULL) {
        msg_warn("showq: cannot make the listing: %s", strerror(errno));
        if (mfd >= 0)
            close(mfd);
        return;
    }
    queue_list_print(showq_qdir, out);
    if (fclose(out) != 0) {
        msg_warn("showq: cannot write the listing: %s", strerror(errno));
        close(mfd);
        return;
    }
    reply = ipc_msg_new(SHOWQ_REPLY, 0);
    ipc_set_fd(reply, mfd);
    if (ipc_send(fd, reply, SHOWQ_TIMEOUT_MS) < 0)
        msg_warn("showq: cannot send the listing: %s", strerror(errno));
    ipc_msg_free(&reply);
}

int main(int argc, char **argv)
{
    static const struct server_opts opts = {
        .mode = SERVER_SINGLE,
        .user_param = "mail_owner",
        .chroot = SERVER_CHROOT_SPOOL,
        .post_init = showq_post_init,
        .serve = showq_serve,
    };

    server_main(argc, argv, &opts);
}
