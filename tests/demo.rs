//! `mxtrace demo` and `mxtrace lab serve` as a user runs them: exit codes, what the output
//! shows, the JSON, help snapshots, and `lab serve` as a process stopped by SIGTERM.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::bin::{mxtrace, redact};

#[test]
fn demo_runs_all_four_scenarios_and_every_fault() {
    // Its own addresses: other tests run demos and labs at the same time.
    let r = mxtrace(&["demo", "--bind", "127.2.1.1"], &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    for s in ["A", "B", "C", "D"] {
        assert!(
            r.stdout.contains(&format!("== Scenario {s} ")),
            "scenario {s}:\n{}",
            r.stdout
        );
    }
    assert!(
        r.stdout
            .contains("Verdict: PASS 4 of 4 scenarios passed; 15 of 15 fault checks"),
        "{}",
        r.stdout
    );
    for f in [
        "connector-offline",
        "firewall-drop",
        "wrong-mx",
        "transport-rule",
        "recipient-not-provisioned",
        "tls-required",
        "cert-expired",
        "cert-wrong-name",
        "ip-blocklisted",
        "throttling",
        "dirsync-stale",
        "attribution",
    ] {
        assert!(r.stdout.contains(&format!(": fault {f}\n")), "{f}");
    }
    assert!(!r.stdout.contains("NOT OK"), "{}", r.stdout);
}

#[test]
fn demo_of_one_fault_in_one_scenario() {
    let r = mxtrace(
        &[
            "demo",
            "--scenario",
            "B",
            "--fault",
            "connector-offline",
            "--bind",
            "127.2.2.1",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let out = r.stdout.replace("127.2.2.", "127.0.25.");
    // The elapsed time of the whole demo.
    let needle = " fault checks diagnosed as expected ";
    let out = match out.rfind(needle) {
        Some(i) => format!("{}(#.# s)\n", &out[..i + needle.len()]),
        None => out,
    };
    insta::assert_snapshot!("demo_b_connector_offline", redact(&out));
}

#[test]
fn demo_json_and_usage_errors() {
    let r = mxtrace(
        &["demo", "--scenario", "D", "--json", "--bind", "127.2.3.1"],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(v["command"], "demo");
    assert_eq!(v["passed"], true);
    let checks = v["checks"].as_array().unwrap();
    // D hop 1 and hop 2 healthy, then its faults.
    assert_eq!(checks[0]["scenario"], "D");
    assert_eq!(checks[0]["hop"], 1);
    assert_eq!(checks[0]["report"]["verdict"]["passed"], true);
    assert_eq!(checks[1]["hop"], 2);
    let expired = checks
        .iter()
        .find(|c| c["fault"] == "cert-expired")
        .unwrap();
    assert_eq!(expired["observed"]["category"], "tls_failed");
    assert_eq!(expired["observed"]["layer"], "tls");
    assert_eq!(expired["ok"], true);
    assert!(expired["argv"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "--tls-verify"));

    let r = mxtrace(
        &["demo", "--scenario", "A", "--fault", "dirsync-stale"],
        &[],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("it is in B hop 2"), "{}", r.stderr);
    let r = mxtrace(&["demo", "--fault", "no-such-fault"], &[]);
    assert_eq!(r.code, 2);
    let r = mxtrace(&["demo", "--bind", "10.0.0.1"], &[]);
    assert_ne!(r.code, 0, "only loopback");
}

#[test]
fn help_is_pinned() {
    let r = mxtrace(&["demo", "--help"], &[]);
    assert_eq!(r.code, 0);
    insta::assert_snapshot!("demo_help", r.stdout);
    let r = mxtrace(&["lab", "serve", "--help"], &[]);
    assert_eq!(r.code, 0);
    insta::assert_snapshot!("lab_serve_help", r.stdout);
}

/// Reads stdout lines of a child on a thread, so each read can have a deadline.
fn lines(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_exit(child: &mut std::process::Child, within: Duration) -> Option<i32> {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}

#[test]
fn lab_serve_runs_until_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mxtrace"))
        .args([
            "lab",
            "serve",
            "--json",
            "--bind",
            "127.2.4.1",
            "--fault",
            "dirsync-stale",
        ])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines(&mut child);
    let Ok(first) = rx.recv_timeout(Duration::from_secs(30)) else {
        let _ = child.kill();
        panic!("lab serve printed nothing");
    };
    let info: serde_json::Value = serde_json::from_str(&first).unwrap();
    let dns = info["dns"].as_str().unwrap().to_string();
    let port = info["port"].as_u64().unwrap().to_string();
    let ca = info["ca_file"].as_str().unwrap().to_string();
    assert!(dns.starts_with("127.2.4.1:"), "{dns}");
    assert!(std::path::Path::new(&ca).exists());

    // Scenario A passes; B fails at hop 2 with the fault it was started with.
    let trace = |domain: &str, extra: &[&str]| {
        let mut args = vec![
            "trace",
            domain,
            "--resolver",
            &dns,
            "--port",
            &port,
            "--tls-ca-file",
            &ca,
            "--json",
        ];
        args.extend_from_slice(extra);
        mxtrace(&args, &[])
    };
    let a = trace("contoso.test", &["--rcpt", "user@contoso.test"]);
    assert_eq!(a.code, 0, "{}", a.stdout);
    let b = trace(
        "contoso-hybrid.test",
        &["--tenant", "contoso", "--rcpt", "user@contoso-hybrid.test"],
    );
    assert_eq!(b.code, 1);
    let v = b.json();
    let stages = v["hops"][1]["probes"][0]["report"]["stages"]
        .as_array()
        .unwrap();
    let rcpt = stages.iter().find(|s| s["stage"] == "rcpt_to").unwrap();
    assert_eq!(rcpt["diagnosis"]["category"], "recipient_unknown");
    assert_eq!(rcpt["diagnosis"]["hop"], 2);

    let pid = child.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(20)),
        Some(0),
        "a clean exit on SIGTERM"
    );
    assert!(
        !std::path::Path::new(&ca).exists(),
        "its temporary files are removed"
    );
}

#[test]
fn lab_serve_human_output_and_dir() {
    let dir = std::env::temp_dir().join(format!("mxtrace-serve-test-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_mxtrace"))
        .args(["lab", "serve", "--bind", "127.2.5.1", "--dir"])
        .arg(&dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = lines(&mut child);
    let mut out = String::new();
    let t0 = Instant::now();
    while !out.contains("Ready.") && t0.elapsed() < Duration::from_secs(30) {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) => {
                out.push_str(&l);
                out.push('\n');
            }
            Err(_) => break,
        }
    }
    assert!(out.contains("Ready."), "{out}");
    assert!(
        out.contains("mxtrace trace contoso.test --scenario A"),
        "{out}"
    );
    assert!(out.contains("swaks --server 127.2.5.2:"), "{out}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("lab.json")).unwrap()).unwrap();
    assert_eq!(json["endpoints"][3]["names"][0], "mx.fabrikam.test");
    // Child::kill is SIGKILL: no cleanup, but nothing is left listening either.
    child.kill().unwrap();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
