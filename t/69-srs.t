#!/usr/bin/env python3
"""t/69-srs.t - SRS (lib/srs.h) on a real instance whose outgoing mail goes
to a scripted SMTP server (t/lib/fakesmtp.py) on 127.0.0.2 as its
relayhost; mail comes in through smtpd with smtplib.

Covers: mailctl start makes srs_secret_file (root, 0600, 64 hex digits)
and refuses to start with one open to the group; an alias to an outside
address forwards with MAIL FROM:<SRS0=HHHH=TT=sender.test=alice@our
domain> and says so in the log; a bounce (null sender) to that address
through smtpd is accepted and routed to alice@sender.test, the SRS
address kept as orig_to; the same address lower-cased is accepted; one
with a broken hash, or an SRS1 that does not check out, is refused at
RCPT with 550 5.1.1; an SRS address of another domain is left alone; a
bounce our own qmgr makes for a forwarded copy the remote refused goes
back to the original sender too; a ~/.forward to a
remote address rewrites; a sender of our own domain, and an alias to a
local user, are not rewritten; an SRS0 sender of another forwarder becomes
SRS1 and its bounce goes to that forwarder; after a new first secret
line and a reload (rotation) the old address is still accepted and new
ones are signed with the new secret;
srs_enable = no leaves the sender as it was.
"""
import os
import re
import shutil
import smtplib
import stat
import sys
import tempfile
import atexit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import diag, done, is_, like, ok, skip_all  # noqa: E402

if os.geteuid() != 0:
    skip_all("master must run as root")
import posthorn  # noqa: E402
from fakesmtp import FakeSMTP, stop_all  # noqa: E402
from smtptest import free_port_on, problems  # noqa: E402

atexit.register(stop_all)
work = tempfile.mkdtemp(prefix="posthorn-srs-")
atexit.register(shutil.rmtree, work, True)
PORT = free_port_on(["127.0.0.2"])
remote = FakeSMTP(work, "127.0.0.2", PORT, {
    "rcpt": {"refused@remote.test": "550 5.1.1 <refused@remote.test>: no such user here"}})

inst = posthorn.Instance(main_conf={"relayhost": "[127.0.0.2]:%d" % PORT,
                                    "minimal_backoff_time": "3600s"})
local_user, local_home = inst.add_user()
fwd_user, fwd_home = inst.add_user()
with open(os.path.join(inst.etc, "aliases"), "a") as f:
    f.write("fwd: someone@remote.test\n"
            "fwdbad: refused@remote.test\n"
            "fwdlocal: %s\n" % local_user)
with open(os.path.join(fwd_home, ".forward"), "w") as f:
    f.write("dotforward@remote.test\n")
os.chown(os.path.join(fwd_home, ".forward"), *(lambda p: (p.pw_uid, p.pw_gid))(
    __import__("pwd").getpwnam(fwd_user)))
r = inst.mailctl("newaliases")
is_(r.returncode, 0, "newaliases") or diag(r.stderr)
SECRET = os.path.join(inst.etc, "srs.secret")
ok(not os.path.exists(SECRET), "no secret file before the start")
r = inst.start()
ok(r.returncode == 0, "instance starts") or diag(r.stderr)
port = inst.port(25)

st = os.stat(SECRET) if os.path.exists(SECRET) else None
ok(st is not None and stat.S_ISREG(st.st_mode) and st.st_uid == 0 and st.st_gid == 0
   and stat.S_IMODE(st.st_mode) == 0o600, "mailctl start made srs.secret: root's, mode 0600")
first_secret = open(SECRET).read() if st else ""
ok(re.fullmatch(r"[0-9a-f]{64}\n", first_secret), "32 random bytes as 64 hex digits")
like(inst.log(), "created the SRS secret file %s" % SECRET, "and said so")

SRS0 = re.compile(r"SRS0=[A-Za-z0-9+/]{4}=[A-Z2-7]{2}=sender\.test=alice@mail\.example\.test")


def message_to(rcpt, subject, sender=None):
    def find():
        for m in remote.messages():
            if rcpt in m["rcpts"] and (subject is None or
                                       ("Subject: %s" % subject).encode() in m["data"]) \
                    and (sender is None or m["from"] == sender):
                return m
        return None
    return remote.wait(find, timeout=30)


def rcpt(address, sender=""):
    s = smtplib.SMTP("127.0.0.1", port, timeout=30)
    s.ehlo("client.test")
    s.mail(sender)
    code, text = s.rcpt(address)
    s.quit()
    return code, text.decode()


# ---------------------------------------------------------------- the alias
inst.send("alice@sender.test", "fwd@example.test", "srs alias")
m = message_to("someone@remote.test", "srs alias")
ok(m is not None, "the alias's copy reaches the remote server")
srs_addr = m["from"] if m else ""
ok(SRS0.fullmatch(srs_addr), "with MAIL FROM:<SRS0=HHHH=TT=sender.test=alice@mail.example.test>: %s"
   % srs_addr)
ok(re.search(r"forwarded to someone@remote\.test as \S+, sender rewritten to %s"
             % re.escape(srs_addr), inst.log()), "local logs the rewrite")

# ---------------------------------------------------------------- the bounce
s = smtplib.SMTP("127.0.0.1", port, timeout=30)
s.sendmail("", [srs_addr], b"From: MAILER-DAEMON@remote.test\r\nSubject: bounce of srs alias"
           b"\r\n\r\nyour message could not be delivered\r\n")
s.quit()
ok(True, "smtpd accepted a bounce to the SRS address")
b = message_to("alice@sender.test", "bounce of srs alias")
ok(b is not None, "the bounce is routed back to the original sender alice@sender.test")
is_(b and b["from"], "", "with the null sender")
like(inst.log(), "SRS: <%s> routed back to <alice@sender.test>" % srs_addr, "cleanup logs it")
ok(re.search(r"to=<alice@sender\.test>, orig_to=<%s>" % re.escape(srs_addr), inst.log()),
   "the SRS address is the original recipient (orig_to=)")

# A long original sender (a list's VERP address): the SRS local part is
# far past RFC 5321's 64 octets, and its bounce must still come back.
long_sender = "bounces+list-1234567890-alice=sender.test@mailer.bulk-sender.example.test"
inst.send(long_sender, "fwd@example.test", "srs long")
m = message_to("someone@remote.test", "srs long")
long_srs = m["from"] if m else ""
ok(len(long_srs.split("@")[0]) > 64, "a long sender's SRS local part is %d octets"
   % len(long_srs.split("@")[0]))
s = smtplib.SMTP("127.0.0.1", port, timeout=30)
s.sendmail("", [long_srs], b"From: MAILER-DAEMON@remote.test\r\nSubject: bounce of srs long"
           b"\r\n\r\nyour message could not be delivered\r\n")
s.quit()
ok(message_to(long_sender, "bounce of srs long") is not None,
   "its bounce is accepted and routed back to the long sender")

code, text = rcpt(srs_addr.split("@")[0].lower() + "@mail.example.test")
is_(code, 250, "the SRS address lower-cased is accepted too") or diag(text)
broken = srs_addr[:5] + ("A" if srs_addr[5] != "A" else "B") + srs_addr[6:]
code, text = rcpt(broken)
is_(code, 550, "an SRS address with a broken hash is refused at RCPT") or diag(text)
like(text, "5.1.1", "as an unknown user (5.1.1)")
code, text = rcpt("SRS1=abcd=first.test==xyzw=AB=orig.test=bob@mail.example.test")
is_(code, 550, "so is an SRS1 address that does not check out") or diag(text)
elsewhere = "SRS0=abcd=AB=orig.test=bob@elsewhere.test"
inst.send("", elsewhere, "srs elsewhere")       # 127.0.0.1 is in mynetworks: relayed
ok(message_to(elsewhere, "srs elsewhere"),
   "an SRS address of another domain is not ours to reverse: relayed as it is")

# ------------------------------------- a bounce of our own for a forwarded copy
inst.send("alice@sender.test", "fwdbad@example.test", "srs refused")
b = remote.wait(lambda: [m for m in remote.messages() if "alice@sender.test" in m["rcpts"]
                         and b"srs refused" in m["data"] and b"delivery-status" in m["data"]],
                timeout=40)
ok(b, "the remote refuses the forwarded copy: qmgr's bounce goes to the SRS sender, and "
      "from there to alice@sender.test")

# ---------------------------------------------------------------- .forward
inst.send("bob@sender.test", "%s@example.test" % fwd_user, "srs dotforward")
m = message_to("dotforward@remote.test", "srs dotforward")
ok(m and re.fullmatch(r"SRS0=[A-Za-z0-9+/]{4}=[A-Z2-7]{2}=sender\.test=bob@mail\.example\.test",
                      m["from"]), "a ~/.forward to a remote address rewrites the sender too: %s"
   % (m and m["from"]))

# ---------------------------------------------------------------- no rewrite
inst.send("%s@example.test" % local_user, "fwd@example.test", "srs ours")
m = message_to("someone@remote.test", "srs ours")
is_(m and m["from"], "%s@example.test" % local_user, "a sender of our own domain is kept")
inst.send("carol@sender.test", "fwdlocal@example.test", "srs local")
got = inst.wait_copies(local_home, "srs local")
ok(got and b"Return-Path: <carol@sender.test>" in got[0],
   "an alias to a local user delivers with the sender as it was")

# --------------------------------------------- an SRS0 sender of another forwarder
other = "SRS0=wxyz=AB=orig.test=dave@first.test"
inst.send(other, "fwd@example.test", "srs chain")
m = message_to("someone@remote.test", "srs chain")
srs1 = m["from"] if m else ""
ok(re.fullmatch(r"SRS1=[A-Za-z0-9+/]{4}=first\.test==wxyz=AB=orig\.test=dave@mail\.example\.test",
                srs1), "an SRS0 sender of first.test becomes SRS1: %s" % srs1)
s = smtplib.SMTP("127.0.0.1", port, timeout=30)
s.sendmail("", [srs1], b"Subject: bounce of srs chain\r\n\r\nno\r\n")
s.quit()
m = message_to(other, "bounce of srs chain")
ok(m is not None, "its bounce goes back to the first forwarder's SRS0 address")

# ---------------------------------------------------------------- rotation
inst.stop()
os.chmod(SECRET, 0o640)
r = inst.start()
ok(r.returncode != 0, "mailctl start refuses a secret file open to the group")
like(r.stderr + inst.log(), "open to group or others", "and says why")
os.chmod(SECRET, 0o600)
r = inst.start()
ok(r.returncode == 0, "starts again once it is 0600") or diag(r.stderr)
with open(SECRET, "w") as f:
    f.write("# rotated by the test\nthe-new-secret-of-this-test-0123\n" + first_secret)
r = inst.mailctl("reload")
ok(r.returncode == 0, "reloads with a new first secret line") or diag(r.stderr)
code, text = rcpt(srs_addr)
is_(code, 250, "an address made with the old secret is still accepted") or diag(text)
inst.send("alice@sender.test", "fwd@example.test", "srs rotated")
m = message_to("someone@remote.test", "srs rotated")
ok(m and SRS0.fullmatch(m["from"]) and m["from"] != srs_addr,
   "a new forward is signed with the new secret: %s" % (m and m["from"]))

# ---------------------------------------------------------------- srs_enable = no
inst.stop()
inst.set_main({"srs_enable": "no"})
r = inst.start()
ok(r.returncode == 0, "restarts with srs_enable = no") or diag(r.stderr)
inst.send("alice@sender.test", "fwd@example.test", "srs off")
m = message_to("someone@remote.test", "srs off")
is_(m and m["from"], "alice@sender.test", "srs_enable = no leaves the sender as it was")

is_(problems(inst), [], "nothing panicked, died or failed")
inst.stop()
done()
