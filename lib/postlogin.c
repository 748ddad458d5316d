/*
 * postlogin - the mail half's root process: hand-overs in, session
 * processes out (see postlogin.h).
 */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth_proto.h"
#include "conf.h"
#include "handover_proto.h"
#include "ipc.h"
#include "ipcconn.h"
#include "msg.h"
#include "postlogin.h"
#include "privs.h"
#include "server.h"
#include "svcconn.h"
#include "xalloc.h"

#define POSTLOGIN_SESSIONS_MAX 65536
/* How long root waits for a user's process to take a connection (a
 * socketpair buffer holds several hand-overs: it waits only for a
 * process that does not read, which must not hold every login up). */
#define POSTLOGIN_CHANNEL_SEND_MS 200

static const char *postlogin_service;
static postlogin_serve_fn postlogin_serve;
static uid_t postlogin_login_uid;
static struct svcconn postlogin_authd = SVCCONN_INIT(AUTH_SOCKET, AUTH_PROTO_NAME,
                                                     AUTH_PROTO_VERSION);
static uint32_t postlogin_reqid;

/* Per-user mode: the users' processes that take more connections. */
struct postlogin_user {
    char                  *name;
    uid_t                  uid;
    pid_t                  pid;
    int                    channel;     /* root's end */
    uint64_t               sent;        /* connections given, the first included */
    ipc_reader_t          *reader;
    struct postlogin_user *next;
};
static bool postlogin_per_user;
static event_loop_t *postlogin_loop;
static struct postlogin_user *postlogin_users;

/* The live session processes. */
static pid_t *postlogin_pids;
static size_t postlogin_npids, postlogin_pids_size;

static void postlogin_pid_add(pid_t pid)
{
    if (postlogin_npids == postlogin_pids_size) {
        postlogin_pids_size = postlogin_pids_size ? postlogin_pids_size * 2 : 64;
        postlogin_pids = xreallocarray(postlogin_pids, postlogin_pids_size, sizeof(pid_t));
    }
    postlogin_pids[postlogin_npids++] = pid;
}

/* A session counts as a connection in progress (lib/server): a mail half
 * that master retires (a reload) stays until its last session ends. */
static void postlogin_pid_del(pid_t pid)
{
    for (size_t i = 0; i < postlogin_npids; i++)
        if (postlogin_pids[i] == pid) {
            postlogin_pids[i] = postlogin_pids[--postlogin_npids];
            server_conn_end();
            return;
        }
}

static struct postlogin_user *postlogin_user_find(const char *name, uid_t uid)
{
    for (struct postlogin_user *u = postlogin_users; u; u = u->next)
        if (u->uid == uid && strcmp(u->name, name) == 0)
            return u;
    return NULL;
}

/* Let a user's process go: it gets no more connections and exits at the
 * end of its channel once its sessions are over. */
static void postlogin_user_forget(struct postlogin_user *gone)
{
    for (struct postlogin_user **up = &postlogin_users; *up; up = &(*up)->next)
        if (*up == gone) {
            *up = gone->next;
            event_del_fd(postlogin_loop, gone->channel);
            close(gone->channel);
            ipc_reader_free(&gone->reader);
            free(gone->name);
            free(gone);
            return;
        }
}

static void postlogin_forget_pid(pid_t pid)
{
    for (struct postlogin_user *u = postlogin_users; u; u = u->next)
        if (u->pid == pid) {
            postlogin_user_forget(u);
            return;
        }
}

/* A report on a user's channel: idle (let it go if nothing is in
 * flight), or its end (the process is going or gone). */
static void postlogin_on_channel(event_loop_t *loop, int fd, int events, void *arg)
{
    struct postlogin_user *u = arg;
    ipc_msg_t *m = NULL;
    const char *why;
    uint64_t received;
    int rc;

    (void)loop;
    (void)fd;
    (void)events;
    while ((rc = ipc_reader_recv(u->reader, u->channel, &m)) == 1) {
        rc = handover_idle_decode(m, &received, &why);
        ipc_msg_free(&m);
        if (rc < 0) {
            msg_warn("%s: the process of %s (pid %ld): %s", postlogin_service, u->name,
                     (long)u->pid, why);
            postlogin_user_forget(u);
            return;
        }
        if (received == u->sent) {
            postlogin_user_forget(u);
            return;
        }
    }
    if (rc == 0 || errno != EAGAIN)
        postlogin_user_forget(u);
}

static void postlogin_on_child(event_loop_t *loop, int signo, void *arg)
{
    int status;
    pid_t pid;

    (void)loop;
    (void)signo;
    (void)arg;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        postlogin_pid_del(pid);
        postlogin_forget_pid(pid);
        if (WIFSIGNALED(status) && WTERMSIG(status) != SIGTERM)
            msg_warn("%s session process %ld was killed by signal %d", postlogin_service,
                     (long)pid, WTERMSIG(status));
        else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
            msg_warn("%s session process %ld exited with status %d", postlogin_service,
                     (long)pid, WEXITSTATUS(status));
    }
}

/* However the root process ends (SIGTERM from master's stop, master gone,
 * a fatal error), its sessions end with it: nothing would reap them or
 * pass on the next stop.  (A retired one waits for them instead.) */
static void postlogin_end_sessions(void)
{
    for (size_t i = 0; i < postlogin_npids; i++)
        kill(postlogin_pids[i], SIGTERM);
}

static void postlogin_on_term(event_loop_t *loop, int signo, void *arg)
{
    (void)loop;
    (void)signo;
    (void)arg;
    exit(0);
}

void postlogin_init(event_loop_t *loop, const char *service, postlogin_serve_fn serve)
{
    static const char *const params[] = { "login_user" };

    postlogin_loop = loop;
    postlogin_service = service;
    postlogin_serve = serve;
    server_peer_uids(params, 1, &postlogin_login_uid);
    auth_proto_init();
    handover_proto_init();
    event_add_signal(loop, SIGCHLD, postlogin_on_child, NULL);
    event_add_signal(loop, SIGTERM, postlogin_on_term, NULL);
    atexit(postlogin_end_sessions);
}

void postlogin_init_per_user(event_loop_t *loop, const char *service, postlogin_serve_fn serve)
{
    postlogin_init(loop, service, serve);
    postlogin_per_user = true;
}

/* Ask authd who the cookie belongs to: AUTH_OK with *user, AUTH_FAIL, or
 * AUTH_TEMPFAIL (authd cannot be reached or misbehaved; logged). */
static int postlogin_redeem(const struct handover_request *r, long login_pid, char **user)
{
    struct auth_reply rep = {0};
    const char *why = NULL;
    ipc_msg_t *m, *in = NULL;
    int rc;

    *user = NULL;
    for (;;) {
        if (svcconn_fd(&postlogin_authd, HANDOVER_TIMEOUT_MS) < 0)
            return AUTH_TEMPFAIL;
        m = auth_redeem_encode(++postlogin_reqid, r->service, r->cookie, login_pid);
        rc = ipc_send(postlogin_authd.fd, m, HANDOVER_TIMEOUT_MS);
        ipc_msg_free(&m);
        if (rc == 0 && (rc = ipc_recv(postlogin_authd.fd, &in, AUTH_FRAME_MAX,
                                      HANDOVER_TIMEOUT_MS)) == 1)
            break;
        if (rc == 0)
            errno = ECONNRESET;
        if (!svcconn_retry(&postlogin_authd))
            return AUTH_TEMPFAIL;
    }
    if (auth_reply_decode(in, &rep, &why) < 0 || rep.type != AUTH_REDEEMED
        || rep.reqid != postlogin_reqid) {
        if (why == NULL)
            auth_reply_clear(&rep);
        msg_warn("authd answered a redemption with %s", why ? why : "another reply");
        ipc_msg_free(&in);
        svcconn_lost(&postlogin_authd);
        return AUTH_TEMPFAIL;
    }
    ipc_msg_free(&in);
    rc = rep.result;
    if (rc == AUTH_OK)
        *user = xstrdup(rep.user);
    auth_reply_clear(&rep);
    return rc;
}

/* The session process: become the user, then serve.  Never returns. */
static _Noreturn void postlogin_child(struct postlogin_session *ps, gid_t *groups,
                                      size_t ngroups)
{
    int keep[] = { 0, 1, 2, ps->fd, msg_detach_fds(), ps->channel };
    int home_ok;

    event_reset_signals();
    signal(SIGPIPE, SIG_IGN);
    privs_close_fds(keep, sizeof(keep) / sizeof(keep[0]));
    privs_drop_ids(ps->uid, ps->gid, groups, ngroups, NULL);
    /* The kernel makes us non-dumpable on the uid change unless
     * fs.suid_dumpable says otherwise: say so ourselves, so the user
     * cannot ptrace a process that root's half started. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        msg_fatal("prctl(PR_SET_DUMPABLE): %s", strerror(errno));
    if (setuid(0) == 0 || privs_verify_dropped() < 0)
        msg_panic("%s session process for %s could regain root after the drop",
                  ps->service, ps->user);
    umask(077);
    home_ok = chdir(ps->home) == 0;
    if (!home_ok)
        msg_warn("%s: cannot enter home directory %s: %s", ps->user, ps->home, strerror(errno));
    postlogin_serve(ps, home_ok);
    _exit(0);
}

/* Per-user mode: give the connection to the user's running process: 0
 * when it took it, -1 when there is none or it cannot take it now (then
 * it is let go, and the caller starts another). */
static int postlogin_give(const struct handover_request *r, const struct postlogin_session *ps)
{
    static const unsigned char redeemed[AUTH_COOKIE_LEN];
    struct postlogin_user *u = postlogin_user_find(ps->user, ps->uid);
    ipc_msg_t *m;
    int fd, rc;

    if (u == NULL)
        return -1;
    if ((fd = fcntl(r->fd, F_DUPFD_CLOEXEC, 0)) < 0) {
        msg_warn("%s: dup: %s", postlogin_service, strerror(errno));
        return -1;
    }
    m = handover_request_encode(r->service, redeemed, r->client_addr, r->client_port, r->flags,
                                r->mech, r->tag, r->input, r->input_len, fd);
    rc = ipc_send(u->channel, m, POSTLOGIN_CHANNEL_SEND_MS);
    ipc_msg_free(&m);
    if (rc == 0) {
        u->sent++;
        return 0;
    }
    msg_warn("%s: the process of %s (pid %ld) does not take a connection (%s): starting another",
             postlogin_service, u->name, (long)u->pid, strerror(errno));
    postlogin_user_forget(u);
    return -1;
}

/* The request of one login half: 0 with the reply sent, -1 to drop it. */
static int postlogin_request(ipcconn_t *c, ipc_msg_t *m)
{
    struct handover_request r;
    struct postlogin_session ps = {0};
    const char *why = NULL;
    char *user = NULL, *home = NULL;
    int result = HANDOVER_OK, rc;
    const char *reason = "";
    gid_t *groups = NULL;
    size_t ngroups = 0;
    struct passwd *pw;
    pid_t login_pid = 0, pid;
    int pair[2] = { -1, -1 };
    ipc_msg_t *reply;

    if (handover_request_decode(m, &r, &why) < 0) {
        msg_warn("%s: dropping a login half (uid %ld): %s", postlogin_service, (long)c->uid, why);
        return -1;
    }
    if (strcmp(r.service, postlogin_service) != 0) {
        msg_warn("%s: dropping a login half (uid %ld): a hand-over for %s", postlogin_service,
                 (long)c->uid, r.service);
        handover_request_clear(&r);
        return -1;
    }
    if (ipc_peer_uid(c->fd, NULL, &login_pid) < 0 || login_pid <= 0) {
        result = HANDOVER_TEMPFAIL;
        reason = "cannot read the login half's credentials";
        goto reply;
    }
    rc = postlogin_redeem(&r, login_pid, &user);
    if (rc != AUTH_OK) {
        result = rc == AUTH_FAIL ? HANDOVER_FAIL : HANDOVER_TEMPFAIL;
        reason = rc == AUTH_FAIL ? "authd refused the hand-over cookie" : "authd failed";
        if (rc == AUTH_FAIL)
            msg_warn("%s: authd refused the hand-over cookie of login process %ld for [%s]",
                     postlogin_service, (long)login_pid, r.client_addr);
        goto reply;
    }
    errno = 0;
    if ((pw = getpwnam(user)) == NULL) {
        result = errno == 0 || errno == ENOENT || errno == ESRCH ? HANDOVER_FAIL
                 : HANDOVER_TEMPFAIL;
        reason = "the login has no account on this host";
        msg_warn("%s: login %s has no account on this host", postlogin_service, user);
        goto reply;
    }
    if (pw->pw_uid == 0 || (long long)pw->pw_uid < conf_int("first_valid_uid")) {
        result = HANDOVER_FAIL;
        reason = "the login's uid is below first_valid_uid";
        msg_warn("%s: login %s: uid %ld is below first_valid_uid (%lld)", postlogin_service,
                 user, (long)pw->pw_uid, conf_int("first_valid_uid"));
        goto reply;
    }
    if (pw->pw_dir == NULL || pw->pw_dir[0] != '/') {
        result = HANDOVER_FAIL;
        reason = "the login's home directory is not an absolute path";
        msg_warn("%s: login %s: home directory is not an absolute path", postlogin_service, user);
        goto reply;
    }
    ps.uid = pw->pw_uid;
    ps.gid = pw->pw_gid;
    home = xstrdup(pw->pw_dir);
    if (privs_groups(user, ps.gid, &groups, &ngroups) < 0) {
        result = HANDOVER_FAIL;
        reason = "the login is in too many groups";
        goto reply;
    }
    ps.service = postlogin_service;
    ps.user = user;
    ps.home = home;
    ps.fd = r.fd;
    ps.client_addr = r.client_addr;
    ps.client_port = r.client_port;
    ps.flags = r.flags;
    ps.mech = r.mech;
    ps.tag = r.tag;
    ps.input = r.input;
    ps.input_len = r.input_len;
    ps.login_pid = login_pid;
    ps.channel = -1;
    if (postlogin_per_user && postlogin_give(&r, &ps) == 0)
        goto reply;
    if (postlogin_npids >= POSTLOGIN_SESSIONS_MAX) {
        result = HANDOVER_TEMPFAIL;
        reason = "too many sessions";
        goto reply;
    }
    if (postlogin_per_user && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
        msg_warn("%s: socketpair: %s", postlogin_service, strerror(errno));
        result = HANDOVER_TEMPFAIL;
        reason = "cannot start a session process";
        goto reply;
    }
    ps.channel = pair[1];
    if ((pid = fork()) < 0) {
        msg_warn("%s: fork: %s", postlogin_service, strerror(errno));
        result = HANDOVER_TEMPFAIL;
        reason = "cannot start a session process";
        if (pair[0] >= 0) {
            close(pair[0]);
            close(pair[1]);
        }
        goto reply;
    }
    if (pid == 0)
        postlogin_child(&ps, groups, ngroups);
    postlogin_pid_add(pid);
    server_conn_begin();
    if (pair[0] >= 0) {
        struct postlogin_user *u = xcalloc(1, sizeof(*u));

        close(pair[1]);
        u->name = xstrdup(user);
        u->uid = ps.uid;
        u->pid = pid;
        u->channel = pair[0];
        u->sent = 1;
        u->reader = ipc_reader_new(HANDOVER_FRAME_MAX);
        u->next = postlogin_users;
        postlogin_users = u;
        event_add_fd(postlogin_loop, u->channel, EVENT_READ, postlogin_on_channel, u);
    }
reply:
    reply = handover_reply_encode(result, reason);
    rc = ipcconn_send(c, reply);
    ipc_msg_free(&reply);
    handover_request_clear(&r);
    free(groups);
    free(home);
    free(user);
    return rc < 0 ? -1 : 0;
}

static void postlogin_drop(event_loop_t *loop, ipcconn_t *c)
{
    event_del_fd(loop, c->fd);
    ipcconn_free(&c);
    server_conn_end();
}

static void postlogin_on_request(event_loop_t *loop, int fd, int events, void *arg)
{
    ipcconn_t *c = arg;
    ipc_msg_t *m = NULL;
    int rc;

    (void)fd;
    (void)events;
    while ((rc = server_ipc_recv(c, &m)) == 1) {
        rc = postlogin_request(c, m);
        ipc_msg_free(&m);
        if (rc < 0)
            break;
    }
    if (rc < 0)
        postlogin_drop(loop, c);
}

void postlogin_accept(event_loop_t *loop, int fd)
{
    ipcconn_t *c = server_ipc_accept(fd, HANDOVER_PROTO_NAME, HANDOVER_PROTO_VERSION,
                                     &postlogin_login_uid, 1, HANDOVER_FRAME_MAX);

    if (c == NULL)
        return;
    event_add_fd(loop, c->fd, EVENT_READ, postlogin_on_request, c);
}

/* ------------------------------------------ in a user's process (per-user) */

int postlogin_channel_recv(const struct postlogin_session *self, struct postlogin_session **psp)
{
    static ipc_reader_t *reader;
    struct handover_request r;
    struct postlogin_session *ps;
    ipc_msg_t *m = NULL;
    const char *why;
    int rc;

    *psp = NULL;
    if (reader == NULL)
        reader = ipc_reader_new(HANDOVER_FRAME_MAX);
    if ((rc = ipc_reader_recv(reader, self->channel, &m)) <= 0) {
        if (rc < 0 && errno != EAGAIN)
            msg_warn("%s: the channel from the mail half: %s", self->service, strerror(errno));
        return rc;
    }
    rc = handover_request_decode(m, &r, &why);
    ipc_msg_free(&m);
    if (rc < 0) {
        msg_warn("%s: the channel from the mail half: %s", self->service, why);
        errno = EPROTO;
        return -1;
    }
    ps = xcalloc(1, sizeof(*ps));
    ps->service = self->service;
    ps->user = xstrdup(self->user);
    ps->uid = self->uid;
    ps->gid = self->gid;
    ps->home = xstrdup(self->home);
    ps->fd = r.fd;
    r.fd = -1;
    ps->client_addr = xstrdup(r.client_addr);
    ps->client_port = xstrdup(r.client_port);
    ps->flags = r.flags;
    ps->mech = xstrdup(r.mech);
    ps->tag = xstrdup(r.tag);
    ps->input = xmemdup(r.input, r.input_len);
    ps->input_len = r.input_len;
    ps->login_pid = 0;
    ps->channel = self->channel;
    handover_request_clear(&r);
    *psp = ps;
    return 1;
}

void postlogin_session_free(struct postlogin_session **psp)
{
    struct postlogin_session *ps = *psp;

    if (ps == NULL)
        return;
    free((char *)ps->user);
    free((char *)ps->home);
    free((char *)ps->client_addr);
    free((char *)ps->client_port);
    free((char *)ps->mech);
    free((char *)ps->tag);
    free((void *)ps->input);
    free(ps);
    *psp = NULL;
}

int postlogin_channel_idle(int channel, uint64_t received)
{
    ipc_msg_t *m = handover_idle_encode(received);
    int rc = ipc_send(channel, m, HANDOVER_TIMEOUT_MS);

    ipc_msg_free(&m);
    return rc;
}
