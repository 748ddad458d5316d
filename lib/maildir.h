/*
 * maildir - Maildir access: creating a Maildir and delivering into it (the
 * Maildir specification, cr.yp.to/proto/maildir.html, and the durability
 * rule of DESIGN.md §2), and the rules of its file names.  local writes
 * with it; pop3d reads names with it (the rest of its view of a Maildir is
 * pop3d/mailbox.c).
 *
 * Layout: DIR/tmp, DIR/new, DIR/cur, each mode 0700.  A message is written
 * to tmp/NAME (O_CREAT|O_EXCL, mode 0600), fsync()ed, moved to
 * new/NAME,S=<size>,W=<virtual size> without ever replacing an existing
 * file (renameat2 RENAME_NOREPLACE, or link()+unlink() where the file
 * system lacks it), and new/ is fsync()ed.  Only then is the delivery
 * done.  NAME is "SECONDS.M<usec>P<pid>Q<counter>.<hostname>", the host
 * name with '/' and ':' written as \057 and \072 (as Courier and Dovecot
 * do); S= is the size of the file, W= its size with CRLF line ends
 * (Dovecot's extensions, so that POP3/IMAP need not read it to know).
 *
 * Interface:
 *   maildir_create(dir)          make DIR and tmp/ new/ cur/ if missing
 *   maildir_unique()             a fresh unique base name
 *   maildir_writer_open / _write / _commit / _abort
 *                                one message, raw bytes, tmp -> new
 *   maildir_commit_many(c, n)    a group commit: several writers of one
 *                                Maildir, made durable by one syncfs(),
 *                                moved, then one fsync of new/ for all
 *   maildir_deliver_write(dir, &d, &w, &why)
 *                                maildir_deliver's writing half, for a
 *                                group commit
 *   maildir_deliver(dir, &d, &path, &why)
 *                                a mail delivery: "Return-Path: <sender>",
 *                                "Delivered-To: rcpt", then the content
 *                                pulled from a source in pieces of any
 *                                size with CRLF turned into LF (a lone CR
 *                                stays), refusing a message whose header
 *                                already has "Delivered-To: rcpt" (a loop)
 *
 * Failure modes: nothing here is fatal.  Errors return -1 with errno and,
 * where a why argument is given, a fresh "operation path: reason" string
 * (caller frees).  A failed or aborted writer leaves nothing behind in tmp/
 * or new/; if the move into new/ worked but the fsync of new/ failed, the
 * new file is removed again (best effort) so that a retry does not deliver
 * twice.  Write errors are sticky: after one, later writes fail with the
 * same errno and the commit reports it.
 */
#ifndef POSTHORN_MAILDIR_H
#define POSTHORN_MAILDIR_H

#include <stddef.h>
#include <sys/types.h>

/* maildir_deliver() found a Delivered-To: header for this recipient. */
#define MAILDIR_LOOP 1
/* The writer had a fixed name (maildir_writer_set_name) and new/ already
 * holds that message: this is a redelivery; the new copy was dropped. */
#define MAILDIR_DUPLICATE 2

/* Create dir, dir/tmp, dir/new, dir/cur (mode 0700) as far as they are
 * missing; a directory created is made durable by an fsync of its parent.
 * Existing directories (or symlinks to directories) are fine; anything else
 * in the way is ENOTDIR.  0, or -1 with errno and *why (may be NULL). */
int maildir_create(const char *dir, char **why);

/* Names in cur/ and new/ ("BASE" or "BASE:2,FLAGS"): the length of BASE,
 * which no flag change alters; the W= size in BASE (the size with CRLF
 * line ends, which local writes), -1 if there is none; the name with flag
 * added among FLAGS in ASCII order (Maildir's rule), fresh, or NULL if it
 * has it already. */
size_t maildir_base_len(const char *name);
off_t  maildir_name_vsize(const char *name);
char  *maildir_name_with_flag(const char *name, char flag);

/* A fresh "SECONDS.M<usec>P<pid>Q<counter>.<host>" (caller frees). */
char *maildir_unique(void);

typedef struct maildir_writer maildir_writer_t;

/* Create dir/tmp/UNIQUE.  0, or -1 with errno and *why. */
int   maildir_writer_open(const char *dir, maildir_writer_t **wp, char **why);
/* Append bytes as they are.  0, or -1 with errno (sticky). */
int   maildir_writer_write(maildir_writer_t *w, const void *data, size_t len);
/* Use base (a valid Maildir base name, no '/' or ':') as the name in new/
 * instead of the unique tmp/ name, so that delivering the same message
 * twice collides: the commit then returns MAILDIR_DUPLICATE.  Call before
 * the commit; base is copied. */
void  maildir_writer_set_name(maildir_writer_t *w, const char *base);
/* Bytes written so far. */
off_t maildir_writer_size(const maildir_writer_t *w);
/* Flush, fsync, move into new/, fsync new/.  0 with *path = "dir/new/NAME"
 * (path may be NULL), MAILDIR_DUPLICATE (see maildir_writer_set_name; *path
 * names the copy already there), or -1 with errno and *why, nothing left
 * behind.
 * Either way *wp is freed and NULLed. */
int   maildir_writer_commit(maildir_writer_t **wp, char **path, char **why);
/* Group commit: writers of ONE Maildir.  Each file's data is made durable
 * (for several writers by one syncfs() of the file system, which flushes
 * the disk's cache once, instead of an fsync each), then each is moved
 * into new/, then new/ is fsynced once for all of them.  Each gets the
 * result the commit above would give (result, err, and path or why,
 * fresh); if a sync fails, every file it covered fails with it (and is
 * removed again from new/).  Every writer is freed (w NULLed). */
struct maildir_commit {
    maildir_writer_t *w;        /* in */
    int               result;   /* out: 0, MAILDIR_DUPLICATE or -1 */
    int               err;      /* out: errno for -1 */
    char             *path;     /* out: "dir/new/NAME" (0, DUPLICATE) */
    char             *why;      /* out: for -1 */
    char             *placed;   /* private: "new/NAME" */
};
void  maildir_commit_many(struct maildir_commit *c, size_t n);
/* Remove the temporary file; *wp is freed and NULLed (NULL is fine). */
void  maildir_writer_abort(maildir_writer_t **wp);

/* A source of message content: calls fn(fnctx, data, len) for each piece in
 * order and returns 0, -1 with errno, or the first non-zero value fn
 * returned (queue_content_copy() has exactly this shape). */
typedef int (*maildir_source_fn)(void *ctx, int (*fn)(void *fnctx, const void *data, size_t len),
                                 void *fnctx);

struct maildir_delivery {
    const char       *sender;       /* Return-Path; "" = <> */
    const char       *recipient;    /* Delivered-To, and the loop check */
    maildir_source_fn source;
    void             *source_ctx;
    const char       *name;         /* fixed base name in new/ (idempotent
                                       redelivery), or NULL for a unique one */
};

/* An output for maildir_convert: 0, or -1 with errno. */
typedef int (*maildir_out_fn)(void *ctx, const void *data, size_t len);

/* The message as a local mailbox gets it, to any output: Return-Path:
 * and Delivered-To: first, then the content with CRLF turned into LF and
 * its own Return-Path: fields left out, watching the header for our own
 * Delivered-To (a loop).  0, MAILDIR_LOOP
 * (output stops at the field after the loop is seen), the source's error,
 * or -1 if out failed.  (Pipe delivery runs it once with a discarding
 * output to find a loop before it starts the command.) */
int maildir_convert(const struct maildir_delivery *d, maildir_out_fn out, void *ctx);

/* Deliver one message into dir (which must exist: maildir_create).
 * 0 with *path set as for the commit; MAILDIR_LOOP (nothing written);
 * MAILDIR_DUPLICATE (d->name is already in new/; nothing written); or
 * -1 with errno and *why.  A failing source gives -1 with its errno and a
 * why that starts with "read message content". */
int maildir_deliver(const char *dir, const struct maildir_delivery *d, char **path, char **why);
/* Its first half, for a group commit: the message written into tmp/ and
 * *wp left open for maildir_commit_many.  0, MAILDIR_LOOP or -1 with errno
 * and *why, as above (nothing left behind unless 0). */
int maildir_deliver_write(const char *dir, const struct maildir_delivery *d,
                          maildir_writer_t **wp, char **why);

#endif
