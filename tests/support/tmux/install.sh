#!/usr/bin/env bash
# Install Debian's tmux for the live-screen test of `watch` (tests/watch_screen.rs): a real
# terminal emulator and pseudo-terminal whose screen, alternate-screen flag and cursor flag the
# test reads. Idempotent: does nothing if tmux is already present. Must run as root.
#
# Usage: tests/support/tmux/install.sh
set -euo pipefail

if command -v tmux >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: must run as root to install tmux" >&2
    exit 1
fi

bash "$(dirname "${BASH_SOURCE[0]}")/../apt-no-start.sh" tmux

command -v tmux >/dev/null 2>&1 || { echo "install.sh: tmux still missing after install" >&2; exit 1; }
