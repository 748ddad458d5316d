/*
 * svcconn - a connection to one of Posthorn's internal services (lookupd,
 * anvil, authd) that a network process opens on first use and keeps for
 * its life, replacing it when it breaks.
 *
 * Interface:
 *   struct svcconn c = SVCCONN_INIT(LOOKUP_SOCKET, LOOKUP_PROTO_NAME,
 *                                   LOOKUP_PROTO_VERSION);
 *   svcconn_fd(&c, timeout_ms)  the open connection (opened, hello
 *                               exchanged, if there was none), or -1 with
 *                               the reason logged;
 *   svcconn_lost(&c)            after an IPC failure on it: logged with
 *                               errno (kept), closed; the next svcconn_fd
 *                               opens a new one;
 *   svcconn_retry(&c)           after an IPC failure on it: 1 when the
 *                               connection was kept from before and the
 *                               service had closed it (restarted since:
 *                               anything but a timeout), closed quietly so
 *                               the caller asks once more on a new one;
 *                               else 0, after svcconn_lost();
 *   svcconn_close(&c)           closed without a word (a late answer must
 *                               not be read as the next one's).
 *
 * Failure modes: none of its own; the caller decides what a service that
 * cannot be reached means (a temporary failure, or going on without it).
 */
#ifndef POSTHORN_SVCCONN_H
#define POSTHORN_SVCCONN_H

struct svcconn {
    const char *path;       /* the socket, relative to the spool */
    const char *proto;
    int         version;
    int         fd;         /* -1: not open */
    int         fresh;      /* the last svcconn_fd opened it */
};

#define SVCCONN_INIT(path, proto, version) { (path), (proto), (version), -1, 0 }

int  svcconn_fd(struct svcconn *c, int timeout_ms);
void svcconn_lost(struct svcconn *c);
int  svcconn_retry(struct svcconn *c);
void svcconn_close(struct svcconn *c);

#endif
