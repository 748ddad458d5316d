/*
 * dsn - delivery status notifications (RFC 3464, RFC 3461): the
 * non-delivery report for recipients that failed for good, the warning
 * for recipients still being retried after delay_warning_time ("delayed"),
 * and the success report for recipients that asked for one
 * (NOTIFY=SUCCESS): "delivered" into a mailbox, or "relayed" to an MTA
 * that did not announce DSN and so will not report itself.  qmgr sends
 * all three; pickup the non-delivery report for a message from sendmail
 * that cleanup refused for good.
 *
 * The report is a new message from the null sender to the original
 * envelope sender, built here in a memfd and submitted to cleanup like any
 * other mail (CLEANUP_FLAG_BOUNCE: no Received: header, no size or hop
 * limit), so it is committed by the durability rule before the failed
 * recipients are marked bounced.  Layout, subjects and texts are
 * Postfix's, which admins and mail clients know ("Undelivered Mail
 * Returned to Sender", "Delayed Mail (still being retried)", "Successful
 * Mail Delivery Report"):
 *   multipart/report; report-type=delivery-status
 *     text/plain                 the explanation, one line per recipient
 *     message/delivery-status    Reporting-MTA, Original-Envelope-Id,
 *                                Arrival-Date; per recipient
 *                                Original-Recipient, Final-Recipient,
 *                                Action, Status (of the report's class),
 *                                Remote-MTA, Diagnostic-Code,
 *                                Last-Attempt-Date, and for "delayed"
 *                                Will-Retry-Until (arrival +
 *                                maximal_queue_lifetime)
 *     message/rfc822             the original message (RET=FULL, the
 *       or text/rfc822-headers   default for failures) or its header
 *                                (RET=HDRS, and always for delay
 *                                warnings and success)
 * The caller decides about mail from the null sender (never answered).
 *
 * Failure modes: cleanup unreachable or refusing is a -1 return (logged):
 * the caller tries again later.
 * Parameters: myhostname, delay_warning_time, maximal_queue_lifetime,
 * bounce_queue_lifetime.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cleanup_proto.h"
#include "conf.h"
#include "dsn.h"
#include "ipc.h"
#include "msg.h"
#include "xalloc.h"

#define DSN_CLEANUP_MS  30000

static void bounce_date(char *out, size_t len, time_t t)
{
    struct tm tm;

    localtime_r(&t, &tm);
    strftime(out, len, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* Only printable ASCII goes into the report's header-like fields. */
static void bounce_put_safe(buf_t *b, const char *s)
{
    for (; *s; s++)
        buf_putc(b, (unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f ? *s : '?');
}

/* Content copy state: the original message, or only its header. */
struct bounce_copy {
    buf_t *out;
    int    headers_only;
    int    done;            /* the header's end was seen (headers_only) */
    int    bol_state;       /* 0 mid-line, 1 after LF, 2 after LF CR */
};

static int bounce_copy_piece(void *ctx, const void *data, size_t len)
{
    struct bounce_copy *c = ctx;
    const char *p = data;
    size_t i;

    if (c->done)
        return 1;                           /* stop early */
    if (!c->headers_only)
        return buf_append(c->out, p, len) < 0 ? -1 : 0;
    for (i = 0; i < len; i++) {
        if (p[i] == '\n') {
            if (c->bol_state) {             /* an empty line: the header ends */
                c->done = 1;
                break;
            }
            c->bol_state = 1;
        } else if (p[i] == '\r' && c->bol_state == 1) {
            c->bol_state = 2;
        } else {
            c->bol_state = 0;
        }
    }
    if (buf_append(c->out, p, i < len ? i + 1 : len) < 0)
        return -1;
    return c->done ? 1 : 0;
}

/* A duration as Postfix's templates say it: "4 hour(s)", "5 day(s)"; the
 * largest unit that divides it. */
static void dsn_duration(buf_t *b, long long secs)
{
    static const struct { long long len; const char *name; } units[] = {
        {86400, "day"}, {3600, "hour"}, {60, "minute"},
    };

    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (secs > 0 && secs % units[i].len == 0) {
            buf_printf(b, "%lld %s(s)", secs / units[i].len, units[i].name);
            return;
        }
    buf_printf(b, "%lld second(s)", secs);
}

/* The explanation part's text for a kind. */
static void dsn_explain(buf_t *b, enum dsn_kind kind, const queue_file_t *q)
{
    switch (kind) {
    case DSN_FAILED:
        buf_printf(b, "I'm sorry to have to inform you that your message could not\r\n"
                      "be delivered to one or more recipients. It's attached below.\r\n\r\n"
                      "For further assistance, please send mail to postmaster.\r\n\r\n"
                      "If you do so, please include this problem report. You can\r\n"
                      "delete your own text from the attached returned message.\r\n\r\n");
        break;
    case DSN_DELAYED:
        buf_printf(b, "####################################################################\r\n"
                      "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\r\n"
                      "####################################################################\r\n"
                      "\r\nYour message could not be delivered for more than ");
        dsn_duration(b, conf_time("delay_warning_time"));
        buf_printf(b, ".\r\nIt will be retried until it is ");
        dsn_duration(b, *q->sender ? conf_time("maximal_queue_lifetime")
                                   : conf_time("bounce_queue_lifetime"));
        buf_printf(b, " old.\r\n\r\n"
                      "For further assistance, please send mail to postmaster.\r\n\r\n"
                      "If you do so, please include this problem report. You can\r\n"
                      "delete your own text from the attached returned message.\r\n\r\n");
        break;
    case DSN_SUCCESS:
        buf_printf(b, "Your message was successfully delivered to the destination(s)\r\n"
                      "listed below. If the message was delivered to mailbox you will\r\n"
                      "receive no further notifications. Otherwise you may still receive\r\n"
                      "notifications of mail delivery errors from other systems.\r\n\r\n");
        break;
    }
    buf_printf(b, "                   The mail system\r\n\r\n");
}

void dsn_build(buf_t *b, const char *id, const queue_file_t *q, const struct dsn_rcpt *rcpts,
               size_t n, enum dsn_kind kind, time_t t)
{
    static const char *const subject[] = {
        [DSN_SUCCESS] = "Successful Mail Delivery Report",
        [DSN_FAILED] = "Undelivered Mail Returned to Sender",
        [DSN_DELAYED] = "Delayed Mail (still being retried)",
    };
    static const char *const tag[] = {
        [DSN_SUCCESS] = "success", [DSN_FAILED] = "bounce", [DSN_DELAYED] = "delay",
    };
    const char *host = conf_str("myhostname");
    char now[64], arrival[64], until[64], boundary[128];
    struct bounce_copy copy = {.out = b};
    size_t i;

    bounce_date(now, sizeof(now), t);
    bounce_date(arrival, sizeof(arrival), (time_t)q->arrival_sec);
    /* RFC 3464 2.3.9: how long we go on trying (the lifetime qmgr applies). */
    bounce_date(until, sizeof(until), (time_t)(q->arrival_sec
                + (*q->sender ? conf_time("maximal_queue_lifetime")
                              : conf_time("bounce_queue_lifetime"))));
    snprintf(boundary, sizeof(boundary), "%s.%lld/%s", id, (long long)t, host);
    buf_printf(b, "From: %s <MAILER-DAEMON@%s>\r\n", "Mail Delivery System", host);
    buf_printf(b, "To: <%s>\r\n", q->sender);
    buf_printf(b, "Subject: %s\r\n", subject[kind]);
    buf_printf(b, "Date: %s\r\n", now);
    buf_printf(b, "Message-ID: <%s.%lld.%s@%s>\r\n", id, (long long)t, tag[kind], host);
    buf_printf(b, "Auto-Submitted: auto-replied\r\n");
    buf_printf(b, "MIME-Version: 1.0\r\n");
    buf_printf(b, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
                  "\tboundary=\"%s\"\r\n", boundary);
    buf_printf(b, "Content-Transfer-Encoding: 8bit\r\n\r\n");
    buf_printf(b, "This is a MIME-encapsulated message.\r\n\r\n");

    /* The explanation. */
    buf_printf(b, "--%s\r\nContent-Description: Notification\r\n"
                  "Content-Type: text/plain; charset=utf-8\r\n\r\n", boundary);
    buf_printf(b, "This is the mail system at host %s.\r\n\r\n", host);
    dsn_explain(b, kind, q);
    for (i = 0; i < n; i++) {
        const struct dsn_rcpt *s = &rcpts[i];
        int relayed = kind == DSN_SUCCESS && s->relayed;

        buf_printf(b, "<");
        bounce_put_safe(b, s->rcpt->address);
        buf_printf(b, ">: ");
        if (relayed && s->relay) {
            buf_printf(b, "delivery via ");
            bounce_put_safe(b, s->relay);
            buf_printf(b, ": ");
        }
        bounce_put_safe(b, s->text ? s->text : "");
        if (relayed)
            buf_printf(b, " (relayed to non-DSN-aware mailer)");
        buf_printf(b, "\r\n");
    }
    buf_printf(b, "\r\n");

    /* The machine-readable report (RFC 3464 2.2, 2.3). */
    buf_printf(b, "--%s\r\nContent-Description: %s\r\n"
                  "Content-Type: message/delivery-status\r\n\r\n", boundary,
               kind == DSN_DELAYED ? "Delivery delay report" : "Delivery report");
    buf_printf(b, "Reporting-MTA: dns; %s\r\n", host);
    buf_printf(b, "X-Posthorn-Queue-ID: %s\r\n", id);
    if (q->envid) {
        buf_printf(b, "Original-Envelope-Id: ");
        bounce_put_safe(b, q->envid);
        buf_printf(b, "\r\n");
    }
    buf_printf(b, "Arrival-Date: %s\r\n", arrival);
    for (i = 0; i < n; i++) {
        const struct dsn_rcpt *s = &rcpts[i];
        const queue_rcpt_t *r = s->rcpt;
        const char *semi = r->orcpt ? strchr(r->orcpt, ';') : NULL, *action, *status;

        switch (kind) {
        case DSN_FAILED:
            action = "failed";
            status = s->dsn && s->dsn[0] == '5' ? s->dsn : "5.0.0";
            break;
        case DSN_DELAYED:
            action = "delayed";
            status = s->dsn && s->dsn[0] == '4' ? s->dsn : "4.0.0";
            break;
        default:
            action = s->relayed ? "relayed" : "delivered";
            status = s->dsn && s->dsn[0] == '2' ? s->dsn : "2.0.0";
            break;
        }
        buf_printf(b, "\r\n");
        if (semi) {
            buf_printf(b, "Original-Recipient: ");
            bounce_put_safe(b, r->orcpt);
            buf_printf(b, "\r\n");
        }
        buf_printf(b, "Final-Recipient: rfc822; ");
        bounce_put_safe(b, r->address);
        buf_printf(b, "\r\nAction: %s\r\nStatus: %s\r\n", action, status);
        if (s->relay && strchr(s->relay, '[') != NULL) {
            /* RFC 3464 2.3.5: the remote MTA by name ("host[addr]:port"). */
            char *rhost = xstrndup(s->relay, strcspn(s->relay, "["));

            buf_printf(b, "Remote-MTA: dns; ");
            bounce_put_safe(b, rhost);
            buf_printf(b, "\r\n");
            free(rhost);
        }
        if (s->diag_type && *s->diag_type) {
            buf_printf(b, "Diagnostic-Code: ");
            bounce_put_safe(b, s->diag_type);
            buf_printf(b, "; ");
            bounce_put_safe(b, s->diag_text ? s->diag_text : "");
        } else {
            buf_printf(b, "Diagnostic-Code: X-Posthorn; ");
            bounce_put_safe(b, s->text ? s->text : "");
        }
        buf_printf(b, "\r\nLast-Attempt-Date: %s\r\n", now);
        if (kind == DSN_DELAYED)
            buf_printf(b, "Will-Retry-Until: %s\r\n", until);
    }
    buf_printf(b, "\r\n");

    /* The original (failures, unless RET=HDRS), or its header. */
    copy.headers_only = kind != DSN_FAILED || q->ret == QUEUE_RET_HDRS;
    buf_printf(b, "--%s\r\nContent-Description: %s\r\nContent-Type: %s\r\n", boundary,
               kind == DSN_SUCCESS ? "Delivered Message Headers"
               : copy.headers_only ? "Undelivered Message Headers" : "Undelivered Message",
               copy.headers_only ? "text/rfc822-headers" : "message/rfc822");
    if (!copy.headers_only)
        buf_printf(b, "Content-Transfer-Encoding: 8bit\r\n");
    buf_printf(b, "\r\n");
    copy.bol_state = 0;
    if (queue_content_copy(q, bounce_copy_piece, &copy) < 0)
        msg_warn("%s: cannot read the message for its report: %s", id, strerror(errno));
    if (b->len < 2 || memcmp(b->data + b->len - 2, "\r\n", 2) != 0)
        buf_printf(b, "\r\n");
    buf_printf(b, "\r\n--%s--\r\n", boundary);
}

int dsn_send(const char *id, const queue_file_t *q, const struct dsn_rcpt *rcpts, size_t n,
             enum dsn_kind kind, char **queued_as)
{
    struct cleanup_request r;
    struct cleanup_result res;
    const char *why = NULL;
    buf_t *b = buf_new(0);
    int sock, rc = -1;

    *queued_as = NULL;
    dsn_build(b, id, q, rcpts, n, kind, time(NULL));
    cleanup_request_init(&r);
    r.flags = CLEANUP_FLAG_BOUNCE;
    r.sender = xstrdup("");
    r.envid = xstrdup("");
    r.ret = QUEUE_RET_NONE;
    cleanup_request_rcpt(&r, q->sender, "", "", QUEUE_NOTIFY_NEVER);
    cleanup_request_attr(&r, "protocol", "bounce");
    r.content_len = b->len;
    r.content_fd = memfd_create("posthorn-bounce", MFD_CLOEXEC);
    if (r.content_fd < 0 || write(r.content_fd, b->data, b->len) != (ssize_t)b->len) {
        msg_warn("%s: cannot make the delivery status notification: %s", id, strerror(errno));
        goto out;
    }
    sock = ipc_client_open(CLEANUP_SOCKET, CLEANUP_PROTO_NAME, CLEANUP_PROTO_VERSION,
                           DSN_CLEANUP_MS, &why);
    if (sock < 0) {
        msg_warn("%s: cannot reach cleanup for the delivery status notification: %s", id,
                 why ? why : strerror(errno));
        goto out;
    }
    if (cleanup_submit(sock, &r, &res, DSN_CLEANUP_MS) < 0) {
        msg_warn("%s: cleanup did not take the delivery status notification: %s", id,
                 strerror(errno));
    } else {
        if (res.code == 250) {
            *queued_as = xstrdup(res.text);
            rc = 0;
        } else {
            msg_warn("%s: cleanup refused the delivery status notification: %d %s %s", id,
                     res.code, res.dsn, res.text);
        }
        cleanup_result_free(&res);
    }
    close(sock);
out:
    cleanup_request_free(&r);
    buf_free(&b);
    return rc;
}
