#!/usr/bin/env python3
"""t/64-sendmail.t - local submission: sendmail, mailq and newaliases
through maildrop/ and pickup, on a real instance, run as root and as an
ordinary user.

Covers: sendmail is setgid posthorn-drop and not setuid after start;
root's plain submission (header completed: From, Date, Message-ID; the
local Received: line); a cron-style "sendmail -FCronDaemon -i -B8BITMIME
-oem user"; "-t" with To/Cc/Bcc (every one gets it, Bcc: is gone,
command-line recipients are added) and with Resent- fields; "." ends the
input without -i and is content with -oi; LF input is stored CRLF
byte-exact with 8-bit text; a user's submission carries its uid; only
root may name another sender (77, nothing queued), a user may use their
own +tag address or <>; "-bs" on stdin/stdout; s-nail (mail(1)) to root
lands in the Maildir of root's alias target; the usage errors (64) and a
configuration that is not root's (78); a message over message_size_limit
(65); unknown options ignored with a warning; a message cleanup
refuses after sendmail accepted it (too many hops) bounced to the sender,
or kept in corrupt/ when the sender is <>; submitting while Posthorn is stopped, listed by mailq, delivered
after start; "mailq" by a user through showq shows a deferred message,
and says the report is unavailable while Posthorn is stopped;
"newaliases" (a link to sendmail) after an edit takes effect without a
restart; maildrop files that are not sendmail's (garbage, a uid that is
not the owner's) go to corrupt/ and nothing is delivered from them;
pickup and showq run as mail_owner chrooted into the spool.
"""
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from posthorn import BUILD, Instance, proc_root, proc_status  # noqa: E402
from tap import diag, done, is_, like, ok  # noqa: E402

SENDMAIL = os.path.join(BUILD, "sbin", "sendmail")
DOMAIN = "mail.example.test"

inst = Instance(main_conf={"message_size_limit": "200000", "recipient_delimiter": "+-"})
users = [inst.add_user() for _ in range(4)]
(u1, h1), (u2, h2), (u3, h3), (alice, ha) = users
with open(os.path.join(inst.etc, "aliases"), "a") as f:
    f.write("root: %s\n" % u1 + "slow: \"|exit 75\"\n")
r = inst.mailctl("newaliases")
is_(r.returncode, 0, "newaliases") or diag(r.stderr)
r = inst.start()
ok(r.returncode == 0, "instance starts") or diag(r.stderr)

st = os.stat(SENDMAIL)
ok(st.st_mode & 0o2000 and not st.st_mode & 0o4000 and st.st_uid == 0,
   "sendmail is setgid and not setuid, root's (mode %o)" % (st.st_mode & 0o7777))
import grp  # noqa: E402
is_(grp.getgrgid(st.st_gid).gr_name, "posthorn-drop", "sendmail's group is the setgid_group")


def as_user(user, cmd):
    return ["setpriv", "--reuid", user, "--regid", user, "--init-groups", "--"] + cmd


def sendmail(args, data, user=None, confdir=None):
    cmd = [SENDMAIL, "-C", confdir or inst.etc] + args
    if user:
        cmd = as_user(user, cmd)
    return subprocess.run(cmd, input=data, capture_output=True, timeout=60)


def find(home, marker, n=1, timeout=20):
    def got():
        c = [d for d in inst.maildir(home).values() if marker.encode() in d]
        return c if len(c) >= n else None
    return inst.wait_for(got, timeout=timeout) or []


def header(msg, name):
    head = msg.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in msg else msg.split(b"\n\n", 1)[0]
    out = []
    for line in head.split(b"\n"):
        if line.lower().startswith(name.lower().encode() + b":"):
            out.append(line.split(b":", 1)[1].strip().decode())
    return out


def maildrop():
    return [n for n in os.listdir(os.path.join(inst.spool, "maildrop")) if not n.startswith(".")]


# --- root, plain -------------------------------------------------------
r = sendmail([u1], b"Subject: plain root\n\nhello\n")
is_(r.returncode, 0, "root: sendmail user exits 0") or diag(r.stderr)
m = find(h1, "plain root")
ok(m, "root's message is delivered")
if m:
    m = m[0]
    is_(header(m, "Return-Path"), ["<root@%s>" % DOMAIN], "sender is root@myorigin")
    like(m.decode(), "Received: by %s (Posthorn, from userid 0)" % DOMAIN,
         "a local Received: line with the uid")
    is_(header(m, "From"), ["root <root@%s>" % DOMAIN], "From: added with the passwd name")
    ok(len(header(m, "Date")) == 1 and len(header(m, "Message-ID")) == 1,
       "Date: and Message-ID: added")
    like(header(m, "Message-ID")[0], "@%s>" % DOMAIN, "Message-ID: in myhostname")

# --- cron ----------------------------------------------------------------
cron = (b"From: root (Cron Daemon)\nTo: %s\nSubject: Cron <root@host> run-parts\n"
        b"Content-Type: text/plain; charset=UTF-8\n\n/etc/cron.daily/x:\nt\xc3\xa4glich\n.\ndone\n"
        % u2.encode())
r = sendmail(["-FCronDaemon", "-i", "-B8BITMIME", "-oem", u2], cron)
is_(r.returncode, 0, "cron's sendmail -FCronDaemon -i -B8BITMIME -oem user") or diag(r.stderr)
m = find(h2, "run-parts")
ok(m, "cron's mail is delivered")
if m:
    body = m[0].split(b"\n\n", 1)[1]
    is_(body, b"/etc/cron.daily/x:\nt\xc3\xa4glich\n.\ndone\n",
        "body byte-exact: 8-bit kept, the '.' line kept with -i")
    is_(header(m[0], "From"), ["root (Cron Daemon)"], "the message's own From: is kept")

# cronie's call: -t, with the job's MAILTO in To: and a Bcc: for the admin.
cron = (b"To: %s\nBcc: %s\nSubject: Cron <root@host> nightly\n\noutput\n" % (u1.encode(), u3.encode()))
r = sendmail(["-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t", "-f", "root"], cron)
is_(r.returncode, 0, "cronie's sendmail -FCronDaemon -i -odi -oem -oi -t -f root") or diag(r.stderr)
m1, m3 = find(h1, "nightly"), find(h3, "nightly")
ok(m1 and m3, "the To: and the Bcc: recipient get it")
ok(m1 and m3 and not header(m1[0], "Bcc") and not header(m3[0], "Bcc"), "without the Bcc: line")
ok(m1 and header(m1[0], "From") == ["CronDaemon <root@%s>" % DOMAIN], "From: has the -F name")

# --- -t ----------------------------------------------------------------
msg = (b"From: someone\nTo: %s\nCc: \"Two, User\" <%s@%s>\nBcc: %s\nSubject: minus t\n\nbody\n"
       % (u1.encode(), u2.encode(), DOMAIN.encode(), u3.encode()))
r = sendmail(["-t", "-v", alice], msg)
is_(r.returncode, 0, "sendmail -t") or diag(r.stderr)
like(r.stderr.decode(), "for 4 recipients", "-v: four recipients (To, Cc, Bcc, argument)")
for name, home in ((u1, h1), (u2, h2), (u3, h3), (alice, ha)):
    m = find(home, "minus t")
    ok(m and not header(m[0], "Bcc"), "-t: %s got it, without Bcc:" % name)

msg = (b"To: %s\nResent-To: %s\nSubject: resent\n\nbody\n" % (u1.encode(), u3.encode()))
r = sendmail(["-t"], msg)
is_(r.returncode, 0, "sendmail -t with Resent-To:")
ok(find(h3, "Subject: resent"), "Resent-To: is the recipient")
time.sleep(1)
ok(not [d for d in inst.maildir(h1).values() if b"Subject: resent" in d],
   "To: does not count when Resent- fields are there")

# --- the dot and line ends ------------------------------------------------
r = sendmail([u3], b"Subject: dot ends\n\nbefore\n.\nafter\n")
is_(r.returncode, 0, "without -i")
m = find(h3, "dot ends")
ok(m and b"before\n" in m[0] and b"after" not in m[0], "a lone '.' ends the input without -i")
r = sendmail(["-oi", u3], b"Subject: crlf\r\n\r\nline one\r\n.\r\nline two\n")
m = find(h3, "Subject: crlf")
ok(m and m[0].endswith(b"\n\nline one\n.\nline two\n"),
   "-oi: the '.' line is content; CRLF and LF input give the same lines")

# --- a user ---------------------------------------------------------------
r = sendmail([u1], b"Subject: from alice\n\nhi\n", user=alice)
is_(r.returncode, 0, "a user submits") or diag(r.stderr)
m = find(h1, "from alice")
uid = pwd.getpwnam(alice).pw_uid
ok(m and ("from userid %d)" % uid).encode() in m[0], "Received: names the user's uid")
ok(m and header(m[0], "Return-Path") == ["<%s@%s>" % (alice, DOMAIN)],
   "the envelope sender is the user's own address")

before = len(maildrop())
r = sendmail(["-f", "root@%s" % DOMAIN, u1], b"Subject: forged\n\nx\n", user=alice)
is_(r.returncode, 77, "a user may not send as root (EX_NOPERM)")
like(r.stderr.decode(), "only root may send as another user", "and is told why")
r = sendmail(["-f", "%s@other.example" % alice, u1], b"Subject: forged2\n\nx\n", user=alice)
is_(r.returncode, 77, "nor as their name in a foreign domain")
r = sendmail(["-f", "%s+lists@%s" % (alice, DOMAIN), u1], b"Subject: own tag\n\nx\n", user=alice)
is_(r.returncode, 0, "but as their own +tag address")
r = sendmail(["-f", "<>", u1], b"Subject: null sender\n\nx\n", user=alice)
is_(r.returncode, 0, "and with the null sender")
ok(find(h1, "own tag") and find(h1, "null sender"), "both are delivered")
time.sleep(1)
ok(not [d for d in inst.maildir(h1).values() if b"forged" in d], "nothing forged arrived")

other, _ = inst.add_user(alice + "-x")
r = sendmail(["-f", "%s@%s" % (other, DOMAIN), u1], b"Subject: forged3\n\nx\n", user=alice)
is_(r.returncode, 77, "nor as another account that looks like their own with an extension")
r = sendmail(["-f", "%s-lists@%s" % (alice, DOMAIN), u1], b"Subject: own dash\n\nx\n", user=alice)
is_(r.returncode, 0, "an extension after another delimiter that is nobody's account is fine")

r = sendmail(["-f", "root", u1], b"Subject: root f\n\nx\n")
is_(r.returncode, 0, "root may name any sender")

# --- -bs ------------------------------------------------------------------
p = subprocess.Popen(as_user(alice, [SENDMAIL, "-C", inst.etc, "-bs"]), stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
out, err = p.communicate(("EHLO client\r\nMAIL FROM:<%s@%s>\r\nRCPT TO:<%s@%s>\r\nDATA\r\n"
                          "Subject: via bs\r\n\r\nsmtp on stdin\r\n.\r\n"
                          "MAIL FROM:<root@%s>\r\nQUIT\r\n"
                          % (alice, DOMAIN, u2, DOMAIN, DOMAIN)).encode(), timeout=60)
text = out.decode(errors="replace")
is_(p.returncode, 0, "-bs exits 0")
like(text, "220 ", "-bs: greeting")
like(text, "250 2.0.0 Ok: queued as ", "-bs: the message is queued")
like(text, "553 5.7.1 <root@%s>: Sender address rejected" % DOMAIN,
     "-bs: a user's MAIL FROM another user is refused")
like(text, "221 ", "-bs: QUIT")
ok(find(h2, "via bs"), "-bs: delivered")

# --- mail(1) -----------------------------------------------------------------
if shutil.which("s-nail"):
    r = subprocess.run(["s-nail", "-:/", "-S", "mta=%s" % SENDMAIL, "-s", "to root via mail",
                        "root"], input=b"body from mail(1)\n", capture_output=True, timeout=60,
                       env=dict(os.environ, POSTHORN_CONFIG=inst.etc))
    is_(r.returncode, 0, "s-nail -s subject root") or diag(r.stderr)
    m = find(h1, "to root via mail")
    ok(m and b"body from mail(1)" in m[0], "mail(1) to root lands in root's alias target")
else:
    ok(0, "s-nail is installed (make deps)")
    ok(0, "mail(1) to root")

# --- errors ----------------------------------------------------------------
r = sendmail([], b"Subject: x\n\nx\n")
is_(r.returncode, 64, "no recipients: EX_USAGE")
like(r.stderr.decode(), "no recipients specified", "and says so")
r = sendmail(["-t"], b"Subject: none\n\nx\n")
is_(r.returncode, 65, "-t without recipient headers: EX_DATAERR")
r = sendmail(["-Z", "-oQ/tmp", u1], b"Subject: odd flags\n\nx\n")
is_(r.returncode, 0, "unknown options are no reason to lose the message")
like(r.stderr.decode(), "ignoring unknown option -Z", "but are warned about")
ok(find(h1, "odd flags"), "and the message is delivered")
r = sendmail(["-V", "id\x01x", u1], b"x\n")
is_(r.returncode, 64, "an envelope ID with a control character is refused")
like(r.stderr.decode(), "bad envelope", "before it reaches maildrop/")
r = sendmail(["user@"], b"x\n")
is_(r.returncode, 64, "a recipient without a domain part after '@' is a usage error")
r = sendmail(["-N", "sometimes", u1], b"x\n")
is_(r.returncode, 64, "a bad -N")
r = sendmail([u1], b"Subject: big\n\n" + b"x" * 250000 + b"\n")
is_(r.returncode, 65, "over message_size_limit: EX_DATAERR")
like(r.stderr.decode(), "message_size_limit", "and says which limit")
own = tempfile.mkdtemp(prefix="posthorn-own-")
shutil.copy(os.path.join(inst.etc, "main.conf"), own)
os.chown(own, uid, -1)
os.chmod(own, 0o755)
r = sendmail([u1], b"x\n", user=alice, confdir=own)
is_(r.returncode, 78, "a user's own configuration is refused (EX_CONFIG)")
like(r.stderr.decode(), "not owned by root", "and the reason given")
shutil.rmtree(own)

# --- refused by cleanup after sendmail said yes: the sender is told ------------
hops = b"".join(b"Received: from hop%d.example by hop%d.example; Thu, 1 Jan 2026 00:00:00 +0000\n"
                % (i, i + 1) for i in range(60))
r = sendmail([u1], hops + b"Subject: too many hops\n\nx\n", user=alice)
is_(r.returncode, 0, "sendmail takes a message with 60 Received: lines")
m = find(ha, "Undelivered Mail Returned to Sender")
ok(m and b"message/delivery-status" in m[0] and b"5.4.6" in m[0] and b"too many hops" in m[0],
   "cleanup refuses it (5.4.6) and the sender gets a non-delivery report")
ok(inst.wait_for(lambda: not [n for n in maildrop() if n], timeout=10), "the maildrop file is gone")
time.sleep(1)
ok(not [d for d in inst.maildir(h1).values() if b"too many hops" in d], "nothing was delivered")
like(inst.log(), "refused by cleanup: 554 5.4.6", "pickup logs the refusal and the report")
r = sendmail(["-f", "<>", u1], hops + b"Subject: hops from nobody\n\nx\n", user=alice)
is_(r.returncode, 0, "the same from the null sender")
ok(inst.wait_for(lambda: [n for n in os.listdir(os.path.join(inst.spool, "corrupt"))], timeout=10),
   "has nobody to tell: it is kept in corrupt/")

# --- mailq: a deferred message ------------------------------------------------
MAILQ = os.path.join(inst.dir, "mailq")
os.symlink(SENDMAIL, MAILQ)
r = sendmail(["slow"], b"Subject: deferred one\n\nx\n")
is_(r.returncode, 0, "a message for an alias whose command defers")
q = inst.wait_for(lambda: (lambda o: o if "deferred: 4." in o else None)(
    subprocess.run(as_user(alice, [MAILQ, "-C", inst.etc]), capture_output=True, text=True,
                   timeout=30).stdout), timeout=20)
ok(q, "mailq run by a user shows the deferred message") or diag(repr(q))
if q:
    like(q, "slow@%s" % DOMAIN, "with its recipient")
    like(q, "root@%s" % DOMAIN, "and its sender")
r = subprocess.run(as_user(alice, [SENDMAIL, "-C", inst.etc, "-bp"]), capture_output=True,
                   text=True, timeout=30)
like(r.stdout, "deferred: 4.", "sendmail -bp is mailq")

# --- newaliases ----------------------------------------------------------------
with open(os.path.join(inst.etc, "aliases"), "a") as f:
    f.write("fresh: %s\n" % u3)
NEWALIASES = os.path.join(inst.dir, "newaliases")
os.symlink(SENDMAIL, NEWALIASES)
r = subprocess.run([NEWALIASES, "-C", inst.etc], capture_output=True, text=True, timeout=30)
is_(r.returncode, 0, "newaliases (a link to sendmail)") or diag(r.stderr)
r = sendmail(["fresh"], b"Subject: fresh alias\n\nx\n")
ok(find(h3, "fresh alias"), "the new alias works without a restart")

# --- pickup's checks ----------------------------------------------------------
subprocess.run(as_user(alice, [MAILQ, "-C", inst.etc]), capture_output=True, timeout=30)
pids = inst.service_pids("pickup") + inst.service_pids("showq")
owner = pwd.getpwnam("posthorn")
ok(inst.service_pids("pickup"), "pickup runs")
ok(inst.service_pids("showq"), "showq runs after a mailq")
for pid in pids:
    s = proc_status(pid)
    ok(s["Uid"][:3] == [str(owner.pw_uid)] * 3 and proc_root(pid) == inst.spool,
       "pid %d runs as mail_owner chrooted into the spool" % pid)
r = inst.stop()
bad = "4bZ0000000z99999"
with open(os.path.join(inst.spool, "maildrop", bad), "wb") as f:
    f.write(b"not a queue file\n")
r = sendmail([u1], b"Subject: while stopped\n\nx\n")
is_(r.returncode, 0, "sendmail works while Posthorn is stopped")
waiting = maildrop()
is_(len(waiting), 2, "the message waits in maildrop/ (next to the garbage file)")
good = [n for n in waiting if n != bad][0]
# Names for the doctored copies below: good's with its last letter changed
# (never to good's own last letter: the copy would replace good itself).
false_uid, poison, forged = [good[:-1] + c for c in "ZYXW" if c != good[-1]][:3]
# A copy of the good file given to another user: its uid record lies.
shutil.copy(os.path.join(inst.spool, "maildrop", good), os.path.join(inst.spool, "maildrop",
                                                                     good + "1"))
os.rename(os.path.join(inst.spool, "maildrop", good + "1"),
          os.path.join(inst.spool, "maildrop", false_uid))
os.chown(os.path.join(inst.spool, "maildrop", false_uid), uid, -1)
# And one whose sender has a control character in it: cleanup would drop
# the connection over it, so pickup must set it aside and go on.
with open(os.path.join(inst.spool, "maildrop", good), "rb") as f:
    data = f.read()
with open(os.path.join(inst.spool, "maildrop", poison), "wb") as f:
    f.write(data.replace(b"root@" + DOMAIN.encode(), b"ro\x01t@" + DOMAIN.encode(), 1))
# A user's file whose sender is another user: pickup checks it again.
r = sendmail([u1], b"Subject: alice stopped\n\nx\n", user=alice)
mine = [n for n in maildrop() if n not in (bad, good, poison, false_uid)]
ok(len(mine) == 1, "a user's file waits too")
with open(os.path.join(inst.spool, "maildrop", mine[0]), "rb") as f:
    data = f.read()
with open(os.path.join(inst.spool, "maildrop", forged), "wb") as f:
    f.write(data.replace(("%s@%s" % (alice, DOMAIN)).encode(), ("%s@%s" % (u1, DOMAIN)).encode(), 1))
os.chown(os.path.join(inst.spool, "maildrop", forged), uid, -1)
r = subprocess.run([SENDMAIL, "-C", inst.etc, "-bp"], capture_output=True, text=True, timeout=30)
like(r.stdout, good, "root's mailq lists the maildrop file while stopped")
r = subprocess.run(as_user(alice, [SENDMAIL, "-C", inst.etc, "-bp"]), capture_output=True,
                   text=True, timeout=30)
is_(r.returncode, 69, "a user's mailq while stopped: EX_UNAVAILABLE")
like(r.stderr, "unavailable", "the report is unavailable")
r = inst.start()
ok(r.returncode == 0, "restart")
ok(find(h1, "while stopped"), "the message submitted while stopped is delivered after start")
ok(inst.wait_for(lambda: maildrop() == [], timeout=20), "maildrop/ is empty again")
corrupt = os.listdir(os.path.join(inst.spool, "corrupt"))
ok(bad in corrupt, "the garbage file went to corrupt/")
ok(false_uid in corrupt, "the file with a false uid went to corrupt/")
ok(poison in corrupt, "the file cleanup would refuse went to corrupt/")
ok(forged in corrupt, "a user's file with another user's sender went to corrupt/")
like(inst.log(), "maildrop %s: uid %d may not send as <%s@%s>" % (forged, uid, u1, DOMAIN),
     "pickup names the forged sender")
ok(find(h1, "alice stopped"), "the user's genuine file was delivered")
like(inst.log(), "maildrop %s: not a valid request (bad envelope)" % poison, "and the log says why")
time.sleep(1)
is_(len([d for d in inst.maildir(h1).values() if b"while stopped" in d]), 1,
    "the false copy was not delivered")
log = inst.log()
like(log, "claims uid 0 but is owned by uid %d" % uid, "pickup logs the false uid")
like(log, "uid=%d from=<%s@%s>: queued as" % (uid, alice, DOMAIN), "pickup logs each message")

inst.cleanup()
done()
