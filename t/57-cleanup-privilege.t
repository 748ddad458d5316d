#!/usr/bin/env python3
"""t/57-cleanup-privilege.t - cleanup honours a field that carries privilege
only from a peer that holds it (DESIGN.md §1, issue 10 finding 4).

The auditor's cases, as a compromised smtpd would try them: a client
running as network_user (posthorn-net) on private/cleanup sends the bounce
flag with 60 Received: headers (hop count and Received: skipped), and
submit_uid=0 without client_addr (a forged "from userid 0" local
submission); also submit_user, maildrop_id, and a request without
client_addr.  Each is refused: the connection is dropped, the refusal is
logged with the peer's uid and class, nothing is queued, and cleanup
serves the next client.  A maildrop file (any local user's) may not carry
client attributes to pass for network mail: pickup sets it aside in
corrupt/; one over message_size_limit is reported to its sender with its
header only (the report's bounce mark skips the size limit).  The
legitimate paths still work: smtpd's mail, qmgr's bounce
(the bounce flag from mail_owner), sendmail -> pickup (submit_uid from
mail_owner: "from userid N"), and local's forwarding child (mail_owner).
"""
import os
import pwd
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import ipcframe  # noqa: E402
from posthorn import BUILD, Instance  # noqa: E402
from tap import diag, done, is_, like, ok  # noqa: E402

CLEANUP_SUBMIT, CLEANUP_RESULT = 0x200, 0x201
FLAG_BOUNCE = 1
DOMAIN = "mail.example.test"
SENDMAIL = os.path.join(BUILD, "sbin", "sendmail")
MKQUEUE = os.path.join(BUILD, "t", "mkqueue")

inst = Instance(main_conf={"message_size_limit": "200000"})
user, home = inst.add_user()
alice, ahome = inst.add_user()
with open(os.path.join(inst.etc, "aliases"), "a") as f:
    f.write("away: someone@elsewhere.example\n")
r = inst.mailctl("newaliases")
is_(r.returncode, 0, "newaliases") or diag(r.stderr)
r = inst.start()
ok(r.returncode == 0, "instance starts") or diag(r.stderr)
cleanup_path = os.path.join(inst.spool, "private", "cleanup")
net = pwd.getpwnam("posthorn-net")
owner = pwd.getpwnam("posthorn")
rcpt = "%s@%s" % (user, DOMAIN)


def fields(content_len, attrs, flags=0, sender="sender@example.org", rcpts=(rcpt,)):
    f = [flags, sender, "", 0, len(attrs)]
    for k, v in attrs:
        f += [k, v]
    f.append(len(rcpts))
    for a in rcpts:
        f += [a, "", "", 0]
    f.append(content_len)
    return f


def as_net():
    """A connection to cleanup from posthorn-net, with mail_owner's group
    as smtpd has it (to reach private/)."""
    c = ipcframe.connect_as(cleanup_path, net.pw_uid, net.pw_gid, [owner.pw_gid], timeout=20)
    c.hello("cleanup", 1)
    return c


def submit(c, content, attrs, flags=0):
    """cleanup's result fields, or None if it dropped the connection."""
    fd = os.memfd_create("t")
    os.write(fd, content)
    try:
        c.send(CLEANUP_SUBMIT, 7, fields(len(content), attrs, flags), fd=fd)
        res = c.recv(timeout=20)
    except (OSError, EOFError, ValueError):
        res = None
    finally:
        os.close(fd)
    return res.fields if res is not None else None


def delivered(marker, h=home, timeout=20):
    def look():
        return [d for d in inst.maildir(h).values() if marker in d]
    return inst.wait_for(look, timeout=timeout) or []


def not_delivered(marker, h=home, wait=3):
    return not delivered(marker, h, timeout=wait)


net_attrs = [("client_name", "unknown"), ("client_addr", "192.0.2.7"),
             ("helo_name", "client.example"), ("protocol", "ESMTP")]
hops = b"".join(b"Received: from hop%d\r\n" % i for i in range(60))

# ---- the auditor's cases, from posthorn-net --------------------------------
c = as_net()
res = submit(c, hops + b"Subject: plain hops\r\n\r\nx\r\n", net_attrs)
is_(res and res[:2], [554, "5.4.6"], "posthorn-net, 60 hops, no flag: 554 5.4.6 too many hops")
res = submit(c, hops + b"Subject: forged bounce\r\n\r\nx\r\n", net_attrs, flags=FLAG_BOUNCE)
is_(res, None, "posthorn-net with the bounce flag: the connection is dropped")
c.close()
like(inst.log(), "cleanup: bad cleanup-submit from client uid %d (network_user): the bounce flag "
     "from network_user, which may not set it; dropping it" % net.pw_uid,
     "and the refusal is logged with the uid and the reason")
ok(not_delivered(b"Subject: forged bounce"), "the forged bounce is not delivered")

c = as_net()
res = submit(c, b"Subject: forged root\r\n\r\nx\r\n",
             [("submit_uid", "0"), ("submit_user", "root"), ("protocol", "local")])
is_(res, None, "posthorn-net with submit_uid=0 and no client_addr: dropped")
c.close()
like(inst.log(), "(network_user): attribute submit_uid from network_user, which may not set it",
     "and logged")
ok(not_delivered(b"Subject: forged root"), "no forged local submission by root is delivered")

cases = [
    ("submit_uid=0 with client_addr", net_attrs + [("submit_uid", "0")]),
    ("submit_user", net_attrs + [("submit_user", "root")]),
    ("maildrop_id", net_attrs + [("maildrop_id", "4bYfG80000z1")]),
    ("no client_addr", [("helo_name", "client.example"), ("protocol", "ESMTP")]),
    ("an empty client_addr", [("client_addr", ""), ("protocol", "ESMTP")]),
    ("client_addr twice", net_attrs + [("client_addr", "127.0.0.1")]),
]
for name, attrs in cases:
    c = as_net()
    res = submit(c, b"Subject: refused %s\r\n\r\nx\r\n" % name.encode(), attrs)
    is_(res, None, "posthorn-net, %s: dropped" % name)
    c.close()
like(inst.log(), "no client_addr attribute from network_user", "a missing client_addr is logged")
ok(not_delivered(b"Subject: refused", wait=2), "none of them is delivered")

c = as_net()
res = submit(c, b"Subject: net ok\r\n\r\nfine\r\n", net_attrs)
is_(res and res[0], 250, "posthorn-net with a proper request is served afterwards")
c.close()
m = delivered(b"Subject: net ok")
ok(m, "and its message is delivered")
if m:
    like(m[0].decode(errors="replace"), "Received: from client.example (unknown [192.0.2.7])",
         "with the network Received: line")

# ---- legitimate paths --------------------------------------------------------
# smtpd (posthorn-net) itself.
try:
    with smtplib.SMTP("127.0.0.1", inst.port(25), timeout=20) as s:
        s.sendmail("someone@example.org", [rcpt], b"Subject: via smtpd\r\n\r\nhello\r\n")
    sent = True
except (smtplib.SMTPException, OSError) as e:
    sent = False
    diag("smtp: %r" % (e,))
ok(sent, "smtpd accepts a message")
m = delivered(b"Subject: via smtpd")
ok(m, "smtpd's message is delivered")
if m:
    like(m[0].decode(errors="replace"), "(unknown [127.0.0.1])", "with smtpd's client address")

# qmgr's bounce: the bounce flag from mail_owner.
qid = inst.submit(b"Subject: to nobody\r\n\r\nlost\r\n", rcpt, ["nosuchuser@" + DOMAIN])
m = delivered(b"X-Posthorn-Queue-ID: " + qid.encode())
ok(m, "qmgr's bounce (mail_owner, the bounce flag) reaches the sender")
if m:
    like(m[0].decode(errors="replace"), "Return-Path: <>", "from the null sender")

# sendmail -> pickup: submit_uid from mail_owner.
r = subprocess.run(["setpriv", "--reuid", alice, "--regid", alice, "--init-groups", "--",
                    SENDMAIL, "-C", inst.etc, user], input=b"Subject: from alice\n\nhi\n",
                   capture_output=True, timeout=60)
is_(r.returncode, 0, "a user's sendmail") or diag(r.stderr)
m = delivered(b"Subject: from alice")
ok(m, "sendmail -> pickup -> cleanup delivers")
if m:
    like(m[0].decode(errors="replace"), "Received: by %s (Posthorn, from userid %d)"
         % (DOMAIN, pwd.getpwnam(alice).pw_uid), "with the local Received: line and her uid")

# local's forwarding child (mail_owner): an alias to a remote address.
qid = inst.submit(b"Subject: forward me\r\n\r\nx\r\n", "sender@example.org", ["away@" + DOMAIN])
ok(inst.wait_for(lambda: "forwarded to someone@elsewhere.example as" in inst.log(), timeout=20),
   "local's forwarding child still gets its message queued by cleanup") \
    or diag(inst.log()[-2000:])

# ---- a maildrop file that poses as network mail -------------------------------
# Made with lib/queue's writer (t/mkqueue) in a scratch queue, then planted
# as alice's own file: the uid is hers, but it claims a network client.
auid = pwd.getpwnam(alice).pw_uid
scratch = tempfile.mkdtemp(prefix="posthorn-md-")
for d in ("incoming", "tmp"):
    os.mkdir(os.path.join(scratch, d))


def plant(subject, extra, body=b"x\r\n"):
    args = [MKQUEUE, "-s", "%s@%s" % (alice, DOMAIN), "-r", rcpt,
            "-a", "submit_uid=%d" % auid, "-a", "submit_user=%s" % alice]
    for a in extra:
        args += ["-a", a]
    p = subprocess.run(args + [scratch], input=b"Subject: %s\r\n\r\n" % subject.encode() + body,
                       capture_output=True, timeout=30)
    qid = p.stdout.decode().strip()
    src = os.path.join(scratch, "incoming", qid)
    dst = os.path.join(inst.spool, "maildrop", qid)
    shutil.move(src, dst)
    os.chown(dst, auid, -1)
    os.chmod(dst, 0o644)            # as sendmail leaves it
    return qid


good = plant("planted good", [])
bad = plant("planted as network", ["client_addr=203.0.113.9", "helo_name=mx.example.net"])
# Over message_size_limit (sendmail would have said so, with the same
# configuration): cleanup refuses it, pickup reports to alice with the
# bounce mark, which skips the size limit, so only the header comes back.
big = plant("planted big", [], body=b"0123456789abcdef" * 20000 + b"\r\n")
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(os.path.join(inst.spool, "public", "pickup"))
s.close()
ok(delivered(b"Subject: planted good"), "a well-formed maildrop file of alice's is delivered")
ok(inst.wait_for(lambda: bad in os.listdir(os.path.join(inst.spool, "corrupt")), timeout=20),
   "one with client_addr goes to corrupt/")
like(inst.log(), "maildrop %s: not a valid request (attribute client_addr from a maildrop file, "
     "which may not set it); moved to corrupt/%s" % (bad, bad), "and pickup says why")
ok(not_delivered(b"Subject: planted as network"), "it is not delivered")
m = delivered(b"X-Posthorn-Queue-ID: " + big.encode(), h=ahome)
ok(m, "the message over the size limit is reported to alice")
if m:
    ok(len(m[0]) < 200000 and b"text/rfc822-headers" in m[0] and b"0123456789abcdef" not in m[0],
       "with its header only, under the size limit (%d bytes)" % len(m[0]))
shutil.rmtree(scratch, ignore_errors=True)

inst.cleanup()
done()
