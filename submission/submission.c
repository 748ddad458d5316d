/*
 * submission - mail clients send through Posthorn: SMTP on 587 (STARTTLS)
 * and 465 (implicit TLS, -o smtpd_tls_wrappermode=yes), AUTH required.
 *
 * Runs as network_user, chrooted into the spool, one session per process
 * (SERVER_SINGLE), on lib/smtpserver like smtpd; this file is the
 * submission policy:
 *  - AUTH as lib/smtpauth has it (relayed to authd; only over TLS unless
 *    smtpd_tls_auth_only = no);
 *  - the client's name by FCrDNS through lookupd, as smtpd finds it;
 *  - MAIL needs a successful AUTH first (530 5.7.0), and the sender must
 *    be one of the login's addresses (553 5.7.1 otherwise), or the null
 *    sender: LOGIN@DOMAIN or LOGIN+TAG@DOMAIN (recipient_delimiter) with
 *    DOMAIN myorigin or one of mydestination (lib/addr), or an address
 *    smtpd_sender_login_maps gives to the login (lookupd reads the maps:
 *    451 4.3.0 when it cannot);
 *  - per login and hour, submission_message_rate_limit MAIL commands and
 *    submission_recipient_rate_limit RCPT commands, counted by anvil
 *    (452 4.7.0 beyond; uncounted when anvil cannot be reached);
 *  - RCPT: an authenticated client may send to anyone (it relays);
 *  - at the end of the data the author fields must be the login's too:
 *    every From: and Sender: address, or for a resent message the topmost
 *    Resent-From: and Resent-Sender: (553 5.7.1; a field that does not
 *    parse is 550 5.6.0); with submission_hide_client the request carries
 *    cleanup's hide_client flag.
 * The queue gets the session's messages over cleanup as smtpd's do, with
 * the login as sasl_username (cleanup completes the header: From:, Date:,
 * Message-ID:), and the log line of each names the login (sasl_method=,
 * sasl_username=).
 *
 * Failure modes: peer errors end or answer that session only.  authd that
 * cannot be reached is 454 4.7.0 for that AUTH (logged).  A certificate
 * that cannot be loaded is fatal: without TLS no client could log in.
 *
 * Parameters: smtpd_tls_auth_only, smtpd_tls_cert_file, smtpd_tls_key_file,
 * smtpd_tls_wrappermode, myorigin, mydestination, recipient_delimiter,
 * smtpd_sender_login_maps, submission_message_rate_limit,
 * submission_recipient_rate_limit, submission_hide_client, network_user,
 * and lib/smtpserver's.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "addr.h"
#include "addrlist.h"
#include "anvil_proto.h"
#include "conf.h"
#include "event.h"
#include "ipc.h"
#include "lookup_proto.h"
#include "msg.h"
#include "msgheader.h"
#include "server.h"
#include "session.h"
#include "auth_proto.h"
#include "smtpauth.h"
#include "smtpserver.h"
#include "svcconn.h"
#include "tls.h"
#include "xalloc.h"

static tls_server_t *submission_tls;
static struct svcconn submission_lookupd = SVCCONN_INIT(LOOKUP_SOCKET, LOOKUP_PROTO_NAME,
                                                        LOOKUP_PROTO_VERSION);
static struct svcconn submission_anvil = SVCCONN_INIT(ANVIL_SOCKET, ANVIL_PROTO_NAME,
                                                      ANVIL_PROTO_VERSION);

/* ------------------------------------------------------------ MAIL, RCPT */

/* Does the login user own address (local@domain, or a bare local part,
 * which is at myorigin)?  Its own addresses (lib/addr: LOGIN or LOGIN+TAG
 * at myorigin or a mydestination domain), and those smtpd_sender_login_maps
 * gives to it (through lookupd: the maps are outside the chroot).  1, 0,
 * or -1 when the maps cannot be read now. */
static int submission_owns(const char *user, const char *address)
{
    char *qualified = strchr(address, '@') ? xstrdup(address)
                      : xasprintf("%s@%s", address, conf_str("myorigin"));
    char *owners = NULL, *p, *tok;
    int via_extension, owned = 0, rc;

    if (addr_sender_owned(qualified, user, &via_extension)) {
        owned = 1;
    } else if (*conf_str("smtpd_sender_login_maps")) {
        do {
            rc = svcconn_fd(&submission_lookupd, LOOKUP_TIMEOUT_MS) < 0 ? -2
                 : lookup_sender_login(submission_lookupd.fd, qualified, &owners,
                                       LOOKUP_TIMEOUT_MS);
        } while (rc == -1 && svcconn_retry(&submission_lookupd));
        if (rc < 0) {
            owned = -1;
        } else if (rc == LOOKUP_TEMPFAIL) {
            owned = -1;
        } else if (rc == LOOKUP_OK) {
            for (p = owners; owned == 0 && (tok = strsep(&p, ", \t")) != NULL;)
                owned = strcasecmp(tok, user) == 0;
        }
    }
    free(owners);
    free(qualified);
    return owned;
}

/* Count one event of kind ("msg", "rcpt") for the login against limit (per
 * hour, through anvil): 0, or a 452 reply when over it.  When anvil cannot
 * be reached the event goes uncounted (availability beats strictness). */
static int submission_rate(struct smtp_session *ss, const char *kind, long long limit,
                           const char *what, struct smtpserver_reply *r)
{
    char *key;
    long long count;

    if (limit <= 0)
        return 0;
    key = xasprintf("%s %s", kind, ss->auth_user);
    do {
        count = svcconn_fd(&submission_anvil, ANVIL_TIMEOUT_MS) < 0 ? -2
                : anvil_rate(submission_anvil.fd, "submission", key, 1, 3600);
    } while (count == -1 && svcconn_retry(&submission_anvil));
    free(key);
    if (count < 0)
        return 0;
    if (count <= limit)
        return 0;
    msg_warn("%s: user %s is over its limit of %lld %s per hour", ss->sess->peer.addr_text,
             ss->auth_user, limit, what);
    return smtpserver_reply_set(r, 452, "4.7.0", "Error: too many %s from user %s in the last "
                                "hour; try again later", what, ss->auth_user);
}

static int submission_mail(struct smtp_session *ss, const struct smtp_addrcmd *ac,
                           struct smtpserver_reply *r)
{
    int owned;

    if (ss->auth_user == NULL)
        return smtpserver_reply_set(r, 530, "5.7.0", "Authentication required");
    if (!ac->path.null) {
        if ((owned = submission_owns(ss->auth_user, ac->path.addr)) < 0)
            return smtpserver_reply_set(r, 451, "4.3.0", "<%s>: Temporary lookup failure",
                                        ac->path.addr);
        if (owned == 0)
            return smtpserver_reply_set(r, 553, "5.7.1", "<%s>: Sender address rejected: not "
                                        "owned by user %s", ac->path.addr, ss->auth_user);
    }
    return submission_rate(ss, "msg", conf_int("submission_message_rate_limit"), "messages", r);
}

static int submission_rcpt(struct smtp_session *ss, const struct smtp_addrcmd *ac,
                           const char *address, struct smtpserver_reply *r)
{
    (void)ac;
    (void)address;
    if (ss->auth_user == NULL)      /* MAIL needs it: the engine's 503 comes first */
        return smtpserver_reply_set(r, 530, "5.7.0", "Authentication required");
    return submission_rate(ss, "rcpt", conf_int("submission_recipient_rate_limit"),
                           "recipients", r);
}

/* The author fields of the message must name the login's addresses too:
 * From: and Sender:, or, when the message is being resent (RFC 5322
 * 3.6.6: mutt's bounce), the topmost Resent-From: and Resent-Sender:
 * instead.  A message without From: gets one from cleanup (the envelope
 * sender, already checked). */
/* Check the addresses of one author field: 0, or a reply code. */
static int submission_author_field(struct smtp_session *ss, const struct msgheader_field *f,
                                   struct smtpserver_reply *rep)
{
    size_t len;
    char *value = msgheader_field_value(f, &len);
    struct addrlist al;
    const char *why;
    int code = 0;

    if (addrlist_parse(value, len, &al, &why) < 0) {
        free(value);
        return smtpserver_reply_set(rep, 550, "5.6.0", "Error: malformed %.*s: header: %s",
                                    (int)f->name_len, f->text, why);
    }
    for (size_t k = 0; k < al.n && code == 0; k++) {
        int owned = al.addrs[k][0] ? submission_owns(ss->auth_user, al.addrs[k]) : 0;

        if (owned < 0)
            code = smtpserver_reply_set(rep, 451, "4.3.0", "<%s>: Temporary lookup failure",
                                        al.addrs[k]);
        else if (owned == 0)
            code = smtpserver_reply_set(rep, 553, "5.7.1", "<%s>: %.*s: address rejected: not "
                                        "owned by user %s", al.addrs[k], (int)f->name_len,
                                        f->text, ss->auth_user);
    }
    addrlist_free(&al);
    free(value);
    return code;
}

/* The author fields of the message must name the login's addresses too:
 * every From: and Sender:, or, when the message is being resent (RFC 5322
 * 3.6.6, mutt's bounce), the topmost Resent-From: and Resent-Sender:
 * instead.  A message without From: gets one from cleanup (the envelope
 * sender, already checked). */
static int submission_message(struct smtp_session *ss, struct cleanup_request *r,
                              struct smtpserver_reply *rep)
{
    const struct msgheader_field *resent_from, *resent_sender;
    struct msgheader h;
    int code = 0;

    if (msgheader_read(r->content_fd, r->content_len, &h) < 0) {
        msg_warn("cannot read the message back: %s", strerror(errno));
        return smtpserver_reply_set(rep, 451, "4.3.0", "Error: queue file write error");
    }
    if ((resent_from = msgheader_find(&h, "resent-from")) != NULL) {
        code = submission_author_field(ss, resent_from, rep);
        if (code == 0 && (resent_sender = msgheader_find(&h, "resent-sender")) != NULL)
            code = submission_author_field(ss, resent_sender, rep);
    } else {
        for (size_t i = 0; i < h.n && code == 0; i++)
            if (msgheader_field_is(&h.fields[i], "from")
                || msgheader_field_is(&h.fields[i], "sender"))
                code = submission_author_field(ss, &h.fields[i], rep);
    }
    msgheader_free(&h);
    if (code == 0 && conf_bool("submission_hide_client"))
        r->flags |= CLEANUP_FLAG_HIDE_CLIENT;
    return code;
}

static char *submission_client_name(struct smtp_session *ss)
{
    return lookup_client_name_kept(&submission_lookupd, ss->sess->peer.addr_text);
}

static const struct smtpserver_policy submission_policy = {
    .service = "submission",
    .ehlo_keywords = smtpauth_ehlo_keywords,
    .auth = smtpauth_auth,
    .client_name = submission_client_name,
    .mail = submission_mail,
    .rcpt = submission_rcpt,
    .message = submission_message,
};

/* ------------------------------------------------------------ the program */

static void submission_pre_init(void)
{
    buf_t *err = buf_new(0);

    submission_tls = tls_server_new(conf_str("smtpd_tls_cert_file"),
                                    conf_str("smtpd_tls_key_file"), err);
    if (submission_tls == NULL)
        msg_fatal("TLS is unusable, and mail clients cannot log in without it: %s",
                  buf_cstr(err));
    buf_free(&err);
}

static void submission_post_init(event_loop_t *loop)
{
    smtpauth_init(AUTH_SERVICE_SUBMISSION);
    lookup_proto_init();
    anvil_proto_init();
    smtpserver_init(loop);
}

static void submission_serve(int fd)
{
    smtpserver_run(fd, &submission_policy, submission_tls, NULL);
}

int main(int argc, char **argv)
{
    static const struct server_opts opts = {
        .mode = SERVER_SINGLE,
        .user_param = "network_user",
        .chroot = SERVER_CHROOT_SPOOL,
        .pre_init = submission_pre_init,
        .post_init = submission_post_init,
        .serve = submission_serve,
    };

    server_main(argc, argv, &opts);
}
