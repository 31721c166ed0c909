//! `watch --html` and `mxtrace report WATCH.json`: the change window. Per target a timeline
//! (every probe a bar as tall as it took, failures full height, outage windows shaded), the
//! outage windows in a table, the statistics before, during and after, and per stage; then
//! every event. Everything said in the SVG is also said in words in the tables.

use super::probe::tick_step;
use super::{pass_fail, verdict_banner, Esc};
use mxtrace_proto::model::watch::{
    duration_words, PhaseStats, StopReason, WatchReport, WatchTarget,
};
use std::fmt::Write;

const W: f64 = 960.0;
const H: f64 = 90.0;
const AXIS: f64 = 18.0;

/// The whole change-window page.
pub fn render_watch(r: &WatchReport) -> String {
    let names: Vec<&str> = r.targets.iter().map(|t| t.target.as_str()).collect();
    let title = format!("mxtrace watch {}", names.join(" "));
    let mut out = String::new();
    verdict_banner(&mut out, r.verdict.passed, &r.verdict.summary);
    let why = match r.stopped_by {
        StopReason::Count => "--count reached",
        StopReason::UntilPass => "--until pass",
        StopReason::UntilFail => "--until fail",
        StopReason::Interrupted => "interrupted",
    };
    let _ = writeln!(
        out,
        "<p class=\"meta\">{} to {} ({}), a probe every {} per target; stopped: {why}</p>",
        Esc(&r.started_at),
        Esc(&r.ended_at),
        duration_words(r.elapsed_ms),
        duration_words(r.interval_ms)
    );
    for (i, t) in r.targets.iter().enumerate() {
        target(&mut out, t, i, r.elapsed_ms);
    }
    events(&mut out, r);
    super::page::wrap(&title, Some(&r.started_at), &out)
}

fn target(out: &mut String, t: &WatchTarget, i: usize, total_ms: f64) {
    let (class, word) = match t.status.state.as_str() {
        "up" => ("ok", "UP"),
        "down" => ("fail", "DOWN"),
        _ => ("skip", "UNKNOWN"),
    };
    let since = t.status.since.as_deref().unwrap_or("-");
    let _ = writeln!(
        out,
        "<h2 id=\"w{i}\">{}: <span class=\"{class}\">{word}</span> since {}</h2>\n\
         <p class=\"meta\">{} {} probes, {} failed{}</p>",
        Esc(&t.target),
        Esc(since),
        if t.kind == mxtrace_proto::model::watch::TargetKind::Trace {
            "trace,"
        } else {
            "probe,"
        },
        t.probes,
        t.failed,
        if t.timeline_dropped > 0 {
            format!(" (the timeline shows the last {})", t.timeline.len())
        } else {
            String::new()
        }
    );
    timeline(out, t, i, total_ms);
    outages(out, t);
    phases(out, t);
    stages(out, t);
}

/// Every probe as a bar on the window's time axis.
fn timeline(out: &mut String, t: &WatchTarget, i: usize, total_ms: f64) {
    let total = total_ms.max(1.0);
    let worst = t
        .timeline
        .iter()
        .filter(|p| p.passed)
        .map(|p| p.elapsed_ms)
        .fold(1.0_f64, f64::max);
    let x = |ms: f64| ms / total * W;
    let _ = writeln!(
        out,
        "<svg role=\"img\" aria-labelledby=\"w{i}-t\" viewBox=\"0 0 {W} {h}\" width=\"{W}\" \
         height=\"{h}\"><title id=\"w{i}-t\">Timeline of {}: {} probes, {} outage(s)</title>",
        Esc(&t.target),
        t.timeline.len(),
        t.outages.len(),
        h = H + AXIS
    );
    for o in &t.outages {
        let end = o.end_ms.unwrap_or(o.start_ms + o.duration_ms);
        let _ = writeln!(
            out,
            "<rect class=\"outage\" x=\"{:.1}\" y=\"{AXIS}\" width=\"{:.1}\" height=\"{H}\">\
             <title>outage {}</title></rect>",
            x(o.start_ms),
            (x(end) - x(o.start_ms)).max(2.0),
            duration_words(o.duration_ms)
        );
    }
    let step = tick_step(total / 1000.0) * 1000.0;
    let mut ms = 0.0;
    while ms <= total {
        let _ = writeln!(
            out,
            "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{AXIS}\" x2=\"{x:.1}\" y2=\"{b}\"/>\
             <text class=\"dim\" x=\"{tx:.1}\" y=\"12\" text-anchor=\"middle\">{}</text>",
            duration_words(ms),
            x = x(ms),
            // The label stays on the page at both ends.
            tx = x(ms).clamp(14.0, W - 20.0),
            b = H + AXIS
        );
        ms += step;
    }
    for p in &t.timeline {
        let (class, h) = if p.passed {
            ("bar", (p.elapsed_ms / worst * (H - 4.0)).max(2.0))
        } else {
            ("bar fail", H)
        };
        let what = match (p.passed, p.failed_stage) {
            (true, _) => "passed".to_string(),
            (false, Some(s)) => format!("FAILED at {s}"),
            (false, None) => "FAILED".to_string(),
        };
        let _ = writeln!(
            out,
            "<rect class=\"{class}\" x=\"{:.1}\" y=\"{:.1}\" width=\"2\" height=\"{h:.1}\">\
             <title>{}: {what}, {:.1} ms</title></rect>",
            x(p.at_ms),
            AXIS + H - h,
            duration_words(p.at_ms),
            p.elapsed_ms
        );
    }
    out.push_str("</svg>\n");
}

fn outages(out: &mut String, t: &WatchTarget) {
    if t.outages.is_empty() {
        out.push_str("<p>No outage: every probe passed.</p>\n");
        return;
    }
    out.push_str(
        "<h3>Outage windows</h3>\n<table><tr><th>start</th><th>end</th><th>duration</th>\
         <th>stage</th><th>reply</th><th>category</th><th>probes failed</th></tr>\n",
    );
    for o in &t.outages {
        let _ = writeln!(
            out,
            "<tr class=\"fail\"><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td>{}{}</td>\
             <td>{}</td><td class=\"mono\">{}{}</td><td>{}</td><td>{}</td></tr>",
            Esc(&o.start),
            Esc(o.end.as_deref().unwrap_or("still down")),
            duration_words(o.duration_ms),
            if o.end.is_none() { " so far" } else { "" },
            o.stage.map_or("dns", |s| s.as_str()),
            Esc(&o.reply),
            o.text
                .as_deref()
                .map(|x| format!(" {}", Esc(x)))
                .unwrap_or_default(),
            o.category.map_or("", |c| c.as_str()),
            o.probes_failed
        );
    }
    out.push_str("</table>\n");
}

fn phases(out: &mut String, t: &WatchTarget) {
    out.push_str(
        "<h3>Before, during and after</h3>\n<table><tr><th>stretch</th><th>probes</th>\
         <th>failed</th><th>avg</th><th>best</th><th>worst</th></tr>\n",
    );
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} ms"));
    let p = &t.phases;
    for (name, s) in [
        ("before the first failure", &p.before),
        ("during (first failure to last recovery)", &p.during),
        ("after the last recovery", &p.after),
    ] {
        let PhaseStats {
            probes,
            failed,
            fail_share,
            ..
        } = s;
        let _ = writeln!(
            out,
            "<tr><td>{name}</td><td>{probes}</td><td>{failed} ({:.0}%)</td><td>{}</td>\
             <td>{}</td><td>{}</td></tr>",
            fail_share * 100.0,
            ms(s.avg_ms),
            ms(s.best_ms),
            ms(s.worst_ms)
        );
    }
    out.push_str("</table>\n");
}

fn stages(out: &mut String, t: &WatchTarget) {
    if t.stages.is_empty() {
        return;
    }
    out.push_str(
        "<h3>Per stage</h3>\n<table><tr><th>stage</th><th>probes</th><th>failed here</th>\
         <th>last</th><th>avg</th><th>best</th><th>worst</th><th>jitter</th>\
         <th>latest reply</th></tr>\n",
    );
    for s in &t.stages {
        let reply = match (s.code, &s.enhanced) {
            (Some(c), Some(e)) => format!("{c} {e}"),
            (Some(c), None) => c.to_string(),
            (None, _) => s.outcome.as_str().to_string(),
        };
        let category = s
            .category
            .filter(|_| s.outcome != mxtrace_proto::model::Outcome::Ok)
            .map(|c| format!(" {c}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{} ({:.0}%)</td><td>{:.1} ms</td>\
             <td>{:.1} ms</td><td>{:.1} ms</td><td>{:.1} ms</td><td>{:.1} ms</td>\
             <td class=\"mono\">{}{category}</td></tr>",
            super::outcome_class(s.outcome),
            s.stage,
            s.count,
            s.failed,
            s.fail_share * 100.0,
            s.last_ms,
            s.avg_ms,
            s.best_ms,
            s.worst_ms,
            s.jitter_ms,
            Esc(&reply)
        );
    }
    out.push_str("</table>\n");
}

fn events(out: &mut String, r: &WatchReport) {
    out.push_str(
        "<h2>Events</h2>\n<table><tr><th>time</th><th>target</th><th>event</th>\
         <th>what</th></tr>\n",
    );
    for e in &r.events {
        let (class, _) = pass_fail(!matches!(
            e.kind,
            mxtrace_proto::model::watch::EventKind::Down
        ));
        let _ = writeln!(
            out,
            "<tr class=\"{class}\"><td class=\"mono\">{}</td><td class=\"mono\">{}</td>\
             <td>{}</td><td class=\"mono\">{}</td></tr>",
            Esc(&e.at),
            Esc(&e.target),
            e.kind.as_str(),
            Esc(&e.message)
        );
    }
    out.push_str("</table>\n");
}
