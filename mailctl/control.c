/*
 * control.c - mailctl start, stop, reload, status: starting master and
 * talking to it over its control socket (see master_proto.h).
 *
 * start:  check the configuration (and that it, daemon_directory and
 *         master are root's alone: lib/conftrust), create accounts and
 *         the spool (as root), then run master (which returns once it is
 *         serving), or exec it in the foreground with -f.
 * stop:   ask master to stop and wait until its process is gone.
 * reload: ask master to re-read the configuration; its errors are shown.
 * status: master's pid and uptime, and per service its processes.
 * Exit codes: 0 success, 1 failure or "not running", 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "conftrust.h"
#include "ipc.h"
#include "mailctl.h"
#include "master_proto.h"
#include "msg.h"
#include "xalloc.h"

#define CONTROL_TIMEOUT_MS 10000

/* The pid of the running master, or 0 when none holds the pid file lock. */
static pid_t running_master(void)
{
    char *path = xasprintf("%s/%s", conf_str("queue_directory"), MASTER_PID_FILE);
    char buf[32] = "";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    pid_t pid = 0;
    ssize_t n;

    free(path);
    if (fd < 0)
        return 0;
    /* Test master's lock without taking it (taking it, even for a moment,
     * could make a master starting right then fail). */
    if (fcntl(fd, F_OFD_GETLK, &lk) == 0 && lk.l_type != F_UNLCK) {
        n = read(fd, buf, sizeof(buf) - 1);
        buf[n > 0 ? n : 0] = '\0';
        pid = (pid_t)atol(buf);
        if (pid <= 0)
            pid = -1;       /* locked but not yet written: starting up */
    }
    close(fd);
    return pid;
}

/* One request/reply exchange with master; NULL with a message printed. */
static ipc_msg_t *control_request(uint32_t type)
{
    char *path = xasprintf("%s/%s", conf_str("queue_directory"), MASTER_SOCKET);
    ipc_msg_t *req, *reply = NULL;
    const char *why = NULL;
    int fd;

    master_proto_init();
    fd = ipc_connect(path);
    if (fd < 0) {
        if (errno == EACCES)
            fprintf(stderr, "mailctl: cannot reach %s: permission denied (run as root)\n", path);
        else if (errno == ENOENT || errno == ECONNREFUSED)
            fprintf(stderr, "mailctl: Posthorn is not running (%s)\n", conf_confdir());
        else
            fprintf(stderr, "mailctl: cannot reach %s: %s\n", path, strerror(errno));
        free(path);
        return NULL;
    }
    req = ipc_msg_new(type, 1);
    if (ipc_hello_send(fd, MASTER_PROTO_NAME, MASTER_PROTO_VERSION, CONTROL_TIMEOUT_MS) < 0
        || ipc_hello_recv(fd, MASTER_PROTO_NAME, MASTER_PROTO_VERSION, CONTROL_TIMEOUT_MS, &why) < 0
        || ipc_send(fd, req, CONTROL_TIMEOUT_MS) < 0
        || ipc_recv(fd, &reply, IPC_MAX_PAYLOAD, CONTROL_TIMEOUT_MS * 6) != 1
        || reply->type != MASTER_REPLY) {
        fprintf(stderr, "mailctl: no answer from master on %s: %s\n", path,
                why ? why : errno ? strerror(errno) : "unexpected reply");
        ipc_msg_free(&reply);
    }
    ipc_msg_free(&req);
    close(fd);
    free(path);
    return reply;
}

/* Reads the common ok/text head of a reply; prints text on failure. */
static int reply_ok(ipc_msg_t *r, char **text)
{
    int64_t ok = 0;

    *text = NULL;
    if (ipc_get_int(r, &ok) < 0 || ipc_get_str(r, text) < 0) {
        fprintf(stderr, "mailctl: malformed reply from master\n");
        return 0;
    }
    if (!ok)
        fprintf(stderr, "mailctl: %s%s", *text, (*text)[0] && (*text)[strlen(*text) - 1] == '\n' ? "" : "\n");
    return (int)ok;
}

int cmd_start(int argc, char **argv)
{
    int foreground = argc > 1 && strcmp(argv[1], "-f") == 0;
    buf_t *errs;
    char *master;
    pid_t pid;
    int status;

    if (argc > 2 || (argc == 2 && !foreground)) {
        fprintf(stderr, "usage: mailctl start [-f]\n");
        return 2;
    }
    if (mailctl_load_config(1) < 0)
        return 1;
    if (geteuid() != 0) {
        fprintf(stderr, "mailctl: start must be run as root\n");
        return 1;
    }
    /* The program about to run as root: root's, below root's directories. */
    errs = buf_new(0);
    if (conftrust_program(conf_str("daemon_directory"), "master", errs) < 0) {
        fputs(buf_cstr(errs), stderr);
        buf_free(&errs);
        return 1;
    }
    buf_free(&errs);
    if ((pid = running_master()) != 0) {
        fprintf(stderr, "mailctl: Posthorn is already running (master pid %ld)\n", (long)pid);
        return 1;
    }
    msg_init("mailctl", MSG_STDERR | MSG_SYSLOG);
    if (*conf_str("maillog_file"))
        msg_logfile(conf_str("maillog_file"));
    if (setup_accounts_and_spool() < 0 || setup_srs_secret() < 0)
        return 1;
    if (maps_aliases_ready(1) < 0) {
        fprintf(stderr, "mailctl: not starting: the alias tables are not usable\n");
        return 1;
    }
    maps_transport_ready(0);        /* warnings: qmgr defers what it cannot route */
    master = xasprintf("%s/master", conf_str("daemon_directory"));
    if (foreground) {
        execl(master, "master", "-f", "-c", conf_confdir(), (char *)NULL);
        fprintf(stderr, "mailctl: cannot run %s: %s\n", master, strerror(errno));
        return 1;
    }
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "mailctl: fork: %s\n", strerror(errno));
        return 1;
    }
    if (pid == 0) {
        execl(master, "master", "-c", conf_confdir(), (char *)NULL);
        fprintf(stderr, "mailctl: cannot run %s: %s\n", master, strerror(errno));
        _exit(127);
    }
    free(master);
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "mailctl: Posthorn did not start (see the messages above)\n");
        return 1;
    }
    printf("mailctl: Posthorn started (master pid %ld)\n", (long)running_master());
    return 0;
}

int cmd_stop(int argc, char **argv)
{
    ipc_msg_t *r;
    char *text;
    pid_t pid;
    int ok;

    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: mailctl stop\n");
        return 2;
    }
    if (mailctl_load_config(0) < 0)
        return 1;
    pid = running_master();
    if (pid == 0) {
        fprintf(stderr, "mailctl: Posthorn is not running (%s)\n", conf_confdir());
        return 1;
    }
    if ((r = control_request(MASTER_STOP)) == NULL)
        return 1;
    ok = reply_ok(r, &text);
    free(text);
    ipc_msg_free(&r);
    if (!ok)
        return 1;
    /* master waits master_stop_timeout for its children, then kills them;
     * it is gone when the pid file lock is free (it may linger as a
     * zombie until its parent reaps it, so kill(pid, 0) cannot tell). */
    for (long waited = 0; running_master() != 0; waited += 50) {
        if (waited > (conf_time("master_stop_timeout") + 10) * 1000) {
            fprintf(stderr, "mailctl: master (pid %ld) is still running\n", (long)pid);
            return 1;
        }
        usleep(50 * 1000);
    }
    printf("mailctl: Posthorn stopped\n");
    return 0;
}

int cmd_reload(int argc, char **argv)
{
    ipc_msg_t *r;
    char *text;
    int ok;

    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: mailctl reload\n");
        return 2;
    }
    if (mailctl_load_config(1) < 0)
        return 1;
    if ((r = control_request(MASTER_RELOAD)) == NULL)
        return 1;
    ok = reply_ok(r, &text);
    if (ok)
        printf("mailctl: %s\n", text);
    free(text);
    ipc_msg_free(&r);
    return ok ? 0 : 1;
}

static void format_uptime(char *buf, size_t len, time_t since)
{
    long s = (long)(time(NULL) - since);

    if (s < 0)
        s = 0;
    if (s >= 86400)
        snprintf(buf, len, "%ldd%02ldh", s / 86400, s % 86400 / 3600);
    else
        snprintf(buf, len, "%02ld:%02ld:%02ld", s / 3600, s % 3600 / 60, s % 60);
}

int cmd_status(int argc, char **argv)
{
    int64_t mpid, mstarted, nsvc;
    char up[32], *text;
    ipc_msg_t *r;
    int ok = 1;

    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: mailctl status\n");
        return 2;
    }
    if (mailctl_load_config(0) < 0)
        return 1;
    if (running_master() == 0) {
        fprintf(stderr, "mailctl: Posthorn is not running (%s)\n", conf_confdir());
        return 1;
    }
    if ((r = control_request(MASTER_STATUS)) == NULL)
        return 1;
    if (!reply_ok(r, &text) || ipc_get_int(r, &mpid) < 0 || ipc_get_int(r, &mstarted) < 0
        || ipc_get_int(r, &nsvc) < 0) {
        free(text);
        ipc_msg_free(&r);
        return 1;
    }
    free(text);
    format_uptime(up, sizeof(up), (time_t)mstarted);
    printf("master: running, pid %lld, up %s, configuration %s\n", (long long)mpid, up,
           conf_confdir());
    printf("%-22s %-5s %-10s %-9s %s\n", "SERVICE", "TYPE", "STATE", "PROCS", "COMMAND");
    for (int64_t i = 0; i < nsvc && ok; i++) {
        char *name = NULL, *type = NULL, *cmd = NULL, *state = NULL, procs[32];
        int64_t maxproc, nprocs;

        if (ipc_get_str(r, &name) < 0 || ipc_get_str(r, &type) < 0 || ipc_get_str(r, &cmd) < 0
            || ipc_get_str(r, &state) < 0 || ipc_get_int(r, &maxproc) < 0
            || ipc_get_int(r, &nprocs) < 0) {
            ok = 0;
        } else {
            if (maxproc)
                snprintf(procs, sizeof(procs), "%lld/%lld", (long long)nprocs, (long long)maxproc);
            else
                snprintf(procs, sizeof(procs), "%lld/-", (long long)nprocs);
            printf("%-22s %-5s %-10s %-9s %s\n", name, type, state, procs, cmd);
            for (int64_t j = 0; j < nprocs; j++) {
                int64_t pid, started, busy;

                if (ipc_get_int(r, &pid) < 0 || ipc_get_int(r, &started) < 0
                    || ipc_get_int(r, &busy) < 0) {
                    ok = 0;
                    break;
                }
                format_uptime(up, sizeof(up), (time_t)started);
                printf("    pid %-8lld %-5s up %s\n", (long long)pid, busy ? "busy" : "idle", up);
            }
        }
        free(name);
        free(type);
        free(cmd);
        free(state);
    }
    if (!ok || ipc_get_end(r) < 0) {
        fprintf(stderr, "mailctl: malformed status reply from master\n");
        ok = 0;
    }
    ipc_msg_free(&r);
    return ok ? 0 : 1;
}
