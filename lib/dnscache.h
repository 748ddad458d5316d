/*
 * dnscache - a process-local cache of DNS answers for dns_lookup(), for a
 * program that asks the same few names over and over (checkd: the SPF,
 * DKIM key and DMARC records of the domains that send it mail).
 * libunbound caches too, but each of its answers costs a round trip
 * through its resolver thread (pipes and two wake-ups, about 0.1 ms); an
 * answer from here costs a copy.
 *
 * Interface:
 *   dnscache_new(max_entries, max_ttl)   an empty cache
 *   dnscache_get(c, name, type, now)     a fresh copy of the answer kept
 *                                        for (name, type) (names compared
 *                                        without case), or NULL if none or
 *                                        expired
 *   dnscache_put(c, res, now)            keep a copy of res, if it is an
 *                                        answer (OK, NODATA, NXDOMAIN; not
 *                                        a failure) with a TTL above 0, for
 *                                        min(TTL, max_ttl) seconds; when
 *                                        full, expired entries go, then the
 *                                        oldest
 *   dnscache_free(&c)
 * now is in milliseconds (event_now_ms()).
 *
 * Failure modes: none (out of memory is fatal, as everywhere).
 */
#ifndef POSTHORN_DNSCACHE_H
#define POSTHORN_DNSCACHE_H

#include <stddef.h>

#include "dns.h"

typedef struct dnscache dnscache_t;

dnscache_t   *dnscache_new(size_t max_entries, unsigned max_ttl);
dns_result_t *dnscache_get(dnscache_t *c, const char *name, enum dns_type type, long long now);
void          dnscache_put(dnscache_t *c, const dns_result_t *res, long long now);
void          dnscache_free(dnscache_t **cp);

#endif
