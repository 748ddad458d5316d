"""dkimcheck.py - DKIM signatures checked by independent code: python3-dkim,
run with Debian's /usr/bin/python3 (its module is not in the tests' Python),
against the TXT records `mailctl dns` prints.

Interface:
    PY                     /usr/bin/python3
    available()            is python3-dkim importable there?
    records(dns_output)    {name: TXT text} of every TXT record in the
                           zone-file lines of `mailctl dns` (strings joined)
    verify(data, records)  [[a, d, s, passed], ...]: each DKIM-Signature
                           of data (bytes; bare LF made CRLF) verified with
                           the keys of records; passed is True, False or
                           "error ..."
Errors: verify() returns [] (and the reason on stderr via the caller's
diag) when the verifier itself fails.
"""
import json
import re
import subprocess

PY = "/usr/bin/python3"

_VERIFY = r"""
import json, sys, dkim
recs = json.loads(sys.argv[1])
msg = sys.stdin.buffer.read()
def dnsfunc(name, timeout=5):
    return recs.get(name.decode().rstrip("."), "").encode() or None
d = dkim.DKIM(msg)
sigs = [v for k, v in d.headers if k.lower() == b"dkim-signature"]
res = []
for i, s in enumerate(sigs):
    tags = dict(t.strip().split(b"=", 1) for t in s.split(b";") if b"=" in t)
    try:
        good = dkim.DKIM(msg).verify(idx=i, dnsfunc=dnsfunc)
    except Exception as e:
        good = "error %s" % e
    res.append([tags[b"a"].decode(), tags[b"d"].decode(), tags[b"s"].decode(), good])
print(json.dumps(res))
"""


def available():
    return subprocess.run([PY, "-c", "import dkim"], capture_output=True).returncode == 0


def records(dns_output):
    out = {}
    for m in re.finditer(r"^(\S+)\.\tIN\tTXT\t(\(.*?\)|\"[^\n]*\")$", dns_output, re.M | re.S):
        out[m.group(1)] = "".join(re.findall(r'"([^"]*)"', m.group(2)))
    return out


def verify(data, recs, log=None):
    data = re.sub(rb"(?<!\r)\n", b"\r\n", data)
    r = subprocess.run([PY, "-c", _VERIFY, json.dumps(recs)], input=data,
                       capture_output=True, timeout=60)
    if r.returncode != 0:
        if log:
            log(r.stderr.decode(errors="replace"))
        return []
    return json.loads(r.stdout)
