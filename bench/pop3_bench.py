#!/usr/bin/env python3
"""pop3_bench.py - POP3: Posthorn's pop3d next to a private Dovecot
(Debian's dovecot-pop3d), both started privately in one run.

    bench/pop3_bench.py [-n SECONDS] [-r RUNS] [-c|--clients N] [--sessions N]
                        [--messages N] [--msg-size BYTES] [--settle SECONDS]
                        [--only posthorn|dovecot] [--skip logins,retr,memory]
                        [--dovecot-login security|performance] [--keep]

Needs root and, for Dovecot, `apt-get install -y dovecot-pop3d dovecot-core`
(the script says so if it is missing; it never starts or configures the
system's Dovecot, only a private one).

The same load for both servers, from --clients client processes (default
10) in parallel, each with an account of its own (Posthorn's pop3d lets one
session at a time open a mailbox), on plain POP3 (110: USER/PASS is allowed
there by both, since 127.0.0.1 talking to 127.0.0.1 counts as a secured
connection) and on implicit TLS (995: a full TLS handshake per connection,
no session resumption):
  logins   for -n SECONDS each client loops: connect, greeting, USER, PASS,
           STAT, QUIT; logins/s = sessions completed / time until the last
           one had its +OK to QUIT;
  retr     for -n SECONDS each client loops: connect, USER, PASS, STAT, RETR
           of every message of its mailbox in turn (no DELE), QUIT; MB/s =
           message octets received (what comes between RETR's +OK line and
           the terminating ".", 10^6 octets to the MB) / time;
  memory   --sessions (default 100) accounts log in one after the other and
           stay logged in, idle (after STAT); RSS and PSS (smaps_rollup)
           summed over every process of the server with them held, minus
           the same sum just before: per session.  Posthorn: master and
           all its descendants (login processes, TLS proxies, the mail half,
           the session processes, authd, qmgr, pickup); Dovecot: its master
           and all its descendants.  Before the baseline every account logs
           in and out once, so both password caches are warm and the
           processes a login needs (authd; Dovecot's auth-worker) exist in
           both sums, then both servers get LOGIN_MAX_IDLE + 2 s, so that
           Posthorn's idle login processes (max_idle) have exited and the
           baseline is the server at rest.  Also printed: the process count
           and RSS 2 s after every session's QUIT.
Each measurement also reports the CPU time the server's process tree used
(utime+stime of live processes plus cutime+cstime of reaped ones, from
/proc) per login or per GB, and the clients' own CPU: the clients are
Python, and on this 2-CPU machine they compete with the server, which pulls
the rate ratios towards 1; the CPU figures do not depend on that.

The mailboxes: every account is a system user (useradd, home under the
instance's directory, removed with userdel -r at the end) whose ~/Maildir
holds --messages (default 50) messages in cur/, already seen, named as
Dovecot and Posthorn's local name them ("TIME.MUSECPPID.HOST,S=SIZE,W=
CRLFSIZE:2,S"), so neither server reads a file to learn its size and
neither renames one at QUIT.  The text is generated (headers, paragraphs of
words wrapped at 72, a few lines starting with "."), LF line ends.  The
first --clients accounts (the logins and retr loads) have messages of
--msg-size bytes (default 100 KB); the other accounts (only in the memory
load) messages of 4 KB.  Both servers read the very same files (the same
~/Maildir: Posthorn's lock file and Dovecot's index files lie beside
cur/ and new/ and neither looks at the other's); the first RETR pass of each
server is checked octet for octet against the CRLF, dot-stuffed text.
At the end the script checks that cur/ still holds the same names.

Posthorn: a throwaway instance (t/lib/posthorn.py: mailctl init; pop3d on
110 and on 995 with tls_wrappermode, its self-signed P-256 certificate),
the pop3d inet services' process limit raised to --sessions + --clients +
50 (100 idle TLS sessions hold 100 login processes as proxies) and their
max_idle lowered to 5 s (see LOGIN_MAX_IDLE); passwords
with `mailctl user add NAME --password-stdin` (yescrypt; authd remembers a
verified password for 60 s).
Dovecot: its own config, base_dir, state_dir and log under the instance's
directory, listening on two free loopback ports, protocols = pop3, ssl with
Posthorn's certificate and key, disable_plaintext_auth = no,
mail_location = maildir:~/Maildir, userdb passwd, passdb pam (cache_key=%u)
with the same password as the accounts' /etc/shadow yescrypt hash,
auth_cache_size = 1M and auth_cache_ttl = 60 s (a cache hit runs no
yescrypt, as in Posthorn), process limits as Posthorn's, and otherwise
its defaults: pop3-login in high-security mode (service_count = 1: one
exec'd login process per connection, which stays as the TLS proxy; a pop3
process per session).  --dovecot-login performance gives pop3-login
Dovecot's high-performance mode instead (service_count = 0,
process_min_avail = the CPU count: every connection, and its TLS proxying,
in those few long-lived processes).  --skip leaves loads out.

Runs alternate between the servers (the order rotates every run); before
each measurement the disk is synced and the machine left alone for
--settle seconds (default 30), and the measured accounts log in once (warm
password caches).  Prints every measurement, then a table of medians over
the runs [min-max] with the ratio Posthorn/Dovecot, then the warnings and
errors each server logged.  Exit status 1 if a measurement failed or a
client saw an error; never on the figures.

Every process it starts (the servers, the client processes) is killed by
PID at the end, also on Ctrl-C, SIGTERM or an error.
"""
import argparse
import json
import os
import pwd
import random
import re
import signal
import socket
import statistics
import struct
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "t", "lib"))
sys.path.insert(0, os.path.join(TOP, "bench"))
from posthorn import Instance, free_port  # noqa: E402
import dovecotinst  # noqa: E402
from dovecotinst import (client_ctx, instance_tls, listening, med_range,  # noqa: E402
                         memory_report, set_posthorn_passwords,
                         set_shadow_passwords, settle, tree_cpu, tree_memory)

DOVECOT_POP3 = "/usr/lib/dovecot/pop3"
INSTALL_DOVECOT = "apt-get install -y dovecot-pop3d dovecot-core"
PASSWORD = "bench-Pa55word-%d" % os.getpid()
IO_TIMEOUT = 60
SETTLE = 30.0
CACHE_TTL = 60          # Posthorn's AUTHD_CACHE_SECONDS; Dovecot's auth_cache_ttl
IDLE_MSG_SIZE = 4096    # the messages of the accounts only the memory load uses
# Posthorn's login processes wait max_idle for another connection before
# they exit (default 100 s): the bench's 5 s lets the ones an earlier load
# left go before a memory baseline, so that every run's baseline is the
# server at rest and the login (TLS proxy) processes the held sessions need
# count in their figure.
LOGIN_MAX_IDLE = 5


# --------------------------------------------------------------- messages

WORDS = ("the of and to a in that is was he for it with as his on be at by had not are "
         "but from or have an they which one you were all her she there would their we him "
         "been has when who will no more if out so up said what its about than into them can "
         "only other time new some could these two may first then do any like my now over "
         "such our man me even most made after also did many off before must well back "
         "through years where much your way down should because long each just those people "
         "meeting report budget schedule delivery server mailbox password quarter invoice "
         "project review draft attached please thanks regards tomorrow morning afternoon "
         "Monday Friday agenda minutes figures estimate customer support release update").split()


def make_message(rnd, i, size):
    """One realistic text message of about size octets, LF line ends."""
    t = 1700000000 + i * 37
    head = ("Return-Path: <sender%d@example.org>\n"
            "Received: from client.example.org (client.example.org [192.0.2.%d])\n"
            "\tby mail.example.test with ESMTPS id %08X\n"
            "\tfor <user@example.test>; %s\n"
            "From: Sender %d <sender%d@example.org>\n"
            "To: User <user@example.test>\n"
            "Subject: pop3_bench message %d: %s\n"
            "Date: %s\n"
            "Message-ID: <%d.%d@example.org>\n"
            "MIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=us-ascii\n"
            "Content-Transfer-Encoding: 7bit\n\n"
            % (i, i % 250 + 1, rnd.getrandbits(32),
               time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(t)), i, i, i,
               " ".join(rnd.choice(WORDS) for _ in range(5)),
               time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(t)), t, i))
    out = [head]
    n = len(head)
    while n < size:
        # A paragraph of 3-12 lines wrapped at 72, sometimes a line that
        # starts with "." (dot-stuffed on the wire).
        line = "." if rnd.random() < 0.03 else ""
        for _ in range(rnd.randint(3, 12)):
            while len(line) < 66:
                w = rnd.choice(WORDS)
                line += (" " if line and line != "." else "") + w
            line = line[:72].rstrip() + "\n"
            out.append(line)
            n += len(line)
            line = ""
        out.append("\n")
        n += 1
    text = "".join(out).encode()
    return text[:size].rsplit(b"\n", 1)[0] + b"\n" if len(text) > size else text


def message_name(i, data):
    """Dovecot's (and Posthorn's local's) Maildir name, seen: S= the file's
    octets, W= its octets with CRLF line ends."""
    return "%d.M%06dP%d.bench,S=%d,W=%d:2,S" % (1700000000 + i * 37, 1000 + i, 4242 + i,
                                                 len(data), len(data) + data.count(b"\n"))


def wire_form(data):
    """What RETR sends between its +OK line and the final ".": CRLF line
    ends, dot-stuffed."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines)


# --------------------------------------------------------------- client

class POPError(Exception):
    pass


class Conn:
    """A minimal POP3 client over a raw socket (or an SSL socket): the same
    code and cost for both servers."""

    def __init__(self, port, ctx=None):
        sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ctx is not None:
            try:
                sock = ctx.wrap_socket(sock)
            except BaseException:
                sock.close()
                raise
        self.sock = sock
        self.buf = bytearray()

    def line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            data = self.sock.recv(65536)
            if not data:
                raise POPError("connection closed")
            self.buf += data

    def ok(self, what):
        line = self.line()
        if not line.startswith(b"+OK"):
            raise POPError("%s: %r" % (what, line[:200]))
        return line

    def cmd(self, line, what=None):
        self.sock.sendall(line + b"\r\n")
        return self.ok(what or line.split(b" ")[0].decode())

    def login(self, user, password):
        self.ok("greeting")
        self.cmd(b"USER " + user.encode())
        self.cmd(b"PASS " + password.encode(), "PASS")

    def stat(self):
        return int(self.cmd(b"STAT").split()[1])

    def retr(self, n, keep=False):
        """RETR n: the octets between the +OK line and the final "." (the
        data itself with keep)."""
        self.cmd(b"RETR %d" % n, "RETR %d" % n)
        data, self.buf = bytes(self.buf), bytearray()
        tail, total, parts = b"\r\n", 0, []
        while True:
            if data:
                total += len(data)
                tail = (tail + data[-5:])[-5:]
                if keep:
                    parts.append(data)
                if tail == b"\r\n.\r\n":
                    break
            data = self.sock.recv(262144)
            if not data:
                raise POPError("RETR %d: connection closed" % n)
        return b"".join(parts)[:-3] if keep else total - 3

    def quit(self):
        self.cmd(b"QUIT")
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def login_session(port, ctx, user):
    c = Conn(port, ctx)
    try:
        c.login(user, PASSWORD)
        c.stat()
        c.quit()
    finally:
        c.close()


# --------------------------------------------------------------- load

def worker_logins(port, tls, user, deadline):
    ctx = client_ctx() if tls else None
    done = 0
    while time.time() < deadline:
        login_session(port, ctx, user)
        done += 1
    return {"sessions": done}


def worker_retr(port, tls, user, deadline):
    ctx = client_ctx() if tls else None
    octets = retrs = rounds = 0
    while time.time() < deadline:
        c = Conn(port, ctx)
        try:
            c.login(user, PASSWORD)
            n = c.stat()
            for i in range(1, n + 1):
                octets += c.retr(i)
                retrs += 1
                if time.time() >= deadline:
                    break
            else:
                rounds += 1
            c.quit()
        finally:
            c.close()
    return {"octets": octets, "retrs": retrs, "rounds": rounds}


class Load:
    """One measurement's client processes (forked; each reports one JSON
    line through a pipe); killed by PID if the benchmark stops early."""
    live = []

    @classmethod
    def run(cls, fn, port, tls, users, seconds):
        """Start len(users) clients together, each running fn for seconds;
        returns (elapsed, [results], client CPU seconds, [errors])."""
        procs = []
        for user in users:
            go_r, go_w = os.pipe()
            res_r, res_w = os.pipe()
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    signal.signal(signal.SIGINT, signal.SIG_DFL)
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)
                    os.close(go_w)
                    os.close(res_r)
                    start = struct.unpack("d", os.read(go_r, 8))[0]
                    while time.time() < start:
                        time.sleep(max(0.0, start - time.time()))
                    try:
                        out = fn(port, tls, user, start + seconds)
                    except Exception as e:       # noqa: BLE001 - reported, not hidden
                        out = {"error": "%s: %s" % (type(e).__name__, e)}
                    out["end"] = time.time()
                    os.write(res_w, json.dumps(out).encode())
                except BaseException:
                    code = 1
                finally:
                    os._exit(code)   # never the parent's atexit (the instance's cleanup)
            os.close(go_r)
            os.close(res_w)
            procs.append((pid, go_w, res_r))
            cls.live.append(pid)
        start = time.time() + 0.2
        for _, go_w, _ in procs:
            os.write(go_w, struct.pack("d", start))
            os.close(go_w)
        results, errors, cpu = [], [], 0.0
        for pid, _, res_r in procs:
            chunks = []
            while True:
                b = os.read(res_r, 65536)
                if not b:
                    break
                chunks.append(b)
            os.close(res_r)
            _, status, ru = os.wait4(pid, 0)
            cls.live.remove(pid)
            cpu += ru.ru_utime + ru.ru_stime
            try:
                r = json.loads(b"".join(chunks))
            except ValueError:
                errors.append("client %d exited with status %d, no result" % (pid, status))
                continue
            if "error" in r:
                errors.append(r["error"])
            results.append(r)
        ends = [r["end"] for r in results]
        return (max(ends) - start if ends else 0.0), results, cpu, errors

    @classmethod
    def kill(cls):
        for pid in list(cls.live):
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass
        cls.live = []


class Dovecot(dovecotinst.Dovecot):
    """A private Dovecot POP3 server (bench/dovecotinst.py): config,
    base_dir, state_dir and log under base, listening on 127.0.0.1:port110
    and :port995 (ssl)."""

    def __init__(self, base, port110, port995, cert, key, limit, login_mode="security"):
        super().__init__(base)
        self.port110, self.port995 = port110, port995
        os.chmod(base, 0o755)
        with open(self.conf, "w") as f:
            f.write("""# pop3_bench.py: a private Dovecot, POP3 only
base_dir = {base}/run
state_dir = {base}/state
instance_name = pop3_bench-{pid}
log_path = {log}
protocols = pop3
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_cache_size = 1M
auth_cache_ttl = {ttl} s
mail_location = maildir:~/Maildir
first_valid_uid = 1000
passdb {{
  driver = pam
  args = cache_key=%u dovecot
}}
userdb {{
  driver = passwd
}}
default_process_limit = {limit}
default_client_limit = {climit}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {p110}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {p995}
    ssl = yes
  }}
{login_mode}}}
""".format(base=base, pid=os.getpid(), log=self.logfile, cert=cert, key=key, ttl=CACHE_TTL,
           limit=limit, climit=4 * limit + 100, p110=port110, p995=port995,
           login_mode="" if login_mode == "security" else
           "  service_count = 0\n  process_min_avail = %d\n" % os.cpu_count()))

    def ready(self):
        return listening(self.port110) and listening(self.port995)


# --------------------------------------------------------------- setup

def make_users(inst, count, messages, msg_size, big_count):
    """count accounts, each with a ~/Maildir/cur of messages; the first
    big_count with msg_size-byte messages, the others IDLE_MSG_SIZE.
    Returns (users, {size: [(name, data)]})."""
    rnd = random.Random(1939)
    boxes = {}
    for size in sorted({msg_size, IDLE_MSG_SIZE}):
        boxes[size] = []
        for i in range(messages):
            data = make_message(rnd, i, size)
            boxes[size].append((message_name(i, data), data))
    users = []
    tag = os.getpid() % 100000
    for i in range(count):
        name, home = inst.add_user("p3b%d_%03d" % (tag, i))
        pw = pwd.getpwnam(name)
        md = os.path.join(home, "Maildir")
        for sub in ("", "cur", "new", "tmp"):
            d = os.path.join(md, sub)
            os.makedirs(d, mode=0o700, exist_ok=True)
            os.chown(d, pw.pw_uid, pw.pw_gid)
            os.chmod(d, 0o700)
        size = msg_size if i < big_count else IDLE_MSG_SIZE
        for mname, data in boxes[size]:
            p = os.path.join(md, "cur", mname)
            with open(p, "wb") as f:
                f.write(data)
            os.chown(p, pw.pw_uid, pw.pw_gid)
            os.chmod(p, 0o600)
        users.append({"name": name, "home": home, "size": size})
    return users, boxes


def cur_listing(users):
    out = {}
    for u in users:
        try:
            out[u["name"]] = sorted(os.listdir(os.path.join(u["home"], "Maildir", "cur")))
        except OSError:
            out[u["name"]] = None
    return out


def check_target(t, users, boxes):
    """Prove the setup: every account logs in on 110 (Dovecot builds its
    index here, outside any measurement), one on 995, and one account's
    messages come back octet for octet (and STAT's size is the CRLF size)."""
    for u in users:
        login_session(t["p110"], None, u["name"])
    c = Conn(t["p995"], client_ctx())
    try:
        t["tls"] = "%s %s" % (c.sock.version(), c.sock.cipher()[0])
        c.login(users[0]["name"], PASSWORD)
        n = c.stat()
        c.quit()
    finally:
        c.close()
    for u in (users[0], users[-1]):
        box = boxes[u["size"]]
        c = Conn(t["p110"])
        try:
            c.login(u["name"], PASSWORD)
            stat = c.cmd(b"STAT").split()
            want = sum(len(d) + d.count(b"\n") for _, d in box)
            if int(stat[1]) != len(box) or int(stat[2]) != want:
                raise RuntimeError("%s: STAT %s %s for %s, want %d %d" % (
                    t["name"], stat[1].decode(), stat[2].decode(), u["name"], len(box), want))
            for i, (_, data) in enumerate(box, 1):
                got = c.retr(i, keep=True)
                if got != wire_form(data):
                    raise RuntimeError("%s: RETR %d of %s differs from the file (%d octets, "
                                       "want %d)" % (t["name"], i, u["name"], len(got),
                                                     len(wire_form(data))))
            c.quit()
        finally:
            c.close()
    if n != len(boxes[users[0]["size"]]):
        raise RuntimeError("%s: STAT over TLS says %d messages" % (t["name"], n))


# --------------------------------------------------------------- measuring

def warm(t, port, tls, users):
    ctx = client_ctx() if tls else None
    for u in users:
        login_session(port, ctx, u["name"])


def measure_load(t, kind, tls, users, args):
    """logins or retr: returns {"value": ..., ...} or None."""
    port = t["p995"] if tls else t["p110"]
    label = "%s/%s" % (kind, "995" if tls else "110")
    settle(args.settle)
    warm(t, port, tls, users)
    cpu0 = tree_cpu(t["root"]())
    fn = worker_logins if kind == "logins" else worker_retr
    elapsed, results, ccpu, errors = Load.run(fn, port, tls, [u["name"] for u in users],
                                              args.duration)
    scpu = tree_cpu(t["root"]()) - cpu0
    if errors:
        t["errors"] += len(errors)
        print("  %-9s %-11s %d client(s) failed: %s" % (t["name"], label, len(errors),
                                                        "; ".join(sorted(set(errors))[:3])),
              flush=True)
    if elapsed <= 0:
        return None
    if kind == "logins":
        n = sum(r.get("sessions", 0) for r in results)
        if n == 0:
            return None
        out = {"value": n / elapsed, "cpu": scpu * 1e3 / n}
        print("  %-9s %-11s %8.1f logins/s   (%d in %.2f s; server CPU %.2f ms/login, "
              "clients %.2f ms/login)" % (t["name"], label, out["value"], n, elapsed, out["cpu"],
                                          ccpu * 1e3 / n), flush=True)
    else:
        octets = sum(r.get("octets", 0) for r in results)
        if octets == 0:
            return None
        gb = octets / 1e9
        out = {"value": octets / 1e6 / elapsed, "cpu": scpu / gb}
        print("  %-9s %-11s %8.1f MB/s       (%.1f MB, %d RETR, %d full rounds in %.2f s; "
              "server CPU %.2f s/GB, clients %.2f s/GB)"
              % (t["name"], label, out["value"], octets / 1e6,
                 sum(r.get("retrs", 0) for r in results),
                 sum(r.get("rounds", 0) for r in results), elapsed, out["cpu"], ccpu / gb),
              flush=True)
    return None if errors else out


def measure_memory(t, tls, users, args):
    port = t["p995"] if tls else t["p110"]
    label = "memory/%s" % ("995" if tls else "110")
    ctx = client_ctx() if tls else None
    settle(args.settle)
    warm(t, port, tls, users)
    time.sleep(LOGIN_MAX_IDLE + 2)          # idle login processes gone (both servers wait)
    n0, rss0, pss0 = tree_memory(t["root"]())
    conns = []
    try:
        t0 = time.monotonic()
        for u in users:
            c = Conn(port, ctx)
            conns.append(c)
            c.login(u["name"], PASSWORD)
            c.stat()
        t_open = time.monotonic() - t0
        time.sleep(2)
        n1, rss1, pss1 = tree_memory(t["root"]())
        # Still all there?
        for c in conns:
            c.cmd(b"NOOP")
        for c in conns:
            c.quit()
    except (OSError, POPError) as e:
        t["errors"] += 1
        print("  %-9s %-11s FAILED after %d sessions: %s" % (t["name"], label, len(conns), e),
              flush=True)
        return None
    finally:
        for c in conns:
            c.close()
    # After QUIT every session's processes should be gone again.
    time.sleep(2)
    return memory_report(t["name"], label, len(users), t_open, (n0, rss0, pss0),
                         (n1, rss1, pss1), tree_memory(t["root"]()), "QUIT")


# --------------------------------------------------------------- report

METRICS = [
    # key, title, format, better
    ("logins/110", "logins/s, 110", "%.1f", "higher"),
    ("logins/995", "logins/s, 995 TLS", "%.1f", "higher"),
    ("retr/110", "RETR MB/s, 110", "%.1f", "higher"),
    ("retr/995", "RETR MB/s, 995 TLS", "%.1f", "higher"),
    ("logins/110 cpu", "server CPU ms/login, 110", "%.2f", "lower"),
    ("logins/995 cpu", "server CPU ms/login, 995", "%.2f", "lower"),
    ("retr/110 cpu", "server CPU s/GB, 110", "%.2f", "lower"),
    ("retr/995 cpu", "server CPU s/GB, 995", "%.2f", "lower"),
    ("memory/110", "RSS kB/idle session, 110", "%.0f", "lower"),
    ("memory/110 pss", "PSS kB/idle session, 110", "%.0f", "lower"),
    ("memory/995", "RSS kB/idle session, 995", "%.0f", "lower"),
    ("memory/995 pss", "PSS kB/idle session, 995", "%.0f", "lower"),
]


def print_table(results, runs):
    print()
    print("medians of %d run(s) [min-max]; ratio = Posthorn / Dovecot:" % runs)
    row = "  %-27s %-26s %-26s %-8s %s"
    print(row % ("metric", "Posthorn", "Dovecot", "ratio", "better"))
    for key, title, fmt, better in METRICS:
        cells = [med_range(results[n].get(key, []), fmt) for n in ("posthorn", "dovecot")]
        ph, dc = results["posthorn"].get(key), results["dovecot"].get(key)
        ratio = "%.2fx" % (statistics.median(ph) / statistics.median(dc)) \
            if ph and dc and statistics.median(dc) else "-"
        if not (ph or dc):
            continue
        print(row % (title, cells[0], cells[1], ratio, better))


def log_problems(name, text, pattern):
    lines = [l for l in text.splitlines() if re.search(pattern, l)]
    if not lines:
        print("%s: no warnings or errors logged" % name)
        return 0
    # The same message with other numbers counts once.
    seen = {}
    for l in lines:
        k = re.sub(r"\d+", "N", re.sub(r"^\S+ +\d+ [\d:]+ \S+ ", "", l))
        seen.setdefault(k, [0, l])[0] += 1
    print("%s: %d warning/error lines in its log, %d kinds:" % (name, len(lines), len(seen)))
    for k, (count, l) in list(seen.items())[:15]:
        print("  %5dx %s" % (count, l[:300]))
    return len(lines)


def interrupted(signum, frame):
    raise KeyboardInterrupt()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--duration", type=float, default=10.0,
                    help="seconds of each logins and retr measurement (default 10)")
    ap.add_argument("-r", "--runs", type=int, default=3, help="runs (default 3)")
    ap.add_argument("-c", "--clients", type=int, default=10,
                    help="concurrent client processes, an account each (default 10)")
    ap.add_argument("--sessions", type=int, default=100,
                    help="idle sessions held for the memory figures, an account each "
                         "(default 100)")
    ap.add_argument("--messages", type=int, default=50, help="messages per mailbox (default 50)")
    ap.add_argument("--msg-size", type=int, default=100 * 1024,
                    help="octets per message of the clients' mailboxes (default 102400)")
    ap.add_argument("--settle", type=float, default=SETTLE,
                    help="seconds to wait (after sync) before each measurement "
                         "(default %(default)s)")
    ap.add_argument("--only", choices=("posthorn", "dovecot"), help="measure one server only")
    ap.add_argument("--dovecot-login", choices=("security", "performance"), default="security",
                    help="Dovecot's pop3-login mode: security (Debian's default, "
                         "service_count = 1) or performance (service_count = 0, "
                         "process_min_avail = CPUs); default security")
    ap.add_argument("--skip", default="",
                    help="comma-separated loads to leave out, of: logins, retr, memory")
    ap.add_argument("--keep", action="store_true", help="keep the instance's directory")
    args = ap.parse_args()
    skip = set(s for s in args.skip.split(",") if s)
    if skip - {"logins", "retr", "memory"}:
        sys.exit("pop3_bench.py: --skip takes logins, retr, memory")
    if os.geteuid() != 0:
        sys.exit("pop3_bench.py: run as root")
    if args.clients < 1 or args.sessions < 1 or args.runs < 1 or args.messages < 1 \
            or args.duration <= 0 or args.msg_size < 1024:
        sys.exit("pop3_bench.py: need --clients, --sessions, -r, --messages >= 1, -n > 0, "
                 "--msg-size >= 1024")
    if args.only != "posthorn":
        if dovecotinst.missing() or not os.access(DOVECOT_POP3, os.X_OK):
            sys.exit("pop3_bench.py: Dovecot's POP3 server is not installed:\n    %s\n"
                     "(or run with --only posthorn)" % INSTALL_DOVECOT)
        dver = dovecotinst.version()
        if not dver.startswith("2.3"):
            sys.exit("pop3_bench.py: the private Dovecot's configuration is Dovecot 2.3's; "
                     "this is %s" % dver)

    signal.signal(signal.SIGTERM, interrupted)
    inst, dc, failed, users, before = None, None, False, [], None
    limit = args.sessions + args.clients + 50
    try:
        # Every client is 127.0.0.1: no per-address limit (Dovecot has none).
        inst = Instance(main_conf={"pop3d_client_connection_count_limit": "0"})
        # The login halves only: the mail half stays one process.
        inst.edit_service("pop3d", "-o max_idle=%ds" % LOGIN_MAX_IDLE, maxproc=limit,
                          type_="inet")
        nusers = max(args.sessions, args.clients)
        t0 = time.monotonic()
        users, boxes = make_users(inst, nusers, args.messages, args.msg_size, args.clients)
        print("pop3_bench: %d accounts (useradd, Maildirs) made in %.1f s"
              % (nusers, time.monotonic() - t0), flush=True)
        targets = []
        cert, key = instance_tls(inst)
        if args.only != "dovecot":
            t0 = time.monotonic()
            set_posthorn_passwords(inst, users, PASSWORD)
            print("pop3_bench: %d Posthorn passwords (mailctl user add) set in %.1f s"
                  % (nusers, time.monotonic() - t0), flush=True)
            r = inst.start()
            if r.returncode != 0 or not inst.master_pid:
                raise RuntimeError("posthorn start failed: " + r.stderr)
            end = time.time() + 10
            while time.time() < end and not (listening(inst.port(110))
                                             and listening(inst.port(995))):
                time.sleep(0.05)
            targets.append({
                "name": "posthorn", "p110": inst.port(110), "p995": inst.port(995),
                "root": lambda: inst.master_pid, "errors": 0, "uses": [
                    "pop3d: login half as posthorn-null in its jail (a process per connection "
                    "at a time, kept as the proxy under TLS), hand-over to the root mail half, "
                    "a session process as the user",
                    "passwords: mailctl user add (yescrypt); authd keeps a verified password "
                    "%d s" % CACHE_TTL,
                    "pop3d inet services: maxproc %d, max_idle %d s (default 100 s)"
                    % (limit, LOGIN_MAX_IDLE)]})
        if args.only != "posthorn":
            t0 = time.monotonic()
            set_shadow_passwords(users, PASSWORD)
            print("pop3_bench: %d shadow passwords (chpasswd -e, yescrypt) set in %.1f s"
                  % (nusers, time.monotonic() - t0), flush=True)
            dc = Dovecot(os.path.join(inst.dir, "dovecot"), free_port(), free_port(), cert, key,
                         limit, args.dovecot_login)
            dc.start()
            targets.append({
                "name": "dovecot", "p110": dc.port110, "p995": dc.port995, "root": dc.root,
                "errors": 0, "uses": [
                    "Dovecot %s: %s, a pop3 process per session (exec'd)" % (
                        dver, "pop3-login in high-security mode (service_count = 1, Debian's "
                        "default: an exec'd process per connection, the proxy under TLS)"
                        if args.dovecot_login == "security" else
                        "pop3-login in high-performance mode (service_count = 0, "
                        "process_min_avail = %d: every connection, and its TLS proxying, in "
                        "those few processes)" % os.cpu_count()),
                    "passdb pam (pam_unix, yescrypt in /etc/shadow) cache_key=%%u, "
                    "auth_cache_ttl = %d s; userdb passwd" % CACHE_TTL,
                    "default_process_limit %d, default_client_limit %d" % (limit,
                                                                           4 * limit + 100)]})
        for t in targets:
            t0 = time.monotonic()
            check_target(t, users, boxes)
            t["uses"].insert(1, "TLS on 995: %s, Posthorn's self-signed P-256 certificate, "
                                "no session resumption" % t["tls"])
            t["uses"].append("setup check: %d logins, 2 mailboxes RETRieved and compared, "
                             "in %.1f s" % (len(users), time.monotonic() - t0))
        before = cur_listing(users)
        big = boxes[args.msg_size]
        print("pop3_bench: %d clients, %d s per load, %d runs, settle %.0f s; mailboxes: "
              "%d messages of %d octets (%d with CRLF) for the clients, %d of %d for the "
              "other accounts; %d idle sessions for memory"
              % (args.clients, args.duration, args.runs, args.settle, args.messages,
                 sum(len(d) for _, d in big) // len(big),
                 sum(len(d) + d.count(b"\n") for _, d in big) // len(big),
                 args.messages, IDLE_MSG_SIZE, args.sessions))
        for t in targets:
            print("%s:" % t["name"])
            for line in t["uses"]:
                print("  " + line)
        sys.stdout.flush()
        results = {"posthorn": {}, "dovecot": {}}
        loads = [(k, tls) for k in ("logins", "retr", "memory") if k not in skip
                 for tls in (False, True)]
        for i in range(args.runs):
            print("run %d" % (i + 1), flush=True)
            k = i % len(targets)
            order = targets[k:] + targets[:k]
            for kind, tls in loads:
                key = "%s/%s" % (kind, "995" if tls else "110")
                for t in order:
                    if kind == "memory":
                        res = measure_memory(t, tls, users[:args.sessions], args)
                    else:
                        res = measure_load(t, kind, tls, users[:args.clients], args)
                    if dc:
                        dc.track()
                    if inst:
                        inst.track()
                    if res is None:
                        failed = True
                        continue
                    r = results[t["name"]]
                    r.setdefault(key, []).append(res["value"])
                    if res.get("cpu") is not None:
                        r.setdefault(key + " cpu", []).append(res["cpu"])
                    if res.get("pss") is not None:
                        r.setdefault(key + " pss", []).append(res["pss"])
        print_table(results, args.runs)
        print()
        after = cur_listing(users)
        changed = [u for u in before if before[u] != after.get(u)]
        print("Maildirs: %s" % ("cur/ unchanged in every account" if not changed else
                                "cur/ CHANGED in %d accounts (e.g. %s)" % (len(changed),
                                                                           changed[0])))
        failed |= bool(changed)
        for t in targets:
            if t["name"] == "posthorn":
                text = inst.log()
                log_problems("posthorn log", text, r"warning|error|fatal|panic|killed by signal")
                print("  sessions logged: %d login:, %d logout:, %d disconnected:, %d in use"
                      % tuple(len(re.findall(p, text, re.M)) for p in (
                          r"pop3d\[\d+\]: login: user=<[^>]*>, method",
                          r"pop3d\[\d+\]: logout: ", r"pop3d\[\d+\]: disconnected: ",
                          r"mailbox is in use")))
            else:
                text = dc.log()
                log_problems("dovecot log", text, r"(?i)\b(error|fatal|panic|warning)\b")
                print("  sessions logged: %d Login:, %d Logged out, %d other disconnections"
                      % tuple(len(re.findall(p, text, re.M)) for p in (
                          r"pop3-login: Info: Login: ", r"Disconnected: Logged out",
                          r"\bpop3\(.*Disconnected: (?!Logged out)")))
    except KeyboardInterrupt:
        print("pop3_bench: interrupted, cleaning up", file=sys.stderr)
        failed = True
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        Load.kill()
        if dc:
            dc.stop()
        if inst:
            inst.stop()
            if args.keep:
                os.environ["POSTHORN_KEEP"] = "1"
            inst.cleanup()      # kills what is left by PID, userdel -r the accounts
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
