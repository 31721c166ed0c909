#!/usr/bin/env bash
# Install Debian's Prometheus (prometheus and promtool) for tests/serve.rs and the checks of
# monitoring/, without starting the system service (tests start their own instance on
# loopback). Idempotent: does nothing when both are present. Must run as root.
#
# Usage: tests/support/prometheus/install.sh
set -euo pipefail

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: must run as root to install prometheus" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive

# No init script may start the packaged service during installation.
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
        prometheus >"$log" 2>&1
}
if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || ! apt_install; then
    apt-get update -q >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
    apt_install || { tail -n 40 "$log" >&2; exit 1; }
fi
command -v promtool >/dev/null 2>&1 \
    || { echo "install.sh: promtool still missing after install" >&2; exit 1; }
