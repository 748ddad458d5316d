#!/usr/bin/env python3
"""t/62-aliases.t - alias expansion in local, on a real instance, mail sent
with smtplib.

Covers: postmaster -> root -> a user (the default aliases plus one line);
a list of three users, one copy each, Delivered-To: naming the list; a
nested list reaching one user twice (one copy); "\\user" next to the
user's own alias; user+tag of an alias; an alias loop and an over-deep
chain bounce to the sender instead of looping; a target this release
forwards to another domain through cleanup (sender kept); a
|command target gets the message as default_privs, with SENDER and
RECIPIENT, and its exit status decides (75 defers, 67 bounces); a /file
target gets mbox appends, From_ quoted, created 0600 by default_privs; :include: lists, their commands run as
the list file's owner, and an include loop bounces;
and "mailctl newaliases" after an edit takes effect without a restart.
"""
import email
import os
import smtplib
import sys
import pwd
import shutil
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from posthorn import Instance  # noqa: E402
from tap import diag, done, is_, like, ok  # noqa: E402

inst = Instance(main_conf={"minimal_backoff_time": "3600s"})
drop = tempfile.mkdtemp(prefix="posthorn-pipe-")
os.chmod(drop, 0o1777)
users = [inst.add_user() for _ in range(4)]
(u1, h1), (u2, h2), (u3, h3), (sender, hs) = users
chain = "".join("chain%d: chain%d\n" % (i, i + 1) for i in range(25)) + "chain25: %s\n" % u1
with open(os.path.join(inst.etc, "aliases"), "a") as f:
    f.write("root: %s\n" % u1 +
            "team: %s, %s,\n  %s\n" % (u1, u2, u3) +
            "outer: team, %s@mail.example.test\n" % u1 +
            "%s: \\%s, %s\n" % (u2, u2, u3) +
            "loopa: loopb\nloopb: loopa\n" + chain +
            "piped: %s, \"|id -u > %s/uid; echo \"$SENDER $RECIPIENT\" > %s/env; cat > %s/msg\"\n"
            % (u3, drop, drop, drop) +
            "tempfail: |exit 75\n" + "permfail: |exit 67\n" +
            "tofile: %s, %s/mbox\n" % (u3, drop) +
            "included: :include:%s/list\n" % drop +
            "selfinc: :include:%s/selfinc\n" % drop +
            "remote: someone@remote.example\n")
with open(os.path.join(drop, "list"), "w") as f:
    f.write("# a list kept by %s\n%s\n  %s, \"|id -u > %s/incuid\"\n" % (u1, u2, u3, drop))
os.chown(os.path.join(drop, "list"), pwd.getpwnam(u1).pw_uid, -1)
with open(os.path.join(drop, "selfinc"), "w") as f:
    f.write(":include:%s/selfinc\n" % drop)
r = inst.mailctl("newaliases")
is_(r.returncode, 0, "newaliases") or diag(r.stderr)
r = inst.start()
ok(r.returncode == 0, "instance starts") or diag(r.stderr)
port = inst.port(25)
SENDER = "%s@mail.example.test" % sender


def send(rcpt, subject, frm=SENDER):
    inst.send(frm, rcpt, subject)


copies, wait_copies = inst.copies, inst.wait_copies


def bounce_for(subject):
    for d in inst.maildir(hs).values():
        if b"delivery-status" in d and ("Subject: %s" % subject).encode() in d:
            return d
    return None


send("postmaster@mail.example.test", "to postmaster")
ok(wait_copies(h1, "to postmaster"), "postmaster -> root -> %s" % u1)

send("team@mail.example.test", "to team")
for name, home in ((u1, h1), (u2, h2), (u3, h3)):
    got = wait_copies(home, "to team")
    is_(len(got), 1, "team: %s has one copy" % name)
ok(all(b"\nDelivered-To: team@mail.example.test\n" in copies(h, "to team")[0]
       for h in (h1, h2, h3) if copies(h, "to team")), "Delivered-To: names the list")

send("outer@mail.example.test", "to outer")
wait_copies(h2, "to outer")
wait_copies(h3, "to outer")
time.sleep(1)
is_([len(copies(h, "to outer")) for h in (h1, h2, h3)], [1, 1, 1],
    "a nested list that reaches a user twice gives one copy each")

send("%s@mail.example.test" % u2, "to u2")
ok(wait_copies(h2, "to u2") and wait_copies(h3, "to u2"),
   "\\user keeps a copy for the user and the alias adds another")

send("team+news@mail.example.test", "to team+tag")
ok(wait_copies(h3, "to team+tag"), "team+tag expands team")

send("loopa@mail.example.test", "loop")
b = inst.wait_for(lambda: bounce_for("loop"), timeout=20)
ok(b is not None, "an alias loop bounces to the sender")
if b:
    st = [p for p in email.message_from_bytes(b).walk()
          if p.get_content_type() == "message/delivery-status"]
    like(st[0].as_string() if st else "", "Status: 5.", "with a permanent status")

send("chain0@mail.example.test", "deep chain")
b = inst.wait_for(lambda: bounce_for("deep chain"), timeout=20)
ok(b is not None, "a chain deeper than the limit bounces")
if b:
    like(b.decode("utf-8", "replace"), "alias expansion loop", "as an alias expansion loop")
is_(copies(h1, "deep chain"), [], "and is not delivered")

send("piped@mail.example.test", "piped")
ok(inst.wait_for(lambda: os.path.exists(os.path.join(drop, "msg")) and
                 b"\n\nbody\n" in open(os.path.join(drop, "msg"), "rb").read()),
   "a |command target gets the message on its standard input")
if os.path.exists(os.path.join(drop, "msg")):
    m = open(os.path.join(drop, "msg"), "rb").read()
    ok(m.startswith(("Return-Path: <%s>\nDelivered-To: piped@mail.example.test\n" % SENDER).encode()),
       "with Return-Path and Delivered-To, LF line ends")
    is_(open(os.path.join(drop, "uid")).read().strip(), str(pwd.getpwnam("nobody").pw_uid),
        "a command of the root-owned alias table runs as default_privs (nobody), not root")
    is_(open(os.path.join(drop, "env")).read().strip(),
        "%s piped@mail.example.test" % SENDER, "SENDER and RECIPIENT are in its environment")
ok(wait_copies(h3, "piped"), "the alias's account got its copy too")

send("tempfail@mail.example.test", "tempfail")
send("permfail@mail.example.test", "permfail")
b = inst.wait_for(lambda: bounce_for("permfail"), timeout=20)
ok(b is not None, "a command exiting 67 (EX_NOUSER) bounces")
if b:
    like(b.decode("utf-8", "replace"), "exited with status 67", "saying how the command exited")
time.sleep(1)
r = inst.mailctl("queue", "list")
like(r.stdout, "tempfail@mail.example.test", "a command exiting 75 (EX_TEMPFAIL) defers")
ok(bounce_for("tempfail") is None, "and does not bounce")

s = smtplib.SMTP("127.0.0.1", port, timeout=30)
for i in (1, 2):
    s.sendmail(SENDER, ["tofile@mail.example.test"],
               ("Subject: tofile %d\r\n\r\nFrom here on\r\n>From quoted\r\nend\r\n" % i).encode())
s.quit()
mbox = os.path.join(drop, "mbox")
ok(inst.wait_for(lambda: os.path.exists(mbox) and open(mbox, "rb").read().count(b"\nend\n") == 2),
   "a /file target gets both messages appended")
if os.path.exists(mbox):
    data = open(mbox, "rb").read()
    ok(data.startswith(("From %s " % SENDER).encode()), "in mbox format, From_ line first")
    is_(data.count(b"\nFrom %s " % SENDER.encode()), 1, "the second message starts with its own From_ line")
    ok(b"\n>From here on\n>>From quoted\n" in data, "From_ lines in the body are quoted (mboxrd)")
    st = os.stat(mbox)
    is_((st.st_uid, st.st_mode & 0o777), (pwd.getpwnam("nobody").pw_uid, 0o600),
        "created 0600 by default_privs")
ok(wait_copies(h3, "tofile 1"), "and the alias's account got its copy")

send("included@mail.example.test", "included")
ok(wait_copies(h2, "included") and wait_copies(h3, "included"),
   ":include: delivers to the users the file lists")
incuid = os.path.join(drop, "incuid")
ok(inst.wait_for(lambda: os.path.exists(incuid) and os.path.getsize(incuid) > 0),
   "and runs its command")
if os.path.exists(incuid):
    is_(open(incuid).read().strip(), str(pwd.getpwnam(u1).pw_uid),
        "as the owner of the included file")

send("selfinc@mail.example.test", "selfinc")
b = inst.wait_for(lambda: bounce_for("selfinc"), timeout=20)
ok(b is not None and b"includes itself" in b, "a file that includes itself bounces")

send("remote@mail.example.test", "remote")
ok(inst.wait_for(lambda: "forwarded to someone@remote.example as " in inst.log()),
   "an alias to another domain forwards: a new message through cleanup")
time.sleep(1)
r = inst.mailctl("queue", "list")
like(r.stdout, "someone@remote.example", "the forwarded copy waits in the queue for the smtp client")
ok("remote@mail.example.test" not in r.stdout, "the alias recipient itself is done")
like(r.stdout, SENDER, "the envelope sender is kept")

# An edit, newaliases, no restart.
with open(os.path.join(inst.etc, "aliases"), "a") as f:
    f.write("latecomer: %s\n" % u3)
r = inst.mailctl("newaliases")
is_(r.returncode, 0, "newaliases while running")
send("latecomer@mail.example.test", "late alias")
ok(wait_copies(h3, "late alias"), "the new alias works without a restart")

# ---- ~/.forward ----
(fa, ha), (fb, hb), (fc, hc) = inst.add_user(), inst.add_user(), inst.add_user()


def forward(user, home, text, mode=0o644):
    path = os.path.join(home, ".forward")
    with open(path, "w") as f:
        f.write(text)
    pw = pwd.getpwnam(user)
    os.chown(path, pw.pw_uid, pw.pw_gid)
    os.chmod(path, mode)


forward(fa, ha, "# keep one, pass one on\n\\%s\n%s, \"|id -u > %s/fwduid\"\n" % (fa, fb, drop))
send("%s@mail.example.test" % fa, "forwarded")
ok(wait_copies(ha, "forwarded"), ".forward with \\user keeps a copy in the user's Maildir")
ok(wait_copies(hb, "forwarded"), "and passes one to the other user")
fwduid = os.path.join(drop, "fwduid")
ok(inst.wait_for(lambda: os.path.exists(fwduid) and os.path.getsize(fwduid) > 0),
   "and runs its command")
if os.path.exists(fwduid):
    is_(open(fwduid).read().strip(), str(pwd.getpwnam(fa).pw_uid), "as the user")
forward(fc, hc, "%s\n" % fb, mode=0o666)
send("%s@mail.example.test" % fc, "unsafe forward")
ok(wait_copies(hc, "unsafe forward"), "a world-writable .forward is ignored: mail stays with the user")
is_(copies(hb, "unsafe forward"), [], "and is not forwarded")
like(inst.log(), "/.forward is writable by group or others: ignored", "with a warning")
forward(fb, hb, "%s\n" % fc)
forward(fc, hc, "%s\n" % fb)
send("%s@mail.example.test" % fb, "forward loop")
b = inst.wait_for(lambda: bounce_for("forward loop"), timeout=30)
ok(b is not None and b"mail forwarding loop" in b, ".forward files that name each other bounce")

inst.cleanup()
shutil.rmtree(drop, ignore_errors=True)
done()
