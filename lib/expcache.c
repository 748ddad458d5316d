/*
 * expcache - a bounded cache of values under string keys with deadlines
 * (see expcache.h): a red-black tree (sys/tree.h) by key.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/tree.h>

#include "expcache.h"
#include "xalloc.h"

struct expcache_entry {
    RB_ENTRY(expcache_entry) tree;
    char                    *key;
    void                    *value;
    long long                expires;
};

static int expcache_cmp(const struct expcache_entry *x, const struct expcache_entry *y)
{
    return strcmp(x->key, y->key);
}

RB_HEAD(expcache_tree, expcache_entry);
RB_PROTOTYPE(expcache_tree, expcache_entry, tree, expcache_cmp)
RB_GENERATE(expcache_tree, expcache_entry, tree, expcache_cmp)

struct expcache {
    struct expcache_tree tree;
    size_t               count, max;
    void               (*free_value)(void *);
};

expcache_t *expcache_new(size_t max, void (*free_value)(void *))
{
    expcache_t *c = xcalloc(1, sizeof(*c));

    RB_INIT(&c->tree);
    c->max = max > 0 ? max : 1;
    c->free_value = free_value;
    return c;
}

static void expcache_drop(expcache_t *c, struct expcache_entry *e)
{
    RB_REMOVE(expcache_tree, &c->tree, e);
    c->count--;
    if (c->free_value)
        c->free_value(e->value);
    free(e->key);
    free(e);
}

void expcache_free(expcache_t **cp)
{
    expcache_t *c = *cp;
    struct expcache_entry *e, *next;

    if (c == NULL)
        return;
    RB_FOREACH_SAFE(e, expcache_tree, &c->tree, next)
        expcache_drop(c, e);
    free(c);
    *cp = NULL;
}

void *expcache_get(expcache_t *c, const char *key, long long now)
{
    struct expcache_entry find = {.key = (char *)key}, *e;

    if ((e = RB_FIND(expcache_tree, &c->tree, &find)) == NULL)
        return NULL;
    if (e->expires > now)
        return e->value;
    expcache_drop(c, e);
    return NULL;
}

int expcache_del(expcache_t *c, const char *key)
{
    struct expcache_entry find = {.key = (char *)key}, *e;

    if ((e = RB_FIND(expcache_tree, &c->tree, &find)) == NULL)
        return 0;
    expcache_drop(c, e);
    return 1;
}

void expcache_put(expcache_t *c, const char *key, void *value, long long expires, long long now)
{
    struct expcache_entry find = {.key = (char *)key}, *e, *next;

    if ((e = RB_FIND(expcache_tree, &c->tree, &find)) != NULL)
        expcache_drop(c, e);
    if (c->count >= c->max) {
        size_t before = c->count;

        RB_FOREACH_SAFE(e, expcache_tree, &c->tree, next)
            if (e->expires <= now)
                expcache_drop(c, e);
        if (c->count == before)
            RB_FOREACH_SAFE(e, expcache_tree, &c->tree, next)
                expcache_drop(c, e);
    }
    e = xcalloc(1, sizeof(*e));
    e->key = xstrdup(key);
    e->value = value;
    e->expires = expires;
    RB_INSERT(expcache_tree, &c->tree, e);
    c->count++;
}

size_t expcache_count(const expcache_t *c)
{
    return c->count;
}
