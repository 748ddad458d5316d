/*
 * control.c - master's control socket for mailctl.
 *
 * $queue_directory/pid/master.sock, mode 0600, root only (checked again with
 * SO_PEERCRED).  One request per connection (see master_proto.h): status,
 * reload, stop.  Each exchange has a short deadline so a stuck client can
 * never stall master; a bad request is logged and that client dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc.h"
#include "master.h"
#include "master_proto.h"
#include "msg.h"
#include "xalloc.h"

#define CONTROL_TIMEOUT_MS 2000

static int control_fd = -1;
static char *control_path;

static void control_status_reply(ipc_msg_t *r)
{
    struct service *svc;
    struct proc *p;
    int64_t n = 0;

    ipc_put_int(r, 1);
    ipc_put_str(r, "");
    ipc_put_int(r, getpid());
    ipc_put_int(r, master_started);
    TAILQ_FOREACH(svc, &master_services, link)
        n++;
    ipc_put_int(r, n);
    TAILQ_FOREACH(svc, &master_services, link) {
        const char *state;

        service_state(svc, &state);
        ipc_put_str(r, svc->name);
        ipc_put_str(r, master_svc_type_name(svc->type));
        ipc_put_str(r, svc->command_line);
        ipc_put_str(r, state);
        ipc_put_int(r, svc->maxproc);
        ipc_put_int(r, svc->nprocs);
        TAILQ_FOREACH(p, &master_procs, link) {
            if (p->svc != svc)
                continue;
            ipc_put_int(r, p->pid);
            ipc_put_int(r, p->started);
            ipc_put_int(r, p->busy);
        }
    }
}

/* Milliseconds left until deadline (at least 0). */
static int control_left(long long deadline)
{
    long long left = deadline - event_now_ms();

    return left > 0 ? (int)left : 0;
}

static void control_serve(int fd)
{
    /* One deadline for the whole exchange: a silent client costs master
     * at most CONTROL_TIMEOUT_MS, whatever step it stalls in. */
    long long deadline = event_now_ms() + CONTROL_TIMEOUT_MS;
    ipc_msg_t *req = NULL, *reply = NULL;
    const char *why = NULL;
    buf_t *errs;
    int stop = 0;

    if (ipc_peer_check(fd, 0) < 0) {
        msg_warn("control: rejected a client that is not root");
        return;
    }
    if (ipc_hello_recv(fd, MASTER_PROTO_NAME, MASTER_PROTO_VERSION, control_left(deadline), &why) < 0
        || ipc_hello_send(fd, MASTER_PROTO_NAME, MASTER_PROTO_VERSION, control_left(deadline)) < 0) {
        msg_warn("control: bad hello: %s", why ? why : strerror(errno));
        return;
    }
    if (ipc_recv(fd, &req, 4096, control_left(deadline)) != 1) {
        msg_warn("control: no request: %s", strerror(errno));
        return;
    }
    reply = ipc_msg_new(MASTER_REPLY, req->reqid);
    if (ipc_get_end(req) < 0) {
        ipc_put_int(reply, 0);
        ipc_put_str(reply, "malformed request");
    } else if (req->type == MASTER_STATUS) {
        control_status_reply(reply);
    } else if (req->type == MASTER_RELOAD) {
        errs = buf_new(0);
        if (master_reload(errs) == 0) {
            ipc_put_int(reply, 1);
            ipc_put_str(reply, "configuration reloaded");
        } else {
            ipc_put_int(reply, 0);
            ipc_put_str(reply, buf_cstr(errs));
        }
        buf_free(&errs);
    } else if (req->type == MASTER_STOP) {
        ipc_put_int(reply, 1);
        ipc_put_str(reply, "stopping");
        stop = 1;
    } else {
        msg_warn("control: unknown request %s", ipc_type_name(req->type));
        ipc_put_int(reply, 0);
        ipc_put_str(reply, "unknown request");
    }
    /* The reply gets a fresh second: a reload may have taken a while. */
    if (ipc_send(fd, reply, 1000) < 0)
        msg_warn("control: cannot send reply: %s", strerror(errno));
    ipc_msg_free(&req);
    ipc_msg_free(&reply);
    if (stop)
        master_begin_stop();
}

static void control_on_accept(event_loop_t *loop, int lfd, int events, void *arg)
{
    int fd;

    (void)loop;
    (void)events;
    (void)arg;
    fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    control_serve(fd);
    close(fd);
}

void control_open(void)
{
    master_proto_init();
    control_path = xasprintf("%s/%s", master_params.queue_directory, MASTER_SOCKET);
    control_fd = ipc_listen(control_path, 0600, 16);
    if (control_fd < 0)
        msg_fatal("cannot create the control socket %s: %s", control_path, strerror(errno));
    fcntl(control_fd, F_SETFL, fcntl(control_fd, F_GETFL) | O_NONBLOCK);
    event_add_fd(master_loop, control_fd, EVENT_READ, control_on_accept, NULL);
}

void control_close(void)
{
    if (control_fd < 0)
        return;
    if (master_loop)
        event_del_fd(master_loop, control_fd);
    close(control_fd);
    control_fd = -1;
    unlink(control_path);
}
