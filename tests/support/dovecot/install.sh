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
bash "$(dirname "${BASH_SOURCE[0]}")/../apt-no-start.sh" dovecot-core
[ -x /usr/sbin/dovecot ] || { echo "dovecot/install.sh: dovecot still missing" >&2; exit 1; }
