//! A module's allowlist: the exporter is not an open SMTP proxy, so a scrape may name only the
//! targets its module lists. Names match glob patterns as scenario files' `mx_matches` does
//! (`*` any run of characters, dots included, `?` one character), so `*.contoso.com` covers every name below contoso.com but not contoso.com
//! itself); addresses match CIDR blocks (RFC 4632) or single addresses. A name never matches a
//! CIDR (nothing is resolved to decide) and an address never matches a name pattern.

use crate::scenario_file::glob_match;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// Lowercase, no trailing dot.
    Name(String),
    Net {
        net: IpAddr,
        prefix: u8,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist(Vec<Entry>);

/// An allowlist entry that is neither a name pattern nor an address block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entry:?}: {why}")]
pub struct AllowError {
    pub entry: String,
    pub why: &'static str,
}

impl Allowlist {
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Allowlist, AllowError> {
        entries
            .iter()
            .map(|e| parse_entry(e.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map(Allowlist)
    }

    /// True when `host` (a name or an IP address, as a target names it) is listed.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        match host.parse::<IpAddr>() {
            Ok(ip) => self.0.iter().any(|e| match e {
                Entry::Net { net, prefix } => in_block(ip, *net, *prefix),
                Entry::Name(_) => false,
            }),
            Err(_) => {
                let host = host.to_ascii_lowercase();
                self.0.iter().any(|e| match e {
                    Entry::Name(p) => glob_match(p, &host),
                    Entry::Net { .. } => false,
                })
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn parse_entry(s: &str) -> Result<Entry, AllowError> {
    let bad = |why| AllowError {
        entry: s.to_string(),
        why,
    };
    let t = s.trim();
    if let Some((addr, len)) = t.split_once('/') {
        let net: IpAddr = addr.parse().map_err(|_| bad("not an address before /"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = len
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| bad("prefix length out of range"))?;
        return Ok(Entry::Net { net, prefix });
    }
    if let Ok(ip) = t.parse::<IpAddr>() {
        let prefix = if ip.is_ipv4() { 32 } else { 128 };
        return Ok(Entry::Net { net: ip, prefix });
    }
    let name = t.trim_end_matches('.').to_ascii_lowercase();
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'*' | b'?'));
    if !ok {
        return Err(bad(
            "expected a host name pattern (contoso.com, *.contoso.com) or an address block \
             (192.0.2.0/24)",
        ));
    }
    if name.bytes().all(|b| b == b'*' || b == b'.') {
        return Err(bad("a pattern of only * would allow every name"));
    }
    Ok(Entry::Name(name))
}

fn in_block(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let (a, b, bits) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(a.to_bits()), u128::from(b.to_bits()), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (a.to_bits(), b.to_bits(), 128),
        _ => return false,
    };
    let shift = bits - u32::from(prefix);
    // A shift of 128 (prefix 0 of IPv6) would overflow: every address is in ::/0.
    shift >= 128 || (a >> shift) == (b >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_globs_and_addresses_match_blocks() {
        let a = Allowlist::parse(&[
            "contoso.com",
            "*.Contoso.com.",
            "192.0.2.0/24",
            "2001:db8::/32",
            "127.0.0.1",
        ])
        .unwrap();
        for ok in [
            "contoso.com",
            "CONTOSO.COM.",
            "mail.contoso.com",
            "a.b.contoso.com",
            "192.0.2.77",
            "2001:db8::25",
            "127.0.0.1",
        ] {
            assert!(a.allows(ok), "{ok} should be allowed");
        }
        for no in [
            "evilcontoso.com",
            "contoso.com.evil.example",
            "fabrikam.com",
            "192.0.3.1",
            "127.0.0.2",
            "2001:db9::1",
            "::ffff:192.0.2.1",
        ] {
            assert!(!a.allows(no), "{no} should be refused");
        }
        assert!(!Allowlist::default().allows("contoso.com"));
    }

    #[test]
    fn bad_entries_are_refused() {
        for bad in ["*", "*.*", "10.0.0.0/33", "x/8", "a b.com", "", "::/129"] {
            assert!(Allowlist::parse(&[bad]).is_err(), "{bad:?}");
        }
        let all6 = Allowlist::parse(&["::/0", "0.0.0.0/0"]).unwrap();
        assert!(all6.allows("2001:db8::1") && all6.allows("203.0.113.9"));
    }

    #[test]
    fn patterns_use_the_scenario_file_glob() {
        let a = Allowlist::parse(&["mx?.contoso.com", "*.mail.protection.outlook.com"]).unwrap();
        assert!(a.allows("mx1.contoso.com") && !a.allows("mx.contoso.com"));
        assert!(a.allows("contoso-com.mail.protection.outlook.com"));
    }
}
