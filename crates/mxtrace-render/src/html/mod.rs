//! Self-contained HTML reports of the result model (`--html FILE`, `mxtrace report`): one file
//! with inline CSS and inline SVG, no script and nothing fetched, readable with scripts disabled
//! (transcripts fold with `<details>`), in light and dark mode and on paper.
//!
//! Every string from the network, a file or the command line goes through [`Esc`] (the one
//! escaper); markup is only ever written by this module's literals.

mod page;
mod path;
mod probe;
mod roundtrip;
mod views;
mod watch;

use mxtrace_proto::model::{Document, Outcome, ProbeReport, TraceReport};
use mxtrace_proto::spec::{Field, Naming};
use std::fmt::{self, Write};

pub use page::wrap as page_wrap;
pub use roundtrip::render_roundtrip;
pub use views::{render_demo, render_diff, render_run};
pub use watch::render_watch;

/// Escapes text for HTML element content and double- or single-quoted attribute values: the
/// five characters HTML gives meaning to (`& < > " '`, per the OWASP XSS prevention cheat
/// sheet, rule 1 and 2), and C0 controls (shown as `\x1b`, as the terminal transcript does).
pub struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&#39;")?,
                '\t' | '\n' => f.write_char(c)?,
                c if c.is_control() => write!(f, "\\x{:02x}", u32::from(c))?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// `probe`: one endpoint.
pub fn render_probe(r: &ProbeReport) -> String {
    let title = format!("mxtrace probe {}:{}", r.target.host, r.target.port);
    let mut body = String::new();
    verdict_banner(&mut body, r.verdict.passed, &r.verdict.summary);
    warnings(&mut body, &r.verdict.warnings);
    probe::section(&mut body, r, "probe", None);
    page::wrap(&title, Some(&r.started_at), &body)
}

/// `trace`: the path diagram, then every probe.
pub fn render_trace(r: &TraceReport) -> String {
    let title = format!("mxtrace trace {}", r.domain);
    let mut body = String::new();
    trace_body(&mut body, r, "t", Naming::Flag);
    page::wrap(&title, Some(&r.started_at), &body)
}

/// Any saved result (`mxtrace report RESULT.json`).
pub fn render_document(doc: &Document) -> String {
    match doc {
        Document::Probe(p) => render_probe(p),
        Document::Trace(t) => render_trace(t),
        Document::Run(r) => render_run(r),
        Document::Watch(w) => render_watch(w),
        Document::Roundtrip(r) => render_roundtrip(r),
    }
}

/// A trace's verdict, its diagram and its probes, anchors prefixed with `id` (a page can hold
/// several traces: `run`, `demo`).
/// Settings are named as `naming` says: a `run` report's traces came from a scenario file.
fn trace_body(out: &mut String, r: &TraceReport, id: &str, naming: Naming) {
    verdict_banner(out, r.verdict.passed, &r.verdict.summary);
    warnings(out, &r.verdict.warnings);
    let mode = match r.mode.as_str() {
        "all" => format!("every address probed ({})", Field::All.name(naming)),
        _ => "walked as a sending MTA".to_string(),
    };
    let _ = writeln!(
        out,
        "<p class=\"meta\">domain <b>{}</b>, resolver {}, port {}, {mode}</p>",
        Esc(&r.domain),
        Esc(&r.resolver),
        r.port
    );
    path::diagram(out, r, id);
    for h in &r.hops {
        if let Some(e) = &h.error {
            if let Some(d) = &e.diagnosis {
                let what = format!("hop {} DNS: {}", h.hop, e.query);
                probe::card(out, d, &what, &e.message);
            }
        }
        for (i, p) in h.probes.iter().enumerate() {
            let anchor = probe_anchor(id, h.hop, i);
            let decided = h.decided_by == Some(i);
            let _ = writeln!(
                out,
                "<h2 id=\"{}\">Hop {} {} &rarr; {} [{}]{}</h2>",
                Esc(&anchor),
                h.hop,
                Esc(&h.domain),
                Esc(&p.mx),
                Esc(&p.ip),
                if decided { " (decided the hop)" } else { "" }
            );
            probe::section(out, &p.report, &anchor, Some(p));
        }
    }
}

/// The anchor of probe `i` of trace hop `hop` in a section prefixed `id`.
fn probe_anchor(id: &str, hop: u8, i: usize) -> String {
    format!("{id}-h{hop}-p{i}")
}

/// The CSS class and the word of a verdict.
fn pass_fail(passed: bool) -> (&'static str, &'static str) {
    if passed {
        ("ok", "PASS")
    } else {
        ("fail", "FAIL")
    }
}

fn verdict_banner(out: &mut String, passed: bool, summary: &str) {
    let (class, word) = pass_fail(passed);
    let _ = writeln!(
        out,
        "<p class=\"verdict {class}\"><b>Verdict: {word}</b> {}</p>",
        Esc(summary)
    );
}

fn warnings(out: &mut String, list: &[String]) {
    for w in list {
        let _ = writeln!(
            out,
            "<p class=\"verdict warn\"><b>warning:</b> {}</p>",
            Esc(w)
        );
    }
}

/// The CSS class of an outcome; the text beside it always says the same in words.
fn outcome_class(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "ok",
        Outcome::Transient => "warn",
        Outcome::Permanent | Outcome::Error => "fail",
    }
}

/// A unit enum's JSON name (`smtp-session`, `equal_preference`).
fn json_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::{render_probe, Esc};
    use mxtrace_proto::model::ProbeReport;

    /// A probe whose banner took 900 ms and whose certificate expired three days ago.
    fn slow_expired() -> ProbeReport {
        let stage = |name: &str, started: f64, elapsed: f64, reply: serde_json::Value| {
            serde_json::json!({"stage": name, "sent": [], "reply": reply, "elapsed_ms": elapsed,
                "started_ms": started, "encrypted": false, "outcome": "ok", "notes": []})
        };
        serde_json::from_value(serde_json::json!({
            "target": {"host": "mx.example.test", "port": 25, "tls_mode": "starttls-auto"},
            "stages": [
                stage("connect", 0.0, 20.0, serde_json::Value::Null),
                stage("banner", 20.0, 900.0, serde_json::json!({"code": 220,
                    "lines": ["220 mx.example.test <b>hi</b>"]})),
            ],
            "capabilities": {},
            "tls": {"verified": false, "verify_error": "certificate expired",
                "verification": {"category": "tls_failed", "layer": "tls",
                    "cause": "The certificate <expired>.", "next_steps": ["Renew it."]},
                "client_certificate_sent": false, "chain": [{"subject": "CN=mx", "sans": [],
                "issuer": "CN=ca", "serial": "1", "not_before": "a", "not_after": "b",
                "days_left": -3, "self_signed": false, "sha256": "00"}]},
            "verdict": {"passed": true, "outcome": "ok", "summary": "ok", "warnings": []},
            "started_at": "2026-01-01T00:00:00Z",
            "elapsed_ms": 920.0
        }))
        .unwrap()
    }

    #[test]
    fn slow_stages_and_expired_certificates_are_said_in_words() {
        let html = render_probe(&slow_expired());
        assert!(html.contains(">900.0 ms SLOW</text>"), "{html}");
        assert!(html.contains(">20.0 ms</text>"), "{html}");
        assert!(html.contains("<rect class=\"bar slow\""), "{html}");
        assert!(html.contains("EXPIRED 3 days ago"), "{html}");
        assert!(html.contains("certificate NOT verified: certificate expired"));
        assert!(html.contains("220 mx.example.test &lt;b&gt;hi&lt;/b&gt;"));
        // The handshake's verification finding (tls.verification) is a finding card.
        assert!(
            html.contains("finding: certificate of mx.example.test"),
            "{html}"
        );
        assert!(html.contains("The certificate &lt;expired&gt;."), "{html}");
        // Round ticks: 0, 200, ... 800 ms on a 920 ms axis.
        for tick in [">0 ms<", ">200 ms<", ">800 ms<"] {
            assert!(html.contains(tick), "{tick}");
        }
        assert!(!html.contains(">1000 ms<"));
    }

    #[test]
    fn escapes_markup_quotes_and_controls() {
        let hostile = "220 <script>alert(1)</script> \"><img src=x onerror='a'> & \x1b[31m";
        let out = Esc(hostile).to_string();
        assert_eq!(
            out,
            "220 &lt;script&gt;alert(1)&lt;/script&gt; &quot;&gt;&lt;img src=x \
             onerror=&#39;a&#39;&gt; &amp; \\x1b[31m"
        );
        for c in ['<', '>', '"', '\''] {
            assert!(!out.contains(c), "{c} left in {out}");
        }
    }
}
