/*
 * maildrop - the files local submission leaves in $queue_directory/maildrop/
 * for pickup: one message each, a cleanup request (lib/cleanup_proto.h) at
 * rest.
 *
 * Format: a queue file (lib/queue.h) with every recipient pending,
 * written by sendmail through queue_maildrop_open(): created as
 * maildrop/.tmpUNIQUE, the caller's own, mode 0644 (maildrop/ is 1730, so
 * only pickup, as the directory's owner, can reach it), committed by rename
 * to maildrop/ID after fsync.  The attributes carry QUEUE_ATTR_SUBMIT_UID
 * and QUEUE_ATTR_SUBMIT_USER; pickup believes the uid only if it is the
 * file's owner.
 *
 * Interface:
 *   maildrop_write(qdirfd, r, id)  write request r (its content_fd read from
 *                                  offset 0, content_len bytes) as a
 *                                  maildrop file; id gets its name
 *   maildrop_write_envelope(w, r)  the envelope part alone, for cleanup
 *   maildrop_read(fd, r, why)      parse an open maildrop file back into a
 *                                  request whose content_fd is a fresh memfd
 *
 * Failure modes: maildrop_write returns -1 with errno and leaves nothing
 * behind (EMSGSIZE: a field too long; EBADMSG: the content descriptor is
 * shorter than content_len).  maildrop_read returns -1 with errno: EBADMSG
 * with *why (caller frees) for a malformed file, other errnos for I/O.
 */
#ifndef POSTHORN_MAILDROP_H
#define POSTHORN_MAILDROP_H

#include "cleanup_proto.h"
#include "queue.h"

int maildrop_write(int qdirfd, const struct cleanup_request *r, char id[QUEUE_ID_SIZE]);
/* The envelope, attributes and recipients of r into w (cleanup writes its
 * queue files with it too); 0, or -1 with errno. */
int maildrop_write_envelope(queue_writer_t *w, const struct cleanup_request *r);
int maildrop_read(int fd, struct cleanup_request *r, char **why);

#endif
