/*
 * mailbox.c - the Maildir as a POP3 session sees it (RFC 1939 with the
 * Maildir layout of lib/maildir), in the session process, as the user.
 *
 *  - One POP3 session per Maildir at a time: an flock() on
 *    MAILDIR/posthorn-pop3.lock, held for the session's life (a process
 *    that dies lets it go).
 *  - The messages are the files of cur/ and new/ at login, oldest first
 *    (the seconds that start a Maildir name, then the name); a name in
 *    both directories (a rename seen half-way) counts once, from cur/.
 *  - Sizes are what RETR sends: the file with every LF that lacks a CR
 *    written as CRLF (and a last line without one ended).  The W= part of
 *    the name (Dovecot's, written by local) says so without reading the
 *    file; a file without it is read once to count.
 *  - UIDL: the Maildir unique name, the part of the file name before the
 *    first ',' or ':' (what stays when flags or sizes are added), when
 *    it is 1-70 printable characters and unique in the mailbox; otherwise
 *    "X" and 40 hex digits of the SHA-256 of the name before ':'.  A
 *    message keeps its UIDL across sessions, and when an IMAP client or
 *    another program moves it to cur/ or changes its flags.
 *  - RETR/TOP read the file at the time (a file another program moved
 *    is found again by its unique name; one it removed is an -ERR).
 *  - UPDATE (QUIT): deleted messages are unlinked, retrieved ones move
 *    from new/ to cur/ with the Seen flag (or get S added in cur/), as
 *    Dovecot does, so IMAP clients see them as read; then cur/ and new/
 *    are fsync()ed before the +OK.
 *
 * Failure modes: a file that cannot be read is an -ERR for that command;
 * a Maildir that cannot be opened or listed ends the login with an -ERR.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "maildir.h"
#include "msg.h"
#include "mailbox.h"
#include "xalloc.h"

#define BOX_READ_CHUNK 65536

static int box_open_msg(const struct pop3_box *b, const struct pop3_msg *m)
{
    int fd = openat(m->in_new ? b->newfd : b->curfd, m->name,
                    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    struct stat st;

    if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    return fd;
}

/* The CRLF size of an open file: the octets, one more for each LF that
 * no CR precedes, two for an unterminated last line. */
static int box_count_size(int fd, off_t *size)
{
    char *buf = xmalloc(BOX_READ_CHUNK);
    off_t total = 0;
    char last = '\n';
    ssize_t n;

    while ((n = read(fd, buf, BOX_READ_CHUNK)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            free(buf);
            return -1;
        }
        total += n;
        for (const char *p = buf, *end = buf + n; (p = memchr(p, '\n', (size_t)(end - p)));
             p++)
            if ((p == buf ? last : p[-1]) != '\r')
                total++;
        last = buf[n - 1];
    }
    if (total > 0 && last != '\n')
        total += 2;
    free(buf);
    *size = total;
    return 0;
}

static void box_add(struct pop3_box *b, size_t *alloc, const char *name, bool in_new)
{
    struct pop3_msg *m;

    if (b->n == *alloc) {
        *alloc = *alloc ? *alloc * 2 : 64;
        b->msgs = xreallocarray(b->msgs, *alloc, sizeof(*b->msgs));
    }
    m = &b->msgs[b->n++];
    memset(m, 0, sizeof(*m));
    m->name = xstrdup(name);
    m->base_len = maildir_base_len(name);
    m->in_new = in_new;
    m->size = -1;
}

/* A listing of new/ or cur/ from the start, on a descriptor of its own
 * (the box keeps dirfd); NULL with errno. */
static DIR *box_opendir(int dirfd)
{
    int fd = dup(dirfd);
    DIR *d;

    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    rewinddir(d);
    return d;
}

static int box_scan(struct pop3_box *b, size_t *alloc, int dirfd, bool in_new)
{
    DIR *d = box_opendir(dirfd);
    struct dirent *e;

    if (d == NULL)
        return -1;
    while ((errno = 0, e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN)
            continue;
        if (e->d_type == DT_UNKNOWN) {
            struct stat st;

            if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                continue;
        }
        box_add(b, alloc, e->d_name, in_new);
    }
    closedir(d);
    return errno ? -1 : 0;
}

static int box_cmp_base(const void *x, const void *y)
{
    const struct pop3_msg *a = x, *b = y;
    size_t n = a->base_len < b->base_len ? a->base_len : b->base_len;
    int c = memcmp(a->name, b->name, n);

    if (c == 0)
        c = a->base_len < b->base_len ? -1 : a->base_len > b->base_len;
    if (c == 0)
        c = (int)a->in_new - (int)b->in_new;       /* cur/ first */
    return c;
}

static int box_cmp_arrival(const void *x, const void *y)
{
    const struct pop3_msg *a = x, *b = y;
    unsigned long long ta = strtoull(a->name, NULL, 10), tb = strtoull(b->name, NULL, 10);

    if (ta != tb)
        return ta < tb ? -1 : 1;
    return strcmp(a->name, b->name);
}

static int box_cmp_uidl(const void *x, const void *y)
{
    const struct pop3_msg *const *a = x, *const *b = y;

    return strcmp((*a)->uidl, (*b)->uidl);
}

static void box_hash_uidl(struct pop3_msg *m)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    if (EVP_Digest(m->name, m->base_len, md, &len, EVP_sha256(), NULL) != 1 || len < 20)
        msg_fatal("SHA-256 failed");
    m->uidl[0] = 'X';
    for (unsigned i = 0; i < 20; i++)
        snprintf(m->uidl + 1 + 2 * i, 3, "%02x", md[i]);
}

static void box_uidls(struct pop3_box *b)
{
    struct pop3_msg **sorted = xcalloc(b->n ? b->n : 1, sizeof(*sorted));

    for (size_t i = 0; i < b->n; i++) {
        struct pop3_msg *m = &b->msgs[i];
        size_t len = strcspn(m->name, ",:");
        bool ok = len > 0 && len <= POP3_UIDL_MAX && m->name[0] != 'X';

        for (size_t j = 0; ok && j < len; j++)
            ok = (unsigned char)m->name[j] > 0x20 && (unsigned char)m->name[j] < 0x7f;
        if (ok)
            memcpy(m->uidl, m->name, len), m->uidl[len] = '\0';
        else
            box_hash_uidl(m);
        sorted[i] = m;
    }
    /* Unique in the mailbox (RFC 1939 7): names that share the part
     * before ',' take the hash of their whole base name instead. */
    qsort(sorted, b->n, sizeof(*sorted), box_cmp_uidl);
    for (size_t i = 0; i + 1 < b->n; i++)
        if (strcmp(sorted[i]->uidl, sorted[i + 1]->uidl) == 0) {
            size_t j = i + 1;

            while (j < b->n && strcmp(sorted[i]->uidl, sorted[j]->uidl) == 0)
                j++;
            for (size_t k = i; k < j; k++)
                box_hash_uidl(sorted[k]);
            i = j - 1;
        }
    free(sorted);
}

int box_open(struct pop3_box *b, const char *path, const char **why)
{
    size_t alloc = 0, keep = 0;
    char *err = NULL;

    memset(b, 0, sizeof(*b));
    b->dirfd = b->newfd = b->curfd = b->lockfd = -1;
    if (maildir_create(path, &err) < 0) {
        msg_warn("%s", err ? err : "cannot create the Maildir");
        free(err);
        *why = "cannot create the mailbox";
        return BOX_ERROR;
    }
    if ((b->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0
        || (b->newfd = openat(b->dirfd, "new", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0
        || (b->curfd = openat(b->dirfd, "cur", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        msg_warn("cannot open the Maildir %s: %s", path, strerror(errno));
        *why = "cannot open the mailbox";
        return BOX_ERROR;
    }
    b->lockfd = openat(b->dirfd, POP3_LOCK_FILE,
                       O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0600);
    if (b->lockfd < 0) {
        msg_warn("cannot open %s/%s: %s", path, POP3_LOCK_FILE, strerror(errno));
        *why = "cannot lock the mailbox";
        return BOX_ERROR;
    }
    if (flock(b->lockfd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            return BOX_IN_USE;
        msg_warn("cannot lock %s/%s: %s", path, POP3_LOCK_FILE, strerror(errno));
        *why = "cannot lock the mailbox";
        return BOX_ERROR;
    }
    if (box_scan(b, &alloc, b->curfd, false) < 0 || box_scan(b, &alloc, b->newfd, true) < 0) {
        msg_warn("cannot list the Maildir %s: %s", path, strerror(errno));
        *why = "cannot list the mailbox";
        return BOX_ERROR;
    }
    /* One message per base name: cur/'s when both have it. */
    if (b->n > 1)
        qsort(b->msgs, b->n, sizeof(*b->msgs), box_cmp_base);
    for (size_t i = 0; i < b->n; i++) {
        if (keep > 0 && b->msgs[keep - 1].base_len == b->msgs[i].base_len
            && memcmp(b->msgs[keep - 1].name, b->msgs[i].name, b->msgs[i].base_len) == 0) {
            free(b->msgs[i].name);
            continue;
        }
        b->msgs[keep++] = b->msgs[i];
    }
    b->n = keep;
    if (b->n > 1)
        qsort(b->msgs, b->n, sizeof(*b->msgs), box_cmp_arrival);
    for (size_t i = 0; i < b->n; i++) {
        struct pop3_msg *m = &b->msgs[i];
        int fd;

        if ((m->size = maildir_name_vsize(m->name)) >= 0)
            continue;
        if ((fd = box_open_msg(b, m)) < 0 || box_count_size(fd, &m->size) < 0) {
            /* Gone or unreadable: listed as empty; RETR will say why. */
            m->size = 0;
        }
        if (fd >= 0)
            close(fd);
    }
    box_uidls(b);
    return BOX_OK;
}

void box_close(struct pop3_box *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->msgs[i].name);
    free(b->msgs);
    if (b->lockfd >= 0)
        close(b->lockfd);           /* lets the lock go */
    if (b->curfd >= 0)
        close(b->curfd);
    if (b->newfd >= 0)
        close(b->newfd);
    if (b->dirfd >= 0)
        close(b->dirfd);
    memset(b, 0, sizeof(*b));
    b->dirfd = b->newfd = b->curfd = b->lockfd = -1;
}

/* A message another program renamed (new/ -> cur/, flags changed) since
 * the listing: find it by its base name.  0 with m updated, -1 if gone. */
static int box_relocate(struct pop3_box *b, struct pop3_msg *m)
{
    for (int pass = 0; pass < 2; pass++) {
        bool in_new = pass == 1;
        DIR *d = box_opendir(in_new ? b->newfd : b->curfd);
        struct dirent *e;

        if (d == NULL)
            continue;
        while ((e = readdir(d)) != NULL) {
            if (maildir_base_len(e->d_name) == m->base_len
                && memcmp(e->d_name, m->name, m->base_len) == 0) {
                free(m->name);
                m->name = xstrdup(e->d_name);
                m->in_new = in_new;
                closedir(d);
                return 0;
            }
        }
        closedir(d);
    }
    return -1;
}

static int box_put(stream_t *out, const char *p, size_t n)
{
    return n == 0 ? 0 : stream_write(out, p, n) < 0 ? -1 : 0;
}

int box_send(struct pop3_box *b, struct pop3_msg *m, long body_lines, stream_t *out,
             const char **why)
{
    char *buf;
    int fd = box_open_msg(b, m);
    bool bol = true, header = true, prev_cr = false, stop = false;
    size_t line_len = 0;
    ssize_t n;

    if (fd < 0 && errno == ENOENT && box_relocate(b, m) == 0)
        fd = box_open_msg(b, m);
    if (fd < 0) {
        *why = errno == ENOENT ? "The message was removed by another program."
               : "The message cannot be read.";
        if (errno != ENOENT)
            msg_warn("cannot open %s/%s: %s", m->in_new ? "new" : "cur", m->name,
                     strerror(errno));
        return -1;
    }
    buf = xmalloc(BOX_READ_CHUNK);
    if (body_lines >= 0)
        stream_puts(out, "+OK\r\n");
    else
        stream_printf(out, "+OK %lld octets\r\n", (long long)m->size);
    while (!stop && (n = read(fd, buf, BOX_READ_CHUNK)) != 0) {
        const char *p = buf, *end;

        if (n < 0) {
            if (errno == EINTR)
                continue;
            /* Too late for an -ERR: the client gets a short message. */
            msg_warn("read error in %s/%s: %s", m->in_new ? "new" : "cur", m->name,
                     strerror(errno));
            break;
        }
        end = buf + n;
        while (p < end) {
            const char *nl;

            if (bol) {
                if (!header && body_lines >= 0 && body_lines-- == 0) {
                    stop = true;
                    break;
                }
                if (*p == '.' && box_put(out, ".", 1) < 0)
                    goto failed;
                bol = false;
                line_len = 0;
            }
            if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL) {
                if (box_put(out, p, (size_t)(end - p)) < 0)
                    goto failed;
                line_len += (size_t)(end - p);
                prev_cr = end[-1] == '\r';
                p = end;
                break;
            }
            line_len += (size_t)(nl - p);
            if (nl > p)
                prev_cr = nl[-1] == '\r';
            if (prev_cr) {
                if (box_put(out, p, (size_t)(nl + 1 - p)) < 0)
                    goto failed;
            } else if (box_put(out, p, (size_t)(nl - p)) < 0 || box_put(out, "\r\n", 2) < 0) {
                goto failed;
            }
            if (header && (line_len == 0 || (line_len == 1 && prev_cr)))
                header = false;
            prev_cr = false;
            bol = true;
            p = nl + 1;
        }
    }
    if ((!bol && box_put(out, "\r\n", 2) < 0) || box_put(out, ".\r\n", 3) < 0)
        goto failed;
    free(buf);
    close(fd);
    return 0;
failed:
    free(buf);
    close(fd);
    return -2;
}

int box_update(struct pop3_box *b, size_t *deleted)
{
    bool touched_new = false, touched_cur = false;
    int rc = 0;

    *deleted = 0;
    for (size_t i = 0; i < b->n; i++) {
        struct pop3_msg *m = &b->msgs[i];

        if (m->deleted) {
            int r = unlinkat(m->in_new ? b->newfd : b->curfd, m->name, 0);

            if (r < 0 && errno == ENOENT && box_relocate(b, m) == 0)
                r = unlinkat(m->in_new ? b->newfd : b->curfd, m->name, 0);
            if (r < 0 && errno != ENOENT) {
                msg_warn("cannot remove %s/%s: %s", m->in_new ? "new" : "cur", m->name,
                         strerror(errno));
                rc = -1;
                continue;
            }
            (*deleted)++;
            *(m->in_new ? &touched_new : &touched_cur) = true;
        } else if (m->retrieved) {
            char *seen = maildir_name_with_flag(m->name, 'S');

            if (seen == NULL && !m->in_new)
                continue;
            if (seen == NULL)
                seen = xstrdup(m->name);
            if (renameat2(m->in_new ? b->newfd : b->curfd, m->name, b->curfd, seen,
                          RENAME_NOREPLACE) < 0 && errno != ENOENT && errno != EEXIST)
                msg_warn("cannot mark %s/%s as seen: %s", m->in_new ? "new" : "cur", m->name,
                         strerror(errno));
            else
                touched_new |= m->in_new, touched_cur = true;
            free(seen);
        }
    }
    if ((touched_cur && fsync(b->curfd) < 0) || (touched_new && fsync(b->newfd) < 0)) {
        msg_warn("cannot make the changes of the Maildir durable: %s", strerror(errno));
        rc = -1;
    }
    return rc;
}
