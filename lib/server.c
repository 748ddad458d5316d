/*
 * server - the daemon skeleton every service program runs in (see server.h).
 *
 * Start-up order, all before the first byte of network input is read:
 *   parse master's arguments -> check that the configuration directory
 *   and main.conf are root's alone (lib/conftrust; root or our own uid
 *   when not started as root) -> load main.conf (+ -o) -> open the log ->
 *   pre_init() as root -> chdir queue_directory -> drop privileges (and
 *   chroot) -> verify the drop -> post_init() -> report "available" to master.
 * Parameters read: config_directory, queue_directory, maillog_file,
 * max_use, max_idle, mail_owner, and the account parameter the program names.
 *
 * Failure modes: bad arguments or configuration are fatal (master throttles
 * a service that keeps failing at start-up); a failed accept() is logged
 * and ignored; master going away (EOF on the trigger pipe) ends the process.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "conftrust.h"
#include "event.h"
#include "msg.h"
#include "privs.h"
#include "server.h"
#include "xalloc.h"

static const struct server_opts *server_opts;
static const char *server_name = "unknown";
static int server_nlisten;
static int server_uses;
static int server_active;           /* SERVER_MULTI: connections in progress */
static int server_retiring;         /* master asked us to go, or max_use reached */
static event_timer_t *server_idle_timer;
static event_timer_t *server_pause_timer;
static event_loop_t *server_loop;

static int server_jailed;

/* A normal end of a service process.  Inside a chroot, exit handlers have
 * nothing useful to do and some cannot work (LeakSanitizer needs /proc):
 * leave with _exit there. */
static _Noreturn void server_exit(int status)
{
    if (server_jailed)
        _exit(status);
    exit(status);
}

const char *server_service_name(void)
{
    return server_name;
}

ipcconn_t *server_ipc_accept(int fd, const char *proto, int version, const uid_t *uids,
                             size_t nuids, size_t max_request)
{
    const char *why;
    ipcconn_t *c = ipcconn_accept(fd, proto, version, uids, nuids, max_request, &why);

    if (c == NULL) {
        msg_warn("%s: refusing a client: %s", server_name, why);
        server_conn_end();
    }
    return c;
}

int server_ipc_recv(ipcconn_t *c, ipc_msg_t **mp)
{
    const char *why = NULL;
    int rc = ipcconn_recv(c, mp, &why);

    if (rc < 0 && why)
        msg_warn("%s: dropping a client (uid %ld): %s", server_name, (long)c->uid, why);
    return rc;
}

static void server_report(int state)
{
    struct server_status st = { .pid = (int32_t)getpid(), .state = state };

    if (write(SERVER_STATUS_FD, &st, sizeof(st)) < 0 && errno == EPIPE) {
        /* A reload retires a whole generation: master has closed its
         * status pipe on purpose.  Users' sessions are finished before
         * the process goes (server_retire); anything else goes now. */
        if (server_retiring && server_opts->retire_keeps_sessions)
            return;
        msg_info("master went away, exiting");
        server_exit(0);
    }
}

static void server_idle_expired(event_loop_t *loop, void *arg)
{
    (void)loop;
    (void)arg;
    server_idle_timer = NULL;
    msg_debug("idle for max_idle, exiting");
    server_exit(0);
}

static void server_arm_idle(void)
{
    event_cancel_timer(server_loop, &server_idle_timer);
    if (!server_opts->no_idle_exit && server_active == 0)
        server_idle_timer = event_add_timer(server_loop, conf_time("max_idle") * 1000,
                                            server_idle_expired, NULL);
}

/* Stop taking connections; exit as soon as nothing is in progress.
 * A process that stays on for its connections in progress tells master it
 * is no longer available, or master would go on counting it as the one
 * that takes the next client, and nobody would: a client holding one
 * connection would shut the service out for everyone else. */
static void server_retire(void)
{
    if (!server_retiring) {
        server_retiring = 1;
        if (server_pause_timer == NULL)
            for (int i = 0; i < server_nlisten; i++)
                event_del_fd(server_loop, SERVER_LISTEN_FD + i);
        event_cancel_timer(server_loop, &server_pause_timer);
        if (server_active > 0)
            server_report(SERVER_BUSY);
    }
    if (server_active == 0)
        server_exit(0);
}

void server_conn_begin(void)
{
    server_active++;
    event_cancel_timer(server_loop, &server_idle_timer);
}

void server_conn_end(void)
{
    if (server_active > 0)
        server_active--;
    if (server_retiring)
        server_retire();
    else
        server_arm_idle();
}

static void server_on_accept(event_loop_t *loop, int lfd, int events, void *arg);

/* Listen again after a pause forced by a lack of descriptors or memory. */
static void server_resume(event_loop_t *loop, void *arg)
{
    (void)arg;
    server_pause_timer = NULL;
    if (!server_retiring)
        for (int i = 0; i < server_nlisten; i++)
            event_add_fd(loop, SERVER_LISTEN_FD + i, EVENT_READ, server_on_accept, NULL);
}

/* A new connection's socket: Nagle off (see below); counts as a use. */
static void server_accepted(int fd)
{
    server_uses++;
    /* Replies are written whole, one write per batch (lib/stream): Nagle
     * would only hold the last segment of a batch (a TLS handshake's end,
     * a multi-line reply) until the client's delayed ACK, 40 ms a time.
     * A UNIX socket refuses the option, which is fine. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
}

/* SERVER_SINGLE, between two sessions: a client already waiting on a
 * listener, taken at once; -1 when there is none, or when master has
 * written to or closed the trigger pipe (the event loop handles that).
 * Under load this saves telling master "available" and then "busy" again
 * a moment later: two writes and a wakeup of master per session. */
static int server_accept_waiting(void)
{
    struct pollfd pfd[1 + 64];
    nfds_t n = 0;
    int fd;

    pfd[n++] = (struct pollfd){ .fd = SERVER_TRIGGER_FD, .events = POLLIN };
    for (int i = 0; i < server_nlisten && i < 64; i++)
        pfd[n++] = (struct pollfd){ .fd = SERVER_LISTEN_FD + i, .events = POLLIN };
    if (poll(pfd, n, 0) <= 0 || pfd[0].revents != 0)
        return -1;
    for (nfds_t i = 1; i < n; i++) {
        if (!(pfd[i].revents & POLLIN))
            continue;
        /* Another process may win the race: then try the next. */
        if ((fd = accept4(pfd[i].fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
            server_accepted(fd);
            return fd;
        }
    }
    return -1;
}

static void server_on_accept(event_loop_t *loop, int lfd, int events, void *arg)
{
    int fd;

    (void)events;
    (void)arg;
    fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        /* Another process of the service won the race, or the client left. */
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED || errno == EINTR)
            return;
        msg_warn("accept: %s", strerror(errno));
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* The connection stays queued: pausing beats spinning on it. */
            for (int i = 0; i < server_nlisten; i++)
                event_del_fd(loop, SERVER_LISTEN_FD + i);
            server_pause_timer = event_add_timer(loop, 1000, server_resume, NULL);
        }
        return;
    }
    server_accepted(fd);
    if (server_opts->mode == SERVER_SINGLE) {
        event_cancel_timer(loop, &server_idle_timer);
        server_report(SERVER_BUSY);
        do {
            server_opts->serve(fd);
            close(fd);
            if (server_uses >= conf_int("max_use"))
                server_retire();
        } while ((fd = server_accept_waiting()) >= 0);
        server_report(SERVER_AVAIL);
        server_arm_idle();
    } else {
        server_conn_begin();
        server_opts->accept(loop, fd);
        /* Long-lived services (qmgr, anvil) keep their clients' connections
         * open for good: retiring would leave a singleton that never
         * exits and never serves new clients. */
        if (!server_opts->no_idle_exit && server_uses >= conf_int("max_use"))
            server_retire();
    }
}

static void server_on_trigger(event_loop_t *loop, int fd, int events, void *arg)
{
    char junk[64];
    ssize_t n;

    (void)events;
    (void)arg;
    n = read(fd, junk, sizeof(junk));
    if (n == 0) {
        /* master closed its end: it is stopping or replacing us. */
        event_del_fd(loop, fd);
        server_retire();
        return;
    }
    if (n < 0)
        return;
    if (server_opts->wakeup)
        server_opts->wakeup(loop);
}

static _Noreturn void server_usage(const char *prog)
{
    msg_fatal("usage: %s -c CONFDIR -n SERVICE -t inet|unix -s NLISTEN [-v] [-o name=value] "
              "(started by master, not by hand)", prog);
}

static void server_check_fd(int fd, const char *what)
{
    if (fcntl(fd, F_GETFD) < 0)
        msg_fatal("descriptor %d (%s) is not open: this program is started by master", fd, what);
}

_Noreturn void server_main(int argc, char **argv, const struct server_opts *opts)
{
    const char *confdir = getenv("POSTHORN_CONFIG");
    buf_t *errs = buf_new(0), *overrides = buf_new(0);
    int ch, verbose = 0;

    server_opts = opts;
    msg_init(argv[0], MSG_SYSLOG | (getenv("POSTHORN_LOG_STDERR") ? MSG_STDERR : 0));
    signal(SIGPIPE, SIG_IGN);

    while ((ch = getopt(argc, argv, "c:n:t:s:o:v")) != -1) {
        switch (ch) {
        case 'c': confdir = optarg; break;
        case 'n': server_name = optarg; break;
        case 't': break;
        case 's': server_nlisten = atoi(optarg); break;
        case 'o': buf_append(overrides, optarg, strlen(optarg) + 1); break;
        case 'v': verbose++; break;
        default: server_usage(argv[0]);
        }
    }
    if (optind != argc || server_nlisten < 0 || server_nlisten > 64)
        server_usage(argv[0]);
    if (confdir == NULL || *confdir == '\0')
        confdir = DEF_CONFIG_DIRECTORY;
    /* Still root: main.conf steers what we do with that (master checked
     * it at start, but it may have been handed to someone else since). */
    if (conftrust_main(confdir, errs) < 0)
        msg_fatal("untrusted configuration: %s", buf_cstr(errs));
    if (conf_load(confdir, errs) < 0)
        msg_fatal("bad configuration: %s", buf_cstr(errs));
    for (size_t off = 0; off < overrides->len; off += strlen(overrides->data + off) + 1) {
        char *kv = xstrdup(overrides->data + off), *eq = strchr(kv, '=');

        if (eq == NULL)
            msg_fatal("bad -o option '%s': expected name=value", kv);
        *eq = '\0';
        if (conf_set(kv, eq + 1, "master.conf -o option", errs) < 0)
            msg_fatal("bad configuration: %s", buf_cstr(errs));
        free(kv);
    }
    buf_free(&overrides);
    buf_free(&errs);
    msg_verbose += verbose;
    if (*conf_str("maillog_file") && msg_logfile(conf_str("maillog_file")) < 0)
        msg_warn("cannot open maillog_file %s: %s", conf_str("maillog_file"), strerror(errno));

    server_check_fd(SERVER_STATUS_FD, "status pipe");
    server_check_fd(SERVER_TRIGGER_FD, "trigger pipe");
    for (int i = 0; i < server_nlisten; i++)
        server_check_fd(SERVER_LISTEN_FD + i, "listener");

    if (opts->chroot != SERVER_CHROOT_NONE && opts->user_param == NULL)
        msg_panic("a chroot without a privilege drop: the process would stay root");
    if (opts->pre_init)
        opts->pre_init();
    /* Load the time zone while /etc/localtime is still reachable: the
     * chrooted services write local times (Received:, Date:, logs). */
    tzset();
    if (chdir(conf_str("queue_directory")) < 0)
        msg_fatal("cannot enter queue_directory %s: %s", conf_str("queue_directory"), strerror(errno));
    if (opts->user_param) {
        const char *dir = NULL;
        char *empty = NULL;
        uid_t owner_uid;
        gid_t owner_gid;

        if (privs_lookup(conf_str("mail_owner"), &owner_uid, &owner_gid) < 0)
            msg_fatal("mail_owner account %s does not exist (mailctl start creates it)",
                      conf_str("mail_owner"));
        if (opts->chroot == SERVER_CHROOT_SPOOL)
            dir = conf_str("queue_directory");
        else if (opts->chroot == SERVER_CHROOT_EMPTY)
            dir = empty = xasprintf("%s/%s", conf_str("queue_directory"), SERVER_EMPTY_DIR);
        else if (opts->chroot == SERVER_CHROOT_LOGIN)
            dir = empty = xasprintf("%s/%s", conf_str("queue_directory"), SERVER_LOGIN_DIR);
        else if (opts->chroot == SERVER_CHROOT_DMARC)
            dir = empty = xasprintf("%s/%s", conf_str("queue_directory"), SERVER_DMARC_DIR);
        gid_t groups[SERVER_EXTRA_GROUPS_MAX + 1];
        size_t ngroups = 1;

        /* The mail_owner group opens private/ (the internal sockets). */
        groups[0] = owner_gid;
        if (opts->extra_groups)
            ngroups += opts->extra_groups(groups + 1, SERVER_EXTRA_GROUPS_MAX);
        if (opts->no_service_group)
            privs_drop(conf_str(opts->user_param), NULL, 0, dir);
        else
            privs_drop(conf_str(opts->user_param), groups, ngroups, dir);
        server_jailed = dir != NULL;
        free(empty);
    }

    server_loop = event_loop_new();
    if (opts->post_init)
        opts->post_init(server_loop);
    for (int i = 0; i < server_nlisten; i++) {
        int fd = SERVER_LISTEN_FD + i;

        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        event_add_fd(server_loop, fd, EVENT_READ, server_on_accept, NULL);
    }
    fcntl(SERVER_TRIGGER_FD, F_SETFL, fcntl(SERVER_TRIGGER_FD, F_GETFL) | O_NONBLOCK);
    fcntl(SERVER_TRIGGER_FD, F_SETFD, FD_CLOEXEC);
    fcntl(SERVER_STATUS_FD, F_SETFD, FD_CLOEXEC);
    event_add_fd(server_loop, SERVER_TRIGGER_FD, EVENT_READ, server_on_trigger, NULL);
    server_report(SERVER_AVAIL);
    server_arm_idle();
    event_loop_run(server_loop);
    server_exit(0);
}

void server_peer_uids(const char *const *params, size_t n, uid_t *uids)
{
    gid_t gid;

    for (size_t i = 0; i < n; i++)
        if (privs_lookup(conf_str(params[i]), &uids[i], &gid) < 0)
            msg_fatal("%s account %s does not exist", params[i], conf_str(params[i]));
}

bool server_args_unix(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "-t") == 0 && strcmp(argv[i + 1], "unix") == 0)
            return true;
    return false;
}
