//! DANE authentication of an SMTP server's certificate (RFC 7672 3.1), used instead of the
//! WebPKI stores when the MX has secure, usable TLSA records:
//! - DANE-EE(3): the leaf matches; its names and dates are not checked (RFC 7672 3.1.1);
//! - DANE-TA(2): a certificate of the presented chain matches, and the chain verifies to it
//!   with the MX host name checked (RFC 7672 3.1.2).
//!
//! Selectors and matching types as RFC 6698 2.1.2 and 2.1.3 define them.

use crate::dns::Tlsa;
use aws_lc_rs::digest;
use mxtrace_proto::model::posture::TlsaRecord;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::sync::Arc;

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

/// The certificate content a record's selector picks: the whole DER (0) or its
/// SubjectPublicKeyInfo (1). None for an unknown selector or a certificate that does not parse.
fn selected(selector: u8, der: &[u8]) -> Option<Vec<u8>> {
    match selector {
        0 => Some(der.to_vec()),
        1 => x509_parser::parse_x509_certificate(der)
            .ok()
            .map(|(_, c)| c.tbs_certificate.subject_pki.raw.to_vec()),
        _ => None,
    }
}

/// Whether `der` matches the record (selector, then matching type).
pub fn matches(t: &Tlsa, der: &[u8]) -> bool {
    let Some(content) = selected(t.selector, der) else {
        return false;
    };
    match t.matching {
        0 => content == t.data,
        1 => digest::digest(&digest::SHA256, &content).as_ref() == t.data.as_slice(),
        2 => digest::digest(&digest::SHA512, &content).as_ref() == t.data.as_slice(),
        _ => false,
    }
}

/// The SHA-256 of the leaf's SubjectPublicKeyInfo, as a `3 1 1` record would carry it.
pub fn spki_sha256(der: &[u8]) -> Option<String> {
    let spki = selected(1, der)?;
    Some(
        digest::digest(&digest::SHA256, &spki)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

/// Why DANE did not authenticate the chain, in words that name DANE and the records.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DaneMismatch {
    #[error(
        "DANE-TA record {record} matches a CA of the chain, but the chain does not verify to \
         it: {source}"
    )]
    TrustAnchor {
        record: Tlsa,
        #[source]
        source: ChainError,
    },
    #[error(
        "DANE: the certificate matches none of the TLSA records ({}); the leaf's SPKI \
         SHA-256 is {} (a 3 1 1 record for it would match)",
        list(.records),
        .leaf.as_deref().unwrap_or("unreadable")
    )]
    NoMatch {
        records: Vec<Tlsa>,
        /// The leaf's SPKI SHA-256, when it parses.
        leaf: Option<String>,
    },
}

fn list(records: &[Tlsa]) -> String {
    let listed: Vec<String> = records.iter().map(ToString::to_string).collect();
    listed.join(", ")
}

/// The chain does not verify to a DANE-TA certificate.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    #[error(transparent)]
    Verifier(#[from] rustls::client::VerifierBuilderError),
    #[error(transparent)]
    Rejected(#[from] rustls::Error),
}

/// Authenticates the presented chain by the TLSA records.
pub fn verify(
    records: &[Tlsa],
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    server_name: &ServerName<'_>,
    now: UnixTime,
    provider: &Arc<CryptoProvider>,
) -> Result<(), DaneMismatch> {
    if records
        .iter()
        .any(|t| t.usage == 3 && matches(t, end_entity))
    {
        return Ok(());
    }
    let mut ta_error = None;
    for t in records.iter().filter(|t| t.usage == 2) {
        for ca in intermediates.iter().filter(|c| matches(t, c)) {
            match chain_to(ca, end_entity, intermediates, server_name, now, provider) {
                Ok(()) => return Ok(()),
                Err(source) => {
                    ta_error = Some(DaneMismatch::TrustAnchor {
                        record: t.clone(),
                        source,
                    })
                }
            }
        }
    }
    Err(ta_error.unwrap_or_else(|| DaneMismatch::NoMatch {
        records: records.to_vec(),
        leaf: spki_sha256(end_entity),
    }))
}

/// The WebPKI path check with `ca` as the only anchor, the name checked against the MX host.
fn chain_to(
    ca: &CertificateDer<'_>,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    server_name: &ServerName<'_>,
    now: UnixTime,
    provider: &Arc<CryptoProvider>,
) -> Result<(), ChainError> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone().into_owned())?;
    super::webpki_verifier(roots, provider)?.verify_server_cert(
        end_entity,
        intermediates,
        server_name,
        &[],
        now,
    )?;
    Ok(())
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
