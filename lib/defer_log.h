/*
 * defer_log - why a message's recipients were deferred, for the people who
 * read the queue (mailctl queue list, mailq): the text a queue file cannot
 * hold (its recipient status area is a fixed 24 bytes: the status code,
 * attempts and next attempt only).  Postfix keeps the same in defer/.
 *
 * One file per message, DEFER_LOG_DIR/ID in the queue directory (owned by
 * mail_owner, mode 0700, like the queue), written by qmgr at the end of a
 * round that deferred a recipient and removed with the message.  Each line
 * is "ADDRESS TAB DSN TAB TEXT LF"; control characters and tabs in any
 * field are written as '?', so a line always parses back.  It is written
 * under a temporary name and renamed, so a reader never sees half of it;
 * it is not synced: losing it in a crash loses only the explanation, and
 * the next round writes it again.
 *
 * Interface:
 *   defer_log_write(qfd, id, entries, n)   replace ID's log (n 0: remove it)
 *   defer_log_read(qfd, id, owner, &entries, &n)
 *       read it (opened with lib/safe_open's discipline: no symbolic link,
 *       FIFO or second link, owner as given, at most DEFER_LOG_MAX bytes);
 *       a missing or unreadable log is 0 entries, never an error: it only
 *       explains.  Lines that do not parse are skipped.
 *   defer_log_find(entries, n, address)    the entry for a recipient
 *   defer_log_remove(qfd, id)
 *   defer_log_free(&entries, n)
 *
 * Failure modes: write and remove return -1 with errno (the caller logs
 * and carries on); out of memory is fatal.
 */
#ifndef POSTHORN_DEFER_LOG_H
#define POSTHORN_DEFER_LOG_H

#include <stddef.h>
#include <sys/types.h>

#define DEFER_LOG_DIR  "defer"
#define DEFER_LOG_MAX  (1024 * 1024)

struct defer_log_entry {
    char *address;
    char *dsn;
    char *text;
};

int  defer_log_write(int qfd, const char *id, const struct defer_log_entry *e, size_t n);
int  defer_log_read(int qfd, const char *id, uid_t owner, struct defer_log_entry **e, size_t *n);
const struct defer_log_entry *defer_log_find(const struct defer_log_entry *e, size_t n,
                                             const char *address);
int  defer_log_remove(int qfd, const char *id);
void defer_log_free(struct defer_log_entry **e, size_t n);

#endif
