/*
 * authrelay - a client's SASL exchange relayed to authd (see authrelay.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "authrelay.h"
#include "ipc.h"
#include "msg.h"
#include "xalloc.h"

static uint32_t authrelay_reqid;

/* One frame to authd and its answer: 0, or -1 (logged, connection gone). */
static int authrelay_ask(struct svcconn *c, ipc_msg_t *m, struct auth_reply *rep)
{
    ipc_msg_t *in = NULL;
    const char *why = NULL;
    int rc;

    rc = ipc_send(c->fd, m, AUTH_TIMEOUT_MS);
    ipc_msg_free(&m);
    if (rc < 0) {
        svcconn_lost(c);
        return -1;
    }
    rc = ipc_recv(c->fd, &in, AUTH_FRAME_MAX, AUTH_TIMEOUT_MS);
    if (rc <= 0) {
        if (rc == 0)
            errno = ECONNRESET;
        svcconn_lost(c);
        return -1;
    }
    if (auth_reply_decode(in, rep, &why) < 0 || rep->reqid != authrelay_reqid) {
        if (why == NULL)
            auth_reply_clear(rep);
        msg_warn("authd answered with %s", why ? why : "another request's reply");
        errno = EPROTO;
        ipc_msg_free(&in);
        svcconn_lost(c);
        return -1;
    }
    ipc_msg_free(&in);
    return 0;
}

static void authrelay_cancel(struct svcconn *c)
{
    ipc_msg_t *m = auth_cancel_encode(authrelay_reqid);

    if (ipc_send(c->fd, m, AUTH_TIMEOUT_MS) < 0)
        svcconn_lost(c);
    ipc_msg_free(&m);
}

/* The hook's answer as an outcome, or -1 to go on. */
static int authrelay_hook_outcome(int rc)
{
    return rc == 1 ? -1 : rc == 0 ? AUTHRELAY_CANCELLED : rc == -2 ? AUTHRELAY_MALFORMED
           : AUTHRELAY_IOERR;
}

void authrelay_run(const struct authrelay *a, const char *mech, int has_initial,
                   const void *initial, size_t initial_len, struct authrelay_result *res)
{
    struct auth_reply rep = {0};
    buf_t *answer = buf_new(AUTH_DATA_MAX);
    int rc, outcome;

    memset(res, 0, sizeof(*res));
    /* A kept connection may have been closed by an authd restart since:
     * the first request on it fails at once, and one new connection is
     * tried. */
    for (;;) {
        if (svcconn_fd(a->authd, AUTH_TIMEOUT_MS) < 0) {
            res->outcome = AUTHRELAY_TEMPFAIL;
            res->reason = xstrdup("authd cannot be reached");
            goto out;
        }
        authrelay_reqid++;
        if (authrelay_ask(a->authd, auth_start_encode(authrelay_reqid, a->service, mech,
                                                      a->client_addr, a->flags,
                                                      a->cb_type ? a->cb_type : "", a->cb_data,
                                                      a->cb_type ? a->cb_len : 0, has_initial,
                                                      initial, initial_len),
                          &rep) == 0)
            break;
        if (a->authd->fresh || errno == ETIMEDOUT) {
            res->outcome = AUTHRELAY_TEMPFAIL;
            res->reason = xstrdup("authd failed");
            goto out;
        }
    }
    while (rep.type == AUTH_CONTINUE) {
        rc = a->challenge(a->ctx, rep.data, rep.data_len, answer);
        auth_reply_clear(&rep);
        if ((outcome = authrelay_hook_outcome(rc)) >= 0) {
            authrelay_cancel(a->authd);
            res->outcome = outcome;
            goto out;
        }
        if (authrelay_ask(a->authd, auth_step_encode(authrelay_reqid, answer->data, answer->len),
                          &rep) < 0) {
            res->outcome = AUTHRELAY_TEMPFAIL;
            res->reason = xstrdup("authd failed");
            goto out;
        }
    }
    if (rep.result == AUTH_OK) {
        if (rep.data_len > 0) {
            rc = a->challenge(a->ctx, rep.data, rep.data_len, answer);
            if ((outcome = authrelay_hook_outcome(rc)) >= 0) {
                res->outcome = outcome;
                goto out;
            }
            if (answer->len > 0) {
                res->outcome = AUTHRELAY_MALFORMED;
                goto out;
            }
        }
        res->outcome = AUTHRELAY_OK;
        res->user = xstrdup(rep.user);
        res->has_cookie = rep.has_cookie;
        if (rep.has_cookie)
            memcpy(res->cookie, rep.cookie, AUTH_COOKIE_LEN);
    } else if (rep.result == AUTH_TEMPFAIL) {
        res->outcome = AUTHRELAY_TEMPFAIL;
        res->reason = xstrdup(rep.reason);
    } else {
        res->outcome = AUTHRELAY_FAIL;
    }
out:
    auth_reply_clear(&rep);
    buf_free(&answer);
}

void authrelay_result_clear(struct authrelay_result *res)
{
    free(res->user);
    free(res->reason);
    explicit_bzero(res->cookie, sizeof(res->cookie));
    memset(res, 0, sizeof(*res));
}
