#!/usr/bin/env bash
# Dovecot (dovecot-core) as the SASL server of the Postfix lab's submission listener
# (tests/support/postfix/lab.sh, MXTRACE_LAB_SUBMISSION). An ordinary apt install: it does not
# conflict with Postfix. Nothing is configured or started: lab.sh runs `dovecot -F -c CONF`
# with its own config in the lab directory and stops it by pid. Idempotent; must run as root.
set -euo pipefail

if [ -x /usr/sbin/dovecot ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "dovecot/install.sh: must run as root" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# No init script may start the system instance during the install.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    added_policy=1
fi
log="$(mktemp)"
trap '[ "$added_policy" -eq 0 ] || rm -f "$policy"; rm -f "$log"' EXIT
apt_install() {
    apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        dovecot-core >"$log" 2>&1
}
if ! apt_install; then
    apt-get update -q >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
    apt_install || { tail -n 40 "$log" >&2; exit 1; }
fi
[ -x /usr/sbin/dovecot ] || { echo "dovecot/install.sh: dovecot still missing" >&2; exit 1; }
