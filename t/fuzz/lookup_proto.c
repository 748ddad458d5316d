/*
 * fuzz/lookup_proto - libFuzzer harness for lib/lookup_proto.c: the
 * request decoder lookupd runs on what every smtpd (network_user) sends
 * (LOOKUP_RCPT, LOOKUP_VIRTUAL, LOOKUP_CLIENT_NAME), and the
 * LOOKUP_NAME_REPLY decoder smtpd runs on lookupd's answers, whose name
 * goes into log lines and Received: headers.
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
 *
 * Promises checked: a refused message leaves *why set and the output
 * cleared; an accepted request has a known type and a non-empty address,
 * and for CLIENT_NAME an address that parses and is already in canonical
 * form; an accepted reply has a known result, a valid host name exactly
 * when OK, a text of at most LOOKUP_TEXT_LIMIT bytes without control
 * characters; both re-encode to what decodes to the same.  No descriptor
 * leaks.
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
    if ((r.type != LOOKUP_RCPT && r.type != LOOKUP_VIRTUAL && r.type != LOOKUP_CLIENT_NAME)
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
    m = fuzz_ipc_msg(ctl & 1 ? LOOKUP_NAME_REPLY : types[(ctl >> 3) & 3], data, size);
    if (ctl & 1)
        check_reply(m);
    else
        check_request(m);
    ipc_msg_free(&m);
    fuzz_fd_check(mark);
    return 0;
}
