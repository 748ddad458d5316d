#!/usr/bin/env python3
"""relay_bench.py - outbound (relay) throughput of Posthorn next to Postfix,
measured in one run: messages/s accepted from a mynetworks client and
messages/s sent on to the remote domain's MX.

    bench/relay_bench.py [-n MESSAGES] [-s BYTES] [--sessions N] [-r RUNS]
                         [--mode both|reuse|noreuse] [--settle SECONDS]
                         [--cpu] [--no-postfix] [--keep]

The load is smtp_bench.py's: Postfix's smtp-source sends MESSAGES messages
(default 3000) of BYTES bytes of body (default 4096) over N sessions
(default 10, each reusing its connection) from 127.0.0.1, which is in
both systems' mynetworks, to bench@sink.test.  sink.test is a remote
domain: its MX mx.sink.test is 127.0.0.77 in a zone served by nsd
(t/lib/nsd.py), and there smtp-sink (postfix package) takes everything
and counts it.  Both MTAs find the sink the same way, through that one
DNS server (MX, then A), and connect to the sink's port by their
smtp_tcp_port parameter; neither uses port 25.  The nsd listens on
127.0.0.1:53: Postfix's smtp asks the libc resolver, which cannot use
another port; Postfix runs in a mount namespace of its own where
/etc/resolv.conf (a bind mount) names 127.0.0.1, and Posthorn has the
zone as a dns_stub_zones entry at 127.0.0.1@53.

"Accepted" is the time until smtp-source has had its last 250; "sent" the
time until the sink has counted all MESSAGES messages ("." received).
After each run the queues must be empty and the sink must have counted
exactly MESSAGES messages (none lost, none sent twice); otherwise the
benchmark prints what is wrong instead of figures and exits 1.  Each run
also prints how many SMTP sessions the sink saw: the reuse check.

Two modes (--mode both, the default): outbound connection reuse on (both
systems' defaults: Posthorn's smtp_connection_cache_time_limit = 2s,
Postfix's smtp_connection_cache_on_demand = yes) and off (Posthorn's
smtp_connection_cache_time_limit = 0, Postfix's
smtp_connection_cache_on_demand = no).  Concurrency is each system's
default (printed).  Both offer STARTTLS with the same certificate and
use it when offered (each system's default "may"); the sink offers none.

Every run starts both systems afresh in the mode it measures; runs
alternate (Posthorn, Postfix, ...), each after a sync and --settle seconds
(default 30, shared/notes/performance.md).  --cpu prints the CPU seconds
of each system's processes per run (from /proc; processes that exited
during the run are counted in their parent's "exited" figure).  Prints
each run and then the medians and the Posthorn/Postfix ratios per mode.
Never passes or fails on time.

Needs root.  Every process started is killed by PID at the end.
"""
import argparse
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "t", "lib"))
sys.path.insert(0, os.path.join(TOP, "bench"))
from posthorn import Instance, children_of, free_port  # noqa: E402
import nsd  # noqa: E402
import postfixinst  # noqa: E402
from smtptest import free_port_on  # noqa: E402
from smtp_bench import SETTLE, SMTP_SOURCE, print_medians, send_load, settle  # noqa: E402

SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
POSTCONF = shutil.which("postconf") or "/usr/sbin/postconf"
SINK_ADDR = "127.0.0.77"
RCPT = "bench@sink.test"
ZONE = "$ORIGIN test.\n$TTL 3600\n" + nsd.SOA + """
ns IN A 127.0.0.1
sink IN MX 10 mx.sink.test.
mx.sink IN A %s
""" % SINK_ADDR
STALL = 60          # give up when the sink counted nothing new for this long
CONCURRENCY = ("initial_destination_concurrency", "smtp_destination_concurrency_limit",
               "default_process_limit")
MODES = {"reuse": "connection reuse on", "noreuse": "connection reuse off"}


class Nsd(nsd.Nsd):
    """t/lib/nsd.py's server, restarted with response rate limiting off:
    nsd answers at most 200 queries/s to one /24 by default, dropping or
    truncating the rest, and Postfix, which caches no DNS answer, asks for
    the MX and the A record of every message (2 s resolver timeouts)."""

    def __init__(self, zones, port):
        super().__init__(zones, port)
        conf = os.path.join(self.dir, "nsd.conf")
        with open(conf) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write(text.replace("server:\n", "server:\n    rrl-ratelimit: 0\n", 1))
        kids = nsd._children_of(self.proc.pid)
        self.proc.terminate()
        self.proc.wait()
        end = time.time() + 5
        while any(nsd._running(k) for k in kids) and time.time() < end:
            time.sleep(0.05)
        for k in kids:                      # orphans of ours (posthorn.py's subreaper)
            try:
                os.waitpid(k, os.WNOHANG)
            except ChildProcessError:
                pass
        self.proc = subprocess.Popen([nsd.which("nsd"), "-d", "-c", conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.time() + 15
        while time.time() < end and self.proc.poll() is None:
            if self.answers(2000):
                return
            time.sleep(0.2)
        raise RuntimeError("nsd did not start again with rrl-ratelimit: 0")

    def answers(self, n):
        """Whether n MX queries for sink.test, sent one after another, all
        get a full (not truncated) answer within 0.2 s."""
        q = nsd._wire_name("sink.test") + struct.pack(">HH", 15, 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.2)
        try:
            for i in range(n):
                s.sendto(struct.pack(">HHHHHH", i, 0, 1, 0, 0, 0) + q, ("127.0.0.1", self.port))
                r = s.recv(4096)
                if r[:2] != struct.pack(">H", i) or r[2] & 2:
                    return False
        except socket.timeout:
            return False
        finally:
            s.close()
        return True


class Sink:
    """smtp-sink on SINK_ADDR:port; counts() reads its -c counters."""

    def __init__(self, port, out):
        self.port, self.out = port, out
        with open(out, "wb") as f:
            self.proc = subprocess.Popen([SMTP_SINK, "-c", "-u", "nobody",
                                          "%s:%d" % (SINK_ADDR, port), "1024"],
                                         stdin=subprocess.DEVNULL, stdout=f,
                                         stderr=subprocess.STDOUT)
        end = time.time() + 10
        while time.time() < end:
            try:
                socket.create_connection((SINK_ADDR, port), 1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("smtp-sink did not start: " + open(out, errors="replace").read())

    def counts(self):
        """(sessions ended, messages received) so far."""
        with open(self.out, "rb") as f:
            f.seek(max(0, os.path.getsize(self.out) - 256))
            m = re.findall(rb"sess=(\d+) quit=\d+ mesg=(\d+)", f.read())
        return (int(m[-1][0]), int(m[-1][1])) if m else (0, 0)

    def connections(self):
        """Established TCP connections to the sink (from /proc/net/tcp)."""
        me = "%s:%04X" % ("".join("%02X" % int(b) for b in reversed(SINK_ADDR.split("."))),
                          self.port)
        with open("/proc/net/tcp") as f:
            return sum(1 for line in f if line.split()[1:2] == [me] and line.split()[3] == "01")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def queue_files(spool):
    """Files left in a queue (Posthorn's or Postfix's: the same names)."""
    n = 0
    for sub in ("maildrop", "incoming", "active", "deferred", "hold", "corrupt"):
        for _, _, files in os.walk(os.path.join(spool, sub)):
            n += len(files)
    return n


def cpu_of(pids):
    """{program: CPU seconds} of pids, and the CPU of their exited children
    (cutime + cstime) as "exited"."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                st = f.read()
        except OSError:
            continue
        name = st[st.index("(") + 1:st.rindex(")")]
        f = st[st.rindex(")") + 2:].split()
        out[name] = out.get(name, 0) + (int(f[11]) + int(f[12])) / tick
        out["exited"] = out.get("exited", 0) + (int(f[13]) + int(f[14])) / tick
    return out


class PosthornSide:
    name = "posthorn"

    def __init__(self, sink_port):
        self.inst = Instance(main_conf={
            # The load comes from one address; the benchmark is not about limits.
            "smtpd_client_connection_count_limit": "0",
            # 127.0.0.1 is localhost[127.0.0.1], as for Postfix (smtp_bench.py).
            "dns_stub_zones": "test=127.0.0.1@53",
            "dnssec_trust_anchor_file": "",
            "smtp_tcp_port": str(sink_port),
        })
        self.port, self.spool = self.inst.port(25), self.inst.spool

    def restart(self, mode):
        if self.inst.master_pid:
            self.inst.stop()
        path = os.path.join(self.inst.etc, "main.conf")
        with open(path) as f:
            lines = [l for l in f if not l.startswith("smtp_connection_cache_time_limit ")]
        if mode == "noreuse":
            lines.append("smtp_connection_cache_time_limit = 0\n")
        with open(path, "w") as f:
            f.writelines(lines)
        r = self.inst.start()
        if r.returncode != 0:
            raise RuntimeError("posthorn start failed: " + r.stderr)

    def pids(self):
        return [self.inst.master_pid] + children_of(self.inst.master_pid)

    def settings(self):
        """The concurrency parameters: (values, all defaults?)."""
        d = dict(re.findall(r"^(\S+) = (.*)$", self.inst.mailctl("check", "-d").stdout, re.M))
        n = dict(re.findall(r"^(\S+) = (.*)$", self.inst.mailctl("check", "-n").stdout, re.M))
        d.update(n)
        vals = [re.sub(r"\$(\w+)", lambda m: d.get(m.group(1), m.group(0)), d.get(k, "?"))
                for k in CONCURRENCY]
        return vals, not any(k in n for k in CONCURRENCY)

    def log_tail(self):
        return "\n".join(self.inst.log().splitlines()[-15:])

    def stop(self):
        self.inst.stop()


class PostfixSide:
    name = "postfix"

    def __init__(self, base, sink_port, tls):
        resolv = os.path.join(base, "resolv.conf")
        self.pf = ResolvPostfix(resolv, os.path.join(base, "postfix"), "127.0.0.1", free_port(),
                                "pf.example.test", "example.test", None, tls)
        with open(resolv, "w") as f:
            f.write("nameserver 127.0.0.1\noptions timeout:2 attempts:2\n")
        self.postconf("-e", "smtp_dns_support_level = enabled", "smtp_tcp_port = %d" % sink_port)
        self.port, self.spool = self.pf.port, self.pf.queue

    def postconf(self, *args):
        r = subprocess.run([POSTCONF, "-c", self.pf.etc] + list(args), capture_output=True,
                           text=True)
        if r.returncode != 0:
            raise RuntimeError("postconf %s: %s" % (" ".join(args), r.stderr))
        return r.stdout

    def restart(self, mode):
        if self.pf.master_pid():
            self.pf.stop()
        if mode == "noreuse":
            self.postconf("-e", "smtp_connection_cache_on_demand = no")
        else:
            self.postconf("-X", "smtp_connection_cache_on_demand")
        self.pf.start()

    def pids(self):
        pid = self.pf.master_pid()
        return [pid] + children_of(pid) if pid else []

    def settings(self):
        vals = self.postconf("-x", "-h", *CONCURRENCY).split()
        return vals, not self.postconf("-n", *CONCURRENCY).strip()

    def log_tail(self):
        return "\n".join(self.pf.log().splitlines()[-15:])

    def stop(self):
        self.pf.stop()


class ResolvPostfix(postfixinst.Postfix):
    """t/lib/postfixinst.py's Postfix, started in a mount namespace of its
    own whose /etc/resolv.conf is the file resolv (bind-mounted)."""

    def __init__(self, resolv, *args):
        self.resolv = resolv
        super().__init__(*args)

    def postfix(self, *args):
        if args[:1] != ("start",):
            return super().postfix(*args)
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                               'mount --bind "$0" /etc/resolv.conf && exec "$@"', self.resolv,
                               postfixinst.POSTFIX, "-c", self.etc] + list(args),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=120)


def one_run(side, mode, sink, args):
    """Restart side in mode, send the load; (accepted, sent msg/s) or an
    error string."""
    side.restart(mode)
    settle(args.settle)
    base_sess, base_mesg = sink.counts()
    cpu0 = cpu_of(side.pids()) if args.cpu else None
    t0 = time.time()
    err = send_load(side.port, RCPT, args.messages, args.size, args.sessions)
    t_accept = time.time() - t0
    if err:
        return err
    last, last_t = 0, time.time()
    while True:
        got = sink.counts()[1] - base_mesg
        if got >= args.messages:
            break
        if got != last:
            last, last_t = got, time.time()
        elif time.time() - last_t > STALL:
            return ("the sink counted only %d of %d messages (nothing new for %d s); %d files "
                    "in the queue; log tail:\n%s"
                    % (got, args.messages, STALL, queue_files(side.spool), side.log_tail()))
        time.sleep(0.01)
    t_sent = time.time() - t0
    end = time.time() + 30
    while queue_files(side.spool) and time.time() < end:
        time.sleep(0.05)
    cpu1 = cpu_of(side.pids()) if args.cpu else None
    # Idle cached sessions end within the cache time limit (2 s in both).
    end = time.time() + 15
    while sink.connections() and time.time() < end:
        time.sleep(0.1)
    time.sleep(0.2)
    sess, mesg = sink.counts()
    left = queue_files(side.spool)
    if left or mesg - base_mesg != args.messages:
        return ("the sink counted %d messages for %d sent; %d files left in the queue; "
                "log tail:\n%s" % (mesg - base_mesg, args.messages, left, side.log_tail()))
    acc, snt = args.messages / t_accept, args.messages / t_sent
    print("  %-8s %-21s accepted %6.0f msg/s   sent %6.0f msg/s   (%.2f s, %.2f s; "
          "%d sessions to the sink)" % (side.name, MODES[mode], acc, snt, t_accept, t_sent,
                                       sess - base_sess), flush=True)
    if cpu0 is not None:
        cpu = {k: v - cpu0.get(k, 0) for k, v in cpu1.items()}
        print("           CPU s: " + ", ".join("%s %.2f" % kv for kv in
                                                sorted(cpu.items(), key=lambda kv: -kv[1])
                                                if kv[1] >= 0.005)
              + "; total %.2f" % sum(cpu.values()), flush=True)
    return acc, snt


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--messages", type=int, default=3000)
    ap.add_argument("-s", "-l", "--size", type=int, default=4096, help="body bytes per message")
    ap.add_argument("--sessions", type=int, default=10, help="smtp-source sessions")
    ap.add_argument("-r", "--runs", type=int, default=3)
    ap.add_argument("--mode", choices=("both", "reuse", "noreuse"), default="both")
    ap.add_argument("--settle", type=float, default=SETTLE,
                    help="seconds to wait (after sync) before each run (default %(default)s)")
    ap.add_argument("--cpu", action="store_true", help="print CPU seconds per process name")
    ap.add_argument("--no-postfix", action="store_true", help="measure Posthorn only")
    ap.add_argument("--keep", action="store_true", help="keep the instances' directory")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("relay_bench.py: run as root")
    for prog in (SMTP_SOURCE, SMTP_SINK):
        if not os.access(prog, os.X_OK):
            sys.exit("relay_bench.py: %s not found (make deps installs postfix)" % prog)
    if nsd.missing():
        sys.exit("relay_bench.py: needs nsd (make deps installs it)")
    if not args.no_postfix and postfixinst.missing():
        sys.exit("relay_bench.py: needs postfix (make deps installs it)")
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", 53))
        except OSError:
            sys.exit("relay_bench.py: 127.0.0.1:53 is in use; the DNS server of the test "
                     "zone needs it (Postfix's resolver cannot ask another port)")
        finally:
            s.close()

    modes = ["reuse", "noreuse"] if args.mode == "both" else [args.mode]
    dns = sink = None
    sides = []
    failed = False
    try:
        dns = Nsd([("test.", ZONE)], port=53)
        sink_port = free_port_on([SINK_ADDR])
        sides.append(PosthornSide(sink_port))
        sink = Sink(sink_port, os.path.join(sides[0].inst.dir, "sink.out"))
        if not args.no_postfix:
            # TLS as each system has it by default: STARTTLS offered (with
            # Posthorn's certificate) and used when offered ("may").
            sides.append(PostfixSide(sides[0].inst.dir, sink_port,
                                     tuple(os.path.join(sides[0].inst.etc, "tls", f)
                                           for f in ("cert.pem", "key.pem"))))
        print("%d messages of %d bytes from smtp-source (%d sessions, connections reused, "
              "from 127.0.0.1 in mynetworks) to %s;\nMX mx.sink.test = %s (nsd on 127.0.0.1:53 "
              "for both), smtp-sink on %s:%d (smtp_tcp_port in both); %d runs each, alternating"
              % (args.messages, args.size, args.sessions, RCPT, SINK_ADDR, SINK_ADDR, sink_port,
                 args.runs))
        for side in sides:
            vals, dflt = side.settings()
            print("%s concurrency (%s): %s" % (side.name, "defaults" if dflt else "NOT defaults",
                                              ", ".join("%s=%s" % kv
                                                        for kv in zip(CONCURRENCY, vals))))
        sys.stdout.flush()
        results = {m: {side.name: [] for side in sides} for m in modes}
        for i in range(args.runs):
            print("run %d" % (i + 1), flush=True)
            for mode in modes:
                for side in sides:
                    res = one_run(side, mode, sink, args)
                    if isinstance(res, str):
                        print("ERROR: %s, %s, run %d: %s" % (side.name, MODES[mode], i + 1, res),
                              flush=True)
                        failed = True
                        break
                    results[mode][side.name].append(res)
                if failed:
                    break
            if failed:
                break
        if not failed:
            for mode in modes:
                print_medians(results[mode], "accepted", "sent", "medians, %s:" % MODES[mode])
    finally:
        for side in sides:
            try:
                side.stop()
            except Exception as e:          # noqa: BLE001 - clean up the rest regardless
                print("stopping %s: %s" % (side.name, e))
        if sink:
            sink.stop()
        if dns:
            dns.stop()
        if args.keep:
            os.environ["POSTHORN_KEEP"] = "1"
        if sides:
            sides[0].inst.cleanup()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
