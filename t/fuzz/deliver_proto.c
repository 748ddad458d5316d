/*
 * fuzz/deliver_proto - libFuzzer harness for lib/deliver_proto.c: the
 * DELIVER_REQUEST decoder, which runs in the root local process (and in
 * every transport) on what qmgr (mail_owner) sends, and the
 * DELIVER_RESULT decoder qmgr runs on a transport's answers.
 *
 * Input layout: byte 0 is a control byte, the rest the payload (typed
 * fields, as ipc builds them):
 *   bit 0  decode as DELIVER_RESULT (else DELIVER_REQUEST)
 *   bit 1  a descriptor travels along (a memfd)
 *   bit 2  structured: the rest is lines "s TEXT" (a string field) and
 *          "i N" (an int field), put together with the real layout, so the
 *          fuzzer gets past the framing.
 *
 * Promises checked: a refused request leaves *why set, the request cleared
 * and its descriptor closed; an accepted one has every string set, 1 to
 * DELIVER_MAX_RCPTS recipients, flags 0, and re-encoded decodes to the
 * same fields; an accepted result has 1 to DELIVER_MAX_RCPTS statuses,
 * each of class 2, 4 or 5 with a dsn of that class and a known relayed
 * value (other than DELIVER_FINAL only for class 2), and re-encoded
 * decodes to the same.  No descriptor leaks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deliver_proto.h"
#include "ipc.h"
#include "fuzzlib.h"
#include "xalloc.h"

static void check_result(ipc_msg_t *m)
{
    struct deliver_result r, r2;
    ipc_msg_t *again;

    if (deliver_result_decode(m, &r) < 0)
        return;
    if (r.n < 1 || r.n > DELIVER_MAX_RCPTS || (r.site_class != 0 && r.site_class != 4)
        || !r.site_text || !r.relay)
        fuzz_fail("an accepted result breaks its rules: n %zu site %d", r.n, r.site_class);
    for (size_t i = 0; i < r.n; i++)
        if ((r.status[i].dsn_class != 2 && r.status[i].dsn_class != 4
             && r.status[i].dsn_class != 5)
            || !dsn_code_valid(r.status[i].dsn, r.status[i].dsn_class) || !r.status[i].text
            || r.status[i].relayed < DELIVER_FINAL || r.status[i].relayed > DELIVER_RELAYED_DSN
            || (r.status[i].relayed != DELIVER_FINAL && r.status[i].dsn_class != 2))
            fuzz_fail("an accepted status breaks its rules: class %d dsn %s relayed %d",
                      r.status[i].dsn_class, r.status[i].dsn ? r.status[i].dsn : "(null)",
                      r.status[i].relayed);
    again = deliver_result_encode(9, &r);
    if (deliver_result_decode(again, &r2) < 0) {
        fuzz_fail("a re-encoded result is refused");
    } else {
        int same = r2.n == r.n && strcmp(r.relay, r2.relay) == 0;

        for (size_t i = 0; same && i < r.n; i++)
            same = strcmp(r.status[i].dsn, r2.status[i].dsn) == 0
                   && r.status[i].relayed == r2.status[i].relayed;
        if (!same)
            fuzz_fail("a re-encoded result decodes differently");
    }
    deliver_result_free(&r2);
    ipc_msg_free(&again);
    deliver_result_free(&r);
}

static void check_request(ipc_msg_t *m)
{
    struct deliver_request r, r2;
    const char *why = NULL;
    ipc_msg_t *again;

    if (deliver_request_decode(m, &r, &why) < 0) {
        if (why == NULL)
            fuzz_fail("a refused request without a reason");
        if (r.queue_fd != -1 || r.queue_id || r.sender || r.nexthop || r.rcpts || r.nrcpt)
            fuzz_fail("a refused request is not cleared");
        return;
    }
    if (!r.queue_id || !r.sender || !r.nexthop || r.flags != 0 || r.nrcpt < 1
        || r.nrcpt > DELIVER_MAX_RCPTS || r.queue_fd < 0)
        fuzz_fail("an accepted request with a missing field, flags %d or %zu recipients",
                  r.flags, r.nrcpt);
    for (size_t i = 0; i < r.nrcpt; i++)
        if (!r.rcpts[i].address || !*r.rcpts[i].address || !r.rcpts[i].orig_recipient
            || r.rcpts[i].index < 0)
            fuzz_fail("an accepted request with a bad recipient %zu", i);
    again = deliver_request_encode(8, &r);
    again->fd = dup(r.queue_fd);
    if (deliver_request_decode(again, &r2, &why) < 0) {
        fuzz_fail("a re-encoded request is refused: %s", why);
    } else {
        if (strcmp(r.queue_id, r2.queue_id) || strcmp(r.sender, r2.sender)
            || strcmp(r.nexthop, r2.nexthop) || r.nrcpt != r2.nrcpt
            || strcmp(r.rcpts[r.nrcpt - 1].address, r2.rcpts[r.nrcpt - 1].address)
            || r.rcpts[0].index != r2.rcpts[0].index)
            fuzz_fail("a re-encoded request decodes differently");
        deliver_request_free(&r2);
    }
    ipc_msg_free(&again);
    deliver_request_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    int mark, ctl;
    ipc_msg_t *m;

    if (!inited) {
        fuzz_init();
        deliver_proto_init();
        inited = 1;
    }
    if (size < 1)
        return 0;
    ctl = data[0];
    mark = fuzz_fd_mark();
    m = fuzz_ipc_msg(ctl & 1 ? DELIVER_RESULT : DELIVER_REQUEST, data, size);
    if (ctl & 1)
        check_result(m);
    else
        check_request(m);
    ipc_msg_free(&m);
    fuzz_fd_check(mark);
    return 0;
}
