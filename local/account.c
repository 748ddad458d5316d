/*
 * account.c - the local parent's view of the host's accounts: a
 * recipient's passwd entry and groups, remembered for a few seconds.
 *
 * Why: every delivery job needs getpwnam() and getgrouplist(), and with
 * Debian's nsswitch.conf ("passwd: files systemd") each of those reads
 * /etc/passwd or /etc/group and walks systemd's userdb directories: about
 * fifteen file opens per job in the root parent, the most of its CPU when
 * mail for one user comes in bursts.  An entry (found or not) is kept for
 * ACCOUNT_TTL_MS, so an account that is added, removed or changes groups
 * is seen within that long; a lookup that failed (an NSS error, not "no
 * such account") is never kept.  At most ACCOUNT_MAX entries; when full,
 * the expired ones go, and if none has, all of them.
 *
 * Interface: account_lookup(name, &a): 1 with *a (valid until the next
 * call), 0 no such account, -1 the lookup failed (errno).
 *
 * Failure modes: none fatal but out of memory.  A user in more than
 * DELIVER_MAX_GROUPS groups is an account with too_many_groups set (the
 * caller defers its mail).
 */
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/tree.h>
#include <time.h>

#include "local.h"
#include "xalloc.h"

#define ACCOUNT_TTL_MS  10000
#define ACCOUNT_MAX     1024

struct account_entry {
    RB_ENTRY(account_entry) tree;
    char                   *name;       /* as looked up */
    long long               expires;    /* monotonic ms */
    int                     found;
    struct local_account    a;
};

static int account_cmp(const struct account_entry *x, const struct account_entry *y)
{
    return strcmp(x->name, y->name);
}

RB_HEAD(account_tree, account_entry);
RB_PROTOTYPE(account_tree, account_entry, tree, account_cmp)
RB_GENERATE(account_tree, account_entry, tree, account_cmp)

static struct account_tree account_cache = RB_INITIALIZER(&account_cache);
static size_t account_count;

static long long account_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void account_free(struct account_entry *e)
{
    RB_REMOVE(account_tree, &account_cache, e);
    account_count--;
    free(e->name);
    free(e->a.name);
    free(e->a.home);
    free(e->a.groups);
    free(e);
}

/* Room for one more: the expired entries go, or all if none had. */
static void account_make_room(long long now)
{
    struct account_entry *e, *next;
    size_t before = account_count;

    RB_FOREACH_SAFE(e, account_tree, &account_cache, next)
        if (e->expires <= now)
            account_free(e);
    if (account_count == before)
        RB_FOREACH_SAFE(e, account_tree, &account_cache, next)
            account_free(e);
}

int account_lookup(const char *name, const struct local_account **ap)
{
    struct account_entry find = {.name = (char *)name}, *e;
    long long now = account_now();
    struct passwd *pw;

    *ap = NULL;
    if ((e = RB_FIND(account_tree, &account_cache, &find)) != NULL) {
        if (e->expires > now) {
            *ap = e->found ? &e->a : NULL;
            return e->found;
        }
        account_free(e);
    }
    errno = 0;
    if ((pw = getpwnam(name)) == NULL && errno != 0 && errno != ENOENT && errno != ESRCH
        && errno != EBADF && errno != EPERM)
        return -1;
    if (account_count >= ACCOUNT_MAX)
        account_make_room(now);
    e = xcalloc(1, sizeof(*e));
    e->name = xstrdup(name);
    e->expires = now + ACCOUNT_TTL_MS;
    if (pw != NULL) {
        e->found = 1;
        /* getgrouplist() may reuse getpwnam()'s static buffer: copy first. */
        e->a.name = xstrdup(pw->pw_name);
        e->a.home = pw->pw_dir ? xstrdup(pw->pw_dir) : NULL;
        e->a.uid = pw->pw_uid;
        e->a.gid = pw->pw_gid;
        if (deliver_groups(e->a.name, e->a.gid, &e->a.groups, &e->a.ngroups) < 0)
            e->a.too_many_groups = 1;
    }
    RB_INSERT(account_tree, &account_cache, e);
    account_count++;
    *ap = e->found ? &e->a : NULL;
    return e->found;
}
