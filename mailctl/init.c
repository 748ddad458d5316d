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
 */
#include <errno.h>
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
    {0, "authd", "y", "-", "-", "authd", "password checks"},
    {0, "lookupd", "y", "-", "-", "lookupd", "recipient checks for smtpd; later SPF, DKIM, DNSBL"},
    {0, "anvil", "y", "-", "1", "anvil", "session counts per client address"},
};

/* Create dir/name (never over an existing file) holding text. */
static int write_file(const char *dir, const char *name, int mode, const char *text)
{
    char *path = xasprintf("%s/%s", dir, name);
    FILE *fp = fopen(path, "wx");
    int rc = 0;

    if (fp == NULL) {
        fprintf(stderr, "mailctl: cannot create %s: %s\n", path, strerror(errno));
        free(path);
        return -1;
    }
    fputs(text, fp);
    if (fclose(fp) != 0) {
        fprintf(stderr, "mailctl: cannot write %s: %s\n", path, strerror(errno));
        rc = -1;
    }
    chmod(path, (mode_t)mode);
    free(path);
    return rc;
}

/* mkdir dir/name (name may be NULL); an existing directory is fine. */
static int make_dir(const char *dir, const char *name)
{
    char *path = name ? xasprintf("%s/%s", dir, name) : xstrdup(dir);
    int rc = 0;

    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "mailctl: cannot create %s: %s\n", path, strerror(errno));
        rc = -1;
    }
    free(path);
    return rc;
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
                            const char *daemon_dir)
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
        "maillog_file = %s/log/maillog\n"
        "alias_maps = hash:%s/aliases\n"
        "\n"
        "smtpd_tls_cert_file = %s/tls/cert.pem\n"
        "smtpd_tls_key_file = %s/tls/key.pem\n",
        o->hostname, o->domain, o->port_base > 0 ? "127.0.0.1" : "all", dir, daemon_dir, dir,
        etc, etc, etc);
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

/* Write the instance into dir (absolute, exists); 0 or -1 with messages. */
static int write_instance(const struct init_opts *o, const char *dir)
{
    char *etc = xasprintf("%s/etc", dir), *daemon_dir = sibling_daemon_dir();
    char *main_text = NULL, *master_text = NULL, *spec = NULL, *cert = NULL, *key = NULL;
    buf_t *errs = buf_new(0);
    int rc = -1;

    if (make_dir(etc, NULL) < 0 || make_dir(etc, "tls") < 0 || make_dir(dir, "spool") < 0
        || make_dir(dir, "log") < 0)
        goto out;
    main_text = main_conf_text(o, dir, etc, daemon_dir);
    master_text = master_conf_text(daemon_dir, o->port_base);
    if (write_file(etc, "main.conf", 0644, main_text) < 0
        || write_file(etc, "master.conf", 0644, master_text) < 0
        || write_file(etc, "aliases", 0644, aliases_text) < 0)
        goto out;
    spec = xasprintf("hash:%s/aliases", etc);
    cert = xasprintf("%s/tls/cert.pem", etc);
    key = xasprintf("%s/tls/key.pem", etc);
    if (map_build(spec, MAP_FORMAT_ALIASES, errs, NULL) < 0
        || tlsgen_self_signed(o->hostname, cert, key, errs) < 0) {
        fprintf(stderr, "mailctl: %s", buf_cstr(errs));
        goto out;
    }
    rc = 0;
out:
    free(etc);
    free(daemon_dir);
    free(main_text);
    free(master_text);
    free(spec);
    free(cert);
    free(key);
    buf_free(&errs);
    return rc;
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
    char hostbuf[256] = "", *dir, *end, *existing;
    int ch, rc;
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
    if (make_dir(argv[optind], NULL) < 0)
        return 1;
    if ((dir = realpath(argv[optind], NULL)) == NULL) {
        fprintf(stderr, "mailctl: %s: %s\n", argv[optind], strerror(errno));
        return 1;
    }
    existing = xasprintf("%s/etc/main.conf", dir);
    if (access(existing, F_OK) == 0) {
        fprintf(stderr, "mailctl: %s already exists: not overwriting an instance\n", existing);
        rc = 1;
    } else if ((rc = write_instance(&o, dir) < 0 ? 1 : 0) == 0) {
        printf("mailctl: new instance in %s\n", dir);
        printf("  start it:  mailctl -c %s/etc start\n", dir);
        if (o.port_base > 0)
            printf("  SMTP on 127.0.0.1:%d, submission on %d and %d\n", o.port_base + 25,
                   o.port_base + 587, o.port_base + 465);
    }
    free(existing);
    free(dir);
    return rc;
}
