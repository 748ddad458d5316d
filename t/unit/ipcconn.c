/*
 * t/unit/ipcconn.c - unit tests for lib/ipcconn.c over socketpairs: the
 * peer check at accept (root always, another account only when listed:
 * the refusal names its uid), nothing returned before a whole hello, the
 * hello answered with ours, a request right behind the hello in the same
 * write, a wrong protocol or version refused, a request in pieces, a
 * clean close (why NULL) and one before the hello, and replies; the
 * limit of connections per peer account.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipc.h"
#include "ipcconn.h"
#include "msg.h"
#include "../lib/tap.h"

static void pair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        exit(2);
}

static ipc_msg_t *hello(const char *proto, int version)
{
    ipc_msg_t *m = ipc_msg_new(IPC_HELLO, 0);

    ipc_put_str(m, proto);
    ipc_put_int(m, version);
    return m;
}

/* The wire form of m, as ipc_send writes it. */
static buf_t *wire(const ipc_msg_t *m)
{
    buf_t *b = buf_new(0);
    char chunk[512];
    ssize_t n;
    int w[2];

    pair(w);
    ipc_send(w[0], m, 1000);
    close(w[0]);
    while ((n = read(w[1], chunk, sizeof(chunk))) > 0)
        buf_append(b, chunk, (size_t)n);
    close(w[1]);
    return b;
}

static void test_session(void)
{
    ipcconn_t *c;
    ipc_msg_t *h = hello("test", 3), *req = ipc_msg_new(7, 42), *m = NULL;
    buf_t *hw = wire(h), *rw;
    const char *why = NULL;
    uid_t none[1] = {12345};
    int sv[2];

    ipc_put_str(req, "question");
    rw = wire(req);
    pair(sv);
    c = ipcconn_accept(sv[1], "test", 3, none, 1, 4096, &why);
    ok(c != NULL, "root is always allowed");
    is_int(ipcconn_recv(c, &m, &why), 0, "nothing sent: nothing to do");
    if (write(sv[0], hw->data, 5) != 5)
        exit(2);
    is_int(ipcconn_recv(c, &m, &why), 0, "half a hello: still nothing");
    /* The rest of the hello and a whole request in one write. */
    {
        buf_t *both = buf_new(0);

        buf_append(both, hw->data + 5, hw->len - 5);
        buf_append(both, rw->data, rw->len);
        if (write(sv[0], both->data, both->len) != (ssize_t)both->len)
            exit(2);
        buf_free(&both);
    }
    is_int(ipcconn_recv(c, &m, &why), 1, "the hello and then the request behind it");
    ok(m && m->type == 7 && m->reqid == 42, "the request, not the hello");
    ipc_msg_free(&m);
    {
        const char *cwhy;

        ok(ipc_hello_recv(sv[0], "test", 3, 1000, &cwhy) == 0, "our hello came back");
    }
    /* A request in two pieces. */
    if (write(sv[0], rw->data, 3) != 3)
        exit(2);
    is_int(ipcconn_recv(c, &m, &why), 0, "part of a request: nothing yet");
    if (write(sv[0], rw->data + 3, rw->len - 3) != (ssize_t)(rw->len - 3))
        exit(2);
    is_int(ipcconn_recv(c, &m, &why), 1, "the rest: the request");
    ipc_msg_free(&m);
    ok(ipcconn_send(c, req) == 0, "a reply goes out");
    close(sv[0]);
    is_int(ipcconn_recv(c, &m, &why), -1, "the client closed: drop it");
    ok(why == NULL, "a clean close has no reason to log");
    ipcconn_free(&c);
    ok(c == NULL, "free clears the pointer");

    pair(sv);
    c = ipcconn_accept(sv[1], "test", 3, none, 1, 4096, &why);
    ipc_msg_free(&h);
    h = hello("test", 4);
    ipc_send(sv[0], h, 1000);
    is_int(ipcconn_recv(c, &m, &why), -1, "a wrong version is refused");
    like(why ? why : "", "wrong version", "with the reason");
    ipcconn_free(&c);
    close(sv[0]);

    pair(sv);
    c = ipcconn_accept(sv[1], "test", 3, none, 1, 4096, &why);
    close(sv[0]);
    is_int(ipcconn_recv(c, &m, &why), -1, "closed before the hello: drop it");
    like(why ? why : "", "before hello", "and say so");
    ipcconn_free(&c);

    ipc_msg_free(&h);
    ipc_msg_free(&req);
    buf_free(&hw);
    buf_free(&rw);
}

/* A peer of another account: refused at accept, named by uid. */
static void test_refused(void)
{
    const char *why = NULL;
    uid_t allowed[1] = {12345};
    int sv[2], status;
    pid_t pid;
    ipcconn_t *c;
    char *want;

    if (geteuid() != 0) {
        tap_count++;
        printf("ok %d # skip not root\n", tap_count);
        return;
    }
    /* SO_PEERCRED of a socketpair is its creator: create it as nobody and
     * pass one end back. */
    {
        ipc_msg_t *m = NULL;
        int p[2];

        pair(p);
        pid = fork();
        if (pid == 0) {
            if (setgid(65534) < 0 || setuid(65534) < 0)
                _exit(1);
            pair(sv);
            m = ipc_msg_new(1, 0);
            ipc_set_fd(m, sv[1]);
            _exit(ipc_send(p[1], m, 1000) < 0);
        }
        close(p[1]);
        sv[1] = ipc_recv(p[0], &m, 100, 5000) == 1 ? ipc_take_fd(m) : -1;
        ipc_msg_free(&m);
        close(p[0]);
        waitpid(pid, &status, 0);
    }
    c = ipcconn_accept(sv[1], "test", 3, allowed, 1, 4096, &why);
    ok(c == NULL, "an account not listed is refused at accept");
    want = "uid 65534: peer uid not allowed";
    is_str(why ? why : "", want, "naming its uid");
}

/* A peer account may hold IPCCONN_PER_UID_MAX connections, no more; a
 * freed one makes room. */
static void test_per_uid_limit(void)
{
    static ipcconn_t *held[IPCCONN_PER_UID_MAX];
    struct rlimit rl;
    const uid_t none[1] = {12345};
    const char *why;
    ipcconn_t *c;
    size_t n = 0;
    int sv[2];

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < IPCCONN_PER_UID_MAX + 64) {
        rl.rlim_cur = rl.rlim_max < IPCCONN_PER_UID_MAX + 64 ? rl.rlim_max
                      : IPCCONN_PER_UID_MAX + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < IPCCONN_PER_UID_MAX + 64) {
        ok(1, "# SKIP the descriptor limit is below %d", IPCCONN_PER_UID_MAX + 64);
        return;
    }
    for (; n < IPCCONN_PER_UID_MAX; n++) {
        pair(sv);
        close(sv[0]);
        if ((held[n] = ipcconn_accept(sv[1], "test", 3, none, 1, 4096, &why)) == NULL)
            break;
    }
    is_int((long long)n, IPCCONN_PER_UID_MAX, "one account may hold %d connections",
           IPCCONN_PER_UID_MAX);
    pair(sv);
    c = ipcconn_accept(sv[1], "test", 3, none, 1, 4096, &why);
    ok(c == NULL, "  one more is refused");
    like(why, "too many connections (1024)", "  saying why");
    close(sv[0]);
    ipcconn_free(&held[0]);
    pair(sv);
    held[0] = ipcconn_accept(sv[1], "test", 3, none, 1, 4096, &why);
    ok(held[0] != NULL, "  a freed one makes room");
    close(sv[0]);
    for (size_t i = 0; i < n; i++)
        ipcconn_free(&held[i]);
}

int main(void)
{
    alarm(60);
    signal(SIGPIPE, SIG_IGN);
    msg_init("ipcconn-test", MSG_STDERR);
    test_session();
    test_refused();
    test_per_uid_limit();
    return done_testing();
}
