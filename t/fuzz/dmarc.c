/*
 * t/fuzz/dmarc.c - libFuzzer harness for lib/dmarc.c: the record parser,
 * the From domain, the organizational domain and the whole evaluation
 * with fuzzed records served from a table.
 *
 * Input: a control byte (bit 0: SPF passed), then lines:
 *   1: From: field values, several separated by \x1e
 *   2: the SPF domain
 *   3: DKIM d= domains, separated by blanks
 *   4...: DNS entries "NAME TEXT": the TXT TEXT (or a temporary failure
 *         when TEXT is "TEMPFAIL") at _dmarc.NAME; NAME "@" is the From
 *         domain and "^" its organizational domain.
 * Every TEXT also goes through dmarc_record_parse on its own.
 *
 * Invariants (abort on a breach): a parsed record has p, sp in none..
 * reject, pct 0..100, adkim/aspf r or s, non-NULL strings, and p = sp =
 * none when p came from rua; a refused one a reason and a cleared record.
 * A From domain is lower case LDH/underscore labels without a trailing
 * dot, at most 253 octets, and its organizational domain is a label-
 * aligned suffix of it.  An outcome has a comment; a policy domain exactly
 * for pass and fail; pass exactly when something aligned; a disposition
 * other than none only for fail; sampled_out only for fail with pct < 100
 * and p not none; sp only from the organizational domain when it differs
 * from the From domain; at most two lookups, each "_dmarc." + a domain.
 */
#include <stdlib.h>
#include <string.h>

#include "dmarc.h"
#include "xalloc.h"
#define FUZZ_OWN_INIT
#include "fuzzlib.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);

struct entry {
    char *name, *text;
};

struct table {
    struct entry *e;
    size_t n;
    const char *from, *org;
    int lookups;
};

static enum dmarc_dns lookup(void *ctx, const char *name, char ***txts, size_t *n)
{
    struct table *t = ctx;
    enum dmarc_dns st = DMARC_DNS_NONE;

    if (strncmp(name, "_dmarc.", 7) != 0 || ++t->lookups > 2)
        fuzz_fail("lookup %d of %s", t->lookups, name);
    *txts = NULL;
    *n = 0;
    for (size_t i = 0; i < t->n; i++) {
        const char *en = t->e[i].name;

        if (strcmp(en, "@") == 0)
            en = t->from;
        else if (strcmp(en, "^") == 0)
            en = t->org;
        if (en == NULL || strcmp(en, name + 7) != 0)
            continue;
        if (strcmp(t->e[i].text, "TEMPFAIL") == 0)
            return DMARC_DNS_TEMPFAIL;
        *txts = xreallocarray(*txts, *n + 1, sizeof(**txts));
        (*txts)[(*n)++] = xstrdup(t->e[i].text);
        st = DMARC_DNS_OK;
    }
    return st;
}

static void check_record(const char *txt)
{
    struct dmarc_record r;
    const char *why = NULL;

    if (dmarc_record_parse(txt, &r, &why) < 0) {
        if (why == NULL || r.rua != NULL || r.p != DMARC_P_UNSET)
            fuzz_fail("refused record without reason or not cleared");
        return;
    }
    if (r.p < DMARC_P_NONE || r.p > DMARC_P_REJECT || r.sp < DMARC_P_NONE || r.sp > DMARC_P_REJECT
        || r.pct < 0 || r.pct > 100 || (r.adkim != 'r' && r.adkim != 's') || (r.aspf != 'r' && r.aspf != 's')
        || !r.rua || !r.ruf || !r.fo || !r.rf || !r.ri
        || (r.p_from_rua && (r.p != DMARC_P_NONE || r.sp != DMARC_P_NONE)))
        fuzz_fail("bad parsed record from [%s]", txt);
    dmarc_record_clear(&r);
}

static void check_domain(const char *d)
{
    size_t len = strlen(d);

    if (len == 0 || len > 253 || d[len - 1] == '.' || d[0] == '.' || strstr(d, ".."))
        fuzz_fail("bad From domain [%s]", d);
    for (const char *p = d; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
            fuzz_fail("bad From domain [%s]", d);
}

static void check_org(const char *d, const char *org)
{
    size_t dl = strlen(d), ol = strlen(org);

    if (ol == 0 || ol > dl || strcmp(d + dl - ol, org) != 0 || (ol < dl && d[dl - ol - 1] != '.'))
        fuzz_fail("org domain [%s] not a suffix of [%s]", org, d);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *err = NULL;

    (void)argc;
    (void)argv;
    fuzz_init();
    if (dmarc_init(NULL, &err) < 0) {
        fprintf(stderr, "dmarc_init: %s\n", err);
        exit(2);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    char *copy, *lines[3] = { "", "", "" }, *p, *fromdom = NULL, *org = NULL, **vals = NULL;
    struct dmarc_dkim_pass dk[8];
    struct table t = { NULL, 0, NULL, NULL, 0 };
    struct dmarc_outcome out;
    struct dmarc_input in;
    size_t nvals = 0, ndk = 0;
    const char *why = NULL;
    int rc;

    if (size < 1)
        return 0;
    copy = xmalloc(size);
    memcpy(copy, data + 1, size - 1);
    copy[size - 1] = '\0';
    p = copy;
    for (int i = 0; i < 3 && p; i++) {
        lines[i] = p;
        if ((p = strchr(p, '\n')) != NULL)
            *p++ = '\0';
    }
    while (p != NULL) {
        char *line = p, *sp;

        if ((p = strchr(p, '\n')) != NULL)
            *p++ = '\0';
        if ((sp = strchr(line, ' ')) == NULL)
            continue;
        *sp = '\0';
        check_record(sp + 1);
        t.e = xreallocarray(t.e, t.n + 1, sizeof(*t.e));
        t.e[t.n].name = line;
        t.e[t.n++].text = sp + 1;
    }
    for (char *v = lines[0], *e;; v = e + 1) {
        vals = xreallocarray(vals, nvals + 1, sizeof(*vals));
        vals[nvals++] = v;
        if ((e = strchr(v, '\x1e')) == NULL)
            break;
        *e = '\0';
    }
    rc = dmarc_from_domain((const char *const *)vals, nvals, &fromdom, &why);
    if (rc == 0) {
        if (fromdom == NULL)
            fuzz_fail("no domain");
        check_domain(fromdom);
        org = dmarc_org_domain(fromdom);
        check_org(fromdom, org);
    } else if (fromdom != NULL || why == NULL) {
        fuzz_fail("refused From with a domain or without a reason");
    }
    for (char *s = strtok(lines[2], " "); s && ndk < 8; s = strtok(NULL, " "))
        dk[ndk++].domain = s;

    t.from = fromdom ? fromdom : lines[0];
    t.org = org;
    in.from_domain = t.from;
    in.spf_domain = lines[1];
    in.spf_pass = data[0] & 1;
    in.dkim = dk;
    in.ndkim = ndk;
    rc = dmarc_evaluate(&in, lookup, &t, &out);
    if (out.comment == NULL || out.result > DMARC_RES_PERMERROR || out.disposition > DMARC_P_REJECT)
        fuzz_fail("outcome without comment or out of range");
    if ((out.policy_domain != NULL) != (out.result == DMARC_RES_PASS || out.result == DMARC_RES_FAIL))
        fuzz_fail("policy domain and result disagree: %s", out.comment);
    if ((out.result == DMARC_RES_PASS) != (out.dkim_aligned || out.spf_aligned))
        fuzz_fail("pass and alignment disagree");
    if (out.result != DMARC_RES_FAIL && (out.disposition != DMARC_P_NONE || out.sampled_out))
        fuzz_fail("a disposition without fail");
    if (out.sampled_out && (out.record.pct == 100 || out.disposition == DMARC_P_REJECT))
        fuzz_fail("sampled out at pct=%d", out.record.pct);
    if (out.policy_is_sp && (org == NULL || strcmp(out.policy_domain, org) != 0 || strcmp(org, fromdom) == 0))
        fuzz_fail("sp without an org domain record");
    if (rc < 0 && (out.result != DMARC_RES_NONE || t.lookups != 0))
        fuzz_fail("-1 after lookups");
    if (out.policy_domain != NULL)
        check_record("v=DMARC1; p=none");   /* (the parser keeps no state) */
    dmarc_outcome_clear(&out);
    if (out.comment != NULL || out.policy_domain != NULL || out.record.rua != NULL)
        fuzz_fail("outcome not cleared");
    free(vals);
    free(t.e);
    free(fromdom);
    free(org);
    free(copy);
    return 0;
}
