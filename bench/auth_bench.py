#!/usr/bin/env python3
"""auth_bench.py - authenticated submission: Posthorn (submission + authd)
next to Postfix with Dovecot's SASL, all started privately in one run.

    bench/auth_bench.py [-c CLIENTS] [-n SESSIONS] [-r RUNS]
                        [--only posthorn|postfix] [--dovecot-passdb LIST]
                        [--settle SECONDS] [--keep]

Needs root, Debian's postfix and, for Postfix's SASL, Dovecot:
`apt-get install -y dovecot-core` (the script says so if it is missing).

Two loads, each from CLIENTS client processes in parallel (default 4), every
session on a new TCP connection to the submission port with a full TLS
handshake (STARTTLS, no session resumption), from the same small C client
for every system, bench/authload (built by `make bench`; a Python client
cost as much CPU per session as the servers, on the same two CPUs, and so
pulled every ratio towards 1):
  logins:   connect, EHLO, STARTTLS, EHLO, AUTH PLAIN (initial response), QUIT
  sessions: the same, then MAIL, RCPT, DATA with one 4096-byte message to a
            local account, QUIT; on every side the message is delivered
            into that account's Maildir/new (Posthorn's local; Postfix's
            local with home_mailbox = Maildir/).
"logins/s" and "sessions/s" are SESSIONS divided by the time until the last
session had its 221; "delivered/s" (printed, not the target) the time until
the last message is a file in Maildir/new.

Posthorn: a throwaway instance (t/lib/posthorn.py: mailctl init, which
enables submission on 587), a login account made with `mailctl user add
NAME --password-stdin`: a yescrypt record ($y$, libxcrypt's default cost)
plus SCRAM-SHA-256 keys; authd remembers a verified PLAIN password for 60 s
(an HMAC of record and password), so a repeated login runs no yescrypt.

Postfix + Dovecot: one private Postfix (t/lib/postfixinst.py), with one
submission service (its own loopback port) for each Dovecot:
smtpd_tls_security_level = encrypt (STARTTLS with Posthorn's self-signed
P-256 certificate), smtpd_sasl_auth_enable, smtpd_tls_auth_only,
smtpd_sasl_type = dovecot, smtpd_sasl_path = private/auth-PASSDB,
permit_sasl_authenticated, and reject_sender_login_mismatch (Posthorn's
submission also insists on the user's own sender address).  Each Dovecot
runs privately: its own base_dir, state_dir, config and log under the
temporary directory, `protocols =` (auth only), auth_cache_size = 1M,
auth_cache_ttl = 60 s, and a $y$ hash of the same password made with
libxcrypt's crypt_gensalt("$y$") (what `mkpasswd -m yescrypt` makes: the
same scheme and default cost as Posthorn's).  --dovecot-passdb picks the
passdbs (default both, "pam,passwd-file"):
  pam          passdb pam (cache_key=%u; /etc/pam.d/dovecot, pam_unix) with
               the hash as the account's /etc/shadow password: a cache miss
               runs PAM (yescrypt) in an auth-worker, a hit compares a SHA1
               of the password (Dovecot's CACHED_PASSWORD_SCHEME): the same
               idea as Posthorn's cache;
  passwd-file  passdb passwd-file with {CRYPT}$y$...: the usual setup, but
               a passwd-file passdb has no cache key, so Dovecot never
               caches it (src/auth/passdb-passwd-file.c; auth_debug shows
               no cache hit or miss) and every login runs yescrypt in the
               one auth process.

Runs alternate between the systems (the order rotates every run).  Before
each measurement the disk is synced and the machine left alone for
--settle seconds (before a "sessions" one the recipient's Maildir is first
emptied, its files moved aside, not deleted) (default 65: on this ext4 without a journal, files created
within 60 s of many deletions cost far more; see bench/smtp_bench.py and
shared/notes/performance.md).  Before each measurement one login warms the
password cache of the system measured.  Prints every run, then the medians
with their range and the ratios Posthorn/Postfix.  Never passes or fails on
time: exit status 1 only if a run could not complete.

Every process it starts (the servers, the client processes) is killed by
PID at the end, also on Ctrl-C, SIGTERM or an error.
"""
import argparse
import base64
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "t", "lib"))
sys.path.insert(0, os.path.join(TOP, "bench"))
from posthorn import Instance, MAILCTL, children_of, free_port  # noqa: E402
import postfixinst  # noqa: E402
import dovecotinst  # noqa: E402
from dovecotinst import client_ctx, kill_pids, libcrypt, retry_locked, yescrypt  # noqa: E402

AUTHLOAD = os.path.join(os.environ.get("POSTHORN_BUILD", os.path.join(TOP, "build")),
                        "bench", "authload")
INSTALL_DOVECOT = "apt-get install -y dovecot-core"
PASSWORD = "bench-Pa55word-%d" % os.getpid()
MSG_SIZE = 4096
SESSION_TIMEOUT = 60
DELIVERY_TIMEOUT = 600
SETTLE = 65.0   # > 60 s, as in bench/smtp_bench.py
CACHE_TTL = 60  # seconds; Posthorn's AUTHD_CACHE_SECONDS, Dovecot's auth_cache_ttl


# --------------------------------------------------------------- hashes

def crypt_ms(hashed, password, rounds=5):
    """Milliseconds one crypt() verification of hashed takes here."""
    lib = libcrypt()
    t0 = time.perf_counter()
    for _ in range(rounds):
        lib.crypt(password.encode(), hashed.encode())
    return (time.perf_counter() - t0) * 1e3 / rounds


def hash_params(h):
    """"$y$j9T$" of a yescrypt hash: the scheme and its cost."""
    m = re.match(r"(\$y\$[^$]+\$)", h)
    return m.group(1) if m else h[:8]


def posthorn_hash_params(inst):
    """The $y$ parameters of the record mailctl wrote (read from the
    Berkeley DB file's bytes: only the scheme and cost, never the hash)."""
    try:
        with open(os.path.join(inst.etc, "passwords.db"), "rb") as f:
            m = re.search(rb"\$y\$[./0-9A-Za-z]+\$", f.read())
        return m.group(0).decode() if m else "?"
    except OSError:
        return "?"


# --------------------------------------------------------------- client

class SMTPError(Exception):
    pass


class Client:
    """A minimal SMTP client over a raw socket: the same code path and the
    same small cost for both systems."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=SESSION_TIMEOUT)
        self.buf = b""

    def reply(self, want, what):
        while True:
            end = self.buf.find(b"\r\n")
            while end >= 0:
                line, self.buf = self.buf[:end], self.buf[end + 2:]
                if len(line) < 4 or line[3:4] != b"-":
                    code = line[:3]
                    if code != want:
                        raise SMTPError("%s: %r" % (what, line[:200]))
                    return
                end = self.buf.find(b"\r\n")
            data = self.sock.recv(65536)
            if not data:
                raise SMTPError("%s: connection closed" % what)
            self.buf += data

    def cmd(self, line, want, what=None):
        self.sock.sendall(line + b"\r\n")
        self.reply(want, what or line.split(b" ")[0].decode())

    def starttls(self, ctx):
        self.cmd(b"STARTTLS", b"220")
        if self.buf:
            raise SMTPError("data after 220 to STARTTLS")
        self.sock = ctx.wrap_socket(self.sock)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def make_message(sender, rcpt, size=MSG_SIZE):
    """size bytes of message (CRLF lines, no line starting with a dot),
    with the terminating CRLF.CRLF appended."""
    head = ("From: <%s>\r\nTo: <%s>\r\nSubject: auth_bench\r\n"
            "Message-ID: <%d.%d@client.example.org>\r\n\r\n"
            % (sender, rcpt, os.getpid(), time.time_ns())).encode()
    line = b"x" * 70 + b"\r\n"
    lines, rest = divmod(size - len(head), len(line))
    if rest == 1 and lines:
        lines, rest = lines - 1, rest + len(line)
    body = line * lines + (b"y" * (rest - 2) + b"\r\n" if rest >= 2 else b"")
    return head + body + b".\r\n"


def session(target, ctx, message=None, info=None):
    """One session: connect, EHLO, STARTTLS, EHLO, AUTH PLAIN, [MAIL, RCPT,
    DATA and message,] QUIT."""
    c = Client(target["port"])
    try:
        c.reply(b"220", "greeting")
        c.cmd(b"EHLO client.example.org", b"250")
        c.starttls(ctx)
        if info is not None:
            info["tls"] = "%s %s" % (c.sock.version(), c.sock.cipher()[0])
        c.cmd(b"EHLO client.example.org", b"250")
        c.cmd(b"AUTH PLAIN " + target["plain"], b"235", "AUTH")
        if message is not None:
            c.cmd(b"MAIL FROM:<%s>" % target["sender"].encode(), b"250")
            c.cmd(b"RCPT TO:<%s>" % target["rcpt"].encode(), b"250")
            c.cmd(b"DATA", b"354")
            c.sock.sendall(message)
            c.reply(b"250", "end of DATA")
        c.cmd(b"QUIT", b"221")
    finally:
        c.close()


class Clients:
    """The load of one measurement: bench/authload (C, OpenSSL), whose
    client processes are killed by PID if the benchmark stops early."""
    live = None

    @classmethod
    def run(cls, target, sessions, clients, with_message):
        """sessions spread over clients processes; returns (seconds, error)."""
        cmd = [AUTHLOAD, "-p", str(target["port"]), "-a", target["plain"].decode(),
               "-c", str(clients), "-n", str(sessions)]
        if with_message:
            cmd += ["-f", target["sender"], "-t", target["rcpt"], "-s", str(MSG_SIZE)]
        cls.live = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        try:
            out, err = cls.live.communicate(
                timeout=SESSION_TIMEOUT * (sessions // clients + 1) + 60)
        except BaseException:
            cls.kill()          # at once: Ctrl-C, SIGTERM, a client that hangs
            raise
        rc, cls.live = cls.live.returncode, None
        m = re.search(r"^seconds ([0-9.]+)$", out, re.M)
        if rc != 0 or not m:
            return 0, (err.strip() or "authload exited with %d" % rc)
        return float(m.group(1)), None

    @classmethod
    def kill(cls):
        p = cls.live
        if p is None:
            return
        kill_pids(children_of(p.pid) + [p.pid])
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        cls.live = None


# --------------------------------------------------------------- Dovecot

PASSDBS = ("pam", "passwd-file")


class Dovecot(dovecotinst.Dovecot):
    """A private Dovecot for Postfix's SASL only (bench/dovecotinst.py):
    config, base_dir, state_dir and log under base; its auth socket at
    auth_socket (owned by postfix); passdb "pam" (user's /etc/shadow
    password set to hashed) or "passwd-file" (a file of its own holding
    hashed)."""

    def __init__(self, base, passdb, auth_socket, user, hashed):
        super().__init__(base)
        self.passdb, self.auth_socket = passdb, auth_socket
        if passdb == "pam":
            # The account is a throwaway one (removed with the instance).
            r = retry_locked(["usermod", "-p", hashed, user])
            if r.returncode != 0:
                raise RuntimeError("usermod -p: " + r.stderr)
            passdb_conf = "  driver = pam\n  args = cache_key=%u dovecot\n"
        else:
            users = os.path.join(base, "users")
            with open(users, "w") as f:
                f.write("%s:{CRYPT}%s::::::\n" % (user, hashed))
            shutil.chown(users, "root", "dovecot")
            os.chmod(users, 0o640)
            passdb_conf = ("  driver = passwd-file\n"
                           "  args = scheme=CRYPT username_format=%%u %s\n" % users)
        with open(self.conf, "w") as f:
            f.write("""# auth_bench.py: a private Dovecot, SASL for Postfix only
base_dir = {base}/run
state_dir = {base}/state
instance_name = auth_bench-{pid}-{passdb}
log_path = {log}
protocols =
ssl = no
auth_mechanisms = plain login
auth_cache_size = 1M
auth_cache_ttl = {ttl} s
passdb {{
{passdb_conf}}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}}
service auth {{
  unix_listener {sock} {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
""".format(base=base, pid=os.getpid(), passdb=passdb, log=self.logfile, ttl=CACHE_TTL,
           passdb_conf=passdb_conf, sock=auth_socket))

    def ready(self):
        return os.path.exists(self.auth_socket)


# --------------------------------------------------------------- systems

def instance_tls(inst):
    """Posthorn's certificate and key (mailctl init: self-signed, P-256),
    used by every system."""
    return tuple(os.path.join(inst.etc, "tls", f) for f in ("cert.pem", "key.pem"))


def plain_token(user, password):
    return base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())


def setup_posthorn(inst):
    user, home = inst.add_user()
    r = subprocess.run([MAILCTL, "-c", inst.etc, "user", "add", user, "--password-stdin"],
                       input=PASSWORD + "\n", capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError("mailctl user add: " + r.stderr)
    addr = "%s@mail.example.test" % user
    return {"name": "posthorn", "port": inst.port(587), "user": user, "home": home,
            "sender": addr, "rcpt": addr, "plain": plain_token(user, PASSWORD), "uses": [
                "submission + authd (authd checks PLAIN; one authd process)",
                "hash: yescrypt %s (libxcrypt's default cost) + SCRAM-SHA-256 keys in "
                "passwords.db, made by mailctl user add" % posthorn_hash_params(inst),
                "cache: a verified PLAIN password is kept %d s as an HMAC-SHA-256 of record "
                "and password (authd's AUTHD_CACHE_SECONDS): a hit runs no yescrypt" % CACHE_TTL,
                "delivery: Posthorn's local into ~/Maildir/new",
            ]}


def setup_postfix(inst, passdbs):
    """One Postfix with a submission service per passdb, each with a
    Dovecot of its own; returns (targets, Postfix, [Dovecot]), not started."""
    base = os.path.join(inst.dir, "postfix")
    pf = postfixinst.Postfix(base, "127.0.0.1", free_port(), "pf.example.test", "example.test",
                             tls=instance_tls(inst))
    targets, dovecots, logins = [], [], []
    for passdb in passdbs:
        user, home = inst.add_user()
        addr = "%s@%s" % (user, pf.hostname)
        logins.append("%s=%s" % (addr, user))
        port = free_port()
        sock = "auth-" + passdb
        with open(os.path.join(pf.etc, "master.cf"), "a") as f:
            f.write("127.0.0.1:%d  inet  n  -  n  -  -  smtpd\n"
                    "  -o syslog_name=postfix/submission-%s\n"
                    "  -o smtpd_tls_security_level=encrypt\n"
                    "  -o smtpd_sasl_auth_enable=yes\n"
                    "  -o smtpd_tls_auth_only=yes\n"
                    "  -o smtpd_sasl_path=private/%s\n"
                    "  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n"
                    "  -o smtpd_sender_restrictions=reject_sender_login_mismatch\n"
                    "  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject\n"
                    "  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject\n"
                    "  -o milter_macro_daemon_name=ORIGINATING\n" % (port, passdb, sock))
        hashed = yescrypt(PASSWORD)
        dc = Dovecot(os.path.join(inst.dir, "dovecot-" + passdb), passdb,
                     os.path.join(pf.queue, "private", sock), user, hashed)
        dovecots.append(dc)
        if passdb == "pam":
            how = ["hash: yescrypt %s (libxcrypt's default cost) as the account's /etc/shadow "
                   "password, checked by PAM (pam_unix) in an auth-worker" % hash_params(hashed),
                   "cache: passdb pam cache_key=%%u, auth_cache_size = 1M, auth_cache_ttl = "
                   "%d s: a hit compares a SHA1 of the password, no yescrypt" % CACHE_TTL]
        else:
            how = ["hash: passwd-file {CRYPT} yescrypt %s (libxcrypt's default cost, the "
                   "system crypt())" % hash_params(hashed),
                   "cache: auth_cache_size = 1M, auth_cache_ttl = %d s set, but a passwd-file "
                   "passdb has no cache key: never cached, every login runs yescrypt in the "
                   "one auth process" % CACHE_TTL]
        targets.append({"name": "pf+dc/" + ("pwfile" if passdb == "passwd-file" else passdb),
                        "port": port, "user": user, "home": home, "sender": addr, "rcpt": addr,
                        "plain": plain_token(user, PASSWORD), "dovecot": dc, "uses": [
                            "Postfix submission (smtpd_sasl_type = dovecot) + Dovecot auth, "
                            "passdb %s" % passdb] + how + [
                            "delivery: Postfix's local into ~/Maildir/new "
                            "(home_mailbox = Maildir/)"]})
    with open(os.path.join(pf.etc, "main.cf"), "a") as f:
        f.write("smtpd_sasl_type = dovecot\n"
                "smtpd_sasl_path = private/auth\n"
                "smtpd_sender_login_maps = inline:{ %s }\n" % ", ".join(logins))
    return targets, pf, dovecots


def empty_maildir(home):
    """Move the last run's messages aside (into home/done/), as
    bench/smtp_bench.py does: deleting them would slow file creation on
    this disk for a minute."""
    done = os.path.join(home, "done")
    os.makedirs(done, exist_ok=True)
    for sub in ("new", "cur", "tmp"):
        d = os.path.join(home, "Maildir", sub)
        if os.path.isdir(d):
            for name in os.listdir(d):
                os.rename(os.path.join(d, name), os.path.join(done, "%s.%s" % (sub, name)))


def count_new(home):
    try:
        return len(os.listdir(os.path.join(home, "Maildir", "new")))
    except OSError:
        return 0


def settle(seconds):
    subprocess.run(["sync"])
    time.sleep(seconds)


def measure(target, kind, args):
    """One measurement; returns (sessions/s, delivered/s or None) or None."""
    with_message = kind == "sessions"
    if with_message:
        empty_maildir(target["home"])
    settle(args.settle)
    session(target, client_ctx())           # warms the password cache
    t, err = Clients.run(target, args.sessions, args.clients, with_message)
    if err:
        print("  %-12s %-8s FAILED: %s" % (target["name"], kind, err), flush=True)
        return None
    rate, dlv, t_dlv = args.sessions / t, None, None
    if with_message:
        t_start = time.monotonic() - t
        end = time.monotonic() + DELIVERY_TIMEOUT
        while count_new(target["home"]) < args.sessions and time.monotonic() < end:
            time.sleep(0.01)
        got = count_new(target["home"])
        if got < args.sessions:
            print("  %-12s %-8s FAILED: only %d of %d messages delivered"
                  % (target["name"], kind, got, args.sessions), flush=True)
            return None
        t_dlv = time.monotonic() - t_start
        dlv = args.sessions / t_dlv
    print("  %-12s %-8s %7.1f /s  (%.2f s)%s" % (
        target["name"], kind, rate, t,
        "   delivered %7.1f msg/s (%.2f s)" % (dlv, t_dlv) if dlv else ""), flush=True)
    return rate, dlv


def med_range(values):
    if not values:
        return "-"
    return "%6.1f [%5.1f-%5.1f]" % (statistics.median(values), min(values), max(values))


def print_table(targets, results, runs):
    print()
    print("medians of %d runs [min-max]:" % runs)
    row = "  %-22s %-22s %-22s %s"
    print(row % ("", "logins/s", "sessions/s", "(delivered msg/s)"))
    for t in targets:
        r = results[t["name"]]
        print(row % (t["name"], med_range(r["logins"]), med_range(r["sessions"]),
                     med_range(r["delivered"])))
    ph = results.get("posthorn")
    if not ph:
        return
    for t in targets:
        if t["name"] == "posthorn":
            continue
        pf = results[t["name"]]
        cells = []
        for k in ("logins", "sessions", "delivered"):
            if ph[k] and pf[k]:
                cells.append("%.2fx" % (statistics.median(ph[k]) / statistics.median(pf[k])))
            else:
                cells.append("-")
        print(row % ("posthorn / " + t["name"], cells[0], cells[1], cells[2]))
        per_run = ["%s %s" % (k, " ".join("%.2f" % (a / b) for a, b in zip(ph[k], pf[k])))
                   for k in ("logins", "sessions") if ph[k] and pf[k] and len(ph[k]) == len(pf[k])]
        if per_run:
            print("  %-22s (per run: %s)" % ("", "; ".join(per_run)))
    print("  target: posthorn >= 1.5x")


def interrupted(signum, frame):
    """SIGTERM ends the benchmark as Ctrl-C does: through the cleanup."""
    raise KeyboardInterrupt()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-c", "--clients", type=int, default=4, help="client processes (default 4)")
    ap.add_argument("-n", "--sessions", type=int, default=1000,
                    help="sessions per measurement (default 1000)")
    ap.add_argument("-r", "--runs", type=int, default=3, help="runs (default 3)")
    ap.add_argument("--only", choices=("posthorn", "postfix"), help="measure one system only")
    ap.add_argument("--dovecot-passdb", default=",".join(PASSDBS),
                    help="Dovecot passdbs behind Postfix, comma-separated, of: pam, "
                         "passwd-file (default both)")
    ap.add_argument("--settle", type=float, default=SETTLE,
                    help="seconds to wait (after sync) before each sessions measurement "
                         "(default %(default)s)")
    ap.add_argument("--keep", action="store_true", help="keep the instances' directory")
    args = ap.parse_args()
    passdbs = [p for p in args.dovecot_passdb.split(",") if p]
    if not passdbs or any(p not in PASSDBS for p in passdbs) or len(set(passdbs)) != len(passdbs):
        sys.exit("auth_bench.py: --dovecot-passdb takes pam and/or passwd-file")
    if os.geteuid() != 0:
        sys.exit("auth_bench.py: run as root")
    if args.only != "posthorn":
        if postfixinst.missing():
            sys.exit("auth_bench.py: Postfix is not installed (make deps installs postfix)")
        if dovecotinst.missing():
            sys.exit("auth_bench.py: Dovecot is not installed; Postfix's SASL here needs it:\n"
                     "    %s\n(or run with --only posthorn)" % INSTALL_DOVECOT)
    if args.clients < 1 or args.sessions < args.clients or args.runs < 1:
        sys.exit("auth_bench.py: need -c >= 1, -n >= -c, -r >= 1")
    if not os.access(AUTHLOAD, os.X_OK):
        sys.exit("auth_bench.py: %s is not built: make %s" % (AUTHLOAD, os.path.relpath(AUTHLOAD, TOP)))

    signal.signal(signal.SIGTERM, interrupted)
    pf, dovecots, failed = None, [], False
    inst = None
    try:
        inst = Instance(main_conf={
            # 127.0.0.1 is localhost[127.0.0.1], as for the Postfix next to it
            # (bench/smtp_bench.py does the same).
            "dns_stub_zones": "",
            # One login sends every message: the per-login hourly limits
            # (Postfix has none) would refuse the run.
            "submission_message_rate_limit": "0",
            "submission_recipient_rate_limit": "0",
        })
        targets = []
        if args.only != "postfix":
            r = inst.start()
            if r.returncode != 0:
                raise RuntimeError("posthorn start failed: " + r.stderr)
            targets.append(setup_posthorn(inst))
        if args.only != "posthorn":
            pf_targets, pf, dovecots = setup_postfix(inst, passdbs)
            pf.start()
            for dc in dovecots:
                dc.start()
            targets += pf_targets
            ver = subprocess.run(["postconf", "-c", pf.etc, "-h", "mail_version"],
                                 capture_output=True, text=True).stdout.strip()
            dver = dovecotinst.version()
            for t in pf_targets:
                t["uses"][0] += " (Postfix %s, Dovecot %s)" % (ver, dver)
        for t in targets:
            info = {}
            session(t, client_ctx(), info=info)     # proves the setup works
            t["uses"].insert(1, "TLS: STARTTLS, %s, the same self-signed P-256 certificate, "
                                "no session resumption" % info["tls"])
        hashed = yescrypt(PASSWORD)
        print("auth_bench: %d clients, %d sessions per measurement, %d runs, %d-byte messages;"
              % (args.clients, args.sessions, args.runs, MSG_SIZE))
        print("one yescrypt verification (%s) takes %.1f ms here"
              % (hash_params(hashed), crypt_ms(hashed, PASSWORD)))
        for t in targets:
            print("%s:" % t["name"])
            for line in t["uses"]:
                print("  " + line)
        sys.stdout.flush()
        results = {t["name"]: {"logins": [], "sessions": [], "delivered": []} for t in targets}
        for i in range(args.runs):
            print("run %d" % (i + 1), flush=True)
            k = i % len(targets)
            order = targets[k:] + targets[:k]
            for kind in ("logins", "sessions"):
                for t in order:
                    res = measure(t, kind, args)
                    if t.get("dovecot"):
                        t["dovecot"].track()
                    if res is None:
                        failed = True
                        continue
                    results[t["name"]][kind].append(res[0])
                    if res[1] is not None:
                        results[t["name"]]["delivered"].append(res[1])
        print_table(targets, results, args.runs)
    except KeyboardInterrupt:
        print("auth_bench: interrupted, cleaning up", file=sys.stderr)
        failed = True
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        Clients.kill()
        for dc in dovecots:
            dc.stop()
        if pf:
            pf.stop()
        if inst:
            inst.stop()
            if args.keep:
                os.environ["POSTHORN_KEEP"] = "1"
            inst.cleanup()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
