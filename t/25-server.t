#!/usr/bin/env python3
"""The daemon skeleton and master's signals: max_use and max_idle end a
service process, -o overrides reach the service, SIGHUP reloads, a
reloaded service's busy process finishes its session, and SIGTERM stops
everything within seconds."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, diag, done, skip_all  # noqa: E402
import posthorn  # noqa: E402

if os.geteuid() != 0:
    skip_all("master must run as root")

inst = posthorn.Instance()
use_port = inst.port(25)
idle_port = inst.port(587)
inst.write_master([
    "127.0.0.1:%d inet n - 1 testsvc --user=network_user -o max_use=2" % use_port,
    "127.0.0.1:%d inet n - 1 testsvc --user=network_user --chroot=spool -o max_idle=1s" % idle_port,
    "127.0.0.1:%d inet n - 1 testsvc --user=network_user" % inst.port(143),
])
r = inst.start()
is_(r.returncode, 0, "start")


def session(port, keep=False):
    s, f = inst.connect(port)
    g = f.readline().decode()
    if keep:
        return s, f, g
    f.write(b"quit\r\n")
    s.close()
    return g


def _try(port):
    try:
        return session(port)
    except OSError:
        return None


def pid_of(greeting):
    return int(greeting.split(" pid ")[1].split()[0])


# max_use=2: the process serves two sessions, then a new one takes over.
p1 = pid_of(session(use_port))
p2 = pid_of(session(use_port))
is_(p1, p2, "one process serves the first two sessions")
ok(inst.wait_for(lambda: not posthorn.alive(p1), 5), "and exits after max_use sessions")
p3 = pid_of(session(use_port))
ok(p3 != p1, "a new process serves the third session")

# max_idle=1s: an idle process exits by itself.
q = pid_of(session(idle_port))
ok(inst.wait_for(lambda: not posthorn.alive(q), 5), "a process idle for max_idle exits")
ok("process %d " % q not in inst.log(), "an idle exit (in a chroot) is not reported as a failure")

# SIGHUP reloads; a session in progress survives the replacement.
s, f, g = session(use_port, keep=True)
busy = pid_of(g)
with open(os.path.join(inst.etc, "master.conf"), "a") as fh:
    fh.write("127.0.0.1:%d inet n - - testsvc --user=network_user\n" % inst.port(110))
os.kill(inst.master_pid, signal.SIGHUP)
ok(inst.wait_for(lambda: "reload -- configuration" in inst.log(), 5), "SIGHUP reloads")
g2 = inst.wait_for(lambda: _try(inst.port(110)), 5)
like(g2 or "", "testsvc", "the service added by the reload answers")
f.write(b"still here\r\n")
is_(f.readline(), b"still here\r\n", "a session in progress goes on after the reload")
f.write(b"quit\r\n")
s.close()
ok(inst.wait_for(lambda: not posthorn.alive(busy), 5),
   "the replaced process exits once its session is over")
g3 = session(use_port)
ok(pid_of(g3) != busy, "a new process of the new generation serves the next session")

# A client that waits while the only process is busy is served by that
# process as soon as its session ends (it takes waiting clients without
# going back to master) -- unless master has replaced it meanwhile: then
# the process of the new generation serves the waiting client.
one_port = inst.port(143)
s1, f1, g1 = session(one_port, keep=True)
s2, f2 = inst.connect(one_port)
f1.write(b"quit\r\n")
s1.close()
g2 = f2.readline().decode()
is_(pid_of(g2), pid_of(g1), "a client waiting at the end of a session is served by the same process")
s3, f3 = inst.connect(one_port)
os.kill(inst.master_pid, signal.SIGHUP)
ok(inst.wait_for(lambda: inst.log().count("reload -- configuration") >= 2, 5), "another reload")
time.sleep(0.3)
f2.write(b"quit\r\n")
s2.close()
g3 = (f3.readline() or b"").decode()
like(g3, "testsvc", "the client waiting across the reload is served")
ok(g3 and pid_of(g3) != pid_of(g1),
   "  by the new generation: the replaced process takes no waiting client") or diag(g3)
ok(inst.wait_for(lambda: not posthorn.alive(pid_of(g1)), 5), "  and the replaced process exits")
f3.write(b"quit\r\n")
s3.close()

# SIGTERM stops everything within seconds.
s, f, g = session(use_port, keep=True)
pids = inst.track() | set(inst.procs())
t0 = time.time()
os.kill(inst.master_pid, signal.SIGTERM)
gone = inst.wait_for(lambda: not any(posthorn.alive(p) for p in pids), 15)
ok(gone, "SIGTERM stops master and every service process")
diag("stopped in %.1fs" % (time.time() - t0))
s.close()
pidfile = os.path.join(inst.spool, "pid", "master.pid")
ok(not os.path.exists(pidfile) or os.path.getsize(pidfile) == 0, "the pid file is emptied")
inst.cleanup()
done()
