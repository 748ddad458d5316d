/*
 * mailq.c - "mailq" and "sendmail -bp": the queue listing.  Root reads the
 * queue directories itself (mailctl queue list, which works while Posthorn
 * is stopped); anybody else asks showq(8) over public/showq, as Postfix's
 * postqueue -p does, and gets the same listing.
 *
 * Failure modes: when showq cannot be reached the report is unavailable
 * (exit 69, EX_UNAVAILABLE), as with Postfix while the mail system is down.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "ipc.h"
#include "sendmail.h"
#include "showq_proto.h"
#include "xalloc.h"

void sm_mailq(void)
{
    char *path = xasprintf("%s/%s", conf_str("queue_directory"), SHOWQ_SOCKET);
    const char *why = NULL;
    ipc_msg_t *m = NULL, *req;
    char chunk[65536];
    ssize_t n;
    int sock, fd;

    showq_proto_init();
    sm_privs_gain();
    sock = ipc_client_open(path, SHOWQ_PROTO_NAME, SHOWQ_PROTO_VERSION, SHOWQ_TIMEOUT_MS, &why);
    sm_privs_shed();
    if (sock < 0)
        sm_fatal(EX_UNAVAILABLE, "the queue report is unavailable: cannot reach %s (%s); is "
                 "Posthorn running?", path, why ? why : strerror(errno));
    req = ipc_msg_new(SHOWQ_LIST, 0);
    if (ipc_send(sock, req, SHOWQ_TIMEOUT_MS) < 0
        || ipc_recv(sock, &m, 1024, SHOWQ_TIMEOUT_MS) <= 0 || m->type != SHOWQ_REPLY
        || (fd = ipc_take_fd(m)) < 0)
        sm_fatal(EX_UNAVAILABLE, "the queue report is unavailable: showq did not answer");
    ipc_msg_free(&req);
    ipc_msg_free(&m);
    close(sock);
    for (off_t off = 0; (n = pread(fd, chunk, sizeof(chunk), off)) > 0; off += n)
        if (fwrite(chunk, 1, (size_t)n, stdout) != (size_t)n)
            sm_fatal(EX_IOERR, "cannot write the report: %s", strerror(errno));
    if (n < 0)
        sm_fatal(EX_IOERR, "cannot read the report: %s", strerror(errno));
    if (fflush(stdout) != 0)
        sm_fatal(EX_IOERR, "cannot write the report: %s", strerror(errno));
    close(fd);
    free(path);
    exit(0);
}
