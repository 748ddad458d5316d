/*
 * dmarcrow - test tool: append DMARC history rows with lib/dmarchist's
 * writer (what checkd calls) into DIR (a queue's dmarc/ directory).
 *
 *   dmarcrow DIR < rows
 *
 * Each line of stdin is one row: white-space separated NAME=VALUE pairs
 * naming struct dmarchist_row's members (when source_ip header_from
 * envelope_from envelope_to policy_domain p sp pct adkim aspf fo rua
 * disposition dkim_aligned spf_aligned reason spf_domain spf_scope
 * spf_result), "dkim=DOMAIN/SELECTOR/RESULT" once per DKIM result, and
 * "%20" for a space inside a value.  Members not given take the values
 * of a plain passing message from sender.test at the current time.
 * Run it as check_user: the report job takes only check_user's files.
 * Exits 0, or 1 with "stdin:LINE: reason" on stderr at the first bad row.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dmarchist.h"
#include "xalloc.h"

/* A value with "%20" turned back into spaces (fresh). */
static char *unescape(const char *v)
{
    char *out = xstrdup(v), *o = out;

    for (const char *p = v; *p; p++) {
        if (strncmp(p, "%20", 3) == 0) {
            *o++ = ' ';
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

int main(int argc, char **argv)
{
    char *line = NULL;
    size_t cap = 0;
    unsigned long lineno = 0;
    int dirfd;

    if (argc != 2) {
        fprintf(stderr, "usage: dmarcrow DIR < rows\n");
        return 1;
    }
    if ((dirfd = open(argv[1], O_RDONLY | O_DIRECTORY)) < 0) {
        fprintf(stderr, "dmarcrow: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    while (getline(&line, &cap, stdin) > 0) {
        struct dmarchist_row r = {0};
        char *save = NULL, *tok;
        const char *why = NULL;
        char **strs[] = {&r.source_ip, &r.header_from, &r.envelope_from, &r.envelope_to,
                         &r.policy_domain, &r.p, &r.sp, &r.fo, &r.rua, &r.disposition, &r.reason,
                         &r.spf_domain, &r.spf_scope, &r.spf_result};
        static const char *const names[] = {"source_ip", "header_from", "envelope_from",
                                            "envelope_to", "policy_domain", "p", "sp", "fo", "rua",
                                            "disposition", "reason", "spf_domain", "spf_scope",
                                            "spf_result"};
        static const char *const defaults[] = {"192.0.2.1", "sender.test", "sender.test",
                                               "example.test", "sender.test", "none", "none", "",
                                               "mailto:dmarc@sender.test", "none", "",
                                               "sender.test", "mfrom", "pass"};

        lineno++;
        r.when = (long long)time(NULL);
        r.pct = 100;
        r.adkim = r.aspf = 'r';
        r.dkim_aligned = r.spf_aligned = 1;
        for (tok = strtok_r(line, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
            char *eq = strchr(tok, '='), *v;
            size_t i;

            if (eq == NULL) {
                fprintf(stderr, "stdin:%lu: '%s' is not NAME=VALUE\n", lineno, tok);
                return 1;
            }
            *eq = '\0';
            v = unescape(eq + 1);
            for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (strcmp(tok, names[i]) == 0)
                    break;
            if (i < sizeof(names) / sizeof(names[0])) {
                free(*strs[i]);
                *strs[i] = v;
            } else if (strcmp(tok, "when") == 0 || strcmp(tok, "pct") == 0
                       || strcmp(tok, "dkim_aligned") == 0 || strcmp(tok, "spf_aligned") == 0) {
                long long n = strtoll(v, NULL, 10);

                if (tok[0] == 'w')
                    r.when = n;
                else if (tok[0] == 'p')
                    r.pct = (int)n;
                else if (tok[0] == 'd')
                    r.dkim_aligned = (int)n;
                else
                    r.spf_aligned = (int)n;
                free(v);
            } else if (strcmp(tok, "adkim") == 0 || strcmp(tok, "aspf") == 0) {
                *(tok[1] == 'd' ? &r.adkim : &r.aspf) = v[0];
                free(v);
            } else if (strcmp(tok, "dkim") == 0) {
                char *s1 = strchr(v, '/'), *s2 = s1 ? strchr(s1 + 1, '/') : NULL;

                if (s2 == NULL) {
                    fprintf(stderr, "stdin:%lu: dkim=DOMAIN/SELECTOR/RESULT\n", lineno);
                    return 1;
                }
                *s1 = *s2 = '\0';
                r.dkim = xreallocarray(r.dkim, r.ndkim + 1, sizeof(*r.dkim));
                r.dkim[r.ndkim].domain = xstrdup(v);
                r.dkim[r.ndkim].selector = xstrdup(s1 + 1);
                r.dkim[r.ndkim].result = xstrdup(s2 + 1);
                r.ndkim++;
                free(v);
            } else {
                fprintf(stderr, "stdin:%lu: unknown member '%s'\n", lineno, tok);
                return 1;
            }
        }
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            if (*strs[i] == NULL)
                *strs[i] = xstrdup(defaults[i]);
        if (dmarchist_append(dirfd, &r, &why) < 0) {
            fprintf(stderr, "stdin:%lu: %s: %s\n", lineno, why, strerror(errno));
            return 1;
        }
        dmarchist_row_clear(&r);
    }
    free(line);
    close(dirfd);
    return 0;
}
