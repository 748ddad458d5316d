/*
 * local_proto - encoding and decoding of the qmgr <-> local protocol (see
 * local_proto.h).  Decoding checks every field and never aborts.
 */
#include <ctype.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "local_proto.h"
#include "queue.h"
#include "xalloc.h"

static const struct ipc_name local_proto_names[] = {
    {LOCAL_DELIVER, "local-deliver"},
    {LOCAL_RESULT, "local-result"},
};

void local_proto_init(void)
{
    ipc_register_names(local_proto_names,
                       sizeof(local_proto_names) / sizeof(local_proto_names[0]));
}

ipc_msg_t *local_request_encode(uint32_t reqid, const char *queue_id, const char *sender,
                                const char *recipient, const char *orig_recipient,
                                int flags, int queue_fd)
{
    ipc_msg_t *m = ipc_msg_new(LOCAL_DELIVER, reqid);

    ipc_put_str(m, queue_id);
    ipc_put_str(m, sender);
    ipc_put_str(m, recipient);
    ipc_put_str(m, orig_recipient ? orig_recipient : "");
    ipc_put_int(m, flags);
    m->fd = queue_fd;           /* lent: the caller clears it before freeing */
    return m;
}

static int local_no_controls(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

int local_request_decode(ipc_msg_t *m, struct local_request *r, const char **why)
{
    int64_t flags;

    memset(r, 0, sizeof(*r));
    r->queue_fd = -1;
    *why = "malformed request";
    if (ipc_get_str(m, &r->queue_id) < 0 || ipc_get_str(m, &r->sender) < 0
        || ipc_get_str(m, &r->recipient) < 0 || ipc_get_str(m, &r->orig_recipient) < 0
        || ipc_get_int(m, &flags) < 0 || ipc_get_end(m) < 0)
        goto bad;
    if (!queue_id_valid(r->queue_id) || r->recipient[0] == '\0'
        || !local_no_controls(r->sender) || !local_no_controls(r->recipient)
        || !local_no_controls(r->orig_recipient) || flags != 0) {
        *why = "bad field";
        goto bad;
    }
    if ((r->queue_fd = ipc_take_fd(m)) < 0) {
        *why = "no queue file descriptor";
        goto bad;
    }
    return 0;
bad:
    local_request_free(r);
    return -1;
}

void local_request_free(struct local_request *r)
{
    free(r->queue_id);
    free(r->sender);
    free(r->recipient);
    free(r->orig_recipient);
    if (r->queue_fd >= 0)
        close(r->queue_fd);
    memset(r, 0, sizeof(*r));
    r->queue_fd = -1;
}

ipc_msg_t *local_result_encode(uint32_t reqid, int dsn_class, const char *dsn,
                               const char *text)
{
    ipc_msg_t *m = ipc_msg_new(LOCAL_RESULT, reqid);

    ipc_put_int(m, dsn_class);
    ipc_put_str(m, dsn);
    ipc_put_str(m, text);
    return m;
}

int local_result_decode(ipc_msg_t *m, struct local_result *r)
{
    int64_t cls;

    memset(r, 0, sizeof(*r));
    if (m->fd >= 0 || ipc_get_int(m, &cls) < 0 || ipc_get_str(m, &r->dsn) < 0
        || ipc_get_str(m, &r->text) < 0 || ipc_get_end(m) < 0
        || (cls != 2 && cls != 4 && cls != 5) || !dsn_code_valid(r->dsn, (int)cls)
        || !local_no_controls(r->text)) {
        local_result_free(r);
        return -1;
    }
    r->dsn_class = (int)cls;
    return 0;
}

void local_result_free(struct local_result *r)
{
    free(r->dsn);
    free(r->text);
    r->dsn = r->text = NULL;
}

/* RFC 3463: class "." subject "." detail; subject 1-3 digits, detail 1-3
 * digits, no leading zeros required or forbidden. */
int dsn_code_valid(const char *s, int dsn_class)
{
    int n, part;

    if (s[0] != '2' && s[0] != '4' && s[0] != '5')
        return 0;
    if (dsn_class != 0 && s[0] - '0' != dsn_class)
        return 0;
    if (s[1] != '.')
        return 0;
    s += 2;
    for (part = 0; part < 2; part++) {
        for (n = 0; isdigit((unsigned char)*s); s++)
            n++;
        if (n < 1 || n > 3)
            return 0;
        if (part == 0 && *s++ != '.')
            return 0;
    }
    return *s == '\0' && strlen(s) == 0;
}
