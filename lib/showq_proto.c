/*
 * showq_proto - message names of the showq protocol; see showq_proto.h.
 */
#include "ipc.h"
#include "showq_proto.h"

void showq_proto_init(void)
{
    static const struct ipc_name names[] = {
        {SHOWQ_LIST, "SHOWQ_LIST"},
        {SHOWQ_REPLY, "SHOWQ_REPLY"},
    };

    ipc_register_names(names, sizeof(names) / sizeof(names[0]));
}
