//! DNS for the mail path: a hickory resolver (the system's, or one server the user named) and
//! the lookups `trace` needs, each returning typed data or a `DnsFailure` that says which of
//! the DNS failure modes it was (NXDOMAIN, no records, SERVFAIL, refused, timeout, network).
//!
//! Every lookup is bounded twice: hickory's own per-request timeout and attempts, and an outer
//! deadline here, so a resolver that never answers cannot hold a trace.

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{ResolverBuilder, TokioResolver};
use mxtrace_proto::model::{AddressInfo, DnsFailure, DnsReason};
use mxtrace_proto::spec::{parse_resolver, Family, Field, Naming, RunSetting, ValueError};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

mod secure;
pub use secure::{SecureDns, Tlsa, TlsaAnswer};

/// Retries after a failed request (hickory's `attempts`): one, so a lost UDP packet is not a
/// failure, and a dead resolver costs at most two timeouts.
const ATTEMPTS: usize = 1;

/// Which DNS server to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolverChoice {
    /// /etc/resolv.conf (hickory's system-config).
    System,
    /// One server, over UDP with TCP for truncated answers.
    Server(SocketAddr),
}

impl ResolverChoice {
    pub fn describe(&self) -> String {
        match self {
            ResolverChoice::System => "system (/etc/resolv.conf)".to_string(),
            ResolverChoice::Server(a) => a.to_string(),
        }
    }
}

impl ResolverChoice {
    /// A named resolver (`IP`, `IP:PORT`, `[IPv6]:PORT`), or the system's.
    pub fn parse(resolver: Option<&str>) -> Result<ResolverChoice, ValueError> {
        Ok(match resolver {
            None => ResolverChoice::System,
            Some(r) => ResolverChoice::Server(parse_resolver(r)?),
        })
    }
}

/// The resolver could not be set up. `Display` names settings as flags; `describe` as the
/// front end does.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    SystemConfig(#[source] hickory_resolver::net::NetError),
    Build(#[source] hickory_resolver::net::NetError),
    /// The DNSSEC trust anchor file does not load (a usage error: the user's file).
    TrustAnchor {
        path: std::path::PathBuf,
        #[source]
        source: hickory_resolver::proto::serialize::txt::ParseError,
    },
}

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe(Naming::Flag))
    }
}

impl SetupError {
    pub fn describe(&self, naming: Naming) -> String {
        match self {
            SetupError::SystemConfig(e) => format!(
                "cannot read the system resolver configuration (/etc/resolv.conf): {e}; name a \
                 server with {}",
                Field::Resolver.set_to("IP").word(naming)
            ),
            SetupError::Build(e) => format!("cannot build the resolver: {e}"),
            SetupError::TrustAnchor { path, source } => format!(
                "{} {}: {source}",
                RunSetting::DnssecTrustAnchor.name(naming),
                path.display()
            ),
        }
    }
}

/// An MX record as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mx {
    pub preference: u16,
    /// The exchange without its trailing dot; empty for the root (a null MX, RFC 7505).
    pub exchange: String,
}

impl Mx {
    pub fn is_null(&self) -> bool {
        self.exchange.is_empty()
    }
}

/// The addresses of one name in one family, and the alias it went through, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addresses {
    pub addrs: Vec<IpAddr>,
    /// The canonical name when the queried name is a CNAME (the last target of the chain).
    pub cname: Option<String>,
}

#[derive(Clone)]
pub struct Dns {
    resolver: TokioResolver,
    /// Outer bound on one lookup, retries included.
    limit: Duration,
    choice: ResolverChoice,
}

/// PTR names checked for FCrDNS: a host with more is unusual, and each costs a lookup.
const MAX_PTR_NAMES: usize = 4;
/// Addresses of one host kept by `all_addresses`.
const MAX_ALL_ADDRS: usize = 8;

impl Dns {
    /// Builds the resolver. `timeout` is the per-request timeout; a lookup (with its retry and
    /// a TCP fallback) is cut off at about three times that.
    pub fn new(choice: ResolverChoice, timeout: Duration) -> Result<Dns, SetupError> {
        let mut builder = builder(&choice, timeout)?;
        builder.options_mut().cache_size = 256;
        let resolver = builder.build().map_err(SetupError::Build)?;
        Ok(Dns {
            resolver,
            limit: timeout * 3,
            choice,
        })
    }

    pub fn choice(&self) -> &ResolverChoice {
        &self.choice
    }

    /// The underlying resolver, for evaluators that do their own lookups through it (SPF's
    /// `check_host` in `posture::spf`), so they ask the same server with the same bounds.
    pub fn resolver(&self) -> &TokioResolver {
        &self.resolver
    }

    /// The CNAME target of `name`, if it is an alias (None when it is not).
    pub async fn cname(&self, name: &str) -> Result<Option<String>, DnsFailure> {
        let fq = fqdn(name, "CNAME")?;
        match self.bounded(&fq, RecordType::CNAME).await {
            Ok(lookup) => Ok(lookup.answers().iter().find_map(|r| match &r.data {
                RData::CNAME(c) => Some(strip_dot(&c.0)),
                _ => None,
            })),
            Err(e) if matches!(e.reason, DnsReason::NoRecords) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The MX records of `domain`, as published (unsorted).
    pub async fn mx(&self, domain: &str) -> Result<Vec<Mx>, DnsFailure> {
        let name = fqdn(domain, "MX")?;
        let lookup = self.bounded(&name, RecordType::MX).await?;
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => Some(Mx {
                    preference: mx.preference,
                    exchange: strip_dot(&mx.exchange),
                }),
                _ => None,
            })
            .collect())
    }

    /// The A (V4) or AAAA (V6) records of `host`, following CNAMEs.
    pub async fn addresses(&self, host: &str, family: Family) -> Result<Addresses, DnsFailure> {
        let rtype = match family {
            Family::V4 => RecordType::A,
            Family::V6 => RecordType::AAAA,
        };
        let name = fqdn(host, rtype_str(rtype))?;
        let lookup = self.bounded(&name, rtype).await?;
        let mut out = Addresses::default();
        for r in lookup.answers() {
            match &r.data {
                RData::A(a) if rtype == RecordType::A => out.addrs.push(IpAddr::V4(a.0)),
                RData::AAAA(a) if rtype == RecordType::AAAA => out.addrs.push(IpAddr::V6(a.0)),
                RData::CNAME(c) => out.cname = Some(strip_dot(&c.0)),
                _ => {}
            }
        }
        if out.addrs.is_empty() {
            // A CNAME to a name without addresses comes back as an answer without them.
            return Err(DnsFailure::new(
                DnsReason::NoRecords,
                format!("{name} {}", rtype_str(rtype)),
                "no record of this type".to_string(),
            ));
        }
        Ok(out)
    }

    /// The TXT records of `name`, each one's strings joined as RFC 7208 3.3 says (no
    /// separator), non-UTF-8 bytes replaced. Bounded: at most 32 records of 4 KiB each.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsFailure> {
        const MAX_RECORDS: usize = 32;
        const MAX_RECORD: usize = 4096;
        let fq = fqdn(name, "TXT")?;
        let lookup = self.bounded(&fq, RecordType::TXT).await?;
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(t) => {
                    let mut bytes = Vec::new();
                    for part in t.txt_data.iter() {
                        bytes.extend_from_slice(part);
                        if bytes.len() > MAX_RECORD {
                            bytes.truncate(MAX_RECORD);
                            break;
                        }
                    }
                    Some(String::from_utf8_lossy(&bytes).into_owned())
                }
                _ => None,
            })
            .take(MAX_RECORDS)
            .collect())
    }

    /// The PTR names of `ip`, without trailing dots.
    pub async fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, DnsFailure> {
        let name = Name::from(ip);
        let lookup = self.bounded(&name, RecordType::PTR).await?;
        let names: Vec<String> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::PTR(p) => Some(strip_dot(&p.0)),
                _ => None,
            })
            .collect();
        if names.is_empty() {
            return Err(DnsFailure::new(
                DnsReason::NoRecords,
                format!("{name} PTR"),
                "no PTR record".to_string(),
            ));
        }
        Ok(names)
    }

    /// Reverse DNS of `ip` and whether a PTR name resolves back to it (FCrDNS).
    pub async fn reverse_check(&self, ip: IpAddr) -> AddressInfo {
        let mut info = AddressInfo {
            ip: ip.to_string(),
            ptr: Vec::new(),
            fcrdns: None,
            ptr_error: None,
        };
        match self.ptr(ip).await {
            Ok(names) => {
                let family = if ip.is_ipv4() { Family::V4 } else { Family::V6 };
                let mut unknown = false;
                let mut confirmed = false;
                for name in names.iter().take(MAX_PTR_NAMES) {
                    match self.addresses(name, family).await {
                        Ok(a) if a.addrs.contains(&ip) => {
                            confirmed = true;
                            break;
                        }
                        Ok(_) => {}
                        Err(e)
                            if matches!(e.reason, DnsReason::Nxdomain | DnsReason::NoRecords) => {}
                        Err(_) => unknown = true,
                    }
                }
                info.fcrdns = if confirmed {
                    Some(true)
                } else if unknown {
                    None
                } else {
                    Some(false)
                };
                info.ptr = names;
            }
            Err(e) => {
                if matches!(e.reason, DnsReason::Nxdomain | DnsReason::NoRecords) {
                    info.fcrdns = Some(false);
                }
                info.ptr_error = Some(e);
            }
        }
        info
    }

    /// The addresses of `host` in both families, IPv4 first (at most `MAX_ALL_ADDRS`), whatever failed.
    pub async fn all_addresses(&self, host: &str) -> Vec<IpAddr> {
        let mut out = Vec::new();
        for f in [Family::V4, Family::V6] {
            if let Ok(a) = self.addresses(host, f).await {
                out.extend(a.addrs);
            }
        }
        out.truncate(MAX_ALL_ADDRS);
        out
    }

    /// The TXT records at `name` that start with `version` (case-insensitive, then `;`, a space
    /// or the end); none when the name or type does not exist.
    pub async fn versioned_txt(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Vec<String>, DnsFailure> {
        let records = match self.txt(name).await {
            Ok(r) => r,
            Err(e) if e.is_absent() => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(records
            .into_iter()
            .filter(|r| starts_with_version(r, version))
            .collect())
    }

    /// The TLSA records at `name` (RFC 6698 2), at most 32.
    pub async fn tlsa(&self, name: &str) -> Result<Vec<Tlsa>, DnsFailure> {
        const MAX_RECORDS: usize = 32;
        let fq = fqdn(name, "TLSA")?;
        let lookup = self.bounded(&fq, RecordType::TLSA).await?;
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TLSA(t) => Some(Tlsa::from(t)),
                _ => None,
            })
            .take(MAX_RECORDS)
            .collect())
    }

    /// Whether the zone holding `name` publishes a DNSKEY: the zone apex is the owner of the
    /// SOA that the answer for `name` SOA carries (in the answer or the authority section).
    pub(crate) async fn zone_has_dnskey(&self, name: &str) -> Result<bool, DnsFailure> {
        let fq = fqdn(name, "SOA")?;
        let apex = match tokio::time::timeout(
            self.limit,
            self.resolver.lookup(fq.clone(), RecordType::SOA),
        )
        .await
        {
            Ok(Ok(l)) => l.answers().first().map(|r| r.name.clone()),
            Ok(Err(NetError::Dns(DnsError::NoRecordsFound(nr)))) => nr.soa.map(|s| s.name.clone()),
            Ok(Err(e)) => return Err(classify(&e, format!("{fq} SOA"))),
            Err(_) => return Err(self.timed_out(format!("{fq} SOA"))),
        };
        let apex = apex.unwrap_or(fq);
        match self.bounded(&apex, RecordType::DNSKEY).await {
            Ok(l) => Ok(!l.answers().is_empty()),
            Err(e) if matches!(e.reason, DnsReason::NoRecords | DnsReason::Nxdomain) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn timed_out(&self, query: String) -> DnsFailure {
        DnsFailure::new(
            DnsReason::Timeout,
            query,
            format!(
                "no answer within {}",
                humantime::format_duration(self.limit)
            ),
        )
    }

    async fn bounded(
        &self,
        name: &Name,
        rtype: RecordType,
    ) -> Result<hickory_resolver::lookup::Lookup, DnsFailure> {
        let query = format!("{name} {}", rtype_str(rtype));
        match tokio::time::timeout(self.limit, self.resolver.lookup(name.clone(), rtype)).await {
            Ok(Ok(l)) => Ok(l),
            Ok(Err(e)) => Err(classify(&e, query)),
            Err(_) => Err(self.timed_out(query)),
        }
    }
}

/// A resolver builder for `choice` with the bounds every lookup has (shared by `Dns` and the
/// validating `SecureDns`).
fn builder(
    choice: &ResolverChoice,
    timeout: Duration,
) -> Result<ResolverBuilder<TokioRuntimeProvider>, SetupError> {
    let provider = TokioRuntimeProvider::default();
    let mut builder = match choice {
        ResolverChoice::System => {
            TokioResolver::builder(provider).map_err(SetupError::SystemConfig)?
        }
        ResolverChoice::Server(addr) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![ns]),
                provider,
            )
        }
    };
    let opts = builder.options_mut();
    opts.timeout = timeout;
    opts.attempts = ATTEMPTS;
    // The mail path is DNS: a sending MTA does not read /etc/hosts for MX targets.
    opts.use_hosts_file = ResolveHosts::Never;
    opts.preserve_intermediates = true;
    Ok(builder)
}

/// A name as an absolute DNS name (trailing dot), so no search list is applied.
pub(crate) fn fqdn(s: &str, rtype: &str) -> Result<Name, DnsFailure> {
    let t = s.trim().trim_end_matches('.');
    Name::from_ascii(format!("{t}.")).map_err(|e| {
        DnsFailure::new(
            DnsReason::Other,
            format!("{s} {rtype}"),
            format!("not a valid DNS name: {e}"),
        )
    })
}

fn strip_dot(n: &Name) -> String {
    let s = n.to_ascii();
    s.strip_suffix('.').unwrap_or(&s).to_string()
}

pub(crate) fn rtype_str(t: RecordType) -> &'static str {
    match t {
        RecordType::MX => "MX",
        RecordType::A => "A",
        RecordType::AAAA => "AAAA",
        RecordType::PTR => "PTR",
        RecordType::CNAME => "CNAME",
        RecordType::TXT => "TXT",
        RecordType::TLSA => "TLSA",
        RecordType::SOA => "SOA",
        RecordType::DNSKEY => "DNSKEY",
        _ => "?",
    }
}

/// Tells the DNS failure modes apart. hickory 0.26: NXDOMAIN and NODATA arrive as
/// `DnsError::NoRecordsFound` with the response code; other error codes as
/// `DnsError::ResponseCode`; a request that got no answer as `NetError::Timeout`.
pub(crate) fn classify(e: &NetError, query: String) -> DnsFailure {
    let (reason, message) = match e {
        NetError::Dns(DnsError::NoRecordsFound(nr))
            if nr.response_code == ResponseCode::NXDomain =>
        {
            (
                DnsReason::Nxdomain,
                "the name does not exist (NXDOMAIN)".to_string(),
            )
        }
        NetError::Dns(DnsError::NoRecordsFound(_)) => (
            DnsReason::NoRecords,
            "the name exists but has no record of this type (NOERROR, no data)".to_string(),
        ),
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => (
            DnsReason::Servfail,
            "the resolver answered SERVFAIL".to_string(),
        ),
        NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => (
            DnsReason::Refused,
            "the resolver refused the query (REFUSED)".to_string(),
        ),
        NetError::Dns(DnsError::ResponseCode(code)) => {
            (DnsReason::Other, format!("the resolver answered {code}"))
        }
        NetError::Timeout => (
            DnsReason::Timeout,
            "no answer from the resolver (timed out)".to_string(),
        ),
        NetError::Io(io) => (
            DnsReason::Network,
            format!("cannot reach the resolver: {io}"),
        ),
        NetError::NoConnections => (
            DnsReason::Network,
            "cannot reach the resolver (no connection available)".to_string(),
        ),
        other => (DnsReason::Other, other.to_string()),
    };
    DnsFailure::new(reason, query, message)
}

fn starts_with_version(record: &str, version: &str) -> bool {
    let t = record.trim_start();
    let head = t.get(..version.len());
    let rest = t.get(version.len()..).unwrap_or("");
    head.is_some_and(|h| h.eq_ignore_ascii_case(version))
        && (rest.is_empty() || rest.starts_with([';', ' ', '\t']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_records() {
        assert!(starts_with_version("v=DMARC1; p=none", "v=DMARC1"));
        assert!(starts_with_version("V=spf1 -all", "v=spf1"));
        assert!(!starts_with_version("v=spf10 -all", "v=spf1"));
    }

    #[test]
    fn resolver_values() {
        assert_eq!(
            parse_resolver("127.0.0.1").unwrap(),
            "127.0.0.1:53".parse().unwrap()
        );
        assert_eq!(
            parse_resolver("127.0.0.1:5353").unwrap(),
            "127.0.0.1:5353".parse().unwrap()
        );
        assert_eq!(parse_resolver("::1").unwrap(), "[::1]:53".parse().unwrap());
        assert_eq!(
            parse_resolver("[::1]:5353").unwrap(),
            "[::1]:5353".parse().unwrap()
        );
        for bad in [
            "",
            "dns.contoso.test",
            "127.0.0.1:0",
            "127.0.0.1:x",
            "1.2.3",
        ] {
            assert!(parse_resolver(bad).is_err(), "{bad:?}");
        }
    }
}
