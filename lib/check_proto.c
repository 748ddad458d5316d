/*
 * check_proto - message names, encoders, decoders and client calls of the
 * checkd protocol (see check_proto.h).  Nothing from the peer is trusted:
 * every field is bounded and every number checked against its range.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_proto.h"
#include "ipc.h"
#include "xalloc.h"

static const struct ipc_name check_proto_names[] = {
    {CHECK_SPF, "check-spf"},
    {CHECK_SPF_RESULT, "check-spf-result"},
    {CHECK_MESSAGE, "check-message"},
    {CHECK_MESSAGE_RESULT, "check-message-result"},
};

void check_proto_init(void)
{
    ipc_register_names(check_proto_names,
                       sizeof(check_proto_names) / sizeof(check_proto_names[0]));
}

static const char *check_name(int v, const char *const *names, int last)
{
    return v >= 0 && v <= last ? names[v] : "?";
}

const char *check_spf_name(int result)
{
    static const char *const names[] = {"none", "neutral", "pass", "fail", "softfail",
                                        "temperror", "permerror"};

    return check_name(result, names, CHECK_SPF_LAST);
}

const char *check_dmarc_name(int result)
{
    static const char *const names[] = {"none", "pass", "fail", "temperror", "permerror"};

    return check_name(result, names, CHECK_DMARC_LAST);
}

const char *check_disposition_name(int disposition)
{
    static const char *const names[] = {"none", "quarantine", "reject"};

    return check_name(disposition, names, CHECK_DISPOSITION_LAST);
}

/* A string field of at most max bytes: 0, or -1 (the string is freed). */
static int check_get_str(ipc_msg_t *m, char **s, size_t max)
{
    if (ipc_get_str(m, s) < 0)
        return -1;
    if (strlen(*s) > max) {
        xfree(s);
        errno = EPROTO;
        return -1;
    }
    return 0;
}

/* An int field within [min, max]. */
static int check_get_int(ipc_msg_t *m, int64_t min, int64_t max, int64_t *v)
{
    if (ipc_get_int(m, v) < 0)
        return -1;
    if (*v < min || *v > max) {
        errno = EPROTO;
        return -1;
    }
    return 0;
}

ipc_msg_t *check_spf_request_encode(const struct check_spf_request *r)
{
    ipc_msg_t *m = ipc_msg_new(CHECK_SPF, 0);

    ipc_put_str(m, r->client_addr);
    ipc_put_str(m, r->helo);
    ipc_put_str(m, r->sender);
    return m;
}

void check_spf_request_clear(struct check_spf_request *r)
{
    xfree(&r->client_addr);
    xfree(&r->helo);
    xfree(&r->sender);
}

int check_spf_request_decode(ipc_msg_t *m, struct check_spf_request *r)
{
    memset(r, 0, sizeof(*r));
    if (m->type != CHECK_SPF || m->fd >= 0
        || check_get_str(m, &r->client_addr, CHECK_FIELD_MAX) < 0
        || check_get_str(m, &r->helo, CHECK_FIELD_MAX) < 0
        || check_get_str(m, &r->sender, CHECK_FIELD_MAX) < 0 || ipc_get_end(m) < 0) {
        check_spf_request_clear(r);
        errno = EPROTO;
        return -1;
    }
    return 0;
}

ipc_msg_t *check_spf_result_encode(const struct check_spf_result *r)
{
    ipc_msg_t *m = ipc_msg_new(CHECK_SPF_RESULT, 0);

    ipc_put_int(m, r->result);
    ipc_put_str(m, r->domain ? r->domain : "");
    ipc_put_str(m, r->comment ? r->comment : "");
    return m;
}

void check_spf_result_clear(struct check_spf_result *r)
{
    xfree(&r->domain);
    xfree(&r->comment);
}

int check_spf_result_decode(ipc_msg_t *m, struct check_spf_result *r)
{
    int64_t v;

    memset(r, 0, sizeof(*r));
    if (m->type != CHECK_SPF_RESULT || m->fd >= 0
        || check_get_int(m, 0, CHECK_SPF_LAST, &v) < 0
        || check_get_str(m, &r->domain, CHECK_FIELD_MAX) < 0
        || check_get_str(m, &r->comment, CHECK_TEXT_MAX) < 0 || ipc_get_end(m) < 0) {
        check_spf_result_clear(r);
        errno = EPROTO;
        return -1;
    }
    r->result = (int)v;
    return 0;
}

ipc_msg_t *check_message_request_encode(const struct check_message_request *r)
{
    ipc_msg_t *m = ipc_msg_new(CHECK_MESSAGE, 0);
    int fd;

    ipc_put_str(m, r->client_addr);
    ipc_put_str(m, r->helo);
    ipc_put_str(m, r->sender);
    ipc_put_str(m, r->rcpt_domain);
    ipc_put_int(m, (int64_t)r->content_len);
    if (r->content_fd >= 0) {
        fd = dup(r->content_fd);
        if (fd < 0) {
            ipc_msg_free(&m);
            return NULL;
        }
        ipc_set_fd(m, fd);
    }
    return m;
}

void check_message_request_clear(struct check_message_request *r)
{
    xfree(&r->client_addr);
    xfree(&r->helo);
    xfree(&r->sender);
    xfree(&r->rcpt_domain);
    if (r->content_fd >= 0)
        close(r->content_fd);
    r->content_fd = -1;
}

int check_message_request_decode(ipc_msg_t *m, struct check_message_request *r)
{
    int64_t len;

    memset(r, 0, sizeof(*r));
    r->content_fd = -1;
    if (m->type != CHECK_MESSAGE || m->fd < 0
        || check_get_str(m, &r->client_addr, CHECK_FIELD_MAX) < 0
        || check_get_str(m, &r->helo, CHECK_FIELD_MAX) < 0
        || check_get_str(m, &r->sender, CHECK_FIELD_MAX) < 0
        || check_get_str(m, &r->rcpt_domain, CHECK_FIELD_MAX) < 0
        || check_get_int(m, 0, INT64_MAX, &len) < 0 || ipc_get_end(m) < 0) {
        check_message_request_clear(r);
        errno = EPROTO;
        return -1;
    }
    r->content_len = (uint64_t)len;
    r->content_fd = ipc_take_fd(m);
    return 0;
}

ipc_msg_t *check_message_result_encode(const struct check_message_result *r)
{
    ipc_msg_t *m = ipc_msg_new(CHECK_MESSAGE_RESULT, 0);

    ipc_put_int(m, r->dmarc);
    ipc_put_int(m, r->disposition);
    ipc_put_str(m, r->policy_domain ? r->policy_domain : "");
    ipc_put_str(m, r->auth_results ? r->auth_results : "");
    ipc_put_str(m, r->comment ? r->comment : "");
    return m;
}

void check_message_result_clear(struct check_message_result *r)
{
    xfree(&r->policy_domain);
    xfree(&r->auth_results);
    xfree(&r->comment);
}

int check_message_result_decode(ipc_msg_t *m, struct check_message_result *r)
{
    int64_t dmarc, disposition;

    memset(r, 0, sizeof(*r));
    if (m->type != CHECK_MESSAGE_RESULT || m->fd >= 0
        || check_get_int(m, 0, CHECK_DMARC_LAST, &dmarc) < 0
        || check_get_int(m, 0, CHECK_DISPOSITION_LAST, &disposition) < 0
        || check_get_str(m, &r->policy_domain, CHECK_FIELD_MAX) < 0
        || check_get_str(m, &r->auth_results, CHECK_TEXT_MAX) < 0
        || check_get_str(m, &r->comment, CHECK_TEXT_MAX) < 0 || ipc_get_end(m) < 0) {
        check_message_result_clear(r);
        errno = EPROTO;
        return -1;
    }
    r->dmarc = (int)dmarc;
    r->disposition = (int)disposition;
    return 0;
}

/* Send m (freed) and read one reply into *reply. */
static int check_call(int sock, ipc_msg_t *m, ipc_msg_t **reply, int timeout_ms)
{
    int n;

    if (m == NULL)
        return -1;
    n = ipc_send(sock, m, timeout_ms);
    ipc_msg_free(&m);
    if (n < 0)
        return -1;
    n = ipc_recv(sock, reply, CHECK_MAX_PAYLOAD, timeout_ms);
    if (n == 0)
        errno = ECONNRESET;
    return n > 0 ? 0 : -1;
}

int check_spf(int sock, const struct check_spf_request *r, struct check_spf_result *res,
              int timeout_ms)
{
    ipc_msg_t *reply = NULL;
    int rc;

    memset(res, 0, sizeof(*res));
    if (check_call(sock, check_spf_request_encode(r), &reply, timeout_ms) < 0)
        return -1;
    rc = check_spf_result_decode(reply, res);
    ipc_msg_free(&reply);
    return rc;
}

int check_message(int sock, const struct check_message_request *r,
                  struct check_message_result *res, int timeout_ms)
{
    ipc_msg_t *reply = NULL;
    int rc;

    memset(res, 0, sizeof(*res));
    if (check_call(sock, check_message_request_encode(r), &reply, timeout_ms) < 0)
        return -1;
    rc = check_message_result_decode(reply, res);
    ipc_msg_free(&reply);
    return rc;
}
