/*
 * smtpproto - SMTP protocol parsing shared by smtpd, submission and the
 * outbound smtp client: command lines, MAIL/RCPT paths and ESMTP
 * parameters, BDAT arguments, reply formatting and the DATA reader.
 *
 * Pure functions over (pointer, length) input; no I/O.  Nothing here ever
 * aborts or grows without bound on peer input: every error is reported as
 * a struct smtpproto_err holding the reply code, the enhanced status code
 * and a fixed reason text (never a copy of peer data, so it is always safe
 * to send and log).  A panic means a caller bug (bad reply code, feeding a
 * finished DATA reader).
 *
 * Interface:
 *   smtpproto_parse_cmd   classify one command line (terminator included);
 *                         CRLF required, bare CR/LF -> SMTPP_E_BAD_EOL.
 *   smtpproto_parse_mail  "FROM:<path> [params]" (the argument of MAIL).
 *   smtpproto_parse_rcpt  "TO:<path> [params]" (the argument of RCPT).
 *   smtpproto_addrcmd_clear  free what a parse_mail/parse_rcpt stored.
 *   smtpproto_parse_bdat  "<size> [LAST]".
 *   smtpproto_xtext_decode  RFC 3461 xtext.
 *   smtpproto_reply, smtpproto_replyf, smtpproto_reply_err
 *                         append a (multi-line) reply to a buf_t; text
 *                         is sanitised (no CR, LF or other controls).
 *   smtp_data_init / smtp_data_set_sink / smtp_data_feed /
 *   smtp_data_feed_toolong / smtp_data_result   the DATA reader.
 *
 * Bare CR / bare LF rule for DATA (ONE rule, see smtpproto.c): the end of
 * data is only a line that is exactly ".\r\n" and follows a line that ended
 * in CRLF (the DATA command itself counts as one).  Any line that ends in a
 * bare LF, or contains a CR that is not part of its final CRLF, makes the
 * message invalid: the reader stops storing, keeps consuming until the real
 * CRLF.CRLF, and smtp_data_result() then reports 550 5.6.0.  So "\n.\n",
 * "\n.\r\n", "\r\n.\n", "\r.\r" and friends never end the data.
 *
 * Failure modes: all peer errors are return values; out-of-memory is fatal
 * (xalloc); only caller bugs panic.
 */
#ifndef POSTHORN_SMTPPROTO_H
#define POSTHORN_SMTPPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Result classes.  SMTPP_OK is 0; everything else is a peer error with
 * struct smtpproto_err filled in. */
enum smtpproto_status {
    SMTPP_OK = 0,
    SMTPP_E_BAD_EOL,    /* 500 5.5.2: bare CR/LF, no CRLF, NUL in a command */
    SMTPP_E_UNKNOWN,    /* 500 5.5.1 (500 5.5.2 for an empty line) */
    SMTPP_E_SYNTAX,     /* 501 5.5.4 command syntax; 501 5.1.7 / 5.1.3 address */
    SMTPP_E_PARAM,      /* 555 5.5.4 bad / unknown / duplicate parameter */
    SMTPP_E_UTF8,       /* 553 5.6.7 non-ASCII address without SMTPUTF8 */
};

struct smtpproto_err {
    int         code;   /* 500, 501, 553, 555, ... */
    const char *dsn;    /* "5.5.4" */
    const char *text;   /* fixed reason, no peer data */
};

/* ---- command lines ---- */

enum smtp_verb {
    SMTP_VERB_NONE = 0,     /* parse failed */
    SMTP_VERB_EHLO, SMTP_VERB_HELO, SMTP_VERB_MAIL, SMTP_VERB_RCPT,
    SMTP_VERB_DATA, SMTP_VERB_BDAT, SMTP_VERB_RSET, SMTP_VERB_NOOP,
    SMTP_VERB_QUIT, SMTP_VERB_VRFY, SMTP_VERB_HELP, SMTP_VERB_STARTTLS,
    SMTP_VERB_AUTH,
};

struct smtp_cmd {
    enum smtp_verb verb;
    const char *name;       /* canonical upper-case verb, "" if none */
    const char *arg;        /* points into the caller's line, after "VERB " */
    size_t      arg_len;    /* without terminator and trailing SP/HTAB; 0 if none */
};

/* Parse one command line of len bytes, exactly as stream_getline() returned
 * it (terminator included).  Verbs are case-insensitive and separated from
 * their argument by one SP; trailing SP/HTAB is dropped.  Verbs that take
 * no argument (DATA RSET QUIT STARTTLS) reject one; EHLO HELO MAIL RCPT
 * BDAT VRFY AUTH require one (501 5.5.4).  Returns SMTPP_OK or an error. */
int smtpproto_parse_cmd(const char *line, size_t len, struct smtp_cmd *cmd,
                        struct smtpproto_err *err);

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

/* Extensions the server offered (or, for the client, the peer offered):
 * parameters of an extension not in this mask are refused with 555. */
#define SMTPP_EXT_SIZE          (1u << 0)
#define SMTPP_EXT_8BITMIME      (1u << 1)
#define SMTPP_EXT_BINARYMIME    (1u << 2)
#define SMTPP_EXT_SMTPUTF8      (1u << 3)
#define SMTPP_EXT_DSN           (1u << 4)
#define SMTPP_EXT_AUTH          (1u << 5)
#define SMTPP_EXT_ALL           0x3fu
/* For smtpproto_parse_rcpt: the transaction's MAIL had SMTPUTF8, so UTF-8
 * is allowed in the address. */
#define SMTPP_F_UTF8            (1u << 16)

/* Which parameters were given (smtp_params.seen). */
#define SMTPP_P_SIZE        (1u << 0)
#define SMTPP_P_BODY        (1u << 1)
#define SMTPP_P_SMTPUTF8    (1u << 2)
#define SMTPP_P_RET         (1u << 3)
#define SMTPP_P_ENVID       (1u << 4)
#define SMTPP_P_AUTH        (1u << 5)
#define SMTPP_P_NOTIFY      (1u << 6)
#define SMTPP_P_ORCPT       (1u << 7)

enum smtp_body { SMTP_BODY_NONE = 0, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME,
                 SMTP_BODY_BINARYMIME };
enum smtp_ret  { SMTP_RET_NONE = 0, SMTP_RET_FULL, SMTP_RET_HDRS };

#define SMTP_NOTIFY_NEVER   (1u << 0)
#define SMTP_NOTIFY_SUCCESS (1u << 1)
#define SMTP_NOTIFY_FAILURE (1u << 2)
#define SMTP_NOTIFY_DELAY   (1u << 3)

struct smtp_path {
    bool   null;        /* "<>" (MAIL only) */
    bool   utf8;        /* address contains non-ASCII (valid UTF-8) */
    char  *local;       /* decoded local part: quotes and quoted-pairs undone */
    char  *domain;      /* domain as given, or "[literal]"; "" for <> and <postmaster> */
    char  *addr;        /* the mailbox as on the wire, without source route; "" for <> */
};

struct smtp_params {
    unsigned       seen;        /* SMTPP_P_* */
    uint64_t       size;        /* SIZE; saturates at UINT64_MAX */
    enum smtp_body body;
    bool           smtputf8;
    enum smtp_ret  ret;
    char          *envid;       /* decoded xtext (printable ASCII) */
    char          *auth;        /* decoded xtext; NULL for AUTH=<> or absent */
    bool           auth_null;   /* AUTH=<> */
    unsigned       notify;      /* SMTP_NOTIFY_* */
    char          *orcpt_type;  /* addr-type as given, e.g. "rfc822" */
    char          *orcpt_addr;  /* decoded xtext (printable ASCII) */
};

struct smtp_addrcmd {
    struct smtp_path   path;
    struct smtp_params params;
};

/* arg/len: the argument of MAIL (from struct smtp_cmd): "FROM:<path>
 * [params]".  Spaces after the colon are tolerated (like Postfix);
 * everything else is RFC 5321 strict (angle brackets required).  UTF-8 in the
 * address is allowed only if SMTPP_EXT_SMTPUTF8 is offered and the
 * SMTPUTF8 parameter is present.  On success out owns memory that
 * smtpproto_addrcmd_clear() frees; on error out is cleared. */
int smtpproto_parse_mail(const char *arg, size_t len, unsigned flags,
                         const struct smtpproto_limits *lim,
                         struct smtp_addrcmd *out, struct smtpproto_err *err);
/* The same for RCPT "TO:<path> [params]"; <Postmaster> (any case) without a
 * domain is accepted; SMTPP_F_UTF8 in flags allows UTF-8. */
int smtpproto_parse_rcpt(const char *arg, size_t len, unsigned flags,
                         const struct smtpproto_limits *lim,
                         struct smtp_addrcmd *out, struct smtpproto_err *err);
void smtpproto_addrcmd_clear(struct smtp_addrcmd *ac);

/* RFC 3461 xtext: decode len bytes into a fresh NUL-terminated string
 * (*outp, caller frees, length in *out_len if not NULL).  Returns 0, or -1
 * if the input is not xtext (bad char, "+" without two upper-case hex
 * digits) or decodes to a NUL byte. */
int smtpproto_xtext_decode(const char *s, size_t len, char **outp, size_t *out_len);

/* ---- BDAT ---- */

/* arg/len: "<size> [LAST]".  Returns SMTPP_OK with *size and *last, or
 * SMTPP_E_SYNTAX (also for a size that overflows 64 bits: the engine
 * cannot know how many bytes follow and should close the session). */
int smtpproto_parse_bdat(const char *arg, size_t len, uint64_t *size, bool *last,
                         struct smtpproto_err *err);

/* ---- replies ---- */

/* Longest reply line we emit, CRLF included (RFC 5321 4.5.3.1.5). */
#define SMTPPROTO_REPLY_LINE_MAX 512

/* Append "CODE-DSN text\r\n" ... "CODE DSN text\r\n" for n lines (n == 0:
 * one line with no text).  dsn may be NULL.  Control characters (CR and LF
 * included) in text become '?', and a line is cut to
 * SMTPPROTO_REPLY_LINE_MAX.  code must be 200..599 (panic otherwise).
 * Returns 0, or -1 if out's limit was hit (out is then unchanged). */
int smtpproto_reply(buf_t *out, int code, const char *dsn,
                    const char *const *lines, size_t n);
int smtpproto_replyf(buf_t *out, int code, const char *dsn, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int smtpproto_reply_err(buf_t *out, const struct smtpproto_err *err);

/* ---- the DATA reader ---- */

#define SMTP_DATA_BAD_EOL    (1u << 0)  /* bare CR or LF seen */
#define SMTP_DATA_TOOBIG     (1u << 1)  /* content exceeded size_limit (or out's limit) */
#define SMTP_DATA_LONGLINE   (1u << 2)  /* a line exceeded line_max */
#define SMTP_DATA_SINKERR    (1u << 3)  /* the sink callback failed */

/* Sink for streaming content: returns 0, or -1 to stop (reported 451). */
typedef int (*smtp_data_sink_fn)(void *ctx, const char *data, size_t len);

struct smtp_data {
    buf_t            *out;          /* content goes here (if no sink) */
    smtp_data_sink_fn sink;
    void             *sink_ctx;
    uint64_t          size_limit;   /* content bytes; 0 = no limit */
    size_t            line_max;     /* wire line incl. CRLF; 0 = no limit */
    uint64_t          size;         /* content bytes seen (after unstuffing) */
    uint64_t          lines;        /* lines fed */
    unsigned          flags;        /* SMTP_DATA_* */
    bool              prev_crlf;    /* previous line ended in CRLF */
    bool              done;         /* end of data seen */
};

/* Start reading one message's data after the "354".  out may be NULL if a
 * sink is set.  Content is stored as received (CRLF line ends kept), with
 * dot-stuffing undone; the final ".\r\n" is not content. */
void smtp_data_init(struct smtp_data *d, buf_t *out, uint64_t size_limit,
                    size_t line_max);
void smtp_data_set_sink(struct smtp_data *d, smtp_data_sink_fn fn, void *ctx);
/* Feed one line exactly as stream_getline() returned it.  Returns 1 at the
 * end of data (the line was ".\r\n"), 0 for more.  Never fails: problems
 * are remembered in d->flags (visible at once, so an engine may choose to
 * drop an abusive peer early) and reported by smtp_data_result(). */
int  smtp_data_feed(struct smtp_data *d, const char *line, size_t len);
/* stream_getline() said STREAM_TOOLONG: the line was thrown away, its
 * ending unknown.  It is treated as over-long and as not CRLF-terminated
 * (safe: a following ".\r\n" does not end the data).  The engine should
 * read with a max_len above line_max so this is only hit by abuse. */
void smtp_data_feed_toolong(struct smtp_data *d);
/* After the end: SMTPP_OK (0) if the message may be accepted, otherwise -1
 * with err filled (451 4.3.0 sink, 550 5.6.0 bare CR/LF, 552 5.3.4
 * too big, 550 5.6.0 line too long, in that order of precedence). */
int  smtp_data_result(const struct smtp_data *d, struct smtpproto_err *err);

#endif
