#!/usr/bin/env python3
"""t/27-ipc-peers.t - one client of a multi-client service cannot hold up
the others (issue 10 review, finding 5).

lookupd and anvil serve every smtpd process from one event loop, and their
clients run as network_user: a compromised smtpd.  As posthorn-net, the
test opens connections to private/lookupd and private/anvil that never
say hello, that send half a hello, and that send a hello and then half a
request; then it uses the instance as a client would:
- RCPT for a local user is answered 250 at once (lookupd: the old code
  read each hello and request to completion, 5 s per stalled client, so
  a few of them made smtpd's lookup time out: 451 4.3.0);
- smtpd_client_connection_count_limit still holds (anvil: a stalled anvil
  made smtpd give up on it and accept every connection);
- a client whose account is not allowed is still refused at once, and the
  stalled clients' connections are simply kept (nothing crashes).
"""
import os
import pwd
import smtplib
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import ipcframe  # noqa: E402
from posthorn import Instance  # noqa: E402
from tap import diag, done, is_, like, ok, skip_all  # noqa: E402

if os.geteuid() != 0:
    skip_all("master must run as root")

LOOKUP_RCPT = 0x500
inst = Instance(main_conf={"smtpd_client_connection_count_limit": "1",
                           "mynetworks": "127.0.0.1/32"})
# One session per smtpd process: every session is a new lookupd client,
# queued behind the stalling ones (as a busy server's new smtpd is).
inst.edit_service("smtpd", "-o max_use=1")
r = inst.start()
ok(r.returncode == 0, "instance starts") or diag(r.stderr)
user, home = inst.add_user()
rcpt = "%s@mail.example.test" % user
port = inst.port(25)
net = pwd.getpwnam("posthorn-net")
owner = pwd.getpwnam("posthorn")
private = os.path.join(inst.spool, "private")

# Make sure both services run before the stalling clients arrive.
s = smtplib.SMTP("127.0.0.1", port, timeout=30, source_address=("127.0.0.2", 0))
s.ehlo("warm.example.test")
s.mail("a@example.org")
is_(s.rcpt(rcpt)[0], 250, "a first session is answered")
s.quit()


def stallers(path, proto):
    conns = []
    for _ in range(8):          # connect, say nothing
        conns.append(ipcframe.connect_as(path, net.pw_uid, net.pw_gid, [owner.pw_gid]))
    c = ipcframe.connect_as(path, net.pw_uid, net.pw_gid, [owner.pw_gid])
    c.send_raw(ipcframe.encode(0, 0, [proto, 1])[:10])      # half a hello
    conns.append(c)

    def half_request():
        c = ipcframe.connect_as(path, net.pw_uid, net.pw_gid, [owner.pw_gid])
        conns.append(c)
        try:
            c.hello(proto, 1, timeout=90)
            c.send_raw(ipcframe.encode(LOOKUP_RCPT if proto == "lookup" else 0x600, 1,
                                       ["x@example.test"] if proto == "lookup"
                                       else ["smtpd", "10.0.0.1"])[:20])
        except OSError:
            pass
    t = threading.Thread(target=half_request)
    t.start()
    return conns, t


# The stalling clients go first; the real ones come right behind them (the
# old code served them only after 5 s per stalling client).
held, t1 = stallers(os.path.join(private, "lookupd"), "lookup")
more, t2 = stallers(os.path.join(private, "anvil"), "anvil")
held += more

t0 = time.time()
s = smtplib.SMTP("127.0.0.1", port, timeout=60, source_address=("127.0.0.2", 0))
s.ehlo("client.example.test")
s.mail("a@example.org")
code, msg = s.rcpt(rcpt)
is_(code, 250, "RCPT is answered while ten clients stall lookupd") or diag(msg)
diag("answered in %.1fs" % (time.time() - t0))
try:
    s2 = smtplib.SMTP("127.0.0.1", port, timeout=60, source_address=("127.0.0.2", 0))
    code2 = s2.ehlo("second.example.test")[0]
    s2.close()
except smtplib.SMTPServerDisconnected:
    code2 = 421
except smtplib.SMTPConnectError as e:
    code2 = e.smtp_code
is_(code2, 421, "a second session from the same client is over the limit: anvil still counts")
s.quit()

# An account that may not talk to lookupd is refused at once.
other = inst.add_user()[0]
opw = pwd.getpwnam(other)
try:
    c = ipcframe.connect_as(os.path.join(private, "lookupd"), opw.pw_uid, opw.pw_gid,
                            [owner.pw_gid])
    c.send(0, 0, ["lookup", 1])
    got = c.recv(timeout=10)
    c.close()
except OSError as e:
    got = e
ok(got is None or isinstance(got, OSError), "a client of another account gets no hello")
like(inst.log(), "lookupd: refusing a client: uid %d: peer uid not allowed" % opw.pw_uid,
     "and is logged with its uid")

# The stalling clients were kept waiting, not served and not crashing anything.
t1.join()
t2.join()
for c in held:
    c.close()
s = smtplib.SMTP("127.0.0.1", port, timeout=30)
s.ehlo("after.example.test")
s.mail("a@example.org")
is_(s.rcpt(rcpt)[0], 250, "after they leave, lookupd still answers")
s.quit()
ok("panic" not in inst.log() and "fatal" not in inst.log(), "no panic or fatal error logged")

inst.stop()
inst.cleanup()
done()
