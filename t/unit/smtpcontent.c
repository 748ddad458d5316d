/*
 * t/unit/smtpcontent.c - unit tests for lib/smtpcontent.c (a received
 * message's content in a memfd).
 *
 * Covers: the DATA sink storing more than one 64 KiB batch byte for byte;
 * BDAT content split at every boundary (also between CR and LF) accepted
 * unchanged; CRLF appended to content that lacks it; empty content; each
 * bare CR / bare LF case refused 550 5.6.0 (also across chunks and at the
 * very end); the size limit (552 5.3.4, exact fit allowed) and the line
 * limit (550 5.6.0, exact fit allowed); smtpcontent_failed and _size.
 * t/fuzz/smtpcontent.c checks the same rules against a model at random.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "msg.h"
#include "smtpcontent.h"
#include "../lib/tap.h"

/* Finish c; 0 and the content in *out (malloc'd, NUL-terminated), or the
 * reply code. */
static int finish(smtpcontent_t *c, char **out, size_t *len)
{
    struct smtpreply_err err;
    uint64_t n;
    int fd;

    *out = NULL;
    if (smtpcontent_finish(c, &fd, &n, &err) < 0)
        return err.code;
    *out = calloc(1, n + 1);
    if (pread(fd, *out, n, 0) != (ssize_t)n)
        diag("short pread");
    close(fd);
    *len = n;
    return 0;
}

static void test_sink(void)
{
    smtpcontent_t *c = smtpcontent_new(0, 0);
    size_t total = 0, len = 0;
    char line[1000], *out, *want = malloc(200 * 1000 + 1);

    for (int i = 0; i < 200; i++) {
        memset(line, 'a' + i % 26, sizeof(line) - 2);
        memcpy(line + sizeof(line) - 2, "\r\n", 2);
        if (smtpcontent_sink(c, line, sizeof(line)) != 0)
            diag("sink failed at line %d", i);
        memcpy(want + total, line, sizeof(line));
        total += sizeof(line);
    }
    is_int(smtpcontent_size(c), total, "size counts what was stored");
    is_int(finish(c, &out, &len), 0, "DATA content over several batches is accepted");
    is_int(len, total, "its length");
    ok(out && memcmp(out, want, total) == 0, "byte for byte");
    free(out);
    free(want);
    smtpcontent_free(&c);
    ok(c == NULL, "free clears the pointer");
}

static void test_bdat_splits(void)
{
    const char *msg = "Subject: x\r\n\r\nline one\r\n.dot\r\nend\r\n";
    size_t n = strlen(msg), len = 0;
    int all_ok = 1;

    for (size_t cut = 0; cut <= n; cut++) {
        smtpcontent_t *c = smtpcontent_new(0, 0);
        char *out;

        smtpcontent_bdat(c, msg, cut);
        smtpcontent_bdat(c, msg + cut, n - cut);
        if (finish(c, &out, &len) != 0 || len != n || memcmp(out, msg, n) != 0)
            all_ok = 0;
        free(out);
        smtpcontent_free(&c);
    }
    ok(all_ok, "CRLF content split at every boundary is stored unchanged");
}

static int bdat_verdict(const char *a, const char *b, uint64_t size_limit, size_t line_max)
{
    smtpcontent_t *c = smtpcontent_new(size_limit, line_max);
    size_t len;
    char *out;
    int rc;

    smtpcontent_bdat(c, a, strlen(a));
    if (b)
        smtpcontent_bdat(c, b, strlen(b));
    rc = finish(c, &out, &len);
    free(out);
    smtpcontent_free(&c);
    return rc;
}

static void test_bdat_rules(void)
{
    smtpcontent_t *c;
    size_t len;
    char *out;

    is_int(bdat_verdict("a\nb\r\n", NULL, 0, 0), 550, "bare LF: 550");
    is_int(bdat_verdict("a\rb\r\n", NULL, 0, 0), 550, "bare CR: 550");
    is_int(bdat_verdict("a\r\r\n", NULL, 0, 0), 550, "CR CR LF: 550");
    is_int(bdat_verdict("a\r\nb\r", NULL, 0, 0), 550, "a CR at the very end: 550");
    is_int(bdat_verdict("\n", NULL, 0, 0), 550, "an LF first: 550");
    is_int(bdat_verdict("abc", "\nxyz\r\n", 0, 0), 550, "an LF starting a chunk after a non-CR: 550");
    is_int(bdat_verdict("abc\r", "x\r\n", 0, 0), 550, "a CR ending a chunk, no LF after: 550");
    is_int(bdat_verdict("abc\r", "\nx\r\n", 0, 0), 0, "CR and LF in two chunks are fine");
    is_int(bdat_verdict("0123456\r\n", NULL, 9, 0), 0, "exactly the size limit: accepted");
    is_int(bdat_verdict("01234567\r\n", NULL, 9, 0), 552, "one byte over: 552");
    is_int(bdat_verdict("0123456\r\n", NULL, 0, 9), 0, "a line of exactly line_max: accepted");
    is_int(bdat_verdict("01234567\r\n", NULL, 0, 9), 550, "one byte longer: 550");
    is_int(bdat_verdict("0123456789", NULL, 0, 9), 550, "also without a line end");
    is_int(bdat_verdict("0123\nx", NULL, 3, 0), 550, "bare LF wins over size (the DATA order)");

    c = smtpcontent_new(0, 0);
    smtpcontent_bdat(c, "no line end", 11);
    ok(!smtpcontent_failed(c), "not failed yet");
    is_int(finish(c, &out, &len), 0, "content without a final CRLF is accepted");
    is_str(out, "no line end\r\n", "and gets one");
    free(out);
    smtpcontent_free(&c);

    c = smtpcontent_new(0, 0);
    is_int(finish(c, &out, &len), 0, "empty content is accepted");
    is_int(len, 0, "with length 0");
    free(out);
    smtpcontent_free(&c);

    c = smtpcontent_new(0, 0);
    smtpcontent_bdat(c, "x\ny", 3);
    ok(smtpcontent_failed(c), "smtpcontent_failed after a bare LF");
    smtpcontent_free(&c);
}

int main(void)
{
    alarm(60);
    msg_init("smtpcontent-test", MSG_STDERR);
    test_sink();
    test_bdat_splits();
    test_bdat_rules();
    return done_testing();
}
