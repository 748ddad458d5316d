/*
 * srs - the Sender Rewriting Scheme (Shevek's SRS paper, as libsrs2 and
 * postsrsd write it): the envelope sender of mail that local forwards to
 * another domain becomes an address of ours, so the receiver's SPF check
 * sees our domain, and a bounce to that address finds its way back.
 *
 *   SRS0=HHHH=TT=orig-domain=orig-local@srs-domain
 *       TT: the day (time / 86400) mod 1024, two base32 characters
 *       (A-Z 2-7); HHHH: the first four base64 characters of
 *       HMAC-SHA1(secret, TT orig-domain orig-local, lower-cased).
 *   SRS1=HHHH=first-domain==HHHH=TT=orig-domain=orig-local@srs-domain
 *       for a sender that is an SRS0 (or SRS1) address already: the
 *       first forwarder's domain and its SRS0 part after the tag, hashed
 *       (HMAC of first-domain and that part); no time stamp of its own.
 *       Reversed, it is the SRS0 address at the first forwarder, which
 *       checks its own hash and age.
 * After the tag, '=', '+' or '-' is accepted on input (libsrs2's
 * separators); we write '='.  The hash and the time stamp are compared
 * without regard to case (some MTAs lower-case local parts); the
 * original local part keeps its case and may hold '='.  A local part
 * over 64 characters is still produced, as libsrs2 does (RFC 5321 asks
 * servers to accept longer ones where they can); the whole address is
 * refused beyond SRS_ADDRESS_MAX.
 *
 * Secrets: one or more (the secret file's lines: the first signs, every
 * one verifies, so a new first line rotates the secret while addresses
 * made with the old one still come back).
 *
 * Interface, the scheme (no configuration; unit-tested and fuzzed):
 *   srs_new(domain, max_age_days)  srs_add_secret(s, key, len)
 *   srs_free(&s)
 *   srs_forward(s, sender, now, &out, &why)   0 with *out, or -1
 *   srs_reverse(s, address, now, &out, &why)  SRS_OK with *out,
 *       SRS_NOT_SRS (no SRS local part, or not srs-domain: leave it),
 *       SRS_INVALID (an SRS address of ours that does not check out)
 *   srs_secrets_parse(s, text, len, &why)     the secret file's text
 * and the configuration (lib/conf: srs_enable, srs_domain,
 * srs_secret_file, srs_max_age, mydestination, virtual_alias_domains):
 *   srs_load(&s, &why)   as root, in a program's pre_init: 1 with *s
 *       (SRS is on), 0 (srs_enable = no, or srs_domain is not a domain we
 *       receive mail for: *why says which, to be warned about), -1 with
 *       *why (on, but the secret file cannot be used)
 *   srs_domain_is_ours(domain)   mydestination, virtual_alias_domains
 *       (a domain or a type:table listing it), or srs_domain
 *   srs_forward_sender(s, sender, recipient, now, &out, &why)
 *       local's rule: 1 with *out (rewritten), 0 (not: the null sender, a
 *       sender or a recipient of one of our domains), -1 with *why (a
 *       sender SRS cannot encode; keep it)
 *
 * Failure modes: bad input is a return value with a static *why, never
 * an abort; out of memory is fatal (xalloc).  srs_free() wipes the
 * secrets.
 */
#ifndef POSTHORN_SRS_H
#define POSTHORN_SRS_H

#include <stddef.h>
#include <time.h>

#define SRS_HASH_LEN        4
#define SRS_SECRET_MIN      16          /* bytes of a secret line */
#define SRS_SECRETS_MAX     16          /* lines of the secret file */
#define SRS_SECRET_FILE_MAX 4096
#define SRS_ADDRESS_MAX     1000        /* the whole rewritten address */
#define SRS_TIME_SLOTS      1024        /* days the two-character stamp counts */

#define SRS_OK       0
#define SRS_NOT_SRS  1
#define SRS_INVALID  (-1)

typedef struct srs srs_t;

srs_t *srs_new(const char *domain, int max_age_days);
void   srs_add_secret(srs_t *s, const void *key, size_t len);
size_t srs_nsecrets(const srs_t *s);
const char *srs_domain(const srs_t *s);
void   srs_free(srs_t **sp);

int srs_forward(const srs_t *s, const char *sender, time_t now, char **out, const char **why);
int srs_reverse(const srs_t *s, const char *address, time_t now, char **out, const char **why);
/* Does local look like an SRS0/SRS1 local part (tag and separator)? */
int srs_is_srs_local(const char *local);

/* The secret file's text: each line, blanks around it dropped, that is
 * neither empty nor a '#' comment is one secret (its characters are the
 * key).  0, or -1 with *why (no secret, one shorter than SRS_SECRET_MIN,
 * more than SRS_SECRETS_MAX, a NUL or control character). */
int srs_secrets_parse(srs_t *s, const char *text, size_t len, const char **why);

int srs_load(srs_t **sp, char **why);
int srs_domain_is_ours(const char *domain);
int srs_forward_sender(const srs_t *s, const char *sender, const char *recipient, time_t now,
                       char **out, const char **why);

#endif
