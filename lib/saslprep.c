/*
 * saslprep - SASLprep with libidn, and a strict UTF-8 check (see
 * saslprep.h).
 *
 * libidn checks UTF-8 itself, but the check here comes first so that what
 * reaches it is always a well-formed C string, and so that callers that
 * only need well-formed text (PLAIN's authorization identity) have it.
 */
#include <stdlib.h>
#include <string.h>

#include <stringprep.h>

#include "msg.h"
#include "saslprep.h"
#include "xalloc.h"

int saslprep_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;

    while (p < end) {
        unsigned c = *p, cp, min;
        size_t n, i;

        if (c == 0)
            return 0;
        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            n = 1, cp = c & 0x1f, min = 0x80;
        else if (c >= 0xe0 && c <= 0xef)
            n = 2, cp = c & 0x0f, min = 0x800;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 3, cp = c & 0x07, min = 0x10000;
        else
            return 0;               /* continuation, 0xc0/0xc1, 0xf5.. */
        if ((size_t)(end - p) < n + 1)
            return 0;
        for (i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        p += n + 1;
    }
    return 1;
}

int saslprep(const char *s, size_t len, char **outp)
{
    char *in, *out = NULL;
    int rc;

    *outp = NULL;
    if (!saslprep_utf8_valid(s, len))
        return -1;
    in = xstrndup(s, len);
    rc = stringprep_profile(in, &out, "SASLprep", 0);
    explicit_bzero(in, len);        /* it may be a password */
    free(in);
    if (rc == STRINGPREP_MALLOC_ERROR)
        msg_fatal("saslprep: out of memory");
    if (rc != STRINGPREP_OK || out == NULL || *out == '\0') {
        if (out) {
            explicit_bzero(out, strlen(out));
            free(out);
        }
        return -1;
    }
    *outp = out;
    return 0;
}
