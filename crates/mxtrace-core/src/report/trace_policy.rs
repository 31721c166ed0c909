//! Human lines for what a trace hop applied beyond the MX walk: its MTA-STS policy and its
//! per-family (IPv6 / IPv4) verdicts.

use super::human::{pass_fail, Style};
use crate::model::TraceHop;
use crate::trace::{describe_mta_sts, family_label};
use std::fmt::Write;

pub fn render(out: &mut String, hop: &TraceHop, style: Style) {
    if let Some(p) = &hop.mta_sts {
        let fetched = p
            .fetched_at
            .as_deref()
            .map(|t| format!(", fetched {t}"))
            .unwrap_or_default();
        let _ = writeln!(out, "MTA-STS: {}{fetched}", describe_mta_sts(p));
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
