/*
 * clientname - lookupd's client-name lookups: reverse DNS with forward
 * confirmation (FCrDNS), asynchronous, in lookupd's event loop.
 *
 * clientname_start(dns, loop, addr, text, deadline_ms, cb, arg) looks up
 * the PTR records of addr's reverse name, takes the first
 * LOOKUP_NAME_MAX_PTR of them that are valid host names
 * (lookup_hostname_valid; the others are passed over with a warning
 * text), asks for the A and AAAA records of each at once, and answers the
 * first name, in the order of the PTR answer, whose addresses include addr
 * (lookup_addr_match: an IPv4-mapped AAAA counts for an IPv4 client):
 * Postfix's rule, "the name resolves back to the address".  It answers as
 * soon as that is known: a later name's lookups are not waited for once an
 * earlier one confirmed, but an earlier one's are.
 *
 * The result (a struct lookup_name_reply, see lib/lookup_proto.h):
 *   LOOKUP_OK        name confirmed, text ""
 *   LOOKUP_NOTFOUND  no PTR record (text ""), or no name that confirms:
 *                    text "hostname NAME does not resolve to address ADDR"
 *                    (with ": host not found" when it has no addresses),
 *                    or no valid name: "ADDR: malformed host name in PTR
 *                    record: NAME"
 *   LOOKUP_TEMPFAIL  the PTR lookup failed (SERVFAIL, bogus, timed out;
 *                    text ""), or a name's lookups failed and no name
 *                    confirmed (text "hostname NAME does not resolve to
 *                    address ADDR: temporary failure (REASON)"), or the
 *                    deadline passed first; also when dns is NULL (DNS
 *                    is not usable: text says so).
 * When deadline_ms passes, every query still out is cancelled and the
 * answer is the first name confirmed so far, else TEMPFAIL.
 *
 * cb(result, arg) is called exactly once, always from the event loop
 * (never from inside clientname_start), unless the lookup is cancelled
 * first; result is valid during the call only.  The handle is invalid
 * once cb is called; clientname_cancel(&cn) before that stops every query
 * and timer and frees everything (no callback).  Neither may be called
 * from inside cb for the same handle.
 *
 * Answers that DNS settled (OK, NOTFOUND) are cached by address for the
 * smallest TTL they rest on, at most a minute (clientname.c says why); a
 * cached answer also comes through cb from the event loop.
 *
 * Failure modes: none of its own; DNS failures are results.  Out of
 * memory is fatal.
 */
#ifndef POSTHORN_LOOKUPD_CLIENTNAME_H
#define POSTHORN_LOOKUPD_CLIENTNAME_H

#include "dns.h"
#include "event.h"
#include "lookup_proto.h"
#include "netaddr.h"

typedef struct clientname clientname_t;
typedef void (*clientname_cb)(const struct lookup_name_reply *result, void *arg);

/* addr_text: addr in text form (for the reverse name and the texts);
 * dns NULL: answers TEMPFAIL with dns_why as the reason. */
clientname_t *clientname_start(dns_t *dns, const char *dns_why, event_loop_t *loop,
                               const struct netaddr *addr, const char *addr_text,
                               long deadline_ms, clientname_cb cb, void *arg);
void          clientname_cancel(clientname_t **cnp);

#endif
