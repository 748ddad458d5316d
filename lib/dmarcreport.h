/*
 * dmarcreport - DMARC aggregate reports (RFC 7489 section 7.2 and
 * Appendix C): the rows of one reporting period (lib/dmarchist) grouped
 * by policy domain and aggregated into records, rendered as the
 * Appendix C XML, gzipped, and wrapped in the MIME message that goes to
 * each rua destination; and the rua value split into its destinations.
 *
 * Aggregation.  A report covers one period [begin, end] (inclusive unix
 * times; a UTC day is begin + 86399) and one policy domain.  Within a
 * domain, rows that agree on source_ip, disposition, dkim_aligned,
 * spf_aligned, reason, header_from, envelope_from, envelope_to and every
 * authentication result (SPF domain, scope and result; each DKIM
 * domain, selector and result, in order) are one <record> with a
 * <count>.  The policy published is that of the domain's latest row
 * (the record in force when the period ended), and so is its rua.
 *
 * XML (Appendix C; what the schema requires is always there): version
 * 1.0; report_metadata {org_name, email, report_id, date_range};
 * policy_published {domain, adkim, aspf, p, sp, pct, fo} (fo "0", the
 * default, when none was published); per record: row {source_ip, count,
 * policy_evaluated {disposition, dkim, spf, reason?}}, identifiers
 * {envelope_to (if known), envelope_from (empty for <>), header_from},
 * auth_results {dkim*, spf}.  IPv6 source addresses are written as
 * eight groups without "::" (the schema's IPAddress pattern takes no
 * other form), IPv4-mapped ones as IPv4.  Text from the configuration
 * (org_name, email) is escaped, and bytes that are not UTF-8 or are
 * control characters become "?".
 *
 * Names (section 7.2.1.1): the report ID is "YYYYMMDD.DOMAIN@RECEIVER"
 * (the period's first day), the attachment
 * "RECEIVER!DOMAIN!BEGIN!END.xml.gz", the subject "Report Domain: DOMAIN
 * Submitter: RECEIVER Report-ID: <ID>".
 *
 * Destinations (section 6.2 and 6.4): rua is a comma-separated list of
 * URIs, each with an optional "!SIZE[k|m|g|t]" limit (powers of two).
 * Only mailto: is supported; the address is percent-decoded and must be
 * local@domain of plain characters, so it is safe in a header and on a
 * command line.  At most DMARCREPORT_MAX_DESTS URIs are used.
 *
 * Interface: dmarcreport_new/free, dmarcreport_add, dmarcreport_ndomains,
 * dmarcreport_domain (name, rua, counts), dmarcreport_xml,
 * dmarcreport_id, dmarcreport_file_name, dmarcreport_gzip,
 * dmarcreport_message, dmarcreport_rua, dmarcreport_dests_free.
 *
 * Failure modes: a row outside the period is refused (-1, reason); a
 * zlib failure is -1 with a reason; a destination that cannot be used
 * carries its reason.  Out-of-memory is fatal (xalloc).
 */
#ifndef POSTHORN_DMARCREPORT_H
#define POSTHORN_DMARCREPORT_H

#include <stddef.h>

#include "buf.h"
#include "dmarchist.h"

#define DMARCREPORT_MAX_DESTS 5

typedef struct dmarcreport dmarcreport_t;

/* Who reports: org_name (dmarc_report_org_name), email
 * (dmarc_report_sender), receiver (our domain: file names, Submitter:,
 * the report ID). */
struct dmarcreport_meta {
    const char *org_name;
    const char *email;
    const char *receiver;
};

struct dmarcreport_domain_info {
    const char         *domain;      /* the policy domain */
    const char         *rua;         /* its latest rua value */
    size_t              nrecords;
    unsigned long long  nmessages;
};

dmarcreport_t *dmarcreport_new(long long begin, long long end);
void dmarcreport_free(dmarcreport_t **rp);
/* Count one row (copied); -1 with a reason if its time is outside the
 * period or it breaks the rules of dmarchist_row_check(). */
int dmarcreport_add(dmarcreport_t *r, const struct dmarchist_row *row, const char **error_r);
size_t dmarcreport_ndomains(const dmarcreport_t *r);
/* Domain i, in the order they were first seen. */
void dmarcreport_domain(const dmarcreport_t *r, size_t i, struct dmarcreport_domain_info *info);

/* The report of domain i as XML, appended to out. */
void dmarcreport_xml(const dmarcreport_t *r, size_t i, const struct dmarcreport_meta *m,
                     buf_t *out);
/* Fresh strings: the report ID, and the attachment's file name. */
char *dmarcreport_id(const dmarcreport_t *r, size_t i, const struct dmarcreport_meta *m);
char *dmarcreport_file_name(const dmarcreport_t *r, size_t i, const struct dmarcreport_meta *m);
/* gzip (RFC 1952) of data, appended to out; 0 or -1 with a reason. */
int dmarcreport_gzip(const void *data, size_t len, buf_t *out, const char **error_r);
/* The whole message (header and body, LF line ends) that carries the
 * gzipped report gz of domain i to the address to, appended to out. */
void dmarcreport_message(const dmarcreport_t *r, size_t i, const struct dmarcreport_meta *m,
                         const char *to, const buf_t *gz, buf_t *out);

struct dmarcreport_dest {
    char               *uri;        /* as published, trimmed */
    char               *address;    /* mailto: address, decoded; NULL if unusable */
    char               *domain;     /* its domain, lower case */
    unsigned long long  max_size;   /* bytes; 0: no limit */
    const char         *error;      /* why it cannot be used, else NULL */
};

/* Split rua into *dests (*n of them; empty URIs skipped). */
void dmarcreport_rua(const char *rua, struct dmarcreport_dest **dests, size_t *n);
void dmarcreport_dests_free(struct dmarcreport_dest **dests, size_t n);

#endif
