/*
 * fuzz/conf - libFuzzer harness for lib/conf.c and lib/conf_value.c:
 * conf_load, conf_dump and conf_set.
 *
 * The input is written as main.conf into a private scratch directory and
 * loaded.  Checks: conf_load() returns -1 exactly when it reported errors,
 * each error line is "FILE:LINE: message" or "default of NAME: message";
 * after a clean load every getter works (conf_str on every parameter, the
 * typed getter for its type: none may be fatal), and conf_dump() works in
 * every mode.  After a failed load only conf_dump(ALL/CHANGED) is called:
 * conf_dump(DEFAULTS) computes mydomain from myhostname through conf_str,
 * which is documented to be fatal when that value is broken.
 *
 * Then the first line of the input is split at its first '=' into a name
 * and a value for conf_set(): a failed conf_set() must report why
 * and leave the configuration exactly as it was (compared through
 * conf_dump(ALL) and the getters).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "conf.h"
#define FUZZ_OWN_INIT
#include "fuzzlib.h"

static FILE *devnull;

/* conf_dump(ALL) into a fresh string, with the expanded values. */
static char *snapshot(int loaded)
{
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);

    if (fp == NULL)
        fuzz_fail("open_memstream failed");
    conf_dump(fp, CONF_DUMP_ALL);
    if (loaded)
        for (size_t i = 0; i < conf_nparams; i++)
            fprintf(fp, "%s => %s\n", conf_params[i].name, conf_str(conf_params[i].name));
    fclose(fp);
    return text;
}

/* After a clean load or set: every getter must work (a fatal would exit). */
static void read_all(void)
{
    for (size_t i = 0; i < conf_nparams; i++) {
        const struct conf_param *p = &conf_params[i];
        long long n = 0;

        (void)conf_str(p->name);
        switch (p->type) {
        case CONF_STR:  break;
        case CONF_INT:  n = conf_int(p->name); break;
        case CONF_BOOL: n = conf_bool(p->name); break;
        case CONF_TIME: n = conf_time(p->name); break;
        case CONF_SIZE: n = conf_size(p->name); break;
        }
        if (p->type != CONF_STR && p->type != CONF_BOOL && (n < p->min || n > p->max))
            fuzz_fail("%s = %lld is outside [%lld, %lld]", p->name, n, p->min, p->max);
        (void)conf_is_default(p->name);
    }
}

/* Every error line names a place: the file, the command line or a default
 * (a conf_set() can break a main.conf value that refers to it). */
static void check_errs(const buf_t *errs, const char *where)
{
    const char *p = buf_cstr(errs);
    char main_conf[512];

    snprintf(main_conf, sizeof(main_conf), "%s:", fuzz_path("main.conf"));

    while (*p) {
        const char *nl = strchr(p, '\n');

        if (nl == NULL)
            fuzz_fail("error text without a final newline: '%s'", p);
        if (strncmp(p, where, strlen(where)) != 0 && strncmp(p, "default of ", 11) != 0
            && strncmp(p, main_conf, strlen(main_conf)) != 0)
            fuzz_fail("error line does not start with '%s': '%.*s'", where,
                      (int)(nl - p), p);
        p = nl + 1;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    if ((devnull = fopen("/dev/null", "we")) == NULL)
        exit(2);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    buf_t *errs = buf_new(0);
    char *name, *value, *before, *after, *cut;
    const char *origin;
    size_t nlen, vlen;
    int mark = fuzz_fd_mark(), loaded, rc;

    if (fuzz_write(fuzz_path("main.conf"), data, size) < 0) {
        buf_free(&errs);
        return 0;                       /* the environment, not the input */
    }
    rc = conf_load(fuzz_dir, errs);
    if ((rc < 0) != (errs->len > 0))
        fuzz_fail("conf_load returned %d with %zu bytes of errors", rc, errs->len);
    if (rc != 0 && rc != -1)
        fuzz_fail("conf_load returned %d", rc);
    check_errs(errs, fuzz_path("main.conf"));
    loaded = rc == 0;
    if (loaded) {
        read_all();
        conf_dump(devnull, CONF_DUMP_DEFAULTS);
    }
    conf_dump(devnull, CONF_DUMP_ALL);
    conf_dump(devnull, CONF_DUMP_CHANGED);

    /* conf_set(name, value): split at the first '=' or line break. */
    nlen = 0;
    while (nlen < size && data[nlen] != '=' && data[nlen] != '\n')
        nlen++;
    name = strndup((const char *)data, nlen);
    /* The value: to the end of that line.  Values come from master.conf
     * "-o name=value" arguments, which never hold a line break. */
    vlen = 0;
    if (nlen < size && data[nlen] == '=')
        while (nlen + 1 + vlen < size && data[nlen + 1 + vlen] != '\n')
            vlen++;
    value = strndup(nlen < size ? (const char *)data + nlen + 1 : "", vlen);
    if (name == NULL || value == NULL)
        abort();
    /* Names are looked up as written: trim white space so that more
     * inputs reach the value checks. */
    for (cut = name + strlen(name); cut > name && strchr(" \t\r", cut[-1]); cut--)
        cut[-1] = '\0';
    origin = size && (data[0] & 1) ? NULL : "fuzz";
    before = snapshot(loaded);
    buf_reset(errs);
    rc = conf_set(name, value, origin, errs);
    if (rc != 0 && rc != -1)
        fuzz_fail("conf_set returned %d", rc);
    if (rc < 0) {
        if (errs->len == 0)
            fuzz_fail("conf_set failed without a message");
        check_errs(errs, origin ? origin : "command line");
        after = snapshot(loaded);
        if (strcmp(before, after) != 0)
            fuzz_fail("a failed conf_set changed the configuration:\n%s\n---\n%s",
                      before, after);
        free(after);
    } else {
        if (errs->len != 0)
            fuzz_fail("conf_set succeeded with errors: %s", buf_cstr(errs));
        read_all();
        conf_dump(devnull, CONF_DUMP_DEFAULTS);
        conf_dump(devnull, CONF_DUMP_CHANGED);
    }
    free(before);
    free(name);
    free(value);
    buf_free(&errs);
    fuzz_fd_check(mark);
    return 0;
}
