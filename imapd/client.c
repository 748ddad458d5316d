/*
 * client.c - one IMAP connection in a user's process (see client.h):
 * reading commands without blocking, the command table, replies, and the
 * mailbox updates each session is owed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "handover_proto.h"
#include "imapd.h"
#include "client.h"
#include "msg.h"
#include "user.h"
#include "xalloc.h"

/* Output queued past this stops reading commands (and resumes a job
 * only below it). */
#define CLIENT_OUT_HIGH   (256 * 1024)
#define CLIENT_READ_CHUNK 65536

static struct imap_client *clients;
static size_t nclients;
static event_loop_t *client_loop;

static void client_io(event_loop_t *loop, int fd, int events, void *arg);
static void client_process(struct imap_client *c);

size_t client_count(void)
{
    return nclients;
}

/* ------------------------------------------------------------- replies */

void client_tagged(struct imap_client *c, const char *status, const char *fmt, ...)
{
    va_list ap;

    buf_printf(c->out, "%s %s ", c->tag ? c->tag : "*", status);
    va_start(ap, fmt);
    {
        char text[1024];

        vsnprintf(text, sizeof(text), fmt, ap);
        buf_append_str(c->out, text);
    }
    va_end(ap);
    buf_append_str(c->out, "\r\n");
}

void client_bad(struct imap_client *c, const char *fmt, ...)
{
    char text[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    buf_printf(c->out, "%s BAD %s\r\n", c->tag ? c->tag : "*", text);
    if (++c->errors >= conf_int("imapd_error_limit")) {
        buf_append_str(c->out, "* BYE Too many invalid commands.\r\n");
        msg_info("%s: too many errors from %s", user_name(), c->peer);
        c->closing = true;
    }
}

void client_open_failed(struct imap_client *c, const char *why, bool trycreate)
{
    if (strcmp(why, MBOX_NO_SUCH) != 0)
        client_tagged(c, "NO", "[SERVERBUG] Cannot open the mailbox.");
    else if (trycreate)
        client_tagged(c, "NO", "[TRYCREATE] Mailbox does not exist.");
    else
        client_tagged(c, "NO", "[NONEXISTENT] Mailbox does not exist.");
}

/* ------------------------------------------------------------- updates */

static void client_put_kw_names(buf_t *out, const struct imap_mbox *mb)
{
    for (uint32_t i = 0; i < mb->nkwnames; i++)
        buf_printf(out, " %s", mb->kwnames[i]);
}

/* FLAGS and PERMANENTFLAGS (at SELECT, and when a keyword was added). */
void client_send_flag_lists(struct imap_client *c)
{
    struct imap_view *v = c->view;

    buf_append_str(c->out, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft");
    client_put_kw_names(c->out, v->mb);
    buf_append_str(c->out, ")\r\n");
    if (v->readonly) {
        buf_append_str(c->out, "* OK [PERMANENTFLAGS ()] Read-only mailbox.\r\n");
    } else {
        buf_append_str(c->out, "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen "
                       "\\Draft");
        client_put_kw_names(c->out, v->mb);
        buf_append_str(c->out, " \\*)] Flags permitted.\r\n");
    }
    v->nkw_told = v->mb->nkwnames;
}

/* Keywords new to the session are announced (FLAGS) before any FETCH
 * shows them (RFC 9051 7.3.5: FLAGS names every flag in use). */
void client_announce_keywords(struct imap_client *c)
{
    if (c->view && c->view->mb->nkwnames > c->view->nkw_told)
        client_send_flag_lists(c);
}

void client_put_msg_flags(struct imap_client *c, const struct imap_msg *m)
{
    const char *kw[256];
    size_t nkw = 0;
    unsigned flags = m->flags;

    for (uint32_t i = 0; i < m->nkw && nkw < 256; i++)
        if (m->kw[i] < c->view->mb->nkwnames)
            kw[nkw++] = c->view->mb->kwnames[m->kw[i]];
    if (!c->rev2 && view_is_recent(c->view, m->uid))
        flags |= IMAP_F_RECENT;
    imap_put_flags(c->out, flags, kw, nkw);
}

void client_send_updates(struct imap_client *c, bool expunges)
{
    struct imap_view *v = c->view;
    struct imap_mbox *mb;
    size_t before;

    if (v == NULL)
        return;
    mb = v->mb;
    mbox_inotify_read();        /* what happened before the command came */
    mbox_sync(mb);
    if (expunges && v->nexpunged > 0) {
        /* Highest sequence numbers first: each EXPUNGE renumbers only
         * what follows it. */
        qsort(v->expunged, v->nexpunged, sizeof(uint32_t), u32_cmp);
        for (size_t i = v->nexpunged; i-- > 0;) {
            uint32_t seq = view_seq(v, v->expunged[i]);

            if (seq == 0)
                continue;
            buf_printf(c->out, "* %u EXPUNGE\r\n", seq);
            memmove(v->uids + seq - 1, v->uids + seq, (v->n - seq) * sizeof(uint32_t));
            v->n--;
            view_drop_recent(v, v->expunged[i]);
        }
        v->nexpunged = 0;
    }
    client_announce_keywords(c);
    before = v->n;
    for (size_t i = 0; i < mb->nmsgs; i++) {
        uint32_t uid = mb->msgs[i]->uid;

        if (uid <= v->maxuid)
            continue;
        if (v->n == v->size) {
            v->size = v->size ? v->size * 2 : 64;
            v->uids = xreallocarray(v->uids, v->size, sizeof(uint32_t));
        }
        v->uids[v->n++] = uid;
        v->maxuid = uid;
    }
    if (v->n != before) {
        buf_printf(c->out, "* %zu EXISTS\r\n", v->n);
        if (!c->rev2)
            buf_printf(c->out, "* %zu RECENT\r\n", v->nrecent);
    }
    if (v->nchanged > 0) {
        qsort(v->changed, v->nchanged, sizeof(uint32_t), u32_cmp);
        for (size_t i = 0; i < v->nchanged; i++) {
            uint32_t seq;
            struct imap_msg *m;

            if (i > 0 && v->changed[i] == v->changed[i - 1])
                continue;
            if ((seq = view_seq(v, v->changed[i])) == 0
                || (m = mbox_find_uid(mb, v->changed[i])) == NULL)
                continue;
            buf_printf(c->out, "* %u FETCH (UID %u FLAGS ", seq, m->uid);
            client_put_msg_flags(c, m);
            buf_append_str(c->out, ")\r\n");
        }
        v->nchanged = 0;
    }
}

void client_unselect(struct imap_client *c)
{
    struct imap_mbox *mb;

    if (c->view == NULL)
        return;
    mb = c->view->mb;
    view_free(&c->view);
    mbox_close(&mb);
    c->state = IMAP_AUTH;
    free(c->saved);
    c->saved = NULL;
    c->nsaved = 0;
}

/* ------------------------------------------------------------ arguments */

const char *arg_astring(const struct imap_arg *a)
{
    if (a->type == IMAP_ARG_ATOM || a->type == IMAP_ARG_STRING || a->type == IMAP_ARG_LITERAL)
        return memchr(a->str, '\0', a->len) ? NULL : a->str;
    return NULL;
}

bool arg_is_atom(const struct imap_arg *a, const char *word)
{
    return a->type == IMAP_ARG_ATOM && strcasecmp(a->str, word) == 0;
}

int client_resolve_set(struct imap_client *c, const struct imap_arg *a, bool uid,
                       uint32_t **idxp, size_t *np, const char **why)
{
    struct imap_view *v = c->view;
    struct imapseq set;
    struct imapseq_range *r = NULL;
    size_t nr, n = 0, size = 0;
    uint32_t *idx = NULL;

    *idxp = NULL;
    *np = 0;
    if (a->type != IMAP_ARG_ATOM || imapseq_parse(a->str, &set, why) < 0) {
        if (a->type != IMAP_ARG_ATOM)
            *why = "Invalid sequence set.";
        return -1;
    }
    if (set.saved) {
        /* $: the UIDs the last SEARCH ... SAVE found, still here. */
        for (size_t i = 0; i < c->nsaved; i++) {
            uint32_t seq = view_seq(v, c->saved[i]);

            if (seq) {
                if (n == size) {
                    size = size ? size * 2 : 64;
                    idx = xreallocarray(idx, size, sizeof(uint32_t));
                }
                idx[n++] = seq - 1;
            }
        }
        imapseq_free(&set);
        *idxp = idx;
        *np = n;
        return 0;
    }
    if (uid) {
        nr = imapseq_resolve(&set, v->n ? v->uids[v->n - 1] : 0, &r);
        /* Walk the view's UIDs and the ranges together. */
        for (size_t i = 0, j = 0; i < v->n && j < nr;) {
            if (v->uids[i] < r[j].lo) {
                i++;
            } else if (v->uids[i] > r[j].hi) {
                j++;
            } else {
                if (n == size) {
                    size = size ? size * 2 : 64;
                    idx = xreallocarray(idx, size, sizeof(uint32_t));
                }
                idx[n++] = (uint32_t)i++;
            }
        }
    } else {
        /* A message number that names no message is an error (RFC 9051
         * 6.4.5: BAD), "*" on an empty mailbox too. */
        for (size_t j = 0; j < set.n; j++)
            if (set.ranges[j].lo > v->n || set.ranges[j].hi > v->n
                || (v->n == 0 && (set.ranges[j].lo == IMAPSEQ_STAR
                                  || set.ranges[j].hi == IMAPSEQ_STAR))) {
                imapseq_free(&set);
                *why = "Invalid messageset: no such message.";
                return -1;
            }
        nr = imapseq_resolve(&set, (uint32_t)v->n, &r);
        for (size_t j = 0; j < nr; j++) {
            for (uint64_t s = r[j].lo; s <= r[j].hi; s++) {
                if (n == size) {
                    size = size ? size * 2 : 64;
                    idx = xreallocarray(idx, size, sizeof(uint32_t));
                }
                idx[n++] = (uint32_t)(s - 1);
            }
        }
    }
    free(r);
    imapseq_free(&set);
    *idxp = idx;
    *np = n;
    return 0;
}

/* ------------------------------------------------------------ commands */

enum { ANY = 3, AUTH = 1, SEL = 2 };

static const struct {
    const char *name;
    int         states;
    void (*fn)(struct imap_client *c, const struct imap_command *cmd);
} client_commands[] = {
    {"CAPABILITY", ANY, cmd_capability},
    {"NOOP", ANY, cmd_noop},
    {"LOGOUT", ANY, cmd_logout},
    {"ID", ANY, cmd_id},
    {"ENABLE", AUTH, cmd_enable},       /* RFC 5161 3.1: not once selected */
    {"NAMESPACE", ANY, cmd_namespace},
    {"SELECT", ANY, cmd_select},
    {"EXAMINE", ANY, cmd_select},
    {"CREATE", ANY, cmd_create},
    {"DELETE", ANY, cmd_delete},
    {"RENAME", ANY, cmd_rename},
    {"SUBSCRIBE", ANY, cmd_subscribe},
    {"UNSUBSCRIBE", ANY, cmd_subscribe},
    {"LIST", ANY, cmd_list},
    {"LSUB", ANY, cmd_list},
    {"STATUS", ANY, cmd_status},
    {"APPEND", ANY, cmd_append},
    {"IDLE", ANY, cmd_idle},
    {"CHECK", SEL, cmd_check},
    {"CLOSE", SEL, cmd_close},
    {"UNSELECT", SEL, cmd_close},
    {"EXPUNGE", SEL, cmd_expunge},
    {"UID EXPUNGE", SEL, cmd_expunge},
    {"FETCH", SEL, cmd_fetch},
    {"UID FETCH", SEL, cmd_fetch},
    {"STORE", SEL, cmd_store},
    {"UID STORE", SEL, cmd_store},
    {"COPY", SEL, cmd_copy},
    {"UID COPY", SEL, cmd_copy},
    {"MOVE", SEL, cmd_copy},
    {"UID MOVE", SEL, cmd_copy},
    {"SEARCH", SEL, cmd_search},
    {"UID SEARCH", SEL, cmd_search},
};

static void client_command(struct imap_client *c, const struct imap_command *cmd)
{
    c->tag = cmd->tag;
    c->uid_cmd = strncmp(cmd->name, "UID ", 4) == 0;
    for (size_t i = 0; i < sizeof(client_commands) / sizeof(client_commands[0]); i++) {
        if (strcmp(cmd->name, client_commands[i].name) != 0)
            continue;
        if (!(client_commands[i].states & (c->state == IMAP_SELECTED ? SEL : AUTH))) {
            client_bad(c, "No mailbox selected.");
            return;
        }
        client_commands[i].fn(c, cmd);
        return;
    }
    if (strcmp(cmd->name, "LOGIN") == 0 || strcmp(cmd->name, "AUTHENTICATE") == 0)
        client_bad(c, "Already logged in.");
    else if (strcmp(cmd->name, "STARTTLS") == 0)
        client_bad(c, "TLS is set up before login.");
    else
        client_bad(c, "Unknown command.");
}

/* ----------------------------------------------------------------- I/O */

static void client_free(struct imap_client *c)
{
    for (struct imap_client **p = &clients; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    nclients--;
    if (c->job) {
        c->job->free(c->job);
        c->job = NULL;
    }
    client_unselect(c);
    event_cancel_timer(client_loop, &c->timer);
    event_cancel_timer(client_loop, &c->wake_timer);
    event_del_fd(client_loop, c->fd);
    close(c->fd);
    imapparse_free(&c->parser);
    buf_free(&c->in);
    buf_free(&c->out);
    free(c->idle_tag);
    free(c->peer);
    free(c->saved);
    free(c);
    user_client_gone();
}

static void client_on_timeout(event_loop_t *loop, void *arg)
{
    struct imap_client *c = arg;

    (void)loop;
    c->timer = NULL;
    msg_info("%s: timeout, disconnecting %s", user_name(), c->peer);
    buf_append_str(c->out, "* BYE Disconnected for inactivity.\r\n");
    (void)!write(c->fd, c->out->data, c->out->len);
    client_free(c);
}

static void client_arm_timer(struct imap_client *c)
{
    event_cancel_timer(client_loop, &c->timer);
    c->timer = event_add_timer(client_loop, conf_time("imapd_timeout") * 1000L,
                               client_on_timeout, c);
}

/* Which events the client's socket waits for now. */
static void client_update_events(struct imap_client *c)
{
    int ev = 0;

    if (c->out->len > 0)
        ev |= EVENT_WRITE;
    if (!c->closing && c->job == NULL && c->out->len < CLIENT_OUT_HIGH)
        ev |= EVENT_READ;
    event_mod_fd(client_loop, c->fd, ev);
}

/* Write what is queued; false when the client is gone (freed). */
static bool client_flush(struct imap_client *c)
{
    while (c->out->len > 0) {
        ssize_t n = write(c->fd, c->out->data, c->out->len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            msg_info("%s: lost connection to %s", user_name(), c->peer);
            client_free(c);
            return false;
        }
        buf_consume(c->out, (size_t)n);
    }
    if (c->out->len == 0 && c->closing) {
        client_free(c);
        return false;
    }
    return true;
}

static void client_on_wake(event_loop_t *loop, void *arg)
{
    struct imap_client *c = arg;

    (void)loop;
    c->wake_timer = NULL;
    if (!c->idling)
        return;
    client_send_updates(c, true);
    client_update_events(c);
}

/* A view's hook: its mailbox changed.  A session in IDLE is told from
 * the event loop (never from inside the change). */
void client_wake(void *ctx)
{
    struct imap_client *c = ctx;

    if (c->idling && c->wake_timer == NULL)
        c->wake_timer = event_add_timer(client_loop, 0, client_on_wake, c);
}

static void client_end_command(struct imap_client *c)
{
    imapparse_reset(c->parser);
    c->in_command = false;
    c->refused_literal = false;
    c->tag = NULL;
}

/* One command line (CRLF stripped) for the parser. */
static void client_line(struct imap_client *c, char *line, size_t len)
{
    struct imapparse_state st;
    int rc;

    if (c->idling) {
        c->idling = false;
        c->tag = c->idle_tag;
        if (len == 4 && strncasecmp(line, "DONE", 4) == 0) {
            client_send_updates(c, true);
            client_tagged(c, "OK", "Idle completed.");
        } else {
            client_bad(c, "Expected DONE.");
        }
        free(c->idle_tag);
        c->idle_tag = NULL;
        c->tag = NULL;
        return;
    }
    c->in_command = true;
    rc = imapparse_line(c->parser, line, len, &st);
    if (rc == IMAPPARSE_DONE) {
        client_command(c, imapparse_command(c->parser));
        if (c->job == NULL)
            client_end_command(c);
        return;
    }
    if (rc == IMAPPARSE_LITERAL) {
        if (st.sync)
            buf_append_str(c->out, "+ Ready for literal data\r\n");
        c->literal_need = st.literal_len;
        return;
    }
    c->tag = st.tag;
    if (st.too_big) {
        /* NO [TOOBIG] without reading it: a synchronizing literal is never
         * sent; a non-synchronizing one is thrown away as it comes. */
        client_tagged(c, "NO", "[TOOBIG] Literal too large (APPENDLIMIT=%lld).",
                      imap_append_limit());
        if (!st.sync) {
            c->skip = st.literal_len;
            c->skip_line = true;
        }
    } else {
        client_bad(c, "%s", st.why);
    }
    client_end_command(c);
}

/* A line over imapd_max_line_length: BAD, tagged when the line starts
 * with a tag (a command's first line), and the command is dropped. */
static void client_line_too_long(struct imap_client *c)
{
    char tag[IMAPPARSE_TAG_MAX + 1];
    size_t n = 0;

    if (!c->in_command)
        while (n < c->in->len && n < IMAPPARSE_TAG_MAX && c->in->data[n] > 0x20
               && c->in->data[n] < 0x7f && !strchr("(){%*\"\\+]", c->in->data[n])) {
            tag[n] = c->in->data[n];
            n++;
        }
    tag[n] = '\0';
    c->tag = n > 0 && n < c->in->len && c->in->data[n] == ' ' ? tag : NULL;
    client_bad(c, "Line too long.");
    client_end_command(c);
}

static void client_process(struct imap_client *c)
{
    size_t max_line = (size_t)conf_size("imapd_max_line_length");

    while (!c->closing && c->job == NULL && c->out->len < CLIENT_OUT_HIGH) {
        if (c->skip > 0) {
            size_t n = c->in->len < c->skip ? c->in->len : (size_t)c->skip;

            if (n == 0)
                break;
            buf_consume(c->in, n);
            c->skip -= n;
            continue;
        }
        if (c->literal_need > 0) {
            if (c->in->len < c->literal_need)
                break;
            imapparse_literal(c->parser, c->in->data, c->literal_need);
            buf_consume(c->in, c->literal_need);
            c->literal_need = 0;
            continue;
        }
        char *nl = memchr(c->in->data, '\n', c->in->len);

        if (nl == NULL) {
            if (c->in->len > max_line) {
                /* Too long: say so once, and skip to its end. */
                if (!c->skip_line)
                    client_line_too_long(c);
                c->skip_line = true;
                buf_reset(c->in);
            }
            break;
        }
        size_t len = (size_t)(nl - c->in->data), used = len + 1;

        if (c->skip_line) {
            c->skip_line = false;
            buf_consume(c->in, used);
            continue;
        }
        if (len > max_line) {
            client_line_too_long(c);
            buf_consume(c->in, used);
            continue;
        }
        if (len > 0 && c->in->data[len - 1] == '\r')
            len--;
        c->in->data[len] = '\0';
        client_line(c, c->in->data, len);
        buf_consume(c->in, used);
    }
}

static void client_io(event_loop_t *loop, int fd, int events, void *arg)
{
    struct imap_client *c = arg;

    (void)loop;
    if (events & EVENT_WRITE) {
        if (!client_flush(c))
            return;
        if (c->job && c->out->len < CLIENT_OUT_HIGH) {
            if (c->job->step(c, c->job)) {
                c->job->free(c->job);
                c->job = NULL;
                client_end_command(c);
                client_process(c);
            }
        }
    }
    if ((events & (EVENT_READ | EVENT_ERROR)) && c->job == NULL && !c->closing) {
        char chunk[CLIENT_READ_CHUNK];
        ssize_t n = read(fd, chunk, sizeof(chunk));

        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            if (n < 0)
                msg_info("%s: read from %s: %s", user_name(), c->peer, strerror(errno));
            client_free(c);
            return;
        }
        if (n > 0) {
            buf_append(c->in, chunk, (size_t)n);
            client_arm_timer(c);
            client_process(c);
        }
    }
    if (!client_flush(c))
        return;
    client_update_events(c);
}

void client_start(event_loop_t *loop, const struct postlogin_session *ps)
{
    static const struct imapparse_limits lim_base = {
        .max_args = 100000, .max_depth = 32, .allow_8bit = true,
    };
    struct imapparse_limits lim = lim_base;
    struct imap_client *c = xcalloc(1, sizeof(*c));
    buf_t *caps;

    client_loop = loop;
    lim.max_literal = (size_t)imap_append_limit();
    lim.max_total = lim.max_literal + 1024 * 1024;
    c->fd = ps->fd;
    c->peer = xasprintf("[%s]", ps->client_addr);
    c->in = buf_new(0);
    c->out = buf_new(0);
    c->parser = imapparse_new(&lim);
    c->state = IMAP_AUTH;
    c->next = clients;
    clients = c;
    nclients++;
    msg_info("%s: login from %s, mechanism %s%s", user_name(), c->peer, ps->mech,
             (ps->flags & HANDOVER_F_TLS) ? ", TLS" : "");
    /* The login command's reply, then what the client pipelined. */
    caps = buf_new(0);
    imap_capability_auth(caps);
    c->tag = ps->tag;
    client_tagged(c, "OK", "[CAPABILITY %s] Logged in.", buf_cstr(caps));
    c->tag = NULL;
    buf_free(&caps);
    buf_append(c->in, ps->input, ps->input_len);
    event_add_fd(loop, c->fd, EVENT_READ, client_io, c);
    client_arm_timer(c);
    client_process(c);
    if (client_flush(c))
        client_update_events(c);
}

void client_shutdown_all(const char *why)
{
    while (clients) {
        struct imap_client *c = clients;

        buf_printf(c->out, "* BYE %s\r\n", why);
        (void)!write(c->fd, c->out->data, c->out->len);
        client_free(c);
    }
}
