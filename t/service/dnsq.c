/*
 * dnsq - test tool: one DNS query through lib/dns with the resolver
 * settings of a configuration directory, answer printed in a stable form.
 *
 *   dnsq [-c CONFDIR] [-o name=value]... [-s] TYPE NAME
 *
 * TYPE is A, AAAA, MX, PTR, TXT or TLSA; for PTR, NAME may be an IPv4 or
 * IPv6 address (its reverse name is asked).  CONFDIR is -c, else
 * $POSTHORN_CONFIG, else the built-in default; -o overrides a parameter.
 * The parameters read are dns_forwarders, dns_stub_zones,
 * dnssec_trust_anchor_file and dns_query_timeout.  The query runs in the
 * event loop (dns_query), or with -s through the synchronous dns_lookup.
 *
 * Output (stdout):
 *   STATUS secure=0|1 bogus=0|1 ttl=N canonname=NAME
 *   why: TEXT                 (when the result has a reason)
 *   null MX                   (an RFC 7505 null MX)
 *   TYPE RDATA                (one line per record)
 * Records are printed in the library's order for MX (preference, then
 * host) and sorted as text for the other types.  Exit status 0 when a
 * result was printed, 2 on a usage or configuration error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "dns.h"
#include "event.h"
#include "msg.h"
#include "xalloc.h"

static dns_result_t *dnsq_res;

static void usage(void)
{
    fprintf(stderr, "usage: dnsq [-c CONFDIR] [-o name=value]... [-s] TYPE NAME\n");
    exit(2);
}

static void dnsq_done(dns_result_t *res, void *arg)
{
    dnsq_res = res;
    event_loop_stop(arg);
}

static int line_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void print_result(const dns_result_t *res)
{
    char **lines = xcalloc(res->nrr + 1, sizeof(*lines));
    buf_t *b = buf_new(0);

    printf("%s secure=%d bogus=%d ttl=%u canonname=%s\n", dns_status_str(res->status),
           res->secure, res->bogus, res->ttl, res->canonname);
    if (res->why)
        printf("why: %s\n", res->why);
    if (dns_mx_is_null(res))
        printf("null MX\n");
    for (size_t i = 0; i < res->nrr; i++) {
        buf_reset(b);
        buf_printf(b, "%s ", dns_type_str(res->type));
        dns_rr_format(res->type, &res->rr[i], b);
        lines[i] = xstrdup(buf_cstr(b));
    }
    if (res->type != DNS_T_MX)
        qsort(lines, res->nrr, sizeof(*lines), line_cmp);
    for (size_t i = 0; i < res->nrr; i++) {
        printf("%s\n", lines[i]);
        free(lines[i]);
    }
    free(lines);
    buf_free(&b);
}

int main(int argc, char **argv)
{
    const char *confdir = getenv("POSTHORN_CONFIG"), *why = NULL;
    char *overrides[64], *name;
    size_t nover = 0;
    int ch, sync = 0, type;
    buf_t *errs = buf_new(0);
    struct dns_settings s;
    dns_t *dns;

    msg_init("dnsq", MSG_STDERR);
    while ((ch = getopt(argc, argv, "c:o:s")) != -1) {
        switch (ch) {
        case 'c':
            confdir = optarg;
            break;
        case 'o':
            if (nover == sizeof(overrides) / sizeof(overrides[0]) || !strchr(optarg, '='))
                usage();
            overrides[nover++] = optarg;
            break;
        case 's':
            sync = 1;
            break;
        default:
            usage();
        }
    }
    if (optind + 2 != argc || (type = dns_type_from_str(argv[optind])) < 0)
        usage();
    if (confdir == NULL || *confdir == '\0')
        confdir = DEF_CONFIG_DIRECTORY;
    if (conf_load(confdir, errs) < 0) {
        fprintf(stderr, "%s", buf_cstr(errs));
        buf_free(&errs);
        return 2;
    }
    for (size_t i = 0; i < nover; i++) {
        char *eq = strchr(overrides[i], '=');

        *eq = '\0';
        if (conf_set(overrides[i], eq + 1, NULL, errs) < 0) {
            fprintf(stderr, "%s", buf_cstr(errs));
            buf_free(&errs);
            return 2;
        }
    }
    buf_free(&errs);

    s.forwarders = conf_str("dns_forwarders");
    s.stub_zones = conf_str("dns_stub_zones");
    s.trust_anchor_file = conf_str("dnssec_trust_anchor_file");
    s.timeout_ms = (long)conf_time("dns_query_timeout") * 1000;
    if ((dns = dns_new(&s, &why)) == NULL) {
        fprintf(stderr, "dnsq: %s\n", why);
        return 2;
    }
    name = type == DNS_T_PTR ? dns_reverse_name(argv[optind + 1]) : NULL;
    if (name == NULL)
        name = xstrdup(argv[optind + 1]);
    if (sync) {
        dnsq_res = dns_lookup(dns, name, (enum dns_type)type);
    } else {
        event_loop_t *loop = event_loop_new();

        dns_attach(dns, loop);
        dns_query(dns, name, (enum dns_type)type, dnsq_done, loop);
        event_loop_run(loop);
        dns_free(&dns);             /* before the loop it is attached to */
        event_loop_free(&loop);
    }
    print_result(dnsq_res);
    dns_result_free(&dnsq_res);
    dns_free(&dns);                 /* (sync: still there) */
    free(name);
    return 0;
}
