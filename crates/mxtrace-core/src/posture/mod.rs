//! `mxtrace dns DOMAIN`: the domain's mail posture. One file per check (SPF, DMARC, DKIM,
//! MTA-STS, TLS-RPT, DANE, reverse DNS, blocklists), each filling its section of `PostureReport`
//! with findings in the diagnosis vocabulary (category, layer, cause, next steps).
//!
//! Exit codes: the posture fails (exit 1) when any section has an error-severity finding (a
//! record that breaks delivery or authentication, a listed address, a lookup that failed);
//! warnings (weak but working settings such as `p=none` or `~all`) pass.

pub mod dane;
pub mod dkim;
pub mod dmarc;
pub mod dnsbl;
pub mod mta_sts;
pub mod rdns;
pub mod spf;
pub mod tls_rpt;

use mxtrace_net::dns::{Dns, ResolverChoice, SecureDns, SetupError};
use mxtrace_proto::model::posture::{Finding, PostureReport, PostureVerdict, Section, Severity};
use mxtrace_proto::model::{Category, DnsFailure, Layer};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What `mxtrace dns` was asked.
#[derive(Debug, Clone)]
pub struct PostureOptions {
    pub domain: String,
    pub resolver: ResolverChoice,
    /// Per DNS request (a lookup is cut off at three times this).
    pub dns_timeout: Duration,
    pub sending_ip: Option<IpAddr>,
    /// Selectors tried after Microsoft 365's `selector1` and `selector2`.
    pub dkim_selectors: Vec<String>,
    /// Check every MX address against the blocklists too (the sending IP always is).
    pub dnsbl: bool,
    /// Blocklist zones; empty means `dnsbl::DEFAULT_ZONES`.
    pub dnsbl_zones: Vec<String>,
    /// The MTA-STS policy fetch (HTTPS).
    pub mta_sts: crate::mta_sts::FetchOptions,
    /// DNSKEY records (zone-file form) to validate DANE's answers from, instead of the IANA
    /// root keys.
    pub dnssec_trust_anchor: Option<PathBuf>,
}

impl PostureOptions {
    pub fn new(domain: &str, resolver: ResolverChoice) -> PostureOptions {
        PostureOptions {
            domain: domain.trim().trim_end_matches('.').to_ascii_lowercase(),
            resolver,
            dns_timeout: Duration::from_secs(5),
            sending_ip: None,
            dkim_selectors: Vec::new(),
            dnsbl: false,
            dnsbl_zones: Vec::new(),
            mta_sts: crate::mta_sts::FetchOptions::default(),
            dnssec_trust_anchor: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostureError {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error("{0:?} is not a domain name")]
    BadDomain(String),
    /// The CA file for the MTA-STS policy host does not load.
    #[error(transparent)]
    Tls(#[from] mxtrace_net::tls::TlsConfigError),
}

/// Runs every check. Lookups go only to the resolver chosen.
pub async fn posture(opts: &PostureOptions) -> Result<PostureReport, PostureError> {
    let domain = opts.domain.clone();
    if domain.is_empty() || domain.len() > 253 || domain.parse::<IpAddr>().is_ok() {
        return Err(PostureError::BadDomain(domain));
    }
    if opts.mta_sts.ca_file.is_some() {
        // A bad --tls-ca-file is the user's error (exit 2), not a finding about the domain.
        crate::mta_sts::tls_config(&opts.mta_sts)?;
    }
    let dns = Dns::new(opts.resolver.clone(), opts.dns_timeout)?;
    let secure = SecureDns::new(
        dns.clone(),
        opts.dns_timeout,
        opts.dnssec_trust_anchor.as_deref(),
    )?;
    let (mx, mx_error) = match dns.mx(&domain).await {
        Ok(mut records) => {
            records.sort_by_key(|m| m.preference);
            let hosts = records.into_iter().filter(|m| !m.is_null());
            (hosts.map(|m| m.exchange).collect::<Vec<_>>(), None)
        }
        Err(e) if e.is_absent() => (Vec::new(), None),
        Err(e) => (Vec::new(), Some(e.message)),
    };
    let (spf, dmarc, dkim, mta_sts, tls_rpt, dane, rdns, dnsbl) = tokio::join!(
        spf::check(&dns, &domain, &mx, opts.sending_ip),
        dmarc::check(&dns, &domain),
        dkim::check(&dns, &domain, &mx, &opts.dkim_selectors),
        mta_sts::check(&dns, &domain, &mx, &opts.mta_sts),
        tls_rpt::check(&dns, &domain),
        dane::check(&secure, &domain, &mx),
        rdns::check(&dns, &mx, opts.sending_ip),
        dnsbl::check(&dns, &mx, opts),
    );
    let mut report = PostureReport {
        domain,
        resolver: dns.choice().describe(),
        mx,
        mx_error,
        spf,
        dmarc,
        dkim,
        mta_sts,
        tls_rpt,
        dane,
        rdns,
        dnsbl,
        verdict: PostureVerdict {
            passed: true,
            errors: 0,
            warnings: 0,
            summary: String::new(),
        },
    };
    report.verdict = verdict(&report);
    Ok(report)
}

/// Every section of a report, with its name.
pub fn sections(r: &PostureReport) -> Vec<(&'static str, &Section)> {
    let mut v = vec![
        ("SPF", &r.spf.section),
        ("DMARC", &r.dmarc.section),
        ("DKIM", &r.dkim.section),
        ("MTA-STS", &r.mta_sts.section),
        ("TLS-RPT", &r.tls_rpt.section),
        ("DANE", &r.dane.section),
        ("Reverse DNS", &r.rdns.section),
    ];
    if let Some(b) = &r.dnsbl {
        v.push(("Blocklists", &b.section));
    }
    v
}

fn verdict(r: &PostureReport) -> PostureVerdict {
    let mut errors = 0;
    let mut warnings = 0;
    let mut failed = Vec::new();
    for (name, s) in sections(r) {
        let e = count(s, Severity::Error);
        errors += e;
        warnings += count(s, Severity::Warning);
        if e > 0 {
            failed.push(name);
        }
    }
    let summary = if failed.is_empty() {
        format!("no errors, {warnings} warning(s)")
    } else {
        format!(
            "{errors} error(s) in {}, {warnings} warning(s)",
            failed.join(", ")
        )
    };
    PostureVerdict {
        passed: errors == 0,
        errors,
        warnings,
        summary,
    }
}

fn count(s: &Section, sev: Severity) -> usize {
    s.findings.iter().filter(|f| f.severity == sev).count()
}

/// `versioned_txt` into a section: the records are stored; a failed lookup becomes the
/// section's finding and closes it (None: the check stops there).
pub async fn section_records(
    dns: &Dns,
    s: &mut Section,
    name: &str,
    version: &str,
    what: &str,
) -> Option<Vec<String>> {
    match dns.versioned_txt(name, version).await {
        Ok(r) => {
            s.records.clone_from(&r);
            Some(r)
        }
        Err(e) => {
            s.push(dns_finding(&e, what));
            s.close(false);
            None
        }
    }
}

/// A lookup that failed (not an absent record): the check cannot conclude.
pub fn dns_finding(e: &DnsFailure, what: &str) -> Finding {
    Finding::new(
        Severity::Error,
        Category::DnsFailure,
        Layer::Dns,
        format!("cannot read the {what}: {} ({})", e.message, e.query),
        vec![
            "Retry; if it persists, check the domain's name servers (dig +trace) and the resolver."
                .to_string(),
        ],
    )
}
