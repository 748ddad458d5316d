/*
 * queue - queue IDs, queue file writer and reader, queue directories.
 *
 * The file format, the ID format and the failure modes are described in
 * queue.h.  Implementation notes: the writer buffers records in memory and
 * writes them in large pieces (a small message is one write() at commit);
 * content is cut into data records of QUEUE_DATA_MAX bytes whatever the
 * piece sizes the caller streams.  The reader walks the records with
 * pread() through a small window; data records are only skipped (their
 * headers checked), never read, until queue_content_copy().
 *
 * Length: this file is over DESIGN §6's ~800 lines on purpose: writer and
 * reader share the format's encoders and validators (status area, NOTIFY,
 * attribute names, byte order), and keeping them in one file keeps them
 * private.  A split would be queue_id.c / queue_write.c / queue_read.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "buf.h"
#include "durable.h"
#include "msg.h"
#include "queue.h"
#include "queue_spare.h"
#include "safe_open.h"
#include "xalloc.h"

const char *const queue_dirs[] = {
    QUEUE_DIR_INCOMING, QUEUE_DIR_ACTIVE, QUEUE_DIR_DEFERRED, QUEUE_DIR_HOLD,
    QUEUE_DIR_CORRUPT, QUEUE_DIR_TMP, QUEUE_DIR_MAILDROP, NULL
};

/* ---------------------------------------------------------------- IDs */

static const char id_alpha[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop";
#define ID_BASE     52
#define ID_SEC_LEN  6
#define ID_USEC_LEN 4
#define ID_SEP      'z'
#define ID_INO_MAX  12

static int id_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'Z')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'p')
        return c - 'a' + 36;
    return -1;
}

static void id_put(char *p, size_t width, uint64_t v)
{
    while (width-- > 0) {
        p[width] = id_alpha[v % ID_BASE];
        v /= ID_BASE;
    }
}

void queue_id_format(char id[QUEUE_ID_SIZE], int64_t sec, uint32_t usec, uint64_t ino)
{
    char tmp[ID_INO_MAX];
    size_t n = 0, i;

    if (sec < 0 || usec >= 1000000)
        msg_panic("queue_id_format: bad time %lld.%u", (long long)sec, usec);
    id_put(id, ID_SEC_LEN, (uint64_t)sec);
    id_put(id + ID_SEC_LEN, ID_USEC_LEN, usec);
    id[ID_SEC_LEN + ID_USEC_LEN] = ID_SEP;
    do {
        tmp[n++] = id_alpha[ino % ID_BASE];
        ino /= ID_BASE;
    } while (ino > 0);
    for (i = 0; i < n; i++)
        id[ID_SEC_LEN + ID_USEC_LEN + 1 + i] = tmp[n - 1 - i];
    id[ID_SEC_LEN + ID_USEC_LEN + 1 + n] = 0;
}

int queue_id_parse(const char *id, int64_t *secp, uint32_t *usecp, uint64_t *inop)
{
    uint64_t sec = 0, usec = 0, ino = 0;
    size_t i, len, ndig;
    int d;

    if (id == NULL)
        return -1;
    len = strnlen(id, QUEUE_ID_SIZE);
    if (len < ID_SEC_LEN + ID_USEC_LEN + 2 || len >= QUEUE_ID_SIZE)
        return -1;
    for (i = 0; i < ID_SEC_LEN + ID_USEC_LEN; i++) {
        if ((d = id_digit((unsigned char)id[i])) < 0)
            return -1;
        if (i < ID_SEC_LEN)
            sec = sec * ID_BASE + (uint64_t)d;
        else
            usec = usec * ID_BASE + (uint64_t)d;
    }
    if (usec >= 1000000 || id[i++] != ID_SEP)
        return -1;
    ndig = len - i;
    if (ndig > ID_INO_MAX || (ndig > 1 && id[i] == '0'))
        return -1;
    for (; i < len; i++) {
        if ((d = id_digit((unsigned char)id[i])) < 0)
            return -1;
        if (ino > (UINT64_MAX - (uint64_t)d) / ID_BASE)
            return -1;
        ino = ino * ID_BASE + (uint64_t)d;
    }
    if (secp)
        *secp = (int64_t)sec;
    if (usecp)
        *usecp = (uint32_t)usec;
    if (inop)
        *inop = ino;
    return 0;
}

int queue_id_valid(const char *id)
{
    return queue_id_parse(id, NULL, NULL, NULL) == 0;
}

/* ------------------------------------------------------- byte order */

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void put64(unsigned char *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

/* ------------------------------------------------------- status area */

static int dsn_valid(const char *s, size_t max)
{
    size_t i = 0;

    for (; i < max && s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
            return 0;
    return i <= QUEUE_DSN_LEN;
}

static int status_valid(const queue_status_t *st)
{
    return st->status >= QUEUE_RCPT_PENDING && st->status <= QUEUE_RCPT_DEFERRED
        && (st->flags & ~(unsigned)QUEUE_RCPT_F_ALL) == 0
        && memchr(st->dsn, 0, sizeof(st->dsn)) != NULL
        && dsn_valid(st->dsn, sizeof(st->dsn)) && st->next_attempt >= 0;
}

static void status_encode(unsigned char *p, const queue_status_t *st)
{
    memset(p, 0, QUEUE_STATUS_SIZE);
    p[0] = (unsigned char)((unsigned)st->status | st->flags);
    memcpy(p + 1, st->dsn, strlen(st->dsn));
    put32(p + 12, st->attempts);
    put64(p + 16, (uint64_t)st->next_attempt);
}

/* 0 if the on-disk status area is well-formed. */
static int status_decode(const unsigned char *p, queue_status_t *st)
{
    size_t i, n;

    if ((p[0] & ~QUEUE_RCPT_F_ALL) > QUEUE_RCPT_DEFERRED)
        return -1;
    memset(st, 0, sizeof(*st));
    st->status = p[0] & ~QUEUE_RCPT_F_ALL;
    st->flags = p[0] & QUEUE_RCPT_F_ALL;
    n = strnlen((const char *)p + 1, QUEUE_DSN_LEN);
    for (i = n; i < QUEUE_DSN_LEN; i++)
        if (p[1 + i] != 0)
            return -1;
    memcpy(st->dsn, p + 1, n);
    if (!dsn_valid(st->dsn, sizeof(st->dsn)))
        return -1;
    st->attempts = get32(p + 12);
    st->next_attempt = (int64_t)get64(p + 16);
    return st->next_attempt < 0 ? -1 : 0;
}

static int notify_valid(unsigned n)
{
    if (n & ~0x0fu)
        return 0;
    return !(n & QUEUE_NOTIFY_NEVER) || n == QUEUE_NOTIFY_NEVER;
}

static int attr_name_valid(const char *s, size_t len)
{
    size_t i;

    if (len == 0 || len > QUEUE_ATTR_NAME_MAX)
        return 0;
    for (i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

/* ------------------------------------------------------------ writer */

enum { W_ENV, W_ATTR, W_RCPT, W_DATA };

struct queue_writer {
    int      qdirfd;
    int      fd;
    char    *tmpname;           /* "tmp/..." or "maildrop/.tmp..." */
    const char *final_dir;      /* incoming/ or maildrop/ */
    int      maildrop;          /* written by sendmail: see queue_maildrop_open */
    int      recycled;          /* a spare: cut to what we wrote at commit */
    off_t    old_size;          /* a spare's size when claimed */
    off_t    written;           /* bytes written so far, from offset 0 */
    char     id[QUEUE_ID_SIZE];
    int64_t  sec;
    uint32_t usec;
    int      phase;
    int      err;               /* sticky errno, 0 = fine */
    buf_t   *out;               /* records not yet written */
    buf_t   *pend;              /* content for the next data record */
    uint64_t content_len;
    uint32_t nrcpt;
};

#define W_FLUSH_AT  (256 * 1024)

static int write_all(int fd, const char *p, size_t len)
{
    ssize_t n;

    while (len > 0) {
        if ((n = write(fd, p, len)) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void w_record(queue_writer_t *w, int type, const void *a, size_t alen,
                     const void *b, size_t blen)
{
    unsigned char hdr[QUEUE_HDR_SIZE];

    hdr[0] = (unsigned char)type;
    put32(hdr + 1, (uint32_t)(alen + blen));
    buf_append(w->out, hdr, sizeof(hdr));
    if (alen)
        buf_append(w->out, a, alen);
    if (blen)
        buf_append(w->out, b, blen);
}

static int w_flush(queue_writer_t *w)
{
    if (w->err) {
        errno = w->err;
        return -1;
    }
    if (write_all(w->fd, w->out->data, w->out->len) < 0) {
        w->err = errno;
        return -1;
    }
    w->written += (off_t)w->out->len;
    buf_reset(w->out);
    return 0;
}

static int w_check(queue_writer_t *w)
{
    if (w->err) {
        errno = w->err;
        return -1;
    }
    return 0;
}

static int writer_open(int qdirfd, int maildrop, queue_writer_t **wp)
{
    static int64_t last_sec;
    static uint32_t last_usec;
    static unsigned counter;
    queue_writer_t *w;
    struct timeval tv;
    struct stat st;
    unsigned char ver[4] = { 'P', 'H', 'Q', QUEUE_VERSION };
    char *name = NULL;
    char *spare;
    int fd = -1, tries, saved, recycled = 0;

    *wp = NULL;
    gettimeofday(&tv, NULL);
    for (tries = 0; tries < 100; tries++) {
        name = xasprintf("%s/%s%ld.%lld%06ld.%u", maildrop ? QUEUE_DIR_MAILDROP : QUEUE_DIR_TMP,
                         maildrop ? QUEUE_MAILDROP_TMP_PREFIX : "", (long)getpid(),
                         (long long)tv.tv_sec, (long)tv.tv_usec, counter++);
        /* A spare queue file first (queue_spare.h), under its own name;
         * sendmail's files are the caller's own and never from the pool. */
        if (!maildrop && tries == 0 && (fd = queue_spare_claim(qdirfd, &spare)) >= 0) {
            free(name);
            name = spare;
            recycled = 1;
            break;
        }
        fd = openat(qdirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                    maildrop ? 0644 : 0600);
        if (fd >= 0 || errno != EEXIST)
            break;
        xfree(&name);
    }
    if (fd < 0) {
        saved = errno;
        free(name);
        errno = saved;
        return -1;
    }
    /* Whatever the caller's umask: pickup reads the file as "other". */
    if ((maildrop && fchmod(fd, 0644) < 0) || fstat(fd, &st) < 0) {
        saved = errno;
        unlinkat(qdirfd, name, 0);
        close(fd);
        free(name);
        errno = saved;
        return -1;
    }
    /* Never the same microsecond twice in this process: IDs increase. */
    gettimeofday(&tv, NULL);
    if (tv.tv_sec < last_sec || (tv.tv_sec == last_sec && (uint32_t)tv.tv_usec <= last_usec)) {
        tv.tv_sec = last_sec;
        tv.tv_usec = (long)last_usec + 1;
        if (tv.tv_usec >= 1000000) {
            tv.tv_sec++;
            tv.tv_usec = 0;
        }
    }
    last_sec = tv.tv_sec;
    last_usec = (uint32_t)tv.tv_usec;

    w = xcalloc(1, sizeof(*w));
    w->qdirfd = qdirfd;
    w->fd = fd;
    w->tmpname = name;
    w->maildrop = maildrop;
    w->recycled = recycled;
    w->old_size = st.st_size;
    w->final_dir = maildrop ? QUEUE_DIR_MAILDROP : QUEUE_DIR_INCOMING;
    w->sec = tv.tv_sec;
    w->usec = (uint32_t)tv.tv_usec;
    queue_id_format(w->id, w->sec, w->usec, (uint64_t)st.st_ino);
    w->out = buf_new(0);
    w->pend = buf_new(0);
    w->phase = W_ENV;
    w_record(w, QUEUE_REC_VERSION, ver, sizeof(ver), NULL, 0);
    *wp = w;
    return 0;
}

int queue_writer_open(int qdirfd, queue_writer_t **wp)
{
    return writer_open(qdirfd, 0, wp);
}

int queue_maildrop_open(int qdirfd, queue_writer_t **wp)
{
    return writer_open(qdirfd, 1, wp);
}

const char *queue_writer_id(const queue_writer_t *w)
{
    return w->id;
}

static int too_long(const char *s)
{
    if (s && strlen(s) > QUEUE_FIELD_MAX) {
        errno = EMSGSIZE;
        return 1;
    }
    return 0;
}

int queue_writer_envelope(queue_writer_t *w, const queue_env_t *env)
{
    unsigned char t[12], ret;

    if (w->phase != W_ENV)
        msg_panic("queue_writer_envelope: called twice or out of order");
    if (env->sender == NULL || (env->ret != QUEUE_RET_NONE && env->ret != QUEUE_RET_FULL
                                && env->ret != QUEUE_RET_HDRS) || env->arrival_usec >= 1000000
        || env->arrival_sec < 0)
        msg_panic("queue_writer_envelope: bad arguments");
    if (w_check(w) < 0)
        return -1;
    if (too_long(env->sender) || too_long(env->envid))
        return -1;
    if (env->arrival_sec == 0) {
        put64(t, (uint64_t)w->sec);
        put32(t + 8, w->usec);
    } else {
        put64(t, (uint64_t)env->arrival_sec);
        put32(t + 8, env->arrival_usec);
    }
    w_record(w, QUEUE_REC_ARRIVAL, t, sizeof(t), NULL, 0);
    w_record(w, QUEUE_REC_SENDER, env->sender, strlen(env->sender), NULL, 0);
    if (env->envid && *env->envid)
        w_record(w, QUEUE_REC_ENVID, env->envid, strlen(env->envid), NULL, 0);
    if (env->ret != QUEUE_RET_NONE) {
        ret = (unsigned char)env->ret;
        w_record(w, QUEUE_REC_RET, &ret, 1, NULL, 0);
    }
    w->phase = W_ATTR;
    return 0;
}

int queue_writer_attr(queue_writer_t *w, const char *name, const char *value)
{
    size_t nlen = strlen(name), vlen = strlen(value);

    if (w->phase != W_ATTR)
        msg_panic("queue_writer_attr: out of order");
    if (!attr_name_valid(name, nlen))
        msg_panic("queue_writer_attr: bad attribute name");
    if (w_check(w) < 0)
        return -1;
    if (nlen + 1 + vlen > QUEUE_FIELD_MAX) {
        errno = EMSGSIZE;
        return -1;
    }
    buf_append(w->pend, name, nlen);
    buf_putc(w->pend, '=');
    buf_append(w->pend, value, vlen);
    w_record(w, QUEUE_REC_ATTR, w->pend->data, w->pend->len, NULL, 0);
    buf_reset(w->pend);
    return 0;
}

int queue_writer_rcpt(queue_writer_t *w, const queue_rcpt_spec_t *r)
{
    unsigned char head[QUEUE_STATUS_SIZE + 1];
    queue_status_t st;
    size_t alen, olen, clen;

    if (w->phase != W_ATTR && w->phase != W_RCPT)
        msg_panic("queue_writer_rcpt: out of order");
    if (r->address == NULL || *r->address == 0 || !notify_valid(r->notify))
        msg_panic("queue_writer_rcpt: bad arguments");
    if (w_check(w) < 0)
        return -1;
    alen = strlen(r->address);
    olen = r->orig ? strlen(r->orig) : 0;
    clen = r->orcpt ? strlen(r->orcpt) : 0;
    if (alen > QUEUE_FIELD_MAX || olen > QUEUE_FIELD_MAX || clen > QUEUE_FIELD_MAX
        || sizeof(head) + alen + olen + clen + 2 > QUEUE_FIELD_MAX) {
        errno = EMSGSIZE;
        return -1;
    }
    memset(&st, 0, sizeof(st));
    st.status = QUEUE_RCPT_PENDING;
    status_encode(head, &st);
    head[QUEUE_STATUS_SIZE] = (unsigned char)r->notify;
    buf_append(w->pend, head, sizeof(head));
    buf_append(w->pend, r->address, alen + 1);
    if (olen)
        buf_append(w->pend, r->orig, olen);
    buf_putc(w->pend, 0);
    if (clen)
        buf_append(w->pend, r->orcpt, clen);
    w_record(w, QUEUE_REC_RCPT, w->pend->data, w->pend->len, NULL, 0);
    buf_reset(w->pend);
    w->nrcpt++;
    w->phase = W_RCPT;
    if (w->out->len >= W_FLUSH_AT)
        return w_flush(w);
    return 0;
}

int queue_writer_content(queue_writer_t *w, const void *data, size_t len)
{
    const char *p = data;
    size_t room;

    if (w->phase != W_RCPT && w->phase != W_DATA)
        msg_panic("queue_writer_content: out of order");
    w->phase = W_DATA;
    if (w_check(w) < 0)
        return -1;
    w->content_len += len;
    while (len > 0) {
        room = QUEUE_DATA_MAX - w->pend->len;
        if (room > len)
            room = len;
        buf_append(w->pend, p, room);
        p += room;
        len -= room;
        if (w->pend->len == QUEUE_DATA_MAX) {
            w_record(w, QUEUE_REC_DATA, w->pend->data, w->pend->len, NULL, 0);
            buf_reset(w->pend);
            if (w->out->len >= W_FLUSH_AT && w_flush(w) < 0)
                return -1;
        }
    }
    return 0;
}

int queue_writer_copy_fd(queue_writer_t *w, int fd, uint64_t start, uint64_t len,
                         void (*observe)(void *ctx, const char *data, size_t len), void *ctx)
{
    char *chunk = xmalloc(QUEUE_DATA_MAX);
    uint64_t off = 0;
    int rc = 0;

    while (off < len) {
        size_t want = len - off < QUEUE_DATA_MAX ? (size_t)(len - off) : QUEUE_DATA_MAX;
        ssize_t n = pread(fd, chunk, want, (off_t)(start + off));

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EBADMSG;
            rc = -1;
            break;
        }
        if (observe)
            observe(ctx, chunk, (size_t)n);
        if (queue_writer_content(w, chunk, (size_t)n) < 0) {
            rc = -1;
            break;
        }
        off += (uint64_t)n;
    }
    free(chunk);
    return rc;
}

uint64_t queue_writer_content_len(const queue_writer_t *w)
{
    return w->content_len;
}

static void w_free(queue_writer_t **wp, int unlink_tmp)
{
    queue_writer_t *w = *wp;
    int saved = errno;

    if (w == NULL)
        return;
    if (w->fd >= 0)
        close(w->fd);
    /* A spare stays one (tmp/spare.ID) whatever was written into it. */
    if (unlink_tmp && w->tmpname && !w->recycled)
        unlinkat(w->qdirfd, w->tmpname, 0);
    free(w->tmpname);
    buf_free(&w->out);
    buf_free(&w->pend);
    free(w);
    *wp = NULL;
    errno = saved;
}

void queue_writer_abort(queue_writer_t **wp)
{
    w_free(wp, 1);
}

/* A spare was written from offset 0 over an older message: cut it where
 * we stopped, if the old one was longer. */
static int w_truncate(queue_writer_t *w)
{
    return w->old_size > w->written ? ftruncate(w->fd, w->written) : 0;
}

int queue_writer_commit(queue_writer_t **wp)
{
    queue_writer_t *w = *wp;
    unsigned char end[12];
    char *final;

    if (w->phase != W_RCPT && w->phase != W_DATA)
        msg_panic("queue_writer_commit: no recipients");
    if (w->pend->len > 0) {
        w_record(w, QUEUE_REC_DATA, w->pend->data, w->pend->len, NULL, 0);
        buf_reset(w->pend);
    }
    put64(end, w->content_len);
    put32(end + 8, w->nrcpt);
    w_record(w, QUEUE_REC_END, end, sizeof(end), NULL, 0);
    if (w_flush(w) < 0 || (w->recycled && w_truncate(w) < 0) || fsync(w->fd) < 0) {
        w_free(wp, 1);
        return -1;
    }
    final = xasprintf("%s/%s", w->final_dir, w->id);
    if (durable_rename_noreplace(w->qdirfd, w->tmpname, final) < 0) {
        free(final);
        w_free(wp, 1);
        return -1;
    }
    /* maildrop/ cannot be opened for reading by its writer (mode 1730):
     * syncfs() makes the new name durable instead. */
    if ((w->maildrop ? syncfs(w->fd) : durable_fsync_dir(w->qdirfd, w->final_dir)) < 0) {
        int saved = errno;

        unlinkat(w->qdirfd, final, 0);
        free(final);
        w_free(wp, 0);
        errno = saved;
        return -1;
    }
    free(final);
    w_free(wp, 0);
    return 0;
}

/* ------------------------------------------------------------ reader */

#define R_WINDOW (64 * 1024)

struct rd {
    int     fd;
    off_t   size;
    unsigned char *win;
    size_t  wincap;
    size_t  winlen;
    off_t   winoff;
};

/* Make [off, off+n) available at *pp; -1 on a read error (errno). The
 * caller has checked that off + n <= size. */
static int rd_get(struct rd *r, off_t off, size_t n, const unsigned char **pp)
{
    size_t want, got = 0;
    ssize_t k;

    if (off >= r->winoff && (uint64_t)(off - r->winoff) + n <= r->winlen) {
        *pp = r->win + (off - r->winoff);
        return 0;
    }
    want = n > R_WINDOW ? n : R_WINDOW;
    if ((uint64_t)(r->size - off) < want)
        want = (size_t)(r->size - off);
    if (want > r->wincap) {
        r->win = xrealloc(r->win, want);
        r->wincap = want;
    }
    r->winoff = off;
    r->winlen = 0;
    while (got < want) {
        k = pread(r->fd, r->win + got, want - got, off + (off_t)got);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (k == 0)
            break;
        got += (size_t)k;
    }
    r->winlen = got;
    if (got < n) {
        errno = EBADMSG;        /* the file shrank under us */
        return -1;
    }
    *pp = r->win;
    return 0;
}

static char *strdup_n(const unsigned char *p, size_t n)
{
    return xstrndup((const char *)p, n);
}

void queue_file_free(queue_file_t **qp)
{
    queue_file_t *q = *qp;
    size_t i;

    if (q == NULL)
        return;
    free(q->sender);
    free(q->envid);
    for (i = 0; i < q->nattr; i++) {
        free(q->attrs[i].name);
        free(q->attrs[i].value);
    }
    free(q->attrs);
    for (i = 0; i < q->nrcpt; i++) {
        free(q->rcpts[i].address);
        free(q->rcpts[i].orig);
        free(q->rcpts[i].orcpt);
    }
    free(q->rcpts);
    free(q);
    *qp = NULL;
}

/* Parse one recipient record payload; NULL or the reason it is bad. */
static const char *parse_rcpt(queue_file_t *q, const unsigned char *p, size_t len, off_t off)
{
    queue_rcpt_t r;
    const unsigned char *s, *nul1, *nul2;
    size_t rest;

    if (len < QUEUE_STATUS_SIZE + 1 + 3)
        return "recipient record too short";
    memset(&r, 0, sizeof(r));
    if (status_decode(p, &r.st) < 0)
        return "bad recipient status area";
    r.notify = p[QUEUE_STATUS_SIZE];
    if (!notify_valid(r.notify))
        return "bad NOTIFY flags";
    s = p + QUEUE_STATUS_SIZE + 1;
    rest = len - QUEUE_STATUS_SIZE - 1;
    if ((nul1 = memchr(s, 0, rest)) == NULL
        || (nul2 = memchr(nul1 + 1, 0, rest - (size_t)(nul1 + 1 - s))) == NULL
        || memchr(nul2 + 1, 0, rest - (size_t)(nul2 + 1 - s)) != NULL)
        return "recipient record needs exactly two NUL separators";
    if (nul1 == s)
        return "empty recipient address";
    r.address = strdup_n(s, (size_t)(nul1 - s));
    if (nul2 > nul1 + 1)
        r.orig = strdup_n(nul1 + 1, (size_t)(nul2 - nul1 - 1));
    if (s + rest > nul2 + 1)
        r.orcpt = strdup_n(nul2 + 1, (size_t)(s + rest - nul2 - 1));
    r.status_offset = off + QUEUE_HDR_SIZE;
    q->rcpts = xreallocarray(q->rcpts, q->nrcpt + 1, sizeof(*q->rcpts));
    q->rcpts[q->nrcpt++] = r;
    return NULL;
}

enum { P_VERSION, P_ENV, P_RCPT, P_DATA };

int queue_read(int fd, queue_file_t **qp, char **why)
{
    struct rd r = { .fd = fd };
    struct stat st;
    queue_file_t *q;
    const unsigned char *h, *p;
    const char *bad = NULL;
    off_t off = 0;
    uint32_t len;
    int type, phase = P_VERSION, seen_t = 0, seen_e = 0, seen_r = 0, done = 0;
    char tmp[QUEUE_ATTR_NAME_MAX + 1];

    *qp = NULL;
    if (why)
        *why = NULL;
    if (fstat(fd, &st) < 0) {
        if (why)
            *why = xasprintf("fstat: %s", strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        if (why)
            *why = xstrdup("not a regular file");
        errno = EBADMSG;
        return -1;
    }
    r.size = st.st_size;
    q = xcalloc(1, sizeof(*q));
    q->fd = fd;
    q->size = st.st_size;

    while (!done && bad == NULL) {
        if (off == r.size) {
            bad = off == 0 ? "empty file" : "no end record";
            break;
        }
        if (r.size - off < QUEUE_HDR_SIZE) {
            bad = "truncated record header";
            break;
        }
        if (rd_get(&r, off, QUEUE_HDR_SIZE, &h) < 0)
            goto io_error;
        type = h[0];
        len = get32(h + 1);
        if ((uint64_t)len > (uint64_t)(r.size - off - QUEUE_HDR_SIZE)) {
            bad = "record length runs past the end of the file";
            break;
        }
        if (phase == P_VERSION && type != QUEUE_REC_VERSION) {
            bad = "first record is not the version record";
            break;
        }
        if (type == QUEUE_REC_DATA) {
            if (phase != P_RCPT && phase != P_DATA) {
                bad = "data record out of order";
                break;
            }
            if (len == 0 || len > QUEUE_DATA_MAX) {
                bad = "bad data record length";
                break;
            }
            if (phase == P_RCPT)
                q->content_offset = off;
            phase = P_DATA;
            q->content_len += len;
            q->ndata++;
            off += QUEUE_HDR_SIZE + (off_t)len;
            continue;
        }
        if (len > QUEUE_FIELD_MAX) {
            bad = "record too long";
            break;
        }
        if (rd_get(&r, off + QUEUE_HDR_SIZE, len, &p) < 0)
            goto io_error;
        switch (type) {
        case QUEUE_REC_VERSION:
            if (phase != P_VERSION)
                bad = "version record not first";
            else if (len != 4 || memcmp(p, "PHQ", 3) != 0)
                bad = "bad version record";
            else if (p[3] != QUEUE_VERSION)
                bad = "unsupported queue file version";
            phase = P_ENV;
            break;
        case QUEUE_REC_ARRIVAL:
            if (phase != P_ENV || seen_t++)
                bad = "arrival record out of order or repeated";
            else if (len != 12 || (int64_t)get64(p) < 0 || get32(p + 8) >= 1000000)
                bad = "bad arrival record";
            else {
                q->arrival_sec = (int64_t)get64(p);
                q->arrival_usec = get32(p + 8);
            }
            break;
        case QUEUE_REC_SENDER:
            if (phase != P_ENV || q->sender)
                bad = "sender record out of order or repeated";
            else if (memchr(p, 0, len))
                bad = "NUL in sender";
            else
                q->sender = strdup_n(p, len);
            break;
        case QUEUE_REC_ENVID:
            if (phase != P_ENV || seen_e++)
                bad = "ENVID record out of order or repeated";
            else if (len == 0 || memchr(p, 0, len))
                bad = "bad ENVID record";
            else
                q->envid = strdup_n(p, len);
            break;
        case QUEUE_REC_RET:
            if (phase != P_ENV || seen_r++)
                bad = "RET record out of order or repeated";
            else if (len != 1 || (p[0] != QUEUE_RET_FULL && p[0] != QUEUE_RET_HDRS))
                bad = "bad RET record";
            else
                q->ret = p[0];
            break;
        case QUEUE_REC_ATTR: {
            const unsigned char *eq = memchr(p, '=', len);

            if (phase != P_ENV)
                bad = "attribute record out of order";
            else if (eq == NULL || !attr_name_valid((const char *)p, (size_t)(eq - p))
                     || memchr(p, 0, len))
                bad = "bad attribute record";
            else {
                q->attrs = xreallocarray(q->attrs, q->nattr + 1, sizeof(*q->attrs));
                memcpy(tmp, p, (size_t)(eq - p));
                tmp[eq - p] = 0;
                q->attrs[q->nattr].name = xstrdup(tmp);
                q->attrs[q->nattr].value = strdup_n(eq + 1, len - (size_t)(eq + 1 - p));
                q->nattr++;
            }
            break;
        }
        case QUEUE_REC_RCPT:
            if (phase == P_ENV && (!seen_t || q->sender == NULL))
                bad = "recipient before arrival time and sender";
            else if (phase != P_ENV && phase != P_RCPT)
                bad = "recipient record out of order";
            else if ((bad = parse_rcpt(q, p, len, off)) == NULL)
                phase = P_RCPT;
            break;
        case QUEUE_REC_END:
            if (phase != P_RCPT && phase != P_DATA)
                bad = "end record before any recipient";
            else if (len != 12)
                bad = "bad end record";
            else if (get64(p) != q->content_len || get32(p + 8) != q->nrcpt)
                bad = "end record does not match the content length or recipient count";
            else if (off + QUEUE_HDR_SIZE + (off_t)len != r.size)
                bad = "garbage after the end record";
            else {
                if (phase == P_RCPT)
                    q->content_offset = off;
                done = 1;
            }
            break;
        default:
            bad = "unknown record type";
            break;
        }
        if (bad == NULL)
            off += QUEUE_HDR_SIZE + (off_t)len;
    }
    free(r.win);
    if (bad) {
        if (why)
            *why = xasprintf("offset %lld: %s", (long long)off, bad);
        queue_file_free(&q);
        errno = EBADMSG;
        return -1;
    }
    *qp = q;
    return 0;

io_error: {
        int saved = errno;

        if (why)
            *why = xasprintf("offset %lld: read: %s", (long long)off, strerror(saved));
        free(r.win);
        queue_file_free(&q);
        errno = saved;
        return -1;
    }
}

const char *queue_attr(const queue_file_t *q, const char *name)
{
    size_t i;

    for (i = 0; i < q->nattr; i++)
        if (strcmp(q->attrs[i].name, name) == 0)
            return q->attrs[i].value;
    return NULL;
}

static int pread_all(int fd, void *buf, size_t len, off_t off)
{
    char *p = buf;
    ssize_t n;

    while (len > 0) {
        if ((n = pread(fd, p, len, off)) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = EBADMSG;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

int queue_content_copy(const queue_file_t *q,
                       int (*fn)(void *ctx, const void *data, size_t len), void *ctx)
{
    unsigned char hdr[QUEUE_HDR_SIZE];
    char *chunk = NULL;
    off_t off = q->content_offset;
    size_t i;
    uint32_t len;
    int ret = 0;

    if (q->ndata > 0)
        chunk = xmalloc(QUEUE_DATA_MAX);
    for (i = 0; i < q->ndata && ret == 0; i++) {
        if (pread_all(q->fd, hdr, sizeof(hdr), off) < 0) {
            ret = -1;
            break;
        }
        len = get32(hdr + 1);
        if (hdr[0] != QUEUE_REC_DATA || len == 0 || len > QUEUE_DATA_MAX) {
            errno = EBADMSG;
            ret = -1;
            break;
        }
        if (pread_all(q->fd, chunk, len, off + QUEUE_HDR_SIZE) < 0) {
            ret = -1;
            break;
        }
        ret = fn(ctx, chunk, len);
        off += QUEUE_HDR_SIZE + (off_t)len;
    }
    if (ret == -1) {
        int saved = errno;

        free(chunk);
        errno = saved;
        return -1;
    }
    free(chunk);
    return ret;
}

static int to_fd(void *ctx, const void *data, size_t len)
{
    return write_all(*(int *)ctx, data, len) < 0 ? -1 : 0;
}

int queue_content_to_fd(const queue_file_t *q, int outfd)
{
    return queue_content_copy(q, to_fd, &outfd);
}

/* ------------------------------------------------------ status update */

int queue_set_rcpt_status(int fd, off_t offset, const queue_status_t *st, int flags)
{
    unsigned char hdr[QUEUE_HDR_SIZE], area[QUEUE_STATUS_SIZE];
    ssize_t n;

    if (!status_valid(st)) {
        errno = EINVAL;
        return -1;
    }
    if (offset < QUEUE_HDR_SIZE + 4 + QUEUE_HDR_SIZE) {
        errno = EBADMSG;
        return -1;
    }
    if (pread_all(fd, hdr, sizeof(hdr), offset - QUEUE_HDR_SIZE) < 0)
        return -1;
    if (hdr[0] != QUEUE_REC_RCPT || get32(hdr + 1) < QUEUE_STATUS_SIZE + 4
        || get32(hdr + 1) > QUEUE_FIELD_MAX) {
        errno = EBADMSG;
        return -1;
    }
    status_encode(area, st);
    while ((n = pwrite(fd, area, sizeof(area), offset)) < 0 && errno == EINTR)
        ;
    if (n < 0)
        return -1;
    if (n != (ssize_t)sizeof(area)) {
        errno = EIO;
        return -1;
    }
    if ((flags & QUEUE_SYNC) && fdatasync(fd) < 0)
        return -1;
    return 0;
}

/* ------------------------------------------------------- directories */

int queue_dir_valid(const char *dir)
{
    size_t i;

    for (i = 0; dir && queue_dirs[i]; i++)
        if (strcmp(dir, queue_dirs[i]) == 0)
            return 1;
    return 0;
}

static char *qpath(const char *dir, const char *id)
{
    if (!queue_dir_valid(dir) || !queue_id_valid(id)) {
        errno = EINVAL;
        return NULL;
    }
    return xasprintf("%s/%s", dir, id);
}

int queue_open(int qdirfd, const char *dir, const char *id, int oflags, const char **why)
{
    const char *reason;
    struct stat dst;
    uid_t owner;
    int dfd, fd, saved;

    if (why == NULL)
        why = &reason;
    if (!queue_dir_valid(dir) || !queue_id_valid(id) || (oflags & O_CREAT)) {
        *why = "not a queue directory and ID";
        errno = EINVAL;
        return -1;
    }
    /* The directory itself is root's to replace (queue_directory is
     * root's, mode 0755); its owner is whose files the queue holds. */
    if ((dfd = openat(qdirfd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0
        || fstat(dfd, &dst) < 0) {
        saved = errno;
        if (dfd >= 0)
            close(dfd);
        *why = "cannot open its directory";
        errno = saved;
        return -1;
    }
    owner = dst.st_uid;
    /* maildrop/: the submitter's own file, whoever that is (pickup holds
     * the owner to the submit_uid record). */
    fd = safe_open(dfd, id, oflags, &owner, strcmp(dir, QUEUE_DIR_MAILDROP) == 0 ? 0 : 1, NULL,
                   why);
    saved = errno;
    close(dfd);
    errno = saved;
    return fd;
}

int queue_open_refused(int err)
{
    return err == ELOOP || err == EINVAL || err == EMLINK || err == EPERM;
}

int queue_move(int qdirfd, const char *from, const char *to, const char *id, int flags)
{
    char *src = qpath(from, id), *dst = qpath(to, id);
    int ret = -1, saved;

    if (src && dst && renameat(qdirfd, src, qdirfd, dst) == 0)
        ret = (flags & QUEUE_SYNC) ? durable_fsync_dir(qdirfd, to) : 0;
    saved = errno;
    free(src);
    free(dst);
    errno = saved;
    return ret;
}

int queue_remove(int qdirfd, const char *dir, const char *id)
{
    char *p = qpath(dir, id);
    int ret, saved;

    if (p == NULL)
        return -1;
    ret = unlinkat(qdirfd, p, 0);
    saved = errno;
    free(p);
    errno = saved;
    return ret;
}
