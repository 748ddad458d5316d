#!/usr/bin/env python3
"""mailctl init and check: a new instance is complete and checks cleanly;
configuration errors come out as FILE:LINE: message and stop check and
start; bad usage gets exit status 2."""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, diag, done  # noqa: E402
import posthorn  # noqa: E402

MAILCTL = posthorn.MAILCTL
top = tempfile.mkdtemp(prefix="posthorn-t-init-")


def mailctl(*args, env=None):
    return subprocess.run([MAILCTL] + list(args), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60, env=env)


d = os.path.join(top, "inst")
r = mailctl("init", d, "--hostname", "mx.example.test", "--domain", "example.test",
            "--port-base", "20000")
is_(r.returncode, 0, "mailctl init succeeds")
like(r.stdout, "new instance in", "and says where")
for f in ("etc/main.conf", "etc/master.conf", "etc/aliases", "etc/aliases.db",
          "etc/tls/cert.pem", "etc/tls/key.pem"):
    ok(os.path.isfile(os.path.join(d, f)), "init wrote %s" % f)
for sub in ("spool", "log"):
    ok(os.path.isdir(os.path.join(d, sub)), "init made %s/" % sub)
is_(os.stat(os.path.join(d, "etc/tls/key.pem")).st_mode & 0o777, 0o600, "the TLS key is private")
main = open(os.path.join(d, "etc/main.conf")).read()
like(main, "myhostname = mx.example.test", "main.conf has the host name")
like(main, "queue_directory = %s/spool" % os.path.realpath(d), "main.conf has the instance's spool")
master = open(os.path.join(d, "etc/master.conf")).read()
for port in (25, 587, 465, 110, 995, 143, 993):
    like(master, "127.0.0.1:%d" % (20000 + port), "master.conf has port %d + 20000" % port)
cert = subprocess.run(["openssl", "x509", "-in", os.path.join(d, "etc/tls/cert.pem"), "-noout",
                       "-subject", "-ext", "subjectAltName"], capture_output=True, text=True)
like(cert.stdout, "mx.example.test", "the certificate names the host")

etc = os.path.join(d, "etc")
r = mailctl("-c", etc, "check")
is_(r.returncode, 0, "the new instance checks cleanly")
r = mailctl("check", env=dict(os.environ, POSTHORN_CONFIG=etc))
is_(r.returncode, 0, "POSTHORN_CONFIG selects the configuration")

r = mailctl("-c", etc, "check", "-n")
is_(r.returncode, 0, "check -n succeeds")
like(r.stdout, "myhostname = mx.example.test\n", "check -n lists what main.conf sets")
ok("max_use" not in r.stdout, "check -n leaves out defaults")
r = mailctl("-c", etc, "check", "-d")
like(r.stdout, "max_use = 1000\n", "check -d lists defaults")
like(r.stdout, "queue_directory = /var/spool/posthorn\n", "check -d shows the default, not the setting")

# init never overwrites an instance.
r = mailctl("init", d)
is_(r.returncode, 1, "init on an existing instance fails")
like(r.stderr, "already exists", "and says why")

# Bad usage.
r = mailctl("init", os.path.join(top, "x"), "--port-base", "banana")
is_(r.returncode, 2, "a bad --port-base is a usage error")
like(r.stderr, "--port-base", "and names the option")
r = mailctl("frobnicate")
is_(r.returncode, 2, "an unknown command is a usage error")
like(r.stderr, "unknown command 'frobnicate'", "and names it")

# Configuration errors carry FILE:LINE.
mc = os.path.join(etc, "main.conf")
good = open(mc).read()
lines = good.count("\n")
with open(mc, "a") as f:
    f.write("max_use = lots\nbogus_parameter = 1\nmessage_size_limit = 10x\n")
r = mailctl("-c", etc, "check")
is_(r.returncode, 1, "check fails on a bad main.conf")
like(r.stderr, "%s:%d: " % (mc, lines + 1), "the bad value is reported at its line")
like(r.stderr, "max_use", "naming the parameter")
like(r.stderr, "%s:%d: unknown parameter 'bogus_parameter'" % (mc, lines + 2), "an unknown name too")
like(r.stderr, "%s:%d: " % (mc, lines + 3), "and every other error")
r = mailctl("-c", etc, "start")
is_(r.returncode, 1, "start refuses a bad main.conf")
like(r.stderr, "%s:%d:" % (mc, lines + 2), "with the same FILE:LINE messages")
open(mc, "w").write(good)
with open(mc, "a") as f:
    f.write("mynetworks = 127.0.0.1/8, 10.0.0.0/8\nsmtpd_tls_security_level = maybe\n")
r = mailctl("-c", etc, "check")
is_(r.returncode, 1, "check fails on a bad mynetworks and TLS level")
like(r.stderr, "mynetworks: host bits set in '127.0.0.1/8' (the network is 127.0.0.0/8)",
     "the bad network is named, with the fix")
like(r.stderr, "smtpd_tls_security_level: unknown level 'maybe'", "so is the bad level")
open(mc, "w").write(good)

mfile = os.path.join(etc, "master.conf")
mgood = open(mfile).read()
n = mgood.count("\n")
with open(mfile, "a") as f:
    f.write("smtp inet n - - nosuchprogram\n")
r = mailctl("-c", etc, "check")
is_(r.returncode, 1, "check fails on a master.conf naming a missing program")
like(r.stderr, "%s:%d: service smtp: cannot run" % (mfile, n + 1), "the program is named with its line")
with open(mfile, "a") as f:
    f.write("foo bar n - - smtpd\n")
r = mailctl("-c", etc, "check")
is_(r.returncode, 1, "check fails on a bad master.conf")
like(r.stderr, "%s:%d: unknown service type 'bar'" % (mfile, n + 2), "a bad type is named with its line")
open(mfile, "w").write(mgood)

# newaliases and map build the Berkeley DB tables.
r = mailctl("-c", etc, "newaliases")
is_(r.returncode, 0, "newaliases builds alias_maps")
like(r.stdout, "aliases: 5 aliases", "and counts the aliases")
ok(os.path.exists(os.path.join(etc, "aliases.db")), "aliases.db is there")
agood = open(os.path.join(etc, "aliases")).read()
with open(os.path.join(etc, "aliases"), "a") as f:
    f.write("nocolon here\n")
r = mailctl("-c", etc, "newaliases")
is_(r.returncode, 1, "newaliases fails on a bad line")
like(r.stderr, "%s:%d: missing ':'" % (os.path.join(etc, "aliases"), agood.count("\n") + 1),
     "with FILE:LINE")
open(os.path.join(etc, "aliases"), "w").write(agood)
virt = os.path.join(etc, "virtual")
with open(virt, "w") as f:
    f.write("# virtual\ninfo@example.org  someone\nsales@example.org someone-else\n")
r = mailctl("-c", etc, "map", virt)
is_(r.returncode, 0, "map builds a table")
like(r.stdout, "virtual: 2 entries", "and counts its entries")
ok(os.path.exists(virt + ".db"), "virtual.db is there")
r = mailctl("-c", etc, "map", "btree:" + virt)
is_(r.returncode, 0, "map btree: works too")
r = mailctl("-c", etc, "map", "frob:" + virt)
is_(r.returncode, 2, "an unknown table type is a usage error")

# The shipped default configuration checks too (with the build's programs).
ship = os.path.join(top, "ship")
os.mkdir(ship)
for f in ("main.conf", "master.conf", "aliases"):
    shutil.copy(os.path.join(posthorn.TOP, "etc", f), ship)
with open(os.path.join(ship, "main.conf"), "a") as f:
    f.write("daemon_directory = %s\n" % os.path.join(posthorn.BUILD, "libexec", "posthorn"))
    f.write("command_directory = %s\n" % os.path.join(posthorn.BUILD, "sbin"))
r = mailctl("-c", ship, "check")
is_(r.returncode, 0, "the default etc/ configuration checks cleanly")
diag(r.stderr)

shutil.rmtree(top, ignore_errors=True)
done()
