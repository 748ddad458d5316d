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
 * Tables kept by a program rather than built from a source (the mail
 * password store, lib/passdb) are opened by their own file name with
 * map_open_file(), which runs a caller's check on the descriptor Berkeley
 * DB reads at every (re)open, and are replaced as a whole by map_write():
 * the same temporary file, fsync, rename and directory fsync as map_build.
 *
 * Failure modes: open/lookup errors are returned (-1, errno, message), never
 * fatal: the caller decides (e.g. defer the mail).
 */
#ifndef POSTHORN_MAP_H
#define POSTHORN_MAP_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "buf.h"

#define MAP_FORMAT_POSTMAP  0
#define MAP_FORMAT_ALIASES  1

#define MAP_TYPE_HASH  0
#define MAP_TYPE_BTREE 1

typedef struct map map_t;

/* Run on every (re)open of a map_open_file() table: path, and what fstat
 * says of the descriptor Berkeley DB reads.  0, or -1 with errno and *err
 * (a fresh "PATH: reason"); the open then fails. */
typedef int (*map_check_fn)(const char *path, const struct stat *st, void *ctx, char **err);

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

/* Open the table file path itself (no ".db" appended) read-only; type
 * MAP_TYPE_HASH or MAP_TYPE_BTREE; check (may be NULL) as above.  map_name
 * is "hash:PATH" or "btree:PATH".  NULL with errno and *err as map_open. */
map_t *map_open_file(const char *path, int type, map_check_fn check, void *ctx, char **err);
/* Replace (or create) the table file path with exactly the n pairs
 * keys[i] -> values[i] (keys lower-cased as map_build does; two keys that
 * fold to the same one are an error, EEXIST): a temporary file in the same
 * directory with mode, owner uid and group gid ((uid_t)-1 / (gid_t)-1:
 * leave as created), fsync, rename over path, fsync of the directory.
 * 0, or -1 with errno and *err (fresh); path is then untouched, except
 * when only the last step, the directory fsync, failed: the new table is
 * in place then but might not survive a crash. */
int    map_write(const char *path, int type, const char *const *keys,
                 const char *const *values, size_t n, mode_t mode, uid_t uid, gid_t gid,
                 char **err);

#endif
