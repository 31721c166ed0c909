//! `watch` without a terminal (CI logs, `| tee`): one line per event as it happens, and the
//! summary at the end. Text from the network goes through the terminal guard.

use crate::style::{guard, pass_fail, terminal_safe, Style};
use mxtrace_proto::model::watch::{
    duration_words, EventKind, PhaseStats, StopReason, WatchEvent, WatchReport, WatchTarget,
};
use std::fmt::Write;

/// `2026-11-23T08:54:59.000Z mx.contoso.com:25 DOWN rcpt_to 250 -> 554 5.7.1 relay_denied`.
pub fn event_line(e: &WatchEvent, style: Style) -> String {
    let word = match e.kind {
        EventKind::First if e.from.is_none() && e.to.is_none() => style.paint("32", "UP"),
        EventKind::First | EventKind::Down => style.paint("1;31", "DOWN"),
        EventKind::Up => style.paint("1;32", "UP"),
        EventKind::Changed => style.paint("33", "CHANGED"),
    };
    let line = format!(
        "{} {} {word} {}\n",
        e.at,
        terminal_safe(&e.target),
        terminal_safe(&e.message)
    );
    guard(line, style)
}

/// The summary at the end: per target its status, probes, outages and the three stretches.
pub fn summary(r: &WatchReport, style: Style) -> String {
    let mut out = String::new();
    let why = match r.stopped_by {
        StopReason::Count => "--count reached",
        StopReason::UntilPass => "--until pass: every target passed",
        StopReason::UntilFail => "--until fail: a probe failed",
        StopReason::Interrupted => "interrupted",
    };
    let _ = writeln!(
        out,
        "\nwatch {} -> {} ({}, every {}; {why})",
        r.started_at,
        r.ended_at,
        duration_words(r.elapsed_ms),
        duration_words(r.interval_ms)
    );
    for t in &r.targets {
        target(&mut out, t);
    }
    let _ = writeln!(
        out,
        "{}: {}",
        pass_fail(r.verdict.passed, style),
        r.verdict.summary
    );
    guard(out, style)
}

fn target(out: &mut String, t: &WatchTarget) {
    let since = t
        .status
        .since
        .as_deref()
        .map(|s| format!(" since {s}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{}: {}{since}; {} probes, {} failed",
        terminal_safe(&t.target),
        t.status.state.as_str(),
        t.probes,
        t.failed
    );
    for o in &t.outages {
        let stage = o.stage.map(|s| format!("{s} ")).unwrap_or_default();
        let category = o.category.map(|c| format!(" {c}")).unwrap_or_default();
        let end = match &o.end {
            Some(e) => format!("-> {e}"),
            None => "-> (still down)".to_string(),
        };
        let _ = writeln!(
            out,
            "  outage {} {end} ({}, {} probes failed): {stage}{}{category}",
            o.start,
            duration_words(o.duration_ms),
            o.probes_failed,
            terminal_safe(&o.reply)
        );
    }
    for (name, p) in [
        ("before", &t.phases.before),
        ("during", &t.phases.during),
        ("after", &t.phases.after),
    ] {
        if p.probes > 0 {
            let _ = writeln!(out, "  {name:<6} {}", phase(p));
        }
    }
}

/// `12 probes, 0 failed (0%), avg 41.2 ms, best 38.0, worst 55.1`.
pub fn phase(p: &PhaseStats) -> String {
    let mut s = format!(
        "{} probes, {} failed ({:.0}%)",
        p.probes,
        p.failed,
        p.fail_share * 100.0
    );
    if let (Some(a), Some(b), Some(w)) = (p.avg_ms, p.best_ms, p.worst_ms) {
        let _ = write!(s, ", avg {a:.1} ms, best {b:.1}, worst {w:.1}");
    }
    s
}
