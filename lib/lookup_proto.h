/*
 * lookup_proto - the protocol spoken to lookupd, the service that answers
 * questions the chrooted network processes cannot: is this a valid local
 * recipient (passwd, alias maps)?  what is this client's name (reverse DNS
 * with forward confirmation)?  Later also SPF, DKIM and DNSBL.
 *
 * Socket: private/lookupd.  Protocol "lookup" version 1; the client sends
 * its hello first.  Allowed peers: network_user, mail_owner, root.  Any
 * number of requests on one connection; one reply each, carrying the
 * request's id.  Recipient questions are answered at once, in order;
 * client names when DNS has answered, so such a reply may come after the
 * replies to later requests (a client that pipelines matches replies by
 * request id; smtpd asks one question at a time).
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
 *   LOOKUP_SENDER_LOGIN  str address: the logins that own it by
 *                   smtpd_sender_login_maps (submission asks, for the
 *                   envelope sender and the From: addresses)
 *   LOOKUP_REPLY    int result (LOOKUP_OK, LOOKUP_NOTFOUND, LOOKUP_TEMPFAIL),
 *                   str text: the entry's value (logins separated by commas
 *                   or blanks) when OK
 *   LOOKUP_TRANSPORT  str address: its transport_maps entry (qmgr asks,
 *                   for each recipient it is about to deliver)
 *   LOOKUP_TRANSPORT_REPLY  int result, str transport, str nexthop, str
 *                   text: LOOKUP_OK with the entry's value split at its
 *                   first ':' (transport(5): "smtp:[host]:port" gives
 *                   "smtp" and "[host]:port"; either may be empty; a value
 *                   without ':' is all transport) and, as text, which key
 *                   of which table matched; LOOKUP_NOTFOUND (no entry:
 *                   the built-in routing applies) or LOOKUP_TEMPFAIL (a
 *                   table could not be read, or its entry is malformed:
 *                   text says which), both with transport and nexthop "".
 *                   The transport is at most LOOKUP_TRANSPORT_NAME_MAX
 *                   letters, digits, '.', '_' or '-'; the next hop at most
 *                   LOOKUP_NEXTHOP_LIMIT bytes and the text at most
 *                   LOOKUP_TEXT_LIMIT, neither with control characters.
 *   LOOKUP_CLIENT_NAME  str address (an IPv4 or IPv6 address in text form)
 *   LOOKUP_NAME_REPLY   int result, str name, str text:
 *                   LOOKUP_OK: name is the client's name, confirmed (a PTR
 *                     name whose A or AAAA records include the address) and
 *                     a valid host name (lookup_hostname_valid);
 *                   LOOKUP_NOTFOUND: no name (no PTR record, or none that
 *                     confirms or is a valid host name), name "";
 *                   LOOKUP_TEMPFAIL: DNS failed or was too slow (lookupd
 *                     answers within LOOKUP_NAME_DEADLINE_MS), name "";
 *                   text: a warning for the client's log ("hostname X does
 *                   not resolve to address A", as Postfix says it), or ""
 *                   when there is nothing to warn about (a name that
 *                   confirmed, no PTR record, a failed reverse lookup).
 *                   At most LOOKUP_TEXT_LIMIT bytes, no control characters.
 *                   int reuse_ms: how long the asker may answer the same
 *                   question itself (lookupd keeps a settled answer for its
 *                   DNS TTL, at most LOOKUP_NAME_REUSE_MAX_MS, and says how
 *                   much of that is left); 0 for TEMPFAIL and for answers
 *                   that rest on no DNS data.
 *
 * Each side uses both halves of this module: lookupd decodes requests with
 * lookup_request_decode() and encodes replies with the *_reply_encode()
 * calls; the clients' calls (lookup_rcpt, lookup_virtual,
 * lookup_client_name) encode requests and decode replies with the same
 * code; qmgr, which must not wait, sends LOOKUP_TRANSPORT with
 * lookup_request_encode() and decodes the answers as they come with
 * lookup_transport_reply_decode().  A decoder checks every field (types,
 * an address that parses, a name that is a valid host name, texts without
 * control characters) and returns -1 for anything else: a peer error,
 * never an abort.
 *
 * Also here, because the client-name rules are shared by lookupd (which
 * applies them) and the decoder (which enforces them):
 * lookup_hostname_valid() and lookup_addr_match().
 *
 * Failure modes: client calls return -1 with errno on an IPC failure
 * (ETIMEDOUT after the timeout, ECONNRESET at EOF, EPROTO for a reply that
 * does not decode or answers another request); the caller closes the
 * connection.  Encoders never fail (out of memory is fatal); a name reply
 * that breaks its own rules is our bug (panic).
 */
#ifndef POSTHORN_LOOKUP_PROTO_H
#define POSTHORN_LOOKUP_PROTO_H

#include <stdint.h>

#include "dns.h"
#include "ipc.h"
#include "netaddr.h"
#include "svcconn.h"

#define LOOKUP_PROTO_NAME     "lookup"
#define LOOKUP_PROTO_VERSION  1
#define LOOKUP_SOCKET         "private/lookupd"
#define LOOKUP_TIMEOUT_MS     (20 * 1000)

/* Client names: how long a client waits for the answer in all (connecting
 * included), and how long lookupd works on one before it answers
 * TEMPFAIL (shorter, so that the answer arrives in time). */
#define LOOKUP_NAME_TIMEOUT_MS   (5 * 1000)
#define LOOKUP_NAME_DEADLINE_MS  (4 * 1000)
/* PTR names lookupd tries to confirm, in the order of the answer. */
#define LOOKUP_NAME_MAX_PTR      4
/* Client-name lookups one client may have in flight; more are answered
 * TEMPFAIL at once. */
#define LOOKUP_NAME_MAX_INFLIGHT 8
/* A client name answer is reused for at most this long, by lookupd and by
 * the process that asked (lookup_client_name_kept). */
#define LOOKUP_NAME_REUSE_MAX_MS (60 * 1000)
#define LOOKUP_NAME_KEPT_MAX     1024
/* Longest text of a LOOKUP_NAME_REPLY or LOOKUP_TRANSPORT_REPLY (encoders
 * cut to it). */
#define LOOKUP_TEXT_LIMIT        512
/* A transport_maps entry: the longest transport name and next hop. */
#define LOOKUP_TRANSPORT_NAME_MAX  64
#define LOOKUP_NEXTHOP_LIMIT       1000

enum {
    LOOKUP_RCPT = 0x500,
    LOOKUP_REPLY,
    LOOKUP_VIRTUAL,
    LOOKUP_CLIENT_NAME,
    LOOKUP_NAME_REPLY,
    LOOKUP_TRANSPORT,
    LOOKUP_TRANSPORT_REPLY,
    LOOKUP_SENDER_LOGIN,
};

#define LOOKUP_OK        0
#define LOOKUP_NOTFOUND  1
#define LOOKUP_TEMPFAIL  2
#define LOOKUP_REMOTE    3

/* A request as lookupd sees it. */
struct lookup_request {
    uint32_t       type;        /* LOOKUP_RCPT, LOOKUP_VIRTUAL, LOOKUP_TRANSPORT,
                                   LOOKUP_SENDER_LOGIN, LOOKUP_CLIENT_NAME */
    uint32_t       reqid;
    char          *address;     /* the others: the address (not
                                   empty);
                                   CLIENT_NAME: the IP address, in canonical
                                   text form (an IPv4-mapped one as IPv4) */
    struct netaddr client;      /* CLIENT_NAME: the address parsed */
};

/* The answer to LOOKUP_CLIENT_NAME. */
struct lookup_name_reply {
    int   result;               /* LOOKUP_OK, LOOKUP_NOTFOUND, LOOKUP_TEMPFAIL */
    char *name;                 /* OK: the name; else "" */
    char *text;                 /* a warning for the log, or "" */
    long long reuse_ms;         /* how long the asker may reuse the answer (0: not) */
};

/* The answer to LOOKUP_TRANSPORT. */
struct lookup_transport_reply {
    int   result;               /* LOOKUP_OK, LOOKUP_NOTFOUND, LOOKUP_TEMPFAIL */
    char *transport;            /* OK: "smtp", "local", "error", ..., or ""; else "" */
    char *nexthop;              /* OK: what follows the ':', or ""; else "" */
    char *text;                 /* OK: the key and table that matched; TEMPFAIL: why */
};

void lookup_proto_init(void);

/* Requests.  The decoders read m's fields (the caller still frees m); 0,
 * or -1 with *why (static) and r cleared. */
ipc_msg_t *lookup_request_encode(uint32_t type, uint32_t reqid, const char *address);
int        lookup_request_decode(ipc_msg_t *m, struct lookup_request *r, const char **why);
void       lookup_request_clear(struct lookup_request *r);

/* LOOKUP_REPLY (RCPT, VIRTUAL): text as given (a virtual entry is data). */
ipc_msg_t *lookup_reply_encode(uint32_t reqid, int result, const char *text);
/* 0 with *result and *text (fresh), or -1 (malformed, or a result that
 * does not answer request_type). */
int        lookup_reply_decode(ipc_msg_t *m, uint32_t request_type, int *result, char **text);

/* LOOKUP_NAME_REPLY.  The encoder cuts text to LOOKUP_TEXT_LIMIT and
 * replaces control characters; a name that breaks the rules above is our
 * bug (panic). */
ipc_msg_t *lookup_name_reply_encode(uint32_t reqid, const struct lookup_name_reply *r);
/* 0, or -1 with *why (static) and r cleared. */
int        lookup_name_reply_decode(ipc_msg_t *m, struct lookup_name_reply *r, const char **why);
void       lookup_name_reply_clear(struct lookup_name_reply *r);

/* LOOKUP_TRANSPORT_REPLY.  The encoder cuts text to LOOKUP_TEXT_LIMIT and
 * replaces control characters; a transport or next hop that breaks the
 * rules above, or either of them with a result other than OK, is our bug
 * (panic): lookupd checks entries with lookup_transport_split(). */
ipc_msg_t *lookup_transport_reply_encode(uint32_t reqid, const struct lookup_transport_reply *r);
/* 0, or -1 with *why (static) and r cleared. */
int        lookup_transport_reply_decode(ipc_msg_t *m, struct lookup_transport_reply *r,
                                         const char **why);
void       lookup_transport_reply_clear(struct lookup_transport_reply *r);
/* Split a transport_maps value as transport(5) reads it: blanks around it
 * are dropped and tabs count as spaces; the transport is what comes before
 * the first ':', the next hop the rest (a value without ':' is all
 * transport).  0 with *transport and *nexthop (fresh), or -1 with *why
 * (static) when the parts break the rules of LOOKUP_TRANSPORT_REPLY. */
int        lookup_transport_split(const char *value, char **transport, char **nexthop,
                                  const char **why);

/* Client: ask about one local recipient over an open connection.  Returns
 * LOOKUP_OK / LOOKUP_NOTFOUND / LOOKUP_TEMPFAIL, or -1 with errno on an
 * IPC failure (the caller closes the connection and answers 451); and
 * LOOKUP_REMOTE for an address in none of our domains. */
int lookup_rcpt(int sock, const char *address, int timeout_ms);
/* Client: the virtual_alias_maps entry of address: LOOKUP_OK with *value
 * (fresh), LOOKUP_NOTFOUND, LOOKUP_TEMPFAIL, or -1 with errno. */
int lookup_virtual(int sock, const char *address, char **value, int timeout_ms);
/* Client: the smtpd_sender_login_maps entry of address, the same way. */
int lookup_sender_login(int sock, const char *address, char **value, int timeout_ms);
/* Client: the name of the client at address (text form), waiting at most
 * timeout_ms in all: the result with *r filled (free with
 * lookup_name_reply_clear), or -1 with errno and r cleared.  After -1 a
 * late reply may still come: close the connection. */
int lookup_client_name(int sock, const char *address, struct lookup_name_reply *r,
                       int timeout_ms);
/* Client: the name of the client at address over the kept connection c,
 * within LOOKUP_NAME_TIMEOUT_MS in all, connecting included, as smtpd and
 * submission ask it: the name (fresh), or NULL for "unknown" (no name, a
 * DNS failure, or lookupd unreachable or too slow: logged).  A warning
 * lookupd gives ("hostname X does not resolve to address A") is logged.
 * A kept connection that fails at once (lookupd was restarted since) is
 * replaced, once; one that timed out is closed (a late answer must not
 * be read as the next one's).  A settled answer is remembered in this
 * process for the reuse_ms lookupd gives (at most LOOKUP_NAME_REUSE_MAX_MS,
 * LOOKUP_NAME_KEPT_MAX addresses), so a client that connects again soon
 * costs no round trip; its warning is logged again each time. */
char *lookup_client_name_kept(struct svcconn *c, const char *address);

/* Is name usable as a client's host name in logs and Received: headers?
 * A domain name (dns_name_valid) without the trailing dot, of labels of
 * letters, digits, '-' and '_' that neither start nor end with '-', whose
 * last label is not all digits (so no address such as 192.0.2.1). */
int lookup_hostname_valid(const char *name);
/* Is a (an A or AAAA record) the client's address?  IPv4-mapped IPv6
 * addresses (::ffff:a.b.c.d) on either side count as the IPv4 address. */
int lookup_addr_match(const struct netaddr *client, const struct dns_addr *a);

#endif
