#!/usr/bin/env python3
"""t/72-checkd.t - SPF, DKIM and DMARC of inbound mail (checkd), end to end.

The test runs in a network namespace of its own (t/lib/netns.py) so that
its SMTP clients can come from TEST-NET addresses: libspf2 passes every
127/8 client.  A real authoritative server (nsd) serves the senders'
zones; the instance's dns_stub_zones point there.  Messages are signed by
independent code: python3-dkim (/usr/bin/python3), rsa-sha256 and
ed25519-sha256.  The client is 198.51.100.7 (allowed by the SPF records
that should pass) or 203.0.113.9 (allowed by none).

- aligned pass: SPF pass, both signatures pass, DMARC pass; one
  Authentication-Results field with authserv-id = myhostname;
- DKIM-only pass (SPF fail), SPF-only pass (no signature): DMARC pass;
- p=reject failing: 550 5.7.1 at end of data, nothing delivered; with
  dmarc_reject = no it goes to the Junk folder instead;
- p=quarantine failing: delivered into ~/Maildir/.Junk/;
- a subdomain under sp=reject: refused; p=none: delivered, dmarc=fail;
- a forged Authentication-Results with our authserv-id is removed, one
  of another host kept; from mynetworks (127.0.0.1): no check, no field
  of ours, the forged one still removed;
- spf_reject_fail = yes: a -all fail refused at RCPT with 550 5.7.23;
- DNS that never answers: temperror, the mail delivered;
- 100 signatures, a 64 KB header field, a key record of garbage:
  results, not a crash or a stall;
- checkd runs as check_user without other groups, jailed in dmarc/, with
  no descriptor outside it, under a seccomp filter with no_new_privs and
  no capabilities (/proc/PID/status), and a checkd killed mid-session is
  replaced; a
  checkd that cannot be reached means temperror results, mail accepted.
Skips without nsd, python3-dkim or a network namespace."""
import base64
import re
import os
import pwd
import signal
import smtplib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, diag, done, skip_all  # noqa: E402
import netns  # noqa: E402
import nsd  # noqa: E402

if nsd.missing():
    skip_all("needs %s (Debian: nsd)" % ", ".join(nsd.missing()))
if subprocess.run(["/usr/bin/python3", "-c", "import dkim, nacl"], capture_output=True).returncode:
    skip_all("needs python3-dkim and python3-nacl for /usr/bin/python3")
netns.enter()

import posthorn  # noqa: E402

GOOD, BAD = netns.CLIENT4, netns.OTHER4


def rlike(text, pattern, name):
    """ok if the regular expression matches somewhere in text."""
    if not ok(text is not None and re.search(pattern, text) is not None, name):
        diag("  %r\n  does not match %r" % (text, pattern))

# Keys made for this run: RSA (PKCS#1 PEM for python3-dkim) and Ed25519.
work = tempfile.mkdtemp(prefix="posthorn-checkd-")
rsa_pem = subprocess.run(["openssl", "genrsa", "-traditional", "2048"], capture_output=True,
                         check=True).stdout
rsa_der = subprocess.run(["openssl", "rsa", "-pubout", "-outform", "DER"], input=rsa_pem,
                         capture_output=True, check=True).stdout
RSA_PUB = base64.b64encode(rsa_der).decode()
ed = subprocess.run(["/usr/bin/python3", "-c",
                     "import nacl.signing,base64;k=nacl.signing.SigningKey.generate();"
                     "print(base64.b64encode(bytes(k)).decode());"
                     "print(base64.b64encode(bytes(k.verify_key)).decode())"],
                    capture_output=True, text=True, check=True).stdout.split()
ED_PRIV, ED_PUB = ed[0], ed[1]
rsa_path = os.path.join(work, "rsa.pem")
with open(rsa_path, "wb") as f:
    f.write(rsa_pem)

SIGNER = r"""
import sys, dkim
msg = sys.stdin.buffer.read()
domain, sel, alg, key = sys.argv[1:5]
if alg == "ed25519-sha256":
    priv = key.encode()
else:
    priv = open(key, "rb").read()
sig = dkim.sign(msg, sel.encode(), domain.encode(), priv,
                include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
                signature_algorithm=alg.encode(), linesep=b"\r\n")
sys.stdout.buffer.write(sig + msg)
"""


def sign(msg, domain, sel="rsa", alg="rsa-sha256"):
    key = ED_PRIV if alg == "ed25519-sha256" else rsa_path
    r = subprocess.run(["/usr/bin/python3", "-c", SIGNER, domain, sel, alg, key],
                       input=msg.encode(), capture_output=True, check=True)
    return r.stdout.decode()


def zone(name, records):
    return (name, "$ORIGIN %s.\n$TTL 300\n" % name + nsd.SOA + "ns IN A 127.0.0.1\n" + records)


def txt(s):
    """A TXT RDATA of strings of at most 255 bytes."""
    return " ".join('"%s"' % s[i:i + 250] for i in range(0, len(s), 250))


KEYS = "rsa._domainkey IN TXT %s\ned._domainkey IN TXT %s\n" % (
    txt("v=DKIM1; k=rsa; p=" + RSA_PUB), txt("v=DKIM1; k=ed25519; p=" + ED_PUB))
ZONES = [
    zone("sender.test", "@ IN TXT \"v=spf1 ip4:%s -all\"\n" % GOOD + KEYS
         + "_dmarc IN TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@sender.test\"\n"
         + "garbage._domainkey IN TXT \"v=DKIM1; k=rsa; p=!!notbase64\"\n"),
    zone("dkimonly.test", "@ IN TXT \"v=spf1 ip4:192.0.2.200 -all\"\n" + KEYS
         + "_dmarc IN TXT \"v=DMARC1; p=reject\"\n"),
    zone("spfonly.test", "@ IN TXT \"v=spf1 ip4:%s -all\"\n" % GOOD
         + "_dmarc IN TXT \"v=DMARC1; p=reject\"\n"),
    zone("reject.test", "@ IN TXT \"v=spf1 ip4:%s -all\"\n" % GOOD
         + "_dmarc IN TXT \"v=DMARC1; p=reject\"\n"),
    zone("quarantine.test", "@ IN TXT \"v=spf1 ip4:%s -all\"\n" % GOOD
         + "_dmarc IN TXT \"v=DMARC1; p=quarantine\"\n"),
    zone("org.test", "@ IN TXT \"v=spf1 -all\"\nsub IN TXT \"v=spf1 -all\"\n"
         + "_dmarc IN TXT \"v=DMARC1; p=none; sp=reject\"\n"),
    zone("monitor.test", "@ IN TXT \"v=spf1 -all\"\n_dmarc IN TXT \"v=DMARC1; p=none\"\n"),
]
dns = nsd.Nsd(ZONES)
dead = nsd.DeadServer()
stubs = " ".join("%s=127.0.0.1@%d" % (z[0], dns.port) for z in ZONES)
stubs += " slow.test=127.0.0.1@%d" % dead.port

inst = posthorn.Instance(main_conf={"dns_stub_zones": stubs, "dns_query_timeout": "2s",
                                    "dnssec_trust_anchor_file": "",
                                    "mynetworks": "127.0.0.0/8"})
user, home = inst.add_user()
r = inst.start()
is_(r.returncode, 0, "instance starts")
if r.returncode:
    diag(r.stderr)
HOST = "mail.example.test"
RCPT = "%s@example.test" % user
n_sent = [0]


def message(from_, subject, extra="", body="Hello.\r\n"):
    n_sent[0] += 1
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: Mon, 07 Dec 2026 10:00:00 +0000\r\n"
            "Message-ID: <%d.%d@test>\r\n%s\r\n%s" % (from_, RCPT, subject, os.getpid(),
                                                    n_sent[0], extra, body))


def send(msg, sender, source=GOOD, helo="mx.sender.test", rcpt=None):
    """The SMTP reply to the message: (code, text)."""
    s = smtplib.SMTP("127.0.0.1", inst.port(25), local_hostname=helo, timeout=60,
                     source_address=(source, 0))
    try:
        s.ehlo(helo)
        code, text = s.mail(sender)
        if code != 250:
            return code, text.decode()
        code, text = s.rcpt(rcpt or RCPT)
        if code != 250:
            return code, text.decode()
        code, text = s.data(msg.encode())
        return code, text.decode()
    finally:
        try:
            s.quit()
        except smtplib.SMTPException:
            pass


def delivered(subject, folder="", timeout=20):
    """The delivered message with that subject in the inbox or folder."""
    d = os.path.join(home, "Maildir", folder, "new")
    end = time.time() + timeout
    while time.time() < end:
        try:
            for name in os.listdir(d):
                with open(os.path.join(d, name), errors="replace") as f:
                    text = f.read()
                if "Subject: %s\n" % subject in text.replace("\r\n", "\n"):
                    return text
        except OSError:
            pass
        time.sleep(0.1)
    return None


def authres(text):
    """The Authentication-Results fields of a message, unfolded."""
    head = text.replace("\r\n", "\n").split("\n\n", 1)[0]
    fields, cur = [], None
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and cur is not None:
            cur += " " + line.strip()
            continue
        if cur is not None:
            fields.append(cur)
        cur = line
    if cur is not None:
        fields.append(cur)
    return [f.split(":", 1)[1].strip() for f in fields
            if f.lower().startswith("authentication-results:")]


# Aligned pass: SPF, both signatures, DMARC.
m = sign(sign(message("Alice <alice@sender.test>", "aligned"), "sender.test", "ed",
              "ed25519-sha256"), "sender.test")
code, text = send(m, "alice@sender.test")
is_(code, 250, "aligned message accepted")
t = delivered("aligned")
ar = authres(t or "")
is_(len(ar), 1, "one Authentication-Results field")
a = ar[0] if ar else ""
ok(a.startswith(HOST + ";"), "authserv-id is myhostname")
rlike(a, r"spf=pass \([^)]*\) smtp\.mailfrom=alice@sender\.test", "spf=pass for MAIL FROM")
rlike(a, r"dkim=pass header\.d=sender\.test header\.s=rsa header\.a=rsa-sha256 header\.b=",
     "python3-dkim's rsa-sha256 signature passes")
rlike(a, r"dkim=pass header\.d=sender\.test header\.s=ed header\.a=ed25519-sha256",
     "python3-dkim's ed25519-sha256 signature passes")
rlike(a, r"dmarc=pass \(p=reject sp=reject dis=none\) header\.from=sender\.test", "dmarc=pass")
ok(t and t.index("Authentication-Results:") > t.index("Received:"),
   "the field is under our Received:")

# The result is kept for the DMARC aggregate report (the record has rua).
hist = os.path.join(inst.spool, "dmarc", time.strftime("history-%Y%m%d", time.gmtime()))
ok(os.path.exists(hist), "a history row for the report (%s)" % hist)
if os.path.exists(hist):
    with open(hist) as f:
        rows = f.read()
    rlike(rows, r"sender\.test", "naming the policy domain")
    is_(os.stat(hist).st_uid, pwd.getpwnam("posthorn-check").pw_uid, "written as check_user")

# DKIM only: SPF fails (-all), the signature aligns.
code, text = send(sign(message("bob@dkimonly.test", "dkimonly"), "dkimonly.test"),
                  "bob@dkimonly.test")
is_(code, 250, "DKIM-only message accepted")
a = (authres(delivered("dkimonly") or "") or [""])[0]
rlike(a, r"spf=fail", "spf=fail")
rlike(a, r"dkim=pass header\.d=dkimonly\.test", "dkim=pass")
rlike(a, r"dmarc=pass .*header\.from=dkimonly\.test", "DMARC passes on DKIM alone")

# SPF only.
code, text = send(message("carol@spfonly.test", "spfonly"), "carol@spfonly.test")
is_(code, 250, "SPF-only message accepted")
a = (authres(delivered("spfonly") or "") or [""])[0]
rlike(a, r"spf=pass", "spf=pass")
rlike(a, r"dkim=none", "dkim=none")
rlike(a, r"dmarc=pass", "DMARC passes on SPF alone")

# p=reject: From reject.test, envelope elsewhere, no signature.
code, text = send(message("ceo@reject.test", "forged"), "x@spfonly.test")
is_(code, 550, "p=reject failure refused at end of data")
rlike(text, r"5\.7\.1 .*reject\.test", "with 5.7.1 and the policy domain")
ok(delivered("forged", timeout=2) is None, "and not delivered")
rlike(inst.log(), r"reject: END-OF-MESSAGE.*550 5\.7\.1", "the refusal is logged")

# p=quarantine: into the Junk folder.
code, text = send(message("boss@quarantine.test", "quarantined"), "x@spfonly.test")
is_(code, 250, "p=quarantine failure accepted")
t = delivered("quarantined", folder=".Junk")
ok(t is not None, "delivered into ~/Maildir/.Junk/")
ok(delivered("quarantined", timeout=1) is None, "not into the inbox")
rlike((authres(t or "") or [""])[0], r"dmarc=fail \(p=quarantine sp=quarantine dis=quarantine\)",
     "dmarc=fail with the disposition")
ok(os.path.exists(os.path.join(home, "Maildir", ".Junk", "maildirfolder")),
   "the Junk folder is a Maildir++ folder")
st = os.stat(os.path.join(home, "Maildir", ".Junk", "new"))
is_(st.st_uid, pwd.getpwnam(user).pw_uid, "owned by the user")

# Subdomain policy (sp=reject under p=none), and p=none itself.
code, text = send(message("x@sub.org.test", "subdomain"), "x@sub.org.test")
is_(code, 550, "a subdomain under sp=reject is refused")
code, text = send(message("x@monitor.test", "monitored"), "x@monitor.test")
is_(code, 250, "p=none: accepted")
rlike((authres(delivered("monitored") or "") or [""])[0], r"dmarc=fail \(p=none sp=none dis=none\)",
     "p=none: dmarc=fail recorded, nothing applied")

# Forged Authentication-Results: ours removed, another host's kept.
forged = ("Authentication-Results: %s; dmarc=pass header.from=sender.test\r\n"
          "Authentication-Results: (c) \"%s\" 1; dkim=pass\r\n"
          "Authentication-Results: other.example; spf=pass\r\n" % (HOST.upper(), HOST))
code, text = send(message("carol@spfonly.test", "forgedar", forged), "carol@spfonly.test")
is_(code, 250, "message with forged fields accepted")
ar = authres(delivered("forgedar") or "")
is_(len(ar), 2, "two fields left: ours and the other host's")
ok(any(x.startswith("other.example;") for x in ar), "the other host's is kept")
ok(sum(1 for x in ar if re.search(r"dmarc=pass .*header\.from=spfonly\.test", x)) == 1,
   "ours is the real one")
rlike(inst.log(), "removed an Authentication-Results field that claims to be ours",
     "the removal is logged")

# From mynetworks: not checked, but forged fields still go.
code, text = send(message("x@reject.test", "trusted", forged), "x@reject.test", source="127.0.0.1")
is_(code, 250, "a mynetworks client is not checked (p=reject does not apply)")
ar = authres(delivered("trusted") or "")
ok(ar == ["other.example; spf=pass"], "no field of ours, the forged ones removed (%r)" % ar)

# DNS that does not answer: temperror, delivered.
code, text = send(message("x@slow.test", "slowdns"), "x@slow.test")
is_(code, 250, "unanswered DNS: accepted")
a = (authres(delivered("slowdns", timeout=40) or "") or [""])[0]
rlike(a, r"spf=temperror", "spf=temperror")
rlike(a, r"dmarc=temperror", "dmarc=temperror")

# Hostile content: 100 signatures, a 64 KB field, a key of garbage.
long_field = "X-Long: " + ("y" * 69 + "\r\n ") * 950 + "end\r\n"
base = message("alice@sender.test", "many", long_field)
sig = sign(base, "sender.test")[:-len(base)]
m = sig * 100 + base
code, text = send(m, "alice@sender.test")
is_(code, 250, "100 signatures and a 64 KB field: accepted")
if code != 250:
    diag(text)
a = (authres(delivered("many", timeout=40) or "") or [""])[0]
is_(a.count("dkim=pass"), 10, "the first 10 (dkim_verify_max_signatures) evaluated")
rlike(a, r"dkim=policy \(90 more signatures not evaluated or not listed\)",
      "the other 90 in one line")
ok(len(a) < 8000, "the field stays under the queue's attribute limit (%d)" % len(a))
garbage = sign(message("alice@sender.test", "garbagekey"), "sender.test", "garbage")
code, text = send(garbage, "alice@sender.test")
is_(code, 250, "a key record of garbage: accepted")
rlike((authres(delivered("garbagekey") or "") or [""])[0], r"dkim=permerror", "dkim=permerror")

# spf_reject_fail: refuse a -all fail at RCPT.
inst.set_main({"spf_reject_fail": "yes"})
r = inst.mailctl("reload")
is_(r.returncode, 0, "reload with spf_reject_fail = yes")
time.sleep(1)
code, text = send(message("x@reject.test", "spffail"), "x@reject.test", source=BAD)
is_(code, 550, "SPF fail refused at RCPT")
rlike(text, r"5\.7\.23", "with 5.7.23")
code, text = send(message("alice@sender.test", "spfpass2"), "alice@sender.test")
is_(code, 250, "an SPF pass still goes through")

# dmarc_reject = no: p=reject failures go to Junk instead.
inst.set_main({"spf_reject_fail": "no", "dmarc_reject": "no"})
inst.mailctl("reload")
time.sleep(1)
code, text = send(message("ceo@reject.test", "softened"), "x@spfonly.test")
is_(code, 250, "dmarc_reject = no: accepted")
ok(delivered("softened", folder=".Junk") is not None, "into the Junk folder")

# The process: check_user, the empty jail, seccomp.
pids = inst.service_pids("checkd")
ok(pids, "checkd processes are running (%s)" % pids)
if pids:
    status = posthorn.proc_status(pids[0])
    uid = pwd.getpwnam("posthorn-check").pw_uid
    is_(status["Uid"][:3], [str(uid)] * 3, "checkd runs as posthorn-check")
    is_(status.get("Seccomp", ["?"])[0], "2", "under a seccomp filter")
    is_(status.get("NoNewPrivs", ["?"])[0], "1", "with no_new_privs")
    is_(status.get("CapEff", ["?"])[0], "0000000000000000", "and no capabilities")
    is_(status["Gid"][:3], [str(pwd.getpwnam("posthorn-check").pw_gid)] * 3, "its own group")
    is_([g for g in status["Groups"] if g != str(pwd.getpwnam("posthorn-check").pw_gid)], [],
        "and no other (not mail_owner's: it reaches no internal socket)")
    is_(posthorn.proc_root(pids[0]), os.path.join(inst.spool, "dmarc"),
        "chrooted in dmarc/, its own directory")
    fds = os.listdir("/proc/%d/fd" % pids[0])
    outside = [os.readlink("/proc/%d/fd/%s" % (pids[0], fd)) for fd in fds]
    outside = [t for t in outside if t.startswith("/") and not t.startswith(("/dev/null",
               os.path.join(inst.spool, "dmarc"))) and "maillog" not in t]
    is_(outside, [], "holding no descriptor of a file or directory outside its jail")

# A checkd killed is replaced; one that cannot be reached means temperror.
for p in pids:
    os.kill(p, signal.SIGKILL)
code, text = send(message("carol@spfonly.test", "afterkill"), "carol@spfonly.test")
is_(code, 250, "after checkd was killed: accepted")
rlike((authres(delivered("afterkill") or "") or [""])[0], r"dmarc=pass", "and checked by a new one")
# One checkd process at most (master cannot start another), stopped.
inst.set_main({"smtpd_check_timeout": "3s"})
inst.edit_service("checkd", maxproc=1)
inst.mailctl("reload")
send(message("carol@spfonly.test", "warmup"), "carol@spfonly.test")
inst.wait_for(lambda: len(inst.service_pids("checkd")) == 1, timeout=20)
stopped = inst.service_pids("checkd")
is_(len(stopped), 1, "one checkd process left after a reload with a limit of 1")
for p in stopped:
    os.kill(p, signal.SIGSTOP)
code, text = send(message("carol@spfonly.test", "nocheckd"), "carol@spfonly.test")
for p in stopped:
    os.kill(p, signal.SIGCONT)
is_(code, 250, "checkd not answering: mail accepted")
rlike((authres(delivered("nocheckd", timeout=30) or "") or [""])[0],
     r"spf=temperror \(checks not available\)", "with temperror results")
rlike(inst.log(), r"checkd did not answer", "and a warning")

log = inst.log()
ok("forbidden system call" not in log, "no system call outside the filter")
ok("panic" not in log, "no panic")
r = inst.stop()
is_(r.returncode, 0, "instance stops")
dns.stop()
dead.close()
inst.cleanup()
done()
