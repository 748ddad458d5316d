/*
 * ipcconn - one client connection of a service that serves many clients
 * from one event loop (lookupd, anvil, local, qmgr): the peer check once,
 * the hello, and requests taken as they complete, so that no client can
 * hold the others up.
 *
 * ipcconn_accept(fd, proto, version, uids, nuids, max_request, ...) checks
 * the peer's account (SO_PEERCRED: root or one of uids) at once, without
 * reading anything, and takes the descriptor.  From then on the service
 * calls ipcconn_recv() whenever the socket is readable: it reads what is
 * there without waiting (lib/ipc's reader), answers the client's hello
 * with ours the first time, and returns whole requests only.  A client
 * that connects and says nothing, or sends half a frame and stops, costs
 * one descriptor and nothing else; max_idle and the service's own limits
 * deal with it.
 *
 * One peer account may hold at most IPCCONN_PER_UID_MAX connections at
 * once (its processes keep one each, far fewer): a compromised service
 * account that opens more is refused instead of taking every descriptor
 * of the service from the others.
 *
 * ipcconn_send() writes a reply without waiting: the clients ask one
 * question at a time and read each answer, so a full socket buffer means a
 * client that does not read, which is dropped rather than waited for.
 *
 * Return values:
 *   ipcconn_accept: the connection, or NULL with *why (the fd is closed;
 *                   a refused account is named: "uid N: peer uid not
 *                   allowed", "uid N: too many connections (1024)",
 *                   valid until the next call).
 *   ipcconn_recv:   1 with *mp (a request, never the hello), 0 when
 *                   nothing is complete yet, -1 to drop the client: *why
 *                   is NULL for a clean close, else a reason for the log.
 *   ipcconn_send:   0, or -1 with errno (drop the client).
 * ipcconn_free() closes the descriptor (the caller removes it from its
 * event loop first).
 */
#ifndef POSTHORN_IPCCONN_H
#define POSTHORN_IPCCONN_H

#include <stddef.h>
#include <sys/types.h>

#include "ipc.h"

#define IPCCONN_PER_UID_MAX 1024

typedef struct ipcconn {
    int   fd;
    uid_t uid;              /* the client's account, from SO_PEERCRED */
    void *ctx;              /* the service's own state for this client */
    /* private */
    ipc_reader_t *reader;
    const char   *proto;
    int           version;
    int           hello_done;
} ipcconn_t;

ipcconn_t *ipcconn_accept(int fd, const char *proto, int version, const uid_t *uids,
                          size_t nuids, size_t max_request, const char **why);
int        ipcconn_recv(ipcconn_t *c, ipc_msg_t **mp, const char **why);
int        ipcconn_send(ipcconn_t *c, const ipc_msg_t *m);
void       ipcconn_free(ipcconn_t **cp);

#endif
