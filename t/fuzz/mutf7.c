/*
 * fuzz/mutf7 - libFuzzer harness for lib/mutf7.c, the mailbox names IMAP
 * clients send.
 *
 * Input: a name (up to the first NUL).  Promises checked: a name that
 * decodes encodes back to exactly itself (one spelling per name); a name
 * that encodes as UTF-8 decodes back to itself; a refused one leaves the
 * output empty.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mutf7.h"
#include "fuzzlib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    char *text;
    buf_t *a = buf_new(0), *b = buf_new(0);

    if (!inited) {
        fuzz_init();
        inited = 1;
    }
    text = strndup((const char *)data, size);
    if (mutf7_decode(text, a) == 0) {
        if (mutf7_encode(buf_cstr(a), b) < 0 || strcmp(buf_cstr(b), text) != 0)
            fuzz_fail("decoded, but encodes to something else");
    } else if (a->len != 0) {
        fuzz_fail("a refused decode left output");
    }
    buf_reset(a);
    buf_reset(b);
    if (mutf7_encode(text, a) == 0) {
        if (mutf7_decode(buf_cstr(a), b) < 0 || strcmp(buf_cstr(b), text) != 0)
            fuzz_fail("encoded, but decodes to something else");
    } else if (a->len != 0) {
        fuzz_fail("a refused encode left output");
    }
    free(text);
    buf_free(&a);
    buf_free(&b);
    return 0;
}
