#!/usr/bin/env bash
# What the benchmarks compare against: swaks with its TLS modules (without them swaks has no
# STARTTLS), Postfix (smtp-source, smtp-sink, the real peer), GNU time for peak RSS, Debian's
# prometheus-blackbox-exporter (its service is not started: the bench runs its own).
set -euo pipefail
bash "$(dirname "$0")/../tests/support/postfix/install.sh"
need=()
for p in swaks libnet-ssleay-perl libio-socket-ssl-perl time prometheus-blackbox-exporter; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null ||
        { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null; }
fi
