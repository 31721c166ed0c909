//! Human lines for what a trace hop applied beyond the MX walk: its MTA-STS policy and its
//! per-family (IPv6 / IPv4) verdicts.

use crate::style::{pass_fail, Style};
use mxtrace_proto::model::family_label;
use mxtrace_proto::model::TraceHop;
use std::fmt::Write;

pub fn render(out: &mut String, hop: &TraceHop, style: Style) {
    if let Some(p) = &hop.mta_sts {
        let fetched = p
            .fetched_at
            .as_deref()
            .map(|t| format!(", fetched {t}"))
            .unwrap_or_default();
        let _ = writeln!(out, "MTA-STS: {}{fetched}", p.describe());
    }
    for f in &hop.families {
        let _ = writeln!(
            out,
            "{}: {} {}",
            family_label(&f.family),
            pass_fail(f.passed, style),
            f.summary
        );
        for n in &f.notes {
            let _ = writeln!(out, "      note: {n}");
        }
    }
}
