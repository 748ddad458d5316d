/*
 * mutf7 - modified UTF-7 for IMAP mailbox names (see mutf7.h).
 */
#include <stdint.h>
#include <string.h>

#include "mutf7.h"

static const char mutf7_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int mutf7_b64_value(char c)
{
    const char *p = c ? strchr(mutf7_b64, c) : NULL;

    return p ? (int)(p - mutf7_b64) : -1;
}

/* One code point from UTF-8 at *s (advanced), or -1 for invalid UTF-8. */
static long mutf7_utf8_next(const unsigned char **s)
{
    const unsigned char *p = *s;
    unsigned long cp;
    int n;

    if (p[0] < 0x80) {
        *s = p + 1;
        return p[0];
    }
    if ((p[0] & 0xe0) == 0xc0) {
        cp = p[0] & 0x1f;
        n = 1;
    } else if ((p[0] & 0xf0) == 0xe0) {
        cp = p[0] & 0x0f;
        n = 2;
    } else if ((p[0] & 0xf8) == 0xf0) {
        cp = p[0] & 0x07;
        n = 3;
    } else {
        return -1;
    }
    for (int i = 1; i <= n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return -1;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)
        || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    *s = p + n + 1;
    return (long)cp;
}

static void mutf7_utf8_put(buf_t *b, unsigned long cp)
{
    if (cp < 0x80) {
        buf_putc(b, (int)cp);
    } else if (cp < 0x800) {
        buf_putc(b, (int)(0xc0 | (cp >> 6)));
        buf_putc(b, (int)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        buf_putc(b, (int)(0xe0 | (cp >> 12)));
        buf_putc(b, (int)(0x80 | ((cp >> 6) & 0x3f)));
        buf_putc(b, (int)(0x80 | (cp & 0x3f)));
    } else {
        buf_putc(b, (int)(0xf0 | (cp >> 18)));
        buf_putc(b, (int)(0x80 | ((cp >> 12) & 0x3f)));
        buf_putc(b, (int)(0x80 | ((cp >> 6) & 0x3f)));
        buf_putc(b, (int)(0x80 | (cp & 0x3f)));
    }
}

int mutf7_encode(const char *utf8, buf_t *out)
{
    const unsigned char *s = (const unsigned char *)utf8;
    buf_t *b = buf_new(0);
    uint32_t bits = 0;
    int nbits = 0, shifted = 0;

    while (*s) {
        long cp = mutf7_utf8_next(&s);

        if (cp < 0) {
            buf_free(&b);
            return -1;
        }
        if (cp >= 0x20 && cp <= 0x7e) {
            if (shifted) {
                if (nbits > 0)
                    buf_putc(b, mutf7_b64[(bits << (6 - nbits)) & 0x3f]);
                buf_putc(b, '-');
                shifted = 0;
                nbits = 0;
            }
            if (cp == '&')
                buf_append_str(b, "&-");
            else
                buf_putc(b, (int)cp);
            continue;
        }
        if (!shifted) {
            buf_putc(b, '&');
            shifted = 1;
            bits = 0;
            nbits = 0;
        }
        for (int u = 0; u < (cp >= 0x10000 ? 2 : 1); u++) {
            uint32_t unit = cp < 0x10000 ? (uint32_t)cp
                            : u == 0 ? 0xd800 + (((uint32_t)cp - 0x10000) >> 10)
                                     : 0xdc00 + (((uint32_t)cp - 0x10000) & 0x3ff);

            bits = (bits << 16) | unit;
            nbits += 16;
            while (nbits >= 6) {
                nbits -= 6;
                buf_putc(b, mutf7_b64[(bits >> nbits) & 0x3f]);
            }
            bits &= (1u << nbits) - 1;
        }
    }
    if (shifted) {
        if (nbits > 0)
            buf_putc(b, mutf7_b64[(bits << (6 - nbits)) & 0x3f]);
        buf_putc(b, '-');
    }
    buf_append(out, b->data, b->len);
    buf_free(&b);
    return 0;
}

int mutf7_decode(const char *mutf7, buf_t *out)
{
    const char *p = mutf7;
    buf_t *b = buf_new(0);
    int just_shifted_out = 0;

    while (*p) {
        unsigned char c = (unsigned char)*p;

        if (c < 0x20 || c > 0x7e)
            goto bad;
        if (c != '&') {
            buf_putc(b, c);
            p++;
            just_shifted_out = 0;
            continue;
        }
        p++;
        if (*p == '-') {                /* "&-" is '&' */
            buf_putc(b, '&');
            p++;
            just_shifted_out = 0;
            continue;
        }
        if (just_shifted_out)
            goto bad;                   /* two shifts back to back */
        {
            uint32_t bits = 0, high = 0;
            int nbits = 0, units = 0, v;

            for (; *p && *p != '-'; p++) {
                if ((v = mutf7_b64_value(*p)) < 0)
                    goto bad;
                bits = (bits << 6) | (uint32_t)v;
                nbits += 6;
                if (nbits >= 16) {
                    uint32_t unit = (bits >> (nbits - 16)) & 0xffff;

                    nbits -= 16;
                    bits &= (1u << nbits) - 1;
                    units++;
                    if (high) {
                        if (unit < 0xdc00 || unit > 0xdfff)
                            goto bad;
                        mutf7_utf8_put(b, 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00));
                        high = 0;
                    } else if (unit >= 0xd800 && unit <= 0xdbff) {
                        high = unit;
                    } else if ((unit >= 0xdc00 && unit <= 0xdfff)
                               || (unit >= 0x20 && unit <= 0x7e) || unit == 0) {
                        goto bad;       /* a lone low surrogate; shifted ASCII; NUL */
                    } else {
                        mutf7_utf8_put(b, unit);
                    }
                }
            }
            if (*p != '-' || units == 0 || high || nbits >= 6 || bits != 0)
                goto bad;
            p++;
            just_shifted_out = 1;
        }
    }
    buf_append(out, b->data, b->len);
    buf_free(&b);
    return 0;
bad:
    buf_free(&b);
    return -1;
}
