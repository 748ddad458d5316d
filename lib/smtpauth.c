/*
 * smtpauth - AUTH for the SMTP servers, relayed to authd (see smtpauth.h).
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "auth_proto.h"
#include "authrelay.h"
#include "base64.h"
#include "conf.h"
#include "msg.h"
#include "sasl.h"
#include "session.h"
#include "smtpauth.h"
#include "svcconn.h"
#include "tls.h"
#include "xalloc.h"

static struct svcconn smtpauth_authd = SVCCONN_INIT(AUTH_SOCKET, AUTH_PROTO_NAME,
                                                    AUTH_PROTO_VERSION);
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
    /* auth_channel_binding: see main.conf(5) for why it is off by default. */
    if (tls && conf_bool("auth_channel_binding")
        && tls_conn_channel_binding(ss->sess->tls, ca->cb, &ca->cb_type) < 0)
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

static int smtpauth_challenge(void *ctx, const void *data, size_t len, buf_t *out)
{
    return smtpserver_auth_read(ctx, data, len, out);
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
    struct authrelay_result res = {0};
    struct authrelay relay;
    char *args = xstrndup(arg, arg_len), *mech = args, *initial;
    buf_t *data = buf_new(AUTH_DATA_MAX);
    int have = 0;

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
    for (char *p = mech; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    relay = (struct authrelay){
        .authd = &smtpauth_authd, .service = smtpauth_service,
        .client_addr = ss->sess->peer.addr_text, .flags = ca.flags, .cb_type = ca.cb_type,
        .cb_data = ca.cb->data, .cb_len = ca.cb->len, .challenge = smtpauth_challenge,
        .ctx = ss,
    };
    authrelay_run(&relay, mech, have, data->data, data->len, &res);
    switch (res.outcome) {
    case AUTHRELAY_OK:
        ss->auth_user = res.user;
        res.user = NULL;
        ss->auth_method = xstrdup(mech);
        smtpserver_reply(ss, 235, "2.7.0", "Authentication successful");
        break;
    case AUTHRELAY_FAIL:
        smtpauth_log_failure(ss, mech, "authentication failure");
        smtpserver_reply(ss, 535, "5.7.8", "Error: authentication failed");
        break;
    case AUTHRELAY_TEMPFAIL:
        /* Not a failed guess: fail2ban must not count it. */
        msg_warn(SESSION_PEER_FMT ": SASL %s authentication not checked: %s",
                 SESSION_PEER_ARGS(ss->sess), mech, res.reason);
        smtpserver_reply(ss, 454, "4.7.0", "Temporary authentication failure");
        break;
    case AUTHRELAY_CANCELLED:
        smtpserver_reply(ss, 501, "5.7.0", "Authentication aborted");
        smtpauth_log_failure(ss, mech, "authentication aborted");
        break;
    case AUTHRELAY_MALFORMED:
        smtpserver_reply(ss, 501, "5.5.2", "Error: malformed authentication response");
        break;
    case AUTHRELAY_IOERR:
        break;
    }
out:
    authrelay_result_clear(&res);
    if (ca.cb)
        buf_free(&ca.cb);
    buf_free(&data);
    free(args);
}
