/*
 * master - the Posthorn process manager.  Runs as root.
 *
 * Reads main.conf and master.conf, binds every listener, and fork+execs
 * each service with its listeners on fixed descriptors (see server.h),
 * spawning more processes on demand up to each service's limit.  SIGHUP
 * (or "mailctl reload") re-reads the configuration and replaces the
 * services gracefully; SIGTERM/SIGINT (or "mailctl stop") stops everything
 * within master_stop_timeout.  A pid file with an flock() makes a second
 * master refuse to start.  The control socket serves mailctl.
 *
 * Usage: master [-c CONFDIR] [-f] [-v]
 *   -f  stay in the foreground and also log to stderr
 *
 * Parameters read: config_directory, queue_directory, daemon_directory,
 * command_directory (the programs of jobs), maillog_file, inet_interfaces,
 * default_process_limit, service_throttle_time, master_stop_timeout.
 *
 * Trust: the configuration directory, main.conf, master.conf,
 * daemon_directory and every program master.conf names must be root's
 * and writable by nobody else, and so must every directory above them and
 * every symbolic link on the way (lib/conftrust); master checks them
 * before it reads or accepts them, at start and at every reload, and
 * checks a program again each time before it runs it (service.c).  At
 * start queue_directory must pass the same check (lib/trustpath).
 *
 * Failure modes: configuration errors, an untrusted file ("FILE: reason")
 * and failure to bind are fatal at start and reported (old configuration
 * kept) at reload; a service that fails at start-up, or whose program is
 * no longer trusted, is throttled, never respawned in a loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "conftrust.h"
#include "ipc.h"
#include "master.h"
#include "master_proto.h"
#include "msg.h"
#include "trustpath.h"
#include "xalloc.h"

struct master_params master_params;
struct service_list master_services = TAILQ_HEAD_INITIALIZER(master_services);
struct proc_list master_procs = TAILQ_HEAD_INITIALIZER(master_procs);
event_loop_t *master_loop;
int master_foreground;
int master_stopping;
time_t master_started;

static int pid_fd = -1;
static char *pid_path;
static event_timer_t *stop_timer;

static void master_params_free(struct master_params *mp)
{
    free(mp->config_directory);
    free(mp->queue_directory);
    free(mp->daemon_directory);
    free(mp->command_directory);
    free(mp->maillog_file);
    free(mp->inet_interfaces);
    memset(mp, 0, sizeof(*mp));
}

static void master_params_copy(struct master_params *mp)
{
    mp->config_directory = xstrdup(conf_str("config_directory"));
    mp->queue_directory = xstrdup(conf_str("queue_directory"));
    mp->daemon_directory = xstrdup(conf_str("daemon_directory"));
    mp->command_directory = xstrdup(conf_str("command_directory"));
    mp->maillog_file = xstrdup(conf_str("maillog_file"));
    mp->inet_interfaces = xstrdup(conf_str("inet_interfaces"));
    mp->default_process_limit = (int)conf_int("default_process_limit");
    mp->throttle_time = conf_time("service_throttle_time");
    mp->stop_timeout = conf_time("master_stop_timeout");
}

/* Load main.conf and master.conf from confdir, each only after checking
 * that root alone controls it, and check daemon_directory and every
 * program master.conf names (lib/conftrust); NULL on error. */
static struct master_conf *master_load(const char *confdir, buf_t *errs)
{
    struct master_conf *mc;
    char *path;

    if (conftrust_main(confdir, errs) < 0 || conf_load(confdir, errs) < 0
        || conftrust_master(confdir, errs) < 0)
        return NULL;
    path = xasprintf("%s/master.conf", confdir);
    mc = master_conf_load(path, errs);
    free(path);
    if (mc && conftrust_programs(conf_str("daemon_directory"), conf_str("command_directory"), mc,
                                 errs) < 0)
        master_conf_free(&mc);
    return mc;
}

int master_reload(buf_t *errs)
{
    struct master_params old = master_params, fresh = {0};
    struct service_list next;
    struct master_conf *mc;

    mc = master_load(old.config_directory, errs);
    if (mc == NULL) {
        msg_warn("reload failed, keeping the running configuration: %s", buf_cstr(errs));
        return -1;
    }
    master_params_copy(&fresh);
    if (strcmp(fresh.queue_directory, old.queue_directory) != 0
        || strcmp(fresh.inet_interfaces, old.inet_interfaces) != 0) {
        int q = strcmp(fresh.queue_directory, old.queue_directory) != 0;

        /* The old listeners hold the addresses the new ones would need. */
        buf_printf(errs, "%s changed from %s to %s: that needs mailctl stop and start\n",
                   q ? "queue_directory" : "inet_interfaces",
                   q ? old.queue_directory : old.inet_interfaces,
                   q ? fresh.queue_directory : fresh.inet_interfaces);
        master_conf_free(&mc);
        master_params_free(&fresh);
        msg_warn("reload failed: %s", buf_cstr(errs));
        return -1;
    }
    master_params = fresh;
    if (service_table_build(mc, &next, &master_services, errs) < 0) {
        master_params_free(&master_params);
        master_params = old;
        master_conf_free(&mc);
        msg_warn("reload failed, keeping the running configuration: %s", buf_cstr(errs));
        return -1;
    }
    master_conf_free(&mc);
    master_params_free(&old);
    while (!TAILQ_EMPTY(&master_services)) {
        struct service *svc = TAILQ_FIRST(&master_services);

        TAILQ_REMOVE(&master_services, svc, link);
        service_retire(&svc);
    }
    TAILQ_CONCAT(&master_services, &next, link);
    service_table_start(&master_services);
    if (msg_logfile(master_params.maillog_file) < 0)
        msg_warn("cannot open maillog_file %s: %s", master_params.maillog_file, strerror(errno));
    msg_info("reload -- configuration %s", master_params.config_directory);
    return 0;
}

static void master_cleanup(void)
{
    control_close();
    if (pid_fd >= 0) {
        /* Empty it but never unlink it: a master starting now may already
         * have it open, and would lock an unlinked file. */
        if (ftruncate(pid_fd, 0) < 0)
            (void)0;
        close(pid_fd);
        pid_fd = -1;
    }
}

static void master_finish(void)
{
    master_cleanup();
    msg_info("terminating");
    exit(0);
}

static void master_stop_expired(event_loop_t *loop, void *arg)
{
    struct proc *p;

    (void)loop;
    (void)arg;
    stop_timer = NULL;
    TAILQ_FOREACH(p, &master_procs, link) {
        msg_warn("process %ld did not stop within %llds: killing it", (long)p->pid,
                 master_params.stop_timeout);
        kill(p->job ? -p->pid : p->pid, SIGKILL);
    }
}

void master_begin_stop(void)
{
    if (master_stopping)
        return;
    master_stopping = 1;
    msg_info("stopping");
    control_close();
    service_stop_all();
    if (TAILQ_EMPTY(&master_procs))
        master_finish();
    stop_timer = event_add_timer(master_loop, master_params.stop_timeout * 1000,
                                 master_stop_expired, NULL);
}

static void master_on_signal(event_loop_t *loop, int signo, void *arg)
{
    buf_t *errs;

    (void)loop;
    (void)arg;
    switch (signo) {
    case SIGCHLD:
        service_reap_children();
        if (master_stopping && TAILQ_EMPTY(&master_procs))
            master_finish();
        break;
    case SIGHUP:
        if (master_stopping)
            break;                  /* never bind listeners again while stopping */
        errs = buf_new(0);
        master_reload(errs);
        buf_free(&errs);
        break;
    default:
        master_begin_stop();
        break;
    }
}

/* Take the pid file lock; a second master fails here with a clear message.
 * It is an open-file-description lock: it stays with the daemon child after
 * fork, and mailctl can test it (F_OFD_GETLK) without ever taking it. */
static void master_lock_pid_file(void)
{
    struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    char buf[32] = "";
    ssize_t n;

    pid_path = xasprintf("%s/%s", master_params.queue_directory, MASTER_PID_FILE);
    pid_fd = open(pid_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (pid_fd < 0)
        msg_fatal("cannot open pid file %s: %s (mailctl start creates the spool)", pid_path,
                  strerror(errno));
    if (fcntl(pid_fd, F_OFD_SETLK, &lk) < 0) {
        n = pread(pid_fd, buf, sizeof(buf) - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        pid_fd = -1;            /* not ours: do not remove it on exit */
        msg_fatal("the Posthorn master is already running (pid %s, %s)", buf[0] ? buf : "?",
                  pid_path);
    }
}

static void master_write_pid_file(void)
{
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

    if (ftruncate(pid_fd, 0) < 0 || pwrite(pid_fd, buf, (size_t)len, 0) != len)
        msg_fatal("cannot write pid file %s: %s", pid_path, strerror(errno));
}

/* The lines of errs, one error each, on stderr and in syslog: FILE:LINE:
 * message or FILE: reason. */
static void master_report(const buf_t *errs)
{
    for (const char *l = buf_cstr(errs); *l; ) {
        size_t n = strcspn(l, "\n");

        msg_error("%.*s", (int)n, l);
        l += n + (l[n] == '\n');
    }
}

static _Noreturn void usage(void)
{
    fprintf(stderr, "usage: master [-c CONFDIR] [-f] [-v]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *confdir = getenv("POSTHORN_CONFIG");
    struct master_conf *mc;
    buf_t *errs = buf_new(0);
    const uid_t root = 0;
    int ch, ready[2] = {-1, -1};
    sigset_t none;

    /* Nothing of our caller's but stdin/out/err, no signal blocked. */
    closefrom(3);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    msg_init("master", MSG_STDERR | MSG_SYSLOG);
    while ((ch = getopt(argc, argv, "c:fv")) != -1) {
        switch (ch) {
        case 'c': confdir = optarg; break;
        case 'f': master_foreground = 1; break;
        case 'v': msg_verbose++; break;
        default: usage();
        }
    }
    if (optind != argc)
        usage();
    if (confdir == NULL || *confdir == '\0')
        confdir = DEF_CONFIG_DIRECTORY;
    if (geteuid() != 0)
        msg_fatal("master must be started as root (it binds the listeners and drops "
                  "privileges for each service)");
    umask(022);
    mc = master_load(confdir, errs);
    if (mc == NULL) {
        master_report(errs);
        msg_fatal("bad configuration, not starting");
    }
    master_params_copy(&master_params);
    /* master binds its sockets and writes its pid file in the spool:
     * nobody else may be able to swap it or a directory above it
     * (mailctl start made it so). */
    if (trustpath_check(master_params.queue_directory, TRUSTPATH_DIR, &root, 1, errs) < 0) {
        master_report(errs);
        msg_fatal("cannot use queue_directory %s, not starting", master_params.queue_directory);
    }
    if (*master_params.maillog_file && msg_logfile(master_params.maillog_file) < 0)
        msg_warn("cannot open maillog_file %s: %s", master_params.maillog_file, strerror(errno));
    if (chdir(master_params.queue_directory) < 0)
        msg_fatal("cannot enter queue_directory %s: %s", master_params.queue_directory,
                  strerror(errno));
    signal(SIGPIPE, SIG_IGN);
    master_lock_pid_file();

    if (!master_foreground) {
        pid_t pid;
        char ok;

        if (pipe2(ready, O_CLOEXEC) < 0)
            msg_fatal("pipe: %s", strerror(errno));
        pid = fork();
        if (pid < 0)
            msg_fatal("fork: %s", strerror(errno));
        if (pid > 0) {
            /* Exit 0 only once the child is up and serving. */
            close(ready[1]);
            _exit(read(ready[0], &ok, 1) == 1 ? 0 : 1);
        }
        close(ready[0]);
        setsid();
    }
    master_write_pid_file();
    msg_fatal_hook(master_cleanup);

    master_loop = event_loop_new();
    event_add_signal(master_loop, SIGCHLD, master_on_signal, NULL);
    event_add_signal(master_loop, SIGHUP, master_on_signal, NULL);
    event_add_signal(master_loop, SIGTERM, master_on_signal, NULL);
    event_add_signal(master_loop, SIGINT, master_on_signal, NULL);
    if (service_table_build(mc, &master_services, NULL, errs) < 0) {
        fprintf(stderr, "%s", buf_cstr(errs));
        msg_fatal("cannot open the listeners, not starting");
    }
    master_conf_free(&mc);
    buf_free(&errs);
    control_open();
    master_started = time(NULL);

    if (!master_foreground) {
        /* Detach before any service starts: they inherit stdin/out/err,
         * and must not keep the caller's terminal or pipe open. */
        int null = open("/dev/null", O_RDWR);

        msg_init("master", MSG_SYSLOG);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
            if (null > 2)
                close(null);
        }
        if (write(ready[1], "", 1) < 0)
            (void)0;
        close(ready[1]);
    }
    service_table_start(&master_services);
    msg_info("daemon started -- version %s, configuration %s", POSTHORN_VERSION,
             master_params.config_directory);
    event_loop_run(master_loop);
    return 0;
}
