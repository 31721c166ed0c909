//! `mxtrace roundtrip` for people: what was sent and who accepted it, whether and where the
//! message arrived and how long it took, the hops of the delivered copy, what the receiving
//! side concluded, the findings, the cleanup, and the mailbox dialogue.

use crate::style::{pass_fail, terminal_safe as safe, Style};
use mxtrace_proto::model::posture::Severity;
use mxtrace_proto::model::roundtrip::{
    Bounce, CleanupAction, Delivery, DeliveryStatus, ImapStep, ReceiverVerdicts, RoundtripPath,
    RoundtripReport,
};
use std::fmt::Write;

const BOLD: &str = "1";
const RED: &str = "31";
const YELLOW: &str = "33";
const DIM: &str = "2";

pub fn render_human(r: &RoundtripReport, style: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} -> {}  (id {})",
        style.paint(BOLD, "Round trip"),
        safe(r.from.as_deref().unwrap_or("<>")),
        safe(&r.rcpt),
        r.probe_id
    );
    let _ = writeln!(
        out,
        "  mailbox    {} ({}, {}{}{})",
        safe(&r.mailbox.url),
        safe(r.mailbox.tls.as_deref().unwrap_or("no TLS")),
        safe(&r.mailbox.login),
        if r.mailbox.idle { ", IDLE" } else { ", polled" },
        if r.mailbox.uidplus { ", UIDPLUS" } else { "" }
    );
    if let Some(n) = &r.ndr_mailbox {
        let _ = writeln!(out, "  bounces to {}", safe(&n.url));
    }
    sent(&mut out, r);
    delivery(&mut out, &r.delivery, style);
    if let Some(p) = &r.path {
        path(&mut out, p, style);
    }
    if let Some(v) = &r.receiver {
        receiver(&mut out, v, style);
    }
    if let Some(b) = &r.bounce {
        bounce(&mut out, b, style);
    }
    findings(&mut out, r, style);
    cleanup(&mut out, r);
    imap(&mut out, &r.imap, style);
    let _ = writeln!(
        out,
        "\n{} {}",
        pass_fail(r.verdict.passed, style),
        safe(&r.verdict.summary)
    );
    out
}

fn sent(out: &mut String, r: &RoundtripReport) {
    let s = &r.sent;
    let _ = writeln!(out, "\nSent");
    match (&s.host, s.accepted) {
        (Some(h), true) => {
            let _ = writeln!(
                out,
                "  accepted by {}{} at {}",
                safe(h),
                s.ip.as_deref()
                    .map(|i| format!(" [{}]", safe(i)))
                    .unwrap_or_default(),
                s.at.as_deref().unwrap_or("?")
            );
            if let Some(reply) = &s.reply {
                let _ = writeln!(out, "  {}", safe(reply));
            }
        }
        _ => {
            let _ = writeln!(out, "  not accepted: no server took the end of DATA");
        }
    }
}

fn delivery(out: &mut String, d: &Delivery, style: Style) {
    let _ = writeln!(out, "\nDelivery");
    let secs = |s: Option<f64>| s.map_or("-".to_string(), |s| format!("{s:.3} s"));
    match d.status {
        DeliveryStatus::Delivered => {
            let folder = d.folder_name.as_deref().unwrap_or("?");
            let shown = match d.folder {
                Some(mxtrace_proto::model::roundtrip::FolderKind::Junk) => style.paint(RED, folder),
                _ => folder.to_string(),
            };
            let _ = writeln!(
                out,
                "  delivered to {} (UID {})",
                safe(&shown),
                d.uid.unwrap_or(0)
            );
            let _ = writeln!(out, "  end of DATA -> in the mailbox   {}", secs(d.seconds));
            let _ = writeln!(
                out,
                "  as the Received chain tells it {}",
                d.header_seconds
                    .map_or("-".to_string(), |s| format!("{s} s"))
            );
        }
        status => {
            let _ = writeln!(out, "  {}", style.paint(RED, status.as_str()));
            if let Some(l) = &d.last_seen {
                let _ = writeln!(
                    out,
                    "  last seen: accepted by {}{} at {}",
                    safe(&l.host),
                    l.ip.as_deref()
                        .map(|i| format!(" [{}]", safe(i)))
                        .unwrap_or_default(),
                    l.at.as_deref().unwrap_or("?")
                );
            }
        }
    }
    if let Some(e) = &d.error {
        let _ = writeln!(out, "  {}", style.paint(YELLOW, &safe(e)));
    }
}

fn path(out: &mut String, p: &RoundtripPath, style: Style) {
    let _ = writeln!(out, "\nPath (oldest hop first)");
    for h in &p.hops {
        let tls = match (&h.tls_version, &h.cipher) {
            (None, None) => "no TLS".to_string(),
            (v, c) => format!(
                "{} {}",
                v.as_deref().unwrap_or(""),
                c.as_deref().unwrap_or("")
            )
            .trim()
            .to_string(),
        };
        let delay = h
            .delay_s
            .map_or("    -".to_string(), |d| format!("{d:>4} s"));
        let slow = if p.slowest_hop == Some(h.index) {
            " (slowest)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {:>2}. {delay}  {} -> {}  with {}, {}, {}{slow}",
            h.index,
            safe(h.from.as_deref().or(h.from_ip.as_deref()).unwrap_or("?")),
            safe(h.by.as_deref().unwrap_or("?")),
            safe(h.with.as_deref().unwrap_or("?")),
            safe(&tls),
            h.zone.label()
        );
    }
    let scenario = p
        .scenario
        .map_or("none shown".to_string(), |s| s.to_string());
    let expected = p
        .expected_scenario
        .map(|e| format!(" (expected {e})"))
        .unwrap_or_default();
    let _ = writeln!(out, "  scenario: {scenario}{expected}");
    let _ = style;
}

fn receiver(out: &mut String, v: &ReceiverVerdicts, style: Style) {
    let _ = writeln!(out, "\nWhat the receiving side concluded");
    if v.auth.is_empty() && v.scl.is_none() && v.spam_verdict.is_none() && v.spam_flag.is_none() {
        let _ = writeln!(out, "  no Authentication-Results, no spam verdict stamped");
        return;
    }
    for a in &v.auth {
        let res = match a.result.as_str() {
            "pass" => a.result.clone(),
            _ => style.paint(YELLOW, &a.result),
        };
        let _ = writeln!(
            out,
            "  {:<9}{}{}",
            safe(&a.method),
            safe(&res),
            a.detail
                .as_deref()
                .map(|d| format!(" ({})", safe(d)))
                .unwrap_or_default()
        );
    }
    if let Some(scl) = v.scl {
        let _ = writeln!(out, "  SCL      {scl}");
    }
    if let Some(sfv) = &v.spam_verdict {
        let _ = writeln!(
            out,
            "  SFV      {}{}",
            safe(sfv),
            v.spam_verdict_meaning
                .as_deref()
                .map(|m| format!(": {}", safe(m)))
                .unwrap_or_default()
        );
    }
    if let Some(f) = &v.spam_flag {
        let _ = writeln!(out, "  X-Spam-Flag {}", safe(f));
    }
}

fn bounce(out: &mut String, b: &Bounce, style: Style) {
    let _ = writeln!(
        out,
        "\nBounce (in {}, UID {}{})",
        safe(&b.folder_name),
        b.uid,
        b.seconds
            .map(|s| format!(", {s:.1} s after the end of DATA"))
            .unwrap_or_default()
    );
    if let Some(m) = &b.reporting_mta {
        let _ = writeln!(out, "  reported by {}", safe(m));
    }
    for r in &b.recipients {
        let _ = writeln!(
            out,
            "  {} {} {}",
            safe(&r.recipient),
            safe(r.action.as_deref().unwrap_or("")),
            style.paint(RED, &safe(r.status.as_deref().unwrap_or("")))
        );
        if let Some(c) = &r.diagnostic_code {
            let _ = writeln!(out, "    {}", safe(c));
        }
        if let (Some(cat), Some(cause)) = (r.category, &r.cause) {
            let _ = writeln!(out, "    {}: {}", cat.as_str(), safe(cause));
        }
    }
}

fn findings(out: &mut String, r: &RoundtripReport, style: Style) {
    if r.findings.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nFindings");
    for f in &r.findings {
        let word = match f.severity {
            Severity::Error => style.paint(RED, "error  "),
            Severity::Warning => style.paint(YELLOW, "warning"),
            Severity::Info => "info   ".to_string(),
        };
        let _ = writeln!(out, "  {word} {}: {}", f.code, safe(&f.message));
    }
}

fn cleanup(out: &mut String, r: &RoundtripReport) {
    if r.cleanup.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nCleanup");
    for c in &r.cleanup {
        let what = match c.action {
            CleanupAction::Deleted => "deleted",
            CleanupAction::Kept => "kept",
            CleanupAction::LeftNoUidplus => "left (no UIDPLUS)",
            CleanupAction::Failed => "not deleted",
        };
        let _ = writeln!(
            out,
            "  {} in {} UID {}: {what}{}",
            c.message,
            safe(&c.folder),
            c.uid,
            c.detail
                .as_deref()
                .map(|d| format!(" ({})", safe(d)))
                .unwrap_or_default()
        );
    }
}

fn imap(out: &mut String, steps: &[ImapStep], style: Style) {
    let _ = writeln!(out, "\nMailbox dialogue");
    for s in steps {
        let line = format!(
            "  {:>9.1} ms {:<11} {} -> {}",
            s.elapsed_ms,
            s.mailbox,
            safe(&s.command),
            safe(&s.reply)
        );
        let _ = writeln!(
            out,
            "{}",
            if s.ok {
                style.paint(DIM, &line)
            } else {
                style.paint(RED, &line)
            }
        );
    }
}
