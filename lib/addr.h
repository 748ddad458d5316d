/*
 * addr - mail address helpers shared by smtpd, cleanup, qmgr, local and
 * lookupd: splitting user@domain, and deciding whether a domain is one of
 * ours (mydestination).
 *
 * Addresses here are envelope addresses as smtpproto stored them (the
 * mailbox without angle brackets or source route).  The local part is kept
 * as given (case matters to RFC 5321; local-part lookups lower-case it
 * themselves); domains compare case-insensitively, and a trailing dot is
 * ignored.
 *
 * Failure modes: none; these are pure functions (out-of-memory is fatal).
 */
#ifndef POSTHORN_ADDR_H
#define POSTHORN_ADDR_H

#include <stddef.h>

/* Split at the last '@': *local gets a fresh copy of the local part and
 * *domain of the domain ("" if there is no '@').  Either may be NULL. */
void addr_split(const char *addr, char **local, char **domain);

/* 1 if two domains are the same, ignoring case and one trailing dot on
 * either (an empty domain equals none). */
int addr_domain_eq(const char *a, const char *b);
/* 1 if domain (without '@'; "" counts as local: a bare "postmaster") is
 * listed in mydestination (as read now from main.conf), else 0. */
int addr_domain_is_local(const char *domain);
/* Is domain a virtual alias domain?  virtual_alias_domains lists domains
 * and tables (type:path) in which the domain is a key: Postfix's
 * convention of an "example.com  anything" line in the virtual table.
 * 1, 0, or -1 with *why (fresh; untouched otherwise) when a table cannot
 * be read. */
int addr_domain_is_virtual(const char *domain, char **why);

/* 1 if the address is local: its domain is local, or it has none. */
int addr_is_local(const char *addr);

/* 1 if the local part is "postmaster", in any case (RFC 5321 4.5.1). */
int addr_is_postmaster(const char *local);

/* Subaddressing: the local part without its extension ("user" for
 * "user+tag" with recipient_delimiter = +; any of the delimiter's
 * characters counts, as in Postfix), or NULL when there is none (no
 * delimiter configured, none in the local part, or one at its start). */
char *addr_unextended(const char *local);
/* The local recipient an address stands for, as a fresh string: its local
 * part without extension, lower-cased ("Joe+list@Example.ORG" -> "joe").
 * The domain is left out, because every mydestination domain names the
 * same users: this is the key under which local deliveries to one
 * recipient are counted (local_destination_concurrency_limit). */
char *addr_local_recipient_key(const char *addr);
/* May the user login send as sender?  1 for the null sender, and for
 * login or login+extension (recipient_delimiter) at myorigin or a
 * mydestination domain, local parts compared without regard to case;
 * *via_extension says the second case (the caller may want to check that
 * the whole local part is not somebody else's account). */
int addr_sender_owned(const char *sender, const char *login, int *via_extension);
/* Lower-case copy of s (ASCII letters only; UTF-8 bytes are kept). */
char *addr_lowercase(const char *s);

#endif
