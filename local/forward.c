/*
 * forward.c - the recipient's ~/.forward, read and flattened by the
 * delivery child after it has become the recipient (DESIGN.md §1), so that
 * everything the file names is read with the user's privileges, never
 * root's.
 *
 * forward_read(t, &list) runs in the recipient's home directory:
 *   - the home directory must be the user's or root's and writable by
 *     nobody else, and .forward a regular file with one link, not a
 *     symbolic link, owned by the user or root and writable only by its
 *     owner; otherwise .forward is ignored with a warning (as Postfix and
 *     sendmail do: another account could have chosen its content);
 *   - its targets (one or more a line, separated by commas outside double
 *     quotes; '#' starts a comment line) are listed in order, each
 *     :include:/path replaced by the targets of that file, read by
 *     include_read() with the same rules (owned by the user or root, no
 *     symbolic link, one link, writable only by its owner), to a depth of
 *     LOCAL_MAX_DEPTH; a file that includes itself is an error;
 *   - at most forward_target_limit targets in all.
 * Returns 0 when there is no .forward (or it is empty, or ignored): the
 * mail goes to the mailbox; 1 with *list fresh: the targets, unquoted, one
 * a line, for the parent to expand (alias_expand_forward).  Every other
 * outcome ends the child with a result: 4.3.0 for a file that cannot be
 * read, 4.3.5 for a list that is too long, 5.4.6 for an include loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "local.h"
#include "msg.h"
#include "xalloc.h"

struct forward_state {
    const struct local_target *t;
    buf_t      *list;
    long long   count;
    long long   limit;
    const char *stack[LOCAL_MAX_DEPTH + 1];
    int         depth;
};

static int forward_file(struct forward_state *fs, const char *path, const char *text);

/* One target: an :include: is replaced by its file's targets. */
static int forward_target(void *ctx, char *target)
{
    struct forward_state *fs = ctx;
    const struct local_target *t = fs->t;
    uid_t owners[2] = { t->uid, 0 };
    buf_t *text;
    char *why, *path, *msg;
    struct stat st;
    int rc;

    if (*target == '\0')
        return 0;                       /* "a,,b" or a trailing comma */
    if (strncasecmp(target, ":include:", 9) != 0) {
        if (++fs->count > fs->limit) {
            msg = xasprintf("%s/.forward names more than %lld targets (forward_target_limit)",
                            t->home, fs->limit);
            deliver_exit(4, "4.3.5", msg, NULL);
        }
        if (fs->list->len)
            buf_putc(fs->list, '\n');
        if (buf_append_str(fs->list, target) < 0) {
            msg = xasprintf("%s/.forward expands to more than %d bytes", t->home,
                            DELIVER_FORWARD_LIST_MAX);
            deliver_exit(4, "4.3.5", msg, NULL);
        }
        return 0;
    }
    path = target + 9;
    while (*path == ' ' || *path == '\t')
        path++;
    if (*path != '/') {
        msg = xasprintf("%s/.forward: :include: needs an absolute path, not \"%s\"", t->home,
                        path);
        deliver_exit(4, "4.3.5", msg, NULL);
    }
    for (int i = 0; i < fs->depth; i++)
        if (strcmp(fs->stack[i], path) == 0) {
            msg = xasprintf("%s/.forward: :include:%s includes itself", t->home, path);
            deliver_exit(5, "5.4.6", msg, NULL);
        }
    if (fs->depth >= LOCAL_MAX_DEPTH) {
        msg = xasprintf("%s/.forward: more than %d levels of :include:", t->home,
                        LOCAL_MAX_DEPTH);
        deliver_exit(5, "5.4.6", msg, NULL);
    }
    if (include_read(t->uid, path, owners, 2, &text, &st, &why) < 0) {
        msg = xasprintf("%s/.forward: cannot use :include:%s: %s", t->home, path, why);
        deliver_exit(4, "4.3.0", msg, NULL);
    }
    /* The include file's content is the user's word only if nobody else
     * may write it. */
    if (st.st_mode & 022) {
        msg = xasprintf("%s/.forward: refusing :include:%s: writable by group or others",
                        t->home, path);
        deliver_exit(4, "4.3.0", msg, NULL);
    }
    rc = forward_file(fs, path, buf_cstr(text));
    buf_free(&text);
    free(why);
    return rc;
}

/* The targets of one file's text (.forward or an include). */
static int forward_file(struct forward_state *fs, const char *path, const char *text)
{
    int rc;

    fs->stack[fs->depth++] = path;
    rc = alias_split_lines(text, forward_target, fs);
    fs->depth--;
    return rc;
}

int forward_read(const struct local_target *t, char **list)
{
    struct forward_state fs = { .t = t };
    uid_t owners[2] = { t->uid, 0 };
    struct stat home, st;
    buf_t *text;
    char *why, *msg;
    int err;

    if (include_read(t->uid, ".forward", owners, 2, &text, &st, &why) < 0) {
        err = errno;
        if (err == ENOENT || err == ENOTDIR) {
            free(why);
            return 0;
        }
        if (err != ELOOP && err != EINVAL && err != EMLINK && err != EPERM) {
            msg = xasprintf("cannot read %s/.forward: %s", t->home, why);
            deliver_exit(4, err == EFBIG ? "4.3.5" : "4.3.0", msg, NULL);
        }
        msg_warn("%s: to=<%s>: %s/.forward is %s; it must be a regular file with one link, "
                 "owned by %s or root: ignored", t->queue_id, t->recipient, t->home, why,
                 t->user);
        free(why);
        return 0;
    }
    /* Postfix's and sendmail's rule: in a home directory that another
     * account can write, .forward may not be the user's own choice. */
    if (stat(".", &home) < 0 || (home.st_uid != t->uid && home.st_uid != 0)
        || (home.st_mode & 022)) {
        msg_warn("%s: to=<%s>: home directory %s is not owned by %s or root, or is writable "
                 "by group or others: %s/.forward ignored", t->queue_id, t->recipient, t->home,
                 t->user, t->home);
        buf_free(&text);
        return 0;
    }
    if (st.st_mode & 022) {
        msg_warn("%s: to=<%s>: %s/.forward is writable by group or others: ignored",
                 t->queue_id, t->recipient, t->home);
        buf_free(&text);
        return 0;
    }
    if (strlen(buf_cstr(text)) != text->len) {
        msg = xasprintf("%s/.forward contains a NUL byte", t->home);
        deliver_exit(4, "4.3.5", msg, NULL);
    }
    fs.list = buf_new(DELIVER_FORWARD_LIST_MAX);
    fs.limit = conf_int("forward_target_limit");
    forward_file(&fs, ".forward", buf_cstr(text));
    buf_free(&text);
    if (fs.list->len == 0) {
        buf_free(&fs.list);
        return 0;                       /* empty: the mailbox */
    }
    *list = buf_steal(fs.list, NULL);
    buf_free(&fs.list);
    return 1;
}
