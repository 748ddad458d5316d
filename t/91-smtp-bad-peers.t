#!/usr/bin/env python3
"""t/91-smtp-bad-peers.t - the SMTP client against servers that misbehave:
each case is a scripted server (t/lib/fakesmtp.py) on 127.0.0.2, the MX of
a domain of its own (caseN.bad.test, a wildcard in a real nsd zone), and
one message to it.  Every case must end in a clear outcome in the log (the
right status and text), never a crash or a hang: the per-stage timeouts
are 2 s here.

Cases: an over-long reply line, a multi-line reply whose codes differ, a
garbage reply, a reply that never ends; a stall at the greeting, at EHLO,
at MAIL, at RCPT, at DATA, in the middle of the content (the server stops
reading) and after the end of the data; a 421 and a 554 greeting; EHLO
refused (HELO instead); a reply with a malformed enhanced status code;
MAIL, DATA and end-of-data refusals; a close in the middle of DATA and of
BDAT (deferred, and after "mailctl queue flush" the message arrives whole);
a TLS handshake that fails (opportunistic TLS: delivered in plaintext on a
new connection).  Afterwards: no smtp process crashed.
Skips without nsd or root."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, diag, done, skip_all  # noqa: E402
import nsd  # noqa: E402
from smtptest import prelude, problems, free_port_on, outcome  # noqa: E402

work = prelude("posthorn-smtp-bad-")
import posthorn  # noqa: E402
from fakesmtp import FakeSMTP, stop_all  # noqa: E402
ADDR = "127.0.0.2"
PORT = free_port_on([ADDR])

SOA = nsd.SOA
ZONE = ("$ORIGIN test.\n$TTL 300\n" + SOA
        + "ns IN A 127.0.0.1\n*.bad IN MX 10 srv.test.\nsrv IN A %s\n" % ADDR)
dns = nsd.Nsd([("test.", ZONE)])

# A certificate for the TLS case (self-signed: fine for "may").
cert = os.path.join(work, "cert.pem")
os.system("openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 2 "
          "-subj /CN=srv.test >/dev/null 2>&1" % (cert, cert + ".crt"))
with open(cert, "a") as f:
    f.write(open(cert + ".crt").read())

inst = posthorn.Instance(main_conf={
    "dns_stub_zones": "test=127.0.0.1@%d 127.in-addr.arpa=127.255.255.255" % dns.port,
    "dns_query_timeout": "3s",
    "dnssec_trust_anchor_file": "",
    "smtp_tcp_port": str(PORT),
    "smtp_helo_timeout": "2s", "smtp_mail_timeout": "2s", "smtp_rcpt_timeout": "2s",
    "smtp_data_init_timeout": "2s", "smtp_data_xfer_timeout": "2s",
    "smtp_data_done_timeout": "2s", "smtp_starttls_timeout": "2s",
    "message_size_limit": "40000000",
})
r = inst.start()
ok(r.returncode == 0, "the instance starts") or diag(r.stderr)
SENDER = "sender@example.test"
N = [0]
PIPE = ["PIPELINING", "ENHANCEDSTATUSCODES"]


def case(script, body=b"hello\r\n"):
    """Run one message against a server scripted so; its outcome and the
    server."""
    N[0] += 1
    rcpt = "rcpt@case%d.bad.test" % N[0]
    srv = FakeSMTP(work, ADDR, PORT, script)
    content = b"From: <%s>\r\nSubject: case %d\r\n\r\n" % (SENDER.encode(), N[0]) + body
    qid = inst.submit(content, SENDER, [rcpt])
    o = outcome(inst, qid, rcpt, timeout=60)
    return qid, rcpt, o, srv


def expect(script, status, dsn, text, name, body=b"hello\r\n", keep=False):
    qid, rcpt, o, srv = case(script, body)
    if not is_(o and (o["status"], o["dsn"]), (status, dsn), name):
        diag(o)
    like(o and o["text"], text, "  %s" % text)
    if not keep:
        srv.stop()
    return qid, rcpt, o, srv


S = "srv.test[%s]" % ADDR
expect({"greeting": "long"}, "deferred", "4.5.0",
       "host %s sent a malformed reply (" % S, "an over-long greeting line")
expect({"ehlo_reply": "broken"}, "deferred", "4.5.0",
       "sent a malformed reply", "a multi-line EHLO reply whose codes differ")
expect({"ehlo": PIPE, "mail": "garbage"}, "deferred", "4.5.0",
       "sent a malformed reply", "garbage instead of the reply to MAIL")
expect({"ehlo_reply": "endless"}, "deferred", "4.5.0",
       "sent a malformed reply", "an EHLO reply that never ends")
expect({"greeting": "stall"}, "deferred", "4.4.2",
       "conversation with %s timed out while receiving the initial server greeting" % S,
       "a stall at the greeting")
expect({"ehlo_reply": "stall"}, "deferred", "4.4.2",
       "timed out while performing the EHLO handshake", "a stall at EHLO")
expect({"ehlo": PIPE, "mail": "stall"}, "deferred", "4.4.2",
       "timed out while sending MAIL FROM", "a stall at MAIL (pipelined)")
expect({"ehlo": [], "rcpt": {"*": "stall"}}, "deferred", "4.4.2",
       "timed out while sending RCPT TO", "a stall at RCPT")
expect({"ehlo": [], "data": "stall"}, "deferred", "4.4.2",
       "timed out while sending DATA", "a stall at DATA")
big = b"".join(b"%07d the server stopped reading this message\r\n" % i for i in range(400000))
expect({"stall_in_body": True}, "deferred", "4.4.2",
       "timed out while sending message body", "a stall in the middle of the content "
       "(%d MB)" % (len(big) >> 20), body=big)
expect({"dot": "stall"}, "deferred", "4.4.2",
       "timed out while sending end of data -- message may be sent more than once",
       "a stall after the end of the data")
expect({"greeting": "421 4.3.2 Too busy, come back later"}, "deferred", "4.3.2",
       "host %s refused to talk to me: 421 4.3.2 Too busy" % S, "a 421 greeting")
expect({"greeting": "554 5.7.1 Go away"}, "bounced", "5.7.1",
       "host %s refused to talk to me: 554 5.7.1 Go away" % S, "a 554 greeting (the only MX)")
qid, rcpt, o, srv = expect({"ehlo": None}, "sent", "2.0.0", "250 2.0.0 Ok: queued as",
                           "EHLO refused: HELO instead", keep=True)
ok("HELO mail.example.test" in srv.commands(), "  HELO was sent")
srv.stop()
expect({"rcpt": {"*": "550 9.9.9 odd code"}}, "bounced", "5.0.0",
       "said: 550 9.9.9 odd code (in reply to RCPT TO command)",
       "a malformed enhanced code: the class from the reply code")
expect({"ehlo": PIPE, "mail": "451 4.3.0 Try again later"}, "deferred", "4.3.0",
       "said: 451 4.3.0 Try again later (in reply to MAIL FROM command)",
       "MAIL refused (pipelined): the MAIL reply, not the RCPT replies")
expect({"data": "554 5.7.1 Not from you"}, "bounced", "5.7.1",
       "(in reply to DATA command)", "DATA refused")
expect({"dot": "552 5.3.4 Message too big"}, "bounced", "5.3.4",
       "said: 552 5.3.4 Message too big (in reply to end of DATA command)",
       "the end of data refused")

body = b"".join(b"line %04d of a message cut short\r\n" % i for i in range(300))
for ext, name in ((PIPE, "DATA"), (PIPE + ["CHUNKING"], "BDAT")):
    qid, rcpt, o, srv = expect({"ehlo": ext, "conns": [{"close_in_body": 2000}]}, "deferred",
                               "4.4.2", "lost connection with %s while sending " % S,
                               "a close in the middle of %s" % name, body=body, keep=True)
    ok(srv.events("lost_in_body"), "  the server saw part of it")
    # (Earlier cases' deferred messages may reach this server too.)
    ok(not [m for m in srv.messages() if rcpt in m["rcpts"]], "  and kept nothing")
    inst.mailctl("queue", "flush")
    o = outcome(inst, qid, rcpt, timeout=60, n=2)
    is_(o and o["status"], "sent", "  after mailctl queue flush it is sent")
    # The flush also sends the earlier cases' deferred messages to this
    # server, in any order: look at this case's own.
    msgs = [m for m in srv.messages() if rcpt in m["rcpts"]]
    ok(len(msgs) == 1 and msgs[0]["data"].endswith(body) and msgs[0]["bdat"] == (name == "BDAT"),
       "  whole, by %s" % name) or diag("%d messages for %s; the last: bdat %r, %d bytes, ends %r"
                                        % (len(msgs), rcpt, msgs and msgs[-1]["bdat"],
                                           len(msgs and msgs[-1]["data"] or b""),
                                           msgs and msgs[-1]["data"][-60:]))
    srv.stop()

qid, rcpt, o, srv = expect({"ehlo": ["STARTTLS"] + PIPE, "cert": cert, "tls_garbage": True},
                           "sent", "2.0.0", "250 2.0.0", "a failed TLS handshake (may): "
                           "delivered in plaintext", keep=True)
like(inst.log(), "TLS handshake with srv.test[%s]:%d failed: " % (ADDR, PORT),
     "  the failure is logged")
is_(srv.connections(), 2, "  on a second connection")
ok("STARTTLS" not in srv.commands(1), "  without STARTTLS")
srv.stop()

bad = problems(inst)
ok(not bad, "no panic, fatal or crash in the log") or diag(bad)
inst.cleanup()
stop_all()
dns.stop()
done()
