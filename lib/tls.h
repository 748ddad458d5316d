/*
 * tls - TLS for the protocol servers and for the SMTP client, with
 * OpenSSL, plugged under a lib/stream through its I/O hook.
 *
 * A server context is made once per process in pre_init, while still
 * root, so that a private key readable only by root can be used after the
 * privilege drop: tls_server_new() loads the certificate chain and the key
 * and checks that they belong together.  Root reads only a certificate,
 * key or CA file that no other account can change or swap: the file and
 * every directory above it (lib/trustpath); another is refused with the
 * reason.  Per connection, tls_server_start()
 * runs the handshake on the stream's descriptor (non-blocking, bounded by a
 * deadline) and then routes the stream's reads and writes through the TLS
 * session; the stream's output must be flushed and its input discarded by
 * the caller first (STARTTLS: anything the client pipelined before the
 * handshake is plaintext and must not be trusted).
 *
 * Settings: TLS 1.2 and later, no compression, no renegotiation, the
 * server's cipher order, and a peer that closes without close_notify is a
 * plain EOF (SSL_OP_IGNORE_UNEXPECTED_EOF): SMTP ends with QUIT, not with
 * the TLS layer.
 *
 * The client half (the outbound smtp client): tls_client_new() makes one
 * context per process before the chroot, with the trusted CAs' file read
 * at once (cafile, or the system's default CA file: a chrooted process
 * can no longer open either) but parsed only when the first handshake
 * needs it, or when the caller asks (tls_client_load_cas): parsing
 * Debian's bundle of some 140 CAs costs about 30 ms, which a process
 * that never meets a STARTTLS server, or one whose level makes the
 * certificate only a word in the log, should not pay at every start.  A
 * file that then does not parse is a warning, and nothing verifies.  Per
 * connection, tls_client_start() runs the
 * handshake with SNI (servername), and with reference names to check the
 * server's certificate against (a name that starts with "." matches any
 * subdomain of the rest).  The chain and the names are always checked, and
 * the outcome is kept for the caller and the log ("Verified": chain and
 * name; "Trusted": the chain; "Untrusted"; "Anonymous": no certificate);
 * with verify set a handshake whose outcome is not "Verified" fails.
 * Sessions are cached in the process, under a key the caller chooses (the
 * server, the SNI and the policy: a session made under one policy is never
 * resumed under another), so that repeated connections resume; at most
 * TLS_CLIENT_CACHE_MAX sessions, each for cache_timeout seconds.
 *
 * Failure modes: tls_server_new() and tls_client_new() return NULL with
 * the reason (the caller decides whether that is fatal); a failed
 * handshake, or a server certificate that fails a required verification,
 * is a peer error, returned as NULL with a reason for the log.  After a
 * start, the stream reports TLS errors as STREAM_ERROR like any I/O error.
 */
#ifndef POSTHORN_TLS_H
#define POSTHORN_TLS_H

#include "buf.h"
#include "stream.h"

typedef struct tls_server tls_server_t;
typedef struct tls_client tls_client_t;
typedef struct tls_conn tls_conn_t;

#define TLS_CLIENT_CACHE_MAX 256

/* Load cert_file (PEM chain, leaf first) and key_file (PEM).  NULL with a
 * one-line reason appended to err. */
tls_server_t *tls_server_new(const char *cert_file, const char *key_file, buf_t *err);
void          tls_server_free(tls_server_t **tp);

/* Handshake on s's descriptor within timeout_ms; on success s reads and
 * writes through TLS.  NULL with a reason in *why (a static string or one
 * owned by the library; valid until the next call) on failure; s is then
 * unusable for TLS and should be closed. */
tls_conn_t *tls_server_start(tls_server_t *t, stream_t *s, int timeout_ms, const char **why);

/* The client context: cafile (PEM, one or more CA certificates), or NULL
 * or "" for the system's default CA file (OpenSSL's, $SSL_CERT_FILE); a
 * missing default file only means that nothing verifies.  cache_timeout:
 * seconds a session may be resumed (0: no cache).  NULL with a reason
 * appended to err. */
tls_client_t *tls_client_new(const char *cafile, long cache_timeout, buf_t *err);
void          tls_client_free(tls_client_t **tp);
/* Parse the CAs now (once; later calls do nothing): 0, or -1 with a reason
 * appended to err (the file is then dropped and nothing verifies).  For
 * callers whose every handshake verifies, so that a bad file is fatal at
 * start. */
int           tls_client_load_cas(tls_client_t *t, buf_t *err);

struct tls_client_params {
    const char        *servername;  /* SNI; NULL: none (an IP address) */
    const char *const *names;       /* reference names for the certificate */
    size_t             nnames;      /* 0: the name is not checked */
    int                verify;      /* 1: fail unless Verified (chain and a name) */
    const char        *cache_key;   /* session cache key; NULL: no resumption */
};

/* Handshake as a client on s's descriptor within timeout_ms; on success s
 * reads and writes through TLS.  NULL with a reason in *why (static, or
 * valid until the next call) on failure. */
tls_conn_t *tls_client_start(tls_client_t *t, stream_t *s, const struct tls_client_params *p,
                             int timeout_ms, const char **why);

/* What was negotiated: "TLSv1.3", "TLS_AES_256_GCM_SHA384", 256. */
const char *tls_conn_protocol(const tls_conn_t *c);
const char *tls_conn_cipher(const tls_conn_t *c);
int         tls_conn_bits(const tls_conn_t *c);
int         tls_conn_alg_bits(const tls_conn_t *c);     /* the cipher's own key size */

/* Client connections: the outcome of the certificate checks. */
enum tls_trust { TLS_ANONYMOUS, TLS_UNTRUSTED, TLS_TRUSTED, TLS_VERIFIED };
enum tls_trust tls_conn_trust(const tls_conn_t *c);
const char *tls_trust_str(enum tls_trust t);           /* "Verified", ... */
/* Why the chain or the name did not verify ("certificate has expired",
 * "Hostname mismatch"); NULL if it did. */
const char *tls_conn_verify_error(const tls_conn_t *c);
int         tls_conn_resumed(const tls_conn_t *c);     /* 1: an abbreviated handshake */

/* Channel binding data for SCRAM-*-PLUS (either end of a connection):
 * on TLS 1.3 "tls-exporter" (RFC 9266: 32 bytes exported under the label
 * "EXPORTER-Channel-Binding" with an empty context); below it "tls-unique"
 * (RFC 5929: the handshake's first Finished message, the client's in a
 * full handshake, the server's in a resumed one), but none for a resumed
 * session without extended master secret (the triple handshake attack,
 * RFC 7627).  0 with *type set and the data appended to out, or -1 if
 * there is none (out unchanged). */
int         tls_conn_channel_binding(const tls_conn_t *c, buf_t *out, const char **type);

/* Send close_notify (best effort, no waiting), put s back on the raw
 * descriptor and free the session.  s's output must be flushed first. */
void        tls_conn_free(tls_conn_t **cp, stream_t *s);

#endif
