/*
 * alias.c - local's alias expansion: which accounts get a copy of mail
 * for one local recipient (aliases(5), alias_maps).
 *
 * The recipient's local part (lower-cased) is looked up in each table of
 * alias_maps in order; "user+tag" that is no alias is looked up as "user"
 * (recipient_delimiter).  Not found: the name is an account.  Found: the
 * value is a list of targets separated by commas (a target in double
 * quotes may contain commas), each expanded in turn:
 *   name, name@local-domain  expanded again (nested aliases and lists);
 *                            a name that is being expanded already (the
 *                            alias names itself, "user: user, copy") is
 *                            the account of that name, as in Postfix;
 *   \name                    the account, never expanded further;
 *   |command                 run with the message on its standard input,
 *   /file                    or the message appended in mbox format, as
 *                            the owner of the table (default_privs if that
 *                            is root), never as root;
 *   :include:/file           the file's lines are more targets; its
 *                            commands and files run as its owner;
 *   name@remote-domain       forwarded: a target ">address" that local
 *                            hands to cleanup as a new message, from a
 *                            child running as mail_owner.
 * alias_expand_forward() expands the content of an account's ~/.forward
 * (which the delivery child read as that account) the same way: its
 * commands and files run as the account (root's: as default_privs), its
 * own name and "\name" are its mailbox.
 *
 * An account is listed once however often it is reached.  Expansion deeper
 * than ALIAS_MAX_DEPTH is an alias loop (5.4.6).  A table that cannot be
 * read defers the recipient (4.3.0).
 *
 * Tables are opened once and kept; lib/map notices a rebuilt table
 * ("mailctl newaliases") at the next lookup, so an edit takes effect
 * without a restart.
 *
 * Failure modes: all are results (4.x / 5.x with a text for qmgr and the
 * bounce); nothing here is fatal.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "buf.h"
#include "conf.h"
#include "local.h"
#include "map.h"
#include "xalloc.h"

#define ALIAS_MAX_DEPTH   LOCAL_MAX_DEPTH
#define ALIAS_MAX_USERS   10000

struct alias_state {
    struct alias_result *res;
    uid_t found_owner;          /* owner of the table the last lookup hit */
    uid_t owner;                /* ... of the table being expanded */
    const char *forward_owner;  /* expanding this account's .forward */
    int in_forward;             /* at its top level (not inside a table) */
    const char *stack[ALIAS_MAX_DEPTH + 1];
    int depth;
};

static int alias_fail(struct alias_result *res, int cls, const char *dsn, char *text)
{
    res->dsn_class = cls;
    res->dsn = dsn;
    free(res->text);
    res->text = text;
    return -1;
}

static int alias_add_user(struct alias_state *st, const char *name, int no_forward)
{
    struct alias_result *res = st->res;

    for (size_t i = 0; i < res->nusers; i++)
        if (strcmp(res->users[i], name) == 0) {
            res->no_forward[i] |= no_forward;
            return 0;
        }
    if (res->nusers >= ALIAS_MAX_USERS)
        return alias_fail(res, 5, "5.3.4", xasprintf("alias expansion gives more than %d "
                                                     "recipients", ALIAS_MAX_USERS));
    res->users = xreallocarray(res->users, res->nusers + 1, sizeof(*res->users));
    res->no_forward = xreallocarray(res->no_forward, res->nusers + 1, sizeof(*res->no_forward));
    res->no_forward[res->nusers] = no_forward;
    res->users[res->nusers++] = xstrdup(name);
    return 0;
}

static int alias_add_target_as(struct alias_state *st, const char *alias, const char *command,
                               const char *user);

/* A |command or /file target ("|" or "/" first): delivered as the owner of
 * the table or .forward it came from, or as default_privs when that is
 * root (root's own ~/.forward included): nothing a table or a .forward
 * names ever runs as root. */
static int alias_add_target(struct alias_state *st, const char *alias, const char *command)
{
    struct passwd *pw = st->owner != 0 ? getpwuid(st->owner) : NULL;
    const char *user = st->owner == 0 ? conf_str("default_privs")
                       : st->in_forward ? st->forward_owner
                       : pw ? pw->pw_name : conf_str("default_privs");

    return alias_add_target_as(st, alias, command, user);
}

static int alias_add_target_as(struct alias_state *st, const char *alias, const char *command,
                               const char *user)
{
    struct alias_result *res = st->res;
    const char *rest = command + 1;

    while (*rest == ' ' || *rest == '\t')
        rest++;
    if (*rest == '\0')
        return alias_fail(res, 5, "5.3.5", xasprintf("alias %s: empty %s", alias,
                                                     *command == '|' ? "command" : "file name"));
    for (size_t i = 0; i < res->ntargets; i++)
        if (strcmp(res->targets[i], command) == 0 && strcmp(res->target_users[i], user) == 0)
            return 0;
    if (res->ntargets >= ALIAS_MAX_USERS)
        return alias_fail(res, 5, "5.3.4", xasprintf("alias expansion gives more than %d "
                                                     "commands", ALIAS_MAX_USERS));
    res->targets = xreallocarray(res->targets, res->ntargets + 1, sizeof(*res->targets));
    res->target_users = xreallocarray(res->target_users, res->ntargets + 1,
                                       sizeof(*res->target_users));
    res->targets[res->ntargets] = xstrdup(command);
    res->target_users[res->ntargets++] = xstrdup(user);
    return 0;
}

/* Look name up in alias_maps: 1 found (*value fresh), 0 not, -1 failed. */
static int alias_lookup(struct alias_state *st, const char *name, char **value)
{
    char **maps = conf_split(conf_str("alias_maps"));
    int rc = 0;

    for (size_t i = 0; maps[i] && rc == 0; i++) {
        char *err = NULL;
        map_t *m = map_cached(maps[i], &err);

        if (m == NULL) {
            rc = alias_fail(st->res, 4, "4.3.0", xasprintf("alias table unavailable: %s", err));
            free(err);
            break;
        }
        rc = map_lookup(m, name, value);
        if (rc > 0) {
            /* The table's owner runs its commands (root: default_privs). */
            char *path = xasprintf("%s.db", strchr(maps[i], ':') + 1);
            struct stat sb;

            st->found_owner = stat(path, &sb) == 0 ? sb.st_uid : 0;
            free(path);
        }
        if (rc < 0)
            alias_fail(st->res, 4, "4.3.0", xasprintf("alias table %s: lookup failed", maps[i]));
    }
    conf_split_free(&maps);
    return rc;
}

static int alias_expand_name(struct alias_state *st, const char *name);
static int alias_targets(struct alias_state *st, const char *alias, const char *value);

struct alias_split_ctx {
    struct alias_state *st;
    const char *alias;
};

static int alias_split_target(void *ctx, char *target);

/* :include:/path: the file's lines are more targets (comma separated, '#'
 * comments); its commands and files run as the file's owner (root:
 * default_privs).  The file is read with the privileges of the owner of
 * the table or file that names it (include_read: as root only for root's
 * own and only through directories root alone can change, else as
 * default_privs), must be a regular file of one link and at most LOCAL_FILE_MAX
 * bytes, and is never reached through a symbolic link; one that cannot be
 * used defers (4.3.0).  A .forward's :include: files were read by the
 * delivery child already: one here is refused. */
static int alias_include(struct alias_state *st, const char *alias, const char *path)
{
    struct stat sb;
    buf_t *text;
    char *why;
    int rc = 0;
    uid_t outer = st->owner;

    while (*path == ' ' || *path == '\t')
        path++;
    if (st->in_forward)
        return alias_fail(st->res, 4, "4.3.0", xasprintf("the .forward of %s: unexpected "
                                                         ":include:%s", alias, path));
    if (*path != '/')
        return alias_fail(st->res, 5, "5.3.5", xasprintf("alias %s: :include: needs an absolute "
                                                         "path, not \"%s\"", alias, path));
    for (int i = 0; i < st->depth; i++)
        if (strcmp(st->stack[i], path) == 0)
            return alias_fail(st->res, 5, "5.4.6", xasprintf("alias %s: :include:%s includes "
                                                             "itself", alias, path));
    if (st->depth >= ALIAS_MAX_DEPTH)
        return alias_fail(st->res, 5, "5.4.6", xasprintf("alias expansion loop (more than %d "
                                                         "levels at :include:%s)",
                                                         ALIAS_MAX_DEPTH, path));
    if (include_read(st->owner, path, NULL, 0, &text, &sb, &why) < 0) {
        rc = alias_fail(st->res, 4, "4.3.0", xasprintf("alias %s: cannot use :include:%s: %s",
                                                       alias, path, why));
        free(why);
        return rc;
    }
    st->owner = sb.st_uid;
    st->stack[st->depth++] = path;
    {
        struct alias_split_ctx c = { st, alias };

        rc = alias_split_lines(buf_cstr(text), alias_split_target, &c);
    }
    st->depth--;
    st->owner = outer;
    buf_free(&text);
    return rc;
}

/* One target of an alias value (trimmed, quotes removed). */
static int alias_target(struct alias_state *st, const char *alias, char *t)
{
    char *at;

    if (*t == '\0')
        return 0;
    if (*t == '\\')
        return alias_add_user(st, t + 1, 1);   /* the mailbox itself: no .forward */
    if (*t == '|' || *t == '/')
        return alias_add_target(st, alias, t);
    if (strncasecmp(t, ":include:", 9) == 0)
        return alias_include(st, alias, t + 9);
    at = strrchr(t, '@');
    if (at) {
        if (!addr_domain_is_local(at + 1)) {
            /* Forwarded through cleanup by a child running as mail_owner. */
            char *fwd = xasprintf(">%s", t);
            int rc = alias_add_target_as(st, alias, fwd, conf_str("mail_owner"));

            free(fwd);
            return rc;
        }
        *at = '\0';
    }
    for (char *p = t; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return alias_expand_name(st, t);
}

int alias_split(const char *value, int (*fn)(void *ctx, char *target), void *ctx)
{
    char *copy = xstrdup(value), *p = copy, *start = copy, *out = copy;
    int quoted = 0, rc = 0;

    for (;; p++) {
        if (*p == '"') {
            quoted = !quoted;
            continue;
        }
        if (*p == '\0' || (*p == ',' && !quoted)) {
            char *t = start, *end = out;
            int last = *p == '\0';

            *out = '\0';
            while (*t == ' ' || *t == '\t')
                t++;
            while (end > t && (end[-1] == ' ' || end[-1] == '\t'))
                *--end = '\0';
            if ((rc = fn(ctx, t)) != 0 || last)
                break;
            start = out = p + 1;
            continue;
        }
        *out++ = *p;
    }
    free(copy);
    return rc;
}

static int alias_split_target(void *ctx, char *target)
{
    struct alias_split_ctx *c = ctx;

    return alias_target(c->st, c->alias, target);
}

/* Split a value into targets and expand each. */
static int alias_targets(struct alias_state *st, const char *alias, const char *value)
{
    struct alias_split_ctx c = { st, alias };

    return alias_split(value, alias_split_target, &c);
}

int alias_split_lines(const char *text, int (*fn)(void *ctx, char *target), void *ctx)
{
    char *copy = xstrdup(text), *save = NULL;
    int rc = 0;

    for (char *line = strtok_r(copy, "\n", &save); line && rc == 0;
         line = strtok_r(NULL, "\n", &save)) {
        while (*line == ' ' || *line == '\t')
            line++;
        if (*line != '#' && *line != '\0')
            rc = alias_split(line, fn, ctx);
    }
    free(copy);
    return rc;
}

static int alias_expand_name(struct alias_state *st, const char *name)
{
    char *value = NULL, *base = NULL;
    const char *key = name;
    int rc;

    for (int i = 0; i < st->depth; i++)
        if (strcmp(st->stack[i], name) == 0)
            return alias_add_user(st, name, st->forward_owner != NULL
                                                  && strcmp(name, st->forward_owner) == 0);
    if (st->depth >= ALIAS_MAX_DEPTH)
        return alias_fail(st->res, 5, "5.4.6",
                          xasprintf("alias expansion loop (more than %d levels at %s)",
                                    ALIAS_MAX_DEPTH, name));
    rc = alias_lookup(st, key, &value);
    if (rc == 0 && (base = addr_unextended(name)) != NULL) {
        key = base;
        rc = alias_lookup(st, key, &value);
    }
    if (rc < 0)
        goto out;
    if (rc == 0) {
        rc = alias_add_user(st, name, 0);
        goto out;
    }
    {
        uid_t outer = st->owner;
        int outer_forward = st->in_forward;

        /* An alias's own commands and includes: the table's owner. */
        st->owner = st->found_owner;
        st->in_forward = 0;
        st->stack[st->depth++] = name;
        rc = alias_targets(st, key, value);
        st->depth--;
        st->owner = outer;
        st->in_forward = outer_forward;
    }
out:
    free(value);
    free(base);
    return rc;
}

int alias_expand(const char *local, struct alias_result *res)
{
    struct alias_state st = { .res = res };
    char *name = addr_lowercase(local);
    int rc;

    memset(res, 0, sizeof(*res));
    rc = alias_expand_name(&st, name);
    free(name);
    if (rc == 0 && res->nusers == 0 && res->ntargets == 0)
        rc = alias_fail(res, 5, "5.1.1", xasprintf("alias %s expands to no recipient", local));
    return rc;
}

int alias_expand_forward(const char *user, uid_t uid, const char *list, struct alias_result *res)
{
    struct alias_state st = { .res = res, .owner = uid, .forward_owner = user, .in_forward = 1 };
    char *copy = xstrdup(list), *save = NULL;
    int rc = 0;

    memset(res, 0, sizeof(*res));
    /* The user's own name in the list is the user's mailbox. */
    st.stack[st.depth++] = user;
    /* One target a line, unquoted already (forward_read). */
    for (char *t = strtok_r(copy, "\n", &save); t && rc == 0; t = strtok_r(NULL, "\n", &save))
        rc = alias_target(&st, user, t);
    free(copy);
    if (rc == 0 && res->nusers == 0 && res->ntargets == 0)
        rc = alias_fail(res, 5, "5.1.1", xasprintf("the .forward of %s names no recipient",
                                                   user));
    return rc;
}

void alias_result_free(struct alias_result *res)
{
    for (size_t i = 0; i < res->nusers; i++)
        free(res->users[i]);
    free(res->users);
    free(res->no_forward);
    for (size_t i = 0; i < res->ntargets; i++) {
        free(res->targets[i]);
        free(res->target_users[i]);
    }
    free(res->targets);
    free(res->target_users);
    free(res->text);
    memset(res, 0, sizeof(*res));
}
