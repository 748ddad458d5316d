/*
 * folders.c - the user's Maildir++ folder tree (see folders.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "durable.h"
#include "folders.h"
#include "imapd.h"
#include "mailbox.h"
#include "maildir.h"
#include "msg.h"
#include "mutf7.h"
#include "user.h"
#include "xalloc.h"

#define SUBSCRIPTIONS_FILE  "subscriptions"
#define FOLDER_NAME_MAX     240

static const struct {
    const char *name;
    const char *use;
} folder_specials[] = {
    {"Drafts", "\\Drafts"}, {"Sent", "\\Sent"}, {"Trash", "\\Trash"},
    {"Junk", "\\Junk"},     {"Archive", "\\Archive"},
};

const char *folder_special_use(const char *name)
{
    for (size_t i = 0; i < sizeof(folder_specials) / sizeof(folder_specials[0]); i++)
        if (strcmp(name, folder_specials[i].name) == 0)
            return folder_specials[i].use;
    return NULL;
}

static char *folder_path(const char *name)
{
    if (strcmp(name, "INBOX") == 0)
        return xstrdup(user_maildir());
    return xasprintf("%s/.%s", user_maildir(), name);
}

bool folder_exists(const char *path)
{
    struct stat st;
    char *cur = xasprintf("%s/cur", path);
    bool ok = stat(cur, &st) == 0 && S_ISDIR(st.st_mode);

    free(cur);
    return ok;
}

void folders_first_login(void)
{
    char *marker = xasprintf("%s/posthorn-imap.uidvalidity", user_maildir());
    struct stat st;

    if (stat(marker, &st) == 0) {
        free(marker);
        return;
    }
    for (size_t i = 0; i < sizeof(folder_specials) / sizeof(folder_specials[0]); i++) {
        char *path = folder_path(folder_specials[i].name);
        const char *why;

        if (!folder_exists(path) && folder_create(folder_specials[i].name, path, &why) == 0)
            folder_subscribe(folder_specials[i].name, true);
        free(path);
    }
    /* The marker is the UIDVALIDITY file index.c keeps. */
    close(open(marker, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    free(marker);
}

/* A name as kept (modified UTF-7) that Maildir++ can hold. */
static bool folder_name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > FOLDER_NAME_MAX || name[0] == FOLDER_DELIM || name[n - 1] == FOLDER_DELIM
        || strchr(name, '/') || strstr(name, "..") || name[0] == '~')
        return false;
    return true;
}

int folder_resolve(const char *given, bool utf8, char **name, char **path, const char **why)
{
    buf_t *b = buf_new(0);

    *name = *path = NULL;
    if (strcasecmp(given, "INBOX") == 0) {
        *name = xstrdup("INBOX");
    } else if (utf8) {
        if (mutf7_encode(given, b) < 0) {
            *why = "[CANNOT] Invalid UTF-8 in the mailbox name.";
            buf_free(&b);
            return -1;
        }
        *name = buf_steal(b, NULL);
    } else {
        if (mutf7_decode(given, b) < 0) {
            *why = "[CANNOT] Invalid modified UTF-7 in the mailbox name.";
            buf_free(&b);
            return -1;
        }
        *name = xstrdup(given);
    }
    buf_free(&b);
    if (!folder_name_ok(*name)) {
        *why = "[CANNOT] Invalid mailbox name.";
        free(*name);
        *name = NULL;
        return -1;
    }
    *path = folder_path(*name);
    return 0;
}

void folder_put_name(buf_t *out, const char *name, bool utf8)
{
    buf_t *b;

    if (!utf8) {
        imap_put_string(out, name, strlen(name), false);
        return;
    }
    b = buf_new(0);
    if (mutf7_decode(name, b) < 0)
        imap_put_string(out, name, strlen(name), false);
    else
        imap_put_string(out, b->data, b->len, true);
    buf_free(&b);
}

/* ------------------------------------------------------------ listing */

static int folder_cmp(const void *a, const void *b)
{
    const struct folder *x = a, *y = b;

    if (strcmp(x->name, "INBOX") == 0)
        return -1;
    if (strcmp(y->name, "INBOX") == 0)
        return 1;
    return strcmp(x->name, y->name);
}

static struct folder *folder_find(struct folder *f, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(f[i].name, name) == 0)
            return &f[i];
    return NULL;
}

size_t folders_list(struct folder **out)
{
    DIR *d = opendir(user_maildir());
    struct dirent *de;
    struct folder *f = xcalloc(1, sizeof(*f));
    size_t n = 1, size = 1;
    buf_t *tmp = buf_new(0);

    f[0].name = xstrdup("INBOX");
    f[0].selectable = true;
    while (d && (de = readdir(d)) != NULL) {
        char *path;

        if (de->d_name[0] != '.' || !folder_name_ok(de->d_name + 1))
            continue;
        buf_reset(tmp);
        if (mutf7_decode(de->d_name + 1, tmp) < 0)
            continue;
        path = xasprintf("%s/%s", user_maildir(), de->d_name);
        if (folder_exists(path)) {
            if (n == size) {
                size *= 2;
                f = xreallocarray(f, size, sizeof(*f));
            }
            memset(&f[n], 0, sizeof(f[n]));
            f[n].name = xstrdup(de->d_name + 1);
            f[n].selectable = true;
            n++;
        }
        free(path);
    }
    if (d)
        closedir(d);
    buf_free(&tmp);
    /* Parents that have no folder of their own. */
    for (size_t i = 0, real = n; i < real; i++) {
        char *name = xstrdup(f[i].name);

        for (char *dot; (dot = strrchr(name, FOLDER_DELIM)) != NULL;) {
            *dot = '\0';
            if (folder_find(f, n, name) == NULL) {
                if (n == size) {
                    size *= 2;
                    f = xreallocarray(f, size, sizeof(*f));
                }
                memset(&f[n], 0, sizeof(f[n]));
                f[n].name = xstrdup(name);
                n++;
            }
        }
        free(name);
    }
    qsort(f, n, sizeof(*f), folder_cmp);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(f[i].name);

        for (size_t j = 0; j < n; j++)
            if (strncmp(f[j].name, f[i].name, len) == 0 && f[j].name[len] == FOLDER_DELIM) {
                f[i].children = true;
                break;
            }
        f[i].subscribed = folder_is_subscribed(f[i].name);
    }
    *out = f;
    return n;
}

void folders_free(struct folder *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(f[i].name);
    free(f);
}

static bool folder_match_at(const char *p, const char *s)
{
    for (; *p; p++, s++) {
        if (*p == '*') {
            for (;; s++) {
                if (folder_match_at(p + 1, s))
                    return true;
                if (*s == '\0')
                    return false;
            }
        }
        if (*p == '%') {
            for (;; s++) {
                if (folder_match_at(p + 1, s))
                    return true;
                if (*s == '\0' || *s == FOLDER_DELIM)
                    return false;
            }
        }
        if (*p != *s)
            return false;
    }
    return *s == '\0';
}

bool folder_match(const char *pattern, const char *name)
{
    /* INBOX is INBOX in any case, in the pattern too. */
    if (strncasecmp(pattern, "INBOX", 5) == 0 && strncmp(name, "INBOX", 5) == 0
        && (pattern[5] == '\0' || pattern[5] == FOLDER_DELIM || pattern[5] == '*'
            || pattern[5] == '%')) {
        return folder_match_at(pattern + 5, name + 5);
    }
    return folder_match_at(pattern, name);
}

/* ------------------------------------------------------ create and so on */

int folder_create(const char *name, const char *path, const char **why)
{
    char *err = NULL, *marker;
    int fd;

    if (strcmp(name, "INBOX") == 0 || folder_exists(path)) {
        *why = "[ALREADYEXISTS] Mailbox exists.";
        return -1;
    }
    if (maildir_create(path, &err) < 0) {
        msg_warn("%s: create %s: %s", user_name(), path, err ? err : strerror(errno));
        free(err);
        *why = "[SERVERBUG] Cannot create the mailbox.";
        return -1;
    }
    /* Maildir++'s mark of a folder (so that deliveries to it are not
     * taken for a whole Maildir by other tools). */
    marker = xasprintf("%s/maildirfolder", path);
    if ((fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) >= 0)
        close(fd);
    free(marker);
    return 0;
}

/* Remove a directory tree we own (a deleted folder's Maildir). */
static void folder_remove_tree(int parent, const char *name)
{
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d;
    struct dirent *de;

    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        if (fd >= 0)
            close(fd);
        unlinkat(parent, name, 0);
        return;
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (unlinkat(fd, de->d_name, 0) < 0 && (errno == EISDIR || errno == EPERM))
            folder_remove_tree(fd, de->d_name);
    }
    closedir(d);
    unlinkat(parent, name, AT_REMOVEDIR);
}

int folder_delete(const char *name, const char *path, const char **why)
{
    char *grave;
    int dfd;

    if (strcmp(name, "INBOX") == 0) {
        *why = "[CANNOT] INBOX cannot be deleted.";
        return -1;
    }
    if (!folder_exists(path)) {
        *why = "[NONEXISTENT] Mailbox does not exist.";
        return -1;
    }
    /* Out of sight in one step (a crash leaves no half folder), then
     * removed. */
    grave = xasprintf("..deleted.%ld.%s", (long)getpid(), name);
    dfd = open(user_maildir(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || renameat(dfd, strrchr(path, '/') + 1, dfd, grave) < 0) {
        msg_warn("%s: delete %s: %s", user_name(), path, strerror(errno));
        if (dfd >= 0)
            close(dfd);
        free(grave);
        *why = "[SERVERBUG] Cannot delete the mailbox.";
        return -1;
    }
    folder_remove_tree(dfd, grave);
    close(dfd);
    free(grave);
    mbox_deleted(path);
    return 0;
}

int folder_rename(const char *from, const char *from_path, const char *to,
                  const char *to_path, const char **why)
{
    struct folder *f;
    size_t n = folders_list(&f), flen = strlen(from);
    int rc = 0;

    (void)from_path;
    if (folder_exists(to_path)) {
        folders_free(f, n);
        *why = "[ALREADYEXISTS] The new name exists.";
        return -1;
    }
    /* The folder and everything below it. */
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *src, *dst, *newname;

        if (!f[i].selectable || strncmp(f[i].name, from, flen) != 0
            || (f[i].name[flen] != '\0' && f[i].name[flen] != FOLDER_DELIM))
            continue;
        newname = xasprintf("%s%s", to, f[i].name + flen);
        src = folder_path(f[i].name);
        dst = folder_path(newname);
        if (!folder_name_ok(newname) || folder_exists(dst)) {
            *why = "[ALREADYEXISTS] A mailbox below the new name exists.";
            rc = -1;
        } else if (rename(src, dst) < 0) {
            msg_warn("%s: rename %s: %s", user_name(), src, strerror(errno));
            *why = "[SERVERBUG] Cannot rename the mailbox.";
            rc = -1;
        } else {
            mbox_renamed(src, f[i].name, dst, newname);
            if (folder_is_subscribed(f[i].name)) {
                folder_subscribe(f[i].name, false);
                folder_subscribe(newname, true);
            }
        }
        free(newname);
        free(src);
        free(dst);
    }
    folders_free(f, n);
    return rc;
}

/* ------------------------------------------------------- subscriptions */

char **folder_subscriptions(size_t *np)
{
    char *path = xasprintf("%s/" SUBSCRIPTIONS_FILE, user_maildir());
    FILE *fp = fopen(path, "re");
    char **names = NULL, *line = NULL;
    size_t n = 0, cap = 0;
    ssize_t len;
    bool v2 = false, first = true;

    free(path);
    while (fp && (len = getline(&line, &cap, fp)) > 0) {
        line[strcspn(line, "\r\n")] = '\0';
        if (first && strcmp(line, "V\t2") == 0)
            v2 = true;
        first = false;
        if (line[0] == '\0' || strncmp(line, "V\t", 2) == 0)
            continue;
        if (v2)
            for (char *p = line; *p; p++)
                if (*p == '\t')
                    *p = FOLDER_DELIM;
        names = xreallocarray(names, n + 1, sizeof(char *));
        names[n++] = xstrdup(line);
    }
    free(line);
    if (fp)
        fclose(fp);
    *np = n;
    return names;
}

bool folder_is_subscribed(const char *name)
{
    size_t n;
    char **names = folder_subscriptions(&n);
    bool found = false;

    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], name) == 0)
            found = true;
        free(names[i]);
    }
    free(names);
    return found;
}

int folder_subscribe(const char *name, bool on)
{
    size_t n;
    char **names = folder_subscriptions(&n);
    char *path = xasprintf("%s/" SUBSCRIPTIONS_FILE, user_maildir());
    char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
    FILE *fp = fopen(tmp, "we");
    bool found = false;
    int rc = 0;

    if (fp == NULL) {
        rc = -1;
    } else {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(names[i], name) == 0) {
                found = true;
                if (!on)
                    continue;
            }
            fprintf(fp, "%s\n", names[i]);
        }
        if (on && !found)
            fprintf(fp, "%s\n", name);
        if (fflush(fp) != 0 || fsync(fileno(fp)) < 0)
            rc = -1;
        if (fclose(fp) != 0 || rc < 0 || rename(tmp, path) < 0) {
            rc = -1;
            unlink(tmp);
        }
    }
    if (rc < 0)
        msg_warn("%s: cannot write %s: %s", user_name(), path, strerror(errno));
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(path);
    free(tmp);
    return rc;
}
