//! The result of `diff BEFORE.json AFTER.json`, and how a result's probes are keyed for it
//! (hop, `host ip:port`), which the HTML report uses too. The comparison itself is the
//! engine's (`mxtrace_core::diff`).

use super::{Document, ExpectationResult, HopData, ProbeReport, Stage, TraceReport};
use serde::Serialize;
use std::time::Duration;

/// A certificate with fewer days left than this is about to expire (a renewal that did not
/// happen, the usual cause of a connector's certificate expiring).
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// Latency changes smaller than this are timer noise, whatever the percentage.
const NOISE_MS: f64 = 10.0;

/// When a slower stage counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// Slower by more than this percentage of the earlier time (and by at least 10 ms).
    Percent(f64),
    /// Slower by more than this.
    Absolute(Duration),
}

impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Threshold::Percent(p) => write!(f, "{p}%"),
            Threshold::Absolute(d) => write!(f, "{}", humantime::format_duration(*d)),
        }
    }
}

impl Serialize for Threshold {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// Serialized as its text (above): `50%` or a humantime duration such as `200ms`.
#[cfg(feature = "schema")]
impl schemars::JsonSchema for Threshold {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Threshold".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "When a slower stage counts: a percentage of the earlier time \
                (`50%`) or a duration (`200ms`, `1s 500ms`).",
            "type": "string",
            "minLength": 1
        })
    }
}

impl Threshold {
    /// Whether going from `before` to `after` ms crosses the threshold.
    pub fn exceeded(self, before: f64, after: f64) -> bool {
        let grew = after - before;
        match self {
            Threshold::Percent(p) => grew >= NOISE_MS && grew > before * p / 100.0,
            Threshold::Absolute(d) => grew > d.as_secs_f64() * 1000.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Regression,
    Improvement,
    Change,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Regression => "regression",
            Kind::Improvement => "improvement",
            Kind::Change => "change",
        }
    }
}

/// One difference between the two results.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Change {
    pub kind: Kind,
    /// `reachability`, `tls_version`, `tls_verified`, `tls_cipher`, `certificate`,
    /// `certificate_expiry`, `capability`, `reply`, `latency`, `verdict`, `probe_set`,
    /// `expectation`.
    pub what: &'static str,
    /// The hop: its name in a `run`, `hop N DOMAIN` in a `trace`, empty for a `probe`.
    pub hop: String,
    /// `host ip:port`, or the expectation id.
    pub subject: String,
    pub stage: Option<Stage>,
    pub before: Option<String>,
    pub after: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DiffSummary {
    pub regressions: usize,
    pub improvements: usize,
    pub changes: usize,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DiffVerdict {
    /// True when there is no regression (exit 0).
    pub passed: bool,
    pub summary: String,
}

/// `diff --json` (after `command` and `version`).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DiffReport {
    pub before: DocInfo,
    pub after: DocInfo,
    pub latency_threshold: Threshold,
    pub findings: Vec<Change>,
    pub summary: DiffSummary,
    pub verdict: DiffVerdict,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DocInfo {
    pub file: String,
    /// `run`, `probe` or `trace`.
    pub command: String,
    pub started_at: Option<String>,
}

/// Every probe of a result as `diff` matches them: (hop label, `host ip:port`, report). The
/// HTML report shows the two results side by side in these terms.
pub fn labelled_probes(doc: &Document) -> Vec<(String, String, &ProbeReport)> {
    normalize(doc)
        .probes
        .into_iter()
        .map(|r| (r.hop, r.subject, r.report))
        .collect()
}

/// One probe of a result, keyed for matching.
pub struct Rec<'a> {
    pub hop: String,
    pub subject: String,
    pub report: &'a ProbeReport,
}

/// A result normalized for comparison.
pub struct Keyed<'a> {
    pub probes: Vec<Rec<'a>>,
    pub expectations: Vec<&'a ExpectationResult>,
}

fn probe_rec(hop: String, report: &ProbeReport) -> Rec<'_> {
    let t = &report.target;
    Rec {
        hop,
        subject: format!("{} {}:{}", t.host, t.ip.as_deref().unwrap_or("-"), t.port),
        report,
    }
}

/// A trace's probes; in a `run` every one is labelled with the hop's name.
fn trace_recs<'a>(out: &mut Vec<Rec<'a>>, hop_name: Option<&str>, trace: &'a TraceReport) {
    for h in &trace.hops {
        let hop = match hop_name {
            Some(name) => name.to_string(),
            None => format!("hop {} {}", h.hop, h.domain),
        };
        for p in &h.probes {
            out.push(probe_rec(hop.clone(), &p.report));
        }
    }
}

/// The probes and expectations of a result, keyed as `diff` matches them.
pub fn normalize(doc: &Document) -> Keyed<'_> {
    let mut probes = Vec::new();
    let mut expectations = Vec::new();
    match doc {
        Document::Probe(p) => probes.push(probe_rec(String::new(), p)),
        Document::Trace(t) => trace_recs(&mut probes, None, t),
        // A watch keeps statistics, not probes: `diff` refuses it before this.
        Document::Watch(_) => {}
        // A round trip compares as the session that sent its message.
        Document::Roundtrip(r) => match &r.sent.report {
            super::JobReport::Probe(p) => probes.push(probe_rec(String::new(), p)),
            super::JobReport::Trace(t) => trace_recs(&mut probes, None, t),
        },
        Document::Run(r) => {
            for h in &r.hops {
                match &h.result {
                    HopData::Probes(list) => {
                        probes.extend(list.iter().map(|p| probe_rec(h.name.clone(), p)));
                    }
                    HopData::Trace(t) => trace_recs(&mut probes, Some(&h.name), t),
                }
                expectations.extend(h.expectations.iter());
            }
        }
    }
    Keyed {
        probes,
        expectations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse_threshold;

    #[test]
    fn thresholds() {
        assert_eq!(parse_threshold("50%"), Ok(Threshold::Percent(50.0)));
        assert_eq!(
            parse_threshold("200ms"),
            Ok(Threshold::Absolute(Duration::from_millis(200)))
        );
        assert!(parse_threshold("-5%").is_err());
        assert!(parse_threshold("fast").is_err());
        let p = Threshold::Percent(50.0);
        assert!(p.exceeded(100.0, 151.0));
        assert!(!p.exceeded(100.0, 149.0));
        assert!(!p.exceeded(1.0, 5.0), "under 10 ms is noise");
        let a = Threshold::Absolute(Duration::from_millis(200));
        assert!(a.exceeded(100.0, 301.0));
        assert!(!a.exceeded(100.0, 299.0));
    }
}
