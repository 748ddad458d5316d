#!/usr/bin/env python3
"""Privilege separation for real: every process runs as the account and in
the root directory DESIGN.md §1 gives it (read from /proc/PID/status and
/proc/PID/root), and mailctl start creates the accounts and the spool with
the right owners and modes."""
import grp
import os
import pwd
import stat
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, diag, done, skip_all  # noqa: E402
import posthorn  # noqa: E402

if os.geteuid() != 0:
    skip_all("privilege separation needs root")

inst = posthorn.Instance()
net_port = inst.port(25)
owner_port = inst.port(587)
inst.write_master([
    # stands in for smtpd: posthorn-net, chrooted into the spool
    "127.0.0.1:%d inet n - - testsvc --user=network_user --chroot=spool" % net_port,
    # stands in for smtp: posthorn-net, chrooted into an empty directory
    "127.0.0.1:%d inet n - - testsvc --multi --user=network_user --chroot=empty" % owner_port,
    # stands in for qmgr: posthorn, in the spool
    "qmgr unix y 60 1 testsvc --user=mail_owner --chroot=spool --no-idle-exit",
    # stands in for authd: posthorn-auth, no chroot
    "authd unix y 60 1 testsvc --user=auth_user --no-idle-exit",
])
r = inst.start()
is_(r.returncode, 0, "mailctl start succeeds")
diag(r.stderr)
log = inst.log()

# Accounts.
accounts = {}
for name in ("posthorn", "posthorn-net", "posthorn-auth", "posthorn-null", "posthorn-check"):
    try:
        pw = pwd.getpwnam(name)
        accounts[name] = pw
        ok(pw.pw_uid != 0 and pw.pw_shell.endswith("nologin"),
           "account %s exists, not root, no login shell" % name)
    except KeyError:
        ok(False, "account %s exists" % name)
ok(grp.getgrnam("posthorn-drop"), "group posthorn-drop exists")
owner = accounts["posthorn"]
drop_gid = grp.getgrnam("posthorn-drop").gr_gid

# Spool owners and modes (DESIGN.md §2).
want = {
    "": (0, 0, 0o755),
    "maildrop": (owner.pw_uid, drop_gid, 0o1730),
    "tmp": (owner.pw_uid, owner.pw_gid, 0o700),
    "incoming": (owner.pw_uid, owner.pw_gid, 0o700),
    "active": (owner.pw_uid, owner.pw_gid, 0o700),
    "deferred": (owner.pw_uid, owner.pw_gid, 0o700),
    "hold": (owner.pw_uid, owner.pw_gid, 0o700),
    "corrupt": (owner.pw_uid, owner.pw_gid, 0o700),
    "private": (0, owner.pw_gid, 0o710),
    "public": (0, drop_gid, 0o710),
    "pid": (0, 0, 0o755),
    "empty": (0, 0, 0o555),
    "dmarc": (accounts["posthorn-check"].pw_uid, accounts["posthorn-check"].pw_gid, 0o700),
}
for d, (uid, gid, mode) in sorted(want.items()):
    st = os.lstat(os.path.join(inst.spool, d))
    is_((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (uid, gid, mode),
        "spool/%s has owner %d:%d mode %04o" % (d, uid, gid, mode))
like(log, "created directory %s/maildrop" % inst.spool, "mailctl start logs what it created")

# A second start fixes a wrong mode and says so.
os.chmod(os.path.join(inst.spool, "incoming"), 0o755)
r = inst.stop()
r = inst.start()
st = os.stat(os.path.join(inst.spool, "incoming"))
is_(stat.S_IMODE(st.st_mode), 0o700, "start puts a wrong mode right")
like(inst.log(), "fixed the mode of %s/incoming" % inst.spool, "and logs it")

# Make every service run a process.
for port in (net_port, owner_port):
    s, f = inst.connect(port)
    f.readline()
    s.close()
inst.wait_for(lambda: len(inst.procs()) >= 4, 5)

master = inst.master_pid
st = posthorn.proc_status(master)
is_(st["Uid"], ["0"] * 4, "master runs as root")
is_(posthorn.proc_root(master), "/", "master is not chrooted")


def check(pid, account, root, label):
    pw = accounts[account]
    st = posthorn.proc_status(pid)
    is_(st["Uid"], [str(pw.pw_uid)] * 4, "%s runs as %s (real, effective, saved, fs)" % (label, account))
    is_(st["Gid"], [str(pw.pw_gid)] * 4, "%s has group %s" % (label, account))
    is_(sorted(st["Groups"]), sorted({str(pw.pw_gid), str(owner.pw_gid)}),
        "%s has only its own group and the mail_owner group" % label)
    is_(st["CapEff"], ["0000000000000000"], "%s has no capabilities" % label)
    is_(st["CapPrm"], ["0000000000000000"], "%s cannot regain any" % label)
    is_(posthorn.proc_root(pid), root, "%s has root directory %s" % (label, root))


found = {}
for pid in inst.procs():
    cmd = open("/proc/%d/cmdline" % pid, "rb").read().split(b"\0")
    args = [a.decode() for a in cmd]
    if "-n" in args:
        found[args[args.index("-n") + 1]] = pid
diag("processes: %r" % found)
check(found.get("127.0.0.1:%d" % net_port), "posthorn-net", inst.spool, "the smtpd stand-in")
check(found.get("127.0.0.1:%d" % owner_port), "posthorn-net", os.path.join(inst.spool, "empty"),
      "the smtp stand-in")
check(found.get("qmgr"), "posthorn", inst.spool, "the qmgr stand-in")
check(found.get("authd"), "posthorn-auth", "/", "the authd stand-in")

# The control socket is root's alone.
sock = os.path.join(inst.spool, "pid", "master.sock")
st = os.stat(sock)
is_((st.st_uid, stat.S_IMODE(st.st_mode)), (0, 0o600), "the control socket is root's, mode 0600")
r = posthorn.subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                             posthorn.MAILCTL, "-c", inst.etc, "status"],
                            capture_output=True, text=True, timeout=30)
ok(r.returncode != 0, "mailctl status as nobody fails")
like(r.stderr, "permission denied", "with a clear message")
ok(r.stderr.startswith("mailctl:"), "from mailctl itself (it ran: the refusal is its own)") \
    or diag(r.stderr)

r = inst.stop()
is_(r.returncode, 0, "mailctl stop succeeds")
inst.cleanup()

# Missing accounts are created (and logged): an instance with account names
# of its own, removed again afterwards.
tag = "%05d" % (os.getpid() % 100000)
names = {"mail_owner": "pht%s-own" % tag, "network_user": "pht%s-net" % tag,
         "auth_user": "pht%s-auth" % tag, "login_user": "pht%s-null" % tag,
         "check_user": "pht%s-chk" % tag, "setgid_group": "pht%s-drop" % tag}
inst2 = posthorn.Instance(main_conf=names)
inst2.write_master([])
try:
    r = inst2.start()
    is_(r.returncode, 0, "start with account names that do not exist yet")
    log2 = inst2.log()
    for param in ("mail_owner", "network_user", "auth_user", "login_user", "check_user"):
        name = names[param]
        try:
            pw = pwd.getpwnam(name)
            ok(pw.pw_uid != 0 and pw.pw_uid < 1000 and pw.pw_shell.endswith("nologin"),
               "%s: system account %s created" % (param, name))
        except KeyError:
            ok(False, "%s: account %s created" % (param, name))
        like(log2, "created account %s (uid" % name, "and its creation logged")
    ok(grp.getgrnam(names["setgid_group"]), "group %s created" % names["setgid_group"])
    like(log2, "created group %s" % names["setgid_group"], "and logged")
    st = os.stat(os.path.join(inst2.spool, "incoming"))
    is_(st.st_uid, pwd.getpwnam(names["mail_owner"]).pw_uid, "the spool belongs to the new mail_owner")
    inst2.stop()
finally:
    inst2.cleanup()
    for param in ("mail_owner", "network_user", "auth_user", "login_user", "check_user"):
        subprocess.run(["userdel", names[param]], capture_output=True)
    subprocess.run(["groupdel", names["setgid_group"]], capture_output=True)
ok(all(n not in open("/etc/passwd").read() for n in names.values()), "the test accounts are removed again")
done()
