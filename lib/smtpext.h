/*
 * smtpext - the ESMTP service extensions (RFC 5321 2.2, 4.1.1.1) that
 * Posthorn knows, as one set of bits for both sides: the server says
 * with them what it offered (and so which MAIL/RCPT parameters
 * lib/smtpproto accepts), the client what the peer's EHLO reply offered.
 * A module of its own rather than part of lib/smtpreply: smtpreply knows
 * the reply syntax of any command, this the extension vocabulary, which
 * the command parser needs too.
 *
 * Interface:
 *   SMTPEXT_*            one bit per extension.
 *   smtpext_parse_ehlo   a complete EHLO reply (lib/smtpreply) -> the
 *                        capabilities a client needs: SIZE with its limit,
 *                        PIPELINING, 8BITMIME, BINARYMIME, SMTPUTF8, DSN,
 *                        STARTTLS, AUTH with its mechanisms, CHUNKING,
 *                        ENHANCEDSTATUSCODES.
 *   smtpext_has_auth     whether AUTH offered a mechanism.
 *   smtpext_caps_clear   free what parse_ehlo stored.
 *
 * EHLO lines after the first (the greeting) are "keyword [params]";
 * keywords and mechanism names are case-insensitive, unknown keywords and
 * malformed lines are ignored (a server may offer what we do not know).
 * "SIZE" without a number, or with one that is not all digits, counts as
 * SIZE with no announced limit; a limit past 2^64 saturates.  The
 * pre-RFC form "AUTH=MECH ..." (old Microsoft servers) is read like
 * "AUTH MECH ...".  A mechanism name must be a SASL name (RFC 4422 3.1:
 * 1-20 of A-Z 0-9 "-" "_"); others are skipped.
 *
 * Failure modes: a reply that is not a 250 is -1 (nothing offered); peer
 * data is otherwise never an error here, and the storage is bounded by the
 * reply's size (lib/smtpreply's limits).  Out-of-memory is fatal.
 */
#ifndef POSTHORN_SMTPEXT_H
#define POSTHORN_SMTPEXT_H

#include <stdbool.h>
#include <stdint.h>

#include "smtpreply.h"

#define SMTPEXT_SIZE                (1u << 0)   /* RFC 1870 */
#define SMTPEXT_8BITMIME            (1u << 1)   /* RFC 6152 */
#define SMTPEXT_BINARYMIME          (1u << 2)   /* RFC 3030 */
#define SMTPEXT_SMTPUTF8            (1u << 3)   /* RFC 6531 */
#define SMTPEXT_DSN                 (1u << 4)   /* RFC 3461 */
#define SMTPEXT_AUTH                (1u << 5)   /* RFC 4954 */
#define SMTPEXT_PIPELINING          (1u << 6)   /* RFC 2920 */
#define SMTPEXT_STARTTLS            (1u << 7)   /* RFC 3207 */
#define SMTPEXT_CHUNKING            (1u << 8)   /* RFC 3030 */
#define SMTPEXT_ENHANCEDSTATUSCODES (1u << 9)   /* RFC 2034 */
#define SMTPEXT_ALL                 0x3ffu      /* below 1 << 16: see smtpproto.h */

struct smtpext_caps {
    unsigned  ext;          /* SMTPEXT_* offered */
    uint64_t  size_max;     /* SIZE's limit in bytes; 0: none announced */
    char     *auth;         /* AUTH's mechanisms, upper case, one SP apart,
                             * each once; "" for AUTH without a usable one;
                             * NULL without AUTH */
};

/* r: the complete reply to EHLO.  Returns 0 with caps filled (caps then
 * owns memory that smtpext_caps_clear() frees), or -1 with caps cleared if
 * r is not a 250 reply.  caps need not be initialised: a previous result
 * in it must be cleared first. */
int  smtpext_parse_ehlo(const struct smtpreply *r, struct smtpext_caps *caps);
/* mech: a mechanism name, any case. */
bool smtpext_has_auth(const struct smtpext_caps *caps, const char *mech);
void smtpext_caps_clear(struct smtpext_caps *caps);

#endif
