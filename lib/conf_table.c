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

/* The host's alias file: the Makefile says where sysconfdir is. */
#ifndef DEF_ALIAS_FILE
#define DEF_ALIAS_FILE "/etc/aliases"
#endif
#ifndef DEF_COMMAND_DIRECTORY
#define DEF_COMMAND_DIRECTORY "/usr/local/sbin"
#endif

const struct conf_param conf_params[] = {
    /* Where things are. */
    {"config_directory", CONF_STR, DEF_CONFIG_DIRECTORY, NOB,
     "directory of main.conf and master.conf (set by -c or $POSTHORN_CONFIG)", NULL},
    {"queue_directory", CONF_STR, "/var/spool/posthorn", NOB,
     "the spool: maildrop, incoming, active, deferred, ... and the sockets", NULL},
    {"daemon_directory", CONF_STR, DEF_DAEMON_DIRECTORY, NOB,
     "where master finds the service programs", NULL},
    {"command_directory", CONF_STR, DEF_COMMAND_DIRECTORY, NOB,
     "where master finds the programs of its jobs (mailctl, sendmail)", NULL},
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
    {"auth_password_file", CONF_STR, "$config_directory/passwords.db", NOB,
     "the mail password store (mailctl user): root's, group auth_user, mode 0640", NULL},
    {"auth_system_passwords", CONF_BOOL, "no", NOB,
     "authd: PLAIN and LOGIN also accept the account's login password (/etc/shadow; authd "
     "then keeps group shadow)", NULL},
    {"auth_scram_iterations", CONF_INT, "4096", 4096, 10000000,
     "SCRAM-SHA-256 iterations for passwords set from now on (mailctl user add, passwd)", NULL},
    {"auth_channel_binding", CONF_BOOL, "no", NOB,
     "offer SCRAM-SHA-256-PLUS (TLS channel binding) to mail clients: off by default because "
     "mutt, with GNU SASL, picks it whenever it is offered, cannot do it, and then fails to log "
     "in", NULL},
    {"auth_failure_delay", CONF_TIME, "1s", 0, 60,
     "authd: each recent failure of a client address or account delays the next failure "
     "reply by this much more (at most 8 times)", NULL},
    {"auth_failure_limit", CONF_INT, "10", 1, 100000,
     "authd: failures from one client address within auth_failure_window before it is refused",
     NULL},
    {"auth_failure_window", CONF_TIME, "10m", 1, DAY,
     "authd: how long a failure counts, from the last one", NULL},
    {"login_user", CONF_STR, "posthorn-null", NOB,
     "account of the pre-login halves of pop3d and imapd", NULL},
    {"check_user", CONF_STR, "posthorn-check", NOB,
     "account of checkd, the confined SPF, DKIM and DMARC checker, and of the DMARC report job",
     NULL},
    {"setgid_group", CONF_STR, "posthorn-drop", NOB,
     "group of sendmail (setgid) and of maildrop/", NULL},

    /* Process management. */
    {"default_process_limit", CONF_INT, "100", 0, 100000,
     "process limit of a service whose maxproc is '-'", NULL},
    {"max_use", CONF_INT, "1000", 1, INT_MAX,
     "connections a service process handles before it exits", NULL},
    {"max_idle", CONF_TIME, "100s", 1, DAY,
     "idle time after which a spare service process exits", NULL},
    {"service_throttle_time", CONF_TIME, "60s", 1, DAY,
     "pause before a service that failed at start-up is started again", NULL},
    {"master_stop_timeout", CONF_TIME, "5s", 1, 600,
     "grace after SIGTERM before master kills what is left with SIGKILL", NULL},

    /* Mail handling. */
    {"mail_name", CONF_STR, "Posthorn", NOB,
     "the name the software announces (greeting, Received:, bounces)", NULL},
    {"message_size_limit", CONF_SIZE, "10240000", 0, 1LL << 40,
     "largest message accepted, in bytes (0: no limit)", NULL},
    {"local_recipient_maps", CONF_STR, "unix:passwd.byname $alias_maps", NOB,
     "tables of valid local recipients, checked at RCPT time (empty: accept any)", NULL},
    {"default_privs", CONF_STR, "nobody", NOB,
     "account that runs commands of root-owned alias tables (never root)", NULL},
    {"recipient_delimiter", CONF_STR, "+", NOB,
     "characters that separate a user name from an address extension (user+tag); empty: none", NULL},
    {"hopcount_limit", CONF_INT, "50", 1, 10000,
     "most Received: headers a message may carry before it is refused as a loop", NULL},
    {"first_valid_uid", CONF_INT, "1000", 1, INT_MAX,
     "smallest uid local delivers to; lower uids (and root) must be aliased", NULL},

    /* smtpd. */
    {"smtpd_banner", CONF_STR, "$myhostname ESMTP $mail_name", NOB,
     "the text after 220 in the greeting", NULL},
    {"line_length_limit", CONF_INT, "2048", 512, 1 << 20,
     "longest SMTP command line accepted, CRLF included", NULL},
    {"smtpd_data_line_limit", CONF_INT, "131072", 1000, 1 << 24,
     "longest line of message data accepted, CRLF included", NULL},
    {"smtpd_recipient_limit", CONF_INT, "1000", 1, 1000000,
     "most recipients in one transaction (452 4.5.3 after that)", NULL},
    {"smtpd_soft_error_limit", CONF_INT, "10", 0, 10000,
     "errors in a session after which each reply is delayed by smtpd_error_sleep_time", NULL},
    {"smtpd_hard_error_limit", CONF_INT, "20", 1, 10000,
     "errors in a session after which the session is ended (421 4.7.0)", NULL},
    {"smtpd_error_sleep_time", CONF_TIME, "1s", 0, 600,
     "delay before each reply once smtpd_soft_error_limit is passed", NULL},
    {"smtpd_timeout", CONF_TIME, "300s", 1, DAY,
     "time to wait for a command from the client, and to send a reply", NULL},
    {"smtpd_data_timeout", CONF_TIME, "300s", 1, DAY,
     "time to wait for each read of message data (DATA and BDAT)", NULL},
    {"smtpd_client_connection_count_limit", CONF_INT, "50", 0, 100000,
     "most simultaneous sessions from one client address (0: no limit)", NULL},
    {"disable_vrfy_command", CONF_BOOL, "yes", NOB,
     "answer VRFY with 252 without checking the address (no: check it)", NULL},
    {"smtpd_tls_security_level", CONF_STR, "may", NOB,
     "none: no STARTTLS; may: offer STARTTLS; encrypt: require it before MAIL", NULL},
    {"smtpd_tls_auth_only", CONF_BOOL, "yes", NOB,
     "submission: AUTH only over TLS (538 5.7.11 before STARTTLS)", NULL},
    {"smtpd_sasl_auth_enable", CONF_BOOL, "no", NOB,
     "smtpd: offer AUTH on port 25 too (as submission does; an authenticated client may relay)",
     NULL},
    {"smtpd_sender_login_maps", CONF_STR, "", NOB,
     "submission: tables of the logins that own a sender address, besides each login's own "
     "addresses", NULL},
    {"submission_hide_client", CONF_BOOL, "no", NOB,
     "submission: the Received: header of a client's message leaves out the client's name and "
     "address", NULL},
    {"submission_message_rate_limit", CONF_INT, "500", 0, 1000000000,
     "submission: messages one login may send per hour (0: no limit)", NULL},
    {"submission_recipient_rate_limit", CONF_INT, "2000", 0, 1000000000,
     "submission: recipients one login may send to per hour (0: no limit)", NULL},
    {"smtpd_tls_wrappermode", CONF_BOOL, "no", NOB,
     "TLS from the first byte (port 465 style) instead of STARTTLS", NULL},

    /* POP3 (pop3d). */
    {"tls_wrappermode", CONF_BOOL, "no", NOB,
     "pop3d and imapd: TLS from the first byte (ports 995 and 993) instead of STLS/STARTTLS",
     NULL},
    {"pop3d_tls_cert_file", CONF_STR, "$smtpd_tls_cert_file", NOB,
     "pop3d: PEM certificate chain for STLS and port 995 (empty: no TLS)", NULL},
    {"pop3d_tls_key_file", CONF_STR, "$smtpd_tls_key_file", NOB,
     "pop3d: PEM private key of pop3d_tls_cert_file", NULL},
    {"pop3_plaintext_auth", CONF_BOOL, "no", NOB,
     "pop3d: allow passwords (USER/PASS, PLAIN, LOGIN) on a connection that is neither TLS "
     "nor from the host itself", NULL},
    {"pop3_apop", CONF_BOOL, "no", NOB,
     "pop3d: offer APOP (RFC 1939 7), for users who have an APOP secret (mailctl user apop); "
     "the secrets are kept in clear", NULL},
    {"pop3d_timeout", CONF_TIME, "600s", 1, DAY,
     "pop3d: how long a client may take to send its next command (RFC 1939: at least ten "
     "minutes once logged in)", NULL},
    {"pop3d_client_connection_count_limit", CONF_INT, "50", 0, 100000,
     "pop3d: connections one client address may hold in the login half at once (before "
     "login, and TLS sessions it proxies), counted by anvil (0: no limit)", NULL},
    {"pop3d_error_limit", CONF_INT, "20", 1, 1000,
     "pop3d: failed commands after which a session is ended", NULL},

    /* IMAP (imapd). */
    {"imapd_tls_cert_file", CONF_STR, "$smtpd_tls_cert_file", NOB,
     "imapd: PEM certificate chain for STARTTLS and port 993 (empty: no TLS)", NULL},
    {"imapd_tls_key_file", CONF_STR, "$smtpd_tls_key_file", NOB,
     "imapd: PEM private key of imapd_tls_cert_file", NULL},
    {"imap_plaintext_auth", CONF_BOOL, "no", NOB,
     "imapd: allow passwords (LOGIN, PLAIN) on a connection that is neither TLS nor from "
     "the host itself (Dovecot's disable_plaintext_auth = no)", NULL},
    {"imapd_timeout", CONF_TIME, "30m", 60, DAY,
     "imapd: how long a client may stay silent, IDLE included (RFC 9051 5.4: at least 30 "
     "minutes once logged in)", NULL},
    {"imapd_login_timeout", CONF_TIME, "60s", 1, DAY,
     "imapd: how long a client that has not logged in may take to send its next command",
     NULL},
    {"imapd_client_connection_count_limit", CONF_INT, "50", 0, 100000,
     "imapd: connections one client address may hold in the login half at once (before "
     "login, and TLS sessions it proxies), counted by anvil (0: no limit)", NULL},
    {"imapd_error_limit", CONF_INT, "20", 1, 1000,
     "imapd: failed commands (BAD replies) after which a session is ended", NULL},
    {"imapd_max_line_length", CONF_SIZE, "65536", 1024, 1LL << 24,
     "imapd: longest command line, literals not counted (Dovecot's imap_max_line_length)",
     NULL},

    /* Queue manager. */
    {"queue_run_delay", CONF_TIME, "300s", 1, DAY,
     "how often qmgr scans the deferred queue for mail that is due", NULL},
    {"minimal_backoff_time", CONF_TIME, "300s", 1, 30 * DAY,
     "delay before the first retry of a deferred recipient", NULL},
    {"maximal_backoff_time", CONF_TIME, "4000s", 1, 30 * DAY,
     "longest delay between retries (the delay doubles up to this)", NULL},
    {"maximal_queue_lifetime", CONF_TIME, "5d", 0, 365 * DAY,
     "how long a message may stay deferred before it is bounced as undeliverable", NULL},
    {"bounce_queue_lifetime", CONF_TIME, "5d", 0, 365 * DAY,
     "the same for bounces (mail from the null sender), which are then dropped", NULL},
    {"delay_warning_time", CONF_TIME, "0h", 0, 365 * DAY,
     "after how long in the queue the sender of mail still deferred gets one \"delayed\" "
     "notification (0: never)", NULL},
    {"local_concurrency_limit", CONF_INT, "20", 1, 10000,
     "most local deliveries qmgr runs at the same time, and most delivery processes local runs", NULL},
    {"local_destination_concurrency_limit", CONF_INT, "2", 1, 10000,
     "most delivery processes local runs for one recipient as one account at the same time",
     NULL},
    {"local_delivery_idle_time", CONF_TIME, "2s", 0, 60,
     "how long a delivery process that became a user (not root) for that user's Maildir "
     "waits for more mail for the same user before it exits (0: a new process for each "
     "delivery)", NULL},
    {"local_delivery_batch_limit", CONF_INT, "32", 1, 1000,
     "most messages for one recipient that one local delivery process writes into the "
     "Maildir and commits together (one syncfs, one fsync of new/); qmgr keeps up to "
     "local_destination_concurrency_limit times this many at local per recipient", NULL},
    {"initial_destination_concurrency", CONF_INT, "5", 1, 10000,
     "deliveries at once to a remote destination qmgr starts with (then feedback moves it)",
     NULL},
    {"default_destination_concurrency_limit", CONF_INT, "20", 1, 10000,
     "most deliveries at once to one destination of a transport without its own limit", NULL},
    {"smtp_destination_concurrency_limit", CONF_INT, "$default_destination_concurrency_limit",
     1, 10000, "most SMTP deliveries at once to one destination (domain or relayhost)", NULL},
    {"default_destination_recipient_limit", CONF_INT, "50", 1, 1000,
     "most recipients of one message in one delivery to a destination", NULL},
    {"smtp_destination_recipient_limit", CONF_INT, "$default_destination_recipient_limit", 1,
     1000, "most recipients of one message in one SMTP delivery", NULL},
    {"default_destination_concurrency_failed_cohort_limit", CONF_INT, "1", 1, 1000,
     "failed connections in a row (counted per window) after which a destination is "
     "suspended until minimal_backoff_time has passed", NULL},
    {"command_time_limit", CONF_TIME, "1000s", 1, DAY,
     "longest a local delivery (a |command of an alias or .forward) may run before it is killed", NULL},
    {"deliver_lock_attempts", CONF_INT, "20", 1, 1000,
     "how often local tries to lock a file it appends mail to before it defers the delivery",
     NULL},
    {"deliver_lock_delay", CONF_TIME, "1s", 1, 3600,
     "time between two attempts to lock a file local appends mail to", NULL},
    {"forward_target_limit", CONF_INT, "1000", 1, 100000,
     "most targets a user's ~/.forward and the files it includes may name", NULL},
    {"qmgr_message_active_limit", CONF_INT, "20000", 1, 10000000,
     "most messages qmgr holds in active/ at once; the rest wait in incoming/", NULL},
    {"alias_maps", CONF_STR, "hash:" DEF_ALIAS_FILE, NOB,
     "alias tables for local delivery: the host's own /etc/aliases, as in Postfix", NULL},
    {"virtual_alias_maps", CONF_STR, "", NOB,
     "tables that rewrite recipient addresses, in any domain, to other addresses (cleanup)", NULL},
    {"virtual_alias_domains", CONF_STR, "$virtual_alias_maps", NOB,
     "domains whose addresses exist only in virtual_alias_maps: names, or tables keyed by domain", NULL},
    {"virtual_alias_recursion_limit", CONF_INT, "1000", 1, 100000,
     "deepest chain of virtual aliases (a -> b -> c ...) before the message is refused", NULL},
    {"virtual_alias_expansion_limit", CONF_INT, "1000", 1, 1000000,
     "most addresses one recipient may expand to through virtual_alias_maps", NULL},
    {"home_mailbox", CONF_STR, "Maildir/", NOB,
     "mailbox path relative to the home directory; a trailing / means Maildir", NULL},
    /* SRS: the sender of mail forwarded off-host (lib/srs.h). */
    {"srs_enable", CONF_BOOL, "yes", NOB,
     "rewrite the envelope sender (SRS) of mail an alias or .forward sends to another domain, "
     "and route bounces to such addresses back", NULL},
    {"srs_domain", CONF_STR, "$myhostname", NOB,
     "domain of the SRS addresses; must be in mydestination or virtual_alias_domains (the "
     "default, the host's name, always is)", NULL},
    {"srs_secret_file", CONF_STR, "$config_directory/srs.secret", NOB,
     "the SRS secrets, one a line, the first signs (root's, 0600; mailctl start makes it)",
     NULL},
    {"srs_max_age", CONF_TIME, "21d", DAY, 365 * DAY,
     "how long a bounce to an SRS address is accepted after the forwarding", NULL},
    {"relayhost", CONF_STR, "", NOB,
     "next hop for non-local mail (empty: direct delivery by MX)", NULL},
    {"transport_maps", CONF_STR, "", NOB,
     "tables that choose a recipient's transport and next hop (transport(5); empty: no "
     "lookups, mydestination goes to local, the rest to smtp)", NULL},

    /* The SMTP client (smtp; see smtp(8)). */
    {"inet_protocols", CONF_STR, "all", NOB,
     "address families the SMTP client connects over: all, ipv4 or ipv6", NULL},
    {"smtp_tcp_port", CONF_STR, "smtp", NOB,
     "port of remote SMTP servers, a number or smtp/submission/submissions (a next hop "
     "with :port overrides it)", NULL},
    {"smtp_helo_name", CONF_STR, "$myhostname", NOB,
     "the name the SMTP client gives in EHLO and HELO", NULL},
    {"smtp_bind_address", CONF_STR, "", NOB,
     "local IPv4 address the SMTP client connects from (empty: the system chooses)", NULL},
    {"smtp_bind_address6", CONF_STR, "", NOB,
     "local IPv6 address the SMTP client connects from (empty: the system chooses)", NULL},
    {"smtp_address_preference", CONF_STR, "any", NOB,
     "order of a host's addresses: any (shuffled), ipv4 or ipv6 first", NULL},
    {"smtp_mx_address_limit", CONF_INT, "5", 0, 1000,
     "most addresses of a next hop's MX hosts the SMTP client tries per delivery (0: all)", NULL},
    {"smtp_mx_session_limit", CONF_INT, "2", 0, 1000,
     "most SMTP sessions (past the greeting and EHLO) per delivery (0: no limit)", NULL},
    {"smtp_connect_timeout", CONF_TIME, "30s", 1, 3600,
     "longest wait for a TCP connection to a remote SMTP server", NULL},
    {"smtp_helo_timeout", CONF_TIME, "300s", 1, DAY,
     "longest wait for the greeting and for the reply to EHLO, HELO or AUTH", NULL},
    {"smtp_starttls_timeout", CONF_TIME, "300s", 1, DAY,
     "longest wait for the reply to STARTTLS and for the TLS handshake", NULL},
    {"smtp_mail_timeout", CONF_TIME, "300s", 1, DAY,
     "longest wait for the reply to MAIL FROM", NULL},
    {"smtp_rcpt_timeout", CONF_TIME, "300s", 1, DAY,
     "longest wait for the reply to RCPT TO", NULL},
    {"smtp_data_init_timeout", CONF_TIME, "120s", 1, DAY,
     "longest wait for the reply to DATA", NULL},
    {"smtp_data_xfer_timeout", CONF_TIME, "180s", 1, DAY,
     "longest stall while sending the message content", NULL},
    {"smtp_data_done_timeout", CONF_TIME, "600s", 1, DAY,
     "longest wait for the reply to the end of the content", NULL},
    {"smtp_rset_timeout", CONF_TIME, "20s", 1, DAY,
     "longest wait for the reply to RSET before a cached session is used again", NULL},
    {"smtp_quit_timeout", CONF_TIME, "300s", 1, DAY,
     "longest wait to send QUIT (its reply is not waited for)", NULL},
    {"smtp_connection_cache_time_limit", CONF_TIME, "2s", 0, 3600,
     "how long an idle SMTP session waits for the next delivery to the same next hop "
     "(0: no reuse)", NULL},
    {"smtp_connection_reuse_time_limit", CONF_TIME, "300s", 1, DAY,
     "age after which an SMTP session is no longer used for another delivery", NULL},
    {"smtp_tls_security_level", CONF_STR, "may", NOB,
     "none, may (STARTTLS when offered), encrypt (required), verify (and the certificate "
     "names the MX host), secure (and it names the next-hop domain)", NULL},
    {"smtp_tls_CAfile", CONF_STR, "", NOB,
     "PEM file of the CAs that vouch for servers' certificates (empty: the system's)", NULL},
    {"smtp_tls_session_cache_timeout", CONF_TIME, "3600s", 0, 7 * DAY,
     "how long the SMTP client may resume a TLS session (0: never)", NULL},
    {"smtp_sasl_auth_enable", CONF_BOOL, "no", NOB,
     "authenticate to servers listed in smtp_sasl_password_maps", NULL},
    {"smtp_sasl_password_maps", CONF_STR, "", NOB,
     "tables of \"next-hop-or-host user:password\" for SASL (read when smtp starts)", NULL},
    {"smtp_sasl_security_options", CONF_STR, "noplaintext, noanonymous", NOB,
     "SASL mechanisms the SMTP client refuses without TLS (noplaintext: PLAIN, LOGIN)", NULL},
    {"smtp_sasl_tls_security_options", CONF_STR, "noanonymous", NOB,
     "SASL mechanisms the SMTP client refuses over TLS", NULL},
    {"mime_nesting_limit", CONF_INT, "100", 1, 10000,
     "deepest MIME nesting the SMTP client's 8-bit downgrade follows", NULL},
    {"header_size_limit", CONF_INT, "102400", 1000, 1 << 24,
     "most bytes of one MIME header block the 8-bit downgrade holds to rewrite it", NULL},
    {"smtpd_tls_cert_file", CONF_STR, "", NOB,
     "PEM certificate chain of the SMTP server", NULL},
    {"smtpd_tls_key_file", CONF_STR, "$smtpd_tls_cert_file", NOB,
     "PEM private key of the SMTP server", NULL},

    /* DMARC aggregate reports (mailctl dmarc report). */
    {"dmarc_report_sender", CONF_STR, "postmaster@$mydomain", NOB,
     "From: address of DMARC aggregate reports, and their report_metadata email", NULL},
    {"dmarc_report_org_name", CONF_STR, "$mydomain", NOB,
     "org_name of DMARC aggregate reports: who reports", NULL},
    /* DKIM signing (cleanup; mailctl dkim, dns). */
    {"dkim_sign", CONF_BOOL, "yes", NOB,
     "cleanup: DKIM-sign mail from local submitters, SMTP AUTH clients, mynetworks and "
     "bounces with the keys of dkim_key_directory (no: sign nothing)", NULL},
    {"dkim_ed25519_process_limit", CONF_INT, "2000", 1, 1000000,
     "cleanup: Ed25519 signatures a cleanup process makes before it ends (libopendkim keeps "
     "about 470 bytes of each)", NULL},
    {"dkim_key_directory", CONF_STR, "$config_directory/dkim", NOB,
     "DKIM private keys as DOMAIN/SELECTOR.key (mailctl dkim keygen): root's, read by cleanup "
     "before its privilege drop", NULL},

    /* DNS (lib/dns, for the programs that look names up). */
    {"dns_forwarders", CONF_STR, "", NOB,
     "recursive DNS servers to ask, as address[@port] (empty: the nameserver lines of "
     "/etc/resolv.conf)", NULL},
    {"dns_stub_zones", CONF_STR, "", NOB,
     "zones whose queries go straight to an authoritative server, as zone=address[@port]", NULL},
    {"dnssec_trust_anchor_file", CONF_STR, "/usr/share/dns/root.key", NOB,
     "DS or DNSKEY records DNSSEC validation starts from (empty or missing: no validation)", NULL},
    {"dns_query_timeout", CONF_TIME, "10s", 1, 600,
     "longest wait for one DNS answer before the lookup fails temporarily", NULL},

    /* Sender authentication of inbound mail (checkd). */
    {"smtpd_mail_authentication", CONF_BOOL, "yes", NOB,
     "smtpd: check SPF, DKIM and DMARC of mail from outside (not from mynetworks, not from a "
     "client that logged in) in checkd, and add one Authentication-Results field", NULL},
    {"smtpd_check_timeout", CONF_TIME, "60s", 1, 3600,
     "smtpd: longest wait for checkd's answer; then the checks are temperror and the mail is "
     "accepted", NULL},
    {"spf_reject_fail", CONF_BOOL, "no", NOB,
     "smtpd: refuse a recipient (550 5.7.23) when the SPF result of MAIL FROM is fail (-all); "
     "no: only record it", NULL},
    {"dmarc_reject", CONF_BOOL, "yes", NOB,
     "smtpd: refuse at end of data (550 5.7.1) mail that fails DMARC under p=reject (no: it goes "
     "to the recipient's Junk folder instead)", NULL},
    {"dmarc_quarantine", CONF_BOOL, "yes", NOB,
     "deliver mail that fails DMARC under p=quarantine into the recipient's Junk folder "
     "(Maildir++ .Junk/); no: into the inbox", NULL},
    {"dmarc_public_suffix_list", CONF_STR, "/usr/share/publicsuffix/public_suffix_list.dat", NOB,
     "checkd: the public suffix list that decides organizational domains (RFC 7489 3.2)", NULL},
    {"dkim_verify_max_signatures", CONF_INT, "10", 1, 100,
     "checkd: most DKIM signatures of one message that are verified (the rest are reported as "
     "policy)", NULL},
};

const size_t conf_nparams = sizeof(conf_params) / sizeof(conf_params[0]);
