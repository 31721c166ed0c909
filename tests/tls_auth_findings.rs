//! The TLS and AUTH findings of issue #14, each pinned against the scripted server: a
//! self-signed CA:TRUE leaf trusted as its own anchor, a private CA's leaf named as such,
//! implicit TLS against a plaintext port, a server aborting its own handshake, the TLS
//! summary without a handshake, the trust store that verified, and AUTH that is not offered.

mod support;

use mxtrace_core::probe::{AuthOptions, Credential, StartTls};
use mxtrace_net::tls::VerifyMode;
use mxtrace_proto::model::{Category, Diagnosis, ErrorKind, Layer, Outcome, ProbeReport, Stage};
use mxtrace_proto::secret::Secret;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;
use std::time::Duration;
use support::certs::{provider, CertKind, TestPki};
use support::scripted::{ehlo_reply, line, ScriptedServer, Step};
use support::session::{greeting, opts, quit, run, stage, NAME};

/// The stage's error and diagnosis, checked: the error's words, then category, layer and the
/// words of the cause.
fn finding<'a>(
    r: &'a ProbeReport,
    st: Stage,
    message: &str,
    (category, layer): (Category, Layer),
    cause: &str,
) -> &'a Diagnosis {
    let s = stage(r, st);
    let e = s.error.as_ref().expect("an error");
    assert!(e.message.contains(message), "{}", e.message);
    let d = s.diagnosis.as_ref().expect("a diagnosis");
    assert_eq!((d.category, d.layer), (category, layer), "{}", d.cause);
    assert!(d.cause.contains(cause), "{}", d.cause);
    d
}

/// STARTTLS agreed, then a fatal internal_error alert instead of a ServerHello (RFC 8446 6:
/// level 2, description 80), as OpenSMTPD 6.8 under OpenSSL 3 does.
fn aborting_server() -> Vec<Step> {
    let mut steps = greeting(&["STARTTLS"]);
    steps.extend([
        Step::Expect("STARTTLS".into()),
        line("220 2.0.0 Ready to start TLS"),
        Step::Sleep(Duration::from_millis(100)),
        Step::SendRaw(vec![0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 80]),
        Step::ReadUntilClose,
    ]);
    steps
}

/// The mxtrace binary probing the scripted server as `NAME`, with `extra` arguments.
fn mxtrace_probe(
    server: &ScriptedServer,
    extra: &[&str],
    env: &[(&str, &str)],
) -> support::bin::Run {
    let target = server.addr.to_string();
    let mut args = vec!["probe", &target, "--tls-name", NAME];
    args.extend(["--ehlo", "probe.fabrikam.test"]);
    args.extend_from_slice(extra);
    support::bin::mxtrace(&args, env)
}

/// A STARTTLS session presenting `config`, then QUIT.
fn tls_session(config: Arc<rustls::ServerConfig>) -> Vec<Step> {
    let mut steps = greeting(&["STARTTLS"]);
    steps.extend([
        Step::Expect("STARTTLS".into()),
        line("220 2.0.0 Ready to start TLS"),
        Step::StartTls(config),
        Step::Expect("EHLO probe.fabrikam.test".into()),
        ehlo_reply(NAME, &["PIPELINING"]),
    ]);
    steps.extend(quit());
    steps
}

/// What `openssl req -x509` makes by default: self-signed with basicConstraints CA:TRUE.
fn self_signed_ca_leaf(name: &str) -> (String, Arc<rustls::ServerConfig>) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec![name.to_string()]).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("self-signed");
    let der: CertificateDer<'static> = cert.der().clone();
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![der], key_der)
        .expect("server config");
    (cert.pem(), Arc::new(config))
}

#[tokio::test]
async fn a_self_signed_ca_leaf_given_as_ca_file_is_its_own_anchor() {
    let pki = TestPki::new();
    let (pem, config) = self_signed_ca_leaf(NAME);
    let anchor = pki.write_pem("self-ca.pem", &pem);
    let server = ScriptedServer::start(tls_session(config)).await;
    let mut o = opts(server.addr);
    o.tls.ca_file = Some(anchor);
    o.tls.verify = VerifyMode::Strict;
    let r = run(&o).await;
    server.finish().await.assert_ok();
    let tls = r.tls.as_ref().expect("tls");
    assert!(tls.verified, "{:?}", tls.verify_error);
    assert_eq!(tls.verify_error, None);
    assert_eq!(tls.trust_store.as_deref(), Some("ca-file"));
    assert!(r.verdict.passed);
}

#[tokio::test]
async fn a_self_signed_ca_leaf_for_another_name_is_still_a_name_mismatch() {
    let pki = TestPki::new();
    let (pem, config) = self_signed_ca_leaf("other.contoso.test");
    let anchor = pki.write_pem("self-ca.pem", &pem);
    let server = ScriptedServer::start(tls_session(config)).await;
    let mut o = opts(server.addr);
    o.tls.ca_file = Some(anchor);
    let r = run(&o).await;
    server.finish().await.assert_ok();
    let tls = r.tls.as_ref().expect("tls");
    assert!(!tls.verified);
    let why = tls.verify_error.as_deref().unwrap_or_default();
    assert!(why.contains("does not match the name"), "{why}");
    assert_eq!(tls.trust_store, None);
}

#[tokio::test]
async fn a_self_signed_ca_leaf_not_given_says_how_to_trust_it() {
    let (_, config) = self_signed_ca_leaf(NAME);
    let server = ScriptedServer::start(tls_session(config)).await;
    let r = run(&opts(server.addr)).await;
    server.finish().await.assert_ok();
    let tls = r.tls.as_ref().expect("tls");
    let why = tls.verify_error.as_deref().unwrap_or_default();
    assert!(
        why.contains("self-signed certificate marked as a CA"),
        "{why}"
    );
    assert!(why.contains("--tls-ca-file"), "{why}");
    // Report mode: the handshake stage is ok, the finding is tls.verification.
    assert_eq!(stage(&r, Stage::TlsHandshake).outcome, Outcome::Ok);
    let d = tls.verification.as_ref().expect("a verification finding");
    assert_eq!(d.category, Category::TlsFailed);
    assert!(d.cause.contains("self-signed"), "{}", d.cause);
}

#[tokio::test]
async fn a_private_ca_leaf_is_untrusted_not_self_signed() {
    let pki = TestPki::new();
    let config = pki.server_config(&CertKind::Valid(NAME.into()));
    let server = ScriptedServer::start(tls_session(config)).await;
    let r = run(&opts(server.addr)).await;
    server.finish().await.assert_ok();
    let tls = r.tls.as_ref().expect("tls");
    let why = tls.verify_error.as_deref().unwrap_or_default();
    assert!(why.starts_with("issued by an untrusted CA"), "{why}");
    assert!(!why.contains("self-signed"), "{why}");
    let d = tls.verification.as_ref().expect("a verification finding");
    assert!(!d.cause.contains("self-signed"), "{}", d.cause);
    assert!(d.cause.contains("private CA"), "{}", d.cause);
}

#[tokio::test]
async fn the_ca_file_store_is_reported_when_it_verified() {
    let pki = TestPki::new();
    let config = pki.server_config(&CertKind::Valid(NAME.into()));
    let server = ScriptedServer::start(tls_session(config)).await;
    let mut o = opts(server.addr);
    o.tls.ca_file = Some(pki.ca_file().to_path_buf());
    let r = run(&o).await;
    server.finish().await.assert_ok();
    let tls = r.tls.as_ref().expect("tls");
    assert!(tls.verified);
    assert_eq!(tls.trust_store.as_deref(), Some("ca-file"));
    let json = serde_json::to_value(tls).unwrap();
    assert_eq!(json["trust_store"], "ca-file");
}

/// The JSON's `tls.trust_store` of a probe, in a child process whose system store
/// (rustls-native-certs honours SSL_CERT_FILE) holds the test CA; `--tls-ca-file` names it too
/// when `ca_file`. A child process: the variable must not leak into other tests, and the store
/// is read once per process.
fn store_with_ca_in_system_store(ca_file: bool) -> serde_json::Value {
    let pki = TestPki::new();
    let server = ScriptedServer::spawn_thread(tls_session(
        pki.server_config(&CertKind::Valid(NAME.into())),
    ));
    let ca = pki.ca_file().to_string_lossy().into_owned();
    let mut args = vec!["--json"];
    if ca_file {
        args.extend(["--tls-ca-file", ca.as_str()]);
    }
    let env = [
        ("SSL_CERT_FILE", ca.as_str()),
        ("SSL_CERT_DIR", "/nonexistent"),
    ];
    let r = mxtrace_probe(&server, &args, &env);
    server.finish_blocking().assert_ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect(&r.stdout);
    assert_eq!(v["tls"]["verified"], true, "{}", r.stdout);
    v["tls"]["trust_store"].clone()
}

/// The system store verifies a CA installed there.
#[test]
fn the_system_store_is_trusted_and_named() {
    assert_eq!(store_with_ca_in_system_store(false), "system");
}

/// `--tls-ca-file` is tried before the system store, which is read in the background and
/// waited for only when neither Mozilla's roots nor the CA file verify: a CA in both is named
/// `ca-file`.
#[test]
fn the_ca_file_is_tried_before_the_system_store() {
    assert_eq!(store_with_ca_in_system_store(true), "ca-file");
}

/// The human TLS line names the store that verified.
#[test]
fn the_tls_line_names_the_trust_store() {
    let pki = TestPki::new();
    let server = ScriptedServer::spawn_thread(tls_session(
        pki.server_config(&CertKind::Valid(NAME.into())),
    ));
    let ca = pki.ca_file().to_string_lossy().into_owned();
    let r = mxtrace_probe(&server, &["--tls-ca-file", &ca], &[]);
    server.finish_blocking().assert_ok();
    assert!(
        r.stdout
            .contains("X25519; certificate verified (ca-file trust store)"),
        "{}",
        r.stdout
    );
}

#[tokio::test]
async fn implicit_tls_against_a_plaintext_port_says_plaintext_not_starttls() {
    let server = ScriptedServer::start(vec![
        line(&format!("220 {NAME} ESMTP Postfix")),
        Step::ReadUntilClose,
    ])
    .await;
    let mut o = opts(server.addr);
    o.implicit_tls = true;
    let r = run(&o).await;
    let _ = server.finish().await;
    let d = finding(
        &r,
        Stage::TlsHandshake,
        "answered in plaintext: it sent \"220 mx.contoso.test ESMTP Postfix\" where a TLS \
         ServerHello was expected",
        (Category::TlsFailed, Layer::Tls),
        "No STARTTLS was involved",
    );
    assert!(d.cause.contains("answered in plaintext"), "{}", d.cause);
    let e = stage(&r, Stage::TlsHandshake).error.as_ref().unwrap();
    assert_eq!(e.kind, ErrorKind::Tls);
    assert!(!e.message.contains("STARTTLS after"), "{}", e.message);
}

#[tokio::test]
async fn a_server_aborting_its_handshake_is_broken_not_incompatible() {
    let server = ScriptedServer::start(aborting_server()).await;
    let r = run(&opts(server.addr)).await;
    let _ = server.finish().await;
    let d = finding(
        &r,
        Stage::TlsHandshake,
        "the server aborted the TLS handshake (alert internal_error)",
        (Category::TlsFailed, Layer::Tls),
        "TLS configuration or library is broken",
    );
    // The server's own log comes first; the category's general steps follow (advice.rs).
    assert!(
        d.next_steps[0].contains("server's TLS log"),
        "{:?}",
        d.next_steps
    );
    // No certificate ever came: the JSON says so instead of a silent null.
    let tls = r.tls.as_ref().expect("tls");
    assert!(!tls.verified && tls.chain.is_empty());
    assert_eq!(tls.verify_error.as_deref(), Some("no certificate received"));
    assert_eq!(tls.trust_store, None);
}

#[test]
fn the_tls_summary_line_is_never_empty() {
    let server = ScriptedServer::spawn_thread(aborting_server());
    let r = mxtrace_probe(&server, &[], &[]);
    let _ = server.finish_blocking();
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(!r.stdout.contains("TLS:;"), "{}", r.stdout);
    assert!(
        r.stdout.contains(
            "TLS: handshake not completed; certificate NOT verified: no certificate received"
        ),
        "{}",
        r.stdout
    );
}

async fn auth_not_offered(caps: &[&str], starttls: StartTls) -> ProbeReport {
    let mut steps = greeting(caps);
    steps.extend(quit());
    let server = ScriptedServer::start(steps).await;
    let mut o = opts(server.addr);
    o.starttls = starttls;
    o.auth = Some(AuthOptions {
        user: "user@contoso.test".into(),
        credential: Credential::Password(Secret::new("not-sent".into())),
        mech: None,
        allow_plaintext: true,
    });
    let r = run(&o).await;
    server.finish().await.assert_ok();
    r
}

#[tokio::test]
async fn auth_not_offered_is_an_auth_finding_not_a_protocol_error() {
    let r = auth_not_offered(&["PIPELINING"], StartTls::Auto).await;
    assert_eq!(r.verdict.failed_stage, Some(Stage::Auth));
    assert_eq!(
        stage(&r, Stage::Auth).error.as_ref().unwrap().kind,
        ErrorKind::Auth
    );
    let d = finding(
        &r,
        Stage::Auth,
        "the server does not offer AUTH (on this port)",
        (Category::AuthFailed, Layer::Auth),
        "does not offer AUTH on this port",
    );
    assert!(d.next_steps.iter().any(|s| s.contains("587")));
}

#[tokio::test]
async fn auth_not_offered_before_starttls_says_so() {
    let r = auth_not_offered(&["STARTTLS", "PIPELINING"], StartTls::Never).await;
    finding(
        &r,
        Stage::Auth,
        "the server does not offer AUTH (before STARTTLS)",
        (Category::AuthFailed, Layer::Auth),
        "before STARTTLS",
    );
}

/// The groups and key shares of the ClientHello mxtrace sends (RFC 8446 4.1.2, 4.2.7, 4.2.8),
/// read off the wire by a bare TCP listener: (supported_groups, key_share groups).
async fn client_hello_groups(classic: bool) -> (Vec<u16>, Vec<u16>) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut o = opts(listener.local_addr().unwrap());
    o.implicit_tls = true;
    o.tls.classic_groups = classic;
    let client = tokio::spawn(async move { run(&o).await });
    let (mut tcp, _) = listener.accept().await.unwrap();
    let mut buf = Vec::new();
    let read = async {
        loop {
            let mut chunk = [0u8; 4096];
            let n = tcp.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let want = buf
                .get(3..5)
                .map(|l| 5 + usize::from(u16::from_be_bytes([l[0], l[1]])));
            if n == 0 || want.is_some_and(|w| buf.len() >= w) {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .unwrap();
    drop(tcp);
    let _ = client.await;
    parse_groups(&buf)
}

fn parse_groups(record: &[u8]) -> (Vec<u16>, Vec<u16>) {
    let u16_at = |b: &[u8], i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    assert_eq!(record[0], 0x16, "a handshake record");
    let hs = &record[5..];
    assert_eq!(hs[0], 1, "a ClientHello");
    let mut i = 4 + 2 + 32; // header, legacy_version, random
    i += 1 + usize::from(hs[i]); // legacy_session_id
    i += 2 + usize::from(u16_at(hs, i)); // cipher_suites
    i += 1 + usize::from(hs[i]); // legacy_compression_methods
    let end = i + 2 + usize::from(u16_at(hs, i));
    i += 2;
    let (mut groups, mut shares) = (Vec::new(), Vec::new());
    while i < end {
        let (kind, len) = (u16_at(hs, i), usize::from(u16_at(hs, i + 2)));
        let body = &hs[i + 4..i + 4 + len];
        match kind {
            0x000a => {
                groups = (2..body.len())
                    .step_by(2)
                    .map(|j| u16_at(body, j))
                    .collect()
            }
            0x0033 => {
                let mut j = 2;
                while j < body.len() {
                    shares.push(u16_at(body, j));
                    j += 4 + usize::from(u16_at(body, j + 2));
                }
            }
            _ => {}
        }
        i += 4 + len;
    }
    (groups, shares)
}

const X25519: u16 = 0x001d;
const X25519MLKEM768: u16 = 0x11ec;

/// README "TLS": by default one X25519 key share, X25519MLKEM768 listed among the groups (sent
/// only if a server asks for it); --tls-classic-groups removes it from the list.
#[tokio::test]
async fn the_client_hello_matches_what_the_readme_says_about_groups() {
    let (groups, shares) = client_hello_groups(false).await;
    assert_eq!(shares, [X25519], "one small key share by default");
    assert_eq!(groups.first(), Some(&X25519), "{groups:04x?}");
    assert!(groups.contains(&X25519MLKEM768), "{groups:04x?}");
    let (groups, shares) = client_hello_groups(true).await;
    assert_eq!(shares, [X25519]);
    assert!(!groups.contains(&X25519MLKEM768), "{groups:04x?}");
    assert_eq!(groups, [X25519, 0x0017, 0x0018], "X25519, P-256, P-384");
}
