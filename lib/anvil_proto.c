/*
 * anvil_proto - message names and client calls of the anvil protocol (see
 * anvil_proto.h).  Replies are checked, never trusted.
 */
#include <errno.h>

#include "anvil_proto.h"
#include "ipc.h"

static const struct ipc_name anvil_proto_names[] = {
    {ANVIL_CONNECT, "anvil-connect"},
    {ANVIL_DISCONNECT, "anvil-disconnect"},
    {ANVIL_REPLY, "anvil-reply"},
};

void anvil_proto_init(void)
{
    ipc_register_names(anvil_proto_names,
                       sizeof(anvil_proto_names) / sizeof(anvil_proto_names[0]));
}

static int anvil_send(int sock, uint32_t type, const char *service, const char *addr)
{
    ipc_msg_t *m = ipc_msg_new(type, 0);
    int rc;

    ipc_put_str(m, service);
    ipc_put_str(m, addr);
    rc = ipc_send(sock, m, ANVIL_TIMEOUT_MS);
    ipc_msg_free(&m);
    return rc;
}

int anvil_connect(int sock, const char *service, const char *addr)
{
    ipc_msg_t *reply = NULL;
    int64_t count;
    int rc;

    if (anvil_send(sock, ANVIL_CONNECT, service, addr) < 0)
        return -1;
    rc = ipc_recv(sock, &reply, 4096, ANVIL_TIMEOUT_MS);
    if (rc <= 0) {
        if (rc == 0)
            errno = ECONNRESET;
        return -1;
    }
    rc = -1;
    if (reply->type == ANVIL_REPLY && reply->fd < 0 && ipc_get_int(reply, &count) == 0
        && ipc_get_end(reply) == 0 && count >= 1 && count <= 1000000000)
        rc = (int)count;
    else
        errno = EPROTO;
    ipc_msg_free(&reply);
    return rc;
}

int anvil_disconnect(int sock, const char *service, const char *addr)
{
    return anvil_send(sock, ANVIL_DISCONNECT, service, addr);
}
