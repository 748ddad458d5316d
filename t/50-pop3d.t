#!/usr/bin/env python3
"""pop3d: POP3 on 110 (STLS) and 995, the whole protocol with raw sockets
and Python's poplib.

 - AUTHORIZATION: greeting, CAPA (STLS, USER, SASL, the RFC 2449 list),
   wrong-state and unknown commands, an over-long line and binary garbage
   (a clear -ERR, the session goes on), PASS before USER, a wrong password
   (-ERR [AUTH], delayed, logged as fail2ban reads it), USER/PASS, AUTH
   PLAIN with and without an initial response, AUTH LOGIN, "*" cancels,
   bad base64, bare AUTH lists the mechanisms; the error limit ends the
   session;
 - pop3d_client_connection_count_limit: one address past it gets -ERR
   [SYS/TEMP] and is logged, and gets in again once a connection ends;
 - plaintext passwords: from 127.0.0.2 to 127.0.0.1 (not the host talking
   to itself) CAPA offers neither USER nor PLAIN/LOGIN and USER is refused
   until STLS; from 127.0.0.1 they are allowed; pop3_plaintext_auth = yes
   allows them everywhere;
 - TRANSACTION: STAT, LIST, LIST n, UIDL, UIDL n, RETR byte-exact for an
   8-bit message, dot-leading lines, CRLF and LF-only files, a lone CR, a
   last line without LF, a file without S=/W= (sizes counted), LIST sizes
   equal to the octets sent; TOP n 0 and TOP n 2; DELE, RSET, NOOP, CAPA;
   bad message numbers; AUTHORIZATION commands refused;
 - UPDATE: QUIT unlinks the deleted messages and moves retrieved ones to
   cur/ with the Seen flag (S among other flags in order); UIDLs are the
   same in the next session; a connection dropped after DELE deletes
   nothing; a session that times out deletes nothing;
 - a second session on one mailbox is -ERR [IN-USE] while the first lives,
   and works once it is gone;
 - pipelining: USER, PASS and TRANSACTION commands in one write, over 110
   and 995 (the input pipelined after PASS goes along with the hand-over);
 - 995: implicit TLS, login, RETR, QUIT; STLS then AUTH PLAIN;
 - a user who never got mail: the Maildir is made, STAT is 0 0.
Every process is cleaned up by PID."""
import base64
import os
import poplib
import pwd
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, unlike, diag, done  # noqa: E402
import posthorn  # noqa: E402
from pop3test import mail_user, Client, login, wire, crlf, put_messages, maildir_name, tls_context  # noqa: E402

PW = "pop-secret-1"
inst = posthorn.Instance(main_conf={"pop3d_error_limit": "10", "pop3d_timeout": "3s",
                                   "pop3d_client_connection_count_limit": "3"})
r = inst.start()
if r.returncode != 0:
    diag(r.stderr)
P110, P995 = inst.port(110), inst.port(995)


alice, alice_home = mail_user(inst, PW)
bob, bob_home = mail_user(inst, PW)
carol, carol_home = mail_user(inst, PW)

# ------------------------------------------------------------ AUTHORIZATION

c = Client(P110)
like(c.greeting.decode(), "+OK", "greeting is +OK")
st, capa = c.multi("CAPA")
capa = capa.decode()
for word in ("TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE", "EXPIRE NEVER",
             "LOGIN-DELAY 0", "USER", "STLS", "IMPLEMENTATION Posthorn"):
    like(capa, "\r\n" + word + "\r\n", "CAPA before login lists " + word)
like(capa, "SASL SCRAM-SHA-256 PLAIN LOGIN", "  and SASL with the mechanisms authd runs")
like(c.cmd("STAT").decode(), "-ERR [AUTH]", "STAT before login: -ERR [AUTH]")
like(c.cmd("RETR 1").decode(), "-ERR [AUTH]", "RETR before login: -ERR [AUTH]")
like(c.cmd("FROB").decode(), "-ERR", "an unknown command: -ERR")
like(c.cmd("PASS x").decode(), "-ERR", "PASS before USER: -ERR")
like(c.cmd("X" * 3000).decode(), "-ERR Line too long", "an over-long line: -ERR")
like(c.cmd("NOOP").decode(), "-ERR [AUTH]", "  and the session goes on")
c.close()

c = Client(P110)
c.send(b"\x00\xff\xfe garbage \x01\r\n")
like(c.line().decode(errors="replace"), "-ERR", "binary garbage: -ERR")
like(c.cmd("CAPA").decode(), "+OK", "  and the session goes on")
c.body()
for i in range(9):
    c.cmd("FROB")
ok(c.closed(), "pop3d_error_limit failed commands end the session")
like(c.buf.decode(errors="replace") + c.line().decode(errors="replace"), "",
     "  (after an -ERR that says so)")
c.close()

c = Client(P110)
is_(c.cmd("USER " + alice), b"+OK Send your password.", "USER: +OK")
t0 = time.time()
r = c.cmd("PASS wrong")
elapsed = time.time() - t0
is_(r, b"-ERR [AUTH] Authentication failed.", "a wrong password: -ERR [AUTH]")
ok(elapsed >= 0.5, "  answered after authd's failure delay (%.2fs)" % elapsed)
ok(inst.wait_for(lambda: "warning: unknown[127.0.0.1]: SASL PLAIN authentication failed: "
                 "authentication failure, user=<%s>" % alice in inst.log(), 10),
   "  logged for fail2ban with the user")
like(c.cmd("NOOP").decode(), "-ERR [AUTH]", "  still not logged in")
c.close()

c = Client(P110)
st, mechs = c.multi("AUTH")
is_(mechs, b"SCRAM-SHA-256\r\nPLAIN\r\nLOGIN\r\n.\r\n", "bare AUTH lists the mechanisms")
like(c.cmd("AUTH FOO").decode(), "-ERR", "an unknown mechanism: -ERR")
like(c.cmd("AUTH PLAIN").decode(), "+ ", "AUTH PLAIN without an initial response: +")
like(c.cmd("*").decode(), "-ERR", "  \"*\" cancels it: -ERR")
like(c.cmd("AUTH PLAIN !!!notbase64").decode(), "-ERR", "a bad initial response: -ERR")
like(c.cmd("AUTH PLAIN").decode(), "+ ", "AUTH PLAIN, then a bad answer")
like(c.cmd("@@@").decode(), "-ERR", "  -ERR")
c.close()

# ------------------------------------------------------------ connection limit

held = [Client(P110) for _ in range(3)]
ok(all(h.greeting.startswith(b"+OK") for h in held),
   "three connections from one address (pop3d_client_connection_count_limit = 3)")
extra = Client(P110)
is_(extra.greeting, b"-ERR [SYS/TEMP] Too many connections from 127.0.0.1.", "  a fourth: -ERR")
ok(extra.closed(), "  and closed")
extra.close()
ok(inst.wait_for(lambda: "too many connections from 127.0.0.1: 4" in inst.log(), 5), "  logged")
held.pop().close()
time.sleep(0.5)
extra = Client(P110, tls=False)
like(extra.greeting.decode(), "+OK", "  once one has gone, a new one is let in")
extra.close()
for h in held:
    h.close()
time.sleep(0.5)

# ------------------------------------------------------------ plaintext rules

c = Client(P110, source="127.0.0.2")
st, capa = c.multi("CAPA")
unlike(capa.decode(), "\r\nUSER\r\n", "from 127.0.0.2: CAPA has no USER")
unlike(capa.decode(), "PLAIN", "  and no PLAIN")
like(capa.decode(), "STLS", "  but STLS")
like(c.cmd("USER " + alice).decode(), "-ERR [AUTH] Plaintext authentication disallowed",
     "  USER is refused")
like(c.cmd("AUTH PLAIN " + base64.b64encode(("\0%s\0%s" % (alice, PW)).encode()).decode())
     .decode(), "-ERR [AUTH] Plaintext", "  so is AUTH PLAIN")
is_(c.cmd("STLS"), b"+OK Begin TLS negotiation now.", "  STLS")
c.starttls()
st, capa = c.multi("CAPA")
like(capa.decode(), "\r\nUSER\r\n", "  after STLS: USER offered")
unlike(capa.decode(), "SCRAM-SHA-256-PLUS", "  no SCRAM-SHA-256-PLUS (mutt would pick it and fail)")
unlike(capa.decode(), "STLS", "  no STLS any more")
like(c.cmd("STLS").decode(), "-ERR", "  a second STLS: -ERR")
is_(c.cmd("USER " + alice), b"+OK Send your password.", "  USER works")
is_(c.cmd("PASS " + PW), b"+OK Logged in.", "  and PASS logs in over TLS")
is_(c.cmd("QUIT"), b"+OK Logging out.", "  QUIT")
c.close()

# ------------------------------------------------------------ TRANSACTION

msgs = {
    "8bit": b"From: a@example.test\nSubject: 8bit\nContent-Type: text/plain; charset=utf-8\n"
            b"Content-Transfer-Encoding: 8bit\n\nGr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\n\xff\xfe raw\n",
    "dots": b"Subject: dots\n\n.leading dot\n..two dots\n.\nend\n",
    "crlf": b"Subject: crlf\r\n\r\nline1\r\nline2\r\n",
    "noeol": b"Subject: noeol\n\nlast line without newline",
    "nosize": b"Subject: nosize\n\nbody\nmore\n",
    "top": b"Subject: top\nX-A: 1\n\nb1\nb2\nb3\nb4\n",
    "cr": b"Subject: cr\n\nabc\rdef\n",
}
order = list(msgs)
names = {}
files = {}
for i, key in enumerate(order):
    data = msgs[key]
    base = maildir_name(i, data, sizes=key not in ("noeol", "nosize"))
    names[key] = base
    files[base] = data
put_messages(alice, alice_home, files)
flagged = b"Subject: flagged\n\nin cur with F\n"
fbase = maildir_name(len(order), flagged)
put_messages(alice, alice_home, {fbase + ":2,F": flagged}, sub="cur")
order.append("flagged")
msgs["flagged"] = flagged
names["flagged"] = fbase

c = login(P110, alice, PW)
total = sum(len(crlf(msgs[k])) for k in order)
is_(c.cmd("STAT").decode(), "+OK %d %d" % (len(order), total), "STAT: count and octets as sent")
st, listing = c.multi("LIST")
want = "".join("%d %d\r\n" % (i + 1, len(crlf(msgs[k]))) for i, k in enumerate(order)) + ".\r\n"
is_(listing.decode(), want, "LIST: every message, sizes with CRLF (also without S=/W=)")
is_(c.cmd("LIST 2").decode(), "+OK 2 %d" % len(crlf(msgs["dots"])), "LIST 2")
like(c.cmd("LIST 99").decode(), "-ERR", "LIST 99: -ERR")
like(c.cmd("LIST 0").decode(), "-ERR", "LIST 0: -ERR")
like(c.cmd("LIST x").decode(), "-ERR", "LIST x: -ERR")
like(c.cmd("LIST 1 2").decode(), "-ERR", "LIST 1 2: -ERR")
st, uidl = c.multi("UIDL")
uidls = [l.split(b" ", 1)[1].decode() for l in uidl.split(b"\r\n")[:-2]]
is_(uidls, [names[k].split(",")[0] for k in order], "UIDL: the Maildir unique names")
is_(c.cmd("UIDL 3").decode(), "+OK 3 " + uidls[2], "UIDL 3")
for i, k in enumerate(order):
    st, body = c.multi("RETR %d" % (i + 1))
    is_((st.decode(), body), ("+OK %d octets" % len(crlf(msgs[k])), wire(msgs[k])),
        "RETR %d (%s) is byte-exact, CRLF and dot-stuffed" % (i + 1, k))
st, body = c.multi("TOP 6 0")
is_(body, b"Subject: top\r\nX-A: 1\r\n\r\n.\r\n", "TOP 6 0: the header and the blank line")
st, body = c.multi("TOP 6 2")
is_(body, b"Subject: top\r\nX-A: 1\r\n\r\nb1\r\nb2\r\n.\r\n", "TOP 6 2: and two body lines")
like(c.cmd("TOP 6").decode(), "-ERR", "TOP without a line count: -ERR")
like(c.cmd("TOP 6 -1").decode(), "-ERR", "TOP with -1 lines: -ERR")
is_(c.cmd("DELE 1"), b"+OK Marked to be deleted.", "DELE 1")
like(c.cmd("DELE 1").decode(), "-ERR", "DELE 1 again: -ERR")
like(c.cmd("RETR 1").decode(), "-ERR", "RETR of a deleted message: -ERR")
like(c.cmd("LIST 1").decode(), "-ERR", "LIST of a deleted message: -ERR")
is_(c.cmd("STAT").decode(), "+OK %d %d" % (len(order) - 1, total - len(crlf(msgs["8bit"]))),
    "STAT leaves it out")
is_(c.cmd("RSET"), b"+OK", "RSET")
is_(c.cmd("STAT").decode(), "+OK %d %d" % (len(order), total), "  undoes the DELE")
is_(c.cmd("NOOP"), b"+OK", "NOOP")
st, capa = c.multi("CAPA")
unlike(capa.decode(), "USER", "CAPA after login: no USER")
unlike(capa.decode(), "SASL", "  no SASL")
like(capa.decode(), "UIDL", "  UIDL")
like(c.cmd("USER " + alice).decode(), "-ERR", "USER after login: -ERR")
like(c.cmd("FROB").decode(), "-ERR", "an unknown command after login: -ERR")

second = Client(P110)
second.cmd("USER " + alice)
like(second.cmd("PASS " + PW).decode(), "-ERR [IN-USE]", "a second session: -ERR [IN-USE]")
ok(second.closed(), "  and it is closed")
second.close()

is_(c.cmd("DELE 1"), b"+OK Marked to be deleted.", "DELE 1")
is_(c.cmd("DELE 2"), b"+OK Marked to be deleted.", "DELE 2")
is_(c.cmd("QUIT"), b"+OK Logging out.", "QUIT")
c.close()
left_new = set(os.listdir(os.path.join(alice_home, "Maildir", "new")))
left_cur = set(os.listdir(os.path.join(alice_home, "Maildir", "cur")))
ok(names["8bit"] not in left_new and not any(n.startswith(names["8bit"]) for n in left_cur),
   "QUIT removed message 1 (its RETR did not keep it)")
ok(not any(n.startswith(names["dots"]) for n in left_new | left_cur), "  and message 2")
is_(left_new, set(), "retrieved messages left new/")
ok(names["top"] + ":2,S" in left_cur, "  for cur/ with the Seen flag")
ok(fbase + ":2,FS" in left_cur, "  S joins other flags in order (:2,FS)")
ok(inst.wait_for(lambda: "logout: user=<%s>, retr=%d/" % (alice, len(order)) in inst.log(), 5),
   "the logout line counts the RETRs")

c = login(P110, alice, PW)
st, uidl = c.multi("UIDL")
uidls2 = [l.split(b" ", 1)[1].decode() for l in uidl.split(b"\r\n")[:-2]]
is_(uidls2, uidls[2:], "the next session: the same UIDLs for the messages left")
is_(c.cmd("DELE 1"), b"+OK Marked to be deleted.", "DELE, then the connection drops")
c.close()
time.sleep(0.5)
c = login(P110, alice, PW)
is_(c.cmd("STAT").decode().split()[1], str(len(order) - 2),
    "  nothing was deleted (and the mailbox was unlocked)")
c.cmd("DELE 1")
ok(c.closed(timeout=10), "a session idle past pop3d_timeout is closed")
c.close()
c = login(P110, alice, PW)
is_(c.cmd("STAT").decode().split()[1], str(len(order) - 2), "  and deleted nothing")
c.cmd("QUIT")
c.close()

# ------------------------------------------------------------ pipelining, TLS

for port, tls, what in ((P110, False, "110"), (P995, True, "995")):
    c = Client(port, tls=tls)
    c.send("USER %s\r\nPASS %s\r\nSTAT\r\nLIST 1\r\nUIDL 1\r\nNOOP\r\nQUIT\r\n" % (alice, PW))
    replies = [c.line() for _ in range(7)]
    is_([r.split(b" ")[0] for r in replies], [b"+OK"] * 7,
        "%s: USER, PASS and five commands pipelined in one write all answered" % what)
    is_(replies[2].decode().split()[1], str(len(order) - 2), "  STAT among them")
    c.close()

p = poplib.POP3_SSL("127.0.0.1", P995, context=tls_context(), timeout=15)
like(p.getwelcome().decode(), "+OK", "995: greeting over implicit TLS")
p.user(alice)
like(p.pass_(PW).decode(), "+OK", "  poplib logs in")
resp, lines, octets = p.retr(1)
is_(b"\r\n".join(lines) + b"\r\n", crlf(msgs["crlf"]), "  and RETRs a message")
like(p.quit().decode(), "+OK", "  QUIT")

p = poplib.POP3("127.0.0.1", P110, timeout=15)
p.stls(tls_context())
like(p._shortcmd("AUTH PLAIN " + base64.b64encode(("\0%s\0%s" % (bob, PW)).encode())
                 .decode()).decode(), "+OK Logged in", "STLS, then AUTH PLAIN with an initial "
     "response")
is_(p.stat(), (0, 0), "  a user who never got mail: STAT 0 0")
ok(os.path.isdir(os.path.join(bob_home, "Maildir", "cur")), "  and the Maildir was made")
st = os.stat(os.path.join(bob_home, "Maildir"))
is_((st.st_uid, st.st_mode & 0o777), (pwd.getpwnam(bob).pw_uid, 0o700),
    "  owned by the user, mode 0700")
p.quit()

c = Client(P110)
is_(c.cmd("AUTH LOGIN"), b"+ " + base64.b64encode(b"Username:"), "AUTH LOGIN asks Username:")
is_(c.cmd(base64.b64encode(carol.encode()).decode()), b"+ " + base64.b64encode(b"Password:"),
    "  then Password:")
is_(c.cmd(base64.b64encode(PW.encode()).decode()), b"+OK Logged in.", "  and logs in")
is_(c.cmd("QUIT"), b"+OK Logging out.", "  QUIT")
c.close()

# ------------------------------------------------------------ pop3_plaintext_auth

inst.set_main({"pop3_plaintext_auth": "yes"})
r = inst.mailctl("reload")
is_(r.returncode, 0, "reload with pop3_plaintext_auth = yes") or diag(r.stderr)
time.sleep(1)
c = Client(P110, source="127.0.0.2")
st, capa = c.multi("CAPA")
like(capa.decode(), "\r\nUSER\r\n", "from 127.0.0.2 with pop3_plaintext_auth = yes: USER offered")
c.cmd("USER " + carol)
is_(c.cmd("PASS " + PW), b"+OK Logged in.", "  and plaintext login works")
c.cmd("QUIT")
c.close()

ok("panic" not in inst.log() and "fatal" not in inst.log(), "no panic or fatal in the log") \
    or diag("\n".join(l for l in inst.log().splitlines() if "panic" in l or "fatal" in l))
inst.stop()
inst.cleanup()
done()
