/*
 * t/unit/imapsearch.c - unit tests for lib/imapsearch.c, IMAP SEARCH
 * programs and IMAP dates.
 *
 * Searches go through the real parser (lib/imapparse) as "A1 SEARCH ..."
 * lines, literals included, and are run over five fake messages whose
 * callbacks count their calls.  Covered: every key and its negation,
 * key names in any case, lists, OR chains and nesting, NOT, sets with "*"
 * and "$" (as a set and with UID), internal dates at day boundaries in
 * their own zone, sent dates (RFC 5322 obsolete forms, a broken and a
 * missing Date: falling back to the internal date), HEADER with an empty
 * value, case folding beyond ASCII, CHARSET (ISO-8859-1 and KOI8-R
 * literals converted, unknown -> -2, refused in UTF-8 mode), every refusal
 * with its reason, the depth and key limits, RETURN options, needs()
 * bits, short-circuits (callbacks not called: counted), a vanished
 * message (-1), and the date parsers and formatter.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"
#include "imapparse.h"
#include "imapsearch.h"
#include "../lib/tap.h"

struct fmsg {
    uint32_t    seq, uid;
    unsigned    flags;
    const char *keywords;       /* space-separated */
    uint64_t    size;
    const char *idate;          /* INTERNALDATE form */
    const char *hdr;            /* "Name: value\n" lines */
    const char *body;
    bool        vanished;
    buf_t      *out;
};

#define F(x) IMAPSEARCH_F_##x

static struct fmsg msgs[] = {
    { 1, 10, F(SEEN), "$Forwarded Work", 1000, "01-Feb-1994 10:00:00 +0000",
      "From: Alice Example <alice@example.org>\nTo: bob@example.com\n"
      "Subject: Hello World\nDate: Tue, 1 Feb 1994 10:00:00 +0000\n",
      "The quick brown fox", false, NULL },
    { 2, 20, F(ANSWERED) | F(FLAGGED), "", 2000, "01-Feb-1994 23:30:00 -0700",
      "From: bob@example.com\nCc: Carol <carol@example.net>\n"
      "Subject: Re: Caf\xc3\xa9 \xc3\x89T\xc3\x89\nDate: 2 Feb 94 01:00 EST\n",
      "\xc3\x9c" "ber stra\xc3\x9f" "e", false, NULL },
    { 3, 30, F(DELETED) | F(DRAFT), "", 3000, "03-Feb-1994 00:00:00 +0100",
      "From: dave@example.com\nX-Empty: \nBcc: secret@example.net\nDate: not a date\n",
      "", false, NULL },
    { 4, 40, F(RECENT), "", 4000, "04-Feb-1994 12:00:00 +0000",
      "Subject: \xce\xa3\xce\x8a\xce\xa3\xce\xa5\xce\xa6\xce\x9f\xce\xa3\n",
      "\xd0\x9f\xd0\xa0\xd0\x98\xd0\x92\xd0\x95\xd0\xa2 \xd0\xbc\xd0\xb8\xd1\x80",
      false, NULL },
    { 5, 50, F(RECENT) | F(SEEN), "work", 5000, "05-Feb-1994 08:00:00 +0000",
      "Subject: hello again\nDate: Sat, 05 Feb 1994 23:59:59 -1200 (a comment)\n",
      "nothing", false, NULL },
};
#define NMSG (sizeof(msgs) / sizeof(msgs[0]))

static int n_flags, n_header, n_body, n_text;

static uint32_t f_seq(void *m) { return ((struct fmsg *)m)->seq; }
static uint32_t f_uid(void *m) { return ((struct fmsg *)m)->uid; }
static unsigned f_flags(void *m) { n_flags++; return ((struct fmsg *)m)->flags; }
static uint64_t f_size(void *m) { return ((struct fmsg *)m)->size; }

static bool f_has_keyword(void *m, const char *kw)
{
    char *copy = strdup(((struct fmsg *)m)->keywords), *save = copy, *w;
    bool found = false;

    while ((w = strsep(&save, " ")) != NULL)
        if (*w && strcasecmp(w, kw) == 0)
            found = true;
    free(copy);
    return found;
}

static time_t f_idate(void *m)
{
    time_t t;
    int tz;

    if (imap_parse_datetime(((struct fmsg *)m)->idate, &t, &tz) < 0)
        abort();
    return t;
}

static int f_idate_tz(void *m)
{
    time_t t;
    int tz;

    if (imap_parse_datetime(((struct fmsg *)m)->idate, &t, &tz) < 0)
        abort();
    return tz;
}

static buf_t *f_out(struct fmsg *f)
{
    if (f->out == NULL)
        f->out = buf_new(0);
    buf_reset(f->out);
    return f->out;
}

static int f_header(void *m, const char *name, const char **text, size_t *len)
{
    struct fmsg *f = m;
    buf_t *b = f_out(f);
    const char *p = f->hdr;
    bool found = false;

    n_header++;
    if (f->vanished)
        return -1;
    while (*p) {
        const char *nl = strchr(p, '\n'), *colon = strchr(p, ':');

        if (strlen(name) == (size_t)(colon - p) && strncasecmp(p, name, strlen(name)) == 0) {
            const char *v = colon + 1;

            while (*v == ' ')
                v++;
            if (found)
                buf_putc(b, '\n');
            buf_append(b, v, (size_t)(nl - v));
            found = true;
        }
        p = nl + 1;
    }
    *text = found ? b->data : NULL;
    *len = b->len;
    return 0;
}

static int f_body(void *m, const char **text, size_t *len)
{
    struct fmsg *f = m;

    n_body++;
    if (f->vanished)
        return -1;
    *text = f->body;
    *len = strlen(f->body);
    return 0;
}

static int f_text(void *m, const char **text, size_t *len)
{
    struct fmsg *f = m;
    buf_t *b = f_out(f);

    n_text++;
    if (f->vanished)
        return -1;
    buf_printf(b, "%s\n%s", f->hdr, f->body);
    *text = b->data;
    *len = b->len;
    return 0;
}

static const struct imapsearch_msg_ops ops = {
    .seq = f_seq, .uid = f_uid, .flags = f_flags, .has_keyword = f_has_keyword,
    .size = f_size, .internal_date = f_idate, .internal_tz_minutes = f_idate_tz,
    .header = f_header, .body = f_body, .text = f_text,
};

static const struct imapparse_limits lim = {
    .max_args = 20000, .max_depth = 200, .max_literal = 1000, .max_total = 100000,
    .allow_8bit = true,
};

static imapparse_t *parser;
static struct imapsearch_opts opts;
static const uint32_t *saved;
static size_t nsaved;
static imapsearch_t *last;          /* the last program compiled, for return()/needs() */

/* Compile "SEARCH args" ("\001" separates lines and literals, alternately)
 * and run it over the messages: "10 20", or "ERR rc why". */
static char *search(const char *args)
{
    char *line = NULL, *copy, *save, *part;
    buf_t *b = buf_new(0);
    struct imapparse_state st = {0};
    const struct imap_command *cmd;
    const char *why = NULL;
    int rc = IMAPPARSE_ERROR, want_line = 1;

    if (asprintf(&line, "A1 SEARCH%s%s", *args ? " " : "", args) < 0)
        abort();
    copy = save = line;
    imapsearch_free(&last);
    imapparse_reset(parser);
    while ((part = strsep(&save, "\001")) != NULL) {
        if (want_line) {
            rc = imapparse_line(parser, part, strlen(part), &st);
            if (rc != IMAPPARSE_LITERAL)
                break;
        } else {
            imapparse_literal(parser, part, strlen(part));
        }
        want_line = !want_line;
    }
    free(copy);
    if (rc != IMAPPARSE_DONE) {
        buf_printf(b, "PARSE %s", st.why);
    } else {
        cmd = imapparse_command(parser);
        rc = imapsearch_compile(cmd->args, cmd->nargs, &opts, &last, &why);
        if (rc < 0) {
            buf_printf(b, "ERR %d %s", rc, why);
        } else {
            for (size_t i = 0; i < NMSG; i++) {
                int r = imapsearch_match(last, &ops, &msgs[i], NMSG, 50, saved, nsaved);

                if (r < 0)
                    buf_printf(b, "%s!%u", b->len ? " " : "", msgs[i].uid);
                else if (r)
                    buf_printf(b, "%s%u", b->len ? " " : "", msgs[i].uid);
            }
        }
    }
    {
        char *out = buf_steal(b, NULL);

        buf_free(&b);
        return out;
    }
}

#define S(args, want, ...) do { \
        char *got_ = search(args); \
        is_str(got_, want, __VA_ARGS__); \
        free(got_); \
    } while (0)

static char *repeat(const char *head, const char *s, int n, const char *tail)
{
    buf_t *b = buf_new(0);
    char *out;

    buf_append_str(b, head);
    for (int i = 0; i < n; i++)
        buf_append_str(b, s);
    buf_append_str(b, tail);
    out = buf_steal(b, NULL);
    buf_free(&b);
    return out;
}

static void test_keys(void)
{
    S("ALL", "10 20 30 40 50", "ALL");
    S("ANSWERED", "20", "ANSWERED");
    S("UNANSWERED", "10 30 40 50", "UNANSWERED");
    S("DELETED", "30", "DELETED");
    S("UNDELETED", "10 20 40 50", "UNDELETED");
    S("DRAFT", "30", "DRAFT");
    S("UNDRAFT", "10 20 40 50", "UNDRAFT");
    S("FLAGGED", "20", "FLAGGED");
    S("UNFLAGGED", "10 30 40 50", "UNFLAGGED");
    S("SEEN", "10 50", "SEEN");
    S("UNSEEN", "20 30 40", "UNSEEN");
    S("RECENT", "40 50", "RECENT");
    S("NEW", "40", "NEW: recent and unseen");
    S("OLD", "10 20 30", "OLD: not recent");
    S("seen Not recent", "10", "key names in any case");
    S("KEYWORD work", "10 50", "KEYWORD");
    S("UNKEYWORD WORK", "20 30 40", "UNKEYWORD");
    S("KEYWORD $Forwarded", "10", "KEYWORD $Forwarded");
    S("KEYWORD \\Seen", "10 50", "KEYWORD \\Seen tests the flag");
    S("UNKEYWORD \\seen", "20 30 40", "UNKEYWORD \\Seen");
    S("LARGER 2000", "30 40 50", "LARGER is strictly larger");
    S("SMALLER 2000", "10", "SMALLER is strictly smaller");
    S("LARGER 0", "10 20 30 40 50", "LARGER 0");
    S("LARGER 9223372036854775807", "", "LARGER 2^63-1");
    S("SMALLER 007", "", "leading zeros in a number");

    S("2:3", "20 30", "a sequence set");
    S("4:*", "40 50", "n:*");
    S("*", "50", "*");
    S("*:4", "40 50", "*:n");
    S("9:*", "50", "n:* with n past the end names the last");
    S("1,3,5", "10 30 50", "a list of numbers");
    S("UID 20:40", "20 30 40", "UID set");
    S("UID *", "50", "UID *");
    S("UID 35:*", "40 50", "UID n:*");
    S("UID 60:*", "50", "UID n:* above the highest UID");
    S("UID 1:15", "10", "UID range around one");
    S("UID 11:19", "", "UID range between messages");
    S("1:3 UNSEEN", "20 30", "keys in a row: AND");
    S("UID 10:40 LARGER 1500 NOT DELETED", "20 40", "three keys ANDed");
}

static void test_strings(void)
{
    S("FROM alice", "10", "FROM");
    S("FROM ALICE", "10", "FROM is case-insensitive");
    S("FROM \"Alice Example\"", "10", "a quoted string");
    S("TO example.com", "10", "TO");
    S("CC carol", "20", "CC");
    S("BCC secret", "30", "BCC");
    S("SUBJECT hello", "10 50", "SUBJECT");
    S("SUBJECT \"\"", "10 20 40 50", "SUBJECT \"\": the messages with a Subject:");
    S("SUBJECT {5+}\001WORLD\001", "10", "a literal");
    S("SUBJECT \"caf\xc3\xa9 \xc3\xa9t\xc3\xa9\"", "20", "UTF-8 folded: Latin-1 range");
    S("SUBJECT \"\xcf\x83\xce\xaf\xcf\x83\xcf\x85\xcf\x86\xce\xbf\xcf\x82\"", "40",
      "Greek: accented capital and final sigma");
    S("BODY \"\xc3\xbc" "BER\"", "20", "BODY folded: \xc3\x9c");
    S("BODY \"\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xd0\x9c\xd0\x98\xd0\xa0\"", "40",
      "Cyrillic, both ways");
    S("BODY fox", "10", "BODY");
    S("BODY Subject", "", "BODY does not search the header");
    S("BODY \"\"", "10 20 30 40 50", "BODY \"\" matches all");
    S("TEXT alice", "10", "TEXT searches the header");
    S("TEXT FOX", "10", "and the body");
    S("TEXT \"\"", "10 20 30 40 50", "TEXT \"\" matches all");
    S("SUBJECT NIL", "", "NIL is the string NIL");
    S("HEADER X-Empty \"\"", "30", "HEADER with an empty value: has the field");
    S("HEADER x-empty \"\"", "30", "the field name in any case");
    S("HEADER Subject \"\"", "10 20 40 50", "HEADER Subject \"\"");
    S("HEADER X-Missing \"\"", "", "HEADER of a field nobody has");
    S("HEADER Subject world", "10", "HEADER name value");
    S("HEADER Date 1994", "10 50", "HEADER Date");
}

static void test_logic(void)
{
    char *s;

    S("OR SEEN FLAGGED", "10 20 50", "OR");
    S("Or Seen Flagged", "10 20 50", "OR in any case");
    S("OR SEEN OR FLAGGED DELETED", "10 20 30 50", "OR chain on the right");
    S("OR OR SEEN FLAGGED DELETED", "10 20 30 50", "OR nested on the left");
    S("NOT OR SEEN FLAGGED", "30 40", "NOT OR");
    S("(SEEN RECENT)", "50", "a list is an AND");
    S("NOT (SEEN RECENT)", "10 20 30 40", "NOT of a list");
    S("OR (SEEN RECENT) (DELETED DRAFT)", "30 50", "OR of lists");
    S("NOT NOT SEEN", "10 50", "NOT NOT");
    S("((SEEN) ((UID 10)))", "10", "nested lists");
    S("OR NOT SEEN (ANSWERED UNFLAGGED) SMALLER 3000", "20", "OR NOT with a list");
    S("NOT OR NOT SEEN OR DELETED RECENT UID 10:*", "10", "NOT of an OR chain");
    S("OR SUBJECT hello BODY fox", "10 50", "OR of strings");

    saved = (const uint32_t[]){ 20, 40 };
    nsaved = 2;
    S("$", "20 40", "$ as a sequence set");
    S("UID $", "20 40", "UID $");
    S("NOT $", "10 30 50", "NOT $");
    S("OR $ SEEN", "10 20 40 50", "OR $ SEEN");
    ok(imapsearch_needs(last) == IMAPSEARCH_NEED_SAVED, "needs(): $ asks for the saved result");
    saved = NULL;
    nsaved = 0;
    S("$", "", "no saved result: $ names nothing");

    s = repeat("", "NOT ", 100, "SEEN");
    S(s, "10 50", "100 NOTs: the depth limit");
    free(s);
    s = repeat("", "NOT ", 101, "SEEN");
    S(s, "ERR -1 search keys nested too deep", "101 NOTs: too deep");
    free(s);
    s = repeat("", "(", 101, "SEEN");
    {
        char *t = repeat(s, ")", 101, "");

        S(t, "ERR -1 search keys nested too deep", "101 nested lists: too deep");
        free(t);
    }
    free(s);
    s = repeat("", "(", 100, "SEEN");
    {
        char *t = repeat(s, ")", 100, "");

        S(t, "10 50", "100 nested lists");
        free(t);
    }
    free(s);
    s = repeat("", "OR UID 1 ", 2000, "SEEN");
    S(s, "10 50", "an OR chain of 2000 does not nest");
    free(s);
    opts.max_keys = 5;
    S("SEEN SEEN SEEN SEEN SEEN", "10 50", "five keys: the limit set");
    S("SEEN SEEN SEEN SEEN SEEN SEEN", "ERR -1 too many search keys", "six: too many");
    S("OR SEEN OR SEEN OR SEEN SEEN", "ERR -1 too many search keys", "ORs count as keys");
    opts.max_keys = 0;
}

static void test_dates(void)
{
    S("BEFORE 2-Feb-1994", "10 20", "BEFORE: 23:30 -0700 on the 1st is the 1st");
    S("ON 1-Feb-1994", "10 20", "ON in the internal date's own zone");
    S("ON 2-Feb-1994", "", "ON the day none falls on in its own zone (UTC would say 20 and 30)");
    S("ON \"3-Feb-1994\"", "30", "a quoted date; 00:00 +0100 is the 3rd");
    S("SINCE 3-Feb-1994", "30 40 50", "SINCE is on or after");
    S("SINCE 01-feb-1994", "10 20 30 40 50", "a day of two digits, the month in any case");
    S("BEFORE 1-Feb-1994", "", "BEFORE the first day");
    S("SENTON 1-Feb-1994", "10", "SENTON");
    S("SENTON 2-Feb-1994", "20", "SENTON: two-digit year, no seconds, EST");
    S("SENTON 3-Feb-1994", "30", "SENTON: a broken Date: uses the internal date");
    S("SENTON 4-Feb-1994", "40", "SENTON: no Date: uses the internal date");
    S("SENTON 5-Feb-1994", "50", "SENTON: the Date:'s own zone (-1200), with a comment");
    S("SENTBEFORE 3-Feb-1994", "10 20", "SENTBEFORE");
    S("SENTSINCE 3-Feb-1994", "30 40 50", "SENTSINCE");
    S("SENTSINCE 6-Feb-1994", "", "SENTSINCE past every date");
}

static void test_charset(void)
{
    S("CHARSET UTF-8 SUBJECT hello", "10 50", "CHARSET UTF-8");
    S("charset us-ascii SUBJECT hello", "10 50", "CHARSET US-ASCII, any case");
    S("CHARSET ISO-8859-1 SUBJECT {4+}\001CAF\xc9\001", "20", "CHARSET ISO-8859-1 converted");
    S("CHARSET ISO-8859-1 SUBJECT hello", "10 50", "ISO-8859-1 with ASCII only");
    S("CHARSET KOI8-R BODY {6+}\001\xf0\xf2\xe9\xf7\xe5\xf4\001", "40",
      "CHARSET KOI8-R converted");
    S("CHARSET X-NOWHERE SEEN", "ERR -2 unknown charset", "an unknown charset: -2");
    S("CHARSET \"\" SEEN", "ERR -2 unknown charset", "an empty charset name: -2");
    S("CHARSET UTF-8//IGNORE SEEN", "ERR -2 unknown charset", "iconv's suffixes are not charsets");
    S("CHARSET UTF-8 SUBJECT {2+}\001\xc3\x28\001", "", "invalid UTF-8 is compared as octets");
    opts.utf8_mode = true;
    S("CHARSET UTF-8 SEEN", "10 50", "UTF-8 mode: CHARSET UTF-8 accepted");
    S("CHARSET ISO-8859-1 SEEN", "ERR -1 CHARSET other than UTF-8 after ENABLE UTF8=ACCEPT",
      "UTF-8 mode: another charset is BAD");
    opts.utf8_mode = false;
}

static void test_errors(void)
{
    S("", "ERR -1 no search key", "no key at all");
    S("FOO", "ERR -1 unknown search key", "an unknown key");
    S("SEEN FOO", "ERR -1 unknown search key", "an unknown key after a good one");
    S("\"SEEN\"", "ERR -1 a search key was expected", "a quoted key");
    S("NIL", "ERR -1 a search key was expected", "NIL as a key");
    S("OR SEEN", "ERR -1 OR needs two search keys", "OR with one key");
    S("OR", "ERR -1 OR needs two search keys", "OR with none");
    S("(OR SEEN) SEEN", "ERR -1 OR needs two search keys", "OR's keys end with its list");
    S("NOT", "ERR -1 NOT needs a search key", "NOT alone");
    S("()", "ERR -1 empty list of search keys", "an empty list");
    S("(SEEN", "PARSE unbalanced parentheses", "an open list: the parser's");
    S("LARGER", "ERR -1 missing argument to a search key", "LARGER without a number");
    S("LARGER -1", "ERR -1 bad number", "LARGER -1");
    S("LARGER 99999999999999999999", "ERR -1 bad number", "LARGER past 2^64");
    S("LARGER 9223372036854775808", "ERR -1 bad number", "LARGER 2^63");
    S("SMALLER \"5\"", "ERR -1 bad number", "a quoted number");
    S("SMALLER 5x", "ERR -1 bad number", "trailing junk in a number");
    S("BEFORE", "ERR -1 missing argument to a search key", "BEFORE without a date");
    S("BEFORE 31-Feb-1994", "ERR -1 bad date", "31 February");
    S("BEFORE 29-Feb-1994", "ERR -1 bad date", "29 February, not a leap year");
    S("BEFORE 29-Feb-2000", "10 20 30 40 50", "29 February 2000, a leap year");
    S("BEFORE 1-Foo-1994", "ERR -1 bad date", "a bad month");
    S("BEFORE 1-Feb-94", "ERR -1 bad date", "a two-digit year");
    S("BEFORE 0-Feb-1994", "ERR -1 bad date", "day 0");
    S("BEFORE 123-Feb-1994", "ERR -1 bad date", "a three-digit day");
    S("BEFORE (1-Feb-1994)", "ERR -1 bad date", "a list as a date");
    S("UID", "ERR -1 missing argument to a search key", "UID without a set");
    S("UID 1:x", "ERR -1 bad range in a sequence set", "a bad set");
    S("UID 0", "ERR -1 bad number in a sequence set", "UID 0");
    S("UID \"1\"", "ERR -1 bad sequence set", "a quoted set");
    S("1,,2", "ERR -1 bad number in a sequence set", "a bad set as a key");
    S("HEADER", "ERR -1 missing argument to a search key", "HEADER without a name");
    S("HEADER Subject", "ERR -1 missing argument to a search key", "HEADER without a value");
    S("HEADER \"\" x", "ERR -1 bad header field name", "HEADER with an empty name");
    S("HEADER \"a:b\" x", "ERR -1 bad header field name", "HEADER with ':' in the name");
    S("SUBJECT", "ERR -1 missing argument to a search key", "SUBJECT without a string");
    S("SUBJECT (a)", "ERR -1 a string was expected", "a list as a string");
    S("KEYWORD", "ERR -1 missing argument to a search key", "KEYWORD without a flag");
    S("KEYWORD \"x\"", "ERR -1 bad keyword", "a quoted keyword");
    S("KEYWORD \\Foo", "ERR -1 bad keyword", "an unknown system flag");
    S("RETURN (ALL) SEEN", "ERR -1 unknown search key", "RETURN without ESEARCH");
    S("CHARSET", "ERR -1 CHARSET needs a charset name", "CHARSET without a name");
    S("CHARSET UTF-8", "ERR -1 no search key", "CHARSET without keys");
    S("SEEN CHARSET UTF-8", "ERR -1 unknown search key", "CHARSET only first");
}

static void test_return(void)
{
    bool has = true;

    S("SEEN", "10 50", "plain SEARCH");
    is_int(imapsearch_return(last, &has), 0, "no RETURN: 0");
    ok(!has, "  and has_return false");
    opts.allow_return = true;
    S("RETURN (MIN MAX) SEEN", "10 50", "RETURN (MIN MAX)");
    is_int(imapsearch_return(last, &has), IMAPSEARCH_RET_MIN | IMAPSEARCH_RET_MAX, "  MIN MAX");
    ok(has, "  has_return");
    S("RETURN () SEEN", "10 50", "RETURN ()");
    is_int(imapsearch_return(last, &has), IMAPSEARCH_RET_ALL, "  is ALL");
    ok(has, "  has_return");
    S("return (count Save all) CHARSET UTF-8 SEEN", "10 50", "RETURN then CHARSET");
    is_int(imapsearch_return(last, NULL),
           IMAPSEARCH_RET_COUNT | IMAPSEARCH_RET_SAVE | IMAPSEARCH_RET_ALL, "  COUNT SAVE ALL");
    S("SEEN", "10 50", "no RETURN with ESEARCH allowed");
    is_int(imapsearch_return(last, &has), 0, "  0");
    ok(!has, "  no has_return");
    S("RETURN (FOO) SEEN", "ERR -1 unknown RETURN option", "an unknown RETURN option");
    S("RETURN (PARTIAL 1:10) SEEN", "ERR -1 unknown RETURN option", "PARTIAL is not supported");
    S("RETURN ALL SEEN", "ERR -1 RETURN needs a list of options", "RETURN without a list");
    S("RETURN (MIN)", "ERR -1 no search key", "RETURN without keys");
    S("SEEN RETURN (MIN)", "ERR -1 unknown search key", "RETURN only first");
    opts.allow_return = false;
}

static void test_needs(void)
{
    char *s;

    s = search("SEEN LARGER 5 UID 1:* BEFORE 1-Jan-2000");
    free(s);
    is_int(imapsearch_needs(last), 0, "needs(): flags, size, UID, internal date: none");
    s = search("SUBJECT x");
    free(s);
    is_int(imapsearch_needs(last), IMAPSEARCH_NEED_HEADER, "needs(): SUBJECT: header");
    s = search("SENTON 1-Feb-1994");
    free(s);
    is_int(imapsearch_needs(last), IMAPSEARCH_NEED_HEADER, "needs(): SENTON: header");
    s = search("BODY x");
    free(s);
    is_int(imapsearch_needs(last), IMAPSEARCH_NEED_BODY, "needs(): BODY: body");
    s = search("TEXT x");
    free(s);
    is_int(imapsearch_needs(last), IMAPSEARCH_NEED_TEXT, "needs(): TEXT: text");
    s = search("OR BODY x NOT (TEXT y HEADER a b)");
    free(s);
    is_int(imapsearch_needs(last),
           IMAPSEARCH_NEED_BODY | IMAPSEARCH_NEED_TEXT | IMAPSEARCH_NEED_HEADER,
           "needs(): every bit through OR and NOT");
}

static void counts(const char *args, const char *want, int header, int body, int text,
                   const char *name)
{
    n_header = n_body = n_text = 0;
    S(args, want, "%s", name);
    ok(n_header == header && n_body == body && n_text == text,
       "  callbacks: header %d body %d text %d", n_header, n_body, n_text);
}

static void test_short_circuit(void)
{
    counts("UNSEEN BODY fox", "", 0, 3, 0, "UNSEEN BODY: bodies of the unseen only");
    counts("BODY fox SEEN", "10", 0, 2, 0, "BODY SEEN: the flag first whatever the order");
    counts("OR BODY fox SEEN", "10 50", 0, 3, 0, "OR: the body only when SEEN fails");
    counts("NOT (BODY fox DELETED)", "10 20 30 40 50", 0, 1, 0, "NOT of an AND: the flag first");
    counts("TEXT x BODY y FROM zed DELETED", "", 1, 0, 0,
           "TEXT BODY FROM DELETED: header before body before text");
    counts("UID 10 SENTON 1-Feb-1994", "10", 1, 0, 0, "UID before the Date: header");
    counts("ON 1-Feb-1994 OR SUBJECT x TEXT y", "", 2, 0, 2,
           "internal date before header, header before text");
    n_flags = 0;
    counts("UID 1:15 UNSEEN", "", 0, 0, 0, "UID first among the cheap keys as written");
    is_int(n_flags, 1, "  flags read once, for the one message in the UID range");
}

static void test_vanished(void)
{
    int r;

    S("SUBJECT x", "", "before vanishing");
    msgs[2].vanished = true;
    S("SUBJECT x", "!30", "a vanished message: -1 for it");
    S("BODY zzz", "!30", "BODY of a vanished message: -1");
    S("TEXT zzz", "!30", "TEXT of a vanished message: -1");
    S("SENTON 1-Feb-1994", "10 !30", "SENTON of a vanished message: -1");
    S("SEEN SUBJECT x", "", "a flag key decides first: no read, no error");
    S("OR DELETED SUBJECT x", "30", "an OR decided by a flag: no read");
    S("NOT SUBJECT x", "10 20 !30 40 50", "NOT keeps the -1");
    r = imapsearch_match(last, &ops, &msgs[2], NMSG, 50, NULL, 0);
    is_int(r, -1, "imapsearch_match returns -1");
    msgs[2].vanished = false;
}

/* Straight through the API: NULL options, a set's "*" changing between
 * messages (the program's cached resolution follows it). */
static void test_direct(void)
{
    struct imapparse_state st = {0};
    const struct imap_command *cmd;
    imapsearch_t *p = NULL;
    const char *why = NULL;

    imapparse_reset(parser);
    if (imapparse_line(parser, "A1 SEARCH 4:*", 13, &st) != IMAPPARSE_DONE)
        abort();
    cmd = imapparse_command(parser);
    is_int(imapsearch_compile(cmd->args, cmd->nargs, NULL, &p, &why), 0, "NULL options");
    is_int(imapsearch_match(p, &ops, &msgs[3], 5, 50, NULL, 0), 1, "4:* with * 5: message 4");
    is_int(imapsearch_match(p, &ops, &msgs[2], 5, 50, NULL, 0), 0, "  not message 3");
    is_int(imapsearch_match(p, &ops, &msgs[2], 3, 50, NULL, 0), 1,
           "4:* with * 3 (a new star): message 3");
    is_int(imapsearch_match(p, &ops, &msgs[3], 0, 0, NULL, 0), 0, "* 0: nothing");
    imapsearch_free(&p);
    ok(p == NULL, "free NULLs the pointer");
    imapsearch_free(&p);
}

static void test_datefns(void)
{
    time_t t, day;
    int tz = 1;
    buf_t *b = buf_new(0);
    struct tm tm = { .tm_year = 96, .tm_mon = 6, .tm_mday = 17, .tm_hour = 9,
                     .tm_min = 44, .tm_sec = 25 };

    is_int(imap_parse_datetime("17-Jul-1996 02:44:25 -0700", &t, &tz), 0, "datetime parses");
    is_int(t, timegm(&tm), "  the time in UTC");
    is_int(tz, -420, "  the zone -0700");
    is_int(imap_parse_datetime("\"17-jul-1996 02:44:25 -0700\"", &t, &tz), 0, "with quotes");
    is_int(t, timegm(&tm), "  the same time");
    is_int(imap_parse_datetime(" 7-Jul-1996 02:44:25 +0530", &t, &tz), 0, "day as SP DIGIT");
    is_int(tz, 330, "  +0530");
    is_int(imap_parse_datetime("07-Jul-1996 02:44:25 +0000", &t, &tz), 0, "day as 07");
    is_int(imap_parse_datetime("29-Feb-2000 00:00:00 +0000", &t, &tz), 0, "29-Feb-2000");
    ok(imap_parse_datetime("29-Feb-2001 00:00:00 +0000", &t, &tz) < 0, "29-Feb-2001 refused");
    ok(imap_parse_datetime("17-Jul-1996 24:00:00 +0000", &t, &tz) < 0, "hour 24 refused");
    ok(imap_parse_datetime("17-Jul-1996 02:60:00 +0000", &t, &tz) < 0, "minute 60 refused");
    ok(imap_parse_datetime("17-Jul-1996 02:44:25 0700", &t, &tz) < 0, "zone without sign refused");
    ok(imap_parse_datetime("17-Jul-1996 02:44:25 +07000", &t, &tz) < 0, "zone of 5 digits refused");
    ok(imap_parse_datetime("17-Jul-1996 02:44:25 +0760", &t, &tz) < 0, "zone minute 60 refused");
    ok(imap_parse_datetime("17-Jul-96 02:44:25 +0000", &t, &tz) < 0, "two-digit year refused");
    ok(imap_parse_datetime("17-Jul-1996 2:44:25 +0000", &t, &tz) < 0, "one-digit hour refused");
    ok(imap_parse_datetime("17-Jul-1996 02:44:25 +0000 ", &t, &tz) < 0, "trailing space refused");
    ok(imap_parse_datetime("17-Jul-1996", &t, &tz) < 0, "a date alone refused");
    ok(imap_parse_datetime("", &t, &tz) < 0, "an empty string refused");

    imap_format_datetime(b, timegm(&tm), -420);
    is_str(b->data, "\"17-Jul-1996 02:44:25 -0700\"", "format -0700");
    buf_reset(b);
    imap_format_datetime(b, 0, 0);
    is_str(b->data, "\"01-Jan-1970 00:00:00 +0000\"", "format the epoch");
    buf_reset(b);
    imap_format_datetime(b, -1, 0);
    is_str(b->data, "\"31-Dec-1969 23:59:59 +0000\"", "format a second before it");
    buf_reset(b);
    imap_format_datetime(b, 951782400, 330);        /* 2000-02-29 00:00 UTC */
    is_str(b->data, "\"29-Feb-2000 05:30:00 +0530\"", "format +0530, a leap day");
    buf_reset(b);
    imap_format_datetime(b, 951782400, -30);
    is_str(b->data, "\"28-Feb-2000 23:30:00 -0030\"", "format -0030 across midnight");
    buf_reset(b);
    imap_format_datetime(b, 951782400, -30);
    is_int(imap_parse_datetime(b->data, &t, &tz), 0, "the format parses back");
    ok(t == 951782400 && tz == -30, "  to the same time and zone");
    buf_free(&b);

    tm = (struct tm){ .tm_year = 94, .tm_mon = 1, .tm_mday = 1 };
    is_int(imap_parse_date("1-Feb-1994", &day), 0, "date parses");
    is_int(day, timegm(&tm), "  its midnight UTC");
    is_int(imap_parse_date("\"01-FEB-1994\"", &day), 0, "quoted, two digits, upper case");
    is_int(day, timegm(&tm), "  the same day");
    ok(imap_parse_date("1-Feb-1994x", &day) < 0, "trailing junk refused");
    ok(imap_parse_date("32-Jan-2000", &day) < 0, "day 32 refused");
    ok(imap_parse_date("1-Feb-19940", &day) < 0, "five-digit year refused");
    ok(imap_parse_date("1 Feb 1994", &day) < 0, "spaces refused");
    ok(imap_parse_date("\"1-Feb-1994", &day) < 0, "one quote refused");
    ok(imap_parse_date("", &day) < 0, "empty refused");
}

static void msgdate(const char *s, int want_rc, const char *want_utc, int want_tz,
                    const char *name)
{
    time_t t = 0;
    int tz = 9999;
    int rc = imapsearch_parse_msgdate(s, strlen(s), &t, &tz);
    buf_t *b = buf_new(0);

    if (want_rc < 0) {
        is_int(rc, -1, "%s", name);
    } else {
        imap_format_datetime(b, t, 0);
        ok(rc == 0 && strcmp(b->data, want_utc) == 0 && tz == want_tz,
           "%s (rc %d, %s, tz %d)", name, rc, b->data, tz);
    }
    buf_free(&b);
}

static void test_msgdate(void)
{
    msgdate("Tue, 1 Feb 1994 10:00:00 +0000", 0, "\"01-Feb-1994 10:00:00 +0000\"", 0,
            "RFC 5322 date-time");
    msgdate("2 Feb 94 01:00 EST", 0, "\"02-Feb-1994 06:00:00 +0000\"", -300,
            "no day name, two-digit year, no seconds, EST");
    msgdate("(c) Tue (x) , 1 (y) Feb 1994 10 : 00 : 07 GMT (z)", 0,
            "\"01-Feb-1994 10:00:07 +0000\"", 0, "comments and blanks everywhere");
    msgdate("Sat, 05 Feb 1994 23:59:59 -1200 (a comment)", 0, "\"06-Feb-1994 11:59:59 +0000\"",
            -720, "-1200 and a comment");
    msgdate("1 Jan 49 00:00 +0000", 0, "\"01-Jan-2049 00:00:00 +0000\"", 0, "49 is 2049");
    msgdate("1 Jan 50 00:00 +0000", 0, "\"01-Jan-1950 00:00:00 +0000\"", 0, "50 is 1950");
    msgdate("1 Jan 101 00:00 +0000", 0, "\"01-Jan-2001 00:00:00 +0000\"", 0, "101 is 2001");
    msgdate("Mon, 1 January 2024", 0, "\"01-Jan-2024 00:00:00 +0000\"", 0,
            "a date alone, the month's name in full");
    msgdate("1 Jan 2024 12:00 z", 0, "\"01-Jan-2024 12:00:00 +0000\"", 0, "military zone");
    msgdate("1 Jan 2024 12:00 PDT", 0, "\"01-Jan-2024 19:00:00 +0000\"", -420, "PDT");
    msgdate("1 Jan 2024 12:00:00\r\n +0100", 0, "\"01-Jan-2024 11:00:00 +0000\"", 60,
            "folded before the zone");
    msgdate("not a date", -1, NULL, 0, "words: refused");
    msgdate("31 Feb 2020 10:00 +0000", -1, NULL, 0, "31 Feb: refused");
    msgdate("1 Jan 2020 25:00 +0000", -1, NULL, 0, "hour 25: refused");
    msgdate("1 Foo 2020", -1, NULL, 0, "bad month: refused");
    msgdate("2020-01-01 10:00", -1, NULL, 0, "ISO 8601: refused");
    msgdate("", -1, NULL, 0, "empty: refused");
}

int main(void)
{
    parser = imapparse_new(&lim);
    test_keys();
    test_strings();
    test_logic();
    test_dates();
    test_charset();
    test_errors();
    test_return();
    test_needs();
    test_short_circuit();
    test_vanished();
    test_direct();
    test_datefns();
    test_msgdate();
    imapsearch_free(&last);
    imapparse_free(&parser);
    for (size_t i = 0; i < NMSG; i++)
        buf_free(&msgs[i].out);
    return done_testing();
}
