/*
 * cfgfile - read Postfix-style configuration text as logical lines
 * (see cfgfile.h).
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cfgfile.h"

static int cfgfile_emit(cfgfile_fn fn, void *ctx, buf_t *entry, struct cfgfile_entry *e)
{
    int stop;

    e->text = entry->data;
    stop = fn(e, ctx);
    buf_reset(entry);
    return stop;
}

int cfgfile_read(FILE *fp, cfgfile_fn fn, void *ctx)
{
    struct cfgfile_entry e = {0};
    buf_t *entry = buf_new(0);
    char *line = NULL;
    size_t cap = 0, len;
    ssize_t n;
    int lineno = 0, stop = 0, rc = 0, pending = 0;

    while (!stop && (n = getline(&line, &cap, fp)) >= 0) {
        size_t lead = strspn(line, CFGFILE_SPACE);
        const char *t = line + lead;

        lineno++;
        /* Blank means white space to the end: a NUL is not blank. */
        if (lead == (size_t)n || *t == '#')
            continue;
        /* An entry may have empty text (a line that starts with a NUL):
         * whether one is open is kept apart from its length. */
        if (t == line && pending) {
            pending = 0;
            if ((stop = cfgfile_emit(fn, ctx, entry, &e)) != 0)
                break;
        }
        if (!pending) {
            pending = 1;
            e.line = lineno;
            e.orphan = t != line;
            e.nul_line = 0;
        } else {
            buf_putc(entry, ' ');
        }
        if (!e.nul_line && memchr(line, '\0', (size_t)n))
            e.nul_line = lineno;
        for (len = strlen(t); len > 0 && strchr(CFGFILE_SPACE, t[len - 1]); len--)
            ;
        buf_append(entry, t, len);
    }
    if (!stop && ferror(fp))
        rc = -1;
    else if (!stop && pending)
        cfgfile_emit(fn, ctx, entry, &e);
    free(line);
    buf_free(&entry);
    return rc;
}
