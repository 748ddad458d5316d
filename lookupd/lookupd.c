/*
 * lookupd - answers the questions the chrooted network processes cannot:
 * is this a valid local recipient?  what is this client's name?  (Later
 * also SPF, DKIM and DNSBL.)
 *
 * Runs as mail_owner without a chroot (it reads the passwd database and
 * the maps under config_directory), SERVER_MULTI: every client (each smtpd
 * process keeps one connection) is served from one event loop
 * (lib/lookup_proto.h).  Peers: network_user, mail_owner, root
 * (SO_PEERCRED at the hello).
 *
 * Local recipients.  The address's domain must be local (mydestination);
 * "postmaster" is always valid (RFC 5321 4.5.1).  Otherwise the lower-cased
 * local part is looked up in each table of local_recipient_maps, in order:
 * "unix:passwd.byname" is the passwd database (getpwnam), anything else a
 * lib/map table (hash:/path, btree:/path), e.g. the alias maps.  Found in
 * one: LOOKUP_OK.  In none: LOOKUP_NOTFOUND.  An empty local_recipient_maps
 * accepts every local part (Postfix's rule).  A table that cannot be read
 * gives LOOKUP_TEMPFAIL, so the client is told to try again (451), never
 * refused by mistake.  These are answered at once (a slow passwd database
 * holds the other clients up).
 *
 * Virtual aliases.  LOOKUP_VIRTUAL returns an address's entry in
 * virtual_alias_maps (cleanup expands recipients with it); LOOKUP_RCPT
 * accepts an address of a virtual_alias_domains domain when it has an
 * entry (else NOTFOUND), an address of a mydestination domain also when
 * it has one, and answers LOOKUP_REMOTE for every other domain.
 *
 * SRS.  An address of srs_domain whose local part is SRS0/SRS1 (a bounce
 * to mail local forwarded with its sender rewritten, lib/srs.h) is
 * checked before anything else: LOOKUP_OK when its hash (any of the
 * secrets) and its age (srs_max_age) check out, so smtpd accepts it and
 * cleanup routes it back; LOOKUP_NOTFOUND (smtpd: 550 5.1.1) when not;
 * LOOKUP_TEMPFAIL when SRS is on but the secret file could not be read
 * at start-up (as root, in pre_init).
 *
 * Sender logins.  LOOKUP_SENDER_LOGIN returns an address's entry in
 * smtpd_sender_login_maps (the logins that own it), with the key order of
 * the virtual aliases; submission asks for the envelope sender and the
 * From: addresses of an authenticated client's message.
 *
 * Transports.  LOOKUP_TRANSPORT returns the transport_maps entry of a
 * recipient (transport.c), for qmgr, which routes with it; answered at
 * once, like the recipient questions.
 *
 * Client names.  LOOKUP_CLIENT_NAME is reverse DNS with forward
 * confirmation through lib/dns (libunbound in the event loop; see
 * clientname.h for the rule, the answers and the cache of settled
 * answers), answered when DNS has
 * answered or LOOKUP_NAME_DEADLINE_MS has passed, while every other
 * request and client is served.  A client may have
 * LOOKUP_NAME_MAX_INFLIGHT such lookups in flight; another is answered
 * TEMPFAIL at once (logged).  When a client goes away, its lookups are
 * cancelled.  The resolver is set up as root before the privilege drop
 * (dns_new reads the trust anchor file); if it cannot be, lookupd warns
 * and answers every client-name question TEMPFAIL (recipients still
 * work).
 *
 * Failure modes: a malformed request or a hello from the wrong uid is a
 * peer error (logged, connection dropped); a client that does not read
 * its replies is dropped.  Map errors are TEMPFAIL; DNS failures are
 * answers (TEMPFAIL or NOTFOUND), never errors.
 *
 * Parameters: local_recipient_maps, recipient_delimiter, mydestination,
 * virtual_alias_maps, virtual_alias_domains, smtpd_sender_login_maps,
 * myorigin, transport_maps, srs_enable, srs_domain, srs_secret_file,
 * srs_max_age, dns_forwarders,
 * dns_stub_zones, dnssec_trust_anchor_file, dns_query_timeout,
 * network_user, mail_owner (and the server skeleton's).
 */
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "clientname.h"
#include "conf.h"
#include "dns.h"
#include "event.h"
#include "ipc.h"
#include "ipcconn.h"
#include "lookup_proto.h"
#include "lookupd.h"
#include "map.h"
#include "msg.h"
#include "server.h"
#include "srs.h"
#include "xalloc.h"

#define LOOKUPD_MAX_MSG   (64 * 1024)
#define LOOKUPD_PASSWD    "unix:passwd.byname"

static uid_t lookupd_peer_uids[2];
static event_loop_t *lookupd_loop;
static dns_t *lookupd_dns;             /* NULL: DNS is not usable */
static char *lookupd_dns_why;
static srs_t *lookupd_srs;             /* NULL: SRS is off, or (error) cannot be */
static char *lookupd_srs_error;

/* One key against one table (lookupd.h). */
int lookupd_table(const char *spec, const char *local, char **value_out, char **text)
{
    char *err = NULL, *value = NULL;
    map_t *m;
    int rc;

    if (strcmp(spec, LOOKUPD_PASSWD) == 0) {
        struct passwd *pw;

        errno = 0;
        if ((pw = getpwnam(local)) != NULL) {
            if (value_out)
                *value_out = xstrdup(pw->pw_name);
            return 1;
        }
        if (errno == 0 || errno == ENOENT || errno == ESRCH)
            return 0;
        *text = xasprintf("%s: %s", spec, strerror(errno));
        return -1;
    }
    if ((m = map_cached(spec, &err)) == NULL) {
        *text = xasprintf("%s", err);
        free(err);
        return -1;
    }
    rc = map_lookup(m, local, &value);
    if (rc > 0 && value_out)
        *value_out = value;
    else
        free(value);
    if (rc < 0)
        *text = xasprintf("%s: lookup failed: %s", spec, strerror(errno));
    return rc;
}

/* Look key up in local_recipient_maps; *text (fresh, may be NULL) says why. */
static int lookupd_key(const char *key, char **text)
{
    char **tables = conf_split(conf_str("local_recipient_maps"));
    int result = LOOKUP_NOTFOUND, rc;

    if (tables[0] == NULL) {
        result = LOOKUP_OK;
        *text = xstrdup("local_recipient_maps is empty");
    }
    for (size_t i = 0; tables[i] && result == LOOKUP_NOTFOUND; i++) {
        rc = lookupd_table(tables[i], key, NULL, text);
        if (rc > 0) {
            result = LOOKUP_OK;
            free(*text);
            *text = xasprintf("%s found in %s", key, tables[i]);
        } else if (rc < 0) {
            result = LOOKUP_TEMPFAIL;
        }
    }
    conf_split_free(&tables);
    return result;
}

/* The entry of address in the tables of parameter param, Postfix's search
 * order for virtual(5) and smtpd_sender_login_maps: the whole address,
 * without its extension, for a domain of myorigin or mydestination the
 * bare local part (with and without extension), then the catch-all
 * "@domain"; each key in every table before the next key.  LOOKUP_OK with
 * *value (fresh), LOOKUP_NOTFOUND, LOOKUP_TEMPFAIL with *text. */
static int lookupd_address_entry(const char *param, const char *address, char **value,
                                 char **text)
{
    char **tables = conf_split(conf_str(param));
    char *lower = addr_lowercase(address), *local, *domain, *base, *keys[5];
    size_t nkeys = 0;
    int result = LOOKUP_NOTFOUND;

    *value = NULL;
    addr_split(lower, &local, &domain);
    base = addr_unextended(local);
    keys[nkeys++] = xstrdup(lower);
    if (base && *domain)
        keys[nkeys++] = xasprintf("%s@%s", base, domain);
    if (addr_domain_is_local(domain) || addr_domain_eq(domain, conf_str("myorigin"))) {
        keys[nkeys++] = xstrdup(local);
        if (base)
            keys[nkeys++] = xstrdup(base);
    }
    if (*domain)
        keys[nkeys++] = xasprintf("@%s", domain);
    for (size_t k = 0; k < nkeys && result == LOOKUP_NOTFOUND; k++)
        for (size_t i = 0; tables[i] && result == LOOKUP_NOTFOUND; i++) {
            int rc = lookupd_table(tables[i], keys[k], value, text);

            if (rc > 0)
                result = LOOKUP_OK;
            else if (rc < 0)
                result = LOOKUP_TEMPFAIL;
        }
    for (size_t k = 0; k < nkeys; k++)
        free(keys[k]);
    free(lower);
    free(local);
    free(domain);
    free(base);
    conf_split_free(&tables);
    return result;
}

static int lookupd_virtual(const char *address, char **value, char **text)
{
    return lookupd_address_entry("virtual_alias_maps", address, value, text);
}

/* An SRS address of srs_domain (a bounce to mail that local forwarded
 * with its sender rewritten): LOOKUP_OK when its hash and age check out,
 * LOOKUP_NOTFOUND when they do not, LOOKUP_TEMPFAIL when the secrets
 * could not be read; -1 for any other address. */
static int lookupd_srs_rcpt(const char *address, const char *local, const char *domain,
                            char **text)
{
    const char *why = NULL;
    char *orig = NULL;

    if (!srs_is_srs_local(local) || (lookupd_srs == NULL && lookupd_srs_error == NULL)
        || !addr_domain_eq(domain, conf_str("srs_domain")))
        return -1;
    if (lookupd_srs == NULL) {
        *text = xasprintf("SRS: %s", lookupd_srs_error);
        return LOOKUP_TEMPFAIL;
    }
    switch (srs_reverse(lookupd_srs, address, time(NULL), &orig, &why)) {
    case SRS_OK:
        *text = xasprintf("SRS address of <%s>", orig);
        free(orig);
        return LOOKUP_OK;
    case SRS_INVALID:
        *text = xasprintf("SRS: %s", why);
        return LOOKUP_NOTFOUND;
    default:
        return -1;
    }
}

/* Decide about one address; *text (fresh) says why.  "user+ext" is valid
 * when "user+ext" or "user" is (recipient_delimiter); a virtual_alias_maps
 * entry makes any address valid. */
static int lookupd_rcpt(const char *address, char **text)
{
    char *local, *domain, *key, *base;
    int result = LOOKUP_NOTFOUND;

    *text = NULL;
    addr_split(address, &local, &domain);
    if ((result = lookupd_srs_rcpt(address, local, domain, text)) >= 0) {
        free(local);
        free(domain);
        return result;
    }
    result = LOOKUP_NOTFOUND;
    if (!addr_domain_is_local(domain)) {
        char *value = NULL;
        int vd = addr_domain_is_virtual(domain, text);

        if (vd < 0) {
            result = LOOKUP_TEMPFAIL;
        } else if (vd == 0) {
            result = LOOKUP_REMOTE;
            free(*text);
            *text = xasprintf("%s is not one of our domains", domain);
        } else if ((result = lookupd_virtual(address, &value, text)) == LOOKUP_OK) {
            free(*text);
            *text = xasprintf("found in virtual_alias_maps: %s", value);
        } else if (result == LOOKUP_NOTFOUND) {
            free(*text);
            *text = xstrdup("not found in virtual_alias_maps");
        }
        free(value);
    } else if (addr_is_postmaster(local)) {
        result = LOOKUP_OK;
        *text = xstrdup("postmaster");
    } else {
        key = addr_lowercase(local);
        result = lookupd_key(key, text);
        if (result == LOOKUP_NOTFOUND && (base = addr_unextended(key)) != NULL) {
            free(*text);
            *text = NULL;
            result = lookupd_key(base, text);
            free(base);
        }
        if (result == LOOKUP_NOTFOUND) {
            char *value = NULL;

            free(*text);
            *text = NULL;
            if ((result = lookupd_virtual(address, &value, text)) == LOOKUP_OK) {
                free(*text);
                *text = xasprintf("found in virtual_alias_maps: %s", value);
            }
            free(value);
        }
        if (*text == NULL)
            *text = xstrdup("not found in local_recipient_maps");
        free(key);
    }
    free(local);
    free(domain);
    return result;
}

/* A client: its connection and its client-name lookups in flight. */
struct lookupd_pending;
TAILQ_HEAD(lookupd_pending_list, lookupd_pending);

struct lookupd_client {
    ipcconn_t                  *conn;
    struct lookupd_pending_list pending;
    unsigned                    npending;
};

struct lookupd_pending {
    TAILQ_ENTRY(lookupd_pending) link;
    struct lookupd_client       *client;
    uint32_t                     reqid;
    char                        *address;
    clientname_t                *cn;
    long long                    started;
};

static void lookupd_pending_free(struct lookupd_client *cl, struct lookupd_pending **pp)
{
    struct lookupd_pending *p = *pp;

    TAILQ_REMOVE(&cl->pending, p, link);
    cl->npending--;
    clientname_cancel(&p->cn);
    free(p->address);
    free(p);
    *pp = NULL;
}

/* Drop a client, cancelling whatever it still waits for. */
static void lookupd_drop(struct lookupd_client *cl)
{
    struct lookupd_pending *p;

    if (cl->npending)
        msg_debug("lookupd: client (uid %ld) left with %u client-name lookups in flight; "
                  "cancelled", (long)cl->conn->uid, cl->npending);
    while ((p = TAILQ_FIRST(&cl->pending)) != NULL)
        lookupd_pending_free(cl, &p);
    event_del_fd(lookupd_loop, cl->conn->fd);
    ipcconn_free(&cl->conn);
    free(cl);
    server_conn_end();
}

/* Send a reply; on failure drop the client (cl is then gone): 0 or -1. */
static int lookupd_send(struct lookupd_client *cl, ipc_msg_t **replyp)
{
    int rc = ipcconn_send(cl->conn, *replyp);

    ipc_msg_free(replyp);
    if (rc < 0) {
        msg_debug("lookupd: cannot answer a client (uid %ld): %s; dropping it",
                  (long)cl->conn->uid, strerror(errno));
        lookupd_drop(cl);
    }
    return rc;
}

/* A client-name lookup is done. */
static void lookupd_name_done(const struct lookup_name_reply *r, void *arg)
{
    struct lookupd_pending *p = arg;
    struct lookupd_client *cl = p->client;
    ipc_msg_t *reply;

    p->cn = NULL;                   /* finished: nothing to cancel */
    msg_debug("lookupd: client name of %s: %s (%lld ms)%s%s", p->address,
              r->result == LOOKUP_OK ? r->name : r->result == LOOKUP_NOTFOUND ? "unknown"
              : "unknown (temporary failure)", event_now_ms() - p->started,
              *r->text ? ": " : "", r->text);
    reply = lookup_name_reply_encode(p->reqid, r);
    lookupd_pending_free(cl, &p);
    (void)lookupd_send(cl, &reply);
}

/* LOOKUP_CLIENT_NAME: start the lookup, or refuse at once over the cap. */
static void lookupd_client_name(struct lookupd_client *cl, const struct lookup_request *req)
{
    struct lookupd_pending *p;

    if (cl->npending >= LOOKUP_NAME_MAX_INFLIGHT) {
        struct lookup_name_reply r = {.result = LOOKUP_TEMPFAIL, .name = "", .text = NULL};
        ipc_msg_t *reply;

        r.text = xasprintf("cannot look up the name of %s: too many lookups in flight "
                           "(limit %d)", req->address, LOOKUP_NAME_MAX_INFLIGHT);
        msg_warn("lookupd: client (uid %ld) has %u client-name lookups in flight: "
                 "refusing another (%s)", (long)cl->conn->uid, cl->npending, req->address);
        reply = lookup_name_reply_encode(req->reqid, &r);
        free(r.text);
        (void)lookupd_send(cl, &reply);
        return;
    }
    p = xcalloc(1, sizeof(*p));
    p->client = cl;
    p->reqid = req->reqid;
    p->address = xstrdup(req->address);
    p->started = event_now_ms();
    TAILQ_INSERT_TAIL(&cl->pending, p, link);
    cl->npending++;
    p->cn = clientname_start(lookupd_dns, lookupd_dns_why, lookupd_loop, &req->client,
                             req->address, LOOKUP_NAME_DEADLINE_MS, lookupd_name_done, p);
}

/* LOOKUP_TRANSPORT: answered at once (transport.c). */
static void lookupd_transport(struct lookupd_client *cl, const struct lookup_request *req)
{
    struct lookup_transport_reply r;
    ipc_msg_t *reply;

    transport_find(req->address, &r);
    if (msg_verbose && r.result == LOOKUP_OK)
        msg_info("lookupd: %s <%s>: \"%s:%s\" (%s)", ipc_type_name(req->type), req->address,
                 r.transport, r.nexthop, r.text);
    else if (msg_verbose)
        msg_info("lookupd: %s <%s>: %s (%s)", ipc_type_name(req->type), req->address,
                 r.result == LOOKUP_NOTFOUND ? "unknown" : "failed", r.text);
    reply = lookup_transport_reply_encode(req->reqid, &r);
    lookup_transport_reply_clear(&r);
    (void)lookupd_send(cl, &reply);
}

/* LOOKUP_RCPT, LOOKUP_VIRTUAL, LOOKUP_SENDER_LOGIN: answered at once. */
static void lookupd_recipient(struct lookupd_client *cl, const struct lookup_request *req)
{
    char *text = NULL;
    ipc_msg_t *reply;
    int result;

    if (req->type == LOOKUP_VIRTUAL || req->type == LOOKUP_SENDER_LOGIN) {
        char *value = NULL;

        result = lookupd_address_entry(req->type == LOOKUP_VIRTUAL ? "virtual_alias_maps"
                                       : "smtpd_sender_login_maps", req->address, &value, &text);
        if (result == LOOKUP_OK) {
            free(text);
            text = value;
        }
    } else {
        result = lookupd_rcpt(req->address, &text);
    }
    if (text == NULL)
        text = xstrdup("");
    if (result == LOOKUP_TEMPFAIL)
        msg_warn("lookupd: cannot check recipient <%s>: %s", req->address, text);
    else if (msg_verbose)
        msg_info("lookupd: %s <%s>: %s (%s)", ipc_type_name(req->type), req->address,
                 result == LOOKUP_OK ? "found" : result == LOOKUP_REMOTE ? "remote" : "unknown",
                 text);
    reply = lookup_reply_encode(req->reqid, result, text);
    free(text);
    (void)lookupd_send(cl, &reply);
}

static void lookupd_on_request(event_loop_t *loop, int fd, int events, void *arg)
{
    struct lookupd_client *cl = arg;
    struct lookup_request req;
    ipc_msg_t *m = NULL;
    const char *why;
    int rc;

    (void)loop;
    (void)fd;
    (void)events;
    rc = server_ipc_recv(cl->conn, &m);
    if (rc == 0)
        return;
    if (rc < 0) {
        lookupd_drop(cl);
        return;
    }
    if (lookup_request_decode(m, &req, &why) < 0) {
        msg_warn("lookupd: malformed %s from client (%s); dropping it", ipc_type_name(m->type),
                 why);
        ipc_msg_free(&m);
        lookupd_drop(cl);
        return;
    }
    ipc_msg_free(&m);
    if (req.type == LOOKUP_CLIENT_NAME)
        lookupd_client_name(cl, &req);
    else if (req.type == LOOKUP_TRANSPORT)
        lookupd_transport(cl, &req);
    else
        lookupd_recipient(cl, &req);
    lookup_request_clear(&req);
}

static void lookupd_accept(event_loop_t *loop, int fd)
{
    ipcconn_t *c = server_ipc_accept(fd, LOOKUP_PROTO_NAME, LOOKUP_PROTO_VERSION,
                                     lookupd_peer_uids, 2,
                                     LOOKUPD_MAX_MSG);
    struct lookupd_client *cl;

    if (c == NULL)
        return;
    cl = xcalloc(1, sizeof(*cl));
    cl->conn = c;
    TAILQ_INIT(&cl->pending);
    c->ctx = cl;
    event_add_fd(loop, c->fd, EVENT_READ, lookupd_on_request, cl);
}

static void lookupd_pre_init(void)
{
    static const char *const params[] = {"network_user", "mail_owner"};
    struct dns_settings ds;
    const char *why = NULL;
    char *why_srs = NULL;

    server_peer_uids(params, 2, lookupd_peer_uids);
    /* As root: the SRS secret file is root's alone. */
    switch (srs_load(&lookupd_srs, &why_srs)) {
    case -1:
        msg_warn("lookupd: SRS: %s; SRS recipients are answered with a temporary failure",
                 why_srs);
        lookupd_srs_error = why_srs;
        break;
    case 0:
        if (why_srs)
            msg_warn("lookupd: %s", why_srs);
        free(why_srs);
        break;
    default:
        break;
    }
    /* As root: the trust anchor file may be root's alone. */
    conf_dns_settings(&ds);
    if ((lookupd_dns = dns_new(&ds, &why)) == NULL) {
        lookupd_dns_why = xasprintf("DNS is not usable: %s", why ? why : "unknown error");
        msg_warn("lookupd: client names are not looked up: %s", lookupd_dns_why);
    }
}

static void lookupd_post_init(event_loop_t *loop)
{
    lookupd_loop = loop;
    lookup_proto_init();
    if (lookupd_dns)
        dns_attach(lookupd_dns, loop);
}

int main(int argc, char **argv)
{
    static const struct server_opts opts = {
        .mode = SERVER_MULTI,
        .user_param = "mail_owner",
        .chroot = SERVER_CHROOT_NONE,
        .pre_init = lookupd_pre_init,
        .post_init = lookupd_post_init,
        .accept = lookupd_accept,
    };

    server_main(argc, argv, &opts);
}
