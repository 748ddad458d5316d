/*
 * cache.c - a mailbox's cache file, DIR/posthorn-imap.cache: for each
 * message the parts clients fetch for a message list, computed once, so
 * that a FETCH of them, or a SEARCH of header fields, reads no message
 * file and parses no MIME:
 *
 *   "PHC2 <uidvalidity> <uid> <hlen> <elen> <blen> <xlen>\n", then the
 *   header (as BODY[HEADER] gives it), ENVELOPE, BODY and BODYSTRUCTURE,
 *   then "\n".  A record of another UIDVALIDITY (the index was rebuilt)
 *   is dead.
 *
 * Records are appended (one write each) when a message is first asked
 * for one of them; nothing is synced: the cache is derived data, and a
 * message whose record is lost is parsed again.  At open the file is
 * walked record by record (headers only); a record that does not read
 * (a torn write, damage) ends the walk, and the file is set aside and
 * started afresh.  When most of it is records of expunged messages it
 * is rewritten with the live ones (at close).  Another process of the
 * same user appends to the same file; what it appends is used from its
 * next open.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imapd.h"
#include "imapmime.h"
#include "mailbox.h"
#include "msg.h"
#include "xalloc.h"

#define CACHE_NAME      "posthorn-imap.cache"
#define CACHE_TMP_NAME  CACHE_NAME ".tmp"
#define CACHE_MAGIC     "PHC2 "
#define CACHE_HEAD_MAX  96
/* A part larger than this is not cached (a pathological header). */
#define CACHE_PART_MAX  (1024 * 1024)

static int cache_read_head(int fd, off_t off, uint32_t *validity, uint32_t *uid, uint32_t len[4],
                           size_t *headlen)
{
    char head[CACHE_HEAD_MAX + 1], *nl;
    ssize_t n = pread(fd, head, CACHE_HEAD_MAX, off);
    unsigned long long v[6];

    if (n <= 0)
        return n == 0 ? 0 : -1;
    head[n] = '\0';
    if ((nl = memchr(head, '\n', (size_t)n)) == NULL || strncmp(head, CACHE_MAGIC, 5) != 0)
        return -1;
    *nl = '\0';
    if (sscanf(head + 5, "%llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5]) != 6)
        return -1;
    for (int i = 2; i < 6; i++)
        if (v[i] > CACHE_PART_MAX)
            return -1;
    if (v[0] > UINT32_MAX || v[1] == 0 || v[1] > UINT32_MAX)
        return -1;
    *validity = (uint32_t)v[0];
    *uid = (uint32_t)v[1];
    for (int i = 0; i < 4; i++)
        len[i] = (uint32_t)v[i + 2];
    *headlen = (size_t)(nl - head) + 1;
    return 1;
}

void cache_open(struct imap_mbox *mb)
{
    struct stat st;
    off_t off = 0;

    mb->cachefd = openat(mb->dirfd, CACHE_NAME,
                         O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (mb->cachefd < 0 || fstat(mb->cachefd, &st) < 0) {
        if (mb->cachefd >= 0)
            close(mb->cachefd);
        mb->cachefd = -1;
        return;
    }
    while (off < st.st_size) {
        uint32_t validity, uid, len[4];
        size_t headlen;
        off_t total;
        struct imap_msg *m;

        if (cache_read_head(mb->cachefd, off, &validity, &uid, len, &headlen) <= 0)
            break;
        total = (off_t)headlen + len[0] + len[1] + len[2] + len[3] + 1;
        if (off + total > st.st_size)
            break;
        if (validity == mb->uidvalidity && (m = mbox_find_uid(mb, uid)) != NULL) {
            m->coff = off + (off_t)headlen;
            memcpy(m->clen, len, sizeof(m->clen));
        }
        off += total;
    }
    if (off < st.st_size) {
        /* A record that does not read: start afresh, keep the old file
         * for a look. */
        msg_warn("%s/%s: a damaged record at offset %lld: the cache is started again",
                 mb->path, CACHE_NAME, (long long)off);
        renameat(mb->dirfd, CACHE_NAME, mb->dirfd, CACHE_NAME ".damaged");
        close(mb->cachefd);
        for (size_t i = 0; i < mb->nmsgs; i++)
            mb->msgs[i]->coff = 0;
        mb->cachefd = openat(mb->dirfd, CACHE_NAME,
                             O_RDWR | O_CREAT | O_APPEND | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                             0600);
    }
}

/* One part of m's record into out: 0, or -1 when there is none (the
 * caller computes it). */
static int cache_get(struct imap_mbox *mb, const struct imap_msg *m, int part, buf_t *out)
{
    off_t off;
    size_t at = out->len;

    if (mb->cachefd < 0 || m->coff == 0)
        return -1;
    off = m->coff;
    for (int i = 0; i < part; i++)
        off += m->clen[i];
    for (uint32_t k = 0; k < m->clen[part]; k++)
        buf_putc(out, 0);
    if (pread(mb->cachefd, out->data + at, m->clen[part], off) != (ssize_t)m->clen[part]) {
        buf_truncate(out, at);
        return -1;
    }
    return 0;
}

void cache_close(struct imap_mbox *mb)
{
    struct stat st;
    off_t live = 0;
    buf_t *out;
    int fd;

    if (mb->cachefd < 0)
        return;
    for (size_t i = 0; i < mb->nmsgs; i++)
        if (mb->msgs[i]->coff)
            live += (off_t)CACHE_HEAD_MAX / 2 + mb->msgs[i]->clen[0] + mb->msgs[i]->clen[1]
                    + mb->msgs[i]->clen[2] + mb->msgs[i]->clen[3];
    /* Mostly dead records: keep the live ones only, a record at a time
     * (never the whole cache in memory). */
    if (fstat(mb->cachefd, &st) == 0 && st.st_size > 256 * 1024
        && st.st_size > 3 * live
        && (fd = openat(mb->dirfd, CACHE_TMP_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC
                        | O_NOFOLLOW, 0600)) >= 0) {
        bool ok = true;

        out = buf_new(0);
        for (size_t i = 0; i < mb->nmsgs && ok; i++) {
            struct imap_msg *m = mb->msgs[i];

            if (m->coff == 0)
                continue;
            buf_reset(out);
            buf_printf(out, CACHE_MAGIC "%" PRIu32 " %" PRIu32 " %u %u %u %u\n",
                       mb->uidvalidity, m->uid, m->clen[0], m->clen[1], m->clen[2], m->clen[3]);
            for (int part = 0; part < 4 && ok; part++)
                ok = cache_get(mb, m, part, out) == 0;
            buf_putc(out, '\n');
            ok = ok && write(fd, out->data, out->len) == (ssize_t)out->len;
        }
        if (!ok || renameat(mb->dirfd, CACHE_TMP_NAME, mb->dirfd, CACHE_NAME) < 0)
            unlinkat(mb->dirfd, CACHE_TMP_NAME, 0);
        close(fd);
        buf_free(&out);
    }
    close(mb->cachefd);
    mb->cachefd = -1;
}

/* Compute m's record from its text; append it to the cache file when it
 * can be (a part too large, or a cache that cannot be written, is only
 * not kept), and give the asked part.  -1 when the text cannot be read. */
static int cache_fill(struct imap_mbox *mb, struct imap_msg *m, int part, buf_t *out)
{
    const buf_t *text = mbox_msg_text(mb, m);
    buf_t *parts[4], *rec;
    mime_part_t *mime;
    const char *why;
    bool keep = mb->cachefd >= 0;

    if (text == NULL)
        return -1;
    for (int i = 0; i < 4; i++)
        parts[i] = buf_new(0);
    mime = mime_parse(text->data, text->len);
    mime_section(parts[0], mime, text->data, "HEADER", &why);
    mime_envelope(parts[1], mime, text->data, false);
    mime_bodystructure(parts[2], mime, text->data, false);
    mime_bodystructure(parts[3], mime, text->data, true);
    mime_free(&mime);
    buf_append(out, parts[part]->data, parts[part]->len);
    for (int i = 0; i < 4; i++)
        if (parts[i]->len > CACHE_PART_MAX)
            keep = false;
    if (keep) {
        size_t headlen;
        off_t end;

        rec = buf_new(0);
        buf_printf(rec, CACHE_MAGIC "%" PRIu32 " %" PRIu32 " %zu %zu %zu %zu\n",
                   mb->uidvalidity, m->uid, parts[0]->len, parts[1]->len, parts[2]->len,
                   parts[3]->len);
        headlen = rec->len;
        for (int i = 0; i < 4; i++)
            buf_append(rec, parts[i]->data, parts[i]->len);
        buf_putc(rec, '\n');
        /* O_APPEND: the record lands at the end whoever else appends, and
         * leaves the offset just past it. */
        if (write(mb->cachefd, rec->data, rec->len) == (ssize_t)rec->len
            && (end = lseek(mb->cachefd, 0, SEEK_CUR)) > 0) {
            m->coff = end - (off_t)rec->len + (off_t)headlen;
            for (int i = 0; i < 4; i++)
                m->clen[i] = (uint32_t)parts[i]->len;
        }
        buf_free(&rec);
    }
    for (int i = 0; i < 4; i++)
        buf_free(&parts[i]);
    return 0;
}

int cache_part(struct imap_mbox *mb, struct imap_msg *m, int part, buf_t *out)
{
    if (cache_get(mb, m, part, out) == 0)
        return 0;
    return cache_fill(mb, m, part, out);
}
