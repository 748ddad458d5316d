/*
 * mailbox.c - open mailboxes of a user's process (see mailbox.h): the
 * message table, the Maildir seen through inotify, the views.
 *
 * How the disk is followed:
 *  - at open, one scan of new/ and then cur/ (a file renamed from new/ to
 *    cur/ during the scan is seen at least once), reconciled with the
 *    index: a base name the index knows keeps its UID (flags are taken
 *    from the file name, the Maildir's own record of them), an unknown one
 *    is new mail, an indexed one not found is expunged;
 *  - afterwards inotify events on new/ and cur/ say which names came and
 *    went: nothing is scanned again unless the kernel's queue overflowed;
 *  - at each sync point (before a command's reply, in IDLE at once) new
 *    files get UIDs in delivery order (the time in their name, then the
 *    name), under the index lock, made durable before anyone sees them;
 *    a message whose file went and did not come back under another name
 *    is expunged; flag changes made by other programs are recorded;
 *  - the index file itself is watched, so a second process of the same
 *    user (or a snapshot it wrote) is read as soon as it writes.
 * \Recent: the first session that selects the mailbox (read-write) after
 * new mail got its UIDs has them as \Recent, and nobody else; a mailbox
 * selected when mail arrives gives them to its first read-write view.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imapd.h"
#include "mailbox.h"
#include "maildir.h"
#include "msg.h"
#include "xalloc.h"

#define MBOX_DIR_EVENTS (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_DONT_FOLLOW \
                         | IN_ONLYDIR)

static struct imap_mbox **mbox_open_list;
static size_t mbox_nopen;
static int mbox_inotify = -1;

/* ---------------------------------------------------------- small things */

static void u32_push(uint32_t **a, size_t *n, size_t *size, uint32_t v)
{
    if (*n == *size) {
        *size = *size ? *size * 2 : 16;
        *a = xreallocarray(*a, *size, sizeof(uint32_t));
    }
    (*a)[(*n)++] = v;
}

static size_t mbox_hash_of(const char *file, size_t len, size_t hsize)
{
    uint64_t h = 1469598103934665603ULL;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)file[i];
        h *= 1099511628211ULL;
    }
    return (size_t)(h & (hsize - 1));
}

static void mbox_hash_add(struct imap_mbox *mb, struct imap_msg *m);

static void mbox_hash_grow(struct imap_mbox *mb)
{
    struct imap_msg **old = mb->hash;
    size_t oldsize = mb->hsize;

    mb->hsize = oldsize ? oldsize * 2 : 256;
    mb->hash = xcalloc(mb->hsize, sizeof(*mb->hash));
    for (size_t i = 0; i < oldsize; i++)
        for (struct imap_msg *m = old[i], *next; m; m = next) {
            next = m->hnext;
            mbox_hash_add(mb, m);
        }
    free(old);
}

static void mbox_hash_add(struct imap_mbox *mb, struct imap_msg *m)
{
    size_t h;

    if (mb->hsize == 0)
        mbox_hash_grow(mb);
    h = mbox_hash_of(m->file, m->baselen, mb->hsize);
    m->hnext = mb->hash[h];
    mb->hash[h] = m;
}

static void mbox_hash_del(struct imap_mbox *mb, struct imap_msg *m)
{
    struct imap_msg **p = &mb->hash[mbox_hash_of(m->file, m->baselen, mb->hsize)];

    for (; *p; p = &(*p)->hnext)
        if (*p == m) {
            *p = m->hnext;
            return;
        }
}

struct imap_msg *mbox_find_base(const struct imap_mbox *mb, const char *file)
{
    size_t len = maildir_base_len(file);

    if (mb->hsize == 0)
        return NULL;
    for (struct imap_msg *m = mb->hash[mbox_hash_of(file, len, mb->hsize)]; m; m = m->hnext)
        if (m->baselen == len && memcmp(m->file, file, len) == 0)
            return m;
    return NULL;
}

struct imap_msg *mbox_find_uid(const struct imap_mbox *mb, uint32_t uid)
{
    size_t lo = 0, hi = mb->nmsgs;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;

        if (mb->msgs[mid]->uid < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < mb->nmsgs && mb->msgs[lo]->uid == uid ? mb->msgs[lo] : NULL;
}

/* System flags of a file name in cur/ ("BASE:2,FRS"); other letters
 * (another program's keywords) are left alone. */
static unsigned mbox_name_flags(const char *file)
{
    const char *info = file + maildir_base_len(file);
    unsigned flags = 0;

    if (strncmp(info, ":2,", 3) != 0)
        return 0;
    for (const char *p = info + 3; *p; p++)
        switch (*p) {
        case 'D': flags |= IMAP_F_DRAFT; break;
        case 'F': flags |= IMAP_F_FLAGGED; break;
        case 'R': flags |= IMAP_F_ANSWERED; break;
        case 'S': flags |= IMAP_F_SEEN; break;
        case 'T': flags |= IMAP_F_DELETED; break;
        }
    return flags;
}

/* The name in cur/ that carries flags: the base, ":2,", the letters in
 * ASCII order, keeping any other program's letters. */
static char *mbox_flagged_name(const char *file, unsigned flags)
{
    const char *info = file + maildir_base_len(file);
    char letters[64];
    size_t n = 0;

    if (flags & IMAP_F_DRAFT)
        letters[n++] = 'D';
    if (flags & IMAP_F_FLAGGED)
        letters[n++] = 'F';
    if (flags & IMAP_F_ANSWERED)
        letters[n++] = 'R';
    if (flags & IMAP_F_SEEN)
        letters[n++] = 'S';
    if (flags & IMAP_F_DELETED)
        letters[n++] = 'T';
    if (strncmp(info, ":2,", 3) == 0)
        for (const char *p = info + 3; *p && n < sizeof(letters) - 1; p++)
            if (!strchr("DFRST", *p) && *p > 0x20 && *p < 0x7f && *p != '/')
                letters[n++] = *p;
    /* ASCII order (Maildir's rule). */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && letters[j - 1] > letters[j]; j--) {
            char t = letters[j];

            letters[j] = letters[j - 1];
            letters[j - 1] = t;
        }
    letters[n] = '\0';
    return xasprintf("%.*s:2,%s", (int)maildir_base_len(file), file, letters);
}

/* ---------------------------------------------------------- the table */

static void mbox_msg_free(struct imap_msg *m)
{
    free(m->kw);
    free(m->file);
    free(m);
}

static void mbox_msg_set_file(struct imap_msg *m, const char *file, uint8_t dir)
{
    if (m->file == NULL || strcmp(m->file, file) != 0) {
        free(m->file);
        m->file = xstrdup(file);
        m->baselen = maildir_base_len(file);
    }
    m->dir = dir;
}

static void mbox_msg_set_kw(struct imap_msg *m, const uint32_t *kw, uint32_t nkw)
{
    if (nkw == m->nkw && (nkw == 0 || memcmp(kw, m->kw, nkw * sizeof(*kw)) == 0))
        return;
    free(m->kw);
    m->kw = nkw ? xmemdup(kw, nkw * sizeof(*kw)) : NULL;
    m->nkw = nkw;
}

/* Tell the views: flags of uid changed (not the view that did it). */
static void mbox_tell_changed(struct imap_mbox *mb, uint32_t uid, const struct imap_view *by)
{
    mb->gen++;
    for (struct imap_view *v = mb->views; v; v = v->next)
        if (v != by && view_seq(v, uid) != 0)
            u32_push(&v->changed, &v->nchanged, &v->changed_size, uid);
}

static void mbox_tell_expunged(struct imap_mbox *mb, uint32_t uid)
{
    mb->gen++;
    for (struct imap_view *v = mb->views; v; v = v->next)
        if (view_seq(v, uid) != 0)
            u32_push(&v->expunged, &v->nexpunged, &v->expunged_size, uid);
        else
            view_drop_recent(v, uid);   /* gone before the view heard of it */
}

/* Wake the views if anything changed since they were last woken. */
/* uid's state changed outside a transaction: recorded at the next write. */
static void mbox_mark_dirty(struct imap_mbox *mb, uint32_t uid)
{
    u32_push(&mb->dirty, &mb->ndirty, &mb->dirty_size, uid);
}

/* The records of the dirty UIDs, from their state now (after the reads
 * of what other processes wrote). */
static void mbox_put_dirty(struct imap_mbox *mb, buf_t *rec)
{
    for (size_t i = 0; i < mb->ndirty; i++) {
        struct imap_msg *m = mbox_find_uid(mb, mb->dirty[i]);

        if (m && (i == 0 || mb->dirty[i] != mb->dirty[i - 1]))
            index_put_msg(rec, 'M', m);
    }
    mb->ndirty = 0;
}

static void mbox_wake_views(struct imap_mbox *mb)
{
    if (mb->gen == mb->woken_gen)
        return;
    mb->woken_gen = mb->gen;
    for (struct imap_view *v = mb->views; v; v = v->next)
        if (v->wake)
            v->wake(v->ctx);
}

static struct imap_msg *mbox_insert(struct imap_mbox *mb, uint32_t uid)
{
    struct imap_msg *m = xcalloc(1, sizeof(*m));
    size_t at = mb->nmsgs;

    m->uid = uid;
    mb->gen++;
    if (mb->nmsgs == mb->msgs_size) {
        mb->msgs_size = mb->msgs_size ? mb->msgs_size * 2 : 64;
        mb->msgs = xreallocarray(mb->msgs, mb->msgs_size, sizeof(*mb->msgs));
    }
    while (at > 0 && mb->msgs[at - 1]->uid > uid)
        at--;
    memmove(mb->msgs + at + 1, mb->msgs + at, (mb->nmsgs - at) * sizeof(*mb->msgs));
    mb->msgs[at] = m;
    mb->nmsgs++;
    if (uid >= mb->uidnext)
        mb->uidnext = uid + 1;
    return m;
}

/* index.c's reader: the state of uid. */
void mbox_index_apply(struct imap_mbox *mb, uint32_t uid, unsigned flags, uint8_t dir,
                      const char *file, int64_t idate, uint64_t vsize,
                      const uint32_t *kw, uint32_t nkw, bool added)
{
    struct imap_msg *m = mbox_find_uid(mb, uid), *other;
    bool changed = false;

    (void)added;
    if (m == NULL) {
        /* One base name, one UID: a stale entry of the same file goes. */
        if ((other = mbox_find_base(mb, file)) != NULL)
            mbox_index_expunged(mb, other->uid);
        m = mbox_insert(mb, uid);
        mbox_msg_set_file(m, file, dir);
        mbox_hash_add(mb, m);
        m->flags = (uint8_t)flags;
        m->idate = idate;
        m->vsize = vsize;
        mbox_msg_set_kw(m, kw, nkw);
        /* A file we were waiting to give a UID to has one now. */
        for (size_t i = 0; i < mb->nnew; i++)
            if (maildir_base_len(mb->newfiles[i].file) == m->baselen
                && memcmp(mb->newfiles[i].file, file, m->baselen) == 0) {
                free(mb->newfiles[i].file);
                mb->newfiles[i] = mb->newfiles[--mb->nnew];
                break;
            }
        return;
    }
    m->gone = false;
    if (m->flags != flags || m->nkw != nkw
        || (nkw && memcmp(m->kw, kw, nkw * sizeof(*kw)) != 0))
        changed = true;
    if (m->baselen != maildir_base_len(file) || memcmp(m->file, file, m->baselen) != 0) {
        mbox_hash_del(mb, m);
        mbox_msg_set_file(m, file, dir);
        mbox_hash_add(mb, m);
    } else {
        mbox_msg_set_file(m, file, dir);
    }
    m->flags = (uint8_t)flags;
    mbox_msg_set_kw(m, kw, nkw);
    if (vsize)
        m->vsize = vsize;
    if (changed)
        mbox_tell_changed(mb, uid, NULL);
}

void mbox_index_expunged(struct imap_mbox *mb, uint32_t uid)
{
    struct imap_msg *m = mbox_find_uid(mb, uid);
    size_t at;

    if (m == NULL)
        return;
    for (at = 0; mb->msgs[at] != m; at++)
        ;
    memmove(mb->msgs + at, mb->msgs + at + 1, (mb->nmsgs - at - 1) * sizeof(*mb->msgs));
    mb->nmsgs--;
    mbox_hash_del(mb, m);
    if (mb->cached_uid == uid)
        mb->cached_uid = 0;
    mbox_tell_expunged(mb, uid);
    mbox_msg_free(m);
}

void mbox_index_keyword(struct imap_mbox *mb, uint32_t id, const char *name)
{
    (void)id;
    mb->gen++;
    mb->kwnames = xreallocarray(mb->kwnames, mb->nkwnames + 1, sizeof(char *));
    mb->kwnames[mb->nkwnames++] = xstrdup(name);
}

/* ------------------------------------------------------- disk events */

static void mbox_newfile_add(struct imap_mbox *mb, const char *file, uint8_t dir)
{
    for (size_t i = 0; i < mb->nnew; i++)
        if (strcmp(mb->newfiles[i].file, file) == 0) {
            mb->newfiles[i].dir = dir;
            return;
        }
    if (mb->nnew == mb->new_size) {
        mb->new_size = mb->new_size ? mb->new_size * 2 : 16;
        mb->newfiles = xreallocarray(mb->newfiles, mb->new_size, sizeof(*mb->newfiles));
    }
    mb->newfiles[mb->nnew].file = xstrdup(file);
    mb->newfiles[mb->nnew].dir = dir;
    mb->nnew++;
}

/* A name in new/ or cur/ came (created, or renamed there). */
static void mbox_file_appeared(struct imap_mbox *mb, uint8_t dir, const char *file)
{
    struct imap_msg *m;
    unsigned flags;

    if (file[0] == '.' || strchr(file, '/'))
        return;
    if ((m = mbox_find_base(mb, file)) == NULL) {
        mbox_newfile_add(mb, file, dir);
        return;
    }
    if (m->gone) {
        m->gone = false;
        mb->ngone--;
    }
    if (m->dir == dir && strcmp(m->file, file) == 0)
        return;
    /* A name it had for a moment (renamed twice before we read the
     * events): what we know is newer. */
    if (faccessat(m->dir == MSG_NEW ? mb->newfd : mb->curfd, m->file, F_OK,
                  AT_SYMLINK_NOFOLLOW) == 0)
        return;
    mbox_msg_set_file(m, file, dir);
    flags = dir == MSG_CUR ? mbox_name_flags(file) : 0;
    if (flags != m->flags) {
        /* Another program changed them (pop3d's Seen, a reader on the
         * host): the file name is the Maildir's record of them. */
        m->flags = (uint8_t)flags;
        mbox_tell_changed(mb, m->uid, NULL);
    }
    mbox_mark_dirty(mb, m->uid);
}

/* A name in new/ or cur/ went (removed, or renamed away). */
static void mbox_file_vanished(struct imap_mbox *mb, uint8_t dir, const char *file)
{
    struct imap_msg *m = mbox_find_base(mb, file);

    if (m == NULL) {
        for (size_t i = 0; i < mb->nnew; i++)
            if (strcmp(mb->newfiles[i].file, file) == 0 && mb->newfiles[i].dir == dir) {
                free(mb->newfiles[i].file);
                mb->newfiles[i] = mb->newfiles[--mb->nnew];
                return;
            }
        return;
    }
    if (m->dir == dir && strcmp(m->file, file) == 0 && !m->gone) {
        m->gone = true;
        mb->ngone++;
    }
}

static int mbox_scan_dir(struct imap_mbox *mb, uint8_t dir)
{
    int fd = fcntl(dir == MSG_NEW ? mb->newfd : mb->curfd, F_DUPFD_CLOEXEC, 0);
    DIR *d;
    struct dirent *de;

    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        if (fd >= 0)
            close(fd);
        msg_warn("%s/%s: %s", mb->path, dir == MSG_NEW ? "new" : "cur", strerror(errno));
        return -1;
    }
    rewinddir(d);
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            mbox_file_appeared(mb, dir, de->d_name);
    closedir(d);
    return 0;
}

/* Every name on disk again: what is not there any more went. */
static int mbox_scan(struct imap_mbox *mb)
{
    for (size_t i = 0; i < mb->nmsgs; i++)
        if (!mb->msgs[i]->gone) {
            mb->msgs[i]->gone = true;
            mb->ngone++;
        }
    for (size_t i = 0; i < mb->nnew; i++)
        free(mb->newfiles[i].file);
    mb->nnew = 0;
    /* new/ first: a file renamed new/ -> cur/ meanwhile is seen in one. */
    if (mbox_scan_dir(mb, MSG_NEW) < 0 || mbox_scan_dir(mb, MSG_CUR) < 0)
        return -1;
    mb->rescan = false;
    return 0;
}

/* ------------------------------------------------------------ inotify */

int mbox_inotify_fd(void)
{
    if (mbox_inotify < 0 && (mbox_inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
        msg_fatal("inotify_init1: %s", strerror(errno));
    return mbox_inotify;
}

static void mbox_watch(struct imap_mbox *mb)
{
    int fd = mbox_inotify_fd();
    char *p;

    p = xasprintf("%s/new", mb->path);
    mb->wd_new = inotify_add_watch(fd, p, MBOX_DIR_EVENTS);
    free(p);
    p = xasprintf("%s/cur", mb->path);
    mb->wd_cur = inotify_add_watch(fd, p, MBOX_DIR_EVENTS);
    free(p);
    mb->wd_dir = inotify_add_watch(fd, mb->path, IN_MOVED_TO | IN_CREATE | IN_DONT_FOLLOW
                                   | IN_ONLYDIR);
    p = xasprintf("%s/" IMAP_INDEX_NAME, mb->path);
    mb->wd_idx = inotify_add_watch(fd, p, IN_MODIFY | IN_DONT_FOLLOW);
    free(p);
    if (mb->wd_new < 0 || mb->wd_cur < 0 || mb->wd_dir < 0)
        msg_warn("%s: inotify: %s (changes by other programs are seen late)", mb->path,
                 strerror(errno));
}

void mbox_index_rewatch(struct imap_mbox *mb)
{
    char *p;

    if (mbox_inotify < 0)
        return;
    if (mb->wd_idx >= 0)
        inotify_rm_watch(mbox_inotify, mb->wd_idx);     /* gone with its inode, maybe */
    p = xasprintf("%s/" IMAP_INDEX_NAME, mb->path);
    mb->wd_idx = inotify_add_watch(mbox_inotify, p, IN_MODIFY | IN_DONT_FOLLOW);
    free(p);
}

static void mbox_unwatch(struct imap_mbox *mb)
{
    int wds[] = { mb->wd_new, mb->wd_cur, mb->wd_dir, mb->wd_idx };

    for (size_t i = 0; i < 4; i++) {
        if (wds[i] < 0)
            continue;
        /* inotify hands out one wd per inode: another open mailbox may
         * share it only if it is the same directory, which never is. */
        inotify_rm_watch(mbox_inotify, wds[i]);
    }
}

void mbox_inotify_read(void)
{
    char evbuf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n;
    bool *touched = mbox_nopen ? xcalloc(mbox_nopen, sizeof(bool)) : NULL;
    size_t nopen = mbox_nopen;

    if (mbox_inotify < 0) {
        free(touched);
        return;
    }
    while ((n = read(mbox_inotify, evbuf, sizeof(evbuf))) > 0) {
        for (char *p = evbuf; p < evbuf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;

            p += sizeof(*ev) + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                for (size_t i = 0; i < mbox_nopen; i++) {
                    mbox_open_list[i]->rescan = true;
                    if (i < nopen)
                        touched[i] = true;
                }
                continue;
            }
            for (size_t i = 0; i < mbox_nopen; i++) {
                struct imap_mbox *mb = mbox_open_list[i];

                if (ev->wd == mb->wd_new || ev->wd == mb->wd_cur) {
                    uint8_t dir = ev->wd == mb->wd_new ? MSG_NEW : MSG_CUR;

                    if (ev->mask & IN_IGNORED) {
                        mb->rescan = true;
                    } else if (ev->len > 0 && !(ev->mask & IN_ISDIR)) {
                        if (ev->mask & (IN_CREATE | IN_MOVED_TO))
                            mbox_file_appeared(mb, dir, ev->name);
                        else
                            mbox_file_vanished(mb, dir, ev->name);
                    }
                } else if (ev->wd == mb->wd_idx
                           || (ev->wd == mb->wd_dir && ev->len > 0
                               && strcmp(ev->name, IMAP_INDEX_NAME) == 0)) {
                    mb->idx_changed = true;
                } else {
                    continue;
                }
                if (i < nopen)
                    touched[i] = true;
                break;
            }
        }
    }
    /* Sessions in IDLE hear of it now. */
    for (size_t i = 0; i < nopen && i < mbox_nopen; i++)
        if (touched[i] && mbox_open_list[i]->views)
            mbox_sync(mbox_open_list[i]);
    free(touched);
}

/* ------------------------------------------------------------- syncing */

struct mbox_sync_work {
    uint32_t *gone;             /* UIDs whose files went */
    size_t    ngone;
};

static int mbox_newfile_cmp(const void *a, const void *b)
{
    const struct imap_newfile *x = a, *y = b;
    unsigned long long tx = strtoull(x->file, NULL, 10), ty = strtoull(y->file, NULL, 10);

    if (tx != ty)
        return tx < ty ? -1 : 1;
    return strcmp(x->file, y->file);
}

static bool mbox_rw_view(const struct imap_mbox *mb)
{
    for (const struct imap_view *v = mb->views; v; v = v->next)
        if (!v->readonly)
            return true;
    return false;
}

static void mbox_claim_recent(struct imap_mbox *mb, buf_t *rec)
{
    struct imap_view *v;

    if (mb->first_recent >= mb->uidnext)
        return;
    for (v = mb->views; v && v->readonly; v = v->next)
        ;
    if (v == NULL)
        return;
    for (size_t i = 0; i < mb->nmsgs; i++)
        if (mb->msgs[i]->uid >= mb->first_recent)
            u32_push(&v->recent, &v->nrecent, &v->recent_size, mb->msgs[i]->uid);
    mb->first_recent = mb->uidnext;
    index_put_recent(rec, mb->first_recent);
}

/* Under the index lock, what others wrote read: UIDs for new files,
 * expunges, queued flag records. */
static void mbox_sync_build(struct imap_mbox *mb, buf_t *rec, void *ctx)
{
    struct mbox_sync_work *w = ctx;

    for (size_t i = 0; i < w->ngone; i++)
        if (mbox_find_uid(mb, w->gone[i]) != NULL) {
            index_put_expunge(rec, w->gone[i]);
            mbox_index_expunged(mb, w->gone[i]);
        }
    if (mb->nnew > 0) {
        qsort(mb->newfiles, mb->nnew, sizeof(*mb->newfiles), mbox_newfile_cmp);
        for (size_t i = 0; i < mb->nnew; i++) {
            struct imap_newfile *nf = &mb->newfiles[i];
            struct imap_msg *m;
            struct stat st;
            off_t vsize = maildir_name_vsize(nf->file);

            if (fstatat(nf->dir == MSG_NEW ? mb->newfd : mb->curfd, nf->file, &st,
                        AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
                free(nf->file);
                continue;           /* gone again, or not a message */
            }
            m = mbox_insert(mb, mb->uidnext);
            mbox_msg_set_file(m, nf->file, nf->dir);
            mbox_hash_add(mb, m);
            m->flags = (uint8_t)(nf->dir == MSG_CUR ? mbox_name_flags(nf->file) : 0);
            m->idate = (int64_t)st.st_mtime;
            m->vsize = vsize > 0 ? (uint64_t)vsize : 0;
            index_put_msg(rec, 'M', m);
            free(nf->file);
        }
        mb->nnew = 0;
    }
    mbox_put_dirty(mb, rec);
    mbox_claim_recent(mb, rec);
}

int mbox_sync(struct imap_mbox *mb)
{
    struct mbox_sync_work w = {0};
    int rc = 0;

    if (mb->in_txn)
        return 0;               /* at its commit */
    if (mb->rescan && mbox_scan(mb) < 0)
        return -1;
    if (mb->ngone > 0) {
        w.gone = xcalloc(mb->ngone, sizeof(*w.gone));
        for (size_t i = 0; i < mb->nmsgs; i++) {
            struct imap_msg *m = mb->msgs[i];

            if (!m->gone)
                continue;
            /* Make sure: an event pair we did not see whole. */
            m->gone = false;
            if (faccessat(m->dir == MSG_NEW ? mb->newfd : mb->curfd, m->file, F_OK,
                          AT_SYMLINK_NOFOLLOW) < 0)
                w.gone[w.ngone++] = m->uid;
        }
        mb->ngone = 0;
    }
    if (mb->nnew > 0 || w.ngone > 0 || mb->ndirty > 0
               || (mb->first_recent < mb->uidnext && mbox_rw_view(mb))) {
        rc = index_update(mb, true, mbox_sync_build, &w);
        mb->idx_changed = false;
    } else if (mb->idx_changed) {
        mb->idx_changed = false;
        rc = index_refresh(mb);
    }
    free(w.gone);
    mbox_wake_views(mb);
    return rc;
}

void mbox_sync_all(void)
{
    for (size_t i = 0; i < mbox_nopen; i++)
        mbox_sync(mbox_open_list[i]);
}

/* ----------------------------------------------------- open and close */

/* Are new/ and cur/ as the last S record says?  Their times in *n, *c. */
static bool mbox_dirs_synced(const struct imap_mbox *mb, struct timespec *n, struct timespec *c)
{
    struct stat sn, sc;

    if (n)
        n->tv_sec = 0;
    if (fstat(mb->newfd, &sn) < 0 || fstat(mb->curfd, &sc) < 0)
        return false;
    if (n) {
        *n = sn.st_mtim;
        *c = sc.st_mtim;
    }
    return mb->synced_new.tv_sec != 0
           && sn.st_mtim.tv_sec == mb->synced_new.tv_sec
           && sn.st_mtim.tv_nsec == mb->synced_new.tv_nsec
           && sc.st_mtim.tv_sec == mb->synced_cur.tv_sec
           && sc.st_mtim.tv_nsec == mb->synced_cur.tv_nsec;
}

struct imap_mbox *mbox_open(const char *name, const char *path, const char **why)
{
    struct imap_mbox *mb;

    for (size_t i = 0; i < mbox_nopen; i++)
        if (strcmp(mbox_open_list[i]->path, path) == 0) {
            mbox_open_list[i]->refs++;
            return mbox_open_list[i];
        }
    mb = xcalloc(1, sizeof(*mb));
    mb->name = xstrdup(name);
    mb->path = xstrdup(path);
    mb->refs = 1;
    mb->newfd = mb->curfd = mb->idxfd = mb->cachefd = -1;
    mb->wd_new = mb->wd_cur = mb->wd_dir = mb->wd_idx = -1;
    if ((mb->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0
        || (mb->newfd = openat(mb->dirfd, "new", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0
        || (mb->curfd = openat(mb->dirfd, "cur", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        *why = errno == ENOENT ? MBOX_NO_SUCH : "cannot open the mailbox";
        if (errno != ENOENT)
            msg_warn("%s: %s", path, strerror(errno));
        goto fail;
    }
    /* Watch before the scan: nothing that happens after it is missed. */
    mbox_watch(mb);
    if (index_open(mb, why) < 0)
        goto fail;
    mbox_open_list = xreallocarray(mbox_open_list, mbox_nopen + 1, sizeof(*mbox_open_list));
    mbox_open_list[mbox_nopen++] = mb;
    /* The index describes the folder whole as of its S record: if new/
     * and cur/ have not changed since, there is nothing to scan. */
    mb->rescan = !mbox_dirs_synced(mb, NULL, NULL);
    mb->cachefd = -1;
    if (mbox_sync(mb) < 0) {
        *why = "cannot read the mailbox";
        mbox_close(&mb);
        return NULL;
    }
    cache_open(mb);
    return mb;
fail:
    mbox_unwatch(mb);
    if (mb->dirfd >= 0)
        close(mb->dirfd);
    if (mb->newfd >= 0)
        close(mb->newfd);
    if (mb->curfd >= 0)
        close(mb->curfd);
    if (mb->idxtail)
        index_close(mb);
    free(mb->name);
    free(mb->path);
    free(mb);
    return NULL;
}

static void mbox_unlist(struct imap_mbox *mb)
{
    for (size_t i = 0; i < mbox_nopen; i++)
        if (mbox_open_list[i] == mb) {
            mbox_open_list[i] = mbox_open_list[--mbox_nopen];
            return;
        }
}

void mbox_deleted(const char *path)
{
    for (size_t i = 0; i < mbox_nopen; i++) {
        struct imap_mbox *mb = mbox_open_list[i];

        if (strcmp(mb->path, path) != 0)
            continue;
        mbox_unlist(mb);
        mbox_unwatch(mb);
        mb->wd_new = mb->wd_cur = mb->wd_dir = mb->wd_idx = -1;
        while (mb->nmsgs > 0)
            mbox_index_expunged(mb, mb->msgs[mb->nmsgs - 1]->uid);
        mb->deleted = true;
        mbox_wake_views(mb);
        return;
    }
}

void mbox_renamed(const char *from, const char *from_name, const char *to, const char *to_name)
{
    size_t flen = strlen(from), nlen = strlen(from_name);

    for (size_t i = 0; i < mbox_nopen; i++) {
        struct imap_mbox *mb = mbox_open_list[i];
        char *p, *n;

        if (strncmp(mb->path, from, flen) != 0 || (mb->path[flen] && mb->path[flen] != '.'))
            continue;
        p = xasprintf("%s%s", to, mb->path + flen);
        n = xasprintf("%s%s", to_name, strncmp(mb->name, from_name, nlen) == 0
                      ? mb->name + nlen : "");
        free(mb->path);
        free(mb->name);
        mb->path = p;
        mb->name = n;
    }
}

static void mbox_synced_build(struct imap_mbox *mb, buf_t *rec, void *ctx)
{
    const struct timespec *ts = ctx;

    mb->synced_new = ts[0];
    mb->synced_cur = ts[1];
    index_put_synced(rec, &ts[0], &ts[1]);
}

void mbox_close(struct imap_mbox **mbp)
{
    struct imap_mbox *mb = *mbp;
    struct timespec ts[2];

    *mbp = NULL;
    if (mb == NULL || --mb->refs > 0)
        return;
    if (mb->deleted)
        goto free;
    /* Up to date with the disk, then say so in the index (S), unless
     * the directories changed too recently for their times to tell a
     * later change apart. */
    mbox_inotify_read();
    mbox_sync(mb);
    if (!mbox_dirs_synced(mb, &ts[0], &ts[1]) && ts[0].tv_sec > 0
        && ts[0].tv_sec < time(NULL) - 1 && ts[1].tv_sec < time(NULL) - 1 && !mb->rescan)
        index_update(mb, false, mbox_synced_build, ts);
    if (mb->ndirty)
        mbox_commit(mb);
    index_compact(mb);
    mbox_unlist(mb);
    mbox_unwatch(mb);
free:
    cache_close(mb);
    index_close(mb);
    close(mb->dirfd);
    close(mb->newfd);
    close(mb->curfd);
    for (size_t i = 0; i < mb->nmsgs; i++)
        mbox_msg_free(mb->msgs[i]);
    for (size_t i = 0; i < mb->nnew; i++)
        free(mb->newfiles[i].file);
    for (uint32_t i = 0; i < mb->nkwnames; i++)
        free(mb->kwnames[i]);
    free(mb->kwnames);
    free(mb->newfiles);
    free(mb->msgs);
    free(mb->hash);
    free(mb->dirty);
    buf_free(&mb->txn);
    buf_free(&mb->cached);
    free(mb->name);
    free(mb->path);
    free(mb);
}

/* ------------------------------------------------------------ messages */

const buf_t *mbox_msg_text(struct imap_mbox *mb, struct imap_msg *m)
{
    char chunk[65536];
    ssize_t n;
    int fd;
    bool cr = false;

    if (mb->cached && mb->cached_uid == m->uid)
        return mb->cached;
    if (mb->cached == NULL)
        mb->cached = buf_new(0);
    buf_reset(mb->cached);
    mb->cached_uid = 0;
    fd = openat(m->dir == MSG_NEW ? mb->newfd : mb->curfd, m->file,
                O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return NULL;
    /* Lines end in CRLF on the wire, whatever the file holds. */
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        for (ssize_t i = 0; i < n; i++) {
            if (chunk[i] == '\n' && !cr)
                buf_putc(mb->cached, '\r');
            buf_putc(mb->cached, chunk[i]);
            cr = chunk[i] == '\r';
        }
    close(fd);
    if (n < 0)
        return NULL;
    mb->cached_uid = m->uid;
    if (m->vsize != mb->cached->len) {
        m->vsize = mb->cached->len;
        mbox_mark_dirty(mb, m->uid);
    }
    return mb->cached;
}

uint64_t mbox_msg_vsize(struct imap_mbox *mb, struct imap_msg *m)
{
    if (m->vsize == 0) {
        off_t v = maildir_name_vsize(m->file);

        if (v > 0)
            m->vsize = (uint64_t)v;
        else
            mbox_msg_text(mb, m);
    }
    return m->vsize;
}

int mbox_begin(struct imap_mbox *mb)
{
    if (mb->in_txn)
        msg_panic("%s: a transaction inside a transaction", mb->path);
    if (index_begin(mb) < 0)
        return -1;
    if (mb->txn == NULL)
        mb->txn = buf_new(0);
    return 0;
}

int mbox_set_flags(struct imap_mbox *mb, struct imap_msg *m, unsigned flags,
                   const uint32_t *kw, uint32_t nkw, const struct imap_view *by)
{
    if (!mb->in_txn)
        msg_panic("%s: a flag change outside a transaction", mb->path);
    flags &= IMAP_F_ALL;
    if (flags != m->flags || m->dir == MSG_NEW) {
        char *to = mbox_flagged_name(m->file, flags);

        if (m->dir != MSG_CUR || strcmp(to, m->file) != 0) {
            if (renameat(m->dir == MSG_NEW ? mb->newfd : mb->curfd, m->file, mb->curfd, to) < 0) {
                int err = errno;

                free(to);
                if (err == ENOENT) {
                    m->gone = true;
                    mb->ngone++;
                } else {
                    msg_warn("%s: rename %s: %s", mb->path, m->file, strerror(err));
                }
                errno = err;
                return -1;
            }
        }
        mbox_msg_set_file(m, to, MSG_CUR);
        free(to);
    }
    if (flags == m->flags && nkw == m->nkw && (nkw == 0 || memcmp(kw, m->kw, nkw * 4) == 0))
        return 0;
    m->flags = (uint8_t)flags;
    mbox_msg_set_kw(m, kw, nkw);
    index_put_msg(mb->txn, 'M', m);
    mbox_tell_changed(mb, m->uid, by);
    return 0;
}

static void mbox_commit_build(struct imap_mbox *mb, buf_t *rec, void *ctx)
{
    (void)ctx;
    mbox_put_dirty(mb, rec);
}

int mbox_commit(struct imap_mbox *mb)
{
    int rc;

    if (mb->in_txn) {
        mbox_put_dirty(mb, mb->txn);
        rc = index_end(mb, false, mb->txn);
    } else if (mb->ndirty) {
        rc = index_update(mb, false, mbox_commit_build, NULL);
    } else {
        return 0;
    }
    mbox_wake_views(mb);
    return rc;
}

struct mbox_kw_work {
    const char *name;
    uint32_t    id;
};

static void mbox_keyword_build(struct imap_mbox *mb, buf_t *rec, void *ctx)
{
    struct mbox_kw_work *w = ctx;

    for (uint32_t i = 0; i < mb->nkwnames; i++)
        if (strcasecmp(mb->kwnames[i], w->name) == 0) {
            w->id = i;              /* another process made it meanwhile */
            return;
        }
    w->id = mb->nkwnames;
    index_put_keyword(rec, w->id, w->name);
    mbox_index_keyword(mb, w->id, w->name);
}

uint32_t mbox_keyword_id(struct imap_mbox *mb, const char *name, bool create)
{
    struct mbox_kw_work w = { name, UINT32_MAX };

    for (uint32_t i = 0; i < mb->nkwnames; i++)
        if (strcasecmp(mb->kwnames[i], name) == 0)
            return i;
    if (!create)
        return UINT32_MAX;
    if (mb->in_txn) {
        /* The lock is held and what others wrote is read: add it here. */
        mbox_keyword_build(mb, mb->txn, &w);
        return w.id;
    }
    if (index_update(mb, false, mbox_keyword_build, &w) < 0)
        return UINT32_MAX;
    return w.id;
}

struct mbox_expunge_work {
    uint32_t *uids;
    size_t    n;
};

static void mbox_expunge_build(struct imap_mbox *mb, buf_t *rec, void *ctx)
{
    struct mbox_expunge_work *w = ctx;

    mbox_commit_build(mb, rec, NULL);
    for (size_t i = 0; i < w->n; i++)
        if (mbox_find_uid(mb, w->uids[i]) != NULL) {
            index_put_expunge(rec, w->uids[i]);
            mbox_index_expunged(mb, w->uids[i]);
        }
}

int mbox_expunge(struct imap_mbox *mb, struct imap_msg **msgs, size_t n)
{
    struct mbox_expunge_work w = { xcalloc(n + 1, sizeof(uint32_t)), 0 };
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        if (unlinkat(msgs[i]->dir == MSG_NEW ? mb->newfd : mb->curfd, msgs[i]->file, 0) < 0
            && errno != ENOENT) {
            msg_warn("%s: unlink %s: %s", mb->path, msgs[i]->file, strerror(errno));
            continue;
        }
        w.uids[w.n++] = msgs[i]->uid;
    }
    if (w.n > 0)
        rc = index_update(mb, false, mbox_expunge_build, &w);
    free(w.uids);
    mbox_wake_views(mb);
    return rc;
}

struct mbox_add_work {
    struct imap_add *adds;
    size_t           n;
};

static void mbox_add_build(struct imap_mbox *mb, buf_t *rec, void *ctx)
{
    struct mbox_add_work *w = ctx;

    mbox_commit_build(mb, rec, NULL);
    for (size_t i = 0; i < w->n; i++) {
        struct imap_add *a = &w->adds[i];
        struct imap_msg *m = mbox_insert(mb, mb->uidnext);

        mbox_msg_set_file(m, a->file, a->dir);
        mbox_hash_add(mb, m);
        m->flags = (uint8_t)(a->flags & IMAP_F_ALL);
        m->idate = a->idate;
        m->vsize = a->vsize;
        mbox_msg_set_kw(m, a->kw, a->nkw);
        a->uid = m->uid;
        index_put_msg(rec, 'M', m);
        /* If its event was read already, it waits as a new file. */
        for (size_t j = 0; j < mb->nnew; j++)
            if (strcmp(mb->newfiles[j].file, a->file) == 0) {
                free(mb->newfiles[j].file);
                mb->newfiles[j] = mb->newfiles[--mb->nnew];
                break;
            }
    }
    mbox_claim_recent(mb, rec);
}

int mbox_add_files(struct imap_mbox *mb, struct imap_add *adds, size_t n)
{
    struct mbox_add_work w = { adds, n };
    int rc = index_update(mb, true, mbox_add_build, &w);

    mbox_wake_views(mb);
    return rc;
}

/* --------------------------------------------------------------- views */

struct imap_view *view_new(struct imap_mbox *mb, bool readonly,
                           void (*wake)(void *ctx), void *ctx)
{
    struct imap_view *v = xcalloc(1, sizeof(*v));

    v->mb = mb;
    v->readonly = readonly;
    v->wake = wake;
    v->ctx = ctx;
    v->size = mb->nmsgs + 16;
    v->uids = xcalloc(v->size, sizeof(uint32_t));
    for (size_t i = 0; i < mb->nmsgs; i++)
        v->uids[v->n++] = mb->msgs[i]->uid;
    v->maxuid = v->n ? v->uids[v->n - 1] : 0;
    v->nkw_told = mb->nkwnames;
    /* Read-write views go first in line for \Recent. */
    if (readonly) {
        struct imap_view **p = &mb->views;

        while (*p)
            p = &(*p)->next;
        *p = v;
    } else {
        v->next = mb->views;
        mb->views = v;
        if (mb->first_recent < mb->uidnext)
            mbox_sync(mb);          /* claims them (and records it) */
    }
    return v;
}

void view_free(struct imap_view **vp)
{
    struct imap_view *v = *vp;

    if (v == NULL)
        return;
    for (struct imap_view **p = &v->mb->views; *p; p = &(*p)->next)
        if (*p == v) {
            *p = v->next;
            break;
        }
    free(v->uids);
    free(v->recent);
    free(v->expunged);
    free(v->changed);
    free(v);
    *vp = NULL;
}

int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

size_t u32_find(const uint32_t *a, size_t n, uint32_t v)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;

        if (a[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && a[lo] == v ? lo : n;
}

void view_drop_recent(struct imap_view *v, uint32_t uid)
{
    size_t i = u32_find(v->recent, v->nrecent, uid);

    if (i == v->nrecent)
        return;
    memmove(v->recent + i, v->recent + i + 1, (v->nrecent - i - 1) * sizeof(uint32_t));
    v->nrecent--;
}

bool view_is_recent(const struct imap_view *v, uint32_t uid)
{
    return u32_find(v->recent, v->nrecent, uid) < v->nrecent;
}

uint32_t view_seq(const struct imap_view *v, uint32_t uid)
{
    size_t i = u32_find(v->uids, v->n, uid);

    return i < v->n ? (uint32_t)(i + 1) : 0;
}
