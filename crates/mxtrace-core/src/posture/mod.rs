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
pub mod model;
pub mod mta_sts;
pub mod mta_sts_cache;
pub mod rdns;
pub mod render;
pub mod spf;
pub mod tls_rpt;

use crate::dns::{Dns, ResolverChoice, SecureDns, SetupError};
use crate::model::{Category, DnsFailure, DnsReason, Layer};
use model::{Finding, PostureReport, PostureVerdict, Section, Severity};
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
    pub mta_sts: mta_sts::FetchOptions,
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
            mta_sts: mta_sts::FetchOptions::default(),
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
    Tls(#[from] crate::tls::TlsConfigError),
}

/// Runs every check. Lookups go only to the resolver chosen.
pub async fn posture(opts: &PostureOptions) -> Result<PostureReport, PostureError> {
    let domain = opts.domain.clone();
    if domain.is_empty() || domain.len() > 253 || domain.parse::<IpAddr>().is_ok() {
        return Err(PostureError::BadDomain(domain));
    }
    if opts.mta_sts.ca_file.is_some() {
        // A bad --tls-ca-file is the user's error (exit 2), not a finding about the domain.
        mta_sts::tls_config(&opts.mta_sts)?;
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
        Err(e) if is_absent(&e) => (Vec::new(), None),
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

/// NXDOMAIN or no data: the record is not published (not a failure of the lookup).
pub fn is_absent(e: &DnsFailure) -> bool {
    matches!(e.reason, DnsReason::Nxdomain | DnsReason::NoRecords)
}

/// The TXT records at `name` that start with `version` (case-insensitive, then `;`, a space
/// or the end); none when the name or type does not exist.
pub async fn versioned_txt(
    dns: &Dns,
    name: &str,
    version: &str,
) -> Result<Vec<String>, DnsFailure> {
    let records = match dns.txt(name).await {
        Ok(r) => r,
        Err(e) if is_absent(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(records
        .into_iter()
        .filter(|r| starts_with_version(r, version))
        .collect())
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
    match versioned_txt(dns, name, version).await {
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

fn starts_with_version(record: &str, version: &str) -> bool {
    let t = record.trim_start();
    let head = t.get(..version.len());
    let rest = t.get(version.len()..).unwrap_or("");
    head.is_some_and(|h| h.eq_ignore_ascii_case(version))
        && (rest.is_empty() || rest.starts_with([';', ' ', '\t']))
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

/// A tag=value list (RFC 6376 3.2, used by DMARC, DKIM keys, MTA-STS and TLS-RPT records):
/// names lower-cased, values trimmed; an error names the first malformed tag.
pub fn tag_list(record: &str) -> Result<Vec<(String, String)>, String> {
    const MAX_TAGS: usize = 64;
    let mut out = Vec::new();
    for part in record.split(';').take(MAX_TAGS) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((name, value)) = part.split_once('=') else {
            return Err(format!("{part:?} is not a tag=value pair"));
        };
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("{name:?} is not a tag name"));
        }
        out.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(out)
}

/// The value of tag `name` in a parsed list.
pub fn tag<'a>(tags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    tags.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_lists_and_versions() {
        let t = tag_list("v=DMARC1; p=reject ; rua=mailto:a@b.c;").unwrap();
        assert_eq!(tag(&t, "p"), Some("reject"));
        assert_eq!(tag(&t, "rua"), Some("mailto:a@b.c"));
        assert!(tag_list("v=DMARC1; p reject").is_err());
        assert!(starts_with_version("v=DMARC1; p=none", "v=DMARC1"));
        assert!(starts_with_version("V=spf1 -all", "v=spf1"));
        assert!(!starts_with_version("v=spf10 -all", "v=spf1"));
    }
}
