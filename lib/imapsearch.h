/*
 * imapsearch - IMAP SEARCH (RFC 3501 6.4.4, RFC 9051 6.4.4): the search
 * keys compiled into a program and evaluated one message at a time through
 * callbacks, so that this module knows nothing of the mailbox store or of
 * MIME.  Also the IMAP date forms imapd needs elsewhere (APPEND's
 * date-time, INTERNALDATE).
 *
 * imapsearch_compile() takes the arguments after "SEARCH" (or "UID
 * SEARCH") as lib/imapparse.h left them:
 *   [RETURN (opts)] [CHARSET name] key...
 *  - RETURN (RFC 4731 ESEARCH, RFC 9051) only when o->allow_return: MIN,
 *    MAX, ALL, COUNT, SAVE (RFC 5182) in any case and order; "RETURN ()"
 *    means ALL.  imapsearch_return() gives them back.
 *  - CHARSET: the search strings are converted from it to UTF-8 with
 *    iconv(3); UTF-8 and US-ASCII are taken as UTF-8 as they are.  An
 *    unknown charset is -2, for NO [BADCHARSET (UTF-8 US-ASCII)].  With
 *    o->utf8_mode (UTF8=ACCEPT enabled) a CHARSET other than UTF-8 or
 *    US-ASCII is BAD (-1), as RFC 6855 3 says.  Without CHARSET the
 *    strings are taken as UTF-8 (US-ASCII is a subset).
 *  - Every key of RFC 3501 and RFC 9051, names in any case: ALL ANSWERED
 *    BCC BEFORE BODY CC DELETED DRAFT FLAGGED FROM HEADER KEYWORD LARGER
 *    NEW NOT OLD ON OR RECENT SEEN SENTBEFORE SENTON SENTSINCE SINCE
 *    SMALLER SUBJECT TEXT TO UID UNANSWERED UNDELETED UNDRAFT UNFLAGGED
 *    UNKEYWORD UNSEEN, a sequence set (lib/imapseq.h; "$" is the SEARCHRES
 *    result) and a parenthesized list (all of its keys).  Keys in a row
 *    all have to match.
 *  - Arguments: a string is an atom, a quoted string, a literal or NIL
 *    (the string "NIL"); a date (1-Feb-1994) an atom or a quoted string; a
 *    number (LARGER, SMALLER) digits up to 2^63-1 (RFC 9051 number64); a
 *    keyword an atom (KEYWORD \Seen and the other system flags test the
 *    flag; another "\..." is BAD).
 *  - Bounds: lists, NOT and OR nested at most max_depth deep (a chain "OR
 *    a OR b OR c d" counts once: it is compiled as one OR of four), at
 *    most max_keys keys in all.
 * Refusals are -1 with a static reason for the BAD reply (unknown search
 * key, missing argument, bad date, bad number, bad sequence set, ...).
 *
 * Matching (imapsearch_match):
 *  - Strings: substring, case-insensitive: both sides are decoded as UTF-8
 *    and each code point folded by a fixed table (simple lower case of
 *    ASCII, Latin-1, Latin Extended-A and Additional, Greek with final
 *    sigma as sigma, Cyrillic, Armenian, fullwidth Latin, Roman numerals,
 *    circled letters; the Kelvin and Angstrom signs and dotted capital I
 *    fold too), the same in every locale.  Octets that are not UTF-8 are
 *    compared as they are.  An empty string matches every message that
 *    has the field: HEADER name "" is "has the header", BODY "" and TEXT ""
 *    match all.
 *  - BEFORE, ON, SINCE compare the date of the internal date as the
 *    client sees it in INTERNALDATE, that is in the internal date's own
 *    time zone (internal_tz_minutes): RFC 3501 says "disregarding time and
 *    timezone", and this is what Dovecot does.  A caller without a stored
 *    zone returns the server's local offset for that time, which makes
 *    this the server's local date.
 *  - SENTBEFORE, SENTON, SENTSINCE compare the date written in the Date:
 *    header (its own zone; RFC 5322 syntax with the obsolete forms: no
 *    day name, two- and three-digit years, seconds left out, comments,
 *    UT/GMT/EST.../military zones).  A message without a Date: field or
 *    with one that does not parse is compared by its internal date, as
 *    Dovecot does, so that every message has a sent date.
 *  - "$" (in a set or in UID $) is the saved result, given as a sorted
 *    array of UIDs; with no saved result it names nothing.
 *  - Cheap keys are tried first and AND, OR, NOT stop as soon as the
 *    answer is known: flags, keywords, size, sequence numbers and UIDs,
 *    then the internal date, then header fields, then the body, then the
 *    whole text.  "UNSEEN BODY x" never reads the body of a seen message.
 *  - A program caches its sets resolved for the last "*" it saw, so a
 *    program is used by one thread at a time.
 *
 * Dates: imap_parse_date() reads a SEARCH date ("1-Feb-1994", quotes
 * allowed) into the midnight UTC that starts it; imap_parse_datetime()
 * APPEND's date-time ("17-Jul-1996 02:44:25 -0700", quotes allowed, the
 * day as "17", " 7" or "07") into a time and the zone's offset;
 * imap_format_datetime() appends INTERNALDATE's form, quotes included;
 * imapsearch_parse_msgdate() reads an RFC 5322 Date: value.
 *
 * Failure modes: compile refuses with -1 (BAD) or -2 (BADCHARSET), never
 * fatal but out of memory; match returns -1 when a callback could not read
 * the message (it vanished), and that message is then no answer.
 */
#ifndef POSTHORN_IMAPSEARCH_H
#define POSTHORN_IMAPSEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"
#include "imapparse.h"

/* Message flags, as ops->flags() returns them. */
#define IMAPSEARCH_F_SEEN       0x01u
#define IMAPSEARCH_F_ANSWERED   0x02u
#define IMAPSEARCH_F_FLAGGED    0x04u
#define IMAPSEARCH_F_DELETED    0x08u
#define IMAPSEARCH_F_DRAFT      0x10u
#define IMAPSEARCH_F_RECENT     0x20u

/* RETURN options (RFC 4731, RFC 5182). */
#define IMAPSEARCH_RET_MIN      0x01u
#define IMAPSEARCH_RET_MAX      0x02u
#define IMAPSEARCH_RET_ALL      0x04u
#define IMAPSEARCH_RET_COUNT    0x08u
#define IMAPSEARCH_RET_SAVE     0x10u

/* What the program may read (imapsearch_needs). */
#define IMAPSEARCH_NEED_HEADER  0x01u   /* ops->header (HEADER, FROM..., SENT*) */
#define IMAPSEARCH_NEED_BODY    0x02u   /* ops->body (BODY) */
#define IMAPSEARCH_NEED_TEXT    0x04u   /* ops->text (TEXT) */
#define IMAPSEARCH_NEED_SAVED   0x08u   /* "$": pass the saved result */

/* Defaults of the limits in struct imapsearch_opts (0 there). */
#define IMAPSEARCH_MAX_DEPTH    100
#define IMAPSEARCH_MAX_KEYS     10000

/* Supplied by the caller; msg is its opaque message handle.  All are
 * called only when a key needs them. */
struct imapsearch_msg_ops {
    uint32_t (*seq)(void *msg);
    uint32_t (*uid)(void *msg);
    unsigned (*flags)(void *msg);                   /* IMAPSEARCH_F_* */
    bool     (*has_keyword)(void *msg, const char *kw);  /* case-insensitive */
    uint64_t (*size)(void *msg);                    /* RFC822.SIZE */
    time_t   (*internal_date)(void *msg);
    int      (*internal_tz_minutes)(void *msg);     /* its zone, east of UTC */
    /* The decoded UTF-8 values of the header fields called name (case-
     * insensitive; several fields joined by "\n"; NULL name: the whole
     * header decoded, which this module does not ask for).  0 with *text
     * and *len valid until the next call on this msg, *text NULL when
     * there is no such field; -1 when the message cannot be read (it
     * vanished). */
    int (*header)(void *msg, const char *name, const char **text, size_t *len);
    int (*body)(void *msg, const char **text, size_t *len);  /* decoded body (BODY) */
    int (*text)(void *msg, const char **text, size_t *len);  /* header + body (TEXT) */
};

typedef struct imapsearch imapsearch_t;

struct imapsearch_opts {
    bool     utf8_mode;         /* UTF8=ACCEPT enabled (RFC 6855) */
    bool     allow_return;      /* ESEARCH / IMAP4rev2: RETURN (...) */
    unsigned max_depth;         /* 0: IMAPSEARCH_MAX_DEPTH */
    unsigned max_keys;          /* 0: IMAPSEARCH_MAX_KEYS */
};

/* args: the arguments after "SEARCH" (or "UID SEARCH"), not kept; o NULL
 * for the defaults (no UTF-8 mode, no RETURN).  0 with *out; -1
 * BAD with *why (static); -2 unknown charset (NO [BADCHARSET]), *why set. */
int  imapsearch_compile(const struct imap_arg *args, size_t nargs,
                        const struct imapsearch_opts *o, imapsearch_t **out,
                        const char **why);
void imapsearch_free(imapsearch_t **sp);
/* IMAPSEARCH_RET_* as given (RETURN () is ALL); 0 without RETURN, which
 * *has_return (may be NULL) tells from RETURN (). */
unsigned imapsearch_return(const imapsearch_t *s, bool *has_return);
/* IMAPSEARCH_NEED_* of every key in the program (short-circuits may skip
 * some for a message). */
unsigned imapsearch_needs(const imapsearch_t *s);
/* One message: star_seq and star_uid are "*" (the highest sequence number
 * and UID; 0 for an empty mailbox), saved_uids the SEARCHRES result sorted
 * ascending.  1 match, 0 not, -1 a callback failed. */
int  imapsearch_match(const imapsearch_t *s, const struct imapsearch_msg_ops *ops,
                      void *msg, uint32_t star_seq, uint32_t star_uid,
                      const uint32_t *saved_uids, size_t nsaved);

/* "1-Feb-1994" -> *day, the midnight UTC that starts it.  0 or -1. */
int  imap_parse_date(const char *s, time_t *day);
/* "17-Jul-1996 02:44:25 -0700" -> *t (UTC) and *tz_minutes (-420).  0 or -1. */
int  imap_parse_datetime(const char *s, time_t *t, int *tz_minutes);
/* Appends "\"17-Jul-1996 02:44:25 -0700\"": t shown in the zone tz_minutes. */
void imap_format_datetime(buf_t *out, time_t t, int tz_minutes);
/* An RFC 5322 date-time (obsolete forms too; the time may be missing: 0:00,
 * the zone too: +0000) of len octets -> *t (UTC), *tz_minutes.  0 or -1. */
int  imapsearch_parse_msgdate(const char *s, size_t len, time_t *t, int *tz_minutes);

#endif
