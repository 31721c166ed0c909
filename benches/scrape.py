#!/usr/bin/env python3
"""Sustained scrape load for benches/run.sh (e), loopback or a private namespace only.

  scrape.py NAME URL_PREFIX TARGETS_FILE SECONDS PID

Every 15 s, scrapes URL_PREFIX + target for every target (64 at a time, as a Prometheus with
many targets does), for SECONDS; samples the exporter's RSS and CPU time (/proc/PID) at each
round; prints one Markdown row: probes answered, failures, CPU ms per probe, RSS after the
first round (the warm-up) and at the end, and the peak.
"""
import concurrent.futures
import os
import sys
import time
import urllib.request

name, prefix, targets_file, seconds, pid = sys.argv[1:6]
seconds = float(seconds)
targets = [l.strip() for l in open(targets_file) if l.strip()]
tick = os.sysconf("SC_CLK_TCK")


def cpu_s():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick


def rss_mb():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"):
            return int(l.split()[1]) / 1024
    return 0.0


def scrape(t):
    try:
        with urllib.request.urlopen(prefix + t, timeout=10) as r:
            body = r.read().decode()
        return any(l in ("probe_success 1", "mxtrace_probe_success 1") for l in body.splitlines())
    except OSError:
        return False


answered = failed = 0
rss = []
start = time.monotonic()
cpu0 = cpu_s()
with concurrent.futures.ThreadPoolExecutor(64) as pool:
    while time.monotonic() - start < seconds:
        round_start = time.monotonic()
        for ok in pool.map(scrape, targets):
            answered += 1
            failed += not ok
        rss.append(rss_mb())
        time.sleep(max(0.0, 15 - (time.monotonic() - round_start)))
cpu = cpu_s() - cpu0
after_warmup = rss[1] if len(rss) > 1 else rss[0]
print(f"| {name} | {answered} | {failed} | {1000 * cpu / max(answered, 1):.3f} | "
      f"{after_warmup:.1f} -> {rss[-1]:.1f} | {max(rss):.1f} |")
