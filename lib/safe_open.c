/*
 * safe_open - open a file in a directory another account can write without
 * following a symlink, blocking on a FIFO or opening a device; see
 * safe_open.h for the rules and the failure modes.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "safe_open.h"

int safe_open(int dirfd, const char *path, int oflags, const uid_t *owners, size_t nowners,
              struct stat *st, const char **why)
{
    struct stat sb;
    size_t i;
    int fd, err, fl;

    if (st == NULL)
        st = &sb;
    if (oflags & O_CREAT) {
        *why = "safe_open cannot create files";
        errno = EINVAL;
        return -1;
    }
    /* O_TRUNC would cut the file before we have looked at it (a second
     * link to someone else's file, say): it is done after the checks. */
    fd = openat(dirfd, path,
                (oflags & ~O_TRUNC) | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        *why = errno == ELOOP ? "a symbolic link" : "cannot open";
        return -1;
    }
    if (fstat(fd, st) < 0) {
        *why = "cannot stat";
        goto fail;
    }
    if (!S_ISREG(st->st_mode)) {
        *why = "not a regular file";
        errno = EINVAL;
        goto fail;
    }
    if (st->st_nlink != 1) {
        *why = "a file with more than one link";
        errno = EMLINK;
        goto fail;
    }
    for (i = 0; i < nowners && st->st_uid != owners[i]; i++)
        ;
    if (nowners > 0 && i == nowners) {
        *why = "owned by another account";
        errno = EPERM;
        goto fail;
    }
    if ((oflags & O_TRUNC) && (oflags & O_ACCMODE) != O_RDONLY && ftruncate(fd, 0) < 0) {
        *why = "cannot truncate";
        goto fail;
    }
    if (!(oflags & O_NONBLOCK) && (fl = fcntl(fd, F_GETFL)) >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
fail:
    err = errno;
    close(fd);
    errno = err;
    return -1;
}

int safe_read_file(int dirfd, const char *path, const uid_t *owners, size_t nowners, size_t max,
                   buf_t **out, struct stat *st, const char **why)
{
    struct stat sb;
    buf_t *b;
    int fd, err, n;

    if (st == NULL)
        st = &sb;
    if ((fd = safe_open(dirfd, path, O_RDONLY, owners, nowners, st, why)) < 0)
        return -1;
    if ((size_t)st->st_size > max) {
        close(fd);
        *why = "too large";
        errno = EFBIG;
        return -1;
    }
    b = buf_new(max);
    n = buf_read_all(b, fd);        /* EFBIG: it grew while we read */
    err = errno;
    close(fd);
    if (n < 0) {
        buf_free(&b);
        *why = err == EFBIG ? "too large" : "cannot read";
        errno = err;
        return -1;
    }
    *out = b;
    return 0;
}
