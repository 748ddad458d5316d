/*
 * imapparse - IMAP commands as a client sends them (RFC 9051 2.2 and 9,
 * RFC 3501 9): the tag, the command name and the arguments as a tree of
 * atoms, strings, lists and NIL, with literals in every form: synchronizing
 * {N} (the server says "+" before the client sends the octets), non-
 * synchronizing {N+} (LITERAL+ / LITERAL-, RFC 7888) and binary ~{N}
 * (RFC 3516).
 *
 * A command arrives as lines (CRLF stripped by the caller) with literal
 * octets between them; the parser is fed one at a time and says what it
 * needs next:
 *   IMAPPARSE_DONE     the command is whole: imapparse_command();
 *   IMAPPARSE_LITERAL  a literal of st.literal_len octets follows (st.sync:
 *                      the client waits for a continuation; st.binary:
 *                      ~{N}); the caller reads exactly that many and feeds
 *                      them with imapparse_literal(), then the line that
 *                      follows them with imapparse_line().  The caller
 *                      decides first whether to take it at all (APPEND's
 *                      NO [TOOBIG] without reading it: refuse a
 *                      synchronizing literal, skip a non-synchronizing one);
 *   IMAPPARSE_ERROR    st.why for a BAD reply; st.tag when the tag was read
 *                      (else the reply is untagged).  Whatever is left of a
 *                      command after an error (its literals, the rest of
 *                      its lines) is the caller's to skip; reset and go on.
 *
 * Syntax, as a server should accept it:
 *  - tag: 1..IMAPPARSE_TAG_MAX ASTRING-CHARs other than '+';
 *  - command name: an atom, upper-cased; "UID" takes the next atom along
 *    ("UID FETCH");
 *  - atom: 1*ATOM-CHAR, plus what the grammar puts inside atoms as a
 *    server reads them: ']' (resp-specials), '%' and '*' (list wildcards,
 *    sequence sets), and a section in brackets, spaces and parentheses
 *    included, with a partial "<...>" after it (BODY[HEADER.FIELDS (A B)]<0.100>);
 *  - quoted: "..." with \\ and \" the only escapes, no CR or LF; 8-bit
 *    octets only when allow_8bit (UTF8=ACCEPT);
 *  - NIL (any case) outside a quoted string or literal is NIL;
 *  - lists "(...)" nested at most limits.max_depth deep;
 *  - arguments separated by exactly one space; nothing after the last.
 * Limits (all refused with an error, memory bounded whatever the client
 * sends): max_args nodes in all, max_depth of lists, max_literal octets a
 * literal, max_total octets of strings and literals in a command.
 *
 * Failure modes: none fatal but out of memory; every syntax or limit
 * problem is IMAPPARSE_ERROR with a reason.
 */
#ifndef POSTHORN_IMAPPARSE_H
#define POSTHORN_IMAPPARSE_H

#include <stdbool.h>
#include <stddef.h>

#define IMAPPARSE_TAG_MAX   64
#define IMAPPARSE_NAME_MAX  32

enum imap_arg_type {
    IMAP_ARG_ATOM,
    IMAP_ARG_STRING,            /* quoted */
    IMAP_ARG_LITERAL,           /* {N}, {N+} or ~{N} */
    IMAP_ARG_LIST,
    IMAP_ARG_NIL,
};

struct imap_arg {
    enum imap_arg_type type;
    char              *str;     /* ATOM, STRING, LITERAL: NUL-terminated (a literal may
                                   hold NULs too: len says) */
    size_t             len;
    bool               binary;  /* LITERAL: ~{N} */
    struct imap_arg   *list;    /* LIST: its elements */
    size_t             nlist;
};

struct imap_command {
    char            *tag;
    char             name[IMAPPARSE_NAME_MAX + 1];   /* upper case; "UID FETCH" */
    struct imap_arg *args;
    size_t           nargs;
};

struct imapparse_limits {
    size_t max_args;            /* argument nodes in a command */
    size_t max_depth;           /* list nesting */
    size_t max_literal;         /* octets of one literal */
    size_t max_total;           /* octets of all strings and literals */
    bool   allow_8bit;          /* 8-bit octets in quoted strings (UTF8=ACCEPT) */
};

enum { IMAPPARSE_DONE, IMAPPARSE_LITERAL, IMAPPARSE_ERROR };

struct imapparse_state {
    size_t      literal_len;    /* IMAPPARSE_LITERAL */
    bool        sync;
    bool        binary;
    bool        too_big;        /* IMAPPARSE_ERROR: a literal over max_literal or
                                   max_total (literal_len, sync, binary say which,
                                   so the caller can answer NO [TOOBIG] and skip it) */
    const char *why;            /* IMAPPARSE_ERROR (static) */
    const char *tag;            /* IMAPPARSE_ERROR: NULL when none was read */
};

typedef struct imapparse imapparse_t;

imapparse_t *imapparse_new(const struct imapparse_limits *lim);
void         imapparse_free(imapparse_t **pp);
/* Start a new command (after DONE or ERROR). */
void         imapparse_reset(imapparse_t *p);
/* One line, its CRLF stripped. */
int          imapparse_line(imapparse_t *p, const char *line, size_t len,
                            struct imapparse_state *st);
/* The octets of the literal asked for, all of them (a panic otherwise). */
void         imapparse_literal(imapparse_t *p, const void *data, size_t len);
/* After DONE: the command, valid until the next reset. */
const struct imap_command *imapparse_command(const imapparse_t *p);

#endif
