/*
 * t/unit/lookup_proto.c - unit tests for lib/lookup_proto.c: the
 * client-name rules (lookup_hostname_valid, lookup_addr_match with
 * IPv4-mapped addresses on either side), every request type encoded and
 * decoded back (a client address in canonical form), the recipient reply
 * (REMOTE only for RCPT), the client-name reply (texts cut to
 * LOOKUP_TEXT_LIMIT with control characters replaced) and the refusals of
 * each decoder; the transport_maps entries (lookup_transport_split) and the
 * transport reply (an entry only with OK, transport names and next hops
 * checked); and the client call lookup_client_name against a forked
 * server: an answer, a reply to another request, a server that never
 * answers (the total timeout), one that closes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dns.h"
#include "event.h"
#include "ipc.h"
#include "lookup_proto.h"
#include "msg.h"
#include "netaddr.h"
#include "xalloc.h"
#include "../lib/tap.h"

static void test_hostname(void)
{
    static const char *const good[] = {
        "good.test", "a", "localhost", "mx-1.example.org", "_spf.example.org", "Good-Case.Test",
        "host1.a1", "xn--bcher-kva.example", "1host.example", "a.b.c.d.e.f.g",
    };
    static const char *const bad[] = {
        "", ".", "good.test.", "-a.test", "a-.test", "a.-b.test", "a..b", ".a", "a b.test",
        "bad(name).test", "bad\\040name.test", "evil\\013\\010x.test", "evil\r\nx.test",
        "1.2.3.4", "127.0.0.1", "example.123", "42", "a/b.test", "a@b.test", "caf\xc3\xa9.test",
        "host:25", "[127.0.0.1]", "a*.test",
    };
    char label64[80], long_name[300];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ok(lookup_hostname_valid(good[i]), "valid host name: %s", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char shown[64];
        size_t n = 0;

        /* (TAP lines must not break: control characters shown as '?') */
        for (const char *p = bad[i]; *p && n < sizeof(shown) - 1; p++)
            shown[n++] = (unsigned char)*p < 0x20 ? '?' : *p;
        shown[n] = '\0';
        ok(!lookup_hostname_valid(bad[i]), "not a valid host name: '%s'", shown);
    }
    memset(label64, 'a', 63);
    strcpy(label64 + 63, ".test");
    ok(lookup_hostname_valid(label64), "a label of 63 characters");
    memset(label64, 'a', 64);
    strcpy(label64 + 64, ".test");
    ok(!lookup_hostname_valid(label64), "a label of 64 characters is not");
    /* 63 x 4 labels with dots = 255 characters: too long. */
    long_name[0] = '\0';
    for (int i = 0; i < 4; i++) {
        memset(label64, 'b', 63);
        label64[63] = '\0';
        if (i)
            strcat(long_name, ".");
        strcat(long_name, label64);
    }
    ok(!lookup_hostname_valid(long_name), "a name of %zu characters is not", strlen(long_name));
    long_name[253] = '\0';
    ok(lookup_hostname_valid(long_name), "a name of 253 characters is");
}

static struct dns_addr dns_addr_of(const char *text)
{
    struct dns_addr a;

    memset(&a, 0, sizeof(a));
    if (inet_pton(AF_INET, text, a.bytes) == 1)
        a.family = AF_INET;
    else if (inet_pton(AF_INET6, text, a.bytes) == 1)
        a.family = AF_INET6;
    return a;
}

static int match(const char *client, const char *record)
{
    struct netaddr na;
    struct dns_addr a = dns_addr_of(record);

    if (netaddr_parse(client, &na) < 0)
        return -1;
    return lookup_addr_match(&na, &a);
}

static void test_addr_match(void)
{
    struct netaddr raw;
    struct dns_addr a;

    is_int(match("127.0.0.5", "127.0.0.5"), 1, "IPv4: the same address");
    is_int(match("127.0.0.5", "127.0.0.6"), 0, "IPv4: another address");
    is_int(match("127.0.0.5", "::ffff:127.0.0.5"), 1, "IPv4 client, IPv4-mapped AAAA");
    is_int(match("127.0.0.5", "::ffff:127.0.0.6"), 0, "IPv4 client, another IPv4-mapped AAAA");
    is_int(match("127.0.0.5", "::127.0.0.5"), 0, "IPv4 client, IPv4-compatible AAAA: no");
    is_int(match("::ffff:127.0.0.5", "127.0.0.5"), 1, "IPv4-mapped client, A record");
    is_int(match("2001:db8::1", "2001:db8::1"), 1, "IPv6: the same address");
    is_int(match("2001:db8::1", "2001:db8:0:0::1"), 1, "IPv6: the same, written otherwise");
    is_int(match("2001:db8::1", "2001:db8::2"), 0, "IPv6: another address");
    is_int(match("::1", "127.0.0.1"), 0, "IPv6 loopback is not IPv4 loopback");
    is_int(match("::", "0.0.0.0"), 0, "the unspecified addresses differ too");
    is_int(match("2001:db8::7f00:5", "127.0.0.5"), 0, "an IPv6 address ending in the bytes: no");

    /* A struct netaddr that holds the mapped form itself (not normalized). */
    memset(&raw, 0, sizeof(raw));
    raw.family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:192.0.2.1", raw.bytes);
    a = dns_addr_of("192.0.2.1");
    ok(lookup_addr_match(&raw, &a), "an un-normalized IPv4-mapped client matches the A record");
    a = dns_addr_of("::ffff:192.0.2.1");
    ok(lookup_addr_match(&raw, &a), "and the mapped AAAA");
    a.family = 0;
    ok(!lookup_addr_match(&raw, &a), "a record of no family matches nothing");
}

/* Decode a request of type built from fields (layout: 's' str, 'i' int). */
static int request_of(uint32_t type, const char *layout, const char *s0, int fd,
                      struct lookup_request *r, const char **why)
{
    ipc_msg_t *m = ipc_msg_new(type, 3);
    int rc;

    for (; *layout; layout++)
        if (*layout == 's')
            ipc_put_str(m, s0);
        else
            ipc_put_int(m, 1);
    if (fd)
        ipc_set_fd(m, open("/dev/null", O_RDONLY | O_CLOEXEC));
    rc = lookup_request_decode(m, r, why);
    ipc_msg_free(&m);
    return rc;
}

static void test_requests(void)
{
    struct lookup_request r;
    const char *why = NULL;
    ipc_msg_t *m;
    static const struct {
        const char *in, *canon;
        int family;
    } addrs[] = {
        {"127.0.0.5", "127.0.0.5", AF_INET},
        {"::ffff:127.0.0.5", "127.0.0.5", AF_INET},
        {"2001:DB8:0::1", "2001:db8::1", AF_INET6},
        {"::1", "::1", AF_INET6},
    };

    m = lookup_request_encode(LOOKUP_RCPT, 11, "joe@example.test");
    ok(lookup_request_decode(m, &r, &why) == 0, "LOOKUP_RCPT decodes");
    is_int(r.type, LOOKUP_RCPT, "  type");
    is_int(r.reqid, 11, "  request id");
    is_str(r.address, "joe@example.test", "  address");
    lookup_request_clear(&r);
    ipc_msg_free(&m);

    m = lookup_request_encode(LOOKUP_TRANSPORT, 14, "Bob+x@Sub.Example.TEST");
    ok(lookup_request_decode(m, &r, &why) == 0 && r.type == LOOKUP_TRANSPORT
       && strcmp(r.address, "Bob+x@Sub.Example.TEST") == 0, "LOOKUP_TRANSPORT decodes");
    lookup_request_clear(&r);
    ipc_msg_free(&m);
    ok(request_of(LOOKUP_TRANSPORT, "s", "", 0, &r, &why) < 0, "LOOKUP_TRANSPORT without an "
       "address: refused");
    ok(request_of(LOOKUP_TRANSPORT_REPLY, "s", "a@b", 0, &r, &why) < 0,
       "a transport reply as a request: refused");

    m = lookup_request_encode(LOOKUP_VIRTUAL, 12, "ann@virtual.test");
    ok(lookup_request_decode(m, &r, &why) == 0 && r.type == LOOKUP_VIRTUAL
       && strcmp(r.address, "ann@virtual.test") == 0, "LOOKUP_VIRTUAL decodes");
    lookup_request_clear(&r);
    ipc_msg_free(&m);

    for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
        m = lookup_request_encode(LOOKUP_CLIENT_NAME, 13, addrs[i].in);
        ok(lookup_request_decode(m, &r, &why) == 0, "LOOKUP_CLIENT_NAME %s decodes", addrs[i].in);
        is_str(r.address, addrs[i].canon, "  in canonical form");
        is_int(r.client.family, addrs[i].family, "  family");
        lookup_request_clear(&r);
        ipc_msg_free(&m);
    }

    why = "";
    ok(request_of(LOOKUP_RCPT, "s", "", 0, &r, &why) < 0 && *why, "empty address: refused (%s)",
       why);
    ok(r.address == NULL, "  and the request is cleared");
    ok(request_of(LOOKUP_RCPT, "ss", "a@b", 0, &r, &why) < 0, "a field too many: refused");
    ok(request_of(LOOKUP_RCPT, "i", "a@b", 0, &r, &why) < 0, "an int for the address: refused");
    ok(request_of(LOOKUP_RCPT, "", "a@b", 0, &r, &why) < 0, "no field: refused");
    ok(request_of(LOOKUP_RCPT, "s", "a@b", 1, &r, &why) < 0, "with a descriptor: refused (%s)",
       why);
    ok(request_of(LOOKUP_REPLY, "s", "a@b", 0, &r, &why) < 0, "a reply type: refused (%s)", why);
    ok(request_of(0x777, "s", "a@b", 0, &r, &why) < 0, "an unknown type: refused");
    ok(request_of(LOOKUP_CLIENT_NAME, "s", "host.example", 0, &r, &why) < 0,
       "a client name request for a host name: refused (%s)", why);
    ok(request_of(LOOKUP_CLIENT_NAME, "s", "127.0.0.5 ", 0, &r, &why) < 0,
       "an address with a trailing blank: refused");
    ok(request_of(LOOKUP_CLIENT_NAME, "s", "[127.0.0.5]", 0, &r, &why) < 0,
       "an address in brackets: refused");
    ok(request_of(LOOKUP_CLIENT_NAME, "s", "127.0.0.0/8", 0, &r, &why) < 0,
       "a network: refused");
    ok(request_of(LOOKUP_CLIENT_NAME, "s",
                  "0000:0000:0000:0000:0000:0000:0000:0000:0000:0001", 0, &r, &why) < 0,
       "an overlong address: refused");
    ok(request_of(LOOKUP_CLIENT_NAME, "s", "127.0.0.5", 1, &r, &why) < 0,
       "a client name request with a descriptor: refused");
    ok(r.address == NULL && r.type == 0, "  cleared");
}

static void test_replies(void)
{
    int result;
    char *text;
    ipc_msg_t *m;

    m = lookup_reply_encode(4, LOOKUP_REMOTE, "remote.test is not one of our domains");
    ok(lookup_reply_decode(m, LOOKUP_RCPT, &result, &text) == 0 && result == LOOKUP_REMOTE,
       "LOOKUP_REPLY REMOTE answers LOOKUP_RCPT");
    is_str(text, "remote.test is not one of our domains", "  text");
    free(text);
    ipc_msg_free(&m);
    m = lookup_reply_encode(4, LOOKUP_REMOTE, "x");
    ok(lookup_reply_decode(m, LOOKUP_VIRTUAL, &result, &text) < 0 && text == NULL,
       "but not LOOKUP_VIRTUAL");
    ipc_msg_free(&m);
    m = lookup_reply_encode(4, LOOKUP_OK, "a@x.test,\tb@y.test");
    ok(lookup_reply_decode(m, LOOKUP_VIRTUAL, &result, &text) == 0 && result == LOOKUP_OK,
       "a virtual entry");
    is_str(text, "a@x.test,\tb@y.test", "  is data: kept as it is");
    free(text);
    ipc_msg_free(&m);
    m = lookup_reply_encode(4, 9, "x");
    ok(lookup_reply_decode(m, LOOKUP_RCPT, &result, &text) < 0, "an unknown result: refused");
    ipc_msg_free(&m);
}

/* A hand-built reply; reuse < 0 leaves that field out. */
static int name_reply_reuse(int64_t result, const char *name, const char *text, int64_t reuse,
                            int extra, struct lookup_name_reply *r, const char **why)
{
    ipc_msg_t *m = ipc_msg_new(LOOKUP_NAME_REPLY, 1);
    int rc;

    ipc_put_int(m, result);
    if (name)
        ipc_put_str(m, name);
    if (text)
        ipc_put_str(m, text);
    if (reuse >= 0)
        ipc_put_int(m, reuse);
    if (extra)
        ipc_put_int(m, 0);
    rc = lookup_name_reply_decode(m, r, why);
    ipc_msg_free(&m);
    if (rc == 0)
        lookup_name_reply_clear(r);
    return rc;
}

static int name_reply_of(int64_t result, const char *name, const char *text, int extra,
                         struct lookup_name_reply *r, const char **why)
{
    return name_reply_reuse(result, name, text, text ? 0 : -1, extra, r, why);
}

static void test_name_replies(void)
{
    struct lookup_name_reply in = {.result = LOOKUP_OK, .name = "good.test", .text = "",
                                   .reuse_ms = 42000}, out;
    const char *why = NULL;
    char big[LOOKUP_TEXT_LIMIT + 100];
    ipc_msg_t *m;

    m = lookup_name_reply_encode(21, &in);
    ok(lookup_name_reply_decode(m, &out, &why) == 0, "an OK name reply decodes");
    is_int(out.result, LOOKUP_OK, "  result");
    is_str(out.name, "good.test", "  name");
    is_str(out.text, "", "  text");
    is_int(out.reuse_ms, 42000, "  reuse time");
    lookup_name_reply_clear(&out);
    ipc_msg_free(&m);
    in.reuse_ms = 0;

    ok(name_reply_reuse(LOOKUP_NOTFOUND, "", "", LOOKUP_NAME_REUSE_MAX_MS, 0, &out, &why) == 0,
       "a NOTFOUND reply reusable for LOOKUP_NAME_REUSE_MAX_MS decodes");
    ok(name_reply_reuse(LOOKUP_OK, "good.test", "", LOOKUP_NAME_REUSE_MAX_MS + 1, 0, &out,
                        &why) < 0, "a longer reuse time: refused (%s)", why);
    ok(name_reply_reuse(LOOKUP_OK, "good.test", "", -5, 0, &out, &why) < 0,
       "the reuse time missing: refused");
    ok(name_reply_reuse(LOOKUP_TEMPFAIL, "", "", 1000, 0, &out, &why) < 0,
       "a temporary failure with a reuse time: refused (%s)", why);

    in.result = LOOKUP_NOTFOUND;
    in.name = NULL;
    in.text = "hostname liar.test does not resolve to address 127.0.0.6\r\nX-Evil: 1";
    m = lookup_name_reply_encode(22, &in);
    ok(lookup_name_reply_decode(m, &out, &why) == 0, "a NOTFOUND reply with a text decodes");
    is_str(out.name, "", "  no name");
    is_str(out.text, "hostname liar.test does not resolve to address 127.0.0.6??X-Evil: 1",
           "  control characters in the text are replaced");
    lookup_name_reply_clear(&out);
    ipc_msg_free(&m);

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    in.result = LOOKUP_TEMPFAIL;
    in.text = big;
    m = lookup_name_reply_encode(23, &in);
    ok(lookup_name_reply_decode(m, &out, &why) == 0, "a long text is cut and decodes");
    is_int(strlen(out.text), LOOKUP_TEXT_LIMIT, "  to LOOKUP_TEXT_LIMIT bytes");
    lookup_name_reply_clear(&out);
    ipc_msg_free(&m);

    ok(name_reply_of(LOOKUP_OK, "good.test", "", 0, &out, &why) == 0, "hand-built OK reply");
    ok(name_reply_of(LOOKUP_OK, "", "", 0, &out, &why) < 0, "OK without a name: refused (%s)",
       why);
    ok(out.name == NULL && out.text == NULL, "  cleared");
    ok(name_reply_of(LOOKUP_OK, "bad(name).test", "", 0, &out, &why) < 0,
       "OK with a name that is not a host name: refused (%s)", why);
    ok(name_reply_of(LOOKUP_OK, "good.test\r\nX: y", "", 0, &out, &why) < 0,
       "OK with a name with CR LF: refused");
    ok(name_reply_of(LOOKUP_OK, "1.2.3.4", "", 0, &out, &why) < 0,
       "OK with a numeric name: refused");
    ok(name_reply_of(LOOKUP_NOTFOUND, "good.test", "", 0, &out, &why) < 0,
       "NOTFOUND with a name: refused (%s)", why);
    ok(name_reply_of(LOOKUP_REMOTE, "", "", 0, &out, &why) < 0, "REMOTE: refused");
    ok(name_reply_of(-1, "", "", 0, &out, &why) < 0, "result -1: refused");
    ok(name_reply_of(LOOKUP_TEMPFAIL, "", "a\nb", 0, &out, &why) < 0,
       "a text with a newline: refused (%s)", why);
    ok(name_reply_of(LOOKUP_TEMPFAIL, "", big, 0, &out, &why) < 0, "a text too long: refused");
    ok(name_reply_of(LOOKUP_TEMPFAIL, "", NULL, 0, &out, &why) < 0, "a missing text: refused");
    ok(name_reply_of(LOOKUP_TEMPFAIL, "", "", 1, &out, &why) < 0, "a field too many: refused");
    m = lookup_name_reply_encode(24, &(struct lookup_name_reply){.result = LOOKUP_NOTFOUND});
    m->type = LOOKUP_REPLY;
    ok(lookup_name_reply_decode(m, &out, &why) < 0, "another type: refused");
    ipc_msg_free(&m);
}

/* A server on the other end of a socketpair: read one request, then act. */
enum serve_how { SERVE_ANSWER, SERVE_OTHER_ID, SERVE_SILENT, SERVE_CLOSE };

static pid_t serve(int sock, enum serve_how how)
{
    pid_t pid = fork();

    if (pid == 0) {
        ipc_msg_t *m = NULL, *reply;
        struct lookup_request req;
        struct lookup_name_reply r = {.result = LOOKUP_OK, .name = "good.test", .text = ""};
        const char *why;

        if (ipc_recv(sock, &m, IPC_MAX_PAYLOAD, 5000) != 1
            || lookup_request_decode(m, &req, &why) < 0)
            _exit(1);
        if (how == SERVE_CLOSE)
            _exit(0);
        if (how == SERVE_SILENT) {
            sleep(5);
            _exit(0);
        }
        reply = lookup_name_reply_encode(how == SERVE_OTHER_ID ? req.reqid + 1 : req.reqid, &r);
        ipc_send(sock, reply, 5000);
        _exit(0);
    }
    return pid;
}

static void test_client(void)
{
    struct lookup_name_reply r;
    long long t0;
    int sv[2], rc;
    pid_t pid;

    static const struct {
        enum serve_how how;
        int want, err;
        const char *what;
    } cases[] = {
        {SERVE_ANSWER, LOOKUP_OK, 0, "an answer"},
        {SERVE_OTHER_ID, -1, EPROTO, "a reply to another request: EPROTO"},
        {SERVE_CLOSE, -1, ECONNRESET, "a server that closes: ECONNRESET"},
        {SERVE_SILENT, -1, ETIMEDOUT, "a server that never answers: ETIMEDOUT"},
    };

    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
            msg_fatal("socketpair: %m");
        pid = serve(sv[1], cases[i].how);
        close(sv[1]);
        t0 = event_now_ms();
        errno = 0;
        rc = lookup_client_name(sv[0], "127.0.0.5", &r, 300);
        is_int(rc, cases[i].want, "lookup_client_name: %s", cases[i].what);
        if (rc < 0) {
            is_int(errno, cases[i].err, "  errno");
            ok(r.name == NULL && r.text == NULL, "  nothing returned");
        } else {
            is_str(r.name, "good.test", "  the name");
        }
        ok(event_now_ms() - t0 < 2000, "  within the timeout (%lld ms)", event_now_ms() - t0);
        lookup_name_reply_clear(&r);
        close(sv[0]);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}

/* Split value; "transport|nexthop", or "-1: why". */
static char *split(const char *value)
{
    static char out[2048];
    char *t, *n;
    const char *why = NULL;

    if (lookup_transport_split(value, &t, &n, &why) < 0) {
        snprintf(out, sizeof(out), "-1: %s%s", why, t || n ? " (and parts left)" : "");
        return out;
    }
    snprintf(out, sizeof(out), "%s|%s", t, n);
    free(t);
    free(n);
    return out;
}

static int transport_reply_of(int64_t result, const char *transport, const char *nexthop,
                              const char *text, int extra, const char **why)
{
    struct lookup_transport_reply r;
    ipc_msg_t *m = ipc_msg_new(LOOKUP_TRANSPORT_REPLY, 1);
    int rc;

    ipc_put_int(m, result);
    if (transport)
        ipc_put_str(m, transport);
    if (nexthop)
        ipc_put_str(m, nexthop);
    if (text)
        ipc_put_str(m, text);
    if (extra)
        ipc_put_int(m, 0);
    rc = lookup_transport_reply_decode(m, &r, why);
    ipc_msg_free(&m);
    if (rc < 0 && (r.transport || r.nexthop || r.text || r.result))
        rc = -2;                /* refused but not cleared */
    lookup_transport_reply_clear(&r);
    return rc;
}

static void test_transport(void)
{
    struct lookup_transport_reply in = {.result = LOOKUP_OK, .transport = "smtp",
                                        .nexthop = "[127.0.0.2]:2525",
                                        .text = "example.test in hash:/etc/transport"}, out;
    char big[LOOKUP_NEXTHOP_LIMIT + 2], name[LOOKUP_TRANSPORT_NAME_MAX + 2], *value;
    const char *why = NULL;
    ipc_msg_t *m;

    is_str(split("smtp:[127.0.0.2]:2525"), "smtp|[127.0.0.2]:2525",
           "split at the first ':' only");
    is_str(split("smtp:[ipv6:::1]:25"), "smtp|[ipv6:::1]:25", "  an IPv6 next hop");
    is_str(split("  smtp:mx.example.test \t"), "smtp|mx.example.test", "  blanks around dropped");
    is_str(split("smtp:"), "smtp|", "an empty next hop");
    is_str(split(":[gw.example.test]"), "|[gw.example.test]", "an empty transport");
    is_str(split(":"), "|", "both empty");
    is_str(split("local"), "local|", "no ':': all transport");
    is_str(split("error:5.1.1\tUser unknown: gone"), "error|5.1.1 User unknown: gone",
           "error text: a tab counts as a space, later colons are text");
    is_str(split("sm tp:x"), "-1: transport name with characters other than letters, digits, "
           "'.', '_' and '-'", "a blank in the transport: refused");
    is_str(split("smtp:a\001b"), "-1: control character in the next hop",
           "a control character in the next hop: refused");
    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    value = xasprintf("%s:x", name);
    like(split(value), "-1: transport name too long", "a transport name too long: refused");
    free(value);
    memset(big, 'h', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    value = xasprintf("smtp:%s", big);
    like(split(value), "-1: next hop too long", "a next hop too long: refused");
    free(value);
    value = xasprintf("smtp:%s", big + 1);
    like(split(value), "smtp|hhh", "  one byte less: accepted");
    free(value);

    m = lookup_transport_reply_encode(31, &in);
    ok(lookup_transport_reply_decode(m, &out, &why) == 0, "an OK transport reply decodes");
    is_int(out.result, LOOKUP_OK, "  result");
    is_str(out.transport, "smtp", "  transport");
    is_str(out.nexthop, "[127.0.0.2]:2525", "  next hop");
    is_str(out.text, "example.test in hash:/etc/transport", "  text");
    lookup_transport_reply_clear(&out);
    ipc_msg_free(&m);
    in = (struct lookup_transport_reply){.result = LOOKUP_TEMPFAIL,
                                         .text = "hash:/x: cannot open\r\nX: y"};
    m = lookup_transport_reply_encode(32, &in);
    ok(lookup_transport_reply_decode(m, &out, &why) == 0 && out.result == LOOKUP_TEMPFAIL
       && *out.transport == '\0' && *out.nexthop == '\0', "a TEMPFAIL reply decodes, no entry");
    is_str(out.text, "hash:/x: cannot open??X: y", "  control characters in the text replaced");
    lookup_transport_reply_clear(&out);
    ipc_msg_free(&m);

    ok(transport_reply_of(LOOKUP_OK, "", "", "", 0, &why) == 0, "OK with an empty entry (\":\")");
    ok(transport_reply_of(LOOKUP_NOTFOUND, "", "", "not found", 0, &why) == 0, "NOTFOUND");
    is_int(transport_reply_of(LOOKUP_NOTFOUND, "smtp", "", "", 0, &why), -1,
           "NOTFOUND with a transport: refused and cleared (%s)", why);
    is_int(transport_reply_of(LOOKUP_TEMPFAIL, "", "x", "", 0, &why), -1,
           "TEMPFAIL with a next hop: refused and cleared");
    is_int(transport_reply_of(LOOKUP_REMOTE, "", "", "", 0, &why), -1, "REMOTE: refused");
    is_int(transport_reply_of(LOOKUP_OK, "sm/tp", "", "", 0, &why), -1,
           "a transport with '/': refused (%s)", why);
    is_int(transport_reply_of(LOOKUP_OK, "smtp", "a\nb", "", 0, &why), -1,
           "a next hop with a newline: refused (%s)", why);
    is_int(transport_reply_of(LOOKUP_OK, "smtp", big, "", 0, &why), -1,
           "a next hop too long: refused");
    is_int(transport_reply_of(LOOKUP_OK, "smtp", "x", "a\rb", 0, &why), -1,
           "a text with CR: refused");
    is_int(transport_reply_of(LOOKUP_OK, "smtp", "x", NULL, 0, &why), -1, "a missing text: refused");
    is_int(transport_reply_of(LOOKUP_OK, "smtp", "x", "", 1, &why), -1, "a field too many: refused");
    m = lookup_transport_reply_encode(33, &(struct lookup_transport_reply){.result = LOOKUP_OK});
    m->type = LOOKUP_REPLY;
    ok(lookup_transport_reply_decode(m, &out, &why) < 0, "another type: refused");
    ipc_msg_free(&m);
}

int main(void)
{
    msg_init("lookup-proto-test", MSG_STDERR);
    lookup_proto_init();
    test_hostname();
    test_addr_match();
    test_requests();
    test_replies();
    test_name_replies();
    test_transport();
    test_client();
    return done_testing();
}
