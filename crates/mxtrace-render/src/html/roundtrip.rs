//! `roundtrip --html`: the verdict, delivery and its times, the hops of the delivered copy,
//! the receiving side's verdicts, the bounce, the findings, and the sending session in full.

use super::{json_name, page, pass_fail, probe, trace_body, verdict_banner, Esc};
use mxtrace_proto::model::posture::Severity;
use mxtrace_proto::model::roundtrip::{RoundtripPath, RoundtripReport};
use mxtrace_proto::model::JobReport;
use mxtrace_proto::spec::Naming;
use std::fmt::Write;

pub fn render_roundtrip(r: &RoundtripReport) -> String {
    let title = format!("mxtrace roundtrip {}", r.rcpt);
    let mut out = String::new();
    verdict_banner(&mut out, r.verdict.passed, &r.verdict.summary);
    body(&mut out, r, "send", "h2", Naming::Flag);
    page::wrap(&title, Some(&r.started_at), &out)
}

/// Everything but the banner, its headings `h` (`h2` on a page of its own, lower inside a
/// `run` page); the sending session's anchors start with `anchor`, its advice names settings
/// as `naming` says (flags for the command, keys for a scenario file's round trip).
pub(super) fn body(out: &mut String, r: &RoundtripReport, anchor: &str, h: &str, naming: Naming) {
    let d = &r.delivery;
    let _ = writeln!(
        out,
        "<p class=\"meta\">{} &rarr; <b>{}</b>, mailbox <span class=\"mono\">{}</span>, id \
         <span class=\"mono\">{}</span></p>",
        Esc(r.from.as_deref().unwrap_or("<>")),
        Esc(&r.rcpt),
        Esc(&r.mailbox.url),
        Esc(&r.probe_id)
    );
    let secs = |s: Option<f64>| s.map_or("-".into(), |s| format!("{s:.3} s"));
    let _ = writeln!(
        out,
        "<{h}>Delivery</{h}>\n<table><tr><th>status</th><th>folder</th><th>end of DATA &rarr; \
         mailbox</th><th>Received chain</th><th>accepted by</th></tr>\n<tr><td>{}</td><td>{}</td>\
         <td>{}</td><td>{}</td><td class=\"mono\">{} {}</td></tr>\n</table>",
        Esc(d.status.as_str()),
        Esc(d.folder_name.as_deref().unwrap_or("-")),
        secs(d.seconds),
        d.header_seconds.map_or("-".into(), |s| format!("{s} s")),
        Esc(r.sent.host.as_deref().unwrap_or("-")),
        Esc(r.sent.at.as_deref().unwrap_or(""))
    );
    if let Some(p) = &r.path {
        path(out, p, h);
    }
    receiver(out, r, h);
    findings(out, r, h);
    let _ = writeln!(out, "<{h}>Sending session</{h}>");
    match &r.sent.report {
        JobReport::Probe(p) => probe::section(out, p, anchor, None),
        JobReport::Trace(t) => trace_body(out, t, anchor, naming),
    }
    imap(out, r, h);
}

fn path(out: &mut String, p: &RoundtripPath, h: &str) {
    let _ = writeln!(
        out,
        "<{h}>Path</{h}>\n<p class=\"meta\">scenario shown: {}{}</p>\n<table><tr><th>hop</th>\
         <th>delay</th><th>from</th><th>by</th><th>with</th><th>TLS</th><th>zone</th></tr>",
        p.scenario.map_or("none".into(), |s| s.to_string()),
        p.expected_scenario
            .map(|s| format!(", expected {s}"))
            .unwrap_or_default()
    );
    for h in &p.hops {
        let tls = match (&h.tls_version, &h.cipher) {
            (None, None) => "none".to_string(),
            (v, c) => format!(
                "{} {}",
                v.as_deref().unwrap_or(""),
                c.as_deref().unwrap_or("")
            ),
        };
        let class = if p.slowest_hop == Some(h.index) {
            " class=\"warn\""
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "<tr{class}><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td>\
             <td>{}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
            h.index,
            h.delay_s.map_or("-".into(), |d| format!("{d} s")),
            Esc(h.from.as_deref().or(h.from_ip.as_deref()).unwrap_or("?")),
            Esc(h.by.as_deref().unwrap_or("?")),
            Esc(h.with.as_deref().unwrap_or("?")),
            Esc(tls.trim()),
            h.zone.label()
        );
    }
    out.push_str("</table>\n");
}

fn receiver(out: &mut String, r: &RoundtripReport, h: &str) {
    let Some(v) = &r.receiver else { return };
    let _ = writeln!(out, "<{h}>What the receiving side concluded</{h}>\n<table><tr><th>check</th><th>result</th><th>detail</th></tr>");
    for a in &v.auth {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            Esc(&a.method),
            Esc(&a.result),
            Esc(a.detail.as_deref().unwrap_or(""))
        );
    }
    if let Some(scl) = v.scl {
        let _ = writeln!(out, "<tr><td>SCL</td><td>{scl}</td><td></td></tr>");
    }
    if let Some(s) = &v.spam_verdict {
        let _ = writeln!(
            out,
            "<tr><td>SFV</td><td>{}</td><td>{}</td></tr>",
            Esc(s),
            Esc(v.spam_verdict_meaning.as_deref().unwrap_or(""))
        );
    }
    if let Some(f) = &v.spam_flag {
        let _ = writeln!(
            out,
            "<tr><td>X-Spam-Flag</td><td>{}</td><td></td></tr>",
            Esc(f)
        );
    }
    out.push_str("</table>\n");
    if let Some(b) = &r.bounce {
        let _ = writeln!(out, "<{h}>Bounce</{h}>\n<p>{}</p>", Esc(&b.summary));
        for x in &b.recipients {
            let _ = writeln!(
                out,
                "<p class=\"mono\">{} {} {}</p>",
                Esc(&x.recipient),
                Esc(x.status.as_deref().unwrap_or("")),
                Esc(x.diagnostic_code.as_deref().unwrap_or(""))
            );
        }
    }
}

fn findings(out: &mut String, r: &RoundtripReport, h: &str) {
    if r.findings.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "<{h}>Findings</{h}>\n<table><tr><th>severity</th><th>finding</th><th>source</th></tr>",
    );
    for f in &r.findings {
        let (class, _) = pass_fail(f.severity != Severity::Error);
        let class = if f.severity == Severity::Warning {
            "warn"
        } else {
            class
        };
        let _ = writeln!(
            out,
            "<tr class=\"{class}\"><td class=\"{class}\"><b>{}</b></td><td><span class=\"mono\">{}\
             </span><br>{}</td><td>{}</td></tr>",
            json_name(&f.severity),
            Esc(&f.code),
            Esc(&f.message),
            Esc(&f.source)
        );
    }
    out.push_str("</table>\n");
}

fn imap(out: &mut String, r: &RoundtripReport, h: &str) {
    let _ = write!(out, "<{h}>Mailbox dialogue</{h}>\n<details><summary>IMAP commands (credentials redacted)</summary>\n<pre>");
    for s in &r.imap {
        let _ = writeln!(
            out,
            "{:>9.1} ms {:<11} {} -&gt; {}",
            s.elapsed_ms,
            Esc(&s.mailbox),
            Esc(&s.command),
            Esc(&s.reply)
        );
    }
    out.push_str("</pre></details>\n");
}
