/*
 * service.c - master's service table: spawning on demand, the status and
 * trigger pipes, reaping, throttling, wakeups, graceful replacement.
 *
 * Demand: while a service has no available process and is below its
 * process limit, master itself watches the service's listeners; when one
 * becomes readable it forks another process and stops watching until the
 * processes report themselves busy again.  A new process counts as
 * available from the moment it is forked.
 *
 * Status: each service has one pipe that all its processes write
 * struct server_status records to (atomic, 8 bytes), and one "trigger"
 * pipe master writes wakeup bytes to.  Closing the trigger pipe tells the
 * processes to finish what they are doing and exit: that is how a reload
 * replaces a service generation without breaking sessions in progress.
 *
 * Services with a wakeup time are kept running (like Postfix's qmgr): one
 * process is started at once and again whenever it dies.  Jobs (type job)
 * are not services: job.c runs them once a period and nothing here
 * starts them again when they end.
 *
 * Throttling: a process that exits abnormally before it ever reported a
 * status failed at start-up (bad program, bad configuration); the service
 * is then not started again for service_throttle_time, instead of being
 * respawned in a loop.  So is a service whose program (or daemon_directory,
 * or a directory above) is no longer root's alone: it is checked again
 * (lib/conftrust) before every fork, since it runs as root.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conftrust.h"
#include "master.h"
#include "msg.h"
#include "server.h"
#include "xalloc.h"

static void service_spawn(struct service *svc);
static void service_throttle(struct service *svc, const char *why);

/* A long-running service master keeps one process of (qmgr, pickup)? */
static int service_always_on(const struct service *svc)
{
    return svc->wakeup && svc->type != MASTER_SVC_JOB;
}

/* Below the process limit?  For a singleton (maxproc 1, e.g. qmgr, the
 * only mover of queue files) the process of the replaced generation that
 * is still finishing counts too: a reload never runs two.  For a pool the
 * old generation is on its way out and the new one starts at full size. */
static int service_below_limit(const struct service *svc)
{
    if (svc->maxproc == 0)
        return 1;
    return svc->nprocs + (svc->maxproc == 1 ? svc->nretired : 0) < svc->maxproc;
}

static void service_set_polling(struct service *svc)
{
    int want = !master_stopping && !svc->throttled && !svc->backoff_timer && svc->nlisten > 0
        && svc->navail == 0 && service_below_limit(svc);

    if (want == svc->polling)
        return;
    svc->polling = want;
    for (int i = 0; i < svc->nlisten; i++)
        event_mod_fd(master_loop, svc->listen_fds[i], want ? EVENT_READ : 0);
}

static void service_on_demand(event_loop_t *loop, int fd, int events, void *arg)
{
    struct service *svc = arg;

    (void)loop;
    (void)fd;
    (void)events;
    if (svc->polling)
        service_spawn(svc);
}

static struct proc *proc_find(pid_t pid)
{
    struct proc *p;

    TAILQ_FOREACH(p, &master_procs, link)
        if (p->pid == pid)
            return p;
    return NULL;
}

static void service_on_status(event_loop_t *loop, int fd, int events, void *arg)
{
    struct service *svc = arg;
    struct server_status st[64];
    ssize_t n;

    (void)loop;
    (void)events;
    while ((n = read(fd, st, sizeof(st))) > 0) {
        for (size_t i = 0; i < (size_t)n / sizeof(st[0]); i++) {
            struct proc *p = proc_find(st[i].pid);

            if (p == NULL || p->svc != svc)
                continue;           /* already reaped, or a stale record */
            p->reported = 1;
            if (st[i].state == SERVER_BUSY && !p->busy) {
                p->busy = 1;
                svc->navail--;
            } else if (st[i].state == SERVER_AVAIL && p->busy) {
                p->busy = 0;
                svc->navail++;
            }
        }
    }
    service_set_polling(svc);
}

/* Put fd at a fixed number in the child.  Sources were first moved above
 * every target, so no dup2 here can clobber a descriptor still needed. */
static void child_place_fd(int from, int to)
{
    if (dup2(from, to) < 0)
        _exit(126);
}

static int high_dup(int fd)
{
    int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 100);

    if (nfd < 0)
        _exit(126);
    return nfd;
}

/* In the child: no signal blocked, every disposition the default, so the
 * service starts as a freshly exec'd program should (master blocks the
 * signals it handles and ignores SIGPIPE; its caller may have done more). */
void service_child_reset_signals(void)
{
    /* The kernel's struct sigaction: glibc's signal() refuses the signals
     * it reserves for itself (32, 33), yet those too can arrive ignored
     * from whoever started master, and an ignored signal survives exec. */
    struct {
        void (*handler)(int);
        unsigned long flags;
        void (*restorer)(void);
        uint64_t mask;
    } dfl = {SIG_DFL, 0, NULL, 0};
    sigset_t none;

    event_reset_signals();
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        if (sig < SIGRTMIN && sig > 31)
            syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(dfl.mask));
        else
            signal(sig, SIG_DFL);
    }
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

char **service_child_environment(void)
{
    static const char *keep[] = {"ASAN_OPTIONS=", "UBSAN_OPTIONS=", "LSAN_OPTIONS=", "TZ=", NULL};
    extern char **environ;
    char **env = xcalloc(16, sizeof(char *));
    int n = 0;

    env[n++] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
    env[n++] = xasprintf("POSTHORN_CONFIG=%s", master_params.config_directory);
    if (master_foreground)
        env[n++] = "POSTHORN_LOG_STDERR=1";
    for (char **e = environ; *e && n < 14; e++)
        for (const char **k = keep; *k; k++)
            if (strncmp(*e, *k, strlen(*k)) == 0)
                env[n++] = *e;
    env[n] = NULL;
    return env;
}

static void service_backoff_over(event_loop_t *loop, void *arg)
{
    struct service *svc = arg;

    (void)loop;
    svc->backoff_timer = NULL;
    if (service_always_on(svc) && svc->nprocs == 0)
        service_spawn(svc);
    service_set_polling(svc);
}

/* Is the program still root's alone, and everything on its way?  It was
 * checked at start or reload, but runs as root every time. */
int service_program_trusted(struct service *svc)
{
    buf_t *errs = buf_new(0);
    int rc = conftrust_program(svc->type == MASTER_SVC_JOB ? master_params.command_directory
                               : master_params.daemon_directory, svc->argv[0], errs);

    if (rc < 0) {
        buf_truncate(errs, errs->len - (errs->len && errs->data[errs->len - 1] == '\n'));
        msg_error("service %s: %s -- not running it", svc->name, buf_cstr(errs));
    }
    buf_free(&errs);
    return rc;
}

static void service_spawn(struct service *svc)
{
    struct proc *p;
    pid_t pid;

    if (master_stopping || svc->throttled || svc->backoff_timer || !service_below_limit(svc))
        return;
    if (service_program_trusted(svc) < 0) {
        service_throttle(svc, "is not trusted");
        return;
    }
    pid = fork();
    if (pid < 0) {
        /* Out of processes or memory: do not retry in a loop. */
        msg_warn("service %s: fork: %s -- trying again in 1s", svc->name, strerror(errno));
        svc->backoff_timer = event_add_timer(master_loop, 1000, service_backoff_over, svc);
        service_set_polling(svc);
        return;
    }
    if (pid == 0) {
        char *path = xasprintf("%s/%s", master_params.daemon_directory, svc->argv[0]);
        char **argv = xcalloc((size_t)svc->argc + 12, sizeof(char *));
        char nlisten[16];
        int status_fd, trigger_fd, *lfds, n = 0;

        msg_fatal_hook(NULL);       /* master's clean-up is not ours to run */
        service_child_reset_signals();
        setsid();                   /* no controlling terminal (start -f) */
        status_fd = high_dup(svc->status_wr);
        trigger_fd = high_dup(svc->trigger_rd);
        lfds = xcalloc((size_t)svc->nlisten + 1, sizeof(int));
        for (int i = 0; i < svc->nlisten; i++)
            lfds[i] = high_dup(svc->listen_fds[i]);
        child_place_fd(status_fd, SERVER_STATUS_FD);
        child_place_fd(trigger_fd, SERVER_TRIGGER_FD);
        for (int i = 0; i < svc->nlisten; i++)
            child_place_fd(lfds[i], SERVER_LISTEN_FD + i);
        closefrom(SERVER_LISTEN_FD + svc->nlisten);
        snprintf(nlisten, sizeof(nlisten), "%d", svc->nlisten);
        argv[n++] = svc->argv[0];
        argv[n++] = "-c";
        argv[n++] = master_params.config_directory;
        argv[n++] = "-n";
        argv[n++] = svc->name;
        argv[n++] = "-t";
        argv[n++] = svc->type == MASTER_SVC_INET ? "inet" : "unix";
        argv[n++] = "-s";
        argv[n++] = nlisten;
        if (msg_verbose)
            argv[n++] = "-v";
        for (int i = 1; i < svc->argc; i++)
            argv[n++] = svc->argv[i];
        argv[n] = NULL;
        execve(path, argv, service_child_environment());
        msg_warn("service %s: cannot execute %s: %s", svc->name, path, strerror(errno));
        _exit(127);
    }
    p = xcalloc(1, sizeof(*p));
    p->pid = pid;
    p->svc = svc;
    p->key = xstrdup(svc->key);
    p->started = time(NULL);
    TAILQ_INSERT_TAIL(&master_procs, p, link);
    svc->nprocs++;
    svc->navail++;
    msg_debug("service %s: started process %ld", svc->name, (long)pid);
    service_set_polling(svc);
}

static void service_unthrottle(event_loop_t *loop, void *arg)
{
    struct service *svc = arg;

    (void)loop;
    svc->throttle_timer = NULL;
    svc->throttled = 0;
    msg_info("service %s: throttle time is over, starting again", svc->name);
    if (service_always_on(svc) && svc->nprocs == 0)
        service_spawn(svc);
    service_set_polling(svc);
}

/* Do not start svc again for service_throttle_time; why: what went wrong
 * with its program. */
static void service_throttle(struct service *svc, const char *why)
{
    if (svc->throttled)
        return;
    svc->throttled = 1;
    msg_warn("service %s: %s%s%s %s -- throttling for %llds", svc->name,
             master_params.daemon_directory, "/", svc->argv[0], why, master_params.throttle_time);
    svc->throttle_timer = event_add_timer(master_loop, master_params.throttle_time * 1000,
                                          service_unthrottle, svc);
    service_set_polling(svc);
}

static void service_on_wakeup(event_loop_t *loop, void *arg)
{
    struct service *svc = arg;

    (void)loop;
    svc->wakeup_timer = event_add_timer(master_loop, svc->wakeup * 1000LL, service_on_wakeup, svc);
    if (svc->nprocs == 0)
        service_spawn(svc);
    if (write(svc->trigger_wr, "W", 1) < 0 && errno != EAGAIN)
        msg_warn("service %s: wakeup: %s", svc->name, strerror(errno));
}

static void proc_exited(struct proc *p, int status)
{
    struct service *svc = p->svc;
    char how[64];
    int abnormal;

    if (WIFEXITED(status))
        snprintf(how, sizeof(how), "exit status %d", WEXITSTATUS(status));
    else
        snprintf(how, sizeof(how), "killed by signal %d", WTERMSIG(status));
    abnormal = !(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        && !(master_stopping && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
    if (svc == NULL) {
        struct service *now;

        if (p->job)
            job_exited(p, status);
        else
            msg_debug("retired process %ld: %s", (long)p->pid, how);
        /* The service that replaced it may now start its own process. */
        TAILQ_FOREACH(now, &master_services, link) {
            if (strcmp(now->key, p->key) == 0 && now->nretired > 0) {
                now->nretired--;
                if (service_always_on(now) && now->nprocs == 0 && !master_stopping)
                    service_spawn(now);
                service_set_polling(now);
                break;
            }
        }
        return;
    }
    svc->nprocs--;
    if (!p->busy)
        svc->navail--;
    if (svc->type == MASTER_SVC_JOB) {
        job_exited(p, status);
        return;
    }
    if (abnormal)
        msg_warn("service %s: process %ld (%s) %s", svc->name, (long)p->pid, svc->argv[0], how);
    else
        msg_debug("service %s: process %ld %s", svc->name, (long)p->pid, how);
    /* A process that ends before it ever served (whatever its exit
     * status), or an always-on service dying right after it started,
     * would otherwise be respawned in a loop. */
    if (!master_stopping
        && (!p->reported || (abnormal && svc->wakeup && time(NULL) - p->started < 2)))
        service_throttle(svc, "failed at start-up");
    else if (service_always_on(svc) && svc->nprocs == 0 && !master_stopping)
        service_spawn(svc);
    service_set_polling(svc);
}

void service_reap_children(void)
{
    pid_t pid;
    int status;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct proc *p = proc_find(pid);

        if (p == NULL)
            continue;
        TAILQ_REMOVE(&master_procs, p, link);
        proc_exited(p, status);
        free(p->key);
        free(p);
    }
}

static void service_free(struct service *svc)
{
    for (int i = 0; i < svc->argc; i++)
        free(svc->argv[i]);
    free(svc->argv);
    free(svc->listen_fds);
    free(svc->command_line);
    free(svc->name);
    free(svc->key);
    free(svc);
}

static int make_pipe(int p[2], int nonblock_read, int nonblock_write)
{
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    if (nonblock_read)
        fcntl(p[0], F_SETFL, O_NONBLOCK);
    if (nonblock_write)
        fcntl(p[1], F_SETFL, O_NONBLOCK);
    return 0;
}

/* Build services from mc.  Listeners of an old service with the same key
 * are taken over (so a reload never rebinds a port in use); everything else
 * is bound fresh.  On error nothing in old is touched. */
int service_table_build(struct master_conf *mc, struct service_list *out,
                        struct service_list *old, buf_t *errs)
{
    TAILQ_INIT(out);
    for (size_t i = 0; i < mc->nsvcs; i++) {
        struct master_svc *ms = &mc->svcs[i];
        struct service *svc = xcalloc(1, sizeof(*svc)), *o;
        buf_t *cmd = buf_new(0);

        svc->key = xasprintf("%s:%s", master_svc_type_name(ms->type), ms->name);
        svc->name = xstrdup(ms->name);
        svc->type = ms->type;
        svc->private_socket = ms->private_socket;
        svc->wakeup = ms->wakeup;
        svc->maxproc = ms->maxproc < 0 ? master_params.default_process_limit : ms->maxproc;
        svc->argc = ms->argc;
        svc->argv = xcalloc((size_t)ms->argc + 1, sizeof(char *));
        for (int a = 0; a < ms->argc; a++) {
            svc->argv[a] = xstrdup(ms->argv[a]);
            buf_printf(cmd, "%s%s", a ? " " : "", ms->argv[a]);
        }
        svc->command_line = buf_steal(cmd, NULL);
        buf_free(&cmd);
        svc->status_rd = svc->status_wr = svc->trigger_rd = svc->trigger_wr = -1;
        TAILQ_INSERT_TAIL(out, svc, link);

        o = NULL;
        if (old)
            TAILQ_FOREACH(o, old, link)
                if (strcmp(o->key, svc->key) == 0 && o->nlisten > 0
                    && !(svc->type == MASTER_SVC_UNIX && o->private_socket != svc->private_socket))
                    break;
        if (o) {
            svc->listen_fds = o->listen_fds;
            svc->nlisten = o->nlisten;
            o->listen_fds = NULL;
            o->nlisten = 0;
            for (int l = 0; l < svc->nlisten; l++)
                event_del_fd(master_loop, svc->listen_fds[l]);
        } else if (ms->type != MASTER_SVC_JOB
                   && listen_open(ms, &svc->listen_fds, &svc->nlisten, errs) < 0) {
            goto fail;
        }
    }
    return 0;

fail:
    /* Give taken-over listeners back, close the new ones. */
    while (!TAILQ_EMPTY(out)) {
        struct service *svc = TAILQ_FIRST(out), *o = NULL;

        TAILQ_REMOVE(out, svc, link);
        if (old)
            TAILQ_FOREACH(o, old, link)
                if (strcmp(o->key, svc->key) == 0 && o->nlisten == 0 && svc->nlisten > 0)
                    break;
        if (o) {
            o->listen_fds = svc->listen_fds;
            o->nlisten = svc->nlisten;
            svc->listen_fds = NULL;
            for (int l = 0; l < o->nlisten; l++)
                event_add_fd(master_loop, o->listen_fds[l], o->polling ? EVENT_READ : 0,
                             service_on_demand, o);
        } else {
            for (int l = 0; l < svc->nlisten; l++)
                close(svc->listen_fds[l]);
        }
        service_free(svc);
    }
    return -1;
}

void service_table_start(struct service_list *list)
{
    struct service *svc;
    struct proc *proc;
    int p[2];

    TAILQ_FOREACH(svc, list, link) {
        TAILQ_FOREACH(proc, &master_procs, link)
            if (proc->svc == NULL && strcmp(proc->key, svc->key) == 0)
                svc->nretired++;
        if (make_pipe(p, 1, 0) < 0)
            msg_fatal("pipe: %s", strerror(errno));
        svc->status_rd = p[0];
        svc->status_wr = p[1];
        if (make_pipe(p, 0, 1) < 0)
            msg_fatal("pipe: %s", strerror(errno));
        svc->trigger_rd = p[0];
        svc->trigger_wr = p[1];
        event_add_fd(master_loop, svc->status_rd, EVENT_READ, service_on_status, svc);
        for (int i = 0; i < svc->nlisten; i++)
            event_add_fd(master_loop, svc->listen_fds[i], 0, service_on_demand, svc);
        service_set_polling(svc);
        if (svc->type == MASTER_SVC_JOB) {
            job_start(svc);
        } else if (svc->wakeup) {
            service_spawn(svc);
            svc->wakeup_timer = event_add_timer(master_loop, svc->wakeup * 1000LL,
                                                service_on_wakeup, svc);
        }
    }
}

/* Stop using svc: its processes see EOF on the trigger pipe and leave when
 * their current work is done; its listeners (unless taken over) close. */
void service_retire(struct service **svcp)
{
    struct service *svc = *svcp;
    struct proc *p;

    TAILQ_FOREACH(p, &master_procs, link)
        if (p->svc == svc)
            p->svc = NULL;
    event_cancel_timer(master_loop, &svc->throttle_timer);
    event_cancel_timer(master_loop, &svc->wakeup_timer);
    event_cancel_timer(master_loop, &svc->backoff_timer);
    for (int i = 0; i < svc->nlisten; i++) {
        event_del_fd(master_loop, svc->listen_fds[i]);
        close(svc->listen_fds[i]);
    }
    if (svc->status_rd >= 0) {
        event_del_fd(master_loop, svc->status_rd);
        close(svc->status_rd);
        close(svc->status_wr);
        close(svc->trigger_rd);
        close(svc->trigger_wr);
    }
    service_free(svc);
    *svcp = NULL;
}

void service_stop_all(void)
{
    struct proc *p;

    while (!TAILQ_EMPTY(&master_services)) {
        struct service *svc = TAILQ_FIRST(&master_services);

        TAILQ_REMOVE(&master_services, svc, link);
        service_retire(&svc);
    }
    /* A job is a process group of its own (it may run sendmail). */
    TAILQ_FOREACH(p, &master_procs, link)
        kill(p->job ? -p->pid : p->pid, SIGTERM);
}

int service_state(const struct service *svc, const char **state)
{
    if (svc->throttled)
        *state = "throttled";
    else if (svc->nprocs == 0)
        *state = "idle";
    else
        *state = "running";
    return svc->nprocs;
}
