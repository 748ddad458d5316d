/*
 * scram - SCRAM-SHA-256 (RFC 5802, RFC 7677): the key derivation that the
 * password store and the server side of the exchange share, and that
 * server side (plain and -PLUS, with channel binding).
 *
 * What a server keeps per user is struct scram_credentials: the salt, the
 * iteration count, StoredKey and ServerKey.  Neither key lets anyone log
 * in by itself (unlike SaltedPassword or ClientKey): StoredKey only checks
 * a client's proof, ServerKey only proves the server to the client.
 *
 * Interface:
 *   scram_sha256_keys  StoredKey and ServerKey from a password, a salt and
 *                      an iteration count:
 *       SaltedPassword = PBKDF2-HMAC-SHA256(SASLprep(password), salt, i)
 *       ClientKey      = HMAC(SaltedPassword, "Client Key")
 *       StoredKey      = SHA256(ClientKey)
 *       ServerKey      = HMAC(SaltedPassword, "Server Key")
 *   scram_server_new, scram_server_step, scram_server_free, ...
 *                      the server's side of one exchange, for lib/sasl
 *                      (which the protocols use; they need not call these).
 *
 * The exchange (RFC 5802 section 5, raw messages, no base64 around them):
 *   client-first  gs2-header client-first-bare: "n,," or "y,," or
 *                 "p=CBNAME,," (an authzid "a=NAME" between the commas),
 *                 then "n=USER,r=CNONCE" (USER with "," and "=" as =2C and
 *                 =3D; the server SASLpreps it).  "m=" is refused.
 *   server-first  "r=CNONCE SNONCE,s=SALT,i=ITERATIONS" (SNONCE: 24 random
 *                 bytes in base64, 32 characters).
 *   client-final  "c=base64(gs2-header || cb-data),r=NONCE,p=PROOF".
 *   server-final  "v=base64(HMAC(ServerKey, AuthMessage))" with success,
 *                 or "e=ERROR" (RFC 5802 7) with a failure.
 * Channel binding: with cb data (the connection's TLS), the -PLUS
 * mechanism needs "p=" with that type; "y" is then a downgrade and
 * refused; "n" is allowed (a client without channel binding).  Without
 * cb data, "p=" fails and "y" or "n" are fine.
 * An unknown user (and a user whose credentials are unusable: fewer than
 * SCRAM_ITERATIONS_MIN iterations, a bad salt length) gets a server-first
 * like any other: a salt derived from a per-process secret and the user
 * name (the same for the same name each time), SCRAM_ITERATIONS_DEFAULT;
 * the exchange then fails at the proof, so nothing tells a client whether
 * the user exists.
 *
 * Failure modes: a password that SASLprep refuses (not UTF-8, prohibited
 * characters such as controls, bad bidirectional text, or nothing left
 * after preparation) cannot have SCRAM credentials: -1, and the caller
 * decides (refuse the password, or keep it for PLAIN only).  Parameters
 * out of range are also -1.  Whatever a client sends is bounded (the
 * SCRAM_*_MAX constants) and anything malformed is SCRAM_FAIL with a
 * reason for the log; the lookup callback's TEMPFAIL is SCRAM_TEMPFAIL.
 * Running out of memory, no randomness, or an OpenSSL hash failure is
 * fatal (the environment is broken); a step after the end panics.
 */
#ifndef POSTHORN_SCRAM_H
#define POSTHORN_SCRAM_H

#include <stddef.h>

#include "buf.h"

#define SCRAM_KEY_LEN               32      /* SHA-256 output: every key and proof */
#define SCRAM_SALT_LEN              16      /* the salt length for new credentials */
#define SCRAM_SALT_MAX              64      /* longest salt accepted anywhere */
#define SCRAM_ITERATIONS_MIN        4096    /* RFC 7677 SHOULD: fewer are refused */
#define SCRAM_ITERATIONS_DEFAULT    4096    /* new credentials, and unknown users */
#define SCRAM_ITERATIONS_MAX        100000000u  /* a derivation bound (PBKDF2 takes an int) */
#define SCRAM_PASSWORD_MAX          1024    /* octets, before SASLprep */
#define SCRAM_NAME_MAX              255     /* user and authzid octets, decoded (as PLAIN's) */
#define SCRAM_NONCE_MAX             256     /* the client's nonce */
#define SCRAM_MESSAGE_MAX           2048    /* one client message */
#define SCRAM_SNONCE_BYTES          24      /* random bytes in the server's nonce */

/* What the server keeps for one user. */
struct scram_credentials {
    unsigned       iterations;
    unsigned char  salt[SCRAM_SALT_MAX];
    size_t         saltlen;                     /* 1..SCRAM_SALT_MAX */
    unsigned char  stored_key[SCRAM_KEY_LEN];
    unsigned char  server_key[SCRAM_KEY_LEN];
};

/* Derive StoredKey and ServerKey.  password: a C string of at most
 * SCRAM_PASSWORD_MAX octets; saltlen 1..SCRAM_SALT_MAX, iterations
 * 1..SCRAM_ITERATIONS_MAX (the server refuses fewer than
 * SCRAM_ITERATIONS_MIN when it checks credentials; deriving them is
 * allowed, for tests against published vectors).  Returns 0, or -1 (the
 * keys then unchanged) if the password cannot be prepared or a parameter
 * is out of range. */
int scram_sha256_keys(const char *password, const unsigned char *salt, size_t saltlen,
                      unsigned iterations, unsigned char stored_key[32],
                      unsigned char server_key[32]);

/* The user's credentials, found by the caller (the password store). */
enum scram_lookup_result { SCRAM_LOOKUP_OK, SCRAM_LOOKUP_NOTFOUND, SCRAM_LOOKUP_TEMPFAIL };
typedef int scram_lookup_fn(void *ctx, const char *authcid, struct scram_credentials *out);

enum scram_status { SCRAM_CONTINUE, SCRAM_OK, SCRAM_FAIL, SCRAM_TEMPFAIL };

struct scram_server_params {
    scram_lookup_fn     *lookup;    /* required */
    void                *ctx;       /* its first argument */
    int                  plus;      /* the client chose SCRAM-SHA-256-PLUS */
    const char          *cb_type;   /* "tls-exporter", "tls-unique"; NULL: none */
    const unsigned char *cb_data;   /* copied */
    size_t               cb_len;
};

typedef struct scram_server scram_server_t;

/* One exchange.  -PLUS (plus) needs cb_type and cb_data: a panic
 * otherwise (the caller must not offer it). */
scram_server_t *scram_server_new(const struct scram_server_params *p);
/* The iteration count of the stand-in credentials an unknown user gets
 * (SCRAM_ITERATIONS_DEFAULT until set): the count new records get, so
 * that the challenge does not tell an unknown name from a known one. */
void scram_standin_iterations(unsigned iterations);
void            scram_server_free(scram_server_t **sp);

/* Take the client's next message (have_input 0: the client sent none,
 * meaningful only at the start, where it asks for an empty challenge) and
 * put the answer in out (reset first; its limit, if any, at least
 * SCRAM_MESSAGE_MAX).  SCRAM_CONTINUE: send out as a
 * challenge; SCRAM_OK: authenticated, out is the server-final message
 * ("v=...") to send with the success; SCRAM_FAIL: refused, with *why for
 * the log (static text; never a password, proof or key), and out either
 * empty or, for a client-final message that failed, the server-final
 * error ("e=..."), which a protocol may send as a last challenge before it
 * fails the exchange whatever the answer; SCRAM_TEMPFAIL: the lookup
 * failed for now (*why).  A step after OK, FAIL or TEMPFAIL panics. */
int scram_server_step(scram_server_t *s, const void *in, size_t inlen, int have_input,
                      buf_t *out, const char **why);

/* The user name (SASLprep'd) once the client sent it, else NULL; the
 * authorization identity asked for ("a=", decoded), else NULL.  Both stay
 * valid until the free. */
const char *scram_server_authcid(const scram_server_t *s);
const char *scram_server_authzid(const scram_server_t *s);

/* For tests only: use nonce (printable ASCII without ",") as the server's
 * part of the nonce instead of a random one.  Before the first step. */
void scram_server_test_nonce(scram_server_t *s, const char *nonce);

#endif
