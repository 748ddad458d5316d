/*
 * anvil - counts simultaneous sessions per (service, client address) for
 * every process of smtpd and the other network services, so that
 * smtpd_client_connection_count_limit holds across processes, and events
 * per (service, key) in a time window, so that submission's per-login
 * hourly limits do (Postfix's anvil(8) does the same job).
 *
 * One process (master.conf maxproc 1), mail_owner, chrooted into the empty
 * directory, SERVER_MULTI with no idle exit.  Clients keep one connection
 * each (lib/anvil_proto.h).  State: a hash table of counters keyed by
 * "service NUL address", and per client connection the list of sessions
 * it registered, which are released when that connection closes — so a
 * killed smtpd never leaves a count behind.  When anvil itself restarts
 * the counts start from zero (clients reconnect); that only lets a few
 * sessions more through for a while, it never refuses one wrongly.
 *
 * Failure modes: a malformed request or a wrong peer uid drops that client
 * (peer error).  Memory is bounded by the number of sessions the clients
 * hold: at most ANVIL_MAX_HELD per connection (a client that asks for more
 * is dropped, which releases them all), and connections by the clients'
 * process limits.  Rate counters are an expcache of at most
 * ANVIL_MAX_RATES keys, each dropped when its window ends; a flood of keys
 * past that starts them all afresh (only authenticated logins make keys).
 *
 * Parameters: network_user, login_user, mail_owner (peers), and the
 * server skeleton's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <unistd.h>

#include "anvil_proto.h"
#include "conf.h"
#include "event.h"
#include "expcache.h"
#include "ipc.h"
#include "ipcconn.h"
#include "msg.h"
#include "server.h"
#include "xalloc.h"

#define ANVIL_MAX_MSG     4096
#define ANVIL_MAX_HELD    1000  /* sessions one client may hold (an smtpd holds 1) */
#define ANVIL_MAX_RATES   100000        /* rate keys kept (expcache: then start afresh) */

struct anvil_counter {
    struct anvil_counter *next;     /* hash chain */
    char  *key;                     /* "service\0addr" */
    size_t keylen;
    long   count;
};

/* Counters in a chained hash table; it holds only keys with live sessions. */
#define ANVIL_BUCKETS 4096
static struct anvil_counter *anvil_table[ANVIL_BUCKETS];

static size_t anvil_hash(const char *key, size_t len)
{
    uint32_t h = 2166136261u;       /* FNV-1a */

    while (len-- > 0)
        h = (h ^ (unsigned char)*key++) * 16777619u;
    return h % ANVIL_BUCKETS;
}

/* One client connection and the sessions it holds. */
struct anvil_client {
    ipcconn_t             *conn;
    struct anvil_counter **held;   /* one entry per registered session */
    size_t                 nheld;
};

static uid_t anvil_peer_uids[3];

static struct anvil_counter *anvil_find(const char *service, const char *addr, int create)
{
    size_t slen = strlen(service), alen = strlen(addr), len = slen + 1 + alen, b;
    char *key = xmalloc(len);
    struct anvil_counter *c;

    memcpy(key, service, slen + 1);
    memcpy(key + slen + 1, addr, alen);
    b = anvil_hash(key, len);
    for (c = anvil_table[b]; c; c = c->next)
        if (c->keylen == len && memcmp(c->key, key, len) == 0)
            break;
    if (c == NULL && create) {
        c = xcalloc(1, sizeof(*c));
        c->key = key;
        c->keylen = len;
        c->next = anvil_table[b];
        anvil_table[b] = c;
        return c;
    }
    free(key);
    return c;
}

static void anvil_release(struct anvil_counter *c)
{
    struct anvil_counter **pp;

    if (--c->count > 0)
        return;
    for (pp = &anvil_table[anvil_hash(c->key, c->keylen)]; *pp != c; pp = &(*pp)->next)
        ;
    *pp = c->next;
    free(c->key);
    free(c);
}

/* Rates: the count of each (service, key) in its current window. */
struct anvil_rate {
    long long count;
};

static expcache_t *anvil_rates;

static long long anvil_rate_add(const char *service, const char *key, int64_t amount,
                                int64_t window)
{
    long long now = event_now_ms();
    char *name = xasprintf("%s %s", service, key);
    struct anvil_rate *r = expcache_get(anvil_rates, name, now);

    if (r == NULL) {
        r = xcalloc(1, sizeof(*r));
        expcache_put(anvil_rates, name, r, now + window * 1000, now);
    }
    r->count += amount;
    free(name);
    return r->count;
}

static void anvil_drop(event_loop_t *loop, struct anvil_client *cl)
{
    size_t i;

    for (i = 0; i < cl->nheld; i++)
        anvil_release(cl->held[i]);
    free(cl->held);
    event_del_fd(loop, cl->conn->fd);
    ipcconn_free(&cl->conn);
    free(cl);
    server_conn_end();
}

static int anvil_field_ok(const char *s)
{
    size_t n = strlen(s);

    return n > 0 && n <= ANVIL_FIELD_MAX;
}

static void anvil_on_request(event_loop_t *loop, int fd, int events, void *arg)
{
    struct anvil_client *cl = arg;
    char *service = NULL, *addr = NULL;
    int64_t amount = 0, window = 0;
    ipc_msg_t *m = NULL;
    int rc;

    (void)fd;
    (void)events;
    rc = server_ipc_recv(cl->conn, &m);
    if (rc == 0)
        return;
    if (rc < 0) {
        anvil_drop(loop, cl);
        return;
    }
    if ((m->type != ANVIL_CONNECT && m->type != ANVIL_DISCONNECT && m->type != ANVIL_RATE)
        || m->fd >= 0 || ipc_get_str(m, &service) < 0 || ipc_get_str(m, &addr) < 0
        || (m->type == ANVIL_RATE && (ipc_get_int(m, &amount) < 0 || ipc_get_int(m, &window) < 0
                                      || amount < 0 || amount > ANVIL_AMOUNT_MAX
                                      || window < 1 || window > ANVIL_WINDOW_MAX))
        || ipc_get_end(m) < 0 || !anvil_field_ok(service) || !anvil_field_ok(addr)) {
        msg_warn("anvil: malformed %s from client; dropping it", ipc_type_name(m->type));
        rc = -1;
    } else if (m->type == ANVIL_RATE) {
        ipc_msg_t *reply = ipc_msg_new(ANVIL_REPLY, m->reqid);

        ipc_put_int(reply, anvil_rate_add(service, addr, amount, window));
        rc = ipcconn_send(cl->conn, reply);
        ipc_msg_free(&reply);
    } else if (m->type == ANVIL_CONNECT && cl->nheld >= ANVIL_MAX_HELD) {
        msg_warn("anvil: a client (uid %ld) holds %d sessions already; dropping it",
                 (long)cl->conn->uid, ANVIL_MAX_HELD);
        rc = -1;
    } else if (m->type == ANVIL_CONNECT) {
        struct anvil_counter *c = anvil_find(service, addr, 1);
        ipc_msg_t *reply = ipc_msg_new(ANVIL_REPLY, m->reqid);

        c->count++;
        cl->held = xreallocarray(cl->held, cl->nheld + 1, sizeof(*cl->held));
        cl->held[cl->nheld++] = c;
        ipc_put_int(reply, c->count);
        rc = ipcconn_send(cl->conn, reply);
        ipc_msg_free(&reply);
    } else {
        struct anvil_counter *c = anvil_find(service, addr, 0);
        size_t i;

        /* Release one session this client holds for that key; a
         * disconnect for something never registered is ignored. */
        for (i = 0; c && i < cl->nheld; i++) {
            if (cl->held[i] == c) {
                cl->held[i] = cl->held[--cl->nheld];
                anvil_release(c);
                break;
            }
        }
        rc = 0;
    }
    free(service);
    free(addr);
    ipc_msg_free(&m);
    if (rc < 0)
        anvil_drop(loop, cl);
}

static void anvil_accept(event_loop_t *loop, int fd)
{
    struct anvil_client *cl;
    ipcconn_t *c = server_ipc_accept(fd, ANVIL_PROTO_NAME, ANVIL_PROTO_VERSION, anvil_peer_uids, 3,
                                     ANVIL_MAX_MSG);

    if (c == NULL)
        return;
    cl = xcalloc(1, sizeof(*cl));
    cl->conn = c;
    event_add_fd(loop, c->fd, EVENT_READ, anvil_on_request, cl);
}

static void anvil_pre_init(void)
{
    static const char *const params[] = {"network_user", "login_user", "mail_owner"};

    server_peer_uids(params, 3, anvil_peer_uids);
}

static void anvil_post_init(event_loop_t *loop)
{
    (void)loop;
    anvil_proto_init();
    anvil_rates = expcache_new(ANVIL_MAX_RATES, free);
}

int main(int argc, char **argv)
{
    static const struct server_opts opts = {
        .mode = SERVER_MULTI,
        .user_param = "mail_owner",
        .chroot = SERVER_CHROOT_EMPTY,
        .no_idle_exit = 1,
        .pre_init = anvil_pre_init,
        .post_init = anvil_post_init,
        .accept = anvil_accept,
    };

    server_main(argc, argv, &opts);
}
