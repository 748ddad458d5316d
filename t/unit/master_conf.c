/*
 * t/unit/master_conf.c - unit tests for lib/master_conf.c (the master.conf
 * service table).
 *
 * Covers: a good file (comments, blank lines, continuation lines, '-'
 * defaults, every column, arguments with -o overrides) parsed into the
 * expected structs; every error with its FILE:LINE (the first line of a
 * continued entry); several bad entries in one file all reported; inet
 * name syntax ([host:]port, [ipv6]:port, port names and numbers); unix
 * names; duplicates; a missing file; an empty file; NULL errs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "master_conf.h"
#include "msg.h"
#include "xalloc.h"
#include "../lib/tap.h"
#include "../lib/testlib.h"

static char *dir, *path;
static buf_t *errs;

static struct master_conf *load(const char *text)
{
    write_text(path, text);
    buf_reset(errs);
    return master_conf_load(path, errs);
}

/* Load text, expect failure with exactly "PATH:LINE: msg\n". */
static void fails(const char *text, int line, const char *msg, const char *name)
{
    struct master_conf *mc = load(text);
    char *want = xasprintf("%s:%d: %s\n", path, line, msg);

    ok(mc == NULL, "%s: fails", name);
    is_str(buf_cstr(errs), want, "%s: message", name);
    free(want);
    master_conf_free(&mc);
}

/* Load one line, expect it to parse. */
static void parses(const char *text, const char *name)
{
    struct master_conf *mc = load(text);

    ok(mc != NULL && mc->nsvcs == 1, "%s: parses", name);
    if (mc == NULL)
        diag("  %s", buf_cstr(errs));
    master_conf_free(&mc);
}

static int argv_is(const struct master_svc *s, const char *const *want)
{
    int n = 0;

    for (; want[n]; n++)
        if (n >= s->argc || strcmp(s->argv[n], want[n]) != 0)
            return 0;
    return n == s->argc && s->argv[n] == NULL;
}

static void test_good(void)
{
    struct master_conf *mc = load(
        "# master.conf for the test\n"
        "  # an indented comment\n"
        "\n"
        "127.0.0.1:10025    inet  n       -      100     smtpd\n"
        "cleanup            unix  y       -      -       cleanup\n"
        "qmgr               unix  -       300    1       qmgr\n"
        "pickup             unix  n       60     0       pickup -v\n"
        "  -o max_use=5\n"
        "# a comment inside an entry\n"
        "\n"
        "\t-o max_idle=10s\n"
        "smtp               inet  -       -      -       smtpd\n"
        "[::1]:587\tinet\tn\t-\t-\tsubmission -o myhostname=$mydomain\n"
        "submission         inet  n       0      -       submission\n"
        "localhost:pop3s    inet  n  -  -  pop3d\n"
        "25                 unix  y       -      -       smtpd-helper\n"
        "[::]:imap          inet  n  -  2  imapd");   /* no final newline */
    const struct master_svc *s;

    ok(mc != NULL, "good file parses");
    is_str(buf_cstr(errs), "", "no errors");
    if (mc == NULL)
        return;
    is_str(mc->path, path, "path kept");
    is_int(mc->nsvcs, 10, "ten services");
    if (mc->nsvcs != 10) {
        master_conf_free(&mc);
        return;
    }
    s = &mc->svcs[0];
    is_str(s->name, "127.0.0.1:10025", "svc 0 name");
    is_int(s->type, MASTER_SVC_INET, "svc 0 inet");
    is_int(s->private_socket, 0, "svc 0 not private");
    is_int(s->wakeup, 0, "svc 0 wakeup '-' = 0");
    is_int(s->maxproc, 100, "svc 0 maxproc 100");
    ok(argv_is(s, (const char *const[]){"smtpd", NULL}), "svc 0 argv");
    is_int(s->line, 4, "svc 0 line");

    s = &mc->svcs[1];
    is_str(s->name, "cleanup", "svc 1 name");
    is_int(s->type, MASTER_SVC_UNIX, "svc 1 unix");
    is_int(s->private_socket, 1, "svc 1 private y");
    is_int(s->maxproc, -1, "svc 1 maxproc '-' = -1");
    is_int(s->line, 5, "svc 1 line");

    s = &mc->svcs[2];
    is_int(s->private_socket, 1, "svc 2 private '-' = y for unix");
    is_int(s->wakeup, 300, "svc 2 wakeup 300");
    is_int(s->maxproc, 1, "svc 2 maxproc 1");

    s = &mc->svcs[3];
    is_str(s->name, "pickup", "svc 3 name");
    is_int(s->private_socket, 0, "svc 3 public (n)");
    is_int(s->wakeup, 60, "svc 3 wakeup 60");
    is_int(s->maxproc, 0, "svc 3 maxproc 0 = unlimited");
    is_int(s->argc, 6, "svc 3 argc with continuation lines");
    ok(argv_is(s, (const char *const[]){"pickup", "-v", "-o", "max_use=5", "-o",
                                        "max_idle=10s", NULL}), "svc 3 argv joined");
    is_int(s->line, 7, "svc 3 line is its first line");

    s = &mc->svcs[4];
    is_str(s->name, "smtp", "svc 4 port name alone");
    is_int(s->private_socket, 0, "svc 4 inet '-' = not private");
    is_int(s->line, 12, "svc 4 line after the continued entry");

    s = &mc->svcs[5];
    is_str(s->name, "[::1]:587", "svc 5 IPv6");
    ok(argv_is(s, (const char *const[]){"submission", "-o", "myhostname=$mydomain", NULL}),
       "svc 5 argv, tabs as separators, $ value unchecked");
    is_str(mc->svcs[6].name, "submission", "same command, other service");
    is_int(mc->svcs[6].wakeup, 0, "wakeup 0");
    is_str(mc->svcs[7].name, "localhost:pop3s", "host:portname");
    is_str(mc->svcs[8].name, "25", "a unix service named 25");
    is_str(mc->svcs[8].argv[0], "smtpd-helper", "command with '-'");
    is_str(mc->svcs[9].name, "[::]:imap", "last entry without a newline");
    is_int(mc->svcs[9].maxproc, 2, "its maxproc");
    is_int(mc->svcs[9].line, 17, "its line");
    master_conf_free(&mc);
    ok(mc == NULL, "master_conf_free NULLs the pointer");
    master_conf_free(&mc);
}

static void test_last_entry(void)
{
    struct master_conf *mc = load("[::]:imap inet n - 2 imapd\n  -o max_use=3");

    ok(mc && mc->nsvcs == 1 && mc->svcs[0].argc == 3 && mc->svcs[0].maxproc == 2,
       "continued last entry without a newline");
    master_conf_free(&mc);
    mc = load("");
    ok(mc && mc->nsvcs == 0 && mc->svcs == NULL, "empty file: no services");
    master_conf_free(&mc);
    mc = load("# only comments\n\n");
    ok(mc && mc->nsvcs == 0, "only comments: no services");
    master_conf_free(&mc);
}

static void test_columns(void)
{
    fails("x\n", 1, "missing type column (expected: service type private wakeup maxproc"
          " command [args...])", "one column");
    fails("# c\nx unix y - -\n", 2, "missing command column (expected: service type private"
          " wakeup maxproc command [args...])", "five columns");
    fails("x unix y\n", 1, "missing wakeup column (expected: service type private wakeup"
          " maxproc command [args...])", "three columns");
    fails("x tcp y - - cmd\n", 1, "unknown service type 'tcp' (expected inet, unix or job)",
          "bad type");
    fails("x UNIX y - - cmd\n", 1, "unknown service type 'UNIX' (expected inet, unix or job)",
          "type is case-sensitive");
    fails("x unix q - - cmd\n", 1, "bad private column 'q' (expected y, n or -)", "bad private");
    fails("smtp inet y - - smtpd\n", 1,
          "private 'y' is not possible for inet service 'smtp' (use n or -)", "private inet");
    fails("x unix y soon - cmd\n", 1, "bad wakeup time 'soon' (expected seconds or -)",
          "bad wakeup");
    fails("x unix y -5 - cmd\n", 1, "bad wakeup time '-5' (expected seconds or -)",
          "negative wakeup");
    fails("x unix y 99999999999 - cmd\n", 1,
          "bad wakeup time '99999999999' (expected seconds or -)", "huge wakeup");
    fails("x unix y 10s - cmd\n", 1, "bad wakeup time '10s' (expected seconds or -)",
          "wakeup with a unit");
    fails("x unix y - many cmd\n", 1, "bad process limit 'many' (expected a number or -)",
          "bad maxproc");
    fails("x unix y - -1 cmd\n", 1, "bad process limit '-1' (expected a number or -)",
          "negative maxproc");
    fails("x unix y - - -\n", 1, "missing command ('-' is not a program name)", "command '-'");
    fails("x unix y - - /usr/sbin/cmd\n", 1, "bad command '/usr/sbin/cmd': a program name"
          " in daemon_directory, without '/'", "command with '/'");
    fails("x unix y - - ../cmd\n", 1, "bad command '../cmd': a program name"
          " in daemon_directory, without '/'", "command with ../");
    fails("x unix y - - ..\n", 1, "bad command '..': a program name"
          " in daemon_directory, without '/'", "command ..");
    parses("x unix y - - cmd /an/argument/with/slashes\n", "arguments may contain '/'");
}

static void test_names(void)
{
    fails("pri/vate unix y - - x\n", 1, "bad unix service name 'pri/vate': it names a socket"
          " in private/ or public/ (no '/', not . or ..)", "unix name with '/'");
    fails(".. unix y - - x\n", 1, "bad unix service name '..': it names a socket"
          " in private/ or public/ (no '/', not . or ..)", "unix name ..");
    parses("smtp:25 unix y - - x\n", "unix names are not inet syntax");

    parses("25 inet n - - smtpd\n", "port number");
    parses("65535 inet n - - smtpd\n", "port 65535");
    parses("submission inet n - - smtpd\n", "port name");
    parses("127.0.0.1:smtp inet n - - smtpd\n", "IPv4:name");
    parses("mail.example.org:2525 inet n - - smtpd\n", "host name:port");
    parses("[::]:25 inet n - - smtpd\n", "[::]:port");
    parses("[2001:db8::1]:smtp inet n - - smtpd\n", "[IPv6]:name");
#define BAD_INET(name, why) \
    "bad inet service '" name "': " why " (expected [host:]port or [ipv6-address]:port)"
    fails("0 inet n - - smtpd\n", 1, BAD_INET("0", "port number out of range 1..65535"),
          "port 0");
    fails("65536 inet n - - smtpd\n", 1, BAD_INET("65536", "port number out of range 1..65535"),
          "port 65536");
    fails("99999999999999 inet n - - smtpd\n", 1,
          BAD_INET("99999999999999", "port number out of range 1..65535"), "huge port");
    fails("sm+tp inet n - - smtpd\n", 1, BAD_INET("sm+tp", "bad character in the port name"),
          "bad port name");
    fails("host: inet n - - smtpd\n", 1, BAD_INET("host:", "missing port"), "missing port");
    fails(":25 inet n - - smtpd\n", 1, BAD_INET(":25", "empty host before ':'"), "empty host");
    fails("host_x:25 inet n - - smtpd\n", 1,
          BAD_INET("host_x:25", "bad character in the host name"), "bad host");
    fails("999.1.1.1:25 inet n - - smtpd\n", 1, BAD_INET("999.1.1.1:25", "bad IPv4 address"),
          "bad IPv4");
    fails("::1:25 inet n - - smtpd\n", 1,
          BAD_INET("::1:25", "an IPv6 address must be in brackets, as in [::1]:25"),
          "IPv6 without brackets");
    fails("[::1]25 inet n - - smtpd\n", 1, BAD_INET("[::1]25", "expected [ipv6-address]:port"),
          "no ':' after ']'");
    fails("[::1 inet n - - smtpd\n", 1, BAD_INET("[::1", "expected [ipv6-address]:port"),
          "no ']'");
    fails("[zz]:25 inet n - - smtpd\n", 1, BAD_INET("[zz]:25", "bad IPv6 address"),
          "bad IPv6");
    fails("[::1]: inet n - - smtpd\n", 1, BAD_INET("[::1]:", "missing port"),
          "IPv6 without a port");
    fails("[127.0.0.1]:25 inet n - - smtpd\n", 1, BAD_INET("[127.0.0.1]:25", "bad IPv6 address"),
          "IPv4 in brackets");
#undef BAD_INET
}

static void test_overrides(void)
{
    fails("x unix y - - cmd -o\n", 1, "'-o' must be followed by name=value", "-o at the end");
    fails("x unix y - - cmd -o =5\n", 1, "'-o' must be followed by name=value", "-o =5");
    fails("x unix y - - cmd -o max_use\n", 1, "'-o' must be followed by name=value",
          "-o without '='");
    fails("x unix y - - cmd\n  -o nosuch=1\n", 1, "unknown parameter 'nosuch' in '-o nosuch=1'",
          "-o unknown name");
    fails("x unix y - - cmd -o max_uses=1\n", 1, "unknown parameter 'max_uses' in"
          " '-o max_uses=1' (did you mean 'max_use'?)", "-o unknown name with a hint");
    fails("x unix y - - cmd -o max_use=abc\n", 1, "bad value 'abc' for max_use: expected a"
          " decimal number (in '-o max_use=abc')", "-o bad value");
    fails("x unix y - - cmd -o max_idle=2d\n", 1, "value 2d for max_idle is above the maximum"
          " 86400s (1d) (in '-o max_idle=2d')", "-o value out of bounds");
    parses("x unix y - - cmd -o max_use=$default_process_limit\n", "-o value with $name");
    parses("x unix y - - cmd -o relayhost=\n", "-o empty string value");
    parses("x unix y - - cmd -v -o max_use=3 -- -o\n", "-o after -- is not an option");
}

static void test_structure(void)
{
    struct master_conf *mc;
    char *want;

    fails("a unix y - - a\nb unix y - - b\na unix n - - c\n", 3,
          "duplicate service 'a' (unix), first defined at line 1", "duplicate");
    mc = load("25 inet n - - smtpd\n25 unix y - - x\n");
    ok(mc && mc->nsvcs == 2, "same name, other type is fine");
    master_conf_free(&mc);
    fails("smtp inet n - - smtpd\n\nsmtp inet n - - smtpd2\n", 3,
          "duplicate service 'smtp' (inet), first defined at line 1", "duplicate inet");

    fails("  x unix y - - cmd\n", 1, "continuation line (starting with white space) without"
          " a service line before it", "continuation first");
    fails("# comment\n\n\tx unix y - - cmd\n  more\ny unix y - - y\n", 3,
          "continuation line (starting with white space) without a service line before it",
          "continuation after comments");
    fails("a unix y - - a\nb unix y\n\n# c\n   soon - b\n", 2,
          "bad wakeup time 'soon' (expected seconds or -)",
          "error in a continued entry at its first line");

    /* Several bad entries: all reported, in order, and no table. */
    mc = load("a unix y - - a\n"
              "b tcp y - - b\n"
              "c unix y - - c\n"
              "d unix y x - d\n"
              "  -o max_use=1\n"
              "e unix y - - /e\n"
              "f unix y - - f\n");
    ok(mc == NULL, "several bad entries: fails");
    want = xasprintf("%s:2: unknown service type 'tcp' (expected inet, unix or job)\n"
                     "%s:4: bad wakeup time 'x' (expected seconds or -)\n"
                     "%s:6: bad command '/e': a program name in daemon_directory,"
                     " without '/'\n", path, path, path);
    is_str(buf_cstr(errs), want, "every bad entry reported once, with its line");
    free(want);

    mc = load("a unix y - - a\nb tcp y - - b\n");
    ok(mc == NULL, "errs may be NULL");
    master_conf_free(&mc);
    buf_reset(errs);
    mc = master_conf_load(path, NULL);
    ok(mc == NULL, "errs NULL: still fails");
    is_str(buf_cstr(errs), "", "nothing written");

    {
        char *missing = xasprintf("%s/nonexistent.conf", dir);

        buf_reset(errs);
        mc = master_conf_load(missing, errs);
        ok(mc == NULL, "missing file fails");
        want = xasprintf("%s: cannot open: %s\n", missing, strerror(ENOENT));
        is_str(buf_cstr(errs), want, "missing file message");
        free(want);
        free(missing);
    }
}

static void test_nul(void)
{
    static const char text[] = "a unix y - - a\nb unix y - - b\0c\n";
    FILE *fp = fopen(path, "w");
    struct master_conf *mc;
    char *want;

    if (fp == NULL || fwrite(text, 1, sizeof(text) - 1, fp) != sizeof(text) - 1 || fclose(fp))
        msg_fatal("write %s: %m", path);
    buf_reset(errs);
    mc = master_conf_load(path, errs);
    ok(mc == NULL, "a NUL byte fails");
    want = xasprintf("%s:2: NUL byte in the line\n", path);
    is_str(buf_cstr(errs), want, "NUL byte message");
    free(want);
}

static void test_long_line(void)
{
    buf_t *b = buf_new(0);
    struct master_conf *mc;

    buf_append_str(b, "x unix y - - cmd");
    for (int i = 0; i < 2000; i++)
        buf_printf(b, " arg%d", i);
    buf_append_str(b, "\n");
    for (int i = 0; i < 100; i++)
        buf_printf(b, "  more%d\n", i);
    mc = load(buf_cstr(b));
    ok(mc && mc->nsvcs == 1 && mc->svcs[0].argc == 2101, "a long entry: 2101 arguments");
    ok(mc && strcmp(mc->svcs[0].argv[2100], "more99") == 0 && mc->svcs[0].argv[2101] == NULL,
       "last argument and NULL");
    master_conf_free(&mc);
    buf_free(&b);
}

/* Jobs: a period, one at a time, no socket, a program without '/'. */
static void test_jobs(void)
{
    struct master_conf *mc = load("dmarcreport job - 86400 1 mailctl dmarc report\n"
                                  "hourly job - 3600 - mailctl -v dmarc report -n\n"
                                  "dmarcreport unix y - - cleanup\n");

    ok(mc != NULL && mc->nsvcs == 3, "two jobs and a unix service of a job's name parse");
    if (mc && mc->nsvcs == 3) {
        const char *const want[] = {"mailctl", "dmarc", "report", NULL};
        const char *const want2[] = {"mailctl", "-v", "dmarc", "report", "-n", NULL};

        is_int(mc->svcs[0].type, MASTER_SVC_JOB, "  type job");
        is_int(mc->svcs[0].wakeup, 86400, "  its period");
        is_int(mc->svcs[0].maxproc, 1, "  one at a time");
        ok(argv_is(&mc->svcs[0], want), "  its command");
        is_int(mc->svcs[1].maxproc, 1, "  '-' is one at a time too");
        ok(argv_is(&mc->svcs[1], want2), "  arguments like -v and -n are the job's own");
        is_str(master_svc_type_name(mc->svcs[0].type), "job", "  named job");
    }
    master_conf_free(&mc);
    fails("j job - - 1 mailctl\n", 1, "job 'j': the wakeup column must be its period in"
          " seconds (more than 0), not '-'", "a job without a period");
    fails("j job - 0 1 mailctl\n", 1, "job 'j': the wakeup column must be its period in"
          " seconds (more than 0), not '0'", "a job of period 0");
    fails("j job y 60 1 mailctl\n", 1, "job 'j': the private column must be '-' (a job has"
          " no socket)", "a private job");
    fails("j job - 60 2 mailctl\n", 1, "job 'j': the process limit must be '-' or 1 (a job"
          " never runs twice at once), not '2'", "a job of two processes");
    fails("j job - 60 1 /usr/sbin/mailctl\n", 1, "bad command '/usr/sbin/mailctl': a program"
          " name in command_directory, without '/'", "a job's program with a path");
    fails("a/b job - 60 1 mailctl\n", 1, "bad job name 'a/b' (no '/', not . or ..)",
          "a job's name with '/'");
    fails("j job - 60 1 mailctl\nj job - 70 1 mailctl\n", 2,
          "duplicate service 'j' (job), first defined at line 1", "a job twice");
}

int main(void)
{
    char tmpl[] = "/tmp/posthorn-mconf.XXXXXX";

    msg_init("master_conf.t", MSG_STDERR);
    if ((dir = mkdtemp(tmpl)) == NULL)
        msg_fatal("mkdtemp: %m");
    path = xasprintf("%s/master.conf", dir);
    errs = buf_new(0);

    test_good();
    test_last_entry();
    test_columns();
    test_names();
    test_overrides();
    test_structure();
    test_nul();
    test_long_line();
    test_jobs();

    unlink(path);
    rmdir(dir);
    free(path);
    buf_free(&errs);
    return done_testing();
}
