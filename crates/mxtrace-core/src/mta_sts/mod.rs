//! MTA-STS as a sending MTA applies it (RFC 8461): the policy a domain publishes, fetched over
//! HTTPS from `mta-sts.DOMAIN` (no redirects, a size cap, a deadline, the certificate
//! verified) or taken from the `--mta-sts-cache` file (`cache`), and its `mx:` patterns.
//! `trace` applies it to the MX walk; `dns` (the posture) judges it.
//!
//! The fetch goes through the engine's one HTTPS client (`mxtrace_net::http`, hyper), with
//! the token endpoints' guarantees: strict verification, no redirects, a cap, a deadline.

pub mod cache;

use cache::CachedPolicy;
use mxtrace_net::dns::Dns;
use mxtrace_net::http::{self, HttpError, HttpOptions, Request};
use mxtrace_net::tls::{client_config, SharedRecord, TlsConfigError, TlsOptions, VerifyMode};
use mxtrace_proto::model::posture::MtaStsPolicy;
use mxtrace_proto::model::DnsFailure;
use mxtrace_proto::record::{tag, tag_list};
use mxtrace_proto::spec::Naming;
use rustls::ClientConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// RFC 8461 3.3: senders may limit the policy's size; 64 KiB is the cap the RFC suggests.
pub const MAX_POLICY: usize = 64 * 1024;
/// RFC 8461 3.2: max_age is at most 31557600 seconds (about a year).
const MAX_AGE_LIMIT: u64 = 31_557_600;

/// How the policy is fetched (RFC 8461 3.3).
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// 443; labs and tests serve the policy host on another port.
    pub https_port: u16,
    /// The whole fetch, connect to last byte.
    pub timeout: Duration,
    /// Extra trust anchors (PEM) beside the public roots, as `--tls-ca-file` for probes.
    pub ca_file: Option<PathBuf>,
    /// `--mta-sts-cache FILE`: policies kept between runs (`mta_sts_cache`).
    pub cache: Option<PathBuf>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            https_port: 443,
            timeout: Duration::from_secs(10),
            ca_file: None,
            cache: None,
        }
    }
}

/// A policy body that is not a valid policy (RFC 8461 3.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    #[error("no \"version: STSv1\" line")]
    NoVersion,
    #[error("mode {0:?} is not enforce, testing or none")]
    Mode(String),
    #[error("no valid max_age (0 to 31557600 seconds)")]
    MaxAge,
    #[error("no mx: line")]
    NoMx,
}

/// Why no valid policy was had (RFC 8461 3.3): the sender then goes on as without one.
/// `Display` names settings as flags; `describe` as the front end does.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The `_mta-sts` lookup failed (and nothing is cached).
    #[error("{}", .0.message)]
    Record(DnsFailure),
    #[error("{host} has no address")]
    NoAddress { host: String },
    /// The CA file (the probes' `tls_ca_file`) cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    #[error(
        "answered with a redirect ({status}, to {to:?}), which senders must not follow (RFC \
         8461 3.3)"
    )]
    Redirect { status: u16, to: String },
    #[error("answered {0}, not 200")]
    Status(u16),
    #[error("the policy is over the {} KiB size cap", MAX_POLICY / 1024)]
    TooLarge,
    /// Connecting, TLS, the deadline, or an answer that is not HTTP.
    #[error(transparent)]
    Http(HttpError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

impl FetchError {
    /// The message, naming settings (the CA file) as the front end does.
    pub fn describe(&self, naming: Naming) -> String {
        match self {
            FetchError::Tls(e) => e.describe(naming),
            e => e.to_string(),
        }
    }
}

/// The policy a sending MTA applies (RFC 8461 5), and where it came from.
#[derive(Debug, Clone)]
pub struct SenderPolicy {
    pub policy: MtaStsPolicy,
    /// The `_mta-sts` TXT id (of the cached entry, when the record is gone).
    pub id: Option<String>,
    /// The cached entry used, when the policy came from `--mta-sts-cache`.
    pub cached: Option<CachedPolicy>,
    /// What happened with the cache and the fetch, for the warnings.
    pub notes: Vec<String>,
}

/// The policy a sending MTA applies (RFC 8461 5.1): None without a `_mta-sts` record and no
/// valid cached policy; a valid cached policy under the same id without fetching; else the
/// policy fetched now (and cached), or the cached one when the fetch fails; an error when
/// the record exists but no valid policy was fetched and none is cached (the sender then
/// delivers as if there were no policy, RFC 8461 3.3).
pub async fn sender_policy(
    dns: &Dns,
    domain: &str,
    fetch: &FetchOptions,
) -> Result<Option<SenderPolicy>, FetchError> {
    let mut notes = Vec::new();
    let now = cache::now();
    let cached = cached_entry(fetch, domain, &mut notes).filter(|c| c.valid_at(now));
    let records = match dns
        .versioned_txt(&format!("_mta-sts.{domain}"), "v=STSv1")
        .await
    {
        Ok(r) => r,
        Err(e) => {
            let Some(c) = cached else {
                return Err(FetchError::Record(e));
            };
            notes.push(format!(
                "the _mta-sts lookup failed ({}): using the cached policy (id {})",
                e.message, c.id
            ));
            return Ok(Some(from_cache(c, notes)));
        }
    };
    if records.is_empty() {
        // RFC 8461 8.3: removing the record does not revoke a cached policy.
        return Ok(cached.map(|c| {
            notes.push(format!("no _mta-sts record now: the cached policy (id {}) stays in force until it expires (RFC 8461 8.3)", c.id));
            from_cache(c, notes)
        }));
    }
    let id = match records.as_slice() {
        [one] => record_id(one),
        _ => None,
    };
    if let Some(c) = cached
        .clone()
        .filter(|c| id.as_deref() == Some(c.id.as_str()))
    {
        return Ok(Some(from_cache(c, notes)));
    }
    let fetched = fetch_policy(dns, &format!("mta-sts.{domain}"), fetch)
        .await
        .and_then(|b| Ok(parse_policy(&b)?));
    match (fetched, cached) {
        (Ok(policy), _) => {
            remember(fetch, domain, &policy, id.as_deref(), now, &mut notes);
            Ok(Some(SenderPolicy {
                policy,
                id,
                cached: None,
                notes,
            }))
        }
        (Err(why), Some(c)) => {
            notes.push(format!("the policy fetch failed ({why}): using the cached policy (id {}, fetched {}) as RFC 8461 5.1 says", c.id, c.fetched_at_text()));
            Ok(Some(from_cache(c, notes)))
        }
        (Err(why), None) => Err(why),
    }
}

fn from_cache(c: CachedPolicy, notes: Vec<String>) -> SenderPolicy {
    SenderPolicy {
        policy: c.policy.clone(),
        id: Some(c.id.clone()),
        cached: Some(c),
        notes,
    }
}

/// The cache entry for `domain`; a cache that cannot be read is a note, not a failure.
pub(crate) fn cached_entry(
    fetch: &FetchOptions,
    domain: &str,
    notes: &mut Vec<String>,
) -> Option<CachedPolicy> {
    let path = fetch.cache.as_deref()?;
    cache::lookup(path, domain)
        .map_err(|e| notes.push(e.to_string()))
        .ok()
        .flatten()
}

/// Stores a policy fetched now under its record's id (a policy without an id is not cached:
/// it could never be matched to a record).
pub(crate) fn remember(
    fetch: &FetchOptions,
    domain: &str,
    policy: &MtaStsPolicy,
    id: Option<&str>,
    now: u64,
    notes: &mut Vec<String>,
) {
    let (Some(path), Some(id)) = (fetch.cache.as_deref(), id) else {
        return;
    };
    let entry = CachedPolicy {
        policy: policy.clone(),
        id: id.to_string(),
        fetched_at: now,
        max_age: policy.max_age,
    };
    if let Err(e) = cache::store(path, domain, entry) {
        notes.push(e.to_string());
    }
}

/// An `mx:` pattern (RFC 8461 4.1): an exact host, or `*.` and one more label on the left.
pub fn mx_matches(patterns: &[String], host: &str) -> bool {
    matching_pattern(patterns, host).is_some()
}

/// The first pattern that matches `host`.
pub fn matching_pattern<'a>(patterns: &'a [String], host: &str) -> Option<&'a str> {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    patterns
        .iter()
        .find(|p| {
            let p = p.trim_end_matches('.').to_ascii_lowercase();
            match p.strip_prefix("*.") {
                Some(suffix) => h
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
                None => h == p,
            }
        })
        .map(String::as_str)
}

/// The policy body (RFC 8461 3.2): `version: STSv1`, `mode`, `max_age`, `mx` lines.
pub fn parse_policy(body: &str) -> Result<MtaStsPolicy, PolicyError> {
    let mut p = MtaStsPolicy::default();
    let mut version = false;
    let mut max_age = None;
    for line in body.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "version" => version = v == "STSv1",
            "mode" => p.mode = v.to_string(),
            "max_age" => max_age = v.parse::<u64>().ok().filter(|a| *a <= MAX_AGE_LIMIT),
            "mx" => p.mx.push(v.to_string()),
            _ => {}
        }
    }
    if !version {
        return Err(PolicyError::NoVersion);
    }
    if !matches!(p.mode.as_str(), "enforce" | "testing" | "none") {
        return Err(PolicyError::Mode(p.mode));
    }
    p.max_age = max_age.ok_or(PolicyError::MaxAge)?;
    if p.mx.is_empty() && p.mode != "none" {
        return Err(PolicyError::NoMx);
    }
    Ok(p)
}

/// GET the policy: resolve the host with `dns`, then one request through the engine's HTTPS
/// client (`mxtrace_net::http`): the certificate verified strictly (RFC 8461 3.3), no
/// redirect followed (3.3 forbids it), the body capped at `MAX_POLICY`, all within
/// `opts.timeout`.
pub async fn fetch_policy(
    dns: &Dns,
    host: &str,
    opts: &FetchOptions,
) -> Result<String, FetchError> {
    let addrs = dns.all_addresses(host).await;
    let ip = addrs
        .first()
        .copied()
        .ok_or_else(|| FetchError::NoAddress {
            host: host.to_string(),
        })?;
    let url = match opts.https_port {
        443 => format!("https://{host}/.well-known/mta-sts.txt"),
        port => format!("https://{host}:{port}/.well-known/mta-sts.txt"),
    };
    let http = HttpOptions {
        timeout: opts.timeout,
        max_body: MAX_POLICY,
        ca_file: opts.ca_file.clone(),
        connect_to: Some(SocketAddr::new(ip, opts.https_port)),
    };
    match http::request(Request::get(&url), &http).await {
        Ok(r) if r.status == 200 => Ok(String::from_utf8_lossy(&r.body).into_owned()),
        Ok(r) => Err(FetchError::Status(r.status)),
        Err(HttpError::Redirect { status, location }) => Err(FetchError::Redirect {
            status,
            to: location,
        }),
        Err(HttpError::TooLarge { .. }) => Err(FetchError::TooLarge),
        Err(HttpError::Config(e)) => Err(FetchError::Tls(e)),
        Err(e) => Err(FetchError::Http(e)),
    }
}

/// The probes' TLS configuration with strict verification (RFC 8461 3.3: the policy host's
/// certificate must be valid for its name and chain to a trusted root); checked once before
/// the posture's fetches, so a bad `--tls-ca-file` is a usage error.
pub fn tls_config(
    opts: &FetchOptions,
) -> Result<(Arc<ClientConfig>, SharedRecord), TlsConfigError> {
    client_config(&TlsOptions {
        verify: VerifyMode::Strict,
        ca_file: opts.ca_file.clone(),
        client_cert: None,
        client_key: None,
        classic_groups: false,
        dane: Vec::new(),
    })
}

/// The `id=` of a `v=STSv1` record: 1 to 32 letters and digits (RFC 8461 3.1).
pub(crate) fn record_id(record: &str) -> Option<String> {
    let tags = tag_list(record).ok()?;
    let id = tag(&tags, "id")?;
    (!id.is_empty() && id.len() <= 32 && id.chars().all(|c| c.is_ascii_alphanumeric()))
        .then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mx_patterns_match_one_label_under_a_wildcard() {
        let p = vec![
            "*.mail.protection.outlook.com".to_string(),
            "mx.fabrikam.test".to_string(),
        ];
        assert!(mx_matches(&p, "contoso-com.mail.protection.outlook.com."));
        assert!(mx_matches(&p, "MX.fabrikam.test"));
        assert!(!mx_matches(&p, "mail.protection.outlook.com"));
        assert!(!mx_matches(&p, "a.b.mail.protection.outlook.com"));
    }

    #[test]
    fn policies_and_answers() {
        let p = parse_policy("version: STSv1\r\nmode: testing\r\nmx: a.test\r\nmax_age: 86400\r\n")
            .unwrap();
        assert_eq!(
            (p.mode.as_str(), p.max_age, p.mx.len()),
            ("testing", 86400, 1)
        );
        assert!(parse_policy("version: STSv1\nmode: enforce\nmax_age: 1\n").is_err());
        assert!(parse_policy("mode: enforce\nmx: a\nmax_age: 1\n").is_err());
        assert!(parse_policy("version: STSv1\nmode: on\nmx: a\nmax_age: 1\n").is_err());
    }
}
