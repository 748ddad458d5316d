/*
 * mailbox.h - an open mailbox in a user's process: the Maildir folder,
 * its persistent index (index.c), the messages with their UIDs and flags,
 * and the sessions' views of it (mailbox.c).
 *
 * One struct imap_mbox per folder per process, shared by every session
 * that has the folder selected (or is using it for STATUS, COPY, APPEND):
 * a change one session makes is seen by the others at their next command
 * (or at once in IDLE), from memory.  Other programs that change the
 * Maildir (local delivering into new/, pop3d, a second imapd process of
 * the same user, a mail reader on the host) are seen through inotify on
 * new/ and cur/ and on the index, never through a directory scan per
 * command.
 */
#ifndef POSTHORN_IMAPD_MAILBOX_H
#define POSTHORN_IMAPD_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "buf.h"

#define IMAP_INDEX_NAME  "posthorn-imap.index"

enum { MSG_NEW = 0, MSG_CUR = 1 };

struct imap_msg {
    uint32_t         uid;
    uint8_t          flags;         /* IMAP_F_* (no \Recent) */
    uint8_t          dir;           /* MSG_NEW or MSG_CUR */
    bool             gone;          /* its file went away; checked at the next sync */
    uint32_t         nkw;
    uint32_t        *kw;            /* keyword ids of the mailbox, sorted */
    int64_t          idate;         /* INTERNALDATE: the file's mtime */
    uint64_t         vsize;         /* RFC822.SIZE (CRLF); 0 = not known yet */
    char            *file;          /* its name in new/ or cur/ */
    int64_t          coff;          /* its cache record's parts (cache.c); 0: none */
    uint32_t         clen[4];
    size_t           baselen;       /* of file: the part no flag change alters */
    struct imap_msg *hnext;         /* the base-name hash chain */
};

struct imap_view;

/* A file seen on disk that has no UID yet. */
struct imap_newfile {
    char    *file;
    uint8_t  dir;
};

struct imap_mbox {
    char              *name;        /* IMAP name (modified UTF-7) */
    char              *path;        /* the folder directory */
    int                refs;
    int                dirfd, newfd, curfd;
    /* The index (index.c). */
    int                idxfd;
    ino_t              idxino;
    off_t              idxoff;      /* read this far */
    unsigned long      idxline;     /* lines read (for FILE:LINE messages) */
    buf_t             *idxtail;     /* a partial last line */
    uint32_t           uidvalidity, uidnext, first_recent;
    struct timespec    synced_new, synced_cur;  /* the last S record */
    char             **kwnames;
    uint32_t           nkwnames;
    /* The messages, by ascending UID, and by base name. */
    struct imap_msg  **msgs;
    size_t             nmsgs, msgs_size;
    struct imap_msg  **hash;
    size_t             hsize;
    /* Files without a UID; messages whose file went. */
    struct imap_newfile *newfiles;
    size_t             nnew, new_size;
    size_t             ngone;
    bool               rescan;      /* a full scan is due (inotify overflowed) */
    bool               deleted;     /* DELETEd while open (mbox_deleted) */
    bool               idx_changed; /* the index file was written by someone else */
    int                wd_new, wd_cur, wd_dir, wd_idx;
    struct imap_view  *views;
    uint64_t           gen, woken_gen;  /* changes made; told to the views */
    uint32_t          *dirty;       /* UIDs whose state changed outside a transaction */
    size_t             ndirty, dirty_size;
    bool               in_txn;      /* the index is locked (mbox_begin) */
    buf_t             *txn;         /* records of the transaction */
    int                cachefd;     /* cache.c */
    /* The message read last (FETCH of header, then body, ...). */
    uint32_t           cached_uid;
    buf_t             *cached;
};

/* A session's view: its sequence numbers, and what it has not been told. */
struct imap_view {
    struct imap_mbox *mb;
    struct imap_view *next;         /* in mb->views */
    bool              readonly;     /* EXAMINE */
    uint32_t         *uids;         /* seq n is uids[n - 1] */
    size_t            n, size;
    uint32_t          maxuid;       /* the highest UID it was told of */
    uint32_t         *recent;       /* \Recent in this session, ascending */
    size_t            nrecent, recent_size;
    uint32_t         *expunged;     /* UIDs expunged, not told yet */
    size_t            nexpunged, expunged_size;
    uint32_t         *changed;      /* UIDs whose flags changed, not told yet */
    size_t            nchanged, changed_size;
    uint32_t          nkw_told;     /* keywords in the last FLAGS response */
    void (*wake)(void *ctx);        /* something happened (IDLE) */
    void             *ctx;
};

/* -------------------------------------------------------------- folders */

/* Open a folder (path: its directory, a Maildir), creating its index if
 * it has none; shared: a second open of the same path returns the same
 * mailbox with one more reference.  NULL with *why (static) when the
 * folder is not there (MBOX_NO_SUCH) or cannot be used. */
#define MBOX_NO_SUCH "no such mailbox"
struct imap_mbox *mbox_open(const char *name, const char *path, const char **why);
void mbox_close(struct imap_mbox **mbp);
/* The folder at path was deleted: an open mailbox there is forgotten
 * (opened again, the path is a new folder), its sessions see every
 * message expunged. */
void mbox_deleted(const char *path);
/* The folder at from (and those below it) is now at to. */
void mbox_renamed(const char *from, const char *from_name, const char *to, const char *to_name);
/* Bring the mailbox up to date with the disk (events, new files, UIDs,
 * files gone) and tell the views.  0, or -1 when the index cannot be
 * written (logged; the caller answers NO). */
int  mbox_sync(struct imap_mbox *mb);
/* The inotify descriptor all mailboxes of this process share, and its
 * reader (user.c polls it). */
int  mbox_inotify_fd(void);
void mbox_inotify_read(void);
/* Every open mailbox, for a caller that syncs them all (IDLE tick). */
void mbox_sync_all(void);

/* ------------------------------------------------------------- messages */

struct imap_msg *mbox_find_uid(const struct imap_mbox *mb, uint32_t uid);
/* The message's text with CRLF line ends (valid until the next call for
 * this mailbox); NULL when the file is gone (errno ENOENT) or unreadable. */
const buf_t *mbox_msg_text(struct imap_mbox *mb, struct imap_msg *m);
/* RFC822.SIZE, computed from the file when its name does not say. */
uint64_t mbox_msg_vsize(struct imap_mbox *mb, struct imap_msg *m);
/* A change of flags is a transaction: mbox_begin() locks the index and
 * reads what other processes wrote (so nothing is decided on a stale
 * state), mbox_set_flags() changes messages (the file is renamed to carry
 * the flags), mbox_commit() writes it all and lets go.  Look messages up
 * after mbox_begin(): it may expunge some. */
int  mbox_begin(struct imap_mbox *mb);
/* Set flags and keywords (kw: ids, sorted), inside a transaction.  0, or
 * -1 when the file is gone (a sync will expunge it). */
int  mbox_set_flags(struct imap_mbox *mb, struct imap_msg *m, unsigned flags,
                    const uint32_t *kw, uint32_t nkw, const struct imap_view *by);
/* The id of a keyword, added to the mailbox's table when create;
 * UINT32_MAX when unknown (and not created). */
uint32_t mbox_keyword_id(struct imap_mbox *mb, const char *name, bool create);
/* Remove messages (their files): expunged for every view. */
int  mbox_expunge(struct imap_mbox *mb, struct imap_msg **msgs, size_t n);
/* Files already in new/ or cur/ (APPEND, COPY, MOVE) get their UIDs, in
 * one durable index update.  0, or -1 (the index cannot be written). */
struct imap_add {
    const char     *file;
    uint8_t         dir;
    int64_t         idate;
    uint64_t        vsize;
    unsigned        flags;
    const uint32_t *kw;
    uint32_t        nkw;
    uint32_t        uid;            /* out */
};
int  mbox_add_files(struct imap_mbox *mb, struct imap_add *adds, size_t n);
/* End a transaction (or write what was noticed outside one). */
int  mbox_commit(struct imap_mbox *mb);

/* ---------------------------------------------------------------- views */

/* Sorted UID arrays: qsort/bsearch order, and the index of v (n when
 * it is not there). */
int    u32_cmp(const void *a, const void *b);
size_t u32_find(const uint32_t *a, size_t n, uint32_t v);

struct imap_view *view_new(struct imap_mbox *mb, bool readonly,
                           void (*wake)(void *ctx), void *ctx);
void view_free(struct imap_view **vp);
bool view_is_recent(const struct imap_view *v, uint32_t uid);
void view_drop_recent(struct imap_view *v, uint32_t uid);
/* seq of uid in the view (1-based), 0 when it is not there. */
uint32_t view_seq(const struct imap_view *v, uint32_t uid);

/* -------------------------------------------------------------- cache.c */

enum { CACHE_HEADER, CACHE_ENVELOPE, CACHE_BODY, CACHE_BODYSTRUCTURE };
void cache_open(struct imap_mbox *mb);
void cache_close(struct imap_mbox *mb);
/* One cached part of m appended to out (computed and cached first if need
 * be): 0, or -1 when it cannot be had (the message is gone). */
int  cache_part(struct imap_mbox *mb, struct imap_msg *m, int part, buf_t *out);

/* -------------------------------------------------------------- index.c */

int  index_open(struct imap_mbox *mb, const char **why);
void index_close(struct imap_mbox *mb);
/* Read what others appended (or a compacted file); applies it. */
int  index_refresh(struct imap_mbox *mb);
/* Append records built in b under the index lock, after reading what
 * others wrote (refresh first, so UIDs are never given twice).  The
 * caller's build function runs with the lock held and the tail read. */
int  index_update(struct imap_mbox *mb, bool durable,
                  void (*build)(struct imap_mbox *mb, buf_t *rec, void *ctx), void *ctx);
/* The same in two steps: lock and read (0 or -1); append rec and unlock. */
int  index_begin(struct imap_mbox *mb);
int  index_end(struct imap_mbox *mb, bool durable, buf_t *rec);
void index_put_msg(buf_t *rec, char type, const struct imap_msg *m);
void index_put_expunge(buf_t *rec, uint32_t uid);
void index_put_keyword(buf_t *rec, uint32_t id, const char *name);
void index_put_recent(buf_t *rec, uint32_t first_recent);
void index_put_synced(buf_t *rec, const struct timespec *new_, const struct timespec *cur);
/* Rewrite the index as a snapshot when the log has grown well past it. */
void index_compact(struct imap_mbox *mb);

/* mailbox.c helpers index.c uses while it reads. */
struct imap_msg *mbox_find_base(const struct imap_mbox *mb, const char *file);
void mbox_index_apply(struct imap_mbox *mb, uint32_t uid, unsigned flags, uint8_t dir,
                      const char *file, int64_t idate, uint64_t vsize,
                      const uint32_t *kw, uint32_t nkw, bool added);
void mbox_index_expunged(struct imap_mbox *mb, uint32_t uid);
void mbox_index_keyword(struct imap_mbox *mb, uint32_t id, const char *name);
/* The index file was replaced: watch the new one. */
void mbox_index_rewatch(struct imap_mbox *mb);

#endif
