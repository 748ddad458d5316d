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
 * Failure modes: a mail half that cannot be reached or refuses is
 * returned (HANDOVER_TEMPFAIL, HANDOVER_FAIL with a reason for the log):
 * the login half still owns the client and answers it.  During the proxy,
 * a failure on either side ends both.
 */
#ifndef POSTHORN_LOGIN_H
#define POSTHORN_LOGIN_H

#include <stdbool.h>

#include "auth_proto.h"
#include "session.h"

bool login_secured(const session_t *s);

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
