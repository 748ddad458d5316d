#!/usr/bin/env python3
"""anvil: session counts per (service, client address) across clients;
counts are released by DISCONNECT and when a client's connection closes;
malformed requests drop only that client, and so does a client asking for
more than 1000 sessions; uid and root directory."""
import os
import pwd
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import ipcframe  # noqa: E402
from posthorn import Instance, proc_root, proc_status  # noqa: E402
from tap import diag, done, is_, ok  # noqa: E402

CONNECT, DISCONNECT, REPLY = 0x600, 0x601, 0x602
inst = Instance(services=["anvil unix y - 1 anvil"])
r = inst.start()
ok(r.returncode == 0, "instance starts") or diag(r.stderr)
path = os.path.join(inst.spool, "private", "anvil")


def conn():
    return ipcframe.connect(path, "anvil", 1)


def count(c, svc, addr):
    c.send(CONNECT, 0, [svc, addr])
    f = c.recv(timeout=10)
    return f.fields[0] if f and f.type == REPLY else None


a, b = conn(), conn()
is_(count(a, "smtpd", "192.0.2.1"), 1, "first session from an address: 1")
is_(count(b, "smtpd", "192.0.2.1"), 2, "a second one from another process: 2")
is_(count(a, "smtpd", "192.0.2.2"), 1, "other addresses count apart")
is_(count(a, "submission", "192.0.2.1"), 1, "other services count apart")
a.send(DISCONNECT, 0, ["smtpd", "192.0.2.1"])
is_(count(b, "smtpd", "192.0.2.1"), 2, "DISCONNECT releases one session")
b.close()
c = conn()
is_(count(c, "smtpd", "192.0.2.1"), 1, "a closed client's sessions are all released")
a.send(DISCONNECT, 0, ["smtpd", "198.51.100.9"])
is_(count(a, "smtpd", "192.0.2.2"), 2, "a DISCONNECT for nothing held is ignored")
for name, fields in [("missing field", ["smtpd"]), ("empty address", ["smtpd", ""]),
                     ("int field", [1, 2])]:
    d = conn()
    d.send(CONNECT, 0, fields)
    try:
        got = d.recv(timeout=10)
    except (OSError, EOFError, ValueError):
        got = None
    is_(got, None, "malformed (%s): dropped" % name)
    d.close()
is_(count(c, "smtpd", "192.0.2.1"), 2, "anvil still serves the others")
# One client may hold 1000 sessions, not more: the next one drops it, and
# that releases all it held.
e = conn()
replies = [count(e, "smtpd", "203.0.113.7") for _ in range(1000)]
is_(replies[-1], 1000, "a client holds 1000 sessions")
e.send(CONNECT, 0, ["smtpd", "203.0.113.7"])
try:
    got = e.recv(timeout=10)
except (OSError, EOFError, ValueError):
    got = None
is_(got, None, "the 1001st drops it")
e.close()
ok(inst.wait_for(lambda: count(c, "smtpd", "203.0.113.7") == 1, timeout=10),
   "and its sessions are released") or diag(inst.log()[-500:])
pids = inst.service_pids("anvil")
is_(len(pids), 1, "one anvil process")
owner = pwd.getpwnam("posthorn")
is_(proc_status(pids[0])["Uid"][0], str(owner.pw_uid), "anvil runs as mail_owner")
is_(proc_root(pids[0]), os.path.join(inst.spool, "empty"), "chrooted into the empty directory")
nobody = pwd.getpwnam("nobody")
try:
    d = ipcframe.connect_as(path, nobody.pw_uid, nobody.pw_gid, [owner.pw_gid])
    d.hello("anvil", 1)
    refused = False
except (OSError, EOFError, ValueError):
    refused = True
ok(refused, "other uids are refused")
inst.cleanup()
done()
