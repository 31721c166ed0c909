//! `trace DOMAIN`: a domain's MX path walked the way a sending MTA walks it (RFC 5321 5.1):
//! MX records by preference (equal preferences in random order), the implicit MX when there
//! is none, a null MX (RFC 7505) as "accepts no mail"; every address of a host before the next
//! host; on to the next address on a connection failure or 4xx, stop at the first definitive
//! answer (the transaction completed, or a 5xx). `--all` probes every address instead.
//!
//! DNS is looked up first and completely (MX, A/AAAA, PTR and its forward check), then the
//! probes run; a DNS failure that leaves nothing to probe is the hop's result.

use crate::probe;
use mxtrace_knowledge::{
    self, Category, Class, Diagnosis, Explanation, Layer, PathContext, Scenario,
};
use mxtrace_net::dns::{Dns, Mx, ResolverChoice};
use mxtrace_proto::model::ms;
use mxtrace_proto::model::{
    AddressInfo, DnsFailure, DnsReason, MxFlag, MxHost, MxSource, Outcome, ProbeReport, SpfRecord,
    Stage, TraceHop, TraceProbe, TraceReport, Verdict,
};

mod dane;
use crate::probe::ProbeOptions;
use mxtrace_net::tls::TlsConfigError;
use mxtrace_proto::spec::{
    check_domain, Family, Field, Naming, SessionSpec, SpecError, ValueError,
};
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

mod family;
mod sts;
use sts::apply_mta_sts;

/// Probes (and DNS lookups) in flight at once with `--all`: enough to cover the address set
/// Exchange Online publishes for one MX name in one round, few enough not to look like a scan.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// The reply text suffix of Exchange Online front-end server names (`BN8NAM12FT053.mail.
/// protection.outlook.com`, `DM3NAM03FT051.eop-NAM03.prod.protection.outlook.com`).
const EXO_NAME_SUFFIX: &str = ".outlook.com";

#[derive(Debug, Clone)]
pub struct TraceOptions {
    pub domain: String,
    pub resolver: ResolverChoice,
    /// Per DNS request; a lookup with its retry is cut off at about three times this.
    pub dns_timeout: Duration,
    /// Probe every address (concurrently) instead of stopping at the first definitive answer.
    pub all: bool,
    /// Use at most this many MX hosts (the ones after are listed, not looked up).
    pub max_mx: Option<usize>,
    pub concurrency: usize,
    /// Template for every probe: port, session flags, family. `host`, `addrs` and `ctx` are
    /// set per address.
    pub probe: ProbeOptions,
    /// The delivery scenario the user named; None: detected from the MX (A when it is EOP, B
    /// when it is on-premises and `tenant` is given).
    pub scenario: Option<Scenario>,
    /// The Microsoft 365 tenant (`contoso`, `contoso.onmicrosoft.com`): in scenario B, hop 2
    /// walks the MX of `<tenant>.mail.onmicrosoft.com` as the on-premises server does.
    pub tenant: Option<String>,
    /// The MTA-STS policy fetch (`apply_mta_sts`); its CA file is the probes'.
    pub mta_sts: crate::mta_sts::FetchOptions,
    /// DNSKEY records (zone-file form) to validate DANE's answers from, instead of the IANA
    /// root keys (`apply_dane`).
    pub dnssec_trust_anchor: Option<std::path::PathBuf>,
}

/// One hop to walk: the domain, where it is in the path, and the probe template (recipients
/// differ per hop: hop 2 of B uses the remote routing addresses).
struct HopPlan {
    hop: u8,
    domain: String,
    scenario: Option<Scenario>,
    probe: ProbeOptions,
    /// MX hosts with secure TLSA answers: their usable records (empty: none usable, STARTTLS
    /// still required).
    dane: std::collections::HashMap<String, Vec<mxtrace_net::dns::Tlsa>>,
}

/// A configuration the user must fix (exit 2): the resolver, a TLS file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    #[error(transparent)]
    Resolver(#[from] mxtrace_net::dns::SetupError),
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
}

impl TraceError {
    /// The message, naming settings as the front end does (`Display`: as flags).
    pub fn describe(&self, naming: Naming) -> String {
        match self {
            TraceError::Resolver(e) => e.describe(naming),
            TraceError::Tls(e) => e.describe(naming),
        }
    }
}

impl TraceOptions {
    /// The options of `trace DOMAIN` (and of a scenario file's domain hop): the session
    /// settings validated and resolved, the probe template aimed at the domain.
    pub fn new(
        domain: &str,
        spec: &SessionSpec,
        scenario: Option<Scenario>,
        tenant: Option<&str>,
    ) -> Result<TraceOptions, SpecError> {
        let domain = check_domain(domain)?;
        let resolver =
            ResolverChoice::parse(spec.resolver.as_deref()).map_err(|source| SpecError::Value {
                field: Field::Resolver,
                source,
            })?;
        let probe = ProbeOptions::from_spec(spec, domain.clone(), spec.port_or_default())?;
        if let Some(t) = tenant {
            if mxtrace_knowledge::tenant_routing_domain(t).is_none() {
                return Err(SpecError::Tenant(ValueError::Tenant {
                    value: t.to_string(),
                }));
            }
        }
        Ok(TraceOptions {
            scenario,
            tenant: tenant.map(str::to_string),
            domain,
            resolver,
            dns_timeout: spec.dns_timeout(),
            all: spec.all.unwrap_or(false),
            max_mx: spec.max_mx.map(usize::from),
            concurrency: DEFAULT_CONCURRENCY,
            mta_sts: crate::mta_sts::FetchOptions {
                ca_file: probe.tls.ca_file.clone(),
                ..Default::default()
            },
            dnssec_trust_anchor: None,
            probe,
        })
    }
}

pub async fn trace(opts: &TraceOptions) -> Result<TraceReport, TraceError> {
    let t0 = Instant::now();
    let started_at = SystemTime::now();
    let dns = Dns::new(opts.resolver.clone(), opts.dns_timeout)?;
    let secure = mxtrace_net::dns::SecureDns::new(
        dns.clone(),
        opts.dns_timeout,
        opts.dnssec_trust_anchor.as_deref(),
    )?;
    let dns = (dns, secure);
    let domain = opts
        .domain
        .trim()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let (scenario, hop) = first_hop(opts);
    let first = HopPlan {
        hop,
        domain: domain.clone(),
        scenario,
        probe: opts.probe.clone(),
        dane: Default::default(),
    };
    let hop1 = walk_hop(&dns, opts, first).await?;
    let mut hops = vec![hop1];
    if let Some(plan) = hybrid_hop(opts, &hops) {
        let mut hop2 = walk_hop(&dns, opts, plan).await?;
        hop2.verdict.warnings.insert(
            0,
            "hop 2 is on-premises -> EOP: it means what it says only when mxtrace runs from the \
             on-premises network (the Exchange server's outbound path)"
                .to_string(),
        );
        hops.push(hop2);
    }
    let verdict = combine(&hops);
    Ok(TraceReport {
        domain,
        resolver: opts.resolver.describe(),
        port: opts.probe.port,
        mode: if opts.all { "all" } else { "mta" }.to_string(),
        hops,
        verdict,
        started_at: humantime::format_rfc3339_millis(started_at).to_string(),
        elapsed_ms: ms(t0.elapsed()),
    })
}

/// The first hop's place in the path: named on the command line (`--scenario`; D's MX walk
/// is its hop 2, hop 1 being EOP -> the on-premises smart host, a `probe` of that host), or
/// by a scenario file through the probe template's context (e.g. B hop 2, on-premises ->
/// EOP); else detected from the MX.
fn first_hop(opts: &TraceOptions) -> (Option<Scenario>, u8) {
    match (opts.scenario, opts.probe.ctx) {
        (Some(Scenario::D), _) => (Some(Scenario::D), 2),
        (Some(s), _) => (Some(s), 1),
        (
            None,
            PathContext {
                scenario: Some(s),
                hop,
            },
        ) => (Some(s), hop.unwrap_or(1)),
        (None, _) => (None, 1),
    }
}

/// Scenario B with a tenant: hop 2 walks the tenant's routing domain, as the on-premises
/// server does, the recipients turned into their remote routing addresses.
fn hybrid_hop(opts: &TraceOptions, hops: &[TraceHop]) -> Option<HopPlan> {
    let hybrid = hops.first().and_then(|h| h.scenario) == Some(Scenario::B);
    let target = opts
        .tenant
        .as_deref()
        .and_then(mxtrace_knowledge::tenant_routing_domain)
        .filter(|_| hybrid)?;
    let mut probe = opts.probe.clone();
    probe.rcpts = probe
        .rcpts
        .iter()
        .map(|r| remote_routing_address(r, &target))
        .collect();
    Some(HopPlan {
        hop: 2,
        domain: target,
        scenario: Some(Scenario::B),
        probe,
        dane: Default::default(),
    })
}

/// What a probe's result means to a sending MTA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The requested transaction completed (up to RCPT, or DATA with --data).
    Accept,
    /// A 5xx: the message bounces; no other MX is tried.
    Reject,
    /// Connection failure, 4xx, TLS failure: try the next address.
    Next,
}

fn step(r: &ProbeReport) -> Step {
    if r.verdict.passed {
        return Step::Accept;
    }
    match (r.verdict.outcome, r.verdict.failed_stage) {
        // Postfix's default smtp_skip_5xx_greeting = yes: a 5xx banner means "try the next
        // MX", not a bounce. A failed STARTTLS under mandatory TLS also moves on.
        (Outcome::Permanent, Some(Stage::Banner | Stage::Starttls | Stage::TlsHandshake)) => {
            Step::Next
        }
        (Outcome::Permanent, _) => Step::Reject,
        _ => Step::Next,
    }
}

/// The domain's SPF record, if it has one: outbound hints, not a verdict (a failed lookup is
/// left out rather than failing the trace).
async fn spf_record(dns: &Dns, domain: &str) -> Option<SpfRecord> {
    let txts = dns.txt(domain).await.ok()?;
    let mut spf = txts.into_iter().filter(|t| {
        t.split_whitespace()
            .next()
            .is_some_and(|v| v.eq_ignore_ascii_case("v=spf1"))
    });
    let record = spf.next()?;
    Some(SpfRecord {
        hints: mxtrace_knowledge::hints_from_spf(&record),
        multiple: spf.next().is_some(),
        record,
    })
}

/// A hybrid recipient's remote routing address: the same local part at
/// `<tenant>.mail.onmicrosoft.com` (scenario B; Microsoft Learn, "Configure mail flow using
/// connectors", hybrid mail flow).
fn remote_routing_address(rcpt: &str, target: &str) -> String {
    let bare = rcpt.trim().trim_start_matches('<').trim_end_matches('>');
    match bare.rsplit_once('@') {
        Some((local, _)) => format!("{local}@{target}"),
        None => format!("{bare}@{target}"),
    }
}

/// The trace passes when every hop passes; the summary names each hop.
fn combine(hops: &[TraceHop]) -> Verdict {
    match hops {
        [only] => only.verdict.clone(),
        _ => {
            let failed = hops.iter().find(|h| !h.verdict.passed);
            let summary = hops
                .iter()
                .map(|h| format!("hop {} ({}): {}", h.hop, h.domain, h.verdict.summary))
                .collect::<Vec<_>>()
                .join("; ");
            Verdict {
                passed: failed.is_none(),
                outcome: failed.map_or(Outcome::Ok, |h| h.verdict.outcome),
                failed_stage: failed.and_then(|h| h.verdict.failed_stage),
                summary,
                warnings: hops
                    .iter()
                    .flat_map(|h| h.verdict.warnings.iter().cloned())
                    .collect(),
            }
        }
    }
}

/// A hop being walked: the record so far and the warnings for its verdict.
struct Walking {
    hop: TraceHop,
    warnings: Vec<String>,
    t0: Instant,
    /// How advice names settings (`ProbeOptions::naming`).
    naming: Naming,
}

async fn walk_hop(
    (dns, secure): &(Dns, mxtrace_net::dns::SecureDns),
    opts: &TraceOptions,
    mut plan: HopPlan,
) -> Result<TraceHop, TraceError> {
    let w = Walking {
        hop: empty_hop(&plan),
        warnings: Vec::new(),
        t0: Instant::now(),
        naming: opts.probe.naming,
    };
    let mut w = match look_up_mx(dns, w).await {
        ControlFlow::Break(done) => return Ok(done),
        ControlFlow::Continue(w) => w,
    };
    name_scenario(opts, &mut plan, &mut w);
    if let Some(failed) = apply_mta_sts(dns, opts, &mut plan, &mut w).await {
        return Ok(failed);
    }
    if let Some(failed) = dane::apply(secure, &mut plan.dane, &mut w).await {
        return Ok(failed);
    }
    if plan.hop == 1 {
        w.hop.spf = spf_record(dns, &plan.domain).await;
    }
    let candidates = resolve_mx_hosts(dns, opts, &mut w).await;
    w.hop.dns_elapsed_ms = ms(w.t0.elapsed());
    if candidates.is_empty() {
        let (failure, subject) = no_address_failure(&w.hop, &plan.domain);
        return Ok(dns_decided(w, failure, subject));
    }
    let Walking {
        mut hop,
        mut warnings,
        ..
    } = w;
    for m in &hop.mx {
        if m.flags.contains(&MxFlag::NoAddress) && hop.mx_source == MxSource::Mx {
            let why = m
                .error
                .as_ref()
                .map(|e| e.message.clone())
                .unwrap_or_else(|| "no address".to_string());
            warnings.push(format!("MX host {} has no usable address: {why}", m.host));
        }
    }

    run_probes(opts, &plan, &mut hop, &candidates).await?;
    hop.verdict = probe_verdict(&hop, opts.all, warnings);
    family::per_family(opts, &plan, &mut hop, &candidates).await?;
    sts::explain_failures(&mut hop);
    Ok(hop)
}

/// The record of a hop before its walk.
fn empty_hop(plan: &HopPlan) -> TraceHop {
    TraceHop {
        spf: None,
        mta_sts: None,
        families: Vec::new(),
        family_probes: Vec::new(),
        hop: plan.hop,
        domain: plan.domain.clone(),
        scenario: plan.scenario,
        mx_source: MxSource::None,
        mx: Vec::new(),
        error: None,
        dns_elapsed_ms: 0.0,
        probes: Vec::new(),
        decided_by: None,
        verdict: fail_verdict(Outcome::Error, String::new(), Vec::new()),
    }
}

/// The MX records: a null MX or a DNS failure decides the hop here.
async fn look_up_mx(dns: &Dns, mut w: Walking) -> ControlFlow<TraceHop, Walking> {
    let domain = w.hop.domain.clone();
    let domain = domain.as_str();
    let (hop, warnings, t0) = (&mut w.hop, &mut w.warnings, w.t0);
    match dns.mx(domain).await {
        Ok(records) if records.iter().any(Mx::is_null) => {
            hop.mx_source = MxSource::NullMx;
            let mut sorted = records;
            sorted.sort_by_key(|m| (m.preference, !m.is_null()));
            if sorted.len() > 1 {
                warnings.push(
                    "a null MX is published together with other MX records: RFC 7505 3 says it \
                     must be the only one (mxtrace, like senders that honour RFC 7505, treats \
                     the domain as accepting no mail)"
                        .to_string(),
                );
            }
            hop.mx = sorted
                .into_iter()
                .map(|m| mx_host(m.preference, display_exchange(&m), Vec::new()))
                .collect();
            hop.dns_elapsed_ms = ms(t0.elapsed());
            hop.verdict = fail_verdict(
                Outcome::Permanent,
                format!(
                    "{domain} publishes a null MX (RFC 7505 \"0 .\"): the domain accepts no \
                     mail. A sending MTA does not connect anywhere and bounces at once \
                     (RFC 7505 4.1: 556 5.1.10)"
                ),
                std::mem::take(warnings),
            );
            return ControlFlow::Break(w.hop);
        }
        Ok(records) if !records.is_empty() => {
            hop.mx_source = MxSource::Mx;
            hop.mx = order_mx(records, &mut random_source());
        }
        // NODATA (or an answer without MX records): RFC 5321 5.1 implicit MX.
        Ok(_) => implicit(hop, domain),
        Err(f) if f.reason == DnsReason::NoRecords => implicit(hop, domain),
        Err(f) => {
            hop.dns_elapsed_ms = ms(t0.elapsed());
            return ControlFlow::Break(dns_decided(w, f, Subject::Domain));
        }
    }

    ControlFlow::Continue(w)
}

/// The scenario, from the MX when the user did not name it; what the MX set says about a
/// Microsoft 365 domain either way.
fn name_scenario(opts: &TraceOptions, plan: &mut HopPlan, w: &mut Walking) {
    let (hop_no, domain) = (plan.hop, plan.domain.as_str());
    let (hop, warnings) = (&mut w.hop, &mut w.warnings);
    if hop_no == 1 || plan.scenario.is_none() {
        let hosts: Vec<String> = hop.mx.iter().map(|m| m.host.clone()).collect();
        let tenant = opts.tenant.as_deref();
        let detected = mxtrace_knowledge::scenario_for_mx(&hosts, tenant);
        for flag in &detected.flags {
            if *flag != mxtrace_knowledge::MxSetWarning::NoMx {
                warnings.push(flag.message().to_string());
            }
        }
        match (plan.scenario, detected.scenario) {
            (None, found) => plan.scenario = found,
            (Some(named), Some(found)) if named != found && hop_no == 1 => warnings.push(format!(
                "the MX looks like scenario {found}, but scenario {named} was named: explaining as {named}"
            )),
            // The runbooks' "wrong MX records" root cause: the domain is said
            // to be on Exchange Online, but its MX sends mail elsewhere.
            (Some(Scenario::A), None) if hop_no == 1 && !hosts.is_empty() => warnings.push(format!(
                "scenario A was named, but no MX of {domain} points at Exchange Online \
                 (expected {}.mail.protection.outlook.com): wrong MX records send the mail to {}",
                domain.replace('.', "-"),
                hosts.join(", ")
            )),
            _ => {}
        }
        hop.scenario = plan.scenario;
    }
}

/// Looks up every usable MX host's addresses, then each address's reverse DNS, all bounded;
/// returns the (MX index, address) pairs to probe, in order.
async fn resolve_mx_hosts(dns: &Dns, opts: &TraceOptions, w: &mut Walking) -> Vec<(usize, IpAddr)> {
    let addresses = look_up_addresses(dns, opts, w).await;
    reverse_dns(dns, opts, &mut w.hop, addresses).await
}

/// The addresses of every usable MX host, (MX index, address) in order; the hosts that are
/// IP literals, beyond `max_mx`, aliases or without an address are flagged.
async fn look_up_addresses(
    dns: &Dns,
    opts: &TraceOptions,
    w: &mut Walking,
) -> Vec<(usize, IpAddr)> {
    let families = families(&opts.probe);
    let (hop, warnings) = (&mut w.hop, &mut w.warnings);
    // Which hosts get looked up: IP literals never (a sending MTA does not use them), hosts
    // beyond --max-mx not at all.
    let mut usable = 0usize;
    let mut lookups = Vec::new();
    for (i, m) in hop.mx.iter_mut().enumerate() {
        if m.host.parse::<IpAddr>().is_ok() {
            m.flags.push(MxFlag::IpLiteral);
            warnings.push(format!(
                "MX {} {} is an IP address: RFC 5321 5.1 requires a host name; sending MTAs \
                 (Postfix among them) refuse to use it",
                m.preference, m.host
            ));
            continue;
        }
        if opts.max_mx.is_some_and(|max| usable >= max) {
            m.flags.push(MxFlag::BeyondMaxMx);
            continue;
        }
        usable += 1;
        let (dns, host, families) = (dns.clone(), m.host.clone(), families.clone());
        lookups.push((i, async move { resolve_host(&dns, &host, &families).await }));
    }
    let (idx, futs): (Vec<usize>, Vec<_>) = lookups.into_iter().unzip();
    let results = run_bounded(futs, opts.concurrency).await;
    let mut to_reverse = Vec::new();
    for (i, res) in idx.into_iter().zip(results) {
        let Some(m) = hop.mx.get_mut(i) else { continue };
        let Some((addrs, cname, error)) = res else {
            continue;
        };
        // RFC 5321 5.1: an implicit MX may be an alias ("processed as if it were the initial
        // name"); an MX target may not.
        if let Some(target) = cname.filter(|_| hop.mx_source == MxSource::Mx) {
            m.flags.push(MxFlag::Cname);
            warnings.push(format!(
                "MX host {} is an alias (CNAME to {target}): RFC 2181 10.3 and RFC 5321 5.1 \
                 require the MX to name a host with its own A/AAAA; most MTAs follow it, some \
                 refuse",
                m.host
            ));
            m.cname_target = Some(target);
        }
        if addrs.is_empty() {
            m.flags.push(MxFlag::NoAddress);
            m.error = error;
        }
        for ip in addrs {
            to_reverse.push((i, ip));
        }
    }
    to_reverse
}

/// Reverse DNS and its forward confirmation, every address at once (bounded), recorded under
/// its MX host; returns the addresses to probe.
async fn reverse_dns(
    dns: &Dns,
    opts: &TraceOptions,
    hop: &mut TraceHop,
    to_reverse: Vec<(usize, IpAddr)>,
) -> Vec<(usize, IpAddr)> {
    let futs: Vec<_> = to_reverse
        .iter()
        .map(|&(_, ip)| {
            let dns = dns.clone();
            async move { dns.reverse_check(ip).await }
        })
        .collect();
    let infos = run_bounded(futs, opts.concurrency).await;
    let mut candidates = Vec::new();
    for (&(i, ip), info) in to_reverse.iter().zip(infos) {
        let info = info.unwrap_or_else(|| AddressInfo {
            ip: ip.to_string(),
            ptr: Vec::new(),
            fcrdns: None,
            ptr_error: None,
        });
        if let Some(m) = hop.mx.get_mut(i) {
            m.addresses.push(info);
            candidates.push((i, ip));
        }
    }
    candidates
}

/// Probes the candidates: in order until one decides, or all of them (bounded) with --all.
async fn run_probes(
    opts: &TraceOptions,
    plan: &HopPlan,
    hop: &mut TraceHop,
    candidates: &[(usize, IpAddr)],
) -> Result<(), TraceError> {
    let jobs: Vec<ProbeOptions> = candidates
        .iter()
        .filter_map(|&(i, ip)| hop.mx.get(i).map(|m| probe_options(plan, &m.host, ip)))
        .collect();
    if opts.all {
        let futs: Vec<_> = jobs
            .into_iter()
            .map(|o| async move { (probe::probe(&o).await, o) })
            .collect();
        for (res, o) in run_bounded(futs, opts.concurrency)
            .await
            .into_iter()
            .flatten()
        {
            let report = res?;
            hop.probes.push(trace_probe(&o, report));
        }
        hop.decided_by = hop
            .probes
            .iter()
            .position(|p| step(&p.report) != Step::Next);
    } else {
        for o in jobs {
            let report = probe::probe(&o).await?;
            let s = step(&report);
            hop.probes.push(trace_probe(&o, report));
            if s != Step::Next {
                hop.decided_by = Some(hop.probes.len() - 1);
                break;
            }
        }
    }
    Ok(())
}

fn implicit(hop: &mut TraceHop, domain: &str) {
    hop.mx_source = MxSource::Implicit;
    hop.mx = vec![mx_host(0, domain.to_string(), vec![MxFlag::Implicit])];
}

fn mx_host(preference: u16, host: String, flags: Vec<MxFlag>) -> MxHost {
    MxHost {
        preference,
        host,
        flags,
        cname_target: None,
        addresses: Vec::new(),
        error: None,
    }
}

fn display_exchange(m: &Mx) -> String {
    if m.is_null() {
        ".".to_string()
    } else {
        m.exchange.clone()
    }
}

/// RFC 5321 5.1: ascending preference; "if there are multiple destinations with the same
/// preference and there is no clear reason to favor one, ... the SMTP client SHOULD randomize
/// them to spread the load". The result is the order used.
fn order_mx(mut records: Vec<Mx>, rng: &mut impl FnMut() -> u64) -> Vec<MxHost> {
    records.sort_by_key(|m| m.preference);
    records.dedup();
    let mut out = Vec::with_capacity(records.len());
    let mut rest = records.as_mut_slice();
    while let Some(first) = rest.first() {
        let pref = first.preference;
        let n = rest.iter().take_while(|m| m.preference == pref).count();
        let (group, tail) = rest.split_at_mut(n);
        // Fisher-Yates.
        for i in (1..group.len()).rev() {
            let j = (rng() % (i as u64 + 1)) as usize;
            group.swap(i, j);
        }
        for m in group.iter() {
            let flags = if n > 1 {
                vec![MxFlag::EqualPreference]
            } else {
                Vec::new()
            };
            out.push(mx_host(m.preference, m.exchange.clone(), flags));
        }
        rest = tail;
    }
    out
}

/// Random numbers from std's RandomState (randomly keyed SipHash): enough to spread load, and
/// no extra crate.
fn random_source() -> impl FnMut() -> u64 {
    let state = std::collections::hash_map::RandomState::new();
    let mut counter = 0u64;
    move || {
        let mut h = state.build_hasher();
        h.write_u64(counter);
        counter += 1;
        h.finish()
    }
}

type HostLookup = (Vec<IpAddr>, Option<String>, Option<DnsFailure>);

/// A host's addresses in the families asked for (IPv4 first, each in DNS order), the CNAME it
/// went through, and the failure when there is no address.
/// -4/-6, else the family of --source (the other could not be reached from it), else both.
fn families(o: &ProbeOptions) -> Vec<Family> {
    match (o.family, o.source) {
        (Some(f), _) => vec![f],
        (None, Some(IpAddr::V4(_))) => vec![Family::V4],
        (None, Some(IpAddr::V6(_))) => vec![Family::V6],
        (None, None) => vec![Family::V4, Family::V6],
    }
}

/// The addresses of a host a probe is about to use, looked up with `dns` (not the system's
/// getaddrinfo) in the families the probe can reach, IPv4 first.
pub async fn host_addresses(
    dns: &Dns,
    probe: &ProbeOptions,
    host: &str,
) -> Result<Vec<IpAddr>, DnsFailure> {
    let (addrs, _, error) = resolve_host(dns, host, &families(probe)).await;
    match error {
        Some(e) if addrs.is_empty() => Err(e),
        _ => Ok(addrs),
    }
}

async fn resolve_host(dns: &Dns, host: &str, families: &[Family]) -> HostLookup {
    let mut addrs = Vec::new();
    let mut cname = None;
    let mut failures = Vec::new();
    for &f in families {
        match dns.addresses(host, f).await {
            Ok(a) => {
                addrs.extend(a.addrs);
                cname = cname.or(a.cname);
            }
            Err(e) => failures.push(e),
        }
    }
    let error = if addrs.is_empty() {
        // The most telling failure: a real error before "no records of this type".
        failures
            .iter()
            .find(|e| e.reason != DnsReason::NoRecords)
            .or(failures.first())
            .cloned()
    } else {
        None
    };
    (addrs, cname, error)
}

fn probe_options(plan: &HopPlan, host: &str, ip: IpAddr) -> ProbeOptions {
    let mut o = plan.probe.clone();
    o.host = host.to_string();
    o.addrs = Some(vec![ip]);
    if let Some(records) = plan.dane.get(host) {
        // RFC 7672 2.2: a secure TLSA answer makes TLS mandatory; usable records replace the
        // trust stores (tls::dane) and a mismatch ends the session.
        o.starttls = mxtrace_proto::spec::StartTls::Require;
        o.tls.verify = mxtrace_net::tls::VerifyMode::Strict;
        o.tls.dane.clone_from(records);
    }
    o.ctx = PathContext {
        scenario: plan.scenario,
        hop: plan.scenario.map(|_| plan.hop),
    };
    o
}

fn trace_probe(o: &ProbeOptions, report: ProbeReport) -> TraceProbe {
    // RFC 5321 4.3.1: a 220 greeting starts with the server's name; a 421/554 need not.
    let banner_name = report
        .stages
        .iter()
        .find(|s| s.stage == Stage::Banner)
        .and_then(|s| s.reply.as_ref())
        .filter(|r| r.code == 220)
        .and_then(|r| r.lines.first())
        .and_then(|l| l.get(4..))
        .and_then(|t| t.split_whitespace().next())
        .map(str::to_string);
    let ehlo_name = report
        .capabilities
        .before_tls
        .as_ref()
        .or(report.capabilities.after_tls.as_ref())
        .and_then(|c| c.server_name.clone());
    let front_end = front_end_names(&report);
    TraceProbe {
        mx: o.host.clone(),
        ip: o
            .addrs
            .as_ref()
            .and_then(|a| a.first())
            .map(|i| i.to_string())
            .unwrap_or_default(),
        banner_name,
        ehlo_name,
        front_end,
        report,
    }
}

/// Exchange Online names its front-end servers in the banner, the EHLO reply and in brackets
/// at the end of many replies (`[DM3NAM03FT051.eop-NAM03.prod.protection.outlook.com]`): the
/// server an admin quotes to Microsoft support.
pub fn front_end_names(report: &ProbeReport) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let lines = report
        .stages
        .iter()
        .filter_map(|s| s.reply.as_ref())
        .flat_map(|r| r.lines.iter());
    for line in lines {
        for token in line.get(4..).unwrap_or("").split_whitespace() {
            let t = token
                .trim_matches(|c: char| "[](){}<>,;:\"'".contains(c))
                .trim_end_matches('.');
            let lower = t.to_ascii_lowercase();
            let name_like = t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if name_like
                && lower.len() > EXO_NAME_SUFFIX.len()
                && lower.ends_with(EXO_NAME_SUFFIX)
                && !out.iter().any(|o| o.eq_ignore_ascii_case(t))
            {
                out.push(t.to_string());
            }
        }
    }
    out
}

fn fail_verdict(outcome: Outcome, summary: String, warnings: Vec<String>) -> Verdict {
    Verdict {
        passed: false,
        outcome,
        failed_stage: None,
        summary,
        warnings,
    }
}

/// What a DNS failure is about, for its explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subject {
    /// The MX lookup of the domain (or, for no_records, MX and implicit A/AAAA).
    Domain,
    /// The addresses of the MX hosts.
    MxHost,
}

/// Why nothing can be probed: the first MX host's DNS failure, or a summary.
fn no_address_failure(hop: &TraceHop, domain: &str) -> (DnsFailure, Subject) {
    if hop.mx_source == MxSource::Implicit {
        let f = hop.mx.first().and_then(|m| m.error.clone());
        return match f {
            Some(f) if f.reason != DnsReason::NoRecords => (f, Subject::MxHost),
            _ => (
                DnsFailure::new(
                    DnsReason::NoRecords,
                    format!("{domain}. MX/A/AAAA"),
                    format!("{domain} has no MX record and no A/AAAA record"),
                ),
                Subject::Domain,
            ),
        };
    }
    if let Some(f) = hop.mx.iter().find_map(|m| m.error.clone()) {
        return (f, Subject::MxHost);
    }
    let why = if hop.mx.iter().all(|m| m.flags.contains(&MxFlag::IpLiteral)) {
        "every MX record names an IP address instead of a host (RFC 5321 5.1)"
    } else {
        "no MX host has an address"
    };
    (
        DnsFailure::new(
            DnsReason::NoRecords,
            format!("{domain}. MX"),
            why.to_string(),
        ),
        Subject::MxHost,
    )
}

fn dns_decided(w: Walking, mut f: DnsFailure, subject: Subject) -> TraceHop {
    let Walking {
        mut hop,
        warnings,
        naming,
        ..
    } = w;
    let ctx = PathContext {
        scenario: hop.scenario,
        hop: hop.scenario.map(|_| hop.hop),
    };
    let e = explain_dns(&f, subject, &hop.domain, naming);
    let summary = format!("DNS: {} ({}: {})", e.cause, f.query, f.reason.as_str());
    f.diagnosis = Some(Diagnosis::new(e, ctx));
    hop.error = Some(f);
    hop.verdict = fail_verdict(Outcome::Error, summary, warnings);
    hop
}

/// The DNS failure modes in words, with what to check. Sources: RFC 1035 4.1.1 (RCODEs),
/// RFC 2308 (NXDOMAIN vs NODATA), RFC 5321 5.1 (MX and implicit MX), RFC 3463 (4.4.3 "directory
/// server failure", 5.1.2 "bad destination system address" in the bounces senders produce).
fn explain_dns(f: &DnsFailure, subject: Subject, domain: &str, naming: Naming) -> Explanation {
    let q = &f.query;
    let (class, cause, steps): (Class, String, Vec<String>) = match (f.reason, subject) {
        (DnsReason::Nxdomain, Subject::Domain) => (
            Class::Permanent,
            format!("{domain} does not exist in DNS (NXDOMAIN): senders bounce with 5.1.2 / \"host or domain name not found\""),
            steps(&[
                "Check the spelling of the domain.",
                "If the domain is yours: check its registration and its delegation (NS records at the parent zone), and that the zone is loaded on its name servers.",
                "For Microsoft 365: the domain must be added and verified in the admin center (Settings > Domains) and its MX published at the DNS host.",
            ]),
        ),
        (DnsReason::Nxdomain, Subject::MxHost) => (
            Class::Permanent,
            format!("the MX of {domain} points at a name that does not exist ({q}: NXDOMAIN)"),
            steps(&[
                "Fix the MX record: a typo in the host name, or a host record that was removed.",
                "For Microsoft 365 the MX must be exactly the value the admin center shows (<domain>.mail.protection.outlook.com).",
            ]),
        ),
        (DnsReason::NoRecords, Subject::Domain) => (
            Class::Permanent,
            format!("{domain} has neither MX nor A/AAAA records: there is nowhere to deliver (RFC 5321 5.1)"),
            steps(&[
                "Publish an MX record; for Microsoft 365 the value is in the admin center (Settings > Domains), of the form <domain>.mail.protection.outlook.com.",
                "If the domain should receive no mail, publish a null MX (\"0 .\", RFC 7505) so that senders fail at once.",
            ]),
        ),
        (DnsReason::NoRecords, Subject::MxHost) => (
            Class::Permanent,
            format!("no MX host of {domain} has a usable address: {}", f.message),
            steps(&[
                "Publish A (and AAAA) records for the MX host, or point the MX at a host that has them.",
                &format!(
                    "With {} only that family is looked up: try without it.",
                    Field::IpVersion.mention(naming)
                ),
            ]),
        ),
        (reason, _) => resolver_failure(f, reason, naming),
    };
    Explanation {
        class,
        category: Category::DnsFailure,
        confidence: mxtrace_proto::model::Confidence::High,
        runner_up: None,
        layer: Layer::Dns,
        cause,
        next_steps: steps,
    }
}

/// The failures of the resolver or of the domain's name servers: class, cause, steps.
fn resolver_failure(
    f: &DnsFailure,
    reason: DnsReason,
    naming: Naming,
) -> (Class, String, Vec<String>) {
    let q = &f.query;
    let resolver = Field::Resolver.mention(naming);
    match reason {
        DnsReason::Servfail => (
            Class::Transient,
            format!("the resolver could not get an answer for {q} (SERVFAIL): the authoritative servers are unreachable or broken (lame delegation), or DNSSEC validation failed; senders defer (4.4.3) and retry"),
            steps(&[
                "Ask the authoritative servers directly (dig +norecurse @<ns> <name> MX) and check the delegation at the parent zone.",
                "If the zone is signed, check DS and DNSKEY: a validation failure shows as SERVFAIL.",
                &format!("Try another resolver with {resolver} to tell a local resolver problem from the domain's."),
            ]),
        ),
        DnsReason::Timeout => (
            Class::Transient,
            format!("no answer for {q} in time: the resolver or the domain's name servers do not answer; senders defer and retry"),
            steps(&[
                "Check that the resolver is reachable from here (UDP and TCP port 53); a firewall may drop DNS.",
                &format!(
                    "Try another resolver with {resolver}, or a longer {}.",
                    Field::DnsTimeout.mention(naming)
                ),
            ]),
        ),
        DnsReason::Refused => (
            Class::Transient,
            format!("the resolver refused the query for {q}: it does not answer (or recurse) for this client"),
            steps(&[&format!(
                "Use a resolver that serves this machine ({}).",
                Field::Resolver.set_to("IP").word(naming)
            )]),
        ),
        DnsReason::Network => (
            Class::Transient,
            format!("the resolver could not be reached: {}", f.message),
            steps(&[&format!("Check the resolver address ({resolver} or /etc/resolv.conf) and that UDP/TCP port 53 is allowed.")]),
        ),
        _ => (
            Class::Transient,
            format!("DNS lookup {q} failed: {}", f.message),
            steps(&["Repeat the lookup with dig against the same resolver to see the full answer."]),
        ),
    }
}

fn steps(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The hop's verdict from its probes.
fn probe_verdict(hop: &TraceHop, all: bool, mut warnings: Vec<String>) -> Verdict {
    let decided = hop
        .decided_by
        .and_then(|i| hop.probes.get(i).map(|p| (i, p)));
    match decided {
        Some((i, p)) if p.report.verdict.passed => {
            warnings.extend(p.report.verdict.warnings.iter().cloned());
            accepted_verdict(hop, all, i, p, warnings)
        }
        Some((_, p)) => Verdict {
            passed: false,
            outcome: p.report.verdict.outcome,
            failed_stage: p.report.verdict.failed_stage,
            summary: format!(
                "rejected by {} (definitive: a sending MTA bounces and tries no other MX): {}",
                probe_at(p),
                p.report.verdict.summary
            ),
            warnings,
        },
        None => {
            let last = hop.probes.last();
            Verdict {
                passed: false,
                outcome: worst(hop.probes.iter().map(|p| p.report.verdict.outcome)),
                failed_stage: last.and_then(|p| p.report.verdict.failed_stage),
                summary: format!(
                    "no MX host accepted: all {} address(es) failed; a sending MTA would queue \
                     the message and retry later. Last: {}",
                    hop.probes.len(),
                    last.map(|p| format!("{}: {}", probe_at(p), p.report.verdict.summary))
                        .unwrap_or_default()
                ),
                warnings,
            }
        }
    }
}

/// `mx [ip]`.
fn probe_at(p: &TraceProbe) -> String {
    format!("{} [{}]", p.mx, p.ip)
}

/// Probe `i` accepted: the hop passes, unless `--all` found addresses that fail.
fn accepted_verdict(
    hop: &TraceHop,
    all: bool,
    i: usize,
    p: &TraceProbe,
    warnings: Vec<String>,
) -> Verdict {
    let failing: Vec<&TraceProbe> = hop
        .probes
        .iter()
        .filter(|p| !p.report.verdict.passed)
        .collect();
    if all && !failing.is_empty() {
        let first = failing.first().map(|p| p.report.verdict.clone());
        let list: Vec<String> = failing
            .iter()
            .map(|p| format!("{}: {}", probe_at(p), p.report.verdict.summary))
            .collect();
        return Verdict {
            passed: false,
            outcome: worst(failing.iter().map(|p| p.report.verdict.outcome)),
            failed_stage: first.and_then(|v| v.failed_stage),
            summary: format!(
                "{} of {} addresses failed (a sending MTA still gets through, via {}): {}",
                failing.len(),
                hop.probes.len(),
                probe_at(p),
                list.join("; ")
            ),
            warnings,
        };
    }
    let before = if i > 0 && !all {
        format!(" after {i} failed attempt(s)")
    } else {
        String::new()
    };
    let summary = if all {
        format!("all {} addresses passed", hop.probes.len())
    } else {
        format!(
            "accepted by {}{before}: {}",
            probe_at(p),
            last_answer(&p.report)
        )
    };
    Verdict {
        passed: true,
        outcome: Outcome::Ok,
        failed_stage: None,
        summary,
        warnings,
    }
}

/// `rcpt_to 250 2.1.5`: the last answer of a probe that passed.
fn last_answer(r: &ProbeReport) -> String {
    let last = r
        .stages
        .iter()
        .rev()
        .find(|s| !matches!(s.stage, Stage::Quit | Stage::Rset));
    match last {
        Some(s) => match &s.reply {
            Some(rep) => match rep.enhanced {
                Some(e) => format!("{} {} {e}", s.stage, rep.code),
                None => format!("{} {}", s.stage, rep.code),
            },
            None => format!("{} ok", s.stage),
        },
        None => "passed".to_string(),
    }
}

/// Permanent over transient over error: the most telling outcome of a set of failures.
fn worst(outcomes: impl Iterator<Item = Outcome>) -> Outcome {
    let v: Vec<Outcome> = outcomes.collect();
    [Outcome::Permanent, Outcome::Transient, Outcome::Error]
        .into_iter()
        .find(|o| v.contains(o))
        .unwrap_or(Outcome::Error)
}

/// Runs futures with at most `limit` at once; results in input order (None for a task that
/// panicked).
async fn run_bounded<F, T>(jobs: Vec<F>, limit: usize) -> Vec<Option<T>>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let n = jobs.len();
    let sem = Arc::new(Semaphore::new(limit.max(1)));
    let mut set = JoinSet::new();
    for (i, job) in jobs.into_iter().enumerate() {
        let sem = sem.clone();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            (i, job.await)
        });
    }
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    while let Some(res) = set.join_next().await {
        if let Ok((i, v)) = res {
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(v);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mx(p: u16, h: &str) -> Mx {
        Mx {
            preference: p,
            exchange: h.to_string(),
        }
    }

    #[test]
    fn mx_order_is_by_preference_with_equal_ones_permuted() {
        let records = vec![mx(20, "c"), mx(10, "a"), mx(10, "b"), mx(30, "d")];
        let mut seen_first = std::collections::HashSet::new();
        for seed in 0..64u64 {
            let mut n = seed;
            let mut rng = move || {
                n = n
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                n >> 33
            };
            let out = order_mx(records.clone(), &mut rng);
            let hosts: Vec<&str> = out.iter().map(|m| m.host.as_str()).collect();
            assert_eq!(&hosts[2..], ["c", "d"]);
            let mut firsts = hosts[..2].to_vec();
            seen_first.insert(firsts[0].to_string());
            firsts.sort();
            assert_eq!(firsts, ["a", "b"]);
            assert!(out[0].flags.contains(&MxFlag::EqualPreference));
            assert!(out[2].flags.is_empty());
        }
        assert_eq!(seen_first.len(), 2, "both orders occur");
        // The real source is random, not constant.
        let mut r = random_source();
        assert_ne!(r(), r());
    }

    #[test]
    fn exo_front_end_names() {
        use mxtrace_proto::model::*;
        use mxtrace_proto::smtp::reply::Reply;
        let stage = |lines: &[&str]| StageRecord {
            stage: Stage::Banner,
            sent: vec![],
            reply: Some(Reply {
                code: 220,
                enhanced: None,
                lines: lines.iter().map(|s| s.to_string()).collect(),
            }),
            elapsed_ms: 0.0,
            started_ms: 0.0,
            encrypted: false,
            outcome: Outcome::Ok,
            error: None,
            notes: vec![],
            diagnosis: None,
        };
        let report = ProbeReport {
            target: Target {
                host: "x".into(),
                ip: None,
                port: 25,
                tls_mode: "none".into(),
                tls_name: None,
            },
            stages: vec![
                stage(&["220 BN8NAM12FT053.mail.protection.outlook.com Microsoft ESMTP MAIL Service ready"]),
                stage(&["250-BN8NAM12FT053.mail.protection.outlook.com Hello [203.0.113.5]", "250 SIZE 157286400"]),
                stage(&["550 5.4.1 Recipient address rejected: Access denied. [DM3NAM03FT051.eop-NAM03.prod.protection.outlook.com 2024-01-01T00:00:00.000Z]"]),
                stage(&["250 2.0.0 OK outlook.com"]),
            ],
            capabilities: CapabilitySet::default(),
            tls: None,
            verdict: fail_verdict(Outcome::Error, String::new(), vec![]),
            started_at: String::new(),
            elapsed_ms: 0.0,
            probe_id: None,
            recipients: vec![],
        };
        assert_eq!(
            front_end_names(&report),
            [
                "BN8NAM12FT053.mail.protection.outlook.com",
                "DM3NAM03FT051.eop-NAM03.prod.protection.outlook.com"
            ]
        );
    }

    #[test]
    fn remote_routing_addresses() {
        let t = "contoso.mail.onmicrosoft.com";
        assert_eq!(
            remote_routing_address("user@contoso.com", t),
            "user@contoso.mail.onmicrosoft.com"
        );
        assert_eq!(
            remote_routing_address("<a.b@contoso.com>", t),
            "a.b@contoso.mail.onmicrosoft.com"
        );
        assert_eq!(
            remote_routing_address("postmaster", t),
            "postmaster@contoso.mail.onmicrosoft.com"
        );
    }

    #[test]
    fn worst_outcome() {
        assert_eq!(
            worst([Outcome::Error, Outcome::Transient].into_iter()),
            Outcome::Transient
        );
        assert_eq!(worst(std::iter::empty()), Outcome::Error);
    }
}
