/*
 * spfquery - test tool: one SPF check through lib/spfcheck (libspf2 over
 * lib/dns), for the cross-check against python3-spf in t/16-spf.t.
 *
 *   spfquery [--stub ZONE=ADDR@PORT]... [--forwarders LIST] [--timeout MS]
 *            [--time-limit MS] [--receiver NAME] [--helo-only]
 *            CLIENT-IP HELO SENDER
 *
 * --stub adds a dns_stub_zones entry (repeatable); --forwarders is
 * dns_forwarders (default 127.0.0.1@1, where nobody answers, so that
 * nothing outside the stub zones leaves the machine); --timeout is
 * dns_query_timeout in milliseconds (default 2000); --time-limit the
 * whole evaluation's bound.  Without --helo-only the MAIL FROM identity
 * is checked (SENDER may be "" for the null reverse-path), with it the
 * HELO identity (SENDER is ignored).
 *
 * Output (stdout), one line each:
 *   RESULT                   the RFC 8601 word
 *   domain: DOMAIN
 *   comment: TEXT
 *   explanation: TEXT        (fail with exp= only)
 *   received-spf: VALUE
 * Exit status 0 when a result was printed, 1 when spfcheck refused the
 * arguments (its reason on stderr), 2 on a usage or resolver error.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "dns.h"
#include "msg.h"
#include "spfcheck.h"
#include "xalloc.h"

static void usage(void)
{
    fprintf(stderr, "usage: spfquery [--stub ZONE=ADDR@PORT]... [--forwarders LIST] "
            "[--timeout MS] [--time-limit MS] [--receiver NAME] [--helo-only] "
            "CLIENT-IP HELO SENDER\n");
    exit(2);
}

static long number(const char *s)
{
    char *end;
    long n = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || n <= 0)
        usage();
    return n;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"stub", required_argument, NULL, 's'},
        {"forwarders", required_argument, NULL, 'f'},
        {"timeout", required_argument, NULL, 't'},
        {"time-limit", required_argument, NULL, 'l'},
        {"receiver", required_argument, NULL, 'r'},
        {"helo-only", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    buf_t *stubs = buf_new(0);
    const char *forwarders = "127.0.0.1@1", *receiver = "mx.posthorn.test", *why = NULL;
    long timeout = 2000, limit = 0;
    int ch, helo_only = 0, r;
    struct dns_settings ds;
    struct spfcheck_outcome out;
    spfcheck_t *spf;
    dns_t *dns;

    msg_init("spfquery", MSG_STDERR);
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 's':
            buf_printf(stubs, "%s%s", stubs->len ? " " : "", optarg);
            break;
        case 'f':
            forwarders = optarg;
            break;
        case 't':
            timeout = number(optarg);
            break;
        case 'l':
            limit = number(optarg);
            break;
        case 'r':
            receiver = optarg;
            break;
        case 'h':
            helo_only = 1;
            break;
        default:
            usage();
        }
    }
    if (optind + 3 != argc)
        usage();
    ds.forwarders = forwarders;
    ds.stub_zones = buf_cstr(stubs);
    ds.trust_anchor_file = NULL;
    ds.timeout_ms = timeout;
    if ((dns = dns_new(&ds, &why)) == NULL) {
        fprintf(stderr, "spfquery: %s\n", why);
        return 2;
    }
    if ((spf = spfcheck_new(dns, receiver, &why)) == NULL) {
        fprintf(stderr, "spfquery: %s\n", why);
        return 2;
    }
    if (limit)
        spfcheck_set_time_limit(spf, limit);
    if (helo_only)
        r = spfcheck_helo(spf, argv[optind], argv[optind + 1], &out);
    else
        r = spfcheck_mailfrom(spf, argv[optind], argv[optind + 1], argv[optind + 2], &out);
    if (r < 0) {
        fprintf(stderr, "spfquery: %s\n", out.comment ? out.comment : "refused");
    } else {
        printf("%s\n", spfcheck_result_name(out.result));
        printf("domain: %s\n", out.domain);
        printf("comment: %s\n", out.comment);
        if (out.explanation)
            printf("explanation: %s\n", out.explanation);
        printf("received-spf: %s\n", out.received_spf);
    }
    spfcheck_outcome_clear(&out);
    spfcheck_free(&spf);
    dns_free(&dns);
    buf_free(&stubs);
    return r < 0 ? 1 : 0;
}
