/*
 * t/fuzz/imapmime.c - libFuzzer harness for lib/imapmime.c, the MIME
 * structure imapd shows of messages anyone can send.
 *
 * Input: a message; if it starts with '[', what stands up to the first
 * ']' is also tried as a BODY[...] and BINARY[...] spec, and the message
 * starts after the next LF.
 *
 * Checked (besides no crash, leak or read outside the message: ASan sees
 * the input's exact size): every part's header and body lie inside the
 * message, the header before the body, a multipart's parts inside its
 * body and in order, a message/rfc822's message inside its body; the line
 * count is the body's LFs; no more than MIME_DEPTH_MAX levels and
 * MIME_PARTS_MAX parts; a multipart has a part at least; ENVELOPE (both
 * modes), BODYSTRUCTURE and BODY are well-formed IMAP: parentheses
 * balanced outside strings and literals, literals whole, quoted strings
 * without CR, LF or NUL (nor 8-bit octets outside UTF-8 mode);
 * every section and BINARY of every part (numbered as a client would from
 * BODYSTRUCTURE) is accepted, and a part's body section is exactly its
 * octets; a second parse gives the same BODYSTRUCTURE; the SEARCH text
 * functions run.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzzlib.h"
#include "imapmime.h"

static size_t nparts;

static void check_part(const mime_part_t *p, const char *msg, size_t len, size_t lo, size_t hi)
{
    size_t lf = 0, at;

    nparts++;
    if (p->depth > MIME_DEPTH_MAX)
        fuzz_fail("part at depth %u", p->depth);
    if (p->hdr_off < lo || p->hdr_blank > p->hdr_len || p->hdr_off + p->hdr_len > p->body_off
        || p->body_off + p->body_len > hi || hi > len)
        fuzz_fail("part [%zu+%zu, %zu+%zu] outside [%zu, %zu]", p->hdr_off, p->hdr_len,
                  p->body_off, p->body_len, lo, hi);
    for (size_t i = 0; i < p->body_len; i++)
        lf += msg[p->body_off + i] == '\n';
    if (lf != p->body_lines)
        fuzz_fail("body_lines %zu, LFs %zu", p->body_lines, lf);
    if (p->type == NULL || p->subtype == NULL)
        fuzz_fail("no type");
    if (p->nchildren && p->message)
        fuzz_fail("children and a message");
    at = p->body_off;
    for (size_t i = 0; i < p->nchildren; i++) {
        const mime_part_t *c = p->children[i];

        if (c->parent != p || c->depth != p->depth + 1)
            fuzz_fail("child links");
        check_part(c, msg, len, at, p->body_off + p->body_len);
        at = c->body_off + c->body_len;
    }
    if (p->message) {
        if (p->message->hdr_off != p->body_off)
            fuzz_fail("message does not start the body");
        check_part(p->message, msg, len, p->body_off, p->body_off + p->body_len);
    }
    if (strcasecmp(p->type, "multipart") == 0 && p->nchildren == 0)
        fuzz_fail("a multipart without parts");
}

/* Well-formed IMAP output (see the header comment). */
static void check_imap(const char *s, size_t n, bool utf8, const char *what)
{
    long depth = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '"') {
            for (i++; i < n && s[i] != '"'; i++) {
                c = (unsigned char)s[i];
                if (c == '\\')
                    i++;
                else if (c == '\r' || c == '\n' || c == '\0' || (c >= 0x80 && !utf8))
                    fuzz_fail("%s: octet %#x in a quoted string", what, c);
            }
            if (i >= n)
                fuzz_fail("%s: unterminated quoted string", what);
        } else if (c == '{') {
            char *end;
            unsigned long k = strtoul(s + i + 1, &end, 10);

            if (end[0] != '}' || end[1] != '\r' || end[2] != '\n' || (size_t)(end + 3 - s) + k > n)
                fuzz_fail("%s: broken literal", what);
            if (memchr(end + 3, '\0', k))
                fuzz_fail("%s: NUL in a literal", what);
            i = (size_t)(end + 3 - s) + k - 1;
        } else if (c == '(') {
            depth++;
        } else if (c == ')') {
            if (--depth < 0)
                fuzz_fail("%s: unbalanced ')'", what);
        } else if (c == '\r' || c == '\n' || c == '\0') {
            fuzz_fail("%s: bare octet %#x", what, c);
        }
    }
    if (depth != 0)
        fuzz_fail("%s: %ld unclosed '('", what, depth);
}

static void try_spec(const mime_part_t *root, const char *msg, const char *spec, bool valid)
{
    buf_t *b = buf_new(0);
    const char *why = NULL;
    int r = mime_section(b, root, msg, spec, &why);

    if (valid && r < 0)
        fuzz_fail("BODY[%s] refused: %s", spec, why);
    if (r < 0 && why == NULL)
        fuzz_fail("BODY[%s] refused without a reason", spec);
    buf_reset(b);
    why = NULL;
    r = mime_binary(b, root, msg, spec, &why);
    if (r == -2 && why == NULL)
        fuzz_fail("BINARY[%s] refused without a reason", spec);
    buf_free(&b);
}

static size_t nspecs;

/* Sections of part (called path by a client), and of the parts inside. */
static void walk(const mime_part_t *root, const mime_part_t *part, const char *msg,
                 const char *path)
{
    static const char *const suffix[] = {
        "", ".MIME", ".HEADER", ".TEXT", ".HEADER.FIELDS (SUBJECT FROM)",
        ".HEADER.FIELDS.NOT (Content-Type)",
    };
    const mime_part_t *box = part;
    char sub[4096];

    if (++nspecs > 300 || strlen(path) > 3000)
        return;
    if (*path) {
        buf_t *b = buf_new(0), *want = buf_new(0);
        const char *why;

        for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
            snprintf(sub, sizeof(sub), "%s%s", path, suffix[i]);
            try_spec(root, msg, sub, true);
        }
        if (mime_section(b, root, msg, path, &why) != 0)
            fuzz_fail("BODY[%s] of a part that is there", path);
        buf_append(want, msg + part->body_off, part->body_len);
        for (size_t i = 0; i < want->len; i++)
            if (want->data[i] == '\0')
                want->data[i] = (char)0x80;
        if (b->len != want->len || memcmp(b->data, want->data, b->len) != 0)
            fuzz_fail("BODY[%s] is not the part's body", path);
        buf_free(&b);
        buf_free(&want);
    } else if (part->nchildren == 0) {
        walk(root, part, msg, "1");         /* a single-part message is its own part 1 */
        return;
    }
    if (part->nchildren == 0 && part->message) {
        box = part->message;
        if (box->nchildren == 0) {
            snprintf(sub, sizeof(sub), "%s.1", path);
            walk(root, box, msg, sub);
        }
    }
    for (size_t i = 0; i < box->nchildren; i++) {
        snprintf(sub, sizeof(sub), "%s%s%zu", path, *path ? "." : "", i + 1);
        walk(root, box->children[i], msg, sub);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *msg = (const char *)data;
    char *spec = NULL;
    mime_part_t *root, *again;
    buf_t *b, *c;

    if (size && data[0] == '[') {
        const uint8_t *rb = memchr(data, ']', size), *nl;

        if (rb && (nl = memchr(rb, '\n', size - (size_t)(rb - data))) != NULL) {
            spec = strndup(msg + 1, (size_t)(rb - data) - 1);
            size -= (size_t)(nl + 1 - data);
            msg = (const char *)nl + 1;
        }
    }
    /* a copy of exactly the message's size, so ASan sees any read past it */
    char *copy = malloc(size ? size : 1);

    memcpy(copy, msg, size);
    msg = copy;
    root = mime_parse(msg, size);
    nparts = 0;
    check_part(root, msg, size, 0, size);
    if (nparts > MIME_PARTS_MAX)
        fuzz_fail("%zu parts", nparts);
    if (root->hdr_off != 0 || root->body_off + root->body_len != size)
        fuzz_fail("the root is not the whole message");

    b = buf_new(0);
    c = buf_new(0);
    mime_bodystructure(b, root, msg, true);
    check_imap(b->data, b->len, false, "BODYSTRUCTURE");
    again = mime_parse(msg, size);
    mime_bodystructure(c, again, msg, true);
    if (b->len != c->len || memcmp(b->data, c->data, b->len) != 0)
        fuzz_fail("a second parse differs");
    mime_free(&again);
    buf_reset(b);
    mime_bodystructure(b, root, msg, false);
    check_imap(b->data, b->len, false, "BODY");
    for (int utf8 = 0; utf8 < 2; utf8++) {
        buf_reset(b);
        mime_envelope(b, root, msg, utf8);
        check_imap(b->data, b->len, utf8, "ENVELOPE");
    }
    nspecs = 0;
    walk(root, root, msg, "");
    try_spec(root, msg, "", true);
    try_spec(root, msg, "HEADER", true);
    try_spec(root, msg, "TEXT", true);
    try_spec(root, msg, "HEADER.FIELDS.NOT (SUBJECT \"X-A\")", true);
    if (spec)
        try_spec(root, msg, spec, false);

    buf_reset(b);
    mime_header_text(b, root, msg, NULL);
    mime_header_text(b, root, msg, "subject");
    mime_body_text(b, root, msg);

    buf_free(&b);
    buf_free(&c);
    mime_free(&root);
    free(copy);
    free(spec);
    return 0;
}
