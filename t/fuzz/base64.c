/*
 * t/fuzz/base64.c - libFuzzer harness for lib/base64.c (strict base64)
 * and lib/saslprep.c (the UTF-8 check and SASLprep), the decoders every
 * SASL message passes through first.
 *
 * The input, whole, is: text for base64_decode(), compared with a model
 * written plainly from RFC 4648 (same verdict, same bytes), and which
 * must encode back to exactly itself when it decodes; bytes for
 * base64_encode(), which must decode back to them at the predicted
 * length; a string for saslprep_utf8_valid(), compared with a model
 * driven by the Unicode standard's table of well-formed byte sequences
 * (Table 3-7); and for saslprep(), which may accept only valid UTF-8 and
 * must then give valid, non-empty UTF-8.  Also decoded into a buffer with
 * a small limit: refused, or all of it, never half.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "buf.h"
#include "fuzzlib.h"
#include "saslprep.h"

static int model_value(uint8_t c)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c ? strchr(a, c) : NULL;

    return p ? (int)(p - a) : -1;
}

/* RFC 4648 section 4, canonical only: 0 and the bytes, or -1. */
static int model_decode(const uint8_t *t, size_t n, buf_t *out)
{
    if (n % 4)
        return -1;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pads = 0;
        bool last = i + 4 == n;

        for (int k = 0; k < 4; k++) {
            if (t[i + k] == '=' && last && k >= 2) {
                v[k] = 0;
                pads++;
                continue;
            }
            if (pads || (v[k] = model_value(t[i + k])) < 0)
                return -1;
        }
        if (pads == 1 && t[i + 3] != '=')
            return -1;
        {
            unsigned long g = (unsigned long)v[0] << 18 | (unsigned long)v[1] << 12
                              | (unsigned long)v[2] << 6 | (unsigned long)v[3];

            if ((pads == 2 && (g & 0xffff)) || (pads == 1 && (g & 0xff)))
                return -1;      /* bits under the padding */
            buf_putc(out, (int)(g >> 16));
            if (pads < 2)
                buf_putc(out, (int)(g >> 8 & 0xff));
            if (pads < 1)
                buf_putc(out, (int)(g & 0xff));
        }
    }
    return 0;
}

/* Unicode Table 3-7: the well-formed UTF-8 byte sequences. */
static bool model_utf8(const uint8_t *s, size_t n)
{
    static const struct { uint8_t lo0, hi0, lo1, hi1; int len; } rows[] = {
        { 0x01, 0x7f, 0, 0, 1 },            /* NUL excluded, as the module does */
        { 0xc2, 0xdf, 0x80, 0xbf, 2 },
        { 0xe0, 0xe0, 0xa0, 0xbf, 3 }, { 0xe1, 0xec, 0x80, 0xbf, 3 },
        { 0xed, 0xed, 0x80, 0x9f, 3 }, { 0xee, 0xef, 0x80, 0xbf, 3 },
        { 0xf0, 0xf0, 0x90, 0xbf, 4 }, { 0xf1, 0xf3, 0x80, 0xbf, 4 },
        { 0xf4, 0xf4, 0x80, 0x8f, 4 },
    };
    size_t i = 0;

    while (i < n) {
        size_t r;

        for (r = 0; r < sizeof(rows) / sizeof(rows[0]); r++)
            if (s[i] >= rows[r].lo0 && s[i] <= rows[r].hi0)
                break;
        if (r == sizeof(rows) / sizeof(rows[0]) || n - i < (size_t)rows[r].len)
            return false;
        if (rows[r].len > 1 && (s[i + 1] < rows[r].lo1 || s[i + 1] > rows[r].hi1))
            return false;
        for (int k = 2; k < rows[r].len; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xbf)
                return false;
        i += (size_t)rows[r].len;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    buf_t *got = buf_new(0), *want = buf_new(0), *again = buf_new(0), *small;
    int rc = base64_decode(got, (const char *)data, size);
    int mrc = model_decode(data, size, want);
    bool valid;
    char *prep = NULL;

    if (rc != mrc)
        fuzz_fail("base64_decode %d, model %d", rc, mrc);
    if (rc == 0) {
        if (got->len != want->len || memcmp(got->data, want->data, got->len) != 0)
            fuzz_fail("base64_decode bytes differ from the model's");
        if (base64_encode(again, got->data, got->len) < 0 || again->len != size
            || memcmp(again->data, data, size) != 0)
            fuzz_fail("decoded text does not encode back to itself");
    } else if (got->len != 0)
        fuzz_fail("a refused decode left %zu bytes", got->len);

    small = buf_new(16);
    buf_append_str(small, "abc");
    rc = base64_decode(small, (const char *)data, size);
    if (rc == 0 ? small->len != 3 + want->len || mrc != 0
                : small->len != 3 || memcmp(small->data, "abc", 3) != 0)
        fuzz_fail("a limited decode was half done");
    buf_free(&small);

    buf_reset(again);
    buf_reset(got);
    if (base64_encode(again, data, size) < 0 || again->len != base64_encoded_len(size))
        fuzz_fail("encoded length");
    if (base64_decode(got, again->data, again->len) < 0 || got->len != size
        || memcmp(got->data, data, size) != 0)
        fuzz_fail("encode then decode differs");

    valid = saslprep_utf8_valid((const char *)data, size);
    if (valid != model_utf8(data, size))
        fuzz_fail("saslprep_utf8_valid %d, model %d", valid, !valid);
    if (saslprep((const char *)data, size, &prep) == 0) {
        if (!valid)
            fuzz_fail("saslprep accepted invalid UTF-8");
        if (prep == NULL || *prep == '\0' || !model_utf8((uint8_t *)prep, strlen(prep)))
            fuzz_fail("saslprep gave bad output");
    } else if (prep != NULL)
        fuzz_fail("saslprep failed with output");
    free(prep);
    buf_free(&got);
    buf_free(&want);
    buf_free(&again);
    return 0;
}
