/*
 * queue - queue IDs, the queue file format, its writer and reader, and the
 * queue directories (DESIGN.md §2).
 *
 * Queue ID.  Like Postfix's long queue IDs: the creation time and the inode
 * of the queue file, in a 52-character alphabet that is in ASCII order
 * ("0-9A-Za-p"), so strcmp() order of IDs is creation-time order:
 *     SSSSSS UUUU z III...
 *     6 digits seconds since the epoch (good until the year 2596), 4 digits
 *     microseconds (< 1000000), the separator 'z' (not in the alphabet),
 *     1-12 digits inode number without leading zeros.
 * Every field is fixed or canonical, so one (time, inode) pair has exactly
 * one spelling and queue_id_valid() can be strict: only the alphabet and one
 * 'z', never '/', '.', or anything else.  Uniqueness: the inode is unique
 * among live files of the spool file system, and a process never hands out
 * the same microsecond twice (its clock reading is bumped past the last one
 * it used), so IDs from one process are strictly increasing.  As a last
 * guard the commit refuses to replace an existing incoming/ID (EEXIST).
 * The ID is fixed at queue_writer_open() (cleanup can log it at once); the
 * last-used time is per process state, so the writer is not thread-safe.
 *
 * Queue file.  A sequence of records, each
 *     type (1 byte) | length (4 bytes, big-endian) | length bytes of data
 * in this order (MUST; anything else is corrupt):
 *   'V' version   "PHQ" + version byte (QUEUE_VERSION); first record.
 *   envelope, any order, each at most once except 'A':
 *   'T' arrival   int64 seconds + uint32 microseconds, big-endian (required)
 *   'S' sender    address bytes, no NUL; empty = the null sender <> (required)
 *   'E' ENVID     DSN envelope id (optional), no NUL
 *   'R' RET       one byte 'F' (FULL) or 'H' (HDRS) (optional)
 *   'A' attribute "name=value", name [a-z0-9_]{1,64}, value no NUL: client
 *                 info for logs and whatever cleanup wants to keep
 *   'r' recipient, one or more:
 *         status area, QUEUE_STATUS_SIZE (24) bytes at the start of the data:
 *           [0]      status (QUEUE_RCPT_*, the low bits) | flags
 *                    (QUEUE_RCPT_F_*, the high bits; only the known ones)
 *           [1..11]  enhanced status code, e.g. "4.4.1", NUL padded
 *           [12..15] attempts, uint32 big-endian
 *           [16..23] next attempt, int64 unix seconds big-endian (0 = none)
 *         notify flags (1 byte, QUEUE_NOTIFY_*; 0 = not given)
 *         address NUL original-recipient NUL ORCPT   (last two may be empty)
 *   'D' data      1..QUEUE_DATA_MAX bytes of message content (any bytes),
 *                 zero or more; the content is their concatenation
 *   'X' end       uint64 content length + uint32 recipient count (must match);
 *                 the last byte of the file.
 * Other records hold at most QUEUE_FIELD_MAX bytes.  A fixed 4-byte length
 * (not a varint) keeps the status area at a fixed offset and the reader
 * simple.  The recipient's status area is rewritten in place by qmgr
 * (queue_set_rcpt_status: one pwrite of 24 bytes, then fdatasync); the
 * file never changes size after the commit.  What qmgr must remember about
 * a message beyond one round lives there too, as a flag of its recipients:
 * QUEUE_RCPT_F_DELAY_WARNED says the sender has had the "delayed" DSN
 * (delay_warning_time) that covers this recipient; qmgr sets it on every
 * recipient still queued once that DSN is committed, so it is sent once
 * per message, as Postfix does.  Files written before the flags existed
 * have them clear and read as before; a flag bit we do not know is corrupt.
 *
 * Interface:
 *   queue_id_valid, queue_id_format, queue_id_parse
 *   queue_writer_open(qdirfd, &w)   claim a spare file as tmp/UNIQUE, or
 *                                   create one (0600); compute the ID from
 *                                   its inode (lib/queue_spare)
 *   queue_writer_id, queue_writer_envelope, queue_writer_attr,
 *   queue_writer_rcpt, queue_writer_content (streamed, any piece size),
 *   queue_writer_commit(&w)         end record, fsync, rename to
 *                                   incoming/ID, fsync incoming/; success
 *                                   only after all of that
 *   queue_maildrop_open(qdirfd, &w) the same writer for sendmail: the file
 *                                   is created as maildrop/.tmpUNIQUE
 *                                   (0644, the caller's own) and committed
 *                                   as maildrop/ID, made durable with
 *                                   syncfs() because sendmail may not read
 *                                   maildrop/ (1730) to fsync it; pickup
 *                                   ignores names starting with ".tmp"
 *   queue_writer_abort(&w)          unlink the temporary file
 *   queue_read(fd, &q, &why)        parse and validate the whole file
 *   queue_attr, queue_content_copy, queue_content_to_fd, queue_file_free
 *   queue_set_rcpt_status(fd, off, st, flags)
 *   queue_dirs[], QUEUE_DIR_*, queue_dir_valid, queue_open (the only way
 *   to open an existing queue file: no symlink, FIFO, device, second link
 *   or foreign owner; see below), queue_open_refused, queue_move,
 *   queue_remove
 * The writer keeps one file per message: it is created in tmp/ and renamed.
 * The calls must come in file order (envelope, attributes, recipients,
 * content, commit); calling them out of order is our bug and panics.
 *
 * Failure modes: no function here is fatal.  I/O errors return -1 with
 * errno.  After a writer I/O error every later call fails with the same
 * errno and the commit removes the temporary file, so a streaming caller
 * may check only the commit.  The commit either leaves the message in
 * incoming/ (0) or leaves nothing (-1; if the rename worked but the fsync
 * of incoming/ failed, incoming/ID is unlinked again, best effort).  A
 * field longer than QUEUE_FIELD_MAX returns -1/EMSGSIZE.  queue_read()
 * never trusts a length: a malformed file returns -1 with errno EBADMSG
 * and *why = "offset N: reason" (caller frees), so qmgr moves it to
 * corrupt/; other errnos are I/O errors.  The reader uses pread() only, so
 * it never moves the offset of a descriptor shared with another process.
 * Stale tmp/ files (a writer that crashed) have names that are not valid
 * queue IDs; cleaning them is the job of whoever scans tmp/.
 */
#ifndef POSTHORN_QUEUE_H
#define POSTHORN_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Queue subdirectories, relative to queue_directory. */
#define QUEUE_DIR_INCOMING  "incoming"
#define QUEUE_DIR_ACTIVE    "active"
#define QUEUE_DIR_DEFERRED  "deferred"
#define QUEUE_DIR_HOLD      "hold"
#define QUEUE_DIR_CORRUPT   "corrupt"
#define QUEUE_DIR_TMP       "tmp"
#define QUEUE_DIR_MAILDROP  "maildrop"
extern const char *const queue_dirs[];      /* the above, NULL-terminated */

#define QUEUE_ID_SIZE   24      /* longest ID (23) + NUL */

/* Record types. */
#define QUEUE_REC_VERSION   'V'
#define QUEUE_REC_ARRIVAL   'T'
#define QUEUE_REC_SENDER    'S'
#define QUEUE_REC_ENVID     'E'
#define QUEUE_REC_RET       'R'
#define QUEUE_REC_ATTR      'A'
#define QUEUE_REC_RCPT      'r'
#define QUEUE_REC_DATA      'D'
#define QUEUE_REC_END       'X'

#define QUEUE_VERSION       1
#define QUEUE_HDR_SIZE      5           /* type + 4-byte length */
#define QUEUE_FIELD_MAX     8192        /* non-data record payload */
#define QUEUE_DATA_MAX      65536       /* data record payload */
#define QUEUE_STATUS_SIZE   24          /* recipient status area */
#define QUEUE_DSN_LEN       11          /* enhanced status code field */
#define QUEUE_ATTR_NAME_MAX 64

/* Recipient status. */
#define QUEUE_RCPT_PENDING   0          /* not tried yet */
#define QUEUE_RCPT_DELIVERED 1
#define QUEUE_RCPT_BOUNCED   2          /* done: the bounce was committed */
#define QUEUE_RCPT_DEFERRED  3          /* tried, will be retried */
/* Recipient flags, in the high bits of the status byte. */
#define QUEUE_RCPT_F_DELAY_WARNED 0x80  /* the "delayed" DSN was sent */
#define QUEUE_RCPT_F_ALL          0x80  /* every flag the format knows */

/* DSN NOTIFY (RFC 3461); 0 = not given.  NEVER excludes the others. */
#define QUEUE_NOTIFY_SUCCESS 0x01
#define QUEUE_NOTIFY_FAILURE 0x02
#define QUEUE_NOTIFY_DELAY   0x04
#define QUEUE_NOTIFY_NEVER   0x08

/* DSN RET. */
#define QUEUE_RET_NONE  0
#define QUEUE_RET_FULL  'F'
#define QUEUE_RET_HDRS  'H'

/* Well-known attribute names (client information for the logs). */
#define QUEUE_ATTR_CLIENT_NAME  "client_name"
#define QUEUE_ATTR_CLIENT_ADDR  "client_addr"
#define QUEUE_ATTR_HELO         "helo_name"
#define QUEUE_ATTR_PROTOCOL     "protocol"
#define QUEUE_ATTR_SASL_USER    "sasl_username"
#define QUEUE_ATTR_SUBMIT_UID   "submit_uid"    /* local submission: the user's uid */
#define QUEUE_ATTR_SUBMIT_USER  "submit_user"   /* ... and login name */
#define QUEUE_ATTR_MAILDROP_ID  "maildrop_id"   /* pickup: the maildrop file */
#define QUEUE_ATTR_AUTH_RESULTS "auth_results"  /* smtpd: checkd's Authentication-Results
                                                   value, which cleanup writes as a field */
#define QUEUE_ATTR_QUARANTINE   "quarantine"    /* smtpd: why the message goes to the
                                                   recipients' Junk folder ("dmarc") */

/* queue_set_rcpt_status() and queue_move() flags. */
#define QUEUE_SYNC  (1 << 0)    /* fdatasync the file / fsync the target dir */

typedef struct queue_status {
    int      status;                    /* QUEUE_RCPT_* */
    unsigned flags;                     /* QUEUE_RCPT_F_* */
    char     dsn[QUEUE_DSN_LEN + 1];    /* "" or e.g. "4.4.1" */
    uint32_t attempts;
    int64_t  next_attempt;              /* unix seconds, 0 = none */
} queue_status_t;

typedef struct queue_rcpt_spec {        /* what the writer is given */
    const char *address;                /* non-empty */
    const char *orig;                   /* original recipient or NULL */
    const char *orcpt;                  /* DSN ORCPT ("rfc822;x@y") or NULL */
    unsigned    notify;                 /* QUEUE_NOTIFY_* */
} queue_rcpt_spec_t;

typedef struct queue_env {
    const char *sender;                 /* "" = null sender; not NULL */
    const char *envid;                  /* NULL or "" = none */
    int         ret;                    /* QUEUE_RET_* */
    int64_t     arrival_sec;            /* 0 = the time in the queue ID */
    uint32_t    arrival_usec;
} queue_env_t;

typedef struct queue_writer queue_writer_t;

typedef struct queue_attr {
    char *name;
    char *value;
} queue_attr_t;

typedef struct queue_rcpt {
    char          *address;
    char          *orig;                /* NULL if none */
    char          *orcpt;               /* NULL if none */
    unsigned       notify;
    queue_status_t st;
    off_t          status_offset;       /* for queue_set_rcpt_status() */
} queue_rcpt_t;

typedef struct queue_file {
    int           fd;                   /* not owned */
    off_t         size;
    int64_t       arrival_sec;
    uint32_t      arrival_usec;
    char         *sender;               /* "" = null sender */
    char         *envid;                /* NULL if none */
    int           ret;                  /* QUEUE_RET_* */
    size_t        nattr;
    queue_attr_t *attrs;
    size_t        nrcpt;
    queue_rcpt_t *rcpts;
    off_t         content_offset;       /* first data record (header), or
                                         * the end record if no content */
    uint64_t      content_len;          /* payload bytes in all data records */
    size_t        ndata;                /* number of data records */
} queue_file_t;

/* Queue IDs. */
int  queue_id_valid(const char *id);
void queue_id_format(char id[QUEUE_ID_SIZE], int64_t sec, uint32_t usec, uint64_t ino);
int  queue_id_parse(const char *id, int64_t *sec, uint32_t *usec, uint64_t *ino);

/* Writer (cleanup). */
int  queue_writer_open(int qdirfd, queue_writer_t **wp);
int  queue_maildrop_open(int qdirfd, queue_writer_t **wp);
#define QUEUE_MAILDROP_TMP_PREFIX ".tmp"
const char *queue_writer_id(const queue_writer_t *w);
int  queue_writer_envelope(queue_writer_t *w, const queue_env_t *env);
int  queue_writer_attr(queue_writer_t *w, const char *name, const char *value);
int  queue_writer_rcpt(queue_writer_t *w, const queue_rcpt_spec_t *r);
int  queue_writer_content(queue_writer_t *w, const void *data, size_t len);
/* Stream len bytes of fd from offset off (pread, so the fd's offset does
 * not matter) into the content, showing each piece to observe (may be
 * NULL) first.  0, or -1 with errno (EBADMSG: fd holds fewer bytes). */
int  queue_writer_copy_fd(queue_writer_t *w, int fd, uint64_t off, uint64_t len,
                          void (*observe)(void *ctx, const char *data, size_t len), void *ctx);
uint64_t queue_writer_content_len(const queue_writer_t *w);
int  queue_writer_commit(queue_writer_t **wp);
void queue_writer_abort(queue_writer_t **wp);

/* Reader (qmgr, local, smtp, mailctl). */
int  queue_read(int fd, queue_file_t **qp, char **why);
void queue_file_free(queue_file_t **qp);
const char *queue_attr(const queue_file_t *q, const char *name);
/* Call fn for each piece of content in order; 0, -1 (errno; EBADMSG if the
 * file changed shape since queue_read) or fn's first non-zero result. */
int  queue_content_copy(const queue_file_t *q,
                        int (*fn)(void *ctx, const void *data, size_t len), void *ctx);
int  queue_content_to_fd(const queue_file_t *q, int outfd);

/* Status update in place (qmgr).  Checks that offset is the status area of
 * a recipient record (else EBADMSG) and that st is well-formed (EINVAL). */
int  queue_set_rcpt_status(int fd, off_t offset, const queue_status_t *st, int flags);

/* Queue directories.  dir must be one of queue_dirs[], id a valid queue ID
 * (else -1/EINVAL). */
int  queue_dir_valid(const char *dir);
/*
 * queue_open - THE way to open an existing file in the queue (DESIGN.md §1:
 * the queue directories are written by mail_owner, maildrop/ by every
 * local user through sendmail, and root's mailctl reads them all).  The
 * rule, which no caller needs to repeat: the name is opened with
 * O_NOFOLLOW | O_NONBLOCK | O_NOCTTY (lib/safe_open), so a symbolic link,
 * a FIFO or a device can neither redirect nor block the open, and is kept
 * only if fstat shows a regular file with exactly one link, owned by the
 * owner of its directory (mail_owner, for incoming/ active/ deferred/
 * hold/ corrupt/ tmp/) or, in maildrop/, by anyone (the submitter; pickup
 * matches it to submit_uid).  The descriptor is blocking again and
 * close-on-exec.  oflags: O_RDONLY or O_RDWR (O_CREAT is refused).
 * Returns the descriptor, or -1 with errno and a static reason in *why
 * (why may be NULL): ENOENT (gone), EINVAL (a bad directory or ID: the
 * caller's bug), or, when the name is there but is no queue file we may
 * use, ELOOP (a symbolic link), EINVAL (not a regular file), EMLINK (more
 * than one link: in maildrop/ also sendmail's commit caught between
 * link and unlink), EPERM (another owner); queue_open_refused(errno)
 * says which.  Other errnos are the open's and may pass: EACCES too (a
 * file whose mode keeps us out, say root's copy of a queue file that an
 * admin is about to chown: the caller leaves it where it is).
 */
int  queue_open(int qdirfd, const char *dir, const char *id, int oflags, const char **why);
/* 1 if err, from a failed queue_open, means the name is there but must not
 * be used as a queue file: set it aside (corrupt/), do not retry it. */
int  queue_open_refused(int err);
int  queue_move(int qdirfd, const char *from, const char *to, const char *id, int flags);
int  queue_remove(int qdirfd, const char *dir, const char *id);

#endif
