//! `run FILE.toml`: the hops of a scenario file, in order, each a `trace` (domain) or `probe`s
//! (hosts), then every expectation checked against what was observed. Two expectations need a
//! session of their own, run only when asked: the open-relay check (RCPT to an outside address
//! without AUTH must be refused) and "STARTTLS required" (a plaintext session must be refused).
//! Neither ever sends DATA.

use crate::probe;
use crate::probe::ProbeOptions;
use crate::scenario_file::{
    cert_name_matches, glob_match, Expectations, HopJob, HopSpec, HopTarget, LatencyKey, Prepared,
    ReplyExpect, ScenarioFile, StartTlsExpect,
};
use crate::trace::TraceError;
use mxtrace_knowledge::Category;
use mxtrace_net::dns::{Dns, ResolverChoice};
use mxtrace_proto::model::JobReport;
use mxtrace_proto::model::{Outcome, ProbeReport, Stage, StageRecord, TraceReport};
use mxtrace_proto::spec::{Field, Naming, StartTls, ValueError};
use std::net::IpAddr;
use std::time::SystemTime;
use tokio::time::Instant;

mod roundtrip;

pub use mxtrace_proto::model::{
    CheckReport, ExpectationResult, HopData, HopResult, HopRoundtrip, RunReport, RunSummary,
    RunVerdict,
};

/// A hop that could not run as configured (exit 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    #[error("hop {hop:?}: {}", .source.describe(Naming::Key))]
    Hop {
        hop: String,
        #[source]
        source: TraceError,
    },
    #[error("hop {hop:?}: {} {source}", Field::Resolver.key())]
    Resolver {
        hop: String,
        #[source]
        source: ValueError,
    },
}

/// Runs every hop in order. A hop's configuration error (a TLS file that does not load) is
/// a usage error; everything the network does is a result.
pub async fn run(file: &ScenarioFile, prepared: Vec<Prepared>) -> Result<RunReport, RunError> {
    let t0 = Instant::now();
    let started_at = SystemTime::now();
    let mut hops = Vec::new();
    for (spec, prep) in file.hops.iter().zip(prepared) {
        hops.push(run_hop(spec, prep).await?);
    }
    let total: usize = hops.iter().map(|h| h.expectations.len()).sum();
    let passed: usize = hops
        .iter()
        .map(|h| h.expectations.iter().filter(|e| e.passed).count())
        .sum();
    let failed = total - passed;
    let verdict = RunVerdict {
        passed: failed == 0,
        summary: if failed == 0 {
            format!("every expectation met ({total})")
        } else {
            let names: Vec<String> = hops
                .iter()
                .filter(|h| !h.passed)
                .map(|h| format!("{:?}", h.name))
                .collect();
            format!(
                "{failed} of {total} expectations not met (hop {})",
                names.join(", ")
            )
        },
    };
    Ok(RunReport {
        file: file.path.display().to_string(),
        name: file.name.clone(),
        description: file.description.clone(),
        scenario: file.scenario,
        tenant: file.tenant.clone(),
        hops,
        summary: RunSummary {
            total,
            passed,
            failed,
        },
        verdict,
        started_at: humantime::format_rfc3339_millis(started_at).to_string(),
        elapsed_ms: ms(t0),
    })
}

/// One probe whose result expectations are checked: its label (null when the hop has one
/// deciding probe), the report (None when DNS decided and nothing was probed), and the
/// options to reach the same address again for a check.
struct Subject {
    label: Option<String>,
    report: Option<ProbeReport>,
    again: Option<ProbeOptions>,
}

async fn run_hop(spec: &HopSpec, prep: Prepared) -> Result<HopResult, RunError> {
    let hop_err = |source: TraceError| RunError::Hop {
        hop: spec.name.clone(),
        source,
    };
    let t0 = Instant::now();
    let mut ex = Vec::new();
    let (kind, target, data, subjects) = match prep.job {
        HopJob::Trace(opts) => {
            let report = crate::trace::trace(&opts).await.map_err(hop_err)?;
            trace_expectations(&spec.expect, opts.all, &report, &mut ex);
            let subjects = trace_subjects(Some(&opts.probe), &report, opts.all);
            (
                "trace",
                opts.domain.clone(),
                HopData::Trace(Box::new(report)),
                subjects,
            )
        }
        HopJob::Hosts(list) => {
            let (target, data, subjects) = probe_hosts(spec, list).await?;
            ("probe", target, data, subjects)
        }
    };
    let mut checks = Vec::new();
    for s in &subjects {
        let hosts = matches!(spec.target, HopTarget::Hosts(_));
        subject_expectations(&spec.expect, hosts, s, &mut ex);
        extra_checks(spec, s, &mut checks, &mut ex).await;
    }
    let rt = match prep.roundtrip {
        Some(o) => Some(roundtrip::run(&o).await),
        None => None,
    };
    if let Some(rt) = &rt {
        roundtrip::expectations(&spec.expect.roundtrip, rt, &mut ex);
    }
    let expectations: Vec<ExpectationResult> = ex
        .into_iter()
        .map(|mut e| {
            // `SUBJECT/KEY` -> subject; ids become `HOP/SUBJECT/KEY`.
            e.subject = e.id.rsplit_once('/').map(|(s, _)| s.to_string());
            e.id = format!("{}/{}", spec.name, e.id);
            e
        })
        .collect();
    let passed = expectations.iter().all(|e| e.passed);
    Ok(HopResult {
        name: spec.name.clone(),
        hop: spec.hop,
        scenario: spec.ctx.scenario,
        path: spec
            .ctx
            .scenario
            .map(|s| mxtrace_proto::model::path_label(s, spec.hop).to_string()),
        kind: kind.to_string(),
        target,
        result: data,
        checks,
        roundtrip: rt,
        expectations,
        passed,
        elapsed_ms: ms(t0),
    })
}

/// A hosts hop: each host probed in order, its name looked up with the hop's resolver when it
/// names one.
async fn probe_hosts(
    spec: &HopSpec,
    list: Vec<ProbeOptions>,
) -> Result<(String, HopData, Vec<Subject>), RunError> {
    let hop_err = |source: TraceError| RunError::Hop {
        hop: spec.name.clone(),
        source,
    };
    let dns = match &spec.session.resolver {
        None => None,
        Some(r) => {
            let choice = ResolverChoice::parse(Some(r)).map_err(|source| RunError::Resolver {
                hop: spec.name.clone(),
                source,
            })?;
            Some(Dns::new(choice, spec.session.dns_timeout()).map_err(|e| hop_err(e.into()))?)
        }
    };
    let mut reports = Vec::new();
    let mut subjects = Vec::new();
    let mut shown = Vec::new();
    for mut o in list {
        let label = format!("{}:{}", o.host, o.port);
        shown.push(label.clone());
        // A named resolver answers for the hosts too (a lab's names, split DNS);
        // without one, the system's lookup as `probe` does.
        let mut failed = None;
        if let (Some(dns), Err(_)) = (&dns, o.host.parse::<IpAddr>()) {
            match crate::trace::host_addresses(dns, &o, &o.host).await {
                Ok(a) if !a.is_empty() => o.addrs = Some(a),
                Ok(_) => failed = Some(format!("{} has no address", o.host)),
                Err(f) => failed = Some(format!("{} ({})", f.message, f.query)),
            }
        }
        let report = match failed {
            Some(msg) => probe::unresolved(&o, msg),
            None => probe::probe(&o).await.map_err(|e| hop_err(e.into()))?,
        };
        let again = report.target.ip.as_ref().and_then(|ip| {
            let mut a = o.clone();
            a.addrs = Some(vec![ip.parse().ok()?]);
            Some(a)
        });
        reports.push(report.clone());
        subjects.push(Subject {
            label: Some(label),
            report: Some(report),
            again,
        });
    }
    Ok((shown.join(", "), HopData::Probes(reports), subjects))
}

/// The probes a trace's expectations look at: the one that decided (else the last tried), or
/// with `all` every one.
fn trace_subjects(template: Option<&ProbeOptions>, r: &TraceReport, all: bool) -> Vec<Subject> {
    let Some(hop) = r.hops.first() else {
        return Vec::new();
    };
    let again = |mx: &str, ip: &str| {
        let mut o = template?.clone();
        o.host = mx.to_string();
        o.addrs = Some(vec![ip.parse().ok()?]);
        Some(o)
    };
    if all && !hop.probes.is_empty() {
        return hop
            .probes
            .iter()
            .map(|p| Subject {
                label: Some(format!("{} {}", p.mx, p.ip)),
                report: Some(p.report.clone()),
                again: again(&p.mx, &p.ip),
            })
            .collect();
    }
    let p = hop
        .decided_by
        .and_then(|i| hop.probes.get(i))
        .or(hop.probes.last());
    vec![Subject {
        label: None,
        report: p.map(|p| p.report.clone()),
        again: p.and_then(|p| again(&p.mx, &p.ip)),
    }]
}

fn result(
    id: &str,
    description: String,
    passed: bool,
    expected: String,
    observed: String,
) -> ExpectationResult {
    ExpectationResult {
        id: id.to_string(),
        subject: None,
        description,
        passed,
        expected,
        observed,
        cause: None,
    }
}

/// Expectations about the whole walk: its verdict, reachability, the MX names, DNS time.
fn trace_expectations(
    e: &Expectations,
    all: bool,
    r: &TraceReport,
    ex: &mut Vec<ExpectationResult>,
) {
    let hop = r.hops.first();
    if let Some(want) = e.passes {
        let mut x = result(
            "passes",
            if want { "passes" } else { "fails" }.to_string(),
            r.verdict.passed == want,
            want.to_string(),
            r.verdict.summary.clone(),
        );
        if !x.passed {
            x.cause = hop.and_then(hop_cause);
        }
        ex.push(x);
    }
    if let Some(pattern) = &e.mx_matches {
        ex.push(mx_matches(pattern, r));
    }
    if let Some(want) = e.reachable {
        ex.push(walk_reachable(want, all, r));
    }
    for (key, budget) in &e.latency {
        if *key != LatencyKey::Dns {
            continue;
        }
        let took = hop.map(|h| h.dns_elapsed_ms).unwrap_or(0.0);
        ex.push(latency_result(*key, *budget, Some(took), String::new()));
    }
}

/// Every MX host of the first hop matches the pattern.
fn mx_matches(pattern: &str, r: &TraceReport) -> ExpectationResult {
    let hosts: Vec<String> = r
        .hops
        .first()
        .map(|h| h.mx.iter().map(|m| m.host.clone()).collect())
        .unwrap_or_default();
    let ok = !hosts.is_empty() && hosts.iter().all(|h| glob_match(pattern, h));
    let observed = if hosts.is_empty() {
        format!("no MX host: {}", r.verdict.summary)
    } else {
        hosts.join(", ")
    };
    result(
        "mx_matches",
        format!("MX matches {pattern}"),
        ok,
        pattern.to_string(),
        observed,
    )
}

/// As a sender sees it: one reachable MX is enough; with `all`, every address.
fn walk_reachable(want: bool, all: bool, r: &TraceReport) -> ExpectationResult {
    let probes: Vec<&ProbeReport> = r
        .hops
        .first()
        .map(|h| h.probes.iter().map(|p| &p.report).collect())
        .unwrap_or_default();
    let connected: Vec<&ProbeReport> = probes.iter().copied().filter(|p| connected(p)).collect();
    let reachable = if all {
        !probes.is_empty() && connected.len() == probes.len()
    } else {
        !connected.is_empty()
    };
    let observed = if probes.is_empty() {
        format!("nothing probed: {}", r.verdict.summary)
    } else {
        format!(
            "{} of {} address(es) connected{}",
            connected.len(),
            probes.len(),
            connected
                .first()
                .and_then(|p| p.target.ip.as_ref())
                .map(|ip| format!(", first {ip}"))
                .unwrap_or_default()
        )
    };
    result(
        "reachable",
        if want { "reachable" } else { "not reachable" }.to_string(),
        reachable == want,
        want.to_string(),
        observed,
    )
}

fn hop_cause(h: &mxtrace_proto::model::TraceHop) -> Option<String> {
    if let Some(e) = &h.error {
        return e.diagnosis.as_ref().map(|d| d.cause.clone());
    }
    let p = h
        .decided_by
        .and_then(|i| h.probes.get(i))
        .or(h.probes.last())?;
    failed_cause(&p.report)
}

fn failed_cause(r: &ProbeReport) -> Option<String> {
    let stage = r.verdict.failed_stage?;
    r.stages
        .iter()
        .find(|s| s.stage == stage && s.outcome != Outcome::Ok)
        .and_then(|s| s.diagnosis.as_ref())
        .map(|d| d.cause.clone())
}

fn connected(r: &ProbeReport) -> bool {
    r.stages
        .iter()
        .any(|s| s.stage == Stage::Connect && s.outcome == Outcome::Ok)
}

fn keyed(label: &Option<String>, key: &str) -> String {
    match label {
        Some(l) => format!("{l}/{key}"),
        None => key.to_string(),
    }
}

/// Expectations about one probe; with no probe (DNS decided the hop) each fails with why.
/// `passes` and `reachable` are the probe's only for a hosts hop (`hosts`).
fn subject_expectations(
    e: &Expectations,
    hosts: bool,
    s: &Subject,
    ex: &mut Vec<ExpectationResult>,
) {
    let id = |k: &str| keyed(&s.label, k);
    let r = s.report.as_ref();
    if hosts {
        host_expectations(e, r, &id, ex);
    }
    tls_expectations(e, r, &id, ex);
    certificate_expectations(e, r, &id, ex);
    reply_expectations(e, r, &id, ex);
}

/// The expectations `e` checked against a finished probe or trace, as `run` checks a hop
/// (ids `[SUBJECT/]KEY`, without a hop name; `all` as the trace was run). The two that need
/// a session of their own (`starttls = "required"`, `open_relay`) are not checked here.
/// Against a probe, the walk's own keys (`mx_matches`, `latency.dns`) are not met.
pub fn evaluate(e: &Expectations, all: bool, report: &JobReport) -> Vec<ExpectationResult> {
    let mut ex = Vec::new();
    let subjects = match report {
        JobReport::Trace(t) => {
            trace_expectations(e, all, t, &mut ex);
            trace_subjects(None, t, all)
        }
        JobReport::Probe(p) => {
            let walk_keys = e.mx_matches.iter().map(|_| "mx_matches".to_string()).chain(
                e.latency
                    .iter()
                    .filter(|(k, _)| *k == LatencyKey::Dns)
                    .map(|(k, _)| format!("latency.{}", k.as_str())),
            );
            for key in walk_keys {
                let observed = "not a trace: the target was probed".to_string();
                ex.push(result(
                    &key,
                    key.clone(),
                    false,
                    "a domain".into(),
                    observed,
                ));
            }
            vec![Subject {
                label: None,
                report: Some((**p).clone()),
                again: None,
            }]
        }
    };
    let hosts = matches!(report, JobReport::Probe(_));
    for s in &subjects {
        subject_expectations(e, hosts, s, &mut ex);
    }
    for x in &mut ex {
        x.subject = x.id.rsplit_once('/').map(|(s, _)| s.to_string());
    }
    ex
}

fn unprobed() -> String {
    "not probed: DNS decided the hop".to_string()
}

/// `passes` and `reachable` of one host (a domain hop checks them for the whole walk).
fn host_expectations(
    e: &Expectations,
    r: Option<&ProbeReport>,
    id: &dyn Fn(&str) -> String,
    ex: &mut Vec<ExpectationResult>,
) {
    if let Some(want) = e.passes {
        let (ok, observed) = match r {
            Some(r) => (r.verdict.passed == want, r.verdict.summary.clone()),
            None => (false, unprobed()),
        };
        let mut x = result(
            &id("passes"),
            if want { "passes" } else { "fails" }.to_string(),
            ok,
            want.to_string(),
            observed,
        );
        if !ok {
            x.cause = r.and_then(failed_cause);
        }
        ex.push(x);
    }
    if let Some(want) = e.reachable {
        let c = r.and_then(|r| r.stages.iter().find(|s| s.stage == Stage::Connect));
        let ok = r.is_some_and(connected);
        let observed = match (r, c) {
            (Some(r), Some(c)) if ok => format!(
                "connected to {} in {:.1} ms",
                r.target.ip.as_deref().unwrap_or("?"),
                c.elapsed_ms
            ),
            (_, Some(c)) => format!("not connected: {}", describe(c)),
            _ => "not connected".to_string(),
        };
        let mut x = result(
            &id("reachable"),
            if want { "reachable" } else { "not reachable" }.to_string(),
            ok == want,
            want.to_string(),
            observed,
        );
        if !x.passed && want {
            x.cause = c
                .and_then(|c| c.diagnosis.as_ref())
                .map(|d| d.cause.clone());
        }
        ex.push(x);
    }
}

fn tls_expectations(
    e: &Expectations,
    r: Option<&ProbeReport>,
    id: &dyn Fn(&str) -> String,
    ex: &mut Vec<ExpectationResult>,
) {
    if let Some(want) = e.starttls.filter(|w| *w != StartTlsExpect::Required) {
        ex.push(match r {
            Some(r) => starttls_result(&id("starttls"), want, r),
            None => result(
                &id("starttls"),
                starttls_description(want).to_string(),
                false,
                want.as_str().to_string(),
                unprobed(),
            ),
        });
    }
    if let Some(want) = e.tls_verified {
        let (ok, observed) = match r.map(|r| &r.tls) {
            None => (false, unprobed()),
            Some(None) => (!want, "no TLS session".to_string()),
            Some(Some(t)) if t.verified => (want, "verified".to_string()),
            Some(Some(t)) => (
                !want,
                format!(
                    "not verified: {}",
                    t.verify_error.as_deref().unwrap_or("unknown reason")
                ),
            ),
        };
        ex.push(result(
            &id("tls_verified"),
            if want {
                "certificate verifies"
            } else {
                "certificate does not verify"
            }
            .to_string(),
            ok,
            want.to_string(),
            observed,
        ));
    }
}

fn certificate_expectations(
    e: &Expectations,
    r: Option<&ProbeReport>,
    id: &dyn Fn(&str) -> String,
    ex: &mut Vec<ExpectationResult>,
) {
    let leaf = r.map(|r| r.tls.as_ref().and_then(|t| t.chain.first()));
    if let Some(name) = &e.certificate_name {
        let (ok, observed) = match leaf {
            None => (false, unprobed()),
            Some(None) => (false, "no certificate (no TLS session)".to_string()),
            Some(Some(c)) => {
                let names: Vec<&str> = if c.sans.is_empty() {
                    vec![c.subject.as_str()]
                } else {
                    c.sans.iter().map(String::as_str).collect()
                };
                (
                    c.sans.iter().any(|s| cert_name_matches(s, name)),
                    format!("names: {}", names.join(", ")),
                )
            }
        };
        ex.push(result(
            &id("certificate_name"),
            format!("certificate covers {name}"),
            ok,
            name.clone(),
            observed,
        ));
    }
    if let Some(days) = e.certificate_min_days {
        let (ok, observed) = match leaf {
            None => (false, unprobed()),
            Some(None) => (false, "no certificate (no TLS session)".to_string()),
            Some(Some(c)) => (
                c.days_left >= i64::from(days),
                format!("{} days left (not after {})", c.days_left, c.not_after),
            ),
        };
        ex.push(result(
            &id("certificate_min_days"),
            format!("certificate valid for at least {days} more days"),
            ok,
            format!(">= {days} days"),
            observed,
        ));
    }
}

/// The reply expected at each stage, and the latency budgets.
fn reply_expectations(
    e: &Expectations,
    r: Option<&ProbeReport>,
    id: &dyn Fn(&str) -> String,
    ex: &mut Vec<ExpectationResult>,
) {
    for (stage, want) in &e.stages {
        let key = id(&format!("stage.{stage}"));
        ex.push(match r {
            Some(r) => stage_result(&key, *stage, want, r),
            None => result(
                &key,
                format!("{stage} {want}"),
                false,
                want.to_string(),
                unprobed(),
            ),
        });
    }
    for (key, budget) in &e.latency {
        let took = match (key, r) {
            (LatencyKey::Dns, _) => continue,
            (_, None) => None,
            (LatencyKey::Total, Some(r)) => Some(r.elapsed_ms),
            (LatencyKey::Stage(st), Some(r)) => r
                .stages
                .iter()
                .filter(|s| s.stage == *st)
                .map(|s| s.elapsed_ms)
                .reduce(f64::max),
        };
        let not_reached = match r {
            Some(r) => format!("{} not reached: {}", key.as_str(), r.verdict.summary),
            None => unprobed(),
        };
        let mut x = latency_result(*key, *budget, took, not_reached);
        x.id = id(&x.id);
        ex.push(x);
    }
}

fn latency_result(
    key: LatencyKey,
    budget: std::time::Duration,
    took: Option<f64>,
    not_reached: String,
) -> ExpectationResult {
    let budget_ms = budget.as_secs_f64() * 1000.0;
    let shown = humantime::format_duration(budget).to_string();
    let (ok, observed) = match took {
        Some(t) => (t <= budget_ms, format!("{t:.1} ms")),
        None => (false, not_reached),
    };
    result(
        &format!("latency.{}", key.as_str()),
        format!("{} within {shown}", key.as_str()),
        ok,
        format!("<= {shown}"),
        observed,
    )
}

fn starttls_result(id: &str, want: StartTlsExpect, r: &ProbeReport) -> ExpectationResult {
    let caps = r.capabilities.before_tls.as_ref();
    let handshake_ok = r
        .stages
        .iter()
        .any(|s| s.stage == Stage::TlsHandshake && s.outcome == Outcome::Ok);
    let (ok, observed) = match want {
        StartTlsExpect::Offered | StartTlsExpect::NotOffered => match caps {
            None if r.target.tls_mode == "implicit" => {
                (false, "implicit TLS: no plaintext EHLO".to_string())
            }
            None => (false, format!("no EHLO reply: {}", r.verdict.summary)),
            Some(c) => {
                let offered = c.starttls;
                let text = if offered {
                    "EHLO lists STARTTLS".to_string()
                } else {
                    let masked = c.masked_keywords();
                    if masked.is_empty() {
                        "EHLO does not list STARTTLS".to_string()
                    } else {
                        format!(
                            "EHLO does not list STARTTLS (masked keywords: {}; a middlebox?)",
                            masked.join(", ")
                        )
                    }
                };
                (offered == (want == StartTlsExpect::Offered), text)
            }
        },
        StartTlsExpect::Negotiated | StartTlsExpect::Required => match &r.tls {
            Some(t) if handshake_ok => (
                true,
                format!(
                    "{} {}",
                    t.version.as_deref().unwrap_or("TLS"),
                    t.cipher.as_deref().unwrap_or("")
                )
                .trim_end()
                .to_string(),
            ),
            _ => {
                let why = r
                    .stages
                    .iter()
                    .find(|s| {
                        matches!(s.stage, Stage::Starttls | Stage::TlsHandshake)
                            && s.outcome != Outcome::Ok
                    })
                    .map(|s| format!("{}: {}", s.stage, describe(s)))
                    .unwrap_or_else(|| "STARTTLS not used".to_string());
                (false, format!("no TLS session ({why})"))
            }
        },
    };
    result(
        id,
        starttls_description(want).to_string(),
        ok,
        want.as_str().to_string(),
        observed,
    )
}

fn starttls_description(want: StartTlsExpect) -> &'static str {
    match want {
        StartTlsExpect::Offered => "STARTTLS offered",
        StartTlsExpect::NotOffered => "STARTTLS not offered",
        StartTlsExpect::Negotiated => "TLS negotiated",
        StartTlsExpect::Required => "STARTTLS required (a plaintext session is refused)",
    }
}

/// The category of a stage's result: its diagnosis, else accepted/other from the outcome.
fn category_of(s: &StageRecord) -> Category {
    match &s.diagnosis {
        Some(d) => d.category,
        None if s.outcome == Outcome::Ok => Category::Accepted,
        None => Category::Other,
    }
}

/// `250 2.1.5 accepted`, or `refused (connection refused) other`.
fn describe(s: &StageRecord) -> String {
    let head = match (&s.reply, &s.error) {
        (_, Some(e)) => format!("{} ({})", e.kind.as_str(), e.message),
        (Some(r), None) => match r.enhanced {
            Some(e) => format!("{} {e}", r.code),
            None => r.code.to_string(),
        },
        (None, None) => "ok".to_string(),
    };
    let mut out = format!("{head} {}", category_of(s));
    // A refusal's words say more than its code (TenantAttribution, "Relay access denied").
    if let Some(r) = s.reply.as_ref().filter(|_| s.outcome != Outcome::Ok) {
        let text: String = r.text().chars().take(200).collect();
        if !text.is_empty() {
            out.push_str(&format!(" \"{text}\""));
        }
    }
    out
}

fn reply_matches(want: &ReplyExpect, s: &StageRecord) -> bool {
    want.category.is_none_or(|c| c == category_of(s))
        && want
            .code
            .is_none_or(|c| s.reply.as_ref().is_some_and(|r| r.code == c))
        && want.enhanced.as_ref().is_none_or(|e| {
            s.reply
                .as_ref()
                .and_then(|r| r.enhanced)
                .is_some_and(|got| got.to_string() == *e)
        })
}

fn stage_result(id: &str, stage: Stage, want: &ReplyExpect, r: &ProbeReport) -> ExpectationResult {
    let seen: Vec<&StageRecord> = r.stages.iter().filter(|s| s.stage == stage).collect();
    let (ok, observed, cause) = if seen.is_empty() {
        (
            false,
            format!("not reached: {}", r.verdict.summary),
            failed_cause(r),
        )
    } else {
        let ok = seen.iter().all(|s| reply_matches(want, s));
        let cause = seen
            .iter()
            .find(|s| !reply_matches(want, s))
            .and_then(|s| s.diagnosis.as_ref())
            .map(|d| d.cause.clone());
        let observed: Vec<String> = seen.iter().map(|s| describe(s)).collect();
        (ok, observed.join("; "), cause)
    };
    let mut x = result(
        id,
        format!("{stage} {want}"),
        ok,
        want.to_string(),
        observed,
    );
    if !ok {
        x.cause = cause;
    }
    x
}

/// The expectations that need a session of their own, against the same address.
async fn extra_checks(
    spec: &HopSpec,
    s: &Subject,
    checks: &mut Vec<CheckReport>,
    ex: &mut Vec<ExpectationResult>,
) {
    let e = &spec.expect;
    let id = |k: &str| keyed(&s.label, k);
    let reached = s.report.as_ref().is_some_and(connected);
    if e.starttls == Some(StartTlsExpect::Required) {
        let x = match (&s.again, reached) {
            (Some(base), true) => {
                let mut o = base.clone();
                o.starttls = StartTls::Never;
                o.implicit_tls = false;
                o.auth = None;
                o.data = false;
                o.from = Some(o.from.unwrap_or_default());
                let report = run_check(&o).await;
                let x = required_result(&id("starttls"), &report);
                checks.push(CheckReport {
                    check: "starttls_required".into(),
                    subject: s.label.clone(),
                    report,
                });
                x
            }
            _ => result(
                &id("starttls"),
                starttls_description(StartTlsExpect::Required).to_string(),
                false,
                "required".to_string(),
                not_tested(s),
            ),
        };
        ex.push(x);
    }
    if e.open_relay == Some(false) {
        let x = match (&s.again, reached) {
            (Some(base), true) => {
                let mut o = base.clone();
                o.auth = None;
                o.data = false;
                o.from = Some(o.from.unwrap_or_default());
                o.rcpts = vec![spec.relay_test_rcpt.clone()];
                let report = run_check(&o).await;
                let x = relay_result(&id("open_relay"), &spec.relay_test_rcpt, &report);
                checks.push(CheckReport {
                    check: "open_relay".into(),
                    subject: s.label.clone(),
                    report,
                });
                x
            }
            _ => result(
                &id("open_relay"),
                "not an open relay".to_string(),
                false,
                "refused".to_string(),
                not_tested(s),
            ),
        };
        ex.push(x);
    }
}

fn not_tested(s: &Subject) -> String {
    if s.report.is_none() {
        "not tested: DNS decided the hop".to_string()
    } else {
        "not tested: the server was not reached".to_string()
    }
}

async fn run_check(o: &ProbeOptions) -> ProbeReport {
    match probe::probe(o).await {
        Ok(r) => r,
        // The TLS files were loaded once already; should they fail now, say so as a result.
        Err(e) => probe::unresolved(o, format!("TLS configuration: {}", e)),
    }
}

/// RCPT to an outside address without AUTH: a 5xx is the refusal expected; anything else
/// either relays (a 2xx: an open relay) or proves nothing (4xx, or refused before RCPT).
fn relay_result(id: &str, rcpt: &str, r: &ProbeReport) -> ExpectationResult {
    let rcpt_stage = r.stages.iter().find(|s| s.stage == Stage::RcptTo);
    let (ok, observed, cause) = match rcpt_stage {
        Some(s) if s.outcome == Outcome::Permanent => {
            (true, format!("RCPT refused: {}", describe(s)), None)
        }
        Some(s) if s.outcome == Outcome::Ok => (
            false,
            format!("RCPT accepted without AUTH: {} (open relay)", describe(s)),
            Some(
                "the server accepts mail for an outside domain from an unauthenticated client: \
                 an open relay (a receive connector open to 0.0.0.0/0 with relay permissions, \
                 or Postfix mynetworks/relay restrictions too wide)"
                    .to_string(),
            ),
        ),
        Some(s) => (
            false,
            format!("inconclusive: RCPT answered {}", describe(s)),
            None,
        ),
        None => (
            false,
            format!("inconclusive: RCPT not reached ({})", r.verdict.summary),
            None,
        ),
    };
    let mut x = result(
        id,
        format!("not an open relay (RCPT TO:<{rcpt}> without AUTH refused)"),
        ok,
        "5xx at RCPT".to_string(),
        observed,
    );
    x.cause = cause;
    x
}

/// A plaintext session must be refused for want of TLS before RCPT is accepted.
fn required_result(id: &str, r: &ProbeReport) -> ExpectationResult {
    let refusal = r.stages.iter().find(|s| {
        matches!(
            s.stage,
            Stage::Ehlo | Stage::Helo | Stage::MailFrom | Stage::RcptTo | Stage::Auth
        ) && matches!(s.outcome, Outcome::Permanent | Outcome::Transient)
    });
    let (ok, observed) = match refusal {
        Some(s) if category_of(s) == Category::TlsRequired => (
            true,
            format!("plaintext session refused at {}: {}", s.stage, describe(s)),
        ),
        Some(s) => (
            false,
            format!(
                "plaintext session refused at {}, not for TLS: {}",
                s.stage,
                describe(s)
            ),
        ),
        None => (
            false,
            format!("plaintext session not refused: {}", r.verdict.summary),
        ),
    };
    result(
        id,
        starttls_description(StartTlsExpect::Required).to_string(),
        ok,
        "required".to_string(),
        observed,
    )
}

fn ms(t0: Instant) -> f64 {
    mxtrace_proto::model::ms(t0.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_does_not_meet_the_walks_own_expectations() {
        let text = include_str!("../../../tests/snapshots/json_snapshots__probe_json.snap");
        let json = text.splitn(3, "---").nth(2).unwrap();
        let json = json
            .replace("\"[ms]\"", "12.5")
            .replace("\"[days]\"", "89")
            .replace("\"[port]\"", "25")
            .replace("\"[date]\"", "\"2027-02-26T00:00:00Z\"");
        let p: mxtrace_proto::model::ProbeReport = serde_json::from_str(&json).unwrap();
        let e = crate::scenario_file::Expectations {
            passes: Some(true),
            mx_matches: Some("*".into()),
            ..Default::default()
        };
        let ex = evaluate(
            &e,
            false,
            &mxtrace_proto::model::JobReport::Probe(Box::new(p)),
        );
        let got: Vec<(&str, bool)> = ex.iter().map(|x| (x.id.as_str(), x.passed)).collect();
        assert_eq!(got, [("mx_matches", false), ("passes", true)]);
    }
}
