/*
 * tls - TLS for the protocol servers (and later the SMTP client), with
 * OpenSSL, plugged under a lib/stream through its I/O hook.
 *
 * A server context is made once per process in pre_init, while still
 * root, so that a private key readable only by root can be used after the
 * privilege drop: tls_server_new() loads the certificate chain and the key
 * and checks that they belong together.  Per connection, tls_server_start()
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
 * Failure modes: tls_server_new() returns NULL with the reason (the
 * caller decides whether that is fatal); a failed handshake is a peer
 * error, returned as NULL with a reason for the log.  After a start, the
 * stream reports TLS errors as STREAM_ERROR like any I/O error.
 */
#ifndef POSTHORN_TLS_H
#define POSTHORN_TLS_H

#include "buf.h"
#include "stream.h"

typedef struct tls_server tls_server_t;
typedef struct tls_conn tls_conn_t;

/* Load cert_file (PEM chain, leaf first) and key_file (PEM).  NULL with a
 * one-line reason appended to err. */
tls_server_t *tls_server_new(const char *cert_file, const char *key_file, buf_t *err);
void          tls_server_free(tls_server_t **tp);

/* Handshake on s's descriptor within timeout_ms; on success s reads and
 * writes through TLS.  NULL with a reason in *why (a static string or one
 * owned by the library; valid until the next call) on failure; s is then
 * unusable for TLS and should be closed. */
tls_conn_t *tls_server_start(tls_server_t *t, stream_t *s, int timeout_ms, const char **why);

/* What was negotiated: "TLSv1.3", "TLS_AES_256_GCM_SHA384", 256. */
const char *tls_conn_protocol(const tls_conn_t *c);
const char *tls_conn_cipher(const tls_conn_t *c);
int         tls_conn_bits(const tls_conn_t *c);

/* Send close_notify (best effort, no waiting), put s back on the raw
 * descriptor and free the session.  s's output must be flushed first. */
void        tls_conn_free(tls_conn_t **cp, stream_t *s);

#endif
