//! Blocklists (DNSBL, RFC 5782): `--sending-ip`, and every MX address with `--dnsbl`, against
//! each zone. An address is listed when `<reversed address>.<zone>` has an A record in
//! 127.0.0.0/8; NXDOMAIN means not listed. Spamhaus answers 127.255.255.252/254/255 when it
//! refuses the query (a typo in the zone, a public or open resolver, too many queries:
//! Spamhaus, "Using our public mirrors? Check your return codes now"): those are reported
//! as "refused", never as "listed".

use super::PostureOptions;
use mxtrace_net::dns::Dns;
use mxtrace_proto::model::posture::{DnsblResult, DnsblSection, Finding, Severity};
use mxtrace_proto::model::{Category, Layer};
use mxtrace_proto::spec::{Family, Field};
use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr};

/// The zones checked when none is named, each free for low-volume queries from a private
/// resolver: Spamhaus ZEN (https://www.spamhaus.org/zen/), SpamCop (https://www.spamcop.net/
/// fom-serve/cache/291.html), PSBL (https://psbl.org/).
pub const DEFAULT_ZONES: [&str; 3] = ["zen.spamhaus.org", "bl.spamcop.net", "psbl.surriel.com"];
const MAX_IPS: usize = 16;

pub async fn check(dns: &Dns, mx: &[String], opts: &PostureOptions) -> Option<DnsblSection> {
    let mut ips: Vec<IpAddr> = opts.sending_ip.into_iter().collect();
    if opts.dnsbl {
        for host in mx {
            ips.extend(dns.all_addresses(host).await);
        }
    }
    ips.dedup();
    ips.truncate(MAX_IPS);
    if ips.is_empty() {
        return None;
    }
    let zones: Vec<String> = if opts.dnsbl_zones.is_empty() {
        DEFAULT_ZONES.iter().map(|z| z.to_string()).collect()
    } else {
        opts.dnsbl_zones.clone()
    };
    let mut s = DnsblSection {
        zones: zones.clone(),
        ..DnsblSection::default()
    };
    for ip in &ips {
        for zone in &zones {
            let r = query(dns, *ip, zone).await;
            judge(&mut s, &r);
            s.results.push(r);
        }
    }
    s.section.close(false);
    Some(s)
}

/// The DNSBL name of `ip` in `zone` (RFC 5782 2.1 and 2.4: reversed octets or nibbles).
pub fn query_name(ip: IpAddr, zone: &str) -> String {
    let mut n = String::new();
    match ip {
        IpAddr::V4(v4) => {
            for o in v4.octets().iter().rev() {
                let _ = write!(n, "{o}.");
            }
        }
        IpAddr::V6(v6) => {
            for b in v6.octets().iter().rev() {
                let _ = write!(n, "{:x}.{:x}.", b & 0xf, b >> 4);
            }
        }
    }
    n.push_str(zone.trim_end_matches('.'));
    n
}

async fn query(dns: &Dns, ip: IpAddr, zone: &str) -> DnsblResult {
    let mut r = DnsblResult {
        ip: ip.to_string(),
        zone: zone.to_string(),
        state: "not_listed".to_string(),
        codes: Vec::new(),
    };
    match dns.addresses(&query_name(ip, zone), Family::V4).await {
        Ok(a) => {
            r.codes = a.addrs.iter().map(IpAddr::to_string).collect();
            r.state = state(&a.addrs).to_string();
        }
        Err(e) if e.is_absent() => {}
        Err(e) => {
            r.state = "error".to_string();
            r.codes = vec![e.message];
        }
    }
    r
}

/// listed (127.0.0.0/8), refused (127.255.255.0/24), or error (anything else: a resolver that
/// rewrites NXDOMAIN, say).
fn state(addrs: &[IpAddr]) -> &'static str {
    let v4: Vec<Ipv4Addr> = addrs
        .iter()
        .filter_map(|a| match a {
            IpAddr::V4(v) => Some(*v),
            IpAddr::V6(_) => None,
        })
        .collect();
    if v4.iter().any(|a| matches!(a.octets(), [127, 255, 255, _])) {
        "refused"
    } else if !v4.is_empty() && v4.iter().all(|a| a.is_loopback()) {
        "listed"
    } else {
        "error"
    }
}

fn judge(s: &mut DnsblSection, r: &DnsblResult) {
    let (sev, cause, step) = match r.state.as_str() {
        "listed" => (
            Severity::Error,
            format!("{} is listed in {} ({})", r.ip, r.zone, r.codes.join(", ")),
            format!("Look the address up on the list's own site ({}) and follow its delisting procedure after fixing the cause.", r.zone),
        ),
        "refused" => (
            Severity::Warning,
            format!("{} refused the query for {} ({}): the answer says nothing about a listing", r.zone, r.ip, r.codes.join(", ")),
            // `dns` is a command-line command: its settings are flags.
            format!("Query through your own recursive resolver ({}), not a public one; Spamhaus refuses public resolvers.", Field::Resolver.flag()),
        ),
        "error" => (
            Severity::Warning,
            format!("{} for {}: no usable answer ({})", r.zone, r.ip, r.codes.join(", ")),
            "Retry, or query through a resolver that does not rewrite NXDOMAIN answers.".to_string(),
        ),
        _ => return,
    };
    s.section.push(Finding::new(
        sev,
        Category::IpBlocklisted,
        Layer::Reputation,
        cause,
        vec![step],
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes() {
        assert_eq!(
            query_name("192.0.2.7".parse().unwrap(), "zen.example"),
            "7.2.0.192.zen.example"
        );
        assert!(query_name("2001:db8::1".parse().unwrap(), "z").starts_with("1.0.0.0.0.0"));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(state(&[ip("127.0.0.2")]), "listed");
        assert_eq!(state(&[ip("127.255.255.254")]), "refused");
        assert_eq!(state(&[ip("192.0.2.1")]), "error");
    }
}
