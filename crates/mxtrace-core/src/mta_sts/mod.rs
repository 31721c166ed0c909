//! MTA-STS as a sending MTA applies it (RFC 8461): the policy a domain publishes, fetched over
//! HTTPS from `mta-sts.DOMAIN` (no redirects, a size cap, a deadline, the certificate
//! verified) or taken from the `--mta-sts-cache` file (`cache`), and its `mx:` patterns.
//! `trace` applies it to the MX walk; `dns` (the posture) judges it.
//!
//! The fetch is one HTTP/1.0 GET written here rather than an HTTP client crate: HTTP/1.0 rules
//! out chunked framing, so the body is the bytes up to the close, read with a cap; redirects
//! are refused by looking at the status (RFC 8461 3.3 forbids following them).

pub mod cache;

use cache::CachedPolicy;
use mxtrace_net::dns::Dns;
use mxtrace_net::tls::{
    client_config, SharedRecord, TlsConfigError, TlsOptions, VerifyFailure, VerifyMode,
};
use mxtrace_proto::model::posture::MtaStsPolicy;
use mxtrace_proto::model::DnsFailure;
use mxtrace_proto::record::{tag, tag_list};
use mxtrace_proto::spec::Naming;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// RFC 8461 3.3: senders may limit the policy's size; 64 KiB is the cap the RFC suggests.
pub const MAX_POLICY: usize = 64 * 1024;
const MAX_HEAD: usize = 16 * 1024;
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
    #[error("no complete answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    #[error(transparent)]
    Name(#[from] rustls_pki_types::InvalidDnsNameError),
    #[error("cannot connect to {ip} port {port}: {source}")]
    Connect {
        ip: IpAddr,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    /// The handshake failed; `verify` says why when the certificate was the reason.
    #[error("TLS failed: {}", describe_handshake(.verify.as_ref(), .source, Naming::Flag))]
    Handshake {
        verify: Option<VerifyFailure>,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Write(std::io::Error),
    #[error("reading the answer: {0}")]
    Read(#[source] std::io::Error),
    #[error("not an HTTP answer (no end of headers within 16 KiB)")]
    NotHttp,
    #[error(
        "answered with a redirect ({status}, to {to:?}), which senders must not follow (RFC \
         8461 3.3)"
    )]
    Redirect { status: String, to: String },
    #[error("answered {0:?}, not 200")]
    Status(String),
    #[error("the policy is over the {} KiB size cap", MAX_POLICY / 1024)]
    TooLarge,
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

impl FetchError {
    /// The message, naming settings (the CA file) as the front end does.
    pub fn describe(&self, naming: Naming) -> String {
        match self {
            FetchError::Tls(e) => e.describe(naming),
            FetchError::Handshake { verify, source } => format!(
                "TLS failed: {}",
                describe_handshake(verify.as_ref(), source, naming)
            ),
            e => e.to_string(),
        }
    }
}

fn describe_handshake(
    verify: Option<&VerifyFailure>,
    e: &std::io::Error,
    naming: Naming,
) -> String {
    verify.map_or_else(|| e.to_string(), |v| v.describe(naming))
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

/// GET the policy: resolve the host with `dns`, connect, verify the certificate strictly
/// (RFC 8461 3.3), one request, the body capped at `MAX_POLICY`; all within `opts.timeout`.
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
    match tokio::time::timeout(opts.timeout, get(host, ip, opts)).await {
        Ok(r) => r,
        Err(_) => Err(FetchError::Timeout(opts.timeout)),
    }
}

/// The probes' TLS configuration with strict verification (RFC 8461 3.3: the policy host's
/// certificate must be valid for its name and chain to a trusted root).
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

async fn get(host: &str, ip: IpAddr, opts: &FetchOptions) -> Result<String, FetchError> {
    let (config, record) = tls_config(opts)?;
    let name = ServerName::try_from(host.to_string())?;
    let port = opts.https_port;
    let tcp = TcpStream::connect(SocketAddr::new(ip, port))
        .await
        .map_err(|source| FetchError::Connect { ip, port, source })?;
    let mut stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|source| FetchError::Handshake {
            verify: record
                .lock()
                .ok()
                .and_then(|r| r.result.clone())
                .and_then(Result::err),
            source,
        })?;
    let request = format!(
        "GET /.well-known/mta-sts.txt HTTP/1.0\r\nHost: {host}\r\nUser-Agent: mxtrace\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(FetchError::Write)?;
    let mut buf = Vec::new();
    let limit = (MAX_HEAD + MAX_POLICY + 1) as u64;
    match (&mut stream).take(limit).read_to_end(&mut buf).await {
        Ok(_) => {}
        // Servers often close without close_notify after a complete answer.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => {}
        Err(e) => return Err(FetchError::Read(e)),
    }
    response_body(&buf)
}

/// The body of a 200 answer; a redirect, another status or an oversized body is an error.
fn response_body(buf: &[u8]) -> Result<String, FetchError> {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .filter(|p| *p <= MAX_HEAD)
        .ok_or(FetchError::NotHttp)?;
    let head = String::from_utf8_lossy(buf.get(..split).unwrap_or_default());
    let body = buf.get(split + 4..).unwrap_or_default();
    let status = head.lines().next().unwrap_or("");
    let code = status.split_whitespace().nth(1).unwrap_or("");
    if code.starts_with('3') {
        let to = head
            .lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case("location"))
            })
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default();
        return Err(FetchError::Redirect {
            status: status.to_string(),
            to,
        });
    }
    if code != "200" {
        return Err(FetchError::Status(status.to_string()));
    }
    if body.len() > MAX_POLICY {
        return Err(FetchError::TooLarge);
    }
    Ok(String::from_utf8_lossy(body).into_owned())
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
        assert_eq!(
            response_body(b"HTTP/1.1 200 OK\r\n\r\nbody").unwrap(),
            "body"
        );
        assert!(response_body(b"HTTP/1.1 302 Found\r\nLocation: x\r\n\r\n")
            .unwrap_err()
            .to_string()
            .contains("redirect"));
        assert!(response_body(b"HTTP/1.1 404 Not Found\r\n\r\n").is_err());
        assert!(response_body(b"garbage").is_err());
    }
}
