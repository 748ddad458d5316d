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
    {LOOKUP_VIRTUAL, "lookup-virtual"},
};

void lookup_proto_init(void)
{
    ipc_register_names(lookup_proto_names,
                       sizeof(lookup_proto_names) / sizeof(lookup_proto_names[0]));
}

/* One request with one address; the reply's result and text. */
static int lookup_ask(int sock, uint32_t type, const char *address, char **text, int timeout_ms)
{
    static uint32_t next_reqid;
    ipc_msg_t *m = ipc_msg_new(type, ++next_reqid);
    ipc_msg_t *reply = NULL;
    int64_t result;
    int rc;

    *text = NULL;
    ipc_put_str(m, address);
    rc = ipc_send(sock, m, timeout_ms);
    ipc_msg_free(&m);
    if (rc < 0)
        return -1;
    rc = ipc_recv(sock, &reply, IPC_MAX_PAYLOAD, timeout_ms);
    if (rc <= 0) {
        if (rc == 0)
            errno = ECONNRESET;
        return -1;
    }
    rc = -1;
    if (reply->type == LOOKUP_REPLY && reply->reqid == next_reqid && reply->fd < 0
        && ipc_get_int(reply, &result) == 0 && ipc_get_str(reply, text) == 0
        && ipc_get_end(reply) == 0
        && (result == LOOKUP_OK || result == LOOKUP_NOTFOUND || result == LOOKUP_TEMPFAIL
            || (result == LOOKUP_REMOTE && type == LOOKUP_RCPT))) {
        rc = (int)result;
    } else {
        errno = EPROTO;
        free(*text);
        *text = NULL;
    }
    ipc_msg_free(&reply);
    return rc;
}

int lookup_rcpt(int sock, const char *address, int timeout_ms)
{
    char *text;
    int rc = lookup_ask(sock, LOOKUP_RCPT, address, &text, timeout_ms);

    free(text);
    return rc;
}

int lookup_virtual(int sock, const char *address, char **value, int timeout_ms)
{
    int rc = lookup_ask(sock, LOOKUP_VIRTUAL, address, value, timeout_ms);

    if (rc != LOOKUP_OK) {
        free(*value);
        *value = NULL;
    }
    return rc;
}
