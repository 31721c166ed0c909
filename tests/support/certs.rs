//! A throw-away test PKI: a private CA and leaf certificates that are valid, expired, not yet
//! valid, issued for the wrong name or self-signed, plus rustls configs for the scripted server.
//!
//! Keys and certificates are generated per `TestPki`; the files the mxtrace binary needs (CA
//! bundle, client certificate and key) live in a unique temp directory removed on drop.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The name the `WrongName` leaf is issued for.
pub const WRONG_NAME: &str = "wrong.example.test";

/// Common name of the test CA.
pub const CA_NAME: &str = "mxtrace test CA";

/// Which server certificate to present; the String is the DNS name the client connects with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertKind {
    /// Issued by the CA for the name, valid now.
    Valid(String),
    /// Issued by the CA for the name, valid only in 2000.
    Expired(String),
    /// Issued by the CA for the name, valid only from 2090 on.
    NotYetValid(String),
    /// Issued by the CA for `wrong.example.test`, while the client expects the given name.
    WrongName(String),
    /// Self-signed for the name (not chained to the CA).
    SelfSigned(String),
}

impl CertKind {
    /// The name the client will connect with.
    pub fn name(&self) -> &str {
        match self {
            CertKind::Valid(n)
            | CertKind::Expired(n)
            | CertKind::NotYetValid(n)
            | CertKind::WrongName(n)
            | CertKind::SelfSigned(n) => n,
        }
    }
}

/// A private CA plus a temp directory for PEM files handed to the mxtrace binary.
pub struct TestPki {
    ca: CertifiedIssuer<'static, KeyPair>,
    ca_pem: String,
    dir: PathBuf,
    ca_file: PathBuf,
}

/// The aws-lc-rs provider, built explicitly (the crate enables no default provider).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

impl TestPki {
    /// Creates the CA ("mxtrace test CA") and writes its PEM into a fresh temp directory.
    pub fn new() -> TestPki {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, CA_NAME);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let ca = CertifiedIssuer::self_signed(params, key).expect("CA certificate");
        let ca_pem = ca.pem();
        let dir = unique_temp_dir();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, &ca_pem).expect("write CA PEM");
        TestPki {
            ca,
            ca_pem,
            dir,
            ca_file,
        }
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca.der().clone()
    }

    /// Path of the CA PEM file (inside `dir()`).
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The temp directory holding this PKI's files; removed on drop.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `contents` to `dir()/name` and returns the path.
    pub fn write_pem(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).expect("write PEM file");
        path
    }

    /// A root store holding only the test CA.
    pub fn root_store(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der()).expect("add CA to root store");
        roots
    }

    /// A plain rustls client config trusting only the test CA (for self-tests and raw clients).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        Arc::new(
            ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .expect("protocol versions")
                .with_root_certificates(self.root_store())
                .with_no_client_auth(),
        )
    }

    /// Like `client_config`, presenting the client certificate `client_cert(name)`.
    pub fn client_config_with_cert(&self, name: &str) -> Arc<ClientConfig> {
        let (chain, key) = self.client_identity(name);
        Arc::new(
            ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .expect("protocol versions")
                .with_root_certificates(self.root_store())
                .with_client_auth_cert(chain, key)
                .expect("client auth cert"),
        )
    }

    /// Server config (TLS 1.2 and 1.3) presenting the leaf of `kind`, chain = leaf + CA.
    pub fn server_config(&self, kind: &CertKind) -> Arc<ServerConfig> {
        let (chain, key) = self.leaf(kind);
        Arc::new(
            ServerConfig::builder_with_provider(provider())
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                .expect("protocol versions")
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .expect("server cert"),
        )
    }

    /// Like `server_config`, but asks (optionally) for a client certificate issued by the CA.
    /// Whether one was presented shows in `ServerLog::client_cert_presented`/`client_cert_subject`.
    pub fn server_config_with_client_auth(&self, kind: &CertKind) -> Arc<ServerConfig> {
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(self.root_store()), provider())
                .allow_unauthenticated()
                .build()
                .expect("client verifier");
        let (chain, key) = self.leaf(kind);
        Arc::new(
            ServerConfig::builder_with_provider(provider())
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                .expect("protocol versions")
                .with_client_cert_verifier(verifier)
                .with_single_cert(chain, key)
                .expect("server cert"),
        )
    }

    /// Issues a client certificate (CN = SAN = name) and writes `client-NAME.pem` (leaf + CA)
    /// and `client-NAME.key` (PKCS#8) into `dir()`.
    pub fn client_cert(&self, name: &str) -> (PathBuf, PathBuf) {
        let (cert_pem, key_pem) = self.client_pem(name);
        let file_stem = sanitize(name);
        let cert = self.write_pem(&format!("client-{file_stem}.pem"), &cert_pem);
        let key = self.write_pem(&format!("client-{file_stem}.key"), &key_pem);
        (cert, key)
    }

    /// A client certificate chain and key for rustls (same shape as `client_cert`).
    pub fn client_identity(
        &self,
        name: &str,
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let (params, key) = leaf_params(name, ExtendedKeyUsagePurpose::ClientAuth);
        let cert = params.signed_by(&key, &self.ca).expect("client cert");
        (vec![cert.der().clone(), self.ca_der()], pkcs8(&key))
    }

    fn client_pem(&self, name: &str) -> (String, String) {
        let (params, key) = leaf_params(name, ExtendedKeyUsagePurpose::ClientAuth);
        let cert = params.signed_by(&key, &self.ca).expect("client cert");
        (
            format!("{}{}", cert.pem(), self.ca_pem),
            key.serialize_pem(),
        )
    }

    /// The server chain and key for `kind`.
    pub fn leaf(&self, kind: &CertKind) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let san = match kind {
            CertKind::WrongName(_) => WRONG_NAME,
            other => other.name(),
        };
        let (mut params, key) = leaf_params(san, ExtendedKeyUsagePurpose::ServerAuth);
        match kind {
            CertKind::Expired(_) => {
                params.not_before = date_time_ymd(2000, 1, 1);
                params.not_after = date_time_ymd(2001, 1, 1);
            }
            CertKind::NotYetValid(_) => {
                params.not_before = date_time_ymd(2090, 1, 1);
                params.not_after = date_time_ymd(2091, 1, 1);
            }
            _ => {}
        }
        let chain = if let CertKind::SelfSigned(_) = kind {
            vec![params
                .self_signed(&key)
                .expect("self-signed leaf")
                .der()
                .clone()]
        } else {
            let cert = params.signed_by(&key, &self.ca).expect("leaf");
            vec![cert.der().clone(), self.ca_der()]
        };
        (chain, pkcs8(&key))
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Leaf parameters: CN and SAN = name (an IP literal becomes an IP SAN), one EKU.
fn leaf_params(name: &str, eku: ExtendedKeyUsagePurpose) -> (CertificateParams, KeyPair) {
    let mut params = CertificateParams::new(vec![name.to_string()]).expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![eku];
    // OpenSSL-based peers (e.g. the Postfix tests) use the AKI to find the issuer; webpki ignores it.
    params.use_authority_key_identifier_extension = true;
    (params, KeyPair::generate().expect("leaf key"))
}

fn pkcs8(key: &KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A new directory under the system temp dir, unique per process and call.
fn unique_temp_dir() -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let base = std::env::temp_dir();
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = base.join(format!("mxtrace-pki-{}-{n}-{nanos}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return dir,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("cannot create temp dir {}: {e}", dir.display()),
        }
    }
}
