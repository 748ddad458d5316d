/*
 * setup.c - what "mailctl start" does as root before master runs: create
 * the missing accounts and the spool directories with the owners and modes
 * of DESIGN.md §1-§2, fixing any that are wrong, and log each change.
 *
 * Accounts (names from main.conf): mail_owner, network_user, auth_user,
 * login_user (system users, each with its own group, no home, no shell) and
 * the group setgid_group.  They are made with Debian's useradd/groupadd, so
 * /etc/passwd, /etc/shadow and nscd stay consistent.
 *
 * $queue_directory (root 0755):
 *   maildrop/  mail_owner:setgid_group 1730  sendmail drops files, cannot list
 *   tmp/ incoming/ active/ deferred/ hold/ corrupt/   mail_owner 0700
 *   private/   mail_owner:mail_owner 0710  internal sockets; every service
 *              process has the mail_owner group to reach them
 *   public/    mail_owner:setgid_group 0710  sockets for local users' tools
 *   pid/       root 0755  master.pid, master.sock
 *   empty/     root 0555  the jail of processes that need no files
 * Failure modes: every failure is printed as a sentence and returns -1.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "mailctl.h"
#include "msg.h"
#include "privs.h"
#include "server.h"
#include "xalloc.h"

static int run(char *const argv[])
{
    pid_t pid = fork();
    int status;

    if (pid < 0)
        return -1;
    if (pid == 0) {
        execvp(argv[0], argv);
        fprintf(stderr, "mailctl: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int ensure_group(const char *name)
{
    gid_t gid;

    if (privs_group_lookup(name, &gid) == 0)
        return 0;
    if (run((char *const[]){"groupadd", "--system", (char *)name, NULL}) < 0
        || privs_group_lookup(name, &gid) < 0) {
        msg_error("cannot create group %s", name);
        return -1;
    }
    msg_info("created group %s (gid %ld)", name, (long)gid);
    return 0;
}

static int ensure_user(const char *name)
{
    uid_t uid;
    gid_t gid;

    if (privs_lookup(name, &uid, &gid) == 0)
        return 0;
    if (run((char *const[]){"useradd", "--system", "--user-group", "--no-create-home",
                            "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                            "--comment", "Posthorn mail system", (char *)name, NULL}) < 0
        || privs_lookup(name, &uid, &gid) < 0) {
        msg_error("cannot create account %s", name);
        return -1;
    }
    msg_info("created account %s (uid %ld, gid %ld)", name, (long)uid, (long)gid);
    return 0;
}

static int ensure_dir(const char *path, uid_t uid, gid_t gid, mode_t mode)
{
    struct stat st;

    if (lstat(path, &st) < 0) {
        if (errno != ENOENT || mkdir(path, 0700) < 0 || lstat(path, &st) < 0) {
            msg_error("cannot create directory %s: %s", path, strerror(errno));
            return -1;
        }
        msg_info("created directory %s", path);
        st.st_mode = S_IFDIR | 0700;
        st.st_uid = (uid_t)-1;
    }
    if (!S_ISDIR(st.st_mode)) {
        msg_error("%s exists but is not a directory", path);
        return -1;
    }
    if (st.st_uid != uid || st.st_gid != gid) {
        if (chown(path, uid, gid) < 0) {
            msg_error("cannot set the owner of %s: %s", path, strerror(errno));
            return -1;
        }
        if (st.st_uid != (uid_t)-1)
            msg_info("fixed the owner of %s", path);
    }
    if ((st.st_mode & 07777) != mode) {
        if (chmod(path, mode) < 0) {
            msg_error("cannot set the mode of %s: %s", path, strerror(errno));
            return -1;
        }
        if (st.st_uid != (uid_t)-1)
            msg_info("fixed the mode of %s to %04o", path, (unsigned)mode);
    }
    return 0;
}

int setup_accounts_and_spool(void)
{
    static const char *const queues[] = {"tmp", "incoming", "active", "deferred", "hold",
                                         "corrupt", NULL};
    const char *q = conf_str("queue_directory");
    uid_t owner;
    gid_t owner_gid, drop_gid;
    char *path;
    int rc = 0;

    if (ensure_group(conf_str("setgid_group")) < 0 || ensure_user(conf_str("mail_owner")) < 0
        || ensure_user(conf_str("network_user")) < 0 || ensure_user(conf_str("auth_user")) < 0
        || ensure_user(conf_str("login_user")) < 0)
        return -1;
    privs_lookup(conf_str("mail_owner"), &owner, &owner_gid);
    privs_group_lookup(conf_str("setgid_group"), &drop_gid);

    if (mkdir(q, 0755) == 0)
        msg_info("created directory %s", q);
    rc |= ensure_dir(q, 0, 0, 0755);
    for (const char *const *d = queues; *d; d++) {
        path = xasprintf("%s/%s", q, *d);
        rc |= ensure_dir(path, owner, owner_gid, 0700);
        free(path);
    }
#define DIR_(name, u, g, m) do { \
        path = xasprintf("%s/%s", q, name); \
        rc |= ensure_dir(path, u, g, m); \
        free(path); \
    } while (0)
    DIR_("maildrop", owner, drop_gid, 01730);
    DIR_("private", owner, owner_gid, 0710);
    DIR_("public", owner, drop_gid, 0710);
    DIR_("pid", 0, 0, 0755);
    DIR_(SERVER_EMPTY_DIR, 0, 0, 0555);
#undef DIR_
    return rc ? -1 : 0;
}
