//! A hop's round trip (`[hop.roundtrip]`): run after the hop's probes, then its
//! `roundtrip.KEY` expectations checked against what it saw. A round trip that could not
//! start (a mailbox login refused, no token) is a result, not a usage error: every
//! expectation about it fails, saying why.

use super::{result, ExpectationResult, HopRoundtrip};
use crate::roundtrip::RoundtripOptions;
use crate::scenario_file::RoundtripExpect;
use mxtrace_proto::model::posture::Severity;
use mxtrace_proto::model::roundtrip::{DeliveryStatus, RoundtripReport};

pub(super) async fn run(o: &RoundtripOptions) -> HopRoundtrip {
    match crate::roundtrip::roundtrip(o).await {
        Ok(r) => HopRoundtrip {
            report: Some(Box::new(r)),
            error: None,
        },
        Err(e) => HopRoundtrip {
            report: None,
            error: Some(e.to_string()),
        },
    }
}

/// One result per expectation set, in the order of `RoundtripExpect`'s fields.
pub(super) fn expectations(
    e: &RoundtripExpect,
    rt: &HopRoundtrip,
    ex: &mut Vec<ExpectationResult>,
) {
    for (key, expected, description) in wanted(e) {
        let id = format!("roundtrip.{key}");
        let x = match (&rt.report, &rt.error) {
            (Some(r), _) => {
                let (passed, observed) = observe(e, key, r);
                let mut x = result(&id, description, passed, expected, observed);
                if !x.passed {
                    x.cause = cause(r);
                }
                x
            }
            (None, error) => {
                let why = error.as_deref().unwrap_or("the round trip did not run");
                let first = why.lines().next().unwrap_or(why);
                let observed = format!("not run: {first}");
                let mut x = result(&id, description, false, expected, observed);
                // The lines under the error explain it (a refused or missing token).
                let rest: Vec<&str> = why.lines().skip(1).map(str::trim).collect();
                x.cause = (!rest.is_empty()).then(|| rest.join(" "));
                x
            }
        };
        ex.push(x);
    }
}

/// The expectations set: (key, expected, description).
fn wanted(e: &RoundtripExpect) -> Vec<(&'static str, String, String)> {
    let words = |yes: bool, a: &str, b: &str| if yes { a } else { b }.to_string();
    let within = e.within.map(humantime::format_duration);
    [
        e.passes.map(|w| {
            let d = words(w, "round trip passes", "round trip fails");
            ("passes", w.to_string(), d)
        }),
        e.delivered.map(|w| {
            let d = words(
                w,
                "message delivered to the mailbox",
                "message not delivered",
            );
            ("delivered", w.to_string(), d)
        }),
        e.folder.map(|f| {
            let d = format!("message delivered to {}", f.as_str());
            ("folder", f.as_str().to_string(), d)
        }),
        within.map(|w| {
            (
                "within",
                format!("<= {w}"),
                format!("message delivered within {w}"),
            )
        }),
        e.scenario.map(|s| {
            (
                "scenario",
                s.to_string(),
                format!("path shows scenario {s}"),
            )
        }),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Whether the round trip `r` meets the expectation `key`, and what it showed.
fn observe(e: &RoundtripExpect, key: &str, r: &RoundtripReport) -> (bool, String) {
    let d = &r.delivery;
    let delivered = d.status == DeliveryStatus::Delivered;
    let summary = r.verdict.summary.clone();
    match key {
        "passes" => (e.passes == Some(r.verdict.passed), summary),
        "delivered" => (e.delivered == Some(delivered), summary),
        "folder" => (delivered && d.folder == e.folder, summary),
        "within" => {
            let budget = e.within.map_or(0.0, |w| w.as_secs_f64());
            match d.seconds.filter(|_| delivered) {
                Some(s) => (s <= budget, format!("{s:.1} s ({summary})")),
                None => (false, summary),
            }
        }
        _ => match &r.path {
            Some(p) => {
                let zones: Vec<&str> = p.zones.iter().map(|z| z.label()).collect();
                let shown = p
                    .scenario
                    .map_or("no scenario".to_string(), |s| s.to_string());
                (
                    p.scenario.is_some() && p.scenario == e.scenario,
                    format!("{shown} (zones: {})", zones.join(" -> ")),
                )
            }
            None => (false, format!("no delivered copy to read: {summary}")),
        },
    }
}

/// Why a round trip did not meet an expectation: its first error finding.
fn cause(r: &RoundtripReport) -> Option<String> {
    r.findings
        .iter()
        .find(|f| f.severity == Severity::Error)
        .map(|f| format!("{}: {}", f.code, f.message))
}
