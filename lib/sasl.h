/*
 * sasl - SASL mechanisms (RFC 4422), the server's and the client's halves,
 * with no knowledge of the protocol that carries them.
 *
 * The protocols (submission's AUTH, IMAP AUTHENTICATE, POP3 AUTH) own the
 * framing: they base64-decode what the client sends (lib/base64, strict),
 * handle "*" (cancel) and "=" (an empty initial response) themselves, and
 * give this module the raw bytes; what it answers they base64-encode.
 *
 * Server mechanisms, strongest first (sasl_server_mechs lists them):
 *   SCRAM-SHA-256-PLUS  only with channel binding data (the caller's TLS),
 *   SCRAM-SHA-256       (RFC 5802, RFC 7677; see lib/scram.h),
 *   PLAIN               (RFC 4616) and
 *   LOGIN               (draft-murchison-sasl-login) only where the
 *                       caller allows plaintext mechanisms (TLS).
 * The server never sees password data itself.  The caller gives
 * callbacks: verify_plain checks a user name and password (PLAIN, LOGIN);
 * scram_lookup gives a user's SCRAM credentials (lib/scram.h).  A
 * mechanism whose callback is NULL is not offered.
 *
 * PLAIN: authzid NUL authcid NUL passwd, each at most SASL_FIELD_MAX
 * octets of UTF-8, authcid and passwd not empty, no other NUL.  LOGIN:
 * challenges "Username:" then "Password:" (an initial response is taken
 * as the user name), each answer 1..SASL_FIELD_MAX octets without NUL,
 * the user name UTF-8.  The user name (authcid) is SASLprep'd (RFC 4013)
 * by every mechanism before a callback sees it; the password goes to
 * verify_plain as the client sent it (the password store decides how it
 * compares); the authorization identity is only checked to be UTF-8 and
 * is the caller's to allow or refuse after SASL_OK.
 *
 * Client mechanisms: PLAIN and LOGIN (what smtp needs for a relayhost).
 * sasl_client_start gives the initial response, if the mechanism has one
 * and the protocol can send it; sasl_client_step answers each challenge.
 * The client sends what it was given (UTF-8 is the server's concern); the
 * protocol reads the server's final outcome itself.
 *
 * Failure modes: anything a client sends that is malformed or too long is
 * SASL_FAIL with a short reason for the log (static text; never a
 * password); a callback's TEMPFAIL is SASL_TEMPFAIL.  Misuse by the
 * caller (a step after the end, an unknown callback result) panics;
 * out-of-memory and missing randomness are fatal.
 */
#ifndef POSTHORN_SASL_H
#define POSTHORN_SASL_H

#include <stddef.h>

#include "buf.h"
#include "scram.h"

#define SASL_FIELD_MAX      255     /* PLAIN's and LOGIN's fields, octets (RFC 4616) */
#define SASL_MECH_NAME_MAX  20      /* RFC 4422 3.1 */

/* Step results, and verify_plain's answers (OK, FAIL, TEMPFAIL). */
enum sasl_status { SASL_CONTINUE, SASL_OK, SASL_FAIL, SASL_TEMPFAIL };

/* Check authcid (SASLprep'd) and password; SASL_OK, SASL_FAIL or
 * SASL_TEMPFAIL. */
typedef int sasl_verify_plain_fn(void *ctx, const char *authcid, const char *password);

struct sasl_server_config {
    sasl_verify_plain_fn *verify_plain;  /* PLAIN, LOGIN; NULL: not offered */
    scram_lookup_fn      *scram_lookup;  /* SCRAM-SHA-256(-PLUS); NULL: not offered */
    void                 *ctx;           /* the callbacks' first argument */
    int                   plaintext_ok;  /* offer PLAIN and LOGIN (a TLS session) */
    const char           *cb_type;       /* "tls-exporter" / "tls-unique"; NULL: none */
    const unsigned char  *cb_data;       /* the connection's channel binding data */
    size_t                cb_len;
};

typedef struct sasl_server sasl_server_t;
typedef struct sasl_client sasl_client_t;

/* Append the mechanisms config offers, separated by single spaces,
 * strongest first ("SCRAM-SHA-256-PLUS SCRAM-SHA-256 PLAIN LOGIN").
 * Returns how many (0: none, out unchanged), or -1 at out's limit (out
 * unchanged). */
int sasl_server_mechs(const struct sasl_server_config *config, buf_t *out);
/* The same for a protocol process that relays its exchanges to authd
 * (which has both callbacks): what a connection that allows plaintext
 * mechanisms or not, and has channel binding data or not, gets offered. */
int sasl_server_mechs_relayed(int plaintext_ok, int channel_binding, buf_t *out);
/* Is mech (any case) one of them? */
int sasl_server_offers_relayed(int plaintext_ok, int channel_binding, const char *mech);

/* Start an exchange with the mechanism the client named (case does not
 * matter); NULL if config does not offer it.  config is copied (the
 * channel binding data too): it need not outlive the call. */
sasl_server_t *sasl_server_new(const char *mech, const struct sasl_server_config *config);
void           sasl_server_free(sasl_server_t **sp);

/* Take the client's response in[0, inlen) (have_input 0: the client gave
 * no initial response; after a challenge there is always one, maybe
 * empty) and put the answer in out (reset first; a limit, if any, of at
 * least SCRAM_MESSAGE_MAX).  Returns
 *   SASL_CONTINUE  send out as the next challenge (maybe empty);
 *   SASL_OK        authenticated: sasl_server_authcid(), _authzid(); out
 *                  may hold data for the success (SCRAM's "v=...") that
 *                  the protocol sends with its success reply, or as a
 *                  last challenge where its success reply cannot carry it;
 *   SASL_FAIL      refused: sasl_server_reason() for the log; out may hold
 *                  SCRAM's "e=..." that a protocol may send as a last
 *                  challenge before it fails the exchange, whatever the
 *                  answer;
 *   SASL_TEMPFAIL  a callback failed for now (sasl_server_reason()).
 * A step after OK, FAIL or TEMPFAIL panics. */
int sasl_server_step(sasl_server_t *s, const void *in, size_t inlen, int have_input,
                     buf_t *out);

/* The mechanism's name as offered ("SCRAM-SHA-256"). */
const char *sasl_server_mech(const sasl_server_t *s);
/* Why the exchange failed (static text), or NULL. */
const char *sasl_server_reason(const sasl_server_t *s);
/* The user name (SASLprep'd) once the client sent one that prepared,
 * else NULL: authenticated after SASL_OK; for the log after a failure. */
const char *sasl_server_authcid(const sasl_server_t *s);
/* The identity the client asks to act as, or NULL: the caller decides
 * whether authcid may (the module does not). */
const char *sasl_server_authzid(const sasl_server_t *s);

/* For tests only: SCRAM's server nonce (printable ASCII without ",")
 * instead of a random one.  Before the first step; ignored by PLAIN and
 * LOGIN. */
void sasl_server_test_nonce(sasl_server_t *s, const char *nonce);

/* A client for mech ("PLAIN" or "LOGIN", any case), sending authcid and
 * password (copied; wiped at the free); authzid NULL or "" for none (PLAIN
 * only).  NULL for a mechanism this client does not know. */
sasl_client_t *sasl_client_new(const char *mech, const char *authcid, const char *password,
                               const char *authzid);
void           sasl_client_free(sasl_client_t **cp);   /* wipes the copies */

/* The initial response: 1 with it in out (reset first; it may be empty,
 * which protocols send as "="), 0 if the mechanism has none (LOGIN waits
 * for the server's first challenge).  A protocol that cannot send an
 * initial response does not call this: the first challenge gets it. */
int sasl_client_start(sasl_client_t *c, buf_t *out);

/* Answer the server's challenge in[0, inlen) (decoded): SASL_CONTINUE
 * with the response in out (reset first), or SASL_FAIL with
 * sasl_client_reason() if there is no answer (a challenge the mechanism
 * does not expect): the protocol then cancels ("*"). */
int sasl_client_step(sasl_client_t *c, const void *in, size_t inlen, buf_t *out);

const char *sasl_client_mech(const sasl_client_t *c);
const char *sasl_client_reason(const sasl_client_t *c);

#endif
