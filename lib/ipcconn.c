/*
 * ipcconn - a client connection of a multi-client service: peer check,
 * hello, whole requests without waiting (see ipcconn.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipc.h"
#include "ipcconn.h"
#include "xalloc.h"

ipcconn_t *ipcconn_accept(int fd, const char *proto, int version, const uid_t *uids,
                          size_t nuids, size_t max_request, const char **why)
{
    ipcconn_t *c;
    uid_t peer = (uid_t)-1;

    if (ipc_peer_allowed(fd, uids, nuids, &peer) < 0) {
        static char text[64];

        *why = "cannot read peer credentials";
        if (errno == EPERM) {
            snprintf(text, sizeof(text), "uid %ld: peer uid not allowed", (long)peer);
            *why = text;
        }
        close(fd);
        return NULL;
    }
    c = xcalloc(1, sizeof(*c));
    c->fd = fd;
    c->uid = peer;
    c->proto = proto;
    c->version = version;
    c->reader = ipc_reader_new(max_request);
    *why = "ok";
    return c;
}

static const char *ipcconn_reason(int err)
{
    return err == EMSGSIZE ? "request too large"
           : err == EPROTO ? "malformed frame"
           : err == ECONNRESET ? NULL
           : strerror(err);
}

int ipcconn_recv(ipcconn_t *c, ipc_msg_t **mp, const char **why)
{
    ipc_msg_t *m;
    int rc;

    *mp = NULL;
    for (;;) {
        rc = ipc_reader_recv(c->reader, c->fd, &m);
        if (rc < 0 && errno == EAGAIN)
            return 0;
        if (rc < 0) {
            *why = ipcconn_reason(errno);
            return -1;
        }
        if (rc == 0) {
            *why = c->hello_done ? NULL : "connection closed before hello";
            return -1;
        }
        if (c->hello_done) {
            *mp = m;
            return 1;
        }
        rc = ipc_hello_check(m, c->proto, c->version, why);
        ipc_msg_free(&m);
        if (rc < 0)
            return -1;
        if (ipc_hello_send(c->fd, c->proto, c->version, 0) < 0) {
            *why = "cannot send hello";
            return -1;
        }
        c->hello_done = 1;
        /* A request may have come right behind the hello. */
    }
}

int ipcconn_send(ipcconn_t *c, const ipc_msg_t *m)
{
    return ipc_send(c->fd, m, 0);
}

void ipcconn_free(ipcconn_t **cp)
{
    ipcconn_t *c = *cp;

    if (c == NULL)
        return;
    ipc_reader_free(&c->reader);
    close(c->fd);
    free(c);
    *cp = NULL;
}
