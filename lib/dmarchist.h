/*
 * dmarchist - the DMARC history: one line per checked message, written by
 * checkd into $queue_directory/dmarc/ and read back by the daily report
 * job (mailctl dmarc report) to build the aggregate reports of RFC 7489
 * section 7.2.  Both directions live here, so the format has one owner.
 *
 * The file of a UTC day is "history-YYYYMMDD" (the day of row->when).  A
 * line is
 *
 *   v1 t=WHEN ip=ADDR hf=D ef=D et=D pd=D p=W sp=W pct=N adkim=r|s aspf=r|s
 *      fo=X rua=X disp=W dkima=0|1 spfa=0|1 reason=W spfd=D spfs=W spfr=W
 *      [dkim=D=S=W]...
 *
 * on one line, fields separated by one space and the line ended by LF.
 * The "v1" first says which format; a reader refuses other versions.
 * String values (D, S, X) are xtext (lib/xtext: "+", "=", space and
 * anything that is not printable ASCII become "+HH"), so a value never
 * holds a space or an "=", and the empty string is an empty value
 * ("et=").  Words (W) and numbers are written as they are.  A dkim value
 * is domain, selector and result joined by "=".  The writer puts the
 * fields in the order above; the reader takes them in any order, but each
 * (other than dkim) exactly once.
 *
 * What a row may hold (checked alike when writing and when reading, so
 * the reader accepts exactly what the writer writes):
 *   when          0 .. 253402300799 (the end of year 9999)
 *   source_ip     an IPv4 or IPv6 address (inet_pton)
 *   header_from, policy_domain, dkim domain
 *                 1..253 of [A-Za-z0-9._-]
 *   envelope_from, envelope_to, spf_domain, dkim selector
 *                 the same, or empty
 *   p, sp, disposition   none quarantine reject
 *   pct           0..100;  adkim, aspf  'r' or 's'
 *   fo            up to 32 printable ASCII characters (may be empty)
 *   rua           up to 512 characters of printable ASCII or space
 *   dkim_aligned, spf_aligned  0 or 1
 *   reason        "" or forwarded sampled_out trusted_forwarder
 *                 mailing_list local_policy other
 *   spf_scope     mfrom helo;  spf_result  none neutral pass fail
 *                 softfail temperror permerror
 *   dkim result   none pass fail policy neutral temperror permerror
 *   ndkim         at most DMARCHIST_MAX_DKIM when read
 *
 * Size: a line is at most DMARCHIST_LINE_MAX bytes with its LF, which is
 * PIPE_BUF, so appends by concurrent checkd processes, each one write()
 * on an O_APPEND descriptor, never interleave.  With the limits above a
 * row without DKIM results always fits (about 3,300 bytes at most).  The
 * writer writes at most DMARCHIST_MAX_DKIM DKIM results, and drops more
 * from the end while the line would be longer than DMARCHIST_LINE_MAX
 * (only possible with very long domain names); what it dropped is gone
 * from the report's auth_results, while dkim_aligned still says whether
 * an aligned signature passed.
 *
 * Interface:
 *   dmarchist_append(dirfd, row, &error)     checkd: one row, one write();
 *       the day's file stays open for the next row (one per process)
 *       while it keeps its name and one link
 *   dmarchist_append_close()                 close that file (tests)
 *   dmarchist_read(fd, path, fn, warn, ctx)  the report job: every valid
 *       row to fn; each bad line reported through warn as "PATH:LINE:
 *       reason" and skipped
 *   dmarchist_row_check(row, &error)         is a row writable?
 *   dmarchist_row_clear(row)                 free what a row holds
 *   dmarchist_file_name(when, name)          "history-YYYYMMDD"
 *
 * Failure modes: a row that breaks the rules, or a file that cannot be
 * opened or written whole, is -1 from dmarchist_append() with a static
 * reason (errno set for system errors; a short write is EIO or ENOSPC).
 * The reader treats the file as untrusted input (a sandboxed process
 * wrote it): bounded line length, every field checked, no crash on any
 * bytes; a read error is -1 with errno.  Out-of-memory is fatal (xalloc).
 */
#ifndef POSTHORN_DMARCHIST_H
#define POSTHORN_DMARCHIST_H

#include <stddef.h>

#define DMARCHIST_MAX_DKIM     8
#define DMARCHIST_LINE_MAX     4096     /* PIPE_BUF on Linux, LF included */
#define DMARCHIST_FILE_PREFIX  "history-"

struct dmarchist_dkim {
    char *domain, *selector, *result;   /* RFC 7489 DKIMResultType words */
};

struct dmarchist_row {
    long long   when;              /* unix time of the check */
    char       *source_ip;
    char       *header_from;       /* RFC5322.From domain */
    char       *envelope_from;     /* RFC5321.MailFrom domain, "" for <> */
    char       *envelope_to;       /* the first recipient's domain, or "" */
    char       *policy_domain;     /* where the DMARC record was found */
    char       *p, *sp;            /* published: none quarantine reject */
    int         pct;
    char        adkim, aspf;       /* 'r' or 's' */
    char       *fo;                /* published fo ("" if none) */
    char       *rua;               /* the record's rua value as published */
    char       *disposition;       /* applied: none quarantine reject */
    int         dkim_aligned, spf_aligned;   /* DMARC-aligned pass (1) or fail (0) */
    char       *reason;            /* "" or a PolicyOverrideType */
    char       *spf_domain, *spf_scope, *spf_result;
    size_t      ndkim;
    struct dmarchist_dkim *dkim;
};

/* Append one row to dirfd's file "history-YYYYMMDD" (the UTC day of
 * row->when) in one write() (O_APPEND|O_CREAT|O_NOFOLLOW|O_CLOEXEC, mode
 * 0600); 0, or -1 with a reason. */
int dmarchist_append(int dirfd, const struct dmarchist_row *row, const char **error_r);
void dmarchist_append_close(void);

/* Read a history file from fd (path for messages): each valid row is
 * given to fn (the row is the reader's: copy what you keep; a non-zero
 * return stops the reading and is returned); each malformed line is
 * reported as "PATH:LINE: reason" through warn and skipped.  0 at the
 * end, -1 with errno on a read error. */
int dmarchist_read(int fd, const char *path, int (*fn)(void *ctx, const struct dmarchist_row *row),
                   void (*warn)(void *ctx, const char *msg), void *ctx);

/* Does row keep the rules above (ndkim not counted)?  0, or -1 with a
 * static reason naming the field. */
int dmarchist_row_check(const struct dmarchist_row *row, const char **error_r);

/* Free every string of row and zero it. */
void dmarchist_row_clear(struct dmarchist_row *row);

/* "history-YYYYMMDD" for the UTC day of when, into name (at least 48
 * bytes); 0, or -1 if when is out of range. */
int dmarchist_file_name(long long when, char name[48]);

#endif
