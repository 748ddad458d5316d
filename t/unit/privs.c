/*
 * t/unit/privs.c - unit tests for lib/privs.c (account lookup, the privilege
 * drop and its verification).
 *
 * The drop tests need root (CI runs as root); without it they print TAP
 * skip lines.  Every drop happens in a forked child.  The child drops,
 * says "ready" on a pipe and waits; meanwhile the parent reads
 * /proc/CHILD/status (Uid/Gid/Groups/CapEff) and /proc/CHILD/root, since
 * the jailed child itself cannot see /proc.  Then the child tries to regain
 * root and to open a root-owned 0600 file, reports back and _exit()s
 * (LeakSanitizer cannot run inside a chroot).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "msg.h"
#include "privs.h"
#include "xalloc.h"
#include "../lib/tap.h"

#define NOBODY_UID 65534
#define NOBODY_GID 65534

static char jail[PATH_MAX];

struct drop_spec {
    const char *user;           /* privs_drop() by name when not NULL */
    uid_t uid;                  /* else privs_drop_ids() */
    gid_t gid;
    const gid_t *extra;
    size_t n_extra;
    const char *chroot_dir;
};

struct child_report {
    int verify;                 /* privs_verify_dropped() */
    int setuid_errno;           /* errno of setuid(0), 0 if it worked */
    int chroot_errno;           /* errno of chroot("/") */
    int public_errno;           /* open of a 0644 file: 0 expected */
    int secret_errno;           /* open of a root 0600 file: EACCES expected */
    uid_t ruid, euid;
    gid_t rgid, egid;
};

struct proc_view {
    char uid[128], gid[128], groups[512], capeff[64], capprm[64];
    char root[PATH_MAX];
};

static void skip(const char *why)
{
    ok(1, "# skip %s", why);
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t w = write(fd, c, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, void *p, size_t n)
{
    char *c = p;

    while (n > 0) {
        ssize_t r = read(fd, c, n);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Copy the value of "Name:" from /proc/PID/status, tabs turned to spaces,
 * trimmed. */
static void status_field(const char *status, const char *name, char *out, size_t size)
{
    const char *p = status;
    size_t nlen = strlen(name);

    out[0] = '\0';
    while (p && *p) {
        if (strncmp(p, name, nlen) == 0 && p[nlen] == ':') {
            const char *v = p + nlen + 1, *e = strchr(v, '\n');
            size_t len;

            while (*v == ' ' || *v == '\t')
                v++;
            len = e ? (size_t)(e - v) : strlen(v);
            while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
                len--;
            if (len >= size)
                len = size - 1;
            for (size_t i = 0; i < len; i++)
                out[i] = v[i] == '\t' ? ' ' : v[i];
            out[len] = '\0';
            return;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
}

static void read_proc(pid_t pid, struct proc_view *pv)
{
    char path[64], status[8192];
    int fd;
    ssize_t n = 0, r;
    ssize_t len;

    memset(pv, 0, sizeof(*pv));
    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    if ((fd = open(path, O_RDONLY)) >= 0) {
        while (n < (ssize_t)sizeof(status) - 1
               && (r = read(fd, status + n, sizeof(status) - 1 - (size_t)n)) > 0)
            n += r;
        close(fd);
    }
    status[n] = '\0';
    status_field(status, "Uid", pv->uid, sizeof(pv->uid));
    status_field(status, "Gid", pv->gid, sizeof(pv->gid));
    status_field(status, "Groups", pv->groups, sizeof(pv->groups));
    status_field(status, "CapEff", pv->capeff, sizeof(pv->capeff));
    status_field(status, "CapPrm", pv->capprm, sizeof(pv->capprm));
    snprintf(path, sizeof(path), "/proc/%ld/root", (long)pid);
    len = readlink(path, pv->root, sizeof(pv->root) - 1);
    pv->root[len > 0 ? len : 0] = '\0';
}

/* Sort a space-separated list of numbers so that group sets compare. */
static char *sorted_ids(const char *list)
{
    long ids[64];
    size_t n = 0;
    buf_t *b = buf_new(0);
    char *end, *out;

    for (const char *p = list; *p && n < 64; p = end) {
        ids[n] = strtol(p, &end, 10);
        if (end == p)
            break;
        n++;
    }
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
            long t = ids[j];

            ids[j] = ids[j - 1];
            ids[j - 1] = t;
        }
    for (size_t i = 0; i < n; i++)
        buf_printf(b, "%s%ld", i ? " " : "", ids[i]);
    out = buf_steal(b, NULL);
    buf_free(&b);
    return out;
}

static void child_body(const struct drop_spec *ds, int ready_fd, int go_fd, int res_fd)
{
    struct child_report rep;
    char go;
    char pub[PATH_MAX + 16], sec[PATH_MAX + 16];
    int fd;

    alarm(20);
    if (ds->user)
        privs_drop(ds->user, ds->extra, ds->n_extra, ds->chroot_dir);
    else
        privs_drop_ids(ds->uid, ds->gid, ds->extra, ds->n_extra, ds->chroot_dir);
    if (write_all(ready_fd, "R", 1) < 0 || read_all(go_fd, &go, 1) < 0)
        _exit(3);

    memset(&rep, 0, sizeof(rep));
    rep.verify = privs_verify_dropped();
    rep.setuid_errno = setuid(0) == 0 ? 0 : errno;
    rep.chroot_errno = chroot("/") == 0 ? 0 : errno;
    snprintf(pub, sizeof(pub), "%s/public", ds->chroot_dir ? "" : jail);
    snprintf(sec, sizeof(sec), "%s/secret", ds->chroot_dir ? "" : jail);
    fd = open(pub, O_RDONLY);
    rep.public_errno = fd >= 0 ? 0 : errno;
    if (fd >= 0)
        close(fd);
    fd = open(sec, O_RDONLY);
    rep.secret_errno = fd >= 0 ? 0 : errno;
    if (fd >= 0)
        close(fd);
    rep.ruid = getuid();
    rep.euid = geteuid();
    rep.rgid = getgid();
    rep.egid = getegid();
    if (write_all(res_fd, &rep, sizeof(rep)) < 0)
        _exit(4);
    _exit(0);
}

/* Fork a child that drops as ds says; fill pv while it waits and rep from
 * its report.  Returns the child's wait status. */
static int run_drop(const struct drop_spec *ds, struct proc_view *pv,
                    struct child_report *rep, int *got_ready)
{
    int ready[2], go[2], res[2], status = -1;
    pid_t pid;
    char c;

    memset(rep, 0xff, sizeof(*rep));
    memset(pv, 0, sizeof(*pv));
    *got_ready = 0;
    if (pipe(ready) < 0 || pipe(go) < 0 || pipe(res) < 0) {
        diag("pipe: %s", strerror(errno));
        return -1;
    }
    fflush(NULL);
    if ((pid = fork()) < 0) {
        diag("fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        close(ready[0]);
        close(go[1]);
        close(res[0]);
        child_body(ds, ready[1], go[0], res[1]);
    }
    close(ready[1]);
    close(go[0]);
    close(res[1]);
    if (read_all(ready[0], &c, 1) == 0) {
        *got_ready = 1;
        read_proc(pid, pv);
        if (write_all(go[1], "G", 1) < 0 || read_all(res[0], rep, sizeof(*rep)) < 0)
            diag("child %ld did not report", (long)pid);
    }
    close(ready[0]);
    close(go[1]);
    close(res[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

/* Run fn in a child with stderr captured; return its wait status and the
 * captured text in *out (caller frees). */
static int run_captured(void (*fn)(void), char **out)
{
    int p[2], status = -1;
    pid_t pid;
    buf_t *b = buf_new(0);
    char tmp[512];
    ssize_t n;

    if (pipe(p) < 0)
        return -1;
    fflush(NULL);
    if ((pid = fork()) == 0) {
        struct rlimit rl = { 0, 0 };

        setrlimit(RLIMIT_CORE, &rl);
        alarm(20);
        close(p[0]);
        dup2(p[1], STDERR_FILENO);
        close(p[1]);
        msg_init("privs-test", MSG_STDERR);
        fn();
        _exit(0);
    }
    close(p[1]);
    while ((n = read(p[0], tmp, sizeof(tmp))) > 0 || (n < 0 && errno == EINTR))
        if (n > 0)
            buf_append(b, tmp, (size_t)n);
    close(p[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    *out = buf_steal(b, NULL);
    buf_free(&b);
    return status;
}

static void drop_unknown_user(void)
{
    privs_drop("posthorn-no-such-user-xyz", NULL, 0, NULL);
}

static void drop_bad_chroot(void)
{
    privs_drop("nobody", NULL, 0, "/nonexistent/posthorn-jail");
}

static void drop_to_root(void)
{
    privs_drop_ids(0, 0, NULL, 0, NULL);
}

static void drop_twice(void)
{
    privs_drop_ids(NOBODY_UID, NOBODY_GID, NULL, 0, NULL);
    /* Not root any more: the second drop must be fatal, not ignored. */
    privs_drop_ids(54321, 54321, NULL, 0, NULL);
}

static void verify_as_root(void)
{
    _exit(privs_verify_dropped() == -1 ? 0 : 5);
}

static void test_lookup(void)
{
    uid_t uid = 1;
    gid_t gid = 1;

    is_int(privs_lookup("root", &uid, &gid), 0, "privs_lookup root");
    is_int(uid, 0, "root has uid 0");
    is_int(gid, 0, "root has gid 0");
    if (privs_lookup("nobody", &uid, &gid) == 0)
        is_int(uid, NOBODY_UID, "nobody has uid 65534");
    else
        skip("no account nobody");
    errno = 0;
    is_int(privs_lookup("posthorn-no-such-user-xyz", &uid, &gid), -1,
           "unknown user: -1");
    is_int(errno, ENOENT, "unknown user: errno ENOENT");
    errno = 0;
    is_int(privs_lookup("", &uid, &gid), -1, "empty user name: -1");
    is_int(errno, ENOENT, "empty user name: ENOENT");
    is_int(privs_lookup("root", NULL, NULL), 0, "NULL out pointers are allowed");

    gid = 1;
    is_int(privs_group_lookup("root", &gid), 0, "privs_group_lookup root");
    is_int(gid, 0, "group root has gid 0");
    errno = 0;
    is_int(privs_group_lookup("posthorn-no-such-group-xyz", &gid), -1,
           "unknown group: -1");
    is_int(errno, ENOENT, "unknown group: errno ENOENT");
}

static int make_jail(void)
{
    char tmpl[] = "/tmp/posthorn-privs.XXXXXX", path[PATH_MAX + 16];
    int fd;

    if (mkdtemp(tmpl) == NULL || realpath(tmpl, jail) == NULL)
        return -1;
    /* Traversable by nobody, so that only the file mode protects secret. */
    if (chmod(jail, 0755) < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/secret", jail);
    if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0)
        return -1;
    if (write(fd, "secret\n", 7) != 7 || fchmod(fd, 0600) < 0)
        return -1;
    close(fd);
    snprintf(path, sizeof(path), "%s/public", jail);
    if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644)) < 0)
        return -1;
    if (fchmod(fd, 0644) < 0)
        return -1;
    close(fd);
    return 0;
}

static void remove_jail(void)
{
    char path[PATH_MAX + 16];

    if (jail[0] == '\0')
        return;
    snprintf(path, sizeof(path), "%s/secret", jail);
    unlink(path);
    snprintf(path, sizeof(path), "%s/public", jail);
    unlink(path);
    if (rmdir(jail) < 0)
        diag("cannot remove %s: %s", jail, strerror(errno));
}

static void check_dropped(const char *what, const struct drop_spec *ds,
                          const char *want_groups, const char *want_root)
{
    struct proc_view pv;
    struct child_report rep;
    int ready, status;
    char want_uid[64], want_gid[64], *groups;
    long uid = ds->user ? NOBODY_UID : (long)ds->uid;
    long gid = ds->user ? NOBODY_GID : (long)ds->gid;

    status = run_drop(ds, &pv, &rep, &ready);
    ok(ready, "%s: child dropped and reported ready", what);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "%s: child exited 0 (status 0x%x)", what, status);
    snprintf(want_uid, sizeof(want_uid), "%ld %ld %ld %ld", uid, uid, uid, uid);
    snprintf(want_gid, sizeof(want_gid), "%ld %ld %ld %ld", gid, gid, gid, gid);
    is_str(pv.uid, want_uid, "%s: /proc status Uid (real, effective, saved, fs)", what);
    is_str(pv.gid, want_gid, "%s: /proc status Gid (real, effective, saved, fs)", what);
    groups = sorted_ids(pv.groups);
    is_str(groups, want_groups, "%s: /proc status Groups", what);
    free(groups);
    is_str(pv.capeff, "0000000000000000", "%s: no effective capabilities", what);
    is_str(pv.capprm, "0000000000000000", "%s: no permitted capabilities", what);
    is_str(pv.root, want_root, "%s: /proc/PID/root", what);
    is_int(rep.verify, 0, "%s: privs_verify_dropped() is 0", what);
    is_int(rep.setuid_errno, EPERM, "%s: setuid(0) fails with EPERM", what);
    is_int(rep.chroot_errno, EPERM, "%s: chroot() fails with EPERM", what);
    is_int(rep.public_errno, 0, "%s: can open a 0644 file", what);
    is_int(rep.secret_errno, EACCES, "%s: cannot open a root 0600 file", what);
    ok(rep.ruid == (uid_t)uid && rep.euid == (uid_t)uid
       && rep.rgid == (gid_t)gid && rep.egid == (gid_t)gid,
       "%s: getuid/geteuid/getgid/getegid agree", what);
}

static void test_drops(void)
{
    static const gid_t extra[] = { 100, 4242, NOBODY_GID };
    struct drop_spec ds;
    char *out = NULL;
    int status;

    if (make_jail() < 0) {
        diag("cannot set up a jail directory: %s", strerror(errno));
        ok(0, "jail set up");
        return;
    }

    memset(&ds, 0, sizeof(ds));
    ds.user = "nobody";
    check_dropped("nobody, no chroot", &ds, "65534", "/");

    ds.chroot_dir = jail;
    check_dropped("nobody, chroot", &ds, "65534", jail);

    memset(&ds, 0, sizeof(ds));
    ds.user = "nobody";
    ds.extra = extra;
    ds.n_extra = 3;
    ds.chroot_dir = jail;
    check_dropped("nobody + groups 100 4242, chroot", &ds, "100 4242 65534", jail);

    memset(&ds, 0, sizeof(ds));
    ds.uid = 54321;
    ds.gid = 54322;
    ds.extra = extra;
    ds.n_extra = 1;
    check_dropped("ids 54321:54322 + group 100", &ds, "100 54322", "/");

    status = run_captured(drop_unknown_user, &out);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 1,
       "unknown user: fatal, exit 1 (status 0x%x)", status);
    like(out, "fatal: cannot drop privileges: unknown user 'posthorn-no-such-user-xyz'",
         "unknown user: the log says why");
    free(out);

    status = run_captured(drop_bad_chroot, &out);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 1,
       "missing chroot dir: fatal, exit 1 (status 0x%x)", status);
    like(out, "fatal: cannot chroot to /nonexistent/posthorn-jail: No such file or directory",
         "missing chroot dir: the log says why");
    free(out);

    status = run_captured(drop_to_root, &out);
    ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
       "privs_drop_ids to uid 0: panic, SIGABRT (status 0x%x)", status);
    like(out, "panic: privs_drop_ids: asked to drop privileges to uid 0",
         "uid 0: the log says why");
    free(out);

    status = run_captured(drop_twice, &out);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 1,
       "second drop without root: fatal, exit 1 (status 0x%x)", status);
    like(out, "fatal: cannot set the supplementary groups", "second drop: the log says why");
    free(out);

    status = run_captured(verify_as_root, &out);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "privs_verify_dropped() is -1 while still root");
    free(out);

    remove_jail();
}

int main(void)
{
    alarm(60);
    msg_init("privs-test", 0);
    test_lookup();
    if (geteuid() != 0) {
        diag("not running as root: privilege drop tests skipped");
        is_int(privs_verify_dropped(), 0, "privs_verify_dropped() is 0 when not root");
        for (int i = 0; i < 4; i++)
            skip("privilege drop tests need root");
    } else {
        test_drops();
    }
    return done_testing();
}
