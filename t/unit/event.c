/*
 * t/unit/event.c - unit tests for lib/event.c (epoll loop, timers, signals).
 *
 * Real pipes and socketpairs: fd callbacks and interest changes, hang-ups
 * reported as EVENT_ERROR, removing (and removing + re-adding, + reusing the
 * fd number) another fd from inside a callback in the same round, a
 * callback removing itself, more ready fds than one epoll_wait batch;
 * timers: ordering, ties, cancel (also from inside callbacks), re-arming,
 * zero-delay re-arming that must not starve the loop, a heap stress test;
 * signals: SIGUSR1 via raise(), SIGCHLD from a real child, a signal that was
 * SIG_IGN before, event_reset_signals() in a forked child; event_loop_stop
 * and the panics for misuse.  alarm() guards against hangs; no test asserts
 * on elapsed time.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "event.h"
#include "msg.h"
#include "xalloc.h"
#include "../lib/tap.h"
#include "../lib/testlib.h"

static void mkpipe(int p[2])
{
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
        perror("pipe");
        exit(2);
    }
}

static void put1(int fd)
{
    if (write(fd, "x", 1) != 1) {
        perror("write");
        exit(2);
    }
}

/* ---- fds ---- */

struct rec {
    int calls;
    int fd;
    int events;
    void *arg;
};

static void rec_cb(event_loop_t *loop, int fd, int events, void *arg)
{
    struct rec *r = arg;

    (void)loop;
    r->calls++;
    r->fd = fd;
    r->events = events;
    r->arg = arg;
}

/* Like rec_cb, but drains one byte so level triggering quiets down. */
static void drain_cb(event_loop_t *loop, int fd, int events, void *arg)
{
    char c;

    rec_cb(loop, fd, events, arg);
    if (read(fd, &c, 1) < 0)
        (void)0;
}

static void test_fds(void)
{
    event_loop_t *loop = event_loop_new();
    struct rec r = { 0 }, w = { 0 };
    int p[2], sp[2];

    mkpipe(p);
    event_add_fd(loop, p[0], EVENT_READ, drain_cb, &r);
    event_loop_once(loop, 20);
    is_int(r.calls, 0, "no callback while nothing is readable");
    put1(p[1]);
    event_loop_once(loop, 1000);
    is_int(r.calls, 1, "read callback ran");
    is_int(r.fd, p[0], "callback got the fd");
    is_int(r.events, EVENT_READ, "callback got EVENT_READ");
    ok(r.arg == &r, "callback got its arg");
    event_loop_once(loop, 20);
    is_int(r.calls, 1, "drained: no more callbacks");

    /* Pause and resume. */
    put1(p[1]);
    event_mod_fd(loop, p[0], 0);
    event_loop_once(loop, 20);
    is_int(r.calls, 1, "paused fd is not reported");
    event_mod_fd(loop, p[0], EVENT_READ);
    event_loop_once(loop, 1000);
    is_int(r.calls, 2, "resumed fd is reported");

    /* Hang-up: the writer goes away. */
    close(p[1]);
    event_loop_once(loop, 1000);
    is_int(r.calls, 3, "hang-up is reported");
    is_int(r.events, EVENT_READ | EVENT_ERROR, "hang-up is EVENT_ERROR plus EVENT_READ");
    event_mod_fd(loop, p[0], 0);
    event_loop_once(loop, 20);
    is_int(r.calls, 3, "a paused hung-up fd does not make the loop spin");
    event_del_fd(loop, p[0]);
    close(p[0]);

    /* Write interest. */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
        exit(2);
    event_add_fd(loop, sp[0], EVENT_WRITE, rec_cb, &w);
    event_loop_once(loop, 1000);
    is_int(w.calls, 1, "write callback ran");
    is_int(w.events, EVENT_WRITE, "callback got EVENT_WRITE");
    event_mod_fd(loop, sp[0], EVENT_READ);
    event_loop_once(loop, 20);
    is_int(w.calls, 1, "switched to read interest: writability not reported");
    if (write(sp[1], "y", 1) != 1)
        exit(2);
    event_loop_once(loop, 1000);
    is_int(w.events, EVENT_READ, "read reported after event_mod_fd");
    event_del_fd(loop, sp[0]);
    close(sp[0]);
    close(sp[1]);

    /* Writer whose reader is gone. */
    mkpipe(p);
    w.calls = 0;
    event_add_fd(loop, p[1], EVENT_WRITE, rec_cb, &w);
    close(p[0]);
    event_loop_once(loop, 1000);
    is_int(w.calls, 1, "broken pipe on a writer is reported");
    is_int(w.events, EVENT_WRITE | EVENT_ERROR, "as EVENT_ERROR plus EVENT_WRITE");
    event_del_fd(loop, p[1]);
    close(p[1]);

    /* Registered paused from the start. */
    mkpipe(p);
    r.calls = 0;
    event_add_fd(loop, p[0], 0, drain_cb, &r);
    put1(p[1]);
    event_loop_once(loop, 20);
    is_int(r.calls, 0, "fd added with events 0 is not reported");
    event_mod_fd(loop, p[0], EVENT_READ);
    event_loop_once(loop, 1000);
    is_int(r.calls, 1, "until it is resumed");
    event_del_fd(loop, p[0]);
    close(p[0]);
    close(p[1]);
    event_loop_free(&loop);
    ok(loop == NULL, "event_loop_free NULLs the pointer");
    event_loop_free(&loop);
}

/* Two readable pipes; whichever callback runs first removes the other. */
struct duel {
    event_loop_t *loop;
    int fd[2];
    int calls[2];
    int newcalls;
    int mode;           /* 0: delete; 1: delete + re-add; 2: delete, close, reuse number; 3: pause */
    int newpipe[2];
    int reused;
};

static void duel_new_cb(event_loop_t *loop, int fd, int events, void *arg)
{
    struct duel *d = arg;

    (void)loop;
    (void)fd;
    (void)events;
    d->newcalls++;
}

static void duel_cb(event_loop_t *loop, int fd, int events, void *arg)
{
    struct duel *d = arg;
    int me = fd == d->fd[0] ? 0 : 1, other = d->fd[1 - me];

    (void)events;
    d->calls[me]++;
    if (d->calls[0] + d->calls[1] > 1)
        return;
    if (d->mode == 3) {
        event_mod_fd(loop, other, 0);
        return;
    }
    event_del_fd(loop, other);
    if (d->mode == 1) {
        event_add_fd(loop, other, EVENT_READ, duel_new_cb, d);
    } else if (d->mode == 2) {
        close(other);
        mkpipe(d->newpipe);
        d->reused = d->newpipe[0] == other;
        event_add_fd(loop, d->newpipe[0], EVENT_READ, duel_new_cb, d);
        d->fd[1 - me] = d->newpipe[0];
    }
}

static void run_duel(int mode)
{
    static const char *const what[] = { "delete", "delete and re-add", "close and reuse", "pause" };
    event_loop_t *loop = event_loop_new();
    struct duel d;
    int p0[2], p1[2];

    memset(&d, 0, sizeof(d));
    d.loop = loop;
    d.mode = mode;
    mkpipe(p0);
    mkpipe(p1);
    d.fd[0] = p0[0];
    d.fd[1] = p1[0];
    put1(p0[1]);
    put1(p1[1]);
    event_add_fd(loop, p0[0], EVENT_READ, duel_cb, &d);
    event_add_fd(loop, p1[0], EVENT_READ, duel_cb, &d);
    event_loop_once(loop, 1000);
    is_int(d.calls[0] + d.calls[1], 1, "%s in the same round: the removed fd's callback did not run", what[mode]);
    is_int(d.newcalls, 0, "%s: no stale event for the new registration", what[mode]);
    if (mode == 2 && !d.reused)
        diag("the fd number was not reused; the test is weaker");
    if (mode == 1) {
        event_loop_once(loop, 1000);
        is_int(d.newcalls, 1, "the re-added fd is served in the next round");
    }
    if (mode == 2) {
        event_loop_once(loop, 20);
        is_int(d.newcalls, 0, "the new, idle fd with the old number is not reported");
        put1(d.newpipe[1]);
        event_loop_once(loop, 1000);
        is_int(d.newcalls, 1, "the new fd is served once readable");
        close(d.newpipe[1]);
    }
    if (mode == 3) {
        event_mod_fd(loop, d.fd[0], EVENT_READ);
        event_mod_fd(loop, d.fd[1], EVENT_READ);
        event_loop_once(loop, 1000);
        is_int(d.calls[0] + d.calls[1], 3, "both served once the paused one is resumed");
    }
    event_loop_free(&loop);
    close(p0[1]);
    close(p1[1]);
    close(d.fd[0]);
    close(d.fd[1]);
}

/* A callback that removes and closes its own fd and frees its arg. */
struct selfdel {
    int fd;
    int *calls;
};

static void selfdel_cb(event_loop_t *loop, int fd, int events, void *arg)
{
    struct selfdel *s = arg;

    (void)events;
    (*s->calls)++;
    event_del_fd(loop, fd);
    close(fd);
    free(s);
}

static void test_selfdel(void)
{
    event_loop_t *loop = event_loop_new();
    struct selfdel *s = xmalloc(sizeof(*s));
    int p[2], calls = 0;

    mkpipe(p);
    s->fd = p[0];
    s->calls = &calls;
    put1(p[1]);
    event_add_fd(loop, p[0], EVENT_READ, selfdel_cb, s);
    event_loop_once(loop, 1000);
    is_int(calls, 1, "callback removed, closed and freed itself");
    event_loop_once(loop, 20);
    is_int(calls, 1, "and is gone");
    close(p[1]);
    event_loop_free(&loop);
}

static void test_many_fds(void)
{
    enum { N = 150 };
    event_loop_t *loop = event_loop_new();
    struct rec r[N];
    int p[N][2], all = 1;

    memset(r, 0, sizeof(r));
    for (int i = 0; i < N; i++) {
        mkpipe(p[i]);
        put1(p[i][1]);
        event_add_fd(loop, p[i][0], EVENT_READ, drain_cb, &r[i]);
    }
    for (int round = 0; round < 5; round++)
        event_loop_once(loop, 100);
    for (int i = 0; i < N; i++)
        if (r[i].calls != 1)
            all = 0;
    ok(all, "%d ready fds (more than one epoll batch) each served exactly once", N);
    for (int i = 0; i < N; i++) {
        event_del_fd(loop, p[i][0]);
        close(p[i][0]);
        close(p[i][1]);
    }
    event_loop_free(&loop);
}

/* ---- timers ---- */

static char order[256];

static void order_cb(event_loop_t *loop, void *arg)
{
    (void)loop;
    strncat(order, arg, 1);     /* one character per timer */
}

static void stop_cb(event_loop_t *loop, void *arg)
{
    (void)arg;
    event_loop_stop(loop);
}

static void test_timer_order(void)
{
    event_loop_t *loop = event_loop_new();
    event_timer_t *t;

    order[0] = '\0';
    event_add_timer(loop, 30, order_cb, "c");
    event_add_timer(loop, 10, order_cb, "a");
    event_add_timer(loop, 20, order_cb, "b");
    event_add_timer(loop, 10, order_cb, "A");
    event_add_timer(loop, 0, order_cb, "0");
    event_add_timer(loop, -5, order_cb, "-");
    t = event_add_timer(loop, 15, order_cb, "X");
    event_add_timer(loop, 60, stop_cb, NULL);
    event_cancel_timer(loop, &t);
    ok(t == NULL, "event_cancel_timer NULLs the handle");
    event_cancel_timer(loop, &t);
    ok(1, "cancelling NULL is fine");
    event_loop_run(loop);
    is_str(order, "0-aAbc", "timers fire by deadline, ties in order added, cancelled never");

    /* Many ties: equal deadlines fire strictly in the order added. */
    order[0] = '\0';
    for (int i = 0; i < 40; i++)
        event_add_timer(loop, 5, order_cb, (char *)"0123456789abcdefghijklmnopqrstuvwxyzABCD" + i);
    event_add_timer(loop, 5, stop_cb, NULL);
    event_loop_run(loop);
    is_str(order, "0123456789abcdefghijklmnopqrstuvwxyzABCD",
           "40 equal timers fire in the order added");
    event_loop_free(&loop);
}

static event_timer_t *victim;
static int victim_fired, killer_fired;

static void victim_cb(event_loop_t *loop, void *arg)
{
    (void)loop;
    (void)arg;
    victim_fired++;
}

static void killer_cb(event_loop_t *loop, void *arg)
{
    event_timer_t **self = arg;

    killer_fired++;
    event_cancel_timer(loop, &victim);
    event_cancel_timer(loop, self);     /* own handle, inside the callback */
}

static event_timer_t *killer;

static void test_timer_cancel(void)
{
    event_loop_t *loop = event_loop_new();

    killer = event_add_timer(loop, 0, killer_cb, &killer);
    victim = event_add_timer(loop, 0, victim_cb, NULL);
    usleep(2000);
    event_loop_once(loop, 1000);
    is_int(killer_fired, 1, "first due timer fired");
    is_int(victim_fired, 0, "a due timer cancelled by an earlier one in the same round did not fire");
    ok(victim == NULL && killer == NULL, "both handles NULLed (own one inside its callback)");
    event_loop_once(loop, 20);
    is_int(victim_fired, 0, "and never fires later");

    /* Pending timers are released by event_loop_free (ASan checks). */
    event_add_timer(loop, 100000, victim_cb, NULL);
    event_add_timer(loop, 200000, victim_cb, NULL);
    event_loop_free(&loop);
}

struct rearm {
    int count;
    long delay;
    event_timer_t *t;
};

static void rearm_cb(event_loop_t *loop, void *arg)
{
    struct rearm *r = arg;

    r->count++;
    if (r->delay > 0 && r->count >= 5) {
        event_loop_stop(loop);
        return;
    }
    r->t = event_add_timer(loop, r->delay, rearm_cb, r);
}

static void test_timer_rearm(void)
{
    event_loop_t *loop = event_loop_new();
    struct rearm r = { 0, 5, NULL }, z = { 0, 0, NULL };
    struct rec fdr = { 0 };
    int p[2];

    r.t = event_add_timer(loop, 5, rearm_cb, &r);
    event_loop_run(loop);
    is_int(r.count, 5, "a timer re-armed itself four times");

    /* A zero-delay timer that re-arms itself runs once per round and does
     * not starve the fds. */
    mkpipe(p);
    event_add_fd(loop, p[0], EVENT_READ, drain_cb, &fdr);
    z.t = event_add_timer(loop, 0, rearm_cb, &z);
    event_loop_once(loop, 1000);
    event_loop_once(loop, 1000);
    event_loop_once(loop, 1000);
    is_int(z.count, 3, "zero-delay re-arming timer: one run per round");
    put1(p[1]);
    event_loop_once(loop, 1000);
    is_int(fdr.calls, 1, "fds still served next to a zero-delay timer");
    event_cancel_timer(loop, &z.t);
    event_del_fd(loop, p[0]);
    close(p[0]);
    close(p[1]);
    event_loop_free(&loop);
}

/* Many timers with random delays, a third cancelled. */
#define NSTRESS 600
static long long stress_when[NSTRESS];
static int stress_fired[NSTRESS], stress_seq[NSTRESS], stress_n, stress_left;

static void stress_cb(event_loop_t *loop, void *arg)
{
    int i = (int)(long)arg;

    stress_fired[i]++;
    stress_seq[stress_n++] = i;
    if (--stress_left == 0)
        event_loop_stop(loop);
}

static void test_timer_stress(void)
{
    event_loop_t *loop = event_loop_new();
    event_timer_t *t[NSTRESS];
    long long t0, t1;
    int good = 1, sorted = 1;

    srandom(4711);
    t0 = event_now_ms();
    for (int i = 0; i < NSTRESS; i++) {
        long d = random() % 40;

        stress_when[i] = event_now_ms() + d;
        t[i] = event_add_timer(loop, d, stress_cb, (void *)(long)i);
    }
    t1 = event_now_ms();
    stress_left = NSTRESS;
    for (int i = 0; i < NSTRESS; i += 3) {
        event_cancel_timer(loop, &t[i]);
        stress_left--;
    }
    event_add_timer(loop, 5000, stop_cb, NULL);     /* safety net */
    event_loop_run(loop);
    for (int i = 0; i < NSTRESS; i++)
        if (stress_fired[i] != (i % 3 == 0 ? 0 : 1))
            good = 0;
    ok(good, "every live timer fired once, no cancelled one did");
    for (int k = 1; k < stress_n; k++)
        if (stress_when[stress_seq[k]] + (t1 - t0) < stress_when[stress_seq[k - 1]])
            sorted = 0;
    ok(sorted, "timers fired in deadline order");
    event_loop_free(&loop);
}

/* ---- signals ---- */

static int sig_calls, sig_last;
static void *sig_arg;

static void sig_cb(event_loop_t *loop, int signo, void *arg)
{
    (void)loop;
    sig_calls++;
    sig_last = signo;
    sig_arg = arg;
}

static pid_t chld_pid;
static int chld_status = -1;

static void chld_cb(event_loop_t *loop, int signo, void *arg)
{
    pid_t pid;
    int status;

    (void)signo;
    (void)arg;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        if (pid == chld_pid) {
            chld_status = status;
            event_loop_stop(loop);
        }
}

static void test_signals(void)
{
    event_loop_t *loop = event_loop_new();
    sigset_t cur;
    struct sigaction sa;
    int tag;
    pid_t pid;
    int status;

    event_add_signal(loop, SIGUSR1, sig_cb, &tag);
    sigprocmask(SIG_BLOCK, NULL, &cur);
    ok(sigismember(&cur, SIGUSR1), "an added signal is blocked");
    raise(SIGUSR1);
    event_loop_once(loop, 1000);
    is_int(sig_calls, 1, "SIGUSR1 delivered through the loop");
    is_int(sig_last, SIGUSR1, "callback got the signal number");
    ok(sig_arg == &tag, "callback got its arg");
    event_loop_once(loop, 20);
    is_int(sig_calls, 1, "delivered once");

    /* A signal ignored before it was added still arrives. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGUSR2, &sa, NULL);
    event_add_signal(loop, SIGUSR2, sig_cb, NULL);
    raise(SIGUSR2);
    event_loop_once(loop, 1000);
    is_int(sig_last, SIGUSR2, "a signal that was SIG_IGN is delivered once added");

    /* SIGCHLD from a real child; the handler stops the loop. */
    event_add_signal(loop, SIGCHLD, chld_cb, NULL);
    chld_pid = fork();
    if (chld_pid == 0)
        _exit(7);
    event_add_timer(loop, 10000, stop_cb, NULL);    /* safety net */
    event_loop_run(loop);
    ok(WIFEXITED(chld_status) && WEXITSTATUS(chld_status) == 7,
       "SIGCHLD delivered through the loop; the child was reaped");

    /* A child resets the signals before exec: unblocked, default action. */
    pid = fork();
    if (pid == 0) {
        sigset_t m;

        event_reset_signals();
        sigprocmask(SIG_BLOCK, NULL, &m);
        if (sigismember(&m, SIGUSR1) || sigismember(&m, SIGCHLD))
            _exit(3);
        raise(SIGUSR2);         /* default action: terminate */
        _exit(4);
    }
    waitpid(pid, &status, 0);
    ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGUSR2,
       "event_reset_signals: signals unblocked with default dispositions");
    event_loop_free(&loop);
}

static void stop_fd_cb(event_loop_t *loop, int fd, int events, void *arg)
{
    rec_cb(loop, fd, events, arg);
    event_loop_stop(loop);
}

static void test_stop(void)
{
    event_loop_t *loop = event_loop_new();
    struct rec r = { 0 };
    int p[2];

    mkpipe(p);
    put1(p[1]);
    event_add_fd(loop, p[0], EVENT_READ, stop_fd_cb, &r);
    event_loop_run(loop);
    is_int(r.calls, 1, "event_loop_stop from an fd callback ends event_loop_run");
    event_loop_run(loop);
    is_int(r.calls, 2, "event_loop_run can be entered again");
    event_del_fd(loop, p[0]);
    close(p[0]);
    close(p[1]);
    event_loop_once(loop, 10);
    ok(1, "event_loop_once with nothing registered returns after its timeout");
    ok(event_now_ms() >= 0 && event_now_ms() <= event_now_ms(), "event_now_ms is monotonic");
    event_loop_free(&loop);
}

/* ---- misuse ---- */

static void add_twice(void)
{
    event_loop_t *loop = event_loop_new();

    event_add_fd(loop, 0, 0, rec_cb, NULL);
    event_add_fd(loop, 0, 0, rec_cb, NULL);
}

static void del_unknown(void)
{
    event_loop_t *loop = event_loop_new();

    event_del_fd(loop, 5);
}

static void mod_unknown(void)
{
    event_loop_t *loop = event_loop_new();

    event_mod_fd(loop, 5, EVENT_READ);
}

static void add_sigkill(void)
{
    event_loop_t *loop = event_loop_new();

    event_add_signal(loop, SIGKILL, sig_cb, NULL);
}

int main(void)
{
    alarm(60);
    msg_init("event-test", MSG_STDERR);
    test_fds();
    run_duel(0);
    run_duel(1);
    run_duel(2);
    run_duel(3);
    test_selfdel();
    test_many_fds();
    test_timer_order();
    test_timer_cancel();
    test_timer_rearm();
    test_timer_stress();
    test_stop();
    test_signals();
    ok(dies_with_abort(add_twice), "adding an fd twice panics");
    ok(dies_with_abort(del_unknown), "removing an unknown fd panics");
    ok(dies_with_abort(mod_unknown), "modifying an unknown fd panics");
    ok(dies_with_abort(add_sigkill), "adding SIGKILL panics");
    return done_testing();
}
