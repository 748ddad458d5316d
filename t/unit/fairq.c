/*
 * t/unit/fairq.c - unit tests for lib/fairq.c.
 *
 * Covers: at most limit items of a key out at once; keys served in turn
 * (round robin) in arrival order within a key; done lets the next item of
 * that key go; requeue puts an item back first; remove and drop take
 * waiting items out (drop hands them over after unlinking); counts; a key
 * disappears when it has nothing left (fairq_free of the empty queue).
 */
#include <stdlib.h>
#include <string.h>

#include "fairq.h"
#include "xalloc.h"
#include "../lib/tap.h"

struct job {
    int               id;
    struct fairq_item fq;
};

static struct job jobs[10];

static int take(fairq_t *q)
{
    struct fairq_item *it = fairq_take(q);

    return it ? fairq_entry(it, struct job, fq)->id : -1;
}

static int odd(struct fairq_item *it, void *ctx)
{
    (void)ctx;
    return fairq_entry(it, struct job, fq)->id % 2 == 1;
}

static void count(struct fairq_item *it, void *ctx)
{
    (void)it;
    (*(int *)ctx)++;
}

int main(void)
{
    fairq_t *q = fairq_new(2);
    int a, b, c, d, n = 0;

    for (int i = 0; i < 10; i++)
        jobs[i].id = i;
    /* Key "a" gets 0-4, key "b" 5-6, key "c" 7. */
    for (int i = 0; i < 8; i++)
        fairq_add(q, i < 5 ? "a" : i < 7 ? "b" : "c", &jobs[i].fq);
    is_int((int)fairq_nwaiting(q), 8, "eight waiting");
    a = take(q);
    b = take(q);
    c = take(q);
    d = take(q);
    ok(a == 0 && b == 5 && c == 7 && d == 1, "keys served in turn, items in order (%d %d %d %d)",
       a, b, c, d);
    is_int(take(q), 6, "b's second");
    is_int(take(q), -1, "then nothing: a and b are at their limit, c is empty");
    is_int((int)fairq_nout(q), 5, "five out");
    is_str(fairq_key(&jobs[0].fq), "a", "an item knows its key");
    fairq_done(q, &jobs[0].fq);
    is_int(take(q), 2, "a job of a done: a's next goes");
    fairq_requeue(q, &jobs[2].fq);
    is_int(take(q), 2, "a requeued item goes first again");
    fairq_remove(q, &jobs[3].fq);
    is_int((int)fairq_nwaiting(q), 1, "remove takes a waiting item out");
    fairq_add(q, "d", &jobs[8].fq);
    fairq_add(q, "d", &jobs[9].fq);
    is_int((int)fairq_drop(q, odd, count, &n), 1, "drop takes the matching waiting items");
    is_int(n, 1, "and hands them over");
    ok(fairq_any_waiting(q) != NULL, "something still waits");
    while (fairq_any_waiting(q))
        fairq_remove(q, fairq_any_waiting(q));
    is_int((int)fairq_nwaiting(q), 0, "drained");
    fairq_done(q, &jobs[1].fq);
    fairq_done(q, &jobs[2].fq);
    fairq_done(q, &jobs[5].fq);
    fairq_done(q, &jobs[6].fq);
    fairq_done(q, &jobs[7].fq);
    is_int((int)fairq_nout(q), 0, "all done");
    fairq_free(&q);
    ok(q == NULL, "an empty queue frees (every key went with its last item)");

    /* A key's own limit (qmgr's destination windows). */
    q = fairq_new(1);
    for (int i = 0; i < 4; i++)
        fairq_add(q, "w", &jobs[i].fq);
    fairq_set_limit(q, "w", 3);
    fairq_set_limit(q, "nosuchkey", 5);
    is_int(take(q), 0, "a key with its own limit 3: first");
    is_int(take(q), 1, "second");
    is_int(take(q), 2, "third");
    is_int(take(q), -1, "not a fourth");
    fairq_set_limit(q, "w", 4);
    is_int(take(q), 3, "a raised limit lets the fourth go");
    fairq_set_limit(q, "w", 1);
    fairq_done(q, &jobs[0].fq);
    fairq_add(q, "w", &jobs[4].fq);
    is_int(take(q), -1, "a lowered limit holds the rest while more are out");
    for (int i = 1; i < 4; i++)
        fairq_done(q, &jobs[i].fq);
    is_int(take(q), 4, "until they are done");
    fairq_done(q, &jobs[4].fq);
    fairq_add(q, "w", &jobs[5].fq);
    fairq_add(q, "w", &jobs[6].fq);
    is_int(take(q), 5, "a key that went away and came back has the queue's limit again");
    is_int(take(q), -1, "(1)");
    fairq_done(q, &jobs[5].fq);
    is_int(take(q), 6, "and its next item goes when that one is done");
    ok(fairq_has_key(q, "w") && !fairq_has_key(q, "x"), "has_key: a key with an item out");
    fairq_done(q, &jobs[6].fq);
    ok(!fairq_has_key(q, "w"), "has_key: not once its last item is done");
    fairq_free(&q);
    return done_testing();
}
