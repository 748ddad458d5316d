/*
 * local_proto - the protocol between qmgr and local (the root delivery
 * spawner).
 *
 * Socket: private/local.  Protocol "local" version 1; qmgr sends its hello
 * first.  local accepts only mail_owner (and root) as peer.  qmgr may have
 * many requests outstanding on one connection; each result carries the
 * request id of its request and results come in any order.
 *
 *   LOCAL_DELIVER  (reqid = qmgr's delivery number)
 *     str queue_id, str sender ("" = <>), str recipient (user@domain, the
 *     domain one of ours), str orig_recipient ("" = same), int flags (0);
 *     fd: the queue file, opened read-only (local validates it with
 *     queue_read and copies the content from it).
 *   LOCAL_RESULT   (same reqid)
 *     int class (2 delivered, 4 try again later, 5 failed for good),
 *     str dsn ("2.0.0", "4.3.0", "5.1.1", ...), str text (for the log and
 *     the bounce, e.g. "delivered to maildir", "unknown user: \"bob\"").
 *
 * Decoding checks every field; a malformed message is a peer error.
 */
#ifndef POSTHORN_LOCAL_PROTO_H
#define POSTHORN_LOCAL_PROTO_H

#include <stdint.h>

#include "ipc.h"

#define LOCAL_PROTO_NAME     "local"
#define LOCAL_PROTO_VERSION  1
#define LOCAL_SOCKET         "private/local"

enum {
    LOCAL_DELIVER = 0x400,
    LOCAL_RESULT,
};

struct local_request {
    char *queue_id;
    char *sender;
    char *recipient;
    char *orig_recipient;
    int   flags;
    int   queue_fd;         /* owned; -1 if none */
};

struct local_result {
    int   dsn_class;        /* 2, 4 or 5 */
    char *dsn;
    char *text;
};

void local_proto_init(void);

/* The message takes no ownership of queue_fd (it is lent for the send). */
ipc_msg_t *local_request_encode(uint32_t reqid, const char *queue_id, const char *sender,
                                const char *recipient, const char *orig_recipient,
                                int flags, int queue_fd);
/* 0, or -1 with *why (r is cleared); takes the fd out of m. */
int  local_request_decode(ipc_msg_t *m, struct local_request *r, const char **why);
void local_request_free(struct local_request *r);   /* closes queue_fd */

ipc_msg_t *local_result_encode(uint32_t reqid, int dsn_class, const char *dsn,
                               const char *text);
/* 0, or -1 (malformed: class not 2/4/5, dsn not of that class, ...). */
int  local_result_decode(ipc_msg_t *m, struct local_result *r);
void local_result_free(struct local_result *r);

/* 1 if s is an enhanced status code "C.SSS.DDD" (RFC 3463) of class
 * dsn_class (0: any of 2, 4, 5). */
int  dsn_code_valid(const char *s, int dsn_class);

#endif
