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

export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

apt_install() {
    apt-get install -y -q --no-install-recommends chromium >"$log" 2>&1
}

# Only refresh the package lists if they are missing or the install fails.
if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || ! apt_install; then
    apt-get update -q >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
    apt_install || { tail -n 40 "$log" >&2; exit 1; }
fi

command -v chromium >/dev/null 2>&1 || { echo "install.sh: chromium still missing after install" >&2; exit 1; }
