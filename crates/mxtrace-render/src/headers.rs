//! `mxtrace headers` for people: the message, its hops oldest first with delays and TLS, the
//! path in scenario terms, authentication, Exchange stamps in words, the NDR's recipients
//! explained, and the commands to run next.

use crate::style::Style;
use mxtrace_proto::model::headers::{
    unknown_meaning, Authentication, ExchangeStamps, HeadersReport, Hop, MessageFacts, MessageKind,
    NdrRecipient, PathSummary, Source, StampField,
};
use std::fmt::Write;

const BOLD: &str = "1";
const RED: &str = "31";
const GREEN: &str = "32";
const YELLOW: &str = "33";

/// The whole report as text.
pub fn render_human(r: &HeadersReport, style: Style) -> String {
    let mut out = String::new();
    let title = match r.kind {
        MessageKind::Message => "Message",
        MessageKind::Ndr => "Non-delivery report",
    };
    let _ = writeln!(out, "{} {}", style.paint(BOLD, title), r.source);
    summary(&mut out, &r.message);
    if let Some(ndr) = &r.ndr {
        ndr_section(&mut out, r, &style);
        if let Some(orig) = &ndr.original {
            let _ = writeln!(out, "\n{}", style.paint(BOLD, "Returned message"));
            summary(&mut out, orig);
            evidence(&mut out, orig, &style);
        }
        let _ = writeln!(out, "\n{}", style.paint(BOLD, "The report itself"));
    }
    evidence(&mut out, &r.message, &style);
    if !r.next_steps.is_empty() {
        let _ = writeln!(out, "\n{}", style.paint(BOLD, "Test the path now"));
        for s in &r.next_steps {
            let _ = writeln!(out, "  {s}");
        }
    }
    let verdict = if r.verdict.passed {
        style.paint(GREEN, &r.verdict.summary)
    } else {
        style.paint(RED, &r.verdict.summary)
    };
    let _ = writeln!(out, "\n{verdict}");
    out
}

fn summary(out: &mut String, m: &MessageFacts) {
    let line = |out: &mut String, k: &str, v: Option<&str>| {
        if let Some(v) = v {
            let _ = writeln!(out, "  {k:<11}{v}");
        }
    };
    line(out, "subject", m.subject.as_deref());
    line(out, "from", m.from.as_deref());
    let to = m.to.join(", ");
    line(out, "to", Some(to.as_str()).filter(|t| !t.is_empty()));
    line(out, "date", m.date.as_deref());
    line(out, "message-id", m.message_id.as_deref());
}

/// Hops, path, authentication and stamps of one message.
fn evidence(out: &mut String, m: &MessageFacts, style: &Style) {
    hops(out, &m.hops, &m.path, style);
    authentication(out, &m.authentication);
    exchange(out, &m.exchange);
}

fn hops(out: &mut String, hops: &[Hop], path: &PathSummary, style: &Style) {
    let _ = writeln!(
        out,
        "\n{}",
        style.paint(BOLD, "Received chain (oldest first)")
    );
    if hops.is_empty() {
        let _ = writeln!(out, "  no Received fields");
        return;
    }
    for h in hops {
        let delay = match h.delay_s {
            Some(d) if h.clock_skew => style.paint(YELLOW, &format!("{d:>+6}s skew")),
            Some(d) => format!("{d:>6}s"),
            None => format!("{:>7}", "-"),
        };
        let time = h.time.as_deref().unwrap_or("(no date)");
        let _ = writeln!(
            out,
            "  {:>2}  {time:<20} {delay}  {}",
            h.index,
            h.zone.label()
        );
        let from = endpoint(h.from.as_deref(), h.from_ip.as_deref());
        let by = h.by.as_deref().unwrap_or("?");
        let _ = writeln!(out, "      {from} -> {by}");
        let mut how: Vec<String> = h.with.iter().cloned().collect();
        if let Some(t) = &h.tls {
            how.push(
                [t.version.as_deref(), t.cipher.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
        if let Some(f) = &h.for_ {
            how.push(format!("for {f}"));
        }
        if !how.is_empty() {
            let _ = writeln!(out, "      {}", how.join(", "));
        }
    }
    path_line(out, hops, path);
}

fn endpoint(host: Option<&str>, ip: Option<&str>) -> String {
    match (host, ip) {
        (Some(h), Some(i)) if h != i => format!("{h} [{i}]"),
        (Some(h), _) => h.to_string(),
        (None, Some(i)) => format!("[{i}]"),
        (None, None) => "?".to_string(),
    }
}

fn path_line(out: &mut String, hops: &[Hop], path: &PathSummary) {
    let zones: Vec<&str> = path.zones.iter().map(|z| z.label()).collect();
    if !zones.is_empty() {
        let _ = writeln!(out, "  path: {}", zones.join(" -> "));
    }
    match path.scenario {
        Some(s) => {
            let legs: Vec<String> = path
                .legs
                .iter()
                .map(|l| format!("hop {} ({}) at #{}", l.hop, l.label, l.at))
                .collect();
            let _ = writeln!(out, "  scenario {s}: {}", legs.join("; "));
        }
        None => {
            let _ = writeln!(
                out,
                "  scenario: none of A-D recognised from the host names"
            );
        }
    }
    if let Some(total) = path.total_delay_s {
        let mut line = format!("  total delay {total}s");
        if let Some(h) = path
            .slowest_hop
            .and_then(|i| hops.iter().find(|h| h.index == i))
        {
            let by = h.by.as_deref().unwrap_or("?");
            let _ = write!(
                line,
                "; most at #{} ({by}, {}s)",
                h.index,
                h.delay_s.unwrap_or(0)
            );
        }
        let _ = writeln!(out, "{line}");
    }
    if path.clock_skew {
        let _ = writeln!(
            out,
            "  clock skew: a later hop is stamped earlier than the one before it; delays around it are unreliable"
        );
    }
}

fn authentication(out: &mut String, a: &Authentication) {
    if a.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nAuthentication");
    for r in a
        .results
        .iter()
        .filter(|r| r.header == "Authentication-Results")
    {
        let mut line = format!("  {}={}", r.method, r.result);
        for key in [
            "reason",
            "action",
            "smtp.mailfrom",
            "header.d",
            "header.from",
        ] {
            if let Some(v) = r.properties.get(key) {
                let _ = write!(line, " {key}={v}");
            }
        }
        if let Some(c) = &r.comment {
            let _ = write!(line, " ({c})");
        }
        let _ = writeln!(out, "{line}");
        if let Some(m) = &r.meaning {
            let _ = writeln!(out, "      {m}");
        }
    }
    let arc = a
        .results
        .iter()
        .filter(|r| r.header != "Authentication-Results")
        .count();
    if arc > 0 {
        let _ = writeln!(
            out,
            "  ARC-Authentication-Results: {arc} result(s) (see --json)"
        );
    }
    for s in &a.received_spf {
        let ip = s
            .client_ip
            .as_deref()
            .map(|i| format!(" client-ip={i}"))
            .unwrap_or_default();
        let _ = writeln!(out, "  Received-SPF: {}{ip}", s.result);
    }
    for d in &a.dkim_signatures {
        let _ = writeln!(
            out,
            "  DKIM-Signature: d={} s={}",
            d.domain.as_deref().unwrap_or("?"),
            d.selector.as_deref().unwrap_or("?")
        );
    }
}

fn exchange(out: &mut String, s: &ExchangeStamps) {
    if s.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nExchange stamps");
    let group = |out: &mut String, title: &str, fields: &[StampField]| {
        if fields.is_empty() {
            return;
        }
        let _ = writeln!(out, "  {title}");
        for f in fields {
            let meaning = f.meaning.as_deref().unwrap_or(unknown_meaning());
            let _ = writeln!(
                out,
                "    {:<6} {:<24} {meaning}",
                f.field,
                short(&f.value, 24)
            );
        }
    };
    group(out, "X-Forefront-Antispam-Report", &s.forefront);
    group(out, "X-Microsoft-Antispam", &s.microsoft_antispam);
    for f in &s.organization {
        let _ = writeln!(out, "  {}: {}", f.field, f.value);
        if let Some(m) = &f.meaning {
            let _ = writeln!(out, "      {m}");
        }
    }
    if let Some(id) = &s.network_message_id {
        let _ = writeln!(
            out,
            "  message trace: search the Network Message ID {id} in the Exchange admin center (Mail flow > Message trace) or Threat Explorer"
        );
    }
}

fn ndr_section(out: &mut String, r: &HeadersReport, style: &Style) {
    let Some(report) = &r.ndr else {
        return;
    };
    let n = &report.ndr;
    let _ = writeln!(out, "\n{}", style.paint(BOLD, "Recipients"));
    let mta = |k: &str, v: &Option<String>, out: &mut String| {
        if let Some(v) = v {
            let _ = writeln!(out, "  {k}: {v}");
        }
    };
    mta("reporting MTA", &n.reporting_mta, out);
    mta("generating server", &n.generating_server, out);
    if n.recipients.is_empty() {
        let _ = writeln!(out, "  no recipient listed");
    }
    for rcpt in &n.recipients {
        recipient(out, rcpt, style);
    }
}

fn recipient(out: &mut String, r: &NdrRecipient, style: &Style) {
    let action = r.action.as_deref().unwrap_or("?");
    let action = if r.failed() {
        style.paint(RED, action)
    } else {
        style.paint(YELLOW, action)
    };
    let status = r.status.as_deref().unwrap_or("-");
    let _ = writeln!(
        out,
        "  {}  {action}  {status}",
        style.paint(BOLD, &r.recipient)
    );
    if let Some(m) = &r.remote_mta {
        let _ = writeln!(out, "    remote MTA: {m}");
    }
    if let Some(d) = &r.diagnostic_code {
        let _ = writeln!(out, "    diagnostic: {d}");
    }
    let source = match r.source {
        Source::DeliveryStatus => "delivery-status part",
        Source::ExchangeText => "Exchange's diagnostic information",
        Source::EximText => "Exim's report text",
        Source::FailedRecipientsHeader => "X-Failed-Recipients",
        Source::ProseText => "the report's text",
    };
    let stage = r.stage.map(|s| s.as_str()).unwrap_or("not stated");
    let _ = writeln!(out, "    stage: {stage}  (from the {source})");
    match &r.explanation {
        Some(e) => {
            let _ = writeln!(
                out,
                "    {}  layer {}",
                style.paint(BOLD, e.category.as_str()),
                json_name(&e.layer)
            );
            let _ = writeln!(out, "    cause: {}", e.cause);
            for (i, step) in e.next_steps.iter().enumerate() {
                let _ = writeln!(out, "      {}. {step}", i + 1);
            }
        }
        None => {
            let _ = writeln!(out, "    not an SMTP reply: not classified");
        }
    }
}

fn json_name<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn short(s: &str, n: usize) -> String {
    mxtrace_proto::text::ellipsis(s, n)
}
