//! DANE (RFC 7672) against DNSSEC-signed lab zones on loopback: `mxtrace dns` reports the TLSA
//! records and the DNSSEC status (secure, insecure, bogus) of the MX and TLSA answers; `trace`
//! authenticates the certificate by DANE, fails a mismatch as a DANE-aware sender does, leaves
//! a bogus MX out, and ignores TLSA records of an unsigned zone. The zones are signed with a
//! key made at test time; its trust anchor is written to a file (`--dnssec-trust-anchor`).

#[path = "support/bin.rs"]
#[allow(dead_code)]
mod bin;
#[path = "support/certs.rs"]
#[allow(unused_imports)]
mod certs;
#[path = "support/scripted.rs"]
#[allow(unused_imports)]
mod scripted;

use certs::{CertKind, TestPki};
use clap::Parser;
use mxtrace_lab::dns::{zone_text as zone, DnsServer, Signing};
use mxtrace_net::tls::dane::spki_sha256;
use mxtrace_proto::model::posture::{PostureReport, Status};
use mxtrace_proto::model::{Category, TraceReport};
use scripted::{expect, line, quit, starttls_dialogue, ScriptedServer};
use std::path::PathBuf;
use std::sync::Arc;

/// A fixed 3 1 1 association (it need not match a certificate for `dns`).
const FIXED: &str = "8d02536c887482bc34ff54e41d2ba659bf85b341a0a20afadb5813dcfbcf286d";
const ZEROS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The signed lab and its trust anchor file (removed on drop).
struct Lab {
    _server: DnsServer,
    resolver: String,
    anchor: PathBuf,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.anchor);
    }
}

async fn lab(zones: Vec<(String, Signing)>) -> Lab {
    let (server, anchor_text) = DnsServer::start_signed("127.0.0.1:0".parse().unwrap(), &zones)
        .await
        .unwrap();
    let anchor = std::env::temp_dir().join(format!(
        "mxtrace-dane-anchor-{}-{}.txt",
        std::process::id(),
        server.addr().port()
    ));
    std::fs::write(&anchor, anchor_text).unwrap();
    Lab {
        resolver: server.addr().to_string(),
        _server: server,
        anchor,
    }
}

/// dane.test: signed, one good usable record and one PKIX-EE record (unusable for SMTP);
/// broken.test: signed with a key the anchor does not name (bogus); plain.test: unsigned.
fn dns_zones() -> Vec<(String, Signing)> {
    vec![
        (
            zone(
                "dane.test",
                &format!(
                    "@ MX 10 mx\n@ MX 20 mx.broken.test.\n@ MX 30 mx.plain.test.\n\
                     mx A 127.0.0.1\n_25._tcp.mx TLSA 3 1 1 {FIXED}\n\
                     _25._tcp.mx TLSA 1 1 1 {FIXED}"
                ),
            ),
            Signing::Signed,
        ),
        (
            zone(
                "broken.test",
                &format!("mx A 127.0.0.1\n_25._tcp.mx TLSA 3 1 1 {FIXED}"),
            ),
            Signing::WrongKey,
        ),
        (
            zone(
                "plain.test",
                &format!("mx A 127.0.0.1\n_25._tcp.mx TLSA 3 1 1 {FIXED}"),
            ),
            Signing::Unsigned,
        ),
    ]
}

/// Runs the binary (blocking) while the lab's DNS server keeps answering on this runtime.
async fn cli(args: Vec<String>) -> bin::Run {
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        bin::mxtrace(&a, &[])
    })
    .await
    .unwrap()
}

fn dns_args(lab: &Lab, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "dns",
        "dane.test",
        "--resolver",
        &lab.resolver,
        "--dnssec-trust-anchor",
        &lab.anchor.to_string_lossy(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_reports_tlsa_and_dnssec_status_secure_insecure_bogus() {
    let lab = lab(dns_zones()).await;
    let r = cli(dns_args(&lab, &[])).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    insta::assert_snapshot!("dane_dns_human", bin::redact_ports(&r.stdout));
    let r = cli(dns_args(&lab, &["--json"])).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    insta::assert_json_snapshot!("dane_dns_json", j["dane"]);
    let report: PostureReport = serde_json::from_value(j).unwrap();
    let d = &report.dane;
    assert_eq!(d.section.status, Some(Status::Fail));
    let states: Vec<(&str, &str)> = d
        .hosts
        .iter()
        .map(|h| (h.mx.as_str(), h.state.as_str()))
        .collect();
    assert_eq!(
        states,
        [
            ("mx.dane.test", "dane"),
            ("mx.broken.test", "bogus"),
            ("mx.plain.test", "insecure")
        ]
    );
    // A trust anchor file that does not load is the user's error.
    let mut bad = dns_args(&lab, &[]);
    let last = bad.len() - 1;
    bad[last] = "/nonexistent/anchor.txt".to_string();
    let r = cli(bad).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--dnssec-trust-anchor"), "{}", r.stderr);
}

/// `trace DOMAIN` against the signed lab, the MX hosts on the scripted server's port.
async fn trace(lab: &Lab, domain: &str, port: u16) -> TraceReport {
    let port = port.to_string();
    let anchor = lab.anchor.to_string_lossy().to_string();
    let argv = [
        "mxtrace",
        "trace",
        domain,
        "--resolver",
        &lab.resolver,
        "--dnssec-trust-anchor",
        &anchor,
        "--port",
        &port,
        "--from",
        "probe@fabrikam.test",
        "--rcpt",
        "user@contoso.test",
        "--connect-timeout",
        "3s",
        "--stage-timeout",
        "5s",
        "--dns-timeout",
        "2s",
    ];
    let cli = mxtrace::cli::Cli::try_parse_from(argv).unwrap();
    let mxtrace::cli::Command::Trace(t) = cli.command else {
        panic!("not trace")
    };
    let mxtrace_core::job::Job::Trace(opts) = t.to_job().unwrap() else {
        panic!("not a trace job")
    };
    mxtrace_core::trace::trace(&opts).await.unwrap()
}

/// A STARTTLS server presenting `config`, accepting one recipient.
async fn tls_server(config: Arc<rustls::ServerConfig>) -> ScriptedServer {
    let mut steps = starttls_dialogue("mx.test", &["STARTTLS"], config, &["PIPELINING"]);
    steps.extend([
        expect("MAIL FROM:"),
        line("250 2.1.0 Sender OK"),
        expect("RCPT TO:"),
        line("250 2.1.5 Recipient OK"),
        expect("RSET"),
        line("250 2.0.0 Reset"),
    ]);
    steps.extend(quit());
    ScriptedServer::start(steps).await
}

fn server_config(pki: &TestPki, name: &str) -> (Arc<rustls::ServerConfig>, String, String) {
    let (chain, key) = pki.leaf(&CertKind::Valid(name.into()));
    let spki = spki_sha256(chain[0].as_ref()).unwrap();
    let ca = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, pki.ca_der().as_ref());
    let ca: String = ca.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let config = rustls::ServerConfig::builder_with_provider(certs::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    (Arc::new(config), spki, ca)
}

fn warnings(r: &TraceReport) -> String {
    r.hops[0].verdict.warnings.join("\n")
}

#[tokio::test]
async fn trace_with_a_matching_tlsa_passes_dane_verified() {
    let pki = TestPki::new();
    let (config, spki, ca) = server_config(&pki, "mx.dane.test");
    let lab = lab(vec![
        (
            zone(
                "dane.test",
                &format!("@ MX 10 mx\nmx A 127.0.0.1\n_25._tcp.mx TLSA 3 1 1 {spki}"),
            ),
            Signing::Signed,
        ),
        (
            zone(
                "ta.test",
                &format!("@ MX 10 mx.dane.test.\n_25._tcp.mx TLSA 2 0 1 {ca}"),
            ),
            Signing::Signed,
        ),
    ])
    .await;
    let server = tls_server(config.clone()).await;
    let r = trace(&lab, "dane.test", server.addr.port()).await;
    server.finish().await.assert_ok();
    assert!(r.verdict.passed, "{:#?}", r.hops[0].verdict);
    let tls = r.hops[0].probes[0].report.tls.as_ref().unwrap();
    assert!(tls.verified, "{tls:?}");
    assert_eq!(tls.trust_store.as_deref(), Some("dane"));
    assert!(
        warnings(&r).contains("authenticated by DANE"),
        "{}",
        warnings(&r)
    );
    // DANE-TA(2): the lab CA's certificate, in the presented chain; the MX host's name checked.
    let server = tls_server(config).await;
    let r = trace(&lab, "ta.test", server.addr.port()).await;
    server.finish().await.assert_ok();
    assert!(r.verdict.passed, "{:#?}", r.hops[0].verdict);
    let tls = r.hops[0].probes[0].report.tls.as_ref().unwrap();
    assert_eq!(tls.trust_store.as_deref(), Some("dane"));
}

#[tokio::test]
async fn trace_with_a_mismatching_tlsa_fails_as_a_dane_failure() {
    let pki = TestPki::new();
    let (config, spki, _) = server_config(&pki, "mx.mismatch.test");
    let lab = lab(vec![(
        zone(
            "mismatch.test",
            &format!("@ MX 10 mx\nmx A 127.0.0.1\n_25._tcp.mx TLSA 3 1 1 {ZEROS}"),
        ),
        Signing::Signed,
    )])
    .await;
    let server = tls_server(config).await;
    let r = trace(&lab, "mismatch.test", server.addr.port()).await;
    drop(server);
    assert!(!r.verdict.passed);
    let p = &r.hops[0].probes[0].report;
    let stage = p
        .stages
        .iter()
        .find(|s| s.error.is_some())
        .expect("a failed stage");
    let err = stage.error.as_ref().unwrap();
    assert!(err.message.contains("DANE"), "{}", err.message);
    assert!(
        err.message.contains(&format!("3 1 1 {ZEROS}")),
        "{}",
        err.message
    );
    assert!(err.message.contains(&spki), "{}", err.message);
    let d = stage.diagnosis.as_ref().unwrap();
    assert_eq!(d.category, Category::TlsFailed, "{d:?}");
}

#[tokio::test]
async fn trace_leaves_a_bogus_mx_out_and_ignores_insecure_tlsa() {
    let pki = TestPki::new();
    let (config, _, _) = server_config(&pki, "mx.plain.test");
    let lab = lab(vec![
        (
            zone(
                "walk.test",
                "@ MX 10 mx.broken.test.\n@ MX 20 mx.plain.test.",
            ),
            Signing::Signed,
        ),
        (
            zone(
                "broken.test",
                &format!("mx A 127.0.0.1\n_25._tcp.mx TLSA 3 1 1 {ZEROS}"),
            ),
            Signing::WrongKey,
        ),
        (
            zone(
                "plain.test",
                &format!("mx A 127.0.0.1\n_25._tcp.mx TLSA 3 1 1 {ZEROS}"),
            ),
            Signing::Unsigned,
        ),
    ])
    .await;
    let server = tls_server(config).await;
    let r = trace(&lab, "walk.test", server.addr.port()).await;
    server.finish().await.assert_ok();
    let hosts: Vec<&str> = r.hops[0].mx.iter().map(|m| m.host.as_str()).collect();
    assert_eq!(hosts, ["mx.plain.test"]);
    let w = warnings(&r);
    assert!(
        w.contains("_25._tcp.mx.broken.test is DNSSEC-bogus: MX mx.broken.test not used"),
        "{w}"
    );
    assert!(
        w.contains("DNSSEC-insecure: not trusted, DANE does not apply"),
        "{w}"
    );
    // The insecure TLSA (which matches nothing) is ignored: the usual trust stores apply.
    assert!(r.verdict.passed, "{:#?}", r.hops[0].verdict);
    let tls = r.hops[0].probes[0].report.tls.as_ref().unwrap();
    assert_ne!(tls.trust_store.as_deref(), Some("dane"));
}

#[test]
fn dns_help_is_pinned() {
    let r = bin::mxtrace(&["dns", "--help"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!("dns_help", r.stdout);
}

#[tokio::test]
async fn trace_fails_when_the_mx_answer_is_bogus() {
    let lab = lab(vec![
        (
            zone("bogusmx.test", "@ MX 10 mx.dane.test."),
            Signing::WrongKey,
        ),
        (
            zone(
                "dane.test",
                &format!("mx A 127.0.0.1\n_25._tcp.mx TLSA 3 1 1 {ZEROS}"),
            ),
            Signing::Signed,
        ),
    ])
    .await;
    // Port 9: nothing listens, and nothing must be contacted anyway.
    let r = trace(&lab, "bogusmx.test", 9).await;
    assert!(!r.verdict.passed);
    assert!(r.hops[0].probes.is_empty());
    let summary = &r.hops[0].verdict.summary;
    assert!(
        summary.starts_with("DANE failure: the MX answer of bogusmx.test is DNSSEC-bogus"),
        "{summary}"
    );
}
