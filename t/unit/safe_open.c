/*
 * t/unit/safe_open.c - unit tests for lib/safe_open.c.
 *
 * Covers: a regular file opens (blocking again, O_CLOEXEC), relative to a
 * directory descriptor too; a symbolic link (ELOOP), a FIFO without a
 * writer (EINVAL at once, no hang), a directory, a device (EINVAL), a
 * second hard link (EMLINK), another owner (EPERM; any owner with
 * nowners 0), O_CREAT refused; O_TRUNC only after the checks (a refused
 * second link is not cut; *st holds what fstat saw); safe_read_file reads the whole file,
 * refuses one over the limit (EFBIG) and gives a NUL-terminated buffer.
 * Works in a mkdtemp directory removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "safe_open.h"
#include "xalloc.h"
#include "../lib/tap.h"

static char *dir;

static char *path(const char *name)
{
    return xasprintf("%s/%s", dir, name);
}

static void write_file(const char *name, const char *text)
{
    char *p = path(name);
    FILE *f = fopen(p, "w");

    fputs(text, f);
    fclose(f);
    free(p);
}

/* safe_open of name: the errno (0 on success). */
static int try_open(const char *name, const uid_t *owners, size_t n)
{
    char *p = path(name);
    const char *why = NULL;
    struct stat st;
    int fd = safe_open(AT_FDCWD, p, O_RDONLY, owners, n, &st, &why), err = errno;

    free(p);
    if (fd < 0)
        return err;
    close(fd);
    return 0;
}

int main(void)
{
    char tmpl[] = "/tmp/posthorn-safeopen-XXXXXX";
    uid_t me = geteuid(), other = me + 12345, owners[2] = { other, me };
    const char *why = NULL;
    struct stat st;
    buf_t *b = NULL;
    char *p, *q;
    int fd, dfd, fl;

    dir = mkdtemp(tmpl);
    write_file("plain", "hello\n");
    p = path("plain");
    fd = safe_open(AT_FDCWD, p, O_RDONLY, NULL, 0, &st, &why);
    ok(fd >= 0 && S_ISREG(st.st_mode) && st.st_size == 6, "a regular file opens, with its stat");
    fl = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
    ok(fl >= 0 && !(fl & O_NONBLOCK), "blocking again");
    ok(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC), "close-on-exec");
    if (fd >= 0)
        close(fd);
    dfd = open(dir, O_RDONLY | O_DIRECTORY);
    fd = safe_open(dfd, "plain", O_RDONLY, NULL, 0, NULL, &why);
    ok(fd >= 0, "relative to a directory descriptor");
    if (fd >= 0)
        close(fd);
    close(dfd);

    q = path("link");
    ok(symlink(p, q) == 0, "symlink made");
    is_int(try_open("link", NULL, 0), ELOOP, "a symbolic link: ELOOP");
    free(q);
    q = path("fifo");
    mkfifo(q, 0644);
    is_int(try_open("fifo", NULL, 0), EINVAL, "a FIFO without a writer: EINVAL, at once");
    free(q);
    q = path("sub");
    mkdir(q, 0755);
    is_int(try_open("sub", NULL, 0), EINVAL, "a directory: EINVAL");
    free(q);
    fd = safe_open(AT_FDCWD, "/dev/null", O_RDONLY, NULL, 0, NULL, &why);
    ok(fd < 0 && errno == EINVAL && strcmp(why, "not a regular file") == 0,
       "a device: EINVAL, \"not a regular file\"");
    q = path("hard");
    ok(link(p, q) == 0, "second link made");
    is_int(try_open("plain", NULL, 0), EMLINK, "a file with a second link: EMLINK");
    unlink(q);
    free(q);
    is_int(try_open("plain", NULL, 0), 0, "one link again: fine");
    is_int(try_open("plain", owners, 1), EPERM, "another owner than the one expected: EPERM");
    is_int(try_open("plain", owners, 2), 0, "one of the owners expected: fine");
    fd = safe_open(AT_FDCWD, p, O_RDONLY | O_CREAT, NULL, 0, NULL, &why);
    ok(fd < 0 && errno == EINVAL, "O_CREAT is refused");
    q = path("hard");
    ok(link(p, q) == 0, "second link made again");
    memset(&st, 0, sizeof(st));
    fd = safe_open(AT_FDCWD, q, O_RDWR | O_TRUNC, NULL, 0, &st, &why);
    ok(fd < 0 && errno == EMLINK && st.st_nlink == 2,
       "O_TRUNC on a second link: EMLINK, with the stat it saw");
    ok(stat(p, &st) == 0 && st.st_size == 6, "  and the file it refused is not cut");
    unlink(q);
    free(q);
    fd = safe_open(AT_FDCWD, p, O_RDWR | O_TRUNC, NULL, 0, &st, &why);
    ok(fd >= 0 && fstat(fd, &st) == 0 && st.st_size == 0, "O_TRUNC on a good file cuts it");
    if (fd >= 0)
        close(fd);
    write_file("plain", "hello\n");

    ok(safe_read_file(AT_FDCWD, p, NULL, 0, 100, &b, &st, &why) == 0 && b->len == 6
       && strcmp(buf_cstr(b), "hello\n") == 0, "safe_read_file reads it whole");
    buf_free(&b);
    ok(safe_read_file(AT_FDCWD, p, NULL, 0, 5, &b, &st, &why) < 0 && errno == EFBIG && b == NULL,
       "and refuses a file over the limit: EFBIG");
    q = path("fifo");
    ok(safe_read_file(AT_FDCWD, q, NULL, 0, 100, &b, &st, &why) < 0 && errno == EINVAL,
       "and a FIFO, without hanging");
    free(q);

    unlink(p);
    free(p);
    p = xasprintf("rm -rf '%s'", dir);
    if (system(p) != 0)
        diag("cannot remove %s", dir);
    free(p);
    return done_testing();
}
