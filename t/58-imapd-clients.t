#!/usr/bin/env python3
"""t/58-imapd-clients.t - imapd with real IMAP clients: mbsync (isync),
mutt, fetchmail and getmail6, on 143 with STARTTLS and on 993 (implicit
TLS).

One instance with its stock master.conf (imapd on 143 and 993).  Every
case has a mail account of its own (mailctl user add --password-stdin)
whose ~/Maildir is filled straight, as local delivery would (put_messages:
new/, the user's files), with seven messages: a plain one; an 8-bit one
(UTF-8 in a header and the body, octets 0x80-0xff); one whose lines start
with "." and whose last line is "."; one written with CRLF line ends; one
without a line end after its last line; a 150 KB LF file; a 150 KB CRLF
file with a CR as the last octet of the first 64 KiB and its LF the
first of the next.  The clients run as another account, with HOME and
every file of theirs in a directory of that account; each trusts the
instance's self-signed certificate (its file, or its fingerprint) and
nothing else, and talks to 127.0.0.1 only.  "Byte for byte" below means:
the Maildir file with LF line ends, give or take the header fields the
client adds, which must be the client's own (mbsync's X-TUID:, mutt's
Content-Length: and Lines:, both right, fetchmail's Received:, getmail's
Delivered-To:, Return-Path:, Received:, X-getmail-retrieved-from-mailbox:);
fetchmail alone ends an unterminated last line.

 1. mbsync, one channel per port (143: SSLType STARTTLS, its own pick of
    login, SCRAM-SHA-256; 993: IMAPS, AuthMechs LOGIN, the LOGIN command;
    CertificateFile the instance's certificate; CopyArrivalDate), far side
    the server's INBOX, Work, Sent and Projects*, near side a Maildir
    (SubFolders Verbatim):
     - first run: every message pulled byte for byte, the server's flags
       (Work has one \\Seen and one \\Answered, APPENDed so) as Maildir
       flags;
     - then changes on both sides: locally a message marked seen and
       flagged, one trashed (T), one seen, \\Seen taken off another (the
       Maildir files renamed as mbsync expects), a new message in
       INBOX/new with an old file time, a sent one (flag S) in Sent/cur,
       a new folder Projects/2027 with a message; on the server (raw UID
       STOREs) \\Flagged on one, \\Deleted and \\Seen on another, \\Seen
       \\Answered on a third, \\Flagged on the one seen locally, FLAGS
       (\\Flagged) on the \\Answered one in Work, and a new message with
       an old file time in INBOX and one in Work (Maildir/new, as local
       delivery);
     - second run: every change on the other side, both changes on the
       message changed on both; the new local ones APPENDed (byte for byte
       with X-TUID:, flags kept, the file time as INTERNALDATE),
       Projects.2027 CREATEd; the new server ones pulled with their
       INTERNALDATE as the file time; on 143 with Expunge None the
       deleted ones stay, flagged T / \\Deleted; on 993 with Expunge Both
       they are gone from both sides;
     - third run: no STORE, APPEND, CREATE, EXPUNGE nor message FETCH in
       its protocol trace (-Dn), and neither side changed (every file of
       the near side, every message file of the server: name and
       content).
 2. mutt (on a pseudo-terminal, -e 'push ...'), imap:// with ssl_starttls
    and ssl_force_tls on 143 (GNU SASL's pick: SCRAM-SHA-256), imaps:// on
    993 (imap_authenticators login: GNU SASL's AUTHENTICATE LOGIN),
    certificate_file: copies every message to a local Maildir (byte for
    byte), pipes one message to a file (byte for byte), deletes one and
    <sync-mailbox>: it is gone from the server's Maildir and from a
    STATUS; the others stay.
 3. fetchmail (protocol IMAP, the LOGIN command, an MDA script that
    writes every message to a file of its own; "no sslcertck" with the
    certificate's MD5 sslfingerprint, which fetchmail checks): 143 with sslproto 'tls1.2+'
    (STARTTLS required), without keep: every message fetched and deleted;
    993 with ssl and keep: all fetched, all kept (and \\Seen); a second
    keep run fetches nothing (exit 1); a message more and a third keep run
    fetches only that one; then fetchall without keep fetches all and
    deletes them.
 4. getmail6 (LOGIN command, Maildir destination): SimpleIMAPRetriever on 143 without
    TLS (getmail6 has no STARTTLS for IMAP; a client on the host itself
    may log in without TLS), read_all and delete; SimpleIMAPSSLRetriever
    on 993 (ssl_fingerprints, the certificate's SHA-256) with read_all =
    false and delete = false twice (the second run retrieves nothing), a
    message more retrieved alone, then read_all and delete.

For every client run: the exit status, imapd's "login from [127.0.0.1],
mechanism M" line for the account (M is PLAIN for the LOGIN
command).  At the end: no panic,
fatal error or crash in the log, the password in no log line.  Every
process is cleaned up by PID.  Skips without root, or when none of the
four clients is installed."""
import atexit
import calendar
import difflib
import fcntl
import hashlib
import imaplib
import os
import pwd
import re
import select
import shutil
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
MBSYNC = shutil.which("mbsync")
MUTT = shutil.which("mutt")
FETCHMAIL = shutil.which("fetchmail")
GETMAIL = shutil.which("getmail")
if not (MBSYNC or MUTT or FETCHMAIL or GETMAIL):
    skip_all("none of mbsync (isync), mutt, fetchmail and getmail (getmail6) is installed")

import posthorn  # noqa: E402
from clienttest import kill_tree, added_fields, split_message  # noqa: E402
from imaptest import login, mail_user, put_messages, maildir_name  # noqa: E402

PASSWORD = "Imap-clients-pw8"
T0 = time.time()
helpers = []                    # processes started with Popen, killed by PID at exit


def _kill_helpers():
    for p in helpers:
        if p.poll() is None:
            kill_tree(p)
            p.wait()


atexit.register(_kill_helpers)   # registered after posthorn's: runs before the instances' cleanup

inst = posthorn.Instance()
r = inst.start()
if not ok(r.returncode == 0, "the instance starts (imapd on 143 and 993)"):
    diag(r.stderr)
    done()
P143, P993 = inst.port(143), inst.port(993)
ok(inst.wait_for(lambda: all(not posthorn.port_free(p) for p in (P143, P993)), 10),
   "143 and 993 are listening")
client, client_home = inst.add_user()       # the account the clients run as
CLIENT_PW = pwd.getpwnam(client)
CERT = os.path.join(inst.etc, "tls", "cert.pem")
with open(CERT) as f:
    DER = ssl.PEM_cert_to_DER_cert(f.read())
MD5_FP = ":".join("%02X" % b for b in hashlib.md5(DER).digest())       # fetchmail's format
SHA256_FP = hashlib.sha256(DER).hexdigest()                             # getmail's
MODE_NAME = {"143": "143 with STARTTLS", "993": "993", "143-plain": "143 without TLS"}


def account():
    """A new mail account with PASSWORD: (name, home)."""
    return mail_user(inst, PASSWORD)


# ------------------------------------------------------------------ processes
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


def client_file(path, data, mode=0o600):
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
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
    def __init__(self, returncode, output, took):
        self.returncode, self.output, self.took = returncode, output, took


def run_client(args, home, timeout=60):
    """Run a client as the client account; Result (returncode None: killed
    after timeout seconds)."""
    t0 = time.time()
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
        return Result(None, out.decode(errors="replace"), time.time() - t0)
    return Result(p.returncode, out.decode(errors="replace"), time.time() - t0)


def run_on_pty(args, home, timeout=60):
    """Run a client as the client account on a new pseudo-terminal (80x24),
    reading the screen until it exits; Result with what it drew."""
    t0 = time.time()
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
    return Result(None if killed else rc, text, time.time() - t0)


def exits(name, r, want=0):
    """The client's exit status is want; the output is shown if not."""
    if not is_(r.returncode, want, "%s: exit status %d (%.1f s)" % (name, want, r.took)):
        diag(r.output[-4000:])
        return False
    return True


# ------------------------------------------------------------------ the messages
def big(subject, eol):
    """A 150 KB message with eol line ends; with CRLF, a CR at offset 65535
    and its LF at 65536; lines starting with "." here and there."""
    out = bytearray(b"From: Big <big@example.org>%sSubject: %s%sX-Size: large%s%s"
                    % (eol, subject.encode(), eol, eol, eol))
    n = 0

    def line_ending_at(end):
        nonlocal n
        while len(out) + 120 < end:
            n += 1
            out.extend(b"line %06d " % n + b"abcdefghijklmnopqrstuvwxyz0123456789"[:n % 37] * 2
                       + eol)
            if n % 97 == 0:
                out.extend(b".dot line %d" % n + eol)
        out.extend(b"p" * (end - len(out) - len(eol)) + eol)

    line_ending_at(65537)
    if eol == b"\r\n":
        assert out[65535:65537] == b"\r\n"
    line_ending_at(150000)
    out.extend(b"the end" + eol)
    return bytes(out)


def messages(tag):
    """The seven messages of a case, [(kind, bytes)]; the subject of each
    is "TAG KIND"."""
    t = tag.encode()
    return [
        ("plain", b"From: Sender <sender@example.org>\nTo: <alice@example.test>\n"
         b"Subject: %s plain\nMessage-ID: <%s.plain@example.org>\n"
         b"Date: Mon, 7 Dec 2026 10:00:00 +0000\n\nHello Alice,\n\nplain text.\n" % (t, t)),
        ("8bit", b"From: Sender <sender@example.org>\nSubject: %s 8bit\n"
         b"X-Greeting: Gr\xc3\xbc\xc3\x9fe\nMIME-Version: 1.0\n"
         b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
         b"Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln \xe2\x82\xac 100\n\xe6\x97\xa5\xe6\x9c\xac\n"
         b"raw octets: \x80\x81\xfe\xff\n" % t),
        ("dots", b"From: Sender <sender@example.org>\nSubject: %s dots\n\n.leading dot\n"
         b"..two dots\n.\n. a dot and a space\n...\nthe last line is a dot:\n.\n" % t),
        ("crlf", b"From: Other MDA <mda@example.org>\r\nSubject: %s crlf\r\n"
         b"X-Line-Ends: CRLF\r\n\r\nwritten with CRLF\r\n.dot line\r\n\r\nlast line\r\n" % t),
        ("noeol", b"From: Other MDA <mda@example.org>\nSubject: %s noeol\n\nfirst line\n"
         b".second line starts with a dot\nno line end after this one" % t),
        ("big", big("%s big" % tag, b"\n")),
        ("bigcrlf", big("%s bigcrlf" % tag, b"\r\n")),
    ]


def one_message(tag, kind):
    return b"From: Late <late@example.org>\nSubject: %s %s\n\nA message more.\n.\n" \
        % (tag.encode(), kind.encode())


seq = [0]


def deliver(user, home, msgs, folder=""):
    """Put msgs ([(kind, bytes)]) into the user's Maildir (folder "":
    INBOX, else Maildir/.FOLDER, which must exist) /new as local delivery
    would: a file of the user's, mode 0600, written in tmp/ and renamed;
    local's names with S= and W= (not for a file without a line end at the
    end, whose W= local would never write)."""
    pw = pwd.getpwnam(user)
    md = os.path.join(home, "Maildir", "." + folder if folder else "")
    names = []
    for kind, data in msgs:
        seq[0] += 1
        name = maildir_name(seq[0], data, sizes=data.endswith(b"\n"))
        if not folder:
            put_messages(user, home, {name: data})
        else:
            tmp = os.path.join(md, "tmp", name)
            with open(tmp, "wb") as f:
                f.write(data)
            os.chown(tmp, pw.pw_uid, pw.pw_gid)
            os.chmod(tmp, 0o600)
            os.rename(tmp, os.path.join(md, "new", name))
        names.append(name)
    return names


def lf(data):
    return data.replace(b"\r\n", b"\n")


SUBJECT_RX = re.compile(rb"^Subject: (.*)$", re.M)


def subject_of(data):
    head = lf(data).split(b"\n\n", 1)[0]
    m = SUBJECT_RX.search(head)
    return m.group(1).decode(errors="replace") if m else None


def maildir_msgs(md):
    """{subject: (path, bytes, flags)} of a Maildir's new/ and cur/; flags
    the letters after ":2,"."""
    out = {}
    for sub in ("new", "cur"):
        try:
            names = sorted(os.listdir(os.path.join(md, sub)))
        except FileNotFoundError:
            continue
        for n in names:
            p = os.path.join(md, sub, n)
            with open(p, "rb") as f:
                data = f.read()
            flags = n.split(":2,", 1)[1] if ":2," in n else ""
            s = subject_of(data)
            out[s if s not in out else "%s (again: %s)" % (s, n)] = (p, data, flags)
    return out


def server_msgs(home, folder=""):
    return maildir_msgs(os.path.join(home, "Maildir", "." + folder if folder else ""))


def snapshot(*dirs, messages_only=False):
    """Every file below dirs (only those in new/ and cur/ with
    messages_only): {path: sha256}, to see that nothing changed."""
    out = {}
    for d in dirs:
        for root, _, files in os.walk(d):
            if messages_only and os.path.basename(root) not in ("new", "cur"):
                continue
            for n in files:
                p = os.path.join(root, n)
                try:
                    with open(p, "rb") as f:
                        out[p] = hashlib.sha256(f.read()).hexdigest()
                except OSError:
                    pass
    return out


# ------------------------------------------------------------------ the server side
FETCH_RX = re.compile(r"^\* \d+ FETCH \((.*)", re.S)


def server_flags(user, folder="INBOX"):
    """{subject: (uid, set of flags without \\Recent, INTERNALDATE as a
    time_t)} of a mailbox, asked over IMAP (EXAMINE)."""
    c = login(P143, user, PASSWORD)
    out = {}
    try:
        u, t = c.cmd('EXAMINE "%s"' % folder)
        if "OK" not in t:
            raise RuntimeError("EXAMINE %s: %s" % (folder, t))
        if "* 0 EXISTS" not in u:
            u, t = c.cmd("FETCH 1:* (UID FLAGS INTERNALDATE "
                         "BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            for line in u:
                m = FETCH_RX.match(line)
                if not m:
                    continue
                uid = int(re.search(r"UID (\d+)", line).group(1))
                flags = set(re.search(r"FLAGS \(([^)]*)\)", line).group(1).split())
                s = re.search(r"Subject: ([^\r\n]*)", line)
                date = imaplib.Internaldate2tuple(line.encode())
                out[s.group(1) if s else "uid %d" % uid] = (uid, flags - {"\\Recent"},
                                                            date and time.mktime(date))
        c.cmd("LOGOUT")
    finally:
        c.close()
    return out


def server_store(user, folder, changes):
    """UID STORE on the server: changes {subject: "+FLAGS (...)"}; the
    tagged replies."""
    uids = server_flags(user, folder)
    c = login(P143, user, PASSWORD)
    replies = []
    try:
        c.cmd('SELECT "%s"' % folder)
        for subject, what in changes.items():
            replies.append(c.cmd("UID STORE %d %s" % (uids[subject][0], what))[1])
        c.cmd("LOGOUT")
    finally:
        c.close()
    return replies


def server_append(user, folder, data, flags):
    c = login(P143, user, PASSWORD)
    try:
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        c.send(b'x1 APPEND "%s" (%s) {%d+}\r\n' % (folder.encode(), flags.encode(), len(data))
               + data + b"\r\n")
        t = c.read_until("x1")[1]
        c.cmd("LOGOUT")
    finally:
        c.close()
    return t


def server_create(user, folder):
    c = login(P143, user, PASSWORD)
    try:
        t = c.cmd('CREATE "%s"' % folder)[1]
        c.cmd("LOGOUT")
    finally:
        c.close()
    return t


# ------------------------------------------------------------------ checks
def show_difference(copy, orig):
    d = list(difflib.unified_diff(orig.decode("latin-1").splitlines(),
                                  copy.decode("latin-1").splitlines(), "server", "client",
                                  lineterm="", n=1))
    diag("\n".join(d[:40]) or "(no line differs: line ends, or the end of the last line)")


def same_message(copy, orig, added_ok):
    """"" if copy is orig (as bytes, LF line ends) plus header fields that
    added_ok(field, body) accepts; else what is wrong."""
    extra = added_fields(copy, orig)
    if extra is None:
        show_difference(copy, orig)
        return "not the message"
    body = split_message(copy)[1]
    wrong = [f for f in extra if not added_ok(f, body)]
    return "header fields added: %r" % wrong if wrong else ""


def check_copies(name, copies, originals, added_ok, added_what, end_lf=False):
    """copies ({subject: bytes}) are exactly originals ({subject: bytes as
    on the server}) with LF line ends (and one after the last line if
    end_lf), plus what added_ok accepts."""
    is_(sorted(copies), sorted(originals), "%s: the %d messages, each once"
        % (name, len(originals)))
    bad = []
    for s, orig in sorted(originals.items()):
        if s not in copies:
            continue
        want = lf(orig)
        if end_lf and not want.endswith(b"\n"):
            want += b"\n"
        why = same_message(copies[s], want, added_ok)
        if why:
            bad.append("%s: %s" % (s, why))
    ok(not bad, "  each byte for byte the server's file, %s" % added_what) or diag("\n".join(bad))


def log_since(offset):
    return inst.log()[offset:]


def check_login(name, offset, user, mech):
    """imapd logged the client's login(s) since offset, all with mech."""
    rx = re.compile(r"imapd\[\d+\]: %s: login from \[127\.0\.0\.1\], "
                    r"mechanism ([^,\s]+)(?:, TLS)?$" % re.escape(user), re.M)
    inst.wait_for(lambda: rx.search(log_since(offset)), 10)
    mechs = rx.findall(log_since(offset))
    ok(mechs and all(m == mech for m in mechs),
       "%s: imapd logged \"login from [127.0.0.1], mechanism %s\"" % (name, mech)) \
        or diag("mechanisms logged: %r" % mechs)


# ------------------------------------------------------------------ 1. mbsync
def tuid_added(field, body):
    """mbsync marks every message it stores with X-TUID: (12 characters)."""
    return re.match(rb"X-TUID: [A-Za-z0-9+/]{12}\n$", field) is not None


MBSYNC_CMD_RX = re.compile(r"^(?:\(\d+ in progress\) )?>>> \d+ (.*)$", re.M)
QUIET_CMDS = re.compile(r"^(STARTTLS|CAPABILITY|AUTHENTICATE|LOGIN|NAMESPACE|LIST|SELECT|"
                        r"LOGOUT|UID FETCH [0-9:,]+ \(UID FLAGS\))( |$)")


def mbsync_commands(output):
    return MBSYNC_CMD_RX.findall(output)


def mbsync(d, rc):
    """One mbsync run of the channel, with its protocol trace (-Dn)."""
    r = run_client([MBSYNC, "-c", rc, "-Dn", "ch"], d)
    r.output = r.output.replace("\r\n", "\n")
    return r


LOCAL_DATE = calendar.timegm((2026, 1, 2, 3, 4, 5, 0, 0, 0))
SERVER_DATE = calendar.timegm((2026, 3, 4, 5, 6, 7, 0, 0, 0))
MBSYNC_BOXES = ("INBOX", "Work", "Sent", "Projects.2027")     # the far side's names


def local_state(local):
    """{box: maildir_msgs()} of the near side (SubFolders Verbatim: "/"
    for the server's ".")."""
    return {f: maildir_msgs(os.path.join(local, f.replace(".", "/"))) for f in MBSYNC_BOXES}


def server_state(user, home):
    return {f: server_msgs(home, "" if f == "INBOX" else f) for f in MBSYNC_BOXES}


def imap_flag_letters(flags):
    """IMAP flags as Maildir letters, sorted."""
    m = {"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S", "\\Deleted": "T"}
    return "".join(sorted(m[f] for f in flags if f in m))


def set_local_flags(path, letters):
    """Give a near-side message these Maildir flags: rename it into cur/
    with ":2,LETTERS", mbsync's way."""
    md = os.path.dirname(os.path.dirname(path))
    base = os.path.basename(path).split(":", 1)[0]
    new = os.path.join(md, "cur", base + ":2," + "".join(sorted(letters)))
    os.rename(path, new)
    return new


def mbsync_case(mode):
    port = P993 if mode == "993" else P143
    expunge = mode == "993"
    name = "mbsync %s" % MODE_NAME[mode]
    tag = "mbsync-" + mode
    user, home = account()
    # The server side: INBOX with the seven; Work with two APPENDed with
    # flags; Sent (made on the first login) empty.
    like(server_create(user, "Work"), "OK", "%s: the account gets a folder Work" % name)
    inbox = messages(tag)
    deliver(user, home, inbox)
    like(server_append(user, "Work", one_message(tag, "work-seen"), "\\Seen"), "OK [APPENDUID",
         "  and two messages APPENDed to Work, one \\Seen")
    like(server_append(user, "Work", one_message(tag, "work-answered"), "\\Answered"),
         "OK [APPENDUID", "  one \\Answered")
    d = client_dir(tag)
    local = client_dir(tag, "local")
    rc = os.path.join(d, "mbsyncrc")
    client_file(rc, "\n".join([
        "IMAPAccount acct", "Host 127.0.0.1", "Port %d" % port, "User %s" % user,
        "Pass %s" % PASSWORD, "SSLType %s" % ("IMAPS" if mode == "993" else "STARTTLS"),
        # the instance's self-signed certificate is the one trusted
        "CertificateFile %s" % CERT, "SystemCertificates no", "Timeout 30",
        # 143: its pick, SCRAM-SHA-256; 993: the IMAP LOGIN command
        "AuthMechs %s" % ("LOGIN" if mode == "993" else "*"), "",
        "IMAPStore far", "Account acct", "",
        "MaildirStore near", "Path %s/" % local, "Inbox %s/INBOX" % local,
        "SubFolders Verbatim", "",
        "Channel ch", "Far :far:", "Near :near:", "Patterns INBOX Work Sent Projects*",
        "Create Both", "Expunge %s" % ("Both" if expunge else "None"), "SyncState *",
        # the arrival date goes with APPEND and comes with INTERNALDATE
        "CopyArrivalDate yes", ""]))

    # First run: everything pulled.
    off = len(inst.log())
    r = mbsync(d, rc)
    exits(name + ", first run", r)
    like(r.output, "Connection is now encrypted", "  mbsync says the connection is encrypted")
    cmds = mbsync_commands(r.output)
    if mode == "143":
        is_(cmds[:2], ["STARTTLS", "CAPABILITY"], "  its first commands: STARTTLS, CAPABILITY")
    else:
        like(cmds[0] if cmds else "", "LOGIN ",
             "  its first command: LOGIN (AuthMechs LOGIN; the greeting had the capabilities)")
    # imapd logs the LOGIN command as PLAIN
    check_login(name, off, user, "PLAIN" if mode == "993" else "SCRAM-SHA-256")
    srv = server_state(user, home)
    loc = local_state(local)
    check_copies(name + ", first run: INBOX", {s: v[1] for s, v in loc["INBOX"].items()},
                 {s: v[1] for s, v in srv["INBOX"].items()}, tuid_added, "plus X-TUID:")
    check_copies("  Work", {s: v[1] for s, v in loc["Work"].items()},
                 {s: v[1] for s, v in srv["Work"].items()}, tuid_added, "plus X-TUID:")
    is_({s: v[2] for s, v in loc["Work"].items()},
        {"%s work-seen" % tag: "S", "%s work-answered" % tag: "R"},
        "  Work's \\Seen and \\Answered arrive as flags S and R")
    is_({s: v[2] for s, v in loc["INBOX"].items()}, {"%s %s" % (tag, k): "" for k, _ in inbox},
        "  INBOX's messages without flags")
    is_(sorted(loc["Sent"]), [], "  Sent: made locally, empty")

    # Changes on both sides.
    S = lambda k: "%s %s" % (tag, k)     # noqa: E731
    set_local_flags(loc["INBOX"][S("plain")][0], "FS")
    set_local_flags(loc["INBOX"][S("8bit")][0], "T")
    set_local_flags(loc["INBOX"][S("big")][0], "S")         # and \\Flagged on the server
    set_local_flags(loc["Work"][S("work-seen")][0], "")
    path = os.path.join(local, "INBOX", "new", "%d.t58-local-new.client" % time.time())
    client_file(path, one_message(tag, "local-new"))
    os.utime(path, (LOCAL_DATE, LOCAL_DATE))        # its arrival date
    new_maildir(tag, "local", "Projects", "2027")   # a new folder, one level down
    client_file(os.path.join(local, "Projects", "2027", "new", "%d.t58-project.client"
                             % time.time()), one_message(tag, "project-new"))
    sent = b"From: <%s@example.test>\nTo: <bob@example.org>\nSubject: %s sent-copy\n" \
        b"Date: Mon, 7 Dec 2026 11:00:00 +0000\n\nSent by the client.\n" \
        % (client.encode(), tag.encode())
    client_file(os.path.join(local, "Sent", "cur", "%d.t58-sent.client:2,S" % time.time()),
                sent)
    replies = server_store(user, "INBOX", {S("dots"): "+FLAGS (\\Flagged)",
                                           S("crlf"): "+FLAGS (\\Deleted \\Seen)",
                                           S("noeol"): "+FLAGS (\\Seen \\Answered)",
                                           S("big"): "+FLAGS (\\Flagged)"})
    # \\Answered off, \\Flagged on
    replies += server_store(user, "Work", {S("work-answered"): "FLAGS (\\Flagged)"})
    ok(all(" OK " in t for t in replies), "%s: flags set on the server with UID STORE" % name) \
        or diag(replies)
    new = deliver(user, home, [("server-new", one_message(tag, "server-new"))])[0]
    os.utime(os.path.join(home, "Maildir", "new", new), (SERVER_DATE, SERVER_DATE))
    deliver(user, home, [("work-new", one_message(tag, "work-new"))], folder="Work")

    # Second run: every change on the other side.
    r = mbsync(d, rc)
    exits(name + ", second run", r)
    cmds = mbsync_commands(r.output)
    is_([c for c in cmds if c.startswith("CREATE ")], ['CREATE "Projects.2027"'],
        "  it CREATEs Projects.2027 on the server") or diag(cmds)
    is_(sorted(re.sub(r" .*", "", c[7:]) for c in cmds if c.startswith("APPEND ")),
        ['"INBOX"', '"Projects.2027"', '"Sent"'], "  three APPENDs (INBOX, Sent, Projects.2027)") \
        or diag(cmds)
    flags = {f: server_flags(user, f) for f in MBSYNC_BOXES}
    want_srv = {
        "INBOX": {S("plain"): {"\\Seen", "\\Flagged"}, S("8bit"): {"\\Deleted"},
                  S("dots"): {"\\Flagged"}, S("crlf"): {"\\Deleted", "\\Seen"},
                  S("noeol"): {"\\Seen", "\\Answered"}, S("big"): {"\\Seen", "\\Flagged"},
                  S("bigcrlf"): set(),
                  S("local-new"): set(), S("server-new"): set()},
        "Work": {S("work-seen"): set(), S("work-answered"): {"\\Flagged"},
                 S("work-new"): set()},
        "Sent": {S("sent-copy"): {"\\Seen"}},
        "Projects.2027": {S("project-new"): set()},
    }
    if expunge:
        del want_srv["INBOX"][S("8bit")], want_srv["INBOX"][S("crlf")]
    got = {f: {s: v[1] for s, v in flags[f].items()} for f in flags}
    is_(got, want_srv, "  the server's flags: the local changes arrived (\\Seen \\Flagged, "
        "\\Deleted, -\\Seen, \\Seen on one flagged here), the new local messages with "
        "theirs%s"
        % (", the deleted ones expunged (Expunge Both)" if expunge else ""))
    loc = local_state(local)
    srv = server_state(user, home)
    want_loc = {f: {s: imap_flag_letters(fl) for s, fl in v.items()} for f, v in want_srv.items()}
    is_({f: {s: v[2] for s, v in loc[f].items()} for f in loc}, want_loc,
        "  the near side's flags: the server's changes arrived (F, TS, RS, F on one seen there, "
        "R off and F on in Work)%s"
        % (", the deleted ones gone" if expunge else ""))
    for f in MBSYNC_BOXES:
        ok(all(srv[f][s][2] == imap_flag_letters(fl) for s, fl in want_srv[f].items()
               if s in srv[f]) and sorted(srv[f]) == sorted(want_srv[f]),
           "  the server's Maildir %s: those messages, those flags in the file names" % f) \
            or diag(sorted((s, v[0]) for s, v in srv[f].items()))
    for f, s in (("INBOX", S("local-new")), ("Sent", S("sent-copy")),
                 ("Projects.2027", S("project-new"))):
        why = "missing" if s not in srv[f] or s not in loc[f] else \
            same_message(srv[f][s][1], loc[f][s][1], tuid_added)
        ok(not why, "  uploaded: %s byte for byte in the server's %s, plus X-TUID:" % (s, f)) \
            or diag(why)
    for f, s in (("INBOX", S("server-new")), ("Work", S("work-new"))):
        why = "missing" if s not in srv[f] or s not in loc[f] else \
            same_message(loc[f][s][1], lf(srv[f][s][1]), tuid_added)
        ok(not why, "  pulled: %s byte for byte in the local %s, plus X-TUID:" % (s, f)) \
            or diag(why)

    got = flags["INBOX"].get(S("local-new"), (0, 0, None))[2]
    ok(got == LOCAL_DATE, "  APPEND gave the local file's date as the INTERNALDATE "
       "(CopyArrivalDate)") or diag("INTERNALDATE %s, want %s" % (got, LOCAL_DATE))
    got = os.stat(loc["INBOX"][S("server-new")][0]).st_mtime if S("server-new") in loc["INBOX"] \
        else None
    ok(got == SERVER_DATE, "  and the server's INTERNALDATE (the file's time) is the local copy's "
       "time") or diag("mtime %s, want %s" % (got, SERVER_DATE))

    # Third run: nothing to do.
    # The near side: every file, mbsync's state too; the server: the
    # messages (imapd's index and cache are its own business).
    before = (snapshot(local), snapshot(os.path.join(home, "Maildir"), messages_only=True))
    r = mbsync(d, rc)
    exits(name + ", third run", r)
    cmds = mbsync_commands(r.output)
    # (with Expunge, mbsync CLOSEs every box it selected)
    busy = [c for c in cmds if not QUIET_CMDS.match(c) and not (expunge and c == "CLOSE")]
    ok(cmds and not busy, "  it only logs in, lists, selects and asks for UIDs and flags%s"
       % (" (and CLOSEs: Expunge Both)" if expunge else "")) \
        or diag(busy or r.output[-3000:])
    after = (snapshot(local), snapshot(os.path.join(home, "Maildir"), messages_only=True))
    ok(before[0] == after[0], "  the near side did not change (every file name and content)") \
        or diag(sorted(set(before[0].items()) ^ set(after[0].items())))
    ok(before[1] == after[1], "  nor the server's Maildir (every message file's name and "
       "content)") \
        or diag(sorted(set(before[1].items()) ^ set(after[1].items())))


if MBSYNC is None:
    ok(True, "# skip mbsync: not installed")
else:
    for mode in ("143", "993"):
        mbsync_case(mode)



# ------------------------------------------------------------------ 2. mutt
def mutt_added(field, body):
    """mutt's copy-message writes Content-Length: and Lines: of the body."""
    m = re.match(rb"(Content-Length|Lines): (\d+)\n$", field)
    if not m:
        return False
    want = len(body) if m.group(1) == b"Content-Length" else body.count(b"\n")
    return int(m.group(2)) == want


def server_status(user, folder="INBOX"):
    c = login(P143, user, PASSWORD)
    try:
        u, t = c.cmd('STATUS "%s" (MESSAGES)' % folder)
        c.cmd("LOGOUT")
    finally:
        c.close()
    m = re.search(r"MESSAGES (\d+)", " ".join(u))
    return int(m.group(1)) if m else None


def mutt_case(mode, auth):
    port = P993 if mode == "993" else P143
    tls_words = "imaps://" if mode == "993" else "imap:// with ssl_starttls"
    name = "mutt %s (%s)" % (tls_words, "AUTHENTICATE %s" % auth.upper() if auth
                             else "its own choice of login")
    tag = "mutt-" + mode
    user, home = account()
    msgs = messages(tag)
    deliver(user, home, msgs)
    originals = {s: v[1] for s, v in server_msgs(home).items()}
    d = client_dir(tag)
    saved = new_maildir(tag, "saved")
    piped = os.path.join(d, "piped")
    url = "%s://%s@127.0.0.1:%d/INBOX" % ("imaps" if mode == "993" else "imap", user, port)
    rc = os.path.join(d, "muttrc")
    client_file(rc, "".join([
        'set imap_user="%s"\nset imap_pass="%s"\n' % (user, PASSWORD),
        # The instance's self-signed certificate is the one trusted (mutt
        # with GnuTLS); it names mail.example.test, mutt connects to 127.0.0.1.
        'set certificate_file="%s"\nset ssl_verify_host=no\n' % CERT,
        'set ssl_starttls=yes\nset ssl_force_tls=yes\n',
        'set imap_authenticators="%s"\n' % auth if auth else "",
        'set mbox_type=Maildir\nset folder="%s"\nset spoolfile="%s"\n' % (d, url),
        'set header_cache=""\nset message_cachedir=""\nset record=""\n',
        'set postponed="%s/postponed"\nset imap_check_subscribed=no\n' % d,
        'set confirmappend=no\nset confirmcreate=no\nset move=no\nset delete=yes\n'
        'set quit=yes\nset wait_key=no\nset pipe_decode=no\nset sort=mailbox-order\n',
    ]))
    keys = ("<tag-pattern>~A<enter><tag-prefix><copy-message>%s<enter><untag-pattern>~A<enter>"
            "<limit>~s 8bit<enter><pipe-message>cat > %s<enter>"
            "<limit>~s dots<enter><delete-message><limit>~A<enter>"
            "<sync-mailbox><quit>" % (saved, piped))
    off = len(inst.log())
    r = run_on_pty([MUTT, "-n", "-d", "2", "-F", rc, "-f", url, "-e", "push '%s'" % keys], d)
    if not exits(name, r):
        try:
            with open(os.path.join(d, ".muttdebug0"), errors="replace") as f:
                diag("debug log: %s" % "".join(f.readlines()[-40:]))
        except OSError:
            pass
    check_login(name, off, user, "SCRAM-SHA-256" if auth is None else auth.upper())
    copies = {s: v[1] for s, v in maildir_msgs(saved).items()}
    check_copies(name + ", copy-message of all to a Maildir", copies, originals, mutt_added,
                 "plus copy-message's Content-Length: and Lines:, both right")
    try:
        with open(piped, "rb") as f:
            got = f.read()
    except OSError:
        got = b""
    want = lf(originals["%s 8bit" % tag])
    ok(got == want, "  pipe-message: the 8-bit message byte for byte") \
        or show_difference(got, want)
    left = server_msgs(home)
    is_(sorted(left), sorted(s for s in originals if s != "%s dots" % tag),
        "  the deleted message is gone from the server's Maildir after <sync-mailbox>, "
        "the others stay")
    is_(server_status(user), len(originals) - 1, "  STATUS INBOX: MESSAGES %d"
        % (len(originals) - 1))


if MUTT is None:
    ok(True, "# skip mutt: not installed")
else:
    # imap_authenticators "login" is GNU SASL's LOGIN here (AUTHENTICATE
    # LOGIN); mutt uses the LOGIN command only without SASL support.
    for mode, auth in (("143", None), ("993", "login")):
        mutt_case(mode, auth)


# ------------------------------------------------------------------ 3. fetchmail
def fetchmail_added(field, body):
    return field.startswith(b"Received: from 127.0.0.1 [127.0.0.1]\n") \
        and b" with IMAP (fetchmail-" in field


STORE_SH = os.path.join(client_dir("bin"), "store")
client_file(STORE_SH, "#!/bin/sh\n# fetchmail's MDA: the message on stdin, a file of its own "
            "in $1\nn=$(date +%s%N).$$\n"
            "cat > \"$1/tmp.$n\" && mv \"$1/tmp.$n\" \"$1/msg.$n\"\n", 0o755)


def fetchmail_run(name, mode, user, tag, options, want_rc=0):
    """One fetchmail run into a new store: (Result, {subject: bytes})."""
    d = client_dir("fetchmail-" + mode)
    store = client_dir("fetchmail-" + mode, "store-" + tag)
    if mode == "143":
        tls_opts = "sslproto 'tls1.2+' no sslcertck sslfingerprint \"%s\"" % MD5_FP
    else:
        tls_opts = "ssl no sslcertck sslfingerprint \"%s\"" % MD5_FP
    rc = os.path.join(d, "fetchmailrc")
    client_file(rc, "set no syslog\nset no bouncemail\n"
                "poll 127.0.0.1 protocol IMAP port %d timeout 30\n"
                "  user \"%s\" there with password \"%s\"\n"
                "  mda \"%s %s\"\n"
                "  %s %s\n" % (P993 if mode == "993" else P143, user, PASSWORD, STORE_SH,
                               store, tls_opts, options))
    r = run_client([FETCHMAIL, "-f", rc, "--idfile", os.path.join(d, "ids"),
                    "--pidfile", os.path.join(d, "pid"), "-v"], d)
    exits(name, r, want_rc)
    stored = {}
    for n in sorted(os.listdir(store)):
        if n.startswith("msg."):
            with open(os.path.join(store, n), "rb") as f:
                data = f.read()
            stored[subject_of(data)] = data
    return r, stored


if FETCHMAIL is None:
    ok(True, "# skip fetchmail: not installed")
else:
    # 143, STARTTLS required, without keep: everything fetched and deleted.
    user, home = account()
    tag = "fetchmail-143"
    name = "fetchmail 143 with STARTTLS, without keep"
    deliver(user, home, messages(tag))
    originals = {s: v[1] for s, v in server_msgs(home).items()}
    off = len(inst.log())
    r, stored = fetchmail_run(name, "143", user, tag, "")
    like(r.output, "upgrade to TLS succeeded", "  fetchmail says STARTTLS worked")
    like(r.output, "fingerprints match", "  and the certificate's fingerprint matched")
    check_login(name, off, user, "PLAIN")
    check_copies(name, stored, originals, fetchmail_added, "plus fetchmail's Received: line",
                 end_lf=True)
    is_(sorted(server_msgs(home)), [], "  every message deleted from the server's Maildir")

    # 993: keep, keep again, one more, then fetchall without keep.
    user, home = account()
    tag = "fetchmail-993"
    name = "fetchmail 993 keep"
    deliver(user, home, messages(tag))
    originals = {s: v[1] for s, v in server_msgs(home).items()}
    off = len(inst.log())
    r, stored = fetchmail_run(name, "993", user, tag + "-1", "keep")
    like(r.output, "fingerprints match", "  (993: the certificate's fingerprint matched)")
    check_login(name, off, user, "PLAIN")
    check_copies(name, stored, originals, fetchmail_added, "plus fetchmail's Received: line",
                 end_lf=True)
    is_(sorted(server_msgs(home)), sorted(originals), "  every message kept on the server")
    is_({s: v[1] for s, v in server_flags(user).items()}, {s: {"\\Seen"} for s in originals},
        "  now \\Seen")
    r, stored = fetchmail_run(name + ", second run", "993", user, tag + "-2", "keep", want_rc=1)
    is_(sorted(stored), [], "  nothing fetched again (all \\Seen)")
    like(r.output, "(%d seen)" % len(originals), "  fetchmail counts the %d messages as seen"
         % len(originals))
    deliver(user, home, [("more", one_message(tag, "more"))])
    more = {s: v[1] for s, v in server_msgs(home).items() if s not in originals}
    r, stored = fetchmail_run(name + ", a message more", "993", user, tag + "-3", "keep")
    check_copies(name + ", a message more", stored, more, fetchmail_added,
                 "only the new one, plus fetchmail's Received: line", end_lf=True)
    name = "fetchmail 993 fetchall without keep"
    r, stored = fetchmail_run(name, "993", user, tag + "-4", "fetchall")
    check_copies(name, stored, dict(originals, **more), fetchmail_added,
                 "plus fetchmail's Received: line", end_lf=True)
    is_(sorted(server_msgs(home)), [], "  every message deleted from the server's Maildir")


# ------------------------------------------------------------------ 4. getmail
def getmail_added(ssl_on):
    proto = re.compile(rb" with IMAP4%s\s" % (b"-SSL" if ssl_on else b""))

    def added(field, body):
        if field.startswith(b"Received: "):
            return b"getmail6" in field and proto.search(field)
        # record_mailbox (on by default): the folder it came from
        return field.startswith(b"Delivered-To: ") or field.startswith(b"Return-Path: ") \
            or field == b"X-getmail-retrieved-from-mailbox: INBOX\n"
    return added


def getmail_run(name, mode, user, tag, read_all, delete):
    """One getmail run into a new Maildir: (Result, {subject: bytes})."""
    d = client_dir("getmail-" + mode)
    store = new_maildir("getmail-" + mode, "store-" + tag)
    client_file(os.path.join(d, "getmailrc"),
                "[retriever]\ntype = %s\nserver = 127.0.0.1\nport = %d\nusername = %s\n"
                "password = %s\ntimeout = 30\n%s\n"
                "[destination]\ntype = Maildir\npath = %s/\n\n"
                "[options]\nverbose = 2\nread_all = %s\ndelete = %s\n"
                % ("SimpleIMAPSSLRetriever" if mode == "993" else "SimpleIMAPRetriever",
                   P993 if mode == "993" else P143, user, PASSWORD,
                   # no CA to verify against: the certificate's fingerprint
                   "ssl_fingerprints = (\"%s\",)\n" % SHA256_FP if mode == "993" else "",
                   store, read_all, delete))
    r = run_client([GETMAIL, "--getmaildir", d, "--rcfile", "getmailrc"], d)
    exits(name, r)
    return r, {s: v[1] for s, v in maildir_msgs(store).items()}


if GETMAIL is None:
    ok(True, "# skip getmail: not installed")
else:
    user, home = account()
    tag = "getmail-143"
    name = "getmail 143 without TLS, read_all and delete"
    deliver(user, home, messages(tag))
    originals = {s: v[1] for s, v in server_msgs(home).items()}
    off = len(inst.log())
    r, stored = getmail_run(name, "143-plain", user, tag, "true", "true")
    check_login(name, off, user, "PLAIN")
    check_copies(name, stored, originals, getmail_added(False),
                 "plus getmail's Delivered-To:, Return-Path:, Received:, "
                 "X-getmail-retrieved-from-mailbox:")
    is_(sorted(server_msgs(home)), [], "  every message deleted from the server's Maildir")
    ok(True, "# skip getmail with STARTTLS: getmail6 has no STARTTLS for IMAP (only IMAP over "
       "SSL)")

    user, home = account()
    tag = "getmail-993"
    name = "getmail 993 read_all = false, delete = false"
    deliver(user, home, messages(tag))
    originals = {s: v[1] for s, v in server_msgs(home).items()}
    off = len(inst.log())
    r, stored = getmail_run(name, "993", user, tag + "-1", "false", "false")
    check_login(name, off, user, "PLAIN")
    check_copies(name, stored, originals, getmail_added(True),
                 "plus getmail's Delivered-To:, Return-Path:, Received:, "
                 "X-getmail-retrieved-from-mailbox:")
    is_(sorted(server_msgs(home)), sorted(originals), "  every message kept on the server")
    r, stored = getmail_run(name + ", second run", "993", user, tag + "-2", "false", "false")
    is_(sorted(stored), [], "  nothing retrieved again")
    like(r.output, "0 messages (0 bytes) retrieved, %d skipped" % len(originals),
         "  getmail skipped the %d it had seen" % len(originals))
    deliver(user, home, [("more", one_message(tag, "more"))])
    more = {s: v[1] for s, v in server_msgs(home).items() if s not in originals}
    r, stored = getmail_run(name + ", a message more", "993", user, tag + "-3", "false", "false")
    check_copies(name + ", a message more", stored, more, getmail_added(True),
                 "only the new one, plus getmail's fields")
    name = "getmail 993 read_all, delete"
    r, stored = getmail_run(name, "993", user, tag + "-4", "true", "true")
    check_copies(name, stored, dict(originals, **more), getmail_added(True),
                 "plus getmail's fields")
    is_(sorted(server_msgs(home)), [], "  every message deleted from the server's Maildir")

# ------------------------------------------------------------------ the end
log = inst.log()
bad = [l for l in log.splitlines()
       if re.search(r"panic|fatal|killed by signal|\) exit status [1-9]", l)]
ok(not bad, "no panic, fatal error or crash in the log") or diag(bad[:10])
ok(PASSWORD not in log, "the password is in no log line")
diag("%.1f s" % (time.time() - T0))
inst.stop()
inst.cleanup()
done()
