"""imaptest - what the IMAP tests share: a raw client that sends bytes and
reads whole responses (untagged lines with their literals, then the tagged
one), so a test sees exactly what imapd sends; and a mail account with
messages in its Maildir."""
import re
import socket
import ssl

from pop3test import tls_context, mail_user, put_messages, maildir_name, crlf  # noqa: F401


class Raw:
    """One IMAP connection.  cmd() sends "TAG text" and returns
    (untagged lines, tagged line) as str (literals inlined as bytes
    decoded with surrogateescape)."""

    def __init__(self, port, host="127.0.0.1", tls=False, source=None, timeout=15):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        if tls:
            self.sock = tls_context().wrap_socket(self.sock)
        self.buf = b""
        self.n = 0
        self.greeting = self.line()

    def starttls(self):
        self.sock = tls_context().wrap_socket(self.sock)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionError, ssl.SSLError):
            chunk = b""
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def line(self):
        """One response line with any literals it announces, as str; "" at EOF."""
        out = b""
        try:
            while True:
                while b"\r\n" not in self.buf:
                    self._fill()
                ln, self.buf = self.buf.split(b"\r\n", 1)
                out += ln
                m = re.search(rb"~?\{(\d+)\}$", ln)
                if not m:
                    break
                n = int(m.group(1))
                while len(self.buf) < n:
                    self._fill()
                out += b"\r\n" + self.buf[:n]
                self.buf = self.buf[n:]
        except EOFError:
            pass
        return out.decode("utf-8", "surrogateescape")

    def read_until(self, tag):
        untagged = []
        while True:
            ln = self.line()
            if ln == "":
                return untagged, ""
            if ln.startswith(tag + " "):
                return untagged, ln
            untagged.append(ln)

    def tag(self):
        self.n += 1
        return "a%d" % self.n

    def cmd(self, text):
        t = self.tag()
        self.send("%s %s\r\n" % (t, text))
        return self.read_until(t)

    def closed(self, timeout=10):
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
    c = Raw(port, **kw)
    u, t = c.cmd('LOGIN "%s" "%s"' % (user, password))
    if " OK " not in t:
        raise RuntimeError("login failed: %r" % t)
    return c
