/*
 * fetch.c - FETCH and UID FETCH (RFC 9051 6.4.5, RFC 3501 6.4.5, BINARY
 * RFC 3516): FLAGS, UID, INTERNALDATE, RFC822.SIZE, ENVELOPE,
 * BODYSTRUCTURE, BODY, BODY[section]<partial> and BODY.PEEK, RFC822,
 * RFC822.HEADER, RFC822.TEXT, BINARY[section]<partial>, BINARY.PEEK,
 * BINARY.SIZE, and the macros ALL, FAST, FULL.
 *
 * A FETCH runs as a job: a message at a time while the client takes the
 * output, so a FETCH 1:* BODY[] of a large mailbox holds one message in
 * memory, not the mailbox.  The MIME structure comes from lib/imapmime;
 * a body fetch that is not a PEEK sets \Seen (in a read-write mailbox),
 * and FLAGS is then sent with it.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "client.h"
#include "imapd.h"
#include "imapmime.h"
#include "imapsearch.h"
#include "xalloc.h"

void client_put_msg_flags(struct imap_client *c, const struct imap_msg *m);

#define FETCH_OUT_HIGH (256 * 1024)

enum fetch_kind {
    F_FLAGS, F_UID, F_INTERNALDATE, F_SIZE, F_ENVELOPE, F_BODYSTRUCTURE, F_BODY,
    F_SECTION, F_BINARY, F_BINARY_SIZE, F_RFC822, F_RFC822_HEADER, F_RFC822_TEXT,
};

struct fetch_item {
    enum fetch_kind kind;
    char           *section;    /* F_SECTION, F_BINARY, F_BINARY_SIZE: inside [] */
    bool            peek;
    bool            partial;
    uint64_t        off, len;
};

struct fetch_job {
    struct imap_job    job;
    struct fetch_item *items;
    size_t             nitems;
    uint32_t          *idx;
    size_t             nidx, next;
    bool               sets_seen, has_uid, has_flags;
    bool               gone, unknown_cte;
    buf_t             *scratch;
};

static void fetch_free(struct imap_job *job)
{
    struct fetch_job *f = (struct fetch_job *)job;

    for (size_t i = 0; i < f->nitems; i++)
        free(f->items[i].section);
    free(f->items);
    free(f->idx);
    buf_free(&f->scratch);
    free(f);
}

/* Is spec a section lib/imapmime knows (asked of an empty message)? */
static bool fetch_section_ok(const char *spec)
{
    static mime_part_t *empty;
    buf_t *out = buf_new(0);
    const char *why;
    int rc;

    if (empty == NULL)
        empty = mime_parse("", 0);
    rc = mime_section(out, empty, "", spec, &why);
    buf_free(&out);
    return rc >= 0;
}

/* One item by name: 0, or -1 (BAD). */
static int fetch_parse_item(struct fetch_job *f, const char *text)
{
    static const struct {
        const char     *name;
        enum fetch_kind kind;
    } simple[] = {
        {"FLAGS", F_FLAGS}, {"UID", F_UID}, {"INTERNALDATE", F_INTERNALDATE},
        {"RFC822.SIZE", F_SIZE}, {"ENVELOPE", F_ENVELOPE}, {"BODYSTRUCTURE", F_BODYSTRUCTURE},
        {"BODY", F_BODY}, {"RFC822", F_RFC822}, {"RFC822.HEADER", F_RFC822_HEADER},
        {"RFC822.TEXT", F_RFC822_TEXT},
    };
    struct fetch_item it = {0};
    const char *br = strchr(text, '['), *close, *p;
    size_t namelen = br ? (size_t)(br - text) : strlen(text);

    if (br == NULL) {
        for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
            if (strcasecmp(text, simple[i].name) == 0) {
                it.kind = simple[i].kind;
                goto add;
            }
        return -1;
    }
    if ((namelen == 4 && strncasecmp(text, "BODY", 4) == 0)
        || (namelen == 9 && strncasecmp(text, "BODY.PEEK", 9) == 0)) {
        it.kind = F_SECTION;
        it.peek = namelen == 9;
    } else if ((namelen == 6 && strncasecmp(text, "BINARY", 6) == 0)
               || (namelen == 11 && strncasecmp(text, "BINARY.PEEK", 11) == 0)) {
        it.kind = F_BINARY;
        it.peek = namelen == 11;
    } else if (namelen == 11 && strncasecmp(text, "BINARY.SIZE", 11) == 0) {
        it.kind = F_BINARY_SIZE;
    } else {
        return -1;
    }
    if ((close = strrchr(br, ']')) == NULL)
        return -1;
    it.section = xstrndup(br + 1, (size_t)(close - br - 1));
    for (char *q = it.section; *q; q++)
        *q = (char)toupper((unsigned char)*q);
    p = close + 1;
    if (*p == '<') {
        char *end;
        unsigned long long o, l;

        if (it.kind == F_BINARY_SIZE || !isdigit((unsigned char)p[1]))
            goto bad;
        o = strtoull(p + 1, &end, 10);
        if (*end != '.' || !isdigit((unsigned char)end[1]))
            goto bad;
        l = strtoull(end + 1, &end, 10);
        if (strcmp(end, ">") != 0 || l == 0)
            goto bad;
        it.partial = true;
        it.off = o;
        it.len = l;
    } else if (*p != '\0') {
        goto bad;
    }
    if (it.kind == F_BINARY || it.kind == F_BINARY_SIZE) {
        /* BINARY takes part numbers only (RFC 3516 4.1). */
        for (const char *q = it.section; *q; q++)
            if (!isdigit((unsigned char)*q) && *q != '.')
                goto bad;
    } else if (!fetch_section_ok(it.section)) {
        goto bad;
    }
add:
    f->items = xreallocarray(f->items, f->nitems + 1, sizeof(*f->items));
    f->items[f->nitems++] = it;
    return 0;
bad:
    free(it.section);
    return -1;
}

static int fetch_parse(struct fetch_job *f, const struct imap_arg *a)
{
    if (a->type == IMAP_ARG_ATOM) {
        if (strcasecmp(a->str, "ALL") == 0)
            return fetch_parse_item(f, "FLAGS") | fetch_parse_item(f, "INTERNALDATE")
                   | fetch_parse_item(f, "RFC822.SIZE") | fetch_parse_item(f, "ENVELOPE");
        if (strcasecmp(a->str, "FAST") == 0)
            return fetch_parse_item(f, "FLAGS") | fetch_parse_item(f, "INTERNALDATE")
                   | fetch_parse_item(f, "RFC822.SIZE");
        if (strcasecmp(a->str, "FULL") == 0)
            return fetch_parse_item(f, "FLAGS") | fetch_parse_item(f, "INTERNALDATE")
                   | fetch_parse_item(f, "RFC822.SIZE") | fetch_parse_item(f, "ENVELOPE")
                   | fetch_parse_item(f, "BODY");
        return fetch_parse_item(f, a->str);
    }
    if (a->type != IMAP_ARG_LIST || a->nlist == 0)
        return -1;
    for (size_t i = 0; i < a->nlist; i++)
        if (a->list[i].type != IMAP_ARG_ATOM || fetch_parse_item(f, a->list[i].str) < 0)
            return -1;
    return 0;
}

/* A section's octets, the partial applied, as a literal. */
static void fetch_put_data(buf_t *out, const char *data, size_t len, const struct fetch_item *it,
                           bool binary)
{
    if (it->partial) {
        if (it->off >= len) {
            len = 0;
        } else {
            data += it->off;
            len -= it->off;
            if (len > it->len)
                len = it->len;
        }
    }
    if (binary && memchr(data, '\0', len))
        buf_printf(out, "~{%zu}\r\n", len);
    else
        buf_printf(out, "{%zu}\r\n", len);
    buf_append(out, data, len);
}

static void fetch_put_name(buf_t *out, const struct fetch_item *it)
{
    const char *name = it->kind == F_SECTION ? "BODY" : it->kind == F_BINARY ? "BINARY"
                       : "BINARY.SIZE";

    buf_printf(out, "%s[%s]", name, it->section);
    if (it->partial)
        buf_printf(out, "<%llu>", (unsigned long long)it->off);
}

/* A message's text and MIME structure, read when an item needs them. */
struct fetch_msg {
    struct imap_mbox *mb;
    struct imap_msg  *m;
    const buf_t      *text;
    mime_part_t      *mime;
    bool              failed;
};

static bool fm_load(struct fetch_msg *fm)
{
    if (fm->mime)
        return true;
    if (fm->failed || (fm->text = mbox_msg_text(fm->mb, fm->m)) == NULL) {
        fm->failed = true;
        return false;
    }
    fm->mime = mime_parse(fm->text->data, fm->text->len);
    return true;
}

/* A header section (HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT) from the
 * cached header: no message file read. */
static bool fetch_header_section(struct fetch_job *f, struct fetch_msg *fm, const char *spec)
{
    buf_t *hdr = buf_new(0);
    mime_part_t *hm;
    const char *why;

    if (cache_part(fm->mb, fm->m, CACHE_HEADER, hdr) < 0) {
        buf_free(&hdr);
        return false;
    }
    buf_reset(f->scratch);
    if (strcmp(spec, "HEADER") == 0) {
        buf_append(f->scratch, hdr->data, hdr->len);
    } else {
        hm = mime_parse(hdr->data, hdr->len);
        mime_section(f->scratch, hm, hdr->data, spec, &why);
        mime_free(&hm);
    }
    buf_free(&hdr);
    return true;
}

/* One message's response; false when it could not be read (nothing of
 * it is sent then). */
static bool fetch_one(struct imap_client *c, struct fetch_job *f, uint32_t seq,
                      struct imap_msg *m, bool txn)
{
    struct imap_mbox *mb = c->view->mb;
    struct fetch_msg fm = { .mb = mb, .m = m };
    const char *sep = "";
    bool set_seen = false;
    size_t start = c->out->len;

    /* \Seen first (a message whose file is gone cannot get it: it is
     * gone for this FETCH too), and FLAGS goes with it. */
    if (txn && !(m->flags & IMAP_F_SEEN)) {
        if (mbox_set_flags(mb, m, m->flags | IMAP_F_SEEN, m->kw, m->nkw, c->view) < 0)
            return false;
        set_seen = true;
    }
    buf_printf(c->out, "* %u FETCH (", seq);
    if (c->uid_cmd && !f->has_uid) {
        buf_printf(c->out, "UID %u", m->uid);
        sep = " ";
    }
    if (set_seen && !f->has_flags) {
        buf_printf(c->out, "%sFLAGS ", sep);
        client_put_msg_flags(c, m);
        sep = " ";
    }
    for (size_t i = 0; i < f->nitems; i++) {
        const struct fetch_item *it = &f->items[i];
        const char *why;
        int rc;

        buf_append_str(c->out, sep);
        sep = " ";
        switch (it->kind) {
        case F_FLAGS:
            buf_append_str(c->out, "FLAGS ");
            client_put_msg_flags(c, m);
            break;
        case F_UID:
            buf_printf(c->out, "UID %u", m->uid);
            break;
        case F_INTERNALDATE: {
            struct tm tm;
            time_t t = (time_t)m->idate;

            localtime_r(&t, &tm);
            buf_append_str(c->out, "INTERNALDATE ");
            imap_format_datetime(c->out, t, (int)(tm.tm_gmtoff / 60));
            break;
        }
        case F_SIZE:
            buf_printf(c->out, "RFC822.SIZE %llu",
                       (unsigned long long)mbox_msg_vsize(mb, m));
            break;
        case F_ENVELOPE:
            buf_append_str(c->out, "ENVELOPE ");
            if (!c->utf8 && cache_part(mb, m, CACHE_ENVELOPE, c->out) == 0)
                break;
            if (!fm_load(&fm))
                goto gone;
            mime_envelope(c->out, fm.mime, fm.text->data, c->utf8);
            break;
        case F_BODYSTRUCTURE:
        case F_BODY:
            buf_append_str(c->out, it->kind == F_BODY ? "BODY " : "BODYSTRUCTURE ");
            if (cache_part(mb, m, it->kind == F_BODY ? CACHE_BODY : CACHE_BODYSTRUCTURE,
                           c->out) < 0)
                goto gone;
            break;
        case F_RFC822:
            if (!fm_load(&fm))
                goto gone;
            buf_append_str(c->out, "RFC822 ");
            fetch_put_data(c->out, fm.text->data, fm.text->len, it, false);
            break;
        case F_RFC822_HEADER:
            if (!fetch_header_section(f, &fm, "HEADER"))
                goto gone;
            buf_append_str(c->out, "RFC822.HEADER ");
            fetch_put_data(c->out, f->scratch->data, f->scratch->len, it, false);
            break;
        case F_RFC822_TEXT:
            if (!fm_load(&fm))
                goto gone;
            buf_reset(f->scratch);
            mime_section(f->scratch, fm.mime, fm.text->data, "TEXT", &why);
            buf_append_str(c->out, "RFC822.TEXT ");
            fetch_put_data(c->out, f->scratch->data, f->scratch->len, it, false);
            break;
        case F_SECTION:
            if (strncmp(it->section, "HEADER", 6) == 0) {
                if (!fetch_header_section(f, &fm, it->section))
                    goto gone;
                fetch_put_name(c->out, it);
                buf_putc(c->out, ' ');
                fetch_put_data(c->out, f->scratch->data, f->scratch->len, it, false);
                break;
            }
            if (!fm_load(&fm))
                goto gone;
            fetch_put_name(c->out, it);
            buf_putc(c->out, ' ');
            if (it->section[0] == '\0') {
                fetch_put_data(c->out, fm.text->data, fm.text->len, it, false);
                break;
            }
            buf_reset(f->scratch);
            mime_section(f->scratch, fm.mime, fm.text->data, it->section, &why);
            fetch_put_data(c->out, f->scratch->data, f->scratch->len, it, false);
            break;
        case F_BINARY:
        case F_BINARY_SIZE:
            if (!fm_load(&fm))
                goto gone;
            buf_reset(f->scratch);
            rc = mime_binary(f->scratch, fm.mime, fm.text->data, it->section, &why);
            if (rc == -1) {
                /* Say nothing of this message: the command fails with
                 * UNKNOWN-CTE (RFC 3516 4.3). */
                f->unknown_cte = true;
                buf_truncate(c->out, start);
                mime_free(&fm.mime);
                return true;
            }
            fetch_put_name(c->out, it);
            if (it->kind == F_BINARY_SIZE)
                buf_printf(c->out, " %zu", f->scratch->len);
            else {
                buf_putc(c->out, ' ');
                fetch_put_data(c->out, f->scratch->data, f->scratch->len, it, true);
            }
            break;
        }
    }
    mime_free(&fm.mime);
    buf_append_str(c->out, ")\r\n");
    return true;
gone:
    mime_free(&fm.mime);
    buf_truncate(c->out, start);
    return false;
}

static bool fetch_step(struct imap_client *c, struct imap_job *job)
{
    struct fetch_job *f = (struct fetch_job *)job;
    struct imap_view *v = c->view;

    /* \Seen is set in one transaction per step (never across steps: a
     * slow client must not hold the index lock). */
    bool txn = f->sets_seen && !v->readonly && mbox_begin(v->mb) == 0;

    client_announce_keywords(c);
    while (f->next < f->nidx && c->out->len < FETCH_OUT_HIGH) {
        uint32_t i = f->idx[f->next++];
        struct imap_msg *m = i < v->n ? mbox_find_uid(v->mb, v->uids[i]) : NULL;

        if (m == NULL || !fetch_one(c, f, i + 1, m, txn))
            f->gone = true;
    }
    mbox_commit(v->mb);
    if (f->next < f->nidx)
        return false;
    client_send_updates(c, c->uid_cmd);
    if (f->unknown_cte)
        client_tagged(c, "NO", "[UNKNOWN-CTE] A part has a content transfer encoding this "
                      "server does not know.");
    else if (f->gone)
        client_tagged(c, "NO", "[EXPUNGEISSUED] Some of the messages were expunged.");
    else
        client_tagged(c, "OK", "Fetch completed.");
    return true;
}

void cmd_fetch(struct imap_client *c, const struct imap_command *cmd)
{
    struct fetch_job *f;
    const char *why;

    if (cmd->nargs != 2 && !(cmd->nargs == 3 && cmd->args[2].type == IMAP_ARG_LIST)) {
        client_bad(c, "Syntax: FETCH set items");
        return;
    }
    f = xcalloc(1, sizeof(*f));
    f->job.step = fetch_step;
    f->job.free = fetch_free;
    f->scratch = buf_new(0);
    if (fetch_parse(f, &cmd->args[1]) < 0) {
        fetch_free(&f->job);
        client_bad(c, "Invalid FETCH item.");
        return;
    }
    if (cmd->nargs == 3) {
        /* Modifiers (CONDSTORE's CHANGEDSINCE, QRESYNC's VANISHED) are
         * not offered. */
        fetch_free(&f->job);
        client_bad(c, "Unknown FETCH modifier.");
        return;
    }
    for (size_t i = 0; i < f->nitems; i++) {
        enum fetch_kind k = f->items[i].kind;

        if (k == F_UID)
            f->has_uid = true;
        if (k == F_FLAGS)
            f->has_flags = true;
        if (((k == F_SECTION || k == F_BINARY) && !f->items[i].peek) || k == F_RFC822
            || k == F_RFC822_TEXT)
            f->sets_seen = true;
    }
    if (client_resolve_set(c, &cmd->args[0], c->uid_cmd, &f->idx, &f->nidx, &why) < 0) {
        fetch_free(&f->job);
        client_bad(c, "%s", why);
        return;
    }
    if (fetch_step(c, &f->job))
        fetch_free(&f->job);
    else
        c->job = &f->job;
}
