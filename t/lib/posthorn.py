"""posthorn.py - start and drive a real Posthorn instance for integration tests.

BUILD is where the tests find the programs: a copy of the build tree's
sbin/, libexec/posthorn/ and t/ tools, made at import in a directory every
account can reach (BUILD_TREE is the build tree itself, for make).

Instance(services=...) makes a temporary directory with `mailctl init` on a
free loopback port base, points daemon_directory at a directory of links to
the freshly built programs (plus t/testsvc), and writes the given master.conf
service lines.  Its resolver settings never reach the real DNS (a
forwarder that never answers; loopback's reverse zone fails at once, so
smtpd's clients are unknown[127.x.y.z]); a test that needs DNS sets
dns_stub_zones to its own server (t/lib/nsd.py).
start(), stop(), mailctl(...), status(), log(), procs(); edit_service()
changes a program's master.conf lines before start().
cleanup() kills, by PID, every process the instance started (master and all
its descendants) and removes the directory; it runs at exit too, so a failing
test never leaves processes behind.

add_user() makes a throwaway login account (home under the instance
directory) that receives mail; it is removed again by cleanup().
maildir(user) lists the messages delivered to it.  submit() hands a
message to cleanup over its socket, as smtpd does.
"""
import atexit
import collections
import ctypes
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The build tree (for make), and BUILD: a copy of its programs in a fresh
# root-owned directory under /tmp that every account can reach, so that
# tests which run mailctl or sendmail as another user pass wherever the
# checkout is (root's home is mode 0700), and fail only for the reason
# they test.
BUILD_TREE = os.environ.get("POSTHORN_BUILD") or os.path.join(TOP, "build")


def _stage_programs(tree):
    stage = tempfile.mkdtemp(prefix="posthorn-build-")
    for sub in ("sbin", os.path.join("libexec", "posthorn"), "t"):
        src, dst = os.path.join(tree, sub), os.path.join(stage, sub)
        os.makedirs(dst, exist_ok=True)
        for name in os.listdir(src):
            path = os.path.join(src, name)
            if os.path.islink(path) or os.path.isfile(path):
                shutil.copy2(path, os.path.join(dst, name), follow_symlinks=False)
    for root, dirs, _ in os.walk(stage):
        os.chmod(root, 0o755)
    atexit.register(shutil.rmtree, stage, True)     # runs after the instances' cleanup
    return stage


BUILD = _stage_programs(BUILD_TREE)
MAILCTL = os.path.join(BUILD, "sbin", "mailctl")
STD_PORTS = (25, 587, 465, 110, 995, 143, 993)
_instances = []
# A UDP socket bound for the life of the test and never read: a DNS server
# that never answers.
_DEAD_DNS = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
_DEAD_DNS.bind(("127.0.0.1", 0))

# Become a subreaper: master daemonizes (its parent exits), and a killed
# master's children are orphaned; both then stay our descendants, so
# cleanup can find and kill every one of them by PID.
PR_SET_CHILD_SUBREAPER = 36
ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def port_free(port, host="127.0.0.1"):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port_base():
    # Below Linux's ephemeral range (32768-60999): a port the instance is
    # about to bind is never some client's local port of the moment.
    # Nor another instance's of this test: instances made one after the
    # other and started later would all find the same ports free.
    taken = set(getattr(i, "port_base", None) for i in _instances)
    for _ in range(200):
        base = random.randrange(10000, 32000, 1000)
        if base not in taken and all(port_free(base + p) for p in STD_PORTS):
            return base
    raise RuntimeError("no free port base")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def children_of(pid):
    """All descendants of pid, from /proc."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
                parent[int(d)] = int(st[st.rindex(")") + 2:].split()[1])
            except (OSError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c, pp in parent.items():
            if pp == p:
                out.append(c)
                todo.append(c)
    return out


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
        return st[st.rindex(")") + 2] != "Z"
    except OSError:
        return False


def proc_status(pid):
    """Uid/Gid/Groups/PPid lines of /proc/PID/status as a dict."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


def proc_root(pid):
    return os.readlink("/proc/%d/root" % pid)


def proc_cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read().split(b"\0")[0].decode()


def reap():
    """Collect exited descendants (we are their subreaper)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


class Instance:
    def __init__(self, services=None, main_conf=None, hostname="mail.example.test",
                 domain="example.test"):
        self.dir = tempfile.mkdtemp(prefix="posthorn-t-")
        os.chmod(self.dir, 0o755)
        self.port_base = free_port_base()
        self.etc = os.path.join(self.dir, "etc")
        self.spool = os.path.join(self.dir, "spool")
        self.logfile = os.path.join(self.dir, "log", "maillog")
        self.master_pid = None
        self.known_pids = set()
        self.users = []
        r = self.mailctl("init", self.dir, "--hostname", hostname, "--domain", domain,
                         "--port-base", str(self.port_base), confdir=False)
        if r.returncode != 0:
            raise RuntimeError("mailctl init failed: " + r.stderr)
        # The programs: links to the build tree, plus the test service.
        self.libexec = os.path.join(self.dir, "libexec")
        os.mkdir(self.libexec)
        d = os.path.join(BUILD, "libexec", "posthorn")
        for name in os.listdir(d):
            os.symlink(os.path.join(d, name), os.path.join(self.libexec, name))
        os.symlink(os.path.join(BUILD, "t", "testsvc"), os.path.join(self.libexec, "testsvc"))
        # No test instance asks the real DNS: the forwarders are a loopback
        # socket that never answers, and loopback's reverse zone, which
        # libunbound would answer itself (127.0.0.1 is "localhost"), goes to
        # 127.255.255.255, where no query can be sent, so it fails at once
        # and smtpd's clients stay unknown[127.x.y.z].  A test that wants
        # DNS sets dns_stub_zones to its own server (t/66-smtpd-fcrdns.t).
        self.set_main({"daemon_directory": self.libexec,
                       "dns_forwarders": "127.0.0.1@%d" % _DEAD_DNS.getsockname()[1],
                       "dns_stub_zones": "127.in-addr.arpa=127.255.255.255"})
        if main_conf:
            self.set_main(main_conf)
        if services is not None:
            self.write_master(services)
        _instances.append(self)

    def port(self, std):
        return self.port_base + std

    def set_main(self, params):
        path = os.path.join(self.etc, "main.conf")
        with open(path) as f:
            lines = f.read().splitlines()
        for k, v in params.items():
            lines = [l for l in lines if not re.match(r"\s*%s\s*=" % re.escape(k), l)]
            lines.append("%s = %s" % (k, v))
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def write_master(self, services):
        with open(os.path.join(self.etc, "master.conf"), "w") as f:
            f.write("# test master.conf\n")
            for line in services:
                f.write(line + "\n")

    def edit_service(self, program, append="", maxproc=None, type_=None):
        """Change master.conf's lines that run program (only its inet or
        unix services with type_): append arguments to them ("-o
        max_use=1", "-v") and set their process limit."""
        path = os.path.join(self.etc, "master.conf")
        with open(path) as f:
            lines = f.read().splitlines()
        with open(path, "w") as f:
            for line in lines:
                words = line.split()
                if len(words) >= 6 and not line.lstrip().startswith("#") \
                        and words[5] == program and type_ in (None, words[1]):
                    if maxproc is not None:
                        words[4] = str(maxproc)
                    line = " ".join(words + ([append] if append else []))
                f.write(line + "\n")

    def mailctl(self, *args, confdir=True, timeout=60):
        cmd = [MAILCTL] + (["-c", self.etc] if confdir else []) + list(args)
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout)
        return r

    def read_pid(self):
        try:
            with open(os.path.join(self.spool, "pid", "master.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def start(self):
        r = self.mailctl("start")
        self.master_pid = self.read_pid()
        if self.master_pid:
            self.known_pids.add(self.master_pid)
        return r

    def stop(self):
        self.track()
        return self.mailctl("stop")

    def status(self):
        return self.mailctl("status")

    def track(self):
        """Remember every process the instance has now, to clean up by PID."""
        if self.master_pid:
            self.known_pids.update(children_of(self.master_pid))
        self.known_pids.update(children_of(os.getpid()))
        return self.known_pids

    def procs(self):
        """{pid: program name} of master's live service processes: its
        direct children (not their helpers, e.g. LeakSanitizer's)."""
        if not self.master_pid:
            return {}
        out = {}
        for p in children_of(self.master_pid):
            self.known_pids.add(p)
            try:
                if alive(p) and proc_status(p)["PPid"] == [str(self.master_pid)]:
                    out[p] = os.path.basename(proc_cmdline(p))
            except (OSError, KeyError):
                pass
        return out

    def service_pids(self, program):
        return sorted(p for p, n in self.procs().items() if n == program)

    def log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_for(self, cond, timeout=10.0, step=0.05):
        end = time.time() + timeout
        while time.time() < end:
            v = cond()
            if v:
                return v
            time.sleep(step)
        return cond()

    def connect(self, port, timeout=5.0):
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        f = s.makefile("rwb", buffering=0)
        return s, f

    def add_user(self, name=None):
        """Create a login account for mail (uid >= 1000, home in the
        instance directory); returns (name, home).  useradd is retried while
        another test holds the passwd lock; a generated name that is taken
        (a user left by an earlier run whose pid was the same) is replaced
        by another."""
        chosen = name
        for attempt in range(50):
            if name is None and chosen is None:
                chosen = "pht%d%06d" % (os.getpid() % 100000, random.randrange(1000000))
            home = os.path.join(self.dir, "home", chosen)
            os.makedirs(os.path.dirname(home), mode=0o755, exist_ok=True)
            r = subprocess.run(["useradd", "-m", "-d", home, "-s", "/bin/sh", "-K",
                                "UID_MIN=1000", chosen],
                               capture_output=True, text=True)
            if r.returncode == 0:
                break
            if "already exists" in r.stderr and name is None:
                try:
                    ours = pwd.getpwnam(chosen).pw_dir == home
                except KeyError:
                    ours = False
                if ours:
                    break           # an attempt reported as failed made it
                chosen = None
                continue
            if "lock" not in r.stderr:
                raise RuntimeError("useradd %s: %s" % (chosen, r.stderr))
            time.sleep(0.1)
        else:
            raise RuntimeError("useradd %s: passwd stayed locked or names taken" % chosen)
        self.users.append(chosen)
        return chosen, home

    def submit(self, content, sender, rcpts, envid="", ret=0, attrs=(("client_addr", "127.0.0.1"),
                                                                   ("protocol", "ESMTP"))):
        """Submit content (bytes, CRLF) to cleanup (CLEANUP_SUBMIT); rcpts are
        addresses or (address, notify, orcpt) tuples.  Returns the queue ID;
        raises RuntimeError if cleanup does not answer 250."""
        import ipcframe
        fields = [0, sender, envid, ret, len(attrs)]
        for k, v in attrs:
            fields += [k, v]
        fields.append(len(rcpts))
        for r in rcpts:
            a, notify, orcpt = (r, 0, "") if isinstance(r, str) else r
            fields += [a, "", orcpt, notify]
        fields.append(len(content))
        fd = os.memfd_create("t")
        os.write(fd, content)
        c = ipcframe.connect(os.path.join(self.spool, "private", "cleanup"), "cleanup", 1)
        try:
            c.send(0x200, 1, fields, fd=fd)
            res = c.recv(timeout=30)
        finally:
            os.close(fd)
            c.sock.close()
        if res is None or res.fields[0] != 250:
            raise RuntimeError("cleanup refused: %r" % (res and res.fields))
        return res.fields[2]

    def maildir(self, home, sub="new"):
        """{filename: bytes} of the messages in home/Maildir/sub."""
        d = os.path.join(home, "Maildir", sub)
        out = {}
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            return out
        for n in names:
            try:
                with open(os.path.join(d, n), "rb") as f:
                    out[n] = f.read()
            except FileNotFoundError:
                pass
        return out

    def send(self, sender, rcpt, subject, extra=""):
        """One message "Subject: SUBJECT" (after the header lines in extra,
        CRLF-terminated) to rcpt through smtpd, with smtplib."""
        import smtplib
        s = smtplib.SMTP("127.0.0.1", self.port(25), timeout=30)
        s.sendmail(sender, [rcpt], ("%sSubject: %s\r\n\r\nbody\r\n" % (extra, subject)).encode())
        s.quit()

    def copies(self, home, subject):
        """The messages in home's Maildir/new with exactly this subject."""
        return [d for d in self.maildir(home).values()
                if ("\nSubject: %s\n" % subject).encode() in d]

    def wait_copies(self, home, subject, n=1, timeout=20):
        return self.wait_for(lambda: len(self.copies(home, subject)) >= n
                             and self.copies(home, subject), timeout=timeout) or []

    def count_by_subject(self, home, pattern):
        """Counter of the numbers in "Subject: PATTERN N" over home's
        Maildir new/ and cur/: how often each numbered message arrived."""
        counts = collections.Counter()
        rx = re.compile(rb"^Subject: " + re.escape(pattern.encode()) + rb" (\d+)$", re.M)
        for data in list(self.maildir(home).values()) + list(self.maildir(home, "cur").values()):
            m = rx.search(data)
            if m:
                counts[int(m.group(1))] += 1
        return counts

    def wait_maildir(self, home, count, timeout=20.0):
        """Wait until home's Maildir/new holds at least count messages."""
        return self.wait_for(lambda: len(self.maildir(home)) >= count and self.maildir(home),
                             timeout=timeout) or {}

    def cleanup(self):
        if self.master_pid and alive(self.master_pid):
            self.track()
            try:
                self.mailctl("stop", timeout=30)
            except subprocess.TimeoutExpired:
                pass
        for pid in sorted(self.track()):
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        reap()
        for name in self.users:
            for attempt in range(50):
                r = subprocess.run(["userdel", "-r", name], capture_output=True, text=True)
                if r.returncode == 0 or "lock" not in r.stderr:
                    break
                time.sleep(0.1)
            if r.returncode != 0:
                print("# userdel %s: %s" % (name, r.stderr.strip()), flush=True)
        self.users = []
        if os.environ.get("POSTHORN_KEEP"):
            print("# kept instance in " + self.dir, flush=True)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        if self in _instances:
            _instances.remove(self)


@atexit.register
def _cleanup_all():
    for inst in list(_instances):
        inst.cleanup()
