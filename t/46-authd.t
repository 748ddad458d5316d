#!/usr/bin/env python3
"""authd: mail passwords checked over private/authd (lib/auth_proto).

A throwaway instance with a user whose mail password is set with
`mailctl user add --password-stdin`; the test speaks the protocol itself
(t/lib/ipcframe.py) as submission would:
 - PLAIN with an initial response, right and wrong; without one (an
   empty challenge, then the credentials); LOGIN through its two
   challenges;
 - SCRAM-SHA-256 with a client written here (RFC 5802 with hashlib/hmac):
   the server's signature checked, a wrong password refused, an unknown
   user given a plausible challenge and then refused;
 - plaintext mechanisms refused when the client says the connection does
   not allow them; -PLUS without channel binding data not offered;
 - a cancelled exchange leaves the connection usable;
 - throttling: failures are answered after auth_failure_delay times their
   count; after auth_failure_limit failures an address is refused at once,
   even with the right password, while another address is not; an IPv6
   client's /64 counts as one address; guesses at one account from many
   exchanges at once are checked one per delay (the others TEMPFAIL);
 - the authorization identity: PLAIN's authzid or SCRAM's a= other than
   the user is refused;
 - user names are logged escaped and cut, so they cannot forge a line;
 - a request id reused, a malformed request and a peer that is not allowed
   (nobody) are dropped; authd runs as auth_user and not as root;
 - the log has one line per exchange and never the password;
 - hand-over cookies: only login_user gets one, only root redeems it, once,
   for the service and login process it was issued to, within 10 s.
Every process is cleaned up by PID."""
import base64
import hashlib
import hmac
import os
import pwd
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, diag, done  # noqa: E402
import ipcframe  # noqa: E402
import posthorn  # noqa: E402

START, STEP, CANCEL, CONTINUE, DONE = 0x800, 0x801, 0x802, 0x803, 0x804
OK_, FAIL, TEMPFAIL = 0, 1, 2
F_TLS, F_PLAINTEXT_OK = 1, 2
PASSWORD = "correct horse battery"

inst = posthorn.Instance(main_conf={"auth_failure_delay": "0", "auth_failure_limit": "100"})
r = inst.start()
if r.returncode != 0:
    diag(r.stderr)
alice, _ = inst.add_user()
sock = os.path.join(inst.spool, "private", "authd")
c = ipcframe.connect(sock, "auth", 2, timeout=30)
c.send(0x800, 1, ["submission", "PLAIN", "127.0.0.1", 3, "", b"", 1,
                  b"\0" + alice.encode() + b"\0x"])
f = c.recv(timeout=30)
ok(f is not None and f.fields[0] == 1, "before any mail password is set: FAIL, not a temporary "
   "failure") or diag(repr(f))
c.close()
r = subprocess.run([posthorn.MAILCTL, "-c", inst.etc, "user", "add", alice, "--password-stdin"],
                   input=PASSWORD + "\n", capture_output=True, text=True, timeout=60)
is_(r.returncode, 0, "mailctl user add sets alice's mail password") or diag(r.stderr)
reqids = iter(range(1, 1000000))


def conn():
    return ipcframe.connect(sock, "auth", 2, timeout=30)


def start(c, mech, initial=None, addr="127.0.0.1", flags=F_TLS | F_PLAINTEXT_OK, cb=("", b"")):
    rid = next(reqids)
    c.send(START, rid, ["submission", mech, addr, flags, cb[0], cb[1],
                        0 if initial is None else 1, b"" if initial is None else initial])
    return rid


def reply(c, timeout=30):
    f = c.recv(timeout=timeout)
    if f is None:
        return None
    return f


def plain(c, user, password, **kw):
    start(c, "PLAIN", b"\0" + user.encode() + b"\0" + password.encode(), **kw)
    return reply(c)


def result(f):
    """(result, user, final data, reason) of a DONE frame."""
    return tuple(f.fields) if f is not None and f.type == DONE else None


c = conn()
f = plain(c, alice, PASSWORD)
is_(result(f)[:2], (OK_, alice), "PLAIN with the right password: OK, the user named")
f = plain(c, alice, "wrong " + PASSWORD)
is_(result(f)[0], FAIL, "PLAIN with a wrong password: FAIL")
is_(result(f)[1], "", "  and no user")
f = plain(c, "nosuchuser", PASSWORD)
is_(result(f)[0], FAIL, "PLAIN for a user without a mail password: FAIL")

rid = start(c, "plain")
f = reply(c)
ok(f is not None and f.type == CONTINUE and f.fields in ([b""], [""]),
   "PLAIN without an initial response: an empty challenge")
c.send(STEP, rid, [b"\0" + alice.encode() + b"\0" + PASSWORD.encode()])
is_(result(reply(c))[:2], (OK_, alice), "  then the credentials: OK")
is_(result(plain(c, "", "")) and result(plain(c, "", ""))[0], FAIL,
    "PLAIN with empty fields: FAIL")

rid = start(c, "LOGIN")
f = reply(c)
ok(f.type == CONTINUE and f.fields[0] in (b"Username:", "Username:"), "LOGIN asks Username:")
c.send(STEP, rid, [alice.encode()])
f = reply(c)
ok(f.type == CONTINUE and f.fields[0] in (b"Password:", "Password:"), "  then Password:")
c.send(STEP, rid, [PASSWORD.encode()])
is_(result(reply(c))[:2], (OK_, alice), "  then OK")

f = plain(c, alice, PASSWORD, flags=0)
is_(result(f)[0], FAIL, "PLAIN where plaintext is not allowed: refused")
like(result(f)[3], "mechanism not available", "  as a mechanism not available")
f = None
start(c, "SCRAM-SHA-256-PLUS", b"p=tls-exporter,,n=" + alice.encode() + b",r=abc")
is_(result(reply(c))[0], FAIL, "-PLUS without channel binding data: not available")


# ---- SCRAM-SHA-256 (RFC 5802), the client side written here ----
def scram(c, user, password, bad_proof=False, authzid=""):
    nonce = base64.b64encode(os.urandom(18)).decode()
    bare = "n=%s,r=%s" % (user, nonce)
    gs2 = "n,%s," % ("a=" + authzid if authzid else "")
    rid = start(c, "SCRAM-SHA-256", (gs2 + bare).encode())
    f = reply(c)
    if f is None or f.type != CONTINUE:
        return ("no challenge", f)
    first = f.fields[0].decode() if isinstance(f.fields[0], bytes) else f.fields[0]
    attrs = dict(a.split("=", 1) for a in first.split(","))
    if not attrs["r"].startswith(nonce):
        return ("nonce", first)
    salt, it = base64.b64decode(attrs["s"]), int(attrs["i"])
    sp = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, it)
    ck = hmac.new(sp, b"Client Key", hashlib.sha256).digest()
    sk = hmac.new(hashlib.sha256(ck).digest(), b"", hashlib.sha256)
    final_wo = "c=%s,r=%s" % (base64.b64encode(gs2.encode()).decode(), attrs["r"])
    auth_msg = ",".join([bare, first, final_wo]).encode()
    sig = hmac.new(hashlib.sha256(ck).digest(), auth_msg, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(ck, sig))
    if bad_proof:
        proof = bytes([proof[0] ^ 1]) + proof[1:]
    c.send(STEP, rid, [(final_wo + ",p=" + base64.b64encode(proof).decode()).encode()])
    f = reply(c)
    del sk
    res = result(f)
    if res is None:
        return ("no result", f)
    server_key = hmac.new(sp, b"Server Key", hashlib.sha256).digest()
    want_v = b"v=" + base64.b64encode(hmac.new(server_key, auth_msg, hashlib.sha256).digest())
    final = res[2] if isinstance(res[2], bytes) else res[2].encode()
    return (res[0], res[1], final == want_v, res[3])


r = scram(c, alice, PASSWORD)
is_(r[:3], (OK_, alice, True), "SCRAM-SHA-256: OK, and the server's signature verifies")
r = scram(c, alice, "not " + PASSWORD)
is_(r[0], FAIL, "SCRAM-SHA-256 with a wrong password: FAIL")
r = scram(c, "nosuchuser", PASSWORD)
is_(r[0], FAIL, "SCRAM-SHA-256 for an unknown user: a challenge, then FAIL")

# ---- the authorization identity (RFC 4616 authzid, SCRAM's a=) ----
f = result(reply(c)) if start(c, "PLAIN", b"root\0" + alice.encode() + b"\0"
                              + PASSWORD.encode()) else None
is_(f[:2], (FAIL, ""), "PLAIN with alice's password asking to act as root: FAIL")
like(f[3], "authorization identity not allowed", "  the authorization identity is refused")
f = result(reply(c)) if start(c, "PLAIN", alice.encode() + b"\0" + alice.encode() + b"\0"
                              + PASSWORD.encode()) else None
is_(f[:2], (OK_, alice), "  asking to act as herself: OK")
r = scram(c, alice, PASSWORD, authzid="root")
is_(r[0], FAIL, "SCRAM-SHA-256 with alice's password and a=root: FAIL")
like(r[3], "authorization identity not allowed", "  the authorization identity is refused")
is_(scram(c, alice, PASSWORD, authzid=alice)[:3], (OK_, alice, True), "  a=alice: OK")

# ---- a client's user name cannot forge a log line ----
forged = "x from 203.0.113.9 (submission): ok;"
plain(c, forged, "whatever")
like(inst.log(), "authd: PLAIN authentication of x\\x20from\\x20203.0.113.9\\x20\\x28",
     "a user name with blanks and parentheses is logged escaped")
ok("of x from 203.0.113.9 (submission): ok" not in inst.log(), "  never as written")
plain(c, "n" * 200, "whatever")
like(inst.log(), "authd: PLAIN authentication of " + "n" * 64 + "... from",
     "  a long one is cut to 64 bytes")

# ---- cancel ----
rid = start(c, "LOGIN")
reply(c)
c.send(CANCEL, rid, [])
is_(result(plain(c, alice, PASSWORD))[:2], (OK_, alice), "after a cancelled exchange: still usable")

# ---- throttling ----
c.close()
inst.stop()
inst.set_main({"auth_failure_delay": "1s", "auth_failure_limit": "3"})
r = inst.start()
is_(r.returncode, 0, "restarted with auth_failure_delay = 1s, auth_failure_limit = 3")
c = conn()
t0 = time.time()
is_(result(plain(c, alice, "guess1", addr="192.0.2.9"))[0], FAIL, "a first failure")
t1 = time.time()
is_(result(plain(c, alice, "guess2", addr="192.0.2.9"))[0], FAIL, "a second failure")
t2 = time.time()
ok(t1 - t0 >= 0.9, "  the first was answered after auth_failure_delay (%.1f s)" % (t1 - t0))
ok(t2 - t1 >= 1.9, "  the second after twice that (%.1f s)" % (t2 - t1))
plain(c, alice, "guess3", addr="192.0.2.9")
t3 = time.time()
f = plain(c, alice, PASSWORD, addr="192.0.2.9")
is_(result(f)[0], TEMPFAIL, "after auth_failure_limit failures the address is refused, "
    "even with the right password")
like(result(f)[3], "too many authentication failures", "  and says why")
like(inst.log(), "authd: PLAIN authentication of (unknown) from 192.0.2.9 (submission) failed: "
     "too many authentication failures", "  in the log too")
ok(time.time() - t3 < 0.9, "  at once")
is_(result(plain(c, alice, PASSWORD, addr="192.0.2.10"))[:2], (OK_, alice),
    "another address still logs in")

# Guesses at one account from many exchanges at once: one is checked, the
# others wait for its delay (TEMPFAIL), whatever addresses they claim.
rids = [start(c, "PLAIN", b"\0" + alice.encode() + b"\0guess-parallel",
              addr="192.0.2.%d" % (20 + i)) for i in range(3)]
got = {}
for _ in rids:
    f = reply(c, timeout=30)
    if f is not None and f.type == DONE:
        got[f.reqid] = result(f)
is_(sorted(r[0] for r in got.values()), [FAIL, TEMPFAIL, TEMPFAIL],
    "three guesses at once at alice from three addresses: one checked, two held back")
like(" ".join(r[3] for r in got.values() if r[0] == TEMPFAIL),
     "the account's last failure is too recent", "  saying why")
is_(result(plain(c, alice, PASSWORD, addr="192.0.2.30"))[:2], (OK_, alice),
    "  once that failure's delay is over, alice logs in")
# IPv6: a client's /64 counts as one address.
for i in range(3):
    plain(c, "nosuch%d" % i, "x", addr="2001:db8:0:7::%d" % (i + 1))
is_(result(plain(c, alice, PASSWORD, addr="2001:db8:0:7::99"))[0], TEMPFAIL,
    "IPv6: failures from three addresses of one /64 refuse a fourth address of it")
is_(result(plain(c, alice, PASSWORD, addr="2001:db8:0:8::1"))[:2], (OK_, alice),
    "  not one of the next /64")

# ---- protocol errors and peers ----
rid = start(c, "LOGIN")
reply(c)
c.send(START, rid, ["submission", "LOGIN", "127.0.0.1", 3, "", b"", 0, b""])
ok(c.recv(timeout=10) is None, "a request id in use: the client is dropped")
c.close()
c = conn()
c.send(START, 1, ["lmtp", "PLAIN", "127.0.0.1", 3, "", b"", 0, b""])
ok(c.recv(timeout=10) is None, "a malformed request (unknown service): dropped")
c.close()
# Another account that can reach private/ (mail_owner's group), not one
# authd serves: refused by SO_PEERCRED.
owner = pwd.getpwnam("posthorn")
other = pwd.getpwnam(inst.add_user()[0])
try:
    c = ipcframe.connect_as(sock, other.pw_uid, other.pw_gid, [owner.pw_gid])
    c.send(0, 0, ["auth", 2])
    got = c.recv(timeout=10)
    c.close()
except OSError as e:
    got = e
ok(got is None or isinstance(got, OSError), "a peer of another account gets no hello")
like(inst.log(), "authd: refusing a client: uid %d: peer uid not allowed" % other.pw_uid,
     "  and authd says why")

# Hand-over cookies (the login/mail split): a login half (login_user) asks
# with AUTH_F_HANDOVER and gets a 16-byte cookie with its OK; root (the
# mail half) redeems it once, for the service and login process it was
# issued to; nobody else may ask for or redeem one.
REDEEM, REDEEMED, F_HANDOVER = 0x805, 0x806, 4
null = pwd.getpwnam("posthorn-null")
net = pwd.getpwnam("posthorn-net")


def login_cookie(service="pop3", who=null):
    # The posthorn group only to reach private/ (authd checks the uid).
    lc = ipcframe.connect_as(sock, who.pw_uid, who.pw_gid, [who.pw_gid, owner.pw_gid],
                             timeout=30)
    lc.hello("auth", 2, timeout=30)
    rid = next(reqids)
    lc.send(START, rid, [service, "PLAIN", "127.0.0.1", F_TLS | F_PLAINTEXT_OK | F_HANDOVER, "",
                         b"", 1, b"\0" + alice.encode() + b"\0" + PASSWORD.encode()])
    f = lc.recv(timeout=30)
    return lc, f


def redeem(cookie, login_pid, service="pop3", rc=None):
    rc = rc or conn()
    rid = next(reqids)
    rc.send(REDEEM, rid, [service, cookie, login_pid])
    return rc.recv(timeout=30)


lc, f = login_cookie()
ok(f is not None and f.type == DONE and f.fields[0] == OK_ and len(f.fields[4]) == 16,
   "a login half asking for a hand-over gets OK and a 16-byte cookie") or diag(repr(f))
cookie = f.fields[4] if f is not None else b"x" * 16
f = plain(conn(), alice, PASSWORD)
is_(f.fields[4] if f is not None else None, b"", "  (one that does not ask gets none)")
rc = conn()
f = redeem(cookie, lc.creator_pid + 1, rc=rc)
is_(f and (f.type, f.fields), (REDEEMED, [FAIL, ""]),
    "redeemed for another login process: FAIL")
f = redeem(cookie, lc.creator_pid, rc=rc)
is_(f and (f.type, f.fields), (REDEEMED, [FAIL, ""]), "  and the cookie is gone with it")
lc.close()
lc, f = login_cookie()
cookie = f.fields[4] if f is not None else b"x" * 16
f = redeem(cookie, lc.creator_pid, service="imap", rc=rc)
is_(f and f.fields, [FAIL, ""], "redeemed for another service: FAIL")
lc.close()
lc, f = login_cookie()
cookie = f.fields[4] if f is not None else b"x" * 16
f = redeem(cookie, lc.creator_pid, rc=rc)
is_(f and (f.type, f.fields), (REDEEMED, [OK_, alice]),
    "root redeems it for the right service and login process: OK and the user")
f = redeem(cookie, lc.creator_pid, rc=rc)
is_(f and f.fields, [FAIL, ""], "  once only")
f = redeem(os.urandom(16), lc.creator_pid, rc=rc)
is_(f and f.fields, [FAIL, ""], "a cookie never issued: FAIL")
lc.close()
lc, f = login_cookie()
cookie = f.fields[4] if f is not None else b"x" * 16
time.sleep(11)
f = redeem(cookie, lc.creator_pid, rc=rc)
is_(f and f.fields, [FAIL, ""], "after AUTH_COOKIE_SECONDS (10 s): FAIL")
lc.close()
like(inst.log(), "hand-over for pop3 from login process %d refused: unknown or expired cookie"
     % lc.creator_pid, "  logged")
like(inst.log(), "authd: hand-over of %s (pop3) from login process" % alice,
     "a redemption is logged with the user")
# Who may not: submission's account asking for a cookie, a login half
# redeeming one.
nc, f = login_cookie(service="submission", who=net)
is_(f, None, "network_user asking for a hand-over is dropped")
like(inst.log(), "sent a hand-over request, but it is not login_user", "  and authd says why")
lc, f = login_cookie()
cookie = f.fields[4] if f is not None else b"x" * 16
f = redeem(cookie, lc.creator_pid, rc=lc)
is_(f, None, "a login half redeeming a cookie is dropped")
like(inst.log(), "sent a hand-over to redeem, but it is not root", "  and authd says why")
f = redeem(cookie, lc.creator_pid, rc=rc)
is_(f and f.fields, [OK_, alice], "  and the cookie is still good for the mail half")

pids = inst.service_pids("authd")
is_(len(pids), 1, "one authd process")
if pids:
    st = open("/proc/%d/status" % pids[0]).read()
    uid_line = [l for l in st.splitlines() if l.startswith("Uid:")][0].split()[1:]
    auth = pwd.getpwnam("posthorn-auth")
    is_(uid_line, [str(auth.pw_uid)] * 4, "authd runs as auth_user (real, effective, saved, fs)")

log = inst.log()
like(log, "authd: PLAIN authentication of %s from 127.0.0.1 (submission): ok" % alice,
     "the log names mechanism, user, address and service")
like(log, "authd: SCRAM-SHA-256 authentication of %s from 127.0.0.1 (submission) failed" % alice,
     "  and failures")
ok(PASSWORD not in log, "the password is never logged")
ok("guess1" not in log, "  nor a wrong one")
inst.stop()
inst.cleanup()
done()
