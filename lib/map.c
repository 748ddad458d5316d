/*
 * map - Berkeley DB lookup tables (see map.h).
 *
 * Interface: map_open, map_open_file, map_close, map_lookup, map_foreach,
 * map_name, map_build, map_write.
 *
 * Readers open "FILE.db" read-only with db_create() + DB->open(), without a
 * DB_ENV: a map is never written in place, so readers need no locking.
 * map_build() writes a new table into a temporary file in the same
 * directory ("FILE.db.XXXXXX"), closes and fsync()s it, and rename()s it over
 * FILE.db, then fsync()s the directory.  A reader stat()s FILE.db before each
 * lookup and reopens when st_dev/st_ino/st_size/st_mtim differ from the file
 * it holds, so it always sees one complete version.
 *
 * Keys are stored lower-cased (ASCII) with a trailing NUL, values verbatim
 * with a trailing NUL, as Postfix's postmap/postalias do.  The new table
 * gets the permission bits of its source file (a 0600 password map stays
 * private) and, when built by root, the source file's owner and group.
 * A duplicate key is warned about (msg_warn) and the first value kept.
 *
 * Failure modes: Berkeley DB never writes to stderr: its messages are sent
 * to msg_warn() via DB->set_errcall().  Open and lookup errors are returned
 * (NULL + message, or -1 + errno), never fatal.  A source file with any
 * error leaves the existing FILE.db untouched; map_build() then returns -1
 * with one "FILE:LINE: message" line per problem in errs.
 */
#include <db.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "buf.h"
#include "cfgfile.h"
#include "durable.h"
#include "map.h"
#include "msg.h"
#include "xalloc.h"

#define MAP_MAX_ERRORS  100     /* stop reporting a hopeless source file */

struct map {
    char   *spec;               /* "hash:/etc/posthorn/aliases" */
    char   *dbpath;             /* "/etc/posthorn/aliases.db" */
    DBTYPE  type;
    DB     *db;
    struct stat st;             /* identity of the file db reads */
    map_check_fn check;         /* map_open_file's check, or NULL */
    void   *check_ctx;
};

/* Berkeley DB reports through this instead of stderr. */
static void map_errcall(const DB_ENV *env, const char *pfx, const char *text)
{
    (void)env;
    if (pfx && *pfx)
        msg_warn("Berkeley DB: %s: %s", pfx, text);
    else
        msg_warn("Berkeley DB: %s", text);
}

/* errno for a Berkeley DB return code (its own codes are negative). */
static int map_errno(int ret)
{
    return ret > 0 ? ret : EIO;
}

/* Split "type:path"; 0 or -1 with *err set. */
static int map_parse_spec(const char *spec, DBTYPE *type, char **path, char **err)
{
    const char *colon = spec ? strchr(spec, ':') : NULL;
    size_t tlen;

    if (spec == NULL)
        msg_panic("map: NULL map spec");
    if (colon == NULL) {
        *err = xasprintf("unsupported map type '' in '%s' (expected hash:FILE or btree:FILE)",
                         spec);
        return -1;
    }
    tlen = (size_t)(colon - spec);
    if (tlen == 4 && strncmp(spec, "hash", 4) == 0) {
        *type = DB_HASH;
    } else if (tlen == 5 && strncmp(spec, "btree", 5) == 0) {
        *type = DB_BTREE;
    } else {
        *err = xasprintf("unsupported map type '%.*s' in '%s'", (int)tlen, spec, spec);
        return -1;
    }
    if (colon[1] == '\0') {
        *err = xasprintf("missing file name in map '%s'", spec);
        return -1;
    }
    *path = xstrdup(colon + 1);
    return 0;
}

static int map_same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino
        && a->st_size == b->st_size
        && a->st_mtim.tv_sec == b->st_mtim.tv_sec
        && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Open dbpath read-only; fill *st from the descriptor the handle really
 * uses.  0, or -1 with errno and *err. */
static int map_db_open(const char *spec, const char *dbpath, DBTYPE type,
                       map_check_fn check, void *check_ctx,
                       DB **dbp, struct stat *st, char **err)
{
    DB *db;
    int ret, fd;

    if (stat(dbpath, st) < 0) {
        int e = errno;

        *err = xasprintf("map %s: cannot open %s: %s", spec, dbpath, strerror(e));
        errno = e;
        return -1;
    }
    if ((ret = db_create(&db, NULL, 0)) != 0) {
        *err = xasprintf("map %s: cannot create a Berkeley DB handle: %s",
                         spec, db_strerror(ret));
        errno = map_errno(ret);
        return -1;
    }
    db->set_errcall(db, map_errcall);
    db->set_errpfx(db, dbpath);         /* kept by reference: outlives db */
    if ((ret = db->open(db, NULL, dbpath, NULL, type, DB_RDONLY, 0)) != 0
        || (ret = db->fd(db, &fd)) != 0) {
        *err = xasprintf("map %s: cannot open %s: %s", spec, dbpath, db_strerror(ret));
        db->close(db, 0);
        errno = map_errno(ret);
        return -1;
    }
    if (fstat(fd, st) < 0) {
        int e = errno;

        *err = xasprintf("map %s: cannot stat %s: %s", spec, dbpath, strerror(e));
        db->close(db, 0);
        errno = e;
        return -1;
    }
    if (check && check(dbpath, st, check_ctx, err) < 0) {
        int e = errno;

        db->close(db, 0);
        errno = e;
        return -1;
    }
    *dbp = db;
    return 0;
}

/* Open m's database (spec, dbpath, type, check set): m, or NULL with m
 * freed and the message in *err (if err is not NULL). */
static map_t *map_open_db(map_t *m, char **err)
{
    char *msg = NULL;

    if (map_db_open(m->spec, m->dbpath, m->type, m->check, m->check_ctx, &m->db, &m->st,
                    &msg) < 0) {
        int e = errno;

        if (err)
            *err = msg;
        else
            free(msg);
        free(m->spec);
        free(m->dbpath);
        free(m);
        errno = e;
        return NULL;
    }
    return m;
}

map_t *map_open(const char *spec, char **err)
{
    map_t *m;
    char *path, *msg = NULL;
    DBTYPE type;

    if (err)
        *err = NULL;
    if (map_parse_spec(spec, &type, &path, &msg) < 0) {
        if (err)
            *err = msg;
        else
            free(msg);
        errno = EINVAL;
        return NULL;
    }
    m = xcalloc(1, sizeof(*m));
    m->spec = xstrdup(spec);
    m->dbpath = xasprintf("%s.db", path);
    m->type = type;
    free(path);
    return map_open_db(m, err);
}

map_t *map_open_file(const char *path, int type, map_check_fn check, void *ctx, char **err)
{
    map_t *m;

    if (err)
        *err = NULL;
    if (path == NULL || (type != MAP_TYPE_HASH && type != MAP_TYPE_BTREE))
        msg_panic("map_open_file: bad arguments");
    m = xcalloc(1, sizeof(*m));
    m->spec = xasprintf("%s:%s", type == MAP_TYPE_HASH ? "hash" : "btree", path);
    m->dbpath = xstrdup(path);
    m->type = type == MAP_TYPE_HASH ? DB_HASH : DB_BTREE;
    m->check = check;
    m->check_ctx = ctx;
    return map_open_db(m, err);
}

void map_close(map_t **mp)
{
    map_t *m = *mp;

    if (m == NULL)
        return;
    if (m->db)
        m->db->close(m->db, 0);
    free(m->spec);
    free(m->dbpath);
    free(m);
    *mp = NULL;
}

const char *map_name(const map_t *m)
{
    return m->spec;
}

/* Reopen when FILE.db was replaced since we opened it. */
static int map_refresh(map_t *m)
{
    struct stat st, nst;
    DB *db;
    char *msg;

    if (stat(m->dbpath, &st) < 0) {
        int e = errno;

        msg_warn("map %s: cannot stat %s: %s", m->spec, m->dbpath, strerror(e));
        errno = e;
        return -1;
    }
    if (map_same_file(&st, &m->st))
        return 0;
    if (map_db_open(m->spec, m->dbpath, m->type, m->check, m->check_ctx, &db, &nst, &msg) < 0) {
        int e = errno;

        msg_warn("%s", msg);
        free(msg);
        errno = e;
        return -1;
    }
    m->db->close(m->db, 0);
    m->db = db;
    m->st = nst;
    msg_debug("map %s: %s changed, reopened", m->spec, m->dbpath);
    return 0;
}

static void map_fold(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

int map_lookup(map_t *m, const char *key, char **value)
{
    DBT k, v;
    char *folded;
    int ret;

    if (m == NULL || key == NULL || value == NULL)
        msg_panic("map_lookup: NULL argument");
    *value = NULL;
    if (map_refresh(m) < 0)
        return -1;
    folded = xstrdup(key);
    map_fold(folded);
    memset(&k, 0, sizeof(k));
    memset(&v, 0, sizeof(v));
    k.data = folded;
    k.size = (u_int32_t)strlen(folded) + 1;
    ret = m->db->get(m->db, NULL, &k, &v, 0);
    free(folded);
    if (ret == DB_NOTFOUND)
        return 0;
    if (ret != 0) {
        msg_warn("map %s: lookup of '%s' in %s failed: %s",
                 m->spec, key, m->dbpath, db_strerror(ret));
        errno = map_errno(ret);
        return -1;
    }
    /* The stored value ends in a NUL; tolerate tables built without it. */
    *value = xmalloc((size_t)v.size + 1);
    memcpy(*value, v.data, v.size);
    (*value)[v.size] = '\0';
    return 1;
}

int map_foreach(map_t *m, int (*fn)(void *ctx, const char *key, const char *value), void *ctx)
{
    DBC *cur;
    DBT k, v;
    int ret, rc = 0;

    if (m == NULL || fn == NULL)
        msg_panic("map_foreach: NULL argument");
    if (map_refresh(m) < 0)
        return -1;
    if ((ret = m->db->cursor(m->db, NULL, &cur, 0)) != 0) {
        msg_warn("map %s: cannot read %s: %s", m->spec, m->dbpath, db_strerror(ret));
        errno = map_errno(ret);
        return -1;
    }
    for (;;) {
        char *key, *value;

        memset(&k, 0, sizeof(k));
        memset(&v, 0, sizeof(v));
        if ((ret = cur->get(cur, &k, &v, DB_NEXT)) != 0)
            break;
        /* Keys and values end in a NUL; tolerate tables built without. */
        key = xmalloc((size_t)k.size + 1);
        memcpy(key, k.data, k.size);
        key[k.size] = '\0';
        value = xmalloc((size_t)v.size + 1);
        memcpy(value, v.data, v.size);
        value[v.size] = '\0';
        rc = fn(ctx, key, value);
        free(key);
        free(value);
        if (rc != 0)
            break;
    }
    cur->close(cur);
    if (rc == 0 && ret != DB_NOTFOUND) {
        msg_warn("map %s: cannot read %s: %s", m->spec, m->dbpath, db_strerror(ret));
        errno = map_errno(ret);
        return -1;
    }
    return rc;
}

/* State of one map_build() run. */
struct map_builder {
    const char *source;
    const char *tmp;
    int     format;
    DB     *db;
    buf_t  *errs;
    int     nerr;
    long    count;
    int     broken;             /* the table itself failed: stop */
};

__attribute__((format(printf, 3, 4)))
static void map_build_error(struct map_builder *mb, long lineno, const char *fmt, ...)
{
    va_list ap;
    buf_t *line;

    mb->nerr++;
    if (mb->errs == NULL || mb->nerr > MAP_MAX_ERRORS + 1)
        return;
    line = buf_new(0);
    if (mb->nerr == MAP_MAX_ERRORS + 1) {
        buf_printf(line, "%s: too many errors, giving up on reporting\n", mb->source);
    } else {
        char *text;

        va_start(ap, fmt);
        if (vasprintf(&text, fmt, ap) < 0)
            msg_fatal("out of memory formatting a string");
        va_end(ap);
        if (lineno > 0)
            buf_printf(line, "%s:%ld: %s\n", mb->source, lineno, text);
        else
            buf_printf(line, "%s: %s\n", mb->source, text);
        free(text);
    }
    (void)buf_append(mb->errs, line->data, line->len);
    buf_free(&line);
}

static int map_is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Store one key/value pair; key is folded here. */
static void map_build_put(struct map_builder *mb, long lineno, char *key, const char *value)
{
    DBT k, v;
    int ret;

    map_fold(key);
    memset(&k, 0, sizeof(k));
    memset(&v, 0, sizeof(v));
    k.data = key;
    k.size = (u_int32_t)strlen(key) + 1;
    v.data = (void *)value;
    v.size = (u_int32_t)strlen(value) + 1;
    ret = mb->db->put(mb->db, NULL, &k, &v, DB_NOOVERWRITE);
    if (ret == 0) {
        mb->count++;
    } else if (ret == DB_KEYEXIST) {
        msg_warn("%s:%ld: duplicate entry '%s' ignored", mb->source, lineno, key);
    } else {
        map_build_error(mb, 0, "cannot write %s: %s", mb->tmp, db_strerror(ret));
        mb->broken = 1;
    }
}

/* One logical line: leading and trailing white space already removed. */
static void map_build_entry(struct map_builder *mb, long lineno, char *text)
{
    char *key, *value, *p;

    if (mb->format == MAP_FORMAT_POSTMAP) {
        for (p = text; *p && !map_is_space((unsigned char)*p); p++)
            ;
        if (*p == '\0') {
            map_build_error(mb, lineno, "missing value for '%.100s' "
                            "(expected format: key whitespace value)", text);
            return;
        }
        *p++ = '\0';
        while (map_is_space((unsigned char)*p))
            p++;
        map_build_put(mb, lineno, text, p);
        return;
    }

    /* Aliases: name: value, where name may be "quoted". */
    if (*text == '"') {
        char *w = text;

        for (p = text + 1; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1])
                p++;
            *w++ = *p;
        }
        if (*p != '"') {
            map_build_error(mb, lineno, "unterminated quoted name in '%.100s'", text);
            return;
        }
        *w = '\0';
        key = text;
        for (p++; map_is_space((unsigned char)*p); p++)
            ;
        if (*p != ':') {
            map_build_error(mb, lineno, "missing ':' after name \"%.100s\"", key);
            return;
        }
        if (*key == '\0') {
            map_build_error(mb, lineno, "empty name before ':'");
            return;
        }
    } else {
        char *end;

        if ((p = strchr(text, ':')) == NULL) {
            map_build_error(mb, lineno, "missing ':' in '%.100s' "
                            "(expected format: name: value)", text);
            return;
        }
        for (end = p; end > text && map_is_space((unsigned char)end[-1]); end--)
            ;
        *end = '\0';
        key = text;
        if (*key == '\0') {
            map_build_error(mb, lineno, "missing name before ':'");
            return;
        }
        for (char *q = key; *q; q++)
            if (map_is_space((unsigned char)*q)) {
                map_build_error(mb, lineno, "name '%.100s' contains white space "
                                "(quote it: \"name\")", key);
                return;
            }
    }
    value = p + 1;
    while (map_is_space((unsigned char)*value))
        value++;
    if (*value == '\0') {
        map_build_error(mb, lineno, "missing value for '%.100s'", key);
        return;
    }
    map_build_put(mb, lineno, key, value);
}

/* One logical line of the source. */
static int map_build_line(const struct cfgfile_entry *e, void *ctx)
{
    struct map_builder *mb = ctx;

    if (e->nul_line)
        map_build_error(mb, e->nul_line, "NUL byte in line");
    else if (e->orphan)
        map_build_error(mb, e->line, "continuation line without a preceding entry");
    else
        map_build_entry(mb, e->line, e->text);
    return mb->broken;
}

/* Read the source, joining continuation lines; feed map_build_entry(). */
static void map_build_read(struct map_builder *mb, FILE *fp)
{
    if (cfgfile_read(fp, map_build_line, mb) < 0)
        map_build_error(mb, 0, "read error: %s", strerror(errno));
}

/* 0, or -1 with errno kept (a failed directory fsync is only warned
 * about by map_build: the table itself is complete). */
static int map_fsync_dir(const char *path)
{
    int rc, e;
    char *dir = xstrdup(path), *slash = strrchr(dir, '/');

    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    rc = durable_fsync_dir(AT_FDCWD, dir);
    e = errno;
    if (rc < 0)
        msg_warn("cannot fsync directory %s: %s", dir, strerror(e));
    free(dir);
    errno = e;
    return rc;
}

int map_build(const char *spec, int format, buf_t *errs, long *count)
{
    struct map_builder mb;
    struct stat sst;
    char *path = NULL, *dbpath = NULL, *tmp = NULL, *msg = NULL;
    DBTYPE type;
    FILE *fp = NULL;
    int fd = -1, ret, result = -1;

    if (format != MAP_FORMAT_POSTMAP && format != MAP_FORMAT_ALIASES)
        msg_panic("map_build: unknown format %d", format);
    if (count)
        *count = 0;
    memset(&mb, 0, sizeof(mb));
    mb.errs = errs;
    mb.format = format;
    if (map_parse_spec(spec, &type, &path, &msg) < 0) {
        if (errs) {
            buf_append_str(errs, msg);
            buf_putc(errs, '\n');
        }
        free(msg);
        return -1;
    }
    mb.source = path;
    dbpath = xasprintf("%s.db", path);

    if ((fp = fopen(path, "re")) == NULL || fstat(fileno(fp), &sst) < 0) {
        map_build_error(&mb, 0, "cannot open: %s", strerror(errno));
        goto out;
    }
    tmp = xasprintf("%s.XXXXXX", dbpath);
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
        map_build_error(&mb, 0, "cannot create a temporary file %s: %s",
                        tmp, strerror(errno));
        free(tmp);
        tmp = NULL;
        goto out;
    }
    mb.tmp = tmp;
    if (fchmod(fd, sst.st_mode & 0666) < 0
        || (geteuid() == 0 && fchown(fd, sst.st_uid, sst.st_gid) < 0)) {
        map_build_error(&mb, 0, "cannot set the owner or mode of %s: %s",
                        tmp, strerror(errno));
        goto out;
    }
    if ((ret = db_create(&mb.db, NULL, 0)) != 0) {
        mb.db = NULL;
        map_build_error(&mb, 0, "cannot create a Berkeley DB handle: %s", db_strerror(ret));
        goto out;
    }
    mb.db->set_errcall(mb.db, map_errcall);
    mb.db->set_errpfx(mb.db, tmp);
    if ((ret = mb.db->open(mb.db, NULL, tmp, NULL, type, DB_CREATE | DB_TRUNCATE, 0600)) != 0) {
        map_build_error(&mb, 0, "cannot create %s: %s", tmp, db_strerror(ret));
        goto out;
    }

    map_build_read(&mb, fp);

    ret = mb.db->close(mb.db, 0);
    mb.db = NULL;
    if (ret != 0) {
        map_build_error(&mb, 0, "cannot write %s: %s", tmp, db_strerror(ret));
        goto out;
    }
    if (mb.nerr > 0)
        goto out;
    if (fsync(fd) < 0) {
        map_build_error(&mb, 0, "cannot fsync %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (rename(tmp, dbpath) < 0) {
        map_build_error(&mb, 0, "cannot rename %s to %s: %s", tmp, dbpath, strerror(errno));
        goto out;
    }
    free(tmp);
    tmp = NULL;
    (void)map_fsync_dir(dbpath);
    result = 0;

out:
    if (mb.db)
        mb.db->close(mb.db, 0);
    if (fd >= 0)
        close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    if (fp)
        fclose(fp);
    if (count)
        *count = mb.count;
    free(dbpath);
    free(path);
    return result;
}

static map_t **map_cache;
static size_t map_ncache;

map_t *map_cached(const char *spec, char **err)
{
    map_t *m;

    for (size_t i = 0; i < map_ncache; i++)
        if (strcmp(map_name(map_cache[i]), spec) == 0)
            return map_cache[i];
    if ((m = map_open(spec, err)) == NULL)
        return NULL;
    map_cache = xreallocarray(map_cache, map_ncache + 1, sizeof(*map_cache));
    map_cache[map_ncache++] = m;
    return m;
}

int map_write(const char *path, int type, const char *const *keys, const char *const *values,
              size_t n, mode_t mode, uid_t uid, gid_t gid, char **err)
{
    char *tmp = xasprintf("%s.XXXXXX", path);
    DB *db = NULL;
    int fd, ret, e = 0;

    *err = NULL;
    if (type != MAP_TYPE_HASH && type != MAP_TYPE_BTREE)
        msg_panic("map_write: unknown type %d", type);
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
        e = errno;
        *err = xasprintf("cannot create a temporary file %s: %s", tmp, strerror(e));
        free(tmp);
        errno = e;
        return -1;
    }
    if (fchmod(fd, mode) < 0 || ((uid != (uid_t)-1 || gid != (gid_t)-1)
                                 && fchown(fd, uid, gid) < 0)) {
        e = errno;
        *err = xasprintf("cannot set the owner or mode of %s: %s", tmp, strerror(e));
        goto fail;
    }
    if ((ret = db_create(&db, NULL, 0)) != 0) {
        db = NULL;
        e = map_errno(ret);
        *err = xasprintf("cannot create a Berkeley DB handle: %s", db_strerror(ret));
        goto fail;
    }
    db->set_errcall(db, map_errcall);
    db->set_errpfx(db, tmp);
    if ((ret = db->open(db, NULL, tmp, NULL, type == MAP_TYPE_HASH ? DB_HASH : DB_BTREE,
                        DB_CREATE | DB_TRUNCATE, 0600)) != 0) {
        e = map_errno(ret);
        *err = xasprintf("cannot create %s: %s", tmp, db_strerror(ret));
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        char *key = xstrdup(keys[i]);
        DBT k, v;

        map_fold(key);
        memset(&k, 0, sizeof(k));
        memset(&v, 0, sizeof(v));
        k.data = key;
        k.size = (u_int32_t)strlen(key) + 1;
        v.data = (void *)values[i];
        v.size = (u_int32_t)strlen(values[i]) + 1;
        ret = db->put(db, NULL, &k, &v, DB_NOOVERWRITE);
        if (ret != 0) {
            e = ret == DB_KEYEXIST ? EEXIST : map_errno(ret);
            *err = ret == DB_KEYEXIST ? xasprintf("duplicate key '%s'", key)
                                      : xasprintf("cannot write %s: %s", tmp, db_strerror(ret));
            free(key);
            goto fail;
        }
        free(key);
    }
    ret = db->close(db, 0);
    db = NULL;
    if (ret != 0) {
        e = map_errno(ret);
        *err = xasprintf("cannot write %s: %s", tmp, db_strerror(ret));
        goto fail;
    }
    if (fsync(fd) < 0) {
        e = errno;
        *err = xasprintf("cannot fsync %s: %s", tmp, strerror(e));
        goto fail;
    }
    if (rename(tmp, path) < 0) {
        e = errno;
        *err = xasprintf("cannot rename %s to %s: %s", tmp, path, strerror(e));
        goto fail;
    }
    close(fd);
    free(tmp);
    if (map_fsync_dir(path) < 0) {
        e = errno;
        *err = xasprintf("cannot fsync the directory of %s: %s", path, strerror(e));
        errno = e;
        return -1;
    }
    return 0;

fail:
    if (db)
        db->close(db, 0);
    close(fd);
    unlink(tmp);
    free(tmp);
    errno = e;
    return -1;
}
