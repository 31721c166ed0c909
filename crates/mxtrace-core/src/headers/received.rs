//! The Received chain (RFC 5321 section 4.4), oldest hop first: who handed the message to
//! whom, how (protocol, TLS), when; the delay of each hop and clock skew; each hop placed as
//! Exchange Online, on-premises Exchange or third party; and from that, the delivery scenario
//! (A-D) the message took. mail-parser reads each stamp's grammar tolerantly (every clause is
//! optional); this module only interprets what it found.

use super::clip_to;
use mail_parser::{Host, Received};
use mxtrace_knowledge::is_eop_host;
use mxtrace_proto::model::headers::{Hop, HopTls, Leg, PathSummary, Zone};
use mxtrace_proto::model::{path_label, Scenario};

/// At most this many Received fields are read (a real chain has a dozen at most).
pub const MAX_HOPS: usize = 100;
const MAX_TEXT: usize = 200;
const MAX_RAW: usize = 1000;

/// Host-name suffixes of Exchange Online: EOP front ends (`*.mail.protection.outlook.com`,
/// `*.outbound.protection.outlook.com`, `*.mx.microsoft`), mailbox and transport servers
/// (`*.prod.outlook.com`, and the older `*.prod.exchangelabs.com` seen in
/// tests/data/headers/sisimai-lhost-office365-13.eml) and `*.outlook.office365.com` front ends.
/// Microsoft Learn: "Microsoft 365 URLs and IP address ranges" (Exchange Online rows).
const EXCHANGE_ONLINE_SUFFIXES: &[&str] = &[
    ".protection.outlook.com",
    ".prod.outlook.com",
    ".outlook.office365.com",
    ".prod.exchangelabs.com",
];

/// What Exchange Server (on-premises) writes in the `with` clause of its Received stamps:
/// `with Microsoft SMTP Server (version=TLS1_2, cipher=...) id 15.2.x.y` (Exchange 2007 and
/// later), `with Microsoft SMTPSVC(6.0.x)` (Exchange 2003 on IIS SMTP).
const EXCHANGE_SERVER_WITH: &[&str] = &["microsoft smtp server", "microsoft smtpsvc"];

/// The scenarios as zone sequences (the four Microsoft 365 delivery scenarios, README "Scenarios": A
/// third party -> Office 365; B third party -> on-premises MX -> Office 365; C Office 365 ->
/// third party; D Office 365 -> on-premises -> third party). A chain that stops at the
/// on-premises server shows only the first leg of B or D.
const SCENARIOS: &[(&[Zone], Scenario)] = {
    use Zone::*;
    &[
        (&[ThirdParty, ExchangeOnline], Scenario::A),
        (
            &[ThirdParty, OnPremisesExchange, ExchangeOnline],
            Scenario::B,
        ),
        (&[ThirdParty, OnPremisesExchange], Scenario::B),
        (&[ExchangeOnline, ThirdParty], Scenario::C),
        (
            &[ExchangeOnline, OnPremisesExchange, ThirdParty],
            Scenario::D,
        ),
        (&[ExchangeOnline, OnPremisesExchange], Scenario::D),
    ]
};

/// Builds the hops from the Received fields as they appear in the message (newest first),
/// each with its raw text.
pub fn hops(stamps: &[(&Received<'_>, String)]) -> Vec<Hop> {
    let mut out: Vec<Hop> = stamps
        .iter()
        .take(MAX_HOPS)
        .rev()
        .enumerate()
        .map(|(i, (r, raw))| hop(i + 1, r, raw))
        .collect();
    let mut prev: Option<i64> = None;
    for h in &mut out {
        if let (Some(p), Some(t)) = (prev, h.timestamp) {
            h.delay_s = Some(t.saturating_sub(p));
            h.clock_skew = t < p;
        }
        if h.timestamp.is_some() {
            prev = h.timestamp;
        }
    }
    out
}

fn hop(index: usize, r: &Received<'_>, raw: &str) -> Hop {
    let unfolded = unfold(raw);
    let by = r.by.as_ref().map(host);
    let with = with_text(r, &unfolded);
    let zone = zone_of_receiver(by.as_deref(), with.as_deref());
    let tls = (r.tls_version.is_some() || r.tls_cipher.is_some()).then(|| HopTls {
        version: r.tls_version.map(|v| v.to_string()),
        cipher: r.tls_cipher.as_deref().map(clip),
    });
    let timestamp = r.date.as_ref().map(|d| d.to_timestamp());
    Hop {
        index,
        from: r.from.as_ref().map(host),
        from_ip: r.from_ip.map(|ip| ip.to_string()),
        from_rdns: r.from_iprev.as_deref().map(clip),
        helo: r.helo.as_ref().map(host),
        by,
        with,
        tls,
        id: r.id.as_deref().map(clip),
        for_: r.for_.as_deref().map(clip),
        via: r.via.as_deref().map(clip),
        time: timestamp.map(rfc3339_utc),
        timestamp,
        delay_s: None,
        clock_skew: false,
        zone,
        raw: clip_to(&unfolded, MAX_RAW),
    }
}

/// The protocol mail-parser recognised, else the words after ` with ` in the stamp (Exchange
/// writes `with Microsoft SMTP Server`).
fn with_text(r: &Received<'_>, raw: &str) -> Option<String> {
    let lower = raw.to_ascii_lowercase();
    // mail-parser reads `with Microsoft SMTP Server` as SMTP: keep Exchange's own words.
    let exchange = EXCHANGE_SERVER_WITH
        .iter()
        .any(|m| lower.contains(&format!(" with {m}")));
    if let (Some(p), false) = (&r.with, exchange) {
        return Some(p.to_string());
    }
    let start = lower.find(" with ")? + " with ".len();
    let rest = raw.get(start..)?;
    let end = rest
        .find(['(', ';'])
        .into_iter()
        .chain(rest.to_ascii_lowercase().find(" id "))
        .chain(rest.to_ascii_lowercase().find(" for "))
        .min()
        .unwrap_or(rest.len());
    let text = rest.get(..end)?.trim();
    (!text.is_empty()).then(|| clip(text))
}

/// Places the receiving server of a hop from its name and the way it stamps.
pub fn zone_of_receiver(by: Option<&str>, with: Option<&str>) -> Zone {
    if let Some(z) = by.map(zone_of_host).filter(|z| *z == Zone::ExchangeOnline) {
        return z;
    }
    let exchange_server = with.is_some_and(|w| {
        let w = w.to_ascii_lowercase();
        EXCHANGE_SERVER_WITH.iter().any(|m| w.contains(m))
    });
    match by {
        _ if exchange_server => Zone::OnPremisesExchange,
        Some(b) if b.parse::<std::net::IpAddr>().is_err() && b.contains('.') => Zone::ThirdParty,
        Some(_) | None => Zone::Unknown,
    }
}

/// Exchange Online by name; any other DNS name is a third party (an on-premises Exchange
/// server cannot be told by its name alone).
pub fn zone_of_host(host: &str) -> Zone {
    let h = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let exo = is_eop_host(&h)
        || EXCHANGE_ONLINE_SUFFIXES
            .iter()
            .any(|s| h.len() > s.len() && h.ends_with(s));
    if exo {
        Zone::ExchangeOnline
    } else if h.contains('.') && h.parse::<std::net::IpAddr>().is_err() {
        Zone::ThirdParty
    } else {
        Zone::Unknown
    }
}

/// The path: zones, scenario and its legs, delays.
pub fn summarize(hops: &[Hop]) -> PathSummary {
    let (zones, changes) = zones(hops);
    let scenario = SCENARIOS
        .iter()
        .find(|(seq, _)| *seq == zones.as_slice())
        .map(|(_, s)| *s);
    let legs = scenario
        .map(|s| {
            changes
                .iter()
                .skip(1)
                .zip(1u8..)
                .map(|(at, n)| Leg {
                    hop: n,
                    label: path_label(s, n),
                    at: *at,
                })
                .collect()
        })
        .unwrap_or_default();
    let times: Vec<i64> = hops.iter().filter_map(|h| h.timestamp).collect();
    let total_delay_s = match (times.first(), times.last()) {
        (Some(a), Some(b)) if times.len() > 1 => Some(b.saturating_sub(*a)),
        _ => None,
    };
    let slowest_hop = hops
        .iter()
        .filter(|h| h.delay_s.is_some_and(|d| d > 0))
        .max_by_key(|h| h.delay_s)
        .map(|h| h.index);
    PathSummary {
        zones,
        scenario,
        legs,
        total_delay_s,
        slowest_hop,
        clock_skew: hops.iter().any(|h| h.clock_skew),
    }
}

/// The zones the message went through, in order, and the hop index where each began.
fn zones(hops: &[Hop]) -> (Vec<Zone>, Vec<usize>) {
    let sender = hops.first().and_then(|h| {
        h.from
            .as_deref()
            .or(h.helo.as_deref())
            .map(zone_of_host)
            .filter(|z| *z != Zone::Unknown)
    });
    let mut zones: Vec<Zone> = Vec::new();
    let mut changes: Vec<usize> = Vec::new();
    let mut placed: Vec<(usize, Zone)> = Vec::new();
    let mut previous = sender.unwrap_or(Zone::Unknown);
    placed.push((0, previous));
    for h in hops {
        // Where the previous receiver is unknown (an IP, `localhost`), the sender this hop
        // names stands in for it.
        if previous == Zone::Unknown {
            placed.push((
                h.index,
                h.from.as_deref().map(zone_of_host).unwrap_or(Zone::Unknown),
            ));
        }
        placed.push((h.index, h.zone));
        previous = h.zone;
    }
    for (at, z) in placed.into_iter().filter(|(_, z)| *z != Zone::Unknown) {
        if zones.last() != Some(&z) {
            zones.push(z);
            changes.push(at);
        }
    }
    (zones, changes)
}

fn host(h: &Host<'_>) -> String {
    match h {
        Host::Name(n) => clip(n),
        Host::IpAddr(ip) => ip.to_string(),
    }
}

/// RFC 5322 unfolding: CRLF followed by white space is white space.
pub fn unfold(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut space = false;
    for c in raw.chars() {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push(c);
    }
    out
}

/// Last second of the year 9999: no stamp means a later date, and SystemTime arithmetic must
/// not overflow on one that says so.
const MAX_TIMESTAMP: i64 = 253_402_300_799;

/// `2026-11-23T08:54:49Z` from seconds since the epoch (clamped to 1970..=9999).
pub fn rfc3339_utc(ts: i64) -> String {
    mxtrace_proto::date::rfc3339(ts.clamp(0, MAX_TIMESTAMP))
}

fn clip(s: &str) -> String {
    clip_to(s, MAX_TEXT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_by_name_and_stamp() {
        assert_eq!(
            zone_of_host("DM3NAM03FT051.mail.protection.outlook.com"),
            Zone::ExchangeOnline
        );
        assert_eq!(
            zone_of_host("BN8PR12MB3393.namprd12.prod.outlook.com."),
            Zone::ExchangeOnline
        );
        assert_eq!(
            zone_of_host("NAM12-BN8-obe.outbound.protection.outlook.com"),
            Zone::ExchangeOnline
        );
        assert_eq!(zone_of_host("mx.fabrikam.test"), Zone::ThirdParty);
        assert_eq!(zone_of_host("192.0.2.1"), Zone::Unknown);
        assert_eq!(zone_of_host("localhost"), Zone::Unknown);
        assert_eq!(
            zone_of_receiver(
                Some("mail.contoso-hybrid.test"),
                Some("Microsoft SMTP Server")
            ),
            Zone::OnPremisesExchange
        );
        assert_eq!(
            zone_of_receiver(Some("mail.contoso-hybrid.test"), Some("ESMTP")),
            Zone::ThirdParty
        );
        assert_eq!(
            zone_of_receiver(Some("x.prod.outlook.com"), Some("Microsoft SMTP Server")),
            Zone::ExchangeOnline
        );
    }

    #[test]
    fn unfolds_and_formats() {
        assert_eq!(unfold("from a\r\n\tby b;\r\n Mon"), "from a by b; Mon");
        assert_eq!(rfc3339_utc(1_795_424_089), "2026-11-23T08:54:49Z");
        assert_eq!(rfc3339_utc(-5), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(i64::MAX), "9999-12-31T23:59:59Z");
    }
}
