/*
 * ipc - framed, typed messages over AF_UNIX stream sockets.
 *
 * One framing for every internal protocol (DESIGN.md §3).  A frame is a
 * 16-byte header in network byte order
 *     uint32 type | uint32 payload length | uint32 request id | uint32 flags
 * followed by the payload: a sequence of typed fields, each a one-byte tag
 *     'i' int64 (8 bytes, network order)
 *     's' string: uint32 length + bytes (no NUL on the wire; must not contain NUL)
 *     'b' bytes:  uint32 length + bytes
 * At most one file descriptor travels with a frame (SCM_RIGHTS, received
 * with MSG_CMSG_CLOEXEC); the flag IPC_FLAG_FD in the header says it is there.
 *
 * Readers pull fields in order with ipc_get_*(); a wrong tag, a short field
 * or a missing field returns -1 and ipc_get_end() returns -1 unless the
 * payload was consumed exactly.  Nothing here aborts on peer input: every
 * malformed frame is an error return (errno EPROTO, EMSGSIZE for a frame over
 * the receiver's limit), and the caller drops that peer (a peer error).
 *
 * The first frame on a connection is a hello (IPC_HELLO) carrying protocol
 * name and version; ipc_hello_recv() rejects a different protocol or major
 * version.  ipc_peer_uid() reads SO_PEERCRED; ipc_peer_check() compares it.
 *
 * Message types are small integers chosen by each protocol; ipc_type_name()
 * gives the name the logs use, from tables registered with
 * ipc_register_names().  Type 0 is reserved for IPC_HELLO.
 *
 * Sockets are used in blocking mode with a deadline: ipc_recv() and
 * ipc_send() wait at most the timeout given (ms, -1 = forever) and fail
 * with errno ETIMEDOUT.  A service that serves many clients from one event
 * loop never waits for one of them: it reads with an ipc_reader (whatever
 * has arrived, frames completed in any number of pieces), through
 * lib/ipcconn.
 */
#ifndef POSTHORN_IPC_H
#define POSTHORN_IPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

#define IPC_HELLO          0u
#define IPC_HEADER_SIZE    16
#define IPC_FLAG_FD        0x1u
#define IPC_MAX_PAYLOAD    (1u << 20)   /* default receive limit */

typedef struct ipc_msg {
    uint32_t type;
    uint32_t reqid;
    uint32_t flags;
    buf_t   *payload;
    size_t   rpos;      /* read position in payload */
    int      fd;        /* -1 = none; owned by the message */
} ipc_msg_t;

struct ipc_name {
    uint32_t    type;
    const char *name;
};

ipc_msg_t *ipc_msg_new(uint32_t type, uint32_t reqid);
void       ipc_msg_free(ipc_msg_t **mp);          /* closes m->fd if set */

void ipc_put_int(ipc_msg_t *m, int64_t v);
void ipc_put_str(ipc_msg_t *m, const char *s);
void ipc_put_bytes(ipc_msg_t *m, const void *p, size_t len);
void ipc_set_fd(ipc_msg_t *m, int fd);            /* message takes ownership */
int  ipc_take_fd(ipc_msg_t *m);                   /* caller takes ownership; -1 if none */

/* Each returns 0 or -1 (wrong tag, truncated, NUL inside a string) with
 * errno EPROTO; on failure the read position does not move and the outputs
 * are cleared (0, NULL, 0).  Strings are returned as fresh NUL-terminated
 * copies (caller frees); bytes point into the payload and live as long as
 * the message (a zero-length field gives a non-NULL pointer). */
int ipc_get_int(ipc_msg_t *m, int64_t *v);
int ipc_get_str(ipc_msg_t *m, char **s);
int ipc_get_bytes(ipc_msg_t *m, const void **p, size_t *len);
int ipc_get_end(const ipc_msg_t *m);              /* 0 iff payload consumed exactly */

/* 0 on success, -1 with errno (EPIPE, ETIMEDOUT, ...).  Never raises SIGPIPE.
 * IPC_FLAG_FD is set in the header iff m->fd >= 0 (the fd stays owned by m);
 * other flag bits in m->flags are a bug (panic).  timeout_ms 0 means one
 * non-blocking attempt.  After a failure the stream is unusable. */
int ipc_send(int sock, const ipc_msg_t *m, int timeout_ms);
/* 1 with *mp set, 0 at a clean EOF before any byte of a frame, -1 with errno
 * (EPROTO bad header or truncated frame, EMSGSIZE payload over max_payload,
 * ETIMEDOUT); *mp is NULL unless 1 is returned.  EPROTO also covers unknown
 * flag bits, IPC_FLAG_FD without an fd, an fd without the flag, more than one
 * fd, or an fd not on the header; any fd that came with a bad frame is closed.
 * One deadline covers the whole frame.  After -1 the stream is out of sync
 * (an oversize frame is not skipped): drop the peer. */
int ipc_recv(int sock, ipc_msg_t **mp, size_t max_payload, int timeout_ms);

/* Receiving without waiting, for a server that serves many peers from one
 * event loop: whatever the socket holds now is added to the frame in
 * progress, so a peer that sends half a frame and stops holds nobody up.
 * ipc_reader_recv() returns 1 with *mp set (a whole frame), 0 at a clean
 * EOF between frames, or -1 with errno: EAGAIN when the frame is not
 * complete yet (call again when the socket is readable), else as
 * ipc_recv() (drop the peer).  A reader serves one socket. */
typedef struct ipc_reader ipc_reader_t;
ipc_reader_t *ipc_reader_new(size_t max_payload);
int           ipc_reader_recv(ipc_reader_t *r, int sock, ipc_msg_t **mp);
void          ipc_reader_free(ipc_reader_t **rp);     /* with any partial frame */

int ipc_hello_send(int sock, const char *proto, int version, int timeout_ms);
/* 0 if the peer's hello names proto with the same version; -1 otherwise
 * (errno EPROTO), with a message for the log in *why (static string). */
int ipc_hello_recv(int sock, const char *proto, int version, int timeout_ms, const char **why);
/* The same check on a hello frame already received: 0, or -1 (EPROTO)
 * with *why. */
int ipc_hello_check(const ipc_msg_t *hello, const char *proto, int version, const char **why);

/* Client side of a connection: connect to path, send our hello, read the
 * server's.  Returns the socket, or -1 with errno (ECONNREFUSED/ENOENT: the
 * service is not there; EPROTO: it speaks another protocol or version) and
 * a static reason in *why (may be NULL). */
int ipc_client_open(const char *path, const char *proto, int version, int timeout_ms,
                    const char **why);
/* Server side: check the peer's uid (root, or one of the nuids in uids),
 * read its hello, answer with ours.  0, or -1 with *why for the log (the
 * caller drops the peer). */
int ipc_server_hello(int sock, const char *proto, int version, const uid_t *uids,
                     size_t nuids, int timeout_ms, const char **why);

/* The peer's credentials as of connect() (socketpair: its creator); uid or
 * pid may be NULL. */
int ipc_peer_uid(int sock, uid_t *uid, pid_t *pid);
/* 0 if the peer runs as root or one of the nuids in uids; -1 with errno
 * EPERM if not, another errno if its credentials cannot be read.  *peer
 * (if not NULL) gets its uid whenever that was read. */
int ipc_peer_allowed(int sock, const uid_t *uids, size_t nuids, uid_t *peer);
/* 0 if the peer runs as uid (or as root); -1 and errno EPERM otherwise. */
int ipc_peer_check(int sock, uid_t uid);
/* A kept client connection to a server that never speaks unasked (cleanup):
 * is it readable now, i.e. closed by the server (or broken)?  Then the
 * caller closes it and opens another before its next request. */
int ipc_idle_closed(int sock);

/* A process-wide registry (not thread-safe); names are copied.  Registering a
 * type again under another name replaces it with a warning, so protocols
 * used in one process should use disjoint type numbers.  Type 0 is always
 * "hello" (registering it panics). */
void        ipc_register_names(const struct ipc_name *names, size_t n);
/* "type-17" if unknown, in a static buffer overwritten by the next such call. */
const char *ipc_type_name(uint32_t type);

/* Connect to a UNIX socket path (blocking, close-on-exec); -1 with errno on
 * failure (ENAMETOOLONG if the path does not fit sun_path). */
int ipc_connect(const char *path);
/* Create, bind and listen on a UNIX socket path (removing a stale one, but
 * only if it is a socket), with the given mode (set via umask during bind,
 * so not thread-safe; never a chmod by path); -1 with errno on failure. */
int ipc_listen(const char *path, mode_t mode, int backlog);

#endif
