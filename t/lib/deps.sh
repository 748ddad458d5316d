#!/bin/sh
# deps.sh - install the Debian packages Posthorn's build and tests need
# ("make deps").  Idempotent: only missing packages are installed, and the
# script says which.  Needs root (apt-get).
set -eu

PACKAGES="
build-essential pkg-config make perl
libssl-dev libbsd-dev libdb-dev db-util libcrypt-dev
libunbound-dev libevent-dev nettle-dev libopendkim-dev libspf2-dev libseccomp-dev libidn-dev
libpsl-dev libidn2-dev publicsuffix zlib1g-dev libxml2-utils
openssl unbound python3 python3-dkim python3-spf python3-dnspython
nsd ldnsutils dns-root-data
procps iproute2 netcat-openbsd passwd swaks libnet-ssleay-perl mutt s-nail postfix
fetchmail getmail6 isync
clang libclang-rt-14-dev
"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    echo "make deps: every package is installed already"
    exit 0
fi
echo "make deps: installing$missing"
if [ "$(id -u)" != 0 ]; then
    echo "make deps: run this as root (apt-get install needs it)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# nsd and ldnsutils (ldns-keygen, ldns-signzone, ldns-key2ds) serve and
# sign the zones of t/14-dns.t; dns-root-data is the root trust anchor that
# dnssec_trust_anchor_file names by default (unbound only recommends it).
# python3-dkim and python3-spf (for /usr/bin/python3) are the independent
# DKIM and SPF implementations the checks are compared with; libxml2-utils
# (xmllint) validates DMARC reports against the RFC 7489 schema.
# libnet-ssleay-perl gives swaks its TLS (--tls), which the submission
# tests use.
# fetchmail and getmail6 are POP3 clients t/51-pop3d-clients.t runs
# against pop3d (with mutt).
# isync (mbsync) syncs a Maildir with imapd in t/58-imapd-clients.t, where
# mutt, fetchmail and getmail6 are IMAP clients too.
# postfix is here for its smtp-source (the benchmark's load generator) and
# as the peer the benchmark compares with, in a private instance: the
# system-wide Postfix must stay unconfigured and stopped.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
