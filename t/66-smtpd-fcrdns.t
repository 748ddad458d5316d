#!/usr/bin/env python3
"""t/66-smtpd-fcrdns.t - smtpd learns the client's name by reverse DNS with
forward confirmation, through lookupd (smtpd itself does no DNS), against
a real authoritative server (nsd, t/lib/nsd.py) serving 127.in-addr.arpa
and test., and a real instance whose dns_stub_zones point there.

Clients connect from 127.0.0.x (loopback accepts any source address):
- a PTR whose name resolves back: "connect from good.test[127.0.0.5]",
  "client=", "disconnect from" and "Received: from HELO (good.test
  [127.0.0.5])" in the delivered message;
- two PTR names of which only the second resolves back: that one;
- a name whose only record is an IPv4-mapped AAAA: confirmed;
- a PTR whose name resolves elsewhere, or not at all: unknown[addr], with
  Postfix's warning "hostname X does not resolve to address A";
- no PTR: unknown, no warning;
- a PTR with garbage in it (parentheses; CR LF and a blank that would
  forge a header) and a numeric one: unknown, logged as malformed, and
  nothing of it in the Received: header;
- a reverse zone whose server never answers: unknown within lookupd's 4 s
  deadline, and the session works; a forward zone that never answers:
  the same, with a warning;
- lookupd stopped (SIGSTOP): unknown after smtpd's own 5 s, and the next
  session has its name again; lookupd killed and restarted: smtpd's kept
  connection is replaced and the name found, without a warning;
- lookupd's cache: a client seen before gets the same name or warning
  without DNS; never longer than the records' TTL; temporary failures
  are asked again;
- a resolver lookupd cannot set up (a bad trust anchor file): a warning,
  unknown names with the reason, recipients still checked.
Then lookupd itself, over its socket: many lookups in flight while other
clients and requests are served at once, the per-client cap, a client
that leaves with lookups pending (cancelled, lookupd unharmed past the
deadline), a malformed request.
Skips when nsd is missing."""
import os
import signal
import smtplib
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, diag, done, skip_all  # noqa: E402
import nsd  # noqa: E402

if nsd.missing():
    skip_all("needs %s (Debian: nsd)" % ", ".join(nsd.missing()))
if os.geteuid() != 0:
    skip_all("master must run as root")

import ipcframe  # noqa: E402
import posthorn  # noqa: E402

LOOKUP_RCPT, LOOKUP_REPLY, LOOKUP_CLIENT_NAME, LOOKUP_NAME_REPLY = 0x500, 0x501, 0x503, 0x504
OK_, NOTFOUND, TEMPFAIL = 0, 1, 2
DEADLINE = 4.0          # LOOKUP_NAME_DEADLINE_MS
CLIENT_WAIT = 5.0       # LOOKUP_NAME_TIMEOUT_MS

SOA = nsd.SOA
FORWARD = "$ORIGIN test.\n$TTL 300\n" + SOA + r"""
ns IN A 127.0.0.1
good IN A 127.0.0.5
good IN AAAA 2001:db8::5
liar IN A 127.0.0.66
nomatch IN A 127.0.0.99
second IN A 127.0.0.11
mapped IN AAAA ::ffff:127.0.0.12
bad\(name\) IN A 127.0.0.8
evil\013\010X-Evil:\032yes IN A 127.0.0.10
brief 3 IN A 127.0.0.20
fresh IN A 127.0.0.24
"""
REVERSE = "$ORIGIN 127.in-addr.arpa.\n$TTL 300\n" + SOA + r"""
5.0.0 IN PTR good.test.
6.0.0 IN PTR liar.test.
8.0.0 IN PTR bad\(name\).test.
10.0.0 IN PTR evil\013\010X-Evil:\032yes.test.
11.0.0 IN PTR nomatch.test.
11.0.0 IN PTR second.test.
12.0.0 IN PTR mapped.test.
13.0.0 IN PTR nxname.test.
14.0.0 IN PTR slow.dead.test.
16.0.0 IN PTR 1.2.3.4.
20.0.0 3 IN PTR brief.test.
24.0.0 IN PTR fresh.test.
"""

server = nsd.Nsd([("test.", FORWARD), ("127.in-addr.arpa.", REVERSE)])
dead = nsd.DeadServer()
# Its own silent server for the direct questions to lookupd below: after
# enough timeouts libunbound stops waiting for a server it has marked as
# down and fails at once, which those questions must not meet.
dead2 = nsd.DeadServer()
ok(True, "nsd serves 127.in-addr.arpa and test. on port %d" % server.port)

stubs = " ".join([
    "test.=127.0.0.1@%d" % server.port,
    "127.in-addr.arpa=127.0.0.1@%d" % server.port,
    "9.0.0.127.in-addr.arpa=127.0.0.1@%d" % dead.port,   # never answers
    "dead.test=127.0.0.1@%d" % dead.port,
    "21.0.0.127.in-addr.arpa=127.255.255.255",           # fails at once
    "23.0.0.127.in-addr.arpa=127.0.0.1@%d" % dead2.port, # never answers
])
inst = posthorn.Instance(main_conf={
    "dns_stub_zones": stubs,
    "dnssec_trust_anchor_file": "",
    "mynetworks": "127.0.0.1/32",
})
inst.edit_service("lookupd", "-v")     # logs the cancelled lookups and the cache
# One smtpd process: a client's second session meets the answer the first
# one's process kept (sessions here are one at a time).
inst.edit_service("smtpd", maxproc=1)
r = inst.start()
is_(r.returncode, 0, "instance starts") or diag(r.stderr)
user, home = inst.add_user()
rcpt = "%s@mail.example.test" % user
port = inst.port(25)


def log_since(mark):
    return inst.log()[mark:]


def session(src, subject=None):
    """Connect from src, time the greeting, send one message (if subject),
    QUIT.  Returns (seconds to the greeting, greeting code)."""
    t0 = time.time()
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=30,
                     source_address=(src, 0))
    took = time.time() - t0
    code = 220
    if subject:
        s.sendmail("someone@example.org", [rcpt],
                   ("Subject: %s\r\n\r\nbody\r\n" % subject).encode())
    s.quit()
    return took, code


def received_of(subject):
    m = inst.wait_copies(home, subject)
    if not m:
        return ""
    head = m[0].split(b"\n\n", 1)[0].decode(errors="replace")
    for block in head.split("\nReceived: ")[1:2]:
        return "Received: " + block.split("\n\t")[0]
    return ""


def wait_log(text, mark=0, timeout=10):
    return inst.wait_for(lambda: text in log_since(mark), timeout=timeout)


# ------------------------------------------------------------ confirmed names
for src, name, what in (("127.0.0.5", "good.test", "a PTR that resolves back"),
                        ("127.0.0.11", "second.test",
                         "two PTR names, the second resolves back"),
                        ("127.0.0.12", "mapped.test", "an IPv4-mapped AAAA record")):
    mark = len(inst.log())
    took, _ = session(src, "fcrdns %s" % src)
    ok(took < 3, "%s: greeted at once (%.2fs)" % (what, took))
    ok(wait_log("disconnect from %s[%s]" % (name, src), mark),
       "%s: disconnect from %s[%s]" % (what, name, src))
    log = log_since(mark)
    like(log, "connect from %s[%s]" % (name, src), "  connect from %s[%s]" % (name, src))
    like(log, ": client=%s[%s]" % (name, src), "  ID: client=%s[%s]" % (name, src))
    ok("does not resolve" not in log and "malformed" not in log, "  no warning")
    like(received_of("fcrdns %s" % src),
         "Received: from client.example (%s [%s])" % (name, src),
         "  Received: from client.example (%s [%s])" % (name, src))

# ------------------------------------------------------------ unknown
for src, warning, what in (
        ("127.0.0.6", "warning: hostname liar.test does not resolve to address 127.0.0.6",
         "a PTR name that resolves elsewhere"),
        ("127.0.0.13", "warning: hostname nxname.test does not resolve to address 127.0.0.13: "
         "host not found", "a PTR name that does not exist"),
        ("127.0.0.7", None, "no PTR record"),
        ("127.0.0.8", "warning: malformed host name in the PTR record of 127.0.0.8: "
         "bad(name).test", "a PTR name with parentheses"),
        ("127.0.0.10", "warning: malformed host name in the PTR record of 127.0.0.10: evil",
         "a PTR name with CR LF and a blank"),
        ("127.0.0.16", "warning: malformed host name in the PTR record of 127.0.0.16: 1.2.3.4",
         "a numeric PTR name")):
    mark = len(inst.log())
    took, _ = session(src, "unknown %s" % src)
    ok(took < 3, "%s: greeted at once (%.2fs)" % (what, took))
    ok(wait_log("disconnect from unknown[%s]" % src, mark),
       "%s: disconnect from unknown[%s]" % (what, src))
    log = log_since(mark)
    like(log, "connect from unknown[%s]" % src, "  connect from unknown[%s]" % src)
    like(log, ": client=unknown[%s]" % src, "  ID: client=unknown[%s]" % src)
    if warning:
        like(log, warning, "  " + warning)
    else:
        ok("does not resolve" not in log and "malformed" not in log, "  no warning")
    rec = received_of("unknown %s" % src)
    like(rec, "Received: from client.example (unknown [%s])" % src,
         "  Received: from client.example (unknown [%s])" % src)
    ok("X-Evil" not in rec and "evil" not in rec, "  nothing of the PTR name in the header")

m = inst.wait_copies(home, "unknown 127.0.0.10")
ok(m and b"\nX-Evil:" not in m[0] and b"\r\nX-Evil" not in m[0],
   "the garbage PTR forged no header line")

# ------------------------------------------------------------ DNS that never answers
for src, warning, what in (("127.0.0.9", None, "a reverse zone whose server never answers"),
                           ("127.0.0.14", "warning: hostname slow.dead.test does not resolve "
                            "to address 127.0.0.14: temporary failure (timed out)",
                            "a forward zone whose server never answers")):
    mark = len(inst.log())
    took, _ = session(src, "slow %s" % src)
    ok(DEADLINE - 0.5 < took < CLIENT_WAIT + 1.5,
       "%s: greeted after lookupd's deadline (%.2fs)" % (what, took))
    ok(wait_log("disconnect from unknown[%s]" % src, mark),
       "  the session works, unknown[%s]" % src)
    like(received_of("slow %s" % src), "(unknown [%s])" % src, "  and its message arrives")
    log = log_since(mark)
    if warning:
        like(log, warning, "  " + warning)
    ok("cannot look up the name" not in log, "  lookupd answered in time (no client timeout)")

# ------------------------------------------------------------ the cache
# lookupd keeps a settled answer for the smallest TTL it rests on (at most
# a minute) and tells smtpd how long it may reuse it: a client seen before
# gets the same name, or the same warning, from smtpd itself (lookupd is not
# asked); a temporary failure is asked again.  lookupd's own cache is
# checked with direct questions below.
for src, name, warning in (
        ("127.0.0.5", "good.test", None),
        ("127.0.0.6", "unknown",
         "warning: hostname liar.test does not resolve to address 127.0.0.6")):
    mark = len(inst.log())
    session(src)
    ok(wait_log("disconnect from %s[%s]" % (name, src), mark),
       "%s again: %s[%s]" % (src, name, src))
    log = log_since(mark)
    ok("clientname: %s" % src not in log and "client name of %s" % src not in log,
       "  from smtpd's own memory: lookupd was not asked") or diag(log)
    if warning:
        like(log, warning, "  with the same warning")


def cache_sessions(src, answer, sleeps):
    """A session from src after each pause in sleeps: for each, whether
    lookupd logged the answer and whether it came from the cache."""
    seen = []
    for pause in sleeps:
        time.sleep(pause)
        mark = len(inst.log())
        session(src)
        wait_log("disconnect from %s[%s]" % ("unknown" if "unknown" in answer else answer, src),
                 mark)
        log = log_since(mark)
        seen.append(("client name of %s: %s" % (src, answer) in log,
                     "%s: %s, from the cache" % (src, answer.split(" ")[0]) in log))
    return seen


is_(cache_sessions("127.0.0.21", "unknown (temporary failure)", [0, 0]),
    [(True, False), (True, False)],
    "a temporary failure (a reverse zone that fails at once) is not kept: asked again")
is_(cache_sessions("127.0.0.20", "brief.test", [0, 0, 3.5]),
    [(True, False), (False, False), (True, False)],
    "records with a TTL of 3 s: asked, then kept (by smtpd: lookupd not asked), "
    "then asked again after 3.5 s")

# ------------------------------------------------------------ lookupd stopped
pids = inst.service_pids("lookupd")
is_(len(pids), 1, "one lookupd process")
lookupd_pid = pids[0] if pids else None
mark = len(inst.log())
os.kill(lookupd_pid, signal.SIGSTOP)
try:
    took, _ = session("127.0.0.24")
finally:
    os.kill(lookupd_pid, signal.SIGCONT)
ok(CLIENT_WAIT - 0.5 < took < CLIENT_WAIT + 3,
   "lookupd stopped: smtpd greets after its own timeout (%.2fs)" % took)
ok(wait_log("disconnect from unknown[127.0.0.24]", mark), "  as unknown[127.0.0.24]")
like(log_since(mark), "warning: cannot look up the name of client 127.0.0.24: lookupd: ",
     "  with a warning")
mark = len(inst.log())
took, _ = session("127.0.0.24", "after stop")
ok(took < 3 and wait_log("connect from fresh.test[127.0.0.24]", mark),
   "lookupd continued: the next session has its name (%.2fs): a failure was not kept" % took)
like(received_of("after stop"), "(fresh.test [127.0.0.24])", "  in Received: too")

# ------------------------------------------------------------ lookupd directly
private = os.path.join(inst.spool, "private", "lookupd")
SLOW = "127.0.0.23"     # its reverse zone's server never answers


def ask(c, reqid, addr):
    c.send(LOOKUP_CLIENT_NAME, reqid, [addr])


def replies(c, n, timeout):
    out, end = {}, time.time() + timeout
    while len(out) < n and time.time() < end:
        try:
            f = c.recv(timeout=max(0.05, end - time.time()))
        except socket.timeout:
            break
        if f is None:
            break
        out[f.reqid] = f
    return out


a = ipcframe.connect(private, "lookup", 1)
b = ipcframe.connect(private, "lookup", 1)
t0 = time.time()
for i in range(1, 9):
    ask(a, i, SLOW)
ask(a, 9, "127.0.0.5")
got = replies(a, 1, 2)
ok(9 in got and got[9].type == LOOKUP_NAME_REPLY and got[9].fields[0] == TEMPFAIL
   and "too many lookups in flight (limit 8)" in got[9].fields[2],
   "a ninth lookup in flight from one client is refused at once: %r"
   % (got.get(9) and got[9].fields,))
a.send(LOOKUP_RCPT, 10, [rcpt])
got = replies(a, 1, 2)
ok(10 in got and got[10].type == LOOKUP_REPLY and got[10].fields[0] == OK_,
   "a recipient question on the same connection is answered while 8 lookups wait")
others = [ipcframe.connect(private, "lookup", 1) for _ in range(4)]
for o in others:
    for i in range(1, 5):
        ask(o, i, SLOW if i % 2 else "127.0.0.14")
t1 = time.time()
ask(b, 1, "127.0.0.5")
got = replies(b, 1, 2)
ok(1 in got and got[1].fields[:2] == [OK_, "good.test"] and time.time() - t1 < 1,
   "with 24 slow lookups of 5 clients in flight, another client's is answered at once: %r"
   % (got.get(1) and got[1].fields,))
ask(b, 2, "::ffff:127.0.0.11")
got = replies(b, 1, 2)
ok(2 in got and got[2].fields[:2] == [OK_, "second.test"],
   "an IPv4-mapped client address is looked up as IPv4")
got = replies(a, 8, DEADLINE + 3)
ok(sorted(got) == list(range(1, 9))
   and all(f.fields == [TEMPFAIL, "", "", 0] for f in got.values()),
   "the 8 slow lookups are answered TEMPFAIL at the deadline (%.2fs)" % (time.time() - t0))
a.close()
for n, o in enumerate(others):
    got = replies(o, 4, 2)
    ok(sorted(got) == [1, 2, 3, 4] and all(f.fields[0] == TEMPFAIL for f in got.values())
       and got[2].fields[2] == "hostname slow.dead.test does not resolve to address "
       "127.0.0.14: temporary failure (timed out)",
       "  and the other clients' too (client %d)" % (n + 1))
    o.close()

# A client that leaves while its lookups are pending.
c = ipcframe.connect(private, "lookup", 1)
for i in range(1, 6):
    ask(c, i, SLOW)
ask(c, 6, "127.0.0.14")
time.sleep(0.3)
c.close()
ok(wait_log("left with 6 client-name lookups in flight; cancelled"),
   "a client that leaves: its 6 lookups are cancelled")
time.sleep(DEADLINE + 1)
ask(b, 3, "127.0.0.5")
got = replies(b, 1, 2)
ok(3 in got and got[3].fields[:2] == [OK_, "good.test"], "lookupd still answers past the deadline")
is_(inst.service_pids("lookupd"), [lookupd_pid], "  the same lookupd process")

# A malformed request: the client is dropped, the others are not.
c = ipcframe.connect(private, "lookup", 1)
ask(c, 1, "not-an-address")
ok(c.recv(timeout=5) is None, "a client-name request for a non-address drops that client")
c.close()
like(inst.log(), "malformed lookup-client-name from client (not an IP address); dropping it",
     "  logged")
ask(b, 4, "127.0.0.6")
got = replies(b, 1, 2)
ok(4 in got and got[4].fields[:3] == [NOTFOUND, "", "hostname liar.test does not resolve to "
                                      "address 127.0.0.6"], "  and the others carry on")
ok(4 in got and 0 < got[4].fields[3] <= 60000,
   "  from lookupd's cache, reusable for what is left of it: %r ms"
   % (got.get(4) and got[4].fields[3],))
like(log_since(0), "clientname: 127.0.0.6: unknown, from the cache", "  (logged)")
b.close()

log = inst.log()
ok("panic" not in log and "fatal" not in log, "no panic or fatal error logged")
is_(inst.service_pids("lookupd"), [lookupd_pid], "lookupd never restarted")

# ------------------------------------------------------------ lookupd replaced
# smtpd keeps its lookupd connection between sessions; when lookupd has
# gone since, the kept connection fails at once and smtpd asks again on a
# new one, without a warning.
os.kill(lookupd_pid, signal.SIGKILL)
inst.wait_for(lambda: lookupd_pid not in inst.service_pids("lookupd"), timeout=5)
mark = len(inst.log())
took, _ = session("127.0.0.5", "after kill")
ok(wait_log("connect from good.test[127.0.0.5]", mark),
   "lookupd killed and restarted: the next session still has its name (%.2fs)" % took)
ok("cannot look up the name" not in log_since(mark) and "lost the connection" not in log_since(mark),
   "  without a warning: the name was kept, and the recipient asked again on a new "
   "connection") or diag(log_since(mark))
like(received_of("after kill"), "(good.test [127.0.0.5])", "  in Received: too")
inst.stop()

# ------------------------------------------------------------ no usable resolver
# A trust anchor file that is not one: lookupd warns at start, answers
# every name question TEMPFAIL with the reason, and still checks recipients.
bad = posthorn.Instance(main_conf={"dns_stub_zones": stubs, "mynetworks": "127.0.0.1/32"})
anchor = os.path.join(bad.etc, "bad-anchor.key")
with open(anchor, "w") as f:
    f.write("test. IN A 192.0.2.1\n")
bad.set_main({"dnssec_trust_anchor_file": anchor})
r = bad.start()
is_(r.returncode, 0, "an instance with a bad trust anchor file starts") or diag(r.stderr)
buser, bhome = bad.add_user()
s = smtplib.SMTP("127.0.0.1", bad.port(25), local_hostname="client.example", timeout=30,
                 source_address=("127.0.0.5", 0))
code, _ = s.rcpt("<%s@mail.example.test>" % buser) if s.mail("<someone@example.org>")[0] == 250 \
    else (0, b"")
s.quit()
is_(code, 250, "  recipients are still checked")
ok(bad.wait_for(lambda: "disconnect from unknown[127.0.0.5]" in bad.log()),
   "  the client is unknown")
blog = bad.log()
like(blog, "warning: lookupd: client names are not looked up: DNS is not usable: ",
     "  lookupd warned at start")
like(blog, "warning: cannot look up the name of 127.0.0.5: DNS is not usable: ",
     "  smtpd logs the reason")
bad.stop()
server.stop()
dead.close()
done()
