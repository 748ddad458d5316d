/*
 * dmarc - DMARC (RFC 7489) policy discovery and evaluation over libpsl.
 * The interface, the rules it follows and why it is not libopendmarc are
 * in dmarc.h.
 */
#include <errno.h>
#include <stdint.h>
#include <idn2.h>
#include <libpsl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addrlist.h"
#include "dmarc.h"
#include "msg.h"
#include "xalloc.h"

static psl_ctx_t *dmarc_psl;

int dmarc_init(const char *psl_file, const char **error_r)
{
    psl_ctx_t *p;

    if (psl_file == NULL || *psl_file == '\0')
        psl_file = DMARC_PSL_FILE;
    if (access(psl_file, R_OK) < 0) {
        *error_r = strerror(errno);
        return -1;
    }
    if ((p = psl_load_file(psl_file)) == NULL) {
        *error_r = "not a public suffix list (libpsl cannot load it)";
        return -1;
    }
    if (psl_suffix_count(p) == 0) {
        psl_free(p);
        *error_r = "the public suffix list has no rules";
        return -1;
    }
    if (dmarc_psl != NULL)
        psl_free(dmarc_psl);
    dmarc_psl = p;
    return 0;
}

/* ---- domains ---- */

/* A lower-cased (ASCII) copy without one trailing dot. */
static char *dom_norm(const char *d)
{
    size_t n = strlen(d);
    char *s;

    if (n > 0 && d[n - 1] == '.')
        n--;
    s = xstrndup(d, n);
    for (char *p = s; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return s;
}

/* A host name as DMARC looks it up: 1-63 octet labels of letters, digits,
 * '-' and '_', at most 253 octets, lower case (as dom_norm left it). */
static int dom_valid(const char *d)
{
    size_t len = strlen(d), label = 0;

    if (len == 0 || len > 253)
        return 0;
    for (const char *p = d;; p++) {
        if (*p == '.' || *p == '\0') {
            if (label == 0 || label > 63)
                return 0;
            if (*p == '\0')
                return 1;
            label = 0;
            continue;
        }
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return 0;
        label++;
    }
}

char *dmarc_org_domain(const char *domain)
{
    char *d = dom_norm(domain);
    const char *r;

    if (dmarc_psl == NULL)
        msg_panic("dmarc_org_domain: dmarc_init was not called");
    /* NULL for a public suffix itself (and for nonsense such as a
     * leading dot): the domain stands for itself then. */
    r = *d ? psl_registrable_domain(dmarc_psl, d) : NULL;
    if (r != NULL && r != d) {
        char *o = xstrdup(r);

        free(d);
        return o;
    }
    return d;
}

/* ---- From ---- */

/* The domain of an addr-spec as addrlist returns it (quoted strings kept
 * as written), normalised and checked; NULL with *why. */
static char *from_addr_domain(const char *addr, const char **why)
{
    const char *at = NULL;
    int quoted = 0, ats = 0;
    char *d;

    for (const char *p = addr; *p; p++) {
        if (quoted && *p == '\\' && p[1] != '\0')
            p++;
        else if (*p == '"')
            quoted = !quoted;
        else if (!quoted && *p == '@') {
            ats++;
            at = p;
        }
    }
    if (ats == 0) {
        *why = "From: address without a domain";
        return NULL;
    }
    if (ats > 1) {
        *why = "From: address with more than one '@'";
        return NULL;
    }
    if (at[1] == '[') {
        *why = "From: address with a domain literal";
        return NULL;
    }
    d = dom_norm(at + 1);
    for (const char *p = d; *p; p++) {
        if ((unsigned char)*p >= 0x80) {
            /* RFC 6532: a U-label domain is looked up as its A-labels. */
            char *a = NULL;

            if (idn2_to_ascii_8z(d, &a, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) != IDN2_OK) {
                free(d);
                *why = "From: domain is not a valid internationalized domain name";
                return NULL;
            }
            free(d);
            d = dom_norm(a);
            idn2_free(a);
            break;
        }
    }
    if (!dom_valid(d)) {
        free(d);
        *why = "From: domain is not a valid domain name";
        return NULL;
    }
    return d;
}

int dmarc_from_domain(const char *const *from_values, size_t n, char **domain, const char **why)
{
    char *found = NULL;

    *domain = NULL;
    if (n == 0) {
        *why = "no From: header field";
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *v = from_values[i] ? from_values[i] : "";
        struct addrlist al;

        if (addrlist_parse(v, strlen(v), &al, why) < 0) {
            free(found);
            return -1;
        }
        for (size_t j = 0; j < al.n; j++) {
            char *d = from_addr_domain(al.addrs[j], why);

            if (d == NULL) {
                addrlist_free(&al);
                free(found);
                return -1;
            }
            if (found == NULL) {
                found = d;
            } else {
                int same = strcmp(found, d) == 0;

                free(d);
                if (!same) {
                    addrlist_free(&al);
                    free(found);
                    *why = "From: addresses in different domains (RFC 7489 6.6.1)";
                    return -1;
                }
            }
        }
        addrlist_free(&al);
    }
    if (found == NULL) {
        *why = "no address in From:";
        return -1;
    }
    *domain = found;
    return 0;
}

/* ---- records ---- */

static int is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* Trim blanks off [*s, *e). */
static void trim(const char **s, const char **e)
{
    while (*s < *e && is_wsp(**s))
        (*s)++;
    while (*e > *s && is_wsp((*e)[-1]))
        (*e)--;
}

static int word_is(const char *s, const char *e, const char *w)
{
    return (size_t)(e - s) == strlen(w) && strncasecmp(s, w, (size_t)(e - s)) == 0;
}

static enum dmarc_p parse_p(const char *s, const char *e)
{
    if (word_is(s, e, "none"))
        return DMARC_P_NONE;
    if (word_is(s, e, "quarantine"))
        return DMARC_P_QUARANTINE;
    if (word_is(s, e, "reject"))
        return DMARC_P_REJECT;
    return DMARC_P_UNSET;
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* One dmarc-uri (RFC 7489 6.4): URI [ "!" 1*DIGIT [ k/m/g/t ] ], the URI
 * checked as scheme ":" something without blanks. */
static int uri_valid(const char *s, const char *e)
{
    const char *p = s, *bang;

    if (p == e || !is_alpha(*p))
        return 0;
    while (p < e && (is_alpha(*p) || is_digit(*p) || *p == '+' || *p == '-' || *p == '.'))
        p++;
    if (p == e || *p != ':')
        return 0;
    p++;
    for (bang = e; bang > p && bang[-1] != '!'; bang--)
        ;
    if (bang > p) {
        const char *q = bang;

        while (q < e && is_digit(*q))
            q++;
        if (q > bang && (q == e || (q + 1 == e && strchr("kmgtKMGT", *q) != NULL)))
            e = bang - 1;
    }
    if (p == e)
        return 0;
    for (; p < e; p++)
        if (is_wsp(*p) || *p == ',')
            return 0;
    return 1;
}

/* rua holds at least one syntactically valid URI. */
static int rua_has_valid_uri(const char *rua)
{
    const char *s = rua, *e;

    for (;;) {
        const char *ts, *te;

        e = strchr(s, ',');
        if (e == NULL)
            e = s + strlen(s);
        ts = s;
        te = e;
        trim(&ts, &te);
        if (uri_valid(ts, te))
            return 1;
        if (*e == '\0')
            return 0;
        s = e + 1;
    }
}

enum { T_P, T_SP, T_ADKIM, T_ASPF, T_PCT, T_RUA, T_RUF, T_FO, T_RF, T_RI, T_COUNT };
static const char *const tag_names[T_COUNT] = {
    "p", "sp", "adkim", "aspf", "pct", "rua", "ruf", "fo", "rf", "ri",
};

void dmarc_record_clear(struct dmarc_record *rec)
{
    free(rec->rua);
    free(rec->ruf);
    free(rec->fo);
    free(rec->rf);
    free(rec->ri);
    memset(rec, 0, sizeof(*rec));
}

static int record_fail(struct dmarc_record *rec, const char **why, const char *reason)
{
    dmarc_record_clear(rec);
    *why = reason;
    return -1;
}

int dmarc_record_parse(const char *txt, struct dmarc_record *rec, const char **why)
{
    const char *s = txt, *vals[T_COUNT], *vale[T_COUNT];
    int first = 1, p_bad = 0, sp_bad = 0;

    memset(rec, 0, sizeof(*rec));
    memset(vals, 0, sizeof(vals));
    memset(vale, 0, sizeof(vale));
    for (const char *c = txt; *c; c++)
        if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
            return record_fail(rec, why, "control character in the record");
    for (;;) {
        const char *e = strchr(s, ';'), *eq, *ns, *ne, *vs, *ve;

        if (e == NULL)
            e = s + strlen(s);
        if (first) {
            /* dmarc-version = "v" *WSP "=" *WSP "DMARC1", first. */
            ns = s;
            ne = e;
            while (ne > ns && is_wsp(ne[-1]))
                ne--;
            eq = memchr(ns, '=', (size_t)(ne - ns));
            if (ns == ne || (*ns != 'v' && *ns != 'V') || eq == NULL)
                return record_fail(rec, why, "not a DMARC record (no v=DMARC1 first)");
            vs = eq + 1;
            while (vs < ne && is_wsp(*vs))
                vs++;
            for (const char *q = ns + 1; q < eq; q++)
                if (!is_wsp(*q))
                    return record_fail(rec, why, "not a DMARC record (no v=DMARC1 first)");
            if ((size_t)(ne - vs) != 6 || strncmp(vs, "DMARC1", 6) != 0)
                return record_fail(rec, why, "not a DMARC1 record (v= is not DMARC1)");
            first = 0;
        } else if ((eq = memchr(s, '=', (size_t)(e - s))) != NULL) {
            int t;

            ns = s;
            ne = eq;
            vs = eq + 1;
            ve = e;
            trim(&ns, &ne);
            trim(&vs, &ve);
            if (word_is(ns, ne, "v"))
                return record_fail(rec, why, "v= given twice");
            for (t = 0; t < T_COUNT; t++)
                if (word_is(ns, ne, tag_names[t]))
                    break;
            if (t < T_COUNT) {
                if (vals[t] != NULL)
                    return record_fail(rec, why, "a tag given twice");
                vals[t] = vs;
                vale[t] = ve;
            }
            /* Unknown tags are ignored (RFC 7489 6.3), as are segments
             * without '=' and empty ones. */
        }
        if (*e == '\0')
            break;
        s = e + 1;
    }

    rec->pct = 100;
    if (vals[T_PCT] != NULL) {
        const char *p = vals[T_PCT];
        int n = 0;

        if (vale[T_PCT] - p < 1 || vale[T_PCT] - p > 3)
            return record_fail(rec, why, "invalid pct= value");
        for (; p < vale[T_PCT]; p++) {
            if (!is_digit(*p))
                return record_fail(rec, why, "invalid pct= value");
            n = n * 10 + (*p - '0');
        }
        if (n > 100)
            return record_fail(rec, why, "pct= value over 100");
        rec->pct = n;
    }
    rec->adkim = rec->aspf = 'r';
    for (int t = T_ADKIM; t <= T_ASPF; t++) {
        char *a = t == T_ADKIM ? &rec->adkim : &rec->aspf;

        if (vals[t] == NULL)
            continue;
        if (word_is(vals[t], vale[t], "r"))
            *a = 'r';
        else if (word_is(vals[t], vale[t], "s"))
            *a = 's';
        else
            return record_fail(rec, why, t == T_ADKIM ? "invalid adkim= value" : "invalid aspf= value");
    }
    rec->rua = xstrndup(vals[T_RUA] ? vals[T_RUA] : "", vals[T_RUA] ? (size_t)(vale[T_RUA] - vals[T_RUA]) : 0);
    rec->ruf = xstrndup(vals[T_RUF] ? vals[T_RUF] : "", vals[T_RUF] ? (size_t)(vale[T_RUF] - vals[T_RUF]) : 0);
    rec->fo = xstrndup(vals[T_FO] ? vals[T_FO] : "", vals[T_FO] ? (size_t)(vale[T_FO] - vals[T_FO]) : 0);
    rec->rf = xstrndup(vals[T_RF] ? vals[T_RF] : "", vals[T_RF] ? (size_t)(vale[T_RF] - vals[T_RF]) : 0);
    rec->ri = xstrndup(vals[T_RI] ? vals[T_RI] : "", vals[T_RI] ? (size_t)(vale[T_RI] - vals[T_RI]) : 0);

    rec->p = vals[T_P] ? parse_p(vals[T_P], vale[T_P]) : DMARC_P_UNSET;
    p_bad = rec->p == DMARC_P_UNSET;
    if (vals[T_SP] != NULL) {
        rec->sp = parse_p(vals[T_SP], vale[T_SP]);
        sp_bad = rec->sp == DMARC_P_UNSET;
    } else {
        rec->sp = rec->p;
    }
    if (p_bad || sp_bad) {
        /* RFC 7489 6.6.3 step 6. */
        if (!rua_has_valid_uri(rec->rua))
            return record_fail(rec, why, p_bad ? (vals[T_P] ? "invalid p= value" : "no p= tag")
                                               : "invalid sp= value");
        rec->p = rec->sp = DMARC_P_NONE;
        rec->p_from_rua = 1;
    }
    return 0;
}

/* ---- discovery and evaluation ---- */

/* Does txt start with v=DMARC1 (RFC 7489 6.6.3 steps 2 and 4)? */
static int starts_dmarc1(const char *txt)
{
    const char *p = txt;

    if (*p != 'v' && *p != 'V')
        return 0;
    for (p++; is_wsp(*p); p++)
        ;
    if (*p++ != '=')
        return 0;
    while (is_wsp(*p))
        p++;
    if (strncmp(p, "DMARC1", 6) != 0)
        return 0;
    p += 6;
    return *p == '\0' || *p == ';' || is_wsp(*p);
}

/* Look up _dmarc.<domain>: DMARC_DNS_OK with *rec (the one record, or
 * NULL) and *nrec (how many v=DMARC1 records there were), or
 * DMARC_DNS_TEMPFAIL; NONE counts as OK with no record. */
static enum dmarc_dns fetch(const char *domain, dmarc_txt_fn lookup, void *ctx, char **rec, size_t *nrec)
{
    char *name = xasprintf("_dmarc.%s", domain), **txts = NULL;
    size_t n = 0;
    enum dmarc_dns st = lookup(ctx, name, &txts, &n);

    free(name);
    *rec = NULL;
    *nrec = 0;
    if (txts == NULL)
        n = 0;
    for (size_t i = 0; i < n; i++) {
        if (st == DMARC_DNS_OK && txts[i] != NULL && starts_dmarc1(txts[i])) {
            if (++*nrec == 1) {
                *rec = txts[i];
                continue;
            }
        }
        free(txts[i]);
    }
    free(txts);
    if (*nrec != 1) {
        free(*rec);
        *rec = NULL;
    }
    return st == DMARC_DNS_TEMPFAIL ? DMARC_DNS_TEMPFAIL : DMARC_DNS_OK;
}

static int aligned(const char *from, const char *from_org, const char *other, char mode)
{
    char *o = dom_norm(other);
    int r;

    if (mode == 's') {
        r = strcmp(from, o) == 0;
    } else {
        char *oo = dmarc_org_domain(o);

        r = strcmp(from_org, oo) == 0;
        free(oo);
    }
    free(o);
    return r;
}

static enum dmarc_p weaker(enum dmarc_p p)
{
    return p == DMARC_P_REJECT ? DMARC_P_QUARANTINE : DMARC_P_NONE;
}

int dmarc_evaluate(const struct dmarc_input *in, dmarc_txt_fn lookup, void *ctx, struct dmarc_outcome *out)
{
    char *from, *org, *txt = NULL;
    const char *why = NULL, *where;
    size_t nrec = 0;
    int at_org = 0, rc = 0;
    enum dmarc_p pol;

    if (dmarc_psl == NULL)
        msg_panic("dmarc_evaluate: dmarc_init was not called");
    memset(out, 0, sizeof(*out));
    out->result = DMARC_RES_NONE;
    out->disposition = DMARC_P_NONE;
    from = dom_norm(in->from_domain ? in->from_domain : "");
    if (!dom_valid(from)) {
        out->comment = xstrdup("no usable From: domain");
        free(from);
        return -1;
    }
    org = dmarc_org_domain(from);

    if (fetch(from, lookup, ctx, &txt, &nrec) == DMARC_DNS_TEMPFAIL) {
        out->result = DMARC_RES_TEMPERROR;
        out->comment = xasprintf("temporary DNS failure looking up _dmarc.%s", from);
        goto done;
    }
    if (nrec == 0 && strcmp(org, from) != 0) {
        at_org = 1;
        if (fetch(org, lookup, ctx, &txt, &nrec) == DMARC_DNS_TEMPFAIL) {
            out->result = DMARC_RES_TEMPERROR;
            out->comment = xasprintf("temporary DNS failure looking up _dmarc.%s", org);
            goto done;
        }
    }
    where = at_org ? org : from;
    if (nrec == 0) {
        out->comment = xasprintf("no DMARC record for %s", from);
        goto done;
    }
    if (nrec > 1) {
        out->comment = xasprintf("%zu DMARC records at _dmarc.%s", nrec, where);
        goto done;
    }
    if (dmarc_record_parse(txt, &out->record, &why) < 0) {
        out->result = DMARC_RES_PERMERROR;
        out->comment = xasprintf("invalid DMARC record at _dmarc.%s: %s", where, why);
        goto done;
    }
    out->policy_domain = xstrdup(where);
    out->policy_is_sp = at_org;

    for (size_t i = 0; i < in->ndkim && !out->dkim_aligned; i++)
        if (in->dkim[i].domain != NULL
            && aligned(from, org, in->dkim[i].domain, out->record.adkim))
            out->dkim_aligned = 1;
    if (in->spf_pass && in->spf_domain != NULL && aligned(from, org, in->spf_domain, out->record.aspf))
        out->spf_aligned = 1;

    if (out->dkim_aligned || out->spf_aligned) {
        out->result = DMARC_RES_PASS;
        out->comment = xasprintf("%s%s%s aligned with %s", out->dkim_aligned ? "DKIM" : "",
                                 out->dkim_aligned && out->spf_aligned ? " and " : "",
                                 out->spf_aligned ? "SPF" : "", from);
        goto done;
    }
    out->result = DMARC_RES_FAIL;
    pol = at_org ? out->record.sp : out->record.p;
    if (pol != DMARC_P_NONE && out->record.pct < 100
        && arc4random_uniform(100) >= (uint32_t)out->record.pct) {
        pol = weaker(pol);
        out->sampled_out = 1;
    }
    out->disposition = pol;
    out->comment = xasprintf("no aligned pass for %s; %s=%s%s", from, at_org ? "sp" : "p",
                             dmarc_p_name(at_org ? out->record.sp : out->record.p),
                             out->sampled_out ? " (sampled out by pct)" : "");
done:
    if (out->policy_domain == NULL)
        dmarc_record_clear(&out->record);
    free(txt);
    free(org);
    free(from);
    return rc;
}

void dmarc_outcome_clear(struct dmarc_outcome *out)
{
    dmarc_record_clear(&out->record);
    free(out->policy_domain);
    free(out->comment);
    memset(out, 0, sizeof(*out));
}

const char *dmarc_result_name(enum dmarc_result r)
{
    switch (r) {
    case DMARC_RES_NONE:        return "none";
    case DMARC_RES_PASS:        return "pass";
    case DMARC_RES_FAIL:        return "fail";
    case DMARC_RES_TEMPERROR:   return "temperror";
    case DMARC_RES_PERMERROR:   return "permerror";
    }
    return "permerror";
}

const char *dmarc_p_name(enum dmarc_p p)
{
    switch (p) {
    case DMARC_P_NONE:          return "none";
    case DMARC_P_QUARANTINE:    return "quarantine";
    case DMARC_P_REJECT:        return "reject";
    case DMARC_P_UNSET:         return "unset";
    }
    return "unset";
}
