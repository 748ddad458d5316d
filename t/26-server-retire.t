#!/usr/bin/env python3
"""A multi-client service (lookupd, local) that reaches max_use stops taking
connections but goes on serving the ones it has.  It must tell master so:
otherwise master counts it as available, spawns no replacement, and one
client that holds its connection (a slow SMTP session) shuts every new
client out; each of their RCPT commands would wait for a lookupd that never
answers and get 451.  Each smtpd here serves one session (max_use=1), so
each session is a new lookupd client; lookupd retires after two."""
import os
import smtplib
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, diag, done, skip_all  # noqa: E402
import posthorn  # noqa: E402

if os.geteuid() != 0:
    skip_all("master must run as root")

inst = posthorn.Instance()
inst.edit_service("smtpd", "-o max_use=1")
inst.edit_service("lookupd", "-o max_use=2")
r = inst.start()
is_(r.returncode, 0, "instance starts") or diag(r.stderr)
user, home = inst.add_user()
rcpt = "%s@mail.example.test" % user
port = inst.port(25)


def session():
    s = smtplib.SMTP("127.0.0.1", port, timeout=60)
    s.ehlo("client.example.test")
    s.mail("sender@example.test")
    return s


held = session()
code, _ = held.rcpt(rcpt)
is_(code, 250, "the first session's RCPT is answered; the session stays open")
first = set(inst.service_pids("lookupd"))
is_(len(first), 1, "one lookupd process serves it")

s = session()
code, _ = s.rcpt(rcpt)
is_(code, 250, "the second session (lookupd's last use) is answered")
s.quit()

t0 = time.time()
s = session()
code, msg = s.rcpt(rcpt)
took = time.time() - t0
is_(code, 250, "a third session is answered while the retired lookupd still holds the first") \
    or diag(msg)
diag("third RCPT answered in %.1fs" % took)
s.quit()
ok(set(inst.service_pids("lookupd")) - first, "a new lookupd process took over")
ok(first & set(inst.service_pids("lookupd")), "the retired one still serves its connection")

code, _ = held.rcpt("second-" + rcpt)
is_(code, 550, "the held session still gets answers from the retired lookupd")
held.quit()
old = first.pop()
ok(inst.wait_for(lambda: not posthorn.alive(old), 10),
   "the retired lookupd exits once its last client has gone")
ok("lookup failure" not in inst.log(), "no temporary lookup failure was logged")

inst.stop()
inst.cleanup()
done()
