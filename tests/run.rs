//! `run`: every shipped scenario file parses and runs against a hermetic lab (the product lab's
//! DNS server and SMTP role servers on loopback, tests/support/lab.rs) through the binary with
//! `--resolver`/`--port`; failures give the right lines, exit codes and JUnit; bad files exit 2
//! with FILE:LINE:COL. Each test uses its own 127.0.N.0/24 (N from 40 up; tests/trace.rs uses
//! lower ones).

#[path = "support/dns.rs"]
mod dns_support;
#[path = "support/lab.rs"]
mod lab;
mod support;

use lab::{Lab, TempDir, EOP_CONTOSO, EOP_TENANT, FABRIKAM, MAIL, MAIL2};
use mxtrace_core::scenario_file::{self, HopTarget};
use mxtrace_lab::pki::LabPki;
use mxtrace_lab::smtp::Fault;
use mxtrace_proto::spec::SessionSpec as Overrides;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use support::bin::mxtrace;

fn scenario_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
}

fn shipped() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_scenario_file_parses() {
    let files = shipped();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "a-inbound-eop.toml",
            "b-hybrid-inbound.toml",
            "c-outbound-third-party.toml",
            "d-centralized-mail-flow.toml",
            "firewall-change.toml",
            "roundtrip-hybrid-inbound.toml"
        ]
    );
    for f in &files {
        let s = scenario_file::load(f, &Overrides::default())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(!s.hops.is_empty());
        for h in &s.hops {
            match (scenario_file::prepare(h), &h.roundtrip) {
                (Ok(_), _) => {}
                // A round trip's secrets are read when the run is prepared: here, only the
                // variable the file names is missing.
                (Err(e @ scenario_file::PrepareError::Roundtrip { .. }), Some(_)) => {
                    let e = e.to_string();
                    assert!(
                        e.contains("variable MXTRACE_") && e.contains("is not set"),
                        "{}: {e}",
                        f.display()
                    );
                }
                (Err(e), _) => panic!("{}: {e}", f.display()),
            }
        }
        let text = std::fs::read_to_string(f).unwrap();
        assert!(
            text.contains("contoso.com"),
            "{}: placeholders",
            f.display()
        );
        assert!(
            text.lines().filter(|l| l.starts_with('#')).count() >= 8,
            "{}: commented",
            f.display()
        );
    }
    let letters: Vec<Option<String>> = files
        .iter()
        .map(|f| {
            scenario_file::load(f, &Overrides::default())
                .unwrap()
                .scenario
                .map(|s| s.to_string())
        })
        .collect();
    assert_eq!(
        &letters[..4],
        [
            Some("A".into()),
            Some("B".into()),
            Some("C".into()),
            Some("D".into())
        ]
    );
    // B hop 2 goes to the tenant's routing domain.
    let b = scenario_file::load(&files[1], &Overrides::default()).unwrap();
    assert_eq!(
        b.hops[1].target,
        HopTarget::Domain("contoso.mail.onmicrosoft.com".into())
    );
}

fn check_all_passed(r: &support::bin::Run) -> serde_json::Value {
    assert_eq!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["command"], "run");
    assert_eq!(j["verdict"]["passed"], true);
    assert_eq!(j["summary"]["failed"], 0);
    assert!(j["summary"]["total"].as_u64().unwrap() > 0);
    j
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_a_runs_in_the_lab() {
    let net = 40;
    let pki = LabPki::new().unwrap();
    let eop = lab::eop(&pki, "contoso-com.mail.protection.outlook.com");
    let zones = lab::zones(net, &["contoso-com.mail.protection.outlook.com."], "");
    let lab = Lab::start(net, zones, pki, vec![(EOP_CONTOSO, eop)]).await;
    let r = lab
        .run(&scenario_file("a-inbound-eop.toml"), &["--json"])
        .await;
    let j = check_all_passed(&r);
    assert_eq!(j["scenario"], "A");
    let hop = &j["hops"][0];
    assert_eq!(hop["kind"], "trace");
    assert_eq!(
        hop["result"]["hops"][0]["mx"][0]["host"],
        "contoso-com.mail.protection.outlook.com"
    );
    let ids: Vec<&str> = hop["expectations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "internet -> EOP/mx_matches",
            "internet -> EOP/reachable",
            "internet -> EOP/starttls",
            "internet -> EOP/tls_verified",
            "internet -> EOP/certificate_name",
            "internet -> EOP/certificate_min_days",
            "internet -> EOP/stage.rcpt_to",
            "internet -> EOP/latency.connect",
            "internet -> EOP/latency.banner",
        ]
    );
    for e in hop["expectations"].as_array().unwrap() {
        for k in [
            "id",
            "subject",
            "description",
            "passed",
            "expected",
            "observed",
            "cause",
        ] {
            assert!(e.get(k).is_some(), "{k} missing in {e}");
        }
    }
    lab.assert_no_data(&[(EOP_CONTOSO, 1)]).await;
}

/// B with the client certificate lines of hop 2 uncommented (pointing at a client identity
/// from the lab CA).
fn b_with_client_cert(lab: &Lab) -> PathBuf {
    lab.client_cert("mail.contoso.com");
    let text = std::fs::read_to_string(scenario_file("b-hybrid-inbound.toml"))
        .unwrap()
        .replace(
            "# tls_client_cert = \"certs/mail.contoso.com.pem\"",
            "tls_client_cert = \"client-mail.contoso.com.pem\"",
        )
        .replace(
            "# tls_client_key = \"certs/mail.contoso.com.key\"",
            "tls_client_key = \"client-mail.contoso.com.key\"",
        );
    assert!(
        text.contains("\ntls_client_cert = "),
        "the commented lines changed"
    );
    lab.write("b.toml", &text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_b_runs_in_the_lab_with_a_client_certificate() {
    let net = 41;
    let pki = LabPki::new().unwrap();
    let mail = lab::on_prem(&pki, "mail.contoso.com");
    let eop = lab::eop(
        &pki,
        "contoso-mail-onmicrosoft-com.mail.protection.outlook.com",
    );
    let zones = lab::zones(net, &["mail"], "");
    let lab = Lab::start(net, zones, pki, vec![(MAIL, mail), (EOP_TENANT, eop)]).await;
    let file = b_with_client_cert(&lab);
    let r = lab.run(&file, &["--json"]).await;
    let j = check_all_passed(&r);
    let hop2 = &j["hops"][1];
    assert_eq!(hop2["hop"], 2);
    assert_eq!(hop2["path"], "on-premises -> EOP");
    assert_eq!(hop2["target"], "contoso.mail.onmicrosoft.com");
    let probe = &hop2["result"]["hops"][0]["probes"][0]["report"];
    assert_eq!(probe["tls"]["client_certificate_sent"], true);
    // Scenario tagging follows the file: B hop 2, not A (the host is EOP).
    assert_eq!(hop2["result"]["hops"][0]["hop"], 2);
    assert_eq!(hop2["result"]["hops"][0]["scenario"], "B");
    // The open-relay check ran as its own session, refused at RCPT, without DATA.
    let check = &j["hops"][0]["checks"][0];
    assert_eq!(check["check"], "open_relay");
    let rcpt: Vec<&serde_json::Value> = support::bin::stages(&check["report"], "rcpt_to");
    assert_eq!(
        rcpt[0]["sent"][0],
        "RCPT TO:<mxtrace-relay-test@example.invalid>"
    );
    // Exchange's relay refusal (550 5.7.54 ... Unable to relay).
    assert_eq!(rcpt[0]["reply"]["code"], 550);
    // mail.contoso.com: the trace's probe and the open-relay check; EOP: hop 2's probe, which
    // presented the client certificate.
    lab.assert_no_data(&[(MAIL, 2), (EOP_TENANT, 1)]).await;
    let eop = lab.sessions(EOP_TENANT, 1).await;
    assert_eq!(
        eop[0].client_cert_subject.as_deref(),
        Some("CN=mail.contoso.com")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_c_runs_in_the_lab() {
    let net = 42;
    let lab = lab::scenario_c(net).await;
    let r = lab
        .run(&scenario_file("c-outbound-third-party.toml"), &["--json"])
        .await;
    check_all_passed(&r);
    lab.assert_no_data(&[(FABRIKAM, 1)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_d_runs_in_the_lab_with_tls_required() {
    let net = 43;
    let pki = LabPki::new().unwrap();
    let mut mail = lab::on_prem(&pki, "mail.contoso.com");
    mail.require_tls = true;
    let fab = lab::postfix(&pki, "mx.fabrikam.com");
    let lab = Lab::start(
        net,
        lab::zones(net, &["mail"], ""),
        pki,
        vec![(MAIL, mail), (FABRIKAM, fab)],
    )
    .await;
    let r = lab
        .run(&scenario_file("d-centralized-mail-flow.toml"), &["--json"])
        .await;
    let j = check_all_passed(&r);
    let hop1 = &j["hops"][0];
    assert_eq!(hop1["kind"], "probe");
    let checks: Vec<&str> = hop1["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(checks, ["starttls_required", "open_relay"]);
    let req = hop1["expectations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["id"]
                == format!(
                    "EOP -> on-premises smart host/mail.contoso.com:{}/starttls",
                    lab.port
                )
        })
        .unwrap_or_else(|| panic!("{hop1}"));
    // Exchange's receive connector with RequireTLS: "451 5.7.3 STARTTLS is required to send
    // mail" (the 5.7.3 is kept as text: its class does not match the 4xx code).
    assert!(
        req["observed"]
            .as_str()
            .unwrap()
            .contains("451 tls_required \"5.7.3 STARTTLS is required"),
        "{req}"
    );
    // mail.contoso.com: the probe, the plaintext session and the open-relay check.
    lab.assert_no_data(&[(MAIL, 3), (FABRIKAM, 1)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firewall_change_runs_in_the_lab() {
    let net = 44;
    let pki = LabPki::new().unwrap();
    let mail = lab::on_prem(&pki, "mail.contoso.com");
    let mail2 = lab::on_prem(&pki, "mail2.contoso.com");
    let lab = Lab::start(
        net,
        lab::zones(net, &["mail", "mail2"], ""),
        pki,
        vec![(MAIL, mail), (MAIL2, mail2)],
    )
    .await;
    let r = lab.run(&scenario_file("firewall-change.toml"), &[]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    // `all = true`: each MX address has its own lines.
    assert!(
        r.stdout
            .contains("PASS hop 1 MX hosts [mail2.contoso.com 127.0.44.6]: STARTTLS offered"),
        "{}",
        r.stdout
    );
    let closed = format!(
        "PASS hop 1 legacy relay closed [relay.contoso.com:{}]: not reachable",
        lab.port
    );
    assert!(r.stdout.contains(&closed), "{}", r.stdout);
    // mail.contoso.com: hop 1's probe, hop 2's probe and its open-relay check.
    lab.assert_no_data(&[(MAIL, 3), (MAIL2, 1)]).await;
}

/// Hop 1's MX is an open relay and EOP refuses the tenant: exit 1, FAIL lines with what was
/// observed and why, JUnit with the failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_exit_1_with_lines_and_junit() {
    let net = 45;
    let pki = LabPki::new().unwrap();
    // A receive connector letting the probe's address (the loopback client is 127.0.0.1)
    // relay anywhere without AUTH.
    let mut mail = lab::on_prem(&pki, "mail.contoso.com");
    mail.relay_allowed_ips = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    // EOP cannot attribute the connection to the tenant.
    let mut eop = lab::eop(
        &pki,
        "contoso-mail-onmicrosoft-com.mail.protection.outlook.com",
    );
    eop.fault = Some(Fault::AttributionFailure);
    let lab = Lab::start(
        net,
        lab::zones(net, &["mail"], ""),
        pki,
        vec![(MAIL, mail), (EOP_TENANT, eop)],
    )
    .await;
    let file = b_with_client_cert(&lab);
    let junit = lab.dir().join("report.xml");
    let junit_arg = junit.display().to_string();
    let r = lab.run(&file, &["--junit", &junit_arg]).await;
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let shown = lab::redact(&r.stdout, lab.port).replace(&file.display().to_string(), "b.toml");
    insta::assert_snapshot!("run_failures", shown);

    // JUnit: counts, one testcase per expectation, a failure per failed one, escaping.
    let xml = std::fs::read_to_string(&junit).unwrap();
    let j = {
        let r = lab.run(&file, &["--json"]).await;
        r.json()
    };
    let total = j["summary"]["total"].as_u64().unwrap() as usize;
    let failed = j["summary"]["failed"].as_u64().unwrap() as usize;
    assert_eq!(failed, 2, "{}", r.stdout);
    check_junit(&xml, total, failed, j["hops"].as_array().unwrap().len());
    // The reply text, quoted in the observation, escaped (all five escapes: junit.rs tests).
    assert!(
        xml.contains("relay_denied &quot;TenantAttribution; Relay Access Denied ATTR36"),
        "reply text escaped:\n{xml}"
    );
    assert!(
        xml.contains(r#"classname="b.on-premises -&gt; EOP""#),
        "{xml}"
    );
    // No temp file left next to the report.
    let leftovers: Vec<_> = std::fs::read_dir(junit.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
    // Two runs: each a probe and an open-relay check at mail.contoso.com, a probe at EOP.
    lab.assert_no_data(&[(MAIL, 4), (EOP_TENANT, 2)]).await;
}

/// A minimal XML check: tags balance, attribute values and text carry no raw `<` or bare `&`,
/// and the counts are right.
fn check_junit(xml: &str, total: usize, failed: usize, suites: usize) {
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
    let mut stack: Vec<String> = Vec::new();
    let mut rest = xml.split_once("?>").unwrap().1;
    let mut counts = std::collections::HashMap::new();
    let mut suite_attrs = Vec::new();
    while let Some(i) = rest.find('<') {
        check_text(&rest[..i]);
        let end = rest[i..].find('>').unwrap() + i;
        let tag = &rest[i + 1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "unbalanced </{name}>");
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let name = tag.split_whitespace().next().unwrap().to_string();
        // Attribute values: between quotes, no raw < or bare &.
        let mut attrs = std::collections::HashMap::new();
        let mut a = tag[name.len()..].trim();
        while !a.is_empty() {
            let (k, v) = a.split_once("=\"").unwrap();
            let close = v.find('"').unwrap();
            let value = &v[..close];
            assert!(!value.contains('<'), "raw < in {k}");
            check_text(value);
            attrs.insert(k.trim().to_string(), value.to_string());
            a = v[close + 1..].trim();
        }
        *counts.entry(name.clone()).or_insert(0usize) += 1;
        if name == "testsuites" {
            assert_eq!(attrs["tests"], total.to_string());
            assert_eq!(attrs["failures"], failed.to_string());
        }
        if name == "testsuite" {
            suite_attrs.push(attrs.clone());
            for k in ["name", "tests", "failures", "errors", "time"] {
                assert!(attrs.contains_key(k), "testsuite@{k}");
            }
        }
        if name == "testcase" {
            assert!(attrs.contains_key("name") && attrs.contains_key("classname"));
        }
        if name == "failure" {
            assert!(attrs.contains_key("message"));
        }
        if !self_closing {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed {stack:?}");
    assert_eq!(counts.get("testsuites"), Some(&1));
    assert_eq!(counts.get("testsuite"), Some(&suites));
    assert_eq!(counts.get("testcase"), Some(&total));
    assert_eq!(counts.get("failure").copied().unwrap_or(0), failed);
    let per_suite: usize = suite_attrs
        .iter()
        .map(|a| a["tests"].parse::<usize>().unwrap())
        .sum();
    assert_eq!(per_suite, total);
}

fn check_text(t: &str) {
    let mut rest = t;
    while let Some(i) = rest.find('&') {
        rest = &rest[i..];
        let ok = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#10;", "&#9;"]
            .iter()
            .any(|e| rest.starts_with(e));
        assert!(ok, "bare & in {t:?}");
        rest = &rest[1..];
    }
}

#[test]
fn bad_files_exit_2_with_file_and_line() {
    let dir = TempDir::new();
    let cases = [
        ("syntax", "name = \"x\"\n[[hop]\nname = \"a\"\n", ":2:"),
        (
            "unknown-key",
            "name = \"x\"\n[[hop]]\nname = \"a\"\ndomain = \"contoso.com\"\nrcpt_to = [\"a@b.c\"]\n",
            ":5:1: unknown field `rcpt_to`",
        ),
        (
            "bad-category",
            "name = \"x\"\n[[hop]]\nname = \"a\"\ndomain = \"contoso.com\"\n[hop.expect]\nstage.rcpt_to = \"ok\"\n",
            ":6:17: unknown category \"ok\"",
        ),
        (
            "bad-duration",
            "name = \"x\"\n[defaults]\nconnect_timeout = \"ten seconds\"\n[[hop]]\nname = \"a\"\ndomain = \"contoso.com\"\n",
            ":3:19: invalid duration \"ten seconds\"",
        ),
        (
            "no-target",
            "name = \"x\"\nscenario = \"C\"\n[[hop]]\nname = \"a\"\n",
            ":4:8: hop \"a\" needs domain",
        ),
        (
            "bad-port",
            "name = \"x\"\n[[hop]]\nname = \"a\"\ndomain = \"contoso.com\"\nport = 70000\n",
            ":5:8: port 70000: must be 1-65535",
        ),
    ];
    for (name, text, want) in cases {
        let f = dir.write(&format!("{name}.toml"), text);
        // The resolver is a closed loopback port: nothing may be asked of it anyway.
        let r = mxtrace(
            &["run", f.to_str().unwrap(), "--resolver", "127.0.0.1:9"],
            &[],
        );
        assert_eq!(r.code, 2, "{name}: {}", r.stderr);
        let expected = format!("{}{want}", f.display());
        assert!(
            r.stderr.contains(&expected),
            "{name}:\n got: {}\nwant: {expected}",
            r.stderr
        );
        assert!(!r.stderr.contains("panic"), "{name}");
        assert!(r.stdout.is_empty(), "{name}: nothing runs");
    }
    let missing = mxtrace(&["run", "/nonexistent/x.toml"], &[]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("/nonexistent/x.toml: cannot read"),
        "{}",
        missing.stderr
    );
}

/// A scenario file's user reads the file's keys, not the command line's flags: in the
/// advice of a report, and in the error for a TLS file that does not load.
#[test]
fn a_scenario_file_names_settings_by_their_keys() {
    use support::{esmtp_greeting, quit, ScriptedServer};
    let dir = TempDir::new();
    let mut steps = esmtp_greeting("mx.test", &["PIPELINING"]);
    steps.extend(quit());
    let server = ScriptedServer::spawn_thread(steps);
    let f = dir.write(
        "require.toml",
        &format!(
            "name = \"k\"\n[[hop]]\nname = \"a\"\nhosts = [\"{}\"]\nstarttls = \"require\"\n",
            server.addr
        ),
    );
    let r = mxtrace(&["run", f.to_str().unwrap(), "--json"], &[]);
    server.finish_blocking().assert_ok();
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let json = r.json();
    let report = &json["hops"][0]["result"][0];
    let starttls = support::bin::stages(report, "starttls");
    assert_eq!(
        starttls[0]["error"]["message"],
        "the server did not offer STARTTLS (required by starttls = \"require\")",
        "{report}"
    );

    let empty = dir.write("empty.pem", "");
    let f = dir.write(
        "ca.toml",
        "name = \"k\"\n[[hop]]\nname = \"a\"\nhosts = [\"127.0.46.2\"]\ntls_ca_file = \"empty.pem\"\n",
    );
    let r = mxtrace(&["run", f.to_str().unwrap()], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let want = format!(
        "{}:5:15: tls_ca_file {}: no PEM certificate found",
        f.display(),
        empty.display()
    );
    assert!(r.stderr.contains(&want), "got: {}\nwant: {want}", r.stderr);
    assert!(r.stdout.is_empty(), "nothing ran");
}

#[test]
fn unwritable_junit_path_is_a_usage_error_before_running() {
    let dir = TempDir::new();
    let f = dir.write(
        "ok.toml",
        "name = \"x\"\n[[hop]]\nname = \"a\"\nhosts = [\"127.0.46.2\"]\n",
    );
    let r = mxtrace(
        &[
            "run",
            f.to_str().unwrap(),
            "--junit",
            "/nonexistent-dir/report.xml",
            "--json",
        ],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("--junit /nonexistent-dir/report.xml: cannot write"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty(), "nothing ran");
}

#[test]
fn run_and_diff_help_are_pinned() {
    let r = mxtrace(&["run", "--help"], &[]);
    assert_eq!(r.code, 0);
    insta::assert_snapshot!("run_help", r.stdout);
    let r = mxtrace(&["diff", "--help"], &[]);
    assert_eq!(r.code, 0);
    insta::assert_snapshot!("diff_help", r.stdout);
}
