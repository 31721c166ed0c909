//! `diff`: pairs of results with known changes. The "before" is a real `run --json` of
//! scenario C in the loopback lab (the product lab's Postfix role as mx.fabrikam.com); each "after" is that result edited the way a firewall or
//! certificate change would alter it.

#[path = "support/dns.rs"]
mod dns_support;
#[path = "support/lab.rs"]
mod lab;
mod support;

use lab::{Lab, FABRIKAM};
use serde_json::Value;
use std::path::{Path, PathBuf};
use support::bin::{mxtrace, Run};

async fn baseline(net: u8) -> (Lab, Value) {
    let lab = lab::scenario_c(net).await;
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/c-outbound-third-party.toml");
    let r = lab.run(&file, &["--json"]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    lab.assert_no_data(&[(FABRIKAM, 1)]).await;
    (lab, j)
}

/// The deciding probe's report inside the run result.
fn report(j: &mut Value) -> &mut Value {
    &mut j["hops"][0]["result"]["hops"][0]["probes"][0]["report"]
}

fn stage<'a>(j: &'a mut Value, name: &str) -> &'a mut Value {
    report(j)["stages"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|s| s["stage"] == name)
        .unwrap()
}

fn write(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    p
}

fn diff(before: &Path, after: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["diff", before.to_str().unwrap(), after.to_str().unwrap()];
    args.extend_from_slice(extra);
    mxtrace(&args, &[])
}

fn findings(r: &Run) -> Vec<(String, String, String)> {
    let j = r.json();
    assert_eq!(j["command"], "diff");
    j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["what"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_changes_are_found_and_classified() {
    let (lab, before) = baseline(50).await;
    let dir = lab.dir().to_path_buf();
    let b = write(&dir, "before.json", &before);

    // Nothing changed.
    let same = diff(&b, &b, &["--json"]);
    assert_eq!(same.code, 0, "{}", same.stderr);
    assert!(findings(&same).is_empty());
    assert_eq!(same.json()["verdict"]["summary"], "no difference");

    // STARTTLS no longer offered (an ESMTP-inspecting firewall): a regression.
    let mut a = before.clone();
    let kw = report(&mut a)["capabilities"]["before_tls"]["keywords"]
        .as_array_mut()
        .unwrap();
    kw.retain(|k| k != "STARTTLS");
    let r = diff(&b, &write(&dir, "nostarttls.json", &a), &["--json"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        findings(&r),
        [(
            "regression".into(),
            "capability".into(),
            "EHLO no longer offers STARTTLS".into()
        )]
    );

    // A new certificate: a change, not a regression.
    let mut a = before.clone();
    report(&mut a)["tls"]["chain"][0]["sha256"] = "AA:BB".into();
    let r = diff(&b, &write(&dir, "newcert.json", &a), &["--json"]);
    assert_eq!(r.code, 0);
    let f = findings(&r);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        (f[0].0.as_str(), f[0].1.as_str()),
        ("change", "certificate")
    );
    assert!(
        f[0].2.starts_with("certificate replaced: sha256 "),
        "{}",
        f[0].2
    );

    // ... about to expire: a regression.
    report(&mut a)["tls"]["chain"][0]["days_left"] = 5.into();
    let r = diff(&b, &write(&dir, "expiring.json", &a), &["--json"]);
    assert_eq!(r.code, 1);
    assert!(findings(&r).iter().any(|f| f.0 == "regression"
        && f.1 == "certificate_expiry"
        && f.2.contains("expires in 5 days")));

    // RCPT 250 -> 550: a regression, with the new reply.
    let mut a = before.clone();
    let s = stage(&mut a, "rcpt_to");
    s["reply"]["code"] = 550.into();
    s["reply"]["enhanced"] = "5.1.1".into();
    s["outcome"] = "permanent".into();
    s["diagnosis"]["category"] = "recipient_unknown".into();
    let r = diff(&b, &write(&dir, "rcpt550.json", &a), &["--json"]);
    assert_eq!(r.code, 1);
    let f = findings(&r);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!((f[0].0.as_str(), f[0].1.as_str()), ("regression", "reply"));
    assert!(
        f[0].2
            .starts_with("rcpt_to: 250 2.1.5 accepted -> 550 5.1.1 recipient_unknown"),
        "{}",
        f[0].2
    );
    // ... and back: an improvement, exit 0.
    let r = diff(&write(&dir, "rcpt550b.json", &a), &b, &["--json"]);
    assert_eq!(r.code, 0);
    assert_eq!(findings(&r)[0].0, "improvement");

    // Banner twice as slow (and 100 ms more): beyond 50%, a regression; within 300%, nothing.
    let mut a = before.clone();
    let s = stage(&mut a, "banner");
    let was = s["elapsed_ms"].as_f64().unwrap();
    s["elapsed_ms"] = (was * 2.0 + 100.0).into();
    let slow = write(&dir, "slow.json", &a);
    let r = diff(&b, &slow, &["--json", "--latency-threshold", "50%"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        findings(&r)
            .iter()
            .map(|f| (f.0.as_str(), f.1.as_str()))
            .collect::<Vec<_>>(),
        [("regression", "latency")]
    );
    let r = diff(&b, &slow, &["--json", "--latency-threshold", "1s"]);
    assert_eq!(r.code, 0);
    assert!(findings(&r).is_empty());

    // Connect now refused: reachability lost, nothing else compared.
    let mut a = before.clone();
    let s = stage(&mut a, "connect");
    s["outcome"] = "error".into();
    s["error"] = serde_json::json!({"kind": "refused", "message": "connection refused"});
    let r = diff(&b, &write(&dir, "refused.json", &a), &["--json"]);
    assert_eq!(r.code, 1);
    let f = findings(&r);
    assert_eq!(f[0].1, "reachability");
    assert_eq!(f[0].2, "no longer reachable: refused (connection refused)");

    // An expectation that passed now fails.
    let mut a = before.clone();
    a["hops"][0]["expectations"][0]["passed"] = false.into();
    let r = diff(&b, &write(&dir, "expectation.json", &a), &["--json"]);
    assert_eq!(r.code, 1);
    let f = findings(&r);
    assert_eq!(
        (f[0].0.as_str(), f[0].1.as_str()),
        ("regression", "expectation")
    );

    // Everything at once, as people read it.
    let mut a = before.clone();
    report(&mut a)["capabilities"]["before_tls"]["keywords"]
        .as_array_mut()
        .unwrap()
        .retain(|k| k != "STARTTLS");
    report(&mut a)["tls"]["chain"][0]["sha256"] = "AA:BB:CC".into();
    report(&mut a)["tls"]["version"] = "TLSv1.2".into();
    let s = stage(&mut a, "rcpt_to");
    s["reply"]["code"] = 450.into();
    s["reply"]["enhanced"] = "4.7.1".into();
    s["outcome"] = "transient".into();
    s["diagnosis"]["category"] = "greylisted".into();
    s["diagnosis"]["cause"] = "Greylisting: try again later.".into();
    let r = diff(&b, &write(&dir, "all.json", &a), &[]);
    assert_eq!(r.code, 1);
    let shown = lab::redact(&r.stdout, lab.port).replace(&dir.display().to_string(), "DIR");
    // The certificate line has the real fingerprint's first 16 characters.
    let shown: String = shown
        .lines()
        .map(|l| match l.find("sha256 ") {
            Some(i) => format!(
                "{}sha256 FINGERPRINT{}",
                &l[..i],
                &l[l.find(" -> AA").unwrap()..]
            ),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!("diff_human", shown);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_and_probe_results_compare_too() {
    let (lab, before) = baseline(51).await;
    let dir = lab.dir().to_path_buf();
    // The trace inside the run, as `trace --json` prints it.
    let mut t = before["hops"][0]["result"].clone();
    t["schema_version"] = before["schema_version"].clone();
    t["command"] = "trace".into();
    let tb = write(&dir, "trace-before.json", &t);
    t["hops"][0]["probes"][0]["report"]["tls"]["version"] = Value::Null;
    let r = diff(&tb, &write(&dir, "trace-after.json", &t), &["--json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["before"]["command"], "trace");
    let f = &j["findings"][0];
    assert_eq!(f["what"], "tls_version");
    assert_eq!(f["hop"], "hop 1 fabrikam.com");
    assert_eq!(
        f["subject"],
        format!("mx.fabrikam.com 127.0.51.3:{}", lab.port)
    );
    for k in [
        "kind", "what", "hop", "subject", "stage", "before", "after", "message",
    ] {
        assert!(f.get(k).is_some(), "{k}");
    }
    for k in ["regressions", "improvements", "changes"] {
        assert!(j["summary"][k].is_u64(), "{k}");
    }

    // A probe result.
    let mut p = before["hops"][0]["result"]["hops"][0]["probes"][0]["report"].clone();
    p["schema_version"] = before["schema_version"].clone();
    p["command"] = "probe".into();
    let pb = write(&dir, "probe-before.json", &p);
    let r = diff(&pb, &pb, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("Verdict: PASS no difference"),
        "{}",
        r.stdout
    );

    // Different commands, not JSON, not mxtrace: usage errors naming the file.
    let r = diff(&pb, &tb, &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("is a probe result"), "{}", r.stderr);
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{ not json").unwrap();
    let r = diff(&bad, &pb, &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains(&format!("{}: not JSON", bad.display())),
        "{}",
        r.stderr
    );
    let other = write(&dir, "other.json", &serde_json::json!({"hello": 1}));
    let r = diff(&pb, &other, &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not an mxtrace result"), "{}", r.stderr);
    // A result of another schema version, or of one from before versions: named, exit 2.
    let mut future = p.clone();
    future["schema_version"] = 99.into();
    let future = write(&dir, "future.json", &future);
    let r = diff(&pb, &future, &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains(&format!(
            "{}: schema_version 99 is not one",
            future.display()
        )),
        "{}",
        r.stderr
    );
    let mut old = p.clone();
    old.as_object_mut().unwrap().remove("schema_version");
    let old = write(&dir, "old.json", &old);
    let r = diff(&old, &pb, &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains(&format!("{}: no schema_version", old.display())),
        "{}",
        r.stderr
    );
    // A result whose fields are not the model's: named, with the field.
    let mut broken = p.clone();
    broken["stages"][0]["outcome"] = "maybe".into();
    let broken = write(&dir, "broken.json", &broken);
    let r = diff(&pb, &broken, &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains(&format!("{}: not a valid probe result", broken.display())),
        "{}",
        r.stderr
    );
    let r = diff(&pb, &dir.join("missing.json"), &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("missing.json: cannot read"),
        "{}",
        r.stderr
    );
    let r = diff(&pb, &pb, &["--latency-threshold", "fast"]);
    assert_eq!(r.code, 2);
}
