/*
 * common.c - IMAP pieces the parts of imapd share: the capability list
 * after login, strings and flag lists as the protocol writes them.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "imapd.h"

void imap_capability_auth(buf_t *out)
{
    buf_append_str(out, "IMAP4rev1 IMAP4rev2 SASL-IR ID ENABLE IDLE LITERAL+ NAMESPACE UNSELECT "
                   "UIDPLUS MOVE CHILDREN SPECIAL-USE LIST-EXTENDED LIST-STATUS ESEARCH "
                   "SEARCHRES MULTIAPPEND BINARY UTF8=ACCEPT STATUS=SIZE");
    buf_printf(out, " APPENDLIMIT=%lld", imap_append_limit());
}

long long imap_append_limit(void)
{
    long long limit = conf_size("message_size_limit");

    /* A message is a literal held in memory: "no limit" is 1 GiB. */
    return limit > 0 && limit < IMAP_APPEND_MAX ? limit : IMAP_APPEND_MAX;
}

void imap_put_string(buf_t *out, const char *s, size_t len, bool utf8)
{
    bool quote = len <= 1024;

    for (size_t i = 0; quote && i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '\0' || c == '\r' || c == '\n' || (c >= 0x80 && !utf8))
            quote = false;
    }
    if (!quote) {
        buf_printf(out, "{%zu}\r\n", len);
        buf_append(out, s, len);
        return;
    }
    buf_putc(out, '"');
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\')
            buf_putc(out, '\\');
        buf_putc(out, s[i]);
    }
    buf_putc(out, '"');
}

void imap_put_nstring(buf_t *out, const char *s)
{
    if (s == NULL)
        buf_append_str(out, "NIL");
    else
        imap_put_string(out, s, strlen(s), false);
}

static const struct {
    const char *name;
    unsigned    bit;
} imap_flag_names[] = {
    {"\\Seen", IMAP_F_SEEN},       {"\\Answered", IMAP_F_ANSWERED},
    {"\\Flagged", IMAP_F_FLAGGED}, {"\\Deleted", IMAP_F_DELETED},
    {"\\Draft", IMAP_F_DRAFT},     {"\\Recent", IMAP_F_RECENT},
};

void imap_put_flags(buf_t *out, unsigned flags, const char *const *kw, size_t nkw)
{
    bool first = true;

    buf_putc(out, '(');
    for (size_t i = 0; i < sizeof(imap_flag_names) / sizeof(imap_flag_names[0]); i++)
        if (flags & imap_flag_names[i].bit) {
            if (!first)
                buf_putc(out, ' ');
            buf_append_str(out, imap_flag_names[i].name);
            first = false;
        }
    for (size_t i = 0; i < nkw; i++) {
        if (!first)
            buf_putc(out, ' ');
        buf_append_str(out, kw[i]);
        first = false;
    }
    buf_putc(out, ')');
}

unsigned imap_flag_bit(const char *name)
{
    for (size_t i = 0; i < sizeof(imap_flag_names) / sizeof(imap_flag_names[0]); i++)
        if (strcasecmp(name, imap_flag_names[i].name) == 0)
            return imap_flag_names[i].bit;
    return 0;
}

/* A keyword is a flag-keyword: an atom (RFC 9051 9: no atom-specials,
 * no ']' either), not starting with '\'; at most 128 octets here. */
bool imap_keyword_ok(const char *kw)
{
    size_t n = strlen(kw);

    if (n == 0 || n > 128 || kw[0] == '\\')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)kw[i];

        if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c))
            return false;
    }
    return true;
}
