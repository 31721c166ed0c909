//! TLS for SMTP: rustls client configurations (aws-lc-rs, explicit), a verifier that records
//! why a certificate failed instead of only failing (report, and go on unless
//! `--tls-verify strict`: the rest of the path can still be seen), and inspection of what the server presented.

use mxtrace_proto::model::{CertInfo, TlsReport};
pub use mxtrace_proto::spec::VerifyMode;
use mxtrace_proto::spec::{Field, Naming};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{aws_lc_rs as rustls_aws, CryptoProvider};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::SystemTime;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

pub mod dane;

/// What the user asked of TLS.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    pub verify: VerifyMode,
    /// Extra trust anchors (PEM), e.g. a private CA; the public web PKI roots stay trusted.
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// Offer only classic key-exchange groups. By default (rustls without its
    /// `prefer-post-quantum` feature) the ClientHello carries one X25519 key share and lists
    /// X25519MLKEM768 after the classic groups, so its 1.2 KB key share is sent only when a
    /// server asks for it (HelloRetryRequest); this drops X25519MLKEM768 from the list, for
    /// servers or middleboxes that fail on that retry. Pinned by tests/tls_auth_findings.rs.
    pub classic_groups: bool,
    /// The MX host's secure, usable TLSA records: when not empty, the certificate is
    /// authenticated by DANE (RFC 7672 3.1) instead of the trust stores.
    pub dane: Vec<crate::dns::Tlsa>,
}

/// The trust store whose roots verified the server's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustStore {
    /// Mozilla's root program, compiled in (webpki-roots).
    Mozilla,
    /// The operating system's store (rustls-native-certs: /etc/ssl/certs on Debian,
    /// `SSL_CERT_FILE` / `SSL_CERT_DIR` when set): where enterprise CAs are installed.
    System,
    /// The certificates given with `--tls-ca-file`.
    CaFile,
    /// The MX host's TLSA records (DANE, RFC 7672).
    Dane,
}

impl TrustStore {
    pub fn as_str(self) -> &'static str {
        match self {
            TrustStore::Mozilla => "mozilla",
            TrustStore::System => "system",
            TrustStore::CaFile => "ca-file",
            TrustStore::Dane => "dane",
        }
    }
}

/// The verification result the verifier saw, shared with the probe.
#[derive(Debug, Default)]
pub struct VerifyRecord {
    /// None until the server's certificate was checked.
    pub result: Option<Result<(), VerifyFailure>>,
    /// Which store verified the chain, when one did.
    pub trust_store: Option<TrustStore>,
    /// The chain as presented, leaf first; kept even when the handshake then fails.
    pub presented: Vec<CertificateDer<'static>>,
    /// The system store was read during this handshake (the first chain in the process that
    /// neither Mozilla's roots nor `--tls-ca-file` verified): how long, and how many roots.
    /// That time is mxtrace's own: the probe leaves it out of `tls_handshake` and says so.
    pub system_store_read: Option<SystemStoreRead>,
}

/// One read of the operating system's trust store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemStoreRead {
    pub took: std::time::Duration,
    pub roots: usize,
}

pub type SharedRecord = Arc<Mutex<VerifyRecord>>;

/// Wraps one WebPKI verifier per trust store: records the outcome and the store that verified;
/// in report mode accepts the chain anyway. Handshake signatures are always checked by a
/// WebPKI verifier, so a server still has to hold the key of the certificate it presents.
#[derive(Debug)]
struct RecordingVerifier {
    /// Tried in order, then the system store; never empty (Mozilla's roots are always there).
    stores: Vec<(TrustStore, Arc<WebPkiServerVerifier>)>,
    /// The `--tls-ca-file` certificates: a leaf equal to one of them is its own anchor.
    anchors: Vec<CertificateDer<'static>>,
    mode: VerifyMode,
    /// The record of a configuration made for one connection; None in a shared one
    /// (`ConfigCache`), which writes to the record of the handshake in progress (`recorded`).
    record: Option<SharedRecord>,
    /// TLSA records that replace the stores (DANE) when not empty.
    dane: Vec<crate::dns::Tlsa>,
    provider: Arc<CryptoProvider>,
}

tokio::task_local! {
    /// The record of the handshake this task is making with a shared configuration.
    static RECORD: SharedRecord;
}

/// Runs a handshake (`fut`) so that a shared configuration's verifier writes to `record`. The
/// verifier is called while the handshake is polled, on this task, so a task-local reaches it.
pub async fn recorded<F: std::future::Future>(record: SharedRecord, fut: F) -> F::Output {
    RECORD.scope(record, fut).await
}

impl RecordingVerifier {
    /// Writes to this connection's record: the configuration's own, or the handshake's.
    fn write(&self, f: impl FnOnce(&mut VerifyRecord)) {
        let write = |r: &SharedRecord| {
            if let Ok(mut rec) = r.lock() {
                f(&mut rec);
            }
        };
        match &self.record {
            Some(r) => write(r),
            None => {
                let _ = RECORD.try_with(write);
            }
        }
    }

    /// The system store's verifier, tried last: it is needed only when neither Mozilla's roots
    /// nor `--tls-ca-file` verify, so it is read then, once per process, and the read is
    /// recorded for the probe to show.
    fn system(&self) -> Option<(TrustStore, Arc<WebPkiServerVerifier>)> {
        let (store, read) = system_store();
        if let Some(read) = read {
            self.write(|rec| rec.system_store_read = Some(read));
        }
        Some((TrustStore::System, store?.clone()))
    }

    fn signatures(&self) -> Result<&WebPkiServerVerifier, rustls::Error> {
        self.stores
            .first()
            .map(|(_, v)| v.as_ref())
            .ok_or_else(|| rustls::Error::General("no certificate verifier".into()))
    }

    /// Each store in turn; the first that verifies wins. Otherwise the most telling error: one
    /// about the certificate itself (expiry, name) beats "unknown issuer" from another store.
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<TrustStore, rustls::Error> {
        let mut best: Option<rustls::Error> = None;
        for (store, v) in self
            .stores
            .iter()
            .cloned()
            .chain(std::iter::once_with(|| self.system()).flatten())
        {
            match v.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
                Ok(_) => return Ok(store),
                Err(e) => {
                    let unknown = matches!(
                        best,
                        None | Some(rustls::Error::InvalidCertificate(
                            CertificateError::UnknownIssuer
                        ))
                    );
                    if unknown {
                        best = Some(e);
                    }
                }
            }
        }
        let err = best.unwrap_or(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        if is_ca_used_as_end_entity(&err) && self.anchors.iter().any(|a| a == end_entity) {
            return self_anchored(end_entity, server_name).map(|()| TrustStore::CaFile);
        }
        Err(err)
    }
}

/// rustls reports webpki's `CaUsedAsEndEntity` as `CertificateError::Other` (not re-exported):
/// matched by the variant's name, as `PATH_LIMITS` is.
fn is_ca_used_as_end_entity(e: &rustls::Error) -> bool {
    matches!(e, rustls::Error::InvalidCertificate(CertificateError::Other(o))
        if format!("{o:?}").contains("CaUsedAsEndEntity"))
}

/// A leaf that is itself a configured anchor (a self-signed certificate with CA:TRUE, as
/// `openssl req -x509` makes): trusted as OpenSSL trusts it, because the anchor is the
/// certificate. WebPKI refuses a CA certificate as an end entity (rustls/webpki issue #205,
/// briansmith/webpki issue #114), so the remaining checks are made here: name and validity.
fn self_anchored(
    end_entity: &CertificateDer<'_>,
    name: &ServerName<'_>,
) -> Result<(), rustls::Error> {
    let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
    rustls::client::verify_server_name(&parsed, name)?;
    let (_, cert) = x509_parser::parse_x509_certificate(end_entity.as_ref())
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let now = x509_parser::time::ASN1Time::now();
    if cert.validity().not_after < now {
        return Err(CertificateError::Expired.into());
    }
    if cert.validity().not_before > now {
        return Err(CertificateError::NotValidYet.into());
    }
    Ok(())
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
        let (result, failure) = if self.dane.is_empty() {
            let r = self.check(end_entity, intermediates, server_name, ocsp, now);
            let d = r
                .as_ref()
                .map(|_| ())
                .map_err(|e| VerifyFailure::stores(e, end_entity, intermediates));
            (r, d)
        } else {
            let d = dane::verify(
                &self.dane,
                end_entity,
                intermediates,
                server_name,
                now,
                &self.provider,
            );
            let r = d.clone().map(|()| TrustStore::Dane).map_err(|_| {
                rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
            });
            (r, d.map_err(VerifyFailure::Dane))
        };
        self.write(|rec| {
            rec.presented = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.clone().into_owned())
                .collect();
            rec.trust_store = result.as_ref().ok().copied();
            rec.result = Some(failure);
        });
        match (result, self.mode) {
            (Ok(_), _) | (Err(_), VerifyMode::Report) => Ok(ServerCertVerified::assertion()),
            (Err(e), VerifyMode::Strict) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures()?
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures()?
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures()
            .map(|v| v.supported_verify_schemes())
            .unwrap_or_default()
    }
}

/// Why the presented chain was not trusted, kept as it was found until a report words it
/// for its front end (`describe`).
#[derive(Debug, Clone)]
pub enum VerifyFailure {
    /// No trust store verified the chain: the verifier's error, and what the leaf is.
    Stores {
        error: rustls::Error,
        /// The leaf names itself as issuer and came alone.
        self_signed: bool,
        /// `issuer CN=...` of the leaf.
        issuer: String,
    },
    /// The chain matches none of the TLSA records (DANE).
    Dane(dane::DaneMismatch),
}

impl VerifyFailure {
    fn stores(
        e: &rustls::Error,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> VerifyFailure {
        VerifyFailure::Stores {
            error: e.clone(),
            self_signed: intermediates.is_empty() && is_self_issued(end_entity),
            issuer: issuer_of(end_entity),
        }
    }

    /// A short reason an admin can act on, instead of rustls' enum names; the library's words
    /// follow in parentheses as the detail. The chain tells a self-signed certificate from
    /// one issued by a CA that is not trusted here. Settings are named as `naming` says.
    pub fn describe(&self, naming: Naming) -> String {
        let (e, self_signed, issuer) = match self {
            VerifyFailure::Dane(d) => return d.to_string(),
            VerifyFailure::Stores {
                error,
                self_signed,
                issuer,
            } => (error, *self_signed, issuer),
        };
        let ca_file = Field::TlsCaFile.name(naming);
        let reason = match e {
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) if self_signed => {
                format!(
                    "self-signed certificate, not issued by a CA: no trust store has it (pass \
                     this certificate with {ca_file} to trust it)"
                )
            }
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
                "issued by an untrusted CA ({issuer}): a private CA, or intermediates the \
                 server does not send (pass the CA's certificate with {ca_file} to trust it)"
            ),
            _ if is_ca_used_as_end_entity(e) && self_signed => format!(
                "self-signed certificate marked as a CA (basicConstraints CA:TRUE, the default \
                 of openssl req -x509), not trusted here: pass this same certificate with \
                 {ca_file} to trust it as its own anchor"
            ),
            _ if is_ca_used_as_end_entity(e) => "the server presents a CA certificate \
                 (basicConstraints CA:TRUE) as its own: issue it a server certificate \
                 (CA:FALSE) from that CA"
                .to_string(),
            rustls::Error::InvalidCertificate(c) => certificate_reason(c, naming),
            _ => return e.to_string(),
        };
        format!("{reason} ({e})")
    }
}

/// Subject equals issuer: the certificate names itself as its issuer.
fn is_self_issued(der: &CertificateDer<'_>) -> bool {
    x509_parser::parse_x509_certificate(der.as_ref())
        .map(|(_, c)| c.subject() == c.issuer())
        .unwrap_or(false)
}

fn issuer_of(der: &CertificateDer<'_>) -> String {
    x509_parser::parse_x509_certificate(der.as_ref())
        .map(|(_, c)| format!("issuer {}", c.issuer()))
        .unwrap_or_else(|_| "issuer unreadable".to_string())
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
fn certificate_reason(c: &CertificateError, naming: Naming) -> String {
    let text = match c {
        CertificateError::UnknownIssuer => {
            return format!(
                "not issued by a trusted CA (unknown CA: a private CA, a certificate that \
                 signed itself, or missing intermediates; pass {} to trust a private CA)",
                Field::TlsCaFile.name(naming)
            )
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "certificate expired: renew it on the server"
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate not valid yet: its start date is in the future, or a clock is wrong"
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            return format!(
                "certificate does not match the name (name mismatch: no SAN covers the host \
                 name; {} sets the name checked)",
                Field::TlsName.name(naming)
            )
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
/// the detail. `plaintext` is the server's first line when it did not start with a TLS record
/// (`Sniffed::plaintext_start`).
pub fn describe_handshake_error(
    e: &std::io::Error,
    start: TlsStart,
    plaintext: Option<&str>,
    naming: Naming,
) -> String {
    let reason = match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(err @ rustls::Error::InvalidMessage(_)) => match plaintext {
            Some(line) => not_tls(start, line, naming),
            None => rustls_reason(err, start, naming),
        },
        Some(err) => rustls_reason(err, start, naming),
        None => io_reason(e),
    };
    format!("{} failed: {reason} (detail: {e})", start.as_str())
}

/// The server sent text where TLS was due: quoted, so the admin sees what the port speaks.
fn not_tls(start: TlsStart, line: &str, naming: Naming) -> String {
    match start {
        TlsStart::Starttls => format!(
            "the server did not answer with TLS after agreeing to STARTTLS: it sent {line:?}"
        ),
        TlsStart::Implicit => format!(
            "the server answered in plaintext: it sent {line:?} where a TLS ServerHello was \
             expected, so this port does not do implicit TLS; drop {} (use STARTTLS, or port \
             465)",
            Field::TlsImplicit.name(naming)
        ),
    }
}

fn rustls_reason(e: &rustls::Error, start: TlsStart, naming: Naming) -> String {
    use rustls::{AlertDescription as A, InvalidMessage as M};
    match e {
        rustls::Error::InvalidCertificate(c) => certificate_reason(c, naming),
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
            // A plain SMTP port greets first: its "220 ..." arrives where a ServerHello was due.
            TlsStart::Implicit => format!(
                "the server answered in plaintext where a TLS ServerHello was expected (a plain \
                 SMTP port sends its 220 greeting first): this port does not do implicit TLS; \
                 drop {} (use STARTTLS, or port 465)",
                Field::TlsImplicit.name(naming)
            ),
        },
        rustls::Error::PeerIncompatible(_) | rustls::Error::AlertReceived(A::ProtocolVersion) => {
            "TLS incompatible: no protocol version in common (mxtrace speaks TLS 1.2 and 1.3; \
             the server may be limited to TLS 1.0/1.1)"
                .to_string()
        }
        rustls::Error::AlertReceived(A::HandshakeFailure | A::InsufficientSecurity) => format!(
            "the server refused the handshake (handshake failure alert: no shared cipher or \
             group; try {}, and check the server's TLS settings)",
            Field::TlsClassicGroups.on().word(naming)
        ),
        rustls::Error::AlertReceived(
            a @ (A::BadCertificate
            | A::CertificateRequired
            | A::UnknownCA
            | A::AccessDenied
            | A::CertificateUnknown
            | A::UnsupportedCertificate
            | A::CertificateExpired
            | A::CertificateRevoked),
        ) => format!(
            "the server rejected the client's certificate (alert {}): it requires a client \
             certificate it trusts ({} / {})",
            alert_name(*a),
            Field::TlsClientCert.name(naming),
            Field::TlsClientKey.name(naming)
        ),
        // internal_error and the like: nothing the client offered is refused, the server
        // gives up on its own side (no usable key or certificate, a library fault).
        rustls::Error::AlertReceived(a) => format!(
            "the server aborted the TLS handshake (alert {}): its TLS configuration or library \
             is broken; check the server's TLS log",
            alert_name(*a)
        ),
        rustls::Error::NoCertificatesPresented => "the server presented no certificate".to_string(),
        rustls::Error::PeerMisbehaved(_) => {
            "the server broke the TLS protocol during the handshake".to_string()
        }
        _ => "the handshake failed".to_string(),
    }
}

/// The alert's name as RFC 8446 6.2 writes it (`internal_error`), from rustls' variant name.
fn alert_name(a: rustls::AlertDescription) -> String {
    let mut out = String::new();
    let mut prev_upper = true;
    for c in format!("{a:?}").chars() {
        if c.is_ascii_uppercase() && !prev_upper {
            out.push('_');
        }
        prev_upper = c.is_ascii_uppercase();
        out.push(c.to_ascii_lowercase());
    }
    out
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

/// Errors building the TLS configuration: bad files the user named (exit 2). `Display` names
/// the setting as a flag; `describe` as the front end does.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    CaFile {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    NotCa {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    NoCaCertificate {
        path: PathBuf,
    },
    Verifier(#[source] rustls::client::VerifierBuilderError),
    Config(#[source] rustls::Error),
    ClientCert {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    NoClientCertificate {
        path: PathBuf,
    },
    /// The key's own error text can quote file content: only the file is named.
    ClientKey {
        path: PathBuf,
    },
    ClientAuth(#[source] rustls::Error),
    CertWithoutKey,
}

impl std::fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe(Naming::Flag))
    }
}

impl TlsConfigError {
    /// The setting whose file is wrong, when one is.
    pub fn field(&self) -> Option<Field> {
        use TlsConfigError as E;
        match self {
            E::CaFile { .. } | E::NotCa { .. } | E::NoCaCertificate { .. } => {
                Some(Field::TlsCaFile)
            }
            E::ClientCert { .. } | E::NoClientCertificate { .. } | E::CertWithoutKey => {
                Some(Field::TlsClientCert)
            }
            E::ClientKey { .. } => Some(Field::TlsClientKey),
            E::ClientAuth(_) => Some(Field::TlsClientCert),
            E::Verifier(_) | E::Config(_) => None,
        }
    }

    /// The message, naming the setting as the front end does.
    pub fn describe(&self, naming: Naming) -> String {
        use TlsConfigError as E;
        let name = |f: Field| f.name(naming);
        let file = |f: Field, path: &PathBuf| format!("{} {}", name(f), path.display());
        match self {
            E::CaFile { path, source } => format!("{}: {source}", file(Field::TlsCaFile, path)),
            E::NotCa { path, source } => {
                format!(
                    "{}: not a CA certificate: {source}",
                    file(Field::TlsCaFile, path)
                )
            }
            E::NoCaCertificate { path } => {
                format!("{}: no PEM certificate found", file(Field::TlsCaFile, path))
            }
            E::Verifier(e) => format!("building the certificate verifier: {e}"),
            E::Config(e) => format!("TLS configuration: {e}"),
            E::ClientCert { path, source } => {
                format!("{}: {source}", file(Field::TlsClientCert, path))
            }
            E::NoClientCertificate { path } => {
                format!(
                    "{}: no PEM certificate found",
                    file(Field::TlsClientCert, path)
                )
            }
            E::ClientKey { path } => format!(
                "{}: no readable PEM private key",
                file(Field::TlsClientKey, path)
            ),
            E::ClientAuth(e) => format!("client certificate and key: {e}"),
            E::CertWithoutKey => format!(
                "{} and {} go together",
                name(Field::TlsClientCert),
                name(Field::TlsClientKey)
            ),
        }
    }
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

/// The system's roots as a verifier; None when the store is empty or unreadable. A chain's
/// check uses only the provider's signature algorithms, the same with `--tls-classic-groups`.
static SYSTEM_STORE: OnceLock<Option<Arc<WebPkiServerVerifier>>> = OnceLock::new();

/// The system's roots, read the first time a chain needs them (Debian: the bundle and the
/// ~300 files of /etc/ssl/certs, decoded from PEM: about 4 ms, 40% of a probe process, so
/// never read when Mozilla's roots or `--tls-ca-file` verify). Unreadable entries are
/// skipped: the Mozilla roots still apply. Returns the read when this call made it.
fn system_store() -> (
    Option<&'static Arc<WebPkiServerVerifier>>,
    Option<SystemStoreRead>,
) {
    let mut read = None;
    let store = SYSTEM_STORE.get_or_init(|| {
        let t0 = std::time::Instant::now();
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        let n = roots.len();
        let verifier = (n > 0)
            .then(|| {
                let p = Arc::new(provider(false));
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), p).build()
            })
            .and_then(Result::ok);
        read = Some(SystemStoreRead {
            took: t0.elapsed(),
            roots: n,
        });
        verifier
    });
    (store.as_ref(), read)
}

/// The `--tls-ca-file` certificates, each checked to be usable as a trust anchor.
fn ca_file_certs(path: &PathBuf) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsConfigError::CaFile {
            path: path.clone(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsConfigError::NoCaCertificate { path: path.clone() });
    }
    let mut probe = RootCertStore::empty();
    for cert in &certs {
        probe
            .add(cert.clone())
            .map_err(|source| TlsConfigError::NotCa {
                path: path.clone(),
                source,
            })?;
    }
    Ok(certs)
}

/// The provider and the verifier of Mozilla's roots, built once per process for each
/// key-exchange choice: parsing the built-in roots for every probe was most of a `sweep`'s CPU
/// (docs/benchmarks.md). The system store is read only when a chain needs it
/// (`system_store`).
struct BuiltIn {
    provider: Arc<CryptoProvider>,
    stores: Vec<(TrustStore, Arc<WebPkiServerVerifier>)>,
}

fn built_in(classic_groups: bool) -> Result<&'static BuiltIn, TlsConfigError> {
    static DEFAULT: OnceLock<BuiltIn> = OnceLock::new();
    static CLASSIC: OnceLock<BuiltIn> = OnceLock::new();
    let cell = if classic_groups { &CLASSIC } else { &DEFAULT };
    if let Some(b) = cell.get() {
        return Ok(b);
    }
    let provider = Arc::new(provider(classic_groups));
    let mut mozilla = RootCertStore::empty();
    mozilla.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let mozilla = webpki_verifier(mozilla, &provider).map_err(TlsConfigError::Verifier)?;
    let stores = vec![(TrustStore::Mozilla, mozilla)];
    // A racing thread may have set it meanwhile: both built the same thing.
    Ok(cell.get_or_init(|| BuiltIn { provider, stores }))
}

fn webpki_verifier(
    roots: RootCertStore,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, rustls::client::VerifierBuilderError> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()
}

/// The verifiers tried before the system store's: Mozilla's, then the `--tls-ca-file`
/// certificates (read for every configuration: the file may change).
fn store_verifiers(
    anchors: &[CertificateDer<'static>],
    built_in: &BuiltIn,
) -> Result<Vec<(TrustStore, Arc<WebPkiServerVerifier>)>, TlsConfigError> {
    let mut out = built_in.stores.clone();
    if !anchors.is_empty() {
        let mut ca_file = RootCertStore::empty();
        ca_file.add_parsable_certificates(anchors.iter().cloned());
        if !ca_file.is_empty() {
            let v =
                webpki_verifier(ca_file, &built_in.provider).map_err(TlsConfigError::Verifier)?;
            out.push((TrustStore::CaFile, v));
        }
    }
    Ok(out)
}

/// Builds the client configuration and the record its verifier fills in. One per connection,
/// so each probe's record is its own (`ConfigCache` shares one among many).
pub fn client_config(
    opts: &TlsOptions,
) -> Result<(Arc<ClientConfig>, SharedRecord), TlsConfigError> {
    let record = SharedRecord::default();
    Ok((build(opts, Some(record.clone()))?, record))
}

/// Client configurations built once and shared by every connection with the same settings (a
/// sweep's targets): the `--tls-ca-file` and client certificate files are read once, and no
/// verifier, provider or buffer is built per target. Each handshake still gets a record of its
/// own, through `recorded`. DANE's TLSA records differ per host: such a configuration is not
/// shared.
#[derive(Debug, Default)]
pub struct ConfigCache {
    built: Mutex<Vec<(TlsKey, Arc<ClientConfig>)>>,
}

/// The settings a shared configuration is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TlsKey {
    verify: VerifyMode,
    ca_file: Option<PathBuf>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
    classic_groups: bool,
}

impl ConfigCache {
    /// The configuration for `opts` and a fresh record for one handshake: run the handshake
    /// inside `recorded(record, ...)`.
    pub fn get(
        &self,
        opts: &TlsOptions,
    ) -> Result<(Arc<ClientConfig>, SharedRecord), TlsConfigError> {
        if !opts.dane.is_empty() {
            return client_config(opts);
        }
        let key = TlsKey {
            verify: opts.verify,
            ca_file: opts.ca_file.clone(),
            client_cert: opts.client_cert.clone(),
            client_key: opts.client_key.clone(),
            classic_groups: opts.classic_groups,
        };
        let mut built = match self.built.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        let config = match built.iter().find(|(k, _)| *k == key) {
            Some((_, c)) => c.clone(),
            None => {
                let c = build(opts, None)?;
                built.push((key, c.clone()));
                c
            }
        };
        Ok((config, SharedRecord::default()))
    }
}

/// The configuration; its verifier writes to `record`, or with None to the handshake's.
fn build(
    opts: &TlsOptions,
    record: Option<SharedRecord>,
) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let built_in = built_in(opts.classic_groups)?;
    let provider = built_in.provider.clone();
    let anchors = match &opts.ca_file {
        Some(path) => ca_file_certs(path)?,
        None => Vec::new(),
    };
    let stores = store_verifiers(&anchors, built_in)?;
    let verifier = Arc::new(RecordingVerifier {
        stores,
        anchors,
        mode: opts.verify,
        record,
        dane: opts.dane.clone(),
        provider: provider.clone(),
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsConfigError::Config)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match (&opts.client_cert, &opts.client_key) {
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
    // Every probe makes a full handshake and sees the certificate: a resumed session would
    // skip the verifier. No session cache is kept, which also saves its memory per config.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// The TLS section of the report, from the established connection and the verifier's record.
pub fn report(
    conn: &rustls::ClientConnection,
    record: &SharedRecord,
    client_cert: bool,
    naming: Naming,
) -> TlsReport {
    let mut rep = report_from_record(record, client_cert, naming);
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

/// The words for a handshake that ended before the server sent a certificate.
pub const NO_CERTIFICATE: &str = "no certificate received";

/// What is known when the handshake failed: the verifier may still have seen the chain.
/// A verification failure names settings as `naming` says.
pub fn report_from_record(record: &SharedRecord, client_cert: bool, naming: Naming) -> TlsReport {
    let (verified, verify_error, trust_store, chain) = match record.lock() {
        Ok(rec) => {
            let (verified, err) = match &rec.result {
                Some(Ok(())) => (true, None),
                Some(Err(e)) => (false, Some(e.describe(naming))),
                None => (false, Some(NO_CERTIFICATE.to_string())),
            };
            (
                verified,
                err,
                rec.trust_store.map(|s| s.as_str().to_string()),
                rec.presented
                    .iter()
                    .map(|c| cert_info(c.as_ref()))
                    .collect(),
            )
        }
        Err(_) => (
            false,
            Some("verification record unavailable".to_string()),
            None,
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
        trust_store,
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

/// How many of the server's first bytes a TLS connection keeps: a greeting line's worth.
const SNIFF_BYTES: usize = 80;

/// The TCP stream under TLS, keeping the first bytes the server sent. When the handshake fails
/// on something that is not TLS, they say what the port speaks instead (a plain SMTP port's
/// "220 ..." greeting where a ServerHello was due).
#[derive(Debug)]
pub struct Sniffed {
    tcp: TcpStream,
    first: Vec<u8>,
}

impl Sniffed {
    /// The socket under the TLS layer (socket options such as TCP_QUICKACK).
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    pub fn new(tcp: TcpStream) -> Sniffed {
        Sniffed {
            tcp,
            first: Vec::new(),
        }
    }

    /// The first line the server sent, printable ASCII only (others as '.'), when it does not
    /// look like a TLS record (content types 20-24: RFC 8446 5.1).
    pub fn plaintext_start(&self) -> Option<String> {
        let first = *self.first.first()?;
        if (20..=24).contains(&first) {
            return None;
        }
        let line = self.first.split(|b| *b == b'\r' || *b == b'\n').next()?;
        Some(
            line.iter()
                .map(|&b| {
                    if (0x20..0x7f).contains(&b) {
                        b as char
                    } else {
                        '.'
                    }
                })
                .collect(),
        )
    }
}

impl AsyncRead for Sniffed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut me.tcp).poll_read(cx, buf);
        if me.first.len() < SNIFF_BYTES {
            let new = buf.filled().get(before..).unwrap_or_default();
            let room = SNIFF_BYTES - me.first.len();
            me.first.extend_from_slice(new.get(..room).unwrap_or(new));
        }
        polled
    }
}

impl AsyncWrite for Sniffed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_names_are_rfc_8446_spelling() {
        use rustls::AlertDescription as A;
        assert_eq!(alert_name(A::InternalError), "internal_error");
        assert_eq!(alert_name(A::UnknownCA), "unknown_ca");
        assert_eq!(alert_name(A::HandshakeFailure), "handshake_failure");
    }

    #[test]
    fn built_in_stores_are_shared_and_the_ca_file_is_read_again() {
        let a = built_in(false).unwrap();
        assert!(std::ptr::eq(a, built_in(false).unwrap()));
        assert!(!std::ptr::eq(a, built_in(true).unwrap()));
        let path = std::env::temp_dir().join(format!("mxtrace-ca-{}.pem", std::process::id()));
        let pki = mxtrace_lab::pki::LabPki::new().unwrap();
        std::fs::write(&path, pki.ca_pem()).unwrap();
        let opts = TlsOptions {
            verify: VerifyMode::Report,
            ca_file: Some(path.clone()),
            client_cert: None,
            client_key: None,
            classic_groups: false,
            dane: Vec::new(),
        };
        assert!(client_config(&opts).is_ok());
        std::fs::write(&path, "").unwrap();
        let second = client_config(&opts);
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(
            second,
            Err(TlsConfigError::NoCaCertificate { .. })
        ));
    }

    #[tokio::test]
    async fn sniffed_quotes_a_plaintext_start_and_not_a_tls_record() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for (sent, want) in [
            (&b"220 mx ESMTP\r\n"[..], Some("220 mx ESMTP")),
            (&b"\x15\x03\x03\x00\x02\x02\x50"[..], None),
            (&b"\x00\x1b[2J hi"[..], Some("..[2J hi")),
        ] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = tokio::spawn(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                s.write_all(sent).await.unwrap();
            });
            let mut sniffed = Sniffed::new(TcpStream::connect(addr).await.unwrap());
            let mut buf = Vec::new();
            sniffed.read_to_end(&mut buf).await.unwrap();
            server.await.unwrap();
            assert_eq!(buf, sent);
            assert_eq!(sniffed.plaintext_start().as_deref(), want);
        }
    }
}
