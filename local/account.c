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
 * such account") is never kept.  At most ACCOUNT_MAX entries
 * (lib/expcache).
 *
 * Interface: account_lookup(name, &a): 1 with *a (valid until the next
 * call), 0 no such account, -1 the lookup failed (errno).
 *
 * Failure modes: none fatal but out of memory.  A user in more than
 * PRIVS_MAX_GROUPS groups is an account with too_many_groups set (the
 * caller defers its mail).
 */
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "expcache.h"
#include "local.h"
#include "privs.h"
#include "xalloc.h"

#define ACCOUNT_TTL_MS  10000
#define ACCOUNT_MAX     1024

/* One cached answer: the account, or found = 0 for "no such account". */
struct account_entry {
    int                  found;
    struct local_account a;
};

static expcache_t *account_cache;

static long long account_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void account_entry_free(void *v)
{
    struct account_entry *e = v;

    free(e->a.name);
    free(e->a.home);
    free(e->a.groups);
    free(e);
}

int account_lookup(const char *name, const struct local_account **ap)
{
    long long now = account_now();
    struct account_entry *e;
    struct passwd *pw;

    *ap = NULL;
    if (account_cache == NULL)
        account_cache = expcache_new(ACCOUNT_MAX, account_entry_free);
    if ((e = expcache_get(account_cache, name, now)) != NULL) {
        *ap = e->found ? &e->a : NULL;
        return e->found;
    }
    errno = 0;
    if ((pw = getpwnam(name)) == NULL && errno != 0 && errno != ENOENT && errno != ESRCH
        && errno != EBADF && errno != EPERM)
        return -1;
    e = xcalloc(1, sizeof(*e));
    if (pw != NULL) {
        e->found = 1;
        /* getgrouplist() may reuse getpwnam()'s static buffer: copy first. */
        e->a.name = xstrdup(pw->pw_name);
        e->a.home = pw->pw_dir ? xstrdup(pw->pw_dir) : NULL;
        e->a.uid = pw->pw_uid;
        e->a.gid = pw->pw_gid;
        if (privs_groups(e->a.name, e->a.gid, &e->a.groups, &e->a.ngroups) < 0)
            e->a.too_many_groups = 1;
    }
    expcache_put(account_cache, name, e, now + ACCOUNT_TTL_MS, now);
    *ap = e->found ? &e->a : NULL;
    return e->found;
}
