//! The human rendering of a posture: one block per section with its verdict, the records read
//! and the facts found, then each finding with its category, layer and next steps. Every
//! string from DNS or HTTP goes through the report's terminal guard.

use crate::style::{guard, pass_fail, Style};
use mxtrace_proto::model::posture::{
    DaneSection, DkimSection, DmarcSection, DnsblSection, Finding, MtaStsSection, PostureReport,
    RdnsSection, Section, Severity, SpfNode, SpfSection, Status,
};
use std::fmt::Write;

pub fn render_human(r: &PostureReport, style: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} (resolver {})",
        style.paint("1", "mxtrace dns"),
        r.domain,
        r.resolver
    );
    match (&r.mx_error, r.mx.is_empty()) {
        (Some(e), _) => {
            let _ = writeln!(out, "MX: lookup failed: {e}");
        }
        (None, true) => out.push_str("MX: none\n"),
        (None, false) => {
            let _ = writeln!(out, "MX: {}", r.mx.join(", "));
        }
    }
    spf(&mut out, &r.spf, style);
    dmarc(&mut out, &r.dmarc, style);
    dkim(&mut out, &r.dkim, style);
    mta_sts(&mut out, &r.mta_sts, style);
    header(&mut out, "TLS-RPT", &r.tls_rpt.section, style);
    records(&mut out, &r.tls_rpt.section);
    findings(&mut out, &r.tls_rpt.section, style);
    dane(&mut out, &r.dane, style);
    rdns(&mut out, &r.rdns, style);
    if let Some(b) = &r.dnsbl {
        dnsbl(&mut out, b, style);
    }
    let _ = writeln!(
        out,
        "\nVerdict: {} {}",
        pass_fail(r.verdict.passed, style),
        r.verdict.summary
    );
    guard(out, style)
}

fn header(out: &mut String, name: &str, s: &Section, style: Style) {
    let word = match s.status {
        Some(Status::Pass) => style.paint("1;32", "PASS"),
        Some(Status::Warn) => style.paint("1;33", "WARN"),
        Some(Status::Fail) => style.paint("1;31", "FAIL"),
        Some(Status::Missing) | None => style.paint("1", "NONE"),
    };
    let _ = writeln!(out, "\n{name}: {word}");
}

fn records(out: &mut String, s: &Section) {
    for r in &s.records {
        let _ = writeln!(out, "  record: {r}");
    }
}

fn findings(out: &mut String, s: &Section, style: Style) {
    for f in &s.findings {
        finding(out, f, style);
    }
}

fn finding(out: &mut String, f: &Finding, style: Style) {
    let (mark, word) = match f.severity {
        Severity::Error => ("!!!", style.paint("31", "error")),
        Severity::Warning => ("!!!", style.paint("33", "warning")),
        Severity::Info => ("===", "info".to_string()),
    };
    let d = &f.diagnosis;
    let _ = writeln!(out, "  {mark} {word}: {}", d.cause);
    if f.severity == Severity::Info {
        return;
    }
    let _ = writeln!(out, "      category {}, layer {}", d.category, layer(d));
    for step in &d.next_steps {
        let _ = writeln!(out, "      next: {step}");
    }
}

fn layer(d: &mxtrace_proto::model::Diagnosis) -> String {
    serde_json::to_value(d.layer)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn spf(out: &mut String, s: &SpfSection, style: Style) {
    header(out, "SPF", &s.section, style);
    records(out, &s.section);
    if let Some(tree) = &s.tree {
        let _ = writeln!(
            out,
            "  DNS lookups: {}/10, void lookups: {}/2, all: {}",
            s.dns_lookups,
            s.void_lookups,
            s.all.as_deref().unwrap_or("(none)")
        );
        node(out, tree, 1);
    }
    if let Some(ip) = &s.sending_ip {
        let _ = writeln!(out, "  result for {}: {}", ip.ip, ip.result);
    }
    findings(out, &s.section, style);
}

fn node(out: &mut String, n: &SpfNode, depth: usize) {
    let indent = "  ".repeat(depth + 1);
    let via = if n.via == "top" {
        String::new()
    } else {
        format!("{} ", n.via)
    };
    let err = n
        .error
        .as_deref()
        .map(|e| format!(" [{e}]"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{indent}{via}{} ({} lookups){err}",
        n.domain, n.lookups
    );
    for c in &n.children {
        node(out, c, depth + 1);
    }
}

fn dmarc(out: &mut String, s: &DmarcSection, style: Style) {
    header(out, "DMARC", &s.section, style);
    if let (Some(at), Some(src)) = (&s.found_at, &s.source) {
        let _ = writeln!(out, "  found at {at} ({})", src.replace('_', " "));
    }
    records(out, &s.section);
    if s.found_at.is_some() {
        let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_string());
        let _ = writeln!(
            out,
            "  p={} sp={} pct={} adkim={} aspf={} rua={} ruf={}",
            o(&s.p),
            o(&s.sp),
            s.pct.map_or("-".to_string(), |p| p.to_string()),
            o(&s.adkim),
            o(&s.aspf),
            list(&s.rua),
            list(&s.ruf)
        );
    }
    findings(out, &s.section, style);
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "-".to_string()
    } else {
        v.join(",")
    }
}

fn dkim(out: &mut String, s: &DkimSection, style: Style) {
    header(out, "DKIM", &s.section, style);
    for d in &s.selectors {
        // A result saved before chains were recorded has only `cname`.
        let hops = if d.chain.is_empty() {
            d.cname.as_slice()
        } else {
            d.chain.as_slice()
        };
        let cname: String = hops.iter().map(|c| format!(" -> {c}")).collect();
        let key = match (&d.key_type, d.key_bits) {
            (Some(t), Some(b)) => format!(", {t} {b} bits"),
            _ => String::new(),
        };
        let _ = writeln!(out, "  {}{cname}: {}{key}", d.name, d.state);
    }
    findings(out, &s.section, style);
}

fn mta_sts(out: &mut String, s: &MtaStsSection, style: Style) {
    header(out, "MTA-STS", &s.section, style);
    records(out, &s.section);
    if let Some(id) = &s.id {
        let _ = writeln!(out, "  id: {id}");
    }
    if let Some(p) = &s.policy {
        let from = match s.policy_source {
            Some(mxtrace_proto::model::posture::PolicySource::Cache) => " (from the cache)",
            _ => "",
        };
        let _ = writeln!(
            out,
            "  policy{from}: mode {}, max_age {}, mx {}",
            p.mode,
            p.max_age,
            list(&p.mx)
        );
    }
    findings(out, &s.section, style);
}

fn dane(out: &mut String, s: &DaneSection, style: Style) {
    header(out, "DANE", &s.section, style);
    if let Some(st) = s.mx_dnssec {
        let _ = writeln!(out, "  MX answer: DNSSEC {st}");
    }
    for h in &s.hosts {
        let Some(st) = h.dnssec else {
            let _ = writeln!(out, "  {}: no TLSA", h.name);
            continue;
        };
        let _ = writeln!(out, "  {}: DNSSEC {st}, {}", h.name, h.state);
        for t in &h.tlsa {
            let why = t
                .problem
                .as_deref()
                .map_or("usable".to_string(), |p| format!("unusable: {p}"));
            let _ = writeln!(out, "    TLSA {} ({}; {why})", t.record, t.meaning);
        }
    }
    findings(out, &s.section, style);
}

fn rdns(out: &mut String, s: &RdnsSection, style: Style) {
    header(out, "Reverse DNS", &s.section, style);
    for e in &s.addresses {
        let a = &e.address;
        let ptr = if a.ptr.is_empty() {
            "no PTR".to_string()
        } else {
            a.ptr.join(", ")
        };
        let fc = match a.fcrdns {
            Some(true) => "confirmed",
            Some(false) => "not confirmed",
            None => "unknown",
        };
        let _ = writeln!(out, "  {} {}: {ptr} (FCrDNS {fc})", e.of, a.ip);
    }
    findings(out, &s.section, style);
}

fn dnsbl(out: &mut String, s: &DnsblSection, style: Style) {
    header(out, "Blocklists", &s.section, style);
    let _ = writeln!(out, "  zones: {}", s.zones.join(", "));
    for r in &s.results {
        let codes = if r.codes.is_empty() {
            String::new()
        } else {
            format!(" ({})", r.codes.join(", "))
        };
        let _ = writeln!(out, "  {} {}: {}{codes}", r.ip, r.zone, r.state);
    }
    findings(out, &s.section, style);
}
