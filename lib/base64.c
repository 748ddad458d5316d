/*
 * base64 - strict RFC 4648 base64 (see base64.h).
 *
 * OpenSSL's EVP_EncodeBlock and EVP_DecodeBlock do the work, in chunks
 * (they take int lengths).  EVP_DecodeBlock is lenient in ways that must
 * not reach a SASL exchange: it skips leading and trailing whitespace,
 * counts the padding as decoded zero bytes, and ignores the leftover bits
 * of a padded group.  So the text is checked here first, all of it, and
 * the padding's bytes are taken off afterwards.
 */
#include <stdint.h>

#include <openssl/evp.h>

#include "base64.h"
#include "buf.h"

/* Work in chunks of 256 groups: 768 bytes, 1024 characters. */
#define BASE64_CHUNK_GROUPS 256

static int base64_is_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
           || c == '+' || c == '/';
}

/* The 6-bit value of an alphabet character. */
static unsigned base64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return (unsigned)(c - 'A');
    if (c >= 'a' && c <= 'z')
        return (unsigned)(c - 'a' + 26);
    if (c >= '0' && c <= '9')
        return (unsigned)(c - '0' + 52);
    return c == '+' ? 62 : 63;
}

size_t base64_encoded_len(size_t n)
{
    return (n / 3 + (n % 3 != 0)) * 4;
}

int base64_encode(buf_t *out, const void *data, size_t len)
{
    const unsigned char *p = data;
    size_t start = out->len, want = base64_encoded_len(len);
    unsigned char chunk[4 * BASE64_CHUNK_GROUPS + 1];

    if (want > SIZE_MAX - start - 1 || (out->limit && start + want > out->limit))
        return -1;
    while (len > 0) {
        size_t n = len < 3 * BASE64_CHUNK_GROUPS ? len : 3 * BASE64_CHUNK_GROUPS;
        int w = EVP_EncodeBlock(chunk, p, (int)n);

        if (w < 0 || buf_append(out, chunk, (size_t)w) < 0) {
            buf_truncate(out, start);
            return -1;
        }
        p += n;
        len -= n;
    }
    return 0;
}

int base64_decode(buf_t *out, const char *text, size_t len)
{
    const unsigned char *t = (const unsigned char *)text;
    size_t start = out->len, pad = 0, i;
    unsigned char chunk[3 * BASE64_CHUNK_GROUPS];

    if (len % 4 != 0)
        return -1;
    if (len > 0 && t[len - 1] == '=')
        pad = t[len - 2] == '=' ? 2 : 1;
    for (i = 0; i < len - pad; i++)
        if (!base64_is_char(t[i]))
            return -1;
    /* The bits the padding leaves over must be zero: one "=" leaves 2 of
     * the last character's 6, two leave 4. */
    if ((pad == 1 && (base64_value(t[len - 2]) & 0x03) != 0)
        || (pad == 2 && (base64_value(t[len - 3]) & 0x0f) != 0))
        return -1;
    if (out->limit && start + len / 4 * 3 - pad > out->limit)
        return -1;
    while (len > 0) {
        size_t n = len < 4 * BASE64_CHUNK_GROUPS ? len : 4 * BASE64_CHUNK_GROUPS;
        int w = EVP_DecodeBlock(chunk, t, (int)n);

        /* The last chunk holds the padding: its bytes are not data. */
        if (w < 0 || (size_t)w != n / 4 * 3
            || buf_append(out, chunk, (size_t)w - (n == len ? pad : 0)) < 0) {
            buf_truncate(out, start);
            return -1;
        }
        t += n;
        len -= n;
    }
    return 0;
}
