/*
 * cmd_select.c - IMAP commands of the selected state: CHECK, CLOSE,
 * UNSELECT, EXPUNGE and UID EXPUNGE (UIDPLUS), STORE, COPY and MOVE (with
 * COPYUID: copies are hard links, moves are renames), SEARCH (ESEARCH
 * and SEARCHRES return options).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "durable.h"
#include "folders.h"
#include "imapd.h"
#include "imapmime.h"
#include "imapsearch.h"
#include "maildir.h"
#include "msg.h"
#include "user.h"
#include "xalloc.h"

void client_put_msg_flags(struct imap_client *c, const struct imap_msg *m);

/* Flags and keywords of a flag list (or of loose flag atoms). */
int cmd_flag_list(struct imap_mbox *mb, const struct imap_arg *a, bool create, unsigned *flags,
                  uint32_t **kwp, uint32_t *nkwp, const char **why)
{
    const struct imap_arg *items = a->type == IMAP_ARG_LIST ? a->list : a;
    size_t n = a->type == IMAP_ARG_LIST ? a->nlist : 1;
    uint32_t *kw = NULL, nkw = 0;

    *flags = 0;
    *kwp = NULL;
    *nkwp = 0;
    for (size_t i = 0; i < n; i++) {
        const char *f = items[i].str;
        unsigned bit;

        if (items[i].type != IMAP_ARG_ATOM) {
            *why = "Invalid flag.";
            free(kw);
            return -1;
        }
        if (f[0] == '\\') {
            if ((bit = imap_flag_bit(f)) == 0 || bit == IMAP_F_RECENT) {
                *why = bit ? "\\Recent cannot be set." : "Invalid system flag.";
                free(kw);
                return -1;
            }
            *flags |= bit;
            continue;
        }
        if (!imap_keyword_ok(f)) {
            *why = "Invalid keyword.";
            free(kw);
            return -1;
        }
        uint32_t id = mbox_keyword_id(mb, f, create);

        if (id == UINT32_MAX && !create)
            continue;               /* removing a keyword nobody has */
        if (id == UINT32_MAX) {
            *why = "Cannot add the keyword.";
            free(kw);
            return -1;
        }
        kw = xreallocarray(kw, nkw + 1, sizeof(uint32_t));
        kw[nkw++] = id;
    }
    if (nkw > 1) {
        uint32_t k = 1;

        qsort(kw, nkw, sizeof(uint32_t), u32_cmp);
        for (uint32_t i = 1; i < nkw; i++)
            if (kw[i] != kw[k - 1])
                kw[k++] = kw[i];
        nkw = k;
    }
    *kwp = kw;
    *nkwp = nkw;
    return 0;
}

void cmd_check(struct imap_client *c, const struct imap_command *cmd)
{
    if (cmd->nargs) {
        client_bad(c, "CHECK takes no arguments.");
        return;
    }
    mbox_commit(c->view->mb);
    client_send_updates(c, true);
    client_tagged(c, "OK", "Check completed.");
}

/* The \Deleted messages of the view (in idx, when given). */
static size_t deleted_msgs(struct imap_client *c, const uint32_t *idx, size_t nidx,
                           struct imap_msg ***out)
{
    struct imap_view *v = c->view;
    size_t n = 0, count = idx ? nidx : v->n;
    struct imap_msg **msgs = xcalloc(count + 1, sizeof(*msgs));

    for (size_t i = 0; i < count; i++) {
        struct imap_msg *m = mbox_find_uid(v->mb, v->uids[idx ? idx[i] : i]);

        if (m && (m->flags & IMAP_F_DELETED))
            msgs[n++] = m;
    }
    *out = msgs;
    return n;
}

void cmd_close(struct imap_client *c, const struct imap_command *cmd)
{
    struct imap_msg **msgs;
    size_t n;

    if (cmd->nargs) {
        client_bad(c, "%s takes no arguments.", cmd->name);
        return;
    }
    if (strcmp(cmd->name, "CLOSE") == 0 && !c->view->readonly) {
        /* Expunged silently (RFC 9051 6.4.1). */
        n = deleted_msgs(c, NULL, 0, &msgs);
        if (n)
            mbox_expunge(c->view->mb, msgs, n);
        free(msgs);
    }
    client_unselect(c);
    client_tagged(c, "OK", "%s completed.", strcmp(cmd->name, "CLOSE") == 0 ? "Close"
                  : "Unselect");
}

void cmd_expunge(struct imap_client *c, const struct imap_command *cmd)
{
    bool uid = strcmp(cmd->name, "UID EXPUNGE") == 0;
    uint32_t *idx = NULL;
    size_t nidx = 0, n;
    struct imap_msg **msgs;
    const char *why;

    if (cmd->nargs != (uid ? 1u : 0u)) {
        client_bad(c, uid ? "Syntax: UID EXPUNGE set" : "EXPUNGE takes no arguments.");
        return;
    }
    if (c->view->readonly) {
        client_tagged(c, "NO", "[READ-ONLY] Mailbox is read-only.");
        return;
    }
    if (uid && client_resolve_set(c, &cmd->args[0], true, &idx, &nidx, &why) < 0) {
        client_bad(c, "%s", why);
        return;
    }
    n = deleted_msgs(c, idx, uid ? nidx : 0, &msgs);
    if (uid && nidx == 0)
        n = 0;
    if (n && mbox_expunge(c->view->mb, msgs, n) < 0) {
        client_tagged(c, "NO", "[SERVERBUG] Cannot update the mailbox index.");
    } else {
        client_send_updates(c, true);
        client_tagged(c, "OK", "Expunge completed.");
    }
    free(msgs);
    free(idx);
}

/* ----------------------------------------------------------------- STORE */

void cmd_store(struct imap_client *c, const struct imap_command *cmd)
{
    struct imap_view *v = c->view;
    uint32_t *idx = NULL, *kw = NULL, *newkw = NULL;
    size_t nidx = 0;
    uint32_t nkw = 0;
    unsigned flags;
    const char *item, *why;
    int mode;                       /* 0 replace, 1 add, -1 remove */
    bool silent;
    struct imap_arg loose;

    if (cmd->nargs < 3 || cmd->args[1].type != IMAP_ARG_ATOM) {
        client_bad(c, "Syntax: STORE set [+|-]FLAGS[.SILENT] (flags)");
        return;
    }
    item = cmd->args[1].str;
    mode = item[0] == '+' ? 1 : item[0] == '-' ? -1 : 0;
    if (mode)
        item++;
    if (strcasecmp(item, "FLAGS") == 0)
        silent = false;
    else if (strcasecmp(item, "FLAGS.SILENT") == 0)
        silent = true;
    else {
        client_bad(c, "Syntax: STORE set [+|-]FLAGS[.SILENT] (flags)");
        return;
    }
    if (v->readonly) {
        client_tagged(c, "NO", "[READ-ONLY] Mailbox is read-only.");
        return;
    }
    if (client_resolve_set(c, &cmd->args[0], c->uid_cmd, &idx, &nidx, &why) < 0) {
        client_bad(c, "%s", why);
        return;
    }
    if (mbox_begin(v->mb) < 0) {
        free(idx);
        client_tagged(c, "NO", "[SERVERBUG] Cannot update the mailbox index.");
        return;
    }
    if (cmd->nargs == 3) {
        loose = cmd->args[2];
    } else {
        /* "STORE 1 +FLAGS \Seen \Deleted": loose flags. */
        loose = (struct imap_arg){ .type = IMAP_ARG_LIST,
                                   .list = (struct imap_arg *)&cmd->args[2],
                                   .nlist = cmd->nargs - 2 };
    }
    if (cmd_flag_list(v->mb, &loose, mode >= 0, &flags, &kw, &nkw, &why) < 0) {
        mbox_commit(v->mb);
        client_bad(c, "%s", why);
        free(idx);
        return;
    }
    client_announce_keywords(c);
    newkw = xcalloc((size_t)nkw + 512, sizeof(uint32_t));
    for (size_t i = 0; i < nidx; i++) {
        uint32_t seq = idx[i] + 1;
        struct imap_msg *m = mbox_find_uid(v->mb, v->uids[idx[i]]);
        unsigned nf;
        uint32_t nn = 0;

        if (m == NULL)
            continue;
        if (mode == 0) {
            nf = flags;
            if (nkw)
                memcpy(newkw, kw, nkw * sizeof(uint32_t));
            nn = nkw;
        } else if (mode > 0) {
            nf = m->flags | flags;
            /* Merge two sorted lists. */
            newkw = xreallocarray(newkw, (size_t)m->nkw + nkw + 1, sizeof(uint32_t));
            for (uint32_t a = 0, b = 0; a < m->nkw || b < nkw;) {
                if (b >= nkw || (a < m->nkw && m->kw[a] < kw[b]))
                    newkw[nn++] = m->kw[a++];
                else if (a >= m->nkw || kw[b] < m->kw[a])
                    newkw[nn++] = kw[b++];
                else {
                    newkw[nn++] = m->kw[a++];
                    b++;
                }
            }
        } else {
            nf = m->flags & ~flags;
            newkw = xreallocarray(newkw, (size_t)m->nkw + 1, sizeof(uint32_t));
            for (uint32_t a = 0; a < m->nkw; a++)
                if (u32_find(kw, nkw, m->kw[a]) == nkw)
                    newkw[nn++] = m->kw[a];
        }
        if (mbox_set_flags(v->mb, m, nf, newkw, nn, v) < 0)
            continue;
        if (!silent) {
            buf_printf(c->out, "* %u FETCH (", seq);
            if (c->uid_cmd)
                buf_printf(c->out, "UID %u ", m->uid);
            buf_append_str(c->out, "FLAGS ");
            client_put_msg_flags(c, m);
            buf_append_str(c->out, ")\r\n");
        }
    }
    free(newkw);
    free(kw);
    free(idx);
    if (mbox_commit(v->mb) < 0) {
        client_tagged(c, "NO", "[SERVERBUG] Cannot update the mailbox index.");
        return;
    }
    client_send_updates(c, c->uid_cmd);
    /* Messages expunged meanwhile are passed over and the rest stored
     * (RFC 2180 4.2.1): a NO would tell the client nothing was. */
    client_tagged(c, "OK", "Store completed.");
}

/* ------------------------------------------------------------ COPY, MOVE */

/* Copy a file's bytes (when a link cannot cross file systems). */
static int copy_file(int from_dir, const char *from, int to_dir, const char *to)
{
    int in = openat(from_dir, from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), out;
    char buf[65536];
    ssize_t n;

    if (in < 0)
        return -1;
    out = openat(to_dir, to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out < 0) {
        close(in);
        return -1;
    }
    while ((n = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)n) != n) {
            n = -1;
            break;
        }
    if (n < 0 || fsync(out) < 0) {
        close(in);
        close(out);
        unlinkat(to_dir, to, 0);
        return -1;
    }
    close(in);
    close(out);
    return 0;
}

static char *copy_name(const struct imap_msg *m, off_t size, uint64_t vsize)
{
    char *base = maildir_unique(), *name;
    char letters[8];
    size_t nl = 0;

    if (m->flags & IMAP_F_DRAFT) letters[nl++] = 'D';
    if (m->flags & IMAP_F_FLAGGED) letters[nl++] = 'F';
    if (m->flags & IMAP_F_ANSWERED) letters[nl++] = 'R';
    if (m->flags & IMAP_F_SEEN) letters[nl++] = 'S';
    if (m->flags & IMAP_F_DELETED) letters[nl++] = 'T';
    letters[nl] = '\0';
    name = xasprintf("%s,S=%lld,W=%llu:2,%s", base, (long long)size,
                     (unsigned long long)vsize, letters);
    free(base);
    return name;
}

void cmd_copy(struct imap_client *c, const struct imap_command *cmd)
{
    bool move = strstr(cmd->name, "MOVE") != NULL;
    struct imap_view *v = c->view;
    struct imap_mbox *src = v->mb, *dst = NULL;
    uint32_t *idx = NULL;
    size_t nidx = 0, n = 0;
    char *name = NULL, *path = NULL;
    const char *why, *given;
    struct imap_add *adds = NULL;
    struct imap_msg **moved = NULL;
    char **names = NULL;
    buf_t *srcset = buf_new(0), *dstset = buf_new(0);
    bool failed = false;

    if (cmd->nargs != 2 || (given = arg_astring(&cmd->args[1])) == NULL) {
        client_bad(c, "Syntax: %s set mailbox", cmd->name);
        goto out;
    }
    if (move && v->readonly) {
        client_tagged(c, "NO", "[READ-ONLY] Mailbox is read-only.");
        goto out;
    }
    if (client_resolve_set(c, &cmd->args[0], c->uid_cmd, &idx, &nidx, &why) < 0) {
        client_bad(c, "%s", why);
        goto out;
    }
    if (folder_resolve(given, CLIENT_UTF8_NAMES(c), &name, &path, &why) < 0) {
        client_tagged(c, "NO", "%s", why);
        goto out;
    }
    if ((dst = mbox_open(name, path, &why)) == NULL) {
        client_open_failed(c, why, true);
        goto out;
    }
    adds = xcalloc(nidx + 1, sizeof(*adds));
    moved = xcalloc(nidx + 1, sizeof(*moved));
    names = xcalloc(nidx + 1, sizeof(*names));
    for (size_t i = 0; i < nidx; i++) {
        struct imap_msg *m = mbox_find_uid(src, v->uids[idx[i]]);
        int sfd;
        struct stat st;

        if (m == NULL)
            continue;
        sfd = m->dir == MSG_NEW ? src->newfd : src->curfd;
        if (fstatat(sfd, m->file, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            failed = true;
            break;
        }
        names[n] = copy_name(m, st.st_size, mbox_msg_vsize(src, m));
        if (move ? renameat(sfd, m->file, dst->curfd, names[n]) < 0
                 : linkat(sfd, m->file, dst->curfd, names[n], 0) < 0) {
            if (errno != EXDEV || copy_file(sfd, m->file, dst->curfd, names[n]) < 0
                || (move && unlinkat(sfd, m->file, 0) < 0)) {
                msg_warn("%s: %s %s/%s: %s", user_name(), move ? "move" : "copy", src->path,
                         m->file, strerror(errno));
                free(names[n]);
                names[n] = NULL;
                failed = true;
                break;
            }
        }
        adds[n] = (struct imap_add){
            .file = names[n], .dir = MSG_CUR, .idate = m->idate, .vsize = m->vsize,
            .flags = m->flags, .nkw = 0,
        };
        moved[n] = m;
        buf_printf(srcset, "%s%u", n ? "," : "", m->uid);
        n++;
    }
    /* Keywords by name: the ids are each mailbox's own. */
    uint32_t **kws = xcalloc(n + 1, sizeof(uint32_t *));

    for (size_t i = 0; i < n; i++) {
        struct imap_msg *m = moved[i];

        if (m->nkw == 0)
            continue;
        kws[i] = xcalloc(m->nkw, sizeof(uint32_t));
        for (uint32_t k = 0; k < m->nkw; k++)
            if (m->kw[k] < src->nkwnames) {
                uint32_t id = mbox_keyword_id(dst, src->kwnames[m->kw[k]], true);

                if (id != UINT32_MAX)
                    kws[i][adds[i].nkw++] = id;
            }
        qsort(kws[i], adds[i].nkw, sizeof(uint32_t), u32_cmp);
        adds[i].kw = kws[i];
    }
    if (n > 0 && (durable_fsync_dir(dst->curfd, ".") < 0 || mbox_add_files(dst, adds, n) < 0)) {
        failed = true;
    } else {
        for (size_t i = 0; i < n; i++)
            buf_printf(dstset, "%s%u", i ? "," : "", adds[i].uid);
    }
    for (size_t i = 0; i < n; i++)
        free(kws[i]);
    free(kws);
    if (move && n > 0) {
        /* The files are in the other folder already: expunging finds them
         * gone, which is what it wants. */
        if (!failed)
            buf_printf(c->out, "* OK [COPYUID %u %s %s] Moved.\r\n", dst->uidvalidity,
                       buf_cstr(srcset), buf_cstr(dstset));
        mbox_expunge(src, moved, n);
    }
    if (failed) {
        client_send_updates(c, move || c->uid_cmd);
        client_tagged(c, "NO", "[SERVERBUG] Cannot %s some of the messages.", move ? "move" : "copy");
    } else if (move) {
        client_send_updates(c, true);
        client_tagged(c, "OK", "Move completed.");
    } else {
        client_send_updates(c, c->uid_cmd);
        if (n)
            client_tagged(c, "OK", "[COPYUID %u %s %s] Copy completed.", dst->uidvalidity,
                          buf_cstr(srcset), buf_cstr(dstset));
        else
            client_tagged(c, "OK", "Copy completed.");
    }
out:
    if (names)
        for (size_t i = 0; i < nidx; i++)
            free(names[i]);
    free(names);
    free(adds);
    free(moved);
    free(idx);
    free(name);
    free(path);
    mbox_close(&dst);
    buf_free(&srcset);
    buf_free(&dstset);
}

/* ---------------------------------------------------------------- SEARCH */

struct search_msg {
    struct imap_client *c;
    struct imap_msg    *m;
    uint32_t            seq;
    const buf_t        *text;
    mime_part_t        *mime;
    buf_t              *hdr;            /* the cached header (header keys) */
    mime_part_t        *hmime;
    buf_t              *scratch;
    bool                failed;
};

static uint32_t sm_seq(void *p) { return ((struct search_msg *)p)->seq; }
static uint32_t sm_uid(void *p) { return ((struct search_msg *)p)->m->uid; }

static unsigned sm_flags(void *p)
{
    struct search_msg *s = p;
    unsigned f = s->m->flags;

    if (view_is_recent(s->c->view, s->m->uid))
        f |= IMAPSEARCH_F_RECENT;
    return f;
}

static bool sm_has_keyword(void *p, const char *kw)
{
    struct search_msg *s = p;
    uint32_t id = mbox_keyword_id(s->c->view->mb, kw, false);

    if (id == UINT32_MAX)
        return false;
    for (uint32_t i = 0; i < s->m->nkw; i++)
        if (s->m->kw[i] == id)
            return true;
    return false;
}

static uint64_t sm_size(void *p)
{
    struct search_msg *s = p;

    return mbox_msg_vsize(s->c->view->mb, s->m);
}

static time_t sm_idate(void *p) { return (time_t)((struct search_msg *)p)->m->idate; }

static int sm_tz(void *p)
{
    struct tm tm;
    time_t t = (time_t)((struct search_msg *)p)->m->idate;

    localtime_r(&t, &tm);
    return (int)(tm.tm_gmtoff / 60);
}

static int sm_load(struct search_msg *s)
{
    if (s->mime)
        return 0;
    if (s->failed || (s->text = mbox_msg_text(s->c->view->mb, s->m)) == NULL) {
        s->failed = true;
        return -1;
    }
    s->mime = mime_parse(s->text->data, s->text->len);
    return 0;
}

/* Has the top-level header a field called name?  (An empty field is
 * still there: HEADER name "" matches it.) */
static bool header_present(const char *msg, size_t len, const char *name)
{
    size_t nlen = strlen(name);

    for (size_t i = 0; i < len;) {
        const char *nl = memchr(msg + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - msg) : len;

        if (end == i || (end == i + 1 && msg[i] == '\r'))
            return false;               /* the blank line: the header is over */
        if (end - i > nlen && strncasecmp(msg + i, name, nlen) == 0
            && (msg[i + nlen] == ':' || msg[i + nlen] == ' ' || msg[i + nlen] == '\t'))
            return true;
        i = end + 1;
    }
    return false;
}

/* Header keys read the cached header: no message file, no MIME walk. */
static int sm_header(void *p, const char *name, const char **text, size_t *len)
{
    struct search_msg *s = p;

    if (s->hmime == NULL) {
        buf_reset(s->hdr);
        if (cache_part(s->c->view->mb, s->m, CACHE_HEADER, s->hdr) < 0)
            return -1;
        s->hmime = mime_parse(s->hdr->data, s->hdr->len);
    }
    buf_reset(s->scratch);
    mime_header_text(s->scratch, s->hmime, s->hdr->data, name);
    *text = s->scratch->len || (name && header_present(s->hdr->data, s->hdr->len, name))
            ? buf_cstr(s->scratch) : NULL;
    *len = s->scratch->len;
    return 0;
}

static int sm_body(void *p, const char **text, size_t *len)
{
    struct search_msg *s = p;

    if (sm_load(s) < 0)
        return -1;
    buf_reset(s->scratch);
    mime_body_text(s->scratch, s->mime, s->text->data);
    *text = buf_cstr(s->scratch);
    *len = s->scratch->len;
    return 0;
}

static int sm_text(void *p, const char **text, size_t *len)
{
    struct search_msg *s = p;

    if (sm_load(s) < 0)
        return -1;
    buf_reset(s->scratch);
    mime_header_text(s->scratch, s->mime, s->text->data, NULL);
    buf_putc(s->scratch, '\n');
    mime_body_text(s->scratch, s->mime, s->text->data);
    *text = buf_cstr(s->scratch);
    *len = s->scratch->len;
    return 0;
}

static const struct imapsearch_msg_ops search_ops = {
    .seq = sm_seq, .uid = sm_uid, .flags = sm_flags, .has_keyword = sm_has_keyword,
    .size = sm_size, .internal_date = sm_idate, .internal_tz_minutes = sm_tz,
    .header = sm_header, .body = sm_body, .text = sm_text,
};

/* A set of numbers, compressed into ranges: "1:3,7". */
static void put_set(buf_t *out, const uint32_t *v, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i;

        while (j + 1 < n && v[j + 1] == v[j] + 1)
            j++;
        buf_printf(out, "%s%u", i ? "," : "", v[i]);
        if (j > i)
            buf_printf(out, ":%u", v[j]);
        i = j + 1;
    }
}

void cmd_search(struct imap_client *c, const struct imap_command *cmd)
{
    struct imap_view *v = c->view;
    struct imapsearch_opts o = { .utf8_mode = c->utf8, .allow_return = true };
    imapsearch_t *prog = NULL;
    const char *why;
    unsigned ret;
    bool has_return, failed = false;
    uint32_t *hits = NULL, *hit_uids = NULL;
    size_t nhits = 0;
    struct search_msg s = { .c = c };
    int rc;

    rc = imapsearch_compile(cmd->args, cmd->nargs, &o, &prog, &why);
    if (rc == -2) {
        client_tagged(c, "NO", "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset.");
        return;
    }
    if (rc < 0) {
        client_bad(c, "%s", why);
        return;
    }
    ret = imapsearch_return(prog, &has_return);
    s.scratch = buf_new(0);
    s.hdr = buf_new(0);
    hits = xcalloc(v->n + 1, sizeof(uint32_t));
    hit_uids = xcalloc(v->n + 1, sizeof(uint32_t));
    for (size_t i = 0; i < v->n; i++) {
        struct imap_msg *m = mbox_find_uid(v->mb, v->uids[i]);

        if (m == NULL)
            continue;
        s.m = m;
        s.seq = (uint32_t)(i + 1);
        s.failed = false;
        rc = imapsearch_match(prog, &search_ops, &s, (uint32_t)v->n,
                              v->n ? v->uids[v->n - 1] : 0, c->saved, c->nsaved);
        if (s.mime)
            mime_free(&s.mime);
        if (s.hmime)
            mime_free(&s.hmime);
        if (rc < 0) {
            failed = true;
            continue;
        }
        if (rc > 0) {
            hits[nhits] = c->uid_cmd ? m->uid : s.seq;
            hit_uids[nhits++] = m->uid;
        }
    }
    if (has_return || c->rev2) {
        if (ret == 0)
            ret = IMAPSEARCH_RET_ALL;
        /* RFC 5182 2.4: SAVE alone says nothing but the tagged OK. */
        if (ret != IMAPSEARCH_RET_SAVE)
            buf_printf(c->out, "* ESEARCH (TAG \"%s\")%s", c->tag, c->uid_cmd ? " UID" : "");
        if ((ret & IMAPSEARCH_RET_MIN) && nhits)
            buf_printf(c->out, " MIN %u", hits[0]);
        if ((ret & IMAPSEARCH_RET_MAX) && nhits)
            buf_printf(c->out, " MAX %u", hits[nhits - 1]);
        if (ret & IMAPSEARCH_RET_COUNT)
            buf_printf(c->out, " COUNT %zu", nhits);
        if ((ret & IMAPSEARCH_RET_ALL) && nhits) {
            buf_append_str(c->out, " ALL ");
            put_set(c->out, hits, nhits);
        }
        if (ret != IMAPSEARCH_RET_SAVE)
            buf_append_str(c->out, "\r\n");
        if (ret & IMAPSEARCH_RET_SAVE) {
            /* RFC 5182: MIN or MAX alone save only that one. */
            free(c->saved);
            c->saved = hit_uids;
            c->nsaved = nhits;
            if ((ret & (IMAPSEARCH_RET_MIN | IMAPSEARCH_RET_MAX))
                && !(ret & (IMAPSEARCH_RET_ALL | IMAPSEARCH_RET_COUNT)) && nhits) {
                uint32_t lo = hit_uids[0], hi = hit_uids[nhits - 1];

                c->nsaved = 0;
                if (ret & IMAPSEARCH_RET_MIN)
                    c->saved[c->nsaved++] = lo;
                if ((ret & IMAPSEARCH_RET_MAX) && hi != lo)
                    c->saved[c->nsaved++] = hi;
            }
            hit_uids = NULL;
        }
    } else {
        buf_append_str(c->out, "* SEARCH");
        for (size_t i = 0; i < nhits; i++)
            buf_printf(c->out, " %u", hits[i]);
        buf_append_str(c->out, "\r\n");
    }
    free(hits);
    free(hit_uids);
    buf_free(&s.scratch);
    buf_free(&s.hdr);
    imapsearch_free(&prog);
    client_send_updates(c, c->uid_cmd);
    if (failed)
        client_tagged(c, "NO", "[EXPUNGEISSUED] Some messages could not be read.");
    else
        client_tagged(c, "OK", "Search completed.");
}
