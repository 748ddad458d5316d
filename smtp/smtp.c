/*
 * smtp - the outbound SMTP client (Postfix's smtp(8)): qmgr hands it the
 * mail for other domains.
 *
 * Runs as network_user, chrooted into an empty directory, one qmgr
 * connection per process (SERVER_SINGLE; master runs as many as qmgr
 * opens, up to the service's process limit).  qmgr (mail_owner, checked
 * with SO_PEERCRED at the hello) sends one DELIVER_REQUEST at a time
 * (lib/deliver_proto): the queue ID, the sender, the next hop, the
 * recipients with their places in the queue file, and a read-only
 * descriptor of the queue file, read with lib/queue (pread only).  The
 * answer is one DELIVER_RESULT with a status per recipient in request
 * order, the server that gave the final answer (relay=
 * "host[addr]:port", or "none"), and site_class 4 when the destination
 * failed as a whole (DNS trouble, or no server got past connect,
 * greeting, EHLO/HELO and TLS), which drives qmgr's concurrency feedback
 * and its dead-site suspension.
 *
 * One delivery: the servers of the next hop (nexthop.c) are tried in
 * order until every recipient has a final status, at most
 * smtp_mx_session_limit of them that got past the handshake (the last one
 * tried is the final server, whose 4xx replies count as final); a server
 * that fails at connect, greeting, EHLO or TLS costs nothing but time.
 * Each transaction is trans.c's.  When the recipients are all done, the
 * session stays open for smtp_connection_cache_time_limit while we wait
 * for qmgr's next request (qmgr prefers this connection for the same next
 * hop): a request for the same next hop reuses it after an RSET, up to
 * smtp_connection_reuse_time_limit after it was opened; anything else
 * closes it with QUIT.
 *
 * Parameters: network_user, mail_owner, myhostname, inet_interfaces,
 * inet_protocols, smtp_tcp_port, smtp_helo_name, smtp_bind_address,
 * smtp_bind_address6, smtp_address_preference, smtp_mx_address_limit,
 * smtp_mx_session_limit, smtp_connect_timeout, smtp_helo_timeout,
 * smtp_starttls_timeout, smtp_mail_timeout, smtp_rcpt_timeout,
 * smtp_data_init_timeout, smtp_data_xfer_timeout, smtp_data_done_timeout,
 * smtp_rset_timeout, smtp_quit_timeout, smtp_connection_cache_time_limit,
 * smtp_connection_reuse_time_limit, smtp_tls_security_level,
 * smtp_tls_CAfile, smtp_tls_session_cache_timeout, smtp_sasl_auth_enable,
 * smtp_sasl_password_maps, smtp_sasl_security_options,
 * smtp_sasl_tls_security_options, mime_nesting_limit, header_size_limit,
 * and lib/dns's: dns_forwarders, dns_stub_zones, dnssec_trust_anchor_file,
 * dns_query_timeout.
 *
 * Failure modes: a bad parameter value, DNS settings libunbound refuses,
 * or a TLS context that TLS-required levels cannot do without are fatal
 * at start.  A malformed request is a peer error (logged, connection
 * dropped: qmgr sends it again).  A queue file that does not parse defers
 * the request (4.3.0).  Whatever a remote server does is a status.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf.h"
#include "event.h"
#include "ipc.h"
#include "msg.h"
#include "privs.h"
#include "server.h"
#include "smtp.h"
#include "xalloc.h"

#define SMTP_IPC_MS     10000           /* a frame from qmgr, our result to it */
#define SMTP_IDLE_MS    (3600 * 1000)   /* qmgr's connection, between requests */

struct smtp_params smtp_param;
dns_t *smtp_dns;
tls_client_t *smtp_tls;

static uid_t smtp_owner_uid;
static session_t *smtp_cache;          /* the idle session kept for reuse */

/* ------------------------------------------------------------- statuses */

void smtp_status_set(struct smtp_status *st, int dsn_class, const char *dsn, const char *diag,
                     const char *fmt, ...)
{
    char code[sizeof(st->dsn)], *text, *d = diag ? xstrdup(diag) : NULL;
    va_list ap;

    /* dsn, diag and the arguments may point into st itself. */
    snprintf(code, sizeof(code), "%s", dsn);
    va_start(ap, fmt);
    if (vasprintf(&text, fmt, ap) < 0)
        msg_fatal("out of memory");
    va_end(ap);
    smtp_status_clear(st);
    st->dsn_class = dsn_class;
    memcpy(st->dsn, code, sizeof(st->dsn));
    st->text = text;
    st->diag = d;
}

void smtp_status_copy(struct smtp_status *to, const struct smtp_status *from)
{
    if (to == from)
        return;
    smtp_status_clear(to);
    to->dsn_class = from->dsn_class;
    memcpy(to->dsn, from->dsn, sizeof(to->dsn));
    to->text = from->text ? xstrdup(from->text) : NULL;
    to->diag = from->diag ? xstrdup(from->diag) : NULL;
    to->relayed = from->relayed;
}

void smtp_status_clear(struct smtp_status *st)
{
    free(st->text);
    free(st->diag);
    memset(st, 0, sizeof(*st));
}

size_t smtp_request_left(const struct smtp_request *r)
{
    size_t n = 0;

    for (size_t i = 0; i < r->nrcpt; i++)
        n += !r->rcpts[i].final;
    return n;
}

void smtp_request_fail(struct smtp_request *r, const struct smtp_status *st, bool final)
{
    for (size_t i = 0; i < r->nrcpt; i++) {
        if (r->rcpts[i].final)
            continue;
        smtp_status_copy(&r->rcpts[i].st, st);
        r->rcpts[i].final = final;
    }
}

/* ---------------------------------------------------------- parameters */

static int smtp_ms(const char *name)
{
    return (int)(conf_time(name) * 1000);
}

static void smtp_bind(const char *name, int family, struct netaddr *na, bool *have)
{
    const char *v = conf_str(name);

    *have = false;
    if (*v == '\0')
        return;
    if (netaddr_parse(v, na) < 0 || na->family != family)
        msg_fatal("%s: '%s' is not an IPv%d address", name, v, family == AF_INET ? 4 : 6);
    *have = true;
}

static void smtp_params_load(void)
{
    struct smtp_params *p = &smtp_param;
    const char *v;

    p->connect_ms = smtp_ms("smtp_connect_timeout");
    p->helo_ms = smtp_ms("smtp_helo_timeout");
    p->starttls_ms = smtp_ms("smtp_starttls_timeout");
    p->mail_ms = smtp_ms("smtp_mail_timeout");
    p->rcpt_ms = smtp_ms("smtp_rcpt_timeout");
    p->data_init_ms = smtp_ms("smtp_data_init_timeout");
    p->data_xfer_ms = smtp_ms("smtp_data_xfer_timeout");
    p->data_done_ms = smtp_ms("smtp_data_done_timeout");
    p->rset_ms = smtp_ms("smtp_rset_timeout");
    p->quit_ms = smtp_ms("smtp_quit_timeout");
    p->cache_time_ms = conf_time("smtp_connection_cache_time_limit") * 1000;
    p->reuse_time_ms = conf_time("smtp_connection_reuse_time_limit") * 1000;
    p->helo_name = xstrdup(conf_str("smtp_helo_name"));
    p->myhostname = xstrdup(conf_str("myhostname"));
    if (nexthop_port(conf_str("smtp_tcp_port"), &p->port) < 0)
        msg_fatal("smtp_tcp_port: '%s' is not a port number or smtp, submission, submissions",
                  conf_str("smtp_tcp_port"));
    p->mx_address_limit = (size_t)conf_int("smtp_mx_address_limit");
    p->mx_session_limit = (size_t)conf_int("smtp_mx_session_limit");
    v = conf_str("inet_protocols");
    if (strcasecmp(v, "all") == 0 || strcasecmp(v, "ipv4, ipv6") == 0
        || strcasecmp(v, "ipv6, ipv4") == 0 || strcasecmp(v, "ipv4 ipv6") == 0
        || strcasecmp(v, "ipv6 ipv4") == 0)
        p->ipv4 = p->ipv6 = true;
    else if (strcasecmp(v, "ipv4") == 0)
        p->ipv4 = true;
    else if (strcasecmp(v, "ipv6") == 0)
        p->ipv6 = true;
    else
        msg_fatal("inet_protocols: unknown value '%s' (all, ipv4 or ipv6)", v);
    v = conf_str("smtp_address_preference");
    if (strcasecmp(v, "any") == 0)
        p->address_preference = 0;
    else if (strcasecmp(v, "ipv4") == 0)
        p->address_preference = 4;
    else if (strcasecmp(v, "ipv6") == 0)
        p->address_preference = 6;
    else
        msg_fatal("smtp_address_preference: unknown value '%s' (any, ipv4 or ipv6)", v);
    v = conf_str("smtp_tls_security_level");
    if (strcasecmp(v, "none") == 0 || *v == '\0')
        p->tls_level = SMTP_TLS_NONE;
    else if (strcasecmp(v, "may") == 0)
        p->tls_level = SMTP_TLS_MAY;
    else if (strcasecmp(v, "encrypt") == 0)
        p->tls_level = SMTP_TLS_ENCRYPT;
    else if (strcasecmp(v, "verify") == 0)
        p->tls_level = SMTP_TLS_VERIFY;
    else if (strcasecmp(v, "secure") == 0)
        p->tls_level = SMTP_TLS_SECURE;
    else
        msg_fatal("smtp_tls_security_level: unknown level '%s' "
                  "(none, may, encrypt, verify or secure)", v);
    smtp_bind("smtp_bind_address", AF_INET, &p->bind4, &p->have_bind4);
    smtp_bind("smtp_bind_address6", AF_INET6, &p->bind6, &p->have_bind6);
    p->sasl = conf_bool("smtp_sasl_auth_enable");
    p->mime.depth_max = (size_t)conf_int("mime_nesting_limit");
    p->mime.header_max = (size_t)conf_int("header_size_limit");
    p->mime.parts_max = 100000;
}

static void smtp_pre_init(void)
{
    struct dns_settings ds;
    const char *why = NULL;
    gid_t gid;

    if (privs_lookup(conf_str("mail_owner"), &smtp_owner_uid, &gid) < 0)
        msg_fatal("mail_owner account %s does not exist", conf_str("mail_owner"));
    smtp_params_load();
    conf_dns_settings(&ds);
    if ((smtp_dns = dns_new(&ds, &why)) == NULL)
        msg_fatal("DNS: %s", why);
    if (smtp_param.tls_level != SMTP_TLS_NONE) {
        buf_t *err = buf_new(0);

        smtp_tls = tls_client_new(conf_str("smtp_tls_CAfile"),
                                  (long)conf_time("smtp_tls_session_cache_timeout"), err);
        /* With verify and secure every handshake checks the chain: parse
         * the CAs now, so that a bad file stops smtp at once.  Otherwise
         * the first handshake parses them (tls.h says why). */
        if (smtp_tls != NULL && smtp_param.tls_level >= SMTP_TLS_VERIFY
            && tls_client_load_cas(smtp_tls, err) < 0)
            tls_client_free(&smtp_tls);
        if (smtp_tls == NULL) {
            if (smtp_param.tls_level > SMTP_TLS_MAY)
                msg_fatal("TLS is required (smtp_tls_security_level) but unusable: %s",
                          buf_cstr(err));
            msg_warn("STARTTLS will not be used: %s", buf_cstr(err));
        }
        buf_free(&err);
    }
    nexthop_own_init();
    sasl_init();
}

static void smtp_post_init(event_loop_t *loop)
{
    (void)loop;
    deliver_proto_init();
}

/* ------------------------------------------------------------- delivery */

static bool smtp_reusable(const session_t *s)
{
    return s->usable && event_now_ms() - s->started_ms < smtp_param.reuse_time_ms
           && smtp_param.cache_time_ms > 0;
}

/* Done with s: keep it for the next request when it can be reused. */
static void smtp_done_with(session_t **sp)
{
    if (*sp && smtp_reusable(*sp) && smtp_cache == NULL) {
        smtp_cache = *sp;
        *sp = NULL;
        return;
    }
    session_close(sp);
}

/* Deliver r; *site_class and site (its text) for the result. */
static void smtp_deliver(struct smtp_request *r, int *site_class, struct smtp_status *site)
{
    const char *nexthop = r->req->nexthop;
    struct smtp_status last = {0};
    struct nexthop nh;
    size_t sessions = 0;
    bool reached = false, site_fail = false;
    session_t *prev = NULL, *s;
    char *answered = NULL, *reused = NULL;
    unsigned reused_port = 0;

    /* A session kept from the last request. */
    if (smtp_cache) {
        s = smtp_cache;
        smtp_cache = NULL;
        if (strcmp(s->nexthop, nexthop) == 0 && smtp_reusable(s) && session_rset(s) == 0) {
            msg_debug("%s: reusing the session with %s", r->req->queue_id, s->relay);
            sessions++;
            reached = true;
            trans_run(s, r, false);
            /* A server that answered for itself is not asked again; one
             * whose session broke may be, on a new connection. */
            if (s->usable) {
                reused = xstrdup(s->addr);
                reused_port = s->port;
            }
            prev = s;
        } else {
            session_close(&s);
        }
    }
    if (smtp_request_left(r) > 0) {
        if (nexthop_resolve(nexthop, &nh, &last, &site_fail) < 0) {
            smtp_request_fail(r, &last, true);
        } else {
            for (size_t i = 0; i < nh.naddrs && smtp_request_left(r) > 0; i++) {
                const struct nexthop_addr *a = &nh.addrs[i];
                bool final = i + 1 == nh.naddrs
                             || (smtp_param.mx_session_limit
                                 && sessions + 1 >= smtp_param.mx_session_limit);

                if (smtp_param.mx_session_limit && sessions >= smtp_param.mx_session_limit)
                    break;
                if (reused && strcmp(reused, a->addr) == 0 && reused_port == nh.port)
                    continue;
                session_close(&prev);
                if ((s = session_open(&nh, a, nexthop, &last, &answered)) == NULL) {
                    site_fail = true;
                    continue;
                }
                sessions++;
                reached = true;
                trans_run(s, r, final);
                prev = s;
            }
            nexthop_free(&nh);
        }
    }
    smtp_done_with(&prev);
    /* Who is left got no answer of its own: the last failure is theirs. */
    for (size_t i = 0; i < r->nrcpt; i++) {
        struct smtp_rcpt *rc = &r->rcpts[i];

        if (rc->final && rc->st.dsn_class)
            continue;
        if (rc->st.dsn_class == 0) {
            if (last.dsn_class)
                smtp_status_copy(&rc->st, &last);
            else
                smtp_status_set(&rc->st, 4, "4.4.1", NULL, "no server of %s was tried "
                                "(smtp_mx_session_limit)", nexthop);
        }
        rc->final = true;
    }
    *site_class = !reached && site_fail ? 4 : 0;
    if (*site_class == 4)
        smtp_status_copy(site, &last);
    if (r->relay == NULL && answered)
        r->relay = xstrdup(answered);
    free(answered);
    free(reused);
    smtp_status_clear(&last);
}

static bool smtp_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

/* One request: deliver, then answer qmgr.  0, or -1 if qmgr cannot be
 * answered (the connection is then dropped). */
static int smtp_request(int fd, uint32_t reqid, struct deliver_request *req)
{
    struct smtp_request r = {0};
    struct deliver_result res = {0};
    struct smtp_status site = {0};
    char *why = NULL;
    ipc_msg_t *m;
    int rc;

    r.req = req;
    r.eightbit = -1;
    r.nrcpt = req->nrcpt;
    r.rcpts = xcalloc(req->nrcpt, sizeof(*r.rcpts));
    r.smtputf8 = !smtp_ascii(req->sender);
    for (size_t i = 0; i < req->nrcpt; i++) {
        r.rcpts[i].address = req->rcpts[i].address;
        r.rcpts[i].orig = req->rcpts[i].orig_recipient;
        r.smtputf8 |= !smtp_ascii(req->rcpts[i].address);
    }
    if (queue_read(req->queue_fd, &r.q, &why) < 0) {
        struct smtp_status st = {0};

        msg_warn("%s: cannot read the queue file: %s", req->queue_id,
                 why ? why : strerror(errno));
        smtp_status_set(&st, 4, "4.3.0", NULL, "cannot read the queue file");
        smtp_request_fail(&r, &st, true);
        smtp_status_clear(&st);
        free(why);
    } else {
        for (size_t i = 0; i < req->nrcpt; i++) {
            int idx = req->rcpts[i].index;

            if ((size_t)idx < r.q->nrcpt && strcmp(r.q->rcpts[idx].address,
                                                   req->rcpts[i].address) == 0) {
                r.rcpts[i].qr = &r.q->rcpts[idx];
            } else {
                msg_warn("%s: recipient %s is not number %d of the queue file", req->queue_id,
                         req->rcpts[i].address, idx);
                smtp_status_set(&r.rcpts[i].st, 4, "4.3.0", NULL,
                                "recipient not found in the queue file");
                r.rcpts[i].final = true;
            }
        }
        if (strcmp(r.q->sender, req->sender) != 0) {
            struct smtp_status st = {0};

            msg_warn("%s: the request's sender is not the queue file's", req->queue_id);
            smtp_status_set(&st, 4, "4.3.0", NULL, "sender does not match the queue file");
            smtp_request_fail(&r, &st, true);
            smtp_status_clear(&st);
        }
        if (smtp_request_left(&r) > 0)
            smtp_deliver(&r, &res.site_class, &site);
    }

    res.site_text = site.text ? site.text : "";
    res.relay = r.relay ? r.relay : "none";
    res.n = r.nrcpt;
    res.status = xcalloc(r.nrcpt, sizeof(*res.status));
    for (size_t i = 0; i < r.nrcpt; i++) {
        struct smtp_status *st = &r.rcpts[i].st;

        if (st->dsn_class == 0)
            msg_panic("%s: no status for recipient %zu", req->queue_id, i);
        res.status[i].dsn_class = st->dsn_class;
        res.status[i].dsn = st->dsn;
        res.status[i].text = st->text ? st->text : "";
        res.status[i].diag_type = st->diag ? "smtp" : "";
        res.status[i].diag_text = st->diag ? st->diag : "";
        res.status[i].relayed = st->dsn_class == 2 ? st->relayed : DELIVER_FINAL;
    }
    m = deliver_result_encode(reqid, &res);
    rc = ipc_send(fd, m, SMTP_IPC_MS);
    if (rc < 0)
        msg_warn("%s: cannot send the result to qmgr: %s", req->queue_id, strerror(errno));
    ipc_msg_free(&m);
    free(res.status);
    for (size_t i = 0; i < r.nrcpt; i++)
        smtp_status_clear(&r.rcpts[i].st);
    free(r.rcpts);
    free(r.relay);
    smtp_status_clear(&site);
    queue_file_free(&r.q);
    return rc;
}

/* ---------------------------------------------------------- the service */

/* Wait for qmgr's next frame: 1 ready, 0 nothing within ms. */
static int smtp_wait(int fd, long long ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    long long deadline = event_now_ms() + ms;

    for (;;) {
        long long left = deadline - event_now_ms();
        int n;

        if (left <= 0)
            return 0;
        n = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            msg_fatal("poll: %m");
    }
}

static void smtp_serve(int fd)
{
    const char *why;

    if (ipc_server_hello(fd, DELIVER_PROTO_NAME, DELIVER_PROTO_VERSION, &smtp_owner_uid, 1,
                         SMTP_IPC_MS, &why) < 0) {
        msg_warn("smtp: refusing a client: %s", why);
        return;
    }
    for (;;) {
        struct deliver_request req;
        ipc_msg_t *m = NULL;
        int rc;

        if (smtp_cache) {
            long long left = smtp_param.reuse_time_ms - (event_now_ms() - smtp_cache->started_ms);

            if (left > smtp_param.cache_time_ms)
                left = smtp_param.cache_time_ms;
            if (!smtp_wait(fd, left)) {
                session_close(&smtp_cache);
                continue;
            }
        } else if (!smtp_wait(fd, SMTP_IDLE_MS)) {
            break;
        }
        rc = ipc_recv(fd, &m, IPC_MAX_PAYLOAD, SMTP_IPC_MS);
        if (rc == 0)
            break;
        if (rc < 0) {
            if (errno != ECONNRESET)
                msg_warn("smtp: bad message from qmgr: %s; dropping the connection",
                         strerror(errno));
            break;
        }
        if (m->type != DELIVER_REQUEST || deliver_request_decode(m, &req, &why) < 0) {
            msg_warn("malformed %s from qmgr%s%s; dropping the connection",
                     ipc_type_name(m->type), m->type == DELIVER_REQUEST ? ": " : "",
                     m->type == DELIVER_REQUEST ? why : "");
            ipc_msg_free(&m);
            break;
        }
        rc = smtp_request(fd, m->reqid, &req);     /* the decoder made sure of the fd */
        deliver_request_free(&req);
        ipc_msg_free(&m);
        if (rc < 0)
            break;
    }
    session_close(&smtp_cache);
}

int main(int argc, char **argv)
{
    static const struct server_opts opts = {
        .mode = SERVER_SINGLE,
        .user_param = "network_user",
        .chroot = SERVER_CHROOT_EMPTY,
        .pre_init = smtp_pre_init,
        .post_init = smtp_post_init,
        .serve = smtp_serve,
    };

    server_main(argc, argv, &opts);
}
