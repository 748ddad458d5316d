/*
 * handover_proto - encoding and decoding of the login hand-over (see
 * handover_proto.h).  Decoding checks every field and never aborts.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "handover_proto.h"
#include "netaddr.h"
#include "xalloc.h"

static const struct ipc_name handover_proto_names[] = {
    {HANDOVER_REQUEST, "handover-request"},
    {HANDOVER_REPLY, "handover-reply"},
    {HANDOVER_IDLE, "handover-idle"},
};

void handover_proto_init(void)
{
    ipc_register_names(handover_proto_names,
                       sizeof(handover_proto_names) / sizeof(handover_proto_names[0]));
}

/* Printable ASCII (no space when !spaces), at most max octets. */
static int handover_text_ok(const char *s, size_t max, int spaces)
{
    size_t n = 0;

    for (; *s; s++, n++)
        if ((unsigned char)*s < (spaces ? 0x20 : 0x21) || (unsigned char)*s > 0x7e || n >= max)
            return 0;
    return 1;
}

ipc_msg_t *handover_request_encode(const char *service, const unsigned char *cookie,
                                   const char *client_addr, const char *client_port,
                                   unsigned flags, const char *mech, const char *tag,
                                   const void *input, size_t input_len, int fd)
{
    ipc_msg_t *m = ipc_msg_new(HANDOVER_REQUEST, 0);

    ipc_put_str(m, service);
    ipc_put_bytes(m, cookie, AUTH_COOKIE_LEN);
    ipc_put_str(m, client_addr);
    ipc_put_str(m, client_port);
    ipc_put_int(m, flags);
    ipc_put_str(m, mech);
    ipc_put_str(m, tag);
    ipc_put_bytes(m, input, input_len);
    ipc_set_fd(m, fd);
    return m;
}

void handover_request_clear(struct handover_request *r)
{
    free(r->service);
    free(r->client_addr);
    free(r->client_port);
    free(r->mech);
    free(r->tag);
    if (r->fd >= 0)
        close(r->fd);
    memset(r, 0, sizeof(*r));
    r->fd = -1;
}

int handover_request_decode(ipc_msg_t *m, struct handover_request *r, const char **why)
{
    const void *cookie;
    size_t cookie_len;
    struct netaddr na;
    int64_t flags;
    char *end;
    unsigned long port;

    memset(r, 0, sizeof(*r));
    r->fd = -1;
    *why = NULL;
    if (m->type != HANDOVER_REQUEST) {
        *why = "not a hand-over request";
        return -1;
    }
    if (ipc_get_str(m, &r->service) < 0 || ipc_get_bytes(m, &cookie, &cookie_len) < 0
        || ipc_get_str(m, &r->client_addr) < 0 || ipc_get_str(m, &r->client_port) < 0
        || ipc_get_int(m, &flags) < 0 || ipc_get_str(m, &r->mech) < 0
        || ipc_get_str(m, &r->tag) < 0 || ipc_get_bytes(m, &r->input, &r->input_len) < 0
        || ipc_get_end(m) < 0)
        *why = "malformed hand-over request";
    else if (strcmp(r->service, AUTH_SERVICE_POP3) != 0
             && strcmp(r->service, AUTH_SERVICE_IMAP) != 0)
        *why = "unknown service";
    else if (cookie_len != AUTH_COOKIE_LEN)
        *why = "bad cookie length";
    else if (netaddr_parse(r->client_addr, &na) < 0)
        *why = "bad client address";
    else if ((port = strtoul(r->client_port, &end, 10)) > 65535 || *end != '\0'
             || !isdigit((unsigned char)r->client_port[0]))
        *why = "bad client port";
    else if (flags < 0 || (flags & ~(int64_t)HANDOVER_F_ALL) != 0)
        *why = "bad flags";
    else if (*r->mech == '\0' || !handover_text_ok(r->mech, AUTH_MECH_MAX, 0))
        *why = "bad mechanism";
    else if (!handover_text_ok(r->tag, HANDOVER_TAG_MAX, 0))
        *why = "bad tag";
    else if (r->input_len > HANDOVER_INPUT_MAX)
        *why = "too much input";
    else if ((r->fd = ipc_take_fd(m)) < 0)
        *why = "no descriptor";
    if (*why) {
        handover_request_clear(r);
        return -1;
    }
    memcpy(r->cookie, cookie, AUTH_COOKIE_LEN);
    r->flags = (unsigned)flags;
    return 0;
}

ipc_msg_t *handover_reply_encode(int result, const char *reason)
{
    ipc_msg_t *m = ipc_msg_new(HANDOVER_REPLY, 0);

    ipc_put_int(m, result);
    ipc_put_str(m, reason);
    return m;
}

int handover_reply_decode(ipc_msg_t *m, int *result, char **reason, const char **why)
{
    int64_t res;

    *reason = NULL;
    *why = NULL;
    if (m->type != HANDOVER_REPLY || ipc_get_int(m, &res) < 0 || ipc_get_str(m, reason) < 0
        || ipc_get_end(m) < 0)
        *why = "malformed hand-over reply";
    else if (res != HANDOVER_OK && res != HANDOVER_FAIL && res != HANDOVER_TEMPFAIL)
        *why = "bad result";
    else if (!handover_text_ok(*reason, HANDOVER_REASON_MAX, 1))
        *why = "bad reason";
    if (*why) {
        free(*reason);
        *reason = NULL;
        return -1;
    }
    *result = (int)res;
    return 0;
}

ipc_msg_t *handover_idle_encode(uint64_t received)
{
    ipc_msg_t *m = ipc_msg_new(HANDOVER_IDLE, 0);

    ipc_put_int(m, (int64_t)received);
    return m;
}

int handover_idle_decode(ipc_msg_t *m, uint64_t *received, const char **why)
{
    int64_t n;

    *why = NULL;
    if (m->type != HANDOVER_IDLE || ipc_get_int(m, &n) < 0 || ipc_get_end(m) < 0)
        *why = "malformed idle report";
    else if (n < 1)
        *why = "bad connection count";
    if (*why)
        return -1;
    *received = (uint64_t)n;
    return 0;
}
