/*
 * t/unit/defer_log.c - unit tests for lib/defer_log.c in a temporary queue
 * directory: write then read back, tabs and newlines in a field written as
 * '?' (so every line still parses), a rewrite replacing the old content,
 * n == 0 and remove taking the file away (a missing one is no error),
 * lines that do not parse skipped, a symbolic link or another owner read
 * as no entries, and defer_log_find.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "defer_log.h"
#include "msg.h"
#include "xalloc.h"
#include "../lib/tap.h"
#include "../lib/testlib.h"

#define ID "4bb8mD3VZHz1Pneg"

int main(void)
{
    char dir[] = "/tmp/posthorn-unit-defer-XXXXXX";
    struct defer_log_entry in[2] = {
        {"joe@example.org", "4.4.1", "connect to mx[192.0.2.1]:25: Connection refused"},
        {"ann@example.org", "4.7.0", "tab\there and\nnewline"},
    }, *out = NULL;
    const struct defer_log_entry *f;
    size_t n = 0;
    int qfd;
    char *path;

    msg_init("defer-log-test", MSG_STDERR);
    if (mkdtemp(dir) == NULL || (qfd = open(dir, O_RDONLY | O_DIRECTORY)) < 0) {
        printf("Bail out! temporary directory\n");
        return 1;
    }
    mkdirat(qfd, DEFER_LOG_DIR, 0700);
    path = xasprintf("%s/%s/%s", dir, DEFER_LOG_DIR, ID);

    is_int(defer_log_read(qfd, ID, geteuid(), &out, &n), 0, "no log yet: no error");
    is_int((int)n, 0, "and no entries");
    is_int(defer_log_write(qfd, ID, in, 2), 0, "write two entries");
    is_int(defer_log_read(qfd, ID, geteuid(), &out, &n), 0, "read them");
    is_int((int)n, 2, "two entries");
    if (n == 2) {
        is_str(out[0].text, in[0].text, "the first text as written");
        is_str(out[1].text, "tab?here and?newline", "tab and newline written as ?");
        is_str(out[1].dsn, "4.7.0", "the dsn");
    }
    f = defer_log_find(out, n, "ann@example.org");
    ok(f && strcmp(f->dsn, "4.7.0") == 0, "find by address");
    ok(defer_log_find(out, n, "bob@example.org") == NULL, "find: not there");
    defer_log_free(&out, n);
    ok(out == NULL, "free clears");

    is_int(defer_log_write(qfd, ID, in, 1), 0, "rewrite with one entry");
    defer_log_read(qfd, ID, geteuid(), &out, &n);
    is_int((int)n, 1, "the old content is gone");
    defer_log_free(&out, n);

    write_text(path, "no tabs here\njoe@x\t4.0.0\tok\n\tempty address\t\nlast\tline\twithout newline");
    defer_log_read(qfd, ID, geteuid(), &out, &n);
    is_int((int)n, 1, "lines that do not parse are skipped");
    defer_log_free(&out, n);

    defer_log_read(qfd, ID, geteuid() + 1, &out, &n);
    is_int((int)n, 0, "a log of another owner is not read");
    defer_log_free(&out, n);

    unlink(path);
    ok(symlink("/etc/passwd", path) == 0, "a symbolic link in place of the log");
    defer_log_read(qfd, ID, geteuid(), &out, &n);
    is_int((int)n, 0, "a symbolic link is not followed");
    defer_log_free(&out, n);

    is_int(defer_log_remove(qfd, ID), 0, "remove");
    ok(access(path, F_OK) < 0, "the file is gone");
    is_int(defer_log_remove(qfd, ID), 0, "removing a missing log is no error");
    defer_log_write(qfd, ID, in, 2);
    is_int(defer_log_write(qfd, ID, in, 0), 0, "writing no entries");
    ok(access(path, F_OK) < 0, "removes the log");

    close(qfd);
    {
        char *d = xasprintf("%s/%s", dir, DEFER_LOG_DIR);

        rmdir(d);
        free(d);
    }
    rmdir(dir);
    free(path);
    return done_testing();
}
