/*
 * fuzz/map - libFuzzer harness for lib/map.c: map_build in both source
 * formats, then map_open and map_lookup.
 *
 * The input is written as a map source into a private scratch directory
 * and built twice: as hash:SRC in MAP_FORMAT_ALIASES and as btree:SRC in
 * MAP_FORMAT_POSTMAP (byte 0's low bit swaps the pairing).  Checks:
 * map_build() returns -1 exactly when it reported errors, each error line
 * naming the source; a failed build leaves no table and no temporary file
 * behind; a good one opens, and lookups of the first key of the input (as
 * written and upper-cased), of an empty key and of a few fixed names give
 * found / not found without error, a found value being a C string.  No
 * descriptor may stay open.
 */
#include <ctype.h>
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "fuzzlib.h"
#include "map.h"

/* Only the source (and, after a good build, SRC.db) may be left. */
static void check_dir(int with_db)
{
    DIR *d = opendir(fuzz_dir);
    struct dirent *de;

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0
            || strcmp(de->d_name, "src") == 0 || (with_db && strcmp(de->d_name, "src.db") == 0))
            continue;
        fuzz_fail("map_build left %s behind", de->d_name);
    }
    closedir(d);
}

static void lookup(map_t *m, const char *key)
{
    char *value = (char *)1;
    int rc = map_lookup(m, key, &value);

    if (rc == 1 && value == NULL)
        fuzz_fail("map_lookup found '%s' with a NULL value", key);
    if (rc == 1)
        (void)strlen(value);
    if (rc != 1 && value != NULL)
        fuzz_fail("map_lookup returned %d with a value", rc);
    if (rc != 0 && rc != 1)
        fuzz_fail("map_lookup of '%s' failed (%d)", key, rc);
    free(value);
}

static void build_and_read(const char *type, int format, const uint8_t *data, size_t size)
{
    char spec[600], prefix[600];
    buf_t *errs = buf_new(0);
    long count = -1;
    char *err = NULL, *first, *upper;
    size_t n;
    map_t *m;
    int rc;

    unlink(fuzz_path("src.db"));
    snprintf(spec, sizeof(spec), "%s:%s", type, fuzz_path("src"));
    rc = map_build(spec, format, errs, &count);
    if (rc != 0 && rc != -1)
        fuzz_fail("map_build returned %d", rc);
    if ((rc < 0) != (errs->len > 0))
        fuzz_fail("map_build returned %d with errors '%s'", rc, buf_cstr(errs));
    if (count < 0)
        fuzz_fail("map_build counted %ld entries", count);
    snprintf(prefix, sizeof(prefix), "%s:", fuzz_path("src"));
    for (const char *p = buf_cstr(errs); *p; ) {
        const char *nl = strchr(p, '\n');

        if (nl == NULL || strncmp(p, prefix, strlen(prefix)) != 0)
            fuzz_fail("bad error line: '%s'", p);
        p = nl + 1;
    }
    check_dir(rc == 0);
    m = map_open(spec, &err);
    if (rc < 0) {
        if (m != NULL)
            fuzz_fail("a table exists after a failed build");
        free(err);
        buf_free(&errs);
        return;
    }
    if (m == NULL)
        fuzz_fail("cannot open the table just built: %s", err ? err : "?");

    /* The first key of the input, as written and upper-cased. */
    for (n = 0; n < size && data[n] && !isspace(data[n]) && data[n] != ':'; n++)
        ;
    first = strndup((const char *)data, n);
    upper = strdup(first);
    if (first == NULL || upper == NULL)
        abort();
    for (char *p = upper; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    lookup(m, first);
    lookup(m, upper);
    lookup(m, "");
    lookup(m, "postmaster");
    lookup(m, "ROOT");
    if (strcmp(map_name(m), spec) != 0)
        fuzz_fail("map_name '%s'", map_name(m));
    free(first);
    free(upper);
    map_close(&m);
    buf_free(&errs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int mark = fuzz_fd_mark(), swap = size > 0 && (data[0] & 1);

    if (fuzz_write(fuzz_path("src"), data, size) < 0)
        return 0;                       /* the environment, not the input */
    build_and_read(swap ? "btree" : "hash", MAP_FORMAT_ALIASES, data, size);
    build_and_read(swap ? "hash" : "btree", MAP_FORMAT_POSTMAP, data, size);
    fuzz_fd_check(mark);
    return 0;
}
