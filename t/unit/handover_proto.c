/*
 * t/unit/handover_proto.c - unit tests for lib/handover_proto.c, the
 * login halves' hand-over to the mail halves.
 *
 * A request and a reply round trip (input with NULs and CRLF, the
 * descriptor taken out of the message); each rule of the request decoder:
 * an unknown service, a cookie of the wrong length, a client address or
 * port that is not one, unknown flags, an empty or spaced mechanism, a tag
 * with a space, input over HANDOVER_INPUT_MAX, no descriptor, trailing
 * fields, the wrong message type; a refused request keeps no descriptor
 * open; the reply decoder refuses an unknown result and control
 * characters in the reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "handover_proto.h"
#include "ipc.h"
#include "../lib/tap.h"

static const unsigned char cookie[AUTH_COOKIE_LEN] = "0123456789abcdef";

static int fd_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

/* A request with the given fields (and a memfd when with_fd); refused with
 * a reason that contains want_why, and its descriptor closed? */
static void refused(const char *service, size_t cookie_len, const char *addr, const char *port,
                    long long flags, const char *mech, const char *tag, size_t input_len,
                    int with_fd, int extra_field, const char *want_why, const char *name)
{
    static char input[HANDOVER_INPUT_MAX + 2];
    ipc_msg_t *m = ipc_msg_new(HANDOVER_REQUEST, 0);
    struct handover_request r;
    const char *why = NULL;
    int fd = -1, rc;

    ipc_put_str(m, service);
    ipc_put_bytes(m, cookie, cookie_len);
    ipc_put_str(m, addr);
    ipc_put_str(m, port);
    ipc_put_int(m, flags);
    ipc_put_str(m, mech);
    ipc_put_str(m, tag);
    ipc_put_bytes(m, input, input_len);
    if (extra_field)
        ipc_put_int(m, 1);
    if (with_fd) {
        fd = memfd_create("t", MFD_CLOEXEC);
        ipc_set_fd(m, fd);
    }
    rc = handover_request_decode(m, &r, &why);
    ok(rc < 0 && why && strstr(why, want_why) && r.fd == -1 && r.service == NULL,
       "%s: refused (%s)", name, why ? why : "accepted");
    ipc_msg_free(&m);
    if (with_fd)
        ok(!fd_open(fd), "  its descriptor is closed with the message");
}

int main(void)
{
    struct handover_request r;
    const char *why = NULL;
    char *reason = NULL;
    ipc_msg_t *m;
    int fd, result = -1;

    handover_proto_init();
    fd = memfd_create("t", MFD_CLOEXEC);
    m = handover_request_encode("pop3", cookie, "192.0.2.7", "40000",
                                HANDOVER_F_TLS | HANDOVER_F_SECURED, "SCRAM-SHA-256", "a1",
                                "STAT\r\n\0LIST\r\n", 13, fd);
    ok(handover_request_decode(m, &r, &why) == 0, "a request round-trips (%s)",
       why ? why : "ok");
    is_str(r.service, "pop3", "  service");
    ok(memcmp(r.cookie, cookie, AUTH_COOKIE_LEN) == 0, "  cookie");
    is_str(r.client_addr, "192.0.2.7", "  client address");
    is_str(r.client_port, "40000", "  port");
    is_int(r.flags, HANDOVER_F_TLS | HANDOVER_F_SECURED, "  flags");
    is_str(r.mech, "SCRAM-SHA-256", "  mechanism");
    is_str(r.tag, "a1", "  tag");
    ok(r.input_len == 13 && memcmp(r.input, "STAT\r\n\0LIST\r\n", 13) == 0,
       "  input, NUL and all");
    ok(r.fd == fd && fd_open(r.fd), "  the descriptor, taken from the message");
    ipc_msg_free(&m);
    ok(fd_open(r.fd), "  it outlives the message");
    fd = r.fd;
    handover_request_clear(&r);
    ok(!fd_open(fd), "  and handover_request_clear closes it");

    refused("smtp", 16, "192.0.2.7", "1", 0, "PLAIN", "", 0, 1, 0, "unknown service",
            "an unknown service");
    refused("pop3", 15, "192.0.2.7", "1", 0, "PLAIN", "", 0, 1, 0, "cookie", "a short cookie");
    refused("pop3", 16, "not-an-ip", "1", 0, "PLAIN", "", 0, 1, 0, "address", "a bad address");
    refused("pop3", 16, "192.0.2.7", "65536", 0, "PLAIN", "", 0, 1, 0, "port", "port 65536");
    refused("pop3", 16, "192.0.2.7", "-1", 0, "PLAIN", "", 0, 1, 0, "port", "port -1");
    refused("pop3", 16, "192.0.2.7", "", 0, "PLAIN", "", 0, 1, 0, "port", "an empty port");
    refused("pop3", 16, "192.0.2.7", "1", 8, "PLAIN", "", 0, 1, 0, "flags", "unknown flags");
    refused("pop3", 16, "192.0.2.7", "1", -1, "PLAIN", "", 0, 1, 0, "flags", "negative flags");
    refused("pop3", 16, "192.0.2.7", "1", 0, "", "", 0, 1, 0, "mechanism", "no mechanism");
    refused("pop3", 16, "192.0.2.7", "1", 0, "PL AIN", "", 0, 1, 0, "mechanism",
            "a mechanism with a space");
    refused("pop3", 16, "192.0.2.7", "1", 0, "PLAIN", "a b", 0, 1, 0, "tag", "a tag with a space");
    refused("pop3", 16, "192.0.2.7", "1", 0, "PLAIN", "", HANDOVER_INPUT_MAX + 1, 1, 0,
            "too much input", "input over the limit");
    refused("pop3", 16, "192.0.2.7", "1", 0, "PLAIN", "", 0, 0, 0, "descriptor",
            "no descriptor");
    refused("pop3", 16, "192.0.2.7", "1", 0, "PLAIN", "", 0, 1, 1, "malformed",
            "a trailing field");

    m = handover_reply_encode(HANDOVER_OK, "");
    m->type = HANDOVER_REQUEST;
    ok(handover_request_decode(m, &r, &why) < 0, "a reply decoded as a request: refused");
    ipc_msg_free(&m);

    m = handover_reply_encode(HANDOVER_TEMPFAIL, "authd failed");
    ok(handover_reply_decode(m, &result, &reason, &why) == 0 && result == HANDOVER_TEMPFAIL
       && reason && strcmp(reason, "authd failed") == 0, "a reply round-trips");
    free(reason);
    ipc_msg_free(&m);
    m = handover_reply_encode(7, "x");
    ok(handover_reply_decode(m, &result, &reason, &why) < 0 && reason == NULL,
       "an unknown result: refused");
    ipc_msg_free(&m);
    m = handover_reply_encode(HANDOVER_FAIL, "bad\nreason");
    ok(handover_reply_decode(m, &result, &reason, &why) < 0 && reason == NULL,
       "a reason with a newline: refused");
    ipc_msg_free(&m);
    return done_testing();
}
