/*
 * t/unit/conf.c - unit tests for lib/conf.c with the real parameter table
 * (lib/conf_table.c).
 *
 * Covers: defaults and the computed myhostname/mydomain, file syntax
 * (spacing, comments, continuation lines, last value wins, lines without
 * '='), $name / ${name} / $$ expansion, unknown names with their line
 * numbers and "did you mean" hints, expansion loops and the depth and length
 * limits, bad values and bounds of each type used by the table, errors
 * sorted by line, a missing main.conf, conf_set() overrides (checked,
 * reverted on error), conf_is_default, conf_split, conf_dump in both modes,
 * reloads resetting values, and the panics/fatals of the getters (in a
 * child process).  Types and cases the real table cannot show (BOOL,
 * negative bounds, failing defaults) are in t/unit/conf_types.c.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "msg.h"
#include "xalloc.h"
#include "../lib/tap.h"
#include "../lib/testlib.h"

static char *dir;           /* the test's config directory */
static buf_t *errs;

static void write_file(const char *name, const char *text)
{
    char *path = xasprintf("%s/%s", dir, name);

    write_text(path, text);
    free(path);
}

/* Write main.conf and load it; errs holds the messages. */
static int load(const char *text)
{
    write_file("main.conf", text);
    buf_reset(errs);
    return conf_load(dir, errs);
}

/* Load text, expect exactly one error line containing want. */
static void load_fails(const char *text, const char *want, const char *name)
{
    int rc = load(text);

    is_int(rc, -1, "%s: conf_load fails", name);
    like(buf_cstr(errs), want, "%s: message", name);
    is_int(count_lines(buf_cstr(errs)), 1, "%s: exactly one error", name);
}

static char *expect_at(int line, const char *msg)
{
    return xasprintf("%s/main.conf:%d: %s", dir, line, msg);
}

static void load_fails_at(const char *text, int line, const char *msg, const char *name)
{
    char *want = expect_at(line, msg);

    load_fails(text, want, name);
    free(want);
}

static void test_defaults(void)
{
    char host[256] = "";

    is_int(load(""), 0, "empty main.conf loads");
    is_str(buf_cstr(errs), "", "no errors");
    is_str(conf_str("queue_directory"), "/var/spool/posthorn", "queue_directory default");
    is_str(conf_str("config_directory"), dir, "config_directory is the loaded directory");
    is_str(conf_confdir(), dir, "conf_confdir()");
    ok(conf_is_default("config_directory"), "config_directory counts as default");
    is_int(conf_int("max_use"), 1000, "max_use default");
    is_int(conf_int("default_process_limit"), 100, "default_process_limit default");
    is_int(conf_time("max_idle"), 100, "max_idle default 100s");
    is_int(conf_time("service_throttle_time"), 60, "service_throttle_time default 60s");
    is_int(conf_size("message_size_limit"), 10240000, "message_size_limit default");
    is_str(conf_str("relayhost"), "", "relayhost default empty");
    is_str(conf_str("smtpd_tls_key_file"), "", "key file defaults to the (empty) cert file");
    ok(conf_is_default("max_use"), "max_use is default");
    ok(conf_find("max_use") != NULL && conf_find("max_use")->type == CONF_INT, "conf_find");
    ok(conf_find("nosuch") == NULL, "conf_find of an unknown name");

    /* Computed: the system host name, and its domain or localdomain. */
    if (gethostname(host, sizeof(host) - 1) < 0 || host[0] == '\0')
        strcpy(host, "localhost");
    is_str(conf_str("myhostname"), host, "myhostname defaults to the host name");
    if (strchr(host, '.') && strchr(host, '.')[1])
        is_str(conf_str("mydomain"), strchr(host, '.') + 1, "mydomain from the host name");
    else
        is_str(conf_str("mydomain"), "localdomain", "mydomain of a short host name");
    is_str(conf_str("myorigin"), host, "myorigin = $myhostname");
    ok(conf_is_default("myhostname") && conf_is_default("mydomain"), "computed are default");
}

static void test_computed(void)
{
    is_int(load("myhostname = mail.example.org\n"), 0, "load myhostname");
    is_str(conf_str("mydomain"), "example.org", "mydomain follows myhostname");
    is_str(conf_str("mydestination"), "mail.example.org, localhost.example.org, localhost",
           "mydestination default expands both");
    ok(!conf_is_default("myhostname"), "myhostname set");
    ok(conf_is_default("mydomain"), "mydomain still default");

    is_int(load("myhostname = gateway\n"), 0, "load short myhostname");
    is_str(conf_str("mydomain"), "localdomain", "mydomain of a short name");
    is_int(load("myhostname = trailing.\n"), 0, "load myhostname with a trailing dot");
    is_str(conf_str("mydomain"), "localdomain", "nothing after the dot: localdomain");

    is_int(load("mydomain = example.net\nmyhostname = mx.$mydomain\n"), 0,
           "myhostname from an explicit mydomain");
    is_str(conf_str("myhostname"), "mx.example.net", "myhostname = mx.$mydomain");
    is_str(conf_str("mydomain"), "example.net", "mydomain as set");

    /* myhostname = $mydomain while mydomain is computed from myhostname. */
    load_fails_at("myhostname = x.$mydomain\n", 1, "expansion loop at $mydomain in the"
                  " value of myhostname (myhostname -> mydomain -> myhostname)",
                  "loop through a computed default");
}

static void test_syntax(void)
{
    is_int(load("max_use=5\n"), 0, "no spaces around '='");
    is_int(conf_int("max_use"), 5, "value read");
    is_int(load("max_use   =\t 7 \t\n"), 0, "spaces and tabs around '=' and value");
    is_int(conf_int("max_use"), 7, "value trimmed");
    is_int(load("max_use\t=6\r\n"), 0, "CRLF line end");
    is_int(conf_int("max_use"), 6, "CR trimmed");
    is_int(load("relayhost =\n"), 0, "empty value");
    is_str(conf_str("relayhost"), "", "empty value read");
    ok(!conf_is_default("relayhost"), "an empty value is still set");
    is_int(load("relayhost = a = b\n"), 0, "'=' inside the value");
    is_str(conf_str("relayhost"), "a = b", "only the first '=' separates");
    is_int(load("relayhost = a # not a comment\n"), 0, "'#' after text");
    is_str(conf_str("relayhost"), "a # not a comment", "is part of the value");

    is_int(load("# comment\n\n   \n  # indented comment\nmax_use = 9\n#last"), 0,
           "comments and blank lines");
    is_int(conf_int("max_use"), 9, "value after comments, no final newline");

    is_int(load("max_use = 5\nmax_use = 6\n"), 0, "a name twice");
    is_int(conf_int("max_use"), 6, "last value wins");
    is_int(load("max_use = bad\nmax_use = 6\n"), 0, "an overridden bad value");
    is_int(conf_int("max_use"), 6, "is never checked");

    is_int(load("mydestination = a,\n  b,\n# between\n\n\tc\nrelayhost = r\n"), 0,
           "continuation lines");
    is_str(conf_str("mydestination"), "a, b, c", "joined with one space");
    is_str(conf_str("relayhost"), "r", "next entry after continuation");

    load_fails_at("max_use = 5\njust some words\n", 2, "expected 'name = value'",
                  "line without '='");
    load_fails_at("\n= value\n", 2, "expected 'name = value'", "line without a name");
    load_fails_at("max use = 5\n", 1, "expected 'name = value'", "name with a space");
    load_fails_at("  max_use = 5\n", 1, "continuation line", "continuation at the start");
    load_fails_at("# c\n\n  max_use = 5\n  more\nrelayhost = x\n", 3,
                  "continuation line (starting with white space) without a"
                  " 'name = value' line before it", "continuation after comments only");
}

static void test_unknown(void)
{
    load_fails_at("max_use = 5\n\nbogus = 1\n", 3, "unknown parameter 'bogus'", "unknown name");
    load_fails_at("myhostnme = x\n", 1, "unknown parameter 'myhostnme' (did you mean"
                  " 'myhostname'?)", "did you mean");
    load(" \nrelay_host = x\n");
    like(buf_cstr(errs), "did you mean 'relayhost'?", "hint for relay_host");
    load("zzz = x\n");
    ok(strstr(buf_cstr(errs), "did you mean") == NULL, "no hint for a distant name");
    like(buf_cstr(errs), "unknown parameter 'zzz'\n", "plain message");

    is_int(load("bogus = 1\nmax_use = 0\nother = 2\nmax_idle = x\n"), -1, "several errors");
    is_int(count_lines(buf_cstr(errs)), 4, "all four reported");
    {
        const char *e = buf_cstr(errs);
        char *l2 = expect_at(2, "value 0"), *l3 = expect_at(3, "unknown");
        const char *p2 = strstr(e, l2), *p3 = strstr(e, l3);

        ok(p2 && p3 && p2 < p3, "errors sorted by line");
        free(l2);
        free(l3);
    }
}

static void test_nul_and_suggest(void)
{
    static const char text[] = "relayhost = x\nmax_use = 5\0junk\n  more\n";
    char *path = xasprintf("%s/main.conf", dir);
    FILE *fp = fopen(path, "w");

    if (fp == NULL || fwrite(text, 1, sizeof(text) - 1, fp) != sizeof(text) - 1 || fclose(fp))
        msg_fatal("write %s: %m", path);
    buf_reset(errs);
    is_int(conf_load(dir, errs), -1, "a NUL byte in main.conf");
    like(buf_cstr(errs), "main.conf:2: NUL byte in the line", "NUL byte message");

    /* Found by t/fuzz/cfgfile: a line that starts with a NUL used to be
     * skipped as blank, so main.conf loaded without a word. */
    {
        static const char lead[] = "relayhost = x\n\0max_use = 5\n";

        if ((fp = fopen(path, "w")) == NULL
            || fwrite(lead, 1, sizeof(lead) - 1, fp) != sizeof(lead) - 1 || fclose(fp))
            msg_fatal("write %s: %m", path);
        buf_reset(errs);
        is_int(conf_load(dir, errs), -1, "a line starting with a NUL byte in main.conf");
        like(buf_cstr(errs), "main.conf:2: NUL byte in the line", "... is reported at its line");
    }
    free(path);

    is_str(conf_suggest("mydomian"), "mydomain", "conf_suggest: transposition");
    is_str(conf_suggest("max_uses"), "max_use", "conf_suggest: one extra letter");
    is_str(conf_suggest("queue_dir"), NULL, "conf_suggest: too far");
    is_str(conf_suggest(""), NULL, "conf_suggest: empty");
    is_str(conf_suggest("ma"), NULL, "conf_suggest: too short to guess");
}

static void test_expansion(void)
{
    is_int(load("queue_directory = /q\nmaillog_file = $queue_directory/log\n"
                "relayhost = [${myhostname}]:25\nmyhostname = h.example\n"
                "alias_maps = $$literal ${queue_directory}x $${x} $$$queue_directory\n"),
           0, "expansions load");
    is_str(conf_str("maillog_file"), "/q/log", "$name");
    is_str(conf_str("relayhost"), "[h.example]:25", "${name}, forward reference");
    is_str(conf_str("alias_maps"), "$literal /qx ${x} $/q", "$$ is a literal $");
    is_str(conf_str("smtpd_tls_key_file"), "", "default referring to a default");
    is_int(load("smtpd_tls_cert_file = /c.pem\n"), 0, "cert file set");
    is_str(conf_str("smtpd_tls_key_file"), "/c.pem", "key file follows it");

    load_fails_at("max_use = 5\nrelayhost = $nosuch\n", 2,
                  "unknown parameter '$nosuch' in the value of relayhost", "unknown $name");
    load_fails_at("relayhost = ${relay_host}\n", 1,
                  "unknown parameter '$relay_host' (did you mean '$relayhost'?)",
                  "unknown ${name} with hint");
    load_fails_at("myorigin = $relayhost\n\n\n\nrelayhost = x$nosuch\n", 5,
                  "unknown parameter '$nosuch'", "error at the line that uses the name");
    load_fails_at("relayhost = a$\n", 1, "bad '$' in the value of relayhost", "bare $ at end");
    load_fails("relayhost = a$ b\n", "(write $$ for a literal '$')", "$ before a space");
    load_fails_at("relayhost = ${myhostname\n", 1, "missing '}' after '${myhostname'",
                  "unclosed ${");
    load_fails_at("relayhost = ${}\n", 1, "bad parameter reference '${}'", "empty ${}");
    load_fails_at("relayhost = ${my-host}\n", 1, "bad parameter reference", "bad ${name}");

    load_fails_at("relayhost = $relayhost\n", 1,
                  "expansion loop at $relayhost in the value of relayhost"
                  " (relayhost -> relayhost)",
                  "self reference");
    load_fails_at("max_use = 1\nmyorigin = $relayhost\nrelayhost = $myorigin\n", 3,
                  "expansion loop at $myorigin in the value of relayhost"
                  " (relayhost -> myorigin -> relayhost)", "two-parameter loop");
    load_fails_at("relayhost = x\nmyhostname = $myorigin\n", 2, "expansion loop at $myorigin"
                  " in the value of myhostname (myhostname -> myorigin -> myhostname)",
                  "loop through a default: reported at the file line");
    load_fails_at("maillog_file = $home_mailbox\nhome_mailbox = ${alias_maps}\n"
                  "alias_maps = x$maillog_file\n", 3, "expansion loop at $maillog_file in the"
                  " value of alias_maps (alias_maps -> maillog_file -> home_mailbox ->"
                  " alias_maps)", "three-parameter loop");
}

/* A chain of n parameters, each the next's value; the last is "5". */
static char *chain(size_t n, const char *const *names)
{
    buf_t *b = buf_new(0);
    char *s;

    for (size_t i = 0; i + 1 < n; i++)
        buf_printf(b, "%s = $%s\n", names[i], names[i + 1]);
    buf_printf(b, "%s = 5\n", names[n - 1]);
    s = buf_steal(b, NULL);
    buf_free(&b);
    return s;
}

static void test_limits(void)
{
    const char **names = xcalloc(conf_nparams, sizeof(*names));
    size_t nstr = 0, nnames = 0;
    char *text;
    buf_t *b;

    /* Every parameter (but config_directory, which main.conf cannot set)
     * in one chain is deeper than 20 levels. */
    for (size_t i = 0; i < conf_nparams; i++)
        if (strcmp(conf_params[i].name, "config_directory") != 0)
            names[nnames++] = conf_params[i].name;
    ok(nnames > 22, "the table is big enough for a deep chain");
    nnames = 22;                /* deeper than 20, and only one error */
    text = chain(nnames, names);
    is_int(load(text), -1, "a chain of %zu parameters fails", nnames);
    like(buf_cstr(errs), "nests deeper than 20 levels", "depth limit");
    is_int(count_lines(buf_cstr(errs)), 1, "one error");
    if (count_lines(buf_cstr(errs)) != 1)
        diag("%s", buf_cstr(errs));
    free(text);
    text = chain(10, names);
    is_int(load(text), 0, "a chain of 10 is fine");
    is_str(conf_str(names[0]), "5", "and expands to the end");
    is_int(conf_int("max_use"), 1000, "untouched parameters keep defaults");
    free(text);

    /* Doubling through 20 string parameters exceeds the 1 MB value cap. */
    for (size_t i = 0; i < conf_nparams; i++)
        if (conf_params[i].type == CONF_STR && strcmp(conf_params[i].name, "config_directory") != 0)
            names[nstr++] = conf_params[i].name;
    if (nstr > 18)
        nstr = 18;              /* shallower than the depth limit */
    b = buf_new(0);
    for (size_t i = 0; i + 1 < nstr; i++)
        buf_printf(b, "%s = $%s$%s\n", names[i], names[i + 1], names[i + 1]);
    buf_printf(b, "%s = 0123456789abcdef\n", names[nstr - 1]);
    diag("%zu string parameters, %zu bytes at the top", nstr, (size_t)16 << (nstr - 1));
    is_int(load(buf_cstr(b)), nstr >= 18 ? -1 : 0, "exponential expansion is capped");
    if (nstr >= 18)
        like(buf_cstr(errs), "bytes after expansion", "too long message");
    buf_free(&b);
    free(names);
}

static void test_values(void)
{
    load_fails_at("\nmax_use = abc\n", 2,
                  "bad value 'abc' for max_use: expected a decimal number", "bad int");
    load_fails_at("max_use = 12abc\n", 1, "bad value '12abc'", "int with trailing text");
    load_fails_at("max_use = 1.5\n", 1, "bad value '1.5'", "int with a fraction");
    load_fails_at("max_use =\n", 1, "bad value '' for max_use", "empty int");
    load_fails_at("a = b\n", 1, "unknown parameter 'a'", "unknown short name");
    load_fails_at("max_use = 0\n", 1, "value 0 for max_use is below the minimum 1", "int below");
    load_fails_at("max_use = -3\n", 1, "value -3 for max_use is below the minimum 1",
                  "negative int");
    load_fails_at("default_process_limit = 100001\n", 1,
                  "value 100001 for default_process_limit is above the maximum 100000",
                  "int above");
    load_fails_at("max_use = 99999999999999999999999\n", 1, "value 99999999999999999999999"
                  " for max_use is above the maximum 2147483647", "int overflow");
    is_int(load("default_process_limit = 0\nmax_use = 2147483647\n"), 0, "int at the bounds");
    is_int(conf_int("max_use"), INT_MAX, "max_use at INT_MAX");
    is_int(conf_int("default_process_limit"), 0, "lower bound 0");
    is_int(load("max_use = +12\n"), 0, "int with a + sign");
    is_int(conf_int("max_use"), 12, "+12");

    is_int(load("max_idle = 90\nservice_throttle_time = 2h\n"
                "master_stop_timeout = 3m\n"), 0, "times with units");
    is_int(conf_time("max_idle"), 90, "bare number is seconds");
    is_int(conf_time("service_throttle_time"), 7200, "2h");
    is_int(conf_time("master_stop_timeout"), 180, "3m");
    is_int(load("master_stop_timeout = 10S\n"), 0, "an upper-case unit");
    is_int(conf_time("master_stop_timeout"), 10, "10S (upper-case unit)");
    is_int(load("max_idle = 1d\n"), 0, "1d is the maximum of max_idle");
    is_int(conf_time("max_idle"), 86400, "1d");
    load_fails_at("max_idle = 5x\n", 1, "bad value '5x' for max_idle: expected a time", "bad time unit");
    load_fails_at("max_idle = 5 m\n", 1, "bad value '5 m'", "space before the unit");
    load_fails_at("max_idle = m\n", 1, "bad value 'm'", "unit without a number");
    load_fails_at("max_idle = 5ms\n", 1, "bad value '5ms'", "two-letter unit");
    load_fails_at("max_idle = 2d\n", 1, "value 2d for max_idle is above the maximum 86400s (1d)",
                  "time above");
    load_fails_at("\n\nmaster_stop_timeout = 1w\n", 3,
                  "value 1w for master_stop_timeout is above the maximum 600s (10m)", "1w above");
    load_fails_at("max_idle = 0\n", 1, "value 0 for max_idle is below the minimum 1s",
                  "time below");
    load_fails_at("max_idle = 99999999999999999w\n", 1, "value 99999999999999999w for"
                  " max_idle is above the maximum", "time overflow");

    is_int(load("message_size_limit = 10m\n"), 0, "size with m");
    is_int(conf_size("message_size_limit"), 10 << 20, "10m = 10 MiB");
    is_int(load("message_size_limit = 4K\n"), 0, "size with K");
    is_int(conf_size("message_size_limit"), 4096, "4K");
    is_int(load("message_size_limit = 2g\n"), 0, "size with g");
    is_int(conf_size("message_size_limit"), 2LL << 30, "2g");
    is_int(load("message_size_limit = 0\n"), 0, "size 0 (no limit)");
    is_int(conf_size("message_size_limit"), 0, "0");
    load_fails_at("\n\n\nmessage_size_limit = 10mb\n", 4,
                  "bad value '10mb' for message_size_limit: expected a size such as"
                  " 10240000 or 10m", "bad size");
    load_fails_at("message_size_limit = -1\n", 1, "bad value '-1'", "negative size");
    load_fails_at("message_size_limit = 1025g\n", 1,
                  "value 1025g for message_size_limit is above the maximum 1099511627776"
                  " (1024g)", "size above");

    /* The value checked is the expanded one, at the line that set it. */
    load_fails_at("relayhost = abc\n\nmax_use = $relayhost\n", 3,
                  "bad value 'abc' for max_use", "bad value after expansion");
    is_int(load("relayhost = 3\nmax_use = ${relayhost}0\n"), 0, "number built by expansion");
    is_int(conf_int("max_use"), 30, "30");

    /* Continuation: the error is at the first line of the entry. */
    load_fails_at("relayhost = x\nmax_use =\n   abc\n", 2, "bad value 'abc'",
                  "error in a continued entry");
    load_fails_at("relayhost = x\nmax_use =\n  1\n\n  0\n", 2, "bad value '1 0'",
                  "continued value is joined");
}

static void test_missing(void)
{
    char *sub = xasprintf("%s/empty", dir), *want;

    if (mkdir(sub, 0700) < 0)
        msg_fatal("mkdir %s: %m", sub);
    buf_reset(errs);
    is_int(conf_load(sub, errs), -1, "a missing main.conf fails");
    want = xasprintf("%s/main.conf: cannot open: %s\n", sub, strerror(ENOENT));
    is_str(buf_cstr(errs), want, "message names the file and the reason");
    is_str(conf_str("config_directory"), sub, "config_directory set anyway");
    is_int(conf_int("max_use"), 1000, "defaults usable");
    free(want);
    want = xasprintf("%s/", dir);
    write_file("main.conf", "bogus = 1\n");
    buf_reset(errs);
    is_int(conf_load(want, errs), -1, "load with a trailing slash");
    like(buf_cstr(errs), "/main.conf:1:", "path in the message");
    ok(strstr(buf_cstr(errs), "//main.conf") == NULL, "without a double slash");
    is_str(conf_confdir(), want, "conf_confdir as given");
    free(want);
    rmdir(sub);
    free(sub);
}

static void test_set(void)
{
    is_int(load("max_use = 5\nmyhostname = a.example\n"), 0, "load for conf_set");
    buf_reset(errs);
    is_int(conf_set("max_use", " 7 ", "-o", errs), 0, "conf_set a good value");
    is_int(conf_int("max_use"), 7, "new value");
    is_str(buf_cstr(errs), "", "no error");
    is_int(conf_set("relayhost", "[$myhostname]", NULL, errs), 0, "conf_set with $name");
    is_str(conf_str("relayhost"), "[a.example]", "expanded");
    ok(!conf_is_default("relayhost"), "conf_set makes it non-default");
    is_int(conf_set("myhostname", "b.example.com", "-o", errs), 0, "conf_set myhostname");
    is_str(conf_str("mydomain"), "example.com", "computed mydomain recomputed");
    is_str(conf_str("relayhost"), "[b.example.com]", "dependent value follows");

    is_int(conf_set("max_use", "x", "smtpd -o", errs), -1, "conf_set a bad value");
    is_str(buf_cstr(errs), "smtpd -o: bad value 'x' for max_use: expected a decimal number\n",
           "error with the origin");
    is_int(conf_int("max_use"), 7, "old value kept");
    buf_reset(errs);
    is_int(conf_set("max_use", "0", NULL, errs), -1, "conf_set out of bounds");
    is_str(buf_cstr(errs), "command line: value 0 for max_use is below the minimum 1\n",
           "default origin is 'command line'");
    buf_reset(errs);
    is_int(conf_set("nosuch", "1", "-o", errs), -1, "conf_set an unknown name");
    is_str(buf_cstr(errs), "-o: unknown parameter 'nosuch'\n", "unknown name message");
    buf_reset(errs);
    is_int(conf_set("relayhost", "$nosuch", "-o", errs), -1, "conf_set with an unknown $name");
    like(buf_cstr(errs), "-o: unknown parameter '$nosuch' in the value of relayhost",
         "unknown $name message");
    is_str(conf_str("relayhost"), "[b.example.com]", "old value kept");
    buf_reset(errs);
    is_int(conf_set("relayhost", "$max_use", "-o", errs), 0, "set relayhost = $max_use");
    is_int(conf_set("max_use", "$relayhost", "-o", errs), -1, "conf_set making a loop");
    like(buf_cstr(errs), "expansion loop", "loop message");
    is_int(conf_int("max_use"), 7, "old value kept");
    is_str(conf_str("relayhost"), "7", "dependent value kept");
    buf_reset(errs);
    is_int(conf_set("max_use", "8", "-o", NULL), 0, "conf_set with NULL errs");
    is_int(conf_int("max_use"), 8, "applied");

    /* A reload forgets conf_set() and main.conf values. */
    is_int(load("relayhost = r\n"), 0, "reload");
    is_int(conf_int("max_use"), 1000, "max_use back to its default");
    ok(conf_is_default("max_use"), "and default");
    is_str(conf_str("relayhost"), "r", "relayhost from the new file");
    is_int(load(""), 0, "reload an empty file");
    ok(conf_is_default("relayhost"), "relayhost default again");
    is_str(conf_str("relayhost"), "", "and empty");
}

static void test_split(void)
{
    char **l = conf_split(" a, b,,c  d\n\te ,");

    is_str(l[0], "a", "split 0");
    is_str(l[1], "b", "split 1");
    is_str(l[2], "c", "split 2");
    is_str(l[3], "d", "split 3");
    is_str(l[4], "e", "split 4");
    ok(l[5] == NULL, "NULL terminated, empty items dropped");
    conf_split_free(&l);
    ok(l == NULL, "conf_split_free NULLs the pointer");
    conf_split_free(&l);
    l = conf_split("");
    ok(l && l[0] == NULL, "empty string: empty list");
    conf_split_free(&l);
    l = conf_split(" , ,\t");
    ok(l && l[0] == NULL, "only separators: empty list");
    conf_split_free(&l);
    l = conf_split("one");
    ok(l[0] && strcmp(l[0], "one") == 0 && l[1] == NULL, "one item");
    conf_split_free(&l);
    {
        buf_t *b = buf_new(0);
        int good = 1;

        for (int i = 0; i < 100; i++)
            buf_printf(b, "item%d,", i);
        l = conf_split(buf_cstr(b));
        for (int i = 0; i < 100; i++) {
            char want[16];

            snprintf(want, sizeof(want), "item%d", i);
            good &= l[i] && strcmp(l[i], want) == 0;
        }
        ok(good && l[100] == NULL, "100 items");
        conf_split_free(&l);
        buf_free(&b);
    }
    is_int(load("mydestination = $myhostname,localhost.$mydomain\n  other\n"
                "myhostname = h.d\n"), 0, "load a list");
    l = conf_split(conf_str("mydestination"));
    ok(l[0] && l[1] && l[2] && !l[3] && strcmp(l[1], "localhost.d") == 0, "split a list value");
    conf_split_free(&l);
}

static char *dump(enum conf_dump_mode mode)
{
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);

    conf_dump(fp, mode);
    fclose(fp);
    return text;
}

static void test_dump(void)
{
    char *text, *want, *line, *save = NULL, *prev = NULL;
    int n = 0, sorted = 1;

    is_int(load("myorigin = $mydomain\nmax_use = 5\nrelayhost =\n"
                "mydestination = a,\n  b\nmyhostname = h.example\n"), 0, "load for dump");
    text = dump(CONF_DUMP_CHANGED);
    is_str(text, "max_use = 5\nmydestination = a, b\nmyhostname = h.example\n"
           "myorigin = $mydomain\nrelayhost =\n", "non-defaults: sorted, raw values");
    free(text);
    buf_reset(errs);
    conf_set("max_idle", "5m", "-o", errs);
    text = dump(CONF_DUMP_CHANGED);
    like(text, "max_idle = 5m\n", "conf_set values are non-default");
    free(text);

    text = dump(CONF_DUMP_ALL);
    want = xasprintf("config_directory = %s\n", dir);
    like(text, want, "config_directory in the full dump");
    free(want);
    like(text, "mydomain = example\n", "computed default shown by value");
    like(text, "smtpd_tls_key_file = $smtpd_tls_cert_file\n", "raw default");
    like(text, "max_use = 5\n", "set values too");
    like(text, "maillog_file =\n", "empty default");
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (prev && strcmp(prev, line) >= 0)
            sorted = 0;
        prev = line;
        n++;
    }
    is_int(n, conf_nparams, "one line per parameter");
    ok(sorted, "sorted by name");
    free(text);

    text = dump(CONF_DUMP_DEFAULTS);
    like(text, "max_use = 1000\n", "defaults dump ignores main.conf");
    like(text, "myorigin = $myhostname\n", "defaults dump shows the raw default");
    free(text);

    buf_reset(errs);
    is_int(conf_set("myhostname", "a\nb", "-o", errs), -1, "conf_set refuses a line break");
    like(buf_cstr(errs), "-o: the value of myhostname contains a line break", "and says so");

    is_int(load("config_directory = /elsewhere\n"), -1, "config_directory in main.conf is refused");
    like(buf_cstr(errs), "main.conf:1: config_directory cannot be set in main.conf",
         "with a FILE:LINE message");

    is_int(load(""), 0, "load empty");
    text = dump(CONF_DUMP_CHANGED);
    is_str(text, "", "no non-defaults");
    free(text);
}

static void test_dollar_confdir(void)
{
    char tmpl[] = "/tmp/conf$dir.XXXXXX";
    char *saved = dir;

    if (mkdtemp(tmpl) == NULL)
        msg_fatal("mkdtemp: %m");
    dir = tmpl;
    is_int(load("queue_directory = $config_directory/q\n"), 0, "a '$' in the config directory");
    is_str(conf_str("config_directory"), tmpl, "taken literally");
    {
        char *want = xasprintf("%s/q", tmpl);

        is_str(conf_str("queue_directory"), want, "and when expanded elsewhere");
        free(want);
    }
    {
        char *path = xasprintf("%s/main.conf", tmpl);

        unlink(path);
        free(path);
    }
    rmdir(tmpl);
    dir = saved;
}

static void read_unknown(void) { (void)conf_str("no_such_parameter"); }
static void int_of_time(void) { (void)conf_int("max_idle"); }
static void read_bad(void) { (void)conf_int("max_use"); }
static void read_loop(void) { (void)conf_str("myorigin"); }

static void test_getter_failures(void)
{
    buf_t *out = buf_new(0);
    int st;

    st = in_child(read_unknown, out);
    ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "unknown name in a getter panics");
    like(buf_cstr(out), "panic: conf_str: unknown parameter 'no_such_parameter'", "panic text");
    buf_reset(out);
    st = in_child(int_of_time, out);
    ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "type mismatch in a getter panics");
    buf_reset(out);

    is_int(load("max_use = nope\n"), -1, "load a bad value");
    st = in_child(read_bad, out);
    ok(WIFEXITED(st) && WEXITSTATUS(st) == 1, "reading it anyway is fatal");
    like(buf_cstr(out), "fatal: ", "fatal");
    like(buf_cstr(out), "main.conf:1: bad value 'nope' for max_use", "with the load message");
    buf_reset(out);
    is_int(load("myorigin = $relayhost\nrelayhost = $myorigin\n"), -1, "load a loop");
    st = in_child(read_loop, out);
    ok(WIFEXITED(st) && WEXITSTATUS(st) == 1, "reading a looping value is fatal");
    like(buf_cstr(out), "main.conf:2: expansion loop", "with the load message");
    buf_free(&out);
}

int main(void)
{
    char tmpl[] = "/tmp/posthorn-conf.XXXXXX";
    char *path;

    msg_init("conf.t", MSG_STDERR);
    if ((dir = mkdtemp(tmpl)) == NULL)
        msg_fatal("mkdtemp: %m");
    errs = buf_new(0);

    test_defaults();
    test_computed();
    test_syntax();
    test_unknown();
    test_nul_and_suggest();
    test_expansion();
    test_limits();
    test_values();
    test_missing();
    test_set();
    test_split();
    test_dump();
    test_dollar_confdir();
    test_getter_failures();

    path = xasprintf("%s/main.conf", dir);
    unlink(path);
    free(path);
    rmdir(dir);
    buf_free(&errs);
    return done_testing();
}
