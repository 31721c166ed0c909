//! The pages of `run` (expectations linked to their probes), `diff` (before and after side by
//! side, regressions first) and `demo` (every scenario and fault).

use super::{json_name, page, pass_fail, probe, probe_anchor, trace_body, verdict_banner, Esc};
use mxtrace_proto::model::demo::{DemoCheck, DemoReport};
use mxtrace_proto::model::diff::{labelled_probes, DiffReport, Kind};
use mxtrace_proto::model::JobReport;
use mxtrace_proto::model::{Document, ExpectationResult, HopData, HopResult, RunReport};
use mxtrace_proto::spec::Naming;
use std::fmt::Write;

/// `run`: the verdict, one pass/fail row per expectation linked to its probe, then every hop.
pub fn render_run(r: &RunReport) -> String {
    let mut out = String::new();
    verdict_banner(&mut out, r.verdict.passed, &r.verdict.summary);
    let _ = write!(
        out,
        "<p class=\"meta\">scenario file <span class=\"mono\">{}</span>",
        Esc(&r.file)
    );
    if let Some(sc) = r.scenario {
        let _ = write!(out, ", scenario {sc}");
    }
    if let Some(t) = &r.tenant {
        let _ = write!(out, ", tenant {}", Esc(t));
    }
    out.push_str("</p>\n");
    if let Some(d) = &r.description {
        let _ = writeln!(out, "<p>{}</p>", Esc(d));
    }
    let _ = writeln!(
        out,
        "<h2>Expectations: {} of {} passed</h2>\n<table><tr><th>result</th><th>expectation</th>\
         <th>expected</th><th>observed</th><th>cause</th></tr>",
        r.summary.passed, r.summary.total
    );
    for (i, h) in r.hops.iter().enumerate() {
        for e in &h.expectations {
            let (class, word) = pass_fail(e.passed);
            let _ = writeln!(
                out,
                "<tr class=\"{class}\"><td class=\"{class}\"><b>{word}</b></td><td><a href=\"#{}\" \
                 class=\"mono\">{}</a><br>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                Esc(&expectation_anchor(i, h, e)),
                Esc(&e.id),
                Esc(&e.description),
                Esc(&e.expected),
                Esc(&e.observed),
                Esc(e.cause.as_deref().unwrap_or(""))
            );
        }
    }
    out.push_str("</table>\n");
    for (i, h) in r.hops.iter().enumerate() {
        run_hop(&mut out, i, h);
    }
    page::wrap(
        &format!("mxtrace run {}", r.name),
        Some(&r.started_at),
        &out,
    )
}

fn hop_anchor(i: usize) -> String {
    format!("hop{i}")
}

fn hop_probe_anchor(i: usize, p: usize) -> String {
    format!("hop{i}-p{p}")
}

/// The round trip section of hop `i`.
fn roundtrip_anchor(i: usize) -> String {
    format!("hop{i}-rt")
}

/// What an expectation is about: the hop's round trip (`roundtrip.KEY`), else its probe
/// (`host:port`, `mx ip`, or the hop's deciding probe).
fn expectation_anchor(i: usize, h: &HopResult, e: &ExpectationResult) -> String {
    let key = e.id.rsplit('/').next().unwrap_or("");
    if key.starts_with("roundtrip.") {
        return roundtrip_anchor(i);
    }
    let subject = e.subject.as_deref();
    match &h.result {
        HopData::Probes(list) => {
            let found = list.iter().position(|p| match subject {
                Some(s) => format!("{}:{}", p.target.host, p.target.port) == s,
                None => true,
            });
            found.map_or_else(|| hop_anchor(i), |p| hop_probe_anchor(i, p))
        }
        HopData::Trace(t) => {
            let prefix = hop_anchor(i);
            t.hops
                .iter()
                .find_map(|th| {
                    let p = match subject {
                        Some(s) => th
                            .probes
                            .iter()
                            .position(|p| format!("{} {}", p.mx, p.ip) == s),
                        None => th.decided_by,
                    };
                    p.map(|p| probe_anchor(&prefix, th.hop, p))
                })
                .unwrap_or(prefix)
        }
    }
}

fn run_hop(out: &mut String, i: usize, h: &HopResult) {
    let (class, word) = pass_fail(h.passed);
    let path = h
        .path
        .as_deref()
        .map(|p| format!(" ({p})"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "<h2 id=\"{}\">Hop {}: {}{} <span class=\"{class}\">{word}</span></h2>\n\
         <p class=\"meta\">{} <span class=\"mono\">{}</span></p>",
        hop_anchor(i),
        h.hop,
        Esc(&h.name),
        Esc(&path),
        Esc(&h.kind),
        Esc(&h.target)
    );
    match &h.result {
        HopData::Trace(t) => trace_body(out, t, &hop_anchor(i), Naming::Key),
        HopData::Probes(list) => {
            for (p, report) in list.iter().enumerate() {
                let anchor = hop_probe_anchor(i, p);
                let _ = writeln!(
                    out,
                    "<h3 id=\"{anchor}\">{}:{}</h3>",
                    Esc(&report.target.host),
                    report.target.port
                );
                probe::section(out, report, &anchor, None);
            }
        }
    }
    for (c, check) in h.checks.iter().enumerate() {
        let anchor = format!("hop{i}-c{c}");
        let subject = check.subject.as_deref().unwrap_or("");
        let _ = writeln!(
            out,
            "<h3 id=\"{anchor}\">Check {} {}</h3>",
            Esc(&check.check),
            Esc(subject)
        );
        probe::section(out, &check.report, &anchor, None);
    }
    if let Some(rt) = &h.roundtrip {
        let anchor = roundtrip_anchor(i);
        let _ = writeln!(out, "<h3 id=\"{anchor}\">Round trip</h3>");
        match (&rt.report, &rt.error) {
            (Some(r), _) => {
                let (class, word) = pass_fail(r.verdict.passed);
                let _ = writeln!(
                    out,
                    "<p><b class=\"{class}\">{word}</b> {}</p>",
                    Esc(&r.verdict.summary)
                );
                super::roundtrip::body(out, r, &anchor, "h4", Naming::Key);
            }
            (None, error) => {
                let _ = writeln!(
                    out,
                    "<p class=\"fail\"><b>could not start</b> (nothing was sent)</p>\n<pre>{}</pre>",
                    Esc(error.as_deref().unwrap_or(""))
                );
            }
        }
    }
}

/// `diff`: regressions first, each finding's before and after side by side, then both results
/// in outline, side by side.
pub fn render_diff(r: &DiffReport, before: &Document, after: &Document) -> String {
    let mut out = String::new();
    verdict_banner(&mut out, r.verdict.passed, &r.verdict.summary);
    let _ = writeln!(
        out,
        "<p class=\"meta\">{} regressions, {} improvements, {} changes; latency threshold {}</p>",
        r.summary.regressions, r.summary.improvements, r.summary.changes, r.latency_threshold
    );
    out.push_str(
        "<h2>Findings</h2>\n<table><tr><th>kind</th><th>what</th><th>where</th>\
         <th>before</th><th>after</th><th>meaning</th></tr>\n",
    );
    for kind in [Kind::Regression, Kind::Change, Kind::Improvement] {
        for c in r.findings.iter().filter(|c| c.kind == kind) {
            let stage = c.stage.map(|s| format!(" stage {s}")).unwrap_or_default();
            let _ = writeln!(
                out,
                "<tr class=\"{k}\"><td><b>{k}</b></td><td class=\"mono\">{}</td><td>{} \
                 <span class=\"mono\">{}</span>{stage}</td><td class=\"mono\">{}</td>\
                 <td class=\"mono\">{}</td><td>{}</td></tr>",
                c.what,
                Esc(&c.hop),
                Esc(&c.subject),
                Esc(c.before.as_deref().unwrap_or("-")),
                Esc(c.after.as_deref().unwrap_or("-")),
                Esc(&c.message),
                k = kind.as_str(),
            );
        }
    }
    out.push_str("</table>\n<h2>Before and after</h2>\n<div class=\"side\">\n");
    for (label, info, doc) in [("Before", &r.before, before), ("After", &r.after, after)] {
        let _ = writeln!(
            out,
            "<section><h3>{label}: <span class=\"mono\">{}</span></h3><p class=\"meta\">{} \
             result, started {}</p>",
            Esc(&info.file),
            Esc(&info.command),
            Esc(info.started_at.as_deref().unwrap_or("?"))
        );
        outline(&mut out, doc);
        out.push_str("</section>\n");
    }
    out.push_str("</div>\n");
    page::wrap("mxtrace diff", None, &out)
}

/// One row per probe: where, the verdict, TLS and the certificate's days left.
fn outline(out: &mut String, doc: &Document) {
    out.push_str("<table><tr><th>probe</th><th>verdict</th><th>TLS</th><th>days left</th></tr>\n");
    for (hop, subject, p) in labelled_probes(doc) {
        let v = &p.verdict;
        let verdict = match (v.passed, v.failed_stage) {
            (true, _) => "PASS".to_string(),
            (false, Some(s)) => format!("FAIL at {s}"),
            (false, None) => "FAIL".to_string(),
        };
        let tls = p.tls.as_ref();
        let version = tls.and_then(|t| t.version.as_deref()).unwrap_or("none");
        let days = tls
            .and_then(|t| t.chain.first())
            .map(|c| format!("{} days left", c.days_left))
            .unwrap_or_else(|| "-".to_string());
        let _ = writeln!(
            out,
            "<tr class=\"{c}\"><td>{} <span class=\"mono\">{}</span></td><td class=\"{c}\">\
             {verdict}</td><td>{}</td><td>{days}</td></tr>",
            Esc(&hop),
            Esc(&subject),
            Esc(version),
            c = if v.passed { "ok" } else { "fail" },
        );
    }
    out.push_str("</table>\n");
}

/// `demo`: a table of every scenario and fault, then each check's command and full report.
pub fn render_demo(r: &DemoReport) -> String {
    let mut out = String::new();
    let summary = format!(
        "{} of {} checks as expected ({:.1} s)",
        r.checks.iter().filter(|c| c.ok).count(),
        r.checks.len(),
        r.elapsed_ms / 1000.0
    );
    verdict_banner(&mut out, r.passed, &summary);
    out.push_str(
        "<h2>Scenarios and faults</h2>\n<table><tr><th>result</th><th>check</th>\
         <th>expected</th><th>observed</th></tr>\n",
    );
    for (i, c) in r.checks.iter().enumerate() {
        let (class, word) = if c.ok {
            ("ok", "OK")
        } else {
            ("fail", "NOT OK")
        };
        let expected = if c.expected.pass {
            "accepted".to_string()
        } else {
            format!("{} / {}", name(c.expected.category), name(c.expected.layer))
        };
        let _ = writeln!(
            out,
            "<tr class=\"{class}\"><td class=\"{class}\"><b>{word}</b></td><td><a href=\"#d{i}\">\
             {}</a></td><td class=\"mono\">{expected}</td><td class=\"mono\">{}</td></tr>",
            Esc(&check_title(c)),
            observed(c),
        );
    }
    out.push_str("</table>\n");
    for (i, c) in r.checks.iter().enumerate() {
        demo_check(&mut out, i, c);
    }
    page::wrap("mxtrace demo", None, &out)
}

/// What the check showed: accepted, or the category and layer of the failure.
fn observed(c: &DemoCheck) -> String {
    match (c.observed.passed, c.observed.category) {
        (true, None) => "accepted".to_string(),
        _ => format!("{} / {}", name(c.observed.category), name(c.observed.layer)),
    }
}

fn check_title(c: &DemoCheck) -> String {
    let what = c
        .fault
        .as_ref()
        .map_or("healthy".to_string(), |f| format!("fault {f}"));
    format!("Scenario {} hop {}: {what}", c.scenario, c.hop)
}

/// A category's or layer's JSON name, `-` when there is none.
fn name<T: serde::Serialize>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| json_name(&v))
}

fn demo_check(out: &mut String, i: usize, c: &DemoCheck) {
    let _ = writeln!(out, "<h2 id=\"d{i}\">{}</h2>", Esc(&check_title(c)));
    if let (Some(rb), Some(lab)) = (&c.runbook, &c.lab_does) {
        let _ = writeln!(
            out,
            "<p><b>Runbook:</b> {}<br><b>The lab:</b> {}</p>",
            Esc(rb),
            Esc(lab)
        );
    }
    let _ = writeln!(out, "<pre>$ {}</pre>", Esc(&c.command));
    let anchor = format!("d{i}");
    match &c.report {
        // The demo runs the command line.
        JobReport::Trace(t) => trace_body(out, t, &anchor, Naming::Flag),
        JobReport::Probe(p) => {
            verdict_banner(out, p.verdict.passed, &p.verdict.summary);
            probe::section(out, p, &anchor, None);
        }
    }
}
