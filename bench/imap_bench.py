#!/usr/bin/env python3
"""imap_bench.py - IMAP: Posthorn's imapd next to a private Dovecot
(Debian's dovecot-imapd), both started privately in one run, under
imaptest's stress mix (t/lib/imapstress.py).

    bench/imap_bench.py [-n SECONDS] [-r RUNS] [-c|--clients N] [--accounts N]
                        [--sessions N] [--messages N] [--msgs N]
                        [--settle SECONDS] [--check-secs SECONDS]
                        [--only posthorn|dovecot]
                        [--skip stress,memory,check] [--no-tls]
                        [--dovecot-login security|performance]
                        [--dovecot-passdb pam|plain] [--keep]

Needs root and, for Dovecot, `apt-get install -y --no-install-recommends
dovecot-imapd` (the script says so if it is missing; it never starts or
configures the system's Dovecot, only a private one).  Until imapd is
built it says "imapd not built" and measures Dovecot alone (exit status 1
unless --only dovecot asked for that).

The target (issue 14): at least 1.5x Dovecot's commands per second, with
zero consistency errors, and less memory per idle session.

Loads, the same for both servers, on plain IMAP (143: LOGIN is allowed
there by both, since 127.0.0.1 talking to 127.0.0.1 counts as secured)
and on implicit TLS (993: a full handshake per connection, no session
resumption; --no-tls leaves 993 out):
  stress   --clients (default 10) sessions of imaptest's stress mode for -n
           SECONDS (default 20) against --accounts (default 1, imaptest's
           usual single user; the clients share its INBOX) accounts:
           LOGIN, LIST 50%, STATUS 50%, SELECT, FETCH (UID FLAGS and 1-4
           random items of up to 100 random messages), FETCH2 (one message's
           BODY.PEEK[], [HEADER], [TEXT], [1] or RFC822.HEADER; again 30%),
           STORE 50% (+/-FLAGS, keywords), DELETE (STORE +FLAGS \\Deleted)
           and EXPUNGE keeping about --msgs (30) messages, APPEND (again 5%;
           LITERAL+ when advertised) and LOGOUT, pipelined as imaptest
           pipelines them; every reply goes through imapstress's checks.
           commands/s = tagged replies / time; logins/s = LOGIN OKs / time.
  memory   --sessions (default 100) accounts log in one after the other
           (LOGIN, SELECT INBOX) and stay idle; RSS and PSS (smaps_rollup)
           summed over every process of the server with them held, minus
           the same sum just before: per session.  Posthorn: master and all
           its descendants (login processes, TLS proxies, the mail halves:
           one process per user, authd, qmgr, pickup); Dovecot: its master
           and all its descendants (imap-login, one imap process per
           session, auth).  Before the baseline every account logs in and
           out once (password caches warm, auth workers started), then both
           servers get LOGIN_MAX_IDLE + 2 s, so that Posthorn's idle login
           processes have exited and the baseline is the server at rest.
           Also printed: the process count and RSS 2 s after every LOGOUT.
  check    once per server, after the measured runs, not timed: 10 clients
           x --check-secs (default 30) of the same mix plus COPY into INBOX,
           a checkpoint every 5 s (all sessions stop, NOOP, FETCH 1:* (UID
           FLAGS), their views must agree, \\Recent exactly once) and an
           outside delivery every 0.5 s (a file into the account's
           Maildir/new, as local writes it).
Each stress measurement also reports the CPU time the server's process tree
used (utime+stime of live processes plus cutime+cstime of reaped ones,
from /proc) per command, and the client's own CPU (one Python process,
asyncio): on this 2-CPU machine client and server compete, which pulls the
rate ratio towards 1; the CPU figures do not depend on that.  Consistency
errors (and warnings: EXPUNGE leaving a message its session had just
flagged \\Deleted, which Dovecot's Maildir does under concurrent flag
changes; imaptest does not check it) are counted over every load.

The mailboxes: every account is a system user (useradd, home under the
instance's directory, removed with userdel -r at the end) whose ~/Maildir
holds --messages (default 30) messages in cur/, already seen, named as
Dovecot and Posthorn's local name them (",S=SIZE,W=CRLFSIZE:2,S"), LF line
ends: the five kinds of imapstress's APPEND samples (plain text of 1.5,
6 and 30 KB, multipart/alternative, multipart/mixed with a base64
attachment), the same for every account.  The idle (memory) accounts
serve both servers (neither looks at the other's index files beside
cur/ and new/); the stress accounts are each server's own, since the
load changes them.  The setup check logs every account in on 143, one on
993, and compares one account's messages, BODY[] octet for octet with the
file in CRLF form.

Posthorn: a throwaway instance (t/lib/posthorn.py: mailctl init; imapd on
143 and on 993 with tls_wrappermode, the mail half the unix service imap,
its self-signed P-256 certificate), the imapd inet services' process limit
raised to --sessions + --clients + 50 (100 idle TLS sessions hold 100
login processes as proxies) and their max_idle lowered to 5 s (see
LOGIN_MAX_IDLE), imapd_client_connection_count_limit = 0 (every client is
127.0.0.1; Dovecot has no such limit); passwords with `mailctl user add
NAME --password-stdin` (yescrypt; authd remembers a verified password for
60 s).
Dovecot: its own config, base_dir, state_dir and log under the instance's
directory, listening on two free loopback ports, protocols = imap, ssl
with Posthorn's certificate and key, disable_plaintext_auth = no,
mail_location = maildir:~/Maildir, userdb passwd, passdb pam (cache_key=%u)
with the accounts' /etc/shadow password set to the same yescrypt hash,
auth_cache_size = 1M and auth_cache_ttl = 60 s (a cache hit runs no
yescrypt, as in Posthorn), mail_max_userip_connections and process limits
as Posthorn's, and otherwise its defaults: imap-login in high-security
mode (service_count = 1: one login process per connection, which stays as
the TLS proxy), an imap process per session.  --dovecot-login performance
gives imap-login Dovecot's high-performance mode instead (service_count =
0, process_min_avail = the CPU count).  --dovecot-passdb plain: passdb
passwd-file with {PLAIN} passwords (no hashing at all, and no cache).

Runs alternate between the servers (the order rotates every run); before
each measurement the disk is synced and the machine left alone for
--settle seconds (default 30), and the measured accounts log in once.
Prints every measurement, then a table of medians over the runs [min-max]
with the ratio Posthorn/Dovecot, the target's three conditions, then the
warnings and errors each server logged.  Exit status 1 if a measurement
failed or found a consistency error; never on the figures.

Every process it starts (the servers) is killed by PID at the end, also on
Ctrl-C, SIGTERM or an error; every account it made is removed.
"""
import argparse
import os
import pwd
import random
import re
import resource
import shutil
import signal
import statistics
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "t", "lib"))
sys.path.insert(0, os.path.join(TOP, "bench"))
import posthorn  # noqa: E402
from posthorn import Instance, MAILCTL, free_port  # noqa: E402
import dovecotinst  # noqa: E402
from dovecotinst import (instance_tls, listening, med_range,  # noqa: E402
                         memory_report, set_posthorn_passwords,
                         set_shadow_passwords, settle, tree_cpu, tree_memory)
import imapstress  # noqa: E402
from imapstress import SimpleClient  # noqa: E402

DOVECOT_IMAP = "/usr/lib/dovecot/imap"
INSTALL_DOVECOT = "apt-get install -y --no-install-recommends dovecot-imapd"
PASSWORD = "bench-Pa55word-%d" % os.getpid()
IO_TIMEOUT = 60
SETTLE = 30.0
CACHE_TTL = 60          # Posthorn's AUTHD_CACHE_SECONDS; Dovecot's auth_cache_ttl
LOGIN_MAX_IDLE = 5      # Posthorn's login processes' max_idle in the bench (default 100 s)
IMAPD = os.path.join(posthorn.BUILD, "libexec", "posthorn", "imapd")
TARGET_RATIO = 1.5


# --------------------------------------------------------------- messages

def mailbox_messages(count):
    """count messages (LF line ends) cycling through imapstress's sample
    kinds, the same for every account and both servers: [(name, data)]."""
    samples = imapstress.Samples(seed=1939)
    samples.tag = "imap_bench"
    rnd = random.Random(1939)
    out = []
    for i in range(count):
        crlf = samples.next(rnd)
        data = crlf.replace(b"\r\n", b"\n")
        name = "%d.M%06dP%d.bench,S=%d,W=%d:2,S" % (1700000000 + i * 37, 1000 + i, 4242 + i,
                                                    len(data), len(crlf))
        out.append((name, data))
    return out


def crlf(data):
    return data.replace(b"\n", b"\r\n")


# --------------------------------------------------------------- Dovecot

class Dovecot(dovecotinst.Dovecot):
    """A private Dovecot IMAP server (bench/dovecotinst.py): config,
    base_dir, state_dir and log under base, listening on 127.0.0.1:port143
    and :port993 (ssl)."""

    def __init__(self, base, port143, port993, cert, key, limit, login_mode="security",
                 passdb="pam", users=()):
        super().__init__(base)
        self.port143, self.port993 = port143, port993
        os.chmod(base, 0o755)
        if passdb == "pam":
            passdb_conf = "  driver = pam\n  args = cache_key=%u dovecot\n"
        else:
            pwfile = os.path.join(base, "passwd")
            with open(pwfile, "w") as f:
                for u in users:
                    f.write("%s:{PLAIN}%s\n" % (u, PASSWORD))
            shutil.chown(pwfile, "root", "dovecot")     # the auth process's group
            os.chmod(pwfile, 0o640)
            passdb_conf = "  driver = passwd-file\n  args = %s\n" % pwfile
        with open(self.conf, "w") as f:
            f.write("""# imap_bench.py: a private Dovecot, IMAP only
base_dir = {base}/run
state_dir = {base}/state
instance_name = imap_bench-{pid}
log_path = {log}
protocols = imap
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
{passdb}}}
userdb {{
  driver = passwd
}}
default_process_limit = {limit}
default_client_limit = {climit}
protocol imap {{
  mail_max_userip_connections = {limit}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {p143}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {p993}
    ssl = yes
  }}
{login_mode}}}
""".format(base=base, pid=os.getpid(), log=self.logfile, cert=cert, key=key, ttl=CACHE_TTL,
           passdb=passdb_conf, limit=limit, climit=4 * limit + 100, p143=port143, p993=port993,
           login_mode="" if login_mode == "security" else
           "  service_count = 0\n  process_min_avail = %d\n" % os.cpu_count()))

    def ready(self):
        return listening(self.port143) and listening(self.port993)


# --------------------------------------------------------------- setup

def make_account(inst, name, box):
    name, home = inst.add_user(name)
    pw = pwd.getpwnam(name)
    md = os.path.join(home, "Maildir")
    for sub in ("", "cur", "new", "tmp"):
        d = os.path.join(md, sub)
        os.makedirs(d, mode=0o700, exist_ok=True)
        os.chown(d, pw.pw_uid, pw.pw_gid)
        os.chmod(d, 0o700)
    for mname, data in box:
        p = os.path.join(md, "cur", mname)
        with open(p, "wb") as f:
            f.write(data)
        os.chown(p, pw.pw_uid, pw.pw_gid)
        os.chmod(p, 0o600)
    return {"name": name, "home": home, "uid": pw.pw_uid, "gid": pw.pw_gid}


def posthorn_services(inst, limit):
    """imapd on 143 and 993 (mailctl init writes them once imapd is built)
    and the mail half, the unix service imap; the login halves' process
    limit and max_idle for the bench."""
    path = os.path.join(inst.etc, "master.conf")
    with open(path) as f:
        text = f.read()
    active = [l.split() for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]
    add = []
    inet = [w for w in active if len(w) >= 6 and w[1] == "inet" and w[5] == "imapd"]
    if not any("tls_wrappermode=yes" not in " ".join(w) for w in inet):
        add.append("127.0.0.1:%d inet n - - imapd" % inst.port(143))
    if not any("tls_wrappermode=yes" in " ".join(w) for w in inet):
        add.append("127.0.0.1:%d inet n - - imapd -o tls_wrappermode=yes" % inst.port(993))
    if not any(len(w) >= 6 and w[0] == "imap" and w[1] == "unix" for w in active):
        add.append("imap unix y - - imapd")
    if add:
        with open(path, "a") as f:
            f.write("# imap_bench.py\n" + "".join(l + "\n" for l in add))
    inst.edit_service("imapd", "-o max_idle=%ds" % LOGIN_MAX_IDLE, maxproc=limit, type_="inet")
    return add


def known_parameter(name):
    """Whether this build's configuration knows the parameter (its table is
    in mailctl)."""
    try:
        with open(MAILCTL, "rb") as f:
            return (b"\0" + name.encode() + b"\0") in f.read()
    except OSError:
        return False


def login(port, tls, user):
    c = SimpleClient("127.0.0.1", port, tls="implicit" if tls else None, timeout=IO_TIMEOUT)
    try:
        c.login(user, PASSWORD)
    except BaseException:
        c.close()
        raise
    return c


def logout(c):
    try:
        c.cmd("LOGOUT")
    finally:
        c.close()


def check_target(t, users, box):
    """Prove the setup: every account logs in on 143 (Dovecot builds its
    index here, outside any measurement), one on 993, and one account's
    messages come back octet for octet."""
    for u in users:
        logout(login(t["p143"], False, u["name"]))
    c = login(t["p993"], True, users[0]["name"])
    t["tls"] = "%s %s" % (c.sock.version(), c.sock.cipher()[0])
    logout(c)
    u = users[0]
    c = login(t["p143"], False, u["name"])
    try:
        tagged, untagged = c.cmd("SELECT INBOX")
        exists = [int(l.split()[1]) for l in untagged if re.match(r"\* \d+ EXISTS", l)]
        if " OK " not in tagged or exists != [len(box)]:
            raise RuntimeError("%s: SELECT INBOX of %s: %s, EXISTS %s, want %d" % (
                t["name"], u["name"], tagged, exists, len(box)))
        for i, (_, data) in enumerate(box, 1):
            tagged, untagged = c.cmd("FETCH %d (BODY.PEEK[])" % i)
            got = untagged[0].encode("utf-8", "surrogateescape") if untagged else b""
            want = crlf(data)
            if " OK " not in tagged or want not in got or \
                    not got.startswith(("* %d FETCH (BODY[] {%d}\r\n" % (i, len(want))).encode()):
                raise RuntimeError("%s: BODY[] of message %d of %s differs from the file (%d "
                                   "octets)" % (t["name"], i, u["name"], len(want)))
    finally:
        logout(c)


# --------------------------------------------------------------- measuring

def warm(port, tls, users):
    for u in users:
        logout(login(port, tls, u["name"]))


def errors_line(t, label, r, limit=5):
    t["errors"] += r.error_count
    t["warnings"] += r.warning_count
    if r.error_count:
        print("  %-9s %-10s %d consistency errors, e.g.:" % (t["name"], label, r.error_count))
        for e in r.errors[:limit]:
            print("      " + str(e).replace("\n", "\n      "))
    sys.stdout.flush()


def cpu_self():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def measure_stress(t, tls, users, args):
    port = t["p993"] if tls else t["p143"]
    label = "stress/%s" % ("993" if tls else "143")
    settle(args.settle)
    warm(port, tls, users)
    cpu0, ccpu0 = tree_cpu(t["root"]()), cpu_self()
    r = imapstress.run_stress("127.0.0.1", port, [(u["name"], PASSWORD) for u in users],
                              clients=args.clients, seconds=args.duration,
                              tls="implicit" if tls else None, msgs=args.msgs,
                              timeout=IO_TIMEOUT)
    scpu, ccpu = tree_cpu(t["root"]()) - cpu0, cpu_self() - ccpu0
    if not r.commands:
        print("  %-9s %-10s FAILED: no commands completed" % (t["name"], label))
        errors_line(t, label, r)
        return None
    out = {"value": r.cps, "logins": r.lps, "cpu": scpu * 1e3 / r.commands,
           "errors": r.error_count}
    print("  %-9s %-10s %8.1f commands/s %6.1f logins/s  (%d commands, %d logins in %.1f s; "
          "server CPU %.3f ms/command, client %.3f ms/command; %d errors, %d warnings)"
          % (t["name"], label, r.cps, r.lps, r.commands, r.logins, r.seconds, out["cpu"],
             ccpu * 1e3 / r.commands, r.error_count, r.warning_count), flush=True)
    print("  %-9s %-10s %s" % ("", "", "  ".join(
        "%s %d" % (k, v) for k, v in sorted(r.per_command.items(), key=lambda kv: list(
            imapstress.STATES).index(kv[0]) if kv[0] in imapstress.STATES else 99))), flush=True)
    errors_line(t, label, r)
    return out


def measure_memory(t, tls, users, args):
    port = t["p993"] if tls else t["p143"]
    label = "memory/%s" % ("993" if tls else "143")
    settle(args.settle)
    warm(port, tls, users)
    time.sleep(LOGIN_MAX_IDLE + 2)          # idle login processes gone (both servers wait)
    n0, rss0, pss0 = tree_memory(t["root"]())
    conns = []
    try:
        t0 = time.monotonic()
        for u in users:
            c = login(port, tls, u["name"])
            conns.append(c)
            tagged, _ = c.cmd("SELECT INBOX")
            if " OK " not in tagged:
                raise RuntimeError("SELECT INBOX of %s: %s" % (u["name"], tagged))
        t_open = time.monotonic() - t0
        time.sleep(2)
        n1, rss1, pss1 = tree_memory(t["root"]())
        for c in conns:                     # still all there?
            tagged, _ = c.cmd("NOOP")
            if " OK " not in tagged:
                raise RuntimeError("NOOP: " + tagged)
        for c in conns:
            logout(c)
    except (OSError, ConnectionError, RuntimeError) as e:
        t["errors"] += 1
        print("  %-9s %-10s FAILED after %d sessions: %s" % (t["name"], label, len(conns), e),
              flush=True)
        return None
    finally:
        for c in conns:
            c.close()
    time.sleep(2)
    return memory_report(t["name"], label, len(users), t_open, (n0, rss0, pss0),
                         (n1, rss1, pss1), tree_memory(t["root"]()), "LOGOUT")


def dropper(accounts):
    """An outside delivery: a new file in the account's Maildir/new, LF
    line ends, written in tmp/ and renamed, owned by the account."""
    by_name = {u["name"]: u for u in accounts}
    n = [0]

    def deliver(user):
        u = by_name[user]
        n[0] += 1
        data = ("Return-Path: <outside@example.org>\nFrom: Outside <outside@example.org>\n"
                "To: %s@example.test\nSubject: outside delivery %d\nMessage-ID: <out.%d.%d@"
                "example.org>\n\nDelivered while the sessions run, %d.\n"
                % (user, n[0], os.getpid(), n[0], n[0])).encode()
        name = "%d.M%dP%d.outside,S=%d,W=%d" % (time.time(), n[0], os.getpid(), len(data),
                                                 len(data) + data.count(b"\n"))
        md = os.path.join(u["home"], "Maildir")
        tmp = os.path.join(md, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(data)
        os.chown(tmp, u["uid"], u["gid"])
        os.chmod(tmp, 0o600)
        os.rename(tmp, os.path.join(md, "new", name))
    return deliver


def run_check(t, users, args):
    label = "check/143"
    settle(min(args.settle, 5))
    r = imapstress.run_stress("127.0.0.1", t["p143"], [(u["name"], PASSWORD) for u in users],
                              clients=args.clients, seconds=args.check_secs, msgs=args.msgs,
                              checkpoint=5, copybox="INBOX", deliver=dropper(users),
                              deliver_every=0.5, timeout=IO_TIMEOUT)
    print("  %-9s %-10s %d commands, %d logins, %d checkpoints, %d outside deliveries in "
          "%.1f s: %d errors, %d warnings" % (t["name"], label, r.commands, r.logins,
                                              r.checkpoints, r.deliveries, r.seconds,
                                              r.error_count, r.warning_count), flush=True)
    errors_line(t, label, r)
    return r


# --------------------------------------------------------------- report

METRICS = [
    # key, title, format, better
    ("stress/143", "commands/s, 143", "%.1f", "higher"),
    ("stress/993", "commands/s, 993 TLS", "%.1f", "higher"),
    ("stress/143 logins", "logins/s, 143", "%.1f", "higher"),
    ("stress/993 logins", "logins/s, 993 TLS", "%.1f", "higher"),
    ("stress/143 cpu", "server CPU ms/command, 143", "%.3f", "lower"),
    ("stress/993 cpu", "server CPU ms/command, 993", "%.3f", "lower"),
    ("memory/143", "RSS kB/idle session, 143", "%.0f", "lower"),
    ("memory/143 pss", "PSS kB/idle session, 143", "%.0f", "lower"),
    ("memory/993", "RSS kB/idle session, 993", "%.0f", "lower"),
    ("memory/993 pss", "PSS kB/idle session, 993", "%.0f", "lower"),
]


def ratio(results, key):
    ph, dc = results["posthorn"].get(key), results["dovecot"].get(key)
    if ph and dc and statistics.median(dc):
        return statistics.median(ph) / statistics.median(dc)
    return None


def print_table(results, runs):
    print()
    print("medians of %d run(s) [min-max]; ratio = Posthorn / Dovecot:" % runs)
    row = "  %-27s %-26s %-26s %-8s %s"
    print(row % ("metric", "Posthorn", "Dovecot", "ratio", "better"))
    for key, title, fmt, better in METRICS:
        ph, dc = results["posthorn"].get(key), results["dovecot"].get(key)
        if not (ph or dc):
            continue
        q = ratio(results, key)
        print(row % (title, med_range(ph or [], fmt), med_range(dc or [], fmt),
                     "%.2fx" % q if q is not None else "-", better))


def print_target(results, targets):
    names = [t["name"] for t in targets]
    if "posthorn" not in names or "dovecot" not in names:
        return
    print()
    print("target (issue 14): commands/s >= %.1fx Dovecot's, zero consistency errors, less "
          "memory per idle session:" % TARGET_RATIO)
    for key in ("stress/143", "stress/993"):
        q = ratio(results, key)
        if q is not None:
            print("  %-26s %.2fx  %s" % ("commands/s " + key[7:], q,
                                         "met" if q >= TARGET_RATIO else "NOT met"))
    ph = [t for t in targets if t["name"] == "posthorn"][0]
    print("  %-26s %d errors (%d warnings)  %s" % ("consistency", ph["errors"], ph["warnings"],
                                                   "met" if not ph["errors"] else "NOT met"))
    for key in ("memory/143", "memory/143 pss", "memory/993", "memory/993 pss"):
        q = ratio(results, key)
        if q is not None:
            print("  %-26s %.2fx  %s" % (("RSS " if "pss" not in key else "PSS ") + key[7:10]
                                         + "/idle session", q, "met" if q < 1 else "NOT met"))


def log_problems(name, text, pattern):
    lines = [l for l in text.splitlines() if re.search(pattern, l)]
    if not lines:
        print("%s: no warnings or errors logged" % name)
        return 0
    seen = {}
    for l in lines:
        k = re.sub(r"\d+", "N", re.sub(r"^\S+ +\d+ [\d:]+ \S+ ", "", l))
        k = re.sub(r"<[^>]*>", "<..>", k)
        seen.setdefault(k, [0, l])[0] += 1
    print("%s: %d warning/error lines in its log, %d kinds:" % (name, len(lines), len(seen)))
    for k, (count, l) in list(seen.items())[:15]:
        print("  %5dx %s" % (count, l[:300]))
    return len(lines)


def interrupted(signum, frame):
    raise KeyboardInterrupt()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--duration", type=float, default=20.0,
                    help="seconds of each stress measurement (default 20)")
    ap.add_argument("-r", "--runs", type=int, default=3, help="runs (default 3)")
    ap.add_argument("-c", "--clients", type=int, default=10,
                    help="concurrent client sessions of the stress load (default 10)")
    ap.add_argument("--accounts", type=int, default=1,
                    help="accounts the stress clients share, each server its own (default 1, "
                         "imaptest's single user: all clients on one INBOX)")
    ap.add_argument("--sessions", type=int, default=100,
                    help="idle sessions held for the memory figures, an account each "
                         "(default 100)")
    ap.add_argument("--messages", type=int, default=30,
                    help="messages in each account's INBOX at the start (default 30)")
    ap.add_argument("--msgs", type=int, default=30,
                    help="messages the stress load keeps in the INBOX (imaptest's msgs, "
                         "default 30)")
    ap.add_argument("--settle", type=float, default=SETTLE,
                    help="seconds to wait (after sync) before each measurement "
                         "(default %(default)s)")
    ap.add_argument("--check-secs", type=float, default=30.0,
                    help="seconds of the consistency load (default 30)")
    ap.add_argument("--only", choices=("posthorn", "dovecot"), help="measure one server only")
    ap.add_argument("--no-tls", action="store_true", help="leave out the loads on 993")
    ap.add_argument("--dovecot-login", choices=("security", "performance"), default="security",
                    help="Dovecot's imap-login mode: security (Debian's default, "
                         "service_count = 1) or performance (service_count = 0, "
                         "process_min_avail = CPUs); default security")
    ap.add_argument("--dovecot-passdb", choices=("pam", "plain"), default="pam",
                    help="pam: /etc/shadow yescrypt via PAM, cached 60 s (default); plain: "
                         "a passwd-file of {PLAIN} passwords")
    ap.add_argument("--skip", default="",
                    help="comma-separated loads to leave out, of: stress, memory, check")
    ap.add_argument("--keep", action="store_true", help="keep the instance's directory")
    args = ap.parse_args()
    skip = set(s for s in args.skip.split(",") if s)
    if skip - {"stress", "memory", "check"}:
        sys.exit("imap_bench.py: --skip takes stress, memory, check")
    if os.geteuid() != 0:
        sys.exit("imap_bench.py: run as root")
    if args.clients < 1 or args.sessions < 1 or args.runs < 1 or args.messages < 1 \
            or args.accounts < 1 or args.duration <= 0 or args.msgs < 1:
        sys.exit("imap_bench.py: need --clients, --sessions, --accounts, -r, --messages, "
                 "--msgs >= 1, -n > 0")
    status = 0
    if not os.access(IMAPD, os.X_OK) and args.only != "dovecot":
        print("imap_bench: imapd not built (no %s in the build tree): measuring Dovecot only; "
              "run with --only dovecot to ask for that" % os.path.basename(IMAPD), flush=True)
        if args.only == "posthorn":
            sys.exit(1)
        args.only = "dovecot"
        status = 1
    if args.only != "posthorn":
        if dovecotinst.missing() or not os.access(DOVECOT_IMAP, os.X_OK):
            sys.exit("imap_bench.py: Dovecot's IMAP server is not installed:\n    %s\n"
                     "(or run with --only posthorn)" % INSTALL_DOVECOT)
        dver = dovecotinst.version()
        if not dver.startswith("2.3"):
            sys.exit("imap_bench.py: the private Dovecot's configuration is Dovecot 2.3's; "
                     "this is %s" % dver)

    signal.signal(signal.SIGTERM, interrupted)
    inst, dc, failed = None, None, False
    limit = args.sessions + args.clients + 50
    try:
        main_conf = {}
        if args.only != "dovecot" and known_parameter("imapd_client_connection_count_limit"):
            # Every client is 127.0.0.1: no per-address limit (Dovecot has none).
            main_conf["imapd_client_connection_count_limit"] = "0"
        inst = Instance(main_conf=main_conf)
        tag = os.getpid() % 100000
        box = mailbox_messages(args.messages)
        t0 = time.monotonic()
        idle = [make_account(inst, "i4b%d_%03d" % (tag, i), box) for i in range(args.sessions)]
        stress = {}
        for name in ("posthorn", "dovecot"):
            if args.only in (None, name):
                stress[name] = [make_account(inst, "i4b%d_%s%d" % (tag, name[0], i), box)
                                for i in range(args.accounts)]
        print("imap_bench: %d accounts (useradd, Maildirs of %d messages) made in %.1f s"
              % (len(idle) + sum(len(v) for v in stress.values()), args.messages,
                 time.monotonic() - t0), flush=True)
        targets = []
        cert, key = instance_tls(inst)
        if args.only != "dovecot":
            users = idle + stress["posthorn"]
            t0 = time.monotonic()
            set_posthorn_passwords(inst, users, PASSWORD)
            print("imap_bench: %d Posthorn passwords (mailctl user add) set in %.1f s"
                  % (len(users), time.monotonic() - t0), flush=True)
            added = posthorn_services(inst, limit)
            r = inst.start()
            if r.returncode != 0 or not inst.master_pid:
                raise RuntimeError("posthorn start failed: " + r.stderr)
            end = time.time() + 10
            while time.time() < end and not (listening(inst.port(143))
                                             and listening(inst.port(993))):
                time.sleep(0.05)
            targets.append({
                "name": "posthorn", "p143": inst.port(143), "p993": inst.port(993),
                "root": lambda: inst.master_pid, "errors": 0, "warnings": 0,
                "stress": stress["posthorn"], "uses": [
                    "imapd: login half as posthorn-null in its jail (a process per connection "
                    "at a time, kept as the proxy under TLS), hand-over to the mail half, one "
                    "process per user",
                    "passwords: mailctl user add (yescrypt); authd keeps a verified password "
                    "%d s" % CACHE_TTL,
                    "imapd inet services: maxproc %d, max_idle %d s (default 100 s)%s"
                    % (limit, LOGIN_MAX_IDLE, "; master.conf lines added: " + "; ".join(added)
                       if added else "")]})
        if args.only != "posthorn":
            users = idle + stress["dovecot"]
            if args.dovecot_passdb == "pam":
                t0 = time.monotonic()
                set_shadow_passwords(users, PASSWORD)
                print("imap_bench: %d shadow passwords (chpasswd -e, yescrypt) set in %.1f s"
                      % (len(users), time.monotonic() - t0), flush=True)
            dc = Dovecot(os.path.join(inst.dir, "dovecot"), free_port(), free_port(), cert, key,
                         limit, args.dovecot_login, args.dovecot_passdb,
                         [u["name"] for u in users])
            dc.start()
            targets.append({
                "name": "dovecot", "p143": dc.port143, "p993": dc.port993, "root": dc.root,
                "errors": 0, "warnings": 0, "stress": stress["dovecot"], "uses": [
                    "Dovecot %s: %s, an imap process per session" % (
                        dver, "imap-login in high-security mode (service_count = 1, Debian's "
                        "default: a process per connection, the proxy under TLS)"
                        if args.dovecot_login == "security" else
                        "imap-login in high-performance mode (service_count = 0, "
                        "process_min_avail = %d)" % os.cpu_count()),
                    "passdb pam (pam_unix, yescrypt in /etc/shadow) cache_key=%%u, "
                    "auth_cache_ttl = %d s; userdb passwd" % CACHE_TTL
                    if args.dovecot_passdb == "pam" else
                    "passdb passwd-file, {PLAIN} passwords (no cache); userdb passwd",
                    "default_process_limit %d, default_client_limit %d, "
                    "mail_max_userip_connections %d" % (limit, 4 * limit + 100, limit)]})
        for t in targets:
            t0 = time.monotonic()
            check_target(t, idle + t["stress"], box)
            t["uses"].insert(1, "TLS on 993: %s, Posthorn's self-signed P-256 certificate, "
                                "no session resumption" % t["tls"])
            t["uses"].append("setup check: %d logins, %d messages fetched and compared, in "
                             "%.1f s" % (len(idle) + len(t["stress"]), len(box),
                                         time.monotonic() - t0))
        print("imap_bench: %d clients on %d account(s) per server, %.0f s per stress load, %d "
              "runs, settle %.0f s; %d messages per INBOX (%d octets on average, CRLF); %d idle "
              "sessions for memory"
              % (args.clients, args.accounts, args.duration, args.runs, args.settle,
                 args.messages, sum(len(crlf(d)) for _, d in box) // len(box), args.sessions))
        for t in targets:
            print("%s:" % t["name"])
            for line in t["uses"]:
                print("  " + line)
        sys.stdout.flush()
        results = {"posthorn": {}, "dovecot": {}}
        tlss = (False,) if args.no_tls else (False, True)
        loads = [(k, tls) for k in ("stress", "memory") if k not in skip for tls in tlss]
        for i in range(args.runs if loads else 0):
            print("run %d" % (i + 1), flush=True)
            k = i % len(targets)
            order = targets[k:] + targets[:k]
            for kind, tls in loads:
                key = "%s/%s" % (kind, "993" if tls else "143")
                for t in order:
                    if kind == "memory":
                        res = measure_memory(t, tls, idle, args)
                    else:
                        res = measure_stress(t, tls, t["stress"], args)
                    if dc:
                        dc.track()
                    if inst:
                        inst.track()
                    if res is None:
                        failed = True
                        continue
                    r = results[t["name"]]
                    r.setdefault(key, []).append(res["value"])
                    for extra in ("logins", "cpu", "pss"):
                        if res.get(extra) is not None:
                            r.setdefault(key + " " + extra, []).append(res[extra])
        if "check" not in skip:
            print("consistency check (not timed)", flush=True)
            for t in targets:
                run_check(t, t["stress"], args)
        print_table(results, args.runs)
        print()
        for t in targets:
            print("%s: %d consistency errors, %d warnings over all loads"
                  % (t["name"], t["errors"], t["warnings"]))
            failed |= bool(t["errors"])
        print_target(results, targets)
        if args.only == "dovecot" and status:
            print("\nimap_bench: imapd not built: Dovecot alone, no comparison")
        print()
        for t in targets:
            if t["name"] == "posthorn":
                log_problems("posthorn log", inst.log(),
                             r"warning|error|fatal|panic|killed by signal")
            else:
                text = dc.log()
                log_problems("dovecot log", text, r"(?i)\b(error|fatal|panic|warning)\b")
                print("  sessions logged: %d Login:, %d Logged out"
                      % tuple(len(re.findall(p, text, re.M)) for p in (
                          r"imap-login: Info: Login: ", r"Disconnected: Logged out")))
    except KeyboardInterrupt:
        print("imap_bench: interrupted, cleaning up", file=sys.stderr)
        failed = True
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if dc:
            dc.stop()
        if inst:
            inst.stop()
            if args.keep:
                os.environ["POSTHORN_KEEP"] = "1"
            inst.cleanup()      # kills what is left by PID, userdel -r the accounts
    sys.exit(1 if failed else status)


if __name__ == "__main__":
    main()
