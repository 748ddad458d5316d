"""nsd.py - a real authoritative DNS server (nsd) for integration tests,
serving test zones on 127.0.0.1 and a free port, the way t/14-dns.t starts
its own.

Interface:
    missing()                  the programs of NEEDED not installed (skip_all
                               with them); NEEDED = ("nsd",)
    free_port()                a port free for both UDP and TCP on 127.0.0.1
    Nsd(zones, port=None)      write each (zone name, zone file text) to a
                               temporary directory and start nsd in the
                               foreground as our child; ready when it answers
                               a SOA query for the first zone.  .port, .dir,
                               .stop() (SIGTERM, then SIGKILL by PID to any
                               child of nsd still running); also at exit.
    SOA                        the SOA and NS lines every test zone of test.
                               starts with (ns.test. is 127.0.0.1)
    DeadServer()               a UDP socket on 127.0.0.1 that is bound and
                               never read: a DNS server that never answers.
                               .port, .close()

Errors: RuntimeError when nsd does not start within 15 s (its log is in
the message).  Processes are found and killed by PID only.
"""
import atexit
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

SOA = "@ IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300\n@ IN NS ns.test.\n"

NEEDED = ("nsd",)
_servers = []


def which(p):
    return shutil.which(p, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def missing():
    return [p for p in NEEDED if which(p) is None]


def free_port():
    for _ in range(100):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket()
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free port")


def _children_of(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
                if int(st[st.rindex(")") + 2:].split()[1]) == pid:
                    out.append(int(d))
            except (OSError, ValueError):
                pass
    return out


def _running(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
        return st[st.rindex(")") + 2] not in "ZX"
    except (OSError, ValueError):
        return False


def _wire_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


class Nsd:
    def __init__(self, zones, port=None):
        self.dir = tempfile.mkdtemp(prefix="posthorn-nsd-")
        self.port = port or free_port()
        self.proc = None
        lines = ["server:",
                 "    ip-address: 127.0.0.1@%d" % self.port,
                 "    port: %d" % self.port,
                 '    username: ""', '    chroot: ""',
                 '    zonesdir: "%s"' % self.dir,
                 '    database: ""',
                 '    zonelistfile: "%s/zone.list"' % self.dir,
                 '    xfrdfile: "%s/xfrd.state"' % self.dir,
                 '    xfrdir: "%s"' % self.dir,
                 '    pidfile: "%s/nsd.pid"' % self.dir,
                 '    logfile: "%s/nsd.log"' % self.dir,
                 "    server-count: 1", "    do-ip6: no", "    verbosity: 1",
                 "remote-control:", "    control-enable: no"]
        for i, (name, text) in enumerate(zones):
            path = os.path.join(self.dir, "zone%d" % i)
            with open(path, "w") as f:
                f.write(text)
            lines += ["zone:", "    name: %s" % name, '    zonefile: "%s"' % path]
        conf = os.path.join(self.dir, "nsd.conf")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = subprocess.Popen([which("nsd"), "-d", "-c", conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _servers.append(self)
        q = struct.pack(">HHHHHH", 0x1234, 0, 1, 0, 0, 0) + _wire_name(zones[0][0]) \
            + struct.pack(">HH", 6, 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.2)
        end = time.time() + 15
        try:
            while time.time() < end and self.proc.poll() is None:
                s.sendto(q, ("127.0.0.1", self.port))
                try:
                    if s.recv(4096)[:2] == b"\x12\x34":
                        return
                except socket.timeout:
                    pass
        finally:
            s.close()
        log = os.path.join(self.dir, "nsd.log")
        text = open(log).read() if os.path.exists(log) else "no nsd.log"
        self.stop()
        raise RuntimeError("nsd did not start: " + text)

    def stop(self):
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        kids = _children_of(p.pid)
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        end = time.time() + 5
        while time.time() < end and any(_running(k) for k in kids):
            time.sleep(0.05)
        for k in kids:
            if _running(k):
                try:
                    os.kill(k, signal.SIGKILL)
                except OSError:
                    pass
        # nsd's children are orphaned by its exit: reap them if we are
        # their subreaper (t/lib/posthorn.py makes the test one).
        todo, end = list(kids), time.time() + 2
        while todo and time.time() < end:
            for k in list(todo):
                try:
                    if os.waitpid(k, os.WNOHANG)[0] == k:
                        todo.remove(k)
                except ChildProcessError:
                    todo.remove(k)
            if todo:
                time.sleep(0.02)
        shutil.rmtree(self.dir, True)
        if self in _servers:
            _servers.remove(self)


class DeadServer:
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


@atexit.register
def _stop_all():
    for s in list(_servers):
        s.stop()
