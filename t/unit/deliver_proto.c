/*
 * t/unit/deliver_proto.c - unit tests for lib/deliver_proto.c: a request
 * with several recipients and a descriptor, and a result with a site part
 * and several statuses (with how each left us: relayed or not), each
 * encoded and decoded back; texts cut to DELIVER_TEXT_LIMIT with control
 * characters replaced; and the refusals:
 * no descriptor, no or too many recipients, a count beyond the fields, a
 * bad queue ID, flags, a status of the wrong class, a site class other than
 * 0 or 4, trailing fields, a relayed value out of range or on a failure,
 * a status without it.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deliver_proto.h"
#include "ipc.h"
#include "msg.h"
#include "xalloc.h"
#include "../lib/tap.h"

#define QID "4bb8mD3VZHz1Pneg"

/* Decode a request built field by field (fd: attach /dev/null). */
static int request_of(const char *const *strs, const int64_t *ints, const char *layout, int fd,
                      struct deliver_request *r, const char **why)
{
    ipc_msg_t *m = ipc_msg_new(DELIVER_REQUEST, 1);
    int rc;

    for (; *layout; layout++)
        if (*layout == 's')
            ipc_put_str(m, *strs++);
        else
            ipc_put_int(m, *ints++);
    if (fd)
        ipc_set_fd(m, open("/dev/null", O_RDONLY | O_CLOEXEC));
    rc = deliver_request_decode(m, r, why);
    ipc_msg_free(&m);
    if (rc == 0)
        deliver_request_free(r);
    return rc;
}

static void test_request(void)
{
    struct deliver_rcpt rcpts[2] = {
        {.index = 0, .address = "joe@example.test", .orig_recipient = NULL},
        {.index = 3, .address = "ann@example.test", .orig_recipient = "list@example.test"},
    };
    struct deliver_request in = {
        .queue_id = QID, .sender = "", .nexthop = "example.test", .nrcpt = 2, .rcpts = rcpts,
        .queue_fd = open("/dev/null", O_RDONLY | O_CLOEXEC),
    }, out;
    const char *why = NULL;
    ipc_msg_t *m = deliver_request_encode(5, &in);

    m->fd = dup(in.queue_fd);
    ok(deliver_request_decode(m, &out, &why) == 0, "a request with two recipients decodes");
    is_str(out.queue_id, QID, "queue id");
    is_str(out.sender, "", "the null sender");
    is_str(out.nexthop, "example.test", "nexthop");
    is_int((int)out.nrcpt, 2, "two recipients");
    ok(out.nrcpt == 2 && out.rcpts[1].index == 3 && strcmp(out.rcpts[1].address,
                                                           "ann@example.test") == 0
       && strcmp(out.rcpts[1].orig_recipient, "list@example.test") == 0
       && strcmp(out.rcpts[0].orig_recipient, "") == 0, "each with its index and addresses");
    ok(out.queue_fd >= 0 && m->fd < 0, "the descriptor moves into the request");
    deliver_request_free(&out);
    ok(out.queue_fd == -1 && out.rcpts == NULL, "free clears it");
    ipc_msg_free(&m);
    close(in.queue_fd);

    {
        const char *s1[] = {QID, "", "", "a@b", ""};
        const int64_t i1[] = {0, 1, 0};

        ok(request_of(s1, i1, "sssiiiss", 0, &out, &why) < 0 && strstr(why, "descriptor"),
           "no descriptor: refused");
    }
    {
        const char *s1[] = {QID, "", ""};
        const int64_t i1[] = {0, 0};

        ok(request_of(s1, i1, "sssii", 1, &out, &why) < 0, "no recipient: refused");
    }
    {
        const char *s1[] = {QID, "", ""};
        const int64_t i1[] = {0, DELIVER_MAX_RCPTS + 1};

        ok(request_of(s1, i1, "sssii", 1, &out, &why) < 0, "too many recipients: refused");
    }
    {
        const char *s1[] = {QID, "", "", "a@b", ""};
        const int64_t i1[] = {0, 2, 0};

        ok(request_of(s1, i1, "sssiiiss", 1, &out, &why) < 0, "fewer recipients than counted: "
           "refused");
    }
    {
        const char *s1[] = {"../etc", "", "", "a@b", ""};
        const int64_t i1[] = {0, 1, 0};

        ok(request_of(s1, i1, "sssiiiss", 1, &out, &why) < 0, "a bad queue id: refused");
    }
    {
        const char *s1[] = {QID, "", "", "a@b", ""};
        const int64_t i1[] = {1, 1, 0};

        ok(request_of(s1, i1, "sssiiiss", 1, &out, &why) < 0, "flags: refused");
    }
    {
        const char *s1[] = {QID, "", "", "a@b", "", "extra"};
        const int64_t i1[] = {0, 1, 0};

        ok(request_of(s1, i1, "sssiiisss", 1, &out, &why) < 0, "a trailing field: refused");
    }
    {
        const char *s1[] = {QID, "", "", "a@b", ""};
        const int64_t i1[] = {0, 1, 0};

        ok(request_of(s1, i1, "sssiiiss", 1, &out, &why) == 0, "and the same, well formed, "
           "is accepted");
    }
}


/* A one-recipient result as protocol version 1 wrote it: no relayed field. */
static ipc_msg_t *v1_result(void)
{
    ipc_msg_t *m = ipc_msg_new(DELIVER_RESULT, 6);

    ipc_put_int(m, 0);
    ipc_put_str(m, "");
    ipc_put_str(m, "local");
    ipc_put_int(m, 1);
    ipc_put_int(m, 2);
    ipc_put_str(m, "2.0.0");
    ipc_put_str(m, "delivered to maildir");
    ipc_put_str(m, "");
    ipc_put_str(m, "");
    return m;
}

static void test_result(void)
{
    char *long_text = xmalloc(DELIVER_TEXT_LIMIT * 2 + 1);
    struct deliver_status st[2] = {
        {2, "2.0.0", "250 2.0.0 Ok: queued as X", NULL, NULL, DELIVER_RELAYED},
        {5, "5.1.1", long_text, "smtp", "550 5.1.1 <bob@example.test>: no such user",
         DELIVER_FINAL},
    };
    struct deliver_result in = {.site_class = 4, .site_text = "lost\r\nconnection",
                                .relay = "mx.example.test[192.0.2.1]:25", .n = 2, .status = st},
        out;
    ipc_msg_t *m;

    memset(long_text, 'x', DELIVER_TEXT_LIMIT * 2);
    long_text[DELIVER_TEXT_LIMIT * 2] = '\0';
    m = deliver_result_encode(6, &in);
    ok(deliver_result_decode(m, &out) == 0, "a result with a site part and two statuses");
    ok(out.site_class == 4 && strcmp(out.site_text, "lost??connection") == 0,
       "the site part, controls replaced");
    is_str(out.relay, "mx.example.test[192.0.2.1]:25", "the relay");
    ok(out.n == 2 && out.status[0].dsn_class == 2 && strcmp(out.status[1].dsn, "5.1.1") == 0,
       "the statuses in order");
    is_int((int)strlen(out.status[1].text), DELIVER_TEXT_LIMIT, "a long text is cut");
    ok(strcmp(out.status[0].diag_type, "") == 0 && strcmp(out.status[1].diag_type, "smtp") == 0
       && strcmp(out.status[1].diag_text, "550 5.1.1 <bob@example.test>: no such user") == 0,
       "the diagnostic type and text (none: empty)");
    ok(out.status[0].relayed == DELIVER_RELAYED && out.status[1].relayed == DELIVER_FINAL,
       "relayed, per recipient");
    deliver_result_free(&out);
    ipc_msg_free(&m);

    st[0].relayed = DELIVER_RELAYED_DSN;
    m = deliver_result_encode(6, &in);
    ok(deliver_result_decode(m, &out) == 0 && out.status[0].relayed == DELIVER_RELAYED_DSN,
       "relayed to a server with DSN");
    deliver_result_free(&out);
    ipc_msg_free(&m);
    st[0].relayed = DELIVER_RELAYED_DSN + 1;
    m = deliver_result_encode(6, &in);
    ok(deliver_result_decode(m, &out) < 0, "an unknown relayed value: refused");
    ipc_msg_free(&m);
    st[0].relayed = -1;
    m = deliver_result_encode(6, &in);
    ok(deliver_result_decode(m, &out) < 0, "a negative relayed value: refused");
    ipc_msg_free(&m);
    st[0].relayed = DELIVER_FINAL;
    st[1].relayed = DELIVER_RELAYED;
    m = deliver_result_encode(6, &in);
    ok(deliver_result_decode(m, &out) < 0, "relayed on a failure (class 5): refused");
    ipc_msg_free(&m);
    st[1].relayed = DELIVER_FINAL;
    {
        /* A version 1 result (no relayed field) is short: refused. */
        ipc_msg_t *v1 = v1_result();

        ok(deliver_result_decode(v1, &out) < 0, "a status without its relayed field: refused");
        ipc_msg_free(&v1);
        v1 = v1_result();
        ipc_put_int(v1, DELIVER_FINAL);
        ok(deliver_result_decode(v1, &out) == 0 && out.status[0].relayed == DELIVER_FINAL,
           "the same with it: accepted");
        deliver_result_free(&out);
        ipc_msg_free(&v1);
    }

    st[1].dsn = "4.1.1";
    m = deliver_result_encode(6, &in);
    ok(deliver_result_decode(m, &out) < 0, "a status code of another class: refused");
    ipc_msg_free(&m);
    st[1].dsn = "5.1.1";
    in.site_class = 5;
    m = deliver_result_encode(6, &in);
    ok(deliver_result_decode(m, &out) < 0, "a site class other than 0 or 4: refused");
    ipc_msg_free(&m);
    free(long_text);
    ok(dsn_code_valid("4.7.27", 4) && !dsn_code_valid("4.7", 0) && !dsn_code_valid("4.1234.1", 0)
       && !dsn_code_valid("2.0.0x", 2), "dsn_code_valid");
}

int main(void)
{
    msg_init("deliver-proto-test", MSG_STDERR);
    deliver_proto_init();
    test_request();
    test_result();
    return done_testing();
}
