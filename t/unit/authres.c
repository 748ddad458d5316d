/*
 * t/unit/authres.c - unit tests for lib/authres.c: the field checkd
 * writes (methods, comments with parentheses and control characters,
 * properties given as tokens, addresses or quoted strings, "none"), and
 * the authserv-id read back from fields as other software writes them
 * (comments, quoted ids, versions, folding, garbage).
 */
#include <stdlib.h>
#include <string.h>

#include "authres.h"
#include "buf.h"
#include "msg.h"
#include "../lib/tap.h"

static void test_build(void)
{
    buf_t *b = buf_new(0);
    char *id = NULL;

    authres_begin(b, "mx.example.test");
    authres_end(b);
    is_str(buf_cstr(b), "mx.example.test; none", "nothing checked: none");

    authres_begin(b, "mx.example.test");
    authres_add(b, "spf", "pass", "designates 192.0.2.1 as permitted sender",
                "smtp.mailfrom", "alice@sender.test", NULL);
    authres_add(b, "dkim", "pass", NULL, "header.d", "sender.test", "header.s", "sel",
                "header.a", "rsa-sha256", "header.b", "AbCd+/12", NULL);
    authres_add(b, "dmarc", "pass", "p=reject sp=reject dis=none", "header.from", "sender.test",
                NULL);
    authres_end(b);
    is_str(buf_cstr(b), "mx.example.test; "
           "spf=pass (designates 192.0.2.1 as permitted sender) smtp.mailfrom=alice@sender.test; "
           "dkim=pass header.d=sender.test header.s=sel header.a=rsa-sha256 header.b=\"AbCd+/12\"; "
           "dmarc=pass (p=reject sp=reject dis=none) header.from=sender.test",
           "three methods on one line");
    {
        buf_t *f = buf_new(0);

        authres_fold(f, buf_cstr(b));
        is_str(buf_cstr(f), "mx.example.test;\r\n"
               "\tspf=pass (designates 192.0.2.1 as permitted sender) smtp.mailfrom=alice@sender.test;\r\n"
               "\tdkim=pass header.d=sender.test header.s=sel header.a=rsa-sha256 header.b=\"AbCd+/12\";\r\n"
               "\tdmarc=pass (p=reject sp=reject dis=none) header.from=sender.test",
               "folded for the header: a line per method");
        buf_reset(f);
        authres_fold(f, "mx; spf=fail (x; y z) smtp.mailfrom=\"a; dkim=b\"@x.test");
        is_str(buf_cstr(f), "mx;\r\n\tspf=fail (x; y z) smtp.mailfrom=\"a;\r\n\tdkim=b\"@x.test",
               "folds only before METHOD= (harmless inside a quoted string)");
        buf_free(&f);
    }

    authres_begin(b, "mx.example.test");
    authres_add(b, "dkim", "fail", "bad (sig) \\ here\r\nX-Evil: yes", "header.d", "", NULL);
    is_str(buf_cstr(b), "mx.example.test; dkim=fail (bad \\(sig\\) \\\\ hereX-Evil: yes)",
           "comment: parentheses and backslash quoted, CR LF dropped, empty property left out");

    authres_begin(b, "mx.example.test");
    authres_add(b, "spf", "fail", NULL, "smtp.mailfrom", "we ird\"@x.test", NULL);
    is_str(buf_cstr(b), "mx.example.test; spf=fail smtp.mailfrom=\"we ird\\\"@x.test\"",
           "an address that is not atoms is quoted");
    authres_begin(b, "mx.example.test");
    authres_add(b, "spf", "none", NULL, "smtp.mailfrom", "a;b@x.test\r\n", NULL);
    ok(!strchr(buf_cstr(b), '\r') && !strchr(buf_cstr(b), '\n'), "no line break from a value");
    authres_begin(b, "mx.example.test");
    {
        char longc[1000];

        memset(longc, 'c', sizeof(longc) - 1);
        longc[sizeof(longc) - 1] = '\0';
        authres_add(b, "spf", "fail", longc, NULL);
        ok(b->len < 40 + AUTHRES_COMMENT_MAX, "a long comment is cut (%zu bytes)", b->len);
    }
    ok(authres_authserv_id(b->data, b->len, &id) == 0 && strcmp(id, "mx.example.test") == 0,
       "our own field reads back");
    free(id);
    buf_free(&b);
}

static void test_id(const char *value, const char *want)
{
    static int n;
    char *id = NULL;
    int rc = authres_authserv_id(value, strlen(value), &id);

    n++;
    if (want == NULL)
        ok(rc < 0 && id == NULL, "case %d: no authserv-id", n);
    else
        ok(rc == 0 && id && strcmp(id, want) == 0, "case %d: authserv-id is %s (got %s)", n,
           want, id ? id : "none");
    free(id);
}

int main(void)
{
    msg_init("authres-test", MSG_STDERR);
    test_build();
    test_id("mx.example.test; spf=pass", "mx.example.test");
    test_id(" mx.example.test 1; none", "mx.example.test");
    test_id("(comment) mx.example.test;", "mx.example.test");
    test_id("(nested (comment \\) here)) mx.example.test", "mx.example.test");
    test_id("\r\n\tmx.example.test;\r\n\tdkim=pass", "mx.example.test");
    test_id("\"quoted.example\"; none", "quoted.example");
    test_id("\"q\\\"x\"; none", "q\"x");
    test_id("MX.Example.Test;", "MX.Example.Test");
    test_id("", NULL);
    test_id("   ", NULL);
    test_id("(unclosed comment mx.example.test", NULL);
    test_id("; spf=pass", NULL);
    test_id("\"unterminated", NULL);
    test_id("\"\"; none", NULL);
    return done_testing();
}
