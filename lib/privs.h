/*
 * privs - dropping root for good, with verification.
 *
 * privs_drop() is the one way a Posthorn process gives up root: look the
 * account up (before any chroot: the jail has no /etc/passwd), optionally
 * chroot(dir) + chdir("/"), then setgroups (the account's primary group plus
 * the given supplementary groups), setresgid, setresuid.  Afterwards it
 * verifies that setuid(0) and setgid(0) fail; if either succeeds, or any
 * step fails, that is fatal: a process never runs with privileges it should
 * not have.
 *
 * privs_lookup() resolves an account name (fatal-free: returns -1 and sets
 * errno ENOENT when the account does not exist).
 */
#ifndef POSTHORN_PRIVS_H
#define POSTHORN_PRIVS_H

#include <stddef.h>
#include <sys/types.h>

int  privs_lookup(const char *user, uid_t *uid, gid_t *gid);
int  privs_group_lookup(const char *group, gid_t *gid);

/* Drop to user, with extra supplementary groups (may be NULL/0), chrooting
 * first when chroot_dir is not NULL.  Fatal on any failure. */
void privs_drop(const char *user, const gid_t *extra_groups, size_t n_extra,
                const char *chroot_dir);
void privs_drop_ids(uid_t uid, gid_t gid, const gid_t *extra_groups,
                    size_t n_extra, const char *chroot_dir);

/* 0 if root can no longer be regained (setuid(0), setgid(0) and
 * setresuid(0,0,0) all fail); -1 otherwise. */
int  privs_verify_dropped(void);

/* An account's groups for the drop: its primary gid and every group that
 * lists it (getgrouplist), into a fresh *groups.  0, or -1 when the user
 * is in more than PRIVS_MAX_GROUPS groups. */
#define PRIVS_MAX_GROUPS 65536
int  privs_groups(const char *user, gid_t gid, gid_t **groups, size_t *n);

/* In a child after fork(), before it becomes someone else: close every
 * descriptor except the ones in keep[] (sorted here; negative ones are
 * skipped), so that nothing of the parent's leaks to the new account. */
void privs_close_fds(int *keep, size_t nkeep);

#endif
