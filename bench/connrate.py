#!/usr/bin/env python3
"""connrate - connections per second through master and the server skeleton.

Starts a real instance (as root) with the test service (one connection per
process at a time, like smtpd) and measures: the first connection to a cold
service (master forks on demand), then sequential and 10-way concurrent
sessions of "greeting, one line, quit" on new connections.  Prints figures;
never passes or fails on time.  Usage: bench/connrate.py [SESSIONS]
"""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "t", "lib"))
import posthorn  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
inst = posthorn.Instance()
port = inst.port(25)
inst.write_master(["127.0.0.1:%d inet n - 20 testsvc --user=network_user --chroot=spool" % port])
r = inst.start()
if r.returncode != 0:
    sys.exit("start failed: " + r.stderr)


def session():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = s.makefile("rwb", buffering=0)
    f.readline()
    f.write(b"NOOP\r\n")
    f.readline()
    f.write(b"quit\r\n")
    f.close()
    s.close()


t0 = time.time()
session()
print("connrate: first session on a cold service (fork + exec + drop): %.1f ms" % ((time.time() - t0) * 1e3))

t0 = time.time()
for _ in range(N):
    session()
t = time.time() - t0
print("connrate: %d sequential sessions: %.0f sessions/s" % (N, N / t))

per = N // 10
t0 = time.time()
threads = [threading.Thread(target=lambda: [session() for _ in range(per)]) for _ in range(10)]
for th in threads:
    th.start()
for th in threads:
    th.join()
t = time.time() - t0
print("connrate: %d sessions from 10 concurrent clients: %.0f sessions/s, %d service processes"
      % (per * 10, per * 10 / t, len(inst.procs())))
inst.stop()
inst.cleanup()
