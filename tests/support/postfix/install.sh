#!/usr/bin/env bash
# Install Postfix (and openssl) for the real-peer integration tests, without
# configuring or starting the system instance. Idempotent: does nothing if
# postfix and openssl are already present. Must run as root.
#
# Usage: tests/support/postfix/install.sh
set -euo pipefail

if [ -x /usr/sbin/postfix ] && command -v openssl >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: must run as root to install postfix" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# "No configuration": the package writes no /etc/postfix/main.cf and does not
# set up or start a system mail server. lab.sh runs private instances only.
debconf-set-selections <<'SEL'
postfix postfix/main_mailer_type select No configuration
postfix postfix/mailname string mx.contoso.test
SEL

# Make sure no init script starts anything during installation. Containers
# usually ship a policy-rc.d that denies starts; add a temporary one if not.
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

pkgs=(postfix openssl)
apt_install() {
    apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${pkgs[@]}" >"$log" 2>&1
}

# Only refresh the package lists if they are missing or the install fails.
if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || ! apt_install; then
    apt-get update -q >"$log" 2>&1 \
        || { cat "$log" >&2; exit 1; }
    apt_install || { tail -n 40 "$log" >&2; exit 1; }
fi

[ -x /usr/sbin/postfix ] || { echo "install.sh: postfix still missing after install" >&2; exit 1; }
