/*
 * t/fuzz/dns_rdata.c - libFuzzer harness for lib/dns.c's RDATA parsers.
 * Any bytes are RDATA of every supported type in turn, and a wire name.
 * The invariants: a failure gives a reason and leaves nothing allocated;
 * a success obeys the type's shape (A 4 bytes, AAAA 16, TLSA at least 4,
 * TXT strings that add up to the input), formats without trouble, and
 * every name, turned back from presentation form into wire form, is the
 * exact bytes it was parsed from (MX: after the preference, to the end;
 * PTR: all of it; dns_parse_name: up to the offset it reports).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "dns.h"
#include "fuzzlib.h"

/* Presentation form back to wire form; -1 if it is not what the parser
 * could have produced. */
static int to_wire(const char *name, unsigned char *out, size_t *outlen)
{
    size_t n = 0, lenpos;
    const char *p = name;

    if (strcmp(name, ".") == 0) {
        out[0] = 0;
        *outlen = 1;
        return 0;
    }
    while (*p) {
        lenpos = n++;
        out[lenpos] = 0;
        while (*p && *p != '.') {
            unsigned c = (unsigned char)*p++;

            if (c == '\\') {
                if (p[0] >= '0' && p[0] <= '9') {
                    if (!(p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9'))
                        return -1;
                    c = (unsigned)(p[0] - '0') * 100 + (unsigned)(p[1] - '0') * 10
                        + (unsigned)(p[2] - '0');
                    if (c > 255)
                        return -1;
                    p += 3;
                } else if (*p) {
                    c = (unsigned char)*p++;
                } else {
                    return -1;
                }
            } else if (c <= ' ' || c >= 0x7f) {
                return -1;      /* should have been escaped */
            }
            if (n >= 256 || out[lenpos] == 63)
                return -1;
            out[n++] = (unsigned char)c;
            out[lenpos]++;
        }
        if (out[lenpos] == 0)
            return -1;          /* empty label */
        if (*p == '.' && *++p == '\0')
            return -1;          /* a trailing dot is never produced */
    }
    if (n >= 256)
        return -1;
    out[n++] = 0;
    *outlen = n;
    return 0;
}

static void check_name(const char *name, const unsigned char *wire, size_t wirelen,
                       const char *what)
{
    unsigned char back[300];
    size_t backlen;

    if (name == NULL || *name == '\0')
        fuzz_fail("%s: empty name", what);
    if (to_wire(name, back, &backlen) < 0)
        fuzz_fail("%s: '%s' is not a presentation form we produce", what, name);
    if (backlen != wirelen || memcmp(back, wire, wirelen) != 0)
        fuzz_fail("%s: '%s' does not go back to the bytes it came from", what, name);
}

static const enum dns_type types[] = {
    DNS_T_A, DNS_T_AAAA, DNS_T_MX, DNS_T_PTR, DNS_T_TXT, DNS_T_TLSA,
};

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    buf_t *b = buf_new(0);
    struct dns_rr rr;
    const char *why;
    char *name;
    size_t off = 0;

    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        enum dns_type type = types[t];

        why = NULL;
        if (dns_parse_rdata(type, data, size, &rr, &why) < 0) {
            if (why == NULL)
                fuzz_fail("%s: failure without a reason", dns_type_str(type));
            continue;
        }
        switch (type) {
        case DNS_T_A:
        case DNS_T_AAAA:
            if (size != (type == DNS_T_A ? 4u : 16u) || memcmp(rr.u.addr.bytes, data, size) != 0)
                fuzz_fail("%s: wrong address", dns_type_str(type));
            break;
        case DNS_T_MX:
            if (size < 3 || rr.u.mx.pref != ((unsigned)data[0] << 8 | data[1]))
                fuzz_fail("MX: wrong preference");
            check_name(rr.u.mx.host, data + 2, size - 2, "MX");
            break;
        case DNS_T_PTR:
            check_name(rr.u.name, data, size, "PTR");
            break;
        case DNS_T_TXT: {
            size_t total = 0, pos = 0;

            for (size_t i = 0; i < rr.u.txt.nstrings; i++) {
                if (pos >= size || data[pos] != rr.u.txt.lens[i]
                    || memcmp(data + pos + 1, rr.u.txt.strings[i], rr.u.txt.lens[i]) != 0
                    || memcmp(rr.u.txt.joined + total, rr.u.txt.strings[i], rr.u.txt.lens[i]) != 0)
                    fuzz_fail("TXT: string %zu does not match the input", i);
                pos += 1 + rr.u.txt.lens[i];
                total += rr.u.txt.lens[i];
            }
            if (pos != size || total != rr.u.txt.len || rr.u.txt.joined[total] != '\0'
                || rr.u.txt.nstrings == 0)
                fuzz_fail("TXT: strings do not add up to the input");
            break;
        }
        case DNS_T_TLSA:
            if (size < 4 || rr.u.tlsa.len != size - 3 || rr.u.tlsa.usage != data[0]
                || rr.u.tlsa.selector != data[1] || rr.u.tlsa.mtype != data[2]
                || memcmp(rr.u.tlsa.data, data + 3, size - 3) != 0)
                fuzz_fail("TLSA: fields do not match the input");
            break;
        }
        buf_reset(b);
        dns_rr_format(type, &rr, b);
        if (b->len == 0 || strlen(buf_cstr(b)) != b->len)
            fuzz_fail("%s: bad formatted text", dns_type_str(type));
        dns_rr_clear(type, &rr);
    }

    why = NULL;
    if (dns_parse_name(data, size, &off, &name, &why) == 0) {
        if (off == 0 || off > size)
            fuzz_fail("name: offset %zu of %zu", off, size);
        check_name(name, data, off, "name");
        free(name);
    } else if (why == NULL || name != NULL || off != 0) {
        fuzz_fail("name: failure without a reason, or with a name or a new offset");
    }
    buf_free(&b);
    return 0;
}
