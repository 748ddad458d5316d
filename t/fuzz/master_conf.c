/*
 * fuzz/master_conf - libFuzzer harness for lib/master_conf.c
 * (master_conf_load).
 *
 * The input is written as master.conf into a private scratch directory and
 * loaded.  Checks: NULL exactly when errors were reported, each error line
 * "FILE:LINE: message"; on success every service is well formed as
 * master_conf.h promises (a name, inet or unix, no '/' in a unix name or
 * in the program name, argv NULL-terminated with argc entries, lines
 * increasing, no duplicate (type, name)); no descriptor left open.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzzlib.h"
#include "master_conf.h"

static void check_table(const struct master_conf *mc)
{
    for (size_t i = 0; i < mc->nsvcs; i++) {
        const struct master_svc *s = &mc->svcs[i];

        if (s->name == NULL || s->name[0] == '\0' || s->argc < 1 || s->argv == NULL
            || s->argv[s->argc] != NULL || s->argv[0] == NULL || s->argv[0][0] == '\0')
            fuzz_fail("service %zu is malformed", i);
        for (int a = 0; a < s->argc; a++)
            if (s->argv[a] == NULL)
                fuzz_fail("service %s: argv[%d] is NULL", s->name, a);
        if (s->type != MASTER_SVC_INET && s->type != MASTER_SVC_UNIX && s->type != MASTER_SVC_JOB)
            fuzz_fail("service %s: type %d", s->name, (int)s->type);
        if (strchr(s->argv[0], '/') || strcmp(s->argv[0], "-") == 0
            || strcmp(s->argv[0], ".") == 0 || strcmp(s->argv[0], "..") == 0)
            fuzz_fail("service %s: program '%s' accepted", s->name, s->argv[0]);
        if (s->type == MASTER_SVC_UNIX && (strchr(s->name, '/') || strcmp(s->name, ".") == 0
                                           || strcmp(s->name, "..") == 0))
            fuzz_fail("unix service '%s' accepted", s->name);
        if (s->type == MASTER_SVC_INET && s->private_socket)
            fuzz_fail("inet service %s is private", s->name);
        if (s->type == MASTER_SVC_JOB && (s->wakeup <= 0 || s->maxproc != 1 || s->private_socket
                                          || strchr(s->name, '/')))
            fuzz_fail("job %s: period %d, limit %d accepted", s->name, s->wakeup, s->maxproc);
        if (s->wakeup < 0 || s->maxproc < -1)
            fuzz_fail("service %s: wakeup %d maxproc %d", s->name, s->wakeup, s->maxproc);
        if (i > 0 && s->line <= mc->svcs[i - 1].line)
            fuzz_fail("service %s: line %d after line %d", s->name, s->line,
                      mc->svcs[i - 1].line);
        for (size_t j = 0; j < i; j++)
            if (mc->svcs[j].type == s->type && strcmp(mc->svcs[j].name, s->name) == 0)
                fuzz_fail("duplicate service %s accepted", s->name);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512], prefix[520];
    buf_t *errs;
    struct master_conf *mc;
    const char *p;
    int mark = fuzz_fd_mark();

    snprintf(path, sizeof(path), "%s", fuzz_path("master.conf"));
    if (fuzz_write(path, data, size) < 0)
        return 0;                       /* the environment, not the input */
    errs = buf_new(0);
    mc = master_conf_load(path, errs);
    if ((mc == NULL) != (errs->len > 0))
        fuzz_fail("master_conf_load returned %p with %zu bytes of errors",
                  (void *)mc, errs->len);
    snprintf(prefix, sizeof(prefix), "%s:", path);
    for (p = buf_cstr(errs); *p; ) {
        const char *nl = strchr(p, '\n');

        if (nl == NULL || strncmp(p, prefix, strlen(prefix)) != 0)
            fuzz_fail("bad error line: '%s'", p);
        p = nl + 1;
    }
    if (mc) {
        if (strcmp(mc->path, path) != 0)
            fuzz_fail("path '%s'", mc->path);
        check_table(mc);
        master_conf_free(&mc);
        if (mc != NULL)
            fuzz_fail("master_conf_free did not NULL the pointer");
    }
    buf_free(&errs);
    fuzz_fd_check(mark);
    return 0;
}
