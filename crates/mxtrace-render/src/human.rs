//! The transcript an admin reads like a telnet session. Markers follow swaks, which many admins
//! know: ` -> ` client, `<-  ` server, ` ~> `/`<~  ` the same inside TLS, `===` information,
//! `!!!` an error. Every line starts with the time since the probe began.
//!
//! The dialogue stays readable: a finding that is not the failure (a certificate not verified
//! in report mode, STARTTLS not offered) is one ` !  ` line in place, explained under
//! "Findings:" after the transcript; the failure is explained once, under the verdict.

use crate::style::{guard, pass_fail, terminal_safe, Style};
use mxtrace_proto::model::{
    AddressInfo, DnsFailure, MxFlag, MxHost, MxSource, Outcome, ProbeReport, Stage, StageRecord,
    TlsReport, TraceHop, TraceReport,
};
use mxtrace_proto::model::{Category, Diagnosis};
use mxtrace_proto::spec::{Field, Naming};
use std::fmt::Write;

/// Width of the time column, e.g. `   12.3 ms`.
fn time(ms: f64) -> String {
    format!("{ms:>9.1} ms")
}

const BLANK: &str = "            ";
/// The time column's width when a line has no time of its own.
const NO_TIME: &str = "           ";

pub fn render_probe(r: &ProbeReport, style: Style) -> String {
    let mut out = String::new();
    probe_body(&mut out, r, style, "Verdict");
    guard(out, style)
}

/// What a stage's diagnosis is in the calm layout.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Nothing to explain (an acceptance, no diagnosis).
    Quiet,
    /// The failure that decided the verdict: explained under the verdict.
    Decisive,
    /// The same explanation as the decisive failure (a second recipient refused alike).
    LikeDecisive,
    /// A finding that is not the failure: one line in place, explained under "Findings:".
    Finding,
}

/// Each stage's role: the first failed stage of the verdict's failed stage is decisive.
fn roles(r: &ProbeReport) -> Vec<Role> {
    let decisive = super::decisive(r);
    let decisive_diag = decisive
        .and_then(|i| r.stages.get(i))
        .and_then(|s| s.diagnosis.as_ref());
    r.stages
        .iter()
        .enumerate()
        .map(|(i, s)| match &s.diagnosis {
            _ if Some(i) == decisive => Role::Decisive,
            Some(d) if s.outcome == Outcome::Ok && d.category == Category::Accepted => Role::Quiet,
            Some(d) if Some(d) == decisive_diag => Role::LikeDecisive,
            Some(_) => Role::Finding,
            // The certificate finding of a completed handshake lives in tls.verification.
            None if s.stage == Stage::TlsHandshake
                && r.tls.as_ref().is_some_and(|t| t.verification.is_some()) =>
            {
                Role::Finding
            }
            None => Role::Quiet,
        })
        .collect()
}

/// Header, transcript, TLS report, the findings explained, and the probe's verdict under
/// `label` with the failure's explanation (a trace prints its probes' verdicts as "Probe
/// verdict" so that its own is the only "Verdict").
fn probe_body(out: &mut String, r: &ProbeReport, style: Style, label: &str) {
    let ip = r.target.ip.as_deref().unwrap_or("?");
    // An IPv6 address takes brackets before its port (RFC 3986 3.2.2).
    let host = match r.target.host.parse::<std::net::Ipv6Addr>() {
        Ok(_) => format!("[{}]", r.target.host),
        Err(_) => r.target.host.clone(),
    };
    let _ = writeln!(
        out,
        "{} {host}:{} ({ip}), tls {}",
        style.paint("1", "mxtrace probe"),
        r.target.port,
        r.target.tls_mode
    );
    let roles = roles(r);
    let mut stages = r.stages.iter().zip(&roles).peekable();
    while let Some((s, role)) = stages.next() {
        // RFC 2920: MAIL and its RCPTs (or RSET and QUIT) went out in one write and share
        // their start. Show every command as sent, then each reply at the time it arrived:
        // times never go back.
        let mut group = vec![(s, *role)];
        while let Some((next, r)) = stages.next_if(|(n, _)| {
            let follows = matches!(
                (s.stage, n.stage),
                (Stage::MailFrom, Stage::RcptTo) | (Stage::Rset, Stage::Quit)
            );
            follows && n.started_ms == s.started_ms
        }) {
            group.push((next, *r));
        }
        let mut t = Some(s.started_ms);
        for (g, _) in &group {
            sent(out, g, style, &mut t);
        }
        for (g, role) in group {
            calm_stage(out, g, role, style);
        }
    }
    if let Some(tls) = &r.tls {
        tls_section(out, tls, style);
    }
    findings(out, r, &roles, style);
    let verdict = pass_fail(r.verdict.passed, style);
    let _ = writeln!(out, "{label}: {verdict} {}", r.verdict.summary);
    let decisive = r
        .stages
        .iter()
        .zip(&roles)
        .find(|(_, role)| **role == Role::Decisive);
    if let Some(d) = decisive.and_then(|(s, _)| s.diagnosis.as_ref()) {
        diagnosis(out, d, style, usize::MAX, "  ");
    }
}

/// "Findings:": each explanation once, under the stages that showed it.
fn findings(out: &mut String, r: &ProbeReport, roles: &[Role], style: Style) {
    let mut seen: Vec<(Vec<Stage>, &Diagnosis, String)> = Vec::new();
    for (s, role) in r.stages.iter().zip(roles) {
        let Some(d) = s.diagnosis.as_ref().filter(|_| *role == Role::Finding) else {
            continue;
        };
        match seen.iter_mut().find(|(_, e, _)| *e == d) {
            Some((stages, _, _)) => stages.push(s.stage),
            None => seen.push((vec![s.stage], d, headline(s))),
        }
    }
    // The certificate finding of a completed handshake (tls.verification), apart from the
    // stage, whose outcome stays ok.
    if let Some((t, d)) = r
        .tls
        .as_ref()
        .and_then(|t| Some((t, t.verification.as_ref()?)))
    {
        let why = t.verify_error.as_deref().unwrap_or("unknown reason");
        let head = format!("certificate not verified: {}", terminal_safe(why));
        seen.push((vec![Stage::TlsHandshake], d, head));
    }
    if seen.is_empty() {
        return;
    }
    let _ = writeln!(out, "Findings:");
    for (stages, d, head) in seen {
        let names: Vec<&str> = stages.iter().map(|s| s.as_str()).collect();
        let _ = writeln!(
            out,
            "  {} {}: {head}",
            style.paint("33", "!"),
            names.join(", ")
        );
        diagnosis(out, d, style, usize::MAX, "    ");
    }
}

/// A headline short enough for the dialogue: up to its first parenthesis (the details are
/// under "Findings:").
fn brief(headline: &str) -> &str {
    headline
        .split_once(" (")
        .map_or(headline, |(short, _)| short)
}

/// A finding in one line: the note the engine wrote with it (the last of the stage), else
/// its category and layer.
fn headline(s: &StageRecord) -> String {
    match (s.notes.last(), &s.diagnosis) {
        (Some(note), _) => terminal_safe(note).into_owned(),
        (None, Some(d)) => format!("{} (layer {})", d.category.as_str(), layer_name(d)),
        (None, None) => s.outcome.as_str().to_string(),
    }
}

/// One stage: the lines sent and received, notes, the error, and the diagnosis of a failure
/// with at most `max_steps` next steps (`mxtrace demo` shows the failing stage this way).
pub fn render_stage(s: &StageRecord, style: Style, max_steps: usize) -> String {
    let mut out = String::new();
    sent(&mut out, s, style, &mut Some(s.started_ms));
    received(&mut out, s, style, None);
    // Explained: every failure, and findings on stages that passed (a certificate not
    // verified, STARTTLS not offered); a plain acceptance needs no words.
    if let Some(d) = &s.diagnosis {
        if s.outcome != Outcome::Ok || d.category != Category::Accepted {
            diagnosis(&mut out, d, style, max_steps, &format!("{BLANK}     "));
        }
    }
    guard(out, style)
}

/// A stage in a transcript: its dialogue, a finding marked in one line.
fn calm_stage(out: &mut String, s: &StageRecord, role: Role, style: Style) {
    let mark = match role {
        Role::Finding => Some(" (details below)"),
        Role::LikeDecisive => Some(": explained under the verdict"),
        Role::Quiet | Role::Decisive => None,
    };
    received(out, s, style, mark);
    // A finding on a stage without notes still gets its line.
    if let Some(m) = mark.filter(|_| s.notes.is_empty()) {
        let _ = writeln!(
            out,
            "{NO_TIME} {} {}{m}",
            style.paint("33", " ! "),
            brief(&headline(s))
        );
    }
}

/// A DNS failure that decided a trace hop, with its diagnosis.
pub fn render_dns_failure(e: &DnsFailure, style: Style, max_steps: usize) -> String {
    let mut out = String::new();
    dns_error(&mut out, e, style, max_steps);
    guard(out, style)
}

/// The time on the first line of a group, blank on the next ones.
fn stamp(t: &mut Option<f64>) -> String {
    match t.take() {
        Some(ms) => time(ms),
        None => NO_TIME.to_string(),
    }
}

/// The lines a stage sent, the first stamped with `t` if still set.
fn sent(out: &mut String, s: &StageRecord, style: Style, t: &mut Option<f64>) {
    let to = if s.encrypted { " ~> " } else { " -> " };
    for line in &s.sent {
        let line = terminal_safe(line);
        let _ = writeln!(out, "{} {}{}", stamp(t), style.paint("36", to), line);
    }
}

/// A stage's reply at the time it arrived, its notes and error. With `mark`, the last note is
/// the finding's one line (` !  ... (details below)`).
fn received(out: &mut String, s: &StageRecord, style: Style, mark: Option<&str>) {
    let from = if s.encrypted { "<~  " } else { "<-  " };
    let mut t = Some(s.started_ms + s.elapsed_ms);
    if let Some(reply) = &s.reply {
        for line in &reply.lines {
            let _ = writeln!(
                out,
                "{} {}{}",
                stamp(&mut t),
                from,
                style.outcome(s.outcome, &terminal_safe(line))
            );
        }
    }
    let n = s.notes.len();
    for (i, note) in s.notes.iter().enumerate() {
        match mark.filter(|_| i + 1 == n) {
            Some(m) => {
                let bang = style.paint("33", " ! ");
                let note = terminal_safe(note);
                let _ = writeln!(out, "{} {bang} {}{m}", stamp(&mut t), brief(&note));
            }
            None => {
                let _ = writeln!(out, "{} === {}", stamp(&mut t), terminal_safe(note));
            }
        }
    }
    if let Some(e) = &s.error {
        let _ = writeln!(
            out,
            "{} {} {} {}: {}",
            stamp(&mut t),
            style.paint("31", "!!!"),
            s.stage,
            e.kind.as_str(),
            terminal_safe(&e.message)
        );
    }
}

/// The layer's JSON name (`smtp-session`).
fn layer_name(d: &Diagnosis) -> String {
    match serde_json::to_value(d.layer) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "?".to_string(),
    }
}

/// Category, layer and path, the cause, the next steps, each line after `indent`.
fn diagnosis(out: &mut String, d: &Diagnosis, style: Style, max_steps: usize, indent: &str) {
    let mut head = format!("{} layer {}", d.category.as_str(), layer_name(d));
    if let Some(sc) = d.scenario {
        let _ = write!(head, ", scenario {sc}");
        if let Some(h) = d.hop {
            let _ = write!(head, " hop {h}");
        }
    }
    let _ = writeln!(out, "{indent}{}", style.paint("1", &head));
    if !d.cause.is_empty() {
        let _ = writeln!(out, "{indent}cause: {}", d.cause);
    }
    for (i, step) in d.next_steps.iter().take(max_steps).enumerate() {
        let _ = writeln!(out, "{indent}{}. {step}", i + 1);
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
    if t.version.is_none() {
        head.push_str(" handshake not completed");
    }
    let verified = if t.verified {
        let store = t.trust_store.as_deref().unwrap_or("?");
        style.paint("32", &format!("certificate verified ({store} trust store)"))
    } else {
        let why = terminal_safe(t.verify_error.as_deref().unwrap_or("unknown reason"));
        style.paint("31", &format!("certificate NOT verified: {why}"))
    };
    // A completed handshake's verification finding is explained under "Findings:".
    let _ = writeln!(out, "{head}; {verified}");
    if t.client_certificate_sent {
        let _ = writeln!(out, "  client certificate configured");
    }
    for (i, c) in t.chain.iter().enumerate() {
        let _ = writeln!(out, "  [{i}] subject  {}", terminal_safe(&c.subject));
        if !c.sans.is_empty() {
            let _ = writeln!(out, "      SANs     {}", terminal_safe(&c.sans.join(", ")));
        }
        let _ = writeln!(
            out,
            "      issuer   {}{}",
            terminal_safe(&c.issuer),
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

/// `trace`: each hop as a small tree (domain -> MX hosts -> addresses -> probe outcome), the
/// transcript of the probe that decided, and the verdict. Settings are named as `naming` says
/// (flags for the command line; keys for an exporter module's trace).
pub fn render_trace(r: &TraceReport, style: Style, naming: Naming) -> String {
    let mut out = String::new();
    let mode = if r.mode == "all" {
        format!("every address probed ({})", Field::All.name(naming))
    } else {
        "walked as a sending MTA".to_string()
    };
    let _ = writeln!(
        out,
        "{} {}: resolver {}, port {}, {mode}",
        style.paint("1", "mxtrace trace"),
        r.domain,
        r.resolver,
        r.port
    );
    for hop in &r.hops {
        trace_hop(&mut out, hop, style, naming);
    }
    for w in &r.verdict.warnings {
        let _ = writeln!(out, "{} {w}", style.paint("33", "warning:"));
    }
    let verdict = pass_fail(r.verdict.passed, style);
    let _ = writeln!(
        out,
        "Verdict: {verdict} {} ({:.1} ms)",
        r.verdict.summary, r.elapsed_ms
    );
    guard(out, style)
}

fn trace_hop(out: &mut String, hop: &TraceHop, style: Style, naming: Naming) {
    let source = match hop.mx_source {
        MxSource::Mx => format!("MX ({} record(s))", hop.mx.len()),
        MxSource::Implicit => "no MX: implicit MX, the domain's own address (RFC 5321 5.1)".into(),
        MxSource::NullMx => style.paint("31", "null MX (RFC 7505): accepts no mail"),
        MxSource::None => "MX".into(),
    };
    let mut head = format!("hop {}: {}  {source}", hop.hop, hop.domain);
    if let Some(sc) = hop.scenario {
        let _ = write!(head, ", scenario {sc}");
    }
    let _ = writeln!(out, "{head}  [DNS {:.1} ms]", hop.dns_elapsed_ms);
    let n = hop.mx.len();
    for (i, m) in hop.mx.iter().enumerate() {
        let last = i + 1 == n;
        mx_line(out, hop, m, last, style, naming);
    }
    if let Some(spf) = &hop.spf {
        spf_line(out, spf, style);
    }
    super::trace_policy::render(out, hop, style);
    if let Some(e) = &hop.error {
        dns_error(out, e, style, usize::MAX);
    }
    if let Some(p) = hop
        .decided_by
        .and_then(|i| hop.probes.get(i).map(|p| (i, p)))
    {
        let (i, p) = p;
        let _ = writeln!(
            out,
            "\nTranscript of #{} {} [{}], which decided:",
            i + 1,
            p.mx,
            p.ip
        );
        probe_body(out, &p.report, style, "Probe verdict");
    } else if let Some(p) = hop.probes.last() {
        let _ = writeln!(
            out,
            "\nTranscript of the last attempt, #{} {} [{}]:",
            hop.probes.len(),
            p.mx,
            p.ip
        );
        probe_body(out, &p.report, style, "Probe verdict");
    }
}

fn spf_line(out: &mut String, spf: &mxtrace_proto::model::SpfRecord, style: Style) {
    let _ = writeln!(out, "SPF: {}", terminal_safe(&spf.record));
    if spf.multiple {
        let _ = writeln!(
            out,
            "     {}",
            style.paint(
                "31",
                "more than one SPF record: every receiver's SPF check fails (RFC 7208 3.2)"
            )
        );
    }
    let h = &spf.hints;
    if h.sends_via_eop {
        let via = if h.own_servers {
            "through Exchange Online and its own servers (scenario C, or D: centralized mail flow)"
        } else {
            "through Exchange Online (scenario C)"
        };
        let _ = writeln!(out, "     the domain sends {via}");
    }
    if h.dns_lookup_terms > 10 {
        let _ = writeln!(
            out,
            "     {}",
            style.paint(
                "33",
                &format!(
                    "{} DNS-lookup terms at the top level: over the limit of 10 (RFC 7208 4.6.4)",
                    h.dns_lookup_terms
                )
            )
        );
    }
}

fn mx_line(out: &mut String, hop: &TraceHop, m: &MxHost, last: bool, style: Style, naming: Naming) {
    let (branch, indent) = if last {
        ("`-- ", "    ")
    } else {
        ("|-- ", "|   ")
    };
    let mut line = format!("{branch}{} {}", m.preference, m.host);
    let notes: Vec<String> = m
        .flags
        .iter()
        .map(|f| mx_note(*f, m, style, naming))
        .collect();
    if !notes.is_empty() {
        let _ = write!(line, "  [{}]", notes.join("; "));
    }
    let _ = writeln!(out, "{line}");
    if let Some(e) = &m.error {
        let _ = writeln!(
            out,
            "{indent}`-- {} {}: {}",
            style.paint("31", "dns"),
            e.reason.as_str(),
            e.message
        );
    }
    let n = m.addresses.len();
    for (i, a) in m.addresses.iter().enumerate() {
        let (branch, sub) = if i + 1 == n {
            ("`-- ", "    ")
        } else {
            ("|-- ", "|   ")
        };
        let _ = writeln!(out, "{indent}{branch}{}  {}", a.ip, ptr_text(a, style));
        address_probe(out, hop, m, a, &format!("{indent}{sub}    "), style);
    }
}

/// What an MX flag means, in a few words.
fn mx_note(f: MxFlag, m: &MxHost, style: Style, naming: Naming) -> String {
    match f {
        MxFlag::Implicit => "implicit".to_string(),
        MxFlag::EqualPreference => "equal preference: order chosen at random".to_string(),
        MxFlag::Cname => style.paint(
            "33",
            &format!(
                "CNAME to {}: misconfiguration (RFC 2181 10.3)",
                m.cname_target.as_deref().unwrap_or("?")
            ),
        ),
        MxFlag::IpLiteral => style.paint(
            "31",
            "IP address, not a host name: misconfiguration (RFC 5321 5.1), not used",
        ),
        MxFlag::NoAddress => style.paint("31", "no address"),
        MxFlag::BeyondMaxMx => format!("not used ({})", Field::MaxMx.name(naming)),
    }
}

/// Under an address: the walk's probe of it (and the names it gave), its per-family probe, or
/// that it was not tried.
fn address_probe(
    out: &mut String,
    hop: &TraceHop,
    m: &MxHost,
    a: &AddressInfo,
    prefix: &str,
    style: Style,
) {
    let probe = hop
        .probes
        .iter()
        .enumerate()
        .find(|(_, p)| p.ip == a.ip && p.mx == m.host);
    match probe {
        Some((pi, p)) => {
            let decided = if hop.decided_by == Some(pi) {
                style.paint("1", "  <= decided")
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "{prefix}#{} {} ({:.1} ms){decided}",
                pi + 1,
                probe_brief(&p.report, style),
                p.report.elapsed_ms
            );
            let mut names = Vec::new();
            if let Some(b) = &p.banner_name {
                names.push(format!("banner {b}"));
            }
            if let Some(e) = &p.ehlo_name {
                names.push(format!("EHLO {e}"));
            }
            if !p.front_end.is_empty() {
                names.push(format!("front end {}", p.front_end.join(", ")));
            }
            if !names.is_empty() {
                let _ = writeln!(out, "{prefix}   {}", names.join("; "));
            }
        }
        None if hop.error.is_none() => {
            let family = hop
                .family_probes
                .iter()
                .find(|p| p.ip == a.ip && p.mx == m.host);
            let _ = match family {
                Some(p) => writeln!(
                    out,
                    "{prefix}not tried by the walk; per-family probe: {} ({:.1} ms)",
                    probe_brief(&p.report, style),
                    p.report.elapsed_ms
                ),
                None => writeln!(out, "{prefix}not tried (decided before)"),
            };
        }
        None => {}
    }
}

fn ptr_text(a: &AddressInfo, style: Style) -> String {
    let fcrdns = match a.fcrdns {
        Some(true) => style.paint("32", "FCrDNS ok"),
        Some(false) => style.paint("33", "FCrDNS fails"),
        None => "FCrDNS unknown".to_string(),
    };
    if a.ptr.is_empty() {
        let why = a
            .ptr_error
            .as_ref()
            .map(|e| e.reason.as_str())
            .unwrap_or("none");
        format!("no PTR ({why}), {fcrdns}")
    } else {
        format!("PTR {} ({fcrdns})", a.ptr.join(", "))
    }
}

/// `ok: rcpt_to 250 2.1.5` or `transient at banner: 421 4.3.2` or `error at connect: refused`.
fn probe_brief(r: &ProbeReport, style: Style) -> String {
    let describe = |s: &StageRecord| format!("{} {}", s.stage, super::answer(s));
    if r.verdict.passed {
        let text = match super::last_checked(r) {
            Some(s) => format!("passed, {}", describe(s)),
            None => "passed".to_string(),
        };
        return style.outcome(Outcome::Ok, &text);
    }
    let failed = super::decisive(r).and_then(|i| r.stages.get(i));
    let word = match r.verdict.outcome {
        Outcome::Ok => "ok",
        Outcome::Transient => "transient",
        Outcome::Permanent => "permanent",
        Outcome::Error => "error",
    };
    let text = match failed {
        Some(s) => format!("{word} at {}", describe(s)),
        None => word.to_string(),
    };
    style.outcome(r.verdict.outcome, &text)
}

fn dns_error(out: &mut String, e: &DnsFailure, style: Style, max_steps: usize) {
    let _ = writeln!(
        out,
        "{} dns {}: {} ({})",
        style.paint("31", "!!!"),
        e.reason.as_str(),
        e.message,
        e.query
    );
    if let Some(d) = &e.diagnosis {
        diagnosis(out, d, style, max_steps, &format!("{BLANK}     "));
    }
}

/// `run`: a line per hop, one per expectation (`PASS`/`FAIL`, what, what was observed, and
/// for a failure why), then the summary and verdict.
pub fn render_run(r: &mxtrace_proto::model::RunReport, style: Style) -> String {
    let mut out = String::new();
    let mut head = format!("{} {}: {}", style.paint("1", "mxtrace run"), r.file, r.name);
    match (&r.scenario, &r.tenant) {
        (Some(s), Some(t)) => {
            let _ = write!(head, " (scenario {s}, tenant {t})");
        }
        (Some(s), None) => {
            let _ = write!(head, " (scenario {s})");
        }
        _ => {}
    }
    let _ = writeln!(out, "{head}");
    for h in &r.hops {
        let path = h
            .path
            .as_ref()
            .map(|p| format!(", {p}"))
            .unwrap_or_default();
        let scenario = h
            .scenario
            .map(|s| format!(" (scenario {s} hop {}{path})", h.hop))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "hop {} {}: {} {}{scenario}",
            h.hop, h.name, h.kind, h.target
        );
        if let Some(rt) = &h.roundtrip {
            let _ = writeln!(out, "     {}", hop_roundtrip(rt));
        }
        for e in &h.expectations {
            let mark = if e.passed {
                style.paint("32", "PASS")
            } else {
                style.paint("1;31", "FAIL")
            };
            let subject = e
                .subject
                .as_ref()
                .map(|s| format!(" [{s}]"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{mark} hop {} {}{subject}: {} (observed: {})",
                h.hop, h.name, e.description, e.observed
            );
            if let Some(c) = e.cause.as_ref().filter(|_| !e.passed) {
                let _ = writeln!(out, "     why: {c}");
            }
        }
    }
    let s = &r.summary;
    let _ = writeln!(
        out,
        "Summary: {} expectation(s), {} passed, {} failed",
        s.total, s.passed, s.failed
    );
    let verdict = pass_fail(r.verdict.passed, style);
    let _ = writeln!(out, "Verdict: {verdict} {}", r.verdict.summary);
    guard(out, style)
}

/// A hop's round trip in one line: where the message went and what became of it.
fn hop_roundtrip(rt: &mxtrace_proto::model::HopRoundtrip) -> String {
    match (&rt.report, &rt.error) {
        (Some(r), _) => format!(
            "round trip {} -> {} (mailbox {}): {}",
            r.from.as_deref().unwrap_or("<>"),
            r.rcpt,
            r.mailbox.url,
            r.verdict.summary
        ),
        (None, e) => {
            let e = e.as_deref().unwrap_or("");
            format!(
                "round trip could not start: {}",
                e.lines().next().unwrap_or(e)
            )
        }
    }
}

/// `diff`: one line per finding, regressions first, then the summary and verdict.
pub fn render_diff(r: &mxtrace_proto::model::diff::DiffReport, style: Style) -> String {
    use mxtrace_proto::model::diff::Kind;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} ({}) -> {} ({}), latency threshold {}",
        style.paint("1", "mxtrace diff"),
        r.before.file,
        r.before.command,
        r.after.file,
        r.after.command,
        r.latency_threshold
    );
    for kind in [Kind::Regression, Kind::Improvement, Kind::Change] {
        for f in r.findings.iter().filter(|f| f.kind == kind) {
            let label = match kind {
                Kind::Regression => style.paint("1;31", "REGRESSION "),
                Kind::Improvement => style.paint("32", "IMPROVEMENT"),
                Kind::Change => style.paint("33", "CHANGE     "),
            };
            let hop = if f.hop.is_empty() {
                String::new()
            } else {
                format!("{}: ", f.hop)
            };
            let subject = if f.what == "expectation" {
                String::new()
            } else {
                format!("{}: ", f.subject)
            };
            let _ = writeln!(out, "{label} {hop}{subject}{}", f.message);
        }
    }
    let verdict = pass_fail(r.verdict.passed, style);
    let _ = writeln!(out, "Verdict: {verdict} {}", r.verdict.summary);
    guard(out, style)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_made_visible() {
        assert_eq!(terminal_safe("250 ok"), "250 ok");
        assert_eq!(
            terminal_safe("220 \u{1b}]0;x\u{7}\u{0}\r\n\u{7f}\u{9b}"),
            r"220 \x1b]0;x\x07\x00\x0d\x0a\x7f\x9b"
        );
        assert_eq!(terminal_safe("a\u{202e}b"), r"a\u{202e}b");
        assert_eq!(terminal_safe("caf\u{e9} \u{fffd}"), "caf\u{e9} \u{fffd}");
    }

    #[test]
    fn the_guard_keeps_only_line_breaks_and_own_colours() {
        let raw = "\u{1b}[1;31mFAIL\u{1b}[0m \u{1b}[2J\u{1b}]0;t\u{7}\n".to_string();
        assert_eq!(
            guard(raw.clone(), Style::new(true)),
            "\u{1b}[1;31mFAIL\u{1b}[0m \\x1b[2J\\x1b]0;t\\x07\n"
        );
        assert_eq!(
            guard(raw, Style::new(false)),
            "\\x1b[1;31mFAIL\\x1b[0m \\x1b[2J\\x1b]0;t\\x07\n"
        );
    }
}
