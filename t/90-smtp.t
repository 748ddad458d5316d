#!/usr/bin/env python3
"""t/90-smtp.t - the outbound SMTP client (smtp) on a real instance, with a
real authoritative DNS server (nsd, t/lib/nsd.py) for the zone test., and
scripted SMTP servers (t/lib/fakesmtp.py, processes of their own) on
127.0.0.2 - 127.0.0.9, all on one port that the instance's smtp_tcp_port
names.  Mail is handed to cleanup over its socket (as smtpd would) from a
local sender, whose Maildir receives the bounces.

Next hop: MX preference; fallback to the next MX when the first refuses
the connection or stalls at the greeting (smtp_helo_timeout); implicit MX;
an MX host with only IPv6 (::1); null MX (5.1.0, bounced); NXDOMAIN (5.4.4, bounced); a DNS server that
never answers (4.4.3, deferred); an MX that is ourselves, with the worse
one dropped too (5.4.6).
Results: a 4xx that succeeds after "mailctl queue flush"; a 5xx bounced to
the sender with the remote reply in the report (Diagnostic-Code: smtp);
mixed per-recipient results in one transaction (one delivered, one
bounced, one deferred) on a server without PIPELINING.
Protocol: connection reuse (two messages, one TCP connection, RSET between
them); a dead site suspended (qmgr's "delivery temporarily suspended");
DSN parameters (NOTIFY, ORCPT, RET, ENVID) only to a server with DSN;
SIZE declared, and a message over the server's SIZE bounced (5.3.4)
without MAIL; BDAT with CHUNKING, byte exact; dot-stuffing and CR LF line
ends whatever the stored line ends; 8-bit content as BODY=8BITMIME, and
converted to quoted-printable for a server without 8BITMIME; an SMTPUTF8
recipient bounced (5.6.7) by a server without SMTPUTF8 and passed with
SMTPUTF8 to one that has it.
Process: smtp runs as network_user in the empty chroot.
Skips without nsd or root."""
import email
import email.policy
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, diag, done, skip_all  # noqa: E402
import nsd  # noqa: E402
from smtptest import prelude, problems, free_port_on, outcome, outcomes, bounce_for  # noqa: E402

work = prelude("posthorn-smtp-")
import posthorn  # noqa: E402
from fakesmtp import FakeSMTP, stop_all  # noqa: E402

ADDRS = ["127.0.0.%d" % i for i in range(2, 10)] + ["::1"]
PORT = free_port_on(ADDRS)

SOA = nsd.SOA
ZONE = "$ORIGIN test.\n$TTL 300\n" + SOA + """
ns IN A 127.0.0.1
pref IN MX 20 b.pref.test.
pref IN MX 10 a.pref.test.
a.pref IN A 127.0.0.4
b.pref IN A 127.0.0.5
refused IN MX 10 down.refused.test.
refused IN MX 20 up.refused.test.
down.refused IN A 127.0.0.2
up.refused IN A 127.0.0.3
slow IN MX 10 stall.slow.test.
slow IN MX 20 up.slow.test.
stall.slow IN A 127.0.0.6
up.slow IN A 127.0.0.3
implicit IN A 127.0.0.3
nullmx IN MX 0 .
self IN MX 10 me.self.test.
self IN MX 20 other.self.test.
me.self IN A 127.0.0.1
other.self IN A 127.0.0.3
dsn IN MX 10 sink.test.
plain IN MX 10 sink.test.
reuse IN MX 10 sink.test.
utf8 IN MX 10 sink.test.
sink IN A 127.0.0.3
mixed IN MX 10 old.test.
old IN MX 10 old.test.
old IN A 127.0.0.7
chunk IN MX 10 chunky.test.
chunky IN A 127.0.0.5
retry IN MX 10 flaky.test.
flaky IN A 127.0.0.8
dead IN MX 10 nobody.test.
nobody IN A 127.0.0.9
v6 IN MX 10 six.test.
six IN AAAA ::1
"""

dns = nsd.Nsd([("test.", ZONE)])
never = nsd.DeadServer()
ok(True, "nsd serves test. on port %d; smtp servers listen on port %d" % (dns.port, PORT))

# The scripted servers.
sink = FakeSMTP(work, "127.0.0.3", PORT, {
    "ehlo": ["PIPELINING", "8BITMIME", "SIZE 10000000", "DSN", "SMTPUTF8",
             "ENHANCEDSTATUSCODES"]})
prefa = FakeSMTP(work, "127.0.0.4", PORT, {})
chunky = FakeSMTP(work, "127.0.0.5", PORT, {
    "ehlo": ["PIPELINING", "CHUNKING", "8BITMIME", "SIZE", "ENHANCEDSTATUSCODES"]})
staller = FakeSMTP(work, "127.0.0.6", PORT, {"greeting": "stall"})
old = FakeSMTP(work, "127.0.0.7", PORT, {
    "ehlo": ["SIZE 6000"],
    "rcpt": {"bob@mixed.test": "250 2.1.5 Ok",
             "carol@mixed.test": "550 5.1.1 <carol@mixed.test>: Recipient address rejected: "
                                 "User unknown in local recipient table",
             "dave@mixed.test": "450 4.2.0 <dave@mixed.test>: Recipient address rejected: "
                                "Greylisted, come back later"}})
six = FakeSMTP(work, "::1", PORT, {})
flaky = FakeSMTP(work, "127.0.0.8", PORT, {
    "conns": [{"rcpt": {"*": "451 4.7.1 Service unavailable, try again later"}}]})

inst = posthorn.Instance(main_conf={
    "dns_stub_zones": "test=127.0.0.1@%d tempfail.test=127.0.0.1@%d "
                      "127.in-addr.arpa=127.255.255.255" % (dns.port, never.port),
    "dns_query_timeout": "3s",
    "dnssec_trust_anchor_file": "",
    "smtp_tcp_port": str(PORT),
    "smtp_helo_timeout": "3s",
    "initial_destination_concurrency": "1",
    "smtp_destination_concurrency_limit": "1",
})
r = inst.start()
ok(r.returncode == 0, "the instance starts") or diag(r.stderr)
user, home = inst.add_user()
SENDER = "%s@example.test" % user
N = [0]


def send(rcpts, body=b"hello\r\n", headers=b"", sender=SENDER, **kw):
    N[0] += 1
    subject = "t90 message %d" % N[0]
    content = (b"From: <%s>\r\nSubject: %s\r\n" % (sender.encode(), subject.encode())
               + headers + b"\r\n" + body)
    return inst.submit(content, sender, rcpts, **kw), subject


def on(server, subject, timeout=30):
    return server.wait(lambda: [m for m in server.messages()
                                if ("Subject: %s\r\n" % subject).encode() in m["data"]],
                       timeout) or []


# ------------------------------------------------------------- next hop
qid, subj = send(["x@pref.test"])
o = outcome(inst, qid, "x@pref.test")
is_(o and (o["status"], o["relay"]), ("sent", "a.pref.test[127.0.0.4]:%d" % PORT),
    "MX preference: the lower preference gets the mail") or diag(inst.log()[-3000:])
ok(on(prefa, subj), "  the preferred server has it")
ok(not chunky.messages(), "  the worse MX got nothing")

qid, subj = send(["x@refused.test"])
o = outcome(inst, qid, "x@refused.test")
is_(o and (o["status"], o["relay"]), ("sent", "up.refused.test[127.0.0.3]:%d" % PORT),
    "the first MX refuses the connection: the second gets the mail")
like(inst.log(), "connect to down.refused.test[127.0.0.2]:%d: Connection refused" % PORT,
     "  the refused connection is logged")

qid, subj = send(["x@slow.test"])
o = outcome(inst, qid, "x@slow.test", timeout=60)
is_(o and (o["status"], o["relay"]), ("sent", "up.slow.test[127.0.0.3]:%d" % PORT),
    "the first MX stalls at the greeting: after smtp_helo_timeout, the second")
like(inst.log(), "conversation with stall.slow.test[127.0.0.6] timed out while receiving the "
     "initial server greeting", "  the timeout is logged")

qid, subj = send(["x@implicit.test"])
o = outcome(inst, qid, "x@implicit.test")
is_(o and (o["status"], o["relay"]), ("sent", "implicit.test[127.0.0.3]:%d" % PORT),
    "no MX record: the domain's own address (implicit MX)")

qid, subj = send(["x@v6.test"])
o = outcome(inst, qid, "x@v6.test")
is_(o and (o["status"], o["relay"]), ("sent", "six.test[::1]:%d" % PORT),
    "an MX host with only an AAAA record: over IPv6")
ok(on(six, subj), "  the server on ::1 has it")

qid, subj = send(["x@nullmx.test"])
o = outcome(inst, qid, "x@nullmx.test")
is_(o and (o["status"], o["dsn"], o["relay"]), ("bounced", "5.1.0", "none"), "null MX: bounced, 5.1.0")
like(o and o["text"], "Domain nullmx.test does not accept mail (nullMX)", "  with Postfix's text")
ok(bounce_for(inst, home, b"does not accept mail (nullMX)"), "  the sender has the report")

qid, subj = send(["x@nothere.test"])
o = outcome(inst, qid, "x@nothere.test")
is_(o and (o["status"], o["dsn"]), ("bounced", "5.4.4"), "NXDOMAIN: bounced, 5.4.4")
like(o and o["text"], "Host or domain name not found. Name service error for name=nothere.test "
     "type=MX: Host not found", "  with Postfix's text")

qid, subj = send(["x@host.tempfail.test"])
o = outcome(inst, qid, "x@host.tempfail.test", timeout=60)
is_(o and (o["status"], o["dsn"]), ("deferred", "4.4.3"),
    "a DNS server that never answers: deferred, 4.4.3")
like(o and o["text"], "try again", "  as a temporary failure")

qid, subj = send(["x@self.test"])
o = outcome(inst, qid, "x@self.test")
is_(o and (o["status"], o["dsn"]), ("bounced", "5.4.6"),
    "the best MX is ourselves (127.0.0.1): the worse one is dropped too, 5.4.6")
like(o and o["text"], "mail for self.test loops back to myself", "  with Postfix's text")

# ------------------------------------------------------------- results
qid, subj = send(["x@retry.test"])
o = outcome(inst, qid, "x@retry.test")
is_(o and (o["status"], o["dsn"]), ("deferred", "4.7.1"), "a 4xx to RCPT: deferred")
like(o and o["text"], "host flaky.test[127.0.0.8] said: 451 4.7.1 Service unavailable, try "
     "again later (in reply to RCPT TO command)", "  with the server's reply, Postfix style")
r = inst.mailctl("queue", "flush")
ok(r.returncode == 0, "mailctl queue flush") or diag(r.stderr)
o = outcome(inst, qid, "x@retry.test", n=2)
is_(o and o["status"], "sent", "  the retry succeeds")
ok(on(flaky, subj), "  the server has it")

qid, subj = send(["bob@mixed.test", "carol@mixed.test", "dave@mixed.test"])
ob = outcome(inst, qid, "bob@mixed.test")
oc = outcome(inst, qid, "carol@mixed.test")
od = outcome(inst, qid, "dave@mixed.test")
is_([o and (o["status"], o["dsn"]) for o in (ob, oc, od)],
    [("sent", "2.0.0"), ("bounced", "5.1.1"), ("deferred", "4.2.0")],
    "mixed results in one transaction: sent, bounced, deferred")
msgs = on(old, subj)
is_(len(msgs), 1, "  one message on the server")
is_(msgs and msgs[0]["rcpts"], ["bob@mixed.test"], "  for the accepted recipient")
is_(old.commands(msgs[0]["conn"])[:5] if msgs else None,
    ["EHLO mail.example.test", "MAIL FROM:<%s> SIZE=%d" % (SENDER, len(msgs[0]["data"]) if msgs else 0),
     "RCPT TO:<bob@mixed.test>", "RCPT TO:<carol@mixed.test>", "RCPT TO:<dave@mixed.test>"],
    "  no PIPELINING, no DSN: plain commands one at a time") if msgs else ok(False, "  commands")
rep = bounce_for(inst, home, b"carol@mixed.test")
ok(rep, "the 5xx is reported to the sender")
if rep:
    like(rep.decode("latin-1"), "Diagnostic-Code: smtp; 550 5.1.1 <carol@mixed.test>: Recipient "
         "address rejected", "  with the remote reply as the Diagnostic-Code")
    like(rep.decode("latin-1"), "old.test", "  and the remote server named")
    ok(b"dave@mixed.test" not in rep and b"bob@mixed.test" not in rep.split(b"\r\n\r\n", 1)[0],
       "  the others are not in it")

# ------------------------------------------------------------- protocol
before = len(sink.events("connect"))
q1, s1 = send(["one@reuse.test"])
q2, s2 = send(["two@reuse.test"])
o1, o2 = outcome(inst, q1, "one@reuse.test"), outcome(inst, q2, "two@reuse.test")
is_((o1 and o1["status"], o2 and o2["status"]), ("sent", "sent"), "two messages to one next hop")
m1, m2 = on(sink, s1), on(sink, s2)
ok(m1 and m2 and m1[0]["conn"] == m2[0]["conn"], "  over one connection (reused)")
if m1 and m2:
    cmds = sink.commands(m1[0]["conn"])
    ok("RSET" in cmds, "  with RSET before the second transaction")
is_(len(sink.events("connect")) - before, 1, "  the server saw one connection for both")

qid, subj = send(["x@dead.test"])
o = outcome(inst, qid, "x@dead.test")
is_(o and (o["status"], o["dsn"]), ("deferred", "4.4.1"), "a site that refuses: deferred, 4.4.1")
like(o and o["text"], "connect to nobody.test[127.0.0.9]:%d: Connection refused" % PORT,
     "  connect to ...: Connection refused")
ok(inst.wait_for(lambda: "dead.test: delivery temporarily suspended" in inst.log()),
   "  qmgr takes the site for dead")
qid, subj = send(["y@dead.test"])
o = outcome(inst, qid, "y@dead.test")
like(o and o["text"], "delivery temporarily suspended: connect to nobody.test[127.0.0.9]",
     "  the next message for it waits without a try")

qid, subj = send([("d@dsn.test", 0x3, "rfc822;Orig+X@Example.test")], envid="env 1", ret=ord("H"))
msgs = on(sink, subj)
ok(msgs, "a message with DSN parameters to a server with DSN")
if msgs:
    like(msgs[0]["mail_line"], " RET=HDRS ENVID=env+201", "  MAIL has RET and ENVID (xtext)")
    like(msgs[0]["rcpt_lines"][0], "RCPT TO:<d@dsn.test> NOTIFY=SUCCESS,FAILURE "
         "ORCPT=rfc822;Orig+2BX@Example.test", "  RCPT has NOTIFY and ORCPT (xtext)")
qid, subj = send(["e@dsn.test"])
msgs = on(sink, subj)
ok(msgs and msgs[0]["rcpt_lines"][0] == "RCPT TO:<e@dsn.test> ORCPT=rfc822;e@dsn.test",
   "  without them: ORCPT is the recipient itself, as Postfix") or diag(msgs)
ok(msgs and " RET=" not in msgs[0]["mail_line"] and "ENVID" not in msgs[0]["mail_line"],
   "  and no RET or ENVID")
qid, subj = send([("f@mixed.test", 0x3, "rfc822;f@mixed.test")], envid="e2", ret=ord("F"))
o = outcome(inst, qid, "f@mixed.test")
msgs = on(old, subj)
ok(msgs and "RET=" not in msgs[0]["mail_line"] and "NOTIFY" not in msgs[0]["rcpt_lines"][0]
   and "ORCPT" not in msgs[0]["rcpt_lines"][0], "  a server without DSN gets none of them")

big = b"".join(b"line %05d of a message too big for a SIZE of 6000\r\n" % i for i in range(200))
before = len(old.events("cmd"))
qid, subj = send(["big@old.test"], body=big)
o = outcome(inst, qid, "big@old.test")
is_(o and (o["status"], o["dsn"]), ("bounced", "5.3.4"), "a message over the server's SIZE: 5.3.4")
like(o and o["text"], "exceeds size limit 6000 of server old.test[127.0.0.7]", "  Postfix's text")
ok(not any(c.startswith("MAIL") for c in old.commands()[before:]), "  without a MAIL command")

body = (b".leading dot\r\n..two dots\r\nbare LF line\nCR LF line\r\n.\r\nlast line without end")
qid, subj = send(["p@plain.test"], body=body)
msgs = on(sink, subj)
ok(msgs, "a message with dots and mixed line ends")
if msgs:
    want = (b".leading dot\r\n..two dots\r\nbare LF line\r\nCR LF line\r\n.\r\n"
            b"last line without end\r\n")
    ok(msgs[0]["data"].endswith(want), "  arrives dot-stuffed and unstuffed again, CR LF "
       "everywhere, with a final line end") or diag(msgs[0]["data"][-200:])

payload = b"".join(b"chunk line %06d .with a dot\r\n" % i for i in range(6000))
qid, subj = send(["c@chunk.test"], body=payload + b".final\r\n")
msgs = on(chunky, subj)
ok(msgs and msgs[0]["bdat"], "a server with CHUNKING gets BDAT")
ok(msgs and msgs[0]["data"].endswith(payload + b".final\r\n"),
   "  byte exact (no dot-stuffing) over several chunks")
ok(chunky.wait(lambda: any(c.startswith("BDAT") and c.endswith(" LAST")
                           for c in chunky.commands())), "  the last one BDAT n LAST")
ok(len([c for c in chunky.commands() if c.startswith("BDAT")]) >= 3, "  in chunks")

eight = "Grüße aus Köln – ça va?\r\n".encode() * 3
qid, subj = send(["u@plain.test"], body=eight,
                 headers=b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                         b"Content-Transfer-Encoding: 8bit\r\n")
msgs = on(sink, subj)
ok(msgs and " BODY=8BITMIME" in msgs[0]["mail_line"], "8-bit content: BODY=8BITMIME to a server "
   "with 8BITMIME")
ok(msgs and msgs[0]["data"].endswith(eight), "  unchanged")

qid, subj = send(["u@old.test"], body=eight,
                 headers=b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                         b"Content-Transfer-Encoding: 8bit\r\n")
msgs = on(old, subj)
ok(msgs, "8-bit content to a server without 8BITMIME")
if msgs:
    data = msgs[0]["data"]
    ok(all(b < 0x80 for b in data), "  arrives 7-bit")
    ok("BODY=" not in msgs[0]["mail_line"], "  without BODY=")
    m = email.message_from_bytes(data, policy=email.policy.default)
    is_(m["Content-Transfer-Encoding"], "quoted-printable", "  as quoted-printable")
    is_(m.get_payload(decode=True), eight, "  which decodes to the original")
    is_(len(m.get_all("Content-Transfer-Encoding")), 1, "  with one Content-Transfer-Encoding")

multi = (b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"BND\"\r\n",
         b"preamble\r\n--BND\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nplain ascii = "
         b"text\r\n--BND\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
         b"Content-Transfer-Encoding: 8bit\r\n\r\nK\xf6ln\r\n--BND\r\nContent-Type: "
         b"application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n"
         b"--BND--\r\nepilogue\r\n")
qid, subj = send(["mp@old.test"], body=multi[1], headers=multi[0])
msgs = on(old, subj)
ok(msgs, "a multipart message with one 8-bit part")
if msgs:
    data = msgs[0]["data"]
    ok(all(b < 0x80 for b in data), "  arrives 7-bit")
    m = email.message_from_bytes(data, policy=email.policy.default)
    parts = list(m.iter_parts())
    is_(len(parts), 3, "  with its three parts")
    if len(parts) == 3:
        ok(parts[0]["Content-Transfer-Encoding"] is None
           and parts[0].get_payload(decode=True) == b"plain ascii = text",
           "  the 7-bit part as it was")
        is_((parts[1]["Content-Transfer-Encoding"], parts[1].get_payload(decode=True)),
            ("quoted-printable", b"K\xf6ln"), "  the 8-bit part in quoted-printable")
        is_(parts[2].get_payload(decode=True), b"\x00\x01\x02", "  the base64 part as it was")

qid, subj = send(["\u00fcber@old.test"])
o = outcome(inst, qid, "\u00fcber@old.test")
is_(o and (o["status"], o["dsn"]), ("bounced", "5.6.7"),
    "an SMTPUTF8 recipient, a server without SMTPUTF8: bounced, 5.6.7")
like(o and o["text"], "SMTPUTF8 is required, but was not offered by host old.test[127.0.0.7]",
     "  with Postfix's text")
qid, subj = send(["\u00fcber@utf8.test"])
msgs = on(sink, subj)
ok(msgs and msgs[0]["mail_line"].endswith(" SMTPUTF8"), "  a server with SMTPUTF8 gets it, "
   "with the SMTPUTF8 parameter") or diag(msgs and msgs[0]["mail_line"])

# ------------------------------------------------------------- process
pids = inst.service_pids("smtp")
ok(pids, "smtp processes run")
for pid in pids[:1]:
    st = posthorn.proc_status(pid)
    uid = int(st["Uid"][0])
    import pwd
    is_(pwd.getpwuid(uid).pw_name, "posthorn-net", "  as network_user")
    is_(posthorn.proc_root(pid), os.path.join(inst.spool, "empty"), "  chrooted into empty/")
bad = problems(inst)
ok(not bad, "no panic, fatal or crash in the log") or diag(bad)

inst.cleanup()
stop_all()
dns.stop()
never.close()
done()
