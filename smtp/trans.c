/*
 * trans.c - one mail transaction on an open session, for the recipients
 * of a request that are not final yet.
 *
 * Before anything is sent: a message over the server's SIZE fails with
 * 5.3.4, an SMTPUTF8 message (an envelope address that is not ASCII) to
 * a server without SMTPUTF8 with 5.6.7 (RFC 6531 3.2), both for good.
 * Then MAIL FROM (SIZE=, BODY=8BITMIME for 8-bit content when offered,
 * SMTPUTF8, and with DSN: RET=, ENVID=), one RCPT TO per recipient (with
 * DSN: NOTIFY=, ORCPT=, the original recipient when the queue file has no
 * ORCPT, as Postfix does), and DATA: all in one write when the server
 * offers PIPELINING (RFC 2920; BDAT follows once the RCPT replies are
 * in), one at a time otherwise.  Every reply is read, in order, even
 * after a failure, so the session stays in sync.
 *
 * Outcomes: a MAIL FROM or DATA refusal and the reply to the end of the
 * data apply to every recipient still in the transaction; each RCPT reply
 * to its own recipient.  5xx is final; 4xx only when this is the last
 * server to try (otherwise the next server gets the recipient); a lost
 * connection or a timeout is a 4.4.2 for every recipient still open.  A
 * delivery says whether the server announced DSN (DELIVER_RELAYED_DSN: it
 * got NOTIFY and reports success itself) or not (DELIVER_RELAYED: qmgr
 * reports "relayed" on NOTIFY=SUCCESS).
 * Texts are Postfix's: "host mx[addr] said: 550 5.1.1 ... (in reply to
 * RCPT TO command)".  A server without 8BITMIME gets 8-bit content
 * converted (content.c).
 *
 * Parameters: smtp_mail_timeout, smtp_rcpt_timeout,
 * smtp_data_init_timeout, smtp_data_xfer_timeout, smtp_data_done_timeout.
 *
 * Failure modes: none of ours; a queue file that cannot be read is 4.3.0
 * for the recipients in the transaction (final: another server would not
 * help) and the session is dropped without ending the data.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "smtp.h"
#include "xalloc.h"
#include "xtext.h"

static bool trans_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

static void trans_notify(buf_t *b, unsigned notify)
{
    if (notify == 0)
        return;
    buf_append_str(b, " NOTIFY=");
    if (notify & QUEUE_NOTIFY_NEVER) {
        buf_append_str(b, "NEVER");
        return;
    }
    {
        const char *sep = "";

        if (notify & QUEUE_NOTIFY_SUCCESS) {
            buf_append_str(b, "SUCCESS");
            sep = ",";
        }
        if (notify & QUEUE_NOTIFY_FAILURE) {
            buf_printf(b, "%sFAILURE", sep);
            sep = ",";
        }
        if (notify & QUEUE_NOTIFY_DELAY)
            buf_printf(b, "%sDELAY", sep);
    }
}

/* ORCPT=type;xtext(addr): the queue file's, else the original
 * recipient's, as long as it can be said in rfc822 form. */
static void trans_orcpt(buf_t *b, const struct smtp_rcpt *rc)
{
    const char *orcpt = rc->qr ? rc->qr->orcpt : NULL, *semi;

    if (orcpt && *orcpt && (semi = strchr(orcpt, ';')) != NULL && semi > orcpt) {
        buf_printf(b, " ORCPT=%.*s;", (int)(semi - orcpt), orcpt);
        xtext_encode(b, semi + 1, strlen(semi + 1));
        return;
    }
    orcpt = rc->orig && *rc->orig ? rc->orig : rc->address;
    if (trans_ascii(orcpt)) {
        buf_append_str(b, " ORCPT=rfc822;");
        xtext_encode(b, orcpt, strlen(orcpt));
    }
}

/* Every recipient in the transaction (accepted, or all open ones when
 * before RCPT) gets st; final when it is a 5xx or this is the last server. */
static void trans_fail_open(struct smtp_request *r, const struct smtp_status *st, bool final,
                            bool accepted_only)
{
    for (size_t i = 0; i < r->nrcpt; i++) {
        struct smtp_rcpt *rc = &r->rcpts[i];

        if (rc->final || (accepted_only && !rc->accepted))
            continue;
        smtp_status_copy(&rc->st, st);
        rc->final = final || st->dsn_class == 5;
        rc->accepted = false;
    }
}

void trans_run(session_t *s, struct smtp_request *r, bool final)
{
    const queue_file_t *q = r->q;
    unsigned ext = s->esmtp ? s->caps.ext : 0;
    bool dsn = ext & SMTPEXT_DSN, pipe = ext & SMTPEXT_PIPELINING;
    bool bdat = ext & SMTPEXT_CHUNKING, downgrade;
    struct smtp_status st = {0}, mailst = {0};
    size_t naccepted = 0;
    buf_t *cmd = buf_new(0);
    const char *why = NULL, *doing;
    int rc;

    for (size_t i = 0; i < r->nrcpt; i++)
        r->rcpts[i].accepted = false;
    free(r->relay);
    r->relay = xstrdup(s->relay);

    if ((ext & SMTPEXT_SIZE) && s->caps.size_max && q->content_len > s->caps.size_max) {
        smtp_status_set(&st, 5, "5.3.4", NULL, "message size %llu exceeds size limit %llu of "
                        "server %s", (unsigned long long)q->content_len,
                        (unsigned long long)s->caps.size_max, s->namaddr);
        smtp_request_fail(r, &st, true);
        goto out;
    }
    if (r->smtputf8 && !(ext & SMTPEXT_SMTPUTF8)) {
        smtp_status_set(&st, 5, "5.6.7", NULL, "SMTPUTF8 is required, but was not offered by "
                        "host %s", s->namaddr);
        smtp_request_fail(r, &st, true);
        goto out;
    }
    if (r->eightbit < 0 && (r->eightbit = content_is_8bit(q)) < 0) {
        smtp_status_set(&st, 4, "4.3.0", NULL, "cannot read the queue file");
        smtp_request_fail(r, &st, true);
        goto out;
    }
    downgrade = r->eightbit && !(ext & SMTPEXT_8BITMIME);

    /* MAIL FROM */
    buf_printf(cmd, "MAIL FROM:<%s>", q->sender);
    if (ext & SMTPEXT_SIZE)
        buf_printf(cmd, " SIZE=%llu", (unsigned long long)q->content_len);
    if (r->eightbit && (ext & SMTPEXT_8BITMIME))
        buf_append_str(cmd, " BODY=8BITMIME");
    if (r->smtputf8)
        buf_append_str(cmd, " SMTPUTF8");
    if (dsn && q->ret)
        buf_append_str(cmd, q->ret == QUEUE_RET_FULL ? " RET=FULL" : " RET=HDRS");
    if (dsn && q->envid && *q->envid) {
        buf_append_str(cmd, " ENVID=");
        xtext_encode(cmd, q->envid, strlen(q->envid));
    }
    if ((rc = session_send(s, "%s", buf_cstr(cmd))) != SESS_OK) {
        session_error(s, rc, NULL, "sending MAIL FROM", "MAIL FROM", &st);
        trans_fail_open(r, &st, final, false);
        goto out;
    }
    if (!pipe) {
        if ((rc = session_read(s, smtp_param.mail_ms, &why)) != SESS_OK) {
            session_error(s, rc, why, "sending MAIL FROM", "MAIL FROM", &st);
            trans_fail_open(r, &st, final, false);
            goto out;
        }
        if (s->reply.code / 100 != 2) {
            session_error(s, SESS_OK, NULL, "", "MAIL FROM", &st);
            trans_fail_open(r, &st, final, false);
            goto out;
        }
    }

    /* RCPT TO, each; without pipelining each reply is read at once. */
    for (size_t i = 0; i < r->nrcpt; i++) {
        struct smtp_rcpt *rc_ = &r->rcpts[i];

        if (rc_->final)
            continue;
        buf_reset(cmd);
        buf_printf(cmd, "RCPT TO:<%s>", rc_->address);
        if (dsn) {
            trans_notify(cmd, rc_->qr ? rc_->qr->notify : 0);
            trans_orcpt(cmd, rc_);
        }
        if ((rc = session_send(s, "%s", buf_cstr(cmd))) != SESS_OK) {
            session_error(s, rc, NULL, "sending RCPT TO", "RCPT TO", &st);
            trans_fail_open(r, &st, final, false);
            goto out;
        }
        if (pipe)
            continue;
        if ((rc = session_read(s, smtp_param.rcpt_ms, &why)) != SESS_OK) {
            session_error(s, rc, why, "sending RCPT TO", "RCPT TO", &st);
            trans_fail_open(r, &st, final, false);
            goto out;
        }
        if (s->reply.code / 100 == 2) {
            rc_->accepted = true;
            naccepted++;
        } else {
            session_error(s, SESS_OK, NULL, "", "RCPT TO", &rc_->st);
            rc_->final = final || rc_->st.dsn_class == 5;
        }
    }

    if (pipe) {
        /* DATA goes with the rest; BDAT only once a recipient is in. */
        if (!bdat && (rc = session_send(s, "DATA")) != SESS_OK) {
            session_error(s, rc, NULL, "sending DATA", "DATA", &st);
            trans_fail_open(r, &st, final, false);
            goto out;
        }
        if ((rc = session_read(s, smtp_param.mail_ms, &why)) != SESS_OK) {
            session_error(s, rc, why, "sending MAIL FROM", "MAIL FROM", &st);
            trans_fail_open(r, &st, final, false);
            goto out;
        }
        if (s->reply.code / 100 != 2)
            session_error(s, SESS_OK, NULL, "", "MAIL FROM", &mailst);
        for (size_t i = 0; i < r->nrcpt; i++) {
            struct smtp_rcpt *rc_ = &r->rcpts[i];

            if (rc_->final)
                continue;
            if ((rc = session_read(s, smtp_param.rcpt_ms, &why)) != SESS_OK) {
                session_error(s, rc, why, "sending RCPT TO", "RCPT TO", &st);
                trans_fail_open(r, &st, final, false);
                goto out;
            }
            if (mailst.dsn_class)
                continue;       /* MAIL failed: its reply is the recipients' */
            if (s->reply.code / 100 == 2) {
                rc_->accepted = true;
                naccepted++;
            } else {
                session_error(s, SESS_OK, NULL, "", "RCPT TO", &rc_->st);
                rc_->final = final || rc_->st.dsn_class == 5;
            }
        }
        if (!bdat) {
            if ((rc = session_read(s, smtp_param.data_init_ms, &why)) != SESS_OK) {
                session_error(s, rc, why, "sending DATA", "DATA", &st);
                if (mailst.dsn_class)
                    trans_fail_open(r, &mailst, final, false);
                else
                    trans_fail_open(r, &st, final, true);
                goto out;
            }
            if (s->reply.code == 354 && (naccepted == 0 || mailst.dsn_class)) {
                /* A server that said yes to DATA with nobody to send to:
                 * an empty message it must refuse. */
                if ((rc = session_send(s, ".")) == SESS_OK)
                    rc = session_read(s, smtp_param.data_done_ms, &why);
                if (rc != SESS_OK)
                    s->usable = false;
            }
        }
        if (mailst.dsn_class) {
            trans_fail_open(r, &mailst, final, false);
            goto out;
        }
        if (naccepted == 0)
            goto out;
        if (!bdat && s->reply.code != 354) {
            session_error(s, SESS_OK, NULL, "", "DATA", &st);
            trans_fail_open(r, &st, final, true);
            goto out;
        }
    } else {
        if (naccepted == 0)
            goto out;
        if (!bdat) {
            if ((rc = session_send(s, "DATA")) == SESS_OK)
                rc = session_read(s, smtp_param.data_init_ms, &why);
            if (rc != SESS_OK) {
                session_error(s, rc, why, "sending DATA", "DATA", &st);
                trans_fail_open(r, &st, final, true);
                goto out;
            }
            if (s->reply.code != 354) {
                session_error(s, SESS_OK, NULL, "", "DATA", &st);
                trans_fail_open(r, &st, final, true);
                goto out;
            }
        }
    }

    /* The content, then the verdict. */
    rc = content_send(s, q, bdat ? CONTENT_BDAT : CONTENT_DATA, downgrade, pipe, &doing, &why);
    if (rc == CONTENT_QUEUE_ERR) {
        msg_warn("%s: cannot read the queue file: %s", r->req->queue_id, why);
        smtp_status_set(&st, 4, "4.3.0", NULL, "cannot read the queue file: %s", why);
        trans_fail_open(r, &st, true, true);
        goto out;
    }
    if (rc == SESS_OK && !bdat) {
        doing = "sending end of data -- message may be sent more than once";
        rc = session_read(s, smtp_param.data_done_ms, &why);
    }
    if (rc != SESS_OK) {
        session_error(s, rc, why, doing, bdat ? "BDAT" : "end of DATA", &st);
        trans_fail_open(r, &st, final, true);
        goto out;
    }
    if (s->reply.code / 100 != 2) {
        session_error(s, SESS_OK, NULL, "", bdat ? "BDAT" : "end of DATA", &st);
        trans_fail_open(r, &st, final, true);
        goto out;
    }
    {
        char dsnbuf[12];

        snprintf(dsnbuf, sizeof(dsnbuf), "%s",
                 s->reply.dsn[0] == '2' ? s->reply.dsn : "2.0.0");
        smtp_status_set(&st, 2, dsnbuf, s->reply.text, "%s", s->reply.text);
        /* Postfix: a server that announced DSN got our NOTIFY and reports
         * success itself; to one that did not, the mail was "relayed". */
        st.relayed = dsn ? DELIVER_RELAYED_DSN : DELIVER_RELAYED;
        trans_fail_open(r, &st, true, true);
    }
out:
    smtp_status_clear(&st);
    smtp_status_clear(&mailst);
    buf_free(&cmd);
}
