"""dovecotinst.py - a private Dovecot (Debian's dovecot-core) as the server
next to Posthorn's in the benchmarks: bench/auth_bench.py runs one per
passdb for Postfix's SASL, bench/pop3_bench.py one as the POP3 server,
bench/imap_bench.py one as the IMAP server (and the /proc helpers below).
It never starts, stops or configures the system's Dovecot: a private one
has its own config, base_dir, state_dir and log under a directory of its
own, runs in the foreground (dovecot -F) in a session of its own (a Ctrl-C
reaches only the benchmark, which stops it by PID), and is stopped by
SIGTERM, then SIGKILL by PID to whatever of it is left.

    DOVECOT                     the dovecot program
    missing()                   True if dovecot is not installed
    version()                   what `dovecot --version` says
    Dovecot(base)               a base class: base/dovecot.conf (.conf),
                                base/dovecot.log (.logfile), base/run and
                                base/state made; a benchmark's subclass
                                writes .conf in its __init__ (after this
                                one's) and says in .ready() when it serves
        .start()                dovecot -F -c .conf; returns once .ready(),
                                raises RuntimeError with the log if it
                                exits or is not ready within 20 s
        .root()                 the master's PID, None when not running
        .track()                remembers its processes (auth-workers,
                                login and session processes come and go)
        .log()                  its stdout/stderr and log file
        .stop()                 SIGTERM, then SIGKILL by PID to every
                                process it had; reaps them
    kill_pids(pids)             SIGKILL to those of pids still alive
    libcrypt()                  libcrypt.so.1 with crypt and crypt_gensalt
    yescrypt(password)          a $y$ hash at libxcrypt's default cost, as
                                `mkpasswd -m yescrypt` and Posthorn's
                                passdb make it (for /etc/shadow or a
                                passwd-file passdb)
    retry_locked(cmd, input=None)
                                a passwd-file tool (usermod, chpasswd),
                                retried while another process holds the lock
    client_ctx()                the benchmarks' TLS client context (no
                                verification: both servers show Posthorn's
                                self-signed certificate)
    tree(root)                  root and its descendants, from /proc ([] if
                                root is gone)
    tree_cpu(root)              CPU seconds of that tree: utime+stime of the
                                live processes plus cutime+cstime of those
                                they reaped
    tree_memory(root)           (processes, RSS kB, PSS kB or None) summed
                                over that tree (smaps_rollup)
    listening(port)             whether something listens on 127.0.0.1:port
                                (/proc/net/tcp)
    settle(seconds)             sync, then leave the machine alone
    med_range(values, fmt)      "median [min-max]"
    instance_tls(inst)          a Posthorn instance's certificate and key
    set_posthorn_passwords(inst, users, password)
                                mailctl user add for each {"name": ...}
    set_shadow_passwords(users, password)
                                their /etc/shadow password (chpasswd -e)
    memory_report(name, label, sessions, t_open, before, during, after, end)
                                the per-session RSS/PSS figure of idle
                                sessions from three tree_memory() results,
                                printed; {"value": RSS, "pss": PSS}
"""
import ctypes
import os
import re
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import time

from posthorn import MAILCTL, alive, children_of, reap

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


def missing():
    return not os.access(DOVECOT, os.X_OK)


def version():
    return subprocess.run([DOVECOT, "--version"], capture_output=True, text=True).stdout.strip()


class Dovecot:
    def __init__(self, base):
        self.base = base
        self.conf = os.path.join(base, "dovecot.conf")
        self.logfile = os.path.join(base, "dovecot.log")
        self.proc = None
        self.pids = set()
        for sub in ("run", "state"):
            os.makedirs(os.path.join(base, sub), exist_ok=True)

    def ready(self):
        """True once it serves (its subclass knows what it listens on)."""
        raise NotImplementedError

    def start(self):
        # Its own session: a Ctrl-C reaches only us, and we stop it by PID.
        with open(os.path.join(self.base, "stdout"), "w") as out:
            self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf], stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.pids.add(self.proc.pid)
        end = time.time() + 20
        while time.time() < end:
            if self.ready():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("dovecot did not start: " + self.log()[-2000:])

    def root(self):
        return self.proc.pid if self.proc else None

    def track(self):
        """Remember its processes (auth-workers come and go), to kill by PID."""
        if self.proc and alive(self.proc.pid):
            self.pids.update(children_of(self.proc.pid))

    def log(self):
        out = ""
        for name in ("stdout", "dovecot.log"):
            try:
                with open(os.path.join(self.base, name), errors="replace") as f:
                    out += f.read()
            except OSError:
                pass
        return out

    def stop(self):
        if not self.proc:
            return
        self.track()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        kill_pids(self.pids)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        reap()
        self.proc = None


def kill_pids(pids):
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def libcrypt():
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    return lib


def yescrypt(password):
    """A $y$ hash with libxcrypt's default cost (crypt_gensalt("$y$", 0)),
    as Posthorn's passdb_make() and `mkpasswd -m yescrypt` make it."""
    lib = libcrypt()
    setting = lib.crypt_gensalt(b"$y$", 0, None, 0)
    h = lib.crypt(password.encode(), setting) if setting else None
    if not h or not h.startswith(b"$y$"):
        sys.exit("%s: libcrypt cannot make a yescrypt hash" % os.path.basename(sys.argv[0]))
    return h.decode()


def retry_locked(cmd, input=None):
    """Run a passwd-file tool, retried while another process holds the lock
    (as t/lib/posthorn.py's add_user does)."""
    for _ in range(50):
        r = subprocess.run(cmd, input=input, capture_output=True, text=True)
        if r.returncode == 0 or "lock" not in r.stderr:
            return r
        time.sleep(0.1)
    return r


def client_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


CLK_TCK = os.sysconf("SC_CLK_TCK")


def tree(root):
    return [root] + children_of(root) if root and alive(root) else []


def tree_cpu(root):
    """CPU seconds of root's process tree: utime+stime of the live ones,
    cutime+cstime for those they reaped."""
    total = 0
    for pid in tree(root):
        try:
            with open("/proc/%d/stat" % pid) as f:
                st = f.read()
            fields = st[st.rindex(")") + 2:].split()
            total += sum(int(x) for x in fields[11:15])
        except (OSError, ValueError, IndexError):
            pass
    return total / CLK_TCK


def tree_memory(root):
    """(processes, RSS kB, PSS kB or None) summed over root's tree."""
    n, rss, pss, pss_ok = 0, 0, 0, True
    for pid in tree(root):
        r = p = None
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Rss:"):
                        r = int(line.split()[1])
                    elif line.startswith("Pss:"):
                        p = int(line.split()[1])
        except OSError:
            pass
        if r is None:
            try:
                with open("/proc/%d/status" % pid) as f:
                    m = re.search(r"^VmRSS:\s+(\d+)", f.read(), re.M)
                r = int(m.group(1)) if m else None
            except OSError:
                pass
        if r is None:
            continue            # gone, or a zombie
        n += 1
        rss += r
        if p is None:
            pss_ok = False
        else:
            pss += p
    return n, rss, pss if pss_ok else None


def listening(port):
    """Whether something listens on 127.0.0.1:port (from /proc/net/tcp)."""
    want = "0100007F:%04X" % port
    try:
        with open("/proc/net/tcp") as f:
            return any(l.split()[1] == want and l.split()[3] == "0A" for l in list(f)[1:])
    except OSError:
        return False


def settle(seconds):
    subprocess.run(["sync"])
    time.sleep(seconds)


def med_range(values, fmt):
    if not values:
        return "-"
    return (fmt + " [" + fmt + "-" + fmt + "]") % (statistics.median(values), min(values),
                                                  max(values))


def instance_tls(inst):
    return tuple(os.path.join(inst.etc, "tls", f) for f in ("cert.pem", "key.pem"))


def set_posthorn_passwords(inst, users, password):
    for u in users:
        r = subprocess.run([MAILCTL, "-c", inst.etc, "user", "add", u["name"], "--password-stdin"],
                           input=password + "\n", capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("mailctl user add %s: %s" % (u["name"], r.stderr))


def set_shadow_passwords(users, password):
    """The accounts' /etc/shadow password (Dovecot's passdb pam): one
    yescrypt hash each (chpasswd -e, retried while passwd is locked)."""
    text = "".join("%s:%s\n" % (u["name"], yescrypt(password)) for u in users)
    r = retry_locked(["chpasswd", "-e"], input=text)
    if r.returncode != 0:
        raise RuntimeError("chpasswd -e: " + r.stderr)


def memory_report(name, label, sessions, t_open, before, during, after, end):
    """The memory of idle sessions: before, during and after are
    tree_memory() results (before the sessions, with them all open, 2 s
    after they ended with the command end); per session, printed."""
    (n0, rss0, pss0), (n1, rss1, pss1), (n2, rss2, _) = before, during, after
    out = {"value": (rss1 - rss0) / sessions,
           "pss": (pss1 - pss0) / sessions if pss0 is not None and pss1 is not None else None}
    print("  %-9s %-11s RSS %7.1f kB/session, PSS %s kB/session  (%d sessions opened in "
          "%.2f s; %d processes %d/%s kB RSS/PSS -> %d processes %d/%s kB; 2 s after %s "
          "%d processes %d kB RSS)"
          % (name, label, out["value"],
             "%7.1f" % out["pss"] if out["pss"] is not None else "-", sessions, t_open, n0, rss0,
             pss0 if pss0 is not None else "-", n1, rss1, pss1 if pss1 is not None else "-",
             end, n2, rss2),
          flush=True)
    return out
