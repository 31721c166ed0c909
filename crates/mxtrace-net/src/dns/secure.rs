//! The validating resolver DANE needs (RFC 7672 2.2: TLSA records count only when their
//! answer is DNSSEC-validated). It is separate from `Dns`: with validation on, hickory refuses
//! every answer of an unsigned zone, and the mail path must still resolve those.
//!
//! Status (RFC 4033 5): an answer whose records all validate is secure. When the validator
//! refuses an answer or proves nothing, the zone holding the name decides: no DNSKEY at its
//! apex is an unsigned zone (insecure); a DNSKEY there means the signatures failed (bogus).
//! This reads the apex with the plain resolver, a shortcut over proving the missing DS at the
//! parent (RFC 4035 5.2), which a lab server with one zone cannot answer.

use super::{builder, fqdn, rtype_str, Dns, SetupError};
use hickory_resolver::proto::dnssec::{Proof, TrustAnchors};
use hickory_resolver::proto::rr::rdata::TLSA;
use hickory_resolver::proto::rr::RecordType;
use hickory_resolver::TokioResolver;
use mxtrace_proto::model::posture::DnssecStatus;
use mxtrace_proto::model::DnsFailure;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A TLSA record (RFC 6698 2.1): usage, selector, matching type and association data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlsa {
    pub usage: u8,
    pub selector: u8,
    pub matching: u8,
    pub data: Vec<u8>,
}

impl From<&TLSA> for Tlsa {
    fn from(t: &TLSA) -> Tlsa {
        Tlsa {
            usage: t.cert_usage.into(),
            selector: t.selector.into(),
            matching: t.matching.into(),
            data: t.cert_data.clone(),
        }
    }
}

/// Presentation form: `3 1 1 <hex>` (RFC 6698 2.2).
impl fmt::Display for Tlsa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} ", self.usage, self.selector, self.matching)?;
        self.data.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// TLSA records with the DNSSEC status of their answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsaAnswer {
    /// `_25._tcp.HOST` (RFC 7672 2.2.3).
    pub name: String,
    pub status: DnssecStatus,
    pub records: Vec<Tlsa>,
}

/// A validating resolver beside the plain one (which it uses to tell insecure from bogus).
#[derive(Clone)]
pub struct SecureDns {
    resolver: TokioResolver,
    plain: Dns,
    limit: Duration,
}

impl SecureDns {
    /// Validates from the IANA root keys (hickory's built-in), or from the DNSKEY records of
    /// `trust_anchor` (zone-file form) when given.
    pub fn new(
        plain: Dns,
        timeout: Duration,
        trust_anchor: Option<&Path>,
    ) -> Result<SecureDns, SetupError> {
        let anchors = match trust_anchor {
            None => TrustAnchors::default(),
            Some(p) => TrustAnchors::from_file(p).map_err(|source| SetupError::TrustAnchor {
                path: p.to_path_buf(),
                source,
            })?,
        };
        let mut b = builder(plain.choice(), timeout)?.with_trust_anchor(Arc::new(anchors));
        let opts = b.options_mut();
        opts.validate = true;
        opts.cache_size = 256;
        let resolver = b.build().map_err(SetupError::Build)?;
        Ok(SecureDns {
            resolver,
            plain,
            limit: timeout * 3,
        })
    }

    /// The TLSA records of `_25._tcp.HOST` (RFC 7672 2.2.3) and their status; None when none
    /// are published.
    pub async fn tlsa(&self, host: &str) -> Result<Option<TlsaAnswer>, DnsFailure> {
        let name = format!("_25._tcp.{}", host.trim_end_matches('.'));
        let records = match self.plain.tlsa(&name).await {
            Ok(r) if r.is_empty() => return Ok(None),
            Ok(r) => r,
            Err(e) if e.is_absent() => return Ok(None),
            Err(e) => return Err(e),
        };
        let status = self.status(&name, RecordType::TLSA).await;
        Ok(Some(TlsaAnswer {
            name,
            status,
            records,
        }))
    }

    /// The DNSSEC status of the `rtype` answer at `name`, which exists (the caller read it).
    pub async fn status(&self, name: &str, rtype: RecordType) -> DnssecStatus {
        let Ok(fq) = fqdn(name, rtype_str(rtype)) else {
            return DnssecStatus::Bogus;
        };
        let answer = tokio::time::timeout(self.limit, self.resolver.lookup(fq, rtype)).await;
        if let Ok(Ok(lookup)) = answer {
            let proofs: Vec<Proof> = lookup
                .answers()
                .iter()
                .filter(|r| r.record_type() == rtype)
                .map(|r| r.proof)
                .collect();
            if !proofs.is_empty() && proofs.iter().all(|p| *p == Proof::Secure) {
                return DnssecStatus::Secure;
            }
            if proofs.contains(&Proof::Bogus) {
                return DnssecStatus::Bogus;
            }
        }
        // Refused by the validator, or proved nothing: an unsigned zone is insecure; a signed
        // one whose answer does not validate, or whose key cannot be read, is not trusted.
        match self.plain.zone_has_dnskey(name).await {
            Ok(false) => DnssecStatus::Insecure,
            Ok(true) | Err(_) => DnssecStatus::Bogus,
        }
    }
}
