/*
 * signing - cleanup's DKIM policy (see signing.h).
 *
 * The keys are loaded once per process, as root in pre_init (before the
 * chroot and the privilege drop: the key files are root's, mode 0600), and
 * kept in memory; no key file is read per message.  A message costs, per
 * key, libopendkim's parse of the key text, its hashes and one signature
 * (bench/dkim_bench).  A reload starts new cleanup processes, which load
 * the directory anew.
 *
 * The content is read twice: once here, to hash the body, and once when
 * it is copied into the queue file.  The signature goes at the top of the
 * header and the queue file is written in order, so the body must be
 * hashed before the first byte is written; the second read is of a memfd,
 * a copy from memory (pread, never mmap: the peer owns the memfd and
 * could shrink it under a mapping).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "addrlist.h"
#include "conf.h"
#include "dkimkeys.h"
#include "dkimsign.h"
#include "msg.h"
#include "netaddr.h"
#include "queue.h"
#include "signing.h"
#include "xalloc.h"

#define SIGNING_CHUNK 65536

static dkimkeys_t *signing_keys;
static netaddr_list_t *signing_mynetworks;

void signing_init(void)
{
    static const uid_t root[1] = {0};
    buf_t *errs = buf_new(0), *warns = buf_new(0);
    char *line, *next;

    if ((signing_mynetworks = netaddr_list_parse(conf_str("mynetworks"), errs)) == NULL)
        msg_fatal("mynetworks: %s", buf_cstr(errs));
    if (!conf_bool("dkim_sign")) {
        buf_free(&errs);
        buf_free(&warns);
        return;
    }
    signing_keys = dkimkeys_load(conf_str("dkim_key_directory"), root, 1, errs, warns);
    for (line = errs->data; line && *line; line = next) {
        if ((next = strchr(line, '\n')) != NULL)
            *next++ = '\0';
        msg_warn("DKIM key skipped: %s", line);
    }
    for (line = warns->data; line && *line; line = next) {
        if ((next = strchr(line, '\n')) != NULL)
            *next++ = '\0';
        msg_warn("DKIM key: %s", line);
    }
    buf_free(&errs);
    buf_free(&warns);
}

bool signing_wanted(const struct cleanup_request *r)
{
    const char *addr = cleanup_request_get_attr(r, QUEUE_ATTR_CLIENT_ADDR);
    struct netaddr na;

    if (signing_keys == NULL || signing_keys->n == 0)
        return false;
    if (r->flags & CLEANUP_FLAG_BOUNCE)
        return true;
    if (addr != NULL)           /* an SMTP client: logged in, or one of ours */
        return cleanup_request_get_attr(r, QUEUE_ATTR_SASL_USER) != NULL
               || (netaddr_parse(addr, &na) == 0
                   && netaddr_list_match(signing_mynetworks, &na));
    /* No client: a local submission (only a trusted peer, pickup, may set
     * submit_uid), or local's forward, which is not ours to sign. */
    return cleanup_request_get_attr(r, QUEUE_ATTR_SUBMIT_UID) != NULL;
}

/* The header fields as they will be queued: h's, then add's lines. */
struct signing_field {
    const char *text;
    size_t      len;
};

static size_t signing_fields(const struct msgheader *h, const buf_t *add,
                             struct signing_field **fp)
{
    struct signing_field *f = xreallocarray(NULL, h->n + 4, sizeof(*f));
    size_t n = 0, cap = h->n + 4;

    for (size_t i = 0; i < h->n; i++) {
        f[n].text = h->fields[i].text;
        f[n++].len = h->fields[i].len;
    }
    for (const char *p = add->data, *end = add->data + add->len; p && p < end;) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        const char *next = eol ? eol + 2 : end;

        if (n == cap)
            f = xreallocarray(f, cap *= 2, sizeof(*f));
        f[n].text = p;
        f[n++].len = (size_t)(next - p);
        p = next;
    }
    *fp = f;
    return n;
}

static bool signing_is(const struct signing_field *f, const char *name)
{
    size_t n = strlen(name);

    return f->len > n && f->text[n] == ':' && strncasecmp(f->text, name, n) == 0;
}

/* The one domain of the From: field (fresh, lower case), or NULL. */
static char *signing_from_domain(const struct signing_field *f, size_t n, const char *id)
{
    const struct signing_field *from = NULL;
    struct msgheader_field mf;
    struct addrlist al = {0};
    const char *why;
    char *value, *domain = NULL;
    size_t len, count = 0;

    for (size_t i = 0; i < n; i++)
        if (signing_is(&f[i], "from")) {
            from = &f[i];
            count++;
        }
    if (count != 1) {
        if (count > 1)
            msg_info("%s: not DKIM-signed: %zu From: fields", id, count);
        return NULL;
    }
    mf.text = (char *)from->text;
    mf.len = from->len;
    mf.name_len = 4;
    value = msgheader_field_value(&mf, &len);
    if (addrlist_parse(value, len, &al, &why) == 0) {
        for (size_t i = 0; i < al.n; i++) {
            const char *at = strrchr(al.addrs[i], '@');

            if (at == NULL || at[1] == '\0'
                || (domain != NULL && strcasecmp(domain, at + 1) != 0)) {
                if (domain != NULL)
                    msg_info("%s: not DKIM-signed: From: addresses in several domains", id);
                free(domain);
                domain = NULL;
                break;
            }
            if (domain == NULL)
                domain = xstrdup(at + 1);
        }
        addrlist_free(&al);
    }
    free(value);
    if (domain != NULL) {
        size_t dl = strlen(domain);

        if (dl > 0 && domain[dl - 1] == '.')
            domain[dl - 1] = '\0';
        for (char *p = domain; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    }
    return domain;
}

/* Where the body starts in the content, or -1: not signable. */
static long long signing_body_offset(const struct cleanup_request *r, const struct msgheader *h,
                                     const buf_t *add)
{
    char eol[2];

    if (h->end >= r->content_len)
        return (long long)r->content_len;
    if (!h->separated)          /* cleanup inserts the empty line only with fields to add */
        return add->len > 0 ? (long long)h->end : -1;
    if (pread(r->content_fd, eol, 2, (off_t)h->end) < 1)
        return -2;
    return (long long)h->end + (eol[0] == '\r' ? 2 : 1);
}

int signing_sign(const struct cleanup_request *r, const struct msgheader *h, const buf_t *add,
                 const char *id, buf_t *out, char **what)
{
    const struct dkimkeys_domain *dom;
    struct signing_field *f;
    dkimsign_t *s = NULL;
    const char *why;
    char *domain, *chunk = NULL;
    long long off;
    size_t n;
    int rc = -1;

    *what = NULL;
    n = signing_fields(h, add, &f);
    domain = signing_from_domain(f, n, id);
    if (domain == NULL || (dom = dkimkeys_find(signing_keys, domain)) == NULL) {
        rc = 0;
        goto out;
    }
    if ((off = signing_body_offset(r, h, add)) < 0) {
        if (off == -2)
            goto out;
        msg_info("%s: not DKIM-signed: the body begins without the empty line", id);
        rc = 0;
        goto out;
    }
    s = dkimsign_new(dom->keys, dom->n, time(NULL));
    for (size_t i = 0; i < n; i++)
        dkimsign_header(s, f[i].text, f[i].len);
    chunk = xmalloc(SIGNING_CHUNK);
    for (uint64_t pos = (uint64_t)off; pos < r->content_len;) {
        size_t want = r->content_len - pos < SIGNING_CHUNK ? (size_t)(r->content_len - pos)
                                                           : SIGNING_CHUNK;
        ssize_t got = pread(r->content_fd, chunk, want, (off_t)pos);

        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            if (got == 0)
                errno = EBADMSG;
            goto out;
        }
        dkimsign_body(s, chunk, (size_t)got);
        pos += (uint64_t)got;
    }
    switch (dkimsign_finish(s, out, &why)) {
    case 0:
        break;
    case 1:                     /* what libopendkim cannot canonicalize right */
        msg_info("%s: not DKIM-signed: %s", id, why);
        rc = 0;
        goto out;
    default:
        msg_warn("cannot DKIM-sign for %s: %s", dom->domain, why);
        errno = EIO;
        goto out;
    }
    {
        buf_t *w = buf_new(0);

        buf_printf(w, "d=%s s=", dom->domain);
        for (size_t i = 0; i < dom->n; i++)
            buf_printf(w, "%s%s", i ? "," : "", dkimsign_key_selector(dom->keys[i]));
        *what = buf_steal(w, NULL);
        buf_free(&w);
    }
    rc = 0;
out:
    free(chunk);
    dkimsign_free(&s);
    free(domain);
    free(f);
    return rc;
}
