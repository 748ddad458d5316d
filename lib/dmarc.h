/*
 * dmarc - DMARC (RFC 7489) for checkd: the RFC5322.From domain of a
 * message, the organizational domain (public suffix list through libpsl),
 * DMARC record parsing, policy discovery through a TXT lookup callback
 * the caller provides, identifier alignment, and the policy to apply
 * (pct sampling included).  Reporting (rua/ruf mail, external destination
 * checks of RFC 7489 7.1) is not here: the record's rua/ruf are only
 * handed back as published.
 *
 * Why our own and not libopendmarc 1.4.2 (decided by fuzzing, issue 15):
 * its opendmarc_policy_fetch_rua/_ruf resolve "<from>._report._dmarc.<dom>"
 * themselves through libresolv (res_nquery) on the first record with an
 * outside rua (we must do every lookup through libunbound, in a seccomp
 * sandbox); its record parser is not RFC 7489's (v= need not come first,
 * p=r or pct=50abc pass, rf=iodef overwrites aspf, p= missing with a valid
 * rua is an error instead of 6.6.3 step 6's p=none, a record that failed
 * to parse half-way still yields its p); it applies sp whenever an
 * organizational domain was given, never applies pct; its alignment is
 * not RFC 7489 3.1's (a differential run over 43,320 cases: strict mode
 * passes d=mail.example.com for From example.com, relaxed mode passes a
 * public suffix parent such as d=co.uk for example.co.uk; never the other
 * way round); and its bug history
 * (CVE-2020-12460, CVE-2024-25768 open in 1.4.2, NULL dereferences in the
 * record parser in 1.3.x) argues against feeding it hostile input in the
 * one process that does.  What is left to do is small: this module.
 *
 * Interface:
 *   dmarc_init(psl_file, &error)    load the public suffix list (before the
 *                                   chroot; NULL: DMARC_PSL_FILE); 0 or -1
 *   dmarc_org_domain(domain)        the organizational domain (RFC 7489
 *                                   3.2), lower-cased, without a trailing
 *                                   dot; fresh string.  A public suffix
 *                                   itself ("co.uk", "com") is its own
 *                                   organizational domain; a name under no
 *                                   rule gets the default "*" rule (its
 *                                   last two labels)
 *   dmarc_from_domain(values, n, &domain, &why)
 *                                   the one RFC5322.From domain of a
 *                                   message from its From: field values
 *                                   (RFC 7489 6.6.1); 0 or -1 with why
 *   dmarc_record_parse(txt, &rec, &why), dmarc_record_clear(&rec)
 *   dmarc_evaluate(&in, lookup, ctx, &out), dmarc_outcome_clear(&out)
 *   dmarc_result_name(r), dmarc_p_name(p)
 *
 * Record syntax (RFC 7489 6.3, 6.4): ';'-separated "tag=value" with blanks
 * (SP, HTAB) allowed around ';' and '='; the first tag must be v=DMARC1
 * ("v" in any case, "DMARC1" exactly); tag names and the keyword values
 * (none/quarantine/reject, r/s) in any case; unknown tags, empty segments
 * and segments without '=' are ignored; a known tag twice makes the record
 * invalid (tag-list rule of RFC 6376 3.2).  pct is 1-3 digits, 0..100;
 * adkim/aspf r or s; an invalid pct/adkim/aspf makes the record invalid.
 * A missing or invalid p (or an invalid sp) makes it p=none (and sp=none)
 * if rua holds at least one syntactically valid URI (RFC 7489 6.6.3 step
 * 6), else the record is invalid.  rua, ruf, fo, rf, ri are kept as
 * published, blanks around them trimmed.
 *
 * Discovery (RFC 7489 6.6.3): TXT at _dmarc.<from>; records starting with
 * v=DMARC1 are kept; if none is left, TXT at _dmarc.<org domain> (when it
 * differs); then exactly one record must be left, else there is no policy
 * (result none).  That one record failing to parse is permerror (RFC 8601
 * 2.7.1), no policy applied.  A TEMPFAIL answer to either lookup is
 * temperror, no policy applied.  sp applies when the record came from the
 * organizational domain (which then differs from the From domain).
 *
 * Alignment (3.1): relaxed: the organizational domains are equal; strict:
 * the domains are equal (ASCII case and one trailing dot ignored).  DKIM
 * aligns through any passing signature's d=, SPF through spf_domain when
 * spf_pass.  Pass = either aligns.  A failing message whose record has
 * pct < 100 is sampled with arc4random_uniform(100) < pct; outside the
 * sample the policy is the next weaker one (reject -> quarantine ->
 * none) and sampled_out is 1 (6.6.4).
 *
 * From domains (6.6.1): every address of every From: field value (lib/
 * addrlist parses the RFC 5322 address list: display names, quoted
 * strings, comments, groups, angle addresses and routes); each addr-spec
 * must have exactly one '@' outside quoted strings and a domain made of
 * 1-63 octet labels of letters, digits, '-' and '_' (no domain literal),
 * at most 253 octets after one trailing dot is dropped; the domains are
 * compared lower-cased and must all be the same.  A UTF-8 domain (RFC
 * 6532) is converted to its A-labels (libidn2: IDNA2008, UTS #46
 * non-transitional mapping), so that a U-label From cannot escape the
 * policy of the domain it spells; one that does not convert is refused.
 *
 * Failure modes: dmarc_init -1 with a static reason when the list cannot
 * be loaded; the other functions take any input and answer with a result
 * or -1 and a static reason, never a crash.  Calling dmarc_org_domain or
 * dmarc_evaluate before a successful dmarc_init is our bug (panic).  Out
 * of memory is fatal (xalloc).  The TXT callback's strings (and the array)
 * are malloc()ed by it and freed here.
 */
#ifndef POSTHORN_DMARC_H
#define POSTHORN_DMARC_H

#include <stddef.h>

#define DMARC_PSL_FILE "/usr/share/publicsuffix/public_suffix_list.dat"

/* Load the public suffix list (before the chroot; path default
 * DMARC_PSL_FILE).  0, or -1 with a reason. */
int dmarc_init(const char *psl_file, const char **error_r);
/* The organizational domain (RFC 7489 3.2) of a domain, lower-cased;
 * fresh string. */
char *dmarc_org_domain(const char *domain);
/* The single RFC5322.From domain of a message, from the raw From: header
 * field value(s) (unfolded or folded; there may be several From fields).
 * 0 with *domain (fresh, lower-cased, IDNA A-label as received); -1 with a
 * reason when there is no From, no parseable address, or several From
 * addresses with different domains (RFC 7489 6.6.1). */
int dmarc_from_domain(const char *const *from_values, size_t n, char **domain, const char **why);

enum dmarc_p { DMARC_P_UNSET, DMARC_P_NONE, DMARC_P_QUARANTINE, DMARC_P_REJECT };

struct dmarc_record {            /* a parsed "v=DMARC1; ..." record */
    enum dmarc_p p, sp;          /* sp defaults to p */
    int  pct;                    /* 0..100, default 100 */
    char adkim, aspf;            /* 'r' (default) or 's' */
    char *rua, *ruf, *fo;        /* as published ("" if absent) */
    char *rf, *ri;               /* as published ("" if absent) */
    int  p_from_rua;             /* p (and sp) were missing or invalid: none
                                    by RFC 7489 6.6.3 step 6 */
};

/* 0, or -1 (not a valid DMARC1 record; *why says why and rec is cleared).
 * rec needs no initialisation; dmarc_record_clear it after a 0. */
int dmarc_record_parse(const char *txt, struct dmarc_record *rec, const char **why);
void dmarc_record_clear(struct dmarc_record *rec);

/* TXT lookup callback the caller provides (checkd uses lib/dns): fill
 * *txts (each TXT record's strings joined; a malloc()ed array of
 * malloc()ed strings that dmarc frees) and *n; return DMARC_DNS_OK,
 * DMARC_DNS_NONE (NXDOMAIN or no TXT), DMARC_DNS_TEMPFAIL.  name is
 * "_dmarc." and a lower-case domain without a trailing dot. */
enum dmarc_dns { DMARC_DNS_OK, DMARC_DNS_NONE, DMARC_DNS_TEMPFAIL };
typedef enum dmarc_dns (*dmarc_txt_fn)(void *ctx, const char *name, char ***txts, size_t *n);

struct dmarc_dkim_pass { const char *domain; };   /* d= of a DKIM signature that verified (pass) */

struct dmarc_input {
    const char *from_domain;          /* from dmarc_from_domain */
    const char *spf_domain;           /* the domain SPF checked: MAIL FROM's, or HELO's for <> */
    int         spf_pass;             /* SPF result was pass */
    const struct dmarc_dkim_pass *dkim;
    size_t      ndkim;
};

enum dmarc_result { DMARC_RES_NONE, DMARC_RES_PASS, DMARC_RES_FAIL, DMARC_RES_TEMPERROR, DMARC_RES_PERMERROR };

struct dmarc_outcome {
    enum dmarc_result result;
    enum dmarc_p      disposition;    /* the policy to apply: NONE, QUARANTINE or REJECT
                                         (NONE also for pass, none, temperror, permerror) */
    int               sampled_out;    /* pct made a failing message's policy not apply */
    int               dkim_aligned, spf_aligned;
    char             *policy_domain;  /* where the record was found (from domain or org
                                         domain); NULL if none */
    int               policy_is_sp;   /* the sp= of the org domain applied */
    struct dmarc_record record;       /* the record used (valid when policy_domain != NULL) */
    char             *comment;        /* short reason for logs */
};

/* Policy discovery and evaluation (see the header).  0 with *out filled;
 * -1 when in->from_domain is not a usable domain (*out is then filled
 * too: result none, the reason in comment).  dmarc_outcome_clear *out
 * after either. */
int dmarc_evaluate(const struct dmarc_input *in, dmarc_txt_fn lookup, void *ctx, struct dmarc_outcome *out);
void dmarc_outcome_clear(struct dmarc_outcome *out);

/* RFC 8601: "none" "pass" "fail" "temperror" "permerror" */
const char *dmarc_result_name(enum dmarc_result r);
/* "none" "quarantine" "reject" ("unset" for DMARC_P_UNSET) */
const char *dmarc_p_name(enum dmarc_p p);

#endif
