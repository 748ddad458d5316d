#!/usr/bin/env python3
"""sendmail_bench.py - local submission speed of Posthorn next to Postfix,
in one run: how many sendmail invocations a second a script can make, and
how soon the messages are in the Maildir.

    bench/sendmail_bench.py [-n MESSAGES] [-p PARALLEL] [-r RUNS] [--no-postfix]

Each system gets MESSAGES invocations of its own sendmail ("sendmail -C
CONFDIR user", a 1 KB message on stdin), PARALLEL of them running at a
time, as root.  "Submitted" is the time until the last sendmail has
exited (each exits only once its message is durable: Posthorn's maildrop
file is fsynced and the file system synced, Postfix's postdrop fsyncs its
file); "delivered" the time until the last message is in Maildir/new.
Posthorn is a throwaway instance (t/lib/posthorn.py); Postfix the private
instance of smtp_bench.py, with Debian's /usr/sbin/sendmail and postdrop.
Runs alternate; medians are printed with the ratios.  Never passes or
fails on time: exit status 1 only if a run did not complete.

Needs root.  Every process started is killed by PID at the end.
"""
import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "t", "lib"))
sys.path.insert(0, os.path.join(TOP, "bench"))
from posthorn import BUILD, Instance, free_port  # noqa: E402
from smtp_bench import (PostfixInstance, instance_tls, count_new, empty_maildir,  # noqa: E402
                        print_medians, settle)

BODY = b"Subject: bench\n\n" + (b"x" * 71 + b"\n") * 14


def one_run(name, cmd, home, args):
    empty_maildir(home)
    settle()
    failures = []

    def submit(_):
        r = subprocess.run(cmd, input=BODY, capture_output=True)
        if r.returncode != 0:
            failures.append(r.stderr.decode(errors="replace")[-300:])

    t0 = time.time()
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        list(pool.map(submit, range(args.messages)))
    t_submit = time.time() - t0
    if failures:
        print("  %s: %d sendmail runs failed: %s" % (name, len(failures), failures[0]))
        return None
    end = t0 + 300
    while count_new(home) < args.messages and time.time() < end:
        time.sleep(0.01)
    t_deliver = time.time() - t0
    if count_new(home) < args.messages:
        print("  %s: only %d of %d delivered" % (name, count_new(home), args.messages))
        return None
    sub, dlv = args.messages / t_submit, args.messages / t_deliver
    print("  %-8s submitted %6.0f msg/s   delivered %6.0f msg/s   (%.2f s, %.2f s)"
          % (name, sub, dlv, t_submit, t_deliver), flush=True)
    return sub, dlv


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--messages", type=int, default=500)
    ap.add_argument("-p", "--parallel", type=int, default=4)
    ap.add_argument("-r", "--runs", type=int, default=3)
    ap.add_argument("--no-postfix", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("sendmail_bench.py: run as root")
    inst = Instance()
    pf = None
    failed = False
    try:
        r = inst.start()
        if r.returncode != 0:
            sys.exit("posthorn start failed: " + r.stderr)
        ph_user, ph_home = inst.add_user()
        systems = [("posthorn", [os.path.join(BUILD, "sbin", "sendmail"), "-C", inst.etc,
                                 ph_user], ph_home)]
        if not args.no_postfix:
            pf_user, pf_home = inst.add_user()
            pf = PostfixInstance(os.path.join(inst.dir, "postfix"), free_port(), instance_tls(inst))
            pf.start()
            systems.append(("postfix", ["/usr/sbin/sendmail", "-C", pf.etc, pf_user], pf_home))
        print("%d sendmail runs, %d at a time; %d runs each, alternating"
              % (args.messages, args.parallel, args.runs), flush=True)
        results = {name: [] for name, _, _ in systems}
        for i in range(args.runs):
            print("run %d" % (i + 1), flush=True)
            for name, cmd, home in systems:
                res = one_run(name, cmd, home, args)
                if res is None:
                    failed = True
                else:
                    results[name].append(res)
        print_medians(results, "submitted")
    finally:
        if pf:
            pf.stop()
        inst.cleanup()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
