/*
 * conf_value - the typed values of main.conf parameters, lists and name
 * hints (part of the conf module; interface in conf.h).
 *
 * conf_check_value() parses an expanded value as its parameter's type and
 * checks the bounds: INT is decimal with an optional sign, BOOL one of
 * yes/no/true/false/on/off/1/0 (any case), TIME a number with an optional
 * unit s, m, h, d or w (bare = seconds), SIZE a number with an optional
 * k, m or g (1024-based).  Numbers too big for a long long count as above
 * the maximum.  conf_split() cuts list values on commas and white space;
 * conf_suggest() finds the table name closest to a misspelt one.
 *
 * Failure modes: a bad value is described in the caller's buffer; nothing
 * here logs or exits (an impossible type is our bug and panics).
 */
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "conf.h"
#include "msg.h"
#include "xalloc.h"

/* Parse decimal digits (at least one) at *sp; -2 on overflow. */
static int conf_digits(const char **sp, long long *out)
{
    const char *s = *sp;
    long long n = 0;
    int over = 0;

    if (!isdigit((unsigned char)*s))
        return -1;
    for (; isdigit((unsigned char)*s); s++) {
        int d = *s - '0';

        if (n > (LLONG_MAX - d) / 10)
            over = 1;
        else
            n = n * 10 + d;
    }
    *sp = s;
    *out = over ? LLONG_MAX : n;
    return over ? -2 : 0;
}

/* Scale n by mult; LLONG_MAX and -2 on overflow. */
static int conf_scale(long long *n, long long mult, int rc)
{
    if (rc == 0 && *n > LLONG_MAX / mult) {
        *n = LLONG_MAX;
        return -2;
    }
    if (rc == 0)
        *n *= mult;
    return rc;
}

/* Parse s as a value of type t: 0 ok, -1 syntax, -2 out of range of long long. */
static int conf_parse(enum conf_type t, const char *s, long long *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    int neg = 0, rc;

    *out = 0;
    switch (t) {
    case CONF_STR:
        return 0;
    case CONF_BOOL:
        for (size_t k = 0; k < sizeof(yes) / sizeof(yes[0]); k++) {
            if (strcasecmp(s, yes[k]) == 0)
                return *out = 1, 0;
            if (strcasecmp(s, no[k]) == 0)
                return 0;
        }
        return -1;
    case CONF_INT:
        if (*s == '-' || *s == '+')
            neg = *s++ == '-';
        if ((rc = conf_digits(&s, out)) == -1 || *s)
            return -1;
        if (neg)
            *out = rc ? LLONG_MIN : -*out;
        return rc;
    case CONF_TIME:
        if ((rc = conf_digits(&s, out)) == -1)
            return -1;
        switch (tolower((unsigned char)*s)) {
        case '\0':
            return rc;
        case 's': rc = conf_scale(out, 1, rc); break;
        case 'm': rc = conf_scale(out, 60, rc); break;
        case 'h': rc = conf_scale(out, 3600, rc); break;
        case 'd': rc = conf_scale(out, 86400, rc); break;
        case 'w': rc = conf_scale(out, 7 * 86400, rc); break;
        default: return -1;
        }
        return s[1] ? -1 : rc;
    case CONF_SIZE:
        if ((rc = conf_digits(&s, out)) == -1)
            return -1;
        switch (tolower((unsigned char)*s)) {
        case '\0':
            return rc;
        case 'k': rc = conf_scale(out, 1LL << 10, rc); break;
        case 'm': rc = conf_scale(out, 1LL << 20, rc); break;
        case 'g': rc = conf_scale(out, 1LL << 30, rc); break;
        default: return -1;
        }
        return s[1] ? -1 : rc;
    }
    msg_panic("conf_parse: bad type %d", (int)t);
}

/* Append a bound in the parameter's unit, with a friendlier form if exact. */
static void conf_bound(buf_t *b, enum conf_type t, long long n)
{
    static const struct { long long mult; char unit; } tu[] = {
        {7 * 86400, 'w'}, {86400, 'd'}, {3600, 'h'}, {60, 'm'},
    }, su[] = {
        {1LL << 30, 'g'}, {1LL << 20, 'm'}, {1LL << 10, 'k'},
    };

    buf_printf(b, t == CONF_TIME ? "%llds" : "%lld", n);
    if (t == CONF_TIME) {
        for (size_t k = 0; k < sizeof(tu) / sizeof(tu[0]); k++)
            if (n > 0 && n % tu[k].mult == 0) {
                buf_printf(b, " (%lld%c)", n / tu[k].mult, tu[k].unit);
                return;
            }
    } else if (t == CONF_SIZE) {
        for (size_t k = 0; k < sizeof(su) / sizeof(su[0]); k++)
            if (n > 0 && n % su[k].mult == 0) {
                buf_printf(b, " (%lld%c)", n / su[k].mult, su[k].unit);
                return;
            }
    }
}

int conf_check_value(const struct conf_param *p, const char *s, long long *out, buf_t *why)
{
    static const char *const expect[] = {
        [CONF_STR] = "",
        [CONF_INT] = "expected a decimal number",
        [CONF_BOOL] = "expected yes or no",
        [CONF_TIME] = "expected a time such as 60s, 10m, 2h, 1d or 1w (a bare number is seconds)",
        [CONF_SIZE] = "expected a size such as 10240000 or 10m",
    };
    long long n;
    int rc;

    if (out == NULL)
        out = &n;
    rc = conf_parse(p->type, s, out);

    if (rc == -1) {
        buf_printf(why, "bad value '%s' for %s: %s", s, p->name, expect[p->type]);
        return -1;
    }
    if (p->type == CONF_STR || p->type == CONF_BOOL)
        return 0;
    if (rc == -2 || *out < p->min || *out > p->max) {
        int below = rc == -2 ? *out < 0 : *out < p->min;

        buf_printf(why, "value %s for %s is %s ", s, p->name,
                   below ? "below the minimum" : "above the maximum");
        conf_bound(why, p->type, below ? p->min : p->max);
        return -1;
    }
    return 0;
}


char **conf_split(const char *value)
{
    static const char sep[] = ", \t\r\n\f\v";
    size_t n = 0, cap = 4;
    char **list = xreallocarray(NULL, cap, sizeof(*list));

    while (value && *(value += strspn(value, sep))) {
        size_t len = strcspn(value, sep);

        if (n + 2 > cap)
            list = xreallocarray(list, cap *= 2, sizeof(*list));
        list[n++] = xstrndup(value, len);
        value += len;
    }
    list[n] = NULL;
    return list;
}

void conf_split_free(char ***listp)
{
    if (*listp == NULL)
        return;
    for (char **p = *listp; *p; p++)
        free(*p);
    xfree(listp);
}

/* Edit distance to every name in the table; the closest, if close enough. */
const char *conf_suggest(const char *name)
{
    size_t len = strlen(name);
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    size_t *prev = xcalloc(len + 1, sizeof(*prev));
    size_t *cur = xcalloc(len + 1, sizeof(*cur));

    for (size_t k = 0; k < conf_nparams; k++) {
        const char *cand = conf_params[k].name;

        for (size_t j = 0; j <= len; j++)
            prev[j] = j;
        for (size_t i = 1; cand[i - 1]; i++) {
            cur[0] = i;
            for (size_t j = 1; j <= len; j++) {
                size_t d = prev[j - 1] + (cand[i - 1] != name[j - 1]);

                if (prev[j] + 1 < d)
                    d = prev[j] + 1;
                if (cur[j - 1] + 1 < d)
                    d = cur[j - 1] + 1;
                cur[j] = d;
            }
            memcpy(prev, cur, (len + 1) * sizeof(*prev));
        }
        if (prev[len] < best_d) {
            best_d = prev[len];
            best = cand;
        }
    }
    free(prev);
    free(cur);
    return best_d <= 2 && best_d * 3 <= len ? best : NULL;
}
