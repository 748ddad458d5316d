/*
 * pop3d.h - what the two halves of pop3d share: the reply helpers, the
 * CAPA list, the command line's shape, and the session limits.
 */
#ifndef POSTHORN_POP3D_H
#define POSTHORN_POP3D_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "event.h"
#include "postlogin.h"
#include "session.h"

/* RFC 2449 4: a command is at most 255 octets; SASL-IR initial responses
 * (RFC 5034 4) and long passwords make it more in practice. */
#define POP3_LINE_MAX       1024
/* A SASL answer: base64 of auth_proto's largest datum, and CRLF. */
#define POP3_AUTH_LINE_MAX  16400
#define POP3_IMPLEMENTATION "Posthorn"
/* The mail half's socket as the login half sees it from its jail. */
#define POP3_MAIL_SOCKET    "/pop3"

/* A command: the keyword upper-cased, and what follows one space. */
struct pop3_cmd {
    char        name[8];
    const char *arg;            /* NULL: no argument */
};

/* Parse line (terminator already removed, NUL-terminated): 0, or -1 for
 * a line that holds no command keyword. */
int  pop3_parse(char *line, struct pop3_cmd *cmd);
/* Read one command into line (terminator stripped): its length, or a
 * STREAM_* code (STREAM_TOOLONG answered already). */
ssize_t pop3_read_command(session_t *s, buf_t *line);
/* Drop the CR and LF that end a line read with its terminator. */
void pop3_strip_eol(buf_t *line);
void pop3_ok(session_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pop3_err(session_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A failed command: -ERR text, counted (slowed down past the soft limit,
 * the session ended at the hard one). */
void pop3_fail(session_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The CAPA reply; the login half adds its state's lines in extra
 * (NULL-terminated). */
void pop3_capa(session_t *s, const char *const *extra);
void pop3_limits(struct session_limits *lim);

/* The login half (login.c). */
void pop3_login_pre_init(void);
void pop3_login_post_init(event_loop_t *loop);
void pop3_login_serve(int fd);

/* The mail half's session process (transaction.c). */
void pop3_mail_serve(const struct postlogin_session *ps, int home_ok);

#endif
