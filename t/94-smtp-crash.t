#!/usr/bin/env python3
"""t/94-smtp-crash.t - kill -9 of smtp and of qmgr in the middle of
deliveries to a slow server (t/lib/fakesmtp.py, 1.5 s before each reply to
the end of the data), then let master start them again: every message
arrives, and duplicates are only what was in flight at the kills (at most
one per smtp process then running).  Recipients go to [127.0.0.2]:port by
relayhost (no DNS).  Skips without root."""
import atexit
import collections
import os
import re
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, diag, done, skip_all  # noqa: E402

if os.geteuid() != 0:
    skip_all("master must run as root")

import posthorn  # noqa: E402
from fakesmtp import FakeSMTP, stop_all  # noqa: E402
from smtptest import free_port_on, problems  # noqa: E402

atexit.register(stop_all)
work = tempfile.mkdtemp(prefix="posthorn-smtp-crash-")
atexit.register(shutil.rmtree, work, True)
PORT = free_port_on(["127.0.0.2"])
N = 16

slow = FakeSMTP(work, "127.0.0.2", PORT, {"dot_delay": 1.5})
inst = posthorn.Instance(main_conf={"relayhost": "[127.0.0.2]:%d" % PORT,
                                    "initial_destination_concurrency": "4"})
r = inst.start()
ok(r.returncode == 0, "the instance starts") or diag(r.stderr)


def arrived():
    c = collections.Counter()
    for m in slow.messages():
        mm = re.search(rb"Subject: crash (\d+)\r\n", m["data"])
        if mm:
            c[int(mm.group(1))] += 1
    return c


for i in range(N):
    inst.submit(b"From: <s@example.test>\r\nSubject: crash %d\r\n\r\nbody %d\r\n" % (i, i),
                "s@example.test", ["r%d@remote.example" % i])

def remote_peers():
    """{socket inode: (remote address, port)} of the TCP connections."""
    out = {}
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            ip, port = fields[2].split(":")
            addr = ".".join(str(b) for b in reversed(bytes.fromhex(ip)))
            out[fields[9]] = (addr, int(port, 16))
    return out


def delivering():
    """The smtp processes with a connection to the slow server: in the
    middle of a delivery (not one that master is still starting: killing
    that would have master hold the service back for a minute)."""
    peers = remote_peers()
    busy = []
    for pid in inst.service_pids("smtp"):
        try:
            fds = os.listdir("/proc/%d/fd" % pid)
            links = [os.readlink("/proc/%d/fd/%s" % (pid, fd)) for fd in fds]
        except OSError:
            continue
        for l in links:
            if l.startswith("socket:[") and peers.get(l[8:-1]) == ("127.0.0.2", PORT):
                busy.append(pid)
                break
    return busy


ok(slow.wait(lambda: len(slow.messages()) >= 1 and len(delivering()) >= 2, 60),
   "deliveries are under way")
smtps = delivering()
ok(smtps, "smtp processes in the middle of deliveries (%d)" % len(smtps))
for p in smtps:
    os.kill(p, signal.SIGKILL)
killed = set(smtps)
in_flight = len(smtps)

ok(slow.wait(lambda: len(slow.messages()) >= N // 2, 90), "deliveries go on after smtp died")
slow.wait(lambda: delivering(), 30)
qmgrs = inst.service_pids("qmgr")
smtps = inst.service_pids("smtp")
is_(len(qmgrs), 1, "one qmgr")
for p in qmgrs:
    os.kill(p, signal.SIGKILL)
killed |= set(qmgrs)
in_flight += len(smtps)

got = slow.wait(lambda: len(arrived()) >= N and arrived(), 180) or arrived()
is_(sorted(got), list(range(N)), "every message arrived (after qmgr came back)")
dups = sum(got.values()) - len(got)
ok(dups <= in_flight, "duplicates only for what was in flight: %d (at most %d)"
   % (dups, in_flight))
ok(inst.wait_for(lambda: inst.service_pids("qmgr")), "master started qmgr again")
bad = [l for l in problems(inst)
       if not any("process %d " % p in l for p in killed)]
ok(not bad, "no other crash, panic or fatal") or diag(bad)
inst.cleanup()
stop_all()
done()
