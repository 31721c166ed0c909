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

# No init script may start anything during installation (apt-no-start.sh).
bash "$(dirname "${BASH_SOURCE[0]}")/../apt-no-start.sh" postfix openssl

[ -x /usr/sbin/postfix ] || { echo "install.sh: postfix still missing after install" >&2; exit 1; }
