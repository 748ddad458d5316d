/*
 * authrelay - one client's SASL exchange (RFC 4422) relayed to authd, for
 * every protocol that logs clients in: SMTP AUTH (lib/smtpauth), POP3 AUTH
 * and USER/PASS, IMAP AUTHENTICATE and LOGIN.  The protocol owns its
 * syntax (how a challenge is written, what cancels); this module owns the
 * conversation with authd (lib/auth_proto): the start, one step per
 * challenge, the cancel, the outcome, and a kept connection that an authd
 * restart closed (replaced once, at once).
 *
 * The protocol's challenge hook sends one challenge and reads the
 * client's answer: 1 with the decoded answer in out, 0 when the client
 * cancelled ("*"), -1 when the connection failed or the line was too long
 * (the hook has answered or logged that itself), -2 for a line that is not
 * base64.  A mechanism's data with success (SCRAM's "v=") is sent the same
 * way, as a last challenge that must get an empty answer (RFC 4954 4, RFC
 * 5034 4, RFC 9051 6.2.2).
 *
 * Outcomes (struct authrelay_result.outcome):
 *   AUTHRELAY_OK         user (and cookie, when asked for) set
 *   AUTHRELAY_FAIL       wrong credentials (authd delayed the answer)
 *   AUTHRELAY_TEMPFAIL   authd could not tell, refused the address for now,
 *                        or could not be reached (reason for the log)
 *   AUTHRELAY_CANCELLED  the client answered "*"
 *   AUTHRELAY_MALFORMED  an answer that was not base64, or data after
 *                        success
 *   AUTHRELAY_IOERR      the client's connection failed (the hook said -1)
 *
 * Failure modes: none of its own; authd's failures are TEMPFAIL, logged.
 */
#ifndef POSTHORN_AUTHRELAY_H
#define POSTHORN_AUTHRELAY_H

#include <stddef.h>

#include "auth_proto.h"
#include "buf.h"
#include "svcconn.h"

enum authrelay_outcome {
    AUTHRELAY_OK,
    AUTHRELAY_FAIL,
    AUTHRELAY_TEMPFAIL,
    AUTHRELAY_CANCELLED,
    AUTHRELAY_MALFORMED,
    AUTHRELAY_IOERR,
};

struct authrelay {
    struct svcconn *authd;          /* the caller's kept connection */
    const char     *service;        /* AUTH_SERVICE_* */
    const char     *client_addr;
    unsigned        flags;          /* AUTH_F_* */
    const char     *cb_type;        /* NULL: no channel binding */
    const void     *cb_data;
    size_t          cb_len;
    int (*challenge)(void *ctx, const void *data, size_t len, buf_t *out);
    void           *ctx;
};

struct authrelay_result {
    enum authrelay_outcome outcome;
    char          *user;            /* OK: the account (owned) */
    int            has_cookie;      /* OK with AUTH_F_HANDOVER */
    unsigned char  cookie[AUTH_COOKIE_LEN];
    char          *reason;          /* TEMPFAIL: why, for the log (owned) */
};

/* Run the exchange for mech (upper or lower case; the caller checked it is
 * offered), with the client's initial response if it gave one. */
void authrelay_run(const struct authrelay *a, const char *mech, int has_initial,
                   const void *initial, size_t initial_len, struct authrelay_result *res);
void authrelay_result_clear(struct authrelay_result *res);

#endif
