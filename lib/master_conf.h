/*
 * master_conf - the master.conf service table.
 *
 * One service a line, white-space separated columns, '#' comment lines,
 * a line starting with white space continues the previous one:
 *
 *   # service          type  private wakeup maxproc command + args
 *   127.0.0.1:10025    inet  n       -      100     smtpd
 *   cleanup            unix  y       -      -       cleanup
 *   qmgr               unix  y       300    1       qmgr
 *   dmarcreport        job   -       86400  1       mailctl dmarc report
 *
 * service  inet: [host:]port, [ipv6]:port, or a port/service name alone
 *          (then it listens on each address of inet_interfaces);
 *          unix: a socket name, created as private/NAME or public/NAME.
 *          job: a name for the log and mailctl status (no '/', not . or ..).
 * type     inet | unix | job
 * private  unix only: y = private/ (internal), n = public/; "-" = y.
 *          Must be "-" or n for inet, "-" for job.
 * wakeup   seconds between wakeup triggers, "-" or 0 = none.  For a job:
 *          its period, required (> 0): master runs it at every multiple
 *          of the period since the epoch (86400: each midnight UTC).
 * maxproc  process limit, "-" = default_process_limit; 0 = no limit.
 *          A job runs once at a time: "-" or 1 only.
 * command  program name in daemon_directory (a job's: in
 *          command_directory), then its arguments; a service's arguments
 *          may include "-o name=value" parameter overrides, a job's are
 *          its own and passed as they are.
 *
 * Errors: one "FILE:LINE: message" line per problem appended to errs
 * (unknown type, bad number, duplicate service, missing column, a command
 * with a '/' in its name).
 */
#ifndef POSTHORN_MASTER_CONF_H
#define POSTHORN_MASTER_CONF_H

#include <stddef.h>

#include "buf.h"

enum master_svc_type { MASTER_SVC_INET, MASTER_SVC_UNIX, MASTER_SVC_JOB };

struct master_svc {
    char  *name;                 /* column 1 as written */
    enum master_svc_type type;
    int    private_socket;       /* unix: 1 = private/, 0 = public/ */
    int    wakeup;               /* seconds, 0 = none; a job's period */
    int    maxproc;              /* -1 = default_process_limit, 0 = unlimited; a job's 1 */
    char **argv;                 /* NULL-terminated; argv[0] = program name */
    int    argc;
    int    line;                 /* where it was defined */
};

struct master_conf {
    char              *path;
    struct master_svc *svcs;
    size_t             nsvcs;
};

/* Parse path; NULL on error (messages appended to errs). */
struct master_conf *master_conf_load(const char *path, buf_t *errs);
void master_conf_free(struct master_conf **mcp);
/* "inet", "unix" or "job". */
const char *master_svc_type_name(enum master_svc_type type);

#endif
