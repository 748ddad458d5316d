/*
 * dnscache - a cache of DNS answers for dns_lookup() (see dnscache.h):
 * hash chains for the look-up, a list in insertion order for eviction.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "dnscache.h"
#include "xalloc.h"

#define DNSCACHE_BUCKETS 256

struct dnscache_entry {
    dns_result_t                 *res;
    long long                     expires;
    struct dnscache_entry        *next;        /* in its bucket */
    TAILQ_ENTRY(dnscache_entry)   order;
};

struct dnscache {
    struct dnscache_entry        *buckets[DNSCACHE_BUCKETS];
    TAILQ_HEAD(, dnscache_entry)  order;
    size_t                        n, max;
    unsigned                      max_ttl;
};

static unsigned dnscache_hash(const char *name, enum dns_type type)
{
    uint32_t h = 2166136261u ^ (uint32_t)type;

    for (; *name; name++) {
        unsigned char c = (unsigned char)*name;

        h ^= (c >= 'A' && c <= 'Z') ? c + 32 : c;
        h *= 16777619u;
    }
    return h % DNSCACHE_BUCKETS;
}

dnscache_t *dnscache_new(size_t max_entries, unsigned max_ttl)
{
    dnscache_t *c = xcalloc(1, sizeof(*c));

    TAILQ_INIT(&c->order);
    c->max = max_entries ? max_entries : 1;
    c->max_ttl = max_ttl;
    return c;
}

static void dnscache_drop(dnscache_t *c, struct dnscache_entry *e)
{
    struct dnscache_entry **pp = &c->buckets[dnscache_hash(e->res->qname, e->res->type)];

    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    TAILQ_REMOVE(&c->order, e, order);
    dns_result_free(&e->res);
    free(e);
    c->n--;
}

static struct dnscache_entry *dnscache_find(dnscache_t *c, const char *name, enum dns_type type)
{
    struct dnscache_entry *e = c->buckets[dnscache_hash(name, type)];

    while (e && !(e->res->type == type && strcasecmp(e->res->qname, name) == 0))
        e = e->next;
    return e;
}

dns_result_t *dnscache_get(dnscache_t *c, const char *name, enum dns_type type, long long now)
{
    struct dnscache_entry *e = dnscache_find(c, name, type);

    if (e == NULL)
        return NULL;
    if (e->expires <= now) {
        dnscache_drop(c, e);
        return NULL;
    }
    return dns_result_copy(e->res);
}

void dnscache_put(dnscache_t *c, const dns_result_t *res, long long now)
{
    struct dnscache_entry *e, *next;
    unsigned ttl = res->ttl < c->max_ttl ? res->ttl : c->max_ttl;
    unsigned h;

    if (ttl == 0 || (res->status != DNS_OK && res->status != DNS_NODATA
                     && res->status != DNS_NXDOMAIN))
        return;
    if ((e = dnscache_find(c, res->qname, res->type)) != NULL)
        dnscache_drop(c, e);
    for (e = TAILQ_FIRST(&c->order); e && c->n >= c->max; e = next) {
        next = TAILQ_NEXT(e, order);
        if (e->expires <= now)
            dnscache_drop(c, e);
    }
    while (c->n >= c->max)
        dnscache_drop(c, TAILQ_FIRST(&c->order));
    e = xcalloc(1, sizeof(*e));
    e->res = dns_result_copy(res);
    e->expires = now + (long long)ttl * 1000;
    h = dnscache_hash(res->qname, res->type);
    e->next = c->buckets[h];
    c->buckets[h] = e;
    TAILQ_INSERT_TAIL(&c->order, e, order);
    c->n++;
}

void dnscache_free(dnscache_t **cp)
{
    dnscache_t *c = *cp;

    if (c == NULL)
        return;
    while (!TAILQ_EMPTY(&c->order))
        dnscache_drop(c, TAILQ_FIRST(&c->order));
    free(c);
    *cp = NULL;
}
