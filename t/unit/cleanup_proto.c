/*
 * t/unit/cleanup_proto.c - unit tests for lib/cleanup_proto.c: the
 * request decoder and check, above all the privilege rules (DESIGN.md §1:
 * a field that carries privilege is accepted only from a peer that holds
 * it, and the decoder enforces it).
 *
 * Covers: the peer classes (root and mail_owner trusted, anyone else the
 * network); from a trusted peer the bounce flag, submit_uid, submit_user,
 * maildrop_id and unknown attributes pass; from network_user each of them
 * is refused, as are a missing or empty client_addr, while smtpd's own
 * attributes (client, HELO, TLS, SASL) pass; a maildrop file (the local
 * class) must carry submit_uid and submit_user and may add only helo_name
 * and protocol; a duplicated attribute is refused for every class;
 * malformed envelopes; a refused request is freed and its content
 * descriptor closed (no leak); a request sent with cleanup_submit over a
 * socketpair decodes to the same fields; the reason names the attribute
 * and the peer class.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup_proto.h"
#include "ipc.h"
#include "msg.h"
#include "queue.h"
#include "xalloc.h"
#include "../lib/tap.h"
#include "../lib/testlib.h"

#define N_ CLEANUP_PEER_NETWORK
#define L_ CLEANUP_PEER_LOCAL
#define T_ CLEANUP_PEER_TRUSTED

/* The lowest free descriptor: a difference is a leak. */
static int lowest_fd(void)
{
    int fd = fcntl(0, F_DUPFD_CLOEXEC, 0);

    if (fd >= 0)
        close(fd);
    return fd;
}

static int content_fd(void)
{
    int fd = memfd_create("t", MFD_CLOEXEC);

    if (fd < 0 || write(fd, "x\r\n", 3) != 3)
        msg_fatal("memfd: %s", strerror(errno));
    return fd;
}

/* A request as a peer would encode it (the layout of cleanup_submit);
 * attrs: NULL-terminated name, value pairs. */
static ipc_msg_t *encode(int flags, const char *const *attrs)
{
    ipc_msg_t *m = ipc_msg_new(CLEANUP_SUBMIT, 1);
    size_t n = 0;

    while (attrs && attrs[2 * n])
        n++;
    ipc_put_int(m, flags);
    ipc_put_str(m, "sender@example.org");
    ipc_put_str(m, "");
    ipc_put_int(m, QUEUE_RET_NONE);
    ipc_put_int(m, (int64_t)n);
    for (size_t i = 0; i < n; i++) {
        ipc_put_str(m, attrs[2 * i]);
        ipc_put_str(m, attrs[2 * i + 1]);
    }
    ipc_put_int(m, 1);
    ipc_put_str(m, "user@example.test");
    ipc_put_str(m, "");
    ipc_put_str(m, "");
    ipc_put_int(m, 0);
    ipc_put_int(m, 3);
    ipc_set_fd(m, content_fd());
    return m;
}

/* Decode what encode(flags, attrs) gives from a peer of class peer: 0 or
 * -1; *why the reason.  Checks that nothing leaks either way. */
static int decode_as(enum cleanup_peer peer, int flags, const char *const *attrs,
                     const char **why)
{
    struct cleanup_request r;
    int before = lowest_fd(), rc;
    ipc_msg_t *m = encode(flags, attrs);

    *why = "";
    rc = cleanup_request_decode(m, peer, &r, why);
    if (rc == 0 && m->fd >= 0)
        ok(0, "decode left the descriptor in the message");
    ipc_msg_free(&m);
    if (rc == 0) {
        if (r.content_fd < 0)
            ok(0, "a decoded request has its content descriptor");
        cleanup_request_free(&r);
    } else if (r.content_fd != -1 || r.nattr != 0 || r.sender != NULL) {
        ok(0, "a refused request is freed");
    }
    if (lowest_fd() != before)
        ok(0, "descriptor leak: lowest free fd %d, was %d", lowest_fd(), before);
    return rc;
}

static const char *const smtpd_attrs[] = {
    QUEUE_ATTR_CLIENT_NAME, "mx.example.net", QUEUE_ATTR_CLIENT_ADDR, "192.0.2.1",
    CLEANUP_ATTR_CLIENT_PORT, "2525", QUEUE_ATTR_HELO, "mx.example.net",
    QUEUE_ATTR_PROTOCOL, "ESMTPS", CLEANUP_ATTR_TLS_PROTOCOL, "TLSv1.3",
    CLEANUP_ATTR_TLS_CIPHER, "TLS_AES_256_GCM_SHA384", CLEANUP_ATTR_TLS_BITS, "256",
    QUEUE_ATTR_SASL_USER, "alice", NULL,
};

static void test_classes(void)
{
    is_int(cleanup_peer_class(0, 107), T_, "root is trusted");
    is_int(cleanup_peer_class(107, 107), T_, "mail_owner is trusted");
    is_int(cleanup_peer_class(108, 107), N_, "network_user is the network");
    is_int(cleanup_peer_class(65534, 107), N_, "any other uid is the network, never more");
    is_str(cleanup_peer_name(N_), "network_user", "class names for the log");
    is_str(cleanup_peer_name(L_), "a maildrop file", "local class name");
}

static void test_trusted(void)
{
    static const char *const submit[] = {
        QUEUE_ATTR_SUBMIT_UID, "0", QUEUE_ATTR_SUBMIT_USER, "root",
        QUEUE_ATTR_MAILDROP_ID, "4bYfG80000z1", "x_future", "y", NULL,
    };
    static const char *const bounce[] = {QUEUE_ATTR_PROTOCOL, "bounce", NULL};
    const char *why;

    ok(decode_as(T_, CLEANUP_FLAG_BOUNCE, bounce, &why) == 0, "trusted: the bounce flag (qmgr)");
    ok(decode_as(T_, 0, submit, &why) == 0,
       "trusted: submit_uid, submit_user, maildrop_id, an unknown attribute (pickup)");
    ok(decode_as(T_, 0, NULL, &why) == 0, "trusted: no attributes at all");
    ok(decode_as(T_, 0, smtpd_attrs, &why) == 0, "trusted: the client attributes too");
    ok(decode_as(T_, 1 << 5, NULL, &why) < 0, "trusted: an unknown flag is still malformed");
    is_str(why, "bad envelope", "  as a bad envelope");
}

static void test_network(void)
{
    const char *why;

    if (!ok(decode_as(N_, 0, smtpd_attrs, &why) == 0, "network: smtpd's attributes pass"))
        diag("%s", why);
    ok(decode_as(N_, CLEANUP_FLAG_BOUNCE, smtpd_attrs, &why) < 0,
       "network: the bounce flag is refused");
    is_str(why, "the bounce flag from network_user, which may not set it", "  with the reason");
    ok(decode_as(N_, CLEANUP_FLAG_HIDE_CLIENT, smtpd_attrs, &why) == 0,
       "network: the hide_client flag passes (submission_hide_client)");
    ok(decode_as(N_, 1 << 5, smtpd_attrs, &why) < 0, "network: an unknown flag is refused");
    {
        const char *const a[] = {QUEUE_ATTR_CLIENT_ADDR, "192.0.2.1", QUEUE_ATTR_SUBMIT_UID, "0",
                                 NULL};

        ok(decode_as(N_, 0, a, &why) < 0, "network: submit_uid is refused");
        is_str(why, "attribute submit_uid from network_user, which may not set it",
               "  the reason names the attribute and the peer");
    }
    {
        const char *const a[] = {QUEUE_ATTR_SUBMIT_UID, "0", NULL};

        ok(decode_as(N_, 0, a, &why) < 0, "network: submit_uid without client_addr is refused");
    }
    {
        const char *const a[] = {QUEUE_ATTR_CLIENT_ADDR, "192.0.2.1", QUEUE_ATTR_SUBMIT_USER,
                                 "root", NULL};

        ok(decode_as(N_, 0, a, &why) < 0, "network: submit_user is refused");
    }
    {
        const char *const a[] = {QUEUE_ATTR_CLIENT_ADDR, "192.0.2.1", QUEUE_ATTR_MAILDROP_ID,
                                 "4bYfG80000z1", NULL};

        ok(decode_as(N_, 0, a, &why) < 0, "network: maildrop_id is refused");
    }
    {
        const char *const a[] = {QUEUE_ATTR_CLIENT_ADDR, "192.0.2.1", "x_future", "y", NULL};

        ok(decode_as(N_, 0, a, &why) < 0, "network: an attribute not in the table is refused");
    }
    {
        const char *const a[] = {QUEUE_ATTR_HELO, "x", QUEUE_ATTR_PROTOCOL, "ESMTP", NULL};

        ok(decode_as(N_, 0, a, &why) < 0, "network: no client_addr is refused");
        is_str(why, "no client_addr attribute from network_user", "  with the reason");
        ok(decode_as(N_, 0, NULL, &why) < 0, "network: no attributes at all is refused");
    }
    {
        const char *const a[] = {QUEUE_ATTR_CLIENT_ADDR, "", NULL};

        ok(decode_as(N_, 0, a, &why) < 0, "network: an empty client_addr is refused");
    }
    {
        const char *const a[] = {QUEUE_ATTR_CLIENT_ADDR, "local", NULL};

        ok(decode_as(N_, 0, a, &why) == 0, "network: client_addr \"local\" (a UNIX socket) passes");
    }
}

/* The local class applies to maildrop files, through the check. */
static int check_local(const char *const *attrs, int flags, const char **why)
{
    struct cleanup_request r;
    int rc;

    cleanup_request_init(&r);
    r.flags = flags;
    r.sender = xstrdup("alice@example.test");
    r.envid = xstrdup("");
    for (size_t i = 0; attrs && attrs[2 * i]; i++)
        cleanup_request_attr(&r, attrs[2 * i], attrs[2 * i + 1]);
    cleanup_request_rcpt(&r, "bob@example.test", "", "", 0);
    *why = "";
    rc = cleanup_request_check(&r, L_, why);
    cleanup_request_free(&r);
    return rc;
}

static void test_local(void)
{
    const char *why;
    static const char *const sendmail[] = {
        QUEUE_ATTR_SUBMIT_UID, "1000", QUEUE_ATTR_SUBMIT_USER, "alice", NULL,
    };
    static const char *const bs[] = {
        QUEUE_ATTR_HELO, "localhost", QUEUE_ATTR_PROTOCOL, "ESMTP",
        QUEUE_ATTR_SUBMIT_UID, "1000", QUEUE_ATTR_SUBMIT_USER, "alice", NULL,
    };
    static const char *const no_user[] = {QUEUE_ATTR_SUBMIT_UID, "1000", NULL};
    static const char *const no_uid[] = {QUEUE_ATTR_SUBMIT_USER, "alice", NULL};
    static const char *const client[] = {
        QUEUE_ATTR_SUBMIT_UID, "1000", QUEUE_ATTR_SUBMIT_USER, "alice",
        QUEUE_ATTR_CLIENT_ADDR, "192.0.2.1", NULL,
    };
    static const char *const tls[] = {
        QUEUE_ATTR_SUBMIT_UID, "1000", QUEUE_ATTR_SUBMIT_USER, "alice",
        QUEUE_ATTR_SASL_USER, "root", NULL,
    };
    static const char *const drop[] = {
        QUEUE_ATTR_SUBMIT_UID, "1000", QUEUE_ATTR_SUBMIT_USER, "alice",
        QUEUE_ATTR_MAILDROP_ID, "4bYfG80000z1", NULL,
    };

    if (!ok(check_local(sendmail, 0, &why) == 0, "local: sendmail's file passes"))
        diag("%s", why);
    ok(check_local(bs, 0, &why) == 0, "local: sendmail -bs adds helo_name and protocol");
    ok(check_local(no_user, 0, &why) < 0, "local: submit_user is required");
    ok(check_local(no_uid, 0, &why) < 0, "local: submit_uid is required");
    is_str(why, "a maildrop file without submit_uid and submit_user", "  with the reason");
    ok(check_local(NULL, 0, &why) < 0, "local: no attributes is refused");
    ok(check_local(client, 0, &why) < 0, "local: client_addr (posing as network mail) is refused");
    is_str(why, "attribute client_addr from a maildrop file, which may not set it",
           "  with the reason");
    ok(check_local(tls, 0, &why) < 0, "local: sasl_username is refused");
    ok(check_local(drop, 0, &why) < 0, "local: maildrop_id (pickup's word) is refused");
    ok(check_local(sendmail, CLEANUP_FLAG_BOUNCE, &why) < 0, "local: the bounce flag is refused");
    ok(check_local(sendmail, CLEANUP_FLAG_HIDE_CLIENT, &why) < 0,
       "local: the hide_client flag is refused");
    is_str(why, "the hide_client flag from a maildrop file, which may not set it",
           "  with the reason");
}

static void test_duplicates(void)
{
    static const char *const twice[] = {
        QUEUE_ATTR_CLIENT_ADDR, "192.0.2.1", QUEUE_ATTR_CLIENT_ADDR, "127.0.0.1", NULL,
    };
    static const char *const uid_twice[] = {
        QUEUE_ATTR_SUBMIT_UID, "1000", QUEUE_ATTR_SUBMIT_USER, "alice",
        QUEUE_ATTR_SUBMIT_UID, "0", NULL,
    };
    const char *why;

    ok(decode_as(N_, 0, twice, &why) < 0, "network: an attribute twice is refused");
    is_str(why, "an attribute given twice", "  with the reason");
    ok(decode_as(T_, 0, twice, &why) < 0, "trusted: an attribute twice is refused too");
    ok(check_local(uid_twice, 0, &why) < 0,
       "local: a second submit_uid (the first one checked, the second one used) is refused");
}

/* The envelope rules hold for every class. */
static void test_malformed(void)
{
    ipc_msg_t *m;
    struct cleanup_request r;
    const char *why;
    int before = lowest_fd();

    m = ipc_msg_new(CLEANUP_SUBMIT, 1);
    ipc_put_int(m, 0);
    ipc_put_str(m, "a\r\nb");
    ipc_put_str(m, "");
    ipc_put_int(m, 0);
    ipc_put_int(m, 0);
    ipc_put_int(m, 1);
    ipc_put_str(m, "u@x");
    ipc_put_str(m, "");
    ipc_put_str(m, "");
    ipc_put_int(m, 0);
    ipc_put_int(m, 3);
    ipc_set_fd(m, content_fd());
    ok(cleanup_request_decode(m, T_, &r, &why) < 0, "a CR LF in the sender is refused");
    ipc_msg_free(&m);

    m = encode(0, NULL);
    ipc_put_int(m, 7);          /* one field too many */
    ok(cleanup_request_decode(m, T_, &r, &why) < 0, "trailing fields are refused");
    is_str(why, "malformed request", "  as malformed");
    ipc_msg_free(&m);

    m = encode(0, smtpd_attrs);
    close(ipc_take_fd(m));
    ok(cleanup_request_decode(m, N_, &r, &why) < 0, "no content descriptor is refused");
    ipc_msg_free(&m);
    is_int(lowest_fd(), before, "no descriptor leaked by the refusals");
}

/* cleanup_submit's encoding and the decoder agree. */
static void test_round_trip(void)
{
    struct cleanup_request r, got;
    struct cleanup_result res;
    const char *why = "";
    ipc_msg_t *m = NULL, *reply;
    int sv[2], status;
    pid_t pid;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        ok(0, "socketpair: %s", strerror(errno));
        return;
    }
    if ((pid = fork()) == 0) {
        close(sv[0]);
        cleanup_request_init(&r);
        r.sender = xstrdup("s@example.org");
        r.envid = xstrdup("env1");
        r.ret = QUEUE_RET_HDRS;
        cleanup_request_attr(&r, QUEUE_ATTR_CLIENT_ADDR, "2001:db8::1");
        cleanup_request_attr(&r, QUEUE_ATTR_HELO, "h.example");
        cleanup_request_rcpt(&r, "a@example.test", "A@example.test", "rfc822;a@example.test",
                             QUEUE_NOTIFY_FAILURE);
        cleanup_request_rcpt(&r, "b@example.test", NULL, NULL, 0);
        r.content_fd = content_fd();
        r.content_len = 3;
        if (cleanup_submit(sv[1], &r, &res, 5000) < 0 || res.code != 250
            || strcmp(res.text, "QID") != 0)
            _exit(1);
        cleanup_result_free(&res);
        cleanup_request_free(&r);
        _exit(0);
    }
    close(sv[1]);
    if (ipc_recv(sv[0], &m, CLEANUP_MAX_REQUEST, 5000) != 1) {
        ok(0, "receive the request");
        close(sv[0]);
        reap(pid);
        return;
    }
    if (!ok(cleanup_request_decode(m, N_, &got, &why) == 0, "cleanup_submit's request decodes"))
        diag("%s", why);
    ipc_msg_free(&m);
    is_str(got.sender, "s@example.org", "sender");
    is_str(got.envid, "env1", "envid");
    is_int(got.ret, QUEUE_RET_HDRS, "ret");
    is_int(got.nattr, 2, "two attributes");
    is_str(cleanup_request_get_attr(&got, QUEUE_ATTR_CLIENT_ADDR), "2001:db8::1", "client_addr");
    is_int(got.nrcpt, 2, "two recipients");
    is_str(got.rcpts[0].orcpt, "rfc822;a@example.test", "orcpt");
    is_int(got.rcpts[0].notify, QUEUE_NOTIFY_FAILURE, "notify");
    is_str(got.rcpts[1].orig, "", "no orig is empty");
    is_int(got.content_len, 3, "content length");
    ok(got.content_fd >= 0, "the content descriptor came along");
    cleanup_request_free(&got);
    reply = cleanup_result_encode(1, 250, "2.0.0", "QID");
    ipc_send(sv[0], reply, 5000);
    ipc_msg_free(&reply);
    status = reap(pid);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the client got its result");
    close(sv[0]);
}

/* The fake cleanup of test_kept_retry: one connection, its hello, the
 * first request answered; then the second request either read and left
 * without an answer (read_second) or left unread; then, if a retry comes,
 * answered on a new connection.  Exits with the number of connections. */
static _Noreturn void kept_server(int lsock, int read_second)
{
    ipc_msg_t *m = NULL, *reply;
    const char *why;
    struct pollfd p;
    uid_t me = getuid();
    int conn, n = 0;

    for (int round = 0; round < 2; round++) {
        p = (struct pollfd){.fd = lsock, .events = POLLIN};
        if (poll(&p, 1, round == 0 ? 5000 : 1000) <= 0)
            break;
        if ((conn = accept(lsock, NULL, NULL)) < 0)
            _exit(100);
        n++;
        if (ipc_server_hello(conn, CLEANUP_PROTO_NAME, CLEANUP_PROTO_VERSION, &me, 1, 5000,
                             &why) < 0)
            _exit(101);
        for (int req = 0; req < (round == 0 ? 2 : 1); req++) {
            if (req == 1 && !read_second) {
                /* The request has arrived; close with it unread. */
                p = (struct pollfd){.fd = conn, .events = POLLIN};
                poll(&p, 1, 5000);
                break;
            }
            if (ipc_recv(conn, &m, CLEANUP_MAX_REQUEST, 5000) != 1)
                _exit(102);
            ipc_msg_free(&m);
            if (req == 1)
                break;          /* read, then gone without an answer */
            reply = cleanup_result_encode(1, 250, "2.0.0", "QID");
            ipc_send(conn, reply, 5000);
            ipc_msg_free(&reply);
        }
        close(conn);
    }
    _exit(n);
}

/* cleanup_submit_kept retries on a new connection only when cleanup left
 * the request unread; when it read it and ended without an answer (killed
 * between its commit and its reply) the message may be queued, and a
 * retry would deliver it twice. */
static void test_kept_retry(void)
{
    char dir[] = "/tmp/cleanup-proto-XXXXXX", *path;
    struct cleanup_request r;
    struct cleanup_result res;
    const char *why;
    int lsock, sock = -1, rc1, rc2, status, saved;
    pid_t pid;

    if (mkdtemp(dir) == NULL || chdir(dir) < 0 || mkdir("private", 0700) < 0) {
        ok(0, "a spool for the fake cleanup: %s", strerror(errno));
        return;
    }
    for (int read_second = 0; read_second < 2; read_second++) {
        if ((lsock = ipc_listen(CLEANUP_SOCKET, 0600, 8)) < 0) {
            ok(0, "listen: %s", strerror(errno));
            return;
        }
        if ((pid = fork()) == 0)
            kept_server(lsock, read_second);
        close(lsock);
        cleanup_request_init(&r);
        r.sender = xstrdup("s@example.org");
        r.envid = xstrdup("");
        cleanup_request_rcpt(&r, "a@example.test", NULL, NULL, 0);
        r.content_fd = content_fd();
        r.content_len = 3;
        sock = -1;
        rc1 = cleanup_submit_kept(&sock, &r, &res, 5000, &why);
        if (rc1 == 0)
            cleanup_result_free(&res);
        rc2 = cleanup_submit_kept(&sock, &r, &res, 5000, &why);
        saved = errno;
        if (rc2 == 0)
            cleanup_result_free(&res);
        cleanup_request_free(&r);
        if (sock >= 0)
            close(sock);
        status = reap(pid);
        unlink(CLEANUP_SOCKET);
        ok(rc1 == 0, "%s: the first request is answered", read_second ? "read" : "unread");
        if (read_second) {
            ok(rc2 < 0 && saved == ECONNABORTED,
               "a request read and left without an answer fails (ECONNABORTED)");
            is_int(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 1,
                   "and is not sent again: one connection");
        } else {
            ok(rc2 == 0, "a request left unread on a kept connection is sent again");
            is_int(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 2,
                   "on a new connection");
        }
    }
    rmdir("private");
    path = xstrdup(dir);
    if (chdir("/") < 0 || rmdir(path) < 0)
        diag("cannot remove %s: %s", path, strerror(errno));
    free(path);
}

static void bad_class(void)
{
    struct cleanup_request r;
    const char *why;

    cleanup_request_init(&r);
    r.sender = xstrdup("");
    r.envid = xstrdup("");
    cleanup_request_rcpt(&r, "u@example.test", "", "", 0);
    cleanup_request_check(&r, (enum cleanup_peer)0, &why);
}

int main(void)
{
    alarm(60);
    msg_init("cleanup-proto-test", 0);
    cleanup_proto_init();
    test_classes();
    test_trusted();
    test_network();
    test_local();
    test_duplicates();
    test_malformed();
    test_round_trip();
    test_kept_retry();
    ok(dies_with_abort(bad_class), "a peer class that is none of the three panics (our bug)");
    return done_testing();
}
