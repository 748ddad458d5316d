/*
 * local.h - what local's parts share: the parent (local.c, the root
 * spawner that talks to qmgr, and alias.c, its alias expansion), the
 * delivery child (deliver.c, which becomes the recipient and writes the
 * Maildir; forward.c, which reads ~/.forward as the recipient) and
 * include.c (reading :include: files with the right privileges).
 *
 * The parent resolves a request into a struct local_target and forks; the
 * child runs deliver_child() and reports one result record per target on
 * a pipe:
 *     class digit '2'|'4'|'5' NUL  dsn NUL  text NUL  detail NUL
 * text goes to qmgr (and into a bounce), detail only into the parent's log
 * (e.g. the path of the file delivered).  The parent parses the records with
 * deliver_result_parse() as they come; once there is one a target, the run
 * is over; EOF before that, or a malformed record, means the child died.
 * A kept child (deliver_child's job_fd) then waits for its next run.
 */
#ifndef POSTHORN_LOCAL_H
#define POSTHORN_LOCAL_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "buf.h"
#include "srs.h"

#define LOCAL_FILE_MAX   (1024 * 1024)  /* ~/.forward, an :include: file */
#define LOCAL_MAX_DEPTH  20             /* nested aliases and :include: files */
/* A result class besides 2, 4 and 5: the child found ~/.forward; the text
 * is its flattened target list (one target a line, :include: files
 * already read, as the user) for the parent to expand.  Written as 'F' in
 * the record. */
#define DELIVER_FORWARD          9
#define DELIVER_FORWARD_LIST_MAX (256 * 1024)
#define DELIVER_TEXT_MAX         2048   /* text and detail of other results */
#define LOCAL_RESULT_MAX         (DELIVER_FORWARD_LIST_MAX + DELIVER_TEXT_MAX + 16)

struct local_target {
    const char *queue_id;
    const char *sender;             /* "" = <> */
    const char *recipient;          /* for Delivered-To: and the loop check */
    const char *user;               /* the account */
    uid_t       uid;
    gid_t       gid;
    const gid_t *groups;            /* all of the user's groups (getgrouplist) */
    size_t      ngroups;
    const char *home;               /* absolute */
    const char *mailbox;            /* home_mailbox, relative to home; ends in '/' */
    const char *target;             /* non-NULL: "|command" or "/file" instead of the mailbox */
    int         no_forward;         /* do not look at ~/.forward */
    int         queue_fd;           /* read-only */
};

/* alias.c: the accounts that get mail for a local part.  0 with
 * users[0..nusers) (at least one), or -1 with dsn_class 4/5, dsn and text
 * (fresh).  Free with alias_result_free() either way. */
struct alias_result {
    char      **users;
    int        *no_forward;         /* per user: deliver to the mailbox, skip ~/.forward */
    size_t      nusers;
    char      **targets;            /* |command and /file targets, with that prefix */
    char      **target_users;      /* the account each one runs as */
    size_t      ntargets;
    int         dsn_class;
    const char *dsn;
    char       *text;
};
int  alias_expand(const char *local, struct alias_result *res);
/* The same for the targets of user's ~/.forward, owned by uid: list is
 * forward_read()'s, one target a line, without :include: (read already). */
int  alias_expand_forward(const char *user, uid_t uid, const char *list, struct alias_result *res);
void alias_result_free(struct alias_result *res);
/* Split an alias value into targets at commas outside double quotes; each
 * one trimmed, quotes removed, handed to fn (which may modify it).  Stops
 * at and returns fn's first nonzero result. */
int  alias_split(const char *value, int (*fn)(void *ctx, char *target), void *ctx);
/* The same for a file's text: each line (white space first skipped; '#'
 * comment lines and empty ones left out) split as above. */
int  alias_split_lines(const char *text, int (*fn)(void *ctx, char *target), void *ctx);

/* include.c: read path with the privileges of as_uid (see include.c). */
int include_read(uid_t as_uid, const char *path, const uid_t *owners, size_t nowners,
                 buf_t **text, struct stat *st, char **why);

/* forward.c, in the delivery child: 0 no ~/.forward to follow, 1 with
 * *list (fresh) its flattened targets; other outcomes end the child. */
int forward_read(const struct local_target *t, char **list);

/* account.c: a recipient's account as the parent needs it. */
struct local_account {
    char   *name;               /* pw_name */
    char   *home;               /* pw_dir, or NULL */
    uid_t   uid;
    gid_t   gid;
    gid_t  *groups;             /* getgrouplist(); NULL if too many */
    size_t  ngroups;
    int     too_many_groups;
};
/* 1 with *a (valid until the next call), 0 no such account, -1 the lookup
 * failed (errno).  Answers are remembered for a few seconds (account.c). */
int account_lookup(const char *name, const struct local_account **a);


/* local.c: SRS (lib/srs.h), loaded as root at start-up (srs_load):
 * NULL when it is off; local_srs_error then says why although srs_enable
 * is on (the secret file cannot be used: forwards that need a rewrite
 * defer), else it is NULL.  deliver_child() wipes the secrets in every
 * child but one that forwards. */
extern srs_t *local_srs;
extern char *local_srs_error;

/* In the child after fork(): deliver targets[0..n) and _exit(), writing
 * one result record per target, in order.  n > 1 only for mailbox
 * deliveries of one account (no target, the same no_forward): they are
 * written and committed together (maildir_commit_many).  With job_fd >= 0
 * (mailbox deliveries of an account other than root), a run that ends
 * normally is followed by the next one the parent sends on job_fd, until
 * EOF there.  It writes LOCAL_PROC_WAITS after the run's records when it
 * waits (a child that exits does not), and the parent sends a run only
 * then: one LOCAL_JOB_FRAME a target (request id: its index), with
 *     i count of targets in the run | s queue id | s sender | s recipient
 *     | i no_forward
 * and the queue file's descriptor; the account is the first run's.  Never
 * returns. */
#define LOCAL_JOB_FRAME        1u
#define LOCAL_JOB_RUN_MAX      1000 /* jobs in a run: local_delivery_batch_limit's most */
#define LOCAL_PROC_WAITS       'W'  /* on the result pipe after a run: "send the next" */
#define LOCAL_JOB_MAX_PAYLOAD  (65536 + 64)    /* all a request from qmgr may hold, and more */
_Noreturn void deliver_child(const struct local_target *targets, size_t n, int result_fd,
                             int job_fd);
/* write() all of data: 0, or -1 with errno. */
int deliver_write_all(int fd, const void *data, size_t len);
/* In the child: report this result for every target that has none yet,
 * and _exit(0). */
_Noreturn void deliver_exit(int dsn_class, const char *dsn, const char *text, const char *detail);

/* Parse the record at the start of data; 0 with *used its length and fresh
 * strings (caller frees), 1 if it is not whole yet, or -1 if malformed
 * (strings NULL unless 0). */
int deliver_result_parse(const char *data, size_t len, size_t *used, int *dsn_class, char **dsn,
                         char **text, char **detail);

#endif
