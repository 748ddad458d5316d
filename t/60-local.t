#!/usr/bin/env python3
"""local, the root delivery spawner, for real and without qmgr: an instance
whose master.conf has only the local service; the test plays qmgr,
connecting to spool/private/local as mail_owner and speaking the IPC framing
(t/lib/ipcframe.py) with queue files written by t/mkqueue.

Checks: the result and the Maildir file byte for byte (Return-Path,
Delivered-To, CRLF -> LF, 8-bit and UTF-8 intact), its owner and mode, the
Maildir's; upper-case recipients; pipelined requests answered by request id;
pipelined requests for one user taken in batches by fewer delivery
processes, each request with its own result (a corrupt one among them
fails alone);
a 3 MB message; unknown user 5.1.1; system accounts 4.3.5 (root's own mail, which
goes to root's Maildir, is tested in t/40's namespaces: not here, where it
would write the real /root); the
Delivered-To loop 5.4.6; a corrupt queue file and a writable descriptor
4.3.0; a missing home directory and a Maildir the user cannot write to
(root could) 4.3.0; a peer that is not mail_owner refused; garbage, oversized and
malformed frames drop only that connection; the local parent runs as root
in "/" (from /proc); a delivery child caught in the act (blocked with a
fanotify permission event on Maildir/tmp) runs as the user, in "/", in the
home directory, with only the descriptors it needs, and when it is killed
the result is 4.3.0 "delivery process died"; home_mailbox as an mbox file
is 4.3.5 "mbox delivery not supported"; SIGTERM waits for a running
delivery to report."""
import ctypes
import grp
import os
import pwd
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, diag, done, skip_all  # noqa: E402
import posthorn  # noqa: E402
import ipcframe  # noqa: E402

if os.geteuid() != 0:
    skip_all("local delivery needs root")

DELIVER_REQUEST, DELIVER_RESULT = 0x400, 0x401
MKQUEUE = os.path.join(posthorn.BUILD, "t", "mkqueue")
DOMAIN = "example.test"

inst = posthorn.Instance(services=["local unix y - - local -v"])
r = inst.start()
if not is_(r.returncode, 0, "mailctl start succeeds"):
    diag(r.stderr)
    done()
sock_path = os.path.join(inst.spool, "private", "local")
owner = pwd.getpwnam("posthorn")
user, home = inst.add_user()
upw = pwd.getpwnam(user)
rcpt = "%s@%s" % (user, DOMAIN)


def connect_as(uid, gid, groups):
    return ipcframe.connect_as(sock_path, uid, gid, groups, timeout=10)


def qmgr_conn():
    c = connect_as(owner.pw_uid, owner.pw_gid, [owner.pw_gid])
    c.hello("deliver", 2, timeout=10)
    return c


def mkqueue(content, sender="alice@example.org", rcpts=None):
    """Commit a queue file with t/mkqueue; returns (id, path)."""
    args = [MKQUEUE, "-s", sender]
    for r_ in rcpts or [rcpt]:
        args += ["-r", r_]
    # mkqueue does not free its argument copies: no leak reports under ASan.
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    p = subprocess.run(args + [inst.spool], input=content, capture_output=True, env=env)
    if p.returncode != 0:
        raise RuntimeError("mkqueue: %s" % p.stderr.decode())
    qid = p.stdout.decode().strip()
    return qid, os.path.join(inst.spool, "incoming", qid)


def request(c, reqid, qid, path, recipient, sender="alice@example.org", orig="", mode=os.O_RDONLY,
            fields=None):
    fd = os.open(path, mode)
    try:
        c.send(DELIVER_REQUEST, reqid,
               fields or [qid, sender, "", 0, 1, 0, recipient, orig], fd=fd)
    finally:
        os.close(fd)


def result(c, timeout=20, raw=False):
    """(type, reqid, [class, dsn, text]) of a one-recipient result, whose
    site part must say "fine" and relay=local; raw: all the fields."""
    f = c.recv(timeout)
    if f is None:
        return None
    if raw or f.type != DELIVER_RESULT:
        return (f.type, f.reqid, f.fields)
    if f.fields[:4] != [0, "", "local", 1] or f.fields[7:] != ["", "", 0]:
        return (f.type, f.reqid, f.fields)
    return (f.type, f.reqid, f.fields[4:7])


def deliver(content, recipient=None, sender="alice@example.org", reqid=1, conn=None):
    c = conn or qmgr_conn()
    qid, path = mkqueue(content, sender, [recipient or rcpt])
    request(c, reqid, qid, path, recipient or rcpt, sender)
    res = result(c)
    if conn is None:
        c.close()
    return res


def results_by_reqid(c, n):
    """Up to n results of pipelined requests: {reqid: [class, dsn, text]}."""
    got = {}
    for _ in range(n):
        r_ = result(c)
        if r_ is None:
            break
        got[r_[1]] = r_[2]
    return got


def local_pids():
    return inst.service_pids("local")


def open_fds(pid):
    """{fd: what it is} of a process, from /proc."""
    fds = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            fds[int(fd)] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            pass
    return fds


def socket_inodes(pid):
    return set(t[8:-1] for t in open_fds(pid).values() if t.startswith("socket:["))


def peer_process(link):
    """The process holding the other end of a UNIX socket ("socket:[INODE]"
    from /proc/PID/fd), from ss(8) and /proc; None if none."""
    inode = link[8:-1]
    for line in subprocess.run(["ss", "-xan"], capture_output=True, text=True).stdout.splitlines():
        f = line.split()
        if len(f) >= 8 and f[5] == inode:
            peer = f[7]
            for d in os.listdir("/proc"):
                if d.isdigit():
                    try:
                        if peer in socket_inodes(int(d)):
                            return int(d)
                    except OSError:
                        pass
    return None


def maildir_files(sub="new"):
    d = os.path.join(home, "Maildir", sub)
    try:
        return sorted(os.listdir(d))
    except FileNotFoundError:
        return []


# ---------------------------------------------------------------- delivery
content = (b"From: Alice <alice@example.org>\r\n"
           b"To: " + rcpt.encode() + b"\r\n"
           b"Subject: =?UTF-8?Q?caf=C3=A9?=\r\n"
           b"\r\n"
           b"Caf\xc3\xa9 \xe2\x82\xac, 8-bit \xff\xfe\x80.\r\n"
           b"a lone\rCR and a bare\nLF\r\n"
           b".\r\n"
           b"last line\r\n")
want = (b"Return-Path: <alice@example.org>\n"
        b"Delivered-To: " + rcpt.encode() + b"\n"
        + content.replace(b"\r\n", b"\n"))
res = deliver(content)
is_(res, (DELIVER_RESULT, 1, [2, "2.0.0", "delivered to maildir"]), "a delivery succeeds")
files = maildir_files()
is_(len(files), 1, "one message in Maildir/new")
if files:
    path = os.path.join(home, "Maildir", "new", files[0])
    with open(path, "rb") as f:
        got = f.read()
    is_(got, want, "the file is Return-Path, Delivered-To, then the content with LF line ends, "
        "8-bit and UTF-8 bytes intact")
    st = os.stat(path)
    is_((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (upw.pw_uid, upw.pw_gid, 0o600),
        "it belongs to the user, mode 0600")
    like(files[0], ",S=%d,W=%d" % (len(want), len(want) + want.count(b"\n")),
         "its name carries S=size and W=vsize")
for sub in ("", "tmp", "new", "cur"):
    st = os.stat(os.path.join(home, "Maildir", sub))
    is_((st.st_uid, stat.S_IMODE(st.st_mode)), (upw.pw_uid, 0o700),
        "Maildir/%s was created by the user, mode 0700" % sub)
is_(maildir_files("tmp"), [], "nothing left in Maildir/tmp")
like(inst.log(), "to=<%s>: delivered to maildir %s/Maildir/new/" % (rcpt, home),
     "the debug log names the file")

# The local parent: root, in "/", as DESIGN.md §1 says.
pids = local_pids()
is_(len(pids), 1, "one local process")
local_pid = pids[0] if pids else None
if local_pid:
    st = posthorn.proc_status(local_pid)
    is_((st["Uid"], st["Gid"]), (["0"] * 4, ["0"] * 4), "local runs as root (/proc Uid/Gid)")
    is_(posthorn.proc_root(local_pid), "/", "local is not chrooted (/proc root)")

# Upper case in the local part; orig_recipient is accepted.
up = user.upper() + "@" + DOMAIN.upper()
c = qmgr_conn()
qid, path = mkqueue(b"Subject: upper\r\n\r\nx\r\n", rcpts=[up])
request(c, 7, qid, path, up, orig="alias@example.test")
is_(result(c), (DELIVER_RESULT, 7, [2, "2.0.0", "delivered to maildir"]),
    "an upper-case local part is delivered to the lower-case user")
newest = max(maildir_files(), key=lambda n: os.stat(os.path.join(home, "Maildir", "new", n)).st_mtime_ns)
with open(os.path.join(home, "Maildir", "new", newest), "rb") as f:
    like(f.read().decode(), "Delivered-To: %s\n" % up, "Delivered-To is the recipient as given")

# Pipelining: many requests before any result; results matched by reqid.
before = len(maildir_files())
sent = {}
for i in range(8):
    qid, path = mkqueue(b"Subject: pipelined %d\r\n\r\nbody %d\r\n" % (i, i))
    request(c, 100 + i, qid, path, rcpt)
    sent[100 + i] = qid
got = results_by_reqid(c, 8)
is_(sorted(got), sorted(sent), "8 pipelined requests get 8 results, one per request id")
ok(all(v == [2, "2.0.0", "delivered to maildir"] for v in got.values()), "all delivered")
is_(len(maildir_files()), before + 8, "8 more messages in the Maildir")

# Batches: requests for one recipient that wait behind the running delivery
# processes (local_destination_concurrency_limit, 2) are taken together by
# the next process (up to local_delivery_batch_limit) and committed with one
# fsync of new/; each keeps its own result, a bad one among them too, and
# the Maildir names stay the fixed ones (a repeat is recognised).
before = len(maildir_files())
mark = len(inst.log())
bad = os.path.join(inst.dir, "corrupt-in-batch")
with open(bad, "wb") as f:
    f.write(b"V\x00\x00\x00\x04PHQ\x01garbage")
queued = [mkqueue(b"Subject: batch %d\r\n\r\nbody %d\r\n" % (i, i)) for i in range(60)]
sent = {}
for i, (qid, path) in enumerate(queued):
    request(c, 400 + i, qid, bad if i == 40 else path, rcpt)
    sent[400 + i] = qid
got = results_by_reqid(c, 60)
is_(sorted(got), sorted(sent), "60 pipelined requests for one user get 60 results")
ok(all(v == [2, "2.0.0", "delivered to maildir"] for k, v in got.items() if k != 440),
   "59 are delivered")
r_ = got.get(440)
ok(r_ and r_[:2] == [4, "4.3.0"] and "corrupt queue file" in r_[2],
   "the corrupt one in the middle of a batch fails alone (%s)" % r_)
is_(len(maildir_files()), before + 59, "59 more messages in the Maildir")
is_(maildir_files("tmp"), [], "nothing left in Maildir/tmp")
import re  # noqa: E402
sizes = [int(n) for n in re.findall(r"delivery process \d+ for user \S+ \((\d+) messages?\)",
                                    inst.log()[mark:])]
is_(sum(sizes), 60, "the delivery processes took the 60 requests")
ok(len(sizes) < 60 and max(sizes or [0]) > 1,
   "in fewer processes than messages: %d processes, the largest batch %d"
   % (len(sizes), max(sizes or [0])))
ok(max(sizes or [0]) <= 32, "no batch is over local_delivery_batch_limit (32)")

# Kept delivery processes (local_delivery_idle_time, 2s): after a run, the
# process that became the user waits for that user's next mail, so mail
# that comes one message at a time is written by one process; it holds
# nothing of the last run meanwhile, and the user cannot get at it.
time.sleep(3)                       # the batches' processes have gone
mark = len(inst.log())
for i in range(4):
    qid, path = mkqueue(b"Subject: kept %d\r\n\r\nx\r\n" % i)
    request(c, 700 + i, qid, path, rcpt)
    is_(result(c), (DELIVER_RESULT, 700 + i, [2, "2.0.0", "delivered to maildir"]),
        "one at a time: message %d delivered" % i)
runs = re.findall(r"(new|kept) delivery process (\d+) for user %s \(1 message\)" % re.escape(user),
                  inst.log()[mark:])
is_([k for k, _ in runs], ["new", "kept", "kept", "kept"],
    "a new delivery process, then the same one kept for the next three")
is_(len(set(p_ for _, p_ in runs)), 1, "all four written by one process")
kept = int(runs[0][1]) if runs else 0
ok(posthorn.alive(kept), "it waits after its run")
st = posthorn.proc_status(kept)
is_((st["PPid"], st["Uid"], st["Gid"]), ([str(local_pid)], [str(upw.pw_uid)] * 4,
                                        [str(upw.pw_gid)] * 4),
    "a child of local, the user in every uid and gid")
fds = open_fds(kept)
ok(not any("/spool/" in t or "Maildir" in t for t in fds.values()),
   "while it waits it holds no queue file and no Maildir: %r" % fds)
socks = [t for t in fds.values() if t.startswith("socket:")]
ok(len(socks) == 1 and peer_process(socks[0]) == local_pid,
   "its one socket leads to local: %r" % socks)
# The user goes after it: ptrace, its memory, its descriptors.
probe = subprocess.run(
    ["/usr/bin/python3", "-c", """
import ctypes, os, sys
pid = int(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
r = libc.ptrace(16, pid, None, None)
print("ptrace", r, ctypes.get_errno())
for what in ("mem", "fd/0"):
    try:
        open("/proc/%d/%s" % (pid, what), "rb").close()
        print(what, "open")
    except OSError as e:
        print(what, e.errno)
try:
    os.listdir("/proc/%d/fd" % pid)
    print("fds listed")
except OSError as e:
    print("fds", e.errno)
""", str(kept)],
    capture_output=True, text=True,
    preexec_fn=lambda: (os.setgroups([]), os.setgid(upw.pw_gid), os.setuid(upw.pw_uid)))
is_(probe.stdout.split("\n")[:4], ["ptrace -1 1", "mem 13", "fd/0 13", "fds 13"],
    "as the user: no ptrace (EPERM), no /proc/PID/mem, no descriptors (EACCES)")
# Another account never gets it.
other, other_home = inst.add_user()
other_rcpt = "%s@%s" % (other, DOMAIN)
mark = len(inst.log())
qid, path = mkqueue(b"Subject: not kept for another\r\n\r\nx\r\n", rcpts=[other_rcpt])
request(c, 710, qid, path, other_rcpt)
is_(result(c), (DELIVER_RESULT, 710, [2, "2.0.0", "delivered to maildir"]), "mail for another user")
m_ = re.search(r"(new|kept) delivery process (\d+) for user %s" % re.escape(other), inst.log()[mark:])
ok(m_ and m_.group(1) == "new" and int(m_.group(2)) != kept,
   "goes to a new process of its own: %s" % (m_ and m_.group(0)))
# ~/.forward is read again for each run.
with open(os.path.join(home, ".forward"), "w") as f:
    f.write("%s\n" % other)
os.chown(os.path.join(home, ".forward"), upw.pw_uid, upw.pw_gid)
mark = len(inst.log())
qid, path = mkqueue(b"Subject: forwarded by a kept one\r\n\r\nx\r\n")
request(c, 711, qid, path, rcpt)
is_(result(c), (DELIVER_RESULT, 711, [2, "2.0.0", "delivered to maildir"]),
    "a .forward made while the process waits")
ok(re.search(r"kept delivery process %d for user %s" % (kept, re.escape(user)),
             inst.log()[mark:]), "is read by the kept process")
ok(any("forwarded by a kept one" in open(os.path.join(other_home, "Maildir", "new", n)).read()
       for n in os.listdir(os.path.join(other_home, "Maildir", "new"))),
   "and the mail went where it says")
os.unlink(os.path.join(home, ".forward"))
ok(inst.wait_for(lambda: not os.path.exists("/proc/%d" % kept), 10),
   "a process that read a .forward ends (and is reaped)")
# Killed while it waits (the user may signal it): the next mail is
# delivered by a new one, nothing deferred.
qid, path = mkqueue(b"Subject: before the kill\r\n\r\nx\r\n")
request(c, 712, qid, path, rcpt)
is_(result(c), (DELIVER_RESULT, 712, [2, "2.0.0", "delivered to maildir"]), "delivered")
m_ = re.findall(r"delivery process (\d+) for user %s" % re.escape(user), inst.log())
victim = int(m_[-1]) if m_ else 0
ok(posthorn.alive(victim), "and its process waits")
os.kill(victim, signal.SIGKILL)
ok(inst.wait_for(lambda: not os.path.exists("/proc/%d" % victim), 10), "killed, it is reaped")
mark = len(inst.log())
qid, path = mkqueue(b"Subject: after the kill\r\n\r\nx\r\n")
request(c, 713, qid, path, rcpt)
is_(result(c), (DELIVER_RESULT, 713, [2, "2.0.0", "delivered to maildir"]),
    "the next mail is delivered")
ok(re.search(r"new delivery process \d+ for user %s" % re.escape(user), inst.log()[mark:]),
   "by a new process")
# Idle for local_delivery_idle_time: it exits and is reaped.
m_ = re.findall(r"delivery process (\d+) for user %s" % re.escape(user), inst.log())
last = int(m_[-1]) if m_ else 0
ok(posthorn.alive(last), "the new one waits")
ok(inst.wait_for(lambda: not os.path.exists("/proc/%d" % last), 10),
   "and is gone (reaped) after local_delivery_idle_time")

# A big message, streamed.
big = b"Subject: big\r\n\r\n" + b"".join(b"line %07d of a big message, 0123456789\r\n" % i
                                         for i in range(70000))
before = set(maildir_files())
qid, path = mkqueue(big)
request(c, 200, qid, path, rcpt)
is_(result(c, 60), (DELIVER_RESULT, 200, [2, "2.0.0", "delivered to maildir"]), "a 3 MB message is delivered")
new = sorted(set(maildir_files()) - before)
if new:
    with open(os.path.join(home, "Maildir", "new", new[0]), "rb") as f:
        data = f.read()
    ok(data.endswith(big.replace(b"\r\n", b"\n")) and b"\r" not in data, "every line, with LF ends")

# ---------------------------------------------------------------- refusals
qid, path = mkqueue(b"Subject: x\r\n\r\nx\r\n", rcpts=["nosuchuser4711@" + DOMAIN])
request(c, 300, qid, path, "nosuchuser4711@" + DOMAIN)
is_(result(c), (DELIVER_RESULT, 300, [5, "5.1.1", 'unknown user: "nosuchuser4711"']),
    "an unknown user is 5.1.1")

# Several recipients in one request: one status each, in request order.
before = len(maildir_files())
qid, path = mkqueue(b"Subject: two\r\n\r\nx\r\n", rcpts=[rcpt, "nosuchuser4712@" + DOMAIN])
request(c, 304, qid, path, rcpt, fields=[qid, "alice@example.org", "", 0, 2, 0, rcpt, "",
                                         1, "nosuchuser4712@" + DOMAIN, ""])
is_(result(c, raw=True), (DELIVER_RESULT, 304, [0, "", "local", 2,
                                               2, "2.0.0", "delivered to maildir", "", "", 0,
                                               5, "5.1.1", 'unknown user: "nosuchuser4712"',
                                               "", "", 0]),
    "two recipients in one request: a status for each, in order")
is_(len(maildir_files()), before + 1, "and one copy delivered")

qid, path = mkqueue(b"Subject: x\r\n\r\nx\r\n", rcpts=["daemon@" + DOMAIN])
request(c, 302, qid, path, "Daemon@" + DOMAIN)
r_ = result(c)
ok(r_ and r_[1] == 302 and r_[2][:2] == [4, "4.3.5"] and "system account" in r_[2][2],
   "a system account (uid < first_valid_uid) is 4.3.5 (%s)" % (r_ and r_[2][2]))

before = len(maildir_files())
loop = (b"Received: from somewhere\r\n"
        b"Delivered-To: " + rcpt.upper().encode() + b"\r\n"
        b"Subject: looping\r\n\r\nbody\r\n")
qid, path = mkqueue(loop)
request(c, 303, qid, path, rcpt)
is_(result(c), (DELIVER_RESULT, 303, [5, "5.4.6", "mail forwarding loop for %s" % rcpt]),
    "a Delivered-To: header for the recipient is a loop, 5.4.6")
is_(len(maildir_files()), before, "and nothing is delivered")
is_(maildir_files("tmp"), [], "or left in tmp/")

# A corrupt queue file (a regular file, but not a queue file).
bad = os.path.join(inst.dir, "corrupt-queue-file")
with open(bad, "wb") as f:
    f.write(b"V\x00\x00\x00\x04PHQ\x01garbage")
qid, _ = mkqueue(b"x\r\n")
request(c, 304, qid, bad, rcpt)
r_ = result(c)
ok(r_ and r_[1] == 304 and r_[2][:2] == [4, "4.3.0"] and "corrupt queue file" in r_[2][2],
   "a corrupt queue file is 4.3.0 (%s)" % (r_ and r_[2][2]))

# A writable descriptor is refused: local hands only read-only ones to users.
qid, path = mkqueue(b"x\r\n")
request(c, 305, qid, path, rcpt, mode=os.O_RDWR)
is_(result(c), (DELIVER_RESULT, 305, [4, "4.3.0", "bad queue file descriptor"]),
    "a writable queue file descriptor is 4.3.0")
like(inst.log(), "is not a read-only regular file", "and logged")
c.close()

# ---------------------------------------------------------------- peers
try:
    pg = grp.getgrnam("posthorn").gr_gid
    bad_peer = connect_as(upw.pw_uid, upw.pw_gid, [pg])
    try:
        bad_peer.send(ipcframe.HELLO, 0, ["deliver", 2])
        f = bad_peer.recv(10)
        is_(f, None, "a peer that is not mail_owner gets no hello: the connection is closed")
    except OSError as e:
        ok(True, "a peer that is not mail_owner is cut off (%s)" % e)
    bad_peer.close()
except OSError as e:
    ok(False, "connect as the user: %s" % e)
like(inst.wait_for(lambda: "refusing a connection from uid %d" % upw.pw_uid in inst.log()
                   and inst.log()),
     "refusing a connection from uid %d: peer uid not allowed" % upw.pw_uid, "and logged")


def garbage(name, frames, shut=False):
    """Send raw bytes after the hello; local must drop only that connection.
    shut: then end our side (EOF inside the frame, without waiting for
    local's 10 s deadline)."""
    c_ = qmgr_conn()
    for fr in frames:
        try:
            c_.send_raw(fr)
        except OSError:
            pass
    if shut:
        c_.sock.shutdown(socket.SHUT_WR)
    try:
        f = c_.recv(15)
        is_(f, None, "%s: the connection is closed" % name)
    except (OSError, EOFError, ValueError) as e:
        ok(True, "%s: the connection is dropped (%s)" % (name, e))
    c_.close()


garbage("random bytes", [os.urandom(64)])
garbage("an oversized frame", [struct.pack("!IIII", DELIVER_REQUEST, 1 << 30, 1, 0)])
garbage("an unknown flag", [ipcframe.encode(DELIVER_REQUEST, 1, ["x"], flags=0x80)])
garbage("a result instead of a request",
        [ipcframe.encode(DELIVER_RESULT, 1, [0, "", "local", 1, 2, "2.0.0", "x", "", ""])])
garbage("a request without its fd",
        [ipcframe.encode(DELIVER_REQUEST, 1, ["x", "", "", 0, 1, 0, rcpt, ""])])
garbage("a truncated frame", [ipcframe.encode(DELIVER_REQUEST, 1, ["a" * 50])[:30]], shut=True)

# A malformed request with an fd: a bad queue id, flags not 0, a missing field.
for name, fields in (("a bad queue id", ["../../etc", "", "", 0, 1, 0, rcpt, ""]),
                     ("flags not 0", [None, "", "", 1, 1, 0, rcpt, ""]),
                     ("a missing field", [None, "", "", 0, 1, 0, rcpt]),
                     ("a control character", [None, "a\nb", "", 0, 1, 0, rcpt, ""]),
                     ("no recipient", [None, "", "", 0, 0]),
                     ("fewer recipients than counted", [None, "", "", 0, 2, 0, rcpt, ""]),
                     ("a negative recipient index", [None, "", "", 0, 1, -1, rcpt, ""]),
                     ("an empty recipient", [None, "", "", 0, 1, 0, "", ""])):
    c_ = qmgr_conn()
    qid, path = mkqueue(b"x\r\n")
    fields = [qid if v is None else v for v in fields]
    request(c_, 9, qid, path, rcpt, fields=fields)
    try:
        is_(c_.recv(15), None, "%s: the connection is dropped" % name)
    except (OSError, EOFError) as e:
        ok(True, "%s: the connection is dropped (%s)" % (name, e))
    c_.close()

is_(local_pids(), [local_pid], "local survived all of it (same process)")
res = deliver(b"Subject: after the garbage\r\n\r\nstill here\r\n", reqid=5)
is_(res, (DELIVER_RESULT, 5, [2, "2.0.0", "delivered to maildir"]), "and serves the next connection")

# ---------------------------------------------------------------- the child is the user
# Failures that root would not have: they prove the writing is done as the user.
user2, home2 = inst.add_user()
rcpt2 = "%s@%s" % (user2, DOMAIN)
subprocess.run(["rm", "-rf", home2], check=True)
res = deliver(b"Subject: no home\r\n\r\nx\r\n", recipient=rcpt2, reqid=10)
is_(res, (DELIVER_RESULT, 10, [4, "4.3.0", "cannot enter home directory %s: No such file or directory"
                              % home2]), "a missing home directory is 4.3.0")
os.mkdir(home2, 0o755)
os.chown(home2, pwd.getpwnam(user2).pw_uid, pwd.getpwnam(user2).pw_gid)
for sub in ("Maildir", "Maildir/tmp", "Maildir/new", "Maildir/cur"):
    os.mkdir(os.path.join(home2, sub), 0o755)      # root's, not the user's
res = deliver(b"Subject: not mine\r\n\r\nx\r\n", recipient=rcpt2, reqid=11)
ok(res and res[1] == 11 and res[2][:2] == [4, "4.3.0"]
   and res[2][2].startswith("maildir delivery failed: create Maildir/tmp/")
   and res[2][2].endswith("Permission denied"),
   "a Maildir the user cannot write to is 4.3.0, Permission denied (%s)" % (res and res[2][2]))
like(inst.log(), "to=<%s>: dsn=4.3.0, maildir delivery failed: create Maildir/tmp/" % rcpt2,
     "and logged as a warning")
is_(os.listdir(os.path.join(home2, "Maildir", "new")), [], "nothing was written")

# ---------------------------------------------------------------- a child caught in the act
libc = ctypes.CDLL(None, use_errno=True)
libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int,
                               ctypes.c_char_p]
FAN_CLASS_CONTENT, FAN_MARK_ADD, FAN_OPEN_PERM, FAN_EVENT_ON_CHILD, FAN_ALLOW = \
    0x4, 0x1, 0x10000, 0x08000000, 0x1


def fan_open():
    """A fanotify group that holds every open() in the user's Maildir/tmp
    until we answer; None if the kernel or the container does not allow it."""
    fan = libc.fanotify_init(FAN_CLASS_CONTENT, os.O_RDONLY | os.O_CLOEXEC)
    if fan < 0:
        return None
    if libc.fanotify_mark(fan, FAN_MARK_ADD, FAN_OPEN_PERM | FAN_EVENT_ON_CHILD, -100,
                          os.path.join(home, "Maildir", "tmp").encode()) < 0:
        os.close(fan)
        return None
    return fan


def fan_catch(fan, timeout=20):
    """(pid, event fd) of the process held in open(), or (None, None)."""
    ready, _, _ = select.select([fan], [], [], timeout)
    if not ready:
        return None, None
    data = os.read(fan, 4096)
    _, _, _, _, _, efd, pid = struct.unpack("IBBHQii", data[:24])
    return pid, efd


def fan_allow(fan, efd):
    os.write(fan, struct.pack("iI", efd, FAN_ALLOW))
    os.close(efd)


child = None
fan = fan_open()
if fan is None:
    diag("fanotify: %s" % os.strerror(ctypes.get_errno()))
    ok(True, "# SKIP fanotify permission events are not available here")
else:
    c = qmgr_conn()
    before = len(maildir_files())
    qid, path = mkqueue(b"Subject: caught\r\n\r\nx\r\n")
    request(c, 400, qid, path, rcpt)
    child, efd = fan_catch(fan)
    if ok(child, "the delivery child opens a file in Maildir/tmp (held by fanotify)"):
        st = posthorn.proc_status(child)
        is_(st["PPid"], [str(local_pid)], "it is a child of local")
        is_((st["Uid"], st["Gid"]), ([str(upw.pw_uid)] * 4, [str(upw.pw_gid)] * 4),
            "it runs as the user: real, effective, saved and fs ids (/proc)")
        want_groups = sorted(set([upw.pw_gid] + os.getgrouplist(user, upw.pw_gid)))
        is_(sorted(int(g) for g in st["Groups"]), want_groups, "with the user's groups only")
        is_(posthorn.proc_root(child), "/", "not chrooted")
        is_(os.readlink("/proc/%d/cwd" % child), home, "in the home directory")
        fds = open_fds(child)
        socks = [t for fd, t in fds.items() if fd > 2 and t.startswith("socket:")]
        ok(len(socks) <= 1 and all(peer_process(t) == local_pid for t in socks),
           "its one socket leads to local (its next runs), no listener, no qmgr connection: %r"
           % [(t, peer_process(t)) for t in socks])
        ok(len([fd for fd in fds if fd > 2]) <= 5,
           "only stdio, the log, the result pipe, the job socket, the queue file, the "
           "Maildir: %r" % fds)
        os.kill(child, signal.SIGKILL)
        fan_allow(fan, efd)
    is_(result(c), (DELIVER_RESULT, 400, [4, "4.3.0", "delivery process died"]),
        "a delivery child killed mid-delivery is 4.3.0 'delivery process died'")
    like(inst.log(), "delivery process %d ended without a result (killed by signal 9)" % (child or 0),
         "and logged")
    is_(len(maildir_files()), before, "nothing was delivered")
    qid, path = mkqueue(b"Subject: after the kill\r\n\r\nx\r\n")
    request(c, 401, qid, path, rcpt)
    pid_, efd = fan_catch(fan)
    if pid_:
        fan_allow(fan, efd)
    is_(result(c), (DELIVER_RESULT, 401, [2, "2.0.0", "delivered to maildir"]), "the next one is delivered")
    is_(local_pids(), [local_pid], "still the same local process")

    # SIGTERM while a delivery runs: local finishes it and reports first.
    qid, path = mkqueue(b"Subject: during stop\r\n\r\nx\r\n")
    request(c, 402, qid, path, rcpt)
    child, efd = fan_catch(fan)
    ok(child, "another delivery child is held")
    os.kill(local_pid, signal.SIGTERM)
    time.sleep(0.5)
    ok(posthorn.alive(local_pid), "on SIGTERM local waits for the running delivery")
    if child:
        fan_allow(fan, efd)
    is_(result(c), (DELIVER_RESULT, 402, [2, "2.0.0", "delivered to maildir"]),
        "which completes and is reported")
    ok(inst.wait_for(lambda: not posthorn.alive(local_pid)), "then local exits")
    like(inst.log(), "stopping after 1 running deliveries", "and says why it waited")
    os.close(fan)
    c.close()

# ---------------------------------------------------------------- mbox
inst.stop()
inst.set_main({"home_mailbox": "Mailbox"})
r = inst.start()
is_(r.returncode, 0, "restart with home_mailbox = Mailbox")
res = deliver(b"Subject: mbox\r\n\r\nx\r\n", reqid=500)
is_(res, (DELIVER_RESULT, 500, [4, "4.3.5", "mbox delivery not supported"]),
    "an mbox home_mailbox is 4.3.5 'mbox delivery not supported'")
like(inst.log(), "mbox delivery is not supported", "with a warning")
ok(not os.path.exists(os.path.join(home, "Mailbox")), "and no file is made")

inst.stop()
done()
