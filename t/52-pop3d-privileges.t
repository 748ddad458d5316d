#!/usr/bin/env python3
"""pop3d's login/mail split, checked on a running instance from /proc and
by attacking it as the login account, as a local user and as the user of
a session.

 - the login half of a waiting connection: login_user's uid and gid, its
   groups (login_user's and mail_owner's only), not dumpable, chrooted in
   queue_directory/login, which is root:login_user 0750 and holds nothing
   but the sockets of authd, anvil and the mail half;
 - the mail half: root, no chroot; each logged-in session a child of it
   running as the user (uid, gid and the user's groups, all four ids),
   not chrooted, not dumpable (its /proc files are root's: the user cannot
   read its memory or its descriptors);
 - under TLS the login process stays on as the proxy, still login_user in
   its jail; the user's session process holds no TLS: its only socket is a
   socketpair;
 - login_user cannot list any Maildir; a local user cannot reach the
   mail half's sockets (private/ and login/ are closed to it);
 - login_user (a compromised login half) that sends the mail half a
   hand-over with a made-up cookie is refused, and nothing is started;
   one that sends garbage is dropped and the mail half goes on serving;
 - killing the login process of a TLS session while the user's session
   has a DELE pending: the client sees the connection close, and nothing
   is deleted; a client that sends half a TLS record and goes quiet does
   not make its proxy spin;
 - a reload lets a session go on (the old mail half stays for it) while
   a new mail half takes new logins;
 - mailctl stop ends the session processes too.
Every process is cleaned up by PID."""
import grp
import os
import pwd
import signal
import socket
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, diag, done  # noqa: E402
import posthorn  # noqa: E402
import ipcframe  # noqa: E402
from pop3test import mail_user, Client, login, put_messages, maildir_name  # noqa: E402

PW = "pop-secret-2"
HANDOVER_REQUEST, HANDOVER_REPLY = 0x900, 0x901
inst = posthorn.Instance()
r = inst.start()
if r.returncode != 0:
    diag(r.stderr)
P110, P995 = inst.port(110), inst.port(995)


alice, alice_home = mail_user(inst, PW)
bob, bob_home = mail_user(inst, PW)
carol, carol_home = mail_user(inst, PW)
for user, home in ((alice, alice_home), (bob, bob_home)):
    put_messages(user, home, {maildir_name(i, b"Subject: m%d\n\nx\n" % i):
                              b"Subject: m%d\n\nx\n" % i for i in range(3)})
null = pwd.getpwnam("posthorn-null")
owner = pwd.getpwnam("posthorn")
jail = os.path.join(inst.spool, "login")


def ids(pid):
    st = posthorn.proc_status(pid)
    return ([int(x) for x in st["Uid"]], [int(x) for x in st["Gid"]],
            sorted(int(x) for x in st.get("Groups", [])))


def pop3d_pids():
    """{pid: (uid, parent)} of every pop3d process of the instance."""
    out = {}
    for pid in inst.track():
        try:
            if posthorn.alive(pid) and os.path.basename(posthorn.proc_cmdline(pid)) == "pop3d":
                st = posthorn.proc_status(pid)
                out[pid] = (int(st["Uid"][0]), int(st["PPid"][0]))
        except (OSError, KeyError, IndexError):
            pass
    return out


def children_now(parent):
    return [p for p in posthorn.children_of(parent) if posthorn.alive(p)]


# ------------------------------------------------------------ the jail

st = os.stat(jail)
is_((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (0, null.pw_gid, 0o750),
    "login/ is root:login_user 0750")
entries = sorted(os.listdir(jail))
is_(entries, ["anvil", "authd", "imap", "pop3"], "  it holds the sockets of authd, anvil and the "
    "mail halves only")
ok(all(stat.S_ISSOCK(os.lstat(os.path.join(jail, e)).st_mode) for e in entries),
   "  both are sockets")

waiting = Client(P110)          # a connection in the AUTHORIZATION state
inst.track()
logins = [p for p, (uid, _) in pop3d_pids().items() if uid == null.pw_uid]
ok(len(logins) >= 1, "a login half serves the waiting connection")
for pid in logins[:1]:
    uids, gids, groups = ids(pid)
    is_(uids, [null.pw_uid] * 4, "  login half: login_user's uid (all four)")
    is_(gids, [null.pw_gid] * 4, "  login_user's gid (all four)")
    is_(groups, sorted({null.pw_gid, owner.pw_gid}), "  groups: login_user's and mail_owner's")
    is_(posthorn.proc_root(pid), jail, "  chrooted in queue_directory/login")
    is_(os.stat("/proc/%d/mem" % pid).st_uid, 0,
        "  not dumpable: another login process (the same account) cannot ptrace it")
waiting.close()

# ------------------------------------------------------------ sessions

a = login(P110, alice, PW)
b = login(P995, bob, PW, tls=True)
time.sleep(0.3)
mail_halves = [p for p, (uid, ppid) in pop3d_pids().items()
               if uid == 0 and ppid == inst.master_pid]
is_(len(mail_halves), 1, "one mail half, a child of master")
mail_half = mail_halves[0] if mail_halves else None
if mail_half:
    is_(ids(mail_half)[0], [0] * 4, "  it is root")
    is_(posthorn.proc_root(mail_half), "/", "  not chrooted")
sessions = children_now(mail_half) if mail_half else []
is_(len(sessions), 2, "two logged-in sessions: two children of the mail half")
apw, bpw = pwd.getpwnam(alice), pwd.getpwnam(bob)
by_uid = {}
for pid in sessions:
    by_uid[ids(pid)[0][0]] = pid
for user, upw in ((alice, apw), (bob, bpw)):
    pid = by_uid.get(upw.pw_uid)
    ok(pid is not None, "%s's session runs as %s" % (user, user))
    if pid is None:
        continue
    uids, gids, groups = ids(pid)
    is_(uids, [upw.pw_uid] * 4, "  uid (all four)")
    is_(gids, [upw.pw_gid] * 4, "  gid (all four)")
    want = sorted(set([upw.pw_gid] + [g.gr_gid for g in grp.getgrall() if user in g.gr_mem]))
    is_(groups, want, "  the user's own groups only")
    is_(posthorn.proc_root(pid), "/", "  no chroot")
    is_(os.stat("/proc/%d/mem" % pid).st_uid, 0, "  not dumpable: its /proc files are root's")
    r = subprocess.run(["setpriv", "--reuid", str(upw.pw_uid), "--regid", str(upw.pw_gid),
                        "--init-groups", "cat", "/proc/%d/mem" % pid],
                       capture_output=True, text=True)
    ok(r.returncode != 0 and "Permission denied" in r.stderr,
       "  the user cannot read its memory") or diag(r.stderr)
    socks = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:"):
            socks.append(link)
    is_(len(socks), 1, "  it holds one socket: its client")

bob_session = by_uid.get(bpw.pw_uid)
# The process at the server end of bob's TCP connection.
client_port = b.sock.getsockname()[1]
ss = subprocess.run(["ss", "-tnpH", "state", "established"], capture_output=True,
                    text=True).stdout
proxy = None
for line in ss.splitlines():
    f = line.split()
    # Recv-Q Send-Q Local Peer Process: the server's end, not the client's.
    if len(f) >= 5 and f[2].endswith(":%d" % P995) and f[3].endswith(":%d" % client_port) \
            and "pid=" in line:
        proxy = int(line.split("pid=")[1].split(",")[0])
ok(proxy is not None, "the TLS session's login process stays on as the proxy")
if proxy:
    is_(ids(proxy)[0], [null.pw_uid] * 4, "  still login_user")
    is_(posthorn.proc_root(proxy), jail, "  still in its jail")

# ------------------------------------------------------------ attacks

r = subprocess.run(["setpriv", "--reuid", str(null.pw_uid), "--regid", str(null.pw_gid),
                    "--init-groups", "ls", os.path.join(alice_home, "Maildir", "new")],
                   capture_output=True, text=True)
ok(r.returncode != 0 and "Permission denied" in r.stderr, "login_user cannot list a Maildir")
for path in (os.path.join(inst.spool, "private", "pop3"), os.path.join(jail, "pop3")):
    try:
        c = ipcframe.connect_as(path, apw.pw_uid, apw.pw_gid, [apw.pw_gid])
        ok(False, "a local user cannot reach %s" % path)
        c.close()
    except (OSError, RuntimeError, EOFError):
        ok(True, "a local user cannot reach %s" % path)

before = set(children_now(mail_half)) if mail_half else set()
conn = ipcframe.connect_as(os.path.join(jail, "pop3"), null.pw_uid, null.pw_gid,
                           [null.pw_gid, owner.pw_gid])
conn.hello("handover", 1)
s1, s2 = socket.socketpair()
conn.send(HANDOVER_REQUEST, 0, ["pop3", os.urandom(16), "127.0.0.1", "1234", 0, "PLAIN", "",
                                b"STAT\r\n"], fd=s2.fileno())
s2.close()
reply = conn.recv(timeout=15)
is_((reply.type, reply.fields[0]), (HANDOVER_REPLY, 1),
    "login_user's hand-over with a made-up cookie: refused (HANDOVER_FAIL)")
ok(inst.wait_for(lambda: "authd refused the hand-over cookie" in inst.log(), 5),
   "  and logged")
s1.settimeout(2)
try:
    got = s1.recv(100)
except socket.timeout:
    got = b"(nothing)"
ok(not got.startswith(b"+OK"), "  the connection got no session (%r)" % got[:40])
is_(set(children_now(mail_half)) - before, set(), "  no session process was started")
conn.close()
s1.close()
conn = ipcframe.connect_as(os.path.join(jail, "pop3"), null.pw_uid, null.pw_gid,
                           [null.pw_gid, owner.pw_gid])
conn.hello("handover", 1)
conn.send_raw(b"\x00\x00\x09\x00\xff\xff\xff\xffgarbage")
try:
    got = conn.recv(timeout=5)
    ok(False, "garbage from a login half: dropped (got %r)" % (got,))
except (EOFError, OSError, ValueError):
    ok(True, "garbage from a login half: dropped")
conn.close()
ok(mail_half and posthorn.alive(mail_half), "  the mail half lives on")
c2 = Client(P110)
c2.cmd("USER " + alice)
like(c2.cmd("PASS " + PW).decode(), "-ERR [IN-USE]", "  and still serves (alice is in use)")
c2.close()

# ------------------------------------------------------------ kill the proxy

is_(b.cmd("DELE 1"), b"+OK Marked to be deleted.", "bob: DELE 1 over TLS")
if proxy:
    os.kill(proxy, signal.SIGKILL)
ok(b.closed(), "the proxy killed: bob's client sees the connection close")
b.close()
ok(inst.wait_for(lambda: bob_session is None or not posthorn.alive(bob_session), 10),
   "  bob's session process ends")
b = login(P995, bob, PW, tls=True)
is_(b.cmd("STAT").decode().split()[1], "3", "  and nothing was deleted")
b.cmd("QUIT")
b.close()

# ------------------------------------------------------------ a stalled TLS record

def server_end(client):
    port = client.sock.getsockname()[1]
    ss = subprocess.run(["ss", "-tnpH", "state", "established"], capture_output=True,
                        text=True).stdout
    for line in ss.splitlines():
        f = line.split()
        if len(f) >= 5 and f[2].endswith(":%d" % P995) and f[3].endswith(":%d" % port) \
                and "pid=" in line:
            return int(line.split("pid=")[1].split(",")[0])
    return None


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return int(v[11]) + int(v[12])


b = login(P995, bob, PW, tls=True)
time.sleep(0.3)
stalled = server_end(b)
ok(stalled is not None, "bob over TLS again: its proxy found")
if stalled:
    # The header of an application-data record of 100 octets, and 10 of them.
    os.write(b.sock.fileno(), b"\x17\x03\x03\x00\x64" + b"x" * 10)
    time.sleep(0.2)
    t0 = cpu_ticks(stalled)
    time.sleep(1)
    ok(cpu_ticks(stalled) - t0 < 20, "half a TLS record, then silence: the proxy waits "
       "without spinning (%d ticks in 1 s)" % (cpu_ticks(stalled) - t0))
b.close()

# ------------------------------------------------------------ reload

# A reload retires the mail half, which stays for the sessions it has
# (before, it took its "master went away" for a loss of master and ended
# them), while a new one takes the new logins.
c = login(P110, carol, PW)
old_half = [p for p, (uid, ppid) in pop3d_pids().items() if uid == 0 and ppid == inst.master_pid]
r = inst.mailctl("reload")
ok(r.returncode == 0, "mailctl reload with a session logged in")
time.sleep(1.0)
like(c.cmd("STAT").decode(), "+OK", "  the session goes on after the reload")
d = login(P110, bob, PW)
like(d.cmd("STAT").decode(), "+OK", "  and a new login works, served by a new mail half")
halves = [p for p, (uid, ppid) in pop3d_pids().items() if uid == 0 and ppid == inst.master_pid]
ok(len(halves) == 2 and set(old_half) <= set(halves),
   "  the old mail half stays for its session: %s (was %s)" % (halves, old_half))
like(c.cmd("QUIT").decode(), "+OK", "  which ends normally")
d.cmd("QUIT")
c.close()
d.close()

# ------------------------------------------------------------ stop

alice_session = by_uid.get(apw.pw_uid)
inst.stop()
ok(inst.wait_for(lambda: alice_session is None or not posthorn.alive(alice_session), 10),
   "mailctl stop ends the session processes too")
ok(a.closed(), "  alice's client sees the connection close")
a.close()
ok("panic" not in inst.log(), "no panic in the log")
inst.cleanup()
done()
