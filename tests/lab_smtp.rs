//! The lab's SMTP role servers driven by the real client engine (`probe::probe`): each role's
//! wording, each SMTP-level fault, the network-level faults, and what the classifier makes of
//! them (category and layer), plus concurrency and hostile clients. Loopback only.

use mxtrace_core::probe::{self, ProbeOptions, StartTls};
use mxtrace_knowledge::PathContext;
use mxtrace_lab::pki::{CertValidity, LabPki};
use mxtrace_lab::smtp::{
    refused_listener_addr, Blackhole, Fault, Role, RoleConfig, RoleServer, RunningServer,
    SessionEnd,
};
use mxtrace_net::tls::{TlsOptions, VerifyMode};
use mxtrace_proto::model::{ErrorKind, ProbeReport, Stage, StageRecord};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const EOP_FE: &str = "DM3NAM03FT051.mail.protection.outlook.com";
const EOP_MX: &str = "contoso-test.mail.protection.outlook.com";
const EXCH: &str = "mail.contoso.test";
const PFX: &str = "mx.fabrikam.test";
const LOCAL: &str = "127.0.0.1:0";

/// The lab CA plus its PEM files in a temp dir (removed on drop).
struct Pki {
    pki: LabPki,
    dir: PathBuf,
    ca_file: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        static N: AtomicU32 = AtomicU32::new(0);
        let pki = LabPki::new().unwrap();
        let dir = std::env::temp_dir().join(format!(
            "mxtrace-lab-smtp-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, pki.ca_pem()).unwrap();
        Pki { pki, dir, ca_file }
    }

    /// Writes a client identity for `name`; returns (cert path, key path).
    fn client_files(&self, name: &str) -> (PathBuf, PathBuf) {
        let (chain, key) = self.pki.client_identity_pem(name).unwrap();
        let c = self.dir.join("client.pem");
        let k = self.dir.join("client.key");
        std::fs::write(&c, chain).unwrap();
        std::fs::write(&k, key).unwrap();
        (c, k)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The lab's three endpoints as the scenarios use them.
fn config(pki: &Pki, role: Role, fault: Option<Fault>) -> RoleConfig {
    let (host, cert_name, domains, rcpts): (&str, &str, &[&str], &[&str]) = match role {
        Role::EopFrontEnd => (
            EOP_FE,
            "*.mail.protection.outlook.com",
            &["contoso.test", "contoso.mail.onmicrosoft.com"],
            &["user@contoso.test", "user@contoso.mail.onmicrosoft.com"],
        ),
        Role::OnPremExchange => (EXCH, EXCH, &["contoso.test"], &["user@contoso.test"]),
        Role::ThirdPartyPostfix => (PFX, PFX, &["fabrikam.test"], &["user@fabrikam.test"]),
    };
    let mut c = RoleConfig::new(role, LOCAL.parse().unwrap(), host);
    c.accepted_domains = domains.iter().map(|d| d.to_string()).collect();
    c.recipients = rcpts.iter().map(|r| r.to_string()).collect();
    c.tls = Some(
        pki.pki
            .server_config(&[cert_name], Fault::cert_validity(fault))
            .unwrap(),
    );
    c.fault = fault;
    c
}

/// The name a client connects with for each role.
fn client_host(role: Role) -> &'static str {
    match role {
        Role::EopFrontEnd => EOP_MX,
        Role::OnPremExchange => EXCH,
        Role::ThirdPartyPostfix => PFX,
    }
}

fn opts(pki: &Pki, role: Role, addr: SocketAddr, rcpt: &str) -> ProbeOptions {
    ProbeOptions {
        host: client_host(role).to_string(),
        port: addr.port(),
        addrs: Some(vec![addr.ip()]),
        starttls: StartTls::Auto,
        implicit_tls: false,
        tls: TlsOptions {
            verify: VerifyMode::Report,
            ca_file: Some(pki.ca_file.clone()),
            client_cert: None,
            client_key: None,
            classic_groups: false,
            dane: Vec::new(),
        },
        tls_name: None,
        ehlo: Some("probe.fabrikam.test".to_string()),
        from: Some("sender@fabrikam.test".to_string()),
        rcpts: vec![rcpt.to_string()],
        auth: None,
        data: false,
        headers: Vec::new(),
        pipelining: true,
        connect_timeout: Duration::from_secs(5),
        stage_timeout: Duration::from_secs(10),
        source: None,
        family: None,
        ctx: PathContext::default(),
        limits: None,
        probe_id: None,
        naming: mxtrace_proto::spec::Naming::Flag,
        tls_cache: None,
    }
}

async fn start(cfg: RoleConfig) -> RunningServer {
    RoleServer::start(cfg).await.unwrap()
}

async fn run(o: &ProbeOptions) -> ProbeReport {
    probe::probe(o).await.unwrap()
}

fn stage(r: &ProbeReport, st: Stage) -> &StageRecord {
    r.stages.iter().find(|s| s.stage == st).unwrap_or_else(|| {
        panic!(
            "no {st} stage in {:?}",
            r.stages.iter().map(|s| s.stage).collect::<Vec<_>>()
        )
    })
}

fn code(s: &StageRecord) -> (u16, String) {
    let r = s.reply.as_ref().expect("a reply");
    (
        r.code,
        r.enhanced.map(|e| e.to_string()).unwrap_or_default(),
    )
}

/// The reply's text, each line without its code and separator.
fn text(s: &StageRecord) -> String {
    s.reply
        .as_ref()
        .map(|r| {
            r.lines
                .iter()
                .map(|l| l.get(4..).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// (category, layer) as the JSON shows them.
fn diag(s: &StageRecord) -> (String, String) {
    let v = serde_json::to_value(s.diagnosis.as_ref().expect("a diagnosis")).unwrap();
    (
        v["category"].as_str().unwrap().to_string(),
        v["layer"].as_str().unwrap().to_string(),
    )
}

fn assert_diag(s: &StageRecord, category: &str, layer: &str) {
    assert_eq!(
        diag(s),
        (category.to_string(), layer.to_string()),
        "{}: {}",
        s.stage,
        text(s)
    );
}

/// Probes `role` with `fault` for `rcpt` (with DATA when `data`).
async fn probe_role(role: Role, fault: Option<Fault>, rcpt: &str, data: bool) -> ProbeReport {
    let pki = Pki::new();
    let server = start(config(&pki, role, fault)).await;
    let mut o = opts(&pki, role, server.local_addr(), rcpt);
    o.data = data;
    let r = run(&o).await;
    server.shutdown().await;
    r
}

// ---- Each role, no fault ----------------------------------------------------------------------

#[tokio::test]
async fn eop_accepts_a_known_recipient_with_real_wording() {
    let pki = Pki::new();
    let server = start(config(&pki, Role::EopFrontEnd, None)).await;
    let mut o = opts(
        &pki,
        Role::EopFrontEnd,
        server.local_addr(),
        "user@contoso.test",
    );
    o.data = true;
    let r = run(&o).await;
    assert!(r.verdict.passed, "{}", r.verdict.summary);
    let banner = text(stage(&r, Stage::Banner));
    assert!(
        banner.starts_with(&format!("{EOP_FE} Microsoft ESMTP MAIL Service ready at ")),
        "{banner}"
    );
    let ehlo = text(stage(&r, Stage::Ehlo));
    assert!(
        ehlo.contains(&format!("{EOP_FE} Hello [127.0.0.1]")),
        "{ehlo}"
    );
    for kw in [
        "SIZE 157286400",
        "PIPELINING",
        "STARTTLS",
        "CHUNKING",
        "SMTPUTF8",
    ] {
        assert!(ehlo.contains(kw), "{kw} in {ehlo}");
    }
    assert!(!text(stage(&r, Stage::EhloTls)).contains("STARTTLS"));
    assert_eq!(code(stage(&r, Stage::MailFrom)), (250, "2.1.0".into()));
    assert_eq!(text(stage(&r, Stage::RcptTo)), "2.1.5 Recipient OK");
    let eod = stage(&r, Stage::EndOfData);
    assert_eq!(code(eod), (250, "2.6.0".into()));
    assert!(
        text(eod).ends_with("Queued mail for delivery"),
        "{}",
        text(eod)
    );
    let tls = r.tls.as_ref().unwrap();
    assert!(tls.verified, "{:?}", tls.verify_error);

    assert!(server.wait_for_sessions(1, Duration::from_secs(10)).await);
    let rec = server.sessions().pop().unwrap();
    assert_eq!(rec.ehlo.as_deref(), Some("probe.fabrikam.test"));
    assert_eq!(rec.mail_from.as_deref(), Some("sender@fabrikam.test"));
    assert_eq!(rec.rcpts, vec!["user@contoso.test".to_string()]);
    assert!(rec.tls && rec.data_bytes > 0 && rec.messages == 1);
    assert_eq!(rec.end, SessionEnd::Quit);
    assert_eq!(rec.client_cert_subject, None);
    server.shutdown().await;
}

#[tokio::test]
async fn onprem_exchange_wording() {
    let r = probe_role(Role::OnPremExchange, None, "user@contoso.test", true).await;
    assert!(r.verdict.passed, "{}", r.verdict.summary);
    let banner = text(stage(&r, Stage::Banner));
    assert!(
        banner.starts_with("mail.contoso.test Microsoft ESMTP MAIL Service ready at "),
        "{banner}"
    );
    assert_eq!(code(stage(&r, Stage::EndOfData)), (250, "2.6.0".into()));

    let r = probe_role(Role::OnPremExchange, None, "nobody@contoso.test", false).await;
    let rcpt = stage(&r, Stage::RcptTo);
    assert_eq!(code(rcpt), (550, "5.1.10".into()));
    assert!(text(rcpt).contains("RESOLVER.ADR.RecipientNotFound"));
    assert_diag(rcpt, "recipient_unknown", "recipient");

    let r = probe_role(Role::OnPremExchange, None, "someone@elsewhere.test", false).await;
    let rcpt = stage(&r, Stage::RcptTo);
    assert_eq!(code(rcpt), (550, "5.7.54".into()));
    assert_diag(rcpt, "relay_denied", "connector");
}

#[tokio::test]
async fn postfix_wording() {
    let r = probe_role(Role::ThirdPartyPostfix, None, "user@fabrikam.test", true).await;
    assert!(r.verdict.passed, "{}", r.verdict.summary);
    assert_eq!(
        text(stage(&r, Stage::Banner)),
        "mx.fabrikam.test ESMTP Postfix (Debian/GNU)"
    );
    let eod = text(stage(&r, Stage::EndOfData));
    assert!(eod.starts_with("2.0.0 Ok: queued as "), "{eod}");

    let r = probe_role(Role::ThirdPartyPostfix, None, "nobody@fabrikam.test", false).await;
    let rcpt = stage(&r, Stage::RcptTo);
    assert_eq!(code(rcpt), (550, "5.1.1".into()));
    assert!(text(rcpt).contains("User unknown in virtual mailbox table"));
    assert_diag(rcpt, "recipient_unknown", "recipient");

    let r = probe_role(Role::ThirdPartyPostfix, None, "x@elsewhere.test", false).await;
    let rcpt = stage(&r, Stage::RcptTo);
    assert_eq!(code(rcpt), (554, "5.7.1".into()));
    assert_eq!(text(rcpt), "5.7.1 <x@elsewhere.test>: Relay access denied");
    assert_diag(rcpt, "relay_denied", "connector");
}

#[tokio::test]
async fn eop_unknown_recipient_and_relay() {
    let r = probe_role(Role::EopFrontEnd, None, "nobody@contoso.test", false).await;
    let rcpt = stage(&r, Stage::RcptTo);
    assert_eq!(code(rcpt), (550, "5.4.1".into()));
    assert_eq!(
        text(rcpt),
        "5.4.1 Recipient address rejected: Access denied. AS(201806281) \
         [DM3NAM03FT051.eop-NAM03.prod.protection.outlook.com]"
    );
    assert_diag(rcpt, "recipient_unknown", "recipient");

    let r = probe_role(Role::EopFrontEnd, None, "x@elsewhere.test", false).await;
    let rcpt = stage(&r, Stage::RcptTo);
    assert_eq!(code(rcpt), (550, "5.7.64".into()));
    assert_diag(rcpt, "relay_denied", "connector");
}

// ---- SMTP-level faults ------------------------------------------------------------------------

#[tokio::test]
async fn recipient_not_provisioned() {
    let r = probe_role(
        Role::EopFrontEnd,
        Some(Fault::RecipientNotProvisioned),
        "user@contoso.test",
        false,
    )
    .await;
    let rcpt = stage(&r, Stage::RcptTo);
    assert_eq!(code(rcpt), (550, "5.4.1".into()));
    assert_diag(rcpt, "recipient_unknown", "recipient");

    let r = probe_role(
        Role::ThirdPartyPostfix,
        Some(Fault::RecipientNotProvisioned),
        "user@fabrikam.test",
        false,
    )
    .await;
    assert_diag(stage(&r, Stage::RcptTo), "recipient_unknown", "recipient");
}

#[tokio::test]
async fn dir_sync_stale_hides_the_remote_routing_address_on_eop() {
    let fault = Some(Fault::DirSyncStale);
    let r = probe_role(
        Role::EopFrontEnd,
        fault,
        "user@contoso.mail.onmicrosoft.com",
        false,
    )
    .await;
    let rcpt = stage(&r, Stage::RcptTo);
    assert_eq!(code(rcpt), (550, "5.4.1".into()));
    assert_diag(rcpt, "recipient_unknown", "recipient");
    // Primary addresses synced earlier still resolve.
    let r = probe_role(Role::EopFrontEnd, fault, "user@contoso.test", false).await;
    assert!(r.verdict.passed, "{}", r.verdict.summary);

    let r = probe_role(Role::OnPremExchange, fault, "user@contoso.test", false).await;
    let rcpt = stage(&r, Stage::RcptTo);
    assert_eq!(code(rcpt), (550, "5.1.10".into()));
    assert_diag(rcpt, "recipient_unknown", "recipient");
}

#[tokio::test]
async fn ip_blocklisted() {
    let fault = Some(Fault::IpBlocklisted);
    let r = probe_role(Role::EopFrontEnd, fault, "user@contoso.test", false).await;
    let rcpt = stage(&r, Stage::RcptTo);
    assert_eq!(code(rcpt), (550, "5.7.606".into()));
    assert!(text(rcpt).contains("banned sending IP [127.0.0.1]"));
    assert!(text(rcpt).contains("https://sender.office.com/"));
    assert_diag(rcpt, "ip_blocklisted", "reputation");

    for role in [Role::OnPremExchange, Role::ThirdPartyPostfix] {
        let rcpt = format!(
            "user@{}",
            if role == Role::OnPremExchange {
                "contoso.test"
            } else {
                "fabrikam.test"
            }
        );
        let r = probe_role(role, fault, &rcpt, false).await;
        assert_diag(stage(&r, Stage::RcptTo), "ip_blocklisted", "reputation");
    }
}

#[tokio::test]
async fn throttling() {
    let fault = Some(Fault::Throttling);
    let r = probe_role(Role::EopFrontEnd, fault, "user@contoso.test", false).await;
    let mail = stage(&r, Stage::MailFrom);
    assert_eq!(code(mail), (451, "4.7.500".into()));
    assert!(text(mail)
        .starts_with("4.7.500 Server busy. Please try again later from [127.0.0.1]. (S77719)"));
    assert_diag(mail, "reputation_or_rate_limited", "reputation");

    // Postfix's anvil limit answers at connect with 421 and closes.
    let r = probe_role(Role::ThirdPartyPostfix, fault, "user@fabrikam.test", false).await;
    let banner = stage(&r, Stage::Banner);
    assert_eq!(code(banner), (421, "4.7.0".into()));
    assert_diag(banner, "reputation_or_rate_limited", "reputation");

    // Exchange's MessageRateLimit: a rate limit, whatever 4.4.2 alone would suggest.
    let r = probe_role(Role::OnPremExchange, fault, "user@contoso.test", false).await;
    let mail = stage(&r, Stage::MailFrom);
    assert_eq!(code(mail), (421, "4.4.2".into()));
    assert_diag(mail, "reputation_or_rate_limited", "reputation");
}

#[tokio::test]
async fn attribution_failure() {
    let r = probe_role(
        Role::EopFrontEnd,
        Some(Fault::AttributionFailure),
        "user@contoso.mail.onmicrosoft.com",
        false,
    )
    .await;
    let rcpt = stage(&r, Stage::RcptTo);
    assert_eq!(code(rcpt), (550, "5.7.64".into()));
    assert!(text(rcpt).starts_with("5.7.64 TenantAttribution; Relay Access Denied ATTR36 ["));
    assert_diag(rcpt, "relay_denied", "connector");
}

#[tokio::test]
async fn transport_rule_reject_all() {
    let fault = Some(Fault::TransportRuleRejectAll);
    for role in [Role::EopFrontEnd, Role::OnPremExchange] {
        let r = probe_role(role, fault, "user@contoso.test", true).await;
        assert_eq!(code(stage(&r, Stage::RcptTo)).0, 250);
        let eod = stage(&r, Stage::EndOfData);
        assert_eq!(code(eod), (550, "5.7.1".into()));
        assert!(text(eod).contains("TRANSPORT.RULES.RejectMessage"));
        assert_diag(eod, "policy_or_transport_rule", "policy");
    }
    let r = probe_role(Role::ThirdPartyPostfix, fault, "user@fabrikam.test", false).await;
    let rcpt = stage(&r, Stage::RcptTo);
    assert_eq!(code(rcpt), (554, "5.7.1".into()));
    assert_diag(rcpt, "policy_or_transport_rule", "policy");
}

#[tokio::test]
async fn tls_required() {
    for (role, rcpt, expect) in [
        // Exchange really sends 451 with 5.7.3; the reply parser drops an enhanced code whose
        // class disagrees with the basic code (RFC 3463), the classifier still knows the text.
        (Role::EopFrontEnd, "user@contoso.test", (451, "")),
        (Role::OnPremExchange, "user@contoso.test", (451, "")),
        (
            Role::ThirdPartyPostfix,
            "user@fabrikam.test",
            (530, "5.7.0"),
        ),
    ] {
        let pki = Pki::new();
        let server = start(config(&pki, role, Some(Fault::TlsRequired))).await;
        let mut o = opts(&pki, role, server.local_addr(), rcpt);
        o.starttls = StartTls::Never;
        let r = run(&o).await;
        let mail = stage(&r, Stage::MailFrom);
        assert_eq!(code(mail), (expect.0, expect.1.to_string()), "{role:?}");
        assert_diag(mail, "tls_required", "tls");
        // With STARTTLS the same server takes the mail.
        o.starttls = StartTls::Require;
        let r = run(&o).await;
        assert!(r.verdict.passed, "{role:?}: {}", r.verdict.summary);
        server.shutdown().await;
    }
    // `require_tls` in the config is the same behaviour.
    let pki = Pki::new();
    let mut cfg = config(&pki, Role::OnPremExchange, None);
    cfg.require_tls = true;
    let server = start(cfg).await;
    let mut o = opts(
        &pki,
        Role::OnPremExchange,
        server.local_addr(),
        "user@contoso.test",
    );
    o.starttls = StartTls::Never;
    let r = run(&o).await;
    assert_diag(stage(&r, Stage::MailFrom), "tls_required", "tls");
}

#[tokio::test]
async fn certificate_faults() {
    for (fault, why) in [
        (Fault::CertExpired, "certificate expired"),
        (Fault::CertWrongName, "certificate does not match the name"),
    ] {
        let r = probe_role(
            Role::OnPremExchange,
            Some(fault),
            "user@contoso.test",
            false,
        )
        .await;
        let tls = r.tls.as_ref().expect("a TLS report");
        assert!(!tls.verified);
        let err = tls.verify_error.as_deref().unwrap_or_default();
        assert!(err.starts_with(why), "{fault:?}: {err}");
        // The handshake completed (report mode): its stage stays ok, the certificate finding
        // goes with the TLS report.
        let hs = stage(&r, Stage::TlsHandshake);
        assert_eq!(hs.outcome, mxtrace_proto::model::Outcome::Ok);
        assert!(hs.diagnosis.is_none(), "{:?}", hs.diagnosis);
        let v = serde_json::to_value(tls.verification.as_ref().expect("a finding")).unwrap();
        assert_eq!(
            (v["category"].as_str(), v["layer"].as_str()),
            (Some("tls_failed"), Some("tls"))
        );
    }
    assert_eq!(Fault::cert_validity(None), CertValidity::Valid);
}

#[tokio::test]
async fn relay_through_a_certificate_connector_records_the_client_certificate() {
    let pki = Pki::new();
    let mut cfg = config(&pki, Role::EopFrontEnd, None);
    cfg.tls = Some(
        pki.pki
            .server_config_with_client_auth(&["*.mail.protection.outlook.com"], CertValidity::Valid)
            .unwrap(),
    );
    cfg.relay_client_cert_name = Some("mail.contoso.test".to_string());
    let server = start(cfg).await;
    let mut o = opts(
        &pki,
        Role::EopFrontEnd,
        server.local_addr(),
        "x@fabrikam.test",
    );
    // Without the certificate: no attribution, relay denied.
    let r = run(&o).await;
    assert_diag(stage(&r, Stage::RcptTo), "relay_denied", "connector");
    // With it: relayed (scenario D / B hop 2 through a hybrid connector).
    let (cert, key) = pki.client_files("mail.contoso.test");
    o.tls.client_cert = Some(cert);
    o.tls.client_key = Some(key);
    let r = run(&o).await;
    assert!(r.verdict.passed, "{}", r.verdict.summary);
    assert!(server.wait_for_sessions(2, Duration::from_secs(10)).await);
    let recs = server.sessions();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].client_cert_subject, None);
    assert_eq!(
        recs[1].client_cert_subject.as_deref(),
        Some("CN=mail.contoso.test")
    );
    server.shutdown().await;

    // The attribution fault breaks it even with the right certificate.
    let mut cfg = config(&pki, Role::OnPremExchange, Some(Fault::AttributionFailure));
    cfg.tls = Some(
        pki.pki
            .server_config_with_client_auth(&[EXCH], CertValidity::Valid)
            .unwrap(),
    );
    cfg.relay_client_cert_name = Some("mail.contoso.test".to_string());
    let server = start(cfg).await;
    let mut o2 = opts(
        &pki,
        Role::OnPremExchange,
        server.local_addr(),
        "x@fabrikam.test",
    );
    o2.tls.client_cert = o.tls.client_cert.clone();
    o2.tls.client_key = o.tls.client_key.clone();
    let r = run(&o2).await;
    let rcpt = stage(&r, Stage::RcptTo);
    assert_eq!(code(rcpt), (550, "5.7.54".into()));
    assert_diag(rcpt, "relay_denied", "connector");
}

// ---- Network-level faults ---------------------------------------------------------------------

#[tokio::test]
async fn connector_offline_is_refused() {
    let pki = Pki::new();
    let addr = refused_listener_addr(Ipv4Addr::LOCALHOST).unwrap();
    let r = run(&opts(&pki, Role::OnPremExchange, addr, "user@contoso.test")).await;
    let connect = stage(&r, Stage::Connect);
    assert_eq!(connect.error.as_ref().unwrap().kind, ErrorKind::Refused);
    assert_diag(connect, "connector_or_routing", "network");
}

#[tokio::test]
async fn firewall_drop_times_out() {
    let pki = Pki::new();
    let hole = Blackhole::new(Ipv4Addr::LOCALHOST).await.unwrap();
    let mut o = opts(&pki, Role::OnPremExchange, hole.addr(), "user@contoso.test");
    o.connect_timeout = Duration::from_millis(300);
    let r = run(&o).await;
    let connect = stage(&r, Stage::Connect);
    assert_eq!(connect.error.as_ref().unwrap().kind, ErrorKind::Timeout);
    let (_, layer) = diag(connect);
    assert_eq!(layer, "network");
}

#[tokio::test]
async fn only_loopback() {
    let pki = Pki::new();
    let mut cfg = config(&pki, Role::ThirdPartyPostfix, None);
    cfg.addr = "0.0.0.0:0".parse().unwrap();
    let err = RoleServer::start(cfg).await.err().expect("refused");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let mut cfg = config(&pki, Role::ThirdPartyPostfix, None);
    cfg.addr = "[::1]:0".parse().unwrap();
    assert!(RoleServer::start(cfg).await.is_err());
    assert!(refused_listener_addr(Ipv4Addr::UNSPECIFIED).is_err());
    assert!(Blackhole::new(Ipv4Addr::new(10, 0, 0, 1)).await.is_err());
    // Any 127/8 address is fine.
    let mut cfg = config(&pki, Role::ThirdPartyPostfix, None);
    cfg.addr = "127.0.0.2:0".parse().unwrap();
    let server = start(cfg).await;
    assert_eq!(server.local_addr().ip().to_string(), "127.0.0.2");
}

// ---- Concurrency, hostile clients, shutdown ---------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_probes_at_once() {
    let pki = Arc::new(Pki::new());
    let server = start(config(&pki, Role::EopFrontEnd, None)).await;
    let addr = server.local_addr();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let pki = pki.clone();
        tasks.push(tokio::spawn(async move {
            let mut o = opts(&pki, Role::EopFrontEnd, addr, "user@contoso.test");
            o.data = i % 2 == 0;
            run(&o).await
        }));
    }
    for t in tasks {
        let r = t.await.unwrap();
        assert!(r.verdict.passed, "{}", r.verdict.summary);
    }
    assert!(server.wait_for_sessions(20, Duration::from_secs(10)).await);
    assert_eq!(
        server.sessions().iter().map(|s| s.messages).sum::<u32>(),
        10
    );
}

/// Sends `input` in one write and reads until the server closes (bounded).
async fn raw_session(addr: SocketAddr, input: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(input).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn hostile_sessions_do_not_hurt_the_next_client() {
    let pki = Pki::new();
    let server = start(config(&pki, Role::ThirdPartyPostfix, None)).await;
    let addr = server.local_addr();

    // Garbage, then an over-long line: errors, then 500 and close.
    let mut input = b"\x00\xff garbage\r\nFOO\r\nMAIL FROM:<a@b>\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'A', 10_000));
    input.extend_from_slice(b"\r\n");
    let out = raw_session(addr, &input).await;
    assert!(out.starts_with("220 mx.fabrikam.test ESMTP"), "{out}");
    assert!(
        out.contains("502 5.5.2 Error: command not recognized"),
        "{out}"
    );
    assert!(
        out.contains("503 5.5.1 Error: send HELO/EHLO first"),
        "{out}"
    );
    assert!(out.trim_end().ends_with("500 5.5.0 Line too long"), "{out}");

    // Bytes pipelined after STARTTLS: refused, closed.
    let out = raw_session(addr, b"EHLO x\r\nSTARTTLS\r\nMAIL FROM:<evil@x>\r\n").await;
    assert!(
        out.trim_end()
            .ends_with("554 5.5.1 Error: improper command pipelining after STARTTLS"),
        "{out}"
    );

    // Too many errors: closed with 421.
    let out = raw_session(addr, "X\r\n".repeat(30).as_bytes()).await;
    assert!(
        out.trim_end()
            .ends_with("421 4.7.0 mx.fabrikam.test Error: too many errors"),
        "{out}"
    );

    // Pipelined transaction, DATA with dot-stuffing, a bare-LF "end" that is not one, BDAT.
    let out = raw_session(
        addr,
        b"EHLO x\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<user@fabrikam.test>\r\nDATA\r\n\
          Subject: t\r\n\r\n..dot\r\nnot the end\n.\nstill\r\n.\r\n\
          MAIL FROM:<a@x.test>\r\nRCPT TO:<user@fabrikam.test>\r\nBDAT 5\r\nhelloBDAT 3 LAST\r\nabcQUIT\r\n",
    )
    .await;
    let codes: Vec<&str> = out.lines().map(|l| l.get(..4).unwrap_or(l)).collect();
    let tail: Vec<&str> = codes.iter().rev().take(10).rev().copied().collect();
    assert_eq!(
        tail,
        ["250 ", "250 ", "250 ", "354 ", "250 ", "250 ", "250 ", "250 ", "250 ", "221 "],
        "{out}"
    );
    assert!(out.contains("250 2.0.0 Ok: 5 bytes"), "{out}");
    assert!(out.trim_end().ends_with("221 2.0.0 Bye"), "{out}");

    // The server still serves a normal client.
    let r = run(&opts(
        &pki,
        Role::ThirdPartyPostfix,
        addr,
        "user@fabrikam.test",
    ))
    .await;
    assert!(r.verdict.passed, "{}", r.verdict.summary);
    assert!(server.wait_for_sessions(5, Duration::from_secs(10)).await);
    let ends: Vec<SessionEnd> = server.sessions().iter().map(|s| s.end).collect();
    assert!(ends.contains(&SessionEnd::LineTooLong), "{ends:?}");
    assert!(
        ends.contains(&SessionEnd::PipelinedAfterStartTls),
        "{ends:?}"
    );
    assert!(ends.contains(&SessionEnd::TooManyErrors), "{ends:?}");
    let bdat = server
        .sessions()
        .into_iter()
        .find(|s| s.messages == 2)
        .expect("the pipelined session");
    assert_eq!(
        bdat.data_bytes,
        "Subject: t\r\n\r\n..dot\r\nnot the end\n.\nstill\r\n".len() as u64 + 8
    );
}

#[tokio::test]
async fn shutdown_stops_listening() {
    let pki = Pki::new();
    let server = start(config(&pki, Role::ThirdPartyPostfix, None)).await;
    let addr = server.local_addr();
    // A session left open is ended by the shutdown, not waited for.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 256];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"220 "));
    server.shutdown().await;
    let r = run(&opts(
        &pki,
        Role::ThirdPartyPostfix,
        addr,
        "user@fabrikam.test",
    ))
    .await;
    assert_eq!(
        stage(&r, Stage::Connect).error.as_ref().unwrap().kind,
        ErrorKind::Refused
    );
    let n = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the idle session was closed");
}
