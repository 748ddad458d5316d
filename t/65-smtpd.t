#!/usr/bin/env python3
"""t/65-smtpd.t - smtpd's protocol against a real instance, over raw sockets
(so that every byte and every reply code is ours to check).

Covers: the greeting and EHLO keywords; HELO; command order (503 5.5.1);
syntax (500/501/555); bare LF in a command; unknown local user (550 5.1.1),
postmaster and <postmaster>; relaying (allowed from mynetworks, 554 5.7.1
from outside); recipient limit (452 4.5.3); SIZE= and data over
message_size_limit (552 5.3.4); a whole transaction PIPELINED in one
write with the replies in order; BDAT in chunks (byte exact, CR LF split
across chunks), BDAT without MAIL staying in sync, BDAT with a bare LF;
STARTTLS (the second EHLO, no second STARTTLS, ESMTPS in Received:) and
the plaintext injection case; every SMTP smuggling variant (refused with
550 5.6.0, the session stays in sync, no second message ever appears);
over-long command lines; the hard error limit (421 4.7.0); the command
timeout (421 4.4.2); the per-client connection limit (421 4.7.0); VRFY
(252); AUTH (503); DSN parameters reaching the success report; 421 on
shutdown; and the log lines admins grep for.
"""
import email
import os
import pwd
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from posthorn import Instance, free_port  # noqa: E402
from tap import diag, done, is_, like, ok  # noqa: E402

# 127.0.0.1 is trusted (mynetworks); connections from 127.0.0.2 are not.
inst = Instance(main_conf={
    "mynetworks": "127.0.0.1/32, [::1]/128",
    "smtpd_recipient_limit": "3",
    "message_size_limit": "20000",
    "smtpd_error_sleep_time": "0",
    "smtpd_hard_error_limit": "6",
    "smtpd_timeout": "3s",
    "smtpd_client_connection_count_limit": "2",
})
# A second smtpd with TLS from the first byte, on a port of its own (465
# is submission's).
SMTPS_PORT = free_port()
with open(os.path.join(inst.etc, "master.conf"), "a") as f:
    f.write("127.0.0.1:%d inet n - - smtpd -o smtpd_tls_wrappermode=yes\n" % SMTPS_PORT)
r = inst.start()
ok(r.returncode == 0, "instance starts") or diag(r.stderr)
user, home = inst.add_user()
rcpt = "%s@mail.example.test" % user
port = inst.port(25)
OUTSIDE = "127.0.0.2"


class Conv:
    """One SMTP conversation on a raw socket."""

    def __init__(self, src="127.0.0.1", greet=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15,
                                             source_address=(src, 0))
        self.buf = b""
        if greet:
            self.greeting = self.reply()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _line(self):
        while b"\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError("connection closed")
            self.buf += d
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        """(code, [text lines]) of one reply; (None, []) at EOF."""
        lines = []
        try:
            while True:
                line = self._line()
                lines.append(line[4:])
                if len(line) < 4 or line[3] != "-":
                    return int(line[:3]), lines
        except (EOFError, ConnectionResetError, socket.timeout):
            return None, lines

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def code(self, line):
        return self.cmd(line)[0]

    def closed(self, timeout=5):
        """True if the server closed the connection."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, socket.timeout):
            return False

    def starttls(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(self.sock, server_hostname="mail.example.test")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def wait_subject(subject, timeout=20):
    def find():
        return [d for d in inst.maildir(home).values()
                if ("\nSubject: %s\n" % subject).encode() in d]
    return inst.wait_for(find, timeout=timeout) or []


def count_subject(subject):
    return len([d for d in inst.maildir(home).values()
                if ("\nSubject: %s\n" % subject).encode() in d])


# ---- greeting, EHLO, HELO ----
c = Conv()
is_(c.greeting, (220, ["mail.example.test ESMTP Posthorn"]), "220 greeting with smtpd_banner")
code, lines = c.cmd("EHLO client.example.org")
is_(code, 250, "EHLO: 250")
is_(lines[0], "mail.example.test", "EHLO: first line is myhostname")
for kw in ("PIPELINING", "SIZE 20000", "STARTTLS", "ENHANCEDSTATUSCODES", "8BITMIME", "DSN",
           "SMTPUTF8", "CHUNKING"):
    ok(kw in lines[1:], "EHLO offers %s" % kw)
ok("VRFY" not in lines, "VRFY is not offered while disable_vrfy_command = yes")
is_(c.cmd("HELO client.example.org"), (250, ["mail.example.test"]), "HELO: 250 myhostname")
is_(c.code("MAIL FROM:<a@example.org> BODY=8BITMIME"), 555,
    "after HELO, ESMTP parameters are refused (555)")
is_(c.cmd("NOOP"), (250, ["2.0.0 Ok"]), "NOOP: 250 2.0.0")
is_(c.cmd("VRFY root")[0], 252, "VRFY: 252 (disable_vrfy_command)")
is_(c.cmd("AUTH PLAIN AGF1dGgAcHc="), (503, ["5.5.1 Error: authentication not enabled"]),
    "AUTH on the MX port: 503 5.5.1")
is_(c.code("HELP"), 214, "HELP: 214")
is_(c.cmd("QUIT"), (221, ["2.0.0 Bye"]), "QUIT: 221 2.0.0 Bye")
ok(c.closed(), "and the connection is closed")
c.close()

# ---- command order and syntax ----
c = Conv()
c.cmd("EHLO client.example.org")
is_(c.cmd("RCPT TO:<%s>" % rcpt), (503, ["5.5.1 Error: need MAIL command"]),
    "RCPT before MAIL: 503 5.5.1")
is_(c.cmd("DATA")[1], ["5.5.1 Error: need MAIL command"], "DATA before MAIL: 503 5.5.1")
is_(c.code("MAIL FROM:<a@example.org>"), 250, "MAIL: 250")
is_(c.cmd("MAIL FROM:<a@example.org>"), (503, ["5.5.1 Error: nested MAIL command"]),
    "a second MAIL: 503 5.5.1")
is_(c.cmd("DATA"), (554, ["5.5.1 Error: no valid recipients"]), "DATA without a recipient: 554 5.5.1")
is_(c.cmd("RSET"), (250, ["2.0.0 Ok"]), "RSET: 250 2.0.0")
c.close()
c = Conv()
c.cmd("EHLO client.example.org")
is_(c.code("MAIL FROM:a@example.org"), 501, "MAIL without angle brackets: 501")
is_(c.code("FROB"), 500, "an unknown command: 500")
c.send("NOOP\n")
is_(c.reply()[0], 500, "a command ending in a bare LF: 500")
is_(c.code("NOOP"), 250, "and the session goes on")
c.send("NOOP " + "x" * 3000 + "\r\n")
is_(c.reply(), (500, ["5.5.0 Error: line too long"]), "an over-long command line: 500 5.5.0")
is_(c.code("NOOP"), 250, "and the session is still in sync")
c.close()
# Local parts past RFC 5321's 64 octets (VERP and SRS addresses) are taken,
# up to 256; paths up to 512.
c = Conv()
c.cmd("EHLO client.example.org")
verp = "bounces+" + "x" * 100 + "=example.test@lists.example.org"
is_(c.code("MAIL FROM:<%s>" % verp), 250, "a 132-octet local part in MAIL: 250")
c.cmd("RSET")
code, lines = c.cmd("MAIL FROM:<%s@example.org>" % ("y" * 257))
is_((code, lines[0][:5]), (501, "5.1.7"), "a 257-octet local part: 501 5.1.7")
like(lines[0], "local part too long", "saying why")
c.close()

# ---- recipients ----
c = Conv()
c.cmd("EHLO client.example.org")
c.cmd("MAIL FROM:<a@example.org>")
code, lines = c.cmd("RCPT TO:<no-such-user-xyz@mail.example.test>")
is_((code, lines[0][:5]), (550, "5.1.1"), "an unknown local user: 550 5.1.1")
like(lines[0], "User unknown in local recipient table", "with Postfix's text")
is_(c.code("RCPT TO:<postmaster@mail.example.test>"), 250, "postmaster@ is always accepted")
is_(c.code("RCPT TO:<Postmaster>"), 250, "so is <Postmaster> without a domain")
is_(c.code("RCPT TO:<someone@remote.example>"), 250, "a trusted client (mynetworks) may relay")
is_(c.cmd("RCPT TO:<%s>" % rcpt), (452, ["4.5.3 Error: too many recipients"]),
    "the recipient past smtpd_recipient_limit: 452 4.5.3")
c.cmd("RSET")
c.close()
c = Conv(src=OUTSIDE)
c.cmd("EHLO outside.example.org")
c.cmd("MAIL FROM:<a@example.org>")
is_(c.cmd("RCPT TO:<someone@remote.example>"),
    (554, ["5.7.1 <someone@remote.example>: Relay access denied"]),
    "a client outside mynetworks may not relay: 554 5.7.1")
is_(c.code("RCPT TO:<%s>" % rcpt), 250, "but it may send to a local user")
c.close()

# ---- size ----
c = Conv()
c.cmd("EHLO client.example.org")
is_(c.cmd("MAIL FROM:<a@example.org> SIZE=30000"),
    (552, ["5.3.4 Message size exceeds fixed limit"]), "SIZE= over message_size_limit: 552 5.3.4")
is_(c.code("MAIL FROM:<a@example.org> SIZE=1000"), 250, "SIZE= under the limit: 250")
c.cmd("RCPT TO:<%s>" % rcpt)
is_(c.code("DATA"), 354, "DATA: 354")
c.send("Subject: too big\r\n\r\n" + ("y" * 998 + "\r\n") * 25 + ".\r\n")
is_(c.reply(), (552, ["5.3.4 Message size exceeds fixed limit"]), "data over the limit: 552 5.3.4")
is_(c.code("NOOP"), 250, "the session goes on after an over-size message")
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<%s>" % rcpt)
c.send("BDAT 25000 LAST\r\n" + "z" * 24998 + "\r\n")
is_(c.reply()[0], 552, "BDAT over the limit: 552")
is_(c.code("NOOP"), 250, "and the session is in sync")
c.close()

# ---- a whole transaction pipelined in one write ----
c = Conv()
c.send("EHLO client.example.org\r\nMAIL FROM:<pipe@example.org>\r\nRCPT TO:<%s>\r\n"
       "RCPT TO:<nobody-xyz@mail.example.test>\r\nDATA\r\nSubject: pipelined\r\n\r\n"
       "one write\r\n.\r\nQUIT\r\n" % rcpt)
codes = [c.reply()[0] for _ in range(7)]
is_(codes, [250, 250, 250, 550, 354, 250, 221], "pipelined: every reply, in order")
ok(c.closed(), "and the server closed after QUIT")
c.close()
is_(len(wait_subject("pipelined")), 1, "the pipelined message was delivered")

# ---- BDAT ----
body = b"Subject: chunked\r\n\r\nfirst part\r\nsecond\r\n.dot stays\r\nend\r\n"
cut = body.index(b"\r\nsecond") + 1          # between CR and LF
c = Conv()
c.cmd("EHLO client.example.org")
c.cmd("MAIL FROM:<bdat@example.org> BODY=8BITMIME")
c.cmd("RCPT TO:<%s>" % rcpt)
c.send(b"BDAT %d\r\n" % cut + body[:cut])
is_(c.reply(), (250, ["2.0.0 Ok: %d bytes" % cut]), "BDAT chunk: 250 with its size")
c.send(b"BDAT %d LAST\r\n" % (len(body) - cut) + body[cut:])
code, lines = c.reply()
is_(code, 250, "BDAT LAST: 250")
like(lines[0], "Ok: queued as ", "with the queue ID")
c.cmd("MAIL FROM:<bdat@example.org>")
c.cmd("RCPT TO:<%s>" % rcpt)
c.send(b"BDAT 0 LAST\r\n")
is_(c.reply()[0], 250, "BDAT 0 LAST ends a message that came in DATA-less chunks")
c.send(b"BDAT 9\r\nNOOP\r\nxyz")
is_(c.reply(), (503, ["5.5.1 Error: need MAIL command"]),
    "BDAT without MAIL: 503 5.5.1 after reading its octets")
is_(c.code("NOOP"), 250, "the chunk's octets were not taken as commands")
c.cmd("MAIL FROM:<bdat@example.org>")
c.cmd("RCPT TO:<%s>" % rcpt)
bad = b"Subject: bare lf\r\n\r\nline\nnext\r\n"
c.send(b"BDAT %d LAST\r\n" % len(bad) + bad)
is_(c.reply()[0], 550, "BDAT content with a bare LF: 550")
is_(c.code("DATA"), 503, "the refused BDAT message ended the transaction")
c.close()
got = wait_subject("chunked")
is_(len(got), 1, "the chunked message arrived")
if got:
    ok(got[0].endswith(body.split(b"\r\n\r\n", 1)[1].replace(b"\r\n", b"\n")),
       "byte for byte (no dot-unstuffing in BDAT)")

# ---- STARTTLS ----
c = Conv()
c.cmd("EHLO client.example.org")
is_(c.cmd("STARTTLS"), (220, ["2.0.0 Ready to start TLS"]), "STARTTLS: 220 2.0.0")
c.starttls()
ok(c.sock.version() in ("TLSv1.2", "TLSv1.3"), "TLS 1.2 or later: %s" % c.sock.version())
code, lines = c.cmd("EHLO client.example.org")
ok(code == 250 and "STARTTLS" not in lines, "after TLS, EHLO no longer offers STARTTLS")
is_(c.cmd("STARTTLS"), (554, ["5.5.1 Error: TLS already active"]), "a second STARTTLS: 554 5.5.1")
c.cmd("MAIL FROM:<tls@example.org>")
c.cmd("RCPT TO:<%s>" % rcpt)
c.cmd("DATA")
c.send("Subject: over tls\r\n\r\nsecret\r\n.\r\n")
is_(c.reply()[0], 250, "a message over TLS is queued")
c.cmd("QUIT")
c.close()
got = wait_subject("over tls")
ok(got and b" with ESMTPS id " in got[0] and b"(using TLSv1." in got[0],
   "its Received: says ESMTPS and names the TLS version and cipher")

# smtpd_tls_wrappermode: TLS before the greeting.
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
w = socket.create_connection(("127.0.0.1", SMTPS_PORT), timeout=15)
w = ctx.wrap_socket(w, server_hostname="mail.example.test")
f = w.makefile("rwb")
like(f.readline().decode(), "220 mail.example.test ESMTP", "wrappermode: the greeting comes over TLS")
f.write(b"EHLO client.example.org\r\n")
f.flush()
ehlo = []
while True:
    line = f.readline().decode()
    ehlo.append(line.strip())
    if line[3:4] != "-":
        break
ok(ehlo[-1].startswith("250 ") and "250-STARTTLS" not in ehlo, "and EHLO offers no STARTTLS")
w.close()

# The injection case (CVE-2011-0411): commands pipelined after STARTTLS in
# the same plaintext write must not be executed inside the TLS session.
c = Conv()
c.cmd("EHLO client.example.org")
c.send("STARTTLS\r\nMAIL FROM:<injected@example.org>\r\n")
is_(c.reply()[0], 220, "STARTTLS with an injected command: 220")
c.starttls()
c.cmd("EHLO client.example.org")
is_(c.cmd("RCPT TO:<%s>" % rcpt), (503, ["5.5.1 Error: need MAIL command"]),
    "the injected MAIL was thrown away, not run after the handshake")
c.close()
like(inst.log(), "bytes of plaintext pipelined after STARTTLS", "and the discard is logged")

# ---- SMTP smuggling ----
variants = [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r\n.\r", b"\r.\r\n", b"\r\n.\r\r\n",
            b"\n.\r", b"\r\n..\n"]
for i, v in enumerate(variants):
    c = Conv()
    c.cmd("EHLO client.example.org")
    c.cmd("MAIL FROM:<smuggler@example.org>")
    c.cmd("RCPT TO:<%s>" % rcpt)
    c.cmd("DATA")
    c.send(b"Subject: carrier %d\r\n\r\nhello" % i + v
           + b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<" + rcpt.encode() + b">\r\nDATA\r\n"
           + b"Subject: smuggled %d\r\n\r\nevil\r\n.\r\n" % i)
    # Whatever the server thought of the carrier, the client now sends a
    # clean message; exactly that one may arrive.
    first = c.reply()[0]
    c.cmd("RSET")
    c.cmd("MAIL FROM:<clean@example.org>")
    c.cmd("RCPT TO:<%s>" % rcpt)
    c.cmd("DATA")
    c.send(b"Subject: clean %d\r\n\r\nok\r\n.\r\n" % i)
    is_((first, c.reply()[0]), (550, 250),
        "smuggling %r: the carrier is refused (550), the next message accepted" % v)
    c.cmd("QUIT")
    c.close()
ok(inst.wait_for(lambda: all(count_subject("clean %d" % i) == 1 for i in range(len(variants)))),
   "every clean message arrived, once")
time.sleep(0.5)
is_([i for i in range(len(variants)) if count_subject("smuggled %d" % i) or
     count_subject("carrier %d" % i)], [], "no smuggled or carrier message was ever delivered")

# ---- limits that end the session ----
c = Conv()
codes = [c.code("FROB") for _ in range(6)]
is_(codes, [500] * 6, "six bad commands: 500 each")
is_(c.reply(), (421, ["4.7.0 mail.example.test Error: too many errors"]),
    "then 421 4.7.0 (smtpd_hard_error_limit)")
ok(c.closed(), "and the session is closed")
c.close()
c = Conv()
t0 = time.time()
is_(c.reply(), (421, ["4.4.2 mail.example.test Error: timeout exceeded"]),
    "a silent client gets 421 4.4.2 after smtpd_timeout")
ok(c.closed(), "and is disconnected")
diag("timed out after %.1f s (smtpd_timeout = 3s)" % (time.time() - t0))
c.close()
held = [Conv(src=OUTSIDE), Conv(src=OUTSIDE)]
ok(all(h.greeting[0] == 220 for h in held), "two sessions from one outside address")
third = Conv(src=OUTSIDE)
is_(third.greeting, (421, ["4.7.0 mail.example.test Error: too many connections from 127.0.0.2"]),
    "a third: 421 4.7.0 (smtpd_client_connection_count_limit)")
third.close()
trusted = [Conv(), Conv(), Conv()]
ok(all(t.greeting[0] == 220 for t in trusted), "clients in mynetworks are not limited")
for h in held + trusted:
    h.close()

# ---- subaddressing (recipient_delimiter) ----
c = Conv()
c.cmd("EHLO client.example.org")
c.cmd("MAIL FROM:<tag@example.org>")
is_(c.code("RCPT TO:<%s+lists@mail.example.test>" % user), 250, "user+tag is accepted")
is_(c.code("RCPT TO:<no-such-user-xyz+lists@mail.example.test>"), 550,
    "an unknown user with a tag is not")
c.cmd("DATA")
c.send("Subject: plus tag\r\n\r\nbody\r\n.\r\n")
is_(c.reply()[0], 250, "queued")
c.close()
got = wait_subject("plus tag")
ok(got and ("\nDelivered-To: %s+lists@mail.example.test\n" % user).encode() in got[0],
   "user+tag lands in user's Maildir, Delivered-To: keeps the tag")

# ---- DSN parameters reach the queue and the reports ----
sender_user, sender_home = inst.add_user()
sender = "%s@mail.example.test" % sender_user
c = Conv()
c.cmd("EHLO client.example.org")
is_(c.code("MAIL FROM:<%s> RET=HDRS ENVID=env+2Bid-42" % sender), 250, "MAIL with RET and ENVID")
is_(c.code("RCPT TO:<%s> NOTIFY=SUCCESS ORCPT=rfc822;orig+40example.org" % rcpt), 250,
    "RCPT with NOTIFY and ORCPT")
c.cmd("DATA")
c.send("Subject: dsn params\r\n\r\nbody\r\n.\r\n")
is_(c.reply()[0], 250, "queued")
c.close()


def report():
    for d in inst.maildir(sender_home).values():
        if b"delivery-status" in d:
            return d
    return None


rep = inst.wait_for(report, timeout=20)
ok(rep is not None, "NOTIFY=SUCCESS: the sender got a delivery report")
if rep:
    msg = email.message_from_bytes(rep)
    status = [p for p in msg.walk() if p.get_content_type() == "message/delivery-status"]
    text = status[0].as_string() if status else ""
    like(text, "Original-Envelope-Id: env+id-42", "with the ENVID, decoded")
    like(text, "Original-Recipient: rfc822;orig@example.org", "and the ORCPT")
    like(text, "Action: delivered", "Action: delivered")

# ---- the log ----
log = inst.log()
like(log, "connect from unknown[127.0.0.1]", "log: connect from")
like(log, "NOQUEUE: reject: RCPT from unknown[127.0.0.2]: 554 5.7.1 <someone@remote.example>: "
     "Relay access denied; from=<a@example.org> to=<someone@remote.example> proto=ESMTP "
     "helo=<outside.example.org>", "log: NOQUEUE: reject in Postfix's shape")
like(log, "NOQUEUE: reject: MAIL from unknown[127.0.0.1]: 552 5.3.4 Message size exceeds fixed "
     "limit; from=<a@example.org> proto=ESMTP", "log: a MAIL reject names its sender")
like(log, ": client=unknown[127.0.0.1]", "log: ID: client=")
like(log, "Anonymous TLS connection established from unknown[127.0.0.1]: TLSv1.", "log: TLS")
like(log, "timeout after CONNECT from unknown[127.0.0.1]", "log: timeout after")
like(log, "too many errors after UNKNOWN from unknown[127.0.0.1]", "log: too many errors")
like(log, "disconnect from unknown[127.0.0.1] helo=1 ehlo=1 auth=0/1 mail=0/1 noop=1 vrfy=1 "
     "help=1 quit=1 commands=6/8", "log: disconnect with per-command counts, in Postfix's order")

# ---- VRFY with disable_vrfy_command = no (after a reload) ----
inst.set_main({"disable_vrfy_command": "no"})
r = inst.mailctl("reload")
is_(r.returncode, 0, "reload") or diag(r.stderr)


def vrfy_session():
    c = Conv()
    code, lines = c.cmd("EHLO client.example.org")
    if "VRFY" in lines:
        return c
    c.close()
    return None


c = inst.wait_for(vrfy_session, timeout=10)
ok(c is not None, "after the reload EHLO offers VRFY")
if c:
    is_(c.cmd("VRFY %s" % user), (250, ["2.0.0 <%s@mail.example.test>" % user]),
        "VRFY of a local user: 250 with the full address")
    is_(c.cmd("VRFY <no-such-user-xyz@mail.example.test>")[0], 550, "an unknown one: 550")
    is_(c.cmd("VRFY Some One <postmaster>")[0], 250, "postmaster, in a name-addr form: 250")
    is_(c.cmd("VRFY bad\x01name")[0], 501, "control characters: 501")
    is_(c.cmd("VRFY <x@remote.example>")[0], 252, "a remote address is not verified: 252")
    c.close()

# ---- smtpd_tls_security_level = encrypt, then no usable certificate ----
def session_where(pred):
    def try_one():
        c = Conv()
        code, lines = c.cmd("EHLO client.example.org")
        if pred(c, lines):
            return c
        c.close()
        return None
    return inst.wait_for(try_one, timeout=10)


inst.set_main({"smtpd_tls_security_level": "encrypt"})
inst.mailctl("reload")
c = session_where(lambda c, lines: c.code("MAIL FROM:<a@example.org>") == 530)
ok(c is not None, "encrypt: MAIL before STARTTLS is refused with 530")
if c:
    c.cmd("RSET")
    is_(c.code("STARTTLS"), 220, "encrypt: STARTTLS")
    c.starttls()
    c.cmd("EHLO client.example.org")
    is_(c.code("MAIL FROM:<a@example.org>"), 250, "encrypt: MAIL after TLS is accepted")
    c.close()
inst.set_main({"smtpd_tls_security_level": "may", "smtpd_tls_cert_file": "/nonexistent/cert.pem"})
inst.mailctl("reload")
c = session_where(lambda c, lines: "STARTTLS" not in lines)
ok(c is not None, "without a usable certificate EHLO offers no STARTTLS")
if c:
    is_(c.cmd("STARTTLS"), (502, ["5.5.1 Error: command not implemented"]), "and STARTTLS is 502")
    is_(c.code("MAIL FROM:<a@example.org>"), 250, "but mail is still accepted")
    c.close()
like(inst.log(), "STARTTLS is not offered: cannot load the certificate /nonexistent/cert.pem",
     "the reason is logged")

# A key that another account could change or swap (smtpd reads it as root,
# before the privilege drop) is not read, whatever its contents.
tlsdir = os.path.join(inst.etc, "tls")
key = os.path.join(tlsdir, "key.pem")
inst.set_main({"smtpd_tls_cert_file": os.path.join(tlsdir, "cert.pem"),
               "smtpd_tls_key_file": key})
nobody = pwd.getpwnam("nobody")
cert = os.path.join(tlsdir, "cert.pem")
for what, change, undo, file, culprit in (
        ("a group-writable key", lambda: os.chmod(key, 0o620), lambda: os.chmod(key, 0o600),
         "the private key " + key, key + ": writable by its group"),
        ("the TLS directory owned by another account",
         lambda: os.chown(tlsdir, nobody.pw_uid, nobody.pw_gid), lambda: os.chown(tlsdir, 0, 0),
         "the certificate " + cert, tlsdir + ": not owned by root")):
    change()
    mark = len(inst.log())
    inst.mailctl("reload")
    c = session_where(lambda c, lines: "STARTTLS" not in lines)
    ok(c is not None, "%s: EHLO offers no STARTTLS" % what)
    if c:
        c.close()
    like(inst.log()[mark:], "STARTTLS is not offered: %s is not safe to read as root: %s"
         % (file, culprit), "  and smtpd says why: %s" % culprit)
    undo()
inst.mailctl("reload")
c = session_where(lambda c, lines: "STARTTLS" in lines)
ok(c is not None, "the key safe again: STARTTLS is offered")
if c:
    c.close()

# ---- shutdown: an idle session is told 421 ----
c = Conv()
c.cmd("EHLO client.example.org")
r = inst.stop()
is_(c.reply(), (421, ["4.3.2 mail.example.test Service shutting down"]),
    "mailctl stop: an idle session gets 421 4.3.2")
c.close()

inst.cleanup()
done()
