/*
 * login - what the login halves of pop3d and imapd share (DESIGN.md §1):
 * they run as login_user, jailed in queue_directory/login (where master
 * binds only authd's socket and the mail halves'), speak the protocol
 * until a client has logged in through authd, and then give the
 * connection away:
 *
 *  - login_secured(): Dovecot's rule for plaintext passwords (its
 *    disable_plaintext_auth): a connection is secured when it runs TLS or
 *    when the client is the host itself (its address is the one it
 *    connected to);
 *  - login_handover(): after authd's OK with a hand-over cookie, give the
 *    connection to the mail half of the protocol (lib/handover_proto): the
 *    client's socket itself on a plaintext connection, with what the
 *    client pipelined after its login command; under TLS one end of a
 *    socketpair, the login half staying on as the TLS end of a proxy
 *    (login_proxy) until either side closes, so that no TLS code ever runs
 *    as the user and the user's process never holds the session keys.
 *    The mail half redeems the cookie with authd itself and answers the
 *    login command.
 *
 * And what both login halves do the same way around a login:
 *  - login_auth_terms(): the connection's terms for authd (AUTH_F_*:
 *    TLS, whether passwords may be sent, a hand-over cookie wanted) and
 *    the TLS channel binding, only with auth_channel_binding (mutt's GNU
 *    SASL picks SCRAM-SHA-256-PLUS whenever offered and cannot do it);
 *  - login_challenge(): one SASL challenge ("+ base64") and the client's
 *    answer line ("*" cancels);
 *  - login_count_connection(): the connection count per client address
 *    (anvil), against the protocol's limit;
 *  - login_log_failure(): the fail2ban line of a failed login, in the
 *    words smtpd uses ("NAME[ADDR]: SASL MECH authentication failed:
 *    WHAT, user=<USER>").
 *
 * Failure modes: a mail half that cannot be reached or refuses is
 * returned (HANDOVER_TEMPFAIL, HANDOVER_FAIL with a reason for the log):
 * the login half still owns the client and answers it.  During the proxy,
 * a failure on either side ends both.
 */
#ifndef POSTHORN_LOGIN_H
#define POSTHORN_LOGIN_H

#include <stdbool.h>

#include "auth_proto.h"
#include "buf.h"
#include "session.h"
#include "svcconn.h"

bool login_secured(const session_t *s);

/* The terms of a login on this connection (cb: fresh; free with
 * login_auth_terms_clear). */
struct login_auth_terms {
    unsigned    flags;          /* AUTH_F_* */
    const char *cb_type;        /* NULL: no channel binding */
    buf_t      *cb;
};
void login_auth_terms(const session_t *s, bool plaintext_ok, struct login_auth_terms *t);
void login_auth_terms_clear(struct login_auth_terms *t);

/* Send "+ base64(data)", read the answer into line (max octets): 1 with
 * the decoded answer in out, 0 for "*" (cancelled), or LOGIN_CHALLENGE_*
 * (the session is told nothing: the caller answers a malformed or long
 * one in its protocol; an I/O failure was logged and ends the session). */
#define LOGIN_CHALLENGE_IO       (-1)
#define LOGIN_CHALLENGE_BASE64   (-2)
#define LOGIN_CHALLENGE_TOOLONG  (-3)
int login_challenge(session_t *s, buf_t *line, size_t max, const void *data, size_t len,
                    buf_t *out);

/* Count this connection with anvil (at the jail path of anvil's socket)
 * for service: 0 not counted (no limit, not IP, anvil unreachable: then
 * availability wins), 1 counted and within limit, -1 over it (logged; the
 * caller says so in its protocol and ends the session).  Uncount with
 * login_uncount_connection() when the result was not 0. */
int  login_count_connection(session_t *s, struct svcconn *anvil, const char *service,
                            long long limit, const char *param);
void login_uncount_connection(session_t *s, struct svcconn *anvil, const char *service);

void login_log_failure(const session_t *s, const char *mech, const char *user, const char *what);

/* Give s's client to service's mail half (socket: the jail path, such as
 * "/pop3").  HANDOVER_OK when the mail half took it (the session is over
 * for this process: with TLS, the proxy has run to its end); else
 * HANDOVER_FAIL or HANDOVER_TEMPFAIL with *why (valid until the next
 * call), the client untouched.  mech and tag go to the mail half for its
 * log and its reply. */
int login_handover(session_t *s, const char *socket_path, const char *service,
                   const unsigned char cookie[AUTH_COOKIE_LEN], const char *mech,
                   const char *tag, const char **why);

#endif
