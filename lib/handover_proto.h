/*
 * handover_proto - how a login half (pop3d, imapd as login_user) gives a
 * logged-in client's connection to the mail half of its protocol (root,
 * about to become the mailbox owner): the login/mail split of DESIGN.md
 * §1.
 *
 * Socket: the mail half's unix service (private/pop3, private/imap), which
 * master also binds in login/, the login halves' jail (HANDOVER_JAIL_*).
 * Protocol "handover" version 1; the login half sends its hello first,
 * then one request per connection:
 *
 *   HANDOVER_REQUEST  str service (AUTH_SERVICE_POP3, AUTH_SERVICE_IMAP),
 *                     bytes cookie (AUTH_COOKIE_LEN octets: authd's, from
 *                     the AUTH_DONE of the login), str client address (IP
 *                     text), str client port, int flags (HANDOVER_F_*),
 *                     str mechanism (for the log), str tag (the IMAP tag
 *                     of the command that logged in; "" for POP3), bytes
 *                     input (what the client sent after that command and
 *                     the login half had read already: it goes first),
 *                     and the descriptor: the client's socket, or under
 *                     TLS one end of a socketpair whose other end the
 *                     login half keeps, proxying
 *   HANDOVER_REPLY    int result (HANDOVER_OK: the mail half has the
 *                     connection and answers the login command itself;
 *                     HANDOVER_FAIL: it refused for good, HANDOVER_TEMPFAIL:
 *                     for now; the login half still owns the client and
 *                     answers it), str reason (for the log)
 *
 * Inside the mail half, for a protocol served by one process per user
 * (imapd; lib/postlogin's per-user mode), the root process and a user's
 * process share a socketpair, the user's channel:
 *
 *   HANDOVER_REQUEST  root -> the user's process: one more logged-in
 *                     connection of that user, the fields as above (the
 *                     cookie is all zeros: it was redeemed already)
 *   HANDOVER_IDLE     the user's process -> root: int received (how many
 *                     connections it has been given, the first included);
 *                     it has no session left.  Root lets the process go
 *                     (closes its end) when that is every connection it
 *                     sent, so a connection in flight is never lost; the
 *                     process exits when it reads the end of the channel.
 *
 * The mail half never takes the user from here: it redeems the cookie with
 * authd (AUTH_REDEEM, with the login half's pid from SO_PEERCRED on this
 * socket), which names the user.  Limits (decoders refuse more): input of
 * at most HANDOVER_INPUT_MAX octets, a tag of at most HANDOVER_TAG_MAX
 * printable characters, a mechanism as auth_proto allows, a reason of at
 * most HANDOVER_REASON_MAX printable characters.  A decoder checks every
 * field and returns -1 with a reason for the log: a peer error, never an
 * abort.
 */
#ifndef POSTHORN_HANDOVER_PROTO_H
#define POSTHORN_HANDOVER_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "auth_proto.h"
#include "ipc.h"
#include "netaddr.h"

#define HANDOVER_PROTO_NAME     "handover"
#define HANDOVER_PROTO_VERSION  1
#define HANDOVER_TIMEOUT_MS     (10 * 1000)

/* The login halves' jail: queue_directory/login, holding only the sockets
 * they use (bound there by master). */
#define HANDOVER_JAIL_AUTH      "/authd"      /* authd, seen from the jail */

#define HANDOVER_INPUT_MAX      65536
#define HANDOVER_TAG_MAX        64
#define HANDOVER_REASON_MAX     256
#define HANDOVER_FRAME_MAX      (HANDOVER_INPUT_MAX + 4096)

enum {
    HANDOVER_REQUEST = 0x900,
    HANDOVER_REPLY,
    HANDOVER_IDLE,
};

#define HANDOVER_OK        0
#define HANDOVER_FAIL      1
#define HANDOVER_TEMPFAIL  2

#define HANDOVER_F_TLS      0x1     /* the client speaks TLS to the login half */
#define HANDOVER_F_SECURED  0x2     /* TLS, or the client is the host itself */
#define HANDOVER_F_ALL      (HANDOVER_F_TLS | HANDOVER_F_SECURED)

struct handover_request {
    char          *service;
    unsigned char  cookie[AUTH_COOKIE_LEN];
    char          *client_addr;
    char          *client_port;
    unsigned       flags;
    char          *mech;
    char          *tag;
    const void    *input;       /* points into the message */
    size_t         input_len;
    int            fd;          /* taken from the message; the caller closes it */
};

void handover_proto_init(void);

/* The login half's side: the request (fd: the message takes it). */
ipc_msg_t *handover_request_encode(const char *service, const unsigned char *cookie,
                                   const char *client_addr, const char *client_port,
                                   unsigned flags, const char *mech, const char *tag,
                                   const void *input, size_t input_len, int fd);
int        handover_reply_decode(ipc_msg_t *m, int *result, char **reason, const char **why);

/* The mail half's side. */
int        handover_request_decode(ipc_msg_t *m, struct handover_request *r, const char **why);
void       handover_request_clear(struct handover_request *r);
ipc_msg_t *handover_reply_encode(int result, const char *reason);
/* The user's channel (per-user mail halves). */
ipc_msg_t *handover_idle_encode(uint64_t received);
int        handover_idle_decode(ipc_msg_t *m, uint64_t *received, const char **why);

#endif
