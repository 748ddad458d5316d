/*
 * t/unit/msg.c - unit tests for lib/msg.c (logging, error classes) and
 * lib/xalloc.c (allocation that never returns NULL).
 *
 * Covers: the log file line shape "... posthorn/NAME[pid]: warning: text",
 * one line per call, labels per level, msg_debug gated by msg_verbose,
 * control characters replaced by '?', long messages cut to one line, errno
 * preserved, the stderr shape, msg_logfile(NULL); msg_fatal exits 1 and runs
 * the fatal hook once, msg_panic aborts (both in forked children); the
 * xalloc family, its overflow panics and (without ASan) the out-of-memory
 * fatal.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "msg.h"
#include "xalloc.h"
#include "../lib/tap.h"
#include "../lib/testlib.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static char dir[PATH_MAX];
static char logpath[PATH_MAX + 16];
static int hook_fd = -1;

/* Return the log so far and empty it. */
static char *take_log(void)
{
    return take_file(logpath);
}

static int matches(const char *text, const char *re)
{
    regex_t rx;
    int r;

    if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0) {
        diag("bad regex %s", re);
        return 0;
    }
    r = regexec(&rx, text, 0, NULL, 0) == 0;
    regfree(&rx);
    return r;
}

static void test_log_shape(void)
{
    char *log, *re;

    msg_init("/usr/libexec/posthorn/smtpd", 0);
    is_str(msg_progname(), "smtpd", "msg_init keeps the base name");
    is_int(msg_logfile(logpath), 0, "msg_logfile opens the file");

    msg_warn("hello %d", 42);
    log = take_log();
    is_int(count_lines(log), 1, "one msg_warn, one line");
    re = xasprintf("^[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [^ ]+ "
                   "posthorn/smtpd\\[%ld\\]: warning: hello 42\n$", (long)getpid());
    ok(matches(log, re), "line shape: 'Mon DD HH:MM:SS host posthorn/smtpd[pid]: warning: text'");
    if (!matches(log, re))
        diag("got: %s", log);
    free(re);
    free(log);

    msg_info("info line");
    msg_warn("warn line");
    msg_error("error line");
    msg_verbose = 0;
    msg_debug("hidden debug line");
    log = take_log();
    is_int(count_lines(log), 3, "three calls, three lines (debug suppressed)");
    like(log, "posthorn/smtpd[", "ident with pid");
    ok(strstr(log, "]: info line\n") != NULL, "msg_info has no label");
    like(log, "]: warning: warn line\n", "msg_warn label");
    like(log, "]: error: error line\n", "msg_error label");
    ok(strstr(log, "hidden") == NULL, "msg_debug is silent when msg_verbose is 0");
    free(log);

    msg_verbose = 1;
    msg_debug("shown %s", "debug");
    msg_verbose = 0;
    log = take_log();
    like(log, "]: debug: shown debug\n", "msg_debug logs when msg_verbose > 0");
    free(log);

    msg_warn("a\nb\rc\033[31md\177e\tf");
    log = take_log();
    is_int(count_lines(log), 1, "control characters: still one line");
    like(log, "warning: a?b?c?[31md?e?f\n", "control characters replaced by '?'");
    free(log);

    {
        char *big = xmalloc(5001);

        memset(big, 'z', 5000);
        big[5000] = '\0';
        msg_warn("%s", big);
        free(big);
    }
    log = take_log();
    is_int(count_lines(log), 1, "a 5000-byte message: one line");
    ok(strlen(log) < 2400 && log[strlen(log) - 1] == '\n',
       "a 5000-byte message is cut and still ends in a newline (%zu bytes)", strlen(log));
    free(log);

    errno = EAGAIN;
    msg_warn("errno %s", "test");
    msg_info("x");
    is_int(errno, EAGAIN, "msg_* preserve errno");
    free(take_log());

    msg_warn("%s", "");
    log = take_log();
    like(log, "]: warning: \n", "an empty message is still a line");
    free(log);

    is_int(msg_logfile(NULL), 0, "msg_logfile(NULL) closes");
    msg_warn("not logged");
    log = slurp(logpath);
    is_str(log, "", "after msg_logfile(NULL) nothing is written");
    free(log);
    {
        char *bad = xasprintf("%s/no/such/dir/log", dir);

        is_int(msg_logfile(bad), -1, "msg_logfile of an impossible path fails");
        free(bad);
    }
    is_int(msg_logfile(logpath), 0, "msg_logfile reopens");
}

static void test_stderr_shape(void)
{
    char *cap = xasprintf("%s/stderr", dir), *text;
    int saved = dup(STDERR_FILENO);
    int fd = open(cap, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    dup2(fd, STDERR_FILENO);
    msg_init("cleanup", MSG_STDERR);
    msg_warn("to stderr");
    msg_info("plain");
    msg_init("smtpd", 0);
    msg_warn("not to stderr");
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fd);
    text = slurp(cap);
    is_str(text, "posthorn/cleanup: warning: to stderr\nposthorn/cleanup: plain\n",
           "stderr shape 'posthorn/NAME: warning: text', nothing without MSG_STDERR");
    free(text);
    unlink(cap);
    free(cap);
    free(take_log());
}

static void hook(void)
{
    if (hook_fd >= 0 && write(hook_fd, "H", 1) != 1)
        _exit(7);
}

static void hook_that_dies(void)
{
    hook();
    msg_fatal("fatal inside the fatal hook");
}

/* Fork; the child runs fn.  Returns the wait status; *hooks gets how many
 * times the child's fatal hook ran. */
static int in_hooked_child(void (*fn)(void), void (*fatal_hook)(void), int *hooks)
{
    int p[2], status = -1;
    pid_t pid;
    char c;

    *hooks = 0;
    if (pipe(p) < 0)
        return -1;
    fflush(NULL);
    if ((pid = fork()) == 0) {
        struct rlimit rl = { 0, 0 };

        setrlimit(RLIMIT_CORE, &rl);      /* no core files from abort() */
        alarm(20);
        close(p[0]);
        hook_fd = p[1];
        msg_fatal_hook(fatal_hook);
        fn();
        _exit(0);
    }
    close(p[1]);
    while (read(p[0], &c, 1) == 1)
        (*hooks)++;
    close(p[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

static void do_fatal(void)
{
    msg_fatal("cannot open %s: %s", "/etc/posthorn/main.conf", strerror(ENOENT));
}

static void do_panic(void)
{
    msg_panic("impossible state %d", 3);
}

static void do_overflow(void)
{
    (void)xreallocarray(NULL, SIZE_MAX / 2, 4);
}

static void do_calloc_overflow(void)
{
    (void)xcalloc(SIZE_MAX / 8, 16);
}

static void do_oom(void)
{
    void *p = xmalloc(SIZE_MAX / 2);

    free(p);
}

static void test_fatal_panic(void)
{
    int status, hooks;
    char *log, *re;

    msg_init("qmgr", 0);
    status = in_hooked_child(do_fatal, hook, &hooks);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 1, "msg_fatal exits 1 (status 0x%x)", status);
    is_int(hooks, 1, "msg_fatal runs the fatal hook once");
    log = take_log();
    re = xasprintf("posthorn/qmgr\\[[0-9]+\\]: fatal: cannot open /etc/posthorn/main.conf: "
                   "No such file or directory\n$");
    ok(matches(log, re), "msg_fatal logs 'fatal: text'");
    free(re);
    {
        const char *br = strstr(log, "posthorn/qmgr[");
        long pid = br ? strtol(br + 14, NULL, 10) : 0;

        ok(pid > 0 && pid != (long)getpid(), "the fatal line carries the child's pid");
    }
    free(log);

    status = in_hooked_child(do_fatal, NULL, &hooks);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 1, "msg_fatal without a hook exits 1");
    free(take_log());

    status = in_hooked_child(do_fatal, hook_that_dies, &hooks);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 1,
       "msg_fatal inside the hook: still exit 1, no loop (status 0x%x)", status);
    is_int(hooks, 1, "a hook that dies runs only once");
    log = take_log();
    is_int(count_lines(log), 2, "both fatal lines logged");
    free(log);

    status = in_hooked_child(do_panic, hook, &hooks);
    ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
       "msg_panic aborts with SIGABRT (status 0x%x)", status);
    is_int(hooks, 0, "msg_panic does not run the fatal hook");
    log = take_log();
    like(log, "]: panic: impossible state 3\n", "msg_panic logs 'panic: text'");
    free(log);

    status = in_hooked_child(do_overflow, NULL, &hooks);
    ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
       "xreallocarray overflow panics (status 0x%x)", status);
    log = take_log();
    like(log, "panic: xreallocarray: ", "xreallocarray overflow: the log says so");
    free(log);

    status = in_hooked_child(do_calloc_overflow, NULL, &hooks);
    ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
       "xcalloc overflow panics (status 0x%x)", status);
    log = take_log();
    like(log, "panic: xcalloc: ", "xcalloc overflow: the log says so");
    free(log);

#ifdef UNDER_ASAN
    ok(1, "# skip out-of-memory test: ASan aborts on huge allocations");
    ok(1, "# skip out-of-memory test: ASan aborts on huge allocations");
#else
    status = in_hooked_child(do_oom, NULL, &hooks);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 1,
       "out of memory is fatal, exit 1 (status 0x%x)", status);
    log = take_log();
    like(log, "fatal: out of memory allocating ", "out of memory: the log says so");
    free(log);
#endif
    (void)do_oom;
}

static void test_xalloc(void)
{
    char *s, *p;
    int *ints;
    int zero = 1;

    s = xasprintf("%s-%d-%c", "abc", 42, 'x');
    is_str(s, "abc-42-x", "xasprintf");
    free(s);
    s = xasprintf("%s", "");
    is_str(s, "", "xasprintf of an empty string");
    free(s);
    p = xmalloc(10001);
    memset(p, 'q', 10000);
    p[10000] = '\0';
    s = xasprintf("<%s>", p);
    ok(strlen(s) == 10002 && s[0] == '<' && s[10001] == '>', "xasprintf of 10000 bytes");
    free(s);
    free(p);

    s = xstrdup("dup me");
    is_str(s, "dup me", "xstrdup");
    free(s);
    s = xstrndup("abcdef", 3);
    is_str(s, "abc", "xstrndup cuts");
    free(s);
    s = xstrndup("ab", 10);
    is_str(s, "ab", "xstrndup of a shorter string");
    free(s);
    s = xmemdup("a\0b", 3);
    ok(s[0] == 'a' && s[1] == '\0' && s[2] == 'b', "xmemdup copies NULs");
    free(s);
    s = xmemdup("", 0);
    ok(s != NULL, "xmemdup of 0 bytes is not NULL");
    free(s);
    p = xmalloc(0);
    ok(p != NULL, "xmalloc(0) is not NULL");
    free(p);
    ints = xcalloc(1000, sizeof(*ints));
    for (int i = 0; i < 1000; i++)
        zero &= ints[i] == 0;
    ok(zero, "xcalloc zeroes");
    ints[999] = 7;
    ints = xreallocarray(ints, 2000, sizeof(*ints));
    ints[1999] = 8;
    ok(ints[999] == 7 && ints[1999] == 8, "xreallocarray grows and keeps the data");
    ints = xrealloc(ints, 0);
    ok(ints != NULL, "xrealloc(p, 0) is not NULL");
    xfree(&ints);
    ok(ints == NULL, "xfree NULLs the pointer");
    p = xcalloc(0, 0);
    ok(p != NULL, "xcalloc(0, 0) is not NULL");
    free(p);
}

int main(void)
{
    char tmpl[] = "/tmp/posthorn-msg.XXXXXX";

    alarm(60);
    if (mkdtemp(tmpl) == NULL) {
        ok(0, "mkdtemp: %s", strerror(errno));
        return done_testing();
    }
    snprintf(dir, sizeof(dir), "%s", tmpl);
    snprintf(logpath, sizeof(logpath), "%s/maillog", dir);

    test_log_shape();
    test_stderr_shape();
    test_fatal_panic();
    test_xalloc();

    msg_logfile(NULL);
    unlink(logpath);
    if (rmdir(dir) < 0)
        diag("cannot remove %s: %s", dir, strerror(errno));
    return done_testing();
}
