#!/usr/bin/env python3
"""make install honours PREFIX, DESTDIR and sysconfdir and never overwrites
an existing configuration; make dist makes a tarball that unpacks and
builds on its own."""
import os
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
          "etc/phconf/posthorn/aliases", "opt/ph/share/man/man8/mailctl.8",
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

shutil.rmtree(tmp, ignore_errors=True)
done()
