/*
 * dmarc.c - mailctl dmarc report [-n] [--day YYYY-MM-DD]: send the DMARC
 * aggregate reports (RFC 7489 section 7.2) of the days checkd recorded
 * in $queue_directory/dmarc/ (lib/dmarchist).  master runs it once a day
 * as a job (master.conf(5)); an admin may run it by hand.
 *
 * Privileges: started as root (or as check_user itself), it opens the
 * spool and sets up DNS, then becomes check_user for good (privs_drop:
 * setgroups, setresgid, setresuid, verified) before it reads anything in
 * dmarc/, whose files a sandboxed process wrote.  Files are opened
 * O_NOFOLLOW and must be regular, with one link, check_user's.
 *
 * What it does: every history-YYYYMMDD of a complete UTC day (before
 * today; with --day, that day only) becomes one report per policy domain
 * (lib/dmarcreport).  Its destinations are the rua the domain's DMARC
 * record lists now (TXT _dmarc.<policy-domain>, asked again: the rua in
 * the history is only what checkd, a process that parses anyone's mail,
 * wrote down); no record now, no report.  For each URI: mailto: only;
 * a destination whose domain is in another organizational domain than
 * the policy domain needs the TXT record <policy-domain>._report._dmarc.
 * <rua-domain> starting "v=DMARC1" (section 7.1; lib/dns with the
 * dns_* parameters); a "!size" limit the message would pass skips that
 * destination.  Each report goes as its own message (From
 * dmarc_report_sender, envelope sender <>: a report that bounces must
 * not come back daily) through the sendmail next to this mailctl, which
 * may inject as check_user because it is setgid; cleanup DKIM-signs it.
 * Afterwards history-D becomes done-D; done and history files more than
 * 7 days old are removed.  A day whose file could not be read or whose
 * report sendmail refused stays for the next run (the destinations that
 * did get it then get it again).
 *
 * -n: print the destinations and each report's XML on stdout; nothing is
 * sent, renamed or removed.
 *
 * Output: every problem and every report sent is one line on stderr,
 * which master logs for its job; one bad line, domain or destination
 * never stops the others.  Exit status 1 if a day could not be read or
 * a report not handed to sendmail, else 0.
 *
 * Parameters: queue_directory, check_user, mydomain (the receiver in
 * report IDs, file names and subjects), dmarc_report_sender,
 * dmarc_report_org_name, dns_forwarders, dns_stub_zones,
 * dnssec_trust_anchor_file, dns_query_timeout.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "dmarc.h"
#include "dmarchist.h"
#include "dmarcreport.h"
#include "dns.h"
#include "mailctl.h"
#include "msg.h"
#include "privs.h"
#include "safe_open.h"
#include "server.h"
#include "xalloc.h"

#define DMARC_KEEP_DAYS 7

struct dmarc_run {
    int                      dry_run;
    int                      dirfd;
    uid_t                    uid;
    dns_t                   *dns;
    const char              *dns_why;
    char                    *sendmail;
    struct dmarcreport_meta  meta;
    int                      failed;
};

/* Read context: the report being built and the file's name for messages. */
struct dmarc_read {
    dmarcreport_t *report;
    const char    *path;
    unsigned long  other_days;
};

/* Does a TXT record of txt start with the DMARC version tag? */
static int dmarc_is_v1(const char *txt)
{
    const char *p = txt;

    if (*p++ != 'v')
        return 0;
    p += strspn(p, " \t");
    if (*p++ != '=')
        return 0;
    p += strspn(p, " \t");
    return strncmp(p, "DMARC1", 6) == 0 && (p[6] == '\0' || p[6] == ';' || p[6] == ' '
                                            || p[6] == '\t');
}

/* RFC 7489 section 7.1: may dest receive policy_domain's reports?  NULL
 * if so, else why not (static, or in *tmp, which the caller frees). */
static const char *dmarc_verify_dest(struct dmarc_run *run, const char *policy_domain,
                                     const char *dest_domain, char **tmp)
{
    char *org_p = dmarc_org_domain(policy_domain), *org_d = dmarc_org_domain(dest_domain);
    int same = strcmp(org_p, org_d) == 0;
    dns_result_t *res;
    char *name;
    const char *why = NULL;

    free(org_p);
    free(org_d);
    if (same)
        return NULL;
    if (run->dns == NULL) {
        *tmp = xasprintf("another organization's destination cannot be verified: %s",
                         run->dns_why);
        return *tmp;
    }
    name = xasprintf("%s._report._dmarc.%s", policy_domain, dest_domain);
    res = dns_lookup(run->dns, name, DNS_T_TXT);
    if (res->status == DNS_OK) {
        why = "no record starting v=DMARC1 at the verification name";
        for (size_t i = 0; i < res->nrr; i++)
            if (dmarc_is_v1(res->rr[i].u.txt.joined))
                why = NULL;
        if (why)
            *tmp = xasprintf("%s %s", why, name), why = *tmp;
    } else if (res->status == DNS_NODATA || res->status == DNS_NXDOMAIN) {
        *tmp = xasprintf("%s has not agreed to receive them: no TXT record %s", dest_domain, name);
        why = *tmp;
    } else {
        *tmp = xasprintf("cannot verify it: TXT %s: %s %s", name, dns_status_str(res->status),
                         res->why ? res->why : "");
        why = *tmp;
    }
    dns_result_free(&res);
    free(name);
    return why;
}

/* The rua the policy domain publishes now (RFC 7489 7.1): the history
 * was written by checkd, a process that parses what anyone sends, so its
 * copy of the record decides nothing.  A fresh string, or NULL with why
 * (static, or in *tmp, which the caller frees). */
static char *dmarc_published_rua(struct dmarc_run *run, const char *policy_domain,
                                 const char **why, char **tmp)
{
    struct dmarc_record rec;
    dns_result_t *res;
    char *name, *rua = NULL;
    int nvalid = 0;

    if (run->dns == NULL) {
        *why = run->dns_why;
        return NULL;
    }
    name = xasprintf("_dmarc.%s", policy_domain);
    res = dns_lookup(run->dns, name, DNS_T_TXT);
    for (size_t i = 0; res->status == DNS_OK && i < res->nrr; i++) {
        const char *w = NULL;

        if (dmarc_record_parse(res->rr[i].u.txt.joined, &rec, &w) == 0) {
            if (nvalid++ == 0)
                rua = xstrdup(rec.rua ? rec.rua : "");
            dmarc_record_clear(&rec);
        }
    }
    if (nvalid != 1) {
        xfree(&rua);
        *why = *tmp = res->status == DNS_OK || res->status == DNS_NODATA
                      || res->status == DNS_NXDOMAIN
                      ? xasprintf("%s holds %s DMARC record now", name, nvalid ? "more than one"
                                                                                 : "no")
                      : xasprintf("cannot look up %s: %s %s", name, dns_status_str(res->status),
                                  res->why ? res->why : "");
    }
    dns_result_free(&res);
    free(name);
    return rua;
}

/* Hand msg to sendmail for to; 0, or -1 (logged). */
static int dmarc_sendmail(struct dmarc_run *run, const char *to, const buf_t *msg)
{
    int fd = memfd_create("dmarc-report", MFD_CLOEXEC), status;
    pid_t pid;

    if (fd < 0 || write(fd, msg->data, msg->len) != (ssize_t)msg->len
        || lseek(fd, 0, SEEK_SET) != 0) {
        msg_error("cannot store the report for sendmail: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    fflush(NULL);
    if ((pid = fork()) < 0) {
        msg_error("fork: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (pid == 0) {
        char *const argv[] = {"sendmail", "-C", (char *)mailctl_confdir, "-i", "-f", "<>", "--",
                              (char *)to, NULL};
        char *const envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};

        if (dup2(fd, 0) < 0)
            _exit(71);
        execve(run->sendmail, argv, envp);
        fprintf(stderr, "mailctl: cannot execute %s: %s\n", run->sendmail, strerror(errno));
        _exit(71);
    }
    close(fd);
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            msg_error("waitpid: %s", strerror(errno));
            return -1;
        }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    msg_error("%s did not take the report for %s: %s %d", run->sendmail, to,
              WIFEXITED(status) ? "exit status" : "signal",
              WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    return -1;
}

/* Every destination of domain i of report. */
static void dmarc_send_domain(struct dmarc_run *run, const dmarcreport_t *report, size_t i,
                              const char *day)
{
    struct dmarcreport_domain_info info;
    struct dmarcreport_dest *dests;
    buf_t *xml = buf_new(0), *gz = buf_new(0), *msg = buf_new(0);
    const char *why;
    char *id, *rua, *tmp = NULL;
    size_t n;

    dmarcreport_domain(report, i, &info);
    id = dmarcreport_id(report, i, &run->meta);
    dmarcreport_xml(report, i, &run->meta, xml);
    if (dmarcreport_gzip(xml->data, xml->len, gz, &why) < 0) {
        msg_error("%s %s: %s", day, info.domain, why);
        run->failed = 1;
        goto out;
    }
    if ((rua = dmarc_published_rua(run, info.domain, &why, &tmp)) == NULL) {
        if (run->dry_run)
            printf("report %s for %s: not sent: %s\n", id, info.domain, why);
        else
            msg_warn("%s %s: not sending report %s: %s", day, info.domain, id, why);
        free(tmp);
        goto out;
    }
    if (strcasecmp(rua, info.rua) != 0)
        msg_info("%s %s: the domain's rua is now \"%s\"", day, info.domain, rua);
    dmarcreport_rua(rua, &dests, &n);
    free(rua);
    if (run->dry_run)
        printf("report %s for %s: %llu messages in %zu records, XML %zu bytes, gzip %zu bytes\n",
               id, info.domain, info.nmessages, info.nrecords, xml->len, gz->len);
    if (n == 0)
        msg_warn("%s %s: no rua destination in the policy record: no report", day, info.domain);
    for (size_t k = 0; k < n; k++) {
        const struct dmarcreport_dest *d = &dests[k];
        char *tmp = NULL;

        why = d->error;
        if (why == NULL)
            why = dmarc_verify_dest(run, info.domain, d->domain, &tmp);
        if (why == NULL) {
            buf_reset(msg);
            dmarcreport_message(report, i, &run->meta, d->address, gz, msg);
            if (d->max_size && msg->len > d->max_size) {
                free(tmp);
                why = tmp = xasprintf("the report is %zu bytes, over the URI's limit of %llu",
                                      msg->len, d->max_size);
            }
        }
        if (why) {
            if (run->dry_run)
                printf("  not to %s: %s\n", d->uri, why);
            else
                msg_warn("%s %s: not sending report %s to %s: %s", day, info.domain, id, d->uri,
                         why);
        } else if (run->dry_run) {
            printf("  to %s (%zu bytes)\n", d->address, msg->len);
        } else if (dmarc_sendmail(run, d->address, msg) < 0) {
            run->failed = 1;
        } else {
            msg_info("%s %s: sent report %s to <%s>: %llu messages in %zu records, %zu bytes",
                     day, info.domain, id, d->address, info.nmessages, info.nrecords, msg->len);
        }
        free(tmp);
    }
    if (run->dry_run)
        fwrite(xml->data, 1, xml->len, stdout);
    dmarcreport_dests_free(&dests, n);
out:
    free(id);
    buf_free(&xml);
    buf_free(&gz);
    buf_free(&msg);
}

static int dmarc_on_row(void *ctx, const struct dmarchist_row *row)
{
    struct dmarc_read *rd = ctx;
    const char *why;

    if (dmarcreport_add(rd->report, row, &why) < 0)
        rd->other_days++;
    return 0;
}

static void dmarc_on_warn(void *ctx, const char *msg)
{
    (void)ctx;
    msg_warn("%s", msg);
}

/* "history-YYYYMMDD" or "done-YYYYMMDD" (prefix): its day number (days
 * since the epoch), or -1. */
static long long dmarc_file_day(const char *name, const char *prefix)
{
    size_t pl = strlen(prefix);
    struct tm tm = {0};

    if (strncmp(name, prefix, pl) != 0 || strlen(name + pl) != 8
        || strspn(name + pl, "0123456789") != 8)
        return -1;
    if (sscanf(name + pl, "%4d%2d%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday) != 3)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    {
        struct tm check = tm;
        time_t t = timegm(&check);

        if (t < 0 || check.tm_mday != tm.tm_mday || check.tm_mon != tm.tm_mon)
            return -1;
        return (long long)t / 86400;
    }
}

/* One day's file: read, report, rename. */
static void dmarc_day(struct dmarc_run *run, long long dayno, const char *spool)
{
    char name[48], done[48], day[16];
    struct dmarc_read rd = {0};
    const char *why;
    char *path;
    int fd, rc;

    dmarchist_file_name(dayno * 86400, name);
    snprintf(day, sizeof(day), "%.4s-%.2s-%.2s", name + 8, name + 12, name + 14);
    path = xasprintf("%s/%s/%s", spool, SERVER_DMARC_DIR, name);
    if ((fd = safe_open(run->dirfd, name, O_RDONLY, &run->uid, 1, NULL, &why)) < 0) {
        msg_error("%s: %s", path, why);
        run->failed = 1;
        free(path);
        return;
    }
    rd.report = dmarcreport_new(dayno * 86400, dayno * 86400 + 86399);
    rd.path = path;
    rc = dmarchist_read(fd, path, dmarc_on_row, dmarc_on_warn, &rd);
    close(fd);
    if (rc < 0) {
        msg_error("%s: read error: %s -- keeping it for the next run", path, strerror(errno));
        run->failed = 1;
    } else {
        int failed_before = run->failed;

        if (rd.other_days)
            msg_warn("%s: %lu rows of another day: not reported", path, rd.other_days);
        if (dmarcreport_ndomains(rd.report) == 0)
            msg_info("%s: no rows to report", path);
        for (size_t i = 0; i < dmarcreport_ndomains(rd.report); i++)
            dmarc_send_domain(run, rd.report, i, day);
        snprintf(done, sizeof(done), "done-%s", name + 8);
        if (!run->dry_run) {
            if (run->failed && !failed_before)
                msg_warn("%s: keeping it for the next run", path);
            else if (renameat(run->dirfd, name, run->dirfd, done) < 0)
                msg_error("cannot rename %s to %s: %s", path, done, strerror(errno));
        }
    }
    dmarcreport_free(&rd.report);
    free(path);
}

static int dmarc_day_cmp(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;

    return x < y ? -1 : x > y;
}

/* The days to report (sorted), and the old files removed. */
static long long *dmarc_scan(struct dmarc_run *run, long long today, long long only,
                             const char *spool, size_t *np)
{
    long long *days = NULL;
    struct dirent *de;
    size_t n = 0;
    int fd = dup(run->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

    *np = 0;
    if (d == NULL) {
        msg_error("%s/%s: %s", spool, SERVER_DMARC_DIR, strerror(errno));
        if (fd >= 0)
            close(fd);
        run->failed = 1;
        return NULL;
    }
    while ((de = readdir(d)) != NULL) {
        long long h = dmarc_file_day(de->d_name, DMARCHIST_FILE_PREFIX);
        long long dn = dmarc_file_day(de->d_name, "done-");
        long long day = h >= 0 ? h : dn;

        if (day < 0)
            continue;
        if (day < today - DMARC_KEEP_DAYS && !run->dry_run && only < 0) {
            if (h >= 0)
                msg_warn("%s/%s/%s: more than %d days old and never reported: removing it",
                         spool, SERVER_DMARC_DIR, de->d_name, DMARC_KEEP_DAYS);
            if (unlinkat(run->dirfd, de->d_name, 0) < 0)
                msg_error("cannot remove %s/%s/%s: %s", spool, SERVER_DMARC_DIR, de->d_name,
                          strerror(errno));
            continue;
        }
        if (h >= 0 && h < today && (only < 0 || h == only)) {
            days = xreallocarray(days, n + 1, sizeof(*days));
            days[n++] = h;
        }
    }
    closedir(d);
    if (n)
        qsort(days, n, sizeof(*days), dmarc_day_cmp);
    *np = n;
    return days;
}

/* Open the spool and DNS as root, then become check_user; 0 or -1. */
static int dmarc_setup(struct dmarc_run *run, int *qfd)
{
    const char *user = conf_str("check_user"), *spool = conf_str("queue_directory");
    const char *why = NULL;
    struct dns_settings ds;
    struct stat st;
    gid_t gid;

    if (privs_lookup(user, &run->uid, &gid) < 0) {
        fprintf(stderr, "mailctl: check_user %s does not exist (mailctl start creates it)\n", user);
        return -1;
    }
    if (geteuid() != 0 && geteuid() != run->uid) {
        fprintf(stderr, "mailctl: dmarc report must be run as root (or as %s)\n", user);
        return -1;
    }
    if ((*qfd = open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        fprintf(stderr, "mailctl: cannot open queue_directory %s: %s\n", spool, strerror(errno));
        return -1;
    }
    if (dmarc_init(conf_str("dmarc_public_suffix_list"), &why) < 0) {
        fprintf(stderr, "mailctl: dmarc_public_suffix_list: %s\n", why);
        return -1;
    }
    conf_dns_settings(&ds);
    if ((run->dns = dns_new(&ds, &run->dns_why)) == NULL)
        run->dns_why = xasprintf("DNS is not usable: %s", run->dns_why ? run->dns_why : "?");
    {
        char *self = mailctl_self_dir();

        run->sendmail = xasprintf("%s/sendmail", self);
        free(self);
    }
    if (geteuid() == 0)
        privs_drop_ids(run->uid, gid, NULL, 0, NULL);
    run->dirfd = openat(*qfd, SERVER_DMARC_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (run->dirfd < 0 || fstat(run->dirfd, &st) < 0 || st.st_uid != run->uid
        || (st.st_mode & 022)) {
        fprintf(stderr, "mailctl: %s/%s: %s\n", spool, SERVER_DMARC_DIR,
                run->dirfd < 0 ? strerror(errno) : "not check_user's alone (mailctl start fixes it)");
        return -1;
    }
    return 0;
}

static int dmarc_usage(void)
{
    fprintf(stderr, "usage: mailctl dmarc report [-n] [--day YYYY-MM-DD]\n");
    return 2;
}

int cmd_dmarc(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"day", required_argument, NULL, 'd'},
        {"dry-run", no_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    struct dmarc_run run = {.dirfd = -1};
    long long today = (long long)time(NULL) / 86400, only = -1, *days;
    const char *spool, *day_arg = NULL;
    size_t ndays;
    int ch, qfd = -1;

    if (argc < 2 || strcmp(argv[1], "report") != 0)
        return dmarc_usage();
    optind = 0;
    while ((ch = getopt_long(argc - 1, argv + 1, "n", longopts, NULL)) != -1) {
        switch (ch) {
        case 'n': run.dry_run = 1; break;
        case 'd': {
            char *compact = xstrdup(optarg), *p = compact;

            day_arg = optarg;
            for (const char *s = optarg; *s; s++)
                if (*s != '-')
                    *p++ = *s;
            *p = '\0';
            only = strlen(optarg) == 10 && optarg[4] == '-' && optarg[7] == '-'
                ? dmarc_file_day(compact, "") : -1;
            free(compact);
            if (only < 0) {
                fprintf(stderr, "mailctl: --day: '%s' is not a date YYYY-MM-DD\n", optarg);
                return 2;
            }
            if (only >= today) {
                fprintf(stderr, "mailctl: --day %s: that day is not over yet (UTC)\n", optarg);
                return 1;
            }
            break;
        }
        default:
            return dmarc_usage();
        }
    }
    if (optind != argc - 1)
        return dmarc_usage();
    if (mailctl_load_config(0) < 0)
        return 1;
    if (dmarc_setup(&run, &qfd) < 0) {
        if (qfd >= 0)
            close(qfd);
        dns_free(&run.dns);
        free(run.sendmail);
        return 1;
    }
    spool = conf_str("queue_directory");
    run.meta.org_name = conf_str("dmarc_report_org_name");
    run.meta.email = conf_str("dmarc_report_sender");
    run.meta.receiver = conf_str("mydomain");
    days = dmarc_scan(&run, today, only, spool, &ndays);
    if (only >= 0 && ndays == 0)
        msg_warn("no DMARC history of --day %s in %s/%s", day_arg, spool, SERVER_DMARC_DIR);
    for (size_t i = 0; i < ndays; i++)
        dmarc_day(&run, days[i], spool);
    free(days);
    close(run.dirfd);
    close(qfd);
    dns_free(&run.dns);
    free(run.sendmail);
    return run.failed ? 1 : 0;
}
