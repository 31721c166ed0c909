//! DANE authentication of an SMTP server's certificate (RFC 7672 3.1), used instead of the
//! WebPKI stores when the MX has secure, usable TLSA records:
//! - DANE-EE(3): the leaf matches; its names and dates are not checked (RFC 7672 3.1.1);
//! - DANE-TA(2): a certificate of the presented chain matches, and the chain verifies to it
//!   with the MX host name checked (RFC 7672 3.1.2).
//!
//! Selectors and matching types as RFC 6698 2.1.2 and 2.1.3 define them.

use crate::dns::Tlsa;
use aws_lc_rs::digest;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::sync::Arc;

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

/// Authenticates the presented chain by the TLSA records; Err says why in words that name
/// DANE and the records.
pub fn verify(
    records: &[Tlsa],
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    server_name: &ServerName<'_>,
    now: UnixTime,
    provider: &Arc<CryptoProvider>,
) -> Result<(), String> {
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
                Err(e) => ta_error = Some(format!("DANE-TA record {t} matches a CA of the chain, but the chain does not verify to it: {e}")),
            }
        }
    }
    let listed: Vec<String> = records.iter().map(ToString::to_string).collect();
    let leaf = spki_sha256(end_entity).unwrap_or_else(|| "unreadable".to_string());
    Err(ta_error.unwrap_or_else(|| {
        format!(
            "DANE: the certificate matches none of the TLSA records ({}); the leaf's SPKI \
             SHA-256 is {leaf} (a 3 1 1 record for it would match)",
            listed.join(", ")
        )
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
) -> Result<(), String> {
    let mut roots = RootCertStore::empty();
    roots
        .add(ca.clone().into_owned())
        .map_err(|e| e.to_string())?;
    super::webpki_verifier(roots, provider)
        .map_err(|e| e.to_string())?
        .verify_server_cert(end_entity, intermediates, server_name, &[], now)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
