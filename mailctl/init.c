/*
 * init.c - "mailctl init DIR [--hostname NAME] [--domain DOMAIN] [--port-base N]"
 *
 * Writes a complete, self-contained instance: DIR/etc/main.conf,
 * DIR/etc/master.conf, DIR/etc/aliases (+ aliases.db), a self-signed
 * certificate in DIR/etc/tls/, and the directories DIR/spool and DIR/log.
 * With a port base N > 0 every listener is on 127.0.0.1, port N + its
 * standard port; with N = 0 the standard ports on inet_interfaces.
 * Services whose program is not installed are written commented out.
 * An existing DIR/etc/main.conf is never overwritten.
 *
 * Root will run what this writes, so nobody else may have a hand in it:
 * DIR's parent and every directory above it must be root's and writable
 * by nobody else (sticky ones like /tmp aside), and an existing DIR,
 * DIR/etc, DIR/etc/tls, DIR/spool or DIR/log must be root's and writable
 * by nobody else, or init refuses (lib/trustpath; a user running init
 * may own them too).  Directories are made with mkdirat() and files with
 * openat(O_CREAT | O_EXCL | O_NOFOLLOW) relative to descriptors of those
 * checked directories, and get their owner and mode with fchown() and
 * fchmod() on the descriptor, whatever the umask: never a path that could
 * have become a symbolic link in between.
 * Failure modes: every problem is printed as "FILE: reason" on stderr and
 * init exits 1; what was made before the problem is left in place.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "map.h"
#include "mailctl.h"
#include "msg.h"
#include "trustpath.h"
#include "xalloc.h"

/* The standard service table, in master.conf order. */
static const struct std_service {
    int         port;           /* 0 = unix service */
    const char *name;           /* unix socket name */
    const char *priv, *wakeup, *maxproc;
    const char *command;
    const char *comment;
} std_services[] = {
    {25,  NULL, "n", "-", "-", "smtpd", "inbound SMTP (MX)"},
    {587, NULL, "n", "-", "-", "submission", "mail clients, STARTTLS + AUTH"},
    {465, NULL, "n", "-", "-", "submission -o smtpd_tls_wrappermode=yes", "mail clients, implicit TLS"},
    {110, NULL, "n", "-", "-", "pop3d", "POP3, STARTTLS"},
    {995, NULL, "n", "-", "-", "pop3d -o tls_wrappermode=yes", "POP3 over TLS"},
    {143, NULL, "n", "-", "-", "imapd", "IMAP, STARTTLS"},
    {993, NULL, "n", "-", "-", "imapd -o tls_wrappermode=yes", "IMAP over TLS"},
    {0, "cleanup", "y", "-", "-", "cleanup", "the only writer of new queue files"},
    {0, "qmgr", "y", "60", "1", "qmgr", "the queue manager"},
    {0, "pickup", "n", "60", "1", "pickup", "local submission: maildrop/ into the queue"},
    {0, "showq", "n", "-", "-", "showq", "the queue listing for mailq"},
    {0, "smtp", "y", "-", "-", "smtp", "outbound SMTP client"},
    {0, "local", "y", "-", "-", "local", "delivery into Maildir"},
    {0, "authd", "y", "-", "1", "authd", "password checks (one process: it throttles)"},
    {0, "lookupd", "y", "-", "-", "lookupd", "recipient checks and client names for smtpd"},
    {0, "checkd", "y", "-", "-", "checkd", "SPF, DKIM and DMARC of inbound mail, confined"},
    {0, "anvil", "y", "-", "1", "anvil", "session counts per client address"},
    {0, "pop3", "y", "-", "-", "pop3d", "POP3 after login: becomes the user for each session"},
    {0, "imap", "y", "-", "-", "imapd", "IMAP after login: one process per user serves its connections"},
};

int init_create_at(int dirfd, const char *dir, const char *name, mode_t mode, buf_t *errs)
{
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC,
                    0600);

    if (fd < 0) {
        buf_printf(errs, "%s/%s: cannot create: %s\n", dir, name, strerror(errno));
        return -1;
    }
    if (fchown(fd, geteuid(), getegid()) < 0 || fchmod(fd, mode) < 0) {
        buf_printf(errs, "%s/%s: cannot set the owner or mode: %s\n", dir, name, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Create dirfd/name (dir/name in messages; never over an existing file)
 * holding text. */
static int write_file(int dirfd, const char *dir, const char *name, mode_t mode, const char *text)
{
    buf_t *errs = buf_new(0);
    size_t len = strlen(text), off = 0;
    int fd = init_create_at(dirfd, dir, name, mode, errs), rc = 0;

    if (fd < 0) {
        fputs(buf_cstr(errs), stderr);
        buf_free(&errs);
        return -1;
    }
    buf_free(&errs);
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "%s/%s: cannot write: %s\n", dir, name, strerror(errno));
            rc = -1;
            break;
        }
        off += (size_t)n;
    }
    if (close(fd) < 0 && rc == 0) {
        fprintf(stderr, "%s/%s: cannot write: %s\n", dir, name, strerror(errno));
        rc = -1;
    }
    return rc;
}

/*
 * Make the directory path (parentfd/name; parentfd -1: path exists
 * already, nothing to make) or accept it as it is, and return an
 * O_RDONLY descriptor of it.  A directory made here gets mode and the
 * caller's owner; an existing one must pass trustpath (root's, or the
 * caller's, and writable by nobody else, nor anything above it).
 */
static int init_dir(int parentfd, const char *path, const char *name, mode_t mode)
{
    buf_t *errs = buf_new(0);
    uid_t owners[2];
    size_t nowners = trustpath_owners(owners);
    int created = 0, pathfd, fd = -1;

    if (parentfd >= 0) {
        if (mkdirat(parentfd, name, 0700) == 0)
            created = 1;
        else if (errno != EEXIST) {
            fprintf(stderr, "%s: cannot create: %s\n", path, strerror(errno));
            buf_free(&errs);
            return -1;
        }
    }
    /* Nobody else can change what path names once its parent passed the
     * check, so walking it again finds the directory made above. */
    pathfd = trustpath_open(path, TRUSTPATH_DIR, owners, nowners, errs);
    if (pathfd < 0) {
        fputs(buf_cstr(errs), stderr);
        buf_free(&errs);
        return -1;
    }
    buf_free(&errs);
    fd = openat(pathfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    close(pathfd);
    if (fd < 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    if (created && (fchown(fd, geteuid(), getegid()) < 0 || fchmod(fd, mode) < 0)) {
        fprintf(stderr, "%s: cannot set the owner or mode: %s\n", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static char *master_conf_text(const char *daemon_dir, int port_base)
{
    buf_t *b = buf_new(0);
    char *text;

    buf_append_str(b,
        "# master.conf - the Posthorn service table; see master.conf(5).\n"
        "# A line starting with white space continues the previous one.\n"
        "#\n"
        "# service               type  private wakeup maxproc command + args\n");
    for (size_t i = 0; i < sizeof(std_services) / sizeof(std_services[0]); i++) {
        const struct std_service *s = &std_services[i];
        char program[64], *svc, *path;
        int installed;

        snprintf(program, sizeof(program), "%.*s", (int)strcspn(s->command, " "), s->command);
        path = xasprintf("%s/%s", daemon_dir, program);
        installed = access(path, X_OK) == 0;
        free(path);
        if (s->port == 0)
            svc = xstrdup(s->name);
        else if (port_base > 0)
            svc = xasprintf("127.0.0.1:%d", port_base + s->port);
        else
            svc = xasprintf("%d", s->port);
        buf_printf(b, "\n# %s%s\n%s%-22s %-5s %-7s %-6s %-7s %s\n", s->comment,
                   installed ? "" : " (program not installed)", installed ? "" : "#",
                   svc, s->port ? "inet" : "unix", s->priv, s->wakeup, s->maxproc, s->command);
        free(svc);
    }
    /* Jobs: master runs them once a period; their programs are in
     * command_directory (this mailctl's). */
    buf_printf(b, "\n# jobs: master runs them once a period (the wakeup column)\n"
               "# DMARC aggregate reports of the days before, at midnight UTC\n"
               "%-22s %-5s %-7s %-6s %-7s %s\n", "dmarcreport", "job", "-", "86400", "1",
               "mailctl dmarc report");
    text = buf_steal(b, NULL);
    buf_free(&b);
    return text;
}

struct init_opts {
    const char *hostname;
    const char *domain;
    int         port_base;
};

static char *main_conf_text(const struct init_opts *o, const char *dir, const char *etc,
                            const char *daemon_dir, const char *command_dir)
{
    buf_t *b = buf_new(0);
    char *text;

    buf_printf(b,
        "# main.conf - Posthorn instance made by mailctl init; see main.conf(5).\n"
        "# \"mailctl check -d\" lists every parameter with its default.\n"
        "\n"
        "myhostname = %s\n"
        "mydomain = %s\n"
        "mydestination = $myhostname, localhost.$mydomain, localhost, $mydomain\n"
        "mynetworks = 127.0.0.0/8 [::1]/128\n"
        "inet_interfaces = %s\n"
        "\n"
        "queue_directory = %s/spool\n"
        "daemon_directory = %s\n"
        "command_directory = %s\n"
        "maillog_file = %s/log/maillog\n"
        "alias_maps = hash:%s/aliases\n"
        "\n"
        "smtpd_tls_cert_file = %s/tls/cert.pem\n"
        "smtpd_tls_key_file = %s/tls/key.pem\n",
        o->hostname, o->domain, o->port_base > 0 ? "127.0.0.1" : "all", dir, daemon_dir,
        command_dir, dir, etc, etc, etc);
    text = buf_steal(b, NULL);
    buf_free(&b);
    return text;
}

static const char aliases_text[] =
    "# aliases - local aliases; after a change run \"mailctl newaliases\".\n"
    "# name: target, target, ...\n"
    "postmaster: root\n"
    "MAILER-DAEMON: postmaster\n"
    "abuse: postmaster\n"
    "hostmaster: postmaster\n"
    "webmaster: postmaster\n";

/* The daemons next to this mailctl: PREFIX/sbin/mailctl -> PREFIX/libexec/posthorn. */
static char *sibling_daemon_dir(void)
{
    char *self = mailctl_self_dir();
    char *dir = xasprintf("%s/../libexec/posthorn", self);
    char *real = realpath(dir, NULL);

    free(self);
    if (real == NULL)
        return dir;
    free(dir);
    return real;
}

/* Write the instance into dir (absolute, real, checked; dirfd open on
 * it); 0 or -1 with messages. */
static int write_instance(const struct init_opts *o, const char *dir, int dirfd)
{
    char *etc = xasprintf("%s/etc", dir), *daemon_dir = sibling_daemon_dir(), *command_dir = NULL;
    char *tls = xasprintf("%s/tls", etc), *spool = xasprintf("%s/spool", dir);
    char *log = xasprintf("%s/log", dir);
    char *main_text = NULL, *master_text = NULL, *spec = NULL;
    buf_t *errs = buf_new(0);
    int rc = -1, etcfd = -1, tlsfd = -1, fd;
    struct stat st;

    if ((etcfd = init_dir(dirfd, etc, "etc", 0755)) < 0)
        goto out;
    if (fstatat(etcfd, "main.conf", &st, AT_SYMLINK_NOFOLLOW) == 0) {
        fprintf(stderr, "mailctl: %s/main.conf already exists: not overwriting an instance\n", etc);
        goto out;
    }
    if ((tlsfd = init_dir(etcfd, tls, "tls", 0755)) < 0
        || (fd = init_dir(dirfd, spool, "spool", 0755)) < 0)
        goto out;
    close(fd);
    if ((fd = init_dir(dirfd, log, "log", 0755)) < 0)
        goto out;
    close(fd);
    command_dir = mailctl_self_dir();
    main_text = main_conf_text(o, dir, etc, daemon_dir, command_dir);
    master_text = master_conf_text(daemon_dir, o->port_base);
    if (write_file(etcfd, etc, "main.conf", 0644, main_text) < 0
        || write_file(etcfd, etc, "master.conf", 0644, master_text) < 0
        || write_file(etcfd, etc, "aliases", 0644, aliases_text) < 0)
        goto out;
    /* By name below etc: it passed the check, nobody else can change it. */
    spec = xasprintf("hash:%s/aliases", etc);
    if (map_build(spec, MAP_FORMAT_ALIASES, errs, NULL) < 0
        || tlsgen_self_signed(o->hostname, tlsfd, tls, errs) < 0) {
        fputs(buf_cstr(errs), stderr);
        goto out;
    }
    rc = 0;
out:
    if (etcfd >= 0)
        close(etcfd);
    if (tlsfd >= 0)
        close(tlsfd);
    free(etc);
    free(tls);
    free(spool);
    free(log);
    free(daemon_dir);
    free(command_dir);
    free(main_text);
    free(master_text);
    free(spec);
    buf_free(&errs);
    return rc;
}

/* Make or accept the instance directory arg and check it (see the top);
 * its real path in *real and an O_RDONLY descriptor, or -1. */
static int open_instance_dir(const char *arg, char **real)
{
    buf_t *path = buf_new(0), *errs = buf_new(0);
    uid_t owners[2];
    size_t nowners = trustpath_owners(owners);
    char *parent, *base, *slash;
    int pfd = -1, fd = -1;

    *real = NULL;
    if (arg[0] != '/') {
        char *cwd = getcwd(NULL, 0);

        if (cwd == NULL) {
            fprintf(stderr, "mailctl: the current directory: %s\n", strerror(errno));
            goto out;
        }
        buf_printf(path, "%s/", cwd);
        free(cwd);
    }
    buf_append_str(path, arg);
    while (path->len > 1 && path->data[path->len - 1] == '/')
        buf_truncate(path, path->len - 1);
    slash = strrchr(path->data, '/');
    parent = xstrndup(path->data, slash == path->data ? 1 : (size_t)(slash - path->data));
    base = slash + 1;
    if (*base && strcmp(base, ".") != 0 && strcmp(base, "..") != 0) {
        pfd = trustpath_open(parent, TRUSTPATH_DIR | TRUSTPATH_STICKY_OK, owners, nowners, errs);
        if (pfd < 0)
            fputs(buf_cstr(errs), stderr);
    }
    free(parent);
    if ((pfd >= 0 || *base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        && (fd = init_dir(pfd, buf_cstr(path), base, 0755)) >= 0
        && (*real = realpath(buf_cstr(path), NULL)) == NULL) {
        fprintf(stderr, "%s: %s\n", buf_cstr(path), strerror(errno));
        close(fd);
        fd = -1;
    }
out:
    if (pfd >= 0)
        close(pfd);
    buf_free(&path);
    buf_free(&errs);
    return fd;
}

static int init_usage(void)
{
    fprintf(stderr, "usage: mailctl init DIR [--hostname NAME] [--domain DOMAIN] [--port-base N]\n");
    return 2;
}

int cmd_init(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"hostname", required_argument, NULL, 'h'},
        {"domain", required_argument, NULL, 'd'},
        {"port-base", required_argument, NULL, 'p'},
        {NULL, 0, NULL, 0},
    };
    static const char name_chars[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-";
    struct init_opts o = {0};
    char hostbuf[256] = "", *dir, *end;
    int ch, rc, dirfd;
    long n;

    optind = 0;         /* re-initialise getopt: main() used it with "+" */
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'h': o.hostname = optarg; break;
        case 'd': o.domain = optarg; break;
        case 'p':
            n = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end || n < 0 || n > 65535 - 993) {
                fprintf(stderr, "mailctl: --port-base must be a number from 0 to %d\n", 65535 - 993);
                return 2;
            }
            o.port_base = (int)n;
            break;
        default:
            return init_usage();
        }
    }
    if (optind != argc - 1)
        return init_usage();
    if (o.hostname == NULL) {
        gethostname(hostbuf, sizeof(hostbuf) - 1);
        o.hostname = hostbuf[0] ? hostbuf : "localhost";
    }
    if (strspn(o.hostname, name_chars) != strlen(o.hostname)
        || (o.domain && strspn(o.domain, name_chars) != strlen(o.domain))) {
        fprintf(stderr, "mailctl: host and domain names may only use letters, digits, '.' and '-'\n");
        return 2;
    }
    if (o.domain == NULL) {
        const char *dot = strchr(o.hostname, '.');

        o.domain = dot && dot[1] ? dot + 1 : "localdomain";
    }
    if ((dirfd = open_instance_dir(argv[optind], &dir)) < 0) {
        fprintf(stderr, "mailctl: not making an instance in %s\n", argv[optind]);
        return 1;
    }
    if ((rc = write_instance(&o, dir, dirfd) < 0 ? 1 : 0) == 0) {
        printf("mailctl: new instance in %s\n", dir);
        printf("  start it:  mailctl -c %s/etc start\n", dir);
        if (o.port_base > 0)
            printf("  SMTP on 127.0.0.1:%d, submission on %d and %d\n", o.port_base + 25,
                   o.port_base + 587, o.port_base + 465);
    }
    close(dirfd);
    free(dir);
    return rc;
}
