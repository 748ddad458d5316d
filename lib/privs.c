/*
 * privs - dropping root for good, with verification (see privs.h).
 *
 * Interface: privs_lookup, privs_group_lookup, privs_drop, privs_drop_ids,
 * privs_verify_dropped.
 *
 * The drop is the classic sequence: resolve the account while /etc/passwd is
 * still reachable, chroot(dir) + chdir("/"), setgroups(primary + extra),
 * setresgid, setresuid - real, effective and saved ids all change, so there
 * is no way back.  Afterwards the ids are read back and setuid(0),
 * setgid(0) and setresuid(0,0,0) are tried: each must fail.
 *
 * Failure modes: privs_lookup/privs_group_lookup return -1 with errno
 * (ENOENT: no such account).  Every failure of a drop is msg_fatal(): the
 * process must not carry on with privileges it should not have.  Asking to
 * drop "to" uid 0 is our bug and panics.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "msg.h"
#include "privs.h"
#include "xalloc.h"

/* getpwnam/getgrnam give NULL with one of these errno values (or 0) when
 * the name simply does not exist (getpwnam(3), "RETURN VALUE"). */
static int privs_not_found(int err)
{
    return err == 0 || err == ENOENT || err == ESRCH || err == EBADF || err == EPERM;
}

int privs_lookup(const char *user, uid_t *uid, gid_t *gid)
{
    struct passwd *pw;

    if (user == NULL || *user == '\0') {
        errno = ENOENT;
        return -1;
    }
    errno = 0;
    pw = getpwnam(user);
    if (pw == NULL) {
        if (privs_not_found(errno))
            errno = ENOENT;
        return -1;
    }
    if (uid)
        *uid = pw->pw_uid;
    if (gid)
        *gid = pw->pw_gid;
    return 0;
}

int privs_group_lookup(const char *group, gid_t *gid)
{
    struct group *gr;

    if (group == NULL || *group == '\0') {
        errno = ENOENT;
        return -1;
    }
    errno = 0;
    gr = getgrnam(group);
    if (gr == NULL) {
        if (privs_not_found(errno))
            errno = ENOENT;
        return -1;
    }
    if (gid)
        *gid = gr->gr_gid;
    return 0;
}

void privs_drop(const char *user, const gid_t *extra_groups, size_t n_extra,
                const char *chroot_dir)
{
    uid_t uid;
    gid_t gid;

    if (user == NULL || *user == '\0')
        msg_panic("privs_drop: no user name given");
    if (privs_lookup(user, &uid, &gid) < 0) {
        if (errno == ENOENT)
            msg_fatal("cannot drop privileges: unknown user '%s'", user);
        msg_fatal("cannot drop privileges: cannot look up user '%s': %s",
                  user, strerror(errno));
    }
    if (uid == 0)
        msg_fatal("cannot drop privileges: user '%s' has uid 0; use an "
                  "unprivileged account", user);
    privs_drop_ids(uid, gid, extra_groups, n_extra, chroot_dir);
}

void privs_drop_ids(uid_t uid, gid_t gid, const gid_t *extra_groups,
                    size_t n_extra, const char *chroot_dir)
{
    gid_t *groups;
    size_t ngroups = 0;
    uid_t ru, eu, su;
    gid_t rg, eg, sg;

    if (uid == 0)
        msg_panic("privs_drop_ids: asked to drop privileges to uid 0");
    if (n_extra > 0 && extra_groups == NULL)
        msg_panic("privs_drop_ids: %zu extra groups but no array", n_extra);

    if (chroot_dir != NULL) {
        if (chroot(chroot_dir) < 0)
            msg_fatal("cannot chroot to %s: %s", chroot_dir, strerror(errno));
        if (chdir("/") < 0)
            msg_fatal("cannot chdir to / after chroot to %s: %s",
                      chroot_dir, strerror(errno));
    }

    /* The primary group first, then the extra ones without duplicates. */
    groups = xreallocarray(NULL, n_extra + 1, sizeof(*groups));
    groups[ngroups++] = gid;
    for (size_t i = 0; i < n_extra; i++) {
        size_t j;

        for (j = 0; j < ngroups && groups[j] != extra_groups[i]; j++)
            ;
        if (j == ngroups)
            groups[ngroups++] = extra_groups[i];
    }
    if (setgroups(ngroups, groups) < 0)
        msg_fatal("cannot set the supplementary groups (%zu) for uid %ld: %s",
                  ngroups, (long)uid, strerror(errno));
    free(groups);
    if (setresgid(gid, gid, gid) < 0)
        msg_fatal("cannot change group id to %ld: %s", (long)gid, strerror(errno));
    if (setresuid(uid, uid, uid) < 0)
        msg_fatal("cannot change user id to %ld: %s", (long)uid, strerror(errno));

    /* Trust, but verify: read the ids back, then try to get root back. */
    if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
        msg_fatal("cannot read back the process ids after the drop: %s",
                  strerror(errno));
    if (ru != uid || eu != uid || su != uid || rg != gid || eg != gid || sg != gid)
        msg_fatal("privilege drop to %ld:%ld did not take: uids %ld/%ld/%ld, "
                  "gids %ld/%ld/%ld", (long)uid, (long)gid, (long)ru, (long)eu,
                  (long)su, (long)rg, (long)eg, (long)sg);
    if (privs_verify_dropped() < 0)
        msg_fatal("privilege drop to %ld:%ld failed: root privileges can "
                  "still be regained", (long)uid, (long)gid);
}

int privs_verify_dropped(void)
{
    int saved_errno = errno;
    int ret = 0;

    /* Each call must fail; if one succeeds we are (partly) root again, and
     * the caller is expected to give up at once. */
    if (setuid(0) == 0)
        ret = -1;
    if (setgid(0) == 0)
        ret = -1;
    if (setresuid(0, 0, 0) == 0)
        ret = -1;
    errno = saved_errno;
    return ret;
}

int privs_groups(const char *user, gid_t gid, gid_t **groupsp, size_t *np)
{
    gid_t *groups = NULL;
    int n = 16, want;

    for (;;) {
        groups = xreallocarray(groups, (size_t)n, sizeof(*groups));
        want = n;
        if (getgrouplist(user, gid, groups, &want) >= 0) {
            n = want;
            break;
        }
        if (n >= PRIVS_MAX_GROUPS) {
            free(groups);
            return -1;
        }
        n = want > n ? want : n * 2;
    }
    *groupsp = groups;
    *np = (size_t)n;
    return 0;
}

static int privs_cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;

    return x < y ? -1 : x > y;
}

void privs_close_fds(int *keep, size_t nkeep)
{
    unsigned int lo = 0;

    qsort(keep, nkeep, sizeof(*keep), privs_cmp_int);
    for (size_t i = 0; i <= nkeep; i++) {
        unsigned int hi = i < nkeep ? (unsigned int)keep[i] : ~0U;

        if (i < nkeep && keep[i] < 0)
            continue;
        if (hi > lo && close_range(lo, hi - 1, 0) < 0) {
            /* Without close_range(2): the slow way. */
            long max = sysconf(_SC_OPEN_MAX);

            for (long fd = lo; fd < (hi == ~0U ? max : (long)hi); fd++)
                close((int)fd);
        }
        if (i < nkeep)
            lo = (unsigned int)keep[i] + 1;
    }
}
