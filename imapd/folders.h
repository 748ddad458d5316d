/*
 * folders.h - the user's folder tree (folders.c): Maildir++ under
 * ~/Maildir, as Dovecot and Courier lay it out, so that either can be
 * swapped for imapd on an existing mail store.
 *
 *  - INBOX is ~/Maildir; every other folder is a Maildir named "." plus
 *    its IMAP name, the hierarchy delimiter being "." too:
 *    "Archive.2026" is ~/Maildir/.Archive.2026.  Names are kept on disk
 *    in modified UTF-7, as IMAP4rev1 clients spell them (Dovecot's
 *    default); a UTF8=ACCEPT client's UTF-8 names are converted;
 *  - a parent that has no folder of its own ("Archive" when only
 *    .Archive.2026 exists) is listed \Noselect;
 *  - Sent, Drafts, Trash, Junk and Archive are made on the user's first
 *    login and carry their SPECIAL-USE attributes (RFC 6154);
 *  - subscriptions: ~/Maildir/subscriptions, one name per line, as
 *    Dovecot's first format has it; Dovecot's second ("V\t2" first, the
 *    levels of a name separated by tabs) is read too, and written back in
 *    the first.
 */
#ifndef POSTHORN_IMAPD_FOLDERS_H
#define POSTHORN_IMAPD_FOLDERS_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define FOLDER_DELIM '.'

struct folder {
    char    *name;          /* IMAP name, modified UTF-7; "INBOX" */
    bool     selectable;    /* a Maildir of its own */
    bool     children;
    bool     subscribed;
};

void folders_first_login(void);
/* A name from a client: its IMAP name as kept (*name) and its directory
 * (*path).  -1 with *why for the NO reply. */
int  folder_resolve(const char *given, bool utf8, char **name, char **path, const char **why);
/* A name to a client (utf8: decoded from modified UTF-7), as a string. */
void folder_put_name(buf_t *out, const char *name, bool utf8);
/* "\\Sent" and so on, or NULL. */
const char *folder_special_use(const char *name);
/* Every folder, parents without a folder included, sorted, INBOX first. */
size_t folders_list(struct folder **out);
void   folders_free(struct folder *f, size_t n);
bool   folder_exists(const char *path);
int    folder_create(const char *name, const char *path, const char **why);
int    folder_delete(const char *name, const char *path, const char **why);
int    folder_rename(const char *from, const char *from_path, const char *to,
                     const char *to_path, const char **why);
/* Subscriptions. */
bool   folder_is_subscribed(const char *name);
int    folder_subscribe(const char *name, bool on);
char **folder_subscriptions(size_t *n);
/* LIST's pattern match ('*' anything, '%' anything but the delimiter;
 * INBOX in any case). */
bool   folder_match(const char *pattern, const char *name);

#endif
