/*
 * defer_log - the reasons of deferred recipients, beside the queue (see
 * defer_log.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "defer_log.h"
#include "safe_open.h"
#include "xalloc.h"

/* One field: tabs, newlines and other controls become '?'. */
static void defer_log_put(buf_t *b, const char *s, char end)
{
    for (; *s; s++)
        buf_append(b, (unsigned char)*s < 0x20 || *s == 0x7f ? "?" : s, 1);
    buf_append(b, &end, 1);
}

int defer_log_write(int qfd, const char *id, const struct defer_log_entry *e, size_t n)
{
    char *path, *tmp;
    buf_t *b;
    int fd, rc = 0, err = 0;

    if (n == 0)
        return defer_log_remove(qfd, id);
    b = buf_new(DEFER_LOG_MAX);
    for (size_t i = 0; i < n; i++) {
        defer_log_put(b, e[i].address, '\t');
        defer_log_put(b, e[i].dsn ? e[i].dsn : "", '\t');
        defer_log_put(b, e[i].text ? e[i].text : "", '\n');
    }
    path = xasprintf("%s/%s", DEFER_LOG_DIR, id);
    tmp = xasprintf("%s/.%s.tmp", DEFER_LOG_DIR, id);
    fd = openat(qfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        rc = -1;
        err = errno;
    } else {
        size_t off = 0;

        while (off < b->len) {
            ssize_t w = write(fd, b->data + off, b->len - off);

            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                rc = -1;
                err = w < 0 ? errno : EIO;
                break;
            }
            off += (size_t)w;
        }
        if (close(fd) < 0 && rc == 0) {
            rc = -1;
            err = errno;
        }
        if (rc == 0 && renameat(qfd, tmp, qfd, path) < 0) {
            rc = -1;
            err = errno;
        }
        if (rc < 0)
            unlinkat(qfd, tmp, 0);
    }
    free(path);
    free(tmp);
    buf_free(&b);
    errno = err;
    return rc;
}

int defer_log_read(int qfd, const char *id, uid_t owner, struct defer_log_entry **e, size_t *n)
{
    char *path = xasprintf("%s/%s", DEFER_LOG_DIR, id), *line, *next;
    const char *why;
    buf_t *b = NULL;

    *e = NULL;
    *n = 0;
    if (safe_read_file(qfd, path, &owner, 1, DEFER_LOG_MAX, &b, NULL, &why) < 0) {
        free(path);
        return 0;
    }
    free(path);
    for (line = (char *)buf_cstr(b); *line; line = next) {
        char *tab1, *tab2, *nl = strchr(line, '\n');

        if (nl == NULL)
            break;                      /* a last line without its end: cut short */
        *nl = '\0';
        next = nl + 1;
        if ((tab1 = strchr(line, '\t')) == NULL || (tab2 = strchr(tab1 + 1, '\t')) == NULL
            || tab1 == line)
            continue;
        *tab1 = *tab2 = '\0';
        *e = xreallocarray(*e, *n + 1, sizeof(**e));
        (*e)[*n].address = xstrdup(line);
        (*e)[*n].dsn = xstrdup(tab1 + 1);
        (*e)[*n].text = xstrdup(tab2 + 1);
        (*n)++;
    }
    buf_free(&b);
    return 0;
}

const struct defer_log_entry *defer_log_find(const struct defer_log_entry *e, size_t n,
                                             const char *address)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(e[i].address, address) == 0)
            return &e[i];
    return NULL;
}

int defer_log_remove(int qfd, const char *id)
{
    char *path = xasprintf("%s/%s", DEFER_LOG_DIR, id);
    int rc = unlinkat(qfd, path, 0);

    free(path);
    if (rc < 0 && errno == ENOENT)
        return 0;
    return rc;
}

void defer_log_free(struct defer_log_entry **e, size_t n)
{
    if (*e == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free((*e)[i].address);
        free((*e)[i].dsn);
        free((*e)[i].text);
    }
    free(*e);
    *e = NULL;
}
