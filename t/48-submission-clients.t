#!/usr/bin/env python3
"""t/48-submission-clients.t - submission (587 with STARTTLS, 465 with
implicit TLS) with real mail clients, SCRAM channel binding, broken SASL
exchanges, authd dying, the outbound path to a second Posthorn and the
password map's privileges.

Two instances on loopback: A (mx.a.test) is the one under test; B
(mx.b.test) is the final destination of A's outbound mail.  A routes
mx.b.test to B's port 25 (transport_maps) and everything else that is
not its own to B's port 587 as its relayhost, with SASL (B's user's
credentials) and smtp_tls_security_level = encrypt.

 1. mutt (batch mode, HOME a temporary directory, the instance's
    certificate as its certificate_file) sends on 587 and on 465 with
    smtp_authenticators plain and login, with its defaults (no
    smtp_authenticators), and with scram-sha-256 (mutt links GNU SASL
    here); the messages arrive.  Its defaults work because
    auth_channel_binding is off by default: offered SCRAM-SHA-256-PLUS,
    GNU SASL picks it, mutt does not hand it the TLS channel binding ("a
    tls-exporter channel binding was not provided"), sends "*" and gives
    up on the message.
 2. s-nail with smtps:// on 465 and smtp:// with smtp-use-starttls on 587,
    smtp-auth plain and login; the messages arrive.
 3. SCRAM-SHA-256-PLUS, after a reload with auth_channel_binding = yes,
    with a client written here (RFC 5802, 7677): over
    TLS 1.2 with tls-unique (Python's ssl), over TLS 1.3 with tls-exporter
    (RFC 9266; t/service/tlspipe exports it, Python's ssl cannot) on 587
    and 465: the right password (235, the server's signature verified),
    a wrong one (535), a wrong channel binding (another connection's
    tls-unique; one byte of the exporter flipped) refused.  The same client
    against authd directly first, so that a failure through submission is
    not the client's.
 4. Broken SASL: a non-base64 initial response and continuation (501), a
    continuation longer than line_length_limit (allowed: RFC 4954 wants
    12288 octets; authd answers), longer than authd's frame and than
    RFC 4954's limit (500 5.5.6), an over-long AUTH command line (500), an
    unknown mechanism (504), AUTH PLAIN without its NULs (535), a cancel
    (501); after each NOOP works, and the right password still logs in on
    the same connection.
 5. authd killed (SIGKILL) in the middle of a burst of logins, right and
    wrong, and with an exchange open: 454 4.7.0 or the normal answer,
    never 235 for a wrong password, never a hang; master starts a new
    authd and logins succeed again, also on the connection that got 454.
 6. A's submission takes mail for mx.b.test: it reaches B's user through
    B's port 25, with A's "Received: ... with ESMTPSA" line.
 7. A's relayhost is B's port 587: A's smtp logs in with SASL over TLS
    and the message reaches B's user; B's log names the login.
 8. authd runs as auth_user (/proc/PID/status); passwords.db cannot be
    opened by network_user, mail_owner, login_user, default_privs (with
    setgid_group too), nor with the credentials of any of A's running
    processes other than root's and authd's (EACCES), while auth_user can.

Every process is cleaned up by PID.  Skips without root."""
import atexit
import base64
import errno
import grp
import hashlib
import hmac
import os
import pwd
import re
import select
import shutil
import signal
import smtplib
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap  # noqa: E402
from tap import ok, is_, like, diag, done, skip_all  # noqa: E402

if os.geteuid() != 0:
    skip_all("master must run as root")

import ipcframe  # noqa: E402
import posthorn  # noqa: E402
from smtptest import LINE  # noqa: E402

TLSPIPE = os.path.join(posthorn.BUILD, "t", "tlspipe")
PASSWORD = "Sub-m1ssion-pw"           # safe in a URL as it is (s-nail)
CAROL_PW = "relay host pw 7"
work = tempfile.mkdtemp(prefix="posthorn-t48-")
os.chmod(work, 0o755)
helpers = []                            # processes started here, killed by PID at exit


def _cleanup_work():
    for p in helpers:
        if p.poll() is None:
            p.kill()
            p.wait()
    shutil.rmtree(work, True)


atexit.register(_cleanup_work)

def set_password(inst, user, password):
    r = subprocess.run([posthorn.MAILCTL, "-c", inst.etc, "user", "add", user, "--password-stdin"],
                       input=password + "\n", capture_output=True, text=True, timeout=60)
    is_(r.returncode, 0, "%s gets a mail password on %s" % (user, inst.hostname)) or diag(r.stderr)


def build_map(inst, path, text, mode):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    r = inst.mailctl("map", path)
    is_(r.returncode, 0, "mailctl map %s" % os.path.basename(path)) or diag(r.stderr)


# ------------------------------------------------------------------ the instances
B = posthorn.Instance(hostname="mx.b.test", domain="b.test")
B.hostname = "mx.b.test"
r = B.start()
ok(r.returncode == 0, "B (mx.b.test) starts") or diag(r.stderr)
A = posthorn.Instance(hostname="mx.a.test", domain="a.test", main_conf={
    # No waiting after failures (many are made here on purpose), no lockout.
    "auth_failure_delay": "0", "auth_failure_limit": "100000",
    "transport_maps": "hash:$config_directory/transport",
    "relayhost": "[127.0.0.1]:%d" % B.port(587),
    "smtp_sasl_auth_enable": "yes",
    "smtp_sasl_password_maps": "hash:$config_directory/sasl_passwd",
    "smtp_tls_security_level": "encrypt",
})
A.hostname = "mx.a.test"
alice, alice_home = A.add_user()        # logs in to A
bob, bob_home = A.add_user()            # receives on A
carol, carol_home = B.add_user()        # logs in to B (A's relayhost credentials)
dave, dave_home = B.add_user()          # receives on B
build_map(A, os.path.join(A.etc, "transport"),
          "mx.b.test smtp:[127.0.0.1]:%d\n" % B.port(25), 0o644)
build_map(A, os.path.join(A.etc, "sasl_passwd"),
          "[127.0.0.1]:%d %s:%s\n" % (B.port(587), carol, CAROL_PW), 0o600)
r = A.start()
ok(r.returncode == 0, "A (mx.a.test) starts, its relayhost B's 587") or diag(r.stderr)
set_password(A, alice, PASSWORD)
set_password(B, carol, CAROL_PW)
ALICE, BOB = "%s@mx.a.test" % alice, "%s@mx.a.test" % bob
CONF = dict(l.split(" = ", 1) for l in A.mailctl("check", "-d").stdout.splitlines() if " = " in l)
CERT = os.path.join(A.etc, "tls", "cert.pem")
NOVERIFY = ssl.create_default_context()
NOVERIFY.check_hostname = False
NOVERIFY.verify_mode = ssl.CERT_NONE


def arrived(inst, home, subject, timeout=20):
    return inst.wait_copies(home, subject, timeout=timeout)


def client_env(home):
    """A clean environment for a mail client: nothing of the machine's."""
    os.makedirs(home, mode=0o700, exist_ok=True)
    return {"HOME": home, "PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "TERM": "dumb",
            "TMPDIR": home}


# ------------------------------------------------------------------ 1. mutt
MUTT = shutil.which("mutt")
if MUTT is None:
    ok(True, "# skip mutt: not installed")
else:
    mutt_home = os.path.join(work, "mutt")
    env = client_env(mutt_home)
    mutt_v = subprocess.run([MUTT, "-v"], capture_output=True, text=True, env=env).stdout
    muttrc = os.path.join(mutt_home, "muttrc")
    with open(muttrc, "w") as f:
        f.write('set from="%s"\nset use_from=yes\nset realname="Alice"\n'
                'set hostname="mx.a.test"\nset record=""\nset copy=no\n'
                'set smtp_pass="%s"\nset ssl_force_tls=yes\nset ssl_starttls=yes\n'
                # The instance's self-signed certificate is the one trusted
                # (mutt with GnuTLS: certificate_file); it names mx.a.test,
                # the client connects to 127.0.0.1.
                'set certificate_file="%s"\nset ssl_verify_host=no\n'
                'set folder="%s"\nset spoolfile="%s/inbox"\n'
                % (ALICE, PASSWORD, CERT, mutt_home, mutt_home))

    def mutt(port, scheme, auth, subject):
        url = "%s://%s@127.0.0.1:%d/" % (scheme, alice, A.port(port))
        return subprocess.run([MUTT, "-n", "-F", muttrc,
                               "-e", 'set smtp_url="%s"' % url]
                              + (["-e", 'set smtp_authenticators="%s"' % auth] if auth else [])
                              + ["-s", subject, BOB],
                              input="sent by mutt with %s\n" % auth, capture_output=True,
                              text=True, env=env, timeout=60)

    # None: mutt's defaults, its SASL library's pick (which would be
    # SCRAM-SHA-256-PLUS, and a failed send, with auth_channel_binding on).
    cases = [(587, "smtp", "plain"), (587, "smtp", "login"),
             (465, "smtps", "plain"), (465, "smtps", "login"),
             (587, "smtp", None), (465, "smtps", None)]
    sasl_lib = "--with-gsasl" in mutt_v or "--with-sasl" in mutt_v
    for port, scheme, auth in cases:
        subject = "mutt %s %d" % (auth, port)
        r = mutt(port, scheme, auth, subject)
        is_(r.returncode, 0, "mutt sends on %d (%s://) with %s" % (port, scheme,
                                                                  auth or "its defaults")) \
            or diag(r.stdout + r.stderr)
        ok(arrived(A, bob_home, subject), "  and it arrives")
    if not sasl_lib:
        ok(True, "# skip mutt with SCRAM-SHA-256: mutt is built without a SASL library")
        diag("mutt offers SCRAM only through Cyrus SASL or GNU SASL; this one has neither")
    else:
        subject = "mutt scram 587"
        r = mutt(587, "smtp", "scram-sha-256", subject)
        if not ok(r.returncode == 0, "mutt sends with scram-sha-256 (its GNU SASL)"):
            diag("mutt: %s" % (r.stdout + r.stderr).strip())
        ok(arrived(A, bob_home, subject, timeout=3 if r.returncode else 20),
             "  and it arrives")
    # SCRAM-SHA-256-PLUS cannot be tried with mutt: GNU SASL knows it, but
    # mutt never passes it the TLS channel binding (gsasl_step64: "a
    # tls-exporter channel binding was not provided"); section 3 covers it.
    diag("mutt and SCRAM-SHA-256-PLUS: not tried, mutt gives GNU SASL no channel binding")
    like(A.log(), "sasl_method=LOGIN, sasl_username=%s" % alice, "A logs mutt's logins")

# ------------------------------------------------------------------ 2. s-nail
SNAIL = shutil.which("s-nail")
if SNAIL is None:
    ok(True, "# skip s-nail: not installed")
else:
    snail_home = os.path.join(work, "snail")
    env = dict(client_env(snail_home), MAILRC="/dev/null")

    def snail(port, auth, subject):
        user = urllib.parse.quote(alice, safe="")
        pw = urllib.parse.quote(PASSWORD, safe="")
        if port == 465:
            mta = ["-S", "mta=smtps://%s:%s@127.0.0.1:%d" % (user, pw, A.port(465))]
        else:
            mta = ["-S", "mta=smtp://%s:%s@127.0.0.1:%d" % (user, pw, A.port(587)),
                   "-S", "smtp-use-starttls"]
        return subprocess.run([SNAIL, "-n", "-#", "-S", "v15-compat", "-S", "tls-verify=ignore",
                               "-S", "smtp-auth=%s" % auth, "-S", "from=%s" % ALICE,
                               "-S", "DEAD=%s/dead.letter" % snail_home, "-S", "hostname=mx.a.test",
                               "-s", subject] + mta + [BOB],
                              input="sent by s-nail with %s\n" % auth, capture_output=True,
                              text=True, env=env, timeout=60)

    for port in (465, 587):
        for auth in ("login", "plain"):
            subject = "s-nail %s %d" % (auth, port)
            r = snail(port, auth, subject)
            name = "s-nail sends on %d (%s) with smtp-auth=%s" % (
                port, "smtps://" if port == 465 else "smtp:// + STARTTLS", auth)
            if auth == "plain":
                # s-nail sends "AUTH PLAIN" and waits for "334 "; the server's
                # "334" with nothing after it reads to s-nail as a broken
                # connection ("Unexpected EOF on SMTP connection").
                if not ok(r.returncode == 0, name):
                    diag("s-nail: %s" % (r.stdout + r.stderr).strip())
                ok(arrived(A, bob_home, subject, timeout=3 if r.returncode else 20),
                     "  and it arrives")
            else:
                is_(r.returncode, 0, name) or diag(r.stdout + r.stderr)
                ok(arrived(A, bob_home, subject), "  and it arrives")


# ------------------------------------------------------------------ SMTP over a pipe or a socket
class PipeSMTP:
    """An SMTP session through t/service/tlspipe: docmd() as smtplib's."""

    def __init__(self, port, starttls, version):
        args = [TLSPIPE] + (["-s"] if starttls else []) + ["-V", version, "127.0.0.1", str(port)]
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        helpers.append(self.p)
        self.buf = b""
        self.info = {}
        while True:
            line = self._line(15)
            if line is None:
                raise RuntimeError("tlspipe: " + self.p.stderr.read().decode(errors="replace"))
            if line == b"ready":
                break
            k, _, v = line.decode().partition(" ")
            if k == "cb":
                t, _, hexdata = v.partition(" ")
                self.info["cb"] = (t, bytes.fromhex(hexdata))
            else:
                self.info[k] = v
        if not starttls:
            self.reply()                    # the greeting
        self.docmd("EHLO", "client.example.org")

    def _line(self, timeout):
        end = time.time() + timeout
        while b"\n" not in self.buf:
            left = end - time.time()
            if left <= 0 or not select.select([self.p.stdout], [], [], left)[0]:
                return None
            data = os.read(self.p.stdout.fileno(), 65536)
            if not data:
                return None
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r")

    def reply(self, timeout=30):
        lines = []
        while True:
            line = self._line(timeout)
            if line is None:
                raise smtplib.SMTPServerDisconnected("no reply")
            lines.append(line[4:])
            if line[3:4] != b"-":
                return int(line[:3]), b"\n".join(lines)

    def docmd(self, cmd, args=""):
        self.p.stdin.write(((cmd + " " + args) if args else cmd).encode() + b"\r\n")
        self.p.stdin.flush()
        code, text = self.reply()
        if cmd.upper() == "EHLO":
            self.ehlo_text = text.decode()
        return code, text

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def starttls_session(port=587, max_tls=None):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if max_tls:
        ctx.maximum_version = max_tls
    c = smtplib.SMTP("127.0.0.1", A.port(port), timeout=30)
    c.ehlo("client.example.org")
    c.starttls(context=ctx)
    c.ehlo("client.example.org")
    return c


# ------------------------------------------------------------------ 3. SCRAM-SHA-256-PLUS
def saslname(s):
    return s.replace("=", "=3D").replace(",", "=2C")


class Scram:
    """The client side of SCRAM-SHA-256(-PLUS), RFC 5802 with RFC 7677's hash."""

    def __init__(self, user, password, cb_type=None, cb_data=b""):
        self.password = password
        self.gs2 = ("p=%s,," % cb_type) if cb_type else "n,,"
        self.cb_data = cb_data
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.bare = "n=%s,r=%s" % (saslname(user), self.nonce)
        self.server_sig = None

    def first(self):
        return (self.gs2 + self.bare).encode()

    def final(self, server_first):
        """The client-final message, or None if server_first is not one."""
        try:
            sf = server_first.decode()
            attrs = dict(a.split("=", 1) for a in sf.split(","))
            nonce, salt, it = attrs["r"], base64.b64decode(attrs["s"]), int(attrs["i"])
        except (UnicodeDecodeError, ValueError, KeyError):
            return None
        if not nonce.startswith(self.nonce) or len(nonce) == len(self.nonce) or it < 1:
            return None
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt, it)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        cbind = base64.b64encode(self.gs2.encode() + self.cb_data).decode()
        without_proof = "c=%s,r=%s" % (cbind, nonce)
        auth_msg = ",".join([self.bare, sf, without_proof]).encode()
        sig = hmac.new(stored_key, auth_msg, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        self.server_sig = hmac.new(server_key, auth_msg, hashlib.sha256).digest()
        return (without_proof + ",p=" + base64.b64encode(proof).decode()).encode()

    def verified(self, server_final):
        return self.server_sig is not None and \
            server_final == b"v=" + base64.b64encode(self.server_sig)


def scram_smtp(c, sc, mech="SCRAM-SHA-256-PLUS"):
    """Run sc over the SMTP session c.  Returns (stage, code, verified):
    stage "final" once the client's proof went out; "first" if the
    server-first message was not one (the client cancels)."""
    code, text = c.docmd("AUTH", "%s %s" % (mech, base64.b64encode(sc.first()).decode()))
    if code != 334:
        return ("start", code, False)
    try:
        server_first = base64.b64decode(text, validate=True)
    except ValueError:
        server_first = b""
    final = sc.final(server_first)
    if final is None:
        diag("  server-first message: %r" % server_first[:48])
        code, _ = c.docmd("*")
        return ("first", code, False)
    code, text = c.docmd(base64.b64encode(final).decode())
    verified = False
    if code == 334:                         # the server's "v=" as a last challenge
        verified = sc.verified(base64.b64decode(text))
        code, text = c.docmd("")
    return ("final", code, verified)


# The client above against authd itself (lib/auth_proto), with channel
# binding data handed over as submission would: if this works, a failure
# through submission is not the client's.
AUTH_START, AUTH_STEP, AUTH_CONTINUE, AUTH_DONE = 0x800, 0x801, 0x803, 0x804


def scram_authd(cb_given, cb_used):
    c = ipcframe.connect(os.path.join(A.spool, "private", "authd"), "auth", 2, timeout=30)
    try:
        sc = Scram(alice, PASSWORD, "tls-exporter", cb_used)
        c.send(AUTH_START, 1, ["submission", "SCRAM-SHA-256-PLUS", "127.0.0.1", 3,
                               "tls-exporter", cb_given, 1, sc.first()])
        f = c.recv(timeout=30)
        if f is None or f.type != AUTH_CONTINUE:
            return None
        first = f.fields[0] if isinstance(f.fields[0], bytes) else f.fields[0].encode()
        c.send(AUTH_STEP, 1, [sc.final(first)])
        f = c.recv(timeout=30)
        if f is None or f.type != AUTH_DONE:
            return None
        final = f.fields[2] if isinstance(f.fields[2], bytes) else f.fields[2].encode()
        return f.fields[0], sc.verified(final)
    finally:
        c.close()


A.set_main({"auth_channel_binding": "yes"})
r = A.mailctl("reload")
is_(r.returncode, 0, "auth_channel_binding = yes: A reloads") or diag(r.stderr)
time.sleep(1)
cb = os.urandom(32)
is_(scram_authd(cb, cb), (0, True), "this SCRAM-SHA-256-PLUS client, straight to authd: OK, "
    "and the server's signature verifies")
is_(scram_authd(cb, bytes([cb[0] ^ 1]) + cb[1:]), (1, False),
    "  with other channel binding data: refused")

# TLS 1.2, tls-unique (RFC 5929), from Python's ssl.
c = starttls_session(max_tls=ssl.TLSVersion.TLSv1_2)
is_(c.sock.version(), "TLSv1.2", "587 with TLS 1.2")
ok("SCRAM-SHA-256-PLUS" in c.esmtp_features.get("auth", "").split(), "  offers SCRAM-SHA-256-PLUS")
unique = c.sock.get_channel_binding("tls-unique")
stage, code, verified = scram_smtp(c, Scram(alice, PASSWORD, "tls-unique", unique))
ok(stage == "final" and code == 235 and verified,
     "  tls-unique: the right password is 235 and the server's signature verifies") \
    or diag("  stage %s, code %s, verified %s" % (stage, code, verified))
c.close()
c = starttls_session(max_tls=ssl.TLSVersion.TLSv1_2)
stage, code, _ = scram_smtp(c, Scram(alice, "not " + PASSWORD, "tls-unique",
                                     c.sock.get_channel_binding("tls-unique")))
ok((stage, code) == ("final", 535), "  a wrong password: 535 after the proof") \
    or diag("  stage %s, code %s" % (stage, code))
other = starttls_session(max_tls=ssl.TLSVersion.TLSv1_2)
stolen = other.sock.get_channel_binding("tls-unique")
stage, code, _ = scram_smtp(c, Scram(alice, PASSWORD, "tls-unique", stolen))
ok((stage, code) == ("final", 535) and "channel binding (c=) does not match" in A.log(),
     "  another connection's tls-unique: 535, authd says the channel binding does not match") or diag("  stage %s, code %s" % (stage, code))
other.close()
c.close()

# TLS 1.3, tls-exporter (RFC 9266), from t/service/tlspipe.
def pipe(port):
    try:
        return PipeSMTP(A.port(port), port == 587, "1.3")
    except (RuntimeError, OSError, smtplib.SMTPException) as e:
        ok(False, "tlspipe connects to %d with TLS 1.3" % port)
        diag(str(e))
        return None


for port in (587, 465):
    p = pipe(port)
    if p is None:
        continue
    is_((p.info.get("tls", "").split() or [""])[0], "TLSv1.3", "%d with TLS 1.3 (tlspipe)" % port)
    ok("SCRAM-SHA-256-PLUS" in p.ehlo_text, "  offers SCRAM-SHA-256-PLUS")
    cb_type, cb_data = p.info.get("cb", ("", b""))
    is_((cb_type, len(cb_data)), ("tls-exporter", 32), "  the exporter gives 32 bytes")
    stage, code, verified = scram_smtp(p, Scram(alice, PASSWORD, "tls-exporter", cb_data))
    ok(stage == "final" and code == 235 and verified,
         "  tls-exporter: the right password is 235 and the server's signature verifies") or diag("  stage %s, code %s, verified %s" % (stage, code, verified))
    p.close()
    p = pipe(port)
    if p is None:
        continue
    cb_type, cb_data = p.info.get("cb", ("", b""))
    stage, code, _ = scram_smtp(p, Scram(alice, "not " + PASSWORD, "tls-exporter", cb_data))
    ok((stage, code) == ("final", 535), "  a wrong password: 535 after the proof") \
        or diag("  stage %s, code %s" % (stage, code))
    flipped = bytes([cb_data[0] ^ 0x80]) + cb_data[1:] if cb_data else b"x"
    before = A.log().count("channel binding (c=) does not match")
    stage, code, _ = scram_smtp(p, Scram(alice, PASSWORD, "tls-exporter", flipped))
    ok((stage, code) == ("final", 535)
         and A.log().count("channel binding (c=) does not match") > before,
         "  one byte of the exporter flipped: 535, the channel binding does not match") \
        or diag("  stage %s, code %s" % (stage, code))
    p.close()
# What shows the bug without any SCRAM: LOGIN's first challenge must be
# base64("Username:").
c = starttls_session()
code, text = c.docmd("AUTH", "LOGIN")
if not ok((code, text) == (334, b"VXNlcm5hbWU6"), "AUTH LOGIN asks \"Username:\" (334 VXNlcm5hbWU6)"):
    diag("  got %d %r: %r, heap bytes of submission after free" % (code, text,
                                                                   base64.b64decode(text + b"==")))
c.docmd("*")
c.close()

# ------------------------------------------------------------------ 4. broken SASL exchanges
c = starttls_session()


def exchange(cmd, *lines):
    """AUTH cmd, then each line once the server asks (334); the last reply."""
    code, text = c.docmd("AUTH", cmd) if cmd else c.docmd("AUTH")
    for line in lines:
        if code != 334:
            break
        code, text = c.docmd(line)
    return code, text.decode(errors="replace")


def noop(name):
    is_(c.docmd("NOOP")[0], 250, "  the session goes on: NOOP is 250 (%s)" % name)


code, text = exchange("PLAIN !!not*base64!!")
is_((code, text[:5]), (501, "5.5.2"), "a non-base64 initial response: 501 5.5.2")
noop("bad initial response")
code, text = exchange("LOGIN", "@@ not base64 @@")
is_((code, text[:5]), (501, "5.5.2"), "a non-base64 continuation: 501 5.5.2")
noop("bad continuation")
LINE_LIMIT = int(CONF.get("line_length_limit", "2048"))
longer = "QUFB" * ((LINE_LIMIT + 1000) // 4)        # valid base64, longer than line_length_limit
ok(len(longer) < 12288, "line_length_limit (%d) is below RFC 4954's 12288 octets" % LINE_LIMIT)
code, text = exchange("LOGIN", longer)
is_(code, 535, "a %d-octet continuation (> line_length_limit, within RFC 4954's 12288): "
    "authd gets it and refuses it (535)" % len(longer))
noop("long continuation")
code, text = exchange("LOGIN", "QUFB" * 5000)
is_((code, text[:5]), (500, "5.5.6"), "a 20000-octet continuation (> authd's frame and RFC 4954's "
    "limit): 500 5.5.6")
noop("over-long continuation")
code, text = exchange("LOGIN", "A" * 300000)
is_((code, text[:5]), (500, "5.5.6"), "a 300000-octet continuation: 500 5.5.6")
noop("huge continuation")
code, text = exchange("PLAIN " + longer)
ok(code == 500, "an AUTH command line longer than line_length_limit (RFC 4954 4: the client "
   "must not send it): 500 (%d %s)" % (code, text))
noop("over-long AUTH line")
code, text = exchange("X-NO-SUCH-MECH")
if not ok(code == 504, "an unknown mechanism: 504 (RFC 4954 4)"):
    diag("  got %d %s" % (code, text))
ok(500 <= code < 600, "  at least a permanent error (%d)" % code)
noop("unknown mechanism")
code, text = exchange("PLAIN " + base64.b64encode(("%s%s" % (alice, PASSWORD)).encode()).decode())
ok(code in (501, 535), "AUTH PLAIN without its NULs: %d %s (535, or 501, is what RFC 4954 "
   "allows)" % (code, text))
noop("PLAIN without NULs")
code, text = exchange("PLAIN", "*")
is_(code, 501, "a cancelled exchange (\"*\"): 501")
noop("cancelled")
code, text = exchange("")
is_(code, 501, "AUTH without a mechanism: 501")
code, text = exchange("PLAIN " + base64.b64encode(("\0%s\0%s" % (alice, PASSWORD)).encode()).decode())
is_(code, 235, "after all that, the right password logs in on the same connection")
is_(c.docmd("MAIL", "FROM:<%s>" % ALICE)[0], 250, "  and MAIL is 250")
c.quit()
# And on 465, the long lines once more: the TLS layer in between.
c = smtplib.SMTP_SSL("127.0.0.1", A.port(465), timeout=30, context=NOVERIFY)
c.ehlo("client.example.org")
code, text = exchange("LOGIN", "QUFB" * 5000)
is_(code, 500, "465: a 20000-octet continuation: 500")
noop("465")
code, text = exchange("PLAIN " + base64.b64encode(("\0%s\0%s" % (alice, PASSWORD)).encode()).decode())
is_(code, 235, "  then the right password: 235")
c.quit()

# ------------------------------------------------------------------ 5. authd killed in a burst
old = A.service_pids("authd")
is_(len(old), 1, "one authd before the kill")
results = []                    # (right password?, code, text, started after the kill?)
lock = threading.Lock()
stop = threading.Event()
killed_at = [None]
good = base64.b64encode(("\0%s\0%s" % (alice, PASSWORD)).encode()).decode()
bad = base64.b64encode(("\0%s\0wrong-%s" % (alice, PASSWORD)).encode()).decode()


def burst(n):
    i = 0
    while not stop.is_set():
        right = (i + n) % 2 == 0
        i += 1
        t0 = time.time()
        try:
            if n % 2:
                s = smtplib.SMTP_SSL("127.0.0.1", A.port(465), timeout=20, context=NOVERIFY)
                s.ehlo("burst.example.org")
            else:
                s = starttls_session()
            code, text = s.docmd("AUTH", "PLAIN " + (good if right else bad))
            s.docmd("QUIT")
            s.close()
            got = (code, text.decode(errors="replace"))
        except (OSError, smtplib.SMTPException) as e:
            got = ("error", repr(e))
        with lock:
            results.append((right, got[0], got[1], killed_at[0] is not None and t0 > killed_at[0]))


threads = [threading.Thread(target=burst, args=(n,), daemon=True) for n in range(6)]
for t in threads:
    t.start()
# One exchange held open across the kill: LOGIN's first challenge is out,
# authd has the conversation.
held = starttls_session()
held_code = held.docmd("AUTH", "LOGIN")[0]
is_(held_code, 334, "an exchange is open (AUTH LOGIN: 334)")
ok(A.wait_for(lambda: len(results) >= 12, 30), "logins in flight (%d done)" % len(results))
if old:
    os.kill(old[0], signal.SIGKILL)
    killed_at[0] = time.time()
    A.wait_for(lambda: not posthorn.alive(old[0]), 10)
code, text = held.docmd(base64.b64encode(alice.encode()).decode())
is_((code, text.decode(errors="replace")[:5]), (454, "4.7.0"),
    "the open exchange, answered after authd died: 454 4.7.0")


def relogin_after_kill():
    with lock:
        return [r for r in results if r[3] and r[0] and r[1] == 235]


ok(A.wait_for(relogin_after_kill, 30), "the burst's logins succeed again (a new authd)")
A.wait_for(lambda: sum(1 for r in results if r[3]) >= 12, 20)
stop.set()
for t in threads:
    t.join(30)
ok(not any(t.is_alive() for t in threads), "every client of the burst came back (no hang)")
with lock:
    res = list(results)
errors = [r for r in res if r[1] == "error"]
ok(not errors, "no client lost its connection or waited in vain (%d logins)" % len(res)) \
    or diag(errors[:5])
ok(not [r for r in res if not r[0] and r[1] == 235], "a wrong password was never 235")
odd = [r for r in res if r[1] not in (235, 535, 454) or (r[1] == 454 and not r[2].startswith("4.7.0"))
       or (r[0] and r[1] == 535) or (not r[0] and r[1] == 235)]
ok(not odd, "every answer is 235 (right), 535 (wrong) or 454 4.7.0") or diag(odd[:5])
diag("burst: %d logins, %d after the kill, %d answered 454" % (
    len(res), sum(1 for r in res if r[3]), sum(1 for r in res if r[1] == 454)))
new = A.service_pids("authd")
ok(new and new != old and all(posthorn.alive(p) for p in new), "master started a new authd "
   "(%s, was %s)" % (new, old))
if old:
    like(A.log(), "service authd: process %d (authd) killed by signal 9" % old[0],
         "  and logged the old one's end")
code, text = held.docmd("AUTH", "PLAIN " + good)
is_(code, 235, "the connection that got 454 logs in now")
held.quit()
code = None
for _ in range(3):
    s = starttls_session()
    code = s.docmd("AUTH", "PLAIN " + good)[0]
    s.quit()
is_(code, 235, "and a new one")

# ------------------------------------------------------------------ 6. to B through A's outbound path
DAVE = "%s@mx.b.test" % dave
c = starttls_session()
c.login(alice, PASSWORD)
subject = "a to b via port 25"
c.sendmail(ALICE, [DAVE], "From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\nhi Dave\r\n" %
           (ALICE, DAVE, subject))
c.quit()
got = arrived(B, dave_home, subject, timeout=40)
ok(got, "mail for mx.b.test sent on A's submission reaches Dave on B") or diag(A.log()[-3000:])
text = got[0].decode("latin-1") if got else ""
ok(re.search(r"Received: from client\.example\.org \(unknown \[127\.0\.0\.1\]\)\s+"
             r"\(using TLSv[^\n]*\n\s+by mx\.a\.test \(Posthorn\) with ESMTPSA", text),
   "  with A's Received: line, ESMTPSA (RFC 3848)") or diag(text[:1500])
like(text, "by mx.b.test (Posthorn) with ESMTPS", "  and B's, ESMTPS (A's smtp used TLS)")
m = [mm.groupdict() for mm in map(LINE.search, A.log().splitlines())
     if mm and mm.group("rcpt") == DAVE]
is_(m and (m[-1]["status"], m[-1]["relay"]), ("sent", "127.0.0.1[127.0.0.1]:%d" % B.port(25)),
    "  A's log: sent to B's port 25 (transport_maps)")

# ------------------------------------------------------------------ 7. relayhost with SASL: B's 587
CAROL = "%s@mx.b.test" % carol
DAVE2 = "%s@localhost.b.test" % dave       # B's too (mydestination), not in A's transport table
subject = "a to b via the relayhost"
A.send(CAROL, DAVE2, subject, extra="From: %s\r\nTo: %s\r\n" % (CAROL, DAVE2))
got = arrived(B, dave_home, subject, timeout=40)
ok(got, "mail sent on A (smtpd, from mynetworks) goes through the relayhost, B's 587, to Dave") \
    or diag(A.log()[-3000:])
m = [mm.groupdict() for mm in map(LINE.search, A.log().splitlines())
     if mm and mm.group("rcpt") == DAVE2]
is_(m and (m[-1]["status"], m[-1]["relay"]), ("sent", "127.0.0.1[127.0.0.1]:%d" % B.port(587)),
    "  A's log: sent to the relayhost")
like(B.log(), "client=unknown[127.0.0.1], sasl_method=PLAIN, sasl_username=%s" % carol,
     "  B's submission log names the login (sasl_username=)")
text = got[0].decode("latin-1") if got else ""
like(text, "by mx.b.test (Posthorn) with ESMTPSA", "  B's Received: says ESMTPSA")
ok(CAROL_PW not in A.log() and CAROL_PW not in B.log(), "  the relayhost password is in no log")

# ------------------------------------------------------------------ 8. privileges
def account(param):
    return CONF.get(param, "").strip()


AUTH_USER = account("auth_user")
auth_pw = pwd.getpwnam(AUTH_USER)
pids = A.service_pids("authd")
is_(len(pids), 1, "one authd")
if pids:
    st = posthorn.proc_status(pids[0])
    is_(st["Uid"], [str(auth_pw.pw_uid)] * 4, "authd runs as auth_user %s (real, effective, saved, "
        "fs uid)" % AUTH_USER)
    is_(st["Gid"], [str(auth_pw.pw_gid)] * 4, "  and its group")
    ok("0" not in st.get("Groups", []), "  without root's group (Groups: %s)" %
       " ".join(st.get("Groups", [])))
    is_(posthorn.proc_root(pids[0]), "/", "  not chrooted (it re-opens the password file)")
PASSDB = os.path.join(A.etc, "passwords.db")
sb = os.stat(PASSDB)
is_((sb.st_uid, sb.st_gid, oct(sb.st_mode & 0o7777)), (0, auth_pw.pw_gid, "0o640"),
    "passwords.db is root's, group auth_user, mode 0640")


def open_as(uid, gid, groups, path=PASSDB):
    """Open path read-only in a child with exactly these ids: "ok" or the errno name."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        res = "child failed"
        try:
            os.close(rfd)
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
            try:
                os.close(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK))
                res = "ok"
            except OSError as e:
                res = errno.errorcode.get(e.errno, str(e.errno))
        finally:
            os.write(wfd, res.encode())
            os._exit(0)
    os.close(wfd)
    out = b""
    while True:
        d = os.read(rfd, 100)
        if not d:
            break
        out += d
    os.close(rfd)
    os.waitpid(pid, 0)
    return out.decode()


def groups_of(name, gid):
    return sorted({gid} | {g.gr_gid for g in grp.getgrall() if name in g.gr_mem})


is_(open_as(auth_pw.pw_uid, auth_pw.pw_gid, groups_of(AUTH_USER, auth_pw.pw_gid)), "ok",
    "auth_user %s can open it (so the path is open to all)" % AUTH_USER)
drop = account("setgid_group")
for param in ("network_user", "mail_owner", "login_user", "default_privs"):
    name = account(param)
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        ok(False, "%s %s exists" % (param, name))
        continue
    gs = groups_of(name, pw.pw_gid)
    is_(open_as(pw.pw_uid, pw.pw_gid, gs), "EACCES", "%s %s (groups %s) cannot: EACCES" %
        (param, name, gs))
nobody = pwd.getpwnam(account("default_privs"))
is_(open_as(nobody.pw_uid, nobody.pw_gid, [nobody.pw_gid, grp.getgrnam(drop).gr_gid]), "EACCES",
    "  nor with setgid_group %s as well (sendmail's)" % drop)
alice_pw = pwd.getpwnam(alice)
is_(open_as(alice_pw.pw_uid, alice_pw.pw_gid, [alice_pw.pw_gid]), "EACCES",
    "  nor a mail user (%s)" % alice)
# Every running process of A that is neither root's nor authd's: its exact
# credentials from /proc.
seen = {}
for p, prog in sorted(A.procs().items()):
    try:
        st = posthorn.proc_status(p)
    except OSError:
        continue
    uid, gid = int(st["Uid"][1]), int(st["Gid"][1])
    if uid == 0 or uid == auth_pw.pw_uid:
        continue
    seen.setdefault((uid, gid, tuple(sorted(int(g) for g in st.get("Groups", [])))), set()).add(prog)
ok(len(seen) >= 2, "A's processes run under %d other sets of ids" % len(seen))
for (uid, gid, gs), progs in sorted(seen.items()):
    is_(open_as(uid, gid, list(gs) or [gid]), "EACCES", "  %s (uid %d gid %d groups %s): EACCES" %
        (",".join(sorted(progs)), uid, gid, list(gs)))

# ------------------------------------------------------------------ the end
for inst in (A, B):
    bad = [l for l in inst.log().splitlines()
           if re.search(r"panic|fatal|killed by signal|\) exit status [1-9]", l)
           and not (inst is A and old and ("process %d (authd) killed by signal 9" % old[0]) in l)]
    ok(not bad, "%s: no panic, fatal error or crash (other than the authd killed here)"
       % inst.hostname) or diag(bad[:10])
ok(PASSWORD not in A.log(), "the password is never logged")
A.stop()
B.stop()
A.cleanup()
B.cleanup()
done()
