/*
 * maildir - Maildir access: creating a Maildir and delivering into it (see
 * maildir.h).
 *
 * Interface: maildir_create, maildir_unique, maildir_writer_open,
 * maildir_writer_write, maildir_writer_size, maildir_writer_commit,
 * maildir_writer_abort, maildir_deliver.
 *
 * The writer buffers output in one heap block and writes it out when it is
 * full; everything is relative to a descriptor of the Maildir opened once,
 * so a rename of the path under our feet cannot split a delivery across two
 * directories.  maildir_deliver() runs the content through a small filter
 * (mdconv) that turns CRLF into LF across piece boundaries and, while it is
 * still in the message header, collects each header field (unfolded, up to
 * a cap) to look for "Delivered-To: <recipient>" and drops every
 * "Return-Path:" field of the message (only the one written on top, from
 * the envelope, may say who the sender is; Postfix drops them too).
 *
 * Failure modes: as in maildir.h; no function here exits or aborts on bad
 * input (out-of-memory is fatal, as everywhere).
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

#include "buf.h"
#include "durable.h"
#include "maildir.h"
#include "msg.h"
#include "xalloc.h"

#define MAILDIR_BUFSIZE     65536   /* output buffer of a writer */
#define MAILDIR_OPEN_TRIES  10      /* fresh names tried when tmp/NAME exists */
#define MAILDIR_HDR_SLACK   1024    /* header field bytes kept beyond the address */

struct maildir_writer {
    char  *dir;         /* as given, without trailing slashes */
    int    dirfd;
    int    fd;          /* tmp/NAME */
    char  *name;        /* NAME */
    char  *tmpname;     /* "tmp/NAME" */
    char  *fixed;       /* base name for new/ (maildir_writer_set_name) or NULL */
    off_t  size;        /* bytes accepted */
    off_t  nlf;         /* '\n' among them (for W=) */
    int    err;         /* first write error (sticky) */
    int    created;     /* tmp/NAME exists and is ours to remove */
    char  *obuf;
    size_t olen;
};

static char *maildir_why(const char *op, const char *dir, const char *rel, int err)
{
    return xasprintf("%s %s%s%s: %s", op, dir, rel ? "/" : "", rel ? rel : "", strerror(err));
}

static void maildir_set_why(char **why, char *text)
{
    if (why)
        *why = text;
    else
        free(text);
}

/* dir without its trailing slashes ("/" stays "/"). */
static char *maildir_clean(const char *dir)
{
    size_t n = strlen(dir);

    while (n > 1 && dir[n - 1] == '/')
        n--;
    return xstrndup(dir, n);
}

/* mkdir path unless it is a directory already; 1 if made, 0 if there, -1.
 * Looked at first: it is almost always there (one call instead of two). */
static int maildir_mkdir(const char *path)
{
    struct stat st;

    if (stat(path, &st) < 0) {
        if (errno != ENOENT)
            return -1;
        if (mkdir(path, 0700) == 0)
            return 1;
        if (errno != EEXIST || stat(path, &st) < 0)
            return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

int maildir_create(const char *dir, char **why)
{
    static const char *const subs[] = {"tmp", "new", "cur"};
    char *top = maildir_clean(dir), *parent, *slash, *path;
    int made, saved;

    if (why)
        *why = NULL;
    if ((made = maildir_mkdir(top)) < 0)
        goto fail_top;
    if (made) {
        /* The new directory is an entry in its parent: make that durable. */
        slash = strrchr(top, '/');
        parent = slash == NULL ? xstrdup(".") : slash == top ? xstrdup("/")
                 : xstrndup(top, (size_t)(slash - top));
        if (durable_fsync_dir(AT_FDCWD, parent) < 0) {
            saved = errno;
            maildir_set_why(why, maildir_why("fsync", parent, NULL, saved));
            free(parent);
            free(top);
            errno = saved;
            return -1;
        }
        free(parent);
    }
    made = 0;
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        int r;

        path = xasprintf("%s/%s", top, subs[i]);
        r = maildir_mkdir(path);
        saved = errno;
        free(path);
        if (r < 0) {
            maildir_set_why(why, maildir_why("mkdir", top, subs[i], saved));
            free(top);
            errno = saved;
            return -1;
        }
        made |= r;
    }
    if (made && durable_fsync_dir(AT_FDCWD, top) < 0) {
        saved = errno;
        maildir_set_why(why, maildir_why("fsync", top, NULL, saved));
        free(top);
        errno = saved;
        return -1;
    }
    free(top);
    return 0;

fail_top:
    saved = errno;
    maildir_set_why(why, maildir_why("mkdir", top, NULL, saved));
    free(top);
    errno = saved;
    return -1;
}

static char maildir_host[256];

static void maildir_forget_host(void)
{
    maildir_host[0] = '\0';
}

char *maildir_unique(void)
{
    static unsigned long counter;
    char *host = maildir_host;
    buf_t *b = buf_new(0);
    struct timeval tv;
    char *s;

    /* The host name, once a process (a kept delivery process lives for
     * seconds): each call of gethostname() is a system call.  A child
     * looks again (it may be in another UTS namespace). */
    if (host[0] == '\0') {
        static int registered;

        if (!registered && pthread_atfork(NULL, NULL, maildir_forget_host) == 0)
            registered = 1;
        if (gethostname(host, sizeof(maildir_host)) < 0)
            host[0] = '\0';
        host[sizeof(maildir_host) - 1] = '\0';
        if (host[0] == '\0')
            snprintf(host, sizeof(maildir_host), "localhost");
    }
    gettimeofday(&tv, NULL);
    buf_printf(b, "%lld.M%ldP%ldQ%lu.", (long long)tv.tv_sec, (long)tv.tv_usec,
               (long)getpid(), ++counter);
    for (const char *p = host; *p; p++) {
        if (*p == '/')
            buf_append_str(b, "\\057");
        else if (*p == ':')
            buf_append_str(b, "\\072");
        else
            buf_putc(b, *p);
    }
    s = buf_steal(b, NULL);
    buf_free(&b);
    return s;
}

/* ---------------------------------------------------------------- writer */

static void maildir_writer_free(maildir_writer_t **wp)
{
    maildir_writer_t *w = *wp;

    if (w == NULL)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (w->dirfd >= 0)
        close(w->dirfd);
    free(w->dir);
    free(w->name);
    free(w->tmpname);
    free(w->fixed);
    free(w->obuf);
    free(w);
    *wp = NULL;
}

int maildir_writer_open(const char *dir, maildir_writer_t **wp, char **why)
{
    maildir_writer_t *w = xcalloc(1, sizeof(*w));
    int saved;

    *wp = NULL;
    if (why)
        *why = NULL;
    w->fd = -1;
    w->dir = maildir_clean(dir);
    if ((w->dirfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        saved = errno;
        maildir_set_why(why, maildir_why("open", w->dir, NULL, saved));
        goto fail;
    }
    for (int tries = 0; tries < MAILDIR_OPEN_TRIES; tries++) {
        free(w->name);
        free(w->tmpname);
        w->name = maildir_unique();
        w->tmpname = xasprintf("tmp/%s", w->name);
        w->fd = openat(w->dirfd, w->tmpname,
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
        if (w->fd >= 0 || errno != EEXIST)
            break;
    }
    if (w->fd < 0) {
        saved = errno;
        maildir_set_why(why, maildir_why("create", w->dir, w->tmpname, saved));
        goto fail;
    }
    w->created = 1;
    w->obuf = xmalloc(MAILDIR_BUFSIZE);
    *wp = w;
    return 0;

fail:
    maildir_writer_free(&w);
    errno = saved;
    return -1;
}

static int maildir_flush(maildir_writer_t *w)
{
    size_t off = 0;
    ssize_t n;

    if (w->err)
        return -1;
    while (off < w->olen) {
        n = write(w->fd, w->obuf + off, w->olen - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            w->err = n < 0 ? errno : EIO;
            return -1;
        }
        off += (size_t)n;
    }
    w->olen = 0;
    return 0;
}

int maildir_writer_write(maildir_writer_t *w, const void *data, size_t len)
{
    const char *p = data, *end = p + len, *nl;

    if (w->err) {
        errno = w->err;
        return -1;
    }
    for (nl = p; (nl = memchr(nl, '\n', (size_t)(end - nl))) != NULL; nl++)
        w->nlf++;
    w->size += (off_t)len;
    while (len > 0) {
        size_t n = MAILDIR_BUFSIZE - w->olen;

        if (n > len)
            n = len;
        memcpy(w->obuf + w->olen, p, n);
        w->olen += n;
        p += n;
        len -= n;
        if (w->olen == MAILDIR_BUFSIZE && maildir_flush(w) < 0) {
            errno = w->err;
            return -1;
        }
    }
    return 0;
}

void maildir_writer_set_name(maildir_writer_t *w, const char *base)
{
    if (*base == '\0' || strchr(base, '/') || strchr(base, ':'))
        msg_panic("maildir_writer_set_name: bad base name \"%s\"", base);
    free(w->fixed);
    w->fixed = xstrdup(base);
}

off_t maildir_writer_size(const maildir_writer_t *w)
{
    return w->size;
}

void maildir_writer_abort(maildir_writer_t **wp)
{
    maildir_writer_t *w = *wp;
    int saved = errno;

    if (w == NULL)
        return;
    if (w->created)
        unlinkat(w->dirfd, w->tmpname, 0);
    maildir_writer_free(wp);
    errno = saved;
}

/* The first half of a commit: flush, fsync, move into new/ (not yet
 * durable there).  0 with *newname, MAILDIR_DUPLICATE (with *path; the
 * writer is gone), or -1 (with *why; the writer is gone). */
static int maildir_place(maildir_writer_t **wp, int synced, char **newname, char **path,
                         char **why)
{
    maildir_writer_t *w = *wp;
    const char *op = "write";
    struct stat st;
    int saved, fd;

    *newname = NULL;
    if (maildir_flush(w) < 0) {
        errno = w->err;
        goto fail;
    }
    op = "fsync";
    if (!synced && fsync(w->fd) < 0)
        goto fail;
    op = "fstat";
    if (fstat(w->fd, &st) < 0)
        goto fail;
    op = "close";
    fd = w->fd;
    w->fd = -1;
    if (close(fd) < 0)
        goto fail;
    *newname = xasprintf("new/%s,S=%lld,W=%lld", w->fixed ? w->fixed : w->name,
                         (long long)st.st_size, (long long)(st.st_size + w->nlf));
    op = "rename";
    if (durable_rename_noreplace(w->dirfd, w->tmpname, *newname) < 0) {
        saved = errno;
        if (saved == EEXIST && w->fixed) {
            /* The same message was delivered before (a retry after a crash
             * lost the result): keep that copy, drop this one. */
            if (path)
                *path = xasprintf("%s/%s", w->dir, *newname);
            xfree(newname);
            maildir_writer_abort(wp);
            return MAILDIR_DUPLICATE;
        }
        maildir_set_why(why, xasprintf("rename %s/%s to %s: %s", w->dir, w->tmpname,
                                       *newname, strerror(saved)));
        xfree(newname);
        maildir_writer_abort(wp);
        errno = saved;
        return -1;
    }
    w->created = 0;
    return 0;

fail:
    saved = errno;
    maildir_set_why(why, maildir_why(op, w->dir, w->tmpname, saved));
    maildir_writer_abort(wp);
    errno = saved;
    return -1;
}

int maildir_writer_commit(maildir_writer_t **wp, char **path, char **why)
{
    struct maildir_commit c = {.w = *wp};

    *wp = NULL;
    maildir_commit_many(&c, 1);
    if (path)
        *path = c.path;
    else
        free(c.path);
    if (why)
        *why = c.why;
    else
        free(c.why);
    errno = c.err;
    return c.result;
}

/* c[i] failed before it was placed: the writer is aborted. */
static void maildir_commit_fail(struct maildir_commit *c, const char *op, int err)
{
    c->result = -1;
    c->err = err;
    c->why = maildir_why(op, c->w->dir, c->w->tmpname, err);
    maildir_writer_abort(&c->w);
}

void maildir_commit_many(struct maildir_commit *c, size_t n)
{
    int dirfd = -1, saved = 0, synced = 0, fd = -1;
    size_t i;

    for (i = 0; i < n; i++) {
        c[i].path = c[i].why = c[i].placed = NULL;
        c[i].result = c[i].err = 0;
    }
    if (n > 1) {
        /* Every file's data in one syncfs() (one flush of the disk's
         * cache) instead of an fsync each. */
        for (i = 0; i < n; i++) {
            if (maildir_flush(c[i].w) < 0)
                maildir_commit_fail(&c[i], "write", c[i].w->err);
            else if (fd < 0)
                fd = c[i].w->fd;
        }
        if (fd >= 0 && syncfs(fd) < 0) {
            saved = errno;
            for (i = 0; i < n; i++)
                if (c[i].w)
                    maildir_commit_fail(&c[i], "syncfs", saved);
            return;
        }
        synced = 1;
    }
    for (i = 0; i < n; i++) {
        if (c[i].w == NULL)
            continue;
        c[i].result = maildir_place(&c[i].w, synced, &c[i].placed, &c[i].path, &c[i].why);
        c[i].err = c[i].result < 0 ? errno : 0;
        if (c[i].result == 0 && dirfd < 0)
            dirfd = c[i].w->dirfd;
    }
    /* One fsync of new/ makes every name placed durable. */
    if (dirfd >= 0 && durable_fsync_dir(dirfd, "new") < 0)
        saved = errno;
    for (i = 0; i < n; i++) {
        maildir_writer_t *w = c[i].w;

        if (c[i].result != 0 || w == NULL)
            continue;
        if (saved) {
            c[i].why = maildir_why("fsync", w->dir, "new", saved);
            /* Not durable: take it back so that the retry is the only copy. */
            unlinkat(w->dirfd, c[i].placed, 0);
            c[i].result = -1;
            c[i].err = saved;
        } else {
            c[i].path = xasprintf("%s/%s", w->dir, c[i].placed);
        }
        xfree(&c[i].placed);
        maildir_writer_free(&c[i].w);
    }
}

/* ------------------------------------------------------------- delivery */

/* The content filter: CRLF -> LF, the Delivered-To loop scan, and
 * Return-Path: fields from the message dropped (ours goes on top; a
 * client's must not pass for the envelope sender). */
enum mdconv_fate { MDCONV_PASS, MDCONV_HOLD, MDCONV_DROP };

#define MDCONV_HOLD_MAX 256         /* bytes held while a field's name is read */

struct mdconv {
    maildir_out_fn out_fn;
    void       *out_ctx;
    const char *rcpt;
    size_t      cap;            /* longest header field kept */
    int         pending_cr;     /* the previous piece ended in '\r' */
    int         in_header;
    int         line_start;
    int         overflow;       /* the current field exceeded cap */
    int         loop;
    enum mdconv_fate fate;      /* of the current header field's bytes */
    buf_t      *field;          /* the current header field, unfolded */
    buf_t      *held;           /* its first bytes, until its name is known */
};

/* Is this complete, unfolded header field "Delivered-To: <rcpt>"? */
static int mdconv_is_loop(const struct mdconv *c)
{
    const char *p = c->field->data, *end = p + c->field->len, *v, *ve;
    static const char name[] = "Delivered-To";

    if (c->field->len < sizeof(name) || strncasecmp(p, name, sizeof(name) - 1) != 0)
        return 0;
    p += sizeof(name) - 1;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p == end || *p != ':')
        return 0;
    for (v = p + 1; v < end && isspace((unsigned char)*v); v++)
        ;
    for (ve = end; ve > v && isspace((unsigned char)ve[-1]); ve--)
        ;
    if (ve - v >= 2 && *v == '<' && ve[-1] == '>') {
        v++;
        ve--;
    }
    return (size_t)(ve - v) == strlen(c->rcpt) && strncasecmp(v, c->rcpt, (size_t)(ve - v)) == 0;
}

static void mdconv_end_field(struct mdconv *c)
{
    if (c->field->len > 0 && !c->overflow && mdconv_is_loop(c))
        c->loop = 1;
    buf_reset(c->field);
    c->overflow = 0;
}

static void mdconv_field_add(struct mdconv *c, char ch)
{
    if (c->field->len < c->cap)
        buf_putc(c->field, ch);
    else
        c->overflow = 1;
}

/* The held start of a field: is it "Return-Path:"?  Decided once the name
 * differs, or the name and the colon are there; a line end, or more than
 * MDCONV_HOLD_MAX bytes, without a decision lets it pass. */
static void mdconv_decide(struct mdconv *c)
{
    static const char name[] = "return-path";
    const char *h = c->held->data;
    size_t n = c->held->len, i;

    for (i = 0; i < n && i < sizeof(name) - 1; i++)
        if (tolower((unsigned char)h[i]) != name[i]) {
            c->fate = MDCONV_PASS;
            return;
        }
    while (i < n && (h[i] == ' ' || h[i] == '\t'))
        i++;
    if (i < n)
        c->fate = i >= sizeof(name) - 1 && h[i] == ':' ? MDCONV_DROP : MDCONV_PASS;
    else if (n >= MDCONV_HOLD_MAX)
        c->fate = MDCONV_PASS;
}

/* Emit bytes of the current header field according to its fate. */
static int mdconv_field_out(struct mdconv *c, const char *p, size_t len)
{
    if (c->fate == MDCONV_HOLD) {
        const char *nl = memchr(p, '\n', len);
        size_t take = nl ? (size_t)(nl - p) : len;

        if (take > MDCONV_HOLD_MAX - c->held->len)
            take = MDCONV_HOLD_MAX - c->held->len;
        buf_append(c->held, p, take);
        mdconv_decide(c);
        if (c->fate == MDCONV_HOLD && take < len)
            c->fate = MDCONV_PASS;          /* the line ended undecided */
        if (c->fate == MDCONV_HOLD)
            return 0;
        if (c->fate == MDCONV_PASS && c->held->len > 0
            && c->out_fn(c->out_ctx, c->held->data, c->held->len) < 0)
            return -1;
        buf_reset(c->held);
        p += take;
        len -= take;
    }
    if (c->fate == MDCONV_DROP || len == 0)
        return 0;
    return c->out_fn(c->out_ctx, p, len);
}

/* Header bytes: unfold them into field (the loop check) and send each
 * field on or drop it. */
static int mdconv_header(struct mdconv *c, const char *p, size_t len, size_t *used)
{
    size_t i = 0;

    while (i < len) {
        const char *nl;
        size_t seg;

        if (c->line_start) {
            c->line_start = 0;
            if (p[i] == '\n') {                /* the empty line: end of header */
                mdconv_end_field(c);
                c->in_header = 0;
                c->fate = MDCONV_PASS;
                *used = i;
                return 0;
            }
            if (p[i] != ' ' && p[i] != '\t') { /* not a continuation: a new field */
                if (c->fate == MDCONV_HOLD && c->held->len > 0) {
                    c->fate = MDCONV_PASS;
                    if (c->out_fn(c->out_ctx, c->held->data, c->held->len) < 0)
                        return -1;
                    buf_reset(c->held);
                }
                mdconv_end_field(c);
                c->fate = MDCONV_HOLD;
            }
        }
        nl = memchr(p + i, '\n', len - i);
        seg = nl ? (size_t)(nl - (p + i)) + 1 : len - i;
        for (size_t k = 0; k < seg; k++)
            if (p[i + k] != '\n')
                mdconv_field_add(c, p[i + k]);  /* unfold: the line end is dropped */
        if (mdconv_field_out(c, p + i, seg) < 0)
            return -1;
        if (nl)
            c->line_start = 1;
        i += seg;
    }
    *used = len;
    return 0;
}

static int mdconv_out(struct mdconv *c, const char *p, size_t len)
{
    size_t used = 0;

    if (len == 0)
        return 0;
    if (c->in_header) {
        if (mdconv_header(c, p, len, &used) < 0)
            return -1;
        p += used;
        len -= used;
        if (len == 0)
            return 0;
    }
    return c->out_fn(c->out_ctx, p, len);
}

static int mdconv_piece(void *ctx, const void *data, size_t len)
{
    struct mdconv *c = ctx;
    const char *p = data, *end = p + len, *cr;

    if (len == 0)
        return 0;
    if (c->pending_cr) {
        c->pending_cr = 0;
        if (*p == '\n') {
            if (mdconv_out(c, "\n", 1) < 0)
                return -1;
            p++;
        } else if (mdconv_out(c, "\r", 1) < 0) {
            return -1;
        }
    }
    while (p < end) {
        cr = memchr(p, '\r', (size_t)(end - p));
        if (cr == NULL) {
            if (mdconv_out(c, p, (size_t)(end - p)) < 0)
                return -1;
            break;
        }
        if (mdconv_out(c, p, (size_t)(cr - p)) < 0)
            return -1;
        if (cr + 1 == end) {
            c->pending_cr = 1;              /* decided by the next piece */
            break;
        }
        if (cr[1] == '\n') {
            if (mdconv_out(c, "\n", 1) < 0)
                return -1;
            p = cr + 2;
        } else {
            if (mdconv_out(c, "\r", 1) < 0)
                return -1;
            p = cr + 1;
        }
    }
    /* A loop is known once the field after it starts: stop copying then. */
    return c->loop ? MAILDIR_LOOP : 0;
}

int maildir_convert(const struct maildir_delivery *d, maildir_out_fn out, void *ctx)
{
    struct mdconv c = {0};
    int r, saved;

    c.out_fn = out;
    c.out_ctx = ctx;
    c.rcpt = d->recipient;
    c.cap = strlen(d->recipient) + MAILDIR_HDR_SLACK;
    c.in_header = 1;
    c.line_start = 1;
    c.fate = MDCONV_PASS;
    c.field = buf_new(0);
    c.held = buf_new(0);
    if (out(ctx, "Return-Path: <", 14) < 0 || out(ctx, d->sender, strlen(d->sender)) < 0
        || out(ctx, ">\nDelivered-To: ", 16) < 0
        || out(ctx, d->recipient, strlen(d->recipient)) < 0 || out(ctx, "\n", 1) < 0) {
        buf_free(&c.field);
        buf_free(&c.held);
        return -1;
    }
    r = d->source(d->source_ctx, mdconv_piece, &c);
    saved = errno;
    if (r == 0 && c.pending_cr) {
        c.pending_cr = 0;
        r = mdconv_out(&c, "\r", 1) < 0 ? -1 : 0;
    }
    if (r == 0 && c.in_header) {            /* a message that is all header */
        if (c.fate == MDCONV_HOLD && c.held->len > 0
            && out(ctx, c.held->data, c.held->len) < 0)
            r = -1;
        mdconv_end_field(&c);
    }
    buf_free(&c.field);
    buf_free(&c.held);
    if (r == 0 && c.loop)
        r = MAILDIR_LOOP;
    errno = saved;
    return r;
}

static int maildir_writer_out(void *ctx, const void *data, size_t len)
{
    return maildir_writer_write(ctx, data, len);
}

int maildir_deliver(const char *dir, const struct maildir_delivery *d, char **path, char **why)
{
    maildir_writer_t *w;
    int r;

    if (path)
        *path = NULL;
    if ((r = maildir_deliver_write(dir, d, &w, why)) != 0)
        return r;
    return maildir_writer_commit(&w, path, why);
}

int maildir_deliver_write(const char *dir, const struct maildir_delivery *d,
                          maildir_writer_t **wp, char **why)
{
    maildir_writer_t *w;
    int r, saved;

    *wp = NULL;
    if (why)
        *why = NULL;
    if (maildir_writer_open(dir, &w, why) < 0)
        return -1;
    if (d->name)
        maildir_writer_set_name(w, d->name);
    r = maildir_convert(d, maildir_writer_out, w);
    saved = errno;
    if (r == MAILDIR_LOOP) {
        maildir_writer_abort(&w);
        return MAILDIR_LOOP;
    }
    if (r != 0) {
        /* Our write failed (sticky in the writer), or the source did. */
        saved = w->err ? w->err : r < 0 ? saved : EIO;
        if (w->err)
            maildir_set_why(why, maildir_why("write", w->dir, w->tmpname, saved));
        else
            maildir_set_why(why, xasprintf("read message content: %s", strerror(saved)));
        maildir_writer_abort(&w);
        errno = saved;
        return -1;
    }
    *wp = w;
    return 0;
}

/* ------------------------------------------------------------ names */

size_t maildir_base_len(const char *name)
{
    const char *colon = strchr(name, ':');

    return colon ? (size_t)(colon - name) : strlen(name);
}

off_t maildir_name_vsize(const char *name)
{
    size_t base = maildir_base_len(name);

    for (const char *p = name; p + 3 < name + base; p++) {
        if (p[0] == ',' && p[1] == 'W' && p[2] == '=' && isdigit((unsigned char)p[3])) {
            long long v = 0;

            for (p += 3; p < name + base && isdigit((unsigned char)*p); p++) {
                if (v > (1LL << 50))
                    return -1;
                v = v * 10 + (*p - '0');
            }
            return p < name + base && *p != ',' ? -1 : (off_t)v;
        }
    }
    return -1;
}

char *maildir_name_with_flag(const char *name, char flag)
{
    size_t base = maildir_base_len(name), i;
    const char *info = name + base, *flags;

    if (strncmp(info, ":2,", 3) != 0)
        return xasprintf("%.*s:2,%c", (int)base, name, flag);
    flags = info + 3;
    if (strchr(flags, flag))
        return NULL;
    for (i = 0; flags[i] && flags[i] < flag; i++)
        ;
    return xasprintf("%.*s:2,%.*s%c%s", (int)base, name, (int)i, flags, flag, flags + i);
}
