/*
 * conftrust - are the configuration that root is about to read and the
 * programs it is about to run beyond the reach of other accounts?  The
 * rules are trustpath's; this module only knows which files matter.  See
 * conftrust.h.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "conftrust.h"
#include "trustpath.h"
#include "xalloc.h"

/* dir (a directory), then dir/name (a regular file). */
static int conftrust_in_dir(const char *dir, const char *name, buf_t *errs)
{
    uid_t owners[2];
    size_t n = trustpath_owners(owners);
    char *path;
    int rc;

    if (trustpath_check(dir, TRUSTPATH_DIR, owners, n, errs) < 0)
        return -1;
    if (name == NULL)
        return 0;
    path = xasprintf("%s/%s", dir, name);
    rc = trustpath_check(path, TRUSTPATH_FILE, owners, n, errs);
    free(path);
    return rc;
}

int conftrust_main(const char *confdir, buf_t *errs)
{
    return conftrust_in_dir(confdir, "main.conf", errs);
}

int conftrust_master(const char *confdir, buf_t *errs)
{
    return conftrust_in_dir(confdir, "master.conf", errs);
}

/* A relative daemon_directory would name another directory in every
 * process that changed its working directory (master runs in the spool). */
static int conftrust_absolute(const char *dir, const char *param, buf_t *errs)
{
    if (dir[0] == '/')
        return 0;
    buf_printf(errs, "%s: %s must be an absolute path\n", dir, param);
    return -1;
}

int conftrust_program(const char *daemon_dir, const char *name, buf_t *errs)
{
    if (conftrust_absolute(daemon_dir, "daemon_directory", errs) < 0)
        return -1;
    return conftrust_in_dir(daemon_dir, name, errs);
}

int conftrust_programs(const char *daemon_dir, const char *command_dir,
                       const struct master_conf *mc, buf_t *errs)
{
    uid_t owners[2];
    size_t n = trustpath_owners(owners);
    int rc = 0, jobs = 0;

    if (conftrust_absolute(daemon_dir, "daemon_directory", errs) < 0
        || conftrust_in_dir(daemon_dir, NULL, errs) < 0)
        return -1;
    for (size_t i = 0; i < mc->nsvcs; i++)
        jobs |= mc->svcs[i].type == MASTER_SVC_JOB;
    if (jobs && (conftrust_absolute(command_dir, "command_directory", errs) < 0
                 || conftrust_in_dir(command_dir, NULL, errs) < 0))
        return -1;
    for (size_t i = 0; i < mc->nsvcs; i++) {
        const char *prog = mc->svcs[i].argv[0];
        int job = mc->svcs[i].type == MASTER_SVC_JOB, seen = 0;
        char *path;

        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(mc->svcs[j].argv[0], prog) == 0
                && (mc->svcs[j].type == MASTER_SVC_JOB) == job;
        if (seen)
            continue;
        path = xasprintf("%s/%s", job ? command_dir : daemon_dir, prog);
        if (trustpath_check(path, TRUSTPATH_FILE, owners, n, errs) < 0)
            rc = -1;
        free(path);
    }
    return rc;
}
