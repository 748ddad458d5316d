/*
 * anvil_proto - the protocol spoken to anvil, which counts simultaneous
 * sessions per client address across all smtpd (and later submission,
 * pop3d, imapd) processes, like Postfix's anvil(8).
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
 */
#ifndef POSTHORN_ANVIL_PROTO_H
#define POSTHORN_ANVIL_PROTO_H

#define ANVIL_PROTO_NAME     "anvil"
#define ANVIL_PROTO_VERSION  1
#define ANVIL_SOCKET         "private/anvil"
#define ANVIL_TIMEOUT_MS     5000
#define ANVIL_FIELD_MAX      256

enum {
    ANVIL_CONNECT = 0x600,
    ANVIL_DISCONNECT,
    ANVIL_REPLY,
};

void anvil_proto_init(void);

/* Client calls over an open connection.  anvil_connect returns the count
 * (>= 1), or -1 with errno on an IPC failure (the caller then does
 * without a limit: availability beats strictness here). */
int anvil_connect(int sock, const char *service, const char *addr);
int anvil_disconnect(int sock, const char *service, const char *addr);

#endif
