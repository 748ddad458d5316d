/*
 * smtpauth - AUTH (RFC 4954) for the SMTP servers, relayed to authd: the
 * EHLO keyword and the exchange, for submission (always) and smtpd (with
 * smtpd_sasl_auth_enable).  The policy is the caller's: who may send what
 * once logged in.
 *
 *  - EHLO offers AUTH with the mechanisms authd would run on this
 *    connection (lib/sasl's rule): none before TLS unless
 *    smtpd_tls_auth_only = no; PLAIN and LOGIN only over TLS (or where that
 *    parameter allows plaintext); SCRAM-SHA-256-PLUS with the connection's
 *    channel binding;
 *  - AUTH before TLS with smtpd_tls_auth_only (the default) is 538
 *    5.7.11; a mechanism not offered here is 504 5.5.4 without asking
 *    authd; otherwise the exchange is relayed to authd (lib/auth_proto)
 *    one challenge at a time: 235 2.7.0 on success (a mechanism's final
 *    data, SCRAM's "v=", goes first as a last 334 challenge, RFC 4954 4),
 *    535 5.7.8 on failure, 454 4.7.0 when authd cannot tell or refuses the
 *    address for now, 501 5.7.0 when the client cancels, 501 5.5.2 for a
 *    line that is not base64.  Failures are logged the way fail2ban's
 *    postfix filter reads them: "warning: NAME[ADDR]: SASL MECH
 *    authentication failed: ..."; a temporary failure, which is no
 *    guess, as "... SASL MECH authentication not checked: REASON".
 * The connection to authd is kept for the process's life (lib/svcconn); a
 * kept one that an authd restart closed is replaced once, at once.
 *
 * Failure modes: authd that cannot be reached is 454 4.7.0 for that AUTH
 * (logged).  Nothing a client sends reaches authd unchecked beyond what
 * lib/auth_proto allows.
 *
 * Parameters: smtpd_tls_auth_only.
 */
#ifndef POSTHORN_SMTPAUTH_H
#define POSTHORN_SMTPAUTH_H

#include <stddef.h>

#include "smtpserver.h"

/* Once, in post_init: service is authd's name for the caller
 * (AUTH_SERVICE_SUBMISSION, AUTH_SERVICE_SMTPD). */
void smtpauth_init(const char *service);
/* The smtpserver hooks. */
void smtpauth_ehlo_keywords(struct smtp_session *ss, const char **lines, size_t *n, size_t max);
void smtpauth_auth(struct smtp_session *ss, const char *arg, size_t arg_len);

#endif
