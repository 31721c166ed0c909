#!/usr/bin/env bash
# Courier MTA 1.0 (Debian 12's courier-mta) for the real-peer tests, UNPACKED, not installed: as
# an apt install courier-mta conflicts with Postfix (both provide mail-transport-agent). It and
# the packages it runs with (courier-base: couriertcpd, couriertls; courier-authlib,
# courier-authdaemon, courier-authlib-userdb: the account lookups and AUTH) are `dpkg -x`ed
# under $MXTRACE_PEERS_DIR/courier (default /opt/mxtrace-peers); their shared libraries come
# from apt. Their postinsts are not run: they would write /etc/courier, /etc/mailname and
# init scripts. What the binaries have compiled in is made by hand: the user courier and
# empty mount points (/etc/courier, /var/lib/courier, /usr/lib/courier,
# /usr/lib/courier-authlib) over which tests/support/courier/run.sh bind-mounts a test's own
# configuration, queue and the unpacked programs, in a private mount namespace. Nothing is
# configured or started here. Idempotent; must run as root.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../unpack-deb.sh"

dest="${MXTRACE_PEERS_DIR:-/opt/mxtrace-peers}/courier"
mount_points=(/etc/courier /var/lib/courier /usr/lib/courier /usr/lib/courier-authlib)

# Every program the tests run loads (the libcourierauth* libraries are the unpacked ones).
loads() {
    local b
    for b in usr/sbin/couriertcpd usr/lib/courier/courier/modules/esmtp/courieresmtpd \
        usr/lib/courier/courier/submit usr/bin/couriertls \
        usr/lib/courier/courier-authlib/authdaemond usr/lib/courier-authlib/libauthuserdb.so.0 \
        usr/sbin/userdbpw; do
        [ -e "$dest/$b" ] || return 1
        if LD_LIBRARY_PATH="$dest/usr/lib" ldd "$dest/$b" | grep -q 'not found'; then
            return 1
        fi
    done
}
ready() {
    loads && id courier >/dev/null 2>&1 && for d in "${mount_points[@]}"; do [ -d "$d" ] || return 1; done
}
if ready; then
    exit 0
fi
unpack_deb "$dest" courier-mta libidn12 libcourier-unicode4 libgdbm6 libperl5.36 perl
unpack_deb "$dest" courier-base libgnutls30 libpcre3 libgamin0 libcrypt1
unpack_deb "$dest" courier-authlib libltdl7 libpam0g libstdc++6
unpack_deb "$dest" courier-authdaemon
unpack_deb "$dest" courier-authlib-userdb
system_user courier
mkdir -p "${mount_points[@]}"
ready || { echo "courier/install.sh: incomplete" >&2; exit 1; }
