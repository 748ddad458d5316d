#!/usr/bin/env python3
"""check_bench.py - inbound throughput with SPF, DKIM and DMARC checks on
(checkd) against the same load with them off, in one run.

    bench/check_bench.py [-n MESSAGES] [-s SESSIONS] [-r RUNS] [--settle SECONDS]
                         [-l BYTES] [--pool N] [--domains N] [--ed25519]
                         [--new-conn] [--profile] [--keep]

The run happens in a network namespace of its own (t/lib/netns.py), so
that the load comes from a TEST-NET address, 198.51.100.7, outside the
instance's mynetworks (127.0.0.0/8): libspf2 passes every 127/8 client, and
smtpd checks only clients from outside.  A real nsd (t/lib/nsd.py) serves
--domains sender domains (default 5), each with an SPF record that allows
the client, an rsa-sha256 DKIM key of 2048 bits (and with --ed25519 an
ed25519 one), HELO mx.sender1.test's own SPF record (v=spf1 a -all), and
_dmarc with p=reject and a rua (so checkd writes the aggregate report's
history row too, as in production), plus the client's reverse zone (its
PTR and A agree, so smtpd knows its name).  The Posthorn instance
(t/lib/posthorn.py) has dns_stub_zones pointing there and no DNSSEC trust
anchor.

The load: a pool of --pool messages (default 50) of about BYTES bytes of
body (default 4096, varied from half to one and a half times), plain
text with the usual header fields, from user addresses of those domains to
one local user, each DKIM-signed before anything is timed by python3-dkim
(/usr/bin/python3; rsa-sha256, relaxed/relaxed; with --ed25519 also
ed25519-sha256), the envelope sender matching From:.  bench/smtpload (a
small C client, build/bench/smtpload) sends MESSAGES (default 10000: a run of
fewer, about 2 s, is dominated by its start) of them round-robin
over SESSIONS concurrent sessions from 198.51.100.7 with HELO
mx.sender1.test, no pipelining, each session reusing its connection (as
smtp-source -d) unless --new-conn.  Before the timed runs it is run once
against Postfix's smtp-sink, to show what it can drive on its own and its
CPU per message, and once untimed against the instance with checks on,
which must deliver every message with spf=pass, dkim=pass and dmarc=pass
(otherwise the benchmark stops: it would measure nothing).

Then RUNS rounds of: checks on (smtpd_mail_authentication = yes), checks
off (= no), each toggled by mailctl reload.  Before each run the
recipient's Maildir is emptied (moved aside), the disk synced and the
machine left alone for --settle seconds (default 65, see smtp_bench.py).
"Accepted" is the time until the load's last 250, "delivered" until the
last message is a file in Maildir/new.  Each run also reports: the CPU
time per message of checkd and of the other services (from /proc, sampled
every 0.5 s), the number of checkd processes, DNS queries per message
(UDP datagrams in the namespace), the load generator's CPU, and what the
delivered messages say: in an "on" run every message must have one
Authentication-Results field of ours with spf=pass, dkim=pass, dmarc=pass
(and a new history row), in an "off" run none.  At the end: medians, the
on/off ratios and the spread.  --profile adds an untimed "on" run with
perf record --call-graph dwarf on the checkd processes and prints what
share of checkd's CPU went where (PROFILE_CATEGORIES: libunbound's
thread, the DNS lookups, DKIM key decoding, verifying, SPF, DMARC, ...).

Never passes or fails on time: exit status 1 only if a run could not
complete or its messages do not show what the run was meant to measure.
Needs root, nsd, python3-dkim (and python3-nacl for --ed25519), iproute2,
smtp-sink (Debian's postfix package).  Every process started is killed by
PID at the end.
"""
import argparse
import base64
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "t", "lib"))
sys.path.insert(0, os.path.join(TOP, "bench"))
import netns  # noqa: E402
import nsd  # noqa: E402

BUILD_TREE = os.environ.get("POSTHORN_BUILD") or os.path.join(TOP, "build")
SMTPLOAD = os.path.join(BUILD_TREE, "bench", "smtpload")
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
CLIENT = netns.CLIENT4
HOST = "mail.example.test"
HELO = "mx.sender1.test"
DELIVERY_TIMEOUT = 600

SIGNER = r"""
import os, sys, dkim
pool, rsa_path, ed_priv = sys.argv[1:4]
rsa = open(rsa_path, "rb").read()
heads = [b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type"]
for name in sorted(os.listdir(pool)):
    path = os.path.join(pool, name)
    with open(path, "rb") as f:
        sender, msg = f.read().split(b"\n", 1)
    domain = sender.rsplit(b"@", 1)[1]
    sigs = b""
    if ed_priv:
        sigs += dkim.sign(msg, b"ed", domain, ed_priv.encode(), include_headers=heads,
                          canonicalize=(b"relaxed", b"relaxed"),
                          signature_algorithm=b"ed25519-sha256", linesep=b"\r\n")
    sigs = dkim.sign(sigs + msg, b"rsa", domain, rsa, include_headers=heads,
                     canonicalize=(b"relaxed", b"relaxed"), linesep=b"\r\n") + sigs
    with open(path, "wb") as f:
        f.write(sender + b"\n" + sigs + msg)
"""

WORDS = ("the of and to in is that for it as was with be by on not he this are or his "
         "from at which but have an they you were her she there been one all we their "
         "meeting report invoice schedule shipment quarter budget review draft attached "
         "please find below regards thanks tomorrow project update customer order "
         "delivery account payment request proposal contract summary figures").split()


def txt(s):
    """A TXT RDATA of strings of at most 250 bytes."""
    return " ".join('"%s"' % s[i:i + 250] for i in range(0, len(s), 250))


def make_keys(work, ed25519):
    """(path of the RSA key in PEM, its public key in base64, the ed25519
    private and public keys in base64 or None)."""
    pem = subprocess.run(["openssl", "genrsa", "-traditional", "2048"], capture_output=True,
                         check=True).stdout
    der = subprocess.run(["openssl", "rsa", "-pubout", "-outform", "DER"], input=pem,
                         capture_output=True, check=True).stdout
    path = os.path.join(work, "rsa.pem")
    with open(path, "wb") as f:
        f.write(pem)
    ed = (None, None)
    if ed25519:
        ed = tuple(subprocess.run(
            ["/usr/bin/python3", "-c",
             "import nacl.signing,base64;k=nacl.signing.SigningKey.generate();"
             "print(base64.b64encode(bytes(k)).decode());"
             "print(base64.b64encode(bytes(k.verify_key)).decode())"],
            capture_output=True, text=True, check=True).stdout.split())
    return path, base64.b64encode(der).decode(), ed[0], ed[1]


def zones(ndomains, rsa_pub, ed_pub):
    """The sender domains' zones and the client's reverse zone."""
    out = []
    keys = "rsa._domainkey IN TXT %s\n" % txt("v=DKIM1; k=rsa; p=" + rsa_pub)
    if ed_pub:
        keys += "ed._domainkey IN TXT %s\n" % txt("v=DKIM1; k=ed25519; p=" + ed_pub)
    for k in range(1, ndomains + 1):
        name = "sender%d.test" % k
        out.append((name, "$ORIGIN %s.\n$TTL 300\n" % name + nsd.SOA + "ns IN A 127.0.0.1\n"
                    + "@ IN MX 10 mx\nmx IN A %s\n" % CLIENT
                    + "@ IN TXT \"v=spf1 ip4:%s -all\"\n" % CLIENT
                    + "mx IN TXT \"v=spf1 a -all\"\n" + keys
                    + "_dmarc IN TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@%s\"\n" % name))
    rev = ".".join(reversed(CLIENT.split(".")[:3])) + ".in-addr.arpa"
    out.append((rev, "$ORIGIN %s.\n$TTL 300\n" % rev + nsd.SOA
                + "%s IN PTR %s.\n" % (CLIENT.split(".")[3], HELO)))
    return out


def make_pool(pool, n, ndomains, length, rcpt, seed=1):
    """n messages as smtpload reads them: the envelope sender on the first
    line, then the message with CRLF.  Every fifth has body lines that
    begin with a dot (smtpload's dot-stuffing is then checked by DKIM)."""
    rnd = random.Random(seed)
    os.makedirs(pool)
    for i in range(n):
        domain = "sender%d.test" % (i % ndomains + 1)
        sender = "user%d@%s" % (i, domain)
        size = rnd.randint(length // 2, length * 3 // 2)
        lines, body = [], 0
        while body < size:
            line, words = "", []
            while len(line) < rnd.randint(40, 72):
                words.append(rnd.choice(WORDS))
                line = " ".join(words)
            if i % 5 == 0 and rnd.random() < 0.05:
                line = "." + line
            if rnd.random() < 0.1:
                line = ""
            lines.append(line)
            body += len(line) + 2
        head = ("From: User %d <%s>\r\nTo: <%s>\r\nSubject: %s %d\r\n"
                "Date: Mon, 07 Dec 2026 10:%02d:%02d +0000\r\n"
                "Message-ID: <%d.%d@%s>\r\nMIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=us-ascii\r\n"
                % (i, sender, rcpt, " ".join(rnd.choice(WORDS) for _ in range(4)), i,
                   i // 60 % 60, i % 60, seed, i, domain))
        with open(os.path.join(pool, "m%04d" % i), "w", newline="") as f:
            f.write(sender + "\n" + head + "\r\n" + "\r\n".join(lines) + "\r\n")


def sign_pool(pool, rsa_path, ed_priv):
    subprocess.run(["/usr/bin/python3", "-c", SIGNER, pool, rsa_path, ed_priv or ""],
                   check=True)


def run_load(port, rcpt, pool, messages, sessions, new_conn, timeout=DELIVERY_TIMEOUT):
    """smtpload; returns (error or None, wall seconds, its CPU seconds)."""
    cmd = [SMTPLOAD, "-p", str(port), "-t", rcpt, "-m", str(messages), "-s", str(sessions),
           "-b", CLIENT, "-H", HELO] + (["-N"] if new_conn else []) + [pool]
    t0 = time.time()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    # wait4 gives the CPU of smtpload and of its session processes.
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.time() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    out, err = p.stdout.read().decode(), p.stderr.read().decode()
    p.stdout.close()
    p.stderr.close()
    if p.returncode != 0:
        return "smtpload failed (%d): %s" % (p.returncode, (out + err)[-500:]), wall, 0
    return None, wall, ru.ru_utime + ru.ru_stime


def udp_in():
    """UDP datagrams received in this namespace so far (DNS queries and
    answers both arrive over lo)."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    return int(rows[1][rows[0].index("InDatagrams")])


class CpuSampler:
    """CPU seconds used by each program of the instance (and nsd) between
    start() and stop(), by PID from /proc every 0.5 s: a process that
    exits in between keeps the CPU of its last sample."""
    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, roots):
        self.roots = roots
        self.base, self.last, self.names = {}, {}, {}
        self.stop_flag = threading.Event()

    def scan(self):
        from posthorn import children_of
        out = {}
        for root in self.roots:
            for pid in [root] + children_of(root):
                try:
                    with open("/proc/%d/stat" % pid) as f:
                        st = f.read()
                    fields = st[st.rindex(")") + 2:].split()
                    out[pid] = (int(fields[11]) + int(fields[12])) / self.TICK
                    if pid not in self.names:
                        with open("/proc/%d/cmdline" % pid, "rb") as f:
                            arg0 = f.read().split(b"\0")[0].decode(errors="replace")
                        self.names[pid] = os.path.basename(arg0) or "?"
                except (OSError, ValueError, IndexError):
                    pass
        return out

    def start(self):
        self.base = self.scan()
        self.last = dict(self.base)
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stop_flag.wait(0.5):
            self.last.update(self.scan())

    def stop(self):
        self.stop_flag.set()
        self.thread.join()
        self.last.update(self.scan())
        by_name, pids = {}, {}
        for pid, t in self.last.items():
            name = self.names.get(pid, "?")
            by_name[name] = by_name.get(name, 0) + t - self.base.get(pid, 0)
            if t - self.base.get(pid, 0) > 0 or pid not in self.base:
                pids.setdefault(name, set()).add(pid)
        return by_name, pids


def header_fields(data):
    """The unfolded header fields of a message, as (lower-case name, value)."""
    head = data.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode(errors="replace")
    fields = []
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and fields:
            fields[-1][1] += " " + line.strip()
        elif ":" in line:
            name, value = line.split(":", 1)
            fields.append([name.strip().lower(), value.strip()])
    return fields


def verify(home, on, signatures):
    """Check every delivered message; (number as expected, first bad one)."""
    d = os.path.join(home, "Maildir", "new")
    good, bad = 0, None
    for name in os.listdir(d):
        with open(os.path.join(d, name), "rb") as f:
            fields = header_fields(f.read())
        ours = [v for k, v in fields if k == "authentication-results"
                and v.split(";", 1)[0].strip().lower() == HOST]
        if on:
            ok = (len(ours) == 1 and re.search(r"\bspf=pass\b", ours[0])
                  and ours[0].count("dkim=pass") == signatures
                  and re.search(r"\bdmarc=pass\b", ours[0]))
        else:
            ok = not ours
        if ok:
            good += 1
        elif bad is None:
            bad = "%s: %r" % (name, ours)
    return good, bad


def history_rows(inst):
    d = os.path.join(inst.spool, "dmarc")
    n = 0
    if os.path.isdir(d):
        for name in os.listdir(d):
            if name.startswith("history-"):
                with open(os.path.join(d, name), "rb") as f:
                    n += f.read().count(b"\n")
    return n


def set_checks(inst, on):
    inst.set_main({"smtpd_mail_authentication": "yes" if on else "no"})
    r = inst.mailctl("reload")
    if r.returncode != 0:
        sys.exit("mailctl reload failed: " + r.stderr)
    time.sleep(1)


def calibrate(pool, args):
    """The load against smtp-sink: what smtpload drives on its own."""
    from posthorn import free_port
    port = free_port()
    sink = subprocess.Popen([SMTP_SINK, "-u", "nobody", "127.0.0.1:%d" % port, "1024"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        t_sink0 = cpu_of(sink.pid)
        err, wall, cpu = run_load(port, "sink@example.test", pool, args.messages, args.sessions,
                                  args.new_conn)
        t_sink = cpu_of(sink.pid) - t_sink0
    finally:
        sink.kill()
        sink.wait()
    if err:
        print("  smtpload against smtp-sink: " + err)
        return
    print("  load generator against smtp-sink: %.0f msg/s, smtpload %.3f ms CPU/msg "
          "(%.2f CPUs), smtp-sink %.3f ms CPU/msg"
          % (args.messages / wall, cpu * 1000 / args.messages, cpu / wall,
             t_sink * 1000 / args.messages), flush=True)


def cpu_of(pid):
    with open("/proc/%d/stat" % pid) as f:
        st = f.read()
    fields = st[st.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CpuSampler.TICK


def one_run(mode, inst, dns, rcpt, home, pool, args, signatures, settle_s):
    """One measured run; a dict of figures, or None if it failed."""
    import smtp_bench
    on = mode == "on"
    smtp_bench.empty_maildir(home)
    smtp_bench.settle(settle_s)
    rows0, udp0 = history_rows(inst), udp_in()
    sampler = CpuSampler([inst.master_pid, dns.proc.pid])
    sampler.start()
    t0 = time.time()
    err, t_accept, gen_cpu = run_load(inst.port(25), rcpt, pool, args.messages, args.sessions,
                                      args.new_conn)
    if err:
        sampler.stop()
        print("  %-4s %s" % (mode, err), flush=True)
        return None
    end = t0 + DELIVERY_TIMEOUT
    while smtp_bench.count_new(home) < args.messages and time.time() < end:
        time.sleep(0.01)
    t_deliver = time.time() - t0
    cpu, pids = sampler.stop()
    queries = (udp_in() - udp0) / 2
    got = smtp_bench.count_new(home)
    if got < args.messages:
        print("  %-4s only %d of %d messages delivered" % (mode, got, args.messages))
        return None
    good, bad = verify(home, on, signatures)
    rows = history_rows(inst) - rows0
    n = args.messages
    res = {"acc": n / t_accept, "dlv": n / t_deliver, "cpu": cpu,
           "checkd_ms": cpu.get("checkd", 0) * 1000 / n, "checkd_procs": len(pids.get("checkd", ())),
           "gen_ms": gen_cpu * 1000 / n, "gen_cpus": gen_cpu / t_accept,
           "dns": queries / n, "rows": rows, "good": good}
    print("  %-4s accepted %6.0f msg/s   delivered %6.0f msg/s   (%.2f s, %.2f s)"
          % (mode, res["acc"], res["dlv"], t_accept, t_deliver), flush=True)
    server = sum(v for k, v in cpu.items() if k not in ("nsd",))
    print("       checkd %.3f ms CPU/msg in %d processes; all services %.3f ms/msg; "
          "smtpload %.3f ms/msg (%.2f CPUs); %.2f DNS queries/msg"
          % (res["checkd_ms"], res["checkd_procs"], server * 1000 / n, res["gen_ms"],
             res["gen_cpus"], res["dns"]), flush=True)
    expect = ("one Authentication-Results with spf=pass dkim=pass%s dmarc=pass"
              % (" x%d" % signatures if signatures > 1 else "")) if on \
        else "no Authentication-Results of ours"
    print("       verified: %d/%d messages with %s; %d history rows"
          % (good, n, expect, rows), flush=True)
    if good != n or (on and rows != n) or (not on and rows != 0):
        print("       NOT AS EXPECTED (first bad: %s)" % bad, flush=True)
        return None
    return res


# Where checkd's CPU goes, by the functions on the call chain of each
# sample (first match wins; the names are checkd's and its libraries').
PROFILE_CATEGORIES = (
    ("libunbound's resolver thread", ("start_thread",)),
    ("DNS lookups, checkd's side (dns_lookup, ub_process)", ("dns_lookup", "ub_process")),
    ("DKIM: decoding the public key (OpenSSL d2i)", ("ASN1_d2i_bio", "d2i_PUBKEY",
                                                     "OSSL_DECODER_from_bio")),
    ("DKIM: RSA/Ed25519 verify", ("RSA_verify", "EVP_PKEY_verify", "EVP_DigestVerify",
                                  "EVP_DigestVerifyInit", "EVP_DigestVerifyFinal",
                                  "EVP_PKEY_new_raw_public_key")),
    ("DKIM: the rest (parsing, canonicalization, hashing)", ("dkimverify_message",)),
    ("SPF evaluation (libspf2)", ("checkd_spf_run", "evaluate")),
    ("DMARC evaluation", ("dmarc_evaluate",)),
    ("history row (dmarchist)", ("checkd_record", "dmarchist_append")),
    ("IPC with smtpd, logging, the rest of checkd", ("checkd_serve", "server_main")),
)


def profile(inst, dns, rcpt, home, pool, args, checkd_ms):
    """One more "on" run with perf record --call-graph dwarf on the checkd
    processes: checkd's CPU per message, split by what it was doing."""
    import smtp_bench
    perf = shutil.which("perf")
    if perf is None:
        print("profile: perf is not installed")
        return
    # The checkd processes must exist before perf attaches: a short load
    # over as many sessions starts them (they stay for max_idle).
    run_load(inst.port(25), rcpt, pool, max(args.messages // 4, args.sessions * 10),
             args.sessions, args.new_conn)
    pids = inst.service_pids("checkd")
    smtp_bench.empty_maildir(home)
    smtp_bench.settle(min(args.settle, 10))
    data = os.path.join(inst.dir, "perf.data")
    rec = subprocess.Popen([perf, "record", "-F", "1999", "--call-graph", "dwarf,16384", "-p",
                            ",".join(map(str, pids)), "-o", data],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    cpu0 = sum(cpu_of(p) for p in pids)
    run_load(inst.port(25), rcpt, pool, args.messages, args.sessions, args.new_conn)
    end = time.time() + DELIVERY_TIMEOUT
    while smtp_bench.count_new(home) < args.messages and time.time() < end:
        time.sleep(0.01)
    cpu = sum(cpu_of(p) for p in pids) - cpu0
    later = set(inst.service_pids("checkd")) - set(pids)
    rec.send_signal(2)
    rec.wait()
    r = subprocess.run([perf, "script", "-i", data, "-F", "tid,ip,sym,dso"], capture_output=True,
                       text=True)
    counts, total, chain = {}, 0, None

    def add(chain):
        names = set(chain)
        # A frame of libcrypto without a name right under dkim_sig_process:
        # its internal Ed25519 code, reached through a tail call of
        # EVP_DigestVerify, which then is not on the stack.
        for below, frame in zip(chain, chain[1:]):
            if frame == "dkim_sig_process" and below == "[unknown] libcrypto":
                names.add("EVP_DigestVerify")
        for title, marks in PROFILE_CATEGORIES:
            if names.intersection(marks):
                break
        else:
            title = "elsewhere"
        counts[title] = counts.get(title, 0) + 1

    for line in r.stdout.splitlines():
        if not line.strip():
            continue
        if line.startswith("\t"):         # a frame; a sample starts with its tid
            if chain is not None:
                # "ADDRESS SYMBOL (DSO)": the symbol, or [unknown] and the DSO's name
                m = re.match(r"\s*\S+\s+(.*?)\s+\((.*)\)$", line)
                sym = m.group(1) if m else ""
                if m and sym == "[unknown]":
                    sym += " " + os.path.basename(m.group(2)).split(".so")[0]
                chain.append(sym)
            continue
        if chain is not None:
            add(chain)
            total += 1
        chain = []
    if chain is not None:
        add(chain)
        total += 1
    print("profile: checkd (%d processes%s) used %.3f ms of CPU per message under perf; "
          "%d samples; ms/msg below are shares of the timed runs' median, %.3f:"
          % (len(pids), ", %d more started during the run not profiled" % len(later)
             if later else "", cpu * 1000 / args.messages, total, checkd_ms))
    for title, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print("  %5.1f%%  %.3f ms/msg  %s" % (100 * n / total, checkd_ms * n / total, title))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--messages", type=int, default=10000)
    ap.add_argument("-s", "--sessions", type=int, default=8)
    ap.add_argument("-r", "--runs", type=int, default=3)
    ap.add_argument("-l", "--length", type=int, default=4096, help="body bytes per message")
    ap.add_argument("--pool", type=int, default=50, help="distinct signed messages")
    ap.add_argument("--domains", type=int, default=5, help="sender domains")
    ap.add_argument("--ed25519", action="store_true", help="sign with ed25519-sha256 too")
    ap.add_argument("--new-conn", action="store_true", help="one connection per message")
    ap.add_argument("--settle", type=float, default=65.0,
                    help="seconds to wait (after sync) before each run (default %(default)s)")
    ap.add_argument("--profile", action="store_true",
                    help="an extra untimed run with checks on under perf record")
    ap.add_argument("--keep", action="store_true", help="keep the instance's directory")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("check_bench.py: run as root")
    for path, why in ((SMTPLOAD, "make build/bench/smtpload"), (SMTP_SINK, "Debian's postfix")):
        if not os.access(path, os.X_OK):
            sys.exit("check_bench.py: %s missing (%s)" % (path, why))
    if nsd.missing():
        sys.exit("check_bench.py: needs nsd")
    mods = "import dkim" + (", nacl" if args.ed25519 else "")
    if subprocess.run(["/usr/bin/python3", "-c", mods], capture_output=True).returncode:
        sys.exit("check_bench.py: needs python3-dkim%s for /usr/bin/python3"
                 % (" and python3-nacl" if args.ed25519 else ""))
    netns.enter()       # from here on in a namespace of our own

    import posthorn
    signatures = 2 if args.ed25519 else 1
    rsa_path = None
    dns = inst = None
    failed = False
    try:
        inst = posthorn.Instance(main_conf={
            "smtpd_client_connection_count_limit": "0",
            "dnssec_trust_anchor_file": "",
            "mynetworks": "127.0.0.0/8",
            "smtpd_mail_authentication": "yes",
        })
        user, home = inst.add_user()
        rcpt = "%s@example.test" % user
        work = os.path.join(inst.dir, "bench")
        os.makedirs(work)
        rsa_path, rsa_pub, ed_priv, ed_pub = make_keys(work, args.ed25519)
        zl = zones(args.domains, rsa_pub, ed_pub)
        dns = nsd.Nsd(zl)
        inst.set_main({"dns_stub_zones": " ".join("%s=127.0.0.1@%d" % (z[0], dns.port)
                                                  for z in zl)
                       + " 127.in-addr.arpa=127.255.255.255"})
        pool = os.path.join(work, "pool")
        t = time.time()
        make_pool(pool, args.pool, args.domains, args.length, rcpt)
        sign_pool(pool, rsa_path, ed_priv)
        size = sum(os.path.getsize(os.path.join(pool, f)) for f in os.listdir(pool)) / args.pool
        print("%d messages (a pool of %d, %d sender domains, %.0f bytes on average, signed "
              "rsa-sha256%s in %.1f s), %d sessions from %s, %s; %d runs each, alternating"
              % (args.messages, args.pool, args.domains, size,
                 " and ed25519-sha256" if args.ed25519 else "", time.time() - t, args.sessions,
                 CLIENT, "a new connection per message" if args.new_conn else
                 "connections reused", args.runs), flush=True)
        calibrate(pool, args)
        r = inst.start()
        if r.returncode != 0:
            sys.exit("posthorn start failed: " + r.stderr)
        # Untimed: the setup must check and pass every message.
        import smtp_bench
        smtp_bench.empty_maildir(home)
        warm = max(args.pool * 2, args.sessions * 10)
        err, _, _ = run_load(inst.port(25), rcpt, pool, warm, args.sessions, args.new_conn)
        end = time.time() + 60
        while not err and smtp_bench.count_new(home) < warm and time.time() < end:
            time.sleep(0.05)
        good, bad = verify(home, True, signatures) if not err else (0, err)
        print("  warm-up with checks on: %d/%d messages delivered and passing" % (good, warm),
              flush=True)
        if good != warm:
            print("  first bad: %s" % bad)
            print("\n".join(inst.log().splitlines()[-20:]))
            failed = True
            return
        results = {"on": [], "off": []}
        state = True
        for i in range(args.runs):
            print("run %d" % (i + 1), flush=True)
            for mode in ("on", "off"):
                if state != (mode == "on"):
                    state = mode == "on"
                    set_checks(inst, state)
                res = one_run(mode, inst, dns, rcpt, home, pool, args, signatures, args.settle)
                if res is None:
                    failed = True
                else:
                    results[mode].append(res)
        report(results, args)
        if args.profile:
            if not state:
                set_checks(inst, True)
            profile(inst, dns, rcpt, home, pool, args,
                    statistics.median(r["checkd_ms"] for r in results["on"])
                    if results["on"] else 0)
        log = inst.log()
        for bad in ("panic", "forbidden system call", "checkd did not answer"):
            if bad in log:
                print("the log says %r (%d times)" % (bad, log.count(bad)))
    finally:
        if inst:
            inst.stop()
        if dns:
            dns.stop()
        if inst:
            if args.keep:
                os.environ["POSTHORN_KEEP"] = "1"
            inst.cleanup()
        sys.exit(1 if failed else 0)


def report(results, args):
    print("medians:")
    med = {}
    for mode, runs in results.items():
        if not runs:
            continue
        m = med[mode] = {k: statistics.median(r[k] for r in runs)
                         for k in ("acc", "dlv", "checkd_ms", "gen_ms", "gen_cpus", "dns")}
        print("  %-4s accepted %6.0f msg/s (%s)   delivered %6.0f msg/s (%s)"
              % (mode, m["acc"], "-".join("%.0f" % r["acc"] for r in runs),
                 m["dlv"], "-".join("%.0f" % r["dlv"] for r in runs)))
    if "on" in med and "off" in med:
        on, off = med["on"], med["off"]
        pairs = list(zip(results["on"], results["off"]))
        print("on/off: accepted %.2f, delivered %.2f (per round: accepted %s, delivered %s)"
              % (on["acc"] / off["acc"], on["dlv"] / off["dlv"],
                 " ".join("%.2f" % (a["acc"] / b["acc"]) for a, b in pairs),
                 " ".join("%.2f" % (a["dlv"] / b["dlv"]) for a, b in pairs)))
        print("CPU ms per message, median of the runs (on / off):")
        names = sorted(set(k for r in results["on"] + results["off"] for k in r["cpu"]))
        for name in names:
            a = statistics.median(r["cpu"].get(name, 0) for r in results["on"]) * 1000
            b = statistics.median(r["cpu"].get(name, 0) for r in results["off"]) * 1000
            if a / args.messages >= 0.005 or b / args.messages >= 0.005:
                print("  %-10s %.3f / %.3f" % (name, a / args.messages, b / args.messages))
        print("  %-10s %.3f / %.3f" % ("smtpload", on["gen_ms"], off["gen_ms"]))


if __name__ == "__main__":
    main()
