/*
 * t/unit/check_proto.c - unit tests for lib/check_proto.c: each message
 * encoded and decoded back, the result names, and the decoders' refusals
 * (wrong type, a descriptor where none belongs or none where one must
 * be, numbers out of range, fields too long, trailing bytes); and the
 * client call against a forked server that answers, answers wrongly or
 * closes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_proto.h"
#include "ipc.h"
#include "msg.h"
#include "xalloc.h"
#include "../lib/tap.h"

static void test_names(void)
{
    is_str(check_spf_name(CHECK_SPF_SOFTFAIL), "softfail", "spf name");
    is_str(check_spf_name(99), "?", "spf name out of range");
    is_str(check_dmarc_name(CHECK_DMARC_TEMPERROR), "temperror", "dmarc name");
    is_str(check_disposition_name(CHECK_DISPOSITION_QUARANTINE), "quarantine", "disposition");
    is_str(check_disposition_name(-1), "?", "disposition out of range");
}

static void test_spf(void)
{
    struct check_spf_request q = { "192.0.2.1", "mx.sender.test", "a@sender.test" }, q2;
    struct check_spf_result r = { CHECK_SPF_FAIL, "sender.test", "not allowed" }, r2;
    ipc_msg_t *m;
    char *big;

    m = check_spf_request_encode(&q);
    ok(check_spf_request_decode(m, &q2) == 0 && strcmp(q2.client_addr, "192.0.2.1") == 0
       && strcmp(q2.helo, "mx.sender.test") == 0 && strcmp(q2.sender, "a@sender.test") == 0,
       "spf request round trip");
    check_spf_request_clear(&q2);
    ipc_msg_free(&m);
    m = check_spf_result_encode(&r);
    ok(check_spf_result_decode(m, &r2) == 0 && r2.result == CHECK_SPF_FAIL
       && strcmp(r2.domain, "sender.test") == 0 && strcmp(r2.comment, "not allowed") == 0,
       "spf result round trip");
    check_spf_result_clear(&r2);
    ipc_msg_free(&m);

    m = check_spf_result_encode(&r);
    m->type = CHECK_SPF;
    ok(check_spf_request_decode(m, &q2) < 0 && q2.client_addr == NULL, "wrong shape refused");
    ipc_msg_free(&m);
    m = ipc_msg_new(CHECK_SPF_RESULT, 0);
    ipc_put_int(m, CHECK_SPF_LAST + 1);
    ipc_put_str(m, "");
    ipc_put_str(m, "");
    ok(check_spf_result_decode(m, &r2) < 0, "result out of range refused");
    ipc_msg_free(&m);
    m = ipc_msg_new(CHECK_SPF_RESULT, 0);
    ipc_put_int(m, -1);
    ipc_put_str(m, "");
    ipc_put_str(m, "");
    ok(check_spf_result_decode(m, &r2) < 0, "negative result refused");
    ipc_msg_free(&m);
    big = xmalloc(CHECK_FIELD_MAX + 2);
    memset(big, 'a', CHECK_FIELD_MAX + 1);
    big[CHECK_FIELD_MAX + 1] = '\0';
    q.sender = big;
    m = check_spf_request_encode(&q);
    ok(check_spf_request_decode(m, &q2) < 0 && q2.client_addr == NULL, "a sender too long refused");
    ipc_msg_free(&m);
    free(big);
    q.sender = "a@sender.test";
    m = check_spf_request_encode(&q);
    ipc_put_int(m, 1);
    ok(check_spf_request_decode(m, &q2) < 0, "trailing field refused");
    ipc_msg_free(&m);
    m = check_spf_request_encode(&q);
    ipc_set_fd(m, dup(0));
    ok(check_spf_request_decode(m, &q2) < 0, "a descriptor with an spf request refused");
    ipc_msg_free(&m);
}

static void test_message(void)
{
    int fd = memfd_create("t", 0);
    struct check_message_request q = { "2001:db8::1", "h", "", "example.test", 5, fd }, q2;
    struct check_message_result r = { CHECK_DMARC_FAIL, CHECK_DISPOSITION_REJECT, "sender.test",
                                      "mx; dmarc=fail", "DMARC fail" }, r2;
    ipc_msg_t *m;

    ok(write(fd, "hello", 5) == 5, "content written");
    m = check_message_request_encode(&q);
    ok(m && m->fd >= 0 && m->fd != fd, "the request carries its own copy of the descriptor");
    ok(check_message_request_decode(m, &q2) == 0 && q2.content_len == 5 && q2.content_fd >= 0
       && strcmp(q2.rcpt_domain, "example.test") == 0 && q2.sender[0] == '\0',
       "message request round trip");
    check_message_request_clear(&q2);
    ok(q2.content_fd == -1, "clear closes the descriptor");
    ipc_msg_free(&m);
    q.content_fd = -1;
    m = check_message_request_encode(&q);
    ok(check_message_request_decode(m, &q2) < 0, "a message request without a descriptor refused");
    ipc_msg_free(&m);
    m = check_message_result_encode(&r);
    ok(check_message_result_decode(m, &r2) == 0 && r2.dmarc == CHECK_DMARC_FAIL
       && r2.disposition == CHECK_DISPOSITION_REJECT && strcmp(r2.auth_results, "mx; dmarc=fail") == 0,
       "message result round trip");
    check_message_result_clear(&r2);
    ipc_msg_free(&m);
    m = ipc_msg_new(CHECK_MESSAGE_RESULT, 0);
    ipc_put_int(m, CHECK_DMARC_PASS);
    ipc_put_int(m, CHECK_DISPOSITION_LAST + 1);
    ipc_put_str(m, "");
    ipc_put_str(m, "");
    ipc_put_str(m, "");
    ok(check_message_result_decode(m, &r2) < 0, "disposition out of range refused");
    ipc_msg_free(&m);
    close(fd);
}

/* A server that reads one request and answers with reply (or closes). */
static pid_t fake_server(int sv, int how)
{
    pid_t pid = fork();

    if (pid == 0) {
        ipc_msg_t *m = NULL, *reply;
        struct check_spf_result r = { CHECK_SPF_PASS, "d.test", "ok" };

        if (ipc_recv(sv, &m, CHECK_MAX_PAYLOAD, 5000) <= 0)
            _exit(1);
        if (how == 0)
            reply = check_spf_result_encode(&r);
        else if (how == 1)
            reply = ipc_msg_new(CHECK_MESSAGE_RESULT, 0);
        else
            _exit(0);
        ipc_send(sv, reply, 5000);
        _exit(0);
    }
    return pid;
}

static void test_client(void)
{
    struct check_spf_request q = { "192.0.2.1", "h", "a@b.test" };
    struct check_spf_result r;
    int sv[2], how, status;
    pid_t pid;

    for (how = 0; how < 3; how++) {
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
            break;
        pid = fake_server(sv[1], how);
        close(sv[1]);
        if (how == 0)
            ok(check_spf(sv[0], &q, &r, 5000) == 0 && r.result == CHECK_SPF_PASS,
               "client call: the answer");
        else if (how == 1)
            ok(check_spf(sv[0], &q, &r, 5000) < 0 && errno == EPROTO, "client call: wrong reply");
        else
            ok(check_spf(sv[0], &q, &r, 5000) < 0, "client call: server closes");
        check_spf_result_clear(&r);
        close(sv[0]);
        waitpid(pid, &status, 0);
    }
}

int main(void)
{
    msg_init("check-proto-test", MSG_STDERR);
    check_proto_init();
    test_names();
    test_spf();
    test_message();
    test_client();
    return done_testing();
}
