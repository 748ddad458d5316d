/*
 * testsvc - a small service program for the integration tests: it stands in
 * for the daemons that do not exist yet and exercises the server skeleton.
 *
 * Its own options come before the ones master passes and are removed before
 * server_main() sees them:
 *   --user=PARAM       drop to the account named by main.conf PARAM
 *   --chroot=spool|empty|none
 *   --multi            SERVER_MULTI instead of SERVER_SINGLE
 *   --fail-at-start    exit 1 before serving (to test throttling)
 *   --exit-at-start    exit 0 before serving (must be throttled too)
 *   --no-idle-exit     keep running (wakeup services)
 * Each connection gets "testsvc SERVICE pid PID uid UID gid GID" and then
 * every line it sends echoed back until "quit".  A wakeup logs
 * "testsvc SERVICE wakeup".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "msg.h"
#include "server.h"
#include "stream.h"

static void testsvc_serve(int fd)
{
    stream_t *s = stream_open(fd);
    buf_t *line = buf_new(0);
    ssize_t n;

    stream_set_timeout(s, 10000);
    stream_printf(s, "testsvc %s pid %ld uid %ld gid %ld\r\n", server_service_name(),
                  (long)getpid(), (long)getuid(), (long)getgid());
    stream_flush(s);
    while ((n = stream_getline(s, line, 1000)) > 0) {
        if (strncmp(buf_cstr(line), "quit", 4) == 0)
            break;
        stream_write(s, line->data, line->len);
        stream_flush(s);
    }
    buf_free(&line);
    stream_free(&s);
}

static void testsvc_accept(event_loop_t *loop, int fd)
{
    (void)loop;
    testsvc_serve(fd);
    close(fd);
    server_conn_end();
}

static void testsvc_wakeup(event_loop_t *loop)
{
    (void)loop;
    msg_info("testsvc %s wakeup", server_service_name());
}

int main(int argc, char **argv)
{
    struct server_opts opts = {
        .mode = SERVER_SINGLE,
        .chroot = SERVER_CHROOT_NONE,
        .serve = testsvc_serve,
        .accept = testsvc_accept,
        .wakeup = testsvc_wakeup,
    };
    int out = 1;

    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--user=", 7) == 0)
            opts.user_param = argv[i] + 7;
        else if (strcmp(argv[i], "--chroot=spool") == 0)
            opts.chroot = SERVER_CHROOT_SPOOL;
        else if (strcmp(argv[i], "--chroot=empty") == 0)
            opts.chroot = SERVER_CHROOT_EMPTY;
        else if (strcmp(argv[i], "--chroot=none") == 0)
            opts.chroot = SERVER_CHROOT_NONE;
        else if (strcmp(argv[i], "--multi") == 0)
            opts.mode = SERVER_MULTI;
        else if (strcmp(argv[i], "--no-idle-exit") == 0)
            opts.no_idle_exit = 1;
        else if (strcmp(argv[i], "--exit-at-start") == 0)
            exit(0);
        else if (strcmp(argv[i], "--fail-at-start") == 0) {
            msg_init(argv[0], MSG_STDERR | MSG_SYSLOG);
            msg_fatal("failing at start-up as asked");
        } else
            argv[out++] = argv[i];
    }
    argv[out] = NULL;
    server_main(out, argv, &opts);
}
