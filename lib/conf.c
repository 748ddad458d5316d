/*
 * conf - main.conf: loading, $name expansion and the typed getters
 * (interface and file format in conf.h; the rows are in conf_table.c).
 *
 * Every parameter has one slot holding its raw value (as written in
 * main.conf, given to conf_set(), or the table default), where that value
 * came from (file and line, conf_set() origin, or "default of NAME"), and a
 * cache of its expanded value.  Expansion is done on demand and cached;
 * conf_load() and conf_set() throw every cached expansion away, so strings
 * returned by conf_str() stay valid until the next conf_load() or conf_set().
 * Defaults without a table value (defval NULL) are computed by the row's
 * compute() when first needed; compute() may itself call conf_str().
 *
 * After reading the file, conf_load() expands and type-checks every
 * parameter, defaults too.  An error is reported once, at the place that
 * caused it: an unknown $name or an expansion loop at the line whose value
 * holds the reference, a bad value at the line that set the parameter.
 * Parameters that depend on a broken one inherit its message silently, so
 * that a getter that reads them anyway can msg_fatal() with it.
 * Errors are appended to the caller's buffer sorted by line number.
 *
 * Failure modes: configuration errors are collected (load/set) or fatal
 * (a getter reading a value that never passed the check); an unknown name
 * or a type mismatch in a getter is our bug and panics.
 */
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
#include "dns.h"
#include "msg.h"
#include "xalloc.h"

#define CONF_MAX_DEPTH  20              /* $name nesting before we call it a loop */
#define CONF_MAX_VALUE  (1024 * 1024)   /* expanded value length cap, bytes */

enum conf_state { CONF_FRESH, CONF_EXPANDING, CONF_DONE, CONF_FAILED };

/* Result of conf_expand(): an error already recorded, or a reference back
 * to a parameter that is being expanded (the referring value reports it). */
#define CONF_ERR   (-1)
#define CONF_LOOP  (-2)

struct conf_val {
    char *raw;          /* value as set; NULL = computed default */
    char *origin;       /* file path or conf_set() origin; NULL = default */
    int   line;         /* line in origin, 0 = not from a file */
    int   set;          /* set by main.conf or conf_set() */
    char *computed;     /* computed default, once needed */
    enum conf_state state;
    char *value;        /* expansion, when CONF_DONE */
    char *error;        /* "LOCATION: message", when CONF_FAILED */
};

struct conf_err {
    int    line;
    size_t seq;
    char  *text;
};

static struct conf_val *conf_vals;
static char *conf_dir;                  /* as given to conf_load() */
static int   conf_depth;                /* current $name nesting */

/* Parameters being expanded, innermost last; the last loop found. */
static size_t *conf_stack, conf_stackn, conf_stackcap;
static size_t *conf_cycle, conf_cyclen;

/* Errors collected by conf_load() / conf_set(); not collected otherwise. */
static int    conf_collecting;
static struct conf_err *conf_errv;
static size_t conf_errn, conf_errcap;

/* compute() calls conf_str(); a failure there is passed back through these. */
static int    conf_computing;
static int    conf_compute_status;      /* 0, CONF_ERR or CONF_LOOP */
static size_t conf_compute_dep;         /* the failed parameter (CONF_ERR) */

/* ---- table lookup and state ------------------------------------------ */

static ssize_t conf_index(const char *name, size_t len)
{
    for (size_t i = 0; i < conf_nparams; i++)
        if (strncmp(conf_params[i].name, name, len) == 0
            && conf_params[i].name[len] == '\0')
            return (ssize_t)i;
    return -1;
}

const struct conf_param *conf_find(const char *name)
{
    ssize_t i = conf_index(name, strlen(name));

    return i < 0 ? NULL : &conf_params[i];
}

static void conf_invalidate(void)
{
    for (size_t i = 0; i < conf_nparams; i++) {
        struct conf_val *v = &conf_vals[i];

        xfree(&v->value);
        xfree(&v->error);
        xfree(&v->computed);
        v->state = CONF_FRESH;
    }
}

static void conf_reset_defaults(void)
{
    for (size_t i = 0; i < conf_nparams; i++) {
        struct conf_val *v = &conf_vals[i];

        xfree(&v->raw);
        xfree(&v->origin);
        if (conf_params[i].defval)
            v->raw = xstrdup(conf_params[i].defval);
        v->line = 0;
        v->set = 0;
    }
    conf_invalidate();
}

/* First use: check the table (a bad row is our bug) and load defaults. */
static void conf_init(void)
{
    if (conf_vals)
        return;
    for (size_t i = 0; i < conf_nparams; i++) {
        const struct conf_param *p = &conf_params[i];

        if ((p->defval == NULL) == (p->compute == NULL))
            msg_panic("conf_params: %s needs exactly one of defval and compute", p->name);
        if (conf_index(p->name, strlen(p->name)) != (ssize_t)i)
            msg_panic("conf_params: %s is listed twice", p->name);
    }
    conf_vals = xcalloc(conf_nparams, sizeof(*conf_vals));
    conf_reset_defaults();
}

static size_t conf_need(const char *name, const char *who)
{
    ssize_t i;

    conf_init();
    if ((i = conf_index(name, strlen(name))) < 0)
        msg_panic("%s: unknown parameter '%s'", who, name);
    return (size_t)i;
}

/* Append where parameter i's value came from. */
static void conf_loc(buf_t *b, size_t i)
{
    const struct conf_val *v = &conf_vals[i];

    if (v->origin && v->line > 0)
        buf_printf(b, "%s:%d", v->origin, v->line);
    else if (v->origin)
        buf_append_str(b, v->origin);
    else
        buf_printf(b, "default of %s", conf_params[i].name);
}

/* ---- error collection ---------------------------------------------- */

static void conf_error_push(int line, char *text)
{
    if (!conf_collecting) {
        free(text);
        return;
    }
    if (conf_errn == conf_errcap) {
        conf_errcap = conf_errcap ? 2 * conf_errcap : 8;
        conf_errv = xreallocarray(conf_errv, conf_errcap, sizeof(*conf_errv));
    }
    conf_errv[conf_errn].line = line;
    conf_errv[conf_errn].seq = conf_errn;
    conf_errv[conf_errn].text = text;
    conf_errn++;
}

__attribute__((format(printf, 2, 3)))
static void conf_error_at(int line, const char *fmt, ...)
{
    va_list ap;
    char *text;

    va_start(ap, fmt);
    if (vasprintf(&text, fmt, ap) < 0)
        msg_fatal("out of memory formatting a string");
    va_end(ap);
    conf_error_push(line, text);
}

static int conf_error_cmp(const void *a, const void *b)
{
    const struct conf_err *x = a, *y = b;

    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Append the collected errors to errs in line order; return their number. */
static size_t conf_error_flush(buf_t *errs)
{
    size_t n = conf_errn;

    if (n > 1)
        qsort(conf_errv, n, sizeof(*conf_errv), conf_error_cmp);
    for (size_t i = 0; i < conf_errn; i++) {
        if (errs)
            buf_printf(errs, "%s\n", conf_errv[i].text);
        free(conf_errv[i].text);
    }
    xfree(&conf_errv);
    conf_errn = conf_errcap = 0;
    conf_collecting = 0;
    return n;
}

/* Parameter i failed: record "LOCATION: message", where LOCATION is that
 * of parameter loc (usually i itself), and report it. */
static void conf_vfail(size_t i, size_t loc, const char *fmt, va_list ap)
{
    struct conf_val *v = &conf_vals[i];
    buf_t *b = buf_new(0);
    char *msg;

    conf_loc(b, loc);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg_fatal("out of memory formatting a string");
    buf_printf(b, ": %s", msg);
    free(msg);
    free(v->error);
    v->error = xstrdup(buf_cstr(b));
    v->state = CONF_FAILED;
    conf_error_push(conf_vals[loc].line, buf_steal(b, NULL));
    buf_free(&b);
}

__attribute__((format(printf, 3, 4)))
static void conf_fail_at(size_t i, size_t loc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    conf_vfail(i, loc, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 2, 3)))
static void conf_fail(size_t i, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    conf_vfail(i, i, fmt, ap);
    va_end(ap);
}

/* Parameter i failed because parameter dep did: inherit its message. */
static void conf_fail_dep(size_t i, size_t dep)
{
    struct conf_val *v = &conf_vals[i];

    free(v->error);
    v->error = xstrdup(conf_vals[dep].error ? conf_vals[dep].error : "configuration error");
    v->state = CONF_FAILED;
}

/* "unknown parameter 'NAME'" and, if there is one, a hint; free it. */
static char *conf_unknown_msg(const char *prefix, const char *name, size_t len)
{
    char *copy = xstrndup(name, len);
    const char *hint = conf_suggest(copy);

    free(copy);
    if (hint)
        return xasprintf("unknown parameter '%s%.*s' (did you mean '%s%s'?)",
                         prefix, (int)len, name, prefix, hint);
    return xasprintf("unknown parameter '%s%.*s'", prefix, (int)len, name);
}

/* ---- expansion --------------------------------------------------------- */

static int conf_expand(size_t i);

static int conf_is_namechar(int c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* Parameter i, being expanded, was reached again: remember the cycle. */
static void conf_loop_found(size_t i)
{
    size_t pos = conf_stackn;

    while (pos > 0 && conf_stack[pos - 1] != i)
        pos--;
    if (pos == 0)
        msg_panic("conf: %s is expanding but not on the stack", conf_params[i].name);
    conf_cyclen = conf_stackn - (pos - 1);
    conf_cycle = xreallocarray(conf_cycle, conf_cyclen, sizeof(*conf_cycle));
    memcpy(conf_cycle, conf_stack + pos - 1, conf_cyclen * sizeof(*conf_cycle));
}

/* Parameter i's value closes the loop found last.  Report it at the first
 * member from i on that was set in main.conf or by conf_set(), if any:
 * that is the line to fix, rather than a default. */
static void conf_loop_report(size_t i)
{
    buf_t *b = buf_new(0);
    size_t start = 0, n = conf_cyclen;

    for (size_t k = 0; k < n; k++)
        if (conf_cycle[k] == i)
            start = k;
    for (size_t k = 0; k < n; k++)
        if (conf_vals[conf_cycle[(start + k) % n]].set) {
            start = (start + k) % n;
            break;
        }
    for (size_t k = 0; k <= n; k++)
        buf_printf(b, k ? " -> %s" : "%s", conf_params[conf_cycle[(start + k) % n]].name);
    conf_fail_at(i, conf_cycle[start], "expansion loop at $%s in the value of %s (%s)",
                 conf_params[conf_cycle[(start + 1) % n]].name,
                 conf_params[conf_cycle[start]].name, buf_cstr(b));
    buf_free(&b);
}

/* Expand parameter i's raw value into out; CONF_ERR on failure (reported). */
static int conf_subst(size_t i, const char *raw, buf_t *out)
{
    const char *pname = conf_params[i].name;
    const char *p = raw;

    while (*p) {
        const char *name, *end;
        size_t len;
        ssize_t j;
        int rc;

        if (*p != '$') {
            size_t n = strcspn(p, "$");

            if (buf_append(out, p, n) < 0)
                goto toolong;
            p += n;
            continue;
        }
        if (p[1] == '$') {
            if (buf_putc(out, '$') < 0)
                goto toolong;
            p += 2;
            continue;
        }
        if (p[1] == '{') {
            name = p + 2;
            for (end = name; conf_is_namechar(*end); end++)
                ;
            if (*end != '}' || end == name) {
                if (end > name && *end == '\0')
                    conf_fail(i, "missing '}' after '${%.*s' in the value of %s",
                              (int)(end - name), name, pname);
                else
                    conf_fail(i, "bad parameter reference '${%.*s' in the value of %s"
                              " (expected ${name})", (int)(end - name + (*end != '\0')),
                              name, pname);
                return CONF_ERR;
            }
            p = end + 1;
        } else {
            name = p + 1;
            for (end = name; conf_is_namechar(*end); end++)
                ;
            if (end == name) {
                conf_fail(i, "bad '$' in the value of %s (write $$ for a literal '$')",
                          pname);
                return CONF_ERR;
            }
            p = end;
        }
        len = (size_t)(end - name);
        if ((j = conf_index(name, len)) < 0) {
            char *msg = conf_unknown_msg("$", name, len);

            conf_fail(i, "%s in the value of %s", msg, pname);
            free(msg);
            return CONF_ERR;
        }
        if (conf_depth >= CONF_MAX_DEPTH) {
            conf_fail(i, "expansion loop: $%.*s in the value of %s nests deeper"
                      " than %d levels", (int)len, name, pname, CONF_MAX_DEPTH);
            return CONF_ERR;
        }
        conf_depth++;
        rc = conf_expand((size_t)j);
        conf_depth--;
        if (rc == CONF_LOOP) {
            conf_loop_report(i);
            return CONF_ERR;
        }
        if (rc < 0) {
            conf_fail_dep(i, (size_t)j);
            return CONF_ERR;
        }
        if (buf_append_str(out, conf_vals[j].value) < 0)
            goto toolong;
    }
    return 0;

toolong:
    conf_fail(i, "the value of %s is longer than %d bytes after expansion",
              pname, CONF_MAX_VALUE);
    return CONF_ERR;
}

/* Run parameter i's compute(); it may read other parameters via conf_str(). */
static int conf_compute(size_t i)
{
    struct conf_val *v = &conf_vals[i];
    int saved_status = conf_compute_status;
    size_t saved_dep = conf_compute_dep;
    const char *result;
    int status;

    conf_compute_status = 0;
    conf_computing++;
    result = conf_params[i].compute();
    conf_computing--;
    status = conf_compute_status;
    conf_compute_status = saved_status;
    if (status == CONF_ERR) {
        conf_fail_dep(i, conf_compute_dep);
        conf_compute_dep = saved_dep;
        return CONF_ERR;
    }
    conf_compute_dep = saved_dep;
    if (status == CONF_LOOP) {
        v->state = CONF_FRESH;          /* the referring value reports it */
        return CONF_LOOP;
    }
    if (result == NULL)
        msg_panic("conf: compute() of %s returned NULL", conf_params[i].name);
    v->computed = xstrdup(result);
    return 0;
}

/* Make conf_vals[i].value valid; 0, CONF_ERR or CONF_LOOP. */
static int conf_expand(size_t i)
{
    struct conf_val *v = &conf_vals[i];
    buf_t *out;
    int rc;

    switch (v->state) {
    case CONF_DONE:
        return 0;
    case CONF_FAILED:
        return CONF_ERR;
    case CONF_EXPANDING:
        conf_loop_found(i);
        return CONF_LOOP;
    case CONF_FRESH:
        break;
    }
    v->state = CONF_EXPANDING;
    if (conf_stackn == conf_stackcap) {
        conf_stackcap = conf_stackcap ? 2 * conf_stackcap : 32;
        conf_stack = xreallocarray(conf_stack, conf_stackcap, sizeof(*conf_stack));
    }
    conf_stack[conf_stackn++] = i;
    if (v->raw == NULL) {               /* computed default */
        if (v->computed || (rc = conf_compute(i)) == 0) {
            v->value = xstrdup(v->computed);
            v->state = CONF_DONE;
            rc = 0;
        }
    } else {
        out = buf_new(CONF_MAX_VALUE);
        if ((rc = conf_subst(i, v->raw, out)) == 0) {
            v->value = buf_steal(out, NULL);
            v->state = CONF_DONE;
        }
        buf_free(&out);
    }
    conf_stackn--;
    return rc;
}

/* Expand and type-check every parameter; errors go to the collection. */
static void conf_check_all(void)
{
    buf_t *why = buf_new(0);
    long long n;

    for (size_t i = 0; i < conf_nparams; i++) {
        int rc = conf_expand(i);

        if (rc == CONF_LOOP)
            msg_panic("conf: loop through %s not attributed", conf_params[i].name);
        if (rc < 0)
            continue;
        buf_reset(why);
        if (conf_check_value(&conf_params[i], conf_vals[i].value, &n, why) < 0) {
            buf_t *b = buf_new(0);

            conf_loc(b, i);
            conf_error_at(conf_vals[i].line, "%s: %s", buf_cstr(b), buf_cstr(why));
            buf_free(&b);
        }
    }
    buf_free(&why);
}

/* ---- loading ------------------------------------------------------------ */

/* Set parameter i's raw value (trimmed) and where it came from. */
static void conf_assign(size_t i, const char *value, const char *origin, int line)
{
    struct conf_val *v = &conf_vals[i];
    size_t len;

    value += strspn(value, CFGFILE_SPACE);
    for (len = strlen(value); len > 0 && strchr(CFGFILE_SPACE, value[len - 1]); len--)
        ;
    free(v->raw);
    free(v->origin);
    v->raw = xstrndup(value, len);
    v->origin = xstrdup(origin);
    v->line = line;
    v->set = 1;
}

/* One logical line "name = value" (left- and right-trimmed). */
static void conf_parse_line(const char *path, int line, const char *text)
{
    size_t nlen = strcspn(text, CFGFILE_SPACE "=");
    const char *p = text + nlen + strspn(text + nlen, CFGFILE_SPACE);
    ssize_t i;

    if (nlen == 0 || *p != '=') {
        conf_error_at(line, "%s:%d: expected 'name = value'", path, line);
        return;
    }
    if ((i = conf_index(text, nlen)) < 0) {
        char *msg = conf_unknown_msg("", text, nlen);

        conf_error_at(line, "%s:%d: %s", path, line, msg);
        free(msg);
        return;
    }
    if (strcmp(conf_params[i].name, "config_directory") == 0) {
        conf_error_at(line, "%s:%d: config_directory cannot be set in main.conf: "
                      "use -c DIR or $POSTHORN_CONFIG", path, line);
        return;
    }
    conf_assign((size_t)i, p + 1, path, line);
}

/* One logical line of main.conf. */
static int conf_entry(const struct cfgfile_entry *e, void *ctx)
{
    const char *path = ctx;

    if (e->nul_line)
        conf_error_at(e->line, "%s:%d: NUL byte in the line", path, e->nul_line);
    else if (e->orphan)
        conf_error_at(e->line, "%s:%d: continuation line (starting with white space)"
                      " without a 'name = value' line before it", path, e->line);
    else
        conf_parse_line(path, e->line, e->text);
    return 0;
}

/* config_directory is taken literally: protect any '$' from expansion. */
static char *conf_escape(const char *s)
{
    buf_t *b = buf_new(0);
    char *r;

    for (; *s; s++) {
        if (*s == '$')
            buf_putc(b, '$');
        buf_putc(b, *s);
    }
    r = buf_steal(b, NULL);
    buf_free(&b);
    return r;
}

int conf_load(const char *confdir, buf_t *errs)
{
    size_t len = strlen(confdir);
    ssize_t cd = conf_index("config_directory", strlen("config_directory"));
    char *path;
    FILE *fp;

    conf_init();
    conf_reset_defaults();
    free(conf_dir);
    conf_dir = xstrdup(confdir);
    if (cd >= 0) {
        free(conf_vals[cd].raw);
        conf_vals[cd].raw = conf_escape(confdir);
    }
    while (len > 1 && confdir[len - 1] == '/')
        len--;
    path = xasprintf("%.*s/main.conf", (int)len, confdir);
    conf_collecting = 1;
    if ((fp = fopen(path, "re")) == NULL) {
        conf_error_at(0, "%s: cannot open: %s", path, strerror(errno));
    } else {
        if (cfgfile_read(fp, conf_entry, path) < 0)
            conf_error_at(INT_MAX, "%s: read error: %s", path, strerror(errno));
        fclose(fp);
    }
    conf_check_all();
    free(path);
    return conf_error_flush(errs) ? -1 : 0;
}

int conf_set(const char *name, const char *value, const char *origin, buf_t *errs)
{
    struct conf_val *v, saved;
    ssize_t i;

    conf_init();
    if (origin == NULL)
        origin = "command line";
    if ((i = conf_index(name, strlen(name))) < 0) {
        char *msg = conf_unknown_msg("", name, strlen(name));

        if (errs)
            buf_printf(errs, "%s: %s\n", origin, msg);
        free(msg);
        return -1;
    }
    if (strpbrk(value, "\r\n") != NULL) {
        /* main.conf cannot hold one either: a value is a single line. */
        if (errs)
            buf_printf(errs, "%s: the value of %s contains a line break\n", origin, name);
        return -1;
    }
    v = &conf_vals[i];
    saved = *v;
    v->raw = v->origin = NULL;
    conf_assign((size_t)i, value, origin, 0);
    conf_invalidate();
    conf_collecting = 1;
    conf_check_all();
    if (conf_error_flush(errs) == 0) {
        free(saved.raw);
        free(saved.origin);
        return 0;
    }
    /* Keep the configuration as it was. */
    free(v->raw);
    free(v->origin);
    v->raw = saved.raw;
    v->origin = saved.origin;
    v->line = saved.line;
    v->set = saved.set;
    conf_invalidate();
    return -1;
}

const char *conf_confdir(void)
{
    ssize_t cd;

    if (conf_dir)
        return conf_dir;
    cd = conf_index("config_directory", strlen("config_directory"));
    return cd >= 0 ? conf_params[cd].defval : "/etc/posthorn";
}

/* ---- getters -------------------------------------------------------------- */

const char *conf_str(const char *name)
{
    size_t i = conf_need(name, "conf_str");
    int rc = conf_expand(i);

    if (rc == 0)
        return conf_vals[i].value;
    if (conf_computing) {
        /* Inside a compute(): let it finish, then fail its parameter. */
        if (conf_compute_status == 0) {
            conf_compute_status = rc;
            conf_compute_dep = i;
        }
        return "";
    }
    if (rc == CONF_LOOP)
        msg_panic("conf_str: %s is being expanded", name);
    msg_fatal("%s", conf_vals[i].error ? conf_vals[i].error : "configuration error");
}

/* The checked number behind a typed getter; fatal if the value is bad. */
static long long conf_number(const char *name, enum conf_type t, const char *who)
{
    size_t i = conf_need(name, who);
    const char *s;
    buf_t *why, *loc;
    long long n;

    if (conf_params[i].type != t)
        msg_panic("%s: %s has another type", who, name);
    s = conf_str(name);
    why = buf_new(0);
    if (conf_check_value(&conf_params[i], s, &n, why) == 0) {
        buf_free(&why);
        return n;
    }
    loc = buf_new(0);
    conf_loc(loc, i);
    msg_fatal("%s: %s", buf_cstr(loc), buf_cstr(why));
}

long long conf_int(const char *name)
{
    return conf_number(name, CONF_INT, "conf_int");
}

int conf_bool(const char *name)
{
    return (int)conf_number(name, CONF_BOOL, "conf_bool");
}

long long conf_time(const char *name)
{
    return conf_number(name, CONF_TIME, "conf_time");
}

long long conf_size(const char *name)
{
    return conf_number(name, CONF_SIZE, "conf_size");
}

int conf_is_default(const char *name)
{
    return !conf_vals[conf_need(name, "conf_is_default")].set;
}

/* ---- dumping -------------------------------------------------- */

static int conf_name_cmp(const void *a, const void *b)
{
    return strcmp(conf_params[*(const size_t *)a].name,
                  conf_params[*(const size_t *)b].name);
}

void conf_dump(FILE *out, enum conf_dump_mode mode)
{
    size_t *order;

    conf_init();
    order = xcalloc(conf_nparams, sizeof(*order));
    for (size_t i = 0; i < conf_nparams; i++)
        order[i] = i;
    qsort(order, conf_nparams, sizeof(*order), conf_name_cmp);
    for (size_t k = 0; k < conf_nparams; k++) {
        size_t i = order[k];
        struct conf_val *v = &conf_vals[i];
        const char *value = v->raw;

        if (mode == CONF_DUMP_CHANGED && !v->set)
            continue;
        if (mode == CONF_DUMP_DEFAULTS)
            value = conf_params[i].defval;
        if (value == NULL && mode == CONF_DUMP_DEFAULTS)
            value = conf_params[i].compute();
        else if (value == NULL)         /* computed default: show the result */
            value = conf_expand(i) == 0 ? v->value : "";
        if (*value)
            fprintf(out, "%s = %s\n", conf_params[i].name, value);
        else
            fprintf(out, "%s =\n", conf_params[i].name);
    }
    free(order);
}

void conf_dns_settings(struct dns_settings *ds)
{
    ds->forwarders = conf_str("dns_forwarders");
    ds->stub_zones = conf_str("dns_stub_zones");
    ds->trust_anchor_file = conf_str("dnssec_trust_anchor_file");
    ds->timeout_ms = (long)conf_time("dns_query_timeout") * 1000;
}
