#!/usr/bin/env python3
"""master and mailctl on a real instance: status, restart of a killed
process, throttling of a service that fails at start-up, wakeups, reload,
refusing a second start, and a stop that leaves nothing behind."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, diag, done, skip_all  # noqa: E402
import posthorn  # noqa: E402

if os.geteuid() != 0:
    skip_all("master must run as root")

inst = posthorn.Instance(main_conf={"service_throttle_time": "60s"})
echo_port = inst.port(25)
multi_port = posthorn.free_port()
inst.write_master([
    "127.0.0.1:%d  inet  n  -  3  testsvc --user=network_user --chroot=spool" % echo_port,
    "127.0.0.1:%d  inet  n  -  -  testsvc --multi --user=mail_owner --chroot=empty" % multi_port,
    "ticker        unix  y  1  1  testsvc --user=mail_owner --no-idle-exit",
    "broken        unix  y  -  -  testsvc --fail-at-start",
])

r = inst.mailctl("check")
is_(r.returncode, 0, "mailctl check accepts the instance")
diag(r.stderr)

r = inst.start()
is_(r.returncode, 0, "mailctl start succeeds")
diag(r.stdout + r.stderr)
like(r.stdout, "master pid", "start says which pid master has")
ok(inst.master_pid and posthorn.alive(inst.master_pid), "master is running")


def talk(port, text=b"hello\r\n"):
    s, f = inst.connect(port)
    try:
        greeting = f.readline().decode()
        f.write(text)
        echo = f.readline()
        f.write(b"quit\r\n")
        return greeting, echo
    finally:
        s.close()


greeting, echo = talk(echo_port)
like(greeting, "testsvc 127.0.0.1:%d" % echo_port, "a connection is served by the service")
is_(echo, b"hello\r\n", "the service echoes")
greeting, echo = talk(multi_port)
like(greeting, "testsvc", "a SERVER_MULTI service answers too")

# Status lists every service.
r = inst.status()
is_(r.returncode, 0, "mailctl status succeeds")
diag(r.stdout)
for name in ("127.0.0.1:%d" % echo_port, "ticker", "broken"):
    like(r.stdout, name, "status lists service %s" % name)
like(r.stdout, "master: running, pid %d" % inst.master_pid, "status shows master's pid")

# The wakeup service runs all the time and is woken every second.
ok(inst.wait_for(lambda: "testsvc ticker wakeup" in inst.log(), 5), "the wakeup service is woken")

# A service that fails at start-up is throttled, not respawned in a loop.
import socket  # noqa: E402
for attempt in range(3):
    try:
        u = socket.socket(socket.AF_UNIX)
        u.connect(os.path.join(inst.spool, "private", "broken"))
        u.close()
    except OSError as e:
        diag("connect to broken: %s" % e)
    time.sleep(0.2)
ok(inst.wait_for(lambda: "throttling" in inst.log(), 5), "the broken service is throttled")
time.sleep(1.5)
fails = inst.log().count("service broken: process")
is_(fails, 1, "the broken service was started once, not in a loop")
r = inst.status()
ok(any("broken" in l and "throttled" in l for l in r.stdout.splitlines()),
   "status shows the broken service as throttled")

# A killed process of an always-on service is restarted.
def ticker_pid():
    st = inst.status().stdout.splitlines()
    for i, l in enumerate(st):
        if l.startswith("ticker"):
            for m in st[i + 1:]:
                if m.strip().startswith("pid"):
                    return int(m.split()[1])
                break
    return None


old = inst.wait_for(ticker_pid, 5)
ok(old, "the ticker service has a process (%s)" % old)
os.kill(old, signal.SIGKILL)
new = inst.wait_for(lambda: (ticker_pid() or old) != old and ticker_pid(), 5)
ok(new and new != old and posthorn.alive(new), "a process killed with SIGKILL is restarted (%s -> %s)" % (old, new))
like(inst.log(), "killed by signal 9", "the kill is logged")

# An on-demand service whose process was killed is started again on demand.
before = inst.service_pids("testsvc")
for p in list(before):
    if "127.0.0.1:%d" % echo_port in open("/proc/%d/cmdline" % p).read().replace("\0", " "):
        os.kill(p, signal.SIGKILL)
time.sleep(0.3)
greeting, echo = talk(echo_port)
like(greeting, "testsvc", "the on-demand service answers after its process was killed")

# Concurrent sessions make master start more processes, up to maxproc (3).
conns = []
for i in range(5):
    s, f = inst.connect(echo_port)
    conns.append((s, f))
served = []
for s, f in conns[:3]:
    served.append(f.readline())
ok(all(b"testsvc" in g for g in served), "three concurrent sessions are served")
is_(inst.wait_for(lambda: sum(1 for p in inst.procs()
                              if "127.0.0.1:%d" % echo_port in open("/proc/%d/cmdline" % p).read().replace("\0", " ")) == 3, 5), True,
    "master runs at most maxproc=3 processes for the service")
for s, f in conns:
    f.close()
    s.close()

# A second start is refused with a clear message.
r = inst.mailctl("start")
is_(r.returncode, 1, "a second start fails")
like(r.stderr, "already running", "and says Posthorn is already running")

# Running master directly is refused too, by the pid file lock.
master_bin = os.path.join(inst.libexec, "master")
import subprocess  # noqa: E402
r = subprocess.run([master_bin, "-c", inst.etc, "-f"], capture_output=True, text=True, timeout=10)
is_(r.returncode, 1, "a second master exits")
like(r.stderr, "already running (pid %d" % inst.master_pid, "a second master names the running one")

# reload picks up a changed master.conf.
new_port = posthorn.free_port()
with open(os.path.join(inst.etc, "master.conf"), "a") as f:
    f.write("127.0.0.1:%d inet n - - testsvc --user=network_user\n" % new_port)
r = inst.mailctl("reload")
is_(r.returncode, 0, "mailctl reload succeeds")
like(r.stdout, "reloaded", "reload reports success")
greeting, echo = talk(new_port)
like(greeting, "testsvc 127.0.0.1:%d" % new_port, "a service added by reload answers")
greeting, echo = talk(echo_port)
like(greeting, "testsvc", "an existing service still answers after reload")
like(inst.status().stdout, "127.0.0.1:%d" % new_port, "status lists the new service")

# A broken master.conf is refused at reload, and the running config stays.
with open(os.path.join(inst.etc, "master.conf"), "a") as f:
    f.write("bogus bogus n - - testsvc\n")
r = inst.mailctl("reload")
is_(r.returncode, 1, "reload of a broken master.conf fails")
like(r.stderr, "master.conf:", "and names the file and line")
greeting, echo = talk(new_port)
like(greeting, "testsvc", "the running configuration stays in force")

# stop leaves no process behind.
pids = inst.track() | set(inst.procs())
r = inst.stop()
is_(r.returncode, 0, "mailctl stop succeeds")
diag(r.stderr)
like(r.stdout, "stopped", "stop says so")
time.sleep(0.2)
left = [p for p in pids if posthorn.alive(p)]
is_(left, [], "no process is left after stop")
ok(not os.path.exists(os.path.join(inst.spool, "pid", "master.sock")), "the control socket is gone")
r = inst.status()
is_(r.returncode, 1, "status after stop fails")
like(r.stderr, "not running", "and says Posthorn is not running")
r = inst.stop()
is_(r.returncode, 1, "stop when stopped fails")
like(r.stderr, "not running", "and says it is not running")

inst.cleanup()
done()
