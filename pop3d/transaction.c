/*
 * transaction.c - pop3d's mail half in the session process, as the user:
 * it answers the login command the login half handed over (the mailbox
 * is open: "+OK Logged in."; another session has it: "-ERR [IN-USE]"),
 * then serves the TRANSACTION state (RFC 1939 5) and UPDATE on QUIT:
 *
 *   STAT, LIST [n], RETR n, DELE n, NOOP, RSET, TOP n lines, UIDL [n],
 *   CAPA, QUIT.
 *
 * Messages are numbered 1..N as listed at login; deleted ones are gone
 * from STAT, LIST and UIDL and refused by RETR, TOP and DELE until RSET.
 * Only QUIT deletes (mailbox.c's UPDATE, durable before the +OK): a
 * session that ends any other way, a dropped connection, a timeout, a
 * SIGTERM, leaves the Maildir as it was.  Commands of the AUTHORIZATION
 * state are "-ERR" (RFC 1939 5).
 *
 * The log: "login: user=<NAME>, method=MECH, client=[ADDR]:PORT[, TLS]"
 * and at the end "logout: user=<NAME>, retr=COUNT/OCTETS, del=COUNT/N,
 * size=OCTETS" ("disconnected" when the session ended without QUIT).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "handover_proto.h"
#include "mailbox.h"
#include "msg.h"
#include "pop3d.h"
#include "xalloc.h"

struct pop3_mail {
    session_t       sess;
    struct pop3_box box;
    const char     *user;
    char            where[8];       /* the last command, for sess.where */
    long            retr_count;
    long long       retr_octets;
};

/* A message number argument: 1..n, the number; 0 for anything else. */
static size_t pop3_msgno(const char *arg, size_t n)
{
    unsigned long long v = 0;

    if (arg == NULL || *arg < '1' || *arg > '9')
        return 0;
    for (; *arg >= '0' && *arg <= '9'; arg++) {
        v = v * 10 + (unsigned)(*arg - '0');
        if (v > n)
            return 0;
    }
    return *arg == '\0' ? (size_t)v : 0;
}

/* The message an argument names (the first word of arg; with rest, what
 * follows it goes there, else nothing may follow), or NULL after an -ERR. */
static struct pop3_msg *pop3_arg_msg(struct pop3_mail *p, const char *arg, const char **rest)
{
    char num[24];
    size_t len = arg ? strcspn(arg, " ") : 0, i = 0;

    if (arg == NULL || len == 0) {
        pop3_fail(&p->sess, "Message number required.");
        return NULL;
    }
    if (len < sizeof(num)) {
        memcpy(num, arg, len);
        num[len] = '\0';
        i = pop3_msgno(num, p->box.n);
    }
    if (i == 0 && len < sizeof(num) && strspn(num, "0123456789") == len) {
        pop3_err(&p->sess, "There is no message %.20s.", num);
        return NULL;
    }
    if (i == 0) {
        pop3_fail(&p->sess, "Invalid message number.");
        return NULL;
    }
    if (rest) {
        *rest = arg[len] == ' ' ? arg + len + 1 : NULL;
    } else if (arg[len] != '\0') {
        pop3_fail(&p->sess, "Too many arguments.");
        return NULL;
    }
    if (p->box.msgs[i - 1].deleted) {
        pop3_err(&p->sess, "Message %zu is deleted.", i);
        return NULL;
    }
    return &p->box.msgs[i - 1];
}

static void pop3_stat(struct pop3_mail *p, const char *arg)
{
    size_t count = 0;
    long long octets = 0;

    if (arg) {
        pop3_fail(&p->sess, "STAT takes no argument.");
        return;
    }
    for (size_t i = 0; i < p->box.n; i++)
        if (!p->box.msgs[i].deleted) {
            count++;
            octets += p->box.msgs[i].size;
        }
    pop3_ok(&p->sess, "%zu %lld", count, octets);
}

/* LIST and UIDL: one message, or every one not deleted. */
static void pop3_listing(struct pop3_mail *p, const char *arg, bool uidl)
{
    struct pop3_msg *m;

    if (arg) {
        if ((m = pop3_arg_msg(p, arg, NULL)) == NULL)
            return;
        if (uidl)
            pop3_ok(&p->sess, "%zu %s", (size_t)(m - p->box.msgs) + 1, m->uidl);
        else
            pop3_ok(&p->sess, "%zu %lld", (size_t)(m - p->box.msgs) + 1, (long long)m->size);
        return;
    }
    stream_puts(p->sess.stream, "+OK\r\n");
    for (size_t i = 0; i < p->box.n; i++) {
        m = &p->box.msgs[i];
        if (m->deleted)
            continue;
        if (uidl)
            stream_printf(p->sess.stream, "%zu %s\r\n", i + 1, m->uidl);
        else
            stream_printf(p->sess.stream, "%zu %lld\r\n", i + 1, (long long)m->size);
    }
    stream_puts(p->sess.stream, ".\r\n");
}

static void pop3_retr(struct pop3_mail *p, const char *arg, bool top)
{
    const char *rest = NULL, *why = NULL;
    struct pop3_msg *m = pop3_arg_msg(p, arg, top ? &rest : NULL);
    long lines = -1;
    int rc;

    if (m == NULL)
        return;
    if (top) {
        char *end;

        errno = 0;
        if (rest == NULL || *rest < '0' || *rest > '9'
            || (lines = strtol(rest, &end, 10), errno != 0 || *end != '\0')) {
            pop3_fail(&p->sess, "Syntax: TOP message lines");
            return;
        }
    }
    rc = box_send(&p->box, m, lines, p->sess.stream, &why);
    if (rc == -1) {
        pop3_err(&p->sess, "%s", why);
        return;
    }
    if (rc == -2) {
        session_io_failed(&p->sess, STREAM_ERROR);
        return;
    }
    if (!top) {
        m->retrieved = true;
        p->retr_count++;
        p->retr_octets += m->size;
    }
}

static void pop3_dele(struct pop3_mail *p, const char *arg)
{
    struct pop3_msg *m = pop3_arg_msg(p, arg, NULL);

    if (m == NULL)
        return;
    m->deleted = true;
    pop3_ok(&p->sess, "Marked to be deleted.");
}

static void pop3_rset(struct pop3_mail *p)
{
    for (size_t i = 0; i < p->box.n; i++)
        p->box.msgs[i].deleted = false;
    pop3_ok(&p->sess, "%s", "");
}

static void pop3_quit(struct pop3_mail *p)
{
    size_t deleted = 0, marked = 0;
    long long size = 0;

    for (size_t i = 0; i < p->box.n; i++) {
        marked += p->box.msgs[i].deleted;
        size += p->box.msgs[i].size;
    }
    p->sess.done = true;
    if (box_update(&p->box, &deleted) < 0) {
        pop3_err(&p->sess, "[SYS/TEMP] Some changes could not be saved.");
    } else {
        pop3_ok(&p->sess, "Logging out.");
    }
    msg_info("logout: user=<%s>, retr=%ld/%lld, del=%zu/%zu, size=%lld", p->user,
             p->retr_count, p->retr_octets, deleted, p->box.n, size);
    (void)marked;
}

static void pop3_mail_command(struct pop3_mail *p, char *line)
{
    struct pop3_cmd cmd;

    if (pop3_parse(line, &cmd) < 0) {
        pop3_fail(&p->sess, "Unknown command.");
        return;
    }
    memcpy(p->where, cmd.name, sizeof(p->where));
    p->sess.where = p->where;
    if (strcmp(cmd.name, "STAT") == 0)
        pop3_stat(p, cmd.arg);
    else if (strcmp(cmd.name, "LIST") == 0)
        pop3_listing(p, cmd.arg, false);
    else if (strcmp(cmd.name, "UIDL") == 0)
        pop3_listing(p, cmd.arg, true);
    else if (strcmp(cmd.name, "RETR") == 0)
        pop3_retr(p, cmd.arg, false);
    else if (strcmp(cmd.name, "TOP") == 0)
        pop3_retr(p, cmd.arg, true);
    else if (strcmp(cmd.name, "DELE") == 0)
        pop3_dele(p, cmd.arg);
    else if (strcmp(cmd.name, "NOOP") == 0)
        pop3_ok(&p->sess, "%s", "");
    else if (strcmp(cmd.name, "RSET") == 0)
        pop3_rset(p);
    else if (strcmp(cmd.name, "QUIT") == 0)
        pop3_quit(p);
    else if (strcmp(cmd.name, "CAPA") == 0)
        pop3_capa(&p->sess, NULL);
    else if (strcmp(cmd.name, "USER") == 0 || strcmp(cmd.name, "PASS") == 0
             || strcmp(cmd.name, "AUTH") == 0 || strcmp(cmd.name, "APOP") == 0
             || strcmp(cmd.name, "STLS") == 0)
        pop3_fail(&p->sess, "You are logged in already.");
    else
        pop3_fail(&p->sess, "Unknown command.");
}

void pop3_mail_serve(const struct postlogin_session *ps, int home_ok)
{
    struct pop3_mail p = {0};
    struct session_limits lim;
    const char *path = conf_str("home_mailbox"), *why = NULL;
    size_t plen = strlen(path);
    buf_t *line = buf_new(0);
    int rc;

    pop3_limits(&lim);
    session_open(&p.sess, ps->fd, ps->fd, NULL, &lim);
    /* The peer is the client the login half served, not the socketpair. */
    p.sess.peer.ip = true;
    snprintf(p.sess.peer.addr_text, sizeof(p.sess.peer.addr_text), "%s", ps->client_addr);
    snprintf(p.sess.peer.port, sizeof(p.sess.peer.port), "%s", ps->client_port);
    p.sess.where = ps->mech;
    p.user = ps->user;
    stream_unread(p.sess.stream, ps->input, ps->input_len);
    session_set_goodbye(&p.sess, "-ERR [SYS/TEMP] Server shutting down.\r\n");
    signal(SIGTERM, session_on_sigterm);
    if (!home_ok || plen == 0 || path[plen - 1] != '/' || path[0] == '/') {
        if (home_ok)
            msg_warn("home_mailbox = %s is not a Maildir in the home directory: pop3d serves "
                     "only Maildir/", path);
        pop3_err(&p.sess, "[SYS/PERM] Your mailbox cannot be opened.");
        goto out;
    }
    rc = box_open(&p.box, path, &why);
    if (rc == BOX_IN_USE) {
        msg_info("login: user=<%s>, client=[%s]: the mailbox is in use by another session",
                 ps->user, ps->client_addr);
        pop3_err(&p.sess, "[IN-USE] Your mailbox is in use by another POP3 session.");
        goto out;
    }
    if (rc != BOX_OK) {
        pop3_err(&p.sess, "[SYS/TEMP] Your mailbox cannot be opened: %s.", why);
        goto out;
    }
    msg_info("login: user=<%s>, method=%s, client=[%s]:%s%s", ps->user, ps->mech,
             ps->client_addr, ps->client_port, ps->flags & HANDOVER_F_TLS ? ", TLS" : "");
    pop3_ok(&p.sess, "Logged in.");
    while (!p.sess.done) {
        ssize_t n = pop3_read_command(&p.sess, line);

        if (n == STREAM_TOOLONG)
            continue;
        if (n < 0)
            break;
        pop3_mail_command(&p, line->data);
    }
    if (p.sess.where && strcmp(p.sess.where, "QUIT") != 0)
        msg_info("disconnected: user=<%s>, retr=%ld/%lld, nothing deleted", p.user,
                 p.retr_count, p.retr_octets);
out:
    /* The mailbox goes first: a client that has the reply to its QUIT may
     * log in again at once, and must not find it still locked. */
    box_close(&p.box);
    session_close(&p.sess);
    buf_free(&line);
}
