//! The lab (`mxtrace_lab::Lab`) driven through the command line as a user types it (clap ->
//! `trace::trace` / `probe::probe`): the healthy path of all four scenarios, and every fault
//! with the category and layer mxtrace reports for it, written out here rather than read from
//! the lab's own table so that the table is checked too. Each test has its own 127.1.N.0/24.

use clap::Parser;
use mxtrace::cli::{self, Cli};
use mxtrace_core::job::execute;
use mxtrace_knowledge::Scenario;
use mxtrace_lab::topology::Client;
use mxtrace_lab::{Endpoint, Lab, LabFault, LabOptions};
use mxtrace_proto::model::JobReport as Report;
use mxtrace_proto::model::{Outcome, ProbeReport, Stage, StageRecord};
use std::net::Ipv4Addr;
use std::time::Duration;
use tokio::time::timeout;

fn base(net: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 1, net, 1)
}

async fn lab(net: u8, faults: &[LabFault]) -> Lab {
    Lab::start(LabOptions {
        base: base(net),
        faults: faults.to_vec(),
        ..LabOptions::default()
    })
    .await
    .unwrap()
}

/// Runs the lab's invocation for `scenario` hop `hop` exactly as the binary would.
async fn run(lab: &Lab, scenario: Scenario, hop: u8, client: Client) -> Report {
    let mut argv = lab.info().invocation(scenario, hop, client).argv();
    argv.extend(["--connect-timeout", "1s", "--stage-timeout", "5s"].map(String::from));
    // The binary's own parsing and dispatch: clap -> job -> execute.
    let cli = Cli::try_parse_from(&argv).unwrap();
    let job = cli::job(&cli.command).unwrap().expect("a trace or probe");
    let fut = async { execute(&job).await.unwrap() };
    timeout(Duration::from_secs(60), fut)
        .await
        .expect("finished")
}

/// The probe that decided `hop` (or the last tried).
fn probe_of(r: &Report, hop: u8) -> &ProbeReport {
    match r {
        Report::Probe(p) => p,
        Report::Trace(t) => {
            let h = t.hops.iter().find(|h| h.hop == hop).expect("the hop");
            let p = h
                .decided_by
                .and_then(|i| h.probes.get(i))
                .or(h.probes.last())
                .expect("a probe");
            &p.report
        }
    }
}

fn failed_stage(p: &ProbeReport) -> &StageRecord {
    assert!(
        !p.verdict.passed,
        "expected a failure: {}",
        p.verdict.summary
    );
    p.stages
        .iter()
        .find(|s| Some(s.stage) == p.verdict.failed_stage && s.outcome != Outcome::Ok)
        .expect("the failed stage")
}

/// (stage, category, layer, scenario, hop) of the failure, as the JSON names them.
fn diagnosed(r: &Report, hop: u8) -> (String, String, String, String, u64) {
    let s = failed_stage(probe_of(r, hop));
    let d = serde_json::to_value(s.diagnosis.as_ref().expect("a diagnosis")).unwrap();
    (
        s.stage.to_string(),
        d["category"].as_str().unwrap().to_string(),
        d["layer"].as_str().unwrap().to_string(),
        d["scenario"].as_str().unwrap_or("").to_string(),
        d["hop"].as_u64().unwrap_or(0),
    )
}

fn reply(r: &Report, hop: u8) -> String {
    failed_stage(probe_of(r, hop))
        .reply
        .as_ref()
        .and_then(|r| r.lines.first().cloned())
        .unwrap_or_default()
}

fn passed(r: &Report) -> bool {
    match r {
        Report::Trace(t) => t.verdict.passed,
        Report::Probe(p) => p.verdict.passed,
    }
}

fn summary(r: &Report) -> String {
    match r {
        Report::Trace(t) => t.verdict.summary.clone(),
        Report::Probe(p) => p.verdict.summary.clone(),
    }
}

fn expect(r: &Report, hop: u8, want: (&str, &str, &str, &str)) {
    let (stage, category, layer, scenario, h) = diagnosed(r, hop);
    assert_eq!(
        (
            stage.as_str(),
            category.as_str(),
            layer.as_str(),
            scenario.as_str()
        ),
        want,
        "{}",
        summary(r)
    );
    assert_eq!(h, u64::from(hop));
}

// ---- Healthy -----------------------------------------------------------------------------------

#[tokio::test]
async fn all_four_scenarios_pass_through_the_lab() {
    let lab = lab(1, &[]).await;
    let a = run(&lab, Scenario::A, 1, Client::Normal).await;
    assert!(passed(&a), "{}", summary(&a));
    let Report::Trace(t) = &a else { panic!() };
    assert_eq!(t.hops[0].scenario, Some(Scenario::A));
    assert_eq!(
        t.hops[0].mx[0].host,
        "contoso-test.mail.protection.outlook.com"
    );
    assert_eq!(t.hops[0].probes[0].ip, "127.1.1.2");
    let tls = t.hops[0].probes[0].report.tls.as_ref().unwrap();
    assert!(
        tls.verified,
        "the lab CA file verifies: {:?}",
        tls.verify_error
    );
    assert!(t.verdict.warnings.is_empty(), "{:?}", t.verdict.warnings);

    let b = run(&lab, Scenario::B, 1, Client::Normal).await;
    assert!(passed(&b), "{}", summary(&b));
    let Report::Trace(t) = &b else { panic!() };
    assert_eq!(t.hops.len(), 2);
    assert_eq!(t.hops[0].probes[0].ip, "127.1.1.3");
    assert_eq!(t.hops[1].domain, "contoso.mail.onmicrosoft.com");
    assert_eq!(t.hops[1].probes[0].ip, "127.1.1.2");
    assert_eq!(t.hops[1].scenario, Some(Scenario::B));

    let c = run(&lab, Scenario::C, 1, Client::Normal).await;
    assert!(passed(&c), "{}", summary(&c));
    let Report::Trace(t) = &c else { panic!() };
    assert_eq!(t.hops[0].probes[0].ip, "127.1.1.4");

    let d1 = run(&lab, Scenario::D, 1, Client::Normal).await;
    assert!(passed(&d1), "{}", summary(&d1));
    let Report::Probe(p) = &d1 else { panic!() };
    let tls = p.tls.as_ref().unwrap();
    assert!(tls.verified && tls.client_certificate_sent);
    let d2 = run(&lab, Scenario::D, 2, Client::Normal).await;
    assert!(passed(&d2), "{}", summary(&d2));
    let Report::Trace(t) = &d2 else { panic!() };
    assert_eq!((t.hops[0].hop, t.hops[0].scenario), (2, Some(Scenario::D)));
    lab.shutdown().await;
}

// ---- Every fault: category and layer -----------------------------------------------------------

#[tokio::test]
async fn connector_offline_is_refused_in_b_hop_1_and_d_hop_1() {
    let lab = lab(2, &[LabFault::ConnectorOffline]).await;
    let want = ("connect", "connector_or_routing", "network", "B");
    let b = run(&lab, Scenario::B, 1, Client::Normal).await;
    expect(&b, 1, want);
    let d = run(&lab, Scenario::D, 1, Client::Normal).await;
    expect(&d, 1, ("connect", "connector_or_routing", "network", "D"));
    let err = failed_stage(probe_of(&d, 1)).error.as_ref().unwrap();
    assert_eq!(err.kind.as_str(), "refused");
    // The rest of the lab is up.
    assert!(passed(&run(&lab, Scenario::A, 1, Client::Normal).await));
}

#[tokio::test]
async fn firewall_drop_times_out_in_b_hop_2() {
    let lab = lab(3, &[LabFault::FirewallDrop]).await;
    let b = run(&lab, Scenario::B, 2, Client::Normal).await;
    let Report::Trace(t) = &b else { panic!() };
    assert!(t.hops[0].verdict.passed, "hop 1 still passes");
    expect(&b, 2, ("connect", "connector_or_routing", "network", "B"));
    let err = failed_stage(probe_of(&b, 2)).error.as_ref().unwrap();
    assert_eq!(err.kind.as_str(), "timeout");
}

#[tokio::test]
async fn wrong_mx_sends_scenario_a_to_the_on_premises_server() {
    let lab = lab(4, &[LabFault::WrongMx]).await;
    let a = run(&lab, Scenario::A, 1, Client::Normal).await;
    expect(&a, 1, ("rcpt_to", "relay_denied", "connector", "A"));
    assert!(reply(&a, 1).starts_with("550 5.7.54"), "{}", reply(&a, 1));
    let Report::Trace(t) = &a else { panic!() };
    assert_eq!(t.hops[0].mx[0].host, "mail.contoso.test");
    assert!(
        t.verdict
            .warnings
            .iter()
            .any(|w| w.contains("no MX of contoso.test points at Exchange Online")),
        "{:?}",
        t.verdict.warnings
    );
}

#[tokio::test]
async fn transport_rule_rejects_at_end_of_data() {
    let lab = lab(5, &[LabFault::TransportRule]).await;
    // Without --data the rule never runs: RCPT is accepted.
    assert!(passed(&run(&lab, Scenario::A, 1, Client::Normal).await));
    let a = run(&lab, Scenario::A, 1, Client::Data).await;
    expect(
        &a,
        1,
        ("end_of_data", "policy_or_transport_rule", "policy", "A"),
    );
    assert!(reply(&a, 1).contains("TRANSPORT.RULES.RejectMessage"));
}

#[tokio::test]
async fn recipient_not_provisioned_in_a_and_c() {
    let lab = lab(6, &[LabFault::RecipientNotProvisioned]).await;
    let a = run(&lab, Scenario::A, 1, Client::Normal).await;
    expect(&a, 1, ("rcpt_to", "recipient_unknown", "recipient", "A"));
    assert!(reply(&a, 1).starts_with("550 5.4.1 "));
    let c = run(&lab, Scenario::C, 1, Client::Normal).await;
    expect(&c, 1, ("rcpt_to", "recipient_unknown", "recipient", "C"));
    assert!(reply(&c, 1).starts_with("550 5.1.1 "));
}

#[tokio::test]
async fn tls_required_refuses_a_sender_without_tls() {
    let lab = lab(7, &[LabFault::TlsRequired]).await;
    // A sender that does STARTTLS is fine.
    assert!(passed(&run(&lab, Scenario::C, 1, Client::Normal).await));
    let c = run(&lab, Scenario::C, 1, Client::NoStartTls).await;
    expect(&c, 1, ("mail_from", "tls_required", "tls", "C"));
    assert!(reply(&c, 1).starts_with("530 5.7.0"));
}

#[tokio::test]
async fn certificate_faults_fail_the_smart_host_handshake() {
    for (net, fault, why) in [
        (8, LabFault::CertExpired, "certificate expired"),
        (9, LabFault::CertWrongName, "does not match the name"),
    ] {
        let lab = lab(net, &[fault]).await;
        let d = run(&lab, Scenario::D, 1, Client::Normal).await;
        expect(&d, 1, ("tls_handshake", "tls_failed", "tls", "D"));
        let err = failed_stage(probe_of(&d, 1)).error.as_ref().unwrap();
        assert!(err.message.contains(why), "{fault}: {}", err.message);
    }
}

#[tokio::test]
async fn ip_blocklisted_in_a_and_d_hop_2() {
    let lab = lab(10, &[LabFault::IpBlocklisted]).await;
    let a = run(&lab, Scenario::A, 1, Client::Normal).await;
    expect(&a, 1, ("rcpt_to", "ip_blocklisted", "reputation", "A"));
    assert!(reply(&a, 1).starts_with("550 5.7.606 "));
    let d = run(&lab, Scenario::D, 2, Client::Normal).await;
    expect(&d, 2, ("rcpt_to", "ip_blocklisted", "reputation", "D"));
    assert!(reply(&d, 2).contains("zen.spamhaus.org"));
}

#[tokio::test]
async fn throttling_defers_at_mail() {
    let lab = lab(11, &[LabFault::Throttling]).await;
    let a = run(&lab, Scenario::A, 1, Client::Normal).await;
    expect(
        &a,
        1,
        ("mail_from", "reputation_or_rate_limited", "reputation", "A"),
    );
    assert!(reply(&a, 1).starts_with("451 4.7.500 "));
    let Report::Trace(t) = &a else { panic!() };
    assert_eq!(t.verdict.outcome, Outcome::Transient);
}

#[tokio::test]
async fn dirsync_stale_hides_the_remote_routing_address_in_b_hop_2() {
    let lab = lab(12, &[LabFault::DirsyncStale]).await;
    let b = run(&lab, Scenario::B, 2, Client::Normal).await;
    let Report::Trace(t) = &b else { panic!() };
    assert!(t.hops[0].verdict.passed, "hop 1 still passes");
    expect(&b, 2, ("rcpt_to", "recipient_unknown", "recipient", "B"));
    // Scenario A's primary address still resolves.
    assert!(passed(&run(&lab, Scenario::A, 1, Client::Normal).await));
}

#[tokio::test]
async fn attribution_fails_b_hop_2_with_5_7_64() {
    let lab = lab(13, &[LabFault::Attribution]).await;
    let b = run(&lab, Scenario::B, 2, Client::Normal).await;
    expect(&b, 2, ("rcpt_to", "relay_denied", "connector", "B"));
    assert!(reply(&b, 2).starts_with("550 5.7.64 TenantAttribution; Relay Access Denied ATTR36"));
}

/// Every fault of the table is exercised above; this keeps the list and the table in step.
#[test]
fn every_fault_is_tested_here() {
    assert_eq!(mxtrace_lab::FAULTS.len(), 12);
}

// ---- The lab itself ----------------------------------------------------------------------------

#[tokio::test]
async fn lab_only_binds_loopback_and_refuses_conflicting_faults() {
    let e = Lab::start(LabOptions {
        base: Ipv4Addr::new(10, 0, 0, 1),
        ..LabOptions::default()
    })
    .await
    .err()
    .expect("refused");
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let e = Lab::start(LabOptions {
        base: Ipv4Addr::new(127, 255, 255, 254),
        ..LabOptions::default()
    })
    .await
    .err()
    .expect("no room");
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let e = Lab::start(LabOptions {
        base: base(20),
        faults: vec![LabFault::Throttling, LabFault::DirsyncStale],
        ..LabOptions::default()
    })
    .await
    .err()
    .expect("conflict");
    assert!(e.to_string().contains("EOP front end"), "{e}");
}

#[tokio::test]
async fn lab_description_files_and_cleanup() {
    let lab = lab(21, &[LabFault::ConnectorOffline, LabFault::Throttling]).await;
    let info = lab.info().clone();
    assert_eq!(info.dns.ip().to_string(), "127.1.21.1");
    assert_eq!(info.dns.port(), info.port);
    assert_eq!(
        info.ip(Endpoint::ThirdParty),
        Some(Ipv4Addr::new(127, 1, 21, 4))
    );
    assert!(std::fs::read_to_string(&info.ca_file)
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    let v = serde_json::to_value(&info).unwrap();
    assert_eq!(v["tenant_routing_domain"], "contoso.mail.onmicrosoft.com");
    assert_eq!(v["endpoints"][2]["state"], "refused");
    assert_eq!(v["endpoints"][1]["faults"][0], "throttling");
    assert_eq!(
        v["faults"],
        serde_json::json!(["connector-offline", "throttling"])
    );
    let text = info.render_human();
    assert!(text.contains("mxtrace trace contoso.test"), "{text}");
    assert!(text.contains("swaks --server 127.1.21.2:"), "{text}");
    let dir = info.ca_file.parent().unwrap().to_path_buf();
    lab.shutdown().await;
    assert!(!dir.exists(), "the temporary directory is removed");

    // A given port and directory are used as given (and the directory is kept).
    let dir = std::env::temp_dir().join(format!("mxtrace-lab-test-{}", std::process::id()));
    let port = {
        let l = std::net::TcpListener::bind("127.1.22.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let lab = Lab::start(LabOptions {
        base: base(22),
        port: Some(port),
        dir: Some(dir.clone()),
        ..LabOptions::default()
    })
    .await
    .unwrap();
    assert_eq!(lab.info().port, port);
    assert_eq!(lab.info().ca_file, dir.join("ca.pem"));
    assert!(passed(&run(&lab, Scenario::C, 1, Client::Normal).await));
    lab.shutdown().await;
    assert!(dir.join("ca.pem").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn two_labs_on_the_same_addresses_do_not_interfere() {
    let a = lab(23, &[LabFault::ConnectorOffline]).await;
    let b = lab(23, &[]).await;
    assert_ne!(a.info().port, b.info().port);
    assert!(!passed(&run(&a, Scenario::B, 1, Client::Normal).await));
    assert!(passed(&run(&b, Scenario::B, 1, Client::Normal).await));
}

#[tokio::test]
async fn stage_names_are_the_json_names() {
    // The tests above compare with JSON stage names; keep them honest.
    assert_eq!(Stage::RcptTo.to_string(), "rcpt_to");
    assert_eq!(Stage::TlsHandshake.to_string(), "tls_handshake");
}
