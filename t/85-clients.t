#!/usr/bin/env python3
"""The whole inbound path with real clients: swaks and smtplib deliver into
a user's Maildir; the content survives byte for byte (dot-stuffing, 8-bit,
UTF-8 with SMTPUTF8, long lines, CRLF -> LF); a bounce for a permanent local
failure reaches the sender with a valid RFC 3464 report; mutt opens the
Maildir and lists what arrived; each process has the uid and root
directory of DESIGN.md §1.
"""
import email
import email.policy
import os
import pty
import pwd
import select
import shutil
import signal
import smtplib
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from posthorn import BUILD, Instance, proc_root, proc_status  # noqa: E402
from tap import skip_all, diag, done, is_, like, ok  # noqa: E402

inst = Instance()
r = inst.start()
ok(r.returncode == 0, "instance starts") or diag(r.stderr)
user, home = inst.add_user()
other, other_home = inst.add_user()
rcpt = "%s@mail.example.test" % user
port = inst.port(25)


def body_of(data):
    return data.split(b"\n\n", 1)[1]


def wait_subject(h, subject, timeout=20):
    def find():
        for data in inst.maildir(h).values():
            if ("\nSubject: %s\n" % subject).encode() in data:
                return data
        return None
    return inst.wait_for(find, timeout=timeout)


# ---- swaks ----
r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % port, "--to", rcpt,
                    "--from", "swaks@example.org", "--header", "Subject: via swaks",
                    "--body", "hello from swaks"], capture_output=True, text=True, timeout=60)
is_(r.returncode, 0, "swaks sends") or diag(r.stdout + r.stderr)
like(r.stdout, "250 2.0.0 Ok: queued as ", "swaks sees the queue ID")
got = wait_subject(home, "via swaks")
ok(got is not None, "the swaks message is in the Maildir")
if got:
    ok(got.startswith(b"Return-Path: <swaks@example.org>\nDelivered-To: " + rcpt.encode() +
                      b"\nReceived: from "), "Return-Path, Delivered-To, Received: on top")
    like(got.decode(), "hello from swaks", "and the body")

# ---- a byte-exact round trip ----
lines = [
    b"From: Sender <sender@example.org>",
    b"To: " + rcpt.encode(),
    b"Subject: round trip",
    b"Content-Type: text/plain; charset=utf-8",
    b"Content-Transfer-Encoding: 8bit",
    b"",
    b".leading dot",
    b"..two dots",
    b".",
    b" . space dot",
    "8-bit: gr\u00fc\u00dfe, \u65e5\u672c\u8a9e, \U0001F4EE".encode(),
    b"latin-1 bytes: \xe9\xe8\xff",
    b"x" * 5000,
    b"trailing spaces   ",
    b"\ttab",
    b"",
    b"",
    b"end",
]
content = b"\r\n".join(lines) + b"\r\n"
s = smtplib.SMTP("127.0.0.1", port, timeout=30)
s.ehlo("client.example.org")
s.sendmail("sender@example.org", [rcpt], content, mail_options=["BODY=8BITMIME"])
s.quit()
got = wait_subject(home, "round trip")
ok(got is not None, "the round-trip message arrived")
if got:
    is_(body_of(got.split(b"\nFrom: ", 1)[1]), body_of(content.replace(b"\r\n", b"\n")),
        "the body is byte for byte what was sent (LF line ends in the Maildir)")
    ok(content.replace(b"\r\n", b"\n").split(b"\n\n")[0] in got, "and so is the header")

# SMTPUTF8: a UTF-8 sender and header.
s = smtplib.SMTP("127.0.0.1", port, timeout=30)
s.ehlo("client.example.org")
ok(s.has_extn("smtputf8"), "SMTPUTF8 is offered")
utf8 = ("From: J\u00f6rg <j\u00f6rg@b\u00fccher.example>\r\nSubject: utf8 \u2709\r\n\r\n"
        "Gr\u00fc\u00dfe\r\n").encode()
s.sendmail("j\u00f6rg@b\u00fccher.example", [rcpt], utf8, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
s.quit()
got = wait_subject(home, "utf8 \u2709")
ok(got is not None, "a UTF-8 message arrived")
if got:
    ok(got.startswith("Return-Path: <j\u00f6rg@b\u00fccher.example>\n".encode()),
       "with its UTF-8 envelope sender")
    ok(utf8.replace(b"\r\n", b"\n") in got, "and its content intact")

# ---- a bounce for a permanent local failure ----
# The recipient's own Delivered-To makes local refuse the message as a loop
# (5.4.6): a permanent failure after the 250, so qmgr must bounce it to the
# sender (the other local user), with a delivery-status part.
sender = "%s@mail.example.test" % other
looped = ("Delivered-To: %s\r\nSubject: loops\r\nMessage-ID: <loop@test>\r\n\r\nbody\r\n" % rcpt)
s = smtplib.SMTP("127.0.0.1", port, timeout=30)
s.sendmail(sender, [rcpt], looped.encode(), rcpt_options=["NOTIFY=FAILURE,DELAY"],
           mail_options=["RET=HDRS", "ENVID=env-42"])
s.quit()
dsn = inst.wait_for(lambda: next(iter(inst.maildir(other_home).values()), None), timeout=30)
ok(dsn is not None, "a bounce reached the sender's Maildir")
if dsn:
    like(dsn.decode(errors="replace"), "Return-Path: <>", "from the null sender")
    msg = email.message_from_bytes(dsn, policy=email.policy.default)
    is_(msg.get_content_type(), "multipart/report", "a multipart/report")
    is_(msg.get_param("report-type"), "delivery-status", "of report-type delivery-status")
    parts = list(msg.iter_parts())
    is_([p.get_content_type() for p in parts],
        ["text/plain", "message/delivery-status", "text/rfc822-headers"],
        "explanation, delivery-status, and only the headers (RET=HDRS)")
    if len(parts) >= 2:
        ds = parts[1].as_bytes().decode(errors="replace")
        like(ds, "Reporting-MTA: dns; mail.example.test", "Reporting-MTA")
        like(ds, "Original-Envelope-Id: env-42", "Original-Envelope-Id from ENVID")
        like(ds, "Final-Recipient: rfc822; " + rcpt, "Final-Recipient")
        like(ds, "Action: failed", "Action: failed")
        like(ds, "Status: 5.4.6", "Status: 5.4.6")
    if len(parts) >= 3:
        like(parts[2].as_bytes().decode(errors="replace"), "Message-ID: <loop@test>",
             "the original header is returned")
like(inst.log(), "status=bounced", "qmgr logs status=bounced")

# ---- mutt opens the Maildir ----
def run_mutt(user_name, h):
    """Run mutt on a pty as the user on ~/Maildir; return what it drew."""
    pw = pwd.getpwnam(user_name)
    muttrc = os.path.join(h, ".muttrc")
    with open(muttrc, "w") as f:
        f.write("set mbox_type=Maildir\nset folder=~/Maildir\nset spoolfile=~/Maildir\n"
                "set sort=date-sent\nset index_format=\"%4C %-20.20F %s\"\n")
    os.chown(muttrc, pw.pw_uid, pw.pw_gid)
    pid, fd = pty.fork()
    if pid == 0:
        os.setgid(pw.pw_gid)
        os.setgroups([])
        os.setuid(pw.pw_uid)
        os.chdir(h)
        env = {"HOME": h, "USER": user_name, "TERM": "vt100", "LINES": "40", "COLUMNS": "120",
               "PATH": "/usr/bin:/bin"}
        os.execve(shutil.which("mutt"), ["mutt", "-F", muttrc, "-f", os.path.join(h, "Maildir")],
                  env)
    out = b""
    end = time.time() + 20
    while time.time() < end and b"round trip" not in out:
        rl, _, _ = select.select([fd], [], [], 0.5)
        if rl:
            try:
                out += os.read(fd, 65536)
            except OSError:
                break
    try:
        os.write(fd, b"q")
        time.sleep(0.3)
        os.write(fd, b"y")
    except OSError:
        pass
    end = time.time() + 5
    while time.time() < end:
        p, _ = os.waitpid(pid, os.WNOHANG)
        if p:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    os.close(fd)
    return out.decode(errors="replace")


if shutil.which("mutt"):
    screen = run_mutt(user, home)
    like(screen, "via swaks", "mutt lists the swaks message")
    like(screen, "round trip", "and the round-trip message")
else:
    ok(False, "mutt is installed (make deps)")

# ---- who runs as whom (DESIGN.md §1) ----
want = {
    "master": ("root", "/"),
    "smtpd": ("posthorn-net", inst.spool),
    "cleanup": ("posthorn", inst.spool),
    "qmgr": ("posthorn", inst.spool),
    "local": ("root", "/"),
    "lookupd": ("posthorn", "/"),
    "pickup": ("posthorn", inst.spool),
}
s = smtplib.SMTP("127.0.0.1", port, timeout=30)     # keep an smtpd busy
found = {os.path.basename(open("/proc/%d/cmdline" % inst.master_pid).read().split("\0")[0]):
         inst.master_pid}
for pid, name in inst.procs().items():
    found.setdefault(name, pid)
for name, (account, root) in sorted(want.items()):
    pid = found.get(name)
    if pid is None:
        ok(False, "%s is running" % name)
        continue
    uid = int(proc_status(pid)["Uid"][0])
    is_((pwd.getpwuid(uid).pw_name, proc_root(pid)), (account, root),
        "%s runs as %s in %s" % (name, account, root))
s.quit()

inst.cleanup()
done()
