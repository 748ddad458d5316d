/*
 * event - the epoll event loop with timers and signals (see event.h).
 *
 * For the long-running multiplexing processes (master, qmgr, cleanup...).
 *
 * File descriptors: a table indexed by fd number.  Each registration gets a
 * fresh generation number that travels in epoll_event.data next to the fd,
 * so an event collected before a callback removed (and maybe re-added) an
 * fd in the same round is recognised as stale and dropped; level
 * triggering reports a still-ready fd again next round.  A paused fd
 * (events 0) is taken out of the epoll set entirely, so a hung-up fd that
 * nobody listens to cannot make the loop spin.  EPOLLERR/EPOLLHUP arrive as
 * EVENT_ERROR plus the directions the fd is registered for (EVENT_READ so
 * readers see EOF, EVENT_WRITE so writers see EPIPE).  Events are also
 * masked with the current interest, so event_mod_fd() from an earlier
 * callback in the same round takes effect at once.
 *
 * Timers: a binary min-heap ordered by (deadline, creation order) on
 * CLOCK_MONOTONIC; equal deadlines fire in the order they were added.  A
 * round runs only timers that were due when the round's timer phase began
 * and that existed then, so a callback that re-arms itself with delay 0
 * runs once per round and cannot starve the fds.  A timer's handle stays
 * valid during its own callback (cancelling it there is a harmless no-op)
 * and is freed when the callback returns.
 *
 * Signals: added signals are blocked with sigprocmask() and read from one
 * signalfd per loop, registered as an ordinary fd.  Like any signal, several
 * deliveries of the same signal may coalesce into one callback (SIGCHLD
 * handlers must reap in a loop).  The process-wide set of signals ever
 * added is remembered for event_reset_signals() in a child after fork().
 * event_loop_free() leaves them blocked (unblocking could kill us with a
 * pending SIGTERM).  Use one loop per process for signals: each signal
 * goes to one signalfd reader only.
 *
 * Failure modes: failure to create epoll/signalfd or to register an fd for
 * lack of resources is fatal; misuse (fd added twice, unknown fd removed,
 * an fd epoll cannot watch, a bad signal number, NULL callback) panics.
 * Call event_del_fd() before close(); a close()d fd is tolerated by
 * event_del_fd().
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "msg.h"
#include "xalloc.h"

#define EVENT_NEVENTS_MIN  64
#define TIMER_FIRING       SIZE_MAX     /* idx of a timer whose callback runs */

struct event_fd {
    int         events;     /* EVENT_READ|EVENT_WRITE interest; 0 = paused */
    int         in_epoll;   /* registered with epoll right now */
    uint32_t    gen;        /* registration generation */
    event_fd_cb cb;
    void       *arg;
};

struct event_timer {
    long long      when;    /* CLOCK_MONOTONIC ms */
    uint64_t       seq;     /* creation order, for ties */
    size_t         idx;     /* position in the heap, or TIMER_FIRING */
    event_timer_cb cb;
    void          *arg;
};

struct event_sig {
    event_signal_cb cb;
    void           *arg;
};

struct event_loop {
    int                 epfd;
    struct event_fd   **fds;       /* indexed by fd */
    size_t              nfds;      /* slots in fds */
    uint32_t            gen;
    struct epoll_event *evs;
    int                 nevs;
    event_timer_t     **heap;
    size_t              nheap, aheap;
    uint64_t            seq;
    int                 sigfd;     /* -1 until the first signal is added */
    sigset_t            sigmask;
    struct event_sig    sigs[NSIG];
    int                 stop;
};

/* Every signal any loop in this process has blocked (for event_reset_signals). */
static sigset_t event_blocked;
static int event_blocked_init;

long long event_now_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
        msg_panic("event: clock_gettime(CLOCK_MONOTONIC): %s", strerror(errno));
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- loop life cycle ---- */

event_loop_t *event_loop_new(void)
{
    event_loop_t *loop = xcalloc(1, sizeof(*loop));

    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0)
        msg_fatal("epoll_create1: %s", strerror(errno));
    loop->nevs = EVENT_NEVENTS_MIN;
    loop->evs = xcalloc((size_t)loop->nevs, sizeof(*loop->evs));
    loop->sigfd = -1;
    sigemptyset(&loop->sigmask);
    return loop;
}

void event_loop_free(event_loop_t **loopp)
{
    event_loop_t *loop = *loopp;

    if (loop == NULL)
        return;
    for (size_t i = 0; i < loop->nfds; i++)
        free(loop->fds[i]);
    free(loop->fds);
    for (size_t i = 0; i < loop->nheap; i++)
        free(loop->heap[i]);
    free(loop->heap);
    free(loop->evs);
    if (loop->sigfd >= 0)
        close(loop->sigfd);
    close(loop->epfd);
    free(loop);
    *loopp = NULL;
}

/* ---- file descriptors ---- */

static struct event_fd *event_lookup(const event_loop_t *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->nfds)
        return NULL;
    return loop->fds[fd];
}

static uint32_t event_to_epoll(int events)
{
    return ((events & EVENT_READ) ? EPOLLIN : 0) | ((events & EVENT_WRITE) ? EPOLLOUT : 0);
}

/* Bring epoll's view of fd in line with e->events. */
static void event_sync(event_loop_t *loop, int fd, struct event_fd *e)
{
    struct epoll_event ev;
    int op;

    memset(&ev, 0, sizeof(ev));
    ev.events = event_to_epoll(e->events);
    ev.data.u64 = ((uint64_t)e->gen << 32) | (uint32_t)fd;
    if (e->events == 0) {
        if (!e->in_epoll)
            return;
        if (epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL) < 0
            && errno != EBADF && errno != ENOENT)
            msg_panic("epoll_ctl(DEL, %d): %s", fd, strerror(errno));
        e->in_epoll = 0;
        return;
    }
    op = e->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(loop->epfd, op, fd, &ev) < 0) {
        if (errno == ENOMEM || errno == ENOSPC)
            msg_fatal("epoll_ctl(%s, %d): %s", op == EPOLL_CTL_ADD ? "ADD" : "MOD", fd,
                      strerror(errno));
        msg_panic("epoll_ctl(%s, %d): %s", op == EPOLL_CTL_ADD ? "ADD" : "MOD", fd,
                  strerror(errno));
    }
    e->in_epoll = 1;
}

void event_add_fd(event_loop_t *loop, int fd, int events, event_fd_cb cb, void *arg)
{
    struct event_fd *e;

    if (fd < 0)
        msg_panic("event_add_fd: bad fd %d", fd);
    if (cb == NULL)
        msg_panic("event_add_fd: fd %d: NULL callback", fd);
    if (event_lookup(loop, fd))
        msg_panic("event_add_fd: fd %d is already registered", fd);
    if ((size_t)fd >= loop->nfds) {
        size_t n = loop->nfds ? loop->nfds : 16;

        while (n <= (size_t)fd)
            n *= 2;
        loop->fds = xreallocarray(loop->fds, n, sizeof(*loop->fds));
        memset(loop->fds + loop->nfds, 0, (n - loop->nfds) * sizeof(*loop->fds));
        loop->nfds = n;
    }
    e = xcalloc(1, sizeof(*e));
    e->events = events & (EVENT_READ | EVENT_WRITE);
    e->gen = ++loop->gen;
    e->cb = cb;
    e->arg = arg;
    loop->fds[fd] = e;
    event_sync(loop, fd, e);
}

void event_mod_fd(event_loop_t *loop, int fd, int events)
{
    struct event_fd *e = event_lookup(loop, fd);

    if (e == NULL)
        msg_panic("event_mod_fd: fd %d is not registered", fd);
    events &= EVENT_READ | EVENT_WRITE;
    if (events == e->events)
        return;
    e->events = events;
    event_sync(loop, fd, e);
}

void event_del_fd(event_loop_t *loop, int fd)
{
    struct event_fd *e = event_lookup(loop, fd);

    if (e == NULL)
        msg_panic("event_del_fd: fd %d is not registered", fd);
    e->events = 0;
    event_sync(loop, fd, e);
    loop->fds[fd] = NULL;
    free(e);
}

/* ---- timers: a min-heap on (when, seq) ---- */

static int timer_before(const event_timer_t *a, const event_timer_t *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void heap_place(event_loop_t *loop, size_t i, event_timer_t *t)
{
    loop->heap[i] = t;
    t->idx = i;
}

static void heap_up(event_loop_t *loop, size_t i)
{
    event_timer_t *t = loop->heap[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;

        if (!timer_before(t, loop->heap[parent]))
            break;
        heap_place(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_place(loop, i, t);
}

static void heap_down(event_loop_t *loop, size_t i)
{
    event_timer_t *t = loop->heap[i];

    for (;;) {
        size_t c = 2 * i + 1;

        if (c >= loop->nheap)
            break;
        if (c + 1 < loop->nheap && timer_before(loop->heap[c + 1], loop->heap[c]))
            c++;
        if (!timer_before(loop->heap[c], t))
            break;
        heap_place(loop, i, loop->heap[c]);
        i = c;
    }
    heap_place(loop, i, t);
}

/* Take t out of the heap. */
static void heap_remove(event_loop_t *loop, event_timer_t *t)
{
    size_t i = t->idx;
    event_timer_t *last;

    if (i >= loop->nheap || loop->heap[i] != t)
        msg_panic("event: timer %p is not in the heap", (void *)t);
    last = loop->heap[--loop->nheap];
    if (last != t) {
        heap_place(loop, i, last);
        if (i > 0 && timer_before(last, loop->heap[(i - 1) / 2]))
            heap_up(loop, i);
        else
            heap_down(loop, i);
    }
    t->idx = TIMER_FIRING;
}

event_timer_t *event_add_timer(event_loop_t *loop, long delay_ms, event_timer_cb cb, void *arg)
{
    event_timer_t *t;

    if (cb == NULL)
        msg_panic("event_add_timer: NULL callback");
    if (delay_ms < 0)
        delay_ms = 0;
    t = xcalloc(1, sizeof(*t));
    t->when = event_now_ms() + delay_ms;
    t->seq = loop->seq++;
    t->cb = cb;
    t->arg = arg;
    if (loop->nheap == loop->aheap) {
        loop->aheap = loop->aheap ? loop->aheap * 2 : 16;
        loop->heap = xreallocarray(loop->heap, loop->aheap, sizeof(*loop->heap));
    }
    loop->heap[loop->nheap++] = t;
    heap_up(loop, loop->nheap - 1);
    return t;
}

void event_cancel_timer(event_loop_t *loop, event_timer_t **tp)
{
    event_timer_t *t = *tp;

    if (t == NULL)
        return;
    *tp = NULL;
    if (t->idx == TIMER_FIRING)
        return;                 /* inside its own callback: freed after it */
    heap_remove(loop, t);
    free(t);
}

/* Run the timers that were due, and existed, when this phase began. */
static void event_run_timers(event_loop_t *loop)
{
    long long now;
    uint64_t seq_limit = loop->seq;
    event_timer_t *t;

    if (loop->nheap == 0)
        return;
    now = event_now_ms();
    while (loop->nheap > 0) {
        t = loop->heap[0];
        if (t->when > now || t->seq >= seq_limit)
            break;
        heap_remove(loop, t);
        t->cb(loop, t->arg);
        free(t);
    }
}

/* ---- signals ---- */

static void event_on_signalfd(event_loop_t *loop, int fd, int events, void *arg)
{
    struct signalfd_siginfo si;
    ssize_t n;

    (void)events;
    (void)arg;
    for (;;) {
        n = read(fd, &si, sizeof(si));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            msg_fatal("read signalfd: %s", strerror(errno));
        }
        if ((size_t)n != sizeof(si))
            msg_panic("read signalfd: short read %zd", n);
        if (si.ssi_signo > 0 && si.ssi_signo < NSIG && loop->sigs[si.ssi_signo].cb)
            loop->sigs[si.ssi_signo].cb(loop, (int)si.ssi_signo, loop->sigs[si.ssi_signo].arg);
    }
}

void event_add_signal(event_loop_t *loop, int signo, event_signal_cb cb, void *arg)
{
    sigset_t one;
    struct sigaction sa;

    if (signo <= 0 || signo >= NSIG || signo == SIGKILL || signo == SIGSTOP)
        msg_panic("event_add_signal: bad signal %d", signo);
    if (cb == NULL)
        msg_panic("event_add_signal: signal %d: NULL callback", signo);
    loop->sigs[signo].cb = cb;
    loop->sigs[signo].arg = arg;
    if (sigismember(&loop->sigmask, signo))
        return;

    /* Block first, then make the disposition default: a SIG_IGN inherited
     * from our parent (nohup, or SIGCHLD auto-reaping) must not apply. */
    sigemptyset(&one);
    sigaddset(&one, signo);
    if (sigprocmask(SIG_BLOCK, &one, NULL) < 0)
        msg_panic("sigprocmask: %s", strerror(errno));
    if (!event_blocked_init) {
        sigemptyset(&event_blocked);
        event_blocked_init = 1;
    }
    sigaddset(&event_blocked, signo);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    if (sigaction(signo, &sa, NULL) < 0)
        msg_panic("sigaction(%d): %s", signo, strerror(errno));

    sigaddset(&loop->sigmask, signo);
    if (loop->sigfd < 0) {
        loop->sigfd = signalfd(-1, &loop->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (loop->sigfd < 0)
            msg_fatal("signalfd: %s", strerror(errno));
        event_add_fd(loop, loop->sigfd, EVENT_READ, event_on_signalfd, NULL);
    } else if (signalfd(loop->sigfd, &loop->sigmask, 0) < 0) {
        msg_fatal("signalfd: %s", strerror(errno));
    }
}

void event_reset_signals(void)
{
    struct sigaction sa;

    if (!event_blocked_init)
        return;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(&event_blocked, sig) == 1)
            (void)sigaction(sig, &sa, NULL);
    (void)sigprocmask(SIG_UNBLOCK, &event_blocked, NULL);
}

/* ---- dispatch ---- */

void event_loop_once(event_loop_t *loop, long timeout_ms)
{
    long long wait = timeout_ms < 0 ? -1 : timeout_ms;
    int n;

    if (loop->nheap > 0) {
        long long due = loop->heap[0]->when - event_now_ms();

        if (due < 0)
            due = 0;
        if (wait < 0 || due < wait)
            wait = due;
    }
    if (wait > INT_MAX)
        wait = INT_MAX;
    n = epoll_wait(loop->epfd, loop->evs, loop->nevs, (int)wait);
    if (n < 0) {
        if (errno != EINTR)
            msg_fatal("epoll_wait: %s", strerror(errno));
        n = 0;
    }
    for (int i = 0; i < n; i++) {
        uint64_t data = loop->evs[i].data.u64;
        uint32_t got = loop->evs[i].events;
        int fd = (int)(uint32_t)data, ev = 0;
        struct event_fd *e = event_lookup(loop, fd);

        if (e == NULL || e->gen != (uint32_t)(data >> 32))
            continue;           /* removed, or removed and re-added: stale */
        if (got & EPOLLIN)
            ev |= EVENT_READ;
        if (got & EPOLLOUT)
            ev |= EVENT_WRITE;
        ev &= e->events;
        if (got & (EPOLLERR | EPOLLHUP))
            ev |= e->events ? EVENT_ERROR | e->events : 0;
        if (ev == 0)
            continue;
        e->cb(loop, fd, ev, e->arg);    /* may free e */
    }
    if (n == loop->nevs && loop->nevs < INT_MAX / 2) {
        loop->nevs *= 2;
        loop->evs = xreallocarray(loop->evs, (size_t)loop->nevs, sizeof(*loop->evs));
    }
    event_run_timers(loop);
}

void event_loop_run(event_loop_t *loop)
{
    loop->stop = 0;
    while (!loop->stop)
        event_loop_once(loop, -1);
    loop->stop = 0;
}

void event_loop_stop(event_loop_t *loop)
{
    loop->stop = 1;
}
