#!/usr/bin/env python3
"""t/95-transport-maps.t - transport_maps (transport(5)) on a real instance:
qmgr routes each recipient through lookupd's answer, with a real nsd for
the zone test. and scripted SMTP servers (t/lib/fakesmtp.py) on
127.0.0.3 - 127.0.0.8, all on one port (smtp_tcp_port).  Mail is handed
to cleanup over its socket from a local sender, whose Maildir receives
the bounces.

Covers: "domain smtp:[host]:port" overrides the domain's MX; ".parent"
matches subdomains only, "domain" only itself; a full address, and
user+ext@domain finding user@domain (recipient_delimiter); "smtp:host"
with an MX lookup of host; ":[host]:port" (the built-in transport, another
next hop) and "smtp:" (the built-in next hop); "*" catches the rest while
"domain :" keeps the built-in route; error: bounces at once with the
entry's status code and text in the DSN, 5.0.0 without one, and 5.0.0
with a warning for a 4.x.y one; retry: defers with its text (4.0.0 and a
text of its own without); discard: logs status=sent, relay=none and
delivers nothing; local: delivers mail for a remote domain into the local user's
Maildir; an unknown transport defers (4.3.5 "mail transport unavailable")
with a log line naming it, and the mail goes out once the table is fixed
(rebuilt, no restart) and the queue flushed; a table whose .db is missing
defers (4.3.0, the table named) and is reported by mailctl check; lookupd
missing from master.conf defers (4.3.0, "cannot connect to lookupd") and
the mail goes out once it is back; lookupd killed between lookups costs
nothing (a new connection); a lookupd that stops answering defers the
mail after two tries of LOOKUP_TIMEOUT_MS (20 s) each, and it goes out
once lookupd answers again.  Nothing panics.
Skips without nsd or root."""
import os
import re
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, diag, done, skip_all  # noqa: E402
import nsd  # noqa: E402
from smtptest import prelude, problems, free_port_on, outcome, outcomes, bounce_for  # noqa: E402

work = prelude("posthorn-transport-")
import posthorn  # noqa: E402
from fakesmtp import FakeSMTP, stop_all  # noqa: E402

ADDRS = ["127.0.0.%d" % i for i in range(3, 9)]
PORT = free_port_on(ADDRS)

ZONE = "$ORIGIN test.\n$TTL 300\n" + nsd.SOA + """
ns IN A 127.0.0.1
mx IN A 127.0.0.3
over IN MX 10 mx.test.
parent IN MX 10 mx.test.
sub.parent IN MX 10 mx.test.
deep.sub.parent IN MX 10 mx.test.
full IN MX 10 mx.test.
plain IN MX 10 mx.test.
bogus IN MX 10 mx.test.
nomatch IN MX 10 mx.test.
relay IN MX 10 mx.relay.test.
mx.relay IN A 127.0.0.7
"""
dns = nsd.Nsd([("test.", ZONE)])
ok(True, "nsd serves test. on port %d; smtp servers listen on port %d" % (dns.port, PORT))

servers = {i: FakeSMTP(work, "127.0.0.%d" % i, PORT, {}) for i in range(3, 9)}
MX, OVER, PARENT, FULL, VIAMX, CATCH = (servers[i] for i in range(3, 9))

inst = posthorn.Instance(main_conf={
    "dns_stub_zones": "test=127.0.0.1@%d 127.in-addr.arpa=127.255.255.255" % dns.port,
    "dns_query_timeout": "3s",
    "dnssec_trust_anchor_file": "",
    "smtp_tcp_port": str(PORT),
    "transport_maps": "hash:$config_directory/transport",
})
TABLE = os.path.join(inst.etc, "transport")
user, home = inst.add_user()
SENDER = "%s@example.test" % user
ENTRIES = """# transport(5) test table
over.test          smtp:[127.0.0.4]:{port}
.parent.test       smtp:[127.0.0.5]:{port}
vip@full.test      smtp:[127.0.0.6]:{port}
viamx.test         smtp:relay.test:{port}
keep.test          :[127.0.0.6]:{port}
plain.test         smtp:
gone.test          error:5.1.1 This domain is gone: ask elsewhere
plainerr.test      error:no mail here
softerr.test       error:4.2.0 not now
later.test         retry:4.7.1 come back tomorrow
plainretry.test    retry:
void.test          discard:silently dropped
quiet.test         discard:
remote.test        local:
bogus.test         bogon:[127.0.0.3]
"""


def write_table(extra=""):
    with open(TABLE, "w") as f:
        f.write(ENTRIES.format(port=PORT) + extra)
    r = inst.mailctl("map", TABLE)
    is_(r.returncode, 0, "mailctl map transport") or diag(r.stderr)


write_table()
r = inst.mailctl("check")
is_(r.returncode, 0, "mailctl check accepts the built table") or diag(r.stderr)
r = inst.start()
ok(r.returncode == 0, "the instance starts") or diag(r.stderr)
N = [0]


def send(rcpts):
    N[0] += 1
    subject = "t95 message %d" % N[0]
    content = ("From: <%s>\r\nSubject: %s\r\n\r\nhello\r\n" % (SENDER, subject)).encode()
    return inst.submit(content, SENDER, rcpts), subject


def on(server, subject, timeout=30):
    return server.wait(lambda: [m for m in server.messages()
                                if ("Subject: %s\r\n" % subject).encode() in m["data"]],
                       timeout) or []


def matches(text, rx, name):
    """like(), with a regular expression."""
    if not ok(text is not None and re.search(rx, text), name):
        diag("  %r\n  does not match %r" % (text and text[-2000:], rx))
        return False
    return True


def status(o):
    return o and (o["status"], o["dsn"], o["relay"])


def bracket(n):
    return "127.0.0.%d[127.0.0.%d]:%d" % (n, n, PORT)


# ------------------------------------------------------------- next hops
qid, subj = send(["a@over.test"])
o = outcome(inst, qid, "a@over.test")
is_(status(o), ("sent", "2.0.0", bracket(4)),
    "domain smtp:[127.0.0.4]:port wins over the domain's MX") or diag(inst.log()[-2000:])
ok(on(OVER, subj), "  the table's server has it")
ok(not on(MX, subj, timeout=1), "  the MX got nothing")

qid, subj = send(["b@sub.parent.test", "c@deep.sub.parent.test", "d@parent.test"])
o1, o2, o3 = (outcome(inst, qid, a) for a in ("b@sub.parent.test", "c@deep.sub.parent.test",
                                               "d@parent.test"))
is_([o and o["relay"] for o in (o1, o2)], [bracket(5), bracket(5)],
    ".parent.test matches its subdomains, one and two levels down")
is_(o3 and o3["relay"], "mx.test[127.0.0.3]:%d" % PORT,
    "  but not parent.test itself, which goes to its MX")
msgs = on(PARENT, subj)
is_(msgs and sorted(msgs[0]["rcpts"]), ["b@sub.parent.test", "c@deep.sub.parent.test"],
    "  one transaction for both subdomain recipients (one next hop)")

qid, subj = send(["vip@full.test", "vip+news@full.test", "other@full.test"])
ov, oe, oo = (outcome(inst, qid, a) for a in ("vip@full.test", "vip+news@full.test",
                                               "other@full.test"))
is_([o and o["relay"] for o in (ov, oe)], [bracket(6), bracket(6)],
    "a full-address entry, and user+ext@domain finds user@domain")
is_(oo and oo["relay"], "mx.test[127.0.0.3]:%d" % PORT, "  another user of the domain: its MX")
ok(on(FULL, subj), "  the table's server has the message")

qid, subj = send(["e@viamx.test"])
o = outcome(inst, qid, "e@viamx.test")
is_(status(o), ("sent", "2.0.0", "mx.relay.test[127.0.0.7]:%d" % PORT),
    "smtp:relay.test:port looks up relay.test's MX")
ok(on(VIAMX, subj), "  whose server has it")

qid, subj = send(["f@keep.test"])
o = outcome(inst, qid, "f@keep.test")
is_(o and o["relay"], bracket(6), ":[host]:port keeps the transport and changes the next hop")

qid, subj = send(["g@plain.test"])
o = outcome(inst, qid, "g@plain.test")
is_(o and o["relay"], "mx.test[127.0.0.3]:%d" % PORT, "smtp: with no next hop: the domain's MX")
ok(on(MX, subj), "  which has it")

# ------------------------------------------------------------- no delivery
qid, subj = send(["h@gone.test"])
o = outcome(inst, qid, "h@gone.test")
is_(status(o), ("bounced", "5.1.1", "none"), "error:5.1.1 text: bounced at once, relay=none")
is_(o and o["text"], "This domain is gone: ask elsewhere", "  with the entry's text")
rep = bounce_for(inst, home, b"This domain is gone: ask elsewhere")
ok(rep, "  the sender's report carries the text")
like(rep and rep.decode("latin-1"), "Status: 5.1.1", "  and the status code")

qid, subj = send(["i@plainerr.test"])
o = outcome(inst, qid, "i@plainerr.test")
is_(o and (o["status"], o["dsn"], o["text"]), ("bounced", "5.0.0", "no mail here"),
    "error:text without a status code: 5.0.0")

qid, subj = send(["i2@softerr.test"])
o = outcome(inst, qid, "i2@softerr.test")
is_(o and (o["status"], o["dsn"], o["text"]), ("bounced", "5.0.0", "not now"),
    "error:4.x.y text still bounces, with 5.0.0 (Postfix's error(8))")
like(inst.log(), "%s: to=<i2@softerr.test>: transport_maps: error: ignoring status code 4.2.0 "
     "of another class; using 5.0.0" % qid, "  and a warning")

qid, subj = send(["j@later.test"])
o = outcome(inst, qid, "j@later.test")
is_(status(o), ("deferred", "4.7.1", "none"), "retry:4.7.1 text: deferred")
is_(o and o["text"], "come back tomorrow", "  with the entry's text")

qid, subj = send(["j2@plainretry.test"])
o = outcome(inst, qid, "j2@plainretry.test")
is_(o and (o["status"], o["dsn"], o["text"]),
    ("deferred", "4.0.0", "mail for <j2@plainretry.test> is deferred"),
    "retry: without text: 4.0.0 and a text that says so")

qid, subj = send(["k@void.test"])
o = outcome(inst, qid, "k@void.test")
is_(status(o), ("sent", "2.0.0", "none"), "discard: status=sent, relay=none")
is_(o and o["text"], "silently dropped", "  with the entry's text")
ok(inst.wait_for(lambda: "%s: removed" % qid in inst.log()), "  and the message is done")
ok(not any(("Subject: %s\r\n" % subj).encode() in m["data"]
           for s in servers.values() for m in s.messages()), "  no server got anything")

qid, subj = send(["k2@quiet.test"])
o = outcome(inst, qid, "k2@quiet.test")
is_(o and (o["status"], o["dsn"], o["relay"], o["text"]), ("sent", "2.0.0", "none", "discarded"),
    "discard: without text: \"discarded\"")

qid, subj = send(["%s@remote.test" % user])
o = outcome(inst, qid, "%s@remote.test" % user)
is_(o and (o["status"], o["relay"]), ("sent", "local"),
    "local: delivers mail for a remote domain locally")
ok(inst.wait_copies(home, subj), "  into the user's Maildir")

# ------------------------------------------------------------- unknown transport
qid, subj = send(["l@bogus.test"])
o = outcome(inst, qid, "l@bogus.test")
is_(status(o), ("deferred", "4.3.5", "none"), "an unknown transport: deferred, 4.3.5")
is_(o and o["text"], "mail transport unavailable", "  \"mail transport unavailable\"")
matches(inst.log(), r'%s: to=<l@bogus.test>: transport_maps entry bogus.test in hash:\S+transport '
     r'names the unknown mail transport "bogon"' % qid, "  the log names the entry and transport")
ok(not on(MX, subj, timeout=1), "  nothing was sent")
with open(TABLE, "w") as f:
    f.write(ENTRIES.format(port=PORT).replace("bogon:[127.0.0.3]", "smtp:[127.0.0.3]:%d" % PORT))
r = inst.mailctl("map", TABLE)
is_(r.returncode, 0, "the table is fixed and rebuilt")
r = inst.mailctl("queue", "flush")
ok(r.returncode == 0, "mailctl queue flush") or diag(r.stderr)
o = outcome(inst, qid, "l@bogus.test", n=2)
is_(o and (o["status"], o["relay"]), ("sent", bracket(3)),
    "  the deferred mail goes out with the fixed entry, without a restart")
ok(on(MX, subj), "  and arrives")

# ------------------------------------------------------------- catch-all
write_table("*                  smtp:[127.0.0.8]:%d\nexample.test       :\n" % PORT)
qid, subj = send(["m@nomatch.test", SENDER, "n@over.test"])
om, os_, on_ = (outcome(inst, qid, a) for a in ("m@nomatch.test", SENDER, "n@over.test"))
is_(om and om["relay"], bracket(8), "* catches a domain without an entry")
is_(os_ and os_["relay"], "local", "  \"example.test :\" keeps the local domain local")
is_(on_ and on_["relay"], bracket(4), "  an entry still wins over *")
ok(on(CATCH, subj), "  the catch-all server has it")

# ------------------------------------------------------------- lookup failures
inst.set_main({"transport_maps": "hash:$config_directory/transport "
                                 "hash:$config_directory/missing"})
r = inst.mailctl("check")
is_(r.returncode, 1, "mailctl check: a transport table without .db is an error")
matches(r.stderr, r"transport_maps: \S+/missing\.db does not exist, so qmgr would defer all mail",
     "  and says so") or diag(r.stderr)
matches(r.stderr, r"mailctl map hash:\S+/missing", "  with the command that builds it")
r = inst.mailctl("reload")
is_(r.returncode, 0, "reload with the missing table") or diag(r.stderr)
qid, subj = send(["p@over.test"])
o = outcome(inst, qid, "p@over.test")
is_(status(o), ("deferred", "4.3.0", "none"), "a table that cannot be read: deferred, 4.3.0")
matches(o and o["text"], r"^transport_maps lookup failure: map hash:\S+/missing: cannot open",
     "  the reason names the table") or diag(o)
ok(not on(OVER, subj, timeout=1), "  nothing was sent")
inst.set_main({"transport_maps": "hash:$config_directory/transport"})
r = inst.mailctl("reload")
is_(r.returncode, 0, "reload with the table fixed") or diag(r.stderr)
r = inst.mailctl("queue", "flush")
o = outcome(inst, qid, "p@over.test", n=2)
is_(o and (o["status"], o["relay"]), ("sent", bracket(4)), "  then the mail goes out")

master_conf = os.path.join(inst.etc, "master.conf")
with open(master_conf) as f:
    saved = f.read()
with open(master_conf, "w") as f:
    f.write(re.sub(r"(?m)^lookupd\s.*$", "# lookupd taken out by t/95", saved))
r = inst.mailctl("reload")
is_(r.returncode, 0, "reload without lookupd") or diag(r.stderr)
qid, subj = send(["q@over.test"])
o = outcome(inst, qid, "q@over.test")
is_(status(o), ("deferred", "4.3.0", "none"), "lookupd unavailable: deferred, 4.3.0")
matches(o and o["text"], r"^transport_maps lookup failure: cannot connect to lookupd",
     "  the reason says so") or diag(o)
matches(inst.log(), r"qmgr\[\d+\]: warning: cannot connect to lookupd \(private/lookupd\): "
        r".*; deferring", "  and qmgr logs a warning")
with open(master_conf, "w") as f:
    f.write(saved)
r = inst.mailctl("reload")
is_(r.returncode, 0, "reload with lookupd back") or diag(r.stderr)
r = inst.mailctl("queue", "flush")
o = outcome(inst, qid, "q@over.test", n=2)
is_(o and (o["status"], o["relay"]), ("sent", bracket(4)), "  then the mail goes out")

bad = problems(inst)
ok(not bad, "no panic, fatal or crash in the log") or diag(bad)

# ------------------------------------------------------------- lookupd going away
mark = len(inst.log())
pids = pids_killed = inst.service_pids("lookupd")
ok(pids, "lookupd runs")
for pid in pids:
    os.kill(pid, signal.SIGKILL)
ok(inst.wait_for(lambda: not any(posthorn.alive(p) for p in pids)), "  and is killed between lookups")
qid, subj = send(["r@over.test"])
o = outcome(inst, qid, "r@over.test")
is_(o and (o["status"], o["relay"]), ("sent", bracket(4)),
    "  the next message is routed over a new connection")
ok("lookupd connection lost" not in inst.log()[mark:], "  no lookups were lost with the old one")

pids = inst.service_pids("lookupd")
for pid in pids:
    os.kill(pid, signal.SIGSTOP)
try:
    qid, subj = send(["s@over.test"])
    o = outcome(inst, qid, "s@over.test", timeout=90)
    is_(status(o), ("deferred", "4.3.0", "none"),
        "a lookupd that stops answering: deferred after two tries of LOOKUP_TIMEOUT_MS")
    is_(o and o["text"], "transport_maps lookup failure: lookupd: no answer within 20s",
        "  the reason says so")
    like(inst.log(), "lookupd connection lost (no answer within 20s) with 1 transport_maps "
         "lookups in flight", "  qmgr logs each lost connection")
finally:
    for pid in pids:
        os.kill(pid, signal.SIGCONT)
r = inst.mailctl("queue", "flush")
o = outcome(inst, qid, "s@over.test", n=2)
is_(o and (o["status"], o["relay"]), ("sent", bracket(4)), "  once it answers, the mail goes out")
bad = [l for l in problems(inst) if not any("process %d (lookupd) killed by signal 9" % p in l
                                            for p in pids_killed)]
ok(not bad, "  nothing else went wrong") or diag(bad)

inst.cleanup()
stop_all()
dns.stop()
done()
