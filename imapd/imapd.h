/*
 * imapd.h - what the parts of imapd share.
 *
 * imapd is two programs in one (see imapd.c): the login half (login.c)
 * and the mail half, one process per user (user.c) that serves all of
 * that user's connections (client.c, the commands in cmd_*.c) over one
 * shared view of each mailbox (mailbox.c over the persistent index,
 * index.c; the folder tree is folders.c).
 */
#ifndef POSTHORN_IMAPD_H
#define POSTHORN_IMAPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"
#include "event.h"
#include "imapparse.h"
#include "postlogin.h"

#define IMAP_IMPLEMENTATION "Posthorn"
/* The mail half's socket as the login half sees it from its jail. */
#define IMAP_MAIL_SOCKET    "/imap"

/* System flags kept with a message (\Recent is a session's, not here). */
#define IMAP_F_SEEN      0x01
#define IMAP_F_ANSWERED  0x02
#define IMAP_F_FLAGGED   0x04
#define IMAP_F_DELETED   0x08
#define IMAP_F_DRAFT     0x10
#define IMAP_F_ALL       0x1f
#define IMAP_F_RECENT    0x20   /* only in a session's view of flags */

/* ---------------------------------------------------------- common.c */

/* The capabilities after login (one line, no prefix). */
void imap_capability_auth(buf_t *out);
/* APPENDLIMIT (RFC 7889): message_size_limit, or IMAP_APPEND_MAX when
 * that is 0 (no limit) or more. */
#define IMAP_APPEND_MAX (1LL << 30)
long long imap_append_limit(void);
/* A string as IMAP wants it: an atom-safe quoted string, or a literal
 * when it holds CR, LF, NUL, 8-bit octets (unless utf8) or '"'/'\\' in
 * a way quoting cannot carry. */
void imap_put_string(buf_t *out, const char *s, size_t len, bool utf8);
void imap_put_nstring(buf_t *out, const char *s);    /* NULL: NIL */
/* The flag list "(\Seen \Deleted kw ...)" of flags and keyword names. */
void imap_put_flags(buf_t *out, unsigned flags, const char *const *kw, size_t nkw);
/* "\Seen" etc. <-> IMAP_F_*: 0 when it is not a system flag. */
unsigned imap_flag_bit(const char *name);
/* Is this a valid keyword (atom, not a system flag)? */
bool imap_keyword_ok(const char *kw);

/* ------------------------------------------------------------ login.c */

void imap_login_pre_init(void);
void imap_login_post_init(event_loop_t *loop);
void imap_login_serve(int fd);

/* ------------------------------------------------------------- user.c */

/* The user's process (lib/postlogin per-user mode). */
void imap_user_serve(const struct postlogin_session *ps, int home_ok);

#endif
