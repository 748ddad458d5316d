/*
 * t/unit/msgheader.c - unit tests for lib/msgheader.c (a message's header
 * fields, read from a descriptor or line by line).
 *
 * Covers: fields with continuation lines kept as written; where the header
 * ends (the empty line, a line that is no field, a continuation before any
 * field, the end of the content, a last line without its line end, LF-only
 * content); lookups by name in any case, the first of several; values
 * unfolded; content read across pread chunks (a field longer than the
 * 64 KB chunk); a descriptor shorter than the length given (EBADMSG);
 * the Date: and Message-ID: lines added to a header being completed.
 */
#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "buf.h"
#include "msgheader.h"
#include "../lib/tap.h"

static int memfd_with(const char *text, size_t len)
{
    int fd = memfd_create("msgheader-test", 0);

    if (fd < 0 || write(fd, text, len) != (ssize_t)len) {
        diag("memfd: %s", strerror(errno));
        exit(1);
    }
    return fd;
}

/* Read text's header: 0 or -1; h filled. */
static int read_text(const char *text, struct msgheader *h)
{
    int fd = memfd_with(text, strlen(text)), rc;

    rc = msgheader_read(fd, strlen(text), h);
    close(fd);
    return rc;
}

static void test_fields(void)
{
    const char *msg = "From: Alice <alice@example.org>\r\n"
                      "To: bob@example.org,\r\n"
                      "\tcarol@example.org\r\n"
                      "Subject: hi\r\n"
                      "\r\n"
                      "From: not a header\r\n";
    struct msgheader h;
    char *v;

    ok(read_text(msg, &h) == 0, "a plain header reads");
    is_int((long long)h.n, 3, "  three fields");
    ok(h.separated, "  followed by the empty line");
    is_int((long long)h.end, (long long)(strstr(msg, "\r\n\r\n") - msg + 2),
           "  it ends where the empty line starts");
    is_str(h.fields[1].text, "To: bob@example.org,\r\n\tcarol@example.org\r\n",
           "  a field keeps its continuation lines as written");
    is_int((long long)h.fields[1].len, (long long)strlen(h.fields[1].text), "  and its length");
    ok(msgheader_find(&h, "SUBJECT") == &h.fields[2], "lookups ignore case");
    ok(msgheader_find(&h, "cc") == NULL, "  a missing field is NULL");
    v = msgheader_field_value(msgheader_find(&h, "to"), NULL);
    is_str(v, " bob@example.org,\tcarol@example.org", "the value unfolded");
    free(v);
    msgheader_free(&h);
    ok(h.n == 0 && h.fields == NULL, "msgheader_free leaves it empty");
}

static void test_ends(void)
{
    struct msgheader h;

    ok(read_text("Subject: x\r\nThis is the body\r\n", &h) == 0, "no empty line");
    is_int((long long)h.n, 1, "  one field");
    ok(!h.separated, "  not separated");
    is_int((long long)h.end, 12, "  the body starts at the line that is no field");
    msgheader_free(&h);

    ok(read_text(" continued\r\nSubject: x\r\n\r\n", &h) == 0, "a continuation first");
    is_int((long long)h.n, 0, "  is no header at all");
    is_int((long long)h.end, 0, "  the body starts at once");
    msgheader_free(&h);

    ok(read_text("Subject: x\r\nX-Other: y\r\n", &h) == 0, "a header and no body");
    is_int((long long)h.n, 2, "  two fields");
    is_int((long long)h.end, 24, "  it ends at the end of the content");
    ok(!h.separated, "  without an empty line");
    ok(!h.unterminated, "  its last line ended");
    msgheader_free(&h);

    ok(read_text("Subject: x\r\nX-Last: no line end", &h) == 0, "a last line without CRLF");
    is_int((long long)h.n, 2, "  is a field still");
    is_int((long long)h.end, 31, "  and the header ends with the content");
    ok(h.unterminated, "  which says it has no line end");
    msgheader_free(&h);

    ok(read_text("Subject: lf only\nTo: a@b\n\nbody\n", &h) == 0, "LF line ends");
    is_int((long long)h.n, 2, "  two fields");
    is_str(h.fields[0].text, "Subject: lf only\r\n", "  stored with CRLF");
    is_int((long long)h.end, 25, "  the empty line's offset");
    msgheader_free(&h);

    ok(read_text("", &h) == 0 && h.n == 0 && h.end == 0, "empty content: no header");
    msgheader_free(&h);

    ok(read_text("Bad Name: x\r\n\r\n", &h) == 0 && h.n == 0 && h.end == 0,
       "a name with a space is no field: the body starts");
    msgheader_free(&h);

    ok(read_text("From: a\r\nFrom: b\r\n\r\n", &h) == 0 && msgheader_find(&h, "from")
       == &h.fields[0], "of two fields of a name the first is found");
    msgheader_free(&h);
}

static void test_nul(void)
{
    static const char msg[] = "From: alice@example.org\0, mallory@example.org\r\n\r\n";
    struct msgheader h;
    size_t len;
    char *v;
    int fd = memfd_with(msg, sizeof(msg) - 1);

    ok(msgheader_read(fd, sizeof(msg) - 1, &h) == 0 && h.n == 1, "a NUL in a value");
    is_int((long long)h.fields[0].len, 47, "  the field's length counts past it");
    v = msgheader_field_value(&h.fields[0], &len);
    is_int((long long)len, 40, "  and so does the value's");
    ok(memcmp(v + 18, "\0, mallory", 10) == 0, "  which keeps what follows it");
    free(v);
    msgheader_free(&h);
    close(fd);
}

static void test_large(void)
{
    buf_t *b = buf_new(0);
    struct msgheader h;
    int fd;

    buf_append_str(b, "X-Big: ");
    for (int i = 0; i < 200000; i++)
        buf_putc(b, 'a' + i % 26);
    buf_append_str(b, "\r\nSubject: after\r\n\r\nbody\r\n");
    fd = memfd_with(b->data, b->len);
    ok(msgheader_read(fd, b->len, &h) == 0, "a field longer than a read chunk");
    is_int((long long)h.n, 2, "  two fields");
    is_int((long long)h.fields[0].len, 200009, "  the long one whole");
    ok(h.separated && h.end == b->len - 8, "  the end found past it");
    msgheader_free(&h);
    errno = 0;
    ok(msgheader_read(fd, b->len + 10, &h) == 0, "a length past the end: the header still "
       "ends before it");
    msgheader_free(&h);
    close(fd);
    fd = memfd_with("Subject: x\r\n", 12);
    errno = 0;
    ok(msgheader_read(fd, 100, &h) < 0 && errno == EBADMSG,
       "a descriptor shorter than the length while in the header: EBADMSG");
    ok(h.n == 0 && h.fields == NULL, "  and nothing is returned");
    close(fd);
    buf_free(&b);
}

static void test_lines(void)
{
    struct msgheader h = {0};

    ok(msgheader_add_line(&h, "To: a@example.org", 17) == 1, "line by line: a field");
    ok(msgheader_add_line(&h, " b@example.org", 14) == 1, "  a continuation");
    ok(msgheader_add_line(&h, "", 0) == 0, "  the empty line ends it");
    ok(h.separated && h.done, "  separated");
    ok(msgheader_add_line(&h, "Cc: c@example.org", 17) == 0, "  nothing after the end");
    is_str(h.fields[0].text, "To: a@example.org\r\n b@example.org\r\n", "  the field");
    msgheader_free(&h);
}

static int matches(const char *s, const char *re)
{
    regex_t rx;
    int rc;

    if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0)
        return 0;
    rc = regexec(&rx, s, 0, NULL, 0) == 0;
    regfree(&rx);
    return rc;
}

static void test_completion(void)
{
    buf_t *b = buf_new(0);

    msgheader_put_date(b, 0);
    if (!ok(matches(buf_cstr(b), "^Date: [A-Z][a-z][a-z], [0-9]+ [A-Z][a-z][a-z] 19[67][09] "
                    "[0-9:]+ [-+][0-9]{4} \\(.*\\)\r\n$"), "Date: in RFC 5322 form"))
        diag("%s", buf_cstr(b));
    buf_reset(b);
    msgheader_put_message_id(b, 0, "mail.example.org");
    if (!ok(matches(buf_cstr(b), "^Message-ID: <[0-9]{14}\\.[0-9a-f]{16}@mail\\.example\\.org>"
                    "\r\n$"), "Message-ID: with the time, 64 random bits and the host"))
        diag("%s", buf_cstr(b));
    buf_free(&b);
}

int main(void)
{
    test_fields();
    test_ends();
    test_nul();
    test_large();
    test_lines();
    test_completion();
    return done_testing();
}
