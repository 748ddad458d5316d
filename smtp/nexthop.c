/*
 * nexthop.c - from a next hop to the list of servers to try, by RFC 5321
 * 5.1 and RFC 7505, as Postfix's smtp_addr.c does it.
 *
 * Next hop syntax (Postfix's): "domain" (MX lookup), "domain:port" (MX
 * lookup, another port), "[host]" and "[host]:port" (no MX lookup; host
 * may be an address, "[192.0.2.1]", "[::1]" or "[IPv6:::1]").  The port
 * is a number or one of smtp, submission, submissions; the default is
 * smtp_tcp_port.
 *
 * With MX lookup: the MX records of the domain sorted by preference, equal
 * preferences shuffled; no MX records (NODATA) means the domain itself at
 * preference 0 (implicit MX); a null MX ("0 .") bounces at once with
 * 5.1.0; NXDOMAIN bounces (5.4.4); a temporary failure or a bogus answer
 * defers (4.4.3), as a failure of the destination as a whole.  Each host's
 * A and AAAA records (inet_protocols) follow, in the order
 * smtp_address_preference asks (any: shuffled), until
 * smtp_mx_address_limit addresses are listed.  A host that is ourselves
 * (named myhostname, or with one of our addresses: inet_interfaces) drops
 * itself and every host of equal or worse preference; if that leaves
 * nothing, the mail "loops back to myself" (5.4.6).  A host without any
 * address is skipped; if no host has one the last lookup's error is the
 * result (4.4.3 if any lookup failed temporarily, else 5.4.4).
 *
 * Failure modes: DNS trouble is a status, never an error of ours.  Out of
 * memory is fatal.
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "msg.h"
#include "smtp.h"
#include "xalloc.h"

static struct netaddr *nexthop_own;
static size_t nexthop_nown;

/* ------------------------------------------------------------- ourselves */

static void nexthop_own_add(const struct netaddr *na)
{
    nexthop_own = xreallocarray(nexthop_own, nexthop_nown + 1, sizeof(*nexthop_own));
    nexthop_own[nexthop_nown++] = *na;
}

/* Our addresses: those of inet_interfaces (all: every interface's). */
void nexthop_own_init(void)
{
    const char *ifs = conf_str("inet_interfaces");
    struct netaddr na;

    if (strcasecmp(ifs, "all") == 0) {
        struct ifaddrs *list, *i;

        if (getifaddrs(&list) < 0) {
            msg_warn("cannot list the network interfaces: %m; only loopback counts as ours");
            ifs = "loopback-only";
        } else {
            for (i = list; i; i = i->ifa_next) {
                socklen_t len;

                if (i->ifa_addr == NULL)
                    continue;
                len = i->ifa_addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                                         : sizeof(struct sockaddr_in6);
                if (netaddr_from_sockaddr(i->ifa_addr, len, &na, NULL, NULL) == 0)
                    nexthop_own_add(&na);
            }
            freeifaddrs(list);
            return;
        }
    }
    if (strcasecmp(ifs, "loopback-only") == 0) {
        netaddr_parse("127.0.0.1", &na);
        nexthop_own_add(&na);
        netaddr_parse("::1", &na);
        nexthop_own_add(&na);
        return;
    }
    {
        char **list = conf_split(ifs);

        for (char **p = list; *p; p++) {
            char *a = *p;
            size_t n = strlen(a);

            if (a[0] == '[' && n > 2 && a[n - 1] == ']') {
                a[n - 1] = '\0';
                a++;
            }
            if (netaddr_parse(a, &na) == 0)
                nexthop_own_add(&na);
        }
        conf_split_free(&list);
    }
}

bool nexthop_is_own(const struct netaddr *na)
{
    for (size_t i = 0; i < nexthop_nown; i++)
        if (nexthop_own[i].family == na->family
            && memcmp(nexthop_own[i].bytes, na->bytes, na->family == AF_INET ? 4 : 16) == 0)
            return true;
    return false;
}

/* ---------------------------------------------------------------- syntax */

int nexthop_port(const char *s, unsigned *port)
{
    static const struct { const char *name; unsigned port; } names[] = {
        {"smtp", 25}, {"submission", 587}, {"submissions", 465}, {"smtps", 465},
    };
    unsigned long v = 0;

    if (*s >= '0' && *s <= '9') {
        for (const char *p = s; *p; p++) {
            if (*p < '0' || *p > '9' || v > 65535)
                return -1;
            v = v * 10 + (unsigned)(*p - '0');
        }
        if (v == 0 || v > 65535)
            return -1;
        *port = (unsigned)v;
        return 0;
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(s, names[i].name) == 0) {
            *port = names[i].port;
            return 0;
        }
    return -1;
}

int nexthop_parse(const char *spec, unsigned default_port, char **host, unsigned *port,
                  bool *mx, const char **why)
{
    const char *rest;
    char *h;

    *host = NULL;
    *port = default_port;
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');

        if (close == NULL || close == spec + 1) {
            *why = "unbalanced or empty brackets";
            return -1;
        }
        h = xstrndup(spec + 1, (size_t)(close - spec - 1));
        if (strncasecmp(h, "ipv6:", 5) == 0)
            memmove(h, h + 5, strlen(h + 5) + 1);
        rest = close + 1;
        *mx = false;
    } else {
        const char *colon = strrchr(spec, ':');

        h = colon ? xstrndup(spec, (size_t)(colon - spec)) : xstrdup(spec);
        rest = colon ? colon : "";
        *mx = true;
    }
    if (*rest == ':') {
        if (nexthop_port(rest + 1, port) < 0) {
            *why = "bad port";
            free(h);
            return -1;
        }
    } else if (*rest != '\0') {
        *why = "junk after the host";
        free(h);
        return -1;
    }
    if (*h == '\0') {
        *why = "no host";
        free(h);
        return -1;
    }
    /* A trailing dot is the same name. */
    if (h[strlen(h) - 1] == '.' && h[1] != '\0')
        h[strlen(h) - 1] = '\0';
    *host = h;
    return 0;
}

/* ------------------------------------------------------------- resolving */

static void nexthop_add(struct nexthop *nh, const char *host, unsigned pref,
                        const struct netaddr *na)
{
    struct nexthop_addr *a;

    nh->addrs = xreallocarray(nh->addrs, nh->naddrs + 1, sizeof(*nh->addrs));
    a = &nh->addrs[nh->naddrs++];
    memset(a, 0, sizeof(*a));
    a->host = xstrdup(host);
    a->pref = pref;
    if (na->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&a->sa;

        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)nh->port);
        memcpy(&sin->sin_addr, na->bytes, 4);
        a->salen = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->sa;

        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)nh->port);
        memcpy(&sin6->sin6_addr, na->bytes, 16);
        a->salen = sizeof(*sin6);
    }
    inet_ntop(na->family, na->bytes, a->addr, sizeof(a->addr));
}

/* The text of a failed lookup, Postfix style. */
static void nexthop_dns_fail(struct smtp_status *st, const char *name, enum dns_type type,
                             const dns_result_t *res)
{
    const char *reason;

    switch (res->status) {
    case DNS_NXDOMAIN:
    case DNS_NODATA:
    case DNS_INVALID:
        reason = res->status == DNS_NXDOMAIN ? "Host not found"
                 : res->status == DNS_NODATA ? "No address associated with hostname"
                 : "invalid name";
        smtp_status_set(st, 5, "5.4.4", NULL, "Host or domain name not found. Name service "
                        "error for name=%s type=%s: %s", name, dns_type_str(type), reason);
        break;
    case DNS_BOGUS:
        smtp_status_set(st, 4, "4.4.3", NULL, "Host or domain name not found. Name service "
                        "error for name=%s type=%s: DNSSEC validation failed (%s), try again",
                        name, dns_type_str(type), res->why ? res->why : "bogus");
        break;
    default:
        smtp_status_set(st, 4, "4.4.3", NULL, "Host or domain name not found. Name service "
                        "error for name=%s type=%s: Host not found, try again (%s)", name,
                        dns_type_str(type), res->why ? res->why : "temporary failure");
        break;
    }
}

static void nexthop_shuffle(struct netaddr *v, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = arc4random_uniform((uint32_t)i);
        struct netaddr t = v[i - 1];

        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* The addresses of host (A and AAAA as inet_protocols allows), in the
 * order smtp_address_preference asks.  Returns how many (in *out, caller
 * frees); 0 with the last failure in *fail (a temporary one wins). */
static size_t nexthop_host_addrs(const char *host, struct netaddr **out,
                                 struct smtp_status *fail)
{
    enum dns_type types[2];
    size_t ntypes = 0, n = 0;
    struct netaddr *v = NULL;
    struct smtp_status last = {0};

    *out = NULL;
    {
        struct netaddr lit;

        /* An address given as a name (an MX pointing at "192.0.2.1" is
         * wrong, but [host] with an address is not). */
        if (netaddr_parse(host, &lit) == 0) {
            if ((lit.family == AF_INET && !smtp_param.ipv4)
                || (lit.family == AF_INET6 && !smtp_param.ipv6)) {
                smtp_status_set(fail, 5, "5.4.4", NULL, "address %s is of a protocol not in "
                                "inet_protocols", host);
                return 0;
            }
            *out = xmemdup(&lit, sizeof(lit));
            return 1;
        }
    }
    if (smtp_param.address_preference == 6) {
        if (smtp_param.ipv6)
            types[ntypes++] = DNS_T_AAAA;
        if (smtp_param.ipv4)
            types[ntypes++] = DNS_T_A;
    } else {
        if (smtp_param.ipv4)
            types[ntypes++] = DNS_T_A;
        if (smtp_param.ipv6)
            types[ntypes++] = DNS_T_AAAA;
    }
    for (size_t t = 0; t < ntypes; t++) {
        dns_result_t *res = dns_lookup(smtp_dns, host, types[t]);

        if (res->status == DNS_OK) {
            v = xreallocarray(v, n + res->nrr, sizeof(*v));
            for (size_t i = 0; i < res->nrr; i++) {
                v[n].family = res->rr[i].u.addr.family;
                memcpy(v[n].bytes, res->rr[i].u.addr.bytes, 16);
                n++;
            }
        } else if (last.dsn_class != 4) {
            /* A temporary failure says more than "no such record". */
            nexthop_dns_fail(&last, host, types[t], res);
        }
        dns_result_free(&res);
    }
    if (n == 0)
        smtp_status_copy(fail, &last);
    smtp_status_clear(&last);
    if (n > 1 && smtp_param.address_preference == 0)
        nexthop_shuffle(v, n);
    *out = v;
    return n;
}

static void nexthop_drop_from(struct nexthop *nh, unsigned pref)
{
    size_t keep = 0;

    for (size_t i = 0; i < nh->naddrs; i++) {
        if (nh->addrs[i].pref < pref)
            nh->addrs[keep++] = nh->addrs[i];
        else
            free(nh->addrs[i].host);
    }
    nh->naddrs = keep;
}

int nexthop_resolve(const char *spec, struct nexthop *nh, struct smtp_status *fail, bool *site)
{
    struct mxh { char *host; unsigned pref; } *mx = NULL;
    size_t nmx = 0;
    const char *why;
    char *host;
    bool use_mx, better_failed = false, looped = false;
    struct smtp_status hostfail = {0};
    int rc = -1;

    memset(nh, 0, sizeof(*nh));
    *site = false;
    if (nexthop_parse(spec, smtp_param.port, &host, &nh->port, &use_mx, &why) < 0) {
        smtp_status_set(fail, 4, "4.3.5", NULL, "bad next-hop destination \"%s\": %s", spec, why);
        return -1;
    }
    nh->domain = host;
    nh->mx = use_mx;
    if (use_mx) {
        dns_result_t *res = dns_lookup(smtp_dns, host, DNS_T_MX);

        switch (res->status) {
        case DNS_OK:
            if (dns_mx_is_null(res)) {
                smtp_status_set(fail, 5, "5.1.0", NULL,
                                "Domain %s does not accept mail (nullMX)", host);
                dns_result_free(&res);
                return -1;
            }
            mx = xcalloc(res->nrr, sizeof(*mx));
            for (size_t i = 0; i < res->nrr; i++) {
                /* A "." among other MX records is no null MX: skip it. */
                if (strcmp(res->rr[i].u.mx.host, ".") == 0)
                    continue;
                mx[nmx].host = xstrdup(res->rr[i].u.mx.host);
                mx[nmx].pref = res->rr[i].u.mx.pref;
                nmx++;
            }
            /* Sorted by preference; shuffle each run of equal ones. */
            for (size_t i = 0; i < nmx;) {
                size_t j = i;

                while (j < nmx && mx[j].pref == mx[i].pref)
                    j++;
                for (size_t k = j - i; k > 1; k--) {
                    size_t r = i + arc4random_uniform((uint32_t)k);
                    struct mxh t = mx[i + k - 1];

                    mx[i + k - 1] = mx[r];
                    mx[r] = t;
                }
                i = j;
            }
            break;
        case DNS_NODATA:
            mx = xcalloc(1, sizeof(*mx));
            mx[0].host = xstrdup(host);
            nmx = 1;
            break;
        default:
            nexthop_dns_fail(fail, host, DNS_T_MX, res);
            *site = fail->dsn_class == 4;
            dns_result_free(&res);
            return -1;
        }
        dns_result_free(&res);
    } else {
        mx = xcalloc(1, sizeof(*mx));
        mx[0].host = xstrdup(host);
        nmx = 1;
    }

    for (size_t i = 0; i < nmx; i++) {
        struct smtp_status hf = {0};
        struct netaddr *v;
        size_t n = nexthop_host_addrs(mx[i].host, &v, &hf);
        bool self = false;

        if (n == 0) {
            /* The first temporary failure, else the last failure. */
            if (hostfail.dsn_class != 4)
                smtp_status_copy(&hostfail, &hf);
            smtp_status_clear(&hf);
            better_failed = true;
            continue;
        }
        if (use_mx) {
            self = strcasecmp(mx[i].host, smtp_param.myhostname) == 0;
            for (size_t k = 0; k < n && !self; k++)
                self = nexthop_is_own(&v[k]);
        }
        if (self) {
            /* RFC 5321 5.1: ourselves and every host as good or worse. */
            nexthop_drop_from(nh, mx[i].pref);
            looped = true;
            free(v);
            break;
        }
        for (size_t k = 0; k < n; k++) {
            if (smtp_param.mx_address_limit && nh->naddrs >= smtp_param.mx_address_limit)
                break;
            nexthop_add(nh, mx[i].host, mx[i].pref, &v[k]);
        }
        free(v);
        if (smtp_param.mx_address_limit && nh->naddrs >= smtp_param.mx_address_limit)
            break;
    }
    if (nh->naddrs > 0) {
        rc = 0;
    } else if (looped && !better_failed) {
        smtp_status_set(fail, 5, "5.4.6", NULL, "mail for %s loops back to myself", host);
    } else if (looped) {
        smtp_status_set(fail, 4, "4.4.4", NULL, "mail for %s loops back to myself, and the "
                        "better MX hosts have no usable address (%s)", host,
                        hostfail.text ? hostfail.text : "no address");
    } else {
        smtp_status_copy(fail, &hostfail);
        if (fail->dsn_class == 0)
            smtp_status_set(fail, 5, "5.4.4", NULL, "no usable address for %s", host);
        *site = fail->dsn_class == 4;
    }
    smtp_status_clear(&hostfail);
    for (size_t i = 0; i < nmx; i++)
        free(mx[i].host);
    free(mx);
    return rc;
}

void nexthop_free(struct nexthop *nh)
{
    for (size_t i = 0; i < nh->naddrs; i++)
        free(nh->addrs[i].host);
    free(nh->addrs);
    free(nh->domain);
    memset(nh, 0, sizeof(*nh));
}
