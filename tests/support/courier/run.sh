#!/usr/bin/env bash
# Runs one Courier ESMTP listener for the real-peer tests, in the foreground, from a test's own
# directory: tests/support/courier/run.sh DIR PORT
#   DIR/etc  is mounted on /etc/courier     (me, locals, authdaemonrc, userdb, esmtpd.pem, esmtpd)
#   DIR/var  is mounted on /var/lib/courier (the queue: tmp, msgs, msgq, track, ...)
#   DIR/run  is mounted on /run             (authdaemond's socket, /run/courier/authdaemon)
# and the unpacked programs (tests/support/courier/install.sh) on /usr/lib/courier and
# /usr/lib/courier-authlib, where they have their paths compiled in. Run it as
#   unshare --mount --propagation private --pid --fork --kill-child -- run.sh DIR PORT
# so that the mounts are private to it and, when the unshare process is stopped (by its pid,
# with SIGKILL: with --fork it ignores TERM), the kernel ends every process of the PID
# namespace: authdaemond, couriertcpd and its children. makeuserdb builds etc/userdb.dat; authdaemond runs in the background; couriertcpd
# runs in the foreground with the environment of DIR/etc/esmtpd (the variables
# /usr/lib/courier/esmtpd would give courieresmtpd).
set -euo pipefail
dir="$1" port="$2"
dest="${MXTRACE_PEERS_DIR:-/opt/mxtrace-peers}/courier"

mount --bind "$dir/etc" /etc/courier
mount --bind "$dir/var" /var/lib/courier
mount --bind "$dir/run" /run
mount --bind "$dest/usr/lib/courier" /usr/lib/courier
mount --bind "$dest/usr/lib/courier-authlib" /usr/lib/courier-authlib
export LD_LIBRARY_PATH="$dest/usr/lib"
mkdir -p /run/courier/authdaemon
chown courier:courier /run/courier/authdaemon
chmod 750 /run/courier/authdaemon

# The .dat files Courier reads, from the test's text files (what makeuserdb and
# makeacceptmailfor do, with the paths they have compiled in).
PATH="$dest/usr/sbin:$dest/usr/bin:$PATH" perl "$dest/usr/sbin/makeuserdb"
/usr/lib/courier/makedat -src=/etc/courier/esmtpacceptmailfor.dir \
    -file=/etc/courier/esmtpacceptmailfor.dat -tmp=/etc/courier/esmtpacceptmailfor.tmp
/usr/lib/courier/courier-authlib/authdaemond &
for _ in $(seq 100); do
    [ -S /run/courier/authdaemon/socket ] && break
    sleep 0.05
done

set -a
. /etc/courier/esmtpd
set +a
"$dest/usr/sbin/couriertcpd" -address=127.0.0.1 -user=courier -group=courier \
    -nodnslookup -noidentlookup -maxprocs=20 -maxperip=20 -maxperc=20 \
    "$port" /usr/lib/courier/courier/modules/esmtp/courieresmtpd &
# This shell stays the namespace's PID 1 (it does not exec couriertcpd): --kill-child's SIGKILL
# reaches it when unshare is stopped, and its end ends the namespace. couriertcpd could not
# be that process: its parent-death signal is cleared when it drops to the user courier. If
# couriertcpd exits (a port taken), so does this shell, and the test sees the log.
wait
