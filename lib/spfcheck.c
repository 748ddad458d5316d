/*
 * spfcheck - SPF checks through libspf2 with DNS from lib/dns (see
 * spfcheck.h).
 *
 * The DNS layer.  libspf2 asks its resolver (an SPF_dns_server_t) through
 * two hooks: lookup(domain, type, should_cache), which must return a fresh
 * SPF_dns_rr_t that libspf2 frees, and get_spf(), which when set replaces
 * SPF_server_get_record().  Ours sets get_spf only to know when a TXT
 * query is an SPF record fetch: it counts the fetch and calls
 * SPF_server_get_record() itself with the hook cleared for the moment.
 *
 * Every lookup is classified so that the RFC 7208 §4.6.4 limits are
 * counted once per evaluation, across include: (libspf2 counts its terms
 * per record, afresh in each include):
 *   record    TXT inside get_spf: the first is the check_host() record,
 *             each later one an include: or redirect= (a term);
 *   exp       TXT outside get_spf: an exp= explanation (not counted);
 *   term      MX; PTR of the ptr mechanism (should_cache true); A or
 *             AAAA of the a mechanism or A of exists:;
 *   sub       A or AAAA of the names an MX or PTR answer gave, asked in
 *             order right after it (libspf2's loops): not terms, but void
 *             answers count;
 *   pmacro    PTR for %{p} (should_cache false) and its address lookups:
 *             not counted.
 * A limit that is exceeded aborts the evaluation: that lookup and every
 * later one answers TRY_AGAIN, which ends libspf2's evaluation with
 * temperror, and evaluate() turns that temperror into the result the
 * abort calls for (permerror; temperror for the time limit).
 *
 * Failure modes: see spfcheck.h.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <spf2/spf.h>
#include <spf2/spf_dns.h>
#include <spf2/spf_dns_rr.h>
#include <spf2/spf_record.h>

#include "buf.h"
#include "dns.h"
#include "event.h"
#include "msg.h"
#include "netaddr.h"
#include "spfcheck.h"
#include "xalloc.h"

#define SPFCHECK_EXPLANATION_MAX 512
/* The longest explanation text (after the %_ rewriting) handed to libspf2:
 * SPF_record_compile_macro() compiles into a stack buffer of
 * SPF_MAX_MOD_LEN (511) bytes and writes a few bytes past it when the
 * compiled form comes near that size; the compiled form is at most about
 * 3.2 times the text ("a%{d}": 5 bytes, 16 compiled). */
#define SPFCHECK_EXP_TEXT_MAX    150

enum spfcheck_abort {
    ABORT_NONE,
    ABORT_TERMS,
    ABORT_VOIDS,
    ABORT_QUERIES,
    ABORT_TIME,
};

enum lookup_kind { K_RECORD, K_EXP, K_TERM, K_SUB, K_PMACRO };

/* What one evaluation has done so far. */
struct spfcheck_eval {
    long long           deadline;       /* event_now_ms() */
    int                 queries;
    int                 terms;
    int                 voids;
    int                 fetches;        /* SPF record fetches (get_spf) */
    int                 in_fetch;
    enum spfcheck_abort abort;
    char               *tempfail;       /* the last DNS failure: "NAME TYPE: why" */
    char               *sub[SPFCHECK_MAX_NAMES];  /* names an MX/PTR answer gave */
    int                 nsub, isub;
    int                 sub_pmacro;     /* they came from a %{p} PTR lookup */
};

struct spfcheck {
    dns_t             *dns;
    char              *receiver;
    long               time_limit_ms;
    SPF_server_t      *server;
    SPF_dns_server_t  *layer;           /* owned by server */
    spfcheck_lookup_fn lookup_fn;       /* test seam; NULL: dns_lookup() */
    void              *lookup_arg;
    struct spfcheck_eval ev;
};

const char *spfcheck_result_name(enum spfcheck_result r)
{
    switch (r) {
    case SPFCHECK_NONE:      return "none";
    case SPFCHECK_NEUTRAL:   return "neutral";
    case SPFCHECK_PASS:      return "pass";
    case SPFCHECK_FAIL:      return "fail";
    case SPFCHECK_SOFTFAIL:  return "softfail";
    case SPFCHECK_TEMPERROR: return "temperror";
    case SPFCHECK_PERMERROR: return "permerror";
    }
    return "permerror";
}

/* ---------------------------------------------------------------- logging */

/* libspf2's SPF_error() is an internal assertion: our class "panic". */
__attribute__((noreturn))
static void spf_log_error(const char *file, int line, const char *text)
{
    msg_panic("libspf2: %s:%d: %s", file ? file : "?", line, text ? text : "");
}

/* Its warnings are about records that the sender publishes: not ours to
 * log at every message. */
static void spf_log_debug(const char *file, int line, const char *text)
{
    (void)file, (void)line;
    if (msg_verbose)
        msg_debug("libspf2: %s", text ? text : "");
}

/* ---------------------------------------------------------------- DNS layer */

static void sub_clear(struct spfcheck_eval *ev)
{
    for (int i = 0; i < ev->nsub; i++)
        xfree(&ev->sub[i]);
    ev->nsub = ev->isub = 0;
    ev->sub_pmacro = 0;
}

static void eval_reset(struct spfcheck_eval *ev, long long deadline)
{
    sub_clear(ev);
    free(ev->tempfail);
    memset(ev, 0, sizeof(*ev));
    ev->deadline = deadline;
}

static SPF_dns_rr_t *rr_new(SPF_dns_server_t *layer, const char *domain, ns_type type,
                            int ttl, SPF_dns_stat_t herrno)
{
    SPF_dns_rr_t *rr = SPF_dns_rr_new_init(layer, domain, type, ttl, herrno);

    if (rr == NULL)
        msg_fatal("spfcheck: out of memory");
    return rr;
}

static void rr_put(SPF_dns_rr_t *rr, size_t len)
{
    if (SPF_dns_rr_buf_realloc(rr, rr->num_rr, len) != SPF_E_SUCCESS)
        msg_fatal("spfcheck: out of memory");
}

static void rr_put_str(SPF_dns_rr_t *rr, const char *s)
{
    size_t len = strlen(s) + 1;

    rr_put(rr, len);
    memcpy((char *)rr->rr[rr->num_rr], s, len);     /* the buffer was sized for s */
    rr->num_rr++;
}

static int dns_type_of(ns_type type, enum dns_type *out)
{
    switch (type) {
    case ns_t_a:    *out = DNS_T_A; return 0;
    case ns_t_aaaa: *out = DNS_T_AAAA; return 0;
    case ns_t_mx:   *out = DNS_T_MX; return 0;
    case ns_t_txt:  *out = DNS_T_TXT; return 0;
    case ns_t_ptr:  *out = DNS_T_PTR; return 0;
    default:        return -1;
    }
}

static enum lookup_kind classify(struct spfcheck_eval *ev, const char *domain, ns_type type,
                                 int should_cache)
{
    if ((type == ns_t_a || type == ns_t_aaaa) && ev->isub < ev->nsub
        && strcasecmp(domain, ev->sub[ev->isub]) == 0) {
        ev->isub++;
        return ev->sub_pmacro ? K_PMACRO : K_SUB;
    }
    sub_clear(ev);
    switch (type) {
    case ns_t_txt:
        return ev->in_fetch ? K_RECORD : K_EXP;
    case ns_t_ptr:
        return should_cache ? K_TERM : K_PMACRO;
    default:
        return K_TERM;
    }
}

/* Remember the names an MX or PTR answer gave: the address lookups that
 * follow for them are part of the same term. */
static void sub_set(struct spfcheck_eval *ev, const dns_result_t *res, int pmacro)
{
    for (size_t i = 0; i < res->nrr && ev->nsub < SPFCHECK_MAX_NAMES; i++)
        ev->sub[ev->nsub++] = xstrdup(res->type == DNS_T_MX ? res->rr[i].u.mx.host
                                                            : res->rr[i].u.name);
    ev->sub_pmacro = pmacro;
}

/* Fill rr from an answer with records. */
static void rr_fill(SPF_dns_rr_t *rr, const dns_result_t *res, enum lookup_kind kind)
{
    size_t n = res->nrr;

    /* RFC 7208 §5.5: PTR names past the tenth are ignored. */
    if (res->type == DNS_T_PTR && n > SPFCHECK_MAX_NAMES)
        n = SPFCHECK_MAX_NAMES;
    for (size_t i = 0; i < n; i++) {
        const struct dns_rr *r = &res->rr[i];

        switch (res->type) {
        case DNS_T_A:
            rr_put(rr, sizeof(struct in_addr));
            memcpy(&rr->rr[rr->num_rr]->a, r->u.addr.bytes, 4);
            rr->num_rr++;
            break;
        case DNS_T_AAAA:
            rr_put(rr, sizeof(struct in6_addr));
            memcpy(&rr->rr[rr->num_rr]->aaaa, r->u.addr.bytes, 16);
            rr->num_rr++;
            break;
        case DNS_T_MX:
            rr_put_str(rr, r->u.mx.host);
            break;
        case DNS_T_PTR:
            rr_put_str(rr, r->u.name);
            break;
        case DNS_T_TXT:
            if (kind == K_EXP) {
                /* libspf2's macro compiler takes a space for the end of
                 * the string (and garbles the rest); an explanation is
                 * words and macros (§6.2), so hand it its spaces as the
                 * macro %_, which expands to a space (§7.1).  A longer
                 * text than SPFCHECK_EXP_TEXT_MAX overflows the
                 * compiler's stack buffer (found by t/fuzz/spfcheck): it
                 * is not handed over at all. */
                buf_t *b = buf_new(0);

                for (const char *p = r->u.txt.joined; *p; p++)
                    if (*p == ' ')
                        buf_append_str(b, "%_");
                    else
                        buf_putc(b, *p);
                if (b->len <= SPFCHECK_EXP_TEXT_MAX)
                    rr_put_str(rr, buf_cstr(b));
                else
                    rr->herrno = NO_DATA;
                buf_free(&b);
            } else {
                rr_put_str(rr, r->u.txt.joined);
            }
            break;
        default:
            break;
        }
    }
}

static SPF_dns_rr_t *layer_lookup(SPF_dns_server_t *layer, const char *domain,
                                  ns_type type, int should_cache)
{
    spfcheck_t *s = layer->hook;
    struct spfcheck_eval *ev = &s->ev;
    enum lookup_kind kind;
    enum dns_type dtype;
    dns_result_t *res;
    SPF_dns_rr_t *rr;
    int is_void = 0;

    if (domain == NULL)
        domain = "";
    /* The SPF RR type is obsolete (RFC 7208 §3.1); nobody serves it. */
    if (type == (ns_type)ns_t_spf)
        return rr_new(layer, domain, type, 0, NO_DATA);
    if (dns_type_of(type, &dtype) < 0)
        return rr_new(layer, domain, type, 0, HOST_NOT_FOUND);
    kind = classify(ev, domain, type, should_cache);
    if (ev->abort != ABORT_NONE)
        return rr_new(layer, domain, type, 0, TRY_AGAIN);
    if ((kind == K_TERM || (kind == K_RECORD && ev->fetches > 1))
        && ++ev->terms > SPFCHECK_MAX_TERMS) {
        ev->abort = ABORT_TERMS;
        return rr_new(layer, domain, type, 0, TRY_AGAIN);
    }
    if (event_now_ms() >= ev->deadline) {
        ev->abort = ABORT_TIME;
        return rr_new(layer, domain, type, 0, TRY_AGAIN);
    }
    if (++ev->queries > SPFCHECK_MAX_QUERIES) {
        ev->abort = ABORT_QUERIES;
        return rr_new(layer, domain, type, 0, TRY_AGAIN);
    }
    /* The root has no addresses; a null MX ("0 .") lands here. */
    if (strcmp(domain, ".") == 0)
        return rr_new(layer, domain, type, 0, NO_DATA);

    res = s->lookup_fn ? s->lookup_fn(s->lookup_arg, domain, dtype)
                       : dns_lookup(s->dns, domain, dtype);
    switch (res->status) {
    case DNS_OK:
        if (kind == K_EXP && res->nrr != 1) {
            /* RFC 7208 §6.2: not exactly one record, no explanation. */
            rr = rr_new(layer, domain, type, (int)res->ttl, NO_DATA);
            break;
        }
        rr = rr_new(layer, domain, type, (int)res->ttl, NETDB_SUCCESS);
        rr_fill(rr, res, kind);
        if (dtype == DNS_T_MX || dtype == DNS_T_PTR)
            sub_set(ev, res, kind == K_PMACRO);
        break;
    case DNS_NODATA:
        rr = rr_new(layer, domain, type, (int)res->ttl, NO_DATA);
        is_void = 1;
        break;
    case DNS_NXDOMAIN:
    case DNS_INVALID:
        rr = rr_new(layer, domain, type, (int)res->ttl, HOST_NOT_FOUND);
        is_void = 1;
        break;
    case DNS_TEMPFAIL:
    case DNS_BOGUS:
    default:
        free(ev->tempfail);
        ev->tempfail = xasprintf("%s %s: %s", res->qname, dns_type_str(dtype),
                                 res->why ? res->why : dns_status_str(res->status));
        rr = rr_new(layer, domain, type, 0, TRY_AGAIN);
        break;
    }
    dns_result_free(&res);
    if (is_void && (kind == K_TERM || kind == K_SUB) && ++ev->voids > SPFCHECK_MAX_VOIDS) {
        ev->abort = ABORT_VOIDS;
        SPF_dns_rr_free(rr);
        return rr_new(layer, domain, type, 0, TRY_AGAIN);
    }
    return rr;
}

/* An SPF record fetch: count it, and let libspf2 do the rest. */
static SPF_errcode_t layer_get_spf(SPF_server_t *server, SPF_request_t *req,
                                   SPF_response_t *resp, SPF_record_t **recp)
{
    SPF_dns_server_t *layer = server->resolver;
    spfcheck_t *s = layer->hook;
    SPF_errcode_t err;

    s->ev.fetches++;
    s->ev.in_fetch = 1;
    layer->get_spf = NULL;
    err = SPF_server_get_record(server, req, resp, recp);
    layer->get_spf = layer_get_spf;
    s->ev.in_fetch = 0;
    return err;
}

/* ---------------------------------------------------------------- set-up */

spfcheck_t *spfcheck_new(dns_t *dns, const char *receiver, const char **error_r)
{
    spfcheck_t *s;
    SPF_response_t *resp = NULL;

    if (dns == NULL || receiver == NULL || *receiver == '\0') {
        if (error_r)
            *error_r = "spfcheck_new: a resolver and a receiver name are needed";
        return NULL;
    }
    SPF_error_handler = spf_log_error;
    SPF_warning_handler = spf_log_debug;
    SPF_info_handler = spf_log_debug;
    SPF_debug_handler = spf_log_debug;

    s = xcalloc(1, sizeof(*s));
    s->dns = dns;
    s->receiver = xstrdup(receiver);
    s->time_limit_ms = SPFCHECK_TIME_LIMIT_MS;
    s->layer = xcalloc(1, sizeof(*s->layer));
    /* No destroy: libspf2 1.2.10's SPF_server_free() does not free a
     * resolver given to SPF_server_new_dns(); spfcheck_free() does. */
    s->layer->lookup = layer_lookup;
    s->layer->get_spf = layer_get_spf;
    s->layer->name = "posthorn";
    s->layer->hook = s;
    if ((s->server = SPF_server_new_dns(s->layer, 0)) == NULL)
        msg_fatal("spfcheck: out of memory");
    /* No default explanation: only a record's exp= makes one. */
    if (SPF_server_set_rec_dom(s->server, receiver) != SPF_E_SUCCESS
        || SPF_server_set_explanation(s->server, "", &resp) != SPF_E_SUCCESS
        || SPF_server_set_max_dns_mech(s->server, SPFCHECK_MAX_TERMS) != SPF_E_SUCCESS
        || SPF_server_set_max_dns_mx(s->server, SPFCHECK_MAX_NAMES) != SPF_E_SUCCESS
        || SPF_server_set_max_dns_ptr(s->server, SPFCHECK_MAX_NAMES) != SPF_E_SUCCESS)
        msg_panic("spfcheck_new: libspf2 refused its settings");
    if (resp)
        SPF_response_free(resp);
    return s;
}

void spfcheck_set_time_limit(spfcheck_t *s, long ms)
{
    if (ms <= 0)
        msg_panic("spfcheck_set_time_limit: %ld", ms);
    s->time_limit_ms = ms;
}

void spfcheck_set_lookup(spfcheck_t *s, spfcheck_lookup_fn fn, void *arg)
{
    s->lookup_fn = fn;
    s->lookup_arg = arg;
}

void spfcheck_free(spfcheck_t **sp)
{
    spfcheck_t *s = *sp;

    if (s == NULL)
        return;
    SPF_server_free(s->server);
    free(s->layer);
    eval_reset(&s->ev, 0);
    free(s->receiver);
    free(s);
    *sp = NULL;
}

void spfcheck_outcome_clear(struct spfcheck_outcome *out)
{
    xfree(&out->domain);
    xfree(&out->comment);
    xfree(&out->received_spf);
    xfree(&out->explanation);
    out->result = SPFCHECK_NONE;
}

/* ---------------------------------------------------------------- text */

/* Copy s to b; control characters become '?', and the characters in esc
 * get a backslash (a quoted-pair). */
static void put_clean(buf_t *b, const char *s, const char *esc)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            buf_putc(b, '?');
            continue;
        }
        if (strchr(esc, *p))
            buf_putc(b, '\\');
        buf_putc(b, *p);
    }
}

static char *clean_copy(const char *s, size_t max)
{
    buf_t *b = buf_new(0);
    char *out;

    for (const unsigned char *p = (const unsigned char *)s; *p && b->len < max; p++)
        buf_putc(b, *p >= 0x20 && *p < 0x7f ? *p : '?');
    out = buf_steal(b, NULL);
    buf_free(&b);
    return out;
}

static int is_atext(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
           || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static int is_dot_atom(const char *s)
{
    if (*s == '\0' || *s == '.')
        return 0;
    for (; *s; s++)
        if (!(is_atext((unsigned char)*s) || (*s == '.' && s[1] != '.' && s[1] != '\0')))
            return 0;
    return 1;
}

/* " key=value;" with value a dot-atom or a quoted-string. */
static void put_kv(buf_t *b, const char *key, const char *value)
{
    buf_printf(b, " %s=", key);
    if (is_dot_atom(value)) {
        buf_append_str(b, value);
    } else {
        buf_putc(b, '"');
        put_clean(b, value, "\"\\");
        buf_putc(b, '"');
    }
    buf_putc(b, ';');
}

/* ---------------------------------------------------------------- evaluation */

struct spfcheck_args {
    int         helo_identity;
    const char *ip;             /* canonical text form */
    const char *helo;
    const char *sender;         /* the full identity: local@domain */
    const char *domain;
};

static enum spfcheck_result map_result(SPF_result_t r)
{
    switch (r) {
    case SPF_RESULT_NEUTRAL:   return SPFCHECK_NEUTRAL;
    case SPF_RESULT_PASS:      return SPFCHECK_PASS;
    case SPF_RESULT_FAIL:      return SPFCHECK_FAIL;
    case SPF_RESULT_SOFTFAIL:  return SPFCHECK_SOFTFAIL;
    case SPF_RESULT_NONE:      return SPFCHECK_NONE;
    case SPF_RESULT_TEMPERROR: return SPFCHECK_TEMPERROR;
    case SPF_RESULT_PERMERROR:
    case SPF_RESULT_INVALID:
    default:                   return SPFCHECK_PERMERROR;
    }
}

/* The last error libspf2 recorded in resp (not a warning), or NULL. */
static const char *last_error(SPF_response_t *resp, SPF_errcode_t skip)
{
    const char *text = NULL;

    for (int i = 0; i < SPF_response_messages(resp); i++) {
        SPF_error_t *e = SPF_response_message(resp, i);

        if (e && SPF_error_errorp(e) && SPF_error_code(e) != skip && SPF_error_message(e))
            text = SPF_error_message(e);
    }
    return text;
}

static const char *abort_text(enum spfcheck_abort a)
{
    switch (a) {
    case ABORT_TERMS:   return "more than 10 DNS-querying terms (RFC 7208 section 4.6.4)";
    case ABORT_VOIDS:   return "more than 2 void DNS lookups (RFC 7208 section 4.6.4)";
    case ABORT_QUERIES: return "more than 150 DNS queries";
    case ABORT_TIME:    return "time limit exceeded";
    default:            return "";
    }
}

static void fill_text(spfcheck_t *s, const struct spfcheck_args *a, const char *problem,
                      struct spfcheck_outcome *out)
{
    buf_t *c = buf_new(0), *r = buf_new(0);
    const char *who = a->helo_identity ? a->helo : a->sender;

    switch (out->result) {
    case SPFCHECK_PASS:
        buf_printf(c, "domain of %s designates %s as permitted sender", who, a->ip);
        break;
    case SPFCHECK_FAIL:
        buf_printf(c, "domain of %s does not designate %s as permitted sender", who, a->ip);
        if (out->explanation)
            buf_printf(c, "; explanation: %s", out->explanation);
        break;
    case SPFCHECK_SOFTFAIL:
        buf_printf(c, "domain of transitioning %s does not designate %s as permitted sender",
                   who, a->ip);
        break;
    case SPFCHECK_NEUTRAL:
        buf_printf(c, "%s is neither permitted nor denied by domain of %s", a->ip, who);
        break;
    case SPFCHECK_NONE:
        if (problem)
            buf_printf(c, "%s: %s", who, problem);
        else
            buf_printf(c, "domain of %s does not provide an SPF record", who);
        break;
    case SPFCHECK_TEMPERROR:
        buf_printf(c, "temporary error checking the SPF record of %s: %s", a->domain,
                   problem ? problem : "DNS failure");
        break;
    case SPFCHECK_PERMERROR:
        buf_printf(c, "permanent error in the SPF record of %s: %s", a->domain,
                   problem ? problem : "error");
        break;
    }
    out->comment = clean_copy(buf_cstr(c), 2048);

    buf_printf(r, "%s (", spfcheck_result_name(out->result));
    put_clean(r, s->receiver, "()\\");
    buf_append_str(r, ": ");
    put_clean(r, out->comment, "()\\");
    buf_putc(r, ')');
    put_kv(r, "client-ip", a->ip);
    if (!a->helo_identity)
        put_kv(r, "envelope-from", a->sender);
    if (*a->helo)
        put_kv(r, "helo", a->helo);
    put_kv(r, "receiver", s->receiver);
    put_kv(r, "identity", a->helo_identity ? "helo" : "mailfrom");
    if ((out->result == SPFCHECK_PERMERROR || out->result == SPFCHECK_TEMPERROR) && problem)
        put_kv(r, "problem", problem);
    out->received_spf = buf_steal(r, NULL);
    buf_free(&c);
    buf_free(&r);
}

/* Is d a domain that check_host() can take (RFC 7208 §4.3): a valid name
 * of at least two labels? */
static int domain_ok(const char *d)
{
    const char *dot = strchr(d, '.'), *last;
    size_t n = strlen(d);

    if (n > 0 && d[n - 1] == '.')
        n--;                        /* an absolute name */
    if (n == 0 || !dns_name_valid(d) || dot == NULL || dot == d || (size_t)(dot - d) >= n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)d[i]) || d[i] == '-' || d[i] == '_' || d[i] == '.'))
            return 0;
    /* The top label is not all digits (RFC 7208 §7.1 toplabel). */
    for (last = d + n; last > d && last[-1] != '.'; last--)
        ;
    for (const char *p = last; p < d + n; p++)
        if (!isdigit((unsigned char)*p))
            return 1;
    return 0;
}

/* Set the request's client address; 0 or -1. */
static int set_ip(SPF_request_t *req, const struct netaddr *na)
{
    if (na->family == AF_INET) {
        struct in_addr a;

        memcpy(&a, na->bytes, 4);
        return SPF_request_set_ipv4(req, a) == SPF_E_SUCCESS ? 0 : -1;
    } else {
        struct in6_addr a;

        memcpy(&a, na->bytes, 16);
        return SPF_request_set_ipv6(req, a) == SPF_E_SUCCESS ? 0 : -1;
    }
}

/* check_host() through libspf2, with the top-level steps of
 * SPF_request_query_mailfrom() minus its loopback free pass. */
static void run_libspf2(spfcheck_t *s, const struct spfcheck_args *a, const struct netaddr *na,
                        struct spfcheck_outcome *out, char **problem)
{
    SPF_request_t *req = SPF_request_new(s->server);
    SPF_response_t *resp;
    SPF_record_t *rec = NULL;
    SPF_errcode_t err;
    const char *text;

    if (req == NULL || set_ip(req, na) < 0)
        msg_fatal("spfcheck: out of memory");
    if (*a->helo && SPF_request_set_helo_dom(req, a->helo) != SPF_E_SUCCESS)
        msg_fatal("spfcheck: out of memory");
    if (SPF_request_set_env_from(req, a->sender) != 0)
        msg_fatal("spfcheck: out of memory");
    req->use_helo = a->helo_identity;
    req->cur_dom = a->helo_identity ? req->helo_dom : req->env_from_dp;
    if ((resp = SPF_response_new(req)) == NULL)
        msg_fatal("spfcheck: out of memory");

    eval_reset(&s->ev, event_now_ms() + s->time_limit_ms);
    err = SPF_server_get_record(s->server, req, resp, &rec);
    if (err == SPF_E_SUCCESS) {
        resp->spf_record_exp = rec;
        SPF_record_interpret(rec, req, resp, 0);
        SPF_record_free(rec);
        resp->spf_record_exp = NULL;
        out->result = map_result(SPF_response_result(resp));
        if (out->result == SPFCHECK_FAIL && (text = SPF_response_get_explanation(resp)) != NULL
            && *text != '\0')
            out->explanation = clean_copy(text, SPFCHECK_EXPLANATION_MAX);
        if (out->result == SPFCHECK_PERMERROR) {
            text = last_error(resp, SPF_E_SUCCESS);
            *problem = xstrdup(text ? text : SPF_strerror(SPF_response_errcode(resp)));
        }
    } else {
        if (rec)
            SPF_record_free(rec);
        if (err == SPF_E_DNS_ERROR) {
            out->result = SPFCHECK_TEMPERROR;
        } else if (err == SPF_E_MULTIPLE_RECORDS) {
            out->result = SPFCHECK_PERMERROR;
            *problem = xstrdup("more than one SPF record");
        } else if (err == SPF_E_NOT_SPF && (text = last_error(resp, SPF_E_NOT_SPF)) == NULL) {
            out->result = SPFCHECK_NONE;        /* no record at all */
        } else {
            /* The record did not compile: libspf2 said why before it
             * said SPF_E_NOT_SPF. */
            out->result = SPFCHECK_PERMERROR;
            text = last_error(resp, SPF_E_NOT_SPF);
            *problem = xstrdup(text ? text : SPF_strerror(err));
        }
    }
    if (out->result == SPFCHECK_TEMPERROR) {
        if (s->ev.abort != ABORT_NONE) {
            out->result = s->ev.abort == ABORT_TIME ? SPFCHECK_TEMPERROR : SPFCHECK_PERMERROR;
            free(*problem);
            *problem = xstrdup(abort_text(s->ev.abort));
        } else if (*problem == NULL) {
            *problem = xstrdup(s->ev.tempfail ? s->ev.tempfail : "DNS lookup failure");
        }
    }
    SPF_response_free(resp);
    SPF_request_free(req);
    eval_reset(&s->ev, 0);
}

static int evaluate(spfcheck_t *s, int helo_identity, const char *client_ip, const char *helo,
                    const char *sender, struct spfcheck_outcome *out)
{
    struct spfcheck_args a = {.helo_identity = helo_identity, .helo = helo};
    char ipbuf[INET6_ADDRSTRLEN], *problem = NULL, *full = NULL;
    struct netaddr na;
    const char *at;

    memset(out, 0, sizeof(*out));
    if (s == NULL || client_ip == NULL || helo == NULL || (!helo_identity && sender == NULL)
        || netaddr_parse(client_ip, &na) < 0) {
        out->result = SPFCHECK_PERMERROR;
        out->comment = xstrdup(client_ip == NULL || s == NULL || helo == NULL || !sender
                               ? "spfcheck: missing argument"
                               : "spfcheck: the client address is not an IP address");
        return -1;
    }
    inet_ntop(na.family, na.bytes, ipbuf, sizeof(ipbuf));
    a.ip = ipbuf;

    /* The identity: local@domain, postmaster@domain without a local part. */
    if (helo_identity || *sender == '\0') {
        a.domain = helo;
        full = xasprintf("postmaster@%s", helo);
    } else if ((at = strrchr(sender, '@')) != NULL) {
        a.domain = at + 1;
        full = at == sender ? xasprintf("postmaster%s", sender) : xstrdup(sender);
    } else {
        a.domain = sender;
        full = xasprintf("postmaster@%s", sender);
    }
    a.sender = full;
    out->domain = xstrdup(a.domain);

    if (!domain_ok(a.domain)) {
        out->result = SPFCHECK_NONE;
        problem = xstrdup("not a valid domain name, no SPF check");
    } else {
        run_libspf2(s, &a, &na, out, &problem);
    }
    fill_text(s, &a, problem, out);
    free(problem);
    free(full);
    return 0;
}

int spfcheck_helo(spfcheck_t *s, const char *client_ip, const char *helo,
                  struct spfcheck_outcome *out)
{
    return evaluate(s, 1, client_ip, helo, "", out);
}

int spfcheck_mailfrom(spfcheck_t *s, const char *client_ip, const char *helo,
                      const char *sender, struct spfcheck_outcome *out)
{
    return evaluate(s, 0, client_ip, helo, sender, out);
}
