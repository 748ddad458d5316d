/*
 * smtpd - the inbound SMTP server: Posthorn as an MX on port 25.
 *
 * Runs as network_user, chrooted into the spool, one session per process
 * (SERVER_SINGLE; master runs as many as there are sessions, up to the
 * service's process limit).  The protocol is lib/smtpserver's; this file is
 * the MX policy:
 *  - the client's name: lookupd looks it up (reverse DNS with forward
 *    confirmation, as Postfix does; smtpd itself does no DNS in its
 *    chroot), asked before the greeting and waited for at most
 *    LOOKUP_NAME_TIMEOUT_MS (5 s) in all; the confirmed name goes into the
 *    log lines ("connect from name[addr]") and the Received: header.  No
 *    PTR record, a name that does not resolve back to the address (logged
 *    as Postfix does: "hostname X does not resolve to address A"), a
 *    temporary DNS failure, a slow or unreachable lookupd: "unknown";
 *  - connect: sessions from one client address are counted by anvil
 *    across all smtpd processes; above smtpd_client_connection_count_limit
 *    the client gets 421 4.7.0 (clients in mynetworks are not limited);
 *  - RCPT: a recipient in a mydestination domain must exist, which lookupd
 *    answers (passwd and the alias maps; 550 5.1.1 if not, 451 4.3.0 if it
 *    cannot tell); postmaster is always accepted (RFC 5321 4.5.1); a
 *    recipient of a virtual_alias_domains domain must have an entry in
 *    virtual_alias_maps (550 5.1.1 User unknown in virtual alias table);
 *    any other domain is relaying, allowed only to clients in mynetworks
 *    and to clients that logged in (554 5.7.1 Relay access denied);
 *  - AUTH only with smtpd_sasl_auth_enable = yes (Postfix's default is
 *    no): then as submission offers it (lib/smtpauth, relayed to authd),
 *    but an authenticated client may only relay: none of submission's
 *    sender rules apply, as in Postfix with permit_sasl_authenticated;
 *  - VRFY (disable_vrfy_command = no) asks the same questions;
 *  - sender authentication (smtpd_mail_authentication, on by default) of
 *    mail from outside: not from mynetworks, not from a client that logged
 *    in.  checkd (lib/check_proto) checks SPF, DKIM and DMARC; smtpd never
 *    parses DNS data or signatures itself.  With spf_reject_fail = yes the
 *    first RCPT asks for the SPF result of MAIL FROM and a fail refuses
 *    the recipients (550 5.7.23).  At end of data the message goes to
 *    checkd; its Authentication-Results value goes to cleanup as the
 *    auth_results attribute (cleanup writes the field, after removing any
 *    that claim our authserv-id); a DMARC reject is refused (550 5.7.1)
 *    and a quarantine marks the message (the quarantine attribute: local
 *    delivers it into the Junk folder).  A checkd that cannot be reached
 *    or does not answer within smtpd_check_timeout is logged and the mail
 *    accepted with temperror results: a check never loses mail.  The
 *    connection to checkd lasts for the session.
 * Its connections to lookupd and anvil last as long as the process; the
 * one to cleanup outlives a session by a second (lib/smtpserver.c), so
 * that sessions back to back share it.
 * The TLS certificate and key are loaded as root before the privilege drop;
 * if they cannot be, STARTTLS is not offered (smtpd_tls_security_level =
 * may) or smtpd stops with the reason (encrypt, or wrappermode).
 *
 * Failure modes: peer errors end or answer that session only.  A lookupd
 * that cannot be reached is 451 4.3.0 for that recipient, and an unknown
 * client name (logged; the connection is made again when next needed, so
 * that a late answer is never taken for another); an anvil that
 * cannot be reached means no connection limit (logged).  A bad mynetworks
 * or an unusable certificate with TLS required is fatal.
 *
 * Parameters: mydestination, mynetworks, myorigin,
 * smtpd_client_connection_count_limit, disable_vrfy_command,
 * smtpd_tls_cert_file, smtpd_tls_key_file, smtpd_tls_security_level,
 * smtpd_tls_wrappermode, smtpd_sasl_auth_enable, smtpd_tls_auth_only,
 * smtpd_mail_authentication, spf_reject_fail, smtpd_check_timeout,
 * myhostname, network_user, and lib/smtpserver's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "addr.h"
#include "anvil_proto.h"
#include "conf.h"
#include "event.h"
#include "ipc.h"
#include "lookup_proto.h"
#include "msg.h"
#include "netaddr.h"
#include "server.h"
#include "auth_proto.h"
#include "authres.h"
#include "buf.h"
#include "check_proto.h"
#include "queue.h"
#include "smtpauth.h"
#include "smtpserver.h"
#include "svcconn.h"
#include "tls.h"
#include "xalloc.h"

static tls_server_t *smtpd_tls;
static netaddr_list_t *smtpd_mynetworks;
static struct svcconn smtpd_lookupd = SVCCONN_INIT(LOOKUP_SOCKET, LOOKUP_PROTO_NAME,
                                                   LOOKUP_PROTO_VERSION);
static struct svcconn smtpd_anvil = SVCCONN_INIT(ANVIL_SOCKET, ANVIL_PROTO_NAME,
                                                 ANVIL_PROTO_VERSION);
/* Opened for a session that needs a check, closed when it ends. */
static struct svcconn smtpd_checkd = SVCCONN_INIT(CHECK_SOCKET, CHECK_PROTO_NAME,
                                                  CHECK_PROTO_VERSION);

/* Per session. */
struct smtpd_session {
    bool trusted;           /* in mynetworks */
    bool anvil_counted;
    int  spf_result;        /* CHECK_SPF_* of this transaction's MAIL FROM, or -1 */
};

static void smtpd_pre_init(void)
{
    buf_t *err = buf_new(0);
    const char *level = conf_str("smtpd_tls_security_level");
    bool required = strcasecmp(level, "encrypt") == 0 || conf_bool("smtpd_tls_wrappermode");

    smtpd_mynetworks = netaddr_list_parse(conf_str("mynetworks"), err);
    if (smtpd_mynetworks == NULL)
        msg_fatal("mynetworks: %s", buf_cstr(err));
    if (strcasecmp(level, "none") != 0 && strcasecmp(level, "may") != 0
        && strcasecmp(level, "encrypt") != 0)
        msg_fatal("smtpd_tls_security_level: unknown level '%s' (none, may or encrypt)", level);
    if (strcasecmp(level, "none") != 0 || conf_bool("smtpd_tls_wrappermode")) {
        buf_reset(err);
        smtpd_tls = tls_server_new(conf_str("smtpd_tls_cert_file"), conf_str("smtpd_tls_key_file"),
                                   err);
        if (smtpd_tls == NULL && required)
            msg_fatal("TLS is required here but unusable: %s", buf_cstr(err));
        if (smtpd_tls == NULL)
            msg_warn("STARTTLS is not offered: %s", buf_cstr(err));
    }
    buf_free(&err);
}

static struct smtpserver_policy smtpd_policy;

static void smtpd_post_init(event_loop_t *loop)
{
    lookup_proto_init();
    anvil_proto_init();
    check_proto_init();
    smtpserver_init(loop);
    if (conf_bool("smtpd_sasl_auth_enable")) {
        smtpauth_init(AUTH_SERVICE_SMTPD);
        smtpd_policy.ehlo_keywords = smtpauth_ehlo_keywords;
        smtpd_policy.auth = smtpauth_auth;
    }
}

/* The client's name by FCrDNS, asked of lookupd (lib/lookup_proto). */
static char *smtpd_client_name(struct smtp_session *ss)
{
    return lookup_client_name_kept(&smtpd_lookupd, ss->sess->peer.addr_text);
}

static int smtpd_connect(struct smtp_session *ss, struct smtpserver_reply *r)
{
    struct smtpd_session *sd = ss->policy_ctx;
    long long limit = conf_int("smtpd_client_connection_count_limit");
    int count;

    sd->trusted = netaddr_list_match(smtpd_mynetworks, &ss->sess->peer.addr);
    if (limit == 0 || sd->trusted)
        return 0;
    do {
        if (svcconn_fd(&smtpd_anvil, ANVIL_TIMEOUT_MS) < 0)
            return 0;
        count = anvil_connect(smtpd_anvil.fd, "smtpd", ss->sess->peer.addr_text);
    } while (count < 0 && svcconn_retry(&smtpd_anvil));
    if (count < 0)
        return 0;
    sd->anvil_counted = true;
    if (count > limit) {
        msg_warn("too many connections from %s: %d (smtpd_client_connection_count_limit = %lld)",
                 ss->sess->peer.addr_text, count, limit);
        return smtpserver_reply_set(r, 421, "4.7.0", "%s Error: too many connections from %s",
                                    conf_str("myhostname"), ss->sess->peer.addr_text);
    }
    return 0;
}

static void smtpd_disconnect(struct smtp_session *ss)
{
    struct smtpd_session *sd = ss->policy_ctx;

    if (sd->anvil_counted && smtpd_anvil.fd >= 0
        && anvil_disconnect(smtpd_anvil.fd, "smtpd", ss->sess->peer.addr_text) < 0)
        svcconn_lost(&smtpd_anvil);
    svcconn_close(&smtpd_checkd);
}

/* Is this session's mail checked (from outside, not logged in)? */
static bool smtpd_checks(const struct smtp_session *ss)
{
    const struct smtpd_session *sd = ss->policy_ctx;

    return conf_bool("smtpd_mail_authentication") && !sd->trusted && ss->auth_user == NULL
           && ss->sess->peer.addr_text[0] != '\0';
}

static int smtpd_mail(struct smtp_session *ss, const struct smtp_addrcmd *ac,
                      struct smtpserver_reply *r)
{
    struct smtpd_session *sd = ss->policy_ctx;

    (void)ac;
    (void)r;
    sd->spf_result = -1;
    return 0;
}

/* spf_reject_fail: the SPF result of MAIL FROM, asked of checkd once per
 * transaction; 0, or 550 5.7.23 for a fail. */
static int smtpd_spf_rcpt(struct smtp_session *ss, struct smtpserver_reply *r)
{
    struct smtpd_session *sd = ss->policy_ctx;
    struct check_spf_request q = { (char *)ss->sess->peer.addr_text,
                                   (char *)(ss->helo_name ? ss->helo_name : ""),
                                   (char *)(ss->mail.path.null ? "" : ss->mail.path.addr) };
    struct check_spf_result res = { 0 };
    int timeout = (int)conf_time("smtpd_check_timeout") * 1000, rc;

    if (sd->spf_result < 0) {
        do {
            if (svcconn_fd(&smtpd_checkd, timeout) < 0)
                return 0;
            rc = check_spf(smtpd_checkd.fd, &q, &res, timeout);
        } while (rc < 0 && svcconn_retry(&smtpd_checkd));
        if (rc < 0)
            return 0;       /* cannot tell: the message check will say temperror */
        sd->spf_result = res.result;
        if (res.result == CHECK_SPF_FAIL)
            msg_info("SPF fail for <%s> from %s: %s", q.sender, q.client_addr,
                     res.comment ? res.comment : "");
        check_spf_result_clear(&res);
    }
    if (sd->spf_result == CHECK_SPF_FAIL)
        return smtpserver_reply_set(r, 550, "5.7.23", "<%s>: Sender address rejected: SPF "
                                    "fail: %s is not allowed to send mail for it",
                                    *q.sender ? q.sender : q.helo, q.client_addr);
    return 0;
}

/* What checkd says of the message: its Authentication-Results for
 * cleanup, a quarantine mark, or a DMARC refusal. */
static int smtpd_message(struct smtp_session *ss, struct cleanup_request *cr,
                         struct smtpserver_reply *rep)
{
    const char *at = cr->nrcpt ? strrchr(cr->rcpts[0].address, '@') : NULL;
    struct check_message_request q = { (char *)ss->sess->peer.addr_text,
                                       (char *)(ss->helo_name ? ss->helo_name : ""),
                                       cr->sender, (char *)(at ? at + 1 : ""),
                                       cr->content_len, cr->content_fd };
    struct check_message_result res = { 0 };
    int timeout = (int)conf_time("smtpd_check_timeout") * 1000, rc;

    if (!smtpd_checks(ss))
        return 0;
    do {
        if (svcconn_fd(&smtpd_checkd, timeout) < 0) {
            rc = -1;
            break;
        }
        rc = check_message(smtpd_checkd.fd, &q, &res, timeout);
    } while (rc < 0 && svcconn_retry(&smtpd_checkd));
    if (rc < 0) {
        /* No answer: the mail is taken all the same, and says so. */
        buf_t *ar = buf_new(0);

        svcconn_close(&smtpd_checkd);
        msg_warn("checks of the message from %s not done: checkd did not answer",
                 q.client_addr);
        authres_begin(ar, conf_str("myhostname"));
        authres_add(ar, "spf", "temperror", "checks not available", NULL);
        authres_add(ar, "dkim", "temperror", "checks not available", NULL);
        authres_add(ar, "dmarc", "temperror", "checks not available", NULL);
        cleanup_request_attr(cr, QUEUE_ATTR_AUTH_RESULTS, buf_cstr(ar));
        buf_free(&ar);
        return 0;
    }
    if (res.disposition == CHECK_DISPOSITION_REJECT) {
        rc = smtpserver_reply_set(rep, 550, "5.7.1", "Message rejected: %s: the policy of %s "
                                  "asks to reject it", res.comment, res.policy_domain);
        check_message_result_clear(&res);
        return rc;
    }
    if (strlen(res.auth_results) + sizeof(QUEUE_ATTR_AUTH_RESULTS) + 1 > QUEUE_FIELD_MAX)
        msg_warn("the check results of the message from %s are too long to record (%zu bytes)",
                 q.client_addr, strlen(res.auth_results));
    else if (*res.auth_results)
        cleanup_request_attr(cr, QUEUE_ATTR_AUTH_RESULTS, res.auth_results);
    if (res.disposition == CHECK_DISPOSITION_QUARANTINE)
        cleanup_request_attr(cr, QUEUE_ATTR_QUARANTINE, "dmarc");
    check_message_result_clear(&res);
    return 0;
}

/* Ask lookupd about a recipient: LOOKUP_* or -1 (cannot ask). */
static int smtpd_lookup(const char *address)
{
    int res;

    do {
        if (svcconn_fd(&smtpd_lookupd, LOOKUP_TIMEOUT_MS) < 0)
            return -1;
        res = lookup_rcpt(smtpd_lookupd.fd, address, LOOKUP_TIMEOUT_MS);
    } while (res < 0 && svcconn_retry(&smtpd_lookupd));
    return res;
}

/* Is this local recipient valid?  0, or a reply code with r filled. */
static int smtpd_local_rcpt(const char *address, struct smtpserver_reply *r)
{
    char *local;
    int res;

    addr_split(address, &local, NULL);
    res = addr_is_postmaster(local);
    free(local);
    if (res)
        return 0;
    res = smtpd_lookup(address);
    if (res == LOOKUP_OK)
        return 0;
    if (res == LOOKUP_NOTFOUND)
        return smtpserver_reply_set(r, 550, "5.1.1", "<%s>: Recipient address rejected: User "
                                    "unknown in local recipient table", address);
    return smtpserver_reply_set(r, 451, "4.3.0", "<%s>: Temporary lookup failure", address);
}

/* May this recipient be accepted (ours, or relaying allowed)? */
static int smtpd_rcpt_allowed(struct smtp_session *ss, const char *address,
                              struct smtpserver_reply *r)
{
    struct smtpd_session *sd = ss->policy_ctx;

    if (addr_is_local(address))
        return smtpd_local_rcpt(address, r);
    if (*conf_str("virtual_alias_maps") || *conf_str("virtual_alias_domains")) {
        /* A virtual alias domain is ours too: its users must exist. */
        int res = smtpd_lookup(address);

        if (res == LOOKUP_OK)
            return 0;
        if (res == LOOKUP_NOTFOUND)
            return smtpserver_reply_set(r, 550, "5.1.1", "<%s>: Recipient address rejected: "
                                        "User unknown in virtual alias table", address);
        if (res != LOOKUP_REMOTE)
            return smtpserver_reply_set(r, 451, "4.3.0", "<%s>: Temporary lookup failure",
                                        address);
    }
    if (sd->trusted || ss->auth_user)
        return 0;
    return smtpserver_reply_set(r, 554, "5.7.1", "<%s>: Relay access denied", address);
}

static int smtpd_rcpt(struct smtp_session *ss, const struct smtp_addrcmd *ac, const char *address,
                      struct smtpserver_reply *r)
{
    int code;

    (void)ac;
    if ((code = smtpd_rcpt_allowed(ss, address, r)) != 0)
        return code;
    if (conf_bool("spf_reject_fail") && smtpd_checks(ss))
        return smtpd_spf_rcpt(ss, r);
    return 0;
}

static int smtpd_vrfy(struct smtp_session *ss, const char *address, struct smtpserver_reply *r)
{
    (void)ss;
    if (!addr_is_local(address))
        return smtpserver_reply_set(r, 252, "2.1.5", "<%s>: not a local address, not verified",
                                    address);
    return smtpd_local_rcpt(address, r);
}

static struct smtpserver_policy smtpd_policy = {
    .service = "smtpd",
    .client_name = smtpd_client_name,
    .connect = smtpd_connect,
    .mail = smtpd_mail,
    .rcpt = smtpd_rcpt,
    .message = smtpd_message,
    .vrfy = smtpd_vrfy,
    .disconnect = smtpd_disconnect,
};

static void smtpd_serve(int fd)
{
    struct smtpd_session sd = { .spf_result = -1 };

    smtpserver_run(fd, &smtpd_policy, smtpd_tls, &sd);
}

int main(int argc, char **argv)
{
    static const struct server_opts opts = {
        .mode = SERVER_SINGLE,
        .user_param = "network_user",
        .chroot = SERVER_CHROOT_SPOOL,
        .pre_init = smtpd_pre_init,
        .post_init = smtpd_post_init,
        .serve = smtpd_serve,
    };

    server_main(argc, argv, &opts);
}
