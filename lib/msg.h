/*
 * msg - logging and the three error classes.
 *
 * Every Posthorn process logs one line per event, Postfix style:
 *   posthorn/smtpd[1234]: warning: text
 * to syslog (facility mail), to a log file (maillog_file, opened before the
 * privilege drop and kept open), and/or to stderr (foreground).
 *
 * The error classes (DESIGN.md §6):
 *   msg_panic  - our bug: log and abort() (core dump for the developer).
 *   msg_fatal  - the environment is wrong (config, disk, resources): log and
 *                exit(1); master restarts us with throttling.
 *   peer error - a bad client or IPC peer: msg_warn() and drop that peer;
 *                never one of the above.
 * msg_info is an ordinary event, msg_debug only logs when msg_verbose > 0.
 *
 * Failure modes: logging never fails the caller; lost log lines are lost.
 */
#ifndef POSTHORN_MSG_H
#define POSTHORN_MSG_H

#include <stdarg.h>

#define MSG_STDERR  (1 << 0)   /* write to stderr */
#define MSG_SYSLOG  (1 << 1)   /* write to syslog(LOG_MAIL) */

extern int msg_verbose;

/* Set the program name ("smtpd") and where output goes. May be called again.
 * The first call also makes sure descriptors 0, 1 and 2 are open (on
 * /dev/null if need be): a process started with them closed would
 * otherwise give them to its own files, and log lines would land there. */
void msg_init(const char *progname, int flags);
/* Also append every line to this file (opened O_APPEND now); NULL closes.
 * -1 with errno if it cannot be opened, or if it is not a regular file
 * with one link owned by root or by us (EPERM; a symbolic link: ELOOP). */
int msg_logfile(const char *path);
const char *msg_progname(void);

/* Called by msg_fatal() before it exits (e.g. remove a pid file). */
void msg_fatal_hook(void (*hook)(void));

/* For a child after fork() that is about to close every descriptor it does
 * not need (local's delivery processes): drop the syslog connection cleanly
 * (it is made again on the next line) and return the one descriptor msg
 * wants kept open, that of maillog_file (-1 if none). */
int msg_detach_fds(void);
/* The descriptor of maillog_file (-1 if none), for a handler that may only
 * write(2) (checkd's SIGSYS report). */
int msg_logfile_fd(void);

void msg_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void msg_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void msg_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));


#endif
