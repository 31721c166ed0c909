//! `serve`'s round trips: each `[roundtrips.NAME]` of the config runs on its own schedule (a
//! round trip waits minutes for its message, longer than any scrape), and `/metrics` shows
//! the last result of each: success, delivery time (by mxtrace's clock and by the Received
//! chain), each hop's delay, the folder, the path, and the time of the last success, so a
//! zero-flow alert ("no probe arrived for 15 minutes") is one rule (monitoring/alerts.yml).

use mxtrace_core::exporter::config::{ExporterConfig, RoundtripEntry};
use mxtrace_proto::model::posture::Severity;
use mxtrace_proto::model::roundtrip::{DeliveryStatus, FolderKind, RoundtripReport};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};
use tokio::task::AbortHandle;

type Labels = Vec<(String, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// Beyond `within`, the time a run may take: connecting, logging in, sending, cleaning up.
const RUN_MARGIN: Duration = Duration::from_secs(300);

#[derive(Default)]
pub(super) struct RoundtripMetrics {
    success: Family<Labels, Gauge>,
    delivered: Family<Labels, Gauge>,
    in_junk: Family<Labels, Gauge>,
    seconds: Family<Labels, FloatGauge>,
    header_seconds: Family<Labels, FloatGauge>,
    hop_delay: Family<Labels, FloatGauge>,
    last_success: Family<Labels, FloatGauge>,
    last_run: Family<Labels, FloatGauge>,
    findings: Family<Labels, Gauge>,
    path: Family<Labels, Gauge>,
    runs: Family<Labels, Counter>,
    tasks: Mutex<Vec<AbortHandle>>,
    /// Each round trip's hop and path series of its last delivered copy: removed when the
    /// next copy took another path.
    shown: Mutex<HashMap<String, Vec<Labels>>>,
}

fn name(n: &str) -> Labels {
    vec![("roundtrip".to_string(), n.to_string())]
}

fn with(n: &str, k: &str, v: &str) -> Labels {
    let mut l = name(n);
    l.push((k.to_string(), v.to_string()));
    l
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl RoundtripMetrics {
    pub(super) fn register(&self, r: &mut Registry) {
        let m = self;
        r.register(
            "mxtrace_roundtrip_success",
            "1 when the last round trip was delivered to the inbox with no failing finding",
            m.success.clone(),
        );
        r.register(
            "mxtrace_roundtrip_delivered",
            "1 when the last round trip's message was found in the mailbox (inbox or Junk)",
            m.delivered.clone(),
        );
        r.register(
            "mxtrace_roundtrip_in_junk",
            "1 when the last round trip's message was filed in Junk",
            m.in_junk.clone(),
        );
        r.register(
            "mxtrace_roundtrip_delivery_seconds",
            "From the end of DATA to the message showing in the mailbox, last round trip",
            m.seconds.clone(),
        );
        r.register(
            "mxtrace_roundtrip_header_delivery_seconds",
            "The same delay as the delivered copy's Received chain tells it",
            m.header_seconds.clone(),
        );
        r.register("mxtrace_roundtrip_hop_delay_seconds", "Each Received hop's delay in the last delivered copy, by hop (1 = oldest) and receiving host", m.hop_delay.clone());
        r.register(
            "mxtrace_roundtrip_last_success_timestamp_seconds",
            "When a round trip last succeeded (the exporter's start until one has)",
            m.last_success.clone(),
        );
        r.register(
            "mxtrace_roundtrip_last_run_timestamp_seconds",
            "When the last round trip ended",
            m.last_run.clone(),
        );
        r.register(
            "mxtrace_roundtrip_findings",
            "Findings of the last round trip, by severity",
            m.findings.clone(),
        );
        r.register(
            "mxtrace_roundtrip_path_info",
            "The receiving hosts of the last delivered copy, oldest first (path label)",
            m.path.clone(),
        );
        r.register(
            "mxtrace_roundtrip_runs",
            "Round trips run, by result (success or failure)",
            m.runs.clone(),
        );
    }

    /// Stops the running schedules and starts one per round trip of `config`.
    pub(super) fn schedule(self: &std::sync::Arc<Self>, config: &ExporterConfig) {
        let mut tasks = match self.tasks.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        for t in tasks.drain(..) {
            t.abort();
        }
        for entry in config.roundtrips.values() {
            // Until a first success, the zero-flow clock starts now.
            let last = self.last_success.get_or_create(&name(&entry.name));
            if last.get() == 0.0 {
                last.set(now());
            }
            let task = tokio::spawn(run_loop(self.clone(), entry.clone()));
            tasks.push(task.abort_handle());
        }
    }

    fn record(&self, n: &str, r: &RoundtripReport) {
        let d = &r.delivery;
        let delivered = d.status == DeliveryStatus::Delivered;
        self.success
            .get_or_create(&name(n))
            .set(i64::from(r.verdict.passed));
        self.delivered
            .get_or_create(&name(n))
            .set(i64::from(delivered));
        self.in_junk
            .get_or_create(&name(n))
            .set(i64::from(d.folder == Some(FolderKind::Junk)));
        if let Some(s) = d.seconds {
            self.seconds.get_or_create(&name(n)).set(s);
        }
        if let Some(s) = d.header_seconds {
            self.header_seconds.get_or_create(&name(n)).set(s as f64);
        }
        for sev in [Severity::Error, Severity::Warning] {
            let count = r.findings.iter().filter(|f| f.severity == sev).count();
            let word = if sev == Severity::Error {
                "error"
            } else {
                "warning"
            };
            self.findings
                .get_or_create(&with(n, "severity", word))
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        if let Some(p) = r.path.as_ref().filter(|_| delivered) {
            self.forget(n);
            let mut shown = Vec::new();
            for h in &p.hops {
                let mut l = with(n, "hop", &h.index.to_string());
                l.push(("by".into(), h.by.clone().unwrap_or_default()));
                self.hop_delay
                    .get_or_create(&l)
                    .set(h.delay_s.unwrap_or(0) as f64);
                shown.push(l);
            }
            let path: Vec<&str> = p
                .hops
                .iter()
                .map(|h| h.by.as_deref().unwrap_or("?"))
                .collect();
            let l = with(n, "path", &path.join(" > "));
            self.path.get_or_create(&l).set(1);
            shown.push(l);
            if let Ok(mut s) = self.shown.lock() {
                s.insert(n.to_string(), shown);
            }
        }
        if r.verdict.passed {
            self.last_success.get_or_create(&name(n)).set(now());
        }
        self.finish(n, r.verdict.passed);
    }

    /// Removes the hop and path series of `n`'s previous delivered copy.
    fn forget(&self, n: &str) {
        let old = self
            .shown
            .lock()
            .ok()
            .and_then(|mut s| s.remove(n))
            .unwrap_or_default();
        for l in old {
            self.hop_delay.remove(&l);
            self.path.remove(&l);
        }
    }

    fn finish(&self, n: &str, passed: bool) {
        if !passed {
            self.success.get_or_create(&name(n)).set(0);
        }
        self.last_run.get_or_create(&name(n)).set(now());
        let result = if passed { "success" } else { "failure" };
        self.runs.get_or_create(&with(n, "result", result)).inc();
    }
}

async fn run_loop(m: std::sync::Arc<RoundtripMetrics>, entry: RoundtripEntry) {
    loop {
        let started = tokio::time::Instant::now();
        run_once(&m, &entry).await;
        tokio::time::sleep_until(started + entry.interval).await;
    }
}

async fn run_once(m: &RoundtripMetrics, entry: &RoundtripEntry) {
    let n = &entry.name;
    let opts = match entry.spec.options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("mxtrace serve: roundtrip={n:?} could not start: {e}");
            return m.finish(n, false);
        }
    };
    let budget = entry.spec.within + RUN_MARGIN;
    match tokio::time::timeout(budget, mxtrace_core::roundtrip::roundtrip(&opts)).await {
        Ok(Ok(r)) => {
            eprintln!(
                "mxtrace serve: roundtrip={n:?} success={} {}",
                r.verdict.passed, r.verdict.summary
            );
            m.record(n, &r);
        }
        Ok(Err(e)) => {
            eprintln!("mxtrace serve: roundtrip={n:?} failed: {e}");
            m.finish(n, false);
        }
        Err(_) => {
            eprintln!("mxtrace serve: roundtrip={n:?} did not end within {budget:?}");
            m.finish(n, false);
        }
    }
}
