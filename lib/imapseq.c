/*
 * imapseq - IMAP sequence sets (see imapseq.h).
 */
#include <stdlib.h>
#include <string.h>

#include "imapseq.h"
#include "xalloc.h"

/* A seq-number at *p: 1..4294967295 or "*" (IMAPSEQ_STAR); -1 if none. */
static int imapseq_number(const char **p, uint32_t *v)
{
    uint64_t n = 0;
    const char *s = *p;

    if (*s == '*') {
        *v = IMAPSEQ_STAR;
        *p = s + 1;
        return 0;
    }
    if (*s < '1' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        n = n * 10 + (uint64_t)(*s - '0');
        if (n > UINT32_MAX)
            return -1;
    }
    *v = (uint32_t)n;
    *p = s;
    return 0;
}

int imapseq_parse(const char *text, struct imapseq *set, const char **why)
{
    const char *p = text;
    size_t size = 0;

    memset(set, 0, sizeof(*set));
    if (strcmp(text, "$") == 0) {
        set->saved = true;
        return 0;
    }
    for (;;) {
        struct imapseq_range r;

        if (imapseq_number(&p, &r.lo) < 0) {
            *why = "bad number in a sequence set";
            goto fail;
        }
        r.hi = r.lo;
        if (*p == ':') {
            p++;
            if (imapseq_number(&p, &r.hi) < 0) {
                *why = "bad range in a sequence set";
                goto fail;
            }
        }
        if (set->n == IMAPSEQ_MAX_RANGES) {
            *why = "too many ranges in a sequence set";
            goto fail;
        }
        if (set->n == size) {
            size = size ? size * 2 : 8;
            set->ranges = xreallocarray(set->ranges, size, sizeof(*set->ranges));
        }
        set->ranges[set->n++] = r;
        if (*p == '\0')
            return 0;
        if (*p++ != ',') {
            *why = "bad character in a sequence set";
            goto fail;
        }
    }
fail:
    imapseq_free(set);
    return -1;
}

void imapseq_free(struct imapseq *set)
{
    free(set->ranges);
    memset(set, 0, sizeof(*set));
}

/* A range as written, with "*" as star, low end first. */
static void imapseq_ends(const struct imapseq_range *r, uint32_t star, uint32_t *lo,
                         uint32_t *hi)
{
    uint32_t a = r->lo == IMAPSEQ_STAR ? star : r->lo;
    uint32_t b = r->hi == IMAPSEQ_STAR ? star : r->hi;

    *lo = a < b ? a : b;
    *hi = a < b ? b : a;
}

static int imapseq_cmp(const void *a, const void *b)
{
    const struct imapseq_range *x = a, *y = b;

    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

size_t imapseq_resolve(const struct imapseq *set, uint32_t star, struct imapseq_range **out)
{
    struct imapseq_range *r;
    size_t n = 0;

    *out = NULL;
    if (star == 0 || set->n == 0)
        return 0;
    r = xcalloc(set->n, sizeof(*r));
    for (size_t i = 0; i < set->n; i++) {
        uint32_t lo, hi;

        imapseq_ends(&set->ranges[i], star, &lo, &hi);
        if (lo > star)
            continue;                   /* names nothing that exists */
        if (hi > star)
            hi = star;
        r[n].lo = lo;
        r[n].hi = hi;
        n++;
    }
    if (n > 1)
        qsort(r, n, sizeof(*r), imapseq_cmp);
    if (n > 0) {
        size_t k = 0;

        for (size_t i = 1; i < n; i++) {
            if ((uint64_t)r[i].lo <= (uint64_t)r[k].hi + 1) {
                if (r[i].hi > r[k].hi)
                    r[k].hi = r[i].hi;
            } else {
                r[++k] = r[i];
            }
        }
        n = k + 1;
    }
    if (n == 0) {
        free(r);
        r = NULL;
    }
    *out = r;
    return n;
}

bool imapseq_contains(const struct imapseq *set, uint32_t n, uint32_t star)
{
    for (size_t i = 0; i < set->n; i++) {
        uint32_t lo, hi;

        imapseq_ends(&set->ranges[i], star, &lo, &hi);
        if (n >= lo && n <= hi && n <= star)
            return true;
    }
    return false;
}
