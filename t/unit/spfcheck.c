/*
 * Unit tests for lib/spfcheck: libspf2's evaluation over lib/dns, with
 * the DNS data in memory (dns_local_zone(): libunbound local zones u.test,
 * 2.0.192.in-addr.arpa and the ip6.arpa zone of 2001:db8::/32).  Names
 * outside them go to a forwarder that never answers (a UDP socket bound
 * and never read) with a short deadline: that is the temperror case.
 *
 * Covered: every mechanism (all, include, a, mx, ptr, ip4, ip6, exists)
 * with qualifiers and (dual) prefixes, the modifiers redirect= and exp=,
 * the macros, the limits (10 terms, also across include; 2 void lookups,
 * also by mx's address lookups; more than 10 MX names; PTR names past the
 * tenth ignored; the time limit), temperror, permerror for syntax errors
 * and two records, none, the HELO identity and the null reverse-path,
 * loopback clients (no free pass), misuse, and the Received-SPF value.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns.h"
#include "event.h"
#include "msg.h"
#include "spfcheck.h"
#include "tap.h"
#include "xalloc.h"

static char dead_fwd[64];
static spfcheck_t *spf;
static struct spfcheck_outcome out;

#define GOOD "192.0.2.10"
#define BAD  "198.51.100.99"

static const char *const zone[] = {
    "ip4.u.test. 300 IN TXT \"v=spf1 ip4:192.0.2.0/24 -all\"",
    "ip4host.u.test. 300 IN TXT \"v=spf1 +ip4:192.0.2.10 ~all\"",
    "ip6.u.test. 300 IN TXT \"v=spf1 ip6:2001:db8::/48 ?all\"",
    "ip6host.u.test. 300 IN TXT \"v=spf1 ip6:2001:db8::10 -all\"",
    "a.u.test. 300 IN TXT \"v=spf1 a -all\"",
    "a.u.test. 300 IN A 192.0.2.10",
    "a.u.test. 300 IN AAAA 2001:db8::10",
    "acidr.u.test. 300 IN TXT \"v=spf1 a:host.u.test/28 -all\"",
    "adual.u.test. 300 IN TXT \"v=spf1 -a:host.u.test/24//126 +all\"",
    "host.u.test. 300 IN A 192.0.2.1",
    "host.u.test. 300 IN AAAA 2001:db8::1",
    "mx.u.test. 300 IN TXT \"v=spf1 mx ~all\"",
    "mx.u.test. 300 IN MX 10 mx1.u.test.",
    "mx.u.test. 300 IN MX 20 mx2.u.test.",
    "mx1.u.test. 300 IN A 192.0.2.30",
    "mx2.u.test. 300 IN A 192.0.2.10",
    "mx2.u.test. 300 IN AAAA 2001:db8::10",
    "mxcidr.u.test. 300 IN TXT \"v=spf1 mx:mx.u.test/24 -all\"",
    "nullmx.u.test. 300 IN TXT \"v=spf1 mx -all\"",
    "nullmx.u.test. 300 IN MX 0 .",
    "ptr.u.test. 300 IN TXT \"v=spf1 ptr -all\"",
    "ptrdom.u.test. 300 IN TXT \"v=spf1 ptr:h.u.test -all\"",
    "h10.h.u.test. 300 IN A 192.0.2.10",
    "h10.h.u.test. 300 IN AAAA 2001:db8::10",
    "liar.u.test. 300 IN A 192.0.2.77",
    "inc.u.test. 300 IN TXT \"v=spf1 include:ip4host.u.test -all\"",
    "incnone.u.test. 300 IN TXT \"v=spf1 include:none.u.test -all\"",
    "incperm.u.test. 300 IN TXT \"v=spf1 include:badmech.u.test +all\"",
    "none.u.test. 300 IN TXT \"not an SPF record\"",
    "redir.u.test. 300 IN TXT \"v=spf1 redirect=ip4.u.test\"",
    "redirmacro.u.test. 300 IN TXT \"v=spf1 redirect=%{d2}\"",
    "u.test. 300 IN TXT \"v=spf1 ip4:203.0.113.0/24 -all\"",
    "exists.u.test. 300 IN TXT \"v=spf1 exists:%{i}.%{l}.%{o}.x.%{d} -all\"",
    "192.0.2.10.bob.exists.u.test.x.exists.u.test. 300 IN A 127.0.0.2",
    "macros.u.test. 300 IN TXT \"v=spf1 exists:%{ir}.%{v}.%{h}.%{l2r-}.m.%{d} -all\"",
    "10.2.0.192.in-addr.helo.u.test.b.a.m.macros.u.test. 300 IN A 127.0.0.2",
    "sender.u.test. 300 IN TXT \"v=spf1 exists:%{s}._s.%{d} -all\"",
    "pm.u.test. 300 IN TXT \"v=spf1 exists:%{p}._p.%{d} -all\"",
    "h10.h.u.test._p.pm.u.test. 300 IN A 127.0.0.2",
    "exp.u.test. 300 IN TXT \"v=spf1 -all exp=why.u.test\"",
    "why.u.test. 300 IN TXT \"%{i} may not send for %{d} (%{s} via %{h}) to %{r}; %{c} at %{t}x\"",
    "expsoft.u.test. 300 IN TXT \"v=spf1 ~all exp=why.u.test\"",
    /* An exp= text that overflowed libspf2's macro compiler (t/fuzz). */
    "expbig.u.test. 300 IN TXT \"v=spf1 -all exp=big.u.test\"",
    "big.u.test. 300 IN TXT \"v=spf1 include:r1.f.test mxv=s{ir}.%{l1r-}. include:r1.\\008.t"
        "est mv=sm.{ir}}. include:r1.\\008.test mv=sm.{ir}.%{l1r-}. include:r1.f.test mv=sm. includ"
        "e:r1.f.test mv=spf2 incv=spfr1.fvde:rm. include:r1.f.tes\" \"t mv=spf2 incv=spfr1.fv=s{\\2"
        "10\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\2"
        "10\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\2"
        "10\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\2"
        "10\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210\\210ir}.%{l1"
        "r-}. include:r1.f~ a:}.%{l1r-}. include:r1.f.test mv=sm. include:r1.f.test mv=spf2 incv=sp"
        "fr1.f\" \"vde:rm. include:r1.f.test mv=spf2 incv=spfr1.fv=s{ir}.%{l1r-}. include:r1.f~ a:}"
        ".\\255\\255\\255\\255x/.t%{v}.\"",
    "exptwo.u.test. 300 IN TXT \"v=spf1 -all exp=two.u.test\"",
    "expnx.u.test. 300 IN TXT \"v=spf1 -all exp=nothing.u.test\"",
    "two.u.test. 300 IN TXT \"v=spf1 -all\"",
    "two.u.test. 300 IN TXT \"v=spf1 +all\"",
    "bare.u.test. 300 IN TXT \"v=spf1\"",
    "caps.u.test. 300 IN TXT \"V=SPF1 IP4:192.0.2.10 -ALL\"",
    "split.u.test. 300 IN TXT \"v=spf1 ip4:192.0.2.10\" \" -all\"",
    "badmech.u.test. 300 IN TXT \"v=spf1 foo:x.u.test -all\"",
    "badip.u.test. 300 IN TXT \"v=spf1 ip4:192.0.2 -all\"",
    "badcidr.u.test. 300 IN TXT \"v=spf1 ip6:2001:db8::/129 -all\"",
    "badmacro.u.test. 300 IN TXT \"v=spf1 exists:%{z}.u.test -all\"",
    "badqual.u.test. 300 IN TXT \"v=spf1 *all\"",
    "unknownmod.u.test. 300 IN TXT \"v=spf1 -all foo=bar\"",
    "void2.u.test. 300 IN TXT \"v=spf1 a:nx1.u.test a:nx2.u.test ip4:192.0.2.10 -all\"",
    "void3.u.test. 300 IN TXT \"v=spf1 a:nx1.u.test a:nx2.u.test exists:nx3.u.test +all\"",
    "voidmx.u.test. 300 IN TXT \"v=spf1 a:nx1.u.test mx:voidmx.u.test +all\"",
    "voidmx.u.test. 300 IN MX 10 nx2.u.test.",
    "voidmx.u.test. 300 IN MX 20 nx3.u.test.",
    "voidinc.u.test. 300 IN TXT \"v=spf1 a:nx1.u.test include:void2.u.test +all\"",
    "t10.u.test. 300 IN TXT \"v=spf1 a:host.u.test a:host.u.test a:host.u.test a:host.u.test "
        "a:host.u.test mx:mx.u.test/32 a:host.u.test a:host.u.test a:host.u.test exists:a.u.test -all\"",
    "t11.u.test. 300 IN TXT \"v=spf1 a:host.u.test a:host.u.test a:host.u.test a:host.u.test "
        "a:host.u.test a:host.u.test a:host.u.test a:host.u.test a:host.u.test a:host.u.test "
        "a:a.u.test -all\"",
    "tinc.u.test. 300 IN TXT \"v=spf1 include:t5.u.test include:t5.u.test ip4:192.0.2.10 -all\"",
    "t4.u.test. 300 IN TXT \"v=spf1 a:host.u.test a:host.u.test a:host.u.test a:host.u.test -all\"",
    "t5.u.test. 300 IN TXT \"v=spf1 a:host.u.test a:host.u.test a:host.u.test a:host.u.test "
        "a:host.u.test -all\"",
    "tinc10.u.test. 300 IN TXT \"v=spf1 include:t4.u.test include:t4.u.test ip4:192.0.2.10 -all\"",
    "tredir.u.test. 300 IN TXT \"v=spf1 a:host.u.test a:host.u.test a:host.u.test a:host.u.test "
        "a:host.u.test a:host.u.test a:host.u.test a:host.u.test a:host.u.test redirect=ip4.u.test\"",
    "tredir2.u.test. 300 IN TXT \"v=spf1 a:host.u.test a:host.u.test a:host.u.test a:host.u.test "
        "a:host.u.test a:host.u.test a:host.u.test a:host.u.test a:host.u.test "
        "a:host.u.test redirect=ip4.u.test\"",
    "mx11.u.test. 300 IN TXT \"v=spf1 mx -all\"",
    "mx11.u.test. 300 IN MX 1 m1.u.test.",
    "m1.u.test. 300 IN A 192.0.2.101",
    "mx11.u.test. 300 IN MX 2 m2.u.test.",
    "m2.u.test. 300 IN A 192.0.2.102",
    "mx11.u.test. 300 IN MX 3 m3.u.test.",
    "m3.u.test. 300 IN A 192.0.2.103",
    "mx11.u.test. 300 IN MX 4 m4.u.test.",
    "m4.u.test. 300 IN A 192.0.2.104",
    "mx11.u.test. 300 IN MX 5 m5.u.test.",
    "m5.u.test. 300 IN A 192.0.2.105",
    "mx11.u.test. 300 IN MX 6 m6.u.test.",
    "m6.u.test. 300 IN A 192.0.2.106",
    "mx11.u.test. 300 IN MX 7 m7.u.test.",
    "m7.u.test. 300 IN A 192.0.2.107",
    "mx11.u.test. 300 IN MX 8 m8.u.test.",
    "m8.u.test. 300 IN A 192.0.2.108",
    "mx11.u.test. 300 IN MX 9 m9.u.test.",
    "m9.u.test. 300 IN A 192.0.2.109",
    "mx11.u.test. 300 IN MX 10 m10.u.test.",
    "m10.u.test. 300 IN A 192.0.2.110",
    "mx11.u.test. 300 IN MX 11 m11.u.test.",
    "m11.u.test. 300 IN A 192.0.2.111",
    "loop.u.test. 300 IN TXT \"v=spf1 include:loop2.u.test -all\"",
    "loop2.u.test. 300 IN TXT \"v=spf1 include:loop.u.test -all\"",
    "dead.u.test. 300 IN TXT \"v=spf1 a:host.u.test include:spf.outside.test -all\"",
    "deadlate.u.test. 300 IN TXT \"v=spf1 ip4:192.0.2.10 include:spf.outside.test -all\"",
    "slow.u.test. 300 IN TXT \"v=spf1 exists:%{p}.u.test ip4:192.0.2.10 -all\"",
    "deny.u.test. 300 IN TXT \"v=spf1 -all\"",
    "helo.u.test. 300 IN TXT \"v=spf1 a -all\"",
    "helo.u.test. 300 IN A 192.0.2.10",
    "zero.u.test. 300 IN TXT \"v=spf1 ip4:0.0.0.0/0 -all\"",
    NULL,
};

static const char *const rev4[] = {
    "10.2.0.192.in-addr.arpa. 300 IN PTR h10.h.u.test.",
    "11.2.0.192.in-addr.arpa. 300 IN PTR liar.u.test.",
    NULL,
};
static const char *const rev6[] = {
    "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. 300 IN PTR h10.h.u.test.",
    NULL,
};

static const char *mailfrom(const char *ip, const char *helo, const char *sender)
{
    spfcheck_outcome_clear(&out);
    if (spfcheck_mailfrom(spf, ip, helo, sender, &out) < 0)
        return "refused";
    return spfcheck_result_name(out.result);
}

static const char *helo_check(const char *ip, const char *helo)
{
    spfcheck_outcome_clear(&out);
    if (spfcheck_helo(spf, ip, helo, &out) < 0)
        return "refused";
    return spfcheck_result_name(out.result);
}

#define MF(ip, dom, want, name) is_str(mailfrom(ip, "helo.u.test", "bob@" dom), want, name)

static void test_names(void)
{
    is_str(spfcheck_result_name(SPFCHECK_NONE), "none", "none");
    is_str(spfcheck_result_name(SPFCHECK_NEUTRAL), "neutral", "neutral");
    is_str(spfcheck_result_name(SPFCHECK_PASS), "pass", "pass");
    is_str(spfcheck_result_name(SPFCHECK_FAIL), "fail", "fail");
    is_str(spfcheck_result_name(SPFCHECK_SOFTFAIL), "softfail", "softfail");
    is_str(spfcheck_result_name(SPFCHECK_TEMPERROR), "temperror", "temperror");
    is_str(spfcheck_result_name(SPFCHECK_PERMERROR), "permerror", "permerror");
}

static void test_mechanisms(void)
{
    MF(GOOD, "ip4.u.test", "pass", "ip4 with a prefix");
    MF(BAD, "ip4.u.test", "fail", "ip4 no match, -all");
    MF(GOOD, "ip4host.u.test", "pass", "+ip4 host");
    MF("192.0.2.11", "ip4host.u.test", "softfail", "~all");
    MF("2001:db8:0:1::5", "ip6.u.test", "pass", "ip6 with a prefix");
    MF("2001:db8:1::5", "ip6.u.test", "neutral", "?all");
    MF(GOOD, "ip6.u.test", "neutral", "an IPv4 client never matches ip6");
    MF("2001:db8::10", "ip6host.u.test", "pass", "ip6 host");
    MF("2001:db8::11", "ip6host.u.test", "fail", "ip6 host no match");
    MF(GOOD, "a.u.test", "pass", "a (A)");
    MF("2001:db8::10", "a.u.test", "pass", "a (AAAA for an IPv6 client)");
    MF("192.0.2.11", "a.u.test", "fail", "a no match");
    MF("192.0.2.14", "acidr.u.test", "pass", "a:domain/28");
    MF("192.0.2.17", "acidr.u.test", "fail", "a:domain/28 no match");
    MF("192.0.2.200", "adual.u.test", "fail", "-a/24//126 (IPv4 /24)");
    MF("2001:db8::3", "adual.u.test", "fail", "-a/24//126 (IPv6 /126)");
    MF("2001:db8::4", "adual.u.test", "pass", "-a/24//126 (IPv6 outside, +all)");
    MF(GOOD, "mx.u.test", "pass", "mx (second MX host)");
    MF("2001:db8::10", "mx.u.test", "pass", "mx (AAAA of an MX host)");
    MF("192.0.2.31", "mx.u.test", "softfail", "mx no match");
    MF("192.0.2.250", "mxcidr.u.test", "pass", "mx:domain/24");
    MF(GOOD, "nullmx.u.test", "fail", "a null MX matches nothing");
    MF(GOOD, "ptr.u.test", "fail", "ptr: h10.h.u.test is not under ptr.u.test");
    MF(GOOD, "ptrdom.u.test", "pass", "ptr:domain, validated name");
    MF("2001:db8::10", "ptrdom.u.test", "pass", "ptr:domain for IPv6");
    MF("192.0.2.11", "ptrdom.u.test", "fail", "ptr whose name does not point back");
    MF("192.0.2.12", "ptrdom.u.test", "fail", "ptr without PTR records");
    MF(GOOD, "inc.u.test", "pass", "include: pass");
    MF("192.0.2.11", "inc.u.test", "fail", "include: softfail inside is no match");
    MF(GOOD, "incnone.u.test", "permerror", "include of a domain without a record");
    MF(GOOD, "incperm.u.test", "permerror", "include of a broken record");
    MF(GOOD, "redir.u.test", "pass", "redirect= pass");
    MF(BAD, "redir.u.test", "fail", "redirect= fail");
    MF("203.0.113.5", "redirmacro.u.test", "pass", "redirect=%%{d2}");
    MF(GOOD, "exists.u.test", "pass", "exists:%%{i}.%%{l}.%%{o}.x.%%{d}");
    is_str(mailfrom(GOOD, "helo.u.test", "carol@exists.u.test"), "fail", "exists no match");
    is_str(mailfrom(GOOD, "helo.u.test", "a-b-c@macros.u.test"), "pass",
           "exists:%%{ir}.%%{v}.%%{h}.%%{l2r-}.m.%%{d}");
    is_str(mailfrom(GOOD, "other.u.test", "a-b-c@macros.u.test"), "fail", "  (%%{h} matters)");
    MF(GOOD, "pm.u.test", "pass", "exists:%%{p}...: the validated name");
    MF("192.0.2.11", "pm.u.test", "fail", "%%{p} of an unvalidated name is unknown");
    /* A local part with a space: not a name that can be asked. */
    is_str(mailfrom(GOOD, "helo.u.test", "a b@sender.u.test"), "fail",
           "exists on a name that cannot be sent is no match");
    MF(GOOD, "unknownmod.u.test", "fail", "an unknown modifier is ignored");
    MF(GOOD, "bare.u.test", "neutral", "\"v=spf1\" alone is an empty record");
    MF(GOOD, "caps.u.test", "pass", "upper case record");
    MF(GOOD, "split.u.test", "pass", "a record in two strings");
    /* libspf2 1.2.10 refuses a zero prefix: documented, not RFC. */
    MF(BAD, "zero.u.test", "permerror", "ip4:0.0.0.0/0 (libspf2: syntax error; RFC 7208: pass)");
}

static void test_exp(void)
{
    MF(BAD, "exp.u.test", "fail", "exp=: fail");
    like(out.explanation, BAD " may not send for exp.u.test (bob@exp.u.test via helo.u.test) "
         "to mx.posthorn.test; " BAD " at ", "the explanation, macros expanded (%%{t} varies)");
    ok(out.explanation && out.explanation[strlen(out.explanation) - 1] == 'x', "  to its end");
    like(out.comment, "; explanation: " BAD " may not send", "the comment has it");
    MF(BAD, "expsoft.u.test", "softfail", "exp= with softfail");
    ok(out.explanation == NULL, "  no explanation");
    MF(BAD, "expbig.u.test", "fail", "exp= of a text that overflows libspf2's compiler");
    ok(out.explanation == NULL, "  is not handed to it");
    MF(BAD, "exptwo.u.test", "fail", "exp= of two TXT records");
    ok(out.explanation == NULL, "  is ignored");
    MF(BAD, "expnx.u.test", "fail", "exp= of a name without TXT");
    ok(out.explanation == NULL, "  is ignored");
    MF(BAD, "deny.u.test", "fail", "fail without exp=");
    ok(out.explanation == NULL, "  has no explanation");
    is_str(out.comment, "domain of bob@deny.u.test does not designate " BAD " as permitted sender",
           "  the comment");
}

static void test_errors(void)
{
    MF(GOOD, "none.u.test", "none", "TXT but no SPF record");
    is_str(out.comment, "domain of bob@none.u.test does not provide an SPF record", "  comment");
    MF(GOOD, "nx.u.test", "none", "NXDOMAIN");
    MF(GOOD, "two.u.test", "permerror", "two SPF records");
    like(out.received_spf, "problem=\"more than one SPF record\";", "  problem=");
    MF(GOOD, "badmech.u.test", "permerror", "an unknown mechanism");
    like(out.comment, "permanent error in the SPF record of badmech.u.test: ", "  comment");
    MF(GOOD, "badip.u.test", "permerror", "a bad ip4 address");
    MF(GOOD, "badcidr.u.test", "permerror", "an ip6 prefix over 128");
    MF(GOOD, "badmacro.u.test", "permerror", "an unknown macro letter");
    MF(GOOD, "badqual.u.test", "permerror", "a bad qualifier");
    MF(GOOD, "loop.u.test", "permerror", "an include loop");
    /* Not domain names: none without a query. */
    is_str(mailfrom(GOOD, "helo.u.test", "bob@localhost"), "none", "a single-label domain");
    like(out.comment, "not a valid domain name", "  comment");
    is_str(mailfrom(GOOD, "helo.u.test", "bob@[192.0.2.1]"), "none", "an address literal");
    is_str(helo_check(GOOD, "192.0.2.10"), "none", "an IPv4 address as HELO");
    is_str(helo_check(GOOD, ""), "none", "an empty HELO");
    is_str(mailfrom(GOOD, "helo.u.test", "bob@a..u.test"), "none", "an empty label");
}

static void test_limits(void)
{
    MF(GOOD, "void2.u.test", "pass", "two void lookups");
    MF(GOOD, "void3.u.test", "permerror", "three void lookups");
    like(out.received_spf, "problem=\"more than 2 void DNS lookups", "  problem=");
    MF(GOOD, "voidmx.u.test", "permerror", "void address lookups of MX hosts count");
    MF(GOOD, "voidinc.u.test", "permerror", "void lookups count across include");
    MF(GOOD, "t10.u.test", "pass", "10 DNS terms (mx's address lookups are not terms)");
    MF(GOOD, "t11.u.test", "permerror", "11 DNS terms, the last one matching");
    like(out.comment, "more than 10 DNS-querying terms", "  comment");
    MF(GOOD, "tinc10.u.test", "pass", "2 includes of 4 terms each: 10");
    MF(GOOD, "tinc.u.test", "permerror", "2 includes of 5 terms each: 12 (libspf2 alone: pass)");
    MF(GOOD, "tredir.u.test", "pass", "9 terms and redirect=");
    MF(GOOD, "tredir2.u.test", "permerror", "10 terms and redirect=");
    MF(GOOD, "mx11.u.test", "permerror", "more than 10 MX names");
}

static void test_identities(void)
{
    is_str(helo_check(GOOD, "helo.u.test"), "pass", "HELO identity");
    is_str(out.domain, "helo.u.test", "  domain");
    is_str(out.received_spf,
           "pass (mx.posthorn.test: domain of helo.u.test designates 192.0.2.10 as permitted "
           "sender) client-ip=192.0.2.10; helo=helo.u.test; receiver=mx.posthorn.test; "
           "identity=helo;", "  Received-SPF");
    is_str(helo_check(BAD, "helo.u.test"), "fail", "HELO identity fail");
    is_str(mailfrom(GOOD, "helo.u.test", ""), "pass", "null reverse-path: postmaster@HELO");
    like(out.received_spf, "envelope-from=\"postmaster@helo.u.test\";", "  envelope-from");
    is_str(out.domain, "helo.u.test", "  domain");
    is_str(mailfrom(GOOD, "helo.u.test", "ip4.u.test"), "pass", "a sender without @");
    is_str(mailfrom(GOOD, "h", "bob@ip4.u.test"), "pass", "MAIL FROM with a bad HELO");
    is_str(mailfrom(GOOD, "", "bob@ip4.u.test"), "pass", "MAIL FROM without HELO");
    ok(out.received_spf && strstr(out.received_spf, "helo=") == NULL, "  no helo= then");
    is_str(mailfrom("::ffff:192.0.2.10", "helo.u.test", "bob@ip4.u.test"), "pass",
           "an IPv4-mapped IPv6 client is IPv4");
    like(out.received_spf, "client-ip=192.0.2.10;", "  and is shown so");
    is_str(mailfrom("2001:db8::10", "helo.u.test", "bob@ip6host.u.test"), "pass", "IPv6 client");
    like(out.received_spf, "client-ip=\"2001:db8::10\";", "  quoted in Received-SPF");
    /* libspf2's free pass for loopback clients is not used. */
    is_str(mailfrom("127.0.0.1", "helo.u.test", "bob@deny.u.test"), "fail",
           "127.0.0.1 gets no free pass");
    is_str(mailfrom("::1", "helo.u.test", "bob@deny.u.test"), "fail", "::1 gets no free pass");
    is_str(mailfrom(GOOD, "helo.u.test", "\"a)\\(\r\nb\"@ip4.u.test"), "pass", "odd local part");
    ok(strpbrk(out.received_spf, "\r\n") == NULL, "  no CR or LF in Received-SPF");
    like(out.received_spf, "(mx.posthorn.test: domain of \"a\\)\\\\\\(??b\"@ip4.u.test designates",
         "  comment characters escaped");
    like(out.received_spf, "envelope-from=\"\\\"a)\\\\(??b\\\"@ip4.u.test\";",
         "  quoted-string escaped");
}

static void test_misuse(void)
{
    spfcheck_outcome_clear(&out);
    is_int(spfcheck_mailfrom(spf, "192.0.2", "h.u.test", "a@ip4.u.test", &out), -1,
           "a client address that is not one");
    is_int(out.result, SPFCHECK_PERMERROR, "  permerror");
    like(out.comment, "not an IP address", "  says why");
    spfcheck_outcome_clear(&out);
    is_int(spfcheck_mailfrom(spf, GOOD, NULL, "a@ip4.u.test", &out), -1, "no HELO string");
    spfcheck_outcome_clear(&out);
    is_int(spfcheck_helo(spf, NULL, "h.u.test", &out), -1, "no client address");
    spfcheck_outcome_clear(&out);
}

static void test_temperror(dns_t *dns)
{
    long long t0 = event_now_ms();
    spfcheck_t *quick;
    const char *why;

    MF(GOOD, "dead.u.test", "temperror", "include of a zone whose server never answers");
    like(out.comment, "spf.outside.test TXT: timed out", "  names the query");
    like(out.received_spf, "problem=\"spf.outside.test TXT: timed out\";", "  problem=");
    MF(GOOD, "deadlate.u.test", "pass", "a match before the failing term");
    ok(event_now_ms() - t0 < 10000, "within the deadlines (%lld ms)", event_now_ms() - t0);
    is_str(mailfrom(GOOD, "helo.u.test", "bob@spf.outside.test"), "temperror",
           "the record itself times out");

    /* The time limit: %{p}'s PTR lookup times out (300 ms, not an error
     * for %{p}), and the evaluation is then past its 100 ms. */
    quick = spfcheck_new(dns, "mx.posthorn.test", &why);
    spfcheck_set_time_limit(quick, 100);
    spfcheck_outcome_clear(&out);
    spfcheck_mailfrom(quick, "203.0.113.9", "helo.u.test", "bob@slow.u.test", &out);
    is_str(spfcheck_result_name(out.result), "temperror", "past the time limit: temperror");
    like(out.comment, "time limit exceeded", "  says so");
    spfcheck_free(&quick);
    ok(quick == NULL, "spfcheck_free clears the pointer");
}

int main(void)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t slen = sizeof(sin);
    struct dns_settings ds = {0};
    const char *why = NULL;
    dns_t *dns;
    int dead;

    msg_init("spfcheck-test", MSG_STDERR);
    alarm(120);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((dead = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0
        || bind(dead, (struct sockaddr *)&sin, sizeof(sin)) < 0
        || getsockname(dead, (struct sockaddr *)&sin, &slen) < 0) {
        diag("dead socket: %s", strerror(errno));
        return 2;
    }
    snprintf(dead_fwd, sizeof(dead_fwd), "127.0.0.1@%u", ntohs(sin.sin_port));
    ds.forwarders = dead_fwd;
    ds.timeout_ms = 300;
    if ((dns = dns_new(&ds, &why)) == NULL
        || dns_local_zone(dns, "u.test", zone, &why) < 0
        || dns_local_zone(dns, "2.0.192.in-addr.arpa", rev4, &why) < 0
        || dns_local_zone(dns, "8.b.d.0.1.0.0.2.ip6.arpa", rev6, &why) < 0) {
        diag("dns: %s", why);
        return 2;
    }
    ok(spfcheck_new(NULL, "x", &why) == NULL, "spfcheck_new needs a resolver");
    ok(spfcheck_new(dns, "", &why) == NULL, "spfcheck_new needs a receiver");
    if ((spf = spfcheck_new(dns, "mx.posthorn.test", &why)) == NULL) {
        diag("spfcheck_new: %s", why);
        return 2;
    }
    test_names();
    test_mechanisms();
    test_exp();
    test_errors();
    test_limits();
    test_identities();
    test_misuse();
    test_temperror(dns);
    spfcheck_outcome_clear(&out);
    spfcheck_free(&spf);
    dns_free(&dns);
    close(dead);
    return done_testing();
}
