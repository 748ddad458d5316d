/*
 * anvil_proto - the protocol spoken to anvil, which counts simultaneous
 * sessions per client address across all smtpd (and later submission,
 * pop3d, imapd) processes, and events per key and time window (a login's
 * messages per hour), like Postfix's anvil(8).
 *
 * Socket: private/anvil.  Protocol "anvil" version 1; the client sends its
 * hello first.  Allowed peers: network_user, login_user, mail_owner, root.
 * Each client process keeps one connection; when it closes (the process
 * exited or was killed) every session it registered is released, so the
 * counts can never leak.
 *
 *   ANVIL_CONNECT     str service, str client address -> ANVIL_REPLY
 *                     int count: sessions from that address to that
 *                     service now, this one included
 *   ANVIL_DISCONNECT  str service, str client address (no reply)
 *   ANVIL_RATE        str service, str key, int amount (0..ANVIL_AMOUNT_MAX),
 *                     int window (seconds, 1..ANVIL_WINDOW_MAX) -> ANVIL_REPLY
 *                     int count: the amounts added under that key since
 *                     its window began, this one included; a window
 *                     begins with the first event after the last one
 *                     ended.  The counts live in anvil's memory only: a
 *                     restart of anvil starts them from zero.
 */
#ifndef POSTHORN_ANVIL_PROTO_H
#define POSTHORN_ANVIL_PROTO_H

#define ANVIL_PROTO_NAME     "anvil"
#define ANVIL_PROTO_VERSION  1
#define ANVIL_SOCKET         "private/anvil"
#define ANVIL_TIMEOUT_MS     5000
#define ANVIL_FIELD_MAX      256
#define ANVIL_AMOUNT_MAX     1000000
#define ANVIL_WINDOW_MAX     (7 * 24 * 3600)

enum {
    ANVIL_CONNECT = 0x600,
    ANVIL_DISCONNECT,
    ANVIL_REPLY,
    ANVIL_RATE,
};

void anvil_proto_init(void);

/* Client calls over an open connection.  anvil_connect returns the count
 * (>= 1), or -1 with errno on an IPC failure (the caller then does
 * without a limit: availability beats strictness here). */
int anvil_connect(int sock, const char *service, const char *addr);
int anvil_disconnect(int sock, const char *service, const char *addr);
/* The count of key's window after adding amount, or -1 with errno. */
long long anvil_rate(int sock, const char *service, const char *key, int amount,
                     int window_s);

#endif
