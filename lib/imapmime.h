/*
 * imapmime - the MIME structure of one message held in memory, and what
 * an IMAP server makes of it: FETCH ENVELOPE, BODYSTRUCTURE and BODY
 * (RFC 3501 7.4.2, RFC 9051 7.5.2), BODY[section] (6.4.5), BINARY[section]
 * and BINARY.SIZE (RFC 3516), and the decoded header and body text SEARCH
 * looks at.
 *
 * The message is one buffer, CRLF line ends expected (imapd converts),
 * but any octets parse: a bare LF ends a line as CRLF does, a bare CR is
 * data, NULs are data.  mime_parse() builds a tree of parts that only
 * holds offsets into that buffer and the parsed MIME fields; every other
 * function takes the tree and the same buffer.
 *
 * How the message is read (RFC 2045, 2046, and Dovecot's reading where the
 * RFCs leave room, so that clients see what they see there):
 *  - a header runs to the first empty line; a line without a colon is a
 *    header line too; without an empty line the header takes everything
 *    (up to a boundary of an enclosing multipart) and the body is empty;
 *  - a multipart's boundary delimiter is a line that starts with "--" and
 *    the boundary (RFC 2046 5.1.1: a prefix match, whatever follows), and
 *    the line end before it belongs to it (even the empty line ending a
 *    header when no body follows, as in Dovecot; but a closing delimiter
 *    line that another delimiter follows at once keeps its line end, as
 *    in Dovecot); "--boundary--" closes.  The boundaries of every
 *    enclosing multipart are live inside a part, the longest match wins,
 *    the innermost on a tie, so an outer boundary ends the inner parts
 *    that miss their closing delimiter;
 *  - an invalid Content-Type (no "/", an empty type or subtype) counts as
 *    absent: text/plain; charset=us-ascii (RFC 2045 5.2), or
 *    message/rfc822 inside multipart/digest (RFC 2046 5.1.5);
 *  - a multipart without a boundary parameter (boundary*= of RFC 2231
 *    is decoded and used), or whose body holds no delimiter of its own, is
 *    a text/plain leaf (its body a single text; Dovecot shows an empty
 *    multipart instead, whose text no part number reaches);
 *  - message/rfc822 and message/global hold a message, parsed in turn
 *    (part->message), whatever is inside (no header: all of it is header);
 *  - MIME-Version is not required (Dovecot does not either);
 *  - the first of a repeated field counts, for the MIME fields and for the
 *    ENVELOPE's date, subject, in-reply-to and message-id (Dovecot's takes
 *    the last); repeated address fields (two Cc:) add up, as in Dovecot;
 *  - limits: MIME_DEPTH_MAX levels of multipart and message nesting (a
 *    deeper multipart or message is an opaque text/plain leaf), at most
 *    MIME_PARTS_MAX parts (at the part that would pass it, boundaries stop
 *    counting: the rest of the message goes to the last leaf, and every
 *    part around it runs to the end), boundaries of at most
 *    MIME_BOUNDARY_MAX octets (a longer one counts as absent).  Work is
 *    linear in the message size (each line is compared with at most
 *    MIME_DEPTH_MAX boundaries), recursion at most MIME_DEPTH_MAX deep.
 *
 * What the tree keeps (struct mime_part): the offsets and sizes of the
 * part's header (including the empty line that ends it) and body, the
 * body's line count (LFs), and the parsed Content-* fields.  type and
 * subtype are as sent (case kept, as Dovecot shows them: compare them
 * with strcasecmp or mime_type_is), never NULL (the defaults "text"
 * "plain", "message" "rfc822").  params are the Content-Type parameters
 * after RFC 2231 processing as Dovecot does it: continuations name*0,
 * name*1... are joined (when numbered 0..n without a gap), an extended
 * value stays encoded as name*="charset'lang'%XX..." (a plain segment
 * joined to it gets its '%' escaped; values are not decoded to UTF-8), and
 * the joined ones follow the plain ones.  Unquoted values run to ';', a
 * blank or '(' (boundary=----=_Part_1 is common and means all of it).
 *
 * BODYSTRUCTURE: as Dovecot 2.3 prints it: type/subtype and parameter
 * names as sent, "charset" "us-ascii" added to a text part without a
 * charset (last), Content-ID, -Description, -Location and -MD5 as their
 * raw values (unfolded), encoding "7bit" when absent, the body's octets
 * and (text/ *, message/rfc822) lines; extension data (BODYSTRUCTURE,
 * not BODY): MD5, disposition with its parameters, language (always a
 * list), location for a leaf; parameters, disposition, language, location
 * for a multipart.  message/global is shown as a basic part, as Dovecot
 * 2.3 does (RFC 3501's grammar has no message/global, and an IMAP4rev1
 * client would choke on an envelope after it); its message is there for
 * BODY[n.HEADER] and SEARCH.
 *
 * ENVELOPE: date, subject, in-reply-to and message-id are the raw field
 * values (unfolded: each LF and a CR before it dropped, a NUL made
 * U+FFFD, leading blanks skipped); subject and display names have blanks collapsed and trimmed
 * (as Dovecot does "for humans"), and in UTF-8 mode (UTF8=ACCEPT) are
 * RFC 2047 decoded.  Addresses per RFC 5322 with the obsolete forms:
 * groups as (NIL NIL "name" NIL) ... (NIL NIL NIL NIL), routes in adl,
 * a comment as the name of a bare address (the last comment), an empty
 * or missing local part "MISSING_MAILBOX", a missing domain
 * "MISSING_DOMAIN" (Dovecot's words), empty list elements skipped (Dovecot
 * shows them as a MISSING_MAILBOX address), text after an address up to
 * the next comma ignored.  Sender and Reply-To default to From.
 *
 * Strings: quoted ("..." with \" and \\) unless they hold CR, LF, NUL or
 * 8-bit octets (in UTF-8 mode: octets that are not valid UTF-8), or are
 * longer than MIME_QUOTED_MAX: a literal {N} then, NULs sent as 0x80.
 *
 * Sections: mime_section's spec is what stands between the brackets:
 * "" (the whole message), "HEADER", "TEXT", "HEADER.FIELDS (A B)",
 * "HEADER.FIELDS.NOT (A B)", and "1.2", "1.2.MIME", "3.HEADER", "3.TEXT",
 * "3.HEADER.FIELDS (A)"; keywords in any case, field names as atoms or
 * quoted strings.  Part numbers go as in Dovecot: a non-multipart has
 * only part 1, itself (so "1" of a single-part message is its body and
 * "1.MIME" its header); after a message/rfc822 part a further number
 * goes into its message.  HEADER, TEXT and the field subsets of a
 * numbered part need a message/rfc822 (or global) part and are empty
 * otherwise.  HEADER.FIELDS gives the matching fields as they stand
 * (folding kept; a last line without its end gets a CRLF), in message
 * order, then the empty line if the header had one (RFC 3501 6.4.5;
 * Dovecot adds one to a header that had none).  A NUL in a section is
 * sent as 0x80 (a literal may hold none), as Dovecot does.
 * BINARY: "" (the whole message, as it is: nothing is decoded) or part
 * numbers; a leaf is decoded by its Content-Transfer-Encoding: 7bit,
 * 8bit, binary (and none) as is, base64 (tolerant: octets outside the
 * alphabet skipped, "=" ends a group, a trailing partial group gives what
 * it holds; Dovecot refuses such data with NO), quoted-printable (RFC 2045
 * 6.7: soft line breaks, trailing blanks dropped, an "=" not followed by
 * two hex digits kept as it is); any other encoding is -1 (the caller's
 * NO [UNKNOWN-CTE]).  A multipart or message part is given as it is
 * (Dovecot rewrites and decodes the parts inside; we do not).
 *
 * SEARCH text: mime_header_text and mime_body_text decode RFC 2047
 * encoded words and transfer encodings and convert charsets to UTF-8
 * with iconv (invalid sequences become U+FFFD; an unknown charset keeps
 * the raw octets).  rfc2047_decode decodes anywhere in the text (not only
 * at word boundaries, as mail readers do), joins adjacent words of one
 * charset before converting (a character split between two words
 * survives), and drops the blanks between adjacent encoded words; a
 * malformed encoded word stays as it is.  mime_body_text takes every
 * text/ * leaf (and a part without Content-Type; the charset parameter,
 * or its RFC 2231 form, picks the conversion), and for a
 * message/rfc822 part its header (decoded, as mime_header_text with NULL
 * gives it) and then its body; other leaves, preambles and epilogues are
 * skipped; parts are separated by "\n".
 *
 * Failure modes: none for any input: every message parses, and the
 * output functions never read outside msg[0, len).  mime_section and
 * mime_binary refuse an invalid spec (-1 / -2 with a static reason for
 * BAD).  An output buffer's limit cuts the output short (the appends
 * fail, buf's rule); nothing else fails.  Out of memory is fatal
 * (xalloc).  Not thread-safe: charset_to_utf8 keeps a small cache of
 * iconv descriptors.
 */
#ifndef POSTHORN_IMAPMIME_H
#define POSTHORN_IMAPMIME_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define MIME_DEPTH_MAX      100     /* multipart / message nesting levels */
#define MIME_PARTS_MAX      10000   /* parts in one message, the root included */
#define MIME_BOUNDARY_MAX   200     /* octets of a boundary (RFC 2046: 70) */
#define MIME_QUOTED_MAX     1000    /* longer strings go out as literals */

struct mime_param {
    char *name;                 /* as sent; "name*" for an RFC 2231 extended value */
    char *value;                /* unquoted */
};

typedef struct mime_part mime_part_t;
struct mime_part {
    size_t hdr_off, hdr_len;    /* the header, with the empty line ending it (0 length when absent) */
    size_t hdr_blank;           /* octets of that empty line in hdr_len: 0, 1 (LF) or 2 (CRLF) */
    size_t body_off, body_len;  /* the body */
    size_t body_lines;          /* LFs in the body */
    unsigned depth;             /* 0 for the message itself */

    char *type, *subtype;       /* as sent, never NULL */
    struct mime_param *params;  /* Content-Type parameters */
    size_t nparams;
    char *encoding;             /* Content-Transfer-Encoding token as sent; NULL: absent (7bit) */
    char *id, *description, *md5, *location;    /* raw unfolded values; NULL: absent */
    char *disposition;          /* Content-Disposition token; NULL: absent */
    struct mime_param *disp_params;
    size_t ndisp_params;
    char **language;            /* Content-Language tags */
    size_t nlanguage;

    mime_part_t **children;     /* a multipart's parts (a multipart always has one at least) */
    size_t nchildren;
    mime_part_t *message;       /* message/rfc822 or message/global: the message inside */
    mime_part_t *parent;
    bool opaque;                /* a multipart or message not followed (depth, part limit,
                                   no boundary): shown as text/plain */
    bool is_text;               /* type is "text" (any case) */
    size_t lf_body;             /* (the parser's) LFs in msg before body_off */
};

/* The structure of msg[0, len).  Never NULL; mime_free it. */
mime_part_t *mime_parse(const char *msg, size_t len);
void mime_free(mime_part_t **pp);

/* Does part have this type (and subtype, unless NULL)?  Case-insensitive. */
bool mime_type_is(const mime_part_t *part, const char *type, const char *subtype);
/* The first parameter called name (case-insensitive), or NULL. */
const char *mime_param(const mime_part_t *part, const char *name);

/* RFC 3501 7.4.2 / RFC 9051 7.5.2, appended to out, parentheses included.
 * utf8: UTF8=ACCEPT is on (decoded subject and names, UTF-8 quoted). */
void mime_envelope(buf_t *out, const mime_part_t *root, const char *msg, bool utf8);
/* BODYSTRUCTURE (extensible) or BODY, parentheses included. */
void mime_bodystructure(buf_t *out, const mime_part_t *root, const char *msg, bool extensible);

/* BODY[spec]: 0 and the section's octets appended to out; 1 (nothing
 * appended) when the part does not exist or has no such section (the
 * caller sends ""); -1 and *why (static) when spec is invalid (BAD). */
int mime_section(buf_t *out, const mime_part_t *root, const char *msg, const char *spec,
                 const char **why);
/* BINARY[spec]: 0 and the decoded section appended; 1 when the part does
 * not exist (nothing appended); -1 for an unknown Content-Transfer-Encoding
 * (NO [UNKNOWN-CTE]); -2 and *why when spec is invalid (BAD). */
int mime_binary(buf_t *out, const mime_part_t *root, const char *msg, const char *spec,
                const char **why);
/* data[0, len) with Content-Transfer-Encoding cte (NULL: none) removed,
 * appended to out: 0, or -1 (out untouched) for an unknown encoding. */
int mime_transfer_decode(buf_t *out, const char *cte, const char *data, size_t len);

/* SEARCH: the value of every field called name (case-insensitive) in
 * root's header, unfolded, RFC 2047 decoded, as UTF-8, separated by "\n";
 * name NULL: every field as "Name: value". */
void mime_header_text(buf_t *out, const mime_part_t *root, const char *msg, const char *name);
/* SEARCH BODY / TEXT: the decoded text of the message's text parts. */
void mime_body_text(buf_t *out, const mime_part_t *root, const char *msg);

/* Encoded words (RFC 2047) in text[0, len) decoded to UTF-8, the rest
 * copied; 0, or -1 when out's limit cut it short. */
int rfc2047_decode(buf_t *out, const char *text, size_t len);
/* data[0, len) in charset (NULL: us-ascii) appended as UTF-8: 0, or -1
 * for a charset iconv does not know (out untouched).  UTF-8 and US-ASCII
 * are checked, not converted: invalid sequences become U+FFFD. */
int charset_to_utf8(buf_t *out, const char *charset, const char *data, size_t len);

#endif
