/*
 * listen.c - master binds every listening socket itself (it is the only
 * process that can bind port 25) and hands them to service processes.
 *
 * inet services: "[host:]port" or "[v6addr]:port"; a bare port listens on
 * each address of inet_interfaces ("all", "loopback-only" or a list).  The
 * sockets are SO_REUSEADDR, IPV6_V6ONLY for IPv6, non-blocking, and listen
 * with SOMAXCONN: a short backlog turns bursts into retransmit timers.
 * unix services: $queue_directory/private/NAME or public/NAME, mode 0666;
 * access is controlled by the directory modes and by each protocol's
 * SO_PEERCRED check.  The services the login halves of pop3d and imapd
 * use (authd and the mail halves, SERVER_LOGIN_SERVICES) get a second
 * socket in their jail, $queue_directory/login/NAME, passed to the same
 * processes.
 *
 * Failure modes: errors are appended to errs as "service NAME: ..." and -1
 * is returned; whatever was opened is closed again.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "ipc.h"
#include "master.h"
#include "msg.h"
#include "server.h"
#include "xalloc.h"

static void listen_add(int **fds, int *nfds, int fd)
{
    *fds = xreallocarray(*fds, (size_t)*nfds + 1, sizeof(int));
    (*fds)[(*nfds)++] = fd;
}

static int listen_inet_one(const char *svcname, const char *host, const char *port,
                           int **fds, int *nfds, buf_t *errs)
{
    struct addrinfo hints = {0}, *res, *ai;
    int rc, count = 0;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        buf_printf(errs, "service %s: cannot resolve %s port %s: %s\n", svcname,
                   host ? host : "*", port, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        char addr[NI_MAXHOST] = "?", serv[NI_MAXSERV] = "?";
        int fd, on = 1;

        getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof(addr), serv, sizeof(serv),
                    NI_NUMERICHOST | NI_NUMERICSERV);
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            /* No IPv6 on this host: skip that family quietly when listening on "all". */
            if (host == NULL && (errno == EAFNOSUPPORT || errno == EPROTONOSUPPORT))
                continue;
            buf_printf(errs, "service %s: socket for %s: %s\n", svcname, addr, strerror(errno));
            freeaddrinfo(res);
            return -1;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0) {
            if (host == NULL && ai->ai_family == AF_INET6 && errno == EADDRNOTAVAIL) {
                close(fd);
                continue;
            }
            buf_printf(errs, "service %s: cannot listen on %s%s%s:%s: %s\n", svcname,
                       ai->ai_family == AF_INET6 ? "[" : "", addr,
                       ai->ai_family == AF_INET6 ? "]" : "", serv, strerror(errno));
            close(fd);
            freeaddrinfo(res);
            return -1;
        }
        listen_add(fds, nfds, fd);
        count++;
    }
    freeaddrinfo(res);
    if (count == 0) {
        buf_printf(errs, "service %s: no address to listen on\n", svcname);
        return -1;
    }
    return 0;
}

static int listen_inet(const struct master_svc *svc, int **fds, int *nfds, buf_t *errs)
{
    char *spec = xstrdup(svc->name), *host = NULL, *port = spec, *colon;
    int rc = 0;

    if (spec[0] == '[') {
        char *close_br = strchr(spec, ']');

        host = spec + 1;
        *close_br = '\0';           /* master_conf checked the syntax */
        port = close_br + 2;
    } else if ((colon = strrchr(spec, ':')) != NULL) {
        *colon = '\0';
        host = spec;
        port = colon + 1;
    }
    if (host) {
        rc = listen_inet_one(svc->name, host, port, fds, nfds, errs);
    } else {
        const char *ifs = master_params.inet_interfaces;

        if (strcmp(ifs, "all") == 0) {
            rc = listen_inet_one(svc->name, NULL, port, fds, nfds, errs);
        } else if (strcmp(ifs, "loopback-only") == 0) {
            rc = listen_inet_one(svc->name, "127.0.0.1", port, fds, nfds, errs);
            /* ::1 too where this host has IPv6 on its loopback. */
            if (rc == 0 && access("/proc/net/if_inet6", R_OK) == 0) {
                buf_t *ignore = buf_new(0);

                listen_inet_one(svc->name, "::1", port, fds, nfds, ignore);
                buf_free(&ignore);
            }
        } else {
            char **list = conf_split(ifs);

            for (char **p = list; *p && rc == 0; p++) {
                char *h = *p;
                size_t len = strlen(h);

                if (h[0] == '[' && len > 1 && h[len - 1] == ']') {
                    h[len - 1] = '\0';
                    h++;
                }
                rc = listen_inet_one(svc->name, h, port, fds, nfds, errs);
            }
            conf_split_free(&list);
        }
    }
    free(spec);
    return rc;
}

/* svc's socket in $queue_directory/DIR. */
static int listen_unix(const struct master_svc *svc, const char *dir, int **fds, int *nfds,
                       buf_t *errs)
{
    char *path = xasprintf("%s/%s/%s", master_params.queue_directory, dir, svc->name);
    int fd = ipc_listen(path, 0666, SOMAXCONN);

    if (fd < 0) {
        buf_printf(errs, "service %s: cannot listen on %s: %s\n", svc->name, path,
                   strerror(errno));
        free(path);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    listen_add(fds, nfds, fd);
    free(path);
    return 0;
}

/* Is name one of the services the login halves reach from their jail? */
static int master_login_service(const char *name)
{
    static const char *const names[] = SERVER_LOGIN_SERVICES;

    for (const char *const *n = names; *n; n++)
        if (strcmp(*n, name) == 0)
            return 1;
    return 0;
}

int listen_open(const struct master_svc *svc, int **fds, int *nfds, buf_t *errs)
{
    int rc;

    *fds = NULL;
    *nfds = 0;
    if (svc->type == MASTER_SVC_INET) {
        rc = listen_inet(svc, fds, nfds, errs);
    } else {
        rc = listen_unix(svc, svc->private_socket ? "private" : "public", fds, nfds, errs);
        /* The login halves' jail gets the socket too (server.h). */
        if (rc == 0 && master_login_service(svc->name))
            rc = listen_unix(svc, SERVER_LOGIN_DIR, fds, nfds, errs);
    }
    if (rc < 0) {
        for (int i = 0; i < *nfds; i++)
            close((*fds)[i]);
        xfree(fds);
        *nfds = 0;
    }
    return rc;
}
