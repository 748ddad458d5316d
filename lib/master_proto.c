/*
 * master_proto - the control protocol between mailctl and master: message
 * names for the logs (see master_proto.h for the message layout).
 */
#include "ipc.h"
#include "master_proto.h"

static const struct ipc_name master_proto_names[] = {
    {MASTER_STATUS, "master-status"},
    {MASTER_RELOAD, "master-reload"},
    {MASTER_STOP, "master-stop"},
    {MASTER_REPLY, "master-reply"},
};

void master_proto_init(void)
{
    ipc_register_names(master_proto_names,
                       sizeof(master_proto_names) / sizeof(master_proto_names[0]));
}
