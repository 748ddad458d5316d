#!/usr/bin/env python3
"""fakesmtp.py - a scripted SMTP server for the smtp client's tests, run as
a process of its own (so a test can kill it by PID), and the class that
starts and reads it.

As a program:
    fakesmtp.py HOST PORT SCRIPT.json LOG.jsonl

listens on HOST:PORT (only 127.0.0.0/8 or ::1) and answers as SCRIPT says;
every connection and every message received is appended to LOG as one JSON
line, flushed at once, so the test reads what happened while it runs.

SCRIPT keys (all optional; "conns" is a list of dicts whose keys replace
the others' for the first, second, ... connection):
    greeting   "220 fake.test ESMTP"      or a special word (below)
    ehlo       list of extension lines after the first, e.g.
               ["PIPELINING", "8BITMIME", "SIZE 1000"]; null: EHLO -> 502
    ehlo_reply a whole reply instead
    helo       reply to HELO
    mail       reply to MAIL
    rcpt       {"address": reply, ...}; "*" is the default
    data       reply to DATA                    (default 354)
    dot        reply to the end of the data     (default 250 with an ID)
    bdat       reply to each BDAT chunk that is not the last
    rset       reply to RSET
    starttls   reply to STARTTLS (220 starts TLS: cert and key needed)
    cert, key  PEM files for STARTTLS
    auth       {"user": u, "pass": p}: AUTH PLAIN/LOGIN checked against it
    close_in_body  close the connection after this many bytes of data
    stall_in_body  after the 354, read nothing more (the client's writes stall)
    dot_delay      seconds to wait, with the message logged, before the
                   reply to the end of the data (a slow server)
    tls_garbage    after the 220 to STARTTLS, send junk instead of a handshake
A reply may be a special word instead of text:
    "stall"    say nothing; wait for the client to go away
    "close"    close the connection
    "garbage"  a line that is no reply
    "long"     a reply line of 100000 bytes
    "broken"   a multi-line reply whose lines have different codes
    "endless"  250- continuation lines forever (until the client leaves)
Log lines: {"ev": "connect", "conn": N, "peer": [host, port]},
{"ev": "cmd", "conn": N, "line": "..."}, {"ev": "tls", "conn": N,
"resumed": bool, "version": ...}, {"ev": "message", "conn": N, "from": ...,
"rcpts": [...], "mail_line": ..., "rcpt_lines": [...], "data": base64,
"bdat": bool}, {"ev": "close", "conn": N}.
"""
import base64
import json
import os
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


# ----------------------------------------------------------------- server

class Session:
    def __init__(self, server, sock, conn_no, peer):
        self.server = server
        self.sock = sock
        self.n = conn_no
        self.peer = peer
        s = dict(server.script)
        conns = s.pop("conns", [])
        if conn_no < len(conns):
            s.update(conns[conn_no])
        self.s = s
        self.buf = b""
        self.tls = False
        self.reset()

    def reset(self):
        self.mail = None
        self.mail_line = None
        self.rcpts = []
        self.rcpt_lines = []
        self.bdat = b""

    def log(self, **kw):
        kw["conn"] = self.n
        self.server.log(kw)

    def send(self, data):
        self.sock.sendall(data)

    def reply(self, text):
        """text: a reply (lines joined by \\n get their - and CRLF) or a
        special word.  False when the session must end."""
        if text == "stall":
            try:
                self.sock.settimeout(120)
                while self.sock.recv(4096):
                    pass
            except OSError:
                pass
            return False
        if text == "close":
            return False
        if text == "garbage":
            self.send(b"this is no SMTP reply\r\n")
            return True
        if text == "long":
            self.send(b"250 " + b"x" * 100000 + b"\r\n")
            return True
        if text == "broken":
            self.send(b"250-first line\r\n550 second line of another code\r\n")
            return True
        if text == "endless":
            try:
                while True:
                    self.send(b"250-and more\r\n")
            except OSError:
                pass
            return False
        lines = text.split("\n")
        code = lines[0][:3]
        out = b""
        for i, l in enumerate(lines):
            if i > 0 and not l[:3].isdigit():
                l = code + " " + l
            sep = "-" if i + 1 < len(lines) else " "
            out += (l[:3] + sep + l[4:]).encode() + b"\r\n"
        self.send(out)
        return True

    def readline(self):
        while b"\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                return None
            self.buf += d
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def readn(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(65536)
            if not d:
                return None
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def ehlo_reply(self, name):
        if "ehlo_reply" in self.s:
            return self.s["ehlo_reply"]
        ext = self.s.get("ehlo", ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"])
        if ext is None:
            return "502 5.5.2 EHLO not here"
        if self.tls:
            ext = [e for e in ext if e.upper() != "STARTTLS"]
        return "\n".join(["250 fake.test hello " + name] + ["250 " + e for e in ext])

    def message_done(self, data, bdat):
        with self.server.lock:
            self.server.count += 1
        self.log(ev="message", **{"from": self.mail}, rcpts=self.rcpts,
                 mail_line=self.mail_line, rcpt_lines=self.rcpt_lines,
                 data=base64.b64encode(data).decode(), bdat=bdat)
        if self.s.get("dot_delay"):
            time.sleep(self.s["dot_delay"])
        r = self.s.get("dot", "250 2.0.0 Ok: queued as FAKE%d" % self.server.count)
        self.reset()
        return r

    def read_data(self):
        """DATA content up to CRLF.CRLF, unstuffed; None if the peer left."""
        out = []
        total = 0
        limit = self.s.get("close_in_body")
        while True:
            line = self.readline()
            if line is None:
                return None
            total += len(line)
            if limit is not None and total >= limit:
                return None
            if line == b".\r\n":
                return b"".join(out)
            if line.startswith(b"."):
                line = line[1:]
            out.append(line)

    def auth(self, args):
        want = self.s.get("auth")
        parts = args.split()
        mech = parts[0].upper() if parts else ""
        if mech == "PLAIN":
            if len(parts) > 1:
                resp = parts[1]
            else:
                self.reply("334 ")
                resp = (self.readline() or b"").strip().decode()
            try:
                _, user, pw = base64.b64decode(resp).split(b"\0")
            except Exception:
                return "501 5.5.2 bad PLAIN"
        elif mech == "LOGIN":
            self.reply("334 VXNlcm5hbWU6")
            user = base64.b64decode((self.readline() or b"").strip())
            self.reply("334 UGFzc3dvcmQ6")
            pw = base64.b64decode((self.readline() or b"").strip())
        else:
            return "504 5.5.4 mechanism not here"
        self.log(ev="auth", mech=mech, user=user.decode(), ok=(want is not None and user.decode() == want["user"] and pw.decode() == want["pass"]))
        if want and user.decode() == want["user"] and pw.decode() == want["pass"]:
            return "235 2.7.0 Authentication successful"
        return "535 5.7.8 Error: authentication failed"

    def run(self):
        self.log(ev="connect", peer=list(self.peer))
        if not self.reply(self.s.get("greeting", "220 fake.test ESMTP fakesmtp")):
            return
        while True:
            line = self.readline()
            if line is None:
                return
            text = line.rstrip(b"\r\n").decode("utf-8", "replace")
            self.log(ev="cmd", line=text)
            verb, _, args = text.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                r = self.ehlo_reply(args)
            elif verb == "HELO":
                r = self.s.get("helo", "250 fake.test")
            elif verb == "STARTTLS":
                r = self.s.get("starttls", "220 2.0.0 Ready to start TLS")
                if not r.startswith("220"):
                    if not self.reply(r):
                        return
                    continue
                self.reply(r)
                if self.s.get("tls_garbage"):
                    self.send(b"\x15\x03\x03\x00\x02\x02\x28this is no TLS\r\n")
                    self.log(ev="tls_garbage")
                    return
                ctx = self.server.tls_context(self.s)
                try:
                    self.sock = ctx.wrap_socket(self.sock, server_side=True)
                except (ssl.SSLError, OSError) as e:
                    self.log(ev="tls_failed", why=str(e))
                    return
                self.tls = True
                self.buf = b""
                self.log(ev="tls", resumed=self.sock.session_reused,
                         version=self.sock.version())
                continue
            elif verb == "AUTH":
                r = self.auth(args)
            elif verb == "MAIL":
                self.mail = args.split(":", 1)[1].split(">")[0].lstrip(" <") if ":" in args else ""
                self.mail_line = text
                r = self.s.get("mail", "250 2.1.0 Ok")
                if not r.startswith("2"):
                    self.mail = None
            elif verb == "RCPT":
                addr = args.split(":", 1)[1].split(">")[0].lstrip(" <") if ":" in args else ""
                rm = self.s.get("rcpt", {})
                r = rm.get(addr, rm.get("*", "250 2.1.5 Ok"))
                if r.startswith("2") and self.mail is not None:
                    self.rcpts.append(addr)
                    self.rcpt_lines.append(text)
            elif verb == "DATA":
                if self.mail is None or not self.rcpts:
                    r = "503 5.5.1 Error: need RCPT command"
                else:
                    r = self.s.get("data", "354 End data with <CR><LF>.<CR><LF>")
                    if r.startswith("354"):
                        self.reply(r)
                        if self.s.get("stall_in_body"):
                            self.log(ev="stalled_in_body")
                            time.sleep(120)
                            return
                        data = self.read_data()
                        if data is None:
                            self.log(ev="lost_in_body")
                            return
                        r = self.message_done(data, False)
            elif verb == "BDAT":
                p = args.split()
                n = int(p[0])
                last = len(p) > 1 and p[1].upper() == "LAST"
                chunk = self.readn(n)
                if chunk is None:
                    return
                limit = self.s.get("close_in_body")
                if limit is not None and len(self.bdat) + n >= limit:
                    self.log(ev="lost_in_body")
                    return
                self.bdat += chunk
                if self.mail is None or not self.rcpts:
                    r = "503 5.5.1 Error: need RCPT command"
                    self.bdat = b""
                elif last:
                    r = self.message_done(self.bdat, True)
                else:
                    r = self.s.get("bdat", "250 2.0.0 %d octets received" % n)
            elif verb == "RSET":
                self.reset()
                r = self.s.get("rset", "250 2.0.0 Ok")
            elif verb == "NOOP":
                r = "250 2.0.0 Ok"
            elif verb == "QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                r = "502 5.5.2 Error: command not recognized"
            if not self.reply(r):
                return


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        srv = self.server
        with srv.lock:
            n = srv.nconn
            srv.nconn += 1
        sess = Session(srv, self.request, n, self.client_address)
        try:
            sess.run()
        except (OSError, ssl.SSLError, ValueError, UnicodeError) as e:
            sess.log(ev="error", why=str(e))
        finally:
            sess.log(ev="close")
            try:
                sess.sock.close()
            except OSError:
                pass


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, script, logpath):
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.script = script
        self.logf = open(logpath, "a")
        self.lock = threading.Lock()
        self.nconn = 0
        self.count = 0
        self.ctx = None
        super().__init__(addr, Handler)

    def log(self, rec):
        with self.lock:
            self.logf.write(json.dumps(rec) + "\n")
            self.logf.flush()

    def tls_context(self, s):
        if self.ctx is None:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(s["cert"], s.get("key"))
        return self.ctx


def main():
    host, port, script, logpath = sys.argv[1:5]
    if not (host.startswith("127.") or host == "::1"):
        sys.exit("fakesmtp listens on loopback only")
    with open(script) as f:
        sc = json.load(f)
    srv = Server((host, int(port)), sc, logpath)
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    print("ready", flush=True)
    srv.serve_forever()


# ----------------------------------------------------------------- client

class FakeSMTP:
    """A fakesmtp.py process: FakeSMTP(dir, host, port, script).  events(),
    messages(), connections(); stop() kills it by PID (also at exit)."""
    _all = []

    def __init__(self, workdir, host, port, script):
        self.host, self.port = host, port
        tag = "%s_%d_%d" % (host.replace(":", "_"), port, len(FakeSMTP._all))
        self.script_path = os.path.join(workdir, "fake-%s.json" % tag)
        self.log_path = os.path.join(workdir, "fake-%s.log" % tag)
        with open(self.script_path, "w") as f:
            json.dump(script, f)
        open(self.log_path, "w").close()
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), host, str(port),
                                      self.script_path, self.log_path],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        FakeSMTP._all.append(self)
        line = self.proc.stdout.readline()
        if line.strip() != b"ready":
            self.stop()
            raise RuntimeError("fakesmtp on %s:%d did not start" % (host, port))

    def events(self, ev=None):
        out = []
        with open(self.log_path) as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if ev is None or rec.get("ev") == ev:
                    out.append(rec)
        return out

    def messages(self):
        out = []
        for m in self.events("message"):
            m["data"] = base64.b64decode(m["data"])
            out.append(m)
        return out

    def connections(self):
        return len(self.events("connect"))

    def commands(self, conn=None):
        return [e["line"] for e in self.events("cmd") if conn is None or e["conn"] == conn]

    def wait(self, cond, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            v = cond()
            if v:
                return v
            time.sleep(0.05)
        return cond()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self in FakeSMTP._all:
            FakeSMTP._all.remove(self)


def stop_all():
    for f in list(FakeSMTP._all):
        f.stop()


if __name__ == "__main__":
    main()
