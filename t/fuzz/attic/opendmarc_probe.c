/*
 * opendmarc_probe.c - libFuzzer harness that drives libopendmarc 1.4.2's
 * record parsing and evaluation with hostile input (DMARC library choice,
 * issue 15).  Input: newline-separated fields
 *   record \n domain \n orgdomain \n from \n spfdomain \n dkimdomain \n selector \n flags
 * Any call of res_nquery (the library doing DNS itself) is a finding.
 *
 * Built and run by hand, not by t/fuzz/run.sh (kept here only for the
 * record of the decision; deleted in the next commit):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined opendmarc_probe.c \
 *       -lopendmarc -o opendmarc_probe
 *   ./opendmarc_probe -max_total_time=600 -max_len=4096 corpus
 * Result (libopendmarc2 1.4.2-2+b1, Debian 12): res_nquery called within
 * a second (fetch_rua -> opendmarc_policy_query_dmarc_xdomain ->
 * dmarc_dns_get_record for "<from>._report._dmarc.<rua domain>"); with
 * res_nquery answering NO_DATA, 26,660,588 runs in 601 s without a crash,
 * sanitizer report or leak (the library is not instrumented: libFuzzer saw
 * only the harness's 42 edges, so the search was blind).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <resolv.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <opendmarc/dmarc.h>

int res_nquery(res_state st, const char *dname, int class, int type,
               unsigned char *answer, int anslen)
{
    (void)st; (void)class; (void)type; (void)answer; (void)anslen;
    /* Finding 1 (first seconds of fuzzing): fetch_rua/ruf query
     * <dom>._report._dmarc.<policydom> through libresolv (RFC 7489 7.1).
     * Counted and answered "no data" so the fuzzing goes on. */
    static unsigned long n;
    if (n++ == 0)
        fprintf(stderr, "PROBE: library did its own DNS for %s\n", dname);
    h_errno = NO_DATA;
    return -1;
}

static OPENDMARC_LIB_T lib;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    memset(&lib, 0, sizeof(lib));
    lib.tld_type = OPENDMARC_TLD_TYPE_MOZILLA;
    strcpy((char *)lib.tld_source_file, "/usr/share/publicsuffix/public_suffix_list.dat");
    if (opendmarc_policy_library_init(&lib) != DMARC_PARSE_OKAY) {
        fprintf(stderr, "library_init failed\n");
        exit(2);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1), *f[8] = {0};
    int nf = 0;
    char *p;

    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    p = copy;
    while (nf < 8) {
        f[nf++] = p;
        p = strchr(p, '\n');
        if (p == NULL)
            break;
        *p++ = '\0';
    }
    for (int i = 0; i < 8; i++)
        if (f[i] == NULL)
            f[i] = "";
    /* Each field heap-copied at its exact length so ASan sees overreads. */
    char *g[8];
    for (int i = 0; i < 8; i++)
        g[i] = strdup(f[i]);
    unsigned fl = (unsigned char)g[7][0];

    DMARC_POLICY_T *pctx = opendmarc_policy_connect_init((u_char *)((fl & 1) ? "2001:db8::1" : "192.0.2.1"),
                                                         (fl & 1) ? 6 : 4);
    if (pctx == NULL)
        goto out;
    opendmarc_policy_store_from_domain(pctx, (u_char *)g[3]);
    opendmarc_policy_store_spf(pctx, (u_char *)g[4], (fl >> 1) & 3,
                               (fl & 8) ? DMARC_POLICY_SPF_ORIGIN_HELO : DMARC_POLICY_SPF_ORIGIN_MAILFROM,
                               (u_char *)g[6]);
    opendmarc_policy_store_dkim(pctx, (u_char *)g[5], (u_char *)g[6], (fl >> 4) & 3, (u_char *)g[4]);
    if (fl & 64)
        opendmarc_policy_store_dkim(pctx, (u_char *)g[4], NULL, DMARC_POLICY_DKIM_OUTCOME_PASS, NULL);
    opendmarc_policy_store_dmarc(pctx, (u_char *)g[0], (u_char *)g[1],
                                 (fl & 128) ? NULL : (u_char *)g[2]);
    opendmarc_get_policy_to_enforce(pctx);
    int a, b;
    opendmarc_policy_fetch_alignment(pctx, &a, &b);
    opendmarc_policy_fetch_pct(pctx, &a);
    opendmarc_policy_fetch_adkim(pctx, &a);
    opendmarc_policy_fetch_aspf(pctx, &a);
    opendmarc_policy_fetch_p(pctx, &a);
    opendmarc_policy_fetch_sp(pctx, &a);
    opendmarc_get_policy_token_used(pctx);
    u_char **rua = opendmarc_policy_fetch_rua(pctx, NULL, 0, 0);
    if (rua)
        opendmarc_util_clearargv(rua);
    u_char **ruf = opendmarc_policy_fetch_ruf(pctx, NULL, 0, 0);
    if (ruf)
        opendmarc_util_clearargv(ruf);
    {
        u_char small[16];
        u_char *rc = (u_char *)opendmarc_policy_fetch_rua(pctx, small, sizeof(small), 1);
        (void)rc;
    }
    u_char buf[256];
    opendmarc_policy_fetch_utilized_domain(pctx, buf, sizeof(buf));
    opendmarc_policy_fetch_from_domain(pctx, buf, sizeof(buf));
    {
        char big[4096];
        opendmarc_policy_to_buf(pctx, big, sizeof(big));
    }
    opendmarc_policy_check_alignment((u_char *)g[3], (u_char *)g[5], (fl & 4) ? 's' : 'r');
    opendmarc_policy_connect_shutdown(pctx);
out:
    for (int i = 0; i < 8; i++)
        free(g[i]);
    free(copy);
    return 0;
}
