/*
 * trustpath - check that nobody but root (or the given owners) can change
 * a path or anything it depends on: its ancestors, the symbolic links on
 * the way and the directories holding them.  See trustpath.h for the rules
 * and the failure modes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "msg.h"
#include "trustpath.h"
#include "xalloc.h"

struct trustpath_walk {
    const char  *path;          /* as asked, for messages */
    const uid_t *owners;
    size_t       nowners;
    buf_t       *errs;
    buf_t       *here;          /* real path of what was reached ("" = "/") */
};

size_t trustpath_owners(uid_t owners[2])
{
    owners[0] = 0;
    owners[1] = geteuid();
    return owners[1] == 0 ? 1 : 2;
}

/* Append "HERE/NAME: reason[ (checking PATH)]" and set errno. */
static void __attribute__((format(printf, 4, 5)))
trustpath_fail(struct trustpath_walk *w, const char *name, int err, const char *fmt, ...)
{
    buf_t *file = buf_new(0), *why = buf_new(0);
    va_list ap;
    char *text;

    buf_append_str(file, buf_cstr(w->here));
    if (name) {
        buf_putc(file, '/');
        buf_append_str(file, name);
    }
    if (file->len == 0)
        buf_putc(file, '/');
    va_start(ap, fmt);
    if (vasprintf(&text, fmt, ap) < 0)
        msg_fatal("out of memory");
    va_end(ap);
    buf_printf(why, "%s: %s", buf_cstr(file), text);
    if (strcmp(buf_cstr(file), w->path) != 0)
        buf_printf(why, " (checking %s)", w->path);
    buf_putc(why, '\n');
    if (w->errs)
        buf_append_str(w->errs, buf_cstr(why));
    free(text);
    buf_free(&file);
    buf_free(&why);
    errno = err;
}

static int trustpath_owner_ok(const struct trustpath_walk *w, const struct stat *st)
{
    for (size_t i = 0; i < w->nowners; i++)
        if (st->st_uid == w->owners[i])
            return 1;
    return 0;
}

/* "root" or "root or uid 1000" */
static char *trustpath_owner_text(const struct trustpath_walk *w)
{
    buf_t *b = buf_new(0);
    char *text;

    for (size_t i = 0; i < w->nowners; i++) {
        if (i)
            buf_append_str(b, " or ");
        if (w->owners[i] == 0)
            buf_append_str(b, "root");
        else
            buf_printf(b, "uid %lu", (unsigned long)w->owners[i]);
    }
    text = buf_steal(b, NULL);
    buf_free(&b);
    return text;
}

static const char *trustpath_writers(mode_t mode)
{
    if ((mode & 022) == 022)
        return "group and others";
    return mode & 020 ? "its group" : "others";
}

/* Owner and mode of one file on the way; final: the last component. */
static int trustpath_check_stat(struct trustpath_walk *w, const char *name,
                                const struct stat *st, int final, int flags)
{
    mode_t mode = st->st_mode;

    if (!trustpath_owner_ok(w, st)) {
        char *who = trustpath_owner_text(w);

        trustpath_fail(w, name, EPERM, "%snot owned by %s but by uid %lu",
                       S_ISLNK(mode) ? "a symbolic link " : "", who, (unsigned long)st->st_uid);
        free(who);
        return -1;
    }
    if (S_ISLNK(mode))
        return 0;               /* its own mode means nothing */
    if ((mode & 022) && (!S_ISDIR(mode) || !(mode & S_ISVTX)
                         || (final && !(flags & TRUSTPATH_STICKY_OK)))) {
        trustpath_fail(w, name, EPERM, "writable by %s (mode %04o)", trustpath_writers(mode),
                       (unsigned)(mode & 07777));
        return -1;
    }
    return 0;
}

/* The target of the symbolic link dirfd/name, without a size limit. */
static char *trustpath_readlink(int dirfd, const char *name, size_t hint)
{
    size_t size = hint + 2;

    for (;;) {
        char *buf = xmalloc(size);
        ssize_t n = readlinkat(dirfd, name, buf, size);

        if (n < 0) {
            free(buf);
            return NULL;
        }
        if ((size_t)n < size) {
            buf[n] = '\0';
            return buf;
        }
        free(buf);
        size *= 2;
    }
}

static int trustpath_open_root(struct trustpath_walk *w, struct stat *st)
{
    int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);

    buf_reset(w->here);
    if (fd < 0 || fstat(fd, st) < 0) {
        trustpath_fail(w, NULL, errno, "%s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

int trustpath_open(const char *path, int flags, const uid_t *owners, size_t nowners,
                   buf_t *errs)
{
    struct trustpath_walk w = {path, owners, nowners, errs, buf_new(0)};
    buf_t *todo = buf_new(0);
    struct stat st, nst;
    int fd = -1, nfd, links = 0;

    if (nowners == 0)
        msg_panic("trustpath_open: no trusted owner");
    if (path == NULL || *path == '\0') {
        trustpath_fail(&w, NULL, ENOENT, "an empty path");
        goto fail;
    }
    if (path[0] != '/') {
        char *cwd = getcwd(NULL, 0);

        if (cwd == NULL) {
            trustpath_fail(&w, NULL, errno, "the current directory: %s", strerror(errno));
            goto fail;
        }
        buf_append_str(todo, cwd);
        buf_putc(todo, '/');
        free(cwd);
    }
    buf_append_str(todo, path);
    if ((fd = trustpath_open_root(&w, &st)) < 0
        || trustpath_check_stat(&w, NULL, &st, 0, flags) < 0)
        goto fail;

    for (;;) {
        const char *p = buf_cstr(todo);
        size_t skip = strspn(p, "/"), len = strcspn(p + skip, "/");
        char *comp = xstrndup(p + skip, len);
        int last;

        buf_consume(todo, skip + len);
        last = buf_cstr(todo)[strspn(buf_cstr(todo), "/")] == '\0';
        if (len == 0) {
            free(comp);
            break;
        }
        if (!S_ISDIR(st.st_mode)) {
            trustpath_fail(&w, NULL, ENOTDIR, "not a directory");
            free(comp);
            goto fail;
        }
        if (strcmp(comp, ".") == 0) {
            free(comp);
            continue;
        }
        if (strcmp(comp, "..") == 0) {
            /* Back to a directory this walk came through (or "/"). */
            char *slash = strrchr(buf_cstr(w.here), '/');

            free(comp);
            if (slash == NULL)
                continue;
            if ((nfd = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0
                || fstat(nfd, &st) < 0) {
                trustpath_fail(&w, "..", errno, "%s", strerror(errno));
                if (nfd >= 0)
                    close(nfd);
                goto fail;
            }
            close(fd);
            fd = nfd;
            buf_truncate(w.here, (size_t)(slash - buf_cstr(w.here)));
            continue;
        }
        if (fstatat(fd, comp, &nst, AT_SYMLINK_NOFOLLOW) < 0) {
            trustpath_fail(&w, comp, errno, "%s", strerror(errno));
            free(comp);
            goto fail;
        }
        if (trustpath_check_stat(&w, comp, &nst, last, flags) < 0) {
            free(comp);
            goto fail;
        }
        if (S_ISLNK(nst.st_mode)) {
            char *target;
            buf_t *next;

            if (++links > TRUSTPATH_MAXLINKS) {
                trustpath_fail(&w, comp, ELOOP, "too many levels of symbolic links");
                free(comp);
                goto fail;
            }
            target = trustpath_readlink(fd, comp, (size_t)nst.st_size);
            if (target == NULL || *target == '\0') {
                trustpath_fail(&w, comp, target ? ENOENT : errno,
                               "cannot read the symbolic link: %s",
                               target ? "it is empty" : strerror(errno));
                free(target);
                free(comp);
                goto fail;
            }
            free(comp);
            next = buf_new(0);
            buf_append_str(next, target);
            buf_putc(next, '/');
            buf_append_str(next, buf_cstr(todo));
            buf_free(&todo);
            todo = next;
            if (target[0] == '/') {
                close(fd);
                fd = trustpath_open_root(&w, &st);
                if (fd < 0) {
                    free(target);
                    goto fail;
                }
            }
            free(target);
            continue;
        }
        nfd = openat(fd, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC
                     | (S_ISDIR(nst.st_mode) ? O_DIRECTORY : 0));
        if (nfd < 0 || fstat(nfd, &st) < 0) {
            trustpath_fail(&w, comp, errno, "%s", strerror(errno));
            if (nfd >= 0)
                close(nfd);
            free(comp);
            goto fail;
        }
        if (st.st_dev != nst.st_dev || st.st_ino != nst.st_ino) {
            trustpath_fail(&w, comp, EAGAIN, "changed while it was being checked");
            close(nfd);
            free(comp);
            goto fail;
        }
        close(fd);
        fd = nfd;
        buf_putc(w.here, '/');
        buf_append_str(w.here, comp);
        free(comp);
    }
    /* The final file: its owner and mode were checked on the way (or, for
     * "/" or a path ending in "." or "..", as a directory above). */
    if (trustpath_check_stat(&w, NULL, &st, 1, flags) < 0)
        goto fail;
    if ((flags & TRUSTPATH_DIR) && !S_ISDIR(st.st_mode)) {
        trustpath_fail(&w, NULL, ENOTDIR, "not a directory");
        goto fail;
    }
    if ((flags & TRUSTPATH_FILE) && !S_ISREG(st.st_mode)) {
        trustpath_fail(&w, NULL, EINVAL, "not a regular file");
        goto fail;
    }
    buf_free(&todo);
    buf_free(&w.here);
    return fd;

fail:
    {
        int err = errno;

        if (fd >= 0)
            close(fd);
        buf_free(&todo);
        buf_free(&w.here);
        errno = err;
        return -1;
    }
}

int trustpath_check(const char *path, int flags, const uid_t *owners, size_t nowners,
                    buf_t *errs)
{
    int fd = trustpath_open(path, flags, owners, nowners, errs);

    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}
