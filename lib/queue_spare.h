/*
 * queue_spare - the spool's spare queue files: a finished message's file
 * is kept for the next message instead of being unlinked, so the queue
 * neither allocates nor frees an inode per message (DESIGN.md §2).
 *
 * Why.  Every queue file created and deleted per message costs real time:
 * inode and block allocation, and on ext4 without a journal (this
 * project's reference machine) a new inode is searched for past every
 * inode freed in the last minute, so under load each create in the spool
 * scans thousands of them while holding the directory lock (see
 * ../shared/notes/performance.md).  A rename into tmp/ and back costs two
 * directory entries and nothing else; writing over the old file's blocks
 * needs no block allocation.
 *
 * The pool.  A spare is tmp/spare.ID, ID being the queue ID the file last
 * had (unique, so retiring never collides).  The spool owner's writers
 * (cleanup) claim one by opening it and taking an exclusive flock(); only
 * one of several racing writers gets it, and the name must still be that
 * file once locked (a writer lets go only after its commit renamed it
 * away).  The file is checked like any queue file we open (regular, one
 * link, ours, 0600), written from offset 0 under its spare name and
 * renamed into incoming/ by the commit; the writer truncates it to what
 * it wrote before its fsync, so no byte of the old message survives in
 * the new one.  A writer that gives up leaves it a spare.  No directory
 * is changed to claim a spare: creating and renaming files in tmp/ takes
 * its lock, which every writer and qmgr contend for.  qmgr
 * retires a finished message's file into the pool when the file is at
 * most QUEUE_SPARE_SIZE_MAX bytes and the pool holds fewer than
 * QUEUE_SPARE_MAX spares (an estimate per process that counts its own
 * retires but not the writers' claims: recounted at least once a minute,
 * and at most once a second while it says the pool is full, so a steady
 * flow of messages, whose pool stays small, keeps reusing files);
 * otherwise the file is unlinked as before.  So the pool
 * holds at most QUEUE_SPARE_MAX x QUEUE_SPARE_SIZE_MAX bytes (256 MB) and
 * usually a few KB per spare.
 *
 * Crash safety: a spare holds no message.  A writer that crashes after
 * its claim leaves a spare with part of a new message in it, which the
 * next claim writes over; nothing in incoming/ or later depends on a
 * spare, and losing a retiring rename in a crash at worst brings the
 * finished message back from active/ (the same as losing an unlink).
 *
 * Interface:
 *   queue_spare_claim(qdirfd, &name)    a spare opened O_RDWR and locked,
 *                                       *name its path ("tmp/spare.ID",
 *                                       fresh); -1 when none could be had
 *                                       (then create a file)
 *   queue_spare_retire(qdirfd, dir, id, size)
 *                                       remove dir/id from the queue: into
 *                                       the pool, or unlink; 0 or -1/errno
 *
 * Failure modes: none fatal.  A spare that is not a regular file with one
 * link owned by us is unlinked and skipped (only the spool owner can put
 * anything in tmp/).  Keeps per-process state; not thread-safe.
 */
#ifndef POSTHORN_QUEUE_SPARE_H
#define POSTHORN_QUEUE_SPARE_H

#include <sys/types.h>

#define QUEUE_SPARE_PREFIX   "spare."
#define QUEUE_SPARE_MAX      4096
#define QUEUE_SPARE_SIZE_MAX (64 * 1024)

int queue_spare_claim(int qdirfd, char **name);
int queue_spare_retire(int qdirfd, const char *dir, const char *id, off_t size);

#endif
