#!/usr/bin/env python3
"""master and mailctl against a hostile or careless environment: started
with stdin/out/err closed, with signals blocked or ignored and a stray
descriptor inherited; a service that exits 0 before serving; a spool below
a directory another user controls; a singleton service across a reload."""
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, diag, done, skip_all  # noqa: E402
import posthorn  # noqa: E402

if os.geteuid() != 0:
    skip_all("master must run as root")

inst = posthorn.Instance()
port = inst.port(25)
inst.write_master([
    "127.0.0.1:%d inet n - - testsvc --user=network_user" % port,
    "quitter unix y - - testsvc --exit-at-start",
    "single unix y 1 1 testsvc --multi --no-idle-exit --user=mail_owner",
])

# Start with fds 0-2 closed, SIGUSR1 blocked, SIGUSR2 ignored and a stray fd.
stray = tempfile.TemporaryFile()
stray_fd = stray.fileno()
os.set_inheritable(stray_fd, True)


def hostile():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)


r = subprocess.run(["sh", "-c", 'exec "$0" -c "$1" start <&- >&- 2>&-', posthorn.MAILCTL, inst.etc],
                   preexec_fn=hostile, pass_fds=(stray_fd,), timeout=60)
is_(r.returncode, 0, "start with stdin/stdout/stderr closed succeeds")
inst.master_pid = inst.read_pid()
ok(inst.master_pid and posthorn.alive(inst.master_pid), "master runs")
r = inst.mailctl("start")
like(r.stderr, "already running", "its pid file lock holds (a second start is refused)")
is_(inst.status().returncode, 0, "status reaches it")

fds = {os.readlink("/proc/%d/fd/%s" % (inst.master_pid, f)) for f in os.listdir("/proc/%d/fd" % inst.master_pid)}
ok(not any("(deleted)" in f and "tmp" in f for f in fds), "master did not keep the caller's stray descriptor")

s, f = inst.connect(port)
greet = f.readline().decode()
svc = int(greet.split(" pid ")[1].split()[0])
st = posthorn.proc_status(svc)
is_(st["SigBlk"], ["0000000000000000"], "a service starts with no signal blocked")
is_(int(st["SigIgn"][0], 16), 1 << (signal.SIGPIPE - 1), "and ignores only SIGPIPE (its own choice)")
with open("/proc/%d/stat" % svc) as fh:
    stat = fh.read()
fields = stat[stat.rindex(")") + 2:].split()
is_(int(fields[3]), svc, "a service leads its own session (no controlling terminal)")
is_(int(fields[4]), 0, "and has no terminal")
f.close()
s.close()

# A service that exits 0 before it ever served is throttled too.
import socket  # noqa: E402
for _ in range(3):
    try:
        u = socket.socket(socket.AF_UNIX)
        u.connect(os.path.join(inst.spool, "private", "quitter"))
        u.close()
    except OSError:
        pass
    time.sleep(0.2)
ok(inst.wait_for(lambda: "service quitter" in inst.log() and "throttling" in inst.log(), 5),
   "a service exiting 0 at start-up is throttled")
is_(inst.log().count("service quitter: /"), 1, "once, not in a loop")


# A singleton (maxproc 1) never runs twice, not even across a reload.
def singles():
    """master's processes of the singleton service."""
    out = []
    for p in inst.procs():
        try:
            if b"\0single\0" in open("/proc/%d/cmdline" % p, "rb").read():
                out.append(p)
        except OSError:
            pass
    return out


first = inst.wait_for(singles, 5)
is_(len(first), 1, "the singleton service runs one process")
u = socket.socket(socket.AF_UNIX)
u.connect(os.path.join(inst.spool, "private", "single"))
u.settimeout(5)
ufile = u.makefile("rwb", buffering=0)
ufile.readline()
r = inst.mailctl("reload")
is_(r.returncode, 0, "reload")
most = 0
for _ in range(10):
    most = max(most, len(singles()))
    time.sleep(0.1)
is_(most, 1, "one singleton process all through the reload")
is_(singles(), first, "the old singleton finishes its session before a new one starts")
ufile.write(b"quit\r\n")
ufile.close()
u.close()
new = inst.wait_for(lambda: [p for p in singles() if p not in first], 5)
ok(new, "the new generation's singleton starts once the old one is gone")
if not ok(not any(posthorn.alive(p) for p in first), "and the old one is gone"):
    for p in first + (new or []):
        try:
            diag("%d: %s %s" % (p, open("/proc/%d/stat" % p).read()[:80], open("/proc/%d/cmdline" % p, "rb").read()))
        except OSError as e:
            diag("%d: %s" % (p, e))

# Bad input on the control socket: garbage, a huge frame header, a
# silent client.  master logs it, drops that client and carries on.
import struct  # noqa: E402
ctl = os.path.join(inst.spool, "pid", "master.sock")
for junk in (b"GET / HTTP/1.0\r\n\r\n" * 4, struct.pack("!IIII", 0, 0xFFFFFFF0, 1, 0) + b"x" * 64):
    c = socket.socket(socket.AF_UNIX)
    c.connect(ctl)
    c.sendall(junk)
    c.settimeout(10)
    try:
        c.recv(100)
    except OSError:
        pass
    c.close()
silent = socket.socket(socket.AF_UNIX)
silent.connect(ctl)
r = inst.status()
is_(r.returncode, 0, "status works after garbage and beside a silent control client")
silent.close()
ok(posthorn.alive(inst.master_pid), "master survives bad control input")
like(inst.log(), "control: bad hello", "and logs it")

inst.stop()
inst.cleanup()

# A spool below a directory another user owns is refused: root would chown
# and chmod through paths that user could swap for symlinks.
top = tempfile.mkdtemp(prefix="posthorn-t-hostile-")
os.chmod(top, 0o755)
os.chown(top, 65534, 65534)
inst2 = posthorn.Instance()
inst2.set_main({"queue_directory": os.path.join(top, "spool")})
r = inst2.mailctl("start")
is_(r.returncode, 1, "start refuses a queue_directory below a directory owned by another user")
like(r.stderr, "not owned by root", "and says why")
ok(not os.path.exists(os.path.join(top, "spool")), "nothing was created there")
inst2.cleanup()
os.rmdir(top)
done()
