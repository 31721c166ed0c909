//! `mxtrace report` over a sweep's JSON lines: the summary for a terminal, and the fleet as
//! one self-contained HTML table (the page of `html`, every string through its escaper).

use crate::html::{page_wrap, Esc};
use crate::style::{guard, Style};
use crate::sweep::duration;
use mxtrace_proto::model::fleet::{FleetReport, FleetRow, EXPIRING_DAYS};
use std::fmt::Write;

/// Counts, categories, the slowest and the certificates that expire soon.
pub fn render_human(r: &FleetReport, style: Style) -> String {
    let mut out = format!(
        "mxtrace report: {} target(s) from {} file(s): {} passed, {} failed, {} invalid",
        r.targets(),
        r.files.len(),
        r.passed,
        r.failed,
        r.invalid
    );
    if r.repeated > 0 {
        let _ = write!(out, "; {} repeated line(s), the last kept", r.repeated);
    }
    out.push('\n');
    let cats: Vec<String> = r
        .failed_by_category
        .iter()
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    list(&mut out, "failed by category", &cats);
    let slow: Vec<String> = r
        .slowest()
        .iter()
        .map(|s| format!("{} ({})", s.input, duration(s.elapsed_ms)))
        .collect();
    list(&mut out, "slowest", &slow);
    let expiring: Vec<String> = r.expiring().iter().map(|s| expiry(s)).collect();
    list(
        &mut out,
        &format!("certificates expiring within {EXPIRING_DAYS} days"),
        &expiring,
    );
    guard(out, style)
}

fn list(out: &mut String, label: &str, items: &[String]) {
    if !items.is_empty() {
        let _ = writeln!(out, "{label}: {}", items.join(", "));
    }
}

fn expiry(row: &FleetRow) -> String {
    match (row.cert_days_left, &row.cert_not_after) {
        (Some(d), Some(at)) if d < 0 => format!("{} (expired {at})", row.input),
        (Some(d), Some(at)) => format!("{} ({d} days, {at})", row.input),
        _ => row.input.clone(),
    }
}

/// The fleet as one page: the summary, then a row per target, failures first.
pub fn render_html(r: &FleetReport) -> String {
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<p class=\"verdict {}\"><b>{} target(s)</b>: {} passed, {} failed, {} invalid</p>",
        if r.failed + r.invalid == 0 {
            "ok"
        } else {
            "fail"
        },
        r.targets(),
        r.passed,
        r.failed,
        r.invalid
    );
    let files: Vec<String> = r.files.iter().map(|f| Esc(f).to_string()).collect();
    let _ = writeln!(body, "<p class=\"meta\">from {}</p>", files.join(", "));
    summary_lists(&mut body, r);
    body.push_str(
        "<h2>Targets</h2>\n<table>\n<tr><th>verdict</th><th>target</th><th>category</th>\
         <th>failed stage</th><th>time</th><th>TLS</th><th>certificate</th><th>summary</th></tr>\n",
    );
    for row in &r.rows {
        table_row(&mut body, row);
    }
    body.push_str("</table>\n");
    page_wrap("mxtrace fleet report", None, &body)
}

fn summary_lists(body: &mut String, r: &FleetReport) {
    let mut section = |title: &str, items: Vec<String>| {
        if items.is_empty() {
            return;
        }
        let _ = writeln!(body, "<h2>{}</h2>\n<ul>", Esc(title));
        for i in items {
            let _ = writeln!(body, "<li>{}</li>", Esc(&i));
        }
        body.push_str("</ul>\n");
    };
    let cats = r
        .failed_by_category
        .iter()
        .map(|(c, n)| format!("{c}: {n}"));
    section("Failed by category", cats.collect());
    let slow = r.slowest().into_iter();
    section(
        "Slowest",
        slow.map(|s| format!("{} ({})", s.input, duration(s.elapsed_ms)))
            .collect(),
    );
    let title = format!("Certificates expiring within {EXPIRING_DAYS} days");
    section(&title, r.expiring().into_iter().map(expiry).collect());
}

fn table_row(body: &mut String, row: &FleetRow) {
    let (class, word) = match (row.passed, row.command.as_str()) {
        (true, _) => ("ok", "PASS"),
        (false, "sweep") => ("fail", "INVALID"),
        (false, _) => ("fail", "FAIL"),
    };
    let tls = match (&row.tls_version, row.tls_verified) {
        (Some(v), Some(true)) => format!("{v}, verified"),
        (Some(v), _) => format!("{v}, not verified"),
        _ => String::new(),
    };
    let cert = match row.cert_days_left {
        Some(d) if d < 0 => "expired".to_string(),
        Some(d) => format!("{d} days left"),
        None => String::new(),
    };
    let stage = row.failed_stage.map(|s| s.as_str()).unwrap_or("");
    let time = if row.command == "sweep" {
        String::new()
    } else {
        duration(row.elapsed_ms)
    };
    let _ = writeln!(
        body,
        "<tr class=\"{class}\"><td>{word}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
         <td>{}</td><td>{}</td><td>{}</td></tr>",
        Esc(&row.input),
        Esc(&row.category),
        Esc(stage),
        Esc(&time),
        Esc(&tls),
        Esc(&cert),
        Esc(&row.summary)
    );
}
