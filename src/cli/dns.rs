//! The `mxtrace dns` flags and help; the engine's `posture` module runs the checks and
//! `dispatch` prints the report.

use super::{duration, HumanDuration};
use clap::Args;
use mxtrace_core::posture::PostureOptions;
use mxtrace_net::dns::ResolverChoice;
use mxtrace_proto::spec::{self, parse_resolver};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

pub const DNS_EXAMPLES: &str = "\
Examples:
  mxtrace dns contoso.com                              # every record, judged, with next steps
  mxtrace dns contoso.com --sending-ip 203.0.113.7     # SPF result, PTR and blocklists for it
  mxtrace dns contoso.com --dkim-selector google --json
  mxtrace dns contoso.com --dnsbl --resolver 192.0.2.53   # MX addresses against the blocklists

Checks SPF (include tree, 10 DNS lookups, 2 void lookups), DMARC (the domain, then the
organisational domain taken as its last two labels), DKIM (selector1/selector2 of Microsoft 365
and any --dkim-selector), MTA-STS (record, policy over HTTPS, MX patterns), TLS-RPT, DANE
(TLSA at _25._tcp.MX and the DNSSEC status of the MX and TLSA answers; the certificate match
is `trace`'s), reverse DNS of every MX address, and blocklists. Spamhaus refuses queries from
public resolvers (answers 127.255.255.x): those are shown as \"refused\", not as listed.

Exit codes:
  0  no errors (warnings such as p=none or ~all may be listed)
  1  at least one error: a record that breaks delivery or authentication, a listed address,
     a lookup that failed
  2  usage or input error (bad domain, address or resolver)
  3  internal error";

#[derive(Debug, Args)]
pub struct DnsArgs {
    /// The mail domain.
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// The address your mail leaves from: SPF result, reverse DNS and blocklists for it.
    #[arg(long, value_name = "IP")]
    pub sending_ip: Option<IpAddr>,
    /// A DKIM selector to check after selector1 and selector2 (repeatable).
    #[arg(long = "dkim-selector", value_name = "S")]
    pub dkim_selectors: Vec<String>,
    /// Check every MX address against the blocklists too.
    #[arg(long, help_heading = "Blocklists")]
    pub dnsbl: bool,
    /// A blocklist zone to use instead of the defaults (zen.spamhaus.org, bl.spamcop.net,
    /// psbl.surriel.com); repeatable.
    #[arg(long = "dnsbl-zone", value_name = "ZONE", help_heading = "Blocklists")]
    pub dnsbl_zones: Vec<String>,
    /// DNS server to ask: IP, IP:PORT or [IPv6]:PORT. Default: the system's.
    #[arg(long, value_name = "IP[:PORT]", value_parser = resolver, help_heading = "DNS")]
    pub resolver: Option<SocketAddr>,
    /// Time allowed for one DNS request.
    #[arg(long, value_name = "DURATION", default_value_t = HumanDuration(spec::DEFAULT_DNS_TIMEOUT), value_parser = duration, help_heading = "DNS")]
    pub dns_timeout: HumanDuration,
    /// Trust this CA (PEM) for the MTA-STS policy host, beside the public roots.
    #[arg(long, value_name = "FILE", help_heading = "MTA-STS")]
    pub tls_ca_file: Option<PathBuf>,
    /// HTTPS port of the MTA-STS policy host (443; other values for labs and tests).
    #[arg(long, value_name = "N", default_value_t = 443, value_parser = clap::value_parser!(u16).range(1..), help_heading = "MTA-STS")]
    pub https_port: u16,
    /// Keep MTA-STS policies in this JSON file (RFC 8461 5.1): a policy fetched is stored,
    /// and a valid cached one is shown when the fetch fails.
    #[arg(long, value_name = "FILE", help_heading = "MTA-STS")]
    pub mta_sts_cache: Option<PathBuf>,
    /// Validate DANE's DNSSEC answers from the DNSKEY records in FILE (zone-file form)
    /// instead of the IANA root keys.
    #[arg(long, value_name = "FILE", help_heading = "DANE")]
    pub dnssec_trust_anchor: Option<PathBuf>,
}

fn resolver(s: &str) -> Result<SocketAddr, spec::ValueError> {
    parse_resolver(s)
}

impl DnsArgs {
    pub fn to_options(&self) -> PostureOptions {
        let choice = self
            .resolver
            .map_or(ResolverChoice::System, ResolverChoice::Server);
        let mut o = PostureOptions::new(&self.domain, choice);
        o.dns_timeout = self.dns_timeout.0;
        o.sending_ip = self.sending_ip;
        o.dkim_selectors.clone_from(&self.dkim_selectors);
        o.dnsbl = self.dnsbl;
        o.dnsbl_zones.clone_from(&self.dnsbl_zones);
        o.mta_sts.ca_file.clone_from(&self.tls_ca_file);
        o.mta_sts.https_port = self.https_port;
        o.mta_sts.cache.clone_from(&self.mta_sts_cache);
        o.dnssec_trust_anchor.clone_from(&self.dnssec_trust_anchor);
        o
    }
}
