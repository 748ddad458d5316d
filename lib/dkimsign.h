/*
 * dkimsign - DKIM signatures (RFC 6376, RFC 8463) for outgoing mail,
 * made by libopendkim: the signing keys, and a thin layer that feeds
 * libopendkim a message in the form it will have on the wire.
 *
 * Keys.  A PEM private key (PKCS#8 or the traditional RSA form; not
 * encrypted) is checked once, with OpenSSL, into a dkimsign_key_t: an RSA
 * key of at least DKIMSIGN_RSA_MIN_BITS bits signs rsa-sha256, an Ed25519
 * key ed25519-sha256; the algorithm is the key's own.  The key is kept in
 * memory as unencrypted PKCS#8 PEM text, the form dkim_sign() takes, and
 * libopendkim loads it once at parse time to prove it can (so a key it
 * would refuse is refused when the key directory is loaded, as root,
 * never when a message is signed).  dkimsign_key_txt() is the TXT record
 * a verifier finds at SELECTOR._domainkey.DOMAIN ("v=DKIM1; k=rsa; p="
 * with the SubjectPublicKeyInfo, or "k=ed25519; p=" with the raw 32-byte
 * public key).
 *
 * Signing.  dkimsign_new() opens one libopendkim signing handle per key
 * (relaxed/relaxed, the whole body: no l=).  The message is then fed once,
 * as it streams: its header fields one at a time (dkimsign_header: the
 * field as written, continuation lines and final line end included), then
 * its body in pieces of any size (dkimsign_body: the bytes after the empty
 * line).  dkimsign_finish() appends one DKIM-Signature field per key (CRLF
 * line ends, as libopendkim folds it) for the caller to put at the top of
 * the header.  All handles share one DKIM_LIB, made on first use.
 *
 * What is signed: every field present of RFC 6376 5.4.1's list (From,
 * Reply-To, Subject, Date, To, Cc, Resent-*, In-Reply-To, References,
 * List-*) plus Sender, Message-ID, the MIME fields (MIME-Version,
 * Content-Type, Content-Transfer-Encoding, Content-ID,
 * Content-Description) and List-Unsubscribe-Post (RFC 8058).  Each
 * present instance is listed in h=; the fields RFC 5322 and MIME allow
 * only once (From, Sender, Reply-To, To, Cc, Subject, Date, Message-ID,
 * In-Reply-To, References, MIME-Version, Content-Type,
 * Content-Transfer-Encoding) are listed once more when present
 * ("oversigned"), so a second copy added on the way breaks the signature
 * instead of changing what a reader sees.  Received, Return-Path and
 * anything else never.  Tags (libopendkim's): v=1; a=; c=relaxed/relaxed;
 * d=; s=; t= (the time given to dkimsign_new); bh=; h=; b=.  No x=, no
 * l=, no i=.  Only the fields to be signed reach libopendkim.
 *
 * The wire form.  The SMTP client sends a bare LF as CR LF and ends the
 * content with a line end; the body goes to libopendkim the same way.
 * What libopendkim cannot canonicalize as RFC 6376 says, and so is not
 * signed (dkimsign_finish returns 1 with the reason): a CR not followed
 * by LF in the body or in a field to be signed (libopendkim drops a bare
 * CR from the body and reads one in a field as white space, where a
 * verifier keeps it), a NUL in a field to be signed, a field to be signed
 * that dkim_header() refuses (a tab between name and colon, RFC 5322's
 * obsolete syntax), a message without a From: field.  smtpd refuses bare CRs and LFs, so only local
 * submissions can have them.
 *
 * Interface:
 *   dkimsign_key_parse(pem, len, domain, selector, &why)   a key, or NULL
 *   dkimsign_key_alg / _bits / _domain / _selector / _txt, dkimsign_key_free
 *   dkimsign_alg_name(alg)                 "rsa-sha256", "ed25519-sha256"
 *   dkimsign_new(keys, n, now)             keys[0..n) stay the caller's and
 *                                          must outlive the dkimsign_t
 *   dkimsign_header(), dkimsign_body()     every field before the body
 *   dkimsign_finish(s, out, &why)          0: the fields appended to out;
 *                                          1: not signable, *why says why;
 *                                          -1: libopendkim failed, *why
 *   dkimsign_free()
 * *why from dkimsign_finish stays valid until dkimsign_free.
 *
 * Not thread-safe: the DKIM_LIB is the process's, and the signing time
 * and the oversigned names are library options, set just before the
 * calls that read them (dkim_eoh, dkim_eom).
 *
 * Failure modes: a key that does not parse, is encrypted, of another type
 * or too short, or that libopendkim cannot load: NULL with a static
 * reason (never a prompt for a pass phrase).  libopendkim failing to sign
 * (out of memory, an OpenSSL error): -1 from dkimsign_finish, out left as
 * it was.  Out of memory here, or libopendkim failing to start, is fatal.
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

dkimsign_t *dkimsign_new(dkimsign_key_t *const *keys, size_t n, time_t now);
void dkimsign_header(dkimsign_t *s, const char *field, size_t len);
void dkimsign_body(dkimsign_t *s, const char *data, size_t len);
/* Append a DKIM-Signature field for each key to out: 0; 1 when the
 * message cannot be signed, -1 when libopendkim failed (*why says). */
int dkimsign_finish(dkimsign_t *s, buf_t *out, const char **why);
/* How many Ed25519 signing handles this process has made: each leaks
 * about 470 bytes in libopendkim 2.11 (dkimsign.c). */
unsigned long dkimsign_leaky_handles(void);
void dkimsign_free(dkimsign_t **sp);

#endif
