/*
 * dns_rdata - the pure half of lib/dns (see dns.h): domain names (syntax,
 * the uncompressed wire form in RDATA), the RDATA of the record types we
 * ask for (MX, A, AAAA, PTR, TXT, TLSA) parsed and formatted, reverse
 * names, null MX, and the names of types and statuses.  No I/O and no
 * libunbound here, so all of it is unit-tested and fuzzed (t/unit/dns.c,
 * t/fuzz/dns_rdata.c) on its own.
 *
 * Failure modes: malformed data is a -1 return with a fixed reason (a
 * compression pointer, a bad label, a name over 255 bytes, truncated or
 * trailing bytes); nothing here aborts on input.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "buf.h"
#include "dns.h"
#include "msg.h"
#include "xalloc.h"

/* ---------------------------------------------------------------- names */

int dns_name_valid(const char *name)
{
    size_t n = strlen(name), label = 0;

    if (strcmp(name, ".") == 0)
        return 1;
    if (n > 0 && name[n - 1] == '.')
        n--;
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];

        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
            continue;
        }
        if (c <= ' ' || c >= 0x7f || c == '\\' || ++label > 63)
            return 0;
    }
    return label > 0;
}

int dns_parse_name(const unsigned char *rd, size_t len, size_t *off, char **name,
                   const char **why)
{
    size_t p = *off, wire = 0;
    buf_t *b = buf_new(0);

    *name = NULL;
    for (;;) {
        unsigned l;

        if (p >= len) {
            *why = "truncated name";
            goto fail;
        }
        l = rd[p];
        if ((l & 0xC0) == 0xC0) {
            *why = "compression pointer in a name";
            goto fail;
        }
        if (l & 0xC0) {
            *why = "unknown label type (or a label longer than 63 bytes)";
            goto fail;
        }
        wire += l + 1;
        if (wire > 255) {
            *why = "name longer than 255 bytes";
            goto fail;
        }
        if (l == 0) {
            p++;
            break;
        }
        if (len - p - 1 < l) {
            *why = "truncated label";
            goto fail;
        }
        for (size_t i = p + 1; i <= p + l; i++) {
            unsigned char c = rd[i];

            if (c == '.' || c == '\\')
                buf_printf(b, "\\%c", c);
            else if (c <= ' ' || c >= 0x7f)
                buf_printf(b, "\\%03u", c);
            else
                buf_putc(b, c);
        }
        buf_putc(b, '.');
        p += 1 + l;
    }
    if (b->len == 0)
        buf_putc(b, '.');
    else
        buf_truncate(b, b->len - 1);
    *name = buf_steal(b, NULL);
    buf_free(&b);
    *off = p;
    return 0;
fail:
    buf_free(&b);
    return -1;
}

/* ---------------------------------------------------------------- RDATA */

static int parse_host(const unsigned char *rd, size_t len, size_t off, char **host,
                      const char **why)
{
    if (dns_parse_name(rd, len, &off, host, why) < 0)
        return -1;
    if (off != len) {
        xfree(host);
        *why = "trailing bytes after the name";
        return -1;
    }
    return 0;
}

static int parse_txt(const unsigned char *rd, size_t len, struct dns_txt *t, const char **why)
{
    size_t p, n = 0, total = 0;

    if (len == 0) {
        *why = "empty TXT record";
        return -1;
    }
    for (p = 0; p < len; p += 1 + rd[p], n++) {
        if (len - p - 1 < rd[p]) {
            *why = "truncated TXT string";
            return -1;
        }
        total += rd[p];
    }
    t->nstrings = n;
    t->strings = xcalloc(n, sizeof(*t->strings));
    t->lens = xcalloc(n, sizeof(*t->lens));
    t->joined = xmalloc(total + 1);
    t->len = 0;
    for (p = 0, n = 0; p < len; p += 1 + rd[p], n++) {
        t->lens[n] = rd[p];
        t->strings[n] = xmalloc((size_t)rd[p] + 1);
        memcpy(t->strings[n], rd + p + 1, rd[p]);
        t->strings[n][rd[p]] = '\0';
        memcpy(t->joined + t->len, rd + p + 1, rd[p]);
        t->len += rd[p];
    }
    t->joined[t->len] = '\0';
    return 0;
}

int dns_parse_rdata(enum dns_type type, const unsigned char *rd, size_t len,
                    struct dns_rr *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    switch (type) {
    case DNS_T_MX:
        if (len < 3) {
            *why = "MX record shorter than 3 bytes";
            return -1;
        }
        out->u.mx.pref = (unsigned)rd[0] << 8 | rd[1];
        return parse_host(rd, len, 2, &out->u.mx.host, why);
    case DNS_T_A:
    case DNS_T_AAAA: {
        size_t want = type == DNS_T_A ? 4 : 16;

        if (len != want) {
            *why = type == DNS_T_A ? "A record is not 4 bytes" : "AAAA record is not 16 bytes";
            return -1;
        }
        out->u.addr.family = type == DNS_T_A ? AF_INET : AF_INET6;
        memcpy(out->u.addr.bytes, rd, want);
        return 0;
    }
    case DNS_T_PTR:
        return parse_host(rd, len, 0, &out->u.name, why);
    case DNS_T_TXT:
        return parse_txt(rd, len, &out->u.txt, why);
    case DNS_T_TLSA:
        if (len < 3) {
            *why = "TLSA record shorter than 3 bytes";
            return -1;
        }
        if (len == 3) {
            *why = "TLSA record without certificate association data";
            return -1;
        }
        out->u.tlsa.usage = rd[0];
        out->u.tlsa.selector = rd[1];
        out->u.tlsa.mtype = rd[2];
        out->u.tlsa.len = len - 3;
        out->u.tlsa.data = xmemdup(rd + 3, len - 3);
        return 0;
    }
    *why = "unsupported record type";
    return -1;
}

/* A deep copy of one record. */
static void dns_rr_copy(enum dns_type type, const struct dns_rr *from, struct dns_rr *to)
{
    *to = *from;
    switch (type) {
    case DNS_T_MX:
        to->u.mx.host = xstrdup(from->u.mx.host);
        break;
    case DNS_T_PTR:
        to->u.name = xstrdup(from->u.name);
        break;
    case DNS_T_TXT:
        to->u.txt.strings = xcalloc(from->u.txt.nstrings + 1, sizeof(char *));
        to->u.txt.lens = xcalloc(from->u.txt.nstrings + 1, sizeof(size_t));
        for (size_t i = 0; i < from->u.txt.nstrings; i++) {
            to->u.txt.strings[i] = xmalloc(from->u.txt.lens[i] + 1);
            memcpy(to->u.txt.strings[i], from->u.txt.strings[i], from->u.txt.lens[i] + 1);
            to->u.txt.lens[i] = from->u.txt.lens[i];
        }
        to->u.txt.joined = xmalloc(from->u.txt.len + 1);
        memcpy(to->u.txt.joined, from->u.txt.joined, from->u.txt.len + 1);
        break;
    case DNS_T_TLSA:
        to->u.tlsa.data = xmalloc(from->u.tlsa.len);
        memcpy(to->u.tlsa.data, from->u.tlsa.data, from->u.tlsa.len);
        break;
    case DNS_T_A:
    case DNS_T_AAAA:
        break;
    }
}

dns_result_t *dns_result_copy(const dns_result_t *res)
{
    dns_result_t *c = xcalloc(1, sizeof(*c));

    *c = *res;
    c->qname = res->qname ? xstrdup(res->qname) : NULL;
    c->canonname = res->canonname ? xstrdup(res->canonname) : NULL;
    c->why = res->why ? xstrdup(res->why) : NULL;
    c->rr = res->nrr ? xcalloc(res->nrr, sizeof(*c->rr)) : NULL;
    for (size_t i = 0; i < res->nrr; i++)
        dns_rr_copy(res->type, &res->rr[i], &c->rr[i]);
    return c;
}

void dns_rr_clear(enum dns_type type, struct dns_rr *rr)
{
    switch (type) {
    case DNS_T_MX:
        free(rr->u.mx.host);
        break;
    case DNS_T_PTR:
        free(rr->u.name);
        break;
    case DNS_T_TXT:
        for (size_t i = 0; i < rr->u.txt.nstrings; i++)
            free(rr->u.txt.strings[i]);
        free(rr->u.txt.strings);
        free(rr->u.txt.lens);
        free(rr->u.txt.joined);
        break;
    case DNS_T_TLSA:
        free(rr->u.tlsa.data);
        break;
    case DNS_T_A:
    case DNS_T_AAAA:
        break;
    }
    memset(rr, 0, sizeof(*rr));
}

static void format_chars(buf_t *out, const char *s, size_t n)
{
    buf_putc(out, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '"' || c == '\\')
            buf_printf(out, "\\%c", c);
        else if (c < ' ' || c >= 0x7f)
            buf_printf(out, "\\%03u", c);
        else
            buf_putc(out, c);
    }
    buf_putc(out, '"');
}

void dns_rr_format(enum dns_type type, const struct dns_rr *rr, buf_t *out)
{
    char text[INET6_ADDRSTRLEN];

    switch (type) {
    case DNS_T_MX:
        buf_printf(out, "%u %s", rr->u.mx.pref, rr->u.mx.host);
        break;
    case DNS_T_A:
    case DNS_T_AAAA:
        if (inet_ntop(rr->u.addr.family, rr->u.addr.bytes, text, sizeof(text)) == NULL)
            msg_panic("dns_rr_format: address family %d", rr->u.addr.family);
        buf_append_str(out, text);
        break;
    case DNS_T_PTR:
        buf_append_str(out, rr->u.name);
        break;
    case DNS_T_TXT:
        for (size_t i = 0; i < rr->u.txt.nstrings; i++) {
            if (i > 0)
                buf_putc(out, ' ');
            format_chars(out, rr->u.txt.strings[i], rr->u.txt.lens[i]);
        }
        break;
    case DNS_T_TLSA:
        buf_printf(out, "%u %u %u ", rr->u.tlsa.usage, rr->u.tlsa.selector, rr->u.tlsa.mtype);
        for (size_t i = 0; i < rr->u.tlsa.len; i++)
            buf_printf(out, "%02x", rr->u.tlsa.data[i]);
        break;
    }
}

char *dns_reverse_name(const char *addr)
{
    unsigned char b[16];
    buf_t *out;
    char *s;

    if (inet_pton(AF_INET, addr, b) == 1)
        return xasprintf("%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1], b[0]);
    if (inet_pton(AF_INET6, addr, b) != 1)
        return NULL;
    out = buf_new(0);
    for (int i = 15; i >= 0; i--)
        buf_printf(out, "%x.%x.", b[i] & 0xf, b[i] >> 4);
    buf_append_str(out, "ip6.arpa");
    s = buf_steal(out, NULL);
    buf_free(&out);
    return s;
}

int dns_mx_is_null(const dns_result_t *res)
{
    return res->status == DNS_OK && res->type == DNS_T_MX && res->nrr == 1
        && res->rr[0].u.mx.pref == 0 && strcmp(res->rr[0].u.mx.host, ".") == 0;
}

static const struct {
    enum dns_type type;
    const char   *name;
} dns_types[] = {
    {DNS_T_A, "A"}, {DNS_T_PTR, "PTR"}, {DNS_T_MX, "MX"}, {DNS_T_TXT, "TXT"},
    {DNS_T_AAAA, "AAAA"}, {DNS_T_TLSA, "TLSA"},
};

const char *dns_type_str(enum dns_type type)
{
    for (size_t i = 0; i < sizeof(dns_types) / sizeof(dns_types[0]); i++)
        if (dns_types[i].type == type)
            return dns_types[i].name;
    return "unknown";
}

int dns_type_from_str(const char *s)
{
    for (size_t i = 0; i < sizeof(dns_types) / sizeof(dns_types[0]); i++)
        if (strcasecmp(dns_types[i].name, s) == 0)
            return (int)dns_types[i].type;
    return -1;
}

const char *dns_status_str(enum dns_status status)
{
    switch (status) {
    case DNS_OK:       return "OK";
    case DNS_NODATA:   return "NODATA";
    case DNS_NXDOMAIN: return "NXDOMAIN";
    case DNS_TEMPFAIL: return "TEMPFAIL";
    case DNS_BOGUS:    return "BOGUS";
    case DNS_INVALID:  return "INVALID";
    }
    return "unknown";
}
