/*
 * fuzz/handover_proto - libFuzzer harness for lib/handover_proto.c: the
 * request decoder the mail half (root) runs on what a login half
 * (login_user, which faces the network) sends, and the reply decoder the
 * login half runs.
 *
 * Input layout: byte 0 is a control byte, the rest the payload:
 *   bit 0  decode a reply (else a request)
 *   bit 1  a descriptor travels along (a memfd)
 *   bit 2  structured: lines "s TEXT", "b TEXT", "i N" (fuzzlib.h)
 *   bit 3  the other message type
 *
 * Promises checked: a refusal has a reason and keeps nothing (no string,
 * no descriptor); an accepted request has a known service, a port of at
 * most 65535, flags within HANDOVER_F_ALL, input of at most
 * HANDOVER_INPUT_MAX octets, tag and mechanism within their limits and a
 * descriptor, and encoded again decodes to the same; an accepted reply has
 * a known result.  No descriptor leaks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "handover_proto.h"
#include "ipc.h"
#include "fuzzlib.h"
#include "xalloc.h"

static void check_request(ipc_msg_t *m)
{
    struct handover_request r, r2;
    const char *why = NULL;
    ipc_msg_t *again;

    if (handover_request_decode(m, &r, &why) < 0) {
        if (why == NULL)
            fuzz_fail("a refused request without a reason");
        if (r.service || r.client_addr || r.mech || r.tag || r.fd != -1)
            fuzz_fail("a refused request is not cleared");
        return;
    }
    if (strtoul(r.client_port, NULL, 10) > 65535 || (r.flags & ~(unsigned)HANDOVER_F_ALL)
        || r.input_len > HANDOVER_INPUT_MAX || strlen(r.tag) > HANDOVER_TAG_MAX
        || strlen(r.mech) > AUTH_MECH_MAX || *r.mech == '\0' || r.fd < 0)
        fuzz_fail("an accepted request breaks its rules");
    again = handover_request_encode(r.service, r.cookie, r.client_addr, r.client_port, r.flags,
                                    r.mech, r.tag, r.input, r.input_len, dup(r.fd));
    if (handover_request_decode(again, &r2, &why) < 0)
        fuzz_fail("a re-encoded request is refused: %s", why);
    else if (strcmp(r.service, r2.service) || memcmp(r.cookie, r2.cookie, AUTH_COOKIE_LEN)
             || strcmp(r.client_addr, r2.client_addr) || strcmp(r.client_port, r2.client_port)
             || r.flags != r2.flags || strcmp(r.mech, r2.mech) || strcmp(r.tag, r2.tag)
             || r.input_len != r2.input_len || memcmp(r.input, r2.input, r.input_len))
        fuzz_fail("a re-encoded request decodes differently");
    handover_request_clear(&r2);
    ipc_msg_free(&again);
    handover_request_clear(&r);
}

static void check_reply(ipc_msg_t *m)
{
    char *reason = NULL, *reason2 = NULL;
    const char *why = NULL;
    int result = -1, result2 = -1;
    ipc_msg_t *again;

    if (handover_reply_decode(m, &result, &reason, &why) < 0) {
        if (why == NULL || reason != NULL)
            fuzz_fail("a refused reply without a reason, or not cleared");
        return;
    }
    if (result != HANDOVER_OK && result != HANDOVER_FAIL && result != HANDOVER_TEMPFAIL)
        fuzz_fail("an accepted reply with result %d", result);
    again = handover_reply_encode(result, reason);
    if (handover_reply_decode(again, &result2, &reason2, &why) < 0 || result2 != result
        || strcmp(reason, reason2) != 0)
        fuzz_fail("a re-encoded reply decodes differently");
    free(reason);
    free(reason2);
    ipc_msg_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    int mark, ctl;
    uint32_t type;
    ipc_msg_t *m;

    if (!inited) {
        fuzz_init();
        handover_proto_init();
        inited = 1;
    }
    if (size < 1)
        return 0;
    ctl = data[0];
    type = (ctl & 1) != !!(ctl & 8) ? HANDOVER_REPLY : HANDOVER_REQUEST;
    mark = fuzz_fd_mark();
    m = fuzz_ipc_msg(type, data, size);
    if (ctl & 1)
        check_reply(m);
    else
        check_request(m);
    ipc_msg_free(&m);
    fuzz_fd_check(mark);
    return 0;
}
