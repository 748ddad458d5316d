/*
 * fuzz/local_proto - libFuzzer harness for lib/local_proto.c: the
 * LOCAL_DELIVER decoder, which runs in the root local process on what
 * qmgr (mail_owner) sends, and the LOCAL_RESULT decoder qmgr runs on
 * local's answers.
 *
 * Input layout: byte 0 is a control byte, the rest the payload (typed
 * fields, as ipc builds them):
 *   bit 0  decode as LOCAL_RESULT (else LOCAL_DELIVER)
 *   bit 1  a descriptor travels along (a memfd)
 *   bit 2  structured: the rest is lines "s TEXT" (a string field) and
 *          "i N" (an int field), put together with the real layout, so the
 *          fuzzer gets past the framing.
 *
 * Promises checked: a refused request leaves *why set, the request cleared
 * and its descriptor closed; an accepted one has every string set, flags
 * 0, and re-encoded decodes to the same fields; an accepted result has a
 * class of 2, 4 or 5 and a dsn of that class.  No descriptor leaks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzzlib.h"
#include "ipc.h"
#include "local_proto.h"
#include "xalloc.h"

static void structured(ipc_msg_t *m, const uint8_t *data, size_t size)
{
    char *text = xstrndup((const char *)data, size), *save = NULL;

    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == 's' && line[1] == ' ')
            ipc_put_str(m, line + 2);
        else if (line[0] == 'i' && line[1] == ' ')
            ipc_put_int(m, strtoll(line + 2, NULL, 10));
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    int mark, ctl;
    ipc_msg_t *m;

    if (!inited) {
        fuzz_init();
        local_proto_init();
        inited = 1;
    }
    if (size < 1)
        return 0;
    ctl = data[0];
    mark = fuzz_fd_mark();
    m = ipc_msg_new(ctl & 1 ? LOCAL_RESULT : LOCAL_DELIVER, 7);
    if (ctl & 4)
        structured(m, data + 1, size - 1);
    else
        buf_append(m->payload, data + 1, size - 1);
    if (ctl & 2) {
        int fd = memfd_create("fuzz", MFD_CLOEXEC);

        if (fd >= 0)
            ipc_set_fd(m, fd);
    }
    if (ctl & 1) {
        struct local_result r;

        if (local_result_decode(m, &r) == 0) {
            if ((r.dsn_class != 2 && r.dsn_class != 4 && r.dsn_class != 5)
                || !dsn_code_valid(r.dsn, r.dsn_class) || r.text == NULL)
                fuzz_fail("an accepted result breaks its rules: class %d dsn %s",
                          r.dsn_class, r.dsn ? r.dsn : "(null)");
            local_result_free(&r);
        }
    } else {
        struct local_request r;
        const char *why = NULL;

        if (local_request_decode(m, &r, &why) < 0) {
            if (why == NULL)
                fuzz_fail("a refused request without a reason");
            if (r.queue_fd != -1 || r.queue_id || r.sender || r.recipient)
                fuzz_fail("a refused request is not cleared");
        } else {
            ipc_msg_t *again;
            struct local_request r2;

            if (!r.queue_id || !r.sender || !r.recipient || !r.orig_recipient || r.flags != 0)
                fuzz_fail("an accepted request with a missing field or flags %d", r.flags);
            again = local_request_encode(8, r.queue_id, r.sender, r.recipient, r.orig_recipient,
                                         r.flags, -1);
            if (r.queue_fd >= 0)
                ipc_set_fd(again, dup(r.queue_fd));
            if (local_request_decode(again, &r2, &why) < 0)
                fuzz_fail("a re-encoded request is refused: %s", why);
            if (strcmp(r.queue_id, r2.queue_id) || strcmp(r.sender, r2.sender)
                || strcmp(r.recipient, r2.recipient)
                || strcmp(r.orig_recipient, r2.orig_recipient))
                fuzz_fail("a re-encoded request decodes differently");
            local_request_free(&r2);
            ipc_msg_free(&again);
            local_request_free(&r);
        }
    }
    ipc_msg_free(&m);
    fuzz_fd_check(mark);
    return 0;
}
