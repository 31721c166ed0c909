#!/usr/bin/env bash
# Benchmarks of issues 11 and 30, run by hand (not by CI), on loopback and in a private network
# namespace only. Needs root (Postfix, ip netns) and benches/install.sh. Side by side, in one
# script: swaks (a), smtp-source (b), swaks in parallel (t), prometheus-blackbox-exporter (e).
#
#   benches/run.sh [a|b|t|c|d|e ...]    default: a b t c d
#
# MXTRACE=path picks the binary (default target/release/mxtrace, else target/debug/mxtrace).
# N_A (runs per repetition of (a), default 30), REPS (repetitions of (a), (b) and (t): the
# tables give the median and the range, default 3), N_B (targets per rate run, default 2000),
# N_T (targets of the STARTTLS rate run, default 1000), N_C (targets of the RSS run, default
# 100000) and C_C (its concurrency, default 5000), N_D (probes each way in (d), default 5),
# N_E (targets of the exporter run, default 1000), E_SECS (its length, default 600, one
# scrape of every target each 15 s).
# Prints a Markdown table per benchmark; every ratio is measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
HERE=benches
BIN=${MXTRACE:-}
[ -n "$BIN" ] || { [ -x target/release/mxtrace ] && BIN=target/release/mxtrace || BIN=target/debug/mxtrace; }
N_A=${N_A:-30}
REPS=${REPS:-3}
N_B=${N_B:-2000}
N_T=${N_T:-1000}
N_C=${N_C:-100000}
C_C=${C_C:-5000}
N_E=${N_E:-1000}
E_SECS=${E_SECS:-600}
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
    # Another server there (a lab left running) would answer instead, with a certificate the
    # bench's CA does not sign: every probe would then read the system store and time that.
    if (exec 3<>/dev/tcp/127.0.0.77/2625) 2>/dev/null; then
        echo "something already listens on 127.0.0.77:2625; stop it first" >&2
        return 1
    fi
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
    # No TIME_WAIT in the bench's namespace: each run of (b) leaves thousands for 60 s, and
    # the next run's connect() then spends its time finding a free port (smtp-source, one
    # destination, most: its 2,000 sessions went from 174 to 508 ms over five runs). Every
    # run, of either tool, starts from the same state.
    ip netns exec "$NS" sysctl -qw net.ipv4.tcp_max_tw_buckets=0
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
    local t0 t1 t2 r
    : >"$WORK/a.times"
    for r in $(seq "$REPS"); do
        t0=$(now)
        for i in $(seq "$N_A"); do "$BIN" probe "${args[@]}" >"$WORK/a$r-$i.json"; done
        t1=$(now)
        for _ in $(seq "$N_A"); do
            swaks --server "$ADDR" --port "$PORT_SMTP" --tls --helo bench.test --from a@bench.test \
                --to "$VALID_RCPT" --quit-after RCPT --silent 2 >/dev/null
        done
        t2=$(now)
        echo "$(secs "$t0" "$t1") $(secs "$t1" "$t2") $(cut -d' ' -f1 /proc/loadavg)" >>"$WORK/a.times"
    done
    echo "### (a) $N_A sequential STARTTLS transactions to RCPT, Postfix on loopback, $REPS times"
    python3 - "$N_A" "$WORK" <<'PY'
import glob, json, statistics, sys
n, work = int(sys.argv[1]), sys.argv[2]
reps = [tuple(map(float, l.split())) for l in open(f"{work}/a.times")]
ratio = sorted(s / m for m, s, _ in reps)
med = lambda xs: statistics.median(xs)
print("| tool | ms per transaction (median, range) | speed-up |\n|---|---|---|")
mx = [m / n * 1000 for m, _, _ in reps]; sw = [s / n * 1000 for _, s, _ in reps]
print(f"| mxtrace probe (a process each) | {med(mx):.1f} ({min(mx):.1f}-{max(mx):.1f}) | "
      f"**{med(ratio):.1f}x** ({ratio[0]:.1f}-{ratio[-1]:.1f}) |")
print(f"| swaks --tls --quit-after RCPT | {med(sw):.1f} ({min(sw):.1f}-{max(sw):.1f}) | 1x |")
print(f"\nload average (1 min) at the end of each repetition: {', '.join(f'{l:.2f}' for _, _, l in reps)}")
# The probe's own clock against its stages: the total is connect to QUIT's reply; the stages
# cover it but for what mxtrace does between them. Pipelined MAIL and RCPT overlap (each starts
# when the group was written), so the stages' sum is the union of their intervals.
def covered(stages):
    spans = sorted((s["started_ms"], s["started_ms"] + s["elapsed_ms"]) for s in stages)
    total, end = 0.0, 0.0
    for a, b in spans:
        total += max(0.0, b - max(a, end)); end = max(end, b)
    return total
runs = [json.load(open(f)) for f in glob.glob(f"{work}/a*-*.json")]
gap = sorted(100 * (r["elapsed_ms"] / covered(r["stages"]) - 1) for r in runs)
probe = med([r["elapsed_ms"] for r in runs])
print(f"median probe (connect to QUIT's reply): {probe:.2f} ms; total over the sum of its stages (overlaps once): "
      f"median {med(gap):+.1f}%, 90th percentile {gap[int(len(gap) * 0.9)]:+.1f}%, max {gap[-1]:+.1f}%")
stages = {}
for r in runs:
    for x in r["stages"]:
        stages.setdefault(x["stage"], []).append(x["elapsed_ms"])
print("median stage times (ms): " + ", ".join(f"{k} {med(v):.2f}" for k, v in stages.items()))
PY
}

# Medians and ranges of sessions/s from the "tool c n seconds" lines of $1.
rate_table() {
    python3 - "$1" "$2" <<'PY'
import statistics, sys
rows = {}
for l in open(sys.argv[1]):
    tool, c, n, secs = l.split()
    rows.setdefault((int(c), int(n)), {}).setdefault(tool, []).append(int(n) / float(secs))
ref = sys.argv[2]
print(f"| concurrency | targets | {ref} s/s (median, range) | mxtrace sweep s/s (median, range) | ratio (median, range) |")
print("|---|---|---|---|---|")
for (c, n), t in sorted(rows.items()):
    a, m = t[ref], t["mxtrace"]
    r = sorted(x / y for x, y in zip(m, a))
    f = lambda v: f"{statistics.median(v):.0f} ({min(v):.0f}-{max(v):.0f})"
    print(f"| {c} | {n} | {f(a)} | {f(m)} | **{statistics.median(r):.2f}x** ({r[0]:.2f}-{r[-1]:.2f}) |")
PY
}

b_source() { # CONCURRENCY N
    local t0 t1
    t0=$(now)
    inns smtp-source -s "$1" -m "$2" -f a@bench.test -t b@bench.test 127.0.0.1:2525
    t1=$(now)
    echo "smtp-source $1 $2 $(secs "$t0" "$t1")" >>"$WORK/b.rates"
}
b_sweep() { # CONCURRENCY N
    local t0 t1
    t0=$(now)
    inns "$BIN" sweep "$WORK/b.txt" --concurrency "$1" --per-ip "$1" --per-subnet "$1" \
        --starttls never --ehlo bench.test --from a@bench.test --rcpt b@bench.test --data \
        --json >"$WORK/b.jsonl" 2>"$WORK/b.err" || true
    t1=$(now)
    grep -q "$2 target(s): $2 passed" "$WORK/b.err" || { cat "$WORK/b.err" >&2; return 1; }
    echo "mxtrace $1 $2 $(secs "$t0" "$t1")" >>"$WORK/b.rates"
}

bench_b() {
    [ -e "/var/run/netns/$NS" ] || netns
    inns smtp-sink -u nobody 0.0.0.0:2525 4096 & PIDS+=($!)
    wait_port 127.0.0.1 2525 "$NS"
    echo "### (b) sessions/s, sweep vs smtp-source against smtp-sink (no TLS, with DATA: the same stages), $REPS runs each"
    : >"$WORK/b.rates"
    local c n r
    for c in 1 100 1000; do
        n=$N_B
        [ "$c" = 1 ] && n=$((N_B / 4))
        targets "$n" 2525 >"$WORK/b.txt"
        for r in $(seq "$REPS"); do
            # Each goes first every other run: whichever runs second finds the machine as the
            # first left it (caches, the sink's state).
            if [ $((r % 2)) = 1 ]; then
                b_source "$c" "$n"
                b_sweep "$c" "$n"
            else
                b_sweep "$c" "$n"
                b_source "$c" "$n"
            fi
        done
    done
    rate_table "$WORK/b.rates" smtp-source
    echo; echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# A STARTTLS sink (benches/sinks.py tls) in the namespace, once.
tls_sink() {
    [ -e "/var/run/netns/$NS" ] || netns
    [ -s "$WORK/c.pem" ] && return 0
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=sink.test -keyout "$WORK/k.pem" -out "$WORK/c.pem" 2>/dev/null
    inns python3 "$HERE/sinks.py" tls 2587 "$WORK/c.pem" "$WORK/k.pem" 0.0.0.0 & PIDS+=($!)
    wait_port 127.0.0.1 2587 "$NS"
}

# (t) The same transaction with STARTTLS (EHLO, STARTTLS, handshake, EHLO, MAIL, RCPT, QUIT):
# sweep against what a user would pick for TLS load, swaks (its TLS modules) run in parallel
# by xargs -P, against the same STARTTLS sink. Neither verifies the sink's certificate.
bench_t() {
    tls_sink
    echo "### (t) STARTTLS sessions/s, sweep vs swaks in parallel (xargs -P) against a STARTTLS sink, $REPS runs each"
    : >"$WORK/t.rates"
    local c r t0 t1 t2
    for c in 10 100; do
        targets "$N_T" 2587 >"$WORK/t.txt"
        for r in $(seq "$REPS"); do
            t0=$(now)
            inns xargs -P "$c" -I{} sh -c 'h={}; swaks --server "${h%:*}" --port "${h##*:}" --tls \
                --helo bench.test --from a@bench.test --to b@bench.test --quit-after RCPT \
                --silent 2 >/dev/null' <"$WORK/t.txt" || true
            t1=$(now)
            inns "$BIN" sweep "$WORK/t.txt" --concurrency "$c" --per-ip "$c" --per-subnet "$c" \
                --starttls require --ehlo bench.test --from a@bench.test --rcpt b@bench.test \
                --json >"$WORK/t.jsonl" 2>"$WORK/t.err" || true
            t2=$(now)
            grep -q "$N_T target(s): $N_T passed" "$WORK/t.err" || { cat "$WORK/t.err" >&2; return 1; }
            echo "swaks $c $N_T $(secs "$t0" "$t1")" >>"$WORK/t.rates"
            echo "mxtrace $c $N_T $(secs "$t1" "$t2")" >>"$WORK/t.rates"
        done
    done
    rate_table "$WORK/t.rates" swaks
    echo; echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# (c) Peak RSS: the JSON lines are counted as they come, not stored (100,000 are ~800 MB).
bench_c() {
    tls_sink
    targets "$N_C" 2587 >"$WORK/c.txt"
    local t0 t1
    t0=$(now)
    inns /usr/bin/time -v -o "$WORK/c.err" "$BIN" sweep "$WORK/c.txt" --concurrency "$C_C" \
        --per-ip "$C_C" --per-subnet "$C_C" --ehlo bench.test --from a@bench.test \
        --rcpt b@bench.test --json 2>/dev/null | python3 -c '
import json, sys
n = tls = ok = 0
for l in sys.stdin:
    l = json.loads(l); n += 1
    tls += bool(l.get("tls") and l["tls"].get("version"))
    ok += bool(l.get("verdict", {}).get("passed"))
print(n, tls, ok)' >"$WORK/c.counts" || true
    t1=$(now)
    echo "### (c) peak RSS of sweep: $N_C targets, $C_C concurrent STARTTLS sessions"
    python3 - "$WORK/c.err" "$WORK/c.counts" "$(secs "$t0" "$t1")" <<'PY'
import json, re, sys
err = open(sys.argv[1]).read()
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1))
n, tls, ok = map(int, open(sys.argv[2]).read().split())
print(f"| results | with TLS | passed | peak RSS | wall s |\n|---|---|---|---|---|")
print(f"| {n} | {tls} | {ok} | {rss/1024:.1f} MB | {float(sys.argv[3]):.1f} |")
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
# MAIL and RCPT are pipelined (one), and so are RSET and QUIT.
rtts = {"connect": 0, "banner": 0.5, "tls_handshake": 1, "rcpt_to": 0, "quit": 0}
names, direct, dtot, n = stages("direct")
_, proxied, ptot, _ = stages("proxy")
print(f"medians of {n} probes each\n")
print("| stage | without proxy ms | round trips | bound ms | through proxy ms | over bound |")
print("|---|---|---|---|---|---|")
tb = tm = 0.0
for name in names:
    if name in ("rcpt_to", "quit"):  # same write as MAIL, RSET: its end, not its length, counts
        continue
    r = rtts.get(name, 1)
    b = r * 50 + direct[name]
    if name == "banner":  # the proxy connects upstream only once it accepted us: in this stage
        b += direct["connect"]
    tb += b; tm += proxied[name]
    print(f"| {name} | {direct[name]:.1f} | {r:g} | {b:.1f} | {proxied[name]:.1f} | {proxied[name] - b:+.1f} |")
print(f"| sum of stages | {sum(v for k, v in direct.items() if k not in ('rcpt_to', 'quit')):.1f} | | {tb:.1f} | {tm:.1f} | {100 * (tm - tb) / tb:+.1f}% |")
print(f"\nprobe elapsed_ms (median): {dtot} without the proxy, {ptot} through it")
PY
}

# (e) The exporter under sustained load, side by side with Debian's prometheus-blackbox-exporter
# (its tcp prober with query_response, the SMTP example of its documentation), each alone for
# E_SECS: N_E targets (smtp-sink in the namespace, plain SMTP to RCPT, no TLS) scraped every
# 15 s by benches/scrape.py. RSS is sampled each round (flat memory: the end against the
# first round after warm-up); CPU per probe is the exporter's CPU time over the probes answered.
bench_e() {
    [ -e "/var/run/netns/$NS" ] || netns
    command -v prometheus-blackbox-exporter >/dev/null ||
        { echo "(e) needs prometheus-blackbox-exporter (benches/install.sh)" >&2; return 1; }
    inns smtp-sink -u nobody 0.0.0.0:2526 4096 & PIDS+=($!)
    wait_port 127.0.0.1 2526 "$NS"
    targets "$N_E" 2526 >"$WORK/e.txt"
    printf '%s\n' 'listen = "127.0.0.1:9125"' 'max_concurrency = 256' '[modules.smtp]' \
        'allowed_targets = ["127.0.0.0/8"]' 'starttls = "never"' 'ehlo = "bench.test"' \
        'from = "a@bench.test"' 'rcpt = ["b@bench.test"]' >"$WORK/e.toml"
    printf '%s\n' 'modules:' '  smtp:' '    prober: tcp' '    timeout: 5s' '    tcp:' \
        '      query_response:' '        - expect: "^220"' '        - send: "EHLO bench.test\r"' \
        '        - expect: "^250 "' '        - send: "MAIL FROM:<a@bench.test>\r"' \
        '        - expect: "^250"' '        - send: "RCPT TO:<b@bench.test>\r"' \
        '        - expect: "^250"' '        - send: "QUIT\r"' >"$WORK/e.yml"
    echo "### (e) exporters under sustained load: $N_E targets scraped every 15 s for $E_SECS s each"
    echo "| exporter | probes answered | failed | CPU ms per probe | RSS after warm-up -> end (MB) | peak RSS (MB) |"
    echo "|---|---|---|---|---|---|"
    local pid
    inns "$BIN" serve --config "$WORK/e.toml" >/dev/null 2>"$WORK/e-mx.log" & PIDS+=($!)
    wait_port 127.0.0.1 9125 "$NS"
    pid=$(pgrep -n -f "serve --config $WORK/e.toml")
    inns python3 "$HERE/scrape.py" mxtrace "http://127.0.0.1:9125/probe?module=smtp&target=" \
        "$WORK/e.txt" "$E_SECS" "$pid"
    kill "$pid"
    inns prometheus-blackbox-exporter --config.file "$WORK/e.yml" \
        --web.listen-address 127.0.0.1:9115 >/dev/null 2>"$WORK/e-bb.log" & PIDS+=($!)
    wait_port 127.0.0.1 9115 "$NS"
    pid=$(pgrep -n -f "config.file $WORK/e.yml")
    inns python3 "$HERE/scrape.py" blackbox_exporter \
        "http://127.0.0.1:9115/probe?module=smtp&target=" "$WORK/e.txt" "$E_SECS" "$pid"
    kill "$pid"
    echo; echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
}

echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg); binary $BIN"
for b in "${@:-a b t c d}"; do
    for x in $b; do "bench_$x"; echo; done
done
