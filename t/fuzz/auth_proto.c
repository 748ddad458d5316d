/*
 * fuzz/auth_proto - libFuzzer harness for lib/auth_proto.c: the request
 * decoder authd runs on what submission and the login halves send (they
 * face the network), and the reply decoder those run on authd's answers.
 *
 * Input layout: byte 0 is a control byte, the rest the payload:
 *   bit 0  decode a reply (else a request)
 *   bit 1  a descriptor travels along (a memfd): always refused
 *   bit 2  structured: lines "s TEXT", "b TEXT", "i N" (fuzzlib.h)
 *   bits 3-5  the message type: START, STEP, CANCEL, REDEEM, or unknown
 *          ones (requests); CONTINUE, DONE, REDEEMED, or unknown ones
 *          (replies)
 *
 * Promises checked: a refusal has a reason and leaves the structure
 * cleared; an accepted START names a known service, an upper-case
 * mechanism of at most AUTH_MECH_MAX characters, flags within AUTH_F_ALL,
 * channel binding data only with a type, at most AUTH_CB_MAX octets, and at
 * most AUTH_DATA_MAX octets of initial response (none without the flag);
 * an accepted DONE has a known result, a user exactly when OK, texts
 * within their limits and a cookie only with OK; an accepted REDEEM a known
 * service, a cookie of AUTH_COOKIE_LEN and a positive process id; an
 * accepted REDEEMED OK or FAIL, a user exactly when OK; anything accepted,
 * encoded again, decodes to the same.  No descriptor leaks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth_proto.h"
#include "ipc.h"
#include "fuzzlib.h"
#include "xalloc.h"

static void check_request(ipc_msg_t *m)
{
    struct auth_request r, r2;
    const char *why = NULL;
    ipc_msg_t *again = NULL;

    if (auth_request_decode(m, &r, &why) < 0) {
        if (why == NULL)
            fuzz_fail("a refused request without a reason");
        if (r.service || r.mech || r.client_addr || r.cb_type || r.data || r.cb_data)
            fuzz_fail("a refused request is not cleared");
        return;
    }
    if (r.type == AUTH_START) {
        if (!r.service || !r.mech || !r.client_addr || !r.cb_type
            || strlen(r.mech) > AUTH_MECH_MAX || (r.flags & ~(unsigned)AUTH_F_ALL)
            || r.cb_len > AUTH_CB_MAX || (*r.cb_type == '\0') != (r.cb_len == 0)
            || r.data_len > AUTH_DATA_MAX || (!r.has_data && r.data_len))
            fuzz_fail("an accepted START breaks its rules");
        for (const char *p = r.mech; *p; p++)
            if (*p >= 'a' && *p <= 'z')
                fuzz_fail("a mechanism name in lower case: %s", r.mech);
        again = auth_start_encode(5, r.service, r.mech, r.client_addr, r.flags, r.cb_type,
                                  r.cb_data, r.cb_len, r.has_data, r.data, r.data_len);
    } else if (r.type == AUTH_STEP) {
        if (r.data_len > AUTH_DATA_MAX)
            fuzz_fail("an accepted STEP over the limit");
        again = auth_step_encode(5, r.data, r.data_len);
    } else if (r.type == AUTH_CANCEL) {
        again = auth_cancel_encode(5);
    } else if (r.type == AUTH_REDEEM) {
        if (!r.service || r.data_len != AUTH_COOKIE_LEN || r.login_pid <= 0)
            fuzz_fail("an accepted REDEEM breaks its rules");
        again = auth_redeem_encode(5, r.service, r.data, r.login_pid);
    } else {
        fuzz_fail("an accepted request of type %u", r.type);
    }
    if (again) {
        if (auth_request_decode(again, &r2, &why) < 0)
            fuzz_fail("a re-encoded request is refused: %s", why);
        else if (r2.type != r.type || r2.data_len != r.data_len
                 || (r.data_len && memcmp(r.data, r2.data, r.data_len) != 0)
                 || (r.type == AUTH_START
                     && (strcmp(r.mech, r2.mech) || strcmp(r.client_addr, r2.client_addr)
                         || r.flags != r2.flags || r.cb_len != r2.cb_len))
                 || (r.type == AUTH_REDEEM
                     && (strcmp(r.service, r2.service) || r.login_pid != r2.login_pid)))
            fuzz_fail("a re-encoded request decodes differently");
        auth_request_clear(&r2);
        ipc_msg_free(&again);
    }
    auth_request_clear(&r);
}

static void check_reply(ipc_msg_t *m)
{
    struct auth_reply r, r2;
    const char *why = NULL;
    ipc_msg_t *again;

    if (auth_reply_decode(m, &r, &why) < 0) {
        if (why == NULL)
            fuzz_fail("a refused reply without a reason");
        if (r.user || r.reason || r.data)
            fuzz_fail("a refused reply is not cleared");
        return;
    }
    if (r.data_len > AUTH_DATA_MAX)
        fuzz_fail("an accepted reply over the limit");
    if (r.type == AUTH_DONE) {
        if ((r.result != AUTH_OK && r.result != AUTH_FAIL && r.result != AUTH_TEMPFAIL)
            || !r.user || !r.reason || (r.result == AUTH_OK) != (*r.user != '\0')
            || strlen(r.user) > AUTH_USER_MAX || strlen(r.reason) > AUTH_REASON_MAX
            || (r.has_cookie && r.result != AUTH_OK))
            fuzz_fail("an accepted DONE breaks its rules");
        again = auth_done_encode(6, r.result, r.user, r.data, r.data_len, r.reason,
                                 r.has_cookie ? r.cookie : NULL);
    } else if (r.type == AUTH_REDEEMED) {
        if ((r.result != AUTH_OK && r.result != AUTH_FAIL) || !r.user
            || (r.result == AUTH_OK) != (*r.user != '\0') || strlen(r.user) > AUTH_USER_MAX)
            fuzz_fail("an accepted REDEEMED breaks its rules");
        again = auth_redeemed_encode(6, r.result, r.user);
    } else {
        again = auth_continue_encode(6, r.data, r.data_len);
    }
    if (auth_reply_decode(again, &r2, &why) < 0)
        fuzz_fail("a re-encoded reply is refused: %s", why);
    else if (r2.type != r.type || r2.data_len != r.data_len || r2.result != r.result
             || (r.type == AUTH_DONE
                 && (strcmp(r.user, r2.user) || strcmp(r.reason, r2.reason)
                     || r.has_cookie != r2.has_cookie
                     || memcmp(r.cookie, r2.cookie, sizeof(r.cookie))))
             || (r.type == AUTH_REDEEMED && strcmp(r.user, r2.user)))
        fuzz_fail("a re-encoded reply decodes differently");
    auth_reply_clear(&r2);
    ipc_msg_free(&again);
    auth_reply_clear(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t requests[] = { AUTH_START, AUTH_STEP, AUTH_CANCEL, AUTH_REDEEM,
                                         AUTH_DONE, 0x1234, AUTH_START, AUTH_REDEEM };
    static const uint32_t replies[] = { AUTH_CONTINUE, AUTH_DONE, AUTH_REDEEMED, AUTH_START,
                                        0x1234, AUTH_REDEEM, AUTH_DONE, AUTH_REDEEMED };
    static int inited;
    int mark, ctl;
    ipc_msg_t *m;

    if (!inited) {
        fuzz_init();
        auth_proto_init();
        inited = 1;
    }
    if (size < 1)
        return 0;
    ctl = data[0];
    mark = fuzz_fd_mark();
    m = fuzz_ipc_msg((ctl & 1 ? replies : requests)[(ctl >> 3) & 7], data, size);
    if (ctl & 1)
        check_reply(m);
    else
        check_request(m);
    ipc_msg_free(&m);
    fuzz_fd_check(mark);
    return 0;
}
