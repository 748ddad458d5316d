/*
 * t/unit/expcache.c - unit tests for lib/expcache.c.
 *
 * Covers: a value is found before its deadline and not at or after it (the
 * expired entry goes, its value freed); put replaces an entry of the same
 * key (the old value freed); a full cache drops its expired entries first,
 * and all of them when none has expired; free frees every value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expcache.h"
#include "xalloc.h"
#include "../lib/tap.h"

static int freed;

static void count_free(void *v)
{
    freed++;
    free(v);
}

static char *val(const char *s)
{
    return xstrdup(s);
}

int main(void)
{
    expcache_t *c = expcache_new(3, count_free);
    char *v;

    expcache_put(c, "a", val("A"), 100, 0);
    v = expcache_get(c, "a", 99);
    ok(v && strcmp(v, "A") == 0, "found before the deadline");
    ok(expcache_get(c, "b", 0) == NULL, "an unknown key is not found");
    ok(expcache_get(c, "a", 100) == NULL && freed == 1 && expcache_count(c) == 0,
       "at the deadline: gone, its value freed");

    expcache_put(c, "d", val("D"), 100, 0);
    ok(expcache_del(c, "d") == 1 && freed == 2 && expcache_count(c) == 0
       && expcache_get(c, "d", 0) == NULL, "del removes an entry and frees its value");
    ok(expcache_del(c, "d") == 0 && freed == 2, "del of a missing key: 0, nothing freed");
    freed = 1;

    expcache_put(c, "a", val("A1"), 100, 0);
    expcache_put(c, "a", val("A2"), 200, 0);
    v = expcache_get(c, "a", 150);
    ok(v && strcmp(v, "A2") == 0 && freed == 2 && expcache_count(c) == 1,
       "put replaces the entry of the same key and frees the old value");

    expcache_put(c, "b", val("B"), 50, 0);
    expcache_put(c, "c", val("C"), 300, 0);
    freed = 0;
    expcache_put(c, "d", val("D"), 300, 60);    /* full; b has expired at 60 */
    ok(expcache_count(c) == 3 && freed == 1 && expcache_get(c, "b", 60) == NULL
       && expcache_get(c, "a", 60) && expcache_get(c, "c", 60) && expcache_get(c, "d", 60),
       "full: the expired entry goes, the live ones stay");
    freed = 0;
    expcache_put(c, "e", val("E"), 300, 60);    /* full, none expired */
    ok(expcache_count(c) == 1 && freed == 3 && expcache_get(c, "e", 60)
       && !expcache_get(c, "a", 60), "full of live entries: all go, the new one stays");

    freed = 0;
    expcache_free(&c);
    ok(c == NULL && freed == 1, "free frees every value");

    c = expcache_new(0, NULL);
    expcache_put(c, "x", "static", 10, 0);
    expcache_put(c, "y", "static", 10, 0);
    ok(expcache_count(c) == 1 && expcache_get(c, "y", 0) && !expcache_get(c, "x", 0),
       "max 0 means 1; values that need no freeing");
    expcache_free(&c);
    return done_testing();
}
