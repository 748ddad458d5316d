/*
 * dmarcreport - aggregate DMARC history rows into RFC 7489 aggregate
 * reports and render them (see dmarcreport.h).
 *
 * Rows are counted through two small open-addressing hash tables: policy
 * domain -> domain, and (domain, aggregation key) -> record.  The key is
 * the row's aggregated fields joined with a separator no field can hold
 * (the history's rules allow no control characters), so two rows share a
 * record exactly when they agree on every one of them.  A record keeps a
 * copy of its first row for rendering.
 *
 * Failure modes: see dmarcreport.h.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zlib.h>

#include "base64.h"
#include "buf.h"
#include "dmarchist.h"
#include "dmarcreport.h"
#include "xalloc.h"

struct dr_record {
    char                 *key;
    size_t                domain;       /* index into r->domains */
    unsigned long long    count;
    struct dmarchist_row  row;          /* the first row counted */
};

struct dr_domain {
    char                 *name;
    struct dmarchist_row  policy;       /* the latest row: its published policy */
    size_t               *records;      /* indexes into r->records */
    size_t                nrecords;
    unsigned long long    nmessages;
};

/* key -> index + 1 (0: empty slot); the caller keeps the keys. */
struct dr_map {
    size_t *slots;
    size_t  cap, used;
};

struct dmarcreport {
    long long          begin, end;
    struct dr_domain  *domains;
    size_t             ndomains;
    struct dr_record  *records;
    size_t             nrecords;
    struct dr_map      domain_map, record_map;
};

/* ------------------------------------------------------------ hashing */

static uint64_t dr_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The slot for key: its entry's, or the empty one where it would go. */
static size_t *dr_map_slot(const struct dr_map *m, const char *key,
                           const char *(*key_of)(const struct dmarcreport *, size_t),
                           const struct dmarcreport *r)
{
    size_t i = (size_t)dr_hash(key) & (m->cap - 1);

    while (m->slots[i] && strcmp(key_of(r, m->slots[i] - 1), key) != 0)
        i = (i + 1) & (m->cap - 1);
    return &m->slots[i];
}

static void dr_map_grow(struct dr_map *m, const char *(*key_of)(const struct dmarcreport *, size_t),
                        const struct dmarcreport *r)
{
    struct dr_map bigger = {0};

    if (m->cap && (m->used + 1) * 4 < m->cap * 3)
        return;
    bigger.cap = m->cap ? m->cap * 2 : 64;
    bigger.slots = xcalloc(bigger.cap, sizeof(size_t));
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i])
            *dr_map_slot(&bigger, key_of(r, m->slots[i] - 1), key_of, r) = m->slots[i];
    bigger.used = m->used;
    free(m->slots);
    *m = bigger;
}

static const char *dr_domain_key(const struct dmarcreport *r, size_t i)
{
    return r->domains[i].name;
}

static const char *dr_record_key(const struct dmarcreport *r, size_t i)
{
    return r->records[i].key;
}

/* ------------------------------------------------------------ rows */

static char *dr_dup(const char *s)
{
    return xstrdup(s ? s : "");
}

static void dr_row_copy(struct dmarchist_row *to, const struct dmarchist_row *from)
{
    *to = *from;
    to->source_ip = dr_dup(from->source_ip);
    to->header_from = dr_dup(from->header_from);
    to->envelope_from = dr_dup(from->envelope_from);
    to->envelope_to = dr_dup(from->envelope_to);
    to->policy_domain = dr_dup(from->policy_domain);
    to->p = dr_dup(from->p);
    to->sp = dr_dup(from->sp);
    to->fo = dr_dup(from->fo);
    to->rua = dr_dup(from->rua);
    to->disposition = dr_dup(from->disposition);
    to->reason = dr_dup(from->reason);
    to->spf_domain = dr_dup(from->spf_domain);
    to->spf_scope = dr_dup(from->spf_scope);
    to->spf_result = dr_dup(from->spf_result);
    to->dkim = from->ndkim ? xcalloc(from->ndkim, sizeof(*to->dkim)) : NULL;
    for (size_t i = 0; i < from->ndkim; i++) {
        to->dkim[i].domain = dr_dup(from->dkim[i].domain);
        to->dkim[i].selector = dr_dup(from->dkim[i].selector);
        to->dkim[i].result = dr_dup(from->dkim[i].result);
    }
}

/* The aggregation key: the policy domain first, so records of different
 * domains never meet; fields joined with \001. */
static char *dr_key(const struct dmarchist_row *row)
{
    buf_t *b = buf_new(0);
    char *key;

    buf_printf(b, "%s\001%s\001%s\001%d\001%d\001%s\001%s\001%s\001%s\001%s\001%s\001%s",
               row->policy_domain, row->source_ip, row->disposition, row->dkim_aligned,
               row->spf_aligned, row->reason, row->header_from, row->envelope_from,
               row->envelope_to, row->spf_domain, row->spf_scope, row->spf_result);
    for (size_t i = 0; i < row->ndkim; i++)
        buf_printf(b, "\001%s\001%s\001%s", row->dkim[i].domain, row->dkim[i].selector,
                   row->dkim[i].result);
    key = buf_steal(b, NULL);
    buf_free(&b);
    return key;
}

dmarcreport_t *dmarcreport_new(long long begin, long long end)
{
    dmarcreport_t *r = xcalloc(1, sizeof(*r));

    r->begin = begin;
    r->end = end;
    return r;
}

void dmarcreport_free(dmarcreport_t **rp)
{
    dmarcreport_t *r = *rp;

    if (r == NULL)
        return;
    for (size_t i = 0; i < r->ndomains; i++) {
        free(r->domains[i].name);
        dmarchist_row_clear(&r->domains[i].policy);
        free(r->domains[i].records);
    }
    for (size_t i = 0; i < r->nrecords; i++) {
        free(r->records[i].key);
        dmarchist_row_clear(&r->records[i].row);
    }
    free(r->domains);
    free(r->records);
    free(r->domain_map.slots);
    free(r->record_map.slots);
    free(r);
    *rp = NULL;
}

int dmarcreport_add(dmarcreport_t *r, const struct dmarchist_row *row, const char **error_r)
{
    struct dr_domain *d;
    size_t *slot, di, ri;
    char *key;

    if (dmarchist_row_check(row, error_r) < 0)
        return -1;
    if (row->when < r->begin || row->when > r->end) {
        *error_r = "the row's time is outside the reporting period";
        return -1;
    }
    dr_map_grow(&r->domain_map, dr_domain_key, r);
    slot = dr_map_slot(&r->domain_map, row->policy_domain, dr_domain_key, r);
    if (*slot == 0) {
        r->domains = xreallocarray(r->domains, r->ndomains + 1, sizeof(*r->domains));
        d = &r->domains[r->ndomains];
        memset(d, 0, sizeof(*d));
        d->name = xstrdup(row->policy_domain);
        dr_row_copy(&d->policy, row);
        *slot = ++r->ndomains;
        r->domain_map.used++;
    }
    di = *slot - 1;
    d = &r->domains[di];
    if (row->when >= d->policy.when) {
        dmarchist_row_clear(&d->policy);
        dr_row_copy(&d->policy, row);
    }
    d->nmessages++;

    key = dr_key(row);
    dr_map_grow(&r->record_map, dr_record_key, r);
    slot = dr_map_slot(&r->record_map, key, dr_record_key, r);
    if (*slot) {
        r->records[*slot - 1].count++;
        free(key);
        return 0;
    }
    r->records = xreallocarray(r->records, r->nrecords + 1, sizeof(*r->records));
    ri = r->nrecords++;
    r->records[ri].key = key;
    r->records[ri].domain = di;
    r->records[ri].count = 1;
    dr_row_copy(&r->records[ri].row, row);
    *slot = ri + 1;
    r->record_map.used++;
    d->records = xreallocarray(d->records, d->nrecords + 1, sizeof(size_t));
    d->records[d->nrecords++] = ri;
    return 0;
}

size_t dmarcreport_ndomains(const dmarcreport_t *r)
{
    return r->ndomains;
}

void dmarcreport_domain(const dmarcreport_t *r, size_t i, struct dmarcreport_domain_info *info)
{
    const struct dr_domain *d = &r->domains[i];

    info->domain = d->name;
    info->rua = d->policy.rua;
    info->nrecords = d->nrecords;
    info->nmessages = d->nmessages;
}

/* ------------------------------------------------------------ XML */

/* Length of the valid UTF-8 sequence at s (1..4), or 0. */
static size_t dr_utf8_len(const unsigned char *s)
{
    size_t n;
    uint32_t c;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2, c = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3, c = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4, c = s[0] & 0x07;
    else
        return 0;
    for (size_t k = 1; k < n; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[k] & 0x3f);
    }
    if ((n == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) || (n == 4 && (c < 0x10000
        || c > 0x10ffff)))
        return 0;
    return n;
}

static void dr_xml_text(buf_t *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        size_t n = dr_utf8_len(p);

        if (*p == '&')
            buf_append_str(out, "&amp;");
        else if (*p == '<')
            buf_append_str(out, "&lt;");
        else if (*p == '>')
            buf_append_str(out, "&gt;");
        else if (*p == '"')
            buf_append_str(out, "&quot;");
        else if (*p == '\'')
            buf_append_str(out, "&apos;");
        else if (n == 0 || (*p < 0x20 && *p != '\t') || *p == 0x7f)
            buf_putc(out, '?');
        else {
            buf_append(out, p, n);
            p += n;
            continue;
        }
        p++;
    }
}

static void dr_elem(buf_t *out, int indent, const char *name, const char *text)
{
    buf_printf(out, "%*s<%s>", indent, "", name);
    dr_xml_text(out, text);
    buf_printf(out, "</%s>\n", name);
}

/* source_ip in a form the schema's IPAddress pattern takes. */
static void dr_ip(buf_t *out, const char *ip)
{
    unsigned char a[16];
    char text[64];

    if (inet_pton(AF_INET6, ip, a) == 1) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

        if (memcmp(a, mapped, 12) == 0) {
            snprintf(text, sizeof(text), "%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
        } else {
            int n = 0;

            for (int g = 0; g < 8; g++)
                n += snprintf(text + n, sizeof(text) - (size_t)n, "%s%x", g ? ":" : "",
                              (unsigned)(a[2 * g] << 8 | a[2 * g + 1]));
        }
        dr_elem(out, 6, "source_ip", text);
    } else {
        dr_elem(out, 6, "source_ip", ip);
    }
}

static void dr_day(long long when, char day[16])
{
    time_t t = (time_t)when;
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL)
        snprintf(day, 16, "00000000");
    else
        snprintf(day, 16, "%04d%02d%02d", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
                 tm.tm_mday % 100);
}

char *dmarcreport_id(const dmarcreport_t *r, size_t i, const struct dmarcreport_meta *m)
{
    char day[16];

    dr_day(r->begin, day);
    return xasprintf("%s.%s@%s", day, r->domains[i].name, m->receiver);
}

char *dmarcreport_file_name(const dmarcreport_t *r, size_t i, const struct dmarcreport_meta *m)
{
    return xasprintf("%s!%s!%lld!%lld.xml.gz", m->receiver, r->domains[i].name, r->begin, r->end);
}

static void dr_record_xml(buf_t *out, const struct dr_record *rec)
{
    const struct dmarchist_row *w = &rec->row;
    char count[32];

    buf_append_str(out, "  <record>\n    <row>\n");
    dr_ip(out, w->source_ip);
    snprintf(count, sizeof(count), "%llu", rec->count);
    dr_elem(out, 6, "count", count);
    buf_append_str(out, "      <policy_evaluated>\n");
    dr_elem(out, 8, "disposition", w->disposition);
    dr_elem(out, 8, "dkim", w->dkim_aligned ? "pass" : "fail");
    dr_elem(out, 8, "spf", w->spf_aligned ? "pass" : "fail");
    if (*w->reason) {
        buf_append_str(out, "        <reason>\n");
        dr_elem(out, 10, "type", w->reason);
        buf_append_str(out, "        </reason>\n");
    }
    buf_append_str(out, "      </policy_evaluated>\n    </row>\n    <identifiers>\n");
    if (*w->envelope_to)
        dr_elem(out, 6, "envelope_to", w->envelope_to);
    dr_elem(out, 6, "envelope_from", w->envelope_from);
    dr_elem(out, 6, "header_from", w->header_from);
    buf_append_str(out, "    </identifiers>\n    <auth_results>\n");
    for (size_t k = 0; k < w->ndkim; k++) {
        buf_append_str(out, "      <dkim>\n");
        dr_elem(out, 8, "domain", w->dkim[k].domain);
        if (*w->dkim[k].selector)
            dr_elem(out, 8, "selector", w->dkim[k].selector);
        dr_elem(out, 8, "result", w->dkim[k].result);
        buf_append_str(out, "      </dkim>\n");
    }
    buf_append_str(out, "      <spf>\n");
    dr_elem(out, 8, "domain", w->spf_domain);
    dr_elem(out, 8, "scope", w->spf_scope);
    dr_elem(out, 8, "result", w->spf_result);
    buf_append_str(out, "      </spf>\n    </auth_results>\n  </record>\n");
}

void dmarcreport_xml(const dmarcreport_t *r, size_t i, const struct dmarcreport_meta *m,
                     buf_t *out)
{
    const struct dr_domain *d = &r->domains[i];
    const struct dmarchist_row *p = &d->policy;
    char *id = dmarcreport_id(r, i, m), num[32], mode[2] = "";

    buf_append_str(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n"
                   "  <version>1.0</version>\n  <report_metadata>\n");
    dr_elem(out, 4, "org_name", m->org_name);
    dr_elem(out, 4, "email", m->email);
    dr_elem(out, 4, "report_id", id);
    buf_append_str(out, "    <date_range>\n");
    snprintf(num, sizeof(num), "%lld", r->begin);
    dr_elem(out, 6, "begin", num);
    snprintf(num, sizeof(num), "%lld", r->end);
    dr_elem(out, 6, "end", num);
    buf_append_str(out, "    </date_range>\n  </report_metadata>\n  <policy_published>\n");
    dr_elem(out, 4, "domain", d->name);
    mode[0] = p->adkim;
    dr_elem(out, 4, "adkim", mode);
    mode[0] = p->aspf;
    dr_elem(out, 4, "aspf", mode);
    dr_elem(out, 4, "p", p->p);
    dr_elem(out, 4, "sp", p->sp);
    snprintf(num, sizeof(num), "%d", p->pct);
    dr_elem(out, 4, "pct", num);
    dr_elem(out, 4, "fo", *p->fo ? p->fo : "0");
    buf_append_str(out, "  </policy_published>\n");
    for (size_t k = 0; k < d->nrecords; k++)
        dr_record_xml(out, &r->records[d->records[k]]);
    buf_append_str(out, "</feedback>\n");
    free(id);
}

/* ------------------------------------------------------------ gzip, MIME */

int dmarcreport_gzip(const void *data, size_t len, buf_t *out, const char **error_r)
{
    z_stream z;
    size_t bound, start = out->len;
    unsigned char *dst;
    int rc;

    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        *error_r = "zlib: deflateInit2 failed";
        return -1;
    }
    bound = deflateBound(&z, (uLong)len) + 64;
    dst = xmalloc(bound);
    z.next_in = (unsigned char *)(uintptr_t)data;
    z.avail_in = (uInt)len;
    z.next_out = dst;
    z.avail_out = (uInt)bound;
    rc = deflate(&z, Z_FINISH);
    if (rc != Z_STREAM_END || len > UINT32_MAX / 2) {
        deflateEnd(&z);
        free(dst);
        *error_r = "zlib: deflate failed";
        return -1;
    }
    if (buf_append(out, dst, bound - z.avail_out) < 0) {
        buf_truncate(out, start);
        deflateEnd(&z);
        free(dst);
        *error_r = "the compressed report is too large";
        return -1;
    }
    deflateEnd(&z);
    free(dst);
    return 0;
}

void dmarcreport_message(const dmarcreport_t *r, size_t i, const struct dmarcreport_meta *m,
                         const char *to, const buf_t *gz, buf_t *out)
{
    const struct dr_domain *d = &r->domains[i];
    char *id = dmarcreport_id(r, i, m), *file = dmarcreport_file_name(r, i, m);
    char day[16], boundary[80];
    buf_t *b64 = buf_new(0);

    dr_day(r->begin, day);
    snprintf(boundary, sizeof(boundary), "=_dmarc_%016llx",
             (unsigned long long)dr_hash(id) ^ (unsigned long long)gz->len);
    buf_printf(out, "From: %s\nTo: %s\n", m->email, to);
    buf_printf(out, "Subject: Report Domain: %s Submitter: %s Report-ID: <%s>\n", d->name,
               m->receiver, id);
    buf_printf(out, "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"%s\"\n\n",
               boundary);
    buf_printf(out, "This is a multi-part message in MIME format.\n\n--%s\n"
               "Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n\n"
               "This is a DMARC aggregate report (RFC 7489) from %s for %s.\n"
               "Report-ID: <%s>\nPeriod: %.4s-%.2s-%.2s, %lld to %lld (UTC)\n"
               "Messages: %llu in %zu records\n\n",
               boundary, m->receiver, d->name, id, day, day + 4, day + 6, r->begin, r->end,
               d->nmessages, d->nrecords);
    buf_printf(out, "--%s\nContent-Type: application/gzip; name=\"%s\"\n"
               "Content-Transfer-Encoding: base64\n"
               "Content-Disposition: attachment; filename=\"%s\"\n\n", boundary, file, file);
    base64_encode(b64, gz->data, gz->len);
    for (size_t k = 0; k < b64->len; k += 76) {
        buf_append(out, b64->data + k, b64->len - k < 76 ? b64->len - k : 76);
        buf_putc(out, '\n');
    }
    buf_printf(out, "\n--%s--\n", boundary);
    buf_free(&b64);
    free(id);
    free(file);
}

/* ------------------------------------------------------------ rua */

static int dr_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One URI (trimmed) into dest. */
static void dr_dest(struct dmarcreport_dest *dest, const char *uri)
{
    static const char local_ok[] = "!#$%&'*+/=?^_`{|}~.-";
    const char *bang = strrchr(uri, '!'), *end, *at;
    buf_t *addr = buf_new(0);

    dest->uri = xstrdup(uri);
    if (strncasecmp(uri, "mailto:", 7) != 0) {
        dest->error = "not a mailto: URI (only mailto: is supported)";
        goto out;
    }
    end = bang ? bang : uri + strlen(uri);
    if (bang) {
        const char *p = bang + 1;
        unsigned long long n = 0, mult = 1;
        size_t digits = 0;

        for (; *p >= '0' && *p <= '9' && digits < 16; p++, digits++)
            n = n * 10 + (unsigned long long)(*p - '0');
        switch (tolower((unsigned char)*p)) {
        case 'k': mult = 1ULL << 10; p++; break;
        case 'm': mult = 1ULL << 20; p++; break;
        case 'g': mult = 1ULL << 30; p++; break;
        case 't': mult = 1ULL << 40; p++; break;
        default: break;
        }
        if (digits == 0 || digits >= 16 || *p != '\0') {
            dest->error = "bad size limit after '!'";
            goto out;
        }
        dest->max_size = n > UINT64_MAX / mult ? UINT64_MAX : n * mult;
        if (dest->max_size == 0)
            dest->max_size = 1;         /* "!0": nothing fits */
    }
    if (memchr(uri + 7, '?', (size_t)(end - uri - 7)))
        end = memchr(uri + 7, '?', (size_t)(end - uri - 7));    /* headers: ignored */
    for (const char *p = uri + 7; p < end; p++) {
        int c = (unsigned char)*p, hi, lo;

        if (c == '%') {
            if (end - p < 3 || (hi = dr_hexval(p[1])) < 0 || (lo = dr_hexval(p[2])) < 0) {
                dest->error = "bad %-escape in the address";
                goto out;
            }
            c = hi * 16 + lo;
            p += 2;
        }
        buf_putc(addr, c);
    }
    at = strrchr(buf_cstr(addr), '@');
    if (at == NULL || at == addr->data || at[1] == '\0' || strchr(addr->data, '@') != at) {
        dest->error = "the mailto: address is not local@domain";
        goto out;
    }
    for (const char *p = addr->data; p < at; p++)
        if (!isalnum((unsigned char)*p) && strchr(local_ok, *p) == NULL) {
            dest->error = "the address's local part has characters this reporter does not send to";
            goto out;
        }
    for (const char *p = at + 1; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.') {
            dest->error = "the address's domain is not a host name";
            goto out;
        }
    dest->address = xstrdup(addr->data);
    dest->domain = xstrdup(at + 1);
    for (char *p = dest->domain; *p; p++)
        *p = (char)tolower((unsigned char)*p);
out:
    buf_free(&addr);
}

void dmarcreport_rua(const char *rua, struct dmarcreport_dest **dests, size_t *n)
{
    const char *p = rua;

    *dests = NULL;
    *n = 0;
    while (p && *p) {
        const char *comma = strchr(p, ','), *e = comma ? comma : p + strlen(p);
        const char *s = p;
        char *uri;

        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > s) {
            uri = xstrndup(s, (size_t)(e - s));
            *dests = xreallocarray(*dests, *n + 1, sizeof(**dests));
            memset(&(*dests)[*n], 0, sizeof(**dests));
            if (*n >= DMARCREPORT_MAX_DESTS) {
                (*dests)[*n].uri = uri;
                (*dests)[*n].error = "more than 5 destinations: ignored";
            } else {
                dr_dest(&(*dests)[*n], uri);
                free(uri);
            }
            ++*n;
        }
        p = comma ? comma + 1 : NULL;
    }
}

void dmarcreport_dests_free(struct dmarcreport_dest **dests, size_t n)
{
    for (size_t i = 0; *dests && i < n; i++) {
        free((*dests)[i].uri);
        free((*dests)[i].address);
        free((*dests)[i].domain);
    }
    free(*dests);
    *dests = NULL;
}
