//! MTA-STS applied to the walk (RFC 8461 4 and 5). With a policy in `enforce` mode a
//! compliant sender delivers only to MX hosts matching its `mx:` patterns, and only over TLS
//! whose certificate verifies (RFC 8461 4.2); the walk does the same, and a host it cannot
//! use for that reason is an "MTA-STS failure" naming the policy. In `testing` mode the walk
//! is unchanged and what enforce would refuse is reported (RFC 8461 5: "testing" senders
//! deliver and report via TLS-RPT).

use super::{fail_verdict, HopPlan, TraceOptions, Walking};
use crate::mta_sts::{matching_pattern, sender_policy, SenderPolicy};
use mxtrace_net::dns::Dns;
use mxtrace_proto::model::posture::PolicySource;
use mxtrace_proto::model::{MxSource, Outcome, ProbeReport, Stage, TraceHop, TraceMtaSts};

const ENFORCE: &str = "enforce";
const TESTING: &str = "testing";

/// Fetches (or takes from the cache) the domain's policy and narrows the walk under
/// `enforce`. Returns the decided hop when no MX host matches (the MTA-STS failure).
pub(super) async fn apply_mta_sts(
    dns: &Dns,
    opts: &TraceOptions,
    plan: &mut HopPlan,
    w: &mut Walking,
) -> Option<TraceHop> {
    if w.hop.mx_source != MxSource::Mx {
        return None;
    }
    let sp = match sender_policy(dns, &plan.domain, &opts.mta_sts).await {
        Ok(Some(p)) => p,
        Ok(None) => return None,
        Err(e) => {
            let why = e.describe(opts.probe.naming);
            w.warnings.push(format!(
                "MTA-STS: the domain publishes a policy record, but no valid policy was fetched ({why}); delivering as without MTA-STS (RFC 8461 5)"
            ));
            return None;
        }
    };
    w.warnings
        .extend(sp.notes.iter().map(|n| format!("MTA-STS: {n}")));
    let unmatched: Vec<String> = w
        .hop
        .mx
        .iter()
        .filter(|m| matching_pattern(&sp.policy.mx, &m.host).is_none())
        .map(|m| m.host.clone())
        .collect();
    let summary = record(&sp, unmatched.clone());
    let policy = summary.describe();
    w.hop.mta_sts = Some(summary);
    if sp.policy.mode != ENFORCE {
        w.warnings.push(format!(
            "MTA-STS {policy} in {} mode: not enforced",
            sp.policy.mode
        ));
        if sp.policy.mode == TESTING && !unmatched.is_empty() {
            w.warnings.push(format!(
                "MTA-STS testing: MX {} not matched by the policy: under enforce compliant senders would not use it (they report it via TLS-RPT)",
                unmatched.join(", ")
            ));
        }
        return None;
    }
    enforce(plan, w, &unmatched, &policy)
}

/// Enforce mode: unmatched hosts out, STARTTLS required, strict verification.
fn enforce(
    plan: &mut HopPlan,
    w: &mut Walking,
    unmatched: &[String],
    policy: &str,
) -> Option<TraceHop> {
    w.hop.mx.retain(|m| !unmatched.contains(&m.host));
    plan.probe.starttls = mxtrace_proto::spec::StartTls::Require;
    plan.probe.tls.verify = mxtrace_net::tls::VerifyMode::Strict;
    if !unmatched.is_empty() {
        w.warnings.push(format!(
            "MTA-STS enforce: MX {} not matched by the {policy}: not used",
            unmatched.join(", ")
        ));
    }
    w.warnings
        .push("MTA-STS enforce: STARTTLS required and the certificate must verify".to_string());
    if !w.hop.mx.is_empty() {
        return None;
    }
    let mut hop = w.hop.clone();
    hop.verdict = fail_verdict(
        Outcome::Error,
        format!(
            "MTA-STS failure: no MX host matches the {policy}; compliant senders do not deliver"
        ),
        std::mem::take(&mut w.warnings),
    );
    Some(hop)
}

fn record(sp: &SenderPolicy, unmatched_mx: Vec<String>) -> TraceMtaSts {
    TraceMtaSts {
        mode: sp.policy.mode.clone(),
        mx: sp.policy.mx.clone(),
        max_age: sp.policy.max_age,
        id: sp.id.clone(),
        source: if sp.cached.is_some() {
            PolicySource::Cache
        } else {
            PolicySource::Fetched
        },
        fetched_at: sp.cached.as_ref().map(|c| c.fetched_at_text()),
        unmatched_mx,
    }
}

/// After the probes: under enforce, a probe that failed for want of verified TLS is an
/// MTA-STS failure (its own explanation, and the hop's summary says so when the hop failed);
/// under testing, TLS that enforce would refuse is a warning.
pub(super) fn explain_failures(hop: &mut TraceHop) {
    let Some(p) = hop.mta_sts.clone() else {
        return;
    };
    let policy = p.describe();
    let mut testing = Vec::new();
    for probe in hop.probes.iter_mut().chain(hop.family_probes.iter_mut()) {
        let pattern = matching_pattern(&p.mx, &probe.mx)
            .unwrap_or("-")
            .to_string();
        let Some(why) = tls_shortfall(&probe.report) else {
            continue;
        };
        let at = format!("{} [{}]", probe.mx, probe.ip);
        if p.mode == ENFORCE {
            let cause = format!("MTA-STS failure: {at} matched mx pattern {pattern} of the {policy}, which requires TLS with a verified certificate (RFC 8461 4.2): {why}; compliant senders do not deliver to it");
            mark_probe(&mut probe.report, &cause);
        } else if p.mode == TESTING {
            testing.push(format!("MTA-STS testing: {at}: {why}; under enforce compliant senders would not deliver to it (RFC 8461 4.2)"));
        }
    }
    hop.verdict.warnings.extend(testing);
    let tls_failed = hop.probes.iter().any(|p| is_tls_stage(&p.report));
    if p.mode == ENFORCE && !hop.verdict.passed && tls_failed {
        hop.verdict.summary = format!("MTA-STS failure ({policy}): {}", hop.verdict.summary);
    }
}

/// Why TLS falls short of RFC 8461 4.2: not started, failed, or the certificate not verified.
fn tls_shortfall(r: &ProbeReport) -> Option<String> {
    if is_tls_stage(r) {
        return Some(r.verdict.summary.clone());
    }
    match &r.tls {
        Some(t) if !t.verified => Some(format!(
            "certificate not verified: {}",
            t.verify_error.as_deref().unwrap_or("unknown reason")
        )),
        Some(_) => None,
        // A session that got as far as the envelope without TLS.
        None if r.stages.iter().any(|s| s.stage == Stage::MailFrom) => {
            Some("the session was not encrypted".to_string())
        }
        None => None,
    }
}

fn is_tls_stage(r: &ProbeReport) -> bool {
    matches!(
        r.verdict.failed_stage,
        Some(Stage::Starttls | Stage::TlsHandshake)
    )
}

/// The failed TLS stage's diagnosis and the probe's summary name the policy.
fn mark_probe(r: &mut ProbeReport, cause: &str) {
    r.verdict.summary = cause.to_string();
    let failed = r.verdict.failed_stage;
    let stage = r.stages.iter_mut().find(|s| Some(s.stage) == failed);
    if let Some(d) = stage.and_then(|s| s.diagnosis.as_mut()) {
        d.cause = cause.to_string();
        d.next_steps.insert(
            0,
            "Give the MX host a certificate that is valid for its name and chains to a public root, or (while fixing it) publish the policy in testing mode with a new id.".to_string(),
        );
    }
}
