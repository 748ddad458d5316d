/*
 * durable - the two steps of the durability rule (DESIGN.md §2) that every
 * writer of a file that must survive a crash shares: the queue, Maildir
 * delivery and map builds.
 *
 * durable_fsync_dir(atfd, path)  open the directory path (relative to
 *     atfd, or AT_FDCWD) and fsync it, so that a rename or a new name in
 *     it is on disk.  0, or -1 with errno.
 * durable_rename_noreplace(dfd, from, to)  rename from to to within the
 *     directory dfd, never replacing a file that is there (EEXIST):
 *     renameat2(RENAME_NOREPLACE), or on a file system without it
 *     link() + unlink(), which refuses to replace just the same (the file
 *     has two names for a moment).  0, or -1 with errno.
 *
 * Failure modes: only the system calls' own; nothing is fatal.
 */
#ifndef POSTHORN_DURABLE_H
#define POSTHORN_DURABLE_H

int durable_fsync_dir(int atfd, const char *path);
int durable_rename_noreplace(int dfd, const char *from, const char *to);

#endif
