#!/usr/bin/env bash
# Glewlwyd (Debian 12's OAuth 2.0 / OpenID Connect server, package glewlwyd 2.7) for the OAuth
# tests, plus the tools server.sh uses (sqlite3 to create its database, curl to configure it
# through its admin API, openssl for an HTTPS certificate). The package is installed with
# debconf "No configuration": no system database, no /etc/glewlwyd/glewlwyd-db.conf, no service
# started (the default "Personalized" answer runs dbconfig and fails in postinst without a
# database server). server.sh runs private instances only. Idempotent; must run as root.
set -euo pipefail

if [ -x /usr/bin/glewlwyd ] && command -v sqlite3 curl openssl >/dev/null 2>&1 \
    && [ -f /usr/share/doc/glewlwyd/database/init.sqlite3.sql.gz ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "oauth/install.sh: must run as root" >&2
    exit 1
fi
debconf-set-selections <<'SEL'
glewlwyd glewlwyd/config_type select No configuration
SEL
# dbconfig-no-thanks: else apt satisfies "dbconfig-mysql | dbconfig-sqlite3 | ... | dbconfig-no-thanks"
# with its first choice, which pulls in a MySQL client.
# tinyproxy-bin: the binary alone (no service), an HTTPS_PROXY for the token endpoint.
bash "$(dirname "${BASH_SOURCE[0]}")/../apt-no-start.sh" glewlwyd dbconfig-no-thanks sqlite3 curl openssl tinyproxy-bin
[ -x /usr/bin/glewlwyd ] || { echo "oauth/install.sh: glewlwyd still missing" >&2; exit 1; }
[ -x /usr/bin/tinyproxy ] || { echo "oauth/install.sh: tinyproxy still missing" >&2; exit 1; }
