#!/usr/bin/env bash
# Dovecot as the Postfix lab's mailbox server: IMAP (STARTTLS) and IMAPS on ADDR, and LMTP on a
# unix socket that the lab's Postfix delivers to (virtual_transport), with Sieve (Pigeonhole)
# filing junk into Junk. Used by tests/support/postfix/lab.sh when MXTRACE_LAB_IMAP is set.
#
#   imap.sh start DIR LABDIR ADDR PORT_IMAP PORT_IMAPS
#       DIR: this instance's directory (created; lab.sh uses LABDIR/imap). LABDIR: the lab
#       directory, whose server.pem/server.key it serves and whose mail/ holds the Maildirs
#       (LABDIR/mail/contoso.test/USER/, as the lab's virtual delivery had them). Writes
#       DIR/dovecot.conf, DIR/users, DIR/imap.env, runs `dovecot -F -c` in the background (pid in
#       DIR/dovecot.pid), waits until both ports accept connections and DIR/lmtp exists.
#   imap.sh stop DIR
#       SIGTERM to that pid (checked to be this instance's dovecot), waits.
#
# Users (tests only, loopback only): IMAP_USER / IMAP_PASSWORD (the lab's VALID_RCPT) and
# NDR_USER / NDR_PASSWORD (the mailbox that the lab's bounces are sent to); HELD_USER has a
# mailbox over quota (LMTP: 452 4.2.2, so Postfix defers); any other recipient, such as the lab's
# bounce@, has no mailbox (LMTP: 550 5.1.1, so Postfix bounces). With
# MXTRACE_LAB_OAUTH=OAUTHDIR (tests/support/oauth/server.sh) also AUTHENTICATE XOAUTH2 and
# OAUTHBEARER, validated by the OAuth server's introspection (dovecot/oauth2.sh): a user's token
# as IMAP_USER, the client's own token as IMAP_CLIENT_USER (= OAUTH_CLIENT_ID), which opens
# IMAP_USER's mailbox.
# Sieve, before any user script: a message with "X-Spam-Flag: YES" or a Subject containing
# "[junk-me]" goes to Junk. Root required (Dovecot drops to uid/gid 65534 for mail access).
set -euo pipefail
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

DOMAIN=contoso.test
IMAP_USER=user@contoso.test
IMAP_PASSWORD=lab-secret-1
NDR_USER=ndr@contoso.test
NDR_PASSWORD=lab-secret-ndr
# A mailbox whose quota (1 byte) every message exceeds: LMTP answers 452 4.2.2 (a temporary
# failure, quota_full_tempfail) and Postfix keeps the message in its deferred queue.
HELD_USER=held@contoso.test
# The lab's Maildirs belong to 65534 (nobody/nogroup), as with Postfix's virtual(8).
MAIL_UID=65534
MAIL_GID=65534

die() { echo "imap.sh: $*" >&2; exit 1; }

live_pid() {
    local dir="$1" pid
    pid="$(cat "$dir/dovecot.pid" 2>/dev/null || true)"
    case "$pid" in '' | *[!0-9]*) return 0 ;; esac
    if tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "-c $dir/dovecot.conf"; then
        echo "$pid"
    fi
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

start() {
    [ $# -eq 5 ] || die "usage: imap.sh start DIR LABDIR ADDR PORT_IMAP PORT_IMAPS"
    local dir="$1" lab="$2" addr="$3" p_imap="$4" p_imaps="$5" p
    [ "$(id -u)" -eq 0 ] || die "must run as root"
    command -v dovecot >/dev/null || die "dovecot not installed (run tests/support/dovecot/install.sh)"
    [ -x /usr/lib/dovecot/imap ] && [ -x /usr/lib/dovecot/lmtp ] && command -v sievec >/dev/null \
        || die "dovecot-imapd, dovecot-lmtpd or dovecot-sieve missing (run tests/support/dovecot/install.sh)"
    for p in "$p_imap" "$p_imaps"; do
        case "$p" in '' | *[!0-9]*) die "bad port '$p'" ;; esac
    done
    [ -f "$lab/server.pem" ] && [ -f "$lab/server.key" ] || die "no $lab/server.pem or server.key"
    mkdir -p "$dir/sieve" "$dir/run" "$dir/state" "$lab/mail"
    dir="$(cd "$dir" && pwd -P)"
    lab="$(cd "$lab" && pwd -P)"
    [ -z "$(live_pid "$dir")" ] || die "an instance is already running in $dir"
    # Else the wait below would take another server's listener for ours.
    for p in "$p_imap" "$p_imaps"; do
        if port_open "$addr" "$p"; then die "$addr:$p is already in use"; fi
    done
    # Postfix's lmtp client (user postfix) connects to DIR/lmtp.
    chmod 755 "$dir"
    chown "$MAIL_UID:$MAIL_GID" "$lab/mail"

    # passwd-file as passdb and userdb: user:{PLAIN}password:uid:gid::home
    {
        printf '%s:{PLAIN}%s:%s:%s::%s\n' "$IMAP_USER" "$IMAP_PASSWORD" "$MAIL_UID" "$MAIL_GID" \
            "$lab/mail/$DOMAIN/${IMAP_USER%@*}"
        printf '%s:{PLAIN}%s:%s:%s::%s\n' "$NDR_USER" "$NDR_PASSWORD" "$MAIL_UID" "$MAIL_GID" \
            "$lab/mail/$DOMAIN/${NDR_USER%@*}"
        # No usable password (no IMAP login); a userdb field (userdb_ prefix) after the shell field.
        printf '%s:*:%s:%s::%s::userdb_quota_rule=*:storage=1B\n' "$HELD_USER" "$MAIL_UID" "$MAIL_GID" \
            "$lab/mail/$DOMAIN/${HELD_USER%@*}"
    } >"$dir/users"
    chown dovecot "$dir/users" && chmod 600 "$dir/users"

    cat >"$dir/sieve/junk.sieve" <<'SIEVE'
# tests/support/dovecot/imap.sh: runs before any user script, at LMTP delivery.
require ["fileinto", "mailbox"];
if anyof (header :is "X-Spam-Flag" "YES",
          header :contains "Subject" "[junk-me]") {
    fileinto :create "Junk";
    stop;
}
SIEVE

    local mechs="plain login" passwd_mechs="" oauth_conf=""
    cat >"$dir/imap.env" <<EOF
PORT_IMAP=$p_imap
PORT_IMAPS=$p_imaps
IMAP_USER=$IMAP_USER
IMAP_PASSWORD=$IMAP_PASSWORD
NDR_USER=$NDR_USER
NDR_PASSWORD=$NDR_PASSWORD
LMTP_SOCKET=$dir/lmtp
EOF
    if [ -n "${MXTRACE_LAB_OAUTH:-}" ]; then
        # shellcheck source=oauth2.sh
        . "$(dirname "${BASH_SOURCE[0]}")/oauth2.sh"
        oauth2_load || exit 1
        mechs="plain login xoauth2 oauthbearer"
        passwd_mechs=$'\n  mechanisms = plain login'
        oauth_conf="$(oauth2_passdbs "$dir")"
        # The OAuth client's own token (client credentials, SASL user OAUTH_CLIENT_ID) opens
        # IMAP_USER's mailbox, as an Exchange Online app's service principal with FullAccess on
        # one mailbox does. A userdb entry only: no password, so no PLAIN or LOGIN for it.
        printf '%s:*:%s:%s::%s\n' "$OAUTH_CLIENT_ID" "$MAIL_UID" "$MAIL_GID" \
            "$lab/mail/$DOMAIN/${IMAP_USER%@*}" >>"$dir/users"
        echo "IMAP_CLIENT_USER=$OAUTH_CLIENT_ID" >>"$dir/imap.env"
    fi

    cat >"$dir/dovecot.conf" <<CONF
# Generated by tests/support/dovecot/imap.sh: IMAP + LMTP + Sieve for the Postfix lab.
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
instance_name = mxtrace-imap
protocols = imap lmtp
listen = $addr
ssl = yes
ssl_cert = <$lab/server.pem
ssl_key = <$lab/server.key
ssl_min_protocol = TLSv1.2
# Plaintext LOGIN only after STARTTLS; Dovecot counts a connection whose client and server
# addresses are equal (127.0.0.1 to 127.0.0.1) as secure, so there it is allowed anyway.
disable_plaintext_auth = yes
auth_mechanisms = $mechs
auth_failure_delay = 0
auth_verbose = yes
verbose_proctitle = yes

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dir/users$passwd_mechs
}
$oauth_conf
userdb {
  driver = passwd-file
  args = username_format=%u $dir/users
}
first_valid_uid = $MAIL_UID
first_valid_gid = $MAIL_GID

# INBOX is the Maildir the lab's virtual delivery used (LABDIR/mail/contoso.test/USER/),
# folders are Maildir++ subdirectories (.Junk, .Sent, ...).
mail_location = maildir:~
namespace inbox {
  inbox = yes
  separator = /
  mailbox Junk {
    special_use = \\Junk
    auto = create
  }
  mailbox Sent {
    special_use = \\Sent
    auto = create
  }
  mailbox Trash {
    special_use = \\Trash
    auto = create
  }
  mailbox Drafts {
    special_use = \\Drafts
    auto = create
  }
}

protocol lmtp {
  mail_plugins = \$mail_plugins sieve quota
  postmaster_address = postmaster@$DOMAIN
}
plugin {
  sieve_before = $dir/sieve/junk.sieve
  # Only $HELD_USER has a quota rule (userdb field).
  quota = count:User quota
  quota_vsizes = yes
}
# Over quota is a temporary failure (452 4.2.2, Postfix defers), not a bounce (552 5.2.2).
quota_full_tempfail = yes

service imap-login {
  inet_listener imap {
    address = $addr
    port = $p_imap
  }
  inet_listener imaps {
    address = $addr
    port = $p_imaps
    ssl = yes
  }
}
service lmtp {
  unix_listener $dir/lmtp {
    mode = 0666
  }
}
# No auth penalty (see sasl.sh): repeated failures from 127.0.0.1 would otherwise slow down
# every later login by 2, 4, 8... s.
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
CONF
    # Compiled here (as root) so LMTP, running as 65534, need not write the binary.
    sievec -c "$dir/dovecot.conf" "$dir/sieve/junk.sieve" >"$dir/sievec.out" 2>&1 \
        || { cat "$dir/sievec.out" >&2; die "sievec failed"; }

    dovecot -F -c "$dir/dovecot.conf" </dev/null >"$dir/dovecot.out" 2>&1 &
    local pid=$!
    echo "$pid" >"$dir/dovecot.pid"
    for _ in $(seq 1 200); do
        if [ -S "$dir/lmtp" ] && port_open "$addr" "$p_imap" && port_open "$addr" "$p_imaps" \
            && kill -0 "$pid" 2>/dev/null; then
            echo "IMAP_PID=$pid" >>"$dir/imap.env"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.02
    done
    cat "$dir/dovecot.out" "$dir/dovecot.log" >&2 2>/dev/null || true
    stop "$dir"
    die "dovecot did not start (ports $addr:$p_imap/$p_imaps, socket $dir/lmtp)"
}

stop() {
    local dir="$1" pid
    [ -d "$dir" ] || return 0
    dir="$(cd "$dir" && pwd -P)"
    pid="$(live_pid "$dir")"
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        [ -n "$(live_pid "$dir")" ] || return 0
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
}

[ $# -ge 2 ] || die "usage: imap.sh start DIR LABDIR ADDR PORT_IMAP PORT_IMAPS | imap.sh stop DIR"
cmd="$1"
shift
case "$cmd" in
    start) start "$@" ;;
    stop) [ $# -eq 1 ] || die "usage: imap.sh stop DIR"; stop "$1" ;;
    *) die "usage: imap.sh start DIR LABDIR ADDR PORT_IMAP PORT_IMAPS | imap.sh stop DIR" ;;
esac
