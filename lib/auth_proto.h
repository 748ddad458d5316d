/*
 * auth_proto - the protocol spoken to authd, the one process that checks
 * mail passwords: submission (and the POP3 and IMAP login halves) relay a
 * client's SASL exchange (RFC 4422) to it and learn who logged in.
 *
 * Socket: private/authd.  Protocol "auth" version 1; the client sends its
 * hello first.  Allowed peers: network_user (submission), login_user
 * (the login halves), root.  A connection carries any number of
 * conversations, one at a time or several, each under its own request id:
 *
 *   AUTH_START     str service (AUTH_SERVICE_*), str mechanism, str client
 *                  address (IP text, for throttling and the log), int
 *                  flags (AUTH_F_TLS: the connection is encrypted;
 *                  AUTH_F_PLAINTEXT_OK: plaintext mechanisms are allowed
 *                  on it), str channel-binding type ("", "tls-exporter",
 *                  "tls-unique"), bytes channel-binding data (empty
 *                  without a type), int has-initial (0 or 1), bytes
 *                  initial response (the client's, decoded; empty when
 *                  there is none)
 *   AUTH_STEP      bytes response: the client's answer to a challenge
 *   AUTH_CANCEL    (no fields): the client gave up ("*"); no reply
 *   AUTH_CONTINUE  bytes challenge: send it (base64) and wait for the
 *                  client's answer
 *   AUTH_DONE      int result (AUTH_OK, AUTH_FAIL, AUTH_TEMPFAIL), str
 *                  user (OK: the account logged in; else ""), bytes final
 *                  (data for the client with the outcome, such as SCRAM's
 *                  "v=..." on success or "e=..." on failure; may be
 *                  empty), str reason (for the log, never a password; ""
 *                  on success), bytes cookie (AUTH_COOKIE_LEN octets when
 *                  the START had AUTH_F_HANDOVER and the result is OK;
 *                  else empty)
 *
 * The hand-over (the login/mail split, pop3d and imapd): a login half
 * (login_user) asks with AUTH_F_HANDOVER and, on success, gets a cookie:
 * 128 random bits that authd keeps for AUTH_COOKIE_SECONDS with the user,
 * the service and the login half's process id (SO_PEERCRED of its authd
 * connection).  It passes the cookie with the client's connection to the
 * mail half, which never takes a user name from the login half: it asks
 * authd, as root,
 *   AUTH_REDEEM    str service, bytes cookie, int login process id (the
 *                  one SO_PEERCRED shows on the hand-over socket)
 *   AUTH_REDEEMED  int result (AUTH_OK or AUTH_FAIL), str user (OK: the
 *                  account; else "")
 * A cookie is good once: any redemption removes it; OK only if it is
 * known, not expired, and was issued for that service to that process.
 *
 * The binary fields travel decoded: base64 is the protocol layer's.  Limits
 * (decoders refuse more): a mechanism of at most AUTH_MECH_MAX letters,
 * digits, '-' or '_'; responses, challenges and final data of at most
 * AUTH_DATA_MAX octets (RFC 4954's 12288-octet line, decoded); channel
 * binding data of at most AUTH_CB_MAX octets; a user of at most
 * AUTH_USER_MAX octets and a reason of at most AUTH_REASON_MAX, neither with
 * control characters; a client address that netaddr_parse() accepts.
 *
 * Each side uses both halves: the clients encode requests and decode
 * replies (auth_reply_decode), authd decodes requests
 * (auth_request_decode) and encodes replies.  A decoder checks every field
 * and returns -1 with a reason for the log for anything else: a peer
 * error, never an abort.  Encoders never fail (out of memory is fatal).
 */
#ifndef POSTHORN_AUTH_PROTO_H
#define POSTHORN_AUTH_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "ipc.h"

#define AUTH_PROTO_NAME     "auth"
#define AUTH_PROTO_VERSION  2
#define AUTH_SOCKET         "private/authd"
#define AUTH_TIMEOUT_MS     (30 * 1000)

#define AUTH_MECH_MAX       32
#define AUTH_DATA_MAX       12288
#define AUTH_CB_MAX         64
#define AUTH_USER_MAX       255
#define AUTH_REASON_MAX     512
/* The largest frame either side sends: every field at its limit. */
#define AUTH_FRAME_MAX      (AUTH_DATA_MAX + 2048)

enum {
    AUTH_START = 0x800,
    AUTH_STEP,
    AUTH_CANCEL,
    AUTH_CONTINUE,
    AUTH_DONE,
    AUTH_REDEEM,
    AUTH_REDEEMED,
};

#define AUTH_OK        0
#define AUTH_FAIL      1
#define AUTH_TEMPFAIL  2

#define AUTH_F_TLS           0x1
#define AUTH_F_PLAINTEXT_OK  0x2
#define AUTH_F_HANDOVER      0x4
#define AUTH_F_ALL           (AUTH_F_TLS | AUTH_F_PLAINTEXT_OK | AUTH_F_HANDOVER)

#define AUTH_COOKIE_LEN      16
#define AUTH_COOKIE_SECONDS  10     /* a hand-over that takes longer fails */

/* The services that ask, as the log and the throttling name them. */
#define AUTH_SERVICE_SUBMISSION "submission"
#define AUTH_SERVICE_SMTPD      "smtpd"         /* with smtpd_sasl_auth_enable */
#define AUTH_SERVICE_POP3       "pop3"
#define AUTH_SERVICE_IMAP       "imap"

/* A request as authd sees it (START, STEP, CANCEL or REDEEM).  Strings are
 * owned; cb_data and data point into the message they were decoded from. */
struct auth_request {
    uint32_t    type;
    uint32_t    reqid;
    char       *service;        /* START, REDEEM */
    long        login_pid;      /* REDEEM */
    char       *mech;           /* START, upper-cased */
    char       *client_addr;    /* START */
    unsigned    flags;          /* START: AUTH_F_* */
    char       *cb_type;        /* START: "" or the type */
    const void *cb_data;        /* START */
    size_t      cb_len;
    int         has_data;       /* START: an initial response; STEP: 1 */
    const void *data;           /* START: the initial response; STEP: the response;
                                   REDEEM: the cookie */
    size_t      data_len;
};

/* A reply as a client sees it (CONTINUE, DONE or REDEEMED). */
struct auth_reply {
    uint32_t    type;
    uint32_t    reqid;
    int         result;         /* DONE, REDEEMED */
    char       *user;           /* DONE, REDEEMED */
    int         has_cookie;     /* DONE */
    unsigned char cookie[AUTH_COOKIE_LEN];
    char       *reason;         /* DONE */
    void       *data;           /* CONTINUE: the challenge; DONE: the final data
                                   (the reply's own copy: auth_reply_clear frees it) */
    size_t      data_len;
};

void auth_proto_init(void);

/* The client's half. */
ipc_msg_t *auth_start_encode(uint32_t reqid, const char *service, const char *mech,
                             const char *client_addr, unsigned flags, const char *cb_type,
                             const void *cb_data, size_t cb_len, int has_initial,
                             const void *initial, size_t initial_len);
ipc_msg_t *auth_step_encode(uint32_t reqid, const void *response, size_t len);
ipc_msg_t *auth_cancel_encode(uint32_t reqid);
ipc_msg_t *auth_redeem_encode(uint32_t reqid, const char *service,
                              const unsigned char cookie[AUTH_COOKIE_LEN], long login_pid);
int        auth_reply_decode(ipc_msg_t *m, struct auth_reply *r, const char **why);
void       auth_reply_clear(struct auth_reply *r);

/* authd's half. */
int        auth_request_decode(ipc_msg_t *m, struct auth_request *r, const char **why);
void       auth_request_clear(struct auth_request *r);
ipc_msg_t *auth_continue_encode(uint32_t reqid, const void *challenge, size_t len);
/* cookie: NULL, or AUTH_COOKIE_LEN octets (only with AUTH_OK). */
ipc_msg_t *auth_done_encode(uint32_t reqid, int result, const char *user, const void *final,
                            size_t final_len, const char *reason, const unsigned char *cookie);
ipc_msg_t *auth_redeemed_encode(uint32_t reqid, int result, const char *user);

#endif
