/*
 * server - the daemon skeleton every service program runs in.
 *
 * master fork+execs a service as root with
 *     PROG -c CONFDIR -n SERVICE -t inet|unix -s NLISTEN [-v] [-o name=value]...
 * and these fixed descriptors:
 *     3 (SERVER_STATUS_FD)   write end of the service's status pipe
 *     4 (SERVER_TRIGGER_FD)  read end of the service's wakeup pipe; EOF on
 *                            it means master is gone, and we exit
 *     5.. (SERVER_LISTEN_FD) NLISTEN listening sockets
 *
 * server_main() parses that, loads main.conf (+ -o overrides; an error is
 * fatal), opens maillog_file, runs pre_init as root (read private keys
 * here), drops privileges as the program asked (account from a main.conf
 * parameter, chroot into the spool or an empty directory), verifies the
 * drop, runs post_init, and serves:
 *
 *  SERVER_SINGLE: one connection at a time, handled synchronously by
 *     serve() (smtpd, pop3d); reports busy/available to master so master
 *     can start more processes, up to the service's process limit.  A
 *     client already waiting when a session ends is served at once, the
 *     process staying busy (unless master has written to the trigger pipe).
 *  SERVER_MULTI: accepted connections are handed to accept() and the
 *     program drives them from the shared event loop (cleanup, qmgr).
 *
 * Either way: wakeup() runs when master triggers the service, the process
 * exits after max_use connections or max_idle seconds without one (unless
 * the program sets no_idle_exit), and on SIGTERM.  Status records are
 * struct server_status written atomically to the status pipe.
 *
 * A reload retires the running generation: master closes its trigger
 * and status pipes.  A process then finishes what it is doing and exits;
 * one whose connections are its clients' idle links to a service (authd,
 * anvil, lookupd: they reconnect to the new generation) exits at once,
 * while one that sets retire_keeps_sessions (the mail halves of pop3d and
 * imapd, whose connections are users' sessions) stays until the last of
 * them ends, so a reload disconnects nobody.
 */
#ifndef POSTHORN_SERVER_H
#define POSTHORN_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipcconn.h"

#include "event.h"

#define SERVER_STATUS_FD   3
#define SERVER_TRIGGER_FD  4
#define SERVER_LISTEN_FD   5

enum server_chroot { SERVER_CHROOT_NONE, SERVER_CHROOT_SPOOL, SERVER_CHROOT_EMPTY,
                     SERVER_CHROOT_LOGIN, SERVER_CHROOT_DMARC };
enum server_mode { SERVER_SINGLE, SERVER_MULTI };

/* A status record, child -> master. */
struct server_status {
    int32_t pid;
    int32_t state;      /* SERVER_AVAIL or SERVER_BUSY */
};
#define SERVER_AVAIL 1
#define SERVER_BUSY  2

struct server_opts {
    enum server_mode   mode;
    const char        *user_param;     /* main.conf parameter naming the account; NULL = stay root */
    enum server_chroot chroot;
    int                no_service_group;  /* reaches no internal socket: without
                                             mail_owner's group (checkd) */
    int                no_idle_exit;   /* long-lived processes such as qmgr: neither
                                          max_idle nor max_use ends them */
    int                retire_keeps_sessions;  /* retired by a reload: stay until
                                                  the connections in progress end */
    void (*pre_init)(void);            /* as root, before the drop */
    /* As root, after pre_init: supplementary groups the account keeps
     * besides mail_owner's (into groups[], at most max); the count. */
    size_t (*extra_groups)(gid_t *groups, size_t max);
    void (*post_init)(event_loop_t *loop);
    void (*serve)(int fd);             /* SERVER_SINGLE: handle one connection, fd is closed after */
    void (*accept)(event_loop_t *loop, int fd);   /* SERVER_MULTI: the program owns fd */
    void (*wakeup)(event_loop_t *loop);
};

/* Never returns. */
_Noreturn void server_main(int argc, char **argv, const struct server_opts *opts);

const char *server_service_name(void);
/* SERVER_MULTI programs call these when a connection starts / ends so that
 * max_idle counts from the last one. */
void server_conn_begin(void);
void server_conn_end(void);

/* The uids of the accounts that main.conf parameters params[0..n) name,
 * into uids[] (a service's allowed IPC peers); fatal if one does not
 * exist (mailctl start creates them). */
void server_peer_uids(const char *const *params, size_t n, uid_t *uids);

/* SERVER_MULTI programs that serve an IPC protocol (anvil, lookupd,
 * authd): a new client taken as an ipcconn (lib/ipcconn: the peer's uid
 * checked against uids, or root); a refused one is logged ("SERVICE:
 * refusing a client: why"), its connection ended, and NULL returned. */
ipcconn_t *server_ipc_accept(int fd, const char *proto, int version, const uid_t *uids,
                             size_t nuids, size_t max_request);
/* ipcconn_recv() on a readable client: 1 with *mp, 0 for nothing whole
 * yet, -1 to drop it (a reason other than a clean close is logged:
 * "SERVICE: dropping a client (uid N): why"). */
int server_ipc_recv(ipcconn_t *c, ipc_msg_t **mp);

/* The most groups a program's extra_groups hook may add. */
#define SERVER_EXTRA_GROUPS_MAX 4

/* SERVER_CHROOT_EMPTY jails into $queue_directory/SERVER_EMPTY_DIR (root, 0555, empty). */
#define SERVER_EMPTY_DIR "empty"
/* SERVER_CHROOT_LOGIN jails the login halves of pop3d and imapd into
 * $queue_directory/SERVER_LOGIN_DIR (root:login_user 0750), where master binds a
 * second socket of each service in SERVER_LOGIN_SERVICES and nothing else
 * is. */
#define SERVER_LOGIN_DIR "login"
/* SERVER_CHROOT_DMARC jails checkd into $queue_directory/SERVER_DMARC_DIR
 * (check_user 0700), where it appends its DMARC results and nothing else
 * is: it holds no descriptor of anything outside.  The DMARC report job
 * reads them as check_user. */
#define SERVER_DMARC_DIR "dmarc"
#define SERVER_LOGIN_SERVICES { "authd", "anvil", "pop3", "imap", NULL }

/* Was this process started for a unix service ("-t unix" among master's
 * arguments)?  For a program that serves in two roles (the login and
 * mail halves of pop3d and imapd) before server_main() reads them. */
bool server_args_unix(int argc, char **argv);

#endif
