/*
 * client.h - one IMAP connection in a user's process, and the commands.
 *
 * client.c reads commands without ever blocking the process (the other
 * sessions of the user go on meanwhile), runs them, queues the replies
 * and writes them as the client takes them; a command with much to say
 * (FETCH of many messages) is resumed as the output drains, so a session
 * holds a bounded amount of memory whatever it asks for.  Before each
 * tagged reply it tells the session what changed in its mailbox
 * (EXPUNGE, EXISTS, RECENT, FETCH FLAGS), within RFC 9051 7's rules.
 */
#ifndef POSTHORN_IMAPD_CLIENT_H
#define POSTHORN_IMAPD_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "event.h"
#include "imapparse.h"
#include "imapseq.h"
#include "mailbox.h"
#include "postlogin.h"

enum imap_state { IMAP_AUTH, IMAP_SELECTED };

/* Mailbox names in UTF-8: UTF8=ACCEPT (RFC 6855) or IMAP4rev2 enabled. */
#define CLIENT_UTF8_NAMES(c) ((c)->utf8 || (c)->rev2)

struct imap_client;

/* A command that goes on after its first call (FETCH of many messages):
 * step() is called again whenever the output has drained; it returns
 * true when it is finished (it wrote the tagged reply). */
struct imap_job {
    bool (*step)(struct imap_client *c, struct imap_job *job);
    void (*free)(struct imap_job *job);
};

struct imap_client {
    struct imap_client *next;
    int                 fd;
    char               *peer;           /* "[addr]" for the log */
    buf_t              *in, *out;
    imapparse_t        *parser;
    size_t              literal_need;   /* literal octets the parser waits for */
    uint64_t            skip;           /* octets of a refused literal to throw away */
    bool                skip_line;      /* the rest of an over-long line */
    bool                in_command;     /* the parser holds part of a command */
    bool                refused_literal;  /* the command's literal was refused */
    enum imap_state     state;
    struct imap_view   *view;
    bool                idling;
    char               *idle_tag;
    struct imap_job    *job;
    bool                closing;        /* write what is queued, then close */
    bool                utf8;           /* ENABLE UTF8=ACCEPT */
    bool                rev2;           /* ENABLE IMAP4rev2 */
    long                errors;
    event_timer_t      *timer;
    event_timer_t      *wake_timer;     /* updates due in IDLE */
    uint32_t           *saved;          /* SEARCHRES: the last SAVE, UIDs ascending */
    size_t              nsaved;
    const char         *tag;            /* of the command running */
    bool                uid_cmd;        /* it is a UID command */
};

/* client.c */
void client_start(event_loop_t *loop, const struct postlogin_session *ps);
size_t client_count(void);
void client_shutdown_all(const char *why);
void client_wake(void *ctx);                         /* a view's wake hook */
void client_tagged(struct imap_client *c, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void client_bad(struct imap_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Tell the session what changed in its mailbox; EXPUNGE only when
 * allowed (not during FETCH, STORE, SEARCH other than their UID forms). */
void client_send_updates(struct imap_client *c, bool expunges);
void client_unselect(struct imap_client *c);
/* NO for a mailbox mbox_open() could not open (why: its reason): one
 * that does not exist is [TRYCREATE] where the client may create it
 * (APPEND, COPY, MOVE), else [NONEXISTENT]. */
void client_open_failed(struct imap_client *c, const char *why, bool trycreate);
/* FLAGS and PERMANENTFLAGS again if the mailbox has keywords the session
 * was not told of: before any reply that may show them. */
void client_announce_keywords(struct imap_client *c);

/* Sequence sets of a command against the session's view: the messages
 * it names, as view indexes (seq - 1), ascending; *n of them.  -1 BAD
 * (*why). */
int client_resolve_set(struct imap_client *c, const struct imap_arg *a, bool uid,
                       uint32_t **idx, size_t *n, const char **why);

/* The argument helpers: an astring's text (NULL if it is not one). */
const char *arg_astring(const struct imap_arg *a);
bool arg_is_atom(const struct imap_arg *a, const char *word);

/* cmd_auth.c: commands of the authenticated state (and any state). */
void cmd_capability(struct imap_client *c, const struct imap_command *cmd);
void cmd_noop(struct imap_client *c, const struct imap_command *cmd);
void cmd_logout(struct imap_client *c, const struct imap_command *cmd);
void cmd_id(struct imap_client *c, const struct imap_command *cmd);
void cmd_enable(struct imap_client *c, const struct imap_command *cmd);
void cmd_namespace(struct imap_client *c, const struct imap_command *cmd);
void cmd_select(struct imap_client *c, const struct imap_command *cmd);
void cmd_create(struct imap_client *c, const struct imap_command *cmd);
void cmd_delete(struct imap_client *c, const struct imap_command *cmd);
void cmd_rename(struct imap_client *c, const struct imap_command *cmd);
void cmd_subscribe(struct imap_client *c, const struct imap_command *cmd);
void cmd_list(struct imap_client *c, const struct imap_command *cmd);
void cmd_status(struct imap_client *c, const struct imap_command *cmd);
void cmd_append(struct imap_client *c, const struct imap_command *cmd);
void cmd_idle(struct imap_client *c, const struct imap_command *cmd);

/* cmd_select.c: commands of the selected state. */
void cmd_check(struct imap_client *c, const struct imap_command *cmd);
void cmd_close(struct imap_client *c, const struct imap_command *cmd);
void cmd_expunge(struct imap_client *c, const struct imap_command *cmd);
void cmd_store(struct imap_client *c, const struct imap_command *cmd);
void cmd_copy(struct imap_client *c, const struct imap_command *cmd);
void cmd_search(struct imap_client *c, const struct imap_command *cmd);

/* fetch.c */
void cmd_fetch(struct imap_client *c, const struct imap_command *cmd);

#endif
