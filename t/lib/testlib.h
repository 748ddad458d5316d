/*
 * testlib.h - header-only helpers shared by Posthorn's C unit tests
 * (the files in t/unit), so that each test file need not carry its own copy.
 *
 * Interface:
 *   reap(pid)               waitpid() for one child, retried on EINTR; the
 *                           wait status, or -1.
 *   in_child(fn, out)       run fn() in a forked child with its stderr
 *                           captured into the buf out; return the wait status.
 *   dies_with_abort(fn)     run fn() in a forked child with stderr silenced;
 *                           true if it died of SIGABRT (a msg_panic()).
 *   dies_with_abort_arg(fn, arg)  the same for fn(arg).
 *   slurp(path)             the whole file as a fresh string ("" if it cannot
 *                           be read; caller frees).
 *   take_file(path)         slurp(path), then empty the file (for log files).
 *   write_text(path, text)  create or replace path with text; fatal on error.
 *   count_lines(s)          the number of '\n' in s.
 *   count_dir(path)         the entries of a directory, "." and ".." aside;
 *                           -1 if it cannot be read.
 *
 * In the children SIGABRT is at its default action, and fn returning counts
 * as exit status 0.  Uses lib/buf.h and lib/msg.h (the Makefile has -Ilib).
 */
#ifndef POSTHORN_TESTLIB_H
#define POSTHORN_TESTLIB_H

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "msg.h"

/* waitpid() for one child, retried on EINTR; the status, or -1. */
__attribute__((unused))
static int reap(pid_t pid)
{
    int status;

    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return status;
}

/* Run fn in a child with stderr captured into out; return the wait status. */
__attribute__((unused))
static int in_child(void (*fn)(void), buf_t *out)
{
    int pfd[2];
    pid_t pid;
    char chunk[512];
    ssize_t n;

    fflush(NULL);
    if (pipe(pfd) < 0 || (pid = fork()) < 0)
        msg_fatal("pipe/fork: %m");
    if (pid == 0) {
        close(pfd[0]);
        dup2(pfd[1], STDERR_FILENO);
        close(pfd[1]);
        signal(SIGABRT, SIG_DFL);
        fn();
        _exit(0);
    }
    close(pfd[1]);
    while ((n = read(pfd[0], chunk, sizeof(chunk))) > 0 || (n < 0 && errno == EINTR))
        if (n > 0)
            buf_append(out, chunk, (size_t)n);
    close(pfd[0]);
    return reap(pid);
}

/* Run fn(arg) in a child with stderr silenced; true if it died of SIGABRT. */
__attribute__((unused))
static int dies_with_abort_arg(void (*fn)(void *), void *arg)
{
    pid_t pid;
    int status;

    fflush(NULL);
    if ((pid = fork()) < 0)
        return 0;
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);

        if (null >= 0) {
            dup2(null, STDERR_FILENO);
            close(null);
        }
        signal(SIGABRT, SIG_DFL);
        fn(arg);
        _exit(0);
    }
    status = reap(pid);
    return status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

struct testlib_thunk {
    void (*fn)(void);
};

__attribute__((unused))
static void testlib_call_thunk(void *arg)
{
    ((struct testlib_thunk *)arg)->fn();
}

/* Run fn in a child with stderr silenced; true if it died of SIGABRT. */
__attribute__((unused))
static int dies_with_abort(void (*fn)(void))
{
    struct testlib_thunk t = { fn };

    return dies_with_abort_arg(testlib_call_thunk, &t);
}

/* Read the whole file into a fresh string ("" if it cannot be opened). */
__attribute__((unused))
static char *slurp(const char *path)
{
    buf_t *b = buf_new(0);
    char tmp[4096], *s;
    ssize_t n;
    int fd = open(path, O_RDONLY);

    if (fd >= 0) {
        while ((n = read(fd, tmp, sizeof(tmp))) > 0)
            buf_append(b, tmp, (size_t)n);
        close(fd);
    }
    s = buf_steal(b, NULL);
    buf_free(&b);
    return s;
}

/* Return what the file holds and empty it (caller frees). */
__attribute__((unused))
static char *take_file(const char *path)
{
    char *s = slurp(path);

    if (truncate(path, 0) < 0)
        printf("# truncate %s: %s\n", path, strerror(errno));
    return s;
}

/* Create or replace path with text; fatal if that fails. */
__attribute__((unused))
static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    if (fp == NULL || fputs(text, fp) < 0 || fclose(fp) != 0)
        msg_fatal("write %s: %m", path);
}

/* The number of newlines in s. */
__attribute__((unused))
static int count_lines(const char *s)
{
    int n = 0;

    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* The entries of directory path, "." and ".." aside; -1 if unreadable. */
__attribute__((unused))
static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

#endif
