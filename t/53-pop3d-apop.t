#!/usr/bin/env python3
"""pop3d's APOP (RFC 1939 7) with pop3_apop = yes, and mailctl user apop.

 - the greeting carries a timestamp <PID.TIME.RANDOM@myhostname>, a new
   one per connection;
 - mailctl user apop NAME --password-stdin sets the secret of a user who
   has a mail password (refused for one who has none);
 - poplib's apop() logs in with it; a wrong secret is -ERR [AUTH] and
   logged; a user without a secret cannot use APOP; a digest made for
   another connection's timestamp is refused (no replay);
 - mailctl user passwd keeps the APOP secret, and USER/PASS takes the new
   password; mailctl user apop --remove drops it;
 - without pop3_apop (after a reload) the greeting has no timestamp and
   APOP is -ERR.
Every process is cleaned up by PID."""
import hashlib
import os
import poplib
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, unlike, diag, done  # noqa: E402
import posthorn  # noqa: E402
from pop3test import Client  # noqa: E402

PW, SECRET = "pop-secret-3", "apop shared secret"
inst = posthorn.Instance(main_conf={"pop3_apop": "yes"})
r = inst.start()
if r.returncode != 0:
    diag(r.stderr)
P110 = inst.port(110)


def mailctl_user(*args, stdin=None):
    return subprocess.run([posthorn.MAILCTL, "-c", inst.etc, "user"] + list(args),
                          input=stdin, capture_output=True, text=True, timeout=60)


alice, _ = inst.add_user()
bob, _ = inst.add_user()
mailctl_user("add", alice, "--password-stdin", stdin=PW + "\n")
mailctl_user("add", bob, "--password-stdin", stdin=PW + "\n")
r = mailctl_user("apop", alice, "--password-stdin", stdin=SECRET + "\n")
is_(r.returncode, 0, "mailctl user apop sets alice's secret") or diag(r.stderr)
outsider, _ = inst.add_user()
r = mailctl_user("apop", outsider, "--password-stdin", stdin=SECRET + "\n")
ok(r.returncode != 0 and "no mail password" in r.stderr,
   "  refused for a user without a mail password") or diag(r.stderr)


def stamp(greeting):
    m = re.search(rb"<[^<>@]+@[^<>]+>", greeting)
    return m.group(0) if m else None


c1, c2 = Client(P110), Client(P110)
s1, s2 = stamp(c1.greeting), stamp(c2.greeting)
ok(s1 is not None and s1.endswith(b"@mail.example.test>"),
   "the greeting carries a timestamp (%s)" % s1)
ok(s1 != s2, "  a new one per connection")
replay = hashlib.md5(s1 + SECRET.encode()).hexdigest()
like(c2.cmd("APOP %s %s" % (alice, replay)).decode(), "-ERR [AUTH]",
     "a digest for another connection's timestamp: refused")
is_(c1.cmd("APOP %s %s" % (alice, replay)), b"+OK Logged in.", "  its own works")
c1.cmd("QUIT")
c1.close()
c2.close()

p = poplib.POP3("127.0.0.1", P110, timeout=15)
like(p.apop(alice, SECRET).decode(), "+OK", "poplib apop() logs in")
p.quit()
p = poplib.POP3("127.0.0.1", P110, timeout=15)
try:
    p.apop(alice, "wrong secret")
    ok(False, "a wrong secret is refused")
except poplib.error_proto as e:
    like(str(e), "-ERR [AUTH]", "a wrong secret: -ERR [AUTH]")
p.close()
ok(inst.wait_for(lambda: "SASL APOP authentication failed" in inst.log(), 5),
   "  logged for fail2ban")
p = poplib.POP3("127.0.0.1", P110, timeout=15)
try:
    p.apop(bob, SECRET)
    ok(False, "a user without a secret cannot use APOP")
except poplib.error_proto as e:
    like(str(e), "-ERR [AUTH]", "a user without a secret cannot use APOP")
p.close()
like(Client(P110).cmd("APOP %s nothex" % alice).decode(), "-ERR", "APOP with a bad digest: -ERR")

r = mailctl_user("passwd", alice, "--password-stdin", stdin="new-" + PW + "\n")
is_(r.returncode, 0, "mailctl user passwd") or diag(r.stderr)
p = poplib.POP3("127.0.0.1", P110, timeout=15)
like(p.apop(alice, SECRET).decode(), "+OK", "  keeps the APOP secret")
p.quit()
p = poplib.POP3("127.0.0.1", P110, timeout=15)
p.user(alice)
like(p.pass_("new-" + PW).decode(), "+OK", "  and USER/PASS takes the new password")
p.quit()
r = mailctl_user("apop", alice, "--remove")
is_(r.returncode, 0, "mailctl user apop --remove") or diag(r.stderr)
p = poplib.POP3("127.0.0.1", P110, timeout=15)
try:
    p.apop(alice, SECRET)
    ok(False, "  APOP no longer works")
except poplib.error_proto:
    ok(True, "  APOP no longer works")
p.close()
p = poplib.POP3("127.0.0.1", P110, timeout=15)
p.user(alice)
like(p.pass_("new-" + PW).decode(), "+OK", "  the password still does")
p.quit()

inst.set_main({"pop3_apop": "no"})
r = inst.mailctl("reload")
is_(r.returncode, 0, "reload with pop3_apop = no") or diag(r.stderr)
import time  # noqa: E402
time.sleep(1)
c = Client(P110)
is_(stamp(c.greeting), None, "without pop3_apop: no timestamp in the greeting")
like(c.cmd("APOP %s %s" % (alice, "0" * 32)).decode(), "-ERR APOP is not enabled",
     "  and APOP is -ERR")
c.close()
ok("panic" not in inst.log(), "no panic in the log")
inst.stop()
inst.cleanup()
done()
