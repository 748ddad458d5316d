/*
 * authres - Authentication-Results fields (RFC 8601): see authres.h.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

#include "authres.h"
#include "buf.h"
#include "xalloc.h"

/* RFC 2045 token characters: printable ASCII but space and tspecials. */
static bool authres_tokenchar(unsigned char c)
{
    return c > 32 && c < 127 && !strchr("()<>@,;:\\\"/[]?=", c);
}

/* RFC 5322 atext. */
static bool authres_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
           || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* A dot-atom (or, for a domain, letters, digits, '-', '.' and '_'). */
static bool authres_dot_atom(const char *s, size_t n, bool domain)
{
    if (n == 0 || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '.') {
            if (s[i + 1] == '.')
                return false;
        } else if (domain ? !(authres_atext(c) && !strchr("!#$%&'*+/=?^`{|}~", c))
                          : !authres_atext(c)) {
            return false;
        }
    }
    return true;
}

void authres_value(buf_t *b, const char *s)
{
    const char *at = strrchr(s, '@');
    size_t n = strlen(s);
    bool token = n > 0;

    for (size_t i = 0; i < n && token; i++)
        token = authres_tokenchar((unsigned char)s[i]);
    if (token
        || (at && (at == s || authres_dot_atom(s, (size_t)(at - s), false))
            && authres_dot_atom(at + 1, strlen(at + 1), true))) {
        buf_append(b, s, n);
        return;
    }
    buf_putc(b, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c < 32 || c == 127)
            continue;
        if (c == '"' || c == '\\')
            buf_putc(b, '\\');
        buf_putc(b, c);
    }
    buf_putc(b, '"');
}

void authres_begin(buf_t *b, const char *authserv_id)
{
    buf_reset(b);
    authres_value(b, authserv_id);
}

void authres_add(buf_t *b, const char *method, const char *result, const char *comment, ...)
{
    const char *name, *value;
    va_list ap;

    buf_printf(b, "; %s=%s", method, result);
    if (comment && *comment) {
        size_t n = 0;

        buf_append_str(b, " (");
        for (const char *p = comment; *p && n < AUTHRES_COMMENT_MAX; p++, n++) {
            unsigned char c = (unsigned char)*p;

            if (c < 32 || c == 127)
                continue;
            if (c == '(' || c == ')' || c == '\\')
                buf_putc(b, '\\');
            buf_putc(b, c);
        }
        buf_putc(b, ')');
    }
    va_start(ap, comment);
    while ((name = va_arg(ap, const char *)) != NULL) {
        value = va_arg(ap, const char *);
        if (value == NULL || *value == '\0')
            continue;
        buf_printf(b, " %s=", name);
        authres_value(b, value);
    }
    va_end(ap);
}

void authres_end(buf_t *b)
{
    /* The authserv-id is a host name: the first ';' is authres_add()'s. */
    if (memchr(b->data, ';', b->len) == NULL)
        buf_append_str(b, "; none");
}

/* Does s start "METHOD=" (a method name of RFC 8601 2.2)? */
static bool authres_method_at(const char *s)
{
    const char *p = s;

    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
           || *p == '-' || *p == '_')
        p++;
    return p > s && *p == '=';
}

void authres_fold(buf_t *out, const char *value)
{
    const char *p = value, *semi;

    while ((semi = strstr(p, "; ")) != NULL) {
        if (authres_method_at(semi + 2)) {
            buf_append(out, p, (size_t)(semi + 1 - p));
            buf_append_str(out, "\r\n\t");
        } else {
            buf_append(out, p, (size_t)(semi + 2 - p));
        }
        p = semi + 2;
    }
    buf_append_str(out, p);
}

/* Skip white space, folding and (nested) comments from *i. */
static void authres_skip_cfws(const char *v, size_t len, size_t *i)
{
    int depth = 0;

    while (*i < len) {
        char c = v[*i];

        if (depth > 0 && c == '\\' && *i + 1 < len) {
            *i += 2;
            continue;
        }
        if (c == '(') {
            depth++;
        } else if (c == ')' && depth > 0) {
            depth--;
        } else if (depth == 0 && c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            return;
        }
        (*i)++;
    }
}

int authres_authserv_id(const char *value, size_t len, char **id)
{
    size_t i = 0, start;
    buf_t *b;

    *id = NULL;
    authres_skip_cfws(value, len, &i);
    if (i >= len)
        return -1;
    if (value[i] == '"') {
        b = buf_new(0);
        for (i++; i < len && value[i] != '"'; i++) {
            if (value[i] == '\\' && i + 1 < len)
                i++;
            buf_putc(b, value[i]);
        }
        if (i >= len || b->len == 0) {
            buf_free(&b);
            return -1;
        }
        *id = buf_steal(b, NULL);
        buf_free(&b);
        return 0;
    }
    start = i;
    while (i < len && authres_tokenchar((unsigned char)value[i]))
        i++;
    if (i == start)
        return -1;
    *id = xstrndup(value + start, i - start);
    return 0;
}
