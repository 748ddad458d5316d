#!/usr/bin/env python3
"""t/51-pop3d-clients.t - pop3d with real POP3 clients: fetchmail, getmail6
and mutt, on 110 without TLS (a client on the host itself counts as
secured), on 110 with STLS and on 995 (implicit TLS).

One instance with its stock master.conf (pop3d on 110 and 995, the mail
half on the unix service pop3).  Alice receives the mail and has a mail
password (mailctl user add --password-stdin); the clients run as another
account of their own, with HOME and every file of theirs in a directory of
that account.  Each run first fills Alice's ~/Maildir with six messages:
three through smtpd and local (a plain one; an 8-bit one, UTF-8 in a
header and the body and octets 0x80-0xff; one whose lines start with "."
and whose last line is "."; local writes LF-only files) and three written
straight into Maildir/new as another delivery agent might (CRLF line
ends; no line end after the last line; a 150 KB CRLF file with a CR as
the last octet of pop3d's first 64 KiB read and its LF the first of the
next, and a line "..." that starts exactly at the second read).
A run starts from an empty Maildir (what a failed run left is removed).

For every run:
 - the client exits as it should, and stored exactly these messages, each
   once: byte for byte the Maildir file with LF line ends (a CRLF file
   with CRLF as LF, the unterminated last line ended), give or take the
   header fields the client adds, which must be the client's own: fetchmail
   its "Received: ... (fetchmail-...)"; getmail Delivered-To:, Return-Path:
   and "Received: ... with POP3[-SSL] getmail6 ..."; mutt's copy-message
   Content-Length: and Lines:, checked against the body it stored;
 - the log has the session's "login: user=<alice>, method=MECH,
   client=[127.0.0.1]:PORT" line, with ", TLS" exactly on STLS and 995,
   and its logout line with the right del= count;
 - a client that deletes leaves none of the run's messages in ~/Maildir
   (new/ or cur/).

 1. fetchmail (rc file, an MDA script that writes each message to a file
    of its own; never an MTA): 110 with sslproto '' (no TLS; TOP and
    DELE), 110 with STLS required (fetchall: RETR and DELE), 995 with
    keep + uidl twice (the second run fetches nothing and exits 1, the
    messages stay), one message more and a third keep run fetches only
    that one, then a run without keep that deletes all.  The self-signed
    certificate: "no sslcertck" with sslfingerprint, the MD5 of the
    instance's certificate, which fetchmail does check.
 2. getmail6 (getmailrc in its getmaildir, destination Maildir):
    SimplePOP3Retriever on 110 with delete; SimplePOP3SSLRetriever on 995
    (no verification but ssl_fingerprints, the certificate's SHA-256) with
    read_all = false and delete = false twice (the second run retrieves
    nothing, though RETR moved the messages to cur/ with the Seen flag:
    their UIDLs stay), one message more fetched alone, then read_all and
    delete.  getmail6 has no STLS for POP3: that case is skipped.
 3. mutt, driven on a pseudo-terminal (it wants one) with -e 'push ...',
    two ways on each of 110, STLS and 995: <fetch-mail> (pop_host,
    pop_delete=yes, the messages go to a Maildir spoolfile), and browsing
    the POP mailbox itself (-f pop[s]://alice@..., UIDL, TOP, RETR;
    <copy-message> of every message to a Maildir, <delete-pattern>,
    <sync-mailbox>: DELE).  The certificate: certificate_file,
    ssl_verify_host=no.  Logins: GNU SASL's pick on 110 (SCRAM-SHA-256),
    AUTH LOGIN, AUTH PLAIN and USER/PASS asked for by name, and mutt's own
    pick under TLS too (SCRAM-SHA-256): pop3d offers no
    SCRAM-SHA-256-PLUS, which mutt's GNU SASL code would pick, fail to do
    (no channel binding), cancel with "*" and never read the -ERR that RFC
    5034 4 requires, so that its next command (USER) read that -ERR and
    the login failed.  That the server answers "*" with one -ERR and the
    session goes on is checked first, with a socket on 995.

At the end: no panic, fatal error or crash in the log, the password in no
log line.  Every process is cleaned up by PID.  Skips without root, or
when none of the three clients is installed."""
import atexit
import difflib
import fcntl
import hashlib
import os
import pwd
import re
import select
import shutil
import smtplib
import socket
import ssl
import struct
import subprocess
import sys
import termios
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, diag, done, skip_all  # noqa: E402

if os.geteuid() != 0:
    skip_all("master must run as root")
FETCHMAIL = shutil.which("fetchmail")
GETMAIL = shutil.which("getmail")
MUTT = shutil.which("mutt")
if not (FETCHMAIL or GETMAIL or MUTT):
    skip_all("none of fetchmail, getmail (getmail6) and mutt is installed")

import posthorn  # noqa: E402
from clienttest import kill_tree, added_fields, split_message  # noqa: E402

PASSWORD = "Pop3-clients-pw7"
SENDER = "sender@example.org"
helpers = []                    # processes started with Popen, killed by PID at exit


def _kill_helpers():
    for p in helpers:
        if p.poll() is None:
            kill_tree(p)
            p.wait()


atexit.register(_kill_helpers)   # registered after posthorn's: runs before the instances' cleanup

inst = posthorn.Instance()
r = inst.start()
ok(r.returncode == 0, "the instance starts (pop3d on 110 and 995)") or diag(r.stderr)
alice, alice_home = inst.add_user()
client, client_home = inst.add_user()       # the account the clients run as
CLIENT_PW = pwd.getpwnam(client)
r = subprocess.run([posthorn.MAILCTL, "-c", inst.etc, "user", "add", alice, "--password-stdin"],
                   input=PASSWORD + "\n", capture_output=True, text=True, timeout=60)
is_(r.returncode, 0, "alice gets a mail password") or diag(r.stderr)
ALICE = "%s@mail.example.test" % alice
ALICE_PW = pwd.getpwnam(alice)
P110, P995 = inst.port(110), inst.port(995)
CERT = os.path.join(inst.etc, "tls", "cert.pem")
with open(CERT) as f:
    DER = ssl.PEM_cert_to_DER_cert(f.read())
MD5_FP = ":".join("%02X" % b for b in hashlib.md5(DER).digest())       # fetchmail's format
SHA256_FP = hashlib.sha256(DER).hexdigest()                             # getmail's
MODES = {"110": (P110, False), "stls": (P110, True), "995": (P995, True)}   # port, TLS
MODE_NAME = {"110": "110 without TLS", "stls": "110 with STLS", "995": "995"}
ok(inst.wait_for(lambda: all(not posthorn.port_free(p) for p in (P110, P995)), 10),
   "110 and 995 are listening")


# ------------------------------------------------------------------ helpers
def client_dir(*parts):
    """A directory of the client account's (made if missing)."""
    path = os.path.join(client_home, *parts)
    os.makedirs(path, exist_ok=True)
    d = client_home
    for p in parts:
        d = os.path.join(d, p)
        os.chown(d, CLIENT_PW.pw_uid, CLIENT_PW.pw_gid)
        os.chmod(d, 0o700)
    return path


def client_file(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chown(path, CLIENT_PW.pw_uid, CLIENT_PW.pw_gid)
    os.chmod(path, mode)


def new_maildir(*parts):
    d = client_dir(*parts)
    for sub in ("tmp", "new", "cur"):
        client_dir(*(parts + (sub,)))
    return d


def client_env(home, term="dumb"):
    return {"HOME": home, "PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "TERM": term,
            "TMPDIR": home, "USER": client, "LOGNAME": client}


class Result:
    def __init__(self, returncode, output):
        self.returncode, self.output = returncode, output


def run_client(args, home, timeout=120):
    """Run a client as the client account; Result (returncode None: killed
    after timeout seconds)."""
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, cwd=home, env=client_env(home),
                         user=CLIENT_PW.pw_uid, group=CLIENT_PW.pw_gid, extra_groups=[],
                         start_new_session=True)
    helpers.append(p)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(p)
        out, _ = p.communicate(timeout=30)
        return Result(None, out.decode(errors="replace"))
    return Result(p.returncode, out.decode(errors="replace"))


def run_on_pty(args, home, timeout=90):
    """Run a client as the client account on a new pseudo-terminal (80x24),
    reading the screen until it exits; Result with what it drew."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    p = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, cwd=home,
                         env=client_env(home, "vt100"), user=CLIENT_PW.pw_uid,
                         group=CLIENT_PW.pw_gid, extra_groups=[], start_new_session=True)
    helpers.append(p)
    os.close(slave)
    screen = bytearray()
    end = time.time() + timeout
    while time.time() < end:
        if select.select([master], [], [], 0.2)[0]:
            try:
                data = os.read(master, 65536)
            except OSError:             # EIO: the terminal's last user is gone
                data = b""
            if not data:
                break
            screen += data
        elif p.poll() is not None:
            break
    killed = False
    try:                        # the terminal closes as it exits: wait for that
        rc = p.wait(timeout=max(5.0, end - time.time()))
    except subprocess.TimeoutExpired:
        killed = True
        kill_tree(p)
        rc = p.wait()
    os.close(master)
    text = re.sub(r"\x1b(\[[0-9;?]*[A-Za-z]|[()][0-9A-Za-z]|[=>])|[\x00-\x08\x0e-\x1f]", "",
                  screen.decode(errors="replace"))
    return Result(None if killed else rc, text)


def stored_files(dirs, prefix=""):
    """{path: bytes} of the files in dirs whose names start with prefix."""
    out = {}
    for d in dirs:
        for n in sorted(os.listdir(d)):
            if n.startswith(prefix):
                with open(os.path.join(d, n), "rb") as f:
                    out[os.path.join(d, n)] = f.read()
    return out


def maildir_store(d):
    return stored_files([os.path.join(d, "new"), os.path.join(d, "cur")])


# ------------------------------------------------------------------ the messages
class Msg:
    def __init__(self, kind, subject, expected, base):
        self.kind, self.subject, self.expected, self.base = kind, subject, expected, base


SUBJECT_RX = re.compile(rb"^Subject: (.*)$", re.M)


def subject_of(data):
    head = data.split(b"\n\n", 1)[0]
    m = SUBJECT_RX.search(head)
    return m.group(1).decode(errors="replace") if m else None


def alice_maildir():
    """{base name (before ':'): (dir, name)} of Alice's messages, new/ and cur/."""
    out = {}
    for sub in ("new", "cur"):
        try:
            names = os.listdir(os.path.join(alice_home, "Maildir", sub))
        except FileNotFoundError:
            continue
        for n in names:
            out[n.split(":", 1)[0]] = (sub, n)
    return out


def smtp_messages(tag):
    return [
        ("plain", b"From: Sender <%s>\r\nTo: <%s>\r\nSubject: %s plain\r\n"
         b"Message-ID: <%s.plain@example.org>\r\n\r\nHello Alice,\r\n\r\nplain text.\r\n"
         % (SENDER.encode(), ALICE.encode(), tag.encode(), tag.encode())),
        ("8bit", b"From: Sender <%s>\r\nSubject: %s 8bit\r\nX-Greeting: Gr\xc3\xbc\xc3\x9fe\r\n"
         b"MIME-Version: 1.0\r\n"
         b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
         b"Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln \xe2\x82\xac 100\r\n\xe6\x97\xa5\xe6\x9c\xac\r\n"
         b"raw octets: \x80\x81\xfe\xff\r\n" % (SENDER.encode(), tag.encode())),
        ("dots", b"From: Sender <%s>\r\nSubject: %s dots\r\n\r\n.leading dot\r\n"
         b"..two dots\r\n.\r\n. a dot and a space\r\n...\r\nthe last line is a dot:\r\n."
         % (SENDER.encode(), tag.encode())),
    ]


def big_crlf(subject):
    """A 150 KB CRLF message: its CR at offset 65535 (the last octet of
    pop3d's first read), LF at 65536; a line "..." starting at 131072."""
    out = bytearray(b"From: Big <big@example.org>\r\nSubject: %s\r\nX-Size: large\r\n\r\n"
                    % subject.encode())
    n = 0

    def line_ending_at(cr_offset):
        nonlocal n
        while len(out) + 120 < cr_offset:
            n += 1
            out.extend(b"line %06d " % n + b"abcdefghijklmnopqrstuvwxyz0123456789"[:n % 37] * 2
                       + b"\r\n")
            if n % 97 == 0:
                out.extend(b".dot-stuffed line %d\r\n" % n)
        out.extend(b"p" * (cr_offset - len(out)) + b"\r\n")

    line_ending_at(65535)
    assert out[65535:65537] == b"\r\n"
    line_ending_at(131070)
    assert len(out) == 131072
    out.extend(b"...three dots at the second read\r\n")
    line_ending_at(150000)
    out.extend(b"the end\r\n")
    return bytes(out)


def planted_messages(tag):
    return [
        ("crlf", b"From: Other MDA <mda@example.org>\r\nSubject: %s crlf\r\n"
         b"X-Line-Ends: CRLF\r\n\r\nwritten with CRLF\r\n.dot line\r\n\r\nlast line\r\n"
         % tag.encode()),
        ("noeol", b"From: Other MDA <mda@example.org>\nSubject: %s noeol\n\nfirst line\n"
         b".second line starts with a dot\nno line end after this one" % tag.encode()),
        ("big", big_crlf("%s big" % tag)),
    ]


plant_seq = [0]


def plant(kind, data):
    """Write data into Alice's Maildir/new as a delivery agent would
    (tmp/, then rename), her file; its base name."""
    plant_seq[0] += 1
    name = "%d.M%06dP%d.t51-%s-%d" % (time.time(), plant_seq[0], os.getpid(), kind, plant_seq[0])
    tmp = os.path.join(alice_home, "Maildir", "tmp", name)
    with open(tmp, "wb") as f:
        f.write(data)
    os.chown(tmp, ALICE_PW.pw_uid, ALICE_PW.pw_gid)
    os.chmod(tmp, 0o600)
    os.rename(tmp, os.path.join(alice_home, "Maildir", "new", name))
    return name


def lf(data):
    data = data.replace(b"\r\n", b"\n")
    return data if data.endswith(b"\n") else data + b"\n"


def deliver(tag, kinds=None):
    """Fill Alice's Maildir with this run's messages (all six, or those
    of kinds, on top of what is there); the list of Msg.  A full run
    starts from an empty Maildir, so that one run's failure does not
    spill into the next."""
    if kinds is None:
        left = alice_maildir()
        if left:
            diag("removing %d messages an earlier run left in ~/Maildir" % len(left))
        for sub, name in left.values():
            os.unlink(os.path.join(alice_home, "Maildir", sub, name))
    before = set(alice_maildir())
    sent = [(k, raw) for k, raw in smtp_messages(tag) if kinds is None or k in kinds]
    if sent:
        s = smtplib.SMTP("127.0.0.1", inst.port(25), timeout=30)
        for _, raw in sent:
            s.sendmail(SENDER, [ALICE], raw)
        s.quit()
    msgs = []

    def arrived():
        now = alice_maildir()
        return len(set(now) - before) >= len(sent) and now

    now = inst.wait_for(arrived, 30) or {}
    files = {}
    for base in set(now) - before:
        sub, name = now[base]
        with open(os.path.join(alice_home, "Maildir", sub, name), "rb") as f:
            files[base] = f.read()
    for kind, _ in sent:
        match = [b for b, d in files.items() if subject_of(d) == "%s %s" % (tag, kind)]
        if len(match) == 1:
            msgs.append(Msg(kind, "%s %s" % (tag, kind), files[match[0]], match[0]))
    if not ok(len(msgs) == len(sent), "%s: local delivered the %d messages sent by SMTP"
              % (tag, len(sent))):
        diag("Maildir: %s" % sorted(now))
    if sent:
        ok(msgs and not any(b"\r" in m.expected for m in msgs),
           "  as LF-only files (local's format)")
    for kind, data in planted_messages(tag):
        if kinds is None or kind in kinds:
            msgs.append(Msg(kind, "%s %s" % (tag, kind), lf(data), plant(kind, data)))
    return msgs


# ------------------------------------------------------------------ checks
def show_difference(copy, orig):
    d = list(difflib.unified_diff(orig.decode("latin-1").splitlines(),
                                  copy.decode("latin-1").splitlines(), "Maildir", "client",
                                  lineterm="", n=1))
    diag("\n".join(d[:40]) or "(no line differs: line ends?)")


def check_store(name, stored, msgs, added_ok, added_what):
    """The client stored each of msgs exactly once, byte for byte, with
    only the header fields added_ok(field, body) accepts."""
    copies = list(stored.values())
    is_(len(copies), len(msgs), "%s: %d messages stored" % (name, len(msgs)))
    bad = []
    for m in msgs:
        mine = [c for c in copies if subject_of(c) == m.subject]
        if len(mine) != 1:
            bad.append("%s: %d copies" % (m.kind, len(mine)))
            continue
        extra = added_fields(mine[0], m.expected)
        if extra is None:
            bad.append("%s: not the Maildir's message" % m.kind)
            show_difference(mine[0], m.expected)
            continue
        body = split_message(mine[0])[1]
        wrong = [f for f in extra if not added_ok(f, body)]
        if wrong:
            bad.append("%s: header fields added: %r" % (m.kind, wrong))
    kinds = "/".join(m.kind for m in msgs)
    ok(not bad, "  each (%s) byte for byte the Maildir file with LF line ends, %s"
       % (kinds, added_what)) or diag("\n".join(bad))


def check_gone(name, msgs):
    left = set(alice_maildir())
    gone = [m.kind for m in msgs if m.base in left]
    ok(not gone, "%s: the messages it deleted are gone from ~/Maildir (new/ and cur/)" % name) \
        or diag("still there: %s" % gone)


def check_kept(name, msgs):
    left = set(alice_maildir())
    ok(all(m.base in left for m in msgs), "%s: the messages are still in ~/Maildir" % name) \
        or diag("Maildir: %s" % sorted(left))


def log_since(offset):
    return inst.log()[offset:]


def check_log(name, offset, method, tls, deleted, total):
    """The run's login line(s) and a logout line with del=deleted/total."""
    rx_any = re.compile(r"pop3d\[\d+\]: login: user=<%s>.*$" % re.escape(alice), re.M)
    rx = re.compile(r"pop3d\[\d+\]: login: user=<%s>, method=%s, client=\[127\.0\.0\.1\]:\d+%s$"
                    % (re.escape(alice), re.escape(method), ", TLS" if tls else ""))
    logout = re.compile(r"pop3d\[\d+\]: logout: user=<%s>, retr=\d+/\d+, del=%d/%d, size=\d+$"
                        % (re.escape(alice), deleted, total), re.M)
    inst.wait_for(lambda: logout.search(log_since(offset)), 10)
    text = log_since(offset)
    logins = [m.group(0) for m in rx_any.finditer(text)]
    ok(logins and all(rx.search(l) for l in logins),
       "%s: logged \"login: user=<alice>, method=%s, client=[127.0.0.1]:PORT%s\""
       % (name, method, ", TLS" if tls else "")) or diag("login lines: %r" % logins)
    ok(logout.search(text), "  and \"logout: ... del=%d/%d\"" % (deleted, total)) \
        or diag("\n".join(l for l in text.splitlines() if "pop3d" in l or "authd" in l)[-3000:])


# ------------------------------------------------------------------ the cancel mutt misreads
# RFC 5034 4: a client cancels an AUTH exchange with "*"; the server MUST
# answer -ERR.  mutt's GNU SASL code sends "*" and reads no answer.
def cancel_check():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    tls = None

    def pop_cmd(line):
        tls.sendall(line + b"\r\n")
        return rf.readline()

    try:
        tls = ctx.wrap_socket(socket.create_connection(("127.0.0.1", P995), timeout=30))
        rf = tls.makefile("rb")
        like(rf.readline().decode(), "+OK", "995: the greeting after the TLS handshake")
        is_(pop_cmd(b"AUTH SCRAM-SHA-256")[:2], b"+ ",
            "AUTH SCRAM-SHA-256: the empty challenge")
        ans = pop_cmd(b"*")
        ok(ans.startswith(b"-ERR"), "\"*\" cancels it: -ERR (RFC 5034 4), what mutt's GNU SASL "
           "code never reads (%r)" % ans)
        ans = pop_cmd(b"CAPA")
        ok(ans.startswith(b"+OK"), "  one line only: the next command's answer is its own "
           "(CAPA: %r)" % ans)
        while ans not in (b".\r\n", b""):
            ans = rf.readline()
        pop_cmd(b"QUIT")
    except OSError as e:
        ok(False, "the AUTH cancel exchange on 995: %r" % e)
    finally:
        if tls:
            tls.close()


cancel_check()


# ------------------------------------------------------------------ 1. fetchmail
def fetchmail_added(field, body):
    return field.startswith(b"Received: from 127.0.0.1 [127.0.0.1]\n") \
        and b" with POP3 (fetchmail-" in field


STORE_SH = os.path.join(client_dir("bin"), "store")
client_file(STORE_SH, "#!/bin/sh\n# fetchmail's MDA: the message on stdin, a file of its own "
            "in $1\nn=$(date +%s%N).$$\n"
            "cat > \"$1/tmp.$n\" && mv \"$1/tmp.$n\" \"$1/msg.$n\"\n", 0o755)


def fetchmail(mode, store, options, server_options=""):
    port, tls = MODES[mode]
    d = client_dir("fetchmail-" + mode)
    if mode == "110":
        tls_opts = "sslproto ''"                    # no TLS at all, not even opportunistic
    elif mode == "stls":
        tls_opts = "sslproto 'tls1.2+' no sslcertck sslfingerprint \"%s\"" % MD5_FP
    else:
        tls_opts = "ssl no sslcertck sslfingerprint \"%s\"" % MD5_FP
    rc = os.path.join(d, "fetchmailrc")
    client_file(rc, "set no syslog\nset no bouncemail\n"
                "poll 127.0.0.1 protocol POP3 port %d %s timeout 30\n"
                "  user \"%s\" there with password \"%s\"\n"
                "  mda \"%s %s\"\n"
                "  %s %s\n" % (port, server_options, alice, PASSWORD, STORE_SH, store,
                               tls_opts, options))
    return run_client([FETCHMAIL, "-f", rc, "--idfile", os.path.join(d, "ids"),
                       "--pidfile", os.path.join(d, "pid"), "-v"], d)


def fetchmail_store(store):
    return stored_files([store], "msg.")


def fetchmail_run(mode, tag, options, server_options="", msgs=None, want_rc=0):
    """One fetchmail run into a new store; (Result, stored)."""
    store = client_dir("fetchmail-" + mode, "store-" + tag)
    r = fetchmail(mode, store, options, server_options)
    if not is_(r.returncode, want_rc, "fetchmail %s (%s): exit status %d" % (
            MODE_NAME[mode], options or "defaults", want_rc)):
        diag(r.output[-4000:])
    return r, fetchmail_store(store)


if FETCHMAIL is None:
    ok(True, "# skip fetchmail: not installed")
else:
    # 110, no TLS: TOP and DELE.
    for mode, options in (("110", ""), ("stls", "fetchall")):
        tag = "fetchmail-" + mode
        msgs = deliver(tag)
        off = len(inst.log())
        r, stored = fetchmail_run(mode, tag, options)
        name = "fetchmail %s" % MODE_NAME[mode]
        check_store(name, stored, msgs, fetchmail_added, "plus fetchmail's Received: line")
        if mode == "stls":
            like(r.output, "upgrade to TLS succeeded", "  fetchmail says STLS worked")
            like(r.output, "fingerprints match", "  and the certificate's fingerprint matched")
        check_gone(name, msgs)
        check_log(name, off, "PLAIN", MODES[mode][1], len(msgs), len(msgs))
    # 995: keep + uidl.
    mode, tag = "995", "fetchmail-995"
    name = "fetchmail 995 keep"
    msgs = deliver(tag)
    off = len(inst.log())
    r, stored = fetchmail_run(mode, tag + "-1", "keep", "uidl")
    like(r.output, "fingerprints match", "  (995: the certificate's fingerprint matched)")
    check_store(name, stored, msgs, fetchmail_added, "plus fetchmail's Received: line")
    check_kept(name, msgs)
    check_log(name, off, "PLAIN", True, 0, len(msgs))
    off = len(inst.log())
    r, stored = fetchmail_run(mode, tag + "-2", "keep", "uidl", want_rc=1)
    is_(len(stored), 0, "%s, second run: nothing fetched again (UIDL)" % name)
    like(r.output, "(%d seen)" % len(msgs), "  fetchmail counts the %d messages as seen"
         % len(msgs))
    check_kept(name + ", second run", msgs)
    check_log(name + ", second run", off, "PLAIN", True, 0, len(msgs))
    more = deliver(tag + "-more", kinds=("8bit",))
    r, stored = fetchmail_run(mode, tag + "-3", "keep", "uidl")
    check_store(name + ", a message more", stored, more, fetchmail_added,
                "only the new one, plus fetchmail's Received: line")
    off = len(inst.log())
    r, stored = fetchmail_run(mode, tag + "-4", "fetchall")
    name = "fetchmail 995 without keep"
    check_store(name, stored, msgs + more, fetchmail_added, "plus fetchmail's Received: line")
    check_gone(name, msgs + more)
    check_log(name, off, "PLAIN", True, len(msgs) + 1, len(msgs) + 1)


# ------------------------------------------------------------------ 2. getmail
def getmail_added(ssl_on):
    proto = re.compile(rb" with POP3%s\s" % (b"-SSL" if ssl_on else b""))

    def added(field, body):
        if field.startswith(b"Received: "):
            return b"getmail6" in field and proto.search(field)
        return field.startswith(b"Delivered-To: ") or field.startswith(b"Return-Path: ")
    return added


def getmail(mode, store, read_all, delete):
    port, tls = MODES[mode]
    d = client_dir("getmail-" + mode)
    client_file(os.path.join(d, "getmailrc"),
                "[retriever]\ntype = %s\nserver = 127.0.0.1\nport = %d\nusername = %s\n"
                "password = %s\n%s\n"
                "[destination]\ntype = Maildir\npath = %s/\n\n"
                "[options]\nverbose = 2\nread_all = %s\ndelete = %s\n"
                % ("SimplePOP3SSLRetriever" if mode == "995" else "SimplePOP3Retriever",
                   port, alice, PASSWORD,
                   # no CA to verify against: the certificate's fingerprint
                   "ssl_fingerprints = (\"%s\",)\n" % SHA256_FP if mode == "995" else "",
                   store, read_all, delete))
    return run_client([GETMAIL, "--getmaildir", d, "--rcfile", "getmailrc"], d)


def getmail_run(mode, tag, read_all, delete):
    store = new_maildir("getmail-" + mode, "store-" + tag)
    r = getmail(mode, store, read_all, delete)
    if not is_(r.returncode, 0, "getmail %s (read_all = %s, delete = %s): exit status 0"
               % (MODE_NAME[mode], read_all, delete)):
        diag(r.output[-4000:])
    return r, maildir_store(store)


if GETMAIL is None:
    ok(True, "# skip getmail: not installed")
else:
    mode, tag = "110", "getmail-110"
    name = "getmail 110 without TLS"
    msgs = deliver(tag)
    off = len(inst.log())
    r, stored = getmail_run(mode, tag, "true", "true")
    check_store(name, stored, msgs, getmail_added(False),
                "plus getmail's Delivered-To:, Return-Path:, Received:")
    check_gone(name, msgs)
    check_log(name, off, "PLAIN", False, len(msgs), len(msgs))
    ok(True, "# skip getmail with STLS: getmail6 has no STLS for POP3 (only POP3 over SSL)")

    mode, tag = "995", "getmail-995"
    name = "getmail 995 read_all = false, delete = false"
    msgs = deliver(tag)
    off = len(inst.log())
    r, stored = getmail_run(mode, tag + "-1", "false", "false")
    check_store(name, stored, msgs, getmail_added(True),
                "plus getmail's Delivered-To:, Return-Path:, Received:")
    check_kept(name, msgs)
    check_log(name, off, "PLAIN", True, 0, len(msgs))
    cur = alice_maildir()
    ok(all(cur.get(m.base, ("", ""))[0] == "cur" and cur[m.base][1].endswith(":2,S")
           for m in msgs), "  RETR gave them the Seen flag at QUIT (cur/NAME:2,S)") \
        or diag(sorted(cur.values()))
    off = len(inst.log())
    r, stored = getmail_run(mode, tag + "-2", "false", "false")
    is_(len(stored), 0, "%s, second run: nothing retrieved again (UIDL, though in cur/ now)"
        % name)
    like(r.output, "0 messages (0 bytes) retrieved, %d skipped" % len(msgs),
         "  getmail skipped the %d it had seen" % len(msgs))
    check_log(name + ", second run", off, "PLAIN", True, 0, len(msgs))
    more = deliver(tag + "-more", kinds=("dots",))
    r, stored = getmail_run(mode, tag + "-3", "false", "false")
    check_store(name + ", a message more", stored, more, getmail_added(True),
                "only the new one, plus getmail's fields")
    name = "getmail 995 read_all, delete"
    off = len(inst.log())
    r, stored = getmail_run(mode, tag + "-4", "true", "true")
    check_store(name, stored, msgs + more, getmail_added(True), "plus getmail's fields")
    check_gone(name, msgs + more)
    check_log(name, off, "PLAIN", True, len(msgs) + 1, len(msgs) + 1)


# ------------------------------------------------------------------ 3. mutt
def mutt_copy_added(field, body):
    """mutt's copy-message writes Content-Length: and Lines: of the body."""
    m = re.match(rb"(Content-Length|Lines): (\d+)\n$", field)
    if not m:
        return False
    want = len(body) if m.group(1) == b"Content-Length" else body.count(b"\n")
    return int(m.group(2)) == want


def mutt(mode, how, auth):
    """mutt on mode's port: how is "fetch" (<fetch-mail> into the
    spoolfile) or "browse" (-f the POP mailbox, copy every message to a
    Maildir, delete them all, sync); auth its pop_authenticators (None:
    its own choice).  (Result, stored, the mailbox URL)."""
    port, tls = MODES[mode]
    d = client_dir("mutt-%s-%s" % (mode, how))
    spool = new_maildir("mutt-%s-%s" % (mode, how), "spool")
    saved = new_maildir("mutt-%s-%s" % (mode, how), "saved")
    url = "%s://%s@127.0.0.1:%d/" % ("pops" if mode == "995" else "pop", alice, port)
    rc = os.path.join(d, "muttrc")
    client_file(rc, "".join([
        'set pop_pass="%s"\n' % PASSWORD,
        # The instance's self-signed certificate is the one trusted (mutt
        # with GnuTLS); it names mail.example.test, mutt connects to 127.0.0.1.
        'set certificate_file="%s"\nset ssl_verify_host=no\n' % CERT,
        'set ssl_starttls=%s\nset ssl_force_tls=%s\n' % (("yes", "yes") if tls else ("no", "no")),
        'set pop_authenticators="%s"\n' % auth if auth else "",
        'set pop_host="%s"\nset pop_delete=yes\nset pop_last=no\n' % url,
        'set mbox_type=Maildir\nset folder="%s"\nset spoolfile="%s"\n' % (d, spool),
        'set header_cache=""\nset message_cachedir=""\nset record=""\n',
        'set postponed="%s/postponed"\n' % d,
        'set confirmappend=no\nset confirmcreate=no\nset move=no\nset delete=yes\nset quit=yes\n'
        'set wait_key=no\n',
    ]))
    if how == "fetch":
        keys = "<fetch-mail><quit>"
        args = [MUTT, "-n", "-d", "2", "-F", rc, "-e", "push '%s'" % keys]
    else:
        keys = ("<tag-pattern>~A<enter><tag-prefix><copy-message>%s<enter>"
                "<delete-pattern>~A<enter><sync-mailbox><quit>" % saved)
        args = [MUTT, "-n", "-d", "2", "-F", rc, "-f", url, "-e", "push '%s'" % keys]
    r = run_on_pty(args, d)
    return r, maildir_store(spool if how == "fetch" else saved), d


MUTT_CASES = [
    # mode, how, pop_authenticators, the method pop3d logs
    ("110", "fetch", None, "SCRAM-SHA-256"),        # GNU SASL's pick without TLS
    ("110", "browse", "login", "LOGIN"),
    ("stls", "browse", "user", "PLAIN"),            # USER/PASS
    ("stls", "fetch", "plain", "PLAIN"),            # AUTH PLAIN
    ("995", "fetch", None, "SCRAM-SHA-256"),        # GNU SASL's pick under TLS
    ("995", "browse", "user", "PLAIN"),
]
if MUTT is None:
    ok(True, "# skip mutt: not installed")
else:
    for mode, how, auth, method in MUTT_CASES:
        tag = "mutt-%s-%s" % (mode, how)
        name = "mutt %s, %s (%s)" % (MODE_NAME[mode], "<fetch-mail>" if how == "fetch"
                                     else "-f %s://" % ("pops" if mode == "995" else "pop"),
                                     auth or "its own choice of login")
        msgs = deliver(tag)
        off = len(inst.log())
        r, stored, d = mutt(mode, how, auth)
        if not is_(r.returncode, 0, "%s: exits 0" % name):
            diag("screen: %s" % r.output[-1500:])
            try:
                with open(os.path.join(d, ".muttdebug0"), errors="replace") as f:
                    diag("debug log: %s" % "".join(f.readlines()[-40:]))
            except OSError:
                pass
        if how == "fetch":
            check_store(name, stored, msgs, lambda f, b: False, "nothing added")
        else:
            check_store(name, stored, msgs, mutt_copy_added,
                        "plus copy-message's Content-Length: and Lines:, both right")
        check_gone(name, msgs)
        check_log(name, off, method, MODES[mode][1], len(msgs), len(msgs))

# ------------------------------------------------------------------ the end
log = inst.log()
bad = [l for l in log.splitlines()
       if re.search(r"panic|fatal|killed by signal|\) exit status [1-9]", l)]
ok(not bad, "no panic, fatal error or crash in the log") or diag(bad[:10])
ok(PASSWORD not in log, "the password is in no log line")
is_(sorted(alice_maildir()), [], "Alice's Maildir is empty at the end: every client deleted "
    "what it fetched")
inst.stop()
inst.cleanup()
done()
