/*
 * dns - DNS lookups through libunbound, in the event loop, with DNSSEC
 * status kept for DANE.
 *
 * For the outbound smtp client (MX, A, AAAA, TLSA), qmgr and lookupd
 * (PTR for smtpd's client names; TXT for SPF and friends).  This module
 * knows nothing of mail and does not read main.conf: the caller fills a
 * struct dns_settings from the parameters (the names below) and hands it
 * to dns_new().  The pure half (names, RDATA parsing and formatting, the
 * type and status names) is in dns_rdata.c; the resolver in dns.c.
 *
 * Life cycle.
 *   dns_new(settings)   before the chroot and the privilege drop (pre_init):
 *       creates the libunbound context in thread mode (ub_ctx_async(ctx, 1),
 *       never fork), reads the trust anchor file itself and passes every
 *       DS/DNSKEY record with ub_ctx_add_ta(), sets the upstream servers
 *       (dns_forwarders, else the nameserver lines of /etc/resolv.conf),
 *       the stub zones, and finalizes the configuration at once, so that
 *       every file is read now and every mistake is reported now.
 *   dns_attach(dns, loop)   in post_init: registers libunbound's result
 *       descriptor (ub_fd) with the event loop; ub_process() runs when it
 *       is readable.  Needed for dns_query(), not for dns_lookup().
 *       The first query starts libunbound's thread, with every signal
 *       blocked (signals stay with the event loop's signalfd).
 *   dns_free(&dns)   cancels whatever is outstanding (no callback is
 *       called), stops libunbound's thread and detaches from the loop.
 *
 * Queries.  dns_query() starts an asynchronous lookup and always returns a
 * handle; the callback is called exactly once, from the event loop (never
 * from inside dns_query()), unless the query is cancelled first, and it
 * receives the result, which it owns (dns_result_free()).  Each query has
 * a deadline (dns_query_timeout): when it passes, the query is cancelled
 * in libunbound and the callback gets DNS_TEMPFAIL "timed out".
 * dns_cancel() is safe at any time before the callback, including from
 * inside another query's callback; from inside the query's own callback it
 * is a harmless no-op.  A handle is invalid once its callback has
 * returned.  dns_free() must not be called from a dns callback (panic).
 * dns_lookup() is the synchronous helper for command-line tools, tests
 * and checkd: it waits (poll on ub_fd, same deadline) for one answer; with
 * dns_cache_lookups() it answers from a process-local cache first
 * (lib/dnscache).  It may
 * run callbacks of outstanding asynchronous queries too; do not call it
 * from a callback.
 *
 * CNAMEs are followed as libunbound does; canonname is the final name.
 *
 * Results (dns_result_t).  status:
 *   DNS_OK        records in rr[0..nrr) (parsed; MX sorted by preference,
 *                 then host name; callers shuffle equal preferences)
 *   DNS_NODATA    the name exists but has no records of that type
 *   DNS_NXDOMAIN  the name does not exist
 *   DNS_TEMPFAIL  SERVFAIL, REFUSED, a timeout, a network or resolver
 *                 error, or RDATA that does not parse (why says which)
 *   DNS_BOGUS     DNSSEC validation failed (why = libunbound's why_bogus);
 *                 callers treat it as a temporary failure; no records
 *   DNS_INVALID   the query name is not a valid domain name (permanent;
 *                 nothing was sent)
 * secure = 1: the answer (or the proof of NODATA/NXDOMAIN) was validated;
 * secure = 0 and bogus = 0: the zone is unsigned or validation is off.
 * ttl is libunbound's TTL for the answer.  Names are in presentation form
 * without the trailing dot (the root is "."); bytes other than printable
 * ASCII, and '.' and '\' inside a label, are escaped as \DDD or \c.
 *
 * RDATA parsers (pure functions over libunbound's uncompressed RDATA, for
 * unit tests and fuzzing): dns_parse_rdata() fills one struct dns_rr or
 * returns -1 with a static reason: wrong length, truncated name,
 * compression pointer (never allowed in RDATA here), unknown label type,
 * name over 255 bytes, trailing bytes, zero-length data.
 *
 * Parameters the caller maps into struct dns_settings (main.conf(5)):
 *   dns_forwarders, dns_stub_zones, dnssec_trust_anchor_file,
 *   dns_query_timeout.
 *
 * Failure modes: bad settings, an unreadable or malformed trust anchor
 * file, or libunbound refusing the configuration: dns_new() returns NULL
 * with a reason (the caller decides; daemons make it fatal).  A missing
 * trust anchor file is not an error: validation is off, logged once per
 * process.  Lookup failures are results, never errors.  libunbound's
 * thread dying (its result pipe failing) is fatal.  Misuse (dns_query()
 * before dns_attach(), dns_free() inside a callback, an unknown type) panics.
 */
#ifndef POSTHORN_DNS_H
#define POSTHORN_DNS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "event.h"

/* Query types; the values are the RR type numbers. */
enum dns_type {
    DNS_T_A    = 1,
    DNS_T_PTR  = 12,
    DNS_T_MX   = 15,
    DNS_T_TXT  = 16,
    DNS_T_AAAA = 28,
    DNS_T_TLSA = 52,
};

enum dns_status {
    DNS_OK,
    DNS_NODATA,
    DNS_NXDOMAIN,
    DNS_TEMPFAIL,
    DNS_BOGUS,
    DNS_INVALID,
};

struct dns_addr {
    int           family;       /* AF_INET (A) or AF_INET6 (AAAA) */
    unsigned char bytes[16];    /* network order; 4 used for AF_INET */
};

struct dns_txt {
    size_t   nstrings;
    char   **strings;           /* each NUL-terminated (may hold NULs too) */
    size_t  *lens;              /* length of each string */
    char    *joined;            /* all strings concatenated, NUL-terminated */
    size_t   len;               /* length of joined */
};

struct dns_tlsa {
    uint8_t        usage, selector, mtype;
    unsigned char *data;        /* certificate association data, len >= 1 */
    size_t         len;
};

struct dns_rr {
    union {
        struct { unsigned pref; char *host; } mx;   /* null MX: 0 "." */
        struct dns_addr addr;                       /* A, AAAA */
        char *name;                                 /* PTR */
        struct dns_txt txt;                         /* TXT */
        struct dns_tlsa tlsa;                       /* TLSA */
    } u;
};

typedef struct dns_result {
    enum dns_status status;
    enum dns_type   type;
    char           *qname;      /* the name asked for */
    char           *canonname;  /* after CNAMEs (qname if there were none) */
    int             secure;
    int             bogus;
    char           *why;        /* TEMPFAIL, BOGUS, INVALID: the reason; else NULL */
    unsigned        ttl;
    size_t          nrr;
    struct dns_rr  *rr;
} dns_result_t;

struct dns_settings {
    const char *forwarders;         /* "addr[@port] ..." (comma/space list of IP
                                       addresses); NULL or "": /etc/resolv.conf */
    const char *stub_zones;         /* "zone=addr[@port] ..."; NULL or "": none */
    const char *trust_anchor_file;  /* DS/DNSKEY lines; NULL or "": no validation */
    long        timeout_ms;         /* per-query deadline, > 0 */
};

typedef struct dns dns_t;
typedef struct dns_query dns_query_t;
typedef void (*dns_cb)(dns_result_t *res, void *arg);

/* Set-up (as root, before chroot); NULL with a reason in *error_r (valid
 * until the next dns_new()) on bad settings or files. */
dns_t *dns_new(const struct dns_settings *s, const char **error_r);
void   dns_attach(dns_t *dns, event_loop_t *loop);
void   dns_free(dns_t **dnsp);
/* Is DNSSEC validation on (a trust anchor was loaded)? */
int    dns_validating(const dns_t *dns);

dns_query_t  *dns_query(dns_t *dns, const char *name, enum dns_type type,
                        dns_cb cb, void *arg);
void          dns_cancel(dns_t *dns, dns_query_t **qp);
dns_result_t *dns_lookup(dns_t *dns, const char *name, enum dns_type type);
void          dns_result_free(dns_result_t **resp);
dns_result_t *dns_result_copy(const dns_result_t *res);   /* a deep copy */
/* dns_lookup() answers from a process-local cache of up to max_entries
 * answers, each kept for its TTL but at most max_ttl seconds (lib/dnscache:
 * for a program that asks the same names over and over, such as checkd). */
void          dns_cache_lookups(dns_t *dns, size_t max_entries, unsigned max_ttl);

/* Test seam: answer from memory with libunbound local data (never secure).
 * zone becomes a static local zone (a name under it without data is
 * NXDOMAIN, one with data of other types NODATA); rrs is a NULL-terminated
 * list of zone-file lines ("name ttl IN type rdata").  After dns_new();
 * 0, or -1 with a reason. */
int dns_local_zone(dns_t *dns, const char *zone, const char *const *rrs,
                   const char **error_r);

/* Pure helpers. */
int  dns_parse_rdata(enum dns_type type, const unsigned char *rd, size_t len,
                     struct dns_rr *out, const char **why);
void dns_rr_clear(enum dns_type type, struct dns_rr *rr);
/* An uncompressed wire name at rd[*off, len): 0 with a fresh string in
 * *name and *off past the name, or -1 with a reason. */
int  dns_parse_name(const unsigned char *rd, size_t len, size_t *off, char **name,
                    const char **why);
/* The record in zone-file form ("10 mx.example", "\"a\" \"b\"",
 * "3 1 1 0a1b..."), appended to out. */
void dns_rr_format(enum dns_type type, const struct dns_rr *rr, buf_t *out);
/* Is name a domain name we would send (1..253 characters, labels of 1..63
 * of printable ASCII without '\', optional final dot; "." is the root)? */
int  dns_name_valid(const char *name);
/* "4.3.2.1.in-addr.arpa" / nibble ip6.arpa name for an address in text
 * form; NULL if it is not an IPv4 or IPv6 address.  Caller frees. */
char *dns_reverse_name(const char *addr);
/* Single RR of pref 0 and host "." (RFC 7505)? */
int  dns_mx_is_null(const dns_result_t *res);

const char *dns_status_str(enum dns_status status);   /* "OK", "NODATA", ... */
const char *dns_type_str(enum dns_type type);         /* "MX", ... */
int         dns_type_from_str(const char *s);         /* -1 if unknown */

#endif
