//! `mxtrace demo`: starts the lab in-process, runs each scenario's healthy path and then each
//! fault of the runbooks (`lab::FAULTS`) through the real command line (the front end turns the
//! argv into a `job::Job`, exactly as typed, and `job::execute` runs it), and checks that mxtrace
//! reports the category and layer the fault table expects. Each fault gets a lab of its own.
//! Only 127.0.0.0/8 is ever contacted.

use mxtrace_core::job::{execute, Job};
use mxtrace_lab::topology::{Client, Invocation};
use mxtrace_lab::{FaultCase, FaultSpec, Lab, LabFault, LabOptions, FAULTS};
use mxtrace_proto::model::demo::{failure, DemoCheck, DemoObserved, DemoReport, Expected, Failure};
use mxtrace_proto::model::{JobReport as Report, Scenario};
use std::net::Ipv4Addr;
use std::time::Duration;
use tokio::time::Instant;

/// Short timeouts: everything is on loopback, and firewall-drop waits out the connect.
const DEMO_TIMEOUTS: &[&str] = &["--connect-timeout", "2s", "--stage-timeout", "5s"];
const DEMO_DNS_TIMEOUT: &[&str] = &["--dns-timeout", "2s"];
/// Outer bound on one check (the timeouts above bound it well before).
const CHECK_LIMIT: Duration = Duration::from_secs(60);

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
        source: mxtrace_core::trace::TraceError,
    },
    #[error("{command}: did not finish")]
    Timeout { command: String },
}

/// Whatever the command-line parser reports for one of the demo's command lines.
pub type InterpreterError = Box<dyn std::error::Error + Send + Sync>;

/// The job a command line (`mxtrace trace ...`) stands for, parsed as typed, so the demo runs
/// each check exactly as a user would.
fn job_of(argv: &[String]) -> Result<Job, InterpreterError> {
    use clap::Parser;
    let cli = super::Cli::try_parse_from(argv)?;
    Ok(super::job(&cli.command)?.ok_or("not a trace or probe")?)
}

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

pub async fn run(opts: &DemoOptions) -> Result<DemoReport, DemoError> {
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
            checks.push(check(scenario, hop, None, inv).await?);
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
            checks.push(check(case.scenario, case.hop, Some((spec, case)), inv).await?);
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
    let job = job_of(&argv).map_err(|source| DemoError::Invocation {
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
    let observed = observe(&report, hop, case.is_some());
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
        observed.passed
    } else {
        !observed.passed
            && observed.category == expected.category
            && observed.layer == expected.layer
    };
    Ok(DemoCheck {
        scenario,
        hop,
        fault: case.map(|(s, _)| s.fault.to_string()),
        runbook: case.map(|(s, _)| s.runbook.to_string()),
        lab_does: case.map(|(s, _)| s.lab_does()),
        command,
        argv,
        expected,
        observed,
        ok,
        report,
    })
}

/// What the check found: a healthy check passes as a whole (B: both hops); a fault is
/// judged at its hop, by the category and layer of the failure there.
fn observe(report: &Report, hop: u8, fault: bool) -> DemoObserved {
    let (passed, summary) = match report {
        Report::Trace(t) if fault => match t.hops.iter().find(|h| h.hop == hop) {
            Some(h) => (h.verdict.passed, h.verdict.summary.clone()),
            None => (
                false,
                format!("hop {hop} was not walked: {}", t.verdict.summary),
            ),
        },
        Report::Trace(t) => (t.verdict.passed, t.verdict.summary.clone()),
        Report::Probe(p) => (p.verdict.passed, p.verdict.summary.clone()),
    };
    let diagnosis = match failure(report, hop) {
        Some(Failure::Stage { record, .. }) => record.diagnosis.as_ref(),
        Some(Failure::Dns(e)) => e.diagnosis.as_ref(),
        None => None,
    };
    DemoObserved {
        passed,
        category: diagnosis.map(|d| d.category),
        layer: diagnosis.map(|d| d.layer),
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(scenario: Option<Scenario>, fault: Option<LabFault>) -> DemoOptions {
        DemoOptions {
            scenario,
            fault,
            base: mxtrace_lab::DEFAULT_BASE,
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
