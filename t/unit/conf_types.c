/*
 * t/unit/conf_types.c - unit tests for lib/conf.c and lib/conf_value.c with
 * a parameter table of this test's own.
 *
 * This file defines conf_params[] and conf_nparams itself, so the linker
 * takes them from here and never pulls conf_table.o out of the library.
 * The table has a parameter of every type with bounds the real table does
 * not use: BOOL values, negative INT bounds, a bound at LLONG_MAX, a
 * computed default that reads another parameter, and a default that
 * refers to another parameter (errors located at "default of NAME").
 *
 * Covers: conf_check_value() for every type, BOOL/INT/TIME/SIZE values in
 * main.conf with their messages, computed defaults (recomputed after a
 * change, loops and failures through compute()), errors in defaults,
 * conf_set() checking dependent parameters, and the getters' panics on a
 * type mismatch and fatals on a bad value (in a child process).
 */
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

static char *computed;

/* c = $s followed by "!", computed by reading s. */
static const char *compute_c(void)
{
    free(computed);
    computed = xasprintf("%s!", conf_str("s"));
    return computed;
}

const struct conf_param conf_params[] = {
    {"config_directory", CONF_STR, "/etc/test", 0, 0, "config", NULL},
    {"s", CONF_STR, "hello", 0, 0, "a string", NULL},
    {"i", CONF_INT, "5", -10, 10, "an int with a negative minimum", NULL},
    {"b", CONF_BOOL, "yes", 0, 0, "a boolean", NULL},
    {"nb", CONF_BOOL, "off", 0, 0, "another boolean", NULL},
    {"t", CONF_TIME, "1m", 1, 3600, "a time", NULL},
    {"z", CONF_SIZE, "1k", 0, 1LL << 30, "a size", NULL},
    {"c", CONF_STR, NULL, 0, 0, "computed from s", compute_c},
    {"d", CONF_STR, "$s-$c", 0, 0, "refers to s and c", NULL},
    {"n", CONF_STR, "7", 0, 0, "a string that e refers to", NULL},
    {"e", CONF_INT, "$n", 0, 100, "an int whose default is $n", NULL},
    {"huge", CONF_INT, "0", 0, LLONG_MAX, "an int up to LLONG_MAX", NULL},
};
const size_t conf_nparams = sizeof(conf_params) / sizeof(conf_params[0]);

static char *dir;
static buf_t *errs;

static int load(const char *text)
{
    char *path = xasprintf("%s/main.conf", dir);

    write_text(path, text);
    free(path);
    buf_reset(errs);
    return conf_load(dir, errs);
}

/* Load text and expect exactly the one error "LOCATION: msg" where
 * LOCATION is main.conf:line, or "default of ..." when line is 0. */
static void load_fails(const char *text, int line, const char *msg, const char *name)
{
    char *want = line ? xasprintf("%s/main.conf:%d: %s\n", dir, line, msg)
                      : xasprintf("%s\n", msg);

    is_int(load(text), -1, "%s: fails", name);
    is_str(buf_cstr(errs), want, "%s: message", name);
    free(want);
}

/* conf_check_value() on parameter name: expect ok with n, or a message. */
static void check(const char *name, const char *value, int good, long long n,
                  const char *msg)
{
    buf_t *why = buf_new(0);
    long long got = -12345;
    int rc = conf_check_value(conf_find(name), value, &got, why);

    if (good) {
        ok(rc == 0 && got == n, "%s = '%s' is %lld", name, value, n);
        if (rc != 0 || got != n)
            diag("  rc %d, got %lld, why '%s'", rc, got, buf_cstr(why));
    } else {
        is_int(rc, -1, "%s = '%s' is rejected", name, value);
        is_str(buf_cstr(why), msg, "%s = '%s': message", name, value);
    }
    buf_free(&why);
}

static void test_check_value(void)
{
    static const char *const yes[] = {"yes", "YES", "True", "on", "ON", "1"};
    static const char *const no[] = {"no", "No", "false", "FALSE", "off", "0"};

    for (size_t k = 0; k < sizeof(yes) / sizeof(yes[0]); k++)
        check("b", yes[k], 1, 1, NULL);
    for (size_t k = 0; k < sizeof(no) / sizeof(no[0]); k++)
        check("b", no[k], 1, 0, NULL);
    check("b", "maybe", 0, 0, "bad value 'maybe' for b: expected yes or no");
    check("b", "", 0, 0, "bad value '' for b: expected yes or no");
    check("b", "yess", 0, 0, "bad value 'yess' for b: expected yes or no");
    check("b", "2", 0, 0, "bad value '2' for b: expected yes or no");

    check("i", "-10", 1, -10, NULL);
    check("i", "10", 1, 10, NULL);
    check("i", "+0", 1, 0, NULL);
    check("i", "-0", 1, 0, NULL);
    check("i", "007", 1, 7, NULL);
    check("i", "-11", 0, 0, "value -11 for i is below the minimum -10");
    check("i", "11", 0, 0, "value 11 for i is above the maximum 10");
    check("i", "-99999999999999999999", 0, 0,
          "value -99999999999999999999 for i is below the minimum -10");
    check("i", "", 0, 0, "bad value '' for i: expected a decimal number");
    check("i", "-", 0, 0, "bad value '-' for i: expected a decimal number");
    check("i", "--5", 0, 0, "bad value '--5' for i: expected a decimal number");
    check("i", "5 ", 0, 0, "bad value '5 ' for i: expected a decimal number");
    check("i", "0x10", 0, 0, "bad value '0x10' for i: expected a decimal number");
    check("huge", "9223372036854775807", 1, LLONG_MAX, NULL);
    check("huge", "9223372036854775808", 0, 0,
          "value 9223372036854775808 for huge is above the maximum 9223372036854775807");

    check("t", "1", 1, 1, NULL);
    check("t", "59s", 1, 59, NULL);
    check("t", "2m", 1, 120, NULL);
    check("t", "1H", 1, 3600, NULL);
    check("t", "61m", 0, 0, "value 61m for t is above the maximum 3600s (1h)");
    check("t", "1d", 0, 0, "value 1d for t is above the maximum 3600s (1h)");
    check("t", "1w", 0, 0, "value 1w for t is above the maximum 3600s (1h)");
    check("t", "0s", 0, 0, "value 0s for t is below the minimum 1s");
    check("t", "1y", 0, 0, "bad value '1y' for t: expected a time such as 60s, 10m, 2h,"
          " 1d or 1w (a bare number is seconds)");
    check("t", "-1", 0, 0, "bad value '-1' for t: expected a time such as 60s, 10m, 2h,"
          " 1d or 1w (a bare number is seconds)");
    check("t", "9223372036854775807w", 0, 0,
          "value 9223372036854775807w for t is above the maximum 3600s (1h)");

    check("z", "0", 1, 0, NULL);
    check("z", "512", 1, 512, NULL);
    check("z", "3k", 1, 3072, NULL);
    check("z", "3M", 1, 3 << 20, NULL);
    check("z", "1g", 1, 1 << 30, NULL);
    check("z", "1025m", 0, 0, "value 1025m for z is above the maximum 1073741824 (1g)");
    check("z", "1.5m", 0, 0, "bad value '1.5m' for z: expected a size such as 10240000 or 10m");
    check("z", "10mb", 0, 0, "bad value '10mb' for z: expected a size such as 10240000 or 10m");
    check("z", "k", 0, 0, "bad value 'k' for z: expected a size such as 10240000 or 10m");

    check("s", "anything $at all", 1, 0, NULL);
    ok(conf_check_value(conf_find("i"), "3", NULL, errs) == 0, "out may be NULL");
}

static void test_defaults(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *fp;

    is_int(load(""), 0, "empty main.conf");
    is_str(conf_str("s"), "hello", "s");
    is_int(conf_int("i"), 5, "i");
    is_int(conf_bool("b"), 1, "b = yes");
    is_int(conf_bool("nb"), 0, "nb = off");
    is_int(conf_time("t"), 60, "t = 1m");
    is_int(conf_size("z"), 1024, "z = 1k");
    is_str(conf_str("c"), "hello!", "computed c");
    is_str(conf_str("d"), "hello-hello!", "d = $s-$c");
    is_int(conf_int("e"), 7, "e = $n");
    ok(conf_is_default("c") && conf_is_default("e"), "defaults are default");

    fp = open_memstream(&text, &len);
    conf_dump(fp, 0);
    fclose(fp);
    like(text, "c = hello!\nconfig_directory = ", "computed default dumped by value, sorted");
    like(text, "d = $s-$c\n", "raw default dumped as written");
    free(text);
}

static void test_file_values(void)
{
    is_int(load("b = No\nnb = TRUE\ni = -10\nt = 1h\nz = 1g\nhuge = 9223372036854775807\n"),
           0, "values of every type");
    is_int(conf_bool("b"), 0, "b = No");
    is_int(conf_bool("nb"), 1, "nb = TRUE");
    is_int(conf_int("i"), -10, "i = -10");
    is_int(conf_time("t"), 3600, "t = 1h");
    is_int(conf_size("z"), 1 << 30, "z = 1g");
    is_int(conf_int("huge"), LLONG_MAX, "huge = LLONG_MAX");

    load_fails("s = x\nb = maybe\n", 2, "bad value 'maybe' for b: expected yes or no", "bad bool");
    load_fails("\ni = -11\n", 2, "value -11 for i is below the minimum -10", "int below");
    load_fails("t =\n  2h\n", 1, "value 2h for t is above the maximum 3600s (1h)", "time above");
    load_fails("z = 2g\n", 1, "value 2g for z is above the maximum 1073741824 (1g)", "size above");
    is_int(load("s = yes\nb = $s\nnb = ${b}\n"), 0, "bool via two expansions");
    is_int(conf_bool("nb"), 1, "nb = ${b} = $s = yes");
}

static void test_computed(void)
{
    buf_t *e = buf_new(0);

    is_int(load("s = world\n"), 0, "s set");
    is_str(conf_str("c"), "world!", "c computed from s");
    is_str(conf_str("d"), "world-world!", "d follows both");
    is_int(conf_set("s", "x", "-o", e), 0, "conf_set s");
    is_str(conf_str("c"), "x!", "c recomputed");
    is_str(conf_str("d"), "x-x!", "d too");

    load_fails("s = <$c>\n", 1, "expansion loop at $c in the value of s (s -> c -> s)",
               "loop through compute()");
    load_fails("d = $c\ns = $d\n", 1, "expansion loop at $c in the value of d (d -> c -> s -> d)",
               "longer loop through compute()");
    load_fails("s = $nosuch\n", 1, "unknown parameter '$nosuch' in the value of s",
               "compute() reading a broken value: one error");
    buf_free(&e);
}

static void test_default_errors(void)
{
    char *want;

    load_fails("n = abc\n", 0, "default of e: bad value 'abc' for e: expected a decimal number",
               "bad value through a default");
    load_fails("n = 2$$\n", 0, "default of e: bad value '2$' for e: expected a decimal number",
               "$$ in a referred value");
    is_int(load("n = 70\n"), 0, "good value through a default");
    is_int(conf_int("e"), 70, "e = 70");
    buf_reset(errs);
    is_int(conf_set("n", "200", "-o", errs), -1, "conf_set breaking a dependent default");
    is_str(buf_cstr(errs), "default of e: value 200 for e is above the maximum 100\n",
           "reported at the default");
    is_str(conf_str("n"), "70", "n reverted");
    is_int(conf_int("e"), 70, "e unchanged");
    buf_reset(errs);
    is_int(conf_set("e", "$s", NULL, errs), -1, "conf_set e = $s");
    is_str(buf_cstr(errs), "command line: bad value 'hello' for e: expected a decimal number\n",
           "bad expanded value");
    want = xasprintf("%s/main.conf:1: expansion loop at $e in the value of n (n -> e -> n)", dir);
    is_int(load("n = $e\n"), -1, "n = $e while e = $n");
    like(buf_cstr(errs), want, "loop reported at the file line");
    is_int(count_lines(buf_cstr(errs)), 1, "once");
    free(want);
}

static void bool_of_int(void) { (void)conf_bool("i"); }
static void time_of_size(void) { (void)conf_time("z"); }
static void size_of_str(void) { (void)conf_size("s"); }
static void read_bad_bool(void) { (void)conf_bool("b"); }
static void read_c(void) { (void)conf_str("c"); }
static void read_good(void) { _exit(conf_int("i") == 3 ? 0 : 2); }

static void test_getter_failures(void)
{
    buf_t *out = buf_new(0);
    int st;

    is_int(load("i = 3\n"), 0, "good load");
    st = in_child(bool_of_int, out);
    ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "conf_bool of an int panics");
    like(buf_cstr(out), "panic: conf_bool: i has another type", "panic message");
    st = in_child(time_of_size, out);
    ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "conf_time of a size panics");
    st = in_child(size_of_str, out);
    ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "conf_size of a string panics");
    st = in_child(read_good, out);
    ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a good value reads fine in a child");

    buf_reset(out);
    is_int(load("b = perhaps\n"), -1, "bad bool");
    st = in_child(read_bad_bool, out);
    ok(WIFEXITED(st) && WEXITSTATUS(st) == 1, "reading it is fatal");
    like(buf_cstr(out), "main.conf:1: bad value 'perhaps' for b: expected yes or no",
         "fatal message");
    buf_reset(out);
    is_int(load("s = $nosuch\n"), -1, "s broken");
    st = in_child(read_c, out);
    ok(WIFEXITED(st) && WEXITSTATUS(st) == 1, "reading c (computed from s) is fatal");
    like(buf_cstr(out), "main.conf:1: unknown parameter '$nosuch' in the value of s",
         "with s's message");
    buf_free(&out);
}

int main(void)
{
    char tmpl[] = "/tmp/posthorn-conftypes.XXXXXX";
    char *path;

    msg_init("conf_types.t", MSG_STDERR);
    if ((dir = mkdtemp(tmpl)) == NULL)
        msg_fatal("mkdtemp: %m");
    errs = buf_new(0);

    test_check_value();
    test_defaults();
    test_file_values();
    test_computed();
    test_default_errors();
    test_getter_failures();

    path = xasprintf("%s/main.conf", dir);
    unlink(path);
    free(path);
    rmdir(dir);
    buf_free(&errs);
    free(computed);
    return done_testing();
}
