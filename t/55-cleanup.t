#!/usr/bin/env python3
"""cleanup and lookupd on a real instance, spoken to over their sockets.

cleanup: a submit is committed to incoming/ and answered with its queue
ID; the Received: header it builds; message_size_limit; the hop count;
malformed requests drop only that client; peers other than network_user,
mail_owner and root are refused; its uid and root directory.
lookupd: users, aliases, postmaster, non-local domains, an empty
local_recipient_maps, an unreadable table (TEMPFAIL), a rebuilt alias map
noticed without a restart; its uid and root directory.
"""
import os
import pwd
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import ipcframe  # noqa: E402
from posthorn import Instance, proc_root, proc_status  # noqa: E402
from tap import diag, done, is_, like, ok  # noqa: E402

CLEANUP_SUBMIT, CLEANUP_RESULT = 0x200, 0x201
LOOKUP_RCPT, LOOKUP_REPLY = 0x500, 0x501
LOOKUP_OK, LOOKUP_NOTFOUND, LOOKUP_TEMPFAIL, LOOKUP_REMOTE = 0, 1, 2, 3

inst = Instance(services=[
    "cleanup unix y - - cleanup",
    "lookupd unix y - - lookupd",
], main_conf={"message_size_limit": "100000"})
r = inst.start()
ok(r.returncode == 0, "instance starts") or diag(r.stderr)
cleanup_path = os.path.join(inst.spool, "private", "cleanup")
lookupd_path = os.path.join(inst.spool, "private", "lookupd")


def submit_fields(content_len, sender="sender@example.org", rcpts=None, attrs=None,
                  flags=0, notify=0):
    rcpts = rcpts or ["user@mail.example.test"]
    attrs = attrs if attrs is not None else [("client_addr", "127.0.0.1"),
                                             ("helo_name", "client.example.org"),
                                             ("protocol", "ESMTP")]
    f = [flags, sender, "", 0, len(attrs)]
    for k, v in attrs:
        f += [k, v]
    f.append(len(rcpts))
    for a in rcpts:
        f += [a, "", "", notify]
    f.append(content_len)
    return f


def memfd(data):
    fd = os.memfd_create("t")
    os.write(fd, data)
    return fd


def submit(conn, content, **kw):
    fd = memfd(content)
    conn.send(CLEANUP_SUBMIT, 7, submit_fields(len(content), **kw), fd=fd)
    os.close(fd)
    return conn.recv(timeout=20)


def queue_file(qid):
    with open(os.path.join(inst.spool, "incoming", qid), "rb") as f:
        return f.read()


def spool_files(d):
    return sorted(os.listdir(os.path.join(inst.spool, d)))


# ---- cleanup ----
c = ipcframe.connect(cleanup_path, "cleanup", 1, timeout=20)
content = (b"From: a@example.org\r\nSubject: test\r\nMessage-ID: <m1@example.org>\r\n\r\n"
           b"body \xc3\xa9 8-bit\r\n.. dot\r\n")
res = submit(c, content)
is_(res.type, CLEANUP_RESULT, "submit answered with a result")
code, dsn, qid = res.fields
is_((code, dsn), (250, "2.0.0"), "committed: 250 2.0.0")
ok(qid in spool_files("incoming"), "the file is in incoming/ under its queue ID")
data = queue_file(qid)
ok(data.startswith(b"V\0\0\0\x04PHQ\x01"), "it starts with the version record")
ok(data.endswith(b"\0\0\0\x01") and b"X\0\0\0\x0c" in data, "it ends with the end record")
like(data.decode("latin-1"), "Received: from client.example.org (unknown [127.0.0.1])\r\n"
     "\tby mail.example.test (Posthorn) with ESMTP id " + qid + "\r\n"
     "\tfor <user@mail.example.test>; ", "the Received: header")
ok(content in data, "the content follows byte for byte")
like(inst.log(), qid + ": message-id=<m1@example.org>", "cleanup logs the Message-ID")
is_(spool_files("tmp"), [], "nothing is left in tmp/")

res = submit(c, b"Subject: tls\r\n\r\nx\r\n", rcpts=["a@mail.example.test", "b@mail.example.test"],
             attrs=[("client_addr", "::1"), ("helo_name", "evil (x) \\ name"),
                    ("protocol", "ESMTPS"), ("tls_protocol", "TLSv1.3"),
                    ("tls_cipher", "TLS_AES_256_GCM_SHA384"), ("tls_bits", "256")])
is_(res.fields[0], 250, "a second message on the same connection")
data = queue_file(res.fields[2]).decode("latin-1")
like(data, "Received: from evil??x????name (unknown [IPv6:::1])\r\n"
     "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\r\n"
     "\tby mail.example.test (Posthorn) with ESMTPS id ", "TLS details; HELO text made safe")
ok("\tfor <" not in data, "no 'for' with two recipients")

res = submit(c, b"Subject: big\r\n\r\n" + b"x" * 100001)
is_(res.fields[:2], [552, "5.3.4"], "over message_size_limit: 552 5.3.4")
hops = b"".join(b"Received: from hop%d\r\n" % i for i in range(50))
res = submit(c, hops + b"Subject: loop\r\n\r\nx\r\n")
is_(res.fields[:2], [554, "5.4.6"], "50 Received: headers plus ours: 554 5.4.6")
res = submit(c, hops[:-len(b"Received: from hop49\r\n")] + b"Subject: ok\r\n\r\nx\r\n")
is_(res.fields[0], 250, "49 plus ours is within hopcount_limit")
res = submit(c, b"Subject: x\r\n\r\n" + hops, flags=1)
is_(res.fields[0], 250, "a bounce (CLEANUP_FLAG_BOUNCE) gets no hop check")
ok(not queue_file(res.fields[2]).startswith(b"Received: from") and
   b"by mail.example.test (Posthorn)" not in queue_file(res.fields[2]),
   "and no Received: header")
before = len(spool_files("incoming"))

# A content descriptor shorter than the length given.
fd = memfd(b"short")
c.send(CLEANUP_SUBMIT, 8, submit_fields(100), fd=fd)
os.close(fd)
res = c.recv(timeout=20)
is_(res.fields[:2], [451, "4.3.0"], "short content: 451 4.3.0")
is_(len(spool_files("incoming")), before, "nothing committed for the refused ones")
is_(spool_files("tmp"), [], "and nothing left in tmp/")
c.close()

# Malformed requests: the client is dropped, cleanup carries on.
bad = [
    ("no fd", lambda c: c.send(CLEANUP_SUBMIT, 1, submit_fields(1))),
    ("NOTIFY=NEVER,SUCCESS", lambda c: c.send(CLEANUP_SUBMIT, 1, submit_fields(1, notify=9),
                                              fd=memfd(b"x"))),
    ("bad attribute name", lambda c: c.send(CLEANUP_SUBMIT, 1, submit_fields(
        1, attrs=[("Bad-Name", "x")]), fd=memfd(b"x"))),
    ("no recipients", lambda c: c.send(CLEANUP_SUBMIT, 1, submit_fields(1, rcpts=[])[:-1]
                                       + [0, 1], fd=memfd(b"x"))),
    ("CR in an address", lambda c: c.send(CLEANUP_SUBMIT, 1, submit_fields(
        1, rcpts=["a\r\nb@x"]), fd=memfd(b"x"))),
    ("unknown type", lambda c: c.send(0x999, 1, [1])),
    ("garbage", lambda c: c.send_raw(b"\xff" * 40)),
]
for name, fn in bad:
    c = ipcframe.connect(cleanup_path, "cleanup", 1)
    fn(c)
    try:
        got = c.recv(timeout=10)
    except (OSError, EOFError, ValueError):
        got = None
    is_(got, None, "malformed request (%s): connection dropped" % name)
    c.close()
c = ipcframe.connect(cleanup_path, "cleanup", 1, timeout=20)
is_(submit(c, b"Subject: after\r\n\r\nx\r\n").fields[0], 250, "cleanup still serves")
c.close()

# Peer credentials.
nobody = pwd.getpwnam("nobody")
c = ipcframe.connect_as(cleanup_path, 0, 0, [0])
c.hello("cleanup", 1)
ok(True, "root may connect")
c.close()
net = pwd.getpwnam("posthorn-net")
owner = pwd.getpwnam("posthorn")
c = ipcframe.connect_as(cleanup_path, net.pw_uid, net.pw_gid, [owner.pw_gid])
c.hello("cleanup", 1)
is_(submit(c, b"Subject: net\r\n\r\nx\r\n").fields[0], 250, "network_user may submit")
c.close()
try:
    c = ipcframe.connect_as(cleanup_path, nobody.pw_uid, nobody.pw_gid, [owner.pw_gid])
    c.hello("cleanup", 1)
    refused = False
except (OSError, EOFError, ValueError):
    refused = True
ok(refused, "another uid (nobody, even with the mail_owner group) is refused")
like(inst.log(), "cleanup: refusing a client: peer uid not allowed", "and that is logged")

pids = inst.service_pids("cleanup")
ok(pids, "cleanup processes are running")
st = proc_status(pids[0])
is_(st["Uid"][0], str(owner.pw_uid), "cleanup runs as mail_owner")
is_(proc_root(pids[0]), inst.spool, "cleanup is chrooted into the spool")

# ---- lookupd ----
user, home = inst.add_user()
lk = ipcframe.connect(lookupd_path, "lookup", 1)


def lookup(addr):
    lk.send(LOOKUP_RCPT, 3, [addr])
    f = lk.recv(timeout=10)
    is_((f.type, f.reqid), (LOOKUP_REPLY, 3), "lookupd answers %s" % addr)
    return f.fields[0]


is_(lookup(user + "@mail.example.test"), LOOKUP_OK, "a login user is valid")
is_(lookup(user.upper() + "@MAIL.example.test"), LOOKUP_OK, "case does not matter")
is_(lookup("nosuchuser@mail.example.test"), LOOKUP_NOTFOUND, "an unknown user is not")
is_(lookup("abuse@localhost"), LOOKUP_OK, "an alias is valid")
is_(lookup("Postmaster@example.test"), LOOKUP_OK, "postmaster is always valid")
is_(lookup("postmaster"), LOOKUP_OK, "bare postmaster too")
is_(lookup(user + "@elsewhere.example"), LOOKUP_REMOTE, "a non-local domain is remote")

with open(os.path.join(inst.etc, "aliases"), "a") as f:
    f.write("newalias: %s\n" % user)
is_(lookup("newalias@mail.example.test"), LOOKUP_NOTFOUND, "not yet in the built map")
r = inst.mailctl("newaliases")
is_(r.returncode, 0, "mailctl newaliases") or diag(r.stderr)
is_(lookup("newalias@mail.example.test"), LOOKUP_OK, "a rebuilt alias map is noticed")
lk.close()

pids = inst.service_pids("lookupd")
ok(pids, "lookupd is running")
is_(proc_status(pids[0])["Uid"][0], str(owner.pw_uid), "lookupd runs as mail_owner")
is_(proc_root(pids[0]), "/", "lookupd is not chrooted (it reads passwd and the maps)")

# A table that cannot be read: try again later, never "unknown".
inst.set_main({"local_recipient_maps": "hash:%s/missing" % inst.etc})
inst.mailctl("reload")
inst.wait_for(lambda: "reload" in inst.log())
lk = ipcframe.connect(lookupd_path, "lookup", 1)
inst.wait_for(lambda: lookup("x@mail.example.test") == LOOKUP_TEMPFAIL, timeout=10)
is_(lookup("x@mail.example.test"), LOOKUP_TEMPFAIL, "an unreadable table: TEMPFAIL")
lk.close()
inst.set_main({"local_recipient_maps": ""})
inst.mailctl("reload")
lk = ipcframe.connect(lookupd_path, "lookup", 1)
inst.wait_for(lambda: lookup("anything@mail.example.test") == LOOKUP_OK, timeout=10)
is_(lookup("anything@mail.example.test"), LOOKUP_OK, "empty local_recipient_maps: any")
lk.close()

try:
    lk = ipcframe.connect_as(lookupd_path, nobody.pw_uid, nobody.pw_gid, [owner.pw_gid])
    lk.hello("lookup", 1)
    refused = False
except (OSError, EOFError, ValueError):
    refused = True
ok(refused, "lookupd refuses other uids")

inst.cleanup()
done()
