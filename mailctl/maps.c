/*
 * maps.c - "mailctl newaliases" and "mailctl map": build Berkeley DB
 * tables from their text sources (Postfix's newaliases and postmap).
 *
 *   mailctl newaliases        every hash: or btree: table of alias_maps,
 *                             from aliases(5) text ("name: target, ...")
 *   mailctl map [TYPE:]FILE   FILE.db from "key value" lines (virtual maps
 *                             and other tables); TYPE is hash (default) or
 *                             btree
 *
 * Tables are rebuilt into a temporary file and renamed over the old one
 * (lib/map), so running daemons switch to the new version at their next
 * lookup, without a restart.  Errors are FILE:LINE: message; nothing is
 * replaced when a source has errors.
 *
 * A source is read only when nobody but its owner could have chosen it:
 * it and every directory above it must belong to root (or, for a user
 * running mailctl, to that user) and be writable by nobody else
 * (lib/trustpath).  Root never builds a table from a file a user could
 * point at /etc/shadow.
 *
 * maps_aliases_ready() is the start-up side (mailctl start and check): an
 * alias table whose .db is missing or older than its source is built at
 * start (and reported by check), and one that has neither a source nor a
 * .db stops the start with the command that fixes it, because local would
 * otherwise defer every local recipient.
 *
 * maps_transport_ready() checks transport_maps the same way for mailctl
 * check (and warns at start): a table of another type, or one whose .db
 * is missing, is reported with the command that builds it, because qmgr
 * would defer all mail; a .db older than its source is a warning.
 *
 * Exit codes: 0 built, 1 a source had errors or could not be read, 2 usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf.h"
#include "mailctl.h"
#include "map.h"
#include "trustpath.h"
#include "xalloc.h"

/* May we read this source?  0, or -1 with the reason printed. */
static int maps_source_trusted(const char *file)
{
    uid_t owners[2];
    size_t n = trustpath_owners(owners);
    buf_t *errs = buf_new(0);
    int rc = trustpath_check(file, TRUSTPATH_FILE, owners, n, errs);

    if (rc < 0)
        fprintf(stderr, "mailctl: not reading %s: %s", file, buf_cstr(errs));
    buf_free(&errs);
    return rc;
}

/* Build one table; 0 or -1 (errors printed). */
static int maps_build_one(const char *spec, int format, const char *what)
{
    buf_t *errs;
    long count = 0;
    int rc;

    if (maps_source_trusted(strchr(spec, ':') + 1) < 0)
        return -1;
    errs = buf_new(0);
    rc = map_build(spec, format, errs, &count);
    if (rc < 0)
        fputs(buf_cstr(errs), stderr);
    else
        printf("mailctl: %s: %ld %s\n", strchr(spec, ':') + 1, count, what);
    buf_free(&errs);
    return rc;
}

/* Is the table built from a text file? */
static int maps_is_built(const char *spec)
{
    return strncmp(spec, "hash:", 5) == 0 || strncmp(spec, "btree:", 6) == 0;
}

int maps_aliases_ready(int build)
{
    char **maps = conf_split(conf_str("alias_maps"));
    int rc = 0;

    for (size_t i = 0; maps[i]; i++) {
        const char *file;
        char *db;
        struct stat src, dbst;
        int have_src, have_db;

        if (!maps_is_built(maps[i]))
            continue;
        file = strchr(maps[i], ':') + 1;
        db = xasprintf("%s.db", file);
        have_src = stat(file, &src) == 0;
        have_db = stat(db, &dbst) == 0;
        if (!have_src && !have_db) {
            fprintf(stderr, "mailctl: alias_maps: neither %s nor %s exists, so local would "
                    "defer all local mail: create %s (see aliases(5); at least "
                    "\"postmaster: root\") and run mailctl newaliases\n", file, db, file);
            rc = -1;
        } else if (have_src && (!have_db || dbst.st_mtim.tv_sec < src.st_mtim.tv_sec
                                || (dbst.st_mtim.tv_sec == src.st_mtim.tv_sec
                                    && dbst.st_mtim.tv_nsec < src.st_mtim.tv_nsec))) {
            if (!build) {
                fprintf(stderr, "mailctl: warning: alias_maps: %s %s (mailctl start builds "
                        "it; or run mailctl newaliases)\n", db,
                        have_db ? "is older than its source" : "does not exist");
            } else if (maps_build_one(maps[i], MAP_FORMAT_ALIASES, "aliases") < 0 && !have_db) {
                fprintf(stderr, "mailctl: alias_maps: %s could not be built\n", db);
                rc = -1;
            }
        }
        free(db);
    }
    conf_split_free(&maps);
    return rc;
}

/* Is the .db older than its source? */
static int maps_stale(const struct stat *src, const struct stat *db)
{
    return db->st_mtim.tv_sec < src->st_mtim.tv_sec
           || (db->st_mtim.tv_sec == src->st_mtim.tv_sec
               && db->st_mtim.tv_nsec < src->st_mtim.tv_nsec);
}

int maps_transport_ready(int strict)
{
    char **maps = conf_split(conf_str("transport_maps"));
    const char *severity = strict ? "" : "warning: ";
    int rc = 0;

    for (size_t i = 0; maps[i]; i++) {
        struct stat src, dbst;
        const char *file;
        char *db;
        int have_src, have_db;

        if (!maps_is_built(maps[i])) {
            fprintf(stderr, "mailctl: %stransport_maps: unsupported table '%s' (hash:FILE or "
                    "btree:FILE)\n", severity, maps[i]);
            rc = -1;
            continue;
        }
        file = strchr(maps[i], ':') + 1;
        db = xasprintf("%s.db", file);
        have_src = stat(file, &src) == 0;
        have_db = stat(db, &dbst) == 0;
        if (!have_db) {
            fprintf(stderr, "mailctl: %stransport_maps: %s does not exist, so qmgr would defer "
                    "all mail: %s%s (see transport(5))\n", severity, db,
                    have_src ? "run mailctl map " : "write the table and run mailctl map ",
                    maps[i]);
            rc = -1;
        } else if (have_src && maps_stale(&src, &dbst)) {
            fprintf(stderr, "mailctl: warning: transport_maps: %s is older than its source "
                    "(run mailctl map %s)\n", db, file);
        }
        free(db);
    }
    conf_split_free(&maps);
    return strict ? rc : 0;
}

int cmd_newaliases(int argc, char **argv)
{
    char **maps;
    int rc = 0, built = 0;

    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: mailctl newaliases\n");
        return 2;
    }
    if (mailctl_load_config(0) < 0)
        return 1;
    maps = conf_split(conf_str("alias_maps"));
    for (size_t i = 0; maps[i]; i++) {
        if (!maps_is_built(maps[i]))
            continue;       /* not built from a text file (e.g. unix:passwd.byname) */
        if (maps_build_one(maps[i], MAP_FORMAT_ALIASES, "aliases") < 0)
            rc = 1;
        built++;
    }
    conf_split_free(&maps);
    if (built == 0)
        fprintf(stderr, "mailctl: alias_maps = %s names no hash: or btree: table to build\n",
                conf_str("alias_maps"));
    return rc;
}

int cmd_map(int argc, char **argv)
{
    const char *arg;
    char *spec;
    int rc;

    if (argc != 2) {
        fprintf(stderr, "usage: mailctl map [hash:|btree:]FILE\n");
        return 2;
    }
    arg = argv[1];
    if (strncmp(arg, "hash:", 5) == 0 || strncmp(arg, "btree:", 6) == 0)
        spec = xstrdup(arg);
    else if (strchr(arg, ':') != NULL && arg[0] != '/' && arg[0] != '.') {
        fprintf(stderr, "mailctl: unknown table type in '%s' (hash: or btree:)\n", arg);
        return 2;
    } else {
        spec = xasprintf("hash:%s", arg);
    }
    rc = maps_build_one(spec, MAP_FORMAT_POSTMAP, "entries") < 0 ? 1 : 0;
    free(spec);
    return rc;
}
