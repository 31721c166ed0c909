#!/usr/bin/env bash
# Sendmail 8.17 (Debian 12's sendmail-bin) for the real-peer tests, UNPACKED, not installed: as
# an apt install it conflicts with Postfix (both provide mail-transport-agent). Three .debs are
# `dpkg -x`ed under $MXTRACE_PEERS_DIR/sendmail (default /opt/mxtrace-peers): sendmail-bin (the
# daemon, makemap), sendmail-cf (the m4 files a sendmail.cf is built from) and sasl2-bin (only
# for saslpasswd2: unpacked, its postinst would create /etc/sasldb2 and a saslauthd service).
# Their shared libraries, m4 and the Cyrus SASL plugins (PLAIN, LOGIN, sasldb) come from apt
# as ordinary packages; none conflicts with Postfix. Nothing is configured or started:
# tests/more_peers.rs builds a sendmail.cf in a temp dir and runs `sendmail -bD -C CF` in its
# own UTS and mount namespaces. Idempotent; must run as root.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../unpack-deb.sh"

dest="${MXTRACE_PEERS_DIR:-/opt/mxtrace-peers}/sendmail"
bin="$dest/usr/libexec/sendmail/sendmail"

# -d0.1 -bt prints the version (the binary and its libraries load). Sendmail sleeps a minute
# when this machine's host name has no dot, hence the UTS namespace with a qualified one. Read
# whole: with pipefail, `grep -q` closing the pipe early would fail the pipeline.
runs() {
    local out
    out="$(unshare --uts sh -c 'hostname install.sendmail.test && exec "$0" -d0.1 -bt -C /dev/null' \
        "$bin" </dev/null 2>/dev/null || true)"
    grep -q '^Version 8\.' <<<"$out"
}
sasl_plugin() { compgen -G "/usr/lib/*/sasl2/lib$1.so.2" >/dev/null; }
ready() {
    [ -x "$bin" ] && [ -x "$dest/usr/libexec/sendmail/makemap" ] &&
        [ -f "$dest/usr/share/sendmail/cf/m4/cf.m4" ] && [ -x "$dest/usr/sbin/saslpasswd2" ] &&
        command -v m4 >/dev/null && [ -d /usr/lib/sasl2 ] &&
        sasl_plugin plain && sasl_plugin login && sasl_plugin sasldb && runs
}
if ready; then
    exit 0
fi
unpack_deb "$dest" sendmail-bin \
    libdb5.3 libldap-2.5-0 liblockfile1 libnsl2 libsasl2-2 libssl3 libwrap0 libcrypt1 \
    m4 libsasl2-modules libsasl2-modules-db
unpack_deb "$dest" sendmail-cf
unpack_deb "$dest" sasl2-bin libkrb5-3 libpam0g
# The tests bind-mount their own SASL configuration (Sendmail.conf) over this directory, one
# of libsasl2's compiled-in configuration paths, which libsasl2-2 ships (and a purge of
# sasl2-bin can remove). Sendmail scrubs its environment, so SASL_CONF_PATH would not reach it.
mkdir -p /usr/lib/sasl2
ready || { echo "sendmail/install.sh: $bin, its m4 files, m4 or SASL are missing" >&2; exit 1; }
