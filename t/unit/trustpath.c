/*
 * t/unit/trustpath.c - unit tests for lib/trustpath.c: the walk from "/"
 * (owners, group/other write bits, sticky directories above and at the
 * end), symbolic links (their owner, relative and absolute targets, the
 * directories they lead through, loops), "." and "..", relative paths,
 * the type flags, the descriptor returned and the "FILE: reason" lines.
 *
 * Needs root (files of another owner are made with chown); otherwise the
 * whole test is skipped.  Everything lives in a fresh directory below
 * /tmp, removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "trustpath.h"
#include "xalloc.h"
#include "../lib/tap.h"

#define OTHER 65534                 /* nobody */

static char *top;
static uid_t root_only[1] = {0};

static char *at(const char *rel)
{
    return xasprintf("%s/%s", top, rel);
}

static void make_file(const char *rel, mode_t mode, uid_t uid)
{
    char *p = at(rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    if (fd < 0 || fchmod(fd, mode) < 0 || fchown(fd, uid, 0) < 0)
        diag("make_file %s: %s", p, strerror(errno));
    if (fd >= 0)
        close(fd);
    free(p);
}

static void make_dir(const char *rel, mode_t mode, uid_t uid)
{
    char *p = at(rel);

    if (mkdir(p, 0700) < 0 || chmod(p, mode) < 0 || chown(p, uid, 0) < 0)
        diag("make_dir %s: %s", p, strerror(errno));
    free(p);
}

static void make_link(const char *rel, const char *target, uid_t uid)
{
    char *p = at(rel);

    if (symlink(target, p) < 0 || lchown(p, uid, 0) < 0)
        diag("make_link %s: %s", p, strerror(errno));
    free(p);
}

/* Check top/rel (or an absolute path); the return value, errno and the
 * message, if any, in *msg (to be freed). */
static int check(const char *rel, int flags, const uid_t *owners, size_t n, int *err, char **msg)
{
    char *p = rel[0] == '/' ? xstrdup(rel) : at(rel);
    buf_t *errs = buf_new(0);
    int rc;

    errno = 0;
    rc = trustpath_check(p, flags, owners, n, errs);
    *err = errno;
    *msg = buf_steal(errs, NULL);
    buf_free(&errs);
    free(p);
    return rc;
}

static void trusted(const char *rel, int flags, const char *name)
{
    char *msg;
    int err;

    is_int(check(rel, flags, root_only, 1, &err, &msg), 0, "%s", name);
    is_str(msg, "", "%s: no message", name);
    free(msg);
}

/* Refused with errno want, the message naming top/file_rel with reason. */
static void refused(const char *rel, int flags, int want, const char *file_rel, const char *reason,
                    const char *name)
{
    char *msg, *expect = xasprintf("%s/%s: %s", top, file_rel, reason);
    int err;

    is_int(check(rel, flags, root_only, 1, &err, &msg), -1, "%s: refused", name);
    is_int(err, want, "%s: errno %d", name, want);
    like(msg, expect, "%s: names the file", name);
    ok(msg[0] && strchr(msg, '\n') == msg + strlen(msg) - 1, "%s: one line", name);
    free(msg);
    free(expect);
}

int main(void)
{
    char tmpl[] = "/tmp/posthorn-trustpath-XXXXXX", *msg, *p, *expect;
    uid_t owners[2];
    struct stat st1, st2;
    int err, fd;

    if (geteuid() != 0) {
        printf("1..0 # SKIP needs root (chown)\n");
        return 0;
    }
    if ((top = mkdtemp(tmpl)) == NULL || chmod(top, 0755) < 0) {
        printf("1..0 # SKIP cannot make a directory in /tmp\n");
        return 0;
    }

    is_int((int)trustpath_owners(owners), 1, "as root the owner set is root alone");
    is_int((int)owners[0], 0, "root");

    /* Plain files and directories. */
    make_file("f", 0644, 0);
    make_dir("d", 0755, 0);
    make_file("d/f", 0644, 0);
    trusted("f", TRUSTPATH_FILE, "a root-owned 0644 file");
    trusted("d", TRUSTPATH_DIR, "a root-owned 0755 directory");
    trusted("d/f", 0, "a file in one");
    trusted("/", TRUSTPATH_DIR, "the root directory");
    refused("f", TRUSTPATH_DIR, ENOTDIR, "f", "not a directory",
            "a file where a directory must be");
    refused("d", TRUSTPATH_FILE, EINVAL, "d", "not a regular file",
            "a directory where a file must be");
    refused("f/x", 0, ENOTDIR, "f", "not a directory", "a file in the middle of the path");
    refused("missing", 0, ENOENT, "missing", "No such file or directory", "a missing file");

    /* Write bits and owners. */
    make_file("gw", 0664, 0);
    refused("gw", 0, EPERM, "gw", "writable by its group (mode 0664)", "a group-writable file");
    make_file("ow", 0646, 0);
    refused("ow", 0, EPERM, "ow", "writable by others (mode 0646)", "an other-writable file");
    make_dir("gwd", 0775, 0);
    make_file("gwd/f", 0644, 0);
    refused("gwd/f", 0, EPERM, "gwd", "writable by its group (mode 0775) (checking",
            "below a group-writable directory");
    make_file("u", 0644, OTHER);
    refused("u", 0, EPERM, "u", "not owned by root but by uid 65534", "a file of another owner");
    make_dir("ud", 0755, OTHER);
    make_file("ud/f", 0644, 0);
    refused("ud/f", 0, EPERM, "ud", "not owned by root but by uid 65534 (checking",
            "below another's directory");
    {
        uid_t two[2] = {0, OTHER};

        is_int(check("ud/f", 0, two, 2, &err, &msg), 0, "accepted when that owner is trusted too");
        free(msg);
        is_int(check("ud", TRUSTPATH_DIR, root_only, 1, &err, &msg), -1,
               "the message names the owners");
        like(msg, "not owned by root but by uid", "root alone");
        free(msg);
        owners[0] = 0;
        owners[1] = 4242;
        is_int(check("ud", TRUSTPATH_DIR, owners, 2, &err, &msg), -1, "two owners");
        like(msg, "not owned by root or uid 4242 but by uid 65534", "both named");
        free(msg);
    }

    /* Sticky directories: fine above, not at the end unless asked for. */
    make_dir("sticky", 01777, 0);
    make_file("sticky/f", 0644, 0);
    trusted("sticky/f", TRUSTPATH_FILE, "a root's file in a sticky world-writable directory");
    refused("sticky", TRUSTPATH_DIR, EPERM, "sticky", "writable by group and others (mode 1777)",
            "a sticky directory itself");
    trusted("sticky", TRUSTPATH_DIR | TRUSTPATH_STICKY_OK, "with TRUSTPATH_STICKY_OK");
    make_file("sticky/u", 0644, OTHER);
    refused("sticky/u", 0, EPERM, "sticky/u", "not owned by root", "another's file there");

    /* Symbolic links. */
    make_link("rl", "f", 0);
    trusted("rl", TRUSTPATH_FILE, "a root's relative link to a root's file");
    p = at("f");
    make_link("al", p, 0);
    free(p);
    trusted("al", TRUSTPATH_FILE, "a root's absolute link");
    make_link("dl", "d", 0);
    trusted("dl/f", TRUSTPATH_FILE, "a link in the middle of the path");
    make_link("ul", "f", OTHER);
    refused("ul", 0, EPERM, "ul", "a symbolic link not owned by root but by uid 65534",
            "another's link to a root's file");
    make_link("sticky/ul", "../f", OTHER);
    refused("sticky/ul", 0, EPERM, "sticky/ul", "a symbolic link not owned by root",
            "another's link in a sticky directory");
    make_link("sticky/rl", "../f", 0);
    trusted("sticky/rl", TRUSTPATH_FILE, "root's link there");
    make_link("tou", "ud/f", 0);
    refused("tou", 0, EPERM, "ud", "not owned by root but by uid 65534 (checking",
            "root's link through another's directory");
    make_link("togw", "gw", 0);
    refused("togw", 0, EPERM, "gw", "writable by its group",
            "root's link to a group-writable file");
    make_link("loop1", "loop2", 0);
    make_link("loop2", "loop1", 0);
    refused("loop1", 0, ELOOP, "loop1", "too many levels of symbolic links", "a loop of links");
    make_link("dangling", "nothing-here", 0);
    refused("dangling", 0, ENOENT, "nothing-here", "No such file or directory", "a dangling link");
    make_link("toroot", "/", 0);
    trusted("toroot", TRUSTPATH_DIR, "a link to /");

    /* "." and "..", a relative path. */
    trusted("d/../f", TRUSTPATH_FILE, "d/../f");
    trusted("./d/./f", TRUSTPATH_FILE, "./d/./f");
    trusted("d/", TRUSTPATH_DIR, "a trailing slash");
    refused("ud/../f", 0, EPERM, "ud", "not owned by root", "through another's directory and back");
    p = at("dl/../f");          /* dl -> d: ".." is d's parent, top */
    is_int(check(p, TRUSTPATH_FILE, root_only, 1, &err, &msg), 0,
           ".. after a link goes up from its target");
    free(msg);
    free(p);
    if (chdir(top) == 0) {
        is_int(check("/dev/null/..", 0, root_only, 1, &err, &msg), -1, "a file then ..");
        free(msg);
        fd = -1;
        {
            buf_t *errs = buf_new(0);

            is_int(trustpath_check("d/f", TRUSTPATH_FILE, root_only, 1, errs), 0,
                   "a relative path, from the current directory");
            buf_free(&errs);
        }
        if (chdir("/") < 0)
            diag("chdir /: %s", strerror(errno));
    }

    /* The descriptor. */
    {
        buf_t *errs = buf_new(0);

        p = at("rl");
        fd = trustpath_open(p, TRUSTPATH_FILE, root_only, 1, errs);
        ok(fd >= 0, "trustpath_open returns a descriptor");
        free(p);
        p = at("f");
        stat(p, &st1);
        ok(fd >= 0 && fstat(fd, &st2) == 0 && st1.st_ino == st2.st_ino && st1.st_dev == st2.st_dev,
           "of the file the link leads to");
        ok(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC), "close-on-exec");
        if (fd >= 0)
            close(fd);
        free(p);
        p = at("d");
        fd = trustpath_open(p, TRUSTPATH_DIR, root_only, 1, errs);
        ok(fd >= 0 && faccessat(fd, "f", F_OK, 0) == 0,
           "a directory's descriptor works with the *at calls");
        if (fd >= 0)
            close(fd);
        free(p);
        is_str(buf_cstr(errs), "", "no message for them");
        buf_free(&errs);
    }

    /* The "(checking PATH)" context names what was asked for. */
    p = at("tou");
    expect = xasprintf("(checking %s)", p);
    check(p, 0, root_only, 1, &err, &msg);
    like(msg, expect, "the message says which path was being checked");
    free(msg);
    free(expect);
    free(p);

    {
        char *cmd = xasprintf("rm -rf '%s'", top);

        if (system(cmd) != 0)
            diag("cannot remove %s", top);
        free(cmd);
    }
    return done_testing();
}
