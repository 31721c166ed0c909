#!/usr/bin/env bash
# Benchmarks of issue 11, run by hand (not by CI), on loopback and in a private network
# namespace only. Needs root (Postfix, ip netns) and benches/install.sh.
#
#   benches/run.sh [a|b|c|d ...]        default: all four
#
# MXTRACE=path picks the binary (default target/release/mxtrace, else target/debug/mxtrace).
# N_B (targets per rate run, default 2000), N_C (targets of the RSS run, default 10000),
# N_D (probes each way in (d), default 5).
# Prints a Markdown table per benchmark; every ratio is measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
HERE=benches
BIN=${MXTRACE:-}
[ -n "$BIN" ] || { [ -x target/release/mxtrace ] && BIN=target/release/mxtrace || BIN=target/debug/mxtrace; }
N_B=${N_B:-2000}
N_C=${N_C:-10000}
WORK=$(mktemp -d /tmp/mxbench.XXXXXX)
NS=mxbench$$
PIDS=()
PF=""

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ -n "$PF" ]; then
        bash tests/support/postfix/lab.sh stop "$PF" >/dev/null 2>&1 || true
        rm -rf "$PF"
    fi
    # The servers started in the namespace (the pids above are their `ip netns exec` shells).
    if [ -e "/var/run/netns/$NS" ]; then
        for p in $(ip netns pids "$NS"); do kill "$p" 2>/dev/null || true; done
        ip netns del "$NS" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
# Waits (10 s at most) until something accepts connections on $1:$2, in namespace $3 if given.
wait_port() {
    for _ in $(seq 100); do
        if [ -n "${3:-}" ]; then
            ip netns exec "$3" bash -c "(exec 3<>/dev/tcp/$1/$2)" 2>/dev/null && return 0
        else
            (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
        fi
        sleep 0.1
    done
    echo "nothing listens on $1:$2" >&2
    return 1
}
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }

postfix_lab() {
    PF=$(mktemp -d /tmp/mxbench-pf.XXXXXX)
    bash tests/support/postfix/lab.sh start "$PF" 127.0.0.77 2625 2626 2627 >/dev/null
    # shellcheck disable=SC1091
    . "$PF/lab.env"
}

# A network namespace with only its own loopback: servers there may bind 0.0.0.0 (every
# 127.x address is then a distinct target) without listening on any real interface.
netns() {
    ip netns add "$NS"
    ip -n "$NS" link set lo up
}
inns() { ip netns exec "$NS" "$@"; }

targets() { # N PORT: N distinct loopback targets
    python3 -c "
import sys
n, port = int(sys.argv[1]), sys.argv[2]
for i in range(n):
    print(f'127.{1 + i // 64516}.{1 + (i // 254) % 254}.{1 + i % 254}:{port}')" "$1" "$2"
}

bench_a() {
    postfix_lab
    local args=("$ADDR:$PORT_SMTP" --tls-ca-file "$CA_FILE" --tls-name "$TLS_NAME" --ehlo bench.test
        --from a@bench.test --rcpt "$VALID_RCPT" --json)
    "$BIN" probe "${args[@]}" >/dev/null || true  # a first run: Postfix starts its processes
    local t0 t1 t2
    t0=$(now)
    for i in $(seq 30); do "$BIN" probe "${args[@]}" >"$WORK/a$i.json"; done
    t1=$(now)
    for _ in $(seq 30); do
        swaks --server "$ADDR" --port "$PORT_SMTP" --tls --helo bench.test --from a@bench.test \
            --to "$VALID_RCPT" --quit-after RCPT --silent 2 >/dev/null
    done
    t2=$(now)
    local m s
    m=$(secs "$t0" "$t1"); s=$(secs "$t1" "$t2")
    echo "### (a) 30 sequential STARTTLS transactions to RCPT, Postfix on loopback"
    echo "| tool | total s | ms per transaction | speed-up |"
    echo "|---|---|---|---|"
    python3 - "$m" "$s" "$WORK" <<'PY'
import json, statistics, sys
m, s, work = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
print(f"| mxtrace probe (a process each) | {m:.2f} | {m/30*1000:.1f} | {s/m:.2f}x |")
print(f"| swaks --tls --quit-after RCPT | {s:.2f} | {s/30*1000:.1f} | 1x |")
# Where mxtrace's wall time goes: the probe's own clock (connect to QUIT, which is the network
# and Postfix) against the whole process. Any client waits the probe's time, so swaks's time
# over it is the most a process a transaction can reach against this server.
runs = [json.load(open(f"{work}/a{i}.json")) for i in range(1, 31)]
probe = statistics.median(r["elapsed_ms"] for r in runs)
stages = {}
for r in runs:
    for x in r["stages"]:
        stages.setdefault(x["stage"], []).append(x["elapsed_ms"])
per = m / 30 * 1000
print(f"\nmedian of 30 probes: {probe:.1f} ms from connect to QUIT's reply, of {per:.1f} ms a process"
      f" ({per - probe:.1f} ms start-up, set-up and exit); ceiling for this server,"
      f" swaks's time over the probe's: {s / 30 * 1000 / probe:.1f}x")
print("median stage times (ms): " + ", ".join(f"{k} {statistics.median(v):.1f}" for k, v in stages.items()))
PY
}

bench_b() {
    netns
    inns smtp-sink -u nobody 0.0.0.0:2525 4096 & PIDS+=($!)
    wait_port 127.0.0.1 2525 "$NS"
    echo "### (b) sessions/s, sweep vs smtp-source against smtp-sink (no TLS, with DATA: the same stages)"
    echo "| concurrency | targets | smtp-source s/s | mxtrace sweep s/s | ratio |"
    echo "|---|---|---|---|---|"
    for c in 1 100 1000; do
        local n=$N_B
        [ "$c" = 1 ] && n=$((N_B / 4))
        targets "$n" 2525 >"$WORK/b.txt"
        local t0 t1 t2
        t0=$(now)
        inns smtp-source -s "$c" -m "$n" -f a@bench.test -t b@bench.test 127.0.0.1:2525
        t1=$(now)
        inns "$BIN" sweep "$WORK/b.txt" --concurrency "$c" --per-ip "$c" --per-subnet "$c" \
            --starttls never --ehlo bench.test --from a@bench.test --rcpt b@bench.test --data \
            >"$WORK/b.jsonl" 2>"$WORK/b.err" || true
        t2=$(now)
        python3 - "$c" "$n" "$(secs "$t0" "$t1")" "$(secs "$t1" "$t2")" "$WORK/b.jsonl" <<'PY'
import json, sys
c, n, src, mx = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
ok = sum(1 for l in open(sys.argv[5]) if json.loads(l).get("verdict", {}).get("passed"))
print(f"| {c} | {n} ({ok} passed) | {n/src:.0f} | {n/mx:.0f} | {src/mx:.2f}x |")
PY
    done
}

bench_c() {
    [ -e "/var/run/netns/$NS" ] || netns
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=sink.test -keyout "$WORK/k.pem" -out "$WORK/c.pem" 2>/dev/null
    inns python3 "$HERE/sinks.py" tls 2587 "$WORK/c.pem" "$WORK/k.pem" 0.0.0.0 & PIDS+=($!)
    wait_port 127.0.0.1 2587 "$NS"
    targets "$N_C" 2587 >"$WORK/c.txt"
    local t0 t1
    t0=$(now)
    inns /usr/bin/time -v "$BIN" sweep "$WORK/c.txt" --concurrency 1000 --per-ip 1000 \
        --per-subnet 1000 --ehlo bench.test --from a@bench.test --rcpt b@bench.test \
        >"$WORK/c.jsonl" 2>"$WORK/c.err" || true
    t1=$(now)
    echo "### (c) peak RSS of sweep: $N_C targets, 1,000 concurrent STARTTLS sessions"
    python3 - "$WORK/c.err" "$WORK/c.jsonl" "$(secs "$t0" "$t1")" <<'PY'
import json, re, sys
err = open(sys.argv[1]).read()
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1))
lines = [json.loads(l) for l in open(sys.argv[2])]
tls = sum(1 for l in lines if l.get("tls") and l["tls"].get("version"))
ok = sum(1 for l in lines if l.get("verdict", {}).get("passed"))
print(f"| targets | results | with TLS | passed | peak RSS | wall s |\n|---|---|---|---|---|---|")
print(f"| {len(lines)} | {len(lines)} | {tls} | {ok} | {rss/1024:.1f} MB | {float(sys.argv[3]):.1f} |")
PY
}

# (d) The bound is honest: each stage's round trips x RTT plus its time without the proxy (the
# server's own processing, same Postfix, same run). The proxy (threads, time.sleep) and mxtrace
# run at real-time priority when chrt allows it: (d) counts round trips, and on a loaded machine
# every wake-up otherwise waits in the run queue (PROXY_LOG=1 on the proxy prints how late each
# chunk left; D_RT=0 runs both at normal priority). Medians of N_D probes each way.
bench_d() {
    [ -n "$PF" ] || postfix_lab
    local rt=()
    [ "${D_RT:-1}" = 0 ] || { chrt -f 10 true 2>/dev/null && rt=(chrt -f 10); }
    "${rt[@]}" python3 "$HERE/sinks.py" proxy 2699 "$ADDR:$PORT_SMTP" 25 & PIDS+=($!)
    wait_port 127.0.0.1 2699
    local common=(--tls-ca-file "$CA_FILE" --tls-name "$TLS_NAME" --ehlo bench.test
        --from a@bench.test --rcpt "$VALID_RCPT" --json)
    for i in $(seq "${N_D:-5}"); do
        "${rt[@]}" "$BIN" probe "$ADDR:$PORT_SMTP" "${common[@]}" >"$WORK/d-direct-$i.json" || true
        "${rt[@]}" "$BIN" probe 127.0.0.1:2699 "${common[@]}" >"$WORK/d-proxy-$i.json" || true
    done
    echo "### (d) one probe through a proxy delaying every chunk 25 ms each way (RTT 50 ms)${rt:+, real-time priority}"
    python3 - "$WORK" <<'PY'
import glob, json, statistics, sys
def stages(kind):
    runs = [json.load(open(f)) for f in sorted(glob.glob(f"{sys.argv[1]}/d-{kind}-*.json"))]
    names = [s["stage"] for s in runs[0]["stages"]]
    med = {n: statistics.median(s["elapsed_ms"] for r in runs for s in r["stages"] if s["stage"] == n)
           for n in names}
    return names, med, statistics.median(r["elapsed_ms"] for r in runs), len(runs)
# Round trips each stage needs at best: the proxy accepts the TCP connection itself, so the
# banner is one way (0.5) plus the proxy's own connect upstream; TLS 1.3 is one round trip;
# MAIL and RCPT are pipelined (one).
rtts = {"connect": 0, "banner": 0.5, "tls_handshake": 1, "rcpt_to": 0}
names, direct, dtot, n = stages("direct")
_, proxied, ptot, _ = stages("proxy")
print(f"medians of {n} probes each\n")
print("| stage | without proxy ms | round trips | bound ms | through proxy ms | over bound |")
print("|---|---|---|---|---|---|")
tb = tm = 0.0
for name in names:
    if name == "rcpt_to":  # same write as MAIL: its end, not its length, is what counts
        continue
    r = rtts.get(name, 1)
    b = r * 50 + direct[name]
    if name == "banner":  # the proxy connects upstream only once it accepted us: in this stage
        b += direct["connect"]
    tb += b; tm += proxied[name]
    print(f"| {name} | {direct[name]:.1f} | {r:g} | {b:.1f} | {proxied[name]:.1f} | {proxied[name] - b:+.1f} |")
print(f"| sum of stages | {sum(v for k, v in direct.items() if k != 'rcpt_to'):.1f} | | {tb:.1f} | {tm:.1f} | {100 * (tm - tb) / tb:+.1f}% |")
print(f"\nprobe elapsed_ms (median): {dtot} without the proxy, {ptot} through it")
PY
}

echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg); binary $BIN"
for b in "${@:-a b c d}"; do
    for x in $b; do "bench_$x"; echo; done
done
