/*
 * fuzz/imapparse - libFuzzer harness for lib/imapparse.c, the IMAP command
 * parser that will read everything an IMAP client sends.
 *
 * Input: a client's byte stream.  Lines end at LF (a CR before it is
 * stripped, as the session layer does); a literal the parser asks for is
 * taken from the stream whole (the harness stops when the stream is too
 * short); after each command, done or refused, the parser is reset and
 * goes on with the next line.  Byte 0 is a control byte: bit 0 turns on
 * UTF8=ACCEPT (8-bit quoted strings).
 *
 * Promises checked: a finished command has a tag and a name, at most
 * max_args nodes, lists at most max_depth deep, at most max_total octets of
 * strings and literals, every string NUL-terminated at its length; a
 * refusal has a reason and a too-big literal its size; no leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imapparse.h"
#include "fuzzlib.h"

static const struct imapparse_limits fuzz_lim = {
    .max_args = 200, .max_depth = 8, .max_literal = 4096, .max_total = 16384,
};

static void check_args(const struct imap_arg *args, size_t n, size_t depth, size_t *nodes,
                       size_t *total)
{
    if (depth > fuzz_lim.max_depth)
        fuzz_fail("lists nested %zu deep", depth);
    for (size_t i = 0; i < n; i++) {
        const struct imap_arg *a = &args[i];

        (*nodes)++;
        if (a->type == IMAP_ARG_LIST) {
            check_args(a->list, a->nlist, depth + 1, nodes, total);
        } else if (a->type != IMAP_ARG_NIL) {
            if (a->str == NULL || a->str[a->len] != '\0')
                fuzz_fail("a string not NUL-terminated at its length");
            if (a->type != IMAP_ARG_LITERAL && strlen(a->str) != a->len)
                fuzz_fail("a NUL inside an atom or quoted string");
            *total += a->len;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    struct imapparse_limits lim = fuzz_lim;
    struct imapparse_state st;
    imapparse_t *p;
    size_t pos = 1;
    int rc;

    if (!inited) {
        fuzz_init();
        inited = 1;
    }
    if (size < 1)
        return 0;
    lim.allow_8bit = data[0] & 1;
    p = imapparse_new(&lim);
    while (pos < size) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - (data + pos)) : size - pos, next = pos + len + 1;

        if (len > 0 && data[pos + len - 1] == '\r')
            len--;
        rc = imapparse_line(p, (const char *)data + pos, len, &st);
        pos = next;
        while (rc == IMAPPARSE_LITERAL) {
            if (st.literal_len > fuzz_lim.max_literal)
                fuzz_fail("a literal of %zu octets asked for", st.literal_len);
            if (pos + st.literal_len > size)
                goto out;
            imapparse_literal(p, data + pos, st.literal_len);
            pos += st.literal_len;
            nl = pos < size ? memchr(data + pos, '\n', size - pos) : NULL;
            len = nl ? (size_t)(nl - (data + pos)) : size - pos;
            next = pos + len + 1;
            if (len > 0 && data[pos + len - 1] == '\r')
                len--;
            rc = imapparse_line(p, pos < size ? (const char *)data + pos : "", len, &st);
            pos = next;
        }
        if (rc == IMAPPARSE_DONE) {
            const struct imap_command *c = imapparse_command(p);
            size_t nodes = 0, total = 0;

            if (c == NULL || c->tag == NULL || c->name[0] == '\0')
                fuzz_fail("a finished command without a tag or a name");
            check_args(c->args, c->nargs, 0, &nodes, &total);
            if (nodes > fuzz_lim.max_args || total > fuzz_lim.max_total)
                fuzz_fail("%zu nodes, %zu octets: over the limits", nodes, total);
        } else if (st.why == NULL) {
            fuzz_fail("a refusal without a reason");
        } else if (st.too_big && st.literal_len == 0) {
            fuzz_fail("a literal too big without its size");
        }
        imapparse_reset(p);
    }
out:
    imapparse_free(&p);
    return 0;
}
