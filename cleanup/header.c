/*
 * header - the header scanner and the Received: header (see header.h).
 *
 * The Received: header follows RFC 5321 4.4 and Postfix's layout:
 *   Received: from HELO (NAME [ADDR])
 *           (using TLSv1.3 with cipher NAME (BITS/BITS bits))
 *           by MYHOSTNAME (MAIL_NAME) with PROTOCOL id QUEUEID
 *           for <RCPT>; DATE
 * NAME is the client_name attribute (smtpd's forward-confirmed name of the
 * client), "unknown" when there is none.
 * With the hide_client flag (submission_hide_client) it is only
 *   Received: by MYHOSTNAME (MAIL_NAME) with PROTOCOL id QUEUEID ...
 * "for" only when the message has one recipient (more would disclose the
 * others).  Peer-supplied text (the HELO name, the client's name) is
 * reduced to printable ASCII without parentheses or backslashes so it
 * cannot break the comment syntax or the header.
 */
#include <string.h>

#include "conf.h"
#include "header.h"
#include "queue.h"

void header_scan_init(struct header_scan *h)
{
    memset(h, 0, sizeof(*h));
    h->bol = 1;
}

void header_scan_free(struct header_scan *h)
{
    buf_free(&h->msgid);
}

/* A complete header name prefix is in h->start: classify the line. */
static void header_scan_name(struct header_scan *h)
{
    if (h->nstart == 9 && memcmp(h->start, "received:", 9) == 0)
        h->received++;
    if (h->nstart == 11 && memcmp(h->start, "message-id:", 11) == 0 && h->msgid == NULL) {
        h->msgid = buf_new(HEADER_MSGID_MAX);
        h->in_msgid = 1;
    }
}

void header_scan_feed(struct header_scan *h, const char *data, size_t len)
{
    size_t i;

    for (i = 0; i < len && !h->done; i++) {
        unsigned char c = (unsigned char)data[i];

        if (h->bol) {
            h->bol = 0;
            h->nstart = 0;
            if (c == '\r' || c == '\n') {       /* the empty line */
                h->done = 1;
                break;
            }
            if (c != ' ' && c != '\t')          /* a new header field */
                h->in_msgid = 0;
        }
        if (c == '\n') {
            h->bol = 1;
            continue;
        }
        if (h->in_msgid) {
            if (c != '\r')
                buf_putc(h->msgid, c);          /* stops at the buffer's cap */
            continue;
        }
        if (h->nstart < sizeof(h->start)) {
            h->start[h->nstart++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
            if (c == ':')
                header_scan_name(h);
            if (c == ':' || c == ' ' || c == '\t')
                h->nstart = sizeof(h->start);   /* past the name: stop looking */
        }
    }
}

const char *header_scan_msgid(struct header_scan *h)
{
    char *p, *end;

    if (h->msgid == NULL || h->msgid->len == 0)
        return "";
    buf_putc(h->msgid, '\0');
    p = h->msgid->data;
    while (*p == ' ' || *p == '\t')
        p++;
    end = p + strlen(p);
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\0'))
        *--end = '\0';
    return p;
}


/* Append s, keeping only characters that are safe inside a comment. */
static void header_put_safe(buf_t *out, const char *s, size_t max)
{
    size_t n;

    for (n = 0; *s && n < max; s++, n++) {
        unsigned char c = (unsigned char)*s;

        buf_putc(out, c > 0x20 && c < 0x7f && c != '(' && c != ')' && c != '\\' ? c : '?');
    }
}

/* The end of a Received: header: "by MYHOSTNAME (MAIL_NAME) with PROTOCOL
 * id ID", the recipient when there is one, and the date. */
static void header_received_by(buf_t *out, const struct cleanup_request *r, const char *proto,
                               const char *id, const char *date)
{
    buf_append_str(out, "by ");
    header_put_safe(out, conf_str("myhostname"), 255);
    buf_append_str(out, " (");
    header_put_safe(out, conf_str("mail_name"), 64);
    buf_append_str(out, ") with ");
    header_put_safe(out, proto && *proto ? proto : "SMTP", 16);
    buf_printf(out, " id %s", id);
    if (r->nrcpt == 1)
        buf_printf(out, "\r\n\tfor <%s>; %s\r\n", r->rcpts[0].address, date);
    else
        buf_printf(out, ";\r\n\t%s\r\n", date);
}

void header_received(buf_t *out, const struct cleanup_request *r, const char *id, time_t now)
{
    const char *helo = cleanup_request_get_attr(r, QUEUE_ATTR_HELO);
    const char *addr = cleanup_request_get_attr(r, QUEUE_ATTR_CLIENT_ADDR);
    const char *name = cleanup_request_get_attr(r, QUEUE_ATTR_CLIENT_NAME);
    const char *proto = cleanup_request_get_attr(r, QUEUE_ATTR_PROTOCOL);
    const char *tls_proto = cleanup_request_get_attr(r, CLEANUP_ATTR_TLS_PROTOCOL);
    const char *tls_cipher = cleanup_request_get_attr(r, CLEANUP_ATTR_TLS_CIPHER);
    const char *tls_bits = cleanup_request_get_attr(r, CLEANUP_ATTR_TLS_BITS);
    const char *uid = cleanup_request_get_attr(r, QUEUE_ATTR_SUBMIT_UID);
    char date[64];
    struct tm tm;

    localtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z (%Z)", &tm);
    if (uid && !addr) {
        /* Local submission (sendmail, then pickup): no client, as Postfix
         * writes it. */
        buf_append_str(out, "Received: by ");
        header_put_safe(out, conf_str("myhostname"), 255);
        buf_append_str(out, " (");
        header_put_safe(out, conf_str("mail_name"), 64);
        buf_append_str(out, ", from userid ");
        header_put_safe(out, uid, 12);
        buf_printf(out, ")\r\n\tid %s; %s\r\n", id, date);
        return;
    }
    if (r->flags & CLEANUP_FLAG_HIDE_CLIENT) {
        /* submission_hide_client: nothing of the client, nor of its TLS. */
        buf_append_str(out, "Received: ");
        header_received_by(out, r, proto, id, date);
        return;
    }
    buf_append_str(out, "Received: from ");
    header_put_safe(out, helo && *helo ? helo : "unknown", 255);
    if (addr) {
        buf_append_str(out, " (");
        header_put_safe(out, name && *name ? name : "unknown", 255);
        buf_append_str(out, " [");
        if (strchr(addr, ':'))
            buf_append_str(out, "IPv6:");
        header_put_safe(out, addr, 64);
        buf_append_str(out, "])");
    }
    buf_append_str(out, "\r\n");
    if (tls_proto && tls_cipher) {
        buf_append_str(out, "\t(using ");
        header_put_safe(out, tls_proto, 32);
        buf_append_str(out, " with cipher ");
        header_put_safe(out, tls_cipher, 64);
        if (tls_bits) {
            buf_append_str(out, " (");
            header_put_safe(out, tls_bits, 8);
            buf_putc(out, '/');
            header_put_safe(out, tls_bits, 8);
            buf_append_str(out, " bits)");
        }
        buf_append_str(out, ")\r\n");
    }
    buf_putc(out, '\t');
    header_received_by(out, r, proto, id, date);
}
