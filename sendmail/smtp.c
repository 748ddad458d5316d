/*
 * smtp.c - "sendmail -bs": an SMTP session on stdin/stdout, for programs
 * that speak SMTP to a local command instead of a socket (some MUAs, fetchmail
 * with --mda-less setups, test harnesses).
 *
 * The session is lib/smtpserver's, the same engine as smtpd's, so every
 * reply, limit and the CRLF rule are the same; the differences are the
 * policy: any recipient is accepted (as for a local sendmail), the
 * envelope sender must pass the same test as -f, and each message goes
 * into maildrop/ (submit.c) instead of to cleanup.  TLS does not apply.
 *
 * Failure modes: a message that cannot be written into maildrop/ gets 451
 * 4.3.0; the session goes on.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "msg.h"
#include "sendmail.h"
#include "smtpserver.h"
#include "xalloc.h"

static int smtp_mail(struct smtp_session *ss, const struct smtp_addrcmd *ac,
                     struct smtpserver_reply *r)
{
    const char *why = NULL;
    char *sender;

    (void)ss;
    if ((sender = sm_sender(ac->path.null ? "" : ac->path.addr, &why)) == NULL)
        return smtpserver_reply_set(r, 553, "5.7.1", "<%s>: Sender address rejected: %s",
                                    ac->path.addr, why);
    free(sender);
    return 0;
}

static int smtp_submit(struct smtp_session *ss, struct cleanup_request *req,
                       struct cleanup_result *res)
{
    struct cleanup_request local;
    char id[QUEUE_ID_SIZE];
    int rc;

    (void)ss;
    /* The client attributes describe a network client; a local one is
     * known by its uid instead (submit.c adds it). */
    cleanup_request_init(&local);
    local.sender = xstrdup(req->sender);
    local.envid = xstrdup(req->envid);
    local.ret = req->ret;
    for (size_t i = 0; i < req->nattr; i++)
        if (strncmp(req->attr_names[i], "client_", 7) != 0)
            cleanup_request_attr(&local, req->attr_names[i], req->attr_values[i]);
    for (size_t i = 0; i < req->nrcpt; i++)
        cleanup_request_rcpt(&local, req->rcpts[i].address, req->rcpts[i].orig,
                             req->rcpts[i].orcpt, req->rcpts[i].notify);
    local.content_fd = req->content_fd;
    local.content_len = req->content_len;
    const char *why = NULL;

    rc = sm_submit(&local, id, &why);
    if (rc < 0 && errno == EINVAL) {
        /* The engine's own checks make this rare (a control character
         * in a decoded ENVID, say): refuse this message only. */
        local.content_fd = -1;
        cleanup_request_free(&local);
        res->code = 554;
        res->dsn = xstrdup("5.5.4");
        res->text = xasprintf("Error: %s", why);
        return 0;
    }
    if (rc < 0)
        msg_warn("cannot write into maildrop/: %s", strerror(errno));
    local.content_fd = -1;          /* the engine's */
    cleanup_request_free(&local);
    if (rc < 0)
        return -1;
    res->code = 250;
    res->dsn = xstrdup("2.0.0");
    res->text = xstrdup(id);
    return 0;
}

void sm_smtp_session(void)
{
    static const struct smtpserver_policy policy = {
        .service = "sendmail",
        .mail = smtp_mail,
        .submit = smtp_submit,
    };
    int in_flags = fcntl(0, F_GETFL), out_flags = fcntl(1, F_GETFL);

    /* No TLS on a pipe, whatever main.conf says for smtpd. */
    conf_set("smtpd_tls_security_level", "none", NULL, NULL);
    conf_set("smtpd_tls_wrappermode", "no", NULL, NULL);
    if (in_flags < 0 || out_flags < 0)
        sm_fatal(EX_USAGE, "-bs needs standard input and output");
    smtpserver_run_pipe(0, 1, &policy, NULL);
    /* The stream made them non-blocking; they may be a terminal the
     * caller goes on using. */
    fcntl(0, F_SETFL, in_flags);
    fcntl(1, F_SETFL, out_flags);
    exit(0);
}
