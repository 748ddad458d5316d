#!/usr/bin/env python3
"""t/40-imapstress-selftest.t - the IMAP consistency checker
(t/lib/imapstress.py) finds what it is meant to find, and nothing in a
well-behaved server.  It needs neither Dovecot nor imapd: the servers are
in this process, on 127.0.0.1.

1. Scripted transcripts (run_commands against a fake server that answers
   each command with fixed lines): a well-behaved one with two sessions, a
   literal, silent and non-silent STOREs of an owned keyword, an EXPUNGE,
   \\Recent in one session and a checkpoint, reports no error and no
   warning; each broken one reports its error: EXPUNGE of seq 0 and above
   the count, the UID of a seq changing, UIDs not ascending, a new
   message's UID below the UIDNEXT of SELECT, EXISTS going down, a FETCH
   above the count, \\Recent in two sessions, an owned keyword set and then
   lost (a FETCH after a silent STORE, the reply of a non-silent one, and
   another session's view at a checkpoint), sessions that disagree on
   flags at a checkpoint, a message that arrived and is \\Recent nowhere, a
   keyword FLAGS never announced, UIDVALIDITY changing, a message's
   content changing, APPENDUID not above the known UIDs, EXPUNGE during
   FETCH, a BAD reply, an unexpected NO, LOGOUT without BYE, EXPUNGE
   leaving a message flagged \\Deleted (a warning; an error when strict).
2. run_stress (imaptest's stress mode: 6 clients, 4 s, checkpoints,
   outside deliveries) against a small consistent IMAP server of this
   file's own: no errors, every command of the mix issued; then the same
   server with one fault each - it forgets one STORE of an owned keyword,
   gives \\Recent to every session, renumbers UIDs after an EXPUNGE -
   and the stress run reports it.
"""
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, diag, done  # noqa: E402
import imapstress  # noqa: E402
from imapstress import run_commands, run_stress  # noqa: E402


# --------------------------------------------------------------- scripted server

class ScriptedServer:
    """Connection i plays scripts[i]: a list of (verb, [response lines]);
    "{tag}" in a line is the command's tag.  A command that is not the
    next verb (or comes after the end) is answered BAD and noted."""

    GREETING = "* OK [CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS] fake ready"

    def __init__(self, scripts):
        self.scripts = list(scripts)
        self.problems = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.threads = []
        t = threading.Thread(target=self.accept, daemon=True)
        t.start()

    def accept(self):
        i = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            script = self.scripts[i] if i < len(self.scripts) else []
            i += 1
            t = threading.Thread(target=self.serve, args=(conn, script), daemon=True)
            t.start()
            self.threads.append(t)

    def serve(self, conn, script):
        f = conn.makefile("rb")
        try:
            conn.sendall((self.GREETING + "\r\n").encode())
            steps = list(script)
            while True:
                line = f.readline()
                if not line:
                    return
                line = line.rstrip(b"\r\n")
                m = re.search(rb"\{(\d+)\+?\}$", line)
                if m:
                    f.read(int(m.group(1)))
                    line += f.readline().rstrip(b"\r\n")
                tag, _, rest = line.decode().partition(" ")
                verb = rest.split(" ")[0].upper()
                if not steps:
                    self.problems.append("after the script: %s" % line)
                    conn.sendall(("%s BAD script ended\r\n" % tag).encode())
                    continue
                want, lines = steps.pop(0)
                if verb != want:
                    self.problems.append("expected %s, got %s" % (want, line))
                    conn.sendall(("%s BAD expected %s\r\n" % (tag, want)).encode())
                    continue
                out = "".join(l.replace("{tag}", tag) + "\r\n" for l in lines)
                conn.sendall(out.encode())
                if verb == "LOGOUT":
                    return
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.sock.close()


FLAGS = ("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft own0 own1)",
         "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft own0 own1 \\*)] ok")


def login():
    return ("LOGIN", ["{tag} OK [CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS] Logged in"])


def select(exists=3, recent=0, uidvalidity=42, uidnext=4):
    return ("SELECT", list(FLAGS) + ["* %d EXISTS" % exists, "* %d RECENT" % recent,
                                     "* OK [UIDVALIDITY %d] ok" % uidvalidity,
                                     "* OK [UIDNEXT %d] ok" % uidnext,
                                     "{tag} OK [READ-WRITE] selected"])


def fetch(*lines):
    return ("FETCH", list(lines) + ["{tag} OK fetched"])


def okay(verb, *lines):
    return (verb, list(lines) + ["{tag} OK done"])


def logout():
    return ("LOGOUT", ["* BYE bye", "{tag} OK done"])


ALL3 = fetch("* 1 FETCH (UID 1 FLAGS ())", "* 2 FETCH (UID 2 FLAGS (\\Seen))",
             "* 3 FETCH (UID 3 FLAGS ())")
START = [("A", "LOGIN"), ("A", "SELECT INBOX"), ("A", "FETCH 1:* (UID FLAGS)")]


def run(title, scripts, steps, strict=False):
    srv = ScriptedServer(scripts)
    try:
        r = run_commands("127.0.0.1", srv.port, "u", "p", steps, timeout=5, strict=strict)
    finally:
        srv.close()
    if srv.problems:
        diag("%s: the script and the checker disagree: %s" % (title, srv.problems))
    return r, srv.problems


def expect(title, scripts, steps, pattern, strict=False):
    r, problems = run(title, scripts, steps, strict)
    hits = [e for e in r.errors if re.search(pattern, e.what)]
    if not ok(hits and not problems, "%s: reported (%s)" % (title, hits[0].what.split("\n")[0]
                                                            if hits else "nothing")):
        diag(r.report())
    return r


# --------------------------------------------------------------- 1. scripted

HDR = "Message-ID: <m5@example>\r\n\r\n"
good_a = [
    login(), select(3, 1, uidnext=4),
    fetch("* 1 FETCH (UID 1 FLAGS ())", "* 2 FETCH (UID 2 FLAGS (\\Seen))",
          "* 3 FETCH (UID 3 FLAGS (\\Recent))"),
    okay("STORE", "* 1 FETCH (FLAGS (own0))"),                 # non-silent: the FETCH
    okay("STORE"),                                             # silent
    fetch("* 2 FETCH (UID 2 FLAGS (\\Seen own0))"),
    okay("NOOP", "* 4 EXISTS", "* 2 RECENT"),
    fetch("* 4 FETCH (UID 5 FLAGS (\\Recent) BODY[HEADER.FIELDS (MESSAGE-ID)] {%d}\r\n%s)"
          % (len(HDR), HDR)),
    # the checkpoint: NOOP and FETCH 1:4 (UID FLAGS)
    okay("NOOP"),
    fetch("* 1 FETCH (UID 1 FLAGS (own0))", "* 2 FETCH (UID 2 FLAGS (\\Seen own0))",
          "* 3 FETCH (UID 3 FLAGS (\\Recent))", "* 4 FETCH (UID 5 FLAGS (\\Recent))"),
    fetch("* 4 FETCH (UID 5 BODY[HEADER.FIELDS (MESSAGE-ID)] {%d}\r\n%s)" % (len(HDR), HDR)),
    okay("STORE", "* 1 FETCH (FLAGS (\\Deleted own0))"),
    okay("EXPUNGE", "* 1 EXPUNGE"),
    logout()]
good_b = [
    login(), select(4, 0, uidnext=6),
    okay("NOOP"),
    fetch("* 1 FETCH (UID 1 FLAGS (own0))", "* 2 FETCH (UID 2 FLAGS (\\Seen own0))",
          "* 3 FETCH (UID 3 FLAGS ())", "* 4 FETCH (UID 5 FLAGS ())"),
    logout()]
good_steps = START[:] + [
    ("A", "STORE 1 +FLAGS (own0)"), ("A", "STORE 2 +FLAGS.SILENT (own0)"),
    ("A", "FETCH 2 (UID FLAGS)"), ("A", "NOOP"),
    ("A", "FETCH 4 (UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"),
    ("B", "LOGIN"), ("B", "SELECT INBOX"), ("-", "CHECKPOINT"),
    ("A", "FETCH 4 (UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"),
    ("A", "STORE 1 +FLAGS (\\Deleted)"), ("A", "EXPUNGE"),
    ("B", "LOGOUT"), ("A", "LOGOUT")]
r, problems = run("well-behaved", [good_a, good_b], good_steps)
ok(not problems, "well-behaved transcript: the script ran as written")
is_(r.error_count, 0, "well-behaved transcript: no errors") or diag(r.report())
is_(r.warning_count, 0, "  and no warnings") or diag(r.report())
is_(r.per_command.get("LOGIN"), 2, "  both sessions logged in")

expect("EXPUNGE of seq 0",
       [[login(), select(), okay("NOOP", "* 0 EXPUNGE"), logout()]],
       [("A", "LOGIN"), ("A", "SELECT INBOX"), ("A", "NOOP"), ("A", "LOGOUT")],
       r"EXPUNGE of seq 0")
expect("EXPUNGE above the count",
       [[login(), select(), okay("NOOP", "* 5 EXPUNGE"), logout()]],
       [("A", "LOGIN"), ("A", "SELECT INBOX"), ("A", "NOOP"), ("A", "LOGOUT")],
       r"EXPUNGE of seq 5, the mailbox has 3")
expect("the UID of a seq changes",
       [[login(), select(), ALL3, okay("NOOP", "* 2 FETCH (UID 7 FLAGS ())"), logout()]],
       START + [("A", "NOOP"), ("A", "LOGOUT")],
       r"UID of seq 2 changed from 2 to 7")
expect("UIDs not ascending",
       [[login(), select(uidnext=9),
         fetch("* 1 FETCH (UID 5 FLAGS ())", "* 2 FETCH (UID 3 FLAGS ())",
               "* 3 FETCH (UID 7 FLAGS ())"), logout()]],
       START + [("A", "LOGOUT")], r"UIDs not ascending")
expect("a new message below SELECT's UIDNEXT",
       [[login(), select(uidnext=10), ALL3, okay("NOOP", "* 4 EXISTS"),
         fetch("* 4 FETCH (UID 5 FLAGS ())"), logout()]],
       START + [("A", "NOOP"), ("A", "FETCH 4 (UID FLAGS)"), ("A", "LOGOUT")],
       r"new message, has UID 5.*want >= 10")
expect("EXISTS goes down",
       [[login(), select(), okay("NOOP", "* 2 EXISTS"), logout()]],
       [("A", "LOGIN"), ("A", "SELECT INBOX"), ("A", "NOOP"), ("A", "LOGOUT")],
       r"EXISTS went down from 3 to 2")
expect("FETCH above the count",
       [[login(), select(), okay("NOOP", "* 9 FETCH (FLAGS ())"), logout()]],
       [("A", "LOGIN"), ("A", "SELECT INBOX"), ("A", "NOOP"), ("A", "LOGOUT")],
       r"FETCH for seq 9, the mailbox has 3")
expect("\\Recent in two sessions",
       [[login(), select(recent=1), fetch("* 3 FETCH (UID 3 FLAGS (\\Recent))"), logout()],
        [login(), select(recent=1), fetch("* 3 FETCH (UID 3 FLAGS (\\Recent))"), logout()]],
       [("A", "LOGIN"), ("A", "SELECT INBOX"), ("A", "FETCH 3 (UID FLAGS)"),
        ("B", "LOGIN"), ("B", "SELECT INBOX"), ("B", "FETCH 3 (UID FLAGS)"),
        ("A", "LOGOUT"), ("B", "LOGOUT")],
       r"UID 3 has \\Recent in two sessions")
expect("an owned keyword set (silently), then lost",
       [[login(), select(), ALL3, okay("STORE"), fetch("* 1 FETCH (UID 1 FLAGS ())"),
         logout()]],
       START + [("A", "STORE 1 +FLAGS.SILENT (own0)"), ("A", "FETCH 1 (UID FLAGS)"),
                ("A", "LOGOUT")],
       r"owned keyword own0 of UID 1 changed")
expect("an owned keyword a STORE's own FETCH does not show",
       [[login(), select(), ALL3, okay("STORE", "* 1 FETCH (FLAGS (\\Seen))"), logout()]],
       START + [("A", "STORE 1 +FLAGS (own0)"), ("A", "LOGOUT")],
       r"STORE \+FLAGS \(own0\) on seq 1 \(UID 1\): its FETCH shows it unset")
expect("a STORE that changes the owned keyword and sends no FETCH",
       [[login(), select(), ALL3, okay("STORE"), logout()]],
       START + [("A", "STORE 1 +FLAGS (own0)"), ("A", "LOGOUT")],
       r"STORE returned no FETCH FLAGS for seq 1")
CP3 = fetch("* 1 FETCH (UID 1 FLAGS (own0))", "* 2 FETCH (UID 2 FLAGS (\\Seen))",
            "* 3 FETCH (UID 3 FLAGS ())")
CP3_LOST = fetch("* 1 FETCH (UID 1 FLAGS ())", "* 2 FETCH (UID 2 FLAGS (\\Seen))",
                 "* 3 FETCH (UID 3 FLAGS ())")
two = [("A", "LOGIN"), ("A", "SELECT INBOX"), ("A", "FETCH 1:* (UID FLAGS)"),
       ("A", "STORE 1 +FLAGS (own0)"), ("B", "LOGIN"), ("B", "SELECT INBOX"),
       ("-", "CHECKPOINT"), ("A", "LOGOUT"), ("B", "LOGOUT")]
expect("an owned keyword another session does not see at a checkpoint",
       [[login(), select(), ALL3, okay("STORE", "* 1 FETCH (FLAGS (own0))"), okay("NOOP"), CP3,
         logout()],
        [login(), select(), okay("NOOP"), CP3_LOST, logout()]],
       two, r"checkpoint: owned keyword own0 of UID 1 is unset|checkpoint: UID 1 has flags")
expect("sessions that disagree on \\Seen at a checkpoint",
       [[login(), select(), ALL3, okay("STORE", "* 1 FETCH (FLAGS (own0))"), okay("NOOP"), CP3,
         logout()],
        [login(), select(), okay("NOOP"),
         fetch("* 1 FETCH (UID 1 FLAGS (own0 \\Seen))", "* 2 FETCH (UID 2 FLAGS (\\Seen))",
               "* 3 FETCH (UID 3 FLAGS ())"), logout()]],
       two, r"checkpoint: UID 1 has flags")
expect("a message that arrived and is \\Recent in no session",
       [[login(), select(uidnext=4), ALL3, okay("NOOP", "* 4 EXISTS", "* 0 RECENT"),
         okay("NOOP"), fetch("* 1 FETCH (UID 1 FLAGS ())", "* 2 FETCH (UID 2 FLAGS (\\Seen))",
                             "* 3 FETCH (UID 3 FLAGS ())", "* 4 FETCH (UID 4 FLAGS ())"),
         logout()]],
       START + [("A", "NOOP"), ("-", "CHECKPOINT"), ("A", "LOGOUT")],
       r"UID 4 .*\\Recent in no session")
expect("a keyword that FLAGS never announced",
       [[login(), select(), fetch("* 1 FETCH (UID 1 FLAGS (surprise))"), logout()]],
       [("A", "LOGIN"), ("A", "SELECT INBOX"), ("A", "FETCH 1 (UID FLAGS)"), ("A", "LOGOUT")],
       r"keyword surprise used without being in FLAGS")
expect("UIDVALIDITY changes",
       [[login(), select(uidvalidity=42), logout()],
        [login(), select(uidvalidity=43), logout()]],
       [("A", "LOGIN"), ("A", "SELECT INBOX"), ("A", "LOGOUT"),
        ("B", "LOGIN"), ("B", "SELECT INBOX"), ("B", "LOGOUT")],
       r"UIDVALIDITY changed: 42 -> 43")
H1, H2 = "Message-ID: <one@example>\r\n\r\n", "Message-ID: <two@example>\r\n\r\n"
expect("a message's content changes",
       [[login(), select(),
         fetch("* 1 FETCH (UID 1 BODY[HEADER.FIELDS (MESSAGE-ID)] {%d}\r\n%s)" % (len(H1), H1)),
         fetch("* 1 FETCH (UID 1 BODY[HEADER.FIELDS (MESSAGE-ID)] {%d}\r\n%s)" % (len(H2), H2)),
         logout()]],
       [("A", "LOGIN"), ("A", "SELECT INBOX"),
        ("A", "FETCH 1 (UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"),
        ("A", "FETCH 1 (UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"), ("A", "LOGOUT")],
       r"UID 1: content changed: BODY\[HEADER.FIELDS \(MESSAGE-ID\)\]")
expect("APPENDUID not above the UIDs known",
       [[login(), select(), ALL3, ("APPEND", ["{tag} OK [APPENDUID 42 2] appended"]),
         logout()]],
       START + [("A", "APPEND"), ("A", "LOGOUT")], r"APPENDUID 2 is not above UID 3")
expect("EXPUNGE during FETCH",
       [[login(), select(), fetch("* 1 EXPUNGE", "* 1 FETCH (UID 2 FLAGS ())"), logout()]],
       [("A", "LOGIN"), ("A", "SELECT INBOX"), ("A", "FETCH 1:* (UID FLAGS)"),
        ("A", "LOGOUT")], r"EXPUNGE 1 while FETCH is in progress")
expect("a BAD reply",
       [[login(), select(), ("NOOP", ["{tag} BAD what?"]), logout()]],
       [("A", "LOGIN"), ("A", "SELECT INBOX"), ("A", "NOOP"), ("A", "LOGOUT")],
       r"NOOP replied BAD")
expect("an unexpected NO",
       [[login(), select(), ("EXPUNGE", ["{tag} NO cannot"]), logout()]],
       [("A", "LOGIN"), ("A", "SELECT INBOX"), ("A", "EXPUNGE"), ("A", "LOGOUT")],
       r"EXPUNGE failed \(NO\)")
expect("LOGOUT without BYE",
       [[login(), ("LOGOUT", ["{tag} OK done"])]],
       [("A", "LOGIN"), ("A", "LOGOUT")], r"LOGOUT's OK without an untagged BYE")
left = [[login(), select(), ALL3, okay("STORE", "* 1 FETCH (FLAGS (\\Deleted))"),
         okay("EXPUNGE"), logout()]]
left_steps = START + [("A", "STORE 1 +FLAGS (\\Deleted)"), ("A", "EXPUNGE"), ("A", "LOGOUT")]
r, _ = run("EXPUNGE leaves a \\Deleted message", left, left_steps)
ok(r.error_count == 0 and r.warning_count == 1 and "EXPUNGE left UID 1" in r.warnings[0].what,
   "EXPUNGE leaving a message flagged \\Deleted: a warning") or diag(r.report())
expect("EXPUNGE leaves a \\Deleted message, strict", left, left_steps, r"EXPUNGE left UID 1",
       strict=True)
# A STORE racing an expunge: an owned keyword "lost" on a message that turns
# out to be expunged is no error.
r, _ = run("an owned keyword lost on an expunged message",
           [[login(), select(), ALL3, okay("STORE"), fetch("* 1 FETCH (UID 1 FLAGS ())"),
             okay("NOOP", "* 1 EXPUNGE"), logout()]],
           START + [("A", "STORE 1 +FLAGS.SILENT (own0)"), ("A", "FETCH 1 (UID FLAGS)"),
                    ("A", "NOOP"), ("A", "LOGOUT")])
is_(r.error_count, 0, "an owned keyword lost on a message expunged meanwhile: no error") or \
    diag(r.report())


# --------------------------------------------------------------- 2. a small server

class Msg:
    __slots__ = ("uid", "flags", "data", "date")

    def __init__(self, uid, flags, data, date):
        self.uid, self.flags, self.data, self.date = uid, set(flags), data, date


class Box:
    def __init__(self):
        self.lock = threading.RLock()
        self.uidvalidity = 1234
        self.uidnext = 1
        self.msgs = []              # in UID order
        self.all = {}               # uid -> Msg, expunged ones too
        self.keywords = []
        self.first_recent = 1
        self.stores = 0

    def add(self, data, flags=(), date="01-Dec-2023 10:00:00 +0000"):
        m = Msg(self.uidnext, flags, data, date)
        self.uidnext += 1
        self.msgs.append(m)
        self.all[m.uid] = m
        for f in flags:
            self.keyword(f)
        return m

    def keyword(self, f):
        if not f.startswith("\\") and f not in self.keywords:
            self.keywords.append(f)


class MiniServer:
    """A small IMAP4rev1 server with one shared INBOX: enough of LOGIN,
    CAPABILITY, LIST, STATUS, SELECT, FETCH, STORE, EXPUNGE, APPEND, COPY,
    NOOP, CHECK and LOGOUT for imapstress's stress mode, with sessions that
    see each other's changes at their next command (no EXPUNGE during
    FETCH, STORE or SEARCH), \\Recent for the first session to see a
    message, LITERAL+ and UIDPLUS.  fault: None, "lose-store" (every 3rd
    STORE that sets an owned keyword is answered but not applied), "recent-all"
    (every session gets \\Recent for every new message), "renumber" (after
    an EXPUNGE the session's highest UID is reported one higher)."""

    def __init__(self, fault=None):
        self.box = Box()
        self.fault = fault
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def close(self):
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass

    def serve(self, conn):
        try:
            MiniSession(self, conn).run()
        except (OSError, ValueError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass


class MiniSession:
    CAPS = "IMAP4rev1 LITERAL+ UIDPLUS"

    def __init__(self, server, conn):
        self.srv, self.box, self.conn = server, server.box, conn
        self.f = conn.makefile("rb")
        self.out = []
        self.view = None            # list of UIDs
        self.sent = {}              # uid -> flags last reported
        self.recent = set()
        self.keywords_sent = 0
        self.renumbered = False

    def w(self, line):
        self.out.append(line + "\r\n")

    def flush(self):
        if self.out:
            self.conn.sendall("".join(self.out).encode("latin-1"))
            self.out = []

    def read(self):
        line = self.f.readline()
        if not line:
            return None
        line = line.rstrip(b"\r\n")
        lit = None
        m = re.search(rb"\{(\d+)\+?\}$", line)
        if m:
            lit = self.f.read(int(m.group(1)))
            line = line[:m.start()] + b"\x00" + self.f.readline().rstrip(b"\r\n")
        return line.decode("latin-1"), lit

    def run(self):
        self.w("* OK [CAPABILITY %s] mini ready" % self.CAPS)
        self.flush()
        while True:
            got = self.read()
            if got is None:
                return
            line, lit = got
            tag, _, rest = line.partition(" ")
            verb, _, args = rest.partition(" ")
            verb = verb.upper()
            with self.box.lock:
                fn = getattr(self, "c_" + verb.lower(), None)
                if fn is None:
                    self.w("%s BAD unknown command" % tag)
                else:
                    fn(tag, args, lit)
            self.flush()
            if verb == "LOGOUT":
                return

    # -- sync

    def flags_line(self):
        kws = self.box.keywords
        if len(kws) != self.keywords_sent:
            fl = "\\Answered \\Flagged \\Deleted \\Seen \\Draft " + " ".join(kws)
            self.w("* FLAGS (%s)" % fl.strip())
            self.keywords_sent = len(kws)

    def shown(self, uid):
        m = self.box.all[uid]
        f = set(m.flags)
        if uid in self.recent:
            f.add("\\Recent")
        return f

    def sync(self, expunges=True):
        if self.view is None:
            return
        box = self.box
        if expunges:
            live = set(m.uid for m in box.msgs)
            for i in range(len(self.view) - 1, -1, -1):
                if self.view[i] not in live:
                    self.w("* %d EXPUNGE" % (i + 1))
                    self.sent.pop(self.view[i], None)
                    del self.view[i]
                    if self.srv.fault == "renumber" and self.view:
                        self.renumbered = True
        known = self.view[-1] if self.view else 0
        new = [m.uid for m in box.msgs if m.uid > known]
        self.flags_line()
        if new:
            for u in new:
                if u >= box.first_recent or self.srv.fault == "recent-all":
                    self.recent.add(u)
            box.first_recent = max(box.first_recent, new[-1] + 1)
            self.view.extend(new)
            self.w("* %d EXISTS" % len(self.view))
            self.w("* %d RECENT" % len([u for u in self.view if u in self.recent]))
        for i, u in enumerate(self.view):
            f = self.shown(u)
            if u in self.sent and self.sent[u] != f:
                self.w("* %d FETCH (FLAGS (%s))" % (i + 1, " ".join(sorted(f))))
                self.sent[u] = f

    def seqs(self, text):
        return [s for s in imapstress.parse_set(text, len(self.view)) if 1 <= s <= len(self.view)]

    # -- commands

    def c_login(self, tag, args, lit):
        self.w("%s OK [CAPABILITY %s] logged in" % (tag, self.CAPS))

    def c_capability(self, tag, args, lit):
        self.w("* CAPABILITY " + self.CAPS)
        self.w("%s OK done" % tag)

    def c_list(self, tag, args, lit):
        self.sync()
        self.w('* LIST (\\HasNoChildren) "/" INBOX')
        self.w("%s OK done" % tag)

    def c_status(self, tag, args, lit):
        self.sync()
        b = self.box
        self.w("* STATUS INBOX (MESSAGES %d UNSEEN %d RECENT %d UIDNEXT %d UIDVALIDITY %d)"
               % (len(b.msgs), len([m for m in b.msgs if "\\Seen" not in m.flags]),
                  len([m for m in b.msgs if m.uid >= b.first_recent]), b.uidnext, b.uidvalidity))
        self.w("%s OK done" % tag)

    def c_select(self, tag, args, lit):
        b = self.box
        self.keywords_sent = -1
        self.flags_line()
        self.w("* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] ok")
        self.view = [m.uid for m in b.msgs]
        self.recent = set(u for u in self.view if u >= b.first_recent)
        b.first_recent = b.uidnext
        self.sent = {}
        self.w("* %d EXISTS" % len(self.view))
        self.w("* %d RECENT" % len(self.recent))
        self.w("* OK [UIDVALIDITY %d] ok" % b.uidvalidity)
        self.w("* OK [UIDNEXT %d] ok" % b.uidnext)
        self.w("%s OK [READ-WRITE] selected" % tag)

    c_examine = c_select

    def c_noop(self, tag, args, lit):
        self.sync()
        self.w("%s OK done" % tag)

    c_check = c_noop

    def c_logout(self, tag, args, lit):
        self.w("* BYE bye")
        self.w("%s OK done" % tag)

    def c_fetch(self, tag, args, lit):
        self.sync(expunges=False)
        seqtext, _, items = args.partition(" ")
        items = items.strip("()")
        want = re.findall(r"BODY\.PEEK\[[^\]]*\]|RFC822\.HEADER|RFC822\.SIZE|[A-Z]+", items)
        for s in self.seqs(seqtext):
            uid = self.view[s - 1]
            m = self.box.all[uid]
            head, _, text = m.data.partition(b"\r\n\r\n")
            head += b"\r\n\r\n"
            parts = []
            for it in want:
                if it == "UID":
                    shown = uid + 1 if self.renumbered and s == len(self.view) else uid
                    parts.append("UID %d" % shown)
                elif it == "FLAGS":
                    f = self.shown(uid)
                    self.sent[uid] = f
                    parts.append("FLAGS (%s)" % " ".join(sorted(f)))
                elif it == "RFC822.SIZE":
                    parts.append("RFC822.SIZE %d" % len(m.data))
                elif it == "INTERNALDATE":
                    parts.append('INTERNALDATE "%s"' % m.date)
                elif it == "ENVELOPE":
                    mid = re.search(rb"(?im)^Message-ID: (.*?)\r$", head)
                    parts.append('ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL "%s")'
                                 % (mid.group(1).decode() if mid else ""))
                elif it in ("BODY", "BODYSTRUCTURE"):
                    parts.append('%s ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" %d 1)'
                                 % (it, len(text)))
                elif it.startswith("BODY.PEEK[") or it == "RFC822.HEADER":
                    sec = "HEADER" if it == "RFC822.HEADER" else it[10:-1]
                    if sec == "":
                        data = m.data
                    elif sec == "HEADER":
                        data = head
                    elif sec in ("TEXT", "1"):
                        data = text
                    else:
                        names = [n.lower() for n in re.findall(r"[\w-]+", sec)[2:]]
                        data = b"".join(l + b"\r\n" for l in head.split(b"\r\n")
                                        if l.split(b":")[0].decode().lower() in names) + b"\r\n"
                    name = "RFC822.HEADER" if it == "RFC822.HEADER" else "BODY[%s]" % sec
                    parts.append("%s {%d}\r\n%s" % (name, len(data), data.decode("latin-1")))
            self.w("* %d FETCH (%s)" % (s, " ".join(parts)))
        self.w("%s OK fetched" % tag)

    def c_store(self, tag, args, lit):
        m = re.match(r"(\S+) ([+-]?)FLAGS(\.SILENT)? \(([^)]*)\)", args, re.I)
        if not m:
            self.w("%s BAD syntax" % tag)
            return
        self.sync(expunges=False)
        flags = m.group(4).split()
        for f in flags:
            self.box.keyword(f)
        self.flags_line()
        lose = False
        sel = self.seqs(m.group(1))
        own = [f for f in flags if f.startswith("own")]
        if own and m.group(2) == "+" and any(own[0] not in self.box.all[self.view[s - 1]].flags
                                             for s in sel):
            self.box.stores += 1
            lose = self.srv.fault == "lose-store" and self.box.stores % 3 == 0
        for s in sel:
            uid = self.view[s - 1]
            msg = self.box.all[uid]
            if not lose:
                if m.group(2) == "+":
                    msg.flags |= set(flags)
                elif m.group(2) == "-":
                    msg.flags -= set(flags)
                else:
                    msg.flags = set(flags)
            f = self.shown(uid)
            if not m.group(3):
                shown = f | set(flags) if lose else f
                self.w("* %d FETCH (FLAGS (%s))" % (s, " ".join(sorted(shown))))
                self.sent[uid] = shown
        self.sync(expunges=False)
        self.w("%s OK stored" % tag)

    def c_expunge(self, tag, args, lit):
        b = self.box
        gone = [m for m in b.msgs if "\\Deleted" in m.flags]
        b.msgs = [m for m in b.msgs if "\\Deleted" not in m.flags]
        self.sync()
        self.w("%s OK expunged %d" % (tag, len(gone)))

    def c_append(self, tag, args, lit):
        m = re.match(r'"?INBOX"?(?: \(([^)]*)\))?(?: "([^"]*)")? \x00$', args, re.I)
        if not m or lit is None:
            self.w("%s BAD syntax" % tag)
            return
        msg = self.box.add(lit, (m.group(1) or "").split(),
                           m.group(2) or "01-Dec-2023 10:00:00 +0000")
        self.sync()
        self.w("%s OK [APPENDUID %d %d] appended" % (tag, self.box.uidvalidity, msg.uid))

    def c_copy(self, tag, args, lit):
        seqtext = args.split(" ")[0]
        src, dst = [], []
        for s in self.seqs(seqtext):
            m = self.box.all[self.view[s - 1]]
            if m not in self.box.msgs:
                continue
            n = self.box.add(m.data, m.flags, m.date)
            src.append(m.uid)
            dst.append(n.uid)
        self.sync()
        if src:
            self.w("%s OK [COPYUID %d %s %s] copied" % (
                tag, self.box.uidvalidity, imapstress.seqset(src), imapstress.seqset(dst)))
        else:
            self.w("%s NO [EXPUNGEISSUED] nothing left to copy" % tag)


def mini_run(fault=None, seconds=4, **kw):
    srv = MiniServer(fault)
    samples = imapstress.Samples(7)
    import random
    rnd = random.Random(3)
    for i in range(25):
        srv.box.add(samples.next(rnd))
    delivered = []

    def deliver(user):
        with srv.box.lock:
            delivered.append(srv.box.add(samples.next(rnd)).uid)
    try:
        r = run_stress("127.0.0.1", srv.port, [("mini", "secret")], clients=6, seconds=seconds,
                       deliver=deliver, deliver_every=0.2, seed=11, timeout=10, **kw)
    finally:
        srv.close()
    return r, delivered


t0 = time.monotonic()
r, delivered = mini_run(checkpoint=1.0, copybox="INBOX")
is_(r.error_count, 0, "stress against a consistent server: no errors (%d commands, %d logins, "
    "%d checkpoints)" % (r.commands, r.logins, r.checkpoints)) or diag(r.report())
is_(r.warning_count, 0, "  no warnings") or diag(r.report())
missing = [k for k in ("LOGIN", "LIST", "STATUS", "SELECT", "FETCH", "FETCH2", "COPY", "STORE",
                       "DELETE", "EXPUNGE", "APPEND", "LOGOUT") if not r.per_command.get(k)]
is_(missing, [], "  every command of imaptest's mix was issued")
ok(r.checkpoints >= 2 and r.deliveries >= 5 and delivered,
   "  checkpoints ran (%d) and outside deliveries came in (%d)" % (r.checkpoints, r.deliveries))
r, _ = mini_run(checkpoint=1.0, logout=False)
is_(r.error_count, 0, "stress with sessions that never log out (exact \\Recent checks): no "
    "errors (%d commands, %d checkpoints)" % (r.commands, r.checkpoints)) or diag(r.report())

for fault, pattern, what, kw in (
        ("lose-store", r"owned keyword own\d+ of UID \d+", "a lost STORE of an owned keyword",
         # nothing expunged: a "lost" keyword of an expunged message is void
         {"expunger": False}),
        ("recent-all", r"\\Recent in two sessions|\\Recent in .* too", "\\Recent in every session",
         {}),
        ("renumber", r"UID of seq \d+ changed|UIDs not ascending|is not above|"
                     r"checkpoint: \d+ messages, .* has",
         "a UID renumbered after EXPUNGE", {})):
    r, _ = mini_run(fault, checkpoint=1.0, **kw)
    hits = [e for e in r.errors if re.search(pattern, e.what)]
    ok(hits, "stress against a server with %s: reported (%s; %d errors)"
       % (what, hits[0].what.split("\n")[0] if hits else "nothing", r.error_count)) or \
        diag(r.report())
diag("stress runs took %.1f s" % (time.monotonic() - t0))
done()
