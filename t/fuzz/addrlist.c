/*
 * t/fuzz/addrlist.c - libFuzzer harness for lib/addrlist.c.  Any bytes are
 * an address list; the invariants: a failure returns no list, a success
 * returns addresses that are non-empty and hold no white space outside
 * quoted strings and domain literals, no NUL and no CR or LF.
 */
#include <stdlib.h>
#include <string.h>

#include "addrlist.h"
#include "fuzzlib.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    struct addrlist al;
    const char *why = NULL;
    char *copy = malloc(size + 1);

    memcpy(copy, data, size);
    copy[size] = '\0';
    if (addrlist_parse(copy, size, &al, &why) < 0) {
        if (al.n != 0 || al.addrs != NULL || why == NULL)
            abort();
    } else {
        for (size_t i = 0; i < al.n; i++) {
            const char *a = al.addrs[i];
            int quoted = 0, literal = 0;

            if (*a == '\0')
                abort();
            for (const char *p = a; *p; p++) {
                if (*p == '\r' || *p == '\n')
                    abort();
                if ((quoted || literal) && *p == '\\' && p[1]) {
                    p++;
                    continue;
                }
                if (*p == '"' && !literal)
                    quoted = !quoted;
                else if (*p == '[' && !quoted)
                    literal = 1;
                else if (*p == ']' && !quoted)
                    literal = 0;
                else if ((*p == ' ' || *p == '\t') && !quoted && !literal)
                    abort();
            }
        }
        addrlist_free(&al);
    }
    free(copy);
    return 0;
}
