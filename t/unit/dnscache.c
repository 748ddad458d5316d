/*
 * t/unit/dnscache.c - unit tests for lib/dnscache.c and dns_result_copy():
 * an answer comes back as an equal, separate copy (TXT strings, MX hosts),
 * names match without case, an answer expires after its TTL or max_ttl,
 * failures and TTL 0 are not kept, a full cache drops expired entries and
 * then the oldest, and an answer put again replaces the old one.
 */
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "dnscache.h"
#include "msg.h"
#include "xalloc.h"
#include "../lib/tap.h"

static dns_result_t *txt(const char *name, const char *text, unsigned ttl, enum dns_status st)
{
    dns_result_t *r = xcalloc(1, sizeof(*r));

    r->status = st;
    r->type = DNS_T_TXT;
    r->qname = xstrdup(name);
    r->canonname = xstrdup(name);
    r->ttl = ttl;
    if (st == DNS_OK) {
        r->nrr = 1;
        r->rr = xcalloc(1, sizeof(*r->rr));
        r->rr[0].u.txt.nstrings = 1;
        r->rr[0].u.txt.strings = xcalloc(2, sizeof(char *));
        r->rr[0].u.txt.strings[0] = xstrdup(text);
        r->rr[0].u.txt.lens = xcalloc(2, sizeof(size_t));
        r->rr[0].u.txt.lens[0] = strlen(text);
        r->rr[0].u.txt.joined = xstrdup(text);
        r->rr[0].u.txt.len = strlen(text);
    } else {
        r->why = xstrdup("why");
    }
    return r;
}

static void put(dnscache_t *c, const char *name, const char *text, unsigned ttl,
                enum dns_status st, long long now)
{
    dns_result_t *r = txt(name, text, ttl, st);

    dnscache_put(c, r, now);
    dns_result_free(&r);
}

static const char *got(dnscache_t *c, const char *name, long long now)
{
    static char out[64];
    dns_result_t *r = dnscache_get(c, name, DNS_T_TXT, now);

    if (r == NULL)
        return "(none)";
    strlcpy(out, r->status == DNS_OK ? r->rr[0].u.txt.joined : dns_status_str(r->status),
            sizeof(out));
    dns_result_free(&r);
    return out;
}

int main(void)
{
    dnscache_t *c = dnscache_new(3, 300);
    dns_result_t *r, *copy;

    msg_init("dnscache-test", MSG_STDERR);
    put(c, "a.test", "v=spf1 -all", 60, DNS_OK, 0);
    is_str(got(c, "a.test", 1000), "v=spf1 -all", "an answer comes back");
    is_str(got(c, "A.TEST", 1000), "v=spf1 -all", "names match without case");
    ok(dnscache_get(c, "a.test", DNS_T_A, 1000) == NULL, "another type is another answer");
    is_str(got(c, "a.test", 60000), "(none)", "gone after its TTL");
    put(c, "b.test", "x", 100000, DNS_OK, 0);
    is_str(got(c, "b.test", 299000), "x", "kept up to max_ttl");
    is_str(got(c, "b.test", 300000), "(none)", "but no longer");
    put(c, "c.test", "", 60, DNS_TEMPFAIL, 0);
    is_str(got(c, "c.test", 1), "(none)", "a temporary failure is not kept");
    put(c, "c.test", "y", 0, DNS_OK, 0);
    is_str(got(c, "c.test", 1), "(none)", "nor an answer with TTL 0");
    put(c, "d.test", "", 60, DNS_NXDOMAIN, 0);
    is_str(got(c, "d.test", 1), "NXDOMAIN", "a negative answer is kept");
    put(c, "d.test", "z", 60, DNS_OK, 10);
    is_str(got(c, "d.test", 11), "z", "an answer put again replaces the old one");
    put(c, "e.test", "1", 60, DNS_OK, 20);
    put(c, "f.test", "2", 60, DNS_OK, 30);
    put(c, "g.test", "3", 60, DNS_OK, 40);
    is_str(got(c, "d.test", 50), "(none)", "full: the oldest went");
    is_str(got(c, "g.test", 50), "3", "the newest is there");
    put(c, "h.test", "4", 1, DNS_OK, 45);
    put(c, "i.test", "5", 60, DNS_OK, 2000);
    is_str(got(c, "e.test", 2001), "(none)", "full: the expired one goes before the oldest");
    is_str(got(c, "f.test", 2001), "2", "  and the others stay");

    r = txt("m.test", "copy me", 60, DNS_OK);
    copy = dns_result_copy(r);
    ok(copy->rr != r->rr && copy->rr[0].u.txt.joined != r->rr[0].u.txt.joined
       && strcmp(copy->rr[0].u.txt.strings[0], "copy me") == 0 && copy->rr[0].u.txt.lens[0] == 7,
       "dns_result_copy: an equal, separate copy");
    dns_result_free(&r);
    dns_result_free(&copy);
    dnscache_free(&c);
    ok(c == NULL, "freed");
    return done_testing();
}
