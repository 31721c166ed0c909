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
bash "$(dirname "${BASH_SOURCE[0]}")/../apt-no-start.sh" prometheus
command -v promtool >/dev/null 2>&1 \
    || { echo "install.sh: promtool still missing after install" >&2; exit 1; }
