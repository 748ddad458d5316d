/*
 * mailctl - the Posthorn administration command.
 *
 *   mailctl [-c CONFDIR] init DIR [--hostname NAME] [--domain DOMAIN] [--port-base N]
 *   mailctl [-c CONFDIR] start [-f] | stop | reload | status | check [-d|-n]
 *   mailctl [-c CONFDIR] queue list | show ID | flush [DOMAIN] | delete ID|all |
 *                              hold ID|all | release ID|all   (queue.c)
 *   mailctl [-c CONFDIR] newaliases | map [TYPE:]FILE              (maps.c)
 *   mailctl [-c CONFDIR] user add NAME [--password-stdin] | passwd NAME
 *                             [--password-stdin] | del NAME | list  (user.c)
 *   mailctl [-c CONFDIR] dmarc report [-n] [--day YYYY-MM-DD]       (dmarc.c)
 *   mailctl [-c CONFDIR] dkim keygen [-f] DOMAIN [SELECTOR] | list    (dkim.c)
 *   mailctl [-c CONFDIR] dns DOMAIN                                    (dns.c)
 *
 * CONFDIR is -c, else $POSTHORN_CONFIG, else the compiled-in default
 * (/etc/posthorn for a default install).  Configuration errors are printed
 * as FILE:LINE: message.  Before main.conf or master.conf is read, and
 * before check, start or reload accept daemon_directory and the programs
 * in it, each must be root's and writable by nobody else, and so must
 * every directory above it and every symbolic link on the way (lib/
 * conftrust); a file that is not is printed as FILE: reason.  A user other
 * than root may also own them (see conftrust.h).
 * Exit codes: 0 success, 1 failure, 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "conftrust.h"
#include "mailctl.h"
#include "master_conf.h"
#include "msg.h"
#include "netaddr.h"
#include "xalloc.h"

const char *mailctl_confdir;

char *mailctl_self_dir(void)
{
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
    char *slash;

    if (n <= 0)
        return xstrdup(".");
    path[n] = '\0';
    slash = strrchr(path, '/');
    if (slash)
        *slash = '\0';
    return xstrdup(path);
}

/* Load main.conf after checking that it and its directory are trusted;
 * 0, or -1 with the errors printed. */
static int load_main(void)
{
    buf_t *errs = buf_new(0);
    int rc = -1;

    if (conftrust_main(mailctl_confdir, errs) == 0)
        rc = conf_load(mailctl_confdir, errs);
    fputs(buf_cstr(errs), stderr);
    buf_free(&errs);
    return rc;
}

/* Check main.conf and master.conf and that every program master.conf
 * names is installed, and that all of them are trusted.  Prints every
 * problem; quiet skips the programs. */
static int check_config(int quiet)
{
    buf_t *errs = buf_new(0);
    struct master_conf *mc = NULL;
    char *path;
    int rc = 0;

    if (conftrust_main(mailctl_confdir, errs) < 0 || conf_load(mailctl_confdir, errs) < 0) {
        fputs(buf_cstr(errs), stderr);
        buf_free(&errs);
        return -1;
    }
    /* Values whose syntax the parameter table cannot check. */
    {
        netaddr_list_t *nets = netaddr_list_parse(conf_str("mynetworks"), errs);
        const char *level = conf_str("smtpd_tls_security_level");

        if (nets == NULL) {
            fprintf(stderr, "%s/main.conf: mynetworks: %s\n", mailctl_confdir, buf_cstr(errs));
            rc = -1;
        }
        netaddr_list_free(&nets);
        if (strcasecmp(level, "none") != 0 && strcasecmp(level, "may") != 0
            && strcasecmp(level, "encrypt") != 0) {
            fprintf(stderr, "%s/main.conf: smtpd_tls_security_level: unknown level '%s' "
                    "(none, may or encrypt)\n", mailctl_confdir, level);
            rc = -1;
        }
        /* The SMTP client's (smtp checks them again when it starts). */
        {
            static const struct {
                const char *param, *values, *say;
            } words[] = {
                {"smtp_tls_security_level", " none may encrypt verify secure ",
                 "none, may, encrypt, verify or secure"},
                {"inet_protocols", " all ipv4 ipv6 ", "all, ipv4 or ipv6"},
                {"smtp_address_preference", " any ipv4 ipv6 ", "any, ipv4 or ipv6"},
            };
            const char *port = conf_str("smtp_tcp_port");
            struct netaddr na;

            for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
                const char *v = conf_str(words[i].param);
                char *pat = xasprintf(" %s ", v);

                if (strcasestr(words[i].values, pat) == NULL || *v == '\0' || strchr(v, ' ')) {
                    fprintf(stderr, "%s/main.conf: %s: unknown value '%s' (%s)\n",
                            mailctl_confdir, words[i].param, v, words[i].say);
                    rc = -1;
                }
                free(pat);
            }
            bool numeric = *port && strspn(port, "0123456789") == strlen(port);
            bool port_ok = numeric ? strlen(port) <= 5 && atol(port) >= 1 && atol(port) <= 65535
                                   : strcasecmp(port, "smtp") == 0
                                         || strcasecmp(port, "submission") == 0
                                         || strcasecmp(port, "submissions") == 0;

            if (!port_ok) {
                fprintf(stderr, "%s/main.conf: smtp_tcp_port: '%s' is not a port number or "
                        "smtp, submission, submissions\n", mailctl_confdir, port);
                rc = -1;
            }
            if ((*conf_str("smtp_bind_address")
                 && (netaddr_parse(conf_str("smtp_bind_address"), &na) < 0 || na.family != AF_INET))
                || (*conf_str("smtp_bind_address6")
                    && (netaddr_parse(conf_str("smtp_bind_address6"), &na) < 0
                        || na.family != AF_INET6))) {
                fprintf(stderr, "%s/main.conf: smtp_bind_address or smtp_bind_address6 is not an "
                        "address of its family\n", mailctl_confdir);
                rc = -1;
            }
        }
        buf_reset(errs);
    }
    path = xasprintf("%s/master.conf", mailctl_confdir);
    if (conftrust_master(mailctl_confdir, errs) == 0)
        mc = master_conf_load(path, errs);
    if (mc == NULL) {
        fputs(buf_cstr(errs), stderr);
        rc = -1;
    } else if (!quiet) {
        const char *dd = conf_str("daemon_directory");
        int dir_ok = conftrust_program(dd, NULL, errs) == 0;

        fputs(buf_cstr(errs), stderr);
        buf_reset(errs);
        if (!dir_ok)
            rc = -1;
        for (size_t i = 0; i < mc->nsvcs && dir_ok; i++) {
            /* A job's program is one of the commands (mailctl). */
            const char *dir = mc->svcs[i].type == MASTER_SVC_JOB ? conf_str("command_directory") : dd;
            char *prog = xasprintf("%s/%s", dir, mc->svcs[i].argv[0]);

            if (access(prog, X_OK) < 0) {
                fprintf(stderr, "%s:%d: %s %s: cannot run %s: %s\n", path, mc->svcs[i].line,
                        mc->svcs[i].type == MASTER_SVC_JOB ? "job" : "service",
                        mc->svcs[i].name, prog, strerror(errno));
                rc = -1;
            } else if (conftrust_program(dir, mc->svcs[i].argv[0], errs) < 0) {
                fputs(buf_cstr(errs), stderr);
                buf_reset(errs);
                rc = -1;
            }
            free(prog);
        }
    }
    master_conf_free(&mc);
    free(path);
    buf_free(&errs);
    return rc;
}

int mailctl_load_config(int full)
{
    if (full)
        return check_config(0);
    /* stop and status need only main.conf (where the spool is): a broken
     * master.conf must never keep the admin from stopping Posthorn. */
    return load_main();
}

static int cmd_check(int argc, char **argv)
{
    int ch, dump = 0, rc;

    optind = 0;         /* re-initialise getopt: main() used it with "+" */
    while ((ch = getopt(argc, argv, "dn")) != -1) {
        switch (ch) {
        case 'd': dump = 'd'; break;
        case 'n': dump = 'n'; break;
        default:
            fprintf(stderr, "usage: mailctl check [-d|-n]\n");
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "usage: mailctl check [-d|-n]\n");
        return 2;
    }
    if (dump) {
        if (load_main() < 0)
            return 1;
        conf_dump(stdout, dump == 'n' ? CONF_DUMP_CHANGED : CONF_DUMP_DEFAULTS);
        return 0;
    }
    if (check_config(0) < 0)
        return 1;
    if (access(conf_str("queue_directory"), F_OK) < 0)
        fprintf(stderr, "mailctl: warning: queue_directory %s does not exist yet "
                "(mailctl start creates it)\n", conf_str("queue_directory"));
    rc = maps_aliases_ready(0);
    if (maps_transport_ready(1) < 0)
        rc = -1;
    return rc < 0 ? 1 : 0;
}

static _Noreturn void usage(void)
{
    fprintf(stderr,
            "usage: mailctl [-c CONFDIR] COMMAND\n"
            "  init DIR [--hostname NAME] [--domain DOMAIN] [--port-base N]\n"
            "  start [-f]    start Posthorn (-f: in the foreground)\n"
            "  stop          stop Posthorn\n"
            "  reload        re-read main.conf and master.conf\n"
            "  status        show master and its services\n"
            "  check [-d|-n] check the configuration (-d: all parameters, -n: non-defaults)\n"
            "  queue list | show ID | flush [DOMAIN] | delete ID|all | hold ID|all | release ID|all\n"
            "                the mail queue: list, show one message, retry deferred mail now,\n"
            "                delete, put on hold, release from hold\n"
            "  newaliases    build the alias tables of alias_maps\n"
            "  map [TYPE:]FILE  build FILE.db from FILE\n"
            "  user add NAME [--password-stdin] | passwd NAME [--password-stdin] | del NAME | list\n"
            "                mail passwords (SMTP AUTH) of the host's accounts\n"
            "  dmarc report [-n] [--day YYYY-MM-DD]\n"
            "                send the DMARC aggregate reports of the days before today\n"
            "  dkim keygen [-f] DOMAIN [SELECTOR] | list\n"
            "                DKIM signing keys: make a domain's, list those cleanup loads\n"
            "  dns DOMAIN    the DNS records to publish for DOMAIN (MX, SPF, DKIM, DMARC, PTR)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        {"init", cmd_init}, {"start", cmd_start}, {"stop", cmd_stop},
        {"reload", cmd_reload}, {"status", cmd_status}, {"check", cmd_check},
        {"queue", cmd_queue}, {"newaliases", cmd_newaliases}, {"map", cmd_map},
        {"user", cmd_user}, {"dmarc", cmd_dmarc}, {"dkim", cmd_dkim}, {"dns", cmd_dns},
    };
    int ch;

    msg_init("mailctl", MSG_STDERR);
    mailctl_confdir = getenv("POSTHORN_CONFIG");
    while ((ch = getopt(argc, argv, "+c:v")) != -1) {
        switch (ch) {
        case 'c': mailctl_confdir = optarg; break;
        case 'v': msg_verbose++; break;
        default: usage();
        }
    }
    if (optind >= argc)
        usage();
    if (mailctl_confdir == NULL || *mailctl_confdir == '\0')
        mailctl_confdir = DEF_CONFIG_DIRECTORY;
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(argv[optind], cmds[i].name) == 0)
            return cmds[i].fn(argc - optind, argv + optind);
    fprintf(stderr, "mailctl: unknown command '%s'\n", argv[optind]);
    usage();
}
