/*
 * t/unit/dns.c - unit tests for lib/dns.c: the RDATA parsers with good
 * and malformed input (truncated names, compression pointers, overlong
 * labels and names, zero-length data, wrong lengths, trailing bytes), the
 * text helpers, dns_new()'s settings and trust anchor file checks, and
 * queries answered by libunbound local data (dns_local_zone) through the
 * event loop and the synchronous helper: every type, NODATA, NXDOMAIN, an
 * invalid name, cancelling (from outside, from another query's callback,
 * from its own callback), freeing with queries outstanding, and the
 * deadline against a forwarder that never answers (a UDP socket we bind
 * and never read).  No test asserts on elapsed time except that the
 * timeout is reported within a generous bound.  alarm() guards against
 * hangs.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "dns.h"
#include "event.h"
#include "msg.h"
#include "xalloc.h"
#include "../lib/tap.h"
#include "../lib/testlib.h"

#define TLSA_HEX "8d02536c887482bc34ff54e41d2ba659bf85b341a0a20afadb5813dcfbcf286d"

static char dead_fwd[64];       /* "127.0.0.1@PORT" where nothing answers */
static char tmpdir[] = "/tmp/posthorn-dns-XXXXXX";

/* ------------------------------------------------------------- parsers */

static int parse(enum dns_type type, const char *rd, size_t len, struct dns_rr *rr,
                 const char **why)
{
    *why = NULL;
    return dns_parse_rdata(type, (const unsigned char *)rd, len, rr, why);
}

/* Parse, format, compare with want; NULL want means "must fail with why". */
static void check_rr(enum dns_type type, const char *rd, size_t len, const char *want,
                     const char *name)
{
    struct dns_rr rr;
    const char *why;
    int r = parse(type, rd, len, &rr, &why);

    if (want == NULL) {
        ok(r == -1 && why != NULL, "%s: refused (%s)", name, why ? why : "no reason");
        return;
    }
    if (!ok(r == 0, "%s: parses", name)) {
        diag("  why: %s", why ? why : "(null)");
        return;
    }
    buf_t *b = buf_new(0);

    dns_rr_format(type, &rr, b);
    is_str(buf_cstr(b), want, "%s: formats", name);
    buf_free(&b);
    dns_rr_clear(type, &rr);
}

#define RR(type, lit, want, name) check_rr(type, lit, sizeof(lit) - 1, want, name)

static void test_names(void)
{
    char big[400];
    size_t off, n = 0;
    char *name;
    const char *why;
    int i;

    RR(DNS_T_MX, "\x00\x0a\x03mx1\x07" "example\x04test\x00", "10 mx1.example.test", "MX");
    RR(DNS_T_MX, "\xff\xff\x01x\x00", "65535 x", "MX with the largest preference");
    RR(DNS_T_MX, "\x00\x00\x00", "0 .", "null MX (0 .)");
    RR(DNS_T_MX, "", NULL, "MX of zero length");
    RR(DNS_T_MX, "\x00", NULL, "MX of one byte");
    RR(DNS_T_MX, "\x00\x0a", NULL, "MX without a host");
    RR(DNS_T_MX, "\x00\x0a\x03mx1\x04test", NULL, "MX host without its root label");
    RR(DNS_T_MX, "\x00\x0a\x09mx1", NULL, "MX host with a truncated label");
    RR(DNS_T_MX, "\x00\x0a\xc0\x0c", NULL, "MX host with a compression pointer");
    RR(DNS_T_MX, "\x00\x0a\x03mx1\xc0\x0c", NULL, "compression pointer after a label");
    RR(DNS_T_MX, "\x00\x0a\x40", NULL, "label length 64 (extended label type)");
    RR(DNS_T_MX, "\x00\x0a\x80\x00", NULL, "label type 10");
    RR(DNS_T_MX, "\x00\x0a\x01x\x00z", NULL, "MX with trailing bytes");
    RR(DNS_T_MX, "\x00\x0a\x03" "a.b\x02\x01z\x01\\\x00", "10 a\\.b.\\001z.\\\\",
       "MX host with escaped bytes");

    /* 255 bytes is the most a name may take on the wire. */
    for (i = 0; i < 3; i++) {
        big[n++] = 63;
        memset(big + n, 'a' + i, 63);
        n += 63;
    }
    big[n++] = 61;
    memset(big + n, 'd', 61);
    n += 61;
    big[n++] = 0;
    is_int(n, 255, "test name is 255 bytes");
    off = 0;
    is_int(dns_parse_name((unsigned char *)big, n, &off, &name, &why), 0, "255-byte name parses");
    is_int(off, 255, "and ends where it should");
    is_int(name ? strlen(name) : 0, 253, "as 253 characters");
    free(name);
    big[n - 1] = 1;             /* one more label: 257 bytes */
    big[n++] = 'e';
    big[n++] = 0;
    off = 0;
    ok(dns_parse_name((unsigned char *)big, n, &off, &name, &why) == -1 && name == NULL,
       "a 257-byte name is refused");
    like(why, "longer than 255", "with the reason");
    off = 0;
    ok(dns_parse_name((unsigned char *)"", 0, &off, &name, &why) == -1, "empty input refused");
    like(why, "truncated", "as truncated");
    off = 2;
    ok(dns_parse_name((unsigned char *)"\x01x\x00", 2, &off, &name, &why) == -1,
       "an offset at the end is refused");

    RR(DNS_T_PTR, "\x04mail\x07" "example\x03org\x00", "mail.example.org", "PTR");
    RR(DNS_T_PTR, "\x00", ".", "PTR to the root");
    RR(DNS_T_PTR, "", NULL, "PTR of zero length");
    RR(DNS_T_PTR, "\x04mail\xc0\x10", NULL, "PTR with a compression pointer");
    RR(DNS_T_PTR, "\x04mail\x00\x00", NULL, "PTR with a trailing byte");
}

static void test_records(void)
{
    struct dns_rr rr;
    const char *why;
    unsigned char tlsa[3 + 32];

    RR(DNS_T_A, "\xc0\x00\x02\x01", "192.0.2.1", "A");
    RR(DNS_T_A, "\xc0\x00\x02", NULL, "A of 3 bytes");
    RR(DNS_T_A, "\xc0\x00\x02\x01\x00", NULL, "A of 5 bytes");
    RR(DNS_T_A, "", NULL, "A of zero length");
    RR(DNS_T_AAAA, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", "2001:db8::1", "AAAA");
    RR(DNS_T_AAAA, "\xc0\x00\x02\x01", NULL, "AAAA of 4 bytes");
    RR(DNS_T_AAAA, "", NULL, "AAAA of zero length");

    RR(DNS_T_TXT, "\x06v=spf1\x05 -all", "\"v=spf1\" \" -all\"", "TXT of two strings");
    RR(DNS_T_TXT, "\x00", "\"\"", "TXT of one empty string");
    RR(DNS_T_TXT, "\x03" "a\"\\\x02\x00\x01", "\"a\\\"\\\\\" \"\\000\\001\"",
       "TXT with quotes, backslashes and control bytes");
    RR(DNS_T_TXT, "", NULL, "TXT of zero length");
    RR(DNS_T_TXT, "\x05" "ab", NULL, "TXT with a truncated string");
    RR(DNS_T_TXT, "\x02" "ab\x03" "c", NULL, "TXT with a truncated second string");
    ok(parse(DNS_T_TXT, "\x06v=spf1\x00\x05 -all", 14, &rr, &why) == 0, "TXT parses");
    is_int(rr.u.txt.nstrings, 3, "three strings");
    is_str(rr.u.txt.joined, "v=spf1 -all", "joined");
    is_int(rr.u.txt.len, 11, "joined length");
    is_int(rr.u.txt.lens[1], 0, "the empty one has length 0");
    dns_rr_clear(DNS_T_TXT, &rr);
    ok(parse(DNS_T_TXT, "\x03" "a\0b", 4, &rr, &why) == 0 && rr.u.txt.len == 3
       && memcmp(rr.u.txt.joined, "a\0b", 4) == 0, "TXT keeps a NUL byte, length counted");
    dns_rr_clear(DNS_T_TXT, &rr);

    tlsa[0] = 3, tlsa[1] = 1, tlsa[2] = 1;
    for (int i = 0; i < 32; i++) {
        unsigned v;

        sscanf(TLSA_HEX + 2 * i, "%2x", &v);
        tlsa[3 + i] = (unsigned char)v;
    }
    check_rr(DNS_T_TLSA, (char *)tlsa, sizeof(tlsa), "3 1 1 " TLSA_HEX, "TLSA 3 1 1");
    ok(parse(DNS_T_TLSA, (char *)tlsa, sizeof(tlsa), &rr, &why) == 0
       && rr.u.tlsa.usage == 3 && rr.u.tlsa.selector == 1 && rr.u.tlsa.mtype == 1
       && rr.u.tlsa.len == 32 && memcmp(rr.u.tlsa.data, tlsa + 3, 32) == 0, "TLSA fields");
    dns_rr_clear(DNS_T_TLSA, &rr);
    RR(DNS_T_TLSA, "\x02\x00\x00", NULL, "TLSA without association data");
    RR(DNS_T_TLSA, "\x02\x00", NULL, "TLSA of 2 bytes");
    RR(DNS_T_TLSA, "", NULL, "TLSA of zero length");
    RR(DNS_T_TLSA, "\x02\x00\x00\xab", "2 0 0 ab", "TLSA with one byte of data");
    RR((enum dns_type)5, "\x00", NULL, "an unsupported type");
}

static void test_helpers(void)
{
    char *s;

    ok(dns_name_valid("example.org"), "valid: example.org");
    ok(dns_name_valid("example.org."), "valid: with the final dot");
    ok(dns_name_valid("."), "valid: the root");
    ok(dns_name_valid("_25._tcp.mx.example"), "valid: underscores");
    ok(!dns_name_valid(""), "invalid: empty");
    ok(!dns_name_valid("a..b"), "invalid: empty label");
    ok(!dns_name_valid(".a"), "invalid: leading dot");
    ok(!dns_name_valid("a b"), "invalid: space");
    ok(!dns_name_valid("a\\.b"), "invalid: backslash");
    ok(!dns_name_valid("caf\xc3\xa9.example"), "invalid: 8-bit bytes (U-labels)");
    char label[70], longname[300];

    memset(label, 'a', 63);
    label[63] = '\0';
    snprintf(longname, sizeof(longname), "%s.example", label);
    ok(dns_name_valid(longname), "valid: a 63-byte label");
    snprintf(longname, sizeof(longname), "a%s.example", label);
    ok(!dns_name_valid(longname), "invalid: a 64-byte label");
    snprintf(longname, sizeof(longname), "%s.%s.%s.%.61s", label, label, label, label);
    ok(dns_name_valid(longname), "valid: 253 characters");
    snprintf(longname, sizeof(longname), "%s.%s.%s.%.62s", label, label, label, label);
    ok(!dns_name_valid(longname), "invalid: 254 characters");

    s = dns_reverse_name("192.0.2.1");
    is_str(s, "1.2.0.192.in-addr.arpa", "reverse name of an IPv4 address");
    free(s);
    s = dns_reverse_name("2001:db8::1");
    is_str(s, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
           "reverse name of an IPv6 address");
    free(s);
    ok(dns_reverse_name("example.org") == NULL, "no reverse name for a host name");
    ok(dns_reverse_name("192.0.2.1/24") == NULL, "nor for a network");

    is_int(dns_type_from_str("mx"), DNS_T_MX, "type names are case-insensitive");
    is_int(dns_type_from_str("TLSA"), DNS_T_TLSA, "TLSA by name");
    is_int(dns_type_from_str("CNAME"), -1, "CNAME is not a query type");
    is_str(dns_type_str(DNS_T_AAAA), "AAAA", "type name");
    is_str(dns_status_str(DNS_NXDOMAIN), "NXDOMAIN", "status name");
}

/* ------------------------------------------------------------- set-up */

static dns_t *mk(const char *fwd, const char *stubs, const char *ta, long ms, const char **why)
{
    struct dns_settings s = {fwd, stubs, ta, ms};

    *why = NULL;
    return dns_new(&s, why);
}

static char *tmpfile_with(const char *name, const char *text)
{
    char *path = xasprintf("%s/%s", tmpdir, name);

    write_text(path, text);
    return path;
}

static void new_fails(const char *fwd, const char *stubs, const char *ta, long ms,
                      const char *want, const char *name)
{
    const char *why;
    dns_t *dns = mk(fwd, stubs, ta, ms, &why);

    ok(dns == NULL, "dns_new refuses %s", name);
    like(why, want, "  with the reason");
    dns_free(&dns);
}

/* Silence stderr around a call whose complaint there is expected. */
static int quiet(void)
{
    int save = dup(STDERR_FILENO), null = open("/dev/null", O_WRONLY);

    if (null >= 0) {
        dup2(null, STDERR_FILENO);
        close(null);
    }
    return save;
}

static void loud(int save)
{
    if (save >= 0) {
        dup2(save, STDERR_FILENO);
        close(save);
    }
}

static void test_settings(void)
{
    int save;
    const char *why;
    dns_t *dns;
    char *p;

    new_fails("not-an-address", NULL, NULL, 1000, "dns_forwarders: bad address 'not-an-address'",
              "a forwarder that is not an address");
    new_fails("127.0.0.1@99999", NULL, NULL, 1000, "bad address", "a forwarder port out of range");
    new_fails("127.0.0.1@", NULL, NULL, 1000, "bad address", "a forwarder with an empty port");
    new_fails("192.0.2.1 127.0.0.1@0", NULL, NULL, 1000, "bad address '127.0.0.1@0'",
              "a forwarder with port 0");
    new_fails("[::1]", NULL, NULL, 1000, "bad address", "an IPv6 forwarder in brackets");
    new_fails(dead_fwd, "x.test=127.0.0.1@70000", NULL, 1000, "bad entry", "a stub port out of range");
    new_fails(dead_fwd, "example.test", NULL, 1000, "dns_stub_zones: bad entry 'example.test'",
              "a stub zone without =");
    new_fails(dead_fwd, "=127.0.0.1", NULL, 1000, "bad entry", "a stub zone without a zone");
    new_fails(dead_fwd, "a..b=127.0.0.1", NULL, 1000, "bad entry 'a..b=127.0.0.1'",
              "a stub zone with a bad name");
    new_fails(dead_fwd, "x.test=mail.example", NULL, 1000, "bad entry", "a stub zone with a host name");
    new_fails(dead_fwd, NULL, NULL, 0, "dns_query_timeout", "a zero timeout");

    p = tmpfile_with("garbage.key", "; a comment\nexample.test. IN A 192.0.2.1\n");
    new_fails(dead_fwd, NULL, p, 1000, "garbage.key:2: not a DS or DNSKEY record",
              "an anchor file with an A record");
    free(p);
    p = tmpfile_with("empty.key", "; nothing but comments\n\n");
    new_fails(dead_fwd, NULL, p, 1000, "holds no DS or DNSKEY record", "an anchor file without records");
    free(p);
    p = tmpfile_with("dollar.key", "$ORIGIN example.\n");
    new_fails(dead_fwd, NULL, p, 1000, "dollar.key:1: $ directives", "a $ORIGIN line");
    free(p);
    p = tmpfile_with("paren.key", "test. IN DS ( 2371 13 2\n");
    new_fails(dead_fwd, NULL, p, 1000, "paren.key:1: unbalanced", "an unclosed parenthesis");
    free(p);
    p = tmpfile_with("bad.key", "test. IN DS 2371 13 2 zz-not-hex\n");
    save = quiet();             /* libunbound says why on stderr */
    new_fails(dead_fwd, NULL, p, 1000, "libunbound refused the configuration",
              "a DS record libunbound cannot parse");
    loud(save);
    free(p);
    new_fails(dead_fwd, NULL, tmpdir, 1000, "not a regular file", "a directory as anchor file");

    p = tmpfile_with("good.key",
                     "; the root's key, as dns-root-data ships it\n"
                     ". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n"
                     "test. 3600 IN DNSKEY 257 3 13 (\n"
                     "   VJ+RdGMpy7fOF5y9ClOyUmEIT6GzEwxWlo+vtpmMYw4Obnr6dbJoFSa\n"
                     "   q3wpdSPeXs4EewVgpf8ltDNbtsdzWQ== ) ; ksk\n");
    dns = mk(dead_fwd, NULL, p, 1000, &why);
    ok(dns != NULL, "an anchor file with a DS and a multi-line DNSKEY loads");
    if (dns == NULL)
        diag("  %s", why);
    ok(dns && dns_validating(dns), "and validation is on");
    dns_free(&dns);
    free(p);

    p = xasprintf("%s/missing.key", tmpdir);
    save = quiet();             /* the warning that validation is off */
    dns = mk(dead_fwd, NULL, p, 1000, &why);
    loud(save);
    ok(dns != NULL && !dns_validating(dns), "a missing anchor file: no validation, no error");
    dns_free(&dns);
    free(p);
    dns = mk(dead_fwd, "test.=127.0.0.1@5300, 2.0.192.in-addr.arpa=127.0.0.1", "", 1000, &why);
    ok(dns != NULL && !dns_validating(dns), "two stub zones, no anchor");
    if (dns == NULL)
        diag("  %s", why);
    dns_free(&dns);
    dns = mk("127.0.0.1@5353 ::1, 127.0.0.2", NULL, NULL, 1000, &why);
    ok(dns != NULL, "several forwarders, IPv6 too");
    dns_free(&dns);
}

/* ------------------------------------------------------------- queries */

struct got {
    int           called;
    dns_result_t *res;
    dns_t        *dns;
    dns_query_t  *other;        /* cancelled by the callback, if set */
    dns_query_t  *self;         /* cancelled from its own callback, if set */
};

static void got_cb(dns_result_t *res, void *arg)
{
    struct got *g = arg;

    g->called++;
    dns_result_free(&g->res);
    g->res = res;
    if (g->other)
        dns_cancel(g->dns, &g->other);
    if (g->self)
        dns_cancel(g->dns, &g->self);
}

static int run_until(event_loop_t *loop, const int *flag, long ms)
{
    long long end = event_now_ms() + ms;

    while (!*flag && event_now_ms() < end)
        event_loop_once(loop, 50);
    return *flag;
}

static void run_for(event_loop_t *loop, long ms)
{
    long long end = event_now_ms() + ms;

    while (event_now_ms() < end)
        event_loop_once(loop, 20);
}

static const char *const example_rrs[] = {
    "example.test. 300 IN MX 20 mx2.example.test.",
    "example.test. 300 IN MX 10 mx1.example.test.",
    "example.test. 300 IN MX 10 mx0.example.test.",
    "example.test. 300 IN TXT \"v=spf1 ip4:192.0.2.0/24\" \" -all\"",
    "mx1.example.test. 300 IN A 192.0.2.1",
    "mx1.example.test. 300 IN A 192.0.2.11",
    "mx1.example.test. 300 IN AAAA 2001:db8::1",
    "_25._tcp.mx1.example.test. 300 IN TLSA 3 1 1 " TLSA_HEX,
    "null.example.test. 300 IN MX 0 .",
    NULL,
};
static const char *const reverse_rrs[] = {
    "1.2.0.192.in-addr.arpa. 300 IN PTR mx1.example.test.",
    NULL,
};

static dns_t *mk_local(void)
{
    const char *why;
    dns_t *dns = mk(dead_fwd, NULL, NULL, 5000, &why);

    if (dns == NULL) {
        diag("dns_new: %s", why);
        exit(2);
    }
    if (dns_local_zone(dns, "example.test", example_rrs, &why) < 0
        || dns_local_zone(dns, "2.0.192.in-addr.arpa", reverse_rrs, &why) < 0) {
        diag("dns_local_zone: %s", why);
        exit(2);
    }
    return dns;
}

/* The records of res, formatted, sorted unless MX, joined by "; ". */
static char *records(const dns_result_t *res)
{
    buf_t *b = buf_new(0), *one = buf_new(0);
    char **v = xcalloc(res->nrr + 1, sizeof(*v)), *s;

    for (size_t i = 0; i < res->nrr; i++) {
        buf_reset(one);
        dns_rr_format(res->type, &res->rr[i], one);
        v[i] = xstrdup(buf_cstr(one));
    }
    if (res->type != DNS_T_MX)
        for (size_t i = 0; i + 1 < res->nrr; i++)
            for (size_t j = i + 1; j < res->nrr; j++)
                if (strcmp(v[i], v[j]) > 0) {
                    s = v[i], v[i] = v[j], v[j] = s;
                }
    for (size_t i = 0; i < res->nrr; i++) {
        buf_printf(b, "%s%s", i ? "; " : "", v[i]);
        free(v[i]);
    }
    free(v);
    buf_free(&one);
    s = buf_steal(b, NULL);
    buf_free(&b);
    return s;
}

struct expect {
    const char     *name;
    enum dns_type   type;
    enum dns_status status;
    const char     *records;
};

static const struct expect expects[] = {
    {"example.test", DNS_T_MX, DNS_OK, "10 mx0.example.test; 10 mx1.example.test; 20 mx2.example.test"},
    {"example.test.", DNS_T_MX, DNS_OK, "10 mx0.example.test; 10 mx1.example.test; 20 mx2.example.test"},
    {"null.example.test", DNS_T_MX, DNS_OK, "0 ."},
    {"mx1.example.test", DNS_T_A, DNS_OK, "192.0.2.1; 192.0.2.11"},
    {"mx1.example.test", DNS_T_AAAA, DNS_OK, "2001:db8::1"},
    {"example.test", DNS_T_TXT, DNS_OK, "\"v=spf1 ip4:192.0.2.0/24\" \" -all\""},
    {"1.2.0.192.in-addr.arpa", DNS_T_PTR, DNS_OK, "mx1.example.test"},
    {"_25._tcp.mx1.example.test", DNS_T_TLSA, DNS_OK, "3 1 1 " TLSA_HEX},
    {"example.test", DNS_T_A, DNS_NODATA, ""},
    {"mx1.example.test", DNS_T_MX, DNS_NODATA, ""},
    {"nothere.example.test", DNS_T_MX, DNS_NXDOMAIN, ""},
    {"2.2.0.192.in-addr.arpa", DNS_T_PTR, DNS_NXDOMAIN, ""},
    {"bad..name", DNS_T_A, DNS_INVALID, ""},
    {"", DNS_T_MX, DNS_INVALID, ""},
};
#define NEXPECT (sizeof(expects) / sizeof(expects[0]))

static void check_result(const dns_result_t *res, const struct expect *e, const char *how)
{
    char *recs;

    if (!ok(res != NULL, "%s %s %s: a result", how, dns_type_str(e->type), e->name))
        return;
    is_str(dns_status_str(res->status), dns_status_str(e->status), "  status");
    recs = records(res);
    is_str(recs, e->records, "  records");
    free(recs);
    ok(res->type == e->type && res->secure == 0 && res->bogus == 0,
       "  type, and not secure (local data)");
    if (e->status == DNS_INVALID)
        like(res->why, "not a valid domain name", "  why");
    else if (e->status == DNS_OK)
        ok(res->why == NULL && res->ttl > 0 && res->ttl <= 300, "  no why; ttl %u", res->ttl);
}

/* Does every thread but this one block SIGTERM, SIGHUP and SIGCHLD? */
static int other_threads_block_signals(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int good = 1, seen = 0;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char path[300], line[256];
        unsigned long long mask = 0;
        FILE *fp;

        if (e->d_name[0] == '.' || atoi(e->d_name) == getpid())
            continue;
        snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
        if ((fp = fopen(path, "r")) == NULL)
            continue;
        while (fgets(line, sizeof(line), fp))
            if (strncmp(line, "SigBlk:", 7) == 0)
                mask = strtoull(line + 7, NULL, 16);
        fclose(fp);
        seen++;
        good &= (mask >> (SIGTERM - 1) & 1) && (mask >> (SIGHUP - 1) & 1)
            && (mask >> (SIGCHLD - 1) & 1);
    }
    closedir(d);
    return seen > 0 && good;
}

static void test_local(void)
{
    event_loop_t *loop = event_loop_new();
    dns_t *dns = mk_local();
    struct got g[NEXPECT];
    int all, nthreads = 0, done;
    DIR *d;
    struct dirent *e;

    memset(g, 0, sizeof(g));
    dns_attach(dns, loop);
    for (size_t i = 0; i < NEXPECT; i++) {
        dns_query(dns, expects[i].name, expects[i].type, got_cb, &g[i]);
        ok(g[i].called == 0, "no callback inside dns_query (%s %s)",
           dns_type_str(expects[i].type), expects[i].name);
    }
    all = 0;
    for (long long end = event_now_ms() + 10000; !all && event_now_ms() < end;) {
        event_loop_once(loop, 50);
        all = 1;
        for (size_t i = 0; i < NEXPECT; i++)
            all &= g[i].called > 0;
    }
    ok(all, "every query was answered");
    for (size_t i = 0; i < NEXPECT; i++) {
        is_int(g[i].called, 1, "one callback for %s %s", dns_type_str(expects[i].type),
               expects[i].name);
        check_result(g[i].res, &expects[i], "async");
        dns_result_free(&g[i].res);
    }

    /* libunbound runs in a thread of ours, never in a forked process. */
    if ((d = opendir("/proc/self/task")) != NULL) {
        while ((e = readdir(d)) != NULL)
            nthreads += e->d_name[0] != '.';
        closedir(d);
    }
    ok(nthreads >= 2, "libunbound resolves in a thread (%d threads)", nthreads);
    ok(other_threads_block_signals(), "which blocks SIGTERM, SIGHUP and SIGCHLD");
    ok(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD, "and forked no process");

    /* The synchronous helper, on the same (attached) context. */
    for (size_t i = 0; i < NEXPECT; i++) {
        dns_result_t *res = dns_lookup(dns, expects[i].name, expects[i].type);

        check_result(res, &expects[i], "sync");
        dns_result_free(&res);
    }

    /* Null MX helper; the MX of a normal domain is not null. */
    {
        dns_result_t *res = dns_lookup(dns, "null.example.test", DNS_T_MX);

        ok(dns_mx_is_null(res), "0 . is a null MX");
        dns_result_free(&res);
        res = dns_lookup(dns, "example.test", DNS_T_MX);
        ok(!dns_mx_is_null(res), "example.test's MX is not");
        is_str(res->canonname, "example.test", "canonname without a CNAME is the name");
        dns_result_free(&res);
    }

    /* A chain: a callback may start the next query. */
    {
        struct got first = {0}, second = {0};

        first.dns = dns;
        dns_query(dns, "example.test", DNS_T_MX, got_cb, &first);
        run_until(loop, &first.called, 5000);
        ok(first.res && first.res->status == DNS_OK, "first query of a chain");
        dns_query(dns, first.res->rr[1].u.mx.host, DNS_T_AAAA, got_cb, &second);
        done = run_until(loop, &second.called, 5000);
        ok(done && second.res->status == DNS_OK, "second query of a chain (%s AAAA)",
           first.res->rr[1].u.mx.host);
        dns_result_free(&first.res);
        dns_result_free(&second.res);
    }

    dns_free(&dns);
    ok(dns == NULL, "dns_free NULLs the pointer");
    event_loop_free(&loop);
}

static void test_cancel(void)
{
    event_loop_t *loop = event_loop_new();
    dns_t *dns = mk_local();
    struct got a = {0}, b = {0}, c = {0}, s = {0}, x = {0}, e = {0};
    dns_query_t *qx, *qe, *qa, *qb;

    dns_attach(dns, loop);

    /* Cancelled from outside before the answer: no callback, ever. */
    qx = dns_query(dns, "example.test", DNS_T_MX, got_cb, &x);
    dns_cancel(dns, &qx);
    ok(qx == NULL, "dns_cancel NULLs the handle");
    dns_cancel(dns, &qx);
    ok(1, "cancelling NULL is harmless");
    /* An early result (invalid name) cancelled before its delivery. */
    qe = dns_query(dns, "bad..name", DNS_T_MX, got_cb, &e);
    dns_cancel(dns, &qe);

    /* Two queries; whichever is answered first cancels the other. */
    a.dns = b.dns = dns;
    qa = dns_query(dns, "mx1.example.test", DNS_T_A, got_cb, &a);
    qb = dns_query(dns, "mx1.example.test", DNS_T_AAAA, got_cb, &b);
    a.other = qb;
    b.other = qa;
    /* A third query answered after both, and one cancelling itself. */
    s.dns = dns;
    s.self = dns_query(dns, "example.test", DNS_T_TXT, got_cb, &s);
    dns_query(dns, "example.test", DNS_T_MX, got_cb, &c);
    run_until(loop, &c.called, 5000);
    run_for(loop, 300);
    is_int(a.called + b.called, 1, "of two queries that cancel each other, one callback ran");
    is_int(s.called, 1, "a query that cancels itself in its callback: one callback");
    ok(s.self == NULL, "and its handle was NULLed");
    is_int(x.called, 0, "a cancelled query never calls back");
    is_int(e.called, 0, "nor a cancelled query with an early result");
    is_int(c.called, 1, "other queries carry on");
    dns_result_free(&a.res);
    dns_result_free(&b.res);
    dns_result_free(&c.res);
    dns_result_free(&s.res);

    dns_free(&dns);
    event_loop_free(&loop);
}

static void free_in_callback_cb(dns_result_t *res, void *arg)
{
    dns_t **dnsp = arg;

    dns_result_free(&res);
    dns_free(dnsp);             /* must panic */
}

static void free_in_callback(void)
{
    event_loop_t *loop = event_loop_new();
    dns_t *dns = mk_local();
    int never = 0;

    dns_attach(dns, loop);
    dns_query(dns, "example.test", DNS_T_MX, free_in_callback_cb, &dns);
    run_until(loop, &never, 5000);
}

static void query_unattached(void)
{
    dns_t *dns = mk_local();
    struct got g = {0};

    dns_query(dns, "example.test", DNS_T_MX, got_cb, &g);
}

static void test_misuse(void)
{
    ok(dies_with_abort(free_in_callback), "dns_free from a callback panics");
    ok(dies_with_abort(query_unattached), "dns_query before dns_attach panics");
}

static const char *dns_reverse_name_tmp(const char *addr)
{
    static char name[100];
    char *s = dns_reverse_name(addr);

    snprintf(name, sizeof(name), "%s", s ? s : "");
    free(s);
    return name;
}

static void test_timeout(void)
{
    event_loop_t *loop = event_loop_new();
    const char *why;
    dns_t *dns = mk(dead_fwd, NULL, NULL, 500, &why);
    struct got g = {0}, h[3];
    long long t0;
    dns_result_t *res;
    int done;

    memset(h, 0, sizeof(h));
    dns_attach(dns, loop);
    t0 = event_now_ms();
    dns_query(dns, "example.org", DNS_T_MX, got_cb, &g);
    done = run_until(loop, &g.called, 30000);
    ok(done, "a query to a forwarder that never answers ends (%lld ms)", event_now_ms() - t0);
    if (done) {
        is_str(dns_status_str(g.res->status), "TEMPFAIL", "  with TEMPFAIL");
        is_str(g.res->why, "timed out", "  timed out");
        is_int(g.res->nrr, 0, "  no records");
    }
    dns_result_free(&g.res);

    t0 = event_now_ms();
    res = dns_lookup(dns, "example.net", DNS_T_A);
    ok(res->status == DNS_TEMPFAIL && res->why && strcmp(res->why, "timed out") == 0,
       "the synchronous helper times out too (%lld ms)", event_now_ms() - t0);
    ok(event_now_ms() - t0 < 30000, "  within a generous bound");
    dns_result_free(&res);

    /* A stub zone is asked even where unbound has a built-in local zone
     * (it would answer NXDOMAIN at once): here it goes unanswered. */
    {
        char *stubs = xasprintf("invalid=%s 10.in-addr.arpa.=%s", dead_fwd, dead_fwd);
        dns_t *stubbed = mk("127.0.0.1@1", stubs, NULL, 500, &why);

        res = stubbed ? dns_lookup(stubbed, "host.invalid", DNS_T_A) : NULL;
        ok(res && res->status == DNS_TEMPFAIL, "a stub zone for invalid. is asked (%s)",
           res ? dns_status_str(res->status) : why);
        dns_result_free(&res);
        res = stubbed ? dns_lookup(stubbed, dns_reverse_name_tmp("10.1.2.3"), DNS_T_PTR) : NULL;
        ok(res && res->status == DNS_TEMPFAIL, "and one for 10.in-addr.arpa (%s)",
           res ? dns_status_str(res->status) : "no dns");
        dns_result_free(&res);
        res = stubbed ? dns_lookup(stubbed, "host.test", DNS_T_A) : NULL;
        ok(res && res->status == DNS_NXDOMAIN, "test. without a stub stays NXDOMAIN (%s)",
           res ? dns_status_str(res->status) : "no dns");
        dns_result_free(&res);
        dns_free(&stubbed);
        free(stubs);
    }

    /* Freeing with queries outstanding: no callbacks, nothing leaks. */
    for (int i = 0; i < 3; i++)
        dns_query(dns, i == 1 ? "example.com" : "example.org", DNS_T_MX, got_cb, &h[i]);
    run_for(loop, 50);
    dns_free(&dns);
    run_for(loop, 100);
    is_int(h[0].called + h[1].called + h[2].called, 0,
           "dns_free with queries outstanding calls no callback");

    /* And the same with libunbound never asked (only early results). */
    dns = mk(dead_fwd, NULL, NULL, 500, &why);
    dns_attach(dns, loop);
    dns_query(dns, "bad..name", DNS_T_MX, got_cb, &h[0]);
    dns_free(&dns);
    run_for(loop, 50);
    is_int(h[0].called, 0, "nor for an early result");
    event_loop_free(&loop);
}

int main(void)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t slen = sizeof(sin);
    int dead;

    msg_init("dns-test", MSG_STDERR);
    alarm(120);
    if (mkdtemp(tmpdir) == NULL) {
        diag("mkdtemp: %s", strerror(errno));
        return 2;
    }
    /* A UDP port that is bound and never read: queries there go unanswered. */
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((dead = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0
        || bind(dead, (struct sockaddr *)&sin, sizeof(sin)) < 0
        || getsockname(dead, (struct sockaddr *)&sin, &slen) < 0) {
        diag("dead socket: %s", strerror(errno));
        return 2;
    }
    snprintf(dead_fwd, sizeof(dead_fwd), "127.0.0.1@%u", ntohs(sin.sin_port));

    test_names();
    test_records();
    test_helpers();
    test_settings();
    test_local();
    test_cancel();
    test_misuse();
    test_timeout();

    close(dead);
    {
        char *cmd = xasprintf("rm -rf '%s'", tmpdir);

        if (system(cmd) != 0)
            diag("could not remove %s", tmpdir);
        free(cmd);
    }
    return done_testing();
}
