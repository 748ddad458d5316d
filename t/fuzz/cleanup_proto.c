/*
 * fuzz/cleanup_proto - libFuzzer harness for lib/cleanup_proto.c:
 * cleanup_request_decode, the decoder every cleanup peer's request goes
 * through, and its privilege rules (cleanup_proto.h).
 *
 * Input layout: byte 0 is a control byte, the rest the request:
 *   bits 0-1  the peer class: 0 network, 1 local (a maildrop file), 2 or 3
 *             trusted (mail_owner, root)
 *   bit 2     no content descriptor (else a memfd travels along)
 *   bit 3     raw: the rest is the payload as is (typed fields)
 * Otherwise the rest is lines, each one field of a request that is put
 * together with the real layout (so the fuzzer gets past the framing):
 *   "f N"  flags        "s TEXT" sender     "e TEXT" envid    "r N" ret
 *   "a NAME=VALUE"      an attribute (the count is the number given)
 *   "R ADDR"            a recipient (orig, orcpt empty, notify 0)
 *   "n N"  a recipient's notify for the last R     "l N" content length
 *   "x N"  an extra int field at the end, "X TEXT" an extra string field
 * Missing fields get a harmless default (sender "", one recipient).
 *
 * Promises checked: a refused request leaves *why set, the request freed
 * and its descriptor closed; an accepted one meets every rule again
 * (cleanup_request_check with the same class), and a peer that is not
 * trusted got no flag but the network's hide_client, no attribute outside its table, no
 * submit_uid/submit_user/maildrop_id from the network, a client_addr from
 * the network, submit_uid and submit_user from a maildrop file; no
 * attribute twice; re-encoded, it decodes to the same fields.  No
 * descriptor leaks.  A broken promise aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cleanup_proto.h"
#include "fuzzlib.h"
#include "ipc.h"
#include "queue.h"
#include "xalloc.h"

static int memfd(void)
{
    int fd = memfd_create("fuzz", MFD_CLOEXEC);

    if (fd >= 0 && write(fd, "x\r\n", 3) != 3) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* The request r in cleanup_submit's layout. */
static ipc_msg_t *encode(const struct cleanup_request *r)
{
    ipc_msg_t *m = ipc_msg_new(CLEANUP_SUBMIT, 1);

    ipc_put_int(m, r->flags);
    ipc_put_str(m, r->sender ? r->sender : "");
    ipc_put_str(m, r->envid ? r->envid : "");
    ipc_put_int(m, r->ret);
    ipc_put_int(m, (int64_t)r->nattr);
    for (size_t i = 0; i < r->nattr; i++) {
        ipc_put_str(m, r->attr_names[i]);
        ipc_put_str(m, r->attr_values[i]);
    }
    ipc_put_int(m, (int64_t)r->nrcpt);
    for (size_t i = 0; i < r->nrcpt; i++) {
        ipc_put_str(m, r->rcpts[i].address);
        ipc_put_str(m, r->rcpts[i].orig);
        ipc_put_str(m, r->rcpts[i].orcpt);
        ipc_put_int(m, r->rcpts[i].notify);
    }
    ipc_put_int(m, (int64_t)r->content_len);
    return m;
}

/* Put a request together from the line format. */
static ipc_msg_t *build(const uint8_t *p, size_t n)
{
    struct cleanup_request r;
    ipc_msg_t *m;
    char *text = xstrndup((const char *)p, n), *save = NULL, *line;
    int64_t extra_int = 0;
    char *extra_str = NULL;
    int has_extra_int = 0;

    cleanup_request_init(&r);
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        const char *v = line[0] && line[1] == ' ' ? line + 2 : "";
        char *eq;

        switch (line[0]) {
        case 'f': r.flags = (int)strtol(v, NULL, 0); break;
        case 's': free(r.sender); r.sender = xstrdup(v); break;
        case 'e': free(r.envid); r.envid = xstrdup(v); break;
        case 'r': r.ret = (int)strtol(v, NULL, 0); break;
        case 'a':
            if (r.nattr < 100) {
                eq = strchr(v, '=');
                if (eq) {
                    *eq = '\0';
                    cleanup_request_attr(&r, v, eq + 1);
                } else {
                    cleanup_request_attr(&r, v, "");
                }
            }
            break;
        case 'R':
            if (r.nrcpt < 100)
                cleanup_request_rcpt(&r, v, "", "", 0);
            break;
        case 'n':
            if (r.nrcpt > 0)
                r.rcpts[r.nrcpt - 1].notify = (unsigned)strtoul(v, NULL, 0);
            break;
        case 'l': r.content_len = strtoull(v, NULL, 0); break;
        case 'x': extra_int = strtoll(v, NULL, 0); has_extra_int = 1; break;
        case 'X': free(extra_str); extra_str = xstrdup(v); break;
        default: break;
        }
    }
    if (r.nrcpt == 0)
        cleanup_request_rcpt(&r, "u@example.test", "", "", 0);
    m = encode(&r);
    if (has_extra_int)
        ipc_put_int(m, extra_int);
    if (extra_str)
        ipc_put_str(m, extra_str);
    free(extra_str);
    cleanup_request_free(&r);
    free(text);
    return m;
}

static int allowed(const char *name, enum cleanup_peer peer)
{
    static const char *const net[] = {
        "client_name", "client_addr", "client_port", "helo_name", "protocol",
        "tls_protocol", "tls_cipher", "tls_bits", "sasl_username", NULL,
    };
    static const char *const local[] = {"submit_uid", "submit_user", "helo_name", "protocol",
                                        NULL};
    const char *const *t = peer == CLEANUP_PEER_NETWORK ? net : local;

    if (peer == CLEANUP_PEER_TRUSTED)
        return 1;
    for (; *t; t++)
        if (strcmp(*t, name) == 0)
            return 1;
    return 0;
}

static void check_accepted(const struct cleanup_request *r, enum cleanup_peer peer)
{
    const char *why = NULL, *addr;
    struct cleanup_request again;
    ipc_msg_t *m;

    if (cleanup_request_check(r, peer, &why) < 0)
        fuzz_fail("decoded, but the check refuses it: %s", why);
    if (r->nrcpt < 1 || r->nrcpt > CLEANUP_MAX_RCPTS || r->nattr > CLEANUP_MAX_ATTRS
        || r->content_fd < 0)
        fuzz_fail("decoded a request out of bounds");
    if ((r->flags & ~CLEANUP_FLAGS)
        || (peer == CLEANUP_PEER_NETWORK && (r->flags & ~CLEANUP_FLAG_HIDE_CLIENT))
        || (peer == CLEANUP_PEER_LOCAL && r->flags))
        fuzz_fail("flags %d accepted from class %d", r->flags, (int)peer);
    for (size_t i = 0; i < r->nattr; i++) {
        if (!allowed(r->attr_names[i], peer))
            fuzz_fail("attribute %s accepted from class %d", r->attr_names[i], (int)peer);
        for (size_t k = 0; k < i; k++)
            if (strcmp(r->attr_names[i], r->attr_names[k]) == 0)
                fuzz_fail("attribute %s accepted twice", r->attr_names[i]);
    }
    addr = cleanup_request_get_attr(r, QUEUE_ATTR_CLIENT_ADDR);
    if (peer == CLEANUP_PEER_NETWORK && (addr == NULL || *addr == '\0'))
        fuzz_fail("a network request without client_addr accepted");
    if (peer == CLEANUP_PEER_LOCAL && (!cleanup_request_get_attr(r, QUEUE_ATTR_SUBMIT_UID)
                                       || !cleanup_request_get_attr(r, QUEUE_ATTR_SUBMIT_USER)))
        fuzz_fail("a maildrop request without submit_uid/submit_user accepted");

    /* Encoded again it must decode to the same. */
    m = encode(r);
    ipc_set_fd(m, memfd());
    if (m->fd < 0) {
        ipc_msg_free(&m);
        return;
    }
    if (cleanup_request_decode(m, peer, &again, &why) < 0)
        fuzz_fail("re-encoded request refused: %s", why);
    if (strcmp(again.sender, r->sender) != 0 || strcmp(again.envid, r->envid) != 0
        || again.flags != r->flags || again.ret != r->ret || again.nattr != r->nattr
        || again.nrcpt != r->nrcpt || again.content_len != r->content_len)
        fuzz_fail("re-encoded request differs");
    for (size_t i = 0; i < r->nattr; i++)
        if (strcmp(again.attr_names[i], r->attr_names[i]) != 0
            || strcmp(again.attr_values[i], r->attr_values[i]) != 0)
            fuzz_fail("re-encoded attribute %zu differs", i);
    for (size_t i = 0; i < r->nrcpt; i++)
        if (strcmp(again.rcpts[i].address, r->rcpts[i].address) != 0
            || again.rcpts[i].notify != r->rcpts[i].notify)
            fuzz_fail("re-encoded recipient %zu differs", i);
    cleanup_request_free(&again);
    ipc_msg_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum cleanup_peer classes[] = {
        CLEANUP_PEER_NETWORK, CLEANUP_PEER_LOCAL, CLEANUP_PEER_TRUSTED, CLEANUP_PEER_TRUSTED,
    };
    struct cleanup_request r;
    enum cleanup_peer peer;
    const char *why = NULL;
    ipc_msg_t *m;
    int mark;

    if (size < 1)
        return 0;
    peer = classes[data[0] & 3];
    mark = fuzz_fd_mark();
    if (data[0] & 8) {
        m = ipc_msg_new(CLEANUP_SUBMIT, 1);
        buf_append(m->payload, data + 1, size - 1);
    } else {
        m = build(data + 1, size - 1);
    }
    if (!(data[0] & 4))
        ipc_set_fd(m, memfd());
    if (cleanup_request_decode(m, peer, &r, &why) == 0) {
        if (m->fd >= 0)
            fuzz_fail("decode left the descriptor in the message");
        check_accepted(&r, peer);
        cleanup_request_free(&r);
    } else {
        if (why == NULL)
            fuzz_fail("refused without a reason");
        if (r.sender != NULL || r.nattr != 0 || r.nrcpt != 0 || r.content_fd != -1)
            fuzz_fail("a refused request was not freed");
    }
    ipc_msg_free(&m);
    fuzz_fd_check(mark);
    return 0;
}
