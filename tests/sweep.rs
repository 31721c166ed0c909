//! `mxtrace sweep` through the binary against the hermetic lab (tests/support/lab.rs): a mixed
//! target list, dedup, shards, resume, the JSONL shape, exit codes, and Ctrl-C mid-run. Each
//! test uses its own 127.0.N.0/24, N from 210 up.

#[path = "support/dns.rs"]
mod dns_support;
#[path = "support/lab.rs"]
mod lab;
mod support;

use lab::{Lab, FABRIKAM, RELAY};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use support::bin::Run;

/// `mxtrace sweep FILE <lab settings> --json EXTRA`, off the runtime's threads.
async fn sweep(lab: &Lab, list: &str, extra: &[&str]) -> Run {
    let file = lab.write("targets.txt", list);
    let mut with_json = vec!["--json"];
    with_json.extend_from_slice(extra);
    lab.command("sweep", &file, &with_json).await
}

/// The lab's settings with one of them changed.
fn lab_args_with(lab: &Lab, flag: &str, value: &str) -> Vec<String> {
    let mut settings = lab.args();
    let i = settings.iter().position(|a| a == flag).unwrap();
    settings[i + 1] = value.into();
    settings
}

/// Every stdout line, parsed: each must be one complete JSON object.
fn lines(run: &Run) -> Vec<serde_json::Value> {
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn inputs(lines: &[serde_json::Value]) -> BTreeSet<String> {
    lines
        .iter()
        .map(|l| l["input"].as_str().unwrap().to_string())
        .collect()
}

async fn fabrikam_lab(net: u8) -> Lab {
    lab::scenario_c(net).await
}

#[tokio::test]
async fn a_mixed_list_gives_one_line_per_distinct_target() {
    let lab = fabrikam_lab(210).await;
    let (mx, refused) = (
        format!("127.0.210.{FABRIKAM}:{}", lab.port),
        format!("127.0.210.{RELAY}:{}", lab.port),
    );
    let list = format!(
        "# the fleet\n{mx}\nFabrikam.com.\n\n{refused}\n{mx}\ntrace fabrikam.com\nnot a host!\n"
    );
    let run = sweep(&lab, &list, &[]).await;
    let out = lines(&run);
    assert_eq!(out.len(), 4, "{}", run.stdout);
    let by_input = |i: &str| out.iter().find(|l| l["input"] == i).unwrap();
    let probe = by_input(&format!("probe {mx}"));
    assert_eq!(probe["command"], "probe");
    assert!(probe["schema_version"].is_u64());
    assert_eq!(probe["verdict"]["passed"], true, "{probe}");
    assert_eq!(probe["target"]["port"], lab.port);
    let trace = by_input("trace fabrikam.com");
    assert_eq!(trace["command"], "trace");
    assert_eq!(trace["domain"], "fabrikam.com");
    assert_eq!(trace["verdict"]["passed"], true, "{trace}");
    let down = by_input(&format!("probe {refused}"));
    assert_eq!(down["verdict"]["passed"], false);
    let bad = by_input("not a host!");
    assert_eq!(bad["command"], "sweep");
    assert_eq!(bad["error"]["kind"], "input");
    // An invalid line is an input error (2); the other targets still ran.
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("4 target(s): 2 passed, 1 failed, 1 invalid"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("2 duplicate(s) collapsed"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("failed by category:"), "{}", run.stderr);
    assert!(run.stderr.contains("slowest:"), "{}", run.stderr);
}

#[tokio::test]
async fn exit_codes_follow_the_targets() {
    let lab = fabrikam_lab(211).await;
    let mx = format!("127.0.211.{FABRIKAM}:{}", lab.port);
    let refused = format!("127.0.211.{RELAY}:{}", lab.port);
    let ok = sweep(&lab, &format!("{mx}\nfabrikam.com\n"), &[]).await;
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    let failed = sweep(&lab, &format!("{mx}\n{refused}\n"), &[]).await;
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    // The same on worker threads (the default is one thread); none is a usage error.
    let workers = sweep(&lab, &format!("{mx}\n{refused}\n"), &["--threads", "2"]).await;
    assert_eq!(
        (workers.code, lines(&workers).len()),
        (1, 2),
        "{}",
        workers.stderr
    );
    let none = sweep(&lab, &format!("{mx}\n"), &["--threads", "0"]).await;
    assert_eq!(none.code, 2, "{}", none.stderr);
    assert!(none.stderr.contains("--threads"), "{}", none.stderr);
    assert!(
        failed.stderr.contains("failed by category:"),
        "{}",
        failed.stderr
    );
}

/// Refused addresses: each is a quick, distinct target.
fn refused_list(net: u8, port: u16, n: u16) -> Vec<String> {
    (0..n)
        .map(|i| format!("probe 127.0.{net}.{RELAY}:{}", port + i))
        .collect()
}

#[tokio::test]
async fn shards_cover_every_target_exactly_once() {
    let lab = fabrikam_lab(212).await;
    let targets = refused_list(212, lab.port, 12);
    let list = targets.join("\n");
    let mut seen = Vec::new();
    for i in 1..=3 {
        let run = sweep(&lab, &list, &["--shard", &format!("{i}/3")]).await;
        let got = inputs(&lines(&run));
        seen.extend(got);
    }
    let all: BTreeSet<String> = targets.iter().cloned().collect();
    assert_eq!(seen.len(), all.len(), "a target in two shards: {seen:?}");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), all);
    let bad = sweep(&lab, &list, &["--shard", "4/3"]).await;
    assert_eq!(bad.code, 2);
}

/// `--shard job-index/N` in a pod of a Kubernetes indexed Job: JOB_COMPLETION_INDEX i (0-based)
/// runs exactly shard i+1 of N; outside such a pod it is a usage error.
#[tokio::test]
async fn a_kubernetes_job_index_picks_the_shard() {
    let lab = fabrikam_lab(215).await;
    let list = refused_list(215, lab.port, 9).join("\n");
    let file = lab.write("targets.txt", &list);
    let run = |shard: String, index: Option<&'static str>| {
        let mut args = vec![
            "sweep".to_string(),
            file.display().to_string(),
            "--json".into(),
        ];
        args.extend(lab.args());
        args.extend(["--shard".into(), shard]);
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let env: Vec<(&str, &str)> = index
                .map(|i| ("JOB_COMPLETION_INDEX", i))
                .into_iter()
                .collect();
            support::bin::mxtrace(&refs, &env)
        })
    };
    for (i, index) in ["0", "1", "2"].into_iter().enumerate() {
        let by_index = run("job-index/3".into(), Some(index)).await.unwrap();
        let fixed = run(format!("{}/3", i + 1), None).await.unwrap();
        assert_eq!(
            inputs(&lines(&by_index)),
            inputs(&lines(&fixed)),
            "index {index}"
        );
    }
    for index in [None, Some("3"), Some("x")] {
        let bad = run("job-index/3".into(), index).await.unwrap();
        assert_eq!(bad.code, 2, "{index:?}: {}", bad.stderr);
        assert!(
            bad.stderr
                .contains("--shard job-index/3: JOB_COMPLETION_INDEX must be 0 to 2"),
            "{}",
            bad.stderr
        );
    }
}

/// `--format human` (the default): one readable line per target, as each completes.
#[tokio::test]
async fn human_format_prints_a_readable_line_per_target() {
    let lab = fabrikam_lab(216).await;
    let (mx, refused) = (
        format!("127.0.216.{FABRIKAM}:{}", lab.port),
        format!("127.0.216.{RELAY}:{}", lab.port),
    );
    let file = lab.write(
        "targets.txt",
        &format!("{mx}\nfabrikam.com\n{refused}\nnot a host!\n"),
    );
    let run = lab.command("sweep", &file, &[]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    // Completion order varies: sorted; times vary: the column that ends in ms is masked.
    let mut out: Vec<String> = run
        .stdout
        .lines()
        .map(|l| {
            l.split("  ")
                .map(|c| {
                    if c.ends_with(" ms") || c.ends_with(" s") {
                        "<time>"
                    } else {
                        c
                    }
                })
                .collect::<Vec<_>>()
                .join("  ")
                .replace(&lab.port.to_string(), "<port>")
        })
        .collect();
    out.sort();
    insta::assert_snapshot!("sweep_human_lines", out.join("\n"));
}

/// `mxtrace report` over two shards' JSON lines: the fleet's summary on stdout (pinned), and its
/// HTML table with a row per target, failures first.
#[tokio::test]
async fn report_summarises_the_shards_of_a_sweep() {
    let lab = fabrikam_lab(217).await;
    let (mx, refused) = (
        format!("127.0.217.{FABRIKAM}:{}", lab.port),
        format!("127.0.217.{RELAY}:{}", lab.port),
    );
    let list = format!("{mx}\nfabrikam.com\n{refused}\nnot a host!\n");
    let mut files = Vec::new();
    for i in 1..=2 {
        let run = sweep(&lab, &list, &["--shard", &format!("{i}/2")]).await;
        files.push(lab.write(&format!("shard{i}.jsonl"), &run.stdout));
    }
    let html = lab.write("fleet.html", "");
    let mut args: Vec<String> = vec!["report".into()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    args.extend(["--html".into(), html.display().to_string()]);
    let run = lab::mxtrace_blocking(args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let dir = lab.write("x", "");
    let dir = dir.parent().unwrap().display().to_string();
    let text = run
        .stdout
        .split(", ")
        .map(|c| match c.split_once(" (") {
            Some((t, rest)) if rest.ends_with("ms)") || rest.ends_with("ms)\n") => {
                format!(
                    "{t} (<time>){}",
                    if rest.ends_with('\n') { "\n" } else { "" }
                )
            }
            _ => c.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
        .replace(&dir, "<dir>")
        .replace(&lab.port.to_string(), "<port>");
    // The slowest come in the order of their times: sorted here.
    let text: Vec<String> = text
        .lines()
        .map(|l| match l.strip_prefix("slowest: ") {
            Some(items) => {
                let mut v: Vec<&str> = items.split(", ").collect();
                v.sort();
                format!("slowest: {}", v.join(", "))
            }
            None => l.to_string(),
        })
        .collect();
    insta::assert_snapshot!("report_of_sweep_shards", text.join("\n"));
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("<tr class=").count(), 4, "{page}");
    let fail = page.find("<td>FAIL</td>").unwrap();
    assert!(fail < page.find("<td>PASS</td>").unwrap(), "failures first");
    assert!(page.contains("<td>connector_or_routing</td>"));
    assert!(page.contains("not a host name or IP address"));
    assert!(page.contains("TLSv1.3, verified"));
    // The same summary as JSON (validated against docs/schema/report.schema.json).
    let mut args: Vec<String> = vec!["report".into(), "--json".into()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let run = lab::mxtrace_blocking(args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["command"], "report");
    assert_eq!(
        (v["passed"].as_u64(), v["failed"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(v["invalid"], 1);
    assert_eq!(v["failed_by_category"]["connector_or_routing"], 1);
    assert_eq!(v["rows"].as_array().map(Vec::len), Some(4));
}

#[tokio::test]
async fn resume_skips_what_a_partial_run_wrote() {
    let lab = fabrikam_lab(213).await;
    let targets = refused_list(213, lab.port, 6);
    let first = sweep(&lab, &targets[..2].join("\n"), &[]).await;
    assert_eq!(lines(&first).len(), 2);
    // A run killed mid-write leaves a torn last line: that target runs again.
    let torn = format!("{}{{\"input\":\"{}\",\"sch", first.stdout, targets[2]);
    let partial = lab.write("partial.jsonl", &torn);
    let run = sweep(
        &lab,
        &targets.join("\n"),
        &["--resume", &partial.display().to_string()],
    )
    .await;
    let got = inputs(&lines(&run));
    let rest: BTreeSet<String> = targets[2..].iter().cloned().collect();
    assert_eq!(got, rest);
    assert!(
        run.stderr.contains("2 already done (--resume)"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn ctrl_c_mid_run_leaves_valid_jsonl() {
    let lab = fabrikam_lab(214).await;
    // Accepts connections (the kernel's backlog) and never greets: a target that hangs.
    let hang = std::net::TcpListener::bind("127.0.214.20:0").unwrap();
    let mx = format!("127.0.214.{FABRIKAM}:{}", lab.port);
    let list = format!("{mx}\n{}\n", hang.local_addr().unwrap());
    let file = lab.write("targets.txt", &list);
    let mut args: Vec<String> = vec!["sweep".into(), file.display().to_string(), "--json".into()];
    // The hanging target must still be waiting when Ctrl-C comes.
    args.extend(lab_args_with(&lab, "--stage-timeout", "60s"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_mxtrace"))
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    // The finished target's line arrives while the other still hangs (flushed per result).
    let read = tokio::task::spawn_blocking(move || {
        stdout.read_line(&mut first).unwrap();
        (stdout, first)
    });
    let (mut stdout, first) = tokio::time::timeout(std::time::Duration::from_secs(30), read)
        .await
        .expect("the first result in time")
        .unwrap();
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let code = child.wait().unwrap().code();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let run = Run {
        code: code.unwrap_or(-1),
        stdout: format!("{first}{rest}"),
        stderr,
    };
    support::bin::schema::check_output(&["sweep"], &run.stdout);
    let out = lines(&run);
    assert_eq!(inputs(&out), BTreeSet::from([format!("probe {mx}")]));
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("interrupted"), "{}", run.stderr);
}

#[tokio::test]
async fn a_reader_that_goes_away_is_not_an_internal_error() {
    let lab = fabrikam_lab(215).await;
    let file = lab.write("targets.txt", &refused_list(215, lab.port, 200).join("\n"));
    let mut args: Vec<String> = vec!["sweep".into(), file.display().to_string(), "--json".into()];
    args.extend(lab.args());
    let mut child = Command::new(env!("CARGO_BIN_EXE_mxtrace"))
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        // `| head -1`: one line, then the pipe closes.
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (first, out)
    })
    .await
    .unwrap();
    let (first, out) = out;
    assert!(
        serde_json::from_str::<serde_json::Value>(&first).is_ok(),
        "{first}"
    );
    support::bin::schema::check_output(&["sweep"], &first);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("internal error"), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
}

#[tokio::test]
async fn per_ip_limits_hold_the_second_session_until_the_first_ends() {
    let lab = fabrikam_lab(216).await;
    // Same address as the MX, another port: accepts and never greets (1 s stage timeout).
    let hang = std::net::TcpListener::bind(format!("127.0.216.{FABRIKAM}:0")).unwrap();
    let mx = format!("127.0.216.{FABRIKAM}:{}", lab.port);
    let file = lab.write(
        "targets.txt",
        &format!("{}\n{mx}\n", hang.local_addr().unwrap()),
    );
    let mut args: Vec<String> = vec!["sweep".into(), file.display().to_string(), "--json".into()];
    args.extend(lab_args_with(&lab, "--stage-timeout", "1s"));
    args.extend(["--per-ip".into(), "1".into()]);
    let run = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        support::bin::mxtrace(&refs, &[])
    })
    .await
    .unwrap();
    let out = lines(&run);
    assert_eq!(out.len(), 2, "{}", run.stdout);
    // Each session from its connect to its end, in ms since the epoch (started_at is when the
    // probe began, before any wait for a slot; the connect stage starts after the wait).
    let span = |l: &serde_json::Value| {
        let at = humantime::parse_rfc3339(l["started_at"].as_str().unwrap()).unwrap();
        let t0 = at
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
            * 1000.0;
        let connect = &l["stages"][0];
        assert_eq!(connect["stage"], "connect");
        let start = t0 + connect["started_ms"].as_f64().unwrap();
        (
            start,
            t0 + l["elapsed_ms"].as_f64().unwrap(),
            connect["elapsed_ms"].as_f64().unwrap(),
        )
    };
    let (mut a, mut b) = (span(&out[0]), span(&out[1]));
    if b.0 < a.0 {
        std::mem::swap(&mut a, &mut b);
    }
    // One session at a time to the address (started_at has millisecond precision).
    assert!(b.0 + 1.0 >= a.1, "sessions overlapped: {a:?} {b:?}");
    // The wait for the slot is not the connect stage's time.
    assert!(b.2 < 500.0, "{b:?}");
}
