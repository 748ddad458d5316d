/*
 * svcconn - a kept connection to an internal service (see svcconn.h).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "ipc.h"
#include "msg.h"
#include "svcconn.h"

int svcconn_fd(struct svcconn *c, int timeout_ms)
{
    const char *why = NULL;

    c->fresh = c->fd < 0;
    if (c->fd < 0) {
        c->fd = ipc_client_open(c->path, c->proto, c->version, timeout_ms, &why);
        if (c->fd < 0)
            msg_warn("cannot reach %s: %s", c->path, why ? why : strerror(errno));
    }
    return c->fd;
}

int svcconn_retry(struct svcconn *c)
{
    int err = errno;

    if (!c->fresh && c->fd >= 0 && err != ETIMEDOUT) {
        svcconn_close(c);
        errno = err;
        return 1;
    }
    svcconn_lost(c);
    return 0;
}

void svcconn_lost(struct svcconn *c)
{
    int err = errno;

    msg_warn("lost the connection to %s: %s", c->path, strerror(err));
    svcconn_close(c);
    errno = err;
}

void svcconn_close(struct svcconn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}
