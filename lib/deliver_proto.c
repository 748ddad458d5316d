/*
 * deliver_proto - encoding and decoding of the qmgr <-> transport delivery
 * protocol (see deliver_proto.h).  Decoding checks every field and never
 * aborts.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deliver_proto.h"
#include "queue.h"
#include "xalloc.h"

static const struct ipc_name deliver_proto_names[] = {
    {DELIVER_REQUEST, "deliver-request"},
    {DELIVER_RESULT, "deliver-result"},
};

void deliver_proto_init(void)
{
    ipc_register_names(deliver_proto_names,
                       sizeof(deliver_proto_names) / sizeof(deliver_proto_names[0]));
}

static int deliver_no_controls(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/* ------------------------------------------------------------ requests */

ipc_msg_t *deliver_request_encode(uint32_t reqid, const struct deliver_request *r)
{
    ipc_msg_t *m = ipc_msg_new(DELIVER_REQUEST, reqid);

    ipc_put_str(m, r->queue_id);
    ipc_put_str(m, r->sender);
    ipc_put_str(m, r->nexthop ? r->nexthop : "");
    ipc_put_int(m, r->flags);
    ipc_put_int(m, (int64_t)r->nrcpt);
    for (size_t i = 0; i < r->nrcpt; i++) {
        ipc_put_int(m, r->rcpts[i].index);
        ipc_put_str(m, r->rcpts[i].address);
        ipc_put_str(m, r->rcpts[i].orig_recipient ? r->rcpts[i].orig_recipient : "");
    }
    m->fd = r->queue_fd;        /* lent: the caller clears it before freeing */
    return m;
}

int deliver_request_decode(ipc_msg_t *m, struct deliver_request *r, const char **why)
{
    int64_t flags, n;

    memset(r, 0, sizeof(*r));
    r->queue_fd = -1;
    *why = "malformed request";
    if (ipc_get_str(m, &r->queue_id) < 0 || ipc_get_str(m, &r->sender) < 0
        || ipc_get_str(m, &r->nexthop) < 0 || ipc_get_int(m, &flags) < 0
        || ipc_get_int(m, &n) < 0)
        goto bad;
    if (n < 1 || n > DELIVER_MAX_RCPTS) {
        *why = "bad recipient count";
        goto bad;
    }
    r->rcpts = xcalloc((size_t)n, sizeof(*r->rcpts));
    for (int64_t i = 0; i < n; i++) {
        struct deliver_rcpt *rc = &r->rcpts[i];
        int64_t index;

        r->nrcpt++;
        if (ipc_get_int(m, &index) < 0 || ipc_get_str(m, &rc->address) < 0
            || ipc_get_str(m, &rc->orig_recipient) < 0)
            goto bad;
        if (index < 0 || index > INT32_MAX || rc->address[0] == '\0'
            || !deliver_no_controls(rc->address) || !deliver_no_controls(rc->orig_recipient)) {
            *why = "bad recipient";
            goto bad;
        }
        rc->index = (int)index;
    }
    if (ipc_get_end(m) < 0)
        goto bad;
    if (!queue_id_valid(r->queue_id) || !deliver_no_controls(r->sender)
        || !deliver_no_controls(r->nexthop) || flags != 0) {
        *why = "bad field";
        goto bad;
    }
    r->flags = (int)flags;
    if ((r->queue_fd = ipc_take_fd(m)) < 0) {
        *why = "no queue file descriptor";
        goto bad;
    }
    return 0;
bad:
    deliver_request_free(r);
    return -1;
}

void deliver_request_free(struct deliver_request *r)
{
    free(r->queue_id);
    free(r->sender);
    free(r->nexthop);
    for (size_t i = 0; i < r->nrcpt; i++) {
        free(r->rcpts[i].address);
        free(r->rcpts[i].orig_recipient);
    }
    free(r->rcpts);
    if (r->queue_fd >= 0)
        close(r->queue_fd);
    memset(r, 0, sizeof(*r));
    r->queue_fd = -1;
}

/* ------------------------------------------------------------- results */

/* A text as it may travel: at most DELIVER_TEXT_LIMIT bytes, no controls. */
static void deliver_put_text(ipc_msg_t *m, const char *text)
{
    char *clean = xstrndup(text ? text : "", DELIVER_TEXT_LIMIT);

    for (char *p = clean; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    ipc_put_str(m, clean);
    free(clean);
}

ipc_msg_t *deliver_result_encode(uint32_t reqid, const struct deliver_result *r)
{
    ipc_msg_t *m = ipc_msg_new(DELIVER_RESULT, reqid);

    ipc_put_int(m, r->site_class);
    deliver_put_text(m, r->site_text);
    deliver_put_text(m, r->relay);
    ipc_put_int(m, (int64_t)r->n);
    for (size_t i = 0; i < r->n; i++) {
        ipc_put_int(m, r->status[i].dsn_class);
        ipc_put_str(m, r->status[i].dsn);
        deliver_put_text(m, r->status[i].text);
        deliver_put_text(m, r->status[i].diag_type);
        deliver_put_text(m, r->status[i].diag_text);
        ipc_put_int(m, r->status[i].relayed);
    }
    return m;
}

int deliver_result_decode(ipc_msg_t *m, struct deliver_result *r)
{
    int64_t site, n;

    memset(r, 0, sizeof(*r));
    if (m->fd >= 0 || ipc_get_int(m, &site) < 0 || ipc_get_str(m, &r->site_text) < 0
        || ipc_get_str(m, &r->relay) < 0 || ipc_get_int(m, &n) < 0
        || (site != 0 && site != 4) || n < 1 || n > DELIVER_MAX_RCPTS
        || !deliver_no_controls(r->site_text) || !deliver_no_controls(r->relay))
        goto bad;
    r->site_class = (int)site;
    r->status = xcalloc((size_t)n, sizeof(*r->status));
    for (int64_t i = 0; i < n; i++) {
        struct deliver_status *s = &r->status[i];
        int64_t cls, relayed;

        r->n++;
        if (ipc_get_int(m, &cls) < 0 || ipc_get_str(m, &s->dsn) < 0
            || ipc_get_str(m, &s->text) < 0 || ipc_get_str(m, &s->diag_type) < 0
            || ipc_get_str(m, &s->diag_text) < 0 || ipc_get_int(m, &relayed) < 0
            || (cls != 2 && cls != 4 && cls != 5)
            || !dsn_code_valid(s->dsn, (int)cls) || !deliver_no_controls(s->text)
            || !deliver_no_controls(s->diag_type) || !deliver_no_controls(s->diag_text)
            || relayed < DELIVER_FINAL || relayed > DELIVER_RELAYED_DSN
            || (relayed != DELIVER_FINAL && cls != 2))
            goto bad;
        s->dsn_class = (int)cls;
        s->relayed = (int)relayed;
    }
    if (ipc_get_end(m) < 0)
        goto bad;
    return 0;
bad:
    deliver_result_free(r);
    return -1;
}

void deliver_result_free(struct deliver_result *r)
{
    free(r->site_text);
    free(r->relay);
    for (size_t i = 0; i < r->n; i++) {
        free(r->status[i].dsn);
        free(r->status[i].text);
        free(r->status[i].diag_type);
        free(r->status[i].diag_text);
    }
    free(r->status);
    memset(r, 0, sizeof(*r));
}

/* RFC 3463: class "." subject "." detail; subject and detail 1-3 digits. */
int dsn_code_valid(const char *s, int dsn_class)
{
    int n;

    if (s[0] != '2' && s[0] != '4' && s[0] != '5')
        return 0;
    if (dsn_class != 0 && s[0] - '0' != dsn_class)
        return 0;
    if (s[1] != '.')
        return 0;
    s += 2;
    for (int part = 0; part < 2; part++) {
        for (n = 0; isdigit((unsigned char)*s); s++)
            n++;
        if (n < 1 || n > 3)
            return 0;
        if (part == 0 && *s++ != '.')
            return 0;
    }
    return *s == '\0';
}
