/*
 * cleanup_proto - the protocol spoken to cleanup, the only writer of new
 * queue files (DESIGN.md §1-§3).
 *
 * Socket: private/cleanup (relative to queue_directory, which is "/" for
 * the chrooted clients).  Protocol "cleanup" version 1 over the ipc
 * framing; the client sends its hello first, cleanup answers with its own.
 * Allowed peers: network_user (smtpd, submission), mail_owner (qmgr's
 * bounces, pickup) and root.
 *
 * One request at a time on a connection, any number in sequence:
 *
 *   CLEANUP_SUBMIT  -> CLEANUP_RESULT
 *     int flags (CLEANUP_FLAG_*), str sender ("" = <>), str envid ("" =
 *     none), int ret (QUEUE_RET_*), int nattr, nattr x (str name, str
 *     value), int nrcpt (>= 1), nrcpt x (str address, str orig, str orcpt,
 *     int notify), int content_len; fd: a readable descriptor (a memfd)
 *     holding exactly content_len bytes of message content from offset 0:
 *     header and body as received, CRLF line ends, dot-stuffing undone.
 *   CLEANUP_RESULT
 *     int code (250 = committed; else the SMTP reply code to give: 451,
 *     452, 554, 552, ...), str dsn ("2.0.0", "4.3.0", ...), str text (the
 *     queue ID on success; otherwise a reason fit for an SMTP reply).
 *
 * Attributes ("client_addr", "helo_name", "protocol", "tls_protocol", ...,
 * see CLEANUP_ATTR_* and queue.h) describe the client; cleanup keeps them
 * in the queue file and builds the Received: header from them, because it
 * knows the queue ID.
 *
 * Privilege (DESIGN.md §1).  Some fields carry privilege: the bounce flag
 * (no Received:, no hop count, no size limit), submit_uid and submit_user
 * (a local submission by that user: "Received: by ... from userid N") and
 * maildrop_id (cleanup removes that maildrop file).  Who may send what
 * depends on the peer's class (enum cleanup_peer), and the check and the
 * decoder enforce it, so no use of a field has to:
 *   CLEANUP_PEER_TRUSTED  mail_owner or root (qmgr's and pickup's bounces,
 *                         pickup, local's forwarding child): anything.
 *   CLEANUP_PEER_NETWORK  network_user (smtpd, submission): of the flags
 *                         only hide_client; of the attributes only
 *                         the client attributes client_name, client_addr
 *                         (required, non-empty), client_port, helo_name,
 *                         protocol, tls_protocol, tls_cipher, tls_bits,
 *                         sasl_username, and smtpd's check results
 *                         auth_results and quarantine.
 *   CLEANUP_PEER_LOCAL    a maildrop file, written by any local user
 *                         through sendmail (never a socket peer; pickup
 *                         and sendmail check with it): no flags; only
 *                         submit_uid and submit_user (both required;
 *                         pickup then holds the uid to the file's owner),
 *                         helo_name and protocol (sendmail -bs).
 * An attribute name may appear once.  A request that breaks a rule is a
 * peer error: cleanup logs it and drops the connection.
 *
 * The code here encodes and decodes the messages, for both sides; nothing
 * trusts the peer (decode returns -1 on any malformed field).
 */
#ifndef POSTHORN_CLEANUP_PROTO_H
#define POSTHORN_CLEANUP_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipc.h"

#define CLEANUP_PROTO_NAME     "cleanup"
#define CLEANUP_PROTO_VERSION  1
#define CLEANUP_SOCKET         "private/cleanup"
#define CLEANUP_TIMEOUT_MS     (120 * 1000)   /* fsync under load can be slow */
#define CLEANUP_MAX_ATTRS      64
#define CLEANUP_MAX_RCPTS      100000
#define CLEANUP_MAX_REQUEST    (16 * 1024 * 1024)   /* encoded request, bytes */

enum {
    CLEANUP_SUBMIT = 0x200,
    CLEANUP_RESULT,
};

/* The class of the peer a request comes from (see above); a bit each, so
 * the rules can be a table. */
enum cleanup_peer {
    CLEANUP_PEER_NETWORK = 1 << 0,
    CLEANUP_PEER_LOCAL   = 1 << 1,
    CLEANUP_PEER_TRUSTED = 1 << 2,
};

/* Request flags. */
#define CLEANUP_FLAG_BOUNCE      (1 << 0)  /* a DSN made by qmgr: no Received:,
                                              no hop count check */
#define CLEANUP_FLAG_HIDE_CLIENT (1 << 1)  /* the Received: header leaves out
                                              the client (submission_hide_client) */
#define CLEANUP_FLAGS            (CLEANUP_FLAG_BOUNCE | CLEANUP_FLAG_HIDE_CLIENT)

/* Attributes beyond queue.h's client_name, client_addr, helo_name, protocol,
 * sasl_username. */
#define CLEANUP_ATTR_CLIENT_PORT   "client_port"
#define CLEANUP_ATTR_TLS_PROTOCOL  "tls_protocol"
#define CLEANUP_ATTR_TLS_CIPHER    "tls_cipher"
#define CLEANUP_ATTR_TLS_BITS      "tls_bits"

struct cleanup_rcpt {
    char    *address;       /* non-empty */
    char    *orig;          /* "" = none */
    char    *orcpt;         /* "" = none; "rfc822;user@example.com" */
    unsigned notify;        /* QUEUE_NOTIFY_* */
};

struct cleanup_request {
    int                  flags;
    char                *sender;
    char                *envid;
    int                  ret;
    size_t               nattr;
    char               **attr_names;
    char               **attr_values;
    size_t               nrcpt;
    struct cleanup_rcpt *rcpts;
    uint64_t             content_len;
    int                  content_fd;   /* -1 if none; owned */
};

struct cleanup_result {
    int   code;
    char *dsn;
    char *text;
};

void cleanup_proto_init(void);                  /* register message names */

/* Building a request (client side).  The request owns copies of all
 * strings; cleanup_request_free() releases them and closes content_fd. */
void cleanup_request_init(struct cleanup_request *r);
void cleanup_request_attr(struct cleanup_request *r, const char *name, const char *value);
void cleanup_request_rcpt(struct cleanup_request *r, const char *address,
                          const char *orig, const char *orcpt, unsigned notify);
void cleanup_request_free(struct cleanup_request *r);
/* The value of attribute name, or NULL. */
const char *cleanup_request_get_attr(const struct cleanup_request *r, const char *name);

/* Send r (its content_fd travels with it; r keeps owning it) and wait for
 * the result.  0 with *res filled (res->code says whether it was queued),
 * or -1 with errno on an IPC failure (the caller answers 451 4.3.0 and
 * drops the connection); ECONNABORTED when cleanup read the request and
 * closed without an answer (the message may or may not be queued). */
int cleanup_submit(int sock, const struct cleanup_request *r, struct cleanup_result *res,
                   int timeout_ms);
/* The same over a connection the caller keeps between requests (*sock, -1
 * for none): opened when there is none or cleanup has closed it (a cleanup
 * process may end between two requests), and, when a kept one turns out
 * closed while the request was on its way (EPIPE, ECONNRESET: cleanup
 * never read it), once more on a new one; never when cleanup read it and
 * closed without an answer (it may have queued it).  0, or -1 with errno and *why
 * for the log (*sock is then -1). */
int cleanup_submit_kept(int *sock, const struct cleanup_request *r, struct cleanup_result *res,
                        int timeout_ms, const char **why);
void cleanup_result_free(struct cleanup_result *res);

/* The rules every request must meet (no control characters in the
 * envelope, attribute names [a-z0-9_]{1,64}, each at most once, 1 to
 * CLEANUP_MAX_RCPTS recipients, valid NOTIFY, at most CLEANUP_MAX_REQUEST
 * bytes encoded) and the privilege rules for a peer of class peer: 0, or
 * -1 with a static reason.  decode applies them; a client that queues
 * requests for later (sendmail, pickup) checks them first. */
int cleanup_request_check(const struct cleanup_request *r, enum cleanup_peer peer,
                          const char **why);

/* The class of a socket peer: root and mail_owner are trusted, anyone
 * else (network_user: the only other uid cleanup's hello lets in) is the
 * network. */
enum cleanup_peer cleanup_peer_class(uid_t uid, uid_t mail_owner);
/* "network_user", "a maildrop file", "mail_owner or root": for the logs. */
const char *cleanup_peer_name(enum cleanup_peer peer);

/* Server side.  decode a request from a peer of class peer: 0, or -1 with
 * a static reason in *why (r is then freed); takes the fd out of m. */
int cleanup_request_decode(ipc_msg_t *m, enum cleanup_peer peer, struct cleanup_request *r,
                           const char **why);
ipc_msg_t *cleanup_result_encode(uint32_t reqid, int code, const char *dsn, const char *text);

#endif
