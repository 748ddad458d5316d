/*
 * fuzz/cfgfile - libFuzzer harness for lib/cfgfile.c (cfgfile_read).
 *
 * The input is a configuration file, read through fmemopen().  Besides the
 * sanitizers, every logical line is compared with a small independent model
 * of the line discipline documented in cfgfile.h (comment and blank lines
 * skipped, continuation lines joined with one space and trimmed, the first
 * physical line holding a NUL reported in nul_line, orphans flagged), and
 * the callback sometimes asks to stop early.  A difference aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cfgfile.h"
#define FUZZ_OWN_INIT
#include "fuzzlib.h"

struct model_entry {
    buf_t *text;
    int    line, nul_line, orphan;
};

struct model {
    struct model_entry *v;
    size_t n, cap;
};

static int is_space(unsigned char c)
{
    return c != '\0' && strchr(CFGFILE_SPACE, c) != NULL;
}

/* The documented behaviour, written without getline() or C strings. */
static void model_build(struct model *m, const uint8_t *d, size_t size)
{
    struct model_entry *cur = NULL;
    size_t pos = 0;
    int lineno = 0;

    while (pos < size) {
        size_t end = pos, t, e, k;
        int has_nul = 0;

        while (end < size && d[end] != '\n')
            end++;
        if (end < size)
            end++;                      /* the line includes its LF */
        lineno++;
        for (t = pos; t < end && is_space(d[t]); t++)
            ;
        if (t == end || d[t] == '#') {  /* blank or comment */
            pos = end;
            continue;
        }
        if (t == pos && cur)
            cur = NULL;                 /* a new entry ends the pending one */
        if (cur == NULL) {
            if (m->n == m->cap) {
                m->cap = m->cap ? 2 * m->cap : 16;
                m->v = realloc(m->v, m->cap * sizeof(*m->v));
                if (m->v == NULL)
                    abort();
            }
            cur = &m->v[m->n++];
            cur->text = buf_new(0);
            cur->line = lineno;
            cur->orphan = t != pos;
            cur->nul_line = 0;
        } else {
            buf_putc(cur->text, ' ');
        }
        for (k = pos; k < end; k++)
            if (d[k] == '\0')
                has_nul = 1;
        if (has_nul && !cur->nul_line)
            cur->nul_line = lineno;
        /* The piece: from t to the first NUL, trailing white space trimmed. */
        for (e = t; e < end && d[e] != '\0'; e++)
            ;
        while (e > t && is_space(d[e - 1]))
            e--;
        buf_append(cur->text, d + t, e - t);
        pos = end;
    }
}

static void model_free(struct model *m)
{
    for (size_t i = 0; i < m->n; i++)
        buf_free(&m->v[i].text);
    free(m->v);
    m->v = NULL;
    m->n = m->cap = 0;
}

struct run {
    struct model *m;
    size_t seen;
    size_t stop_after;      /* 0 = never stop */
};

static int check_entry(const struct cfgfile_entry *e, void *ctx)
{
    struct run *r = ctx;
    const struct model_entry *want;

    if (r->seen >= r->m->n)
        fuzz_fail("entry %zu (line %d, '%s') beyond the model's %zu entries",
                  r->seen + 1, e->line, e->text, r->m->n);
    want = &r->m->v[r->seen];
    if (e->line != want->line || e->nul_line != want->nul_line
        || e->orphan != want->orphan)
        fuzz_fail("entry %zu: line %d nul_line %d orphan %d, model says %d %d %d",
                  r->seen + 1, e->line, e->nul_line, e->orphan,
                  want->line, want->nul_line, want->orphan);
    /* The text after a NUL is unspecified (the entry is an error anyway). */
    if (!e->nul_line && strcmp(e->text, buf_cstr(want->text)) != 0)
        fuzz_fail("entry %zu (line %d): text '%s', model says '%s'",
                  r->seen + 1, e->line, e->text, buf_cstr(want->text));
    if (!e->nul_line && e->text[0] == '\0')
        fuzz_fail("entry %zu (line %d): empty text", r->seen + 1, e->line);
    /* fn may modify the text: make sure that is harmless. */
    if (e->text[0])
        e->text[0] = 'X';
    r->seen++;
    return r->stop_after && r->seen == r->stop_after;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    msg_init("fuzz", 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct model m = {0};
    struct run r = {.m = &m};
    FILE *fp;
    int rc;

    if (size == 0)
        return 0;                       /* fmemopen() refuses size 0 */
    model_build(&m, data, size);
    /* Stop early on some inputs, chosen by the input itself. */
    r.stop_after = m.n > 1 && (data[0] & 1) ? m.n - 1 : 0;
    if ((fp = fmemopen((void *)data, size, "r")) == NULL)
        fuzz_fail("fmemopen: %s", strerror(errno));
    rc = cfgfile_read(fp, check_entry, &r);
    fclose(fp);
    if (rc != 0)
        fuzz_fail("cfgfile_read returned %d on a memory stream", rc);
    if (r.seen != (r.stop_after ? r.stop_after : m.n))
        fuzz_fail("%zu entries, model says %zu (stop after %zu)",
                  r.seen, m.n, r.stop_after);
    model_free(&m);
    return 0;
}
