#!/usr/bin/env python3
"""t/68-dkim-sign.t - DKIM signing of outgoing mail by cleanup, with the keys
of "mailctl dkim keygen" and the records of "mailctl dns", checked by
python3-dkim (Debian's /usr/bin/python3), whose DNS lookups are answered
from what "mailctl dns" printed (so its output is tested too).

A real instance relays to a fake remote server (t/lib/fakesmtp.py, through
relayhost) what a remote receiver would see; mynetworks is 127.0.0.2, so
a client on 127.0.0.1 is outside.  Covers:
- keygen: both keys, mode 0600 root, directories 0755; an existing key is
  refused without -f; a bad domain or selector is refused; keygen prints
  the DKIM records; "dkim list" shows the keys with their DNS names;
- "mailctl dns": MX, SPF, both DKIM keys (strings of at most 255 bytes),
  DMARC with rua, and the PTR of myhostname's address (from a real DNS
  server, t/lib/nsd.py);
- signed, both rsa-sha256 and ed25519-sha256, and verified: sendmail
  (pickup), smtpd from mynetworks, submission with AUTH (whose missing
  Date: and Message-ID: cleanup adds: signed too), a bounce from
  MAILER-DAEMON@mail.example.test (signed with the parent's key,
  d=example.test), a From: in a subdomain (d=example.test);
- not signed: mail from outside mynetworks (delivered locally), a From: in
  a domain without keys, a local submission with a bare CR in its body
  (which libopendkim would canonicalize wrongly), with a log line;
- a key with bad permissions is skipped with a log line naming it, the
  others still sign; dkim_sign = no signs nothing;
- reload: a new domain's keys sign after "mailctl reload".
- dkim_ed25519_process_limit: cleanup processes end after so many
  Ed25519 signatures and pickup and an SMTP session go on with new ones.
Skips without root, nsd or python3-dkim."""
import os
import re
import smtplib
import ssl
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, diag, done, skip_all  # noqa: E402
import dkimcheck  # noqa: E402
import nsd  # noqa: E402
from smtptest import prelude, free_port_on  # noqa: E402

PY = "/usr/bin/python3"
if subprocess.run([PY, "-c", "import dkim, nacl"], capture_output=True).returncode != 0:
    skip_all("needs python3-dkim and python3-nacl for /usr/bin/python3")
work = prelude("posthorn-dkim-")
import posthorn  # noqa: E402
from fakesmtp import FakeSMTP  # noqa: E402

PORT = free_port_on(["127.0.0.3"])
remote = FakeSMTP(work, "127.0.0.3", PORT, {"ehlo": ["8BITMIME", "PIPELINING"],
                                            "rcpt": {"bounce@remote.test": "550 5.1.1 no such user",
                                                     "*": "250 ok"}})
ZONE = "$ORIGIN test.\n$TTL 300\n" + nsd.SOA + "ns IN A 127.0.0.1\nmail.example IN A 127.0.0.1\n"
dns = nsd.Nsd([("test.", ZONE)])
PASSWORD = "dkim-t3st-password"

inst = posthorn.Instance(main_conf={
    "relayhost": "[127.0.0.3]:%d" % PORT, "mynetworks": "127.0.0.2/32",
    "dns_stub_zones": "test=127.0.0.1@%d" % dns.port, "dns_query_timeout": "3s",
    "dnssec_trust_anchor_file": "", "smtpd_sasl_auth_enable": "yes"})
KEYDIR = os.path.join(inst.etc, "dkim")

# ------------------------------------------------------------------ keygen
r = inst.mailctl("dkim", "keygen", "example.test", "t68")
is_(r.returncode, 0, "mailctl dkim keygen example.test t68") or diag(r.stderr)
like(r.stdout, "t68-rsa._domainkey.example.test.", "  prints the RSA key's record")
like(r.stdout, "t68-ed25519._domainkey.example.test.", "  and the Ed25519 key's")
like(r.stdout, "mailctl reload", "  and says that a reload makes them active")
for name in ("t68-rsa.key", "t68-ed25519.key"):
    st = os.lstat(os.path.join(KEYDIR, "example.test", name))
    ok(stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0,
       "  %s: root's, mode 0600 (%o)" % (name, stat.S_IMODE(st.st_mode)))
for d in (KEYDIR, os.path.join(KEYDIR, "example.test")):
    st = os.lstat(d)
    ok(stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755 and st.st_uid == 0,
       "  %s: root's, mode 0755" % os.path.relpath(d, inst.dir))
with open(os.path.join(KEYDIR, "example.test", "t68-ed25519.key")) as f:
    before = f.read()
r = inst.mailctl("dkim", "keygen", "example.test", "t68")
ok(r.returncode != 0 and "exists" in r.stderr, "keygen again: refused, the key exists") \
    or diag(r.stderr)
with open(os.path.join(KEYDIR, "example.test", "t68-ed25519.key")) as f:
    is_(f.read(), before, "  and the key is unchanged")
for bad in (["../etc"], ["a/b"], ["example.test", "../x"], ["example.test", "a/b"],
            ["--", "-x.test"], ["x-.test"], ["example.test", ".."]):
    r = inst.mailctl("dkim", "keygen", *bad)
    ok(r.returncode == 2 and "not a" in r.stderr, "keygen %s: refused" % " ".join(bad)) \
        or diag(r.stderr)
r = inst.mailctl("dkim", "keygen", "sub.other.test")       # for the reload, later
r = inst.mailctl("dkim", "keygen", "nokeys.test", "x")      # made bad below
os.chmod(os.path.join(KEYDIR, "nokeys.test", "x-rsa.key"), 0o644)
os.rename(os.path.join(KEYDIR, "sub.other.test"), os.path.join(work, "later"))

r = inst.mailctl("dkim", "list")
like(r.stdout, "example.test\tt68-ed25519\ted25519-sha256\t-\tt68-ed25519._domainkey.example.test",
     "dkim list: the Ed25519 key with its DNS name")
like(r.stdout, "example.test\tt68-rsa\trsa-sha256\t2048\tt68-rsa._domainkey.example.test",
     "  the RSA key")
like(r.stderr, "nokeys.test/x-rsa.key: mode 0644", "  the key with bad permissions is named")
is_(r.returncode, 1, "  exit status 1 for it")

# ------------------------------------------------------------------ mailctl dns
r = inst.mailctl("dns", "example.test")
is_(r.returncode, 0, "mailctl dns example.test") or diag(r.stderr)
out = r.stdout
like(out, "example.test.\tIN\tMX\t10 mail.example.test.", "  MX to myhostname")
like(out, 'example.test.\tIN\tTXT\t"v=spf1 mx ~all"', "  SPF")
like(out, 'mail.example.test.\tIN\tTXT\t"v=spf1 a -all"',
     "  SPF of the host name (HELO, SRS sender)")
like(out, '_dmarc.example.test.\tIN\tTXT\t"v=DMARC1; p=quarantine; '
     'rua=mailto:postmaster@example.test"', "  DMARC with rua")
like(out, "1.0.0.127.in-addr.arpa.\tIN\tPTR\tmail.example.test.",
     "  PTR for myhostname's address (from DNS)")
ok(all(l.startswith(";") for l in out.splitlines() if not l.startswith(("\t", "_", "example",
                                                                            "t68", "1.0.0",
                                                                            "mail.example")))
   and out.count("\n;") >= 5, "  each record after a comment line")
records = {}
for m in re.finditer(r"^(\S+)\.\tIN\tTXT\t(\(.*?\)|\"[^\n]*\")$", out, re.M | re.S):
    strings = re.findall(r'"([^"]*)"', m.group(2))
    ok(all(len(s) <= 255 for s in strings), "  %s: strings of at most 255 bytes" % m.group(1))
    records[m.group(1)] = "".join(strings)
ok(records.get("t68-rsa._domainkey.example.test", "").startswith("v=DKIM1; k=rsa; p="),
   "  the RSA key's TXT record")
ok(records.get("t68-ed25519._domainkey.example.test", "").startswith("v=DKIM1; k=ed25519; p="),
   "  the Ed25519 key's TXT record")
r = inst.mailctl("dns", "nothere.test")
like(r.stdout, "; DKIM: no key signs mail from nothere.test", "dns for a domain without keys says so")
r = inst.mailctl("dns", "a/../b")
is_(r.returncode, 2, "dns refuses what is not a domain")

# ------------------------------------------------------------------ signing
r = inst.start()
ok(r.returncode == 0, "instance starts") or diag(r.stderr)
user, home = inst.add_user()
r = subprocess.run([posthorn.MAILCTL, "-c", inst.etc, "user", "add", user, "--password-stdin"],
                   input=PASSWORD + "\n", capture_output=True, text=True, timeout=60)
is_(r.returncode, 0, "a user with a mail password") or diag(r.stderr)

def verify(data):
    """[[a, d, s, passed], ...] for each DKIM-Signature of data (bytes)."""
    return dkimcheck.verify(data, records, diag)


def both(res, d="example.test"):
    algs = sorted(a for a, dom, s, good in res if good is True and dom == d)
    return algs == ["ed25519-sha256", "rsa-sha256"] and len(res) == 2


def remote_msg(tag, timeout=30):
    m = remote.wait(lambda: [x for x in remote.messages() if tag.encode() in x["data"]],
                    timeout=timeout)
    return m[0]["data"] if m else b""


def local_msg(tag, timeout=30):
    m = inst.wait_for(lambda: [v for v in inst.maildir(home).values() if tag.encode() in v],
                      timeout=timeout)
    return m[0] if m else b""


# sendmail, through pickup
r = subprocess.run([os.path.join(posthorn.BUILD, "sbin", "sendmail"), "-C", inst.etc,
                    "-f", "root@example.test", "far@remote.test"],
                   input=b"From: Root <root@example.test>\nTo: far@remote.test\n"
                         b"Subject: t68 sendmail\n\nfrom sendmail  \n\n\n", capture_output=True,
                   timeout=60)
is_(r.returncode, 0, "sendmail accepts a message") or diag(r.stderr)
data = remote_msg("t68 sendmail")
res = verify(data)
ok(both(res), "sendmail (pickup): rsa-sha256 and ed25519-sha256, d=example.test, verified") \
    or diag(res)
ok(data.startswith(b"DKIM-Signature:"), "  the signatures at the top of the header")
like(inst.log(), "DKIM-Signature added (d=example.test s=t68-ed25519,t68-rsa)",
     "  the log says so")

# a bare CR in the body: delivered, not signed, and the log says why
r = subprocess.run([os.path.join(posthorn.BUILD, "sbin", "sendmail"), "-C", inst.etc,
                    "-f", "root@example.test", "far@remote.test"],
                   input=b"From: Root <root@example.test>\nTo: far@remote.test\n"
                         b"Subject: t68 bare CR\n\na\rb\n", capture_output=True, timeout=60)
data = remote_msg("t68 bare CR")
ok(data and b"DKIM-Signature" not in data and b"a\rb" in data,
   "a bare CR in the body (sendmail): delivered as it was, not signed") or diag(data)
like(inst.log(), r"not DKIM-signed: a bare CR in the body", "  the log says why")
ok(re.search(r"cleanup\[\d+\]: warning: DKIM key skipped: \S+/nokeys.test/x-rsa.key: mode 0644",
             inst.log()), "cleanup logs the key with bad permissions, with its path, and skips it")

# smtpd from mynetworks (127.0.0.2)
s = smtplib.SMTP("127.0.0.1", inst.port(25), timeout=30, source_address=("127.0.0.2", 0))
s.sendmail("a@example.test", ["far@remote.test"],
           b"From: A <a@example.test>\r\nTo: far@remote.test\r\nSubject: t68 mynetworks\r\n"
           b"Date: Fri, 1 Jan 2027 00:00:00 +0000\r\nMessage-ID: <m68@example.test>\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n\r\n\xc3\xa9t\xc3\xa9\r\n")
s.quit()
res = verify(remote_msg("t68 mynetworks"))
ok(both(res), "smtpd from mynetworks (8-bit body): both signatures verify") or diag(res)

# a From: in a subdomain: the parent's keys
s = smtplib.SMTP("127.0.0.1", inst.port(25), timeout=30, source_address=("127.0.0.2", 0))
s.sendmail("a@sub.example.test", ["far@remote.test"],
           b"From: a@Sub.Example.TEST\r\nSubject: t68 subdomain\r\n\r\nx\r\n")
s.quit()
res = verify(remote_msg("t68 subdomain"))
ok(both(res, "example.test"), "From: a subdomain: signed d=example.test, verified") or diag(res)

# a From: domain without keys: not signed
s = smtplib.SMTP("127.0.0.1", inst.port(25), timeout=30, source_address=("127.0.0.2", 0))
s.sendmail("a@elsewhere.test", ["far@remote.test"],
           b"From: a@elsewhere.test\r\nSubject: t68 nokey\r\n\r\nx\r\n")
s.quit()
data = remote_msg("t68 nokey")
ok(data and b"DKIM-Signature" not in data, "From: a domain without keys: not signed")

# submission with AUTH; Date: and Message-ID: are added by cleanup
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
c = smtplib.SMTP("127.0.0.1", inst.port(587), timeout=30)
c.starttls(context=ctx)
c.login(user, PASSWORD)
me = "%s@mail.example.test" % user
c.sendmail(me, ["far@remote.test"], ("From: <%s>\r\nTo: far@remote.test\r\n"
                                     "Subject: t68 submission\r\n"
                                     "  folded  \t\r\n\r\nhi  there\r\n" % me).encode())
c.quit()
data = remote_msg("t68 submission")
res = verify(data)
ok(both(res), "submission with AUTH: both signatures verify (d=example.test, the parent "
   "of mail.example.test)") or diag(res)
ok(re.search(rb"\nDate: ", data) and re.search(rb"\nMessage-ID: ", data),
   "  with the Date: and Message-ID: cleanup added")
hl = re.search(rb";h=([^;]*)", re.sub(rb"\s", b"", data))
hl = hl.group(1).lower().split(b":") if hl else []
ok(hl.count(b"date") == 2 and hl.count(b"message-id") == 2,
   "  which are signed (oversigned)") or diag(hl)

# a bounce (the remote refuses the recipient): from MAILER-DAEMON@mail.example.test
s = smtplib.SMTP("127.0.0.1", inst.port(25), timeout=30, source_address=("127.0.0.2", 0))
s.sendmail(me, ["bounce@remote.test"],
           ("From: <%s>\r\nSubject: t68 bounced\r\n\r\nx\r\n" % me).encode())
s.quit()
data = local_msg("t68 bounced", timeout=60)
ok(b"MAILER-DAEMON" in data, "a bounce arrives") or diag(inst.log()[-2000:])
res = verify(data)
ok(both(res), "the bounce is signed with the parent's keys, verified") or diag(res)

# from outside mynetworks: delivered locally, not signed
s = smtplib.SMTP("127.0.0.1", inst.port(25), timeout=30)
s.sendmail("x@example.test", ["%s@mail.example.test" % user],
           b"From: x@example.test\r\nSubject: t68 outside\r\n\r\nx\r\n")
s.quit()
data = local_msg("t68 outside")
ok(data and b"DKIM-Signature" not in data, "mail from outside mynetworks is not signed")

# a tampered copy fails
data = remote_msg("t68 mynetworks").replace(b"\xc3\xa9t\xc3\xa9", b"summer")
res = verify(data)
ok(len(res) == 2 and not any(g is True for *_, g in res), "a changed body fails both") or diag(res)

# ------------------------------------------------------------------ reload
os.rename(os.path.join(work, "later"), os.path.join(KEYDIR, "sub.other.test"))
r = inst.mailctl("dns", "sub.other.test")
for m in re.finditer(r"^(\S+)\.\tIN\tTXT\t(\(.*?\)|\"[^\n]*\")$", r.stdout, re.M | re.S):
    records[m.group(1)] = "".join(re.findall(r'"([^"]*)"', m.group(2)))
r = inst.mailctl("reload")
is_(r.returncode, 0, "mailctl reload") or diag(r.stderr)
time.sleep(1)
r = subprocess.run([os.path.join(posthorn.BUILD, "sbin", "sendmail"), "-C", inst.etc,
                    "-f", "root@sub.other.test", "far@remote.test"],
                   input=b"From: root@sub.other.test\nSubject: t68 reloaded\n\nnew\n",
                   capture_output=True, timeout=60)
res = verify(remote_msg("t68 reloaded"))
ok(both(res, "sub.other.test"), "after reload a new domain's keys sign its mail") or diag(res)

bad = [l for l in inst.log().splitlines() if re.search(r"panic|fatal|segfault|killed by signal", l)]
ok(not bad, "no panic, fatal or crash") or diag(bad)

# ------------------------------------------------------------------ recycling
# libopendkim keeps memory of every Ed25519 signature: a cleanup process
# ends after dkim_ed25519_process_limit of them, between two messages,
# and its long-lived clients (pickup; an SMTP session) carry on with a
# fresh one, without a warning and without losing a message.
inst.stop()
inst.set_main({"dkim_ed25519_process_limit": "2"})
r = inst.start()
ok(r.returncode == 0, "restarted with dkim_ed25519_process_limit = 2") or diag(r.stderr)
for i in range(5):
    subprocess.run([os.path.join(posthorn.BUILD, "sbin", "sendmail"), "-C", inst.etc,
                    "-f", "root@example.test", "far@remote.test"],
                   input=b"From: root@example.test\nSubject: t68 recycle %d\n\nx\n" % i,
                   capture_output=True, timeout=60)
c = smtplib.SMTP("127.0.0.1", inst.port(587), timeout=30)
c.starttls(context=ctx)
c.login(user, PASSWORD)
for i in range(5):
    c.sendmail(me, ["far@remote.test"], ("From: <%s>\r\nTo: far@remote.test\r\n"
                                         "Subject: t68 session %d\r\n\r\nhi\r\n" % (me, i)).encode())
c.quit()
signed = 0
for i in range(5):
    signed += bool(both(verify(remote_msg("t68 recycle %d" % i))))
    signed += bool(both(verify(remote_msg("t68 session %d" % i))))
is_(signed, 10, "ten messages (five through pickup, five in one SMTP session) all signed")
log = inst.log()
ok(log.count("Ed25519 signatures made; ending this process") >= 4,
   "cleanup processes ended after their limit (%d times)"
   % log.count("Ed25519 signatures made; ending this process"))
ok("to cleanup" not in log and "queue file write error" not in log,
   "their clients noticed and went on without an error")

# ------------------------------------------------------------------ dkim_sign = no
inst.stop()
inst.set_main({"dkim_sign": "no", "dkim_ed25519_process_limit": "2000"})
r = inst.start()
ok(r.returncode == 0, "restarted with dkim_sign = no") or diag(r.stderr)
r = subprocess.run([os.path.join(posthorn.BUILD, "sbin", "sendmail"), "-C", inst.etc,
                    "-f", "root@example.test", "far@remote.test"],
                   input=b"From: root@example.test\nSubject: t68 off\n\nx\n", capture_output=True,
                   timeout=60)
data = remote_msg("t68 off")
ok(data and b"DKIM-Signature" not in data, "dkim_sign = no: not signed")
inst.stop()
dns.stop()
done()
