/*
 * pkeycache - decoded DKIM public keys kept for libopendkim (see
 * pkeycache.h).
 *
 * libopendkim decodes the p= of the key record with d2i_PUBKEY_bio() for
 * every RSA signature it verifies, and it has no way to be handed a key
 * it decoded before.  On OpenSSL 3.0 that decode runs the provider
 * decoder machinery and costs about 0.25 ms, five times the RSA verify
 * itself and a third of checkd's CPU for a message.  This module defines
 * d2i_PUBKEY_bio: a program that links it exports the symbol (libopendkim
 * refers to it), so libopendkim's call binds here, the executable coming
 * first in the dynamic linker's search order, and OpenSSL's own is reached
 * with dlsym(RTLD_NEXT).
 *
 * Only what libopendkim does is answered from the cache: a memory BIO and
 * no object to reuse (a == NULL).  The key is the BIO's whole pending
 * content, so an answer from the cache is the answer OpenSSL gave for the
 * same bytes: a changed key record is different bytes, and a record's
 * TTL does not matter.  The cached EVP_PKEY is shared by reference count:
 * libopendkim frees its own reference; keys are never changed after they
 * are decoded (EVP_PKEY_get1_RSA's legacy copy is kept inside the key,
 * under its own lock).  The BIO is left as OpenSSL would leave it: the
 * bytes the decode consumed are read off.  A failed decode is not cached.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "msg.h"
#include "pkeycache.h"
#include "xalloc.h"

struct pkeycache_entry {
    unsigned char *der;
    size_t         len;
    size_t         consumed;    /* what OpenSSL's decode read of der */
    EVP_PKEY      *key;
};

typedef EVP_PKEY *(*d2i_pubkey_bio_fn)(BIO *, EVP_PKEY **);

static pthread_mutex_t pkeycache_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t pkeycache_once = PTHREAD_ONCE_INIT;
static d2i_pubkey_bio_fn pkeycache_real;
static struct pkeycache_entry pkeycache[PKEYCACHE_ENTRIES];
static size_t pkeycache_next;           /* the entry replaced next */
static struct pkeycache_stats pkeycache_counts;

static void pkeycache_resolve(void)
{
    pkeycache_real = (d2i_pubkey_bio_fn)dlsym(RTLD_NEXT, "d2i_PUBKEY_bio");
    if (pkeycache_real == NULL)
        msg_fatal("pkeycache: OpenSSL's d2i_PUBKEY_bio is not to be found: %s", dlerror());
}

void pkeycache_init(void)
{
    pthread_once(&pkeycache_once, pkeycache_resolve);
}

/* The entry for der[0..len), or NULL; called with the lock held. */
static struct pkeycache_entry *pkeycache_find(const unsigned char *der, size_t len)
{
    for (size_t i = 0; i < PKEYCACHE_ENTRIES; i++)
        if (pkeycache[i].key && pkeycache[i].len == len && memcmp(pkeycache[i].der, der, len) == 0)
            return &pkeycache[i];
    return NULL;
}

/* Keep key (one more reference) for der[0..len), which the entry takes
 * over (freed if it is not kept); the lock is held. */
static void pkeycache_store(unsigned char *der, size_t len, size_t consumed, EVP_PKEY *key)
{
    struct pkeycache_entry *e = &pkeycache[pkeycache_next];

    if (pkeycache_find(der, len) != NULL || EVP_PKEY_up_ref(key) != 1) {
        free(der);
        return;
    }
    pkeycache_next = (pkeycache_next + 1) % PKEYCACHE_ENTRIES;
    free(e->der);
    EVP_PKEY_free(e->key);
    e->der = der;
    e->len = len;
    e->consumed = consumed;
    e->key = key;
}

EVP_PKEY *d2i_PUBKEY_bio(BIO *bp, EVP_PKEY **a)
{
    const unsigned char *der = NULL;
    struct pkeycache_entry *e;
    EVP_PKEY *key;
    long len, after;

    pkeycache_init();
    if (a != NULL || bp == NULL || BIO_method_type(bp) != BIO_TYPE_MEM
        || (len = BIO_get_mem_data(bp, (char **)&der)) <= 0 || der == NULL
        || len > PKEYCACHE_DER_MAX)
        return pkeycache_real(bp, a);

    pthread_mutex_lock(&pkeycache_lock);
    if ((e = pkeycache_find(der, (size_t)len)) != NULL && EVP_PKEY_up_ref(e->key) == 1) {
        key = e->key;
        pkeycache_counts.hits++;
        /* As OpenSSL's decode leaves it. */
        if (e->consumed > 0) {
            unsigned char skip[512];
            size_t left = e->consumed;

            while (left > 0) {
                int n = BIO_read(bp, skip, left < sizeof(skip) ? (int)left : (int)sizeof(skip));

                if (n <= 0)
                    break;
                left -= (size_t)n;
            }
        }
        pthread_mutex_unlock(&pkeycache_lock);
        return key;
    }
    pkeycache_counts.misses++;
    pthread_mutex_unlock(&pkeycache_lock);

    /* der stays valid while bp is not written: copy it before the decode
     * reads it off (a read-only memory BIO keeps its buffer, but a
     * read-write one may move what is left). */
    {
        unsigned char *copy = xmalloc((size_t)len);

        memcpy(copy, der, (size_t)len);
        key = pkeycache_real(bp, NULL);
        after = BIO_pending(bp);
        if (key == NULL) {
            free(copy);
            return NULL;
        }
        pthread_mutex_lock(&pkeycache_lock);
        pkeycache_store(copy, (size_t)len, (size_t)(len - (after < 0 ? 0 : after)), key);
        pthread_mutex_unlock(&pkeycache_lock);
    }
    return key;
}

void pkeycache_get_stats(struct pkeycache_stats *s)
{
    pthread_mutex_lock(&pkeycache_lock);
    *s = pkeycache_counts;
    pthread_mutex_unlock(&pkeycache_lock);
}
