/*
 * addr - mail address helpers (see addr.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "conf.h"
#include "map.h"
#include "xalloc.h"

void addr_split(const char *addr, char **local, char **domain)
{
    const char *at = strrchr(addr, '@');

    if (local)
        *local = at ? xstrndup(addr, (size_t)(at - addr)) : xstrdup(addr);
    if (domain)
        *domain = xstrdup(at ? at + 1 : "");
}

int addr_domain_eq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    if (la > 0 && a[la - 1] == '.')
        la--;
    if (lb > 0 && b[lb - 1] == '.')
        lb--;
    return la == lb && la > 0 && strncasecmp(a, b, la) == 0;
}

/* mydestination, split once per value: qmgr asks for every recipient.
 * The value is compared each time, so a reload is seen at once. */
static char *addr_dest_value;
static char **addr_dest_list;

int addr_domain_is_local(const char *domain)
{
    const char *value;
    size_t i;

    if (*domain == '\0')
        return 1;
    value = conf_str("mydestination");
    if (addr_dest_value == NULL || strcmp(addr_dest_value, value) != 0) {
        free(addr_dest_value);
        conf_split_free(&addr_dest_list);
        addr_dest_value = xstrdup(value);
        addr_dest_list = conf_split(value);
    }
    for (i = 0; addr_dest_list[i]; i++)
        if (addr_domain_eq(addr_dest_list[i], domain))
            return 1;
    return 0;
}

int addr_domain_is_virtual(const char *domain, char **why)
{
    char **list = conf_split(conf_str("virtual_alias_domains"));
    char *lower = addr_lowercase(domain);
    size_t len = strlen(lower);
    int found = 0;

    if (len > 0 && lower[len - 1] == '.')
        lower[--len] = '\0';
    for (size_t i = 0; list[i] && found == 0 && len > 0; i++) {
        if (strchr(list[i], ':') && list[i][0] != '[') {
            char *err = NULL, *value = NULL;
            map_t *m = map_cached(list[i], &err);

            found = m == NULL ? -1 : map_lookup(m, lower, &value);
            if (found < 0)
                *why = err ? err : xasprintf("%s: lookup of %s failed", list[i], lower);
            else
                free(err);
            free(value);
        } else {
            found = addr_domain_eq(list[i], lower);
        }
    }
    free(lower);
    conf_split_free(&list);
    return found;
}

int addr_is_local(const char *addr)
{
    const char *at = strrchr(addr, '@');

    return addr_domain_is_local(at ? at + 1 : "");
}

int addr_is_postmaster(const char *local)
{
    return strcasecmp(local, "postmaster") == 0;
}

char *addr_unextended(const char *local)
{
    const char *delim = conf_str("recipient_delimiter");
    size_t n;

    if (*delim == '\0')
        return NULL;
    n = strcspn(local, delim);
    if (n == 0 || local[n] == '\0')
        return NULL;
    return xstrndup(local, n);
}

char *addr_lowercase(const char *s)
{
    char *copy = xstrdup(s), *p;

    for (p = copy; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return copy;
}

int addr_sender_owned(const char *sender, const char *login, int *via_extension)
{
    char *local, *domain, *base;
    int own = 0;

    *via_extension = 0;
    if (*sender == '\0')
        return 1;
    addr_split(sender, &local, &domain);
    if (strcasecmp(domain, conf_str("myorigin")) == 0 || addr_domain_is_local(domain)) {
        if (strcasecmp(local, login) == 0) {
            own = 1;
        } else if ((base = addr_unextended(local)) != NULL) {
            own = *via_extension = strcasecmp(base, login) == 0;
            free(base);
        }
    }
    free(local);
    free(domain);
    return own;
}

char *addr_local_recipient_key(const char *addr)
{
    char *local, *base, *key;

    addr_split(addr, &local, NULL);
    base = addr_unextended(local);
    key = addr_lowercase(base ? base : local);
    free(local);
    free(base);
    return key;
}
