/*
 * setup.c - what "mailctl start" does as root before master runs: create
 * the missing accounts and the spool directories with the owners and modes
 * of DESIGN.md §1-§2, fixing any that are wrong, and log each change.
 *
 * Accounts (names from main.conf): mail_owner, network_user, auth_user,
 * login_user, check_user (system users, each with its own group, no home, no shell) and
 * the group setgid_group.  They are made with Debian's useradd/groupadd, so
 * /etc/passwd, /etc/shadow and nscd stay consistent.
 *
 * $queue_directory (root 0755; an existing one that is not root's alone
 * is refused, not adopted):
 *   maildrop/  mail_owner:setgid_group 1730  sendmail drops files, cannot list
 *   tmp/ incoming/ active/ deferred/ hold/ corrupt/   mail_owner 0700
 *   private/   root:mail_owner 0710  internal sockets (bound by master);
 *              every service process has the mail_owner group to reach them
 *   public/    root:setgid_group 0710  sockets for local users' tools
 * The directories are created and fixed through descriptors opened with
 * O_NOFOLLOW, below ancestors that must be root's and not writable by
 * others (checked with lib/trustpath, symbolic links on the way too), so
 * nobody can point root's chown/chmod elsewhere with a symlink.
 *   pid/       root 0755  master.pid, master.sock
 *   empty/     root 0555  the jail of processes that need no files
 *   login/     root:login_user 0750  the jail of the login halves of pop3d
 *              and imapd: only the sockets of authd and the mail halves
 *   dmarc/     check_user 0700  checkd's per-message DMARC results, read
 *              by the report job (mailctl dmarc report) as check_user
 * and the sendmail program next to mailctl: root:setgid_group 2755.
 *
 * setup_srs_secret(): with srs_enable on, srs_secret_file is made if it
 * is missing: 32 random bytes (getrandom) as 64 hex digits on one line,
 * root's, mode 0600, created with O_EXCL | O_NOFOLLOW in a directory that
 * only root can change (lib/trustpath).  An existing one is kept (the
 * admin rotates by adding a new first line).  Either way it is then read
 * as the services will read it (srs_load), so one they would refuse
 * stops the start here with the reason.
 * Failure modes: every failure is printed as a sentence and returns -1.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "defer_log.h"
#include "mailctl.h"
#include "msg.h"
#include "privs.h"
#include "server.h"
#include "srs.h"
#include "trustpath.h"
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

/*
 * Open the directory that holds dir (queue_directory) for use as root:
 * it and every directory above it must be root's and writable by nobody
 * else (the sticky /tmp is fine), and so must every symbolic link on the
 * way (lib/trustpath).  Returns an O_PATH directory fd for the *at calls
 * and dir's last component in *last, or -1 with a message logged.
 */
static int open_trusted_parent(const char *dir, char **last)
{
    char *copy = xstrdup(dir), *slash = strrchr(copy, '/');
    buf_t *errs;
    uid_t owners[2];
    size_t nowners = trustpath_owners(owners);
    int fd;

    if (copy[0] != '/' || slash == NULL || slash[1] == '\0') {
        msg_error("queue_directory %s must be an absolute path", dir);
        free(copy);
        return -1;
    }
    *slash = '\0';
    errs = buf_new(0);
    fd = trustpath_open(*copy ? copy : "/", TRUSTPATH_DIR | TRUSTPATH_STICKY_OK, owners, nowners,
                        errs);
    if (fd < 0) {
        buf_truncate(errs, errs->len - (errs->len && errs->data[errs->len - 1] == '\n'));
        msg_error("cannot use queue_directory %s: %s", dir, buf_cstr(errs));
    } else {
        *last = xstrdup(slash + 1);
    }
    buf_free(&errs);
    free(copy);
    return fd;
}

/* Make sure dirfd/name is a directory with this owner and mode, acting
 * on the opened directory, never again on a path. */
static int ensure_dir_at(int dirfd, const char *shown, const char *name, uid_t uid, gid_t gid,
                         mode_t mode, int *fdp)
{
    struct stat st;
    int created = 0, fd;

    if (mkdirat(dirfd, name, 0700) == 0) {
        created = 1;
        msg_info("created directory %s", shown);
    } else if (errno != EEXIST) {
        msg_error("cannot create directory %s: %s", shown, strerror(errno));
        return -1;
    }
    fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        msg_error("%s is not a directory we can use: %s", shown, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (st.st_uid != uid || st.st_gid != gid) {
        if (fchown(fd, uid, gid) < 0) {
            msg_error("cannot set the owner of %s: %s", shown, strerror(errno));
            close(fd);
            return -1;
        }
        if (!created)
            msg_info("fixed the owner of %s", shown);
    }
    if ((st.st_mode & 07777) != mode) {
        if (fchmod(fd, mode) < 0) {
            msg_error("cannot set the mode of %s: %s", shown, strerror(errno));
            close(fd);
            return -1;
        }
        if (!created)
            msg_info("fixed the mode of %s to %04o", shown, (unsigned)mode);
    }
    if (fdp)
        *fdp = fd;
    else
        close(fd);
    return 0;
}

/* sendmail, next to this mailctl, is setgid setgid_group (and nothing
 * else) so that users can write into maildrop/; a rebuilt or freshly
 * installed binary gets that here.  Only a root-owned regular file with
 * one name, that nobody else can swap (lib/trustpath). */
static int setup_sendmail_setgid(gid_t drop_gid)
{
    char self[PATH_MAX], *slash, *path;
    uid_t owners[2];
    size_t nowners;
    buf_t *errs;
    struct stat st;
    ssize_t n;
    int fd, rc = 0;

    if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) < 0)
        return 0;
    self[n] = '\0';
    if ((slash = strrchr(self, '/')) != NULL)
        *slash = '\0';
    path = xasprintf("%s/sendmail", self);
    if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        free(path);
        return 0;                   /* not installed next to us */
    }
    errs = buf_new(0);
    nowners = trustpath_owners(owners);
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == 0
        && (st.st_gid != drop_gid || (st.st_mode & 07777) != 02755)) {
        /* Not below root's directories alone, or a second name of some
         * other file: root changes nothing there. */
        if (st.st_nlink != 1)
            buf_printf(errs, "%s: it has %lu names\n", path, (unsigned long)st.st_nlink);
        if (st.st_nlink != 1 || trustpath_check(path, TRUSTPATH_FILE, owners, nowners, errs) < 0) {
            buf_truncate(errs, errs->len - (errs->len && errs->data[errs->len - 1] == '\n'));
            msg_warn("not making %s setgid %s: %s", path, conf_str("setgid_group"),
                     buf_cstr(errs));
        } else if (fchown(fd, 0, drop_gid) < 0 || fchmod(fd, 02755) < 0) {
            fprintf(stderr, "mailctl: cannot make %s setgid %s: %s\n", path,
                    conf_str("setgid_group"), strerror(errno));
            rc = -1;
        } else {
            msg_info("made %s setgid %s (mode 2755)", path, conf_str("setgid_group"));
        }
    }
    close(fd);
    free(path);
    buf_free(&errs);
    return rc;
}

int setup_accounts_and_spool(void)
{
    static const char *const queues[] = {"tmp", "incoming", "active", "deferred", "hold",
                                         "corrupt", DEFER_LOG_DIR, NULL};
    const char *q = conf_str("queue_directory");
    uid_t owner;
    uid_t login_uid, check_uid;
    gid_t owner_gid, drop_gid, login_gid, check_gid;
    char *last = NULL, *shown;
    struct stat st;
    int rc = 0, parent, qfd;

    if (ensure_group(conf_str("setgid_group")) < 0 || ensure_user(conf_str("mail_owner")) < 0
        || ensure_user(conf_str("network_user")) < 0 || ensure_user(conf_str("auth_user")) < 0
        || ensure_user(conf_str("login_user")) < 0 || ensure_user(conf_str("check_user")) < 0)
        return -1;
    privs_lookup(conf_str("mail_owner"), &owner, &owner_gid);
    privs_group_lookup(conf_str("setgid_group"), &drop_gid);
    privs_lookup(conf_str("login_user"), &login_uid, &login_gid);
    privs_lookup(conf_str("check_user"), &check_uid, &check_gid);

    if ((parent = open_trusted_parent(q, &last)) < 0)
        return -1;
    /* An existing spool that was not root's alone may hold what someone
     * else planted there (a hard link as master.pid, say): refuse it
     * rather than adopt it.  Its subdirectories are fixed below. */
    if (fstatat(parent, last, &st, AT_SYMLINK_NOFOLLOW) == 0
        && (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022))) {
        msg_error("cannot use queue_directory %s: %s", q,
                  !S_ISDIR(st.st_mode) ? "not a directory"
                  : st.st_uid != 0 ? "not owned by root" : "writable by group or others");
        close(parent);
        free(last);
        return -1;
    }
    rc = ensure_dir_at(parent, q, last, 0, 0, 0755, &qfd);
    close(parent);
    free(last);
    if (rc < 0)
        return -1;
#define DIR_(name, u, g, m) do { \
        shown = xasprintf("%s/%s", q, name); \
        rc |= ensure_dir_at(qfd, shown, name, u, g, m, NULL); \
        free(shown); \
    } while (0)
    for (const char *const *d = queues; *d; d++)
        DIR_(*d, owner, owner_gid, 0700);
    DIR_("maildrop", owner, drop_gid, 01730);
    /* master (root) binds the sockets; nobody else may add or swap one. */
    DIR_("private", 0, owner_gid, 0710);
    DIR_("public", 0, drop_gid, 0710);
    DIR_("pid", 0, 0, 0755);
    DIR_(SERVER_EMPTY_DIR, 0, 0, 0555);
    /* The login halves' jail: sockets only, bound by master. */
    DIR_(SERVER_LOGIN_DIR, 0, login_gid, 0750);
    /* checkd's DMARC results, which the report job (also check_user)
     * reads; nothing else trusts what is in there. */
    DIR_(SERVER_DMARC_DIR, check_uid, check_gid, 0700);
#undef DIR_
    close(qfd);
    rc |= setup_sendmail_setgid(drop_gid);
    return rc ? -1 : 0;
}

#define SETUP_SRS_SECRET_BYTES 32

/* Create srs_secret_file at dirfd/name (shown as path): 0, 1 if it was
 * there already, or -1 with a message. */
static int setup_srs_create(int dirfd, const char *dir, const char *name, const char *path)
{
    unsigned char key[SETUP_SRS_SECRET_BYTES];
    char hex[2 * SETUP_SRS_SECRET_BYTES + 2];
    buf_t *errs = buf_new(0);
    int fd, rc = 0;

    if (faccessat(dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
        buf_free(&errs);
        return 1;
    }
    if ((fd = init_create_at(dirfd, dir, name, 0600, errs)) < 0) {
        buf_truncate(errs, errs->len - (errs->len && errs->data[errs->len - 1] == '\n'));
        msg_error("cannot create the SRS secret file: %s", buf_cstr(errs));
        buf_free(&errs);
        return -1;
    }
    buf_free(&errs);
    if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key)) {
        msg_error("cannot create the SRS secret file %s: no random bytes: %s", path,
                  strerror(errno));
        rc = -1;
    } else {
        for (size_t i = 0; i < sizeof(key); i++)
            snprintf(hex + 2 * i, 3, "%02x", key[i]);
        hex[2 * sizeof(key)] = '\n';
        hex[2 * sizeof(key) + 1] = '\0';
        if (fchown(fd, 0, 0) < 0 || write(fd, hex, strlen(hex)) != (ssize_t)strlen(hex)
            || fsync(fd) < 0) {
            msg_error("cannot write the SRS secret file %s: %s", path, strerror(errno));
            rc = -1;
        }
    }
    explicit_bzero(key, sizeof(key));
    explicit_bzero(hex, sizeof(hex));
    close(fd);
    if (rc < 0) {
        unlinkat(dirfd, name, 0);
        return -1;
    }
    fsync(dirfd);
    msg_info("created the SRS secret file %s (root, mode 0600)", path);
    return 0;
}

int setup_srs_secret(void)
{
    const char *path = conf_str("srs_secret_file");
    char *dir, *slash, *why = NULL;
    uid_t owners[2];
    size_t nowners = trustpath_owners(owners);
    buf_t *errs;
    srs_t *s = NULL;
    int dirfd, r;

    if (!conf_bool("srs_enable"))
        return 0;
    if (path[0] != '/' || (slash = strrchr(path, '/'))[1] == '\0') {
        msg_error("srs_secret_file %s must be an absolute path of a file", path);
        return -1;
    }
    dir = slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
    errs = buf_new(0);
    dirfd = trustpath_open(dir, TRUSTPATH_DIR, owners, nowners, errs);
    if (dirfd < 0) {
        buf_truncate(errs, errs->len - (errs->len && errs->data[errs->len - 1] == '\n'));
        msg_error("cannot use srs_secret_file %s: %s", path, buf_cstr(errs));
        buf_free(&errs);
        free(dir);
        return -1;
    }
    buf_free(&errs);
    r = setup_srs_create(dirfd, dir, slash + 1, path);
    close(dirfd);
    free(dir);
    if (r < 0)
        return -1;
    r = srs_load(&s, &why);
    if (r < 0)
        msg_error("%s", why);
    else if (why)
        msg_warn("%s", why);
    free(why);
    srs_free(&s);
    return r < 0 ? -1 : 0;
}
