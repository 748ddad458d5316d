/*
 * addrlist - the addresses in an RFC 5322 address list; see addrlist.h.
 *
 * Two steps in one pass: a tokenizer (white space and comments vanish;
 * quoted strings, domain literals and atoms are tokens with their text as
 * written; each special is a token of its own) feeds a small state
 * machine over list members, groups and angle addresses.
 */
#include <stdlib.h>
#include <string.h>

#include "addrlist.h"
#include "buf.h"
#include "xalloc.h"

enum tok { T_END, T_WORD, T_SPECIAL };

struct lexer {
    const char *p, *end;
    const char *why;
};

static int is_special(int c)
{
    return c == '<' || c == '>' || c == ',' || c == ':' || c == ';' || c == '@' || c == '.'
           || c == '(' || c == ')' || c == '"' || c == '[' || c == ']' || c == '\\';
}

static int is_wsp(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int is_bad_ctl(int c)
{
    return (c < 0x20 && !is_wsp(c)) || c == 0x7f;
}

/* Skip a comment; *l->p is '('.  0, or -1 with l->why. */
static int lex_comment(struct lexer *l)
{
    int depth = 0;

    for (; l->p < l->end; l->p++) {
        unsigned char c = (unsigned char)*l->p;

        if (is_bad_ctl(c)) {
            l->why = "control character in a comment";
            return -1;
        }
        if (c == '\\') {
            if (++l->p == l->end)
                break;
            if (is_bad_ctl((unsigned char)*l->p)) {
                l->why = "control character in a comment";
                return -1;
            }
        } else if (c == '(') {
            depth++;
        } else if (c == ')' && --depth == 0) {
            l->p++;
            return 0;
        }
    }
    l->why = "unclosed comment";
    return -1;
}

/* Copy a quoted string or domain literal (opening char at *l->p) into out,
 * delimiters and quoted-pairs included. */
static int lex_delimited(struct lexer *l, char close, buf_t *out, const char *unclosed)
{
    buf_putc(out, *l->p++);
    for (; l->p < l->end; l->p++) {
        unsigned char c = (unsigned char)*l->p;

        if (is_bad_ctl(c) || c == '\r' || c == '\n' || (close == ']' && is_wsp(c))) {
            if (is_wsp(c))
                continue;           /* folding; and FWS inside a domain literal */
            l->why = "control character in an address";
            return -1;
        }
        buf_putc(out, c);
        if (c == '\\') {
            if (l->p + 1 == l->end)
                break;
            if (is_bad_ctl((unsigned char)l->p[1]) || l->p[1] == '\r' || l->p[1] == '\n') {
                l->why = "control character in an address";
                return -1;
            }
            buf_putc(out, *++l->p);
        } else if (c == close) {
            l->p++;
            return 0;
        }
    }
    l->why = unclosed;
    return -1;
}

/* Next token: T_WORD with its text in word, T_SPECIAL with *sp set, T_END,
 * or -1 with l->why. */
static int lex_next(struct lexer *l, buf_t *word, char *sp)
{
    buf_reset(word);
    for (;;) {
        while (l->p < l->end && is_wsp((unsigned char)*l->p))
            l->p++;
        if (l->p == l->end)
            return T_END;
        if (*l->p != '(')
            break;
        if (lex_comment(l) < 0)
            return -1;
    }
    unsigned char c = (unsigned char)*l->p;

    if (is_bad_ctl(c)) {
        l->why = "control character in an address";
        return -1;
    }
    if (c == '"')
        return lex_delimited(l, '"', word, "unclosed quoted string") < 0 ? -1 : T_WORD;
    if (c == '[')
        return lex_delimited(l, ']', word, "unclosed domain literal") < 0 ? -1 : T_WORD;
    if (c == ')' || c == ']' || c == '\\') {
        l->why = c == ')' ? "unbalanced ')'" : c == ']' ? "unbalanced ']'" : "stray '\\'";
        return -1;
    }
    if (is_special(c)) {
        *sp = (char)c;
        l->p++;
        return T_SPECIAL;
    }
    while (l->p < l->end) {
        c = (unsigned char)*l->p;
        if (is_wsp(c) || is_special(c))
            break;
        if (is_bad_ctl(c)) {
            l->why = "control character in an address";
            return -1;
        }
        buf_putc(word, c);
        l->p++;
    }
    return T_WORD;
}

static void list_push(struct addrlist *list, const buf_t *b)
{
    list->addrs = xreallocarray(list->addrs, list->n + 1, sizeof(*list->addrs));
    list->addrs[list->n++] = xstrdup(buf_cstr(b));
}

int addrlist_parse(const char *text, size_t len, struct addrlist *list, const char **why)
{
    struct lexer l = { text, text + len, NULL };
    buf_t *word = buf_new(0), *plain = buf_new(0), *angle = buf_new(0);
    int in_angle = 0, angle_done = 0, in_group = 0, t, rc = 0;
    char sp = 0;

    list->addrs = NULL;
    list->n = 0;
    for (;;) {
        t = lex_next(&l, word, &sp);
        if (t < 0) {
            *why = l.why;
            rc = -1;
            break;
        }
        if (t == T_END || (t == T_SPECIAL && !in_angle && (sp == ',' || sp == ';'))) {
            /* The end of a list member. */
            if (angle_done) {
                if (angle->len > 0)
                    list_push(list, angle);
            } else if (plain->len > 0) {
                list_push(list, plain);
            }
            buf_reset(plain);
            buf_reset(angle);
            angle_done = 0;
            if (t == T_END)
                break;
            if (sp == ';') {
                if (!in_group) {
                    *why = "';' outside a group";
                    rc = -1;
                    break;
                }
                in_group = 0;
            }
            continue;
        }
        if (t == T_SPECIAL && sp == '<') {
            if (in_angle || angle_done) {
                *why = "unexpected '<'";
                rc = -1;
                break;
            }
            in_angle = 1;
            buf_reset(plain);       /* the display name */
            continue;
        }
        if (t == T_SPECIAL && sp == '>') {
            if (!in_angle) {
                *why = "unbalanced '>'";
                rc = -1;
                break;
            }
            in_angle = 0;
            angle_done = 1;
            continue;
        }
        if (t == T_SPECIAL && sp == ':') {
            if (in_angle) {
                buf_reset(angle);   /* the end of a source route */
                continue;
            }
            if (in_group || angle_done) {
                *why = "unexpected ':'";
                rc = -1;
                break;
            }
            in_group = 1;
            buf_reset(plain);       /* the group's display name */
            continue;
        }
        if (t == T_SPECIAL && sp == ',' && in_angle && (angle->len == 0 || angle->data[0] != '@')) {
            *why = "',' inside <...> outside a source route";
            rc = -1;
            break;
        }
        if (angle_done)
            continue;               /* words after <addr>: ignored */
        if (t == T_SPECIAL)
            buf_putc(in_angle ? angle : plain, sp);
        else
            buf_append(in_angle ? angle : plain, word->data, word->len);
    }
    if (rc == 0 && in_angle) {
        *why = "unclosed '<'";
        rc = -1;
    }
    if (rc < 0)
        addrlist_free(list);
    buf_free(&word);
    buf_free(&plain);
    buf_free(&angle);
    return rc;
}

void addrlist_free(struct addrlist *list)
{
    for (size_t i = 0; i < list->n; i++)
        free(list->addrs[i]);
    free(list->addrs);
    list->addrs = NULL;
    list->n = 0;
}
