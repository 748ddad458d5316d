/*
 * qmgr_proto - message names of the qmgr protocol (see qmgr_proto.h for the
 * layout; the messages are one or two fields, built where they are used).
 */
#include "ipc.h"
#include "qmgr_proto.h"

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
