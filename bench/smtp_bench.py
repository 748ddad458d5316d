#!/usr/bin/env python3
"""smtp_bench.py - inbound throughput of Posthorn next to Postfix, measured in
one run: messages/s accepted over SMTP and messages/s delivered into a
Maildir.

    bench/smtp_bench.py [-n MESSAGES] [-l BYTES] [-s SESSIONS] [--new-conn]
                        [-r RUNS] [--settle SECONDS] [--no-postfix] [--keep]

Both systems get the same load from Postfix's smtp-source (Debian's postfix
package): MESSAGES messages of BYTES bytes of body to one local recipient
over SESSIONS concurrent sessions, each session reusing its connection
(smtp-source -d) unless --new-conn is given.  "Accepted" is the time until
smtp-source has had its last 250; "delivered" the time until the last
message is a file in the recipient's Maildir/new.

Posthorn runs as a throwaway instance (mailctl init on a free loopback port
base, t/lib/posthorn.py, programs from $POSTHORN_BUILD or ./build); Postfix
as a private instance: its own config, queue and data directories under the
same temporary directory, smtpd on a free loopback port, Maildir delivery
(home_mailbox = Maildir/) as another throwaway user.  Both offer STARTTLS
with the same certificate (Posthorn's instance's), as each does by default,
so both smtpd start-ups set up TLS; smtp-source does not use it.  The runs alternate
(Posthorn, Postfix, Posthorn, ...); before each the recipient's Maildir is
emptied (its files moved aside, not deleted), the disk synced and the
machine left alone for --settle seconds (default 65: on ext4 without a
journal, as here, a file created within 60 s of an inode being freed skips
past every such inode, RECENTCY_MIN in the kernel's fs/ext4/ialloc.c, so
a run that starts sooner pays for the other system's deletions)
(shared/notes/performance.md: the machine is noisy, so compare medians
inside one interleaved run).  Prints each run and then the medians and the
Posthorn/Postfix ratios.  Never passes or fails on time: exit status 1 only
if a run could not complete (messages not accepted or not delivered).

Needs root (the instances bind ports, create users and run as their own
accounts).  Every process started is killed by PID at the end.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "t", "lib"))
from posthorn import Instance, free_port  # noqa: E402
import postfixinst  # noqa: E402

SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
DELIVERY_TIMEOUT = 600


def PostfixInstance(base, port, tls, hostname="pf.example.test"):
    """A private Postfix: config, queue and data under base, smtpd on
    127.0.0.1:port offering STARTTLS with tls = (certificate, key) as a
    default Debian Postfix does, Maildir delivery (t/lib/postfixinst.py)."""
    return postfixinst.Postfix(base, "127.0.0.1", port, hostname, "example.test", tls=tls)


def instance_tls(inst):
    """The Posthorn instance's certificate and key (mailctl init makes them)."""
    return tuple(os.path.join(inst.etc, "tls", f) for f in ("cert.pem", "key.pem"))


def empty_maildir(home):
    """Move the last run's messages out of the Maildir, into home/done/
    (removed with the instance at the end): thousands of deletions right
    before a run would slow the file creations of both systems for a
    minute (ext4 without a journal skips recently freed inodes, see
    shared/notes/performance.md), which measures the benchmark, not them."""
    done = os.path.join(home, "done")
    os.makedirs(done, exist_ok=True)
    for sub in ("new", "cur", "tmp"):
        d = os.path.join(home, "Maildir", sub)
        if os.path.isdir(d):
            for name in os.listdir(d):
                os.rename(os.path.join(d, name), os.path.join(done, sub + "." + name))


def count_new(home):
    try:
        return len(os.listdir(os.path.join(home, "Maildir", "new")))
    except OSError:
        return 0


SETTLE = 65.0   # > 60 s: see the module comment


def settle(seconds=SETTLE):
    """After the last run's thousands of deletions, a file created on this
    disk costs far more for a minute (shared/notes/performance.md; ext4
    without a journal avoids inodes freed in the last 60 s, and scans past
    each of them): whichever system ran right after the other's deletions
    was slowed.  So: sync (the window is 300 s for inode table blocks still
    dirty), then wait past the 60 s, so that neither inherits the other's."""
    subprocess.run(["sync"])
    time.sleep(seconds)


def send_load(port, rcpt, messages, length, sessions, reuse=True, timeout=DELIVERY_TIMEOUT):
    """smtp-source: messages of length body bytes to rcpt at 127.0.0.1:port
    over sessions concurrent sessions (each reusing its connection if
    reuse); returns None once every message had its 250, else the error."""
    cmd = [SMTP_SOURCE, "-s", str(sessions), "-m", str(messages), "-l", str(length),
           "-f", "bench@example.org", "-t", rcpt, "-M", "client.example.org"]
    if reuse:
        cmd.append("-d")
    cmd.append("127.0.0.1:%d" % port)
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        return "smtp-source failed (%d): %s" % (r.returncode, (r.stdout + r.stderr)[-500:])
    return None


def one_run(name, port, rcpt, home, args):
    """Send the load; return (accepted msg/s, delivered msg/s) or None."""
    empty_maildir(home)
    settle(args.settle)
    t0 = time.time()
    err = send_load(port, rcpt, args.messages, args.length, args.sessions, not args.new_conn)
    t_accept = time.time() - t0
    if err:
        print("  %s: %s" % (name, err))
        return None
    end = t0 + DELIVERY_TIMEOUT
    while count_new(home) < args.messages and time.time() < end:
        time.sleep(0.01)
    t_deliver = time.time() - t0
    got = count_new(home)
    if got < args.messages:
        print("  %s: only %d of %d messages delivered" % (name, got, args.messages))
        return None
    acc, dlv = args.messages / t_accept, args.messages / t_deliver
    print("  %-8s accepted %7.0f msg/s   delivered %7.0f msg/s   (%.2f s, %.2f s)"
          % (name, acc, dlv, t_accept, t_deliver), flush=True)
    return acc, dlv


def print_medians(results, first, second="delivered", title="medians:"):
    """results: {system: [(first-figure, second-figure), ...]}; print the
    medians of each system and the Posthorn/Postfix ratios."""
    print(title)
    med = {}
    for name, runs in results.items():
        if runs:
            med[name] = (statistics.median(a for a, _ in runs),
                         statistics.median(d for _, d in runs))
            print("  %-8s %s %7.0f msg/s   %s %7.0f msg/s"
                  % (name, first, med[name][0], second, med[name][1]))
    if "posthorn" in med and "postfix" in med:
        (pa, pd), (fa, fd) = med["posthorn"], med["postfix"]
        print("posthorn/postfix: %s %.2fx, %s %.2fx" % (first, pa / fa, second, pd / fd))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--messages", type=int, default=5000)
    ap.add_argument("-l", "--length", type=int, default=4096, help="body bytes per message")
    ap.add_argument("-s", "--sessions", type=int, default=10)
    ap.add_argument("--new-conn", action="store_true", help="one connection per message")
    ap.add_argument("-r", "--runs", type=int, default=3)
    ap.add_argument("--no-postfix", action="store_true", help="measure Posthorn only")
    ap.add_argument("--keep", action="store_true", help="keep the instances' directory")
    ap.add_argument("--settle", type=float, default=SETTLE,
                    help="seconds to wait (after sync) before each run (default %(default)s)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("smtp_bench.py: run as root")
    if not os.access(SMTP_SOURCE, os.X_OK):
        sys.exit("smtp_bench.py: smtp-source not found (make deps installs postfix)")

    inst = Instance(main_conf={
        # The load comes from one address; the benchmark is not about limits.
        "smtpd_client_connection_count_limit": "0",
        # 127.0.0.1 is localhost[127.0.0.1], as on any install (libunbound's
        # built-in loopback zones) and as for the Postfix next to it (from
        # /etc/hosts), not the test instances' failing reverse zone.
        "dns_stub_zones": "",
    })
    pf = None
    failed = False
    try:
        r = inst.start()
        if r.returncode != 0:
            sys.exit("posthorn start failed: " + r.stderr)
        ph_user, ph_home = inst.add_user()
        systems = [("posthorn", inst.port(25), "%s@mail.example.test" % ph_user, ph_home)]
        if not args.no_postfix:
            pf_user, pf_home = inst.add_user()
            pf = PostfixInstance(os.path.join(inst.dir, "postfix"), free_port(), instance_tls(inst))
            pf.start()
            systems.append(("postfix", pf.port, "%s@%s" % (pf_user, pf.hostname), pf_home))
        print("%d messages of %d bytes, %d sessions, %s; %d runs each, alternating"
              % (args.messages, args.length, args.sessions,
                 "a new connection per message" if args.new_conn else "connections reused",
                 args.runs), flush=True)
        results = {name: [] for name, _, _, _ in systems}
        for i in range(args.runs):
            print("run %d" % (i + 1), flush=True)
            for name, port, rcpt, home in systems:
                res = one_run(name, port, rcpt, home, args)
                if res is None:
                    failed = True
                else:
                    results[name].append(res)
        print_medians(results, "accepted")
    finally:
        if pf:
            pf.stop()
        inst.stop()
        if args.keep:
            os.environ["POSTHORN_KEEP"] = "1"
        inst.cleanup()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
