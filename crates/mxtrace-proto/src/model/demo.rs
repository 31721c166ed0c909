//! The result of `mxtrace demo`: each check of the lab's scenarios and faults, what it
//! expected and what mxtrace reported. The demo itself runs in the front end.

use super::{Category, DnsFailure, JobReport, Layer, Outcome, Scenario, StageRecord};
use serde::Serialize;

/// The demo's result; `--json` prints it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DemoReport {
    pub passed: bool,
    pub checks: Vec<DemoCheck>,
    pub elapsed_ms: f64,
}

/// One run of `trace` or `probe` against the lab.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DemoCheck {
    pub scenario: Scenario,
    /// The hop the check is about (B's healthy trace: 1, and it covers hop 2).
    pub hop: u8,
    /// The fault's name (`--fault NAME`), null for a healthy path.
    pub fault: Option<String>,
    pub runbook: Option<String>,
    pub lab_does: Option<String>,
    /// The command that ran (without the lab's resolver/port/CA flags: `argv` has them).
    pub command: String,
    pub argv: Vec<String>,
    pub expected: Expected,
    pub observed: DemoObserved,
    /// The check met its expectation.
    pub ok: bool,
    pub report: JobReport,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Expected {
    /// True for a healthy path; a fault expects a failure with this category and layer.
    pub pass: bool,
    pub category: Option<Category>,
    pub layer: Option<Layer>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DemoObserved {
    pub passed: bool,
    pub category: Option<Category>,
    pub layer: Option<Layer>,
    pub summary: String,
}

/// Where a check failed: a stage of the probe that decided, or the DNS failure of a hop.
pub enum Failure<'a> {
    Stage {
        record: &'a StageRecord,
        host: String,
        ip: String,
    },
    Dns(&'a DnsFailure),
}

/// The stage that failed in the probe that decided `hop` (or the last one tried), or the DNS
/// failure that decided it.
pub fn failure(report: &JobReport, hop: u8) -> Option<Failure<'_>> {
    let (probe, host, ip) = match report {
        JobReport::Probe(p) => (
            p.as_ref(),
            p.target.host.clone(),
            p.target.ip.clone().unwrap_or_default(),
        ),
        JobReport::Trace(t) => {
            let h = t
                .hops
                .iter()
                .find(|h| h.hop == hop && !h.verdict.passed)
                .or_else(|| t.hops.iter().find(|h| !h.verdict.passed))?;
            if let Some(e) = &h.error {
                return Some(Failure::Dns(e));
            }
            let p = h
                .decided_by
                .and_then(|i| h.probes.get(i))
                .or(h.probes.last())?;
            (&p.report, p.mx.clone(), p.ip.clone())
        }
    };
    if probe.verdict.passed {
        return None;
    }
    probe
        .stages
        .iter()
        .find(|s| Some(s.stage) == probe.verdict.failed_stage && s.outcome != Outcome::Ok)
        .map(|record| Failure::Stage { record, host, ip })
}
