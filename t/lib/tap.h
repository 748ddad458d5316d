/*
 * tap.h - a tiny header-only TAP producer for Posthorn's C unit tests.
 *
 * Interface: ok(cond, name...), is_int(got, want, name...),
 * is_str(got, want, name...), like(got, substring, name...), diag(fmt...),
 * done_testing() (prints the plan and returns the exit status for main).
 * Output goes to stdout unbuffered so that a crash never hides results.
 */
#ifndef POSTHORN_TAP_H
#define POSTHORN_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_count, tap_failed;

__attribute__((format(printf, 2, 3), unused))
static int tap_ok(int cond, const char *fmt, ...)
{
    va_list ap;

    if (tap_count == 0)
        setvbuf(stdout, NULL, _IONBF, 0);
    tap_count++;
    if (!cond)
        tap_failed++;
    printf("%sok %d - ", cond ? "" : "not ", tap_count);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    return cond;
}

#define ok(cond, ...) tap_ok(!!(cond), __VA_ARGS__)

#define diag(...) do { printf("# "); printf(__VA_ARGS__); printf("\n"); } while (0)

#define is_int(got, want, ...) do { \
    long long tap_g_ = (long long)(got), tap_w_ = (long long)(want); \
    if (!tap_ok(tap_g_ == tap_w_, __VA_ARGS__)) \
        diag("  got %lld, want %lld (%s:%d)", tap_g_, tap_w_, __FILE__, __LINE__); \
} while (0)

#define is_str(got, want, ...) do { \
    const char *tap_g_ = (got), *tap_w_ = (want); \
    int tap_c_ = (tap_g_ && tap_w_) ? strcmp(tap_g_, tap_w_) == 0 : tap_g_ == tap_w_; \
    if (!tap_ok(tap_c_, __VA_ARGS__)) \
        diag("  got '%s', want '%s' (%s:%d)", tap_g_ ? tap_g_ : "(null)", \
             tap_w_ ? tap_w_ : "(null)", __FILE__, __LINE__); \
} while (0)

#define like(got, sub, ...) do { \
    const char *tap_g_ = (got), *tap_s_ = (sub); \
    if (!tap_ok(tap_g_ && strstr(tap_g_, tap_s_) != NULL, __VA_ARGS__)) \
        diag("  '%s' does not contain '%s' (%s:%d)", tap_g_ ? tap_g_ : "(null)", \
             tap_s_, __FILE__, __LINE__); \
} while (0)

__attribute__((unused))
static int done_testing(void)
{
    printf("1..%d\n", tap_count);
    return tap_failed ? 1 : 0;
}

#endif
