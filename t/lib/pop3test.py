"""pop3test - what the POP3 tests share: a raw line client (bytes in, bytes
out, so a test sees exactly what pop3d sends), the wire form of a message
(RFC 1939: CRLF line ends, dot-stuffed), and putting files straight into a
user's Maildir."""
import os
import pwd
import socket
import ssl
import time


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def crlf(data):
    """A message as pop3d sends it before dot-stuffing: every LF that no CR
    precedes becomes CRLF, an unterminated last line is ended."""
    out = bytearray()
    prev = b""
    for i in range(len(data)):
        c = data[i:i + 1]
        if c == b"\n" and prev != b"\r":
            out += b"\r"
        out += c
        prev = c
    if out and not out.endswith(b"\n"):
        out += b"\r\n"
    return bytes(out)


def wire(data):
    """The multi-line RETR body: crlf() with each line that starts with "."
    given one more, then the terminating ".\\r\\n"."""
    lines = crlf(data).split(b"\r\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines) + b".\r\n"


class Client:
    """One POP3 connection: send lines, read replies and multi-line bodies
    as raw bytes."""

    def __init__(self, port, host="127.0.0.1", tls=False, source=None, timeout=15):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        if tls:
            self.sock = tls_context().wrap_socket(self.sock)
        self.buf = b""
        self.greeting = self.line()

    def starttls(self):
        self.sock = tls_context().wrap_socket(self.sock)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        """One line without its CRLF; b"" at EOF."""
        while b"\r\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionError, ssl.SSLError):
                chunk = b""
            if not chunk:
                out, self.buf = self.buf, b""
                return out
            self.buf += chunk
        out, self.buf = self.buf.split(b"\r\n", 1)
        return out

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.line()

    def body(self):
        """A multi-line body up to and including ".\\r\\n", raw."""
        while b"\r\n.\r\n" not in b"\r\n" + self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed inside a multi-line reply")
            self.buf += chunk
        full = b"\r\n" + self.buf
        end = full.index(b"\r\n.\r\n") + 5
        out, self.buf = full[2:end], full[end:]
        return out

    def multi(self, text):
        """A command with a multi-line answer: (status line, raw body or None)."""
        status = self.cmd(text)
        return status, (self.body() if status.startswith(b"+OK") else None)

    def closed(self, timeout=10):
        """True once the server has closed the connection."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionError, ssl.SSLError):
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def login(port, user, password, **kw):
    c = Client(port, **kw)
    assert c.cmd("USER " + user).startswith(b"+OK")
    r = c.cmd("PASS " + password)
    if not r.startswith(b"+OK"):
        raise RuntimeError("login failed: %r" % r)
    return c


def mail_user(inst, password):
    """A new login account of the instance with a mail password: (name,
    home)."""
    import subprocess
    import posthorn
    name, home = inst.add_user()
    r = subprocess.run([posthorn.MAILCTL, "-c", inst.etc, "user", "add", name,
                        "--password-stdin"], input=password + "\n", capture_output=True,
                       text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("mailctl user add %s: %s" % (name, r.stderr))
    return name, home


def put_messages(user, home, messages, sub="new"):
    """Write messages ({name: bytes}) into ~user/Maildir/sub as the mail
    system would: owned by the user, mode 0600; the Maildir is made if
    needed.  Returns the names."""
    pw = pwd.getpwnam(user)
    md = os.path.join(home, "Maildir")
    for d in ("", "tmp", "new", "cur"):
        p = os.path.join(md, d)
        if not os.path.isdir(p):
            os.mkdir(p, 0o700)
            os.chown(p, pw.pw_uid, pw.pw_gid)
    for name, data in messages.items():
        p = os.path.join(md, sub, name)
        with open(p, "wb") as f:
            f.write(data)
        os.chown(p, pw.pw_uid, pw.pw_gid)
        os.chmod(p, 0o600)
    return list(messages)


def maildir_name(n, data=None, sizes=True):
    """A Maildir base name in local's style, with S= and W= when sizes."""
    base = "%d.M%dP%dQ%d.test.example" % (int(time.time()) - 1000 + n, n, os.getpid(), n)
    if sizes and data is not None:
        base += ",S=%d,W=%d" % (len(data), len(crlf(data)))
    return base
