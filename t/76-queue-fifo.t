#!/usr/bin/env python3
"""t/76-queue-fifo.t - names in the queue that are no queue files (issue 10
finding 5): whoever has mail_owner's rights can put a FIFO, a symbolic
link or a second link under a valid queue ID into deferred/, and root
could put another account's file there; root's mailctl, a user's mailq
(through showq) and qmgr must neither hang on them nor take them for mail.

As posthorn (a forked child that setuid()s): mkfifo deferred/ID, a
symbolic link to root's /etc/shadow, a second link to a queue file of
posthorn's own (and, if protected_hardlinks allows, to /etc/shadow); as
root: good queue files given to nobody (one 0644, one 0600, which
posthorn cannot even open: qmgr leaves that one where it is, as any file
it cannot open).  Their mtimes are in the future,
so only a flush makes qmgr look at them.  Then, each under a timeout (the
old code blocked in open() on the FIFO): "mailctl queue list" lists each
as "(corrupt: REASON, not a queue file)" next to a real message, "mailctl
queue show ID" exits 1 with "deferred/ID: REASON", a user's mailq (showq)
lists them too; "mailctl queue flush" is answered, qmgr moves every one to
corrupt/ with a warning, and mail still flows afterwards.
"""
import os
import pwd
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from posthorn import BUILD, Instance  # noqa: E402
from tap import diag, done, is_, like, ok  # noqa: E402

SENDMAIL = os.path.join(BUILD, "sbin", "sendmail")
MKQUEUE = os.path.join(BUILD, "t", "mkqueue")
DOMAIN = "mail.example.test"
TIMEOUT = 20

inst = Instance(main_conf={"queue_run_delay": "1s"})
user, home = inst.add_user()
r = inst.start()
ok(r.returncode == 0, "instance starts") or diag(r.stderr)
owner = pwd.getpwnam("posthorn")
nobody = pwd.getpwnam("nobody")
deferred = os.path.join(inst.spool, "deferred")
corrupt = os.path.join(inst.spool, "corrupt")


def run(cmd, **kw):
    """cmd's CompletedProcess, or None if it did not finish in TIMEOUT."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT,
                              stdin=subprocess.DEVNULL, **kw)
    except subprocess.TimeoutExpired:
        return None


def as_posthorn(fn):
    """Run fn() in a child that is posthorn (uid, gid, groups); its result
    (True/False), False if it raised."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(owner.pw_gid)
            os.setuid(owner.pw_uid)
            os._exit(0 if fn() else 1)
        except BaseException:  # noqa: B036
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def mkqueue(subject):
    p = subprocess.run([MKQUEUE, "-s", "sender@example.org", "-r", "%s@%s" % (user, DOMAIN),
                        inst.spool], input=b"Subject: %s\r\n\r\nx\r\n" % subject.encode(),
                       capture_output=True, timeout=30)
    return p.stdout.decode().strip()


# IDs: valid queue IDs (6 digits seconds, 4 microseconds, 'z', inode) that
# sort before every real message.
fifo_id, link_id, hard_id, other_id, closed_id, shadow_id = ("4bYfG8000%dz%d" % (n, n)
                                                             for n in range(1, 7))
future = time.time() + 86400

# A real message that stays deferred (a remote recipient, no transport).
real = inst.submit(b"Subject: real\r\n\r\nx\r\n", "sender@example.org",
                   ["someone@elsewhere.example"])
ok(inst.wait_for(lambda: real in os.listdir(deferred), timeout=20), "a real message is deferred")

# A queue file of posthorn's own, outside the queue directories qmgr scans
# (tmp/), for the second link.
spare = mkqueue("spare")
spare_tmp = os.path.join(inst.spool, "tmp", "spare")
os.rename(os.path.join(inst.spool, "incoming", spare), spare_tmp)
os.chown(spare_tmp, owner.pw_uid, owner.pw_gid)


def plant():
    os.mkfifo(os.path.join(deferred, fifo_id), 0o600)
    os.symlink("/etc/shadow", os.path.join(deferred, link_id))
    os.link(spare_tmp, os.path.join(deferred, hard_id))
    for n in (fifo_id, hard_id):
        os.utime(os.path.join(deferred, n), (future, future))
    os.utime(os.path.join(deferred, link_id), (future, future), follow_symlinks=False)
    return True


ok(as_posthorn(plant), "posthorn plants a FIFO, a symbolic link and a second link in deferred/")


def link_shadow():
    os.link("/etc/shadow", os.path.join(deferred, shadow_id))
    return True


shadow_linked = as_posthorn(link_shadow)
diag("a link to /etc/shadow: %s" % ("made (protected_hardlinks is off)" if shadow_linked
                                     else "refused by protected_hardlinks"))
# Another account's queue files: one anyone may read, one only its owner
# (and root) may.
for qid, mode in ((other_id, 0o644), (closed_id, 0o600)):
    other = mkqueue("not posthorn's")
    os.rename(os.path.join(inst.spool, "incoming", other), os.path.join(deferred, qid))
    os.chown(os.path.join(deferred, qid), nobody.pw_uid, nobody.pw_gid)
    os.chmod(os.path.join(deferred, qid), mode)
    os.utime(os.path.join(deferred, qid), (future, future))
bad = {fifo_id: "not a regular file", link_id: "a symbolic link",
       hard_id: "a file with more than one link", other_id: "owned by another account",
       closed_id: "owned by another account"}
if shadow_linked:
    bad[shadow_id] = "a file with more than one link"
# qmgr and showq run as posthorn: the mode keeps them out of the second,
# which they leave where it is (it might be an admin's, about to be
# chowned), as any file they cannot open.
bad_for_posthorn = dict(bad)
del bad_for_posthorn[closed_id]

# ---- root's mailctl ----
try:
    r = inst.mailctl("queue", "list", timeout=TIMEOUT)
except subprocess.TimeoutExpired:
    r = None
ok(r is not None, "root's mailctl queue list finishes")
if r:
    is_(r.returncode, 0, "and exits 0")
    like(r.stdout, real, "it lists the real message")
    for qid, why in bad.items():
        like(r.stdout, "%s  (corrupt: %s, not a queue file)" % (qid, why),
             "it lists %s as %s" % (qid, why))
for qid, why in bad.items():
    try:
        r = inst.mailctl("queue", "show", qid, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        r = None
    ok(r is not None and r.returncode == 1, "mailctl queue show %s finishes with exit 1" % qid)
    if r:
        like(r.stderr, "deferred/%s: %s, not a queue file" % (qid, why), "  and says why")
        ok("root:" not in r.stdout, "  showing nothing of the file")

# ---- a user's mailq, through showq ----
r = run(["setpriv", "--reuid", user, "--regid", user, "--init-groups", "--",
         SENDMAIL, "-C", inst.etc, "-bp"])
ok(r is not None, "a user's mailq finishes")
if r:
    is_(r.returncode, 0, "  and exits 0") or diag(r.stderr)
    like(r.stdout, real, "  listing the real message")
    for qid, why in bad_for_posthorn.items():
        like(r.stdout, "%s  (corrupt: %s, not a queue file)" % (qid, why),
             "  and %s as %s" % (qid, why))
    like(r.stdout, "%s  (corrupt: cannot open: Permission denied)" % closed_id,
         "  and the one it cannot open as such")

# ---- qmgr ----
try:
    r = inst.mailctl("queue", "flush", timeout=TIMEOUT)
except subprocess.TimeoutExpired:
    r = None
ok(r is not None and r.returncode == 0, "mailctl queue flush is answered (qmgr is not stuck)")
ok(inst.wait_for(lambda: all(q in os.listdir(corrupt) for q in bad_for_posthorn),
                 timeout=TIMEOUT),
   "qmgr moves every planted name it can judge to corrupt/") or diag(repr(os.listdir(corrupt)))
log = inst.log()
for qid, why in bad_for_posthorn.items():
    like(log, "%s: not a queue file (%s); moved to corrupt/" % (qid, why), "  and logs %s" % qid)
like(log, "%s: cannot open it: Permission denied" % closed_id,
     "  the one it cannot open is logged")
ok(inst.wait_for(lambda: closed_id in os.listdir(deferred), timeout=TIMEOUT),
   "  and left in deferred/")
ok(real in os.listdir(deferred) or real in os.listdir(os.path.join(inst.spool, "active")),
   "the real message is still in the queue")

# ---- mail still flows ----
qid = inst.submit(b"Subject: after the fifo\r\n\r\nx\r\n", "sender@example.org",
                  ["%s@%s" % (user, DOMAIN)])
ok(inst.wait_for(lambda: any(b"Subject: after the fifo" in d for d in inst.maildir(home).values()),
                 timeout=TIMEOUT), "mail is delivered afterwards")
r = inst.mailctl("queue", "list", timeout=TIMEOUT)
ok(r.returncode == 0 and fifo_id not in r.stdout, "and the listing is clean again")

inst.cleanup()
done()
