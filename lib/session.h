/*
 * session - one client connection of a line-protocol server: what every
 * such server needs whatever its commands are (SMTP in lib/smtpserver
 * today; POP3 and IMAP are to sit on it too).
 *
 *  - the peer: its address and port from the socket ("local" for a
 *    descriptor that is not IP), and a name the protocol's policy found
 *    (session_set_name), else "unknown"; logged Postfix style as
 *    "name[addr]" (SESSION_PEER_FMT);
 *  - TLS: implicit TLS from the first byte, and STARTTLS, where
 *    session_starttls_discard() throws away whatever plaintext the client
 *    pipelined after the command, unread (RFC 3207 5, RFC 2595 3.1), before
 *    the handshake; both log the outcome;
 *  - commands: session_read_command() flushes the replies queued so far
 *    only when no pipelined input is waiting (so a pipelining client gets
 *    its replies in one go), reads one line within the line limit and the
 *    command timeout, and remembers that the session is idle meanwhile;
 *  - the error limits: session_error() counts a failed command; past the
 *    soft limit each further one is answered only after error_sleep
 *    seconds, and session_too_many_errors() tells when the hard limit is
 *    reached (the protocol then says goodbye and ends the session);
 *  - the end: session_io_failed() logs "timeout after X" or "lost
 *    connection after X" (X the last command, session->where); a SIGTERM
 *    while the session waits for a command (session_on_sigterm, async-
 *    signal-safe) sends the protocol's goodbye (session_set_goodbye:
 *    "421 4.3.2 ...", "* BYE ...") on a plaintext connection, then exits.
 *
 * One session per process at a time: the SIGTERM state is global.
 *
 * Failure modes: peer errors are STREAM_* results and log lines, never
 * fatal; out of memory is fatal.
 */
#ifndef POSTHORN_SESSION_H
#define POSTHORN_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "netaddr.h"
#include "stream.h"
#include "tls.h"

#define SESSION_PEER_FMT "%s[%s]"
#define SESSION_PEER_ARGS(s) (s)->peer.name, (s)->peer.addr_text

struct session_peer {
    bool           ip;                          /* false: "local" */
    struct netaddr addr;
    char           addr_text[NETADDR_TEXT_MAX];
    char           port[8];
    const char    *name;                        /* "unknown" or the policy's */
};

struct session_limits {
    size_t line_limit;          /* command line, terminator included */
    int    timeout_ms;          /* per command */
    long   soft_errors;         /* errors before replies slow down */
    long   hard_errors;         /* errors that end the session */
    long   error_sleep;         /* seconds, past soft_errors */
};

typedef struct session {
    stream_t            *stream;
    int                  fd;
    struct session_peer  peer;
    tls_server_t        *tls_server;    /* NULL: no TLS possible */
    tls_conn_t          *tls;           /* once a handshake succeeded */
    struct session_limits lim;
    long                 errors;
    const char          *where;         /* last command, for the end's log line */
    bool                 done;          /* end the session */
    char                *name;          /* owned copy behind peer.name */
} session_t;

/* Start a session on in_fd (and out_fd for replies, the same for a
 * socket): the stream, the limits, the peer from getpeername(). */
void session_open(session_t *s, int in_fd, int out_fd, tls_server_t *tls,
                  const struct session_limits *lim);
/* The peer's name (taken over; NULL keeps "unknown"). */
void session_set_name(session_t *s, char *name);
/* What a SIGTERM sends while the session waits for a command (copied). */
void session_set_goodbye(session_t *s, const char *text);
/* Flush the stream, free the TLS connection and everything else; the
 * descriptors stay open. */
void session_close(session_t *s);

/* The handshake, for implicit TLS or after STARTTLS's reply went out:
 * logged either way; false when it failed (end the session). */
bool session_tls_start(session_t *s, int timeout_ms);
/* STARTTLS: after the protocol's "go ahead" reply is flushed, throw away
 * plaintext the client pipelined after the command (logged as a warning).
 * Returns how many bytes. */
size_t session_starttls_discard(session_t *s, const char *command);

/* One command line into line: as stream_getline() (the length, or a
 * STREAM_* code; STREAM_TOOLONG after the rest of an over-long line was
 * read).  Replies queued so far are flushed first unless more input is
 * waiting; a flush that fails is STREAM_ERROR. */
ssize_t session_read_command(session_t *s, buf_t *line);
/* Count a failed command; past soft_errors, sleep error_sleep seconds
 * (after flushing what is queued).  urgent: count only (a goodbye). */
void session_error(session_t *s, bool urgent);
bool session_too_many_errors(const session_t *s);
/* Log the end of a session that read result n (STREAM_TIMEOUT: "timeout
 * after X", else "lost connection after X") and mark it done. */
void session_io_failed(session_t *s, ssize_t n);

/* The SIGTERM handler of a process serving sessions. */
void session_on_sigterm(int signo);

#endif
