/*
 * t/unit/imapparse.c - unit tests for lib/imapparse.c, the IMAP command
 * parser.
 *
 * Commands as clients send them, rendered back as a tree: no arguments,
 * atoms, NIL, quoted strings with escapes, nested and empty lists, UID
 * commands, FETCH sections with spaces, parentheses and partials, flags
 * with '\\', sequence sets with '*'; literals of every form across lines
 * (synchronizing, LITERAL+, binary, an empty one, one holding NUL and CRLF)
 * followed by more arguments; and every refusal: no tag, a '+' in the tag,
 * a space too many or missing, unbalanced parentheses both ways, lists too
 * deep, too many arguments, a bad escape, an unterminated string, 8-bit in
 * an atom and (without UTF8=ACCEPT) in a quoted string, a literal that is
 * not the end of its line, a negative or malformed literal, a literal too
 * large (with its size and kind kept, for NO [TOOBIG]), a NUL in a line;
 * the tag is known for a tagged BAD once it was read.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "imapparse.h"
#include "../lib/tap.h"

static const struct imapparse_limits lim = {
    .max_args = 64, .max_depth = 4, .max_literal = 1000, .max_total = 4000,
};

static void render(buf_t *b, const struct imap_arg *args, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct imap_arg *a = &args[i];

        if (i)
            buf_putc(b, ' ');
        switch (a->type) {
        case IMAP_ARG_ATOM:
            buf_printf(b, "A:%s", a->str);
            break;
        case IMAP_ARG_STRING:
            buf_printf(b, "S:%s", a->str);
            break;
        case IMAP_ARG_LITERAL:
            buf_printf(b, "L%s%zu:", a->binary ? "~" : "", a->len);
            for (size_t j = 0; j < a->len; j++)
                buf_putc(b, a->str[j] == '\0' ? '0' : a->str[j] == '\r' ? 'r'
                         : a->str[j] == '\n' ? 'n' : a->str[j]);
            break;
        case IMAP_ARG_NIL:
            buf_append_str(b, "NIL");
            break;
        case IMAP_ARG_LIST:
            buf_putc(b, '(');
            render(b, a->list, a->nlist);
            buf_putc(b, ')');
            break;
        }
    }
}

/* Feed "line\001literal\001line..." (\001 separates lines and literals,
 * alternately); the rendering "TAG NAME args", or "ERR tag why" */
static char *run(imapparse_t *p, const char *input, struct imapparse_state *last)
{
    char *copy = strdup(input), *save = copy, *part;
    buf_t *b = buf_new(0);
    struct imapparse_state st = {0};
    int rc = IMAPPARSE_ERROR, want_line = 1;

    imapparse_reset(p);
    while ((part = strsep(&save, "\001")) != NULL) {
        if (want_line) {
            rc = imapparse_line(p, part, strlen(part), &st);
            if (rc != IMAPPARSE_LITERAL)
                break;
            want_line = 0;
        } else {
            size_t n = strlen(part);
            char *data = strdup(part);

            for (size_t j = 0; j < n; j++)      /* 0 r n stand for NUL CR LF */
                data[j] = data[j] == '0' ? '\0' : data[j] == 'r' ? '\r'
                          : data[j] == 'n' ? '\n' : data[j];
            imapparse_literal(p, data, n);
            free(data);
            want_line = 1;
        }
    }
    if (last)
        *last = st;
    if (rc == IMAPPARSE_DONE) {
        const struct imap_command *c = imapparse_command(p);

        buf_printf(b, "%s %s", c->tag, c->name);
        if (c->nargs) {
            buf_putc(b, ' ');
            render(b, c->args, c->nargs);
        }
    } else if (rc == IMAPPARSE_ERROR) {
        buf_printf(b, "ERR %s %s", st.tag ? st.tag : "*", st.why);
    } else {
        buf_printf(b, "LITERAL %zu", st.literal_len);
    }
    free(copy);
    {
        char *out = buf_steal(b, NULL);

        buf_free(&b);
        return out;
    }
}

#define T(input, want, name) do { \
        char *got_ = run(p, input, NULL); \
        is_str(got_, want, name); \
        free(got_); \
    } while (0)

int main(void)
{
    imapparse_t *p = imapparse_new(&lim);
    struct imapparse_state st;
    char *got;

    T("a1 NOOP", "a1 NOOP", "no arguments");
    T("a1 noop", "a1 NOOP", "the name upper-cased");
    T("a2 LOGIN alice \"pass word\"", "a2 LOGIN A:alice S:pass word", "atom and quoted");
    T("a3 LOGIN \"a\\\\b\" \"x\\\"y\"", "a3 LOGIN S:a\\b S:x\"y", "escapes in quoted strings");
    T("a4 SELECT \"\"", "a4 SELECT S:", "an empty quoted string");
    T("a5 UID fetch 1:* (FLAGS UID)", "a5 UID FETCH A:1:* (A:FLAGS A:UID)", "UID FETCH, a list");
    T("a6 FETCH 1 (BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100> BODY[1.2])",
      "a6 FETCH A:1 (A:BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100> A:BODY[1.2])",
      "sections with spaces, parentheses and a partial stay one atom");
    T("a7 STORE 1,3:5 +FLAGS.SILENT (\\Seen \\Deleted $Junk)",
      "a7 STORE A:1,3:5 A:+FLAGS.SILENT (A:\\Seen A:\\Deleted A:$Junk)", "flags");
    T("a8 LIST \"\" %", "a8 LIST S: A:%", "a list wildcard is an atom");
    T("a9 X (()) ((a) (b c)) nil", "a9 X (()) ((A:a) (A:b A:c)) NIL", "nested and empty lists, NIL");
    T("b1 SEARCH 1:*,*:4294967295", "b1 SEARCH A:1:*,*:4294967295", "sequence sets are atoms");
    T("b2 APPEND INBOX (\\Seen) {5}\001hello\001", "b2 APPEND A:INBOX (A:\\Seen) L5:hello",
      "a synchronizing literal at the end");
    T("b3 LOGIN {5+}\001alice\001 {3}\001p w\001",
      "b3 LOGIN L5:alice L3:p w", "LITERAL+ then a literal, across lines");
    T("b4 APPEND INBOX ~{4}\001a0rn\001", "b4 APPEND A:INBOX L~4:a0rn",
      "a binary literal with NUL, CR and LF");
    T("b5 APPEND INBOX {0}\001\001", "b5 APPEND A:INBOX L0:", "an empty literal");
    T("b6 X ({2}\001ab\001 c)", "b6 X (L2:ab A:c)", "a literal inside a list");

    T("", "ERR * no tag", "an empty line");
    T("+a NOOP", "ERR * no tag", "'+' cannot start a tag");
    T("a+b NOOP", "ERR * bad tag", "nor be in one (an untagged BAD)");
    T("a1", "ERR a1 no command", "a tag alone");
    T("a1  NOOP", "ERR a1 no command name", "two spaces after the tag");
    T("a1 NOOP ", "ERR a1 missing argument", "a trailing space");
    T("a1 X a  b", "ERR a1 bad character in an argument", "two spaces between arguments");
    T("a1 X (a", "ERR a1 unbalanced parentheses", "an open list at the end of the line");
    T("a1 X a)", "ERR a1 unbalanced parentheses", "a ')' with no '('");
    T("a1 X ((((a))))", "a1 X ((((A:a))))", "four levels: the limit");
    T("a1 X (((((a)))))", "ERR a1 lists nested too deep", "five levels: refused");
    T("a1 X \"a\\b\"", "ERR a1 bad escape in a quoted string", "a bad escape");
    T("a1 X \"abc", "ERR a1 unterminated quoted string", "an unterminated quoted string");
    T("a1 X caf\xc3\xa9", "ERR a1 8-bit octets or an open bracket in an atom", "8-bit in an atom");
    T("a1 X \"caf\xc3\xa9\"", "ERR a1 8-bit octets in a quoted string",
      "8-bit in a quoted string without UTF8=ACCEPT");
    T("a1 X BODY[HEADER", "ERR a1 8-bit octets or an open bracket in an atom",
      "a bracket left open");
    T("a1 X {5} a", "ERR a1 bad literal", "a literal spec not at the end of its line");
    T("a1 X {-5}", "ERR a1 bad literal", "a negative literal");
    T("a1 X {5", "ERR a1 bad literal", "an unclosed literal spec");
    T("a1 X {12345678901234567890}", "ERR a1 bad literal", "a literal size of 20 digits");
    got = run(p, "a1 APPEND INBOX {99999999999}", &st);
    is_str(got, "ERR a1 literal too large", "an 11-digit literal (number64) is too large, not bad");
    ok(st.too_big && st.literal_len == 99999999999ULL && st.sync, "  its size kept, for NO [TOOBIG]");
    free(got);
    got = run(p, "a1 APPEND INBOX {1001+}", &st);
    is_str(got, "ERR a1 literal too large", "a literal over max_literal");
    ok(st.too_big && st.literal_len == 1001 && !st.sync, "  its size and kind kept, for NO [TOOBIG]");
    free(got);
    {
        buf_t *b = buf_new(0);

        buf_append_str(b, "a1 X");
        for (int i = 0; i < 65; i++)
            buf_append_str(b, " a");
        got = run(p, b->data, NULL);
        is_str(got, "ERR a1 too many arguments", "65 arguments: over max_args");
        free(got);
        buf_free(&b);
    }
    st.why = NULL;
    imapparse_reset(p);
    is_int(imapparse_line(p, "a1 X a\0b", 8, &st), IMAPPARSE_ERROR, "a NUL in a line: refused");
    imapparse_free(&p);

    {
        struct imapparse_limits l8 = lim;

        l8.allow_8bit = true;
        p = imapparse_new(&l8);
        T("a1 SELECT \"caf\xc3\xa9\"", "a1 SELECT S:caf\xc3\xa9", "8-bit quoted with UTF8=ACCEPT");
        imapparse_free(&p);
    }
    return done_testing();
}
