/*
 * pkeycache - a cache of decoded public keys in front of OpenSSL's
 * d2i_PUBKEY_bio(), for libopendkim, which decodes a DKIM key record anew
 * for every signature (about 0.25 ms each on OpenSSL 3.0).  Linking this
 * module (lib/dkimverify does: dkimverify_new calls pkeycache_init)
 * replaces d2i_PUBKEY_bio for the whole program; see pkeycache.c for how
 * and why the answers are the same.
 *
 * Interface:
 *   pkeycache_init()          finds OpenSSL's own d2i_PUBKEY_bio (call it
 *                             before a sandbox closes dlsym's way; later
 *                             calls do nothing).
 *   d2i_PUBKEY_bio(bp, a)     OpenSSL's call, answered from the cache for
 *                             a memory BIO and a == NULL.
 *   pkeycache_get_stats(&s)   hits and misses so far (tests).
 *
 * Failure modes: none of its own; OpenSSL's NULL for bad DER is passed
 * on and not cached.  msg_fatal() if OpenSSL's function cannot be found.
 */
#ifndef POSTHORN_PKEYCACHE_H
#define POSTHORN_PKEYCACHE_H

#include <stdint.h>

#define PKEYCACHE_ENTRIES   64      /* keys kept, the oldest replaced first */
#define PKEYCACHE_DER_MAX   8192    /* bigger ones are not kept */

struct pkeycache_stats {
    uint64_t hits;
    uint64_t misses;
};

void pkeycache_init(void);
void pkeycache_get_stats(struct pkeycache_stats *s);

#endif
