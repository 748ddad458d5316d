#!/usr/bin/env python3
"""lib/spfcheck (libspf2 over lib/dns) cross-checked against independent
code: Debian's python3-spf (pyspf, on dnspython), both asking the same
real authoritative server (nsd on 127.0.0.1, a free port) for the zone
spf.test. and the reverse zone 2.0.192.in-addr.arpa.

Each case of the table runs build/t/spfquery (one evaluation through
spfcheck_mailfrom or spfcheck_helo) and pyspf's query.check() in one
/usr/bin/python3 subprocess, and compares the results; where the RFC says
something else than one of them, the case states the RFC 7208 result and
which implementation deviates (an expected, explained difference).  The
cases cover ip4/ip6 with prefixes, a and mx with (dual) prefixes, ptr,
include, redirect, exists with macros, exp=, the 10-term limit (also
across include, which libspf2 alone counts per record), the void lookup
limit (which libspf2 alone lacks), syntax errors, no record, two
records, "v=spf1" alone, the HELO identity, the null reverse-path, a
loopback client (no free pass) and temperror from a zone whose server
never answers (a UDP socket bound and never read).

nsd is our child and is stopped by its PID.  Skips when nsd or
/usr/bin/python3's spf module is missing."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import is_, like, diag, done, skip_all  # noqa: E402
import nsd as nsd_lib  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("POSTHORN_BUILD") or os.path.join(TOP, "build")
SPFQUERY = os.path.join(BUILD, "t", "spfquery")
PY = "/usr/bin/python3"
RECEIVER = "mx.posthorn.test"

if nsd_lib.missing():
    skip_all("needs nsd")
if subprocess.run([PY, "-c", "import spf, dns.resolver"], capture_output=True).returncode:
    skip_all("needs python3-spf and python3-dnspython for /usr/bin/python3")

GOOD, BAD, GOOD6 = "192.0.2.10", "198.51.100.99", "2001:db8::10"

ZONE = "$ORIGIN spf.test.\n$TTL 300\n" + nsd_lib.SOA + r"""
ip4        TXT "v=spf1 ip4:192.0.2.0/24 -all"
cidr       TXT "v=spf1 ip4:192.0.2.8/29 ~all"
ip6        TXT "v=spf1 ip6:2001:db8::/64 -all"
split      TXT "v=spf1 ip4:192.0.2.10" " -all"
a          TXT "v=spf1 a -all"
a          A 192.0.2.10
acidr      TXT "v=spf1 a:host.spf.test/24 -all"
host       A 192.0.2.1
host       AAAA 2001:db8::1
adual      TXT "v=spf1 a:host.spf.test/32//64 -all"
cname      TXT "v=spf1 a:alias.spf.test -all"
alias      CNAME target.spf.test.
target     A 192.0.2.10
mx         TXT "v=spf1 mx -all"
mx         MX 10 mx1.spf.test.
mx         MX 20 mx2.spf.test.
mx1        A 192.0.2.33
mx2        A 192.0.2.10
mxcidr     TXT "v=spf1 mx:mx.spf.test/24 -all"
ptr        TXT "v=spf1 ptr -all"
h10.ptr    A 192.0.2.10
ptrother   TXT "v=spf1 ptr:elsewhere.test -all"
inc        TXT "v=spf1 include:ip4.spf.test -all"
incsoft    TXT "v=spf1 include:cidr.spf.test ip4:192.0.2.20 -all"
incnone    TXT "v=spf1 include:nospf.spf.test -all"
nospf      TXT "hello world"
redir      TXT "v=spf1 redirect=ip4.spf.test"
redirnone  TXT "v=spf1 redirect=nothing.spf.test"
redirall   TXT "v=spf1 ?all redirect=ip4.spf.test"
macro      TXT "v=spf1 exists:%{ir}.%{l1r-}.%{v}.%{d2} -all"
bob.in-addr.spf.test. A 127.0.0.2
10.2.0.192.bob.in-addr.spf.test. A 127.0.0.2
helomacro  TXT "v=spf1 exists:%{h}._h.%{d} -all"
good.example.test._h.helomacro A 127.0.0.2
smacro     TXT "v=spf1 exists:%{s}.%{o} -all"
exp        TXT "v=spf1 ip4:192.0.2.10 -all exp=why.spf.test"
why        TXT "%{i} is not one of %{d}'s designated mail servers."
redirexp   TXT "v=spf1 redirect=exp.spf.test"
badip      TXT "v=spf1 ip4:192.0.2.300 -all"
badmech    TXT "v=spf1 foo:bar.spf.test -all"
badcidr    TXT "v=spf1 ip4:192.0.2.0/33 -all"
unknownmod TXT "v=spf1 ip4:192.0.2.10 -all foo=bar"
two        TXT "v=spf1 ip4:192.0.2.10 -all"
two        TXT "v=spf1 -all"
bare       TXT "v=spf1"
qall       TXT "v=spf1 ip4:198.51.100.0/24 ?all"
void2      TXT "v=spf1 a:nx1.spf.test a:nx2.spf.test ip4:192.0.2.10 -all"
void3      TXT "v=spf1 a:nx1.spf.test a:nx2.spf.test mx:nx3.spf.test ip4:192.0.2.10 -all"
terms10    TXT "v=spf1 a:host.spf.test a:host.spf.test a:host.spf.test a:host.spf.test a:host.spf.test a:host.spf.test a:host.spf.test a:host.spf.test a:host.spf.test a:host.spf.test ip4:192.0.2.10 -all"
terms11    TXT "v=spf1 a:host.spf.test a:host.spf.test a:host.spf.test a:host.spf.test a:host.spf.test a:host.spf.test a:host.spf.test a:host.spf.test a:host.spf.test a:host.spf.test a:host.spf.test ip4:192.0.2.10 -all"
nested     TXT "v=spf1 include:five.spf.test include:five.spf.test ip4:192.0.2.10 -all"
five       TXT "v=spf1 a:host.spf.test a:host.spf.test a:host.spf.test a:host.spf.test a:host.spf.test -all"
dead       TXT "v=spf1 include:spf.dead.test -all"
helo       TXT "v=spf1 a -all"
helo       A 192.0.2.10
deny       TXT "v=spf1 -all"
zero       TXT "v=spf1 ip4:0.0.0.0/0 -all"
mx11       TXT "v=spf1 mx -all"
mx11       MX 1 m1.mx11.spf.test.
m1.mx11    A 192.0.2.99
mx11       MX 2 m2.mx11.spf.test.
m2.mx11    A 192.0.2.99
mx11       MX 3 m3.mx11.spf.test.
m3.mx11    A 192.0.2.99
mx11       MX 4 m4.mx11.spf.test.
m4.mx11    A 192.0.2.99
mx11       MX 5 m5.mx11.spf.test.
m5.mx11    A 192.0.2.99
mx11       MX 6 m6.mx11.spf.test.
m6.mx11    A 192.0.2.99
mx11       MX 7 m7.mx11.spf.test.
m7.mx11    A 192.0.2.99
mx11       MX 8 m8.mx11.spf.test.
m8.mx11    A 192.0.2.99
mx11       MX 9 m9.mx11.spf.test.
m9.mx11    A 192.0.2.99
mx11       MX 10 m10.mx11.spf.test.
m10.mx11    A 192.0.2.99
mx11       MX 11 m11.mx11.spf.test.
m11.mx11    A 192.0.2.99
mx11m      TXT "v=spf1 mx -all"
mx11m      MX 2 m1.mx11.spf.test.
mx11m      MX 3 m2.mx11.spf.test.
mx11m      MX 4 m3.mx11.spf.test.
mx11m      MX 5 m4.mx11.spf.test.
mx11m      MX 6 m5.mx11.spf.test.
mx11m      MX 7 m6.mx11.spf.test.
mx11m      MX 8 m7.mx11.spf.test.
mx11m      MX 9 m8.mx11.spf.test.
mx11m      MX 10 m9.mx11.spf.test.
mx11m      MX 11 m10.mx11.spf.test.
mx11m      MX 1 target.spf.test.
ptr12      TXT "v=spf1 ptr -all"
p1.ptr12   A 192.0.2.99
p2.ptr12   A 192.0.2.99
p3.ptr12   A 192.0.2.99
p4.ptr12   A 192.0.2.99
p5.ptr12   A 192.0.2.99
p6.ptr12   A 192.0.2.99
p7.ptr12   A 192.0.2.99
p8.ptr12   A 192.0.2.99
p9.ptr12   A 192.0.2.99
p10.ptr12   A 192.0.2.99
p11.ptr12   A 192.0.2.99
p12.ptr12   A 192.0.2.99
pmacro     TXT "v=spf1 exists:%{p}._p.%{d} -all"
h10.ptr.spf.test._p.pmacro A 127.0.0.2
"""

REVERSE = "$ORIGIN 2.0.192.in-addr.arpa.\n$TTL 300\n" + nsd_lib.SOA + """
10 PTR h10.ptr.spf.test.
12 PTR p1.ptr12.spf.test.
12 PTR p2.ptr12.spf.test.
12 PTR p3.ptr12.spf.test.
12 PTR p4.ptr12.spf.test.
12 PTR p5.ptr12.spf.test.
12 PTR p6.ptr12.spf.test.
12 PTR p7.ptr12.spf.test.
12 PTR p8.ptr12.spf.test.
12 PTR p9.ptr12.spf.test.
12 PTR p10.ptr12.spf.test.
12 PTR p11.ptr12.spf.test.
12 PTR p12.ptr12.spf.test.
"""

# (name, client ip, helo, sender or None for the HELO identity,
#  RFC 7208 result[, implementation that deviates, its result, why]).
CASES = [
    ("ip4 pass", GOOD, "c.test", "a@ip4.spf.test", "pass"),
    ("ip4 fail", BAD, "c.test", "a@ip4.spf.test", "fail"),
    ("ip4 prefix pass", GOOD, "c.test", "a@cidr.spf.test", "pass"),
    ("ip4 prefix softfail", "192.0.2.20", "c.test", "a@cidr.spf.test", "softfail"),
    ("ip6 pass", GOOD6, "c.test", "a@ip6.spf.test", "pass"),
    ("ip6 fail", "2001:db8:1::1", "c.test", "a@ip6.spf.test", "fail"),
    ("ip6 record, IPv4 client", GOOD, "c.test", "a@ip6.spf.test", "fail"),
    ("TXT of two strings", GOOD, "c.test", "a@split.spf.test", "pass"),
    ("a", GOOD, "c.test", "a@a.spf.test", "pass"),
    ("a:host/24", GOOD, "c.test", "a@acidr.spf.test", "pass"),
    ("a:host/24 no match", BAD, "c.test", "a@acidr.spf.test", "fail"),
    ("a dual prefix, IPv6 /64", "2001:db8::abcd", "c.test", "a@adual.spf.test", "pass"),
    ("a dual prefix, IPv4 /32", "192.0.2.2", "c.test", "a@adual.spf.test", "fail"),
    ("a through a CNAME", GOOD, "c.test", "a@cname.spf.test", "pass"),
    ("mx second host", GOOD, "c.test", "a@mx.spf.test", "pass"),
    ("mx no match", "192.0.2.11", "c.test", "a@mx.spf.test", "fail"),
    ("mx:domain/24", "192.0.2.200", "c.test", "a@mxcidr.spf.test", "pass"),
    ("ptr", GOOD, "c.test", "a@ptr.spf.test", "pass"),
    ("ptr no PTR", "192.0.2.11", "c.test", "a@ptr.spf.test", "fail"),
    ("ptr:other domain", GOOD, "c.test", "a@ptrother.spf.test", "fail"),
    ("ptr with 12 names, the first 10 used", "192.0.2.12", "c.test", "a@ptr12.spf.test", "fail"),
    ("exists %{p}", GOOD, "c.test", "a@pmacro.spf.test", "pass"),
    ("mx with 11 names, none matches", GOOD, "c.test", "a@mx11.spf.test", "permerror"),
    ("mx with 11 names, the first matches", GOOD, "c.test", "a@mx11m.spf.test", "pass", "pyspf",
     "permerror",
     "pyspf fails as soon as it sees more than 10 MX names; RFC 7208 4.6.4 forbids "
     "querying more than 10 address records, and the first query already matched"),
    ("include pass", GOOD, "c.test", "a@inc.spf.test", "pass"),
    ("include fail", BAD, "c.test", "a@inc.spf.test", "fail"),
    ("include softfail is no match", "192.0.2.20", "c.test", "a@incsoft.spf.test", "pass"),
    ("include of no record", GOOD, "c.test", "a@incnone.spf.test", "permerror"),
    ("redirect pass", GOOD, "c.test", "a@redir.spf.test", "pass"),
    ("redirect fail", BAD, "c.test", "a@redir.spf.test", "fail"),
    ("redirect to no record", GOOD, "c.test", "a@redirnone.spf.test", "permerror"),
    ("redirect ignored with all", GOOD, "c.test", "a@redirall.spf.test", "neutral"),
    ("exists %{ir}.%{l1r-}.%{v}.%{d2}", GOOD, "c.test", "bob-x@macro.spf.test", "pass"),
    ("exists macro no match", GOOD, "c.test", "x-bob@macro.spf.test", "fail"),
    ("exists %{h}", GOOD, "good.example.test", "a@helomacro.spf.test", "pass"),
    ("exists %{s} (invalid name)", GOOD, "c.test", "a b@smacro.spf.test", "fail"),
    ("exp= explanation", BAD, "c.test", "a@exp.spf.test", "fail"),
    ("exp= through redirect", BAD, "c.test", "a@redirexp.spf.test", "fail"),
    ("syntax: bad ip4", GOOD, "c.test", "a@badip.spf.test", "permerror"),
    ("syntax: unknown mechanism", GOOD, "c.test", "a@badmech.spf.test", "permerror"),
    ("syntax: prefix 33", GOOD, "c.test", "a@badcidr.spf.test", "permerror"),
    ("unknown modifier ignored", GOOD, "c.test", "a@unknownmod.spf.test", "pass"),
    ("two records", GOOD, "c.test", "a@two.spf.test", "permerror"),
    ("TXT but no SPF record", GOOD, "c.test", "a@nospf.spf.test", "none"),
    ("no such domain", GOOD, "c.test", "a@nx.spf.test", "none"),
    ('"v=spf1" alone', GOOD, "c.test", "a@bare.spf.test", "neutral"),
    ("?all", GOOD, "c.test", "a@qall.spf.test", "neutral"),
    ("two void lookups", GOOD, "c.test", "a@void2.spf.test", "pass"),
    ("three void lookups", GOOD, "c.test", "a@void3.spf.test", "permerror"),
    ("10 DNS terms", GOOD, "c.test", "a@terms10.spf.test", "pass"),
    ("11 DNS terms", GOOD, "c.test", "a@terms11.spf.test", "permerror"),
    ("12 DNS terms across include", GOOD, "c.test", "a@nested.spf.test", "permerror"),
    ("temperror: server never answers", GOOD, "c.test", "a@dead.spf.test", "temperror"),
    ("HELO identity", GOOD, "helo.spf.test", None, "pass"),
    ("HELO identity fail", BAD, "helo.spf.test", None, "fail"),
    ("null reverse-path is postmaster@HELO", GOOD, "helo.spf.test", "", "pass"),
    ("HELO address literal", GOOD, "[192.0.2.10]", None, "none", "pyspf", "temperror",
     "pyspf asks DNS for the literal, which the test's nsd refuses; RFC 7208 4.3: "
     "not a domain name, none"),
    ("HELO an IPv4 address", GOOD, "192.0.2.10", None, "none", "pyspf", "temperror",
     "pyspf asks DNS for it, which the test's nsd refuses; RFC 7208 7.1: a top label "
     "of digits only is not a domain name, none"),
    ("loopback client gets no free pass", "127.0.0.1", "c.test", "a@deny.spf.test", "fail"),
    ("IPv4-mapped IPv6 client", "::ffff:192.0.2.10", "c.test", "a@ip4.spf.test", "pass"),
    ("ip4:0.0.0.0/0", BAD, "c.test", "a@zero.spf.test", "pass", "spfcheck", "permerror",
     "libspf2 1.2.10 refuses a zero prefix as a syntax error: permerror"),
]

PYSPF = r"""
import json, sys
import dns.resolver, spf
port, receiver, cases = json.loads(sys.stdin.read())
r = dns.resolver.Resolver(configure=False)
r.nameservers = ["127.0.0.1"]
r.port = port
r.timeout = r.lifetime = 2.0
dns.resolver.default_resolver = r
out = []
for ip, helo, sender in cases:
    s = sender if sender else "postmaster@" + helo
    try:
        res, code, exp = spf.query(i=ip, s=s, h=helo, receiver=receiver,
                                   strict=True, timeout=3).check()
    except Exception as e:
        res, exp = "exception", "%s: %s" % (type(e).__name__, e)
    out.append([res, exp])
print(json.dumps(out))
"""

dead = nsd_lib.DeadServer()
server = nsd_lib.Nsd([("spf.test.", ZONE), ("2.0.192.in-addr.arpa.", REVERSE)])
stubs = ["spf.test=127.0.0.1@%d" % server.port, "2.0.192.in-addr.arpa=127.0.0.1@%d" % server.port,
         "dead.test=127.0.0.1@%d" % dead.port]


failures = []


def spfquery(ip, helo, sender):
    cmd = [SPFQUERY, "--timeout", "1000", "--receiver", RECEIVER]
    for s in stubs:
        cmd += ["--stub", s]
    if sender is None:
        cmd += ["--helo-only", ip, helo, ""]
    else:
        cmd += [ip, helo, sender]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    lines = p.stdout.splitlines()
    fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    if p.returncode != 0:
        failures.append("%s %s %s: exit %d %s" % (ip, helo, sender, p.returncode, p.stderr[-2000:]))
    return (lines[0] if lines else "exit %d: %s" % (p.returncode, p.stderr.strip())), fields


theirs = subprocess.run([PY, "-c", PYSPF], input=json.dumps(
    [server.port, RECEIVER, [[c[1], c[2], c[3]] for c in CASES]]),
    capture_output=True, text=True, timeout=600)
if theirs.returncode != 0:
    diag(theirs.stderr)
pyspf = json.loads(theirs.stdout) if theirs.returncode == 0 else [["(pyspf failed)", ""]] * len(CASES)

outputs = {}
for case, (their, their_exp) in zip(CASES, pyspf):
    name, ip, helo, sender, rfc = case[:5]
    deviant, dresult, why = case[5:8] if len(case) > 5 else (None, None, None)
    ours, fields = spfquery(ip, helo, sender)
    outputs[name] = (ours, fields, their_exp)
    for who, got in (("spfcheck", ours), ("pyspf", their)):
        if who == deviant:
            is_(got, dresult, "%s: %s gives %s where RFC 7208 says %s (expected: %s)"
                % (name, who, dresult, rfc, why))
        else:
            is_(got, rfc, "%s: %s gives %s" % (name, who, rfc))
    if ours != their and deviant is None:
        diag("%s: %r %r" % (name, fields, their_exp))

is_(failures, [], "spfquery exited 0 every time (under sanitizers too)")

# The explanation: the same text as pyspf's, in our comment too.
ours, fields, their_exp = outputs["exp= explanation"]
is_(fields.get("explanation"), "%s is not one of exp.spf.test's designated mail servers." % BAD,
    "exp=: the explanation, macros expanded")
is_(fields.get("explanation"), their_exp, "exp=: pyspf's explanation is the same")
like(fields.get("comment", ""), "explanation: " + BAD, "exp=: the comment carries it")
ours, fields, their_exp = outputs["exp= through redirect"]
is_(fields.get("explanation"), "%s is not one of exp.spf.test's designated mail servers." % BAD,
     "exp= of the redirect target, %{d} its domain")
is_(fields.get("explanation"), their_exp, "  as pyspf has it")
ours, fields, _ = outputs["ip4 pass"]
is_(fields.get("received-spf"),
    "pass (mx.posthorn.test: domain of a@ip4.spf.test designates 192.0.2.10 as permitted "
    "sender) client-ip=192.0.2.10; envelope-from=\"a@ip4.spf.test\"; helo=c.test; "
    "receiver=mx.posthorn.test; identity=mailfrom;", "a whole Received-SPF value")
ours, fields, _ = outputs["three void lookups"]
like(fields.get("received-spf", ""), 'problem="more than 2 void DNS lookups',
     "the void lookup limit is the problem")
ours, fields, _ = outputs["12 DNS terms across include"]
like(fields.get("comment", ""), "more than 10 DNS-querying terms", "the term limit is the reason")
ours, fields, _ = outputs["temperror: server never answers"]
like(fields.get("comment", ""), "spf.dead.test TXT: timed out", "temperror names the query")
ours, fields, _ = outputs["HELO identity"]
like(fields.get("received-spf", ""), "identity=helo;", "the HELO identity is named")
ours, fields, _ = outputs["null reverse-path is postmaster@HELO"]
like(fields.get("received-spf", ""), 'envelope-from="postmaster@helo.spf.test"',
     "the null reverse-path checks postmaster@HELO")

# Misuse is refused, not evaluated.
p = subprocess.run([SPFQUERY, "not-an-ip", "c.test", "a@ip4.spf.test"], capture_output=True,
                   text=True, timeout=60)
is_(p.returncode, 1, "a client address that is not an address is refused")
like(p.stderr, "not an IP address", "  and says why")

server.stop()
dead.close()
done()
