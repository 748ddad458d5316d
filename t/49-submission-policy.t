#!/usr/bin/env python3
"""submission's policy on what an authenticated client sends, on a real
instance with Python's smtplib:

 - sender ownership by smtpd_sender_login_maps: an address the map gives to
   alice is hers (envelope and From:), not bob's; the map only adds owners;
 - the From: and Sender: header fields must be the login's too: a forged
   From: or Sender: is 553 5.7.1 at the end of the data (logged as a
   NOQUEUE reject), a malformed From: is 550 5.6.0, a display name and
   user+tag are fine; a resent message (mutt's bounce) is judged by its
   Resent-From: alone;
 - a message without From:, Date: and Message-ID: gets them from cleanup,
   at the end of its header; a message that has them keeps its own;
 - submission_hide_client = yes: the Received: header names neither the
   client's address nor its HELO, and the log still has the address;
 - per-login hourly limits (a third submission service with
   submission_message_rate_limit = 3, submission_recipient_rate_limit = 5):
   beyond them MAIL and RCPT are 452 4.7.0, logged; another login is not
   held back.
 - auth_system_passwords = yes: authd holds group shadow; PLAIN takes the
   login password (chpasswd) as well as the mail password, not once the
   account is locked (usermod -L), and SCRAM stays the mail password's.
Every process is cleaned up by PID."""
import os
import smtplib
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, unlike, diag, done  # noqa: E402
import posthorn  # noqa: E402

PASSWORD = "policy-test-password"
DOMAIN = "mail.example.test"
inst = posthorn.Instance(main_conf={
    "smtpd_sender_login_maps": "hash:$config_directory/sender_logins",
    "submission_hide_client": "yes",
    "auth_system_passwords": "yes"})
alice, alice_home = inst.add_user()
bob, bob_home = inst.add_user()
carol, _ = inst.add_user()
with open(os.path.join(inst.etc, "sender_logins"), "w") as f:
    f.write("shared@%s %s, someone-else\n@team.example %s\n" % (DOMAIN, alice, alice))
r = inst.mailctl("map", os.path.join(inst.etc, "sender_logins"))
is_(r.returncode, 0, "mailctl map sender_logins") or diag(r.stderr)
limited = posthorn.free_port()
with open(os.path.join(inst.etc, "master.conf"), "a") as f:
    f.write("127.0.0.1:%d inet n - - submission -o submission_message_rate_limit=3 "
            "-o submission_recipient_rate_limit=5\n" % limited)
r = inst.start()
is_(r.returncode, 0, "the instance starts") or diag(r.stderr)
for user in (alice, bob, carol):
    r = subprocess.run([posthorn.MAILCTL, "-c", inst.etc, "user", "add", user,
                        "--password-stdin"], input=PASSWORD + "\n", capture_output=True,
                       text=True, timeout=60)
    is_(r.returncode, 0, "%s gets a mail password" % user) or diag(r.stderr)
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def login(user, port=None):
    c = smtplib.SMTP("127.0.0.1", port or inst.port(587), timeout=30)
    c.ehlo("client.example.org")
    c.starttls(context=ctx)
    c.ehlo("client.example.org")
    c.login(user, PASSWORD)
    return c


def send(c, sender, header, subject, rcpt=None, body="hello\r\n"):
    """Send one message; (code, text) of the end of data (or of MAIL)."""
    code, text = c.mail(sender)
    if code != 250:
        c.rset()
        return code, text.decode()
    c.rcpt(rcpt or "%s@%s" % (bob, DOMAIN))
    msg = header + ("Subject: %s\r\n" % subject if subject else "") + "\r\n" + body
    code, text = c.data(msg.encode())
    return code, text.decode()


def bob_message(subject, timeout=20):
    found = []

    def look():
        d = os.path.join(bob_home, "Maildir", "new")
        for n in os.listdir(d) if os.path.isdir(d) else []:
            text = open(os.path.join(d, n), errors="replace").read()
            if subject in text:
                found.append(text)
                return True
        return False
    inst.wait_for(look, timeout)
    return found[0] if found else ""


# --- ownership by the map and by the header ---
c = login(alice)
is_(send(c, "shared@%s" % DOMAIN, "From: shared@%s\r\n" % DOMAIN, "map-owned")[0], 250,
    "alice may send as shared@ (smtpd_sender_login_maps), envelope and From:")
is_(send(c, "x@team.example", "From: X <x@team.example>\r\n", "map-domain")[0], 250,
    "  and as anyone@team.example (the map's @domain key)")
is_(send(c, "%s@%s" % (alice, DOMAIN), "From: \"Alice A.\" <%s+news@%s>\r\n" % (alice, DOMAIN),
         "tagged-from")[0], 250, "a display name and user+tag in From:: 250")
code, text = send(c, "%s@%s" % (alice, DOMAIN), "From: %s@%s\r\n" % (bob, DOMAIN), "forged-from")
is_(code, 553, "a From: of bob's: 553")
like(text, "5.7.1", "  5.7.1") and like(text, "not owned by user %s" % alice, "  saying why")
ok(inst.wait_for(lambda: "NOQUEUE: reject: END-OF-MESSAGE from" in inst.log()
                 and "<%s@%s>: From: address rejected" % (bob, DOMAIN) in inst.log(), 10),
   "  logged as a NOQUEUE reject at END-OF-MESSAGE")
code, _ = send(c, "%s@%s" % (alice, DOMAIN), "From: %s@%s, %s@%s\r\nSender: %s@%s\r\n"
               % (alice, DOMAIN, bob, DOMAIN, alice, DOMAIN), "two-authors")
is_(code, 553, "a From: with bob's address among two: 553")
code, _ = send(c, "%s@%s" % (alice, DOMAIN), "From: %s@%s\r\nSender: %s@%s\r\n"
               % (alice, DOMAIN, bob, DOMAIN), "forged-sender")
is_(code, 553, "a Sender: of bob's: 553")
code, _ = send(c, "%s@%s" % (alice, DOMAIN), "From: %s@%s\r\nFrom: %s@%s\r\n"
               % (alice, DOMAIN, bob, DOMAIN), "second-from")
is_(code, 553, "a second From: field of bob's: 553")
code, text = send(c, "%s@%s" % (alice, DOMAIN), "From: <unclosed@%s\r\n" % DOMAIN, "bad-from")
is_(code, 550, "a malformed From:: 550")
like(text, "5.6.0", "  5.6.0")
code, _ = send(c, "%s@%s" % (alice, DOMAIN), "Resent-From: %s@%s\r\nFrom: news@elsewhere.example"
               "\r\n" % (alice, DOMAIN), "bounced-on")
is_(code, 250, "a resent message (Resent-From: alice, From: another's): 250")
code, _ = send(c, "%s@%s" % (alice, DOMAIN), "Resent-From: %s@%s\r\nFrom: %s@%s\r\n"
               % (bob, DOMAIN, alice, DOMAIN), "resent-forged")
is_(code, 553, "a Resent-From: of bob's: 553, whatever From: says")
c.quit()
c = login(bob)
is_(c.mail("shared@%s" % DOMAIN)[0], 553, "bob may not send as shared@ (the map names alice)")
c.rset()
is_(send(c, "%s@%s" % (bob, DOMAIN), "From: x@team.example\r\n", "bob-team")[0], 553,
    "  nor with a From: of team.example")
is_(send(c, "%s@%s" % (bob, DOMAIN), "From: %s@%s\r\n" % (bob, DOMAIN), "bob-own")[0], 250,
    "  his own address still works (the map only adds owners)")
c.quit()

# --- completion and privacy ---
c = login(alice)
subject = "bare-%d" % os.getpid()
is_(send(c, "%s@%s" % (alice, DOMAIN), "", subject)[0], 250,
    "a message with only a Subject: is accepted")
keep = "kept-%d" % os.getpid()
is_(send(c, "%s@%s" % (alice, DOMAIN), "From: %s@%s\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
         "Message-ID: <own-id@client.example>\r\n" % (alice, DOMAIN), keep)[0], 250,
    "a complete message too")
c.quit()
msg = bob_message(subject)
ok(msg, "the bare message is delivered")
header, _, body = msg.partition("\n\n")
lines = header.split("\n")
names = [l.split(":")[0].lower() for l in lines if l and not l[0].isspace()]
like(header, "From: <%s@%s>" % (alice, DOMAIN), "  From: added (the envelope sender)")
ok("date" in names and "message-id" in names, "  Date: and Message-ID: added")
like(header, "@%s>" % "mail.example.test", "  the Message-ID names myhostname")
ok(names.index("subject") < names.index("date"), "  at the end of the header, after Subject:")
is_(body.strip(), "hello", "  the body unchanged")
msg = bob_message(keep)
like(msg, "Message-ID: <own-id@client.example>", "a message's own Message-ID is kept")
is_(msg.lower().count("\nmessage-id:"), 1, "  and no second one added")
is_(msg.count("\nDate:"), 1, "  nor a second Date:")
received = msg.split("\n")[msg.split("\n").index(next(l for l in msg.split("\n")
                                                      if l.startswith("Received:")))]
like(received, "Received: by mail.example.test (", "submission_hide_client: Received: by ... only")
unlike(msg.split("\n\n")[0], "127.0.0.1", "  the client's address is nowhere in the header")
unlike(msg.split("\n\n")[0], "client.example.org", "  nor its HELO name")
like(msg, "with ESMTPSA id", "  the protocol is still there")
like(inst.log(), "client=unknown[127.0.0.1], sasl_method=PLAIN, sasl_username=%s" % alice,
     "  the log keeps the address")

# --- per-login hourly limits on the third service ---
c = login(carol, limited)
codes = []
for n in (2, 3, 1):     # 2 + 3 recipients reach the limit of 5; the sixth is over it
    c.mail("%s@%s" % (carol, DOMAIN))
    codes.append([c.rcpt("%s@%s" % (bob, DOMAIN))[0] for _ in range(n)])
    c.rset()
is_(codes, [[250, 250], [250, 250, 250], [452]], "recipients: 5 an hour, the sixth is 452")
code, text = c.mail("%s@%s" % (carol, DOMAIN))
is_(code, 452, "messages: the fourth MAIL in the hour is 452")
like(text.decode(), "4.7.0", "  4.7.0")
like(inst.log(), "user %s is over its limit of 3 messages per hour" % carol, "  logged")
like(inst.log(), "user %s is over its limit of 5 recipients per hour" % carol,
     "  and the recipients' too")
c.quit()
c = login(carol, limited)
is_(c.mail("%s@%s" % (carol, DOMAIN))[0], 452, "a new session of that login is held too")
c.quit()
c = login(bob, limited)
is_(c.mail("%s@%s" % (bob, DOMAIN))[0], 250, "another login is not")
c.quit()

# --- auth_system_passwords ---
import grp  # noqa: E402
LOGIN_PASSWORD = "the-login-password-9"
r = subprocess.run(["chpasswd"], input="%s:%s\n" % (bob, LOGIN_PASSWORD), capture_output=True,
                   text=True, timeout=60)
is_(r.returncode, 0, "bob gets a login password (chpasswd)") or diag(r.stderr)
authd = inst.service_pids("authd")
groups = posthorn.proc_status(authd[0]).get("Groups", []) if authd else []
ok(str(grp.getgrnam("shadow").gr_gid) in groups, "authd holds group shadow (%s)" % groups)


def try_login(user, password, mech="PLAIN"):
    c = smtplib.SMTP("127.0.0.1", inst.port(587), timeout=30)
    c.ehlo("client.example.org")
    c.starttls(context=ctx)
    c.ehlo("client.example.org")
    c.user, c.password = user, password
    try:
        code = c.auth(mech, c.auth_plain if mech == "PLAIN" else c.auth_login)[0]
    except smtplib.SMTPAuthenticationError as e:
        code = e.smtp_code
    c.close()
    return code


is_(try_login(bob, LOGIN_PASSWORD), 235, "PLAIN with the login password: 235")
is_(try_login(bob, LOGIN_PASSWORD, "LOGIN"), 235, "  LOGIN too")
is_(try_login(bob, PASSWORD), 235, "  the mail password still works")
is_(try_login(bob, "not-" + LOGIN_PASSWORD), 535, "  a wrong one does not")
r = subprocess.run(["usermod", "-L", bob], capture_output=True, text=True, timeout=60)
is_(r.returncode, 0, "usermod -L bob") or diag(r.stderr)
is_(try_login(bob, LOGIN_PASSWORD), 535, "a locked account's login password: 535")
is_(try_login(bob, PASSWORD), 235, "  its mail password is separate and still works")
is_(try_login(carol, LOGIN_PASSWORD), 535, "another account with bob's login password: 535")
unlike(inst.log(), LOGIN_PASSWORD, "no password in the log")
inst.stop()
inst.cleanup()
done()
