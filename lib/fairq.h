/*
 * fairq - work queued per key and handed out fairly: at most a fixed
 * number of a key's items are out (being worked on) at once, and the keys
 * that have an item that may go wait in a round-robin line, so taking the
 * next item never walks items that cannot go.  qmgr queues its deliveries
 * per recipient with it, local its delivery processes per recipient and
 * account: one destination with slow work cannot take every slot.
 *
 * An item is a struct fairq_item embedded in the caller's own struct
 * (fairq_entry() gets that back).  A key's bookkeeping lives while it has
 * items waiting or out.
 *
 * Interface:
 *   fairq_new(limit)            a queue; at most limit items of a key out
 *   fairq_free(&q)              the queue, which must be empty
 *   fairq_add(q, key, item)     item waits for key (copied), at the tail
 *   fairq_set_limit(q, key, n)  this key's own limit (n >= 1) while it
 *                               has items; a key without one has the
 *                               queue's (qmgr's per-destination windows)
 *   fairq_take(q)               the next item that may go, now out; NULL
 *                               if none may
 *   fairq_done(q, item)         an item that was out is over
 *   fairq_requeue(q, item)      an item that was out waits again, first
 *   fairq_remove(q, item)       a waiting item leaves without going out
 *   fairq_next_waiting(item)    the first item waiting under item's key
 *                               (item waiting or out), or NULL: local
 *                               takes several with fairq_remove into one
 *                               slot
 *   fairq_any_waiting(q)        some waiting item (to drain), or NULL
 *   fairq_drop(q, match, dropped, ctx)
 *                               every waiting item for which match()
 *                               says yes leaves the queue and is handed
 *                               to dropped(); returns how many
 *   fairq_key(item), fairq_nwaiting(q), fairq_nout(q)
 *   fairq_has_key(q, key)       1 while key has items waiting or out
 *
 * Failure modes: none but out of memory (fatal); using an item in the
 * wrong state (taking back one that is not out, ...) is a panic.
 */
#ifndef POSTHORN_FAIRQ_H
#define POSTHORN_FAIRQ_H

#include <stddef.h>
#include <sys/queue.h>

struct fairq_key;

struct fairq_item {
    TAILQ_ENTRY(fairq_item) link;   /* in its key's waiting list */
    struct fairq_key       *key;    /* NULL when in no queue */
    int                     out;
};

typedef struct fairq fairq_t;

#define fairq_entry(item, type, member) \
    ((type *)(void *)((char *)(item) - offsetof(type, member)))

fairq_t *fairq_new(int limit);
void     fairq_free(fairq_t **qp);
void     fairq_add(fairq_t *q, const char *key, struct fairq_item *item);
void     fairq_set_limit(fairq_t *q, const char *key, int limit);
int      fairq_has_key(fairq_t *q, const char *key);
struct fairq_item *fairq_take(fairq_t *q);
void     fairq_done(fairq_t *q, struct fairq_item *item);
void     fairq_requeue(fairq_t *q, struct fairq_item *item);
void     fairq_remove(fairq_t *q, struct fairq_item *item);
struct fairq_item *fairq_next_waiting(const struct fairq_item *item);
struct fairq_item *fairq_any_waiting(fairq_t *q);
size_t   fairq_drop(fairq_t *q, int (*match)(struct fairq_item *, void *),
                    void (*dropped)(struct fairq_item *, void *), void *ctx);
const char *fairq_key(const struct fairq_item *item);
size_t   fairq_nwaiting(const fairq_t *q);
size_t   fairq_nout(const fairq_t *q);

#endif
