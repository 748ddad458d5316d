#!/usr/bin/env python3
"""t/67-smtpd-cleanup-keep.t - smtpd's connection to cleanup outlives a
session for a second (lib/smtpserver.c): sessions back to back hand their
messages to one cleanup process over one connection; the connection is let
go about a second after the last session, so an idle smtpd holds no
cleanup process; a kept connection that cleanup has closed meanwhile is
replaced before a message meets it.

One smtpd process (process limit 1) and cleanup with max_use=1: a cleanup
process takes one connection and exits when it ends, so the PID in
cleanup's log lines, and when that process exits, show how long smtpd's
connection lived."""
import os
import re
import signal
import smtplib
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, diag, done, skip_all  # noqa: E402

if os.geteuid() != 0:
    skip_all("master must run as root")

import posthorn  # noqa: E402
from posthorn import alive  # noqa: E402

inst = posthorn.Instance()
inst.edit_service("smtpd", maxproc=1)
inst.edit_service("cleanup", "-o max_use=1")
r = inst.start()
is_(r.returncode, 0, "an instance with one smtpd process and cleanup's max_use = 1") \
    or diag(r.stderr)
user, home = inst.add_user()
rcpt = "%s@mail.example.test" % user
port = inst.port(25)
N = [0]


def session():
    """One SMTP session with one message; returns (reply code, queue ID,
    the PID of the cleanup process that took it)."""
    N[0] += 1
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=30)
    s.ehlo()
    s.mail("someone@example.org")
    s.rcpt(rcpt)
    code, text = s.data(("Subject: keep %d\r\n\r\nbody\r\n" % N[0]).encode())
    s.quit()
    m = re.search(r"queued as (\S+)", text.decode())
    qid = m.group(1) if m else None
    pid = None
    if qid:
        found = inst.wait_for(lambda: re.search(r"cleanup\[(\d+)\]: %s: " % re.escape(qid),
                                                inst.log()), timeout=5)
        pid = int(found.group(1)) if found else None
    return code, qid, pid


code1, _, pid1 = session()
code2, _, pid2 = session()
is_((code1, code2), (250, 250), "two sessions back to back, one message each")
ok(pid1 is not None and pid1 == pid2,
   "  both messages went to one cleanup process, which takes one connection: %r, %r"
   % (pid1, pid2))
ok(pid1 and alive(pid1), "  that connection is still open right after the session")
t0 = time.time()
gone = inst.wait_for(lambda: not alive(pid1), timeout=5)
took = time.time() - t0
ok(gone and 0.5 < took < 3,
   "  and is let go about a second later: the cleanup process ends (%.2fs)" % took)

# A kept connection whose cleanup process went away.
code3, _, pid3 = session()
ok(code3 == 250 and pid3 and pid3 != pid1, "a third session gets a new cleanup process")
# cleanup tells qmgr after it answers smtpd: let it finish with the message
# (a kill in between only delays it to qmgr's next scan of incoming/).
ok(inst.wait_copies(home, "keep 3"), "message 3 delivered")
mark = len(inst.log())
os.kill(pid3, signal.SIGKILL)
inst.wait_for(lambda: not alive(pid3), timeout=5)
code4, _, pid4 = session()
ok(code4 == 250 and pid4 and pid4 != pid3,
   "the kept connection's cleanup killed: the next message is accepted through a new one")
log = inst.log()[mark:]
ok("to cleanup" not in log,
   "  without a warning: the dead connection was replaced before use") or diag(log)

for n in (1, 2, 4):
    ok(inst.wait_copies(home, "keep %d" % n), "message %d delivered" % n)
inst.stop()
done()
