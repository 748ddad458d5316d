/*
 * qmgr_proto - both halves of the qmgr protocol (see qmgr_proto.h).
 * Decoding checks every field and never aborts.
 */
#include <stdlib.h>
#include <string.h>

#include "ipc.h"
#include "qmgr_proto.h"
#include "queue.h"

static const struct ipc_name qmgr_proto_names[] = {
    {QMGR_NOTIFY, "qmgr-notify"},
    {QMGR_FLUSH, "qmgr-flush"},
    {QMGR_DELETE, "qmgr-delete"},
    {QMGR_HOLD, "qmgr-hold"},
    {QMGR_RELEASE, "qmgr-release"},
    {QMGR_REPLY, "qmgr-reply"},
};

void qmgr_proto_init(void)
{
    ipc_register_names(qmgr_proto_names,
                       sizeof(qmgr_proto_names) / sizeof(qmgr_proto_names[0]));
}

ipc_msg_t *qmgr_notify_encode(const char *queue_id)
{
    ipc_msg_t *m = ipc_msg_new(QMGR_NOTIFY, 0);

    ipc_put_str(m, queue_id);
    return m;
}

int qmgr_notify_decode(ipc_msg_t *m, char **queue_id)
{
    *queue_id = NULL;
    if (m->type != QMGR_NOTIFY || m->fd >= 0 || ipc_get_str(m, queue_id) < 0
        || ipc_get_end(m) < 0 || !queue_id_valid(*queue_id)) {
        free(*queue_id);
        *queue_id = NULL;
        return -1;
    }
    return 0;
}

int qmgr_flush_domain_valid(const char *s)
{
    size_t n = strlen(s);

    if (n > 255)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')
              || *s == '-' || *s == '.'))
            return 0;
    return 1;
}

ipc_msg_t *qmgr_control_encode(uint32_t type, uint32_t reqid, const char *arg)
{
    ipc_msg_t *m = ipc_msg_new(type, reqid);

    ipc_put_str(m, arg ? arg : "");
    return m;
}

int qmgr_control_decode(ipc_msg_t *m, char **arg)
{
    int ok;

    *arg = NULL;
    if (m->fd >= 0 || ipc_get_str(m, arg) < 0 || ipc_get_end(m) < 0)
        goto bad;
    switch (m->type) {
    case QMGR_FLUSH:
        ok = qmgr_flush_domain_valid(*arg);
        break;
    case QMGR_DELETE:
    case QMGR_HOLD:
    case QMGR_RELEASE:
        ok = strcmp(*arg, QMGR_ALL) == 0 || queue_id_valid(*arg);
        break;
    default:
        ok = 0;
    }
    if (ok)
        return 0;
bad:
    free(*arg);
    *arg = NULL;
    return -1;
}

ipc_msg_t *qmgr_reply_encode(uint32_t reqid, int ok, size_t count, const char *text)
{
    ipc_msg_t *m = ipc_msg_new(QMGR_REPLY, reqid);

    ipc_put_int(m, ok ? 1 : 0);
    ipc_put_int(m, (int64_t)count);
    ipc_put_str(m, text);
    return m;
}

int qmgr_reply_decode(ipc_msg_t *m, int *ok, size_t *count, char **text)
{
    int64_t o, c;

    *text = NULL;
    if (m->type != QMGR_REPLY || m->fd >= 0 || ipc_get_int(m, &o) < 0 || ipc_get_int(m, &c) < 0
        || ipc_get_str(m, text) < 0 || ipc_get_end(m) < 0 || (o != 0 && o != 1) || c < 0)
        goto bad;
    for (const char *p = *text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            goto bad;
    *ok = (int)o;
    *count = (size_t)c;
    return 0;
bad:
    free(*text);
    *text = NULL;
    return -1;
}
