#!/usr/bin/env python3
"""make install honours PREFIX, DESTDIR and sysconfdir and never overwrites
an existing configuration; make dist makes a tarball that unpacks and
builds on its own.

Then the path a new user takes, on a host made bare for the test: inside
new mount, network and PID namespaces, with /etc, /var, /usr, /home and
/root overlaid (so the real host is never changed) and without any
/etc/aliases (a Debian 12 without an MTA has none), the unpacked tarball's
"make install" with the default paths and "mailctl start" with the
installed configuration as it is.  Then mail over SMTP to a local user and
to root, and cron's way (To: root, sendmail -t -oi): all three must be
delivered, root's into root's Maildir.  The PID namespace ends every
process the test started when its shell leaves."""
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, diag, done  # noqa: E402
import posthorn  # noqa: E402

TOP = posthorn.TOP
B = posthorn.BUILD_TREE
tmp = tempfile.mkdtemp(prefix="posthorn-t-install-")


# Run make as a user would: not with the variables of the make running us
# (under "make B=build-asan check", MAKEFLAGS and the environment carry B into the
# unpacked tarball's build).
ENV = {k: v for k, v in os.environ.items()
       if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "B", "SAN", "OPT")}


def make(*args, cwd=TOP):
    return subprocess.run(["make", "--no-print-directory"] + list(args), cwd=cwd, env=ENV,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)


dest = os.path.join(tmp, "dest")
r = make("install", "B=" + B, "DESTDIR=" + dest, "PREFIX=/opt/ph", "sysconfdir=/etc/phconf")
is_(r.returncode, 0, "make install succeeds")
diag(r.stderr[-2000:])
for f in ("opt/ph/libexec/posthorn/master", "opt/ph/sbin/mailctl",
          "etc/phconf/posthorn/main.conf", "etc/phconf/posthorn/master.conf",
          "etc/phconf/aliases", "opt/ph/share/man/man8/mailctl.8",
          "opt/ph/share/man/man8/master.8", "opt/ph/share/man/man5/main.conf.5",
          "opt/ph/share/man/man5/master.conf.5", "opt/ph/sbin/sendmail",
          "opt/ph/share/man/man1/sendmail.1", "opt/ph/share/man/man5/virtual.5",
          "opt/ph/libexec/posthorn/pickup", "opt/ph/libexec/posthorn/showq"):
    ok(os.path.exists(os.path.join(dest, f)), "installed %s" % f)
for link in ("mailq", "newaliases"):
    p = os.path.join(dest, "opt/ph/sbin", link)
    ok(os.path.islink(p) and os.readlink(p) == "sendmail", "%s is a link to sendmail" % link)

# install-mta-links: the standard paths point to our sendmail; another
# MTA's file is kept unless FORCE=1.
os.makedirs(os.path.join(dest, "usr/sbin"), exist_ok=True)
with open(os.path.join(dest, "usr/sbin/sendmail"), "w") as f:
    f.write("#!/bin/sh\n# another MTA\n")
r = make("install-mta-links", "DESTDIR=" + dest, "PREFIX=/opt/ph")
ok(r.returncode != 0 and "another MTA" in r.stderr, "install-mta-links keeps another MTA's sendmail")
r = make("install-mta-links", "DESTDIR=" + dest, "PREFIX=/opt/ph", "FORCE=1")
is_(r.returncode, 0, "with FORCE=1 it replaces it") or diag(r.stderr)
ok(os.path.exists(os.path.join(dest, "usr/sbin/sendmail.pre-posthorn")), "keeping the old one aside")
for path, name in (("usr/sbin/sendmail", "sendmail"), ("usr/bin/mailq", "mailq"),
                   ("usr/bin/newaliases", "newaliases")):
    is_(os.readlink(os.path.join(dest, path)) if os.path.islink(os.path.join(dest, path)) else None,
        "/opt/ph/sbin/" + name, "/%s points to ours" % path)
r = make("install-mta-links", "DESTDIR=" + dest, "PREFIX=/opt/ph")
is_(r.returncode, 0, "install-mta-links again changes nothing")
ok(os.access(os.path.join(dest, "opt/ph/sbin/mailctl"), os.X_OK), "mailctl is executable")

conf = os.path.join(dest, "etc/phconf/posthorn/main.conf")
with open(conf, "a") as f:
    f.write("myhostname = edited.example\n")
r = make("install", "B=" + B, "DESTDIR=" + dest, "PREFIX=/opt/ph", "sysconfdir=/etc/phconf")
is_(r.returncode, 0, "a second make install succeeds")
like(open(conf).read(), "edited.example", "and keeps the edited main.conf")
like(r.stdout, "keeping existing", "and says so")

# The installed mailctl finds its daemons relative to itself (init).
inst_dir = os.path.join(tmp, "inst")
r = subprocess.run([os.path.join(dest, "opt/ph/sbin/mailctl"), "init", inst_dir, "--port-base", "30000"],
                   capture_output=True, text=True, timeout=60)
is_(r.returncode, 0, "the installed mailctl can init an instance")
like(open(os.path.join(inst_dir, "etc/main.conf")).read(),
     "daemon_directory = %s/opt/ph/libexec/posthorn" % dest, "pointing at the installed daemons")

FRESH = r"""
set -u
T=$1; SRC=$2
ip link set lo up
for d in etc var usr home root; do
    mkdir -p "$T/up/$d" "$T/work/$d"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$T/up/$d,workdir=$T/work/$d" "/$d" || exit 3
done
rm -f /etc/aliases /etc/aliases.db
rm -rf /etc/posthorn /var/spool/posthorn /root/Maildir
echo "step: install"
(cd "$SRC" && make --no-print-directory install >"$T/install.log" 2>&1) || { echo "install failed"; tail -20 "$T/install.log"; exit 1; }
echo "aliases: $(grep -c . /etc/aliases 2>/dev/null)"
useradd -m -s /bin/sh freshuser || exit 3
echo "step: start"
/usr/local/sbin/mailctl start 2>&1 || { echo "start failed"; exit 1; }
echo "check: $(/usr/local/sbin/mailctl check >/dev/null 2>&1; echo $?)"
python3 - <<'PY' || echo "smtp failed"
import smtplib
s = smtplib.SMTP("127.0.0.1", 25, timeout=30)
for rcpt, subj in (("freshuser@localhost", "fresh-user"), ("root@localhost", "fresh-root"),
                   ("postmaster@localhost", "fresh-postmaster")):
    s.sendmail("someone@example.org", [rcpt], "Subject: %s\r\n\r\nhello\r\n" % subj)
s.quit()
PY
printf 'To: root\nSubject: fresh-cron\n\nfrom cron\n' | /usr/local/sbin/sendmail -t -oi \
    || echo "sendmail failed"
for i in $(seq 1 300); do
    n=$(cat /home/freshuser/Maildir/new/* /root/Maildir/new/* 2>/dev/null | grep -c '^Subject: fresh-')
    [ "$n" -ge 4 ] && break
    sleep 0.1
done
for f in /home/freshuser/Maildir/new/* /root/Maildir/new/*; do
    [ -f "$f" ] && echo "got: $(dirname "$(dirname "$(dirname "$f")")") $(grep -m1 '^Subject:' "$f")"
done
stat -c 'rootmaildir: %U %a' /root/Maildir 2>/dev/null
/usr/local/sbin/mailctl queue list 2>&1 | sed 's/^/queue: /'
# Root's .forward: its command runs as default_privs, "\\root" keeps a copy.
printf '\\root, "|id -u > /var/tmp/rootfwd"\n' > /root/.forward
printf 'Subject: fresh-forward\n\nx\n' | /usr/local/sbin/sendmail root
for i in $(seq 1 300); do
    [ -s /var/tmp/rootfwd ] && grep -qs '^Subject: fresh-forward' /root/Maildir/new/* && break
    sleep 0.1
done
echo "rootfwd: $(cat /var/tmp/rootfwd 2>/dev/null) $(grep -ls '^Subject: fresh-forward' /root/Maildir/new/* | wc -l)"
rm -f /root/.forward
# A root home that others can write: root's mail is not written there.
chmod 0777 /root
printf 'Subject: fresh-open\n\nx\n' | /usr/local/sbin/sendmail root
for i in $(seq 1 300); do
    /usr/local/sbin/mailctl queue list 2>/dev/null | grep -q "deferred: 4.3.0" && break
    sleep 0.1
done
/usr/local/sbin/mailctl queue list 2>&1 | sed 's/^/queue2: /'
echo "open: $(grep -ls '^Subject: fresh-open' /root/Maildir/new/* | wc -l)"
chmod 0700 /root
/usr/local/sbin/mailctl stop >/dev/null 2>&1
echo "done"
"""


def fresh_install(src):
    """The new user's path, in namespaces (see the top of this file)."""
    if os.geteuid() != 0:
        return
    work = tempfile.mkdtemp(prefix="posthorn-t-fresh-")
    script = os.path.join(work, "fresh.sh")
    with open(script, "w") as f:
        f.write(FRESH)
    try:
        r = subprocess.run(["unshare", "--mount", "--net", "--pid", "--fork", "--mount-proc",
                            "--propagation", "private", "sh", script, work, src],
                           capture_output=True, text=True, env=ENV, timeout=600,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        ok(False, "fresh install: finished in time")
        shutil.rmtree(work, ignore_errors=True)
        return
    out = r.stdout
    ok("done" in out.splitlines(), "fresh install: the script ran to its end") \
        or diag(out[-3000:] + r.stderr[-2000:])
    ok(re.search(r"^aliases: [1-9]", out, re.M), "make install wrote /etc/aliases where the host "
       "had none")
    ok("start failed" not in out, "mailctl start with the installed configuration works") \
        or diag(out[-3000:])
    like(out, "check: 0", "mailctl check is content")
    like(out, "got: /home/freshuser Subject: fresh-user", "mail to a local user is delivered")
    like(out, "got: /root Subject: fresh-root", "mail to root lands in root's Maildir")
    like(out, "got: /root Subject: fresh-postmaster", "and postmaster's (aliased to root)")
    like(out, "got: /root Subject: fresh-cron", "cron's mail (sendmail -t -oi, To: root) too")
    like(out, "rootmaildir: root 700", "root's Maildir is root's, mode 0700")
    ok("queue: " not in out or "is empty" in out, "nothing is left in the queue") \
        or diag(out[-3000:])
    like(out, "rootfwd: 65534 1", "root's .forward: its command runs as default_privs (nobody), "
         "\\root keeps a copy")
    ok(re.search(r"^queue2: .*deferred: 4\.3\.0", out, re.M),
       "a root home others can write: root's mail is deferred (4.3.0), kept in the queue")
    like(out, "open: 0", "and nothing is written there")
    shutil.rmtree(work, ignore_errors=True)


# make dist: a tarball that unpacks and builds on its own.
r = make("dist", "B=" + B)
is_(r.returncode, 0, "make dist succeeds")
tarballs = [f for f in os.listdir(TOP) if f.startswith("posthorn-") and f.endswith(".tar.gz")]
ok(len(tarballs) == 1, "it wrote posthorn-VERSION.tar.gz")
if tarballs:
    tb = os.path.join(TOP, tarballs[0])
    with tarfile.open(tb) as t:
        names = t.getnames()
        t.extractall(tmp)
    os.unlink(tb)
    root = tarballs[0][:-len(".tar.gz")]
    for f in ("Makefile", "README.md", ".ci/run", "lib/server.c", "master/master.c", "man/mailctl.8",
              "etc/main.conf", "t/20-master.t"):
        ok(root + "/" + f in names, "the tarball has %s" % f)
    r = make("-j2", "all", cwd=os.path.join(tmp, root))
    is_(r.returncode, 0, "the unpacked tarball builds")
    diag(r.stderr[-2000:])
    ok(os.path.exists(os.path.join(tmp, root, "build/sbin/mailctl")), "and makes mailctl")
    fresh_install(os.path.join(tmp, root))

shutil.rmtree(tmp, ignore_errors=True)
done()
