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
 * Exit codes: 0 built, 1 a source had errors or could not be read, 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "mailctl.h"
#include "map.h"
#include "xalloc.h"

/* Build one table; 0 or -1 (errors printed). */
static int maps_build_one(const char *spec, int format, const char *what)
{
    buf_t *errs = buf_new(0);
    long count = 0;
    int rc = map_build(spec, format, errs, &count);

    if (rc < 0)
        fputs(buf_cstr(errs), stderr);
    else
        printf("mailctl: %s: %ld %s\n", strchr(spec, ':') + 1, count, what);
    buf_free(&errs);
    return rc;
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
        if (strncmp(maps[i], "hash:", 5) != 0 && strncmp(maps[i], "btree:", 6) != 0)
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
