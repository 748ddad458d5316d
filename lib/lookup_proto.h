/*
 * lookup_proto - the protocol spoken to lookupd, the service that answers
 * questions the chrooted network processes cannot: is this a valid local
 * recipient (passwd, alias maps)?  Later also SPF, DKIM and DNSBL.
 *
 * Socket: private/lookupd.  Protocol "lookup" version 1; the client sends
 * its hello first.  Allowed peers: network_user, mail_owner, root.  Any
 * number of requests in sequence on one connection; one reply each.
 *
 *   LOOKUP_RCPT   str address (local-part@domain, or a bare local part;
 *                 the caller has decided the domain is one of ours)
 *   LOOKUP_REPLY  int result (LOOKUP_OK, LOOKUP_NOTFOUND, LOOKUP_TEMPFAIL),
 *                 str text (for the log)
 */
#ifndef POSTHORN_LOOKUP_PROTO_H
#define POSTHORN_LOOKUP_PROTO_H

#include "ipc.h"

#define LOOKUP_PROTO_NAME     "lookup"
#define LOOKUP_PROTO_VERSION  1
#define LOOKUP_SOCKET         "private/lookupd"
#define LOOKUP_TIMEOUT_MS     (20 * 1000)

enum {
    LOOKUP_RCPT = 0x500,
    LOOKUP_REPLY,
};

#define LOOKUP_OK        0
#define LOOKUP_NOTFOUND  1
#define LOOKUP_TEMPFAIL  2

void lookup_proto_init(void);

/* Client: ask about one local recipient over an open connection.  Returns
 * LOOKUP_OK / LOOKUP_NOTFOUND / LOOKUP_TEMPFAIL, or -1 with errno on an
 * IPC failure (the caller closes the connection and answers 451). */
int lookup_rcpt(int sock, const char *address, int timeout_ms);

#endif
