#!/usr/bin/env python3
"""imapd: IMAP on 143 (STARTTLS) and 993 with raw sockets and Python's
imaplib, every command in every state.

 - not authenticated: greeting with CAPABILITY, STARTTLS, AUTH= list,
   LOGINDISABLED from an address that is not the host's own until TLS;
   LOGIN (quoted and literals), AUTHENTICATE PLAIN with and without an
   initial response, "*" cancels; a wrong password is NO
   [AUTHENTICATIONFAILED] and logged for fail2ban; commands of later
   states and unknown ones are BAD; commands pipelined after LOGIN are
   run by the user's process (the hand-over carries them);
 - authenticated: CAPABILITY, NAMESPACE, ENABLE, ID, LIST (the special-use
   folders made on the first login, \\HasChildren, \\Noselect parents,
   LIST-EXTENDED selection and return options, LIST-STATUS), LSUB,
   CREATE, RENAME, DELETE, SUBSCRIBE, UNSUBSCRIBE, STATUS, APPEND (flags,
   date, MULTIAPPEND, APPENDUID, TRYCREATE, TOOBIG without reading it);
   selected-state commands are BAD;
 - selected: SELECT and EXAMINE replies, FETCH of every item (BODY[]
   byte-exact with CRLF from an LF file, partials, HEADER.FIELDS,
   BODYSTRUCTURE of a multipart, BINARY), STORE (+FLAGS, -FLAGS, FLAGS,
   .SILENT, keywords), SEARCH and UID SEARCH (flags, header, body, sets,
   OR/NOT, ESEARCH RETURN, SEARCHRES $), COPY and MOVE (COPYUID, the
   moved message gone from the source), EXPUNGE, UID EXPUNGE, CLOSE
   expunges and UNSELECT does not, EXAMINE refuses STORE;
 - two sessions on one mailbox: flag changes and expunges reach the other
   one, \\Recent is in exactly one; IDLE hears of a delivery at once;
 - bad input: unbalanced parentheses, 8-bit atoms, 1:*,*:4294967295,
   numbers past the last message, negative and huge literals, an
   over-long line; each a BAD or NO and the session goes on; the error
   limit ends a session.
Every process is cleaned up by PID."""
import base64
import imaplib
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, unlike, diag, done  # noqa: E402
import posthorn  # noqa: E402
from imaptest import Raw, login, mail_user, put_messages, maildir_name, tls_context, crlf  # noqa: E402

PW = "imap-secret-1"
inst = posthorn.Instance(main_conf={"imapd_error_limit": "20", "message_size_limit": "100000"})
r = inst.start()
if r.returncode != 0:
    diag(r.stderr)
P143, P993 = inst.port(143), inst.port(993)
alice, alice_home = mail_user(inst, PW)
bob, bob_home = mail_user(inst, PW)

# ------------------------------------------------------- not authenticated

c = Raw(P143)
like(c.greeting, "* OK [CAPABILITY IMAP4rev1", "greeting carries the capabilities")
like(c.greeting, "STARTTLS", "  STARTTLS among them")
like(c.greeting, "AUTH=PLAIN", "  and AUTH=PLAIN (127.0.0.1 is the host itself)")
u, t = c.cmd("CAPABILITY")
like(t, "OK", "CAPABILITY: OK")
like(u[0] if u else "", "* CAPABILITY IMAP4rev1", "  with the untagged list")
like(c.cmd("SELECT INBOX")[1], "BAD Log in first", "SELECT before login: BAD")
like(c.cmd("FROB")[1], "BAD Unknown command", "an unknown command: BAD")
u, t = c.cmd("ID NIL")
like(t, "OK", "ID before login: OK")
like(" ".join(u), '"name" "Posthorn"', "  it names the implementation")
like(c.cmd("NOOP")[1], "OK", "NOOP: OK")
t0 = time.time()
u, t = c.cmd('LOGIN %s "wrong password"' % alice)
like(t, "NO [AUTHENTICATIONFAILED]", "a wrong password: NO [AUTHENTICATIONFAILED]")
ok(inst.wait_for(lambda: "SASL PLAIN authentication failed" in inst.log()
                 and "user=<%s>" % alice in inst.log(), timeout=10),
   "  logged as fail2ban reads it, with the user name")
u, t = c.cmd("LOGOUT")
like(" ".join(u), "* BYE", "LOGOUT: BYE")
like(t, "OK", "  and OK")
c.close()

# LOGINDISABLED until TLS, for a client that is not the host itself.
c = Raw(P143, source="127.0.0.2")
like(c.greeting, "LOGINDISABLED", "from 127.0.0.2: LOGINDISABLED")
unlike(c.greeting, "AUTH=PLAIN", "  and no AUTH=PLAIN")
like(c.cmd("LOGIN %s %s" % (alice, PW))[1], "NO [PRIVACYREQUIRED]", "  LOGIN refused")
like(c.cmd("STARTTLS")[1], "OK", "STARTTLS: OK")
c.starttls()
u, t = c.cmd("CAPABILITY")
unlike(" ".join(u), "LOGINDISABLED", "  after TLS no LOGINDISABLED")
unlike(" ".join(u), "STARTTLS", "  nor STARTTLS")
like(c.cmd("LOGIN %s %s" % (alice, PW))[1], "OK [CAPABILITY", "  and LOGIN works")
like(c.cmd("SELECT INBOX")[1], "OK [READ-WRITE]", "  the session is served over the TLS proxy")
c.close()

# 993: implicit TLS.
c = Raw(P993, tls=True)
like(c.greeting, "* OK", "993: greeting over TLS")
like(c.cmd("LOGIN %s %s" % (alice, PW))[1], "OK", "993: LOGIN")
like(c.cmd("LIST \"\" INBOX")[1], "OK", "993: LIST")
c.close()

# AUTHENTICATE PLAIN, with SASL-IR and with a continuation; "*" cancels.
plain = base64.b64encode(("\0%s\0%s" % (alice, PW)).encode()).decode()
c = Raw(P143)
like(c.cmd("AUTHENTICATE PLAIN %s" % plain)[1], "OK [CAPABILITY", "AUTHENTICATE PLAIN with SASL-IR")
c.close()
c = Raw(P143)
c.send("x1 AUTHENTICATE PLAIN\r\n")
like(c.line(), "+", "AUTHENTICATE PLAIN: a continuation")
c.send(plain + "\r\n")
like(c.read_until("x1")[1], "x1 OK", "  then OK")
c.close()
c = Raw(P143)
c.send("x1 AUTHENTICATE PLAIN\r\n")
c.line()
c.send("*\r\n")
like(c.read_until("x1")[1], "x1 BAD", "\"*\" cancels: BAD")
like(c.cmd("NOOP")[1], "OK", "  and the session goes on")
# LOGIN with synchronizing literals.
c.send("x2 LOGIN {%d}\r\n" % len(alice))
like(c.line(), "+", "LOGIN with a literal: a continuation")
c.send("%s {%d}\r\n" % (alice, len(PW)))
like(c.line(), "+", "  and one for the second literal")
c.send(PW + "\r\n")
like(c.read_until("x2")[1], "x2 OK", "  logged in")
c.close()

# Pipelined after LOGIN: the user's process runs them.
msg1 = b"From: Alice <alice@example.test>\nTo: bob@example.test\nSubject: first\n" \
       b"Message-ID: <m1@example.test>\nDate: Mon, 7 Dec 2026 10:00:00 +0000\n\nHello there.\n"
put_messages(alice, alice_home, {maildir_name(1, msg1): msg1})
c = Raw(P143)
c.send("p1 LOGIN %s %s\r\np2 SELECT INBOX\r\np3 FETCH 1 (UID FLAGS)\r\n" % (alice, PW))
u, t = c.read_until("p3")
like(t, "p3 OK", "commands pipelined after LOGIN are run")
like(" ".join(u), "* 1 FETCH (UID 1 FLAGS (\\Recent))", "  FETCH answered by the user's process")
c.close()

# --------------------------------------------------------------- authenticated

c = login(P143, alice, PW)
u, t = c.cmd("CAPABILITY")
caps = " ".join(u)
for cap in ("IMAP4rev1", "IDLE", "NAMESPACE", "UIDPLUS", "MOVE", "UNSELECT", "CHILDREN",
            "SPECIAL-USE", "LITERAL+", "ENABLE", "ID", "APPENDLIMIT=100000"):
    like(caps, cap, "CAPABILITY after login lists " + cap)
like(c.cmd("FETCH 1 FLAGS")[1], "BAD No mailbox selected", "FETCH unselected: BAD")
like(c.cmd("EXPUNGE")[1], "BAD No mailbox selected", "EXPUNGE unselected: BAD")
like(c.cmd("LOGIN a b")[1], "BAD Already logged in", "LOGIN again: BAD")
u, t = c.cmd("NAMESPACE")
like(" ".join(u), '* NAMESPACE (("" ".")) NIL NIL', "NAMESPACE: personal, \".\"")
u, t = c.cmd('LIST "" ""')
like(" ".join(u), '* LIST (\\Noselect) "." ""', "LIST \"\" \"\": the delimiter")
u, t = c.cmd('LIST "" "*"')
lst = "\n".join(u)
like(lst, '(\\HasNoChildren) "." "INBOX"', "LIST *: INBOX")
for name, use in (("Sent", "\\Sent"), ("Drafts", "\\Drafts"), ("Trash", "\\Trash"),
                  ("Junk", "\\Junk"), ("Archive", "\\Archive")):
    like(lst, '%s) "." "%s"' % (use, name), "  %s made on the first login, %s" % (name, use))
like(c.cmd("CREATE Projects.2026")[1], "OK", "CREATE Projects.2026")
u, t = c.cmd('LIST "" "Projects*"')
lst = "\n".join(u)
like(lst, '(\\Noselect \\HasChildren) "." "Projects"', "  its parent is \\Noselect \\HasChildren")
like(lst, '(\\HasNoChildren) "." "Projects.2026"', "  and it is listed")
u, t = c.cmd('LIST "" "%"')
unlike("\n".join(u), "Projects.2026", "LIST %: not below the first level")
like(c.cmd("CREATE Projects.2026")[1], "NO [ALREADYEXISTS]", "CREATE again: NO [ALREADYEXISTS]")
like(c.cmd("CREATE INBOX")[1], "NO", "CREATE INBOX: NO")
like(c.cmd("CREATE a..b")[1], "NO", "CREATE with an empty level: NO")
like(c.cmd("CREATE Caf&AOk-")[1], "OK", "CREATE a modified UTF-7 name")
like(c.cmd("CREATE Caf&AOk")[1], "NO", "  a broken one: NO")
like(c.cmd("RENAME Projects.2026 Projects.2027")[1], "OK", "RENAME")
u, t = c.cmd('LIST "" "Projects.*"')
like("\n".join(u), "Projects.2027", "  the new name is listed")
unlike("\n".join(u), "Projects.2026", "  the old one is not")
like(c.cmd("RENAME Nope Other")[1], "NO [NONEXISTENT]", "RENAME of nothing: NO [NONEXISTENT]")
like(c.cmd("SUBSCRIBE Projects.2027")[1], "OK", "SUBSCRIBE")
u, t = c.cmd('LSUB "" "*"')
like("\n".join(u), '"Projects.2027"', "  LSUB lists it")
u, t = c.cmd('LIST (SUBSCRIBED) "" "*"')
like("\n".join(u), '\\Subscribed) "." "Projects.2027"', "  LIST (SUBSCRIBED) marks it")
u, t = c.cmd('LIST "" "*" RETURN (STATUS (MESSAGES UIDNEXT))')
like("\n".join(u), '* STATUS "INBOX" (MESSAGES 1 UIDNEXT 2)', "LIST RETURN (STATUS ...): LIST-STATUS")
u, t = c.cmd('LIST (SPECIAL-USE) "" "*"')
ok(len(u) == 5 and all("\\" in x for x in u), "LIST (SPECIAL-USE): the five special folders")
like(c.cmd("UNSUBSCRIBE Projects.2027")[1], "OK", "UNSUBSCRIBE")
u, t = c.cmd('LSUB "" "Projects*"')
is_(u, [], "  LSUB no longer lists it")
like(c.cmd("DELETE Projects.2027")[1], "OK", "DELETE")
ok(not os.path.exists(os.path.join(alice_home, "Maildir", ".Projects.2027")), "  its Maildir is gone")
like(c.cmd("DELETE INBOX")[1], "NO", "DELETE INBOX: NO")
# A folder open in another session of the same process while it is
# renamed, deleted and created again.
c2 = login(P143, alice, PW)
c.cmd("CREATE Moving")
c.cmd('APPEND Moving {11+}\r\nSubject: m\r\n')
like(c2.cmd("SELECT Moving")[1], "OK", "another session selects Moving")
like(c.cmd("RENAME Moving Moved")[1], "OK", "  RENAME it meanwhile")
u, t = c2.cmd("FETCH 1 BODY.PEEK[HEADER]")
like(" ".join(u), "Subject: m", "  the other session still reads its message")
like(c.cmd('APPEND Moved {11+}\r\nSubject: n\r\n')[1], "OK", "  APPEND to the new name")
u, t = c2.cmd("NOOP")
like(" ".join(u), "* 2 EXISTS", "  reaches the session that had it open before the rename")
like(c.cmd("DELETE Moved")[1], "OK", "  DELETE it")
u, t = c2.cmd("NOOP")
like(" ".join(u), "* 1 EXPUNGE", "  the other session sees its messages expunged")
like(c.cmd("CREATE Moved")[1], "OK", "  CREATE the name again")
like(c.cmd('APPEND Moved {11+}\r\nSubject: o\r\n')[1], "OK [APPENDUID", "  APPEND into the new folder")
u, t = c.cmd("STATUS Moved (MESSAGES)")
like(" ".join(u), "MESSAGES 1", "  which has that one message only")
c2.close()
like(c.cmd("DELETE Nope")[1], "NO [NONEXISTENT]", "DELETE of nothing: NO [NONEXISTENT]")
u, t = c.cmd("STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN SIZE)")
like(" ".join(u), "MESSAGES 1 RECENT 0 UIDNEXT 2 UIDVALIDITY ", "STATUS INBOX")
like(" ".join(u), "UNSEEN 1 SIZE %d" % len(crlf(msg1)), "  UNSEEN and SIZE (STATUS=SIZE)")
like(c.cmd("STATUS Nope (MESSAGES)")[1], "NO [NONEXISTENT]", "STATUS of nothing: NO")
like(c.cmd("STATUS INBOX (BOGUS)")[1], "BAD", "STATUS with a bad item: BAD")
u, t = c.cmd("ENABLE UTF8=ACCEPT")
like(" ".join(u), "* ENABLED UTF8=ACCEPT", "ENABLE UTF8=ACCEPT")

# APPEND.
app = b"From: x@example.test\r\nSubject: appended\r\n\r\nappended body\r\n"
c.send('a1 APPEND Sent (\\Seen $Forwarded) "05-Dec-2026 12:34:56 +0100" {%d}\r\n' % len(app))
like(c.line(), "+", "APPEND: a continuation for the literal")
c.send(app + b"\r\n")
u, t = c.read_until("a1")
like(t, "OK [APPENDUID ", "APPEND: OK [APPENDUID ...]")
c.send('a2 APPEND Sent {%d+}\r\n%s {%d+}\r\n%s\r\n' % (len(app), app.decode(), len(app),
                                                      app.decode()))
u, t = c.read_until("a2")
like(t, "OK [APPENDUID ", "MULTIAPPEND of two with LITERAL+")
like(t, " 2,3] ", "  both UIDs in APPENDUID")
like(c.cmd('APPEND Nope {1+}\r\nx')[1], "NO [TRYCREATE]", "APPEND to nothing: NO [TRYCREATE]")
c.send("a3 APPEND Sent {200000}\r\n")
like(c.line(), "a3 NO [TOOBIG]", "APPEND over APPENDLIMIT: NO [TOOBIG], the literal not asked for")
like(c.cmd("NOOP")[1], "OK", "  the session goes on")
c.send("a4 APPEND Sent {150000+}\r\n" + "x" * 150000 + "\r\n")
like(c.read_until("a4")[1], "a4 NO [TOOBIG]", "a non-synchronizing one: read, thrown away, NO [TOOBIG]")
like(c.cmd("NOOP")[1], "OK", "  the session goes on")
u, t = c.cmd("EXAMINE Sent")
like(t, "OK [READ-ONLY]", "EXAMINE: READ-ONLY")
like(" ".join(u), "* 3 EXISTS", "  the three appended")
u, t = c.cmd("FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE)")
like(" ".join(u), "\\Seen $Forwarded", "  flags and keyword kept")
like(" ".join(u), 'INTERNALDATE "05-Dec-2026', "  the date given")
like(" ".join(u), "RFC822.SIZE %d" % len(app), "  the size as sent")
like(c.cmd("STORE 1 +FLAGS (\\Deleted)")[1], "NO [READ-ONLY]", "STORE in EXAMINE: NO")
like(c.cmd("EXPUNGE")[1], "NO [READ-ONLY]", "EXPUNGE in EXAMINE: NO")
c.close()

# ---------------------------------------------------------------- selected

mp = (b"From: Bob <bob@example.test>\nTo: alice@example.test\nSubject: =?UTF-8?Q?caf=C3=A9?=\n"
      b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"XX\"\n\n"
      b"preamble\n--XX\nContent-Type: text/plain; charset=utf-8\n\nparty at 8\n"
      b"--XX\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
      b"AAECAwQ=\n--XX--\n")
dot = b"Subject: dots\n\n.leading dot\nlone\rCR\nlast line without LF"
put_messages(alice, alice_home, {maildir_name(2, mp): mp, maildir_name(3, dot, sizes=False): dot})
c = login(P143, alice, PW)
u, t = c.cmd("SELECT INBOX")
sel = "\n".join(u)
like(t, "OK [READ-WRITE]", "SELECT: READ-WRITE")
like(sel, "* 3 EXISTS", "  3 EXISTS")
like(sel, "* 2 RECENT", "  2 RECENT (the first one was recent in an earlier session)")
like(sel, "* OK [UIDVALIDITY ", "  UIDVALIDITY")
like(sel, "* OK [UIDNEXT 4]", "  UIDNEXT")
like(sel, "* OK [PERMANENTFLAGS (", "  PERMANENTFLAGS")
like(sel, "* FLAGS (", "  FLAGS")
u, t = c.cmd("FETCH 1 BODY.PEEK[]")
like(u[0], "{%d}\r\n" % len(crlf(msg1)) + crlf(msg1).decode(), "BODY[] byte-exact, CRLF line ends")
u, t = c.cmd("FETCH 3 (RFC822.SIZE BODY.PEEK[])")
dot_wire = dot.replace(b"\n", b"\r\n")     # IMAP adds no line end the file lacks
like(u[0], "RFC822.SIZE %d " % len(dot_wire), "a file without W=: the size is counted")
like(u[0], "{%d}\r\n" % len(dot_wire) + dot_wire.decode() + ")",
     "  dots, a lone CR and a last line without LF sent as they are")
u, t = c.cmd("FETCH 1 BODY.PEEK[]<7.5>")
like(u[0], "BODY[]<7> {5}\r\n" + crlf(msg1).decode()[7:12], "a partial: BODY[]<7>")
u, t = c.cmd("FETCH 1 BODY.PEEK[HEADER.FIELDS (Subject message-id)]")
like(u[0], "Subject: first\r\nMessage-ID: <m1@example.test>\r\n\r\n", "HEADER.FIELDS")
u, t = c.cmd("FETCH 1 (ENVELOPE)")
like(u[0], 'ENVELOPE ("Mon, 7 Dec 2026 10:00:00 +0000" "first" (("Alice" NIL "alice" "example.test"))',
     "ENVELOPE")
u, t = c.cmd("FETCH 2 (BODYSTRUCTURE)")
like(u[0].lower(), '(("text" "plain" ("charset" "utf-8")', "BODYSTRUCTURE of a multipart")
like(u[0].lower(), '"mixed" ("boundary" "xx")', "  with its subtype and boundary")
u, t = c.cmd("FETCH 2 (BINARY.PEEK[2] BINARY.SIZE[2])")
like(u[0], "BINARY[2] ~{5}\r\n\x00\x01\x02\x03\x04", "BINARY[2]: base64 decoded, literal8")
like(u[0], "BINARY.SIZE[2] 5", "  BINARY.SIZE")
u, t = c.cmd("FETCH 1 (FLAGS)")
unlike(u[0], "\\Seen", "PEEK did not set \\Seen")
u, t = c.cmd("FETCH 1 BODY[TEXT]")
like(u[0], "\\Seen", "BODY[TEXT] sets \\Seen, and FLAGS comes with it")
u, t = c.cmd("FETCH 1:* FAST")
is_(len(u), 3, "FETCH 1:* FAST: one reply per message")
u, t = c.cmd("UID FETCH 2:3 FLAGS")
like(u[0], "UID 2", "UID FETCH: UID in every reply")
u, t = c.cmd("STORE 1 +FLAGS (\\Flagged $Work)")
like(u[0], "\\Flagged", "STORE +FLAGS")
like(u[0], "$Work", "  with a keyword")
like(" ".join(u), "* FLAGS (", "  and the new keyword announced in FLAGS")
u, t = c.cmd("STORE 1 -FLAGS.SILENT (\\Flagged)")
is_([x for x in u if "FETCH" in x], [], "STORE .SILENT: no FETCH reply")
u, t = c.cmd("STORE 1 FLAGS (\\Answered)")
like(u[0], "FLAGS (\\Answered)", "STORE FLAGS replaces")
u, t = c.cmd("SEARCH ANSWERED")
like(u[0], "* SEARCH 1", "SEARCH ANSWERED")
c.send(b"s1 SEARCH CHARSET UTF-8 SUBJECT {5}\r\n")
c.line()
c.send("café\r\n".encode())
u, t = c.read_until("s1")
like(u[0] if u else t, "* SEARCH 2", "SEARCH CHARSET UTF-8 SUBJECT of an encoded word")
u, t = c.cmd("SEARCH BODY party")
like(u[0], "* SEARCH 2", "SEARCH BODY in a MIME part")
u, t = c.cmd("SEARCH OR FROM bob ANSWERED")
like(u[0], "* SEARCH 1 2", "SEARCH OR")
u, t = c.cmd("SEARCH NOT FROM bob")
like(u[0], "* SEARCH 1 3", "SEARCH NOT")
u, t = c.cmd("UID SEARCH 2:*")
like(u[0], "* SEARCH 2 3", "UID SEARCH with a set")
u, t = c.cmd("SEARCH RETURN (MIN MAX COUNT) ALL")
like(u[0], "* ESEARCH (TAG \"a", "ESEARCH")
like(u[0], "MIN 1 MAX 3 COUNT 3", "  MIN MAX COUNT")
u, t = c.cmd("SEARCH RETURN (SAVE) UNANSWERED")
u, t = c.cmd("FETCH $ UID")
is_(len(u), 2, "SEARCHRES: FETCH $ names what SEARCH saved")
like(c.cmd("SEARCH FROBNICATE")[1], "BAD", "SEARCH with an unknown key: BAD")
like(c.cmd("SEARCH CHARSET X-NOPE ALL")[1], "NO [BADCHARSET", "an unknown charset: NO [BADCHARSET]")
u, t = c.cmd("COPY 1:2 Archive")
like(t, "OK [COPYUID ", "COPY: COPYUID")
u, t = c.cmd("STATUS Archive (MESSAGES)")
like(u[0], "MESSAGES 2", "  both are in Archive")
u, t = c.cmd("UID MOVE 3 Trash")
like(" ".join(u), "* OK [COPYUID ", "MOVE: COPYUID untagged")
like(" ".join(u), "* 3 EXPUNGE", "  and the message expunged here")
u, t = c.cmd("STATUS Trash (MESSAGES)")
like(u[0], "MESSAGES 1", "  it is in Trash")
like(c.cmd("COPY 1 Nope")[1], "NO [TRYCREATE]", "COPY to nothing: NO [TRYCREATE]")
like(c.cmd("STORE 1:2 +FLAGS.SILENT (\\Deleted)")[1], "OK", "STORE \\Deleted on 1:2")
u, t = c.cmd("UID EXPUNGE 2")
is_(u, ["* 2 EXPUNGE"], "UID EXPUNGE 2 expunges only UID 2")
u, t = c.cmd("UNSELECT")
like(t, "OK", "UNSELECT")
u, t = c.cmd("SELECT INBOX")
like(" ".join(u), "* 1 EXISTS", "  UNSELECT did not expunge")
like(c.cmd("CLOSE")[1], "OK", "CLOSE")
u, t = c.cmd("STATUS INBOX (MESSAGES)")
like(u[0], "MESSAGES 0", "  CLOSE expunged the \\Deleted one")
c.close()

# ----------------------------------------------------------- two sessions

msgs = {}
for i in range(10, 15):
    m = b"Subject: two sessions %d\n\nx\n" % i
    msgs[maildir_name(i, m)] = m
put_messages(bob, bob_home, msgs)
a = login(P143, bob, PW)
b = login(P143, bob, PW)
ua, _ = a.cmd("SELECT INBOX")
ub, _ = b.cmd("SELECT INBOX")
like(" ".join(ua), "* 5 RECENT", "the first session has the 5 as \\Recent")
like(" ".join(ub), "* 0 RECENT", "  the second none")
a.cmd("STORE 2 +FLAGS.SILENT (\\Flagged)")
u, t = b.cmd("NOOP")
like(" ".join(u), "* 2 FETCH (UID 2 FLAGS (\\Flagged))", "a flag set by one session reaches the other")
a.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
a.cmd("EXPUNGE")
u, t = b.cmd("FETCH 1:* UID")
unlike(" ".join(u), "EXPUNGE", "no EXPUNGE during FETCH")
u, t = b.cmd("NOOP")
like(" ".join(u), "* 1 EXPUNGE", "the expunge reaches the other at NOOP")
b.send("i1 IDLE\r\n")
like(b.line(), "+ idling", "IDLE: continuation")
t0 = time.time()
m = b"Subject: while idle\n\nx\n"
put_messages(bob, bob_home, {maildir_name(20, m): m})
line = b.line()
took = time.time() - t0
like(line, "* 5 EXISTS", "IDLE: a delivery shows as EXISTS")
ok(took < 1.0, "  within a second (%.3f s)" % took)
rb = int(b.line().split()[1])
b.send("DONE\r\n")
like(b.read_until("i1")[1], "i1 OK", "DONE ends IDLE")
u, t = a.cmd("NOOP")
like(" ".join(u), "* 5 EXISTS", "the first session sees it too")
ra = [int(x.split()[1]) for x in u if x.endswith(" RECENT")]
ok(rb + (ra[0] if ra else 4) == 5, "\\Recent of the new message in exactly one session (%d + %s)"
   % (rb, ra))
a.close()
b.close()

# ------------------------------------------------------------- bad input

c = login(P143, bob, PW)
c.cmd("SELECT INBOX")
like(c.cmd("FETCH (1 UID")[1], "BAD", "unbalanced parentheses: BAD")
like(c.cmd("FETCH 1 BODY[\xe9]")[1], "BAD", "8-bit in an atom: BAD")
like(c.cmd("FETCH 1:*,*:4294967295 UID")[1], "BAD", "FETCH 1:*,*:4294967295: BAD (no such message)")
u, t = c.cmd("UID FETCH 1:*,*:4294967295 UID")
like(t, "OK", "UID FETCH 1:*,*:4294967295: OK")
is_(len(u), 5, "  each message once")
like(c.cmd("FETCH 99 UID")[1], "BAD", "a number past the last message: BAD")
like(c.cmd("FETCH 0 UID")[1], "BAD", "message number 0: BAD")
u, t = c.cmd("UID FETCH 999 UID")
is_((u, "OK" in t), ([], True), "UID FETCH of a UID not there: OK, nothing")
like(c.cmd("SELECT {-1}")[1], "BAD", "a negative literal: BAD")
c.send("z1 FETCH 1 BODY[] {99999999999}\r\n")
like(c.line(), "z1 NO [TOOBIG]", "a huge literal: NO [TOOBIG]")
like(c.cmd("X" * 70000)[1], "BAD Line too long", "an over-long line: BAD")
like(c.cmd("NOOP")[1], "OK", "  the session goes on")
like(c.cmd("FETCH 1 FROB")[1], "BAD", "an unknown FETCH item: BAD")
like(c.cmd("FETCH 1 BODY[FOO]")[1], "BAD", "an unknown section: BAD")
like(c.cmd("FETCH 1 BODY[HEADERX]")[1], "BAD", "  BODY[HEADERX]: BAD")
like(c.cmd("FETCH 1 BINARY[TEXT]")[1], "BAD", "  BINARY[TEXT]: BAD (part numbers only)")
like(c.cmd("STORE 1 +FLAGS (\\Bogus)")[1], "BAD", "an unknown system flag: BAD")
like(c.cmd("STORE 1 +FLAGS (\\Recent)")[1], "BAD", "\\Recent cannot be stored: BAD")
like(c.cmd("FETCH 1 BODY[1.2.3.4.5.6.7.8.9.10.11.12]")[1], "OK", "a deep part that is not there: OK")
like(c.cmd("NOOP")[1], "OK", "  the session goes on")
c.send("".join("e%d FROB\r\n" % i for i in range(25)))
deadline = time.time() + 10
seen = ""
while time.time() < deadline:
    ln = c.line()
    seen += ln + "\n"
    if ln == "" or ln.startswith("* BYE"):
        break
like(seen, "* BYE Too many invalid commands", "the error limit ends the session with BYE")
ok(c.closed(), "  and closes it")
c.close()

# IMAP4rev2 (RFC 9051) for a client that enables it.
c = login(P143, bob, PW)
u, t = c.cmd("ENABLE IMAP4rev2")
like(" ".join(u), "* ENABLED IMAP4rev2", "ENABLE IMAP4rev2")
u, t = c.cmd("SELECT INBOX")
sel = " ".join(u)
unlike(sel, "RECENT", "  SELECT: no RECENT")
unlike(sel, "[UNSEEN", "  nor UNSEEN")
like(sel, '* LIST (\\HasNoChildren) "." "INBOX"', "  but the mailbox's LIST line")
u, t = c.cmd("FETCH 1:* FLAGS")
unlike(" ".join(u), "\\Recent", "  FETCH: no \\Recent")
u, t = c.cmd("SEARCH ALL")
like(u[0], "* ESEARCH (TAG ", "  SEARCH answered as ESEARCH")
like(u[0], " ALL 1:5", "  with ALL")
u, t = c.cmd("SELECT Trash")
like(" ".join(u), "* OK [CLOSED]", "  a SELECT that closes a mailbox says [CLOSED]")
like(c.cmd("CREATE \"Büro\"")[1], "OK", "  mailbox names in UTF-8")
u, t = c.cmd('LIST "" "B*"')
like(" ".join(u), '"Büro"', "  listed in UTF-8")
ok(os.path.isdir(os.path.join(bob_home, "Maildir", ".B&APw-ro")), "  kept on disk in modified UTF-7")
c.close()

# imaplib end to end.
M = imaplib.IMAP4("127.0.0.1", P143)
M.login(alice, PW)
typ, _ = M.select("Archive")
is_(typ, "OK", "imaplib: select")
typ, data = M.fetch("1", "(RFC822)")
is_(typ, "OK", "imaplib: fetch RFC822")
ok(data[0][1] == crlf(msg1), "  the message as delivered")
M.logout()

inst.cleanup()
done()
