/*
 * t/unit/auth_proto.c - unit tests for lib/auth_proto.c, the authd
 * protocol.
 *
 * Round trips of every message (binary data with NULs included, the
 * mechanism name upper-cased), and each rule of the decoders: unknown
 * service, bad mechanism names, a client address that is no address,
 * unknown flags, channel binding without a type or over the limit, an
 * initial response without its flag or over the limit, a descriptor that
 * came along, trailing fields, a DONE whose user does not match its
 * result, control characters in texts; the encoder cuts and cleans a
 * reason.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "auth_proto.h"
#include "ipc.h"
#include "msg.h"
#include "../lib/tap.h"

static const char cb[32] = "0123456789abcdef0123456789abcdef";

static int start_refused(const char *service, const char *mech, const char *addr,
                         unsigned flags, const char *cb_type, size_t cb_len, int has,
                         size_t data_len, const char *want_why)
{
    static char data[AUTH_DATA_MAX + 2];
    static char cbbig[AUTH_CB_MAX + 2];
    ipc_msg_t *m = ipc_msg_new(AUTH_START, 3);
    struct auth_request r;
    const char *why = NULL;
    int rc;

    ipc_put_str(m, service);
    ipc_put_str(m, mech);
    ipc_put_str(m, addr);
    ipc_put_int(m, flags);
    ipc_put_str(m, cb_type);
    ipc_put_bytes(m, cbbig, cb_len);
    ipc_put_int(m, has);
    ipc_put_bytes(m, data, data_len);
    rc = auth_request_decode(m, &r, &why);
    ipc_msg_free(&m);
    if (rc == 0) {
        auth_request_clear(&r);
        return 0;
    }
    return r.service == NULL && r.mech == NULL && why && strcmp(why, want_why) == 0;
}

static void test_requests(void)
{
    struct auth_request r;
    const char *why = NULL;
    ipc_msg_t *m;

    m = auth_start_encode(7, AUTH_SERVICE_SUBMISSION, "scram-sha-256-plus", "192.0.2.1",
                          AUTH_F_TLS, "tls-exporter", cb, sizeof(cb), 1, "n,,n=u\0x", 8);
    ok(auth_request_decode(m, &r, &why) == 0, "START decodes");
    is_int((int)r.type, AUTH_START, "  its type");
    is_int((int)r.reqid, 7, "  its request id");
    is_str(r.service, "submission", "  the service");
    is_str(r.mech, "SCRAM-SHA-256-PLUS", "  the mechanism, upper-cased");
    is_str(r.client_addr, "192.0.2.1", "  the client");
    is_int((int)r.flags, AUTH_F_TLS, "  the flags");
    is_str(r.cb_type, "tls-exporter", "  the channel binding type");
    ok(r.cb_len == sizeof(cb) && memcmp(r.cb_data, cb, sizeof(cb)) == 0, "  and its data");
    ok(r.has_data && r.data_len == 8 && memcmp(r.data, "n,,n=u\0x", 8) == 0,
       "  the initial response, NUL and all");
    auth_request_clear(&r);
    ipc_msg_free(&m);

    m = auth_start_encode(8, AUTH_SERVICE_IMAP, "LOGIN", "::1", AUTH_F_TLS | AUTH_F_PLAINTEXT_OK,
                          NULL, NULL, 0, 0, NULL, 0);
    ok(auth_request_decode(m, &r, &why) == 0 && !r.has_data && r.data_len == 0
       && *r.cb_type == '\0' && r.flags == (AUTH_F_TLS | AUTH_F_PLAINTEXT_OK),
       "START without initial response or channel binding");
    auth_request_clear(&r);
    ipc_msg_free(&m);
    m = auth_start_encode(8, AUTH_SERVICE_POP3, "PLAIN", "127.0.0.1", 0, "", NULL, 0, 1, "", 0);
    ok(auth_request_decode(m, &r, &why) == 0 && r.has_data && r.data_len == 0,
       "START with an empty initial response (\"=\") is not one without");
    auth_request_clear(&r);
    ipc_msg_free(&m);

    m = auth_step_encode(9, "\0\1\2", 3);
    ok(auth_request_decode(m, &r, &why) == 0 && r.type == AUTH_STEP && r.data_len == 3
       && memcmp(r.data, "\0\1\2", 3) == 0, "STEP decodes");
    auth_request_clear(&r);
    ipc_msg_free(&m);
    m = auth_cancel_encode(10);
    ok(auth_request_decode(m, &r, &why) == 0 && r.type == AUTH_CANCEL && r.reqid == 10,
       "CANCEL decodes");
    auth_request_clear(&r);
    ipc_msg_free(&m);

    ok(start_refused("lmtp", "PLAIN", "127.0.0.1", 0, "", 0, 0, 0, "unknown service"),
       "an unknown service is refused");
    ok(start_refused("submission", "", "127.0.0.1", 0, "", 0, 0, 0, "bad mechanism name"),
       "an empty mechanism");
    ok(start_refused("submission", "PL AIN", "127.0.0.1", 0, "", 0, 0, 0, "bad mechanism name"),
       "a mechanism with a space");
    ok(start_refused("submission", "SCRAM-SHA-256-PLUS-AND-MUCH-MORE-X", "127.0.0.1", 0, "", 0,
                     0, 0, "bad mechanism name"), "a mechanism over AUTH_MECH_MAX");
    ok(start_refused("submission", "PLAIN", "localhost", 0, "", 0, 0, 0, "bad client address"),
       "a client address that is a name");
    ok(start_refused("submission", "PLAIN", "127.0.0.1", 8, "", 0, 0, 0, "bad flags"),
       "unknown flags");
    ok(start_refused("submission", "PLAIN", "127.0.0.1", 0, "tls-server-end-point", 32, 0, 0,
                     "bad channel binding"), "an unknown channel binding type");
    ok(start_refused("submission", "PLAIN", "127.0.0.1", 0, "", 32, 0, 0,
                     "bad channel binding"), "channel binding data without a type");
    ok(start_refused("submission", "PLAIN", "127.0.0.1", 0, "tls-unique", 0, 0, 0,
                     "bad channel binding"), "a type without data");
    ok(start_refused("submission", "PLAIN", "127.0.0.1", 0, "tls-unique", AUTH_CB_MAX + 1, 0, 0,
                     "bad channel binding"), "channel binding data over AUTH_CB_MAX");
    ok(start_refused("submission", "PLAIN", "127.0.0.1", 0, "", 0, 0, 5, "bad initial response"),
       "an initial response without its flag");
    ok(start_refused("submission", "PLAIN", "127.0.0.1", 0, "", 0, 2, 0, "bad initial response"),
       "a has-initial flag of 2");
    ok(start_refused("submission", "PLAIN", "127.0.0.1", 0, "", 0, 1, AUTH_DATA_MAX + 1,
                     "bad initial response"), "an initial response over AUTH_DATA_MAX");
    ok(!start_refused("submission", "PLAIN", "127.0.0.1", 0, "", 0, 1, AUTH_DATA_MAX, "x"),
       "one of exactly AUTH_DATA_MAX is fine");

    m = auth_step_encode(9, "x", 1);
    ipc_put_int(m, 1);
    ok(auth_request_decode(m, &r, &why) < 0 && errno == EPROTO
       && strcmp(why, "malformed request") == 0, "a trailing field is refused");
    ipc_msg_free(&m);
    m = auth_cancel_encode(9);
    ipc_set_fd(m, memfd_create("x", MFD_CLOEXEC));
    ok(auth_request_decode(m, &r, &why) < 0 && strstr(why, "descriptor"),
       "a request with a descriptor is refused");
    ipc_msg_free(&m);
    m = auth_continue_encode(9, "x", 1);
    ok(auth_request_decode(m, &r, &why) < 0 && strcmp(why, "unknown request type") == 0,
       "a reply type as a request is refused");
    ipc_msg_free(&m);
}

/* A DONE made by hand is refused for want_why, leaving nothing behind. */
static int done_refused_cookie(int result, const char *user, size_t cookie_len,
                               const char *want_why)
{
    ipc_msg_t *m = ipc_msg_new(AUTH_DONE, 1);
    struct auth_reply r;
    const char *why = NULL;
    int rc;

    ipc_put_int(m, result);
    ipc_put_str(m, user);
    ipc_put_bytes(m, "", 0);
    ipc_put_str(m, "");
    ipc_put_bytes(m, "0123456789abcdefXX", cookie_len);
    rc = auth_reply_decode(m, &r, &why);
    ipc_msg_free(&m);
    if (rc == 0) {
        auth_reply_clear(&r);
        return 0;
    }
    return r.user == NULL && r.reason == NULL && why && strcmp(why, want_why) == 0;
}

static int done_refused(int result, const char *user, const char *want_why)
{
    return done_refused_cookie(result, user, 0, want_why);
}

static void test_replies(void)
{
    struct auth_reply r;
    const char *why = NULL;
    ipc_msg_t *m;
    char *long_reason = malloc(AUTH_REASON_MAX * 2);

    m = auth_continue_encode(4, "r=abc,s=\0,i=4096", 16);
    ok(auth_reply_decode(m, &r, &why) == 0 && r.type == AUTH_CONTINUE && r.reqid == 4,
       "CONTINUE decodes");
    ipc_msg_free(&m);
    ok(r.data_len == 16 && memcmp(r.data, "r=abc,s=\0,i=4096", 16) == 0,
       "  its challenge outlives the message (the reply owns a copy)");
    auth_reply_clear(&r);

    m = auth_done_encode(5, AUTH_OK, "alice", "v=xyz", 5, "", NULL);
    ok(auth_reply_decode(m, &r, &why) == 0, "DONE (OK) decodes");
    is_int(r.result, AUTH_OK, "  the result");
    is_str(r.user, "alice", "  the user");
    ok(r.data_len == 5 && memcmp(r.data, "v=xyz", 5) == 0, "  the final data");
    is_str(r.reason, "", "  no reason");
    auth_reply_clear(&r);
    ipc_msg_free(&m);

    m = auth_done_encode(5, AUTH_FAIL, "ignored", NULL, 0, "authentication failed:\ttab\n", NULL);
    ok(auth_reply_decode(m, &r, &why) == 0 && r.result == AUTH_FAIL && *r.user == '\0',
       "DONE (FAIL) carries no user, whatever the caller gave");
    is_str(r.reason, "authentication failed:?tab?", "  control characters in the reason cleaned");
    auth_reply_clear(&r);
    ipc_msg_free(&m);
    memset(long_reason, 'r', AUTH_REASON_MAX * 2 - 1);
    long_reason[AUTH_REASON_MAX * 2 - 1] = '\0';
    m = auth_done_encode(5, AUTH_TEMPFAIL, NULL, NULL, 0, long_reason, NULL);
    ok(auth_reply_decode(m, &r, &why) == 0 && strlen(r.reason) == AUTH_REASON_MAX,
       "a long reason is cut to fit");
    auth_reply_clear(&r);
    ipc_msg_free(&m);
    free(long_reason);

    /* Hand-made replies that break the rules. */
    ok(done_refused(AUTH_OK, "", "bad user"), "OK without a user is refused");
    ok(done_refused(AUTH_FAIL, "mallory", "bad user"), "FAIL with a user is refused");
    ok(done_refused(3, "", "bad result"), "an unknown result is refused");
    ok(done_refused(AUTH_OK, "al\nice", "bad user"), "a user with a newline is refused");
    m = auth_step_encode(1, "x", 1);
    ok(auth_reply_decode(m, &r, &why) < 0 && strcmp(why, "unknown reply type") == 0,
       "a request type as a reply is refused");
    ipc_msg_free(&m);

    /* The hand-over: a cookie with DONE, its redemption and the answer. */
    {
        static const unsigned char cookie[AUTH_COOKIE_LEN] = "0123456789abcdef";
        struct auth_request rq;

        m = auth_done_encode(6, AUTH_OK, "alice", NULL, 0, "", cookie);
        ok(auth_reply_decode(m, &r, &why) == 0 && r.has_cookie
           && memcmp(r.cookie, cookie, AUTH_COOKIE_LEN) == 0, "DONE (OK) carries the cookie");
        auth_reply_clear(&r);
        ipc_msg_free(&m);
        m = auth_done_encode(6, AUTH_OK, "alice", NULL, 0, "", NULL);
        ok(auth_reply_decode(m, &r, &why) == 0 && !r.has_cookie, "  or none when not asked");
        auth_reply_clear(&r);
        ipc_msg_free(&m);
        ok(done_refused_cookie(AUTH_FAIL, "", AUTH_COOKIE_LEN, "bad cookie"),
           "a cookie with FAIL is refused");
        ok(done_refused_cookie(AUTH_OK, "alice", AUTH_COOKIE_LEN - 1, "bad cookie"),
           "a cookie of the wrong length is refused");

        m = auth_redeem_encode(7, AUTH_SERVICE_POP3, cookie, 4242);
        ok(auth_request_decode(m, &rq, &why) == 0 && rq.type == AUTH_REDEEM && rq.reqid == 7
           && strcmp(rq.service, "pop3") == 0 && rq.login_pid == 4242
           && rq.data_len == AUTH_COOKIE_LEN && memcmp(rq.data, cookie, AUTH_COOKIE_LEN) == 0,
           "REDEEM decodes: service, cookie, login process");
        auth_request_clear(&rq);
        ipc_msg_free(&m);
        m = auth_redeem_encode(7, AUTH_SERVICE_POP3, cookie, 0);
        ok(auth_request_decode(m, &rq, &why) < 0 && strcmp(why, "bad process id") == 0,
           "REDEEM with process id 0 is refused");
        ipc_msg_free(&m);
        m = ipc_msg_new(AUTH_REDEEM, 7);
        ipc_put_str(m, "pop3");
        ipc_put_bytes(m, cookie, 8);
        ipc_put_int(m, 4242);
        ok(auth_request_decode(m, &rq, &why) < 0 && strcmp(why, "bad cookie") == 0,
           "REDEEM with a short cookie is refused");
        ipc_msg_free(&m);
        m = auth_redeem_encode(7, "ftp", cookie, 4242);
        ok(auth_request_decode(m, &rq, &why) < 0 && strcmp(why, "unknown service") == 0,
           "REDEEM for an unknown service is refused");
        ipc_msg_free(&m);

        m = auth_redeemed_encode(7, AUTH_OK, "alice");
        ok(auth_reply_decode(m, &r, &why) == 0 && r.type == AUTH_REDEEMED
           && r.result == AUTH_OK && strcmp(r.user, "alice") == 0, "REDEEMED (OK) decodes");
        auth_reply_clear(&r);
        ipc_msg_free(&m);
        m = auth_redeemed_encode(7, AUTH_FAIL, "ignored");
        ok(auth_reply_decode(m, &r, &why) == 0 && r.result == AUTH_FAIL && *r.user == '\0',
           "REDEEMED (FAIL) carries no user");
        auth_reply_clear(&r);
        ipc_msg_free(&m);
        m = ipc_msg_new(AUTH_REDEEMED, 7);
        ipc_put_int(m, AUTH_TEMPFAIL);
        ipc_put_str(m, "");
        ok(auth_reply_decode(m, &r, &why) < 0 && strcmp(why, "bad result") == 0,
           "REDEEMED with another result is refused");
        ipc_msg_free(&m);
    }
}

int main(void)
{
    msg_init("auth-proto-test", MSG_STDERR);
    auth_proto_init();
    test_requests();
    test_replies();
    return done_testing();
}
