/*
 * fairq - work queued per key, handed out in turn under a per-key limit
 * (see fairq.h).
 *
 * Keys sit in a red-black tree by name; a key is on the ready line while
 * it has waiting items and fewer than limit out.  Taking an item moves
 * its key to the back of the line (round robin).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/tree.h>

#include "fairq.h"
#include "msg.h"
#include "xalloc.h"

TAILQ_HEAD(fairq_item_list, fairq_item);

struct fairq_key {
    char                   *name;
    int                     out;
    int                     limit;      /* 0: the queue's */
    struct fairq_item_list  waiting;
    int                     ready;
    TAILQ_ENTRY(fairq_key)  ready_link;
    RB_ENTRY(fairq_key)     tree;
};

static int fairq_key_cmp(const struct fairq_key *a, const struct fairq_key *b)
{
    return strcmp(a->name, b->name);
}
RB_HEAD(fairq_tree, fairq_key);
RB_PROTOTYPE(fairq_tree, fairq_key, tree, fairq_key_cmp)
RB_GENERATE(fairq_tree, fairq_key, tree, fairq_key_cmp)

struct fairq {
    int                        limit;
    struct fairq_tree          keys;
    TAILQ_HEAD(, fairq_key)    ready;
    size_t                     nwaiting;
    size_t                     nout;
};

fairq_t *fairq_new(int limit)
{
    fairq_t *q = xcalloc(1, sizeof(*q));

    if (limit < 1)
        msg_panic("fairq_new: limit %d", limit);
    q->limit = limit;
    RB_INIT(&q->keys);
    TAILQ_INIT(&q->ready);
    return q;
}

void fairq_free(fairq_t **qp)
{
    fairq_t *q = *qp;

    if (q == NULL)
        return;
    if (!RB_EMPTY(&q->keys))
        msg_panic("fairq_free: the queue is not empty");
    free(q);
    *qp = NULL;
}

/* Put k on the ready line (at the back) or take it off as its state says;
 * free it when nothing is left for it. */
static void fairq_key_update(fairq_t *q, struct fairq_key *k)
{
    int ready = !TAILQ_EMPTY(&k->waiting) && k->out < (k->limit ? k->limit : q->limit);

    if (k->ready && !ready) {
        TAILQ_REMOVE(&q->ready, k, ready_link);
        k->ready = 0;
    } else if (!k->ready && ready) {
        TAILQ_INSERT_TAIL(&q->ready, k, ready_link);
        k->ready = 1;
    }
    if (k->out == 0 && TAILQ_EMPTY(&k->waiting)) {
        RB_REMOVE(fairq_tree, &q->keys, k);
        free(k->name);
        free(k);
    }
}

void fairq_add(fairq_t *q, const char *key, struct fairq_item *item)
{
    struct fairq_key find, *k;

    if (item->key != NULL)
        msg_panic("fairq_add: the item is queued already");
    find.name = (char *)key;
    if ((k = RB_FIND(fairq_tree, &q->keys, &find)) == NULL) {
        k = xcalloc(1, sizeof(*k));
        k->name = xstrdup(key);
        TAILQ_INIT(&k->waiting);
        RB_INSERT(fairq_tree, &q->keys, k);
    }
    item->key = k;
    item->out = 0;
    TAILQ_INSERT_TAIL(&k->waiting, item, link);
    q->nwaiting++;
    fairq_key_update(q, k);
}

void fairq_set_limit(fairq_t *q, const char *key, int limit)
{
    struct fairq_key find, *k;

    if (limit < 1)
        msg_panic("fairq_set_limit: limit %d", limit);
    find.name = (char *)key;
    if ((k = RB_FIND(fairq_tree, &q->keys, &find)) == NULL)
        return;
    k->limit = limit;
    fairq_key_update(q, k);
}

int fairq_has_key(fairq_t *q, const char *key)
{
    struct fairq_key find;

    find.name = (char *)key;
    return RB_FIND(fairq_tree, &q->keys, &find) != NULL;
}

struct fairq_item *fairq_take(fairq_t *q)
{
    struct fairq_key *k = TAILQ_FIRST(&q->ready);
    struct fairq_item *item;

    if (k == NULL)
        return NULL;
    item = TAILQ_FIRST(&k->waiting);
    TAILQ_REMOVE(&k->waiting, item, link);
    q->nwaiting--;
    item->out = 1;
    k->out++;
    q->nout++;
    /* Round robin: to the back of the line, if it may send more. */
    TAILQ_REMOVE(&q->ready, k, ready_link);
    k->ready = 0;
    fairq_key_update(q, k);
    return item;
}

void fairq_done(fairq_t *q, struct fairq_item *item)
{
    struct fairq_key *k = item->key;

    if (k == NULL || !item->out)
        msg_panic("fairq_done: the item is not out");
    item->out = 0;
    item->key = NULL;
    k->out--;
    q->nout--;
    fairq_key_update(q, k);
}

void fairq_requeue(fairq_t *q, struct fairq_item *item)
{
    struct fairq_key *k = item->key;

    if (k == NULL || !item->out)
        msg_panic("fairq_requeue: the item is not out");
    item->out = 0;
    k->out--;
    q->nout--;
    TAILQ_INSERT_HEAD(&k->waiting, item, link);
    q->nwaiting++;
    fairq_key_update(q, k);
}

void fairq_remove(fairq_t *q, struct fairq_item *item)
{
    struct fairq_key *k = item->key;

    if (k == NULL || item->out)
        msg_panic("fairq_remove: the item is not waiting");
    TAILQ_REMOVE(&k->waiting, item, link);
    item->key = NULL;
    q->nwaiting--;
    fairq_key_update(q, k);
}

struct fairq_item *fairq_next_waiting(const struct fairq_item *item)
{
    if (item->key == NULL)
        msg_panic("fairq_next_waiting: the item is in no queue");
    return TAILQ_FIRST(&item->key->waiting);
}

struct fairq_item *fairq_any_waiting(fairq_t *q)
{
    struct fairq_key *k;

    if (q->nwaiting == 0)
        return NULL;
    RB_FOREACH(k, fairq_tree, &q->keys)
        if (!TAILQ_EMPTY(&k->waiting))
            return TAILQ_FIRST(&k->waiting);
    msg_panic("fairq_any_waiting: %zu waiting, none found", q->nwaiting);
}

size_t fairq_drop(fairq_t *q, int (*match)(struct fairq_item *, void *),
                  void (*dropped)(struct fairq_item *, void *), void *ctx)
{
    struct fairq_item_list gone = TAILQ_HEAD_INITIALIZER(gone);
    struct fairq_key *k, *knext;
    struct fairq_item *item, *next;
    size_t n = 0;

    /* Unlink first, hand over after: dropped() may queue new work. */
    RB_FOREACH_SAFE(k, fairq_tree, &q->keys, knext) {
        int hit = 0;

        TAILQ_FOREACH_SAFE(item, &k->waiting, link, next) {
            if (match(item, ctx)) {
                TAILQ_REMOVE(&k->waiting, item, link);
                TAILQ_INSERT_TAIL(&gone, item, link);
                item->key = NULL;
                q->nwaiting--;
                hit = 1;
            }
        }
        if (hit)
            fairq_key_update(q, k);
    }
    while ((item = TAILQ_FIRST(&gone)) != NULL) {
        TAILQ_REMOVE(&gone, item, link);
        dropped(item, ctx);
        n++;
    }
    return n;
}

const char *fairq_key(const struct fairq_item *item)
{
    return item->key ? item->key->name : NULL;
}

size_t fairq_nwaiting(const fairq_t *q)
{
    return q->nwaiting;
}

size_t fairq_nout(const fairq_t *q)
{
    return q->nout;
}
