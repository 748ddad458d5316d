/*
 * conf_table - every main.conf parameter: name, type, default, bounds, doc.
 *
 * One row per parameter; main.conf(5) documents the same list.  Names are
 * Postfix's where the meaning is the same.  Defaults that depend on the
 * machine (myhostname, mydomain) are computed at load time.
 */
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

static const char *default_hostname(void)
{
    static char host[256];

    if (gethostname(host, sizeof(host) - 1) < 0 || host[0] == '\0')
        strcpy(host, "localhost");
    return host;
}

static const char *default_domain(void)
{
    const char *host = conf_str("myhostname");
    const char *dot = strchr(host, '.');

    return dot && dot[1] ? dot + 1 : "localdomain";
}

#define NOB 0, 0
#define DAY (24LL * 3600)

const struct conf_param conf_params[] = {
    /* Where things are. */
    {"config_directory", CONF_STR, DEF_CONFIG_DIRECTORY, NOB,
     "directory of main.conf and master.conf (set by -c or $POSTHORN_CONFIG)", NULL},
    {"queue_directory", CONF_STR, "/var/spool/posthorn", NOB,
     "the spool: maildrop, incoming, active, deferred, ... and the sockets", NULL},
    {"daemon_directory", CONF_STR, DEF_DAEMON_DIRECTORY, NOB,
     "where master finds the service programs", NULL},
    {"maillog_file", CONF_STR, "", NOB,
     "also append every log line to this file (empty: syslog only)", NULL},

    /* Identity. */
    {"myhostname", CONF_STR, NULL, NOB,
     "this machine's fully qualified name (default: the system host name)", default_hostname},
    {"mydomain", CONF_STR, NULL, NOB,
     "the domain of this machine (default: myhostname without its first label)", default_domain},
    {"myorigin", CONF_STR, "$myhostname", NOB,
     "domain appended to unqualified sender addresses", NULL},
    {"mydestination", CONF_STR, "$myhostname, localhost.$mydomain, localhost", NOB,
     "domains delivered locally", NULL},
    {"mynetworks", CONF_STR, "127.0.0.0/8 [::1]/128", NOB,
     "client networks that may relay", NULL},
    {"inet_interfaces", CONF_STR, "all", NOB,
     "addresses for inet services without an explicit host: all, loopback-only, or a list", NULL},

    /* Accounts (DESIGN.md §1). */
    {"mail_owner", CONF_STR, "posthorn", NOB,
     "owner of the queue; cleanup and qmgr run as this account", NULL},
    {"network_user", CONF_STR, "posthorn-net", NOB,
     "account of the network-facing programs (smtpd, submission, smtp)", NULL},
    {"auth_user", CONF_STR, "posthorn-auth", NOB,
     "account of authd, the only reader of password hashes", NULL},
    {"login_user", CONF_STR, "posthorn-null", NOB,
     "account of the pre-login halves of pop3d and imapd", NULL},
    {"setgid_group", CONF_STR, "posthorn-drop", NOB,
     "group of sendmail (setgid) and of maildrop/", NULL},

    /* Process management. */
    {"default_process_limit", CONF_INT, "100", 0, 100000,
     "process limit of a service whose maxproc is '-'", NULL},
    {"max_use", CONF_INT, "100", 1, INT_MAX,
     "connections a service process handles before it exits", NULL},
    {"max_idle", CONF_TIME, "100s", 1, DAY,
     "idle time after which a spare service process exits", NULL},
    {"service_throttle_time", CONF_TIME, "60s", 1, DAY,
     "pause before a service that failed at start-up is started again", NULL},
    {"master_stop_timeout", CONF_TIME, "5s", 1, 600,
     "grace after SIGTERM before master kills what is left with SIGKILL", NULL},

    /* Mail handling (used by the later services; listed so that configs
     * written by mailctl init check cleanly). */
    {"message_size_limit", CONF_SIZE, "10240000", 0, 1LL << 40,
     "largest message accepted, in bytes (0: no limit)", NULL},
    {"alias_maps", CONF_STR, "hash:$config_directory/aliases", NOB,
     "alias tables for local delivery (hash:/etc/aliases for Postfix's layout)", NULL},
    {"home_mailbox", CONF_STR, "Maildir/", NOB,
     "mailbox path relative to the home directory; a trailing / means Maildir", NULL},
    {"relayhost", CONF_STR, "", NOB,
     "next hop for non-local mail (empty: direct delivery by MX)", NULL},
    {"smtpd_tls_cert_file", CONF_STR, "", NOB,
     "PEM certificate chain of the SMTP server", NULL},
    {"smtpd_tls_key_file", CONF_STR, "$smtpd_tls_cert_file", NOB,
     "PEM private key of the SMTP server", NULL},
};

const size_t conf_nparams = sizeof(conf_params) / sizeof(conf_params[0]);
