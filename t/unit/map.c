/*
 * t/unit/map.c - unit tests for lib/map.c (Berkeley DB lookup tables).
 *
 * Covers: map spec parsing, aliases and postmap source formats (comments,
 * continuation lines, quoting, duplicates), the stored key/value layout
 * (lower-cased keys, trailing NULs) checked with raw Berkeley DB calls,
 * error reports "FILE:LINE: ..." that leave the old table in place, no
 * temporary files left behind, the reopen-on-rebuild behaviour of readers,
 * hash and btree, modes and owners, and that Berkeley DB never writes to
 * stderr itself.  Everything happens in a mkdtemp directory that is removed
 * at the end.
 */
#include <db.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "buf.h"
#include "map.h"
#include "msg.h"
#include "xalloc.h"
#include "../lib/tap.h"
#include "../lib/testlib.h"

static char dir[PATH_MAX];
static char logpath[PATH_MAX + 16];

static char *path_in(const char *name)
{
    return xasprintf("%s/%s", dir, name);
}

static void write_file(const char *name, const char *text, size_t len)
{
    char *p = path_in(name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    if (fd < 0 || write(fd, text, len) != (ssize_t)len)
        diag("cannot write %s: %s", p, strerror(errno));
    if (fd >= 0)
        close(fd);
    free(p);
}

static void write_str(const char *name, const char *text)
{
    write_file(name, text, strlen(text));
}

/* Empty the warning log; return what it held (caller frees). */
static char *take_log(void)
{
    return take_file(logpath);
}

static char *spec_of(const char *type, const char *name)
{
    return xasprintf("%s:%s/%s", type, dir, name);
}

/* Look key up; return the value, "(not found)" or "(error)" (caller frees). */
static char *lookup(map_t *m, const char *key)
{
    char *v = NULL;
    int r = map_lookup(m, key, &v);

    if (r == 1)
        return v;
    return xstrdup(r == 0 ? "(not found)" : "(error)");
}

static void is_lookup(map_t *m, const char *key, const char *want, const char *name)
{
    char *v = lookup(m, key);

    is_str(v, want, "%s", name);
    free(v);
}

/* Files in dir whose names contain ".db." (leftover temporary tables). */
static int count_temp_files(void)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    while (d && (de = readdir(d)) != NULL)
        if (strstr(de->d_name, ".db.") != NULL) {
            diag("leftover temporary file %s", de->d_name);
            n++;
        }
    if (d)
        closedir(d);
    return n;
}

static ino_t inode_of(const char *name)
{
    char *p = path_in(name);
    struct stat st;
    ino_t ino = 0;

    if (stat(p, &st) == 0)
        ino = st.st_ino;
    free(p);
    return ino;
}

/* Raw Berkeley DB access: the stored layout is part of the contract. */
static int raw_get(const char *name, DBTYPE type, const void *key, size_t klen,
                   char *val, size_t vsize, size_t *vlen)
{
    char *p = path_in(name);
    DB *db;
    DBT k, v;
    int ret;

    if (db_create(&db, NULL, 0) != 0) {
        free(p);
        return -1;
    }
    if ((ret = db->open(db, NULL, p, NULL, type, DB_RDONLY, 0)) == 0) {
        memset(&k, 0, sizeof(k));
        memset(&v, 0, sizeof(v));
        k.data = (void *)key;
        k.size = (u_int32_t)klen;
        ret = db->get(db, NULL, &k, &v, 0);
        if (ret == 0) {
            *vlen = v.size;
            memcpy(val, v.data, v.size < vsize ? v.size : vsize);
        }
    }
    db->close(db, 0);
    free(p);
    return ret;
}

static void test_specs(void)
{
    char *err = NULL, *spec;
    map_t *m;
    buf_t *errs = buf_new(0);

    m = map_open("cdb:/etc/aliases", &err);
    ok(m == NULL, "unknown map type: map_open fails");
    is_str(err, "unsupported map type 'cdb' in 'cdb:/etc/aliases'", "unknown type message");
    free(err);

    m = map_open("/etc/aliases", &err);
    ok(m == NULL, "spec without ':' fails");
    like(err, "unsupported map type '' in '/etc/aliases'", "no-colon message");
    free(err);

    m = map_open("hash:", &err);
    ok(m == NULL, "spec without a file fails");
    like(err, "missing file name in map 'hash:'", "missing file message");
    free(err);

    m = map_open("hashx:/x", NULL);
    ok(m == NULL, "err may be NULL");

    is_int(map_build("dbm:/x/aliases", MAP_FORMAT_ALIASES, errs, NULL), -1,
           "map_build of an unsupported type fails");
    is_str(buf_cstr(errs), "unsupported map type 'dbm' in 'dbm:/x/aliases'\n",
           "map_build reports the spec error in errs");

    spec = spec_of("hash", "missing");
    m = map_open(spec, &err);
    ok(m == NULL, "missing .db: map_open fails");
    {
        char *want = xasprintf("%s/missing.db: No such file or directory", dir);

        like(err, want, "missing .db: the message names the file");
        free(want);
    }
    free(err);
    free(spec);
    buf_free(&errs);
}

static const char aliases_src[] =
    "# Posthorn aliases\n"
    "\n"
    "postmaster: root\n"
    "Root: Alice, bob\n"
    "list: \"|/usr/bin/prog arg\", /var/mail/x,\n"
    "   carol@example.com,\n"
    "# a comment inside a continued entry\n"
    "\tdave  \n"
    "    # an indented comment\n"
    "\"quoted name\": eve\n"
    "spaced  :   value with  inner  spaces   \r\n"
    "MiXeD: \"Some Body\" <some@example.com>\n";

static void test_aliases(void)
{
    char *spec = spec_of("hash", "aliases"), *err = NULL, *log;
    buf_t *errs = buf_new(0);
    long count = -1;
    map_t *m;
    char val[256];
    size_t vlen = 0;

    write_str("aliases", aliases_src);
    is_int(map_build(spec, MAP_FORMAT_ALIASES, errs, &count), 0, "aliases: map_build succeeds");
    is_str(buf_cstr(errs), "", "aliases: no errors");
    is_int(count, 6, "aliases: 6 entries");
    is_int(count_temp_files(), 0, "aliases: no temporary file left");

    m = map_open(spec, &err);
    ok(m != NULL, "aliases: map_open succeeds");
    if (m == NULL) {
        diag("%s", err);
        free(err);
        free(spec);
        buf_free(&errs);
        return;
    }
    is_str(map_name(m), spec, "map_name is the spec");
    is_lookup(m, "postmaster", "root", "postmaster -> root");
    is_lookup(m, "PostMaster", "root", "lookups fold the key's case");
    is_lookup(m, "root", "Alice, bob", "key stored lower-cased, value verbatim");
    is_lookup(m, "list", "\"|/usr/bin/prog arg\", /var/mail/x, carol@example.com, dave",
              "continuation lines joined with one space, comments skipped");
    is_lookup(m, "quoted name", "eve", "quoted name");
    is_lookup(m, "spaced", "value with  inner  spaces", "value trimmed, inner spaces kept");
    is_lookup(m, "mixed", "\"Some Body\" <some@example.com>", "quotes kept verbatim");
    is_lookup(m, "nobody-here", "(not found)", "unknown key: not found");
    is_lookup(m, "", "(not found)", "empty key: not found");
    {
        char *v = (char *)"sentinel";

        is_int(map_lookup(m, "nobody-here", &v), 0, "map_lookup returns 0 when absent");
        ok(v == NULL, "and sets *value to NULL");
    }
    map_close(&m);
    ok(m == NULL, "map_close NULLs the pointer");
    map_close(&m);

    is_int(raw_get("aliases.db", DB_HASH, "postmaster", 11, val, sizeof(val), &vlen), 0,
           "raw: key stored with a trailing NUL");
    is_int(vlen, 5, "raw: value stored with a trailing NUL");
    ok(vlen == 5 && memcmp(val, "root", 5) == 0, "raw: value bytes");
    is_int(raw_get("aliases.db", DB_HASH, "postmaster", 10, val, sizeof(val), &vlen),
           DB_NOTFOUND, "raw: no key without the NUL");
    is_int(raw_get("aliases.db", DB_HASH, "Root", 5, val, sizeof(val), &vlen),
           DB_NOTFOUND, "raw: no mixed-case key");

    log = take_log();
    is_str(log, "", "aliases: no warnings");
    free(log);
    free(spec);
    buf_free(&errs);
}

static void test_duplicates(void)
{
    char *spec = spec_of("hash", "dup"), *log, *want;
    buf_t *errs = buf_new(0);
    long count = 0;
    map_t *m;

    write_str("dup", "a: first\nb: bee\nA: second\n");
    is_int(map_build(spec, MAP_FORMAT_ALIASES, errs, &count), 0,
           "duplicate: still builds");
    is_str(buf_cstr(errs), "", "duplicate: not counted as an error");
    is_int(count, 2, "duplicate: 2 entries");
    log = take_log();
    want = xasprintf("%s/dup:3: duplicate entry 'a' ignored", dir);
    like(log, want, "duplicate: warned with FILE:LINE");
    like(log, "warning: ", "duplicate: as a warning");
    free(want);
    free(log);
    if ((m = map_open(spec, NULL)) != NULL) {
        is_lookup(m, "a", "first", "duplicate: the first value is kept");
        map_close(&m);
    } else {
        ok(0, "duplicate: map_open");
    }
    free(spec);
    buf_free(&errs);
}

static void test_errors(void)
{
    char *spec = spec_of("hash", "errs"), *want;
    buf_t *errs = buf_new(0);
    map_t *m;
    ino_t before;
    long count;

    write_str("errs", "good: old\n");
    is_int(map_build(spec, MAP_FORMAT_ALIASES, errs, NULL), 0, "errors: first build");
    before = inode_of("errs.db");
    m = map_open(spec, NULL);
    ok(m != NULL, "errors: reader opened");

    write_str("errs",
              "good: new\n"
              "no colon here\n"
              "empty:\n"
              ": nothing\n"
              "two words: x\n"
              "\"unterminated: x\n");
    is_int(map_build(spec, MAP_FORMAT_ALIASES, errs, &count), -1, "errors: map_build fails");
    want = xasprintf("%s/errs:2: missing ':'", dir);
    like(buf_cstr(errs), want, "errors: missing ':' reported as FILE:LINE");
    free(want);
    want = xasprintf("%s/errs:3: missing value for 'empty'", dir);
    like(buf_cstr(errs), want, "errors: empty value reported");
    free(want);
    want = xasprintf("%s/errs:4: missing name before ':'", dir);
    like(buf_cstr(errs), want, "errors: empty name reported");
    free(want);
    want = xasprintf("%s/errs:5: name 'two words' contains white space", dir);
    like(buf_cstr(errs), want, "errors: unquoted name with white space reported");
    free(want);
    want = xasprintf("%s/errs:6: unterminated quoted name", dir);
    like(buf_cstr(errs), want, "errors: unterminated quote reported");
    free(want);
    {
        int lines = 0;

        for (const char *p = buf_cstr(errs); *p; p++)
            lines += *p == '\n';
        is_int(lines, 5, "errors: one line per problem");
    }
    is_int(inode_of("errs.db"), before, "errors: the old .db was not replaced");
    is_int(count_temp_files(), 0, "errors: no temporary file left");
    if (m) {
        is_lookup(m, "good", "old", "errors: readers still see the old table");
        map_close(&m);
    }

    /* Postmap format errors. */
    buf_reset(errs);
    write_str("errs", "key value\nlonely\n\n  \n");
    is_int(map_build(spec, MAP_FORMAT_POSTMAP, errs, NULL), -1, "postmap: missing value fails");
    want = xasprintf("%s/errs:2: missing value for 'lonely'", dir);
    like(buf_cstr(errs), want, "postmap: missing value reported as FILE:LINE");
    free(want);

    buf_reset(errs);
    write_str("errs", "   leading: x\nok: y\n");
    is_int(map_build(spec, MAP_FORMAT_ALIASES, errs, NULL), -1,
           "continuation without an entry fails");
    want = xasprintf("%s/errs:1: continuation line without a preceding entry", dir);
    like(buf_cstr(errs), want, "continuation without an entry reported");
    free(want);

    buf_reset(errs);
    write_file("errs", "a: b\nc: d\0e\n", 12);
    is_int(map_build(spec, MAP_FORMAT_ALIASES, errs, NULL), -1, "NUL byte in source fails");
    want = xasprintf("%s/errs:2: NUL byte in line", dir);
    like(buf_cstr(errs), want, "NUL byte reported");
    free(want);

    buf_reset(errs);
    {
        buf_t *big = buf_new(0);

        for (int i = 0; i < 300; i++)
            buf_printf(big, "bad line %d\n", i);
        write_str("errs", buf_cstr(big));
        buf_free(&big);
    }
    is_int(map_build(spec, MAP_FORMAT_ALIASES, errs, NULL), -1, "many errors: fails");
    like(buf_cstr(errs), "too many errors", "many errors: the report is capped");
    ok(errs->len < 20000, "many errors: report stays small (%zu bytes)", errs->len);
    is_int(inode_of("errs.db"), before, "after all failures the .db is the original");

    buf_reset(errs);
    free(spec);
    spec = spec_of("hash", "no-source");
    is_int(map_build(spec, MAP_FORMAT_ALIASES, errs, NULL), -1, "missing source fails");
    want = xasprintf("%s/no-source: cannot open: No such file or directory", dir);
    like(buf_cstr(errs), want, "missing source reported");
    free(want);
    ok(inode_of("no-source.db") == 0, "missing source: no .db created");

    is_int(count_temp_files(), 0, "no temporary file left after failures");
    free(take_log());
    free(spec);
    buf_free(&errs);
}

static void test_postmap(void)
{
    char *spec = spec_of("hash", "virtual");
    buf_t *errs = buf_new(0);
    long count = 0;
    map_t *m;

    write_str("virtual",
              "# virtual\n"
              "Info@Example.COM   alice\n"
              "sales@example.com\tbob,  carol  \n"
              "   dave\n"
              "@example.org catchall@example.com\n");
    is_int(map_build(spec, MAP_FORMAT_POSTMAP, errs, &count), 0, "postmap: builds");
    is_str(buf_cstr(errs), "", "postmap: no errors");
    is_int(count, 3, "postmap: 3 entries");
    if ((m = map_open(spec, NULL)) == NULL) {
        ok(0, "postmap: map_open");
    } else {
        is_lookup(m, "info@example.com", "alice", "postmap: key folded");
        is_lookup(m, "SALES@example.com", "bob,  carol dave", "postmap: value + continuation");
        is_lookup(m, "@example.org", "catchall@example.com", "postmap: @domain key");
        map_close(&m);
    }
    free(spec);
    buf_free(&errs);
}

static void test_reopen(void)
{
    char *spec = spec_of("hash", "live"), *dbp = path_in("live.db");
    buf_t *errs = buf_new(0);
    map_t *m;
    ino_t first;

    write_str("live", "user: one\n");
    map_build(spec, MAP_FORMAT_ALIASES, errs, NULL);
    first = inode_of("live.db");
    if ((m = map_open(spec, NULL)) == NULL) {
        ok(0, "reopen: map_open");
        goto out;
    }
    is_lookup(m, "user", "one", "reopen: first version");

    /* Same size, same second: only the inode tells the versions apart. */
    write_str("live", "user: two\n");
    is_int(map_build(spec, MAP_FORMAT_ALIASES, errs, NULL), 0, "reopen: rebuilt");
    ok(inode_of("live.db") != first, "reopen: the rebuild is a new file (rename)");
    is_lookup(m, "user", "two", "reopen: the reader sees the new version");

    write_str("live", "user: three\nother: x\n");
    map_build(spec, MAP_FORMAT_ALIASES, errs, NULL);
    is_lookup(m, "other", "x", "reopen: and the next one");

    /* The table disappears: an error, not stale data; back when rebuilt. */
    unlink(dbp);
    {
        char *v = NULL;

        errno = 0;
        is_int(map_lookup(m, "user", &v), -1, "removed .db: lookup fails");
        is_int(errno, ENOENT, "removed .db: errno ENOENT");
        ok(v == NULL, "removed .db: no value");
    }
    map_build(spec, MAP_FORMAT_ALIASES, errs, NULL);
    is_lookup(m, "user", "three", "rebuilt .db: lookups work again");

    /* A broken replacement: error, then recovery. */
    {
        char *junk = path_in("junk");
        int fd = open(junk, O_WRONLY | O_CREAT | O_TRUNC, 0644);

        if (fd >= 0) {
            if (write(fd, "this is not a database, just text\n", 34) != 34)
                diag("short write");
            close(fd);
        }
        rename(junk, dbp);
        free(junk);
    }
    {
        char *v = NULL;

        is_int(map_lookup(m, "user", &v), -1, "garbage .db: lookup fails");
        free(v);
    }
    map_build(spec, MAP_FORMAT_ALIASES, errs, NULL);
    is_lookup(m, "user", "three", "garbage .db replaced: lookups work again");
    is_str(buf_cstr(errs), "", "reopen: all builds were clean");
    map_close(&m);
out:
    free(take_log());
    free(dbp);
    free(spec);
    buf_free(&errs);
}

static void test_btree(void)
{
    char *spec = spec_of("btree", "bt"), *hspec = spec_of("hash", "bt"), *err = NULL;
    buf_t *errs = buf_new(0);
    map_t *m;
    char val[64];
    size_t vlen = 0;

    write_str("bt", "zeta z\nalpha a\nMid m\n");
    is_int(map_build(spec, MAP_FORMAT_POSTMAP, errs, NULL), 0, "btree: builds");
    if ((m = map_open(spec, &err)) == NULL) {
        ok(0, "btree: map_open: %s", err);
        free(err);
    } else {
        is_lookup(m, "mid", "m", "btree: lookup");
        is_lookup(m, "ALPHA", "a", "btree: folded lookup");
        map_close(&m);
    }
    is_int(raw_get("bt.db", DB_BTREE, "zeta", 5, val, sizeof(val), &vlen), 0,
           "btree: the file is a DB_BTREE");
    m = map_open(hspec, &err);
    ok(m == NULL, "hash: on a btree file fails");
    like(err, "bt.db", "and names the file");
    free(err);
    map_close(&m);
    free(take_log());
    free(spec);
    free(hspec);
    buf_free(&errs);
}

/* Berkeley DB must never write to stderr by itself. */
static void test_no_stderr(void)
{
    char *spec = spec_of("hash", "garbage"), *cap = path_in("stderr.txt"), *text, *err = NULL;
    int saved = dup(STDERR_FILENO), fd;
    map_t *m;
    int bad = 0, lines = 0;

    write_str("garbage.db", "definitely not a Berkeley DB file, but long enough to look at\n");
    fd = open(cap, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    msg_init("map-test", MSG_STDERR);
    dup2(fd, STDERR_FILENO);
    m = map_open(spec, &err);
    dup2(saved, STDERR_FILENO);
    msg_init("map-test", 0);
    close(saved);
    close(fd);
    ok(m == NULL, "garbage .db: map_open fails");
    like(err, "garbage.db", "garbage .db: the message names the file");
    text = slurp(cap);
    for (char *p = text; *p; ) {
        char *nl = strchr(p, '\n');

        lines++;
        if (strncmp(p, "posthorn/map-test: ", 19) != 0) {
            diag("stray stderr line: %.*s", nl ? (int)(nl - p) : (int)strlen(p), p);
            bad++;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    is_int(bad, 0, "everything on stderr went through msg (%d lines)", lines);
    unlink(cap);
    free(text);
    free(err);
    map_close(&m);
    free(take_log());
    free(cap);
    free(spec);
}

static void test_modes(void)
{
    char *spec = spec_of("hash", "secret"), *src = path_in("secret"), *db = path_in("secret.db");
    buf_t *errs = buf_new(0);
    struct stat st;

    write_str("secret", "user: password-ish\n");
    chmod(src, 0640);
    if (geteuid() == 0 && chown(src, 65534, 65534) < 0)
        diag("chown: %s", strerror(errno));
    is_int(map_build(spec, MAP_FORMAT_POSTMAP, errs, NULL), 0, "modes: builds");
    if (stat(db, &st) < 0)
        memset(&st, 0, sizeof(st));
    ok((st.st_mode & 07777) == 0640,
       "modes: the .db has the source's mode 0640 (got %o)", (unsigned)(st.st_mode & 07777));
    if (geteuid() == 0)
        ok(st.st_uid == 65534 && st.st_gid == 65534,
           "modes: root build gives the .db the source's owner");
    else
        ok(1, "# skip needs root");
    free(spec);
    free(src);
    free(db);
    buf_free(&errs);
}

static void test_large_and_empty(void)
{
    char *spec = spec_of("hash", "large");
    buf_t *src = buf_new(0), *errs = buf_new(0);
    long count = 0;
    map_t *m;
    int bad = 0;

    for (int i = 0; i < 5000; i++)
        buf_printf(src, "User%d@Example.com value-%d-%0*d\n", i, i, i % 300, 0);
    write_str("large", buf_cstr(src));
    is_int(map_build(spec, MAP_FORMAT_POSTMAP, errs, &count), 0, "large: builds");
    is_int(count, 5000, "large: 5000 entries");
    if ((m = map_open(spec, NULL)) != NULL) {
        for (int i = 0; i < 5000; i += 7) {
            char key[64], *want, *got;

            snprintf(key, sizeof(key), "user%d@example.com", i);
            want = xasprintf("value-%d-%0*d", i, i % 300, 0);
            got = lookup(m, key);
            bad += strcmp(want, got) != 0;
            free(want);
            free(got);
        }
        is_int(bad, 0, "large: sampled lookups");
        map_close(&m);
    } else {
        ok(0, "large: map_open");
    }
    free(spec);

    spec = spec_of("hash", "empty");
    write_str("empty", "# nothing yet\n\n");
    is_int(map_build(spec, MAP_FORMAT_ALIASES, errs, &count), 0, "empty source builds");
    is_int(count, 0, "empty source: 0 entries");
    if ((m = map_open(spec, NULL)) != NULL) {
        is_lookup(m, "anything", "(not found)", "empty map: nothing found");
        map_close(&m);
    } else {
        ok(0, "empty map: map_open");
    }
    free(spec);
    buf_free(&src);
    buf_free(&errs);
}

static void cleanup_dir(void)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    while (d && (de = readdir(d)) != NULL) {
        char *p;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        p = path_in(de->d_name);
        if (unlink(p) < 0)
            diag("cannot remove %s: %s", p, strerror(errno));
        free(p);
    }
    if (d)
        closedir(d);
    if (rmdir(dir) < 0)
        diag("cannot remove %s: %s", dir, strerror(errno));
}

int main(void)
{
    char tmpl[] = "/tmp/posthorn-map.XXXXXX";

    alarm(120);
    msg_init("map-test", 0);
    if (mkdtemp(tmpl) == NULL) {
        ok(0, "mkdtemp: %s", strerror(errno));
        return done_testing();
    }
    snprintf(dir, sizeof(dir), "%s", tmpl);
    snprintf(logpath, sizeof(logpath), "%s/log", dir);
    if (msg_logfile(logpath) < 0)
        diag("cannot open %s", logpath);

    test_specs();
    test_aliases();
    test_duplicates();
    test_errors();
    test_postmap();
    test_reopen();
    test_btree();
    test_no_stderr();
    test_modes();
    test_large_and_empty();

    msg_logfile(NULL);
    cleanup_dir();
    return done_testing();
}
