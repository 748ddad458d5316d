/*
 * job.c - master's periodic jobs: master.conf lines of type job, such as
 *
 *     dmarcreport  job  -  86400  1  mailctl dmarc report
 *
 * A job is a command, not a service: no socket, no status or wakeup
 * pipe, nothing master restarts.  Its program is in command_directory
 * (where mailctl and sendmail are), checked like a service's program
 * (lib/conftrust) before every run, since it runs as root; it gets its
 * arguments as written, POSTHORN_CONFIG in its environment, stdin from
 * /dev/null, and a pipe as stdout and stderr whose every line master
 * logs as "job NAME[PID]: line".
 *
 * When: at every multiple of the period (the wakeup column) since the
 * epoch, so 86400 is each midnight UTC and 3600 each full hour; a start
 * or a reload does not run it.  Never twice at once: when its time comes
 * while the last run (of this generation or of the one a reload
 * replaced) is still going, that is logged and the run skipped.  A job
 * is a process group of its own; master's stop sends the group SIGTERM
 * (and SIGKILL after master_stop_timeout), so what it started ends too.
 * A run that fails is logged; the next period tries again, without
 * throttling.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "master.h"
#include "msg.h"
#include "xalloc.h"

#define JOB_LINE_MAX 2000           /* longer output lines are logged in pieces */

/* A running job's output pipe: lives until EOF, maybe after the job was
 * reaped or its service retired. */
struct job_output {
    int    fd;
    char  *name;
    pid_t  pid;
    buf_t *line;
};

static void job_on_timer(event_loop_t *loop, void *arg);

/* Milliseconds from now to just past the next multiple of period. */
static long job_delay_ms(int period)
{
    struct timespec now;
    long long ms, next;

    clock_gettime(CLOCK_REALTIME, &now);
    ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    next = (ms / (period * 1000LL) + 1) * (period * 1000LL);
    return (long)(next - ms + 10);
}

void job_start(struct service *svc)
{
    svc->wakeup_timer = event_add_timer(master_loop, job_delay_ms(svc->wakeup), job_on_timer, svc);
}

static void job_log_line(struct job_output *o)
{
    if (o->line->len > 0)
        msg_info("job %s[%ld]: %s", o->name, (long)o->pid, buf_cstr(o->line));
    buf_reset(o->line);
}

static void job_on_output(event_loop_t *loop, int fd, int events, void *arg)
{
    struct job_output *o = arg;
    char chunk[4096];
    ssize_t n;

    (void)events;
    n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    for (ssize_t i = 0; i < n; i++) {
        if (chunk[i] == '\n')
            job_log_line(o);
        else if (buf_putc(o->line, chunk[i] == '\0' ? '?' : chunk[i]) < 0) {
            job_log_line(o);
            buf_putc(o->line, chunk[i]);
        }
    }
    if (n <= 0) {
        job_log_line(o);
        event_del_fd(loop, fd);
        close(fd);
        buf_free(&o->line);
        free(o->name);
        free(o);
    }
}

static void job_run(struct service *svc)
{
    char *path;
    struct proc *p;
    int out[2];
    pid_t pid;

    if (svc->nprocs + svc->nretired > 0) {
        TAILQ_FOREACH(p, &master_procs, link)
            if (strcmp(p->key, svc->key) == 0)
                break;
        msg_warn("job %s: the last run (process %ld, started %lds ago) is still going: "
                 "not starting another", svc->name, p ? (long)p->pid : 0L,
                 p ? (long)(time(NULL) - p->started) : 0L);
        return;
    }
    if (service_program_trusted(svc) < 0)
        return;
    if (pipe2(out, O_CLOEXEC) < 0) {
        msg_warn("job %s: pipe: %s -- not running it this time", svc->name, strerror(errno));
        return;
    }
    path = xasprintf("%s/%s", master_params.command_directory, svc->argv[0]);
    pid = fork();
    if (pid < 0) {
        msg_warn("job %s: fork: %s -- not running it this time", svc->name, strerror(errno));
        close(out[0]);
        close(out[1]);
        free(path);
        return;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);

        msg_fatal_hook(NULL);
        service_child_reset_signals();
        setsid();                   /* a process group master's stop can end */
        if (null < 0 || dup2(null, 0) < 0 || dup2(out[1], 1) < 0 || dup2(out[1], 2) < 0)
            _exit(126);
        closefrom(3);
        execve(path, svc->argv, service_child_environment());
        dprintf(2, "cannot execute %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    free(path);
    close(out[1]);
    {
        struct job_output *o = xcalloc(1, sizeof(*o));

        o->fd = out[0];
        o->name = xstrdup(svc->name);
        o->pid = pid;
        o->line = buf_new(JOB_LINE_MAX);
        fcntl(o->fd, F_SETFL, O_NONBLOCK);
        event_add_fd(master_loop, o->fd, EVENT_READ, job_on_output, o);
    }
    p = xcalloc(1, sizeof(*p));
    p->pid = pid;
    p->svc = svc;
    p->key = xstrdup(svc->key);
    p->started = time(NULL);
    p->job = 1;
    TAILQ_INSERT_TAIL(&master_procs, p, link);
    svc->nprocs++;
    svc->navail++;
    msg_info("job %s: started process %ld: %s", svc->name, (long)pid, svc->command_line);
}

static void job_on_timer(event_loop_t *loop, void *arg)
{
    struct service *svc = arg;

    (void)loop;
    svc->wakeup_timer = NULL;
    job_start(svc);
    if (!master_stopping)
        job_run(svc);
}

void job_exited(struct proc *p, int status)
{
    const char *name = p->svc ? p->svc->name : p->key;
    long secs = (long)(time(NULL) - p->started);

    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        msg_info("job %s: process %ld done after %lds", name, (long)p->pid, secs);
    else if (master_stopping && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM)
        msg_info("job %s: process %ld ended by the stop after %lds", name, (long)p->pid, secs);
    else if (WIFEXITED(status))
        msg_warn("job %s: process %ld failed after %lds: exit status %d", name, (long)p->pid,
                 secs, WEXITSTATUS(status));
    else
        msg_warn("job %s: process %ld killed by signal %d after %lds", name, (long)p->pid,
                 WTERMSIG(status), secs);
}
