/*
 * check_proto - the protocol spoken to checkd, the confined service that
 * checks inbound mail with SPF, DKIM and DMARC (checkd(8)).
 *
 * Socket: private/checkd.  Protocol "checkd" version 1 over the ipc
 * framing; the client sends its hello first.  Allowed peers:
 * network_user (smtpd) and root.  smtpd opens a connection when a session
 * first needs a check and closes it when the session ends; one request at
 * a time, any number in sequence.  Every answer is a result: a DNS
 * failure, a timeout or a message that cannot be parsed is a temperror
 * or permerror inside the reply, never a missing reply.
 *
 *   CHECK_SPF -> CHECK_SPF_RESULT
 *     str client_addr (IPv4/IPv6 text), str helo, str sender ("" = <>)
 *     The SPF result of MAIL FROM (RFC 7208; of postmaster@helo for <>),
 *     so that smtpd can refuse a fail at RCPT (spf_reject_fail).
 *   CHECK_SPF_RESULT
 *     int result (CHECK_SPF_*), str domain, str comment
 *
 *   CHECK_MESSAGE -> CHECK_MESSAGE_RESULT
 *     str client_addr, str helo, str sender, str rcpt_domain (the first
 *     recipient's domain, for the DMARC report; "" if none), int
 *     content_len; fd: the message (a memfd, CRLF lines, from offset 0).
 *     SPF (the result of an earlier CHECK_SPF on this connection with the
 *     same client, HELO and sender is reused), DKIM of every signature,
 *     DMARC on the From: domain.
 *   CHECK_MESSAGE_RESULT
 *     int dmarc (CHECK_DMARC_*), int disposition (CHECK_DISPOSITION_*:
 *     what the sender's policy asks, pct applied), str policy_domain ("" if
 *     no policy), str auth_results (the Authentication-Results field's
 *     value, RFC 8601, one line, starting with the authserv-id; cleanup
 *     folds it, lib/authres), str comment (a short reason for logs and the
 *     refusal text).
 *
 * The code here encodes and decodes both directions; decoders check every
 * field and its bounds and return -1 on anything malformed (the caller
 * drops the peer).
 */
#ifndef POSTHORN_CHECK_PROTO_H
#define POSTHORN_CHECK_PROTO_H

#include <stdint.h>

#include "ipc.h"

#define CHECK_PROTO_NAME     "checkd"
#define CHECK_PROTO_VERSION  1
#define CHECK_SOCKET         "private/checkd"
#define CHECK_FIELD_MAX      1024            /* client_addr, helo, sender, domains */
#define CHECK_TEXT_MAX       (64 * 1024)     /* auth_results, comment */
#define CHECK_MAX_PAYLOAD    (CHECK_TEXT_MAX * 2 + 4 * CHECK_FIELD_MAX + 256)

enum {
    CHECK_SPF = 0xa00,
    CHECK_SPF_RESULT,
    CHECK_MESSAGE,
    CHECK_MESSAGE_RESULT,
};

/* SPF results (RFC 7208 2.6); the same order as lib/spfcheck's. */
enum check_spf {
    CHECK_SPF_NONE, CHECK_SPF_NEUTRAL, CHECK_SPF_PASS, CHECK_SPF_FAIL, CHECK_SPF_SOFTFAIL,
    CHECK_SPF_TEMPERROR, CHECK_SPF_PERMERROR,
};
#define CHECK_SPF_LAST CHECK_SPF_PERMERROR

/* DMARC results (RFC 8601 2.7.7) and what the policy asks. */
enum check_dmarc {
    CHECK_DMARC_NONE, CHECK_DMARC_PASS, CHECK_DMARC_FAIL, CHECK_DMARC_TEMPERROR,
    CHECK_DMARC_PERMERROR,
};
#define CHECK_DMARC_LAST CHECK_DMARC_PERMERROR
enum check_disposition {
    CHECK_DISPOSITION_NONE, CHECK_DISPOSITION_QUARANTINE, CHECK_DISPOSITION_REJECT,
};
#define CHECK_DISPOSITION_LAST CHECK_DISPOSITION_REJECT

struct check_spf_request {
    char *client_addr;
    char *helo;
    char *sender;
};

struct check_spf_result {
    int   result;           /* enum check_spf */
    char *domain;
    char *comment;
};

struct check_message_request {
    char    *client_addr;
    char    *helo;
    char    *sender;
    char    *rcpt_domain;
    uint64_t content_len;
    int      content_fd;    /* -1 if none; owned */
};

struct check_message_result {
    int   dmarc;            /* enum check_dmarc */
    int   disposition;      /* enum check_disposition */
    char *policy_domain;
    char *auth_results;
    char *comment;
};

void check_proto_init(void);                    /* register message names */

const char *check_spf_name(int result);         /* "pass", ...; "?" if out of range */
const char *check_dmarc_name(int result);
const char *check_disposition_name(int disposition);

/* Encoders (the message owns nothing of the caller's; CHECK_MESSAGE's fd
 * is dup'ed) and decoders (fresh strings; -1 on a malformed message). */
ipc_msg_t *check_spf_request_encode(const struct check_spf_request *r);
int        check_spf_request_decode(ipc_msg_t *m, struct check_spf_request *r);
void       check_spf_request_clear(struct check_spf_request *r);
ipc_msg_t *check_spf_result_encode(const struct check_spf_result *r);
int        check_spf_result_decode(ipc_msg_t *m, struct check_spf_result *r);
void       check_spf_result_clear(struct check_spf_result *r);

ipc_msg_t *check_message_request_encode(const struct check_message_request *r);
int        check_message_request_decode(ipc_msg_t *m, struct check_message_request *r);
void       check_message_request_clear(struct check_message_request *r);
ipc_msg_t *check_message_result_encode(const struct check_message_result *r);
int        check_message_result_decode(ipc_msg_t *m, struct check_message_result *r);
void       check_message_result_clear(struct check_message_result *r);

/* Client calls: send the request and read its result on sock within
 * timeout_ms.  0, or -1 with errno (EPROTO for a malformed reply). */
int check_spf(int sock, const struct check_spf_request *r, struct check_spf_result *res,
              int timeout_ms);
int check_message(int sock, const struct check_message_request *r,
                  struct check_message_result *res, int timeout_ms);

#endif
