#!/usr/bin/env bash
# Installs Debian packages for the tests without letting any init script start a service
# (a temporary policy-rc.d denies starts), refreshing the package lists only when they are
# missing or the install fails. Must run as root. Used by tests/support/*/install.sh.
#
# Usage: tests/support/apt-no-start.sh PACKAGE...
set -euo pipefail
[ "$#" -gt 0 ] || { echo "usage: apt-no-start.sh PACKAGE..." >&2; exit 2; }
export DEBIAN_FRONTEND=noninteractive

policy=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    added_policy=1
fi
log="$(mktemp)"
cleanup() {
    if [ "$added_policy" -eq 1 ]; then rm -f "$policy"; fi
    rm -f "$log"
}
trap cleanup EXIT

apt_install() {
    apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "$@" >"$log" 2>&1
}
if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || ! apt_install "$@"; then
    apt-get update -q >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
    apt_install "$@" || { tail -n 40 "$log" >&2; exit 1; }
fi
