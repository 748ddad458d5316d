/*
 * lookup_proto - message names, encoders, decoders and the client calls of
 * the lookupd protocol, and the client-name rules both sides apply (see
 * lookup_proto.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event.h"
#include "expcache.h"
#include "lookup_proto.h"
#include "msg.h"
#include "xalloc.h"

static const struct ipc_name lookup_proto_names[] = {
    {LOOKUP_RCPT, "lookup-rcpt"},
    {LOOKUP_REPLY, "lookup-reply"},
    {LOOKUP_VIRTUAL, "lookup-virtual"},
    {LOOKUP_CLIENT_NAME, "lookup-client-name"},
    {LOOKUP_NAME_REPLY, "lookup-name-reply"},
    {LOOKUP_TRANSPORT, "lookup-transport"},
    {LOOKUP_TRANSPORT_REPLY, "lookup-transport-reply"},
    {LOOKUP_SENDER_LOGIN, "lookup-sender-login"},
};

static const unsigned char lookup_v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

void lookup_proto_init(void)
{
    ipc_register_names(lookup_proto_names,
                       sizeof(lookup_proto_names) / sizeof(lookup_proto_names[0]));
}

/* ---- the client-name rules ---- */

int lookup_hostname_valid(const char *name)
{
    size_t n = strlen(name), label = 0;
    int digits_only = 1;

    if (n == 0 || name[n - 1] == '.' || !dns_name_valid(name))
        return 0;
    for (size_t i = 0; i <= n; i++) {
        unsigned char c = (unsigned char)name[i];

        if (c == '.' || c == '\0') {
            if (label == 0 || name[i - 1] == '-')
                return 0;
            if (c == '\0')
                break;
            label = 0;
            digits_only = 1;
            continue;
        }
        if (label == 0 && c == '-')
            return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '-' || c == '_'))
            return 0;
        if (c < '0' || c > '9')
            digits_only = 0;
        label++;
    }
    return !digits_only;
}

/* An address as family + bytes, an IPv4-mapped IPv6 one as IPv4. */
static void lookup_addr_norm(int family, const unsigned char *bytes, int *fam_out,
                             unsigned char out[16])
{
    memset(out, 0, 16);
    if (family == AF_INET6 && memcmp(bytes, lookup_v4mapped, sizeof(lookup_v4mapped)) == 0) {
        *fam_out = AF_INET;
        memcpy(out, bytes + 12, 4);
    } else if (family == AF_INET) {
        *fam_out = AF_INET;
        memcpy(out, bytes, 4);
    } else {
        *fam_out = family;
        memcpy(out, bytes, 16);
    }
}

int lookup_addr_match(const struct netaddr *client, const struct dns_addr *a)
{
    unsigned char x[16], y[16];
    int fx, fy;

    if ((client->family != AF_INET && client->family != AF_INET6)
        || (a->family != AF_INET && a->family != AF_INET6))
        return 0;
    lookup_addr_norm(client->family, client->bytes, &fx, x);
    lookup_addr_norm(a->family, a->bytes, &fy, y);
    return fx == fy && memcmp(x, y, fx == AF_INET ? 4 : 16) == 0;
}

/* ---- requests ---- */

ipc_msg_t *lookup_request_encode(uint32_t type, uint32_t reqid, const char *address)
{
    ipc_msg_t *m = ipc_msg_new(type, reqid);

    ipc_put_str(m, address);
    return m;
}

void lookup_request_clear(struct lookup_request *r)
{
    free(r->address);
    memset(r, 0, sizeof(*r));
}

int lookup_request_decode(ipc_msg_t *m, struct lookup_request *r, const char **why)
{
    char text[NETADDR_TEXT_MAX];

    memset(r, 0, sizeof(*r));
    r->type = m->type;
    r->reqid = m->reqid;
    if (m->type != LOOKUP_RCPT && m->type != LOOKUP_VIRTUAL && m->type != LOOKUP_TRANSPORT
        && m->type != LOOKUP_SENDER_LOGIN && m->type != LOOKUP_CLIENT_NAME) {
        *why = "not a request";
        goto bad;
    }
    if (m->fd >= 0) {
        *why = "a descriptor came with the request";
        goto bad;
    }
    if (ipc_get_str(m, &r->address) < 0 || ipc_get_end(m) < 0) {
        *why = "malformed fields";
        goto bad;
    }
    if (r->address[0] == '\0') {
        *why = "empty address";
        goto bad;
    }
    if (m->type == LOOKUP_CLIENT_NAME) {
        if (strlen(r->address) >= NETADDR_TEXT_MAX || netaddr_parse(r->address, &r->client) < 0
            || inet_ntop(r->client.family, r->client.bytes, text, sizeof(text)) == NULL) {
            *why = "not an IP address";
            goto bad;
        }
        free(r->address);
        r->address = xstrdup(text);
    }
    return 0;
bad:
    lookup_request_clear(r);
    return -1;
}

/* ---- replies ---- */

ipc_msg_t *lookup_reply_encode(uint32_t reqid, int result, const char *text)
{
    ipc_msg_t *m = ipc_msg_new(LOOKUP_REPLY, reqid);

    ipc_put_int(m, result);
    ipc_put_str(m, text ? text : "");
    return m;
}

int lookup_reply_decode(ipc_msg_t *m, uint32_t request_type, int *result, char **text)
{
    int64_t res;

    *result = -1;
    *text = NULL;
    if (m->type != LOOKUP_REPLY || m->fd >= 0 || ipc_get_int(m, &res) < 0
        || ipc_get_str(m, text) < 0 || ipc_get_end(m) < 0)
        goto bad;
    if (res == LOOKUP_OK || res == LOOKUP_NOTFOUND || res == LOOKUP_TEMPFAIL
        || (res == LOOKUP_REMOTE && request_type == LOOKUP_RCPT)) {
        *result = (int)res;
        return 0;
    }
bad:
    free(*text);
    *text = NULL;
    return -1;
}

void lookup_name_reply_clear(struct lookup_name_reply *r)
{
    free(r->name);
    free(r->text);
    memset(r, 0, sizeof(*r));
}

ipc_msg_t *lookup_name_reply_encode(uint32_t reqid, const struct lookup_name_reply *r)
{
    const char *name = r->name ? r->name : "";
    const char *text = r->text ? r->text : "";
    size_t n = strlen(text);
    ipc_msg_t *m;
    char *safe;

    if (r->result != LOOKUP_OK && r->result != LOOKUP_NOTFOUND && r->result != LOOKUP_TEMPFAIL)
        msg_panic("lookup_name_reply_encode: result %d", r->result);
    if (r->result == LOOKUP_OK ? !lookup_hostname_valid(name) : *name != '\0')
        msg_panic("lookup_name_reply_encode: name '%s' with result %d", name, r->result);
    if (r->reuse_ms < 0 || r->reuse_ms > LOOKUP_NAME_REUSE_MAX_MS
        || (r->result == LOOKUP_TEMPFAIL && r->reuse_ms != 0))
        msg_panic("lookup_name_reply_encode: reuse_ms %lld with result %d", r->reuse_ms,
                  r->result);
    if (n > LOOKUP_TEXT_LIMIT)
        n = LOOKUP_TEXT_LIMIT;
    safe = xstrndup(text, n);
    for (char *p = safe; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    m = ipc_msg_new(LOOKUP_NAME_REPLY, reqid);
    ipc_put_int(m, r->result);
    ipc_put_str(m, name);
    ipc_put_str(m, safe);
    ipc_put_int(m, r->reuse_ms);
    free(safe);
    return m;
}

int lookup_name_reply_decode(ipc_msg_t *m, struct lookup_name_reply *r, const char **why)
{
    int64_t res, reuse;

    memset(r, 0, sizeof(*r));
    if (m->type != LOOKUP_NAME_REPLY || m->fd >= 0) {
        *why = "not a client-name reply";
        goto bad;
    }
    if (ipc_get_int(m, &res) < 0 || ipc_get_str(m, &r->name) < 0
        || ipc_get_str(m, &r->text) < 0 || ipc_get_int(m, &reuse) < 0 || ipc_get_end(m) < 0) {
        *why = "malformed fields";
        goto bad;
    }
    if (res != LOOKUP_OK && res != LOOKUP_NOTFOUND && res != LOOKUP_TEMPFAIL) {
        *why = "bad result";
        goto bad;
    }
    if (reuse < 0 || reuse > LOOKUP_NAME_REUSE_MAX_MS || (res == LOOKUP_TEMPFAIL && reuse != 0)) {
        *why = "bad reuse time";
        goto bad;
    }
    r->reuse_ms = reuse;
    r->result = (int)res;
    if (res == LOOKUP_OK ? !lookup_hostname_valid(r->name) : r->name[0] != '\0') {
        *why = res == LOOKUP_OK ? "not a valid host name" : "a name without a confirmed result";
        goto bad;
    }
    if (strlen(r->text) > LOOKUP_TEXT_LIMIT) {
        *why = "text too long";
        goto bad;
    }
    for (const char *p = r->text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *why = "control character in text";
            goto bad;
        }
    return 0;
bad:
    lookup_name_reply_clear(r);
    return -1;
}

/* ---- transport_maps entries ---- */

static int lookup_no_controls(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/* The rules of a transport name and a next hop; NULL if both keep them. */
static const char *lookup_transport_check(const char *transport, const char *nexthop)
{
    size_t n = strlen(transport);

    if (n > LOOKUP_TRANSPORT_NAME_MAX)
        return "transport name too long";
    if (strspn(transport, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        != n)
        return "transport name with characters other than letters, digits, '.', '_' and '-'";
    if (strlen(nexthop) > LOOKUP_NEXTHOP_LIMIT)
        return "next hop too long";
    if (!lookup_no_controls(nexthop))
        return "control character in the next hop";
    return NULL;
}

int lookup_transport_split(const char *value, char **transport, char **nexthop,
                           const char **why)
{
    char *copy = xstrdup(value), *start = copy, *end, *colon;

    *transport = *nexthop = NULL;
    for (char *p = copy; *p; p++)
        if (*p == '\t')
            *p = ' ';
    while (*start == ' ')
        start++;
    end = start + strlen(start);
    while (end > start && end[-1] == ' ')
        *--end = '\0';
    colon = strchr(start, ':');
    if (colon) {
        *colon = '\0';
        *nexthop = xstrdup(colon + 1);
    } else {
        *nexthop = xstrdup("");
    }
    *transport = xstrdup(start);
    free(copy);
    if ((*why = lookup_transport_check(*transport, *nexthop)) != NULL) {
        free(*transport);
        free(*nexthop);
        *transport = *nexthop = NULL;
        return -1;
    }
    return 0;
}

void lookup_transport_reply_clear(struct lookup_transport_reply *r)
{
    free(r->transport);
    free(r->nexthop);
    free(r->text);
    memset(r, 0, sizeof(*r));
}

ipc_msg_t *lookup_transport_reply_encode(uint32_t reqid, const struct lookup_transport_reply *r)
{
    const char *transport = r->transport ? r->transport : "";
    const char *nexthop = r->nexthop ? r->nexthop : "";
    size_t n = r->text ? strlen(r->text) : 0;
    const char *bad;
    ipc_msg_t *m;
    char *safe;

    if (r->result != LOOKUP_OK && r->result != LOOKUP_NOTFOUND && r->result != LOOKUP_TEMPFAIL)
        msg_panic("lookup_transport_reply_encode: result %d", r->result);
    if (r->result != LOOKUP_OK && (*transport || *nexthop))
        msg_panic("lookup_transport_reply_encode: an entry with result %d", r->result);
    if ((bad = lookup_transport_check(transport, nexthop)) != NULL)
        msg_panic("lookup_transport_reply_encode: %s", bad);
    if (n > LOOKUP_TEXT_LIMIT)
        n = LOOKUP_TEXT_LIMIT;
    safe = xstrndup(r->text ? r->text : "", n);
    for (char *p = safe; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    m = ipc_msg_new(LOOKUP_TRANSPORT_REPLY, reqid);
    ipc_put_int(m, r->result);
    ipc_put_str(m, transport);
    ipc_put_str(m, nexthop);
    ipc_put_str(m, safe);
    free(safe);
    return m;
}

int lookup_transport_reply_decode(ipc_msg_t *m, struct lookup_transport_reply *r,
                                  const char **why)
{
    int64_t res;

    memset(r, 0, sizeof(*r));
    if (m->type != LOOKUP_TRANSPORT_REPLY || m->fd >= 0) {
        *why = "not a transport reply";
        goto bad;
    }
    if (ipc_get_int(m, &res) < 0 || ipc_get_str(m, &r->transport) < 0
        || ipc_get_str(m, &r->nexthop) < 0 || ipc_get_str(m, &r->text) < 0
        || ipc_get_end(m) < 0) {
        *why = "malformed fields";
        goto bad;
    }
    if (res != LOOKUP_OK && res != LOOKUP_NOTFOUND && res != LOOKUP_TEMPFAIL) {
        *why = "bad result";
        goto bad;
    }
    r->result = (int)res;
    if (res != LOOKUP_OK && (r->transport[0] || r->nexthop[0])) {
        *why = "an entry without an OK result";
        goto bad;
    }
    if ((*why = lookup_transport_check(r->transport, r->nexthop)) != NULL)
        goto bad;
    if (strlen(r->text) > LOOKUP_TEXT_LIMIT) {
        *why = "text too long";
        goto bad;
    }
    if (!lookup_no_controls(r->text)) {
        *why = "control character in text";
        goto bad;
    }
    return 0;
bad:
    lookup_transport_reply_clear(r);
    return -1;
}

/* ---- the client calls ---- */

static uint32_t lookup_next_reqid;

static long long lookup_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Send one request and read its reply within timeout_ms in all: 0 with
 * *reply of the expected type and id, or -1 with errno. */
static int lookup_exchange(int sock, uint32_t type, const char *address, uint32_t reply_type,
                           ipc_msg_t **reply, int timeout_ms)
{
    long long deadline = lookup_now_ms() + timeout_ms;
    uint32_t reqid = ++lookup_next_reqid;
    ipc_msg_t *m = lookup_request_encode(type, reqid, address);
    long long left;
    int rc;

    *reply = NULL;
    rc = ipc_send(sock, m, timeout_ms);
    ipc_msg_free(&m);
    if (rc < 0)
        return -1;
    if ((left = deadline - lookup_now_ms()) < 1)
        left = 1;
    rc = ipc_recv(sock, reply, IPC_MAX_PAYLOAD, (int)left);
    if (rc <= 0) {
        if (rc == 0)
            errno = ECONNRESET;
        return -1;
    }
    if ((*reply)->type != reply_type || (*reply)->reqid != reqid) {
        ipc_msg_free(reply);
        errno = EPROTO;
        return -1;
    }
    return 0;
}

/* One recipient question; the reply's result and text. */
static int lookup_ask(int sock, uint32_t type, const char *address, char **text, int timeout_ms)
{
    ipc_msg_t *reply;
    int result;

    *text = NULL;
    if (lookup_exchange(sock, type, address, LOOKUP_REPLY, &reply, timeout_ms) < 0)
        return -1;
    if (lookup_reply_decode(reply, type, &result, text) < 0) {
        errno = EPROTO;
        result = -1;
    }
    ipc_msg_free(&reply);
    return result;
}

int lookup_rcpt(int sock, const char *address, int timeout_ms)
{
    char *text;
    int rc = lookup_ask(sock, LOOKUP_RCPT, address, &text, timeout_ms);

    free(text);
    return rc;
}

int lookup_virtual(int sock, const char *address, char **value, int timeout_ms)
{
    int rc = lookup_ask(sock, LOOKUP_VIRTUAL, address, value, timeout_ms);

    if (rc != LOOKUP_OK) {
        free(*value);
        *value = NULL;
    }
    return rc;
}

int lookup_sender_login(int sock, const char *address, char **value, int timeout_ms)
{
    int rc = lookup_ask(sock, LOOKUP_SENDER_LOGIN, address, value, timeout_ms);

    if (rc != LOOKUP_OK) {
        free(*value);
        *value = NULL;
    }
    return rc;
}

int lookup_client_name(int sock, const char *address, struct lookup_name_reply *r,
                       int timeout_ms)
{
    ipc_msg_t *reply;
    const char *why;
    int rc;

    memset(r, 0, sizeof(*r));
    if (lookup_exchange(sock, LOOKUP_CLIENT_NAME, address, LOOKUP_NAME_REPLY, &reply,
                        timeout_ms) < 0)
        return -1;
    rc = lookup_name_reply_decode(reply, r, &why);
    ipc_msg_free(&reply);
    if (rc < 0) {
        errno = EPROTO;
        return -1;
    }
    return r->result;
}

/* A settled client name, kept for the reuse time lookupd gave. */
struct lookup_name_kept {
    int   result;                   /* LOOKUP_OK or LOOKUP_NOTFOUND */
    char *name;                     /* "" unless OK */
    char *text;                     /* the warning to log each time, or "" */
};

static expcache_t *lookup_names_kept;

static void lookup_name_kept_free(void *v)
{
    struct lookup_name_kept *k = v;

    free(k->name);
    free(k->text);
    free(k);
}

char *lookup_client_name_kept(struct svcconn *c, const char *address)
{
    long long now = event_now_ms(), deadline = now + LOOKUP_NAME_TIMEOUT_MS, left;
    struct lookup_name_reply r;
    struct lookup_name_kept *k;
    char *name = NULL;
    int res, err;

    if (lookup_names_kept != NULL
        && (k = expcache_get(lookup_names_kept, address, now)) != NULL) {
        if (k->text[0] != '\0')
            msg_warn("%s", k->text);
        return k->result == LOOKUP_OK ? xstrdup(k->name) : NULL;
    }

    for (;;) {
        if ((left = deadline - event_now_ms()) < 1)
            left = 1;
        if (svcconn_fd(c, (int)left) < 0)
            return NULL;
        if ((left = deadline - event_now_ms()) < 1)
            left = 1;
        res = lookup_client_name(c->fd, address, &r, (int)left);
        if (res >= 0)
            break;
        err = errno;
        svcconn_close(c);
        if (err == ETIMEDOUT || c->fresh) {
            msg_warn("cannot look up the name of client %s: lookupd: %s", address,
                     err == ETIMEDOUT ? "no answer in time" : strerror(err));
            return NULL;
        }
    }
    if (r.text[0] != '\0')
        msg_warn("%s", r.text);
    if (r.reuse_ms > 0 && (res == LOOKUP_OK || res == LOOKUP_NOTFOUND)) {
        if (lookup_names_kept == NULL)
            lookup_names_kept = expcache_new(LOOKUP_NAME_KEPT_MAX, lookup_name_kept_free);
        k = xcalloc(1, sizeof(*k));
        k->result = res;
        k->name = xstrdup(r.name);
        k->text = xstrdup(r.text);
        now = event_now_ms();
        expcache_put(lookup_names_kept, address, k, now + r.reuse_ms, now);
    }
    if (res == LOOKUP_OK) {
        name = r.name;
        r.name = NULL;
    }
    lookup_name_reply_clear(&r);
    return name;
}
