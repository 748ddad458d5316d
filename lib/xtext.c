/*
 * xtext - RFC 3461 xtext, both directions (see xtext.h).
 *
 *   xtext   = *( xchar / hexchar )
 *   xchar   = "!" .. "~" except "+" and "="
 *   hexchar = "+" 2( "0".."9" / "A".."F" )
 *
 * The decoder is strict (lower-case hex is refused, as the RFC's grammar
 * says); the encoder writes upper-case hex, so what we send always decodes
 * here and at any strict peer.
 */
#include <stdlib.h>

#include "buf.h"
#include "xtext.h"

static int xtext_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int xtext_is_xchar(unsigned char ch)
{
    return ch >= 33 && ch <= 126 && ch != '+' && ch != '=';
}

int xtext_decode(const char *s, size_t len, char **outp, size_t *out_len)
{
    buf_t *b = buf_new(0);
    size_t i;

    *outp = NULL;
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch == '+') {
            int hi, lo;

            if (len - i < 3 || (hi = xtext_hexval(s[i + 1])) < 0
                || (lo = xtext_hexval(s[i + 2])) < 0 || (hi == 0 && lo == 0)) {
                buf_free(&b);
                return -1;
            }
            buf_putc(b, hi * 16 + lo);
            i += 2;
        } else if (!xtext_is_xchar(ch)) {
            buf_free(&b);
            return -1;
        } else
            buf_putc(b, ch);
    }
    *outp = buf_steal(b, out_len);
    buf_free(&b);
    return 0;
}

int xtext_encode(buf_t *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t start = out->len, i;

    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        char enc[3] = { '+', hex[ch >> 4], hex[ch & 15] };
        int r = xtext_is_xchar(ch) ? buf_putc(out, ch) : buf_append(out, enc, 3);

        if (r < 0) {
            buf_truncate(out, start);
            return -1;
        }
    }
    return 0;
}
