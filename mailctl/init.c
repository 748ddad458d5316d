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
    {0, "qmgr", "y", "300", "1", "qmgr", "the queue manager"},
    {0, "smtp", "y", "-", "-", "smtp", "outbound SMTP client"},
    {0, "local", "y", "-", "-", "local", "delivery into Maildir"},
    {0, "authd", "y", "-", "-", "authd", "password checks"},
    {0, "lookupd", "y", "-", "-", "lookupd", "SPF, DKIM and DNSBL lookups"},
};

static int write_file(const char *path, int mode, const char *text)
{
    FILE *fp = fopen(path, "wx");

    if (fp == NULL) {
        fprintf(stderr, "mailctl: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    fputs(text, fp);
    if (fclose(fp) != 0) {
        fprintf(stderr, "mailctl: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    chmod(path, (mode_t)mode);
    return 0;
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "mailctl: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
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

int cmd_init(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"hostname", required_argument, NULL, 'h'},
        {"domain", required_argument, NULL, 'd'},
        {"port-base", required_argument, NULL, 'p'},
        {NULL, 0, NULL, 0},
    };
    char hostbuf[256] = "", *dir, *etc, *p, *text, *self, *daemon_dir, *cert, *key;
    const char *hostname = NULL, *domain = NULL;
    int ch, port_base = 0, rc = 1;
    buf_t *b, *errs;
    long n;

    optind = 0;         /* re-initialise getopt: main() used it with "+" */
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'h': hostname = optarg; break;
        case 'd': domain = optarg; break;
        case 'p':
            n = strtol(optarg, &p, 10);
            if (*optarg == '\0' || *p || n < 0 || n > 65535 - 993) {
                fprintf(stderr, "mailctl: --port-base must be a number from 0 to %d\n", 65535 - 993);
                return 2;
            }
            port_base = (int)n;
            break;
        default:
            fprintf(stderr, "usage: mailctl init DIR [--hostname NAME] [--domain DOMAIN] [--port-base N]\n");
            return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: mailctl init DIR [--hostname NAME] [--domain DOMAIN] [--port-base N]\n");
        return 2;
    }
    if (hostname == NULL) {
        gethostname(hostbuf, sizeof(hostbuf) - 1);
        hostname = hostbuf[0] ? hostbuf : "localhost";
    }
    if (strspn(hostname, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != strlen(hostname)
        || (domain && strspn(domain, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != strlen(domain))) {
        fprintf(stderr, "mailctl: host and domain names may only use letters, digits, '.' and '-'\n");
        return 2;
    }
    if (domain == NULL) {
        const char *dot = strchr(hostname, '.');

        domain = dot && dot[1] ? dot + 1 : "localdomain";
    }
    if (make_dir(argv[optind]) < 0)
        return 1;
    dir = realpath(argv[optind], NULL);
    if (dir == NULL) {
        fprintf(stderr, "mailctl: %s: %s\n", argv[optind], strerror(errno));
        return 1;
    }
    etc = xasprintf("%s/etc", dir);
    p = xasprintf("%s/main.conf", etc);
    if (access(p, F_OK) == 0) {
        fprintf(stderr, "mailctl: %s already exists: not overwriting an instance\n", p);
        goto out;
    }
    self = mailctl_self_dir();
    daemon_dir = xasprintf("%s/../libexec/posthorn", self);
    {
        char *real = realpath(daemon_dir, NULL);

        if (real) {
            free(daemon_dir);
            daemon_dir = real;
        }
    }
    free(self);
    if (make_dir(etc) < 0)
        goto out;
    text = xasprintf("%s/tls", etc);
    make_dir(text);
    free(text);
    text = xasprintf("%s/spool", dir);
    make_dir(text);
    free(text);
    text = xasprintf("%s/log", dir);
    make_dir(text);
    free(text);

    b = buf_new(0);
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
        hostname, domain, port_base > 0 ? "127.0.0.1" : "all", dir, daemon_dir, dir, etc,
        etc, etc);
    text = xasprintf("%s/main.conf", etc);
    if (write_file(text, 0644, buf_cstr(b)) < 0) {
        free(text);
        buf_free(&b);
        free(daemon_dir);
        goto out;
    }
    free(text);
    buf_free(&b);

    text = master_conf_text(daemon_dir, port_base);
    free(daemon_dir);
    cert = xasprintf("%s/master.conf", etc);
    if (write_file(cert, 0644, text) < 0) {
        free(cert);
        free(text);
        goto out;
    }
    free(cert);
    free(text);

    text = xasprintf("%s/aliases", etc);
    if (write_file(text, 0644,
                   "# aliases - local aliases; after a change run \"mailctl newaliases\".\n"
                   "# name: target, target, ...\n"
                   "postmaster: root\n"
                   "MAILER-DAEMON: postmaster\n"
                   "abuse: postmaster\n"
                   "hostmaster: postmaster\n"
                   "webmaster: postmaster\n") < 0) {
        free(text);
        goto out;
    }
    free(text);
    errs = buf_new(0);
    text = xasprintf("hash:%s/aliases", etc);
    if (map_build(text, MAP_FORMAT_ALIASES, errs, NULL) < 0) {
        fprintf(stderr, "mailctl: %s", buf_cstr(errs));
        free(text);
        buf_free(&errs);
        goto out;
    }
    free(text);

    cert = xasprintf("%s/tls/cert.pem", etc);
    key = xasprintf("%s/tls/key.pem", etc);
    if (tlsgen_self_signed(hostname, cert, key, errs) < 0) {
        fprintf(stderr, "mailctl: %s", buf_cstr(errs));
        free(cert);
        free(key);
        buf_free(&errs);
        goto out;
    }
    free(cert);
    free(key);
    buf_free(&errs);
    printf("mailctl: new instance in %s\n", dir);
    printf("  start it:  mailctl -c %s start\n", etc);
    if (port_base > 0)
        printf("  SMTP on 127.0.0.1:%d, submission on %d and %d\n", port_base + 25,
               port_base + 587, port_base + 465);
    rc = 0;
out:
    free(p);
    free(etc);
    free(dir);
    return rc;
}
