#!/usr/bin/env python3
"""t/61-local-privileges.t - local's privileged paths under attack, on a
real instance with real users (issue 10, findings 1, 3 and 6).

Covers:
- a user's ~/.forward that includes /etc/shadow gets a deferral with
  "Permission denied", and no line of the file reaches the log, a bounce
  or a Maildir (root used to read it); an include of a file in a
  directory the user cannot read answers the same whether the file exists
  or not (no existence oracle);
- .forward :include: files must be the user's or root's, no symbolic
  link, no FIFO (no hang), no device, not writable by group or others; a
  proper one works; a /file target that is a FIFO is refused at once;
- an alias table owned by a user: its :include: files are read as that
  user, not as root;
- root's alias table: an include reached through a directory a user
  controls (a symbolic link to /etc swapped in on the way) is read as
  default_privs, not as root, so /etc/shadow is refused; a list in that
  user's directory still works; one in a directory only root can enter is
  read as root;
- a /file target that someone else holds locked defers after
  deliver_lock_attempts tries (4.2.0) instead of holding the delivery,
  and the other members of the list get their copies;
- ~/.forward that is a symbolic link, has a second link, or sits in a home
  directory others can write is ignored with a warning: the mail stays in
  the user's Maildir and nothing it names runs;
- one user's .forward running slow commands takes at most
  local_destination_concurrency_limit processes (whatever domain of ours
  or address extension the mail names), and another user's mail arrives
  at once, also while more mail for the first user comes in;
  command_time_limit kills a command that runs too long;
- a Return-Path: header sent by the client does not survive delivery.
"""
import fcntl
import os
import pwd
import shutil
import stat
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from posthorn import Instance  # noqa: E402
from tap import diag, done, is_, like, ok, skip_all  # noqa: E402

if os.geteuid() != 0:
    skip_all("local must run as root")

inst = Instance(main_conf={"minimal_backoff_time": "3600s", "local_concurrency_limit": "4",
                           "command_time_limit": "8s", "deliver_lock_attempts": "3"})
drop = tempfile.mkdtemp(prefix="posthorn-lp-")
os.chmod(drop, 0o1777)
secret_dir = tempfile.mkdtemp(prefix="posthorn-secret-")    # root's, 0700
users = [inst.add_user() for _ in range(6)]
(ua, ha), (ub, hb), (uc, hc), (ud, hd), (ue, he), (sender, hs) = users
uid = {u: pwd.getpwnam(u).pw_uid for u, _ in users}

# A user-owned alias table (Mailman style): its includes are read as that user.
xtable = os.path.join(drop, "xaliases")
with open(xtable, "w") as f:
    f.write("xleak: :include:/etc/shadow\nxcmd: \"|id -u > %s/xuid\"\n" % drop)
inst.set_main({"alias_maps": "hash:%s/aliases, hash:%s" % (inst.etc, xtable)})
r = inst.mailctl("newaliases")
is_(r.returncode, 0, "a table owned by a user: built") or diag(r.stderr)

# Root's table naming lists below a directory that user ud controls, and
# one in a directory only root can enter.
udir = os.path.join(drop, "udir")
os.mkdir(udir)
os.chown(udir, uid[ud], -1)
os.symlink("/etc", os.path.join(udir, "sub"))
os.chown(os.path.join(udir, "sub"), uid[ud], -1, follow_symlinks=False)
with open(os.path.join(udir, "list"), "w") as f:
    f.write("%s\n" % ub)
os.chown(os.path.join(udir, "list"), uid[ud], -1)
with open(os.path.join(secret_dir, "list"), "w") as f:
    f.write("%s\n" % uc)
with open(os.path.join(inst.etc, "aliases"), "a") as f:
    f.write("rdir: :include:%s/sub/shadow\n" % udir +
            "rlist: :include:%s/list\n" % udir +
            "rsecret: :include:%s/list\n" % secret_dir +
            "locked: %s, %s/locked-mbox\n" % (ub, drop))
r = inst.mailctl("newaliases")
is_(r.returncode, 0, "root's table with includes: built") or diag(r.stderr)
# Then the user's table becomes the user's (root builds only from files
# that are root's alone).
os.chown(xtable, uid[ue], -1)
os.chown(xtable + ".db", uid[ue], -1)
r = inst.mailctl("newaliases")
ok(r.returncode == 1 and "not reading %s" % xtable in r.stderr,
   "root's newaliases does not read a source a user owns") or diag(r.stderr)

r = inst.start()
ok(r.returncode == 0, "instance starts") or diag(r.stderr)
port = inst.port(25)
SENDER = "%s@mail.example.test" % sender
with open("/etc/shadow") as f:
    shadow_lines = [l.strip() for l in f if l.strip()]


def send(rcpt, subject, extra=""):
    inst.send(SENDER, rcpt, subject, extra)


copies, wait_copies = inst.copies, inst.wait_copies


def status_line(user, want="status="):
    """The last qmgr status line for user's address containing want."""
    rcpt = "to=<%s@mail.example.test>" % user
    lines = [l for l in inst.log().splitlines() if rcpt in l and want in l and "qmgr" in l]
    return lines[-1] if lines else None


def wait_status(user, mark, timeout=20):
    """Wait for a new status line for user after mark (a log length)."""
    def got():
        rcpt = "to=<%s@mail.example.test>" % user
        for l in inst.log()[mark:].splitlines():
            if rcpt in l and "status=" in l and "qmgr" in l:
                return l
    return inst.wait_for(got, timeout=timeout)


def forward(user, home, text, mode=0o644):
    path = os.path.join(home, ".forward")
    if os.path.lexists(path):
        os.unlink(path)
    with open(path, "w") as f:
        f.write(text)
    os.chown(path, uid[user], -1)
    os.chmod(path, mode)


def own_file(name, text, owner, mode=0o644):
    path = os.path.join(drop, name)
    with open(path, "w") as f:
        f.write(text)
    os.chown(path, owner, -1)
    os.chmod(path, mode)
    return path


def no_secret_anywhere(what):
    texts = [inst.log()]
    for _, home in users:
        texts += [d.decode("utf-8", "replace") for d in inst.maildir(home).values()]
    leaked = [l for l in shadow_lines if any(l in t for t in texts)]
    ok(not leaked, what) or diag("leaked: %r" % leaked[:2])


# ---- 1. :include: in ~/.forward is read as the user ----
mark = len(inst.log())
forward(ua, ha, "\\%s, :include:/etc/shadow\n" % ua)
send("%s@mail.example.test" % ua, "shadow")
line = wait_status(ua, mark)
ok(line and "status=deferred" in line, ".forward including /etc/shadow is deferred") or diag(line)
like(line or "", "Permission denied", "because the user cannot read it")
no_secret_anywhere("no line of /etc/shadow reaches the log or any Maildir")

secret = os.path.join(secret_dir, "exists")
with open(secret, "w") as f:
    f.write("%s\n" % ub)
reasons = []
for name in ("exists", "missing"):
    mark = len(inst.log())
    forward(ua, ha, ":include:%s/%s\n" % (secret_dir, name))
    send("%s@mail.example.test" % ua, "oracle " + name)
    line = wait_status(ua, mark) or ""
    reasons.append(line[line.find("status="):].replace(name, "NAME"))
is_(reasons[0], reasons[1], "an include the user cannot reach answers the same, present or not")
like(reasons[0], "Permission denied", "(permission denied both times)")
is_(copies(hb, "oracle exists"), [], "and root did not read it for the user")

bad_includes = [
    ("another user's file", own_file("other", "%s\n" % ub, uid[uc]), "owned by another account"),
    ("a symbolic link", None, "a symbolic link"),
    ("a FIFO", None, "not a regular file"),
    ("a device", "/dev/zero", "not a regular file"),
    ("a group-writable file", own_file("gw", "%s\n" % ub, uid[ua], 0o664),
     "writable by group or others"),
]
link = os.path.join(drop, "link")
os.symlink(own_file("linked", "%s\n" % ub, uid[ua]), link)
os.chown(link, uid[ua], -1, follow_symlinks=False)
bad_includes[1] = ("a symbolic link", link, "a symbolic link")
fifo = os.path.join(drop, "fifo")
os.mkfifo(fifo)
os.chown(fifo, uid[ua], -1)
bad_includes[2] = ("a FIFO", fifo, "not a regular file")
for what, path, why in bad_includes:
    mark = len(inst.log())
    forward(ua, ha, ":include:%s\n" % path)
    send("%s@mail.example.test" % ua, "bad include")
    line = wait_status(ua, mark) or ""
    ok("status=deferred" in line and why in line, ".forward :include: of %s is refused (%s)"
       % (what, why)) or diag(line)
is_(copies(hb, "bad include"), [], "none of them delivered to the user they name")

forward(ua, ha, ":include:%s\n" % own_file("good", "# mine\n%s, \\%s\n" % (ub, ua), uid[ua]))
send("%s@mail.example.test" % ua, "good include")
ok(wait_copies(hb, "good include") and wait_copies(ha, "good include"),
   "an include file of the user's own works")
rootlist = own_file("rootlist", "%s\n" % ub, 0)
forward(ua, ha, ":include:%s\n" % rootlist)
send("%s@mail.example.test" % ua, "root include")
ok(wait_copies(hb, "root include"), "and one of root's that the user can read")
fifo_target = os.path.join(drop, "fifo-target")
os.mkfifo(fifo_target)
os.chown(fifo_target, uid[ua], -1)
mark = len(inst.log())
forward(ua, ha, "%s\n" % fifo_target)
send("%s@mail.example.test" % ua, "fifo target")
line = wait_status(ua, mark, timeout=15) or ""
ok("status=bounced" in line and "5.2.0" in line,
   "a /file target that is a FIFO is refused at once, not waited on") or diag(line)
os.unlink(os.path.join(ha, ".forward"))

# ---- an alias table owned by a user ----
mark = len(inst.log())
send("xleak@mail.example.test", "xleak")
line = wait_status("xleak", mark) or ""
ok("status=deferred" in line and "Permission denied" in line,
   "a user's alias table including /etc/shadow: read as that user, refused") or diag(line)
no_secret_anywhere("and nothing of it leaks")
send("xcmd@mail.example.test", "xcmd")
xuid = os.path.join(drop, "xuid")
ok(inst.wait_for(lambda: os.path.exists(xuid) and os.path.getsize(xuid) > 0),
   "its commands run")
if os.path.exists(xuid):
    is_(open(xuid).read().strip(), str(uid[ue]), "as the table's owner")

# ---- root's alias table: includes through a directory a user controls ----
mark = len(inst.log())
send("rdir@mail.example.test", "rdir")
line = wait_status("rdir", mark) or ""
ok("status=deferred" in line and "Permission denied" in line,
   "root's :include: through a user's symbolic link to /etc: read as default_privs, "
   "refused") or diag(line)
no_secret_anywhere("and nothing of /etc/shadow leaks")
send("rlist@mail.example.test", "rlist")
ok(wait_copies(hb, "rlist"), "a list in that user's directory is still delivered")
send("rsecret@mail.example.test", "rsecret")
ok(wait_copies(hc, "rsecret"), "a list in a directory only root can enter is read as root")

# ---- 6. ~/.forward that another account could have chosen ----
victim_cmd = os.path.join(drop, "victim-ran")
target = own_file("chosen", "\"|touch %s\"\n" % victim_cmd, uid[uc])
os.symlink(target, os.path.join(hc, ".forward"))
os.chown(os.path.join(hc, ".forward"), uid[uc], -1, follow_symlinks=False)
send("%s@mail.example.test" % uc, "symlinked forward")
ok(wait_copies(hc, "symlinked forward"), ".forward as a symbolic link is ignored: mail stays")
ok(not os.path.exists(victim_cmd), "and its command does not run")
like(inst.log(), "/.forward is a symbolic link", "with a warning")
os.unlink(os.path.join(hc, ".forward"))
os.link(target, os.path.join(hc, ".forward"))
send("%s@mail.example.test" % uc, "linked forward")
ok(wait_copies(hc, "linked forward"), ".forward with a second link is ignored")
ok(not os.path.exists(victim_cmd), "and its command does not run")
os.unlink(os.path.join(hc, ".forward"))
forward(uc, hc, "\"|touch %s\"\n" % victim_cmd)
mode = stat.S_IMODE(os.stat(hc).st_mode)
os.chmod(hc, 0o777)
send("%s@mail.example.test" % uc, "open home")
ok(wait_copies(hc, "open home"), ".forward in a home others can write is ignored")
ok(not os.path.exists(victim_cmd), "and its command does not run")
like(inst.log(), "is writable by group or others: %s/.forward ignored" % hc, "with a warning")
os.chmod(hc, mode)
os.unlink(os.path.join(hc, ".forward"))

# ---- Return-Path from the client ----
send("%s@mail.example.test" % ub, "return path",
     extra="Return-Path: <forged@evil.example>\r\nreturn-path :\r\n <also@evil.example>\r\n")
got = wait_copies(hb, "return path")
ok(got, "a message carrying Return-Path: headers is delivered")
if got:
    head = got[0].split(b"\n\n", 1)[0]
    is_(head.lower().count(b"return-path"), 1, "with one Return-Path: only")
    ok(head.startswith(("Return-Path: <%s>\n" % SENDER).encode()), "ours, from the envelope")
    ok(b"evil.example" not in head, "the client's are gone, continuation lines too")


# ---- a locked mailbox file: retried, then deferred ----
locked = own_file("locked-mbox", "", pwd.getpwnam("nobody").pw_uid, 0o600)
with open(locked, "a") as holder:
    fcntl.lockf(holder, fcntl.LOCK_EX)
    mark = len(inst.log())
    send("locked@mail.example.test", "locked")
    ok(wait_copies(hb, "locked"), "a list with a locked file target: the user gets a copy")
    line = wait_status("locked", mark) or ""
    ok("status=deferred" in line and "4.2.0" in line and "still locked" in line,
       "the file target defers after deliver_lock_attempts (not held until "
       "command_time_limit)") or diag(line)
is_(os.path.getsize(locked), 0, "and nothing was written to the locked file")


# ---- 3. one user's slow commands do not stall everyone ----
def sleeps(user):
    n = 0
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/status" % p) as f:
                st = f.read()
            with open("/proc/%s/cmdline" % p, "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if ("\nUid:\t%d\t" % uid[user]) in st and cmd.startswith(b"sleep\0"):
            n += 1
    return n


forward(ue, he, "\"|sleep 60\"\n")
send("%s@mail.example.test" % ue, "too slow")
forward(ud, hd, "".join("\"|sleep 60 # %d\"\n" % i for i in range(25)))
send("%s@mail.example.test" % ud, "slow")
inst.wait_for(lambda: sleeps(ud) >= 2, timeout=10)
time.sleep(1)
most = sleeps(ud)
t0 = time.time()
send("%s@mail.example.test" % ub, "meanwhile")
arrived = wait_copies(hb, "meanwhile", timeout=30)
took = time.time() - t0
ok(arrived and took < 10, "another user's mail arrives while 25 slow commands wait (%.1fs)" % took)
# The same user under every domain of ours and with extensions: one
# recipient, one cap.
for i, dom in enumerate(["mail.example.test", "example.test", "localhost",
                         "localhost.example.test", "Example.TEST"]):
    send("%s+x%d@%s" % (ud, i, dom) if i % 2 else "%s@%s" % (ud, dom), "slow again %d" % i)
time.sleep(2)
t0 = time.time()
send("%s@mail.example.test" % ub, "still meanwhile")
arrived = wait_copies(hb, "still meanwhile", timeout=30)
took = time.time() - t0
ok(arrived and took < 10, "and while more mail for that user comes in (%.1fs)" % took)
most = max(most, sleeps(ud))
ok(0 < most <= 2, "the user's commands run at most 2 at a time (saw %d)" % most)
ok(inst.wait_for(lambda: "was killed after command_time_limit" in inst.log(), timeout=30),
   "a command running past command_time_limit is killed")
ok(inst.wait_for(lambda: status_line(ue, "delivery timed out"), timeout=30),
   "and its recipient deferred: delivery timed out")

inst.cleanup()
shutil.rmtree(drop, ignore_errors=True)
shutil.rmtree(secret_dir, ignore_errors=True)
done()
