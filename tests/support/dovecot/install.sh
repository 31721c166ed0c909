#!/usr/bin/env bash
# Dovecot for the Postfix lab (tests/support/postfix/lab.sh): dovecot-core as the SASL server of
# the submission listener (MXTRACE_LAB_SUBMISSION, dovecot/sasl.sh), and dovecot-imapd,
# dovecot-lmtpd and dovecot-sieve (Pigeonhole) for the mailbox server (MXTRACE_LAB_IMAP,
# dovecot/imap.sh). An ordinary apt install: it does not conflict with Postfix. Nothing is
# configured or started: lab.sh runs `dovecot -F -c CONF` with its own config in the lab directory
# and stops it by pid. Idempotent; must run as root.
set -euo pipefail

if [ -x /usr/sbin/dovecot ] && [ -x /usr/lib/dovecot/imap ] && [ -x /usr/lib/dovecot/lmtp ] \
    && [ -x /usr/bin/sievec ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "dovecot/install.sh: must run as root" >&2
    exit 1
fi
bash "$(dirname "${BASH_SOURCE[0]}")/../apt-no-start.sh" dovecot-core dovecot-imapd dovecot-lmtpd dovecot-sieve
[ -x /usr/sbin/dovecot ] || { echo "dovecot/install.sh: dovecot still missing" >&2; exit 1; }
[ -x /usr/lib/dovecot/imap ] && [ -x /usr/lib/dovecot/lmtp ] && [ -x /usr/bin/sievec ] \
    || { echo "dovecot/install.sh: dovecot-imapd, dovecot-lmtpd or dovecot-sieve still missing" >&2; exit 1; }
