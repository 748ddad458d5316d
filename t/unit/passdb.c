/*
 * t/unit/passdb.c - unit tests for lib/passdb.c (the mail password store)
 * and the lib/map functions it stands on (map_open_file, map_write).
 *
 * Covers: which user names the store can hold; passdb_make's record and
 * its round trip through passdb_parse / passdb_format; the parser refusing
 * every kind of damage (each proper prefix and each one-byte deletion of a
 * good record, and a list of hand-made defects); passdb_verify_plain with
 * the right and wrong passwords; the SCRAM credentials equal to
 * scram_sha256_keys' for the stored salt and iterations; passwords and
 * iteration counts passdb_make refuses; the file operations (put new and
 * replace, lookup, list, delete, their refusals, a reader noticing the
 * replaced file, mode 0640, nothing left behind); and the trust checks
 * (group- and world-writable, readable by others, a symbolic link, a
 * second hard link, another owner when run as root, an untrusted
 * directory).  Works in a mkdtemp directory under /tmp, removed at the end.
 */
#include <errno.h>
#include <stdio.h>
#include <crypt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "passdb.h"
#include "scram.h"
#include "xalloc.h"
#include "../lib/tap.h"
#include "../lib/testlib.h"

static char *dir;

#define S(x) ((x) ? (x) : "(null)")
/* ok() whose message shows what cond set: cond is evaluated first. */
#define OKE(cond, ...) do { int oke_ = !!(cond); ok(oke_, __VA_ARGS__); } while (0)

static char *path(const char *name)
{
    return xasprintf("%s/%s", dir, name);
}

static void test_names(void)
{
    static const char *good[] = {"alice", "a", "bob.smith", "x_y-z", "_svc", "host$", "u1000",
                                 "abcdefghijklmnopqrstuvwxyz012345"};
    static const char *bad[] = {"", "Alice", "ALICE", "al ice", "al:ice", "-alice", ".alice",
                                "ali$ce", "$", "al\tice", "\xc3\xa9lise", "al/ice",
                                "abcdefghijklmnopqrstuvwxyz0123456"};
    const char *why;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ok(passdb_name_ok(good[i], &why), "name '%s' can be stored", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        ok(!passdb_name_ok(bad[i], &why) && why != NULL, "name '%s' is refused (%s)", bad[i],
           why ? why : "?");
    }
}

/* A record must be refused by the parser and by its users. */
static int refused(const char *text)
{
    struct passdb_record rec;
    struct scram_credentials c;
    const char *why = NULL;

    return passdb_parse(text, &rec, &why) == -1 && why != NULL && errno == EINVAL
           && passdb_scram(text, &c) == -1;
}

static void test_records(void)
{
    struct passdb_record rec;
    struct scram_credentials c;
    unsigned char sk[32], vk[32];
    const char *why = NULL;
    char *text = NULL, *again, *damaged, *text2;
    size_t len;
    int all;

    ok(passdb_make("correct horse", 4096, &text, &why) == 0 && text != NULL,
       "passdb_make makes a record");
    if (text == NULL)
        return;
    like(text, "1 $y$", "it is version 1 with a yescrypt hash");
    ok(passdb_parse(text, &rec, &why) == 0, "the record parses");
    is_int(rec.scram.iterations, 4096, "with the iterations asked for");
    is_int(rec.scram.saltlen, SCRAM_SALT_LEN, "and a 16-octet SCRAM salt");
    again = passdb_format(&rec);
    is_str(again, text, "format(parse(record)) gives the record back");
    free(again);

    is_int(passdb_verify_plain(text, "correct horse"), 1, "the right password verifies");
    is_int(passdb_verify_plain(text, "correct horsf"), 0, "a wrong password does not");
    is_int(passdb_verify_plain(text, "correct hors"), 0, "nor a prefix of it");
    is_int(passdb_verify_plain(text, ""), 0, "nor the empty password");
    is_int(passdb_verify_plain("1 x", "correct horse"), -1, "a malformed record is -1");

    ok(passdb_scram(text, &c) == 0, "passdb_scram gives the credentials");
    ok(scram_sha256_keys("correct horse", c.salt, c.saltlen, c.iterations, sk, vk) == 0,
       "scram_sha256_keys on the stored salt and iterations");
    ok(memcmp(sk, c.stored_key, 32) == 0, "StoredKey is scram_sha256_keys' StoredKey");
    ok(memcmp(vk, c.server_key, 32) == 0, "ServerKey is scram_sha256_keys' ServerKey");
    ok(scram_sha256_keys("correct horsf", c.salt, c.saltlen, c.iterations, sk, vk) == 0
       && memcmp(sk, c.stored_key, 32) != 0, "another password gives another StoredKey");

    ok(passdb_make("correct horse", 4096, &text2, &why) == 0 && strcmp(text, text2) != 0,
       "the same password again gets other salts");
    ok(passdb_make("p\xc3\xa4ss", 5000, &again, &why) == 0, "a UTF-8 password, 5000 iterations");
    ok(passdb_scram(again, &c) == 0 && c.iterations == 5000, "stored as 5000");
    is_int(passdb_verify_plain(again, "p\xc3\xa4ss"), 1, "and it verifies");
    free(again);
    /* RFC 4616 2: stored and presented passwords are both SASLprep'd. */
    ok(passdb_make("two\xc2\xa0words", 4096, &again, &why) == 0,
       "a password with a no-break space");
    is_int(passdb_verify_plain(again, "two words"), 1, "  verifies typed with a plain space");
    is_int(passdb_verify_plain(again, "two\xc2\xa0words"), 1, "  and as set");
    is_int(passdb_verify_plain(again, "twowords"), 0, "  not without the space");
    free(again);
    {
        /* A record made before passwords were prepared: the hash of the
         * password as typed still verifies. */
        struct passdb_record old;
        char *setting = crypt_gensalt_ra("$y$", 0, NULL, 0);
        const char *h;

        ok(passdb_make("x", 4096, &again, &why) == 0 && passdb_parse(again, &old, &why) == 0,
           "a record to age");
        h = crypt(" \xe2\x80\x83spaced", setting);
        strcpy(old.hash, h);
        free(again);
        again = passdb_format(&old);
        is_int(passdb_verify_plain(again, " \xe2\x80\x83spaced"), 1,
               "an old record's hash of the raw password still verifies");
        is_int(passdb_verify_plain(again, "  spaced"), 0, "  only as typed");
        free(again);
        free(setting);
    }
    free(text2);

    /* What passdb_make refuses. */
    {
        char *big = xmalloc(PASSDB_PASSWORD_MAX + 2);

        memset(big, 'a', PASSDB_PASSWORD_MAX + 1);
        big[PASSDB_PASSWORD_MAX + 1] = '\0';
        text2 = (char *)1;
        ok(passdb_make("", 4096, &text2, &why) == -1 && text2 == NULL, "empty password refused");
        ok(passdb_make(big, 4096, &text2, &why) == -1, "512-byte password refused (%s)", why);
        big[PASSDB_PASSWORD_MAX] = '\0';
        ok(passdb_make(big, 4096, &text2, &why) == 0, "511-byte password accepted");
        is_int(passdb_verify_plain(text2, big), 1, "and verifies");
        big[0] = 'b';
        is_int(passdb_verify_plain(text2, big), 0, "unlike one that differs in its first byte");
        big[0] = 'a';
        big[PASSDB_PASSWORD_MAX - 1] = 'b';
        is_int(passdb_verify_plain(text2, big), 0, "or in its last");
        free(text2);
        free(big);
        ok(passdb_make("a\x01z", 4096, &text2, &why) == -1, "control character refused (%s)",
           why);
        ok(passdb_make("a\nz", 4096, &text2, &why) == -1, "newline refused");
        ok(passdb_make("\xff\xfe", 4096, &text2, &why) == -1, "not UTF-8 refused");
        ok(passdb_make("pw", 4095, &text2, &why) == -1, "4095 iterations refused");
        ok(passdb_make("pw", 10000001, &text2, &why) == -1, "10000001 iterations refused");
    }

    /* Every proper prefix and every one-byte deletion is malformed, except
     * a deletion inside the hash's yescrypt parameters or salt (variable
     * length fields: what is left may be another good hash). */
    len = strlen(text);
    all = 1;
    for (size_t i = 0; i < len; i++) {
        damaged = xstrndup(text, i);
        if (!refused(damaged)) {
            diag("prefix of %zu bytes accepted", i);
            all = 0;
        }
        free(damaged);
    }
    ok(all, "every proper prefix of the record is refused");
    all = 1;
    for (size_t i = 0, hs = 2 + 3, he = 2 + (size_t)(strrchr(rec.hash, '$') - rec.hash);
         i < len; i++) {
        if (i >= hs && i < he && text[i] != '$')
            continue;
        damaged = xasprintf("%.*s%s", (int)i, text, text + i + 1);
        if (!refused(damaged)) {
            diag("deleting byte %zu accepted", i);
            all = 0;
        }
        free(damaged);
    }
    ok(all, "every one-byte deletion elsewhere is refused");

    /* Hand-made defects of a good record. */
    {
        const char *hash = rec.hash;
        char salt[64], sk64[64], vk64[64];
        char *sp = strchr(text + 2, ' ');
        char *scram = sp + 1;
        char *c1 = strchr(scram, ','), *c2 = strchr(c1 + 1, ','), *c3 = strchr(c2 + 1, ',');
        struct {
            const char *what;
            char *rec;
        } bad[40];
        size_t nb = 0;

        snprintf(salt, sizeof(salt), "%.*s", (int)(c2 - c1 - 1), c1 + 1);
        snprintf(sk64, sizeof(sk64), "%.*s", (int)(c3 - c2 - 1), c2 + 1);
        snprintf(vk64, sizeof(vk64), "%s", c3 + 1);
#define BAD(w, ...) do { bad[nb].what = (w); bad[nb].rec = xasprintf(__VA_ARGS__); nb++; } while (0)
        BAD("version 2", "2 %s %s", hash, scram);
        BAD("version 01", "01 %s %s", hash, scram);
        BAD("no version", "%s %s", hash, scram);
        BAD("leading space", " 1 %s %s", hash, scram);
        BAD("two spaces", "1  %s %s", hash, scram);
        BAD("tab", "1\t%s %s", hash, scram);
        BAD("trailing space", "1 %s %s ", hash, scram);
        BAD("trailing newline", "1 %s %s\n", hash, scram);
        BAD("trailing field", "1 %s %s x", hash, scram);
        BAD("sha512crypt hash", "1 $6$saltsalt$%s %s", hash + 3, scram);
        BAD("hash with a bad character", "1 %.10s!%s %s", hash, hash + 11, scram);
        BAD("hash one short", "1 %.*s %s", (int)strlen(hash) - 1, hash, scram);
        BAD("hash one long", "1 %sA %s", hash, scram);
        BAD("hash without salt field", "1 $y$j9T$%s %s", strrchr(hash, '$') + 1, scram);
        BAD("hash with an empty field", "1 $y$$%s %s", hash + 3, scram);
        BAD("4095 iterations", "1 %s 4095,%s,%s,%s", hash, salt, sk64, vk64);
        BAD("10000001 iterations", "1 %s 10000001,%s,%s,%s", hash, salt, sk64, vk64);
        BAD("leading zero", "1 %s 04096,%s,%s,%s", hash, salt, sk64, vk64);
        BAD("plus sign", "1 %s +4096,%s,%s,%s", hash, salt, sk64, vk64);
        BAD("no iterations", "1 %s ,%s,%s,%s", hash, salt, sk64, vk64);
        BAD("huge iterations", "1 %s 99999999999999999999,%s,%s,%s", hash, salt, sk64, vk64);
        BAD("empty salt", "1 %s 4096,,%s,%s", hash, sk64, vk64);
        BAD("unpadded salt", "1 %s 4096,%.22s,%s,%s", hash, salt, sk64, vk64);
        BAD("non-canonical salt", "1 %s 4096,AB==,%s,%s", hash, sk64, vk64);
        BAD("salt with a bad character", "1 %s 4096,AA*A,%s,%s", hash, sk64, vk64);
        BAD("padding in the middle", "1 %s 4096,AA==AAAA,%s,%s", hash, sk64, vk64);
        BAD("salt of 65 octets", "1 %s 4096,%s%s%s%s%s%s%s%s%s%s%s%sQQ==,%s,%s", hash,
            "AAAAAAAA", "AAAAAAAA", "AAAAAAAA", "AAAAAAAA", "AAAAAAAA", "AAAAAAAA",
            "AAAAAAAA", "AAAAAAAA", "AAAAAAAA", "AAAAAAAA", "AAAAAAAA", "AAAAAAAA", sk64, vk64);
        BAD("StoredKey of 31 octets", "1 %s 4096,%s,%.40sAA==,%s", hash, salt, sk64, vk64);
        BAD("ServerKey of 33 octets", "1 %s 4096,%s,%s,%.40sAAAA", hash, salt, sk64, vk64);
        BAD("keys swapped for salt", "1 %s 4096,%s,%s", hash, salt, sk64);
        BAD("a fifth SCRAM field", "1 %s 4096,%s,%s,%s,%s", hash, salt, sk64, vk64, vk64);
        BAD("empty record", "%s", "");
        BAD("NUL-free garbage", "%s", "hello world");
        {
            char *longrec = xmalloc(PASSDB_RECORD_MAX + 100);

            snprintf(longrec, PASSDB_RECORD_MAX + 100, "1 %s %s", hash, scram);
            memset(longrec + strlen(longrec), 'A', PASSDB_RECORD_MAX + 100 - strlen(longrec) - 1);
            longrec[PASSDB_RECORD_MAX + 99] = '\0';
            bad[nb].what = "a record over 1024 bytes";
            bad[nb++].rec = longrec;
        }
#undef BAD
        for (size_t i = 0; i < nb; i++) {
            ok(refused(bad[i].rec), "refused: %s", bad[i].what);
            is_int(passdb_verify_plain(bad[i].rec, "correct horse"), -1,
                   "verify_plain on it is -1: %s", bad[i].what);
            free(bad[i].rec);
        }
        ok(refused(NULL), "refused: NULL");
        /* The parts themselves were good: reassembled they parse. */
        damaged = xasprintf("1 %s 4096,%s,%s,%s", hash, salt, sk64, vk64);
        ok(passdb_parse(damaged, &rec, &why) == 0, "the reassembled record parses");
        free(damaged);
        /* Parameters only libxcrypt itself refuses: found at verification. */
        damaged = xasprintf("1 $y$/$%s %s", strchr(hash + 3, '$') + 1, scram);
        is_int(passdb_verify_plain(damaged, "correct horse"), -1,
               "yescrypt parameters libxcrypt cannot use: verify_plain is -1");
        free(damaged);
    }
    free(text);
}

static void test_file(void)
{
    char *db = path("passwords.db"), *lock = path("passwords.db.lock");
    char *ra = NULL, *rb = NULL, *rc = NULL, *ra2 = NULL, *got, *err = NULL;
    const char *why;
    char **names = NULL;
    size_t n = 99;
    passdb_t *p;
    struct stat st;

    ok(passdb_make("alice-pw", 4096, &ra, &why) == 0 && passdb_make("bob-pw", 4096, &rb, &why) == 0
       && passdb_make("carol-pw", 4096, &rc, &why) == 0
       && passdb_make("alice-new", 4096, &ra2, &why) == 0, "four records made");
    ok(passdb_list(db, &names, &n, &err) == 0 && n == 0, "list of a missing file: empty");
    passdb_list_free(&names, n);
    p = passdb_open(db, &err);
    ok(p == NULL && errno == ENOENT && err != NULL, "open of a missing file: ENOENT (%s)", S(err));
    free(err);

    ok(passdb_put(db, "carol", rc, PASSDB_PUT_NEW, (gid_t)-1, &err) == 0, "put carol");
    ok(passdb_put(db, "alice", ra, PASSDB_PUT_NEW, (gid_t)-1, &err) == 0, "put alice");
    ok(passdb_put(db, "bob", rb, PASSDB_PUT_NEW, (gid_t)-1, &err) == 0, "put bob");
    ok(stat(db, &st) == 0 && (st.st_mode & 07777) == 0640, "the file has mode 0640");
    ok(st.st_uid == geteuid(), "and is the caller's (root's when root)");
    ok(stat(lock, &st) == 0 && (st.st_mode & 07777) == 0600, "the lock file has mode 0600");
    is_int(count_dir(dir), 2, "no temporary file left behind");

    ok(passdb_put(db, "alice", ra2, PASSDB_PUT_NEW, (gid_t)-1, &err) == -1 && errno == EEXIST,
       "a second put NEW of alice: EEXIST");
    like(err, "already has", "saying so (%s)", S(err));
    free(err);
    ok(passdb_put(db, "dave", ra2, PASSDB_PUT_REPLACE, (gid_t)-1, &err) == -1 && errno == ENOENT,
       "REPLACE of a missing user: ENOENT");
    free(err);
    OKE(passdb_put(db, "Dave", ra2, PASSDB_PUT_NEW, (gid_t)-1, &err) == -1 && errno == EINVAL,
        "an upper-case name is refused (%s)", S(err));
    free(err);
    OKE(passdb_put(db, "dave", "1 garbage", PASSDB_PUT_NEW, (gid_t)-1, &err) == -1
        && errno == EINVAL, "a malformed record is refused (%s)", S(err));
    free(err);
    ok(passdb_delete(db, "dave", (gid_t)-1, &err) == -1 && errno == ENOENT,
       "delete of a missing user: ENOENT");
    free(err);

    ok(passdb_list(db, &names, &n, &err) == 0 && n == 3, "list: three names");
    if (n == 3)
        ok(strcmp(names[0], "alice") == 0 && strcmp(names[1], "bob") == 0
           && strcmp(names[2], "carol") == 0, "sorted");
    passdb_list_free(&names, n);

    p = passdb_open(db, &err);
    ok(p != NULL, "the reader opens the file");
    if (p == NULL) {
        diag("%s", S(err));
        return;
    }
    ok(passdb_lookup(p, "alice", &got) == 1 && strcmp(got, ra) == 0, "lookup alice: her record");
    is_int(passdb_verify_plain(got, "alice-pw"), 1, "which verifies her password");
    free(got);
    ok(passdb_lookup(p, "ALICE", &got) == 0 && got == NULL, "ALICE is not found (not folded)");
    ok(passdb_lookup(p, "dave", &got) == 0 && got == NULL, "dave is not found");
    ok(passdb_lookup(p, "", &got) == 0, "the empty name is not found");

    ok(passdb_put(db, "alice", ra2, PASSDB_PUT_REPLACE, (gid_t)-1, &err) == 0, "replace alice's");
    ok(passdb_lookup(p, "alice", &got) == 1 && strcmp(got, ra2) == 0,
       "the open reader sees the new record");
    is_int(passdb_verify_plain(got, "alice-pw"), 0, "the old password no longer verifies");
    is_int(passdb_verify_plain(got, "alice-new"), 1, "the new one does");
    free(got);
    ok(passdb_delete(db, "bob", (gid_t)-1, &err) == 0, "delete bob");
    ok(passdb_lookup(p, "bob", &got) == 0, "the reader no longer finds bob");
    ok(passdb_lookup(p, "carol", &got) == 1 && strcmp(got, rc) == 0, "carol is untouched");
    free(got);
    ok(passdb_list(db, &names, &n, &err) == 0 && n == 2 && strcmp(names[0], "alice") == 0
       && strcmp(names[1], "carol") == 0, "list: alice carol");
    passdb_list_free(&names, n);
    is_int(count_dir(dir), 2, "still nothing left behind");

    /* Trust checks. */
    chmod(db, 0660);
    ok(passdb_put(db, "bob", rb, PASSDB_PUT_NEW, (gid_t)-1, &err) == -1 && errno == EPERM,
       "a group-writable file is refused for writing");
    like(err, "writable by group", "saying why (%s)", S(err));
    free(err);
    ok(passdb_lookup(p, "carol", &got) == 1, "(chmod alone is no new file for the reader)");
    free(got);
    {
        passdb_t *q = passdb_open(db, &err);

        ok(q == NULL && errno == EPERM, "and for reading (%s)", S(err));
        free(err);
        passdb_close(&q);
    }
    chmod(db, 0642);
    ok(passdb_list(db, &names, &n, &err) == -1 && errno == EPERM, "world-writable: refused");
    free(err);
    chmod(db, 0644);
    OKE(passdb_list(db, &names, &n, &err) == -1 && errno == EPERM,
        "world-readable: refused (%s)", S(err));
    like(err, "others have access", "saying why");
    free(err);
    chmod(db, 0640);
    ok(passdb_list(db, &names, &n, &err) == 0 && n == 2, "mode 0640 again: fine");
    passdb_list_free(&names, n);

    {
        char *sym = path("link.db"), *hard = path("hard.db");

        ok(symlink(db, sym) == 0, "a symbolic link to the file");
        OKE(passdb_open(sym, &err) == NULL && errno == ELOOP, "is refused (%s)", S(err));
        like(err, "symbolic link", "saying so");
        free(err);
        ok(passdb_put(sym, "bob", rb, PASSDB_PUT_NEW, (gid_t)-1, &err) == -1,
           "and not written through");
        free(err);
        ok(lstat(sym, &st) == 0 && S_ISLNK(st.st_mode), "the link is still a link");
        unlink(sym);
        ok(link(db, hard) == 0, "a second hard link");
        OKE(passdb_open(db, &err) == NULL && errno == EMLINK, "is refused (%s)", S(err));
        free(err);
        unlink(hard);
        free(sym);
        free(hard);
    }
    if (geteuid() == 0) {
        ok(chown(db, 65534, (gid_t)-1) == 0, "(as root) the file given to uid 65534");
        ok(passdb_list(db, &names, &n, &err) == -1 && errno == EPERM, "another owner: refused");
        like(err, "owned by uid 65534", "saying so");
        free(err);
        ok(chown(db, 0, (gid_t)-1) == 0 && passdb_put(db, "bob", rb, PASSDB_PUT_NEW, 65534,
                                                       &err) == 0, "root again; put with a group");
        ok(stat(db, &st) == 0 && st.st_gid == 65534 && st.st_uid == 0
           && (st.st_mode & 07777) == 0640, "the new file is root's, that group's, 0640");
    }

    chmod(dir, 0770);
    OKE(passdb_list(db, &names, &n, &err) == -1 && errno == EPERM,
        "a group-writable directory: refused (%s)", S(err));
    free(err);
    ok(passdb_lookup(p, "carol", &got) == -1 && got == NULL,
       "an open reader that must reopen the replaced file refuses too");
    chmod(dir, 0700);
    ok(passdb_lookup(p, "carol", &got) == 1, "and reads it once the directory is fixed");
    free(got);

    passdb_close(&p);
    ok(p == NULL, "passdb_close NULLs the pointer");
    free(ra);
    free(rb);
    free(rc);
    free(ra2);
    free(db);
    free(lock);
}

/* The optional APOP field: round trip, refusals, and the writers keeping
 * it across a new password. */
static void test_apop(void)
{
    char *text = NULL, *with = NULL, *again, *bad, *db = path("apop.db"), *err = NULL, *got;
    char secret[PASSDB_PASSWORD_MAX + 1], *newpw = NULL;
    struct passdb_record rec;
    const char *why = NULL;
    passdb_t *p;

    if (passdb_make("pw", 4096, &text, &why) < 0 || passdb_make("pw2", 4096, &newpw, &why) < 0) {
        ok(0, "records made");
        return;
    }
    is_int(passdb_apop(text, secret), 0, "a new record has no APOP secret");
    ok(passdb_set_apop(text, "s3cret with spaces", &with, &why) == 0, "an APOP secret is set");
    like(with, " AczNjcmV0IHdpdGggc3BhY2Vz", "  as a field \"A\" and base64 at the end");
    is_int(passdb_apop(with, secret), 1, "  it reads back");
    is_str(secret, "s3cret with spaces", "  the same secret");
    ok(passdb_parse(with, &rec, &why) == 0, "  the record parses");
    again = passdb_format(&rec);
    is_str(again, with, "  and formats back the same");
    free(again);
    is_int(passdb_verify_plain(with, "pw"), 1, "  the password still verifies");
    ok(passdb_set_apop(text, "bad\001secret", &again, &why) < 0, "a control character: refused");
    ok(passdb_set_apop(text, "", &again, &why) < 0, "an empty secret: refused");
    bad = xasprintf("%s A", text);
    ok(passdb_parse(bad, &rec, &why) < 0, "an empty APOP field is malformed (%s)", S(why));
    free(bad);
    bad = xasprintf("%s Bc2VjcmV0", text);
    ok(passdb_parse(bad, &rec, &why) < 0, "a field that is not A... is malformed");
    free(bad);
    bad = xasprintf("%s AAQ==", text);                  /* "\001" */
    ok(passdb_parse(bad, &rec, &why) < 0, "a secret with a control character is malformed");
    free(bad);
    bad = xasprintf("%s Ac2VjcmV0 Ac2VjcmV0", text);
    ok(passdb_parse(bad, &rec, &why) < 0, "two APOP fields are malformed");
    free(bad);

    ok(passdb_put_apop(db, "dave", "x", (gid_t)-1, &err) < 0 && errno == ENOENT,
       "passdb_put_apop for a user without a record: ENOENT");
    free(err);
    err = NULL;
    ok(passdb_put(db, "dave", text, PASSDB_PUT_NEW, (gid_t)-1, &err) == 0, "put dave");
    ok(passdb_put_apop(db, "dave", "dave's secret", (gid_t)-1, &err) == 0, "set dave's secret");
    ok(passdb_put(db, "dave", newpw, PASSDB_PUT_REPLACE, (gid_t)-1, &err) == 0,
       "a new password for dave");
    p = passdb_open(db, &err);
    got = NULL;
    ok(p && passdb_lookup(p, "dave", &got) == 1, "dave's record read back");
    is_int(got ? passdb_apop(got, secret) : -1, 1, "  the new password kept the APOP secret");
    is_str(secret, "dave's secret", "  unchanged");
    is_int(got ? passdb_verify_plain(got, "pw2") : -1, 1, "  and the new password is in it");
    free(got);
    passdb_close(&p);
    ok(passdb_put_apop(db, "dave", NULL, (gid_t)-1, &err) == 0, "the secret removed");
    p = passdb_open(db, &err);
    got = NULL;
    ok(p && passdb_lookup(p, "dave", &got) == 1 && passdb_apop(got, secret) == 0,
       "  the record has none");
    free(got);
    passdb_close(&p);
    free(text);
    free(with);
    free(newpw);
    free(db);
}

int main(void)
{
    char tmpl[] = "/tmp/passdb-XXXXXX";

    if (mkdtemp(tmpl) == NULL) {
        ok(0, "mkdtemp: %s", strerror(errno));
        return done_testing();
    }
    dir = tmpl;
    test_names();
    test_records();
    test_file();
    test_apop();
    {
        char *cmd = xasprintf("rm -rf '%s'", dir);

        if (system(cmd) != 0)
            diag("could not remove %s", dir);
        free(cmd);
    }
    return done_testing();
}
