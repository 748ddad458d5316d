/*
 * master_proto - the control protocol between mailctl and master.
 *
 * Over the root-only UNIX socket $queue_directory/pid/master.sock, using the
 * ipc framing, protocol "master-control" version 1.  One request per
 * connection; master checks that the peer is root (SO_PEERCRED).
 *
 *   MASTER_STATUS  ()                      -> MASTER_REPLY
 *   MASTER_RELOAD  ()                      -> MASTER_REPLY
 *   MASTER_STOP    ()                      -> MASTER_REPLY
 *
 * MASTER_REPLY fields: int ok (1/0), str text (error or message), and for
 * STATUS: int master_pid, int master_started (epoch), int nservices, then
 * per service: str name, str type, str command, str state, int maxproc,
 * int nprocs, then per process: int pid, int started (epoch), int busy.
 */
#ifndef POSTHORN_MASTER_PROTO_H
#define POSTHORN_MASTER_PROTO_H

#define MASTER_PROTO_NAME     "master-control"
#define MASTER_PROTO_VERSION  1
#define MASTER_SOCKET         "pid/master.sock"   /* relative to queue_directory */
#define MASTER_PID_FILE       "pid/master.pid"

enum {
    MASTER_STATUS = 0x100,     /* each protocol has its own range of types */
    MASTER_RELOAD,
    MASTER_STOP,
    MASTER_REPLY,
};

/* Register the message names with ipc_type_name(). */
void master_proto_init(void);

#endif
