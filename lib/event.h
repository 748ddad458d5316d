/*
 * event - the epoll event loop with timers and signals.
 *
 * For the long-running multiplexing processes (master, qmgr, cleanup, ...).
 * File descriptors: callbacks on readability/writability (level triggered).
 * Timers: one-shot, millisecond resolution, CLOCK_MONOTONIC; a callback may
 * re-arm itself.  Signals: delivered through a signalfd as ordinary events,
 * so handlers run in the loop, never in signal context (the signals are
 * blocked with sigprocmask when added).
 *
 * Callbacks may add and remove any fd or timer, including their own, while
 * the loop runs; an event already collected for an fd that was removed (or
 * removed and re-added) in the same round is dropped, never delivered to
 * the new registration.  An fd registered with events 0 is paused (not
 * even hang-ups are reported).  EPOLLERR/EPOLLHUP arrive as EVENT_ERROR
 * plus the fd's registered directions, so a reader sees EOF and a writer
 * EPIPE.  Call event_del_fd() before close().  Timers with the same
 * deadline fire in the order they were added; a timer added during a round
 * fires in a later round at the earliest (no starvation by zero delays).
 * Signals: the disposition is set to SIG_DFL when added (an inherited
 * SIG_IGN does not apply); deliveries of one signal may coalesce, so a
 * SIGCHLD callback must reap in a loop.  event_loop_run() returns when
 * event_loop_stop() was called (after finishing the current round);
 * event_loop_once() waits at most timeout_ms (-1 = until something
 * happens) and dispatches one round.  Neither may be called from a
 * callback, nor event_loop_free().
 *
 * Failure modes: epoll/signalfd creation failure is fatal (environment);
 * adding the same fd twice or removing an unknown one is a panic (our bug).
 */
#ifndef POSTHORN_EVENT_H
#define POSTHORN_EVENT_H

#define EVENT_READ   0x1
#define EVENT_WRITE  0x2
#define EVENT_ERROR  0x4    /* reported: EPOLLERR/EPOLLHUP */

typedef struct event_loop event_loop_t;
typedef struct event_timer event_timer_t;

typedef void (*event_fd_cb)(event_loop_t *loop, int fd, int events, void *arg);
typedef void (*event_timer_cb)(event_loop_t *loop, void *arg);
typedef void (*event_signal_cb)(event_loop_t *loop, int signo, void *arg);

event_loop_t *event_loop_new(void);
void event_loop_free(event_loop_t **loopp);

void event_add_fd(event_loop_t *loop, int fd, int events, event_fd_cb cb, void *arg);
void event_mod_fd(event_loop_t *loop, int fd, int events);  /* 0 = pause */
void event_del_fd(event_loop_t *loop, int fd);

/* A one-shot timer that fires after delay_ms (< 0 counts as 0); the handle
 * is valid until its callback returns or it is cancelled (cancelling it
 * from inside its own callback is a harmless no-op).  event_cancel_timer(&t)
 * NULLs t; cancelling NULL is fine. */
event_timer_t *event_add_timer(event_loop_t *loop, long delay_ms, event_timer_cb cb, void *arg);
void event_cancel_timer(event_loop_t *loop, event_timer_t **tp);

void event_add_signal(event_loop_t *loop, int signo, event_signal_cb cb, void *arg);
/* In a child after fork(): unblock every signal any loop had blocked and
 * restore their default dispositions, before exec.  (event_loop_free()
 * leaves them blocked.)  Adding the same signal again replaces the callback. */
void event_reset_signals(void);

void event_loop_run(event_loop_t *loop);
void event_loop_once(event_loop_t *loop, long timeout_ms);
void event_loop_stop(event_loop_t *loop);

/* Milliseconds on CLOCK_MONOTONIC. */
long long event_now_ms(void);

#endif
