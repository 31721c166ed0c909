#!/usr/bin/env bash
# Private Postfix instance on loopback, used as a real SMTP peer by the
# integration tests. Everything (config, queue, data, log, certificates) lives
# under DIR; the system instance (/etc/postfix) is never configured, started
# or stopped. Must run as root (Postfix's master runs as root).
#
# Usage:
#   lab.sh start DIR ADDR PORT_SMTP PORT_TLSREQ PORT_SMTPS
#   lab.sh stop DIR
#   lab.sh recipients DIR [ADDRESS...]
#
# recipients rewrites the instance's recipient table (vmailbox) to exactly the addresses given
# (none: every recipient is unknown, 550 5.1.1) and runs "postfix reload", so a test can break
# and mend the path while a client watches it.
#
# start prints "ready" and writes DIR/lab.env once all three ports accept
# connections; on failure it prints the maillog tail to stderr and exits 1.
#
# Opt-ins (environment of start):
#   MXTRACE_LAB_SUBMISSION=PORT   submission listener, SASL by Dovecot (dovecot/sasl.sh)
#   MXTRACE_LAB_IMAP=PORT MXTRACE_LAB_IMAPS=PORT
#                                 Dovecot IMAP (STARTTLS) and IMAPS on ADDR, delivery by LMTP with
#                                 Sieve (dovecot/imap.sh), plus the recipients held@ (stays
#                                 queued: mailbox over quota), bounce@ (NDR after queueing: no
#                                 mailbox behind LMTP), ndr@ (NDR mailbox)
#   MXTRACE_LAB_OAUTH=OAUTHDIR    XOAUTH2/OAUTHBEARER in both Dovecots, validated by the running
#                                 OAuth server of tests/support/oauth/server.sh
set -euo pipefail

PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

die() {
    echo "lab.sh: $*" >&2
    exit 1
}

usage() {
    echo "usage: lab.sh start DIR ADDR PORT_SMTP PORT_TLSREQ PORT_SMTPS" >&2
    echo "       (MXTRACE_LAB_SUBMISSION=PORT adds a submission listener with Dovecot SASL;" >&2
    echo "        MXTRACE_LAB_IMAP=PORT MXTRACE_LAB_IMAPS=PORT add Dovecot IMAP/IMAPS with LMTP delivery;" >&2
    echo "        MXTRACE_LAB_OAUTH=OAUTHDIR adds XOAUTH2/OAUTHBEARER to both)" >&2
    echo "       lab.sh stop DIR" >&2
    echo "       lab.sh recipients DIR [ADDRESS...]" >&2
    exit 2
}

TLS_NAME=mx.contoso.test
DOMAIN=contoso.test
VALID_RCPT=user@contoso.test
# With MXTRACE_LAB_IMAP only, all accepted at RCPT (listed in vmailbox): HELD_RCPT's mailbox is
# over quota, Dovecot's LMTP answers 452 4.2.2 and the message stays in the deferred queue;
# BOUNCE_RCPT has no mailbox in Dovecot, LMTP answers 550 5.1.1 and Postfix sends an NDR to the
# sender; NDR_RCPT is a mailbox for such NDRs (postmaster@ is an alias of it). (Postfix's own
# error:/retry: transports cannot do this: smtpd already refuses their recipients at RCPT.)
HELD_RCPT=held@contoso.test
BOUNCE_RCPT=bounce@contoso.test
NDR_RCPT=ndr@contoso.test

# Prints the pid from DIR's master.pid (empty if none).
master_pid() {
    local f="$1/queue/pid/master.pid"
    if [ -r "$f" ]; then tr -d ' \n' <"$f"; fi
}

# True if something accepts TCP connections on $1:$2 (bash /dev/tcp, no tools).
port_open() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

fail_start() {
    local dir="$1"
    shift
    echo "lab.sh: start failed: $*" >&2
    if [ -f "$dir/maillog" ]; then
        echo "--- tail of $dir/maillog ---" >&2
        tail -n 40 "$dir/maillog" >&2
    fi
    if [ -s "$dir/postfix-start.out" ]; then
        echo "--- output of postfix start ---" >&2
        cat "$dir/postfix-start.out" >&2
    fi
    # Postfix commands print their fatal errors only to a terminal (else to
    # syslog, absent here): rerun the config check under script(1) to see them.
    if [ -f "$dir/etc/main.cf" ] && command -v script >/dev/null 2>&1; then
        echo "--- postfix check ---" >&2
        script -qec "postfix -c '$dir/etc' check" /dev/null >&2 </dev/null || true
    fi
    stop_instance "$dir" >/dev/null 2>&1 || true
    if [ -d "$dir/dovecot" ]; then bash "$(sasl_script)" stop "$dir/dovecot" >/dev/null 2>&1 || true; fi
    if [ -d "$dir/imap" ]; then bash "$(imap_script)" stop "$dir/imap" >/dev/null 2>&1 || true; fi
    exit 1
}

make_certs() {
    local dir="$1"
    # The Rust tests bring certificates from the product's lab CA (src/lab/pki.rs, through
    # tests/support/postfix.rs); openssl makes them only when this script is run by hand.
    if [ -n "${MXTRACE_LAB_CERTS:-}" ]; then
        install -m 644 "$MXTRACE_LAB_CERTS/ca.pem" "$MXTRACE_LAB_CERTS/server.pem" "$dir/"
        install -m 600 "$MXTRACE_LAB_CERTS/server.key" "$dir/"
        return
    fi
    (
        cd "$dir"
        umask 077
        # Private CA (EC keys: fast to generate).
        openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
            -keyout ca.key -out ca.pem -days 3650 -subj "/CN=mxtrace test CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
        openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
            -keyout server.key -out server.csr -subj "/CN=$TLS_NAME" 2>/dev/null
        printf '%s\n' \
            "basicConstraints=critical,CA:FALSE" \
            "keyUsage=critical,digitalSignature" \
            "extendedKeyUsage=serverAuth" \
            "subjectAltName=DNS:$TLS_NAME" >server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
            -days 3650 -sha256 -extfile server.ext -out server.pem 2>/dev/null
        rm -f server.csr server.ext ca.srl
        chmod 644 ca.pem server.pem
    )
}

write_config() {
    local dir="$1" addr="$2" p_smtp="$3" p_tlsreq="$4" p_smtps="$5"
    local etc="$dir/etc"

    cat >"$etc/main.cf" <<EOF
# Private mxtrace test instance; generated by tests/support/postfix/lab.sh.
compatibility_level = 3.6
config_directory = $etc
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-mxtrace

# No syslog daemon on the test machines: log to a file (needs the postlog
# service in master.cf, and the path must match maillog_file_prefixes).
maillog_file = $dir/maillog
maillog_file_prefixes = $dir

# The listeners in master.cf bind ADDR:PORT explicitly, so nothing listens
# anywhere else. inet_interfaces must name addresses configured on an
# interface: "127.0.0.2" is fatal ("no local interface found") although it
# binds fine, so use loopback-only (= 127.0.0.1 with ipv4).
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = $TLS_NAME
mydomain = $DOMAIN
myorigin = \$myhostname
mydestination =
# Empty: the default contains 127.0.0.0/8 and loopback clients could relay.
mynetworks =
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_client_restrictions =
smtpd_helo_restrictions =
smtpd_sender_restrictions =
smtpd_recipient_restrictions =

# No outside network: never look anything up in DNS (the greeting must be
# immediate, no reverse lookup of the client).
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtp_host_lookup = native
lmtp_host_lookup = native

alias_maps =
alias_database =
local_transport = error:5.1.1 local delivery disabled
default_transport = error:5.4.4 outbound delivery disabled
relay_transport = error:5.4.4 outbound delivery disabled
biff = no
append_dot_mydomain = no
readme_directory = no
smtpd_banner = \$myhostname ESMTP mxtrace-lab
delay_warning_time = 0
notify_classes =
# No inflow throttling: MAIL FROM otherwise sleeps in_flow_delay (1s) once the sessions that
# end in RSET have used up the flow tokens, as the repeated sessions of benches/run.sh do.
in_flow_delay = 0

virtual_mailbox_domains = $DOMAIN
virtual_mailbox_maps = texthash:$etc/vmailbox
virtual_mailbox_base = $dir/mail
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
virtual_minimum_uid = 100

smtpd_tls_security_level = may
smtpd_tls_chain_files = $dir/server.key, $dir/server.pem
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtpd_tls_session_cache_database =
EOF

    # Maildir delivery (trailing slash) to DIR/mail/contoso.test/user/.
    printf '%s\t%s\n' "$VALID_RCPT" "$DOMAIN/user/" >"$etc/vmailbox"
    if [ -n "${MXTRACE_LAB_IMAP:-}" ]; then
        # Delivery by LMTP to the Dovecot of dovecot/imap.sh (Sieve runs there), into the same
        # Maildirs.
        cat >>"$etc/main.cf" <<EOF

# MXTRACE_LAB_IMAP: mailboxes served by Dovecot (tests/support/dovecot/imap.sh).
virtual_transport = lmtp:unix:$dir/imap/lmtp
virtual_alias_maps = texthash:$etc/valias
EOF
        printf '%s\t%s\n' "$NDR_RCPT" "$DOMAIN/${NDR_RCPT%@*}/" "$HELD_RCPT" "$DOMAIN/${HELD_RCPT%@*}/" \
            "$BOUNCE_RCPT" "$DOMAIN/${BOUNCE_RCPT%@*}/" >>"$etc/vmailbox"
        printf '%s\t%s\n' "postmaster@$DOMAIN" "$NDR_RCPT" >"$etc/valias"
    fi

    cat >"$etc/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command + args
$addr:$p_smtp inet n - n - - smtpd
$addr:$p_tlsreq inet n - n - - smtpd
  -o syslog_name=postfix-mxtrace/tlsreq
  -o smtpd_tls_security_level=encrypt
$addr:$p_smtps inet n - n - - smtpd
  -o syslog_name=postfix-mxtrace/smtps
  -o smtpd_tls_wrappermode=yes
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    if [ -n "${MXTRACE_LAB_SUBMISSION:-}" ]; then
        # Submission (RFC 6409) as Debian's master.cf has it commented out: TLS required,
        # AUTH offered only inside TLS, relaying for authenticated clients only. SASL is
        # Dovecot's (tests/support/dovecot/sasl.sh), over its socket in DIR/dovecot.
        cat >>"$etc/master.cf" <<EOF
$addr:$MXTRACE_LAB_SUBMISSION inet n - n - - smtpd
  -o syslog_name=postfix-mxtrace/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_auth_only=yes
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_sasl_type=dovecot
  -o smtpd_sasl_path=$dir/dovecot/sasl/auth
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
EOF
    fi
}

sasl_script() {
    echo "$(dirname "${BASH_SOURCE[0]}")/../dovecot/sasl.sh"
}

imap_script() {
    echo "$(dirname "${BASH_SOURCE[0]}")/../dovecot/imap.sh"
}

start() {
    [ $# -eq 5 ] || usage
    local dir="$1" addr="$2" p_smtp="$3" p_tlsreq="$4" p_smtps="$5" p
    [ "$(id -u)" -eq 0 ] || die "must run as root"
    command -v postfix >/dev/null 2>&1 || die "postfix not installed (run tests/support/postfix/install.sh)"
    [[ "$addr" =~ ^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] \
        || die "ADDR must be an IPv4 address in 127.0.0.0/8, got '$addr'"
    local ports=("$p_smtp" "$p_tlsreq" "$p_smtps")
    if [ -n "${MXTRACE_LAB_SUBMISSION:-}" ]; then ports+=("$MXTRACE_LAB_SUBMISSION"); fi
    if [ -n "${MXTRACE_LAB_IMAP:-}" ] || [ -n "${MXTRACE_LAB_IMAPS:-}" ]; then
        [ -n "${MXTRACE_LAB_IMAP:-}" ] && [ -n "${MXTRACE_LAB_IMAPS:-}" ] \
            || die "MXTRACE_LAB_IMAP and MXTRACE_LAB_IMAPS go together (the IMAP and IMAPS ports)"
        # Not in "ports": Dovecot listens on them, and imap.sh has waited for them.
        for p in "$MXTRACE_LAB_IMAP" "$MXTRACE_LAB_IMAPS"; do
            case "$p" in '' | *[!0-9]*) die "bad port '$p'" ;; esac
        done
    fi
    for p in "${ports[@]}"; do
        case "$p" in
            '' | *[!0-9]*) die "bad port '$p'" ;;
        esac
    done
    [ -d "$dir" ] || die "DIR '$dir' does not exist"
    dir="$(cd "$dir" && pwd -P)"
    # The path goes unquoted into main.cf and lab.env.
    [[ "$dir" =~ ^[A-Za-z0-9._/+-]+$ ]] || die "DIR path '$dir' has characters other than [A-Za-z0-9._/+-]"
    if [ -n "$(ls -A "$dir")" ] && [ ! -f "$dir/etc/main.cf" ]; then
        die "DIR '$dir' must be empty (or a previous lab directory)"
    fi
    if [ -n "$(instance_pid "$dir")" ]; then
        die "an instance is already running in $dir"
    fi

    # Postfix daemons run as user postfix and chdir into the queue directory:
    # DIR (often a 0700 mktemp -d) and its parents must be traversable.
    chmod a+x "$dir"
    mkdir -p "$dir/etc" "$dir/queue" "$dir/data" "$dir/mail"
    chmod 755 "$dir/etc" "$dir/queue"
    chown postfix "$dir/data"
    chmod 700 "$dir/data"
    chown 65534:65534 "$dir/mail"
    : >"$dir/maillog"
    if command -v runuser >/dev/null 2>&1 \
        && ! runuser -u postfix -- test -x "$dir/queue"; then
        die "user postfix cannot reach $dir/queue (check permissions of its parents)"
    fi

    make_certs "$dir"
    if [ -n "${MXTRACE_LAB_SUBMISSION:-}" ]; then
        bash "$(sasl_script)" start "$dir/dovecot" || fail_start "$dir" "dovecot did not start"
    fi
    if [ -n "${MXTRACE_LAB_IMAP:-}" ]; then
        bash "$(imap_script)" start "$dir/imap" "$dir" "$addr" "$MXTRACE_LAB_IMAP" "$MXTRACE_LAB_IMAPS" \
            || fail_start "$dir" "dovecot (imap) did not start"
    fi
    write_config "$dir" "$addr" "$p_smtp" "$p_tlsreq" "$p_smtps"
    # Postfix's load_file() sleeps while a file it reads (main.cf, texthash
    # maps) was modified within the last ~2 s, which made every start take ~2 s
    # and could stall the first SMTP session. Backdate the generated files.
    touch -d '-1 minute' "$dir/etc/main.cf" "$dir/etc/master.cf" "$dir/etc/vmailbox"
    if [ -n "${MXTRACE_LAB_IMAP:-}" ]; then touch -d '-1 minute' "$dir/etc/valias"; fi

    # "postfix -c" is all a root-run instance needs: the alternate_config_directories
    # list in the default /etc/postfix/main.cf is only consulted by the set-gid
    # commands (postdrop, postqueue) when run by non-root users, which the tests
    # never do. "postfix start" runs "post-install create-missing" itself, which
    # creates the queue subdirectories with the right owners (postfix/postdrop).
    if ! postfix -c "$dir/etc" start >"$dir/postfix-start.out" 2>&1; then
        fail_start "$dir" "postfix start exited non-zero"
    fi

    local deadline=$((SECONDS + 15)) ok
    while :; do
        ok=1
        for p in "${ports[@]}"; do
            port_open "$addr" "$p" || { ok=0; break; }
        done
        [ "$ok" -eq 1 ] && break
        [ "$SECONDS" -lt "$deadline" ] || fail_start "$dir" "ports not accepting connections after 15 s"
        sleep 0.05
    done

    local pid
    pid="$(instance_pid "$dir")"
    [ -n "$pid" ] || fail_start "$dir" "no live master pid in $dir/queue/pid/master.pid"

    cat >"$dir/lab.env.tmp" <<EOF
ADDR=$addr
PORT_SMTP=$p_smtp
PORT_TLSREQ=$p_tlsreq
PORT_SMTPS=$p_smtps
CA_FILE=$dir/ca.pem
DOMAIN=$DOMAIN
VALID_RCPT=$VALID_RCPT
TLS_NAME=$TLS_NAME
MASTER_PID=$pid
EOF
    if [ -n "${MXTRACE_LAB_SUBMISSION:-}" ]; then
        echo "PORT_SUBMISSION=$MXTRACE_LAB_SUBMISSION" >>"$dir/lab.env.tmp"
        cat "$dir/dovecot/sasl.env" >>"$dir/lab.env.tmp"
    fi
    if [ -n "${MXTRACE_LAB_IMAP:-}" ]; then
        cat "$dir/imap/imap.env" >>"$dir/lab.env.tmp"
        printf '%s\n' "HELD_RCPT=$HELD_RCPT" "BOUNCE_RCPT=$BOUNCE_RCPT" "NDR_RCPT=$NDR_RCPT" \
            "JUNK_SUBJECT_TAG=[junk-me]" "JUNK_HEADER=X-Spam-Flag" "JUNK_HEADER_VALUE=YES" \
            >>"$dir/lab.env.tmp"
        # sasl.sh has added the OAUTH_* lines when there is a submission listener.
        if [ -n "${MXTRACE_LAB_OAUTH:-}" ] && [ -z "${MXTRACE_LAB_SUBMISSION:-}" ]; then
            grep '^OAUTH_' "${MXTRACE_LAB_OAUTH%/}/oauth.env" >>"$dir/lab.env.tmp"
        fi
    fi
    mv "$dir/lab.env.tmp" "$dir/lab.env"
    echo ready
}

# The instance's live master pid, or nothing. A pid counts only if that
# process runs in DIR/queue (master chdirs there; a zombie has no cwd), so a
# stale pid file can never make us signal an unrelated process.
instance_pid() {
    local dir="$1" pid cwd
    pid="$(master_pid "$dir")"
    case "$pid" in '' | *[!0-9]*) return 0 ;; esac
    cwd="$(readlink "/proc/$pid/cwd" 2>/dev/null)" || return 0
    if [ "$cwd" = "$dir/queue" ]; then echo "$pid"; fi
}

# True if process group $1 has a live (non-zombie) process. master runs
# setsid(), so its group is exactly this instance: master plus the daemons it
# forked. Zombies count as gone: where pid 1 is slow to reap (as in this
# sandbox, ~1.5 s) an exited master stays a zombie and kill -0 still succeeds.
group_alive() {
    local group="$1" f line state pgrp
    for f in /proc/[0-9]*/stat; do
        { read -r line <"$f"; } 2>/dev/null || continue
        # After "PID (COMM) ": STATE PPID PGRP ...
        read -r state _ pgrp _ <<<"${line##*) }"
        if [ "$pgrp" = "$group" ] && [ "$state" != Z ] && [ "$state" != X ]; then
            return 0
        fi
    done
    return 1
}

stop_instance() {
    local dir="$1" pid
    pid="$(instance_pid "$dir")"
    [ -n "$pid" ] || return 0
    # Same as "postfix -c DIR/etc stop" (postfix-script sends SIGTERM to the
    # pid in master.pid), minus its fixed 1 s sleeps. On SIGTERM master
    # signals its whole process group and exits; wait (up to 5 s) until no
    # process of that group is left, so the ports are free on return.
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        group_alive "$pid" || return 0
        sleep 0.05
    done
    # Like postfix-script's "stopping the Postfix mail system with force".
    echo "lab.sh: instance (master $pid) still running 5 s after SIGTERM; killing its process group" >&2
    kill -KILL -- "-$pid" 2>/dev/null || true
}

stop() {
    [ $# -eq 1 ] || usage
    local dir="$1"
    [ -d "$dir" ] || return 0
    dir="$(cd "$dir" && pwd -P)"
    stop_instance "$dir"
    # Each Dovecot master sleeps 1 s while shutting down (after telling its children to close
    # their listeners): stop both at once.
    local waits=()
    if [ -d "$dir/dovecot" ]; then bash "$(sasl_script)" stop "$dir/dovecot" & waits+=($!); fi
    if [ -d "$dir/imap" ]; then bash "$(imap_script)" stop "$dir/imap" & waits+=($!); fi
    local w
    for w in "${waits[@]}"; do wait "$w"; done
}

recipients() {
    [ $# -ge 1 ] || usage
    local dir="$1" a
    shift
    [ -f "$dir/etc/main.cf" ] || die "no lab instance in '$dir'"
    dir="$(cd "$dir" && pwd -P)"
    [ -n "$(instance_pid "$dir")" ] || die "the instance in $dir is not running"
    : >"$dir/etc/vmailbox.tmp"
    for a in "$@"; do
        [[ "$a" =~ ^[A-Za-z0-9._+-]+@$DOMAIN$ ]] || die "'$a' is not an address of $DOMAIN"
        printf '%s\t%s\n' "$a" "$DOMAIN/${a%@*}/" >>"$dir/etc/vmailbox.tmp"
    done
    # Backdated, as at start: Postfix waits while a table it reads is younger than ~2 s.
    touch -d '-1 minute' "$dir/etc/vmailbox.tmp"
    mv "$dir/etc/vmailbox.tmp" "$dir/etc/vmailbox"
    # Each smtpd reads the table when it starts; reload makes every one restart after its
    # current session, so the next session sees the new table.
    postfix -c "$dir/etc" reload >/dev/null 2>&1 || die "postfix reload failed"
}

[ $# -ge 1 ] || usage
cmd="$1"
shift
case "$cmd" in
    start) start "$@" ;;
    stop) stop "$@" ;;
    recipients) recipients "$@" ;;
    *) usage ;;
esac
