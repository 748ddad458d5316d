/*
 * msg - logging and the three error classes (see msg.h).
 *
 * One line per call, assembled in a local buffer and written with a single
 * write(2) so that lines from concurrent processes appending to the same
 * maillog_file never interleave.  errno is preserved across every call.
 *
 * syslog: opened at msg_init (LOG_NDELAY, so a process that chroots later
 * keeps its connection).  When /dev/log cannot be reached then (no syslog
 * daemon: a container, a bare VM), glibc would try to connect again on
 * every line, which a chrooted process never can: a socket, a connect
 * and a close per line for nothing.  Such a process logs to maillog_file
 * only, if one is open; with none, syslog keeps being tried.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <paths.h>
#include <pthread.h>
#include <syslog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "msg.h"

int msg_verbose;

static char msg_name[64] = "posthorn";
static char msg_ident[80] = "posthorn";
static int msg_flags = MSG_STDERR;
static int msg_log_fd = -1;
static char msg_host[64] = "localhost";   /* for maillog_file lines: read when it is opened */
static int msg_syslog_unreachable;     /* /dev/log could not be reached at msg_init */
static void (*msg_hook)(void);
static pid_t msg_pid;                  /* for maillog_file lines; 0 after a fork */
static int msg_atfork_set;

static void msg_forked(void)
{
    msg_pid = 0;
}

/* getpid() is a system call, and a busy process logs several lines a
 * message: ask once, and again in a forked child. */
static pid_t msg_getpid(void)
{
    if (!msg_atfork_set) {
        msg_atfork_set = 1;
        (void)pthread_atfork(NULL, NULL, msg_forked);
    }
    if (msg_pid == 0)
        msg_pid = getpid();
    return msg_pid;
}

/* Can a syslog daemon be reached at _PATH_LOG (as glibc reaches it: a
 * datagram socket, or a stream one)? */
static int msg_syslog_reachable(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd, ok, saved = errno;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", _PATH_LOG);
    if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0) {
        errno = saved;
        return 1;               /* cannot tell: let syslog() try */
    }
    ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EPROTOTYPE;
    close(fd);
    errno = saved;
    return ok;
}

/* Open /dev/null on whichever of 0, 1, 2 is closed. */
static void msg_sane_stdio(void)
{
    int fd;

    while ((fd = open("/dev/null", O_RDWR | O_NOCTTY)) >= 0 && fd <= 2)
        ;
    if (fd > 2)
        close(fd);
}

void msg_init(const char *progname, int flags)
{
    static int stdio_checked;
    const char *slash = strrchr(progname, '/');

    if (!stdio_checked) {
        msg_sane_stdio();
        stdio_checked = 1;
    }

    if (slash)
        progname = slash + 1;
    snprintf(msg_name, sizeof(msg_name), "%s", progname);
    snprintf(msg_ident, sizeof(msg_ident), "posthorn/%s", progname);
    msg_flags = flags;
    if (flags & MSG_SYSLOG) {
        openlog(msg_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
        msg_syslog_unreachable = !msg_syslog_reachable();
    }
}

int msg_logfile(const char *path)
{
    struct stat st;
    int fd;

    if (msg_log_fd >= 0) {
        close(msg_log_fd);
        msg_log_fd = -1;
    }
    if (path == NULL || *path == '\0')
        return 0;
    /* Opened as root, maybe in a directory someone else can write: no
     * symbolic link, FIFO or device, no second name of another file, and
     * nobody else's file (DESIGN.md §1). */
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK,
              0640);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1
        || (st.st_uid != 0 && st.st_uid != geteuid())) {
        close(fd);
        errno = EPERM;
        return -1;
    }
    fcntl(fd, F_SETFL, O_APPEND);
    msg_log_fd = fd;
    if (gethostname(msg_host, sizeof(msg_host) - 1) < 0)
        snprintf(msg_host, sizeof(msg_host), "localhost");
    return 0;
}

int msg_logfile_fd(void)
{
    return msg_log_fd;
}

int msg_detach_fds(void)
{
    if (msg_flags & MSG_SYSLOG) {
        closelog();
        /* Without LOG_NDELAY: connect again when the next line is logged. */
        openlog(msg_ident, LOG_PID, LOG_MAIL);
    }
    return msg_log_fd;
}

const char *msg_progname(void)
{
    return msg_name;
}

void msg_fatal_hook(void (*hook)(void))
{
    msg_hook = hook;
}

enum { LVL_INFO, LVL_DEBUG, LVL_WARN, LVL_ERROR, LVL_FATAL, LVL_PANIC };

static const char *const msg_label[] = {
    "", "debug: ", "warning: ", "error: ", "fatal: ", "panic: ",
};
static const int msg_prio[] = {
    LOG_INFO, LOG_DEBUG, LOG_WARNING, LOG_ERR, LOG_CRIT, LOG_CRIT,
};

static void msg_vlog(int level, const char *fmt, va_list ap)
{
    int saved_errno = errno;
    char text[2048], line[2400];
    size_t n;
    int len;

    /* msg.h does not export the level numbers: never index past the tables. */
    if (level < LVL_INFO || level > LVL_PANIC)
        level = LVL_ERROR;
    if (vsnprintf(text, sizeof(text), fmt, ap) < 0)
        snprintf(text, sizeof(text), "(unformattable log message: %s)", fmt);
    /* Never let a peer's bytes put control characters into the log. */
    for (char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    if ((msg_flags & MSG_SYSLOG) && !(msg_syslog_unreachable && msg_log_fd >= 0))
        syslog(msg_prio[level], "%s%s", msg_label[level], text);
    if (msg_flags & MSG_STDERR) {
        len = snprintf(line, sizeof(line), "%s: %s%s\n", msg_ident,
                       msg_label[level], text);
        n = len < 0 ? 0 : (size_t)len;
        if (n >= sizeof(line)) {
            n = sizeof(line) - 1;
            line[n - 1] = '\n';        /* a cut line still ends the line */
        }
        if (n > 0 && write(STDERR_FILENO, line, n) < 0)
            (void)0;
    }
    if (msg_log_fd >= 0) {
        char stamp[64];
        time_t now = time(NULL);
        struct tm tm;

        localtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
        len = snprintf(line, sizeof(line), "%s %s %s[%ld]: %s%s\n",
                       stamp, msg_host, msg_ident, (long)msg_getpid(),
                       msg_label[level], text);
        n = len < 0 ? 0 : (size_t)len;
        if (n >= sizeof(line)) {
            n = sizeof(line) - 1;
            line[n - 1] = '\n';
        }
        if (n > 0 && write(msg_log_fd, line, n) < 0)
            (void)0;
    }
    errno = saved_errno;
}

#define MSG_FN(fn, level) \
void fn(const char *fmt, ...) \
{ \
    va_list ap; \
    va_start(ap, fmt); \
    msg_vlog(level, fmt, ap); \
    va_end(ap); \
}

MSG_FN(msg_info, LVL_INFO)
MSG_FN(msg_warn, LVL_WARN)
MSG_FN(msg_error, LVL_ERROR)

void msg_debug(const char *fmt, ...)
{
    va_list ap;

    if (msg_verbose <= 0)
        return;
    va_start(ap, fmt);
    msg_vlog(LVL_DEBUG, fmt, ap);
    va_end(ap);
}

void msg_fatal(const char *fmt, ...)
{
    va_list ap;
    void (*hook)(void) = msg_hook;

    va_start(ap, fmt);
    msg_vlog(LVL_FATAL, fmt, ap);
    va_end(ap);
    msg_hook = NULL;
    if (hook)
        hook();
    exit(1);
}

void msg_panic(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    msg_vlog(LVL_PANIC, fmt, ap);
    va_end(ap);
    abort();
}
