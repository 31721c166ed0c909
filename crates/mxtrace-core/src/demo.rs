//! `mxtrace demo`: starts the lab in-process, runs each scenario's healthy path and then each
//! fault of the runbooks (`lab::FAULTS`) through the real command line (the front end turns the
//! argv into a `job::Job`, exactly as typed, and `job::execute` runs it), and checks that mxtrace
//! reports the category and layer the fault table expects. Each fault gets a lab of its own.
//! Only 127.0.0.0/8 is ever contacted.

use crate::diagnose::{path_label, Category, Layer, Scenario};
use crate::job::{execute, Job, JobReport as Report};
use crate::lab::topology::{Client, Invocation};
use crate::lab::{FaultCase, FaultSpec, Lab, LabFault, LabOptions, FAULTS};
use crate::model::{DnsFailure, Outcome, StageRecord};
use crate::report::human::{self, Style};
use serde::Serialize;
use std::fmt::Write;
use std::net::Ipv4Addr;
use std::time::Duration;
use tokio::time::Instant;

/// Short timeouts: everything is on loopback, and firewall-drop waits out the connect.
const DEMO_TIMEOUTS: &[&str] = &["--connect-timeout", "2s", "--stage-timeout", "5s"];
const DEMO_DNS_TIMEOUT: &[&str] = &["--dns-timeout", "2s"];
/// Outer bound on one check (the timeouts above bound it well before).
const CHECK_LIMIT: Duration = Duration::from_secs(60);
/// Next steps shown under a failure (all of them with --verbose).
const STEPS_SHOWN: usize = 3;

/// Each scenario's healthy path: B's trace walks both hops, D is a probe (hop 1) and a trace.
const HEALTHY: &[(Scenario, u8)] = &[
    (Scenario::A, 1),
    (Scenario::B, 1),
    (Scenario::C, 1),
    (Scenario::D, 1),
    (Scenario::D, 2),
];

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub scenario: Option<Scenario>,
    pub fault: Option<LabFault>,
    pub base: Ipv4Addr,
}

/// The demo's result; `--json` prints it.
#[derive(Debug, Serialize)]
pub struct DemoReport {
    pub passed: bool,
    pub checks: Vec<DemoCheck>,
    pub elapsed_ms: f64,
}

/// One run of `trace` or `probe` against the lab.
#[derive(Debug, Serialize)]
pub struct DemoCheck {
    pub scenario: Scenario,
    /// The hop the check is about (B's healthy trace: 1, and it covers hop 2).
    pub hop: u8,
    pub fault: Option<LabFault>,
    pub runbook: Option<&'static str>,
    pub lab_does: Option<&'static str>,
    /// The command that ran (without the lab's resolver/port/CA flags: `argv` has them).
    pub command: String,
    pub argv: Vec<String>,
    pub expected: Expected,
    pub observed: DemoObserved,
    /// The check met its expectation.
    pub ok: bool,
    pub report: Report,
}

#[derive(Debug, Serialize)]
pub struct Expected {
    /// True for a healthy path; a fault expects a failure with this category and layer.
    pub pass: bool,
    pub category: Option<Category>,
    pub layer: Option<Layer>,
}

#[derive(Debug, Serialize)]
pub struct DemoObserved {
    pub passed: bool,
    pub category: Option<Category>,
    pub layer: Option<Layer>,
    pub summary: String,
}

/// Where a check failed: a stage of the probe that decided, or the DNS failure of a hop.
enum Failure<'a> {
    Stage {
        record: &'a StageRecord,
        host: String,
        ip: String,
    },
    Dns(&'a DnsFailure),
}

/// A demo that cannot run as asked (exit 2), or a lab or check that cannot (exit 3).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    #[error("fault {fault} is not played in scenario {scenario}; it is in {played_in}")]
    FaultNotPlayed {
        fault: LabFault,
        scenario: String,
        played_in: String,
    },
    #[error("starting the lab: {0}")]
    LabStart(#[source] std::io::Error),
    /// The front end could not turn the lab's command line into a job.
    #[error("{command}: {source}")]
    Invocation {
        command: String,
        #[source]
        source: InterpreterError,
    },
    #[error("{command}: {source}")]
    Check {
        command: String,
        #[source]
        source: crate::trace::TraceError,
    },
    #[error("{command}: did not finish")]
    Timeout { command: String },
}

/// Turns a command line (`mxtrace trace ...`) into the job it stands for: the front end's
/// parser, so the demo runs each check exactly as typed.
pub trait Interpreter {
    fn job(&self, argv: &[String]) -> Result<Job, InterpreterError>;
}

/// Whatever the front end's parser reports.
pub type InterpreterError = Box<dyn std::error::Error + Send + Sync>;

/// The healthy checks and fault cases the options select.
type Plan = (
    Vec<(Scenario, u8)>,
    Vec<(&'static FaultSpec, &'static FaultCase)>,
);

fn plan(opts: &DemoOptions) -> Result<Plan, DemoError> {
    let cases: Vec<(&FaultSpec, &FaultCase)> = FAULTS
        .iter()
        .flat_map(|s| s.cases.iter().map(move |c| (s, c)))
        .filter(|(s, c)| {
            opts.fault.is_none_or(|f| f == s.fault)
                && opts.scenario.is_none_or(|sc| sc == c.scenario)
        })
        .collect();
    if let (Some(f), true) = (opts.fault, cases.is_empty()) {
        let wher: Vec<String> = f
            .spec()
            .map(|s| {
                s.cases
                    .iter()
                    .map(|c| format!("{} hop {}", c.scenario, c.hop))
                    .collect()
            })
            .unwrap_or_default();
        return Err(DemoError::FaultNotPlayed {
            fault: f,
            scenario: opts.scenario.map(|s| s.to_string()).unwrap_or_default(),
            played_in: wher.join(", "),
        });
    }
    let scenarios: Vec<Scenario> = match (opts.scenario, opts.fault) {
        (Some(s), _) => vec![s],
        (None, Some(_)) => cases.iter().map(|(_, c)| c.scenario).collect(),
        (None, None) => vec![Scenario::A, Scenario::B, Scenario::C, Scenario::D],
    };
    let healthy = HEALTHY
        .iter()
        .copied()
        .filter(|(s, _)| scenarios.contains(s))
        .collect();
    Ok((healthy, cases))
}

pub async fn run(opts: &DemoOptions, cli: &dyn Interpreter) -> Result<DemoReport, DemoError> {
    let t0 = Instant::now();
    let (healthy, cases) = plan(opts)?;
    let start = |faults: Vec<LabFault>| {
        let o = LabOptions {
            base: opts.base,
            faults,
            ..LabOptions::default()
        };
        async move { Lab::start(o).await.map_err(DemoError::LabStart) }
    };
    let mut checks = Vec::new();
    if !healthy.is_empty() {
        let lab = start(Vec::new()).await?;
        for &(scenario, hop) in &healthy {
            let inv = lab.info().invocation(scenario, hop, Client::Normal);
            checks.push(check(cli, scenario, hop, None, inv).await?);
        }
        lab.shutdown().await;
    }
    // One lab per fault, shared by that fault's cases.
    let mut faults: Vec<LabFault> = cases.iter().map(|(s, _)| s.fault).collect();
    faults.dedup();
    for fault in faults {
        let lab = start(vec![fault]).await?;
        for (spec, case) in cases.iter().filter(|(s, _)| s.fault == fault) {
            let inv = lab.info().invocation(case.scenario, case.hop, case.client);
            checks.push(check(cli, case.scenario, case.hop, Some((spec, case)), inv).await?);
        }
        lab.shutdown().await;
    }
    Ok(DemoReport {
        passed: checks.iter().all(|c| c.ok),
        checks,
        elapsed_ms: t0.elapsed().as_secs_f64() * 1000.0,
    })
}

/// Runs one invocation as the command line would and compares the result with the case.
async fn check(
    cli: &dyn Interpreter,
    scenario: Scenario,
    hop: u8,
    case: Option<(&&'static FaultSpec, &&'static FaultCase)>,
    inv: Invocation,
) -> Result<DemoCheck, DemoError> {
    let mut argv = inv.argv();
    argv.extend(DEMO_TIMEOUTS.iter().map(|s| s.to_string()));
    if inv.args.first().is_some_and(|a| a == "trace") {
        argv.extend(DEMO_DNS_TIMEOUT.iter().map(|s| s.to_string()));
    }
    let command = inv.short();
    let job = cli.job(&argv).map_err(|source| DemoError::Invocation {
        command: command.clone(),
        source,
    })?;
    let report = tokio::time::timeout(CHECK_LIMIT, execute(&job))
        .await
        .map_err(|_| DemoError::Timeout {
            command: command.clone(),
        })?
        .map_err(|source| DemoError::Check {
            command: command.clone(),
            source,
        })?;
    // A healthy check passes as a whole (B: both hops); a fault is judged at its hop.
    let (passed, summary) = match (&report, case) {
        (Report::Trace(t), Some(_)) => match t.hops.iter().find(|h| h.hop == hop) {
            Some(h) => (h.verdict.passed, h.verdict.summary.clone()),
            None => (
                false,
                format!("hop {hop} was not walked: {}", t.verdict.summary),
            ),
        },
        (Report::Trace(t), None) => (t.verdict.passed, t.verdict.summary.clone()),
        (Report::Probe(p), _) => (p.verdict.passed, p.verdict.summary.clone()),
    };
    let (category, layer) = match failure(&report, hop) {
        Some(Failure::Stage { record, .. }) => record
            .diagnosis
            .as_ref()
            .map_or((None, None), |d| (Some(d.category), Some(d.layer))),
        Some(Failure::Dns(e)) => e
            .diagnosis
            .as_ref()
            .map_or((None, None), |d| (Some(d.category), Some(d.layer))),
        None => (None, None),
    };
    let expected = match case {
        None => Expected {
            pass: true,
            category: None,
            layer: None,
        },
        Some((_, c)) => Expected {
            pass: false,
            category: Some(c.category),
            layer: Some(c.layer),
        },
    };
    let ok = if expected.pass {
        passed
    } else {
        !passed && category == expected.category && layer == expected.layer
    };
    Ok(DemoCheck {
        scenario,
        hop,
        fault: case.map(|(s, _)| s.fault),
        runbook: case.map(|(s, _)| s.runbook),
        lab_does: case.map(|(s, _)| s.lab_does),
        command,
        argv,
        expected,
        observed: DemoObserved {
            passed,
            category,
            layer,
            summary,
        },
        ok,
        report,
    })
}

/// The stage that failed in the probe that decided `hop` (or the last one tried), or the DNS
/// failure that decided it.
fn failure(report: &Report, hop: u8) -> Option<Failure<'_>> {
    let (probe, host, ip) = match report {
        Report::Probe(p) => (
            p.as_ref(),
            p.target.host.clone(),
            p.target.ip.clone().unwrap_or_default(),
        ),
        Report::Trace(t) => {
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

fn name<T: Serialize>(v: Option<T>) -> String {
    v.and_then(|v| serde_json::to_value(v).ok())
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "-".to_string())
}

fn hop_label(c: &DemoCheck) -> String {
    if c.fault.is_none() && c.scenario == Scenario::B {
        format!(
            "hops 1-2 ({}, then {})",
            path_label(Scenario::B, 1),
            path_label(Scenario::B, 2)
        )
    } else {
        format!("hop {} ({})", c.hop, path_label(c.scenario, c.hop))
    }
}

/// The human output: per check a header, the command, the failing stage with its diagnosis
/// (the full output with `verbose`), and a summary table.
pub fn render_human(r: &DemoReport, style: Style, verbose: bool) -> String {
    let mut out = String::new();
    let steps = if verbose { usize::MAX } else { STEPS_SHOWN };
    let _ = writeln!(
        out,
        "{} the four delivery scenarios and the runbooks' faults, on a lab on loopback\n",
        style.paint("1", "mxtrace demo:")
    );
    for c in &r.checks {
        let what = match c.fault {
            None => "healthy".to_string(),
            Some(f) => format!("fault {f}"),
        };
        let _ = writeln!(
            out,
            "{}",
            style.paint(
                "1",
                &format!("== Scenario {} {}: {what}", c.scenario, hop_label(c))
            )
        );
        if let (Some(rb), Some(lab)) = (c.runbook, c.lab_does) {
            let _ = writeln!(out, "   runbook: {rb}\n   lab:     {lab}");
        }
        let _ = writeln!(out, "   $ {}", c.command);
        if verbose {
            let full = match &c.report {
                Report::Trace(t) => human::render_trace(t, style),
                Report::Probe(p) => human::render_probe(p, style),
            };
            for line in full.lines() {
                let _ = writeln!(out, "   | {line}");
            }
        }
        match failure(&c.report, c.hop) {
            Some(Failure::Stage { record, host, ip }) if !c.observed.passed => {
                let at = if host == ip {
                    host
                } else {
                    format!("{host} [{ip}]")
                };
                let _ = writeln!(out, "   failed at {} on {at}:", record.stage);
                out.push_str(&human::render_stage(record, style, steps));
            }
            Some(Failure::Dns(e)) => {
                let _ = writeln!(out, "   failed in DNS:");
                out.push_str(&human::render_dns_failure(e, style, steps));
            }
            _ => {}
        }
        let warnings = match &c.report {
            Report::Trace(t) => &t.verdict.warnings,
            Report::Probe(p) => &p.verdict.warnings,
        };
        for w in warnings {
            let _ = writeln!(out, "   {} {w}", style.paint("33", "warning:"));
        }
        let verdict = if c.observed.passed { "PASS" } else { "FAIL" };
        let _ = writeln!(out, "   {verdict}: {}", c.observed.summary);
        let judgement = match (c.expected.pass, c.ok) {
            (true, true) => style.paint("32", "ok: the path accepts"),
            (true, false) => style.paint("1;31", "NOT OK: the healthy path failed"),
            (false, true) => style.paint(
                "32",
                &format!(
                    "ok: diagnosed as {} / {}, as the runbooks expect",
                    name(c.observed.category),
                    name(c.observed.layer)
                ),
            ),
            (false, false) => style.paint(
                "1;31",
                &format!(
                    "NOT OK: expected {} / {}, got {} / {}",
                    name(c.expected.category),
                    name(c.expected.layer),
                    name(c.observed.category),
                    name(c.observed.layer)
                ),
            ),
        };
        let _ = writeln!(out, "   {judgement}\n");
    }
    summary(&mut out, r, style);
    out
}

fn summary(out: &mut String, r: &DemoReport, style: Style) {
    let healthy: Vec<&DemoCheck> = r.checks.iter().filter(|c| c.fault.is_none()).collect();
    let faults: Vec<&DemoCheck> = r.checks.iter().filter(|c| c.fault.is_some()).collect();
    let mut scenarios: Vec<Scenario> = healthy.iter().map(|c| c.scenario).collect();
    scenarios.dedup();
    let passed = scenarios
        .iter()
        .filter(|s| healthy.iter().filter(|c| c.scenario == **s).all(|c| c.ok))
        .count();
    let _ = writeln!(out, "{}", style.paint("1", "Summary"));
    for c in &r.checks {
        let what = c.fault.map_or("healthy".to_string(), |f| f.to_string());
        let result = if c.fault.is_none() {
            if c.ok { "passed" } else { "FAILED" }.to_string()
        } else {
            format!(
                "{} / {}{}",
                name(c.observed.category),
                name(c.observed.layer),
                if c.ok { "" } else { "  NOT AS EXPECTED" }
            )
        };
        let hop = if c.fault.is_none() && c.scenario == Scenario::B {
            "hops 1-2".to_string()
        } else {
            format!("hop {}", c.hop)
        };
        let _ = writeln!(out, "  {} {hop:<8}  {what:<26} {result}", c.scenario);
    }
    let ok_faults = faults.iter().filter(|c| c.ok).count();
    let line = format!(
        "{passed} of {} scenarios passed; {ok_faults} of {} fault checks diagnosed as expected ({:.1} s)",
        scenarios.len(),
        faults.len(),
        r.elapsed_ms / 1000.0
    );
    let verdict = crate::report::human::pass_fail(r.passed, style);
    let _ = writeln!(out, "Verdict: {verdict} {line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(scenario: Option<Scenario>, fault: Option<LabFault>) -> DemoOptions {
        DemoOptions {
            scenario,
            fault,
            base: crate::lab::DEFAULT_BASE,
        }
    }

    #[test]
    fn selection() {
        let (h, c) = plan(&opts(None, None)).unwrap();
        assert_eq!(h.len(), HEALTHY.len());
        assert_eq!(c.len(), FAULTS.iter().map(|f| f.cases.len()).sum::<usize>());
        let (h, c) = plan(&opts(Some(Scenario::B), Some(LabFault::ConnectorOffline))).unwrap();
        assert_eq!(h, [(Scenario::B, 1)]);
        assert_eq!(c.len(), 1);
        let (h, c) = plan(&opts(None, Some(LabFault::ConnectorOffline))).unwrap();
        assert_eq!(h, [(Scenario::B, 1), (Scenario::D, 1), (Scenario::D, 2)]);
        assert_eq!(c.len(), 2);
        assert!(matches!(
            plan(&opts(Some(Scenario::A), Some(LabFault::DirsyncStale))),
            Err(DemoError::FaultNotPlayed { .. })
        ));
    }
}
