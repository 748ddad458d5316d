#!/usr/bin/env python3
"""t/77-dmarc-report.t - DMARC aggregate reports (RFC 7489 section 7.2):
the history rows checkd records (written here with t/dmarcrow, lib/
dmarchist's writer, as check_user), `mailctl dmarc report`, and master's
job that runs it once a period.

An instance whose outgoing mail goes, through a real authoritative DNS
server (nsd, zone test.), to a fake remote SMTP server (t/lib/
fakesmtp.py).  Yesterday's history holds rows of three policy domains
and one malformed line; today's a row that must wait.

-n: prints the destinations and the XML, queues nothing, renames nothing.
The job (period 2 s, put in by a reload): each report arrives as
multipart/mixed with the section 7.2.1.1 subject and an application/gzip
attachment named receiver!domain!begin!end.xml.gz, which inflates to XML
that validates against RFC 7489 Appendix C's schema (xmllint, t/data/
rfc7489.xsd) and counts the rows right.  External destination
verification: a rua in another organizational domain gets the report
only with the TXT record <domain>._report._dmarc.<rua-domain>
"v=DMARC1"; without it, nothing, and a log line.  "!10k": a report over
the limit is not sent to that URI (logged), one under it is.  The
malformed line is logged as PATH:LINE and the rest reported.  The
reports go out as check_user (pickup's uid=), with the null sender.
Afterwards history-D is done-D, today's file untouched, and later runs
send nothing more.  The command runs as check_user (/proc/PID/status, the
uids, gids and groups, while it is blocked writing -n's output).  Jobs: their output is logged line by line; one still
running when its next period comes is not started again; master's stop
ends it and what it started.
Skips without nsd, xmllint or root."""
import email
import email.policy
import gzip
import os
import pwd
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, diag, done, skip_all  # noqa: E402
import nsd  # noqa: E402
from smtptest import prelude, free_port_on, problems  # noqa: E402

if shutil.which("xmllint") is None:
    skip_all("needs xmllint (Debian: libxml2-utils)")
work = prelude("posthorn-dmarc-")
import posthorn  # noqa: E402
from fakesmtp import FakeSMTP  # noqa: E402
import dkimcheck  # noqa: E402

XSD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "rfc7489.xsd")
PORT = free_port_on(["127.0.0.3"])
ZONE = "$ORIGIN test.\n$TTL 300\n" + nsd.SOA + """
ns IN A 127.0.0.1
sink IN A 127.0.0.3
sender IN MX 10 sink.test.
agg IN MX 10 sink.test.
big IN MX 10 sink.test.
noauth IN MX 10 sink.test.
sender.test._report._dmarc.agg IN TXT "v=DMARC1"
_dmarc.sender IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@sender.test,mailto:reports@agg.test,mailto:small@sender.test!10k"
_dmarc.noauth IN TXT "v=DMARC1; p=none; rua=mailto:reports@agg.test"
_dmarc.big IN TXT "v=DMARC1; p=none; rua=mailto:r@big.test!10k,mailto:all@big.test"
"""
dns = nsd.Nsd([("test.", ZONE)])
sink = FakeSMTP(work, "127.0.0.3", PORT, {"ehlo": ["PIPELINING", "8BITMIME", "SIZE 10000000"]})

inst = posthorn.Instance(main_conf={
    "dns_stub_zones": "test=127.0.0.1@%d 127.in-addr.arpa=127.255.255.255" % dns.port,
    "dns_query_timeout": "3s",
    "dnssec_trust_anchor_file": "",
    "smtp_tcp_port": str(PORT),
})
ok(True, "nsd serves test. on port %d; the fake remote listens on 127.0.0.3:%d" % (dns.port, PORT))

# Jobs' programs: a directory of our own, with mailctl and a slow job.
cmd = os.path.join(inst.dir, "cmd")
os.mkdir(cmd)
os.symlink(posthorn.MAILCTL, os.path.join(cmd, "mailctl"))
with open(os.path.join(cmd, "slowjob"), "w") as f:
    f.write("#!/bin/sh\necho \"slow job $$ starting\"\nsleep 3\necho \"slow job $$ done\"\n")
os.chmod(os.path.join(cmd, "slowjob"), 0o755)
inst.set_main({"command_directory": cmd})
conf = os.path.join(inst.etc, "master.conf")
with open(conf) as f:
    master_text = f.read()
like(master_text, "\ndmarcreport            job   -       86400  1       mailctl dmarc report\n",
     "mailctl init writes the daily job")

# Reports go out DKIM-signed: a key for the reporting domain.
r = inst.mailctl("dkim", "keygen", "example.test", "t77")
ok(r.returncode == 0, "a DKIM key for example.test") or diag(r.stderr)
dkim_records = dkimcheck.records(inst.mailctl("dns", "example.test").stdout)
r = inst.start()
ok(r.returncode == 0, "the instance starts") or diag(r.stderr)
check = pwd.getpwnam("posthorn-check")
dmarc = os.path.join(inst.spool, "dmarc")
st = os.stat(dmarc)
ok(st.st_uid == check.pw_uid and st.st_mode & 0o777 == 0o700, "dmarc/ is check_user's, mode 0700")

now = int(time.time())
today = now // 86400 * 86400
yday = today - 86400
D = time.strftime("%Y%m%d", time.gmtime(yday))
T = time.strftime("%Y%m%d", time.gmtime(today))
hist = os.path.join(dmarc, "history-" + D)


def has(text, needle, name):
    """like(), but on failure shows only where the text ends."""
    if not ok(text is not None and needle in text, name):
        diag("  wanted: %s" % needle)
        diag("  the text ends: %s" % (text or "")[-2500:])


def rows(text):
    r = subprocess.run([os.path.join(posthorn.BUILD, "t", "dmarcrow"), dmarc], input=text,
                       text=True, capture_output=True, user=check.pw_uid, group=check.pw_gid)
    if r.returncode != 0:
        diag(r.stderr)
    return r.returncode == 0


rnd = random.Random(77)
RUA = "rua=mailto:dmarc@sender.test,mailto:reports@agg.test,mailto:small@sender.test!10k"
ok(rows("".join("when=%d %s\n" % (yday + 3600 + i, RUA) for i in range(3))
        + "".join("when=%d source_ip=198.51.100.7 dkim_aligned=0 spf_aligned=0 spf_result=fail "
                  "dkim=sender.test/s1/fail %s\n" % (yday + 7200 + i, RUA) for i in range(2))),
   "five rows for sender.test")
with open(hist, "a") as f:
    f.write("garbage, not a history line\n")
ok(rows("when=%d source_ip=2001:db8::7 reason=forwarded %s\n" % (yday + 9000, RUA)
        + "when=%d policy_domain=noauth.test header_from=noauth.test envelope_from=noauth.test "
          "spf_domain=noauth.test rua=mailto:reports@agg.test\n" % (yday + 9100)
        + "".join("when=%d policy_domain=big.test header_from=%016x.big.test envelope_from=big.test "
                  "spf_domain=big.test source_ip=10.%d.%d.%d "
                  "rua=mailto:r@big.test!10k,mailto:all@big.test\n"
                  % (yday + 10000 + i, rnd.getrandbits(64), i % 7, rnd.randrange(256),
                     rnd.randrange(256)) for i in range(600))
        + "when=%d policy_domain=victim.test header_from=victim.test envelope_from=victim.test "
          "spf_domain=victim.test rua=mailto:anyone@victim.test\n" % (yday + 9200)
        + "when=%d\n" % now),
   "a row for sender.test after the bad line, one for noauth.test, one for victim.test (which "
   "publishes no DMARC record), 600 for big.test, one today")
ok(os.path.exists(hist) and os.path.exists(os.path.join(dmarc, "history-" + T)),
   "the history files of yesterday and today")
st = os.stat(hist)
ok(st.st_uid == check.pw_uid and st.st_mode & 0o777 == 0o600, "  yesterday's is check_user's, 0600")

# ------------------------------------------------------------- -n
r = inst.mailctl("dmarc", "report", "-n")
ok(r.returncode == 0, "mailctl dmarc report -n succeeds") or diag(r.stderr)
has(r.stdout, "report %s.sender.test@example.test for sender.test: 6 messages in 3 records" % D,
     "-n names the report and its counts")
has(r.stdout, "  to dmarc@sender.test (", "  a destination in the policy domain")
has(r.stdout, "  to reports@agg.test (", "  another organization's, verified")
has(r.stdout, "  not to mailto:reports@agg.test: agg.test has not agreed to receive them",
     "  another organization's without the record")
has(r.stdout, "for victim.test: not sent: _dmarc.victim.test holds no DMARC record now",
    "  a domain whose record does not list the rua now gets nothing (a forged history row "
    "cannot choose destinations)")
has(r.stdout, "  not to mailto:r@big.test!10k: the report is ", "  a report over a !10k limit")
has(r.stdout, "<feedback>", "  and prints the XML")
has(r.stderr, "history-%s:6: not a history line" % D, "the malformed line is reported as PATH:LINE")
ok(os.listdir(os.path.join(inst.spool, "maildrop")) == [], "-n queues nothing")
ok(os.path.exists(hist) and not os.path.exists(os.path.join(dmarc, "done-" + D)),
   "-n renames nothing")
# The privilege drop, seen from outside: -n's output (big.test's XML is
# far more than a pipe holds) blocks it in write() until we read.
p = subprocess.Popen([posthorn.MAILCTL, "-c", inst.etc, "dmarc", "report", "-n"],
                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
inst.known_pids.add(p.pid)
seen = inst.wait_for(lambda: posthorn.alive(p.pid)
                     and posthorn.proc_status(p.pid).get("Uid", ["0"])[0] != "0"
                     and posthorn.proc_status(p.pid), timeout=10) or {}
is_(seen.get("Uid"), [str(check.pw_uid)] * 4, "the report runs as check_user (all four uids)")
is_(seen.get("Gid"), [str(check.pw_gid)] * 4, "  with its group (all four gids)")
is_(seen.get("Groups"), [str(check.pw_gid)], "  and no other group")
out = p.communicate(timeout=60)[0]
ok(p.returncode == 0 and out.count(b"<feedback>") == 3, "  and prints three reports")
r = inst.mailctl("dmarc", "report", "--day", "2020-13-01")
is_(r.returncode, 2, "--day with a bad date is a usage error")
r = inst.mailctl("dmarc", "report", "--day", time.strftime("%Y-%m-%d", time.gmtime(today)))
ok(r.returncode == 1 and "not over yet" in r.stderr, "--day of today is refused: not over")

# ------------------------------------------------------------- the job
with open(conf, "w") as f:
    f.write(master_text.replace("job   -       86400  1       mailctl dmarc report",
                                "job   -       2      1       mailctl dmarc report")
            + "slow job - 1 1 slowjob\n")
r = inst.mailctl("reload")
ok(r.returncode == 0, "a reload puts in the job with a period of 2 s, and a slow one") \
    or diag(r.stderr)

WANT = {"dmarc@sender.test", "reports@agg.test", "small@sender.test", "all@big.test"}


def arrived():
    got = {}
    for m in sink.messages():
        for rc in m["rcpts"]:
            got[rc] = m
    return got


got = sink.wait(lambda: WANT <= set(arrived()) and arrived(), timeout=60) or {}
ok(WANT <= set(got), "the job sends four reports: %s" % sorted(got)) or diag(inst.log()[-4000:])
time.sleep(4)                                   # two more runs of the job
got = arrived()
is_(sorted(got), sorted(WANT), "  and nothing else, not even on later runs")
ok(all(m["from"] == "" for m in got.values()), "  with the null envelope sender")


def report_of(m):
    msg = email.message_from_bytes(m["data"], policy=email.policy.default)
    parts = [p for p in msg.iter_attachments() if p.get_content_type() == "application/gzip"]
    if len(parts) != 1:
        return msg, None, None
    return msg, parts[0].get_filename(), gzip.decompress(parts[0].get_content())


def schema_ok(xml):
    with tempfile.NamedTemporaryFile(suffix=".xml", dir=work, delete=False) as f:
        f.write(xml)
    r = subprocess.run(["xmllint", "--noout", "--schema", XSD, f.name], capture_output=True,
                       text=True)
    if r.returncode != 0:
        diag(r.stderr)
    return r.returncode == 0


m = got.get("dmarc@sender.test")
msg, fname, xml = report_of(m) if m else (None, None, None)
is_(msg and msg["Subject"], "Report Domain: sender.test Submitter: example.test Report-ID: "
    "<%s.sender.test@example.test>" % D, "the subject of section 7.2.1.1")
is_(msg and msg.get_content_type(), "multipart/mixed", "a multipart/mixed message")
is_(msg and msg["From"], "postmaster@example.test", "From: dmarc_report_sender's default")
if dkimcheck.available():
    res = dkimcheck.verify(m["data"], dkim_records, diag) if m else []
    is_(sorted(a for a, d, s, good in res if good is True and d == "example.test"),
        ["ed25519-sha256", "rsa-sha256"],
        "the report is DKIM-signed (rsa-sha256 and ed25519-sha256, verified by python3-dkim)")
else:
    ok(True, "# SKIP python3-dkim is not installed")
is_(fname, "example.test!sender.test!%d!%d.xml.gz" % (yday, yday + 86399),
    "the attachment is receiver!domain!begin!end.xml.gz")
ok(xml and schema_ok(xml), "the report inflates to XML that validates against RFC 7489's schema")
counts = {}
if xml:
    root = ET.fromstring(xml)
    for rec in root.iter("record"):
        counts[rec.findtext("row/source_ip")] = int(rec.findtext("row/count"))
    is_(root.findtext("policy_published/domain"), "sender.test", "  policy_published names it")
    is_(root.findtext("report_metadata/date_range/begin"), str(yday), "  yesterday's range")
is_(counts, {"192.0.2.1": 3, "198.51.100.7": 2, "2001:db8:0:0:0:0:0:7": 1},
    "the rows are aggregated: 3, 2 and 1, the malformed line skipped")
x2 = report_of(got["reports@agg.test"])[2] if "reports@agg.test" in got else None
ok(x2 == xml, "the verified other-organization destination gets the same report")
msg, fname, xml = report_of(got["all@big.test"]) if "all@big.test" in got else (None, None, None)
ok(xml and schema_ok(xml), "big.test's report validates too")
ok(xml and xml.count(b"<record>") == 600 and len(got["all@big.test"]["data"]) > 10240,
   "  600 records, more than 10k (%d bytes)" % len(got.get("all@big.test", {"data": ""})["data"]))

log = inst.log()
has(log, "history-%s:6: not a history line" % D, "the job logs the malformed line as PATH:LINE")
has(log, "noauth.test: not sending report %s.noauth.test@example.test to mailto:reports@agg.test: "
     "agg.test has not agreed to receive them: no TXT record "
     "noauth.test._report._dmarc.agg.test" % D, "the unverified destination is logged")
has(log, "big.test: not sending report %s.big.test@example.test to mailto:r@big.test!10k: "
     "the report is " % D, "the destination whose limit the report passes is logged")
ok(re.search(r"over the URI's limit of 10240", log), "  with its limit")
has(log, "sender.test: sent report %s.sender.test@example.test to <small@sender.test>" % D,
     "a report under its !10k limit is sent")
ok(re.search(r"job dmarcreport\[\d+\]: .*sent report", log), "the job's output is in the log")
ok(re.search(r"pickup\[\d+\]: \S+: uid=%d from=<>" % check.pw_uid, log),
   "sendmail ran as check_user (pickup's uid=%d)" % check.pw_uid)
ok(not os.path.exists(hist) and os.path.exists(os.path.join(dmarc, "done-" + D)),
   "yesterday's history is now done-%s" % D)
ok(os.path.exists(os.path.join(dmarc, "history-" + T)), "today's is left alone")

# ------------------------------------------------------------- jobs
ok(re.search(r"job slow\[\d+\]: slow job \d+ starting", log), "a job's output lines are logged")
ok(re.search(r"job slow: the last run \(process \d+, started \d+s ago\) is still going: "
             r"not starting another", log), "a job still running is not started again")
starts = re.findall(r"job slow: started process (\d+)", log)
ok(len(starts) >= 2, "  it ran again after it ended (%d runs)" % len(starts))


def slow_running():
    """(pid, its children) of the newest run of the slow job while it runs
    its sleep, else None (it may be between runs, or not have forked yet)."""
    runs = re.findall(r"job slow: started process (\d+)", inst.log())
    if not runs:
        return None
    pid = int(runs[-1])
    kids = posthorn.children_of(pid) if posthorn.alive(pid) else []
    return (pid, kids) if kids else None


got = inst.wait_for(slow_running, timeout=15)
last, kids = got if got else (0, [])
ok(got, "the slow job (%d) runs, with its sleep %s" % (last, kids))
r = inst.stop()
ok(r.returncode == 0, "mailctl stop")
posthorn.reap()
ok(not posthorn.alive(last) and not any(posthorn.alive(k) for k in kids),
   "master's stop ended the job and what it started")
ok(not problems(inst), "no process failed") or diag("\n".join(problems(inst)))
ok(re.search(r"job dmarcreport: process \d+ done", log)
   and not re.search(r"job dmarcreport: process \d+ (failed|killed)", inst.log()),
   "every run of the report job ended well") or diag(inst.log()[-3000:])
done()
