//! `mxtrace demo`'s human output: per check a header, the command, the failing stage with
//! its diagnosis (the full transcript with `--verbose`), and a summary table.

use crate::human;
use crate::style::{pass_fail, Style};
use mxtrace_proto::model::demo::{failure, DemoCheck, DemoReport, Failure};
use mxtrace_proto::model::{path_label, JobReport, Scenario};
use mxtrace_proto::spec::Naming;
use serde::Serialize;
use std::fmt::Write;

/// Next steps shown under a failure (all of them with --verbose).
const STEPS_SHOWN: usize = 3;

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
    let _ = writeln!(
        out,
        "{} the four delivery scenarios and the runbooks' faults, on a lab on loopback\n",
        style.paint("1", "mxtrace demo:")
    );
    for c in &r.checks {
        check(&mut out, c, style, verbose);
    }
    summary(&mut out, r, style);
    out
}

/// One check: what was run, where it failed, and whether that is what the runbooks expect.
fn check(out: &mut String, c: &DemoCheck, style: Style, verbose: bool) {
    let steps = if verbose { usize::MAX } else { STEPS_SHOWN };
    let what = match &c.fault {
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
    if let (Some(rb), Some(lab)) = (&c.runbook, &c.lab_does) {
        let _ = writeln!(out, "   runbook: {rb}\n   lab:     {lab}");
    }
    let _ = writeln!(out, "   $ {}", c.command);
    if verbose {
        // The demo runs the command line: settings are its flags.
        let full = match &c.report {
            JobReport::Trace(t) => human::render_trace(t, style, Naming::Flag),
            JobReport::Probe(p) => human::render_probe(p, style),
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
        JobReport::Trace(t) => &t.verdict.warnings,
        JobReport::Probe(p) => &p.verdict.warnings,
    };
    for w in warnings {
        let _ = writeln!(out, "   {} {w}", style.paint("33", "warning:"));
    }
    let verdict = if c.observed.passed { "PASS" } else { "FAIL" };
    let _ = writeln!(out, "   {verdict}: {}", c.observed.summary);
    let _ = writeln!(out, "   {}\n", judgement(c, style));
}

/// Whether the check came out as the runbooks expect.
fn judgement(c: &DemoCheck, style: Style) -> String {
    match (c.expected.pass, c.ok) {
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
    }
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
        let what = c.fault.clone().unwrap_or_else(|| "healthy".to_string());
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
    let verdict = pass_fail(r.passed, style);
    let _ = writeln!(out, "Verdict: {verdict} {line}");
}
