//! DANE for SMTP (RFC 7672): the TLSA records at `_25._tcp.MX` of every MX host, trusted only
//! when their answer is DNSSEC-secure, each judged by the tables below. `mxtrace dns` reports
//! them; `trace` matches the usable ones against the certificate the server presents
//! (`tls::dane`).

use super::dns_finding;
use hickory_resolver::proto::rr::RecordType;
use mxtrace_net::dns::{SecureDns, TlsaAnswer};
use mxtrace_net::tls::dane::judge_record;
use mxtrace_proto::model::posture::DnssecStatus;
use mxtrace_proto::model::posture::{Advice, DaneHost, DaneSection, Severity, TlsaRecord};
use mxtrace_proto::model::{Category, Layer};

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
