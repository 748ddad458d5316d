#!/usr/bin/env python3
"""Local submission under fire: kill -9 of pickup, cleanup and sendmail
itself at random moments while 600 messages are submitted with sendmail,
then a restart.

Every message whose sendmail exited 0 must be delivered.  cleanup removes
the maildrop file right after its commit, so a message can be delivered
twice only when cleanup died between those two system calls: the copies
beyond one are at most the cleanup kills (a pickup killed while it waits
for cleanup does not queue the message again).  A
killed sendmail leaves at most its unfinished .tmp file, never a message.
maildrop/ and the queue are empty at the end.
"""
import collections
import os
import random
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from posthorn import BUILD, Instance  # noqa: E402
from tap import diag, done, is_, ok  # noqa: E402

SENDMAIL = os.path.join(BUILD, "sbin", "sendmail")
MESSAGES = 600
SUBMITTERS = 6
inst = Instance(main_conf={
    "minimal_backoff_time": "1s",
    "maximal_backoff_time": "2s",
    "queue_run_delay": "1s",
    "service_throttle_time": "1s",
})
user, home = inst.add_user()
r = inst.start()
ok(r.returncode == 0, "instance starts") or diag(r.stderr)

accepted, unsure = set(), set()
running = {}            # pid -> Popen of the sendmails in progress
lock = threading.Lock()
sending = True


def submitter(first, count):
    for n in range(first, first + count):
        p = subprocess.Popen([SENDMAIL, "-C", inst.etc, user], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with lock:
            running[p.pid] = p
        try:
            p.communicate(b"Subject: pickup crash %d\n\nmessage %d\n" % (n, n), timeout=60)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            p.kill()
            p.wait()
        with lock:
            del running[p.pid]
            (accepted if p.returncode == 0 else unsure).add(n)


kills = collections.Counter()


def killer():
    rnd = random.Random(os.getpid())
    kinds = ["pickup", "cleanup", "sendmail"]
    turn = 0
    while sending:
        time.sleep(rnd.uniform(0.01, 0.06))
        kind = kinds[turn % len(kinds)]
        turn += 1
        if kind == "sendmail":
            with lock:
                v = list(running)
        else:
            v = [pid for pid, name in inst.procs().items() if name == kind]
        if v:
            try:
                os.kill(rnd.choice(v), signal.SIGKILL)
                kills[kind] += 1
            except OSError:
                pass


threads = [threading.Thread(target=submitter, args=(i * MESSAGES // SUBMITTERS,
                                                    MESSAGES // SUBMITTERS))
           for i in range(SUBMITTERS)]
k = threading.Thread(target=killer)
k.start()
for t in threads:
    t.start()
for t in threads:
    t.join()
sending = False
k.join()
diag("kills: %s; accepted %d, unsure %d" % (dict(kills), len(accepted), len(unsure)))
ok(kills["pickup"] and kills["cleanup"] and kills["sendmail"],
   "pickup, cleanup and sendmail were killed while mail was submitted")
ok(len(accepted) >= MESSAGES // 2, "most submissions succeeded")

r = inst.stop()
ok(r.returncode == 0, "stop") or diag(r.stderr)
r = inst.start()
ok(r.returncode == 0, "start again") or diag(r.stderr)


def delivered():
    return inst.count_by_subject(home, "pickup crash")


def maildrop():
    return [n for n in os.listdir(os.path.join(inst.spool, "maildrop")) if not n.startswith(".")]


def settled():
    return (accepted <= set(delivered()) and not maildrop()
            and all(not os.listdir(os.path.join(inst.spool, d))
                    for d in ("incoming", "active", "deferred")))


inst.wait_for(settled, timeout=120, step=0.2)
counts = delivered()
is_(sorted(accepted - set(counts)), [], "every message whose sendmail exited 0 was delivered")
extra = sum(c - 1 for c in counts.values())
ok(extra <= kills["cleanup"],
   "copies beyond one (%d) are at most the cleanup kills (%d)" % (extra, kills["cleanup"]))
is_(sorted(set(counts) - accepted - unsure), [], "nothing was delivered that was never sent")
is_(maildrop(), [], "maildrop/ is empty")
partial = [n for n in os.listdir(os.path.join(inst.spool, "maildrop")) if n.startswith(".tmp")]
ok(len(partial) <= kills["sendmail"], "at most one unfinished .tmp file per killed sendmail")
is_(os.listdir(os.path.join(inst.spool, "corrupt")), [], "nothing went to corrupt/")
diag("delivered %d distinct messages, %d extra copies" % (len(counts), extra))
inst.cleanup()
done()
