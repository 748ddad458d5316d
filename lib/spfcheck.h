/*
 * spfcheck - SPF (RFC 7208) checks of the HELO and MAIL FROM identities,
 * evaluated by libspf2 with its DNS answered through lib/dns (libunbound).
 *
 * For checkd, the seccomp-confined checking service.  libspf2 parses the
 * record and evaluates every mechanism, modifier and macro; this module
 * gives it a DNS layer of its own (an SPF_dns_server_t whose lookup asks
 * dns_lookup() for TXT, A, AAAA, MX and PTR), enforces the limits below
 * in that layer, and turns libspf2's response into an outcome with an RFC
 * 8601 result word, a short comment and a Received-SPF field value.
 *
 * Life cycle.
 *   spfcheck_new(dns, receiver)  dns: a resolver the caller made with
 *       dns_new() (and keeps; spfcheck never frees it); receiver: our host
 *       name (myhostname), which is %{r} and the authserv part of the
 *       comment.  Returns NULL with a static reason on bad arguments.
 *   spfcheck_helo() / spfcheck_mailfrom()  one evaluation each, blocking
 *       (dns_lookup(), one query at a time).  Do not call them from a dns
 *       callback.  One spfcheck_t serves one evaluation at a time.
 *   spfcheck_outcome_clear(&out)  frees the strings of an outcome.
 *   spfcheck_free(&s)
 *
 * Identities.  spfcheck_helo(): the domain is the HELO name and %{s} is
 * postmaster@HELO (RFC 7208 §2.3).  spfcheck_mailfrom(): the domain is
 * the sender's domain; a null reverse-path ("") means postmaster@HELO and
 * a sender without '@' is taken as a domain with local part postmaster
 * (§2.4, §4.3).  A domain that is not a valid multi-label domain name (an
 * address literal "[192.0.2.1]", "localhost", a label over 63 octets)
 * gives "none" without any DNS query (§4.3).  client_ip is the text form
 * of an IPv4 or IPv6 address; an IPv4-mapped IPv6 address is IPv4 (§5).
 *
 * Limits (RFC 7208 §4.6.4), per evaluation, counted in the DNS layer so
 * that they hold across include: (libspf2 counts its 10 terms afresh in
 * every included record):
 *   SPFCHECK_MAX_TERMS    10 DNS-querying terms (include, a, mx, ptr,
 *                         exists, redirect); the 11th gives permerror.
 *                         libspf2's own max_dns_mech/max_dns_mx/max_dns_ptr
 *                         are set to 10 as well.
 *   SPFCHECK_MAX_VOIDS    2 void lookups (NXDOMAIN or no records) by those
 *                         terms and by the address lookups of mx and ptr;
 *                         the 3rd gives permerror.  libspf2 1.2.10 has no
 *                         such limit.  SPF record fetches and exp= are not
 *                         counted (as in pyspf).
 *   PTR answers           only the first 10 names are used; the rest are
 *                         ignored (§5.5; libspf2 alone would permerror).
 *   MX answers            more than 10 MX names: the first 10 are tried,
 *                         then permerror (libspf2's behaviour).
 *   SPFCHECK_MAX_QUERIES  150 DNS queries in all, a safety net above what
 *                         the limits above allow (permerror when reached).
 *   time limit            SPFCHECK_TIME_LIMIT_MS (20 s, §4.6.4's "at least
 *                         20 seconds") by default, spfcheck_set_time_limit()
 *                         to change it: no query starts after it, and the
 *                         result is temperror.  Each query has lib/dns's
 *                         own deadline (dns_query_timeout), so one
 *                         evaluation takes at most the limit plus one query
 *                         timeout.
 * DNS statuses: DNS_TEMPFAIL and DNS_BOGUS are libspf2's TRY_AGAIN
 * (temperror); DNS_NXDOMAIN and DNS_INVALID (a name that cannot be sent)
 * HOST_NOT_FOUND; DNS_NODATA NO_DATA.  The obsolete SPF RR type (99) that
 * libspf2 asks first is answered NO_DATA without a query (§3.1).
 *
 * Loopback clients.  libspf2's SPF_request_query_mailfrom() returns pass
 * ("localhost is always allowed", SPF_REASON_LOCALHOST) for any client in
 * 127.0.0.0/8 or ::1 before looking at DNS (SPF_request_is_loopback(); no
 * setting turns it off).  This module does not call it: it runs the same
 * public steps itself (SPF_server_get_record(), SPF_record_interpret()),
 * so a loopback client is evaluated like any other address and gets the
 * RFC result.  Whether trusted clients are checked at all is the caller's
 * policy.
 *
 * Other libspf2 1.2.10 behaviour worth knowing:
 *   - a zero prefix (ip4:0.0.0.0/0, ip6:::/0, a/0, mx//0) is a syntax
 *     error to libspf2 (permerror), where RFC 7208's grammar allows it.
 *   - an explanation (exp=) with spaces is garbled by libspf2's macro
 *     compiler, which takes a space for the end; the DNS layer hands the
 *     text over with every space as the macro %_ (a space, §7.1).
 *   - SPF_record_compile_macro() (the exp= text) overflows its stack
 *     buffer on texts of some 470 bytes and more (found by the fuzz
 *     target: "stack smashing detected"); the DNS layer hands over no
 *     explanation text longer than 150 bytes (it is ignored, as an
 *     unusable exp= is).
 *   - an exp= TXT answer with more than one record is ignored (§6.2), as
 *     the DNS layer answers NO_DATA for it; the text kept is printable
 *     ASCII (others become '?'), at most 512 bytes.
 *   - more than 10 MX names: pyspf gives permerror at once, libspf2 (and
 *     so this module) only when none of the first 10 matched.
 *   - its known CVEs (macro expansion, see notes/wave2.md §7.1): run this
 *     module only inside the seccomp-confined checkd.
 * The layer tells an mx/ptr term's address lookups from an a: term by
 * their names following the MX/PTR answer in order; an a: term naming
 * exactly the next unlooked MX host right after an mx term that matched
 * inside an include with a non-pass qualifier is counted as part of the
 * mx term (one term too few; nothing else is affected).
 *
 * Outcome.  result; domain (the domain checked); comment, e.g. "domain of
 * a@x.test designates 192.0.2.1 as permitted sender", and for fail with
 * an explanation (exp=) "...; explanation: TEXT"; explanation, the exp=
 * text alone for fail (NULL otherwise), for an SMTP reply; received_spf,
 * a complete Received-SPF field value (§9.1) without the field name and
 * CRLF: "RESULT (RECEIVER: COMMENT) client-ip=...; envelope-from=...;
 * helo=...; receiver=...; identity=mailfrom|helo;" plus "problem=..."
 * for permerror and temperror.  Values are dot-atoms or quoted strings;
 * control characters in anything that came from the client or from DNS
 * become '?', so the field never contains CR or LF.
 *
 * Failure modes.  spfcheck_helo()/spfcheck_mailfrom() return 0 with *out
 * filled for every evaluation, DNS failures included (temperror), and -1
 * only for misuse: client_ip not an IP address, a NULL argument; then
 * out->result is PERMERROR and out->comment says what was wrong.  libspf2
 * asserting an internal error (SPF_error) panics.  Out of memory is fatal.
 */
#ifndef POSTHORN_SPFCHECK_H
#define POSTHORN_SPFCHECK_H

#include "dns.h"

#define SPFCHECK_MAX_TERMS       10
#define SPFCHECK_MAX_VOIDS       2
#define SPFCHECK_MAX_NAMES       10     /* MX or PTR names looked up per term */
#define SPFCHECK_MAX_QUERIES     150
#define SPFCHECK_TIME_LIMIT_MS   20000

typedef struct spfcheck spfcheck_t;

enum spfcheck_result {
    SPFCHECK_NONE,
    SPFCHECK_NEUTRAL,
    SPFCHECK_PASS,
    SPFCHECK_FAIL,
    SPFCHECK_SOFTFAIL,
    SPFCHECK_TEMPERROR,
    SPFCHECK_PERMERROR,
};

/* RFC 8601 words: "none", "neutral", "pass", "fail", "softfail",
 * "temperror", "permerror". */
const char *spfcheck_result_name(enum spfcheck_result r);

/* dns: a lib/dns resolver made by the caller (dns_new); receiver: our host
 * name (myhostname), used in %{r} and Received-SPF.  NULL + reason on
 * failure. */
spfcheck_t *spfcheck_new(dns_t *dns, const char *receiver, const char **error_r);
void spfcheck_free(spfcheck_t **sp);
/* The bound on one evaluation's elapsed time (> 0; default
 * SPFCHECK_TIME_LIMIT_MS). */
void spfcheck_set_time_limit(spfcheck_t *s, long ms);

/* Test seam (the fuzz target): answer the layer's lookups with fn instead
 * of dns_lookup(s's dns, ...); fn returns a result as dns_lookup() does,
 * which the module frees with dns_result_free().  NULL restores. */
typedef dns_result_t *(*spfcheck_lookup_fn)(void *arg, const char *name, enum dns_type type);
void spfcheck_set_lookup(spfcheck_t *s, spfcheck_lookup_fn fn, void *arg);

struct spfcheck_outcome {
    enum spfcheck_result result;
    char *domain;        /* the domain checked (MAIL FROM's domain, or the HELO name) */
    char *comment;       /* a short human reason */
    char *received_spf;  /* a Received-SPF field VALUE (RFC 7208 §9.1), no name, no CRLF */
    char *explanation;   /* fail with an exp= explanation: its text; else NULL */
};

/* The HELO identity (RFC 7208 §2.3).  client_ip: text IPv4/IPv6. */
int spfcheck_helo(spfcheck_t *s, const char *client_ip, const char *helo,
                  struct spfcheck_outcome *out);
/* The MAIL FROM identity; sender "" (null reverse-path) means postmaster@helo
 * (RFC 7208 §2.4).  helo may be "" when the client gave none. */
int spfcheck_mailfrom(spfcheck_t *s, const char *client_ip, const char *helo,
                      const char *sender, struct spfcheck_outcome *out);
/* out is overwritten, not freed: clear an earlier outcome first. */
void spfcheck_outcome_clear(struct spfcheck_outcome *out);

#endif
