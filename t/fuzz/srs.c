/*
 * t/fuzz/srs.c - libFuzzer harness for lib/srs.c, the Sender Rewriting
 * Scheme: srs_reverse() sees whatever a client may give as a recipient
 * (smtpd's RCPT through lookupd, any message through cleanup);
 * srs_forward() whatever envelope sender mail arrives with.
 *
 * The input, up to its first NUL, is: an address for srs_reverse(), as
 * it is and with "@fwd.example" (our domain) after it: it never crashes,
 * and what it accepts is an address with a local part and a domain; a
 * sender for srs_forward(): when it gives an address, srs_reverse() takes
 * it back (the same day and srs_max_age days later, lower-cased too, but
 * not a day after that for an SRS0), and gives the sender itself (an
 * ordinary sender), the SRS0 address it was (its tag's case aside) or, for
 * an SRS1 sender, the SRS0 part at the first forwarder that the SRS1
 * named; the whole input for srs_secrets_parse(), which accepts 1 to 16
 * secrets or says why not.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzzlib.h"
#include "srs.h"
#include "xalloc.h"

#define DAY 86400

static srs_t *s;

static char *lower(const char *a)
{
    char *l = xstrdup(a);

    for (char *p = l; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return l;
}

static void check_reverse(const char *address, time_t now)
{
    const char *why = NULL;
    char *out = NULL;
    int r = srs_reverse(s, address, now, &out, &why);

    if (r == SRS_OK) {
        const char *at = out ? strrchr(out, '@') : NULL;

        if (at == NULL || at == out || at[1] == '\0')
            fuzz_fail("srs_reverse(%s) gave %s", address, out ? out : "(null)");
    } else if (r != SRS_NOT_SRS && r != SRS_INVALID) {
        fuzz_fail("srs_reverse(%s) returned %d", address, r);
    } else if (out != NULL || why == NULL) {
        fuzz_fail("srs_reverse(%s) failed with output or without a reason", address);
    }
    free(out);
}

/* What reversing srs_forward(sender) must give. */
static char *expected(const char *sender, const char *fwd)
{
    const char *at = strrchr(fwd, '@'), *host, *rest;

    if (strncmp(fwd, "SRS0=", 5) == 0)
        return xstrdup(sender);
    /* SRS1=HHHH=first=rest@ours */
    host = fwd + 5 + SRS_HASH_LEN + 1;
    rest = strchr(host, '=');
    if (strncmp(fwd, "SRS1=", 5) != 0 || rest == NULL || rest > at)
        fuzz_fail("srs_forward(%s) gave %s", sender, fwd);
    if (strncasecmp(sender, "SRS0", 4) == 0)
        return xasprintf("SRS0%s", sender + 4);
    if (strncasecmp(sender, "SRS1", 4) != 0)
        fuzz_fail("srs_forward(%s) made an SRS1 of an ordinary sender: %s", sender, fwd);
    return xasprintf("SRS0%.*s@%.*s", (int)(at - rest - 1), rest + 1, (int)(rest - host), host);
}

static void check_forward(const char *sender, time_t now)
{
    const char *why = NULL;
    char *fwd = NULL, *back = NULL, *want, *l;
    int r;

    if (srs_forward(s, sender, now, &fwd, &why) < 0) {
        if (fwd != NULL || why == NULL)
            fuzz_fail("srs_forward(%s) failed with output or without a reason", sender);
        return;
    }
    if (strlen(fwd) > SRS_ADDRESS_MAX || !srs_is_srs_local(fwd))
        fuzz_fail("srs_forward(%s) gave %s", sender, fwd);
    want = expected(sender, fwd);
    r = srs_reverse(s, fwd, now, &back, &why);
    /* Exact, but for the case of the tag of an SRS0 sender made SRS1. */
    if (r != SRS_OK || strlen(back) != strlen(want)
        || (strncmp(fwd, "SRS0=", 5) == 0 ? strcmp(back, want) != 0
            : strncasecmp(back, want, 4) != 0 || strcmp(back + 4, want + 4) != 0))
        fuzz_fail("srs_reverse(srs_forward(%s) = %s) = %d %s, want %s", sender, fwd, r,
                  r == SRS_OK ? back : why, want);
    xfree(&back);
    if (srs_reverse(s, fwd, now + 21 * DAY, &back, &why) != SRS_OK)
        fuzz_fail("%s refused on day 21: %s", fwd, why);
    xfree(&back);
    r = srs_reverse(s, fwd, now + 22 * DAY, &back, &why);
    if ((strncmp(fwd, "SRS0", 4) == 0) != (r == SRS_INVALID))
        fuzz_fail("%s on day 22: %d", fwd, r);
    xfree(&back);
    l = lower(fwd);
    if (srs_reverse(s, l, now, &back, &why) != SRS_OK)
        fuzz_fail("%s lower-cased refused: %s", fwd, why);
    free(l);
    free(back);
    free(want);
    free(fwd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = xstrndup((const char *)data, size), *ours;
    time_t now = (time_t)1700000000 + (time_t)(size * 7919 % 3000) * DAY;
    const char *why = NULL;
    srs_t *parsed;

    if (s == NULL) {
        fuzz_init();
        s = srs_new("fwd.example", 21);
        srs_add_secret(s, "fuzz-secret-number-one", 22);
        srs_add_secret(s, "fuzz-secret-number-two", 22);
    }
    check_reverse(text, now);
    ours = xasprintf("%s@fwd.example", text);
    check_reverse(ours, now);
    free(ours);
    check_forward(text, now);

    parsed = srs_new("x", 1);
    if (srs_secrets_parse(parsed, (const char *)data, size, &why) == 0) {
        if (srs_nsecrets(parsed) < 1 || srs_nsecrets(parsed) > SRS_SECRETS_MAX)
            fuzz_fail("srs_secrets_parse accepted %zu secrets", srs_nsecrets(parsed));
    } else if (why == NULL) {
        fuzz_fail("srs_secrets_parse failed without a reason");
    }
    srs_free(&parsed);
    free(text);
    return 0;
}
