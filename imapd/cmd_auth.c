/*
 * cmd_auth.c - IMAP commands of any state and of the authenticated
 * state: CAPABILITY, NOOP, LOGOUT, ID, ENABLE, NAMESPACE, SELECT and
 * EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST (with
 * LIST-EXTENDED, LIST-STATUS, SPECIAL-USE, CHILDREN), LSUB, STATUS,
 * APPEND (MULTIAPPEND, APPENDLIMIT), IDLE.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "conf.h"
#include "folders.h"
#include "imapd.h"
#include "imapsearch.h"
#include "maildir.h"
#include "msg.h"
#include "mutf7.h"
#include "user.h"
#include "xalloc.h"

void client_send_flag_lists(struct imap_client *c);

void cmd_capability(struct imap_client *c, const struct imap_command *cmd)
{
    buf_t *caps;

    if (cmd->nargs) {
        client_bad(c, "CAPABILITY takes no arguments.");
        return;
    }
    caps = buf_new(0);
    imap_capability_auth(caps);
    buf_printf(c->out, "* CAPABILITY %s\r\n", buf_cstr(caps));
    buf_free(&caps);
    client_tagged(c, "OK", "Capability completed.");
}

void cmd_noop(struct imap_client *c, const struct imap_command *cmd)
{
    if (cmd->nargs) {
        client_bad(c, "%s takes no arguments.", cmd->name);
        return;
    }
    client_send_updates(c, true);
    client_tagged(c, "OK", "%s completed.", cmd->name);
}

void cmd_logout(struct imap_client *c, const struct imap_command *cmd)
{
    if (cmd->nargs) {
        client_bad(c, "LOGOUT takes no arguments.");
        return;
    }
    buf_append_str(c->out, "* BYE Logging out.\r\n");
    client_tagged(c, "OK", "Logout completed.");
    c->closing = true;
}

void cmd_id(struct imap_client *c, const struct imap_command *cmd)
{
    if (cmd->nargs != 1 || (cmd->args[0].type != IMAP_ARG_NIL
                            && cmd->args[0].type != IMAP_ARG_LIST)) {
        client_bad(c, "Syntax: ID (field value ...) or ID NIL");
        return;
    }
    buf_append_str(c->out, "* ID (\"name\" \"" IMAP_IMPLEMENTATION "\")\r\n");
    client_tagged(c, "OK", "ID completed.");
}

void cmd_enable(struct imap_client *c, const struct imap_command *cmd)
{
    buf_t *done = buf_new(0);

    if (cmd->nargs == 0) {
        client_bad(c, "Syntax: ENABLE capability ...");
        buf_free(&done);
        return;
    }
    for (size_t i = 0; i < cmd->nargs; i++) {
        if (cmd->args[i].type != IMAP_ARG_ATOM) {
            client_bad(c, "Syntax: ENABLE capability ...");
            buf_free(&done);
            return;
        }
        if (strcasecmp(cmd->args[i].str, "UTF8=ACCEPT") == 0 && !c->utf8) {
            c->utf8 = true;
            buf_append_str(done, " UTF8=ACCEPT");
        } else if (strcasecmp(cmd->args[i].str, "IMAP4rev2") == 0 && !c->rev2) {
            /* RFC 9051: no \Recent, SEARCH answered as ESEARCH, mailbox
             * names in UTF-8, [CLOSED] when a SELECT closes one. */
            c->rev2 = true;
            buf_append_str(done, " IMAP4rev2");
        }
    }
    buf_printf(c->out, "* ENABLED%s\r\n", buf_cstr(done));
    buf_free(&done);
    client_tagged(c, "OK", "Enabled.");
}

void cmd_namespace(struct imap_client *c, const struct imap_command *cmd)
{
    if (cmd->nargs) {
        client_bad(c, "NAMESPACE takes no arguments.");
        return;
    }
    buf_append_str(c->out, "* NAMESPACE ((\"\" \".\")) NIL NIL\r\n");
    client_tagged(c, "OK", "Namespace completed.");
}

/* The mailbox name argument: 0 with *name and *path, or -1 answered. */
static int cmd_mailbox_arg(struct imap_client *c, const struct imap_arg *a, char **name,
                           char **path)
{
    const char *given = arg_astring(a), *why;

    if (given == NULL) {
        client_bad(c, "Invalid mailbox name.");
        return -1;
    }
    if (folder_resolve(given, CLIENT_UTF8_NAMES(c), name, path, &why) < 0) {
        client_tagged(c, "NO", "%s", why);
        return -1;
    }
    return 0;
}

static void list_reply(struct imap_client *c, bool lsub, const struct folder *f, unsigned opts,
                       bool childinfo);

/* IMAP4rev2 (RFC 9051 6.3.2): SELECT and EXAMINE say the mailbox's LIST
 * line too, with accurate attributes. */
static void select_list_line(struct imap_client *c, const char *name)
{
    struct folder *f;
    size_t n = folders_list(&f);

    for (size_t i = 0; i < n; i++)
        if (strcmp(f[i].name, name) == 0) {
            list_reply(c, false, &f[i], 0, false);
            break;
        }
    folders_free(f, n);
}

void cmd_select(struct imap_client *c, const struct imap_command *cmd)
{
    bool examine = strcmp(cmd->name, "EXAMINE") == 0;
    char *name, *path;
    const char *why;
    struct imap_mbox *mb;
    struct imap_view *v;
    uint32_t unseen = 0;

    if (cmd->nargs != 1) {
        client_bad(c, "Syntax: %s mailbox", cmd->name);
        return;
    }
    if (c->state == IMAP_SELECTED) {
        client_unselect(c);
        if (c->rev2)
            buf_append_str(c->out, "* OK [CLOSED] Previous mailbox closed.\r\n");
    }
    if (cmd_mailbox_arg(c, &cmd->args[0], &name, &path) < 0)
        return;
    if ((mb = mbox_open(name, path, &why)) == NULL) {
        client_open_failed(c, why, false);
        free(name);
        free(path);
        return;
    }
    v = c->view = view_new(mb, examine, client_wake, c);
    c->state = IMAP_SELECTED;
    client_send_flag_lists(c);
    buf_printf(c->out, "* %zu EXISTS\r\n", v->n);
    if (!c->rev2)
        buf_printf(c->out, "* %zu RECENT\r\n", v->nrecent);
    for (size_t i = 0; i < v->n && unseen == 0 && !c->rev2; i++) {
        struct imap_msg *m = mbox_find_uid(mb, v->uids[i]);

        if (m && !(m->flags & IMAP_F_SEEN))
            unseen = (uint32_t)(i + 1);
    }
    if (unseen)
        buf_printf(c->out, "* OK [UNSEEN %u] First unseen.\r\n", unseen);
    buf_printf(c->out, "* OK [UIDVALIDITY %u] UIDs valid.\r\n", mb->uidvalidity);
    buf_printf(c->out, "* OK [UIDNEXT %u] Predicted next UID.\r\n", mb->uidnext);
    if (c->rev2)
        select_list_line(c, name);
    client_tagged(c, "OK", "[%s] %s completed.", examine ? "READ-ONLY" : "READ-WRITE",
                  examine ? "Examine" : "Select");
    free(name);
    free(path);
}

void cmd_create(struct imap_client *c, const struct imap_command *cmd)
{
    char *name, *path;
    const char *why;
    size_t len;

    if (cmd->nargs != 1) {
        client_bad(c, "Syntax: CREATE mailbox");
        return;
    }
    /* A trailing delimiter only says the client means to create children
     * (RFC 9051 6.3.4): the name is without it. */
    {
        const char *given = arg_astring(&cmd->args[0]);
        char *trimmed;
        struct imap_arg a = cmd->args[0];

        if (given == NULL) {
            client_bad(c, "Invalid mailbox name.");
            return;
        }
        trimmed = xstrdup(given);
        len = strlen(trimmed);
        if (len > 1 && trimmed[len - 1] == FOLDER_DELIM)
            trimmed[len - 1] = '\0';
        a.str = trimmed;
        a.len = strlen(trimmed);
        if (cmd_mailbox_arg(c, &a, &name, &path) < 0) {
            free(trimmed);
            return;
        }
        free(trimmed);
    }
    if (folder_create(name, path, &why) < 0)
        client_tagged(c, "NO", "%s", why);
    else
        client_tagged(c, "OK", "Create completed.");
    free(name);
    free(path);
}

void cmd_delete(struct imap_client *c, const struct imap_command *cmd)
{
    char *name, *path;
    const char *why;

    if (cmd->nargs != 1) {
        client_bad(c, "Syntax: DELETE mailbox");
        return;
    }
    if (cmd_mailbox_arg(c, &cmd->args[0], &name, &path) < 0)
        return;
    if (c->view && strcmp(c->view->mb->path, path) == 0)
        client_unselect(c);
    if (folder_delete(name, path, &why) < 0)
        client_tagged(c, "NO", "%s", why);
    else
        client_tagged(c, "OK", "Delete completed.");
    free(name);
    free(path);
}

void cmd_rename(struct imap_client *c, const struct imap_command *cmd)
{
    char *from, *from_path, *to, *to_path;
    const char *why;

    if (cmd->nargs != 2) {
        client_bad(c, "Syntax: RENAME mailbox newname");
        return;
    }
    if (cmd_mailbox_arg(c, &cmd->args[0], &from, &from_path) < 0)
        return;
    if (cmd_mailbox_arg(c, &cmd->args[1], &to, &to_path) < 0) {
        free(from);
        free(from_path);
        return;
    }
    if (strcmp(from, "INBOX") == 0 || strcmp(to, "INBOX") == 0) {
        client_tagged(c, "NO", "[CANNOT] Renaming INBOX is not supported here.");
    } else if (!folder_exists(from_path)) {
        client_tagged(c, "NO", "[NONEXISTENT] Mailbox does not exist.");
    } else if (strncmp(to, from, strlen(from)) == 0 && to[strlen(from)] == FOLDER_DELIM) {
        client_tagged(c, "NO", "[CANNOT] Cannot rename a mailbox into itself.");
    } else if (folder_rename(from, from_path, to, to_path, &why) < 0) {
        client_tagged(c, "NO", "%s", why);
    } else {
        client_tagged(c, "OK", "Rename completed.");
    }
    free(from);
    free(from_path);
    free(to);
    free(to_path);
}

void cmd_subscribe(struct imap_client *c, const struct imap_command *cmd)
{
    bool on = strcmp(cmd->name, "SUBSCRIBE") == 0;
    char *name, *path;

    if (cmd->nargs != 1) {
        client_bad(c, "Syntax: %s mailbox", cmd->name);
        return;
    }
    if (cmd_mailbox_arg(c, &cmd->args[0], &name, &path) < 0)
        return;
    if (folder_subscribe(name, on) < 0)
        client_tagged(c, "NO", "[SERVERBUG] Cannot save the subscriptions.");
    else
        client_tagged(c, "OK", "%s completed.", on ? "Subscribe" : "Unsubscribe");
    free(name);
    free(path);
}

/* ---------------------------------------------------------------- STATUS */

enum {
    ST_MESSAGES = 1, ST_RECENT = 2, ST_UIDNEXT = 4, ST_UIDVALIDITY = 8, ST_UNSEEN = 16,
    ST_SIZE = 32, ST_DELETED = 64,
};

static int status_items(const struct imap_arg *a, unsigned *items)
{
    static const struct {
        const char *name;
        unsigned    bit;
    } names[] = {
        {"MESSAGES", ST_MESSAGES}, {"RECENT", ST_RECENT}, {"UIDNEXT", ST_UIDNEXT},
        {"UIDVALIDITY", ST_UIDVALIDITY}, {"UNSEEN", ST_UNSEEN}, {"SIZE", ST_SIZE},
        {"DELETED", ST_DELETED},
    };

    *items = 0;
    if (a->type != IMAP_ARG_LIST || a->nlist == 0)
        return -1;
    for (size_t i = 0; i < a->nlist; i++) {
        size_t j;

        for (j = 0; j < sizeof(names) / sizeof(names[0]); j++)
            if (arg_is_atom(&a->list[i], names[j].name))
                break;
        if (j == sizeof(names) / sizeof(names[0]))
            return -1;
        *items |= names[j].bit;
    }
    return 0;
}

/* "* STATUS name (...)": 0, or -1 with *why. */
static int status_line(struct imap_client *c, const char *name, const char *path,
                       unsigned items, const char **why)
{
    struct imap_mbox *mb = mbox_open(name, path, why);
    size_t unseen = 0, deleted = 0, recent = 0;
    uint64_t size = 0;
    const char *sep = "";

    if (mb == NULL)
        return -1;
    for (size_t i = 0; i < mb->nmsgs; i++) {
        struct imap_msg *m = mb->msgs[i];

        if (!(m->flags & IMAP_F_SEEN))
            unseen++;
        if (m->flags & IMAP_F_DELETED)
            deleted++;
        if (m->uid >= mb->first_recent)
            recent++;
        if (items & ST_SIZE)
            size += mbox_msg_vsize(mb, m);
    }
    buf_append_str(c->out, "* STATUS ");
    folder_put_name(c->out, name, CLIENT_UTF8_NAMES(c));
    buf_append_str(c->out, " (");
#define STATUS_ITEM(bit, fmt, val) \
    if (items & (bit)) { buf_printf(c->out, "%s" fmt, sep, val); sep = " "; }
    STATUS_ITEM(ST_MESSAGES, "MESSAGES %zu", mb->nmsgs);
    STATUS_ITEM(ST_RECENT, "RECENT %zu", recent);
    STATUS_ITEM(ST_UIDNEXT, "UIDNEXT %u", mb->uidnext);
    STATUS_ITEM(ST_UIDVALIDITY, "UIDVALIDITY %u", mb->uidvalidity);
    STATUS_ITEM(ST_UNSEEN, "UNSEEN %zu", unseen);
    STATUS_ITEM(ST_SIZE, "SIZE %llu", (unsigned long long)size);
    STATUS_ITEM(ST_DELETED, "DELETED %zu", deleted);
#undef STATUS_ITEM
    buf_append_str(c->out, ")\r\n");
    mbox_close(&mb);
    return 0;
}

void cmd_status(struct imap_client *c, const struct imap_command *cmd)
{
    char *name, *path;
    unsigned items;
    const char *why;

    if (cmd->nargs != 2 || status_items(&cmd->args[1], &items) < 0) {
        client_bad(c, "Syntax: STATUS mailbox (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN "
                   "SIZE DELETED)");
        return;
    }
    if (cmd_mailbox_arg(c, &cmd->args[0], &name, &path) < 0)
        return;
    if (status_line(c, name, path, items, &why) < 0)
        client_open_failed(c, why, false);
    else
        client_tagged(c, "OK", "Status completed.");
    free(name);
    free(path);
}

/* ------------------------------------------------------------------ LIST */

enum {
    LS_SUBSCRIBED = 1, LS_REMOTE = 2, LS_RECURSIVE = 4, LS_SPECIAL = 8,     /* selection */
    LR_SUBSCRIBED = 16, LR_CHILDREN = 32, LR_SPECIAL = 64, LR_STATUS = 128,  /* return */
};

static int list_options(const struct imap_arg *a, bool ret, unsigned *opts, unsigned *items)
{
    for (size_t i = 0; i < a->nlist; i++) {
        const struct imap_arg *o = &a->list[i];

        if (!ret && arg_is_atom(o, "SUBSCRIBED"))
            *opts |= LS_SUBSCRIBED;
        else if (!ret && arg_is_atom(o, "REMOTE"))
            *opts |= LS_REMOTE;
        else if (!ret && arg_is_atom(o, "RECURSIVEMATCH"))
            *opts |= LS_RECURSIVE;
        else if (!ret && arg_is_atom(o, "SPECIAL-USE"))
            *opts |= LS_SPECIAL;
        else if (ret && arg_is_atom(o, "SUBSCRIBED"))
            *opts |= LR_SUBSCRIBED;
        else if (ret && arg_is_atom(o, "CHILDREN"))
            *opts |= LR_CHILDREN;
        else if (ret && arg_is_atom(o, "SPECIAL-USE"))
            *opts |= LR_SPECIAL;
        else if (ret && arg_is_atom(o, "STATUS") && i + 1 < a->nlist
                 && status_items(&a->list[i + 1], items) == 0) {
            *opts |= LR_STATUS;
            i++;
        } else
            return -1;
    }
    /* RFC 5258 3: RECURSIVEMATCH needs another selection option. */
    if ((*opts & LS_RECURSIVE) && !(*opts & (LS_SUBSCRIBED | LS_SPECIAL)))
        return -1;
    return 0;
}

/* A pattern as kept names are (modified UTF-7). */
static char *list_pattern(struct imap_client *c, const char *ref, const char *pat)
{
    char *full = xasprintf("%s%s", ref, pat);
    buf_t *b;

    if (!CLIENT_UTF8_NAMES(c))
        return full;
    b = buf_new(0);
    if (mutf7_encode(full, b) < 0) {
        buf_free(&b);
        return full;
    }
    free(full);
    return buf_steal(b, NULL);
}

static void list_reply(struct imap_client *c, bool lsub, const struct folder *f, unsigned opts,
                       bool childinfo)
{
    const char *use = folder_special_use(f->name);
    const char *sep = "";

    buf_printf(c->out, "* %s (", lsub ? "LSUB" : "LIST");
#define ATTR(s) do { buf_printf(c->out, "%s%s", sep, s); sep = " "; } while (0)
    if (!f->selectable)
        ATTR(f->children || lsub ? "\\Noselect" : "\\NonExistent");
    if (!lsub)
        ATTR(f->children ? "\\HasChildren" : "\\HasNoChildren");
    if ((opts & (LR_SUBSCRIBED | LS_SUBSCRIBED)) && f->subscribed && !lsub)
        ATTR("\\Subscribed");
    if (use && f->selectable && !lsub)
        ATTR(use);
#undef ATTR
    buf_printf(c->out, ") \"%c\" ", FOLDER_DELIM);
    folder_put_name(c->out, f->name, CLIENT_UTF8_NAMES(c));
    if (childinfo)
        buf_append_str(c->out, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
    buf_append_str(c->out, "\r\n");
}

void cmd_list(struct imap_client *c, const struct imap_command *cmd)
{
    bool lsub = strcmp(cmd->name, "LSUB") == 0;
    const struct imap_arg *args = cmd->args;
    size_t nargs = cmd->nargs, npat = 0, nf;
    unsigned opts = 0, items = 0;
    const char *ref, *pats[64];
    struct folder *f;
    char **subs = NULL;
    size_t nsubs = 0;

    if (!lsub && nargs > 0 && args[0].type == IMAP_ARG_LIST) {
        if (list_options(&args[0], false, &opts, &items) < 0) {
            client_bad(c, "Invalid LIST selection options.");
            return;
        }
        args++;
        nargs--;
    }
    if (!lsub && nargs == 4 && arg_is_atom(&args[2], "RETURN") && args[3].type == IMAP_ARG_LIST) {
        if (list_options(&args[3], true, &opts, &items) < 0) {
            client_bad(c, "Invalid LIST return options.");
            return;
        }
        nargs = 2;
    }
    if (nargs != 2 || (ref = arg_astring(&args[0])) == NULL) {
        client_bad(c, "Syntax: %s reference mailbox", cmd->name);
        return;
    }
    if (!lsub && args[1].type == IMAP_ARG_LIST) {
        for (size_t i = 0; i < args[1].nlist && npat < 64; i++)
            if ((pats[npat++] = arg_astring(&args[1].list[i])) == NULL) {
                client_bad(c, "Invalid mailbox pattern.");
                return;
            }
    } else if ((pats[npat++] = arg_astring(&args[1])) == NULL) {
        client_bad(c, "Invalid mailbox pattern.");
        return;
    }
    if (!lsub && npat == 1 && pats[0][0] == '\0' && opts == 0) {
        /* The hierarchy delimiter and the root (RFC 9051 6.3.9). */
        buf_printf(c->out, "* LIST (\\Noselect) \"%c\" \"\"\r\n", FOLDER_DELIM);
        client_tagged(c, "OK", "List completed.");
        return;
    }
    nf = folders_list(&f);
    if (lsub || (opts & (LS_SUBSCRIBED))) {
        /* Subscribed names that are not folders are listed too. */
        subs = folder_subscriptions(&nsubs);
        for (size_t i = 0; i < nsubs; i++) {
            bool have = false;

            for (size_t j = 0; j < nf && !have; j++)
                have = strcmp(f[j].name, subs[i]) == 0;
            if (!have) {
                f = xreallocarray(f, nf + 1, sizeof(*f));
                memset(&f[nf], 0, sizeof(f[nf]));
                f[nf].name = xstrdup(subs[i]);
                f[nf].subscribed = true;
                nf++;
            }
        }
    }
    for (size_t i = 0; i < nf; i++) {
        bool match = false, childinfo = false;

        for (size_t p = 0; p < npat && !match; p++) {
            char *pat = list_pattern(c, ref, pats[p]);

            match = folder_match(pat, f[i].name);
            free(pat);
        }
        if (!match)
            continue;
        if (lsub || (opts & LS_SUBSCRIBED)) {
            if (!f[i].subscribed) {
                /* RECURSIVEMATCH: a parent of subscribed names. */
                size_t len = strlen(f[i].name);

                for (size_t j = 0; j < nf && !childinfo; j++)
                    childinfo = f[j].subscribed && strncmp(f[j].name, f[i].name, len) == 0
                                && f[j].name[len] == FOLDER_DELIM;
                if (!childinfo || !(opts & LS_RECURSIVE))
                    continue;
            }
        }
        if ((opts & LS_SPECIAL) && folder_special_use(f[i].name) == NULL)
            continue;
        list_reply(c, lsub, &f[i], opts, childinfo);
        if ((opts & LR_STATUS) && f[i].selectable) {
            char *path = xasprintf("%s%s%s", user_maildir(),
                                   strcmp(f[i].name, "INBOX") ? "/." : "",
                                   strcmp(f[i].name, "INBOX") ? f[i].name : "");
            const char *why;

            status_line(c, f[i].name, path, items, &why);
            free(path);
        }
    }
    for (size_t i = 0; i < nsubs; i++)
        free(subs[i]);
    free(subs);
    folders_free(f, nf);
    client_tagged(c, "OK", "%s completed.", lsub ? "Lsub" : "List");
}

/* ---------------------------------------------------------------- APPEND */

/* Flags from a flag list (APPEND, STORE): system bits and keyword ids
 * (created in mb).  -1 with *why for a BAD. */
int cmd_flag_list(struct imap_mbox *mb, const struct imap_arg *a, bool create, unsigned *flags,
                  uint32_t **kw, uint32_t *nkw, const char **why);

struct append_msg {
    unsigned          flags;
    uint32_t         *kw;
    uint32_t          nkw;
    time_t            date;
    bool              has_date;
    const struct imap_arg *data;
};

static void append_write(maildir_writer_t *w, const char *data, size_t len)
{
    size_t start = 0;

    /* Stored as local stores mail: LF line ends. */
    for (size_t i = 0; i + 1 < len; i++)
        if (data[i] == '\r' && data[i + 1] == '\n') {
            maildir_writer_write(w, data + start, i - start);
            start = i + 1;
        }
    maildir_writer_write(w, data + start, len - start);
}

void cmd_append(struct imap_client *c, const struct imap_command *cmd)
{
    struct append_msg msgs[64];
    size_t n = 0, i = 1;
    char *name = NULL, *path = NULL;
    const char *why = NULL;
    struct imap_mbox *mb = NULL;
    struct maildir_commit commits[64];
    struct imap_add adds[64];
    char *files[64];
    buf_t *uids = buf_new(0);
    long long limit = imap_append_limit();

    memset(msgs, 0, sizeof(msgs));
    memset(files, 0, sizeof(files));
    if (cmd->nargs < 2) {
        client_bad(c, "Syntax: APPEND mailbox [(flags)] [date-time] message");
        buf_free(&uids);
        return;
    }
    if (cmd_mailbox_arg(c, &cmd->args[0], &name, &path) < 0) {
        buf_free(&uids);
        return;
    }
    if ((mb = mbox_open(name, path, &why)) == NULL) {
        client_open_failed(c, why, true);
        goto out;
    }
    /* MULTIAPPEND (RFC 3502): any number of [flags] [date] message. */
    while (i < cmd->nargs) {
        struct append_msg *m;

        if (n == 64) {
            client_tagged(c, "NO", "[LIMIT] At most 64 messages in one APPEND.");
            goto out;
        }
        m = &msgs[n];
        if (cmd->args[i].type == IMAP_ARG_LIST) {
            if (cmd_flag_list(mb, &cmd->args[i], true, &m->flags, &m->kw, &m->nkw, &why) < 0) {
                client_bad(c, "%s", why);
                goto out;
            }
            i++;
        }
        if (i < cmd->nargs && cmd->args[i].type == IMAP_ARG_STRING) {
            int tz;

            if (imap_parse_datetime(cmd->args[i].str, &m->date, &tz) < 0) {
                client_bad(c, "Invalid date-time.");
                goto out;
            }
            m->has_date = true;
            i++;
        }
        if (c->utf8 && i + 1 < cmd->nargs && arg_is_atom(&cmd->args[i], "UTF8")
            && cmd->args[i + 1].type == IMAP_ARG_LIST && cmd->args[i + 1].nlist == 1
            && cmd->args[i + 1].list[0].type == IMAP_ARG_LITERAL) {
            /* RFC 6855 4: UTF8 (literal8), a message with UTF-8 headers. */
            m->data = &cmd->args[i + 1].list[0];
            i++;
        } else if (i < cmd->nargs && cmd->args[i].type == IMAP_ARG_LITERAL) {
            m->data = &cmd->args[i];
        }
        if (m->data == NULL) {
            client_bad(c, "Syntax: APPEND mailbox [(flags)] [date-time] message");
            goto out;
        }
        if (m->data->len == 0) {
            client_tagged(c, "NO", "Cannot append an empty message.");
            goto out;
        }
        if (limit > 0 && (long long)m->data->len > limit) {
            client_tagged(c, "NO", "[TOOBIG] Message too large (APPENDLIMIT=%lld).", limit);
            goto out;
        }
        i++;
        n++;
    }
    /* All or none: every message written and synced, then all placed. */
    for (size_t k = 0; k < n; k++) {
        char *err = NULL;

        if (maildir_writer_open(path, &commits[k].w, &err) < 0) {
            msg_warn("%s: APPEND: %s", user_name(), err);
            free(err);
            for (size_t j = 0; j < k; j++)
                maildir_writer_abort(&commits[j].w);
            client_tagged(c, "NO", "[SERVERBUG] Cannot save the message.");
            goto out;
        }
        append_write(commits[k].w, msgs[k].data->str, msgs[k].data->len);
    }
    maildir_commit_many(commits, n);
    for (size_t k = 0; k < n; k++)
        if (commits[k].result != 0) {
            msg_warn("%s: APPEND: %s", user_name(), commits[k].why ? commits[k].why : "failed");
            for (size_t j = 0; j < n; j++) {
                if (commits[j].result == 0 && commits[j].path)
                    unlink(commits[j].path);
                free(commits[j].path);
                free(commits[j].why);
            }
            client_tagged(c, "NO", "[SERVERBUG] Cannot save the message.");
            goto out;
        }
    for (size_t k = 0; k < n; k++) {
        char *file = xstrdup(strrchr(commits[k].path, '/') + 1);
        uint8_t dir = MSG_NEW;
        struct timespec ts[2];
        int fd;

        if (msgs[k].has_date) {
            ts[0].tv_sec = ts[1].tv_sec = msgs[k].date;
            ts[0].tv_nsec = ts[1].tv_nsec = 0;
            utimensat(AT_FDCWD, commits[k].path, ts, 0);
        } else {
            msgs[k].date = time(NULL);
        }
        if (msgs[k].flags) {
            char letters[8];
            size_t nl = 0;
            char *to;

            if (msgs[k].flags & IMAP_F_DRAFT) letters[nl++] = 'D';
            if (msgs[k].flags & IMAP_F_FLAGGED) letters[nl++] = 'F';
            if (msgs[k].flags & IMAP_F_ANSWERED) letters[nl++] = 'R';
            if (msgs[k].flags & IMAP_F_SEEN) letters[nl++] = 'S';
            if (msgs[k].flags & IMAP_F_DELETED) letters[nl++] = 'T';
            letters[nl] = '\0';
            to = xasprintf("%s:2,%s", file, letters);
            if (renameat(mb->newfd, file, mb->curfd, to) == 0) {
                free(file);
                file = to;
                dir = MSG_CUR;
            } else {
                free(to);
            }
        }
        (void)fd;
        files[k] = file;
        adds[k] = (struct imap_add){
            .file = file, .dir = dir, .idate = msgs[k].date,
            .vsize = msgs[k].data->len + 0, .flags = msgs[k].flags,
            .kw = msgs[k].kw, .nkw = msgs[k].nkw,
        };
        {
            /* RFC822.SIZE is the size with CRLF line ends. */
            const char *d = msgs[k].data->str;
            size_t len = msgs[k].data->len, lf = 0;

            for (size_t j = 0; j < len; j++)
                if (d[j] == '\n' && (j == 0 || d[j - 1] != '\r'))
                    lf++;
            adds[k].vsize = len + lf;
        }
        free(commits[k].path);
        free(commits[k].why);
    }
    if (mbox_add_files(mb, adds, n) < 0) {
        client_tagged(c, "NO", "[SERVERBUG] Cannot index the message.");
        goto out;
    }
    for (size_t k = 0; k < n; k++)
        buf_printf(uids, "%s%u", k ? "," : "", adds[k].uid);
    client_send_updates(c, true);
    client_tagged(c, "OK", "[APPENDUID %u %s] Append completed.", mb->uidvalidity,
                  buf_cstr(uids));
out:
    for (size_t k = 0; k < 64; k++) {
        free(msgs[k].kw);
        free(files[k]);
    }
    mbox_close(&mb);
    buf_free(&uids);
    free(name);
    free(path);
}

/* ------------------------------------------------------------------ IDLE */

void cmd_idle(struct imap_client *c, const struct imap_command *cmd)
{
    if (cmd->nargs) {
        client_bad(c, "IDLE takes no arguments.");
        return;
    }
    buf_append_str(c->out, "+ idling\r\n");
    c->idling = true;
    c->idle_tag = xstrdup(cmd->tag);
    client_send_updates(c, true);
}
