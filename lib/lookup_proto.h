/*
 * lookup_proto - the protocol spoken to lookupd, the service that answers
 * questions the chrooted network processes cannot: is this a valid local
 * recipient (passwd, alias maps)?  Later also SPF, DKIM and DNSBL.
 *
 * Socket: private/lookupd.  Protocol "lookup" version 1; the client sends
 * its hello first.  Allowed peers: network_user, mail_owner, root.  Any
 * number of requests in sequence on one connection; one reply each.
 *
 *   LOOKUP_RCPT     str address (local-part@domain, or a bare local part)
 *   LOOKUP_REPLY    int result, str text (for the log): LOOKUP_OK (a valid
 *                   recipient of a mydestination or virtual alias domain),
 *                   LOOKUP_NOTFOUND (such a domain, no such user),
 *                   LOOKUP_TEMPFAIL, or LOOKUP_REMOTE (not our domain: the
 *                   caller's relay rules decide)
 *   LOOKUP_VIRTUAL  str address: its virtual_alias_maps entry
 *   LOOKUP_REPLY    int result (LOOKUP_OK, LOOKUP_NOTFOUND, LOOKUP_TEMPFAIL),
 *                   str text: the entry's value (an address list) when OK
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
    LOOKUP_VIRTUAL,
};

#define LOOKUP_OK        0
#define LOOKUP_NOTFOUND  1
#define LOOKUP_TEMPFAIL  2
#define LOOKUP_REMOTE    3

void lookup_proto_init(void);

/* Client: ask about one local recipient over an open connection.  Returns
 * LOOKUP_OK / LOOKUP_NOTFOUND / LOOKUP_TEMPFAIL, or -1 with errno on an
 * IPC failure (the caller closes the connection and answers 451); and
 * LOOKUP_REMOTE for an address in none of our domains. */
int lookup_rcpt(int sock, const char *address, int timeout_ms);
/* Client: the virtual_alias_maps entry of address: LOOKUP_OK with *value
 * (fresh), LOOKUP_NOTFOUND, LOOKUP_TEMPFAIL, or -1 with errno. */
int lookup_virtual(int sock, const char *address, char **value, int timeout_ms);

#endif
