//! A probe's or trace's report as Prometheus metrics, for one `/probe` scrape.
//!
//! Rendered by hand in the text exposition format 0.0.4
//! (<https://prometheus.io/docs/instrumenting/exposition_formats/>) rather than through
//! prometheus-client: these are one-shot gauges built from a finished report for a single
//! response, with no registry to keep, and the engine stays free of metrics and HTTP crates.
//! The exporter's own metrics (`/metrics`) do use prometheus-client, in the front end.
//!
//! Labels are bounded: stage, outcome, category, error kind and DNS reason are closed lists;
//! `hop` is 1 or 2; TLS version and cipher come from rustls's closed lists; `mx` and `ip` only
//! appear for a traced domain and are bounded by its MX set (and `max_mx`); `expectation` is
//! one per key of the module's `expect` table. The target and the module are not labels here:
//! Prometheus adds `instance` (and `job`) at scrape time.
//!
//! An expectation not met makes `mxtrace_probe_success` 0, as it makes `mxtrace run` exit 1:
//! the module's expectations are what "success" means for it, and an alert on that one series
//! then covers them.

use mxtrace_proto::model::JobReport;
use mxtrace_proto::model::{
    ExpectationResult, Outcome, ProbeReport, Stage, StageRecord, TraceHop, TraceReport,
};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;

/// Every metric of `/probe`: name, help, and labels. docs/serve.md "Probe metrics" documents each; a test
/// keeps them in step.
pub const PROBE_METRICS: &[(&str, &str, &[&str])] = &[
    ("mxtrace_probe_success", "1 when the probe or trace passed, as the exit code 0 of `mxtrace probe`/`trace`, and every expectation of the module was met", &[]),
    ("mxtrace_expectation_met", "1 when the module's expectation (a key of its expect table, as `mxtrace run` names it) was met", &["expectation"]),
    ("mxtrace_probe_duration_seconds", "Time the whole probe or trace took", &[]),
    ("mxtrace_probe_info", "What was run: kind (probe or trace) and the delivery scenario and hop of the module", &["kind", "scenario", "hop"]),
    ("mxtrace_probe_failed_stage", "The stage that decided a failed verdict, with its category", &["hop", "stage", "category"]),
    ("mxtrace_stage_duration_seconds", "Time each stage took (the probe that decided each hop)", &["hop", "stage"]),
    ("mxtrace_stage_reply_code", "The SMTP reply code at each stage that got a reply", &["hop", "stage"]),
    ("mxtrace_stage_outcome", "1 for how each stage ended: ok, transient (4xx), permanent (5xx) or error", &["hop", "stage", "outcome"]),
    ("mxtrace_stage_category", "1 for the category of each diagnosed reply or error", &["hop", "stage", "category"]),
    ("mxtrace_stage_error", "1 for the kind of error that ended a stage without a reply (timeout, refused, reset, unreachable, tls, protocol, dns)", &["hop", "stage", "kind"]),
    ("mxtrace_starttls_offered", "1 when the EHLO reply before TLS listed STARTTLS", &["hop"]),
    ("mxtrace_tls_info", "1 with the negotiated TLS version and cipher suite", &["hop", "version", "cipher"]),
    ("mxtrace_tls_verified", "1 when the certificate chain verified for the TLS name", &["hop"]),
    ("mxtrace_tls_cert_not_after_timestamp_seconds", "The leaf certificate's notAfter, seconds since the epoch", &["hop"]),
    ("mxtrace_dns_lookup_duration_seconds", "Time the DNS lookups of a traced hop took (MX, addresses, PTR)", &["hop"]),
    ("mxtrace_dns_error", "1 when DNS alone decided a traced hop, with the reason", &["hop", "reason"]),
    ("mxtrace_mx_hosts", "MX hosts of a traced hop (1 for an implicit MX, 0 for a null MX)", &["hop"]),
    ("mxtrace_address_reachable", "1 when a traced address accepted the TCP connection (every address with all = true)", &["hop", "mx", "ip"]),
    ("mxtrace_address_success", "1 when the probe of a traced address passed", &["hop", "mx", "ip"]),
    ("mxtrace_address_stage_reply_code", "The reply code at each stage of each traced address", &["hop", "mx", "ip", "stage"]),
];

/// Samples grouped by metric, rendered in `PROBE_METRICS` order. A series is written once
/// (Prometheus refuses a scrape with a duplicate): the first value added wins.
#[derive(Default)]
struct Out {
    samples: BTreeMap<&'static str, Vec<String>>,
    seen: HashSet<String>,
}

impl Out {
    fn add(&mut self, name: &'static str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let mut line = name.to_string();
        if !labels.is_empty() {
            let parts: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = write!(line, "{{{}}}", parts.join(","));
        }
        if !self.seen.insert(line.clone()) {
            return;
        }
        let _ = write!(line, " {value}");
        self.samples.entry(name).or_default().push(line);
    }

    fn flag(&mut self, name: &'static str, labels: &[(&str, &str)], on: bool) {
        self.add(name, labels, u8::from(on));
    }

    fn finish(self) -> String {
        let mut text = String::new();
        for (name, help, _) in PROBE_METRICS {
            if let Some(lines) = self.samples.get(name) {
                let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} gauge");
                for l in lines {
                    let _ = writeln!(text, "{l}");
                }
            }
        }
        text
    }
}

/// A duration in seconds, printed from whole microseconds (`0.0061`, not the
/// `0.0060999999999999995` of a division in floating point). The model's millisecond fields
/// hold whole microseconds (`mxtrace_proto::model::micros`).
struct Seconds(u64);

impl Seconds {
    fn from_ms(ms: f64) -> Seconds {
        Seconds(mxtrace_proto::model::micros(ms))
    }
}

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (whole, frac) = (self.0 / 1_000_000, self.0 % 1_000_000);
        if frac == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{frac:06}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// Label values: backslash, double quote and line feed escaped (exposition format).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Whether the job passed and met every expectation.
pub fn success(report: &JobReport, expectations: &[ExpectationResult]) -> bool {
    report.passed() && expectations.iter().all(|e| e.passed)
}

/// The metrics of a finished job, with the module's expectations checked against it.
pub fn render(report: &JobReport, expectations: &[ExpectationResult]) -> String {
    let mut out = Out::default();
    out.flag("mxtrace_probe_success", &[], success(report, expectations));
    // One series per key: with `all`, each address's result is met only when all are.
    let mut met: Vec<(&str, bool)> = Vec::new();
    for e in expectations {
        let key = e.id.rsplit('/').next().unwrap_or(&e.id);
        match met.iter_mut().find(|(k, _)| *k == key) {
            Some((_, ok)) => *ok &= e.passed,
            None => met.push((key, e.passed)),
        }
    }
    for (key, ok) in met {
        out.flag("mxtrace_expectation_met", &[("expectation", key)], ok);
    }
    match report {
        JobReport::Probe(p) => {
            out.add(
                "mxtrace_probe_duration_seconds",
                &[],
                Seconds::from_ms(p.elapsed_ms),
            );
            let ctx = p.stages.iter().find_map(|s| s.diagnosis.as_ref());
            let scenario = ctx.and_then(|d| d.scenario).map(|s| s.to_string());
            let hop = ctx.and_then(|d| d.hop).unwrap_or(1).to_string();
            info(&mut out, "probe", scenario.as_deref(), &hop);
            probe(&mut out, &hop, p);
        }
        JobReport::Trace(t) => trace(&mut out, t),
    }
    out.finish()
}

/// The metrics of a job that could not run (a TLS file gone since the config was loaded).
pub fn render_failure(elapsed: std::time::Duration) -> String {
    let mut out = Out::default();
    out.flag("mxtrace_probe_success", &[], false);
    let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    out.add("mxtrace_probe_duration_seconds", &[], Seconds(us));
    out.finish()
}

fn info(out: &mut Out, kind: &str, scenario: Option<&str>, hop: &str) {
    let labels = [
        ("kind", kind),
        ("scenario", scenario.unwrap_or("")),
        ("hop", hop),
    ];
    out.add("mxtrace_probe_info", &labels, 1);
}

fn trace(out: &mut Out, t: &TraceReport) {
    out.add(
        "mxtrace_probe_duration_seconds",
        &[],
        Seconds::from_ms(t.elapsed_ms),
    );
    let scenario = t
        .hops
        .iter()
        .find_map(|h| h.scenario)
        .map(|s| s.to_string());
    for h in &t.hops {
        let hop = h.hop.to_string();
        info(out, "trace", scenario.as_deref(), &hop);
        trace_hop(out, &hop, h);
    }
}

fn trace_hop(out: &mut Out, hop: &str, h: &TraceHop) {
    let l = [("hop", hop)];
    out.add(
        "mxtrace_dns_lookup_duration_seconds",
        &l,
        Seconds::from_ms(h.dns_elapsed_ms),
    );
    out.add("mxtrace_mx_hosts", &l, h.mx.len());
    if let Some(e) = &h.error {
        out.add(
            "mxtrace_dns_error",
            &[("hop", hop), ("reason", e.reason.as_str())],
            1.0,
        );
        if let Some(d) = &e.diagnosis {
            let labels = [
                ("hop", hop),
                ("stage", "dns"),
                ("category", d.category.as_str()),
            ];
            out.add("mxtrace_probe_failed_stage", &labels, 1);
        }
    }
    for p in &h.probes {
        let labels = [("hop", hop), ("mx", p.mx.as_str()), ("ip", p.ip.as_str())];
        out.flag("mxtrace_address_reachable", &labels, reachable(&p.report));
        out.flag("mxtrace_address_success", &labels, p.report.verdict.passed);
        for s in worst_first(&p.report.stages) {
            if let Some(r) = &s.reply {
                let labels = [
                    ("hop", hop),
                    ("mx", p.mx.as_str()),
                    ("ip", p.ip.as_str()),
                    ("stage", s.stage.as_str()),
                ];
                out.add("mxtrace_address_stage_reply_code", &labels, r.code);
            }
        }
    }
    // The stage metrics describe the probe that decided the hop, else the last one tried.
    let decisive = h
        .decided_by
        .and_then(|i| h.probes.get(i))
        .or_else(|| h.probes.last());
    if let Some(p) = decisive {
        probe(out, hop, &p.report);
    }
}

fn reachable(p: &ProbeReport) -> bool {
    p.stages
        .iter()
        .any(|s| s.stage == Stage::Connect && s.outcome == Outcome::Ok)
}

fn probe(out: &mut Out, hop: &str, p: &ProbeReport) {
    for s in worst_first(&p.stages) {
        stage(out, hop, s);
    }
    if let (false, Some(st)) = (p.verdict.passed, p.verdict.failed_stage) {
        let category = p
            .stages
            .iter()
            .rev()
            .find(|s| s.stage == st)
            .and_then(|s| s.diagnosis.as_ref())
            .map_or("other", |d| d.category.as_str());
        let labels = [("hop", hop), ("stage", st.as_str()), ("category", category)];
        out.add("mxtrace_probe_failed_stage", &labels, 1);
    }
    let l = [("hop", hop)];
    if let Some(caps) = &p.capabilities.before_tls {
        out.flag("mxtrace_starttls_offered", &l, caps.starttls);
    }
    let Some(tls) = &p.tls else {
        return;
    };
    let version = tls.version.as_deref().unwrap_or("");
    let cipher = tls.cipher.as_deref().unwrap_or("");
    out.add(
        "mxtrace_tls_info",
        &[("hop", hop), ("version", version), ("cipher", cipher)],
        1.0,
    );
    out.flag("mxtrace_tls_verified", &l, tls.verified);
    if let Some(leaf) = tls.chain.first() {
        if let Some(ts) = mxtrace_proto::date::parse_rfc3339(&leaf.not_after) {
            out.add("mxtrace_tls_cert_not_after_timestamp_seconds", &l, ts);
        }
    }
}

/// Stages, the worst outcome of a repeated stage (one RCPT TO per recipient) first, so that
/// its series are the ones kept.
fn worst_first(stages: &[StageRecord]) -> Vec<&StageRecord> {
    let rank = |o: Outcome| match o {
        Outcome::Error => 0,
        Outcome::Permanent => 1,
        Outcome::Transient => 2,
        Outcome::Ok => 3,
    };
    let mut v: Vec<&StageRecord> = stages.iter().collect();
    v.sort_by_key(|s| rank(s.outcome));
    v
}

fn stage(out: &mut Out, hop: &str, s: &StageRecord) {
    let st = s.stage.as_str();
    let l = [("hop", hop), ("stage", st)];
    out.add(
        "mxtrace_stage_duration_seconds",
        &l,
        Seconds::from_ms(s.elapsed_ms),
    );
    if let Some(r) = &s.reply {
        out.add("mxtrace_stage_reply_code", &l, r.code);
    }
    let labels = [("hop", hop), ("stage", st), ("outcome", s.outcome.as_str())];
    out.add("mxtrace_stage_outcome", &labels, 1);
    if let Some(d) = &s.diagnosis {
        let labels = [
            ("hop", hop),
            ("stage", st),
            ("category", d.category.as_str()),
        ];
        out.add("mxtrace_stage_category", &labels, 1);
    }
    if let Some(e) = &s.error {
        let labels = [("hop", hop), ("stage", st), ("kind", e.kind.as_str())];
        out.add("mxtrace_stage_error", &labels, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxtrace_proto::model::{Category, Class, Diagnosis, Explanation, Layer, PathContext};
    use mxtrace_proto::smtp::reply::Reply;

    /// A report recorded from the lab (tests/snapshots), its redactions filled back in.
    fn snapshot<T: serde::de::DeserializeOwned>(text: &str) -> T {
        let json = text.splitn(3, "---").nth(2).unwrap();
        let json = json
            .replace("\"[ms]\"", "12.5")
            .replace("\"[days]\"", "89")
            .replace("\"[port]\"", "25")
            .replace("\"[date]\"", "\"2027-02-26T00:00:00Z\"");
        serde_json::from_str(&json).unwrap()
    }

    fn value<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
    }

    #[test]
    fn a_passing_probe() {
        let p: ProbeReport = snapshot(include_str!(
            "../../../tests/snapshots/json_snapshots__probe_json.snap"
        ));
        let m = render(&JobReport::Probe(Box::new(p)), &[]);
        assert_eq!(value(&m, "mxtrace_probe_success"), Some("1"));
        assert_eq!(value(&m, "mxtrace_probe_duration_seconds"), Some("0.0125"));
        assert_eq!(
            value(
                &m,
                "mxtrace_probe_info{kind=\"probe\",scenario=\"\",hop=\"1\"}"
            ),
            Some("1")
        );
        assert_eq!(
            value(&m, "mxtrace_stage_reply_code{hop=\"1\",stage=\"banner\"}"),
            Some("220")
        );
        assert_eq!(value(&m, "mxtrace_starttls_offered{hop=\"1\"}"), Some("1"));
        assert_eq!(
            value(
                &m,
                "mxtrace_tls_cert_not_after_timestamp_seconds{hop=\"1\"}"
            ),
            Some("1803600000")
        );
        assert!(!m.contains("mxtrace_probe_failed_stage"));
        // Every sample belongs to a documented family, each family declared once.
        for l in m.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            assert!(PROBE_METRICS.iter().any(|(n, _, _)| *n == name), "{l}");
        }
        for (n, _, _) in PROBE_METRICS {
            assert!(m.matches(&format!("# TYPE {n} gauge")).count() <= 1);
        }
    }

    #[test]
    fn a_rejected_recipient_keeps_the_worst_of_repeated_stages() {
        let mut p: ProbeReport = snapshot(include_str!(
            "../../../tests/snapshots/json_snapshots__probe_json.snap"
        ));
        let mut ok = p.stages.last().unwrap().clone();
        ok.stage = Stage::RcptTo;
        let mut bad = ok.clone();
        bad.outcome = Outcome::Permanent;
        bad.reply = Some(Reply {
            code: 550,
            enhanced: None,
            lines: vec!["550 5.1.10 RESOLVER.ADR.RecipientNotFound".into()],
        });
        let e = Explanation {
            class: Class::Permanent,
            category: Category::RecipientUnknown,
            confidence: mxtrace_proto::model::Confidence::High,
            runner_up: None,
            layer: Layer::Recipient,
            cause: "x".into(),
            next_steps: vec![],
        };
        bad.diagnosis = Some(Diagnosis::new(e, PathContext::default()));
        p.stages.extend([ok, bad]);
        p.verdict.passed = false;
        p.verdict.failed_stage = Some(Stage::RcptTo);
        let m = render(&JobReport::Probe(Box::new(p)), &[]);
        assert_eq!(value(&m, "mxtrace_probe_success"), Some("0"));
        assert_eq!(
            value(&m, "mxtrace_stage_reply_code{hop=\"1\",stage=\"rcpt_to\"}"),
            Some("550")
        );
        assert_eq!(
            m.matches("mxtrace_stage_reply_code{hop=\"1\",stage=\"rcpt_to\"}")
                .count(),
            1
        );
        assert_eq!(
            value(
                &m,
                "mxtrace_probe_failed_stage{hop=\"1\",stage=\"rcpt_to\",category=\"recipient_unknown\"}"
            ),
            Some("1")
        );
    }

    #[test]
    fn a_trace_has_dns_and_per_address_metrics() {
        let t: TraceReport = snapshot(include_str!(
            "../../../tests/snapshots/json_snapshots__trace_json.snap"
        ));
        let ip = t.hops[0].probes[0].ip.clone();
        let mx = t.hops[0].probes[0].mx.clone();
        let m = render(&JobReport::Trace(Box::new(t)), &[]);
        assert_eq!(value(&m, "mxtrace_mx_hosts{hop=\"1\"}"), Some("1"));
        assert!(value(&m, "mxtrace_dns_lookup_duration_seconds{hop=\"1\"}").is_some());
        let series = format!("mxtrace_address_reachable{{hop=\"1\",mx=\"{mx}\",ip=\"{ip}\"}}");
        assert_eq!(value(&m, &series), Some("1"), "{m}");
        assert_eq!(
            value(&m, "mxtrace_stage_reply_code{hop=\"1\",stage=\"banner\"}"),
            Some("220")
        );
    }

    #[test]
    fn each_expectation_key_is_one_series_and_decides_success() {
        let p: ProbeReport = snapshot(include_str!(
            "../../../tests/snapshots/json_snapshots__probe_json.snap"
        ));
        let r = JobReport::Probe(Box::new(p));
        let x = |id: &str, passed: bool| ExpectationResult {
            id: id.into(),
            subject: None,
            description: String::new(),
            passed,
            expected: String::new(),
            observed: String::new(),
            cause: None,
        };
        let met = [x("passes", true)];
        let m = render(&r, &met);
        assert_eq!(value(&m, "mxtrace_probe_success"), Some("1"));
        assert_eq!(
            value(&m, "mxtrace_expectation_met{expectation=\"passes\"}"),
            Some("1")
        );
        // With `all`, one result per address: one series, met only when met everywhere.
        let ex = [
            x("passes", true),
            x("mx 192.0.2.1/stage.rcpt_to", true),
            x("mx 192.0.2.2/stage.rcpt_to", false),
        ];
        let m = render(&r, &ex);
        assert_eq!(value(&m, "mxtrace_probe_success"), Some("0"));
        assert_eq!(
            value(&m, "mxtrace_expectation_met{expectation=\"stage.rcpt_to\"}"),
            Some("0")
        );
        assert_eq!(m.matches("mxtrace_expectation_met{").count(), 2, "{m}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(
            render_failure(std::time::Duration::from_millis(500))
                .lines()
                .last(),
            Some("mxtrace_probe_duration_seconds 0.5")
        );
    }
}

#[cfg(test)]
mod doc_tests {
    #[test]
    fn docs_document_every_metric() {
        let doc = include_str!("../../../docs/serve.md");
        for (name, _, labels) in super::PROBE_METRICS {
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `{name}` |")))
                .unwrap_or_else(|| panic!("docs/serve.md has no row for {name}"));
            for l in *labels {
                assert!(
                    row.contains(&format!("`{l}`")),
                    "{name}: label {l} undocumented"
                );
            }
        }
    }
}
