/*
 * netaddr - client IP addresses and CIDR network lists (see netaddr.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "netaddr.h"
#include "xalloc.h"

struct netaddr_net {
    struct netaddr addr;
    unsigned       prefix;     /* bits */
};

struct netaddr_list {
    struct netaddr_net *nets;
    size_t              n;
};

static const unsigned char netaddr_v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* Store an IPv6 address, unwrapping an IPv4-mapped one. */
static void netaddr_set6(struct netaddr *na, const unsigned char *b)
{
    memset(na, 0, sizeof(*na));
    if (memcmp(b, netaddr_v4mapped, sizeof(netaddr_v4mapped)) == 0) {
        na->family = AF_INET;
        memcpy(na->bytes, b + 12, 4);
    } else {
        na->family = AF_INET6;
        memcpy(na->bytes, b, 16);
    }
}

int netaddr_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct netaddr *na,
                          char *text, unsigned *port)
{
    unsigned p;

    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

        memset(na, 0, sizeof(*na));
        na->family = AF_INET;
        memcpy(na->bytes, &sin->sin_addr, 4);
        p = ntohs(sin->sin_port);
    } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

        netaddr_set6(na, sin6->sin6_addr.s6_addr);
        p = ntohs(sin6->sin6_port);
    } else {
        return -1;
    }
    if (text && inet_ntop(na->family, na->bytes, text, NETADDR_TEXT_MAX) == NULL)
        return -1;
    if (port)
        *port = p;
    return 0;
}

int netaddr_parse(const char *text, struct netaddr *na)
{
    unsigned char b[16];

    memset(na, 0, sizeof(*na));
    if (inet_pton(AF_INET, text, b) == 1) {
        na->family = AF_INET;
        memcpy(na->bytes, b, 4);
        return 0;
    }
    if (inet_pton(AF_INET6, text, b) == 1) {
        netaddr_set6(na, b);
        return 0;
    }
    return -1;
}

/* The first `bits` bits of a and b agree. */
static bool netaddr_prefix_eq(const unsigned char *a, const unsigned char *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;

    if (memcmp(a, b, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    return ((a[whole] ^ b[whole]) & (0xff << (8 - rest)) & 0xff) == 0;
}

/* One entry: "addr", "addr/len", "[v6]", "[v6]/len". */
static int netaddr_net_parse(const char *entry, struct netaddr_net *net, buf_t *err)
{
    char *copy = xstrdup(entry), *host = copy, *slash, *end;
    unsigned maxbits;
    long len = -1;
    int rc = -1;

    slash = strrchr(copy, '/');
    if (slash) {
        *slash = '\0';
        len = strtol(slash + 1, &end, 10);
        if (slash[1] < '0' || slash[1] > '9' || *end != '\0' || len > 128) {
            buf_printf(err, "bad prefix length in '%s'", entry);
            goto out;
        }
    }
    if (*host == '[') {
        size_t n = strlen(host);

        if (n < 3 || host[n - 1] != ']') {
            buf_printf(err, "unbalanced brackets in '%s'", entry);
            goto out;
        }
        host[n - 1] = '\0';
        host++;
        if (strchr(host, ':') == NULL) {
            buf_printf(err, "brackets around an address that is not IPv6 in '%s'", entry);
            goto out;
        }
    }
    if (netaddr_parse(host, &net->addr) < 0) {
        buf_printf(err, "'%s' is not an IP address or network", entry);
        goto out;
    }
    /* An IPv4-mapped network given in IPv6 form keeps its meaning. */
    maxbits = net->addr.family == AF_INET ? 32 : 128;
    if (net->addr.family == AF_INET && strchr(host, ':')) {
        if (len >= 0 && len < 96) {
            buf_printf(err, "prefix length too short for an IPv4-mapped network in '%s'", entry);
            goto out;
        }
        if (len >= 0)
            len -= 96;
    }
    if (len < 0)
        len = maxbits;
    if ((unsigned long)len > maxbits) {
        buf_printf(err, "prefix length %ld is too long for '%s'", len, entry);
        goto out;
    }
    net->prefix = (unsigned)len;
    {
        struct netaddr zero = net->addr;
        unsigned whole = net->prefix / 8, rest = net->prefix % 8;

        if (rest)
            zero.bytes[whole++] &= (unsigned char)(0xff << (8 - rest));
        memset(zero.bytes + whole, 0, sizeof(zero.bytes) - whole);
        if (memcmp(zero.bytes, net->addr.bytes, sizeof(zero.bytes)) != 0) {
            char t[NETADDR_TEXT_MAX];

            inet_ntop(zero.family, zero.bytes, t, sizeof(t));
            buf_printf(err, "host bits set in '%s' (the network is %s%s%s/%u)", entry,
                       zero.family == AF_INET6 ? "[" : "", t, zero.family == AF_INET6 ? "]" : "",
                       net->prefix);
            goto out;
        }
    }
    rc = 0;
out:
    free(copy);
    return rc;
}

netaddr_list_t *netaddr_list_parse(const char *value, buf_t *err)
{
    char **items = conf_split(value);
    netaddr_list_t *list = xcalloc(1, sizeof(*list));
    size_t n = 0;

    while (items[n])
        n++;
    list->nets = xcalloc(n ? n : 1, sizeof(*list->nets));
    for (size_t i = 0; i < n; i++) {
        if (netaddr_net_parse(items[i], &list->nets[list->n], err) < 0) {
            conf_split_free(&items);
            netaddr_list_free(&list);
            return NULL;
        }
        list->n++;
    }
    conf_split_free(&items);
    return list;
}

bool netaddr_list_match(const netaddr_list_t *list, const struct netaddr *na)
{
    for (size_t i = 0; list && i < list->n; i++) {
        const struct netaddr_net *net = &list->nets[i];

        if (net->addr.family == na->family
            && netaddr_prefix_eq(net->addr.bytes, na->bytes, net->prefix))
            return true;
    }
    return false;
}

void netaddr_list_free(netaddr_list_t **listp)
{
    if (*listp == NULL)
        return;
    free((*listp)->nets);
    free(*listp);
    *listp = NULL;
}
