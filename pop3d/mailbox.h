/*
 * mailbox.h - a POP3 session's view of the user's Maildir (mailbox.c).
 */
#ifndef POSTHORN_POP3_MAILBOX_H
#define POSTHORN_POP3_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "stream.h"

#define POP3_UIDL_MAX 70        /* RFC 1939 7 */
#define POP3_LOCK_FILE "posthorn-pop3.lock"

struct pop3_msg {
    char  *name;                /* the file's name in its directory */
    size_t base_len;            /* the unique part: name[0, base_len) */
    bool   in_new;              /* new/ (else cur/) */
    off_t  size;                /* octets as sent: CRLF line ends */
    char   uidl[POP3_UIDL_MAX + 1];
    bool   deleted;
    bool   retrieved;           /* RETR: gets the Seen flag at QUIT */
};

struct pop3_box {
    int              dirfd, newfd, curfd, lockfd;
    struct pop3_msg *msgs;
    size_t           n;
};

enum { BOX_OK = 0, BOX_ERROR = -1, BOX_IN_USE = -2 };

/* Open the Maildir path (relative to the home directory, where the
 * process is; created when missing), take the one-session lock, and list
 * its messages.  BOX_OK, BOX_IN_USE, or BOX_ERROR with *why (static). */
int  box_open(struct pop3_box *b, const char *path, const char **why);
void box_close(struct pop3_box *b);
/* Send message m (dot-stuffed, CRLF line ends, the terminating "."),
 * only its header and the first body_lines lines of its body when
 * body_lines >= 0 (TOP).  0; -1 when the file cannot be read (nothing
 * sent; *why for the client); -2 when the client's stream failed. */
int  box_send(struct pop3_box *b, struct pop3_msg *m, long body_lines, stream_t *out,
              const char **why);
/* The UPDATE state: unlink the deleted messages, give the retrieved ones
 * the Seen flag (new/ -> cur/NAME:2,S), and make both durable.  0, or -1
 * when some could not be (logged). */
int  box_update(struct pop3_box *b, size_t *deleted);

#endif
