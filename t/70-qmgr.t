#!/usr/bin/env python3
"""qmgr, the queue manager, on a real instance without smtpd: messages are
submitted to cleanup over its socket (as smtpd would), or written into the
spool with t/mkqueue, and qmgr must take it from there.

Checks: delivery into the Maildir and removal from the queue, with the
Postfix-style log lines; several recipients; an unknown user bounces to a
local sender with a valid RFC 3464 report (RET=FULL and RET=HDRS, ENVID,
ORCPT); NOTIFY=NEVER and the null sender get no report; NOTIFY=SUCCESS gets
a "delivered" report; a temporary failure is deferred with attempts and a
next attempt, retried after the backoff, and bounced as expired after
maximal_queue_lifetime; a corrupt file goes to corrupt/; files left in
active/ are recovered at start; control requests only from root; garbage
on the socket only drops that client; qmgr's account and root.
"""
import email
import email.policy
import os
import pwd
import shutil
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import ipcframe  # noqa: E402
from posthorn import BUILD, Instance, proc_root, proc_status  # noqa: E402
from tap import diag, done, is_, like, ok  # noqa: E402

QMGR_FLUSH, QMGR_DELETE, QMGR_HOLD, QMGR_RELEASE, QMGR_REPLY = 0x301, 0x302, 0x303, 0x304, 0x305
NOTIFY_SUCCESS, NOTIFY_FAILURE, NOTIFY_DELAY, NOTIFY_NEVER = 1, 2, 4, 8

inst = Instance(main_conf={
    "minimal_backoff_time": "1s",
    "maximal_backoff_time": "2s",
    "queue_run_delay": "1s",
})
r = inst.start()
ok(r.returncode == 0, "instance starts") or diag(r.stderr)
user, home = inst.add_user()
other, other_home = inst.add_user()
third, third_home = inst.add_user()
dom = "mail.example.test"
qmgr_path = os.path.join(inst.spool, "private", "qmgr")
owner = pwd.getpwnam("posthorn")


def submit(content, sender, rcpts, envid="", ret=0):
    """rcpts: list of (address, notify, orcpt)."""
    return inst.submit(content, sender, rcpts, envid=envid, ret=ret)


def files(d):
    return sorted(os.listdir(os.path.join(inst.spool, d)))


def in_queue(qid):
    return any(qid in files(d) for d in ("incoming", "active", "deferred", "hold"))


def find(h, needle, timeout=20):
    def look():
        for data in inst.maildir(h).values():
            if needle in data:
                return data
        return None
    return inst.wait_for(look, timeout=timeout)


def report(data):
    msg = email.message_from_bytes(data, policy=email.policy.default)
    parts = list(msg.iter_parts()) if msg.is_multipart() else []
    return msg, parts


# ---- a plain delivery ----
qid = submit(b"Subject: plain\r\nMessage-ID: <plain@test>\r\n\r\nhello\r\n",
             "sender@example.org", [("%s@%s" % (user, dom), 0, "")])
got = find(home, b"Subject: plain")
ok(got is not None, "the message is delivered into the Maildir")
ok(inst.wait_for(lambda: not in_queue(qid)), "and removed from the queue")
log = inst.log()
like(log, "%s: from=<sender@example.org>, size=" % qid, "qmgr logs from= and size=")
like(log, "nrcpt=1 (queue active)", "and nrcpt")
like(log, "%s: to=<%s@%s>, relay=local, delay=" % (qid, user, dom), "to= relay=local delay=")
like(log, "dsn=2.0.0, status=sent (", "dsn=2.0.0 status=sent")
like(log, "%s: removed" % qid, "removed")

# ---- several recipients ----
qid = submit(b"Subject: three\r\n\r\nfor three\r\n", "sender@example.org",
             [("%s@%s" % (u, dom), 0, "") for u in (user, other, third)])
ok(all(find(h, b"Subject: three") for h in (home, other_home, third_home)),
   "a message for three users reaches all three")
ok(inst.wait_for(lambda: not in_queue(qid)), "and leaves the queue")

# ---- bounces ----
sender = "%s@%s" % (other, dom)
qid = submit(b"Subject: to nobody\r\nMessage-ID: <nobody@test>\r\n\r\nlost body\r\n", sender,
             [("nosuchuser@%s" % dom, 0, "rfc822;alias@example.org")], envid="env-1")
dsn = find(other_home, b"X-Posthorn-Queue-ID: " + qid.encode())
ok(dsn is not None, "an unknown user's mail bounces to the sender")
if dsn:
    like(dsn.decode(errors="replace"), "Return-Path: <>", "from the null sender")
    msg, parts = report(dsn)
    is_(msg.get_content_type(), "multipart/report", "multipart/report")
    is_(msg.get_param("report-type"), "delivery-status", "report-type=delivery-status")
    is_(msg["Subject"], "Undelivered Mail Returned to Sender", "the usual subject")
    like(msg["From"], "MAILER-DAEMON@" + dom, "from MAILER-DAEMON")
    is_(msg["Auto-Submitted"], "auto-replied", "Auto-Submitted")
    is_([p.get_content_type() for p in parts],
        ["text/plain", "message/delivery-status", "message/rfc822"],
        "explanation, report and the whole message (RET default)")
    if len(parts) == 3:
        ds = parts[1].as_bytes().decode(errors="replace")
        like(ds, "Reporting-MTA: dns; " + dom, "Reporting-MTA")
        like(ds, "Original-Envelope-Id: env-1", "Original-Envelope-Id")
        like(ds, "Original-Recipient: rfc822;alias@example.org", "Original-Recipient from ORCPT")
        like(ds, "Final-Recipient: rfc822; nosuchuser@" + dom, "Final-Recipient")
        like(ds, "Action: failed", "Action: failed")
        like(ds, "Status: 5.1.1", "Status: 5.1.1")
        like(ds, "Diagnostic-Code: X-Posthorn; ", "Diagnostic-Code")
        like(ds, "Arrival-Date: ", "Arrival-Date")
        like(parts[2].as_bytes().decode(errors="replace"), "lost body",
             "the returned message has the body")
        like(parts[0].get_content(), "<nosuchuser@%s>: " % dom, "the explanation names it")
ok(inst.wait_for(lambda: not in_queue(qid)), "the bounced message leaves the queue")
like(inst.log(), "%s: sender non-delivery notification: " % qid, "the bounce is logged")
like(inst.log(), "status=bounced", "status=bounced")

qid = submit(b"Subject: headers only\r\nMessage-ID: <hdrs@test>\r\n\r\nsecret body\r\n", sender,
             [("nosuchuser@%s" % dom, NOTIFY_FAILURE, "")], ret=ord("H"))
dsn = find(other_home, b"X-Posthorn-Queue-ID: " + qid.encode())
ok(dsn is not None, "RET=HDRS bounce arrives")
if dsn:
    msg, parts = report(dsn)
    is_([p.get_content_type() for p in parts][2:], ["text/rfc822-headers"],
        "RET=HDRS returns only the header")
    ok(b"Message-ID: <hdrs@test>" in dsn and b"secret body" not in dsn,
       "with the header and without the body")

before = len(inst.maildir(other_home))
q1 = submit(b"Subject: never\r\n\r\nx\r\n", sender, [("nosuchuser@%s" % dom, NOTIFY_NEVER, "")])
q2 = submit(b"Subject: from null\r\n\r\nx\r\n", "", [("nosuchuser@%s" % dom, 0, "")])
ok(inst.wait_for(lambda: not in_queue(q1) and not in_queue(q2)),
   "NOTIFY=NEVER and <> mail that fails leave the queue")
like(inst.log(), "%s: undeliverable mail from <>" % q2, "the null sender's failure is logged")
time.sleep(1)
is_(len(inst.maildir(other_home)), before, "and no report was sent for either")

qid = submit(b"Subject: tell me\r\n\r\nx\r\n", sender,
             [("%s@%s" % (third, dom), NOTIFY_SUCCESS, "")])
dsn = find(other_home, b"X-Posthorn-Queue-ID: " + qid.encode())
ok(dsn is not None, "NOTIFY=SUCCESS gets a report")
if dsn:
    like(dsn.decode(errors="replace"), "Action: delivered", "Action: delivered")
    like(dsn.decode(errors="replace"), "Status: 2.0.0", "Status: 2.0.0")

# ---- a temporary failure: deferred, retried, then expired ----
victim, victim_home = inst.add_user()
os.makedirs(os.path.join(victim_home, "Maildir"), exist_ok=True)
os.chown(os.path.join(victim_home, "Maildir"), 0, 0)     # the user cannot write it
os.chmod(os.path.join(victim_home, "Maildir"), 0o755)
qid = submit(b"Subject: later\r\n\r\nx\r\n", sender, [("%s@%s" % (victim, dom), 0, "")])
ok(inst.wait_for(lambda: qid in files("deferred"), timeout=20), "a temporary failure is deferred")
like(inst.log(), "%s: to=<%s@%s>, relay=local" % (qid, victim, dom), "logged")
like(inst.log(), "status=deferred (", "status=deferred")
r = inst.mailctl("queue", "show", qid)
like(r.stdout, "(deferred, dsn=4.", "the recipient's status records the deferral")
ok(inst.wait_for(lambda: "attempts=2" in inst.mailctl("queue", "show", qid).stdout
                 or "attempts=3" in inst.mailctl("queue", "show", qid).stdout, timeout=20),
   "and it is retried after the backoff")
shutil.rmtree(os.path.join(victim_home, "Maildir"))
ok(find(victim_home, b"Subject: later", timeout=20), "once the problem is fixed it is delivered")

# expiry: a queue lifetime of 0 bounces at the first temporary failure
inst.set_main({"maximal_queue_lifetime": "0"})
inst.mailctl("reload")
time.sleep(1)
os.makedirs(os.path.join(victim_home, "Maildir"), exist_ok=True)
shutil.rmtree(os.path.join(victim_home, "Maildir"))
os.makedirs(os.path.join(victim_home, "Maildir"))
os.chown(os.path.join(victim_home, "Maildir"), 0, 0)
qid = submit(b"Subject: expires\r\n\r\nx\r\n", sender, [("%s@%s" % (victim, dom), 0, "")])
dsn = find(other_home, b"X-Posthorn-Queue-ID: " + qid.encode(), timeout=30)
ok(dsn is not None, "a deferral past maximal_queue_lifetime bounces")
if dsn:
    like(dsn.decode(errors="replace"), "Status: 5.4.7", "with 5.4.7")
    like(dsn.decode(errors="replace"), "expired", "saying it expired")
inst.set_main({"maximal_queue_lifetime": "5d"})
inst.mailctl("reload")
time.sleep(1)

# ---- a corrupt file ----
mkqueue = os.path.join(BUILD, "t", "mkqueue")
# Written and cut in a scratch spool, then moved in whole: qmgr may scan
# incoming/ at any moment and must see only the finished (broken) file.
scratch = os.path.join(inst.dir, "scratch")
for d in ("tmp", "incoming"):
    os.makedirs(os.path.join(scratch, d), exist_ok=True)
r = subprocess.run([mkqueue, "-s", sender, "-r", "%s@%s" % (user, dom), scratch],
                   input=b"Subject: cut\r\n\r\nbody\r\n", capture_output=True)
bad = r.stdout.decode().strip()
path = os.path.join(scratch, "incoming", bad)
with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) - 3)          # no end record
os.chown(path, owner.pw_uid, owner.pw_gid)
os.rename(path, os.path.join(inst.spool, "incoming", bad))
c = ipcframe.connect(qmgr_path, "qmgr", 1)
c.send(0x300, 0, [bad])                              # QMGR_NOTIFY as root
ok(inst.wait_for(lambda: bad in files("corrupt")), "a file without its end record goes to corrupt/")
like(inst.log(), "%s: corrupt queue file" % bad, "and is logged with the reason")

# ---- control over the socket ----
c.send(QMGR_DELETE, 5, ["4bYfG80000z1"])
rep = c.recv()
ok(rep and rep.type == QMGR_REPLY and rep.reqid == 5 and rep.fields[0] == 0,
   "deleting an unknown ID says no") or diag(rep and rep.fields)
c.send(QMGR_FLUSH, 6, [""])
rep = c.recv()
ok(rep and rep.fields[0] == 1, "flush is answered")
c.send(QMGR_FLUSH, 7, [])
ok(c.recv() is None, "a flush without its domain field drops the client (as any malformed "
   "request)")
c.sock.close()

c = ipcframe.connect_as(qmgr_path, owner.pw_uid, owner.pw_gid, [owner.pw_gid])
c.send(QMGR_DELETE, 1, ["ALL"])
rep = c.recv()
ok(rep is None or rep.fields[0] == 0, "control from mail_owner (not root) is refused")
nobody = pwd.getpwnam("nobody")
try:
    c = ipcframe.connect_as(qmgr_path, nobody.pw_uid, nobody.pw_gid, [owner.pw_gid])
    c.send(QMGR_FLUSH, 1, [""])
    refused = c.recv() is None
except (OSError, EOFError, ValueError):
    refused = True
ok(refused, "a client that is neither root nor mail_owner is dropped")

# garbage: a bad hello, a frame with a wrong field, an oversized frame
for junk in (b"not a frame at all" * 10, struct.pack("!IIII", 0x301, 10 << 20, 1, 0)):
    s = ipcframe.connect(qmgr_path)
    s.sock.sendall(junk)
    s.sock.close()
c = ipcframe.connect(qmgr_path, "qmgr", 1)
c.send(QMGR_DELETE, 1, [42])
ok(c.recv() is None, "a malformed request drops that client")
qmgr_pids = inst.service_pids("qmgr")
qid = submit(b"Subject: still alive\r\n\r\nx\r\n", "a@example.org", [("%s@%s" % (user, dom), 0, "")])
ok(find(home, b"Subject: still alive"), "qmgr still delivers after the garbage")
is_(inst.service_pids("qmgr"), qmgr_pids, "the same qmgr process")

# ---- who qmgr is ----
if qmgr_pids:
    st = proc_status(qmgr_pids[0])
    is_(pwd.getpwuid(int(st["Uid"][0])).pw_name, "posthorn", "qmgr runs as posthorn")
    is_(proc_root(qmgr_pids[0]), inst.spool, "chrooted into the spool")

# ---- recovery of active/ at start ----
r = inst.stop()
ok(r.returncode == 0, "stop")
r = subprocess.run([mkqueue, "-s", sender, "-r", "%s@%s" % (third, dom), inst.spool],
                   input=b"Subject: left active\r\n\r\nbody\r\n", capture_output=True)
left = r.stdout.decode().strip()
os.rename(os.path.join(inst.spool, "incoming", left), os.path.join(inst.spool, "active", left))
os.chown(os.path.join(inst.spool, "active", left), owner.pw_uid, owner.pw_gid)
r = inst.start()
ok(r.returncode == 0, "start again")
ok(find(third_home, b"Subject: left active"), "a file left in active/ is delivered after a restart")
ok(inst.wait_for(lambda: not in_queue(left)), "and removed")

inst.cleanup()
done()
