/*
 * qmgr_proto - the protocol spoken to qmgr: new-mail notices from cleanup
 * and queue control from mailctl.  Both halves of every message live here.
 *
 * Socket: private/qmgr.  Protocol "qmgr" version 1; the client sends its
 * hello first.  Allowed peers: mail_owner (cleanup) and root (mailctl).
 * Control requests are honoured only from root.
 *
 *   QMGR_NOTIFY   str queue_id        a file was committed to incoming/;
 *                                     no reply (qmgr also scans incoming/)
 *   QMGR_FLUSH    str domain          -> QMGR_REPLY; retry deferred mail now:
 *                                     all of it ("") or the messages with
 *                                     a recipient in domain, and lift the
 *                                     suspension of those destinations
 *   QMGR_DELETE   str queue_id|"ALL"  -> QMGR_REPLY; remove from the queue
 *   QMGR_HOLD     str queue_id|"ALL"  -> QMGR_REPLY; move to hold/
 *   QMGR_RELEASE  str queue_id|"ALL"  -> QMGR_REPLY; hold/ back to the queue
 *   QMGR_REPLY    int ok (1/0), int count (messages affected), str text
 *
 * A message that is being delivered when it is deleted or held is acted on
 * as soon as its deliveries in flight have reported.
 *
 * Decoders check every field (a queue ID's syntax, "ALL", a domain of at
 * most 255 letters, digits, '-' and '.', a text without control
 * characters) and return -1 on anything else: the caller drops the peer.
 */
#ifndef POSTHORN_QMGR_PROTO_H
#define POSTHORN_QMGR_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "ipc.h"

#define QMGR_PROTO_NAME     "qmgr"
#define QMGR_PROTO_VERSION  1
#define QMGR_SOCKET         "private/qmgr"
#define QMGR_ALL            "ALL"

enum {
    QMGR_NOTIFY = 0x300,
    QMGR_FLUSH,
    QMGR_DELETE,
    QMGR_HOLD,
    QMGR_RELEASE,
    QMGR_REPLY,
};

void qmgr_proto_init(void);

ipc_msg_t *qmgr_notify_encode(const char *queue_id);
int        qmgr_notify_decode(ipc_msg_t *m, char **queue_id);

/* type: QMGR_FLUSH (arg: a domain or "") or QMGR_DELETE/HOLD/RELEASE (arg:
 * a queue ID or QMGR_ALL). */
ipc_msg_t *qmgr_control_encode(uint32_t type, uint32_t reqid, const char *arg);
int        qmgr_control_decode(ipc_msg_t *m, char **arg);
/* 1 if s may be the domain of a flush ("" included). */
int        qmgr_flush_domain_valid(const char *s);

ipc_msg_t *qmgr_reply_encode(uint32_t reqid, int ok, size_t count, const char *text);
int        qmgr_reply_decode(ipc_msg_t *m, int *ok, size_t *count, char **text);

#endif
