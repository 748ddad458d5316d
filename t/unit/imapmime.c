/*
 * t/unit/imapmime.c - unit tests for lib/imapmime.c, the MIME structure
 * of a message for IMAP.
 *
 * BODYSTRUCTURE and BODY with exact strings (checked against Dovecot 2.3
 * where the module means to agree with it): a single part, defaults, a
 * multipart/mixed inside a multipart/alternative with dispositions and
 * RFC 2231 parameters, a message/rfc822 inside a multipart, a digest, a
 * missing closing boundary, an outer boundary ending inner parts, a
 * boundary-like line in the preamble, a multipart without boundary or
 * whose boundary never comes (text/plain), bad Content-Types, a repeated
 * Content-Type (the first counts), message/rfc822 with garbage in it, an
 * empty message, no header, a header only, LF line ends; 200-deep
 * multipart and message nesting (bounded, balanced) and a message of more
 * than MIME_PARTS_MAX parts.  ENVELOPE: every field, defaults for Sender
 * and Reply-To, groups, routes, comments as names, quoted names, missing
 * parts of an address, UTF-8 mode with RFC 2047 subjects and names, 8-bit
 * and CR/LF as literals.  Sections: whole, HEADER, TEXT, numbered parts,
 * N.MIME, N.HEADER / N.TEXT of message/rfc822 (and of a part that is
 * not), HEADER.FIELDS and .NOT, parts that do not exist, invalid specs.
 * BINARY of base64 with garbage, quoted-printable with soft breaks, an
 * unknown encoding.  RFC 2047 (B, Q, adjacent words, a character split
 * between words, unknown charset, broken words), charsets, and the SEARCH
 * header and body text.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "imapmime.h"
#include "../lib/tap.h"

static char *bodystructure(const char *msg, bool ext)
{
    mime_part_t *root = mime_parse(msg, strlen(msg));
    buf_t *b = buf_new(0);
    char *s;

    mime_bodystructure(b, root, msg, ext);
    mime_free(&root);
    s = buf_steal(b, NULL);
    buf_free(&b);
    return s;
}

static void is_bs(const char *msg, const char *want, const char *name)
{
    char *got = bodystructure(msg, true);

    is_str(got, want, "BODYSTRUCTURE: %s", name);
    free(got);
}

static void is_body(const char *msg, const char *want, const char *name)
{
    char *got = bodystructure(msg, false);

    is_str(got, want, "BODY: %s", name);
    free(got);
}

static void is_env(const char *msg, bool utf8, const char *want, const char *name)
{
    mime_part_t *root = mime_parse(msg, strlen(msg));
    buf_t *b = buf_new(0);

    mime_envelope(b, root, msg, utf8);
    is_str(buf_cstr(b), want, "ENVELOPE: %s", name);
    mime_free(&root);
    buf_free(&b);
}

static void is_section_n(const char *msg, size_t len, const char *spec, int want_ret,
                         const char *want, const char *name)
{
    mime_part_t *root = mime_parse(msg, len);
    buf_t *b = buf_new(0);
    const char *why = NULL;
    int ret = mime_section(b, root, msg, spec, &why);

    ok(ret == want_ret && (ret < 0 ? why != NULL : strcmp(buf_cstr(b), want) == 0),
       "BODY[%s]: %s", spec, name);
    if (ret != want_ret || (ret >= 0 && strcmp(buf_cstr(b), want) != 0))
        diag("  got %d '%s', want %d '%s'", ret, buf_cstr(b), want_ret, want);
    mime_free(&root);
    buf_free(&b);
}

static void is_section(const char *msg, const char *spec, int want_ret, const char *want,
                       const char *name)
{
    is_section_n(msg, strlen(msg), spec, want_ret, want, name);
}

static void is_binary(const char *msg, size_t len, const char *spec, int want_ret,
                      const char *want, size_t want_len, const char *name)
{
    mime_part_t *root = mime_parse(msg, len);
    buf_t *b = buf_new(0);
    const char *why = NULL;
    int ret = mime_binary(b, root, msg, spec, &why);

    ok(ret == want_ret && b->len == want_len && memcmp(b->data, want, want_len) == 0,
       "BINARY[%s]: %s", spec, name);
    if (ret != want_ret || b->len != want_len || memcmp(b->data, want, want_len) != 0)
        diag("  got %d '%s' (%zu), want %d '%s'", ret, buf_cstr(b), b->len, want_ret, want);
    mime_free(&root);
    buf_free(&b);
}

static void is_2047(const char *in, const char *want, const char *name)
{
    buf_t *b = buf_new(0);

    ok(rfc2047_decode(b, in, strlen(in)) == 0 && strcmp(buf_cstr(b), want) == 0,
       "rfc2047: %s", name);
    if (strcmp(buf_cstr(b), want) != 0)
        diag("  got '%s', want '%s'", buf_cstr(b), want);
    buf_free(&b);
}

/* Parentheses balanced outside quoted strings and literals. */
static bool balanced(const char *s, size_t n)
{
    long depth = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') {
            for (i++; i < n && s[i] != '"'; i++)
                if (s[i] == '\\')
                    i++;
        } else if (s[i] == '{') {
            size_t k = strtoul(s + i + 1, NULL, 10);

            i = (size_t)(strchr(s + i, '\n') - s) + k;
        } else if (s[i] == '(') {
            depth++;
        } else if (s[i] == ')' && --depth < 0) {
            return false;
        }
    }
    return depth == 0;
}

static size_t tree_depth(const mime_part_t *p)
{
    size_t d = 0;

    for (size_t i = 0; i < p->nchildren; i++) {
        size_t c = tree_depth(p->children[i]) + 1;

        d = c > d ? c : d;
    }
    if (p->message) {
        size_t c = tree_depth(p->message) + 1;

        d = c > d ? c : d;
    }
    return d;
}

static size_t tree_count(const mime_part_t *p)
{
    size_t n = 1;

    for (size_t i = 0; i < p->nchildren; i++)
        n += tree_count(p->children[i]);
    if (p->message)
        n += tree_count(p->message);
    return n;
}

#define DEFAULT_TEXT "\"text\" \"plain\" (\"charset\" \"us-ascii\")"

static void test_structure(void)
{
    const char *m;

    m = "From: a@b\r\nSubject: hi\r\n\r\nhello\r\n";
    is_bs(m, "(" DEFAULT_TEXT " NIL NIL \"7bit\" 7 1 NIL NIL NIL NIL)", "single part, defaults");
    is_body(m, "(" DEFAULT_TEXT " NIL NIL \"7bit\" 7 1)", "single part");

    m = "Content-Type: Text/HTML; Charset=\"UTF-8\"; format=flowed (c)\r\n"
        "Content-Transfer-Encoding: Quoted-Printable\r\n"
        "Content-ID: <id@x>\r\nContent-Description: a\r\n  description\r\n"
        "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\nContent-Language: en, de-DE\r\n"
        "Content-Location: http://example.com/x\r\n"
        "Content-Disposition: inline; filename=\"a b.html\"\r\n\r\nx\r\ny";
    is_bs(m, "(\"Text\" \"HTML\" (\"Charset\" \"UTF-8\" \"format\" \"flowed\") \"<id@x>\" "
             "\"a  description\" \"Quoted-Printable\" 4 1 \"Q2hlY2sgSW50ZWdyaXR5IQ==\" "
             "(\"inline\" (\"filename\" \"a b.html\")) (\"en\" \"de-DE\") \"http://example.com/x\")",
          "every field, as sent");

    m = "Content-Type: text/plain; format=flowed\r\n\r\nx";
    is_bs(m, "(\"text\" \"plain\" (\"format\" \"flowed\" \"charset\" \"us-ascii\") NIL NIL "
             "\"7bit\" 1 0 NIL NIL NIL NIL)", "default charset added last");

    m = "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"outer b\"\r\n\r\n"
        "preamble mentions --outer b\r\n"
        "--outer b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain\r\n"
        "--outer b\r\nContent-Type: multipart/mixed;\r\n\tboundary=inner\r\n\r\n"
        "--inner\r\nContent-Type: text/html\r\nContent-Disposition: inline\r\n\r\n<p>hi</p>\r\n"
        "--inner\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\n"
        "Content-Disposition: attachment;\r\n filename*0*=utf-8''%E2%82%AC;\r\n filename*1=\" rates.pdf\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--inner--\r\ninner epilogue\r\n"
        "--outer b--\r\nouter epilogue\r\n";
    is_bs(m, "((" "\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 5 0 NIL NIL NIL NIL)"
             "((\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 9 0 NIL (\"inline\" NIL) NIL NIL)"
             "(\"application\" \"pdf\" (\"name\" \"a.pdf\") NIL NIL \"base64\" 12 NIL "
             "(\"attachment\" (\"filename*\" \"utf-8''%E2%82%AC rates.pdf\")) NIL NIL) "
             "\"mixed\" (\"boundary\" \"inner\") NIL NIL NIL) "
             "\"alternative\" (\"boundary\" \"outer b\") NIL NIL NIL)",
          "multipart/mixed inside multipart/alternative, RFC 2231");
    is_body(m, "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 5 0)"
               "((\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 9 0)"
               "(\"application\" \"pdf\" (\"name\" \"a.pdf\") NIL NIL \"base64\" 12) \"mixed\") "
               "\"alternative\")", "nested multiparts");

    m = "Subject: fwd\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n"
        "--b1\r\n\r\nsee attached\r\n"
        "--b1\r\nContent-Type: message/rfc822\r\n\r\n"
        "From: Inner <i@n>\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=b2\r\n\r\n"
        "--b2\r\n\r\nplain\r\n--b2\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n--b2--\r\n"
        "\r\n--b1--\r\n";
    is_bs(m, "((" DEFAULT_TEXT " NIL NIL \"7bit\" 12 0 NIL NIL NIL NIL)"
             "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 153 "
             "(NIL \"inner\" ((\"Inner\" NIL \"i\" \"n\")) ((\"Inner\" NIL \"i\" \"n\")) "
             "((\"Inner\" NIL \"i\" \"n\")) NIL NIL NIL NIL NIL) "
             "((" DEFAULT_TEXT " NIL NIL \"7bit\" 5 0 NIL NIL NIL NIL)"
             "(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 0 NIL NIL NIL NIL) "
             "\"alternative\" (\"boundary\" \"b2\") NIL NIL NIL) 12 NIL NIL NIL NIL) "
             "\"mixed\" (\"boundary\" \"b1\") NIL NIL NIL)", "message/rfc822 inside multipart");

    m = "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: one\r\n\r\n1\r\n"
        "--d\r\nContent-Type: text/plain\r\n\r\n2\r\n--d--\r\n";
    is_body(m, "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 17 "
               "(NIL \"one\" NIL NIL NIL NIL NIL NIL NIL NIL) (" DEFAULT_TEXT " NIL NIL \"7bit\" 1 0) 2)"
               "(" DEFAULT_TEXT " NIL NIL \"7bit\" 1 0) \"digest\")", "digest parts default to message/rfc822");

    m = "Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n\r\none\r\n--z\r\n"
        "Content-Type: text/html\r\n\r\ntwo\r\nno end\r\n";
    is_body(m, "((" DEFAULT_TEXT " NIL NIL \"7bit\" 3 0)"
               "(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 13 2) \"mixed\")",
            "missing closing boundary: the last part runs to the end");

    m = "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n"
        "Content-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\n\r\none\r\n--o\r\n\r\ntwo\r\n--o--\r\n";
    is_body(m, "(((" DEFAULT_TEXT " NIL NIL \"7bit\" 3 0) \"alternative\")"
               "(" DEFAULT_TEXT " NIL NIL \"7bit\" 3 0) \"mixed\")", "an outer boundary ends inner parts");

    m = "Content-Type: multipart/mixed; boundary=q\r\n\r\nthis mentions --q\r\n --q with a space\r\n"
        "--qx is a prefix match\r\n\r\nbody\r\n--q  \r\n\r\nlast\r\n--q--x\r\nepilogue\r\n";
    is_body(m, "((" DEFAULT_TEXT " NIL NIL \"7bit\" 4 0)(" DEFAULT_TEXT " NIL NIL \"7bit\" 4 0) \"mixed\")",
            "boundary text in the preamble; prefix matches");

    m = "Content-Type: multipart/mixed\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n";
    is_body(m, "(" DEFAULT_TEXT " NIL NIL \"7bit\" 17 4)", "multipart without boundary: text/plain");
    m = "Content-Type: multipart/mixed; boundary=yy\r\n\r\npre\r\n--xx\r\n\r\nx\r\n";
    is_bs(m, "(" DEFAULT_TEXT " NIL NIL \"7bit\" 16 4 NIL NIL NIL NIL)",
          "boundary never found: text/plain");
    m = "Content-Type: multipart/signed; boundary*=us-ascii''abc\r\n\r\n--abc\r\n\r\nx\r\n--abc--\r\n";
    is_body(m, "((" DEFAULT_TEXT " NIL NIL \"7bit\" 1 0) \"signed\")", "an RFC 2231 boundary");

    is_body("Content-Type: foo\r\n\r\nx", "(" DEFAULT_TEXT " NIL NIL \"7bit\" 1 0)", "no subtype");
    is_body("Content-Type: /plain\r\n\r\nx", "(" DEFAULT_TEXT " NIL NIL \"7bit\" 1 0)", "no type");
    is_body("Content-Type: text/\r\n\r\nx", "(" DEFAULT_TEXT " NIL NIL \"7bit\" 1 0)", "empty subtype");
    is_body("Content-Type: text/html\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n",
            "(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 3)", "the first Content-Type counts");

    m = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n"
        "garbage\r\nmore garbage\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n--b--\r\n";
    is_body(m, "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 21 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) "
               "(" DEFAULT_TEXT " NIL NIL \"7bit\" 0 0) 1)"
               "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 0 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) "
               "(" DEFAULT_TEXT " NIL NIL \"7bit\" 0 0) 0) \"mixed\")", "message/rfc822 with garbage, and empty");

    is_body("", "(" DEFAULT_TEXT " NIL NIL \"7bit\" 0 0)", "empty message");
    is_body("\r\n", "(" DEFAULT_TEXT " NIL NIL \"7bit\" 0 0)", "an empty line");
    is_body("\r\nbody only\r\n", "(" DEFAULT_TEXT " NIL NIL \"7bit\" 11 1)", "no header");
    is_body("Subject: x\r\nFrom: a@b", "(" DEFAULT_TEXT " NIL NIL \"7bit\" 0 0)", "a header only");
    m = "Subject: lf\nContent-Type: multipart/mixed; boundary=x\n\n--x\n\nA\n--x\n"
        "Content-Type: message/rfc822\n\nSubject: inner\n\nB\n--x--\n";
    is_body(m, "((" DEFAULT_TEXT " NIL NIL \"7bit\" 1 0)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 17 "
               "(NIL \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) (" DEFAULT_TEXT " NIL NIL \"7bit\" 1 0) 2) "
               "\"mixed\")", "bare LF line ends");
    m = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n--b\r\n"
        "Content-Type: text/plain\r\n--b--\r\n";
    is_body(m, "((\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)"
               "(" DEFAULT_TEXT " NIL NIL \"7bit\" 0 0) \"mixed\")", "empty parts, a header cut by a boundary");
    is_section(m, "1.MIME", 0, "Content-Type: text/html\r\n", "the empty line before a boundary is the boundary's");
    is_section(m, "2.MIME", 0, "Content-Type: text/plain", "a header cut by a boundary");
    m = "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/alternative; boundary=i\r\n"
        "\r\n--o\r\n\r\ntwo\r\n--o--\r\n";
    is_body(m, "((" DEFAULT_TEXT " NIL NIL \"7bit\" 0 0)(" DEFAULT_TEXT " NIL NIL \"7bit\" 3 0) \"mixed\")",
            "a multipart that an outer boundary follows at once: an empty text/plain");
    is_section(m, "1.MIME", 0, "Content-Type: multipart/alternative; boundary=i\r\n",
               "... whose header gives its empty line to the boundary (a fuzzer find: it stayed outside its parent)");
    m = "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/alternative; boundary=i\r\n"
        "\r\n--i\r\n\r\none\r\n--i--\r\n--o\r\n\r\ntwo\r\n--o--\r\n";
    is_section(m, "1", 0, "--i\r\n\r\none\r\n--i--\r\n", "a closing line that a boundary follows keeps its line end");
    m = "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: message/rfc822\r\n\r\n"
        "Subject: x\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n\r\nin\r\n--i--\r\n--o--\r\n";
    is_section(m, "1", 0, "Subject: x\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n\r\nin\r\n--i--\r\n",
               "... and so does the message/rfc822 around it");
    is_bs("Content-Type: message/global\r\n\r\nSubject: g\r\n\r\nx",
          "(\"message\" \"global\" NIL NIL NIL \"7bit\" 15 NIL NIL NIL NIL)", "message/global: a basic part");
}

static void test_limits(void)
{
    buf_t *m = buf_new(0), *b = buf_new(0);
    mime_part_t *root;

    for (int i = 0; i < 200; i++)
        buf_printf(m, "Content-Type: multipart/mixed; boundary=\"=_%d_=\"\r\n\r\n--=_%d_=\r\n", i, i);
    buf_append_str(m, "\r\nleaf\r\n");
    root = mime_parse(m->data, m->len);
    is_int(tree_depth(root), MIME_DEPTH_MAX, "200 nested multiparts: %d levels", MIME_DEPTH_MAX);
    mime_bodystructure(b, root, m->data, true);
    ok(balanced(b->data, b->len), "200 nested multiparts: BODYSTRUCTURE balanced (%zu octets)", b->len);
    like(b->data, "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" ",
         "the deepest multipart is a text/plain leaf");
    mime_free(&root);

    buf_reset(m);
    buf_reset(b);
    for (int i = 0; i < 200; i++)
        buf_printf(m, "Subject: %d\r\nContent-Type: message/rfc822\r\n\r\n", i);
    buf_append_str(m, "\r\nleaf\r\n");
    root = mime_parse(m->data, m->len);
    is_int(tree_depth(root), MIME_DEPTH_MAX, "200 nested messages: %d levels", MIME_DEPTH_MAX);
    mime_bodystructure(b, root, m->data, true);
    ok(balanced(b->data, b->len), "200 nested messages: BODYSTRUCTURE balanced");
    mime_free(&root);

    buf_reset(m);
    buf_reset(b);
    buf_append_str(m, "Content-Type: multipart/mixed; boundary=b\r\n\r\n");
    for (int i = 0; i < MIME_PARTS_MAX + 10; i++)
        buf_printf(m, "--b\r\n\r\n%d\r\n", i);
    buf_append_str(m, "--b--\r\n");
    root = mime_parse(m->data, m->len);
    is_int(tree_count(root), MIME_PARTS_MAX, "%d parts: the tree holds %d", MIME_PARTS_MAX + 10, MIME_PARTS_MAX);
    ok(root->nchildren == MIME_PARTS_MAX - 1
       && root->children[root->nchildren - 1]->body_off + root->children[root->nchildren - 1]->body_len == m->len,
       "the rest of the message goes to the last part");
    mime_bodystructure(b, root, m->data, false);
    ok(balanced(b->data, b->len), "many parts: BODY balanced");
    mime_free(&root);
    buf_free(&m);
    buf_free(&b);
}

static void test_envelope(void)
{
    const char *m;

    m = "Date: Mon, 7 Dec 2020 10:00:00 +0100\r\nSubject:  multi\r\n   line\t subject \r\n"
        "From: \"Sender, The\" <s@example.com>\r\nSender: s2@example.com\r\nReply-To: r@x.y\r\n"
        "To: A Group: a@x.y, \"B \\\"b\\\"\" <b@x.y>; , c@z\r\nCc: undisclosed-recipients:;\r\n"
        "Bcc: <@r1,@r2:u@h>\r\nIn-Reply-To: <x@y>\r\n  <z@w>\r\nMessage-ID: <abc@def>\r\n"
        "Subject: second\r\n\r\nbody\r\n";
    is_env(m, false, "(\"Mon, 7 Dec 2020 10:00:00 +0100\" \"multi line subject\" "
                     "((\"Sender, The\" NIL \"s\" \"example.com\")) ((NIL NIL \"s2\" \"example.com\")) "
                     "((NIL NIL \"r\" \"x.y\")) "
                     "((NIL NIL \"A Group\" NIL)(NIL NIL \"a\" \"x.y\")(\"B \\\"b\\\"\" NIL \"b\" \"x.y\")"
                     "(NIL NIL NIL NIL)(NIL NIL \"c\" \"z\")) "
                     "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) "
                     "((NIL \"@r1,@r2\" \"u\" \"h\")) \"<x@y>  <z@w>\" \"<abc@def>\")",
           "every field, groups, a route, the first Subject");

    is_env("From: a@b\r\n\r\n", false, "(NIL NIL ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) "
                                       "((NIL NIL \"a\" \"b\")) NIL NIL NIL NIL NIL)",
           "Sender and Reply-To default to From");
    is_env("", false, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)", "no header");
    is_env("Subject:\r\nFrom:\r\n\r\n", false, "(NIL \"\" NIL NIL NIL NIL NIL NIL NIL NIL)", "empty fields");

    is_env("To: Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>, user@host (Real Name),"
           " undisclosed, a b c, @dom, user@, <>, \"john doe\"@example.com, x@[1.2.3.4]\r\n\r\n", false,
           "(NIL NIL NIL NIL NIL ((\"Pete\" NIL \"pete\" \"silly.test\")(\"Real Name\" NIL \"user\" \"host\")"
           "(NIL NIL \"undisclosed\" \"MISSING_DOMAIN\")(\"a b c\" NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")"
           "(NIL NIL \"MISSING_MAILBOX\" \"dom\")(NIL NIL \"user\" \"MISSING_DOMAIN\")"
           "(NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")(NIL NIL \"john doe\" \"example.com\")"
           "(NIL NIL \"x\" \"[1.2.3.4]\")) NIL NIL NIL NIL)",
           "comments, bare words, missing local part and domain, quoted local part, literal domain");
    is_env("To: a@b c@d, Group: e@f; g@h\r\nCc: x@y\r\nCC: z@w\r\n\r\n", false,
           "(NIL NIL NIL NIL NIL ((NIL NIL \"a\" \"b\")(NIL NIL \"Group\" NIL)(NIL NIL \"e\" \"f\")(NIL NIL NIL NIL)) "
           "((NIL NIL \"x\" \"y\")(NIL NIL \"z\" \"w\")) NIL NIL NIL)",
           "junk after an address is skipped; repeated Cc fields add up");

    m = "Subject: =?iso-8859-1?q?caf=E9?= =?utf-8?b?w6k=?=\r\nFrom: =?utf-8?q?J=C3=B6rg?= <j@x>\r\n\r\n";
    is_env(m, false, "(NIL \"=?iso-8859-1?q?caf=E9?= =?utf-8?b?w6k=?=\" "
                     "((\"=?utf-8?q?J=C3=B6rg?=\" NIL \"j\" \"x\")) ((\"=?utf-8?q?J=C3=B6rg?=\" NIL \"j\" \"x\")) "
                     "((\"=?utf-8?q?J=C3=B6rg?=\" NIL \"j\" \"x\")) NIL NIL NIL NIL NIL)",
           "encoded words stay as they are");
    is_env(m, true, "(NIL \"caf\xc3\xa9\xc3\xa9\" ((\"J\xc3\xb6rg\" NIL \"j\" \"x\")) "
                    "((\"J\xc3\xb6rg\" NIL \"j\" \"x\")) ((\"J\xc3\xb6rg\" NIL \"j\" \"x\")) NIL NIL NIL NIL NIL)",
           "UTF-8 mode: decoded, quoted");
    is_env("Subject: caf\xc3\xa9\r\n\r\n", false,
           "(NIL {5}\r\ncaf\xc3\xa9 NIL NIL NIL NIL NIL NIL NIL NIL)", "8-bit: a literal");
    is_env("Subject: a\rb\r\nMessage-ID: <a\rb>\r\n\r\n", false,
           "(NIL \"a b\" NIL NIL NIL NIL NIL NIL NIL {5}\r\n<a\rb>)", "a bare CR: a blank for people, else a literal");
}

static void test_sections(void)
{
    static const char mm[] =
        "Subject: top\r\nFrom: a@b\r\nX-Folded: one\r\n two\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\npart one\r\n"
        "--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nX-A: 1\r\n\r\ninner body\r\n"
        "--b\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\n\r\nalt one\r\n--c\r\n\r\nalt\0two\r\n--c--\r\n"
        "--b--\r\n";
    const char *single = "Subject: s\r\n\r\nbody\r\n";
    const char *m = mm, *hdronly = "Subject: h\r\nFrom: a@b";

#define is_section(msg, ...) is_section_n(msg, msg == mm ? sizeof(mm) - 1 : strlen(msg), __VA_ARGS__)
    is_section(single, "", 0, single, "the whole message");
    is_section(m, "HEADER", 0, "Subject: top\r\nFrom: a@b\r\nX-Folded: one\r\n two\r\n"
               "Content-Type: multipart/mixed; boundary=b\r\n\r\n", "the header");
    is_section(m, "header.fields (x-folded SUBJECT \"from\")", 0,
               "Subject: top\r\nFrom: a@b\r\nX-Folded: one\r\n two\r\n\r\n", "HEADER.FIELDS, any case, folding kept");
    is_section(m, "HEADER.FIELDS.NOT (Subject From X-Folded)", 0,
               "Content-Type: multipart/mixed; boundary=b\r\n\r\n", "HEADER.FIELDS.NOT");
    is_section(m, "HEADER.FIELDS (X-None)", 0, "\r\n", "HEADER.FIELDS matching nothing: the empty line");
    is_section(m, "1", 0, "part one", "part 1");
    is_section(m, "1.MIME", 0, "Content-Type: text/plain\r\n\r\n", "1.MIME");
    is_section(m, "1.TEXT", 1, "", "TEXT of a part that is no message: empty");
    is_section(m, "2", 0, "Subject: inner\r\nX-A: 1\r\n\r\ninner body", "a message/rfc822 part");
    is_section(m, "2.HEADER", 0, "Subject: inner\r\nX-A: 1\r\n\r\n", "2.HEADER");
    is_section(m, "2.TEXT", 0, "inner body", "2.TEXT");
    is_section(m, "2.HEADER.FIELDS (X-A)", 0, "X-A: 1\r\n\r\n", "2.HEADER.FIELDS");
    is_section(m, "2.1", 0, "inner body", "2.1: the message's own part 1");
    is_section(m, "2.MIME", 0, "Content-Type: message/rfc822\r\n\r\n", "2.MIME");
    is_section(m, "3.2", 0, "alt\x80two", "3.2 (a NUL sent as 0x80)");
    is_section(m, "3.2.MIME", 0, "\r\n", "an empty MIME header");
    is_section(m, "4", 1, "", "no part 4");
    is_section(m, "1.1", 0, "part one", "a leaf in a multipart is its own part 1 (as Dovecot)");
    is_section(m, "1.1.1", 1, "", "but has no part 1.1.1");
    is_section(m, "3.5.1", 1, "", "no part 3.5.1");
    is_section(single, "1", 0, "body\r\n", "part 1 of a single-part message: its body");
    is_section(single, "1.MIME", 0, "Subject: s\r\n\r\n", "1.MIME of a single-part message: its header");
    is_section(single, "TEXT", 0, "body\r\n", "TEXT");
    is_section(single, "2", 1, "", "no part 2 in a single-part message");
    is_section(single, "1.1", 1, "", "nor part 1.1 (it is no message/rfc822)");
    is_section(hdronly, "HEADER.FIELDS (FROM)", 0, "From: a@b\r\n",
               "a header without an end gives no empty line");

    is_section(m, "MIME", -1, "", "MIME needs a part number");
    is_section(m, "0", -1, "", "part 0");
    is_section(m, "01", -1, "", "a leading zero");
    is_section(m, "1.", -1, "", "a trailing dot");
    is_section(m, "1..2", -1, "", "two dots");
    is_section(m, "HEADERS", -1, "", "an unknown keyword");
    is_section(m, "TEXT ", -1, "", "junk after TEXT");
    is_section(m, "HEADER.FIELDS", -1, "", "HEADER.FIELDS without a list");
    is_section(m, "HEADER.FIELDS ()", -1, "", "an empty list");
    is_section(m, "HEADER.FIELDS (A", -1, "", "an unclosed list");
    is_section(m, "HEADER.FIELDS (A) x", -1, "", "junk after the list");
    is_section(m, "HEADER.FIELDS (\"A)", -1, "", "an unterminated quoted name");
#undef is_section
}

static void test_binary(void)
{
    const char *b64 = "Content-Transfer-Encoding: base64\r\n\r\naGVs\r\nbG8g!!d2 9y\r\nbGQ=\r\n";
    const char *qp = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
                     "Content-Transfer-Encoding: Quoted-Printable\r\n\r\n"
                     "hello=20world=\r\nagain =3D=3d =XY end  \r\nsoft with blanks=  \r\nlast=\r\n"
                     "--b\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nabc\r\n"
                     "--b\r\nContent-Transfer-Encoding: 8bit\r\n\r\nraw\0data\r\n--b--\r\n";
    size_t qplen = strlen(qp) + strlen(qp + strlen(qp) + 1) + 1;

    is_binary(b64, strlen(b64), "1", 0, "hello world", 11, "base64 with line breaks and garbage");
    is_binary(b64, strlen(b64), "", 0, b64, strlen(b64), "BINARY[]: the message as it is");
    is_binary("Content-Transfer-Encoding: base64\r\n\r\naGk=aGk\r\n", 46, "1", 0, "hihi", 4,
              "base64: '=' ends a group, a partial group at the end");
    is_binary(qp, qplen, "1", 0, "hello worldagain == =XY end\r\nsoft with blankslast", 49,
              "quoted-printable: soft breaks, trailing blanks, a bad escape kept");
    is_binary(qp, qplen, "2", -1, "", 0, "an unknown encoding");
    is_binary(qp, qplen, "3", 0, "raw\0data", 8, "8bit: as it is, NUL included");
    is_binary(qp, qplen, "4", 1, "", 0, "no part 4");
    is_binary(qp, qplen, "1.MIME", -2, "", 0, "BINARY takes no MIME");
    is_binary(qp, qplen, "HEADER", -2, "", 0, "BINARY takes no HEADER");
    is_binary(qp, qplen, "0", -2, "", 0, "BINARY: part 0");
}

static void test_2047(void)
{
    buf_t *b = buf_new(0);

    is_2047("=?utf-8?B?w6k=?=", "\xc3\xa9", "B");
    is_2047("=?ISO-8859-1?Q?caf=E9_au_lait?=", "caf\xc3\xa9 au lait", "Q, '_' a space, latin-1");
    is_2047("a =?utf-8?q?x?=  =?utf-8?q?y?= b", "a xy b", "blanks between adjacent words dropped");
    is_2047("=?utf-8?q?x?= and =?utf-8?q?y?=", "x and y", "text between words kept");
    is_2047("=?utf-8?b?4oI=?= =?utf-8?b?rA==?=", "\xe2\x82\xac", "a character split between two words");
    is_2047("=?x-klingon?q?abc=FF?=", "abc\xff", "unknown charset: the raw octets");
    is_2047("=?utf-8*en?q?hi?=", "hi", "a language after the charset");
    is_2047("=?utf-8?x?abc?= =?utf-8?q?abc =?utf-8?q?", "=?utf-8?x?abc?= =?utf-8?q?abc =?utf-8?q?",
            "broken encoded words stay as they are");
    is_2047("=?utf-8?q?a?==?utf-8?q?b?=", "ab", "words without a blank between");
    is_2047("plain text", "plain text", "no encoded words");

    ok(charset_to_utf8(b, "ISO-8859-15", "\xa4", 1) == 0 && strcmp(b->data, "\xe2\x82\xac") == 0,
       "charset_to_utf8: iso-8859-15");
    buf_reset(b);
    ok(charset_to_utf8(b, "utf-8", "a\xff" "b\xc3", 4) == 0
       && strcmp(b->data, "a\xef\xbf\xbd" "b\xef\xbf\xbd") == 0, "invalid UTF-8: U+FFFD");
    buf_reset(b);
    ok(charset_to_utf8(b, "Shift_JIS", "\x82\xa0", 2) == 0 && strcmp(b->data, "\xe3\x81\x82") == 0,
       "charset_to_utf8: Shift_JIS");
    buf_reset(b);
    ok(charset_to_utf8(b, "x-nonsense", "abc", 3) == -1 && b->len == 0, "unknown charset: -1, nothing added");
    ok(charset_to_utf8(b, "utf-8//TRANSLIT", "abc", 3) == -1 && b->len == 0, "a charset with '/': unknown");
    buf_free(&b);
}

static void test_search(void)
{
    const char *m =
        "Subject: =?utf-8?q?caf=C3=A9?=\r\nTo: a@b\r\nsubject: second\r\nX-Fold: a\r\n b\r\n"
        "Content-Type: multipart/mixed; boundary=b\r\n\r\npreamble\r\n"
        "--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        "caf=E9\r\n"
        "--b\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nPGI+w6k8L2I+\r\n"
        "--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0K\r\n"
        "--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: =?iso-8859-1?q?inn=E9r?=\r\n\r\ninner text\r\n"
        "--b--\r\nepilogue\r\n";
    mime_part_t *root = mime_parse(m, strlen(m));
    buf_t *b = buf_new(0);

    mime_header_text(b, root, m, "SUBJECT");
    is_str(buf_cstr(b), "caf\xc3\xa9\nsecond", "header text of one field, decoded");
    buf_reset(b);
    mime_header_text(b, root, m, "x-fold");
    is_str(buf_cstr(b), "a b", "unfolded");
    buf_reset(b);
    mime_header_text(b, root, m, "X-None");
    is_str(buf_cstr(b), "", "no such field");
    buf_reset(b);
    mime_header_text(b, root, m, NULL);
    like(buf_cstr(b), "Subject: caf\xc3\xa9\nTo: a@b\nsubject: second\nX-Fold: a b\nContent-Type: ",
         "the whole header");
    buf_reset(b);
    mime_body_text(b, root, m);
    is_str(buf_cstr(b), "caf\xc3\xa9\n<b>\xc3\xa9</b>\nSubject: inn\xc3\xa9r\ninner text",
           "body text: text parts decoded and converted, the inner header, no image, no preamble");
    mime_free(&root);
    buf_free(&b);
}

int main(void)
{
    test_structure();
    test_limits();
    test_envelope();
    test_sections();
    test_binary();
    test_2047();
    test_search();
    return done_testing();
}
