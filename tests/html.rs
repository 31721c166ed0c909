//! The HTML reports (`--html FILE`, `mxtrace report`): pinned as snapshots for a lab trace, a
//! run and a diff, escaped against a hostile server, and rendered in headless Chromium.
//!
//! The lab is scenario C with fabrikam.com's Postfix MX refusing every recipient (the
//! recipient-not-provisioned fault), so the reports show a failing stage. What changes from run
//! to run (times, dates, ports, fingerprints, serials, days left, paths, the version) is made
//! stable in the JSON result before `mxtrace report` renders it, so the SVG geometry is stable
//! too.

#[path = "support/chromium/mod.rs"]
mod chromium;
#[path = "support/dns.rs"]
mod dns_support;
#[path = "support/lab.rs"]
mod lab;
mod support;

use chromium::{assert_renders, Chromium};
use lab::{Lab, FABRIKAM};
use mxtrace_lab::pki::LabPki;
use mxtrace_lab::smtp::Fault;
use serde_json::Value;
use std::path::{Path, PathBuf};
use support::bin::{mxtrace, redact_ports, Run};
use support::scripted::{ehlo_reply, expect, line, quit, ScriptedServer, Step};

/// Scenario C with every recipient unknown at mx.fabrikam.com (550 5.1.1 at RCPT).
async fn fault_lab(net: u8) -> Lab {
    let pki = LabPki::new().unwrap();
    let mut fab = lab::postfix(&pki, "mx.fabrikam.com");
    fab.fault = Some(Fault::RecipientNotProvisioned);
    let zones = lab::zones(net, &["mail"], "");
    Lab::start(net, zones, pki, vec![(FABRIKAM, fab)]).await
}

fn scenario_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/c-outbound-third-party.toml")
}

fn run(args: &[String]) -> Run {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    mxtrace(&refs, &[])
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The JSON result with this run's ports, times, dates and certificate identity replaced.
fn stable_json(lab: &Lab, text: &str) -> Value {
    let text = text
        .replace(&lab.dns.resolver(), "RESOLVER")
        .replace(&format!(":{}", lab.port), ":PORT");
    let mut v: Value = serde_json::from_str(&redact_ports(&text)).unwrap();
    stabilize(&mut v);
    v["version"] = "VERSION".into();
    v
}

fn stabilize(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                match k.as_str() {
                    "started_at" => *val = "2026-01-01T00:00:00Z".into(),
                    "elapsed_ms" | "dns_elapsed_ms" => *val = 100.0.into(),
                    "not_before" | "not_after" => *val = "DATE".into(),
                    "days_left" => *val = 364.into(),
                    "serial" => *val = "SERIAL".into(),
                    "sha256" => *val = "FINGERPRINT".into(),
                    "port" => *val = 2525.into(),
                    "observed" => match val.as_str() {
                        Some(s) if s.ends_with(" ms") => *val = "12.0 ms".into(),
                        Some(s) if s.contains(" days left") => *val = "364 days left".into(),
                        _ => {}
                    },
                    _ => stabilize(val),
                }
            }
            // A stage every 20 ms, each taking 15: a waterfall that does not move.
            if let Some(Value::Array(stages)) = map.get_mut("stages") {
                for (i, s) in stages.iter_mut().enumerate() {
                    s["started_ms"] = (20.0 * i as f64).into();
                    s["elapsed_ms"] = 15.0.into();
                }
            }
        }
        Value::Array(list) => list.iter_mut().for_each(stabilize),
        _ => {}
    }
}

/// `mxtrace report JSON --html` of a stabilized result, read back.
fn report_of(lab: &Lab, name: &str, json: &Value) -> (PathBuf, String) {
    let file = lab.write(
        &format!("{name}.json"),
        &serde_json::to_string_pretty(json).unwrap(),
    );
    let out = chromium::artifacts().join(format!("{name}.html"));
    let r = run(&strings(&[
        "report",
        &file.display().to_string(),
        "--html",
        &out.display().to_string(),
    ]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.stdout, "", "report writes the file only");
    let html = std::fs::read_to_string(&out).unwrap();
    (out, html)
}

/// The `--html` file a command wrote is, byte for byte, what `report` makes of its JSON.
fn assert_same_as_report(lab: &Lab, json: &str, direct: &str) {
    let raw = lab.write("raw.json", json);
    let again = lab.dir().join("again.html");
    let r = run(&strings(&[
        "report",
        &raw.display().to_string(),
        "--html",
        &again.display().to_string(),
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let direct = std::fs::read_to_string(direct).unwrap();
    assert_eq!(direct, std::fs::read_to_string(&again).unwrap());
    assert_self_contained(&direct);
}

/// The snapshot text: paths and the version made stable.
fn snapshot_text(lab: &Lab, html: &str) -> String {
    html.replace(&lab.dir().display().to_string(), "DIR")
        .replace(env!("CARGO_MANIFEST_DIR"), "REPO")
        .replace(
            &format!("mxtrace {}", env!("CARGO_PKG_VERSION")),
            "mxtrace [version]",
        )
}

/// Every report is one self-contained page: nothing to fetch, no script.
fn assert_self_contained(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    for needle in [
        "<script", "<link", "<img", "<iframe", "http://", "https://", "@import",
    ] {
        assert!(!html.contains(needle), "{needle} in the report");
    }
    assert!(html.contains("<style>") && html.contains("prefers-color-scheme:dark"));
    assert!(html.contains("@media print"));
}

/// The rendered text (tags removed) of `page` in Chromium, and its screenshot checked.
fn rendered_text(chromium: &Chromium, page: &Path, name: &str) -> String {
    assert_renders(chromium, page, name);
    let dom = chromium.dump_dom(page);
    // The body only: not the style sheet.
    let body = dom.split_once("<body").map_or(dom.as_str(), |(_, b)| b);
    let mut text = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn lab_trace_run_and_diff_reports() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let _in_rt = rt.enter();
    let lab = rt.block_on(fault_lab(150));
    let dir = lab.dir().display().to_string();

    // trace --json --html: the file is what `report` makes of the JSON, byte for byte.
    let direct = format!("{dir}/trace-direct.html");
    let mut args = strings(&["trace", "fabrikam.com", "--scenario", "C"]);
    args.extend(lab.args());
    args.extend(strings(&[
        "--from",
        "user@contoso.com",
        "--rcpt",
        "jane@fabrikam.com",
        "--json",
        "--html",
        &direct,
    ]));
    let trace = run(&args);
    assert_eq!(trace.code, 1, "{}\n{}", trace.stdout, trace.stderr);
    assert_same_as_report(&lab, &trace.stdout, &direct);

    let (trace_page, html) = report_of(&lab, "trace", &stable_json(&lab, &trace.stdout));
    assert_self_contained(&html);
    insta::assert_snapshot!("trace_html", snapshot_text(&lab, &html));

    let direct = format!("{dir}/run-direct.html");
    let mut args = strings(&["run", &scenario_file().display().to_string()]);
    args.extend(lab.args());
    args.extend(strings(&["--json", "--html", &direct]));
    let run_result = run(&args);
    assert_eq!(run_result.code, 1, "{}", run_result.stderr);
    assert_same_as_report(&lab, &run_result.stdout, &direct);
    let run_json = stable_json(&lab, &run_result.stdout);
    let (run_page, html) = report_of(&lab, "run", &run_json);
    assert_self_contained(&html);
    insta::assert_snapshot!("run_html", snapshot_text(&lab, &html));

    // diff: the same run, then TLS 1.2 and a certificate about to expire (a middlebox
    // re-signing with its own, or a renewal that did not happen).
    let before = lab.write("before.json", &run_json.to_string());
    let mut after = run_json.clone();
    let tls = &mut after["hops"][0]["result"]["hops"][0]["probes"][0]["report"]["tls"];
    tls["version"] = "TLSv1.2".into();
    tls["chain"][0]["days_left"] = 5.into();
    tls["cipher"] = "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384".into();
    let after = lab.write("after.json", &after.to_string());
    let diff_page = chromium::artifacts().join("diff.html");
    let r = run(&strings(&[
        "diff",
        &before.display().to_string(),
        &after.display().to_string(),
        "--html",
        &diff_page.display().to_string(),
    ]));
    assert_eq!(r.code, 1, "a regression: {}\n{}", r.stdout, r.stderr);
    let html = std::fs::read_to_string(&diff_page).unwrap();
    assert_self_contained(&html);
    // The cipher change comes first in diff's findings; the page shows it after both regressions.
    let last_regression = html.rfind("<b>regression</b>").unwrap();
    let change = html.find("<b>change</b>").unwrap();
    assert!(last_regression < change, "regressions first");
    insta::assert_snapshot!("diff_html", snapshot_text(&lab, &html));

    chromium_reads(&trace_page, &run_page, &diff_page);
    drop(lab);
}

/// What a reader of each report must find: the MX host, the failing stage, the category and
/// the certificate's days left; the diff's regression.
fn chromium_reads(trace: &Path, run: &Path, diff: &Path) {
    let Some(chromium) = Chromium::find("lab_trace_run_and_diff_reports") else {
        return;
    };
    for (page, name) in [(trace, "trace"), (run, "run")] {
        let text = rendered_text(&chromium, page, name);
        for fact in [
            "mx.fabrikam.com",
            "FAIL at rcpt_to",
            "recipient_unknown",
            "364 days left",
        ] {
            assert!(
                text.contains(fact),
                "{name}: {fact:?} not rendered:\n{text}"
            );
        }
    }
    let text = rendered_text(&chromium, diff, "diff");
    for fact in [
        "regression",
        "TLSv1.3",
        "TLSv1.2",
        "5 days left",
        "mx.fabrikam.com",
        "FAIL at rcpt_to",
    ] {
        assert!(text.contains(fact), "diff: {fact:?} not rendered:\n{text}");
    }
}

const HOSTILE_BANNER: &str = "220 <script>alert(1)</script> \"><img src=x onerror=alert(2)> ESMTP";

/// Markup in the banner, the EHLO name and the RCPT refusal; the probe sends RSET after it.
fn hostile_session() -> Vec<Step> {
    let mut steps = vec![
        line(HOSTILE_BANNER),
        expect("EHLO probe.fabrikam.test"),
        ehlo_reply("x'><svg onload=alert(3)>", &["PIPELINING"]),
        expect("MAIL FROM:<probe@fabrikam.test>"),
        expect("RCPT TO:<user@contoso.test>"),
        line("250 2.1.0 Ok"),
        line("550 5.1.1 <user@contoso.test>: <b onmouseover=alert(4)>unknown</b>"),
        expect("RSET"),
        line("250 2.0.0 Ok"),
    ];
    steps.extend(quit());
    steps
}

#[test]
fn hostile_server_text_is_escaped() {
    let server = ScriptedServer::spawn_thread(hostile_session());
    let out = chromium::artifacts().join("hostile.html");
    let target = server.addr.to_string();
    let out_arg = out.display().to_string();
    let mut args = vec!["probe", &target];
    args.extend("--ehlo probe.fabrikam.test --from probe@fabrikam.test".split(' '));
    args.extend(["--rcpt", "user@contoso.test", "--html", &out_arg]);
    let r = mxtrace(&args, &[]);
    server.finish_blocking().assert_ok();
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let html = std::fs::read_to_string(&out).unwrap();
    assert_self_contained(&html);
    for injected in ["<svg onload", "<b onmouseover", "'><"] {
        assert!(!html.contains(injected), "{injected} in the report");
    }
    assert!(html.contains(
        "220 &lt;script&gt;alert(1)&lt;/script&gt; &quot;&gt;&lt;img src=x \
         onerror=alert(2)&gt; ESMTP"
    ));
    assert!(html.contains("&lt;b onmouseover=alert(4)&gt;unknown&lt;/b&gt;"));

    let Some(chromium) = Chromium::find("hostile_server_text_is_escaped") else {
        return;
    };
    let dom = chromium.dump_dom(&out);
    // The page's own elements only: no script, image or handler made it into the DOM (a
    // serialized DOM quotes every attribute; text keeps `onerror=` unquoted).
    for element in [
        "<script",
        "<img",
        "<b onmouseover",
        "onload=\"",
        "onerror=\"",
        "onmouseover=\"",
    ] {
        assert!(!dom.contains(element), "{element} in the rendered DOM");
    }
    assert!(
        dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{dom}"
    );
}

#[test]
fn html_file_is_checked_first_and_report_reads_results_only() {
    let dir = lab::TempDir::new();
    // A directory is not a file: usage error before anything runs (nothing listens there).
    let r = mxtrace(
        &[
            "probe",
            "127.0.0.1:9",
            "--html",
            &dir.path().display().to_string(),
        ],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("--html") && r.stderr.contains("is a directory"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stdout, "");

    let not_result = dir.write("other.json", "{\"hello\": 1}");
    let out = dir.path().join("out.html");
    let r = mxtrace(
        &[
            "report",
            &not_result.display().to_string(),
            "--html",
            &out.display().to_string(),
        ],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("not an mxtrace result"), "{}", r.stderr);
    assert!(!out.exists(), "no report from a file that is not a result");

    let help = mxtrace(&["report", "--help"], &[]);
    assert_eq!(help.code, 0);
    for line in [
        "--html <OUT>",
        "mxtrace report path.json --html path.html",
        "0  the report was written",
    ] {
        assert!(
            help.stdout.contains(line),
            "{line} not in:\n{}",
            help.stdout
        );
    }
}

#[test]
fn demo_report_shows_every_check() {
    let dir = lab::TempDir::new();
    let out = dir.path().join("demo.html");
    let r = mxtrace(
        &[
            "demo",
            "--fault",
            "recipient-not-provisioned",
            "--bind",
            "127.0.155.1",
            "--html",
            &out.display().to_string(),
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let html = std::fs::read_to_string(&out).unwrap();
    assert_self_contained(&html);
    // The healthy path of both scenarios the fault is played in, then the fault in each.
    let titles = [
        "Scenario A hop 1: healthy",
        "Scenario C hop 1: healthy",
        "Scenario A hop 1: fault recipient-not-provisioned",
        "Scenario C hop 1: fault recipient-not-provisioned",
    ];
    for (i, title) in titles.iter().enumerate() {
        let row = format!("<a href=\"#d{i}\">{title}</a>");
        assert!(html.contains(&row), "{row} not in the table");
        let section = format!("<h2 id=\"d{i}\">{title}</h2>");
        assert!(html.contains(&section), "{section} missing");
    }
    assert_eq!(
        html.matches("<b>OK</b>").count(),
        4,
        "every check as expected"
    );
    assert!(html.contains("recipient_unknown / recipient"));
    assert!(html.contains("Verdict: PASS"));
}

/// A saved watch report (tests/data/watch/window.json: one target that broke and recovered, one
/// traced domain still down on DNS, server text with markup) through `mxtrace report`: pinned
/// as a snapshot, self-contained, escaped, and read in Chromium.
#[test]
fn watch_report_renders_the_change_window() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/watch/window.json");
    let out = chromium::artifacts().join("watch.html");
    let r = run(&strings(&[
        "report",
        &file.display().to_string(),
        "--html",
        &out.display().to_string(),
    ]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let html = std::fs::read_to_string(&out).unwrap();
    assert_self_contained(&html);
    assert!(!html.contains("<script>alert"), "server text escaped");
    assert!(html.contains("Relay access denied &lt;script&gt;alert(1)&lt;/script&gt;"));
    let stable = html.replace(
        &format!("mxtrace {}", env!("CARGO_PKG_VERSION")),
        "mxtrace [version]",
    );
    insta::assert_snapshot!("watch_html", stable);
    let Some(chromium) = Chromium::find("watch_report_renders_the_change_window") else {
        return;
    };
    let text = rendered_text(&chromium, &out, "watch");
    for fact in [
        "mx1.contoso.test:2525: UP since",
        "contoso.test: DOWN since",
        "Outage windows",
        "4 s",
        "still down",
        "5 s so far",
        "relay_denied",
        "dns_failure",
        "during (first failure to last recovery)",
        "recovered after 4 s: rcpt_to 554 5.7.1",
    ] {
        assert!(text.contains(fact), "watch: {fact:?} not rendered:\n{text}");
    }
}
