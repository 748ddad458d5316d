/*
 * auth_proto - encoding and decoding of the authd protocol (see
 * auth_proto.h).  Decoding checks every field and never aborts.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth_proto.h"
#include "msg.h"
#include "netaddr.h"
#include "xalloc.h"

static const struct ipc_name auth_proto_names[] = {
    {AUTH_START, "auth-start"},
    {AUTH_STEP, "auth-step"},
    {AUTH_CANCEL, "auth-cancel"},
    {AUTH_CONTINUE, "auth-continue"},
    {AUTH_DONE, "auth-done"},
    {AUTH_REDEEM, "auth-redeem"},
    {AUTH_REDEEMED, "auth-redeemed"},
};

void auth_proto_init(void)
{
    ipc_register_names(auth_proto_names, sizeof(auth_proto_names) / sizeof(auth_proto_names[0]));
}

/* A text for the log or an account name: printable, at most max octets. */
static int auth_text_ok(const char *s, size_t max)
{
    size_t n = 0;

    for (; *s; s++, n++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f || n >= max)
            return 0;
    return 1;
}

static int auth_service_ok(const char *s)
{
    return strcmp(s, AUTH_SERVICE_SUBMISSION) == 0 || strcmp(s, AUTH_SERVICE_SMTPD) == 0
           || strcmp(s, AUTH_SERVICE_POP3) == 0 || strcmp(s, AUTH_SERVICE_IMAP) == 0;
}

/* A SASL mechanism name (RFC 4422 3.1: upper-case letters, digits, '-'
 * and '_'); lower case is accepted and made upper case. */
static int auth_mech_ok(char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > AUTH_MECH_MAX)
        return 0;
    for (; *s; s++) {
        if (!isascii((unsigned char)*s)
            || !(isalnum((unsigned char)*s) || *s == '-' || *s == '_'))
            return 0;
        *s = (char)toupper((unsigned char)*s);
    }
    return 1;
}

static int auth_cb_type_ok(const char *s)
{
    return *s == '\0' || strcmp(s, "tls-exporter") == 0 || strcmp(s, "tls-unique") == 0;
}

/* ------------------------------------------------------------ requests */

ipc_msg_t *auth_start_encode(uint32_t reqid, const char *service, const char *mech,
                             const char *client_addr, unsigned flags, const char *cb_type,
                             const void *cb_data, size_t cb_len, int has_initial,
                             const void *initial, size_t initial_len)
{
    ipc_msg_t *m = ipc_msg_new(AUTH_START, reqid);

    ipc_put_str(m, service);
    ipc_put_str(m, mech);
    ipc_put_str(m, client_addr);
    ipc_put_int(m, flags);
    ipc_put_str(m, cb_type ? cb_type : "");
    ipc_put_bytes(m, cb_data, cb_type && *cb_type ? cb_len : 0);
    ipc_put_int(m, has_initial ? 1 : 0);
    ipc_put_bytes(m, initial, has_initial ? initial_len : 0);
    return m;
}

ipc_msg_t *auth_step_encode(uint32_t reqid, const void *response, size_t len)
{
    ipc_msg_t *m = ipc_msg_new(AUTH_STEP, reqid);

    ipc_put_bytes(m, response, len);
    return m;
}

ipc_msg_t *auth_cancel_encode(uint32_t reqid)
{
    return ipc_msg_new(AUTH_CANCEL, reqid);
}

ipc_msg_t *auth_redeem_encode(uint32_t reqid, const char *service,
                              const unsigned char cookie[AUTH_COOKIE_LEN], long login_pid)
{
    ipc_msg_t *m = ipc_msg_new(AUTH_REDEEM, reqid);

    ipc_put_str(m, service);
    ipc_put_bytes(m, cookie, AUTH_COOKIE_LEN);
    ipc_put_int(m, login_pid);
    return m;
}

void auth_request_clear(struct auth_request *r)
{
    free(r->service);
    free(r->mech);
    free(r->client_addr);
    free(r->cb_type);
    memset(r, 0, sizeof(*r));
}

static int auth_start_decode(ipc_msg_t *m, struct auth_request *r, const char **why)
{
    struct netaddr na;
    int64_t flags, has;

    if (ipc_get_str(m, &r->service) < 0 || ipc_get_str(m, &r->mech) < 0
        || ipc_get_str(m, &r->client_addr) < 0 || ipc_get_int(m, &flags) < 0
        || ipc_get_str(m, &r->cb_type) < 0 || ipc_get_bytes(m, &r->cb_data, &r->cb_len) < 0
        || ipc_get_int(m, &has) < 0 || ipc_get_bytes(m, &r->data, &r->data_len) < 0)
        return -1;
    if (!auth_service_ok(r->service))
        *why = "unknown service";
    else if (!auth_mech_ok(r->mech))
        *why = "bad mechanism name";
    else if (netaddr_parse(r->client_addr, &na) < 0)
        *why = "bad client address";
    else if (flags < 0 || (flags & ~(int64_t)AUTH_F_ALL) != 0)
        *why = "bad flags";
    else if (!auth_cb_type_ok(r->cb_type) || r->cb_len > AUTH_CB_MAX
             || (*r->cb_type == '\0') != (r->cb_len == 0))
        *why = "bad channel binding";
    else if ((has != 0 && has != 1) || (has == 0 && r->data_len != 0)
             || r->data_len > AUTH_DATA_MAX)
        *why = "bad initial response";
    else {
        r->flags = (unsigned)flags;
        r->has_data = (int)has;
        return 0;
    }
    return -1;
}

int auth_request_decode(ipc_msg_t *m, struct auth_request *r, const char **why)
{
    int rc = -1;

    memset(r, 0, sizeof(*r));
    r->type = m->type;
    r->reqid = m->reqid;
    *why = "malformed request";
    if (m->fd >= 0) {
        *why = "a descriptor came with the request";
    } else if (m->type == AUTH_START) {
        rc = auth_start_decode(m, r, why);
    } else if (m->type == AUTH_STEP) {
        rc = ipc_get_bytes(m, &r->data, &r->data_len);
        if (rc == 0 && r->data_len > AUTH_DATA_MAX) {
            *why = "response too long";
            rc = -1;
        }
        r->has_data = 1;
    } else if (m->type == AUTH_CANCEL) {
        rc = 0;
    } else if (m->type == AUTH_REDEEM) {
        int64_t pid = 0;

        rc = ipc_get_str(m, &r->service) == 0 && ipc_get_bytes(m, &r->data, &r->data_len) == 0
             && ipc_get_int(m, &pid) == 0 ? 0 : -1;
        if (rc == 0 && !auth_service_ok(r->service)) {
            *why = "unknown service";
            rc = -1;
        } else if (rc == 0 && r->data_len != AUTH_COOKIE_LEN) {
            *why = "bad cookie";
            rc = -1;
        } else if (rc == 0 && (pid <= 0 || pid > INT32_MAX)) {
            *why = "bad process id";
            rc = -1;
        }
        r->login_pid = (long)pid;
        r->has_data = 1;
    } else {
        *why = "unknown request type";
    }
    if (rc == 0 && ipc_get_end(m) < 0) {
        *why = "malformed request";
        rc = -1;
    }
    if (rc < 0) {
        auth_request_clear(r);
        errno = EPROTO;
    }
    return rc;
}

/* ------------------------------------------------------------ replies */

ipc_msg_t *auth_continue_encode(uint32_t reqid, const void *challenge, size_t len)
{
    ipc_msg_t *m = ipc_msg_new(AUTH_CONTINUE, reqid);

    if (len > AUTH_DATA_MAX)
        msg_panic("auth_continue_encode: a challenge of %zu octets", len);
    ipc_put_bytes(m, challenge, len);
    return m;
}

ipc_msg_t *auth_redeemed_encode(uint32_t reqid, int result, const char *user)
{
    ipc_msg_t *m = ipc_msg_new(AUTH_REDEEMED, reqid);

    if ((result != AUTH_OK && result != AUTH_FAIL)
        || (result == AUTH_OK && (user == NULL || *user == '\0' || !auth_text_ok(user, AUTH_USER_MAX))))
        msg_panic("auth_redeemed_encode: a reply that breaks the protocol's rules");
    ipc_put_int(m, result);
    ipc_put_str(m, result == AUTH_OK ? user : "");
    return m;
}

ipc_msg_t *auth_done_encode(uint32_t reqid, int result, const char *user, const void *final,
                            size_t final_len, const char *reason, const unsigned char *cookie)
{
    ipc_msg_t *m = ipc_msg_new(AUTH_DONE, reqid);
    char *cut = xstrndup(reason ? reason : "", AUTH_REASON_MAX);

    /* The reason comes from the mechanisms and the password store: cut
     * and cleaned here, so that the decoder's rule always holds. */
    for (char *p = cut; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    if (result != AUTH_OK && result != AUTH_FAIL && result != AUTH_TEMPFAIL)
        msg_panic("auth_done_encode: result %d", result);
    if (final_len > AUTH_DATA_MAX || (result == AUTH_OK && (user == NULL || *user == '\0'))
        || (user && !auth_text_ok(user, AUTH_USER_MAX)) || (cookie && result != AUTH_OK))
        msg_panic("auth_done_encode: a reply that breaks the protocol's rules");
    ipc_put_int(m, result);
    ipc_put_str(m, result == AUTH_OK ? user : "");
    ipc_put_bytes(m, final, final_len);
    ipc_put_str(m, cut);
    ipc_put_bytes(m, cookie, cookie ? AUTH_COOKIE_LEN : 0);
    free(cut);
    return m;
}

void auth_reply_clear(struct auth_reply *r)
{
    free(r->user);
    free(r->reason);
    free(r->data);
    memset(r, 0, sizeof(*r));
}

int auth_reply_decode(ipc_msg_t *m, struct auth_reply *r, const char **why)
{
    const void *data = NULL;
    size_t data_len = 0;
    int64_t result;
    int rc = -1;

    memset(r, 0, sizeof(*r));
    r->type = m->type;
    r->reqid = m->reqid;
    *why = "malformed reply";
    if (m->fd >= 0) {
        *why = "a descriptor came with the reply";
    } else if (m->type == AUTH_CONTINUE) {
        rc = ipc_get_bytes(m, &data, &data_len);
        if (rc == 0 && data_len > AUTH_DATA_MAX) {
            *why = "challenge too long";
            rc = -1;
        }
    } else if (m->type == AUTH_DONE) {
        const void *cookie = NULL;
        size_t cookie_len = 0;

        if (ipc_get_int(m, &result) == 0 && ipc_get_str(m, &r->user) == 0
            && ipc_get_bytes(m, &data, &data_len) == 0
            && ipc_get_str(m, &r->reason) == 0 && ipc_get_bytes(m, &cookie, &cookie_len) == 0) {
            if (result != AUTH_OK && result != AUTH_FAIL && result != AUTH_TEMPFAIL)
                *why = "bad result";
            else if (!auth_text_ok(r->user, AUTH_USER_MAX)
                     || (result == AUTH_OK) != (*r->user != '\0'))
                *why = "bad user";
            else if (!auth_text_ok(r->reason, AUTH_REASON_MAX))
                *why = "bad reason";
            else if (data_len > AUTH_DATA_MAX)
                *why = "final data too long";
            else if (cookie_len != 0 && (cookie_len != AUTH_COOKIE_LEN || result != AUTH_OK))
                *why = "bad cookie";
            else {
                r->result = (int)result;
                if ((r->has_cookie = cookie_len != 0))
                    memcpy(r->cookie, cookie, AUTH_COOKIE_LEN);
                rc = 0;
            }
        }
    } else if (m->type == AUTH_REDEEMED) {
        if (ipc_get_int(m, &result) == 0 && ipc_get_str(m, &r->user) == 0) {
            if (result != AUTH_OK && result != AUTH_FAIL)
                *why = "bad result";
            else if (!auth_text_ok(r->user, AUTH_USER_MAX)
                     || (result == AUTH_OK) != (*r->user != '\0'))
                *why = "bad user";
            else {
                r->result = (int)result;
                rc = 0;
            }
        }
    } else {
        *why = "unknown reply type";
    }
    if (rc == 0 && ipc_get_end(m) < 0) {
        *why = "malformed reply";
        rc = -1;
    }
    if (rc < 0) {
        auth_reply_clear(r);
        errno = EPROTO;
        return -1;
    }
    /* The reply owns its data: the message it came in is freed first. */
    r->data = xmalloc(data_len + 1);
    if (data_len > 0)
        memcpy(r->data, data, data_len);
    r->data_len = data_len;
    return 0;
}
