/*
 * netaddr - client IP addresses and CIDR network lists (mynetworks).
 *
 * A struct netaddr holds an IPv4 or IPv6 address; an IPv4-mapped IPv6
 * address (::ffff:a.b.c.d, what a dual-stack listener reports for an IPv4
 * client) is stored as the IPv4 address, so "127.0.0.0/8" matches it.
 *
 * List syntax (Postfix's mynetworks): entries separated by commas or
 * white space; each is an address or address/prefix-length, IPv6 either
 * bare or in brackets ("[::1]/128", "::1/128", "fe80::/10").  Host bits
 * set below the prefix ("127.0.0.1/8") are an error, as is anything that
 * does not parse; the message names the entry and is meant to follow a
 * "mynetworks: " prefix.
 *
 * Failure modes: parse errors are returned (-1 / NULL with a message in
 * the caller's buffer); nothing else fails (out-of-memory is fatal).
 */
#ifndef POSTHORN_NETADDR_H
#define POSTHORN_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "buf.h"

/* Longest text form (IPv6 with an embedded IPv4 tail) plus NUL. */
#define NETADDR_TEXT_MAX 46

struct netaddr {
    int           family;      /* AF_INET or AF_INET6 */
    unsigned char bytes[16];   /* network order; 4 used for AF_INET */
};

/* From a socket address (getpeername/accept): 0, with the text form in
 * text (NETADDR_TEXT_MAX bytes) and the port in *port (either may be
 * NULL); -1 for a family that is not IP (a UNIX socket). */
int  netaddr_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct netaddr *na,
                           char *text, unsigned *port);
/* Parse the text form of one address (no brackets, no prefix): 0 or -1. */
int  netaddr_parse(const char *text, struct netaddr *na);

typedef struct netaddr_list netaddr_list_t;

/* Parse a list; NULL with one line appended to err on a bad entry. */
netaddr_list_t *netaddr_list_parse(const char *value, buf_t *err);
bool netaddr_list_match(const netaddr_list_t *list, const struct netaddr *na);
void netaddr_list_free(netaddr_list_t **listp);

#endif
