//! `run FILE.toml`'s result: the hops of a scenario file, each a trace or probes, the extra
//! sessions some expectations need, and every expectation checked.

use super::roundtrip::RoundtripReport;
use super::{ProbeReport, Scenario, TraceReport};
use serde::{Deserialize, Serialize};

/// The whole run (`run --json`, after `command` and `version`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RunReport {
    pub file: String,
    pub name: String,
    pub description: Option<String>,
    pub scenario: Option<Scenario>,
    pub tenant: Option<String>,
    pub hops: Vec<HopResult>,
    pub summary: RunSummary,
    pub verdict: RunVerdict,
    pub started_at: String,
    pub elapsed_ms: f64,
}

/// How many expectations were checked, passed and failed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RunSummary {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RunVerdict {
    /// True when every expectation passed (exit 0).
    pub passed: bool,
    pub summary: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HopResult {
    pub name: String,
    pub hop: u8,
    pub scenario: Option<Scenario>,
    /// `internet -> on-premises MX` and so on, when the scenario is known.
    pub path: Option<String>,
    /// `trace` (a domain's MX walk) or `probe` (explicit hosts).
    pub kind: String,
    /// The domain, or the hosts as `host:port`.
    pub target: String,
    /// A `trace` object for a domain hop, a list of `probe` objects for a hosts hop.
    pub result: HopData,
    /// The extra sessions some expectations need.
    pub checks: Vec<CheckReport>,
    /// The hop's round trip (`[hop.roundtrip]`), run after its probes; absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roundtrip: Option<HopRoundtrip>,
    pub expectations: Vec<ExpectationResult>,
    pub passed: bool,
    pub elapsed_ms: f64,
}

/// A trace is an object and a list of probes an array, so the JSON tells them apart.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum HopData {
    Trace(Box<TraceReport>),
    Probes(Vec<ProbeReport>),
}

/// A hop's round trip: its result, or why it could not start (nothing was sent then).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HopRoundtrip {
    /// The round trip as `roundtrip --json` reports it; null when it could not start.
    pub report: Option<Box<RoundtripReport>>,
    /// Why it could not start (a mailbox login refused, no token): null when it ran.
    pub error: Option<String>,
}

/// An extra session an expectation needed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CheckReport {
    /// `open_relay` or `starttls_required`.
    pub check: String,
    /// The probe it checks (`host:port` or `mx ip`), null for the hop's only one.
    pub subject: Option<String>,
    pub report: ProbeReport,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ExpectationResult {
    /// Stable across runs (`diff` matches on it): `HOP NAME/[SUBJECT/]KEY`, KEY as in the file
    /// (`reachable`, `stage.rcpt_to`, `latency.connect`).
    pub id: String,
    /// The probe it is about in a hop with several (`host:port`, or `mx ip` with `all`).
    pub subject: Option<String>,
    pub description: String,
    pub passed: bool,
    pub expected: String,
    pub observed: String,
    /// For a failure, the diagnosis of the stage that explains it, when there is one.
    pub cause: Option<String>,
}
