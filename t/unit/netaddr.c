/*
 * t/unit/netaddr.c - unit tests for lib/netaddr.c (client addresses and
 * mynetworks lists).
 *
 * Covers: addresses from sockaddr_in, sockaddr_in6 and IPv4-mapped IPv6
 * (which becomes IPv4), a UNIX socket refused; text parsing; list syntax
 * (commas and spaces, bracketed and bare IPv6, /0, /32, /128, odd prefix
 * lengths, IPv4-mapped networks); matching at both edges of each network;
 * and every kind of bad entry with the entry named in the message.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "buf.h"
#include "msg.h"
#include "netaddr.h"
#include "../lib/tap.h"

static void test_sockaddr(void)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(2525) };
    struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(25) };
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    struct netaddr na;
    char text[NETADDR_TEXT_MAX];
    unsigned port = 0;

    inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr);
    is_int(netaddr_from_sockaddr((struct sockaddr *)&sin, sizeof(sin), &na, text, &port), 0,
           "IPv4 sockaddr");
    is_str(text, "192.0.2.7", "its text");
    is_int(port, 2525, "its port");
    is_int(na.family, AF_INET, "family AF_INET");
    inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
    is_int(netaddr_from_sockaddr((struct sockaddr *)&sin6, sizeof(sin6), &na, text, &port), 0,
           "IPv6 sockaddr");
    is_str(text, "2001:db8::1", "its text");
    is_int(port, 25, "its port");
    inet_pton(AF_INET6, "::ffff:10.1.2.3", &sin6.sin6_addr);
    netaddr_from_sockaddr((struct sockaddr *)&sin6, sizeof(sin6), &na, text, NULL);
    is_int(na.family, AF_INET, "an IPv4-mapped IPv6 client is IPv4");
    is_str(text, "10.1.2.3", "and is written as IPv4");
    is_int(netaddr_from_sockaddr((struct sockaddr *)&sun, sizeof(sun), &na, text, NULL), -1,
           "a UNIX socket is not an IP address");
    is_int(netaddr_from_sockaddr((struct sockaddr *)&sin, 4, &na, text, NULL), -1,
           "a short sockaddr is refused");
}

/* Does list match address text? */
static int match(const netaddr_list_t *l, const char *addr)
{
    struct netaddr na;

    if (netaddr_parse(addr, &na) < 0) {
        diag("cannot parse %s", addr);
        return -1;
    }
    return netaddr_list_match(l, &na);
}

static void test_lists(void)
{
    buf_t *err = buf_new(0);
    netaddr_list_t *l;

    l = netaddr_list_parse("127.0.0.0/8 [::1]/128, 192.0.2.0/23,10.9.8.7", err);
    if (!ok(l != NULL, "a mixed list parses"))
        diag("%s", buf_cstr(err));
    is_int(match(l, "127.0.0.1"), 1, "127.0.0.1 in 127.0.0.0/8");
    is_int(match(l, "127.255.255.255"), 1, "the last address of 127/8");
    is_int(match(l, "128.0.0.0"), 0, "the first one after it is not");
    is_int(match(l, "126.255.255.255"), 0, "nor the last one before it");
    is_int(match(l, "::1"), 1, "::1 in [::1]/128");
    is_int(match(l, "::2"), 0, "::2 is not");
    is_int(match(l, "192.0.3.255"), 1, "the top of 192.0.2.0/23");
    is_int(match(l, "192.0.4.0"), 0, "just above /23");
    is_int(match(l, "192.0.1.255"), 0, "just below /23");
    is_int(match(l, "10.9.8.7"), 1, "a bare address is a /32");
    is_int(match(l, "10.9.8.6"), 0, "its neighbour is not");
    is_int(match(l, "::ffff:127.0.0.1"), 1, "an IPv4-mapped client matches the IPv4 network");
    netaddr_list_free(&l);
    ok(l == NULL, "free clears the pointer");

    l = netaddr_list_parse("fe80::/10 2001:db8:0:ff80::/121", err);
    if (!ok(l != NULL, "bare IPv6 networks parse"))
        diag("%s", buf_cstr(err));
    is_int(match(l, "febf:ffff::1"), 1, "the top of fe80::/10");
    is_int(match(l, "fec0::"), 0, "just above it");
    is_int(match(l, "2001:db8:0:ff80::7f"), 1, "the top of a /121");
    is_int(match(l, "2001:db8:0:ff80::80"), 0, "just above the /121");
    is_int(match(l, "127.0.0.1"), 0, "IPv4 never matches an IPv6 network");
    netaddr_list_free(&l);

    l = netaddr_list_parse("0.0.0.0/0", err);
    is_int(match(l, "203.0.113.9"), 1, "0.0.0.0/0 matches all of IPv4");
    is_int(match(l, "2001:db8::1"), 0, "but no IPv6");
    netaddr_list_free(&l);
    l = netaddr_list_parse("[::]/0", err);
    is_int(match(l, "2001:db8::1"), 1, "[::]/0 matches all of IPv6");
    netaddr_list_free(&l);
    l = netaddr_list_parse("::ffff:10.0.0.0/104", err);
    if (!ok(l != NULL, "an IPv4-mapped network parses"))
        diag("%s", buf_cstr(err));
    is_int(match(l, "10.200.0.1"), 1, "and means 10.0.0.0/8");
    is_int(match(l, "11.0.0.0"), 0, "and nothing outside");
    netaddr_list_free(&l);
    l = netaddr_list_parse("", err);
    ok(l != NULL, "an empty list parses");
    is_int(match(l, "127.0.0.1"), 0, "and matches nothing");
    netaddr_list_free(&l);

    static const struct { const char *list, *msg; } bad[] = {
        { "127.0.0.1/8", "host bits set in '127.0.0.1/8' (the network is 127.0.0.0/8)" },
        { "[fe80::1]/10", "host bits set in '[fe80::1]/10' (the network is [fe80::]/10)" },
        { "10.0.0.0/33", "prefix length 33 is too long for '10.0.0.0/33'" },
        { "::/129", "bad prefix length in '::/129'" },
        { "10.0.0.0/", "bad prefix length in '10.0.0.0/'" },
        { "10.0.0.0/-1", "bad prefix length in '10.0.0.0/-1'" },
        { "10.0.0.0/8x", "bad prefix length in '10.0.0.0/8x'" },
        { "127.0.0.0/8 banana", "'banana' is not an IP address or network" },
        { "10.0.0.256", "'10.0.0.256' is not an IP address or network" },
        { "[10.0.0.0]/8", "brackets around an address that is not IPv6 in '[10.0.0.0]/8'" },
        { "[::1/128", "unbalanced brackets in '[::1/128'" },
        { "::ffff:10.0.0.0/64", "prefix length too short for an IPv4-mapped network" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        buf_reset(err);
        l = netaddr_list_parse(bad[i].list, err);
        ok(l == NULL, "'%s' is refused", bad[i].list);
        like(buf_cstr(err), bad[i].msg, "with: %s", bad[i].msg);
        netaddr_list_free(&l);
    }
    buf_free(&err);
}

int main(void)
{
    alarm(60);
    msg_init("netaddr-test", MSG_STDERR);
    test_sockaddr();
    test_lists();
    return done_testing();
}
