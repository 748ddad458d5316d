/*
 * t/unit/buf.c - unit tests for lib/buf.c (growable, binary-safe buffers
 * with a size cap).
 *
 * Covers: append/append_str/putc/printf, the limit (ENOBUFS, buffer left
 * unchanged, exact fit allowed), limit 0 growing without bound, consume,
 * truncate, reset, steal, the NUL that always follows the data, binary data
 * with embedded NULs, and printf whose arguments point into the buffer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "msg.h"
#include "xalloc.h"
#include "../lib/tap.h"

/* The invariant every operation must keep. */
static int nul_terminated(const buf_t *b)
{
    return b->data != NULL && b->len < b->cap && b->data[b->len] == '\0';
}

static void test_append(void)
{
    buf_t *b = buf_new(0);

    ok(b != NULL && b->len == 0, "buf_new: empty");
    is_str(buf_cstr(b), "", "buf_new: empty C string");
    ok(nul_terminated(b), "buf_new: NUL terminated");
    is_int(buf_append(b, "hello", 5), 0, "buf_append");
    is_int(buf_append_str(b, ", world"), 0, "buf_append_str");
    is_int(buf_putc(b, '!'), 0, "buf_putc");
    is_str(buf_cstr(b), "hello, world!", "contents after appends");
    is_int(b->len, 13, "len after appends");
    ok(nul_terminated(b), "NUL terminated after appends");
    is_int(buf_append(b, NULL, 0), 0, "appending 0 bytes from NULL is fine");
    is_int(b->len, 13, "and changes nothing");
    is_int(buf_printf(b, " %d-%s-%05.1f", 42, "x", 3.14159), 0, "buf_printf");
    is_str(buf_cstr(b), "hello, world! 42-x-003.1", "buf_printf appends");
    is_int(buf_printf(b, "%s", ""), 0, "buf_printf of nothing");
    is_int(b->len, strlen("hello, world! 42-x-003.1"), "len matches the text");
    buf_reset(b);
    is_int(b->len, 0, "buf_reset empties");
    is_str(buf_cstr(b), "", "buf_reset leaves an empty string");
    buf_free(&b);
    ok(b == NULL, "buf_free NULLs the pointer");
    buf_free(&b);
    ok(1, "buf_free(NULL) is harmless");
}

static void test_growth(void)
{
    buf_t *b = buf_new(0);
    char *big = xmalloc(100000);
    int good = 1;

    memset(big, 'a', 100000);
    for (int i = 0; i < 50; i++)
        if (buf_append(b, big, 100000) != 0)
            good = 0;
    ok(good, "limit 0: 50 x 100000 bytes appended");
    is_int(b->len, 5000000, "limit 0: len 5000000");
    ok(nul_terminated(b), "limit 0: NUL terminated after growth");
    ok(b->data[0] == 'a' && b->data[4999999] == 'a', "limit 0: data intact");
    buf_reset(b);
    for (int i = 0; i < 100000; i++)
        buf_putc(b, 'a' + i % 26);
    ok(b->len == 100000 && b->data[99999] == 'a' + 99999 % 26 && nul_terminated(b),
       "limit 0: 100000 single-byte appends");
    buf_reset(b);
    big[99999] = '\0';
    is_int(buf_printf(b, "%s%s", "x", big), 0,
           "buf_printf longer than the internal scratch area");
    is_int(b->len, 100000, "long buf_printf: length");
    ok(b->data[0] == 'x' && b->data[99999] == 'a' && nul_terminated(b),
       "long buf_printf: contents");
    free(big);
    buf_free(&b);
}

static void test_limit(void)
{
    buf_t *b = buf_new(10);
    char before[32];

    is_int(buf_append(b, "12345", 5), 0, "limit 10: 5 bytes fit");
    errno = 0;
    is_int(buf_append(b, "123456", 6), -1, "limit 10: 11 bytes do not");
    is_int(errno, ENOBUFS, "limit 10: errno ENOBUFS");
    is_str(buf_cstr(b), "12345", "limit 10: buffer unchanged after a refused append");
    is_int(b->len, 5, "limit 10: len unchanged");
    is_int(buf_append(b, "67890", 5), 0, "limit 10: exactly 10 bytes fit");
    is_str(buf_cstr(b), "1234567890", "limit 10: full");
    errno = 0;
    is_int(buf_putc(b, 'x'), -1, "limit 10: putc on a full buffer fails");
    is_int(errno, ENOBUFS, "limit 10: putc errno ENOBUFS");
    errno = 0;
    is_int(buf_append_str(b, "y"), -1, "limit 10: append_str on a full buffer fails");
    is_int(errno, ENOBUFS, "limit 10: append_str errno ENOBUFS");
    is_int(buf_append(b, "", 0), 0, "limit 10: appending nothing to a full buffer is fine");

    buf_truncate(b, 7);
    memcpy(before, b->data, b->len + 1);
    errno = 0;
    is_int(buf_printf(b, "%d", 1234), -1, "limit 10: printf that overflows fails");
    is_int(errno, ENOBUFS, "limit 10: printf errno ENOBUFS");
    is_str(buf_cstr(b), before, "limit 10: printf left the buffer unchanged");
    is_int(b->len, 7, "limit 10: printf left len unchanged");
    is_int(buf_printf(b, "%d", 123), 0, "limit 10: printf that fits exactly");
    is_str(buf_cstr(b), "1234567123", "limit 10: printf result");
    errno = 0;
    buf_reset(b);
    {
        char *huge = xmalloc(5000);

        memset(huge, 'h', 4999);
        huge[4999] = '\0';
        is_int(buf_printf(b, "%s", huge), -1, "limit 10: long printf fails");
        is_int(errno, ENOBUFS, "limit 10: long printf errno ENOBUFS");
        is_int(b->len, 0, "limit 10: long printf left the buffer empty");
        free(huge);
    }
    errno = 0;
    is_int(buf_append(b, "x", (size_t)-1), -1, "a length near SIZE_MAX is refused");
    is_int(errno, ENOBUFS, "and gives ENOBUFS");
    buf_free(&b);

    b = buf_new(0);
    buf_append(b, "abc", 3);
    errno = 0;
    is_int(buf_append(b, "x", (size_t)-2), -1, "limit 0: a length that would overflow is refused");
    is_int(errno, ENOBUFS, "limit 0: overflow gives ENOBUFS");
    is_str(buf_cstr(b), "abc", "limit 0: buffer unchanged after the overflow attempt");
    buf_free(&b);
}

static void test_consume_truncate(void)
{
    buf_t *b = buf_new(0);

    buf_append_str(b, "line one\r\nline two\r\n");
    buf_consume(b, 10);
    is_str(buf_cstr(b), "line two\r\n", "buf_consume drops from the front");
    is_int(b->len, 10, "buf_consume: len");
    ok(nul_terminated(b), "buf_consume: NUL terminated");
    buf_consume(b, 0);
    is_str(buf_cstr(b), "line two\r\n", "buf_consume(0) changes nothing");
    buf_consume(b, 100);
    is_int(b->len, 0, "buf_consume past the end empties");
    is_str(buf_cstr(b), "", "buf_consume past the end: empty string");
    buf_append_str(b, "abc");
    buf_consume(b, 3);
    ok(b->len == 0 && nul_terminated(b), "buf_consume of exactly len empties");

    buf_append_str(b, "abcdef");
    buf_truncate(b, 3);
    is_str(buf_cstr(b), "abc", "buf_truncate shortens");
    is_int(b->len, 3, "buf_truncate: len");
    buf_truncate(b, 10);
    is_str(buf_cstr(b), "abc", "buf_truncate never lengthens");
    buf_truncate(b, 0);
    ok(b->len == 0 && nul_terminated(b), "buf_truncate(0) empties");
    buf_free(&b);
}

static void test_steal(void)
{
    buf_t *b = buf_new(100);
    size_t len = 0;
    char *s;

    buf_append_str(b, "stolen text");
    s = buf_steal(b, &len);
    is_str(s, "stolen text", "buf_steal returns the data");
    is_int(len, 11, "buf_steal returns the length");
    is_int(b->len, 0, "buf_steal leaves the buffer empty");
    ok(nul_terminated(b), "buf_steal: the buffer is usable");
    ok(b->data != s, "buf_steal: the buffer has new storage");
    is_int(b->limit, 100, "buf_steal keeps the limit");
    is_int(buf_append_str(b, "again"), 0, "buf_steal: append afterwards");
    is_str(buf_cstr(b), "again", "buf_steal: new contents");
    is_str(s, "stolen text", "buf_steal: the stolen string is independent");
    free(s);
    s = buf_steal(b, NULL);
    is_str(s, "again", "buf_steal with NULL lenp");
    free(s);
    buf_free(&b);
}

static void test_binary(void)
{
    static const char bin[] = { 'a', '\0', 'b', '\0', '\0', (char)0xff, 'c' };
    buf_t *b = buf_new(0);
    size_t len;
    char *s;

    is_int(buf_append(b, bin, sizeof(bin)), 0, "binary append");
    is_int(b->len, sizeof(bin), "binary: len counts embedded NULs");
    ok(memcmp(b->data, bin, sizeof(bin)) == 0, "binary: bytes intact");
    ok(nul_terminated(b), "binary: NUL after the data");
    is_int(buf_putc(b, 0), 0, "buf_putc(0)");
    is_int(b->len, sizeof(bin) + 1, "buf_putc(0) counts");
    is_int(buf_printf(b, "%c", 0), 0, "buf_printf of a NUL character");
    is_int(b->len, sizeof(bin) + 2, "buf_printf(%%c, 0) appends one byte");
    buf_consume(b, 2);
    ok(b->len == sizeof(bin) && memcmp(b->data, bin + 2, sizeof(bin) - 2) == 0
       && b->data[sizeof(bin) - 2] == 0 && b->data[sizeof(bin) - 1] == 0,
       "binary: consume moves NULs too");
    s = buf_steal(b, &len);
    ok(len == sizeof(bin) && memcmp(s, bin + 2, sizeof(bin) - 2) == 0, "binary: steal");
    free(s);
    buf_free(&b);
}

static void test_printf_self(void)
{
    buf_t *b = buf_new(0);
    char want[256];

    /* 40 bytes in a 64-byte buffer: appending them again forces growth. */
    buf_append_str(b, "0123456789012345678901234567890123456789");
    is_int(buf_printf(b, "|%s|", buf_cstr(b)), 0, "buf_printf with an argument inside the buffer");
    snprintf(want, sizeof(want), "%s|%s|", "0123456789012345678901234567890123456789",
             "0123456789012345678901234567890123456789");
    is_str(buf_cstr(b), want, "self-referencing printf gives the right text");
    buf_reset(b);
    buf_append_str(b, "ab");
    buf_printf(b, "%s", buf_cstr(b));
    is_str(buf_cstr(b), "abab", "self-referencing printf without growth");
    buf_free(&b);
}

/* buf_read_all: what a pipe holds until its end; EFBIG past the limit. */
static void test_read_all(void)
{
    buf_t *b = buf_new(16);
    int p[2];

    if (pipe(p) < 0)
        abort();
    if (write(p[1], "0123456789", 10) != 10)
        abort();
    close(p[1]);
    ok(buf_read_all(b, p[0]) == 0 && b->len == 10 && memcmp(b->data, "0123456789", 10) == 0,
       "read_all: the whole of a pipe");
    close(p[0]);
    if (pipe(p) < 0)
        abort();
    if (write(p[1], "0123456789", 10) != 10)
        abort();
    close(p[1]);
    errno = 0;
    ok(buf_read_all(b, p[0]) == -1 && errno == EFBIG, "read_all: past the limit is EFBIG");
    close(p[0]);
    buf_free(&b);
}

int main(void)
{
    alarm(60);
    msg_init("buf-test", MSG_STDERR);
    test_append();
    test_growth();
    test_limit();
    test_consume_truncate();
    test_steal();
    test_binary();
    test_printf_self();
    test_read_all();
    return done_testing();
}
