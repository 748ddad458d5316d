/*
 * safe_open - open a file that sits in a directory another account can
 * write (a user's home, the queue, an :include: file), so that nobody can
 * substitute a symbolic link, a FIFO, a device node or a second name of
 * someone else's file for it (DESIGN.md §1).
 *
 * safe_open() is openat(dirfd, path) with O_NOFOLLOW | O_NONBLOCK |
 * O_NOCTTY | O_CLOEXEC added to oflags (O_CREAT is refused: creating is
 * another job), then fstat(): the file must be a regular file with exactly
 * one link, owned by one of owners[0..nowners) (nowners 0: any owner).
 * O_NONBLOCK means a FIFO or a device cannot block the open; it is cleared
 * again on the descriptor returned.  O_TRUNC is applied (ftruncate) only
 * after the checks passed, so a refused file is never cut.
 *
 * safe_read_file() does the same for reading and reads the whole file,
 * refusing one larger than max bytes.
 *
 * Failure: -1 with errno and a static reason in *why (for "PATH: reason"
 * messages): the open's own errno (ELOOP: a symbolic link), EINVAL (not a
 * regular file), EMLINK (more than one link), EPERM (another owner),
 * EFBIG (larger than max), or a read error.  After EINVAL, EMLINK and
 * EPERM (and EFBIG) *st (if st is not NULL) holds what fstat saw, so a
 * caller can tell, say, a file in the middle of a link-then-unlink commit
 * from a planted second link.
 */
#ifndef POSTHORN_SAFE_OPEN_H
#define POSTHORN_SAFE_OPEN_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "buf.h"

int safe_open(int dirfd, const char *path, int oflags, const uid_t *owners, size_t nowners,
              struct stat *st, const char **why);

/* 0 with *out fresh (NUL-terminated by buf_cstr), or -1 as above. */
int safe_read_file(int dirfd, const char *path, const uid_t *owners, size_t nowners, size_t max,
                   buf_t **out, struct stat *st, const char **why);

#endif
