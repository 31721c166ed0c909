//! The path diagram of a trace: each hop goes domain -> MX hosts (preference) -> addresses
//! (family, PTR) -> the probe's outcome, linked to the probe. The stage where it stopped is
//! named in the box, so the colour is never the only signal.

use super::{json_name, outcome_class, pass_fail, probe_anchor, Esc};
use mxtrace_proto::model::path_label;
use mxtrace_proto::model::{AddressInfo, MxHost, MxSource, ProbeReport, TraceHop, TraceReport};
use std::fmt::Write;

pub fn diagram(out: &mut String, r: &TraceReport, id: &str) {
    out.push_str("<h2>Path</h2>\n");
    for h in &r.hops {
        hop(out, h, id);
    }
}

fn hop(out: &mut String, h: &TraceHop, id: &str) {
    let scenario = match h.scenario {
        Some(s) => format!("scenario {s}: {}", path_label(s, h.hop)),
        None => "scenario not known".to_string(),
    };
    let source = match h.mx_source {
        MxSource::Mx => "MX records",
        MxSource::Implicit => "no MX: implicit MX (RFC 5321 5.1)",
        MxSource::NullMx => "null MX: accepts no mail (RFC 7505)",
        MxSource::None => "no usable MX",
    };
    let _ = write!(
        out,
        "<div class=\"hop\"><div class=\"box\"><b>Hop {}</b><small>{}</small></div>{ARROW}\
         <div class=\"box\"><b class=\"mono\">{}</b><small>{source}, DNS {:.1} ms</small></div>",
        h.hop,
        Esc(&scenario),
        Esc(&h.domain),
        h.dns_elapsed_ms
    );
    if let Some(e) = &h.error {
        let _ = write!(
            out,
            "{ARROW}<div class=\"box fail\"><b>FAILED in DNS</b><small>{} {}: {}</small></div>",
            Esc(&e.query),
            e.reason.as_str(),
            Esc(&e.message)
        );
    }
    if !h.mx.is_empty() {
        let _ = write!(out, "{ARROW}<div class=\"col\">");
        for mx in &h.mx {
            mx_row(out, h, mx, id);
        }
        out.push_str("</div>");
    }
    let (class, word) = pass_fail(h.verdict.passed);
    let _ = writeln!(
        out,
        "</div>\n<p class=\"{class}\"><b>Hop {}: {word}</b> {}</p>",
        h.hop,
        Esc(&h.verdict.summary)
    );
}

const ARROW: &str = "<span class=\"arrow\" aria-hidden=\"true\">&rarr;</span>";

fn mx_row(out: &mut String, h: &TraceHop, mx: &MxHost, id: &str) {
    let flags: Vec<String> = mx.flags.iter().map(json_name).collect();
    let mut small = format!("preference {}", mx.preference);
    if !flags.is_empty() {
        let _ = write!(small, "; {}", flags.join(", "));
    }
    if let Some(t) = &mx.cname_target {
        let _ = write!(small, "; alias of {t}");
    }
    let _ = write!(
        out,
        "<div class=\"row\"><div class=\"box\"><b class=\"mono\">{}</b><small>{}</small></div>",
        Esc(&mx.host),
        Esc(&small)
    );
    if let Some(e) = &mx.error {
        let _ = write!(
            out,
            "{ARROW}<div class=\"box fail\"><b>no address</b><small>{} {}</small></div>",
            Esc(&e.query),
            e.reason.as_str()
        );
    }
    if !mx.addresses.is_empty() {
        let _ = write!(out, "{ARROW}<div class=\"col\">");
        for a in &mx.addresses {
            address_row(out, h, mx, a, id);
        }
        out.push_str("</div>");
    }
    out.push_str("</div>\n");
}

fn address_row(out: &mut String, h: &TraceHop, mx: &MxHost, a: &AddressInfo, id: &str) {
    let family = if a.ip.contains(':') { "IPv6" } else { "IPv4" };
    let ptr = if a.ptr.is_empty() {
        "no PTR".to_string()
    } else {
        let fcrdns = match a.fcrdns {
            Some(true) => " (forward-confirmed)",
            Some(false) => " (not forward-confirmed)",
            None => "",
        };
        format!("PTR {}{fcrdns}", a.ptr.join(", "))
    };
    let _ = write!(
        out,
        "<div class=\"row\"><div class=\"box\"><b class=\"mono\">{}</b><small>{family}; {}\
         </small></div>{ARROW}",
        Esc(&a.ip),
        Esc(&ptr)
    );
    let probe = h
        .probes
        .iter()
        .position(|p| p.mx == mx.host && p.ip == a.ip);
    match probe.and_then(|i| h.probes.get(i).map(|p| (i, &p.report))) {
        Some((i, report)) => outcome_box(out, report, &probe_anchor(id, h.hop, i)),
        None => out.push_str("<div class=\"box skip\"><b>not tried</b></div>"),
    }
    out.push_str("</div>\n");
}

/// The probe's outcome: PASS, or FAIL with the stage, the outcome and the category in words.
fn outcome_box(out: &mut String, r: &ProbeReport, anchor: &str) {
    let v = &r.verdict;
    let (class, head) = if v.passed {
        ("ok", "PASS".to_string())
    } else {
        let at = v
            .failed_stage
            .map(|s| format!(" at {s}"))
            .unwrap_or_default();
        (outcome_class(v.outcome), format!("FAIL{at}"))
    };
    let category = v
        .failed_stage
        .and_then(|fs| r.stages.iter().rev().find(|s| s.stage == fs))
        .and_then(|s| s.diagnosis.as_ref())
        .map(|d| format!(", {}", d.category.as_str()))
        .unwrap_or_default();
    let _ = write!(
        out,
        "<a class=\"box {class}\" href=\"#{}\"><b>{head}</b><small>{}{category}</small></a>",
        Esc(anchor),
        v.outcome.as_str()
    );
}
