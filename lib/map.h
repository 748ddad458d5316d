/*
 * map - Berkeley DB lookup tables (alias, virtual, password maps).
 *
 * A map is named Postfix style, "hash:/etc/posthorn/aliases": the source
 * text file is /etc/posthorn/aliases and the table is /etc/posthorn/aliases.db
 * (DB_HASH, keys stored with a trailing NUL as Postfix and sendmail do, keys
 * lower-cased).  "btree:" is the same with DB_BTREE.
 *
 * Lookups notice a rebuilt map: before each lookup the .db file is stat()ed
 * and, when its inode, size or mtime changed since it was opened, the handle
 * is reopened.  Maps are only ever rebuilt by writing a temporary file and
 * rename()ing it over the old one (map_build), so a reader always sees one
 * consistent version.
 *
 * Source formats for map_build():
 *   MAP_FORMAT_POSTMAP  "key<whitespace>value"
 *   MAP_FORMAT_ALIASES  "key: value"  (newaliases)
 * '#' starts a comment line, blank lines are skipped, a line that starts with
 * whitespace continues the previous one.  Errors are "FILE:LINE: message".
 *
 * Failure modes: open/lookup errors are returned (-1, errno, message), never
 * fatal: the caller decides (e.g. defer the mail).
 */
#ifndef POSTHORN_MAP_H
#define POSTHORN_MAP_H

#include "buf.h"

#define MAP_FORMAT_POSTMAP  0
#define MAP_FORMAT_ALIASES  1

typedef struct map map_t;

/* NULL on failure with a message in *err (caller frees). */
map_t *map_open(const char *spec, char **err);
void   map_close(map_t **mp);
/* 1 found (*value is a fresh string), 0 not found, -1 error (errno). */
int    map_lookup(map_t *m, const char *key, char **value);
/* Call fn for every entry (key as stored: lower-cased), in the table's
 * order, until it returns non-zero.  0, fn's non-zero result, or -1 with
 * errno (logged). */
int    map_foreach(map_t *m, int (*fn)(void *ctx, const char *key, const char *value),
                   void *ctx);
const char *map_name(const map_t *m);      /* the spec it was opened with */
/* The process's open handle for spec, opened on first use and kept (a
 * rebuilt table is still noticed by map_lookup).  NULL with *err as for
 * map_open; a failed open is tried again next time. */
map_t *map_cached(const char *spec, char **err);

/* Build spec's .db from its source text file; 0, or -1 with one
 * "FILE:LINE: message" line per problem appended to errs.  Returns the
 * number of entries in *count when count is not NULL. */
int    map_build(const char *spec, int format, buf_t *errs, long *count);

#endif
