/*
 * dkimverify - DKIM verification (RFC 6376, and ed25519-sha256 of RFC
 * 8463) of one message over libopendkim, with the key records fetched by
 * the caller (checkd asks lib/dns, i.e. libunbound; tests answer from a
 * table).  libopendkim parses hostile header fields and key records: run
 * this only in checkd's sandbox.
 *
 * Interface:
 *   dkimverify_new(lookup, ctx, &why)   one library handle per process;
 *       lookup(ctx, "sel._domainkey.example", buf, size) fills buf with the
 *       key record (a NUL-terminated TXT; several strings joined) and
 *       returns DKIMVERIFY_KEY_OK, _NOTFOUND or _TEMPFAIL.
 *   dkimverify_message(v, fd, len, max_sigs, &outcome)   reads the message
 *       (CRLF lines, offset 0..len of fd, with pread: fd's offset is not
 *       used) and verifies every DKIM-Signature field, the first max_sigs
 *       of them (the rest are "policy": not evaluated, RFC 6376 6.1
 *       allows a verifier to limit its work).  outcome lists one entry per
 *       signature in header order:
 *         pass       the signature verified, the body hash matched and
 *                    l= (if any) covers the whole body;
 *         policy     it verified but l= leaves body content unsigned
 *                    (RFC 6376 8.2: such content could be anything, so
 *                    it does not count for DMARC), a key under
 *                    DKIMVERIFY_MIN_KEY_BITS, or beyond max_sigs;
 *         fail       the signature or the body hash did not match;
 *         neutral    the signature cannot be evaluated (syntax, expired,
 *                    in the future, a bad i=);
 *         permerror  the key record is missing, revoked or unusable;
 *         temperror  the key lookup failed for now.
 *       No signature: nsig = 0.  A message libopendkim cannot take (a
 *       header field it refuses, memory) gives one entry with the error
 *       in comment and result permerror, or temperror for resource
 *       errors; never a crash, and never more than the lookups of
 *       max_sigs signatures.
 *
 * Failure modes: dkimverify_new() fails only if libopendkim cannot start
 * (NULL with a reason).  dkimverify_message() returns -1 only when fd
 * cannot be read (errno); everything about the message is a result.
 */
#ifndef POSTHORN_DKIMVERIFY_H
#define POSTHORN_DKIMVERIFY_H

#include <stddef.h>
#include <stdint.h>

#define DKIMVERIFY_MIN_KEY_BITS 1024    /* RFC 8301 */

enum dkimverify_key { DKIMVERIFY_KEY_OK, DKIMVERIFY_KEY_NOTFOUND, DKIMVERIFY_KEY_TEMPFAIL };
typedef enum dkimverify_key (*dkimverify_lookup_fn)(void *ctx, const char *name, char *buf,
                                                     size_t size);

struct dkimverify_sig {
    char       *domain;         /* d= ("" if it could not be read) */
    char       *selector;       /* s= */
    char       *algorithm;      /* "rsa-sha256", "ed25519-sha256", ... */
    char       *b;              /* the start of b= (header.b, RFC 6008) */
    const char *result;         /* RFC 8601 word, see above */
    char       *comment;        /* why, for anything but pass */
};

struct dkimverify_outcome {
    size_t                 nsig;
    struct dkimverify_sig *sigs;
};

typedef struct dkimverify dkimverify_t;

dkimverify_t *dkimverify_new(dkimverify_lookup_fn lookup, void *ctx, const char **error_r);
void dkimverify_free(dkimverify_t **vp);
int  dkimverify_message(dkimverify_t *v, int fd, uint64_t len, size_t max_sigs,
                        struct dkimverify_outcome *out);
void dkimverify_outcome_clear(struct dkimverify_outcome *out);

#endif
