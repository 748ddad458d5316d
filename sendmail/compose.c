/*
 * compose.c - sendmail reads the message: from stdin to a memfd with CRLF
 * line ends, the header completed the way Postfix completes a local
 * submission.
 *
 *  - Input lines may end in LF or CRLF; every line is stored with CRLF
 *    (the queue's form).  Without -i/-oi a line holding only "." ends the
 *    input, as sendmail has always done.
 *  - A first line "From " (an mbox envelope line) is dropped.
 *  - The header is the run of lines up to the first empty line; a line that
 *    is neither a header field nor a continuation starts the body, and an
 *    empty line is put before it.
 *  - -t: the addresses of To:, Cc: and Bcc: become recipients (added to
 *    those of the command line, as Postfix does); when the header has
 *    Resent-To:, Resent-Cc: or Resent-Bcc:, only those count (RFC 5322
 *    3.6.6).  Bcc: and Resent-Bcc: are always removed.
 *  - Missing From:, Date: and Message-ID: are added at the end of the
 *    header: "From: Full Name <sender>" (the -F name, else the passwd
 *    entry's), the local time, <YYYYMMDDhhmmss.RANDOM@myhostname>.
 *  - message_size_limit applies to the stored content.
 *
 * Failure modes: a read or memfd error, a message over the limit and a
 * recipient header that does not parse are fatal (sm_fatal: nothing is
 * queued, the exit code tells the caller).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "msgheader.h"
#include "sendmail.h"
#include "xalloc.h"

struct compose {
    int       fd;
    uint64_t  len;
    long long limit;
    buf_t    *out;
};

static void out_flush(struct compose *c)
{
    const char *p = c->out->data;
    size_t n = c->out->len;

    while (n > 0) {
        ssize_t w = write(c->fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            sm_fatal(EX_TEMPFAIL, "cannot store the message: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
    buf_reset(c->out);
}

static void out_put(struct compose *c, const char *data, size_t len)
{
    c->len += len;
    if (c->limit > 0 && c->len > (uint64_t)c->limit)
        sm_fatal(EX_DATAERR, "message size exceeds message_size_limit (%lld bytes)", c->limit);
    buf_append(c->out, data, len);
    if (c->out->len >= 65536)
        out_flush(c);
}

static void out_line(struct compose *c, const char *data, size_t len)
{
    out_put(c, data, len);
    out_put(c, "\r\n", 2);
}

/* Read one line without its LF / CRLF; -1 at the end of the input. */
static ssize_t read_line(FILE *in, char **line, size_t *cap)
{
    ssize_t n = getline(line, cap, in);

    if (n < 0) {
        if (ferror(in))
            sm_fatal(EX_IOERR, "cannot read the message: %s", strerror(errno));
        return -1;
    }
    if (n > 0 && (*line)[n - 1] == '\n')
        n--;
    if (n > 0 && (*line)[n - 1] == '\r')
        n--;
    (*line)[n] = '\0';
    return n;
}

static bool ends_input(const char *line, ssize_t n)
{
    return sm_opts.dot_ends && n == 1 && line[0] == '.';
}

static void extract_rcpts(struct cleanup_request *r, const struct msgheader *h)
{
    const struct msgheader_field *fields = h->fields;
    size_t nfields = h->n;
    static const char *const plain[] = {"to", "cc", "bcc", NULL};
    static const char *const resent[] = {"resent-to", "resent-cc", "resent-bcc", NULL};
    const char *const *names = plain;
    size_t i;

    for (i = 0; i < nfields; i++)
        for (const char *const *n = resent; *n; n++)
            if (msgheader_field_is(&fields[i], *n))
                names = resent;
    for (i = 0; i < nfields; i++)
        for (const char *const *n = names; *n; n++)
            if (msgheader_field_is(&fields[i], *n)) {
                char *value = msgheader_field_value(&fields[i], NULL);
                const char *why;

                if (sm_add_rcpts(r, value, &why) < 0)
                    sm_fatal(EX_DATAERR, "bad address in the %.*s: header: %s",
                             (int)fields[i].name_len, fields[i].text, why);
                free(value);
            }
}

static void add_missing(struct compose *c, const struct msgheader *h, const char *sender)
{
    bool from = false, date = false, msgid = false;
    const char *name;
    time_t now = time(NULL);
    buf_t *b = buf_new(0);

    for (size_t i = 0; i < h->n; i++) {
        from |= msgheader_field_is(&h->fields[i], "from");
        date |= msgheader_field_is(&h->fields[i], "date");
        msgid |= msgheader_field_is(&h->fields[i], "message-id");
    }
    if (!from) {
        name = sm_opts.full_name ? sm_opts.full_name : sm_user.gecos_name;
        buf_append_str(b, "From: ");
        if (name && *name) {
            /* A quoted string unless it is a plain phrase. */
            bool plain = strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "0123456789 !#$%&'*+-/=?^_`{|}~") == strlen(name);

            if (plain) {
                buf_append_str(b, name);
            } else {
                buf_putc(b, '"');
                for (const char *p = name; *p; p++) {
                    if ((unsigned char)*p < 0x20)
                        continue;
                    if (*p == '"' || *p == '\\')
                        buf_putc(b, '\\');
                    buf_putc(b, *p);
                }
                buf_putc(b, '"');
            }
            buf_printf(b, " <%s>", *sender ? sender : "MAILER-DAEMON");
        } else {
            buf_append_str(b, *sender ? sender : "MAILER-DAEMON");
        }
        out_line(c, b->data, b->len);
        buf_reset(b);
    }
    if (!date)
        msgheader_put_date(b, now);
    if (!msgid)
        msgheader_put_message_id(b, now, conf_str("myhostname"));
    out_put(c, b->data, b->len);
    buf_free(&b);
}

void sm_compose(FILE *in, struct cleanup_request *r)
{
    struct compose c = {.limit = conf_size("message_size_limit"), .out = buf_new(0)};
    struct msgheader h = {0};
    size_t cap = 0, i;
    char *line = NULL;
    ssize_t n, body_n = -1;
    bool first = true, eof = false;

    if ((c.fd = memfd_create("posthorn-sendmail", MFD_CLOEXEC)) < 0)
        sm_fatal(EX_OSERR, "cannot store the message: memfd_create: %s", strerror(errno));

    /* The header. */
    for (;;) {
        if ((n = read_line(in, &line, &cap)) < 0 || ends_input(line, n)) {
            eof = true;
            break;
        }
        if (first && strncmp(line, "From ", 5) == 0) {
            first = false;
            continue;
        }
        first = false;
        if (msgheader_add_line(&h, line, (size_t)n))
            continue;
        if (n > 0)
            body_n = n;             /* the body starts with this line */
        break;
    }
    if (sm_opts.extract)
        extract_rcpts(r, &h);
    for (i = 0; i < h.n; i++) {
        if (!msgheader_field_is(&h.fields[i], "bcc")
            && !msgheader_field_is(&h.fields[i], "resent-bcc"))
            out_put(&c, h.fields[i].text, h.fields[i].len);
    }
    add_missing(&c, &h, r->sender);
    out_put(&c, "\r\n", 2);
    msgheader_free(&h);

    /* The body. */
    if (body_n >= 0)
        out_line(&c, line, (size_t)body_n);
    while (!eof) {
        if ((n = read_line(in, &line, &cap)) < 0 || ends_input(line, n))
            break;
        out_line(&c, line, (size_t)n);
    }
    out_flush(&c);
    free(line);
    buf_free(&c.out);
    r->content_fd = c.fd;
    r->content_len = c.len;
}
