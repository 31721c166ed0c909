//! The lab's PKI: an in-memory CA ("mxtrace lab CA") that issues server certificates (valid,
//! expired, or for another name: the certificate faults of the runbooks) and client
//! certificates for hybrid connectors that attribute mail by certificate (scenarios B hop 2 and
//! D hop 1). Nothing is written to disk; `ca_pem` is what a client passes as `--tls-ca-file`.
//! The tests use the same CA for the odd leaves they need (not yet valid, self-signed).

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// Common name of the lab CA.
pub const CA_NAME: &str = "mxtrace lab CA";

/// The name a `WrongName` certificate is issued for (a name no lab host uses).
pub const WRONG_NAME: &str = "mail.wrong-name.invalid";

/// Which server certificate to present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertValidity {
    /// Issued by the lab CA for the names, valid now.
    Valid,
    /// Issued by the lab CA for the names, valid only in 2000 (a certificate nobody renewed).
    Expired,
    /// Issued by the lab CA for `WRONG_NAME` instead of the names (the connector's expected
    /// name and the certificate disagree).
    WrongName,
    /// Issued by the lab CA for the names, valid only from 2090 on (a clock or a premature
    /// deployment).
    NotYetValid,
    /// Self-signed for the names: not chained to the lab CA.
    SelfSigned,
}

/// A certificate chain (leaf first) and its private key, the shapes rustls takes.
pub type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// A private CA; each call issues a fresh key and leaf.
pub struct LabPki {
    ca: CertifiedIssuer<'static, KeyPair>,
    ca_pem: String,
}

fn pki_err(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("lab PKI: {what}: {e}"))
}

/// The aws-lc-rs provider, built explicitly (rustls is built without a default provider).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

impl LabPki {
    /// Creates the CA.
    pub fn new() -> io::Result<LabPki> {
        let mut params = CertificateParams::new(Vec::<String>::new())
            .map_err(|e| pki_err("CA parameters", e))?;
        params.distinguished_name.push(DnType::CommonName, CA_NAME);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().map_err(|e| pki_err("CA key", e))?;
        let ca = CertifiedIssuer::self_signed(params, key).map_err(|e| pki_err("CA", e))?;
        let ca_pem = ca.pem();
        Ok(LabPki { ca, ca_pem })
    }

    /// The CA certificate, PEM: what a client trusts (`--tls-ca-file`).
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca.der().clone()
    }

    /// A server config (TLS 1.2 and 1.3) presenting a leaf for `names` (DNS names or IP
    /// literals), chain = leaf + CA. No client certificate is asked for.
    pub fn server_config(
        &self,
        names: &[&str],
        validity: CertValidity,
    ) -> io::Result<Arc<ServerConfig>> {
        let (chain, key) = self.server_leaf(names, validity)?;
        let config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| pki_err("protocol versions", e))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| pki_err("server certificate", e))?;
        Ok(Arc::new(config))
    }

    /// Like `server_config`, but asks for an optional client certificate issued by the lab CA,
    /// as an Exchange receive connector or an EOP inbound connector that attributes mail by
    /// certificate does. A client without one still gets in; a client with one not issued by
    /// the lab CA fails the handshake. The SMTP server records the subject per session.
    pub fn server_config_with_client_auth(
        &self,
        names: &[&str],
        validity: CertValidity,
    ) -> io::Result<Arc<ServerConfig>> {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.ca_der())
            .map_err(|e| pki_err("root store", e))?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .allow_unauthenticated()
            .build()
            .map_err(|e| pki_err("client verifier", e))?;
        let (chain, key) = self.server_leaf(names, validity)?;
        let config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| pki_err("protocol versions", e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| pki_err("server certificate", e))?;
        Ok(Arc::new(config))
    }

    /// A client certificate (CN = SAN = `name`) for a sending server that a connector
    /// attributes by certificate: (chain PEM = leaf + CA, PKCS#8 key PEM), the shapes
    /// `--tls-client-cert` and `--tls-client-key` read.
    pub fn client_identity_pem(&self, name: &str) -> io::Result<(String, String)> {
        let (cert, key) = self.client_leaf(name)?;
        Ok((
            format!("{}{}", cert.pem(), self.ca_pem),
            key.serialize_pem(),
        ))
    }

    /// The same client certificate as `client_identity_pem`, as rustls takes it.
    pub fn client_identity(&self, name: &str) -> io::Result<Identity> {
        let (cert, key) = self.client_leaf(name)?;
        Ok((vec![cert.der().clone(), self.ca_der()], pkcs8(&key)))
    }

    fn client_leaf(&self, name: &str) -> io::Result<(rcgen::Certificate, KeyPair)> {
        let (params, key) = leaf_params(&[name], ExtendedKeyUsagePurpose::ClientAuth)?;
        let cert = params
            .signed_by(&key, &self.ca)
            .map_err(|e| pki_err("client certificate", e))?;
        Ok((cert, key))
    }

    /// A server leaf for `names` (DNS names or IP literals) of the given validity, with its
    /// key: the chain is leaf + CA, or the leaf alone when self-signed.
    pub fn server_leaf(&self, names: &[&str], validity: CertValidity) -> io::Result<Identity> {
        let (cert, key) = self.issue_server(names, validity)?;
        let mut chain = vec![cert.der().clone()];
        if validity != CertValidity::SelfSigned {
            chain.push(self.ca_der());
        }
        Ok((chain, pkcs8(&key)))
    }

    /// The same leaf as PEM (chain, PKCS#8 key), for servers configured by files (Postfix).
    pub fn server_identity_pem(
        &self,
        names: &[&str],
        validity: CertValidity,
    ) -> io::Result<(String, String)> {
        let (cert, key) = self.issue_server(names, validity)?;
        let chain = match validity {
            CertValidity::SelfSigned => cert.pem(),
            _ => format!("{}{}", cert.pem(), self.ca_pem),
        };
        Ok((chain, key.serialize_pem()))
    }

    fn issue_server(
        &self,
        names: &[&str],
        validity: CertValidity,
    ) -> io::Result<(rcgen::Certificate, KeyPair)> {
        let wrong = [WRONG_NAME];
        let sans: &[&str] = match validity {
            CertValidity::WrongName => &wrong,
            _ => names,
        };
        let (mut params, key) = leaf_params(sans, ExtendedKeyUsagePurpose::ServerAuth)?;
        match validity {
            CertValidity::Expired => {
                params.not_before = date_time_ymd(2000, 1, 1);
                params.not_after = date_time_ymd(2001, 1, 1);
            }
            CertValidity::NotYetValid => {
                params.not_before = date_time_ymd(2090, 1, 1);
                params.not_after = date_time_ymd(2091, 1, 1);
            }
            _ => {
                // A year from today, like a real server certificate (rcgen's default runs to
                // 4096, which would show as two thousand years left).
                let today = OffsetDateTime::now_utc().date().midnight().assume_utc();
                params.not_before = today;
                params.not_after = today.saturating_add(Duration::days(365));
            }
        }
        let cert = if validity == CertValidity::SelfSigned {
            params
                .self_signed(&key)
                .map_err(|e| pki_err("self-signed certificate", e))?
        } else {
            params
                .signed_by(&key, &self.ca)
                .map_err(|e| pki_err("server certificate", e))?
        };
        Ok((cert, key))
    }
}

fn pkcs8(key: &KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))
}

/// Leaf parameters: CN = the first name, SANs = all names (IP literals become IP SANs).
fn leaf_params(
    names: &[&str],
    eku: ExtendedKeyUsagePurpose,
) -> io::Result<(CertificateParams, KeyPair)> {
    let sans: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(sans).map_err(|e| pki_err("leaf parameters", e))?;
    if let Some(first) = names.first() {
        params.distinguished_name.push(DnType::CommonName, *first);
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![eku];
    // OpenSSL-based peers find the issuer by AKI; webpki ignores it.
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().map_err(|e| pki_err("leaf key", e))?;
    Ok((params, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_every_kind() {
        let pki = LabPki::new().unwrap();
        assert!(pki.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        for v in [
            CertValidity::Valid,
            CertValidity::Expired,
            CertValidity::WrongName,
            CertValidity::NotYetValid,
            CertValidity::SelfSigned,
        ] {
            pki.server_config(&["mail.contoso.test", "127.0.0.1"], v)
                .unwrap();
            pki.server_config_with_client_auth(&["mail.contoso.test"], v)
                .unwrap();
        }
        let (chain, key) = pki.client_identity_pem("mail.contoso.test").unwrap();
        assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(key.contains("PRIVATE KEY"));
        let (chain, _) = pki.client_identity("mail.contoso.test").unwrap();
        assert_eq!(chain.len(), 2);
        let (chain, _) = pki
            .server_leaf(&["mx.contoso.test"], CertValidity::SelfSigned)
            .unwrap();
        assert_eq!(chain.len(), 1, "a self-signed leaf has no CA in its chain");
        let (chain, key) = pki
            .server_identity_pem(&["mx.contoso.test"], CertValidity::Valid)
            .unwrap();
        assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(key.contains("PRIVATE KEY"));
    }
}
