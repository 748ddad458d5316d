/*
 * t/unit/srs.c - unit tests for lib/srs.c: SRS0 forward and reverse (a
 * known answer computed apart, with Python's hmac), the case of the hash
 * and the time stamp, a wrong hash, an address too old and one from the
 * future, bad syntax, the separators libsrs2 accepts, SRS1 for an SRS0 or
 * SRS1 sender and the chain back through two forwarders, a local part
 * longer than 64 characters, '=' in the original local part, rotated
 * secrets, the secret file's text; and the configuration side: which
 * domains are ours, local's rule (srs_forward_sender), and srs_load()
 * with a good, an open and a missing secret file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "srs.h"
#include "xalloc.h"
#include "../lib/tap.h"
#include "../lib/testlib.h"

#define NOW   ((time_t)1700000000)     /* day 19675: 219 mod 1024, stamp "G3" */
#define DAY   86400
#define KEY   "0123456789abcdef-secret"
#define KEY2  "the-next-secret-0123456789"

static buf_t *errs;

static srs_t *make(const char *domain, const char *k1, const char *k2)
{
    srs_t *s = srs_new(domain, 21);

    if (k1)
        srs_add_secret(s, k1, strlen(k1));
    if (k2)
        srs_add_secret(s, k2, strlen(k2));
    return s;
}

static char *fwd(const srs_t *s, const char *sender, time_t now)
{
    const char *why = NULL;
    char *out = NULL;

    if (srs_forward(s, sender, now, &out, &why) < 0) {
        diag("srs_forward(%s): %s", sender, why);
        return NULL;
    }
    return out;
}

/* srs_reverse's result; *out fresh or NULL, *why static. */
static int rev(const srs_t *s, const char *address, time_t now, char **out, const char **why)
{
    return srs_reverse(s, address, now, out, why);
}

static void rev_is(const srs_t *s, const char *address, time_t now, const char *want,
                   const char *name)
{
    const char *why = "";
    char *out = NULL;
    int r = rev(s, address ? address : "", now, &out, &why);

    if (r != SRS_OK)
        diag("reverse %s: %s", address, why);
    is_str(r == SRS_OK ? out : NULL, want, "%s", name);
    free(out);
}

static void rev_bad(const srs_t *s, const char *address, time_t now, int want, const char *why_has,
                    const char *name)
{
    const char *why = "";
    char *out = NULL;
    int r = rev(s, address, now, &out, &why);

    is_int(r, want, "%s", name);
    ok(out == NULL, "%s: no address", name);
    if (why_has)
        like(why, why_has, "%s: says so", name);
    free(out);
}

static void set(const char *name, const char *value)
{
    buf_reset(errs);
    if (conf_set(name, value, "test", errs) < 0)
        diag("conf_set %s: %s", name, buf_cstr(errs));
}

static void scheme(void)
{
    srs_t *s = make("fwd.example", KEY, NULL), *other, *none;
    const char *why;
    char *a, *b, *c, *out, *lower, *long_local;

    /* SRS0 */
    a = fwd(s, "Alice@Sender.test", NOW);
    is_str(a, "SRS0=oTMk=G3=Sender.test=Alice@fwd.example",
           "SRS0: hash of the lower-cased stamp, domain and local part (known answer)");
    rev_is(s, a, NOW, "Alice@Sender.test", "SRS0 reverses to the original, case kept");
    rev_is(s, a, NOW + 21 * DAY, "Alice@Sender.test", "still on the 21st day (srs_max_age)");
    rev_bad(s, a, NOW + 22 * DAY, SRS_INVALID, "expired", "refused on the 22nd day");
    rev_is(s, a, NOW - DAY, "Alice@Sender.test", "a stamp of tomorrow passes (clock skew)");
    rev_bad(s, a, NOW - 2 * DAY, SRS_INVALID, "future", "one of the day after tomorrow does not");
    rev_is(s, a, NOW + 1024 * DAY, "Alice@Sender.test",
           "the stamp counts 1024 days and wraps round");

    lower = xstrdup(a);
    for (char *p = lower; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    rev_is(s, lower, NOW, "alice@sender.test", "hash and stamp compare without regard to case");
    free(lower);
    rev_is(s, "SRS0=OTMK=g3=Sender.test=Alice@FWD.Example.", NOW, "Alice@Sender.test",
           "an upper-cased hash, the domain in another case with a trailing dot");

    /* The separators after the tag. */
    rev_is(s, "SRS0+oTMk=G3=Sender.test=Alice@fwd.example", NOW, "Alice@Sender.test",
           "'+' after SRS0 is accepted");
    rev_is(s, "SRS0-oTMk=G3=Sender.test=Alice@fwd.example", NOW, "Alice@Sender.test",
           "'-' after SRS0 is accepted");
    rev_bad(s, "SRS0.oTMk=G3=Sender.test=Alice@fwd.example", NOW, SRS_NOT_SRS, NULL,
            "'.' after SRS0 is no SRS address");

    /* Wrong hashes and bad syntax. */
    rev_bad(s, "SRS0=oTMl=G3=Sender.test=Alice@fwd.example", NOW, SRS_INVALID, "hash",
            "a wrong hash");
    rev_bad(s, "SRS0=oTMk=G3=Sender.test=Alicf@fwd.example", NOW, SRS_INVALID, "hash",
            "a changed local part");
    rev_bad(s, "SRS0=oTMk=G3=Sender.tesu=Alice@fwd.example", NOW, SRS_INVALID, "hash",
            "a changed domain");
    rev_bad(s, "SRS0=oTMk=G4=Sender.test=Alice@fwd.example", NOW, SRS_INVALID, "hash",
            "a changed stamp");
    rev_bad(s, "SRS0=oTM=G3=Sender.test=Alice@fwd.example", NOW, SRS_INVALID, "hash",
            "a hash of three characters");
    rev_bad(s, "SRS0=oTMkk=G3=Sender.test=Alice@fwd.example", NOW, SRS_INVALID, "hash",
            "a hash of five characters");
    rev_bad(s, "SRS0=oTMk=G1=Sender.test=Alice@fwd.example", NOW, SRS_INVALID, NULL,
            "a stamp that is not base32");
    rev_bad(s, "SRS0=oTMk=G=Sender.test=Alice@fwd.example", NOW, SRS_INVALID, "malformed",
            "a stamp of one character");
    rev_bad(s, "SRS0=oTMk=G3=Sender.test@fwd.example", NOW, SRS_INVALID, "malformed",
            "no local part");
    rev_bad(s, "SRS0=oTMk=G3==Alice@fwd.example", NOW, SRS_INVALID, "malformed",
            "an empty domain");
    rev_bad(s, "SRS0=oTMk=G3=Sender.test=@fwd.example", NOW, SRS_INVALID, "malformed",
            "an empty local part");
    rev_bad(s, "SRS0=@fwd.example", NOW, SRS_INVALID, "malformed", "SRS0= alone");
    rev_bad(s, "SRS0=oTMk=G3=[192.0.2.1]=Alice@fwd.example", NOW, SRS_INVALID, "malformed",
            "an address literal as the domain");
    rev_bad(s, "SRS1=abcd@fwd.example", NOW, SRS_INVALID, "malformed", "SRS1 without fields");
    rev_bad(s, "SRS1=abcd=first.test=@fwd.example", NOW, SRS_INVALID, "malformed",
            "SRS1 with an empty rest");
    rev_bad(s, "SRS1=abcd=first.test=x@fwd.example", NOW, SRS_INVALID, "malformed",
            "SRS1 whose rest does not start with a separator");
    rev_is(s, a, NOW, "Alice@Sender.test", "(the good one still passes)");
    rev_bad(s, "SRS0=oTMk=G3=Sender.test=Alice@elsewhere.example", NOW, SRS_NOT_SRS, NULL,
            "another domain is not ours to reverse");
    rev_bad(s, "alice@fwd.example", NOW, SRS_NOT_SRS, NULL, "an ordinary address");
    rev_bad(s, "SRS2=oTMk=G3=Sender.test=Alice@fwd.example", NOW, SRS_NOT_SRS, NULL, "SRS2");
    rev_bad(s, "SRS0@fwd.example", NOW, SRS_NOT_SRS, NULL, "SRS0 without separator");
    rev_bad(s, "SRS0=oTMk=G3=Sender.test=Alice", NOW, SRS_NOT_SRS, NULL, "no domain");
    rev_bad(s, "", NOW, SRS_NOT_SRS, NULL, "the empty address");
    free(a);

    /* '=' in the original local part, and a very long one. */
    a = fwd(s, "a=b==c=@x.test", NOW);
    like(a, "=x.test=a=b==c=@fwd.example", "'=' in the local part is kept");
    rev_is(s, a, NOW, "a=b==c=@x.test", "and comes back");
    free(a);
    long_local = xcalloc(1, 201);
    memset(long_local, 'l', 200);
    b = xasprintf("%s@long.example", long_local);
    a = fwd(s, b, NOW);
    ok(a != NULL && strchr(a, '@') - a > 64,
       "a local part over 64 characters is still produced (as libsrs2 does)");
    rev_is(s, a, NOW, b, "and reverses");
    free(a);
    free(b);
    long_local = xrealloc(long_local, 1001);
    memset(long_local, 'l', 1000);
    b = xasprintf("%.*s@long.example", 1000, long_local);
    ok(srs_forward(s, b, NOW, &out, &why) < 0 && out == NULL && strstr(why, "too long"),
       "an address over SRS_ADDRESS_MAX is refused");
    free(b);
    free(long_local);

    /* Senders SRS cannot encode. */
    ok(srs_forward(s, "", NOW, &out, &why) < 0, "the null sender: no SRS address");
    ok(srs_forward(s, "alice", NOW, &out, &why) < 0, "no domain");
    ok(srs_forward(s, "@x.test", NOW, &out, &why) < 0, "no local part");
    ok(srs_forward(s, "alice@", NOW, &out, &why) < 0, "an empty domain");
    ok(srs_forward(s, "\"a b\"@x.test", NOW, &out, &why) < 0 && strstr(why, "local part"),
       "a quoted local part");
    ok(srs_forward(s, "alice@[192.0.2.1]", NOW, &out, &why) < 0 && strstr(why, "domain"),
       "an address literal");
    ok(srs_forward(s, "alice@x=y.test", NOW, &out, &why) < 0, "'=' in the domain");
    a = fwd(s, "j\xc3\xb6rg@b\xc3\xbc" "cher.test", NOW);
    rev_is(s, a, NOW, "j\xc3\xb6rg@b\xc3\xbc" "cher.test", "UTF-8 (SMTPUTF8) round trip");
    free(a);
    a = fwd(s, "SRS1=broken@x.test", NOW);
    like(a, "SRS0=", "a local part that only starts like SRS1 is an ordinary one");
    rev_is(s, a, NOW, "SRS1=broken@x.test", "and comes back as it was");
    free(a);

    /* SRS1: a chain of forwarders.  first.test made the SRS0; we (fwd)
     * forward it again, then a second forwarder (second.example) again. */
    other = make("first.test", "first-forwarder-secret!", NULL);
    a = fwd(other, "bob@orig.test", NOW);
    ok(a && strncmp(a, "SRS0=", 5) == 0 && strstr(a, "=orig.test=bob@first.test"),
       "the first forwarder's SRS0: %s", a);
    b = fwd(s, a, NOW);
    ok(b && strncmp(b, "SRS1=", 5) == 0 && strstr(b, "=first.test==")
       && strstr(b, "=orig.test=bob@fwd.example"),
       "an SRS0 sender becomes SRS1=HHHH=first.test==HHHH=TT=orig.test=bob@ours: %s", b);
    rev_is(s, b, NOW + 300 * DAY, a, "SRS1 reverses to the SRS0 at the first forwarder "
           "(no stamp of its own: the first forwarder checks the age)");
    {
        srs_t *second = make("second.example", "second-forwarder-secret", NULL);

        c = fwd(second, b, NOW);
        ok(c && strncmp(c, "SRS1=", 5) == 0 && strstr(c, "=first.test==")
           && strstr(c, "@second.example"), "an SRS1 sender keeps the first forwarder: %s", c);
        rev_is(second, c, NOW, a, "the second forwarder sends it straight to the first");
        rev_bad(s, c, NOW, SRS_NOT_SRS, NULL, "(not our domain)");
        srs_free(&second);
        free(c);
    }
    rev_is(other, a, NOW, "bob@orig.test", "and the first forwarder reverses its SRS0");
    c = xstrdup(b);
    c[5] = c[5] == 'A' ? 'B' : 'A';
    rev_bad(s, c, NOW, SRS_INVALID, "hash", "SRS1 with a wrong hash");
    free(c);
    c = xasprintf("SRS1+%s", b + 5);
    rev_is(s, c, NOW, a, "'+' after SRS1 is accepted");
    free(c);
    free(b);
    /* SRS0 with '+' from someone else: kept as it is. */
    b = fwd(s, "SRS0+xyzw=AB=orig.test=bob@first.test", NOW);
    like(b, "=first.test=+xyzw=AB=orig.test=bob@fwd.example", "SRS0+... keeps its separator");
    rev_is(s, b, NOW, "SRS0+xyzw=AB=orig.test=bob@first.test", "and gets it back");
    free(b);
    free(a);
    srs_free(&other);

    /* Rotated secrets: the first signs, every one verifies. */
    a = fwd(s, "carol@c.test", NOW);
    other = make("fwd.example", KEY2, KEY);
    rev_is(other, a, NOW, "carol@c.test", "an address of the old secret passes after rotation");
    b = fwd(other, "carol@c.test", NOW);
    ok(b && strcmp(a, b) != 0, "the new first secret signs");
    rev_bad(s, b, NOW, SRS_INVALID, "hash", "which the old secret alone does not verify");
    srs_free(&other);
    other = make("fwd.example", KEY2, NULL);
    rev_bad(other, a, NOW, SRS_INVALID, "hash", "an old secret removed: its addresses fail");
    rev_is(other, b, NOW, "carol@c.test", "the new one's pass");
    srs_free(&other);
    free(a);
    free(b);

    none = srs_new("fwd.example", 21);
    ok(srs_forward(none, "a@b.test", NOW, &out, &why) < 0 && strstr(why, "secret"),
       "no secret: no forward");
    rev_bad(none, "SRS0=oTMk=G3=Sender.test=Alice@fwd.example", NOW, SRS_INVALID, "secret",
            "no secret: an SRS address is refused");
    srs_free(&none);
    srs_free(&s);
    ok(s == NULL, "srs_free NULLs the pointer");
}

static void secrets(void)
{
    const char *why = NULL;
    srs_t *s = srs_new("fwd.example", 21);
    buf_t *b;

    {
        const char *text = "# rotated 2024\n\n  " KEY2 "  \r\n\t" KEY "\n";

        ok(srs_secrets_parse(s, text, strlen(text), &why) == 0, "comments, blanks and CRLF");
        is_int(srs_nsecrets(s), 2, "two secrets");
    }
    {
        char *out = NULL;
        srs_t *old = make("fwd.example", KEY, NULL);

        srs_forward(old, "d@d.test", NOW, &out, &why);
        rev_is(s, out, NOW, "d@d.test", "the second line verifies");
        free(out);
        srs_free(&old);
    }
    srs_free(&s);
#define BAD(text, has, name) do { \
        srs_t *s_ = srs_new("x", 1); \
        why = ""; \
        ok(srs_secrets_parse(s_, text, sizeof(text) - 1, &why) < 0, name); \
        like(why, has, name ": says why"); \
        srs_free(&s_); \
    } while (0)
    BAD("", "no secret", "an empty file");
    BAD("# only a comment\n\n", "no secret", "only comments");
    BAD("short\n", "shorter", "a secret under 16 characters");
    BAD("0123456789abcdef\0hidden\n", "control", "a NUL");
    BAD("0123456789ab\x01" "cdef\n", "control", "a control character");
    b = buf_new(0);
    for (int i = 0; i < 17; i++)
        buf_printf(b, "secret-number-%02d-padding\n", i);
    s = srs_new("x", 1);
    ok(srs_secrets_parse(s, b->data, b->len, &why) < 0 && strstr(why, "16"),
       "more than 16 secrets");
    srs_free(&s);
    buf_free(&b);
}

static void config(const char *dir)
{
    char *path = xasprintf("%s/srs.secret", dir), *out = NULL;
    const char *why = NULL;
    char *lwhy = NULL;
    srs_t *s = NULL;
    int r;

    ok(srs_domain_is_ours("example.test") && srs_domain_is_ours("Mail.Example.TEST.")
       && srs_domain_is_ours("virt.test") && !srs_domain_is_ours("other.test"),
       "our domains: mydestination and virtual_alias_domains");

    write_text(path, KEY "\n");
    chmod(path, 0600);
    if (geteuid() != 0) {
        ok(1, "# SKIP srs_load needs root (the secret file must be root's)");
    } else {
        r = srs_load(&s, &lwhy);
        is_int(r, 1, "srs_load: on, with the secret file");
        if (r != 1)
            diag("%s", lwhy);
        if (s) {
            is_str(srs_domain(s), "mail.example.test", "srs_domain defaults to $myhostname");
            is_int(srs_nsecrets(s), 1, "one secret");
            is_int(srs_forward_sender(s, "alice@sender.test", "bob@remote.test", NOW, &out, &why),
                   1, "a remote sender forwarded to a remote domain is rewritten");
            like(out, "SRS0=", "into SRS0");
            like(out, "@mail.example.test", "at srs_domain");
            free(out);
            is_int(srs_forward_sender(s, "", "bob@remote.test", NOW, &out, &why), 0,
                   "the null sender is not");
            is_int(srs_forward_sender(s, "joe@mail.example.test", "bob@remote.test", NOW, &out,
                                      &why), 0, "a sender of mydestination is not");
            is_int(srs_forward_sender(s, "joe@virt.test", "bob@remote.test", NOW, &out, &why), 0,
                   "nor one of a virtual alias domain");
            is_int(srs_forward_sender(s, "SRS0=oTMk=G3=Sender.test=Alice@example.test",
                                      "bob@remote.test", NOW, &out, &why), 0,
                   "nor an SRS address of our own");
            is_int(srs_forward_sender(s, "joe", "bob@remote.test", NOW, &out, &why), 0,
                   "nor a bare local name");
            is_int(srs_forward_sender(s, "alice@sender.test", "bob@localhost", NOW, &out, &why),
                   0, "a recipient of ours: not rewritten");
            is_int(srs_forward_sender(s, "\"a b\"@sender.test", "bob@remote.test", NOW, &out,
                                      &why), -1, "a sender SRS cannot encode: -1");
            ok(out == NULL && why != NULL, "with a reason");
        }
        srs_free(&s);
        free(lwhy);
        chmod(path, 0640);
        r = srs_load(&s, &lwhy);
        ok(r == -1 && s == NULL && lwhy && strstr(lwhy, "group or others"),
           "a secret file open to the group is refused: %s", lwhy ? lwhy : "");
        free(lwhy);
        unlink(path);
        r = srs_load(&s, &lwhy);
        ok(r == -1 && lwhy && strstr(lwhy, path), "a missing secret file: %s", lwhy ? lwhy : "");
        free(lwhy);
        r = symlink("/etc/passwd", path) == 0 ? srs_load(&s, &lwhy) : 0;
        ok(r == -1, "a symbolic link is refused: %s", lwhy ? lwhy : "");
        free(lwhy);
        unlink(path);
    }
    set("srs_domain", "elsewhere.test");
    r = srs_load(&s, &lwhy);
    ok(r == 0 && s == NULL && lwhy && strstr(lwhy, "neither mydestination"),
       "srs_domain that is not ours: off, with a warning");
    free(lwhy);
    set("srs_domain", "virt.test");
    write_text(path, KEY "\n");
    chmod(path, 0600);
    if (geteuid() == 0) {
        r = srs_load(&s, &lwhy);
        ok(r == 1, "srs_domain may be a virtual alias domain");
        srs_free(&s);
        free(lwhy);
    }
    set("srs_enable", "no");
    r = srs_load(&s, &lwhy);
    ok(r == 0 && s == NULL && lwhy == NULL, "srs_enable = no: off, nothing to say");
    unlink(path);
    free(path);
}

int main(void)
{
    char dir[] = "/tmp/posthorn-unit-srs-XXXXXX";
    char *path, *cmd;

    scheme();
    secrets();

    if (mkdtemp(dir) == NULL) {
        printf("Bail out! mkdtemp failed\n");
        return 1;
    }
    path = xasprintf("%s/main.conf", dir);
    write_text(path, "myhostname = mail.example.test\nmydomain = example.test\n"
                     "mydestination = $myhostname, localhost, $mydomain\n"
                     "virtual_alias_domains = virt.test\n");
    errs = buf_new(0);
    if (conf_load(dir, errs) < 0) {
        printf("Bail out! conf_load: %s\n", buf_cstr(errs));
        return 1;
    }
    config(dir);
    cmd = xasprintf("rm -rf %s", dir);
    if (system(cmd) != 0)
        diag("cannot remove %s", dir);
    free(cmd);
    free(path);
    buf_free(&errs);
    return done_testing();
}
