//! TLS for SMTP: rustls client configurations (aws-lc-rs, explicit), a verifier that records
//! why a certificate failed instead of only failing (report, and go on unless
//! `--tls-verify strict`: the rest of the path can still be seen), and inspection of what the server presented.

use crate::model::{CertInfo, TlsReport};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{aws_lc_rs as rustls_aws, CryptoProvider};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyMode {
    /// Record why verification failed and what was presented, then carry on.
    Report,
    /// A certificate that does not verify ends the probe.
    Strict,
}

/// What the user asked of TLS.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    pub verify: VerifyMode,
    /// Extra trust anchors (PEM), e.g. a private CA; the public web PKI roots stay trusted.
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// Offer only classic key-exchange groups (no post-quantum hybrid key share): some
    /// middleboxes drop a ClientHello that large.
    pub classic_groups: bool,
}

/// The verification result the verifier saw, shared with the probe.
#[derive(Debug, Default)]
pub struct VerifyRecord {
    /// None until the server's certificate was checked.
    pub result: Option<Result<(), String>>,
    /// The chain as presented, leaf first; kept even when the handshake then fails.
    pub presented: Vec<CertificateDer<'static>>,
}

pub type SharedRecord = Arc<Mutex<VerifyRecord>>;

/// Wraps the WebPKI verifier: records the outcome; in report mode accepts the chain anyway.
/// Handshake signatures are always checked by the inner verifier, so a server still has to hold
/// the key of the certificate it presents.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    mode: VerifyMode,
    record: SharedRecord,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result =
            self.inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now);
        if let Ok(mut rec) = self.record.lock() {
            rec.presented = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.clone().into_owned())
                .collect();
            rec.result = Some(result.as_ref().map(|_| ()).map_err(describe_verify_error));
        }
        match (result, self.mode) {
            (Ok(v), _) => Ok(v),
            (Err(_), VerifyMode::Report) => Ok(ServerCertVerified::assertion()),
            (Err(e), VerifyMode::Strict) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A short reason an admin can act on, instead of rustls' enum names; the library's words
/// follow in parentheses as the detail.
fn describe_verify_error(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(c) => format!("{} ({e})", certificate_reason(c)),
        _ => e.to_string(),
    }
}

/// Path-building limits of the WebPKI verifier, which rustls reports as `CertificateError::
/// Other` around a `webpki::Error` (rustls-webpki `src/error.rs`); matched by the variant's
/// name because that type is not re-exported by rustls.
const PATH_LIMITS: &[(&str, &str)] = &[
    (
        "MaximumPathDepthExceeded",
        "certificate path too deep: more intermediate CAs than the verifier follows (6 in \
         WebPKI); send only the leaf and the intermediates up to one trusted root",
    ),
    (
        "MaximumPathBuildCallsExceeded",
        "certificate chain too tangled to verify (too many candidate paths); send only the \
         leaf and the intermediates up to one trusted root",
    ),
    (
        "MaximumSignatureChecksExceeded",
        "certificate chain needs too many signature checks to verify; send only the leaf and \
         the intermediates up to one trusted root",
    ),
];

/// What is wrong with the certificate, and what to do about it.
fn certificate_reason(c: &CertificateError) -> String {
    let text = match c {
        CertificateError::UnknownIssuer => {
            "not issued by a trusted CA (unknown CA: a private CA, a certificate that signed \
             itself, or missing intermediates; pass --tls-ca-file to trust a private CA)"
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "certificate expired: renew it on the server"
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate not valid yet: its start date is in the future, or a clock is wrong"
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "certificate does not match the name (name mismatch: no SAN covers the host name; \
             --tls-name sets the name checked)"
        }
        CertificateError::Revoked => "certificate revoked by its CA",
        CertificateError::BadSignature => "certificate signature does not verify",
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "certificate not issued for server authentication (extended key usage)"
        }
        CertificateError::BadEncoding => "certificate could not be parsed",
        CertificateError::Other(o) => {
            let name = format!("{o:?}");
            return PATH_LIMITS
                .iter()
                .find(|(variant, _)| name.contains(variant))
                .map_or_else(
                    || "the certificate was rejected by the verifier".to_string(),
                    |(_, why)| why.to_string(),
                );
        }
        _ => "the certificate was rejected by the verifier",
    };
    text.to_string()
}

/// How TLS was started on a connection; every handshake error names it, since the advice
/// differs (a port that wants implicit TLS, or a server that agreed to STARTTLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsStart {
    /// TLS from the first byte (`--tls-implicit`, port 465).
    Implicit,
    /// TLS after `220` to STARTTLS (RFC 3207).
    Starttls,
}

impl TlsStart {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsStart::Implicit => "implicit TLS handshake",
            TlsStart::Starttls => "TLS handshake after STARTTLS",
        }
    }
}

/// A failed handshake in words: what happened and what to do, the mode, and the raw error as
/// the detail.
pub fn describe_handshake_error(e: &std::io::Error, start: TlsStart) -> String {
    let reason = match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(err) => rustls_reason(err, start),
        None => io_reason(e),
    };
    format!("{} failed: {reason} (detail: {e})", start.as_str())
}

fn rustls_reason(e: &rustls::Error, start: TlsStart) -> String {
    use rustls::{AlertDescription as A, InvalidMessage as M};
    match e {
        rustls::Error::InvalidCertificate(c) => certificate_reason(c),
        rustls::Error::InvalidMessage(
            M::HandshakePayloadTooLarge | M::CertificatePayloadTooLarge | M::MessageTooLarge,
        )
        | rustls::Error::PeerSentOversizedRecord => {
            "message too large: a handshake message from the server (usually its certificate \
             chain) is over the TLS library's limit; send only the leaf and its intermediates"
                .to_string()
        }
        rustls::Error::InvalidMessage(_) => match start {
            TlsStart::Starttls => "the server did not answer with TLS after agreeing to STARTTLS \
             (it sent something that is not a TLS record)"
                .to_string(),
            TlsStart::Implicit => "the server did not answer with TLS: this port may expect \
             plain SMTP (drop --tls-implicit and use STARTTLS)"
                .to_string(),
        },
        rustls::Error::PeerIncompatible(_) | rustls::Error::AlertReceived(A::ProtocolVersion) => {
            "TLS incompatible: no protocol version in common (mxtrace speaks TLS 1.2 and 1.3; \
             the server may be limited to TLS 1.0/1.1)"
                .to_string()
        }
        rustls::Error::AlertReceived(A::HandshakeFailure | A::InsufficientSecurity) => {
            "the server refused the handshake (handshake failure alert: no shared cipher or \
             group; try --tls-classic-groups, and check the server's TLS settings)"
                .to_string()
        }
        rustls::Error::AlertReceived(a) => format!(
            "the server ended the handshake with the TLS alert {a:?}: check the server's TLS \
             log for why"
        ),
        rustls::Error::NoCertificatesPresented => "the server presented no certificate".to_string(),
        rustls::Error::PeerMisbehaved(_) => {
            "the server broke the TLS protocol during the handshake".to_string()
        }
        _ => "the handshake failed".to_string(),
    }
}

fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => {
            "the server closed the connection during the handshake (a TLS version mismatch, or \
             a middlebox inspecting SMTP)"
                .to_string()
        }
        _ => "the handshake failed on the network".to_string(),
    }
}

/// Errors building the TLS configuration: bad files the user named (exit 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    #[error("--tls-ca-file {}: {source}", path.display())]
    CaFile {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("--tls-ca-file {}: not a CA certificate: {source}", path.display())]
    NotCa {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("--tls-ca-file {}: no PEM certificate found", path.display())]
    NoCaCertificate { path: PathBuf },
    #[error("building the certificate verifier: {0}")]
    Verifier(#[source] rustls::client::VerifierBuilderError),
    #[error("TLS configuration: {0}")]
    Config(#[source] rustls::Error),
    #[error("--tls-client-cert {}: {source}", path.display())]
    ClientCert {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("--tls-client-cert {}: no PEM certificate found", path.display())]
    NoClientCertificate { path: PathBuf },
    /// The key's own error text can quote file content: only the file is named.
    #[error("--tls-client-key {}: no readable PEM private key", path.display())]
    ClientKey { path: PathBuf },
    #[error("client certificate and key: {0}")]
    ClientAuth(#[source] rustls::Error),
    #[error("--tls-client-cert and --tls-client-key go together")]
    CertWithoutKey,
}

fn provider(classic_groups: bool) -> CryptoProvider {
    let mut p = rustls_aws::default_provider();
    if classic_groups {
        p.kx_groups = vec![
            rustls_aws::kx_group::X25519,
            rustls_aws::kx_group::SECP256R1,
            rustls_aws::kx_group::SECP384R1,
        ];
    }
    p
}

/// Builds the client configuration and the record its verifier fills in. One per connection,
/// so each probe's record is its own.
pub fn client_config(
    opts: &TlsOptions,
) -> Result<(Arc<ClientConfig>, SharedRecord), TlsConfigError> {
    let provider = Arc::new(provider(opts.classic_groups));
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &opts.ca_file {
        let certs =
            CertificateDer::pem_file_iter(path).map_err(|source| TlsConfigError::CaFile {
                path: path.clone(),
                source,
            })?;
        let mut added = 0;
        for cert in certs {
            let cert = cert.map_err(|source| TlsConfigError::CaFile {
                path: path.clone(),
                source,
            })?;
            roots.add(cert).map_err(|source| TlsConfigError::NotCa {
                path: path.clone(),
                source,
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(TlsConfigError::NoCaCertificate { path: path.clone() });
        }
    }
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(TlsConfigError::Verifier)?;
    let record = SharedRecord::default();
    let verifier = Arc::new(RecordingVerifier {
        inner,
        mode: opts.verify,
        record: record.clone(),
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsConfigError::Config)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match (&opts.client_cert, &opts.client_key) {
        (Some(cert), Some(key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<Result<_, _>>())
                .map_err(|source| TlsConfigError::ClientCert {
                    path: cert.clone(),
                    source,
                })?;
            if chain.is_empty() {
                return Err(TlsConfigError::NoClientCertificate { path: cert.clone() });
            }
            // The key's own error text can quote file content: keep only the file name.
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|_| TlsConfigError::ClientKey { path: key.clone() })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(TlsConfigError::ClientAuth)?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(TlsConfigError::CertWithoutKey),
    };
    Ok((Arc::new(config), record))
}

/// The TLS section of the report, from the established connection and the verifier's record.
pub fn report(
    conn: &rustls::ClientConnection,
    record: &SharedRecord,
    client_cert: bool,
) -> TlsReport {
    let mut rep = report_from_record(record, client_cert);
    rep.version = conn
        .protocol_version()
        .map(|v| tls_version_name(v).to_string());
    rep.cipher = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()));
    rep.key_exchange_group = conn
        .negotiated_key_exchange_group()
        .map(|g| format!("{:?}", g.name()));
    rep.alpn = conn
        .alpn_protocol()
        .map(|a| String::from_utf8_lossy(a).into_owned());
    if let Some(certs) = conn.peer_certificates() {
        if rep.chain.is_empty() {
            rep.chain = certs.iter().map(|c| cert_info(c.as_ref())).collect();
        }
    }
    rep
}

/// What is known when the handshake failed: the verifier may still have seen the chain.
pub fn report_from_record(record: &SharedRecord, client_cert: bool) -> TlsReport {
    let (verified, verify_error, chain) = match record.lock() {
        Ok(rec) => {
            let (verified, err) = match &rec.result {
                Some(Ok(())) => (true, None),
                Some(Err(e)) => (false, Some(e.clone())),
                None => (false, Some("no certificate was verified".to_string())),
            };
            (
                verified,
                err,
                rec.presented
                    .iter()
                    .map(|c| cert_info(c.as_ref()))
                    .collect(),
            )
        }
        Err(_) => (
            false,
            Some("verification record unavailable".to_string()),
            Vec::new(),
        ),
    };
    TlsReport {
        version: None,
        cipher: None,
        key_exchange_group: None,
        alpn: None,
        verified,
        verify_error,
        client_certificate_sent: client_cert,
        chain,
        verification: None,
    }
}

fn tls_version_name(v: rustls::ProtocolVersion) -> &'static str {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
        rustls::ProtocolVersion::TLSv1_1 => "TLSv1.1",
        rustls::ProtocolVersion::TLSv1_0 => "TLSv1.0",
        _ => "unknown",
    }
}

/// Parses one DER certificate for the report. A certificate x509-parser cannot read is still
/// listed, with its fingerprint, so the admin sees something was presented.
pub fn cert_info(der: &[u8]) -> CertInfo {
    let sha256 = hex_colon(aws_lc_rs_digest(der).as_ref());
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => {
            let not_before = cert.validity().not_before.timestamp();
            let not_after = cert.validity().not_after.timestamp();
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            let mut sans = Vec::new();
            if let Ok(Some(ext)) = cert.subject_alternative_name() {
                for name in &ext.value.general_names {
                    match name {
                        x509_parser::extensions::GeneralName::DNSName(d) => {
                            sans.push(d.to_string())
                        }
                        x509_parser::extensions::GeneralName::IPAddress(ip) => {
                            if let Some(ip) = ip_from_bytes(ip) {
                                sans.push(ip.to_string())
                            }
                        }
                        _ => {}
                    }
                }
            }
            let subject = cert.subject().to_string();
            let issuer = cert.issuer().to_string();
            CertInfo {
                self_signed: subject == issuer,
                subject,
                sans,
                issuer,
                serial: cert.tbs_certificate.raw_serial_as_string(),
                not_before: rfc3339(not_before),
                not_after: rfc3339(not_after),
                days_left: (not_after - now).div_euclid(86_400),
                sha256,
            }
        }
        Err(e) => CertInfo {
            subject: format!("(unparsable certificate: {e})"),
            sans: Vec::new(),
            issuer: String::new(),
            serial: String::new(),
            not_before: String::new(),
            not_after: String::new(),
            days_left: 0,
            self_signed: false,
            sha256,
        },
    }
}

fn aws_lc_rs_digest(der: &[u8]) -> aws_lc_rs::digest::Digest {
    ::aws_lc_rs::digest::digest(&::aws_lc_rs::digest::SHA256, der)
}

fn ip_from_bytes(b: &[u8]) -> Option<std::net::IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

fn rfc3339(unix: i64) -> String {
    let t = if unix >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(unix as u64))
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(std::time::Duration::from_secs(unix.unsigned_abs()))
    };
    match t {
        Some(t) => humantime::format_rfc3339_seconds(t).to_string(),
        None => unix.to_string(),
    }
}

fn hex_colon(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push_str(&format!("{b:02X}"));
    }
    s
}
