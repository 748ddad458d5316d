/*
 * t/unit/session.c - unit tests for lib/session.c, the connection layer of
 * the line-protocol servers.
 *
 * Over a socketpair (a peer that is not IP: "local") and a loopback TCP
 * connection (the peer's address and port): the peer and its name; replies
 * held back while pipelined input waits and flushed before the session
 * waits; an over-long line; the timeout; the soft and hard error limits;
 * plaintext pipelined after STARTTLS thrown away; and the goodbye a
 * SIGTERM sends to an idle session, but not to one with input to read.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "msg.h"
#include "session.h"
#include "../lib/tap.h"

static const struct session_limits limits = {
    .line_limit = 64, .timeout_ms = 300, .soft_errors = 1, .hard_errors = 3, .error_sleep = 1,
};

/* What the client has received so far, without waiting. */
static char *client_got(int fd)
{
    static char got[1024];
    ssize_t n = recv(fd, got, sizeof(got) - 1, MSG_DONTWAIT);

    got[n > 0 ? n : 0] = '\0';
    return got;
}

static void test_socketpair(void)
{
    session_t s;
    buf_t *line = buf_new(0);
    int sv[2];
    ssize_t n;

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        ok(0, "socketpair: %s", strerror(errno));
        return;
    }
    session_open(&s, sv[0], sv[0], NULL, &limits);
    ok(!s.peer.ip, "a socketpair is no IP peer");
    is_str(s.peer.addr_text, "local", "  its address is \"local\"");
    is_str(s.peer.name, "unknown", "  its name \"unknown\"");
    session_set_name(&s, strdup("client.example"));
    is_str(s.peer.name, "client.example", "the policy's name is taken");
    session_set_name(&s, NULL);
    is_str(s.peer.name, "client.example", "  NULL keeps it");

    /* Pipelining: two commands at once; the reply to the first waits. */
    (void)!write(sv[1], "ONE\r\nTWO\r\n", 10);
    n = session_read_command(&s, line);
    is_int((int)n, 5, "the first command is read");
    stream_write(s.stream, "1\r\n", 3);
    n = session_read_command(&s, line);
    is_str(buf_cstr(line), "TWO\r\n", "the second one too");
    is_str(client_got(sv[1]), "", "  its reply held back while input was waiting");
    stream_write(s.stream, "2\r\n", 3);
    n = session_read_command(&s, line);
    is_int((int)n, STREAM_TIMEOUT, "with nothing more sent, the read times out");
    is_str(client_got(sv[1]), "1\r\n2\r\n", "  both replies went out before the wait");
    session_io_failed(&s, n);
    ok(s.done, "  and the session is done");
    s.done = false;

    /* An over-long line, then a good one. */
    {
        char big[200];

        memset(big, 'x', sizeof(big));
        (void)!write(sv[1], big, sizeof(big));
        (void)!write(sv[1], "\r\nOK\r\n", 6);
    }
    is_int((int)session_read_command(&s, line), STREAM_TOOLONG, "a line over the limit");
    is_int((int)session_read_command(&s, line), 4, "  the next line is read as it is");

    /* STARTTLS: plaintext after the command is thrown away. */
    (void)!write(sv[1], "STARTTLS\r\nMAIL FROM:<x>\r\n", 25);
    is_int((int)session_read_command(&s, line), 10, "STARTTLS is read");
    is_int((int)session_starttls_discard(&s, "STARTTLS"), 15,
           "  the 15 bytes pipelined after it are thrown away");
    is_int((int)session_read_command(&s, line), STREAM_TIMEOUT, "  nothing of them is read");

    /* Error limits: past the soft limit a reply waits error_sleep. */
    {
        struct timeval t0, t1;

        session_error(&s, false);
        ok(!session_too_many_errors(&s), "one error: go on");
        gettimeofday(&t0, NULL);
        session_error(&s, false);
        gettimeofday(&t1, NULL);
        ok((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000 >= 900,
           "the second (past the soft limit) waits error_sleep");
        ok(!session_too_many_errors(&s), "  two errors: go on");
        session_error(&s, true);
        ok(session_too_many_errors(&s), "three (the hard limit): the end");
    }
    session_close(&s);
    is_str(s.peer.name, "unknown", "closed: the name is gone");
    close(sv[0]);
    close(sv[1]);
    buf_free(&line);
}

static void test_tcp(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(sa);
    char port[16];
    session_t s;
    int l, c, a;

    l = socket(AF_INET, SOCK_STREAM, 0);
    c = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0 || c < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 1) < 0
        || getsockname(l, (struct sockaddr *)&sa, &len) < 0
        || connect(c, (struct sockaddr *)&sa, sizeof(sa)) < 0 || (a = accept(l, NULL, NULL)) < 0) {
        ok(0, "a loopback connection: %s", strerror(errno));
        return;
    }
    len = sizeof(sa);
    getsockname(c, (struct sockaddr *)&sa, &len);
    snprintf(port, sizeof(port), "%u", ntohs(sa.sin_port));
    session_open(&s, a, a, NULL, &limits);
    ok(s.peer.ip, "a TCP peer is an IP peer");
    is_str(s.peer.addr_text, "127.0.0.1", "  its address");
    is_str(s.peer.port, port, "  its port");
    session_close(&s);
    close(a);
    close(c);
    close(l);
}

/* A child serving a session gets SIGTERM: the goodbye goes out only when
 * it waits for a command with everything answered. */
static void test_sigterm(int with_input)
{
    buf_t *line = buf_new(0);
    int sv[2], status;
    char got[128];
    ssize_t n;
    pid_t pid;

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        ok(0, "socketpair: %s", strerror(errno));
        return;
    }
    if ((pid = fork()) == 0) {
        struct session_limits lim = limits;
        session_t s;

        close(sv[1]);
        lim.timeout_ms = 20000;
        signal(SIGTERM, session_on_sigterm);
        session_open(&s, sv[0], sv[0], NULL, &lim);
        session_set_goodbye(&s, "421 4.3.2 Service shutting down\r\n");
        if (with_input) {
            /* Busy with a command: the signal comes while not waiting. */
            session_read_command(&s, line);
            pause();
        }
        session_read_command(&s, line);
        _exit(3);
    }
    close(sv[0]);
    if (with_input)
        (void)!write(sv[1], "NOOP\r\n", 6);
    usleep(300000);
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "SIGTERM %s: the process exits 0",
       with_input ? "while busy" : "while idle");
    n = recv(sv[1], got, sizeof(got) - 1, MSG_DONTWAIT);
    got[n > 0 ? n : 0] = '\0';
    if (with_input)
        is_str(got, "", "  no goodbye in the middle of a command");
    else
        is_str(got, "421 4.3.2 Service shutting down\r\n", "  the goodbye was sent");
    close(sv[1]);
    buf_free(&line);
}

int main(void)
{
    msg_init("session-test", MSG_STDERR);
    signal(SIGPIPE, SIG_IGN);
    alarm(60);
    test_socketpair();
    test_tcp();
    test_sigterm(0);
    test_sigterm(1);
    return done_testing();
}
