/*
 * include.c - reading an :include: file (and ~/.forward) with the
 * privileges of whoever controls the line that names it (DESIGN.md §1:
 * root never opens a path a user can influence).
 *
 * include_read(as_uid, path, owners, nowners, &text, &st, &why):
 *   the file is opened with safe_open's discipline (O_NOFOLLOW |
 *   O_NONBLOCK | O_NOCTTY, then fstat: a regular file with one link, owned
 *   by one of owners[] when nowners > 0) and read whole, at most
 *   LOCAL_FILE_MAX bytes.  When this process runs as as_uid already (the
 *   delivery child expanding its user's ~/.forward; the root parent
 *   expanding a root-owned alias table) it opens the file itself.
 *   Otherwise (the root parent expanding an alias table or include file
 *   that another account owns) a short-lived child becomes as_uid for good
 *   (its groups, gid and uid, verified) and hands the content back over a
 *   pipe; the parent waits for it at most INCLUDE_TIMEOUT_MS.
 *   Root reads as root only through directories that root alone can change
 *   (lib/trustpath on the file's directory and every one above it; sticky
 *   ones like /tmp allowed): the file is then opened relative to that
 *   checked directory.  An include anywhere else (a list in a user's home)
 *   is read as default_privs, so nobody who can swap a directory on the
 *   way for a symbolic link to /etc gets root to read a file for them.
 *
 * Returns 0 with *text fresh (NUL-terminated) and *st the file's fstat()
 * (its owner and mode, for the caller's further rules), or -1 with errno
 * (ENOENT, ELOOP: a symbolic link, EINVAL: not a regular file, EMLINK,
 * EPERM: another owner, EFBIG, ETIMEDOUT, ...) and *why fresh ("cannot
 * open: No such file or directory", "owned by another account", ...).
 * Nothing is fatal in the caller: a failed privilege drop ends only the
 * reading child.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "event.h"
#include "local.h"
#include "msg.h"
#include "privs.h"
#include "safe_open.h"
#include "trustpath.h"
#include "xalloc.h"

#define INCLUDE_TIMEOUT_MS 10000

/* In this process, path relative to dirfd: 0 or -1 with *why fresh. */
static int include_read_here(int dirfd, const char *path, const uid_t *owners, size_t nowners,
                             buf_t **text, struct stat *st, char **why)
{
    const char *reason;
    int err;

    if (safe_read_file(dirfd, path, owners, nowners, LOCAL_FILE_MAX, text, st, &reason) < 0) {
        err = errno;
        *why = err == EFBIG ? xasprintf("larger than %d bytes", LOCAL_FILE_MAX)
               : err == ELOOP || err == EINVAL || err == EMLINK || err == EPERM
                   ? xstrdup(reason)
                   : xasprintf("%s: %s", reason, strerror(err));
        errno = err;
        return -1;
    }
    return 0;
}

/* The reading child: become as_uid, read, report 'O' stat content or
 * 'E' errno reason on fd, exit. */
static _Noreturn void include_child(int fd, uid_t as_uid, gid_t gid, const gid_t *groups,
                                    size_t ngroups, const char *path, const uid_t *owners,
                                    size_t nowners)
{
    buf_t *text = NULL;
    char *why = NULL;
    struct stat st;
    int err, keep[5] = { 0, 1, 2, fd, -1 };

    /* Nothing of the parent's stays open here: not qmgr's connection, not
     * other deliveries' queue files. */
    event_reset_signals();
    keep[4] = msg_detach_fds();
    privs_close_fds(keep, 5);
    privs_drop_ids(as_uid, gid, groups, ngroups, NULL);
    if (setuid(0) == 0 || privs_verify_dropped() < 0)
        _exit(1);
    if (include_read_here(AT_FDCWD, path, owners, nowners, &text, &st, &why) < 0) {
        err = errno;
        if (deliver_write_all(fd, "E", 1) == 0 && deliver_write_all(fd, &err, sizeof(err)) == 0)
            deliver_write_all(fd, why, strlen(why));
    } else if (deliver_write_all(fd, "O", 1) == 0
               && deliver_write_all(fd, &st, sizeof(st)) == 0) {
        deliver_write_all(fd, text->data, text->len);
    }
    _exit(0);
}

/* Fork a child that becomes as_uid and reads path for us. */
static int include_read_as(uid_t as_uid, const char *path, const uid_t *owners, size_t nowners,
                           buf_t **text, struct stat *st, char **why)
{
    struct passwd *pw = getpwuid(as_uid);
    gid_t *groups = NULL, gid;
    size_t ngroups = 0;
    buf_t *out;
    char chunk[8192];
    long long deadline;
    struct timespec now;
    int p[2], status, rc = -1, overflow = 0, err = EIO;
    pid_t pid;

    if (pw == NULL) {
        *why = xasprintf("no account has uid %ld", (long)as_uid);
        errno = EIO;
        return -1;
    }
    gid = pw->pw_gid;
    if (privs_groups(pw->pw_name, gid, &groups, &ngroups) < 0) {
        *why = xasprintf("the account of uid %ld is in too many groups", (long)as_uid);
        errno = EIO;
        return -1;
    }
    if (pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
        err = errno;
        *why = xasprintf("cannot start a process to read it: %s", strerror(err));
        free(groups);
        errno = err;
        return -1;
    }
    if (pid == 0) {
        close(p[0]);
        include_child(p[1], as_uid, gid, groups, ngroups, path, owners, nowners);
    }
    close(p[1]);
    free(groups);
    out = buf_new(LOCAL_FILE_MAX + 1 + sizeof(*st));
    clock_gettime(CLOCK_MONOTONIC, &now);
    deadline = now.tv_sec * 1000LL + now.tv_nsec / 1000000 + INCLUDE_TIMEOUT_MS;
    for (;;) {
        struct pollfd pfd = { .fd = p[0], .events = POLLIN };
        long long left;
        ssize_t n;

        clock_gettime(CLOCK_MONOTONIC, &now);
        left = deadline - (now.tv_sec * 1000LL + now.tv_nsec / 1000000);
        if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
            kill(pid, SIGKILL);
            *why = xstrdup("reading it took too long");
            err = ETIMEDOUT;
            overflow = -1;
            break;
        }
        n = read(p[0], chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (buf_append(out, chunk, (size_t)n) < 0)
            overflow = 1;
    }
    close(p[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (overflow < 0) {
        /* *why is set */
    } else if (overflow) {
        *why = xasprintf("larger than %d bytes", LOCAL_FILE_MAX);
        err = EFBIG;
    } else if (out->len >= 1 + sizeof(err) && out->data[0] == 'E') {
        memcpy(&err, out->data + 1, sizeof(err));
        *why = xstrndup(out->data + 1 + sizeof(err), out->len - 1 - sizeof(err));
    } else if (out->len >= 1 + sizeof(*st) && out->data[0] == 'O') {
        memcpy(st, out->data + 1, sizeof(*st));
        *text = buf_new(LOCAL_FILE_MAX);
        buf_append(*text, out->data + 1 + sizeof(*st), out->len - 1 - sizeof(*st));
        rc = 0;
    } else {
        *why = xasprintf("the process reading it as uid %ld failed", (long)as_uid);
    }
    buf_free(&out);
    errno = err;
    return rc;
}

/* Root's own read: through a trusted directory as root, else as
 * default_privs (see the header). */
static int include_read_root(const char *path, const uid_t *owners, size_t nowners,
                             buf_t **text, struct stat *st, char **why)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash == NULL ? xstrdup(".") : slash == path ? xstrdup("/")
                                                             : xstrndup(path, (size_t)(slash - path));
    const uid_t root = 0;
    struct passwd *pw;
    buf_t *errs = buf_new(0);
    int dirfd, rc;

    dirfd = trustpath_open(dir, TRUSTPATH_DIR | TRUSTPATH_STICKY_OK, &root, 1, errs);
    free(dir);
    if (dirfd >= 0) {
        buf_free(&errs);
        rc = include_read_here(dirfd, slash ? slash + 1 : path, owners, nowners, text, st, why);
        close(dirfd);
        return rc;
    }
    msg_debug("%s: not read as root: %s", path, buf_cstr(errs));
    buf_free(&errs);
    if ((pw = getpwnam(conf_str("default_privs"))) == NULL || pw->pw_uid == 0) {
        *why = xasprintf("default_privs account %s does not exist or is root",
                         conf_str("default_privs"));
        errno = EIO;
        return -1;
    }
    return include_read_as(pw->pw_uid, path, owners, nowners, text, st, why);
}

int include_read(uid_t as_uid, const char *path, const uid_t *owners, size_t nowners,
                 buf_t **text, struct stat *st, char **why)
{
    *text = NULL;
    *why = NULL;
    if (geteuid() == as_uid)
        return as_uid == 0 ? include_read_root(path, owners, nowners, text, st, why)
                           : include_read_here(AT_FDCWD, path, owners, nowners, text, st, why);
    if (geteuid() != 0) {
        *why = xasprintf("cannot read it as uid %ld", (long)as_uid);
        errno = EPERM;
        return -1;
    }
    return include_read_as(as_uid, path, owners, nowners, text, st, why);
}
