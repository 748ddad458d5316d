#!/usr/bin/env python3
"""t/96-dsn-delay.t - qmgr's "delayed" and "relayed" delivery status
notifications on real instances, with a real nsd for the zone test. and
scripted SMTP servers (t/lib/fakesmtp.py) on 127.0.0.3 (mx.delay.test:
451 to every RCPT but one, until it is replaced by one that takes
everything), 127.0.0.4 (mx.plain.test: no DSN in EHLO) and 127.0.0.5
(mx.dsn.test: DSN announced).

Instance A has delay_warning_time = 3s (1s backoff, 1s queue runs):
a message with recipients of NOTIFY default, NEVER and DELAY (and one the
server takes) gets exactly one "Delayed Mail (still being retried)"
report, for the default and DELAY recipients only, with Action: delayed,
the 451 status, the remote reply as Diagnostic-Code, Remote-MTA and
Will-Retry-Until, the header only; later rounds send no second one, and
"mailctl queue show" says "delay warning sent" for every recipient still
queued; messages whose recipients all say NOTIFY=NEVER or NOTIFY=FAILURE,
and mail from the null sender, get none; once the server recovers, every
message is delivered and no further report comes.
Instance B has the default delay_warning_time (0h): its deferred mail gets
no report.  NOTIFY=SUCCESS to the server without DSN and to a local user
in one message: one success report, "Action: relayed" (relayed to
non-DSN-aware mailer) and "Action: delivered"; NOTIFY=SUCCESS to the
server with DSN: NOTIFY is passed on and B sends no report of its own.
Skips without nsd or root."""
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, diag, done, skip_all  # noqa: E402
import nsd  # noqa: E402
from smtptest import prelude, problems, free_port_on, outcome, outcomes  # noqa: E402

work = prelude("posthorn-dsn-delay-")
import posthorn  # noqa: E402
from fakesmtp import FakeSMTP, stop_all  # noqa: E402
ADDRS = ["127.0.0.3", "127.0.0.4", "127.0.0.5"]
PORT = free_port_on(ADDRS)
NOTIFY_SUCCESS, NOTIFY_FAILURE, NOTIFY_DELAY, NOTIFY_NEVER = 1, 2, 4, 8

ZONE = "$ORIGIN test.\n$TTL 300\n" + nsd.SOA + """
ns IN A 127.0.0.1
delay IN MX 10 mx.delay.test.
mx.delay IN A 127.0.0.3
plain IN MX 10 mx.plain.test.
mx.plain IN A 127.0.0.4
dsn IN MX 10 mx.dsn.test.
mx.dsn IN A 127.0.0.5
"""
dns = nsd.Nsd([("test.", ZONE)])
GREYLIST = "451 4.7.1 Recipient address rejected: Greylisted, try again later"
flaky = FakeSMTP(work, "127.0.0.3", PORT, {"rcpt": {"fine@delay.test": "250 2.1.5 Ok",
                                                    "*": GREYLIST}})
plain = FakeSMTP(work, "127.0.0.4", PORT, {})
dsnsrv = FakeSMTP(work, "127.0.0.5", PORT, {
    "ehlo": ["PIPELINING", "8BITMIME", "DSN", "ENHANCEDSTATUSCODES"]})
ok(True, "nsd serves test. on port %d; SMTP servers on port %d" % (dns.port, PORT))

BASE = {
    "dns_stub_zones": "test=127.0.0.1@%d 127.in-addr.arpa=127.255.255.255" % dns.port,
    "dns_query_timeout": "3s", "dnssec_trust_anchor_file": "", "smtp_tcp_port": str(PORT),
    "minimal_backoff_time": "1s", "maximal_backoff_time": "2s", "queue_run_delay": "1s",
}
A = posthorn.Instance(main_conf=dict(BASE, delay_warning_time="3s"))
B = posthorn.Instance(main_conf=BASE)
for name, inst in (("A (delay_warning_time = 3s)", A), ("B (the default)", B)):
    r = inst.start()
    ok(r.returncode == 0, "instance %s starts" % name) or diag(r.stderr)
ua, home_a = A.add_user()
ub, home_b = B.add_user()
SA, SB = "%s@example.test" % ua, "%s@example.test" % ub


def submit(inst, sender, rcpts, subject):
    content = b"From: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@t96>\r\n\r\nthe body\r\n" % (
        sender.encode(), subject.encode(), subject.replace(" ", "-").encode())
    return inst.submit(content, sender, rcpts)


def reports(inst, home, subject, qid):
    """The reports in home's Maildir with this subject about message qid."""
    return [d.decode("latin-1") for d in inst.maildir(home).values()
            if b"\nSubject: " + subject.encode() + b"\n" in d
            and b"X-Posthorn-Queue-ID: " + qid.encode() in d]


def delayed(qid):
    return reports(A, home_a, "Delayed Mail (still being retried)", qid)


def deferrals(inst, qid, rcpt):
    return len([o for o in outcomes(inst, qid, rcpt) if o["status"] == "deferred"])


def rounds_after(inst, qid, rcpt, n, timeout=40):
    """Wait until rcpt of qid was deferred n more times than now."""
    have = deferrals(inst, qid, rcpt)
    return inst.wait_for(lambda: deferrals(inst, qid, rcpt) >= have + n, timeout=timeout)


# ------------------------------------------------------------ delay warnings (A)
t0 = time.time()
m1 = submit(A, SA, [("a1@delay.test", 0, ""), ("a2@delay.test", NOTIFY_NEVER, ""),
                    ("a3@delay.test", NOTIFY_DELAY | NOTIFY_FAILURE, "rfc822;A3@delay.test"),
                    ("fine@delay.test", 0, "")], "t96 mixed")
m2 = submit(A, SA, [("b1@delay.test", NOTIFY_NEVER, "")], "t96 never")
m3 = submit(A, SA, [("c1@delay.test", NOTIFY_FAILURE, "")], "t96 failure only")
m4 = submit(A, "", [("d1@delay.test", 0, "")], "t96 null sender")
o = outcome(A, m1, "a1@delay.test")
is_(o and (o["status"], o["dsn"]), ("deferred", "4.7.1"), "the 451 defers the recipients") \
    or diag(A.log()[-3000:])
o = outcome(A, m1, "fine@delay.test")
is_(o and o["status"], "sent", "  the one the server takes is delivered")

rep = A.wait_for(lambda: delayed(m1), timeout=40)
ok(rep, "after delay_warning_time the sender has a delayed-mail report") or diag(A.log()[-3000:])
ok(time.time() - t0 >= 3, "  not before 3s (%.1fs)" % (time.time() - t0))
like(A.log(), "%s: sender delay notification: " % m1, "  qmgr logs it, Postfix style")
r_ = rep[0] if rep else ""
like(r_, "Return-Path: <>\n", "  from the null sender")
like(r_, "From: Mail Delivery System <MAILER-DAEMON@", "  from MAILER-DAEMON")
like(r_, "THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE.", "  a warning only")
like(r_, "could not be delivered for more than 3 second(s).", "  says how long")
like(r_, "report-type=delivery-status", "  a multipart/report")
is_(r_.count("Action: delayed\n"), 2, "  Action: delayed for two recipients")
like(r_, "Final-Recipient: rfc822; a1@delay.test\nAction: delayed\nStatus: 4.7.1\n"
     "Remote-MTA: dns; mx.delay.test\nDiagnostic-Code: smtp; " + GREYLIST + "\n",
     "  the default NOTIFY: the 4.7.1, the remote MTA and its reply")
like(r_, "Original-Recipient: rfc822;A3@delay.test\nFinal-Recipient: rfc822; a3@delay.test\n"
     "Action: delayed\n", "  NOTIFY=DELAY,FAILURE: in it too, with its ORCPT")
ok("a2@delay.test" not in r_.split("Content-Type: text/rfc822-headers")[0],
   "  NOTIFY=NEVER: not in it")
ok("fine@delay.test" not in r_.split("Content-Type: text/rfc822-headers")[0],
   "  the delivered recipient: not in it")
is_(len(re.findall(r"Will-Retry-Until: \S", r_)), 2, "  Will-Retry-Until for each")
like(r_, "Content-Type: text/rfc822-headers\n", "  the original's header only")
ok("Subject: t96 mixed" in r_ and "the body" not in r_, "  its header, not its body")

ok(rounds_after(A, m1, "a1@delay.test", 2), "two more rounds defer the message again")
is_(len(delayed(m1)), 1, "  and bring no second report")
show = A.mailctl("queue", "show", m1).stdout
is_(show.count("delay warning sent"), 3,
    "mailctl queue show: the flag on every recipient still queued (a1, a2, a3)") or diag(show)
ok("recipient: fine@delay.test (delivered" in show and
   not re.search(r"fine@delay.test \(delivered[^)]*delay warning", show),
   "  not on the delivered one")

for qid, rc, what in ((m2, "b1@delay.test", "NOTIFY=NEVER"),
                      (m3, "c1@delay.test", "NOTIFY=FAILURE"),
                      (m4, "d1@delay.test", "the null sender")):
    ok(A.wait_for(lambda: deferrals(A, qid, rc) >= 3, timeout=40)
       and time.time() - t0 > 4, "%s: deferred again and again past delay_warning_time" % what)
    ok("%s: sender delay notification" % qid not in A.log(), "  no delay report")
ok(not [d for d in A.maildir(home_a).values() if b"t96-never@t96" in d
        or b"t96-failure-only@t96" in d or b"t96-null-sender@t96" in d],
   "  and nothing about them in the sender's Maildir")

# ------------------------------------------------------------ no delay warnings (B)
g = submit(B, SB, [("g1@delay.test", 0, "")], "t96 default off")
ok(B.wait_for(lambda: deferrals(B, g, "g1@delay.test") >= 3, timeout=40),
   "B: a message deferred again and again")
time.sleep(max(0, 4 - (time.time() - t0)))
ok(rounds_after(B, g, "g1@delay.test", 1), "  past 3s in the queue")
ok("sender delay notification" not in B.log(), "  delay_warning_time 0h: no delay report")

# ------------------------------------------------------------ the server recovers
flaky.stop()
flaky = FakeSMTP(work, "127.0.0.3", PORT, {})
for inst in (A, B):
    r = inst.mailctl("queue", "flush")
    ok(r.returncode == 0, "the server recovers; mailctl queue flush") or diag(r.stderr)
for inst, qid, rc in ((A, m1, "a1@delay.test"), (A, m1, "a2@delay.test"),
                      (A, m1, "a3@delay.test"), (A, m2, "b1@delay.test"),
                      (A, m3, "c1@delay.test"), (A, m4, "d1@delay.test"),
                      (B, g, "g1@delay.test")):
    ok(inst.wait_for(lambda: any(o["status"] == "sent" for o in outcomes(inst, qid, rc)),
                     timeout=40), "  %s is delivered" % rc)
ok(A.wait_for(lambda: "%s: removed" % m1 in A.log(), timeout=20), "  and the message leaves "
   "the queue")
ok(flaky.wait(lambda: [m for m in flaky.messages() if b"Subject: t96 mixed" in m["data"]]),
   "  the server has it")
is_(len(delayed(m1)), 1, "still exactly one delay report")
ok(not [d for d in A.maildir(home_a).values() if b"Undelivered Mail" in d],
   "  and no bounce")

# ------------------------------------------------------------ relayed (B)
r1 = submit(B, SB, [("h1@plain.test", NOTIFY_SUCCESS, ""), (SB, NOTIFY_SUCCESS, "")],
            "t96 relayed")
o = outcome(B, r1, "h1@plain.test")
is_(o and (o["status"], o["relay"]), ("sent", "mx.plain.test[127.0.0.4]:%d" % PORT),
    "NOTIFY=SUCCESS to a server without DSN: sent") or diag(B.log()[-3000:])
msgs = plain.wait(lambda: [m for m in plain.messages() if b"Subject: t96 relayed" in m["data"]])
ok(msgs and "NOTIFY" not in msgs[0]["rcpt_lines"][0], "  the server got no NOTIFY")
succ = B.wait_for(lambda: reports(B, home_b, "Successful Mail Delivery Report", r1), timeout=30)
is_(len(succ or []), 1, "  one success report for the message") or diag(B.log()[-3000:])
s_ = succ[0] if succ else ""
like(s_, "Final-Recipient: rfc822; h1@plain.test\nAction: relayed\nStatus: 2.0.0\n"
     "Remote-MTA: dns; mx.plain.test\nDiagnostic-Code: smtp; 250 ",
     "  Action: relayed for the remote recipient")
like(s_, "<h1@plain.test>: delivery via mx.plain.test[127.0.0.4]:%d: 250 " % PORT,
     "  the text names the server")
like(s_, "(relayed to non-DSN-aware mailer)", "  relayed to non-DSN-aware mailer")
like(s_, "Final-Recipient: rfc822; %s\nAction: delivered\n" % SB,
     "  Action: delivered for the local one, in the same report")

r2 = submit(B, SB, [("i1@dsn.test", NOTIFY_SUCCESS, "")], "t96 dsn aware")
o = outcome(B, r2, "i1@dsn.test")
is_(o and (o["status"], o["relay"]), ("sent", "mx.dsn.test[127.0.0.5]:%d" % PORT),
    "NOTIFY=SUCCESS to a server with DSN: sent")
msgs = dsnsrv.wait(lambda: [m for m in dsnsrv.messages()
                            if b"Subject: t96 dsn aware" in m["data"]])
like(msgs and msgs[0]["rcpt_lines"][0], "RCPT TO:<i1@dsn.test> NOTIFY=SUCCESS",
     "  the server got NOTIFY=SUCCESS")
ok(B.wait_for(lambda: "%s: removed" % r2 in B.log(), timeout=20), "  the message is done")
ok("%s: sender delivery status notification" % r2 not in B.log(),
   "  and B sent no success report of its own (the server reports)")
time.sleep(1)
ok(not reports(B, home_b, "Successful Mail Delivery Report", r2), "  none in the Maildir")

for inst in (A, B):
    bad = problems(inst)
    ok(not bad, "no panic, fatal or crash on %s" % inst.etc) or diag(bad)
dns.stop()
done()
