#!/usr/bin/env python3
"""mailctl user add|passwd|del|list: the mail password store.

A throwaway instance (mailctl init) and throwaway accounts: add with
--password-stdin and on a terminal (a pty: asked twice, echo off, a
mismatch refused), list, passwd, del; the refusals (unknown account, root,
a system account, an upper-case name, a duplicate add, passwd and del of a
user without a password, an empty or unusable password, an auth_user that
does not exist, not root: run as nobody); the file's owner, group and mode;
and that the stored record verifies the password and not another: the
yescrypt hash through libcrypt's crypt() (ctypes), the SCRAM-SHA-256
StoredKey and ServerKey recomputed with hashlib/hmac from the stored salt
and iterations.  The table is read with db_dump (db-util)."""
import base64
import ctypes
import hashlib
import hmac
import os
import pty
import pwd
import select
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, diag, done  # noqa: E402
import posthorn  # noqa: E402

MAILCTL = posthorn.MAILCTL
inst = posthorn.Instance()
alice, _ = inst.add_user()
bob, _ = inst.add_user()
# auth_user: a throwaway account too, so the file's group is known and
# exists wherever the test runs.
authacct, _ = inst.add_user()
inst.set_main({"auth_user": authacct})
auth_gid = pwd.getpwnam(authacct).pw_gid
dbfile = os.path.join(inst.etc, "passwords.db")

libcrypt = ctypes.CDLL("libcrypt.so.1")
libcrypt.crypt.restype = ctypes.c_char_p
libcrypt.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]


def mailctl(*args, stdin=None, preexec_fn=None):
    return subprocess.run([MAILCTL, "-c", inst.etc] + list(args), input=stdin,
                          stdin=None if stdin is not None else subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60, preexec_fn=preexec_fn)


def records():
    """{user: record} read with db_dump -p."""
    r = subprocess.run(["db_dump", "-p", dbfile], capture_output=True, text=True)
    if r.returncode != 0:
        diag("db_dump: " + r.stderr)
        return {}
    lines = r.stdout.split("\n")
    data = lines[lines.index("HEADER=END") + 1:lines.index("DATA=END")]
    out = {}
    for k, v in zip(data[0::2], data[1::2]):
        out[k[1:].replace("\\00", "")] = v[1:].replace("\\00", "")
    return out


def verify_plain(record, password):
    h = record.split(" ")[1]
    got = libcrypt.crypt(password.encode(), h.encode())
    return got is not None and got.decode() == h


def scram_ok(record, password):
    it, salt, stored, server = record.split(" ")[2].split(",")
    sp = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(it))
    ck = hmac.new(sp, b"Client Key", hashlib.sha256).digest()
    sk = hmac.new(sp, b"Server Key", hashlib.sha256).digest()
    return (hashlib.sha256(ck).digest() == base64.b64decode(stored)
            and sk == base64.b64decode(server))


def on_tty(args, answers, timeout=30):
    """Run mailctl on a new pty; answer each prompt; (exit status, all output)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(MAILCTL, [MAILCTL, "-c", inst.etc] + list(args))
    out = b""
    end = time.time() + timeout
    pending = list(answers)
    answered = 0            # out[:answered] has had its prompts answered
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.5)
        if not r:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if pending and out.endswith(b": ") and b"password" in out[answered:]:
            answered = len(out)
            os.write(fd, pending.pop(0).encode() + b"\n")
    else:
        diag("mailctl on the terminal did not finish: killed")
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


# ---- add, list ----
r = mailctl("user", "list")
is_(r.returncode, 0, "list before any password: ok") or diag(r.stderr)
is_(r.stdout, "", "and empty")
r = mailctl("user", "add", alice, "--password-stdin", stdin="Alice pw 1\n")
is_(r.returncode, 0, "add alice with --password-stdin") or diag(r.stderr)
is_(r.stdout + r.stderr, "", "silently")
st = os.stat(dbfile)
is_(st.st_uid, 0, "the file is root's")
is_(st.st_gid, auth_gid, "its group is auth_user's")
is_(st.st_mode & 0o7777, 0o640, "its mode 0640")
rec = records().get(alice, "")
like(rec, "1 $y$", "alice's record: version 1, a yescrypt hash")
ok(verify_plain(rec, "Alice pw 1"), "the hash verifies her password (trailing newline stripped)")
ok(not verify_plain(rec, "Alice pw 1\n"), "not with the newline")
ok(not verify_plain(rec, "alice pw 1"), "nor another password")
ok(scram_ok(rec, "Alice pw 1"), "StoredKey and ServerKey are those of her password")
ok(not scram_ok(rec, "Alice pw 2"), "not of another")
is_(rec.split(" ")[2].split(",")[0], "4096", "with auth_scram_iterations' default, 4096")
ok("Alice pw 1" not in open(dbfile, "rb").read().decode("latin-1"), "the password is not stored")

inst.set_main({"auth_scram_iterations": "5000"})
r = mailctl("user", "add", bob, "--password-stdin", stdin="b\u00f6b-secret")
is_(r.returncode, 0, "add bob (UTF-8, no newline at all)") or diag(r.stderr)
rec_b = records().get(bob, "")
is_(rec_b.split(" ")[2].split(",")[0], "5000", "auth_scram_iterations = 5000 is used")
ok(verify_plain(rec_b, "b\u00f6b-secret") and scram_ok(rec_b, "b\u00f6b-secret"),
   "bob's record verifies his password")
r = mailctl("user", "list")
is_(r.stdout, "\n".join(sorted([alice, bob])) + "\n", "list: both names, sorted")

# ---- passwd ----
r = mailctl("user", "passwd", alice, "--password-stdin", stdin="Alice pw 2\n")
is_(r.returncode, 0, "passwd alice") or diag(r.stderr)
rec2 = records().get(alice, "")
ok(verify_plain(rec2, "Alice pw 2") and scram_ok(rec2, "Alice pw 2"), "the new password verifies")
ok(not verify_plain(rec2, "Alice pw 1") and not scram_ok(rec2, "Alice pw 1"),
   "the old one no longer does")
is_(records().get(bob), rec_b, "bob's record is untouched")
st = os.stat(dbfile)
ok(st.st_uid == 0 and st.st_gid == auth_gid and st.st_mode & 0o7777 == 0o640,
   "the rewritten file is still root:auth_user 0640")
leftovers = [f for f in os.listdir(inst.etc) if f.startswith("passwords.db.")
             and f != "passwords.db.lock"]
is_(leftovers, [], "no temporary file left behind")

# ---- on a terminal ----
code, out = on_tty(["user", "passwd", bob], ["tty pw 3", "tty pw 3"])
is_(code, 0, "passwd on a terminal: asked twice") or diag(out)
like(out, "New mail password for %s:" % bob, "it prompts")
ok("tty pw 3" not in out, "with echo off: the password never shows")
ok(verify_plain(records().get(bob, ""), "tty pw 3"), "and stores it")
code, out = on_tty(["user", "passwd", bob], ["tty pw 4", "tty pw 5"])
is_(code, 1, "two different answers: refused")
like(out, "do not match", "saying so")
ok(verify_plain(records().get(bob, ""), "tty pw 3"), "the password is unchanged")
r = mailctl("user", "passwd", bob)
is_(r.returncode, 1, "without a terminal and without --password-stdin: refused")
like(r.stderr, "--password-stdin", "pointing at --password-stdin")

# ---- refusals ----
system = next((p for p in pwd.getpwall() if 0 < p.pw_uid < 1000), None)
cases = [
    (["user", "add", "nosuchuser%d" % os.getpid(), "--password-stdin"], "pw\n",
     "is not an account of this host", "an unknown account"),
    (["user", "add", "root", "--password-stdin"], "pw\n", "root gets no mail password", "root"),
    (["user", "add", alice.upper(), "--password-stdin"], "pw\n", "upper-case",
     "an upper-case name"),
    (["user", "add", alice, "--password-stdin"], "pw\n", "already has a mail password",
     "a duplicate add"),
    (["user", "passwd", authacct, "--password-stdin"], "pw\n", "has no mail password",
     "passwd of a user without one"),
    (["user", "del", authacct], None, "has no mail password", "del of a user without one"),
    (["user", "add", authacct, "--password-stdin"], "\n", "empty password", "an empty password"),
    (["user", "add", authacct, "--password-stdin"], "", "cannot read the password",
     "no password at all"),
    (["user", "add", authacct, "--password-stdin"], "a\tb\n", "SASLprep",
     "a password with a control character"),
    (["user", "add", authacct, "--password-stdin"], "x" * 512 + "\n", "longer than 511",
     "a password of 512 bytes"),
]
if system:
    cases.append((["user", "add", system.pw_name, "--password-stdin"], "pw\n",
                  "is a system account", "a system account (%s)" % system.pw_name))
for args, stdin, msg, what in cases:
    before = open(dbfile, "rb").read()
    r = mailctl(*args, stdin=stdin)
    is_(r.returncode, 1, "refused: %s" % what)
    like(r.stderr, "mailctl: ", "as mailctl: message")
    like(r.stderr, msg, "saying why (%s)" % r.stderr.strip())
    ok(open(dbfile, "rb").read() == before, "the file is unchanged")
    ok("pw" not in r.stdout + r.stderr.replace("passwd", ""), "the password is not echoed")

inst.set_main({"auth_user": "nosuchauth%d" % os.getpid()})
r = mailctl("user", "add", authacct, "--password-stdin", stdin="pw\n")
is_(r.returncode, 1, "an auth_user that does not exist: refused")
like(r.stderr, "does not exist", "saying so")
inst.set_main({"auth_user": authacct})

# ---- not root ----
nobody = pwd.getpwnam("nobody")


def as_nobody():
    os.setgid(nobody.pw_gid)
    os.setgroups([])
    os.setuid(nobody.pw_uid)


for args in (["user", "list"], ["user", "add", authacct, "--password-stdin"],
             ["user", "del", alice]):
    r = mailctl(*args, stdin="pw\n", preexec_fn=as_nobody)
    is_(r.returncode, 1, "as nobody: mailctl %s refused" % " ".join(args[:2]))
    like(r.stderr, "needs root", "saying it needs root")
r = mailctl("user", "list")
is_(r.stdout, "\n".join(sorted([alice, bob])) + "\n", "nothing changed")

# ---- a file others could change is refused ----
os.chmod(dbfile, 0o660)
r = mailctl("user", "list")
is_(r.returncode, 1, "a group-writable file: refused")
like(r.stderr, "writable by group", "saying why")
os.chmod(dbfile, 0o640)
os.rename(dbfile, dbfile + ".real")
os.symlink(dbfile + ".real", dbfile)
r = mailctl("user", "del", bob)
is_(r.returncode, 1, "a symbolic link: refused")
like(r.stderr, "symbolic link", "saying why")
os.unlink(dbfile)
os.rename(dbfile + ".real", dbfile)

# ---- del ----
r = mailctl("user", "del", bob)
is_(r.returncode, 0, "del bob") or diag(r.stderr)
is_(r.stdout + r.stderr, "", "silently")
is_(sorted(records()), [alice], "only alice is left")
r = mailctl("user", "del", bob)
is_(r.returncode, 1, "del bob again: refused")

# ---- usage ----
for args in (["user"], ["user", "bogus"], ["user", "add"], ["user", "list", "x"],
             ["user", "del", alice, "--password-stdin"], ["user", "add", alice, "extra"]):
    r = mailctl(*args)
    is_(r.returncode, 2, "usage error: mailctl %s" % " ".join(args))

r = mailctl("check")
is_(r.returncode, 0, "the instance still checks cleanly") or diag(r.stderr)
done()
