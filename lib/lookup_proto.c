/*
 * lookup_proto - message names and the client call of the lookupd protocol
 * (see lookup_proto.h).
 */
#include <errno.h>
#include <stdlib.h>

#include "lookup_proto.h"

static const struct ipc_name lookup_proto_names[] = {
    {LOOKUP_RCPT, "lookup-rcpt"},
    {LOOKUP_REPLY, "lookup-reply"},
};

void lookup_proto_init(void)
{
    ipc_register_names(lookup_proto_names,
                       sizeof(lookup_proto_names) / sizeof(lookup_proto_names[0]));
}

int lookup_rcpt(int sock, const char *address, int timeout_ms)
{
    static uint32_t next_reqid;
    ipc_msg_t *m = ipc_msg_new(LOOKUP_RCPT, ++next_reqid);
    ipc_msg_t *reply = NULL;
    int64_t result;
    char *text = NULL;
    int rc;

    ipc_put_str(m, address);
    rc = ipc_send(sock, m, timeout_ms);
    ipc_msg_free(&m);
    if (rc < 0)
        return -1;
    rc = ipc_recv(sock, &reply, 64 * 1024, timeout_ms);
    if (rc <= 0) {
        if (rc == 0)
            errno = ECONNRESET;
        return -1;
    }
    rc = -1;
    if (reply->type == LOOKUP_REPLY && reply->reqid == next_reqid && reply->fd < 0
        && ipc_get_int(reply, &result) == 0 && ipc_get_str(reply, &text) == 0
        && ipc_get_end(reply) == 0
        && (result == LOOKUP_OK || result == LOOKUP_NOTFOUND || result == LOOKUP_TEMPFAIL))
        rc = (int)result;
    else
        errno = EPROTO;
    free(text);
    ipc_msg_free(&reply);
    return rc;
}
