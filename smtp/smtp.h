/*
 * smtp.h - what the parts of the outbound SMTP client share.
 *
 * smtp.c      the service: requests from qmgr, the delivery driver (which
 *             servers, in which order, when to stop), the connection
 *             cache, the results;
 * nexthop.c   a next hop to the list of servers (RFC 5321 5.1: MX, A,
 *             AAAA, implicit MX, null MX, our own MX);
 * session.c   one SMTP session: connect, greeting, EHLO/HELO, STARTTLS,
 *             AUTH, RSET, QUIT, and reading replies;
 * trans.c     one mail transaction on a session: MAIL, RCPT, DATA/BDAT,
 *             pipelined when the server allows it;
 * content.c   the message content on the wire: CRLF line ends,
 *             dot-stuffing, BDAT chunks, the 8-bit downgrade;
 * sasl.c      the client's SASL credentials and mechanisms.
 *
 * Statuses.  Every outcome for a recipient is a struct smtp_status: a
 * class (2, 4, 5), an enhanced status code, the text for the log and the
 * DSN, and the remote reply for the DSN's Diagnostic-Code when there was
 * one, and for a delivery whether the server announced DSN (then it got
 * NOTIFY and reports success itself; otherwise qmgr reports "relayed" to a
 * sender who asked for NOTIFY=SUCCESS).  A status is "final" when no other
 * server of the next hop should be tried for that recipient.
 */
#ifndef POSTHORN_SMTP_SMTP_H
#define POSTHORN_SMTP_SMTP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "buf.h"
#include "deliver_proto.h"
#include "dns.h"
#include "mime8.h"
#include "netaddr.h"
#include "queue.h"
#include "smtpext.h"
#include "smtpreply.h"
#include "stream.h"
#include "tls.h"

/* ---------------------------------------------------------- statuses */

struct smtp_status {
    int   dsn_class;        /* 0: none yet; 2, 4, 5 */
    char  dsn[12];
    char *text;
    char *diag;             /* the remote reply (Diagnostic-Code: smtp), or NULL */
    int   relayed;          /* class 2: DELIVER_RELAYED(_DSN): did the server take DSN? */
};

void smtp_status_set(struct smtp_status *st, int dsn_class, const char *dsn, const char *diag,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void smtp_status_copy(struct smtp_status *to, const struct smtp_status *from);
void smtp_status_clear(struct smtp_status *st);

/* ---------------------------------------------------------- the request */

struct smtp_rcpt {
    const char        *address;
    const char        *orig;        /* "" = same */
    const queue_rcpt_t *qr;         /* its queue file record (NOTIFY, ORCPT) */
    bool               final;       /* decided for good */
    bool               accepted;    /* RCPT accepted in this transaction */
    struct smtp_status st;
};

struct smtp_request {
    const struct deliver_request *req;
    queue_file_t      *q;
    struct smtp_rcpt  *rcpts;
    size_t             nrcpt;
    bool               smtputf8;    /* an address of the envelope is not ASCII */
    int                eightbit;    /* the content has 8-bit octets: -1 not known yet */
    char              *relay;       /* host[addr]:port that last answered; NULL: none */
};

size_t smtp_request_left(const struct smtp_request *r);    /* recipients not final */
/* Set st on every recipient not yet final; final as given. */
void   smtp_request_fail(struct smtp_request *r, const struct smtp_status *st, bool final);

/* ---------------------------------------------------------- parameters */

enum smtp_tls_level { SMTP_TLS_NONE, SMTP_TLS_MAY, SMTP_TLS_ENCRYPT, SMTP_TLS_VERIFY,
                      SMTP_TLS_SECURE };

struct smtp_params {
    int         connect_ms, helo_ms, starttls_ms, mail_ms, rcpt_ms, data_init_ms,
                data_xfer_ms, data_done_ms, rset_ms, quit_ms;
    long long   cache_time_ms, reuse_time_ms;
    const char *helo_name;
    unsigned    port;                   /* smtp_tcp_port */
    size_t      mx_address_limit, mx_session_limit;
    bool        ipv4, ipv6;             /* inet_protocols */
    int         address_preference;     /* 0 any, 4, 6 */
    enum smtp_tls_level tls_level;
    bool        sasl;                   /* smtp_sasl_auth_enable */
    const char *myhostname;
    struct netaddr bind4, bind6;
    bool        have_bind4, have_bind6;
    struct mime8_limits mime;
};
extern struct smtp_params smtp_param;
extern dns_t *smtp_dns;
extern tls_client_t *smtp_tls;

/* ---------------------------------------------------------- next hop */

struct nexthop_addr {
    char                    *host;  /* as in the MX record, or the address text */
    unsigned                 pref;
    struct sockaddr_storage  sa;
    socklen_t                salen;
    char                     addr[NETADDR_TEXT_MAX];
};

struct nexthop {
    char                *domain;    /* the name asked for (or the address) */
    bool                 mx;        /* found through MX (or implicit MX) */
    unsigned             port;
    struct nexthop_addr *addrs;
    size_t               naddrs;
};

/* Split "domain", "domain:port", "[host]", "[host]:port" ("[IPv6:...]"
 * too).  0, or -1 with *why. */
int  nexthop_parse(const char *spec, unsigned default_port, char **host, unsigned *port,
                   bool *mx, const char **why);
/* Is this address one of ours (inet_interfaces)? */
void nexthop_own_init(void);
bool nexthop_is_own(const struct netaddr *na);
/* Resolve spec into nh.  0, or -1 with the failure in *fail and *site
 * set when the destination failed as a whole (DNS trouble). */
int  nexthop_resolve(const char *spec, struct nexthop *nh, struct smtp_status *fail, bool *site);
void nexthop_free(struct nexthop *nh);
/* Port by number or by the few service names a next hop uses. */
int  nexthop_port(const char *s, unsigned *port);

/* ---------------------------------------------------------- sessions */

struct smtp_reply {
    int   code;
    char  dsn[SMTPREPLY_DSN_MAX + 1];
    char *text;             /* every line, "550-..." joined by " " */
};

typedef struct session {
    stream_t            *st;
    smtpreply_parser_t  *rp;
    buf_t               *in;        /* bytes read but not parsed yet */
    char                *host;
    char                 addr[NETADDR_TEXT_MAX];
    unsigned             port;
    char                *namaddr;   /* host[addr] */
    char                *relay;     /* host[addr]:port */
    char                *nexthop;   /* the destination it was opened for */
    struct smtpext_caps  caps;
    bool                 esmtp;
    tls_conn_t          *tls;
    long long            started_ms;
    bool                 usable;    /* in sync and idle: may be reused */
    struct smtp_reply    reply;     /* the last one read */
    const struct smtpreply *parsed; /* the same, until the next read */
} session_t;

enum session_err { SESS_OK = 0, SESS_LOST = -1, SESS_TIMEOUT = -2, SESS_PROTO = -3 };

/* Connect to a, receive the greeting, EHLO (HELO), STARTTLS as the TLS
 * level asks, AUTH when configured.  The session, or NULL with the
 * failure in *st (every failure here is one of the server as a whole);
 * *answered (freed and set) names the server when it said anything. */
session_t *session_open(const struct nexthop *nh, const struct nexthop_addr *a,
                        const char *nexthop, struct smtp_status *st, char **answered);
/* RSET on an idle session before it is used again: 0 if it answered 250. */
int  session_rset(session_t *s);
/* QUIT (when usable) and close. */
void session_close(session_t **sp);

/* Send a command line (without CRLF); buffered until session_flush or a
 * read. */
int  session_send(session_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int  session_flush(session_t *s, int timeout_ms);
/* Read one reply into s->reply within timeout_ms: SESS_OK or an error
 * (*why: a reason for SESS_PROTO). */
int  session_read(session_t *s, int timeout_ms, const char **why);
/* The status for a failed step: err from session_read/send (or SESS_OK
 * with the reply in s->reply), while doing what ("sending RCPT TO"), in
 * reply to which command ("RCPT TO"). */
void session_error(session_t *s, int err, const char *why, const char *doing,
                   const char *command, struct smtp_status *st);

/* ---------------------------------------------------------- transactions */

/* One mail transaction for every recipient of r not final yet.  final:
 * this is the last server to try, so a 4xx is final too.  The recipients
 * get their statuses; s->usable says whether the session can go on. */
void trans_run(session_t *s, struct smtp_request *r, bool final);

/* ---------------------------------------------------------- content */

/* Does the content hold 8-bit octets?  1, 0, or -1 (queue file error). */
int  content_is_8bit(const queue_file_t *q);
enum content_mode { CONTENT_DATA, CONTENT_BDAT };
/* Send the content: after the 354 (DATA: stuffed, ending in ".") or as
 * BDAT chunks (pipelined: replies read at the end).  downgrade: convert
 * 8-bit MIME parts.  Returns SESS_OK with the final reply in s->reply
 * (DATA: the caller reads it; BDAT: read here), or a session error with
 * *doing set; -4 for a queue file error (the session is then closed). */
#define CONTENT_QUEUE_ERR (-4)
int  content_send(session_t *s, const queue_file_t *q, enum content_mode mode, bool downgrade,
                  bool pipelining, const char **doing, const char **why);

/* ---------------------------------------------------------- SASL */

/* Read smtp_sasl_password_maps (before the chroot). */
void sasl_init(void);
/* Authenticate s when credentials exist for nexthop or s->host: 0 (done,
 * or nothing to do), or -1 with the failure in *st. */
int  sasl_authenticate(session_t *s, const char *nexthop, struct smtp_status *st);

#endif
