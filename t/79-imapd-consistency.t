#!/usr/bin/env python3
"""imapd under imaptest-style load, every session's view checked
(t/lib/imapstress.py: sequence numbers, UIDs, EXPUNGE, EXISTS, \\Recent,
owned keywords, message content, checkpoints where all views must agree).

 - two sessions that stay on one mailbox while `local` delivers into it
   (sendmail, the whole real path) and a third session expunges, with
   checkpoints: no error;
 - ten clients in imaptest's stress mix (LOGIN ... LOGOUT, APPEND, STORE,
   EXPUNGE, COPY) with files dropped into new/ meanwhile: no error, and
   the final check finds every owned keyword as its owner left it;
 - the same over 993 with a second user in the mix.
Figures are printed, never asserted (bench/imap_bench.py measures).
Every process is cleaned up by PID."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, diag, done  # noqa: E402
import posthorn  # noqa: E402
import imapstress  # noqa: E402
from imaptest import mail_user, put_messages, maildir_name  # noqa: E402

PW = "imap-stress-1"
inst = posthorn.Instance()
r = inst.start()
if r.returncode != 0:
    diag(r.stderr)
P143, P993 = inst.port(143), inst.port(993)
alice, alice_home = mail_user(inst, PW)
bob, bob_home = mail_user(inst, PW)
SENDMAIL = os.path.join(posthorn.BUILD, "sbin", "sendmail")
count = [0]


def deliver_local(user):
    count[0] += 1
    msg = ("From: sender@example.org\nTo: %s\nSubject: delivered %d\n"
           "Message-ID: <d%d@example.org>\n\nline one\nline two\n" % (user, count[0], count[0]))
    r = subprocess.run([SENDMAIL, "-C", inst.etc, "-i", user], input=msg.encode(),
                       capture_output=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("sendmail: %s" % r.stderr.decode(errors="replace"))


def deliver_file(user):
    home = alice_home if user == alice else bob_home
    count[0] += 1
    m = b"Subject: dropped %d\n\nx\n" % count[0]
    put_messages(user, home, {maildir_name(1000 + count[0], m): m})


def check(name, res):
    diag("%s: %s" % (name, res.report().splitlines()[0]))
    ok(res.commands > 100, "%s: %d commands ran" % (name, res.commands))
    if not is_(res.error_count, 0, "%s: no consistency error" % name):
        diag(res.report(max_errors=10))


# Two sessions that stay, a third that expunges, local delivering.
res = imapstress.run_stress("127.0.0.1", P143, [(alice, PW)], clients=3, seconds=12,
                            deliver=deliver_local, deliver_every=0.3, expunger=True,
                            logout=False, checkpoint=3, seed=1)
check("3 sessions that stay, local delivering", res)
ok(res.deliveries >= 10, "  %d deliveries by local meanwhile" % res.deliveries)
ok(res.checkpoints >= 2, "  %d checkpoints where all views agreed" % res.checkpoints)

# imaptest's stress mix, files dropped into new/.
res = imapstress.run_stress("127.0.0.1", P143, [(alice, PW)], clients=10, seconds=12,
                            deliver=deliver_file, deliver_every=0.5, copybox="Archive",
                            seed=2)
check("10 clients, stress mix", res)
ok(res.logins > 10, "  %d logins" % res.logins)

# Over 993, two users.
res = imapstress.run_stress("127.0.0.1", P993, [(alice, PW), (bob, PW)], clients=6, seconds=8,
                            tls="implicit", seed=3)
check("6 clients over 993, two users", res)

ok("panic" not in inst.log() and "fatal" not in inst.log(), "no panic or fatal error logged")
inst.cleanup()
done()
