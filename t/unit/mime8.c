/*
 * t/unit/mime8.c - unit tests for lib/mime8.c, the 8-bit to 7-bit MIME
 * downgrade of the SMTP client.
 *
 * Messages are written as text with "\n" between lines; both passes run
 * over them and the output lines are joined the same way.  Covered: a
 * non-MIME 8-bit message (MIME-Version and the encoding added), a part
 * labelled 8bit that is 7-bit after all (relabelled only), binary,
 * multipart with 7-bit, 8-bit and base64 parts, a folded Content-Type, a
 * nested message/rfc822, multipart/digest's default type, a part that
 * ends inside its header block, the quoted-printable rules (=, trailing
 * white space, soft breaks at 76, a "-" that starts a line), round trips
 * of pseudo-random lines through a quoted-printable decoder, the depth and
 * header limits, and an emit function that stops the conversion.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mime8.h"
#include "../lib/tap.h"

static int emit_stop_after = -1;

static int emit(void *ctx, const char *line, size_t len)
{
    buf_t *out = ctx;

    if (emit_stop_after == 0)
        return 7;
    if (emit_stop_after > 0)
        emit_stop_after--;
    if (out->len)
        buf_putc(out, '\n');
    buf_append(out, line, len);
    return 0;
}

/* Both passes over text's lines; the output, joined by "\n" (caller frees). */
static char *convert_lim(const char *text, const struct mime8_limits *lim, int *rc)
{
    mime8_t *m = mime8_new(lim);
    buf_t *out = buf_new(0);
    const char *p, *nl;
    char *s;

    for (p = text;; p = nl + 1) {
        nl = strchr(p, '\n');
        mime8_scan(m, p, nl ? (size_t)(nl - p) : strlen(p));
        if (!nl)
            break;
    }
    *rc = 0;
    for (p = text;; p = nl + 1) {
        nl = strchr(p, '\n');
        if (*rc == 0)
            *rc = mime8_convert(m, p, nl ? (size_t)(nl - p) : strlen(p), emit, out);
        if (!nl)
            break;
    }
    if (*rc == 0)
        *rc = mime8_convert_end(m, emit, out);
    mime8_free(&m);
    s = buf_steal(out, NULL);
    buf_free(&out);
    return s;
}

static char *convert(const char *text)
{
    int rc;
    char *s = convert_lim(text, NULL, &rc);

    if (rc != 0)
        diag("convert returned %d", rc);
    return s;
}

static void check(const char *in, const char *want, const char *name)
{
    char *got = convert(in);
    int same = strcmp(got, want) == 0;

    if (!ok(same, "%s", name))
        diag("  got:\n%s\n  want:\n%s", got, want);
    free(got);
}

static int all_7bit(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 0;
    return 1;
}

/* Quoted-printable lines (joined by "\n") back to the original lines. */
static char *qp_decode(const char *in)
{
    buf_t *out = buf_new(0);
    char *s;

    for (const char *p = in; *p; p++) {
        if (*p == '=' && p[1] == '\n') {
            p++;
            continue;
        }
        if (*p == '=' && p[1] && p[2]) {
            char hex[3] = {p[1], p[2], 0};

            buf_putc(out, (int)strtol(hex, NULL, 16));
            p += 2;
            continue;
        }
        buf_putc(out, *p);
    }
    s = buf_steal(out, NULL);
    buf_free(&out);
    return s;
}

static void test_simple(void)
{
    check("Subject: x\n\nK\xc3\xb6ln\nplain",
          "Subject: x\nMIME-Version: 1.0\nContent-Transfer-Encoding: quoted-printable\n\n"
          "K=C3=B6ln\nplain",
          "a message without MIME: MIME-Version and quoted-printable added");
    check("MIME-Version: 1.0\nContent-Transfer-Encoding: 8bit\nSubject: x\n\nall ascii",
          "MIME-Version: 1.0\nSubject: x\nContent-Transfer-Encoding: 7bit\n\nall ascii",
          "labelled 8bit, 7-bit after all: only relabelled");
    check("MIME-Version: 1.0\nContent-Transfer-Encoding: binary\n\nabc=",
          "MIME-Version: 1.0\nContent-Transfer-Encoding: quoted-printable\n\nabc=3D",
          "binary: quoted-printable");
    check("Subject: only ascii\n\nhello\n", "Subject: only ascii\n\nhello\n",
          "a 7-bit message: unchanged");
    check("Content-Transfer-Encoding: base64\n\nw7Y=\n\xff junk",
          "Content-Transfer-Encoding: base64\n\nw7Y=\n\xff junk",
          "base64 already: left alone, whatever is in it");
    check("Content-Transfer-Encoding: x-uuencode\n\n\xe9",
          "Content-Transfer-Encoding: x-uuencode\n\n\xe9", "an unknown encoding: left alone");
    check("Subject: \xc3\xa9t\xc3\xa9\n\nascii",
          "Subject: \xc3\xa9t\xc3\xa9\n\nascii", "8-bit header fields are not touched");
    check("Subject: x\nno header line\n\xe9",
          "Subject: x\nMIME-Version: 1.0\nContent-Transfer-Encoding: quoted-printable\n"
          "no header line\n=E9", "a body that starts without a blank line");
    check("Subject: x", "Subject: x", "a header without a body");
    check("Content-Transfer-Encoding: 8bit\n  (folded)\nX: y\n\n\xe9",
          "X: y\nMIME-Version: 1.0\nContent-Transfer-Encoding: quoted-printable\n\n=E9",
          "a folded Content-Transfer-Encoding goes with all its lines");
}

static void test_qp(void)
{
    char line[400], *in, *got, *dec;

    check("\nend space \nend tab\t\nmid  dle\xe9",
          "MIME-Version: 1.0\nContent-Transfer-Encoding: quoted-printable\n\n"
          "end space=20\nend tab=09\nmid  dle=E9", "trailing white space is encoded");
    check("\n-- \n--boundary-like\xe9",
          "MIME-Version: 1.0\nContent-Transfer-Encoding: quoted-printable\n\n"
          "=2D-=20\n=2D-boundary-like=E9", "a line that starts with - is encoded");
    memset(line, 'a', 200);
    line[200] = '\0';
    in = malloc(strlen(line) + 10);
    sprintf(in, "\n\xe9%s", line);
    got = convert(in);
    {
        const char *body = strstr(got, "\n\n") + 2;
        int longest = 0, cur = 0;

        for (const char *p = body; *p; p++) {
            cur = *p == '\n' ? 0 : cur + 1;
            if (cur > longest)
                longest = cur;
        }
        ok(longest <= MIME8_QP_LINE_MAX, "soft breaks keep lines within 76 (%d)", longest);
        dec = qp_decode(body);
        is_str(dec, in + 1, "  and decode to the line");
        free(dec);
    }
    free(got);
    free(in);

    /* Pseudo-random lines: 7-bit out, the same lines back. */
    srand(42);
    for (int round = 0; round < 200; round++) {
        buf_t *b = buf_new(0);
        const char *body;
        char *orig;

        buf_append_str(b, "Content-Transfer-Encoding: 8bit\n\n\xe9");
        for (int l = 0, n = rand() % 6 + 1; l < n; l++) {
            if (l)
                buf_putc(b, '\n');
            for (int k = 0, len = rand() % 200; k < len; k++) {
                int c = rand() % 256;

                buf_putc(b, c == '\n' || c == 0 ? 'x' : c);
            }
        }
        got = convert(b->data);
        body = strstr(got, "\n\n") + 2;
        dec = qp_decode(body);
        orig = strstr(b->data, "\n\n") + 2;
        if (!ok(all_7bit(got) && strcmp(dec, orig) == 0, "random body %d: 7-bit, decodes back",
                round))
            break;
        free(dec);
        free(got);
        buf_free(&b);
        if (round == 199)
            ok(1, "200 random bodies");
    }
}

static void test_multipart(void)
{
    check("MIME-Version: 1.0\nContent-Type: multipart/mixed;\n boundary=\"b1\"\n"
          "Content-Transfer-Encoding: 8bit\n\npre\xe9mble\n--b1\nContent-Type: text/plain\n\n"
          "ascii\n--b1 \nContent-Type: text/plain; charset=latin1\n"
          "Content-Transfer-Encoding: 8bit\n\nK\xf6ln\n--b1\nContent-Type: image/png\n"
          "Content-Transfer-Encoding: base64\n\niVBO\n--b1--\nepi\xe9logue",
          "MIME-Version: 1.0\nContent-Type: multipart/mixed;\n boundary=\"b1\"\n"
          "Content-Transfer-Encoding: 7bit\n\npre\xe9mble\n--b1\nContent-Type: text/plain\n\n"
          "ascii\n--b1 \nContent-Type: text/plain; charset=latin1\n"
          "Content-Transfer-Encoding: quoted-printable\n\nK=F6ln\n--b1\nContent-Type: image/png\n"
          "Content-Transfer-Encoding: base64\n\niVBO\n--b1--\nepi\xe9logue",
          "multipart: only the 8-bit part is encoded; the container is relabelled 7bit");
    check("Content-Type: multipart/mixed; boundary=outer\n\n--outer\n"
          "Content-Type: multipart/alternative; boundary=inner\n\n--inner\n\n\xe9\n--inner\n\n"
          "x\n--outer\n\n\xe8\n--outer--",
          "Content-Type: multipart/mixed; boundary=outer\n\n--outer\n"
          "Content-Type: multipart/alternative; boundary=inner\n\n--inner\n"
          "Content-Transfer-Encoding: quoted-printable\n\n=E9\n--inner\n\nx\n--outer\n"
          "Content-Transfer-Encoding: quoted-printable\n\n=E8\n--outer--",
          "nested multiparts; an outer boundary ends the inner one too");
    check("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n"
          "Content-Transfer-Encoding: 8bit\n\nSubject: inner\n\nK\xf6ln\n--b--",
          "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n"
          "Content-Transfer-Encoding: 7bit\n\nSubject: inner\n"
          "Content-Transfer-Encoding: quoted-printable\n\nK=F6ln\n--b--",
          "a message/rfc822 part: relabelled, the message inside converted");
    check("Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\n\xe9\n--d--",
          "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n"
          "Content-Transfer-Encoding: quoted-printable\n\n=E9\n--d--",
          "multipart/digest: its parts are messages");
    check("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n--b\n\n"
          "\xe9\n--b--",
          "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n--b\n"
          "Content-Transfer-Encoding: quoted-printable\n\n=E9\n--b--",
          "a part that ends inside its header block");
    check("Content-Type: multipart/mixed\n\n--b\n\xe9",
          "Content-Type: multipart/mixed\nMIME-Version: 1.0\n"
          "Content-Transfer-Encoding: quoted-printable\n\n=2D-b\n=E9",
          "multipart without a boundary is a leaf");
}

static void test_limits(void)
{
    struct mime8_limits lim = {2, 1000, 2};
    buf_t *b = buf_new(0);
    char *got;
    int rc;

    got = convert_lim("Content-Type: multipart/mixed; boundary=a\n\n--a\n"
                      "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
                      "Content-Type: multipart/mixed; boundary=c\n\n--c\n\n\xe9\n--c--\n--b--\n--a--",
                      &lim, &rc);
    is_str(got, "Content-Type: multipart/mixed; boundary=a\n\n--a\n"
                "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
                "Content-Type: multipart/mixed; boundary=c\n"
                "Content-Transfer-Encoding: quoted-printable\n\n=2D-c\n\n=E9\n=2D-c--\n--b--\n--a--",
           "past depth_max a part is a leaf");
    free(got);

    buf_append_str(b, "Content-Transfer-Encoding: 8bit\n");
    for (int i = 0; i < 40; i++)
        buf_printf(b, "X-Filler-%02d: 0123456789012345678901234567890123456789\n", i);
    buf_append_str(b, "\n\xe9");
    got = convert_lim(b->data, &lim, &rc);
    is_str(got, b->data, "a header block over header_max goes out as it is, body too");
    free(got);
    buf_free(&b);

    emit_stop_after = 2;
    got = convert_lim("A: 1\nB: 2\n\n\xe9\nmore", NULL, &rc);
    is_int(rc, 7, "emit's non-zero result stops the conversion and is returned");
    emit_stop_after = -1;
    free(got);
    ok(mime8_has_8bit("a\0b", 3) && mime8_has_8bit("\x80", 1) && !mime8_has_8bit("abc~", 4),
       "mime8_has_8bit: NUL and octets over 127");
}

int main(void)
{
    test_simple();
    test_qp();
    test_multipart();
    test_limits();
    return done_testing();
}
