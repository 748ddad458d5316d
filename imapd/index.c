/*
 * index.c - a mailbox's persistent index: DIR/posthorn-imap.index, an
 * append-only log of text records, one per line:
 *
 *   POSTHORN-IMAP-INDEX 1 <uidvalidity>    the first line
 *   M <uid> <flags> <idate> <vsize> <n|c> <file> <keywords>
 *                       the message's state: system flags as Maildir
 *                       letters (DFRST, "-" for none), INTERNALDATE
 *                       (seconds), RFC822.SIZE (0: not known yet), new/
 *                       or cur/, the file name (bytes <= 0x20, 0x7f and
 *                       '%' as %XX), keyword ids ("1,4" or "-"); the
 *                       first M of a UID assigns it
 *   X <uid>             expunged
 *   K <id> <name>       keyword id -> name (any number of them)
 *   R <uid>             \Recent was handed out below this UID
 *   N <uidnext>         UIDNEXT (a snapshot keeps it past expunged UIDs)
 *   S <new> <cur>       the modification times (s.ns) of new/ and cur/ when
 *                       the records above described them whole: a later
 *                       open that finds the same times needs no scan
 *
 * Later records win.  Writers hold flock(LOCK_EX) on the file, read what
 * others appended first (so two processes of one user never give one UID
 * twice), and append whole records with one write().  New UIDs are
 * fdatasync()ed before any client sees them; flag changes are written
 * before the command's OK (a kill -9 keeps them; a power cut may lose the
 * last flag changes, as with Dovecot's mail_fsync = optimized).  A torn
 * last line (a writer killed in its write) is ignored and cut off by the
 * next writer.  When the log has grown to several times what it
 * describes, a writer rewrites it as a snapshot (a new file renamed over
 * the old; other processes notice the new inode and read it whole).
 *
 * A record that cannot be read is corruption, not a crash: the file is
 * kept as posthorn-imap.index.corrupt, logged as PATH:LINE, and the index
 * rebuilt from the Maildir with a new UIDVALIDITY, which tells clients to
 * forget what they cached.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "durable.h"
#include "imapd.h"
#include "mailbox.h"
#include "msg.h"
#include "user.h"
#include "xalloc.h"

#define INDEX_MAGIC      "POSTHORN-IMAP-INDEX 1 "
#define INDEX_TMP_NAME   IMAP_INDEX_NAME ".tmp"
#define INDEX_BAD_NAME   IMAP_INDEX_NAME ".corrupt"
#define INDEX_LINE_MAX   (64 * 1024)
/* The file that keeps UIDVALIDITY rising for every folder of a user,
 * in the INBOX directory. */
#define UIDVALIDITY_FILE "posthorn-imap.uidvalidity"

static const char index_flag_letters[] = "DFRST";
static const unsigned index_flag_bits[] = {
    IMAP_F_DRAFT, IMAP_F_FLAGGED, IMAP_F_ANSWERED, IMAP_F_SEEN, IMAP_F_DELETED
};

/* ------------------------------------------------------------ encoding */

static void index_put_flags(buf_t *rec, unsigned flags)
{
    size_t start = rec->len;

    for (size_t i = 0; i < 5; i++)
        if (flags & index_flag_bits[i])
            buf_putc(rec, index_flag_letters[i]);
    if (rec->len == start)
        buf_putc(rec, '-');
}

static int index_get_flags(const char *s, unsigned *flags)
{
    *flags = 0;
    if (strcmp(s, "-") == 0)
        return 0;
    for (; *s; s++) {
        const char *p = strchr(index_flag_letters, *s);

        if (p == NULL)
            return -1;
        *flags |= index_flag_bits[p - index_flag_letters];
    }
    return 0;
}

static void index_put_name(buf_t *rec, const char *name)
{
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p <= 0x20 || *p == 0x7f || *p == '%')
            buf_printf(rec, "%%%02X", *p);
        else
            buf_putc(rec, (char)*p);
}

static char *index_get_name(const char *s)
{
    char *out = xmalloc(strlen(s) + 1), *o = out;

    for (; *s; s++) {
        if (*s == '%') {
            unsigned v;

            if (sscanf(s + 1, "%2X", &v) != 1 || v == 0) {
                free(out);
                return NULL;
            }
            *o++ = (char)v;
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
    if (*out == '\0' || strchr(out, '/')) {
        free(out);
        return NULL;
    }
    return out;
}

void index_put_msg(buf_t *rec, char type, const struct imap_msg *m)
{
    buf_printf(rec, "%c %" PRIu32 " ", type, m->uid);
    index_put_flags(rec, m->flags);
    buf_printf(rec, " %" PRId64 " %" PRIu64 " %c ", m->idate, m->vsize,
               m->dir == MSG_CUR ? 'c' : 'n');
    index_put_name(rec, m->file);
    buf_putc(rec, ' ');
    if (m->nkw == 0)
        buf_putc(rec, '-');
    for (uint32_t i = 0; i < m->nkw; i++)
        buf_printf(rec, "%s%" PRIu32, i ? "," : "", m->kw[i]);
    buf_putc(rec, '\n');
}

void index_put_expunge(buf_t *rec, uint32_t uid)
{
    buf_printf(rec, "X %" PRIu32 "\n", uid);
}

void index_put_keyword(buf_t *rec, uint32_t id, const char *name)
{
    buf_printf(rec, "K %" PRIu32 " %s\n", id, name);
}

void index_put_synced(buf_t *rec, const struct timespec *new_, const struct timespec *cur)
{
    buf_printf(rec, "S %lld.%09ld %lld.%09ld\n", (long long)new_->tv_sec, new_->tv_nsec,
               (long long)cur->tv_sec, cur->tv_nsec);
}

void index_put_recent(buf_t *rec, uint32_t first_recent)
{
    buf_printf(rec, "R %" PRIu32 "\n", first_recent);
}

/* ------------------------------------------------------------- reading */

static int index_get_u32(const char *s, uint32_t *v)
{
    char *end;
    unsigned long long n;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    n = strtoull(s, &end, 10);
    if (*end || errno || n > UINT32_MAX)
        return -1;
    *v = (uint32_t)n;
    return 0;
}

/* One record; -1 when it cannot be read. */
static int index_apply_line(struct imap_mbox *mb, char *line)
{
    char *f[8];
    size_t nf = 0;
    uint32_t uid, id;

    for (char *p = line, *tok; nf < 8 && (tok = strsep(&p, " ")) != NULL;)
        f[nf++] = tok;
    if (nf == 0 || strlen(f[0]) != 1)
        return -1;
    switch (f[0][0]) {
    case 'M': {
        unsigned flags;
        long long idate;
        unsigned long long vsize;
        uint32_t kw[256], nkw = 0;
        char *file, *end;

        if (nf != 8 || index_get_u32(f[1], &uid) < 0 || uid == 0
            || index_get_flags(f[2], &flags) < 0 || (f[5][0] != 'n' && f[5][0] != 'c')
            || f[5][1] != '\0')
            return -1;
        errno = 0;
        idate = strtoll(f[3], &end, 10);
        if (*end || errno)
            return -1;
        vsize = strtoull(f[4], &end, 10);
        if (*end || errno)
            return -1;
        if (strcmp(f[7], "-") != 0)
            for (char *p = f[7], *tok; (tok = strsep(&p, ",")) != NULL;) {
                if (nkw == 256 || index_get_u32(tok, &kw[nkw]) < 0
                    || kw[nkw] >= mb->nkwnames || (nkw && kw[nkw] <= kw[nkw - 1]))
                    return -1;
                nkw++;
            }
        if ((file = index_get_name(f[6])) == NULL)
            return -1;
        mbox_index_apply(mb, uid, flags, f[5][0] == 'c' ? MSG_CUR : MSG_NEW, file, idate,
                         vsize, kw, nkw, true);
        free(file);
        return 0;
    }
    case 'X':
        if (nf != 2 || index_get_u32(f[1], &uid) < 0)
            return -1;
        mbox_index_expunged(mb, uid);
        return 0;
    case 'K':
        if (nf != 3 || index_get_u32(f[1], &id) < 0 || id != mb->nkwnames
            || !imap_keyword_ok(f[2]))
            return -1;
        mbox_index_keyword(mb, id, f[2]);
        return 0;
    case 'R':
        if (nf != 2 || index_get_u32(f[1], &uid) < 0)
            return -1;
        if (uid > mb->first_recent)
            mb->first_recent = uid;
        return 0;
    case 'N':
        if (nf != 2 || index_get_u32(f[1], &uid) < 0)
            return -1;
        if (uid > mb->uidnext)
            mb->uidnext = uid;
        return 0;
    case 'S': {
        long long t[4];

        if (nf != 3 || sscanf(f[1], "%lld.%lld", &t[0], &t[1]) != 2
            || sscanf(f[2], "%lld.%lld", &t[2], &t[3]) != 2)
            return -1;
        mb->synced_new.tv_sec = (time_t)t[0];
        mb->synced_new.tv_nsec = (long)t[1];
        mb->synced_cur.tv_sec = (time_t)t[2];
        mb->synced_cur.tv_nsec = (long)t[3];
        return 0;
    }
    }
    return -1;
}

/* Read from idxoff to the end: whole lines are applied, a partial last
 * one is left for later.  0, or -1 at a bad record (logged). */
static int index_read(struct imap_mbox *mb)
{
    char chunk[65536];
    ssize_t n;

    for (;;) {
        n = pread(mb->idxfd, chunk, sizeof(chunk), mb->idxoff + (off_t)mb->idxtail->len);
        if (n < 0) {
            msg_warn("%s/%s: read: %s", mb->path, IMAP_INDEX_NAME, strerror(errno));
            return -1;
        }
        if (n == 0)
            return 0;
        buf_append(mb->idxtail, chunk, (size_t)n);
        for (char *nl; (nl = memchr(mb->idxtail->data, '\n', mb->idxtail->len)) != NULL;) {
            size_t len = (size_t)(nl - mb->idxtail->data) + 1;
            int rc;

            *nl = '\0';
            mb->idxline++;
            if (mb->idxline == 1)
                rc = strncmp(mb->idxtail->data, INDEX_MAGIC, strlen(INDEX_MAGIC)) == 0
                     && index_get_u32(mb->idxtail->data + strlen(INDEX_MAGIC),
                                      &mb->uidvalidity) == 0 && mb->uidvalidity != 0 ? 0 : -1;
            else
                rc = index_apply_line(mb, mb->idxtail->data);
            if (rc < 0) {
                msg_warn("%s/%s:%lu: cannot read this record", mb->path, IMAP_INDEX_NAME,
                         mb->idxline);
                return -1;
            }
            mb->idxoff += (off_t)len;
            buf_consume(mb->idxtail, len);
        }
        if (mb->idxtail->len > INDEX_LINE_MAX) {
            msg_warn("%s/%s:%lu: a record too long", mb->path, IMAP_INDEX_NAME, mb->idxline + 1);
            return -1;
        }
    }
}

/* A UIDVALIDITY above every earlier one of this user (so that a folder
 * deleted and created again never repeats one), and above the clock. */
static uint32_t index_new_uidvalidity(void)
{
    uint32_t last = 0, v = (uint32_t)time(NULL);
    char text[32], *path = xasprintf("%s/" UIDVALIDITY_FILE, user_maildir());
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    ssize_t n;

    free(path);
    if (fd < 0)
        return v;
    flock(fd, LOCK_EX);
    if ((n = pread(fd, text, sizeof(text) - 1, 0)) > 0) {
        text[n] = '\0';
        text[strcspn(text, "\n")] = '\0';
        if (index_get_u32(text, &last) < 0)
            last = 0;
    }
    if (v <= last)
        v = last + 1;
    if (v == 0)
        v = 1;
    n = snprintf(text, sizeof(text), "%" PRIu32 "\n", v);
    if (pwrite(fd, text, (size_t)n, 0) != n || ftruncate(fd, n) < 0)
        msg_warn("%s: write: %s", UIDVALIDITY_FILE, strerror(errno));
    close(fd);
    return v;
}

static int index_open_file(struct imap_mbox *mb)
{
    struct stat st;

    mb->idxfd = openat(mb->dirfd, IMAP_INDEX_NAME,
                       O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (mb->idxfd < 0 || fstat(mb->idxfd, &st) < 0)
        return -1;
    mb->idxino = st.st_ino;
    mb->idxoff = 0;
    mb->idxline = 0;
    buf_reset(mb->idxtail);
    return 0;
}

/* A fresh index: header only (the caller holds no lock: the file is new,
 * or empty under our lock). */
static int index_write_header(struct imap_mbox *mb)
{
    char head[64];
    int n;

    mb->uidvalidity = index_new_uidvalidity();
    n = snprintf(head, sizeof(head), INDEX_MAGIC "%" PRIu32 "\n", mb->uidvalidity);
    if (write(mb->idxfd, head, (size_t)n) != n || fdatasync(mb->idxfd) < 0)
        return -1;
    mb->idxoff = n;
    mb->idxline = 1;
    return 0;
}

int index_open(struct imap_mbox *mb, const char **why)
{
    struct stat st;
    int rc;

    mb->idxtail = buf_new(0);
    mb->uidnext = 1;
    if (index_open_file(mb) < 0) {
        msg_warn("%s/%s: open: %s", mb->path, IMAP_INDEX_NAME, strerror(errno));
        *why = "cannot open the mailbox index";
        return -1;
    }
    flock(mb->idxfd, LOCK_EX);
    if (fstat(mb->idxfd, &st) == 0 && st.st_size == 0) {
        rc = index_write_header(mb);
    } else if ((rc = index_read(mb)) < 0) {
        /* Corrupt: keep it for a look, start again with a new UIDVALIDITY. */
        msg_warn("%s/%s: rebuilding the index; clients will resynchronise (new UIDVALIDITY)",
                 mb->path, IMAP_INDEX_NAME);
        renameat(mb->dirfd, IMAP_INDEX_NAME, mb->dirfd, INDEX_BAD_NAME);
        flock(mb->idxfd, LOCK_UN);
        close(mb->idxfd);
        for (size_t i = mb->nmsgs; i-- > 0;)
            mbox_index_expunged(mb, mb->msgs[i]->uid);
        for (uint32_t i = 0; i < mb->nkwnames; i++)
            free(mb->kwnames[i]);
        mb->nkwnames = 0;
        mb->uidnext = 1;
        mb->first_recent = 0;
        mb->synced_new.tv_sec = mb->synced_cur.tv_sec = 0;    /* scan: nothing is known */
        if (index_open_file(mb) < 0) {
            *why = "cannot open the mailbox index";
            return -1;
        }
        flock(mb->idxfd, LOCK_EX);
        rc = index_write_header(mb);
    }
    flock(mb->idxfd, LOCK_UN);
    if (rc < 0) {
        msg_warn("%s/%s: write: %s", mb->path, IMAP_INDEX_NAME, strerror(errno));
        *why = "cannot write the mailbox index";
        return -1;
    }
    return 0;
}

void index_close(struct imap_mbox *mb)
{
    if (mb->idxfd >= 0)
        close(mb->idxfd);
    mb->idxfd = -1;
    buf_free(&mb->idxtail);
}

/* The file at the index's path is another one (compacted or rebuilt by
 * another process): read it whole; what it no longer has was expunged.
 * Called without our lock on it. */
static int index_reload(struct imap_mbox *mb)
{
    uint32_t validity = mb->uidvalidity;
    uint32_t *had = xcalloc(mb->nmsgs + 1, sizeof(uint32_t));
    size_t nhad = mb->nmsgs;
    int fd = mb->idxfd;

    for (size_t i = 0; i < nhad; i++)
        had[i] = mb->msgs[i]->uid;
    if (index_open_file(mb) < 0) {
        mb->idxfd = fd;
        free(had);
        return -1;
    }
    close(fd);
    mbox_index_rewatch(mb);
    flock(mb->idxfd, LOCK_SH);
    for (size_t i = 0; i < mb->nmsgs; i++)
        mb->msgs[i]->gone = true;          /* marks: not in the new file yet */
    if (index_read(mb) < 0 || mb->uidvalidity != validity) {
        flock(mb->idxfd, LOCK_UN);
        free(had);
        msg_warn("%s/%s: rewritten into something else", mb->path, IMAP_INDEX_NAME);
        return -1;
    }
    flock(mb->idxfd, LOCK_UN);
    for (size_t i = 0; i < nhad; i++) {
        struct imap_msg *m = mbox_find_uid(mb, had[i]);

        if (m && m->gone) {
            m->gone = false;
            mbox_index_expunged(mb, had[i]);
        }
    }
    free(had);
    /* The marks were borrowed: look at the disk again. */
    mb->ngone = 0;
    mb->rescan = true;
    return 0;
}

static bool index_replaced(const struct imap_mbox *mb)
{
    struct stat st;

    return fstatat(mb->dirfd, IMAP_INDEX_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0
           && st.st_ino != mb->idxino;
}

int index_refresh(struct imap_mbox *mb)
{
    if (index_replaced(mb))
        return index_reload(mb);
    return index_read(mb);
}

int index_begin(struct imap_mbox *mb)
{
    /* The lock is on the file at the path, and the one read: another
     * process may replace the file while we wait for its lock. */
    for (int tries = 0;; tries++) {
        if (flock(mb->idxfd, LOCK_EX) < 0) {
            msg_warn("%s/%s: lock: %s", mb->path, IMAP_INDEX_NAME, strerror(errno));
            return -1;
        }
        if (!index_replaced(mb))
            break;
        flock(mb->idxfd, LOCK_UN);
        if (tries == 10 || index_reload(mb) < 0)
            return -1;
    }
    if (index_read(mb) < 0)
        goto fail;
    if (mb->idxtail->len > 0) {
        /* A writer died in its write: cut its torn record off. */
        if (ftruncate(mb->idxfd, mb->idxoff) < 0)
            goto fail;
        buf_reset(mb->idxtail);
    }
    mb->in_txn = true;
    return 0;
fail:
    msg_warn("%s/%s: cannot update the index: %s", mb->path, IMAP_INDEX_NAME, strerror(errno));
    flock(mb->idxfd, LOCK_UN);
    return -1;
}

int index_end(struct imap_mbox *mb, bool durable, buf_t *rec)
{
    int rc = 0;

    if (rec->len > 0) {
        ssize_t n = write(mb->idxfd, rec->data, rec->len);

        if (n != (ssize_t)rec->len || (durable && fdatasync(mb->idxfd) < 0)) {
            msg_warn("%s/%s: cannot update the index: %s", mb->path, IMAP_INDEX_NAME,
                     n < 0 ? strerror(errno) : "short write");
            if (n > 0 && ftruncate(mb->idxfd, mb->idxoff) < 0)
                msg_warn("%s/%s: truncate: %s", mb->path, IMAP_INDEX_NAME, strerror(errno));
            rc = -1;
        } else {
            mb->idxoff += n;
            for (size_t i = 0; i < rec->len; i++)
                if (rec->data[i] == '\n')
                    mb->idxline++;
        }
    }
    buf_reset(rec);
    mb->in_txn = false;
    flock(mb->idxfd, LOCK_UN);
    return rc;
}

int index_update(struct imap_mbox *mb, bool durable,
                 void (*build)(struct imap_mbox *mb, buf_t *rec, void *ctx), void *ctx)
{
    buf_t *rec;
    int rc;

    if (index_begin(mb) < 0)
        return -1;
    rec = buf_new(0);
    build(mb, rec, ctx);
    rc = index_end(mb, durable, rec);
    buf_free(&rec);
    return rc;
}

void index_compact(struct imap_mbox *mb)
{
    buf_t *snap;
    int fd;

    if (mb->idxoff < 256 * 1024 || mb->idxoff < 4 * (off_t)(mb->nmsgs * 80 + 64))
        return;
    if (index_begin(mb) < 0)
        return;
    mb->in_txn = false;
    snap = buf_new(0);
    buf_printf(snap, INDEX_MAGIC "%" PRIu32 "\n", mb->uidvalidity);
    for (uint32_t i = 0; i < mb->nkwnames; i++)
        index_put_keyword(snap, i, mb->kwnames[i]);
    for (size_t i = 0; i < mb->nmsgs; i++)
        index_put_msg(snap, 'M', mb->msgs[i]);
    index_put_recent(snap, mb->first_recent);
    buf_printf(snap, "N %" PRIu32 "\n", mb->uidnext);
    if (mb->synced_new.tv_sec)
        index_put_synced(snap, &mb->synced_new, &mb->synced_cur);
    fd = openat(mb->dirfd, INDEX_TMP_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                0600);
    if (fd < 0 || write(fd, snap->data, snap->len) != (ssize_t)snap->len || fsync(fd) < 0
        || renameat(mb->dirfd, INDEX_TMP_NAME, mb->dirfd, IMAP_INDEX_NAME) < 0) {
        msg_warn("%s/%s: cannot compact: %s", mb->path, IMAP_INDEX_NAME, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlinkat(mb->dirfd, INDEX_TMP_NAME, 0);
        }
        buf_free(&snap);
        goto out;
    }
    close(fd);
    durable_fsync_dir(mb->dirfd, ".");
    flock(mb->idxfd, LOCK_UN);
    close(mb->idxfd);
    /* Ours is the new file now: what it holds is what we have; read
     * only what others append to it from here. */
    if (index_open_file(mb) == 0) {
        mb->idxoff = (off_t)snap->len;
        mb->idxline = (unsigned long)(3 + mb->nkwnames + mb->nmsgs
                                      + (mb->synced_new.tv_sec ? 1 : 0));
        mbox_index_rewatch(mb);
    }
    buf_free(&snap);
    return;
out:
    flock(mb->idxfd, LOCK_UN);
}
