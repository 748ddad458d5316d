/*
 * dkimsign - DKIM signatures (RFC 6376) for outgoing mail: the signing
 * keys, relaxed/relaxed canonicalization, and the DKIM-Signature fields.
 *
 * Keys.  A PEM private key (PKCS#8 or the traditional RSA form; not
 * encrypted) is parsed once, with OpenSSL, into a dkimsign_key_t that
 * signs any number of messages: rsa-sha256 for an RSA key of at least
 * DKIMSIGN_RSA_MIN_BITS bits, ed25519-sha256 (RFC 8463) for an Ed25519
 * key; the algorithm is the key's own.  dkimsign_key_txt() is the TXT
 * record a verifier finds at SELECTOR._domainkey.DOMAIN ("v=DKIM1;
 * k=rsa; p=..." with the SubjectPublicKeyInfo, or "k=ed25519; p=" with
 * the raw 32-byte public key).
 *
 * Signing.  A message is fed once, as it streams: its header fields one at
 * a time (dkimsign_header: the field as written, continuation lines and
 * line ends included), then its body in pieces of any size (dkimsign_body:
 * the bytes after the empty line).  The body is canonicalized and hashed
 * as it goes, once for all keys (every signature here uses relaxed body
 * canonicalization and SHA-256 and no l=); only the fields to be signed
 * are kept.  dkimsign_finish() then appends one DKIM-Signature field per
 * key (CRLF line ends, folded under 80 columns) for the caller to put at
 * the top of the header.
 *
 * What is signed: every field present of RFC 6376 5.4.1's list (From,
 * Reply-To, Subject, Date, To, Cc, Resent-*, In-Reply-To, References,
 * List-*) plus Sender, Message-ID, the MIME fields (MIME-Version,
 * Content-Type, Content-Transfer-Encoding, Content-ID,
 * Content-Description) and List-Unsubscribe-Post (RFC 8058).  Each
 * present instance is listed in h=; the fields RFC 5322 and MIME allow
 * only once (From, Sender, Reply-To, To, Cc, Subject, Date, Message-ID,
 * In-Reply-To, References, MIME-Version, Content-Type,
 * Content-Transfer-Encoding) are listed once more ("oversigned"), so a
 * second copy added on the way breaks the signature instead of changing
 * what a reader sees.  Received, Return-Path and anything else never.
 * Tags: v=1; a=; c=relaxed/relaxed; d=; s=; t= (signing time); h=; bh=;
 * b=.  No x=, no l=, no i=.
 *
 * Relaxed canonicalization (RFC 6376 3.4.2, 3.4.4).  A line end is CR LF
 * or a bare LF (the SMTP client sends a bare LF as CR LF); a CR not
 * followed by LF is an ordinary byte.  Body: white space at the end of a
 * line goes, runs of SP/HTAB become one SP, empty lines at the end go, and
 * a non-empty body ends with exactly one CRLF (added if missing).
 * Header: name lower-cased, continuation line ends removed, runs of
 * SP/HTAB one SP, white space around the colon and at the end removed.
 *
 * Interface:
 *   dkimsign_key_parse(pem, len, domain, selector, &why)   a key, or NULL
 *   dkimsign_key_alg / _bits / _domain / _selector / _txt, dkimsign_key_free
 *   dkimsign_alg_name(alg)                 "rsa-sha256", "ed25519-sha256"
 *   dkimsign_new(), dkimsign_header(), dkimsign_body(), dkimsign_finish(),
 *   dkimsign_free()
 *   dkimsign_canon_header(out, field, len) one field, relaxed (for tests)
 *
 * Failure modes: a key that does not parse, is encrypted, of another type
 * or too short: NULL with a static reason (never a prompt for a pass
 * phrase).  dkimsign_finish() returns -1 with a static reason when
 * OpenSSL fails to sign (out is left as it was).  Message content never
 * fails: any bytes are data.  Out of memory is fatal (xalloc).
 */
#ifndef POSTHORN_DKIMSIGN_H
#define POSTHORN_DKIMSIGN_H

#include <stddef.h>
#include <time.h>

#include "buf.h"

#define DKIMSIGN_RSA_MIN_BITS  1024    /* RFC 8301: verifiers refuse less */
#define DKIMSIGN_RSA_WARN_BITS 2048    /* less is accepted but worth a warning */

enum dkimsign_alg { DKIMSIGN_RSA_SHA256, DKIMSIGN_ED25519_SHA256 };

typedef struct dkimsign_key dkimsign_key_t;
typedef struct dkimsign dkimsign_t;

dkimsign_key_t *dkimsign_key_parse(const char *pem, size_t len, const char *domain,
                                   const char *selector, const char **why);
enum dkimsign_alg dkimsign_key_alg(const dkimsign_key_t *k);
int dkimsign_key_bits(const dkimsign_key_t *k);
const char *dkimsign_key_domain(const dkimsign_key_t *k);
const char *dkimsign_key_selector(const dkimsign_key_t *k);
/* "v=DKIM1; k=rsa; p=BASE64" (fresh). */
char *dkimsign_key_txt(const dkimsign_key_t *k);
void dkimsign_key_free(dkimsign_key_t **kp);
const char *dkimsign_alg_name(enum dkimsign_alg alg);

dkimsign_t *dkimsign_new(void);
void dkimsign_header(dkimsign_t *s, const char *field, size_t len);
void dkimsign_body(dkimsign_t *s, const char *data, size_t len);
/* Append a DKIM-Signature field for each of keys[0..n) to out, signed at
 * time now; 0, or -1 with a static reason. */
int dkimsign_finish(dkimsign_t *s, dkimsign_key_t *const *keys, size_t n, time_t now,
                    buf_t *out, const char **why);
void dkimsign_free(dkimsign_t **sp);

void dkimsign_canon_header(buf_t *out, const char *field, size_t len);

#endif
