/*
 * smtpproto - the SMTP server's command parsing (lib/smtpserver's):
 * command lines, MAIL/RCPT paths and ESMTP parameters, BDAT arguments.  The other parts of the protocol are
 * modules of their own: replies (formatting and the client's parser) in
 * lib/smtpreply, the extension bits in lib/smtpext, the DATA reader in
 * lib/smtpdata, xtext in lib/xtext.
 *
 * Pure functions over (pointer, length) input; no I/O.  Nothing here ever
 * aborts or grows without bound on peer input: every error is reported as
 * a struct smtpreply_err holding the reply code, the enhanced status code
 * and a fixed reason text (never a copy of peer data, so it is always safe
 * to send and log).
 *
 * Interface:
 *   smtpproto_parse_cmd   classify one command line (terminator included);
 *                         CRLF required, bare CR/LF -> SMTPP_E_BAD_EOL.
 *   smtpproto_parse_mail  "FROM:<path> [params]" (the argument of MAIL).
 *   smtpproto_parse_rcpt  "TO:<path> [params]" (the argument of RCPT).
 *   smtpproto_addrcmd_clear  free what a parse_mail/parse_rcpt stored.
 *   smtpproto_parse_bdat  "<size> [LAST]".
 *
 * Failure modes: all peer errors are return values; out-of-memory is fatal
 * (xalloc); only our own bugs panic.
 */
#ifndef POSTHORN_SMTPPROTO_H
#define POSTHORN_SMTPPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtpext.h"
#include "smtpreply.h"

/* Result classes.  SMTPP_OK is 0; everything else is a peer error with
 * struct smtpreply_err filled in. */
enum smtpproto_status {
    SMTPP_OK = 0,
    SMTPP_E_BAD_EOL,    /* 500 5.5.2: bare CR/LF, no CRLF, NUL in a command */
    SMTPP_E_UNKNOWN,    /* 500 5.5.1 (500 5.5.2 for an empty line) */
    SMTPP_E_SYNTAX,     /* 501 5.5.4 command syntax; 501 5.1.7 / 5.1.3 address */
    SMTPP_E_PARAM,      /* 555 5.5.4 bad / unknown / duplicate parameter */
    SMTPP_E_UTF8,       /* 553 5.6.7 non-ASCII address without SMTPUTF8 */
};

/* ---- command lines ---- */

enum smtpproto_verb {
    SMTPP_VERB_NONE = 0,    /* parse failed */
    SMTPP_VERB_EHLO, SMTPP_VERB_HELO, SMTPP_VERB_MAIL, SMTPP_VERB_RCPT,
    SMTPP_VERB_DATA, SMTPP_VERB_BDAT, SMTPP_VERB_RSET, SMTPP_VERB_NOOP,
    SMTPP_VERB_QUIT, SMTPP_VERB_VRFY, SMTPP_VERB_HELP, SMTPP_VERB_STARTTLS,
    SMTPP_VERB_AUTH,
};

struct smtpproto_cmd {
    enum smtpproto_verb verb;
    const char *name;       /* canonical upper-case verb, "" if none */
    const char *arg;        /* points into the caller's line, after "VERB " */
    size_t      arg_len;    /* without terminator and trailing SP/HTAB; 0 if none */
};

/* Parse one command line of len bytes, exactly as stream_getline() returned
 * it (terminator included).  Verbs are case-insensitive and separated from
 * their argument by one SP; trailing SP/HTAB is dropped.  Verbs that take
 * no argument (DATA RSET QUIT STARTTLS) reject one; EHLO HELO MAIL RCPT
 * BDAT VRFY AUTH require one (501 5.5.4).  Returns SMTPP_OK or an error. */
int smtpproto_parse_cmd(const char *line, size_t len, struct smtpproto_cmd *cmd,
                        struct smtpreply_err *err);

/* ---- MAIL / RCPT ---- */

/* Limits for paths and DSN values; every one a parameter.
 * SMTPPROTO_LIMITS_RFC gives RFC 5321 4.5.3.1 / RFC 3461 values. */
struct smtpproto_limits {
    size_t local_max;   /* local part as on the wire (64) */
    size_t domain_max;  /* domain incl. brackets of a literal (255) */
    size_t path_max;    /* "<" ... ">" incl. source route (256) */
    size_t envid_max;   /* ENVID xtext (100) */
    size_t orcpt_max;   /* ORCPT value incl. addr-type (500) */
};
#define SMTPPROTO_LIMITS_RFC { 64, 255, 256, 100, 500 }
/* What the server takes (smtpd, submission): RFC 5321 4.5.3.1 asks for no
 * limits "to the maximum extent possible", and real senders pass 64 in the
 * local part: bounce addresses of lists and bulk senders (VERP), and SRS
 * addresses, ours included, which hold a whole other address.  A local
 * part may be as long as the RFC's whole path, a path twice that, which
 * keeps one Authentication-Results method with smtp.mailfrom within a
 * 998-byte line.  Domains keep DNS's limit. */
#define SMTPPROTO_LIMITS_SERVER { 256, 255, 512, 100, 500 }

/* flags of parse_mail/parse_rcpt: the SMTPEXT_* bits (lib/smtpext) of the
 * extensions the server offered; parameters of an extension not among
 * them are refused with 555.  For smtpproto_parse_rcpt also SMTPP_F_UTF8:
 * the transaction's MAIL had SMTPUTF8, so UTF-8 is allowed in the address. */
#define SMTPP_F_UTF8            (1u << 16)
_Static_assert((SMTPEXT_ALL & SMTPP_F_UTF8) == 0, "SMTPEXT_* bits collide with SMTPP_F_UTF8");

/* Which parameters were given (smtpproto_params.seen). */
#define SMTPP_P_SIZE        (1u << 0)
#define SMTPP_P_BODY        (1u << 1)
#define SMTPP_P_SMTPUTF8    (1u << 2)
#define SMTPP_P_RET         (1u << 3)
#define SMTPP_P_ENVID       (1u << 4)
#define SMTPP_P_AUTH        (1u << 5)
#define SMTPP_P_NOTIFY      (1u << 6)
#define SMTPP_P_ORCPT       (1u << 7)

enum smtpproto_body { SMTPP_BODY_NONE = 0, SMTPP_BODY_7BIT, SMTPP_BODY_8BITMIME,
                      SMTPP_BODY_BINARYMIME };
enum smtpproto_ret  { SMTPP_RET_NONE = 0, SMTPP_RET_FULL, SMTPP_RET_HDRS };

#define SMTPP_NOTIFY_NEVER   (1u << 0)
#define SMTPP_NOTIFY_SUCCESS (1u << 1)
#define SMTPP_NOTIFY_FAILURE (1u << 2)
#define SMTPP_NOTIFY_DELAY   (1u << 3)

struct smtpproto_path {
    bool   null;        /* "<>" (MAIL only) */
    bool   utf8;        /* address contains non-ASCII (valid UTF-8) */
    char  *local;       /* decoded local part: quotes and quoted-pairs undone */
    char  *domain;      /* domain as given, or "[literal]"; "" for <> and <postmaster> */
    char  *addr;        /* the mailbox as on the wire, without source route; "" for <> */
};

struct smtpproto_params {
    unsigned            seen;       /* SMTPP_P_* */
    uint64_t            size;       /* SIZE; saturates at UINT64_MAX */
    enum smtpproto_body body;
    bool                smtputf8;
    enum smtpproto_ret  ret;
    char               *envid;      /* decoded xtext (printable ASCII) */
    char               *auth;       /* decoded xtext; NULL for AUTH=<> or absent */
    bool                auth_null;  /* AUTH=<> */
    unsigned            notify;     /* SMTPP_NOTIFY_* */
    char               *orcpt_type; /* addr-type as given, e.g. "rfc822" */
    char               *orcpt_addr; /* decoded xtext (printable ASCII) */
};

/* A parsed MAIL or RCPT argument.  (Still named smtp_addrcmd: it is part
 * of lib/smtpserver's policy interface that sendmail implements.) */
struct smtp_addrcmd {
    struct smtpproto_path   path;
    struct smtpproto_params params;
};

/* arg/len: the argument of MAIL (from struct smtpproto_cmd): "FROM:<path>
 * [params]".  Spaces after the colon are tolerated (like Postfix);
 * everything else is RFC 5321 strict (angle brackets required).  UTF-8 in the
 * address is allowed only if SMTPEXT_SMTPUTF8 is offered and the
 * SMTPUTF8 parameter is present.  On success out owns memory that
 * smtpproto_addrcmd_clear() frees; on error out is cleared. */
int smtpproto_parse_mail(const char *arg, size_t len, unsigned flags,
                         const struct smtpproto_limits *lim,
                         struct smtp_addrcmd *out, struct smtpreply_err *err);
/* The same for RCPT "TO:<path> [params]"; <Postmaster> (any case) without a
 * domain is accepted; SMTPP_F_UTF8 in flags allows UTF-8. */
int smtpproto_parse_rcpt(const char *arg, size_t len, unsigned flags,
                         const struct smtpproto_limits *lim,
                         struct smtp_addrcmd *out, struct smtpreply_err *err);
void smtpproto_addrcmd_clear(struct smtp_addrcmd *ac);

/* ---- BDAT ---- */

/* arg/len: "<size> [LAST]".  Returns SMTPP_OK with *size and *last, or
 * SMTPP_E_SYNTAX (also for a size that overflows 64 bits: the engine
 * cannot know how many bytes follow and should close the session). */
int smtpproto_parse_bdat(const char *arg, size_t len, uint64_t *size, bool *last,
                         struct smtpreply_err *err);

#endif
