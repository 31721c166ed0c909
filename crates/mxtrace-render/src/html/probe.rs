//! One probe: its waterfall (SVG), diagnosis cards, certificate panel and folded transcript.

use super::{json_name, outcome_class, pass_fail, Esc};
use mxtrace_proto::model::{
    Category, Diagnosis, Outcome, ProbeReport, StageRecord, TlsReport, TraceProbe,
};
use std::fmt::Write;

/// A stage this long stands out in the waterfall. SMTP has no per-stage norm (RFC 5321 4.5.3.2
/// gives minutes-long timeouts); on loopback or a LAN a stage takes milliseconds and across the
/// internet tens of them, so half a second in one stage points at a tarpit, server-side DNS or
/// block-list lookups, or a filtering firewall.
const SLOW_STAGE_MS: f64 = 500.0;

/// Waterfall geometry, in SVG user units.
const LABEL_W: f64 = 110.0;
const PLOT_W: f64 = 560.0;
const TEXT_W: f64 = 150.0;
const ROW_H: f64 = 20.0;
const AXIS_H: f64 = 22.0;

/// Everything about one probe, under a heading the caller wrote; `anchor` prefixes its ids.
pub fn section(out: &mut String, r: &ProbeReport, anchor: &str, seen: Option<&TraceProbe>) {
    let t = &r.target;
    let _ = write!(
        out,
        "<p class=\"meta\">target <b class=\"mono\">{}:{}</b> ({}), TLS mode {}",
        Esc(&t.host),
        t.port,
        Esc(t.ip.as_deref().unwrap_or("?")),
        Esc(&t.tls_mode)
    );
    if let Some(n) = &t.tls_name {
        let _ = write!(out, ", TLS name {}", Esc(n));
    }
    if let Some(p) = seen {
        for (what, name) in [("banner", &p.banner_name), ("EHLO", &p.ehlo_name)] {
            if let Some(n) = name {
                let _ = write!(out, ", {what} name <span class=\"mono\">{}</span>", Esc(n));
            }
        }
        if !p.front_end.is_empty() {
            let _ = write!(out, ", front end {}", Esc(&p.front_end.join(", ")));
        }
    }
    out.push_str("</p>\n");
    let v = &r.verdict;
    let (class, word) = pass_fail(v.passed);
    let stage = v
        .failed_stage
        .map(|s| format!(" at stage <b>{s}</b>"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "<p class=\"{class}\"><b>Probe: {word}</b>{stage} ({}) {}</p>",
        v.outcome.as_str(),
        Esc(&v.summary)
    );
    waterfall(out, r, anchor);
    cards(out, r);
    if let Some(tls) = &r.tls {
        certificates(out, tls);
    }
    transcript(out, r);
}

/// Each stage as a bar on the probe's time axis, its time and outcome in words beside it.
fn waterfall(out: &mut String, r: &ProbeReport, anchor: &str) {
    if r.stages.is_empty() {
        return;
    }
    let total = r
        .stages
        .iter()
        .map(|s| s.started_ms + s.elapsed_ms)
        .fold(1.0_f64, f64::max);
    let scale = PLOT_W / total;
    let width = LABEL_W + PLOT_W + TEXT_W + 10.0;
    let height = AXIS_H + ROW_H * r.stages.len() as f64 + 4.0;
    let _ = writeln!(
        out,
        "<h3>Timing</h3>\n<svg role=\"img\" aria-labelledby=\"{a}-wf\" viewBox=\"0 0 {width} \
         {height}\" width=\"{width}\" height=\"{height}\"><title id=\"{a}-wf\">Stage timing, \
         {total:.1} ms in all</title>",
        a = Esc(anchor)
    );
    let step = tick_step(total);
    let decimals = usize::from(step < 1.0);
    let mut ms = 0.0;
    while ms <= total {
        let x = LABEL_W + ms * scale;
        let _ = writeln!(
            out,
            "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{AXIS_H}\" x2=\"{x:.1}\" y2=\"{height}\"/>\
             <text class=\"dim\" x=\"{x:.1}\" y=\"14\" text-anchor=\"middle\">\
             {ms:.decimals$} ms</text>"
        );
        ms += step;
    }
    for (i, s) in r.stages.iter().enumerate() {
        bar(out, s, AXIS_H + ROW_H * i as f64, scale);
    }
    out.push_str("</svg>\n");
}

/// A round tick interval (1, 2 or 5 times a power of ten) giving at most six ticks.
pub(super) fn tick_step(total: f64) -> f64 {
    let raw = total / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(raw)
        .max(f64::EPSILON)
}

fn bar(out: &mut String, s: &StageRecord, y: f64, scale: f64) {
    let slow = s.elapsed_ms >= SLOW_STAGE_MS;
    let class = match (s.outcome, slow) {
        (Outcome::Ok, true) => "bar slow",
        (Outcome::Ok, false) => "bar",
        (o, _) => match outcome_class(o) {
            "warn" => "bar warn",
            _ => "bar fail",
        },
    };
    let x = LABEL_W + s.started_ms * scale;
    let w = (s.elapsed_ms * scale).max(1.5);
    let mut words = format!("{:.1} ms", s.elapsed_ms);
    if slow {
        words.push_str(" SLOW");
    }
    if s.outcome != Outcome::Ok {
        let _ = write!(words, " {}", s.outcome.as_str().to_uppercase());
    }
    let _ = writeln!(
        out,
        "<text x=\"4\" y=\"{ty:.1}\">{stage}{lock}</text><rect class=\"{class}\" x=\"{x:.1}\" \
         y=\"{y:.1}\" width=\"{w:.1}\" height=\"14\"><title>{stage}: {words}</title></rect>\
         <text x=\"{tx:.1}\" y=\"{ty:.1}\">{words}</text>",
        ty = y + 11.0,
        stage = s.stage,
        lock = if s.encrypted { " (TLS)" } else { "" },
        tx = (x + w + 4.0).min(LABEL_W + PLOT_W + 4.0),
    );
}

/// The diagnosis of every failure and of findings on stages that passed (a certificate not
/// verified); a plain acceptance needs no card.
fn cards(out: &mut String, r: &ProbeReport) {
    let explained: Vec<&StageRecord> = r
        .stages
        .iter()
        .filter(|s| {
            s.diagnosis
                .as_ref()
                .is_some_and(|d| s.outcome != Outcome::Ok || d.category != Category::Accepted)
        })
        .collect();
    // A completed handshake's certificate finding is kept apart from the stage.
    let verification = r
        .tls
        .as_ref()
        .and_then(|t| Some((t.verification.as_ref()?, t.verify_error.as_deref())));
    if explained.is_empty() && verification.is_none() {
        return;
    }
    out.push_str("<h3>Diagnosis</h3>\n<div class=\"cards\">\n");
    if let Some((d, why)) = verification {
        let what = format!("certificate of {}", r.target.host);
        card_inner(out, d, &what, why.unwrap_or("not verified"), false);
    }
    for s in explained {
        let Some(d) = &s.diagnosis else { continue };
        let detail = match (&s.reply, &s.error) {
            (_, Some(e)) => format!("{}: {}", e.kind.as_str(), e.message),
            (Some(reply), None) => reply.lines.join(" "),
            (None, None) => String::new(),
        };
        let what = format!("stage {} on {}", s.stage, r.target.host);
        card_inner(out, d, &what, &detail, s.outcome != Outcome::Ok);
    }
    out.push_str("</div>\n");
}

/// A diagnosis card standing alone (a DNS failure that decided a hop).
pub fn card(out: &mut String, d: &Diagnosis, what: &str, detail: &str) {
    out.push_str("<div class=\"cards\">\n");
    card_inner(out, d, what, detail, true);
    out.push_str("</div>\n");
}

fn card_inner(out: &mut String, d: &Diagnosis, what: &str, detail: &str, failure: bool) {
    let (class, label) = if failure {
        ("card", "failure")
    } else {
        ("card note", "finding")
    };
    let _ = writeln!(
        out,
        "<section class=\"{class}\"><h3>{label}: {}</h3><dl>\
         <dt>category</dt><dd class=\"mono\">{}</dd><dt>layer</dt><dd class=\"mono\">{}</dd>",
        Esc(what),
        d.category.as_str(),
        Esc(&json_name(&d.layer))
    );
    if let Some(sc) = d.scenario {
        let hop = d.hop.map(|h| format!(" hop {h}")).unwrap_or_default();
        let _ = write!(out, "<dt>scenario</dt><dd>{sc}{hop}</dd>");
    }
    if !detail.is_empty() {
        let _ = write!(
            out,
            "<dt>observed</dt><dd class=\"mono\">{}</dd>",
            Esc(detail)
        );
    }
    let _ = write!(out, "<dt>cause</dt><dd>{}</dd></dl>", Esc(&d.cause));
    if !d.next_steps.is_empty() {
        out.push_str("<b>Next steps</b><ol>");
        for step in &d.next_steps {
            let _ = write!(out, "<li>{}</li>", Esc(step));
        }
        out.push_str("</ol>");
    }
    out.push_str("</section>\n");
}

/// The negotiated TLS and the chain the server presented, days left in words and colour.
fn certificates(out: &mut String, t: &TlsReport) {
    let negotiated: Vec<&str> = [&t.version, &t.cipher, &t.key_exchange_group]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    let verified = if t.verified {
        "<span class=\"ok\">&#10003; certificate verified</span>".to_string()
    } else {
        format!(
            "<span class=\"fail\">&#10007; certificate NOT verified: {}</span>",
            Esc(t.verify_error.as_deref().unwrap_or("unknown reason"))
        )
    };
    let _ = writeln!(
        out,
        "<h3>Certificate</h3>\n<p>TLS {}; {verified}{}</p>",
        Esc(&negotiated.join(" ")),
        if t.client_certificate_sent {
            "; client certificate configured"
        } else {
            ""
        }
    );
    if t.chain.is_empty() {
        return;
    }
    out.push_str(
        "<table><tr><th>#</th><th>subject</th><th>names (SAN)</th><th>issuer</th>\
         <th>valid</th><th>days left</th><th>SHA-256</th></tr>\n",
    );
    for (i, c) in t.chain.iter().enumerate() {
        let (class, days) = match c.days_left {
            d if d < 0 => ("fail", format!("EXPIRED {} days ago", -d)),
            d if d < mxtrace_proto::model::diff::EXPIRY_WARNING_DAYS => {
                ("warn", format!("{d} days left (soon)"))
            }
            d => ("ok", format!("{d} days left")),
        };
        let _ = writeln!(
            out,
            "<tr><td>{i}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td>\
             <td class=\"mono\">{}{}</td><td>{} to {}</td><td class=\"{class}\">{days}</td>\
             <td class=\"mono\">{}</td></tr>",
            Esc(&c.subject),
            Esc(&c.sans.join(", ")),
            Esc(&c.issuer),
            if c.self_signed { " (self-signed)" } else { "" },
            Esc(&c.not_before),
            Esc(&c.not_after),
            Esc(&c.sha256)
        );
    }
    out.push_str("</table>\n");
}

/// The dialogue as the terminal shows it, folded: what was sent, what came back, notes, errors.
fn transcript(out: &mut String, r: &ProbeReport) {
    let _ = write!(
        out,
        "<details><summary>Transcript ({} stages, {:.1} ms)</summary><pre>",
        r.stages.len(),
        r.elapsed_ms
    );
    for s in &r.stages {
        let (to, from) = if s.encrypted {
            ("~&gt;", "&lt;~")
        } else {
            ("-&gt;", "&lt;-")
        };
        for line in &s.sent {
            let _ = writeln!(out, "{:>9.1} ms {to} {}", s.started_ms, Esc(line));
        }
        let end = s.started_ms + s.elapsed_ms;
        if let Some(reply) = &s.reply {
            let class = outcome_class(s.outcome);
            for line in &reply.lines {
                let _ = writeln!(
                    out,
                    "{end:>9.1} ms {from} <span class=\"{class}\">{}</span>",
                    Esc(line)
                );
            }
        }
        for note in &s.notes {
            let _ = writeln!(out, "{end:>9.1} ms === {}", Esc(note));
        }
        if let Some(e) = &s.error {
            let _ = writeln!(
                out,
                "{end:>9.1} ms <span class=\"fail\">!!! {} {}: {}</span>",
                s.stage,
                e.kind.as_str(),
                Esc(&e.message)
            );
        }
    }
    out.push_str("</pre></details>\n");
}
