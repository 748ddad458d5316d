"""postfixinst.py - a private Postfix (Debian's postfix package) as a third
party for the tests: configuration, queue and data under a directory of
its own, smtpd on one loopback address and port, local delivery into
Maildir/, no DNS (mail for other domains goes where transport says), and
no chroot.  bench/smtp_bench.py runs its Postfix with it too.

    missing()                       True if postfix is not installed
    Postfix(base, addr, port, hostname, domain, transport={domain: nexthop},
            tls=(cert_file, key_file))
        tls: STARTTLS offered by smtpd with that certificate and used by
        smtp when offered (both "may", Debian's default); without it no TLS
        .start(), .stop() (postfix stop, then SIGKILL by PID to whatever
        of it is left), .log(), .base, .port, .hostname; stop() also runs
        at exit.
"""
import atexit
import os
import shutil
import signal
import subprocess
import time

from posthorn import children_of

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
_all = []


def missing():
    return not os.access(POSTFIX, os.X_OK) or not os.path.exists("/etc/postfix/master.cf")


class Postfix:
    def __init__(self, base, addr, port, hostname, domain, transport=None, tls=None):
        self.base, self.addr, self.port, self.hostname = base, addr, port, hostname
        self.etc = os.path.join(base, "etc")
        self.queue = os.path.join(base, "queue")
        self.data = os.path.join(base, "data")
        self.logfile = os.path.join(base, "maillog")
        for d in (self.etc, self.data, self.queue):
            os.makedirs(d, exist_ok=True)
        shutil.chown(self.data, "postfix", "postfix")
        tmap = ", ".join("%s=%s" % kv for kv in (transport or {}).items())
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write("\n".join([
                "compatibility_level = 3.6",
                "queue_directory = " + self.queue,
                "data_directory = " + self.data,
                "command_directory = /usr/sbin",
                "daemon_directory = /usr/lib/postfix/sbin",
                "shlib_directory = /usr/lib/postfix",
                "meta_directory = /etc/postfix",
                "mail_owner = postfix",
                "setgid_group = postdrop",
                "myhostname = " + hostname,
                "mydomain = " + domain,
                "mydestination = $mydomain, $myhostname",
                # Postfix wants an address of an interface here; loopback
                # has 127.0.0.1 only, and master.cf names addr itself.
                "inet_interfaces = 127.0.0.1",
                "inet_protocols = ipv4",
                "mynetworks = 127.0.0.0/8",
                "home_mailbox = Maildir/",
                "alias_maps =",
                "alias_database =",
                "local_recipient_maps = unix:passwd.byname",
                "biff = no",
                "maillog_file = " + self.logfile,
                "maillog_file_prefixes = " + base,
            ] + ([
                "smtpd_tls_security_level = may",
                "smtpd_tls_cert_file = " + tls[0],
                "smtpd_tls_key_file = " + tls[1],
                "smtp_tls_security_level = may",
            ] if tls else [
                "smtpd_tls_security_level = none",
                "smtp_tls_security_level = none",
            ]) + [
                "smtp_dns_support_level = disabled",
                "transport_maps = inline:{%s}" % tmap if tmap else "transport_maps =",
                "smtpd_client_restrictions =",
                "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
                "",
            ]))
        lines = []
        with open("/etc/postfix/master.cf") as f:
            for line in f:
                fields = line.split()
                if line[0] not in "# \t\n" and len(fields) >= 8:
                    if fields[0] == "smtp" and fields[1] == "inet":
                        fields[0] = "%s:%d" % (addr, port)
                    fields[4] = "n"
                    line = "  ".join(fields[:8]) + (" " + " ".join(fields[8:]) if fields[8:] else "") + "\n"
                lines.append(line)
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.writelines(lines)
        _all.append(self)

    def postfix(self, *args):
        return subprocess.run([POSTFIX, "-c", self.etc] + list(args), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=120)

    def master_pid(self):
        try:
            with open(os.path.join(self.queue, "pid", "master.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def start(self):
        r = self.postfix("start")
        if r.returncode != 0:
            raise RuntimeError("postfix start failed: " + r.stdout + r.stderr)
        end = time.time() + 20
        while time.time() < end:
            if self.master_pid():
                return
            time.sleep(0.1)
        raise RuntimeError("postfix master did not start")

    def log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        pid = self.master_pid()
        pids = [pid] + children_of(pid) if pid else []
        if pid:
            self.postfix("stop")
        end = time.time() + 10
        while time.time() < end and any(os.path.exists("/proc/%d" % p) for p in pids):
            try:
                os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.1)
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        if self in _all:
            _all.remove(self)


@atexit.register
def _stop_all():
    for p in list(_all):
        p.stop()
