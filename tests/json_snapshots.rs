//! The JSON of `probe`, `trace`, `run`, `diff` and `explain`, pinned end to end through the
//! binary against the loopback lab (scenario C: mx.fabrikam.com on the lab's Postfix role).
//! What changes from run to run is redacted: times, the lab's ports and DNS address, temp
//! paths, certificate dates, serials and fingerprints, and the crate version.

#[path = "support/dns.rs"]
mod dns_support;
#[path = "support/lab.rs"]
mod lab;
mod support;

use lab::{Lab, FABRIKAM};
use mxtrace_proto::model::Document;
use mxtrace_render::json::render;
use serde_json::Value;
use std::path::Path;
use support::bin::{mxtrace, redact_ports, Run};

/// The result of a run that should pass, with the values that embed this run's addresses and
/// paths made stable (field-name redactions cannot reach inside strings).
fn stable(lab: &Lab, r: &Run) -> Value {
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    round_trips(&r.stdout);
    stable_text(lab, &r.stdout)
}

/// The result model reads back every field it wrote: read, written again, the same JSON.
fn round_trips(text: &str) {
    let printed: Value = serde_json::from_str(text).unwrap();
    let doc = Document::from_value(Path::new("stdout"), printed.clone()).unwrap();
    let again = match &doc {
        Document::Probe(p) => render(doc.command(), p),
        Document::Trace(t) => render(doc.command(), t),
        Document::Run(r) => render(doc.command(), r),
        Document::Watch(w) => render(doc.command(), w),
        Document::Roundtrip(r) => render(doc.command(), r),
    };
    let again: Value = serde_json::from_str(&again.unwrap()).unwrap();
    assert_eq!(
        again,
        printed,
        "the {} result reads back unchanged",
        doc.command()
    );
}

fn stable_text(lab: &Lab, text: &str) -> Value {
    // The envelope comes first, in this order (the snapshot sorts keys).
    assert!(
        text.starts_with("{\n  \"schema_version\": 1,\n  \"command\": \""),
        "{text}"
    );
    let text = text
        .replace(&lab.dns.resolver(), "RESOLVER")
        .replace(&format!(":{}", lab.port), ":PORT")
        .replace(&lab.dir().display().to_string(), "DIR")
        .replace(env!("CARGO_MANIFEST_DIR"), "REPO");
    // The client's own port, in the connect note.
    serde_json::from_str(&redact_ports(&text)).unwrap()
}

/// The redactions every result needs, by field name at any depth.
macro_rules! assert_result_snapshot {
    ($name:expr, $value:expr) => {
        insta::assert_json_snapshot!($name, $value, {
            ".version" => "[version]",
            ".**.port" => "[port]",
            ".**.started_at" => "[time]",
            ".**.elapsed_ms" => "[ms]",
            ".**.started_ms" => "[ms]",
            ".**.dns_elapsed_ms" => "[ms]",
            // What a latency or certificate expectation observed (`3.6 ms`, `364 days left
            // (not after DATE)`); other observations are kept.
            ".**.observed" => insta::dynamic_redaction(|v, _| match v.as_str() {
                Some(s) if s.ends_with(" ms") => insta::internals::Content::from("[ms]"),
                Some(s) if s.contains(" days left") => {
                    insta::internals::Content::from("[days left]")
                }
                _ => v,
            }),
            ".**.not_before" => "[date]",
            ".**.not_after" => "[date]",
            ".**.days_left" => "[days]",
            ".**.serial" => "[serial]",
            ".**.sha256" => "[fingerprint]",
        })
    };
}

/// `mxtrace ARGS` off the runtime's threads (the lab's servers run on them).
async fn mxtrace_async(args: Vec<String>) -> Run {
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        mxtrace(&refs, &[])
    })
    .await
    .unwrap()
}

fn scenario_file() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/c-outbound-third-party.toml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_trace_and_probe_json() {
    let lab = lab::scenario_c(60).await;

    let run = lab.run(&scenario_file(), &["--json"]).await;
    assert_result_snapshot!("run_json", stable(&lab, &run));

    let mut args = vec![
        "trace".to_string(),
        "fabrikam.com".into(),
        "--scenario".into(),
    ];
    args.push("C".into());
    args.extend(lab.args());
    args.push("--json".into());
    let trace = mxtrace_async(args).await;
    assert_result_snapshot!("trace_json", stable(&lab, &trace));

    let ca = lab.write("ca-probe.pem", &lab.pki.ca_pem());
    let target = format!("127.0.60.{FABRIKAM}:{}", lab.port);
    let args = [
        "probe",
        &target,
        "--tls-name",
        "mx.fabrikam.com",
        "--tls-ca-file",
        &ca.display().to_string(),
        "--ehlo",
        "probe.fabrikam.test",
        "--json",
    ];
    let probe = mxtrace_async(args.iter().map(|s| s.to_string()).collect()).await;
    assert_result_snapshot!("probe_json", stable(&lab, &probe));
    lab.assert_no_data(&[(FABRIKAM, 3)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_json() {
    let lab = lab::scenario_c(61).await;
    let run = lab.run(&scenario_file(), &["--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let before = lab.write("before.json", &run.stdout);
    // TLS downgraded and STARTTLS gone: what an inspecting firewall does.
    let mut after: Value = run.json();
    let report = &mut after["hops"][0]["result"]["hops"][0]["probes"][0]["report"];
    report["tls"]["version"] = "TLSv1.2".into();
    report["capabilities"]["before_tls"]["keywords"]
        .as_array_mut()
        .unwrap()
        .retain(|k| k != "STARTTLS");
    let after = lab.write("after.json", &serde_json::to_string_pretty(&after).unwrap());
    let args = [
        "diff",
        &before.display().to_string(),
        &after.display().to_string(),
    ];
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    args.push("--json".into());
    let diff = mxtrace_async(args).await;
    assert_eq!(diff.code, 1, "{}\n{}", diff.stdout, diff.stderr);
    assert_result_snapshot!("diff_json", stable_text(&lab, &diff.stdout));
    lab.assert_no_data(&[(FABRIKAM, 1)]).await;
}

#[test]
fn explain_json() {
    let r = mxtrace(
        &[
            "explain",
            "550 5.1.1 <jane@fabrikam.com>: Recipient address rejected: User unknown",
            "--stage",
            "rcpt",
            "--json",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .starts_with("{\n  \"schema_version\": 1,\n  \"class\": "),
        "{}",
        r.stdout
    );
    insta::assert_json_snapshot!("explain_json", r.json());
}
