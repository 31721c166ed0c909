//! Reverse DNS: PTR and forward-confirmed reverse DNS (FCrDNS) for every MX address and for
//! `--sending-ip`. Receivers distrust senders without it; Exchange Online requires a PTR of
//! senders over IPv6 (Microsoft Learn, "Support for anonymous inbound email messages over IPv6
//! in Exchange Online").

use mxtrace_net::dns::Dns;
use mxtrace_proto::model::posture::{Finding, RdnsEntry, RdnsSection, Severity};
use mxtrace_proto::model::{AddressInfo, Category, Layer};
use std::net::IpAddr;

const MAX_HOSTS: usize = 10;

pub async fn check(dns: &Dns, mx: &[String], sending_ip: Option<IpAddr>) -> RdnsSection {
    let mut s = RdnsSection::default();
    for host in mx.iter().take(MAX_HOSTS) {
        for ip in dns.all_addresses(host).await {
            let address = dns.reverse_check(ip).await;
            judge(&mut s, host, &address, Severity::Warning);
            s.addresses.push(RdnsEntry {
                of: host.clone(),
                address,
            });
        }
    }
    if let Some(ip) = sending_ip {
        let address = dns.reverse_check(ip).await;
        judge(&mut s, "sending-ip", &address, Severity::Error);
        s.addresses.push(RdnsEntry {
            of: "sending-ip".to_string(),
            address,
        });
    }
    s.section.close(s.addresses.is_empty());
    s
}

/// A missing or unconfirmed PTR: a warning for an MX (it receives), an error for the sending
/// address (receivers reject or junk its mail).
fn judge(s: &mut RdnsSection, of: &str, a: &AddressInfo, sev: Severity) {
    let cause = match (a.fcrdns, a.ptr.is_empty()) {
        (Some(true), _) => return,
        (None, _) => format!("{of} {}: reverse DNS could not be checked (lookup failed)", a.ip),
        (Some(false), true) => format!("{of} {}: no PTR record", a.ip),
        (Some(false), false) => format!(
            "{of} {}: PTR {} does not resolve back to the address (no forward-confirmed reverse DNS)",
            a.ip,
            a.ptr.join(", ")
        ),
    };
    s.section.push(Finding::new(
        sev,
        Category::ReputationOrRateLimited,
        Layer::Reputation,
        cause,
        vec!["Ask whoever holds the address block (ISP, cloud provider) for a PTR naming a host whose A/AAAA is this address.".to_string()],
    ));
}
