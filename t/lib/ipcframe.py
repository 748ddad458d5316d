"""ipcframe.py - Posthorn's IPC framing (lib/ipc.h) in Python, for tests.

A frame is a 16-byte header in network byte order
    uint32 type | uint32 payload length | uint32 request id | uint32 flags
and a payload of typed fields: b'i' int64, b's' string (uint32 length +
bytes, no NUL), b'b' bytes (uint32 length + bytes).  At most one fd travels
with a frame (SCM_RIGHTS); flag FLAG_FD (1) says it is there.  The first
frame each way is a hello (type 0): str protocol name, int version.

Interface:
    encode(type, reqid, fields, fd=False) -> bytes   fields: list of int/str/bytes
    Conn(sock)                 .send(type, reqid, fields, fd=None)
                               .recv(timeout=5) -> Frame or None at EOF
                               .hello(proto, version)  client side: send ours,
                                                       check theirs
    connect(path, proto, version) -> Conn (unix socket, hello exchanged)
    connect_as(path, uid, gid, groups) -> Conn connected by a child process
                               running with those ids (for SO_PEERCRED tests)
    Frame: .type .reqid .flags .fields (decoded list) .fd (int or None)
    decode_fields(payload) -> list (raises ValueError if malformed)

Python str fields are UTF-8 encoded; decoded strings come back as bytes
unless they are valid UTF-8 (then str).  Errors: ValueError for malformed
frames, OSError from the socket, EOFError for EOF inside a frame.
"""
import os
import socket
import struct

HELLO = 0
FLAG_FD = 1
HEADER = struct.Struct("!IIII")


def _field(v):
    if isinstance(v, bool):
        raise TypeError("no bool fields")
    if isinstance(v, int):
        return b"i" + struct.pack("!q", v)
    if isinstance(v, str):
        v = v.encode()
        return b"s" + struct.pack("!I", len(v)) + v
    if isinstance(v, (bytes, bytearray)):
        return b"b" + struct.pack("!I", len(v)) + bytes(v)
    raise TypeError("cannot encode %r" % (v,))


def encode_payload(fields):
    return b"".join(_field(f) for f in fields)


def encode(type_, reqid, fields, fd=False, flags=None):
    payload = encode_payload(fields)
    if flags is None:
        flags = FLAG_FD if fd else 0
    return HEADER.pack(type_, len(payload), reqid, flags) + payload


def decode_fields(payload):
    out, pos = [], 0
    while pos < len(payload):
        tag = payload[pos:pos + 1]
        pos += 1
        if tag == b"i":
            if pos + 8 > len(payload):
                raise ValueError("truncated int")
            out.append(struct.unpack("!q", payload[pos:pos + 8])[0])
            pos += 8
        elif tag in (b"s", b"b"):
            if pos + 4 > len(payload):
                raise ValueError("truncated length")
            n = struct.unpack("!I", payload[pos:pos + 4])[0]
            pos += 4
            if pos + n > len(payload):
                raise ValueError("truncated field")
            v = payload[pos:pos + n]
            pos += n
            if tag == b"s":
                try:
                    v = v.decode()
                except UnicodeDecodeError:
                    pass
            out.append(v)
        else:
            raise ValueError("unknown tag %r" % tag)
    return out


class Frame:
    def __init__(self, type_, reqid, flags, payload, fd):
        self.type = type_
        self.reqid = reqid
        self.flags = flags
        self.payload = payload
        self.fd = fd
        self.fields = decode_fields(payload)

    def __repr__(self):
        return "Frame(type=%#x, reqid=%d, flags=%d, fields=%r, fd=%r)" % (
            self.type, self.reqid, self.flags, self.fields, self.fd)


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.fds = []

    def send_raw(self, data, fd=None):
        if fd is None:
            self.sock.sendall(data)
        else:
            n = socket.send_fds(self.sock, [data], [fd])
            if n < len(data):
                self.sock.sendall(data[n:])

    def send(self, type_, reqid, fields, fd=None):
        self.send_raw(encode(type_, reqid, fields, fd is not None), fd)

    def _fill(self, n, timeout):
        self.sock.settimeout(timeout)
        while len(self.buf) < n:
            data, fds, _, _ = socket.recv_fds(self.sock, 65536, 4)
            self.fds.extend(fds)
            if not data:
                return False
            self.buf += data
        return True

    def recv(self, timeout=5.0):
        """The next frame, or None at a clean EOF."""
        if not self._fill(HEADER.size, timeout):
            if self.buf:
                raise EOFError("EOF inside a frame header")
            return None
        type_, length, reqid, flags = HEADER.unpack(self.buf[:HEADER.size])
        if not self._fill(HEADER.size + length, timeout):
            raise EOFError("EOF inside a frame")
        payload = self.buf[HEADER.size:HEADER.size + length]
        self.buf = self.buf[HEADER.size + length:]
        fd = None
        if flags & FLAG_FD:
            if not self.fds:
                raise ValueError("FD flag without an fd")
            fd = self.fds.pop(0)
        return Frame(type_, reqid, flags, payload, fd)

    def hello(self, proto, version, timeout=5.0):
        self.send(HELLO, 0, [proto, version])
        f = self.recv(timeout)
        if f is None:
            raise EOFError("connection closed before the server's hello")
        if f.type != HELLO or f.fields != [proto, version]:
            raise ValueError("unexpected hello %r" % (f,))
        return f

    def close(self):
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []
        self.sock.close()


def connect(path, proto=None, version=None, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    c = Conn(s)
    if proto is not None:
        c.hello(proto, version, timeout)
    return c


def connect_as(path, uid, gid, groups, timeout=5.0):
    """A Conn to path made by a forked child running as uid/gid/groups
    (SO_PEERCRED is fixed at connect time); the socket is passed back."""
    a, b = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        try:
            a.close()
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            socket.send_fds(b, [b"k"], [s.fileno()])
            os._exit(0)
        except BaseException as e:  # noqa: B036
            try:
                b.send(b"E" + str(e).encode())
            finally:
                os._exit(1)
    b.close()
    a.settimeout(10)
    msg, fds, _, _ = socket.recv_fds(a, 1024, 1)
    os.waitpid(pid, 0)
    a.close()
    if not fds:
        raise OSError("connect as %d failed: %s" % (uid, msg[1:].decode(errors="replace")))
    s = socket.socket(fileno=fds[0])
    s.settimeout(timeout)
    c = Conn(s)
    c.creator_pid = pid         # what the server's SO_PEERCRED shows
    return c
