#!/usr/bin/env bash
# qpsmtpd 0.94 (Debian 12's qpsmtpd: the Perl SMTP daemon modelled on qmail-smtpd, whose every
# check is a plugin) for the real-peer tests, UNPACKED, not installed: it does not conflict with
# Postfix, but its postinst would configure /etc/qpsmtpd, pick a queue for a local MTA and
# enable a service. Its .deb is `dpkg -x`ed under $MXTRACE_PEERS_DIR/qpsmtpd (default
# /opt/mxtrace-peers); the Perl modules it uses (and IO::Socket::SSL for its tls plugin) come
# from apt as ordinary packages. The user it drops to (qpsmtpd) is created, as the postinst
# would. Nothing is configured or started: tests/more_peers.rs runs qpsmtpd-forkserver with
# QPSMTPD_CONFIG pointing at a test's own config directory. Idempotent; must run as root.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../unpack-deb.sh"

dest="${MXTRACE_PEERS_DIR:-/opt/mxtrace-peers}/qpsmtpd"
bin="$dest/usr/bin/qpsmtpd-forkserver"

# The modules load (perl -c compiles the server and the plugins' libraries; -T as its #! asks).
loads() {
    perl -Tc -I"$dest/usr/share/perl5" "$bin" >/dev/null 2>&1 &&
        perl -I"$dest/usr/share/perl5" -MIO::Socket::SSL -MNet::DNS -MMail::Header \
            -MDigest::HMAC_MD5 -e1 >/dev/null 2>&1
}
if [ -f "$bin" ] && id qpsmtpd >/dev/null 2>&1 && loads; then
    exit 0
fi
unpack_deb "$dest" qpsmtpd \
    perl libnet-dns-perl libmailtools-perl libio-socket-ssl-perl libdigest-hmac-perl \
    libipc-shareable-perl libsocket6-perl libio-socket-inet6-perl
system_user qpsmtpd
loads || { echo "qpsmtpd/install.sh: $bin does not load" >&2; exit 1; }
