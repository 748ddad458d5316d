/*
 * durable - directory fsync and a rename that never replaces (see
 * durable.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "durable.h"

int durable_fsync_dir(int atfd, const char *path)
{
    int fd = openat(atfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), ret, saved;

    if (fd < 0)
        return -1;
    ret = fsync(fd);
    saved = errno;
    close(fd);
    errno = saved;
    return ret;
}

int durable_rename_noreplace(int dfd, const char *from, const char *to)
{
    if (renameat2(dfd, from, dfd, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    if (linkat(dfd, from, dfd, to, 0) < 0)
        return -1;
    unlinkat(dfd, from, 0);
    return 0;
}
