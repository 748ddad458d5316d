/*
 * t/unit/base64.c - unit tests for lib/base64.c (strict RFC 4648 base64).
 *
 * RFC 4648 section 10's vectors both ways; every way text can fail to be
 * canonical (length, alphabet, whitespace, padding in the wrong place or
 * missing, leftover bits not zero), each refused with the buffer
 * unchanged; the buffer limit; binary data with NULs; long inputs across
 * the module's chunks; and round trips, with encode(decode(t)) == t for
 * every text that decodes among pseudo-random ones.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base64.h"
#include "buf.h"
#include "msg.h"
#include "../lib/tap.h"

static void test_vectors(void)
{
    static const struct { const char *raw, *b64; } v[] = {
        { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
        { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
    };
    buf_t *b = buf_new(0);

    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        buf_reset(b);
        is_int(base64_encode(b, v[i].raw, strlen(v[i].raw)), 0, "encode '%s'", v[i].raw);
        is_str(buf_cstr(b), v[i].b64, "  is '%s'", v[i].b64);
        is_int(base64_encoded_len(strlen(v[i].raw)), strlen(v[i].b64), "  encoded_len");
        buf_reset(b);
        is_int(base64_decode(b, v[i].b64, strlen(v[i].b64)), 0, "decode '%s'", v[i].b64);
        is_int(b->len, strlen(v[i].raw), "  length");
        is_str(buf_cstr(b), v[i].raw, "  is '%s'", v[i].raw);
    }
    buf_reset(b);
    is_int(base64_decode(b, "AGEAYgA=", 8), 0, "binary with NULs decodes");
    ok(b->len == 5 && memcmp(b->data, "\0a\0b\0", 5) == 0, "  all five bytes");
    buf_reset(b);
    base64_encode(b, "\0a\0b\0", 5);
    is_str(buf_cstr(b), "AGEAYgA=", "  and encodes back");
    buf_reset(b);
    buf_append_str(b, "x:");
    base64_encode(b, "foo", 3);
    base64_decode(b, "YmFy", 4);
    is_str(buf_cstr(b), "x:Zm9vbar", "both append");
    buf_free(&b);
}

static void test_refused(void)
{
    static const char *const bad[] = {
        "Zg=", "Zg", "Z", "Zm9", "Zm9vY", "Zg===", "====", "Z===", "=Zg=", "Zg==Zg==",
        "Zm=v", " Zm9v", "Zm9v ", "Zm9v\n", "Zm\n9v", "Zm9v\r\n", "\tZm9v", "Zm 9v",
        "Zm9v-A==", "Zm9_", "Zh==", "Zm9=", "Zm+=", "Zm/=", "AB==", "AAB=",
        "Zm9v=", "Zm9v==", "Zg==\0", "Z\x80==", "Zg%=", "Zm8=Zm8=",
    };
    buf_t *b = buf_new(0);

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t len = strlen(bad[i]) + (strcmp(bad[i], "Zg==") == 0);

        buf_reset(b);
        buf_append_str(b, "keep");
        is_int(base64_decode(b, bad[i], len), -1, "refused: case %zu", i);
        is_str(buf_cstr(b), "keep", "  buffer unchanged");
    }
    buf_reset(b);
    is_int(base64_decode(b, "Zg==\0\0\0\0", 8), -1, "NULs after the padding refused");
    is_int(base64_decode(b, "AA==", 4), 0, "zero leftover bits: fine");
    is_int(base64_decode(b, "AAA=", 4), 0, "  with one pad too");
    is_int(base64_decode(b, "Zm9vYmFy", 4), 0, "the length is honoured");
    is_str(buf_cstr(b) + 3, "foo", "  only the first group");
    buf_free(&b);
}

static void test_limit(void)
{
    buf_t *b = buf_new(6);

    buf_append_str(b, "ab");
    is_int(base64_encode(b, "abcd", 4), -1, "encoding past the limit refused");
    is_str(buf_cstr(b), "ab", "  buffer unchanged");
    is_int(base64_encode(b, "abc", 3), 0, "exactly to the limit fits");
    is_str(buf_cstr(b), "abYWJj", "  appended");
    buf_reset(b);
    buf_append_str(b, "xyz");
    is_int(base64_decode(b, "YWJjZA==", 8), -1, "decoding past the limit refused");
    is_str(buf_cstr(b), "xyz", "  buffer unchanged");
    is_int(base64_decode(b, "YWJj", 4), 0, "exactly to the limit fits");
    is_str(buf_cstr(b), "xyzabc", "  appended");
    buf_free(&b);
}

static void test_long(void)
{
    size_t n = 100004, i;
    unsigned char *raw = malloc(n);
    buf_t *t = buf_new(0), *back = buf_new(0);

    for (i = 0; i < n; i++)
        raw[i] = (unsigned char)(i * 7 + (i >> 8));
    is_int(base64_encode(t, raw, n), 0, "100004 bytes encode");
    is_int(t->len, base64_encoded_len(n), "  to encoded_len characters");
    ok(t->data[t->len - 1] == '=' && t->data[t->len - 2] != '=', "  one pad at the very end");
    ok(strspn(t->data, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
           == t->len - 1, "  nothing but the alphabet before it");
    is_int(base64_decode(back, t->data, t->len), 0, "  and decode");
    ok(back->len == n && memcmp(back->data, raw, n) == 0, "  to the same bytes");
    t->data[4 * 300] = '=';             /* padding in the middle, past a chunk */
    buf_reset(back);
    is_int(base64_decode(back, t->data, t->len), -1, "a '=' in the middle of long text refused");
    free(raw);
    buf_free(&t);
    buf_free(&back);
}

/* Pseudo-random texts over the alphabet and "="; each that decodes must
 * encode back to itself; byte strings round-trip. */
static void test_round_trips(void)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
    unsigned seed = 4242;
    int bad = 0, decoded = 0;
    buf_t *d = buf_new(0), *e = buf_new(0);

    for (int k = 0; k < 20000; k++) {
        char text[16];
        size_t len;

        seed = seed * 1103515245u + 12345u;
        len = 4 * ((seed >> 16) % 4);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            text[i] = alpha[(seed >> 16) % 65];
            if (i + 2 >= len && (seed >> 12) % 3 == 0)
                text[i] = '=';
        }
        buf_reset(d);
        buf_reset(e);
        if (base64_decode(d, text, len) < 0)
            continue;
        decoded++;
        base64_encode(e, d->data, d->len);
        if (e->len != len || memcmp(e->data, text, len) != 0)
            bad++;
    }
    ok(decoded > 1000, "many random texts decode (%d)", decoded);
    is_int(bad, 0, "  each encodes back to itself");
    bad = 0;
    for (int k = 0; k < 2000; k++) {
        unsigned char raw[40];
        size_t len;

        seed = seed * 1103515245u + 12345u;
        len = (seed >> 16) % sizeof(raw);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            raw[i] = (unsigned char)(seed >> 16);
        }
        buf_reset(d);
        buf_reset(e);
        base64_encode(e, raw, len);
        if (base64_decode(d, e->data, e->len) < 0 || d->len != len || memcmp(d->data, raw, len))
            bad++;
    }
    is_int(bad, 0, "2000 random byte strings round-trip");
    buf_free(&d);
    buf_free(&e);
}

int main(void)
{
    alarm(60);
    msg_init("base64-test", MSG_STDERR);
    test_vectors();
    test_refused();
    test_limit();
    test_long();
    test_round_trips();
    return done_testing();
}
