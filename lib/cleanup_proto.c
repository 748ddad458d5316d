/*
 * cleanup_proto - encoding and decoding of the cleanup protocol, for
 * cleanup and its clients (see cleanup_proto.h for the message layout).
 * Decoding never trusts the peer: counts are bounded, strings checked, and
 * a field that carries privilege is accepted only from a peer class that
 * holds it (cleanup_attr_rules below, cleanup_request_privilege).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup_proto.h"
#include "msg.h"
#include "queue.h"
#include "xalloc.h"

static const struct ipc_name cleanup_proto_names[] = {
    {CLEANUP_SUBMIT, "cleanup-submit"},
    {CLEANUP_RESULT, "cleanup-result"},
};

void cleanup_proto_init(void)
{
    ipc_register_names(cleanup_proto_names,
                       sizeof(cleanup_proto_names) / sizeof(cleanup_proto_names[0]));
}

void cleanup_request_init(struct cleanup_request *r)
{
    memset(r, 0, sizeof(*r));
    r->content_fd = -1;
}

void cleanup_request_attr(struct cleanup_request *r, const char *name, const char *value)
{
    r->attr_names = xreallocarray(r->attr_names, r->nattr + 1, sizeof(char *));
    r->attr_values = xreallocarray(r->attr_values, r->nattr + 1, sizeof(char *));
    r->attr_names[r->nattr] = xstrdup(name);
    r->attr_values[r->nattr] = xstrdup(value);
    r->nattr++;
}

void cleanup_request_rcpt(struct cleanup_request *r, const char *address,
                          const char *orig, const char *orcpt, unsigned notify)
{
    struct cleanup_rcpt *rc;

    r->rcpts = xreallocarray(r->rcpts, r->nrcpt + 1, sizeof(*r->rcpts));
    rc = &r->rcpts[r->nrcpt++];
    rc->address = xstrdup(address);
    rc->orig = xstrdup(orig ? orig : "");
    rc->orcpt = xstrdup(orcpt ? orcpt : "");
    rc->notify = notify;
}

void cleanup_request_free(struct cleanup_request *r)
{
    size_t i;

    free(r->sender);
    free(r->envid);
    for (i = 0; i < r->nattr; i++) {
        free(r->attr_names[i]);
        free(r->attr_values[i]);
    }
    free(r->attr_names);
    free(r->attr_values);
    for (i = 0; i < r->nrcpt; i++) {
        free(r->rcpts[i].address);
        free(r->rcpts[i].orig);
        free(r->rcpts[i].orcpt);
    }
    free(r->rcpts);
    if (r->content_fd >= 0)
        close(r->content_fd);
    cleanup_request_init(r);
}

const char *cleanup_request_get_attr(const struct cleanup_request *r, const char *name)
{
    for (size_t i = 0; i < r->nattr; i++)
        if (strcmp(r->attr_names[i], name) == 0)
            return r->attr_values[i];
    return NULL;
}

int cleanup_submit(int sock, const struct cleanup_request *r, struct cleanup_result *res,
                   int timeout_ms)
{
    static uint32_t next_reqid;
    ipc_msg_t *m = ipc_msg_new(CLEANUP_SUBMIT, ++next_reqid);
    ipc_msg_t *reply = NULL;
    int64_t code;
    size_t i;
    int rc, saved;

    memset(res, 0, sizeof(*res));
    if (r->content_fd < 0 || r->nrcpt == 0)
        msg_panic("cleanup_submit: no content or no recipients");
    ipc_put_int(m, r->flags);
    ipc_put_str(m, r->sender ? r->sender : "");
    ipc_put_str(m, r->envid ? r->envid : "");
    ipc_put_int(m, r->ret);
    ipc_put_int(m, (int64_t)r->nattr);
    for (i = 0; i < r->nattr; i++) {
        ipc_put_str(m, r->attr_names[i]);
        ipc_put_str(m, r->attr_values[i]);
    }
    ipc_put_int(m, (int64_t)r->nrcpt);
    for (i = 0; i < r->nrcpt; i++) {
        ipc_put_str(m, r->rcpts[i].address);
        ipc_put_str(m, r->rcpts[i].orig);
        ipc_put_str(m, r->rcpts[i].orcpt);
        ipc_put_int(m, r->rcpts[i].notify);
    }
    ipc_put_int(m, (int64_t)r->content_len);
    /* The message must not close the caller's descriptor: lend it. */
    m->fd = r->content_fd;
    rc = ipc_send(sock, m, timeout_ms);
    m->fd = -1;
    saved = errno;
    ipc_msg_free(&m);
    if (rc < 0) {
        errno = saved;
        return -1;
    }
    rc = ipc_recv(sock, &reply, 64 * 1024, timeout_ms);
    if (rc <= 0) {
        /* An end of file: cleanup read the whole request and ended
         * without an answer, so it may have queued the message (killed
         * between its commit and its reply).  Not ECONNRESET, which the
         * kernel gives only when cleanup closed with the request still
         * unread, and which cleanup_submit_kept() therefore retries. */
        if (rc == 0)
            errno = ECONNABORTED;
        return -1;
    }
    if (reply->type != CLEANUP_RESULT || reply->fd >= 0
        || ipc_get_int(reply, &code) < 0 || ipc_get_str(reply, &res->dsn) < 0
        || ipc_get_str(reply, &res->text) < 0 || ipc_get_end(reply) < 0
        || code < 200 || code > 599) {
        cleanup_result_free(res);
        ipc_msg_free(&reply);
        errno = EPROTO;
        return -1;
    }
    res->code = (int)code;
    ipc_msg_free(&reply);
    return 0;
}

int cleanup_submit_kept(int *sock, const struct cleanup_request *r, struct cleanup_result *res,
                        int timeout_ms, const char **why)
{
    int fresh = 0, saved;

    *why = NULL;
    for (;;) {
        if (*sock >= 0 && ipc_idle_closed(*sock)) {
            close(*sock);           /* that cleanup process has ended */
            *sock = -1;
        }
        if (*sock < 0) {
            *sock = ipc_client_open(CLEANUP_SOCKET, CLEANUP_PROTO_NAME, CLEANUP_PROTO_VERSION,
                                    timeout_ms, why);
            if (*sock < 0) {
                if (*why == NULL)
                    *why = strerror(errno);
                return -1;
            }
            fresh = 1;
        }
        if (cleanup_submit(*sock, r, res, timeout_ms) == 0)
            return 0;
        saved = errno;
        close(*sock);
        *sock = -1;
        errno = saved;
        /* A kept connection cleanup closed while the request was on its
         * way, the request unread (EPIPE when sending, ECONNRESET when
         * waiting for the answer): once more on a new one.  Never after
         * an end of file (ECONNABORTED): that request was read and may
         * be queued, and a second one would deliver the mail twice. */
        if (fresh || (saved != EPIPE && saved != ECONNRESET)) {
            *why = strerror(saved);
            return -1;
        }
    }
}

void cleanup_result_free(struct cleanup_result *res)
{
    free(res->dsn);
    free(res->text);
    res->dsn = res->text = NULL;
}

/* A string field that must be a sane address or name: no controls. */
static int cleanup_clean_string(const char *s, int allow_empty)
{
    const unsigned char *p;

    if (!allow_empty && *s == '\0')
        return -1;
    for (p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return -1;
    return 0;
}

/* queue.h's rule: 0, NEVER alone, or any of SUCCESS, FAILURE, DELAY. */
static int cleanup_notify_valid(int64_t notify)
{
    return notify == QUEUE_NOTIFY_NEVER
        || (notify >= 0 && (notify & ~(int64_t)(QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_FAILURE
                                                 | QUEUE_NOTIFY_DELAY)) == 0);
}

/* queue.h's rule for attribute names: [a-z0-9_]{1,64}. */
static int cleanup_attr_name_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > QUEUE_ATTR_NAME_MAX)
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

/* Which peers may send which attribute (cleanup_proto.h).  A trusted
 * peer may send any name; the others only these. */
static const struct {
    const char *name;
    unsigned    from;       /* CLEANUP_PEER_* bits */
} cleanup_attr_rules[] = {
    {QUEUE_ATTR_CLIENT_NAME,     CLEANUP_PEER_NETWORK},
    {QUEUE_ATTR_CLIENT_ADDR,     CLEANUP_PEER_NETWORK},
    {CLEANUP_ATTR_CLIENT_PORT,   CLEANUP_PEER_NETWORK},
    {QUEUE_ATTR_HELO,            CLEANUP_PEER_NETWORK | CLEANUP_PEER_LOCAL},
    {QUEUE_ATTR_PROTOCOL,        CLEANUP_PEER_NETWORK | CLEANUP_PEER_LOCAL},
    {CLEANUP_ATTR_TLS_PROTOCOL,  CLEANUP_PEER_NETWORK},
    {CLEANUP_ATTR_TLS_CIPHER,    CLEANUP_PEER_NETWORK},
    {CLEANUP_ATTR_TLS_BITS,      CLEANUP_PEER_NETWORK},
    {QUEUE_ATTR_SASL_USER,       CLEANUP_PEER_NETWORK},
    {QUEUE_ATTR_AUTH_RESULTS,    CLEANUP_PEER_NETWORK},
    {QUEUE_ATTR_QUARANTINE,      CLEANUP_PEER_NETWORK},
    {QUEUE_ATTR_SUBMIT_UID,      CLEANUP_PEER_LOCAL},
    {QUEUE_ATTR_SUBMIT_USER,     CLEANUP_PEER_LOCAL},
    /* QUEUE_ATTR_MAILDROP_ID: pickup's own word, trusted peers only. */
};

enum cleanup_peer cleanup_peer_class(uid_t uid, uid_t mail_owner)
{
    return uid == 0 || uid == mail_owner ? CLEANUP_PEER_TRUSTED : CLEANUP_PEER_NETWORK;
}

const char *cleanup_peer_name(enum cleanup_peer peer)
{
    switch (peer) {
    case CLEANUP_PEER_NETWORK: return "network_user";
    case CLEANUP_PEER_LOCAL:   return "a maildrop file";
    case CLEANUP_PEER_TRUSTED: return "mail_owner or root";
    }
    msg_panic("cleanup_peer_name: bad peer class %d", (int)peer);
}

/* The privilege rules of cleanup_proto.h for a request whose syntax is
 * good: 0, or -1 with *why (a static buffer, valid until the next call). */
static int cleanup_request_privilege(const struct cleanup_request *r, enum cleanup_peer peer,
                                     const char **why)
{
    static char reason[160];
    size_t i, k, n = sizeof(cleanup_attr_rules) / sizeof(cleanup_attr_rules[0]);

    if (peer != CLEANUP_PEER_NETWORK && peer != CLEANUP_PEER_LOCAL
        && peer != CLEANUP_PEER_TRUSTED)
        msg_panic("cleanup_request_check: bad peer class %d", (int)peer);
    if (peer == CLEANUP_PEER_TRUSTED)
        return 0;
    if ((r->flags & ~(peer == CLEANUP_PEER_NETWORK ? CLEANUP_FLAG_HIDE_CLIENT : 0)) != 0) {
        snprintf(reason, sizeof(reason), "the %s flag from %s, which may not set it",
                 r->flags & CLEANUP_FLAG_BOUNCE ? "bounce" : "hide_client",
                 cleanup_peer_name(peer));
        *why = reason;
        return -1;
    }
    for (i = 0; i < r->nattr; i++) {
        for (k = 0; k < n && strcmp(r->attr_names[i], cleanup_attr_rules[k].name) != 0; k++)
            ;
        if (k == n || !(cleanup_attr_rules[k].from & (unsigned)peer)) {
            snprintf(reason, sizeof(reason), "attribute %s from %s, which may not set it",
                     r->attr_names[i], cleanup_peer_name(peer));
            *why = reason;
            return -1;
        }
    }
    if (peer == CLEANUP_PEER_NETWORK) {
        const char *addr = cleanup_request_get_attr(r, QUEUE_ATTR_CLIENT_ADDR);

        if (addr == NULL || *addr == '\0') {
            *why = "no client_addr attribute from network_user";
            return -1;
        }
    } else if (cleanup_request_get_attr(r, QUEUE_ATTR_SUBMIT_UID) == NULL
               || cleanup_request_get_attr(r, QUEUE_ATTR_SUBMIT_USER) == NULL) {
        *why = "a maildrop file without submit_uid and submit_user";
        return -1;
    }
    return 0;
}

int cleanup_request_check(const struct cleanup_request *r, enum cleanup_peer peer,
                          const char **why)
{
    size_t i, size = 64;

    if ((r->flags & ~CLEANUP_FLAGS) != 0
        || (r->ret != QUEUE_RET_NONE && r->ret != QUEUE_RET_FULL && r->ret != QUEUE_RET_HDRS)
        || r->nattr > CLEANUP_MAX_ATTRS || cleanup_clean_string(r->sender, 1) < 0
        || cleanup_clean_string(r->envid, 1) < 0) {
        *why = "bad envelope";
        return -1;
    }
    size += strlen(r->sender) + strlen(r->envid);
    for (i = 0; i < r->nattr; i++) {
        if (!cleanup_attr_name_valid(r->attr_names[i])
            || cleanup_clean_string(r->attr_values[i], 1) < 0) {
            *why = "bad attribute";
            return -1;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(r->attr_names[k], r->attr_names[i]) == 0) {
                *why = "an attribute given twice";
                return -1;
            }
        size += 10 + strlen(r->attr_names[i]) + strlen(r->attr_values[i]);
    }
    if (r->nrcpt < 1 || r->nrcpt > CLEANUP_MAX_RCPTS) {
        *why = "bad recipient count";
        return -1;
    }
    for (i = 0; i < r->nrcpt; i++) {
        const struct cleanup_rcpt *rc = &r->rcpts[i];

        if (cleanup_clean_string(rc->address, 0) < 0 || cleanup_clean_string(rc->orig, 1) < 0
            || cleanup_clean_string(rc->orcpt, 1) < 0 || !cleanup_notify_valid(rc->notify)) {
            *why = "bad recipient";
            return -1;
        }
        size += 24 + strlen(rc->address) + strlen(rc->orig) + strlen(rc->orcpt);
    }
    if (size > CLEANUP_MAX_REQUEST) {
        *why = "request too large";
        return -1;
    }
    return cleanup_request_privilege(r, peer, why);
}

int cleanup_request_decode(ipc_msg_t *m, enum cleanup_peer peer, struct cleanup_request *r,
                           const char **why)
{
    int64_t flags, ret, nattr, nrcpt, notify, len;
    size_t i;

    cleanup_request_init(r);
    *why = "malformed request";
    if (ipc_get_int(m, &flags) < 0 || ipc_get_str(m, &r->sender) < 0
        || ipc_get_str(m, &r->envid) < 0 || ipc_get_int(m, &ret) < 0
        || ipc_get_int(m, &nattr) < 0)
        goto bad;
    if ((flags & ~(int64_t)CLEANUP_FLAGS) != 0
        || (ret != QUEUE_RET_NONE && ret != QUEUE_RET_FULL && ret != QUEUE_RET_HDRS)
        || nattr < 0 || nattr > CLEANUP_MAX_ATTRS) {
        *why = "bad envelope";
        goto bad;
    }
    r->flags = (int)flags;
    r->ret = (int)ret;
    r->attr_names = xcalloc((size_t)nattr + 1, sizeof(char *));
    r->attr_values = xcalloc((size_t)nattr + 1, sizeof(char *));
    for (i = 0; i < (size_t)nattr; i++) {
        r->nattr = i + 1;
        if (ipc_get_str(m, &r->attr_names[i]) < 0 || ipc_get_str(m, &r->attr_values[i]) < 0)
            goto bad;
    }
    if (ipc_get_int(m, &nrcpt) < 0)
        goto bad;
    if (nrcpt < 1 || nrcpt > CLEANUP_MAX_RCPTS) {
        *why = "bad recipient count";
        goto bad;
    }
    r->rcpts = xcalloc((size_t)nrcpt, sizeof(*r->rcpts));
    for (i = 0; i < (size_t)nrcpt; i++) {
        struct cleanup_rcpt *rc = &r->rcpts[i];

        r->nrcpt = i + 1;
        if (ipc_get_str(m, &rc->address) < 0 || ipc_get_str(m, &rc->orig) < 0
            || ipc_get_str(m, &rc->orcpt) < 0 || ipc_get_int(m, &notify) < 0)
            goto bad;
        if (!cleanup_notify_valid(notify)) {
            *why = "bad recipient";
            goto bad;
        }
        rc->notify = (unsigned)notify;
    }
    if (ipc_get_int(m, &len) < 0 || ipc_get_end(m) < 0)
        goto bad;
    if (len < 0 || (r->content_fd = ipc_take_fd(m)) < 0) {
        *why = "no content descriptor";
        goto bad;
    }
    r->content_len = (uint64_t)len;
    if (cleanup_request_check(r, peer, why) < 0)
        goto bad;
    return 0;

bad:
    cleanup_request_free(r);
    return -1;
}

ipc_msg_t *cleanup_result_encode(uint32_t reqid, int code, const char *dsn, const char *text)
{
    ipc_msg_t *m = ipc_msg_new(CLEANUP_RESULT, reqid);

    ipc_put_int(m, code);
    ipc_put_str(m, dsn);
    ipc_put_str(m, text);
    return m;
}
