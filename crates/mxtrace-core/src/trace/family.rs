//! Per-family verdicts: an MX set with both IPv4 and IPv6 addresses is walked once per family,
//! as a sender with only that family would walk it, so that a broken IPv6 path is not hidden
//! by a working IPv4 one (or the reverse). Probes the main walk already made are reused; the
//! others go to `TraceHop::family_probes`. The hop's own verdict stays the main walk's; a
//! family that fails while the other passes is a warning on it.

use super::{
    last_answer, probe_options, step, trace_probe, HopPlan, Step, TraceError, TraceOptions,
};
use crate::probe;
use mxtrace_knowledge::is_eop_host;
use mxtrace_proto::model::{FamilyVerdict, Outcome, TraceHop, TraceProbe};
use std::net::IpAddr;

/// Exchange Online's rules for inbound IPv6, by what its MX host publishes. Source: Microsoft
/// Learn, "Add support for anonymous inbound email over IPv6 in Microsoft 365"
/// (learn.microsoft.com/microsoft-365/security/office-365-security/mail-flow-inbound-ipv6-support-about).
struct Ipv6Rule {
    /// The MX host is Exchange Online's and has AAAA records (the domain opted in).
    has_aaaa: bool,
    note: &'static str,
}

const EXO_IPV6_RULES: [Ipv6Rule; 2] = [
    Ipv6Rule {
        has_aaaa: true,
        note: "Exchange Online accepts anonymous mail over IPv6 for this domain (it opted in): a sender over IPv6 needs a PTR record for its address (else 450 4.7.25) and must pass SPF or DKIM (else 450 4.7.26); the 4xx sends it on to the IPv4 addresses",
    },
    Ipv6Rule {
        has_aaaa: false,
        note: "Exchange Online MX without AAAA: the domain has not opted in to inbound IPv6 (only domains that asked Microsoft for it get IPv6); a sender forcing IPv6 gets 550 5.2.1 \"does not accept email over IPv6\"",
    },
];

/// Family order in the output: IPv6 first, as dual-stack senders usually try it first.
const ORDER: [(bool, &str); 2] = [(true, "ipv6"), (false, "ipv4")];

/// Fills `hop.families` (and `hop.family_probes`) when the candidates span both families.
pub(super) async fn per_family(
    opts: &TraceOptions,
    plan: &HopPlan,
    hop: &mut TraceHop,
    candidates: &[(usize, IpAddr)],
) -> Result<(), TraceError> {
    let v6 = candidates.iter().filter(|(_, ip)| ip.is_ipv6()).count();
    if v6 == 0 || v6 == candidates.len() {
        return Ok(());
    }
    for (is_v6, name) in ORDER {
        let mine: Vec<(usize, IpAddr)> = candidates
            .iter()
            .copied()
            .filter(|(_, ip)| ip.is_ipv6() == is_v6)
            .collect();
        let decided = walk_family(opts, plan, hop, &mine).await?;
        let mut v = verdict(hop, name, &mine, decided);
        if is_v6 {
            v.notes = exo_notes(hop, &mine);
        }
        hop.families.push(v);
    }
    warn_on_split(hop);
    Ok(())
}

/// Where a probe of this family lives: the main walk's list or the family list.
#[derive(Clone, Copy)]
enum At {
    Walk(usize),
    Family(usize),
}

fn probe_at(hop: &TraceHop, at: At) -> Option<&TraceProbe> {
    match at {
        At::Walk(i) => hop.probes.get(i),
        At::Family(i) => hop.family_probes.get(i),
    }
}

/// The family's addresses in walk order until one decides; returns every probe looked at
/// and whether the last one decided.
async fn walk_family(
    opts: &TraceOptions,
    plan: &HopPlan,
    hop: &mut TraceHop,
    mine: &[(usize, IpAddr)],
) -> Result<(Vec<At>, bool), TraceError> {
    let mut seen = Vec::new();
    for &(i, ip) in mine {
        let Some(host) = hop.mx.get(i).map(|m| m.host.clone()) else {
            continue;
        };
        let text = ip.to_string();
        let done = hop.probes.iter().position(|p| p.ip == text && p.mx == host);
        let at = match done {
            Some(j) => At::Walk(j),
            None if opts.all => continue,
            None => {
                let o = probe_options(plan, &host, ip);
                let report = probe::probe(&o).await?;
                hop.family_probes.push(trace_probe(&o, report));
                At::Family(hop.family_probes.len() - 1)
            }
        };
        seen.push(at);
        if probe_at(hop, at).is_some_and(|p| step(&p.report) != Step::Next) {
            return Ok((seen, true));
        }
    }
    Ok((seen, false))
}

fn verdict(
    hop: &TraceHop,
    family: &str,
    mine: &[(usize, IpAddr)],
    (seen, decided): (Vec<At>, bool),
) -> FamilyVerdict {
    let addresses = mine.iter().map(|(_, ip)| ip.to_string()).collect();
    let last = seen.last().and_then(|&at| probe_at(hop, at));
    let at = |p: &TraceProbe| format!("{} [{}]", p.mx, p.ip);
    let (passed, outcome, summary) = match last {
        Some(p) if decided && p.report.verdict.passed => (
            true,
            Outcome::Ok,
            format!("accepted by {}: {}", at(p), last_answer(&p.report)),
        ),
        Some(p) if decided => (
            false,
            p.report.verdict.outcome,
            format!("rejected by {}: {}", at(p), p.report.verdict.summary),
        ),
        Some(p) => (
            false,
            p.report.verdict.outcome,
            format!(
                "no address accepted ({} tried). Last: {}: {}",
                seen.len(),
                at(p),
                p.report.verdict.summary
            ),
        ),
        None => (false, Outcome::Error, "not probed".to_string()),
    };
    FamilyVerdict {
        family: family.to_string(),
        addresses,
        passed,
        outcome,
        decided_by: last.filter(|_| decided).map(at),
        summary,
        notes: Vec::new(),
    }
}

/// The Exchange Online IPv6 rules that apply to the hop's Exchange Online MX hosts.
fn exo_notes(hop: &TraceHop, v6: &[(usize, IpAddr)]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, m) in hop.mx.iter().enumerate() {
        if !is_eop_host(&m.host) || m.addresses.is_empty() {
            continue;
        }
        let has_aaaa = v6.iter().any(|(j, _)| *j == i);
        for r in EXO_IPV6_RULES.iter().filter(|r| r.has_aaaa == has_aaaa) {
            let note = format!("{}: {}", m.host, r.note);
            if !out.contains(&note) {
                out.push(note);
            }
        }
    }
    out
}

/// One family failing while the other passes is what a sender of that family sees.
fn warn_on_split(hop: &mut TraceHop) {
    let failed: Vec<&FamilyVerdict> = hop.families.iter().filter(|f| !f.passed).collect();
    if failed.len() != 1 {
        return;
    }
    let warnings: Vec<String> = failed
        .iter()
        .map(|f| {
            format!(
                "{} fails while the other family passes: senders that use {} see this ({})",
                mxtrace_proto::model::family_label(&f.family),
                mxtrace_proto::model::family_label(&f.family),
                f.summary
            )
        })
        .collect();
    hop.verdict.warnings.extend(warnings);
}
