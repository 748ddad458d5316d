/*
 * fuzz/smtpcontent - libFuzzer harness for lib/smtpcontent.c, the BDAT
 * side: the CRLF rule, the line and size limits, across chunk boundaries.
 *
 * Input layout: byte 0 picks the size limit (0 = none, else a few hundred
 * bytes times the byte), byte 1 the line limit (0 = none), byte 2 a seed
 * for the chunk sizes; the rest is the message content, fed to
 * smtpcontent_bdat() in chunks of 1..N bytes.  The verdict and the stored
 * content are compared with a model computed over the whole content at
 * once: refused (550/552) exactly when the model finds a bare CR or LF, a
 * line over the limit or too many bytes, with the model's precedence;
 * accepted content is the input byte for byte, plus CRLF if it did not end
 * in one.  A difference aborts; a descriptor leak aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzzlib.h"
#include "smtpcontent.h"

struct model {
    int bad_eol, too_big, long_line;
};

static struct model model_of(const uint8_t *p, size_t n, uint64_t size_limit, size_t line_max)
{
    struct model m = { 0, 0, 0 };
    size_t line = 0;

    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\r' && (i + 1 >= n || p[i + 1] != '\n'))
            m.bad_eol = 1;
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
            m.bad_eol = 1;
        line++;
        if (p[i] == '\n') {
            if (line_max && line > line_max)
                m.long_line = 1;
            line = 0;
        }
    }
    if (line_max && line > line_max)
        m.long_line = 1;
    if (size_limit && n > size_limit)
        m.too_big = 1;
    return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    uint64_t size_limit;
    size_t line_max, piece, pos;
    const uint8_t *p;
    struct model m;
    struct smtpreply_err err;
    smtpcontent_t *c;
    uint64_t len;
    int mark, fd, rc;
    unsigned seed;

    if (!inited) {
        fuzz_init();
        inited = 1;
    }
    if (size < 3)
        return 0;
    size_limit = (uint64_t)data[0] * 300;
    line_max = data[1] ? (size_t)data[1] * 4 : 0;
    seed = data[2];
    p = data + 3;
    size -= 3;
    m = model_of(p, size, size_limit, line_max);

    mark = fuzz_fd_mark();
    c = smtpcontent_new(size_limit, line_max);
    for (pos = 0; pos < size; pos += piece) {
        seed = seed * 1103515245u + 12345u;
        piece = 1 + (seed >> 8) % 97;
        if (piece > size - pos)
            piece = size - pos;
        smtpcontent_bdat(c, (const char *)p + pos, piece);
    }
    if (smtpcontent_failed(c) != (m.bad_eol || m.too_big || m.long_line)
        && !(m.bad_eol && size > 0 && p[size - 1] == '\r'))
        fuzz_fail("smtpcontent_failed %d, model %d/%d/%d", smtpcontent_failed(c), m.bad_eol,
                  m.too_big, m.long_line);
    rc = smtpcontent_finish(c, &fd, &len, &err);
    if (m.bad_eol || m.too_big || m.long_line) {
        int want = m.bad_eol ? 550 : m.too_big ? 552 : 550;

        if (rc == 0 || err.code != want)
            fuzz_fail("refused content: rc %d code %d, want %d", rc, rc ? err.code : 0, want);
    } else {
        size_t want_len = size + (size > 0 && !(size >= 2 && p[size - 2] == '\r'
                                                && p[size - 1] == '\n') ? 2 : 0);
        char *got;

        if (rc != 0)
            fuzz_fail("good content refused: %d %s", err.code, err.text);
        if (len != want_len)
            fuzz_fail("length %llu, want %zu", (unsigned long long)len, want_len);
        got = malloc(want_len + 1);
        if (got && pread(fd, got, want_len, 0) != (ssize_t)want_len)
            fuzz_fail("short pread");
        if (got && (memcmp(got, p, size) != 0
                    || (want_len > size && memcmp(got + size, "\r\n", 2) != 0)))
            fuzz_fail("stored content differs");
        free(got);
        close(fd);
    }
    smtpcontent_free(&c);
    fuzz_fd_check(mark);
    return 0;
}
