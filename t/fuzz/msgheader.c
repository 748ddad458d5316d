/*
 * t/fuzz/msgheader.c - libFuzzer harness for lib/msgheader.c.  Any bytes
 * are a message's content; the invariants: the header ends within the
 * content, its fields hold what the content holds before that end (each
 * line with CRLF, names printable ASCII before ':'), and values unfold
 * without CR or LF.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzzlib.h"
#include "msgheader.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    struct msgheader h;
    int fd = memfd_create("fuzz-msgheader", MFD_CLOEXEC);

    if (fd < 0 || (size > 0 && write(fd, data, size) != (ssize_t)size))
        abort();
    if (msgheader_read(fd, size, &h) < 0)
        abort();
    if (h.end > size || !h.done)
        abort();
    for (size_t i = 0; i < h.n; i++) {
        const struct msgheader_field *f = &h.fields[i];
        size_t vlen;
        char *v;

        if (f->name_len == 0 || f->text[f->name_len] != ':'
            || f->len < 2 || memcmp(f->text + f->len - 2, "\r\n", 2) != 0)
            abort();
        for (size_t k = 0; k < f->name_len; k++)
            if ((unsigned char)f->text[k] < 33 || (unsigned char)f->text[k] > 126)
                abort();
        if (msgheader_find(&h, "from") == NULL && msgheader_field_is(f, "From"))
            abort();
        v = msgheader_field_value(f, &vlen);
        if (vlen + f->name_len + 1 > f->len || memchr(v, '\r', vlen) || memchr(v, '\n', vlen))
            abort();
        free(v);
    }
    msgheader_free(&h);
    close(fd);
    return 0;
}
