#!/usr/bin/env python3
"""t/63-virtual.t - virtual_alias_maps on a real instance: smtpd accepts
the addresses of a virtual alias domain that have an entry and refuses
the others, cleanup rewrites the recipients (through lookupd), local
delivers the result.

Covers: a virtual alias domain declared by a "domain anything" line;
one address to a local user; to a list (one copy each); a catch-all
"@domain"; a chain of two entries; user+tag finding the entry of user;
"a -> a, b" keeping a copy for a; unknown users of the domain refused at
RCPT (550 5.1.1) while other domains stay relay-denied (554 5.7.1); a
loop refused at the end of DATA (554 5.4.6), nothing queued; an entry
that does not parse deferred (451 4.3.0) with a warning; orig_to= in
the log; a rebuilt table used without a restart; sendmail's local
submissions rewritten too.
"""
import os
import smtplib
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from posthorn import BUILD, Instance  # noqa: E402
from tap import diag, done, is_, like, ok  # noqa: E402

DOMAIN = "mail.example.test"
inst = Instance(main_conf={"virtual_alias_maps": "hash:$config_directory/virtual",
                           "mynetworks": "192.0.2.0/24"})
(u1, h1), (u2, h2), (u3, h3) = [inst.add_user() for _ in range(3)]
VIRTUAL = os.path.join(inst.etc, "virtual")
with open(VIRTUAL, "w") as f:
    f.write("# hosted domains\nhosted.example anything\ncatchall.example anything\n"
            "info@hosted.example %s\n" % u1 +
            "sales@hosted.example %s@%s, %s\n" % (u2, DOMAIN, u3) +
            "@catchall.example %s\n" % u2 +
            "chain@hosted.example hop1@hosted.example\nhop1@hosted.example %s\n" % u3 +
            "%s@%s %s@%s, %s\n" % (u1, DOMAIN, u1, DOMAIN, u3) +
            "loopa@hosted.example loopb@hosted.example\nloopb@hosted.example loopa@hosted.example\n"
            "broken@hosted.example \"unclosed\n")
r = inst.mailctl("map", VIRTUAL)
is_(r.returncode, 0, "mailctl map virtual") or diag(r.stderr)
r = inst.start()
ok(r.returncode == 0, "instance starts") or diag(r.stderr)
port = inst.port(25)


def smtp():
    return smtplib.SMTP("127.0.0.1", port, timeout=30)


def rcpt_reply(addr):
    s = smtp()
    s.ehlo("client.example")
    s.mail("sender@client.example")
    code, text = s.rcpt(addr)
    s.quit()
    return code, text.decode()


def send(rcpt, subject):
    s = smtp()
    try:
        s.sendmail("sender@client.example", [rcpt], ("Subject: %s\r\n\r\nbody\r\n" % subject).encode())
        return 250, ""
    except smtplib.SMTPDataError as e:
        return e.smtp_code, e.smtp_error.decode()
    finally:
        s.quit()


def find(home, subject, n=1, timeout=20):
    def got():
        c = [d for d in inst.maildir(home).values() if ("Subject: %s\n" % subject).encode() in d]
        return c if len(c) >= n else None
    return inst.wait_for(got, timeout=timeout) or []


code, text = rcpt_reply("info@hosted.example")
is_(code, 250, "RCPT to a virtual address with an entry")
code, text = rcpt_reply("nobody@hosted.example")
is_(code, 550, "an unknown user of a virtual alias domain is refused")
like(text, "5.1.1 <nobody@hosted.example>: Recipient address rejected: User unknown in virtual "
     "alias table", "with the virtual table named")
code, text = rcpt_reply("someone@elsewhere.example")
is_(code, 554, "another domain is still relaying")
like(text, "Relay access denied", "relay denied")
code, text = rcpt_reply("whoever@catchall.example")
is_(code, 250, "any user of a catch-all domain")

is_(send("info@hosted.example", "to info")[0], 250, "mail to info@ accepted")
ok(find(h1, "to info"), "info@hosted.example reaches its local user")
like(inst.wait_for(lambda: "orig_to=<info@hosted.example>" in inst.log() and inst.log()) or "",
     "orig_to=<info@hosted.example>", "qmgr logs the original recipient")
send("sales@hosted.example", "to sales")
ok(find(h2, "to sales") and find(h3, "to sales"), "a list entry reaches each of its users")
send("Anyone@Catchall.Example", "to catchall")
ok(find(h2, "to catchall"), "the catch-all entry")
send("chain@hosted.example", "to chain")
ok(find(h3, "to chain"), "a chain of entries is followed")
send("info+news@hosted.example", "to tag")
ok(find(h1, "to tag"), "user+tag finds user's entry")
send("%s@%s" % (u1, DOMAIN), "keep a copy")
ok(find(h1, "keep a copy") and find(h3, "keep a copy"), "'a -> a, b' keeps a copy for a")

code, text = send("loopa@hosted.example", "loop")
is_(code, 554, "a virtual alias loop is refused at the end of DATA")
like(text, "5.4.6", "with 5.4.6")
like(text, "virtual alias loop", "and says so")
code, text = send("broken@hosted.example", "broken")
is_(code, 451, "an entry that does not parse defers the message")
like(inst.log(), "virtual_alias_maps: the entry for broken@hosted.example does not parse",
     "and the log names the entry")

with open(VIRTUAL, "a") as f:
    f.write("fresh@hosted.example %s\n" % u2)
r = inst.mailctl("map", VIRTUAL)
is_(r.returncode, 0, "the table is rebuilt")
is_(rcpt_reply("fresh@hosted.example")[0], 250, "smtpd knows the new address without a restart")
send("fresh@hosted.example", "fresh entry")
ok(find(h2, "fresh entry"), "and cleanup rewrites it")

r = subprocess.run([os.path.join(BUILD, "sbin", "sendmail"), "-C", inst.etc, "info@hosted.example"],
                   input=b"Subject: local virtual\n\nx\n", capture_output=True, timeout=60)
is_(r.returncode, 0, "sendmail to a virtual address")
ok(find(h1, "local virtual"), "local submissions are rewritten too")

# A local submission that cleanup defers (the broken entry) stays in
# maildrop/ for later, and the files behind it go on.
SM = os.path.join(BUILD, "sbin", "sendmail")
r = subprocess.run([SM, "-C", inst.etc, "broken@hosted.example"], input=b"Subject: stuck\n\nx\n",
                   capture_output=True, timeout=60)
is_(r.returncode, 0, "sendmail to the broken entry")
ok(inst.wait_for(lambda: "cleanup defers it: 451 4.3.0" in inst.log(), timeout=10),
   "pickup is told to try again later")
r = subprocess.run([SM, "-C", inst.etc, "info@hosted.example"], input=b"Subject: behind it\n\nx\n",
                   capture_output=True, timeout=60)
ok(find(h1, "behind it", timeout=10), "the next message does not wait behind it")
ok([n for n in os.listdir(os.path.join(inst.spool, "maildrop")) if not n.startswith(".")],
   "the deferred one waits in maildrop/")

inst.cleanup()
done()
