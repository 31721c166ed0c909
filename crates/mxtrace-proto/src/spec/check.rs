//! Checks of what a user typed or wrote in a file, shared by every front end. Errors say what
//! is wrong with a value; the front end says where it was (a flag, or FILE:LINE:COL).

use crate::model::diff::Threshold;
use crate::model::{PathContext, Scenario};
use std::net::IpAddr;
use std::time::Duration;

/// Why a value is not accepted. The front end prefixes the name of the flag or key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    #[error("{value:?}: not a valid mail address")]
    Address { value: String },
    #[error("{value:?}: not a valid mail address (expected local@domain)")]
    AddressForm { value: String },
    #[error("{value:?}: expected \"Name: value\"")]
    HeaderForm { value: String },
    #[error("{value:?}: not a valid header line")]
    Header { value: String },
    #[error("{value:?}: not a valid EHLO name")]
    Ehlo { value: String },
    #[error("{value:?}: not a valid TLS server name")]
    TlsName { value: String },
    #[error("{value:?}: expected IP, IP:PORT or [IPv6]:PORT")]
    Resolver { value: String },
    #[error("{value:?}: expected a tenant name such as contoso, contoso.onmicrosoft.com or contoso.mail.onmicrosoft.com")]
    Tenant { value: String },
    #[error("{value}: scenario {scenario} has one hop (B and D have two)")]
    HopNotInScenario { value: u8, scenario: Scenario },
    #[error("{value}: scenarios have hop 1 or 2")]
    Hop { value: u8 },
    #[error("control characters")]
    ControlCharacters,
    #[error("{value:?}: {why}")]
    Url { value: String, why: &'static str },
    #[error(
        "{value:?}: expected an Entra ID tenant ID (a GUID) or domain (contoso.onmicrosoft.com)"
    )]
    EntraTenant { value: String },
    #[error("{value:?}: not a valid OAuth client ID or scope")]
    OAuthValue { value: String },
}

/// A target or domain that cannot be one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    #[error("invalid target {target:?}: {why}")]
    Target { target: String, why: &'static str },
    #[error("invalid domain {domain:?}: expected a mail domain such as contoso.com")]
    Domain { domain: String },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    #[error("{0} (examples: 500ms, 10s, 1m)")]
    Syntax(#[source] humantime::DurationError),
    #[error("must be more than zero")]
    Zero,
}

pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let d = humantime::parse_duration(s).map_err(DurationError::Syntax)?;
    if d.is_zero() {
        return Err(DurationError::Zero);
    }
    Ok(d)
}

/// A scenario letter, any case.
pub fn parse_scenario(s: &str) -> Result<Scenario, UnknownScenario> {
    match s.trim().to_ascii_uppercase().as_str() {
        "A" => Ok(Scenario::A),
        "B" => Ok(Scenario::B),
        "C" => Ok(Scenario::C),
        "D" => Ok(Scenario::D),
        _ => Err(UnknownScenario),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected A, B, C or D")]
pub struct UnknownScenario;

/// A scenario and hop, checked: hop 2 exists only in B and D. Shared by `probe --scenario/--hop`
/// and scenario files.
pub fn path_context(
    scenario: Option<Scenario>,
    hop: Option<u8>,
) -> Result<PathContext, ValueError> {
    let Some(scenario) = scenario else {
        return Ok(PathContext::default());
    };
    let hop = hop.unwrap_or(1);
    match hop {
        1 => {}
        2 if matches!(scenario, Scenario::B | Scenario::D) => {}
        2 => return Err(ValueError::HopNotInScenario { value: 2, scenario }),
        _ => return Err(ValueError::Hop { value: hop }),
    }
    Ok(PathContext {
        scenario: Some(scenario),
        hop: Some(hop),
    })
}

/// Splits `HOST`, `HOST:PORT`, `[v6]`, `[v6]:PORT` or a bare IPv6 address.
pub fn parse_target(s: &str, default_port: u16) -> Result<(String, u16), TargetError> {
    let s = s.trim();
    let bad = |why: &'static str| TargetError::Target {
        target: s.to_string(),
        why,
    };
    if s.is_empty() {
        return Err(bad("empty"));
    }
    if let Ok(ip) = s.parse::<std::net::Ipv6Addr>() {
        return Ok((ip.to_string(), default_port));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(|| bad("missing ']'"))?;
        h.parse::<std::net::Ipv6Addr>()
            .map_err(|_| bad("not an IPv6 address inside [ ]"))?;
        match after {
            "" => (h, None),
            p => (
                h,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("expected :PORT after ]"))?,
                ),
            ),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| bad("port must be 1-65535"))?,
    };
    if host.parse::<IpAddr>().is_err() && !valid_hostname(host) {
        return Err(bad("not a host name or IP address"));
    }
    Ok((host.to_string(), port))
}

/// Validates a mail domain.
pub fn check_domain(domain: &str) -> Result<String, TargetError> {
    let d = domain.trim().trim_end_matches('.');
    if d.parse::<IpAddr>().is_ok() || !valid_hostname(d) {
        return Err(TargetError::Domain {
            domain: domain.to_string(),
        });
    }
    Ok(d.to_string())
}

/// Letters, digits, hyphens and dots, labels of 1-63, 253 in all (RFC 1123), an optional
/// trailing dot; underscores are accepted because real MX targets have them.
fn valid_hostname(h: &str) -> bool {
    let h = h.strip_suffix('.').unwrap_or(h);
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// An address for MAIL FROM / RCPT TO: no line breaks or spaces (they would inject commands),
/// at most 320 bytes (RFC 5321 4.5.3.1), `local@domain` (or empty for MAIL's null sender).
/// `postmaster` alone is accepted where `postmaster_ok` (RCPT, RFC 5321 4.5.1).
pub fn check_address(a: &str, allow_empty: bool, postmaster_ok: bool) -> Result<(), ValueError> {
    let inner = a.trim().trim_start_matches('<').trim_end_matches('>');
    if inner.is_empty() && allow_empty {
        return Ok(());
    }
    if inner.len() > 320
        || inner
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b == b'<' || b == b'>')
    {
        return Err(ValueError::Address {
            value: a.to_string(),
        });
    }
    match inner.rsplit_once('@') {
        Some((l, d)) if !l.is_empty() && !d.is_empty() => Ok(()),
        None if inner.eq_ignore_ascii_case("postmaster") && postmaster_ok => Ok(()),
        _ => Err(ValueError::AddressForm {
            value: a.to_string(),
        }),
    }
}

pub(crate) fn check_header(h: &str) -> Result<(), ValueError> {
    let (name, _) = h.split_once(':').ok_or_else(|| ValueError::HeaderForm {
        value: h.to_string(),
    })?;
    let name_ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
    if !name_ok || h.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) || h.len() > 998 {
        return Err(ValueError::Header {
            value: h.to_string(),
        });
    }
    Ok(())
}

/// A resolver: `IP`, `IP:PORT`, `[IPv6]:PORT` or a bare IPv6 address; port 53 by default.
/// Only addresses: resolving the resolver's name would need a resolver.
pub fn parse_resolver(s: &str) -> Result<std::net::SocketAddr, ValueError> {
    let s = s.trim();
    let bad = || ValueError::Resolver {
        value: s.to_string(),
    };
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(std::net::SocketAddr::new(ip, 53));
    }
    let addr = s.parse::<std::net::SocketAddr>().map_err(|_| bad())?;
    if addr.port() == 0 {
        return Err(bad());
    }
    Ok(addr)
}

/// A latency threshold that is neither a positive percentage nor a duration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ThresholdError {
    #[error("{0:?}: expected a positive percentage such as 50%")]
    Percent(String),
    #[error(transparent)]
    Duration(#[from] DurationError),
}

/// `50%` or a duration (`200ms`).
pub fn parse_threshold(s: &str) -> Result<Threshold, ThresholdError> {
    let s = s.trim();
    if let Some(p) = s.strip_suffix('%') {
        return match p.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 => Ok(Threshold::Percent(v)),
            _ => Err(ThresholdError::Percent(s.to_string())),
        };
    }
    Ok(parse_duration(s).map(Threshold::Absolute)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = |s| parse_target(s, 25);
        assert_eq!(t("mx.contoso.com").unwrap(), ("mx.contoso.com".into(), 25));
        assert_eq!(
            t("mx.contoso.com:587").unwrap(),
            ("mx.contoso.com".into(), 587)
        );
        assert_eq!(t("192.0.2.10").unwrap(), ("192.0.2.10".into(), 25));
        assert_eq!(t("192.0.2.10:2525").unwrap(), ("192.0.2.10".into(), 2525));
        assert_eq!(t("[2001:db8::1]:465").unwrap(), ("2001:db8::1".into(), 465));
        assert_eq!(t("2001:db8::1").unwrap(), ("2001:db8::1".into(), 25));
        assert_eq!(t("[::1]").unwrap(), ("::1".into(), 25));
        for bad in [
            "", "mx:0", "mx:99999", "mx:abc", "[::1", "[mx]:25", "a b", "-x.com", "a..b",
        ] {
            assert!(t(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn addresses_cannot_inject_commands() {
        assert!(check_address("a@b\r\nRCPT TO:<c@d>", false, true).is_err());
        assert!(check_address("a b@c", false, true).is_err());
        assert!(check_address("nobody", false, true).is_err());
        assert!(check_address("postmaster", false, true).is_ok());
        assert!(check_address("postmaster", true, false).is_err());
        assert!(check_address("<user@contoso.com>", false, true).is_ok());
        assert!(check_address("<>", true, false).is_ok());
        assert!(check_address("", true, false).is_ok());
        assert!(check_header("X-Test: a\r\nBcc: x@y").is_err());
        assert!(check_header("no colon").is_err());
        assert!(check_header("X-Test: fine").is_ok());
    }
}
