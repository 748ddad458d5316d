/*
 * t/unit/dmarc.c - unit tests for lib/dmarc.c (DMARC, RFC 7489), without
 * DNS: the TXT lookups go to a table.
 *
 * Covers: record parsing (valid, invalid, blanks, case, tag order, pct
 * bounds, unknown and duplicate tags, p missing or invalid with and
 * without a valid rua); organizational domains (co.uk, subdomains, names
 * under no PSL rule, a TLD alone, trailing dots, upper case, A-labels);
 * the From domain of hostile and normal From: fields; evaluation: aligned
 * pass through DKIM, SPF or both, strict and relaxed alignment both ways,
 * sp for subdomains, the organizational domain fallback, several records,
 * temperror, permerror, pct 0/100 and a statistical check of pct=50, p=none,
 * and the names looked up.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "dmarc.h"
#include "xalloc.h"
#include "../lib/tap.h"

/* ---- the DNS table ---- */

struct zone {
    const char *name;           /* "_dmarc.example.com" */
    enum dmarc_dns status;
    const char *txt[4];         /* NULL-terminated */
};

static const struct zone zones[] = {
    { "_dmarc.example.com", DMARC_DNS_OK, { "v=DMARC1; p=reject; rua=mailto:d@example.com", NULL } },
    { "_dmarc.sub2.example.com", DMARC_DNS_OK, { "v=spf1 -all", "some other text", NULL } },
    { "_dmarc.strict.test", DMARC_DNS_OK, { "v=DMARC1; p=reject; adkim=s; aspf=s", NULL } },
    { "_dmarc.sp.test", DMARC_DNS_OK, { "v=DMARC1; p=reject; sp=quarantine", NULL } },
    { "_dmarc.own.sp.test", DMARC_DNS_OK, { "v=DMARC1; p=none", NULL } },
    { "_dmarc.two.test", DMARC_DNS_OK, { "v=DMARC1; p=reject", "v=DMARC1; p=none", NULL } },
    { "_dmarc.multi.example.org", DMARC_DNS_OK, { "v=DMARC1; p=none", "v=DMARC1; p=quarantine", NULL } },
    { "_dmarc.example.org", DMARC_DNS_OK, { "v=DMARC1; p=reject", NULL } },
    { "_dmarc.onedmarc.test", DMARC_DNS_OK, { "v=spf1 -all", "v=DMARC1; p=quarantine", "hello", NULL } },
    { "_dmarc.tempfail.test", DMARC_DNS_TEMPFAIL, { NULL } },
    { "_dmarc.tf2.test", DMARC_DNS_TEMPFAIL, { NULL } },
    { "_dmarc.bad.test", DMARC_DNS_OK, { "v=DMARC1; p=bogus", NULL } },
    { "_dmarc.rua.test", DMARC_DNS_OK, { "v=DMARC1; rua=mailto:agg@rua.test", NULL } },
    { "_dmarc.pct0.test", DMARC_DNS_OK, { "v=DMARC1; p=reject; pct=0", NULL } },
    { "_dmarc.pct0q.test", DMARC_DNS_OK, { "v=DMARC1; p=quarantine; pct=0", NULL } },
    { "_dmarc.pct50.test", DMARC_DNS_OK, { "v=DMARC1; p=reject; pct=50", NULL } },
    { "_dmarc.pct100.test", DMARC_DNS_OK, { "v=DMARC1; p=reject; pct=100", NULL } },
    { "_dmarc.none.test", DMARC_DNS_OK, { "v=DMARC1; p=none; rua=mailto:m@none.test", NULL } },
    { "_dmarc.b.co.uk", DMARC_DNS_OK, { "v=DMARC1; p=reject", NULL } },
    { "_dmarc.lower.test", DMARC_DNS_OK, { "v=dmarc1; p=reject", NULL } },
};

struct lookups {
    buf_t *names;               /* every name asked, " "-separated */
};

static enum dmarc_dns table_lookup(void *ctx, const char *name, char ***txts, size_t *n)
{
    struct lookups *l = ctx;

    buf_printf(l->names, "%s%s", l->names->len ? " " : "", name);
    *txts = NULL;
    *n = 0;
    for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
        if (strcmp(zones[i].name, name) != 0)
            continue;
        if (zones[i].status != DMARC_DNS_OK)
            return zones[i].status;
        for (size_t j = 0; zones[i].txt[j] != NULL; j++) {
            *txts = xreallocarray(*txts, *n + 1, sizeof(**txts));
            (*txts)[(*n)++] = xstrdup(zones[i].txt[j]);
        }
        return DMARC_DNS_OK;
    }
    return DMARC_DNS_NONE;
}

/* s with control characters as \xNN, for test names (fresh). */
static char *vis(const char *s)
{
    buf_t *b = buf_new(0);
    char *r;

    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            buf_printf(b, "\\x%02x", (unsigned char)*s);
        else
            buf_putc(b, *s);
    }
    r = buf_steal(b, NULL);
    buf_free(&b);
    return r;
}

/* ---- records ---- */

/* A parsed record in one line, or "ERROR: why". */
static char *rec_str(const char *txt)
{
    struct dmarc_record r;
    const char *why = NULL;
    char *s;

    if (dmarc_record_parse(txt, &r, &why) < 0)
        return xasprintf("ERROR: %s", why);
    s = xasprintf("p=%s sp=%s pct=%d adkim=%c aspf=%c rua=[%s] ruf=[%s] fo=[%s] rf=[%s] ri=[%s]%s",
                  dmarc_p_name(r.p), dmarc_p_name(r.sp), r.pct, r.adkim, r.aspf, r.rua, r.ruf,
                  r.fo, r.rf, r.ri, r.p_from_rua ? " (p from rua)" : "");
    dmarc_record_clear(&r);
    return s;
}

#define REC(txt, want) do { char *got_ = rec_str(txt), *v_ = vis(txt); \
    is_str(got_, want, "record: %s", v_); free(got_); free(v_); } while (0)
#define REC_ERR(txt) do { char *got_ = rec_str(txt), *v_ = vis(txt); \
    like(got_, "ERROR: ", "record refused: %s", v_); free(got_); free(v_); } while (0)

static void test_records(void)
{
    REC("v=DMARC1; p=reject",
        "p=reject sp=reject pct=100 adkim=r aspf=r rua=[] ruf=[] fo=[] rf=[] ri=[]");
    REC("v=DMARC1;p=none",
        "p=none sp=none pct=100 adkim=r aspf=r rua=[] ruf=[] fo=[] rf=[] ri=[]");
    REC("v = DMARC1 ;  p = quarantine ; sp=none; pct=25; adkim=s; aspf=S;\trua=mailto:a@x.test, mailto:b@y.test!10m ;"
        " ruf=mailto:f@x.test; fo=1:d; rf=afrf; ri=3600;",
        "p=quarantine sp=none pct=25 adkim=s aspf=s rua=[mailto:a@x.test, mailto:b@y.test!10m] "
        "ruf=[mailto:f@x.test] fo=[1:d] rf=[afrf] ri=[3600]");
    REC("V=DMARC1; P=Reject; SP=QUARANTINE; ADKIM=R",
        "p=reject sp=quarantine pct=100 adkim=r aspf=r rua=[] ruf=[] fo=[] rf=[] ri=[]");
    REC("v=DMARC1; pct=50; p=none",
        "p=none sp=none pct=50 adkim=r aspf=r rua=[] ruf=[] fo=[] rf=[] ri=[]");
    REC("v=DMARC1;; p=none;;foo; np=reject; t=y; psd=n; x-y=z=w;",
        "p=none sp=none pct=100 adkim=r aspf=r rua=[] ruf=[] fo=[] rf=[] ri=[]");
    REC("v=DMARC1 ;p=reject ", "p=reject sp=reject pct=100 adkim=r aspf=r rua=[] ruf=[] fo=[] rf=[] ri=[]");
    REC_ERR("v=dmarc1; p=reject");              /* "DMARC1" is case-sensitive (%x ABNF) */
    REC_ERR("v=DMARC10; p=none");
    REC_ERR("v=DMARC2; p=none");
    REC_ERR("p=reject; v=DMARC1");              /* v must come first */
    REC_ERR(" v=DMARC1; p=none");
    REC_ERR("x v=DMARC1; p=none");
    REC_ERR("");
    REC_ERR("v=DMARC1");                        /* no p, no rua */
    REC_ERR("v=DMARC1; p=r");                   /* no prefixes (libopendmarc takes these) */
    REC_ERR("v=DMARC1; p=");
    REC_ERR("v=DMARC1; p=reject; p=none");      /* duplicate tag */
    REC_ERR("v=DMARC1; p=reject; v=DMARC1");
    REC_ERR("v=DMARC1; p=reject; adkim=x");
    REC_ERR("v=DMARC1; p=reject; aspf=relaxed");
    REC_ERR("v=DMARC1; p=reject\r\n");
    REC_ERR("v=DMARC1; p=reject; rua=mailto:a@b\x01");
    /* pct bounds */
    REC("v=DMARC1; p=reject; pct=0", "p=reject sp=reject pct=0 adkim=r aspf=r rua=[] ruf=[] fo=[] rf=[] ri=[]");
    REC("v=DMARC1; p=reject; pct=100", "p=reject sp=reject pct=100 adkim=r aspf=r rua=[] ruf=[] fo=[] rf=[] ri=[]");
    REC("v=DMARC1; p=reject; pct=007", "p=reject sp=reject pct=7 adkim=r aspf=r rua=[] ruf=[] fo=[] rf=[] ri=[]");
    REC_ERR("v=DMARC1; p=reject; pct=101");
    REC_ERR("v=DMARC1; p=reject; pct=-1");
    REC_ERR("v=DMARC1; p=reject; pct=");
    REC_ERR("v=DMARC1; p=reject; pct=50abc");
    REC_ERR("v=DMARC1; p=reject; pct=0100");
    REC_ERR("v=DMARC1; p=reject; pct=5 0");
    /* RFC 7489 6.6.3 step 6: p missing/invalid or sp invalid, with a valid rua */
    REC("v=DMARC1; rua=mailto:agg@example.com",
        "p=none sp=none pct=100 adkim=r aspf=r rua=[mailto:agg@example.com] ruf=[] fo=[] rf=[] ri=[] (p from rua)");
    REC("v=DMARC1; p=bogus; rua=junk, mailto:agg@example.com!20k",
        "p=none sp=none pct=100 adkim=r aspf=r rua=[junk, mailto:agg@example.com!20k] ruf=[] fo=[] rf=[] ri=[] (p from rua)");
    REC("v=DMARC1; p=reject; sp=bogus; rua=https://example.com/r",
        "p=none sp=none pct=100 adkim=r aspf=r rua=[https://example.com/r] ruf=[] fo=[] rf=[] ri=[] (p from rua)");
    REC_ERR("v=DMARC1; rua=junk");
    REC_ERR("v=DMARC1; rua=mailto:");
    REC_ERR("v=DMARC1; rua=:x");
    REC_ERR("v=DMARC1; p=reject; sp=bogus");
    REC_ERR("v=DMARC1; ruf=mailto:f@example.com");   /* ruf does not count */
    {
        const char *why = "unset";
        struct dmarc_record r;

        ok(dmarc_record_parse("v=DMARC1", &r, &why) < 0 && strcmp(why, "no p= tag") == 0,
           "the reason for a missing p: %s", why);
        ok(r.rua == NULL && r.p == DMARC_P_UNSET, "a refused record is left cleared");
        ok(dmarc_record_parse("v=DMARC1; p=quarantine", &r, &why) == 0, "parse again");
        dmarc_record_clear(&r);
        ok(r.rua == NULL && r.fo == NULL, "dmarc_record_clear leaves nothing behind");
    }
}

/* ---- organizational domains ---- */

#define ORG(d, want) do { char *got_ = dmarc_org_domain(d); is_str(got_, want, "org domain of %s", d); free(got_); } while (0)

static void test_org(void)
{
    ORG("example.com", "example.com");
    ORG("sub.example.com", "example.com");
    ORG("a.b.c.example.com", "example.com");
    ORG("co.uk", "co.uk");                      /* a public suffix stands for itself */
    ORG("example.co.uk", "example.co.uk");
    ORG("a.b.example.co.uk", "example.co.uk");
    ORG("example.test", "example.test");        /* no rule: the default "*" rule */
    ORG("a.b.example.test", "example.test");
    ORG("test", "test");
    ORG("com", "com");
    ORG("example.com.", "example.com");
    ORG("Mail.EXAMPLE.Com.", "example.com");
    ORG("xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd.xn--p1ai");
    ORG("a.b.xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd.xn--p1ai");
    ORG("xn--p1ai", "xn--p1ai");
    ORG("a.city.kawasaki.jp", "city.kawasaki.jp");  /* !city.kawasaki.jp exception */
    ORG("a.b.kawasaki.jp", "a.b.kawasaki.jp");      /* *.kawasaki.jp wildcard */
    ORG("", "");
}

/* ---- From ---- */

static char *from1(const char *v)
{
    const char *vals[1] = { v }, *why = NULL;
    char *d = NULL, *s;

    if (dmarc_from_domain(vals, 1, &d, &why) < 0)
        return xasprintf("ERROR: %s", why);
    s = xstrdup(d);
    free(d);
    return s;
}

#define FROM(v, want) do { char *got_ = from1(v), *v_ = vis(v); \
    is_str(got_, want, "From: %s", v_); free(got_); free(v_); } while (0)
#define FROM_ERR(v, sub) do { char *got_ = from1(v), *v_ = vis(v); \
    like(got_, sub, "From refused: %s", v_); free(got_); free(v_); } while (0)

static void test_from(void)
{
    FROM("user@example.com", "example.com");
    FROM("John Doe <john@Example.COM>", "example.com");
    FROM("\"Doe, John\" <john@example.com>", "example.com");
    FROM("\"john@evil.test\" <john@example.com>", "example.com");
    FROM("\"a@b,c\"@example.com", "example.com");
    FROM("\"a\\\"@evil.test\"@example.com", "example.com");
    FROM("john@example.com (John @ evil.test, <x@evil.test>)", "example.com");
    FROM("(x@evil.test) john@example.com", "example.com");
    FROM("Group: a@example.com, b@EXAMPLE.com;", "example.com");
    FROM("a@example.com, Second <b@example.com>", "example.com");
    FROM("=?utf-8?q?Bank=40example=2Ecom?= <x@evil.test>", "evil.test");
    FROM("=?utf-8?B?PHhAZXhhbXBsZS5jb20+?= <y@evil.test>", "evil.test");
    FROM("x@example.com.", "example.com");
    FROM("<@relay.test:x@example.com>", "example.com");
    FROM("<@a.test,@b.test:x@example.com>", "example.com");
    FROM("John\r\n <john@example.com>\r\n", "example.com");
    FROM("john @ example . com", "example.com");
    FROM("x@exam_ple.com", "exam_ple.com");
    FROM("x@b\xc3\xa4nk.de", "xn--bnk-qla.de");        /* RFC 6532 U-label -> A-label */
    FROM("x@B\xc3\x84NK.DE", "xn--bnk-qla.de");
    FROM("x@xn--bnk-qla.de", "xn--bnk-qla.de");
    FROM("Friends:;, x@example.com", "example.com");
    FROM("@example.com", "example.com");                /* empty local part: the domain is what counts */
    FROM_ERR("Group: a@example.com, b@evil.test;", "different domains");
    FROM_ERR("a@example.com, b@evil.test", "different domains");
    FROM_ERR("a@example.com, \"b@example.com\"@evil.test", "different domains");
    FROM_ERR("undisclosed-recipients:;", "no address");
    FROM_ERR("", "no address");
    FROM_ERR("<>", "no address");
    FROM_ERR("John Doe", "without a domain");
    FROM_ERR("x@[192.0.2.1]", "domain literal");
    FROM_ERR("x@example.com@evil.test", "more than one '@'");
    FROM_ERR("\"unclosed <x@example.com>", "unclosed");
    FROM_ERR("Evil <x@evil.test> <y@example.com>", "unexpected '<'");
    FROM_ERR("x@", "not a valid domain");
    FROM_ERR("x@.example.com", "not a valid domain");
    FROM_ERR("x@example..com", "not a valid domain");
    FROM_ERR("x@exa!mple.com", "not a valid domain");
    FROM_ERR("x@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com", "not a valid domain");
    FROM_ERR("x@\xff.de", "internationalized");
    FROM_ERR("x@exa\x01mple.com", "control character");
    FROM_ERR("a@example.com;", "outside a group");
    {
        const char *two_same[2] = { "a@example.com", "B <b@EXAMPLE.com.>" };
        const char *two_diff[2] = { "a@example.com", "b@evil.test" };
        const char *with_null[2] = { NULL, "a@example.com" };
        const char *why = NULL;
        char *d = NULL;

        ok(dmarc_from_domain(two_same, 2, &d, &why) == 0 && d && strcmp(d, "example.com") == 0,
           "two From fields, one domain");
        free(d);
        d = NULL;
        ok(dmarc_from_domain(two_diff, 2, &d, &why) < 0 && d == NULL, "two From fields, two domains: %s", why);
        ok(dmarc_from_domain(with_null, 2, &d, &why) == 0 && d && strcmp(d, "example.com") == 0,
           "a NULL value counts as empty");
        free(d);
        d = NULL;
        ok(dmarc_from_domain(NULL, 0, &d, &why) < 0 && strcmp(why, "no From: header field") == 0,
           "no From field at all");
    }
}

/* ---- evaluation ---- */

struct eval {
    struct dmarc_outcome out;
    int rc;
    char *names;
};

static struct eval eval(const char *from, const char *spf, int spf_pass, const char *d1, const char *d2)
{
    struct dmarc_dkim_pass dk[2] = { { d1 }, { d2 } };
    struct dmarc_input in = { from, spf, spf_pass, dk, d2 ? 2 : d1 ? 1 : 0 };
    struct lookups l = { buf_new(0) };
    struct eval e;

    e.rc = dmarc_evaluate(&in, table_lookup, &l, &e.out);
    e.names = buf_steal(l.names, NULL);
    buf_free(&l.names);
    return e;
}

static void eval_free(struct eval *e)
{
    dmarc_outcome_clear(&e->out);
    free(e->names);
}

#define CHECK(e, res, disp, what) do { \
    is_str(dmarc_result_name((e).out.result), res, "%s: result (%s)", what, (e).out.comment); \
    is_str(dmarc_p_name((e).out.disposition), disp, "%s: disposition", what); \
} while (0)

static void test_eval(void)
{
    struct eval e;

    e = eval("example.com", NULL, 0, "example.com", NULL);
    CHECK(e, "pass", "none", "aligned DKIM");
    ok(e.out.dkim_aligned && !e.out.spf_aligned, "DKIM aligned, SPF not");
    is_str(e.out.policy_domain, "example.com", "policy domain");
    is_str(e.names, "_dmarc.example.com", "one lookup when From is the org domain");
    is_int(e.rc, 0, "rc 0");
    eval_free(&e);

    e = eval("example.com", "example.com", 1, "example.com", NULL);
    CHECK(e, "pass", "none", "DKIM and SPF");
    ok(e.out.dkim_aligned && e.out.spf_aligned, "both aligned");
    eval_free(&e);

    e = eval("mail.example.com", NULL, 0, "evil.test", "example.com");
    CHECK(e, "pass", "none", "DKIM only, the second signature, relaxed to the org domain");
    is_str(e.names, "_dmarc.mail.example.com _dmarc.example.com", "org domain fallback lookups");
    ok(e.out.policy_is_sp, "the record came from the org domain");
    eval_free(&e);

    e = eval("example.com", "bounce.example.com", 1, "evil.test", NULL);
    CHECK(e, "pass", "none", "SPF only, relaxed");
    ok(!e.out.dkim_aligned && e.out.spf_aligned, "SPF aligned, DKIM not");
    eval_free(&e);

    e = eval("example.com", "example.com", 0, NULL, NULL);
    CHECK(e, "fail", "reject", "SPF aligned but not pass");
    eval_free(&e);

    e = eval("example.com", "evil.test", 1, "evil.test", NULL);
    CHECK(e, "fail", "reject", "nothing aligned");
    ok(e.out.record.p == DMARC_P_REJECT && strcmp(e.out.record.rua, "mailto:d@example.com") == 0,
       "the record used is handed back");
    ok(!e.out.sampled_out && !e.out.policy_is_sp, "not sampled out, not sp");
    eval_free(&e);

    e = eval("Example.COM.", "evil.test", 1, NULL, NULL);
    is_str(e.names, "_dmarc.example.com", "the name looked up is lower-cased, no trailing dot");
    CHECK(e, "fail", "reject", "From in upper case");
    eval_free(&e);

    /* relaxed both ways, and not across a public suffix */
    e = eval("example.com", NULL, 0, "sel.sub.example.com", NULL);
    CHECK(e, "pass", "none", "relaxed: d= a subdomain of From");
    eval_free(&e);
    e = eval("deep.sub.example.com", "other.example.com", 1, NULL, NULL);
    CHECK(e, "pass", "none", "relaxed: From a subdomain, SPF a sibling");
    eval_free(&e);
    e = eval("a.b.co.uk", "c.co.uk", 1, "co.uk", NULL);
    CHECK(e, "fail", "reject", "relaxed: never across a public suffix");
    is_str(e.out.policy_domain, "b.co.uk", "policy from b.co.uk");
    eval_free(&e);

    /* strict */
    e = eval("strict.test", NULL, 0, "sub.strict.test", NULL);
    CHECK(e, "fail", "reject", "strict DKIM: a subdomain does not align");
    eval_free(&e);
    e = eval("strict.test", NULL, 0, "STRICT.test.", NULL);
    CHECK(e, "pass", "none", "strict DKIM: the same domain (case, dot)");
    eval_free(&e);
    e = eval("strict.test", "sub.strict.test", 1, NULL, NULL);
    CHECK(e, "fail", "reject", "strict SPF: a subdomain does not align");
    eval_free(&e);
    e = eval("strict.test", "strict.test", 1, NULL, NULL);
    CHECK(e, "pass", "none", "strict SPF: the same domain");
    eval_free(&e);
    e = eval("sub.strict.test", "strict.test", 1, "strict.test", NULL);
    CHECK(e, "fail", "reject", "strict: the org domain does not align with a subdomain From");
    ok(e.out.policy_is_sp, "sp applied (defaults to p)");
    eval_free(&e);

    /* sp */
    e = eval("x.sp.test", NULL, 0, NULL, NULL);
    CHECK(e, "fail", "quarantine", "sp applies to a subdomain");
    ok(e.out.policy_is_sp && strcmp(e.out.policy_domain, "sp.test") == 0, "policy_is_sp, from sp.test");
    eval_free(&e);
    e = eval("sp.test", NULL, 0, NULL, NULL);
    CHECK(e, "fail", "reject", "p applies to the org domain itself");
    ok(!e.out.policy_is_sp, "not sp");
    eval_free(&e);
    e = eval("own.sp.test", NULL, 0, NULL, NULL);
    CHECK(e, "fail", "none", "a subdomain's own record wins");
    is_str(e.out.policy_domain, "own.sp.test", "policy from the subdomain");
    is_str(e.names, "_dmarc.own.sp.test", "no org lookup then");
    eval_free(&e);
    e = eval("sub2.example.com", NULL, 0, NULL, NULL);
    CHECK(e, "fail", "reject", "non-DMARC TXT at the subdomain: org fallback");
    is_str(e.names, "_dmarc.sub2.example.com _dmarc.example.com", "both looked up");
    eval_free(&e);
    e = eval("onedmarc.test", NULL, 0, NULL, NULL);
    CHECK(e, "fail", "quarantine", "one DMARC record among other TXT");
    eval_free(&e);

    /* several records, none, temperror, permerror */
    e = eval("two.test", NULL, 0, "two.test", NULL);
    CHECK(e, "none", "none", "two records");
    ok(e.out.policy_domain == NULL, "no policy domain");
    like(e.out.comment, "2 DMARC records", "comment says so");
    eval_free(&e);
    e = eval("multi.example.org", NULL, 0, NULL, NULL);
    CHECK(e, "none", "none", "two records at the From domain: no fallback (RFC 7489 6.6.3)");
    is_str(e.names, "_dmarc.multi.example.org", "the org domain is not asked");
    eval_free(&e);
    e = eval("nothing.test", NULL, 0, NULL, NULL);
    CHECK(e, "none", "none", "no record");
    eval_free(&e);
    e = eval("lower.test", NULL, 0, NULL, NULL);
    CHECK(e, "none", "none", "v=dmarc1 is not a DMARC record");
    eval_free(&e);
    e = eval("tempfail.test", NULL, 0, "tempfail.test", NULL);
    CHECK(e, "temperror", "none", "temporary DNS failure");
    eval_free(&e);
    e = eval("x.tf2.test", NULL, 0, NULL, NULL);
    CHECK(e, "temperror", "none", "temporary failure at the org domain");
    eval_free(&e);
    e = eval("bad.test", NULL, 0, NULL, NULL);
    CHECK(e, "permerror", "none", "invalid record");
    like(e.out.comment, "invalid p= value", "the reason is in the comment");
    ok(e.out.policy_domain == NULL, "no policy");
    eval_free(&e);
    e = eval("rua.test", NULL, 0, NULL, NULL);
    CHECK(e, "fail", "none", "no p but a rua: p=none");
    ok(e.out.record.p_from_rua, "p_from_rua");
    eval_free(&e);
    e = eval("none.test", "evil.test", 1, NULL, NULL);
    CHECK(e, "fail", "none", "p=none: monitoring only");
    ok(!e.out.sampled_out, "nothing to sample");
    eval_free(&e);
    e = eval("", NULL, 0, NULL, NULL);
    is_int(e.rc, -1, "empty From domain: -1");
    CHECK(e, "none", "none", "empty From domain");
    eval_free(&e);
    e = eval("bad..domain", NULL, 0, NULL, NULL);
    is_int(e.rc, -1, "invalid From domain: -1");
    is_str(e.names, "", "nothing looked up");
    eval_free(&e);

    /* pct */
    {
        int wrong = 0, sampled = 0;

        for (int i = 0; i < 50; i++) {
            e = eval("pct0.test", NULL, 0, NULL, NULL);
            wrong += e.out.result != DMARC_RES_FAIL || e.out.disposition != DMARC_P_QUARANTINE || !e.out.sampled_out;
            eval_free(&e);
            e = eval("pct0q.test", NULL, 0, NULL, NULL);
            wrong += e.out.disposition != DMARC_P_NONE || !e.out.sampled_out;
            eval_free(&e);
            e = eval("pct100.test", NULL, 0, NULL, NULL);
            wrong += e.out.disposition != DMARC_P_REJECT || e.out.sampled_out;
            eval_free(&e);
            e = eval("pct0.test", NULL, 0, "pct0.test", NULL);
            wrong += e.out.result != DMARC_RES_PASS || e.out.sampled_out;
            eval_free(&e);
        }
        is_int(wrong, 0, "pct=0 always weakens (reject->quarantine, quarantine->none), pct=100 never, pass never");
        for (int i = 0; i < 2000; i++) {
            e = eval("pct50.test", NULL, 0, NULL, NULL);
            if (e.out.sampled_out)
                sampled++;
            if (e.out.disposition != (e.out.sampled_out ? DMARC_P_QUARANTINE : DMARC_P_REJECT))
                wrong++;
            eval_free(&e);
        }
        ok(sampled > 850 && sampled < 1150, "pct=50: %d of 2000 sampled out (expected ~1000, sd 22)", sampled);
        is_int(wrong, 0, "pct=50: the disposition follows the sample");
    }

    is_str(dmarc_result_name(DMARC_RES_TEMPERROR), "temperror", "result names");
    is_str(dmarc_result_name(DMARC_RES_PERMERROR), "permerror", "result names");
    is_str(dmarc_p_name(DMARC_P_QUARANTINE), "quarantine", "policy names");
}

int main(void)
{
    const char *err = "";
    int rc;

    rc = dmarc_init("/nonexistent/psl.dat", &err);
    ok(rc < 0, "a missing list: %s", err);
    rc = dmarc_init("/dev/null", &err);
    ok(rc < 0, "an empty list: %s", err);
    if (!ok(dmarc_init(NULL, &err) == 0, "load " DMARC_PSL_FILE)) {
        diag("%s", err);
        return done_testing();
    }
    test_records();
    test_org();
    test_from();
    test_eval();
    return done_testing();
}
