#!/usr/bin/env bash
# Install kubernetes-validate (PyPI), which checks manifests against the Kubernetes API's JSON
# schemas it bundles (offline: no cluster, no download at run time), for tests/kubernetes.rs.
# Into its own virtual environment, linked as /usr/local/bin/kubernetes-validate. Idempotent.
#
# Usage: tests/support/kubernetes/install.sh
set -euo pipefail

VERSION=1.37.0
VENV=/opt/mxtrace-kubernetes-validate
if [ -x "$VENV/bin/kubernetes-validate" ] && command -v kubernetes-validate >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: must run as root to install kubernetes-validate" >&2
    exit 1
fi
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    bash "$(dirname "${BASH_SOURCE[0]}")/../apt-no-start.sh" python3-venv
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$VERSION"
ln -sf "$VENV/bin/kubernetes-validate" /usr/local/bin/kubernetes-validate
kubernetes-validate --version >/dev/null
