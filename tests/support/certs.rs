//! The tests' PKI is the lab's (`mxtrace_lab::pki::LabPki`): this adds the leaf kinds by the
//! name the client connects with, rustls client configs, and a temp directory for the PEM files
//! the mxtrace binary reads (CA bundle, client certificate and key), removed on drop.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use mxtrace_lab::pki::LabPki;
pub use mxtrace_lab::pki::{CertValidity, Identity, CA_NAME, WRONG_NAME};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::CertificateDer;

/// Which server certificate to present; the String is the DNS name the client connects with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertKind {
    /// Issued by the CA for the name, valid now.
    Valid(String),
    /// Issued by the CA for the name, valid only in 2000.
    Expired(String),
    /// Issued by the CA for the name, valid only from 2090 on.
    NotYetValid(String),
    /// Issued by the CA for `WRONG_NAME`, while the client expects the given name.
    WrongName(String),
    /// Self-signed for the name (not chained to the CA).
    SelfSigned(String),
}

impl CertKind {
    /// The name the client will connect with.
    pub fn name(&self) -> &str {
        self.parts().0
    }

    fn parts(&self) -> (&str, CertValidity) {
        match self {
            CertKind::Valid(n) => (n, CertValidity::Valid),
            CertKind::Expired(n) => (n, CertValidity::Expired),
            CertKind::NotYetValid(n) => (n, CertValidity::NotYetValid),
            CertKind::WrongName(n) => (n, CertValidity::WrongName),
            CertKind::SelfSigned(n) => (n, CertValidity::SelfSigned),
        }
    }
}

/// The lab CA plus a temp directory for PEM files handed to the mxtrace binary.
pub struct TestPki {
    pki: LabPki,
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
    /// Creates the CA and writes its PEM into a fresh temp directory.
    pub fn new() -> TestPki {
        let pki = LabPki::new().expect("lab CA");
        let ca_pem = pki.ca_pem();
        let dir = unique_temp_dir();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, &ca_pem).expect("write CA PEM");
        TestPki {
            pki,
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
        self.pki.ca_der()
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

    /// A root store holding only the CA.
    pub fn root_store(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der()).expect("add CA to root store");
        roots
    }

    /// A plain rustls client config trusting only the CA (for self-tests and raw clients).
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
        let (name, validity) = kind.parts();
        self.pki
            .server_config(&[name], validity)
            .expect("server config")
    }

    /// Like `server_config`, but asks (optionally) for a client certificate issued by the CA.
    /// Whether one was presented shows in `ServerLog::client_cert_presented`/`client_cert_subject`.
    pub fn server_config_with_client_auth(&self, kind: &CertKind) -> Arc<ServerConfig> {
        let (name, validity) = kind.parts();
        self.pki
            .server_config_with_client_auth(&[name], validity)
            .expect("server config")
    }

    /// Issues a client certificate (CN = SAN = name) and writes `client-NAME.pem` (leaf + CA)
    /// and `client-NAME.key` (PKCS#8) into `dir()`.
    pub fn client_cert(&self, name: &str) -> (PathBuf, PathBuf) {
        let (cert_pem, key_pem) = self.pki.client_identity_pem(name).expect("client cert");
        let file_stem = sanitize(name);
        let cert = self.write_pem(&format!("client-{file_stem}.pem"), &cert_pem);
        let key = self.write_pem(&format!("client-{file_stem}.key"), &key_pem);
        (cert, key)
    }

    /// A client certificate chain and key for rustls (same shape as `client_cert`).
    pub fn client_identity(&self, name: &str) -> Identity {
        self.pki.client_identity(name).expect("client cert")
    }

    /// The server chain and key for `kind`.
    pub fn leaf(&self, kind: &CertKind) -> Identity {
        let (name, validity) = kind.parts();
        self.pki.server_leaf(&[name], validity).expect("leaf")
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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
