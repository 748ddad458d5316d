#!/usr/bin/env python3
"""mailctl queue: list, show, hold, release, flush and delete against a
running instance (requests to qmgr), and list, hold and delete on the
directories while Posthorn is stopped.

Messages are submitted to cleanup over its socket, as smtpd does.  Mail
to a remote domain is deferred (the instance has no working DNS), so it
stays in the queue for the commands to work on; the listing shows why
(defer/ID) and deleting a message removes that too.
"""
import os
import pwd
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from posthorn import MAILCTL, Instance  # noqa: E402
from tap import diag, done, is_, like, ok  # noqa: E402

inst = Instance(main_conf={
    # Deferred mail is retried only when flushed or released.
    "minimal_backoff_time": "1h",
    "maximal_backoff_time": "2h",
})
r = inst.start()
ok(r.returncode == 0, "instance starts") or diag(r.stderr)
user, home = inst.add_user()


def send(rcpt, subject):
    """Submit one message to cleanup, as smtpd would; its queue ID."""
    return inst.submit(("Subject: %s\r\nMessage-ID: <%s@test>\r\n\r\nbody of %s\r\n"
                        % (subject, subject.replace(" ", "-"), subject)).encode(),
                       "sender@example.org", [rcpt])


def queue(*args):
    return inst.mailctl("queue", *args)


def files(d):
    return sorted(os.listdir(os.path.join(inst.spool, d)))


send("remote1@example.org", "first remote")
send("remote2@example.org", "second remote")
send("%s@mail.example.test" % user, "local one")
ok(inst.wait_for(lambda: len(files("deferred")) == 2, timeout=30),
   "both remote messages are deferred") or diag(inst.log()[-3000:])
ok(inst.wait_maildir(home, 1), "the local message was delivered")
first, second = files("deferred")     # IDs sort in creation order

# ---- list ----
r = queue("list")
is_(r.returncode, 0, "queue list succeeds")
out = r.stdout
like(out, "-Queue ID-", "a mailq header line")
ok(re.search(r"^%s\s+\d+ \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d  sender@example.org$" % first,
             out, re.M), "an entry line: ID, size, arrival time, sender") or diag(out)
like(out, "remote1@example.org", "the first recipient")
like(out, "remote2@example.org", "the second recipient")
ok(re.search(r"\(deferred: 4\.\d\.\d, 1 attempt, next ", out), "the deferral and its attempt count") \
    or diag(out)
ok(re.search(r"^ +\((?!deferred:)[^\n]*\w[^\n]*\)\n +\(deferred: 4", out, re.M),
   "each deferred recipient with the reason qmgr gave") or diag(out)
ok(os.path.exists(os.path.join(inst.spool, "defer", first)), "kept in defer/ID")
like(out, "in 2 Requests.", "the summary counts two messages")
ok(out.index(first) < out.index(second), "oldest first")

# ---- show ----
r = queue("show", first)
is_(r.returncode, 0, "queue show succeeds")
like(r.stdout, "*** ENVELOPE RECORDS deferred/%s ***" % first, "show names the file")
like(r.stdout, "sender: sender@example.org", "the sender")
like(r.stdout, "recipient: remote1@example.org (deferred, dsn=4.", "the recipient and status")
like(r.stdout, "client_addr: 127.0.0.1", "the client attributes")
like(r.stdout, "Subject: first remote\n", "the content, with LF line ends")
like(r.stdout, "*** END OF MESSAGE ***", "the end marker")
r = queue("show", "4bYfG80000z1")
is_(r.returncode, 1, "show of an unknown ID fails")
like(r.stderr, "no such message", "and says why")
r = queue("show", "../etc/passwd")
is_(r.returncode, 1, "show refuses what is not a queue ID")

# ---- hold, flush, release ----
r = queue("hold", first)
is_(r.returncode, 0, "hold succeeds") or diag(r.stderr)
ok(inst.wait_for(lambda: files("hold") == [first]), "the message is in hold/")
like(queue("list").stdout, first + "!", "list marks it held with !")
r = queue("flush")
is_(r.returncode, 0, "flush succeeds") or diag(r.stderr)


def attempts(qid):
    m = re.search(r"attempts=(\d+)", queue("show", qid).stdout)
    return int(m.group(1)) if m else 0


ok(inst.wait_for(lambda: attempts(second) >= 2, timeout=20),
   "flush retried the deferred message at once")
inst.wait_for(lambda: second in files("deferred"), timeout=30)
r = queue("flush", "Example.ORG")
is_(r.returncode, 0, "flush DOMAIN succeeds") or diag(r.stderr)
like(r.stdout, "flushing 1 message with mail for Example.ORG", "it counts the messages for it "
     "(not the one on hold)")
ok(inst.wait_for(lambda: attempts(second) >= 3, timeout=30), "and retries them at once")
r = queue("flush", "elsewhere.example")
like(r.stdout, "flushing 0 messages", "flush of a domain without mail: nothing")
r = queue("flush", "bad/domain")
ok(r.returncode == 1 and "not a domain" in r.stderr, "flush refuses what is not a domain")
is_(attempts(first), 1, "but not the held one")
r = queue("release", first)
is_(r.returncode, 0, "release succeeds") or diag(r.stderr)
ok(inst.wait_for(lambda: first not in files("hold") and attempts(first) >= 2, timeout=20),
   "a released message is tried again at once")

# ---- delete ----
r = queue("delete", second)
is_(r.returncode, 0, "delete succeeds") or diag(r.stderr)
ok(inst.wait_for(lambda: second not in queue("list").stdout), "the message is gone")
like(inst.log(), "%s: removed" % second, "and qmgr logged its removal")
ok(not os.path.exists(os.path.join(inst.spool, "defer", second)), "and its defer/ID with it")
r = queue("delete", "4bYfG80000z1")
is_(r.returncode, 1, "delete of an unknown ID fails")

# Only root may change the queue.
nobody = pwd.getpwnam("nobody")


def as_nobody():
    os.setgid(nobody.pw_gid)
    os.setgroups([])
    os.setuid(nobody.pw_uid)


r = subprocess.run([MAILCTL, "-c", inst.etc, "queue", "delete", "all"], preexec_fn=as_nobody,
                   capture_output=True, text=True, timeout=30)
ok(r.returncode != 0, "queue delete as another user is refused")
ok(first in queue("list").stdout, "and changed nothing")

# ---- usage ----
for args in (["queue"], ["queue", "bogus"], ["queue", "show"], ["queue", "delete"],
             ["queue", "list", "extra"], ["queue", "flush", "a", "b"]):
    r = inst.mailctl(*args)
    is_(r.returncode, 2, "usage error: mailctl %s" % " ".join(args))

# ---- while stopped: the directories themselves ----
r = inst.stop()
ok(r.returncode == 0, "stop") or diag(r.stderr)
r = queue("list")
like(r.stdout, first, "list works while Posthorn is stopped")
r = queue("flush")
is_(r.returncode, 1, "flush fails while stopped")
like(r.stderr, "not running", "and says why")
r = queue("hold", "all")
is_(r.returncode, 0, "hold all works while stopped") or diag(r.stderr)
is_(files("hold"), [first], "the message moved to hold/")
r = queue("delete", "all")
is_(r.returncode, 0, "delete all works while stopped") or diag(r.stderr)
like(queue("list").stdout, "Mail queue is empty", "the queue is empty")

inst.cleanup()
done()
