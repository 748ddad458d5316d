/*
 * dns.c - "mailctl dns DOMAIN": the DNS records to publish for a mail
 * domain served by this host, in zone-file form, each after a one-line
 * comment saying what it is for, ready to paste:
 *
 *   MX     DOMAIN. IN MX 10 $myhostname.
 *   SPF    DOMAIN. IN TXT "v=spf1 mx ~all": the domain's mail leaves from
 *          its MX hosts (this host).  ~all rather than -all: mail from
 *          elsewhere is left to DMARC, which sees DKIM too, and a receiver
 *          that rejects on an SPF -all before DMARC runs would refuse
 *          forwarded mail whose DKIM signature passes (RFC 7489 10.1).
 *   SPF    $myhostname. IN TXT "v=spf1 a -all" (unless it is DOMAIN):
 *          for the HELO identity (RFC 7208 2.3) and the SRS sender of
 *          forwarded mail (srs_domain, by default the host's name).
 *          -all: only this host uses that name.
 *   DKIM   SELECTOR._domainkey.D. IN TXT ( "v=DKIM1; k=...; p=..." ... )
 *          for every key that signs DOMAIN's mail (dkim_key_directory;
 *          D is the key's domain: DOMAIN's or a parent's), split into
 *          strings of at most 255 bytes.
 *   DMARC  _dmarc.DOMAIN. IN TXT "v=DMARC1; p=quarantine;
 *          rua=mailto:postmaster@DOMAIN".  quarantine: all of the
 *          domain's mail that leaves through this host is signed and so
 *          passes; quarantine rather than reject keeps a sender the admin
 *          forgot (a web form, a newsletter service) in the spam folder
 *          rather than losing its mail, and the reports show it.  The
 *          reports go to postmaster, the one address every mail domain
 *          has (RFC 5321 4.5.1).
 *   PTR    REVERSE. IN PTR $myhostname. for each address of $myhostname
 *          (A and AAAA through lib/dns; if that finds none, the host's
 *          global interface addresses), which receivers check against
 *          the HELO name (forward-confirmed reverse DNS).
 *
 * mailctl_dns_dkim() prints one DKIM record; "dkim keygen" uses it too.
 *
 * Keys need root to read (mode 0600); a key that cannot be read or is
 * refused is reported on standard error ("mailctl: FILE: reason") and the
 * rest is still printed (mailctl dkim list fails on such keys; here they
 * may well belong to another domain).
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "conf.h"
#include "dkimkeys.h"
#include "dns.h"
#include "mailctl.h"
#include "trustpath.h"
#include "xalloc.h"

#define DNS_TXT_STRING_MAX 255

void mailctl_dns_dkim(FILE *out, const dkimsign_key_t *k, const char *path)
{
    char *txt = dkimsign_key_txt(k);
    size_t len = strlen(txt);

    if (dkimsign_key_alg(k) == DKIMSIGN_RSA_SHA256)
        fprintf(out, "; DKIM: rsa-sha256, %d bits (%s)\n", dkimsign_key_bits(k), path);
    else
        fprintf(out, "; DKIM: ed25519-sha256 (%s)\n", path);
    fprintf(out, "%s._domainkey.%s.\tIN\tTXT\t", dkimsign_key_selector(k),
            dkimsign_key_domain(k));
    if (len <= DNS_TXT_STRING_MAX) {
        fprintf(out, "\"%s\"\n", txt);
    } else {
        fputs("(", out);
        for (size_t off = 0; off < len; off += DNS_TXT_STRING_MAX) {
            size_t n = len - off < DNS_TXT_STRING_MAX ? len - off : DNS_TXT_STRING_MAX;

            fprintf(out, "%s\"%.*s\"", off ? "\n\t" : " ", (int)n, txt + off);
        }
        fputs(" )\n", out);
    }
    free(txt);
}

/* Not loopback, link-local, private, unique-local or unspecified: an
 * address the rest of the Internet can see. */
static int dns_global(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);

        return !((a >> 24) == 0 || (a >> 24) == 127 || (a >> 24) == 10
                 || (a >> 16) == 0xa9fe || (a >> 20) == 0xac1 || (a >> 16) == 0xc0a8
                 || (a >> 22) == (100u << 2 | 1) || (a >> 28) == 0xe);
    }
    if (sa->sa_family == AF_INET6) {
        const unsigned char *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;

        return (b[0] & 0xe0) == 0x20;   /* 2000::/3, the global unicast space */
    }
    return 0;
}

/* The addresses of host (text form, into addrs); how many. */
static size_t dns_host_addrs(const char *host, char ***addrs, const char **source)
{
    static const enum dns_type types[] = {DNS_T_A, DNS_T_AAAA};
    struct dns_settings ds;
    const char *why = NULL;
    char text[INET6_ADDRSTRLEN];
    struct ifaddrs *ifa, *i;
    dns_t *dns;
    size_t n = 0;

    conf_dns_settings(&ds);
    dns = dns_new(&ds, &why);
    *addrs = NULL;
    for (size_t t = 0; dns && t < 2; t++) {
        dns_result_t *res = dns_lookup(dns, host, types[t]);

        for (size_t j = 0; res && res->status == DNS_OK && j < res->nrr; j++) {
            int fam = res->rr[j].u.addr.family;

            if (inet_ntop(fam, res->rr[j].u.addr.bytes, text, sizeof(text)) == NULL)
                continue;
            *addrs = xreallocarray(*addrs, n + 1, sizeof(char *));
            (*addrs)[n++] = xstrdup(text);
        }
        dns_result_free(&res);
    }
    dns_free(&dns);
    *source = "its A and AAAA records";
    if (n > 0 || getifaddrs(&ifa) < 0)
        return n;
    *source = "this host's global interface addresses";
    for (i = ifa; i; i = i->ifa_next) {
        const void *a;

        if (i->ifa_addr == NULL || !dns_global(i->ifa_addr))
            continue;
        a = i->ifa_addr->sa_family == AF_INET
                ? (const void *)&((struct sockaddr_in *)i->ifa_addr)->sin_addr
                : (const void *)&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
        if (inet_ntop(i->ifa_addr->sa_family, a, text, sizeof(text)) == NULL)
            continue;
        *addrs = xreallocarray(*addrs, n + 1, sizeof(char *));
        (*addrs)[n++] = xstrdup(text);
    }
    freeifaddrs(ifa);
    return n;
}

int cmd_dns(int argc, char **argv)
{
    const struct dkimkeys_domain *dom;
    buf_t *errs, *warns;
    const char *host, *source = "";
    dkimkeys_t *keys;
    uid_t owners[2];
    char *domain, **addrs;
    size_t naddrs, nowners;

    if (argc != 2) {
        fprintf(stderr, "usage: mailctl dns DOMAIN\n");
        return 2;
    }
    domain = xstrdup(argv[1]);
    for (char *p = domain; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    if (!dkimkeys_domain_valid(domain)) {
        fprintf(stderr, "mailctl: '%s' is not a domain name\n", argv[1]);
        free(domain);
        return 2;
    }
    if (mailctl_load_config(0) < 0) {
        free(domain);
        return 1;
    }
    errs = buf_new(0);
    warns = buf_new(0);
    host = conf_str("myhostname");
    printf("; DNS records for the mail domain %s served by %s (mailctl dns)\n", domain, host);
    printf("; MX: mail for %s is delivered to this host\n", domain);
    printf("%s.\tIN\tMX\t10 %s.\n", domain, host);
    printf("; SPF: %s's mail leaves from its MX hosts; DMARC judges the rest (~all)\n", domain);
    printf("%s.\tIN\tTXT\t\"v=spf1 mx ~all\"\n", domain);
    if (strcasecmp(host, domain) != 0) {
        /* Receivers check SPF of the HELO name too (RFC 7208 2.3), and
         * forwarded mail leaves with an SRS sender of srs_domain. */
        printf("; SPF of the host itself: its HELO name%s\n",
               strcasecmp(conf_str("srs_domain"), host) == 0
               ? " and the SRS sender of forwarded mail (srs_domain)" : "");
        printf("%s.\tIN\tTXT\t\"v=spf1 a -all\"\n", host);
    }

    nowners = trustpath_owners(owners);
    keys = dkimkeys_load(conf_str("dkim_key_directory"), owners, nowners, errs, warns);
    if (errs->len > 0) {
        for (char *line = errs->data, *next; line && *line; line = next) {
            if ((next = strchr(line, '\n')) != NULL)
                *next++ = '\0';
            fprintf(stderr, "mailctl: skipped: %s\n", line);
        }
    }
    if ((dom = dkimkeys_find(keys, domain)) == NULL)
        printf("; DKIM: no key signs mail from %s (in %s): run mailctl dkim keygen %s\n", domain,
               conf_str("dkim_key_directory"), domain);
    for (size_t i = 0; dom && i < dom->n; i++)
        mailctl_dns_dkim(stdout, dom->keys[i], dom->paths[i]);
    dkimkeys_free(&keys);

    printf("; DMARC: quarantine mail that fails both SPF and DKIM alignment (p=reject once the "
           "reports are clean); aggregate reports to postmaster\n");
    printf("_dmarc.%s.\tIN\tTXT\t\"v=DMARC1; p=quarantine; rua=mailto:postmaster@%s\"\n", domain,
           domain);

    naddrs = dns_host_addrs(host, &addrs, &source);
    if (naddrs == 0)
        printf("; PTR: no global address of %s found: ask whoever runs the reverse zone of "
               "its public address to point it at %s.\n", host, host);
    for (size_t i = 0; i < naddrs; i++) {
        char *rev = dns_reverse_name(addrs[i]);

        printf("; PTR: %s, an address of %s (%s), should name it back\n", addrs[i], host, source);
        printf("%s.\tIN\tPTR\t%s.\n", rev ? rev : addrs[i], host);
        free(rev);
        free(addrs[i]);
    }
    free(addrs);
    free(domain);
    buf_free(&errs);
    buf_free(&warns);
    return 0;
}
