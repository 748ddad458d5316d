#!/usr/bin/env python3
"""t/92-smtp-tls-relay.t - the SMTP client's TLS levels, TLS session
resumption, relayhost with and without brackets, and SASL to a relayhost,
against scripted servers (t/lib/fakesmtp.py) with certificates from a test
CA, a real nsd for the zone test., and one instance per setting.

TLS: may (STARTTLS when offered, "Trusted TLS connection established ...
TLSv1.3 with cipher ..." in the log; plaintext to a server without it; a
second connection resumes the TLS session); encrypt (a server without
STARTTLS: deferred, "TLS is required, but was not offered"); verify (the
certificate must name the MX host: "Verified", or deferred with "Server
certificate not verified"); secure (it must name the next-hop domain: an
MX elsewhere fails); a CA file that does not parse: a warning at the
first handshake under may, smtp stopped at start under verify.
relayhost: [address]:port without any DNS (the instance has none), also
[IPv6:::1]:port, and domain:port through its MX record.
SASL: PLAIN and LOGIN over TLS to the relayhost, the password never in the
log; a server without TLS gets no plaintext mechanism (deferred, 4.7.0).
Skips without nsd, openssl or root."""
import atexit
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, is_, like, diag, done, skip_all  # noqa: E402
import nsd  # noqa: E402

if nsd.missing() or shutil.which("openssl") is None:
    skip_all("needs nsd and openssl")
if os.geteuid() != 0:
    skip_all("master must run as root")

import posthorn  # noqa: E402
from fakesmtp import FakeSMTP, stop_all  # noqa: E402
from smtptest import problems, free_port_on, outcome, make_ca, make_cert  # noqa: E402

atexit.register(stop_all)
work = tempfile.mkdtemp(prefix="posthorn-smtp-tls-")
os.chmod(work, 0o755)
atexit.register(shutil.rmtree, work, True)
ADDRS = ["127.0.0.%d" % i for i in range(3, 8)] + ["::1"]
PORT = free_port_on(ADDRS)

SOA = nsd.SOA
ZONE = "$ORIGIN test.\n$TTL 300\n" + SOA + """
ns IN A 127.0.0.1
tls IN MX 10 mx.tls.test.
mx.tls IN A 127.0.0.3
verified IN MX 10 mx.verified.test.
mx.verified IN A 127.0.0.3
secure IN MX 10 mx.secure.test.
mx.secure IN A 127.0.0.3
badsecure IN MX 10 mx.tls.test.
plain IN MX 10 mx.plain.test.
mx.plain IN A 127.0.0.4
wrongname IN MX 10 mx.wrongname.test.
mx.wrongname IN A 127.0.0.5
relay IN MX 10 mx.relay.test.
mx.relay IN A 127.0.0.7
"""
dns = nsd.Nsd([("test.", ZONE)])
ca = make_ca(work)
good_cert = make_cert(work, ca, "mx.tls.test", ["mx.tls.test", "mx.verified.test",
                                                 "mx.secure.test"])
wrong_cert = make_cert(work, ca, "other.example")
ok(True, "a test CA and certificates")

EXT = ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"]
tls_srv = FakeSMTP(work, "127.0.0.3", PORT, {"ehlo": EXT + ["STARTTLS"], "cert": good_cert})
plain_srv = FakeSMTP(work, "127.0.0.4", PORT, {"ehlo": EXT})
wrong_srv = FakeSMTP(work, "127.0.0.5", PORT, {"ehlo": EXT + ["STARTTLS"], "cert": wrong_cert})
relay6 = FakeSMTP(work, "127.0.0.6", PORT, {
    "ehlo": EXT + ["STARTTLS", "AUTH PLAIN LOGIN"], "cert": good_cert,
    "auth": {"user": "joe@provider.example", "pass": "s3cr3t pass"},
    "conns": [{}, {"ehlo": EXT + ["STARTTLS", "AUTH LOGIN"]}]})
relay_v6 = FakeSMTP(work, "::1", PORT, {"ehlo": EXT})
relay7 = FakeSMTP(work, "127.0.0.7", PORT, {
    "ehlo": EXT + ["AUTH PLAIN LOGIN"], "auth": {"user": "joe", "pass": "pw"}})

STUBS = "test=127.0.0.1@%d 127.in-addr.arpa=127.255.255.255" % dns.port
N = [0]


def instance(before_start=None, **conf):
    base = {"dns_stub_zones": STUBS, "dns_query_timeout": "3s",
            "dnssec_trust_anchor_file": "", "smtp_tcp_port": str(PORT)}
    base.update(conf)
    i = posthorn.Instance(main_conf=base)
    if before_start:
        before_start(i)
    r = i.start()
    ok(r.returncode == 0, "an instance with %s" % ", ".join(
        "%s = %s" % kv for kv in conf.items())) or diag(r.stderr)
    return i


def send(inst, rcpt):
    N[0] += 1
    content = b"From: <s@example.test>\r\nSubject: t92 %d\r\n\r\nhello\r\n" % N[0]
    qid = inst.submit(content, "s@example.test", [rcpt])
    return outcome(inst, qid, rcpt, timeout=60)


def clean(inst):
    bad = problems(inst)
    ok(not bad, "  no panic, fatal or crash") or diag(bad)
    # Stopped, not cleaned up: cleanup() kills every process of ours, the
    # DNS and SMTP servers too; that happens at exit.
    inst.stop()


# ------------------------------------------------------------------ may
i1 = instance(smtp_tls_CAfile=ca["pem"], smtp_connection_cache_time_limit="0")
o = send(i1, "a@tls.test")
is_(o and o["status"], "sent", "may: a server with STARTTLS")
like(i1.log(), "Trusted TLS connection established to mx.tls.test[127.0.0.3]:%d: TLSv1." % PORT,
     "  Trusted TLS connection established ... (the CA is smtp_tls_CAfile)")
like(i1.log(), " with cipher ", "  the cipher in the log line")
ok(tls_srv.events("tls"), "  the server saw TLS")
o = send(i1, "b@tls.test")
is_(o and o["status"], "sent", "  a second message on a new connection")
t = tls_srv.events("tls")
ok(len(t) >= 2 and t[-1]["resumed"], "  resumes the TLS session") or diag(t)
like(i1.log(), "session resumed", "  and says so")
o = send(i1, "a@plain.test")
is_(o and o["status"], "sent", "may: a server without STARTTLS gets the mail in plaintext")
clean(i1)

# ------------------------------------------------------------------ encrypt
i2 = instance(smtp_tls_security_level="encrypt")
o = send(i2, "a@plain.test")
is_(o and (o["status"], o["dsn"]), ("deferred", "4.7.4"),
    "encrypt: a server without STARTTLS: deferred, 4.7.4")
like(o and o["text"], "TLS is required, but was not offered by host mx.plain.test[127.0.0.4]",
     "  with Postfix's text")
ok(not [m for m in plain_srv.messages() if b"t92 %d" % N[0] in m["data"]], "  nothing sent")
o = send(i2, "c@tls.test")
is_(o and o["status"], "sent", "encrypt: a server with STARTTLS (a certificate nobody vouches for)")
like(i2.log(), "Untrusted TLS connection established to mx.tls.test", "  Untrusted, and used")
clean(i2)

# ------------------------------------------------------------------ a CA file that does not parse
# It is read at start and parsed at the first handshake (verify and secure:
# at start).
badca = os.path.join(work, "bad-ca.pem")
with open(badca, "w") as f:
    f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
os.chmod(badca, 0o644)
i5 = instance(smtp_tls_CAfile=badca)
o = send(i5, "d@plain.test")
is_(o and o["status"], "sent", "may, a CA file that does not parse: a server without STARTTLS")
ok("cannot load the CA file" not in i5.log(), "  no TLS handshake, so the file is not parsed")
o = send(i5, "d@tls.test")
is_(o and o["status"], "sent", "  a server with STARTTLS: the mail goes over TLS")
like(i5.log(), "warning: cannot load the CA file %s: " % badca, "  a warning names the file")
like(i5.log(), "Untrusted TLS connection established to mx.tls.test", "  and nothing is trusted")
clean(i5)
i6 = instance(smtp_tls_security_level="verify", smtp_tls_CAfile=badca)
o = send(i6, "b@verified.test")
is_(o and o["status"], "deferred", "verify, a CA file that does not parse: deferred")
like(i6.log(), "fatal: TLS is required (smtp_tls_security_level) but unusable: "
     "cannot load the CA file %s: " % badca, "  smtp stops at start, naming the file")
ok(not [m for m in tls_srv.messages() if b"t92 %d" % N[0] in m["data"]], "  nothing sent")
i6.stop()

# ------------------------------------------------------------------ verify
i3 = instance(smtp_tls_security_level="verify", smtp_tls_CAfile=ca["pem"])
o = send(i3, "a@verified.test")
is_(o and o["status"], "sent", "verify: the certificate names the MX host")
like(i3.log(), "Verified TLS connection established to mx.verified.test[127.0.0.3]:%d" % PORT,
     "  Verified TLS connection established")
o = send(i3, "a@wrongname.test")
is_(o and (o["status"], o["dsn"]), ("deferred", "4.7.5"),
    "verify: a certificate for another name: deferred, 4.7.5")
like(o and o["text"], "Server certificate not verified", "  Server certificate not verified")
ok(not wrong_srv.messages(), "  nothing sent")
clean(i3)

# ------------------------------------------------------------------ secure
i4 = instance(smtp_tls_security_level="secure", smtp_tls_CAfile=ca["pem"])
o = send(i4, "a@secure.test")
is_(o and o["status"], "sent", "secure: the certificate names a host in the next-hop domain")
o = send(i4, "a@badsecure.test")
is_(o and (o["status"], o["dsn"]), ("deferred", "4.7.5"),
    "secure: an MX outside the domain (its certificate fine for itself): deferred")
clean(i4)

# ------------------------------------------------------------------ relayhost
passwd = os.path.join(work, "sasl_passwd")
with open(passwd, "w") as f:
    f.write("[127.0.0.6]:%d joe@provider.example:s3cr3t pass\n" % PORT)
os.chmod(passwd, 0o600)


def build_map(i):
    r = i.mailctl("map", passwd)
    ok(r.returncode == 0, "mailctl map builds the password table") or diag(r.stderr)


i5 = instance(build_map, relayhost="[127.0.0.6]:%d" % PORT, dns_stub_zones="",
              smtp_connection_cache_time_limit="0", smtp_sasl_auth_enable="yes",
              smtp_tls_CAfile=ca["pem"], smtp_sasl_password_maps="hash:" + passwd)
o = send(i5, "x@anywhere.example")
is_(o and (o["status"], o["relay"]), ("sent", "127.0.0.6[127.0.0.6]:%d" % PORT),
    "relayhost [address]:port: no DNS, straight there")
a = relay6.events("auth")
ok(a and a[0]["mech"] == "PLAIN" and a[0]["ok"], "  authenticated with PLAIN") or diag(a)
ok(relay6.events("tls"), "  over TLS")
o = send(i5, "y@anywhere.example")
is_(o and o["status"], "sent", "  a second message")
a = relay6.events("auth")
ok(len(a) >= 2 and a[1]["mech"] == "LOGIN" and a[1]["ok"],
   "  with LOGIN where the server offers only that") or diag(a)
ok("s3cr3t" not in i5.log() and "czNjcjN0" not in i5.log(), "  the password is not in the log")
clean(i5)

i7 = instance(relayhost="[IPv6:::1]:%d" % PORT, dns_stub_zones="")
o = send(i7, "x@anywhere.example")
is_(o and (o["status"], o["relay"]), ("sent", "::1[::1]:%d" % PORT),
    "relayhost [IPv6:::1]:port")
ok(relay_v6.messages(), "  the server on ::1 has it")
clean(i7)

i6 = instance(relayhost="relay.test:%d" % PORT, smtp_tcp_port="25")
o = send(i6, "x@anywhere.example")
is_(o and (o["status"], o["relay"]), ("sent", "mx.relay.test[127.0.0.7]:%d" % PORT),
    "relayhost domain:port: through its MX record, to that port")
i6.stop()
with open(passwd, "w") as f:
    f.write("relay.test:%d joe:pw\n" % PORT)
i6.mailctl("map", passwd)
i6.set_main({"smtp_sasl_auth_enable": "yes", "smtp_sasl_password_maps": "hash:" + passwd})
r = i6.start()
ok(r.returncode == 0, "  again with SASL for it") or diag(r.stderr)
o = send(i6, "y@anywhere.example")
is_(o and (o["status"], o["dsn"]), ("deferred", "4.7.0"),
    "SASL to a server without TLS: no plaintext mechanism, deferred")
like(o and o["text"], "SASL authentication failed: no mechanism available with host "
     "mx.relay.test[127.0.0.7]", "  the reason")
ok(not relay7.events("auth"), "  the password was not sent")
i6.set_main({"smtp_tls_security_level": "maybe", "inet_protocols": "ipv5",
             "smtp_tcp_port": "smtpx"})
r = i6.mailctl("check")
ok(r.returncode != 0, "mailctl check refuses bad SMTP client settings")
for p in ("smtp_tls_security_level: unknown value 'maybe'", "inet_protocols: unknown value",
          "smtp_tcp_port: 'smtpx' is not a port"):
    like(r.stderr, p, "  " + p)
clean(i6)

stop_all()
dns.stop()
done()
