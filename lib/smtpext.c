/*
 * smtpext - ESMTP extension keywords and the EHLO reply (see smtpext.h).
 *
 * Grammar (RFC 5321 4.1.1.1):
 *   ehlo-line    = ehlo-keyword *( SP ehlo-param )
 *   ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
 *   ehlo-param   = 1*(%d33-126)
 * Several SP between words are tolerated; a line whose keyword is not
 * followed by SP or the end (or "=" for AUTH=) is ignored, as is any
 * keyword not in the table.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "smtpext.h"
#include "xalloc.h"

static const struct smtpext_keyword {
    const char *name;
    unsigned    bit;
} smtpext_keywords[] = {
    { "SIZE", SMTPEXT_SIZE },
    { "8BITMIME", SMTPEXT_8BITMIME },
    { "BINARYMIME", SMTPEXT_BINARYMIME },
    { "SMTPUTF8", SMTPEXT_SMTPUTF8 },
    { "DSN", SMTPEXT_DSN },
    { "AUTH", SMTPEXT_AUTH },
    { "PIPELINING", SMTPEXT_PIPELINING },
    { "STARTTLS", SMTPEXT_STARTTLS },
    { "CHUNKING", SMTPEXT_CHUNKING },
    { "ENHANCEDSTATUSCODES", SMTPEXT_ENHANCEDSTATUSCODES },
};

/* RFC 4422 3.1: sasl-mech = 1*20mech-char, upper-case letters, digits,
 * "-" and "_" (lower case accepted here and folded). */
#define SMTPEXT_MECH_MAX 20

static bool smtpext_alnum(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int smtpext_upper(int c)
{
    return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
}

void smtpext_caps_clear(struct smtpext_caps *caps)
{
    xfree(&caps->auth);
    caps->ext = 0;
    caps->size_max = 0;
}

/* " MECH " in the space-separated list list (any case). */
static bool smtpext_in_list(const char *list, const char *mech, size_t len)
{
    const char *p = list;

    while (*p) {
        size_t n = strcspn(p, " ");

        if (n == len && strncasecmp(p, mech, len) == 0)
            return true;
        p += n;
        if (*p == ' ')
            p++;
    }
    return false;
}

bool smtpext_has_auth(const struct smtpext_caps *caps, const char *mech)
{
    size_t len = strlen(mech);

    return caps->auth != NULL && len > 0 && strchr(mech, ' ') == NULL
           && smtpext_in_list(caps->auth, mech, len);
}

/* The words of p[0, len) as SASL mechanism names, added to b once each. */
static void smtpext_add_mechs(buf_t *b, const char *p, size_t len)
{
    size_t i = 0;

    while (i < len) {
        size_t start, n;
        bool good = true;

        while (i < len && p[i] == ' ')
            i++;
        for (start = i; i < len && p[i] != ' '; i++)
            if (!smtpext_alnum((unsigned char)p[i]) && p[i] != '-' && p[i] != '_')
                good = false;
        n = i - start;
        if (!good || n == 0 || n > SMTPEXT_MECH_MAX
            || smtpext_in_list(buf_cstr(b), p + start, n))
            continue;
        if (b->len > 0)
            buf_putc(b, ' ');
        for (size_t k = 0; k < n; k++)
            buf_putc(b, smtpext_upper((unsigned char)p[start + k]));
    }
}

/* SIZE's parameter: digits, saturating; anything else is "no limit". */
static uint64_t smtpext_size(const char *p, size_t len)
{
    uint64_t v = 0;
    size_t i = 0, start;

    while (i < len && p[i] == ' ')
        i++;
    for (start = i; i < len && p[i] >= '0' && p[i] <= '9'; i++) {
        unsigned d = (unsigned)(p[i] - '0');

        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    while (i < len && p[i] == ' ')
        i++;
    return i == start || i < len ? 0 : v;
}

int smtpext_parse_ehlo(const struct smtpreply *r, struct smtpext_caps *caps)
{
    buf_t *auth = NULL;
    size_t l;

    caps->auth = NULL;
    smtpext_caps_clear(caps);
    if (r->code != 250)
        return -1;
    for (l = 1; l < r->nlines; l++) {
        const char *line = r->lines[l];
        size_t len = strlen(line), k, i;

        for (k = 0; k < len && (smtpext_alnum((unsigned char)line[k])
                                || (k > 0 && line[k] == '-')); k++)
            ;
        if (k == 0)
            continue;
        for (i = 0; i < sizeof(smtpext_keywords) / sizeof(smtpext_keywords[0]); i++)
            if (strlen(smtpext_keywords[i].name) == k
                && strncasecmp(line, smtpext_keywords[i].name, k) == 0)
                break;
        if (i == sizeof(smtpext_keywords) / sizeof(smtpext_keywords[0]))
            continue;
        if (k < len && line[k] != ' ' && !(line[k] == '=' && smtpext_keywords[i].bit == SMTPEXT_AUTH))
            continue;
        caps->ext |= smtpext_keywords[i].bit;
        if (smtpext_keywords[i].bit == SMTPEXT_SIZE) {
            caps->size_max = smtpext_size(line + k, len - k);
        } else if (smtpext_keywords[i].bit == SMTPEXT_AUTH) {
            if (auth == NULL)
                auth = buf_new(0);
            if (k < len)
                smtpext_add_mechs(auth, line + k + 1, len - k - 1);
        }
    }
    if (auth) {
        caps->auth = buf_steal(auth, NULL);
        buf_free(&auth);
    }
    return 0;
}
