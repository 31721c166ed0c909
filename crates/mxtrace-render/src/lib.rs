//! Renderers: the same report as a transcript for people or as JSON for tools.

// Input from the network, files and the command line is hostile: outside tests, nothing may
// panic on it. Enforced here rather than by grep.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::string_slice,
        clippy::panic
    )
)]

pub mod demo;
pub mod explain;
pub mod fleet;
pub mod headers;
pub mod html;
pub mod human;
pub mod json;
pub mod junit;
pub mod metrics;
pub mod nagios;
pub mod posture;
pub mod roundtrip;
pub mod style;
pub mod sweep;
pub mod trace_policy;
pub mod watch;

/// Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org).
pub fn use_color() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

use mxtrace_proto::model::{Outcome, ProbeReport, Stage, StageRecord};

/// The last stage the check was about: RSET and QUIT come after it.
pub(crate) fn last_checked(r: &ProbeReport) -> Option<&StageRecord> {
    r.stages
        .iter()
        .rev()
        .find(|s| !matches!(s.stage, Stage::Quit | Stage::Rset))
}

/// Index of the failure that decided a failed verdict: the first failed record of its stage.
/// None for a pass, and for a session that ended early with every stage answered.
pub(crate) fn decisive(r: &ProbeReport) -> Option<usize> {
    if r.verdict.passed {
        return None;
    }
    r.stages
        .iter()
        .position(|s| Some(s.stage) == r.verdict.failed_stage && s.outcome != Outcome::Ok)
}

/// What a stage got: `550 5.1.1`, the error kind (`refused`), or `ok`.
pub(crate) fn answer(s: &StageRecord) -> String {
    match (&s.reply, &s.error) {
        (_, Some(e)) => e.kind.as_str().to_string(),
        (Some(rep), None) => match rep.enhanced {
            Some(e) => format!("{} {e}", rep.code),
            None => rep.code.to_string(),
        },
        (None, None) => "ok".to_string(),
    }
}
