//! DANE for SMTP (RFC 7672): the TLSA records at `_25._tcp.MX` of every MX host, trusted only
//! when their answer is DNSSEC-secure, each judged by the tables below. `mxtrace dns` reports
//! them; `trace` matches the usable ones against the certificate the server presents
//! (`tls::dane`).

use super::dns_finding;
use super::model::{Advice, DaneHost, DaneSection, Severity, TlsaRecord};
use crate::dns::{DnssecStatus, SecureDns, Tlsa, TlsaAnswer};
use crate::model::{Category, Layer};
use hickory_resolver::proto::rr::RecordType;

/// Certificate usages (RFC 6698 2.1.1, names from RFC 7218 2.1) and whether an SMTP client
/// uses them: DANE-TA(2) and DANE-EE(3) (RFC 7672 3.1.1, 3.1.2); PKIX-TA(0) and PKIX-EE(1)
/// rely on public CAs SMTP does not use, and are unusable (RFC 7672 3.1.3).
const USAGES: &[(u8, &str, bool)] = &[
    (0, "PKIX-TA", false),
    (1, "PKIX-EE", false),
    (2, "DANE-TA", true),
    (3, "DANE-EE", true),
];

/// Selectors (RFC 6698 2.1.2): what of the certificate is matched.
const SELECTORS: &[(u8, &str)] = &[(0, "Cert"), (1, "SPKI")];

/// Matching types (RFC 6698 2.1.3) and the data length each implies (None: the whole
/// selected content).
const MATCHINGS: &[(u8, &str, Option<usize>)] = &[
    (0, "Full", None),
    (1, "SHA2-256", Some(32)),
    (2, "SHA2-512", Some(64)),
];

const NOT_TRUSTED: Advice = Advice {
    category: Category::TlsFailed,
    layer: Layer::Tls,
    step: "Sign the zone (DNSSEC) and publish its DS at the parent, or remove the TLSA \
           records: DANE senders ignore TLSA records they cannot validate (RFC 7672 2.2).",
};

const BOGUS: Advice = Advice {
    category: Category::DnsFailure,
    layer: Layer::Dns,
    step: "Fix the zone's signatures (expired RRSIG, DNSKEY not matching the DS, broken \
           re-signing): DANE senders do not deliver to an MX whose TLSA answer is bogus \
           (RFC 7672 2.2).",
};

const PROTECTED: Advice = Advice {
    category: Category::TlsFailed,
    layer: Layer::Tls,
    step: "Publish the TLSA record of a new key or CA before deploying it, and remove the old \
           one after (RFC 7671 8.1), so DANE senders keep matching.",
};

const UNUSABLE: Advice = Advice {
    category: Category::TlsFailed,
    layer: Layer::Tls,
    step: "Publish DANE-EE(3) or DANE-TA(2) records, for example 3 1 1 (SHA-256 of the \
           server key's SubjectPublicKeyInfo), as RFC 7672 3.1 recommends.",
};

/// The DANE section: the DNSSEC status of the MX answer, then each MX host's TLSA.
pub async fn check(secure: &SecureDns, domain: &str, mx: &[String]) -> DaneSection {
    let mut s = DaneSection::default();
    if !mx.is_empty() {
        s.mx_dnssec = Some(secure.status(domain, RecordType::MX).await);
    }
    if s.mx_dnssec == Some(DnssecStatus::Bogus) {
        s.section.push(BOGUS.finding(
            Severity::Error,
            format!(
                "the MX answer of {domain} is DNSSEC-bogus: a DANE sender does not use it \
                 (RFC 7672 2.2.1)"
            ),
        ));
    }
    for host in mx {
        match secure.tlsa(host).await {
            Ok(answer) => {
                let h = judge_host(&mut s, host, answer);
                s.hosts.push(h);
            }
            Err(e) => s.section.push(dns_finding(&e, "TLSA records")),
        }
    }
    let published = s.hosts.iter().any(|h| h.dnssec.is_some());
    s.section.close(!published);
    s
}

fn judge_host(s: &mut DaneSection, host: &str, answer: Option<TlsaAnswer>) -> DaneHost {
    let Some(answer) = answer else {
        return DaneHost {
            mx: host.to_string(),
            name: format!("_25._tcp.{host}"),
            dnssec: None,
            tlsa: Vec::new(),
            state: "none".to_string(),
        };
    };
    let tlsa: Vec<TlsaRecord> = answer.records.iter().map(judge_record).collect();
    for t in &tlsa {
        s.section
            .records
            .push(format!("{} TLSA {}", answer.name, t.record));
    }
    let usable = tlsa.iter().filter(|t| t.usable).count();
    let state = finding(s, host, &answer, usable, tlsa.len());
    DaneHost {
        mx: host.to_string(),
        name: answer.name,
        dnssec: Some(answer.status),
        tlsa,
        state: state.to_string(),
    }
}

/// The finding for one host; returns its state word.
fn finding(
    s: &mut DaneSection,
    host: &str,
    a: &TlsaAnswer,
    usable: usize,
    total: usize,
) -> &'static str {
    match a.status {
        DnssecStatus::Bogus => {
            s.section.push(BOGUS.finding(
                Severity::Error,
                format!(
                    "the TLSA answer at {} is DNSSEC-bogus: a DANE sender must not deliver to \
                     {host} (RFC 7672 2.2)",
                    a.name
                ),
            ));
            "bogus"
        }
        DnssecStatus::Insecure => {
            s.section.push(NOT_TRUSTED.finding(
                Severity::Warning,
                format!(
                    "TLSA at {} is in a DNSSEC-insecure zone: not trusted, DANE does not apply \
                     to {host}",
                    a.name
                ),
            ));
            "insecure"
        }
        DnssecStatus::Secure if usable == 0 => {
            s.section.push(UNUSABLE.finding(
                Severity::Warning,
                format!(
                    "none of the {total} TLSA record(s) at {} is usable for SMTP: a DANE \
                     sender still requires STARTTLS to {host} but cannot authenticate it \
                     (RFC 7672 2.2)",
                    a.name
                ),
            ));
            "unusable"
        }
        DnssecStatus::Secure => {
            s.section.push(PROTECTED.finding(
                Severity::Info,
                format!(
                    "DANE: {host} is protected by {usable} usable TLSA record(s); a DANE sender \
                     requires STARTTLS and a certificate matching one (`mxtrace trace` checks \
                     the match)"
                ),
            ));
            "dane"
        }
    }
}

/// One record against the tables: its mnemonic and whether an SMTP client can use it.
pub fn judge_record(t: &Tlsa) -> TlsaRecord {
    let usage = USAGES.iter().find(|u| u.0 == t.usage);
    let selector = SELECTORS.iter().find(|x| x.0 == t.selector);
    let matching = MATCHINGS.iter().find(|m| m.0 == t.matching);
    let name = |n: Option<&str>, v: u8| n.map_or(format!("unknown({v})"), str::to_string);
    let mut problem = None;
    if !usage.is_some_and(|u| u.2) {
        problem = Some("usage not for SMTP (RFC 7672 3.1.3)");
    } else if selector.is_none() || matching.is_none() {
        problem = Some("unknown selector or matching type (RFC 6698 2.1)");
    } else if matching
        .and_then(|m| m.2)
        .is_some_and(|len| len != t.data.len())
    {
        problem = Some("data length does not fit the matching type (RFC 6698 2.1.3)");
    }
    TlsaRecord {
        record: t.to_string(),
        meaning: format!(
            "{} {} {}",
            name(usage.map(|u| u.1), t.usage),
            name(selector.map(|x| x.1), t.selector),
            name(matching.map(|m| m.1), t.matching)
        ),
        usable: problem.is_none(),
        problem: problem.map(str::to_string),
    }
}

/// The records an SMTP client uses (the usable ones of a secure answer).
pub fn usable(records: &[Tlsa]) -> Vec<Tlsa> {
    records
        .iter()
        .filter(|t| judge_record(t).usable)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(usage: u8, selector: u8, matching: u8, len: usize) -> TlsaRecord {
        judge_record(&Tlsa {
            usage,
            selector,
            matching,
            data: vec![0xab; len],
        })
    }

    #[test]
    fn records_judged_by_the_tables() {
        let ok = t(3, 1, 1, 32);
        assert!(ok.usable);
        assert_eq!(ok.meaning, "DANE-EE SPKI SHA2-256");
        assert!(ok.record.starts_with("3 1 1 abab"));
        assert!(t(2, 0, 2, 64).usable);
        assert!(t(3, 0, 0, 500).usable);
        assert!(!t(1, 1, 1, 32).usable);
        assert!(!t(0, 0, 1, 32).usable);
        assert!(!t(3, 1, 1, 31).usable);
        assert!(!t(3, 2, 1, 32).usable);
        assert_eq!(t(9, 1, 1, 32).meaning, "unknown(9) SPKI SHA2-256");
    }
}
