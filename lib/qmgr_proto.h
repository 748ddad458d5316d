/*
 * qmgr_proto - the protocol spoken to qmgr: new-mail notices from cleanup
 * and queue control from mailctl.
 *
 * Socket: private/qmgr.  Protocol "qmgr" version 1; the client sends its
 * hello first.  Allowed peers: mail_owner (cleanup) and root (mailctl).
 * Control requests are honoured only from root.
 *
 *   QMGR_NOTIFY   str queue_id        a file was committed to incoming/;
 *                                     no reply (qmgr also scans incoming/)
 *   QMGR_FLUSH    ()                  -> QMGR_REPLY; retry all deferred
 *                                     mail now
 *   QMGR_DELETE   str queue_id|"ALL"  -> QMGR_REPLY; remove from the queue
 *   QMGR_HOLD     str queue_id|"ALL"  -> QMGR_REPLY; move to hold/
 *   QMGR_RELEASE  str queue_id|"ALL"  -> QMGR_REPLY; hold/ back to the queue
 *   QMGR_REPLY    int ok (1/0), int count (messages affected), str text
 *
 * A message that is being delivered when it is deleted or held is acted on
 * as soon as its deliveries in flight have reported.
 */
#ifndef POSTHORN_QMGR_PROTO_H
#define POSTHORN_QMGR_PROTO_H

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

#endif
