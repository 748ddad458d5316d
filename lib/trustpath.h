/*
 * trustpath - may root rely on a path?  Before root runs a program, reads
 * its configuration or creates directories below a path, every file on the
 * way there must be beyond the reach of other accounts: otherwise whoever
 * can write one of them can swap in a program or a file of their own
 * (DESIGN.md §1: root never runs or reads what is not root's).
 *
 * The path is walked one component at a time from "/" (a relative path
 * from the current directory's absolute name), with fstatat() and openat()
 * relative to the directory reached so far, never following a symbolic
 * link by name:
 *   - every directory on the way (the resolved path and its ancestors)
 *     must be owned by one of owners[] and writable by nobody else: not by
 *     its group, not by others, unless it is sticky (like /tmp, where
 *     nobody can rename or remove another account's entry);
 *   - a symbolic link is resolved by hand: the link itself must be owned
 *     by one of owners[] (the directory holding it was checked already),
 *     then its target is walked the same way, so both the link and the
 *     resolved path with all its ancestors are checked; at most
 *     TRUSTPATH_MAXLINKS links (ELOOP);
 *   - the final file must be owned by one of owners[] and writable by
 *     neither group nor others; a final directory may not be sticky and
 *     writable by others either, unless TRUSTPATH_STICKY_OK.
 * Nothing here knows what the files are for.
 *
 * Interface:
 *   trustpath_owners(owners)  the usual owner set: root alone when the
 *       effective uid is 0, else root and the effective uid (a user
 *       running a tool on their own files); returns the count (1 or 2).
 *   trustpath_open(path, flags, owners, n, errs)  walk and check path;
 *       an O_PATH descriptor of the final file (usable with fstat and as
 *       the dirfd of the *at calls, not for reading), or -1.
 *   trustpath_check(...)  the same without the descriptor: 0 or -1.
 * flags: TRUSTPATH_DIR (the final file must be a directory),
 * TRUSTPATH_FILE (a regular file), TRUSTPATH_STICKY_OK (see above).
 *
 * Failure modes: -1 with errno set (EPERM: a wrong owner or mode; ENOENT,
 * ENOTDIR, ELOOP, EACCES, ...: the walk itself failed; EAGAIN: a file
 * changed while it was being checked) and one line "FILE: reason" appended
 * to errs, FILE being the offending component (a directory above path, a
 * symbolic link, path itself), followed by " (checking PATH)" when that
 * is not path itself.  An empty owner set is our bug and panics.
 */
#ifndef POSTHORN_TRUSTPATH_H
#define POSTHORN_TRUSTPATH_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

#define TRUSTPATH_DIR        0x1
#define TRUSTPATH_FILE       0x2
#define TRUSTPATH_STICKY_OK  0x4

#define TRUSTPATH_MAXLINKS   40

size_t trustpath_owners(uid_t owners[2]);
int    trustpath_open(const char *path, int flags, const uid_t *owners, size_t nowners,
                      buf_t *errs);
int    trustpath_check(const char *path, int flags, const uid_t *owners, size_t nowners,
                       buf_t *errs);

#endif
