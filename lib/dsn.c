/*
 * dsn - delivery status notifications (RFC 3464, RFC 3461): the
 * non-delivery report for recipients that failed for good, and the
 * success report for recipients that asked for one (NOTIFY=SUCCESS).
 * qmgr sends both; pickup the non-delivery report for a message from
 * sendmail that cleanup refused for good.
 *
 * The report is a new message from the null sender to the original
 * envelope sender, built here in a memfd and submitted to cleanup like any
 * other mail (CLEANUP_FLAG_BOUNCE: no Received: header, no size or hop
 * limit), so it is committed by the durability rule before the failed
 * recipients are marked bounced.  Layout (Postfix's, which admins and
 * mail clients know):
 *   multipart/report; report-type=delivery-status
 *     text/plain                 the explanation, one line per recipient
 *     message/delivery-status    Reporting-MTA, Original-Envelope-Id,
 *                                Arrival-Date; per recipient
 *                                Original-Recipient, Final-Recipient,
 *                                Action, Status, Diagnostic-Code,
 *                                Last-Attempt-Date
 *     message/rfc822             the original message (RET=FULL, the
 *       or text/rfc822-headers   default for failures) or its header
 *                                (RET=HDRS, and always for success)
 * The caller decides about mail from the null sender (never answered).
 *
 * Failure modes: cleanup unreachable or refusing is a -1 return (logged):
 * the caller tries again later.
 * Parameters: myhostname, mail_name.
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

static void bounce_build(buf_t *b, const char *id, const queue_file_t *q,
                         const struct dsn_rcpt *rcpts, size_t n, int failed)
{
    const char *host = conf_str("myhostname");
    char now[64], arrival[64], boundary[128];
    struct bounce_copy copy = {.out = b};
    time_t t = time(NULL);
    size_t i;

    bounce_date(now, sizeof(now), t);
    bounce_date(arrival, sizeof(arrival), (time_t)q->arrival_sec);
    snprintf(boundary, sizeof(boundary), "%s.%lld/%s", id, (long long)t, host);
    buf_printf(b, "From: %s <MAILER-DAEMON@%s>\r\n", "Mail Delivery System", host);
    buf_printf(b, "To: <%s>\r\n", q->sender);
    buf_printf(b, "Subject: %s\r\n", failed ? "Undelivered Mail Returned to Sender"
                                            : "Successful Mail Delivery Report");
    buf_printf(b, "Date: %s\r\n", now);
    buf_printf(b, "Message-ID: <%s.%lld.%s@%s>\r\n", id, (long long)t,
               failed ? "bounce" : "success", host);
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
    if (failed)
        buf_printf(b, "I'm sorry to have to inform you that your message could not\r\n"
                      "be delivered to one or more recipients. It's attached below.\r\n\r\n"
                      "For further assistance, please send mail to postmaster.\r\n\r\n"
                      "If you do so, please include this problem report. You can\r\n"
                      "delete your own text from the attached returned message.\r\n\r\n"
                      "                   The mail system\r\n\r\n");
    else
        buf_printf(b, "Your message was successfully delivered to the destination(s)\r\n"
                      "listed below. If the message was delivered to a mailbox you will\r\n"
                      "receive no further notifications.\r\n\r\n"
                      "                   The mail system\r\n\r\n");
    for (i = 0; i < n; i++) {
        const struct dsn_rcpt *s = &rcpts[i];

        buf_printf(b, "<");
        bounce_put_safe(b, s->rcpt->address);
        buf_printf(b, ">: ");
        bounce_put_safe(b, s->text ? s->text : "");
        buf_printf(b, "\r\n");
    }
    buf_printf(b, "\r\n");

    /* The machine-readable report (RFC 3464 2.2, 2.3). */
    buf_printf(b, "--%s\r\nContent-Description: Delivery report\r\n"
                  "Content-Type: message/delivery-status\r\n\r\n", boundary);
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
        const char *semi = r->orcpt ? strchr(r->orcpt, ';') : NULL;

        buf_printf(b, "\r\n");
        if (semi) {
            buf_printf(b, "Original-Recipient: ");
            bounce_put_safe(b, r->orcpt);
            buf_printf(b, "\r\n");
        }
        buf_printf(b, "Final-Recipient: rfc822; ");
        bounce_put_safe(b, r->address);
        buf_printf(b, "\r\nAction: %s\r\nStatus: %s\r\n", failed ? "failed" : "delivered",
                   s->dsn ? s->dsn : (failed ? "5.0.0" : "2.0.0"));
        if (s->relay && strchr(s->relay, '[') != NULL) {
            /* RFC 3464 2.3.5: the remote MTA by name ("host[addr]:port"). */
            char *host = xstrndup(s->relay, strcspn(s->relay, "["));

            buf_printf(b, "Remote-MTA: dns; ");
            bounce_put_safe(b, host);
            buf_printf(b, "\r\n");
            free(host);
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
    }
    buf_printf(b, "\r\n");

    /* The original, or its header. */
    copy.headers_only = !failed || q->ret == QUEUE_RET_HDRS;
    buf_printf(b, "--%s\r\nContent-Description: %s\r\nContent-Type: %s\r\n", boundary,
               copy.headers_only ? "Undelivered Message Headers" : "Undelivered Message",
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
             int failed, char **queued_as)
{
    struct cleanup_request r;
    struct cleanup_result res;
    const char *why = NULL;
    buf_t *b = buf_new(0);
    int sock, rc = -1;

    *queued_as = NULL;
    bounce_build(b, id, q, rcpts, n, failed);
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
