//! `mxtrace report` over a sweep's JSON lines (one shard's file or all of them): a row per
//! target and what the fleet looks like (verdicts, categories, the slowest, certificates that
//! expire soon).

use super::{JobReport, ProbeReport, Stage};
use serde::Serialize;
use std::collections::BTreeMap;

/// Certificates that expire within this many days are listed in the summary.
pub const EXPIRING_DAYS: i64 = 30;
/// Slowest targets listed in the summary.
pub const SLOWEST: usize = 5;

/// Every target of the files read, once (a target in several files: the last line wins).
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FleetReport {
    pub files: Vec<String>,
    pub passed: usize,
    pub failed: usize,
    /// Lines that were not targets, or settings that did not fit them.
    pub invalid: usize,
    /// Lines for a target already seen (a resumed or repeated run).
    pub repeated: usize,
    pub failed_by_category: BTreeMap<String, usize>,
    /// Failures first, then by target.
    pub rows: Vec<FleetRow>,
}

/// One target's result, reduced to what a fleet table shows.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FleetRow {
    /// The normalised target (`probe HOST:PORT`, `trace DOMAIN`, or the line as written).
    pub input: String,
    /// `probe`, `trace`, or `sweep` for a line that did not run.
    pub command: String,
    pub passed: bool,
    /// The failure's category (`failure_category`); `ok` when it passed, `invalid` when the
    /// line did not run.
    pub category: String,
    pub failed_stage: Option<Stage>,
    pub summary: String,
    pub elapsed_ms: f64,
    pub tls_version: Option<String>,
    pub tls_verified: Option<bool>,
    /// The leaf certificate that expires first (of a trace's probes).
    pub cert_not_after: Option<String>,
    pub cert_days_left: Option<i64>,
}

impl FleetRow {
    pub fn from_report(input: String, report: &JobReport) -> FleetRow {
        let probes: Vec<&ProbeReport> = match report {
            JobReport::Probe(p) => vec![p],
            JobReport::Trace(t) => t
                .hops
                .iter()
                .flat_map(|h| h.probes.iter().map(|p| &p.report))
                .collect(),
        };
        let (failed_stage, passed) = match report {
            JobReport::Probe(p) => (p.verdict.failed_stage, p.verdict.passed),
            JobReport::Trace(t) => (t.verdict.failed_stage, t.verdict.passed),
        };
        let tls = probes.iter().find_map(|p| p.tls.as_ref());
        let leaf = probes
            .iter()
            .filter_map(|p| p.tls.as_ref()?.chain.first())
            .min_by_key(|c| c.days_left);
        FleetRow {
            input,
            command: report.command().to_string(),
            passed,
            category: if passed {
                "ok"
            } else {
                report.failure_category()
            }
            .to_string(),
            failed_stage,
            summary: report.summary().to_string(),
            elapsed_ms: report.elapsed_ms(),
            tls_version: tls.and_then(|t| t.version.clone()),
            tls_verified: tls.map(|t| t.verified),
            cert_not_after: leaf.map(|c| c.not_after.clone()),
            cert_days_left: leaf.map(|c| c.days_left),
        }
    }

    /// A line that did not run: why, as the sweep wrote it.
    pub fn invalid(input: String, message: String) -> FleetRow {
        FleetRow {
            input,
            command: "sweep".to_string(),
            passed: false,
            category: "invalid".to_string(),
            failed_stage: None,
            summary: message,
            elapsed_ms: 0.0,
            tls_version: None,
            tls_verified: None,
            cert_not_after: None,
            cert_days_left: None,
        }
    }
}

impl FleetReport {
    /// The report of these rows (one per target), counted and ordered.
    pub fn new(files: Vec<String>, rows: Vec<FleetRow>, repeated: usize) -> FleetReport {
        let mut r = FleetReport {
            files,
            repeated,
            ..FleetReport::default()
        };
        for row in &rows {
            match (row.passed, row.command.as_str()) {
                (true, _) => r.passed += 1,
                (false, "sweep") => r.invalid += 1,
                (false, _) => {
                    r.failed += 1;
                    *r.failed_by_category
                        .entry(row.category.clone())
                        .or_default() += 1;
                }
            }
        }
        r.rows = rows;
        r.rows
            .sort_by(|a, b| (a.passed, &a.input).cmp(&(b.passed, &b.input)));
        r
    }

    pub fn targets(&self) -> usize {
        self.rows.len()
    }

    /// The slowest targets that ran, slowest first.
    pub fn slowest(&self) -> Vec<&FleetRow> {
        let mut v: Vec<&FleetRow> = self.rows.iter().filter(|r| r.command != "sweep").collect();
        v.sort_by(|a, b| b.elapsed_ms.total_cmp(&a.elapsed_ms));
        v.truncate(SLOWEST);
        v
    }

    /// Certificates that expire within `EXPIRING_DAYS` (or have expired), soonest first.
    pub fn expiring(&self) -> Vec<&FleetRow> {
        let mut v: Vec<&FleetRow> = self
            .rows
            .iter()
            .filter(|r| r.cert_days_left.is_some_and(|d| d <= EXPIRING_DAYS))
            .collect();
        v.sort_by_key(|r| r.cert_days_left);
        v
    }
}
