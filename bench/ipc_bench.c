/*
 * ipc_bench - how fast lib/ipc moves messages between two processes.
 *
 * A parent and a forked echo child over an AF_UNIX socketpair, the way
 * smtpd talks to cleanup and qmgr to local.  Prints round trips per second
 * for: a small request (3 fields), the same with a descriptor passed
 * (SCM_RIGHTS, as queue files travel), and a 64 KiB payload.  Figures only;
 * nothing here passes or fails on time.
 *
 * Usage: ipc_bench [SECONDS_PER_CASE]   (default 1)
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"
#include "msg.h"

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void echo_child(int sock)
{
    ipc_msg_t *m;

    while (ipc_recv(sock, &m, 1 << 20, -1) == 1) {
        ipc_msg_t *r = ipc_msg_new(m->type + 1, m->reqid);
        int64_t n;

        if (ipc_get_int(m, &n) == 0)
            ipc_put_int(r, n);
        ipc_send(sock, r, -1);
        ipc_msg_free(&r);
        ipc_msg_free(&m);
    }
    _exit(0);
}

static void run_case(const char *name, int sock, double seconds, int with_fd, size_t bulk)
{
    char *blob = bulk ? calloc(1, bulk) : NULL;
    long n = 0;
    double t0 = now(), t;

    do {
        for (int i = 0; i < 100; i++, n++) {
            ipc_msg_t *m = ipc_msg_new(1, (uint32_t)n), *r = NULL;

            ipc_put_int(m, n);
            ipc_put_str(m, "rcpt@example.org");
            ipc_put_bytes(m, blob ? blob : "x", blob ? bulk : 1);
            if (with_fd)
                ipc_set_fd(m, open("/dev/null", O_RDONLY | O_CLOEXEC));
            if (ipc_send(sock, m, 5000) < 0 || ipc_recv(sock, &r, 1 << 20, 5000) != 1)
                msg_fatal("%s: exchange failed", name);
            ipc_msg_free(&m);
            ipc_msg_free(&r);
        }
        t = now() - t0;
    } while (t < seconds);
    printf("%-34s %9.0f round trips/s  (%.1f us each)\n", name, n / t, t / n * 1e6);
    free(blob);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    int sv[2], status;
    pid_t pid;

    msg_init("ipc_bench", MSG_STDERR);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        msg_fatal("socketpair: %m");
    if ((pid = fork()) == 0) {
        close(sv[0]);
        echo_child(sv[1]);
    }
    close(sv[1]);
    printf("ipc_bench: parent <-> forked echo child over a socketpair, %.1fs per case\n", seconds);
    run_case("small request (int, str, 1 byte)", sv[0], seconds, 0, 0);
    run_case("small request + passed fd", sv[0], seconds, 1, 0);
    run_case("64 KiB payload", sv[0], seconds, 0, 64 * 1024);
    close(sv[0]);
    waitpid(pid, &status, 0);
    return 0;
}
