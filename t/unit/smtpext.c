/*
 * t/unit/smtpext.c - unit tests for lib/smtpext.c, ESMTP extensions and
 * the EHLO reply as a client reads it.
 *
 * EHLO replies as real servers send them (Postfix's, our own), keywords
 * in any case, unknown and malformed lines ignored, the greeting line
 * never a keyword, SIZE with and without a usable limit, AUTH and AUTH=
 * with mechanism lists (merged, deduplicated, bad names skipped), a
 * refused EHLO, and the bit set itself.  Replies go through lib/smtpreply's
 * parser, as they will in the client.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "msg.h"
#include "smtpext.h"
#include "smtpreply.h"
#include "../lib/tap.h"

/* Parse wire as one reply, then as an EHLO reply; returns parse_ehlo's
 * result (-2 if wire was not one complete reply). */
static int ehlo(const char *wire, struct smtpext_caps *caps)
{
    smtpreply_parser_t *p = smtpreply_parser_new(NULL);
    const struct smtpreply *r = NULL;
    size_t used;
    int rc = -2;

    if (smtpreply_parse(p, wire, strlen(wire), &used, &r, NULL) == SMTPREPLY_DONE
        && used == strlen(wire))
        rc = smtpext_parse_ehlo(r, caps);
    smtpreply_parser_free(&p);
    return rc;
}

static void check(const char *desc, const char *wire, unsigned ext, uint64_t size,
                  const char *auth)
{
    struct smtpext_caps caps;

    is_int(ehlo(wire, &caps), 0, "%s: parsed", desc);
    is_int(caps.ext, ext, "  %s: extensions", desc);
    ok(caps.size_max == size, "  %s: size %llu", desc, (unsigned long long)caps.size_max);
    is_str(caps.auth, auth, "  %s: auth", desc);
    smtpext_caps_clear(&caps);
}

static void test_servers(void)
{
    struct smtpext_caps caps;

    check("Postfix",
          "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n"
          "250-ETRN\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n"
          "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n"
          "250 CHUNKING\r\n",
          SMTPEXT_ALL & ~SMTPEXT_BINARYMIME, 10240000, "PLAIN LOGIN");
    check("Posthorn smtpd",
          "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n"
          "250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n"
          "250-SMTPUTF8\r\n250 CHUNKING\r\n",
          SMTPEXT_ALL & ~(SMTPEXT_BINARYMIME | SMTPEXT_AUTH), 10240000, NULL);
    check("BINARYMIME", "250-mx\r\n250-BINARYMIME\r\n250 CHUNKING\r\n",
          SMTPEXT_BINARYMIME | SMTPEXT_CHUNKING, 0, NULL);
    check("lower and mixed case",
          "250-mx\r\n250-pipelining\r\n250-Size 100\r\n250-starttls\r\n250-8bitmime\r\n"
          "250-EnhancedStatusCodes\r\n250 auth plain cram-md5\r\n",
          SMTPEXT_PIPELINING | SMTPEXT_SIZE | SMTPEXT_STARTTLS | SMTPEXT_8BITMIME
          | SMTPEXT_ENHANCEDSTATUSCODES | SMTPEXT_AUTH, 100, "PLAIN CRAM-MD5");
    check("greeting only", "250 mx.example.org\r\n", 0, 0, NULL);
    check("greeting is not a keyword", "250-PIPELINING\r\n250 SIZE 5\r\n", SMTPEXT_SIZE, 5, NULL);
    check("unknown keywords ignored",
          "250-mx\r\n250-X-EXPS GSSAPI NTLM\r\n250-ETRN\r\n250-XCLIENT NAME ADDR\r\n"
          "250-DELIVERBY 300\r\n250-PIPELINING\r\n250 X-LINK2STATE\r\n",
          SMTPEXT_PIPELINING, 0, NULL);
    check("malformed lines ignored",
          "250-mx\r\n250-PIPELINING2\r\n250--PIPELINING\r\n250-PIPE LINING\r\n"
          "250-SIZE=100\r\n250-STARTTLS=1\r\n250- DSN\r\n250-8BITMIME\t\r\n250-\r\n"
          "250-SMTPUTF8-\r\n250 CHUNKING,\r\n",
          0, 0, NULL);
    check("a keyword with parameters it does not take", "250-mx\r\n250 PIPELINING yes\r\n",
          SMTPEXT_PIPELINING, 0, NULL);

    caps.auth = NULL;
    is_int(ehlo("550 5.7.1 go away\r\n", &caps), -1, "refused EHLO: -1");
    ok(caps.ext == 0 && caps.auth == NULL && caps.size_max == 0, "  nothing offered");
    is_int(ehlo("502-5.5.2 no\r\n502 5.5.2 EHLO\r\n", &caps), -1, "502: -1");
    is_int(ehlo("220 mx\r\n", &caps), -1, "another 2xx: -1");
    is_int(ehlo("251 mx\r\n", &caps), -1, "251: -1");
}

static void test_size(void)
{
    static const struct { const char *line; uint64_t size; } cases[] = {
        { "SIZE", 0 }, { "SIZE 0", 0 }, { "SIZE 1", 1 }, { "SIZE 52428800", 52428800 },
        { "SIZE  100 ", 100 }, { "SIZE abc", 0 }, { "SIZE 12 34", 0 }, { "SIZE 12x", 0 },
        { "SIZE -1", 0 }, { "SIZE 18446744073709551615", UINT64_MAX },
        { "SIZE 18446744073709551616", UINT64_MAX },
        { "SIZE 99999999999999999999999999", UINT64_MAX },
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char wire[128];
        struct smtpext_caps caps;

        snprintf(wire, sizeof(wire), "250-mx\r\n250 %s\r\n", cases[i].line);
        is_int(ehlo(wire, &caps), 0, "'%s' parsed", cases[i].line);
        ok(caps.ext == SMTPEXT_SIZE && caps.size_max == cases[i].size, "  SIZE, limit %llu",
           (unsigned long long)cases[i].size);
        smtpext_caps_clear(&caps);
    }
    check("last SIZE wins", "250-mx\r\n250-SIZE 10\r\n250 SIZE 20\r\n", SMTPEXT_SIZE, 20, NULL);
}

static void test_auth(void)
{
    struct smtpext_caps caps;

    check("AUTH without mechanisms", "250-mx\r\n250 AUTH\r\n", SMTPEXT_AUTH, 0, "");
    check("AUTH= alone", "250-mx\r\n250 AUTH=\r\n", SMTPEXT_AUTH, 0, "");
    check("AUTH=LOGIN", "250-mx\r\n250 AUTH=LOGIN\r\n", SMTPEXT_AUTH, 0, "LOGIN");
    check("AUTH= with a list", "250-mx\r\n250 AUTH=LOGIN PLAIN\r\n", SMTPEXT_AUTH, 0,
          "LOGIN PLAIN");
    check("duplicates dropped", "250-mx\r\n250 AUTH PLAIN PLAIN login LOGIN\r\n", SMTPEXT_AUTH,
          0, "PLAIN LOGIN");
    check("two AUTH lines merged",
          "250-mx\r\n250-AUTH PLAIN\r\n250-AUTH=LOGIN PLAIN\r\n250 AUTH SCRAM-SHA-256\r\n",
          SMTPEXT_AUTH, 0, "PLAIN LOGIN SCRAM-SHA-256");
    check("spaces", "250-mx\r\n250 AUTH   PLAIN    LOGIN  \r\n", SMTPEXT_AUTH, 0, "PLAIN LOGIN");
    check("bad names skipped",
          "250-mx\r\n250 AUTH PLAIN bad/mech X.Y LOGIN GS2_KRB5 12345678901234567890 "
          "123456789012345678901\r\n",
          SMTPEXT_AUTH, 0, "PLAIN LOGIN GS2_KRB5 12345678901234567890");
    check("AUTHX is not AUTH", "250-mx\r\n250 AUTHX PLAIN\r\n", 0, 0, NULL);

    is_int(ehlo("250-mx\r\n250-AUTH PLAIN LOGIN\r\n250 PIPELINING\r\n", &caps), 0, "AUTH parsed");
    ok(smtpext_has_auth(&caps, "PLAIN"), "has PLAIN");
    ok(smtpext_has_auth(&caps, "login"), "has login (any case)");
    ok(!smtpext_has_auth(&caps, "CRAM-MD5"), "not CRAM-MD5");
    ok(!smtpext_has_auth(&caps, "PLAI"), "not a prefix");
    ok(!smtpext_has_auth(&caps, "LAIN"), "not a suffix");
    ok(!smtpext_has_auth(&caps, "PLAIN LOGIN"), "not two at once");
    ok(!smtpext_has_auth(&caps, ""), "not the empty name");
    smtpext_caps_clear(&caps);
    ok(caps.auth == NULL && caps.ext == 0, "clear empties");
    smtpext_caps_clear(&caps);
    ok(!smtpext_has_auth(&caps, "PLAIN"), "no AUTH: nothing");
    is_int(ehlo("250-mx\r\n250 AUTH\r\n", &caps), 0, "AUTH without mechanisms");
    ok(!smtpext_has_auth(&caps, "PLAIN"), "  has none");
    smtpext_caps_clear(&caps);
}

static void test_bits(void)
{
    static const unsigned bits[] = {
        SMTPEXT_SIZE, SMTPEXT_8BITMIME, SMTPEXT_BINARYMIME, SMTPEXT_SMTPUTF8, SMTPEXT_DSN,
        SMTPEXT_AUTH, SMTPEXT_PIPELINING, SMTPEXT_STARTTLS, SMTPEXT_CHUNKING,
        SMTPEXT_ENHANCEDSTATUSCODES,
    };
    unsigned all = 0;
    int dup = 0;

    for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
        if (all & bits[i])
            dup = 1;
        all |= bits[i];
    }
    ok(!dup, "one bit per extension");
    is_int(all, SMTPEXT_ALL, "SMTPEXT_ALL is all of them");
    ok(SMTPEXT_ALL < (1u << 16), "below the bits lib/smtpproto keeps for itself");
}

int main(void)
{
    alarm(60);
    msg_init("smtpext-test", MSG_STDERR);
    test_servers();
    test_size();
    test_auth();
    test_bits();
    return done_testing();
}
