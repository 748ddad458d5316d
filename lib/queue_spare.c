/*
 * queue_spare - the spool's spare queue files (see queue_spare.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "queue.h"
#include "queue_spare.h"
#include "xalloc.h"

#define SPARE_BATCH       256   /* names remembered from one directory read */
#define SPARE_EMPTY_WAIT  1     /* seconds before looking again after none */
#define SPARE_RECOUNT     60    /* seconds an estimate of the pool is trusted */
#define SPARE_RECOUNT_FULL 1    /* seconds a "full" estimate is trusted */

static char  *spare_names[SPARE_BATCH];
static size_t spare_count, spare_next;
static time_t spare_empty_at;

static long spare_estimate = -1;
static time_t spare_counted_at;

static int spare_name(const char *name)
{
    return strncmp(name, QUEUE_SPARE_PREFIX, sizeof(QUEUE_SPARE_PREFIX) - 1) == 0;
}

/* Calls fn(name, ctx) for each spare in tmp/, or for the first max of
 * them when max > 0; returns how many or -1. */
static long spare_scan(int qdirfd, long max, void (*fn)(const char *, void *), void *ctx)
{
    struct dirent *de;
    long n = 0;
    DIR *d;
    int fd = openat(qdirfd, QUEUE_DIR_TMP, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0)
        return -1;
    if ((d = fdopendir(fd)) == NULL) {
        close(fd);
        return -1;
    }
    while ((max <= 0 || n < max) && (de = readdir(d)) != NULL)
        if (spare_name(de->d_name)) {
            n++;
            if (fn)
                fn(de->d_name, ctx);
        }
    closedir(d);
    return n;
}

static void spare_remember(const char *name, void *ctx)
{
    (void)ctx;
    if (spare_count < SPARE_BATCH)
        spare_names[spare_count++] = xstrdup(name);
}

static void spare_forget(void)
{
    while (spare_count > 0)
        xfree(&spare_names[--spare_count]);
    spare_next = 0;
}

/* Refills the list of candidates; 0 if there is none to try. */
static int spare_refill(int qdirfd)
{
    time_t now = time(NULL);

    spare_forget();
    if (spare_empty_at != 0 && now - spare_empty_at < SPARE_EMPTY_WAIT && now >= spare_empty_at)
        return 0;
    /* A full pool is thousands of names: the first batch will do. */
    spare_scan(qdirfd, SPARE_BATCH, spare_remember, NULL);
    if (spare_count == 0) {
        spare_empty_at = now;
        return 0;
    }
    spare_empty_at = 0;
    /* Directory order is the same for every writer: start elsewhere. */
    spare_next = (size_t)getpid() % spare_count;
    return 1;
}

/* Open and lock tmp/spare: the fd, or -1 (taken by another writer, gone,
 * or not a spare we can use; a bad one that is still there is removed). */
static int spare_take(int qdirfd, const char *path)
{
    struct stat st, named;
    int fd, usable;

    fd = openat(qdirfd, path, O_RDWR | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -1;
    /* Another writer holds it, or has committed it under this lock and
     * only then let go: the name must still be this file. */
    if (flock(fd, LOCK_EX | LOCK_NB) < 0 || fstat(fd, &st) < 0
        || fstatat(qdirfd, path, &named, AT_SYMLINK_NOFOLLOW) < 0
        || named.st_dev != st.st_dev || named.st_ino != st.st_ino) {
        close(fd);
        return -1;
    }
    usable = S_ISREG(st.st_mode) && st.st_nlink == 1 && st.st_uid == geteuid()
             && (st.st_mode & 07777) == 0600 && fcntl(fd, F_SETFL, 0) == 0;
    if (!usable) {
        unlinkat(qdirfd, path, 0);
        close(fd);
        return -1;
    }
    return fd;
}

int queue_spare_claim(int qdirfd, char **name)
{
    char *spare, *path;
    int fd, refilled = 0;

    *name = NULL;
    for (;;) {
        if (spare_count == 0) {
            if (refilled || !spare_refill(qdirfd))
                break;
            refilled = 1;
        }
        spare_next %= spare_count;
        spare = spare_names[spare_next];
        spare_names[spare_next] = spare_names[--spare_count];
        spare_names[spare_count] = NULL;
        path = xasprintf("%s/%s", QUEUE_DIR_TMP, spare);
        free(spare);
        if ((fd = spare_take(qdirfd, path)) >= 0) {
            *name = path;
            return fd;
        }
        free(path);
    }
    errno = ENOENT;
    return -1;
}

int queue_spare_retire(int qdirfd, const char *dir, const char *id, off_t size)
{
    time_t now = time(NULL);
    char *from, *to;
    int ret, saved;

    if (!queue_dir_valid(dir) || !queue_id_valid(id)) {
        errno = EINVAL;
        return -1;
    }
    /* The estimate counts our retires, not the writers' claims: under a
     * steady flow it grows by one a message while the pool stays small,
     * so a pool that looks full is counted again (at most once a second)
     * before a file is unlinked for it. */
    if (spare_estimate < 0 || now - spare_counted_at >= SPARE_RECOUNT || now < spare_counted_at
        || (spare_estimate >= QUEUE_SPARE_MAX && now - spare_counted_at >= SPARE_RECOUNT_FULL)) {
        spare_estimate = spare_scan(qdirfd, 0, NULL, NULL);
        spare_counted_at = now;
    }
    from = xasprintf("%s/%s", dir, id);
    if (size <= QUEUE_SPARE_SIZE_MAX && spare_estimate >= 0 && spare_estimate < QUEUE_SPARE_MAX) {
        to = xasprintf("%s/%s%s", QUEUE_DIR_TMP, QUEUE_SPARE_PREFIX, id);
        ret = renameat(qdirfd, from, qdirfd, to);
        free(to);
        if (ret == 0) {
            spare_estimate++;
            free(from);
            return 0;
        }
        if (errno == ENOENT) {
            free(from);
            return -1;
        }
    }
    ret = unlinkat(qdirfd, from, 0);
    saved = errno;
    free(from);
    errno = saved;
    return ret;
}
