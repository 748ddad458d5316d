/*
 * imapsearch - IMAP SEARCH programs and IMAP dates (see imapsearch.h).
 *
 * A program is a tree of nodes: AND, OR (n-ary: chains of OR and nested
 * lists are flattened), NOT and the leaves.  Each node has a cost class;
 * the children of AND and OR are sorted by it at compile time (stably, so
 * keys of one class keep the client's order), which is all the "cheap keys
 * first" rule needs.  Strings are converted and case-folded once when
 * compiled; a message's text is folded into a scratch buffer owned by the
 * program and searched with memmem().
 *
 * The file is longer than the ~800 lines of the style guide because the
 * IMAP and RFC 5322 date code lives here too (the brief gives this module
 * both).
 */
#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imapsearch.h"
#include "imapseq.h"
#include "xalloc.h"

/* ---- Dates ---- */

static const char imapsearch_months[12][4] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t era;
    unsigned doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static unsigned month_days(int64_t y, unsigned m)
{
    static const unsigned char n[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

    if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
        return 29;
    return n[m - 1];
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The day (since the epoch) that t falls on in the zone tz minutes east. */
static int64_t day_of(time_t t, int tz)
{
    return floor_div((int64_t)t + (int64_t)tz * 60, 86400);
}

/* min..max digits at *p (and not one more): 0, or -1. */
static int read_digits(const char **p, const char *end, unsigned min, unsigned max,
                       int64_t *v)
{
    const char *s = *p;
    unsigned n = 0;

    *v = 0;
    while (s < end && *s >= '0' && *s <= '9' && n < max) {
        *v = *v * 10 + (*s++ - '0');
        n++;
    }
    if (n < min || (s < end && *s >= '0' && *s <= '9'))
        return -1;
    *p = s;
    return (int)n;
}

/* A month's name (three letters, any case) at p: 1..12, or 0. */
static unsigned month_of(const char *p, const char *end)
{
    if (end - p < 3)
        return 0;
    for (unsigned i = 0; i < 12; i++)
        if (strncasecmp(p, imapsearch_months[i], 3) == 0)
            return i + 1;
    return 0;
}

/* "d-Mon-yyyy" at *p (day of 1..2 digits): days since the epoch. */
static int read_imap_date(const char **p, const char *end, int64_t *days)
{
    int64_t d, y;
    unsigned m;

    if (read_digits(p, end, 1, 2, &d) < 0 || *p == end || *(*p)++ != '-'
        || (m = month_of(*p, end)) == 0)
        return -1;
    *p += 3;
    if (*p == end || *(*p)++ != '-' || read_digits(p, end, 4, 4, &y) < 0)
        return -1;
    if (d < 1 || d > month_days(y, m))
        return -1;
    *days = days_from_civil(y, m, (unsigned)d);
    return 0;
}

/* s without one pair of surrounding quotes. */
static void unquote(const char *s, const char **p, const char **end)
{
    size_t n = strlen(s);

    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s++;
        n -= 2;
    }
    *p = s;
    *end = s + n;
}

int imap_parse_date(const char *s, time_t *day)
{
    const char *p, *end;
    int64_t days;

    unquote(s, &p, &end);
    if (read_imap_date(&p, end, &days) < 0 || p != end)
        return -1;
    *day = (time_t)(days * 86400);
    return 0;
}

int imap_parse_datetime(const char *s, time_t *t, int *tz_minutes)
{
    const char *p, *end;
    int64_t days, h, mi, sec, zh, zm;
    int sign;

    unquote(s, &p, &end);
    if (p < end && *p == ' ')           /* date-day-fixed: SP DIGIT */
        p++;
    if (read_imap_date(&p, end, &days) < 0 || p == end || *p++ != ' '
        || read_digits(&p, end, 2, 2, &h) < 0 || p == end || *p++ != ':'
        || read_digits(&p, end, 2, 2, &mi) < 0 || p == end || *p++ != ':'
        || read_digits(&p, end, 2, 2, &sec) < 0 || p == end || *p++ != ' '
        || p == end || (*p != '+' && *p != '-'))
        return -1;
    sign = *p++ == '-' ? -1 : 1;
    if (read_digits(&p, end, 4, 4, &zh) < 0 || p != end)
        return -1;
    zm = zh % 100;
    zh /= 100;
    if (h > 23 || mi > 59 || sec > 60 || zh > 23 || zm > 59)
        return -1;
    *tz_minutes = sign * (int)(zh * 60 + zm);
    *t = (time_t)(days * 86400 + h * 3600 + mi * 60 + sec - (int64_t)*tz_minutes * 60);
    return 0;
}

void imap_format_datetime(buf_t *out, time_t t, int tz_minutes)
{
    int64_t local = (int64_t)t + (int64_t)tz_minutes * 60;
    int64_t days = floor_div(local, 86400), secs = local - days * 86400, y;
    unsigned m, d;
    int a = tz_minutes < 0 ? -tz_minutes : tz_minutes;

    civil_from_days(days, &y, &m, &d);
    buf_printf(out, "\"%02u-%s-%04lld %02d:%02d:%02d %c%02d%02d\"", d,
               imapsearch_months[m - 1], (long long)y, (int)(secs / 3600),
               (int)(secs / 60 % 60), (int)(secs % 60), tz_minutes < 0 ? '-' : '+',
               a / 60, a % 60);
}

/* RFC 5322 CFWS: blanks, line ends and (nested (comments)). */
static void skip_cfws(const char **pp, const char *end)
{
    const char *p = *pp;
    size_t depth = 0;

    while (p < end) {
        if (*p == '(') {
            depth++;
        } else if (depth > 0) {
            if (*p == ')')
                depth--;
            else if (*p == '\\' && p + 1 < end)
                p++;
        } else if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            break;
        }
        p++;
    }
    *pp = p;
}

static size_t alpha_run(const char *p, const char *end)
{
    const char *s = p;

    while (s < end && ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
        s++;
    return (size_t)(s - p);
}

/* An obsolete zone name (RFC 5322 4.3): minutes east; military letters and
 * unknown names are -0000, "no information". */
static int obs_zone(const char *p, size_t n)
{
    static const struct { const char *name; int min; } z[] = {
        { "UT", 0 }, { "GMT", 0 }, { "EST", -300 }, { "EDT", -240 }, { "CST", -360 },
        { "CDT", -300 }, { "MST", -420 }, { "MDT", -360 }, { "PST", -480 }, { "PDT", -420 },
    };

    for (size_t i = 0; i < sizeof(z) / sizeof(z[0]); i++)
        if (strlen(z[i].name) == n && strncasecmp(p, z[i].name, n) == 0)
            return z[i].min;
    return 0;
}

int imapsearch_parse_msgdate(const char *s, size_t len, time_t *t, int *tz_minutes)
{
    const char *p = s, *end = s + len;
    int64_t d, y, h = 0, mi = 0, sec = 0, zone = 0;
    unsigned m;
    size_t n;
    int digits;

    skip_cfws(&p, end);
    if ((n = alpha_run(p, end)) > 0) {          /* day-of-week, comma optional */
        p += n;
        skip_cfws(&p, end);
        if (p < end && *p == ',')
            p++;
        skip_cfws(&p, end);
    }
    if (read_digits(&p, end, 1, 2, &d) < 0)
        return -1;
    skip_cfws(&p, end);
    n = alpha_run(p, end);
    if (n < 3 || (m = month_of(p, end)) == 0)
        return -1;
    p += n;
    skip_cfws(&p, end);
    if ((digits = read_digits(&p, end, 2, 4, &y)) < 0)
        return -1;
    if (digits == 2)
        y += y < 50 ? 2000 : 1900;
    else if (digits == 3)
        y += 1900;
    if (d < 1 || d > month_days(y, m))
        return -1;
    skip_cfws(&p, end);
    if (p < end && *p >= '0' && *p <= '9') {
        if (read_digits(&p, end, 1, 2, &h) < 0)
            return -1;
        skip_cfws(&p, end);
        if (p == end || *p++ != ':')
            return -1;
        skip_cfws(&p, end);
        if (read_digits(&p, end, 1, 2, &mi) < 0)
            return -1;
        skip_cfws(&p, end);
        if (p < end && *p == ':') {
            p++;
            skip_cfws(&p, end);
            if (read_digits(&p, end, 1, 2, &sec) < 0)
                return -1;
            skip_cfws(&p, end);
        }
        if (h > 23 || mi > 59 || sec > 60)
            return -1;
        if (p < end && (*p == '+' || *p == '-')) {
            int sign = *p++ == '-' ? -1 : 1;
            int64_t zh, zm;

            if (read_digits(&p, end, 4, 4, &zh) < 0 || zh % 100 > 59)
                return -1;
            zm = zh % 100;
            zh /= 100;
            zone = sign * (zh * 60 + zm);
        } else if ((n = alpha_run(p, end)) > 0) {
            zone = obs_zone(p, n);
        }
    }
    *tz_minutes = (int)zone;
    *t = (time_t)(days_from_civil(y, m, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec
                  - zone * 60);
    return 0;
}

/* ---- Case folding ---- */

/* One UTF-8 sequence at p (shortest form, no surrogates): its length, or 0. */
static size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *cp)
{
    size_t k;
    uint32_t c, min;

    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    } else if ((p[0] & 0xE0) == 0xC0) {
        k = 2, c = p[0] & 0x1F, min = 0x80;
    } else if ((p[0] & 0xF0) == 0xE0) {
        k = 3, c = p[0] & 0x0F, min = 0x800;
    } else if ((p[0] & 0xF8) == 0xF0) {
        k = 4, c = p[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < k)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        c = c << 6 | (p[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return k;
}

static void utf8_put(buf_t *out, uint32_t c)
{
    unsigned char b[4];
    size_t n;

    if (c < 0x80) {
        b[0] = (unsigned char)c, n = 1;
    } else if (c < 0x800) {
        b[0] = (unsigned char)(0xC0 | c >> 6), b[1] = (unsigned char)(0x80 | (c & 0x3F)), n = 2;
    } else if (c < 0x10000) {
        b[0] = (unsigned char)(0xE0 | c >> 12), b[1] = (unsigned char)(0x80 | (c >> 6 & 0x3F));
        b[2] = (unsigned char)(0x80 | (c & 0x3F)), n = 3;
    } else {
        b[0] = (unsigned char)(0xF0 | c >> 18), b[1] = (unsigned char)(0x80 | (c >> 12 & 0x3F));
        b[2] = (unsigned char)(0x80 | (c >> 6 & 0x3F)), b[3] = (unsigned char)(0x80 | (c & 0x3F));
        n = 4;
    }
    buf_append(out, b, n);
}

#define IN(c, lo, hi) ((c) >= (lo) && (c) <= (hi))

/* The fold of one code point (see the header for what it covers). */
static uint32_t fold_cp(uint32_t c)
{
    if (c < 0x100)
        return IN(c, 'A', 'Z') || (IN(c, 0xC0, 0xDE) && c != 0xD7) ? c + 32 : c;
    if (c < 0x180) {
        if (c == 0x130)
            return 'i';
        if (c == 0x178)
            return 0xFF;
        if (c == 0x17F)
            return 's';
        if (IN(c, 0x100, 0x12F) || IN(c, 0x132, 0x137) || IN(c, 0x14A, 0x177))
            return c | 1;
        if (IN(c, 0x139, 0x148) || IN(c, 0x179, 0x17E))
            return (c & 1) ? c + 1 : c;
        return c;
    }
    if (IN(c, 0x370, 0x3FF)) {                          /* Greek */
        if (c == 0x386)
            return 0x3AC;
        if (IN(c, 0x388, 0x38A))
            return c + 37;
        if (c == 0x38C)
            return 0x3CC;
        if (IN(c, 0x38E, 0x38F))
            return c + 63;
        if (IN(c, 0x391, 0x3A1) || IN(c, 0x3A3, 0x3AB))
            return c + 32;
        return c == 0x3C2 ? 0x3C3 : c;
    }
    if (IN(c, 0x400, 0x52F)) {                          /* Cyrillic */
        if (IN(c, 0x400, 0x40F))
            return c + 80;
        if (IN(c, 0x410, 0x42F))
            return c + 32;
        if (IN(c, 0x460, 0x481) || IN(c, 0x48A, 0x4BF) || IN(c, 0x4D0, 0x52F))
            return c | 1;
        if (c == 0x4C0)
            return 0x4CF;
        if (IN(c, 0x4C1, 0x4CE))
            return (c & 1) ? c + 1 : c;
        return c;
    }
    if (IN(c, 0x531, 0x556))                            /* Armenian */
        return c + 48;
    if (IN(c, 0x1E00, 0x1E95) || IN(c, 0x1EA0, 0x1EFF)) /* Latin Extended Additional */
        return c | 1;
    if (c == 0x1E9E)
        return 0xDF;
    if (c == 0x212A)
        return 'k';
    if (c == 0x212B)
        return 0xE5;
    if (IN(c, 0x2160, 0x216F))                          /* Roman numerals */
        return c + 16;
    if (IN(c, 0x24B6, 0x24CF))                          /* circled letters */
        return c + 26;
    if (IN(c, 0xFF21, 0xFF3A))                          /* fullwidth Latin */
        return c + 32;
    return c;
}

/* out = s folded; octets that are not UTF-8 are copied as they are. */
static void fold(buf_t *out, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;

    buf_reset(out);
    while (p < end) {
        const unsigned char *run = p;
        uint32_t c;
        size_t k;

        while (p < end && *p < 0x80 && !IN(*p, 'A', 'Z'))
            p++;
        if (p > run)
            buf_append(out, run, (size_t)(p - run));
        if (p == end)
            break;
        if ((k = utf8_decode(p, (size_t)(end - p), &c)) == 0) {
            buf_putc(out, *p++);
            continue;
        }
        utf8_put(out, fold_cp(c));
        p += k;
    }
}

/* ---- Programs ---- */

enum imapsearch_op {
    OP_AND, OP_OR, OP_NOT, OP_ALL, OP_FLAGS, OP_KEYWORD, OP_LARGER, OP_SMALLER,
    OP_SEQ, OP_UID, OP_DATE, OP_SENT, OP_HEADER, OP_BODY, OP_TEXT,
};

/* Cost classes, cheapest first. */
enum { COST_CHEAP, COST_DATE, COST_HEADER, COST_BODY, COST_TEXT };

struct node {
    enum imapsearch_op op;
    unsigned cost;
    bool     neg;                       /* KEYWORD: UNKEYWORD */
    unsigned fset, fclear;              /* FLAGS: bits that must be set, clear */
    uint64_t num;                       /* LARGER, SMALLER */
    int64_t  day;                       /* DATE, SENT: days since the epoch */
    int      cmp;                       /* DATE, SENT: -1 BEFORE, 0 ON, 1 SINCE */
    char    *name;                      /* KEYWORD, HEADER */
    char    *needle;                    /* HEADER, BODY, TEXT: folded */
    size_t   nlen;
    struct imapseq set;                 /* SEQ, UID */
    struct imapseq_range *res;          /* the set resolved for res_star */
    size_t   nres;
    uint32_t res_star;
    bool     resolved;
    struct node **kids;                 /* AND, OR, NOT */
    size_t   nkids;
};

struct imapsearch {
    struct node *root;
    unsigned     ret;
    bool         has_return;
    unsigned     needs;
    buf_t       *scratch;               /* a message's text, folded */
};

static void node_free(struct node *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->nkids; i++)
        node_free(n->kids[i]);
    free(n->kids);
    free(n->name);
    free(n->needle);
    free(n->res);
    imapseq_free(&n->set);
    free(n);
}

static struct node *node_new(enum imapsearch_op op, unsigned cost)
{
    struct node *n = xcalloc(1, sizeof(*n));

    n->op = op;
    n->cost = cost;
    return n;
}

/* Add kid to an AND or OR, taking over the children of one of the same op;
 * kept sorted by cost, stably. */
static void node_add(struct node *n, struct node *kid)
{
    if (kid->op == n->op) {
        for (size_t i = 0; i < kid->nkids; i++)
            node_add(n, kid->kids[i]);
        kid->nkids = 0;
        node_free(kid);
        return;
    }
    {
        size_t i = n->nkids;

        n->kids = xreallocarray(n->kids, n->nkids + 1, sizeof(*n->kids));
        while (i > 0 && n->kids[i - 1]->cost > kid->cost) {
            n->kids[i] = n->kids[i - 1];
            i--;
        }
        n->kids[i] = kid;
        n->nkids++;
        if (kid->cost > n->cost)
            n->cost = kid->cost;
    }
}

struct comp {
    iconv_t     cd;                     /* (iconv_t)-1: strings are UTF-8 */
    unsigned    max_depth, max_keys, keys;
    unsigned    needs;
    const char *why;
    int         rc;
    buf_t      *tmp;
};

struct cursor {
    const struct imap_arg *a;
    size_t n, i;
};

static struct node *comp_fail(struct comp *c, const char *why)
{
    c->why = why;
    c->rc = -1;
    return NULL;
}

static bool is_atom(const struct imap_arg *a, const char *word)
{
    return a->type == IMAP_ARG_ATOM && strcasecmp(a->str, word) == 0;
}

enum argk { A_NONE, A_STRING, A_HEADER, A_DATE, A_NUMBER, A_KEYWORD, A_SET, A_NOT, A_OR };

static const struct keydef {
    const char        *name;
    enum imapsearch_op op;
    enum argk          arg;
    unsigned           set, clear;      /* FLAGS */
    int                cmp;             /* DATE, SENT */
    const char        *field;           /* HEADER shorthands */
    bool               neg;
} imapsearch_keys[] = {
#define K(n, o, a, ...) { .name = n, .op = o, .arg = a, __VA_ARGS__ }
    K("ALL", OP_ALL, A_NONE),
    K("ANSWERED", OP_FLAGS, A_NONE, .set = IMAPSEARCH_F_ANSWERED),
    K("BCC", OP_HEADER, A_STRING, .field = "Bcc"),
    K("BEFORE", OP_DATE, A_DATE, .cmp = -1),
    K("BODY", OP_BODY, A_STRING),
    K("CC", OP_HEADER, A_STRING, .field = "Cc"),
    K("DELETED", OP_FLAGS, A_NONE, .set = IMAPSEARCH_F_DELETED),
    K("DRAFT", OP_FLAGS, A_NONE, .set = IMAPSEARCH_F_DRAFT),
    K("FLAGGED", OP_FLAGS, A_NONE, .set = IMAPSEARCH_F_FLAGGED),
    K("FROM", OP_HEADER, A_STRING, .field = "From"),
    K("HEADER", OP_HEADER, A_HEADER),
    K("KEYWORD", OP_KEYWORD, A_KEYWORD),
    K("LARGER", OP_LARGER, A_NUMBER),
    K("NEW", OP_FLAGS, A_NONE, .set = IMAPSEARCH_F_RECENT, .clear = IMAPSEARCH_F_SEEN),
    K("NOT", OP_NOT, A_NOT),
    K("OLD", OP_FLAGS, A_NONE, .clear = IMAPSEARCH_F_RECENT),
    K("ON", OP_DATE, A_DATE, .cmp = 0),
    K("OR", OP_OR, A_OR),
    K("RECENT", OP_FLAGS, A_NONE, .set = IMAPSEARCH_F_RECENT),
    K("SEEN", OP_FLAGS, A_NONE, .set = IMAPSEARCH_F_SEEN),
    K("SENTBEFORE", OP_SENT, A_DATE, .cmp = -1),
    K("SENTON", OP_SENT, A_DATE, .cmp = 0),
    K("SENTSINCE", OP_SENT, A_DATE, .cmp = 1),
    K("SINCE", OP_DATE, A_DATE, .cmp = 1),
    K("SMALLER", OP_SMALLER, A_NUMBER),
    K("SUBJECT", OP_HEADER, A_STRING, .field = "Subject"),
    K("TEXT", OP_TEXT, A_STRING),
    K("TO", OP_HEADER, A_STRING, .field = "To"),
    K("UID", OP_UID, A_SET),
    K("UNANSWERED", OP_FLAGS, A_NONE, .clear = IMAPSEARCH_F_ANSWERED),
    K("UNDELETED", OP_FLAGS, A_NONE, .clear = IMAPSEARCH_F_DELETED),
    K("UNDRAFT", OP_FLAGS, A_NONE, .clear = IMAPSEARCH_F_DRAFT),
    K("UNFLAGGED", OP_FLAGS, A_NONE, .clear = IMAPSEARCH_F_FLAGGED),
    K("UNKEYWORD", OP_KEYWORD, A_KEYWORD, .neg = true),
    K("UNSEEN", OP_FLAGS, A_NONE, .clear = IMAPSEARCH_F_SEEN),
#undef K
};

static const struct { const char *name; unsigned bit; } imapsearch_sysflags[] = {
    { "\\Seen", IMAPSEARCH_F_SEEN }, { "\\Answered", IMAPSEARCH_F_ANSWERED },
    { "\\Flagged", IMAPSEARCH_F_FLAGGED }, { "\\Deleted", IMAPSEARCH_F_DELETED },
    { "\\Draft", IMAPSEARCH_F_DRAFT }, { "\\Recent", IMAPSEARCH_F_RECENT },
};

static struct node *compile_key(struct comp *c, struct cursor *cur, unsigned depth);

/* Keys up to the end of cur, all of which must match. */
static struct node *compile_and(struct comp *c, struct cursor *cur, unsigned depth)
{
    struct node *n = node_new(OP_AND, COST_CHEAP), *kid;

    while (cur->i < cur->n) {
        if ((kid = compile_key(c, cur, depth)) == NULL) {
            node_free(n);
            return NULL;
        }
        node_add(n, kid);
    }
    if (n->nkids == 1) {
        kid = n->kids[0];
        n->nkids = 0;
        node_free(n);
        return kid;
    }
    return n;
}

/* OR's two operands; "OR a OR b c" goes on as one OR of a, b and c, so a
 * long chain does not nest. */
static struct node *compile_or(struct comp *c, struct cursor *cur, unsigned depth)
{
    struct node *n = node_new(OP_OR, COST_CHEAP), *kid;

    for (;;) {
        if (cur->i >= cur->n || (kid = compile_key(c, cur, depth + 1)) == NULL)
            goto fail;
        node_add(n, kid);
        if (cur->i < cur->n && is_atom(&cur->a[cur->i], "OR")) {
            if (++c->keys > c->max_keys) {
                comp_fail(c, "too many search keys");
                goto fail;
            }
            cur->i++;
            continue;
        }
        if (cur->i >= cur->n || (kid = compile_key(c, cur, depth + 1)) == NULL)
            goto fail;
        node_add(n, kid);
        return n;
    }
fail:
    if (c->why == NULL)
        comp_fail(c, "OR needs two search keys");
    node_free(n);
    return NULL;
}

/* A string argument converted to UTF-8 and folded into n->needle. */
static int comp_string(struct comp *c, const struct imap_arg *a, struct node *n)
{
    const char *s = a->str;
    size_t len = a->len;

    if (a->type == IMAP_ARG_NIL) {
        s = "NIL";
        len = 3;
    } else if (a->type == IMAP_ARG_LIST) {
        comp_fail(c, "a string was expected");
        return -1;
    }
    if (c->cd != (iconv_t)-1) {
        char *in = (char *)(uintptr_t)s, *outp, *o;
        size_t inleft = len, cap = len * 4 + 16, outleft;

        o = xmalloc(cap);
        iconv(c->cd, NULL, NULL, NULL, NULL);
        outp = o, outleft = cap;
        for (;;) {
            size_t r = inleft ? iconv(c->cd, &in, &inleft, &outp, &outleft)
                              : iconv(c->cd, NULL, NULL, &outp, &outleft);

            if (r != (size_t)-1 && inleft == 0 && in != NULL) {
                in = NULL;              /* then the shift back to the initial state */
                continue;
            }
            if (r != (size_t)-1)
                break;
            if (errno != E2BIG) {
                free(o);
                comp_fail(c, "a search string is not valid in its charset");
                return -1;
            }
            {
                size_t used = (size_t)(outp - o);

                cap *= 2;
                o = xrealloc(o, cap);
                outp = o + used;
                outleft = cap - used;
            }
        }
        fold(c->tmp, o, (size_t)(outp - o));
        free(o);
    } else {
        fold(c->tmp, s, len);
    }
    n->nlen = c->tmp->len;
    n->needle = xmemdup(c->tmp->data, c->tmp->len + 1);
    return 0;
}

/* A search key's argument, there or not. */
static const struct imap_arg *comp_arg(struct comp *c, struct cursor *cur)
{
    if (cur->i >= cur->n) {
        comp_fail(c, "missing argument to a search key");
        return NULL;
    }
    return &cur->a[cur->i++];
}

static bool is_number(const struct imap_arg *a, uint64_t *v)
{
    const char *s = a->str;

    if (a->type != IMAP_ARG_ATOM || *s == '\0')
        return false;
    for (*v = 0; *s; s++) {
        if (*s < '0' || *s > '9' || *v > ((uint64_t)INT64_MAX - (uint64_t)(*s - '0')) / 10)
            return false;
        *v = *v * 10 + (uint64_t)(*s - '0');
    }
    return true;
}

/* A header field name: printable ASCII other than ':' (RFC 5322 ftext). */
static bool is_field_name(const struct imap_arg *a)
{
    if (a->type == IMAP_ARG_LIST || a->type == IMAP_ARG_NIL || a->len == 0)
        return a->type == IMAP_ARG_NIL;
    for (size_t i = 0; i < a->len; i++)
        if (a->str[i] < 33 || a->str[i] > 126 || a->str[i] == ':')
            return false;
    return true;
}

static struct node *compile_key(struct comp *c, struct cursor *cur, unsigned depth)
{
    const struct imap_arg *a, *v;
    const struct keydef *k = NULL;
    struct node *n, *kid;
    const char *why;

    if (cur->i >= cur->n)
        return comp_fail(c, "missing search key");
    if (++c->keys > c->max_keys)
        return comp_fail(c, "too many search keys");
    if (depth > c->max_depth)
        return comp_fail(c, "search keys nested too deep");
    a = &cur->a[cur->i++];
    if (a->type == IMAP_ARG_LIST) {
        struct cursor sub = { a->list, a->nlist, 0 };

        if (a->nlist == 0)
            return comp_fail(c, "empty list of search keys");
        return compile_and(c, &sub, depth + 1);
    }
    if (a->type != IMAP_ARG_ATOM)
        return comp_fail(c, "a search key was expected");
    if ((a->str[0] >= '0' && a->str[0] <= '9') || a->str[0] == '*' || a->str[0] == '$') {
        n = node_new(OP_SEQ, COST_CHEAP);
        if (imapseq_parse(a->str, &n->set, &why) < 0) {
            node_free(n);
            return comp_fail(c, why);
        }
        if (n->set.saved)
            c->needs |= IMAPSEARCH_NEED_SAVED;
        return n;
    }
    for (size_t i = 0; i < sizeof(imapsearch_keys) / sizeof(imapsearch_keys[0]); i++)
        if (strcasecmp(a->str, imapsearch_keys[i].name) == 0)
            k = &imapsearch_keys[i];
    if (k == NULL)
        return comp_fail(c, "unknown search key");

    switch (k->arg) {
    case A_NONE:
        n = node_new(k->op, COST_CHEAP);
        n->fset = k->set;
        n->fclear = k->clear;
        return n;
    case A_NOT:
        if (cur->i >= cur->n)
            return comp_fail(c, "NOT needs a search key");
        if ((kid = compile_key(c, cur, depth + 1)) == NULL)
            return NULL;
        if (kid->op == OP_NOT) {                        /* NOT NOT x is x */
            n = kid->kids[0];
            kid->nkids = 0;
            node_free(kid);
            return n;
        }
        n = node_new(OP_NOT, kid->cost);
        n->kids = xmalloc(sizeof(*n->kids));
        n->kids[0] = kid;
        n->nkids = 1;
        return n;
    case A_OR:
        return compile_or(c, cur, depth);
    case A_STRING:
    case A_HEADER:
        n = node_new(k->op, k->op == OP_BODY ? COST_BODY : k->op == OP_TEXT ? COST_TEXT
                            : COST_HEADER);
        c->needs |= k->op == OP_BODY ? IMAPSEARCH_NEED_BODY : k->op == OP_TEXT
                    ? IMAPSEARCH_NEED_TEXT : IMAPSEARCH_NEED_HEADER;
        if (k->arg == A_HEADER) {
            if ((v = comp_arg(c, cur)) == NULL)
                goto fail;
            if (!is_field_name(v)) {
                comp_fail(c, "bad header field name");
                goto fail;
            }
            n->name = xstrdup(v->type == IMAP_ARG_NIL ? "NIL" : v->str);
        } else if (k->field) {
            n->name = xstrdup(k->field);
        }
        if ((v = comp_arg(c, cur)) == NULL || comp_string(c, v, n) < 0)
            goto fail;
        return n;
    case A_DATE: {
        time_t day;

        if ((v = comp_arg(c, cur)) == NULL)
            return NULL;
        if ((v->type != IMAP_ARG_ATOM && v->type != IMAP_ARG_STRING)
            || imap_parse_date(v->str, &day) < 0)
            return comp_fail(c, "bad date");
        n = node_new(k->op, k->op == OP_SENT ? COST_HEADER : COST_DATE);
        if (k->op == OP_SENT)
            c->needs |= IMAPSEARCH_NEED_HEADER;
        n->day = (int64_t)day / 86400;
        n->cmp = k->cmp;
        return n;
    }
    case A_NUMBER: {
        uint64_t num;

        if ((v = comp_arg(c, cur)) == NULL)
            return NULL;
        if (!is_number(v, &num))
            return comp_fail(c, "bad number");
        n = node_new(k->op, COST_CHEAP);
        n->num = num;
        return n;
    }
    case A_KEYWORD:
        if ((v = comp_arg(c, cur)) == NULL)
            return NULL;
        if (v->type != IMAP_ARG_ATOM)
            return comp_fail(c, "bad keyword");
        if (v->str[0] == '\\') {
            size_t nsys = sizeof(imapsearch_sysflags) / sizeof(imapsearch_sysflags[0]);

            for (size_t i = 0; i < nsys; i++) {
                if (strcasecmp(v->str, imapsearch_sysflags[i].name) == 0) {
                    n = node_new(OP_FLAGS, COST_CHEAP);
                    if (k->neg)
                        n->fclear = imapsearch_sysflags[i].bit;
                    else
                        n->fset = imapsearch_sysflags[i].bit;
                    return n;
                }
            }
            return comp_fail(c, "bad keyword");
        }
        n = node_new(OP_KEYWORD, COST_CHEAP);
        n->name = xstrdup(v->str);
        n->neg = k->neg;
        return n;
    case A_SET:
        if ((v = comp_arg(c, cur)) == NULL)
            return NULL;
        if (v->type != IMAP_ARG_ATOM)
            return comp_fail(c, "bad sequence set");
        n = node_new(OP_UID, COST_CHEAP);
        if (imapseq_parse(v->str, &n->set, &why) < 0) {
            node_free(n);
            return comp_fail(c, why);
        }
        if (n->set.saved)
            c->needs |= IMAPSEARCH_NEED_SAVED;
        return n;
    }
    return comp_fail(c, "unknown search key");
fail:
    node_free(n);
    return NULL;
}

/* RETURN (opts) */
static int comp_return(struct comp *c, struct cursor *cur, imapsearch_t *s)
{
    static const struct { const char *name; unsigned bit; } opts[] = {
        { "MIN", IMAPSEARCH_RET_MIN }, { "MAX", IMAPSEARCH_RET_MAX },
        { "ALL", IMAPSEARCH_RET_ALL }, { "COUNT", IMAPSEARCH_RET_COUNT },
        { "SAVE", IMAPSEARCH_RET_SAVE },
    };
    const struct imap_arg *l;

    if (cur->i >= cur->n || cur->a[cur->i].type != IMAP_ARG_LIST) {
        comp_fail(c, "RETURN needs a list of options");
        return -1;
    }
    l = &cur->a[cur->i++];
    for (size_t i = 0; i < l->nlist; i++) {
        unsigned bit = 0;

        for (size_t j = 0; j < sizeof(opts) / sizeof(opts[0]); j++)
            if (is_atom(&l->list[i], opts[j].name))
                bit = opts[j].bit;
        if (bit == 0) {
            comp_fail(c, "unknown RETURN option");
            return -1;
        }
        s->ret |= bit;
    }
    if (l->nlist == 0)
        s->ret = IMAPSEARCH_RET_ALL;
    s->has_return = true;
    return 0;
}

/* CHARSET name */
static int comp_charset(struct comp *c, struct cursor *cur, bool utf8_mode)
{
    const struct imap_arg *a;
    bool named;

    if (cur->i >= cur->n || cur->a[cur->i].type == IMAP_ARG_LIST) {
        comp_fail(c, "CHARSET needs a charset name");
        return -1;
    }
    a = &cur->a[cur->i++];
    named = a->type != IMAP_ARG_NIL && a->len > 0 && strlen(a->str) == a->len;
    if (named && (strcasecmp(a->str, "UTF-8") == 0 || strcasecmp(a->str, "US-ASCII") == 0))
        return 0;
    if (utf8_mode) {
        comp_fail(c, "CHARSET other than UTF-8 after ENABLE UTF8=ACCEPT");
        return -1;
    }
    /* a name iconv could read as more than a charset ("X//IGNORE") is not one */
    if (!named || a->len > 64 || strpbrk(a->str, "/, ") != NULL
        || (c->cd = iconv_open("UTF-8", a->str)) == (iconv_t)-1) {
        c->why = "unknown charset";
        c->rc = -2;
        return -1;
    }
    return 0;
}

int imapsearch_compile(const struct imap_arg *args, size_t nargs,
                       const struct imapsearch_opts *o, imapsearch_t **out,
                       const char **why)
{
    static const struct imapsearch_opts defaults;
    struct comp c;
    struct cursor cur = { args, nargs, 0 };
    imapsearch_t *s = xcalloc(1, sizeof(*s));

    if (o == NULL)
        o = &defaults;
    c = (struct comp){
        .cd = (iconv_t)-1,
        .max_depth = o->max_depth ? o->max_depth : IMAPSEARCH_MAX_DEPTH,
        .max_keys = o->max_keys ? o->max_keys : IMAPSEARCH_MAX_KEYS,
    };

    *out = NULL;
    if (o->allow_return && cur.n > 0 && is_atom(&args[0], "RETURN")) {
        cur.i++;
        if (comp_return(&c, &cur, s) < 0)
            goto fail;
    }
    if (cur.i < cur.n && is_atom(&args[cur.i], "CHARSET")) {
        cur.i++;
        if (comp_charset(&c, &cur, o->utf8_mode) < 0)
            goto fail;
    }
    if (cur.i >= cur.n) {
        comp_fail(&c, "no search key");
        goto fail;
    }
    c.tmp = buf_new(0);
    if ((s->root = compile_and(&c, &cur, 0)) == NULL)
        goto fail;
    s->needs = c.needs;
    s->scratch = c.tmp;
    if (c.cd != (iconv_t)-1)
        iconv_close(c.cd);
    *out = s;
    return 0;
fail:
    if (c.cd != (iconv_t)-1)
        iconv_close(c.cd);
    buf_free(&c.tmp);
    imapsearch_free(&s);
    *why = c.why ? c.why : "bad search";
    return c.rc ? c.rc : -1;
}

void imapsearch_free(imapsearch_t **sp)
{
    imapsearch_t *s = *sp;

    if (s == NULL)
        return;
    node_free(s->root);
    buf_free(&s->scratch);
    free(s);
    *sp = NULL;
}

unsigned imapsearch_return(const imapsearch_t *s, bool *has_return)
{
    if (has_return)
        *has_return = s->has_return;
    return s->ret;
}

unsigned imapsearch_needs(const imapsearch_t *s)
{
    return s->needs;
}

/* ---- Evaluation ---- */

struct mctx {
    const struct imapsearch_msg_ops *ops;
    void           *msg;
    uint32_t        star_seq, star_uid;
    const uint32_t *saved;
    size_t          nsaved;
    buf_t          *scratch;
};

static bool in_saved(const struct mctx *m, uint32_t uid)
{
    size_t lo = 0, hi = m->nsaved;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (m->saved[mid] == uid)
            return true;
        if (m->saved[mid] < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* v in the set with "*" as star; the resolved set is kept for the next
 * message, which usually has the same star. */
static bool in_set(struct node *n, uint32_t v, uint32_t star)
{
    size_t lo = 0, hi;

    if (!n->resolved || n->res_star != star) {
        free(n->res);
        n->nres = imapseq_resolve(&n->set, star, &n->res);
        n->res_star = star;
        n->resolved = true;
    }
    hi = n->nres;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (v < n->res[mid].lo)
            hi = mid;
        else if (v > n->res[mid].hi)
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

static int match_text(const struct mctx *m, const struct node *n, const char *text,
                      size_t len)
{
    if (text == NULL)
        return 0;
    if (n->nlen == 0)
        return 1;
    fold(m->scratch, text, len);
    return memmem(m->scratch->data, m->scratch->len, n->needle, n->nlen) != NULL;
}

static int compare_day(int64_t day, const struct node *n)
{
    return n->cmp < 0 ? day < n->day : n->cmp == 0 ? day == n->day : day >= n->day;
}

static int eval(const struct mctx *m, struct node *n)
{
    const struct imapsearch_msg_ops *ops = m->ops;
    const char *text;
    size_t len;
    int r;

    switch (n->op) {
    case OP_AND:
        for (size_t i = 0; i < n->nkids; i++)
            if ((r = eval(m, n->kids[i])) <= 0)
                return r;
        return 1;
    case OP_OR:
        for (size_t i = 0; i < n->nkids; i++)
            if ((r = eval(m, n->kids[i])) != 0)
                return r;
        return 0;
    case OP_NOT:
        r = eval(m, n->kids[0]);
        return r < 0 ? r : !r;
    case OP_ALL:
        return 1;
    case OP_FLAGS: {
        unsigned f = ops->flags(m->msg);

        return (f & n->fset) == n->fset && (f & n->fclear) == 0;
    }
    case OP_KEYWORD:
        return ops->has_keyword(m->msg, n->name) != n->neg;
    case OP_LARGER:
        return ops->size(m->msg) > n->num;
    case OP_SMALLER:
        return ops->size(m->msg) < n->num;
    case OP_SEQ:
    case OP_UID:
        if (n->set.saved)
            return in_saved(m, ops->uid(m->msg));
        if (n->op == OP_SEQ)
            return in_set(n, ops->seq(m->msg), m->star_seq);
        return in_set(n, ops->uid(m->msg), m->star_uid);
    case OP_SENT:
        if (ops->header(m->msg, "Date", &text, &len) < 0)
            return -1;
        if (text != NULL) {
            const char *nl = memchr(text, '\n', len);
            time_t t;
            int tz;

            if (imapsearch_parse_msgdate(text, nl ? (size_t)(nl - text) : len, &t, &tz) == 0)
                return compare_day(day_of(t, tz), n);
        }
        /* no Date: or a broken one: the internal date, as Dovecot does */
        /* FALLTHROUGH */
    case OP_DATE:
        return compare_day(day_of(ops->internal_date(m->msg),
                                  ops->internal_tz_minutes(m->msg)), n);
    case OP_HEADER:
        if (ops->header(m->msg, n->name, &text, &len) < 0)
            return -1;
        return match_text(m, n, text, len);
    case OP_BODY:
        if (ops->body(m->msg, &text, &len) < 0)
            return -1;
        return match_text(m, n, text ? text : "", text ? len : 0);
    case OP_TEXT:
        if (ops->text(m->msg, &text, &len) < 0)
            return -1;
        return match_text(m, n, text ? text : "", text ? len : 0);
    }
    return 0;
}

int imapsearch_match(const imapsearch_t *s, const struct imapsearch_msg_ops *ops,
                     void *msg, uint32_t star_seq, uint32_t star_uid,
                     const uint32_t *saved_uids, size_t nsaved)
{
    struct mctx m = {
        .ops = ops, .msg = msg, .star_seq = star_seq, .star_uid = star_uid,
        .saved = saved_uids, .nsaved = saved_uids ? nsaved : 0, .scratch = s->scratch,
    };

    return eval(&m, s->root);
}
