#!/usr/bin/env bash
# Exim 4 (Debian's exim4-daemon-light) for the real-peer tests, UNPACKED, not installed: as an
# apt install it conflicts with Postfix (both provide mail-transport-agent). Only the daemon's
# .deb is fetched and `dpkg -x`ed under $MXTRACE_PEERS_DIR/exim (default /opt/mxtrace-peers);
# its shared libraries come from apt as ordinary packages, and the compiled-in user
# Debian-exim is created. Nothing is configured or started: tests/real_peers.rs runs
# `exim4 -bdf -oX PORT -C CONF` with its own config, spool and log in a temp dir.
# Idempotent; must run as root.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../unpack-deb.sh"

dest="${MXTRACE_PEERS_DIR:-/opt/mxtrace-peers}/exim"
bin="$dest/usr/sbin/exim4"

# -bV prints the version (the binary and its libraries load); it exits 1 here only because no
# system configuration exists, so its output is checked instead.
runs() { { "$bin" -bV 2>/dev/null || true; } | grep -q '^Exim version 4'; }
if [ -x "$bin" ] && id Debian-exim >/dev/null 2>&1 && runs; then
    exit 0
fi
unpack_deb "$dest" exim4-daemon-light \
    libidn12 libgnutls30 libgnutls-dane0 libnsl2 libpcre2-8-0 libdb5.3 libcrypt1
system_user Debian-exim
runs || { echo "exim/install.sh: $bin does not run" >&2; exit 1; }
