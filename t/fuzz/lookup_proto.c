/*
 * fuzz/lookup_proto - libFuzzer harness for lib/lookup_proto.c: the
 * request decoder lookupd runs on what every smtpd (network_user) sends
 * (LOOKUP_RCPT, LOOKUP_VIRTUAL, LOOKUP_TRANSPORT, LOOKUP_CLIENT_NAME), the
 * LOOKUP_NAME_REPLY decoder smtpd runs on lookupd's answers, whose name
 * goes into log lines and Received: headers, and the
 * LOOKUP_TRANSPORT_REPLY decoder qmgr runs, whose next hop goes to the
 * transports and whose texts go into log lines and bounces.
 *
 * Input layout: byte 0 is a control byte, the rest the payload (typed
 * fields, as ipc builds them):
 *   bit 0     decode as LOOKUP_NAME_REPLY (else a request)
 *   bit 1     a descriptor travels along (a memfd)
 *   bit 2     structured: the rest is lines "s TEXT" (a string field) and
 *             "i N" (an int field), put together with the real layout, so
 *             the fuzzer gets past the framing
 *   bits 3-4  the request's type: RCPT, VIRTUAL, CLIENT_NAME, or the
 *             reply type (which must be refused)
 *   bit 5     transport: with bit 0 decode as LOOKUP_TRANSPORT_REPLY, else
 *             the request's type is LOOKUP_TRANSPORT
 *
 * Promises checked: a refused message leaves *why set and the output
 * cleared; an accepted request has a known type and a non-empty address,
 * and for CLIENT_NAME an address that parses and is already in canonical
 * form; an accepted reply has a known result, a valid host name exactly
 * when OK, a text of at most LOOKUP_TEXT_LIMIT bytes without control
 * characters; an accepted transport reply has a known result, an entry
 * only when OK, a transport name of at most LOOKUP_TRANSPORT_NAME_MAX
 * letters, digits, '.', '_', '-', a next hop of at most
 * LOOKUP_NEXTHOP_LIMIT bytes and texts without control characters, and
 * "transport:nexthop" splits back into the same parts
 * (lookup_transport_split); all re-encode to what decodes to the same.
 * No descriptor leaks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipc.h"
#include "fuzzlib.h"
#include "lookup_proto.h"
#include "xalloc.h"

static void check_request(ipc_msg_t *m)
{
    struct lookup_request r, r2;
    const char *why = NULL;
    ipc_msg_t *again;

    if (lookup_request_decode(m, &r, &why) < 0) {
        if (why == NULL)
            fuzz_fail("a refused request without a reason");
        if (r.address || r.type || r.reqid)
            fuzz_fail("a refused request is not cleared");
        return;
    }
    if ((r.type != LOOKUP_RCPT && r.type != LOOKUP_VIRTUAL && r.type != LOOKUP_TRANSPORT
         && r.type != LOOKUP_CLIENT_NAME)
        || r.address == NULL || r.address[0] == '\0')
        fuzz_fail("an accepted request of type %#x with a missing address", r.type);
    if (r.type == LOOKUP_CLIENT_NAME) {
        struct netaddr na;

        if (netaddr_parse(r.address, &na) < 0 || na.family != r.client.family
            || memcmp(na.bytes, r.client.bytes, sizeof(na.bytes)) != 0)
            fuzz_fail("an accepted client address that does not parse back: %s", r.address);
    }
    again = lookup_request_encode(r.type, r.reqid, r.address);
    if (lookup_request_decode(again, &r2, &why) < 0)
        fuzz_fail("a re-encoded request is refused: %s", why);
    else if (r2.type != r.type || strcmp(r2.address, r.address) != 0)
        fuzz_fail("a re-encoded request decodes differently: %s / %s", r.address, r2.address);
    lookup_request_clear(&r2);
    ipc_msg_free(&again);
    lookup_request_clear(&r);
}

static void check_reply(ipc_msg_t *m)
{
    struct lookup_name_reply r, r2;
    const char *why = NULL;
    ipc_msg_t *again;

    if (lookup_name_reply_decode(m, &r, &why) < 0) {
        if (why == NULL)
            fuzz_fail("a refused reply without a reason");
        if (r.name || r.text)
            fuzz_fail("a refused reply is not cleared");
        return;
    }
    if (r.result != LOOKUP_OK && r.result != LOOKUP_NOTFOUND && r.result != LOOKUP_TEMPFAIL)
        fuzz_fail("an accepted reply with result %d", r.result);
    if (r.result == LOOKUP_OK ? !lookup_hostname_valid(r.name) || strlen(r.name) > 253
                              : r.name[0] != '\0')
        fuzz_fail("an accepted reply with result %d and name '%s'", r.result, r.name);
    if (strlen(r.text) > LOOKUP_TEXT_LIMIT)
        fuzz_fail("an accepted reply with a text of %zu bytes", strlen(r.text));
    for (const char *p = r.text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            fuzz_fail("an accepted reply with a control character in its text");
    for (const char *p = r.name; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p >= 0x7f || *p == '(' || *p == ')' || *p == '['
            || *p == ']' || *p == '\\' || *p == '"' || *p == ';' || *p == '<' || *p == '>')
            fuzz_fail("an accepted name with a character headers must not get: '%s'", r.name);
    again = lookup_name_reply_encode(5, &r);
    if (lookup_name_reply_decode(again, &r2, &why) < 0)
        fuzz_fail("a re-encoded reply is refused: %s", why);
    else if (r2.result != r.result || strcmp(r2.name, r.name) || strcmp(r2.text, r.text))
        fuzz_fail("a re-encoded reply decodes differently");
    lookup_name_reply_clear(&r2);
    ipc_msg_free(&again);
    lookup_name_reply_clear(&r);
}

static void no_controls(const char *what, const char *s)
{
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            fuzz_fail("an accepted transport reply with a control character in its %s", what);
}

static void check_transport_reply(ipc_msg_t *m)
{
    struct lookup_transport_reply r, r2;
    const char *why = NULL;
    ipc_msg_t *again;
    char *value, *t, *n;

    if (lookup_transport_reply_decode(m, &r, &why) < 0) {
        if (why == NULL)
            fuzz_fail("a refused transport reply without a reason");
        if (r.transport || r.nexthop || r.text || r.result)
            fuzz_fail("a refused transport reply is not cleared");
        return;
    }
    if (r.result != LOOKUP_OK && r.result != LOOKUP_NOTFOUND && r.result != LOOKUP_TEMPFAIL)
        fuzz_fail("an accepted transport reply with result %d", r.result);
    if (r.result != LOOKUP_OK && (r.transport[0] || r.nexthop[0]))
        fuzz_fail("an accepted transport reply with an entry and result %d", r.result);
    if (strlen(r.transport) > LOOKUP_TRANSPORT_NAME_MAX
        || strspn(r.transport, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  "0123456789._-") != strlen(r.transport))
        fuzz_fail("an accepted transport name '%s'", r.transport);
    if (strlen(r.nexthop) > LOOKUP_NEXTHOP_LIMIT || strlen(r.text) > LOOKUP_TEXT_LIMIT)
        fuzz_fail("an accepted transport reply with a next hop or text too long");
    no_controls("next hop", r.nexthop);
    no_controls("text", r.text);
    /* The value lookupd would have split it from splits back the same,
     * but for blanks at the end (the split drops them). */
    value = xasprintf("%s:%s", r.transport, r.nexthop);
    if (lookup_transport_split(value, &t, &n, &why) < 0)
        fuzz_fail("an accepted entry does not split: %s", why);
    {
        size_t len = strlen(r.nexthop);

        while (len > 0 && r.nexthop[len - 1] == ' ')
            len--;
        if (strcmp(t, r.transport) != 0 || strlen(n) != len || strncmp(n, r.nexthop, len) != 0)
            fuzz_fail("an accepted entry splits differently: '%s' '%s'", t, n);
    }
    free(t);
    free(n);
    free(value);
    again = lookup_transport_reply_encode(9, &r);
    if (lookup_transport_reply_decode(again, &r2, &why) < 0)
        fuzz_fail("a re-encoded transport reply is refused: %s", why);
    else if (r2.result != r.result || strcmp(r2.transport, r.transport)
             || strcmp(r2.nexthop, r.nexthop) || strcmp(r2.text, r.text))
        fuzz_fail("a re-encoded transport reply decodes differently");
    lookup_transport_reply_clear(&r2);
    ipc_msg_free(&again);
    lookup_transport_reply_clear(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t types[4] = {LOOKUP_RCPT, LOOKUP_VIRTUAL, LOOKUP_CLIENT_NAME,
                                      LOOKUP_NAME_REPLY};
    static int inited;
    int mark, ctl;
    ipc_msg_t *m;

    if (!inited) {
        fuzz_init();
        lookup_proto_init();
        inited = 1;
    }
    if (size < 1)
        return 0;
    ctl = data[0];
    mark = fuzz_fd_mark();
    if (ctl & 0x20)
        m = fuzz_ipc_msg(ctl & 1 ? LOOKUP_TRANSPORT_REPLY : LOOKUP_TRANSPORT, data, size);
    else
        m = fuzz_ipc_msg(ctl & 1 ? LOOKUP_NAME_REPLY : types[(ctl >> 3) & 3], data, size);
    if ((ctl & 0x21) == 0x21)
        check_transport_reply(m);
    else if (ctl & 1)
        check_reply(m);
    else
        check_request(m);
    ipc_msg_free(&m);
    fuzz_fd_check(mark);
    return 0;
}
