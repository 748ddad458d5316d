#!/usr/bin/env python3
"""lib/dns against a real authoritative server (nsd on 127.0.0.1, a free
port), through the t/dnsq tool and a main.conf of our own that names it in
dns_stub_zones.

Unsigned zone test. (and 2.0.192.in-addr.arpa.): MX order by preference,
the implicit-MX case (NODATA for MX, the A record exists), a null MX
`0 .`, A, AAAA, TXT of several strings, PTR (also from an address), TLSA,
a CNAME followed, NXDOMAIN, a missing trust anchor file (validation off,
logged), and TEMPFAIL from a stub zone whose server never answers (a UDP
socket bound and never read), in the event loop and the synchronous
helper.  Then the zone signed with ldns-signzone, its DS (ldns-key2ds)
as the trust anchor: secure=1 for data, NODATA and NXDOMAIN; insecure for
the unsigned reverse zone; bogus for a child zone whose signatures
expired, and for every name under a wrong anchor.

nsd is started as our child and killed by its PID (and its children by
theirs) at the end.  Skips only if nsd or the ldns tools are missing."""
import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, diag, done, skip_all  # noqa: E402
import nsd as nsd_lib  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("POSTHORN_BUILD") or os.path.join(TOP, "build")
DNSQ = os.path.join(BUILD, "t", "dnsq")

NEEDED = ("nsd", "ldns-keygen", "ldns-signzone", "ldns-key2ds")
missing = [p for p in NEEDED if shutil.which(p, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None]
if missing:
    skip_all("needs %s (Debian: nsd, ldnsutils)" % ", ".join(missing))


TLSA = "8d02536c887482bc34ff54e41d2ba659bf85b341a0a20afadb5813dcfbcf286d"
tmp = tempfile.mkdtemp(prefix="posthorn-dns-")
atexit.register(shutil.rmtree, tmp, True)
def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


# --- the zones -------------------------------------------------------------

SOA = nsd_lib.SOA


def test_zone(extra=""):
    return ("$ORIGIN test.\n$TTL 300\n" + SOA + """
ns IN A 127.0.0.1
mx IN MX 20 mx2.mx.test.
mx IN MX 10 mx1.mx.test.
mx IN MX 10 mx0.mx.test.
mx0.mx IN A 192.0.2.3
mx1.mx IN A 192.0.2.1
mx2.mx IN A 192.0.2.2
mx2.mx IN AAAA 2001:db8::2
mx2.mx IN AAAA 2001:db8::22
implicit IN A 192.0.2.10
nullmx IN MX 0 .
txt IN TXT "v=spf1 ip4:192.0.2.0/24" " -all"
_25._tcp.mx1.mx IN TLSA 3 1 1 %s
alias IN CNAME mx1.mx.test.
""" % TLSA + extra)


REVERSE = ("$ORIGIN 2.0.192.in-addr.arpa.\n$TTL 300\n" + SOA +
           "1 IN PTR mx1.mx.test.\n10 IN PTR implicit.test.\n10 IN PTR other.test.\n")
EXPIRED = ("$ORIGIN expired.test.\n$TTL 300\n" +
           SOA.replace("@ IN NS", "@ IN NS") + "www IN A 192.0.2.99\n")


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def keygen(zone, d):
    r = run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", zone], cwd=d)
    if r.returncode != 0:
        diag(r.stderr)
        raise RuntimeError("ldns-keygen failed")
    return os.path.join(d, r.stdout.strip())


def ds_of(key):
    r = run(["ldns-key2ds", "-n", "-2", key + ".key"])
    if r.returncode != 0:
        diag(r.stderr)
        raise RuntimeError("ldns-key2ds failed")
    return r.stdout.strip()


def sign(zonefile, key, *extra):
    r = run(["ldns-signzone"] + list(extra) + [zonefile, key])
    if r.returncode != 0:
        diag(r.stderr)
        raise RuntimeError("ldns-signzone failed")
    return zonefile + ".signed"


# --- nsd -------------------------------------------------------------------

def start_nsd(port, zones):
    """nsd (t/lib/nsd.py) serving (name, zone file) pairs on port."""
    texts = []
    for name, path in zones:
        with open(path) as f:
            texts.append((name, f.read()))
    return nsd_lib.Nsd(texts, port=port)


# --- dnsq ------------------------------------------------------------------

def confdir(name, **params):
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    write(os.path.join(d, "main.conf"),
          "".join("%s = %s\n" % (k, v) for k, v in params.items()))
    return d


class Answer:
    def __init__(self, r):
        self.rc, self.stderr = r.returncode, r.stderr
        lines = r.stdout.splitlines()
        head = lines[0].split() if lines else ["(none)"]
        self.status = head[0]
        kv = dict(x.split("=", 1) for x in head[1:] if "=" in x)
        self.secure = kv.get("secure")
        self.bogus = kv.get("bogus")
        self.canonname = kv.get("canonname")
        self.why = None
        self.null = False
        self.records = []
        for l in lines[1:]:
            if l.startswith("why: "):
                self.why = l[5:]
            elif l == "null MX":
                self.null = True
            else:
                self.records.append(l)
        self.raw = r.stdout + r.stderr


def q(conf, rtype, name, sync=False, overrides=()):
    opts = [x for o in overrides for x in ("-o", o)]
    r = run([DNSQ, "-c", conf] + opts + (["-s"] if sync else []) + [rtype, name], timeout=120)
    a = Answer(r)
    if a.rc != 0:
        diag("dnsq %s %s: exit %d: %s" % (rtype, name, a.rc, a.raw))
    return a


def check(conf, rtype, name, status, records=None, secure="0", how=""):
    for sync in (False, True):
        a = q(conf, rtype, name, sync)
        label = "%s%s %s %s" % (how, "sync" if sync else "async", rtype, name)
        if not is_((a.status, a.secure, a.bogus, a.rc), (status, secure, "0", 0),
                   "%s: %s, secure=%s" % (label, status, secure)):
            diag(a.raw)
        if records is not None:
            is_(a.records, records, "%s: records" % label)
    return a


if not os.access(DNSQ, os.X_OK):
    ok(False, "the dnsq tool is built (%s)" % DNSQ)
    done()

port = nsd_lib.free_port()
dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # bound, never read
dead.bind(("127.0.0.1", 0))
dead_port = dead.getsockname()[1]
stubs = "test.=127.0.0.1@%d 2.0.192.in-addr.arpa=127.0.0.1@%d" % (port, port)

# ------------------------------------------------------------ unsigned zones
z1 = os.path.join(tmp, "unsigned")
os.makedirs(z1)
write(os.path.join(z1, "test.zone"), test_zone())
write(os.path.join(z1, "reverse.zone"), REVERSE)
nsd = start_nsd(port, [("test.", os.path.join(z1, "test.zone")),
                           ("2.0.192.in-addr.arpa.", os.path.join(z1, "reverse.zone"))])
ok(True, "nsd serves the unsigned zones on port %d" % port)

plain = confdir("plain", dns_stub_zones=stubs + " dead.test=127.0.0.1@%d" % dead_port,
                dns_forwarders="127.0.0.1@%d" % dead_port,
                dnssec_trust_anchor_file=os.path.join(tmp, "no-such.key"),
                dns_query_timeout="5s")

a = check(plain, "MX", "mx.test", "OK",
          ["MX 10 mx0.mx.test", "MX 10 mx1.mx.test", "MX 20 mx2.mx.test"])
like(a.stderr, "no trust anchor file %s/no-such.key: DNSSEC validation is off" % tmp,
     "a missing trust anchor file is logged")
ok(not a.null, "an ordinary MX is not a null MX")
check(plain, "MX", "implicit.test", "NODATA", [])
check(plain, "A", "implicit.test", "OK", ["A 192.0.2.10"])
a = check(plain, "MX", "nullmx.test", "OK", ["MX 0 ."])
ok(a.null, "0 . is reported as a null MX")
check(plain, "A", "mx1.mx.test", "OK", ["A 192.0.2.1"])
check(plain, "AAAA", "mx2.mx.test", "OK", ["AAAA 2001:db8::2", "AAAA 2001:db8::22"])
check(plain, "AAAA", "mx1.mx.test", "NODATA", [])
check(plain, "TXT", "txt.test", "OK", ['TXT "v=spf1 ip4:192.0.2.0/24" " -all"'])
check(plain, "PTR", "1.2.0.192.in-addr.arpa", "OK", ["PTR mx1.mx.test"])
check(plain, "PTR", "192.0.2.10", "OK", ["PTR implicit.test", "PTR other.test"])
check(plain, "TLSA", "_25._tcp.mx1.mx.test", "OK", ["TLSA 3 1 1 " + TLSA])
a = check(plain, "A", "alias.test", "OK", ["A 192.0.2.1"])
is_(a.canonname, "mx1.mx.test", "a CNAME is followed; canonname is its target")
check(plain, "MX", "nothere.test", "NXDOMAIN", [])
check(plain, "PTR", "192.0.2.200", "NXDOMAIN", [])
a = q(plain, "MX", "bad..test")
is_((a.status, a.rc), ("INVALID", 0), "an invalid name is refused before asking")

for sync in (False, True):
    t0 = time.time()
    a = q(plain, "MX", "host.dead.test", sync, ["dns_query_timeout=2s"])
    took = time.time() - t0
    is_((a.status, a.rc), ("TEMPFAIL", 0), "%s: a stub zone whose server never answers: TEMPFAIL"
        % ("sync" if sync else "async"))
    ok(a.why is not None, "  with a reason (%s)" % a.why)
    ok(took < 60, "  reported within a generous bound (%.1fs; dns_query_timeout is 2s)" % took)

nsd.stop()

# ------------------------------------------------------------ signed zones
z2 = os.path.join(tmp, "signed")
os.makedirs(z2)
kexp = keygen("expired.test.", z2)
write(os.path.join(z2, "expired.zone"), EXPIRED)
# Valid only in 2019: expired for years.
expired_signed = sign(os.path.join(z2, "expired.zone"), kexp, "-i", "20190101000000",
                      "-e", "20191231000000")
ktest = keygen("test.", z2)
write(os.path.join(z2, "test.zone"),
      test_zone("expired IN NS ns.test.\n" + ds_of(kexp) + "\n"))
test_signed = sign(os.path.join(z2, "test.zone"), ktest)
write(os.path.join(z2, "reverse.zone"), REVERSE)
anchor = os.path.join(z2, "anchor.key")
write(anchor, "; the DS of test., from ldns-key2ds\n" + ds_of(ktest) + "\n")
kwrong = keygen("test.", os.path.join(z2))
wrong_anchor = os.path.join(z2, "wrong.key")
write(wrong_anchor, ds_of(kwrong) + "\n")

nsd = start_nsd(port, [("test.", test_signed),
                           ("expired.test.", expired_signed),
                           ("2.0.192.in-addr.arpa.", os.path.join(z2, "reverse.zone"))])
ok(True, "nsd serves the signed zones")

signed = confdir("signed", dns_stub_zones=stubs, dns_forwarders="127.0.0.1@%d" % dead_port,
                 dnssec_trust_anchor_file=anchor, dns_query_timeout="5s")
how = "signed: "
a = check(signed, "MX", "mx.test", "OK",
          ["MX 10 mx0.mx.test", "MX 10 mx1.mx.test", "MX 20 mx2.mx.test"], "1", how)
ok("no trust anchor" not in a.stderr, "signed: the anchor file is read")
check(signed, "A", "mx1.mx.test", "OK", ["A 192.0.2.1"], "1", how)
check(signed, "AAAA", "mx2.mx.test", "OK", ["AAAA 2001:db8::2", "AAAA 2001:db8::22"], "1", how)
check(signed, "TLSA", "_25._tcp.mx1.mx.test", "OK", ["TLSA 3 1 1 " + TLSA], "1", how)
check(signed, "TXT", "txt.test", "OK", ['TXT "v=spf1 ip4:192.0.2.0/24" " -all"'], "1", how)
a = check(signed, "A", "alias.test", "OK", ["A 192.0.2.1"], "1", how)
is_(a.canonname, "mx1.mx.test", "signed: a secure CNAME is followed")
a = check(signed, "MX", "nullmx.test", "OK", ["MX 0 ."], "1", how)
ok(a.null, "signed: null MX")
check(signed, "MX", "implicit.test", "NODATA", [], "1", how + "proven ")
check(signed, "MX", "nothere.test", "NXDOMAIN", [], "1", how + "proven ")
check(signed, "PTR", "192.0.2.1", "OK", ["PTR mx1.mx.test"], "0", how + "unsigned reverse zone ")

for sync in (False, True):
    a = q(signed, "A", "www.expired.test", sync)
    label = "sync" if sync else "async"
    is_((a.status, a.secure, a.bogus, a.rc), ("BOGUS", "0", "1", 0),
        "%s: a zone whose signatures expired is bogus" % label)
    ok(a.why, "  with libunbound's reason (%s)" % a.why)
    is_(a.records, [], "  and no records")

wrong = confdir("wrong", dns_stub_zones=stubs, dns_forwarders="127.0.0.1@%d" % dead_port,
                dnssec_trust_anchor_file=wrong_anchor, dns_query_timeout="5s")
for rtype, name in (("MX", "mx.test"), ("A", "mx1.mx.test")):
    a = q(wrong, rtype, name)
    is_((a.status, a.bogus, a.rc), ("BOGUS", "1", 0), "a wrong anchor: %s %s is bogus" % (rtype, name))
    ok(a.why, "  why: %s" % a.why)

unsigned_view = confdir("novalidation", dns_stub_zones=stubs,
                        dns_forwarders="127.0.0.1@%d" % dead_port,
                        dnssec_trust_anchor_file="", dns_query_timeout="5s")
a = q(unsigned_view, "MX", "mx.test")
is_((a.status, a.secure, a.bogus, a.rc), ("OK", "0", "0", 0),
    "validation off (empty anchor file setting): the signed zone answers, not secure")
ok("trust anchor" not in a.stderr, "  and nothing is logged about it")

write(os.path.join(z2, "a.key"), "test. IN A 192.0.2.1\n")
bad = confdir("badanchor", dnssec_trust_anchor_file=os.path.join(z2, "a.key"))
r = run([DNSQ, "-c", bad, "MX", "mx.test"], timeout=60)
is_(r.returncode, 2, "an anchor file that is not DS/DNSKEY records is a configuration error")
like(r.stderr, "not a DS or DNSKEY record", "  named as such")

nsd.stop()
dead.close()
done()
