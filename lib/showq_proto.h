/*
 * showq_proto - the protocol spoken to showq, which lists the queue for
 * users who may not read it themselves (mailq run by anyone but root).
 *
 * Socket: public/showq, reachable by root and the setgid_group (that is,
 * the sendmail program).  Protocol "showq" version 1; the client sends
 * its hello first.  Any peer uid.  One exchange per connection:
 *
 *   SHOWQ_LIST   (no fields)
 *   SHOWQ_REPLY  no fields, and an fd: a memfd holding the listing
 *                (lib/queue_list), read from offset 0 to its end
 */
#ifndef POSTHORN_SHOWQ_PROTO_H
#define POSTHORN_SHOWQ_PROTO_H

#define SHOWQ_PROTO_NAME     "showq"
#define SHOWQ_PROTO_VERSION  1
#define SHOWQ_SOCKET         "public/showq"
#define SHOWQ_TIMEOUT_MS     (30 * 1000)

enum {
    SHOWQ_LIST = 0x700,
    SHOWQ_REPLY,
};

void showq_proto_init(void);        /* register the message names */

#endif
