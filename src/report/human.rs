//! The transcript an admin reads like a telnet session. Markers follow swaks, which many admins
//! know: ` -> ` client, `<-  ` server, ` ~> `/`<~  ` the same inside TLS, `===` information,
//! `!!!` a failure and its explanation. Every line starts with the time since the probe began.

use crate::diagnose::{Category, Diagnosis};
use crate::model::{Outcome, ProbeReport, StageRecord, TlsReport};
use std::fmt::Write;

/// ANSI styling, or none.
#[derive(Clone, Copy)]
pub struct Style {
    color: bool,
}

impl Style {
    pub fn new(color: bool) -> Style {
        Style { color }
    }

    pub fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    fn outcome(&self, o: Outcome, s: &str) -> String {
        match o {
            Outcome::Ok => self.paint("32", s),
            Outcome::Transient => self.paint("33", s),
            Outcome::Permanent | Outcome::Error => self.paint("31", s),
        }
    }
}

/// Width of the time column, e.g. `   12.3 ms`.
fn time(ms: f64) -> String {
    format!("{ms:>9.1} ms")
}

const BLANK: &str = "            ";
/// The time column's width when a line has no time of its own.
const NO_TIME: &str = "           ";

pub fn render_probe(r: &ProbeReport, style: Style) -> String {
    let mut out = String::new();
    let ip = r.target.ip.as_deref().unwrap_or("?");
    let _ = writeln!(
        out,
        "{} {}:{} ({ip}), tls {}",
        style.paint("1", "mxtrace probe"),
        r.target.host,
        r.target.port,
        r.target.tls_mode
    );
    for s in &r.stages {
        stage(&mut out, s, style);
    }
    if let Some(tls) = &r.tls {
        tls_section(&mut out, tls, style);
    }
    let verdict = if r.verdict.passed {
        style.paint("1;32", "PASS")
    } else {
        style.paint("1;31", "FAIL")
    };
    let _ = writeln!(out, "Verdict: {verdict} {}", r.verdict.summary);
    out
}

fn stage(out: &mut String, s: &StageRecord, style: Style) {
    let (to, from) = if s.encrypted {
        (" ~> ", "<~  ")
    } else {
        (" -> ", "<-  ")
    };
    let mut t = Some(s.started_ms);
    let stamp = |t: &mut Option<f64>| match t.take() {
        Some(ms) => time(ms),
        None => NO_TIME.to_string(),
    };
    for line in &s.sent {
        let _ = writeln!(out, "{} {}{}", stamp(&mut t), style.paint("36", to), line);
    }
    let mut t = Some(s.started_ms + s.elapsed_ms);
    if let Some(reply) = &s.reply {
        for line in &reply.lines {
            let _ = writeln!(
                out,
                "{} {}{}",
                stamp(&mut t),
                from,
                style.outcome(s.outcome, line)
            );
        }
    }
    for note in &s.notes {
        let _ = writeln!(out, "{} === {note}", stamp(&mut t));
    }
    if let Some(e) = &s.error {
        let _ = writeln!(
            out,
            "{} {} {} {}: {}",
            stamp(&mut t),
            style.paint("31", "!!!"),
            s.stage,
            e.kind.as_str(),
            e.message
        );
    }
    // Explained: every failure, and findings on stages that passed (a certificate not
    // verified, STARTTLS not offered); a plain acceptance needs no words.
    if let Some(d) = &s.diagnosis {
        if s.outcome != Outcome::Ok || d.category != Category::Accepted {
            diagnosis(out, d, style);
        }
    }
}

fn diagnosis(out: &mut String, d: &Diagnosis, style: Style) {
    let cat = serde_json::to_value(d.category).unwrap_or_default();
    let layer = serde_json::to_value(d.layer).unwrap_or_default();
    let mut head = format!(
        "{} layer {}",
        cat.as_str().unwrap_or("other"),
        layer.as_str().unwrap_or("?")
    );
    if let Some(sc) = d.scenario {
        let _ = write!(head, ", scenario {sc}");
        if let Some(h) = d.hop {
            let _ = write!(head, " hop {h}");
        }
    }
    let _ = writeln!(out, "{BLANK}     {}", style.paint("1", &head));
    if !d.cause.is_empty() {
        let _ = writeln!(out, "{BLANK}     cause: {}", d.cause);
    }
    for (i, step) in d.next_steps.iter().enumerate() {
        let _ = writeln!(out, "{BLANK}     {}. {step}", i + 1);
    }
}

fn tls_section(out: &mut String, t: &TlsReport, style: Style) {
    let mut head = String::from("TLS:");
    for part in [&t.version, &t.cipher, &t.key_exchange_group]
        .into_iter()
        .flatten()
    {
        head.push(' ');
        head.push_str(part);
    }
    let verified = if t.verified {
        style.paint("32", "certificate verified")
    } else {
        let why = t.verify_error.as_deref().unwrap_or("unknown reason");
        style.paint("31", &format!("certificate NOT verified: {why}"))
    };
    let _ = writeln!(out, "{head}; {verified}");
    if t.client_certificate_sent {
        let _ = writeln!(out, "  client certificate configured");
    }
    for (i, c) in t.chain.iter().enumerate() {
        let _ = writeln!(out, "  [{i}] subject  {}", c.subject);
        if !c.sans.is_empty() {
            let _ = writeln!(out, "      SANs     {}", c.sans.join(", "));
        }
        let _ = writeln!(
            out,
            "      issuer   {}{}",
            c.issuer,
            if c.self_signed { " (self-signed)" } else { "" }
        );
        let days = if c.days_left < 0 {
            style.paint("31", &format!("EXPIRED {} days ago", -c.days_left))
        } else if c.days_left < 30 {
            style.paint("33", &format!("{} days left", c.days_left))
        } else {
            format!("{} days left", c.days_left)
        };
        let _ = writeln!(
            out,
            "      valid    {} to {} ({days})",
            c.not_before, c.not_after
        );
        let _ = writeln!(out, "      sha256   {}", c.sha256);
    }
}
