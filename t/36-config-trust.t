#!/usr/bin/env python3
"""Configuration that root will run (issue 10, finding 2).

A local user must never get root to run or read something of theirs
through the configuration path:
 (a) the auditor's reproduction: the user makes /tmp/x/etc, root runs
     "mailctl init /tmp/x", the user swaps in a main.conf whose
     daemon_directory holds their own master, root runs "mailctl start":
     init refuses, and so does start;
 (b) after a good init, a configuration file, the configuration
     directory, daemon_directory, a program or a directory above them
     handed to the user (owner, g+w/o+w, a symbolic link of theirs):
     mailctl check, mailctl start and master itself refuse and name the
     file, and nothing the user planted runs;
 (c) the same change under a running master: reload is refused (through
     mailctl and by SIGHUP), master keeps its old services, and a program
     the user took over is not run when a new process is needed;
 (d) init makes its files with the right modes under a hostile umask and
     never writes through a symbolic link planted below the instance;
 (e) what else root opens by a configured path: a maillog_file the user
     replaced by a link or a file of theirs, a queue_directory the user
     made beforehand, and root's sendmail with a main.conf of the user's.
Every process is cleaned up by PID, the throwaway account and the
directories made here are removed."""
import atexit
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, diag, done, skip_all  # noqa: E402
import posthorn  # noqa: E402

if os.geteuid() != 0:
    skip_all("the trust checks are about root: run as root")

MAILCTL = posthorn.MAILCTL
MASTER = os.path.join(posthorn.BUILD, "libexec", "posthorn", "master")
MARKER = "/tmp/posthorn-t-pwned-%d" % os.getpid()
made = []               # directories to remove at the end


def mkdtemp(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    made.append(d)
    return d


@atexit.register
def _remove_made():
    for d in made:
        shutil.rmtree(d, ignore_errors=True)
    if os.path.lexists(MARKER):
        os.unlink(MARKER)


def pwned():
    """Did a planted program run?  Returns (and removes) its record."""
    try:
        with open(MARKER) as f:
            text = f.read()
        os.unlink(MARKER)
        return text or "(empty)"
    except FileNotFoundError:
        return None


inst = posthorn.Instance(main_conf={"service_throttle_time": "60s"})
port = inst.port(25)
services = [
    "127.0.0.1:%d inet n - - testsvc --user=network_user" % port,
    "ticker unix y 60 1 testsvc --user=mail_owner --no-idle-exit",
]
inst.write_master(services)
user, home = inst.add_user()
uid, gid = pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid


def as_user(cmd, stdin=None):
    return subprocess.run(["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups",
                           "sh", "-c", cmd], input=stdin, capture_output=True, text=True,
                          timeout=30, cwd="/")


# The user's programs: one for every name root might run, each leaving a
# record of who ran it.
evil = os.path.join(home, "evil")
script = "#!/bin/sh\nid -u >> %s\nexit 0\n" % MARKER
os.mkdir(evil, 0o755)
for p in ["master", "testsvc"] + os.listdir(inst.libexec):
    with open(os.path.join(evil, p), "w") as f:
        f.write(script)
    os.chown(os.path.join(evil, p), uid, gid)
    os.chmod(os.path.join(evil, p), 0o755)
os.chown(evil, uid, gid)
main_good = open(os.path.join(inst.etc, "main.conf")).read()
master_good = open(os.path.join(inst.etc, "master.conf")).read()


def stop_any_master(confdir_spool=None):
    """Under the old code a start may have worked: stop what it started."""
    pid = inst.read_pid()
    if pid and posthorn.alive(pid):
        inst.master_pid = pid
        inst.track()
        inst.mailctl("stop", timeout=30)
        inst.track()
    posthorn.reap()


def try_start():
    r = inst.mailctl("start")
    stop_any_master()
    return r


def try_master():
    r = subprocess.run([MASTER, "-c", inst.etc], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=60)
    stop_any_master()
    return r


def refused(what, culprit, reason="", start_only=False):
    """mailctl check, mailctl start and master refuse, naming culprit."""
    runs = [("mailctl start", try_start)]
    if not start_only:
        runs = [("mailctl check", lambda: inst.mailctl("check"))] + runs + [("master", try_master)]
    for name, fn in runs:
        r = fn()
        ok(r.returncode != 0, "%s: %s refuses" % (what, name)) or diag(r.stdout + r.stderr)
        like(r.stderr, culprit + ": " + reason, "%s: %s names %s" % (what, name, culprit))
        is_(pwned(), None, "%s: %s ran nothing of the user's" % (what, name))


# ---------------------------------------------------------------------------
# (a) The auditor's reproduction.
x = "/tmp/posthorn-t-x-%d" % os.getpid()
made.append(x)
r = as_user("mkdir -m 755 -p %s/etc" % x)
is_(r.returncode, 0, "(a) the user makes %s/etc" % x)
r = subprocess.run([MAILCTL, "init", x, "--port-base", str(posthorn.free_port_base())],
                   capture_output=True, text=True, timeout=60)
ok(r.returncode != 0, "(a) root's mailctl init refuses a DIR the user owns") or diag(r.stdout)
like(r.stderr, "%s: not owned by root" % x, "(a) and names it")
ok(not os.path.exists(os.path.join(x, "etc", "main.conf")), "(a) and writes nothing there")
# The user goes on as if init had worked: a main.conf whose daemon_directory
# is theirs, swapped in over whatever is there.
# (queue_directory below a directory of root's: only the spool's parents
# were ever checked.)
evil_main = (main_good.replace(inst.dir, x) + "daemon_directory = %s\nqueue_directory = %s/spool\n"
             % (evil, mkdtemp("posthorn-t-xspool-")))
r = as_user("cat > %s/etc/main.new && mv -f %s/etc/main.new %s/etc/main.conf" % (x, x, x),
            stdin=evil_main)
r = as_user("test -e %s/etc/master.conf || cat > %s/etc/master.conf" % (x, x), stdin=master_good)
r = subprocess.run([MAILCTL, "-c", x + "/etc", "start"], capture_output=True, text=True, timeout=60)
ok(r.returncode != 0, "(a) root's mailctl start refuses the user's configuration") or diag(r.stdout + r.stderr)
like(r.stderr, x, "(a) naming the directory the user owns")
who = pwned()
is_(who, None, "(a) the user's master did not run (as root)")
pid_file = os.path.join(x, "spool", "pid", "master.pid")
if os.path.exists(pid_file):                        # the old code: stop what it started
    subprocess.run([MAILCTL, "-c", x + "/etc", "stop"], capture_output=True, timeout=60)

# A DIR that root owns but is group-writable, and a DIR/etc of the user's.
x2 = mkdtemp("posthorn-t-x2-")
os.chmod(x2, 0o775)
r = subprocess.run([MAILCTL, "init", x2], capture_output=True, text=True, timeout=60)
ok(r.returncode != 0, "(a) init refuses a group-writable DIR")
like(r.stderr, "%s: writable by its group" % x2, "(a) and says so")
x2 = mkdtemp("posthorn-t-x2-")
os.mkdir(os.path.join(x2, "etc"))
os.chown(os.path.join(x2, "etc"), uid, gid)
r = subprocess.run([MAILCTL, "init", x2], capture_output=True, text=True, timeout=60)
ok(r.returncode != 0, "(a) init refuses a DIR/etc the user owns in root's DIR")
like(r.stderr, "%s/etc: not owned by root" % x2, "(a) and names it")
ok(not os.path.exists(os.path.join(x2, "etc", "main.conf")), "(a) and writes nothing there")
# A DIR below a directory of the user's: init must not even create it.
x3 = os.path.join(home, "inst")
r = subprocess.run([MAILCTL, "init", x3], capture_output=True, text=True, timeout=60)
ok(r.returncode != 0, "(a) init refuses a DIR below the user's directory")
like(r.stderr, "%s: not owned by root" % home, "(a) and names that directory")
ok(not os.path.exists(x3), "(a) and makes nothing there")

# ---------------------------------------------------------------------------
# (b) A good instance, then one thing handed to the user at a time.
r = inst.mailctl("check")
is_(r.returncode, 0, "(b) the instance checks cleanly as made") or diag(r.stderr)
mainconf = os.path.join(inst.etc, "main.conf")
masterconf = os.path.join(inst.etc, "master.conf")

# main.conf the user's: they point daemon_directory at their programs.
os.chown(mainconf, uid, gid)
r = as_user("echo 'daemon_directory = %s' >> %s" % (evil, mainconf))
is_(r.returncode, 0, "(b) the user can edit a main.conf of theirs")
refused("main.conf owned by the user", mainconf, "not owned by root")
with open(mainconf, "w") as f:
    f.write(main_good)
os.chown(mainconf, 0, 0)

# master.conf writable by others, then by the group.
for mode, how in ((0o646, "others"), (0o664, "its group")):
    os.chmod(masterconf, mode)
    refused("master.conf mode %o" % mode, masterconf, "writable by " + how)
os.chmod(masterconf, 0o644)

# The configuration directory the user's: they could swap any file in it.
os.chown(inst.etc, uid, gid)
refused("the configuration directory owned by the user", inst.etc, "not owned by root")
os.chown(inst.etc, 0, 0)

# daemon_directory the user's: they swap in their own programs.
os.chown(inst.libexec, uid, gid)
saved = {p: os.readlink(os.path.join(inst.libexec, p)) for p in ("master", "testsvc")}
r = as_user("cd %s && for p in master testsvc; do rm -f $p && cp %s/$p $p; done" % (inst.libexec, evil))
is_(r.returncode, 0, "(b) the user swaps programs in a daemon_directory of theirs") or diag(r.stderr)
refused("daemon_directory owned by the user", inst.libexec, "not owned by root")
for p, target in saved.items():
    os.unlink(os.path.join(inst.libexec, p))
    os.symlink(target, os.path.join(inst.libexec, p))
os.chown(inst.libexec, 0, 0)

os.chmod(inst.libexec, 0o775)
refused("daemon_directory group-writable", inst.libexec, "writable by its group")
os.chmod(inst.libexec, 0o755)

# One program a symbolic link the user owns (pointing to their program),
# then root's link into the user's directory, then a file of theirs.
prog = os.path.join(inst.libexec, "testsvc")
target = os.readlink(prog)
os.unlink(prog)
os.symlink(os.path.join(evil, "testsvc"), prog)
os.lchown(prog, uid, gid)
refused("a program that is the user's symbolic link", prog, "a symbolic link not owned by root")
os.lchown(prog, 0, 0)
refused("a program that is root's link into the user's directory", home,
        "not owned by root but by uid %d (checking %s)" % (uid, prog))
os.unlink(prog)
shutil.copy(os.path.join(evil, "testsvc"), prog)
os.chown(prog, uid, gid)
refused("a program the user owns", prog, "not owned by root")
os.unlink(prog)
os.symlink(target, prog)

# The master that mailctl start runs.
mprog = os.path.join(inst.libexec, "master")
mtarget = os.readlink(mprog)
os.unlink(mprog)
os.symlink(os.path.join(evil, "master"), mprog)
refused("master a link into the user's directory", home, "not owned by root", start_only=True)
os.unlink(mprog)
os.symlink(mtarget, mprog)

# A directory above everything: the instance directory itself.
os.chown(inst.dir, uid, gid)
refused("the instance directory owned by the user", inst.dir, "not owned by root")
os.chown(inst.dir, 0, 0)

r = inst.mailctl("check")
is_(r.returncode, 0, "(b) after every change is undone the instance checks cleanly") or diag(r.stderr)

# ---------------------------------------------------------------------------
# (c) The same under a running master.
r = inst.start()
is_(r.returncode, 0, "(c) start") or diag(r.stdout + r.stderr)
ok(inst.master_pid and posthorn.alive(inst.master_pid), "(c) master runs")


def greeting():
    try:
        s, f = inst.connect(port)
        try:
            return f.readline().decode()
        finally:
            s.close()
    except OSError as e:
        return str(e)


like(greeting(), "testsvc", "(c) the service answers")
extra = posthorn.free_port()


def status_lists(name):
    return name in inst.status().stdout


def hup_refused(culprit):
    """SIGHUP: master itself re-reads and must refuse."""
    before = inst.log().count("reload failed")
    os.kill(inst.master_pid, signal.SIGHUP)
    ok(inst.wait_for(lambda: inst.log().count("reload failed") > before, 10),
       "(c) master refuses a SIGHUP reload too")
    like(inst.log().split("reload failed")[-1], culprit, "(c) and logs the file")


os.chown(masterconf, uid, gid)
r = as_user("echo '127.0.0.1:%d inet n - - testsvc' >> %s" % (extra, masterconf))
r = inst.mailctl("reload")
ok(r.returncode != 0, "(c) reload refuses a master.conf the user owns") or diag(r.stdout)
like(r.stderr, masterconf + ": not owned by root", "(c) and names it")
hup_refused(masterconf)
ok(posthorn.alive(inst.master_pid), "(c) master keeps running")
ok(not status_lists("127.0.0.1:%d" % extra), "(c) without the user's service")
ok(status_lists("127.0.0.1:%d" % port) and status_lists("ticker"), "(c) with its old services")
with open(masterconf, "w") as f:
    f.write(master_good)
os.chown(masterconf, 0, 0)

# daemon_directory handed to the user, who swaps in their testsvc: the
# reload is refused, and when master needs a new process it does not run it.
os.chown(inst.libexec, uid, gid)
r = as_user("cd %s && rm -f testsvc && cp %s/testsvc testsvc" % (inst.libexec, evil))
is_(r.returncode, 0, "(c) the user swaps testsvc in a daemon_directory of theirs") or diag(r.stderr)
r = inst.mailctl("reload")
ok(r.returncode != 0, "(c) reload refuses a daemon_directory the user owns")
like(r.stderr, inst.libexec + ": not owned by root", "(c) and names it")
hup_refused(inst.libexec)
for pid in inst.procs():
    os.kill(pid, signal.SIGTERM)         # master must start new ones
inst.wait_for(lambda: not inst.procs(), 10)
greeting()
ok(inst.wait_for(lambda: "is not trusted" in inst.log(), 10),
   "(c) master does not run the program the user took over") or diag(inst.log()[-2000:])
like(inst.log(), inst.libexec + ": not owned by root", "(c) and logs why")
time.sleep(0.5)
is_(pwned(), None, "(c) nothing of the user's ran")
ok(posthorn.alive(inst.master_pid), "(c) master is still running")
os.unlink(os.path.join(inst.libexec, "testsvc"))
os.symlink(saved["testsvc"], os.path.join(inst.libexec, "testsvc"))
os.chown(inst.libexec, 0, 0)

# main.conf handed to the user: reload refused; a service about to start
# (it reads main.conf as root) refuses it as well.
os.chown(mainconf, uid, gid)
r = inst.mailctl("reload")
ok(r.returncode != 0, "(c) reload refuses a main.conf the user owns")
like(r.stderr, mainconf + ": not owned by root", "(c) and names it")
os.chown(mainconf, 0, 0)
r = inst.stop()
is_(r.returncode, 0, "(c) stop") or diag(r.stderr)

# ---------------------------------------------------------------------------
# (d) init: modes under a hostile umask; no write through a planted link.
WANT = {"": 0o755, "etc": 0o755, "etc/tls": 0o755, "spool": 0o755, "log": 0o755,
        "etc/main.conf": 0o644, "etc/master.conf": 0o644, "etc/aliases": 0o644,
        "etc/aliases.db": 0o644, "etc/tls/cert.pem": 0o644, "etc/tls/key.pem": 0o600}
for mask in (0o077, 0o000, 0o027):
    d = os.path.join(mkdtemp("posthorn-t-umask-"), "inst")
    r = subprocess.run([MAILCTL, "init", d], capture_output=True, text=True, timeout=60,
                       preexec_fn=lambda: os.umask(mask))
    is_(r.returncode, 0, "(d) init under umask %03o" % mask) or diag(r.stderr)
    got = {}
    for rel in WANT:
        try:
            st = os.lstat(os.path.join(d, rel))
            got[rel] = (st.st_uid, stat.S_IMODE(st.st_mode))
        except OSError as e:
            got[rel] = str(e)
    is_(got, {rel: (0, m) for rel, m in WANT.items()}, "(d) and every file has its owner and mode")

# tls/ of the user's in root's DIR/etc, with key.pem a link to the user's
# file: the old init wrote root's new private key into it.
d = mkdtemp("posthorn-t-plant-")
os.mkdir(os.path.join(d, "etc"), 0o755)
tls = os.path.join(d, "etc", "tls")
os.mkdir(tls, 0o755)
os.chown(tls, uid, gid)
victim = os.path.join(home, "victim")
as_user("touch %s && ln -s %s %s/key.pem" % (victim, victim, tls))
r = subprocess.run([MAILCTL, "init", d], capture_output=True, text=True, timeout=60)
ok(r.returncode != 0, "(d) init refuses a DIR/etc/tls the user owns")
like(r.stderr, tls + ": not owned by root", "(d) and names it")
is_(os.path.getsize(victim), 0, "(d) the user's file did not get the key")
# The same link, root's, in a root's tls/ (root left it there): the key is
# never written through it.
shutil.rmtree(d)
os.makedirs(tls, 0o755)
os.symlink(victim, os.path.join(tls, "key.pem"))
r = subprocess.run([MAILCTL, "init", d], capture_output=True, text=True, timeout=60)
ok(r.returncode != 0, "(d) init does not write the key through a symbolic link")
like(r.stderr, tls + "/key.pem: cannot create: File exists", "(d) and names it")
is_(os.path.getsize(victim), 0, "(d) the user's file still did not get the key")
# A dangling link as main.conf: nothing is created at its target.
shutil.rmtree(d)
os.makedirs(os.path.join(d, "etc"), 0o755)
target = os.path.join(mkdtemp("posthorn-t-target-"), "victim.conf")
os.symlink(target, os.path.join(d, "etc", "main.conf"))
r = subprocess.run([MAILCTL, "init", d], capture_output=True, text=True, timeout=60)
ok(r.returncode != 0, "(d) init refuses a DIR/etc/main.conf that is a dangling link")
ok(not os.path.lexists(target), "(d) and creates nothing where it points")
# A spool of the user's in root's DIR.
shutil.rmtree(d)
os.makedirs(os.path.join(d, "spool"), 0o755)
os.chown(os.path.join(d, "spool"), uid, gid)
r = subprocess.run([MAILCTL, "init", d], capture_output=True, text=True, timeout=60)
ok(r.returncode != 0, "(d) init refuses a DIR/spool the user owns")
like(r.stderr, os.path.join(d, "spool") + ": not owned by root", "(d) and names it")

# ---------------------------------------------------------------------------
# (e) Other paths from the configuration that root opens.
sticky = mkdtemp("posthorn-t-sticky-")
os.chmod(sticky, 0o1777)
vdir = mkdtemp("posthorn-t-victim-")
victim = os.path.join(vdir, "victim")
with open(victim, "w") as f:
    f.write("root's file\n")
# maillog_file in a sticky directory, where the user planted a link.
logpath = os.path.join(sticky, "maillog")
as_user("ln -s %s %s" % (victim, logpath))
inst.set_main({"maillog_file": logpath})
r = inst.start()
is_(r.returncode, 0, "(e) start with a maillog_file the user replaced by a link") or diag(r.stderr)
r = inst.stop()
is_(open(victim).read(), "root's file\n", "(e) root appended nothing through the link")
os.unlink(logpath)
# ... or made their own file: root does not log into it for them to read.
as_user("touch %s" % logpath)
r = inst.start()
r = inst.stop()
is_(os.path.getsize(logpath), 0, "(e) nor into the user's own file there")
os.unlink(logpath)
inst.set_main({"maillog_file": inst.logfile})
# queue_directory made by the user beforehand in a sticky directory.
qdir = os.path.join(sticky, "spool")
as_user("mkdir -m 755 %s && mkdir -m 755 %s/pid && ln %s %s/pid/master.pid 2>/dev/null; true"
        % (qdir, qdir, victim, qdir))
inst.set_main({"queue_directory": qdir})
r = inst.mailctl("start")
ok(r.returncode != 0, "(e) start refuses a queue_directory the user made") or diag(r.stdout)
like(r.stderr, "queue_directory %s: not owned by root" % qdir, "(e) and says why")
ok(os.stat(qdir).st_uid == uid, "(e) and does not adopt it")
if r.returncode == 0:                               # the old code: stop what it started
    inst.mailctl("stop", timeout=30)
is_(open(victim).read(), "root's file\n", "(e) the victim file is untouched")
inst.set_main({"queue_directory": inst.spool})
# root's sendmail (cron's) with a main.conf the user owns.
os.chown(mainconf, uid, gid)
r = subprocess.run([os.path.join(posthorn.BUILD, "sbin", "sendmail"), "-C", inst.etc, "-bp"],
                   capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
is_(r.returncode, 78, "(e) root's sendmail refuses a main.conf the user owns (EX_CONFIG)")
like(r.stderr, mainconf + ": not owned by root", "(e) and names it")
os.chown(mainconf, 0, 0)

# ---------------------------------------------------------------------------
inst.cleanup()          # stops master, kills by PID, removes the account
_remove_made()
done()
