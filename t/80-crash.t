#!/usr/bin/env python3
"""Nothing lost, nothing doubled: kill -9 of qmgr, cleanup and local at
random moments while 500 messages arrive over SMTP, then a restart.

Every message that got a 250 must be in the Maildir exactly once.  A
message whose 250 never arrived (cleanup killed mid-commit) may be there
once or not at all, never twice.  The queue must be empty at the end.
"""
import collections
import os
import random
import re
import signal
import smtplib
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from posthorn import BUILD, Instance, alive, children_of, proc_cmdline  # noqa: E402
from tap import skip_all, diag, done, is_, ok  # noqa: E402

MESSAGES = 500
SENDERS = 5
inst = Instance(main_conf={
    # Retries come at once, so the test does not wait for the backoff.
    "minimal_backoff_time": "1s",
    "maximal_backoff_time": "2s",
    "queue_run_delay": "1s",
    # A killed service is back after a second, to be killed again.
    "service_throttle_time": "1s",
})
r = inst.start()
ok(r.returncode == 0, "instance starts") or diag(r.stderr)
user, home = inst.add_user()
rcpt = "%s@mail.example.test" % user

accepted = set()        # message numbers that got a 250
unsure = set()          # sent, but the answer was lost or a 4xx
lock = threading.Lock()
sending = True


def sender(first, count):
    n = first
    while n < first + count:
        try:
            s = smtplib.SMTP("127.0.0.1", inst.port(25), timeout=60)
            while n < first + count:
                body = ("Subject: crash %d\r\nMessage-ID: <crash-%d@test>\r\n\r\n"
                        "message %d\r\n" % (n, n, n))
                try:
                    s.sendmail("sender@example.org", [rcpt], body)
                    with lock:
                        accepted.add(n)
                except smtplib.SMTPResponseException as e:
                    with lock:
                        unsure.add(n)
                    if e.smtp_code == 421:
                        raise
                n += 1
            s.quit()
        except (smtplib.SMTPException, OSError):
            # The session died (its cleanup was killed): that message is
            # unsure; go on with a new session.
            with lock:
                unsure.add(n)
            n += 1
            time.sleep(0.05)


def victims():
    """PIDs of the qmgr, cleanup and local processes (local's delivery
    children included)."""
    out = []
    for pid, name in inst.procs().items():
        if name in ("qmgr", "cleanup", "local"):
            out.append((pid, name))
            if name == "local":
                out += [(c, "local child") for c in children_of(pid)]
    return out


kills = collections.Counter()


def killer():
    """Kill one process every 20-150 ms, taking the kinds in turn so each
    gets its share whatever the timing."""
    rnd = random.Random(os.getpid())
    kinds = ["cleanup", "qmgr", "local child", "local"]
    turn = 0
    while sending:
        time.sleep(rnd.uniform(0.02, 0.15))
        kind = kinds[turn % len(kinds)]
        turn += 1
        v = [pid for pid, name in victims() if name == kind]
        if v:
            try:
                os.kill(rnd.choice(v), signal.SIGKILL)
                kills[kind] += 1
            except OSError:
                pass


threads = [threading.Thread(target=sender, args=(i * MESSAGES // SENDERS, MESSAGES // SENDERS))
           for i in range(SENDERS)]
k = threading.Thread(target=killer)
k.start()
for t in threads:
    t.start()
for t in threads:
    t.join()
sending = False
k.join()
diag("kills: %s; accepted %d, unsure %d" % (dict(kills), len(accepted), len(unsure)))
ok(kills["cleanup"] and kills["qmgr"] and kills["local"] + kills["local child"],
   "qmgr, cleanup and local were killed while mail arrived")
ok(len(accepted) >= MESSAGES // 2, "most messages were accepted")

# Restart the whole instance: active/ goes back to incoming/.
r = inst.stop()
ok(r.returncode == 0, "stop") or diag(r.stderr)
r = inst.start()
ok(r.returncode == 0, "start again") or diag(r.stderr)


def delivered():
    return inst.count_by_subject(home, "crash")


def queue_empty():
    return all(not os.listdir(os.path.join(inst.spool, d))
               for d in ("incoming", "active", "deferred"))


inst.wait_for(lambda: accepted <= set(delivered()) and queue_empty(), timeout=120, step=0.2)
counts = delivered()
missing = sorted(accepted - set(counts))
twice = sorted(n for n, c in counts.items() if c > 1)
is_(missing, [], "every message that got a 250 was delivered")
is_(twice, [], "no message was delivered twice")
stray = sorted(set(counts) - accepted - unsure)
is_(stray, [], "nothing was delivered that was never sent")
ok(queue_empty(), "the queue is empty") or diag(
    str({d: os.listdir(os.path.join(inst.spool, d)) for d in ("incoming", "active", "deferred")}))
# A delivery child killed before its results leaves the files it wrote in
# tmp/ (a batch: local_delivery_batch_limit at most; Maildir readers remove
# tmp/ files after 36 hours), written in part or in whole; each whole one
# is a message that the retry delivered into new/, never the only copy;
# and nothing else leaves any.
tmpdir = os.path.join(home, "Maildir", "tmp")
leftovers = os.listdir(tmpdir)
ok(len(leftovers) <= 32 * (kills["local child"] + kills["local"]),
   "Maildir/tmp holds at most a batch per killed delivery process") or diag(str(leftovers))
only_tmp = []
for name in leftovers:
    with open(os.path.join(tmpdir, name), "rb") as f:
        m = re.search(rb"^Subject: crash (\d+)$", f.read(), re.M)
    if m and int(m.group(1)) not in counts:
        only_tmp.append(name)
is_(only_tmp, [], "every message left in tmp/ is in new/ too")
diag("delivered %d distinct messages (%d accepted, %d unsure)"
     % (len(counts), len(accepted), len(unsure)))
inst.cleanup()
done()
