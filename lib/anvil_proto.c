/*
 * anvil_proto - message names and client calls of the anvil protocol (see
 * anvil_proto.h).  Replies are checked, never trusted.
 */
#include <errno.h>
#include <stdint.h>

#include "anvil_proto.h"
#include "ipc.h"

static const struct ipc_name anvil_proto_names[] = {
    {ANVIL_CONNECT, "anvil-connect"},
    {ANVIL_DISCONNECT, "anvil-disconnect"},
    {ANVIL_REPLY, "anvil-reply"},
    {ANVIL_RATE, "anvil-rate"},
};

void anvil_proto_init(void)
{
    ipc_register_names(anvil_proto_names,
                       sizeof(anvil_proto_names) / sizeof(anvil_proto_names[0]));
}

/* Send a request; the numbers (nint of them) follow the two strings. */
static int anvil_send(int sock, uint32_t type, const char *service, const char *key,
                      const int64_t *ints, int nint)
{
    ipc_msg_t *m = ipc_msg_new(type, 0);
    int rc;

    ipc_put_str(m, service);
    ipc_put_str(m, key);
    for (int i = 0; i < nint; i++)
        ipc_put_int(m, ints[i]);
    rc = ipc_send(sock, m, ANVIL_TIMEOUT_MS);
    ipc_msg_free(&m);
    return rc;
}

/* Read an ANVIL_REPLY: its count if within [min, max], else -1 with errno. */
static long long anvil_reply(int sock, long long min, long long max)
{
    ipc_msg_t *reply = NULL;
    int64_t count;
    long long rc;
    int n;

    n = ipc_recv(sock, &reply, 4096, ANVIL_TIMEOUT_MS);
    if (n <= 0) {
        if (n == 0)
            errno = ECONNRESET;
        return -1;
    }
    rc = -1;
    if (reply->type == ANVIL_REPLY && reply->fd < 0 && ipc_get_int(reply, &count) == 0
        && ipc_get_end(reply) == 0 && count >= min && count <= max)
        rc = count;
    else
        errno = EPROTO;
    ipc_msg_free(&reply);
    return rc;
}

int anvil_connect(int sock, const char *service, const char *addr)
{
    if (anvil_send(sock, ANVIL_CONNECT, service, addr, NULL, 0) < 0)
        return -1;
    return (int)anvil_reply(sock, 1, 1000000000);
}

long long anvil_rate(int sock, const char *service, const char *key, int amount, int window_s)
{
    int64_t ints[2] = {amount, window_s};

    if (anvil_send(sock, ANVIL_RATE, service, key, ints, 2) < 0)
        return -1;
    return anvil_reply(sock, 0, INT64_MAX);
}

int anvil_disconnect(int sock, const char *service, const char *addr)
{
    return anvil_send(sock, ANVIL_DISCONNECT, service, addr, NULL, 0);
}
