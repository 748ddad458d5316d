#!/usr/bin/env python3
"""imapstress.py - an imaptest-style IMAP load and consistency checker
(library and CLI), for Posthorn's imapd and, as the reference, Dovecot.

A raw-socket IMAP client on asyncio (never imaplib: every untagged
response matters here): it reads responses with their literals ({N}),
keeps for each session its view of the selected mailbox (sequence number
-> UID, UID -> flags and MODSEQ, the FLAGS the server announced,
UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, RECENT) and, shared by all the
sessions of one process, a model of each mailbox (Mailbox: which session
holds \\Recent for a UID, what each UID's content is, which UIDs were
expunged, the owned keywords' expected values).

What it reports as an error (StressError: the session, the command in
progress, the offending response line and what is wrong):
  - EXPUNGE of seq 0 or above the message count; EXPUNGE with no command in
    progress or while only FETCH, STORE or SEARCH are (RFC 3501 7.4.1);
    EXISTS going down; a FETCH for seq 0 or above the count; RECENT above
    the count; VANISHED of a UID the session never had;
  - the UID of a sequence number changing (the UID a session learned for
    seq n stays until an EXPUNGE shifts it); UIDs not strictly ascending by
    seq; a new message's UID not above every UID the session knew or below
    the UIDNEXT of its SELECT; APPENDUID and COPYUID UIDs, and UIDNEXT
    (SELECT; STATUS of a mailbox not selected), not above every UID known
    before the command; UIDVALIDITY changing;
  - \\Recent for one UID in two sessions; \\Recent lost within a session;
    a keyword in a FETCH that the session's FLAGS did not announce; an
    unknown system flag; FLAGS or PERMANENTFLAGS that are not lists;
    MODSEQ of a UID going down in a session; HIGHESTMODSEQ below a MODSEQ
    known before the SELECT;
  - owned keywords: every client index k has the keyword "own<k>" that only
    its sessions ever STORE (+FLAGS or -FLAGS, never a FLAGS replace); the
    reply to a non-silent STORE must show it changed (a FETCH for each
    message whose keyword it changed), a FETCH after a
    FLAGS.SILENT one (and every later FETCH FLAGS in its sessions) must
    show what the owner last stored.  (Errors about a UID that turns out to
    be expunged by the end are dropped: a STORE may race an expunge.);
  - a message's content changing: every fetched item that derives from it
    (BODY[], BODY[HEADER], BODY[TEXT], BODY[1], HEADER.FIELDS, RFC822.SIZE,
    INTERNALDATE, ENVELOPE, BODY, BODYSTRUCTURE) is remembered per UID (of
    the UIDVALIDITY) and must come back the same; BODY[] must be what was
    APPENDed (APPENDUID) or COPYed (COPYUID), its header and text BODY[HEADER]
    and BODY[TEXT], its length RFC822.SIZE.  (The placeholders a server
    sends for a message expunged meanwhile - NIL, "", an ENVELOPE of NILs,
    an empty text/plain BODYSTRUCTURE, size 0 - are skipped, as imaptest
    does);
  - a tagged BAD to any command (all are valid); a NO where imaptest
    expects none (only FETCH and STORE may fail on an expunged message,
    COPY may fail); LOGOUT without an untagged BYE; no reply in time; a
    connection lost.
A warning (Result.warnings; an error with strict=True): EXPUNGE leaving a
message the same session had flagged \\Deleted before it.  Dovecot's
Maildir does that now and then under concurrent flag changes, and imaptest
does not check it.
Checkpoints (checkpoint=N seconds): every session stops after its current
commands, deliveries pause, every session with the mailbox selected sends
NOOP and FETCH 1:* (UID FLAGS), and then their views must agree: the same
UIDs, the same flags and keywords per UID (\\Recent aside), each owned
keyword as its owner stored it, each session's RECENT equal to the \\Recent
flags it sees (unless a \\Recent message was expunged since its last
RECENT: Dovecot does not repeat an unchanged count), \\Recent on at most
one session per UID and on exactly one
for every UID at or above the mailbox's \\Recent floor (the UIDs that
arrived since the last session holding \\Recent closed the mailbox; with
sessions that never log out, every message delivered since the start).
At the end one more session checks the owned keywords of every message left.

Stress mode (run_stress) is imaptest's: each client runs imaptest's state
machine with its default probabilities - LOGIN 100%, LIST 50%, STATUS 50%,
SELECT 100%, FETCH 100%, FETCH2 100% (again 30%), COPY 33% (again 5%; only
with copybox, as in imaptest), STORE 50%, DELETE (STORE +FLAGS \\Deleted)
100%, EXPUNGE 100%, APPEND 100% (again 5%) while the view holds fewer than
msgs (30) messages, LOGOUT 100% - pipelined as imaptest pipelines them (a
command that names sequence numbers never follows one that may expunge
before its reply).  FETCH asks for up to 100 random messages' UID, FLAGS
and 1-4 random items, FETCH2 for one message's UID and one of BODY.PEEK[],
[HEADER], [TEXT], [1] or RFC822.HEADER; STORE +/-FLAGS[.SILENT] of 1-3 of
\\Seen \\Flagged \\Answered \\Draft $Shared1 $Shared2 and the client's own
keyword, on known messages; APPEND one of five sample messages (plain
text of 1.5, 6 and 30 KB, multipart/alternative, multipart/mixed with a
base64 attachment) with a Message-ID of its own, random flags and date.
One deviation: DELETE flags rand % (n - msgs) messages above msgs + 5 as
imaptest does, but rand % 3 near msgs and none well below it (imaptest's
rand % 5 there empties the mailbox), so that it holds about msgs
messages.  APPEND uses LITERAL+ when advertised, SELECT adds (CONDSTORE)
when advertised.  logout=False: sessions never log out (after APPEND they
start over at LIST).  expunger=False: no DELETE and EXPUNGE.  deliver, a
callable, is called (in a thread, with the user name) every deliver_every
seconds while the sessions run: outside deliveries, e.g. files dropped
into Maildir/new.

    run_stress(host, port, users=[(user, password)], clients=10, seconds=10,
               tls=None|'starttls'|'implicit', deliver=None, expunger=True,
               msgs=30, checkpoint=0, copybox=None, mailbox="INBOX",
               logout=True, deliver_every=1.0, seed=None, timeout=60,
               ssl_context=None, final_check=True, log=None, rawlog=0,
               strict=False) -> Result
    Result: commands (tagged replies), per_command {name: OK replies},
            failed {name: NO/BAD replies}, logins, errors [StressError],
            error_count, warnings, warning_count, seconds, cps (commands/s),
            lps (logins/s), latency {name: mean ms}, checkpoints,
            deliveries; .report()
    StressError: session, command, line, what (and uid); str() for all
    run_commands(host, port, user, password, [(session, command), ...],
                 tls=None, timeout=10, strict=False)
            -> Result: the same checks on a scripted sequence of commands
            from named sessions (the self-test, t/40-imapstress-selftest.t)
    SimpleClient(host, port, tls=None): a blocking client for set-ups and
            for holding idle sessions (bench/imap_bench.py)

CLI: python3 t/lib/imapstress.py --host H --port P --user U --password PW
        [--user U2 ...] [--clients 10] [--secs 30] [--tls starttls|implicit]
        [--checkpoint N] [--msgs 30] [--copybox NAME] [--no-logout]
        [--no-expunge] [--seed N] [--strict] [--rawlog N] [-q]
prints the counts per command, commands/s, logins/s and the errors; exits
1 if it found any (rawlog N: each error with its session's last N lines).
"""
import argparse
import asyncio
import collections
import hashlib
import random
import re
import socket
import ssl
import sys
import time

SYSTEM_FLAGS = {"\\seen", "\\answered", "\\flagged", "\\deleted", "\\draft", "\\recent"}
SHARED_FLAGS = ["\\Seen", "\\Flagged", "\\Answered", "\\Draft", "$Shared1", "$Shared2"]
FETCH_FIELDS = ["UID", "FLAGS", "ENVELOPE", "INTERNALDATE", "BODY", "BODYSTRUCTURE",
                "RFC822.SIZE"]
HEADER_FIELDS = ["From", "To", "Cc", "Subject", "References", "In-Reply-To", "Message-ID",
                 "Delivered-To"]
FETCH2_FIELDS = ["BODY.PEEK[HEADER]", "RFC822.HEADER", "BODY.PEEK[]", "BODY.PEEK[1]",
                 "BODY.PEEK[TEXT]"]
# NO texts imaptest accepts for FETCH/STORE of a message another session
# expunged (Dovecot: "NO [EXPUNGEISSUED] Some of the requested messages no
# longer exist.")
EXPUNGED_NO = re.compile(r"EXPUNGEISSUED|no longer exist|expunged|have been deleted|"
                         r"Document has been deleted|No matching messages", re.I)
# imaptest's states: (name, probability %, again %)
STATES = {"LOGIN": (100, 0), "LIST": (50, 0), "STATUS": (50, 0), "SELECT": (100, 0),
          "FETCH": (100, 0), "FETCH2": (100, 30), "COPY": (33, 5), "STORE": (50, 0),
          "DELETE": (100, 0), "EXPUNGE": (100, 0), "APPEND": (100, 5), "LOGOUT": (100, 0)}
_LITERAL = re.compile(rb"~?\{(\d+)\}$")
_CODE = re.compile(rb"^\[([^\]]*)\]\s?")
_STORE = re.compile(r"^(?:UID )?STORE (\S+) ([+-]?)FLAGS(\.SILENT)? \(([^)]*)\)$", re.I)
_gid = [0]


def expunged_placeholder(item, val):
    """What a server sends for an item of a message another session
    expunged (the file is gone), as imaptest knows them: NIL or an empty
    string for a body section, an ENVELOPE of ten NILs, a BODY or
    BODYSTRUCTURE of an empty text/plain, RFC822.SIZE 0, INTERNALDATE
    1-Jan-1970."""
    if val is None or val == b"":
        return True
    if item == "ENVELOPE":
        return isinstance(val, list) and all(x is None for x in val)
    if item in ("BODY", "BODYSTRUCTURE"):
        return isinstance(val, list) and len(val) >= 8 and \
            [x.lower() if isinstance(x, (str, bytes)) else x for x in val[:8]] == \
            [b"text", b"plain", None, None, None, b"7bit", "0", "0"]
    if item == "RFC822.SIZE":
        return val == "0"
    if item == "INTERNALDATE":
        return isinstance(val, bytes) and val.startswith(b"01-Jan-1970")
    return False


def digest(value):
    if isinstance(value, bytes):
        return hashlib.blake2b(value, digest_size=16).digest()
    return hashlib.blake2b(repr(value).encode(), digest_size=16).digest()


def show(data, limit=300):
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    data = str(data)
    return data if len(data) <= limit else data[:limit] + "..."


def seqset(seqs):
    """Sorted numbers as an IMAP sequence set: 1:3,7."""
    out, seqs = [], sorted(set(seqs))
    i = 0
    while i < len(seqs):
        j = i
        while j + 1 < len(seqs) and seqs[j + 1] == seqs[j] + 1:
            j += 1
        out.append(str(seqs[i]) if i == j else "%d:%d" % (seqs[i], seqs[j]))
        i = j + 1
    return ",".join(out)


def parse_set(text, top):
    """An IMAP sequence set as a sorted list; * is top."""
    out = set()
    for part in text.split(","):
        a, _, b = part.partition(":")
        a = top if a == "*" else int(a)
        b = a if not b else (top if b == "*" else int(b))
        out.update(range(min(a, b), max(a, b) + 1))
    return sorted(out)


def tokenize(text, lits):
    """A response's text (bytes; every literal replaced by NUL) as nested
    lists: atoms are str, strings (quoted or literal) bytes, NIL None.  An
    atom keeps its [section] whole: BODY[HEADER.FIELDS (FROM)]<0>."""
    out, stack, cur = [], [], None
    cur = out
    p, n, li = 0, len(text), 0
    while p < n:
        c = text[p]
        if c == 32:
            p += 1
        elif c == 40:
            new = []
            cur.append(new)
            stack.append(cur)
            cur = new
            p += 1
        elif c == 41:
            if not stack:
                raise ValueError("unbalanced )")
            cur = stack.pop()
            p += 1
        elif c == 34:
            p += 1
            val = bytearray()
            while p < n and text[p] != 34:
                if text[p] == 92 and p + 1 < n:
                    p += 1
                val.append(text[p])
                p += 1
            if p >= n:
                raise ValueError("unterminated string")
            p += 1
            cur.append(bytes(val))
        elif c == 0:
            cur.append(lits[li])
            li += 1
            p += 1
        else:
            start = p
            while p < n:
                c = text[p]
                if c == 32 or c == 40 or c == 41:
                    break
                if c == 91:
                    q = text.find(b"]", p)
                    p = n if q < 0 else q + 1
                    continue
                p += 1
            atom = text[start:p].decode("latin-1")
            cur.append(None if atom.upper() == "NIL" else atom)
    if stack:
        raise ValueError("unbalanced (")
    return out


class StressError:
    __slots__ = ("session", "command", "line", "what", "uid")

    def __init__(self, session, command, line, what, uid=None):
        self.session, self.command, self.line, self.what, self.uid = \
            session, command, line, what, uid

    def __str__(self):
        s = "%s: %s" % (self.session, self.what)
        if self.command:
            s += "\n    command:  %s" % show(self.command)
        if self.line:
            s += "\n    response: %s" % show(self.line)
        return s

    __repr__ = __str__


class Mailbox:
    """What all sessions of a run know about one mailbox."""

    def __init__(self, key):
        self.key = key
        self.reset(None)
        self.sessions = set()       # sessions that have it selected now
        self.closes = 0             # closes of a read-write view
        self.floor = None           # UIDs >= floor: \Recent in exactly one session
        self.floor_wait = 0         # a close whose floor waits for a SELECT's UIDNEXT

    def reset(self, uidvalidity):
        self.uidvalidity = uidvalidity
        self.max_uid = 0
        self.max_modseq = 0
        self.expunged = set()
        self.recent_owner = {}      # uid -> session gid
        self.content = {}           # (uid, item) -> digest
        self.owned = {}             # (client, uid) -> bool
        self.suspect = []           # StressErrors void if their UID gets expunged
        self.origin = {}            # uid -> "APPEND by ..." (for error texts)

    def learn_uid(self, uid):
        if uid > self.max_uid:
            self.max_uid = uid


class Checker:
    """Errors and mailbox models shared by the sessions of one run.
    Warnings are deviations from the RFC that the reference server shows
    too and imaptest does not check (EXPUNGE leaving a message the session
    had just flagged \\Deleted: Dovecot's Maildir under concurrent flag
    changes); strict makes them errors."""

    def __init__(self, max_errors=1000, strict=False):
        self.errors = []
        self.error_count = 0
        self.warnings = []
        self.warning_count = 0
        self.max_errors = max_errors
        self.strict = strict
        self.models = {}

    def warn(self, err):
        if self.strict:
            return self.add(err)
        self.warning_count += 1
        if len(self.warnings) < self.max_errors:
            self.warnings.append(err)

    def model(self, key):
        m = self.models.get(key)
        if m is None:
            m = self.models[key] = Mailbox(key)
        return m

    def add(self, err):
        self.error_count += 1
        if len(self.errors) < self.max_errors:
            self.errors.append(err)

    def settle_suspects(self, present=None):
        """Report the suspect errors whose UID was not expunged (and, with
        present, a set of the UIDs left at the end, is still there)."""
        for m in self.models.values():
            for e in m.suspect:
                if e.uid in m.expunged or (present is not None and e.uid not in
                                           present.get(m.key, set())):
                    continue
                self.add(e)
            m.suspect = []


class Reply:
    __slots__ = ("status", "code", "text", "line")

    def __init__(self, status, code, text, line):
        self.status, self.code, self.text, self.line = status, code, text, line

    @property
    def ok(self):
        return self.status == "OK"


class Cmd:
    __slots__ = ("tag", "name", "line", "fut", "t0", "done", "seqs", "uids", "seen", "info",
                 "msgset", "expected_no")

    def __init__(self, tag, name, line, fut):
        self.tag, self.name, self.line, self.fut = tag, name, line, fut
        self.t0 = time.monotonic()
        self.done = None
        self.seqs = self.uids = self.seen = self.info = None
        self.msgset = False         # a FETCH/STORE/SEARCH by sequence number
        self.expected_no = False


class View:
    """A session's view of its selected mailbox."""

    def __init__(self, name, model):
        self.name, self.model = name, model
        self.uids = []              # per seq-1: UID > 0, or -(lower bound) if unknown
        self.flags = []             # per seq-1: frozenset of lower-case flags, or None
        self.modseq = {}
        self.keywords = None        # announced by FLAGS (lower case)
        self.uidvalidity = None
        self.uidnext = None         # at SELECT
        self.highestmodseq = None
        self.recent = 0
        self.readwrite = False
        self.top = 0                # highest UID known in this view
        self.deleted_by_me = set()
        self.selected = False       # the SELECT is done
        self.recent_unsure = False  # RECENT unknown: a (maybe) \\Recent message expunged


class Session(asyncio.Protocol):
    """One IMAP connection and its checks."""

    def __init__(self, checker, host, port, user, password, name=None, client=0, tls=None,
                 ssl_context=None, stats=None, timeout=60.0, rnd=None, rawlog=0):
        _gid[0] += 1
        self.gid = _gid[0]
        self.checker, self.host, self.port = checker, host, port
        self.user, self.password = user, password
        self.name = name or "c%d#%d" % (client, self.gid)
        self.client = client
        self.own_kw = "own%d" % client
        self.tls, self.ssl_context = tls, ssl_context
        self.stats = stats if stats is not None else Stats()
        self.timeout = timeout
        self.rnd = rnd or random.Random()
        self.transport = None
        self.buf = bytearray()
        self.segs, self.lits, self.need = [], [], 0
        self.inflight = []          # commands in the order sent
        self.ntag = 0
        self.caps = set()
        self.greeted = None
        self.cont = None            # future waiting for "+"
        self.bye = False
        self.closed = False
        self.view = None
        self.store_busy = {}        # uid -> STOREs of ours in flight
        self.authed = False
        self.rawlog = collections.deque(maxlen=rawlog) if rawlog else None

    # ------------------------------------------------------------ wire

    async def connect(self):
        loop = asyncio.get_running_loop()
        self.greeted = loop.create_future()
        ctx = None
        if self.tls == "implicit":
            ctx = self.ssl_context or client_context()
        await asyncio.wait_for(loop.create_connection(lambda: self, self.host, self.port,
                                                      ssl=ctx), self.timeout)
        line = await asyncio.wait_for(self.greeted, self.timeout)
        if not line.startswith(b"* OK"):
            raise ConnectionError("greeting: %s" % show(line))
        if self.tls == "starttls":
            await self.starttls()
        return line

    async def starttls(self):
        r = await self.wait(self.send("STARTTLS", "STARTTLS"))
        if not r.ok:
            raise ConnectionError("STARTTLS: %s" % show(r.line))
        loop = asyncio.get_running_loop()
        self.transport = await loop.start_tls(self.transport, self,
                                              self.ssl_context or client_context())
        self.caps = set()
        await self.wait(self.send("CAPABILITY", "CAPABILITY"))

    def connection_made(self, transport):
        self.transport = transport
        try:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def connection_lost(self, exc):
        self.closed = True
        if self.greeted and not self.greeted.done():
            self.greeted.set_exception(ConnectionError("closed before the greeting"))
        for c in self.inflight:
            if not c.fut.done():
                c.fut.set_exception(ConnectionError("connection closed during %s" % c.name))
                c.fut.exception()   # retrieved: a batch's first wait raises, not each
        self.inflight = []
        if self.cont and not self.cont.done():
            self.cont.set_exception(ConnectionError("connection closed"))
            self.cont.exception()

    def data_received(self, data):
        buf = self.buf
        buf += data
        pos, n = 0, len(buf)
        while True:
            if self.need:
                if n - pos < self.need:
                    break
                self.lits.append(bytes(buf[pos:pos + self.need]))
                pos += self.need
                self.need = 0
                continue
            i = buf.find(b"\r\n", pos)
            if i < 0:
                break
            line = bytes(buf[pos:i])
            pos = i + 2
            if line.endswith(b"}"):
                m = _LITERAL.search(line)
                if m:
                    self.segs.append(line[:m.start()])
                    k = int(m.group(1))
                    if k:
                        self.need = k
                    else:
                        self.lits.append(b"")
                    continue
            self.segs.append(line)
            if self.rawlog is not None:
                self.rawlog.append("S: " + show(b"{..}".join(self.segs), 200))
            segs, lits = self.segs, self.lits
            self.segs, self.lits = [], []
            try:
                self.response(segs, lits)
            except Exception as e:      # noqa: BLE001 - a parse failure is the server's error
                self.err("cannot parse the response (%s: %s)" % (type(e).__name__, e),
                         line=b"{..}".join(segs))
        if pos:
            del buf[:pos]

    def write(self, data):
        if self.transport is None or self.closed:
            raise ConnectionError("not connected")
        if self.rawlog is not None:
            self.rawlog.append("C: " + show(data.split(b"\r\n", 1)[0], 200))
        self.transport.write(data)

    def send(self, line, name=None, done=None, literal=None):
        """Send a command (without a literal, or with LITERAL+); returns its Cmd."""
        self.ntag += 1
        tag = "a%d" % self.ntag
        fut = asyncio.get_running_loop().create_future()
        c = Cmd(tag, name or line.split(" ", 1)[0].upper(), line, fut)
        c.done = done
        self.inflight.append(c)
        if literal is None:
            self.write(("%s %s\r\n" % (tag, line)).encode())
        else:
            self.write(("%s %s {%d+}\r\n" % (tag, line, len(literal))).encode() + literal
                       + b"\r\n")
        return c

    async def send_sync_literal(self, line, name, literal, done=None):
        """A command with a synchronizing literal: waits for "+"."""
        self.ntag += 1
        tag = "a%d" % self.ntag
        loop = asyncio.get_running_loop()
        c = Cmd(tag, name, line, loop.create_future())
        c.done = done
        self.inflight.append(c)
        self.cont = loop.create_future()
        self.write(("%s %s {%d}\r\n" % (tag, line, len(literal))).encode())
        done_first = await asyncio.wait_for(asyncio.wait([self.cont, c.fut],
                                                         return_when=asyncio.FIRST_COMPLETED),
                                            self.timeout)
        if self.cont in done_first[0] and not c.fut.done():
            self.write(literal + b"\r\n")
        self.cont = None
        return c

    async def wait(self, *cmds):
        """The replies of cmds, in order (raises on a timeout or a lost
        connection)."""
        out = []
        for c in cmds:
            if c is None:
                out.append(None)
                continue
            try:
                out.append(await asyncio.wait_for(asyncio.shield(c.fut), self.timeout))
            except asyncio.TimeoutError:
                self.err("no reply within %d s" % self.timeout, cmd=c)
                self.abort()
                raise ConnectionError("timeout")
        return out[0] if len(out) == 1 else out

    def abort(self):
        if self.transport:
            self.transport.abort()

    def close(self):
        if self.view is not None:
            self.close_view(clean=False)
        if self.transport and not self.closed:
            self.transport.close()

    # ------------------------------------------------------------ errors

    def err(self, what, line=None, cmd=None, uid=None, suspect=False, warning=False):
        if cmd is None and self.inflight:
            cmd = self.inflight[0]
        e = StressError(self.name, cmd.tag + " " + cmd.line if cmd else None,
                        line.decode("utf-8", "replace") if isinstance(line, bytes) else line,
                        what, uid)
        if self.rawlog is not None:
            e.what += "\n    last traffic:\n      " + "\n      ".join(self.rawlog)
        if suspect and self.view is not None:
            self.view.model.suspect.append(e)
        elif warning:
            self.checker.warn(e)
        else:
            self.checker.add(e)

    # ------------------------------------------------------------ responses

    def response(self, segs, lits):
        first = segs[0]
        if first.startswith(b"* "):
            self.untagged(b"\x00".join(segs) if lits else first, lits, segs)
        elif first.startswith(b"+"):
            if self.cont is not None and not self.cont.done():
                self.cont.set_result(first)
            else:
                self.err("unexpected continuation", line=first)
        else:
            self.tagged(first)

    def tagged(self, line):
        tag, _, rest = line.partition(b" ")
        status, _, rest = rest.partition(b" ")
        tag = tag.decode("latin-1")
        status = status.decode("latin-1").upper()
        for i, c in enumerate(self.inflight):
            if c.tag == tag:
                break
        else:
            self.err("tagged reply for no command of ours", line=line)
            return
        del self.inflight[i]
        m = _CODE.match(rest)
        code = m.group(1).decode("latin-1") if m else None
        text = rest[m.end():] if m else rest
        r = Reply(status, code, text.decode("utf-8", "replace"), line)
        elapsed = time.monotonic() - c.t0
        if code:
            self.resp_code(code, line)
        if status == "BAD":
            self.err("%s replied BAD" % c.name, line=line, cmd=c)
        elif status == "NO" and not c.expected_no:
            if c.name in ("FETCH", "FETCH2", "STORE", "DELETE") and EXPUNGED_NO.search(r.text +
                                                                                   (code or "")):
                pass
            elif c.name in ("COPY", "LOGIN"):
                pass        # COPY: as imaptest; LOGIN: the caller reports it
            else:
                self.err("%s failed (NO)" % c.name, line=line, cmd=c)
        elif status not in ("OK", "NO"):
            self.err("tagged reply neither OK, NO nor BAD", line=line, cmd=c)
        self.stats.count(c.name, status, elapsed)
        if c.done:
            try:
                c.done(c, r)
            except Exception as e:      # noqa: BLE001
                self.err("cannot check the reply (%s: %s)" % (type(e).__name__, e), line=line,
                         cmd=c)
        if not c.fut.done():
            c.fut.set_result(r)

    def resp_code(self, code, line):
        key, _, arg = code.partition(" ")
        key = key.upper()
        v = self.view
        if key == "CAPABILITY":
            self.caps = set(w.upper() for w in arg.split())
        elif v is None:
            return
        elif key == "UIDVALIDITY":
            self.set_uidvalidity(int(arg), line)
        elif key == "UIDNEXT":
            v.uidnext = int(arg)
        elif key == "HIGHESTMODSEQ":
            v.highestmodseq = int(arg)
        elif key == "READ-WRITE":
            v.readwrite = True
        elif key == "READ-ONLY":
            v.readwrite = False
        elif key == "PERMANENTFLAGS":
            try:
                t = tokenize(arg.encode(), [])
            except ValueError:
                t = None
            if not t or not isinstance(t[0], list) or not all(isinstance(f, str) for f in t[0]):
                self.err("malformed PERMANENTFLAGS", line=line)

    def set_uidvalidity(self, uv, line):
        v, m = self.view, self.view.model
        if uv == 0:
            self.err("UIDVALIDITY 0 (UIDVALIDITY is a nonzero number)", line=line)
            return
        if v.uidvalidity is not None and v.uidvalidity != uv:
            self.err("UIDVALIDITY changed within the session: %d -> %d" % (v.uidvalidity, uv),
                     line=line)
        v.uidvalidity = uv
        if m.uidvalidity is None:
            m.uidvalidity = uv
        elif m.uidvalidity != uv:
            self.err("UIDVALIDITY changed: %d -> %d" % (m.uidvalidity, uv), line=line)
            m.reset(uv)

    def untagged(self, text, lits, segs):
        rest = text[2:]
        sp = rest.find(b" ")
        w1 = rest if sp < 0 else rest[:sp]
        if w1.isdigit():
            n = int(w1)
            rest2 = rest[sp + 1:] if sp >= 0 else b""
            sp2 = rest2.find(b" ")
            w2 = (rest2 if sp2 < 0 else rest2[:sp2]).upper()
            line = b"{..}".join(segs)
            if w2 == b"FETCH":
                self.on_fetch(n, tokenize(rest2[sp2 + 1:], lits), line)
            elif w2 == b"EXISTS":
                self.on_exists(n, line)
            elif w2 == b"EXPUNGE":
                self.on_expunge(n, line)
            elif w2 == b"RECENT":
                if self.view is not None:
                    if n > len(self.view.uids):
                        self.err("RECENT %d above the %d messages" % (n, len(self.view.uids)),
                                 line=line)
                    self.view.recent = n
                    self.view.recent_unsure = False
            return
        w1 = w1.upper()
        arg = rest[sp + 1:] if sp >= 0 else b""
        if w1 in (b"OK", b"NO", b"BAD", b"BYE", b"PREAUTH"):
            m = _CODE.match(arg)
            if m:
                self.resp_code(m.group(1).decode("latin-1"), text)
            if w1 == b"BYE":
                self.bye = True
            elif w1 == b"BAD":
                self.err("untagged BAD", line=text)
            if self.greeted is not None and not self.greeted.done():
                self.greeted.set_result(text)
        elif w1 == b"FLAGS":
            self.on_flags(arg, text)
        elif w1 == b"CAPABILITY":
            self.caps = set(w.upper() for w in arg.decode("latin-1").split())
        elif w1 == b"STATUS":
            self.on_status(arg, lits, text)
        elif w1 == b"SEARCH":
            if self.view is not None:
                for w in arg.split():
                    if w.isdigit() and not 0 < int(w) <= len(self.view.uids) and \
                            self.inflight and self.inflight[0].msgset:
                        self.err("SEARCH returned seq %s above the count %d"
                                 % (w.decode(), len(self.view.uids)), line=text)
        elif w1 == b"VANISHED":
            self.on_vanished(arg, text)

    # ------------------------------------------------------------ mailbox events

    def on_flags(self, arg, line):
        try:
            t = tokenize(arg, [])
        except ValueError:
            t = None
        if not t or not isinstance(t[0], list) or not all(isinstance(f, str) for f in t[0]):
            self.err("malformed FLAGS", line=line)
            return
        if self.view is None:
            return
        kws = set()
        for f in t[0]:
            fl = f.lower()
            if fl.startswith("\\"):
                if fl not in SYSTEM_FLAGS:
                    self.err("unknown system flag %s in FLAGS" % f, line=line)
            else:
                kws.add(fl)
        self.view.keywords = kws

    def on_exists(self, n, line):
        v = self.view
        if v is None:
            return
        have = len(v.uids)
        if n < have:
            self.err("EXISTS went down from %d to %d without EXPUNGE" % (have, n), line=line)
            del v.uids[n:]
            del v.flags[n:]
        elif n > have:
            lb = v.top + 1
            if v.selected and v.uidnext and v.uidnext > lb:
                lb = v.uidnext
            v.uids.extend([-lb] * (n - have))
            v.flags.extend([None] * (n - have))

    def on_expunge(self, n, line):
        v = self.view
        if v is None:
            return
        if not self.inflight:
            self.err("EXPUNGE %d with no command in progress" % n, line=line)
        elif self.inflight[0].msgset:
            self.err("EXPUNGE %d while %s is in progress" % (n, self.inflight[0].name), line=line)
        if n == 0 or n > len(v.uids):
            self.err("EXPUNGE of seq %d, the mailbox has %d" % (n, len(v.uids)), line=line)
            return
        uid = v.uids.pop(n - 1)
        f = v.flags.pop(n - 1)
        if f is None or "\\recent" in f:
            # Dovecot sends RECENT only when its count differs from the
            # last one it sent, so after this the count is not known
            v.recent_unsure = True
        self.expunged(uid)

    def expunged(self, uid):
        v = self.view
        if uid > 0:
            v.model.expunged.add(uid)
            v.deleted_by_me.discard(uid)
            v.modseq.pop(uid, None)

    def on_vanished(self, arg, line):
        v = self.view
        if v is None:
            return
        earlier = arg.upper().startswith(b"(EARLIER)")
        if earlier:
            arg = arg[9:].strip()
        try:
            uids = parse_set(arg.decode(), 0)
        except ValueError:
            self.err("malformed VANISHED", line=line)
            return
        if earlier:
            return
        where = {u: i for i, u in enumerate(v.uids) if u > 0}
        unknown = any(u <= 0 for u in v.uids)
        for u in sorted(uids, reverse=True):
            i = where.get(u)
            if i is None:
                if not unknown:
                    self.err("VANISHED of UID %d, which the session never had" % u, line=line)
                continue
            del v.uids[i]
            del v.flags[i]
            where = {x: j for j, x in enumerate(v.uids) if x > 0}
            self.expunged(u)

    def on_status(self, arg, lits, line):
        try:
            t = tokenize(arg, lits)
        except ValueError:
            self.err("malformed STATUS", line=line)
            return
        if len(t) < 2 or not isinstance(t[1], list):
            self.err("malformed STATUS", line=line)
            return
        items = t[1]
        name = t[0].decode() if isinstance(t[0], bytes) else str(t[0])
        m = self.checker.models.get(self.model_key(name))
        if m is None:
            return
        c = self.inflight[0] if self.inflight else None
        for k, val in zip(items[::2], items[1::2]):
            k = str(k).upper()
            try:
                val = int(val)
            except (TypeError, ValueError):
                self.err("STATUS %s is not a number" % k, line=line)
                continue
            if k == "UIDVALIDITY" and val == 0:
                self.err("STATUS UIDVALIDITY 0 (UIDVALIDITY is a nonzero number; Dovecot "
                         "says 0 for a Maildir that another session is creating)", line=line)
            elif k == "UIDVALIDITY" and m.uidvalidity is not None and m.uidvalidity != val:
                self.err("UIDVALIDITY changed: %d -> %d (STATUS)" % (m.uidvalidity, val),
                         line=line)
            elif k == "UIDNEXT" and c is not None and c.info and val <= c.info.get("max_uid", 0) \
                    and (self.view is None or self.view.model is not m):
                # (of the selected mailbox STATUS may answer from the view)
                self.err("STATUS UIDNEXT %d is not above UID %d, known before the command"
                         % (val, c.info["max_uid"]), line=line)

    def learn_uid(self, seq, uid, line):
        v = self.view
        i = seq - 1
        cur = v.uids[i]
        if cur > 0:
            if cur != uid:
                self.err("UID of seq %d changed from %d to %d" % (seq, cur, uid), line=line)
                v.uids[i] = uid
            return
        if uid < -cur:
            self.err("seq %d, a new message, has UID %d: not above the UIDs the session knew "
                     "or below the UIDNEXT of its SELECT (want >= %d)" % (seq, uid, -cur),
                     line=line)
        j = i - 1
        while j >= 0 and v.uids[j] <= 0:
            j -= 1
        if j >= 0 and v.uids[j] >= uid:
            self.err("UIDs not ascending: seq %d has UID %d, seq %d UID %d"
                     % (j + 1, v.uids[j], seq, uid), line=line)
        j, n = i + 1, len(v.uids)
        while j < n and v.uids[j] <= 0:
            j += 1
        if j < n and v.uids[j] <= uid:
            self.err("UIDs not ascending: seq %d has UID %d, seq %d UID %d"
                     % (seq, uid, j + 1, v.uids[j]), line=line)
        v.uids[i] = uid
        if uid > v.top:
            v.top = uid
        v.model.learn_uid(uid)

    def on_fetch(self, seq, tokens, line):
        v = self.view
        if v is None:
            self.err("FETCH with no mailbox selected", line=line)
            return
        if seq == 0 or seq > len(v.uids):
            self.err("FETCH for seq %d, the mailbox has %d" % (seq, len(v.uids)), line=line)
            return
        if len(tokens) != 1 or not isinstance(tokens[0], list) or len(tokens[0]) % 2:
            self.err("FETCH is not a list of item pairs", line=line)
            return
        items = tokens[0]
        pairs = {}
        for k, val in zip(items[::2], items[1::2]):
            if not isinstance(k, str):
                self.err("FETCH item name is not an atom", line=line)
                return
            pairs[k.upper()] = val
        uid = pairs.get("UID")
        if uid is not None:
            try:
                uid = int(uid)
            except (TypeError, ValueError):
                self.err("FETCH UID is not a number", line=line)
                uid = None
            else:
                self.learn_uid(seq, uid, line)
        uid = v.uids[seq - 1]
        if "FLAGS" in pairs:
            self.on_flags_item(seq, uid, pairs["FLAGS"], line)
        if "MODSEQ" in pairs and uid > 0:
            ms = pairs["MODSEQ"]
            try:
                ms = int(ms[0])
            except (TypeError, ValueError, IndexError):
                self.err("malformed MODSEQ", line=line)
            else:
                old = v.modseq.get(uid)
                if old is not None and ms < old:
                    self.err("MODSEQ of UID %d went down: %d -> %d" % (uid, old, ms), line=line)
                v.modseq[uid] = ms
                if ms > v.model.max_modseq:
                    v.model.max_modseq = ms
        if uid > 0:
            self.on_content(uid, pairs, line)

    def on_flags_item(self, seq, uid, flist, line):
        v = self.view
        if not isinstance(flist, list):
            self.err("FLAGS is not a list", line=line)
            return
        fs = set()
        for f in flist:
            if not isinstance(f, str):
                self.err("FLAGS holds a non-atom", line=line)
                continue
            fl = f.lower()
            if fl.startswith("\\"):
                if fl not in SYSTEM_FLAGS:
                    self.err("unknown system flag %s" % f, line=line)
            elif v.keywords is not None and fl not in v.keywords:
                self.err("keyword %s used without being in FLAGS" % f, line=line)
                v.keywords.add(fl)
            fs.add(fl)
        fs = frozenset(fs)
        old = v.flags[seq - 1]
        v.flags[seq - 1] = fs
        for c in self.inflight:
            if c.name == "STORE" and c.seen is not None and seq in c.seen:
                c.seen[seq] = fs
        if uid <= 0:
            return
        m = v.model
        if "\\recent" in fs:
            owner = m.recent_owner.get(uid)
            if owner is None:
                if v.readwrite:
                    m.recent_owner[uid] = self.gid
            elif owner != self.gid:
                self.err("UID %d has \\Recent in two sessions (#%d and #%d)"
                         % (uid, owner, self.gid), line=line)
        elif old is not None and "\\recent" in old:
            self.err("UID %d lost \\Recent within the session" % uid, line=line)
        exp = m.owned.get((self.client, uid))
        if exp is not None and not self.store_busy.get(uid):
            if (self.own_kw in fs) != exp:
                self.err("owned keyword %s of UID %d changed: its owner stored it %s, the "
                         "FETCH shows it %s" % (self.own_kw, uid, "set" if exp else "unset",
                                                "set" if not exp else "unset"),
                         line=line, uid=uid, suspect=True)

    def on_content(self, uid, pairs, line):
        m = self.view.model
        for k, val in pairs.items():
            if k in ("UID", "FLAGS", "MODSEQ"):
                continue
            if expunged_placeholder(k, val):
                continue
            if k == "RFC822":
                k = "BODY[]"
            elif k == "RFC822.HEADER":
                k = "BODY[HEADER]"
            elif k == "RFC822.TEXT":
                k = "BODY[TEXT]"
            d = digest(val)
            self.same(m, uid, k, d, line)
            if k == "BODY[]" and isinstance(val, bytes):
                self.same(m, uid, "RFC822.SIZE", digest(str(len(val))), line,
                          "RFC822.SIZE differs from BODY[]'s %d octets" % len(val))
                cut = val.find(b"\r\n\r\n")
                if cut >= 0:
                    self.same(m, uid, "BODY[HEADER]", digest(val[:cut + 4]), line,
                              "BODY[HEADER] differs from BODY[]'s header")
                    self.same(m, uid, "BODY[TEXT]", digest(val[cut + 4:]), line,
                              "BODY[TEXT] differs from BODY[]'s text")

    def same(self, m, uid, item, d, line, what=None):
        key = (uid, item)
        old = m.content.get(key)
        if old is None:
            m.content[key] = (d, "%s: %s" % (self.name, show(line, 160)))
        elif old[0] != d:
            self.err("UID %d: %s (before: %s)" % (uid, what or "content changed: " + item,
                                                  old[1]), line=line)

    # ------------------------------------------------------------ commands

    def model_key(self, box):
        return (self.host, self.port, self.user, box.upper() if box.upper() == "INBOX" else box)

    async def login(self):
        r = await self.wait(self.send('LOGIN %s %s' % (quote(self.user), quote(self.password)),
                                      "LOGIN"))
        if r.ok:
            self.authed = True
            if not self.caps or "IMAP4REV1" not in self.caps and "IMAP4REV2" not in self.caps:
                await self.wait(self.send("CAPABILITY"))
        return r

    def send_select(self, box="INBOX", examine=False):
        if self.view is not None:
            self.close_view(clean=True)
        m = self.checker.model(self.model_key(box))
        self.view = View(box, m)
        m.sessions.add(self)
        info = {"max_uid": m.max_uid, "max_modseq": m.max_modseq, "closes": m.closes}
        line = "%s %s" % ("EXAMINE" if examine else "SELECT", quote(box))
        if "CONDSTORE" in self.caps:
            line += " (CONDSTORE)"
        c = self.send(line, "SELECT", done=self.select_done)
        c.info = info
        return c

    def select_done(self, c, r):
        v = self.view
        if not r.ok:
            v.model.sessions.discard(self)
            self.view = None
            return
        m = v.model
        v.selected = True
        if v.uidvalidity is None:
            self.err("SELECT without UIDVALIDITY", line=r.line, cmd=c)
        if v.uidnext is not None:
            if v.uidnext <= c.info["max_uid"]:
                self.err("UIDNEXT %d is not above UID %d, known before the SELECT"
                         % (v.uidnext, c.info["max_uid"]), line=r.line, cmd=c)
            for u in v.uids:
                if u > 0 and u >= v.uidnext:
                    self.err("UID %d at SELECT is not below its UIDNEXT %d" % (u, v.uidnext),
                             line=r.line, cmd=c)
                    break
            if m.floor is None:
                m.floor = v.uidnext
            if m.floor_wait and c.info["closes"] >= m.floor_wait:
                m.floor = max(m.floor, v.uidnext)
                m.floor_wait = 0
        if v.highestmodseq is not None and v.highestmodseq < c.info["max_modseq"]:
            self.err("HIGHESTMODSEQ %d below MODSEQ %d, known before the SELECT"
                     % (v.highestmodseq, c.info["max_modseq"]), line=r.line, cmd=c)
        if v.keywords is None:
            self.err("SELECT without FLAGS", line=r.line, cmd=c)

    def close_view(self, clean):
        """The session no longer has the mailbox: its \\Recent flags are gone."""
        v = self.view
        self.view = None
        if v is None:
            return
        m = v.model
        m.sessions.discard(self)
        if not v.readwrite:
            return
        m.closes += 1
        known = [u for u in v.uids if u > 0]
        if clean and len(known) == len(v.uids):
            top = max([v.top] + known)
            m.floor = max(m.floor or 0, top + 1)
        else:
            m.floor_wait = m.closes     # the next SELECT sent after this close sets it

    def send_fetch(self, seqs, items, name="FETCH"):
        c = self.send("FETCH %s (%s)" % (seqset(seqs), items), name)
        c.msgset = True
        return c

    def send_store(self, seqs, mode, flags, silent=False, name="STORE"):
        """STORE seqs [+-]FLAGS[.SILENT] (flags); the owned keyword's change
        is checked on its reply and remembered when it succeeds."""
        v = self.view
        line = "STORE %s %sFLAGS%s (%s)" % (seqset(seqs), mode, ".SILENT" if silent else "",
                                            " ".join(flags))
        c = self.send(line, name, done=self.store_done)
        c.msgset = True
        c.seqs = sorted(set(seqs))
        c.uids = [v.uids[s - 1] if 0 < s <= len(v.uids) else 0 for s in c.seqs]
        lower = [f.lower() for f in flags]
        c.info = {"mode": mode, "silent": silent, "own": self.own_kw in lower and mode in "+-"
                  and mode != "", "deleted": "\\deleted" in lower and mode == "+"}
        if c.info["own"]:
            c.seen = {s: None for s in c.seqs} if not silent else None
            for u in c.uids:
                if u > 0:
                    self.store_busy[u] = self.store_busy.get(u, 0) + 1
        return c

    def store_done(self, c, r):
        v = self.view
        info = c.info
        if info["own"]:
            for u in c.uids:
                if u > 0:
                    k = self.store_busy.get(u, 0) - 1
                    if k > 0:
                        self.store_busy[u] = k
                    else:
                        self.store_busy.pop(u, None)
        if v is None or not r.ok:
            return
        if info["own"]:
            want = info["mode"] == "+"
            for s, u in zip(c.seqs, c.uids):
                if u <= 0:
                    continue
                v.model.owned[(self.client, u)] = want
                if c.seen is None:
                    continue
                fs = c.seen.get(s)
                if fs is None:
                    # No FETCH: right if the flags did not change (Dovecot
                    # sends none then); the owned keyword only we change,
                    # so what the view knew of it must be what we wanted.
                    old = v.flags[s - 1] if s <= len(v.uids) and v.uids[s - 1] == u else None
                    if old is not None and (self.own_kw in old) != want:
                        self.err("STORE returned no FETCH FLAGS for seq %d (UID %d), though it "
                                 "changed %s" % (s, u, self.own_kw), line=r.line, cmd=c, uid=u,
                                 suspect=True)
                elif (self.own_kw in fs) != want:
                    self.err("STORE %sFLAGS (%s) on seq %d (UID %d): its FETCH shows it %s"
                             % (info["mode"], self.own_kw, s, u, "unset" if want else "set"),
                             line=r.line, cmd=c, uid=u, suspect=True)
        if info["deleted"]:
            for u in c.uids:
                if u > 0:
                    v.deleted_by_me.add(u)

    def send_expunge(self):
        return self.send("EXPUNGE", "EXPUNGE", done=self.expunge_done)

    def expunge_done(self, c, r):
        v = self.view
        if v is None or not r.ok:
            return
        left = [u for u in v.uids if u in v.deleted_by_me]
        if left:
            self.err("EXPUNGE left UID %s, which this session had flagged \\Deleted"
                     % ",".join(map(str, left[:10])), line=r.line, cmd=c, warning=True)
        v.deleted_by_me.clear()

    async def send_append(self, box, message, flags=None, date=None):
        m = self.checker.model(self.model_key(box))
        line = "APPEND %s" % quote(box)
        if flags:
            line += " (%s)" % " ".join(flags)
        if date:
            line += ' "%s"' % date
        info = {"max_uid": m.max_uid, "digest": digest(message), "model": m}
        if "LITERAL+" in self.caps or "LITERAL-" in self.caps and len(message) <= 4096:
            c = self.send(line, "APPEND", done=self.append_done, literal=message)
        else:
            c = await self.send_sync_literal(line, "APPEND", message, done=self.append_done)
        c.info = info
        return c

    def append_done(self, c, r):
        if not r.ok or not r.code or not r.code.upper().startswith("APPENDUID "):
            return
        m = c.info["model"]
        try:
            _, uv, uid = r.code.split()
            uv, uid = int(uv), int(uid)
        except ValueError:
            self.err("malformed APPENDUID", line=r.line, cmd=c)
            return
        if m.uidvalidity is not None and uv != m.uidvalidity:
            self.err("APPENDUID's UIDVALIDITY %d, the mailbox's is %d" % (uv, m.uidvalidity),
                     line=r.line, cmd=c)
            return
        if uid <= c.info["max_uid"]:
            self.err("APPENDUID %d is not above UID %d, known before the APPEND"
                     % (uid, c.info["max_uid"]), line=r.line, cmd=c)
        old = m.content.get((uid, "BODY[]"))
        if old is not None and old[0] != c.info["digest"]:
            self.err("UID %d (APPENDUID) was fetched with other content than appended (%s)"
                     % (uid, old[1]), line=r.line, cmd=c)
        m.content[(uid, "BODY[]")] = (c.info["digest"], "%s: APPEND %s" % (self.name, c.tag))
        m.origin[uid] = "APPEND by %s" % self.name
        m.learn_uid(uid)

    def send_copy(self, seqs, box):
        v = self.view
        c = self.send("COPY %s %s" % (seqset(seqs), quote(box)), "COPY", done=self.copy_done)
        c.msgset = False
        c.info = {"max_uid": v.model.max_uid, "dst": self.checker.model(self.model_key(box)),
                  "src": v.model, "box": box}
        return c

    def copy_done(self, c, r):
        if not r.ok or not r.code or not r.code.upper().startswith("COPYUID "):
            return
        try:
            _, uv, src, dst = r.code.split()
            dm = c.info["dst"]
            src, dst = parse_set(src, 0), parse_set(dst, 0)
        except ValueError:
            self.err("malformed COPYUID", line=r.line, cmd=c)
            return
        if len(src) != len(dst):
            self.err("COPYUID maps %d UIDs to %d" % (len(src), len(dst)), line=r.line, cmd=c)
            return
        if dm is c.info["src"] and min(dst) <= c.info["max_uid"]:
            self.err("COPYUID UID %d is not above UID %d, known before the COPY"
                     % (min(dst), c.info["max_uid"]), line=r.line, cmd=c)
        sm = c.info["src"]
        if sm.uidvalidity is not None and dm.uidvalidity not in (None, int(uv)):
            self.err("COPYUID's UIDVALIDITY %s, the mailbox's is %d" % (uv, dm.uidvalidity),
                     line=r.line, cmd=c)
        for s, d in zip(src, dst):
            for item in ("BODY[]", "BODYSTRUCTURE", "ENVELOPE", "RFC822.SIZE"):
                val = sm.content.get((s, item))
                if val is not None:
                    old = dm.content.get((d, item))
                    if old is not None and old[0] != val[0]:
                        self.err("UID %d, COPY of UID %d, has other %s" % (d, s, item),
                                 line=r.line, cmd=c)
                    dm.content[(d, item)] = val
            dm.learn_uid(d)
            dm.origin[d] = "COPY of %d by %s" % (s, self.name)

    async def logout(self):
        c = self.send("LOGOUT", "LOGOUT")
        try:
            r = await self.wait(c)
        except ConnectionError:
            self.close()
            raise
        if r.ok and not self.bye:
            self.err("LOGOUT's OK without an untagged BYE", line=r.line, cmd=c)
        self.close_view(clean=True)
        self.close()
        return r

    async def command(self, line):
        """One command given as text (run_commands): SELECT, STORE, EXPUNGE,
        FETCH, COPY and LOGOUT get their checks; LOGIN alone logs in;
        APPEND [mailbox] appends a sample message."""
        verb = line.split(" ", 1)[0].upper()
        if line.strip().upper() == "LOGIN":
            return await self.login()
        if verb in ("SELECT", "EXAMINE"):
            return await self.wait(self.send_select(unquote(line.split(" ", 1)[1].split(" (")[0]),
                                                    examine=verb == "EXAMINE"))
        if verb == "LOGOUT":
            return await self.logout()
        if verb == "EXPUNGE":
            return await self.wait(self.send_expunge())
        m = _STORE.match(line)
        if m and verb == "STORE" and self.view is not None:
            seqs = parse_set(m.group(1), len(self.view.uids))
            return await self.wait(self.send_store(seqs, m.group(2), m.group(4).split(),
                                                   bool(m.group(3))))
        if verb == "FETCH" and self.view is not None:
            c = self.send(line, "FETCH")
            c.msgset = True
            return await self.wait(c)
        if verb == "APPEND":
            box = unquote(line.split(" ", 2)[1]) if " " in line.strip() else "INBOX"
            return await self.wait(await self.send_append(box, Samples().next(self.rnd)))
        if verb == "COPY" and self.view is not None:
            seq, box = line.split(" ", 2)[1:]
            return await self.wait(self.send_copy(parse_set(seq, len(self.view.uids)),
                                                  unquote(box)))
        c = self.send(line)
        c.msgset = verb == "SEARCH"
        return await self.wait(c)


def quote(s):
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def unquote(s):
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] == '"':
        return s[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return s


def client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Stats:
    def __init__(self):
        self.ok = {}
        self.failed = {}
        self.time = {}

    def count(self, name, status, elapsed):
        d = self.ok if status == "OK" else self.failed
        d[name] = d.get(name, 0) + 1
        self.time[name] = self.time.get(name, 0.0) + elapsed


class Result:
    def __init__(self, stats, checker, seconds, checkpoints=0, deliveries=0, clients=0):
        self.per_command = dict(stats.ok)
        self.failed = dict(stats.failed)
        self.commands = sum(stats.ok.values()) + sum(stats.failed.values())
        self.logins = stats.ok.get("LOGIN", 0)
        self.errors = list(checker.errors)
        self.error_count = checker.error_count
        self.warnings = list(checker.warnings)
        self.warning_count = checker.warning_count
        self.seconds = seconds
        self.checkpoints = checkpoints
        self.deliveries = deliveries
        self.clients = clients
        n = {k: stats.ok.get(k, 0) + stats.failed.get(k, 0) for k in stats.time}
        self.latency = {k: 1000.0 * stats.time[k] / n[k] for k in stats.time if n[k]}

    @property
    def cps(self):
        return self.commands / self.seconds if self.seconds > 0 else 0.0

    @property
    def lps(self):
        return self.logins / self.seconds if self.seconds > 0 else 0.0

    def report(self, max_errors=20):
        out = ["%d commands in %.1f s: %.1f commands/s, %d logins: %.1f logins/s; %d clients, "
               "%d checkpoints, %d deliveries; %d errors, %d warnings"
               % (self.commands, self.seconds, self.cps, self.logins, self.lps, self.clients,
                  self.checkpoints, self.deliveries, self.error_count, self.warning_count)]
        names = sorted(set(self.per_command) | set(self.failed),
                       key=lambda k: list(STATES).index(k) if k in STATES else 99)
        out.append("  " + "  ".join("%s %d%s (%.1f ms)" % (
            k, self.per_command.get(k, 0),
            "+%d NO/BAD" % self.failed[k] if self.failed.get(k) else "",
            self.latency.get(k, 0.0)) for k in names))
        for e in self.errors[:max_errors]:
            out.append("  " + str(e).replace("\n", "\n  "))
        if self.error_count > max_errors:
            out.append("  ... and %d more errors" % (self.error_count - max_errors))
        nw = max(1, max_errors // 4)
        for e in self.warnings[:nw]:
            out.append("  warning: " + str(e).replace("\n", "\n  "))
        if self.warning_count > nw:
            out.append("  ... and %d more warnings" % (self.warning_count - nw))
        return "\n".join(out)


# ------------------------------------------------------------ sample messages

_WORDS = ("the of and to in is was for it with as on be at by not are but from or have an "
          "they which one you were all she there would their we him been has when who will "
          "more if out so up said what its about than into them can only other time new some "
          "could these two may first then do any like now over such our even most made after "
          "meeting report budget schedule delivery server mailbox quarter invoice project "
          "review draft attached please thanks regards tomorrow morning agenda figures").split()


def _text(rnd, size):
    lines, n = [], 0
    while n < size:
        line = " ".join(rnd.choice(_WORDS) for _ in range(rnd.randint(6, 12)))
        if rnd.random() < 0.05:
            line = "." + line
        lines.append(line)
        n += len(line) + 2
        if rnd.random() < 0.15:
            lines.append("")
    return lines


def sample_bodies(seed=1):
    """Bodies (header-less templates) of a few sizes and shapes: plain text
    of about 1.5 KB, 6 KB and 30 KB, a multipart/alternative and a
    multipart/mixed with a base64 attachment."""
    rnd = random.Random(seed)
    out = []
    for size in (1500, 6000, 30000):
        out.append(("text/plain; charset=us-ascii", "\r\n".join(_text(rnd, size)) + "\r\n"))
    alt = "alt-%d" % rnd.getrandbits(32)
    body = ["This is a multi-part message in MIME format.", "", "--" + alt,
            "Content-Type: text/plain; charset=us-ascii", ""] + _text(rnd, 1200) + \
        ["", "--" + alt, "Content-Type: text/html; charset=us-ascii", "",
         "<html><body><p>"] + _text(rnd, 1500) + ["</p></body></html>", "", "--" + alt + "--", ""]
    out.append(('multipart/alternative; boundary="%s"' % alt, "\r\n".join(body)))
    mix = "mix-%d" % rnd.getrandbits(32)
    blob = bytes(rnd.getrandbits(8) for _ in range(9000))
    import base64
    b64 = base64.encodebytes(blob).decode().replace("\n", "\r\n").rstrip("\r\n")
    body = ["--" + mix, "Content-Type: text/plain; charset=us-ascii", ""] + _text(rnd, 800) + \
        ["", "--" + mix, "Content-Type: application/octet-stream; name=\"data.bin\"",
         "Content-Transfer-Encoding: base64",
         "Content-Disposition: attachment; filename=\"data.bin\"", "", b64, "",
         "--" + mix + "--", ""]
    out.append(('multipart/mixed; boundary="%s"' % mix, "\r\n".join(body)))
    return out


class Samples:
    """Messages for APPEND: a template each time, with headers of their own
    (a unique Message-ID), CRLF line ends."""

    def __init__(self, seed=1):
        self.bodies = sample_bodies(seed)
        self.n = 0
        self.tag = "%d.%d" % (int(time.time()), random.getrandbits(24))

    def next(self, rnd):
        self.n += 1
        ctype, body = self.bodies[rnd.randrange(len(self.bodies))]
        t = time.gmtime(1700000000 + self.n * 61)
        head = ("From: Sender %d <sender%d@example.org>\r\n"
                "To: User <user@example.test>\r\n"
                "Subject: imapstress message %d\r\n"
                "Date: %s\r\n"
                "Message-ID: <%s.%d@imapstress.example>\r\n"
                "MIME-Version: 1.0\r\n"
                "Content-Type: %s\r\n\r\n"
                % (self.n % 97, self.n % 97, self.n,
                   time.strftime("%a, %d %b %Y %H:%M:%S +0000", t), self.tag, self.n, ctype))
        return (head + body).encode()


# ------------------------------------------------------------ stress

class Stress:
    def __init__(self, host, port, users, clients, seconds, tls, deliver, expunger, msgs,
                 checkpoint, copybox, mailbox, logout, deliver_every, seed, timeout,
                 ssl_context, final_check, log, rawlog=0):
        self.rawlog = rawlog
        self.host, self.port, self.users = host, port, users
        self.nclients, self.seconds, self.tls = clients, seconds, tls
        self.deliver, self.expunger, self.msgs = deliver, expunger, msgs
        self.checkpoint_every, self.copybox, self.mailbox = checkpoint, copybox, mailbox
        self.logout_pct = 100 if logout is True else (0 if logout is False else int(logout))
        self.deliver_every = deliver_every
        self.rnd = random.Random(seed)
        self.timeout = timeout
        self.ssl_context = ssl_context or client_context()
        self.final_check = final_check
        self.log = log
        self.checker = Checker()
        self.stats = Stats()
        self.samples = Samples(self.rnd.getrandbits(32))
        self.stop = False
        self.sessions = {}          # client -> Session (logged in)
        self.cp_pending = None      # a future while a checkpoint waits for everyone
        self.cp_resume = None
        self.parked = set()
        self.active = set()
        self.checkpoints = 0
        self.deliveries = 0

    async def gate(self, who):
        """Between batches: wait while a checkpoint runs."""
        while self.cp_resume is not None:
            self.parked.add(who)
            if self.parked >= self.active and self.cp_pending and not self.cp_pending.done():
                self.cp_pending.set_result(True)
            await self.cp_resume
            self.parked.discard(who)

    def leave(self, who):
        self.active.discard(who)
        self.parked.discard(who)
        if self.cp_resume is not None and self.parked >= self.active and self.cp_pending \
                and not self.cp_pending.done():
            self.cp_pending.set_result(True)

    def want(self, state):
        return self.rnd.randrange(100) < STATES[state][0]

    def again(self, state):
        return self.rnd.randrange(100) < STATES[state][1]

    async def client(self, idx):
        user, password = self.users[idx % len(self.users)]
        rnd = self.rnd
        self.active.add(idx)
        try:
            while not self.stop:
                await self.gate(idx)
                if self.stop:
                    break
                s = Session(self.checker, self.host, self.port, user, password, client=idx,
                            tls=self.tls, ssl_context=self.ssl_context, stats=self.stats,
                            timeout=self.timeout, rnd=rnd, rawlog=self.rawlog)
                try:
                    await s.connect()
                    r = await s.login()
                    if not r.ok:
                        s.err("LOGIN failed", line=r.line)
                        s.close()
                        await asyncio.sleep(0.5)
                        continue
                    self.sessions[idx] = s
                    await self.session(s, rnd)
                except (ConnectionError, OSError, asyncio.TimeoutError, ssl.SSLError) as e:
                    s.err("connection failed: %s: %s" % (type(e).__name__, e))
                    s.close()
                    await asyncio.sleep(0.2)
                except Exception as e:      # noqa: BLE001 - reported, and the client goes on
                    s.err("the client failed: %s: %s" % (type(e).__name__, e))
                    s.close()
                    await asyncio.sleep(0.2)
                finally:
                    self.sessions.pop(idx, None)
                    s.close()
        finally:
            self.leave(idx)

    async def session(self, s, rnd):
        box = self.mailbox
        first = True
        while True:
            await self.gate(s.client)
            if self.stop:
                await s.logout()
                return
            batch = []
            if self.want("LIST"):
                batch.append(s.send('LIST "" *', "LIST"))
            if self.want("STATUS"):
                c = s.send("STATUS %s (MESSAGES UNSEEN RECENT UIDNEXT UIDVALIDITY)"
                           % quote(box), "STATUS")
                c.info = {"max_uid": self.checker.model(s.model_key(box)).max_uid}
                batch.append(c)
            if first:
                batch.append(s.send_select(box))
                first = False
            await s.wait(*batch) if batch else None
            if s.view is None:
                await s.logout()
                return
            await self.gate(s.client)
            v = s.view
            n = len(v.uids)
            batch = []
            if n:
                # FETCH: up to 100 random seqs, UID FLAGS and 1-4 random items
                seqs = [rnd.randrange(n) + 1 for _ in range(min(n, 100))]
                items = ["UID", "FLAGS"]
                for _ in range(rnd.randint(1, 4)):
                    if rnd.randrange(4):
                        items.append(rnd.choice(FETCH_FIELDS))
                    else:
                        items.append("BODY.PEEK[HEADER.FIELDS (%s)]" % " ".join(
                            rnd.choice(HEADER_FIELDS) for _ in range(rnd.randint(1, 4))))
                batch.append(s.send_fetch(seqs, " ".join(items)))
                while True:
                    batch.append(s.send_fetch([rnd.randrange(n) + 1],
                                              "UID " + rnd.choice(FETCH2_FIELDS), "FETCH2"))
                    if not self.again("FETCH2"):
                        break
                if self.copybox and self.want("COPY"):
                    # COPY may expunge: another one waits for it (imaptest)
                    while True:
                        a = rnd.randrange(n) + 1
                        b = a + min(rnd.randrange(n - a + 1), 5)
                        batch.append(s.send_copy(range(a, min(b, n) + 1), self.copybox))
                        if not self.again("COPY"):
                            break
                        await s.wait(*batch)
                        batch = []
                        n = len(s.view.uids) if s.view is not None else 0
                        if not n:
                            break
                await s.wait(*batch)
                if s.view is None:
                    return
                batch = []
                await self.gate(s.client)
                v = s.view
                n = len(v.uids)
            if n:
                known = [i + 1 for i, u in enumerate(v.uids) if u > 0]
                if self.want("STORE") and known:
                    k = rnd.randrange(n if n < 10 else min(n // 5, 50))
                    seqs = [rnd.choice(known) for _ in range(k)]
                    if seqs:
                        flags = rnd.sample(SHARED_FLAGS + [s.own_kw] * 2, rnd.randint(1, 3))
                        flags = sorted(set(flags))
                        mode = rnd.choice("+-")
                        silent = rnd.randrange(2) == 0
                        batch.append(s.send_store(seqs, mode, flags, silent))
                        if silent and s.own_kw in flags:
                            batch.append(s.send_fetch(seqs, "UID FLAGS"))
                if self.expunger:
                    # imaptest: rand % (n - msgs) above msgs + 5, else rand
                    # % 5, which empties the mailbox; here rand % 3 near
                    # msgs (the APPEND rate) and none well below it, so
                    # that it stays around msgs
                    if n > self.msgs + 5:
                        k = rnd.randrange(n - self.msgs)
                    elif n >= self.msgs - 5:
                        k = rnd.randrange(3)
                    else:
                        k = 0
                    seqs = [rnd.randrange(n) + 1 for _ in range(k)]
                    if seqs:
                        batch.append(s.send_store(seqs, "+", ["\\Deleted"],
                                                  rnd.randrange(2) == 0, "DELETE"))
                    batch.append(s.send_expunge())
            if n < self.msgs:
                while True:
                    flags = None
                    if rnd.randrange(2):
                        flags = sorted(set(rnd.sample(SHARED_FLAGS, rnd.randint(1, 2))))
                    date = None
                    if rnd.randrange(2):
                        date = time.strftime("%d-%b-%Y %H:%M:%S +0000",
                                             time.gmtime(time.time() - rnd.randrange(86400 * 30)))
                    batch.append(await s.send_append(box, self.samples.next(rnd), flags, date))
                    if not self.again("APPEND"):
                        break
            if batch:
                await s.wait(*batch)
            if s.view is None:
                return
            if self.stop or rnd.randrange(100) < self.logout_pct:
                await self.gate(s.client)
                await s.logout()
                return

    async def deliverer(self):
        loop = asyncio.get_running_loop()
        who = "deliver"
        self.active.add(who)
        i = 0
        try:
            while not self.stop:
                await self.gate(who)
                if self.stop:
                    break
                user = self.users[i % len(self.users)][0]
                i += 1
                try:
                    await loop.run_in_executor(None, self.deliver, user)
                    self.deliveries += 1
                except Exception as e:      # noqa: BLE001
                    self.checker.add(StressError("deliver", None, None,
                                                 "the delivery callback failed: %s: %s"
                                                 % (type(e).__name__, e)))
                await asyncio.sleep(self.deliver_every)
        finally:
            self.leave(who)

    async def checkpointer(self):
        while not self.stop:
            await asyncio.sleep(self.checkpoint_every)
            if self.stop:
                break
            loop = asyncio.get_running_loop()
            self.cp_pending = loop.create_future()
            self.cp_resume = loop.create_future()
            if self.parked >= self.active:
                self.cp_pending.set_result(True)
            try:
                await asyncio.wait_for(self.cp_pending, self.timeout)
                await checkpoint(self.checker, list(self.sessions.values()))
                self.checkpoints += 1
            except asyncio.TimeoutError:
                self.checker.add(StressError("checkpoint", None, None,
                                             "sessions did not stop within %d s for a checkpoint"
                                             % self.timeout))
            except ConnectionError:
                pass
            finally:
                r, self.cp_resume = self.cp_resume, None
                self.cp_pending = None
                r.set_result(True)

    async def final(self):
        """One more session per user: the owned keywords as their owners
        stored them, and which UIDs are left (void suspect errors)."""
        present = {}
        for user, password in self.users:
            s = Session(self.checker, self.host, self.port, user, password, name="final:" + user,
                        client=-1, tls=self.tls, ssl_context=self.ssl_context, stats=Stats(),
                        timeout=self.timeout)
            try:
                await s.connect()
                r = await s.login()
                if not r.ok:
                    s.err("LOGIN failed", line=r.line)
                    continue
                await s.wait(s.send_select(self.mailbox, examine=True))
                v = s.view
                if v is None:
                    continue
                if v.uids:
                    await s.wait(s.send_fetch(range(1, len(v.uids) + 1), "UID FLAGS"))
                m = v.model
                present[m.key] = set(u for u in v.uids if u > 0)
                where = {u: f for u, f in zip(v.uids, v.flags)}
                for (client, uid), want in m.owned.items():
                    f = where.get(uid)
                    if f is not None and client >= 0 and (("own%d" % client) in f) != want:
                        s.err("at the end, owned keyword own%d of UID %d is %s; its owner "
                              "stored it %s" % (client, uid, "set" if not want else "unset",
                                                "set" if want else "unset"), line=None, uid=uid)
                await s.logout()
            except (ConnectionError, OSError, asyncio.TimeoutError, ssl.SSLError) as e:
                s.err("final check: %s: %s" % (type(e).__name__, e))
            finally:
                s.close()
        return present

    async def main(self):
        t0 = time.monotonic()
        tasks = [asyncio.ensure_future(self.client(i)) for i in range(self.nclients)]
        extra = []
        if self.deliver:
            extra.append(asyncio.ensure_future(self.deliverer()))
        if self.checkpoint_every:
            extra.append(asyncio.ensure_future(self.checkpointer()))
        if self.log:
            extra.append(asyncio.ensure_future(self.progress(t0)))
        await asyncio.sleep(self.seconds)
        self.stop = True
        await asyncio.wait(tasks, timeout=self.timeout + 5)
        elapsed = time.monotonic() - t0
        if extra:
            await asyncio.wait(extra, timeout=self.timeout + max(self.checkpoint_every, 1) + 5)
        for t in tasks + extra:
            t.cancel()
        present = None
        if self.final_check:
            present = await self.final()
        self.checker.settle_suspects(present)
        return Result(self.stats, self.checker, elapsed, self.checkpoints, self.deliveries,
                      self.nclients)

    async def progress(self, t0):
        last = 0
        while not self.stop:
            await asyncio.sleep(1.0)
            n = sum(self.stats.ok.values()) + sum(self.stats.failed.values())
            self.log("%5.1f s: %d commands (+%d), %d logins, %d errors"
                     % (time.monotonic() - t0, n, n - last, self.stats.ok.get("LOGIN", 0),
                        self.checker.error_count))
            last = n


async def checkpoint(checker, sessions):
    """Every session with a mailbox selected sends NOOP and FETCH 1:* (UID
    FLAGS); then the views of each mailbox must agree."""
    sel = [s for s in sessions if s.view is not None and not s.closed]
    if not sel:
        return
    await asyncio.gather(*[s.wait(s.send("NOOP", "NOOP")) for s in sel])
    cmds = []
    for s in sel:
        if s.view is not None and s.view.uids:
            cmds.append(s.wait(s.send_fetch(range(1, len(s.view.uids) + 1), "UID FLAGS",
                                            "CHECKPOINT")))
    await asyncio.gather(*cmds)
    boxes = {}
    for s in sel:
        if s.view is not None:
            boxes.setdefault(s.view.model.key, []).append(s)
    for key, group in boxes.items():
        compare(checker, group)


def compare(checker, group):
    m = group[0].view.model
    first = group[0]
    ref = first.view.uids

    def err(s, what):
        what = "checkpoint: " + what
        if s.rawlog is not None:
            what += "\n    last traffic:\n      " + "\n      ".join(s.rawlog)
        checker.add(StressError(s.name, "checkpoint", None, what))
    for s in group[1:]:
        if s.view.uids != ref:
            a = set(s.view.uids) - set(ref)
            b = set(ref) - set(s.view.uids)
            err(s, "%d messages, %s has %d (UIDs only here: %s; only there: %s)"
                % (len(s.view.uids), first.name, len(ref), sorted(a)[:10], sorted(b)[:10]))
    flags = {}
    recent = {}
    owned = {}
    for (client, uid), want in m.owned.items():
        owned.setdefault(uid, []).append(("own%d" % client, want))
    for s in group:
        v = s.view
        nrecent = 0
        for u, f in zip(v.uids, v.flags):
            if u <= 0 or f is None:
                continue
            for kw, want in owned.get(u, ()):
                if (kw in f) != want:
                    err(s, "owned keyword %s of UID %d is %s; its owner stored it %s"
                        % (kw, u, "set" if not want else "unset", "set" if want else "unset"))
            if "\\recent" in f:
                nrecent += 1
                if v.readwrite:
                    recent.setdefault(u, []).append(s)
            g = f - {"\\recent"}
            other = flags.get(u)
            if other is None:
                flags[u] = (g, s)
            elif other[0] != g:
                err(s, "UID %d has flags (%s), %s sees (%s)"
                    % (u, " ".join(sorted(g)), other[1].name, " ".join(sorted(other[0]))))
        if nrecent != v.recent and not v.recent_unsure:
            err(s, "RECENT %d, but %d messages have \\Recent" % (v.recent, nrecent))
    for u, ss in recent.items():
        if len(ss) > 1:
            err(ss[1], "UID %d has \\Recent in %s too" % (u, ss[0].name))
    rw = [s for s in group if s.view.readwrite]
    if m.floor is not None and not m.floor_wait and rw and len(rw) == len(group):
        missing = [u for u in ref if u >= m.floor and u not in recent]
        if missing:
            err(first, "UID %s (since the \\Recent floor UID %d) \\Recent in no session"
                % (", ".join("%d (%s)" % (u, m.origin.get(u, "?")) for u in missing[:10]),
                   m.floor))
        total = sum(s.view.recent for s in rw)
        since = sum(1 for u in ref if u >= m.floor)
        if total < since and not any(s.view.recent_unsure for s in rw):
            err(first, "total RECENT %d over %d sessions, but %d messages arrived since UID %d"
                % (total, len(rw), since, m.floor))


def run_stress(host, port, users, clients=10, seconds=10, tls=None, deliver=None, expunger=True,
               msgs=30, checkpoint=0, copybox=None, mailbox="INBOX", logout=True,
               deliver_every=1.0, seed=None, timeout=60, ssl_context=None, final_check=True,
               log=None, rawlog=0, strict=False):
    """imaptest's stress mode: clients sessions (users[i % len(users)])
    for seconds; see the module's text.  Returns a Result."""
    if tls not in (None, "starttls", "implicit"):
        raise ValueError("tls is None, 'starttls' or 'implicit'")
    st = Stress(host, port, list(users), clients, seconds, tls, deliver, expunger, msgs,
                checkpoint, copybox, mailbox, logout, deliver_every, seed, timeout, ssl_context,
                final_check, log, rawlog)
    st.checker.strict = strict
    return asyncio.run(st.main())


def run_commands(host, port, user, password, steps, tls=None, timeout=10, strict=False):
    """Run [(session, command)] in order: a new session name connects; the
    command "LOGIN" logs in, "CHECKPOINT" compares every open session's
    view (after NOOP and FETCH 1:* (UID FLAGS)), anything else is sent as
    it is (SELECT, STORE, EXPUNGE, FETCH, COPY and LOGOUT with their
    checks).  A session's client number, for its owned keyword own<N>, is
    its place among the names (0, 1, ...).  Returns a Result."""
    async def go():
        checker, stats = Checker(strict=strict), Stats()
        sessions = {}
        t0 = time.monotonic()
        try:
            for name, line in steps:
                if line.upper() == "CHECKPOINT":
                    await checkpoint(checker, list(sessions.values()))
                    continue
                s = sessions.get(name)
                if s is None:
                    s = sessions[name] = Session(checker, host, port, user, password, name=name,
                                                 client=len(sessions), tls=tls, stats=stats,
                                                 timeout=timeout)
                    await s.connect()
                try:
                    await s.command(line)
                except ConnectionError as e:
                    if not s.closed:
                        s.err("connection failed: %s" % e)
        finally:
            for s in sessions.values():
                s.close()
        checker.settle_suspects()
        return Result(stats, checker, time.monotonic() - t0, clients=len(sessions))
    return asyncio.run(go())


# ------------------------------------------------------------ a blocking client

class SimpleClient:
    """A blocking IMAP client for set-ups and idle sessions: cmd() returns
    (tagged line, [untagged lines]) as str; literals are read and kept
    inside the lines."""

    def __init__(self, host, port, tls=None, timeout=30, ssl_context=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.ctx = ssl_context or client_context()
        if tls == "implicit":
            self.sock = self.ctx.wrap_socket(self.sock)
        self.buf = b""
        self.n = 0
        self.greeting = self.response()
        if tls == "starttls":
            tagged, _ = self.cmd("STARTTLS")
            if " OK" not in tagged:
                raise ConnectionError("STARTTLS: " + tagged)
            self.sock = self.ctx.wrap_socket(self.sock)

    def line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("connection closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def response(self):
        out = self.line()
        while True:
            m = _LITERAL.search(out)
            if not m:
                return out.decode("utf-8", "replace")
            n = int(m.group(1))
            while len(self.buf) < n:
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("connection closed")
                self.buf += data
            out += b"\r\n" + self.buf[:n]
            self.buf = self.buf[n:]
            out += self.line()

    def cmd(self, line):
        self.n += 1
        tag = "s%d" % self.n
        self.sock.sendall(("%s %s\r\n" % (tag, line)).encode())
        untagged = []
        while True:
            r = self.response()
            if r.startswith(tag + " "):
                return r, untagged
            untagged.append(r)

    def login(self, user, password):
        tagged, _ = self.cmd("LOGIN %s %s" % (quote(user), quote(password)))
        if not tagged.split(" ")[1:2] == ["OK"]:
            raise ConnectionError("LOGIN %s: %s" % (user, tagged))
        return tagged

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ------------------------------------------------------------ CLI

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=143)
    ap.add_argument("--user", action="append", required=True,
                    help="user name (repeat for more users; clients take them in turn)")
    ap.add_argument("--password", required=True, help="every user's password")
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--secs", type=float, default=30)
    ap.add_argument("--tls", choices=("starttls", "implicit"))
    ap.add_argument("--msgs", type=int, default=30, help="messages to keep in the mailbox")
    ap.add_argument("--checkpoint", type=float, default=0, help="seconds between checkpoints")
    ap.add_argument("--copybox", help="mailbox for COPY (imaptest: none, no COPY)")
    ap.add_argument("--mailbox", default="INBOX")
    ap.add_argument("--no-logout", action="store_true",
                    help="sessions never log out (exact \\Recent checks at checkpoints)")
    ap.add_argument("--no-expunge", action="store_true", help="no DELETE and EXPUNGE")
    ap.add_argument("--seed", type=int)
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    ap.add_argument("--strict", action="store_true", help="warnings count as errors")
    ap.add_argument("--rawlog", type=int, default=0, metavar="N",
                    help="show each error with its session's last N lines of traffic")
    args = ap.parse_args(argv)
    users = [(u, args.password) for u in args.user]
    r = run_stress(args.host, args.port, users, clients=args.clients, seconds=args.secs,
                   tls=args.tls, expunger=not args.no_expunge, msgs=args.msgs,
                   checkpoint=args.checkpoint, copybox=args.copybox, mailbox=args.mailbox,
                   logout=not args.no_logout, seed=args.seed,
                   log=None if args.quiet else (lambda s: print(s, flush=True)),
                   rawlog=args.rawlog, strict=args.strict)
    print(r.report(max_errors=50))
    return 1 if r.error_count else 0


if __name__ == "__main__":
    sys.exit(main())
