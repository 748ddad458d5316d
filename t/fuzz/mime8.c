/*
 * t/fuzz/mime8.c - libFuzzer harness for lib/mime8.c, the SMTP client's
 * 8-bit to 7-bit MIME downgrade, which parses whatever content a sender
 * anywhere put into a message.
 *
 * Input layout: byte 0 picks the limits (even: MIME8_LIMITS_DEFAULT; odd:
 * tiny ones, so the depth, header and part limits are reached); the rest is
 * message content, split into lines at LF (a CR before the LF is dropped,
 * as the client does).  Both passes run over the lines.
 *
 * Checked: no crash, leak or unbounded growth (ASan, -rss_limit_mb); the
 * downgrade never makes 8-bit data up: every output line holding an octet
 * over 127 or a NUL is an input line passed on as it was; content with no
 * such octet and no "8bit" or "binary" anywhere comes out unchanged (with
 * the default limits: past parts_max a part counts as 8-bit); a
 * second run over the same input gives the same output.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "fuzzlib.h"
#include "mime8.h"

static int emit(void *ctx, const char *line, size_t len)
{
    buf_t *out = ctx;

    buf_append(out, line, len);
    buf_putc(out, '\n');
    return 0;
}

static void run(const struct mime8_limits *lim, const char *text, size_t len, buf_t *out)
{
    mime8_t *m = mime8_new(lim);

    for (int pass = 0; pass < 2; pass++) {
        size_t start = 0;

        while (start < len) {
            const char *nl = memchr(text + start, '\n', len - start);
            size_t end = nl ? (size_t)(nl - text) : len;

            if (pass == 0)
                mime8_scan(m, text + start, end - start);
            else
                mime8_convert(m, text + start, end - start, emit, out);
            start = end + 1;
        }
    }
    mime8_convert_end(m, emit, out);
    mime8_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct mime8_limits tiny = {3, 1000, 4};
    static int inited;
    const struct mime8_limits *lim;
    buf_t *text, *norm, *out1, *out2;
    int plain = 1;

    if (!inited) {
        fuzz_init();
        inited = 1;
    }
    if (size < 1)
        return 0;
    lim = (data[0] & 1) ? &tiny : NULL;
    data++;
    size--;

    /* The lines as the client gives them: CR LF or LF ends, CR dropped.
     * norm is "\n" + every line + "\n", to look whole lines up in. */
    text = buf_new(0);
    norm = buf_new(0);
    buf_putc(norm, '\n');
    {
        size_t start = 0;

        while (start < size) {
            const uint8_t *nl = memchr(data + start, '\n', size - start);
            size_t end = nl ? (size_t)(nl - data) : size, e = end;

            if (e > start && data[e - 1] == '\r')
                e--;
            buf_append(text, data + start, e - start);
            buf_append(norm, data + start, e - start);
            buf_putc(norm, '\n');
            if (nl)
                buf_putc(text, '\n');
            start = end + 1;
        }
    }
    for (size_t i = 0; i < text->len; i++)
        if ((unsigned char)text->data[i] >= 0x80 || text->data[i] == '\0')
            plain = 0;
    /* No NUL in text now, so strcasestr sees all of it. */
    if (plain && (strcasestr(text->data, "8bit") || strcasestr(text->data, "binary")))
        plain = 0;

    out1 = buf_new(0);
    out2 = buf_new(0);
    run(lim, text->data, text->len, out1);
    run(lim, text->data, text->len, out2);
    if (out1->len != out2->len || memcmp(out1->data, out2->data, out1->len) != 0)
        fuzz_fail("two runs over the same input differ");

    /* Every 8-bit output line is an input line. */
    for (size_t start = 0; start < out1->len;) {
        const char *nl = memchr(out1->data + start, '\n', out1->len - start);
        size_t end = (size_t)(nl - out1->data);
        int eight = 0;

        for (size_t i = start; i < end; i++)
            if ((unsigned char)out1->data[i] >= 0x80 || out1->data[i] == '\0')
                eight = 1;
        if (eight) {
            buf_t *needle = buf_new(0);

            buf_putc(needle, '\n');
            buf_append(needle, out1->data + start, end - start);
            buf_putc(needle, '\n');
            if (!memmem(norm->data, norm->len, needle->data, needle->len))
                fuzz_fail("an 8-bit output line that is no input line: %.*s",
                          (int)(end - start), out1->data + start);
            buf_free(&needle);
        }
        start = end + 1;
    }
    if (plain && lim == NULL) {
        /* (With the tiny limits, parts past parts_max count as 8-bit.)
         * Unchanged: the output is the input's lines, each with "\n". */
        buf_t *want = buf_new(0);

        /* Each line with its "\n"; a trailing LF ends the last line. */
        buf_append(want, text->data, text->len);
        if (want->len > 0 && want->data[want->len - 1] != '\n')
            buf_putc(want, '\n');
        if (want->len != out1->len || memcmp(want->data, out1->data, want->len) != 0)
            fuzz_fail("7-bit content without 8bit/binary labels changed");
        buf_free(&want);
    }
    buf_free(&text);
    buf_free(&norm);
    buf_free(&out1);
    buf_free(&out2);
    return 0;
}
