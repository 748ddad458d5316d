/*
 * smtpauth - AUTH for the SMTP servers, relayed to authd (see smtpauth.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "auth_proto.h"
#include "base64.h"
#include "conf.h"
#include "ipc.h"
#include "msg.h"
#include "sasl.h"
#include "session.h"
#include "smtpauth.h"
#include "svcconn.h"
#include "tls.h"
#include "xalloc.h"

static struct svcconn smtpauth_authd = SVCCONN_INIT(AUTH_SOCKET, AUTH_PROTO_NAME,
                                                    AUTH_PROTO_VERSION);
static uint32_t smtpauth_reqid;
static const char *smtpauth_service;

void smtpauth_init(const char *service)
{
    auth_proto_init();
    smtpauth_service = service;
}

/* ------------------------------------------------------------ mechanisms */

struct smtpauth_conn {
    unsigned flags;             /* AUTH_F_* */
    const char *cb_type;        /* NULL: none */
    buf_t *cb;                  /* the channel binding data */
};

static void smtpauth_conn(struct smtp_session *ss, struct smtpauth_conn *ca)
{
    bool tls = ss->sess->tls != NULL;

    ca->flags = (tls ? AUTH_F_TLS : 0)
                | (tls || !conf_bool("smtpd_tls_auth_only") ? AUTH_F_PLAINTEXT_OK : 0);
    ca->cb_type = NULL;
    ca->cb = buf_new(AUTH_CB_MAX);
    if (tls && tls_conn_channel_binding(ss->sess->tls, ca->cb, &ca->cb_type) < 0)
        ca->cb_type = NULL;
    if (ca->cb_type == NULL)
        buf_reset(ca->cb);
}

void smtpauth_ehlo_keywords(struct smtp_session *ss, const char **lines, size_t *n,
                                     size_t max)
{
    static char *auth_line;
    struct smtpauth_conn ca;
    buf_t *mechs;

    if (*n >= max || (ss->sess->tls == NULL && conf_bool("smtpd_tls_auth_only")))
        return;
    mechs = buf_new(0);
    smtpauth_conn(ss, &ca);
    if (sasl_server_mechs_relayed((ca.flags & AUTH_F_PLAINTEXT_OK) != 0, ca.cb_type != NULL,
                                  mechs) > 0) {
        free(auth_line);
        auth_line = xasprintf("AUTH %s", buf_cstr(mechs));
        lines[(*n)++] = auth_line;
    }
    buf_free(&ca.cb);
    buf_free(&mechs);
}

/* ------------------------------------------------------------ AUTH */

static void smtpauth_authd_lost(void)
{
    svcconn_lost(&smtpauth_authd);
}

/* One frame to authd and its answer: 0, or -1 (logged, connection gone). */
static int smtpauth_ask(ipc_msg_t *m, struct auth_reply *rep)
{
    ipc_msg_t *in = NULL;
    const char *why = NULL;
    int rc;

    rc = ipc_send(smtpauth_authd.fd, m, AUTH_TIMEOUT_MS);
    ipc_msg_free(&m);
    if (rc < 0) {
        smtpauth_authd_lost();
        return -1;
    }
    rc = ipc_recv(smtpauth_authd.fd, &in, AUTH_FRAME_MAX, AUTH_TIMEOUT_MS);
    if (rc <= 0) {
        if (rc == 0)
            errno = ECONNRESET;
        smtpauth_authd_lost();
        return -1;
    }
    if (auth_reply_decode(in, rep, &why) < 0 || rep->reqid != smtpauth_reqid) {
        if (why == NULL)
            auth_reply_clear(rep);
        msg_warn("authd answered with %s", why ? why : "another request's reply");
        errno = EPROTO;
        ipc_msg_free(&in);
        smtpauth_authd_lost();
        return -1;
    }
    ipc_msg_free(&in);
    return 0;
}

static void smtpauth_cancel(void)
{
    ipc_msg_t *m = auth_cancel_encode(smtpauth_reqid);

    if (ipc_send(smtpauth_authd.fd, m, AUTH_TIMEOUT_MS) < 0)
        smtpauth_authd_lost();
    ipc_msg_free(&m);
}

/* The fail2ban-style line (Postfix's words). */
static void smtpauth_log_failure(struct smtp_session *ss, const char *mech, const char *what)
{
    msg_warn(SESSION_PEER_FMT ": SASL %s authentication failed: %s",
             SESSION_PEER_ARGS(ss->sess), mech, what);
}

void smtpauth_auth(struct smtp_session *ss, const char *arg, size_t arg_len)
{
    struct smtpauth_conn ca = {0};
    struct auth_reply rep = {0};
    char *args = xstrndup(arg, arg_len), *mech = args, *initial;
    buf_t *data = buf_new(AUTH_DATA_MAX);
    int have = 0, rc;

    initial = strchr(args, ' ');
    if (initial)
        *initial++ = '\0';
    if (*mech == '\0') {
        smtpserver_reply(ss, 501, "5.5.4", "Syntax: AUTH mechanism");
        goto out;
    }
    if (ss->sess->tls == NULL && conf_bool("smtpd_tls_auth_only")) {
        smtpserver_reply(ss, 538, "5.7.11", "Encryption required for requested authentication "
                         "mechanism");
        goto out;
    }
    smtpauth_conn(ss, &ca);
    if (!sasl_server_offers_relayed((ca.flags & AUTH_F_PLAINTEXT_OK) != 0, ca.cb_type != NULL,
                                    mech)) {
        /* Unknown, malformed or not offered here: answered without authd
         * (RFC 4954 4), and no failure to log: nothing was tried. */
        smtpserver_reply(ss, 504, "5.5.4", "Unrecognized authentication type");
        goto out;
    }
    if (initial) {
        have = 1;
        if (strcmp(initial, "=") != 0 && base64_decode(data, initial, strlen(initial)) < 0) {
            smtpserver_reply(ss, 501, "5.5.2", "Error: malformed initial response");
            goto out;
        }
    }
    /* A kept connection may have been closed by an authd restart since:
     * the first request on it fails at once, and one new connection is
     * tried. */
    for (;;) {
        if (svcconn_fd(&smtpauth_authd, AUTH_TIMEOUT_MS) < 0) {
            smtpserver_reply(ss, 454, "4.7.0", "Temporary authentication failure");
            goto out;
        }
        smtpauth_reqid++;
        if (smtpauth_ask(auth_start_encode(smtpauth_reqid, smtpauth_service, mech,
                                             ss->sess->peer.addr_text, ca.flags,
                                             ca.cb_type ? ca.cb_type : "", ca.cb->data,
                                             ca.cb->len, have, data->data, data->len),
                           &rep) == 0)
            break;
        if (smtpauth_authd.fresh || errno == ETIMEDOUT) {
            smtpserver_reply(ss, 454, "4.7.0", "Temporary authentication failure");
            goto out;
        }
    }
    while (rep.type == AUTH_CONTINUE) {
        rc = smtpserver_auth_read(ss, rep.data, rep.data_len, data);
        auth_reply_clear(&rep);
        if (rc < 0) {
            smtpauth_cancel();
            if (rc == -2)
                smtpserver_reply(ss, 501, "5.5.2", "Error: malformed authentication response");
            goto out;
        }
        if (rc == 0) {
            smtpauth_cancel();
            smtpserver_reply(ss, 501, "5.7.0", "Authentication aborted");
            smtpauth_log_failure(ss, mech, "authentication aborted");
            goto out;
        }
        if (smtpauth_ask(auth_step_encode(smtpauth_reqid, data->data, data->len), &rep) < 0) {
            smtpserver_reply(ss, 454, "4.7.0", "Temporary authentication failure");
            goto out;
        }
    }
    if (rep.result == AUTH_OK) {
        /* RFC 4954 4: SMTP's 235 carries no data; a last challenge does. */
        if (rep.data_len > 0) {
            rc = smtpserver_auth_read(ss, rep.data, rep.data_len, data);
            if (rc < 0 || (rc == 1 && data->len > 0)) {
                if (rc != -1)
                    smtpserver_reply(ss, 501, "5.5.2", "Error: unexpected authentication "
                                     "response");
                goto out;
            }
            if (rc == 0) {
                smtpserver_reply(ss, 501, "5.7.0", "Authentication aborted");
                goto out;
            }
        }
        for (char *p = mech; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        ss->auth_user = xstrdup(rep.user);
        ss->auth_method = xstrdup(mech);
        smtpserver_reply(ss, 235, "2.7.0", "Authentication successful");
    } else if (rep.result == AUTH_TEMPFAIL) {
        smtpauth_log_failure(ss, mech, rep.reason);
        smtpserver_reply(ss, 454, "4.7.0", "Temporary authentication failure");
    } else {
        smtpauth_log_failure(ss, mech, "authentication failure");
        smtpserver_reply(ss, 535, "5.7.8", "Error: authentication failed");
    }
out:
    auth_reply_clear(&rep);
    if (ca.cb)
        buf_free(&ca.cb);
    buf_free(&data);
    free(args);
}

