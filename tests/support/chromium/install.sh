#!/usr/bin/env bash
# Install Debian's headless-capable Chromium for the HTML report rendering tests
# (tests/html.rs). Idempotent: does nothing if chromium is already present. Must run as root.
#
# Usage: tests/support/chromium/install.sh
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: must run as root to install chromium" >&2
    exit 1
fi

bash "$(dirname "${BASH_SOURCE[0]}")/../apt-no-start.sh" chromium

command -v chromium >/dev/null 2>&1 || { echo "install.sh: chromium still missing after install" >&2; exit 1; }
