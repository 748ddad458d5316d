/*
 * user.h - the user's process of imapd's mail half (user.c): who it
 * serves, and where that user's mail is.
 */
#ifndef POSTHORN_IMAPD_USER_H
#define POSTHORN_IMAPD_USER_H

/* The login name, for the log. */
const char *user_name(void);
/* The INBOX directory: HOME/home_mailbox (absolute, no trailing slash). */
const char *user_maildir(void);
/* A connection ended (client.c). */
void user_client_gone(void);

#endif
