/*
 * t/fuzz/spfcheck.c - libFuzzer harness for lib/spfcheck: arbitrary SPF
 * records, explanations and macro-laden identities through libspf2's
 * evaluation and our DNS layer, with the DNS answered from memory
 * (spfcheck_set_lookup(), the module's test seam).
 *
 * Input: lines.  Byte 0 of line 0 picks the client (IPv4 or IPv6, one of
 * a few addresses) and the identity (HELO or MAIL FROM); the rest of line
 * 0 is the sender's local part, line 1 the HELO name (both any bytes:
 * macro fodder), and line 2+i the TXT record of r<i>.f.test.  The checked
 * domain is r0.f.test.  Every other answer comes from a hash of the
 * query: NXDOMAIN, NODATA, a temporary failure, or records (A/AAAA that
 * sometimes are the client's address, MX and PTR names under f.test, up
 * to 12 of them; TXT of a name outside the table: one of the lines).
 *
 * Invariants: 0 is returned; the result is one of the seven; domain,
 * comment and received_spf are set; neither comment nor received_spf has
 * a CR, LF or NUL-truncation surprise, and received_spf starts with the
 * result word; an explanation only with fail; no more than
 * SPFCHECK_MAX_QUERIES lookups per evaluation; nothing leaks (ASan).
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "fuzzlib.h"
#include "spfcheck.h"
#include "xalloc.h"

#define MAXLINES 16

static dns_t *fz_dns;
static spfcheck_t *fz_spf;
static char *fz_line[MAXLINES];
static size_t fz_nlines;
static int fz_queries;
static const char *fz_client;

static uint32_t hash(const char *s, int type)
{
    uint32_t h = 2166136261u ^ (uint32_t)type;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static dns_result_t *answer(void *arg, const char *name, enum dns_type type)
{
    dns_result_t *res = xcalloc(1, sizeof(*res));
    uint32_t h = hash(name, type);
    size_t n;

    (void)arg;
    fz_queries++;
    res->type = type;
    res->qname = xstrdup(name);
    res->canonname = xstrdup(name);
    if (type == DNS_T_TXT && strncmp(name, "r", 1) == 0 && strlen(name) > 8
        && strcmp(name + strlen(name) - 7, ".f.test") == 0) {
        char *end;
        unsigned long i = strtoul(name + 1, &end, 10);

        if (end != name + 1 && strcmp(end, ".f.test") == 0) {
            if (i + 2 >= fz_nlines) {
                res->status = DNS_NXDOMAIN;
                return res;
            }
            res->status = DNS_OK;
            res->nrr = 1;
            res->rr = xcalloc(1, sizeof(*res->rr));
            res->rr[0].u.txt.nstrings = 1;
            res->rr[0].u.txt.strings = xcalloc(1, sizeof(char *));
            res->rr[0].u.txt.lens = xcalloc(1, sizeof(size_t));
            res->rr[0].u.txt.strings[0] = xstrdup(fz_line[i + 2]);
            res->rr[0].u.txt.lens[0] = strlen(fz_line[i + 2]);
            res->rr[0].u.txt.joined = xstrdup(fz_line[i + 2]);
            res->rr[0].u.txt.len = strlen(fz_line[i + 2]);
            return res;
        }
    }
    switch (h % 5) {
    case 0:
        res->status = DNS_NXDOMAIN;
        return res;
    case 1:
        res->status = DNS_NODATA;
        return res;
    case 2:
        if ((h >> 8) % 4 == 0) {
            res->status = DNS_TEMPFAIL;
            res->why = xstrdup("fuzz");
            return res;
        }
        break;
    default:
        break;
    }
    res->status = DNS_OK;
    n = 1 + (h >> 12) % 12;
    if (type == DNS_T_TXT) {
        /* One of the lines: an explanation, or a record again. */
        const char *t = fz_nlines ? fz_line[(h >> 4) % fz_nlines] : "";

        res->nrr = 1 + (h >> 20) % 2;
        res->rr = xcalloc(res->nrr, sizeof(*res->rr));
        for (size_t i = 0; i < res->nrr; i++) {
            struct dns_txt *x = &res->rr[i].u.txt;

            x->nstrings = 1;
            x->strings = xcalloc(1, sizeof(char *));
            x->lens = xcalloc(1, sizeof(size_t));
            x->strings[0] = xstrdup(t);
            x->lens[0] = strlen(t);
            x->joined = xstrdup(t);
            x->len = strlen(t);
        }
        return res;
    }
    res->nrr = n;
    res->rr = xcalloc(n, sizeof(*res->rr));
    for (size_t i = 0; i < n; i++) {
        struct dns_rr *r = &res->rr[i];
        uint32_t g = h + (uint32_t)i * 2654435761u;

        switch (type) {
        case DNS_T_A:
            r->u.addr.family = AF_INET;
            if (g % 3 == 0 && inet_pton(AF_INET, fz_client, r->u.addr.bytes) == 1)
                break;
            r->u.addr.bytes[0] = 192;
            r->u.addr.bytes[2] = 2;
            r->u.addr.bytes[3] = (unsigned char)(g >> 8);
            break;
        case DNS_T_AAAA:
            r->u.addr.family = AF_INET6;
            if (g % 3 == 0 && inet_pton(AF_INET6, fz_client, r->u.addr.bytes) == 1)
                break;
            r->u.addr.bytes[0] = 0x20;
            r->u.addr.bytes[1] = 0x01;
            r->u.addr.bytes[2] = 0x0d;
            r->u.addr.bytes[3] = 0xb8;
            r->u.addr.bytes[15] = (unsigned char)(g >> 8);
            break;
        case DNS_T_MX:
            r->u.mx.pref = g % 50;
            r->u.mx.host = g % 17 == 0 ? xstrdup(".") : xasprintf("m%u.f.test", (g >> 8) % 20);
            break;
        case DNS_T_PTR:
            r->u.name = g % 2 ? xasprintf("r%u.f.test", (g >> 8) % 4)
                              : xasprintf("h%u.x.r0.f.test", (g >> 8) % 20);
            break;
        default:
            break;
        }
    }
    return res;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const clients[] = {"192.0.2.10", "127.0.0.1", "2001:db8::10", "::1",
                                          "::ffff:192.0.2.10", "198.51.100.7"};
    struct spfcheck_outcome out;
    char *copy, *p, *nl, *sender;
    int identity, r;

    if (fz_spf == NULL) {
        struct dns_settings ds = {"127.0.0.1@1", NULL, NULL, 100};
        const char *why;

        fuzz_init();
        if ((fz_dns = dns_new(&ds, &why)) == NULL
            || (fz_spf = spfcheck_new(fz_dns, "mx.f.test", &why)) == NULL)
            fuzz_fail("set-up: %s", why);
        spfcheck_set_lookup(fz_spf, answer, NULL);
    }
    if (size == 0)
        return 0;
    copy = xmalloc(size + 1);
    memcpy(copy, data, size);
    copy[size] = '\0';
    fz_client = clients[(unsigned char)copy[0] % 6];
    identity = (unsigned char)copy[0] / 6 % 3;
    fz_nlines = 0;
    for (p = copy + 1; p && fz_nlines < MAXLINES; p = nl) {
        if ((nl = strchr(p, '\n')) != NULL)
            *nl++ = '\0';
        fz_line[fz_nlines++] = p;
    }
    while (fz_nlines < 2)
        fz_line[fz_nlines++] = (char *)"";
    sender = xasprintf("%s@r0.f.test", fz_line[0]);
    fz_queries = 0;
    if (identity == 0)
        r = spfcheck_helo(fz_spf, fz_client, fz_line[1], &out);
    else
        r = spfcheck_mailfrom(fz_spf, fz_client, fz_line[1], identity == 1 ? sender : "", &out);
    if (r != 0)
        fuzz_fail("spfcheck returned %d: %s", r, out.comment ? out.comment : "");
    if ((unsigned)out.result > SPFCHECK_PERMERROR)
        fuzz_fail("result %d", (int)out.result);
    if (!out.domain || !out.comment || !out.received_spf)
        fuzz_fail("outcome incomplete");
    if (strpbrk(out.comment, "\r\n") || strpbrk(out.received_spf, "\r\n"))
        fuzz_fail("CR or LF in the outcome: %s", out.received_spf);
    if (strncmp(out.received_spf, spfcheck_result_name(out.result),
                strlen(spfcheck_result_name(out.result))) != 0)
        fuzz_fail("Received-SPF does not start with the result: %s", out.received_spf);
    if (out.explanation && out.result != SPFCHECK_FAIL)
        fuzz_fail("an explanation with %s", spfcheck_result_name(out.result));
    if (fz_queries > SPFCHECK_MAX_QUERIES)
        fuzz_fail("%d queries", fz_queries);
    spfcheck_outcome_clear(&out);
    free(sender);
    free(copy);
    return 0;
}
