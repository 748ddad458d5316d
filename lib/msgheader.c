/*
 * msgheader - a message's header fields (see msgheader.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "msgheader.h"
#include "xalloc.h"

#define MSGHEADER_CHUNK 65536

/* The length of the field name if line starts a header field, else 0. */
static size_t msgheader_name_len(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)line[i];

        if (ch == ':')
            return i;
        if (ch < 33 || ch > 126)
            return 0;
    }
    return 0;
}

static void msgheader_append(struct msgheader_field *f, const char *line, size_t len)
{
    f->text = xrealloc(f->text, f->len + len + 3);
    memcpy(f->text + f->len, line, len);
    memcpy(f->text + f->len + len, "\r\n", 3);
    f->len += len + 2;
}

int msgheader_add_line(struct msgheader *h, const char *line, size_t len)
{
    size_t name_len;

    if (h->done)
        return 0;
    if (len == 0) {
        h->done = h->separated = true;
        return 0;
    }
    if ((line[0] == ' ' || line[0] == '\t') && h->n > 0) {
        msgheader_append(&h->fields[h->n - 1], line, len);
        return 1;
    }
    if ((name_len = msgheader_name_len(line, len)) == 0) {
        h->done = true;
        return 0;
    }
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 16;
        h->fields = xreallocarray(h->fields, h->cap, sizeof(*h->fields));
    }
    h->fields[h->n].text = NULL;
    h->fields[h->n].len = 0;
    h->fields[h->n].name_len = name_len;
    msgheader_append(&h->fields[h->n], line, len);
    h->n++;
    return 1;
}

/* One line of content (without its line end) that starts at offset off. */
static void msgheader_line(struct msgheader *h, const char *line, size_t len, uint64_t off)
{
    if (msgheader_add_line(h, line, len) == 0)
        h->end = off;
}

int msgheader_read(int fd, uint64_t len, struct msgheader *h)
{
    char *chunk = xmalloc(MSGHEADER_CHUNK);
    buf_t *line = buf_new(0);
    uint64_t off = 0, line_off = 0;
    int rc = 0;

    memset(h, 0, sizeof(*h));
    while (off < len && !h->done) {
        size_t want = len - off < MSGHEADER_CHUNK ? (size_t)(len - off) : MSGHEADER_CHUNK;
        ssize_t n = pread(fd, chunk, want, (off_t)off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EBADMSG;
            rc = -1;
            break;
        }
        for (ssize_t i = 0; i < n && !h->done; i++) {
            if (chunk[i] != '\n') {
                buf_putc(line, chunk[i]);
                continue;
            }
            if (line->len > 0 && line->data[line->len - 1] == '\r')
                line->len--;
            msgheader_line(h, line->data, line->len, line_off);
            buf_reset(line);
            line_off = off + (uint64_t)i + 1;
        }
        off += (uint64_t)n;
    }
    if (rc == 0 && !h->done) {
        if (line->len > 0)          /* a last line without its line end */
            msgheader_line(h, line->data, line->len, line_off);
        if (!h->done) {
            h->done = true;
            h->end = len;
            h->unterminated = line->len > 0;
        }
    }
    buf_free(&line);
    free(chunk);
    if (rc < 0)
        msgheader_free(h);
    return rc;
}

bool msgheader_field_is(const struct msgheader_field *f, const char *name)
{
    return f->name_len == strlen(name) && strncasecmp(f->text, name, f->name_len) == 0;
}

const struct msgheader_field *msgheader_find(const struct msgheader *h, const char *name)
{
    for (size_t i = 0; i < h->n; i++)
        if (msgheader_field_is(&h->fields[i], name))
            return &h->fields[i];
    return NULL;
}

char *msgheader_field_value(const struct msgheader_field *f, size_t *lenp)
{
    buf_t *b = buf_new(0);
    char *value;

    for (size_t i = f->name_len + 1; i < f->len; i++)
        if (f->text[i] != '\r' && f->text[i] != '\n')
            buf_putc(b, f->text[i]);
    value = buf_steal(b, lenp);
    buf_free(&b);
    return value;
}

void msgheader_free(struct msgheader *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->fields[i].text);
    free(h->fields);
    memset(h, 0, sizeof(*h));
}

void msgheader_put_date(buf_t *out, time_t now)
{
    char when[64];
    struct tm tm;

    localtime_r(&now, &tm);
    strftime(when, sizeof(when), "%a, %d %b %Y %H:%M:%S %z (%Z)", &tm);
    buf_printf(out, "Date: %s\r\n", when);
}

void msgheader_put_message_id(buf_t *out, time_t now, const char *host)
{
    char when[32];
    struct tm tm;

    localtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y%m%d%H%M%S", &tm);
    buf_printf(out, "Message-ID: <%s.%08x%08x@%s>\r\n", when, arc4random(), arc4random(),
               host);
}
