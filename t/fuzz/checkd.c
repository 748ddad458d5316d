/*
 * fuzz/checkd - libFuzzer harness for what checkd is fed: the requests
 * smtpd sends (lib/check_proto's decoders), and the message content and
 * DNS key records that reach libopendkim through lib/dkimverify, whose
 * results go into the Authentication-Results field (lib/authres).
 *
 * Input layout: byte 0 is a control byte.
 *   bit 0 clear: the rest is key records, one a line, up to an empty
 *       line, then the message.  Key lookups are answered from those
 *       records in turn (an empty list: not found; a record "TEMP": a
 *       temporary failure).  bit 1 sets max_sigs to 1, else 10.
 *   bit 0 set: the rest is a request's payload as ipc builds it (bit 1:
 *       CHECK_MESSAGE with a memfd, else CHECK_SPF), and also the
 *       CHECK_SPF_RESULT and CHECK_MESSAGE_RESULT decoders smtpd runs.
 *
 * Promises checked: every signature gets one of the RFC 8601 DKIM words;
 * no more key lookups than max_sigs; the field built from the results
 * has no control character, folds only before methods and reads back
 * with our authserv-id;
 * accepted requests have bounded fields and, for CHECK_MESSAGE, a
 * descriptor; refused ones are cleared.  No descriptor leaks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authres.h"
#include "buf.h"
#include "check_proto.h"
#include "dkimverify.h"
#include "fuzzlib.h"
#include "ipc.h"
#include "xalloc.h"

static char **keys;
static size_t nkeys, next_key, nlookups;

static enum dkimverify_key lookup(void *ctx, const char *name, char *buf, size_t size)
{
    (void)ctx;
    (void)name;
    nlookups++;
    if (nkeys == 0)
        return DKIMVERIFY_KEY_NOTFOUND;
    if (strcmp(keys[next_key % nkeys], "TEMP") == 0) {
        next_key++;
        return DKIMVERIFY_KEY_TEMPFAIL;
    }
    strlcpy(buf, keys[next_key++ % nkeys], size);
    return DKIMVERIFY_KEY_OK;
}

static void check_field(const buf_t *b)
{
    char *id = NULL;

    buf_t *folded = buf_new(0);

    for (size_t i = 0; i < b->len; i++)
        if ((unsigned char)b->data[i] < 32 || b->data[i] == 127)
            fuzz_fail("a control character in the value");
    authres_fold(folded, buf_cstr(b));
    for (size_t i = 0; i < folded->len; i++)
        if (folded->data[i] == '\r' && !(i + 2 < folded->len && folded->data[i + 1] == '\n'
                                         && folded->data[i + 2] == '\t'))
            fuzz_fail("a line break that is not a fold in the field");
    buf_free(&folded);
    if (authres_authserv_id(b->data, b->len, &id) < 0 || strcmp(id, "mx.example.test") != 0)
        fuzz_fail("the field does not read back with our authserv-id");
    free(id);
}

static void run_message(const uint8_t *data, size_t size, size_t max_sigs)
{
    static dkimverify_t *v;
    struct dkimverify_outcome o;
    const char *why = NULL;
    const uint8_t *p = data, *end = data + size, *nl;
    buf_t *ar = buf_new(0);
    int fd;

    if (v == NULL && (v = dkimverify_new(lookup, NULL, &why)) == NULL)
        fuzz_fail("dkimverify_new: %s", why);
    nkeys = next_key = nlookups = 0;
    while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL && nl > p) {
        keys = xreallocarray(keys, nkeys + 1, sizeof(*keys));
        keys[nkeys++] = xstrndup((const char *)p, (size_t)(nl - p));
        p = nl + 1;
    }
    if (p < end && *p == '\n')
        p++;
    fd = memfd_create("m", MFD_CLOEXEC);
    if (fd < 0 || write(fd, p, (size_t)(end - p)) != end - p)
        return;
    if (dkimverify_message(v, fd, (uint64_t)(end - p), max_sigs, &o) < 0)
        fuzz_fail("dkimverify_message failed on a readable descriptor");
    close(fd);
    if (nlookups > max_sigs)
        fuzz_fail("%zu key lookups for at most %zu signatures", nlookups, max_sigs);
    authres_begin(ar, "mx.example.test");
    for (size_t i = 0; i < o.nsig; i++) {
        const char *r = o.sigs[i].result;

        if (strcmp(r, "pass") && strcmp(r, "fail") && strcmp(r, "neutral") && strcmp(r, "policy")
            && strcmp(r, "permerror") && strcmp(r, "temperror"))
            fuzz_fail("signature result '%s'", r);
        authres_add(ar, "dkim", r, o.sigs[i].comment, "header.d", o.sigs[i].domain,
                    "header.s", o.sigs[i].selector, "header.a", o.sigs[i].algorithm,
                    "header.b", o.sigs[i].b, NULL);
    }
    authres_end(ar);
    check_field(ar);
    dkimverify_outcome_clear(&o);
    buf_free(&ar);
    for (size_t i = 0; i < nkeys; i++)
        free(keys[i]);
}

static void run_request(const uint8_t *data, size_t size, int message)
{
    ipc_msg_t *m = ipc_msg_new(message ? CHECK_MESSAGE : CHECK_SPF, 0);
    struct check_spf_request sq;
    struct check_message_request mq;
    struct check_spf_result sr;
    struct check_message_result mr;

    /* The payload is the fuzz input itself. */
    buf_append(m->payload, data, size);
    if (message)
        ipc_set_fd(m, memfd_create("c", MFD_CLOEXEC));
    if (message) {
        if (check_message_request_decode(m, &mq) == 0) {
            if (mq.content_fd < 0 || strlen(mq.sender) > CHECK_FIELD_MAX)
                fuzz_fail("accepted message request without a descriptor or too long");
            check_message_request_clear(&mq);
        } else if (mq.client_addr || mq.content_fd >= 0) {
            fuzz_fail("a refused message request is not cleared");
        }
    } else if (check_spf_request_decode(m, &sq) == 0) {
        if (strlen(sq.client_addr) > CHECK_FIELD_MAX || strlen(sq.helo) > CHECK_FIELD_MAX)
            fuzz_fail("accepted spf request with a field too long");
        check_spf_request_clear(&sq);
    } else if (sq.client_addr || sq.helo || sq.sender) {
        fuzz_fail("a refused spf request is not cleared");
    }
    ipc_msg_free(&m);
    m = ipc_msg_new(CHECK_SPF_RESULT, 0);
    buf_append(m->payload, data, size);
    if (check_spf_result_decode(m, &sr) == 0) {
        if (sr.result < 0 || sr.result > CHECK_SPF_LAST)
            fuzz_fail("spf result out of range");
        check_spf_result_clear(&sr);
    }
    ipc_msg_free(&m);
    m = ipc_msg_new(CHECK_MESSAGE_RESULT, 0);
    buf_append(m->payload, data, size);
    if (check_message_result_decode(m, &mr) == 0) {
        if (mr.dmarc < 0 || mr.dmarc > CHECK_DMARC_LAST || mr.disposition < 0
            || mr.disposition > CHECK_DISPOSITION_LAST)
            fuzz_fail("message result out of range");
        check_message_result_clear(&mr);
    }
    ipc_msg_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int initialized;
    int mark;

    if (!initialized) {
        fuzz_init();
        check_proto_init();
        initialized = 1;
    }
    if (size < 1)
        return 0;
    mark = fuzz_fd_mark();
    if (data[0] & 1)
        run_request(data + 1, size - 1, (data[0] & 2) != 0);
    else
        run_message(data + 1, size - 1, (data[0] & 2) ? 1 : 10);
    fuzz_fd_check(mark);
    return 0;
}
