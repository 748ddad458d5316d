#!/usr/bin/env python3
"""submission on 587 (STARTTLS) and 465 (implicit TLS) with AUTH, through
authd, with Python's smtplib as the mail client.

 - before TLS: no AUTH offered, AUTH is 538 5.7.11; MAIL without AUTH is
   530 5.7.0;
 - after STARTTLS: AUTH offered with SCRAM-SHA-256, PLAIN and LOGIN (no
   -PLUS: auth_channel_binding is off by default);
   a wrong password is 535 5.7.8 with the fail2ban-style log line; the
   right one (PLAIN, then LOGIN on another session) is 235;
 - a second AUTH is 503; the sender must be the user's own address (553
   5.7.1 for another's), user+tag and the null sender are fine; an
   authenticated client may relay (RCPT to another domain is 250);
 - a message sent is delivered to a local user, and its log line names
   the login (sasl_method=PLAIN, sasl_username=...);
 - LOGIN's challenges are the base64 of Username: and Password:; an
   unknown mechanism is 504 and the session goes on;
 - 465: implicit TLS, login and send;
 - swaks with STARTTLS and AUTH PLAIN and LOGIN, and a wrong password;
 - smtpd on 25 with smtpd_sasl_auth_enable = yes offers AUTH after
   STARTTLS, and a client that logged in may relay.
Every process is cleaned up by PID."""
import base64
import os
import smtplib
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, diag, done  # noqa: E402
import posthorn  # noqa: E402

PASSWORD = "n0t-a-login-password"
inst = posthorn.Instance(main_conf={"smtpd_sasl_auth_enable": "yes", "mynetworks": "192.0.2.0/24"})
r = inst.start()
if r.returncode != 0:
    diag(r.stderr)
alice, _ = inst.add_user()
bob, bob_home = inst.add_user()
r = subprocess.run([posthorn.MAILCTL, "-c", inst.etc, "user", "add", alice, "--password-stdin"],
                   input=PASSWORD + "\n", capture_output=True, text=True, timeout=60)
is_(r.returncode, 0, "alice gets a mail password") or diag(r.stderr)
domain = "mail.example.test"
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def client(port=587):
    c = smtplib.SMTP("127.0.0.1", inst.port(port), timeout=30)
    c.ehlo("client.example.org")
    return c


c = client()
ok(not c.has_extn("auth"), "587 before STARTTLS: no AUTH offered")
ok(c.has_extn("starttls"), "  STARTTLS is")
is_(c.docmd("AUTH", "PLAIN AGFsaWNlAHg=")[0], 538, "  AUTH is 538 (encryption required)")
is_(c.docmd("MAIL", "FROM:<%s@%s>" % (alice, domain))[0], 530, "  MAIL without AUTH is 530")
c.starttls(context=ctx)
c.ehlo("client.example.org")
mechs = c.esmtp_features.get("auth", "").split()
ok({"PLAIN", "LOGIN", "SCRAM-SHA-256"} <= set(mechs),
   "after STARTTLS: AUTH offers PLAIN, LOGIN and SCRAM-SHA-256 (%s)" % " ".join(mechs))
ok("SCRAM-SHA-256-PLUS" not in mechs, "  not SCRAM-SHA-256-PLUS (auth_channel_binding = no)")
try:
    c.login(alice, "wrong")
    ok(False, "a wrong password is refused")
except smtplib.SMTPAuthenticationError as e:
    is_((e.smtp_code, e.smtp_error[:5]), (535, b"5.7.8"), "a wrong password is 535 5.7.8")
ok(inst.wait_for(lambda: "warning: unknown[127.0.0.1]: SASL PLAIN authentication failed: "
                 "authentication failure" in inst.log(), 10),
   "  logged as fail2ban's postfix filter reads it")
code, _ = c.login(alice, PASSWORD)
is_(code, 235, "the right password: 235")
is_(c.docmd("AUTH", "PLAIN")[0], 503, "a second AUTH: 503")
is_(c.docmd("MAIL", "FROM:<%s@%s>" % (bob, domain))[0], 553, "another user's address: 553")
like(c.docmd("RSET")[1].decode(), "Ok", "RSET")
is_(c.docmd("MAIL", "FROM:<%s+lists@%s>" % (alice, domain))[0], 250, "user+tag: 250")
is_(c.docmd("RCPT", "TO:<someone@elsewhere.example>")[0], 250,
    "an authenticated client relays (RCPT to another domain: 250)")
c.docmd("RSET")
c.sendmail("<>", ["%s@%s" % (bob, domain)], "Subject: bounce-like\r\n\r\nnull sender\r\n")
subject = "sent-by-submission-%d" % os.getpid()
c.sendmail("%s@%s" % (alice, domain), ["%s@%s" % (bob, domain)],
           "From: %s@%s\r\nSubject: %s\r\n\r\nhello\r\n" % (alice, domain, subject))
c.quit()
newdir = os.path.join(bob_home, "Maildir", "new")


def delivered():
    try:
        return any(subject in open(os.path.join(newdir, n), errors="replace").read()
                   for n in os.listdir(newdir))
    except OSError:
        return False


ok(inst.wait_for(delivered, 20), "the message reached bob's Maildir")
like(inst.log(), "client=unknown[127.0.0.1], sasl_method=PLAIN, sasl_username=%s" % alice,
     "its log line names the login")
msg = [open(os.path.join(newdir, n), errors="replace").read() for n in os.listdir(newdir)
       if subject in open(os.path.join(newdir, n), errors="replace").read()]
like(msg[0] if msg else "", "with ESMTPSA", "  and its Received: says ESMTPSA (RFC 3848)")

c = client()
c.starttls(context=ctx)
c.ehlo("client.example.org")
c.user, c.password = alice, PASSWORD
code, _ = c.auth("LOGIN", c.auth_login, initial_response_ok=False)
is_(code, 235, "LOGIN: 235")
c.quit()
# The challenges as RFC 4954 has them: base64 of authd's own words.
c = client()
c.starttls(context=ctx)
c.ehlo("client.example.org")
code, text = c.docmd("AUTH", "LOGIN")
is_((code, text), (334, b"VXNlcm5hbWU6"), "LOGIN's first challenge is base64 of Username:")
code, text = c.docmd(base64.b64encode(alice.encode()).decode())
is_((code, text), (334, b"UGFzc3dvcmQ6"), "  its second of Password:")
is_(c.docmd(base64.b64encode(PASSWORD.encode()).decode())[0], 235, "  then 235")
c.quit()
c = client()
c.starttls(context=ctx)
c.ehlo("client.example.org")
for bad in ("CRAM-MD5", "PL\x1bAIN", "X" * 40):
    is_(c.docmd("AUTH", bad)[0], 504, "AUTH %r: 504 (not offered), answered without authd"
        % bad[:12])
ok("SASL CRAM-MD5 authentication failed" not in inst.log(), "  and no failure is logged for it")
is_(c.login(alice, PASSWORD)[0], 235, "  the session goes on: a login works after them")
c.quit()

c = smtplib.SMTP_SSL("127.0.0.1", inst.port(465), timeout=30, context=ctx)
c.ehlo("client.example.org")
ok("PLAIN" in c.esmtp_features.get("auth", ""), "465: implicit TLS, AUTH offered at once")
is_(c.login(alice, PASSWORD)[0], 235, "  login")
c.sendmail("%s@%s" % (alice, domain), ["%s@%s" % (bob, domain)],
           "Subject: via-465\r\n\r\nhi\r\n")
c.quit()
ok(inst.wait_for(lambda: any("via-465" in open(os.path.join(newdir, n), errors="replace").read()
                             for n in os.listdir(newdir)), 20), "  and its message arrives")
# swaks, as an admin would test it: STARTTLS + AUTH PLAIN and LOGIN.
for mech in ("PLAIN", "LOGIN"):
    r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % inst.port(587), "--tls",
                        "--auth", mech, "--auth-user", alice, "--auth-password", PASSWORD,
                        "--from", "%s@%s" % (alice, domain), "--to", "%s@%s" % (bob, domain),
                        "--header", "Subject: swaks-%s" % mech, "--helo", "client.example.org"],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    is_(r.returncode, 0, "swaks --tls --auth %s sends" % mech) or diag(r.stdout[-1500:])
    like(r.stdout, "235 2.7.0 Authentication successful", "  authenticated")
r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % inst.port(587), "--tls",
                    "--auth", "PLAIN", "--auth-user", alice, "--auth-password", "nope",
                    "--from", "%s@%s" % (alice, domain), "--to", "%s@%s" % (bob, domain)],
                   capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
ok(r.returncode != 0 and "535 5.7.8" in r.stdout, "swaks with a wrong password: 535 5.7.8")
ok(inst.wait_for(lambda: all(any("swaks-" + m in open(os.path.join(newdir, n),
                                                       errors="replace").read()
                                 for n in os.listdir(newdir)) for m in ("PLAIN", "LOGIN")), 20),
   "swaks' messages arrive")
# smtpd on 25 with smtpd_sasl_auth_enable = yes: AUTH after STARTTLS, and a
# client that logged in may relay (without, relaying is refused).
c = smtplib.SMTP("127.0.0.1", inst.port(25), timeout=30)
c.ehlo("client.example.org")
ok(not c.has_extn("auth"), "25 with smtpd_sasl_auth_enable: no AUTH before STARTTLS")
c.starttls(context=ctx)
c.ehlo("client.example.org")
ok("PLAIN" in c.esmtp_features.get("auth", ""), "  offered after it")
c.mail("someone@example.org")
is_(c.rcpt("x@elsewhere.example")[0], 554, "  relaying before AUTH: 554")
c.rset()
is_(c.login(alice, PASSWORD)[0], 235, "  login")
c.mail("anyone@example.org")
is_(c.rcpt("x@elsewhere.example")[0], 250, "  then it may relay")
c.quit()
like(inst.log(), "authd: PLAIN authentication of %s from 127.0.0.1 (smtpd): ok" % alice,
     "  authd names the service smtpd")
ok(PASSWORD not in inst.log(), "the password is never logged")
inst.stop()
inst.cleanup()
done()
