/*
 * t/unit/maildir.c - unit tests for lib/maildir.c (Maildir creation and
 * delivery).
 *
 * Covers: maildir_create (tmp/new/cur at mode 0700, idempotent, a file in
 * the way is ENOTDIR); unique names (format, no repeats, '/' and ':' of the
 * host name encoded, checked in a private UTS namespace); the raw writer
 * (tmp -> new/NAME,S=size,W=vsize, mode 0600, no tmp/ leftovers, abort
 * leaves nothing); maildir_deliver: Return-Path and Delivered-To lines,
 * the message's own Return-Path: fields dropped (folded, split anywhere),
 * CRLF -> LF with a lone CR kept, identical output for every piece size
 * from 1 byte up (a CRLF split across pieces, a CR at the very end), 8-bit
 * bytes and NULs intact; the Delivered-To loop scan (case, folding, angle
 * brackets, a field split across 1-byte pieces, a message that is all
 * header, and the non-loops: body, other address, longer address, other
 * field name); errors leave nothing behind: a read-only tmp/ (EACCES, as
 * an unprivileged user when run as root), a file size limit (EFBIG), a
 * failing content source.  Works in a mkdtemp directory removed at the end.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "buf.h"
#include "maildir.h"
#include "msg.h"
#include "xalloc.h"
#include "../lib/tap.h"
#include "../lib/testlib.h"

static char top[PATH_MAX];

/* ------------------------------------------------------------ helpers */

/* The one file name in dir (fresh string), or NULL. */
static char *only_file(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char *name = NULL;
    int n = 0;

    while (d && (de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            n++;
            free(name);
            name = xstrdup(de->d_name);
        }
    if (d)
        closedir(d);
    if (n != 1)
        xfree(&name);
    return name;
}

static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;

    while (d && (de = readdir(d)) != NULL) {
        char *sub;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        sub = xasprintf("%s/%s", path, de->d_name);
        if (unlink(sub) < 0 && (errno == EISDIR || errno == EPERM)) {
            chmod(sub, 0700);
            rm_tree(sub);
        }
        free(sub);
    }
    if (d)
        closedir(d);
    rmdir(path);
}

/* A content source over a fixed string, in pieces of step bytes (0: one). */
struct src {
    const char *data;
    size_t      len;
    size_t      step;
    int         fail_after;     /* > 0: fail with EIO after this many pieces */
};

static int src_run(void *ctx, int (*fn)(void *, const void *, size_t), void *fnctx)
{
    struct src *s = ctx;
    size_t off = 0, step = s->step ? s->step : s->len;
    int pieces = 0, r;

    while (off < s->len) {
        size_t n = s->len - off < step ? s->len - off : step;

        if (s->fail_after > 0 && pieces == s->fail_after) {
            errno = EIO;
            return -1;
        }
        if ((r = fn(fnctx, s->data + off, n)) != 0)
            return r;
        off += n;
        pieces++;
    }
    return 0;
}

/* Deliver content in pieces of step bytes into dir; returns the result and
 * the delivered file's bytes in *out (when 0). */
static int deliver(const char *dir, const char *sender, const char *rcpt, const char *content,
                   size_t len, size_t step, buf_t *out, char **pathp)
{
    struct src s = { content, len, step, 0 };
    struct maildir_delivery d = { sender, rcpt, src_run, &s, NULL };
    char *path = NULL, *why = NULL;
    int r;

    r = maildir_deliver(dir, &d, &path, &why);
    if (r < 0)
        diag("maildir_deliver: %s", why ? why : "(no why)");
    if (r == 0 && out) {
        int fd = open(path, O_RDONLY);
        char tmp[4096];
        ssize_t n;

        buf_reset(out);
        while (fd >= 0 && (n = read(fd, tmp, sizeof(tmp))) > 0)
            buf_append(out, tmp, (size_t)n);
        if (fd >= 0)
            close(fd);
    }
    if (pathp)
        *pathp = path;
    else
        free(path);
    free(why);
    return r;
}

static void empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    while (d && (de = readdir(d)) != NULL)
        if (de->d_name[0] != '.') {
            char *p = xasprintf("%s/%s", dir, de->d_name);

            unlink(p);
            free(p);
        }
    if (d)
        closedir(d);
}

/* ------------------------------------------------------------ tests */

static void test_create(void)
{
    char *md = xasprintf("%s/Maildir/", top), *p, *why = NULL;
    struct stat st;
    static const char *const subs[] = {"", "/tmp", "/new", "/cur"};

    is_int(maildir_create(md, &why), 0, "maildir_create makes a new Maildir");
    for (size_t i = 0; i < 4; i++) {
        p = xasprintf("%s/Maildir%s", top, subs[i]);
        ok(stat(p, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700,
           "Maildir%s is a directory of mode 0700", subs[i]);
        free(p);
    }
    is_int(maildir_create(md, NULL), 0, "maildir_create again is fine");

    /* A partial Maildir is completed. */
    p = xasprintf("%s/Maildir/cur", top);
    rmdir(p);
    is_int(maildir_create(md, NULL), 0, "a missing cur/ is created again");
    ok(stat(p, &st) == 0 && S_ISDIR(st.st_mode), "cur/ is there");
    free(p);

    /* A file where a directory belongs. */
    p = xasprintf("%s/Bad", top);
    mkdir(p, 0700);
    free(p);
    p = xasprintf("%s/Bad/new", top);
    write_text(p, "x");
    free(p);
    p = xasprintf("%s/Bad", top);
    errno = 0;
    is_int(maildir_create(p, &why), -1, "a file in the way fails");
    is_int(errno, ENOTDIR, "with ENOTDIR");
    like(why, "Bad/new", "and a reason naming the path");
    free(why);
    rm_tree(p);
    free(p);
    free(md);
}

static void unique_in_namespace(void)
{
    char *u;

    if (unshare(CLONE_NEWUTS) < 0 || sethostname("mx/a:b.example", 14) < 0)
        _exit(2);
    u = maildir_unique();
    printf("%s\n", u);
    fflush(stdout);
    _exit(strstr(u, ".mx\\057a\\072b.example") != NULL && strchr(u, '/') == NULL
          && strchr(u, ':') == NULL ? 0 : 1);
}

static void test_unique(void)
{
    char *names[1000];
    int dup = 0, shape = 1;
    long long sec;
    long usec, pid;
    unsigned long q;
    int n, status;
    pid_t child;

    for (int i = 0; i < 1000; i++) {
        names[i] = maildir_unique();
        n = 0;
        if (sscanf(names[i], "%lld.M%ldP%ldQ%lu.%n", &sec, &usec, &pid, &q, &n) != 4 || n == 0
            || pid != (long)getpid() || usec < 0 || usec > 999999 || names[i][n] == '\0'
            || strchr(names[i], '/') != NULL)
            shape = 0;
    }
    for (int i = 0; i < 1000; i++)
        for (int j = i + 1; j < 1000; j++)
            if (strcmp(names[i], names[j]) == 0)
                dup++;
    ok(shape, "unique names look like SECONDS.M<usec>P<pid>Q<n>.<host>");
    is_int(dup, 0, "1000 names, no repeats");
    for (int i = 0; i < 1000; i++)
        free(names[i]);

    if (geteuid() != 0) {
        ok(1, "# SKIP host name encoding needs root (a UTS namespace)");
        return;
    }
    fflush(NULL);
    if ((child = fork()) == 0) {
        int null = open("/dev/null", O_WRONLY);

        dup2(null, 1);
        unique_in_namespace();
    }
    status = reap(child);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 2)
        ok(1, "# SKIP cannot set a host name in a UTS namespace here");
    else
        ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "'/' and ':' in the host name are written \\057 and \\072");
}

static void test_writer(void)
{
    char *md = xasprintf("%s/W", top), *tmpd = xasprintf("%s/W/tmp", top),
         *newd = xasprintf("%s/W/new", top), *path = NULL, *why = NULL, *name, *want, *got;
    maildir_writer_t *w;
    struct stat st;

    maildir_create(md, NULL);
    is_int(maildir_writer_open(md, &w, &why), 0, "writer opens");
    is_int(count_dir(tmpd), 1, "a file appears in tmp/");
    maildir_writer_write(w, "a\nbb\n", 5);
    maildir_writer_write(w, "ccc", 3);
    is_int(maildir_writer_size(w), 8, "size counts the bytes");
    is_int(maildir_writer_commit(&w, &path, &why), 0, "commit succeeds");
    ok(w == NULL, "commit NULLs the writer");
    is_int(count_dir(tmpd), 0, "nothing is left in tmp/");
    name = only_file(newd);
    ok(name != NULL, "one file in new/");
    want = xasprintf("%s/new/%s", md, name ? name : "");
    is_str(path, want, "the path returned is dir/new/NAME");
    ok(name && strstr(name, ",S=8,W=10") != NULL, "the name ends in ,S=8,W=10 (%s)", name);
    ok(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600, "the file has mode 0600");
    got = slurp(path);
    is_str(got, "a\nbb\nccc", "the content is exact");
    free(got);
    free(want);
    free(name);
    free(path);
    empty_dir(newd);

    is_int(maildir_writer_open(md, &w, NULL), 0, "another writer");
    maildir_writer_write(w, "x", 1);
    maildir_writer_abort(&w);
    ok(w == NULL, "abort NULLs the writer");
    is_int(count_dir(tmpd) + count_dir(newd), 0, "abort leaves nothing in tmp/ or new/");
    maildir_writer_abort(&w);
    ok(1, "abort of NULL is fine");

    /* A big message through the buffer. */
    {
        size_t big = 3 * 65536 + 17;
        char *data = xmalloc(big);
        struct stat st2;

        for (size_t i = 0; i < big; i++)
            data[i] = (char)(i % 251);
        is_int(maildir_writer_open(md, &w, NULL), 0, "a writer for 196 KB");
        for (size_t off = 0; off < big; off += 1000)
            maildir_writer_write(w, data + off, big - off < 1000 ? big - off : 1000);
        is_int(maildir_writer_commit(&w, &path, NULL), 0, "commit");
        ok(stat(path, &st2) == 0 && st2.st_size == (off_t)big, "the file has every byte");
        got = slurp(path);
        ok(memcmp(got, data, 100) == 0, "the bytes are right");
        free(got);
        free(data);
        free(path);
        empty_dir(newd);
    }

    errno = 0;
    is_int(maildir_writer_open("/nonexistent/posthorn/Maildir", &w, &why), -1,
           "a writer on a missing Maildir fails");
    is_int(errno, ENOENT, "with ENOENT");
    like(why, "/nonexistent/posthorn/Maildir", "the reason names it");
    ok(w == NULL, "and gives no writer");
    free(why);
    free(md);
    free(tmpd);
    free(newd);
}

static void test_deliver_format(void)
{
    char *md = xasprintf("%s/D", top), *tmpd = xasprintf("%s/D/tmp", top),
         *newd = xasprintf("%s/D/new", top), *path = NULL;
    static const char content[] =
        "Subject: caf\xc3\xa9 \xe2\x82\xac\r\n"
        "X-Eight: \xff\xfe\r\n"
        "\r\n"
        "line1\r\n"
        "lone\rcr and\n bare lf\r\n"
        "nul \0 byte\r\r\n"
        "\r\n"
        "end\r";
    static const char want_body[] =
        "Subject: caf\xc3\xa9 \xe2\x82\xac\n"
        "X-Eight: \xff\xfe\n"
        "\n"
        "line1\n"
        "lone\rcr and\n bare lf\n"
        "nul \0 byte\r\n"
        "\n"
        "end\r";
    buf_t *want = buf_new(0), *got = buf_new(0), *first = buf_new(0);
    size_t steps[] = {1, 2, 3, 5, 7, 13, 64, 0};
    int all_same = 1, all_ok = 1;
    char *name;

    maildir_create(md, NULL);
    buf_append_str(want, "Return-Path: <alice@example.org>\nDelivered-To: bob@example.test\n");
    buf_append(want, want_body, sizeof(want_body) - 1);

    is_int(deliver(md, "alice@example.org", "bob@example.test", content, sizeof(content) - 1,
                   0, got, &path), 0, "delivery in one piece");
    ok(got->len == want->len && memcmp(got->data, want->data, got->len) == 0,
       "Return-Path, Delivered-To, CRLF -> LF, lone CR kept, 8-bit, UTF-8 and NUL intact");
    if (got->len != want->len)
        diag("got %zu bytes, want %zu", got->len, want->len);
    name = only_file(newd);
    {
        char *s = xasprintf(",S=%zu,W=%zu", want->len, want->len + 10);

        ok(name && strstr(name, s), "the name carries %s (%s)", s, name ? name : "none");
        free(s);
    }
    free(name);
    free(path);
    buf_append(first, got->data, got->len);
    empty_dir(newd);

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        if (deliver(md, "alice@example.org", "bob@example.test", content, sizeof(content) - 1,
                    steps[i], got, NULL) != 0)
            all_ok = 0;
        else if (got->len != first->len || memcmp(got->data, first->data, got->len) != 0) {
            all_same = 0;
            diag("piece size %zu differs", steps[i]);
        }
    }
    ok(all_ok, "deliveries in pieces of 1, 2, 3, 5, 7, 13, 64 bytes succeed");
    ok(all_same, "and give the same bytes (CRLF split across pieces)");
    is_int(count_dir(newd), (int)(sizeof(steps) / sizeof(steps[0])), "one file each in new/");
    is_int(count_dir(tmpd), 0, "nothing left in tmp/");
    empty_dir(newd);

    is_int(deliver(md, "", "bob@example.test", "x\r\n", 3, 1, got, NULL), 0,
           "delivery from the null sender");
    buf_putc(got, '\0');
    is_str(got->data, "Return-Path: <>\nDelivered-To: bob@example.test\nx\n",
           "Return-Path: <> for the null sender");
    empty_dir(newd);

    is_int(deliver(md, "a@b", "bob@example.test", "", 0, 1, got, NULL), 0,
           "delivery of empty content");
    buf_putc(got, '\0');
    is_str(got->data, "Return-Path: <a@b>\nDelivered-To: bob@example.test\n",
           "just the two lines");
    empty_dir(newd);

    /* The message's own Return-Path: fields are dropped, in any case, with
     * white space before the colon and continuation lines, in any piece
     * size; fields that only look alike stay. */
    {
        static const char rp[] = "Return-Path: <forged@x>\r\nX-A: 1\r\n"
                                 "return-path :\r\n <more@x>\r\n\t<still@x>\r\n"
                                 "Return-Paths: keep\r\nReturn-Pat: keep\r\n"
                                 "X-Return-Path: keep\r\nReturn-Path\r\n"
                                 "\r\nReturn-Path: in the body\r\n";
        static const char want_rp[] = "Return-Path: <a@b>\nDelivered-To: c@d\nX-A: 1\n"
                                      "Return-Paths: keep\nReturn-Pat: keep\n"
                                      "X-Return-Path: keep\nReturn-Path\n"
                                      "\nReturn-Path: in the body\n";
        int same = 1;

        for (size_t step = 1; step <= sizeof(rp); step += step < 8 ? 1 : 17) {
            if (deliver(md, "a@b", "c@d", rp, sizeof(rp) - 1, step, got, NULL) != 0) {
                same = 0;
                continue;
            }
            buf_putc(got, '\0');
            if (strcmp(got->data, want_rp) != 0) {
                same = 0;
                diag("piece size %zu: %s", step, got->data);
            }
            empty_dir(newd);
        }
        ok(same, "Return-Path: fields of the message are dropped (folded too, in any "
           "piece size); look-alikes and the body stay");
        is_int(deliver(md, "a@b", "c@d", "Return-Path: <x>", 16, 3, got, NULL), 0,
               "a message that is one unterminated Return-Path: field");
        buf_putc(got, '\0');
        is_str(got->data, "Return-Path: <a@b>\nDelivered-To: c@d\n", "loses it");
        empty_dir(newd);
        is_int(deliver(md, "a@b", "c@d", "Subj", 4, 1, got, NULL), 0,
               "a message that is a short unterminated field");
        buf_putc(got, '\0');
        is_str(got->data, "Return-Path: <a@b>\nDelivered-To: c@d\nSubj", "keeps it");
        empty_dir(newd);
    }

    /* A CR split from its LF at a piece boundary, with a lone CR before. */
    is_int(deliver(md, "a@b", "c@d", "a\r\r\nb\r", 6, 1, got, NULL), 0, "CR CR LF in 1-byte pieces");
    buf_putc(got, '\0');
    is_str(got->data, "Return-Path: <a@b>\nDelivered-To: c@d\na\r\nb\r", "gives CR LF, and a final CR stays");
    empty_dir(newd);

    buf_free(&want);
    buf_free(&got);
    buf_free(&first);
    free(md);
    free(tmpd);
    free(newd);
}

static void test_loop(void)
{
    char *md = xasprintf("%s/L", top), *tmpd = xasprintf("%s/L/tmp", top),
         *newd = xasprintf("%s/L/new", top);
    static const struct {
        const char *content;
        int loop;
        const char *name;
    } cases[] = {
        {"Delivered-To: bob@example.test\r\nSubject: x\r\n\r\nbody\r\n", 1, "plain"},
        {"Subject: x\r\ndelivered-to:   BOB@Example.TEST  \r\n\r\nbody\r\n", 1,
         "other case and spaces"},
        {"Subject: x\r\nDelivered-To:\r\n\tbob@example.test\r\n\r\nbody\r\n", 1, "folded"},
        {"Delivered-To : <bob@example.test>\r\n\r\n", 1, "space before colon, angle brackets"},
        {"Received: a\r\nDelivered-To: bob@example.test", 1, "all header, no line end"},
        {"Subject: x\r\n\r\nDelivered-To: bob@example.test\r\n", 0, "in the body"},
        {"Delivered-To: alice@example.test\r\n\r\n", 0, "another address"},
        {"Delivered-To: bob@example.test.org\r\n\r\n", 0, "a longer address"},
        {"Delivered-To: xbob@example.test\r\n\r\n", 0, "an address with a prefix"},
        {"X-Delivered-To: bob@example.test\r\n\r\n", 0, "another field name"},
        {"Subject: x\r\n Delivered-To: bob@example.test\r\n\r\n", 0, "a continuation line"},
    };
    buf_t *got = buf_new(0);

    maildir_create(md, NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (size_t step = 0; step <= 1; step++) {
            int r = deliver(md, "a@b", "bob@example.test", cases[i].content,
                            strlen(cases[i].content), step, got, NULL);

            is_int(r, cases[i].loop ? MAILDIR_LOOP : 0, "%s: %s (%s)", cases[i].name,
                   cases[i].loop ? "a loop" : "not a loop", step ? "1-byte pieces" : "one piece");
        }
    }
    is_int(count_dir(tmpd), 0, "loops leave nothing in tmp/");
    is_int(count_dir(newd), 12, "and nothing in new/ (only the 12 non-loops)");

    /* A header field far longer than the address is not kept whole. */
    {
        buf_t *c = buf_new(0);

        buf_append_str(c, "Delivered-To: ");
        for (int i = 0; i < 5000; i++)
            buf_putc(c, ' ');
        buf_append_str(c, "bob@example.test\r\n\r\n");
        is_int(deliver(md, "a@b", "bob@example.test", c->data, c->len, 1, got, NULL), 0,
               "a huge field is not taken for a loop (it is over the cap)");
        buf_free(&c);
    }
    buf_free(&got);
    free(md);
    free(tmpd);
    free(newd);
}

static char *ro_md;

static void readonly_deliver(void)
{
    int r;

    if (geteuid() == 0 && (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0))
        _exit(3);
    errno = 0;
    r = deliver(ro_md, "a@b", "c@d", "x\r\n", 3, 1, NULL, NULL);
    _exit(r == -1 && errno == EACCES ? 0 : 1);
}

static void test_errors(void)
{
    char *md = xasprintf("%s/E", top), *tmpd = xasprintf("%s/E/tmp", top),
         *newd = xasprintf("%s/E/new", top), *why = NULL, *path = NULL;
    struct src s = { "Subject: x\r\n\r\nbody\r\n", 21, 3, 2 };
    struct maildir_delivery d = { "a@b", "c@d", src_run, &s, NULL };
    struct rlimit old, lim;
    buf_t *out = buf_new(0);
    int status, r, err;

    maildir_create(md, NULL);

    /* A content source that fails. */
    errno = 0;
    is_int(maildir_deliver(md, &d, &path, &why), -1, "a failing source fails the delivery");
    is_int(errno, EIO, "with its errno");
    like(why, "read message content", "and says so");
    ok(path == NULL, "no path");
    is_int(count_dir(tmpd) + count_dir(newd), 0, "nothing left behind");
    xfree(&why);

    /* A file size limit: EFBIG while writing. */
    {
        buf_t *big = buf_new(0);

        for (int i = 0; i < 20000; i++)
            buf_append_str(big, "0123456789\r\n");
        getrlimit(RLIMIT_FSIZE, &old);
        lim = old;
        lim.rlim_cur = 4096;
        signal(SIGXFSZ, SIG_IGN);
        setrlimit(RLIMIT_FSIZE, &lim);
        s.data = big->data;
        s.len = big->len;
        s.step = 100;
        s.fail_after = 0;
        errno = 0;
        r = maildir_deliver(md, &d, &path, &why);
        err = errno;
        /* Restore first: stdout may be a file too. */
        setrlimit(RLIMIT_FSIZE, &old);
        signal(SIGXFSZ, SIG_DFL);
        is_int(r, -1, "a write over RLIMIT_FSIZE fails");
        is_int(err, EFBIG, "with EFBIG");
        like(why, "write ", "the reason says write");
        is_int(count_dir(tmpd) + count_dir(newd), 0, "nothing left behind");
        xfree(&why);
        buf_free(&big);
    }

    /* A tmp/ we cannot write to. */
    if (geteuid() == 0) {
        chmod(top, 0755);
        if (chown(md, 65534, 65534) < 0 || chown(tmpd, 65534, 65534) < 0
            || chown(newd, 65534, 65534) < 0)
            diag("chown: %s", strerror(errno));
    }
    chmod(tmpd, 0500);
    ro_md = md;
    status = in_child(readonly_deliver, out);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "a read-only tmp/ fails with EACCES%s", geteuid() == 0 ? " (as nobody)" : "");
    chmod(tmpd, 0700);
    is_int(count_dir(tmpd) + count_dir(newd), 0, "nothing left behind");
    buf_free(&out);
    free(md);
    free(tmpd);
    free(newd);
}

/* A fixed name makes a repeated delivery find the first copy. */
static void test_fixed_name(void)
{
    char *dir = xasprintf("%s/F", top), *path1 = NULL, *path2 = NULL, *why = NULL, *sub;
    const char *content = "Subject: again\r\n\r\nbody\r\n";
    struct src s1 = { content, strlen(content), 5, 0 }, s2 = s1, s3 = s1;
    struct maildir_delivery d = { "a@b", "c@d", src_run, &s1, "1234.Qabc.host" };
    int r;

    ok(maildir_create(dir, NULL) == 0, "fixed name: maildir");
    is_int(maildir_deliver(dir, &d, &path1, &why), 0, "first delivery with a fixed name");
    like(path1, "/new/1234.Qabc.host,S=", "the fixed name is used in new/");
    d.source_ctx = &s2;
    r = maildir_deliver(dir, &d, &path2, &why);
    is_int(r, MAILDIR_DUPLICATE, "the same name again: MAILDIR_DUPLICATE");
    is_str(path2, path1, "and the path of the copy already there");
    sub = xasprintf("%s/new", dir);
    is_int(count_dir(sub), 1, "one file in new/");
    free(sub);
    sub = xasprintf("%s/tmp", dir);
    is_int(count_dir(sub), 0, "nothing left in tmp/");
    free(sub);
    free(path2);
    path2 = NULL;
    d.name = "1234.Qabd.host";
    d.source_ctx = &s3;
    is_int(maildir_deliver(dir, &d, &path2, &why), 0, "another name is another message");
    sub = xasprintf("%s/new", dir);
    is_int(count_dir(sub), 2, "two files in new/");
    free(sub);
    free(path1);
    free(path2);
    free(dir);
}

/* A group commit: each writer gets its own result; one already in new/
 * (a fixed name delivered before) is a duplicate; nothing is left in tmp/. */
static void test_commit_many(void)
{
    char *md = xasprintf("%s/G", top), *tmpd = xasprintf("%s/G/tmp", top),
         *newd = xasprintf("%s/G/new", top), *why = NULL, *path = NULL;
    struct maildir_commit c[4];
    maildir_writer_t *w;
    size_t i;

    maildir_create(md, NULL);
    maildir_writer_open(md, &w, NULL);
    maildir_writer_set_name(w, "100.Qfirst.host");
    maildir_writer_write(w, "x\n", 2);
    is_int(maildir_writer_commit(&w, &path, &why), 0, "a message with a fixed name");
    free(path);
    for (i = 0; i < 4; i++) {
        is_int(maildir_writer_open(md, &c[i].w, &why), 0, "group writer %zu opens", i);
        /* Writer 1 is the first message again: the same name and size. */
        maildir_writer_write(c[i].w, i == 1 ? "x\n" : "body\n", i == 1 ? 2 : 5);
    }
    maildir_writer_set_name(c[1].w, "100.Qfirst.host");     /* a redelivery */
    maildir_writer_set_name(c[2].w, "200.Qsecond.host");
    maildir_commit_many(c, 4);
    is_int(c[0].result, 0, "writer 0 is committed");
    is_int(c[1].result, MAILDIR_DUPLICATE, "writer 1 is a duplicate of what new/ holds");
    is_int(c[2].result, 0, "writer 2 is committed under its fixed name");
    is_int(c[3].result, 0, "writer 3 is committed");
    ok(c[2].path && strstr(c[2].path, "/new/200.Qsecond.host,S=5,W=6"), "its path: %s",
       c[2].path ? c[2].path : "(none)");
    ok(c[1].path && strstr(c[1].path, "/new/100.Qfirst.host,S=2,W=3"),
       "the duplicate names the copy already there");
    for (i = 0; i < 4; i++) {
        ok(c[i].w == NULL && c[i].why == NULL, "writer %zu freed, no error", i);
        free(c[i].path);
    }
    is_int(count_dir(newd), 4, "new/ holds the first message and three of the group");
    is_int(count_dir(tmpd), 0, "nothing is left in tmp/");
    maildir_commit_many(c, 0);
    ok(1, "an empty group is fine");
    free(md);
    free(tmpd);
    free(newd);
}

static void test_names(void)
{
    char *n;

    is_int(maildir_base_len("123.M1P2.host,S=10,W=12:2,FS"), 23, "base: up to the info");
    is_int(maildir_base_len("123.M1P2.host"), 13, "base: the whole name without info");
    is_int(maildir_name_vsize("123.M1P2.host,S=10,W=12:2,S"), 12, "W= read");
    is_int(maildir_name_vsize("123.M1P2.host,W=12,S=10"), 12, "W= before S=");
    is_int(maildir_name_vsize("123.M1P2.host,S=10"), -1, "no W=: -1");
    is_int(maildir_name_vsize("123.M1P2.host,W=12x"), -1, "W= with junk: -1");
    is_int(maildir_name_vsize("123.M1P2.host:2,W=12"), -1, "W= in the flags does not count");
    is_int(maildir_name_vsize("123.M1P2.host,W="), -1, "W= without digits: -1");
    is_int(maildir_name_vsize("1.h,W=99999999999999999999"), -1, "an absurd W=: -1");
    n = maildir_name_with_flag("123.host,S=1", 'S');
    is_str(n, "123.host,S=1:2,S", "a flag for a name without info");
    free(n);
    n = maildir_name_with_flag("123.host:2,FT", 'S');
    is_str(n, "123.host:2,FST", "a flag among others, in ASCII order");
    free(n);
    n = maildir_name_with_flag("123.host:2,", 'S');
    is_str(n, "123.host:2,S", "a flag into empty flags");
    free(n);
    ok(maildir_name_with_flag("123.host:2,RS", 'S') == NULL, "a flag it has: NULL");
}

int main(void)
{
    const char *tdir = getenv("TMPDIR");

    msg_init("maildir.t", MSG_STDERR);
    snprintf(top, sizeof(top), "%s/posthorn-maildir-XXXXXX", tdir && *tdir ? tdir : "/tmp");
    if (mkdtemp(top) == NULL) {
        printf("Bail out! mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    test_create();
    test_names();
    test_unique();
    test_writer();
    test_deliver_format();
    test_loop();
    test_errors();
    test_fixed_name();
    test_commit_many();
    rm_tree(top);
    return done_testing();
}
