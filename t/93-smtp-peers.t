#!/usr/bin/env python3
"""t/93-smtp-peers.t - the SMTP client against real peers: two Posthorn
instances (A for a.test on 127.0.0.3, B for b.test on 127.0.0.4) and a
private Postfix (pf.test on 127.0.0.5), all on one port, finding each
other through a real nsd (Postfix through its transport table), each
delivering into the Maildir of a user of its own.

A to B, with NOTIFY=SUCCESS,FAILURE: delivered over STARTTLS (B's
self-signed certificate: "Untrusted TLS connection established") with
BDAT, B's success report comes back to A's sender, the only one (B
announced DSN, so A sends none of its own); an unknown user at B is
refused at RCPT and bounced by A with B's reply as the Diagnostic-Code.
A to Postfix and Postfix to A, both with NOTIFY=SUCCESS,FAILURE: delivered,
and each side's success report (only Postfix's for A's message) reaches the
other's sender; an unknown user
at A is bounced by Postfix.
Skips without nsd, postfix or root."""
import atexit
import os
import shutil
import smtplib
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, diag, done, skip_all  # noqa: E402
import nsd  # noqa: E402
import postfixinst  # noqa: E402

if nsd.missing():
    skip_all("needs nsd")
if os.geteuid() != 0:
    skip_all("master must run as root")

import posthorn  # noqa: E402
from smtptest import problems, free_port_on, outcome  # noqa: E402

work = tempfile.mkdtemp(prefix="posthorn-smtp-peers-")
os.chmod(work, 0o755)
atexit.register(shutil.rmtree, work, True)
ADDRS = ["127.0.0.3", "127.0.0.4", "127.0.0.5"]
PORT = free_port_on(ADDRS)

SOA = nsd.SOA
ZONE = "$ORIGIN test.\n$TTL 300\n" + SOA + """
ns IN A 127.0.0.1
a IN MX 10 mx.a.test.
mx.a IN A 127.0.0.3
b IN MX 10 mx.b.test.
mx.b IN A 127.0.0.4
pf IN MX 10 mx.pf.test.
mx.pf IN A 127.0.0.5
"""
dns = nsd.Nsd([("test.", ZONE)])
STUBS = "test=127.0.0.1@%d 127.in-addr.arpa=127.255.255.255" % dns.port


def posthorn_for(domain, addr):
    i = posthorn.Instance(hostname="mx.%s" % domain, domain=domain, main_conf={
        "dns_stub_zones": STUBS, "dns_query_timeout": "3s", "dnssec_trust_anchor_file": "",
        "smtp_tcp_port": str(PORT)})
    with open(os.path.join(i.etc, "master.conf"), "a") as f:
        f.write("%s:%d inet n - - smtpd\n" % (addr, PORT))
    r = i.start()
    ok(r.returncode == 0, "Posthorn for %s on %s:%d" % (domain, addr, PORT)) or diag(r.stderr)
    return i


A = posthorn_for("a.test", "127.0.0.3")
B = posthorn_for("b.test", "127.0.0.4")
alice, alice_home = A.add_user()
bob, bob_home = B.add_user()
ALICE, BOB = "%s@a.test" % alice, "%s@b.test" % bob


def wait_mail(inst, home, needle, timeout=40):
    def look():
        return [d for d in inst.maildir(home).values() if needle in d]
    return inst.wait_for(look, timeout=timeout) or []


def report(inst, home, kind, needle):
    subj = b"Successful Mail Delivery Report" if kind == "success" else \
        b"Undelivered Mail Returned to Sender"
    return [d for d in wait_mail(inst, home, needle) if subj in d]


# ------------------------------------------------------------ Posthorn <-> Posthorn
content = b"From: <%s>\r\nSubject: a to b\r\nMessage-ID: <ab1@a.test>\r\n\r\nHi Bob\r\n" % ALICE.encode()
qid = A.submit(content, ALICE, [(BOB, 0x3, "rfc822;" + BOB)], envid="AB1")
o = outcome(A, qid, BOB, timeout=60)
is_(o and (o["status"], o["relay"]), ("sent", "mx.b.test[127.0.0.4]:%d" % PORT),
    "A to B: sent") or diag(A.log()[-2000:])
got = wait_mail(B, bob_home, b"Subject: a to b")
ok(got, "  in Bob's Maildir on B")
like(got and got[0].decode("latin-1"), "with ESMTPS", "  over TLS (B's Received: says ESMTPS)")
like(A.log(), "Untrusted TLS connection established to mx.b.test[127.0.0.4]:%d: TLSv1.3" % PORT,
     "  A logs the TLS connection (B's certificate is self-signed)")
rep = report(A, alice_home, "success", b"ab1@a.test")
ok(rep, "  B's success report (NOTIFY=SUCCESS went along) reaches Alice on A")
like(rep and rep[0].decode("latin-1"), "Original-Envelope-Id: AB1", "  with the ENVID")
is_(len(rep), 1, "  the only one: A sends none of its own to a server with DSN (Postfix)")
like(rep and rep[0].decode("latin-1"), "Reporting-MTA: dns; mx.b.test", "  it is B's")
ok("%s: sender delivery status notification" % qid not in A.log(), "  A logs none")

content = b"From: <%s>\r\nSubject: a to nobody\r\n\r\nHi\r\n" % ALICE.encode()
qid = A.submit(content, ALICE, [("nosuchuser@b.test", 0x3, "")])
o = outcome(A, qid, "nosuchuser@b.test", timeout=60)
is_(o and (o["status"], o["dsn"]), ("bounced", "5.1.1"), "A to an unknown user at B: bounced")
rep = report(A, alice_home, "failure", b"nosuchuser@b.test")
ok(rep, "  Alice has the report")
like(rep and rep[0].decode("latin-1"), "Diagnostic-Code: smtp; 550 5.1.1", "  with B's reply")

# ------------------------------------------------------------ Posthorn <-> Postfix
if postfixinst.missing():
    ok(True, "# skip Postfix: not installed")
    dns.stop()
    done()

carol, carol_home = A.add_user()
CAROL = "%s@pf.test" % carol
pf = postfixinst.Postfix(os.path.join(work, "postfix"), "127.0.0.5", PORT, "mx.pf.test",
                         "pf.test", transport={"a.test": "smtp:[127.0.0.3]:%d" % PORT,
                                               "b.test": "smtp:[127.0.0.4]:%d" % PORT})
pf.start()
ok(True, "Postfix for pf.test on 127.0.0.5:%d" % PORT)

content = b"From: <%s>\r\nSubject: a to postfix\r\nMessage-ID: <ap1@a.test>\r\n\r\nHi Carol\r\n" \
    % ALICE.encode()
qid = A.submit(content, ALICE, [(CAROL, 0x3, "rfc822;" + CAROL)], envid="AP1")
o = outcome(A, qid, CAROL, timeout=60)
is_(o and (o["status"], o["relay"]), ("sent", "mx.pf.test[127.0.0.5]:%d" % PORT),
    "A to Postfix: sent") or diag(A.log()[-2000:])
like(o and o["text"], " bytes queued as",
     "  Postfix's reply to BDAT LAST in the log (Postfix offers CHUNKING)")
ok(wait_mail(A, carol_home, b"Subject: a to postfix"), "  in Carol's Maildir (Postfix's delivery)")
rep = report(A, alice_home, "success", b"ap1@a.test")
ok(rep, "  Postfix's success report reaches Alice") or diag(pf.log()[-2000:])
is_(len(rep), 1, "  the only one (Postfix announces DSN: A sends none)")
like(rep and rep[0].decode("latin-1"), "Reporting-MTA: dns; mx.pf.test", "  it is Postfix's")

s = smtplib.SMTP("127.0.0.5", PORT, timeout=30)
s.ehlo("client.test")
s.mail(CAROL, ["ENVID=PF1"])
s.rcpt(ALICE, ["NOTIFY=SUCCESS,FAILURE"])
s.rcpt("nosuchuser@a.test", ["NOTIFY=SUCCESS,FAILURE"])
s.data(b"From: <%s>\r\nSubject: postfix to a\r\nMessage-ID: <pa1@pf.test>\r\n\r\nHi Alice\r\n"
       % CAROL.encode())
s.quit()
ok(wait_mail(A, alice_home, b"Subject: postfix to a"), "Postfix to A: in Alice's Maildir")
rep = [d for d in wait_mail(A, carol_home, b"pa1@pf.test")
       if b"Successful Mail Delivery Report" in d]
ok(rep, "  A's success report reaches Carol through Postfix") or diag(A.log()[-2000:])
rep = [d for d in wait_mail(A, carol_home, b"nosuchuser@a.test")
       if b"Undelivered Mail Returned to Sender" in d]
ok(rep, "  and the unknown user at A is bounced by Postfix") or diag(pf.log()[-2000:])

for inst in (A, B):
    bad = problems(inst)
    ok(not bad, "no panic, fatal or crash on %s" % inst.etc) or diag(bad)
pf.stop()
dns.stop()
done()
