/*
 * t/fuzz/dmarchist.c - libFuzzer harness for lib/dmarchist.c's reader.
 *
 * The input is a history file (what a sandboxed checkd may have written),
 * read from a memfd by dmarchist_read().  Besides the sanitizers: every
 * row it hands over must keep the rules (dmarchist_row_check) and come
 * back unchanged when written with dmarchist_append() and read again;
 * every warning must start "PATH:LINE: "; no descriptor may leak.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dmarchist.h"
#include "fuzzlib.h"

static int fz_dirfd = -1;

/* The reader's context: the name warnings must start with, and for the
 * second reading the row expected and how many came. */
struct fz_ctx {
    const char *name;
    const struct dmarchist_row *want;
    int n;
};

#define EQ(f) (strcmp(a->f, b->f) == 0)
static int fz_equal(const struct dmarchist_row *a, const struct dmarchist_row *b)
{
    if (!(a->when == b->when && EQ(source_ip) && EQ(header_from) && EQ(envelope_from)
          && EQ(envelope_to) && EQ(policy_domain) && EQ(p) && EQ(sp) && a->pct == b->pct
          && a->adkim == b->adkim && a->aspf == b->aspf && EQ(fo) && EQ(rua)
          && EQ(disposition) && a->dkim_aligned == b->dkim_aligned
          && a->spf_aligned == b->spf_aligned && EQ(reason) && EQ(spf_domain)
          && EQ(spf_scope) && EQ(spf_result) && a->ndkim == b->ndkim))
        return 0;
    for (size_t i = 0; i < a->ndkim; i++)
        if (strcmp(a->dkim[i].domain, b->dkim[i].domain)
            || strcmp(a->dkim[i].selector, b->dkim[i].selector)
            || strcmp(a->dkim[i].result, b->dkim[i].result))
            return 0;
    return 1;
}
#undef EQ

static int fz_again_row(void *ctx, const struct dmarchist_row *row)
{
    struct fz_ctx *g = ctx;

    if (!fz_equal(g->want, row))
        fuzz_fail("a row read, written and read again changed");
    g->n++;
    return 0;
}

static void fz_warn(void *ctx, const char *msg)
{
    char prefix[64];

    snprintf(prefix, sizeof(prefix), "%s:", ((struct fz_ctx *)ctx)->name);
    if (strncmp(msg, prefix, strlen(prefix)) != 0
        || strspn(msg + strlen(prefix), "0123456789") == 0)
        fuzz_fail("warning without PATH:LINE: %s", msg);
}

static int fz_row(void *ctx, const struct dmarchist_row *row)
{
    const char *why = NULL;
    struct fz_ctx g = {"again", row, 0};
    char name[48];
    int fd;

    (void)ctx;
    if (dmarchist_row_check(row, &why) < 0)
        fuzz_fail("a row that breaks the rules was read: %s", why);
    if (row->ndkim > DMARCHIST_MAX_DKIM)
        fuzz_fail("more than %d DKIM results", DMARCHIST_MAX_DKIM);
    if (dmarchist_append(fz_dirfd, row, &why) < 0)
        fuzz_fail("a row read cannot be written: %s", why);
    if (dmarchist_file_name(row->when, name) < 0 || (fd = openat(fz_dirfd, name, O_RDONLY)) < 0)
        fuzz_fail("the written row's file is missing");
    if (dmarchist_read(fd, "again", fz_again_row, fz_warn, &g) != 0 || g.n != 1)
        fuzz_fail("the written row did not read back as one row (%d)", g.n);
    close(fd);
    unlinkat(fz_dirfd, name, 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_ctx in = {"in", NULL, 0};
    int mark, fd;

    if (fz_dirfd < 0 && (fz_dirfd = open(fuzz_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return 0;
    mark = fuzz_fd_mark();
    fd = memfd_create("history", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (size > 0 && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    lseek(fd, 0, SEEK_SET);
    if (dmarchist_read(fd, "in", fz_row, fz_warn, &in) != 0)
        fuzz_fail("the reader failed on a memfd");
    close(fd);
    fuzz_fd_check(mark);
    return 0;
}
