/*
 * Unit tests for lib/cfgfile: logical lines, continuation, comments inside
 * a continued entry, trimming, NUL bytes, orphans, stopping early.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cfgfile.h"
#include "tap.h"

struct seen {
    buf_t *log;
    int    stop_after;
    int    count;
};

static int collect(const struct cfgfile_entry *e, void *ctx)
{
    struct seen *s = ctx;

    buf_printf(s->log, "%d%s%s:[%s]\n", e->line, e->orphan ? " orphan" : "",
               e->nul_line ? " nul" : "", e->text);
    return ++s->count == s->stop_after;
}

static const char *run(const char *text, size_t len, int stop_after, int *rc)
{
    static struct seen s;
    FILE *fp = fmemopen((void *)text, len, "r");

    if (s.log == NULL)
        s.log = buf_new(0);
    buf_reset(s.log);
    s.count = 0;
    s.stop_after = stop_after;
    *rc = cfgfile_read(fp, collect, &s);
    fclose(fp);
    return buf_cstr(s.log);
}

#define RUN(text, stop, rc) run(text, sizeof(text) - 1, stop, rc)

int main(void)
{
    int rc;

    is_str(RUN("a = 1\nb = 2\n", 0, &rc), "1:[a = 1]\n2:[b = 2]\n", "one entry a line");
    is_int(rc, 0, "read succeeds");
    is_str(RUN("a = 1\n  x  \n\ty\nb\n", 0, &rc), "1:[a = 1 x y]\n4:[b]\n",
           "continuation lines joined with one space, trimmed");
    is_str(RUN("a =\n# comment\n\n  more\n", 0, &rc), "1:[a = more]\n",
           "comment and blank lines inside an entry do not end it");
    is_str(RUN("  # indented comment\n#x\n\n", 0, &rc), "", "only comments: no entry");
    is_str(RUN("  orphan\n  too\nnext\n", 0, &rc), "1 orphan:[orphan too]\n3:[next]\n",
           "a continuation with nothing before it is an orphan entry");
    is_str(RUN("a\nb\0c\n  d\n", 0, &rc), "1:[a]\n2 nul:[b d]\n", "a NUL byte marks the entry");
    is_str(RUN("a = 1\r\nb = 2   \r\n", 0, &rc), "1:[a = 1]\n2:[b = 2]\n", "CRLF and trailing blanks trimmed");
    is_str(RUN("last without newline", 0, &rc), "1:[last without newline]\n", "a last line without LF");
    is_str(RUN("a\nb\nc\n", 2, &rc), "1:[a]\n2:[b]\n", "fn can stop the reading");
    is_int(rc, 0, "stopping is not an error");
    /* Found by t/fuzz/cfgfile: a line whose first non-blank byte is a NUL
     * used to count as blank and vanish without a report. */
    is_str(RUN("a = 1\n\0x = 2\nb = 3\n", 0, &rc), "1:[a = 1]\n2 nul:[]\n3:[b = 3]\n",
           "a line starting with a NUL is an entry with nul_line, not a blank line");
    is_str(RUN("a = 1\n  \0x\nb = 3\n", 0, &rc), "1 nul:[a = 1 ]\n3:[b = 3]\n",
           "a continuation line starting with a NUL marks its entry");
    is_str(RUN("\0\n  more\n", 0, &rc), "1 nul:[ more]\n",
           "an entry whose first piece is empty still collects its continuation");
    return done_testing();
}
