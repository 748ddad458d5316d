/*
 * postlogin - the mail halves of pop3d and imapd (DESIGN.md §1): the
 * process, started by master as root, that takes logged-in connections
 * from the login halves (lib/handover_proto) and gives each to a session
 * process that has become the mailbox owner.
 *
 * Per hand-over, in the root process (one event loop; nothing here reads
 * a byte from the client):
 *  - the peer must be login_user (SO_PEERCRED; root is allowed too);
 *  - the cookie is redeemed with authd (AUTH_REDEEM) with the service and
 *    the login half's pid from SO_PEERCRED on this socket: authd names the
 *    user, never the login half, and a cookie works once, for the process
 *    it was issued to, for AUTH_COOKIE_SECONDS;
 *  - the user must be an account of this host (getpwnam) with a uid of at
 *    least first_valid_uid (never root) and an absolute home directory;
 *  - a session process is forked: it closes every descriptor but the
 *    client's (and the log's), becomes the user (groups, gid, uid; a
 *    failed drop, or a setuid(0) that still works, is fatal), turns
 *    non-dumpable, and only then runs the protocol's serve() with what
 *    the client pipelined; it exits when serve() returns.
 *  - the login half is told HANDOVER_OK (the session process answers the
 *    client's login command), or FAIL/TEMPFAIL with a reason (it still
 *    owns the client).
 * The root process keeps the session processes' pids: it reaps them, logs
 * one that died by a signal, and passes a SIGTERM on to them when it is
 * told to stop.  Each session counts as a connection in progress
 * (lib/server), so a mail half that master retires on a reload stays
 * until its last session ends.
 *
 * Per-user mode (postlogin_init_per_user, imapd): one session process
 * per user serves all of that user's connections, so that they share one
 * view of each mailbox.  The first connection starts the process as above;
 * the next ones go to it over the user's channel (a socketpair, see
 * lib/handover_proto: HANDOVER_REQUEST down, HANDOVER_IDLE up), where the
 * process reads them with postlogin_channel_recv().  When it has no
 * session left it says so (postlogin_channel_idle); root closes the
 * channel if nothing is in flight, and the process exits at its end.
 * A user's process that cannot take a connection at once (its channel
 * full or gone) is let go and a new one started: the mailbox store must
 * (and imapd's does) stay consistent with two processes of one user.
 *
 * Failure modes: a bad request is logged and that login half dropped; an
 * authd that cannot be reached is HANDOVER_TEMPFAIL; a failed fork is
 * HANDOVER_TEMPFAIL.
 *
 * Parameters: first_valid_uid, login_user.
 */
#ifndef POSTHORN_POSTLOGIN_H
#define POSTHORN_POSTLOGIN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "event.h"

/* What a session process knows: all of it checked, the user from authd. */
struct postlogin_session {
    const char *service;            /* AUTH_SERVICE_* */
    const char *user;
    uid_t       uid;
    gid_t       gid;
    const char *home;
    int         fd;                 /* the client (or the login half's proxy) */
    const char *client_addr;
    const char *client_port;
    unsigned    flags;              /* HANDOVER_F_* */
    const char *mech;
    const char *tag;
    const void *input;              /* the client's pipelined input: read it first */
    size_t      input_len;
    long        login_pid;
    int         channel;            /* per-user mode: the user's channel; else -1 */
};

/* serve() runs in the session process, as the user, in the user's home
 * directory when it could be entered (home_ok); the process exits when
 * it returns. */
typedef void (*postlogin_serve_fn)(const struct postlogin_session *ps, int home_ok);

/* post_init of the mail half: service is AUTH_SERVICE_POP3 or _IMAP. */
void postlogin_init(event_loop_t *loop, const char *service, postlogin_serve_fn serve);
/* The same, one process per user (see above). */
void postlogin_init_per_user(event_loop_t *loop, const char *service, postlogin_serve_fn serve);

/* In a user's process (per-user mode).  The next connection from the
 * channel: 1 with *ps filled (free it with postlogin_session_free; user,
 * uid, gid and home are the process's own), 0 at the channel's end, -1
 * when nothing whole has arrived yet (EAGAIN: the channel is non-blocking)
 * or on an error (logged; errno other than EAGAIN: give the channel up). */
int  postlogin_channel_recv(const struct postlogin_session *self,
                            struct postlogin_session **ps);
void postlogin_session_free(struct postlogin_session **ps);
/* No session left, after `received` connections in all: -1 if the
 * channel is gone. */
int  postlogin_channel_idle(int channel, uint64_t received);

/* The SERVER_MULTI accept hook. */
void postlogin_accept(event_loop_t *loop, int fd);

#endif
