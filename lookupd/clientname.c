/*
 * clientname - lookupd's FCrDNS client-name lookups (see clientname.h).
 *
 * One struct clientname per lookup: the PTR query, then an A and an AAAA
 * query per candidate name, all in flight at once, and one deadline timer.
 * finish() detaches every query and the timer before it calls back, so a
 * callback never finds anything of the lookup still running.
 *
 * The cache: an answer that DNS settled (OK or NOTFOUND, every answer it
 * rests on received) is kept under the address text until the smallest
 * TTL among those answers runs out, at most CLIENTNAME_CACHE_TTL_MS.  Why:
 * libunbound caches the records, but each query still goes to its thread
 * and back (two pipes, two context switches, some thirty system calls),
 * and FCrDNS is three queries: about 0.15 ms of lookupd's CPU per SMTP
 * session, a tenth of all the work a short session costs, paid again for
 * every connection of a client that connects often.  Temporary failures
 * and answers cut short by the deadline are never kept.  At most
 * CLIENTNAME_CACHE_MAX entries (lib/expcache).  Each reply says how much
 * of that time is left (reuse_ms), so smtpd and submission keep the
 * answer themselves as long and skip even the round trip to us.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clientname.h"
#include "expcache.h"
#include "msg.h"
#include "xalloc.h"

enum { CN_A, CN_AAAA };

#define CLIENTNAME_CACHE_TTL_MS  LOOKUP_NAME_REUSE_MAX_MS
#define CLIENTNAME_CACHE_MAX     4096

/* A settled answer in the cache, under the address text. */
struct cn_cached {
    int   result;                   /* LOOKUP_OK or LOOKUP_NOTFOUND */
    char *name;                     /* "" unless OK */
    char *text;                     /* NULL for none */
    long long expires;              /* event_now_ms() time it goes */
};

static expcache_t *cn_cache;

struct clientname;

/* What a forward query's callback needs to find its place. */
struct cn_query {
    struct clientname *cn;
    size_t             idx;         /* into names[] */
    int                which;       /* CN_A or CN_AAAA */
};

struct cn_name {
    char           *name;
    dns_query_t    *q[2];           /* NULL once answered (or never asked) */
    struct cn_query ctx[2];
    int             ndone;          /* answers received, 0..2 */
    int             matched;        /* an address is the client's */
    int             has_addr;       /* some A or AAAA record came */
    char           *tempfail;       /* why a lookup failed temporarily, or NULL */
};

struct clientname {
    dns_t          *dns;
    event_loop_t   *loop;
    struct netaddr  addr;
    char           *addr_text;
    dns_query_t    *ptr_q;          /* NULL once answered */
    int             ptr_done;
    struct cn_name  names[LOOKUP_NAME_MAX_PTR];
    size_t          nnames;
    event_timer_t  *timer;
    clientname_cb   cb;
    void           *arg;
    unsigned        min_ttl;        /* the smallest TTL of the answers so far */
    /* Answer at the first timer event instead (no DNS, or from the cache). */
    int             now_result;
    char           *now_name;
    char           *now_text;
    long long       now_reuse_ms;   /* from the cache: the time it has left */
};

static void cn_cached_free(void *v)
{
    struct cn_cached *e = v;

    free(e->name);
    free(e->text);
    free(e);
}

/* Keep a settled answer for ttl seconds (at most CLIENTNAME_CACHE_TTL_MS);
 * returns for how long, in ms. */
static long long cn_cache_store(const char *addr_text, unsigned ttl, int result,
                                const char *name, const char *text)
{
    long long now = event_now_ms(), keep_ms;
    struct cn_cached *e;

    if (ttl == 0)
        return 0;
    keep_ms = (long long)ttl * 1000 < CLIENTNAME_CACHE_TTL_MS ? (long long)ttl * 1000
                                                               : CLIENTNAME_CACHE_TTL_MS;
    if (cn_cache == NULL)
        cn_cache = expcache_new(CLIENTNAME_CACHE_MAX, cn_cached_free);
    e = xcalloc(1, sizeof(*e));
    e->result = result;
    e->name = xstrdup(name ? name : "");
    e->text = text ? xstrdup(text) : NULL;
    e->expires = now + keep_ms;
    expcache_put(cn_cache, addr_text, e, e->expires, now);
    return keep_ms;
}

static void clientname_free(struct clientname *cn)
{
    for (size_t i = 0; i < cn->nnames; i++) {
        free(cn->names[i].name);
        free(cn->names[i].tempfail);
    }
    free(cn->addr_text);
    free(cn->now_name);
    free(cn->now_text);
    free(cn);
}

/* Stop whatever is still out. */
static void clientname_detach(struct clientname *cn)
{
    if (cn->ptr_q)
        dns_cancel(cn->dns, &cn->ptr_q);
    for (size_t i = 0; i < cn->nnames; i++)
        for (int j = 0; j < 2; j++)
            if (cn->names[i].q[j])
                dns_cancel(cn->dns, &cn->names[i].q[j]);
    event_cancel_timer(cn->loop, &cn->timer);
}

/* Answer and free the lookup; text NULL means "".  settled: every DNS
 * answer the result rests on came (it may be cached). */
static void clientname_finish(struct clientname *cn, int result, const char *name,
                              char *text_owned, int settled)
{
    struct lookup_name_reply r;

    clientname_detach(cn);
    r.reuse_ms = result == LOOKUP_TEMPFAIL ? 0 : cn->now_reuse_ms;
    if (settled && (result == LOOKUP_OK || result == LOOKUP_NOTFOUND))
        r.reuse_ms = cn_cache_store(cn->addr_text, cn->min_ttl, result, name, text_owned);
    r.result = result;
    r.name = (char *)(name ? name : "");
    r.text = text_owned ? text_owned : (char *)"";
    cn->cb(&r, cn->arg);
    free(text_owned);
    clientname_free(cn);
}

/* The first name in PTR order that confirmed, or NULL. */
static const char *clientname_matched(const struct clientname *cn)
{
    for (size_t i = 0; i < cn->nnames; i++)
        if (cn->names[i].matched)
            return cn->names[i].name;
    return NULL;
}

/* Decide if enough is known: the first name in order that confirmed,
 * once every name before it is settled; or no name at all. */
static void clientname_decide(struct clientname *cn)
{
    const struct cn_name *tf = NULL;

    for (size_t i = 0; i < cn->nnames; i++) {
        const struct cn_name *n = &cn->names[i];

        if (n->matched) {
            clientname_finish(cn, LOOKUP_OK, n->name, NULL, 1);
            return;
        }
        if (n->ndone < 2)
            return;                 /* wait for it before any later name */
        if (n->tempfail && tf == NULL)
            tf = n;
    }
    if (tf) {
        clientname_finish(cn, LOOKUP_TEMPFAIL, NULL,
                          xasprintf("hostname %s does not resolve to address %s: "
                                    "temporary failure (%s)", tf->name, cn->addr_text,
                                    tf->tempfail), 0);
        return;
    }
    clientname_finish(cn, LOOKUP_NOTFOUND, NULL,
                      xasprintf("hostname %s does not resolve to address %s%s",
                                cn->names[0].name, cn->addr_text,
                                cn->names[0].has_addr ? "" : ": host not found"), 1);
}

static void clientname_on_addr(dns_result_t *res, void *arg)
{
    struct cn_query *q = arg;
    struct clientname *cn = q->cn;
    struct cn_name *n = &cn->names[q->idx];

    n->q[q->which] = NULL;
    n->ndone++;
    if (res->ttl < cn->min_ttl)
        cn->min_ttl = res->ttl;
    switch (res->status) {
    case DNS_OK:
        for (size_t i = 0; i < res->nrr; i++) {
            n->has_addr = 1;
            if (lookup_addr_match(&cn->addr, &res->rr[i].u.addr))
                n->matched = 1;
        }
        break;
    case DNS_TEMPFAIL:
    case DNS_BOGUS:
        if (n->tempfail == NULL)
            n->tempfail = xstrdup(res->why ? res->why : dns_status_str(res->status));
        break;
    default:                        /* NODATA, NXDOMAIN, INVALID: no addresses */
        break;
    }
    dns_result_free(&res);
    clientname_decide(cn);
}

static void clientname_on_ptr(dns_result_t *res, void *arg)
{
    struct clientname *cn = arg;
    char *bad = NULL;

    cn->ptr_q = NULL;
    cn->ptr_done = 1;
    if (res->status == DNS_TEMPFAIL || res->status == DNS_BOGUS) {
        dns_result_free(&res);
        clientname_finish(cn, LOOKUP_TEMPFAIL, NULL, NULL, 0);
        return;
    }
    cn->min_ttl = res->ttl;
    for (size_t i = 0; res->status == DNS_OK && i < res->nrr; i++) {
        const char *name = res->rr[i].u.name;
        size_t k;

        if (!lookup_hostname_valid(name)) {
            if (bad == NULL)
                bad = xstrdup(name);
            continue;
        }
        for (k = 0; k < cn->nnames && strcasecmp(cn->names[k].name, name) != 0; k++)
            ;
        if (k == cn->nnames && cn->nnames < LOOKUP_NAME_MAX_PTR)
            cn->names[cn->nnames++].name = xstrdup(name);
    }
    dns_result_free(&res);
    if (cn->nnames == 0) {
        clientname_finish(cn, LOOKUP_NOTFOUND, NULL,
                          bad ? xasprintf("malformed host name in the PTR record of %s: %s",
                                          cn->addr_text, bad) : NULL, 1);
        free(bad);
        return;
    }
    free(bad);
    for (size_t i = 0; i < cn->nnames; i++) {
        struct cn_name *n = &cn->names[i];

        for (int j = 0; j < 2; j++) {
            n->ctx[j].cn = cn;
            n->ctx[j].idx = i;
            n->ctx[j].which = j;
            n->q[j] = dns_query(cn->dns, n->name, j == CN_A ? DNS_T_A : DNS_T_AAAA,
                                clientname_on_addr, &n->ctx[j]);
        }
    }
}

static void clientname_on_timer(event_loop_t *loop, void *arg)
{
    struct clientname *cn = arg;
    const char *name;

    (void)loop;
    cn->timer = NULL;
    if (cn->now_result >= 0) {
        char *text = cn->now_text;

        cn->now_text = NULL;
        clientname_finish(cn, cn->now_result, cn->now_name, text, 0);
        return;
    }
    if ((name = clientname_matched(cn)) != NULL) {
        clientname_finish(cn, LOOKUP_OK, name, NULL, 0);
        return;
    }
    if (!cn->ptr_done) {
        clientname_finish(cn, LOOKUP_TEMPFAIL, NULL, NULL, 0);
        return;
    }
    for (size_t i = 0; i < cn->nnames; i++)
        if (cn->names[i].ndone < 2) {
            clientname_finish(cn, LOOKUP_TEMPFAIL, NULL,
                              xasprintf("hostname %s does not resolve to address %s: "
                                        "temporary failure (timed out)", cn->names[i].name,
                                        cn->addr_text), 0);
            return;
        }
    msg_panic("clientname: deadline after every answer");
}

clientname_t *clientname_start(dns_t *dns, const char *dns_why, event_loop_t *loop,
                               const struct netaddr *addr, const char *addr_text,
                               long deadline_ms, clientname_cb cb, void *arg)
{
    struct clientname *cn = xcalloc(1, sizeof(*cn));
    const struct cn_cached *hit;
    char *rname = NULL;

    cn->dns = dns;
    cn->loop = loop;
    cn->addr = *addr;
    cn->addr_text = xstrdup(addr_text);
    cn->cb = cb;
    cn->arg = arg;
    cn->now_result = -1;
    cn->min_ttl = UINT_MAX;
    if (dns != NULL && cn_cache != NULL
        && (hit = expcache_get(cn_cache, addr_text, event_now_ms())) != NULL) {
        msg_debug("clientname: %s: %s, from the cache", addr_text,
                  hit->result == LOOKUP_OK ? hit->name : "unknown");
        cn->now_result = hit->result;
        cn->now_name = xstrdup(hit->name);
        cn->now_text = hit->text ? xstrdup(hit->text) : NULL;
        cn->now_reuse_ms = hit->expires - event_now_ms();
        if (cn->now_reuse_ms < 0 || cn->now_reuse_ms > LOOKUP_NAME_REUSE_MAX_MS)
            cn->now_reuse_ms = 0;
        deadline_ms = 0;
    } else if (dns == NULL) {
        cn->now_result = LOOKUP_TEMPFAIL;
        cn->now_text = xasprintf("cannot look up the name of %s: %s", addr_text,
                                 dns_why ? dns_why : "DNS is not usable");
        deadline_ms = 0;
    } else if ((rname = dns_reverse_name(addr_text)) == NULL) {
        cn->now_result = LOOKUP_NOTFOUND;
        deadline_ms = 0;
    } else {
        cn->ptr_q = dns_query(dns, rname, DNS_T_PTR, clientname_on_ptr, cn);
    }
    free(rname);
    cn->timer = event_add_timer(loop, deadline_ms, clientname_on_timer, cn);
    return cn;
}

void clientname_cancel(clientname_t **cnp)
{
    struct clientname *cn = *cnp;

    if (cn == NULL)
        return;
    clientname_detach(cn);
    clientname_free(cn);
    *cnp = NULL;
}
