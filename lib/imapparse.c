/*
 * imapparse - IMAP commands from a client (see imapparse.h).
 *
 * The tree is built in place: a stack of open lists (the command's
 * arguments at the bottom), each a growing array; ')' closes the top one
 * into a LIST node of the one below.  A literal's spec ends a line; its
 * octets become a node of the open list, and the next line goes on from
 * there.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "imapparse.h"
#include "msg.h"
#include "xalloc.h"

struct imap_open_list {
    struct imap_arg *args;
    size_t           n, size;
};

struct imapparse {
    struct imapparse_limits lim;
    struct imap_command     cmd;
    struct imap_open_list  *stack;      /* [0] the arguments; [depth] the open list */
    size_t                  depth, stack_size;
    size_t                  nodes, total;
    bool                    started;    /* the tag and the name were read */
    bool                    done;
    /* a literal asked for */
    bool                    want_literal, literal_binary;
    size_t                  literal_len;
};

/* ATOM-CHAR (RFC 9051 9): any CHAR but atom-specials. */
static bool imap_atom_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && !strchr("(){%*\"\\]", c);
}

static bool imap_tag_char(unsigned char c)
{
    return (imap_atom_char(c) || c == ']') && c != '+';
}

static void imap_arg_free(struct imap_arg *a)
{
    free(a->str);
    for (size_t i = 0; i < a->nlist; i++)
        imap_arg_free(&a->list[i]);
    free(a->list);
}

static void imap_args_free(struct imap_arg *args, size_t n)
{
    for (size_t i = 0; i < n; i++)
        imap_arg_free(&args[i]);
    free(args);
}

void imapparse_reset(imapparse_t *p)
{
    for (size_t d = 0; d <= p->depth && p->stack; d++)
        imap_args_free(p->stack[d].args, p->stack[d].n);
    if (p->done)
        imap_args_free(p->cmd.args, p->cmd.nargs);
    free(p->cmd.tag);
    memset(&p->cmd, 0, sizeof(p->cmd));
    memset(p->stack, 0, p->stack_size * sizeof(*p->stack));
    p->depth = p->nodes = p->total = 0;
    p->started = p->done = p->want_literal = p->literal_binary = false;
    p->literal_len = 0;
}

imapparse_t *imapparse_new(const struct imapparse_limits *lim)
{
    imapparse_t *p = xcalloc(1, sizeof(*p));

    p->lim = *lim;
    p->stack_size = lim->max_depth + 1;
    p->stack = xcalloc(p->stack_size, sizeof(*p->stack));
    return p;
}

void imapparse_free(imapparse_t **pp)
{
    if (*pp == NULL)
        return;
    imapparse_reset(*pp);
    free((*pp)->stack);
    free(*pp);
    *pp = NULL;
}

const struct imap_command *imapparse_command(const imapparse_t *p)
{
    return p->done ? &p->cmd : NULL;
}

/* A new node in the open list, not counted. */
static struct imap_arg *imap_node(imapparse_t *p, enum imap_arg_type type)
{
    struct imap_open_list *l = &p->stack[p->depth];

    if (l->n == l->size) {
        l->size = l->size ? l->size * 2 : 8;
        l->args = xreallocarray(l->args, l->size, sizeof(*l->args));
    }
    memset(&l->args[l->n], 0, sizeof(l->args[l->n]));
    l->args[l->n].type = type;
    return &l->args[l->n++];
}

/* A new node in the open list, counted; NULL past max_args. */
static struct imap_arg *imap_add(imapparse_t *p, enum imap_arg_type type)
{
    if (p->nodes >= p->lim.max_args)
        return NULL;
    p->nodes++;
    return imap_node(p, type);
}

static int imap_error(struct imapparse_state *st, imapparse_t *p, const char *why)
{
    st->why = why;
    st->tag = p->cmd.tag;
    return IMAPPARSE_ERROR;
}

/* An atom from line[*i]: ATOM-CHARs with ']', '%', '*' and '\\', and
 * bracketed sections (anything but CTLs up to the ']') with a "<...>"
 * partial after one.  Its length (0: none there); -1 for 8-bit or a
 * bracket left open. */
static long imap_atom_len(const char *line, size_t len, size_t i)
{
    size_t start = i;

    while (i < len) {
        unsigned char c = (unsigned char)line[i];

        if (c == '[') {
            for (i++; i < len && line[i] != ']'; i++)
                if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] >= 0x7f)
                    return -1;
            if (i == len)
                return -1;
            i++;
            if (i < len && line[i] == '<') {
                for (i++; i < len && line[i] != '>'; i++)
                    if (!isdigit((unsigned char)line[i]) && line[i] != '.')
                        return -1;
                if (i == len)
                    return -1;
                i++;
            }
            continue;
        }
        if (c >= 0x80)
            return -1;
        if (!imap_atom_char(c) && c != ']' && c != '%' && c != '*' && c != '\\')
            break;
        i++;
    }
    return (long)(i - start);
}

/* The literal spec that ends a line at line[i]: "{N}", "{N+}", "~{N}",
 * "~{N+}".  0 with *n, *sync, *binary; -1 if it is not one. */
static int imap_literal_spec(const char *line, size_t len, size_t i, size_t *n, bool *sync,
                             bool *binary)
{
    unsigned long long v = 0;
    size_t digits = 0;

    *binary = line[i] == '~';
    if (*binary)
        i++;
    if (i >= len || line[i] != '{')
        return -1;
    for (i++; i < len && isdigit((unsigned char)line[i]); i++, digits++) {
        if (digits >= 19)  /* number64 (RFC 9051 9) */
            return -1;
        v = v * 10 + (unsigned)(line[i] - '0');
    }
    if (digits == 0 || i >= len)
        return -1;
    *sync = line[i] != '+';
    if (!*sync)
        i++;
    if (i + 1 != len || line[i] != '}')
        return -1;
    *n = (size_t)v;
    return 0;
}

/* The tag and the command name at the start of a command's first line:
 * the index after them, or -1 with *why. */
static long imap_head(imapparse_t *p, const char *line, size_t len, const char **why)
{
    size_t i = 0, n;
    long a;

    while (i < len && imap_tag_char((unsigned char)line[i]))
        i++;
    if (i == 0 || i > IMAPPARSE_TAG_MAX || (i < len && line[i] != ' ')) {
        *why = i == 0 ? "no tag" : i > IMAPPARSE_TAG_MAX ? "tag too long" : "bad tag";
        return -1;
    }
    p->cmd.tag = xstrndup(line, i);
    if (i == len) {
        *why = "no command";
        return -1;
    }
    i++;
    for (int word = 0; word < 2; word++) {
        size_t have = strlen(p->cmd.name);

        a = imap_atom_len(line, len, i);
        if (a <= 0 || have + (word ? 1 : 0) + (size_t)a > IMAPPARSE_NAME_MAX) {
            *why = a <= 0 ? "no command name" : "command name too long";
            return -1;
        }
        if (word)
            p->cmd.name[have++] = ' ';
        for (n = 0; n < (size_t)a; n++) {
            unsigned char c = (unsigned char)line[i + n];

            if (!isalnum(c) && c != '-' && c != '_') {
                *why = "bad command name";
                return -1;
            }
            p->cmd.name[have + n] = (char)toupper(c);
        }
        p->cmd.name[have + n] = '\0';
        i += (size_t)a;
        if (word == 0 && strcmp(p->cmd.name, "UID") == 0 && i < len && line[i] == ' ') {
            i++;
            continue;
        }
        break;
    }
    return (long)i;
}

/* Close the open list into a LIST node of the one below. */
static int imap_close_list(imapparse_t *p)
{
    struct imap_open_list *l;
    struct imap_arg *a;

    if (p->depth == 0)
        return -1;
    l = &p->stack[p->depth];
    p->depth--;
    a = imap_node(p, IMAP_ARG_LIST);   /* counted at its '(' */
    a->list = l->args;
    a->nlist = l->n;
    memset(l, 0, sizeof(*l));
    return 0;
}

int imapparse_line(imapparse_t *p, const char *line, size_t len, struct imapparse_state *st)
{
    enum { EXPECT_ARG, AFTER_ARG } want = AFTER_ARG;
    size_t i = 0;
    long h;

    memset(st, 0, sizeof(*st));
    if (p->done || p->want_literal)
        msg_panic("imapparse_line: %s", p->done ? "the command is done: reset first"
                                                : "a literal is due");
    if (memchr(line, '\0', len) || memchr(line, '\r', len) || memchr(line, '\n', len))
        return imap_error(st, p, p->started ? "NUL, CR or LF in a command"
                                            : "NUL, CR or LF in a command");
    if (!p->started) {
        if ((h = imap_head(p, line, len, &st->why)) < 0) {
            st->tag = p->cmd.tag;
            return IMAPPARSE_ERROR;
        }
        p->started = true;
        i = (size_t)h;
    }
    /* Here: right after the name, or after a literal's octets. */
    while (i <= len) {
        if (want == AFTER_ARG) {
            if (i == len) {
                if (p->depth > 0)
                    return imap_error(st, p, "unbalanced parentheses");
                p->cmd.args = p->stack[0].args;
                p->cmd.nargs = p->stack[0].n;
                memset(&p->stack[0], 0, sizeof(p->stack[0]));
                p->done = true;
                return IMAPPARSE_DONE;
            }
            if (line[i] == ')') {
                if (imap_close_list(p) < 0)
                    return imap_error(st, p, "unbalanced parentheses");
                i++;
                continue;
            }
            if (line[i] != ' ')
                return imap_error(st, p, "missing space between arguments");
            i++;
            want = EXPECT_ARG;
            continue;
        }
        /* EXPECT_ARG */
        if (i == len)
            return imap_error(st, p, "missing argument");
        if (line[i] == '(') {
            if (p->depth >= p->lim.max_depth)
                return imap_error(st, p, "lists nested too deep");
            if (p->nodes >= p->lim.max_args)
                return imap_error(st, p, "too many arguments");
            p->nodes++;                 /* the LIST node it becomes */
            p->depth++;
            i++;
            if (i < len && line[i] == ')') {
                imap_close_list(p);
                i++;
                want = AFTER_ARG;
            }
            continue;
        }
        if (line[i] == '"') {
            buf_t *b = buf_new(0);
            struct imap_arg *a;

            for (i++; i < len && line[i] != '"'; i++) {
                unsigned char c = (unsigned char)line[i];

                if (c == '\\') {
                    if (++i == len || (line[i] != '\\' && line[i] != '"')) {
                        buf_free(&b);
                        return imap_error(st, p, "bad escape in a quoted string");
                    }
                    c = (unsigned char)line[i];
                } else if (c >= 0x80 && !p->lim.allow_8bit) {
                    buf_free(&b);
                    return imap_error(st, p, "8-bit octets in a quoted string");
                }
                buf_putc(b, c);
            }
            if (i == len) {
                buf_free(&b);
                return imap_error(st, p, "unterminated quoted string");
            }
            i++;
            p->total += b->len;
            if (p->total > p->lim.max_total || (a = imap_add(p, IMAP_ARG_STRING)) == NULL) {
                buf_free(&b);
                return imap_error(st, p, p->total > p->lim.max_total ? "command too long"
                                                                     : "too many arguments");
            }
            a->len = b->len;
            a->str = buf_steal(b, NULL);
            buf_free(&b);
            want = AFTER_ARG;
            continue;
        }
        if (line[i] == '{' || line[i] == '~') {
            size_t n;
            bool sync, binary;

            if (imap_literal_spec(line, len, i, &n, &sync, &binary) < 0)
                return imap_error(st, p, "bad literal");
            st->literal_len = n;
            st->sync = sync;
            st->binary = binary;
            if (n > p->lim.max_literal || p->total + n > p->lim.max_total) {
                st->too_big = true;
                return imap_error(st, p, "literal too large");
            }
            if (p->nodes >= p->lim.max_args)
                return imap_error(st, p, "too many arguments");
            p->want_literal = true;
            p->literal_len = n;
            p->literal_binary = binary;
            return IMAPPARSE_LITERAL;
        }
        {
            long a = imap_atom_len(line, len, i);
            struct imap_arg *arg;

            if (a <= 0)
                return imap_error(st, p, a < 0 ? "8-bit octets or an open bracket in an atom"
                                               : "bad character in an argument");
            if (a == 3 && strncasecmp(line + i, "NIL", 3) == 0) {
                if ((arg = imap_add(p, IMAP_ARG_NIL)) == NULL)
                    return imap_error(st, p, "too many arguments");
            } else {
                p->total += (size_t)a;
                if (p->total > p->lim.max_total)
                    return imap_error(st, p, "command too long");
                if ((arg = imap_add(p, IMAP_ARG_ATOM)) == NULL)
                    return imap_error(st, p, "too many arguments");
                arg->str = xstrndup(line + i, (size_t)a);
                arg->len = (size_t)a;
            }
            i += (size_t)a;
            want = AFTER_ARG;
        }
    }
    return imap_error(st, p, "internal: line overrun");
}

void imapparse_literal(imapparse_t *p, const void *data, size_t len)
{
    struct imap_arg *a;

    if (!p->want_literal || len != p->literal_len)
        msg_panic("imapparse_literal: %zu octets where %zu were due", len,
                  p->want_literal ? p->literal_len : 0);
    p->want_literal = false;
    p->total += len;
    p->nodes++;                         /* room checked when it was asked for */
    a = imap_node(p, IMAP_ARG_LITERAL);
    a->str = xmalloc(len + 1);
    memcpy(a->str, data, len);
    a->str[len] = '\0';
    a->len = len;
    a->binary = p->literal_binary;
}
