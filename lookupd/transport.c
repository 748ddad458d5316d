/*
 * transport.c - lookupd's answer to LOOKUP_TRANSPORT: the transport_maps
 * entry of a recipient address (transport(5)), for qmgr, which runs
 * chrooted in the spool and cannot open the tables itself.
 *
 * Keys, in Postfix's order, each looked up in every table of
 * transport_maps (in order) before the next key is tried:
 *   user+ext@domain   the whole address, lower-cased;
 *   user@domain       without its extension (recipient_delimiter);
 *   domain            the domain itself;
 *   .parent ...       each parent domain with its leading dot
 *                     (a.b.example: ".b.example", then ".example"), so
 *                     ".example.com" matches every subdomain while
 *                     "example.com" matches only itself (transport_maps
 *                     is not in Postfix's default
 *                     parent_domain_matches_subdomains);
 *   *                 the catch-all.
 * An address without a domain is looked up only under "*"; a domain
 * literal ([192.0.2.1]) has no parents.  A trailing dot of the domain is
 * ignored.
 *
 * Answers: LOOKUP_OK with the value split by lookup_transport_split() and
 * "KEY in TABLE" as text; LOOKUP_NOTFOUND; LOOKUP_TEMPFAIL when a table
 * cannot be read (before any key matched) or the entry found is malformed
 * (a transport name with odd characters, a control character, a next hop
 * over LOOKUP_NEXTHOP_LIMIT): both are logged here with the table and key,
 * and qmgr defers the recipient.
 *
 * Parameters: transport_maps, recipient_delimiter.
 */
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "conf.h"
#include "lookupd.h"
#include "msg.h"
#include "xalloc.h"

#define TRANSPORT_MAX_KEYS  130     /* a domain has at most 127 labels */

void transport_find(const char *address, struct lookup_transport_reply *r)
{
    char **tables = conf_split(conf_str("transport_maps"));
    char *lower = addr_lowercase(address), *local, *domain, *base, *keys[TRANSPORT_MAX_KEYS];
    size_t nkeys = 0, len;

    memset(r, 0, sizeof(*r));
    r->result = LOOKUP_NOTFOUND;
    addr_split(lower, &local, &domain);
    if ((len = strlen(domain)) > 1 && domain[len - 1] == '.')
        domain[len - 1] = '\0';
    if (*domain) {
        keys[nkeys++] = xasprintf("%s@%s", local, domain);
        if ((base = addr_unextended(local)) != NULL)
            keys[nkeys++] = xasprintf("%s@%s", base, domain);
        free(base);
        keys[nkeys++] = xstrdup(domain);
        if (domain[0] != '[')
            for (const char *dot = strchr(domain + 1, '.'); dot && dot[1]
                 && nkeys < TRANSPORT_MAX_KEYS - 1; dot = strchr(dot + 1, '.'))
                keys[nkeys++] = xstrdup(dot);
    }
    keys[nkeys++] = xstrdup("*");
    for (size_t k = 0; k < nkeys && r->result == LOOKUP_NOTFOUND; k++)
        for (size_t i = 0; tables[i] && r->result == LOOKUP_NOTFOUND; i++) {
            char *value = NULL, *text = NULL;
            const char *why;
            int rc = lookupd_table(tables[i], keys[k], &value, &text);

            if (rc < 0) {
                r->result = LOOKUP_TEMPFAIL;
                r->text = text;
                msg_warn("lookupd: transport_maps lookup of <%s>: %s", address, text);
            } else if (rc > 0 && lookup_transport_split(value, &r->transport, &r->nexthop,
                                                        &why) < 0) {
                r->result = LOOKUP_TEMPFAIL;
                r->text = xasprintf("%s: malformed entry for \"%s\": %s", tables[i], keys[k],
                                    why);
                msg_warn("lookupd: transport_maps: %s", r->text);
            } else if (rc > 0) {
                r->result = LOOKUP_OK;
                r->text = xasprintf("%s in %s", keys[k], tables[i]);
            }
            free(value);
        }
    if (r->text == NULL)
        r->text = xstrdup(r->result == LOOKUP_NOTFOUND ? "not found in transport_maps" : "");
    if (r->result != LOOKUP_OK) {
        free(r->transport);
        free(r->nexthop);
        r->transport = r->nexthop = NULL;
    }
    for (size_t k = 0; k < nkeys; k++)
        free(keys[k]);
    free(lower);
    free(local);
    free(domain);
    conf_split_free(&tables);
}
