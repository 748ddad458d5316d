"""netns.py - run a test inside a network namespace of its own, where
clients can have TEST-NET addresses (RFC 5737, RFC 3849).

SPF cannot be tested over plain loopback: libspf2 passes every client in
127/8 ("localhost is always allowed").  A test that needs other client
addresses calls enter() first thing: the test then re-runs itself inside
a fresh namespace (ip netns add) whose loopback interface is up and also
holds ADDRESSES.  Everything the test starts (nsd, the Posthorn instance,
its clients) lives in that namespace, so no server listens anywhere but
inside it; a client binds one of the addresses as its source and
connects to 127.0.0.1, and the server sees the TEST-NET address.

Interface:
    enter()          re-run this script in a new namespace unless already
                     inside one; the outer process passes the output
                     through, deletes the namespace and exits with the
                     inner one's status.  Needs root and iproute2; when
                     they are missing it prints a TAP skip_all and exits.
    ADDRESSES        the addresses on lo: CLIENT4, OTHER4, CLIENT6, ...
    CLIENT4 = "198.51.100.7", OTHER4 = "203.0.113.9", CLIENT6 = "2001:db8::7"

Errors: a namespace that cannot be made is a skip (the reason printed).
Processes are cleaned up by the test itself, by PID; deleting the
namespace afterwards removes nothing but the namespace.
"""
import os
import shutil
import subprocess
import sys

CLIENT4 = "198.51.100.7"
OTHER4 = "203.0.113.9"
SERVER4 = "192.0.2.1"
CLIENT6 = "2001:db8::7"
ADDRESSES = (CLIENT4 + "/24", OTHER4 + "/24", SERVER4 + "/24")
ADDRESSES6 = (CLIENT6 + "/64",)
_ENV = "POSTHORN_NETNS"


def _skip(why):
    print("1..0 # SKIP %s" % why)
    sys.stdout.flush()
    sys.exit(0)


def _ip(*args, ns=None):
    cmd = (["ip", "netns", "exec", ns, "ip"] if ns else ["ip"]) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True)


def enter():
    if os.environ.get(_ENV):
        return os.environ[_ENV]
    if os.geteuid() != 0:
        _skip("a network namespace needs root")
    if shutil.which("ip") is None:
        _skip("iproute2 (ip) is not installed")
    name = "phtest%d" % os.getpid()
    r = _ip("netns", "add", name)
    if r.returncode != 0:
        _skip("cannot make a network namespace: %s" % r.stderr.strip())
    try:
        for args in [("link", "set", "lo", "up")] \
                + [("addr", "add", a, "dev", "lo") for a in ADDRESSES] \
                + [("-6", "addr", "add", a, "dev", "lo", "nodad") for a in ADDRESSES6]:
            r = _ip(*args, ns=name)
            if r.returncode != 0:
                _skip("cannot set up the namespace (ip %s): %s" % (" ".join(args),
                                                                   r.stderr.strip()))
        env = dict(os.environ)
        env[_ENV] = name
        sys.stdout.flush()
        p = subprocess.run(["ip", "netns", "exec", name, sys.executable] + sys.argv, env=env)
        status = p.returncode
    finally:
        _ip("netns", "delete", name)
    sys.exit(status if status >= 0 else 1)
