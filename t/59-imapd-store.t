#!/usr/bin/env python3
"""imapd's store and its processes, on a running instance.

 - one process per user: a user's second connection goes to the process
   that serves the first; another user gets a process of their own; each
   runs as its user (all four uids and gids, the user's groups), not
   dumpable, a child of the root mail half; the login half is login_user
   in queue_directory/login, which now holds the imap socket too; the
   process exits after its last connection;
 - UIDs and UIDVALIDITY survive the process: logging in again finds the
   same ones;
 - other programs' changes are seen without a rescan: a file renamed
   into cur/ with ":2,S" (as pop3d and mail readers do) is \\Seen, a flag
   letter added to a name is a flag change, a file removed is an EXPUNGE,
   a file delivered into new/ by `local` (sendmail) is new mail;
 - kill -9 of the user's process: flags stored before the OK are kept,
   an appended message keeps its UID, an expunged UID is never given
   again, and a torn last index record (a writer killed mid-write) is
   ignored and cut off;
 - a damaged index is rebuilt with a new UIDVALIDITY, logged as
   FILE:LINE, the old file kept;
 - two processes of one user (the mail half restarted by a reload while
   a session lives): a message delivered meanwhile gets one UID in both,
   and a flag change made in one reaches the other.
Every process is cleaned up by PID."""
import grp
import os
import pwd
import re
import signal
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, unlike, diag, done  # noqa: E402
import posthorn  # noqa: E402
from imaptest import Raw, login, mail_user, put_messages, maildir_name  # noqa: E402

PW = "imap-store-1"
inst = posthorn.Instance()
r = inst.start()
if r.returncode != 0:
    diag(r.stderr)
P143 = inst.port(143)
alice, alice_home = mail_user(inst, PW)
bob, bob_home = mail_user(inst, PW)
amd = os.path.join(alice_home, "Maildir")
apw, bpw = pwd.getpwnam(alice), pwd.getpwnam(bob)
null = pwd.getpwnam("posthorn-null")


def imapd_pids():
    """{pid: (uid, ppid)} of every imapd process of the instance."""
    out = {}
    for pid in inst.track():
        try:
            if posthorn.alive(pid) and os.path.basename(posthorn.proc_cmdline(pid)) == "imapd":
                st = posthorn.proc_status(pid)
                out[pid] = (int(st["Uid"][0]), int(st["PPid"][0]))
        except (OSError, KeyError, IndexError):
            pass
    return out


def user_pids(uid):
    return sorted(p for p, (u, _) in imapd_pids().items() if u == uid)


def uids_of(c):
    u, t = c.cmd("FETCH 1:* (UID FLAGS)")
    out = {}
    for line in u:
        m = re.match(r"\* (\d+) FETCH \(UID (\d+) FLAGS \(([^)]*)\)", line)
        if m:
            out[int(m.group(1))] = (int(m.group(2)), m.group(3))
    return out


def validity(c, box="INBOX"):
    u, t = c.cmd("STATUS %s (UIDVALIDITY UIDNEXT)" % box)
    v = re.search(r"UIDVALIDITY (\d+)", " ".join(u))
    n = re.search(r"UIDNEXT (\d+)", " ".join(u))
    return (int(v.group(1)) if v else None, int(n.group(1)) if n else None)


msgs = {}
for i in range(1, 6):
    m = b"Subject: store %d\n\nbody %d\n" % (i, i)
    msgs[maildir_name(i, m)] = m
put_messages(alice, alice_home, msgs)

# ------------------------------------------------------- one process per user

a1 = login(P143, alice, PW)
a2 = login(P143, alice, PW)
b1 = login(P143, bob, PW)
time.sleep(0.3)
apids, bpids = user_pids(apw.pw_uid), user_pids(bpw.pw_uid)
is_(len(apids), 1, "two connections of one user: one process")
is_(len(bpids), 1, "another user: a process of their own")
roots = [p for p, (u, pp) in imapd_pids().items() if u == 0 and pp == inst.master_pid]
is_(len(roots), 1, "one root mail half, a child of master")
if apids and roots:
    pid = apids[0]
    st = posthorn.proc_status(pid)
    is_([int(x) for x in st["Uid"]], [apw.pw_uid] * 4, "  the user's process: uid (all four)")
    is_([int(x) for x in st["Gid"]], [apw.pw_gid] * 4, "  gid (all four)")
    want = sorted(set([apw.pw_gid] + [g.gr_gid for g in grp.getgrall() if alice in g.gr_mem]))
    is_(sorted(int(x) for x in st.get("Groups", [])), want, "  the user's groups only")
    is_(int(st["PPid"][0]), roots[0], "  a child of the root mail half")
    is_(os.stat("/proc/%d/mem" % pid).st_uid, 0, "  not dumpable")
jail = os.path.join(inst.spool, "login")
is_(sorted(os.listdir(jail)), ["anvil", "authd", "imap", "pop3"],
    "login/ holds authd, anvil and the two mail halves' sockets")
waiting = Raw(P143)
time.sleep(0.2)
logins = [p for p, (u, _) in imapd_pids().items() if u == null.pw_uid]
ok(len(logins) >= 1, "a login half serves a waiting connection")
if logins:
    is_(posthorn.proc_root(logins[0]), jail, "  as login_user, chrooted in login/")
waiting.close()

a1.cmd("SELECT INBOX")
before = uids_of(a1)
v1 = validity(a1)
is_(sorted(u for u, _ in before.values()), [1, 2, 3, 4, 5], "UIDs 1-5 given in delivery order")
a1.cmd("LOGOUT")
a2.cmd("LOGOUT")
b1.cmd("LOGOUT")
ok(inst.wait_for(lambda: not user_pids(apw.pw_uid), timeout=10),
   "the user's process exits after the last connection")
a1 = login(P143, alice, PW)
a1.cmd("SELECT INBOX")
is_(dict((k, v[0]) for k, v in uids_of(a1).items()), dict((k, v[0]) for k, v in before.items()),
    "logged in again: the same UIDs")
is_(validity(a1), v1, "  and the same UIDVALIDITY and UIDNEXT")

# --------------------------------------------------------- other programs

curdir, newdir = os.path.join(amd, "cur"), os.path.join(amd, "new")
first = sorted(os.listdir(newdir) + os.listdir(curdir))[0]
src = os.path.join(newdir, first) if os.path.exists(os.path.join(newdir, first)) \
    else os.path.join(curdir, first)
base = first.split(":")[0]
os.rename(src, os.path.join(curdir, base + ":2,S"))
time.sleep(0.2)
u, t = a1.cmd("NOOP")
like(" ".join(u), "* 1 FETCH (UID 1 FLAGS (\\Seen", "a rename into cur/ with :2,S: \\Seen")
os.rename(os.path.join(curdir, base + ":2,S"), os.path.join(curdir, base + ":2,FS"))
time.sleep(0.2)
u, t = a1.cmd("NOOP")
like(" ".join(u), "\\Seen \\Flagged", "a flag letter added to the name: \\Flagged")
victim = [n for n in os.listdir(newdir) if "Q2." in n]
if victim:
    os.unlink(os.path.join(newdir, victim[0]))
time.sleep(0.2)
u, t = a1.cmd("NOOP")
like(" ".join(u), "* 2 EXPUNGE", "a file removed by another program: EXPUNGE")
a1.send("i1 IDLE\r\n")
a1.line()
r = subprocess.run([os.path.join(posthorn.BUILD, "sbin", "sendmail"), "-C", inst.etc, alice],
                   input=b"Subject: via local\n\nhello\n", capture_output=True, timeout=30)
ok(r.returncode == 0, "sendmail to the user")
line = a1.line()
like(line, "* 5 EXISTS", "a message delivered by local (sendmail) comes in IDLE")
a1.send("DONE\r\n")
a1.read_until("i1")
u, t = a1.cmd("FETCH 5 (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
like(" ".join(u), "UID 6 ", "  with the next UID")
like(" ".join(u), "Subject: via local", "  and its content")

# ------------------------------------------------------------- kill -9

a1.cmd("STORE 1 +FLAGS.SILENT (\\Answered $Kept)")
u, t = a1.cmd("APPEND INBOX (\\Draft) {19+}\r\nSubject: app\r\n\r\nx\r\n")
m = re.search(r"APPENDUID \d+ (\d+)", t)
app_uid = int(m.group(1)) if m else None
a1.cmd("STORE 4 +FLAGS.SILENT (\\Deleted)")
a1.cmd("EXPUNGE")
u, t = a1.cmd("UID FETCH 1:* UID")
last_uid = max(int(x) for x in re.findall(r"UID (\d+)", " ".join(u)))
for pid in user_pids(apw.pw_uid):
    os.kill(pid, signal.SIGKILL)
ok(inst.wait_for(lambda: not user_pids(apw.pw_uid), timeout=10), "kill -9 of the user's process")
ok(a1.closed(), "  its client sees the connection close")
a1 = login(P143, alice, PW)
a1.cmd("SELECT INBOX")
after = uids_of(a1)
is_(validity(a1)[0], v1[0], "after kill -9: the same UIDVALIDITY")
ok(any("\\Answered" in f and "$Kept" in f for uid, f in after.values() if uid == 1),
   "  flags stored before the OK are kept")
ok(any(uid == app_uid and "\\Draft" in f for uid, f in after.values()),
   "  the appended message has its UID (%s)" % app_uid)
put_messages(alice, alice_home, {maildir_name(40, b"Subject: n\n\nx\n"): b"Subject: n\n\nx\n"})
u, t = a1.cmd("NOOP")
u, t = a1.cmd("UID FETCH * UID")
newest = int(re.findall(r"UID (\d+)", " ".join(u))[-1])
ok(newest > last_uid, "  a new message gets a UID above every earlier one (%d > %d)"
   % (newest, last_uid))
a1.cmd("LOGOUT")
inst.wait_for(lambda: not user_pids(apw.pw_uid), timeout=10)

# A writer killed in the middle of a record: the torn line is ignored.
idx = os.path.join(amd, "posthorn-imap.index")
with open(idx, "ab") as f:
    f.write(b"M 999 S 1 1 c torn")
a1 = login(P143, alice, PW)
u, t = a1.cmd("SELECT INBOX")
like(t, "OK", "a torn last record: the mailbox opens")
like(" ".join(u), "OK [UIDVALIDITY %d]" % v1[0], "  with the same UIDVALIDITY")
a1.cmd("STORE 1 +FLAGS.SILENT ($AfterTorn)")
with open(idx, "rb") as f:
    data = f.read()
ok(b"torn" not in data, "  the next writer cut it off")
ok(data.endswith(b"\n"), "  and the index ends with a whole record")
count = len(uids_of(a1))
a1.cmd("LOGOUT")
inst.wait_for(lambda: not user_pids(apw.pw_uid), timeout=10)

# A damaged record in the middle: rebuilt with a new UIDVALIDITY.
with open(idx, "rb") as f:
    lines = f.read().split(b"\n")
lines.insert(2, b"M garbage")
with open(idx, "wb") as f:
    f.write(b"\n".join(lines))
a1 = login(P143, alice, PW)
u, t = a1.cmd("SELECT INBOX")
like(t, "OK", "a damaged index: the mailbox opens")
v2 = validity(a1)
ok(v2[0] is not None and v2[0] != v1[0], "  with a new UIDVALIDITY (%s, was %s)" % (v2[0], v1[0]))
ok(inst.wait_for(lambda: re.search(r"posthorn-imap\.index:3: cannot read this record", inst.log()),
                 timeout=5), "  logged as FILE:LINE")
ok(os.path.exists(idx + ".corrupt"), "  the damaged file is kept")
is_(len(uids_of(a1)), count, "  every message is there")

# ------------------------------------------- opening without a scan

# Closed when new/ and cur/ had not changed for a while, a folder records
# their times (S); the next open with the same times reads only the
# index, and one with other times scans.
b1 = login(P143, bob, PW)
b1.cmd("CREATE Quiet")
qmd = os.path.join(bob_home, "Maildir", ".Quiet")
q = {}
for i in range(60, 63):
    m = b"Subject: quiet %d\n\nx\n" % i
    q[maildir_name(i, m)] = m
put_messages(bob, bob_home, q, sub=".Quiet/new")
time.sleep(2.2)
u, t = b1.cmd("STATUS Quiet (MESSAGES UIDNEXT)")
like(" ".join(u), "MESSAGES 3 UIDNEXT 4", "STATUS of a folder not open: scanned, 3 messages")
with open(os.path.join(qmd, "posthorn-imap.index"), "rb") as f:
    ok(re.search(rb"\nS \d+\.\d+ \d+\.\d+\n", f.read()),
       "  closed after a quiet while: the directories' times recorded (S)")
u, t = b1.cmd("STATUS Quiet (MESSAGES UIDNEXT)")
like(" ".join(u), "MESSAGES 3 UIDNEXT 4", "  opened again from the index alone: the same")
m = b"Subject: quiet late\n\nx\n"
put_messages(bob, bob_home, {maildir_name(70, m): m}, sub=".Quiet/new")
u, t = b1.cmd("STATUS Quiet (MESSAGES UIDNEXT)")
like(" ".join(u), "MESSAGES 4 UIDNEXT 5", "  a delivery changes new/'s time: scanned, 4 messages")
b1.close()

# ------------------------------------------------------------- the cache

u, t = a1.cmd("FETCH 1 (ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
like(" ".join(u), "Subject: store 1", "FETCH of list items (ENVELOPE, BODYSTRUCTURE, header fields)")
cache = os.path.join(amd, "posthorn-imap.cache")
ok(os.path.exists(cache) and b"PHC2 " in open(cache, "rb").read(),
   "  they are kept in the mailbox's cache file")
a1.cmd("LOGOUT")
inst.wait_for(lambda: not user_pids(apw.pw_uid), timeout=10)
# Messages never change in a Maildir: one that does shows which reads
# come from the cache.
path = [os.path.join(d, n) for d in (curdir, newdir) for n in os.listdir(d)
        if open(os.path.join(d, n), "rb").read().startswith(b"Subject: store 1\n")]
if path:
    with open(path[0], "wb") as f:
        f.write(b"Subject: changed\n\nbody 1\n")
a1 = login(P143, alice, PW)
a1.cmd("SELECT INBOX")
u, t = a1.cmd("FETCH 1 (ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
like(" ".join(u), '"store 1"', "after a new login the ENVELOPE comes from the cache")
like(" ".join(u), "Subject: store 1", "  and so do the header fields")
u, t = a1.cmd("FETCH 1 BODY.PEEK[]")
like(" ".join(u), "Subject: changed", "  while BODY[] reads the file")
a1.cmd("LOGOUT")
inst.wait_for(lambda: not user_pids(apw.pw_uid), timeout=10)
with open(cache, "r+b") as f:
    f.seek(0)
    f.write(b"XXXX")
a1 = login(P143, alice, PW)
u, t = a1.cmd("SELECT INBOX")
like(t, "OK", "a damaged cache: the mailbox opens")
ok(inst.wait_for(lambda: "posthorn-imap.cache: a damaged record at offset 0" in inst.log(), 5),
   "  logged, and the cache is started again")
u, t = a1.cmd("FETCH 1 ENVELOPE")
like(" ".join(u), '"changed"', "  then filled from the message files")

# Mostly records of expunged messages: rewritten with the live ones at
# close.
b1 = login(P143, bob, PW)
big = {}
for i in range(100, 250):
    m = (b"Subject: cached %d\nX-Pad: " % i) + b"p" * 3000 + b"\n\nx\n"
    big[maildir_name(i, m)] = m
put_messages(bob, bob_home, big)
b1.cmd("SELECT INBOX")
b1.cmd("FETCH 1:* ENVELOPE")
bcache = os.path.join(bob_home, "Maildir", "posthorn-imap.cache")
before = os.path.getsize(bcache)
b1.cmd("STORE 11:* +FLAGS.SILENT (\\Deleted)")
b1.cmd("EXPUNGE")
b1.cmd("LOGOUT")
inst.wait_for(lambda: not user_pids(bpw.pw_uid), timeout=10)
after_size = os.path.getsize(bcache)
ok(before > 256 * 1024 and after_size < before / 4,
   "a cache of mostly expunged messages is rewritten at close (%d -> %d octets)"
   % (before, after_size))
b1 = login(P143, bob, PW)
b1.cmd("SELECT INBOX")
u, t = b1.cmd("FETCH 1:* ENVELOPE")
is_(len([x for x in u if "ENVELOPE" in x]), 10, "  the ten left are fetched from it")
b1.close()

# ----------------------------------------------- two processes of one user

old = Raw(P143)
old.cmd("LOGIN %s %s" % (alice, PW))
old.cmd("SELECT INBOX")
old_pids = user_pids(apw.pw_uid)
r = inst.mailctl("reload")
ok(r.returncode == 0, "mailctl reload (the mail half is started again)")
time.sleep(1.0)
new = login(P143, alice, PW)
new.cmd("SELECT INBOX")
pids = user_pids(apw.pw_uid)
is_(len(pids), 2, "  a new login after the reload: a second process of the user")
m = b"Subject: two processes\n\nx\n"
put_messages(alice, alice_home, {maildir_name(50, m): m})
time.sleep(0.3)
old.cmd("NOOP")
new.cmd("NOOP")
uo = old.cmd("UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[0]
un = new.cmd("UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[0]
fo = [re.search(r"UID (\d+)", x).group(1) for x in uo if "two processes" in x]
fn = [re.search(r"UID (\d+)", x).group(1) for x in un if "two processes" in x]
ok(fo and fo == fn, "  a delivered message has one UID in both processes (%s, %s)" % (fo, fn))
if fn:
    new.cmd("UID STORE %s +FLAGS.SILENT (\\Flagged $Both)" % fn[0])
    time.sleep(0.3)
    u, t = old.cmd("NOOP")
    line = [x for x in u if "UID %s FLAGS" % fn[0] in x]
    ok(line and "\\Flagged" in line[0] and "$Both" in line[0],
       "  a flag change in one reaches the other: %s" % line)
old.close()
new.close()
a1.close()

inst.cleanup()
done()
