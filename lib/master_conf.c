/*
 * master_conf - parse master.conf into a service table (see master_conf.h).
 *
 * The file is read as logical lines: a line that starts with white space
 * continues the entry before it, '#' comment lines and blank lines are
 * skipped and do not end an entry.  Each entry is split on white space into
 * the columns service, type, private, wakeup, maxproc, command [args...].
 *
 * Every entry is checked on its own and the first problem in it is
 * reported as "FILE:LINE: message" (LINE = the entry's first line); parsing
 * goes on so that one run reports every bad entry.  An "-o name=value"
 * argument must name a known main.conf parameter, and a value without
 * $name must suit its type (conf_check_value()); the service checks the
 * expanded value again when it starts (conf_set()).
 *
 * Failure modes: any error makes master_conf_load() return NULL; nothing
 * here is fatal.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "buf.h"
#include "cfgfile.h"
#include "conf.h"
#include "master_conf.h"
#include "msg.h"
#include "xalloc.h"

#define MC_COLUMNS  "service type private wakeup maxproc command [args...]"

struct mc_parser {
    const char         *path;
    buf_t              *errs;
    int                 nerr;
    struct master_conf *mc;
};

static void mc_error(struct mc_parser *ps, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void mc_error(struct mc_parser *ps, int line, const char *fmt, ...)
{
    va_list ap;
    char *msg;

    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg_fatal("out of memory formatting a string");
    va_end(ap);
    if (ps->errs)
        buf_printf(ps->errs, "%s:%d: %s\n", ps->path, line, msg);
    free(msg);
    ps->nerr++;
}

/* A non-negative decimal number that fits an int; -1 otherwise. */
static int mc_number(const char *s)
{
    long n = 0;

    if (*s == '\0')
        return -1;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s))
            return -1;
        n = n * 10 + (*s - '0');
        if (n > INT_MAX)
            return -1;
    }
    return (int)n;
}

/* Host part of an inet service: a host name or IPv4 address; NULL if ok. */
static const char *mc_check_host(const char *host, size_t len)
{
    struct in_addr a4;
    char *copy;
    int v4;

    if (len == 0)
        return "empty host before ':'";
    for (size_t k = 0; k < len; k++)
        if (!isalnum((unsigned char)host[k]) && host[k] != '-' && host[k] != '.')
            return "bad character in the host name";
    if (strspn(host, "0123456789.") < len)
        return NULL;                    /* a host name */
    copy = xstrndup(host, len);
    v4 = inet_pton(AF_INET, copy, &a4);
    free(copy);
    return v4 == 1 ? NULL : "bad IPv4 address";
}

/* Port part: a number 1..65535 or a service name such as smtp; NULL if ok. */
static const char *mc_check_port(const char *port)
{
    int n;

    if (*port == '\0')
        return "missing port";
    if (strspn(port, "0123456789") == strlen(port))
        return (n = mc_number(port)) >= 1 && n <= 65535 ? NULL
            : "port number out of range 1..65535";
    for (const char *p = port; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return "bad character in the port name";
    return NULL;
}

/* An inet service name: [host:]port or [ipv6-address]:port; NULL if ok. */
static const char *mc_check_inet(const char *name)
{
    const char *colon, *why;

    if (name[0] == '[') {
        const char *end = strchr(name, ']');
        struct in6_addr a6;
        char *addr;
        int ok;

        if (end == NULL || end[1] != ':')
            return "expected [ipv6-address]:port";
        addr = xstrndup(name + 1, (size_t)(end - name - 1));
        ok = inet_pton(AF_INET6, addr, &a6) == 1;
        free(addr);
        return ok ? mc_check_port(end + 2) : "bad IPv6 address";
    }
    if ((colon = strrchr(name, ':')) == NULL)
        return mc_check_port(name);
    if (strchr(name, ':') != colon)
        return "an IPv6 address must be in brackets, as in [::1]:25";
    if ((why = mc_check_host(name, (size_t)(colon - name))) != NULL)
        return why;
    return mc_check_port(colon + 1);
}

/* The argument after "-o": name=value with a known name and, unless it
 * needs $name expansion, a value of the right type; 0 or -1 (reported). */
static int mc_check_override(struct mc_parser *ps, int line, const char *arg)
{
    const struct conf_param *p;
    const char *eq;
    char *name;
    buf_t *why;
    int rc = 0;

    if (arg == NULL || (eq = strchr(arg, '=')) == NULL || eq == arg) {
        mc_error(ps, line, "'-o' must be followed by name=value");
        return -1;
    }
    name = xstrndup(arg, (size_t)(eq - arg));
    if ((p = conf_find(name)) == NULL) {
        const char *hint = conf_suggest(name);

        mc_error(ps, line, "unknown parameter '%s' in '-o %s'%s%s%s", name, arg,
                 hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
        rc = -1;
    } else if (strchr(eq + 1, '$') == NULL) {
        why = buf_new(0);
        if ((rc = conf_check_value(p, eq + 1, NULL, why)) < 0)
            mc_error(ps, line, "%s (in '-o %s')", buf_cstr(why), arg);
        buf_free(&why);
    }
    free(name);
    return rc;
}

/* Add svc, its columns f[5..nf) as its command, to the table; 0, or -1
 * (reported) for a duplicate. */
static int mc_add(struct mc_parser *ps, int line, char **f, int nf, struct master_svc *svc)
{
    struct master_conf *mc = ps->mc;

    for (size_t k = 0; k < mc->nsvcs; k++) {
        if (mc->svcs[k].type == svc->type && strcmp(mc->svcs[k].name, f[0]) == 0) {
            mc_error(ps, line, "duplicate service '%s' (%s), first defined at line %d",
                     f[0], f[1], mc->svcs[k].line);
            return -1;
        }
    }
    svc->name = xstrdup(f[0]);
    svc->argc = nf - 5;
    svc->argv = xcalloc((size_t)svc->argc + 1, sizeof(*svc->argv));
    for (int k = 0; k < svc->argc; k++)
        svc->argv[k] = xstrdup(f[5 + k]);
    mc->svcs = xreallocarray(mc->svcs, mc->nsvcs + 1, sizeof(*mc->svcs));
    mc->svcs[mc->nsvcs++] = *svc;
    return 0;
}

/* The columns of a job (type already read): a name, "-", a period, "-"
 * or 1, a program; 0 or -1 (reported). */
static int mc_job(struct mc_parser *ps, int line, char **f, int nf, struct master_svc *svc)
{
    if (strchr(f[0], '/') || strcmp(f[0], ".") == 0 || strcmp(f[0], "..") == 0) {
        mc_error(ps, line, "bad job name '%s' (no '/', not . or ..)", f[0]);
        return -1;
    }
    if (strcmp(f[2], "-") != 0) {
        mc_error(ps, line, "job '%s': the private column must be '-' (a job has no socket)",
                 f[0]);
        return -1;
    }
    if ((svc->wakeup = mc_number(f[3])) <= 0) {
        mc_error(ps, line, "job '%s': the wakeup column must be its period in seconds"
                 " (more than 0), not '%s'", f[0], f[3]);
        return -1;
    }
    if (strcmp(f[4], "-") != 0 && strcmp(f[4], "1") != 0) {
        mc_error(ps, line, "job '%s': the process limit must be '-' or 1 (a job never runs"
                 " twice at once), not '%s'", f[0], f[4]);
        return -1;
    }
    svc->maxproc = 1;
    if (strcmp(f[5], "-") == 0 || strchr(f[5], '/') || strcmp(f[5], ".") == 0
        || strcmp(f[5], "..") == 0) {
        mc_error(ps, line, "bad command '%s': a program name in command_directory,"
                 " without '/'", f[5]);
        return -1;
    }
    return mc_add(ps, line, f, nf, svc);
}

const char *master_svc_type_name(enum master_svc_type type)
{
    return type == MASTER_SVC_INET ? "inet" : type == MASTER_SVC_UNIX ? "unix" : "job";
}

/* Check one entry's columns and add it to the table; 0 or -1 (reported). */
static int mc_entry(struct mc_parser *ps, int line, char **f, int nf)
{
    static const char *const colname[] = {
        "service", "type", "private", "wakeup", "maxproc", "command",
    };
    struct master_svc svc = {.line = line};
    const char *why;

    if (nf < 6) {
        mc_error(ps, line, "missing %s column (expected: " MC_COLUMNS ")", colname[nf]);
        return -1;
    }
    if (strcmp(f[1], "inet") == 0) {
        svc.type = MASTER_SVC_INET;
    } else if (strcmp(f[1], "unix") == 0) {
        svc.type = MASTER_SVC_UNIX;
    } else if (strcmp(f[1], "job") == 0) {
        svc.type = MASTER_SVC_JOB;
    } else {
        mc_error(ps, line, "unknown service type '%s' (expected inet, unix or job)", f[1]);
        return -1;
    }
    if (svc.type == MASTER_SVC_INET && (why = mc_check_inet(f[0])) != NULL) {
        mc_error(ps, line, "bad inet service '%s': %s (expected [host:]port or"
                 " [ipv6-address]:port)", f[0], why);
        return -1;
    }
    if (svc.type == MASTER_SVC_UNIX
        && (strchr(f[0], '/') || strcmp(f[0], ".") == 0 || strcmp(f[0], "..") == 0)) {
        mc_error(ps, line, "bad unix service name '%s': it names a socket in"
                 " private/ or public/ (no '/', not . or ..)", f[0]);
        return -1;
    }
    if (svc.type == MASTER_SVC_JOB)
        return mc_job(ps, line, f, nf, &svc);
    if (strcmp(f[2], "-") == 0 || strcmp(f[2], "y") == 0) {
        svc.private_socket = svc.type == MASTER_SVC_UNIX;
        if (svc.type == MASTER_SVC_INET && f[2][0] == 'y') {
            mc_error(ps, line, "private 'y' is not possible for inet service '%s'"
                     " (use n or -)", f[0]);
            return -1;
        }
    } else if (strcmp(f[2], "n") != 0) {
        mc_error(ps, line, "bad private column '%s' (expected y, n or -)", f[2]);
        return -1;
    }
    if (strcmp(f[3], "-") != 0 && (svc.wakeup = mc_number(f[3])) < 0) {
        mc_error(ps, line, "bad wakeup time '%s' (expected seconds or -)", f[3]);
        return -1;
    }
    svc.maxproc = -1;
    if (strcmp(f[4], "-") != 0 && (svc.maxproc = mc_number(f[4])) < 0) {
        mc_error(ps, line, "bad process limit '%s' (expected a number or -)", f[4]);
        return -1;
    }
    if (strcmp(f[5], "-") == 0) {
        mc_error(ps, line, "missing command ('-' is not a program name)");
        return -1;
    }
    if (strchr(f[5], '/') || strcmp(f[5], ".") == 0 || strcmp(f[5], "..") == 0) {
        mc_error(ps, line, "bad command '%s': a program name in daemon_directory,"
                 " without '/'", f[5]);
        return -1;
    }
    for (int k = 6; k < nf && strcmp(f[k], "--") != 0; k++)   /* options end at -- */
        if (strcmp(f[k], "-o") == 0 && mc_check_override(ps, line, k + 1 < nf ? f[++k] : NULL) < 0)
            return -1;
    return mc_add(ps, line, f, nf, &svc);
}

/* Split one logical line (modified in place) into columns and check it. */
static void mc_line(struct mc_parser *ps, int line, char *text)
{
    char **f = NULL, *save = NULL, *tok;
    int nf = 0;

    for (tok = strtok_r(text, CFGFILE_SPACE, &save); tok; tok = strtok_r(NULL, CFGFILE_SPACE, &save)) {
        f = xreallocarray(f, (size_t)nf + 1, sizeof(*f));
        f[nf++] = tok;
    }
    mc_entry(ps, line, f, nf);
    free(f);
}

/* One logical line of master.conf. */
static int mc_finish(const struct cfgfile_entry *e, void *ctx)
{
    struct mc_parser *ps = ctx;

    if (e->nul_line)
        mc_error(ps, e->line, "NUL byte in the line");
    else if (e->orphan)
        mc_error(ps, e->line, "continuation line (starting with white space)"
                 " without a service line before it");
    else
        mc_line(ps, e->line, e->text);
    return 0;
}

struct master_conf *master_conf_load(const char *path, buf_t *errs)
{
    struct mc_parser ps = {.path = path, .errs = errs};
    FILE *fp;

    if ((fp = fopen(path, "re")) == NULL) {
        if (errs)
            buf_printf(errs, "%s: cannot open: %s\n", path, strerror(errno));
        return NULL;
    }
    ps.mc = xcalloc(1, sizeof(*ps.mc));
    ps.mc->path = xstrdup(path);
    if (cfgfile_read(fp, mc_finish, &ps) < 0) {
        if (errs)
            buf_printf(errs, "%s: read error: %s\n", path, strerror(errno));
        ps.nerr++;
    }
    fclose(fp);
    if (ps.nerr > 0)
        master_conf_free(&ps.mc);
    return ps.mc;
}

void master_conf_free(struct master_conf **mcp)
{
    struct master_conf *mc = *mcp;

    if (mc == NULL)
        return;
    for (size_t k = 0; k < mc->nsvcs; k++) {
        for (int a = 0; a < mc->svcs[k].argc; a++)
            free(mc->svcs[k].argv[a]);
        free(mc->svcs[k].argv);
        free(mc->svcs[k].name);
    }
    free(mc->svcs);
    free(mc->path);
    free(mc);
    *mcp = NULL;
}
