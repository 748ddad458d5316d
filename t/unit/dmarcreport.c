/*
 * t/unit/dmarcreport.c - unit tests for lib/dmarcreport.c (DMARC
 * aggregate reports).
 *
 * Aggregation: rows of two policy domains, some identical (one record,
 * counted), some differing in one aggregated field each (a record of
 * their own); rows outside the period refused; the latest row's policy
 * is the one published.  Rendering: the XML validates against RFC 7489
 * Appendix C's schema (t/data/rfc7489.xsd, with xmllint), carries the
 * counts, escapes configuration text, writes IPv6 in eight groups; the
 * gzip inflates back to the XML; the message has the section 7.2.1.1
 * subject, the attachment name and the base64 of the gzip.  rua: mailto
 * URIs with and without size limits, percent-escapes, refusals.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "base64.h"
#include "buf.h"
#include "dmarchist.h"
#include "dmarcreport.h"
#include "xalloc.h"
#include "../lib/tap.h"

#define DAY0 1700006400LL          /* 2023-11-15T00:00:00Z */

static struct dmarchist_dkim sig_pass[] = {{"sender.test", "s1", "pass"}};
static struct dmarchist_dkim sig_fail[] = {{"sender.test", "s1", "fail"}};

static struct dmarchist_row base_row(void)
{
    struct dmarchist_row r = {
        .when = DAY0 + 3600, .source_ip = "192.0.2.1", .header_from = "sender.test",
        .envelope_from = "sender.test", .envelope_to = "example.test",
        .policy_domain = "sender.test", .p = "none", .sp = "none", .pct = 100,
        .adkim = 'r', .aspf = 'r', .fo = "", .rua = "mailto:dmarc@sender.test",
        .disposition = "none", .dkim_aligned = 1, .spf_aligned = 1, .reason = "",
        .spf_domain = "sender.test", .spf_scope = "mfrom", .spf_result = "pass",
        .ndkim = 1, .dkim = sig_pass,
    };
    return r;
}

static const char *xsd_path(void)
{
    static char path[4096];
    const char *b = getenv("POSTHORN_BUILD");

    snprintf(path, sizeof(path), "%.*s/../data/rfc7489.xsd",
             (int)(strrchr(__FILE__, '/') ? strrchr(__FILE__, '/') - __FILE__ : 1),
             strrchr(__FILE__, '/') ? __FILE__ : ".");
    if (access(path, R_OK) == 0)
        return path;
    if (b) {
        snprintf(path, sizeof(path), "%s/../t/data/rfc7489.xsd", b);
        if (access(path, R_OK) == 0)
            return path;
    }
    return NULL;
}

/* xmllint's verdict on xml against the schema: 0 valid; its output in
 * diag otherwise. */
static int schema_check(const buf_t *xml)
{
    char file[] = "/tmp/dmarcreport-XXXXXX";
    const char *xsd = xsd_path();
    char *cmd, line[512];
    FILE *p;
    int fd = mkstemp(file), rc;

    if (xsd == NULL) {
        diag("t/data/rfc7489.xsd not found");
        return -1;
    }
    if (fd < 0 || write(fd, xml->data, xml->len) != (ssize_t)xml->len) {
        diag("cannot write %s", file);
        return -1;
    }
    close(fd);
    cmd = xasprintf("xmllint --noout --schema '%s' '%s' 2>&1", xsd, file);
    p = popen(cmd, "r");
    while (p && fgets(line, sizeof(line), p))
        diag("xmllint: %s", strtok(line, "\n") ? line : "");
    rc = p ? pclose(p) : -1;
    unlink(file);
    free(cmd);
    return rc;
}

static size_t count_of(const char *s, const char *sub)
{
    size_t n = 0;

    for (const char *p = strstr(s, sub); p; p = strstr(p + 1, sub))
        n++;
    return n;
}

static void test_aggregate(void)
{
    struct dmarcreport_meta meta = {"Example <Org> & Co \xc3\xa9\x01", "dmarc@example.test",
                                    "example.test"};
    dmarcreport_t *r = dmarcreport_new(DAY0, DAY0 + 86399);
    struct dmarcreport_domain_info info;
    struct dmarchist_row w;
    const char *why = NULL;
    buf_t *xml = buf_new(0), *gz = buf_new(0), *msg = buf_new(0), *back = buf_new(0);
    char *id, *file;

    w = base_row();
    for (int i = 0; i < 5; i++)
        is_int(dmarcreport_add(r, &w, &why), 0, "identical row %d counted", i);
    w.source_ip = "2001:db8::2";
    dmarcreport_add(r, &w, &why);               /* another record: source */
    w = base_row();
    w.dkim = sig_fail;
    w.dkim_aligned = 0;
    w.disposition = "none";
    w.reason = "mailing_list";
    dmarcreport_add(r, &w, &why);               /* another: dkim result */
    dmarcreport_add(r, &w, &why);
    w = base_row();
    w.envelope_from = "";
    w.envelope_to = "";
    w.spf_scope = "helo";
    w.spf_domain = "mta.sender.test";
    w.ndkim = 0;
    w.dkim = NULL;
    dmarcreport_add(r, &w, &why);               /* another: <> and no DKIM */
    w = base_row();
    w.when = DAY0 + 80000;                      /* the latest: its policy counts */
    w.p = "quarantine";
    w.sp = "reject";
    w.pct = 50;
    w.adkim = 's';
    w.fo = "1";
    w.rua = "mailto:new@sender.test";
    w.source_ip = "::ffff:198.51.100.7";
    dmarcreport_add(r, &w, &why);
    w = base_row();
    w.policy_domain = "other.test";
    w.header_from = "mail.other.test";
    dmarcreport_add(r, &w, &why);
    w = base_row();
    w.when = DAY0 - 1;
    is_int(dmarcreport_add(r, &w, &why), -1, "a row of the day before is refused");
    like(why, "outside", "  why");
    w.when = DAY0 + 86400;
    is_int(dmarcreport_add(r, &w, &why), -1, "a row of the day after is refused");
    w = base_row();
    w.p = "bogus";
    is_int(dmarcreport_add(r, &w, &why), -1, "a row that breaks the rules is refused");

    is_int(dmarcreport_ndomains(r), 2, "two policy domains");
    dmarcreport_domain(r, 0, &info);
    is_str(info.domain, "sender.test", "the first is sender.test");
    is_int(info.nmessages, 10, "  10 messages");
    is_int(info.nrecords, 5, "  in 5 records");
    is_str(info.rua, "mailto:new@sender.test", "  its rua is the latest row's");
    dmarcreport_domain(r, 1, &info);
    is_str(info.domain, "other.test", "the second is other.test");
    is_int(info.nmessages, 1, "  1 message");

    dmarcreport_xml(r, 0, &meta, xml);
    is_int(schema_check(xml), 0, "the report validates against RFC 7489 Appendix C's schema");
    like(xml->data, "<count>5</count>", "the identical rows are one record of 5");
    like(xml->data, "<count>2</count>", "the DKIM failures one of 2");
    is_int(count_of(xml->data, "<record>"), 5, "five records");
    like(xml->data, "<source_ip>2001:db8:0:0:0:0:0:2</source_ip>", "IPv6 in eight groups");
    like(xml->data, "<source_ip>198.51.100.7</source_ip>", "IPv4-mapped IPv6 as IPv4");
    like(xml->data, "<p>quarantine</p>", "the latest policy is published");
    like(xml->data, "<sp>reject</sp>", "  with its sp");
    like(xml->data, "<adkim>s</adkim>", "  its adkim");
    like(xml->data, "<pct>50</pct>", "  its pct");
    like(xml->data, "<fo>1</fo>", "  its fo");
    like(xml->data, "<type>mailing_list</type>", "a reason is given");
    like(xml->data, "<envelope_from></envelope_from>", "<> is an empty envelope_from");
    like(xml->data, "<scope>helo</scope>", "the HELO scope");
    like(xml->data, "<org_name>Example &lt;Org&gt; &amp; Co \xc3\xa9?</org_name>",
         "org_name is escaped, UTF-8 kept, a control character replaced");
    like(xml->data, "<begin>1700006400</begin>", "the period begins at midnight");
    like(xml->data, "<end>1700092799</end>", "  and ends a second before the next");
    id = dmarcreport_id(r, 0, &meta);
    is_str(id, "20231115.sender.test@example.test", "the report ID");
    file = dmarcreport_file_name(r, 0, &meta);
    is_str(file, "example.test!sender.test!1700006400!1700092799.xml.gz", "the file name");

    is_int(dmarcreport_gzip(xml->data, xml->len, gz, &why), 0, "the report is gzipped");
    ok(gz->len > 18 && (unsigned char)gz->data[0] == 0x1f && (unsigned char)gz->data[1] == 0x8b,
       "  with the gzip magic");
    {
        z_stream z = {0};
        unsigned char out[65536];

        inflateInit2(&z, 15 + 16);
        z.next_in = (unsigned char *)gz->data;
        z.avail_in = (uInt)gz->len;
        z.next_out = out;
        z.avail_out = sizeof(out);
        ok(inflate(&z, Z_FINISH) == Z_STREAM_END && z.total_out == xml->len
           && memcmp(out, xml->data, xml->len) == 0, "  and inflates back to the XML");
        inflateEnd(&z);
    }
    dmarcreport_message(r, 0, &meta, "new@sender.test", gz, msg);
    like(msg->data, "Subject: Report Domain: sender.test Submitter: example.test Report-ID: "
         "<20231115.sender.test@example.test>\n", "the subject of section 7.2.1.1");
    like(msg->data, "To: new@sender.test\n", "To:");
    like(msg->data, "From: dmarc@example.test\n", "From:");
    like(msg->data, "Content-Type: application/gzip; name=\"example.test!sender.test!", "the part");
    like(msg->data, "filename=\"example.test!sender.test!1700006400!1700092799.xml.gz\"",
         "  and its file name");
    {
        const char *b = strstr(msg->data, "filename=");
        const char *start = b ? strstr(b, "\n\n") : NULL, *end = start ? strstr(start, "\n\n--") : NULL;
        buf_t *text = buf_new(0);

        if (start && end)
            for (const char *p = start + 2; p < end; p++)
                if (*p != '\n')
                    buf_putc(text, *p);
        ok(base64_decode(back, text->data, text->len) == 0 && back->len == gz->len
           && memcmp(back->data, gz->data, gz->len) == 0, "the attachment is the gzip, in base64");
        buf_free(&text);
    }
    free(id);
    free(file);
    buf_reset(xml);
    dmarcreport_xml(r, 1, &meta, xml);
    is_int(schema_check(xml), 0, "the second domain's report validates too");
    like(xml->data, "<fo>0</fo>", "  with fo 0 when none was published");
    buf_free(&xml);
    buf_free(&gz);
    buf_free(&msg);
    buf_free(&back);
    dmarcreport_free(&r);
    ok(r == NULL, "free NULLs the pointer");
}

static void test_rua(void)
{
    static const struct {
        const char *uri, *address;
        unsigned long long size;
        const char *error;
    } c[] = {
        {"mailto:dmarc@sender.test", "dmarc@sender.test", 0, NULL},
        {"MAILTO:A@Sender.TEST!10k", "A@Sender.TEST", 10240, NULL},
        {"mailto:a@b.test!3m", "a@b.test", 3ULL << 20, NULL},
        {"mailto:a@b.test!1G", "a@b.test", 1ULL << 30, NULL},
        {"mailto:a@b.test!500", "a@b.test", 500, NULL},
        {"mailto:a%2Bx@b.test", "a+x@b.test", 0, NULL},
        {"mailto:a%21x@b.test!2k", "a!x@b.test", 2048, NULL},
        {"mailto:r@b.test?subject=x", "r@b.test", 0, NULL},
        {"https://b.test/report", NULL, 0, "mailto"},
        {"mailto:nobody", NULL, 0, "local@domain"},
        {"mailto:a@b@c.test", NULL, 0, "local@domain"},
        {"mailto:a b@c.test", NULL, 0, "local part"},
        {"mailto:a@c_d.test", NULL, 0, "host name"},
        {"mailto:a@b.test!", NULL, 0, "size"},
        {"mailto:a@b.test!10x", NULL, 0, "size"},
        {"mailto:a%4@b.test", NULL, 0, "escape"},
        {"mailto:%3Cx%3E@b.test", NULL, 0, "local part"},
    };
    struct dmarcreport_dest *d;
    size_t n;

    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        dmarcreport_rua(c[i].uri, &d, &n);
        is_int(n, 1, "'%s' is one destination", c[i].uri);
        if (n != 1)
            continue;
        is_str(d[0].address, c[i].address, "  address");
        if (c[i].error)
            like(d[0].error, c[i].error, "  refused");
        else
            ok(d[0].error == NULL && d[0].max_size == c[i].size, "  limit %llu", c[i].size);
        dmarcreport_dests_free(&d, n);
    }
    dmarcreport_rua(" mailto:a@x.test , ,mailto:b@Y.Test!1k,mailto:c@z.test,mailto:d@z.test,"
                    "mailto:e@z.test,mailto:f@z.test", &d, &n);
    is_int(n, 6, "a list of six (empty entries skipped)");
    if (n == 6) {
        is_str(d[0].address, "a@x.test", "  the first, trimmed");
        is_str(d[1].domain, "y.test", "  domains in lower case");
        ok(d[4].error == NULL, "  five are used");
        like(d[5].error, "more than 5", "  the sixth is not");
    }
    dmarcreport_dests_free(&d, n);
    ok(d == NULL, "dests_free NULLs the pointer");
    dmarcreport_rua("", &d, &n);
    is_int(n, 0, "an empty rua has no destinations");
}

int main(void)
{
    test_aggregate();
    test_rua();
    return done_testing();
}
