/*
 * t/unit/qmgr_proto.c - unit tests for lib/qmgr_proto.c: every message
 * encoded and decoded back, and the refusals: a bad queue ID, a flush
 * domain with a slash or over 255 bytes, a control message of an unknown
 * type, trailing fields, a reply with control characters or a bad ok.
 */
#include <stdlib.h>
#include <string.h>

#include "ipc.h"
#include "msg.h"
#include "qmgr_proto.h"
#include "xalloc.h"
#include "../lib/tap.h"

#define QID "4bb8mD3VZHz1Pneg"

static int control(uint32_t type, const char *arg, char **out)
{
    ipc_msg_t *m = qmgr_control_encode(type, 3, arg);
    int rc = qmgr_control_decode(m, out);

    ipc_msg_free(&m);
    return rc;
}

int main(void)
{
    char *s = NULL, *long_domain = xmalloc(300);
    ipc_msg_t *m;
    size_t count;
    int okv;

    msg_init("qmgr-proto-test", MSG_STDERR);
    qmgr_proto_init();
    m = qmgr_notify_encode(QID);
    ok(qmgr_notify_decode(m, &s) == 0 && strcmp(s, QID) == 0, "notify round trip");
    free(s);
    ipc_msg_free(&m);
    m = qmgr_notify_encode("../x");
    ok(qmgr_notify_decode(m, &s) < 0 && s == NULL, "notify: a bad queue id is refused");
    ipc_msg_free(&m);

    ok(control(QMGR_DELETE, QID, &s) == 0 && strcmp(s, QID) == 0, "delete ID");
    free(s);
    ok(control(QMGR_HOLD, QMGR_ALL, &s) == 0, "hold ALL");
    free(s);
    ok(control(QMGR_RELEASE, "all", &s) < 0, "release: only ALL, in capitals, means all");
    ok(control(QMGR_FLUSH, "", &s) == 0 && *s == '\0', "flush everything");
    free(s);
    ok(control(QMGR_FLUSH, "Mail-1.Example.org", &s) == 0, "flush a domain");
    free(s);
    ok(control(QMGR_FLUSH, "a/b", &s) < 0, "flush: a slash is no domain");
    memset(long_domain, 'a', 299);
    long_domain[299] = '\0';
    ok(control(QMGR_FLUSH, long_domain, &s) < 0, "flush: over 255 bytes");
    ok(control(QMGR_REPLY, "", &s) < 0, "control: another type is refused");
    m = qmgr_control_encode(QMGR_DELETE, 3, QID);
    ipc_put_str(m, "extra");
    ok(qmgr_control_decode(m, &s) < 0, "control: a trailing field is refused");
    ipc_msg_free(&m);

    m = qmgr_reply_encode(4, 1, 7, "deleted 7 messages");
    ok(qmgr_reply_decode(m, &okv, &count, &s) == 0 && okv == 1 && count == 7
       && strcmp(s, "deleted 7 messages") == 0, "reply round trip");
    free(s);
    ipc_msg_free(&m);
    m = qmgr_reply_encode(4, 0, 0, "bad\ntext");
    ok(qmgr_reply_decode(m, &okv, &count, &s) < 0 && s == NULL, "reply: a control character "
       "is refused");
    ipc_msg_free(&m);
    m = ipc_msg_new(QMGR_REPLY, 4);
    ipc_put_int(m, 2);
    ipc_put_int(m, 0);
    ipc_put_str(m, "x");
    ok(qmgr_reply_decode(m, &okv, &count, &s) < 0, "reply: ok other than 0 or 1 is refused");
    ipc_msg_free(&m);
    free(long_domain);
    return done_testing();
}
