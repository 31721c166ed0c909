#!/usr/bin/env bash
# OpenSMTPD 6.8 (Debian 12's opensmtpd) for the real-peer tests, UNPACKED, not installed: as an
# apt install it conflicts with Postfix. Its .deb is `dpkg -x`ed under
# $MXTRACE_PEERS_DIR/opensmtpd (default /opt/mxtrace-peers); its libraries come from apt. What
# the binary has compiled in is created by hand, as the package's postinst would: the users
# opensmtpd and opensmtpq and the chroot /var/lib/opensmtpd/empty (its queue /var/spool/smtpd
# it creates itself). Nothing is configured or started: tests/real_peers.rs runs
# `smtpd -d -f CONF` and stops it by pid, each in its own mount namespace with a per-test
# queue and control socket (so several can run at once). Idempotent; must run as root.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../unpack-deb.sh"

dest="${MXTRACE_PEERS_DIR:-/opt/mxtrace-peers}/opensmtpd"
bin="$dest/usr/sbin/smtpd"

ready() {
    [ -x "$bin" ] && [ -d /var/lib/opensmtpd/empty ] &&
        id opensmtpd >/dev/null 2>&1 && id opensmtpq >/dev/null 2>&1
}
if ready; then
    exit 0
fi
unpack_deb "$dest" opensmtpd libevent-2.1-7 libssl3 libpam0g libdb5.3 zlib1g libcrypt1
system_user opensmtpd
system_user opensmtpq
mkdir -p /var/lib/opensmtpd/empty
ready || { echo "opensmtpd/install.sh: incomplete" >&2; exit 1; }
