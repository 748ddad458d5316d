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

/* Open connections per peer account: a service has a handful of peer
 * accounts, so a short table does. */
#define IPCCONN_UIDS 16
static struct {
    uid_t  uid;
    size_t count;
} ipcconn_per_uid[IPCCONN_UIDS];

static size_t *ipcconn_uid_count(uid_t uid)
{
    for (size_t i = 0; i < IPCCONN_UIDS; i++)
        if (ipcconn_per_uid[i].count > 0 && ipcconn_per_uid[i].uid == uid)
            return &ipcconn_per_uid[i].count;
    for (size_t i = 0; i < IPCCONN_UIDS; i++)
        if (ipcconn_per_uid[i].count == 0) {
            ipcconn_per_uid[i].uid = uid;
            return &ipcconn_per_uid[i].count;
        }
    return NULL;
}

ipcconn_t *ipcconn_accept(int fd, const char *proto, int version, const uid_t *uids,
                          size_t nuids, size_t max_request, const char **why)
{
    static char text[80];
    ipcconn_t *c;
    uid_t peer = (uid_t)-1;
    size_t *count;

    if (ipc_peer_allowed(fd, uids, nuids, &peer) < 0) {
        *why = "cannot read peer credentials";
        if (errno == EPERM) {
            snprintf(text, sizeof(text), "uid %ld: peer uid not allowed", (long)peer);
            *why = text;
        }
        close(fd);
        return NULL;
    }
    if ((count = ipcconn_uid_count(peer)) == NULL || *count >= IPCCONN_PER_UID_MAX) {
        snprintf(text, sizeof(text), "uid %ld: too many connections (%d)", (long)peer,
                 IPCCONN_PER_UID_MAX);
        *why = text;
        close(fd);
        return NULL;
    }
    (*count)++;
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
    for (size_t i = 0; i < IPCCONN_UIDS; i++)
        if (ipcconn_per_uid[i].count > 0 && ipcconn_per_uid[i].uid == c->uid) {
            ipcconn_per_uid[i].count--;
            break;
        }
    ipc_reader_free(&c->reader);
    close(c->fd);
    free(c);
    *cp = NULL;
}
