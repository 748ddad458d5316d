/*
 * dns - DNS lookups through libunbound, in the event loop (see dns.h).
 *
 * libunbound runs its resolver in a thread of ours (ub_ctx_async(ctx, 1)
 * before anything else, so it never forks) and hands answers back through
 * a pipe whose read end (ub_fd) sits in the event loop; ub_process() reads
 * every answer that is there and calls ub_answer() for each, which turns
 * the ub_result into a dns_result_t with the pure RDATA parsers of
 * dns_rdata.c.
 *
 * Each outstanding query is a struct dns_query on the context's list,
 * holding libunbound's id and one timer: the deadline, or a zero delay
 * that delivers a result known before asking (an invalid name, a
 * libunbound error), so that callbacks never run inside dns_query().
 * ub_cancel() in thread mode only marks the query: an answer already on
 * its way is dropped by ub_process() without calling us, which is what
 * makes dns_cancel() and the deadline safe at any time.  During a callback
 * the query is "delivering": a dns_cancel() of it then does nothing, and
 * it is freed when the callback returns.  ub_ctx_delete() stops the
 * thread and drops what is outstanding without callbacks.
 *
 * The resolver thread is started by the first query with every signal
 * blocked, so that it inherits a full mask: signals stay with the thread
 * that reads them (the event loop's signalfd).
 *
 * The configuration is finalized in dns_new() (libunbound otherwise does
 * it at the first query, after the chroot) by ub_ctx_zone_remove() of a
 * zone that does not exist: one of the few public calls that finalize.
 *
 * Failure modes: see dns.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unbound.h>

#include "dns.h"
#include "dnscache.h"
#include "msg.h"
#include "xalloc.h"

#define DNS_TA_FILE_MAX  (1 << 20)  /* a trust anchor file larger than this is wrong */
#define DNS_RCODE_NOERROR   0
#define DNS_RCODE_SERVFAIL  2
#define DNS_RCODE_NXDOMAIN  3
#define DNS_RCODE_REFUSED   5

struct dns_query {
    dns_t          *dns;
    enum dns_type   type;
    char           *name;
    int             ubid;       /* libunbound's id while it has the query; else 0 */
    dns_cb          cb;
    void           *arg;
    event_timer_t  *timer;      /* the deadline, or the delivery of early */
    dns_result_t   *early;      /* a result known before asking */
    int             delivering; /* the callback runs */
    TAILQ_ENTRY(dns_query) link;
};

struct dns {
    struct ub_ctx  *ctx;
    event_loop_t   *loop;       /* NULL until dns_attach() */
    int             fd;         /* ub_fd() */
    long            timeout_ms;
    int             validating;
    int             started;    /* libunbound's thread exists */
    int             depth;      /* > 0 while callbacks may run */
    dnscache_t     *cache;      /* dns_cache_lookups(), or NULL */
    TAILQ_HEAD(, dns_query) queries;
};

static char dns_errbuf[1024];

__attribute__((format(printf, 2, 3)))
static const char *dns_seterr(const char **error_r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(dns_errbuf, sizeof(dns_errbuf), fmt, ap);
    va_end(ap);
    if (error_r)
        *error_r = dns_errbuf;
    return dns_errbuf;
}

/* ---------------------------------------------------------------- results */

/* A copy of name without its trailing dot (the root stays "."). */
static char *name_nodot(const char *name)
{
    size_t n = strlen(name);

    if (n > 1 && name[n - 1] == '.')
        n--;
    return xstrndup(name, n);
}

static dns_result_t *result_new(const char *qname, enum dns_type type)
{
    dns_result_t *res = xcalloc(1, sizeof(*res));

    res->type = type;
    res->qname = name_nodot(qname);
    res->canonname = xstrdup(res->qname);
    return res;
}

static dns_result_t *result_fail(const char *qname, enum dns_type type,
                                 enum dns_status status, const char *why)
{
    dns_result_t *res = result_new(qname, type);

    res->status = status;
    res->why = xstrdup(why);
    return res;
}

void dns_result_free(dns_result_t **resp)
{
    dns_result_t *res = *resp;

    if (res == NULL)
        return;
    for (size_t i = 0; i < res->nrr; i++)
        dns_rr_clear(res->type, &res->rr[i]);
    free(res->rr);
    free(res->qname);
    free(res->canonname);
    free(res->why);
    free(res);
    *resp = NULL;
}

static int mx_cmp(const void *a, const void *b)
{
    const struct dns_rr *x = a, *y = b;

    if (x->u.mx.pref != y->u.mx.pref)
        return x->u.mx.pref < y->u.mx.pref ? -1 : 1;
    return strcmp(x->u.mx.host, y->u.mx.host);
}

/* Turn libunbound's answer (or error) into our result. */
static dns_result_t *result_from_ub(const char *qname, enum dns_type type, int err,
                                    const struct ub_result *ur)
{
    dns_result_t *res;
    const char *why;
    size_t n = 0;

    if (err != 0 || ur == NULL)
        return result_fail(qname, type, DNS_TEMPFAIL, ub_strerror(err));
    res = result_new(qname, type);
    res->secure = ur->secure;
    res->bogus = ur->bogus;
    res->ttl = ur->ttl > 0 ? (unsigned)ur->ttl : 0;
    if (ur->canonname != NULL) {
        free(res->canonname);
        res->canonname = name_nodot(ur->canonname);
    }
    if (ur->bogus) {
        /* A bogus answer may still carry rcode 0 and data: never use it. */
        res->status = DNS_BOGUS;
        res->why = xstrdup(ur->why_bogus ? ur->why_bogus : "DNSSEC validation failed");
        return res;
    }
    if (ur->havedata) {
        while (ur->data[n] != NULL)
            n++;
        res->rr = xcalloc(n, sizeof(*res->rr));
        for (size_t i = 0; i < n; i++) {
            if (ur->len[i] < 0
                || dns_parse_rdata(type, (const unsigned char *)ur->data[i], (size_t)ur->len[i],
                                   &res->rr[res->nrr], &why) < 0) {
                if (ur->len[i] < 0)
                    why = "negative length";
                res->status = DNS_TEMPFAIL;
                res->why = xasprintf("malformed %s record for %s: %s", dns_type_str(type),
                                     res->qname, why);
                for (size_t j = 0; j < res->nrr; j++)
                    dns_rr_clear(type, &res->rr[j]);
                xfree(&res->rr);
                res->nrr = 0;
                return res;
            }
            res->nrr++;
        }
        if (type == DNS_T_MX)
            qsort(res->rr, res->nrr, sizeof(*res->rr), mx_cmp);
        res->status = DNS_OK;
    } else if (ur->nxdomain || ur->rcode == DNS_RCODE_NXDOMAIN) {
        res->status = DNS_NXDOMAIN;
    } else if (ur->rcode == DNS_RCODE_NOERROR) {
        res->status = DNS_NODATA;
    } else {
        res->status = DNS_TEMPFAIL;
        if (ur->rcode == DNS_RCODE_SERVFAIL)
            res->why = xstrdup("server failure (SERVFAIL)");
        else if (ur->rcode == DNS_RCODE_REFUSED)
            res->why = xstrdup("query refused (REFUSED)");
        else
            res->why = xasprintf("DNS error (rcode %d)", ur->rcode);
    }
    return res;
}

/* ---------------------------------------------------------------- set-up */

static int add_anchor(struct ub_ctx *ctx, const char *path, int line, char *rr,
                      const char **error_r)
{
    char *copy = xstrdup(rr), *tok, *save = NULL;
    int i = 0, found = 0, r;

    for (tok = strtok_r(copy, " \t", &save); tok && i < 4 && !found;
         tok = strtok_r(NULL, " \t", &save), i++)
        if (i > 0 && (strcasecmp(tok, "DS") == 0 || strcasecmp(tok, "DNSKEY") == 0))
            found = 1;
    free(copy);
    if (!found) {
        dns_seterr(error_r, "%s:%d: not a DS or DNSKEY record", path, line);
        return -1;
    }
    if ((r = ub_ctx_add_ta(ctx, rr)) != 0) {
        dns_seterr(error_r, "%s:%d: %s", path, line, ub_strerror(r));
        return -1;
    }
    return 0;
}

/* Read the trust anchor file: one RR per line or parenthesized group, ';'
 * comments.  Returns the number of anchors, 0 if the file does not exist,
 * -1 on error. */
static int load_anchors(struct ub_ctx *ctx, const char *path, const char **error_r)
{
    FILE *fp = fopen(path, "re");
    struct stat st;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    buf_t *rr = buf_new(0);
    int lineno = 0, start = 0, depth = 0, count = 0, ret = -1;

    if (fp == NULL) {
        buf_free(&rr);
        if (errno == ENOENT)
            return 0;
        dns_seterr(error_r, "cannot open trust anchor file %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(fp), &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > DNS_TA_FILE_MAX) {
        dns_seterr(error_r, "trust anchor file %s: not a regular file of at most %d bytes",
                   path, DNS_TA_FILE_MAX);
        goto out;
    }
    while ((n = getline(&line, &cap, fp)) >= 0) {
        char *p, *semi;

        lineno++;
        if ((semi = strchr(line, ';')) != NULL)
            *semi = '\0';
        for (p = line; *p; p++) {
            if (*p == '(' || *p == ')') {
                depth += *p == '(' ? 1 : -1;
                *p = ' ';
            } else if (*p == '\r' || *p == '\n') {
                *p = ' ';
            }
        }
        if (depth < 0) {
            dns_seterr(error_r, "%s:%d: unbalanced parentheses", path, lineno);
            goto out;
        }
        p = line + strspn(line, " \t");
        if (*p == '$') {
            dns_seterr(error_r, "%s:%d: $ directives are not supported", path, lineno);
            goto out;
        }
        if (*p != '\0') {
            if (rr->len == 0)
                start = lineno;
            buf_append_str(rr, p);
            buf_putc(rr, ' ');
        }
        if (depth == 0 && rr->len > 0) {
            if (add_anchor(ctx, path, start, rr->data, error_r) < 0)
                goto out;
            count++;
            buf_reset(rr);
        }
    }
    if (ferror(fp)) {
        dns_seterr(error_r, "cannot read trust anchor file %s: %s", path, strerror(errno));
        goto out;
    }
    if (depth != 0) {
        dns_seterr(error_r, "%s:%d: unbalanced parentheses", path, start);
        goto out;
    }
    if (count == 0) {
        dns_seterr(error_r, "trust anchor file %s holds no DS or DNSKEY record", path);
        goto out;
    }
    ret = count;
out:
    free(line);
    buf_free(&rr);
    fclose(fp);
    return ret;
}

/* Is s an IP address, optionally followed by @port (what libunbound takes
 * for a server; it would accept a port over 65535 and wrap it)? */
static int server_addr_valid(const char *s)
{
    const char *at = strchr(s, '@');
    char host[INET6_ADDRSTRLEN + 1];
    unsigned char b[16];
    size_t n = at ? (size_t)(at - s) : strlen(s);

    if (n == 0 || n >= sizeof(host))
        return 0;
    memcpy(host, s, n);
    host[n] = '\0';
    if (inet_pton(AF_INET, host, b) != 1 && inet_pton(AF_INET6, host, b) != 1)
        return 0;
    if (at) {
        char *end;
        unsigned long port;

        if (at[1] < '0' || at[1] > '9')
            return 0;
        errno = 0;
        port = strtoul(at + 1, &end, 10);
        if (*end != '\0' || errno != 0 || port == 0 || port > 65535)
            return 0;
    }
    return 1;
}

/* Split a list on commas and white space into a NULL-terminated array. */
static char **split_list(const char *s)
{
    size_t n = 0;
    char **v = xcalloc(1, sizeof(*v));

    while (s && *s) {
        size_t len;

        s += strspn(s, ", \t\r\n");
        len = strcspn(s, ", \t\r\n");
        if (len == 0)
            break;
        v = xreallocarray(v, n + 2, sizeof(*v));
        v[n++] = xstrndup(s, len);
        v[n] = NULL;
        s += len;
    }
    return v;
}

static void split_free(char ***vp)
{
    for (char **p = *vp; *p; p++)
        free(*p);
    xfree(vp);
}

static int set_upstreams(struct ub_ctx *ctx, const struct dns_settings *s, const char **error_r)
{
    char **list = split_list(s->forwarders);
    int r, ret = -1;

    if (list[0] == NULL) {
        if ((r = ub_ctx_resolvconf(ctx, NULL)) == UB_READFILE) {
            msg_warn("dns: cannot read /etc/resolv.conf (%m): using 127.0.0.1");
            r = ub_ctx_set_fwd(ctx, "127.0.0.1");
        }
        if (r != 0) {
            dns_seterr(error_r, "/etc/resolv.conf: %s", ub_strerror(r));
            goto out;
        }
    }
    for (char **p = list; *p; p++)
        if (!server_addr_valid(*p) || ub_ctx_set_fwd(ctx, *p) != 0) {
            dns_seterr(error_r, "dns_forwarders: bad address '%s' "
                       "(expected an IP address, optionally followed by @port)", *p);
            goto out;
        }
    /* Every query goes to the forwarders, which know the site's own
     * reverse zones (10.x, 192.168.x, ...): libunbound would otherwise
     * answer those itself, and LAN clients would get no name. */
    if (ub_ctx_set_option(ctx, "unblock-lan-zones:", "yes") != 0
        || ub_ctx_set_option(ctx, "insecure-lan-zones:", "yes") != 0) {
        dns_seterr(error_r, "cannot let the private reverse zones through to the forwarders");
        goto out;
    }
    split_free(&list);
    list = split_list(s->stub_zones);
    for (char **p = list; *p; p++) {
        char *eq = strchr(*p, '='), *opt;

        if (eq == NULL || eq == *p) {
            dns_seterr(error_r, "dns_stub_zones: bad entry '%s' (expected zone=address[@port])", *p);
            goto out;
        }
        *eq = '\0';
        if (!dns_name_valid(*p) || !server_addr_valid(eq + 1)
            || ub_ctx_set_stub(ctx, *p, eq + 1, 0) != 0) {
            *eq = '=';
            dns_seterr(error_r, "dns_stub_zones: bad entry '%s' (expected zone=address[@port])", *p);
            goto out;
        }
        /* A stub zone must not be shadowed by one of unbound's built-in
         * local zones (test., invalid., private reverse zones, ...). */
        opt = xasprintf("%s transparent", *p);
        r = ub_ctx_set_option(ctx, "local-zone:", opt);
        free(opt);
        if (r != 0) {
            dns_seterr(error_r, "dns_stub_zones: zone '%s': %s", *p, ub_strerror(r));
            goto out;
        }
    }
    ret = 0;
out:
    split_free(&list);
    return ret;
}

dns_t *dns_new(const struct dns_settings *s, const char **error_r)
{
    static int told_no_anchor;
    dns_t *dns;
    int r, n;

    if (s->timeout_ms <= 0) {
        dns_seterr(error_r, "dns_query_timeout must be positive");
        return NULL;
    }
    dns = xcalloc(1, sizeof(*dns));
    TAILQ_INIT(&dns->queries);
    dns->timeout_ms = s->timeout_ms;
    if ((dns->ctx = ub_ctx_create()) == NULL) {
        dns_seterr(error_r, "cannot create a libunbound context: %m");
        free(dns);
        return NULL;
    }
    /* Thread, not fork; before anything can finalize the context. */
    if ((r = ub_ctx_async(dns->ctx, 1)) != 0) {
        dns_seterr(error_r, "libunbound: cannot use a thread: %s", ub_strerror(r));
        goto fail;
    }
    if (set_upstreams(dns->ctx, s, error_r) < 0)
        goto fail;
    if (s->trust_anchor_file != NULL && *s->trust_anchor_file != '\0') {
        if ((n = load_anchors(dns->ctx, s->trust_anchor_file, error_r)) < 0)
            goto fail;
        if (n == 0 && !told_no_anchor++)
            msg_warn("dns: no trust anchor file %s: DNSSEC validation is off",
                     s->trust_anchor_file);
        dns->validating = n > 0;
    }
    /* Finalize now (reads and checks everything, before any chroot). */
    if ((r = ub_ctx_zone_remove(dns->ctx, "posthorn-finalize.invalid.")) != 0) {
        dns_seterr(error_r, "libunbound refused the configuration%s: %s",
                   dns->validating ? " (or the trust anchors)" : "", ub_strerror(r));
        goto fail;
    }
    dns->fd = ub_fd(dns->ctx);
    return dns;
fail:
    ub_ctx_delete(dns->ctx);
    free(dns);
    return NULL;
}

int dns_validating(const dns_t *dns)
{
    return dns->validating;
}

int dns_local_zone(dns_t *dns, const char *zone, const char *const *rrs,
                   const char **error_r)
{
    int r;

    if ((r = ub_ctx_zone_add(dns->ctx, zone, "static")) != 0) {
        dns_seterr(error_r, "local zone %s: %s", zone, ub_strerror(r));
        return -1;
    }
    for (; rrs && *rrs; rrs++)
        if ((r = ub_ctx_data_add(dns->ctx, *rrs)) != 0) {
            dns_seterr(error_r, "local data '%s': %s", *rrs, ub_strerror(r));
            return -1;
        }
    return 0;
}

/* ---------------------------------------------------------------- queries */

static void query_free(dns_query_t *q)
{
    dns_result_free(&q->early);
    free(q->name);
    free(q);
}

/* The end of a query: its callback, then it is gone. */
static void deliver(dns_query_t *q, dns_result_t *res)
{
    dns_t *dns = q->dns;

    if (q->timer)
        event_cancel_timer(dns->loop, &q->timer);
    TAILQ_REMOVE(&dns->queries, q, link);
    q->delivering = 1;
    dns->depth++;
    q->cb(res, q->arg);
    dns->depth--;
    query_free(q);
}

static void ub_answer(void *arg, int err, struct ub_result *ur)
{
    dns_query_t *q = arg;
    dns_result_t *res = result_from_ub(q->name, q->type, err, ur);

    ub_resolve_free(ur);
    q->ubid = 0;
    deliver(q, res);
}

static void deadline_fire(event_loop_t *loop, void *arg)
{
    dns_query_t *q = arg;

    (void)loop;
    q->timer = NULL;
    if (q->early) {
        dns_result_t *res = q->early;

        q->early = NULL;
        deliver(q, res);
        return;
    }
    if (q->ubid)
        ub_cancel(q->dns->ctx, q->ubid);
    q->ubid = 0;
    deliver(q, result_fail(q->name, q->type, DNS_TEMPFAIL, "timed out"));
}

static void dns_readable(event_loop_t *loop, int fd, int events, void *arg)
{
    dns_t *dns = arg;
    int r;

    (void)loop, (void)fd, (void)events;
    dns->depth++;
    r = ub_process(dns->ctx);
    dns->depth--;
    if (r != 0)
        msg_fatal("dns: libunbound's resolver thread: %s", ub_strerror(r));
}

/* Create a query and hand it to libunbound; a result known at once (an
 * invalid name, a libunbound error) is left in q->early. */
static dns_query_t *query_start(dns_t *dns, const char *name, enum dns_type type,
                                dns_cb cb, void *arg)
{
    dns_query_t *q = xcalloc(1, sizeof(*q));
    int r;

    if (cb == NULL || strcmp(dns_type_str(type), "unknown") == 0)
        msg_panic("dns_query: bad arguments (type %d)", (int)type);
    q->dns = dns;
    q->type = type;
    q->name = xstrdup(name);
    q->cb = cb;
    q->arg = arg;
    TAILQ_INSERT_TAIL(&dns->queries, q, link);
    if (!dns_name_valid(name)) {
        q->early = result_fail(name, type, DNS_INVALID, "not a valid domain name");
        return q;
    }
    if (!dns->started) {
        /* The first query starts libunbound's thread, which inherits our
         * signal mask and does not set its own: with every signal blocked
         * it never takes a signal meant for the event loop's signalfd. */
        sigset_t all, old;

        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        r = ub_resolve_async(dns->ctx, name, (int)type, 1, q, ub_answer, &q->ubid);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        dns->started = r == 0;
    } else {
        r = ub_resolve_async(dns->ctx, name, (int)type, 1, q, ub_answer, &q->ubid);
    }
    if (r != 0)
        q->early = result_fail(name, type, DNS_TEMPFAIL, ub_strerror(r));
    return q;
}

void dns_attach(dns_t *dns, event_loop_t *loop)
{
    if (dns->loop != NULL)
        msg_panic("dns_attach: already attached");
    dns->loop = loop;
    event_add_fd(loop, dns->fd, EVENT_READ, dns_readable, dns);
}

dns_query_t *dns_query(dns_t *dns, const char *name, enum dns_type type, dns_cb cb, void *arg)
{
    dns_query_t *q;

    if (dns->loop == NULL)
        msg_panic("dns_query: not attached to an event loop");
    q = query_start(dns, name, type, cb, arg);
    q->timer = event_add_timer(dns->loop, q->early ? 0 : dns->timeout_ms, deadline_fire, q);
    return q;
}

void dns_cancel(dns_t *dns, dns_query_t **qp)
{
    dns_query_t *q = *qp;

    *qp = NULL;
    if (q == NULL || q->delivering)
        return;
    if (q->ubid)
        ub_cancel(dns->ctx, q->ubid);
    if (q->timer)
        event_cancel_timer(dns->loop, &q->timer);
    TAILQ_REMOVE(&dns->queries, q, link);
    query_free(q);
}

static void sync_done(dns_result_t *res, void *arg)
{
    *(dns_result_t **)arg = res;
}

void dns_cache_lookups(dns_t *dns, size_t max_entries, unsigned max_ttl)
{
    dnscache_free(&dns->cache);
    dns->cache = dnscache_new(max_entries, max_ttl);
}

dns_result_t *dns_lookup(dns_t *dns, const char *name, enum dns_type type)
{
    dns_result_t *res = dns->cache ? dnscache_get(dns->cache, name, type, event_now_ms()) : NULL;
    dns_query_t *q;
    long long deadline;

    if (res != NULL)
        return res;
    q = query_start(dns, name, type, sync_done, &res);
    deadline = event_now_ms() + dns->timeout_ms;

    if (q->early) {
        dns_result_t *early = q->early;

        q->early = NULL;
        deliver(q, early);
    }
    while (res == NULL) {
        long long left = deadline - event_now_ms();
        struct pollfd pfd = {.fd = dns->fd, .events = POLLIN};
        int n, r;

        if (left <= 0) {
            ub_cancel(dns->ctx, q->ubid);
            q->ubid = 0;
            deliver(q, result_fail(name, type, DNS_TEMPFAIL, "timed out"));
            break;
        }
        if ((n = poll(&pfd, 1, left > 60000 ? 60000 : (int)left)) < 0) {
            if (errno == EINTR)
                continue;
            msg_fatal("dns: poll: %m");
        }
        if (n > 0) {
            dns->depth++;
            r = ub_process(dns->ctx);
            dns->depth--;
            if (r != 0)
                msg_fatal("dns: libunbound's resolver thread: %s", ub_strerror(r));
        }
    }
    if (dns->cache)
        dnscache_put(dns->cache, res, event_now_ms());
    return res;
}

void dns_free(dns_t **dnsp)
{
    dns_t *dns = *dnsp;
    dns_query_t *q;

    if (dns == NULL)
        return;
    if (dns->depth > 0)
        msg_panic("dns_free: called from a dns callback");
    dnscache_free(&dns->cache);
    while ((q = TAILQ_FIRST(&dns->queries)) != NULL) {
        if (q->timer)
            event_cancel_timer(dns->loop, &q->timer);
        TAILQ_REMOVE(&dns->queries, q, link);
        query_free(q);
    }
    if (dns->loop)
        event_del_fd(dns->loop, dns->fd);
    /* Stops the thread; outstanding queries go without callbacks. */
    ub_ctx_delete(dns->ctx);
    free(dns);
    *dnsp = NULL;
}
