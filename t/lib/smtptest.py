"""smtptest.py - what the smtp client's tests (t/90-*.t) share: free ports
on every loopback address they use, a test CA with server certificates,
and reading delivery outcomes from an instance's log.

    free_port_on(addrs)           a TCP port free on each of addrs
    outcome(inst, qid, rcpt, timeout=30)
        the first "QID: to=<RCPT>, ... status=..." line of inst's log
        after the instance started, as a dict: relay, dsn, status, text
        (None if none came within timeout)
    outcomes(inst, qid, rcpt)     every such line so far, oldest first
    make_ca(dir), make_cert(dir, ca, name, alt_names)   openssl req/x509:
        PEM paths (ca.pem; NAME.pem with the key inside)
    bounce_for(inst, home, needle, timeout=30)
        the message in home's Maildir/new that is a non-delivery report
        holding needle (bytes), or None
    problems(inst)                the log lines that say a process of inst
        panicked, died of a signal or exited in error (a sanitizer's
        report ends that way too), or hit a fatal error
    prelude(prefix)               what every such test starts with: skip
        without nsd or root, stop the fake servers and remove the work
        directory (made here, returned) at exit
"""
import atexit
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

import nsd
from fakesmtp import stop_all
from tap import skip_all

LINE = re.compile(r"(?P<qid>\S+): to=<(?P<rcpt>[^>]*)>,(?: orig_to=<[^>]*>,)? relay=(?P<relay>\S+), "
                  r"delay=\S+, (?:delays=\S+, )?dsn=(?P<dsn>[0-9.]+), status=(?P<status>\w+) "
                  r"\((?P<text>.*)\)$")


def free_port_on(addrs):
    for _ in range(200):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        good = True
        for a in addrs:
            t = socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET)
            try:
                t.bind((a, port))
            except OSError:
                good = False
            finally:
                t.close()
        if good:
            return port
    raise RuntimeError("no port free on all of %s" % addrs)


def outcomes(inst, qid, rcpt):
    out = []
    for line in inst.log().splitlines():
        m = LINE.search(line)
        if m and m.group("qid") == qid and m.group("rcpt") == rcpt:
            out.append(m.groupdict())
    return out


def outcome(inst, qid, rcpt, timeout=30, n=1):
    """The n-th outcome for qid/rcpt."""
    got = inst.wait_for(lambda: len(outcomes(inst, qid, rcpt)) >= n, timeout=timeout)
    return outcomes(inst, qid, rcpt)[n - 1] if got else None


def _run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), r.stderr))
    return r


def make_ca(d):
    key, pem = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
          "-out", pem, "-days", "2", "-subj", "/CN=Posthorn Test CA"])
    return {"key": key, "pem": pem}


def make_cert(d, ca, name, alt_names=None):
    key, csr, crt = (os.path.join(d, name + x) for x in (".key", ".csr", ".crt"))
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\n" % ",".join("DNS:" + n for n in (alt_names or [name])))
    _run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
          "-subj", "/CN=%s" % name])
    _run(["openssl", "x509", "-req", "-in", csr, "-CA", ca["pem"], "-CAkey", ca["key"],
          "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext])
    pem = os.path.join(d, name + ".pem")
    with open(pem, "w") as f:
        f.write(open(crt).read() + open(key).read())
    return pem


def bounce_for(inst, home, needle, timeout=30):
    def look():
        for data in inst.maildir(home).values():
            if b"Undelivered Mail Returned to Sender" in data and needle in data:
                return data
        return None
    return inst.wait_for(look, timeout=timeout)


_PROBLEM = re.compile(r"panic|fatal|killed by signal|\) exit status [1-9]")


def problems(inst):
    return [l for l in inst.log().splitlines() if _PROBLEM.search(l)]


def prelude(prefix):
    if nsd.missing():
        skip_all("needs %s (Debian: nsd)" % ", ".join(nsd.missing()))
    if os.geteuid() != 0:
        skip_all("master must run as root")
    atexit.register(stop_all)
    work = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, work, True)
    return work
