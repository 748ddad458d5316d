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
#include "sendmail.h"
#include "xalloc.h"

struct field {
    char  *text;        /* the whole field, continuations included, CRLF after each line */
    size_t name_len;    /* length of the name before ':' */
};

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

/* The length of the field name if line starts a header field, else 0. */
static size_t field_name_len(const char *line, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)line[i];

        if (ch == ':')
            return i;
        if (ch < 33 || ch > 126)
            return 0;
    }
    return 0;
}

static bool field_is(const struct field *f, const char *name)
{
    return f->name_len == strlen(name) && strncasecmp(f->text, name, f->name_len) == 0;
}

/* The field's value, unfolded. */
static char *field_value(const struct field *f)
{
    buf_t *b = buf_new(0);
    const char *p = f->text + f->name_len + 1;

    char *value;

    for (; *p; p++)
        if (*p != '\r' && *p != '\n')
            buf_putc(b, *p);
    value = buf_steal(b, NULL);
    buf_free(&b);
    return value;
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

static void extract_rcpts(struct cleanup_request *r, struct field *fields, size_t nfields)
{
    static const char *const plain[] = {"to", "cc", "bcc", NULL};
    static const char *const resent[] = {"resent-to", "resent-cc", "resent-bcc", NULL};
    const char *const *names = plain;
    size_t i;

    for (i = 0; i < nfields; i++)
        for (const char *const *n = resent; *n; n++)
            if (field_is(&fields[i], *n))
                names = resent;
    for (i = 0; i < nfields; i++)
        for (const char *const *n = names; *n; n++)
            if (field_is(&fields[i], *n)) {
                char *value = field_value(&fields[i]);
                const char *why;

                if (sm_add_rcpts(r, value, &why) < 0)
                    sm_fatal(EX_DATAERR, "bad address in the %.*s: header: %s",
                             (int)fields[i].name_len, fields[i].text, why);
                free(value);
            }
}

static void add_missing(struct compose *c, struct field *fields, size_t nfields,
                        const char *sender)
{
    bool from = false, date = false, msgid = false;
    const char *name;
    char when[64];
    time_t now = time(NULL);
    struct tm tm;
    buf_t *b = buf_new(0);

    for (size_t i = 0; i < nfields; i++) {
        from |= field_is(&fields[i], "from");
        date |= field_is(&fields[i], "date");
        msgid |= field_is(&fields[i], "message-id");
    }
    localtime_r(&now, &tm);
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
    if (!date) {
        strftime(when, sizeof(when), "%a, %d %b %Y %H:%M:%S %z (%Z)", &tm);
        buf_printf(b, "Date: %s", when);
        out_line(c, b->data, b->len);
        buf_reset(b);
    }
    if (!msgid) {
        strftime(when, sizeof(when), "%Y%m%d%H%M%S", &tm);
        buf_printf(b, "Message-ID: <%s.%08x%08x@%s>", when, arc4random(), arc4random(),
                   conf_str("myhostname"));
        out_line(c, b->data, b->len);
    }
    buf_free(&b);
}

void sm_compose(FILE *in, struct cleanup_request *r)
{
    struct compose c = {.limit = conf_size("message_size_limit"), .out = buf_new(0)};
    struct field *fields = NULL;
    size_t nfields = 0, cap = 0, i;
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
        if (n == 0)
            break;
        if ((line[0] == ' ' || line[0] == '\t') && nfields > 0) {
            struct field *f = &fields[nfields - 1];
            size_t old = strlen(f->text);

            f->text = xrealloc(f->text, old + (size_t)n + 3);
            memcpy(f->text + old, line, (size_t)n);
            memcpy(f->text + old + n, "\r\n", 3);
            continue;
        }
        size_t nl = field_name_len(line, (size_t)n);

        if (nl == 0) {
            body_n = n;             /* the body starts with this line */
            break;
        }
        fields = xreallocarray(fields, nfields + 1, sizeof(*fields));
        fields[nfields].text = xasprintf("%s\r\n", line);
        fields[nfields].name_len = nl;
        nfields++;
    }
    if (sm_opts.extract)
        extract_rcpts(r, fields, nfields);
    for (i = 0; i < nfields; i++) {
        if (!field_is(&fields[i], "bcc") && !field_is(&fields[i], "resent-bcc"))
            out_put(&c, fields[i].text, strlen(fields[i].text));
    }
    add_missing(&c, fields, nfields, r->sender);
    out_put(&c, "\r\n", 2);
    for (i = 0; i < nfields; i++)
        free(fields[i].text);
    free(fields);

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
