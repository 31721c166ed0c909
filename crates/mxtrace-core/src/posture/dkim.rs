//! DKIM keys (RFC 6376 3.6.1): Microsoft 365's `selector1` and `selector2`, which are CNAMEs
//! to `selector1-<domain-with-dashes>._domainkey.<tenant>.onmicrosoft.com` or, for domains set
//! up since 2025, `...<domain>.<x>-v1.dkim.mail.microsoft` (Microsoft Learn, "Set up DKIM to
//! sign mail from your Microsoft 365 domain"), then any `--dkim-selector`. Selectors cannot
//! be listed from DNS: only those named are checked.

use super::dns_finding;
use base64::Engine;
use mxtrace_knowledge::is_eop_host;
use mxtrace_net::dns::Dns;
use mxtrace_proto::model::posture::{Advice, DkimSection, DkimSelector, Severity};
use mxtrace_proto::model::{Category, Layer};
use mxtrace_proto::record::{tag, tag_list};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

pub const M365_SELECTORS: [&str; 2] = ["selector1", "selector2"];
/// Where Microsoft 365's selector CNAMEs point.
const M365_TARGETS: [&str; 2] = [".onmicrosoft.com", ".dkim.mail.microsoft"];
/// RFC 8301 3.2: signers use at least 1024 bits; Microsoft 365 rotates to 2048.
const MIN_RSA_BITS: usize = 1024;
const GOOD_RSA_BITS: usize = 2048;
/// Aliases followed from a selector name. RFC 1034 3.6.2: resolvers follow CNAME chains and
/// must detect loops, and each caps the length it follows; a key further than this is not
/// reliably reachable by every verifier.
const MAX_CNAME_HOPS: usize = 8;
const DKIM_STEP: &str = "In the Microsoft Defender portal (Email authentication settings, DKIM) \
                         or with New-DkimSigningConfig, create the keys and publish the CNAMEs \
                         it shows; for other signers publish the key their admin console gives.";

const ADVICE: Advice = Advice {
    category: Category::SpfDkimDmarcFailure,
    layer: Layer::Policy,
    step: DKIM_STEP,
};

pub async fn check(dns: &Dns, domain: &str, mx: &[String], extra: &[String]) -> DkimSection {
    let mut s = DkimSection::default();
    let mut names: Vec<String> = M365_SELECTORS.iter().map(|n| n.to_string()).collect();
    for e in extra {
        if !names.contains(e) {
            names.push(e.clone());
        }
    }
    for sel in names {
        let d = selector(dns, domain, &sel, &mut s).await;
        s.selectors.push(d);
    }
    let found = s.selectors.iter().any(|d| d.state == "found");
    if !found {
        let eop = mx.iter().any(|h| is_eop_host(h));
        let sev = if eop {
            Severity::Warning
        } else {
            Severity::Info
        };
        s.section.push(ADVICE.finding(
            sev,
            format!("no DKIM key at the selectors tried ({}); Microsoft 365 signs with selector1/selector2 once DKIM is enabled for {domain}", s.selectors.iter().map(|d| d.selector.as_str()).collect::<Vec<_>>().join(", ")),
        ));
    }
    s.section.records = s
        .selectors
        .iter()
        .filter_map(|d| d.record.clone())
        .collect();
    s.section.close(!found);
    s
}

async fn selector(dns: &Dns, domain: &str, sel: &str, s: &mut DkimSection) -> DkimSelector {
    let name = format!("{sel}._domainkey.{domain}");
    let mut d = DkimSelector {
        selector: sel.to_string(),
        name: name.clone(),
        state: "missing".to_string(),
        ..DkimSelector::default()
    };
    match follow_chain(dns, &name).await {
        Ok(Chain::Ends(hops)) => {
            d.cname = hops.first().cloned();
            d.chain = hops;
        }
        Ok(Chain::Broken(hops, why)) => {
            d.state = why.state().to_string();
            s.section.push(ADVICE.finding(
                Severity::Error,
                format!("{name}: {} ({name} -> {}): receivers cannot reach the key, mail signed with {sel} fails DKIM", why.cause(), hops.join(" -> ")),
            ));
            d.cname = hops.first().cloned();
            d.chain = hops;
            return d;
        }
        Err(e) if e.is_absent() => return d,
        Err(e) => {
            s.section
                .push(dns_finding(&e, &format!("DKIM selector {name}")));
            d.state = "error".to_string();
            return d;
        }
    }
    if let Some(c) = &d.cname {
        microsoft_target(domain, sel, c, s);
    }
    // The target itself: an authoritative server need not chase a CNAME into another zone.
    let records = match dns.txt(d.chain.last().unwrap_or(&name)).await {
        Ok(r) => r,
        Err(e) if e.is_absent() => {
            if let Some(c) = d.chain.last() {
                d.state = "dangling".to_string();
                let via = match d.chain.as_slice() {
                    [_] => String::new(),
                    more => format!(" (through {})", more.join(" -> ")),
                };
                s.section.push(ADVICE.finding(
                    Severity::Error,
                    format!("{name} is a CNAME to {c}{via}, which has no key record: mail signed with {sel} fails DKIM"),
                ));
            }
            return d;
        }
        Err(e) => {
            s.section.push(dns_finding(&e, &format!("DKIM key {name}")));
            d.state = "error".to_string();
            return d;
        }
    };
    d.record = records.first().cloned();
    key(&mut d, s);
    d
}

/// Where a selector's CNAMEs lead: the names after the selector's own, in order.
enum Chain {
    /// The last name is not an alias (its TXT is the key record, if any).
    Ends(Vec<String>),
    /// Followed no further, and why.
    Broken(Vec<String>, ChainBreak),
}

#[derive(Debug, Clone, Copy)]
enum ChainBreak {
    Loop,
    TooDeep,
}

impl ChainBreak {
    fn state(self) -> &'static str {
        match self {
            ChainBreak::Loop => "cname_loop",
            ChainBreak::TooDeep => "cname_too_deep",
        }
    }

    fn cause(self) -> String {
        match self {
            ChainBreak::Loop => "the CNAME chain loops back to a name already in it".to_string(),
            ChainBreak::TooDeep => format!(
                "the CNAME chain is longer than {MAX_CNAME_HOPS} aliases, where resolvers give up"
            ),
        }
    }
}

/// Follows the aliases from `name` one CNAME lookup at a time (the lab's and many
/// authoritative servers do not chase an alias into another zone), up to `MAX_CNAME_HOPS`.
/// A failed lookup after the first alias ends the chain there: the TXT lookup reports it.
async fn follow_chain(dns: &Dns, name: &str) -> Result<Chain, mxtrace_proto::model::DnsFailure> {
    let mut hops: Vec<String> = Vec::new();
    let mut at = name.to_string();
    loop {
        let next = match dns.cname(&at).await {
            Ok(n) => n,
            Err(e) if hops.is_empty() => return Err(e),
            Err(_) => None,
        };
        let Some(next) = next else {
            return Ok(Chain::Ends(hops));
        };
        let seen =
            next.eq_ignore_ascii_case(name) || hops.iter().any(|h| h.eq_ignore_ascii_case(&next));
        hops.push(next.clone());
        if seen {
            return Ok(Chain::Broken(hops, ChainBreak::Loop));
        }
        if hops.len() > MAX_CNAME_HOPS {
            return Ok(Chain::Broken(hops, ChainBreak::TooDeep));
        }
        at = next;
    }
}

/// A Microsoft 365 CNAME should name this domain in its first label.
fn microsoft_target(domain: &str, sel: &str, target: &str, s: &mut DkimSection) {
    let t = target.to_ascii_lowercase();
    if !M365_TARGETS.iter().any(|suffix| t.ends_with(suffix)) {
        return;
    }
    let expected = format!("{sel}-{}", domain.replace('.', "-"));
    let first = t.split('.').next().unwrap_or("");
    if first != expected {
        s.section.push(ADVICE.finding(
            Severity::Warning,
            format!("{sel}._domainkey.{domain} points to {target}, whose first label is not {expected}: the CNAME was copied from another domain's setup"),
        ));
    }
}

/// The key record: `k=` (rsa by default, ed25519), `p=` (empty: revoked), RSA size.
fn key(d: &mut DkimSelector, s: &mut DkimSection) {
    let Some(record) = d.record.clone() else {
        return;
    };
    let tags = match tag_list(&record) {
        Ok(t) => t,
        Err(e) => return invalid(d, s, &e.to_string()),
    };
    let k = tag(&tags, "k").unwrap_or("rsa").to_ascii_lowercase();
    let Some(p) = tag(&tags, "p") else {
        return invalid(d, s, "no p= tag");
    };
    let p: String = p.chars().filter(|c| !c.is_whitespace()).collect();
    if p.is_empty() {
        d.state = "revoked".to_string();
        s.section.push(ADVICE.finding(
            Severity::Warning,
            format!(
                "{}: the key is revoked (empty p=); nothing signed with {} verifies",
                d.name, d.selector
            ),
        ));
        return;
    }
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(&p) else {
        return invalid(d, s, "p= is not base64");
    };
    d.key_type = Some(k.clone());
    match k.as_str() {
        "rsa" => rsa(d, s, &bytes),
        "ed25519" if bytes.len() == 32 => {
            d.key_bits = Some(256);
            d.state = "found".to_string();
        }
        "ed25519" => invalid(d, s, "an ed25519 key is 32 bytes (RFC 8463)"),
        other => invalid(d, s, &format!("unknown key type k={other}")),
    }
}

fn rsa(d: &mut DkimSelector, s: &mut DkimSection, der: &[u8]) {
    let parsed = SubjectPublicKeyInfo::from_der(der).map(|(_, spki)| match spki.parsed() {
        Ok(PublicKey::RSA(k)) => Some(k.key_size()),
        _ => None,
    });
    let Ok(Some(bits)) = parsed else {
        return invalid(d, s, "p= is not an RSA SubjectPublicKeyInfo");
    };
    d.key_bits = Some(bits);
    d.state = "found".to_string();
    if bits < MIN_RSA_BITS {
        s.section.push(ADVICE.finding(
            Severity::Error,
            format!("{}: RSA key of {bits} bits; receivers ignore keys under {MIN_RSA_BITS} bits (RFC 8301 3.2)", d.name),
        ));
    } else if bits < GOOD_RSA_BITS {
        s.section.push(ADVICE.finding(
            Severity::Info,
            format!("{}: RSA key of {bits} bits; rotate to {GOOD_RSA_BITS} bits (Microsoft 365: Rotate-DkimSigningConfig -KeySize 2048)", d.name),
        ));
    }
}

fn invalid(d: &mut DkimSelector, s: &mut DkimSection, why: &str) {
    d.state = "invalid".to_string();
    s.section.push(ADVICE.finding(
        Severity::Error,
        format!("{}: the key record is not valid: {why}", d.name),
    ));
}
