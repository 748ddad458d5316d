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

#endif
