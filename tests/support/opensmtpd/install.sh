#!/usr/bin/env bash
# OpenSMTPD 6.8 (Debian 12's opensmtpd) for the real-peer tests, UNPACKED, not installed: as an
# apt install it conflicts with Postfix. Its .deb is `dpkg -x`ed under
# $MXTRACE_PEERS_DIR/opensmtpd (default /opt/mxtrace-peers); its libraries come from apt. What
# the binary has compiled in is created by hand, as the package's postinst would: the users
# opensmtpd and opensmtpq and the chroot /var/lib/opensmtpd/empty (its queue /var/spool/smtpd
# it creates itself). Nothing is configured or started: tests/real_peers.rs runs
# `smtpd -d -f CONF` and stops it by pid. Idempotent; must run as root.
set -euo pipefail

dest="${MXTRACE_PEERS_DIR:-/opt/mxtrace-peers}/opensmtpd"
bin="$dest/usr/sbin/smtpd"
libs=(libevent-2.1-7 libssl3 libpam0g libdb5.3 zlib1g libcrypt1)

ready() {
    [ -x "$bin" ] && [ -d /var/lib/opensmtpd/empty ] &&
        id opensmtpd >/dev/null 2>&1 && id opensmtpq >/dev/null 2>&1
}
if ready; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "opensmtpd/install.sh: must run as root" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
work="$(mktemp -d)"
chmod 755 "$work" # apt-get download runs as _apt
trap 'rm -rf "$work"' EXIT

fetch() {
    (cd "$work" && apt-get download -q opensmtpd >/dev/null 2>&1) &&
        apt-get install -y -q --no-install-recommends "${libs[@]}" >"$work/apt.log" 2>&1
}
if ! fetch; then
    apt-get update -q >"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; exit 1; }
    fetch || { tail -n 40 "$work/apt.log" >&2; exit 1; }
fi
mkdir -p "$dest"
dpkg -x "$work"/opensmtpd_*.deb "$dest"
for u in opensmtpd opensmtpq; do
    id "$u" >/dev/null 2>&1 ||
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$u"
done
mkdir -p /var/lib/opensmtpd/empty
ready || { echo "opensmtpd/install.sh: incomplete" >&2; exit 1; }
